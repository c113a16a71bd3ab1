/* SPDX-License-Identifier: MIT */
/* TUN offloads in software: split TSO/USO super-packets, coalesce received segments (GRO). */
#ifndef WGT_IO_OFFLOAD_H
#define WGT_IO_OFFLOAD_H

/*
 * Both directions of the "fast data path" between a TUN device opened with
 * IFF_VNET_HDR (see io/tun.h) and the tunnel:
 *
 *   TUN read --> [vnet hdr | super-packet] --split()--> N IP segments --> encrypt
 *   decrypt  --> N IP segments --coalesce()--> [vnet hdr | super-packet] --> TUN write
 *
 * The virtio_net_hdr is the legacy 10-byte one, fields in host byte order:
 *
 *   u8 flags | u8 gso_type | u16 hdr_len | u16 gso_size | u16 csum_start | u16 csum_offset
 *
 * Everything here is a pure function over caller buffers: no I/O, no
 * allocation, no global state. Any thread.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct iovec;

/*
 * Default size of the caller's segment arrays for wgt_offload_split(), and
 * the most segments wgt_offload_coalesce() merges into one super-packet. A
 * 64 KiB TSO packet at an MSS of 1024 or more splits into at most 64; with a
 * smaller MSS the kernel may send more (cap it on the device with
 * `ip link set DEV gso_max_segs 64`, or pass larger arrays).
 */
#define WGT_OFFLOAD_MAX_SEGS 64

/* Bytes before each coalesce input's data that are ours to write: one virtio_net_hdr. */
#define WGT_OFFLOAD_HEADROOM 10

/*
 * Split. `pkt` is what one TUN read returned: a 10-byte virtio_net_hdr, then
 * an IPv4 or IPv6 packet, `len` bytes in all.
 *
 * The header is checked against the packet, not trusted: gso_type NONE,
 * TCPV4 (IPv4 TCP only), TCPV6 (IPv6 TCP only) or UDP_L4 (IPv4 or IPv6 UDP);
 * the ECN bit, UFO and unknown flags are refused. The IP header must be
 * whole, IPv4 IHL >= 5 and total length == packet length, IPv6 payload
 * length + 40 == packet length (no jumbograms); a GSO packet must not be an
 * IPv4 fragment, may carry IPv6 hop-by-hop and destination options only,
 * must have NEEDS_CSUM with csum_start at the transport header and
 * csum_offset at its checksum field, real header length <= hdr_len <= packet
 * length (the kernel reports its linear length there, which may be more),
 * a whole TCP header (data offset >= 5) or a UDP length equal to the UDP
 * bytes, and gso_size > 0.
 *
 * gso_type NONE: one segment, the packet as is; with NEEDS_CSUM (csum_start
 * at or past the IP header, the 2-byte field inside the packet) the
 * checksum is completed as wgt_offload_csum_complete() does.
 *
 * GSO: segments of gso_size payload bytes (the last may be shorter; a GSO
 * packet without payload gives one segment of headers), each with its own
 * copy of the IP and transport headers: IPv4 total length, ID + i for
 * segment i (the kernel's TSO/USO without FIXEDID) and header checksum;
 * IPv6 payload length; TCP sequence number advanced by the payload before
 * it, FIN and PSH only on the last segment, CWR only on the first; UDP
 * length; a full TCP/UDP checksum over pseudo-header, header and payload
 * (a UDP checksum that comes out 0 is sent as 0xffff).
 *
 * Segment i is written to segs[i] (seg_cap bytes each, not overlapping pkt)
 * and its length to ret_lens[i]. Returns the number of segments, 1 to
 * max_segs; -EINVAL for a malformed packet (drop it); -ENOBUFS when it would
 * take more than max_segs segments or a segment longer than seg_cap.
 * Nothing is written on error except possibly segs[] contents.
 *
 * Any thread (pure).
 */
int wgt_offload_split(const uint8_t *pkt, size_t len, uint8_t *const *segs, size_t seg_cap,
		      unsigned max_segs, uint16_t *ret_lens);

/*
 * In place, for a gso_type NONE packet (pkt = virtio hdr + packet, `len` in
 * all): with VIRTIO_NET_HDR_F_NEEDS_CSUM, sums from csum_start to the end,
 * taking the pseudo-header sum the kernel left in the checksum field as the
 * initial value, stores the complement at csum_start + csum_offset (0 as
 * 0xffff, as the kernel does) and clears NEEDS_CSUM. Without the flag,
 * nothing to do. Returns 0, or -EINVAL for a GSO packet, a bad IP header or
 * checksum fields out of range (nothing changed then).
 * Any thread (pure).
 */
int wgt_offload_csum_complete(uint8_t *pkt, size_t len);

/*
 * One coalesce input: a plain IPv4/IPv6 packet of `len` bytes at `data`,
 * with WGT_OFFLOAD_HEADROOM writable bytes before it and `cap` bytes usable
 * from data on (cap >= len). Buffers of different packets must not overlap.
 */
struct wgt_offload_pkt {
	uint8_t *data;
	size_t len;
	size_t cap;
};

/*
 * Coalesce (GRO) for TUN writes, in place.
 *
 * TCP segments of one flow (addresses, ports) merge into the first when
 * they follow it exactly (seq == end of the run so far) and match it: IPv4
 * TOS, TTL, DF, no options, no fragment; IPv6 traffic class, flow label, hop
 * limit, no extension headers; TCP ack, header length and option bytes;
 * flags ACK, or ACK|PSH on the segment that ends the run; IP and TCP
 * checksums correct; payload no larger than the first's (the gso_size), and
 * a shorter one ends the run. With `udp`, UDP datagrams of one flow merge
 * the same way (equal payload sizes, the last may be shorter, checksums
 * correct, UDP length consistent). A run holds at most 65535 bytes of IP
 * packet, WGT_OFFLOAD_MAX_SEGS segments and what the first's `cap` allows.
 * A packet of a flow that cannot merge ends that flow's run (and starts a
 * new one if it could head one), so every flow keeps its order; an IPv4
 * fragment or IPv6 packet with extension headers, whose ports we do not
 * look for, ends every open run.
 *
 * The first packet of a run of two or more gets the merged payloads appended
 * (its pkts[].len grows), IPv4 total length and header checksum or IPv6
 * payload length fixed, PSH if the last merged had it, UDP length fixed,
 * the L4 checksum field set to the folded pseudo-header sum (the
 * CHECKSUM_PARTIAL convention), and in its headroom a virtio_net_hdr:
 * NEEDS_CSUM, gso_type TCPV4/TCPV6/UDP_L4, hdr_len = IP + L4 header length,
 * gso_size, csum_start = IP header length, csum_offset 16 (TCP) or 6 (UDP).
 * Every other packet not merged away is left as it is under a zeroed header
 * (gso_type NONE).
 *
 * ret_writes (room for n) receives one iovec per TUN write: iov_base at the
 * virtio header, iov_len = 10 + packet length, in input order of each
 * write's first packet, so every flow's packets stay in order. Returns the
 * number of writes, n at most (0 for n == 0).
 *
 * Any thread (pure, only touches its arguments).
 */
unsigned wgt_offload_coalesce(struct wgt_offload_pkt *pkts, unsigned n, bool udp,
			      struct iovec *ret_writes);

#endif
