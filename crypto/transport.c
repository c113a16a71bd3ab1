/* SPDX-License-Identifier: MIT */
/* In-place sealing and opening of data messages with counters and the replay window. */
#include "crypto/transport.h"

#include <endian.h>
#include <errno.h>
#include <string.h>

#include "common/compiler.h"
#include "crypto/aead.h"
#include "crypto/aead_batch.h"
#include "crypto/noise.h"

int wgt_transport_encrypt_prepare(struct wgt_noise_keypair *kp, uint8_t *buf, size_t payload_len,
				  size_t cap, size_t mtu, uint64_t now, size_t *ret_len)
{
	struct wgt_msg_data *hdr = (struct wgt_msg_data *)buf;
	size_t padded = wgt_transport_padded_len(payload_len, mtu);
	size_t total = WGT_MSG_DATA_HEADER_LEN + padded + WGT_AEAD_TAG_LEN;
	uint64_t counter;

	if (unlikely(total > cap))
		return -ENOBUFS;
	if (unlikely(!atomic_load_explicit(&kp->send_valid, memory_order_relaxed) ||
		     wgt_has_expired(kp->birth, WGT_REJECT_AFTER_TIME, now)))
		return -EKEYEXPIRED;
	/* Relaxed: the counter only needs to be unique, ordering is the AEAD's business. */
	counter = atomic_fetch_add_explicit(&kp->send_counter, 1, memory_order_relaxed);
	if (unlikely(counter >= WGT_REJECT_AFTER_MESSAGES)) {
		atomic_store_explicit(&kp->send_valid, false, memory_order_relaxed);
		return -EKEYEXPIRED;
	}

	memset(buf + WGT_MSG_DATA_HEADER_LEN + payload_len, 0, padded - payload_len);
	hdr->header.type = htole32(WGT_MSG_DATA);
	hdr->receiver_index = htole32(kp->remote_index);
	hdr->counter = htole64(counter);
	*ret_len = total;
	return 0;
}

void wgt_transport_seal_item(uint8_t *buf, size_t len, struct wgt_aead_batch_item *it)
{
	const struct wgt_msg_data *hdr = (const struct wgt_msg_data *)buf;

	it->dst = buf + WGT_MSG_DATA_HEADER_LEN;
	it->src = it->dst;
	it->len = len - WGT_MSG_DATA_MIN_LEN;
	it->nonce = le64toh(hdr->counter);
}

int wgt_transport_encrypt(struct wgt_aead *a, struct wgt_noise_keypair *kp, uint8_t *buf,
			  size_t payload_len, size_t cap, size_t mtu, uint64_t now,
			  size_t *ret_len)
{
	struct wgt_aead_batch_item it;
	size_t total;
	int r;

	r = wgt_transport_encrypt_prepare(kp, buf, payload_len, cap, mtu, now, &total);
	if (unlikely(r))
		return r;
	wgt_transport_seal_item(buf, total, &it);
	if (unlikely(wgt_aead_seal(a, kp->send_key_id, kp->send_key, it.dst, it.src, it.len,
				   it.nonce)))
		return -EIO;
	*ret_len = total;
	return 0;
}

int wgt_transport_decrypt_check(const struct wgt_noise_keypair *kp, const uint8_t *buf, size_t len,
				uint64_t now, uint64_t *ret_counter)
{
	const struct wgt_msg_data *hdr = (const struct wgt_msg_data *)buf;
	uint64_t counter;

	if (unlikely(wgt_msg_classify(buf, len) != WGT_MSG_DATA))
		return -EINVAL;
	counter = le64toh(hdr->counter);
	if (unlikely(counter >= WGT_REJECT_AFTER_MESSAGES ||
		     wgt_has_expired(kp->birth, WGT_REJECT_AFTER_TIME, now)))
		return -EKEYEXPIRED;
	*ret_counter = counter;
	return 0;
}

int wgt_transport_decrypt_commit(struct wgt_noise_keypair *kp, uint64_t counter)
{
	/* Only an authentic counter may move the window. */
	return wgt_replay_check_and_update(&kp->replay, counter) ? 0 : -ESTALE;
}

int wgt_transport_decrypt_to(struct wgt_aead *a, struct wgt_noise_keypair *kp,
			     const uint8_t *buf, size_t len, uint8_t *dst, uint64_t now,
			     size_t *ret_payload_len)
{
	const struct wgt_msg_data *hdr = (const struct wgt_msg_data *)buf;
	uint64_t counter;
	int ret;

	ret = wgt_transport_decrypt_check(kp, buf, len, now, &counter);
	if (unlikely(ret))
		return ret;
	ret = wgt_aead_open(a, kp->recv_key_id, kp->recv_key, dst, hdr->encrypted_data,
			    len - WGT_MSG_DATA_HEADER_LEN, counter);
	if (unlikely(ret))
		return ret == -EBADMSG ? -EBADMSG : -EIO;
	ret = wgt_transport_decrypt_commit(kp, counter);
	if (unlikely(ret))
		return ret;
	*ret_payload_len = len - WGT_MSG_DATA_MIN_LEN;
	return 0;
}

int wgt_transport_decrypt(struct wgt_aead *a, struct wgt_noise_keypair *kp, uint8_t *buf,
			  size_t len, uint64_t now, size_t *ret_payload_len)
{
	return wgt_transport_decrypt_to(a, kp, buf, len, buf + WGT_MSG_DATA_HEADER_LEN, now,
					ret_payload_len);
}
