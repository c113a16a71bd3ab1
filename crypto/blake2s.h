/* SPDX-License-Identifier: MIT */
/* BLAKE2s-256 HASH, keyed BLAKE2s-128 MAC, HMAC-BLAKE2s and the WireGuard KDF, on OpenSSL EVP. */
#ifndef WGT_CRYPTO_BLAKE2S_H
#define WGT_CRYPTO_BLAKE2S_H

#include <stddef.h>
#include <stdint.h>

#define WGT_BLAKE2S_HASH_LEN 32
#define WGT_BLAKE2S_BLOCK_LEN 64

/*
 * Fetches the OpenSSL algorithms once per process. Thread-safe and
 * idempotent; every other function in crypto/ calls it. Returns 0 or
 * -ENOSYS when this OpenSSL lacks an algorithm WireGuard needs.
 */
int wgt_crypto_init(void);

/* HASH(in): unkeyed BLAKE2s-256. Returns 0 or -ENOMEM. */
int wgt_blake2s_hash(uint8_t out[WGT_BLAKE2S_HASH_LEN], const void *in, size_t len);

/* HASH(a || b) without concatenating; the Noise MixHash step. Returns 0 or -ENOMEM. */
int wgt_blake2s_hash2(uint8_t out[WGT_BLAKE2S_HASH_LEN], const void *a, size_t alen,
		      const void *b, size_t blen);

/*
 * Keyed BLAKE2s with an `outlen`-byte digest (1..32); key 1..32 bytes. With
 * outlen 16 this is WireGuard's MAC (BLAKE2SMAC, size 16). Returns 0,
 * -EINVAL or -ENOMEM.
 */
int wgt_blake2s_keyed(uint8_t *out, size_t outlen, const uint8_t *key, size_t keylen,
		      const void *in, size_t len);

/* HMAC(key, in) over BLAKE2s-256 (RFC 2104, 64-byte block). Returns 0 or -ENOMEM. */
int wgt_hmac_blake2s(uint8_t out[WGT_BLAKE2S_HASH_LEN], const uint8_t *key, size_t keylen,
		     const void *in, size_t len);

/*
 * WireGuard's KDF_n (HKDF with HMAC-BLAKE2s, whitepaper 5.4): writes up to
 * three 32-byte outputs t1, t2, t3; pass NULL for the ones not wanted (an
 * output after a NULL one is not computed). Returns 0 or -ENOMEM.
 */
int wgt_kdf(uint8_t *t1, uint8_t *t2, uint8_t *t3, const uint8_t chaining_key[32],
	    const void *input, size_t len);

#endif
