/* SPDX-License-Identifier: MIT */
/* libFuzzer harness for TUN offloads: split of TUN reads, coalescing of packets, round trips. */
#include <errno.h>
#include <linux/virtio_net.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "fuzz.h"
#include "io/checksum.h"
#include "io/offload.h"

#ifndef VIRTIO_NET_HDR_GSO_UDP_L4
#define VIRTIO_NET_HDR_GSO_UDP_L4 5
#endif

/*
 * The first byte picks what to do with the rest:
 *   bits 0-1  0: the rest is a TUN read: split it, coalesce the segments
 *                (udp on), re-split every write: the segments must come back
 *             1: carve packets (records [u16 len][u8 spare cap][bytes]) and coalesce them
 *             2: the same after fixing their lengths and checksums, so they can merge
 *             3: the rest is a TUN read: wgt_offload_csum_complete() in place
 *   bit 2     udp for the carve modes
 *   bit 3     split into 1500-byte segment buffers instead of 64 KiB ones
 *   bit 4     at most 8 segments instead of WGT_OFFLOAD_MAX_SEGS
 */
#define VNET WGT_OFFLOAD_HEADROOM
#define SEG_CAP 65536
#define SMALL_CAP 1500
#define MAX_CARVE 160

static uint8_t *segs_big[WGT_OFFLOAD_MAX_SEGS];
static uint8_t *segs_small[WGT_OFFLOAD_MAX_SEGS];
static uint8_t *resplit[WGT_OFFLOAD_MAX_SEGS];
static uint8_t *gro_bufs[WGT_OFFLOAD_MAX_SEGS]; /* headroom + 64 KiB each */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	for (unsigned i = 0; i < WGT_OFFLOAD_MAX_SEGS; i++) {
		segs_big[i] = malloc(SEG_CAP);
		segs_small[i] = malloc(SMALL_CAP);
		resplit[i] = malloc(SEG_CAP);
		gro_bufs[i] = malloc(VNET + SEG_CAP);
		if (!segs_big[i] || !segs_small[i] || !resplit[i] || !gro_bufs[i])
			abort();
	}
	return 0;
}

