/* SPDX-License-Identifier: MIT */
/* Check suite for TUN offloads: segmentation, header validation, coalescing, round trips. */
#include <check.h>
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

#include "io/checksum.h"
#include "io/offload.h"

#ifndef VIRTIO_NET_HDR_GSO_UDP_L4
#define VIRTIO_NET_HDR_GSO_UDP_L4 5
#endif

#define VNET WGT_OFFLOAD_HEADROOM
#define BUF_LEN (VNET + 65536)
#define STREAM_LEN 65536
#define NFLOWS 4
#define DEFAULT_SEED 0x77676174655f6f66ULL /* "wgate_of" */

/* One packet to build. Flows differ by source port; payload comes from the flow's stream at seq. */
struct spec {
	int v;     /* 4 or 6 */
	int proto; /* IPPROTO_TCP or IPPROTO_UDP */
	unsigned flow;
	uint8_t tos, ttl;
	uint16_t id;
	bool df;
	uint32_t seq, ack;
	uint8_t flags;
	bool ts;  /* TCP timestamps option (12 bytes) */
	bool opt; /* IPv4 options (4 NOPs) or an IPv6 destination options header (8 bytes) */
	uint32_t tsval;
};

enum { FIN = 0x01, SYN = 0x02, PSH = 0x08, ACK = 0x10, CWR = 0x80 };

static uint8_t streams[NFLOWS][STREAM_LEN];

static uint64_t next_rand(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void put16(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, v >> 16);
	put16(p + 2, v);
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)get16(p) << 16 | get16(p + 2);
}

static struct spec tcp_spec(int v)
{
	return (struct spec){ .v = v, .proto = IPPROTO_TCP, .ttl = 64, .id = 0x1234, .df = true,
			      .seq = 1000, .ack = 0xabcdef01, .flags = ACK, .ts = true,
			      .tsval = 777 };
}

static struct spec udp_spec(int v)
{
	return (struct spec){ .v = v, .proto = IPPROTO_UDP, .ttl = 64, .id = 0x4321, .df = true };
}

static size_t nh_len(const struct spec *sp)
{
	return sp->v == 4 ? 20 + (sp->opt ? 4 : 0) : 40 + (sp->opt ? 8 : 0);
}

static size_t hdrs_len(const struct spec *sp)
{
	return nh_len(sp) + (sp->proto == IPPROTO_TCP ? 20 + (sp->ts ? 12 : 0) : 8);
}

static uint32_t pseudo(const uint8_t *ip, int v, int proto, size_t l4len)
{
	if (v == 4)
		return wgt_csum_pseudo_ipv4(ip + 12, ip + 16, (uint8_t)proto, (uint16_t)l4len, 0);
	return wgt_csum_pseudo_ipv6(ip + 8, ip + 24, (uint8_t)proto, (uint32_t)l4len, 0);
}

/* Builds at p a packet of plen payload bytes from the flow's stream at seq; checksums right. */
static size_t build(uint8_t *p, const struct spec *sp, size_t plen)
{
	size_t nh = nh_len(sp), hl = hdrs_len(sp), len = hl + plen, l4len = len - nh;
	uint8_t *l4 = p + nh;
	uint16_t csum;

	memset(p, 0, hl);
	if (sp->v == 4) {
		static const uint8_t addrs[8] = { 10, 0, 0, 1, 10, 0, 0, 2 };

		p[0] = (uint8_t)(0x40 | nh / 4);
		p[1] = sp->tos;
		put16(p + 2, (uint32_t)len);
		put16(p + 4, sp->id);
		p[6] = sp->df ? 0x40 : 0;
		p[8] = sp->ttl;
		p[9] = (uint8_t)sp->proto;
		memcpy(p + 12, addrs, 8);
		memset(p + 20, 1, nh - 20);
		csum = wgt_csum_finish(wgt_csum_partial(p, nh, 0));
		memcpy(p + 10, &csum, 2);
	} else {
		p[0] = (uint8_t)(0x60 | sp->tos >> 4);
		p[1] = (uint8_t)((sp->tos & 15) << 4 | 0x1);
		p[2] = 0x23;
		p[3] = 0x45;
		put16(p + 4, (uint32_t)(len - 40));
		p[6] = (uint8_t)(sp->opt ? IPPROTO_DSTOPTS : sp->proto);
		p[7] = sp->ttl;
		if (sp->opt) {
			p[40] = (uint8_t)sp->proto;
			p[42] = 1; /* PadN over the other 6 bytes */
			p[43] = 4;
		}
		p[8] = 0xfd;
		p[23] = 1;
		p[24] = 0xfd;
		p[39] = 2;
	}
	put16(l4, 40000 + sp->flow);
	put16(l4 + 2, sp->proto == IPPROTO_TCP ? 443 : 51820);
	if (sp->proto == IPPROTO_TCP) {
		put32(l4 + 4, sp->seq);
		put32(l4 + 8, sp->ack);
		l4[12] = (uint8_t)(((hl - nh) / 4) << 4);
		l4[13] = sp->flags;
		put16(l4 + 14, 0xfff0);
		if (sp->ts) {
			l4[20] = l4[21] = 1;
			l4[22] = 8;
			l4[23] = 10;
			put32(l4 + 24, sp->tsval);
			put32(l4 + 28, 4242);
		}
	} else {
		put16(l4 + 4, (uint32_t)l4len);
	}
	/* Byte x of a flow's stream depends on x mod 2^32 only, so wrapped seqs agree. */
	for (size_t i = 0; i < plen; i++) {
		uint32_t x = sp->seq + (uint32_t)i;

		p[hl + i] = streams[sp->flow][x % STREAM_LEN] ^ (uint8_t)(x >> 16);
	}
	csum = wgt_csum_finish(wgt_csum_partial(l4, l4len, pseudo(p, sp->v, sp->proto, l4len)));
	if (sp->proto == IPPROTO_UDP && !csum)
		csum = 0xffff;
	memcpy(l4 + (sp->proto == IPPROTO_TCP ? 16 : 6), &csum, 2);
	return len;
}

