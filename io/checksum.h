/* SPDX-License-Identifier: MIT */
/* Internet checksum (RFC 1071) and the TCP/UDP pseudo-header sums for IPv4 and IPv6. */
#ifndef WGT_IO_CHECKSUM_H
#define WGT_IO_CHECKSUM_H

/*
 * Byte order. The sum is taken over native-order loads, like the kernel's
 * __wsum: on a little-endian CPU every intermediate value is the byte swap
 * of the RFC 1071 number (RFC 1071 section 2(B) shows why the result is
 * still right). The 16-bit result of wgt_csum_fold()/wgt_csum_finish() is
 * therefore stored into a header field as is (memcpy of the uint16_t), with
 * no htons(); ntohs() of it gives the number RFC 1071 prints.
 *
 * Computing a TCP or UDP checksum:
 *
 *	sum = wgt_csum_pseudo_ipv4(ip->saddr, ip->daddr, IPPROTO_UDP, l4_len, 0);
 *	sum = wgt_csum_partial(l4, l4_len, sum);   (checksum field zeroed)
 *	csum = wgt_csum_finish(sum);
 *	UDP only: if (csum == 0) csum = 0xffff;    (RFC 768: 0 means "none")
 *
 * Verifying: run the same over the packet with its checksum field in place;
 * the packet is intact when wgt_csum_fold() gives 0xffff.
 */

#include <stddef.h>
#include <stdint.h>

/*
 * One's-complement sum of buf[0..len) added to `sum` (a previous result, or
 * 0). Any alignment, any length; an odd trailing byte is padded with zero as
 * RFC 1071 says. Chaining two calls equals one call over the concatenation
 * only when the first length is even. The result is not folded.
 * Any thread (pure function).
 */
uint32_t wgt_csum_partial(const void *buf, size_t len, uint32_t sum);

/*
 * Copies src[0..len) to dst (not overlapping) and returns what
 * wgt_csum_partial(dst, len, sum) would: one pass over the data.
 * Any thread (pure function).
 */
uint32_t wgt_csum_copy(void *dst, const void *src, size_t len, uint32_t sum);

/* Folds a partial sum to 16 bits with end-around carry; no complement. */
static inline uint16_t wgt_csum_fold(uint32_t sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

/* The value for a header checksum field: the complement of the folded sum. */
static inline uint16_t wgt_csum_finish(uint32_t sum)
{
	return (uint16_t)~wgt_csum_fold(sum);
}

/*
 * Adds the TCP/UDP pseudo-header for IPv4 (RFC 793, RFC 768) to `sum`.
 * saddr and daddr point at 4 bytes in network order, e.g. straight into a
 * packet's IPv4 header (no alignment needed); proto is IPPROTO_TCP or
 * IPPROTO_UDP; len is the transport header plus payload length in host order.
 */
uint32_t wgt_csum_pseudo_ipv4(const void *saddr, const void *daddr, uint8_t proto,
			      uint16_t len, uint32_t sum);

/*
 * Adds the IPv6 upper-layer pseudo-header (RFC 8200 section 8.1) to `sum`.
 * saddr and daddr point at 16 bytes in network order; len is the upper-layer
 * packet length in host order (32 bits, jumbograms included).
 */
uint32_t wgt_csum_pseudo_ipv6(const void *saddr, const void *daddr, uint8_t proto,
			      uint32_t len, uint32_t sum);

#endif
