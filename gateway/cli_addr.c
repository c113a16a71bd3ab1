/* SPDX-License-Identifier: MIT */
/* Addresses and endpoints for `wgate peer add`: next free address, --address, --allowed-ips. */
#include "gateway/cli_pvt.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/conf.h"

/* "ADDR/PREFIX" */
void wgt_cli_addr_str(char out[WGT_CLI_ADDR_STR_LEN], int family, const uint8_t *addr,
		      unsigned prefix)
{
	char a[INET6_ADDRSTRLEN];

	inet_ntop(family, addr, a, sizeof(a));
	snprintf(out, WGT_CLI_ADDR_STR_LEN, "%s/%u", a, prefix);
}

static unsigned addr_bits(int family)
{
	return family == AF_INET ? 32 : 128;
}

/* `a` is inside net/prefix. */
static bool prefix_contains(const uint8_t *net, unsigned prefix, const uint8_t *a)
{
	unsigned full = prefix / 8, rest = prefix % 8;

	if (memcmp(net, a, full))
		return false;
	return !rest || !((net[full] ^ a[full]) & (uint8_t)(0xff << (8 - rest)));
}

void wgt_cli_addr_mask(uint8_t *a, int family, unsigned prefix)
{
	unsigned i, bytes = addr_bits(family) / 8;

	for (i = 0; i < bytes; i++) {
		if (prefix >= 8)
			prefix -= 8;
		else {
			a[i] &= (uint8_t)(0xff << (8 - prefix));
			prefix = 0;
		}
	}
}

/* The gateway's own address, or inside one of a peer's allowed IPs. */
static bool addr_taken(const struct wgt_conf *conf, int family, const uint8_t *a)
{
	size_t i, j;

	for (i = 0; i < conf->n_addresses; i++)
		if (conf->addresses[i].family == family &&
		    !memcmp(conf->addresses[i].addr, a, addr_bits(family) / 8))
			return true;
	for (i = 0; i < conf->wg.n_peers; i++) {
		const struct wgt_uapi_peer *p = &conf->wg.peers[i];

		for (j = 0; j < p->n_allowed_ips; j++)
			if (p->allowed_ips[j].family == family && !p->allowed_ips[j].remove &&
			    prefix_contains(p->allowed_ips[j].addr, p->allowed_ips[j].cidr, a))
				return true;
	}
	return false;
}

static const struct wgt_conf_address *first_address(const struct wgt_conf *conf, int family)
{
	size_t i;

	for (i = 0; i < conf->n_addresses; i++)
		if (conf->addresses[i].family == family)
			return &conf->addresses[i];
	return NULL;
}

/* Host number h of the network of `ifa` into `out`; false when h does not fit its host bits. */
static bool host_addr(uint8_t out[16], const struct wgt_conf_address *ifa, uint32_t h)
{
	unsigned bits = addr_bits(ifa->family), hostbits = bits - ifa->prefix;
	unsigned last = bits / 8 - 4;

	if (hostbits < 32 && h >> hostbits)
		return false;
	memcpy(out, ifa->addr, 16);
	wgt_cli_addr_mask(out, ifa->family, ifa->prefix);
	out[last] |= (uint8_t)(h >> 24);
	out[last + 1] |= (uint8_t)(h >> 16);
	out[last + 2] |= (uint8_t)(h >> 8);
	out[last + 3] |= (uint8_t)h;
	return true;
}

/*
 * The lowest host number h that is free in the first IPv4 Address network
 * (not its network or broadcast address) and, when the interface has an
 * IPv6 Address, free in the first IPv6 network too.
 */