/* A TUN read as the kernel makes it: virtio header, packet, L4 checksum = pseudo-header sum. */
static size_t build_gso(uint8_t *buf, const struct spec *sp, size_t plen, uint16_t gso_size)
{
	struct virtio_net_hdr h = { .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .gso_size = gso_size };
	uint8_t *ip = buf + VNET;
	size_t len = build(ip, sp, plen), nh = nh_len(sp);
	bool tcp = sp->proto == IPPROTO_TCP;
	uint16_t partial = wgt_csum_fold(pseudo(ip, sp->v, sp->proto, len - nh));

	if (tcp)
		h.gso_type = sp->v == 4 ? VIRTIO_NET_HDR_GSO_TCPV4 : VIRTIO_NET_HDR_GSO_TCPV6;
	else
		h.gso_type = VIRTIO_NET_HDR_GSO_UDP_L4;
	h.hdr_len = (uint16_t)hdrs_len(sp);
	h.csum_start = (uint16_t)nh;
	h.csum_offset = tcp ? 16 : 6;
	memcpy(ip + nh + h.csum_offset, &partial, 2);
	memcpy(buf, &h, VNET);
	return VNET + len;
}

/* Both the IP header (IPv4) and the transport checksum verify. */
static bool csums_ok(const uint8_t *ip, size_t len)
{
	int v = ip[0] >> 4;
	size_t nh = v == 4 ? (size_t)(ip[0] & 15) * 4 : ip[6] == IPPROTO_DSTOPTS ? 48 : 40;
	int proto = v == 4 ? ip[9] : ip[nh == 40 ? 6 : 40];

	if (v == 4 && wgt_csum_fold(wgt_csum_partial(ip, nh, 0)) != 0xffff)
		return false;
	return wgt_csum_fold(wgt_csum_partial(ip + nh, len - nh,
					      pseudo(ip, v, proto, len - nh))) == 0xffff;
}

/* Buffers in BSS: segments of 64 KiB, coalesce inputs with headroom, scratch. */
static uint8_t seg_mem[WGT_OFFLOAD_MAX_SEGS][65536];
static uint8_t *seg_bufs[WGT_OFFLOAD_MAX_SEGS];
static uint8_t bufs[160][BUF_LEN], in_buf[BUF_LEN], want[BUF_LEN];

static void setup(void)
{
	uint64_t s = DEFAULT_SEED;
	size_t i, f;

	for (f = 0; f < NFLOWS; f++)
		for (i = 0; i < STREAM_LEN; i++)
			streams[f][i] = (uint8_t)next_rand(&s);
	for (i = 0; i < WGT_OFFLOAD_MAX_SEGS; i++)
		seg_bufs[i] = seg_mem[i];
}

/*
 * Splits sp's super-packet of plen payload bytes at gso and checks every
 * segment against an independently built one: headers field by field by
 * construction, then a few fields by name, then the checksums.
 */
static void split_and_check(struct spec sp, size_t plen, uint16_t gso)
{
	uint16_t lens[WGT_OFFLOAD_MAX_SEGS];
	size_t len = build_gso(in_buf, &sp, plen, gso), hl = hdrs_len(&sp);
	unsigned nseg = plen ? (unsigned)((plen + gso - 1) / gso) : 1, i;
	int n = wgt_offload_split(in_buf, len, seg_bufs, 65536, WGT_OFFLOAD_MAX_SEGS, lens);

	ck_assert_int_eq(n, (int)nseg);
	for (i = 0; i < nseg; i++) {
		size_t off = (size_t)i * gso, seg_plen = plen - off < gso ? plen - off : gso;
		struct spec e = sp;
		const uint8_t *seg = seg_bufs[i], *l4 = seg + nh_len(&sp);

		e.seq = sp.seq + (uint32_t)off;
		e.id = (uint16_t)(sp.id + i);
		if (i + 1 < nseg)
			e.flags &= (uint8_t)~(FIN | PSH);
		if (i)
			e.flags &= (uint8_t)~CWR;
		ck_assert_uint_eq(lens[i], hl + seg_plen);
		ck_assert_uint_eq(build(want, &e, seg_plen), lens[i]);
		ck_assert_msg(!memcmp(seg, want, lens[i]), "segment %u differs", i);
		ck_assert(csums_ok(seg, lens[i]));
		if (sp.v == 4) {
			ck_assert_uint_eq(get16(seg + 2), lens[i]);
			ck_assert_uint_eq(get16(seg + 4), (uint16_t)(sp.id + i));
		} else {
			ck_assert_uint_eq(get16(seg + 4), lens[i] - 40);
		}
		if (sp.proto == IPPROTO_TCP) {
			ck_assert_uint_eq(get32(l4 + 4), (uint32_t)(sp.seq + off));
			ck_assert_uint_eq(!!(l4[13] & FIN), (sp.flags & FIN) && i + 1 == nseg);
			ck_assert_uint_eq(!!(l4[13] & PSH), (sp.flags & PSH) && i + 1 == nseg);
			ck_assert_uint_eq(!!(l4[13] & CWR), (sp.flags & CWR) && i == 0);
		} else {
			ck_assert_uint_eq(get16(l4 + 4), lens[i] - nh_len(&sp));
		}
		ck_assert(!memcmp(seg + hl, in_buf + VNET + hl + off, seg_plen));
	}
}

