/* SPDX-License-Identifier: MIT */
/* Fuzzes data-message decryption on arbitrary bytes and lengths, and checks that encryption round-trips. */
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "crypto/aead.h"
#include "crypto/aead_batch.h"
#include "crypto/messages.h"
#include "crypto/noise.h"
#include "crypto/replay.h"
#include "crypto/transport.h"

/* The first input byte picks the mode (modulo MODE_COUNT); the rest is its input. */
enum mode {
	MODE_DECRYPT,         /* rest: a datagram, opened by the responder's keypair */
	MODE_DECRYPT_EXPIRED, /* the same, after REJECT_AFTER_TIME */
	MODE_HUGE,            /* rest: 3 bytes of length (up to 256 KiB), then a pattern to fill it */
	MODE_ROUNDTRIP,       /* rest: 1 control byte, then a payload to seal and open */
	MODE_BATCH,           /* rest: payloads, each after a length byte, sealed and opened as a batch */
	MODE_COUNT,
};

#define HUGE_MAX (1U << 18)

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	int ret = fuzz_fixture_init();

	if (ret) {
		fprintf(stderr, "fuzz_transport: fixture: %s\n", strerror(-ret));
		abort();
	}
	atexit(fuzz_fixture_free);
	return 0;
}

/* Every input starts from a keypair that has sent and received nothing. */
static void reset_session(void)
{
	atomic_store(&fuzz_fx.kp_i->send_counter, 0);
	atomic_store(&fuzz_fx.kp_i->send_valid, true);
	wgt_replay_init(&fuzz_fx.kp_r->replay);
}

/* Opens `len` bytes at msg (a heap copy of exactly that size: overreads are ASan reports). */
static void decrypt(const uint8_t *msg, size_t len, uint64_t now)
{
	uint8_t *buf = malloc(len ? len : 1);
	size_t plen = 0;
	int ret;

	if (!buf)
		return;
	memcpy(buf, msg, len);
	ret = wgt_transport_decrypt(fuzz_fx.aead, fuzz_fx.kp_r, buf, len, now, &plen);
	if (wgt_msg_classify(msg, len) != WGT_MSG_DATA)
		FUZZ_CHECK(ret == -EINVAL);
	if (now >= fuzz_fx.kp_r->birth + WGT_REJECT_AFTER_TIME)
		FUZZ_CHECK(ret == -EINVAL || ret == -EKEYEXPIRED);
	if (ret) {
		/* The window is fresh: nothing can be a replay yet. */
		FUZZ_CHECK(ret == -EINVAL || ret == -EKEYEXPIRED || ret == -EBADMSG);
		goto out;
	}
	FUZZ_CHECK(len >= WGT_MSG_DATA_MIN_LEN && plen == len - WGT_MSG_DATA_MIN_LEN);
	/* Authentic once; the very same datagram again is a replay. */
	memcpy(buf, msg, len);
	FUZZ_CHECK(wgt_transport_decrypt(fuzz_fx.aead, fuzz_fx.kp_r, buf, len, now, &plen) ==
		   -ESTALE);
out:
	free(buf);
}

static void decrypt_huge(const uint8_t *in, size_t n)
{
	uint8_t *buf;
	size_t len, i;

	if (n < 3)
		return;
	len = ((size_t)in[0] | (size_t)in[1] << 8 | (size_t)in[2] << 16) % (HUGE_MAX + 1);
	in += 3;
	n -= 3;
	buf = malloc(len ? len : 1);
	if (!buf)
		return;
	for (i = 0; i < len; i++)
		buf[i] = n ? in[i % n] : 0;
	decrypt(buf, len, FUZZ_NOW);
	free(buf);
}

/*
 * Seals the payload with the initiator's keypair and opens it with the
 * responder's. Control byte: bit 0 gives the encryption one byte too
 * little room (must be -ENOBUFS), bits 1-7 pick the MTU (0: none).
 */
