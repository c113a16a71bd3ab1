/* SPDX-License-Identifier: MIT */
/* The data path's ChaCha20-Poly1305 through the provider's own dispatch table, without the EVP layer. */
#include <pthread.h>
#include <string.h>
#include <strings.h>

#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/provider.h>

#include "crypto/aead_pvt.h"
#include "crypto/evp_pvt.h"

/*
 * Why: OpenSSL 3.0's EVP layer costs more per packet than the cipher itself
 * on short packets. Each EVP_CipherInit_ex() recomputes the IV length
 * through a parameter round trip (EVP_CIPHER_CTX_get_iv_length), and each
 * tag ctrl is translated into an OSSL_PARAM lookup by string compares;
 * measured with perf on a wgate sender, EVP bookkeeping was ~40% of the
 * time spent in the cipher proper. The provider that EVP dispatches to
 * publishes its function table through the public
 * OSSL_PROVIDER_query_operation(); calling those functions directly runs
 * the same (AVX-512/AVX2) ChaCha20-Poly1305 code with only the provider's
 * own checks. Everything else (handshake one-shots) stays on EVP.
 */

static struct wgt_aead_provider table;
static bool table_ok;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static bool name_matches(const char *names, const char *want)
{
	size_t n = strlen(want);

	for (const char *p = names; p && *p;) {
		const char *end = strchr(p, ':');
		size_t len = end ? (size_t)(end - p) : strlen(p);

		if (len == n && !strncasecmp(p, want, n))
			return true;
		p = end ? end + 1 : NULL;
	}
	return false;
}

static void load_table(void)
{
	const EVP_CIPHER *cipher = wgt_evp_chacha20_poly1305();
	const OSSL_PROVIDER *prov = cipher ? EVP_CIPHER_get0_provider(cipher) : NULL;
	const OSSL_ALGORITHM *alg;
	struct wgt_aead_provider t = { 0 };
	int no_store = 0;

	if (!prov)
		return;
	alg = OSSL_PROVIDER_query_operation(prov, OSSL_OP_CIPHER, &no_store);
	for (; alg && alg->algorithm_names; alg++)
		if (name_matches(alg->algorithm_names, "ChaCha20-Poly1305"))
			break;
	if (!alg || !alg->algorithm_names)
		return;
	for (const OSSL_DISPATCH *d = alg->implementation; d->function_id; d++) {
		switch (d->function_id) {
		case OSSL_FUNC_CIPHER_NEWCTX:
			t.newctx = OSSL_FUNC_cipher_newctx(d);
			break;
		case OSSL_FUNC_CIPHER_FREECTX:
			t.freectx = OSSL_FUNC_cipher_freectx(d);
			break;
		case OSSL_FUNC_CIPHER_ENCRYPT_INIT:
			t.einit = OSSL_FUNC_cipher_encrypt_init(d);
			break;
		case OSSL_FUNC_CIPHER_DECRYPT_INIT:
			t.dinit = OSSL_FUNC_cipher_decrypt_init(d);
			break;
		case OSSL_FUNC_CIPHER_UPDATE:
			t.update = OSSL_FUNC_cipher_update(d);
			break;
		case OSSL_FUNC_CIPHER_FINAL:
			t.final = OSSL_FUNC_cipher_final(d);
			break;
		case OSSL_FUNC_CIPHER_GET_CTX_PARAMS:
			t.get_ctx_params = OSSL_FUNC_cipher_get_ctx_params(d);
			break;
		case OSSL_FUNC_CIPHER_SET_CTX_PARAMS:
			t.set_ctx_params = OSSL_FUNC_cipher_set_ctx_params(d);
			break;
		}
	}
	t.provctx = OSSL_PROVIDER_get0_provider_ctx(prov);
	if (!t.newctx || !t.freectx || !t.einit || !t.dinit || !t.update || !t.final ||
	    !t.get_ctx_params || !t.set_ctx_params || !t.provctx)
		return;
	/* The fetched cipher keeps the provider loaded for the life of the process. */
	table = t;
	table_ok = getenv("WGT_AEAD_EVP") == NULL;
}

/* Any thread. The table, or NULL when only the EVP path is available. */
const struct wgt_aead_provider *wgt_aead_provider(void)
{
	if (pthread_once(&once, load_table))
		return NULL;
	return table_ok ? &table : NULL;
}