START_TEST(test_split_tcp4)
{
	struct spec sp = tcp_spec(4);

	sp.flags = ACK | PSH | FIN | CWR;
	split_and_check(sp, 3000, 1000); /* exactly divisible */
	split_and_check(sp, 3500, 1000); /* short last */
	split_and_check(sp, 500, 1000);  /* one segment */
	sp.opt = true;                   /* IPv4 options are copied */
	split_and_check(sp, 2500, 1000);
	sp.opt = false;
	sp.id = 0xfffe;                  /* IDs wrap */
	sp.seq = 0xfffffe00;             /* and so do sequence numbers */
	sp.ts = false;
	split_and_check(sp, 64000, 1448);
	split_and_check(sp, 65535 - 40, 1460);
}
END_TEST

START_TEST(test_split_tcp6)
{
	struct spec sp = tcp_spec(6);

	sp.flags = ACK | PSH | CWR;
	split_and_check(sp, 4000, 1000);
	split_and_check(sp, 4001, 1000);
	split_and_check(sp, 1, 1000);
	sp.opt = true; /* so are destination options */
	split_and_check(sp, 2500, 1000);
	sp.opt = false;
	sp.ts = false;
	split_and_check(sp, 65535 - 60, 1220);
}
END_TEST

START_TEST(test_split_udp)
{
	struct spec sp4 = udp_spec(4), sp6 = udp_spec(6);

	split_and_check(sp4, 1400 * 10, 1400);
	split_and_check(sp4, 1400 * 10 + 7, 1400);
	split_and_check(sp4, 100, 1400);
	split_and_check(sp6, 1200 * 20, 1200);
	split_and_check(sp6, 1200 * 20 - 1, 1200);
	split_and_check(sp6, 1200, 1200);
}
END_TEST

START_TEST(test_split_none)
{
	struct spec sp = tcp_spec(4), su = udp_spec(6);
	uint16_t lens[1];
	size_t len;
	uint8_t *ip = in_buf + VNET;

	/* Without NEEDS_CSUM: the packet, byte for byte. */
	len = VNET + build(ip, &sp, 700);
	memset(in_buf, 0, VNET);
	ck_assert_int_eq(wgt_offload_split(in_buf, len, seg_bufs, 65536, 1, lens), 1);
	ck_assert_uint_eq(lens[0], len - VNET);
	ck_assert(!memcmp(seg_bufs[0], ip, lens[0]));

	/* With it: the completed checksum equals the one build() computed. */
	for (int k = 0; k < 2; k++) {
		struct spec *s = k ? &su : &sp;
		struct virtio_net_hdr h;

		len = build_gso(in_buf, s, 333, 1000);
		build(want, s, 333);
		memcpy(&h, in_buf, VNET);
		h.gso_type = VIRTIO_NET_HDR_GSO_NONE;
		h.gso_size = 0;
		h.hdr_len = 0;
		memcpy(in_buf, &h, VNET);
		ck_assert(!csums_ok(ip, len - VNET));
		ck_assert_int_eq(wgt_offload_split(in_buf, len, seg_bufs, 65536, 1, lens), 1);
		ck_assert(!memcmp(seg_bufs[0], want, lens[0]));
		ck_assert_int_eq(wgt_offload_csum_complete(in_buf, len), 0);
		ck_assert(!memcmp(ip, want, len - VNET));
		ck_assert_uint_eq(in_buf[0] & VIRTIO_NET_HDR_F_NEEDS_CSUM, 0);
		/* Idempotent: the flag is gone. */
		ck_assert_int_eq(wgt_offload_csum_complete(in_buf, len), 0);
		ck_assert(!memcmp(ip, want, len - VNET));
	}
	/* csum_complete refuses GSO packets. */
	len = build_gso(in_buf, &sp, 3000, 1000);
	ck_assert_int_eq(wgt_offload_csum_complete(in_buf, len), -EINVAL);
}
END_TEST

/* Applies one damage to a fresh TCPv4 (or v6) GSO read and expects -EINVAL. */
static void expect_einval(int v, int proto, void (*damage)(uint8_t *buf, size_t *len))
{
	struct spec sp = proto == IPPROTO_TCP ? tcp_spec(v) : udp_spec(v);
	uint16_t lens[WGT_OFFLOAD_MAX_SEGS];
	size_t len = build_gso(in_buf, &sp, 3000, 1000);

	ck_assert_int_eq(wgt_offload_split(in_buf, len, seg_bufs, 65536, 64, lens), 3);
	len = build_gso(in_buf, &sp, 3000, 1000);
	damage(in_buf, &len);
	ck_assert_int_eq(wgt_offload_split(in_buf, len, seg_bufs, 65536, 64, lens), -EINVAL);
}

/* Virtio header fields by offset; the 16-bit ones in host order. */
#define H_FLAGS offsetof(struct virtio_net_hdr, flags)
#define H_TYPE offsetof(struct virtio_net_hdr, gso_type)
#define H_HDR_LEN offsetof(struct virtio_net_hdr, hdr_len)
#define H_GSO_SIZE offsetof(struct virtio_net_hdr, gso_size)
#define H_CSUM_START offsetof(struct virtio_net_hdr, csum_start)
#define H_CSUM_OFF offsetof(struct virtio_net_hdr, csum_offset)

