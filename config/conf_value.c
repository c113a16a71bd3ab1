/* SPDX-License-Identifier: MIT */
/* Values of the configuration file: base64 keys, numbers, prefixes, endpoints and peer names. */
#include "config/conf_pvt.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "config/parse.h"

/* All ones when lo <= c <= hi, else zero; no branch on c (c, lo, hi < 2^31). */
static uint32_t in_range(uint32_t c, uint32_t lo, uint32_t hi)
{
	return ((((c - lo) | (hi - c)) >> 31) ^ 1U) * 0xffffffffU;
}

/* One base64 digit's value; sets *bad for any other byte. No branch or table on the digit. */
static uint32_t b64_value(unsigned char ch, uint32_t *bad)
{
	uint32_t c = ch;
	uint32_t upper = in_range(c, 'A', 'Z');
	uint32_t lower = in_range(c, 'a', 'z');
	uint32_t digit = in_range(c, '0', '9');
	uint32_t plus = in_range(c, '+', '+');
	uint32_t slash = in_range(c, '/', '/');

	*bad |= ~(upper | lower | digit | plus | slash) & 1U;
	return (upper & (c - 'A')) | (lower & (c - 'a' + 26)) | (digit & (c - '0' + 52)) |
	       (plus & 62U) | (slash & 63U);
}

bool wgt_conf_key_from_base64(uint8_t key[32], const char *v, size_t len)
{
	uint32_t acc = 0, bad = 0;
	unsigned bits = 0;
	size_t i, out = 0;

	if (len != WGT_CONF_B64_KEY_LEN || v[len - 1] != '=')
		return false;
	/* 43 digits carry 258 bits: 32 bytes and two bits that must be zero. */
	for (i = 0; i < WGT_CONF_B64_KEY_LEN - 1; i++) {
		acc = (acc << 6) | b64_value((unsigned char)v[i], &bad);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			key[out++] = (uint8_t)(acc >> bits);
		}
	}
	bad |= acc & 3U;
	acc = 0;
	if (bad) {
		explicit_bzero(key, 32);
		return false;
	}
	return true;
}

bool wgt_conf_has_key_run(const char *v, size_t len)
{
	unsigned seen = 0;
	size_t i, run = 0;

	for (i = 0; i <= len; i++) {
		char c = i < len ? v[i] : '\0';

		if (c >= 'a' && c <= 'z')
			seen |= 1;
		else if (c >= 'A' && c <= 'Z')
			seen |= 2;
		else if (c >= '0' && c <= '9')
			seen |= 4;
		else if (c != '+' && c != '=') {
			if (run >= 16 && seen == 7)
				return true;
			run = 0;
			seen = 0;
			continue;
		}
		run++;
	}
	return false;
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)(c | 0x20);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

const char *wgt_conf_parse_fwmark(const char *v, size_t len, uint32_t *ret)
{
	uint64_t n = 0;
	size_t i;

	if (len == 3 && !strncasecmp(v, "off", 3)) {
		*ret = 0;
		return NULL;
	}
	if (len > 2 && v[0] == '0' && (v[1] == 'x' || v[1] == 'X')) {
		for (i = 2; i < len; i++) {
			int d = hex_value(v[i]);

			if (d < 0)
				return "not a number (decimal, 0x-prefixed hexadecimal, or off)";
			n = n << 4 | (unsigned)d;
			if (n > UINT32_MAX)
				return "above 0xffffffff";
		}
	} else {
		int r = wgt_parse_uint(v, len, UINT32_MAX, &n);

		if (r == -ERANGE)
			return "above 4294967295";
		if (r)
			return "not a number (decimal, 0x-prefixed hexadecimal, or off)";
	}
	*ret = (uint32_t)n;
	return NULL;
}

const char *wgt_conf_parse_prefix(const char *v, size_t len, int *ret_family,
				  uint8_t ret_addr[16], uint8_t *ret_prefix)
{
	char buf[INET6_ADDRSTRLEN];
	const char *slash = memchr(v, '/', len);
	size_t addr_len = slash ? (size_t)(slash - v) : len;
	uint8_t addr[16] = { 0 };
	unsigned max;
	uint64_t n;
	int family;

	if (!wgt_parse_copy_addr(buf, v, addr_len))
		return "not an IPv4 or IPv6 address";
	if (memchr(buf, ':', addr_len)) {
		if (memchr(buf, '%', addr_len))
			return "an IPv6 zone is not allowed here";
		if (inet_pton(AF_INET6, buf, addr) != 1)
			return "not an IPv6 address";
		family = AF_INET6;
		max = 128;
	} else {
		if (inet_pton(AF_INET, buf, addr) != 1)
			return "not an IPv4 address";
		family = AF_INET;
		max = 32;
	}
	n = max;
	if (slash) {
		size_t bits_len = len - addr_len - 1;

		if (!bits_len || bits_len > 3 || wgt_parse_uint(slash + 1, bits_len, max, &n))
			return family == AF_INET ? "prefix length is not a number from 0 to 32" :
						   "prefix length is not a number from 0 to 128";
	}
	*ret_family = family;
	memcpy(ret_addr, addr, 16);
	*ret_prefix = (uint8_t)n;
	return NULL;
}

