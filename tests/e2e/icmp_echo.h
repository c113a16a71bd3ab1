/* SPDX-License-Identifier: MIT */
/* IPv4 ICMP echo packets for wgt_probe: built and checked byte by byte, checksums included. */
#ifndef WGT_TESTS_E2E_ICMP_ECHO_H
#define WGT_TESTS_E2E_ICMP_ECHO_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

#define IPV4_HEADER_LEN 20
#define ICMP_HEADER_LEN 8
#define ICMP_ECHO_REPLY 0
#define ICMP_ECHO_REQUEST 8

/* A parsed echo packet; `payload` points into the parsed buffer. */
struct icmp_echo {
	struct in_addr src;
	struct in_addr dst;
	uint8_t type;
	uint16_t id;
	uint16_t seq;
	const uint8_t *payload;
	size_t payload_len;
};

/*
 * Writes an IPv4 packet carrying an ICMP echo `type` (request or reply)
 * at `pkt` and returns its length. No IP options, DF clear, TTL 64.
 * `payload` may lie inside `pkt` (it is moved, not copied).
 */
size_t icmp_echo_build(uint8_t *pkt, uint8_t type, struct in_addr src, struct in_addr dst,
		       uint16_t id, uint16_t seq, const uint8_t *payload, size_t payload_len);

/*
 * Parses the decrypted payload of a data message, still padded to 16
 * bytes: trims the padding by the IP total length, checks the IPv4 header
 * and ICMP checksums. Returns 0, or -EINVAL with *why saying what is wrong.
 */
int icmp_echo_parse(struct icmp_echo *e, const uint8_t *pkt, size_t padded_len, const char **why);

#endif
