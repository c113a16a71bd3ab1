/* SPDX-License-Identifier: MIT */
/* TUN offloads in software: TSO/USO segmentation of TUN reads, GRO of TUN writes. */
#include "io/offload.h"

#include <errno.h>
#include <linux/virtio_net.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/uio.h>

#include "common/compiler.h"
#include "io/checksum.h"

/* Linux 6.2 uapi; older headers lack it. */
#ifndef VIRTIO_NET_HDR_GSO_UDP_L4
#define VIRTIO_NET_HDR_GSO_UDP_L4 5
#endif

_Static_assert(sizeof(struct virtio_net_hdr) == WGT_OFFLOAD_HEADROOM,
	       "virtio_net_hdr is 10 bytes without num_buffers");

#define VNET_LEN WGT_OFFLOAD_HEADROOM
#define IP_MAX 65535 /* IPv4 total length, and our cap on any packet */
#define IPV4_MIN 20
#define IPV6_LEN 40
#define TCP_MIN 20
#define UDP_LEN 8
#define TCP_CSUM_OFF 16
#define UDP_CSUM_OFF 6

enum {
	TCP_FIN = 0x01,
	TCP_SYN = 0x02,
	TCP_RST = 0x04,
	TCP_PSH = 0x08,
	TCP_ACK = 0x10,
	TCP_URG = 0x20,
	TCP_ECE = 0x40,
	TCP_CWR = 0x80,
};

