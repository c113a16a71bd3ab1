/* SPDX-License-Identifier: MIT */
/* BLAKE2s hash, keyed BLAKE2s MAC, HMAC-BLAKE2s and the WireGuard KDF on OpenSSL EVP, plus the one-time algorithm fetch. */
#include "crypto/blake2s.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "crypto/evp_pvt.h"

/*
 * Fetched once and kept for the life of the process: explicit fetches skip
 * the per-call name lookup that EVP_get_digestbyname()-style implicit
 * fetching would pay on every handshake.
 */
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_result = -ENOSYS;
static EVP_MD *md_blake2s;
static EVP_MAC *mac_blake2s;
static EVP_MAC *mac_hmac;
static EVP_CIPHER *cipher_chacha20_poly1305;

static void fetch_algorithms(void)
{
	md_blake2s = EVP_MD_fetch(NULL, "BLAKE2S-256", NULL);
	mac_blake2s = EVP_MAC_fetch(NULL, "BLAKE2SMAC", NULL);
	mac_hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	cipher_chacha20_poly1305 = EVP_CIPHER_fetch(NULL, "ChaCha20-Poly1305", NULL);
	if (!md_blake2s || !mac_blake2s || !mac_hmac || !cipher_chacha20_poly1305) {
		EVP_MD_free(md_blake2s);
		EVP_MAC_free(mac_blake2s);
		EVP_MAC_free(mac_hmac);
		EVP_CIPHER_free(cipher_chacha20_poly1305);
		md_blake2s = NULL;
		mac_blake2s = NULL;
		mac_hmac = NULL;
		cipher_chacha20_poly1305 = NULL;
		init_result = -ENOSYS;
		return;
	}
	init_result = 0;
}

/* Any thread; pthread_once orders the fetch before every later reader. */
int wgt_crypto_init(void)
{
	if (pthread_once(&init_once, fetch_algorithms) != 0)
		return -ENOSYS;
	return init_result;
}

/* Any thread. */
const EVP_CIPHER *wgt_evp_chacha20_poly1305(void)
{
	return wgt_crypto_init() == 0 ? cipher_chacha20_poly1305 : NULL;
}

/* Any thread. */
int wgt_blake2s_hash(uint8_t out[WGT_BLAKE2S_HASH_LEN], const void *in, size_t len)
{
	return wgt_blake2s_hash2(out, in, len, NULL, 0);
}

/* Any thread. */
int wgt_blake2s_hash2(uint8_t out[WGT_BLAKE2S_HASH_LEN], const void *a, size_t alen,
		      const void *b, size_t blen)
{
	EVP_MD_CTX *ctx = NULL;
	unsigned int outl = 0;
	int ret;

	ret = wgt_crypto_init();
	if (ret)
		return ret;
	ret = -ENOMEM;
	ctx = EVP_MD_CTX_new();
	if (!ctx)
		goto out;
	if (!EVP_DigestInit_ex(ctx, md_blake2s, NULL))
		goto out;
	if (alen && !EVP_DigestUpdate(ctx, a, alen))
		goto out;
	if (blen && !EVP_DigestUpdate(ctx, b, blen))
		goto out;
	if (!EVP_DigestFinal_ex(ctx, out, &outl) || outl != WGT_BLAKE2S_HASH_LEN)
		goto out;
	ret = 0;
out:
	/* The digest state is derived from secret inputs; EVP_MD_CTX_free wipes it. */
	EVP_MD_CTX_free(ctx);
	return ret;
}

/* Any thread. */
int wgt_blake2s_keyed(uint8_t *out, size_t outlen, const uint8_t *key, size_t keylen,
		      const void *in, size_t len)
{
	OSSL_PARAM params[2];
	EVP_MAC_CTX *ctx = NULL;
	size_t outl = 0;
	int ret;

	if (outlen < 1 || outlen > WGT_BLAKE2S_HASH_LEN || keylen < 1 || keylen > 32)
		return -EINVAL;
	ret = wgt_crypto_init();
	if (ret)
		return ret;
	params[0] = OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &outlen);
	params[1] = OSSL_PARAM_construct_end();

	ret = -ENOMEM;
	ctx = EVP_MAC_CTX_new(mac_blake2s);
	if (!ctx)
		goto out;
	if (!EVP_MAC_init(ctx, key, keylen, params))
		goto out;
	if (len && !EVP_MAC_update(ctx, in, len))
		goto out;
	if (!EVP_MAC_final(ctx, out, &outl, outlen) || outl != outlen)
		goto out;
	ret = 0;
