/* SPDX-License-Identifier: MIT */
/*
 * What a fuzz harness provides and the deterministic fixture the harnesses share.
 *
 * Each harness is built two ways: with libFuzzer (clang, -Dfuzzers=enabled),
 * which supplies main(), or with standalone_main.c (any compiler), which
 * replays the seed corpus plus deterministic pseudo-random and mutated
 * inputs so that the normal build exercises the harness too.
 *
 * Randomness is deterministic (fixed-seed OpenSSL RAND method, reset before
 * every input) so that the fixture's keys, ephemerals and cookie secret are
 * the same in every run: the committed seed corpus stays valid, a crash
 * input reproduces, and libFuzzer sees stable coverage.
 */
#ifndef WGT_TESTS_FUZZ_FUZZ_H
#define WGT_TESTS_FUZZ_FUZZ_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "common/endpoint.h"
#include "crypto/cookie.h"
#include "crypto/messages.h"
#include "crypto/noise.h"

struct wgt_aead;

/* The libFuzzer entry points. */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A valid input the harness's fixture produces, for the seed corpus. */
struct fuzz_seed {
	char name[48];
	uint8_t *data;
	size_t len;
};

#define FUZZ_MAX_SEEDS 16

/*
 * The harness's seeds: fills `seeds` (at most FUZZ_MAX_SEEDS) and returns
 * how many. Call after LLVMFuzzerInitialize; free with fuzz_seeds_free().
 */
size_t fuzz_seeds(struct fuzz_seed *seeds);
void fuzz_seeds_free(struct fuzz_seed *seeds, size_t n);

/* Fixed identities, indices and times. */
#define FUZZ_INITIATOR_INDEX 0x11111111U
#define FUZZ_RESPONDER_INDEX 0x22222222U
#define FUZZ_NOW (1000 * WGT_NSEC_PER_SEC) /* monotonic ns */

/*
 * Both sides of one completed handshake between fixed identities, and
 * every message it produced, made once per process by fuzz_fixture_init().
 * The `pristine_*` states are what harnesses copy from before each input.
 */
struct fuzz_fixture {
	struct wgt_noise_identity initiator;
	struct wgt_noise_identity responder;
	union wgt_sockaddr src; /* where the initiator's messages come from */

	/* The responder's handshake with the initiator, before any initiation. */
	struct wgt_noise_handshake pristine_responder_hs;
	/* The initiator's handshake after create_initiation (CREATED_INITIATION). */
	struct wgt_noise_handshake pristine_initiator_hs;
	/* Responder's checker after making a cookie (so it holds a secret). */
	struct wgt_cookie_checker pristine_responder_checker;
	/* Initiator's maker after sending `initiation` (awaits a reply to it). */
	struct wgt_cookie_maker pristine_initiator_maker;
	struct wgt_cookie_checker initiator_checker; /* mac1 of responses */
	struct wgt_cookie_maker responder_maker;     /* mac1 of responses */

	struct wgt_msg_initiation initiation;       /* mac1 only */
	struct wgt_msg_initiation initiation_mac2;  /* mac1 and mac2 under the cookie */
	struct wgt_msg_response response;
	struct wgt_msg_cookie cookie;

	/* The session: the initiator sends with kp_i, the responder receives with kp_r. */
	struct wgt_noise_keypairs kps_i;
	struct wgt_noise_keypairs kps_r;
	struct wgt_noise_keypair *kp_i;
	struct wgt_noise_keypair *kp_r;
	struct wgt_aead *aead;
};

extern struct fuzz_fixture fuzz_fx;

/* Builds fuzz_fx. Returns 0 or -errno. */
int fuzz_fixture_init(void);
void fuzz_fixture_free(void);

/* Restarts the deterministic random stream; every input starts from the same one. */
void fuzz_rand_reset(void);

/* The lookup callback for consume_initiation: `arg` is the one peer's handshake. */
struct wgt_noise_handshake *fuzz_lookup(void *arg, const uint8_t remote_static[WGT_KEY_LEN]);

/* Adds a seed (copying `len` bytes after the one-byte `selector`). Returns 0 or -ENOMEM. */
int fuzz_seed_add(struct fuzz_seed *seeds, size_t *n, const char *name, uint8_t selector,
		  const void *data, size_t len);

/* abort() with a message when an invariant fails, in every build type (assert is not enough under NDEBUG). */
#define FUZZ_CHECK(cond)                                                                   \
	do {                                                                               \
		if (!(cond))                                                               \
			fuzz_fail(__FILE__, __LINE__, #cond);                              \
	} while (0)

__attribute__((noreturn)) void fuzz_fail(const char *file, int line, const char *what);

#endif