static inline uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void put16(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* Stores a checksum.h result (already in memory order) into a header field. */
static inline void put_csum(uint8_t *p, uint16_t csum)
{
	memcpy(p, &csum, sizeof(csum));
}

/* What the IP header(s) of a packet say. */
struct ipinfo {
	unsigned version;
	unsigned proto; /* after IPv6 hop-by-hop/destination options */
	size_t nhlen;   /* IPv4 IHL * 4, or 40 */
	size_t l4off;   /* where `proto`'s header starts */
	bool frag;      /* IPv4 MF or fragment offset */
};

/*
 * Checks that `len` bytes hold exactly one IPv4 or IPv6 packet (lengths
 * agree, IHL >= 5, no jumbogram) and finds its transport header. Returns 0
 * or -EINVAL.
 */
static int parse_ip(const uint8_t *ip, size_t len, struct ipinfo *ret)
{
	if (len < 1 || len > IP_MAX)
		return -EINVAL;
	switch (ip[0] >> 4) {
	case 4:
		if (len < IPV4_MIN)
			return -EINVAL;
		ret->version = 4;
		ret->nhlen = (size_t)(ip[0] & 15) * 4;
		if (ret->nhlen < IPV4_MIN || ret->nhlen > len || get16(ip + 2) != len)
			return -EINVAL;
		ret->proto = ip[9];
		ret->l4off = ret->nhlen;
		ret->frag = (get16(ip + 6) & 0x3fff) != 0;
		return 0;
	case 6:
		if (len < IPV6_LEN || (size_t)get16(ip + 4) + IPV6_LEN != len)
			return -EINVAL;
		ret->version = 6;
		ret->nhlen = IPV6_LEN;
		ret->proto = ip[6];
		ret->l4off = IPV6_LEN;
		ret->frag = false;
		while (ret->proto == IPPROTO_HOPOPTS || ret->proto == IPPROTO_DSTOPTS) {
			const uint8_t *ext = ip + ret->l4off;

			if (len - ret->l4off < 8)
				return -EINVAL;
			/* Hop-by-hop and destination options: the ones a TSO packet may carry. */
			ret->proto = ext[0];
			ret->l4off += ((size_t)ext[1] + 1) * 8;
			if (ret->l4off > len)
				return -EINVAL;
		}
		return 0;
	default:
		return -EINVAL;
	}
}

/* TCP/UDP pseudo-header sum for a transport segment of l4len bytes. */
static uint32_t pseudo_sum(const uint8_t *ip, unsigned version, uint8_t proto, size_t l4len)
{
	if (version == 4)
		return wgt_csum_pseudo_ipv4(ip + 12, ip + 16, proto, (uint16_t)l4len, 0);
	return wgt_csum_pseudo_ipv6(ip + 8, ip + 24, proto, (uint32_t)l4len, 0);
}

/*
 * The header's checksum field is left as it is while summing and its old
 * value taken out after: zeroing it first would make the sum's 8-byte load
 * wait for those byte stores to land.
 */
static void ipv4_set_csum(uint8_t *ip, size_t ihl)
{
	uint16_t old;

	memcpy(&old, ip + 10, 2);
	put_csum(ip + 10, wgt_csum_finish(wgt_csum_partial(ip, ihl, (uint16_t)~old)));
}

/*
 * CHECKSUM_PARTIAL completion: the field holds the (uncomplemented)
 * pseudo-header sum; sum from `start` to the end on top of it.
 */
static void complete_csum(uint8_t *ip, size_t len, size_t start, size_t off)
{
	uint8_t *field = ip + start + off;
	uint16_t init, csum;

	memcpy(&init, field, sizeof(init));
	field[0] = field[1] = 0;
	csum = wgt_csum_finish(wgt_csum_partial(ip + start, len - start, init));
	/* skb_checksum_help() sends 0 as CSUM_MANGLED_0: UDP reads 0 as "none". */
	put_csum(field, csum ? csum : 0xffff);
}

/* Validates a gso_type NONE header against its packet. Returns 0 or -EINVAL. */
static int check_none(const struct virtio_net_hdr *h, const struct ipinfo *ii, size_t iplen)
{
	if (h->hdr_len > iplen)
		return -EINVAL;
	if (!(h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM))
		return 0;
	if (h->csum_start < ii->nhlen || (size_t)h->csum_start + h->csum_offset + 2 > iplen)
		return -EINVAL;
	return 0;
}

/* Reads and sanity-checks the virtio header and the IP header behind it. */
static int parse_read(const uint8_t *pkt, size_t len, struct virtio_net_hdr *h,
		      struct ipinfo *ii)
{
	if (len < VNET_LEN)
		return -EINVAL;
	memcpy(h, pkt, VNET_LEN);
	if (h->flags & ~(VIRTIO_NET_HDR_F_NEEDS_CSUM | VIRTIO_NET_HDR_F_DATA_VALID))
		return -EINVAL;
	return parse_ip(pkt + VNET_LEN, len - VNET_LEN, ii);
}

/* Any thread (pure) */
int wgt_offload_csum_complete(uint8_t *pkt, size_t len)
{
	struct virtio_net_hdr h;
	struct ipinfo ii;
	int ret;

	ret = parse_read(pkt, len, &h, &ii);
	if (ret)
		return ret;
	if (h.gso_type != VIRTIO_NET_HDR_GSO_NONE)
		return -EINVAL;
	ret = check_none(&h, &ii, len - VNET_LEN);
	if (ret || !(h.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM))
		return ret;
	complete_csum(pkt + VNET_LEN, len - VNET_LEN, h.csum_start, h.csum_offset);
	pkt[0] &= (uint8_t)~VIRTIO_NET_HDR_F_NEEDS_CSUM;
	return 0;
}

/*
 * The GSO header checks: type against the packet, checksum offload fields
 * at the transport header, hdr_len covering the real headers. On success
 * *ret_hlen is the IP + transport header length and *ret_tcp says which.
 */
static int check_gso(const struct virtio_net_hdr *h, const uint8_t *ip, size_t iplen,
		     const struct ipinfo *ii, size_t *ret_hlen, bool *ret_tcp)
{
	size_t l4hl;
	bool tcp;

	switch (h->gso_type) {
	case VIRTIO_NET_HDR_GSO_TCPV4:
		tcp = true;
		if (ii->version != 4)
			return -EINVAL;
		break;
	case VIRTIO_NET_HDR_GSO_TCPV6:
		tcp = true;
		if (ii->version != 6)
			return -EINVAL;
		break;
	case VIRTIO_NET_HDR_GSO_UDP_L4:
		tcp = false;
		break;
	default: /* UFO, the ECN bit, unknown types */
		return -EINVAL;
	}
	if (ii->proto != (tcp ? IPPROTO_TCP : IPPROTO_UDP) || ii->frag || !h->gso_size)
		return -EINVAL;
	if (!(h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) || h->csum_start != ii->l4off ||
	    h->csum_offset != (tcp ? TCP_CSUM_OFF : UDP_CSUM_OFF))
		return -EINVAL;
	if (tcp) {
		if (iplen - ii->l4off < TCP_MIN)
			return -EINVAL;
		l4hl = (size_t)(ip[ii->l4off + 12] >> 4) * 4;
		if (l4hl < TCP_MIN || l4hl > iplen - ii->l4off)
			return -EINVAL;
	} else {
		l4hl = UDP_LEN;
		if (iplen - ii->l4off < UDP_LEN || get16(ip + ii->l4off + 4) != iplen - ii->l4off)
			return -EINVAL;
	}
	/* The kernel puts its linear length in hdr_len: it may cover payload too. */
	if (h->hdr_len < ii->l4off + l4hl || h->hdr_len > iplen)
		return -EINVAL;
	*ret_hlen = ii->l4off + l4hl;
	*ret_tcp = tcp;
	return 0;
}

/* Two partial sums as one (end-around carry). */
static inline uint32_t csum_add(uint32_t a, uint32_t b)
{
	uint64_t t = (uint64_t)a + b;

	return (uint32_t)t + (uint32_t)(t >> 32);
}

/* Segment i of nseg: headers fixed up, checksums computed. Returns its length. */
static size_t make_segment(uint8_t *out, const uint8_t *ip, const struct ipinfo *ii, size_t hlen,
			   const uint8_t *payload, size_t plen, unsigned i, unsigned nseg,
			   uint32_t seq, bool tcp)
{
	size_t slen = hlen + plen, l4len = slen - ii->l4off;
	uint8_t *l4 = out + ii->l4off;
	uint32_t psum;
	uint16_t csum;

	/*
	 * Headers first, payload second: the header fields are written byte by
	 * byte, and the copy gives those stores time to land before the header
	 * is summed (a load right behind them would wait for them).
	 */
	memcpy(out, ip, hlen);
	if (ii->version == 4) {
		put16(out + 2, (uint32_t)slen);
		put16(out + 4, get16(ip + 4) + i);
	} else {
		put16(out + 4, (uint32_t)(slen - IPV6_LEN));
	}
	if (tcp) {
		put32(l4 + 4, seq);
		if (i + 1 != nseg)
			l4[13] &= (uint8_t)~(TCP_FIN | TCP_PSH);
		if (i)
			l4[13] &= (uint8_t)~TCP_CWR;
		l4[TCP_CSUM_OFF] = l4[TCP_CSUM_OFF + 1] = 0;
	} else {
		put16(l4 + 4, (uint32_t)l4len);
		l4[UDP_CSUM_OFF] = l4[UDP_CSUM_OFF + 1] = 0;
	}
	/* The payload's sum comes with its copy; the headers are added below (hlen - l4off is even). */
	psum = wgt_csum_copy(out + hlen, payload, plen, 0);
	if (ii->version == 4)
		ipv4_set_csum(out, ii->nhlen);
	csum = wgt_csum_finish(wgt_csum_partial(
		l4, hlen - ii->l4off,
		csum_add(pseudo_sum(out, ii->version, tcp ? IPPROTO_TCP : IPPROTO_UDP, l4len), psum)));
	if (tcp)
		put_csum(l4 + TCP_CSUM_OFF, csum);
	else
		put_csum(l4 + UDP_CSUM_OFF, csum ? csum : 0xffff);
	return slen;
}

/* Any thread (pure) */
int wgt_offload_split(const uint8_t *pkt, size_t len, uint8_t *const *segs, size_t seg_cap,
		      unsigned max_segs, uint16_t *ret_lens)
{
	struct virtio_net_hdr h;
	struct ipinfo ii;
	const uint8_t *ip = pkt + VNET_LEN;
	size_t iplen, hlen, payload, gso, off;
	uint32_t seq = 0;
	unsigned nseg, i;
	bool tcp;
	int ret;

	ret = parse_read(pkt, len, &h, &ii);
	if (unlikely(ret))
		return ret;
	iplen = len - VNET_LEN;

	if (h.gso_type == VIRTIO_NET_HDR_GSO_NONE) {
		ret = check_none(&h, &ii, iplen);
		if (unlikely(ret))
			return ret;
		if (unlikely(!max_segs || iplen > seg_cap))
			return -ENOBUFS;
		memcpy(segs[0], ip, iplen);
		if (h.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM)
			complete_csum(segs[0], iplen, h.csum_start, h.csum_offset);
		ret_lens[0] = (uint16_t)iplen;
		return 1;
	}

	ret = check_gso(&h, ip, iplen, &ii, &hlen, &tcp);
	if (unlikely(ret))
		return ret;
	gso = h.gso_size;
	payload = iplen - hlen;
	nseg = payload ? (unsigned)((payload + gso - 1) / gso) : 1;
	if (unlikely(nseg > max_segs || hlen + WGT_MIN(gso, payload) > seg_cap))
		return -ENOBUFS;
	if (tcp)
		seq = get32(ip + ii.l4off + 4);
	for (i = 0, off = 0; i < nseg; i++, off += gso) {
		size_t plen = WGT_MIN(gso, payload - off);

		ret_lens[i] = (uint16_t)make_segment(segs[i], ip, &ii, hlen, ip + hlen + off, plen,
						     i, nseg, seq + (uint32_t)off, tcp);
	}
	return (int)nseg;
}

/*
 * Coalescing. A batch of up to BATCH packets is classified, then walked in
 * order with a small open-addressing table from flow to the flow's latest
 * run (indexed by the run's first packet). A packet either extends its
 * flow's open run or closes it; a packet that could head a run starts one.
 * Larger inputs are cut into batches: runs never cross a batch, which keeps
 * order trivially and the stack small.
 *
 *   table[hash(flow)] -> head index + 1 --> runs[head] { nsegs, gso_size, next_seq, open }
 */
#define BATCH 128
#define TABLE_SIZE 256 /* power of two, more than BATCH: probing always ends */

enum {
	FLOW_NONE, /* not a flow we track */
	FLOW_TCP4,
	FLOW_TCP6,
	FLOW_UDP4,
	FLOW_UDP6,
	FLOW_FLUSH, /* may be TCP/UDP but we cannot see the ports: end all runs */
};

struct seg {
	uint8_t kind;
	uint8_t tcp_flags;
	bool cand;   /* may head or join a run */
	bool head;   /* heads runs[its index] */
	bool merged; /* its payload went into an earlier packet */
	uint8_t version;
	uint16_t l4off;
	uint16_t hlen; /* IP + transport header */
	uint16_t plen;
	uint32_t seq;
	uint32_t hash;
};

struct run {
	uint32_t next_seq;
	uint32_t epoch;
	uint16_t nsegs;
	uint16_t gso_size;
	bool open;
	bool psh;
};

static bool is_tcp(const struct seg *s)
{
	return s->kind == FLOW_TCP4 || s->kind == FLOW_TCP6;
}

static const uint8_t *flow_addrs(const uint8_t *ip, const struct seg *s, size_t *ret_len)
{
	*ret_len = s->version == 4 ? 8 : 32;
	return ip + (s->version == 4 ? 12 : 8);
}

/*
 * Not keyed: peers choose their own addresses and ports, but a batch holds
 * at most BATCH flows, so crafted collisions cost at most BATCH^2 / 2 short
 * compares per batch.
 */
static uint32_t flow_hash(const uint8_t *ip, const struct seg *s)
{
	size_t alen, i;
	const uint8_t *a = flow_addrs(ip, s, &alen);
	uint32_t h = s->kind * 0x9e3779b9u, w;

	for (i = 0; i < alen; i += 4) {
		memcpy(&w, a + i, 4);
		h = (h ^ w) * 0x85ebca6bu;
		h ^= h >> 15;
	}
	memcpy(&w, ip + s->l4off, 4);
	h = (h ^ w) * 0xc2b2ae35u;
	return h ^ (h >> 16);
}

static bool same_flow(const uint8_t *a, const struct seg *sa, const uint8_t *b,
		      const struct seg *sb)
{
	size_t alen;
	const uint8_t *aa = flow_addrs(a, sa, &alen);

	return sa->kind == sb->kind && sa->hash == sb->hash &&
	       !memcmp(aa, b + (aa - a), alen) && !memcmp(a + sa->l4off, b + sb->l4off, 4);
}

/* Whether the transport checksum over pseudo-header + segment is right. */
static bool l4_csum_ok(const uint8_t *ip, size_t len, const struct seg *s, uint8_t proto)
{
	size_t l4len = len - s->l4off;
	uint32_t sum = pseudo_sum(ip, s->version, proto, l4len);

	return wgt_csum_fold(wgt_csum_partial(ip + s->l4off, l4len, sum)) == 0xffff;
}

/* Fills *s: which flow the packet belongs to and whether it may be merged. */
static void classify(const uint8_t *ip, size_t len, bool udp, struct seg *s)
{
	struct ipinfo ii;
	size_t l4hl;

	memset(s, 0, sizeof(*s));
	if (parse_ip(ip, len, &ii)) {
		/* Not a packet we understand: it might still be one of ours. */
		s->kind = FLOW_FLUSH;
		return;
	}
	if (ii.proto != IPPROTO_TCP && (!udp || ii.proto != IPPROTO_UDP)) {
		/* IPv6 routing/fragment/AH headers may hide TCP or UDP. */
		if (ii.version == 6 && (ii.proto == IPPROTO_ROUTING || ii.proto == IPPROTO_FRAGMENT ||
					ii.proto == IPPROTO_AH))
			s->kind = FLOW_FLUSH;
		return;
	}
	l4hl = ii.proto == IPPROTO_TCP ? TCP_MIN : UDP_LEN;
	if (ii.frag || len - ii.l4off < l4hl) {
		s->kind = FLOW_FLUSH;
		return;
	}
	s->version = (uint8_t)ii.version;
	s->l4off = (uint16_t)ii.l4off;
	if (ii.proto == IPPROTO_TCP)
		s->kind = ii.version == 4 ? FLOW_TCP4 : FLOW_TCP6;
	else
		s->kind = ii.version == 4 ? FLOW_UDP4 : FLOW_UDP6;
	s->hash = flow_hash(ip, s);

	/* Keyed; now whether it may merge. No IPv4 options, no IPv6 extensions. */
	if (ii.l4off != ii.nhlen || (ii.version == 4 && ii.nhlen != IPV4_MIN))
		return;
	if (ii.version == 4 && wgt_csum_fold(wgt_csum_partial(ip, IPV4_MIN, 0)) != 0xffff)
		return;
	if (is_tcp(s)) {
		const uint8_t *th = ip + ii.l4off;

		l4hl = (size_t)(th[12] >> 4) * 4;
		s->tcp_flags = th[13];
		s->seq = get32(th + 4);
		if (l4hl < TCP_MIN || l4hl >= len - ii.l4off ||
		    (s->tcp_flags & ~TCP_PSH) != TCP_ACK)
			return;
		if (!l4_csum_ok(ip, len, s, IPPROTO_TCP))
			return;
	} else {
		const uint8_t *uh = ip + ii.l4off;

		if (get16(uh + 4) != len - ii.l4off || len - ii.l4off == UDP_LEN)
			return;
		/* IPv4 may send no checksum (0); IPv6 must send one. */
		if ((ii.version == 6 || get16(uh + 6)) && !l4_csum_ok(ip, len, s, IPPROTO_UDP))
			return;
	}
	s->hlen = (uint16_t)(ii.l4off + l4hl);
	s->plen = (uint16_t)(len - s->hlen);
	s->cand = true;
}

/* Whether candidate p (packet b) may extend the open run headed by packet a. */
static bool can_merge(const struct wgt_offload_pkt *a, const struct seg *sa, const struct run *r,
		      const struct wgt_offload_pkt *b, const struct seg *sb)
{
	const uint8_t *x = a->data, *y = b->data;

	if (sb->hlen != sa->hlen || sb->plen > r->gso_size || r->nsegs >= WGT_OFFLOAD_MAX_SEGS ||
	    a->len + sb->plen > WGT_MIN((size_t)IP_MAX, a->cap))
		return false;
	if (sa->version == 4) {
		/* TOS, flags + fragment offset (DF), TTL. Not the ID. */
		if (x[1] != y[1] || x[6] != y[6] || x[7] != y[7] || x[8] != y[8])
			return false;
	} else {
		/* Version, traffic class, flow label; hop limit. */
		if (memcmp(x, y, 4) || x[7] != y[7])
			return false;
	}
	if (is_tcp(sa)) {
		/* Adjacent; same ack, data offset + reserved bits, options. */
		if (sb->seq != r->next_seq ||
		    memcmp(x + sa->l4off + 8, y + sb->l4off + 8, 5) ||
		    memcmp(x + sa->l4off + TCP_MIN, y + sb->l4off + TCP_MIN,
			   sa->hlen - sa->l4off - TCP_MIN))
			return false;
	}
	return true;
}

static void run_start(struct run *r, const struct seg *s, uint32_t epoch)
{
	r->next_seq = s->seq + s->plen;
	r->epoch = epoch;
	r->nsegs = 1;
	r->gso_size = s->plen;
	r->psh = false;
	/* A PSH packet ends its run: it can head one but nothing follows it. */
	r->open = !(s->tcp_flags & TCP_PSH);
}

static void run_append(struct wgt_offload_pkt *a, struct run *r, const struct wgt_offload_pkt *b,
		       const struct seg *sb)
{
	memcpy(a->data + a->len, b->data + sb->hlen, sb->plen);
	a->len += sb->plen;
	r->nsegs++;
	r->next_seq += sb->plen;
	if (sb->plen < r->gso_size)
		r->open = false;
	if (sb->tcp_flags & TCP_PSH) {
		r->psh = true;
		r->open = false;
	}
}

/* The merged packet's headers and its virtio header for a GSO write. */
static void run_finish(struct wgt_offload_pkt *p, const struct seg *s, const struct run *r)
{
	struct virtio_net_hdr h = { 0 };
	uint8_t *ip = p->data, *l4 = ip + s->l4off;
	size_t l4len = p->len - s->l4off;
	bool tcp = is_tcp(s);
	uint8_t proto = tcp ? IPPROTO_TCP : IPPROTO_UDP;
	unsigned csum_off = tcp ? TCP_CSUM_OFF : UDP_CSUM_OFF;

	if (s->version == 4) {
		put16(ip + 2, (uint32_t)p->len);
		ipv4_set_csum(ip, IPV4_MIN);
	} else {
		put16(ip + 4, (uint32_t)(p->len - IPV6_LEN));
	}
	if (tcp) {
		if (r->psh)
			l4[13] |= TCP_PSH;
	} else {
		put16(l4 + 4, (uint32_t)l4len);
	}
	/* CHECKSUM_PARTIAL: the folded, uncomplemented pseudo-header sum. */
	put_csum(l4 + csum_off, wgt_csum_fold(pseudo_sum(ip, s->version, proto, l4len)));

	h.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	if (tcp)
		h.gso_type = s->version == 4 ? VIRTIO_NET_HDR_GSO_TCPV4 : VIRTIO_NET_HDR_GSO_TCPV6;
	else
		h.gso_type = VIRTIO_NET_HDR_GSO_UDP_L4;
	h.hdr_len = s->hlen;
	h.gso_size = r->gso_size;
	h.csum_start = s->l4off;
	h.csum_offset = (uint16_t)csum_off;
	memcpy(ip - VNET_LEN, &h, VNET_LEN);
}

/* Returns the table slot of pkts[i]'s flow: its entry, or the empty slot to take. */
static uint8_t *table_find(uint8_t *table, const struct wgt_offload_pkt *pkts,
			   const struct seg *segs, unsigned i)
{
	uint32_t slot = segs[i].hash & (TABLE_SIZE - 1);

	for (;; slot = (slot + 1) & (TABLE_SIZE - 1)) {
		unsigned e = table[slot];

		if (!e || same_flow(pkts[e - 1].data, &segs[e - 1], pkts[i].data, &segs[i]))
			return &table[slot];
	}
}

static unsigned coalesce_batch(struct wgt_offload_pkt *pkts, unsigned n, bool udp,
			       struct iovec *ret_writes)
{
	struct seg segs[BATCH];
	struct run runs[BATCH];
	uint8_t table[TABLE_SIZE];
	uint32_t epoch = 0;
	unsigned i, k = 0;

	memset(table, 0, sizeof(table));
	for (i = 0; i < n; i++) {
		struct seg *s = &segs[i];
		struct run *r = NULL;
		uint8_t *slot;

		classify(pkts[i].data, pkts[i].len, udp, s);
		if (s->kind == FLOW_FLUSH) {
			epoch++; /* every run started before is closed */
			continue;
		}
		if (s->kind == FLOW_NONE)
			continue;
		slot = table_find(table, pkts, segs, i);
		if (*slot) {
			unsigned h = *slot - 1u;

			r = &runs[h];
			if (r->open && r->epoch == epoch && s->cand &&
			    can_merge(&pkts[h], &segs[h], r, &pkts[i], s)) {
				run_append(&pkts[h], r, &pkts[i], s);
				s->merged = true;
				continue;
			}
			r->open = false;
		}
		if (s->cand) {
			run_start(&runs[i], s, epoch);
			s->head = true;
			*slot = (uint8_t)(i + 1);
		}
	}

	for (i = 0; i < n; i++) {
		uint8_t *hdr = pkts[i].data - VNET_LEN;

		if (segs[i].merged)
			continue;
		if (segs[i].head && runs[i].nsegs > 1)
			run_finish(&pkts[i], &segs[i], &runs[i]);
		else
			memset(hdr, 0, VNET_LEN);
		ret_writes[k].iov_base = hdr;
		ret_writes[k].iov_len = VNET_LEN + pkts[i].len;
		k++;
	}
	return k;
}

/* Any thread (pure, only touches its arguments) */
unsigned wgt_offload_coalesce(struct wgt_offload_pkt *pkts, unsigned n, bool udp,
			      struct iovec *ret_writes)
{
	unsigned done = 0, k = 0;

	while (done < n) {
		unsigned batch = WGT_MIN(n - done, (unsigned)BATCH);

		k += coalesce_batch(pkts + done, batch, udp, ret_writes + k);
		done += batch;
	}
	return k;
}