out:
	EVP_MAC_CTX_free(ctx);
	return ret;
}

/*
 * A fresh HMAC-BLAKE2s context keyed with `key`, or NULL. OpenSSL's HMAC
 * treats a NULL key as "keep the previous key", so an empty key is passed
 * as a non-NULL pointer of length 0.
 */
static EVP_MAC_CTX *hmac_new(const uint8_t *key, size_t keylen)
{
	static const uint8_t empty_key[1];
	OSSL_PARAM params[2];
	EVP_MAC_CTX *ctx;

	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"BLAKE2S-256", 0);
	params[1] = OSSL_PARAM_construct_end();
	ctx = EVP_MAC_CTX_new(mac_hmac);
	if (!ctx)
		return NULL;
	if (!EVP_MAC_init(ctx, keylen ? key : empty_key, keylen, params)) {
		EVP_MAC_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

/* Finishes one HMAC into out (32 bytes). Returns 0 or -ENOMEM. */
static int hmac_final(EVP_MAC_CTX *ctx, uint8_t out[WGT_BLAKE2S_HASH_LEN])
{
	size_t outl = 0;

	if (!EVP_MAC_final(ctx, out, &outl, WGT_BLAKE2S_HASH_LEN) || outl != WGT_BLAKE2S_HASH_LEN)
		return -ENOMEM;
	return 0;
}

/* Any thread. */
int wgt_hmac_blake2s(uint8_t out[WGT_BLAKE2S_HASH_LEN], const uint8_t *key, size_t keylen,
		     const void *in, size_t len)
{
	EVP_MAC_CTX *ctx = NULL;
	int ret;

	ret = wgt_crypto_init();
	if (ret)
		return ret;
	ret = -ENOMEM;
	ctx = hmac_new(key, keylen);
	if (!ctx)
		goto out;
	if (len && !EVP_MAC_update(ctx, in, len))
		goto out;
	ret = hmac_final(ctx, out);
out:
	/* HMAC_CTX_free behind this wipes the ipad/opad key states. */
	EVP_MAC_CTX_free(ctx);
	return ret;
}

/*
 * Any thread. HKDF as the whitepaper writes it:
 *   tau0 = HMAC(C, input)
 *   t1 = HMAC(tau0, 0x1), t2 = HMAC(tau0, t1 || 0x2), t3 = HMAC(tau0, t2 || 0x3)
 * All three rounds under tau0 share one MAC context: EVP_MAC_init() with a
 * NULL key rewinds HMAC to its keyed state without re-deriving the pads.
 * Outputs are computed into a local buffer first so that callers may pass
 * `chaining_key` itself as t1.
 */
int wgt_kdf(uint8_t *t1, uint8_t *t2, uint8_t *t3, const uint8_t chaining_key[32],
	    const void *input, size_t len)
{
	uint8_t *outs[3] = { t1, t2, t3 };
	uint8_t tau0[WGT_BLAKE2S_HASH_LEN];
	uint8_t t[3][WGT_BLAKE2S_HASH_LEN];
	EVP_MAC_CTX *ctx = NULL;
	size_t n, i;
	int ret;

	ret = wgt_crypto_init();
	if (ret)
		return ret;
	for (n = 0; n < 3 && outs[n]; n++)
		;

	ret = wgt_hmac_blake2s(tau0, chaining_key, 32, input, len);
	if (ret)
		goto out;
	if (n == 0)
		goto out;

	ret = -ENOMEM;
	ctx = hmac_new(tau0, sizeof(tau0));
	if (!ctx)
		goto out;
	for (i = 0; i < n; i++) {
		uint8_t counter = (uint8_t)(i + 1);

		if (i > 0) {
			if (!EVP_MAC_init(ctx, NULL, 0, NULL))
				goto out;
			if (!EVP_MAC_update(ctx, t[i - 1], sizeof(t[i - 1])))
				goto out;
		}
		if (!EVP_MAC_update(ctx, &counter, 1))
			goto out;
		if (hmac_final(ctx, t[i]))
			goto out;
	}
	for (i = 0; i < n; i++)
		memcpy(outs[i], t[i], sizeof(t[i]));
	ret = 0;
out:
	EVP_MAC_CTX_free(ctx);
	OPENSSL_cleanse(tau0, sizeof(tau0));
	OPENSSL_cleanse(t, sizeof(t));
	return ret;
}