static void hdr_set(uint8_t *buf, size_t off, uint16_t v)
{
	if (off < H_HDR_LEN)
		buf[off] = (uint8_t)v;
	else
		memcpy(buf + off, &v, 2);
}

/* Cuts an IPv4 read to n bytes of packet, total length to match. */
static void trunc_to(uint8_t *b, size_t *l, size_t n) { *l = VNET + n; put16(b + VNET + 2, n); }

static void d_type2(uint8_t *b, size_t *l) { hdr_set(b, H_TYPE, 2); }
static void d_type_ufo(uint8_t *b, size_t *l) { hdr_set(b, H_TYPE, VIRTIO_NET_HDR_GSO_UDP); }
static void d_type6(uint8_t *b, size_t *l) { hdr_set(b, H_TYPE, 6); }
static void d_ecn(uint8_t *b, size_t *l) { b[1] |= VIRTIO_NET_HDR_GSO_ECN; }
static void d_tcpv6_on_v4(uint8_t *b, size_t *l) { hdr_set(b, H_TYPE, VIRTIO_NET_HDR_GSO_TCPV6); }
static void d_tcpv4_on_v6(uint8_t *b, size_t *l) { hdr_set(b, H_TYPE, VIRTIO_NET_HDR_GSO_TCPV4); }
static void d_udp_on_tcp(uint8_t *b, size_t *l) { hdr_set(b, H_TYPE, VIRTIO_NET_HDR_GSO_UDP_L4); }
static void d_hdr_len_past(uint8_t *b, size_t *l) { hdr_set(b, H_HDR_LEN, (uint16_t)(*l - 9)); }
static void d_hdr_len_short(uint8_t *b, size_t *l) { hdr_set(b, H_HDR_LEN, 20 + 20); }
static void d_csum_start(uint8_t *b, size_t *l) { hdr_set(b, H_CSUM_START, 21); }
static void d_csum_start_far(uint8_t *b, size_t *l) { hdr_set(b, H_CSUM_START, 60000); }
static void d_csum_offset(uint8_t *b, size_t *l) { hdr_set(b, H_CSUM_OFF, 10); }
static void d_csum_offset_far(uint8_t *b, size_t *l) { hdr_set(b, H_CSUM_OFF, 65535); }
static void d_gso0(uint8_t *b, size_t *l) { hdr_set(b, H_GSO_SIZE, 0); }
static void d_no_csum(uint8_t *b, size_t *l) { hdr_set(b, H_FLAGS, 0); }
static void d_flags(uint8_t *b, size_t *l) { hdr_set(b, H_FLAGS, 0x81); }
static void d_trunc_hdr(uint8_t *b, size_t *l) { *l = 9; }
static void d_trunc_ip(uint8_t *b, size_t *l) { *l = VNET + 19; }
static void d_trunc_pkt(uint8_t *b, size_t *l) { *l -= 1; }
static void d_ihl4(uint8_t *b, size_t *l) { b[VNET] = 0x44; }
static void d_ihl_past(uint8_t *b, size_t *l) { trunc_to(b, l, 24); b[VNET] = 0x47; }
static void d_totlen(uint8_t *b, size_t *l) { put16(b + VNET + 2, get16(b + VNET + 2) + 1); }
static void d_plen6(uint8_t *b, size_t *l) { put16(b + VNET + 4, get16(b + VNET + 4) - 1); }
static void d_version(uint8_t *b, size_t *l) { b[VNET] = 0x55; }
static void d_frag(uint8_t *b, size_t *l) { b[VNET + 6] |= 0x20; }
static void d_doff(uint8_t *b, size_t *l) { b[VNET + 20 + 12] = 0x40; }
static void d_doff_past(uint8_t *b, size_t *l) { trunc_to(b, l, 60); b[VNET + 32] = 0xf0; }
static void d_udp_len(uint8_t *b, size_t *l) { put16(b + VNET + 24, 9); }
static void d_ext_routing(uint8_t *b, size_t *l) { b[VNET + 6] = 43; }

START_TEST(test_split_malformed)
{
	static void (*const v4tcp[])(uint8_t *, size_t *) = {
		d_type2, d_type_ufo, d_type6, d_ecn, d_tcpv6_on_v4, d_udp_on_tcp, d_hdr_len_past,
		d_hdr_len_short, d_csum_start, d_csum_start_far, d_csum_offset, d_csum_offset_far,
		d_gso0, d_no_csum, d_flags, d_trunc_hdr, d_trunc_ip, d_trunc_pkt, d_ihl4, d_ihl_past,
		d_totlen, d_version, d_frag, d_doff, d_doff_past,
	};
	static void (*const v6tcp[])(uint8_t *, size_t *) = {
		d_tcpv4_on_v6, d_trunc_pkt, d_plen6, d_ecn, d_gso0, d_ext_routing, d_csum_offset,
	};
	size_t i;

	for (i = 0; i < sizeof(v4tcp) / sizeof(v4tcp[0]); i++)
		expect_einval(4, IPPROTO_TCP, v4tcp[i]);
	for (i = 0; i < sizeof(v6tcp) / sizeof(v6tcp[0]); i++)
		expect_einval(6, IPPROTO_TCP, v6tcp[i]);
	expect_einval(4, IPPROTO_UDP, d_udp_len);
	expect_einval(4, IPPROTO_UDP, d_tcpv4_on_v6); /* TCPV4 on a UDP packet */
	expect_einval(4, IPPROTO_UDP, d_csum_offset);
	expect_einval(6, IPPROTO_UDP, d_trunc_pkt);
	expect_einval(6, IPPROTO_UDP, d_ecn);
}
END_TEST

