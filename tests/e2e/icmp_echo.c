/* SPDX-License-Identifier: MIT */
/* IPv4 ICMP echo building and checking for wgt_probe. */
#include "icmp_echo.h"

#include <errno.h>
#include <string.h>

#include "common/random.h"
#include "perf/tool_util.h"

static void put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint16_t get_be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

size_t icmp_echo_build(uint8_t *pkt, uint8_t type, struct in_addr src, struct in_addr dst,
		       uint16_t id, uint16_t seq, const uint8_t *payload, size_t payload_len)
{
	size_t total = IPV4_HEADER_LEN + ICMP_HEADER_LEN + payload_len;
	uint8_t *icmp = pkt + IPV4_HEADER_LEN;

	memset(pkt, 0, IPV4_HEADER_LEN + ICMP_HEADER_LEN);
	pkt[0] = 0x45;                                     /* version 4, IHL 5 */
	put_be16(pkt + 2, (uint16_t)total);
	put_be16(pkt + 4, (uint16_t)wgt_random_u32());      /* identification */
	pkt[8] = 64;                                        /* TTL */
	pkt[9] = IPPROTO_ICMP;
	memcpy(pkt + 12, &src, 4);
	memcpy(pkt + 16, &dst, 4);
	put_be16(pkt + 10, wgt_tool_inet_csum(pkt, IPV4_HEADER_LEN));

	icmp[0] = type;
	put_be16(icmp + 4, id);
	put_be16(icmp + 6, seq);
	memmove(icmp + ICMP_HEADER_LEN, payload, payload_len);
	put_be16(icmp + 2, wgt_tool_inet_csum(icmp, ICMP_HEADER_LEN + payload_len));
	return total;
}

int icmp_echo_parse(struct icmp_echo *e, const uint8_t *pkt, size_t padded_len, const char **why)
{
	size_t ihl, total;
	const uint8_t *icmp;

	if (padded_len < IPV4_HEADER_LEN || pkt[0] >> 4 != 4) {
		*why = "not an IPv4 packet";
		return -EINVAL;
	}
	ihl = (size_t)(pkt[0] & 0x0f) * 4;
	total = get_be16(pkt + 2);
	if (ihl < IPV4_HEADER_LEN || total < ihl || total > padded_len) {
		*why = "bad IPv4 header or total length";
		return -EINVAL;
	}
	if (wgt_tool_inet_csum(pkt, ihl)) {
		*why = "bad IPv4 header checksum";
		return -EINVAL;
	}
	if (pkt[9] != IPPROTO_ICMP) {
		*why = "not ICMP";
		return -EINVAL;
	}
	icmp = pkt + ihl;
	if (total - ihl < ICMP_HEADER_LEN) {
		*why = "truncated ICMP header";
		return -EINVAL;
	}
	if (wgt_tool_inet_csum(icmp, total - ihl)) {
		*why = "bad ICMP checksum";
		return -EINVAL;
	}
	if ((icmp[0] != ICMP_ECHO_REQUEST && icmp[0] != ICMP_ECHO_REPLY) || icmp[1] != 0) {
		*why = "ICMP but not an echo request or reply";
		return -EINVAL;
	}
	memcpy(&e->src, pkt + 12, 4);
	memcpy(&e->dst, pkt + 16, 4);
	e->type = icmp[0];
	e->id = get_be16(icmp + 4);
	e->seq = get_be16(icmp + 6);
	e->payload = icmp + ICMP_HEADER_LEN;
	e->payload_len = total - ihl - ICMP_HEADER_LEN;
	return 0;
}
