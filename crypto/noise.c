/* SPDX-License-Identifier: MIT */
/* Noise_IKpsk2 handshake messages 1 and 2 and keypair rotation (whitepaper 5.4.2-5.4.5). */
#include "crypto/noise.h"

#include <endian.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common/spinlock.h"
#include "crypto/aead.h"
#include "crypto/blake2s.h"
#include "crypto/tai64n.h"
#include "crypto/x25519.h"

static const char construction[] = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s";
static const char identifier[] = "WireGuard v1 zx2c4 Jason@zx2c4.com";

/* C0 = HASH(CONSTRUCTION) and H0 = HASH(C0 || IDENTIFIER), computed once. */
static uint8_t initial_chaining_key[WGT_KEY_LEN];
static uint8_t initial_hash[WGT_KEY_LEN];
static int initial_ret = -EAGAIN;
static pthread_once_t initial_once = PTHREAD_ONCE_INIT;

/* Unique ids for keys, so per-worker AEAD contexts can tell keys apart. */
static _Atomic uint64_t next_key_id = 1;

static void compute_initial(void)
{
	initial_ret = wgt_blake2s_hash(initial_chaining_key, construction, sizeof(construction) - 1);
	if (!initial_ret)
		initial_ret = wgt_blake2s_hash2(initial_hash, initial_chaining_key, WGT_KEY_LEN,
						identifier, sizeof(identifier) - 1);
}

/* Ci, Hi = C0, HASH(H0 || responder static). */
static int handshake_start(uint8_t ck[WGT_KEY_LEN], uint8_t hash[WGT_KEY_LEN],
			   const uint8_t responder_static[WGT_KEY_LEN])
{
	pthread_once(&initial_once, compute_initial);
	if (initial_ret)
		return initial_ret;
	memcpy(ck, initial_chaining_key, WGT_KEY_LEN);
	return wgt_blake2s_hash2(hash, initial_hash, WGT_KEY_LEN, responder_static, WGT_KEY_LEN);
}

static int mix_hash(uint8_t hash[WGT_KEY_LEN], const void *src, size_t len)
{
	return wgt_blake2s_hash2(hash, hash, WGT_KEY_LEN, src, len);
}

/* C, k = KDF2(C, DH(priv, pub)); -ENOKEY when the DH is all zero. */
static int mix_dh(uint8_t ck[WGT_KEY_LEN], uint8_t *key, const uint8_t priv[WGT_KEY_LEN],
		  const uint8_t pub[WGT_KEY_LEN])
{
	uint8_t dh[WGT_KEY_LEN];
	int ret;

	ret = wgt_x25519(dh, priv, pub);
	if (ret) {
		ret = ret == -EINVAL ? -ENOKEY : ret;
		goto out;
	}
	ret = wgt_kdf(ck, key, NULL, ck, dh, WGT_KEY_LEN);
out:
	OPENSSL_cleanse(dh, sizeof(dh));
	return ret;
}

/* C, k = KDF2(C, precomputed DH); -ENOKEY when that DH was invalid. */
static int mix_precomputed_dh(uint8_t ck[WGT_KEY_LEN], uint8_t key[WGT_KEY_LEN],
			      const uint8_t precomputed[WGT_KEY_LEN])
{
	static const uint8_t zero[WGT_KEY_LEN];

	if (!CRYPTO_memcmp(precomputed, zero, WGT_KEY_LEN))
		return -ENOKEY;
	return wgt_kdf(ck, key, NULL, ck, precomputed, WGT_KEY_LEN);
}

/* C, tau, k = KDF3(C, psk); H = HASH(H || tau). */
static int mix_psk(uint8_t ck[WGT_KEY_LEN], uint8_t hash[WGT_KEY_LEN], uint8_t key[WGT_KEY_LEN],
		   const uint8_t psk[WGT_KEY_LEN])
{
	uint8_t tau[WGT_KEY_LEN];
	int ret;

	ret = wgt_kdf(ck, tau, key, ck, psk, WGT_KEY_LEN);
	if (!ret)
		ret = mix_hash(hash, tau, WGT_KEY_LEN);
	OPENSSL_cleanse(tau, sizeof(tau));
	return ret;
}