START_TEST(test_split_malformed_none)
{
	struct spec sp = tcp_spec(4);
	uint16_t lens[1];
	size_t len = VNET + build(in_buf + VNET, &sp, 100);

	memset(in_buf, 0, VNET);
	hdr_set(in_buf, H_FLAGS, VIRTIO_NET_HDR_F_NEEDS_CSUM);
	hdr_set(in_buf, H_CSUM_START, 19); /* inside the IPv4 header */
	hdr_set(in_buf, H_CSUM_OFF, 16);
	ck_assert_int_eq(wgt_offload_split(in_buf, len, seg_bufs, 65536, 1, lens), -EINVAL);
	ck_assert_int_eq(wgt_offload_csum_complete(in_buf, len), -EINVAL);
	hdr_set(in_buf, H_CSUM_START, (uint16_t)(len - VNET - 1)); /* field past the end */
	hdr_set(in_buf, H_CSUM_OFF, 0);
	ck_assert_int_eq(wgt_offload_split(in_buf, len, seg_bufs, 65536, 1, lens), -EINVAL);
	ck_assert_int_eq(wgt_offload_csum_complete(in_buf, len), -EINVAL);
	hdr_set(in_buf, H_CSUM_START, (uint16_t)(len - VNET - 2)); /* the last two bytes: fine */
	ck_assert_int_eq(wgt_offload_split(in_buf, len, seg_bufs, 65536, 1, lens), 1);
	hdr_set(in_buf, H_HDR_LEN, (uint16_t)(len - VNET + 1)); /* hdr_len past the packet */
	ck_assert_int_eq(wgt_offload_split(in_buf, len, seg_bufs, 65536, 1, lens), -EINVAL);
	ck_assert_int_eq(wgt_offload_split(in_buf, 0, seg_bufs, 65536, 1, lens), -EINVAL);
	ck_assert_int_eq(wgt_offload_csum_complete(in_buf, 5), -EINVAL);
}
END_TEST

START_TEST(test_split_nobufs)
{
	struct spec sp = tcp_spec(4);
	uint16_t lens[WGT_OFFLOAD_MAX_SEGS];
	size_t len = build_gso(in_buf, &sp, 1000, 100), hl = hdrs_len(&sp);

	ck_assert_int_eq(wgt_offload_split(in_buf, len, seg_bufs, hl + 100, 10, lens), 10);
	ck_assert_int_eq(wgt_offload_split(in_buf, len, seg_bufs, hl + 100, 9, lens), -ENOBUFS);
	ck_assert_int_eq(wgt_offload_split(in_buf, len, seg_bufs, hl + 99, 10, lens), -ENOBUFS);
	len = build_gso(in_buf, &sp, 64 * 100 + 1, 100);
	ck_assert_int_eq(wgt_offload_split(in_buf, len, seg_bufs, 65536, WGT_OFFLOAD_MAX_SEGS,
					   lens), -ENOBUFS);
	/* Malformed wins over too big. */
	hdr_set(in_buf, H_GSO_SIZE, 0);
	ck_assert_int_eq(wgt_offload_split(in_buf, len, seg_bufs, 1, 1, lens), -EINVAL);
	memset(in_buf, 0, VNET);
	len = VNET + build(in_buf + VNET, &sp, 100);
	ck_assert_int_eq(wgt_offload_split(in_buf, len, seg_bufs, len - VNET - 1, 1, lens),
			 -ENOBUFS);
	ck_assert_int_eq(wgt_offload_split(in_buf, len, seg_bufs, 65536, 0, lens), -ENOBUFS);
}
END_TEST

/* Coalesce inputs: packet i lives at bufs[i] + VNET with room to grow. */
static struct wgt_offload_pkt pkts[160];
static struct iovec writes[160];

static void put_pkt(unsigned i, const struct spec *sp, size_t plen)
{
	pkts[i].data = bufs[i] + VNET;
	pkts[i].len = build(pkts[i].data, sp, plen);
	pkts[i].cap = BUF_LEN - VNET;
}

/* The write's virtio header. */
static struct virtio_net_hdr write_hdr(unsigned k)
{
	struct virtio_net_hdr h;

	memcpy(&h, writes[k].iov_base, VNET);
	return h;
}

/* Write k is input packet i untouched under a zero header. */
static void assert_plain(unsigned k, unsigned i, const uint8_t *orig, size_t len)
{
	static const uint8_t zero[VNET];

	ck_assert_ptr_eq(writes[k].iov_base, bufs[i]);
	ck_assert_uint_eq(writes[k].iov_len, VNET + len);
	ck_assert(!memcmp(bufs[i], zero, VNET));
	ck_assert(!memcmp(bufs[i] + VNET, orig, len));
}

/* Completes the CHECKSUM_PARTIAL of a merged write as the kernel would, then verifies it. */
static void assert_kernel_csum_ok(unsigned k)
{
	struct virtio_net_hdr h = write_hdr(k);
	size_t len = writes[k].iov_len;

	memcpy(want, writes[k].iov_base, len);
	h.gso_type = VIRTIO_NET_HDR_GSO_NONE;
	memcpy(want, &h, VNET);
	ck_assert_int_eq(wgt_offload_csum_complete(want, len), 0);
	ck_assert(csums_ok(want + VNET, len - VNET));
}

