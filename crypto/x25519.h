/* SPDX-License-Identifier: MIT */
/* X25519 (RFC 7748) on OpenSSL EVP_PKEY. */
#ifndef WGT_CRYPTO_X25519_H
#define WGT_CRYPTO_X25519_H

#include <stdint.h>

#define WGT_X25519_KEY_LEN 32

/* Clamps a private scalar in place (RFC 7748 section 5). */
void wgt_x25519_clamp(uint8_t key[WGT_X25519_KEY_LEN]);

/* Fresh clamped private key and its public key. Returns 0 or -errno. */
int wgt_x25519_generate(uint8_t priv[WGT_X25519_KEY_LEN], uint8_t pub[WGT_X25519_KEY_LEN]);

/* Public key of `priv` (clamped as X25519 does). Returns 0 or -errno. */
int wgt_x25519_public(uint8_t pub[WGT_X25519_KEY_LEN], const uint8_t priv[WGT_X25519_KEY_LEN]);

/*
 * X25519(priv, pub). Returns 0, -EINVAL when the shared secret is all
 * zeros (a low-order public key; the caller must abort the handshake), or
 * -ENOMEM. `out` is zeroed on failure.
 */
int wgt_x25519(uint8_t out[WGT_X25519_KEY_LEN], const uint8_t priv[WGT_X25519_KEY_LEN],
	       const uint8_t pub[WGT_X25519_KEY_LEN]);

#endif