int wgt_cli_addrs_choose(const char *config, const struct wgt_conf *conf, struct wgt_cli_addrs *ca)
{
	const struct wgt_conf_address *v4 = first_address(conf, AF_INET);
	const struct wgt_conf_address *v6 = first_address(conf, AF_INET6);
	const struct wgt_conf_address *full = v4 ? v4 : v6;
	uint64_t h, max = UINT32_MAX;
	char net[WGT_CLI_ADDR_STR_LEN];
	uint8_t n[16];

	if (!v4 && !v6)
		return wgt_cli_fail("%s: [Interface] has no Address to choose the client's from; give --address",
			    config);
	if (v4) {
		unsigned hostbits = 32 - v4->prefix;

		max = hostbits < 2 ? 0 : (1ULL << hostbits) - 2;
	}
	if (v6 && 128 - v6->prefix < 32 && (1ULL << (128 - v6->prefix)) - 1 < max)
		max = (1ULL << (128 - v6->prefix)) - 1;
	for (h = 1; h <= max; h++) {
		ca->has4 = v4 && host_addr(ca->a4, v4, (uint32_t)h);
		ca->has6 = v6 && host_addr(ca->a6, v6, (uint32_t)h);
		if ((ca->has4 && addr_taken(conf, AF_INET, ca->a4)) ||
		    (ca->has6 && addr_taken(conf, AF_INET6, ca->a6)))
			continue;
		return 0;
	}
	memcpy(n, full->addr, 16);
	wgt_cli_addr_mask(n, full->family, full->prefix);
	wgt_cli_addr_str(net, full->family, n, full->prefix);
	return wgt_cli_fail("no free address left in %s (each is the gateway's or inside a "
			    "peer's AllowedIPs): "
		    "remove a peer, widen the Address, or give --address", net);
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
		*--e = '\0';
	return s;
}

/* --allowed-ips: a comma list of ADDR/PREFIX (a bare address is a host), each valid. */
int wgt_cli_allowed_ips_check(const char *list)
{
	char buf[4096], *save = NULL, *tok;
	unsigned n = 0;

	if (snprintf(buf, sizeof(buf), "%s", list) >= (int)sizeof(buf))
		return wgt_cli_fail("--allowed-ips: longer than %zu bytes", sizeof(buf) - 1);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *a = trim(tok), *slash = strchr(a, '/'), *end;
		uint8_t addr[16];
		unsigned long prefix = 0;
		int family;

		if (slash)
			*slash++ = '\0';
		if (inet_pton(AF_INET, a, addr) == 1)
			family = AF_INET;
		else if (inet_pton(AF_INET6, a, addr) == 1)
			family = AF_INET6;
		else
			return wgt_cli_fail("--allowed-ips: '%s' is not an IPv4 or IPv6 address", a);
		if (slash) {
			errno = 0;
			prefix = strtoul(slash, &end, 10);
			if (errno || end == slash || *end || prefix > addr_bits(family))
				return wgt_cli_fail("--allowed-ips: %s/%s: the prefix is not 0..%u", a, slash,
					    addr_bits(family));
		}
		n++;
	}
	if (!n)
		return wgt_cli_fail("--allowed-ips: empty");
	return 0;
}

/* --address A[,A6]: host addresses (bare, /32 or /128), at most one per family, not taken. */
int wgt_cli_addrs_parse(const char *arg, const struct wgt_conf *conf, struct wgt_cli_addrs *ca)
{
	char buf[512], *save = NULL, *tok;

	memset(ca, 0, sizeof(*ca));
	if (snprintf(buf, sizeof(buf), "%s", arg) >= (int)sizeof(buf))
		return wgt_cli_fail("--address: too long");
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *a = trim(tok), *slash = strchr(a, '/');
		uint8_t addr[16] = { 0 };
		int family;

		if (slash)
			*slash++ = '\0';
		if (inet_pton(AF_INET, a, addr) == 1)
			family = AF_INET;
		else if (inet_pton(AF_INET6, a, addr) == 1)
			family = AF_INET6;
		else
			return wgt_cli_fail("--address: '%s' is not an IPv4 or IPv6 address", a);
		if (slash && strtoul(slash, NULL, 10) != addr_bits(family))
			return wgt_cli_fail("--address: %s: give a host address (/%u or no prefix)", a,
				    addr_bits(family));
		if ((family == AF_INET && ca->has4) || (family == AF_INET6 && ca->has6))
			return wgt_cli_fail("--address: at most one IPv4 and one IPv6 address");
		if (addr_taken(conf, family, addr))
			return wgt_cli_fail("--address: %s is taken (the gateway's address or "
					    "inside a peer's AllowedIPs)",
				    a);
		if (family == AF_INET) {
			ca->has4 = true;
			memcpy(ca->a4, addr, 16);
		} else {
			ca->has6 = true;
			memcpy(ca->a6, addr, 16);
		}
	}
	if (!ca->has4 && !ca->has6)
		return wgt_cli_fail("--address: no address given");
	return 0;
}