/* Split, then coalesce the segments: the super-packet comes back, virtio header and all. */
static void round_trip(struct spec sp, size_t plen, uint16_t gso)
{
	uint16_t lens[WGT_OFFLOAD_MAX_SEGS];
	size_t len = build_gso(in_buf, &sp, plen, gso);
	int n = wgt_offload_split(in_buf, len, seg_bufs, 65536, WGT_OFFLOAD_MAX_SEGS, lens);

	ck_assert_int_gt(n, 1);
	for (int i = 0; i < n; i++) {
		pkts[i].data = bufs[i] + VNET;
		memcpy(pkts[i].data, seg_bufs[i], lens[i]);
		pkts[i].len = lens[i];
		pkts[i].cap = BUF_LEN - VNET;
	}
	ck_assert_uint_eq(wgt_offload_coalesce(pkts, (unsigned)n, true, writes), 1);
	ck_assert_ptr_eq(writes[0].iov_base, bufs[0]);
	ck_assert_uint_eq(writes[0].iov_len, len);
	ck_assert_uint_eq(pkts[0].len, len - VNET);
	ck_assert_msg(!memcmp(bufs[0], in_buf, len), "v%d proto %d plen %zu gso %u", sp.v,
		      sp.proto, plen, gso);
	assert_kernel_csum_ok(0);
}

START_TEST(test_round_trip)
{
	struct spec t4 = tcp_spec(4), t6 = tcp_spec(6), u4 = udp_spec(4), u6 = udp_spec(6);

	t4.flags = t6.flags = ACK | PSH;
	round_trip(t4, 3000, 1000);
	round_trip(t4, 3500, 1000);
	round_trip(t6, 10000, 1220);
	round_trip(u4, 14000, 1400);
	round_trip(u6, 5000, 1200);
	t4.flags = ACK;
	t4.ts = false;
	round_trip(t4, 65535 - 40, 1460);
	round_trip(t4, 64 * 1000, 1000);
}
END_TEST

START_TEST(test_coalesce_interleaved)
{
	const struct virtio_net_hdr want0 = { VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV4,
					      20 + 32, 1000, 20, 16 };
	const struct virtio_net_hdr want1 = { VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_UDP_L4,
					      40 + 8, 500, 40, 6 };
	struct spec a = tcp_spec(4), b = tcp_spec(4), c = udp_spec(6);
	unsigned n = 0, i;

	a.flow = 0;
	b.flow = 1;
	c.flow = 2;
	for (i = 0; i < 3; i++) {
		put_pkt(n++, &a, 1000);
		put_pkt(n++, &c, 500);
		put_pkt(n++, &b, 800);
		a.seq += 1000;
		a.id++;
		b.seq += 800;
		c.seq += 500;
	}
	ck_assert_uint_eq(wgt_offload_coalesce(pkts, n, true, writes), 3);
	ck_assert_ptr_eq(writes[0].iov_base, bufs[0]);
	ck_assert_ptr_eq(writes[1].iov_base, bufs[1]);
	ck_assert_ptr_eq(writes[2].iov_base, bufs[2]);
	ck_assert(!memcmp(writes[0].iov_base, &want0, VNET));
	ck_assert(!memcmp(writes[1].iov_base, &want1, VNET));
	ck_assert_uint_eq(writes[1].iov_len, VNET + 48 + 1500);
	ck_assert_uint_eq(writes[2].iov_len, VNET + 52 + 2400);
	for (i = 0; i < 3; i++)
		assert_kernel_csum_ok(i);

	/* Without udp the datagrams go out one by one, in place. */
	n = 0;
	c.seq = 0;
	for (i = 0; i < 3; i++, c.seq += 500)
		put_pkt(n++, &c, 500);
	memcpy(want, pkts[1].data, pkts[1].len);
	ck_assert_uint_eq(wgt_offload_coalesce(pkts, n, false, writes), 3);
	assert_plain(1, 1, want, pkts[1].len);
}
END_TEST

/* Three segments of one flow, changed by `mod`; expects nw writes of sizes[k] packets each. */
static void three(void (*mod)(struct spec *sp, size_t *plen, unsigned i), unsigned nw,
		  const unsigned *sizes)
{
	struct spec sp = tcp_spec(4);
	uint8_t orig[3][2000];
	size_t olen[3];
	unsigned i, k, at = 0;

	for (i = 0; i < 3; i++) {
		struct spec s = sp;
		size_t plen = 1000;

		mod(&s, &plen, i);
		put_pkt(i, &s, plen);
		memcpy(orig[i], pkts[i].data, pkts[i].len);
		olen[i] = pkts[i].len;
		sp.seq = s.seq + (uint32_t)plen;
		sp.id++;
	}
	ck_assert_uint_eq(wgt_offload_coalesce(pkts, 3, true, writes), nw);
	for (k = 0; k < nw; at += sizes[k], k++) {
		ck_assert_ptr_eq(writes[k].iov_base, bufs[at]);
		if (sizes[k] == 1)
			assert_plain(k, at, orig[at], olen[at]);
		else
			assert_kernel_csum_ok(k);
	}
}

