/* SPDX-License-Identifier: MIT */
/* ChaCha20-Poly1305 and XChaCha20-Poly1305 on OpenSSL EVP, with a re-key-avoiding data-path context. */
#include "crypto/aead.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <openssl/core_names.h>
#include <openssl/params.h>

#include "common/compiler.h"
#include "crypto/aead_pvt.h"
#include "crypto/aead_batch.h"
#include "crypto/evp_pvt.h"

#define AEAD_IV_LEN 12

/* EVP lengths are int; larger buffers are fed in chunks of this many bytes. */
#define EVP_CHUNK ((size_t)INT_MAX & ~(size_t)63)

/*
 * One EVP context per direction: a worker seals (TUN -> UDP) and opens
 * (UDP -> TUN) in turns, and with a single context every turn would re-key.
 */
struct aead_dir {
	EVP_CIPHER_CTX *ctx;      /* the EVP path, when prov is NULL */
	void *pctx;               /* the provider's own context, when prov is set */
	uint64_t key_id;          /* key loaded, 0 when none is trusted */
};

struct wgt_aead {
	const struct wgt_aead_provider *prov;
	bool batch;             /* the AVX-512 batch code (aead_batch.c) seals and opens */
	struct aead_dir dir[2]; /* indexed by enc: 0 open, 1 seal */
};

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static uint32_t rotl32(uint32_t v, int n)
{
	return (v << n) | (v >> (32 - n));
}

#define QUARTER_ROUND(a, b, c, d)                     \
	do {                                          \
		a += b; d = rotl32(d ^ a, 16);        \
		c += d; b = rotl32(b ^ c, 12);        \
		a += b; d = rotl32(d ^ a, 8);         \
		c += d; b = rotl32(b ^ c, 7);         \
	} while (0)

/*
 * Any thread. Written here because OpenSSL has no HChaCha20 (its ChaCha20
 * only runs the full keystream function with the feed-forward addition,
 * whose output cannot be turned back into the raw permuted state without
 * knowing the input, which here is the secret key). HChaCha20 is the
 * ChaCha20 block function on (constants, key, 16-byte nonce) without the
 * final addition, keeping state words 0-3 and 12-15, which are the ones an
 * attacker cannot solve for.
 */
void wgt_hchacha20(uint8_t out[32], const uint8_t nonce[WGT_HCHACHA_NONCE_LEN],
		   const uint8_t key[WGT_AEAD_KEY_LEN])
{
	uint32_t x[16];
	int i;

	x[0] = 0x61707865; /* "expand 32-byte k" */
	x[1] = 0x3320646e;
	x[2] = 0x79622d32;
	x[3] = 0x6b206574;
	for (i = 0; i < 8; i++)
		x[4 + i] = get_le32(key + 4 * i);
	for (i = 0; i < 4; i++)
		x[12 + i] = get_le32(nonce + 4 * i);

	for (i = 0; i < 10; i++) {
		QUARTER_ROUND(x[0], x[4], x[8], x[12]);
		QUARTER_ROUND(x[1], x[5], x[9], x[13]);
		QUARTER_ROUND(x[2], x[6], x[10], x[14]);
		QUARTER_ROUND(x[3], x[7], x[11], x[15]);
		QUARTER_ROUND(x[0], x[5], x[10], x[15]);
		QUARTER_ROUND(x[1], x[6], x[11], x[12]);
		QUARTER_ROUND(x[2], x[7], x[8], x[13]);
		QUARTER_ROUND(x[3], x[4], x[9], x[14]);
	}

	for (i = 0; i < 4; i++) {
		put_le32(out + 4 * i, x[i]);
		put_le32(out + 16 + 4 * i, x[12 + i]);
	}
	OPENSSL_cleanse(x, sizeof(x));
}

/* WireGuard's 96-bit nonce: 32 zero bits, then the counter little-endian. */
static void make_iv(uint8_t iv[AEAD_IV_LEN], uint64_t counter)
{
	memset(iv, 0, 4);
	for (int i = 0; i < 8; i++, counter >>= 8)
		iv[4 + i] = (uint8_t)counter;
}

