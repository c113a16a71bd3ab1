/* SPDX-License-Identifier: MIT */
/*
 * Data messages (type 4, whitepaper 5.4.6): encrypt and decrypt in place.
 *
 * Buffer layout, the same on both sides, so a packet never moves:
 *
 *   | 16-byte header | payload, zero padded to 16 | 16-byte tag |
 *   ^ buf            ^ buf + WGT_MSG_DATA_HEADER_LEN
 *
 * The caller reads the plaintext packet to buf + 16 and leaves room for
 * padding and the tag after it (WGT_TRANSPORT_OVERHEAD_MAX).
 */
#ifndef WGT_CRYPTO_TRANSPORT_H
#define WGT_CRYPTO_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/messages.h"

struct wgt_aead;
struct wgt_noise_keypair;

/* Bytes a data message adds around the payload, at most. */
#define WGT_TRANSPORT_OVERHEAD_MAX (WGT_MSG_DATA_HEADER_LEN + (WGT_MSG_PADDING - 1) + WGT_AEAD_TAG_LEN)

/* Padded payload length: up to a multiple of 16, but never past the MTU (0 = no MTU). */
static inline size_t wgt_transport_padded_len(size_t len, size_t mtu)
{
	size_t padded = (len + WGT_MSG_PADDING - 1) & ~(size_t)(WGT_MSG_PADDING - 1);

	if (mtu && len <= mtu && padded > mtu)
		padded = mtu;
	return padded;
}

/*
 * Any thread; `a` is the calling thread's own. Takes the next send counter
 * of `kp` and seals the payload at buf + 16 in place. Three outcomes:
 * 0 and *ret_len = the datagram's length (sent);
 * -EKEYEXPIRED when kp must not send (invalid, older than
 *   REJECT_AFTER_TIME, or out of counters): a handshake is needed;
 * -ENOBUFS when `cap` cannot hold the message, -EIO on a crypto failure.
 */
int wgt_transport_encrypt(struct wgt_aead *a, struct wgt_noise_keypair *kp, uint8_t *buf,
			  size_t payload_len, size_t cap, size_t mtu, uint64_t now,
			  size_t *ret_len);

/*
 * Any thread; `a` is the calling thread's own. Opens the data message of
 * `len` bytes at buf (its receiver index already matched kp) in place and
 * checks the counter against the replay window. Returns 0 with the padded
 * plaintext at buf + 16, *ret_payload_len bytes (0 for a keepalive), or:
 * -EINVAL  shorter than a keepalive or not type 4;
 * -EKEYEXPIRED  kp is older than REJECT_AFTER_TIME or the counter is past
 *          REJECT_AFTER_MESSAGES;
 * -EBADMSG authentication failed;
 * -ESTALE  a replayed or too old counter (the packet was authentic).
 */
int wgt_transport_decrypt(struct wgt_aead *a, struct wgt_noise_keypair *kp, uint8_t *buf,
			  size_t len, uint64_t now, size_t *ret_payload_len);
/*
 * As wgt_transport_decrypt(), but the plaintext goes to dst (which may not
 * overlap buf unless it is buf + 16) and buf is left as it was, so a worker
 * can decrypt the datagrams of one coalesced UDP read straight into the
 * buffers it will hand to the TUN device. dst has room for len - 32 bytes.
 */
int wgt_transport_decrypt_to(struct wgt_aead *a, struct wgt_noise_keypair *kp,
			     const uint8_t *buf, size_t len, uint8_t *dst, uint64_t now,
			     size_t *ret_payload_len);

/*
 * The same in steps, for a worker that seals or opens a whole batch at once
 * (wgt_aead_seal_many/open_many):
 *
 * Sending: wgt_transport_encrypt_prepare() does everything
 * wgt_transport_encrypt() does except sealing (same results; the header,
 * counter and padding are written); wgt_transport_seal_item() then
 * describes the message of *ret_len bytes at buf for sealing in place.
 *
 * Receiving: wgt_transport_decrypt_check() does the checks before opening
 * (-EINVAL, -EKEYEXPIRED) and gives the counter; the caller opens
 * buf + 16, len - 32 bytes, tag after it, with that counter as nonce;
 * only after a successful open, wgt_transport_decrypt_commit() moves the
 * replay window (0, or -ESTALE for a replay).
 */
struct wgt_aead_batch_item;
int wgt_transport_encrypt_prepare(struct wgt_noise_keypair *kp, uint8_t *buf, size_t payload_len,
				  size_t cap, size_t mtu, uint64_t now, size_t *ret_len);
void wgt_transport_seal_item(uint8_t *buf, size_t len, struct wgt_aead_batch_item *it);
int wgt_transport_decrypt_check(const struct wgt_noise_keypair *kp, const uint8_t *buf, size_t len,
				uint64_t now, uint64_t *ret_counter);
int wgt_transport_decrypt_commit(struct wgt_noise_keypair *kp, uint64_t counter);

#endif