static void m_none(struct spec *s, size_t *p, unsigned i) { }
static void m_gap(struct spec *s, size_t *p, unsigned i) { if (i == 1) s->seq += 1; }
static void m_psh(struct spec *s, size_t *p, unsigned i) { if (i == 1) s->flags |= PSH; }
static void m_fin(struct spec *s, size_t *p, unsigned i) { if (i == 1) s->flags |= FIN; }
static void m_cwr(struct spec *s, size_t *p, unsigned i) { if (i == 1) s->flags |= CWR; }
static void m_syn(struct spec *s, size_t *p, unsigned i) { if (i == 1) s->flags |= SYN; }
static void m_ttl(struct spec *s, size_t *p, unsigned i) { if (i == 1) s->ttl = 63; }
static void m_tos(struct spec *s, size_t *p, unsigned i) { if (i == 1) s->tos = 3; }
static void m_df(struct spec *s, size_t *p, unsigned i) { if (i == 1) s->df = false; }
static void m_ack(struct spec *s, size_t *p, unsigned i) { if (i == 1) s->ack++; }
static void m_opts(struct spec *s, size_t *p, unsigned i) { if (i == 1) s->tsval++; }
static void m_noopts(struct spec *s, size_t *p, unsigned i) { if (i == 1) s->ts = false; }
static void m_larger(struct spec *s, size_t *p, unsigned i) { if (i == 1) *p = 1001; }
static void m_shorter(struct spec *s, size_t *p, unsigned i) { if (i == 1) *p = 999; }
static void m_empty(struct spec *s, size_t *p, unsigned i) { if (i == 1) *p = 0; }
static void m_psh_last(struct spec *s, size_t *p, unsigned i) { if (i == 2) s->flags |= PSH; }
static void m_psh_first(struct spec *s, size_t *p, unsigned i) { if (i == 0) s->flags |= PSH; }

START_TEST(test_coalesce_stops)
{
	static const unsigned all[] = { 3 }, one_two[] = { 1, 2 }, two_one[] = { 2, 1 },
			      each[] = { 1, 1, 1 };

	three(m_none, 1, all);
	three(m_psh_last, 1, all);
	ck_assert(((uint8_t *)writes[0].iov_base)[VNET + 20 + 13] & PSH);
	three(m_gap, 2, one_two);
	three(m_psh, 2, two_one);
	ck_assert(((uint8_t *)writes[0].iov_base)[VNET + 20 + 13] & PSH);
	three(m_psh_first, 2, one_two);
	three(m_fin, 3, each);
	three(m_cwr, 3, each);
	three(m_syn, 3, each);
	three(m_ttl, 3, each);
	three(m_tos, 3, each);
	three(m_df, 3, each);
	three(m_ack, 3, each);
	three(m_opts, 3, each);
	three(m_noopts, 3, each);
	three(m_larger, 2, one_two); /* the larger one heads a run of its own */
	three(m_shorter, 2, two_one);
	three(m_empty, 3, each);
}
END_TEST

/* Corrupts packet 1 of a three-segment flow after building it; expects three plain writes. */
static void three_damaged(int v, size_t at, uint8_t xor)
{
	struct spec sp = tcp_spec(v);
	unsigned i;

	for (i = 0; i < 3; i++, sp.seq += 1000, sp.id++)
		put_pkt(i, &sp, 1000);
	pkts[1].data[at] ^= xor;
	ck_assert_uint_eq(wgt_offload_coalesce(pkts, 3, true, writes), 3);
	for (i = 0; i < 3; i++)
		ck_assert_uint_eq(write_hdr(i).gso_type, VIRTIO_NET_HDR_GSO_NONE);
}

START_TEST(test_coalesce_bad)
{
	struct spec sp;
	unsigned i;

	three_damaged(4, 10, 1);         /* IPv4 header checksum */
	three_damaged(4, 20 + 16, 1);    /* TCP checksum */
	three_damaged(4, 20 + 40, 1);    /* payload */
	three_damaged(6, 40 + 17, 0x80); /* TCP checksum */
	three_damaged(4, 2, 1);          /* total length */

	/* IPv4 options or IPv6 extension headers in the middle: no merging. */
	for (int v = 4; v <= 6; v += 2) {
		sp = tcp_spec(v);
		for (i = 0; i < 3; i++, sp.seq += 1000) {
			sp.opt = i == 1;
			put_pkt(i, &sp, 1000);
		}
		ck_assert_uint_eq(wgt_offload_coalesce(pkts, 3, true, writes), 3);
	}
}
END_TEST

START_TEST(test_coalesce_caps)
{
	struct spec sp = tcp_spec(4);
	unsigned i, n;

	/* 60 x 1400: the first run stops below 65536 bytes. */
	sp.ts = false;
	for (i = 0; i < 60; i++, sp.seq += 1400, sp.id++)
		put_pkt(i, &sp, 1400);
	ck_assert_uint_eq(wgt_offload_coalesce(pkts, 60, true, writes), 2);
	ck_assert_uint_eq(writes[0].iov_len, VNET + 40 + 46 * 1400);
	ck_assert_ptr_eq(writes[1].iov_base, bufs[46]);
	ck_assert_uint_eq(writes[1].iov_len, VNET + 40 + 14 * 1400);

	/* 150 x 100: at most WGT_OFFLOAD_MAX_SEGS a run; batches of 128 cut once more. */
	for (i = 0; i < 150; i++, sp.seq += 100, sp.id++)
		put_pkt(i, &sp, 100);
	n = wgt_offload_coalesce(pkts, 150, true, writes);
	ck_assert_uint_eq(n, 3);
	ck_assert_uint_eq(writes[0].iov_len, VNET + 40 + 64 * 100);
	ck_assert_uint_eq(writes[1].iov_len, VNET + 40 + 64 * 100);
	ck_assert_ptr_eq(writes[2].iov_base, bufs[128]);

	/* A head without room to grow stays alone. */
	for (i = 0; i < 2; i++, sp.seq += 100, sp.id++)
		put_pkt(i, &sp, 100);
	pkts[0].cap = pkts[0].len + 99;
	ck_assert_uint_eq(wgt_offload_coalesce(pkts, 2, true, writes), 2);
	ck_assert_uint_eq(wgt_offload_coalesce(pkts, 0, true, writes), 0);
}
END_TEST