static void put16(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint32_t pseudo(const uint8_t *ip, unsigned v, uint8_t proto, size_t l4len)
{
	if (v == 4)
		return wgt_csum_pseudo_ipv4(ip + 12, ip + 16, proto, (uint16_t)l4len, 0);
	return wgt_csum_pseudo_ipv6(ip + 8, ip + 24, proto, (uint32_t)l4len, 0);
}

/* Makes lengths and checksums right for whatever IPv4/IPv6 TCP/UDP packet p looks like. */
static void fix_up(uint8_t *p, size_t len)
{
	size_t l4;
	unsigned v;
	uint8_t proto;
	uint16_t csum;

	if (len < 20 || len > 65535)
		return;
	v = p[0] >> 4;
	if (v == 4) {
		l4 = (size_t)(p[0] & 15) * 4;
		if (l4 < 20 || l4 > len)
			return;
		put16(p + 2, (uint32_t)len);
		proto = p[9];
	} else if (v == 6 && len >= 40) {
		put16(p + 4, (uint32_t)(len - 40));
		proto = p[6];
		l4 = 40;
	} else {
		return;
	}
	if (proto == IPPROTO_TCP && len - l4 >= 20) {
		p[l4 + 16] = p[l4 + 17] = 0;
		csum = wgt_csum_finish(wgt_csum_partial(p + l4, len - l4, pseudo(p, v, proto, len - l4)));
		memcpy(p + l4 + 16, &csum, 2);
	} else if (proto == IPPROTO_UDP && len - l4 >= 8) {
		put16(p + l4 + 4, (uint32_t)(len - l4));
		p[l4 + 6] = p[l4 + 7] = 0;
		csum = wgt_csum_finish(wgt_csum_partial(p + l4, len - l4, pseudo(p, v, proto, len - l4)));
		memcpy(p + l4 + 6, csum ? &csum : &(uint16_t){ 0xffff }, 2);
	}
	if (v == 4) {
		p[10] = p[11] = 0;
		csum = wgt_csum_finish(wgt_csum_partial(p, l4, 0));
		memcpy(p + 10, &csum, 2);
	}
}

/* A GSO write's checksum, completed as the kernel would, must verify. */
static void check_merged(const struct iovec *w)
{
	uint8_t *copy = malloc(w->iov_len);
	struct virtio_net_hdr h;
	const uint8_t *ip = copy + VNET;
	unsigned v;

	FUZZ_CHECK(copy);
	memcpy(copy, w->iov_base, w->iov_len);
	memcpy(&h, copy, VNET);
	FUZZ_CHECK(h.flags == VIRTIO_NET_HDR_F_NEEDS_CSUM && h.gso_size > 0);
	h.gso_type = VIRTIO_NET_HDR_GSO_NONE;
	memcpy(copy, &h, VNET);
	FUZZ_CHECK(wgt_offload_csum_complete(copy, w->iov_len) == 0);
	v = ip[0] >> 4;
	FUZZ_CHECK(wgt_csum_fold(wgt_csum_partial(ip + h.csum_start, w->iov_len - VNET - h.csum_start,
						  pseudo(ip, v, v == 4 ? ip[9] : ip[6],
							 w->iov_len - VNET - h.csum_start))) == 0xffff);
	free(copy);
}

/* Bytes a re-split may change: IPv4 ID and checksum, TCP window/checksum/urgent, UDP checksum. */
static bool same_modulo(const uint8_t *a, const uint8_t *b, size_t len)
{
	unsigned v = a[0] >> 4;
	size_t l4 = v == 4 ? 20 : 40;
	bool tcp = (v == 4 ? a[9] : a[6]) == IPPROTO_TCP;

	for (size_t i = 0; i < len; i++) {
		if (v == 4 && (i == 4 || i == 5 || i == 10 || i == 11))
			continue;
		if (tcp ? i >= l4 + 14 && i < l4 + 20 : i == l4 + 6 || i == l4 + 7)
			continue;
		if (a[i] != b[i])
			return false;
	}
	return true;
}

/*
 * Checks writes against their inputs: each write starts at an input's
 * headroom, in increasing input order, and covers that input's (new)
 * length; a plain write is its input untouched under a zero header; a
 * merged one verifies once its checksum is completed and re-splits into its
 * head and later inputs. With `exact` (inputs that came from one split) the
 * re-split segments of all writes, in order, are the inputs byte for byte.
 */
static void check_writes(const struct wgt_offload_pkt *pkts, uint8_t *const *copies,
			 const size_t *clen, unsigned n, const struct iovec *w, unsigned nw,
			 bool exact)
{
	static const uint8_t zero[VNET];
	uint16_t lens[WGT_OFFLOAD_MAX_SEGS];
	bool used[MAX_CARVE] = { false };
	unsigned i = 0, k, total = 0;

	FUZZ_CHECK(nw <= n);
	for (k = 0; k < nw; k++, i++) {
		unsigned j;
		int m, s;

		while (i < n && w[k].iov_base != pkts[i].data - VNET)
			i++;
		FUZZ_CHECK(i < n);
		FUZZ_CHECK(w[k].iov_len == VNET + pkts[i].len && pkts[i].len <= pkts[i].cap);
		used[i] = true;
		if (!memcmp(w[k].iov_base, zero, VNET)) {
			FUZZ_CHECK(pkts[i].len == clen[i] && !memcmp(pkts[i].data, copies[i], clen[i]));
			FUZZ_CHECK(!exact || total == i);
			total++;
			continue;
		}
		check_merged(&w[k]);
		m = wgt_offload_split(w[k].iov_base, w[k].iov_len, resplit, SEG_CAP,
				      WGT_OFFLOAD_MAX_SEGS, lens);
		FUZZ_CHECK(m > 1);
		for (s = 0, j = i; s < m; s++, j++) {
			if (exact) {
				j = total + (unsigned)s;
				FUZZ_CHECK(j < n && lens[s] == clen[j] &&
					   !memcmp(resplit[s], copies[j], clen[j]));
				continue;
			}
			/* Greedy: identical inputs are interchangeable. */
			while (s && j < n &&
			       (used[j] || clen[j] != lens[s] || !same_modulo(copies[j], resplit[s], lens[s])))
				j++;
			FUZZ_CHECK(j < n && lens[s] == clen[j] &&
				   same_modulo(copies[j], resplit[s], lens[s]));
			used[j] = true;
		}
		total += (unsigned)m;
	}
	FUZZ_CHECK(total == n);
}

/* Mode 0: split a TUN read; coalesce and re-split the segments. */
static void run_split(const uint8_t *data, size_t size, uint8_t sel)
{
	uint8_t *const *segs = sel & 8 ? segs_small : segs_big;
	size_t cap = sel & 8 ? SMALL_CAP : SEG_CAP, clen[WGT_OFFLOAD_MAX_SEGS];
	unsigned max = sel & 16 ? 8 : WGT_OFFLOAD_MAX_SEGS, i, nw;
	struct wgt_offload_pkt pkts[WGT_OFFLOAD_MAX_SEGS];
	struct iovec w[WGT_OFFLOAD_MAX_SEGS];
	uint16_t lens[WGT_OFFLOAD_MAX_SEGS];
	struct virtio_net_hdr h;
	int n;

	n = wgt_offload_split(data, size, segs, cap, max, lens);
	FUZZ_CHECK(n == -EINVAL || n == -ENOBUFS || (n >= 1 && (unsigned)n <= max));
	if (n < 1)
		return;
	for (i = 0; i < (unsigned)n; i++) {
		const uint8_t *ip = segs[i];

		FUZZ_CHECK(lens[i] >= 1 && lens[i] <= cap && lens[i] <= size - VNET);
		pkts[i].data = gro_bufs[i] + VNET;
		pkts[i].len = clen[i] = lens[i];
		pkts[i].cap = SEG_CAP;
		memcpy(pkts[i].data, ip, lens[i]);
	}
	/* Every GSO segment carries right checksums. */
	memcpy(&h, data, VNET);
	if (h.gso_type != VIRTIO_NET_HDR_GSO_NONE) {
		uint8_t proto = h.gso_type == VIRTIO_NET_HDR_GSO_UDP_L4 ? IPPROTO_UDP : IPPROTO_TCP;
		size_t l4 = h.csum_start;

		for (i = 0; i < (unsigned)n; i++) {
			const uint8_t *ip = segs[i];
			unsigned v = ip[0] >> 4;

			if (v == 4)
				FUZZ_CHECK(wgt_csum_fold(wgt_csum_partial(ip, (size_t)(ip[0] & 15) * 4,
									  0)) == 0xffff);
			FUZZ_CHECK(wgt_csum_fold(wgt_csum_partial(ip + l4, lens[i] - l4,
								  pseudo(ip, v, proto, lens[i] - l4))) ==
				   0xffff);
		}
	}
	nw = wgt_offload_coalesce(pkts, (unsigned)n, true, w);
	check_writes(pkts, segs, clen, (unsigned)n, w, nw, true);
}

/* Modes 1 and 2: carve records into packets of their own buffers and coalesce them. */
static void run_carve(const uint8_t *data, size_t size, uint8_t sel)
{
	struct wgt_offload_pkt pkts[MAX_CARVE];
	struct iovec w[MAX_CARVE];
	uint8_t *bufs[MAX_CARVE] = { NULL }, *copies[MAX_CARVE] = { NULL };
	size_t clen[MAX_CARVE] = { 0 }, off = 0;
	unsigned n = 0, i, nw;

	while (n < MAX_CARVE && size - off >= 3) {
		size_t len = (size_t)data[off] << 8 | data[off + 1], spare = data[off + 2];

		off += 3;
		len = WGT_MIN(len, size - off);
		bufs[n] = malloc(VNET + len + spare);
		copies[n] = malloc(len + 1);
		FUZZ_CHECK(bufs[n] && copies[n]);
		pkts[n].data = bufs[n] + VNET;
		pkts[n].len = len;
		pkts[n].cap = len + spare;
		memcpy(pkts[n].data, data + off, len);
		if ((sel & 3) == 2)
			fix_up(pkts[n].data, len);
		memcpy(copies[n], pkts[n].data, len);
		clen[n] = len;
		off += len;
		n++;
	}
	nw = wgt_offload_coalesce(pkts, n, sel & 4, w);
	check_writes(pkts, copies, clen, n, w, nw, false);
	for (i = 0; i < n; i++) {
		free(bufs[i]);
		free(copies[i]);
	}
}

/* Mode 3: in-place checksum completion of a TUN read. */
static void run_complete(const uint8_t *data, size_t size)
{
	uint8_t *copy = malloc(size ? size : 1);
	int ret;

	FUZZ_CHECK(copy);
	memcpy(copy, data, size);
	ret = wgt_offload_csum_complete(copy, size);
	FUZZ_CHECK(ret == 0 || ret == -EINVAL);
	if (ret)
		FUZZ_CHECK(!memcmp(copy, data, size));
	else
		FUZZ_CHECK(!(copy[0] & VIRTIO_NET_HDR_F_NEEDS_CSUM) &&
			   !memcmp(copy + 1, data + 1, 9));
	free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t sel;

	if (!size)
		return 0;
	sel = data[0];
	data++;
	size--;
	switch (sel & 3) {
	case 0:
		run_split(data, size, sel);
		break;
	case 3:
		run_complete(data, size);
		break;
	default:
		run_carve(data, size, sel);
		break;
	}
	return 0;
}

/* Seed builders: valid packets, as the kernel would hand them over. */
struct seed_pkt {
	unsigned v;
	uint8_t proto;
	uint32_t seq;
	uint16_t id;
	uint8_t flags;
	size_t plen;
};

static size_t build(uint8_t *p, const struct seed_pkt *sp)
{
	size_t nh = sp->v == 4 ? 20 : 40, l4h = sp->proto == IPPROTO_TCP ? 32 : 8;
	size_t len = nh + l4h + sp->plen;
	uint8_t *l4 = p + nh;

	memset(p, 0, len);
	if (sp->v == 4) {
		p[0] = 0x45;
		put16(p + 4, sp->id);
		p[6] = 0x40;
		p[8] = 64;
		p[9] = sp->proto;
		p[12] = p[16] = 10;
		p[15] = 1;
		p[19] = 2;
	} else {
		p[0] = 0x60;
		p[6] = sp->proto;
		p[7] = 64;
		p[8] = p[24] = 0xfd;
		p[23] = 1;
		p[39] = 2;
	}
	put16(l4, 40000);
	put16(l4 + 2, 443);
	if (sp->proto == IPPROTO_TCP) {
		put16(l4 + 4, sp->seq >> 16);
		put16(l4 + 6, sp->seq);
		put16(l4 + 10, 77);
		l4[12] = 0x80;
		l4[13] = sp->flags;
		put16(l4 + 14, 65000);
		l4[20] = l4[21] = 1; /* NOP NOP timestamps */
		l4[22] = 8;
		l4[23] = 10;
		l4[27] = 5;
		l4[31] = 9;
	}
	for (size_t i = 0; i < sp->plen; i++)
		p[nh + l4h + i] = (uint8_t)(sp->seq + i);
	fix_up(p, len);
	return len;
}

/* A TUN read: virtio header (GSO when gso_size) and the packet with a CHECKSUM_PARTIAL field. */
static size_t build_read(uint8_t *buf, const struct seed_pkt *sp, uint16_t gso_size)
{
	struct virtio_net_hdr h = { .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .gso_size = gso_size };
	uint8_t *ip = buf + VNET;
	size_t len = build(ip, sp), nh = sp->v == 4 ? 20 : 40;
	bool tcp = sp->proto == IPPROTO_TCP;
	uint16_t partial = wgt_csum_fold(pseudo(ip, sp->v, sp->proto, len - nh));

	if (!gso_size)
		h.gso_type = VIRTIO_NET_HDR_GSO_NONE;
	else if (tcp)
		h.gso_type = sp->v == 4 ? VIRTIO_NET_HDR_GSO_TCPV4 : VIRTIO_NET_HDR_GSO_TCPV6;
	else
		h.gso_type = VIRTIO_NET_HDR_GSO_UDP_L4;
	h.hdr_len = gso_size ? (uint16_t)(nh + (tcp ? 32 : 8)) : 0;
	h.csum_start = (uint16_t)nh;
	h.csum_offset = tcp ? 16 : 6;
	memcpy(ip + nh + h.csum_offset, &partial, 2);
	memcpy(buf, &h, VNET);
	return VNET + len;
}

/* Carve records of n consecutive segments of one flow, plus one of another flow. */
static size_t build_records(uint8_t *buf, struct seed_pkt sp, unsigned n)
{
	size_t off = 0, len;

	for (unsigned i = 0; i <= n; i++) {
		struct seed_pkt p = sp;

		if (i == n) {
			p.v = sp.v == 4 ? 6 : 4;
			p.flags |= 0x08;
		}
		len = build(buf + off + 3, &p);
		put16(buf + off, (uint32_t)len);
		buf[off + 2] = 255;
		off += 3 + len;
		sp.seq += (uint32_t)sp.plen;
		sp.id++;
	}
	return off;
}

size_t fuzz_seeds(struct fuzz_seed *seeds)
{
	static uint8_t buf[8192], big[VNET + 65535];
	const struct seed_pkt full = { 4, IPPROTO_TCP, 1, 1, 0x10, 65535 - 20 - 32 };
	const struct seed_pkt t4 = { 4, IPPROTO_TCP, 1000, 7, 0x18, 350 };
	const struct seed_pkt t6 = { 6, IPPROTO_TCP, 0xffffff00, 0, 0x10 | 0x80 | 0x01, 400 };
	const struct seed_pkt u4 = { 4, IPPROTO_UDP, 0, 0xffff, 0, 300 };
	const struct seed_pkt u6 = { 6, IPPROTO_UDP, 0, 0, 0, 301 };
	const struct seed_pkt one = { 4, IPPROTO_TCP, 5, 1, 0x10, 100 };
	struct seed_pkt seg = { 4, IPPROTO_TCP, 1000, 7, 0x10, 100 };
	size_t n = 0;
	int err = 0;

	err |= fuzz_seed_add(seeds, &n, "split-tcp4", 0, buf, build_read(buf, &t4, 100));
	/* A full 64 KiB TSO read into 64 segments: also lifts libFuzzer's length limit. */
	err |= fuzz_seed_add(seeds, &n, "split-tcp4-64k", 0, big, build_read(big, &full, 1024));
	err |= fuzz_seed_add(seeds, &n, "split-tcp6", 0, buf, build_read(buf, &t6, 100));
	err |= fuzz_seed_add(seeds, &n, "split-udp4", 0, buf, build_read(buf, &u4, 100));
	err |= fuzz_seed_add(seeds, &n, "split-udp6-small", 8 | 16, buf, build_read(buf, &u6, 50));
	err |= fuzz_seed_add(seeds, &n, "split-none-csum", 0, buf, build_read(buf, &one, 0));
	err |= fuzz_seed_add(seeds, &n, "complete-csum", 3, buf, build_read(buf, &one, 0));
	err |= fuzz_seed_add(seeds, &n, "carve-tcp4", 2, buf, build_records(buf, seg, 4));
	seg.v = 6;
	err |= fuzz_seed_add(seeds, &n, "carve-tcp6-raw", 1, buf, build_records(buf, seg, 4));
	seg.proto = IPPROTO_UDP;
	err |= fuzz_seed_add(seeds, &n, "carve-udp6", 2 | 4, buf, build_records(buf, seg, 4));
	seg.v = 4;
	err |= fuzz_seed_add(seeds, &n, "carve-udp4", 2 | 4, buf, build_records(buf, seg, 4));
	if (err)
		abort();
	return n;
}