/* dst = AEAD(k, 0, src, H); H = HASH(H || dst). */
static int encrypt_and_hash(uint8_t *dst, const uint8_t *src, size_t len,
			    const uint8_t key[WGT_KEY_LEN], uint8_t hash[WGT_KEY_LEN])
{
	int ret = wgt_aead_encrypt(dst, src, len, hash, WGT_KEY_LEN, 0, key);

	return ret ? ret : mix_hash(hash, dst, len + WGT_AEAD_TAG_LEN);
}

/* dst = AEAD-open(k, 0, src, H); H = HASH(H || src). -EBADMSG when it does not open. */
static int decrypt_and_hash(uint8_t *dst, const uint8_t *src, size_t len,
			    const uint8_t key[WGT_KEY_LEN], uint8_t hash[WGT_KEY_LEN])
{
	int ret = wgt_aead_decrypt(dst, src, len, hash, WGT_KEY_LEN, 0, key);

	return ret ? ret : mix_hash(hash, src, len);
}

/* Ephemeral public key: C = KDF1(C, e); H = HASH(H || e). */
static int mix_ephemeral(uint8_t ck[WGT_KEY_LEN], uint8_t hash[WGT_KEY_LEN],
			 const uint8_t ephemeral[WGT_KEY_LEN])
{
	int ret = wgt_kdf(ck, NULL, NULL, ck, ephemeral, WGT_KEY_LEN);

	return ret ? ret : mix_hash(hash, ephemeral, WGT_KEY_LEN);
}

/* Our side's e: a fresh ephemeral key pair, its public half mixed in and written to `pub`. */
static int mix_new_ephemeral(struct wgt_noise_handshake *hs, uint8_t pub[WGT_KEY_LEN])
{
	int ret = wgt_x25519_generate(hs->ephemeral_private, pub);

	return ret ? ret : mix_ephemeral(hs->chaining_key, hs->hash, pub);
}

static void message_header(struct wgt_msg_header *h, enum wgt_message_type type)
{
	h->type = htole32((uint32_t)type);
}

int wgt_noise_identity_set(struct wgt_noise_identity *id, const uint8_t private_key[WGT_KEY_LEN])
{
	int ret;

	memcpy(id->static_private, private_key, WGT_KEY_LEN);
	wgt_x25519_clamp(id->static_private);
	ret = wgt_x25519_public(id->static_public, id->static_private);
	if (ret) {
		wgt_noise_identity_clear(id);
		return ret;
	}
	id->has_identity = true;
	return 0;
}

void wgt_noise_identity_clear(struct wgt_noise_identity *id)
{
	OPENSSL_cleanse(id, sizeof(*id));
}

int wgt_noise_handshake_refresh_identity(struct wgt_noise_handshake *hs)
{
	OPENSSL_cleanse(hs->precomputed_static_static, WGT_KEY_LEN);
	hs->static_static = WGT_NOISE_SS_UNKNOWN;
	return hs->local && hs->local->has_identity ? 0 : -ENOKEY;
}

/*
 * Control thread only. The static-static DH, computed once per identity and
 * peer. Returns 0, -ENOKEY when it is all zero (a low-order key; remembered,
 * so that such a peer costs one DH, not one per message), or another -errno
 * (nothing remembered: the next message tries again).
 */
static int ensure_static_static(struct wgt_noise_handshake *hs)
{
	int ret;

	if (hs->static_static == WGT_NOISE_SS_UNKNOWN) {
		ret = wgt_x25519(hs->precomputed_static_static, hs->local->static_private,
				 hs->remote_static);
		if (ret) {
			OPENSSL_cleanse(hs->precomputed_static_static, WGT_KEY_LEN);
			if (ret != -EINVAL)
				return ret;
			hs->static_static = WGT_NOISE_SS_INVALID;
		} else {
			hs->static_static = WGT_NOISE_SS_VALID;
		}
	}
	return hs->static_static == WGT_NOISE_SS_VALID ? 0 : -ENOKEY;
}