/* EVP_CipherUpdate over any size_t length; out NULL feeds AAD. Returns 1 or 0 as EVP does. */
static int cipher_update(EVP_CIPHER_CTX *ctx, uint8_t *out, const uint8_t *in, size_t len)
{
	while (len) {
		size_t n = WGT_MIN(len, EVP_CHUNK);
		int outl = 0;

		if (!EVP_CipherUpdate(ctx, out, &outl, in, (int)n))
			return 0;
		if (out && (size_t)outl != n)
			return 0;
		in += n;
		if (out)
			out += n;
		len -= n;
	}
	return 1;
}

/*
 * Runs one seal on a ctx already keyed and IV'd for encryption: dst gets
 * len bytes then the tag. Returns 0 or -EIO.
 */
static int seal_keyed(EVP_CIPHER_CTX *ctx, uint8_t *dst, const uint8_t *src, size_t len,
		      const uint8_t *ad, size_t adlen)
{
	int outl = 0;

	if (!cipher_update(ctx, NULL, ad, adlen) || !cipher_update(ctx, dst, src, len))
		return -EIO;
	if (!EVP_CipherFinal_ex(ctx, dst + len, &outl) || outl != 0)
		return -EIO;
	if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, WGT_AEAD_TAG_SIZE, dst + len) <= 0)
		return -EIO;
	return 0;
}

/*
 * Runs one open on a ctx already keyed and IV'd for decryption: src holds
 * len bytes of ciphertext then the tag. Returns 0, -EBADMSG (dst wiped) or
 * -EIO.
 */
static int open_keyed(EVP_CIPHER_CTX *ctx, uint8_t *dst, const uint8_t *src, size_t len,
		      const uint8_t *ad, size_t adlen)
{
	uint8_t tag[WGT_AEAD_TAG_SIZE];
	int outl = 0;

	/* Copy the tag out first: with dst == src nothing may overwrite it, but stay independent of layout. */
	memcpy(tag, src + len, sizeof(tag));
	if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, sizeof(tag), tag) <= 0)
		return -EIO;
	if (!cipher_update(ctx, NULL, ad, adlen) || !cipher_update(ctx, dst, src, len)) {
		OPENSSL_cleanse(dst, len);
		return -EIO;
	}
	/* The provider compares tags with CRYPTO_memcmp. */
	if (EVP_CipherFinal_ex(ctx, dst + len, &outl) <= 0) {
		OPENSSL_cleanse(dst, len);
		return -EBADMSG;
	}
	return 0;
}

/*
 * A fresh context keyed with `key` and a 12-byte IV for one operation.
 * Returns 0 and the context, or -ENOSYS/-ENOMEM/-EIO.
 */
static int keyed_ctx(const uint8_t key[WGT_AEAD_KEY_LEN], const uint8_t iv[AEAD_IV_LEN], int enc,
		     EVP_CIPHER_CTX **ret_ctx)
{
	const EVP_CIPHER *cipher = wgt_evp_chacha20_poly1305();
	EVP_CIPHER_CTX *ctx;

	if (!cipher)
		return -ENOSYS;
	ctx = EVP_CIPHER_CTX_new();
	if (!ctx)
		return -ENOMEM;
	if (!EVP_CipherInit_ex(ctx, cipher, NULL, NULL, NULL, enc) ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, AEAD_IV_LEN, NULL) <= 0 ||
	    !EVP_CipherInit_ex(ctx, NULL, NULL, key, iv, enc)) {
		EVP_CIPHER_CTX_free(ctx);
		return -EIO;
	}
	*ret_ctx = ctx;
	return 0;
}

/* One-shot seal with an explicit 12-byte IV. Returns 0, -ENOSYS, -ENOMEM or -EIO. */
static int seal_iv(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t *ad, size_t adlen,
		   const uint8_t iv[AEAD_IV_LEN], const uint8_t key[WGT_AEAD_KEY_LEN])
{
	EVP_CIPHER_CTX *ctx;
	int ret = keyed_ctx(key, iv, 1, &ctx);

	if (ret)
		return ret;
	ret = seal_keyed(ctx, dst, src, len, ad, adlen);
	/* Frees and wipes the key schedule. */
	EVP_CIPHER_CTX_free(ctx);
	return ret;
}

