/* SPDX-License-Identifier: MIT */
/* Micro-benchmarks of the protocol core: ns per operation, printed one per line. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "common/clock.h"
#include "common/ring.h"
#include "crypto/aead.h"
#include "crypto/cookie.h"
#include "crypto/noise.h"
#include "crypto/tai64n.h"
#include "crypto/transport.h"
#include "crypto/x25519.h"
#include "io/checksum.h"

void bench_allowedips(void);

/* Keeps the compiler from discarding results. */
static volatile uint64_t sink;

static void report(const char *name, uint64_t start, uint64_t end, uint64_t ops)
{
	printf("%s: %.1f ns/op (%llu ops)\n", name, (double)(end - start) / (double)ops,
	       (unsigned long long)ops);
}

static struct wgt_noise_identity id_a, id_b;
/* One fake wall clock for every initiation: each must be newer than the last. */
static struct timespec t = { .tv_sec = 1700000000 };
static struct wgt_noise_handshake hs_a, hs_b;

static struct wgt_noise_handshake *lookup(void *arg, const uint8_t pub[WGT_KEY_LEN])
{
	return memcmp(pub, hs_b.remote_static, WGT_KEY_LEN) ? NULL : &hs_b;
}

static int setup_pair(void)
{
	uint8_t priv[WGT_KEY_LEN], pub[WGT_KEY_LEN];

	if (wgt_x25519_generate(priv, pub) || wgt_noise_identity_set(&id_a, priv) ||
	    wgt_x25519_generate(priv, pub) || wgt_noise_identity_set(&id_b, priv))
		return -EIO;
	if (wgt_noise_handshake_init(&hs_a, &id_a, id_b.static_public, NULL) ||
	    wgt_noise_handshake_init(&hs_b, &id_b, id_a.static_public, NULL))
		return -EIO;
	return 0;
}

/* Handshake initiation: create (initiator) + consume (responder), MACs included. */
static int bench_handshake(void)
{
	struct wgt_cookie_maker maker;
	struct wgt_cookie_checker checker;
	struct wgt_msg_initiation init;
	struct wgt_noise_handshake *found;
	uint8_t ts[WGT_TIMESTAMP_LEN];
	const uint64_t ops = 2000;
	uint64_t start, now = 100 * WGT_NSEC_PER_SEC;

	if (wgt_cookie_maker_init(&maker, id_b.static_public) ||
	    wgt_cookie_checker_init(&checker, id_b.static_public))
		return -EIO;
	start = wgt_now_ns();
	for (uint64_t k = 0; k < ops; k++) {
		t.tv_sec++;
		now += WGT_NSEC_PER_SEC;
		wgt_tai64n_encode(ts, &t);
		if (wgt_noise_create_initiation(&hs_a, &init, (uint32_t)k, ts) ||
		    wgt_cookie_add_macs(&maker, (uint8_t *)&init, sizeof(init), now) ||
		    wgt_cookie_validate(&checker, (uint8_t *)&init, sizeof(init), NULL, false, now) !=
			    WGT_COOKIE_VALID_MAC_NO_COOKIE ||
		    wgt_noise_consume_initiation(&init, &id_b, lookup, NULL, now, &found))
			return -EIO;
	}
	report("handshake_initiation_create_consume", start, wgt_now_ns(), ops);
	return 0;
}