int wgt_noise_handshake_init(struct wgt_noise_handshake *hs, const struct wgt_noise_identity *local,
			     const uint8_t remote_static[WGT_KEY_LEN], const uint8_t *psk)
{
	memset(hs, 0, sizeof(*hs));
	hs->local = local;
	memcpy(hs->remote_static, remote_static, WGT_KEY_LEN);
	wgt_noise_handshake_set_psk(hs, psk);
	hs->state = WGT_HANDSHAKE_ZEROED;
	hs->static_static = WGT_NOISE_SS_UNKNOWN;
	return 0;
}

void wgt_noise_handshake_set_psk(struct wgt_noise_handshake *hs, const uint8_t *psk)
{
	if (psk)
		memcpy(hs->preshared_key, psk, WGT_KEY_LEN);
	else
		OPENSSL_cleanse(hs->preshared_key, WGT_KEY_LEN);
}

void wgt_noise_handshake_clear(struct wgt_noise_handshake *hs)
{
	OPENSSL_cleanse(hs->ephemeral_private, WGT_KEY_LEN);
	OPENSSL_cleanse(hs->remote_ephemeral, WGT_KEY_LEN);
	OPENSSL_cleanse(hs->hash, WGT_KEY_LEN);
	OPENSSL_cleanse(hs->chaining_key, WGT_KEY_LEN);
	hs->local_index = 0;
	hs->remote_index = 0;
	hs->state = WGT_HANDSHAKE_ZEROED;
}

void wgt_noise_handshake_destroy(struct wgt_noise_handshake *hs)
{
	OPENSSL_cleanse(hs, sizeof(*hs));
}

int wgt_noise_create_initiation(struct wgt_noise_handshake *hs, struct wgt_msg_initiation *dst,
				uint32_t local_index, const uint8_t timestamp[WGT_TIMESTAMP_LEN])
{
	uint8_t key[WGT_KEY_LEN];
	int ret;

	if (!hs->local || !hs->local->has_identity)
		return -ENOKEY;
	/* First, so that a low-order peer key costs one DH, not one per attempt. */
	ret = ensure_static_static(hs);
	if (ret) {
		wgt_noise_handshake_clear(hs);
		return ret;
	}
	memset(dst, 0, sizeof(*dst));
	message_header(&dst->header, WGT_MSG_HANDSHAKE_INITIATION);
	dst->sender_index = htole32(local_index);

	ret = handshake_start(hs->chaining_key, hs->hash, hs->remote_static);
	if (ret)
		goto out;
	/* e */
	ret = mix_new_ephemeral(hs, dst->unencrypted_ephemeral);
	if (ret)
		goto out;
	/* es */
	ret = mix_dh(hs->chaining_key, key, hs->ephemeral_private, hs->remote_static);
	if (ret)
		goto out;
	/* s */
	ret = encrypt_and_hash(dst->encrypted_static, hs->local->static_public, WGT_KEY_LEN, key,
			       hs->hash);
	if (ret)
		goto out;
	/* ss */
	ret = mix_precomputed_dh(hs->chaining_key, key, hs->precomputed_static_static);
	if (ret)
		goto out;
	/* {t} */
	ret = encrypt_and_hash(dst->encrypted_timestamp, timestamp, WGT_TIMESTAMP_LEN, key,
			       hs->hash);
	if (ret)
		goto out;

	hs->local_index = local_index;
	hs->state = WGT_HANDSHAKE_CREATED_INITIATION;
out:
	OPENSSL_cleanse(key, sizeof(key));
	if (ret)
		wgt_noise_handshake_clear(hs);
	return ret;
}