/*
 * The value of a "# Endpoint = HOST:PORT" comment line in the [Interface]
 * section (quickstart.sh writes it), trimmed, into out; false when none.
 */
bool wgt_cli_endpoint_comment(const char *text, char *out, size_t size)
{
	bool in_interface = false;
	const char *line = text;

	while (*line) {
		const char *eol = strchr(line, '\n'), *p = line, *e;
		size_t len;

		if (!eol)
			eol = line + strlen(line);
		while (p < eol && (*p == ' ' || *p == '\t'))
			p++;
		if (p < eol && *p == '[') {
			in_interface = !strncasecmp(p, "[Interface]", 11);
		} else if (in_interface && p < eol && *p == '#') {
			p++;
			while (p < eol && (*p == ' ' || *p == '\t'))
				p++;
			if (eol - p > 8 && !strncasecmp(p, "Endpoint", 8)) {
				p += 8;
				while (p < eol && (*p == ' ' || *p == '\t'))
					p++;
				if (p < eol && *p == '=') {
					p++;
					while (p < eol && (*p == ' ' || *p == '\t'))
						p++;
					e = eol;
					while (e > p && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
						e--;
					len = (size_t)(e - p);
					if (len && len < size) {
						memcpy(out, p, len);
						out[len] = '\0';
						return true;
					}
				}
			}
		}
		line = *eol ? eol + 1 : eol;
	}
	return false;
}

int wgt_cli_endpoint_normalize(const char *what, const char *in, uint16_t port, char *out,
			       size_t size)
{
	char host[WGT_CONF_HOST_LEN];
	const char *colon = strrchr(in, ':'), *ps = NULL;
	unsigned long p;
	char *end;
	bool v6 = false;

	if (in[0] == '[') {
		const char *rb = strchr(in, ']');

		if (!rb || rb == in + 1 || (rb[1] && rb[1] != ':'))
			return wgt_cli_fail("%s: '%s' is not HOST:PORT or [IPv6]:PORT", what, in);
		snprintf(host, sizeof(host), "%.*s", (int)(rb - in - 1), in + 1);
		ps = rb[1] ? rb + 2 : NULL;
		v6 = true;
	} else if (colon && strchr(in, ':') != colon) {
		snprintf(host, sizeof(host), "%s", in);    /* a bare IPv6 literal */
		v6 = true;
	} else if (colon) {
		snprintf(host, sizeof(host), "%.*s", (int)(colon - in), in);
		ps = colon + 1;
	} else {
		snprintf(host, sizeof(host), "%s", in);
	}
	if (!host[0] || strpbrk(host, " \t\r\n[]#=,"))
		return wgt_cli_fail("%s: '%s' is not HOST:PORT", what, in);
	if (ps) {
		errno = 0;
		p = strtoul(ps, &end, 10);
		if (errno || end == ps || *end || *ps == '-' || p < 1 || p > 65535)
			return wgt_cli_fail("%s: '%s': the port is not a number from 1 to 65535", what, in);
		port = (uint16_t)p;
	}
	if (!port)
		return wgt_cli_fail("%s: '%s' has no port and the file has no ListenPort: give HOST:PORT",
			    what, in);
	snprintf(out, size, v6 ? "[%s]:%u" : "%s:%u", host, port);
	return 0;
}