/* A full session, then encrypt+decrypt of 1420-byte packets in place. */
static int bench_transport(size_t size)
{
	struct wgt_noise_keypairs kps_a, kps_b;
	struct wgt_noise_keypair *ka, *kb;
	struct wgt_msg_initiation init;
	struct wgt_msg_response resp;
	struct wgt_noise_handshake *found;
	struct wgt_aead *aead = wgt_aead_new();
	uint8_t ts[WGT_TIMESTAMP_LEN];
	static uint8_t buf[2048];
	const uint64_t ops = 200000;
	static uint64_t now = 10 * WGT_NSEC_PER_SEC;
	uint64_t start;
	size_t len, plen;
	char name[64];
	int ret = -EIO;

	wgt_noise_keypairs_init(&kps_a);
	wgt_noise_keypairs_init(&kps_b);
	t.tv_sec++;
	now += WGT_NSEC_PER_SEC;
	wgt_tai64n_encode(ts, &t);
	if (!aead || wgt_noise_create_initiation(&hs_a, &init, 1, ts) ||
	    wgt_noise_consume_initiation(&init, &id_b, lookup, NULL, now, &found) ||
	    wgt_noise_create_response(&hs_b, &resp, 2) || wgt_noise_consume_response(&hs_a, &resp) ||
	    wgt_noise_begin_session(&hs_a, &kps_a, now, &ka) ||
	    wgt_noise_begin_session(&hs_b, &kps_b, now, &kb))
		goto out;

	memset(buf, 0xab, sizeof(buf));
	start = wgt_now_ns();
	for (uint64_t k = 0; k < ops; k++) {
		if (wgt_transport_encrypt(aead, ka, buf, size, sizeof(buf), 1420, now, &len) ||
		    wgt_transport_decrypt(aead, kb, buf, len, now, &plen))
			goto out;
		sink += plen;
	}
	snprintf(name, sizeof(name), "transport_encrypt_decrypt_%zu", size);
	report(name, start, wgt_now_ns(), ops);

	/* The cipher alone through the one-shot path, for the per-packet EVP overhead. */
	start = wgt_now_ns();
	for (uint64_t k = 0; k < ops / 10; k++) {
		if (wgt_aead_encrypt(buf, buf, size, NULL, 0, k, ka->send_key) ||
		    wgt_aead_decrypt(buf, buf, size + 16, NULL, 0, k, ka->send_key))
			goto out;
	}
	snprintf(name, sizeof(name), "aead_oneshot_ctx_per_call_%zu", size);
	report(name, start, wgt_now_ns(), ops / 10);
	ret = 0;
out:
	wgt_noise_keypairs_clear(&kps_a);
	wgt_noise_keypairs_clear(&kps_b);
	wgt_aead_free(aead);
	return ret;
}

/* SPSC ring on one thread: push then pop of one message the size of a control message. */
static int bench_ring(void)
{
	struct wgt_ring *r = wgt_ring_new(1024, 192);
	uint8_t msg[192] = { 1 };
	const uint64_t ops = 10000000;
	uint64_t start;

	if (!r)
		return -ENOMEM;
	start = wgt_now_ns();
	for (uint64_t k = 0; k < ops; k++) {
		msg[0] = (uint8_t)k;
		if (!wgt_ring_push(r, msg) || !wgt_ring_pop(r, msg)) {
			wgt_ring_free(r);
			return -EIO;
		}
		sink += msg[0];
	}
	report("ring_push_pop_192", start, wgt_now_ns(), ops);
	wgt_ring_free(r);
	return 0;
}

/* Internet checksum over a buffer at an odd address (the harder case for loads): ns per byte. */
static int bench_csum(size_t len)
{
	uint8_t *buf = malloc(len + 1);
	uint64_t ops = (1ULL << 31) / len, start, end;
	uint32_t sum = 0;
	char name[48];

	if (!buf)
		return -ENOMEM;
	for (size_t i = 0; i <= len; i++)
		buf[i] = (uint8_t)(i * 131);
	start = wgt_now_ns();
	for (uint64_t k = 0; k < ops; k++)
		sum = wgt_csum_partial(buf + 1, len, sum);
	end = wgt_now_ns();
	sink += sum;
	snprintf(name, sizeof(name), "csum_partial_%zu", len);
	printf("%s: %.3f ns/byte (%.1f ns/op, %llu ops)\n", name,
	       (double)(end - start) / (double)(ops * len), (double)(end - start) / (double)ops,
	       (unsigned long long)ops);
	free(buf);
	return 0;
}

int main(int argc, char **argv)
{
	(void)argc;
	/* The daemon's OpenSSL code choice (crypto/aead_provider.c), so the figures match it. */
	wgt_aead_tune_cpu_caps(argv);
	if (setup_pair()) {
		fprintf(stderr, "bench: key setup failed\n");
		return 1;
	}
	if (bench_transport(1420) || bench_transport(64) || bench_handshake() || bench_ring() ||
	    bench_csum(1500) || bench_csum(65535)) {
		fprintf(stderr, "bench: protocol operation failed\n");
		return 1;
	}
	bench_allowedips();
	return 0;
}