/*
 * Randomized: several flows, random sizes, PSH, gaps, damage, non-IP
 * traffic. Re-splitting every write must give back exactly each flow's
 * input packets, in input order.
 */
START_TEST(test_coalesce_random)
{
	static uint8_t copies[160][1600];
	static size_t clen[160];
	static unsigned queue[NFLOWS + 1][160];
	uint16_t lens[WGT_OFFLOAD_MAX_SEGS];
	uint64_t s = DEFAULT_SEED;

	for (int iter = 0; iter < 400; iter++) {
		unsigned n = 1 + (unsigned)(next_rand(&s) % 150), i, k, f, nw;
		unsigned count[NFLOWS + 1] = { 0 }, pos[NFLOWS + 1] = { 0 }, flow_of[160];
		struct spec sp[NFLOWS];
		size_t gso[NFLOWS];
		bool udp = iter & 1;

		for (f = 0; f < NFLOWS; f++) {
			sp[f] = f & 1 ? udp_spec(f & 2 ? 6 : 4) : tcp_spec(f & 2 ? 6 : 4);
			sp[f].flow = f;
			sp[f].seq = (uint32_t)(next_rand(&s) % 1000);
			gso[f] = 1 + next_rand(&s) % 1400;
		}
		for (i = 0; i < n; i++) {
			uint64_t r = next_rand(&s);
			size_t plen;

			f = (unsigned)(r % NFLOWS);
			plen = gso[f];
			if ((r >> 8 & 7) == 0)
				plen = r >> 16 & 1 ? plen / 2 : plen + 1;
			sp[f].flags = (r >> 12 & 15) == 0 ? ACK | PSH : ACK;
			put_pkt(i, &sp[f], plen);
			if ((r >> 20 & 31) == 0)
				pkts[i].data[pkts[i].len - 1] ^= 1; /* bad L4 checksum */
			if ((r >> 25 & 31) == 0) {
				pkts[i].data[0] = 0x11; /* not IP: a flow of its own */
				f = NFLOWS;
			}
			memcpy(copies[i], pkts[i].data, pkts[i].len);
			clen[i] = pkts[i].len;
			flow_of[i] = f;
			queue[f][count[f]++] = i;
			if (f < NFLOWS) {
				sp[f].seq += (uint32_t)plen + ((r >> 30 & 15) == 0); /* a gap */
				sp[f].id++;
			}
		}
		nw = wgt_offload_coalesce(pkts, n, udp, writes);
		ck_assert_uint_le(nw, n);
		for (k = 0; k < nw; k++) {
			struct virtio_net_hdr h = write_hdr(k);
			int m;

			for (i = 0; i < n && writes[k].iov_base != bufs[i]; i++)
				;
			ck_assert_uint_lt(i, n);
			f = flow_of[i];
			ck_assert_uint_lt(pos[f], count[f]);
			ck_assert_uint_eq(queue[f][pos[f]], i); /* the flow's next packet */
			if (h.gso_type == VIRTIO_NET_HDR_GSO_NONE) {
				assert_plain(k, i, copies[i], clen[i]);
				pos[f]++;
				continue;
			}
			ck_assert(udp || h.gso_type != VIRTIO_NET_HDR_GSO_UDP_L4);
			assert_kernel_csum_ok(k);
			m = wgt_offload_split(writes[k].iov_base, writes[k].iov_len, seg_bufs, 65536,
					      WGT_OFFLOAD_MAX_SEGS, lens);
			ck_assert_int_gt(m, 1);
			ck_assert_uint_le(pos[f] + (unsigned)m, count[f]);
			for (int j = 0; j < m; j++) {
				unsigned orig = queue[f][pos[f]++];

				ck_assert_uint_eq(lens[j], clen[orig]);
				ck_assert_msg(!memcmp(seg_bufs[j], copies[orig], lens[j]),
					      "iter %d write %u segment %d", iter, k, j);
			}
		}
		for (f = 0; f <= NFLOWS; f++)
			ck_assert_uint_eq(pos[f], count[f]);
	}
}
END_TEST

static Suite *offload_suite(void)
{
	Suite *s = suite_create("offload");
	TCase *split = tcase_create("split");
	TCase *gro = tcase_create("coalesce");

	tcase_add_checked_fixture(split, setup, NULL);
	tcase_add_test(split, test_split_tcp4);
	tcase_add_test(split, test_split_tcp6);
	tcase_add_test(split, test_split_udp);
	tcase_add_test(split, test_split_none);
	tcase_add_test(split, test_split_malformed);
	tcase_add_test(split, test_split_malformed_none);
	tcase_add_test(split, test_split_nobufs);
	suite_add_tcase(s, split);

	tcase_add_checked_fixture(gro, setup, NULL);
	tcase_add_test(gro, test_round_trip);
	tcase_add_test(gro, test_coalesce_interleaved);
	tcase_add_test(gro, test_coalesce_stops);
	tcase_add_test(gro, test_coalesce_bad);
	tcase_add_test(gro, test_coalesce_caps);
	tcase_add_test(gro, test_coalesce_random);
	tcase_set_timeout(gro, 60);
	suite_add_tcase(s, gro);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(offload_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