static void roundtrip(const uint8_t *in, size_t n)
{
	const uint8_t *payload;
	uint8_t *buf, *copy = NULL;
	size_t len, mtu, padded, need, cap, out_len = 0, plen = 0, flip, i;
	bool short_cap;
	int ret;

	if (n < 1)
		return;
	short_cap = in[0] & 1;
	mtu = in[0] >> 1 ? 512 + (size_t)(in[0] >> 1) * 8 : 0; /* 520..1528 */
	payload = in + 1;
	len = n - 1;
	padded = wgt_transport_padded_len(len, mtu);
	FUZZ_CHECK(padded >= len && padded - len < WGT_MSG_PADDING);
	if (mtu && len <= mtu)
		FUZZ_CHECK(padded <= mtu);
	need = WGT_MSG_DATA_HEADER_LEN + padded + WGT_AEAD_TAG_LEN;
	cap = short_cap ? need - 1 : need;

	buf = malloc(cap);
	if (!buf)
		return;
	memcpy(buf + WGT_MSG_DATA_HEADER_LEN, payload, len);
	ret = wgt_transport_encrypt(fuzz_fx.aead, fuzz_fx.kp_i, buf, len, cap, mtu, FUZZ_NOW,
				    &out_len);
	if (short_cap) {
		FUZZ_CHECK(ret == -ENOBUFS);
		goto out;
	}
	FUZZ_CHECK(!ret && out_len == need);
	FUZZ_CHECK(wgt_msg_classify(buf, out_len) == WGT_MSG_DATA);

	copy = malloc(out_len);
	if (!copy)
		goto out;
	memcpy(copy, buf, out_len);
	ret = wgt_transport_decrypt(fuzz_fx.aead, fuzz_fx.kp_r, buf, out_len, FUZZ_NOW, &plen);
	FUZZ_CHECK(!ret && plen == padded);
	FUZZ_CHECK(!memcmp(buf + WGT_MSG_DATA_HEADER_LEN, payload, len));
	for (i = len; i < padded; i++)
		FUZZ_CHECK(buf[WGT_MSG_DATA_HEADER_LEN + i] == 0);

	/* Any flipped bit after the header breaks authentication. */
	flip = WGT_MSG_DATA_HEADER_LEN + (len ? payload[len / 2] * 31U + len : 0) %
						 (out_len - WGT_MSG_DATA_HEADER_LEN);
	copy[flip] ^= (uint8_t)(1U << (len % 8));
	ret = wgt_transport_decrypt(fuzz_fx.aead, fuzz_fx.kp_r, copy, out_len, FUZZ_NOW, &plen);
	FUZZ_CHECK(ret == -EBADMSG);
out:
	free(copy);
	free(buf);
}

/*
 * The worker's batch steps over up to BATCH_MAX messages cut from the input
 * (a length byte, then that many payload bytes; the last one takes what is
 * left): prepare and seal_many, then check, open_many and commit. Every
 * message comes back; then the one the first byte picks gets a flipped bit
 * and alone fails. Each datagram is a heap block of its exact size.
 */
#define BATCH_MAX 24

