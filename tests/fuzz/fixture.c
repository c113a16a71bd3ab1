/* SPDX-License-Identifier: MIT */
/* The fuzz harnesses' shared fixture: deterministic randomness and one complete handshake between fixed keys. */
#include "fuzz.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * RAND_set_rand_method is deprecated in OpenSSL 3.0 but still honoured by
 * RAND_bytes, which is all the core uses; it is the one-line way to make
 * OpenSSL deterministic without writing a provider.
 */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/rand.h>

#include "crypto/aead.h"
#include "crypto/blake2s.h"
#include "crypto/tai64n.h"
#include "crypto/transport.h"

struct fuzz_fixture fuzz_fx;

#define FUZZ_RAND_SEED 0x9e3779b97f4a7c15ULL

static uint64_t rand_state = FUZZ_RAND_SEED;

/* splitmix64: tiny, and every seed gives a full-period stream. */
static uint64_t rand_next(void)
{
	uint64_t z = (rand_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static int rand_bytes(unsigned char *buf, int num)
{
	while (num > 0) {
		uint64_t v = rand_next();
		int n = num < 8 ? num : 8;

		memcpy(buf, &v, (size_t)n);
		buf += n;
		num -= n;
	}
	return 1;
}

static int rand_status(void)
{
	return 1;
}

static const RAND_METHOD deterministic_rand = {
	.bytes = rand_bytes,
	.pseudorand = rand_bytes,
	.status = rand_status,
};

void fuzz_rand_reset(void)
{
	rand_state = FUZZ_RAND_SEED;
}

void fuzz_fail(const char *file, int line, const char *what)
{
	fprintf(stderr, "%s:%d: invariant failed: %s\n", file, line, what);
	abort();
}

struct wgt_noise_handshake *fuzz_lookup(void *arg, const uint8_t remote_static[WGT_KEY_LEN])
{
	struct wgt_noise_handshake *hs = arg;

	return memcmp(hs->remote_static, remote_static, WGT_KEY_LEN) ? NULL : hs;
}

int fuzz_seed_add(struct fuzz_seed *seeds, size_t *n, const char *name, uint8_t selector,
		  const void *data, size_t len)
{
	struct fuzz_seed *s;

	if (*n >= FUZZ_MAX_SEEDS)
		return -ENOSPC;
	s = &seeds[*n];
	s->data = malloc(len + 1);
	if (!s->data)
		return -ENOMEM;
	s->data[0] = selector;
	if (len)
		memcpy(s->data + 1, data, len);
	s->len = len + 1;
	snprintf(s->name, sizeof(s->name), "%s", name);
	(*n)++;
	return 0;
}

void fuzz_seeds_free(struct fuzz_seed *seeds, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(seeds[i].data);
}

/* Fixed private keys: any 32 bytes are a valid X25519 scalar once clamped. */
static void fixed_key(uint8_t key[WGT_KEY_LEN], uint8_t base)
{
	size_t i;

	for (i = 0; i < WGT_KEY_LEN; i++)
		key[i] = (uint8_t)(base + 7 * i);
}

/*
 * The handshake, in the order the protocol runs it. Every step is
 * deterministic given the RAND stream, so every process builds the same
 * fixture and the committed seeds match it.
 */
int fuzz_fixture_init(void)
{
	struct fuzz_fixture *fx = &fuzz_fx;
	struct wgt_noise_handshake hs_r, hs_i, *found = NULL;
	struct wgt_cookie_maker maker;
	uint8_t key[WGT_KEY_LEN], psk[WGT_KEY_LEN], ts[WGT_TIMESTAMP_LEN];
	const struct timespec wall = { .tv_sec = 1700000000, .tv_nsec = 0 };
	int ret;

	memset(fx, 0, sizeof(*fx));
	if (!RAND_set_rand_method(&deterministic_rand))
		return -EIO;
	fuzz_rand_reset();
	ret = wgt_crypto_init();
	if (ret)
		return ret;
	fx->aead = wgt_aead_new();
	if (!fx->aead)
		return -ENOMEM;
	wgt_noise_keypairs_init(&fx->kps_i);
	wgt_noise_keypairs_init(&fx->kps_r);

	fx->src.in4.sin_family = AF_INET;
	fx->src.in4.sin_port = htons(51820);
	fx->src.in4.sin_addr.s_addr = htonl(0xc0000201); /* 192.0.2.1 */

	fixed_key(key, 0x01);
	ret = wgt_noise_identity_set(&fx->initiator, key);
	if (ret)
		return ret;
	fixed_key(key, 0x80);
	ret = wgt_noise_identity_set(&fx->responder, key);
	if (ret)
		return ret;
	fixed_key(psk, 0x33);

	ret = wgt_noise_handshake_init(&fx->pristine_responder_hs, &fx->responder,
				       fx->initiator.static_public, psk);
	if (!ret)
		ret = wgt_noise_handshake_init(&fx->pristine_initiator_hs, &fx->initiator,
					       fx->responder.static_public, psk);
	if (!ret)
		ret = wgt_cookie_maker_init(&fx->pristine_initiator_maker,
					    fx->responder.static_public);
	if (!ret)
		ret = wgt_cookie_checker_init(&fx->pristine_responder_checker,
					      fx->responder.static_public);
	if (!ret)
		ret = wgt_cookie_maker_init(&fx->responder_maker, fx->initiator.static_public);
	if (!ret)
		ret = wgt_cookie_checker_init(&fx->initiator_checker, fx->initiator.static_public);
	if (ret)
		return ret;

	/* Message 1, and a cookie reply to it as if the responder were under load. */
	wgt_tai64n_encode(ts, &wall);
	ret = wgt_noise_create_initiation(&fx->pristine_initiator_hs, &fx->initiation,
					  FUZZ_INITIATOR_INDEX, ts);
	if (!ret)
		ret = wgt_cookie_add_macs(&fx->pristine_initiator_maker, (uint8_t *)&fx->initiation,
					  sizeof(fx->initiation), FUZZ_NOW);
	if (!ret)
		ret = wgt_cookie_create_reply(&fx->pristine_responder_checker, &fx->cookie,
					      (const uint8_t *)&fx->initiation,
					      sizeof(fx->initiation), &fx->src, FUZZ_NOW);
	if (ret)
		return ret;

	/* The same initiation resent with mac2 under that cookie. */
	maker = fx->pristine_initiator_maker;
	fx->initiation_mac2 = fx->initiation;
	ret = wgt_cookie_consume_reply(&maker, &fx->cookie, FUZZ_NOW);
	if (!ret)
		ret = wgt_cookie_add_macs(&maker, (uint8_t *)&fx->initiation_mac2,
					  sizeof(fx->initiation_mac2), FUZZ_NOW);
	wgt_cookie_maker_clear(&maker);
	if (ret)
		return ret;

	/* Message 2 from a copy of the responder, so the pristine state stays pristine. */
	hs_r = fx->pristine_responder_hs;
	ret = wgt_noise_consume_initiation(&fx->initiation, &fx->responder, fuzz_lookup, &hs_r,
					   FUZZ_NOW, &found);
	if (!ret && found != &hs_r)
		ret = -EPROTO;
	if (!ret)
		ret = wgt_noise_create_response(&hs_r, &fx->response, FUZZ_RESPONDER_INDEX);
	if (!ret)
		ret = wgt_cookie_add_macs(&fx->responder_maker, (uint8_t *)&fx->response,
					  sizeof(fx->response), FUZZ_NOW);
	if (!ret)
		ret = wgt_noise_begin_session(&hs_r, &fx->kps_r, FUZZ_NOW, &fx->kp_r);
	wgt_noise_handshake_destroy(&hs_r);
	if (ret)
		return ret;

	hs_i = fx->pristine_initiator_hs;
	ret = wgt_noise_consume_response(&hs_i, &fx->response);
	if (!ret)
		ret = wgt_noise_begin_session(&hs_i, &fx->kps_i, FUZZ_NOW, &fx->kp_i);
	wgt_noise_handshake_destroy(&hs_i);
	if (ret)
		return ret;
	/* Key confirmation, as the initiator's first data message would do. */
	if (!wgt_noise_received_with_keypair(&fx->kps_r, fx->kp_r))
		return -EPROTO;
	return 0;
}

void fuzz_fixture_free(void)
{
	struct fuzz_fixture *fx = &fuzz_fx;

	wgt_noise_keypairs_clear(&fx->kps_i);
	wgt_noise_keypairs_clear(&fx->kps_r);
	wgt_aead_free(fx->aead);
	wgt_noise_handshake_destroy(&fx->pristine_initiator_hs);
	wgt_noise_handshake_destroy(&fx->pristine_responder_hs);
	wgt_noise_identity_clear(&fx->initiator);
	wgt_noise_identity_clear(&fx->responder);
	RAND_set_rand_method(NULL);
	memset(fx, 0, sizeof(*fx));
}
