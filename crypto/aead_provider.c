/* SPDX-License-Identifier: MIT */
/* The data path's ChaCha20-Poly1305 through the provider's own dispatch table, without the EVP layer. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/provider.h>

#include "crypto/aead.h"
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

/*
 * Why the process may re-execute itself: OpenSSL 3.0 picks its Poly1305
 * code once, while libcrypto loads, from CPUID masked by OPENSSL_ia32cap.
 * On a CPU with AVX512-IFMA it picks poly1305_blocks_vpmadd52, which first
 * computes a table of powers of r for every message. WireGuard messages are
 * at most ~1.4 KB, and for them that set-up costs more than the wider
 * multiplies save. Measured on the development VM (OpenSSL 3.0.22, one
 * ChaCha20-Poly1305 seal through EVP, pinned): 1420 bytes 1175 -> 940 ns,
 * 64 bytes 608 -> 335 ns with IFMA masked; in wgate's own micro-benchmark a
 * 1420-byte seal+open went from 2230 to 1650 ns. ChaCha20 keeps its
 * AVX-512 code (masking AVX512F as well was slower). The variable has no
 * effect once libcrypto is loaded, hence the exec. Only OpenSSL 3.0 is
 * measured, so other versions are left alone; an OPENSSL_ia32cap the
 * operator set is always kept (":~0" keeps all of OpenSSL's own choices).
 */
static bool cpu_caps_wanted(void)
{
	unsigned long v = OpenSSL_version_num();

	if (v >> 28 != 3 || (v >> 20 & 0xff) != 0)
		return false;
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx512ifma");
}

void wgt_aead_tune_cpu_caps(char **argv)
{
	if (getenv("OPENSSL_ia32cap") || !cpu_caps_wanted())
		return;
	if (setenv("OPENSSL_ia32cap", WGT_AEAD_IA32CAP, 1))
		return;
	execv("/proc/self/exe", argv);
	unsetenv("OPENSSL_ia32cap");
}

const char *wgt_aead_cpu_caps_note(void)
{
	const char *env = getenv("OPENSSL_ia32cap");

	if (!env)
		return cpu_caps_wanted() ? "OpenSSL CPU capabilities: as detected (re-exec failed)"
					 : "OpenSSL CPU capabilities: as detected";
	if (!strcmp(env, WGT_AEAD_IA32CAP))
		return "OpenSSL CPU capabilities: AVX512-IFMA Poly1305 off for packet-sized "
		       "messages (OPENSSL_ia32cap=" WGT_AEAD_IA32CAP ")";
	return "OpenSSL CPU capabilities: as set by OPENSSL_ia32cap in the environment";
}