/* Letters, digits, '-', '_' and '.', at least one letter, no empty label but a final '.'. */
static bool is_host_name(const char *v, size_t len)
{
	bool letter = false;
	size_t i, label = 0;

	if (!len || len > 253)
		return false;
	for (i = 0; i < len; i++) {
		char c = v[i];

		if (c == '.') {
			if (!label)
				return false;
			label = 0;
			continue;
		}
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
			letter = true;
		else if (!((c >= '0' && c <= '9') || c == '-' || c == '_'))
			return false;
		if (++label > 63)
			return false;
	}
	return letter;
}

/* An interface name as a zone: shorter than IFNAMSIZ, and a stricter dev_valid_name(). */
static bool is_zone_name(const char *v, size_t len)
{
	size_t i;

	if (!len || len >= 16)
		return false;
	for (i = 0; i < len; i++) {
		char c = v[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.'))
			return false;
	}
	return true;
}

static void copy_host(struct wgt_conf_endpoint *ep, const char *v, size_t len)
{
	memcpy(ep->host, v, len);
	ep->host[len] = '\0';
}

/* The part inside [ ]: an IPv6 literal, with a numeric zone or a named one (then a host). */
static const char *parse_bracketed(const char *v, size_t len, struct wgt_conf_endpoint *ep)
{
	char buf[INET6_ADDRSTRLEN];
	const char *pct = memchr(v, '%', len);
	size_t addr_len = pct ? (size_t)(pct - v) : len;
	struct in6_addr a;

	if (!wgt_parse_copy_addr(buf, v, addr_len) || inet_pton(AF_INET6, buf, &a) != 1)
		return "not an IPv6 address inside [ ]";
	if (pct) {
		const char *zone = pct + 1;
		size_t zone_len = len - addr_len - 1;
		uint64_t scope;

		if (!zone_len)
			return "empty IPv6 zone after '%'";
		if (!wgt_parse_uint(zone, zone_len, UINT32_MAX, &scope)) {
			ep->sa.in6.sin6_scope_id = (uint32_t)scope;
		} else if (is_zone_name(zone, zone_len)) {
			copy_host(ep, v, len);
			return NULL;
		} else {
			return "IPv6 zone is not an interface name or index";
		}
	}
	ep->sa.in6.sin6_family = AF_INET6;
	ep->sa.in6.sin6_addr = a;
	ep->sa.in6.sin6_port = htons(ep->port);
	copy_host(ep, v, len);
	return NULL;
}

const char *wgt_conf_parse_endpoint(const char *v, size_t len, struct wgt_conf_endpoint *ret)
{
	struct wgt_conf_endpoint ep;
	const char *host, *port;
	size_t host_len, port_len;
	uint64_t n;
	const char *why;

	memset(&ep, 0, sizeof(ep));
	if (!len)
		return "empty";
	if (v[0] == '[') {
		const char *close = memchr(v, ']', len);

		if (!close)
			return "missing ']' after an IPv6 address";
		host = v + 1;
		host_len = (size_t)(close - host);
		if ((size_t)(close - v) + 1 >= len || close[1] != ':')
			return "missing ':port' after ']'";
		port = close + 2;
	} else {
		const char *colon = memrchr(v, ':', len);

		if (!colon)
			return "missing ':port'";
		host = v;
		host_len = (size_t)(colon - v);
		port = colon + 1;
		if (memchr(host, ':', host_len))
			return "an IPv6 address needs brackets: [address]:port";
	}
	port_len = len - (size_t)(port - v);
	if (!port_len)
		return "missing the port after ':'";
	if (wgt_parse_uint(port, port_len, 65535, &n) || !n)
		return "port is not a number from 1 to 65535";
	ep.port = (uint16_t)n;
	if (!host_len)
		return "missing the host before ':port'";
	if (host_len >= sizeof(ep.host))
		return "host name longer than 253 bytes";

	if (v[0] == '[') {
		why = parse_bracketed(host, host_len, &ep);
		if (why)
			return why;
	} else {
		char buf[INET6_ADDRSTRLEN];

		if (wgt_parse_copy_addr(buf, host, host_len) &&
		    inet_pton(AF_INET, buf, &ep.sa.in4.sin_addr) == 1) {
			ep.sa.in4.sin_family = AF_INET;
			ep.sa.in4.sin_port = htons(ep.port);
		} else if (!is_host_name(host, host_len)) {
			return "not an IPv4 address or a host name";
		}
		copy_host(&ep, host, host_len);
	}
	*ret = ep;
	return NULL;
}

const char *wgt_conf_check_name(const char *v, size_t len)
{
	size_t i;

	if (!len)
		return "empty";
	if (len >= WGT_CONF_NAME_LEN)
		return "longer than 63 bytes";
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)v[i];

		if (c < 0x20 || c > 0x7e)
			return "not printable ASCII";
		if (c == '"' || c == '\\')
			return "quotes and backslashes are not allowed";
	}
	return NULL;
}