static void batch(const uint8_t *in, size_t n)
{
	uint8_t *bufs[BATCH_MAX] = { 0 }, *outs[BATCH_MAX] = { 0 };
	struct wgt_aead_batch_item it[BATCH_MAX];
	size_t lens[BATCH_MAX], plens[BATCH_MAX], k = 0, bad;
	const uint8_t *payloads[BATCH_MAX];
	uint64_t counters[BATCH_MAX];

	if (n < 1)
		return;
	bad = in[0];
	in++;
	n--;
	while (k < BATCH_MAX && n) {
		size_t len = WGT_MIN((size_t)in[0], n - 1);

		payloads[k] = in + 1;
		plens[k] = k + 1 == BATCH_MAX ? n - 1 : len;
		in += 1 + plens[k];
		n -= 1 + plens[k];
		k++;
	}
	for (size_t i = 0; i < k; i++) {
		size_t cap = WGT_MSG_DATA_HEADER_LEN + wgt_transport_padded_len(plens[i], 1420) +
			     WGT_AEAD_TAG_LEN;

		bufs[i] = malloc(cap);
		outs[i] = malloc(cap);
		if (!bufs[i] || !outs[i])
			goto out;
		memcpy(bufs[i] + WGT_MSG_DATA_HEADER_LEN, payloads[i], plens[i]);
		FUZZ_CHECK(!wgt_transport_encrypt_prepare(fuzz_fx.kp_i, bufs[i], plens[i], cap, 1420,
							  FUZZ_NOW, &lens[i]));
		FUZZ_CHECK(lens[i] == cap);
		wgt_transport_seal_item(bufs[i], lens[i], &it[i]);
	}
	FUZZ_CHECK(!wgt_aead_seal_many(fuzz_fx.aead, fuzz_fx.kp_i->send_key_id,
				       fuzz_fx.kp_i->send_key, it, k));
	if (k)
		bufs[bad % k][lens[bad % k] - 1 - bad % 16] ^= 1;
	for (size_t i = 0; i < k; i++) {
		FUZZ_CHECK(!wgt_transport_decrypt_check(fuzz_fx.kp_r, bufs[i], lens[i], FUZZ_NOW,
							&counters[i]));
		it[i] = (struct wgt_aead_batch_item){
			.dst = outs[i], .src = bufs[i] + WGT_MSG_DATA_HEADER_LEN,
			.len = lens[i] - WGT_MSG_DATA_MIN_LEN, .nonce = counters[i], .result = 1,
		};
	}
	wgt_aead_open_many(fuzz_fx.aead, fuzz_fx.kp_r->recv_key_id, fuzz_fx.kp_r->recv_key, it, k);
	for (size_t i = 0; i < k; i++) {
		if (i == bad % k) {
			FUZZ_CHECK(it[i].result == -EBADMSG);
			continue;
		}
		FUZZ_CHECK(it[i].result == 0);
		FUZZ_CHECK(!wgt_transport_decrypt_commit(fuzz_fx.kp_r, counters[i]));
		FUZZ_CHECK(!memcmp(outs[i], payloads[i], plens[i]));
	}
out:
	for (size_t i = 0; i < k; i++) {
		free(bufs[i]);
		free(outs[i]);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	fuzz_rand_reset();
	reset_session();
	switch (data[0] % MODE_COUNT) {
	case MODE_DECRYPT:
		decrypt(data + 1, size - 1, FUZZ_NOW);
		break;
	case MODE_DECRYPT_EXPIRED:
		decrypt(data + 1, size - 1, fuzz_fx.kp_r->birth + WGT_REJECT_AFTER_TIME);
		break;
	case MODE_HUGE:
		decrypt_huge(data + 1, size - 1);
		break;
	case MODE_ROUNDTRIP:
		roundtrip(data + 1, size - 1);
		break;
	case MODE_BATCH:
		batch(data + 1, size - 1);
		break;
	}
	return 0;
}

/* A data message from the initiator: `len` payload bytes at counter `counter`. */
static int make_data(uint8_t *buf, size_t cap, size_t len, uint64_t counter, size_t *ret_len)
{
	size_t i;

	for (i = 0; i < len; i++)
		buf[WGT_MSG_DATA_HEADER_LEN + i] = (uint8_t)(0x45 + i);
	atomic_store(&fuzz_fx.kp_i->send_counter, counter);
	return wgt_transport_encrypt(fuzz_fx.aead, fuzz_fx.kp_i, buf, len, cap, 1420, FUZZ_NOW,
				     ret_len);
}

size_t fuzz_seeds(struct fuzz_seed *seeds)
{
	uint8_t buf[256 + WGT_TRANSPORT_OVERHEAD_MAX], pattern[3 + 64];
	size_t n = 0, len;

	if (!make_data(buf, sizeof(buf), 84, 0, &len))
		fuzz_seed_add(seeds, &n, "decrypt-data", MODE_DECRYPT, buf, len);
	/* Ten messages of 0, 7, 14, ... 63 bytes. */
	len = 1;
	pattern[0] = 3;
	for (size_t i = 0; i < 10 && len + 1 + 7 * i <= sizeof(buf); i++) {
		buf[len] = (uint8_t)(7 * i);
		memset(buf + len + 1, (int)i, 7 * i);
		len += 1 + 7 * i;
	}
	buf[0] = pattern[0];
	fuzz_seed_add(seeds, &n, "batch-ten", MODE_BATCH, buf, len);
	if (!make_data(buf, sizeof(buf), 0, 1, &len))
		fuzz_seed_add(seeds, &n, "decrypt-keepalive", MODE_DECRYPT, buf, len);
	if (!make_data(buf, sizeof(buf), 84, 7, &len))
		fuzz_seed_add(seeds, &n, "decrypt-expired", MODE_DECRYPT_EXPIRED, buf, len);
	reset_session();

	/* 64 KiB + 1 of a repeated data header. */
	pattern[0] = 0x01;
	pattern[1] = 0x00;
	pattern[2] = 0x01;
	memset(pattern + 3, 0, sizeof(pattern) - 3);
	pattern[3] = WGT_MSG_DATA;
	fuzz_seed_add(seeds, &n, "huge-64k", MODE_HUGE, pattern, sizeof(pattern));

	memset(buf, 0x5a, sizeof(buf));
	buf[0] = 0; /* no MTU */
	fuzz_seed_add(seeds, &n, "roundtrip-17", MODE_ROUNDTRIP, buf, 1 + 17);
	buf[0] = 2 * 40; /* MTU 832 */
	fuzz_seed_add(seeds, &n, "roundtrip-mtu", MODE_ROUNDTRIP, buf, 1 + 200);
	buf[0] = 1; /* one byte short */
	fuzz_seed_add(seeds, &n, "roundtrip-nobufs", MODE_ROUNDTRIP, buf, 1 + 32);
	fuzz_seed_add(seeds, &n, "roundtrip-empty", MODE_ROUNDTRIP, buf + 255, 1);
	return n;
}