int wgt_noise_consume_initiation(const struct wgt_msg_initiation *src,
				 const struct wgt_noise_identity *local, wgt_noise_lookup_fn lookup,
				 void *arg, uint64_t now, struct wgt_noise_handshake **ret_hs)
{
	struct wgt_noise_handshake *hs = NULL;
	uint8_t ck[WGT_KEY_LEN], hash[WGT_KEY_LEN], key[WGT_KEY_LEN];
	uint8_t s[WGT_KEY_LEN], e[WGT_KEY_LEN], t[WGT_TIMESTAMP_LEN];
	bool replay, flood;
	int ret;

	if (!local || !local->has_identity)
		return -ENOKEY;

	ret = handshake_start(ck, hash, local->static_public);
	if (ret)
		goto out;
	/* e */
	memcpy(e, src->unencrypted_ephemeral, WGT_KEY_LEN);
	ret = mix_ephemeral(ck, hash, e);
	if (ret)
		goto out;
	/* es */
	ret = mix_dh(ck, key, local->static_private, e);
	if (ret)
		goto out;
	/* s */
	ret = decrypt_and_hash(s, src->encrypted_static, sizeof(src->encrypted_static), key, hash);
	if (ret)
		goto out;
	hs = lookup(arg, s);
	if (!hs) {
		ret = -ENOKEY;
		goto out;
	}
	/* ss */
	ret = ensure_static_static(hs);
	if (ret)
		goto out;
	ret = mix_precomputed_dh(ck, key, hs->precomputed_static_static);
	if (ret)
		goto out;
	/* {t} */
	ret = decrypt_and_hash(t, src->encrypted_timestamp, sizeof(src->encrypted_timestamp), key,
			       hash);
	if (ret)
		goto out;

	replay = !wgt_tai64n_after(t, hs->latest_timestamp);
	flood = hs->last_initiation_consumption &&
		hs->last_initiation_consumption + WGT_NSEC_PER_SEC / WGT_INITIATIONS_PER_SECOND > now;
	if (replay || flood) {
		ret = replay ? -ESTALE : -EBUSY;
		goto out;
	}

	/* Only now, with every check passed, does the peer's state change. */
	memcpy(hs->remote_ephemeral, e, WGT_KEY_LEN);
	memcpy(hs->latest_timestamp, t, WGT_TIMESTAMP_LEN);
	memcpy(hs->hash, hash, WGT_KEY_LEN);
	memcpy(hs->chaining_key, ck, WGT_KEY_LEN);
	OPENSSL_cleanse(hs->ephemeral_private, WGT_KEY_LEN);
	hs->remote_index = le32toh(src->sender_index);
	hs->last_initiation_consumption = now;
	hs->state = WGT_HANDSHAKE_CONSUMED_INITIATION;
	*ret_hs = hs;
out:
	OPENSSL_cleanse(ck, sizeof(ck));
	OPENSSL_cleanse(hash, sizeof(hash));
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(e, sizeof(e));
	OPENSSL_cleanse(t, sizeof(t));
	OPENSSL_cleanse(s, sizeof(s));
	return ret;
}

int wgt_noise_create_response(struct wgt_noise_handshake *hs, struct wgt_msg_response *dst,
			      uint32_t local_index)
{
	uint8_t key[WGT_KEY_LEN];
	int ret;

	if (hs->state != WGT_HANDSHAKE_CONSUMED_INITIATION)
		return -EINVAL;
	memset(dst, 0, sizeof(*dst));
	message_header(&dst->header, WGT_MSG_HANDSHAKE_RESPONSE);
	dst->sender_index = htole32(local_index);
	dst->receiver_index = htole32(hs->remote_index);

	/* e */
	ret = mix_new_ephemeral(hs, dst->unencrypted_ephemeral);
	if (ret)
		goto out;
	/* ee */
	ret = mix_dh(hs->chaining_key, NULL, hs->ephemeral_private, hs->remote_ephemeral);
	if (ret)
		goto out;
	/* se */
	ret = mix_dh(hs->chaining_key, NULL, hs->ephemeral_private, hs->remote_static);
	if (ret)
		goto out;
	/* psk */
	ret = mix_psk(hs->chaining_key, hs->hash, key, hs->preshared_key);
	if (ret)
		goto out;
	/* {} */
	ret = encrypt_and_hash(dst->encrypted_nothing, dst->encrypted_nothing, 0, key, hs->hash);
	if (ret)
		goto out;

	hs->local_index = local_index;
	hs->state = WGT_HANDSHAKE_CREATED_RESPONSE;
out:
	OPENSSL_cleanse(key, sizeof(key));
	if (ret)
		wgt_noise_handshake_clear(hs);
	return ret;
}

