/* SPDX-License-Identifier: MIT */
/* A simulated WireGuard client peer on the protocol core, for load and flood generators. */
#include "perf/simpeer.h"

#include <endian.h>
#include <errno.h>
#include <stdatomic.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common/clock.h"
#include "common/compiler.h"
#include "crypto/blake2s.h"
#include "crypto/tai64n.h"
#include "crypto/transport.h"
#include "crypto/x25519.h"

#define KEY_LABEL "wgate loadgen peer key v1"

int wgt_simpeer_derive_key(uint8_t ret_key[WGT_KEY_LEN], uint64_t seed, uint32_t n)
{
	uint8_t in[sizeof(KEY_LABEL) - 1 + 8 + 4];
	uint64_t seed_le = htole64(seed);
	uint32_t n_le = htole32(n);
	int ret;

	memcpy(in, KEY_LABEL, sizeof(KEY_LABEL) - 1);
	memcpy(in + sizeof(KEY_LABEL) - 1, &seed_le, 8);
	memcpy(in + sizeof(KEY_LABEL) - 1 + 8, &n_le, 4);
	ret = wgt_blake2s_hash(ret_key, in, sizeof(in));
	if (!ret)
		wgt_x25519_clamp(ret_key);
	return ret;
}

/* Owner only. */
int wgt_simpeer_init(struct wgt_simpeer *sp, const uint8_t priv[WGT_KEY_LEN],
		     const uint8_t server_public[WGT_KEY_LEN], const uint8_t *psk)
{
	int ret;

	memset(sp, 0, sizeof(*sp));
	wgt_noise_keypairs_init(&sp->keypairs);
	ret = wgt_noise_identity_set(&sp->identity, priv);
	if (ret)
		goto err;
	ret = wgt_noise_handshake_init(&sp->hs, &sp->identity, server_public, psk);
	if (ret)
		goto err;
	ret = wgt_cookie_maker_init(&sp->maker, server_public);
	if (ret)
		goto err;
	ret = wgt_cookie_checker_init(&sp->checker, sp->identity.static_public);
	if (ret)
		goto err;
	return 0;
err:
	wgt_simpeer_destroy(sp);
	return ret;
}

/* Owner only. */
void wgt_simpeer_destroy(struct wgt_simpeer *sp)
{
	wgt_noise_keypairs_clear(&sp->keypairs);
	wgt_noise_handshake_destroy(&sp->hs);
	wgt_noise_identity_clear(&sp->identity);
	wgt_cookie_maker_clear(&sp->maker);
	wgt_cookie_checker_clear(&sp->checker);
	sp->initiation_pending = false;
}

/*
 * TAI64N has a resolution of ~16.8 ms and the gateway rejects an initiation
 * whose timestamp is not newer than the last one it consumed: a peer that
 * restarts or retries within that time steps its last timestamp by 1 ns.
 */
static void next_timestamp(struct wgt_simpeer *sp, uint8_t ts[WGT_TIMESTAMP_LEN])
{
	wgt_tai64n_now(ts);
	if (!wgt_tai64n_after(ts, sp->last_timestamp)) {
		int i;

		memcpy(ts, sp->last_timestamp, WGT_TIMESTAMP_LEN);
		/* Big-endian: carry from the last byte up. */
		for (i = WGT_TIMESTAMP_LEN - 1; i >= 0 && ++ts[i] == 0; i--)
			;
	}
	memcpy(sp->last_timestamp, ts, WGT_TIMESTAMP_LEN);
}

/* Owner only. */
int wgt_simpeer_initiation(struct wgt_simpeer *sp, struct wgt_msg_initiation *dst, uint32_t index,
			   uint64_t now)
{
	uint8_t ts[WGT_TIMESTAMP_LEN];
	int ret;

	next_timestamp(sp, ts);
	ret = wgt_noise_create_initiation(&sp->hs, dst, index, ts);
	if (ret)
		return ret;
	ret = wgt_cookie_add_macs(&sp->maker, (uint8_t *)dst, sizeof(*dst), now);
	if (ret)
		return ret;
	sp->initiation_pending = true;
	return 0;
}

