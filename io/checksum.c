/* SPDX-License-Identifier: MIT */
/* Internet checksum: 64-bit accumulation of native-order loads, unrolled by 64 bytes into two sums. */
#include "io/checksum.h"

#include <string.h>

/*
 * Each 8-byte load is added as two 32-bit halves into a 64-bit accumulator,
 * so no carry is ever lost inside a block: 2^32 additions of values below
 * 2^32 fit. BLOCK_MAX keeps a block far below that; the carries collected in
 * the upper half are folded back between blocks. The main loop feeds two
 * independent accumulators, which halves the dependency chain: on x86-64
 * about 0.026 ns/byte (~38 GB/s) for 1500-byte buffers, against 0.042 with
 * one accumulator over 32 bytes (perf/bench_micro.c, csum_partial_*).
 */
#define BLOCK_MAX ((size_t)1 << 30)

static inline uint64_t load64(const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static inline uint64_t add_halves(uint64_t s, uint64_t w)
{
	return s + (uint32_t)w + (w >> 32);
}

/* One's-complement fold of 64 bits to 32 with end-around carry. */
static inline uint32_t fold64(uint64_t s)
{
	s = (s & 0xffffffffu) + (s >> 32);
	s = (s & 0xffffffffu) + (s >> 32);
	return (uint32_t)s;
}

/*
 * Loads are unaligned memcpy()s, so the start address does not matter:
 * only the byte offsets relative to buf decide which byte of a 16-bit word
 * each byte is. The tail of 1..7 bytes is copied into a zeroed word, which
 * is exactly RFC 1071's zero padding of an odd final byte on either byte
 * order.
 */
static uint64_t sum_block(const unsigned char *p, size_t len, uint64_t s)
{
	uint64_t t = 0; /* the second sum: every other 8-byte word */

	while (len >= 64) {
		s = add_halves(s, load64(p));
		t = add_halves(t, load64(p + 8));
		s = add_halves(s, load64(p + 16));
		t = add_halves(t, load64(p + 24));
		s = add_halves(s, load64(p + 32));
		t = add_halves(t, load64(p + 40));
		s = add_halves(s, load64(p + 48));
		t = add_halves(t, load64(p + 56));
		p += 64;
		len -= 64;
	}
	s += t;
	while (len >= 8) {
		s = add_halves(s, load64(p));
		p += 8;
		len -= 8;
	}
	if (len) {
		uint64_t w = 0;

		memcpy(&w, p, len);
		s = add_halves(s, w);
	}
	return s;
}

uint32_t wgt_csum_partial(const void *buf, size_t len, uint32_t sum)
{
	const unsigned char *p = buf;
	uint64_t s = sum;

	/* BLOCK_MAX is a multiple of 8: later blocks keep even word pairing. */
	while (len > BLOCK_MAX) {
		s = fold64(sum_block(p, BLOCK_MAX, s));
		p += BLOCK_MAX;
		len -= BLOCK_MAX;
	}
	return fold64(sum_block(p, len, s));
}

uint32_t wgt_csum_pseudo_ipv4(const void *saddr, const void *daddr, uint8_t proto,
			      uint16_t len, uint32_t sum)
{
	/* Zero byte, protocol, then the 16-bit length, as they sit in memory. */
	const unsigned char tail[4] = { 0, proto, (unsigned char)(len >> 8), (unsigned char)len };
	uint32_t a, b, t;
	uint64_t s = sum;

	memcpy(&a, saddr, 4);
	memcpy(&b, daddr, 4);
	memcpy(&t, tail, 4);
	s += a;
	s += b;
	s += t;
	return fold64(s);
}

uint32_t wgt_csum_pseudo_ipv6(const void *saddr, const void *daddr, uint8_t proto,
			      uint32_t len, uint32_t sum)
{
	/* 32-bit length, three zero bytes, next header (RFC 8200 section 8.1). */
	const unsigned char tail[8] = {
		(unsigned char)(len >> 24), (unsigned char)(len >> 16),
		(unsigned char)(len >> 8), (unsigned char)len,
		0, 0, 0, proto,
	};
	uint64_t s = sum;

	s = sum_block(saddr, 16, s);
	s = sum_block(daddr, 16, s);
	s = sum_block(tail, sizeof(tail), s);
	return fold64(s);
}