int wgt_noise_consume_response(struct wgt_noise_handshake *hs, const struct wgt_msg_response *src)
{
	uint8_t ck[WGT_KEY_LEN], hash[WGT_KEY_LEN], key[WGT_KEY_LEN], e[WGT_KEY_LEN];
	uint8_t nothing[1];
	int ret;

	if (hs->state != WGT_HANDSHAKE_CREATED_INITIATION ||
	    hs->local_index != le32toh(src->receiver_index))
		return -EINVAL;
	if (!hs->local || !hs->local->has_identity)
		return -ENOKEY;

	/* Work on copies: a forged response must not spoil the pending handshake. */
	memcpy(ck, hs->chaining_key, WGT_KEY_LEN);
	memcpy(hash, hs->hash, WGT_KEY_LEN);
	memcpy(e, src->unencrypted_ephemeral, WGT_KEY_LEN);
	/* e */
	ret = mix_ephemeral(ck, hash, e);
	if (ret)
		goto out;
	/* ee */
	ret = mix_dh(ck, NULL, hs->ephemeral_private, e);
	if (ret)
		goto out;
	/* se */
	ret = mix_dh(ck, NULL, hs->local->static_private, e);
	if (ret)
		goto out;
	/* psk */
	ret = mix_psk(ck, hash, key, hs->preshared_key);
	if (ret)
		goto out;
	/* {} */
	ret = decrypt_and_hash(nothing, src->encrypted_nothing, sizeof(src->encrypted_nothing), key,
			       hash);
	if (ret)
		goto out;

	memcpy(hs->remote_ephemeral, e, WGT_KEY_LEN);
	memcpy(hs->hash, hash, WGT_KEY_LEN);
	memcpy(hs->chaining_key, ck, WGT_KEY_LEN);
	hs->remote_index = le32toh(src->sender_index);
	hs->state = WGT_HANDSHAKE_CONSUMED_RESPONSE;
out:
	OPENSSL_cleanse(ck, sizeof(ck));
	OPENSSL_cleanse(hash, sizeof(hash));
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(e, sizeof(e));
	return ret;
}

void wgt_noise_keypair_free(struct wgt_noise_keypair *kp)
{
	if (!kp)
		return;
	OPENSSL_cleanse(kp, sizeof(*kp));
	free(kp);
}

static void default_retire(struct wgt_noise_keypair *kp, void *arg)
{
	wgt_noise_keypair_free(kp);
}

/*
 * Any thread. The slots' writers' lock. Holders only store to slots and
 * read them: no call, no allocation, so a waiter spins for a few stores
 * (or, rarely, for a holder the scheduler took the CPU from).
 */
static void slots_lock(struct wgt_noise_keypairs *kps)
{
	/* K1: acquire (S1), pairs with K2 of the previous holder: its slot changes are visible. */
	wgt_spin_lock(&kps->lock);
}

/* Lock holder only. */
static void slots_unlock(struct wgt_noise_keypairs *kps)
{
	/* K2: release (S2), pairs with K1 of the next holder. */
	wgt_spin_unlock(&kps->lock);
}

/* Keypairs a slot change dropped: retired once the lock is released. */
struct dropped {
	struct wgt_noise_keypair *kp[3];
	unsigned n;
};

