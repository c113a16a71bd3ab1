/* SPDX-License-Identifier: MIT */
/*
 * ChaCha20-Poly1305 (RFC 8439, empty associated data, WireGuard's nonce:
 * 32 zero bits then the 64-bit little-endian counter) over a batch of
 * messages under one key, with AVX-512. See aead_batch.c for why this is
 * not OpenSSL.
 */
#ifndef WGT_CRYPTO_AEAD_BATCH_H
#define WGT_CRYPTO_AEAD_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wgt_aead_batch_item {
	uint8_t *dst;        /* len bytes out; seal writes the 16-byte tag at dst + len */
	const uint8_t *src;  /* len bytes in; open reads the tag at src + len */
	size_t len;          /* without the tag */
	uint64_t nonce;
	int result;          /* set by open: 0, or -EBADMSG (dst then untouched) */
};

/*
 * Fewest messages worth a batch call: a pass costs about the same for 1
 * and 16 messages, so below this OpenSSL's one-message code is faster.
 * Measured for 1420-byte seals (IFMA Poly1305): 1 message 2.3 us, 4
 * messages 0.78 us each, 6 0.67, 8 0.60; OpenSSL 0.84 us.
 */
#define WGT_AEAD_BATCH_MIN 6

/* Any thread. Whether this CPU runs the batch code (AVX-512 F and BW). */
bool wgt_aead_batch_supported(void);

/*
 * Any thread, only when wgt_aead_batch_supported(). dst and src of one
 * item are either equal or do not overlap; items do not overlap each other.
 */
void wgt_aead_batch_seal(const uint8_t key[32], struct wgt_aead_batch_item *it, size_t n);
void wgt_aead_batch_open(const uint8_t key[32], struct wgt_aead_batch_item *it, size_t n);

#endif
