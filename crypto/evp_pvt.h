/* SPDX-License-Identifier: MIT */
/* OpenSSL algorithm handles fetched once by wgt_crypto_init(), shared inside crypto/ only. */
#ifndef WGT_CRYPTO_EVP_PVT_H
#define WGT_CRYPTO_EVP_PVT_H

#include <openssl/types.h>

/*
 * The fetched "ChaCha20-Poly1305" cipher, or NULL when wgt_crypto_init()
 * failed. Runs wgt_crypto_init() itself. Any thread; the handle lives for
 * the whole process and is never freed.
 */
const EVP_CIPHER *wgt_evp_chacha20_poly1305(void);

#endif