/* One-shot open with an explicit 12-byte IV. Returns 0, -EBADMSG, -EINVAL, -ENOMEM or -EIO. */
static int open_iv(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t *ad, size_t adlen,
		   const uint8_t iv[AEAD_IV_LEN], const uint8_t key[WGT_AEAD_KEY_LEN])
{
	EVP_CIPHER_CTX *ctx;
	int ret;

	if (len < WGT_AEAD_TAG_SIZE)
		return -EINVAL;
	ret = keyed_ctx(key, iv, 0, &ctx);
	if (ret)
		return ret;
	ret = open_keyed(ctx, dst, src, len - WGT_AEAD_TAG_SIZE, ad, adlen);
	EVP_CIPHER_CTX_free(ctx);
	return ret;
}

/* Any thread. */
int wgt_aead_encrypt(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t *ad,
		     size_t adlen, uint64_t nonce, const uint8_t key[WGT_AEAD_KEY_LEN])
{
	uint8_t iv[AEAD_IV_LEN];

	make_iv(iv, nonce);
	return seal_iv(dst, src, len, ad, adlen, iv, key);
}

/* Any thread. */
int wgt_aead_decrypt(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t *ad,
		     size_t adlen, uint64_t nonce, const uint8_t key[WGT_AEAD_KEY_LEN])
{
	uint8_t iv[AEAD_IV_LEN];

	make_iv(iv, nonce);
	return open_iv(dst, src, len, ad, adlen, iv, key);
}

/*
 * XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha section 2.3): the subkey is
 * HChaCha20 of the key and the first 16 nonce bytes; the inner 96-bit nonce
 * is 4 zero bytes followed by the last 8 nonce bytes.
 */
static void xchacha_setup(uint8_t subkey[WGT_AEAD_KEY_LEN], uint8_t iv[AEAD_IV_LEN],
			  const uint8_t nonce[WGT_XAEAD_NONCE_LEN],
			  const uint8_t key[WGT_AEAD_KEY_LEN])
{
	wgt_hchacha20(subkey, nonce, key);
	memset(iv, 0, 4);
	memcpy(iv + 4, nonce + WGT_HCHACHA_NONCE_LEN, 8);
}

/* Any thread. */
int wgt_xaead_encrypt(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t *ad,
		      size_t adlen, const uint8_t nonce[WGT_XAEAD_NONCE_LEN],
		      const uint8_t key[WGT_AEAD_KEY_LEN])
{
	uint8_t subkey[WGT_AEAD_KEY_LEN];
	uint8_t iv[AEAD_IV_LEN];
	int ret;

	xchacha_setup(subkey, iv, nonce, key);
	ret = seal_iv(dst, src, len, ad, adlen, iv, subkey);
	OPENSSL_cleanse(subkey, sizeof(subkey));
	return ret;
}

/* Any thread. */
int wgt_xaead_decrypt(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t *ad,
		      size_t adlen, const uint8_t nonce[WGT_XAEAD_NONCE_LEN],
		      const uint8_t key[WGT_AEAD_KEY_LEN])
{
	uint8_t subkey[WGT_AEAD_KEY_LEN];
	uint8_t iv[AEAD_IV_LEN];
	int ret;

	xchacha_setup(subkey, iv, nonce, key);
	ret = open_iv(dst, src, len, ad, adlen, iv, subkey);
	OPENSSL_cleanse(subkey, sizeof(subkey));
	return ret;
}

/* Any thread; the result is then owned by one worker. */
struct wgt_aead *wgt_aead_new(void)
{
	const EVP_CIPHER *cipher = wgt_evp_chacha20_poly1305();
	struct wgt_aead *a;

