/* SPDX-License-Identifier: MIT */
/*
 * ChaCha20-Poly1305 (RFC 8439) and XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha)
 * on OpenSSL EVP. WireGuard's 96-bit nonce is 32 zero bits then a 64-bit
 * little-endian counter.
 *
 * Two ways in: one-shot functions for the handshake path (they create and
 * free an EVP context per call), and a reusable `struct wgt_aead` for the
 * data path, owned by one thread, that re-keys its per-direction EVP contexts only when the
 * key id changes, so a batch of packets on one keypair costs one key setup.
 */
#ifndef WGT_CRYPTO_AEAD_H
#define WGT_CRYPTO_AEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WGT_AEAD_KEY_LEN 32
#define WGT_AEAD_TAG_SIZE 16
#define WGT_XAEAD_NONCE_LEN 24
#define WGT_HCHACHA_NONCE_LEN 16

/* HChaCha20(key, nonce[16]) -> 32-byte subkey (draft-irtf-cfrg-xchacha section 2.2). */
void wgt_hchacha20(uint8_t out[32], const uint8_t nonce[WGT_HCHACHA_NONCE_LEN],
		   const uint8_t key[WGT_AEAD_KEY_LEN]);

/*
 * dst receives len bytes of ciphertext then the 16-byte tag; dst may equal
 * src. Returns 0 or -ENOMEM/-EIO.
 */
int wgt_aead_encrypt(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t *ad,
		     size_t adlen, uint64_t nonce, const uint8_t key[WGT_AEAD_KEY_LEN]);

/*
 * src holds len bytes: ciphertext then the tag (len >= 16); dst receives
 * len - 16 bytes of plaintext and may equal src. Returns 0, -EBADMSG when
 * authentication fails (dst contents then undefined), or -ENOMEM/-EINVAL.
 */
int wgt_aead_decrypt(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t *ad,
		     size_t adlen, uint64_t nonce, const uint8_t key[WGT_AEAD_KEY_LEN]);

/* As above with XChaCha20-Poly1305 and a 24-byte nonce. */
int wgt_xaead_encrypt(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t *ad,
		      size_t adlen, const uint8_t nonce[WGT_XAEAD_NONCE_LEN],
		      const uint8_t key[WGT_AEAD_KEY_LEN]);
int wgt_xaead_decrypt(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t *ad,
		      size_t adlen, const uint8_t nonce[WGT_XAEAD_NONCE_LEN],
		      const uint8_t key[WGT_AEAD_KEY_LEN]);

/* Reusable data-path context. Worker-owned: one thread at a time. */
struct wgt_aead;

/* Returns a context, or NULL when out of memory. */
struct wgt_aead *wgt_aead_new(void);
/* Accepts NULL. */
void wgt_aead_free(struct wgt_aead *a);

/*
 * Seal/open with `key`, identified by `key_id` (unique for the life of the
 * process, never 0 for a real key): when key_id and direction match the
 * previous call, the EVP key setup is skipped. Same buffers and results
 * as wgt_aead_encrypt()/wgt_aead_decrypt().
 */
int wgt_aead_seal(struct wgt_aead *a, uint64_t key_id, const uint8_t key[WGT_AEAD_KEY_LEN],
		  uint8_t *dst, const uint8_t *src, size_t len, uint64_t nonce);
int wgt_aead_open(struct wgt_aead *a, uint64_t key_id, const uint8_t key[WGT_AEAD_KEY_LEN],
		  uint8_t *dst, const uint8_t *src, size_t len, uint64_t nonce);

/*
 * Many messages under one key, each as wgt_aead_seal()/wgt_aead_open()
 * would (struct wgt_aead_batch_item, crypto/aead_batch.h: dst and src equal
 * or apart). With the AVX-512 batch code when the CPU has it and n is at
 * least WGT_AEAD_BATCH_MIN, unless WGT_AEAD_EVP or WGT_AEAD_NO_BATCH is
 * set; else one message at a time.
 * seal_many returns 0 or the first failure (-EIO; only without the batch
 * code); open_many sets each item's result (0, -EBADMSG, -EINVAL or -EIO).
 */
struct wgt_aead_batch_item;
int wgt_aead_seal_many(struct wgt_aead *a, uint64_t key_id, const uint8_t key[WGT_AEAD_KEY_LEN],
		       struct wgt_aead_batch_item *it, size_t n);
void wgt_aead_open_many(struct wgt_aead *a, uint64_t key_id, const uint8_t key[WGT_AEAD_KEY_LEN],
			struct wgt_aead_batch_item *it, size_t n);

/* The OPENSSL_ia32cap mask wgt_aead_tune_cpu_caps() sets: AVX512-IFMA off. */
#define WGT_AEAD_IA32CAP ":~0x200000"

/*
 * Call first in main(), before any thread exists. When this process runs
 * on OpenSSL 3.0 on a CPU with AVX512-IFMA and OPENSSL_ia32cap is unset,
 * sets it to WGT_AEAD_IA32CAP and re-executes /proc/self/exe with the same
 * argv (see aead_provider.c for why); returns only when nothing was to be
 * done or the exec failed (then the variable is unset again).
 */
void wgt_aead_tune_cpu_caps(char **argv);

/* Any thread. A line for the start-up log: which Poly1305 code OpenSSL was left to pick. */
const char *wgt_aead_cpu_caps_note(void);

#endif