/* Owner only. */
int wgt_simpeer_consume_response(struct wgt_simpeer *sp, const struct wgt_msg_response *src,
				 uint64_t now, struct wgt_noise_keypair **ret_kp)
{
	struct wgt_noise_keypair *kp;
	int ret;

	if (!sp->initiation_pending || le32toh(src->receiver_index) != sp->hs.local_index)
		return -EINVAL;
	/* No source address: mac2 is not checked, and the checker binds cookies to one. */
	if (wgt_cookie_validate(&sp->checker, (const uint8_t *)src, sizeof(*src), NULL, false, now) ==
	    WGT_COOKIE_INVALID_MAC)
		return -EBADMSG;
	ret = wgt_noise_consume_response(&sp->hs, src);
	if (ret)
		return ret;
	ret = wgt_noise_begin_session(&sp->hs, &sp->keypairs, now, &kp);
	if (ret)
		return ret;
	sp->initiation_pending = false;
	*ret_kp = kp;
	return 0;
}

/* Owner only. */
int wgt_simpeer_consume_cookie(struct wgt_simpeer *sp, const struct wgt_msg_cookie *src,
			       uint64_t now)
{
	if (!sp->initiation_pending || le32toh(src->receiver_index) != sp->hs.local_index)
		return -EINVAL;
	return wgt_cookie_consume_reply(&sp->maker, src, now);
}

/* Owner only. */
struct wgt_noise_keypair *wgt_simpeer_sending_keypair(struct wgt_simpeer *sp, uint64_t now)
{
	struct wgt_noise_keypair *kp = atomic_load_explicit(&sp->keypairs.current,
							     memory_order_relaxed);

	if (!kp || !atomic_load_explicit(&kp->send_valid, memory_order_relaxed) ||
	    wgt_has_expired(kp->birth, WGT_REJECT_AFTER_TIME, now))
		return NULL;
	return kp;
}

/* Owner only. */
int wgt_simpeer_seal(struct wgt_simpeer *sp, struct wgt_aead *a, uint8_t *buf, size_t len,
		     size_t cap, uint64_t now, size_t *ret_len)
{
	struct wgt_noise_keypair *kp = wgt_simpeer_sending_keypair(sp, now);

	if (!kp)
		return -EKEYEXPIRED;
	return wgt_transport_encrypt(a, kp, buf, len, cap, 0, now, ret_len);
}

/* Owner only. */
int wgt_simpeer_open(struct wgt_simpeer *sp, struct wgt_aead *a, uint8_t *buf, size_t len,
		     uint64_t now, size_t *ret_payload_len, struct wgt_noise_keypair **ret_kp)
{
	struct wgt_noise_keypair *slots[3] = {
		atomic_load_explicit(&sp->keypairs.current, memory_order_relaxed),
		atomic_load_explicit(&sp->keypairs.previous, memory_order_relaxed),
		atomic_load_explicit(&sp->keypairs.next, memory_order_relaxed),
	};
	struct wgt_noise_keypair *kp = NULL;
	uint32_t index;
	size_t i;
	int ret;

	if (!wgt_simpeer_index_of(buf, len, &index) || buf[0] != WGT_MSG_DATA)
		return -EINVAL;
	for (i = 0; i < WGT_ARRAY_SIZE(slots) && !kp; i++)
		if (slots[i] && slots[i]->local_index == index)
			kp = slots[i];
	if (!kp)
		return -ENOKEY;
	ret = wgt_transport_decrypt(a, kp, buf, len, now, ret_payload_len);
	if (ret)
		return ret;
	wgt_noise_received_with_keypair(&sp->keypairs, kp);
	*ret_kp = kp;
	return 0;
}

/* Owner only. */
void wgt_simpeer_reset(struct wgt_simpeer *sp)
{
	wgt_noise_keypairs_clear(&sp->keypairs);
	wgt_noise_handshake_clear(&sp->hs);
	sp->initiation_pending = false;
}

bool wgt_simpeer_index_of(const uint8_t *msg, size_t len, uint32_t *ret_index)
{
	uint32_t index;

	switch (wgt_msg_classify(msg, len)) {
	case WGT_MSG_HANDSHAKE_RESPONSE:
		memcpy(&index, msg + offsetof(struct wgt_msg_response, receiver_index), 4);
		break;
	case WGT_MSG_HANDSHAKE_COOKIE:
		memcpy(&index, msg + offsetof(struct wgt_msg_cookie, receiver_index), 4);
		break;
	case WGT_MSG_DATA:
		memcpy(&index, msg + offsetof(struct wgt_msg_data, receiver_index), 4);
		break;
	default:
		return false;
	}
	*ret_index = le32toh(index);
	return true;
}
