/* SPDX-License-Identifier: MIT */
/* SipHash-2-4 (Aumasson and Bernstein, 2012), written from the paper's specification. */
#include "common/siphash.h"

#include <endian.h>
#include <string.h>

/*
 * Why hand-written: no Debian library offers a keyed hash for short inputs
 * suited to a hash table, OpenSSL's SipHash behind EVP_MAC costs a context
 * fetch and several calls per hash, and common/ must not depend on crypto/
 * anyway. The algorithm is a page long and checked against the reference
 * vectors in tests/unit/test_ratelimiter.c.
 */

static inline uint64_t rotl(uint64_t x, unsigned int b)
{
	return (x << b) | (x >> (64 - b));
}

static inline void sipround(uint64_t v[4])
{
	v[0] += v[1];
	v[1] = rotl(v[1], 13);
	v[1] ^= v[0];
	v[0] = rotl(v[0], 32);
	v[2] += v[3];
	v[3] = rotl(v[3], 16);
	v[3] ^= v[2];
	v[0] += v[3];
	v[3] = rotl(v[3], 21);
	v[3] ^= v[0];
	v[2] += v[1];
	v[1] = rotl(v[1], 17);
	v[1] ^= v[2];
	v[2] = rotl(v[2], 32);
}

/* Two compression rounds per 8-byte word. */
static inline void absorb(uint64_t v[4], uint64_t m)
{
	v[3] ^= m;
	sipround(v);
	sipround(v);
	v[0] ^= m;
}

void wgt_siphash_key_init(struct wgt_siphash_key *key, const uint8_t bytes[16])
{
	uint64_t w[2];

	memcpy(w, bytes, 16);
	key->k[0] = le64toh(w[0]);
	key->k[1] = le64toh(w[1]);
}

uint64_t wgt_siphash(const struct wgt_siphash_key *key, const void *data, size_t len)
{
	const uint8_t *p = data;
	uint64_t v[4] = {
		key->k[0] ^ 0x736f6d6570736575ULL, /* "somepseudorandomlygeneratedbytes" */
		key->k[1] ^ 0x646f72616e646f6dULL,
		key->k[0] ^ 0x6c7967656e657261ULL,
		key->k[1] ^ 0x7465646279746573ULL,
	};
	uint64_t m, last = (uint64_t)len << 56;
	size_t tail = len & 7;

	for (const uint8_t *end = p + (len - tail); p < end; p += 8) {
		memcpy(&m, p, 8);
		absorb(v, le64toh(m));
	}
	/* The final word carries the leftover bytes and the length mod 256. */
	for (size_t i = 0; i < tail; i++)
		last |= (uint64_t)p[i] << (8 * i);
	absorb(v, last);
	/* Four finalisation rounds. */
	v[2] ^= 0xff;
	sipround(v);
	sipround(v);
	sipround(v);
	sipround(v);
	return v[0] ^ v[1] ^ v[2] ^ v[3];
}
