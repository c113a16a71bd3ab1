/* SPDX-License-Identifier: MIT */
/* The provider functions behind EVP's ChaCha20-Poly1305, for the data-path context in aead.c. */
#ifndef WGT_CRYPTO_AEAD_PVT_H
#define WGT_CRYPTO_AEAD_PVT_H

#include <stdbool.h>
#include <stdlib.h>

#include <openssl/core_dispatch.h>

struct wgt_aead_provider {
	void *provctx;
	OSSL_FUNC_cipher_newctx_fn *newctx;
	OSSL_FUNC_cipher_freectx_fn *freectx;
	OSSL_FUNC_cipher_encrypt_init_fn *einit;
	OSSL_FUNC_cipher_decrypt_init_fn *dinit;
	OSSL_FUNC_cipher_update_fn *update;
	OSSL_FUNC_cipher_final_fn *final;
	OSSL_FUNC_cipher_get_ctx_params_fn *get_ctx_params;
	OSSL_FUNC_cipher_set_ctx_params_fn *set_ctx_params;
};

/*
 * Any thread. The dispatch table of the provider EVP fetched
 * ChaCha20-Poly1305 from, or NULL when it cannot be used (then the EVP
 * path runs). WGT_AEAD_EVP in the environment forces the EVP path, for
 * comparisons.
 */
const struct wgt_aead_provider *wgt_aead_provider(void);

#endif
