/* SPDX-License-Identifier: MIT */
/* X25519 key generation and Diffie-Hellman (RFC 7748) on OpenSSL EVP_PKEY. */
#include "crypto/x25519.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

/* Any thread. */
void wgt_x25519_clamp(uint8_t key[WGT_X25519_KEY_LEN])
{
	key[0] &= 248;
	key[31] &= 127;
	key[31] |= 64;
}

/* Any thread. */
int wgt_x25519_public(uint8_t pub[WGT_X25519_KEY_LEN], const uint8_t priv[WGT_X25519_KEY_LEN])
{
	EVP_PKEY *key;
	size_t publen = WGT_X25519_KEY_LEN;
	int ret = -ENOMEM;

	key = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, priv, WGT_X25519_KEY_LEN);
	if (!key)
		goto out;
	if (!EVP_PKEY_get_raw_public_key(key, pub, &publen) || publen != WGT_X25519_KEY_LEN)
		goto out;
	ret = 0;
out:
	/* The ECX key free wipes the private scalar. */
	EVP_PKEY_free(key);
	return ret;
}

/* Any thread. */
int wgt_x25519_generate(uint8_t priv[WGT_X25519_KEY_LEN], uint8_t pub[WGT_X25519_KEY_LEN])
{
	uint8_t k[WGT_X25519_KEY_LEN];
	int ret;

	if (RAND_bytes(k, sizeof(k)) != 1) {
		ret = -EIO;
		goto out;
	}
	wgt_x25519_clamp(k);
	ret = wgt_x25519_public(pub, k);
	if (ret)
		goto out;
	memcpy(priv, k, sizeof(k));
out:
	OPENSSL_cleanse(k, sizeof(k));
	return ret;
}

/* Constant-time: 1 when all bytes are zero, else 0. */
static int is_all_zero(const uint8_t *p, size_t len)
{
	uint8_t acc = 0;
	size_t i;

	for (i = 0; i < len; i++)
		acc |= p[i];
	return (int)(1 & ((acc - 1U) >> 8));
}

/*
 * Any thread. OpenSSL itself refuses to return an all-zero shared secret
 * (the derive fails), so a failed derive is reported as -EINVAL too; the
 * explicit check keeps the contract independent of that behaviour.
 */
int wgt_x25519(uint8_t out[WGT_X25519_KEY_LEN], const uint8_t priv[WGT_X25519_KEY_LEN],
	       const uint8_t pub[WGT_X25519_KEY_LEN])
{
	uint8_t shared[WGT_X25519_KEY_LEN];
	EVP_PKEY *key = NULL, *peer = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	size_t outlen = sizeof(shared);
	int ret = -ENOMEM;

	key = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, priv, WGT_X25519_KEY_LEN);
	if (!key)
		goto out;
	peer = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, pub, WGT_X25519_KEY_LEN);
	if (!peer)
		goto out;
	ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
	if (!ctx)
		goto out;
	if (EVP_PKEY_derive_init(ctx) <= 0)
		goto out;
	/* Every 32-byte string is a valid X25519 u-coordinate: nothing to validate. */
	if (EVP_PKEY_derive_set_peer_ex(ctx, peer, 0) <= 0)
		goto out;
	/*
	 * A low-order peer key is attacker-controlled and expected: drop the
	 * error OpenSSL queues for it so floods do not leave stale entries in
	 * this thread's error queue for unrelated later callers.
	 */
	ERR_set_mark();
	if (EVP_PKEY_derive(ctx, shared, &outlen) <= 0 || outlen != sizeof(shared)) {
		ERR_pop_to_mark();
		ret = -EINVAL;
		goto out;
	}
	ERR_clear_last_mark();
	if (is_all_zero(shared, sizeof(shared))) {
		ret = -EINVAL;
		goto out;
	}
	memcpy(out, shared, sizeof(shared));
	ret = 0;
out:
	if (ret)
		OPENSSL_cleanse(out, WGT_X25519_KEY_LEN);
	OPENSSL_cleanse(shared, sizeof(shared));
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(peer);
	EVP_PKEY_free(key);
	return ret;
}
