/* SPDX-License-Identifier: MIT */
/* Command-line value parsers and the Internet checksum for the perf/ and tests/ tools. */
#include "perf/tool_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

int wgt_tool_parse_key(uint8_t key[WGT_KEY_LEN], const char *b64)
{
	uint8_t out[WGT_KEY_LEN + 1];
	int n;

	if (strlen(b64) != 44 || b64[43] != '=' || b64[42] == '=')
		return -EINVAL;
	n = EVP_DecodeBlock(out, (const unsigned char *)b64, 44);
	if (n == WGT_KEY_LEN + 1)
		memcpy(key, out, WGT_KEY_LEN);
	OPENSSL_cleanse(out, sizeof(out));
	return n == WGT_KEY_LEN + 1 ? 0 : -EINVAL;
}

int wgt_tool_parse_u64(uint64_t *ret, const char *s, uint64_t min, uint64_t max)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || end == s || s[0] == '-' || v < min || v > max)
		return -EINVAL;
	*ret = v;
	return 0;
}

int wgt_tool_parse_endpoint(union wgt_sockaddr *ret, const char *s)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon = strrchr(s, ':');
	union wgt_sockaddr ep;
	uint64_t port;
	size_t hlen;

	if (!colon || wgt_tool_parse_u64(&port, colon + 1, 1, 65535))
		return -EINVAL;
	hlen = (size_t)(colon - s);
	if (hlen < 2 || hlen >= sizeof(host))
		return -EINVAL;
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	memset(&ep, 0, sizeof(ep));
	if (host[0] == '[' && host[hlen - 1] == ']') {
		host[hlen - 1] = '\0';
		if (inet_pton(AF_INET6, host + 1, &ep.in6.sin6_addr) != 1)
			return -EINVAL;
		ep.in6.sin6_family = AF_INET6;
		ep.in6.sin6_port = htons((uint16_t)port);
	} else {
		if (inet_pton(AF_INET, host, &ep.in4.sin_addr) != 1)
			return -EINVAL;
		ep.in4.sin_family = AF_INET;
		ep.in4.sin_port = htons((uint16_t)port);
	}
	*ret = ep;
	return 0;
}

uint16_t wgt_tool_inet_csum(const uint8_t *p, size_t len)
{
	uint32_t sum = 0;
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}