static void drop(struct dropped *d, struct wgt_noise_keypair *kp)
{
	if (!kp)
		return;
	WGT_ASSERT(d->n < WGT_ARRAY_SIZE(d->kp));
	/* No longer for sending, from now on; readers of the flag need no ordering. */
	atomic_store_explicit(&kp->send_valid, false, memory_order_relaxed);
	d->kp[d->n++] = kp;
}

/* Control thread only, lock released. */
static void retire_dropped(struct wgt_noise_keypairs *kps, struct dropped *d)
{
	for (unsigned i = 0; i < d->n; i++)
		kps->retire(d->kp[i], kps->retire_arg);
	d->n = 0;
}

void wgt_noise_keypairs_init(struct wgt_noise_keypairs *kps)
{
	atomic_init(&kps->current, NULL);
	atomic_init(&kps->previous, NULL);
	atomic_init(&kps->next, NULL);
	wgt_spin_init(&kps->lock);
	kps->retire = default_retire;
	kps->retire_arg = NULL;
}

/*
 * Slot updates are release stores (P1: pairs with the acquire loads of
 * workers reading a slot), so a worker that sees a keypair sees it whole.
 * A keypair a confirming worker moves was published to it the same way,
 * or through the lock (K1/K2), so its own release store passes it on.
 */
static void slot_set(struct wgt_noise_keypair *_Atomic *slot, struct wgt_noise_keypair *kp)
{
	atomic_store_explicit(slot, kp, memory_order_release);
}

static struct wgt_noise_keypair *slot_get(struct wgt_noise_keypair *_Atomic *slot)
{
	/* Lock holders only: the lock (K1) orders what other holders wrote. */
	return atomic_load_explicit(slot, memory_order_relaxed);
}

/* Lock held. */
static void add_new_keypair(struct wgt_noise_keypairs *kps, struct wgt_noise_keypair *kp,
			    struct dropped *d)
{
	struct wgt_noise_keypair *previous = slot_get(&kps->previous);
	struct wgt_noise_keypair *current = slot_get(&kps->current);
	struct wgt_noise_keypair *next = slot_get(&kps->next);

	if (kp->is_initiator) {
		/*
		 * The initiator can send at once. A pending `next` (we were
		 * responder to a crossing handshake) was never confirmed: keep
		 * it as previous so late packets under it still decrypt, and
		 * drop the old current instead.
		 */
		if (next) {
			slot_set(&kps->next, NULL);
			slot_set(&kps->previous, next);
			drop(d, current);
		} else {
			slot_set(&kps->previous, current);
		}
		drop(d, previous);
		slot_set(&kps->current, kp);
	} else {
		/*
		 * The responder waits for the initiator's first data packet.
		 * `previous` empties here and stays empty while `next` is
		 * set, so its confirmation has nothing to retire.
		 */
		slot_set(&kps->next, kp);
		drop(d, next);
		slot_set(&kps->previous, NULL);
		drop(d, previous);
	}
}