	if (!cipher)
		return NULL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	a->prov = wgt_aead_provider();
	a->batch = wgt_aead_batch_supported() && !getenv("WGT_AEAD_EVP") &&
		   !getenv("WGT_AEAD_NO_BATCH");
	for (int enc = 0; enc < 2; enc++) {
		EVP_CIPHER_CTX *ctx;

		if (a->prov) {
			a->dir[enc].pctx = a->prov->newctx(a->prov->provctx);
			if (!a->dir[enc].pctx)
				goto err_free;
			continue;
		}
		ctx = EVP_CIPHER_CTX_new();
		a->dir[enc].ctx = ctx;
		if (!ctx || !EVP_CipherInit_ex(ctx, cipher, NULL, NULL, NULL, enc) ||
		    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, AEAD_IV_LEN, NULL) <= 0)
			goto err_free;
	}
	return a;

err_free:
	wgt_aead_free(a);
	return NULL;
}

/* Owner thread. */
void wgt_aead_free(struct wgt_aead *a)
{
	if (!a)
		return;
	/* Frees and wipes the cached key schedules. */
	for (int enc = 0; enc < 2; enc++) {
		EVP_CIPHER_CTX_free(a->dir[enc].ctx);
		if (a->dir[enc].pctx)
			a->prov->freectx(a->dir[enc].pctx);
	}
	OPENSSL_cleanse(a, sizeof(*a));
	free(a);
}

/*
 * Loads key (when key_id differs from the one cached for this direction, or
 * key_id is 0) and the per-packet IV. On failure the cache is dropped so the
 * next call re-keys from scratch. Returns 0 or -EIO.
 */
static int aead_prepare(struct aead_dir *d, uint64_t key_id, const uint8_t key[WGT_AEAD_KEY_LEN],
			uint64_t nonce, int enc)
{
	uint8_t iv[AEAD_IV_LEN];

	make_iv(iv, nonce);
	if (key_id == 0 || key_id != d->key_id) {
		d->key_id = 0;
		if (!EVP_CipherInit_ex(d->ctx, NULL, NULL, key, iv, enc))
			return -EIO;
		d->key_id = key_id;
		return 0;
	}
	/* Same key: a new IV resets the Poly1305 state and keeps the ChaCha20 key. */
	if (!EVP_CipherInit_ex(d->ctx, NULL, NULL, NULL, iv, enc)) {
		d->key_id = 0;
		return -EIO;
	}
	return 0;
}

/* Worker-owned: one thread at a time per context. */
/*
 * Provider path: (re)start the provider context with a new IV, and the key
 * only when key_id changed. Returns 0 or -EIO.
 */
static int prov_init(const struct wgt_aead_provider *p, struct aead_dir *d, uint64_t key_id,
		     const uint8_t key[WGT_AEAD_KEY_LEN], uint64_t nonce, int enc)
{
	bool rekey = key_id == 0 || key_id != d->key_id;
	uint8_t iv[AEAD_IV_LEN];
	int ok;

	make_iv(iv, nonce);
	d->key_id = 0;
	if (enc)
		ok = p->einit(d->pctx, rekey ? key : NULL, rekey ? WGT_AEAD_KEY_LEN : 0, iv,
			      sizeof(iv), NULL);
	else
		ok = p->dinit(d->pctx, rekey ? key : NULL, rekey ? WGT_AEAD_KEY_LEN : 0, iv,
			      sizeof(iv), NULL);
	if (!ok)
		return -EIO;
	d->key_id = key_id;
	return 0;
}

static int prov_seal(const struct wgt_aead_provider *p, struct aead_dir *d, uint8_t *dst,
		     const uint8_t *src, size_t len)
{
	OSSL_PARAM params[2] = {
		OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, dst + len,
						  WGT_AEAD_TAG_SIZE),
		OSSL_PARAM_construct_end(),
	};
	size_t outl = 0;

	if (len && (!p->update(d->pctx, dst, &outl, len, src, len) || outl != len))
		return -EIO;
	if (!p->final(d->pctx, dst + len, &outl, WGT_AEAD_TAG_SIZE) ||
	    !p->get_ctx_params(d->pctx, params))
		return -EIO;
	return 0;
}

static int prov_open(const struct wgt_aead_provider *p, struct aead_dir *d, uint8_t *dst,
		     const uint8_t *src, size_t len)
{
	uint8_t tag[WGT_AEAD_TAG_SIZE];
	OSSL_PARAM params[2] = {
		OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, tag, sizeof(tag)),
		OSSL_PARAM_construct_end(),
	};
	size_t outl = 0;

	/* Copy the tag first: with dst == src - 16 nothing may overwrite it before it is set. */
	memcpy(tag, src + len, sizeof(tag));
	if (!p->set_ctx_params(d->pctx, params))
		return -EIO;
	if (len && (!p->update(d->pctx, dst, &outl, len, src, len) || outl != len)) {
		OPENSSL_cleanse(dst, len);
		return -EIO;
	}
	/* The provider compares tags with CRYPTO_memcmp. */
	if (!p->final(d->pctx, dst + len, &outl, 0)) {
		OPENSSL_cleanse(dst, len);
		return -EBADMSG;
	}
	return 0;
}

int wgt_aead_seal(struct wgt_aead *a, uint64_t key_id, const uint8_t key[WGT_AEAD_KEY_LEN],
		  uint8_t *dst, const uint8_t *src, size_t len, uint64_t nonce)
{
	struct aead_dir *d = &a->dir[1];
	int ret;

	if (likely(a->prov)) {
		ret = prov_init(a->prov, d, key_id, key, nonce, 1);
		if (!ret)
			ret = prov_seal(a->prov, d, dst, src, len);
		if (ret)
			d->key_id = 0;
		return ret;
	}

	ret = aead_prepare(d, key_id, key, nonce, 1);
	if (ret)
		return ret;
	ret = seal_keyed(d->ctx, dst, src, len, NULL, 0);
	if (ret)
		d->key_id = 0;
	return ret;
}

/* Worker-owned: one thread at a time per context. */
int wgt_aead_open(struct wgt_aead *a, uint64_t key_id, const uint8_t key[WGT_AEAD_KEY_LEN],
		  uint8_t *dst, const uint8_t *src, size_t len, uint64_t nonce)
{
	struct aead_dir *d = &a->dir[0];
	int ret;

	if (len < WGT_AEAD_TAG_SIZE)
		return -EINVAL;
	if (likely(a->prov)) {
		ret = prov_init(a->prov, d, key_id, key, nonce, 0);
		if (!ret)
			ret = prov_open(a->prov, d, dst, src, len - WGT_AEAD_TAG_SIZE);
		if (ret && ret != -EBADMSG)
			d->key_id = 0;
		return ret;
	}
	ret = aead_prepare(d, key_id, key, nonce, 0);
	if (ret)
		return ret;
	ret = open_keyed(d->ctx, dst, src, len - WGT_AEAD_TAG_SIZE, NULL, 0);
	if (ret && ret != -EBADMSG)
		d->key_id = 0;
	return ret;
}

/* Worker-owned: one thread at a time per context. */
int wgt_aead_seal_many(struct wgt_aead *a, uint64_t key_id, const uint8_t key[WGT_AEAD_KEY_LEN],
		       struct wgt_aead_batch_item *it, size_t n)
{
	if (a->batch && n >= WGT_AEAD_BATCH_MIN) {
		wgt_aead_batch_seal(key, it, n);
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		int ret = wgt_aead_seal(a, key_id, key, it[i].dst, it[i].src, it[i].len, it[i].nonce);

		if (ret)
			return ret;
	}
	return 0;
}

/* Worker-owned: one thread at a time per context. */
void wgt_aead_open_many(struct wgt_aead *a, uint64_t key_id, const uint8_t key[WGT_AEAD_KEY_LEN],
			struct wgt_aead_batch_item *it, size_t n)
{
	if (a->batch && n >= WGT_AEAD_BATCH_MIN) {
		wgt_aead_batch_open(key, it, n);
		return;
	}
	for (size_t i = 0; i < n; i++)
		it[i].result = wgt_aead_open(a, key_id, key, it[i].dst, it[i].src,
					     it[i].len + WGT_AEAD_TAG_SIZE, it[i].nonce);
}