int wgt_noise_begin_session(struct wgt_noise_handshake *hs, struct wgt_noise_keypairs *kps,
			    uint64_t now, struct wgt_noise_keypair **ret_kp)
{
	struct wgt_noise_keypair *kp = NULL;
	struct dropped d = { .n = 0 };
	bool initiator;
	void *mem;
	int ret;

	if (hs->state != WGT_HANDSHAKE_CONSUMED_RESPONSE &&
	    hs->state != WGT_HANDSHAKE_CREATED_RESPONSE)
		return -EINVAL;
	initiator = hs->state == WGT_HANDSHAKE_CONSUMED_RESPONSE;

	if (posix_memalign(&mem, WGT_CACHELINE, sizeof(*kp)))
		return -ENOMEM;
	kp = mem;
	memset(kp, 0, sizeof(*kp));

	/* (T_send_i, T_recv_i) = KDF2(C, empty); the responder's are swapped. */
	if (initiator)
		ret = wgt_kdf(kp->send_key, kp->recv_key, NULL, hs->chaining_key, NULL, 0);
	else
		ret = wgt_kdf(kp->recv_key, kp->send_key, NULL, hs->chaining_key, NULL, 0);
	if (ret) {
		wgt_noise_keypair_free(kp);
		wgt_noise_handshake_clear(hs);
		return ret;
	}
	kp->send_key_id = atomic_fetch_add_explicit(&next_key_id, 2, memory_order_relaxed);
	kp->recv_key_id = kp->send_key_id + 1;
	kp->birth = now;
	kp->local_index = hs->local_index;
	kp->remote_index = hs->remote_index;
	kp->is_initiator = initiator;
	atomic_init(&kp->send_counter, 0);
	atomic_init(&kp->send_valid, true);
	wgt_replay_init(&kp->replay);

	wgt_noise_handshake_clear(hs);
	slots_lock(kps);
	add_new_keypair(kps, kp, &d);
	slots_unlock(kps);
	retire_dropped(kps, &d);
	*ret_kp = kp;
	return 0;
}

#ifdef WGT_TEST_HOOKS
/*
 * Test builds only (a weak reference, NULL unless a test defines it): runs
 * between the unlocked look and the lock below, so a unit test can land a
 * control-thread change exactly in that window.
 */
extern void wgt_noise_test_confirm_window(struct wgt_noise_keypairs *kps) __attribute__((weak));
#endif

bool wgt_noise_received_with_keypair(struct wgt_noise_keypairs *kps, struct wgt_noise_keypair *kp)
{
	/*
	 * The common case, kp already current or previous: one relaxed load,
	 * no write. It only filters; the decision is taken under the lock.
	 */
	if (likely(!kp || atomic_load_explicit(&kps->next, memory_order_relaxed) != kp))
		return false;
#ifdef WGT_TEST_HOOKS
	if (wgt_noise_test_confirm_window)
		wgt_noise_test_confirm_window(kps);
#endif
	slots_lock(kps);
	/*
	 * Between the look and the lock the control thread may have put
	 * another keypair in `next` (a new handshake), dropped kp (a
	 * handshake we initiated, the keys zeroed, the peer stopped), or
	 * another worker may have confirmed kp: then there is nothing to do.
	 */
	if (slot_get(&kps->next) != kp) {
		slots_unlock(kps);
		return false;
	}
	/*
	 * Empty while `next` is set (add_new_keypair), so nothing leaves the
	 * set and nothing needs the control thread's retirement. Should that
	 * ever not hold, refusing beats losing a keypair.
	 */
	WGT_ASSERT(!slot_get(&kps->previous));
	if (unlikely(slot_get(&kps->previous))) {
		slots_unlock(kps);
		return false;
	}
	slot_set(&kps->previous, slot_get(&kps->current));
	/* Sealing threads that load current (P1) from here on use kp. */
	slot_set(&kps->current, kp);
	slot_set(&kps->next, NULL);
	slots_unlock(kps);
	return true;
}

void wgt_noise_keypairs_clear(struct wgt_noise_keypairs *kps)
{
	struct dropped d = { .n = 0 };

	slots_lock(kps);
	drop(&d, slot_get(&kps->current));
	slot_set(&kps->current, NULL);
	drop(&d, slot_get(&kps->previous));
	slot_set(&kps->previous, NULL);
	drop(&d, slot_get(&kps->next));
	slot_set(&kps->next, NULL);
	slots_unlock(kps);
	retire_dropped(kps, &d);
}

void wgt_noise_keypairs_expire_current(struct wgt_noise_keypairs *kps)
{
	struct wgt_noise_keypair *kp;

	slots_lock(kps);
	kp = slot_get(&kps->current);
	if (kp)
		atomic_store_explicit(&kp->send_valid, false, memory_order_relaxed);
	kp = slot_get(&kps->next);
	if (kp)
		atomic_store_explicit(&kp->send_valid, false, memory_order_relaxed);
	slots_unlock(kps);
}
