/* SPDX-License-Identifier: MIT */
/* The UAPI set=1 parser: key=value lines in, a struct wgt_uapi_device out, within hard caps. */
#include "config/uapi.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/compiler.h"
#include "config/parse.h"

struct wgt_uapi_parser {
	struct wgt_uapi_limits limits;
	struct wgt_uapi_device *dev;  /* the set being built, allocated on its first line */
	bool in_peer;                 /* a public_key line was seen: peer keys from here */
	bool done;                    /* the blank line was seen */
	int err;                      /* sticky -errno once the set failed */
	enum wgt_uapi_error reason;   /* kept after finish() until the next set starts */
	size_t lineno;
	size_t set_bytes;
	size_t set_allowedips;        /* allowed_ip lines in this set */
	size_t peer_allowedips;       /* allowed_ip lines in the current peer section */
	char msg[WGT_UAPI_ERRMSG_LEN];
	size_t buf_len;
	char buf[WGT_UAPI_MAX_LINE + 1]; /* feed(): a partial line, room for a trailing '\r' */
};

static const int reason_errno[WGT_UAPI_ERR__COUNT] = {
	[WGT_UAPI_OK] = 0,
	[WGT_UAPI_ERR_SYNTAX] = -EPROTO,
	[WGT_UAPI_ERR_UNKNOWN_KEY] = -EINVAL,
	[WGT_UAPI_ERR_INVALID_VALUE] = -EINVAL,
	[WGT_UAPI_ERR_LINE_TOO_LONG] = -EMSGSIZE,
	[WGT_UAPI_ERR_SET_TOO_BIG] = -E2BIG,
	[WGT_UAPI_ERR_TOO_MANY_PEERS] = -ENOSPC,
	[WGT_UAPI_ERR_TOO_MANY_ALLOWEDIPS_PEER] = -ENOSPC,
	[WGT_UAPI_ERR_TOO_MANY_ALLOWEDIPS] = -ENOSPC,
	[WGT_UAPI_ERR_TRAILING_DATA] = -EPROTO,
	[WGT_UAPI_ERR_NOMEM] = -ENOMEM,
};

/*
 * Fails the set: frees (and so wipes) what was built, records the reason
 * and a message prefixed with the line number. Returns the -errno.
 */
__attribute__((format(printf, 3, 4)))
static int fail(struct wgt_uapi_parser *p, enum wgt_uapi_error reason, const char *fmt, ...)
{
	va_list ap;
	int n;

	wgt_uapi_device_free(p->dev);
	p->dev = NULL;
	p->reason = reason;
	p->err = reason_errno[reason];
	n = snprintf(p->msg, sizeof(p->msg), "line %zu: ", p->lineno);
	if (n < 0 || (size_t)n >= sizeof(p->msg))
		n = 0;
	va_start(ap, fmt);
	vsnprintf(p->msg + n, sizeof(p->msg) - (size_t)n, fmt, ap);
	va_end(ap);
	return p->err;
}

/*
 * A key name fit to quote in a message: only [a-z_], at most 32 bytes. Any
 * other key is not quoted, since it may be a pasted secret.
 */
static const char *quotable_key(const char *key, size_t len, char out[33])
{
	size_t i;

	if (!len || len > 32)
		return NULL;
	for (i = 0; i < len; i++) {
		if (!((key[i] >= 'a' && key[i] <= 'z') || key[i] == '_'))
			return NULL;
		out[i] = key[i];
	}
	out[len] = '\0';
	return out;
}

/*
 * One hex digit to its value without a branch or table lookup on the
 * digit, since it may be a secret key's. Sets *bad on a non-hex byte.
 */
static unsigned hex_digit(unsigned char c, unsigned *bad)
{
	unsigned d = (unsigned)c - '0';
	unsigned l = ((unsigned)c | 0x20U) - 'a';
	unsigned is_d = ((d - 10U) & ~d) >> 31;
	unsigned is_l = ((l - 6U) & ~l) >> 31;

	*bad |= 1U ^ (is_d | is_l);
	return (d & (0U - is_d)) | ((l + 10U) & (0U - is_l));
}

/*
 * Exactly 64 hex digits, either case (Go's hex.DecodeString). Constant time
 * in the digits; the key is wiped on failure.
 */
static bool parse_key(uint8_t key[WGT_UAPI_KEY_LEN], const char *v, size_t len)
{
	unsigned bad = 0;
	size_t i;

	if (len != 2 * WGT_UAPI_KEY_LEN)
		return false;
	for (i = 0; i < WGT_UAPI_KEY_LEN; i++) {
		unsigned hi = hex_digit((unsigned char)v[2 * i], &bad);
		unsigned lo = hex_digit((unsigned char)v[2 * i + 1], &bad);

		key[i] = (uint8_t)(hi << 4 | lo);
	}
	if (bad) {
		explicit_bzero(key, WGT_UAPI_KEY_LEN);
		return false;
	}
	return true;
}

static bool is_true(const char *v, size_t len)
{
	return len == 4 && !memcmp(v, "true", 4);
}

/* A name rather than a mistyped number: letters, digits, '.', '-', and at least one letter. */
static bool looks_like_hostname(const char *v, size_t len)
{
	bool letter = false;
	size_t i;

	for (i = 0; i < len; i++) {
		char c = v[i];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
			letter = true;
		else if (!((c >= '0' && c <= '9') || c == '.' || c == '-'))
			return false;
	}
	return letter;
}

/*
 * The IPv6 zone of an endpoint: a decimal interface index, or an interface
 * name as wg's getnameinfo() writes it for link-local addresses.
 */
static const char *parse_scope(const char *v, size_t len, uint32_t *ret)
{
	char name[IF_NAMESIZE];
	uint64_t n;
	int r;

	if (!len)
		return "empty IPv6 zone after '%'";
	r = wgt_parse_uint(v, len, UINT32_MAX, &n);
	if (!r) {
		*ret = (uint32_t)n;
		return NULL;
	}
	if (r == -ERANGE)
		return "IPv6 zone index out of range";
	if (len >= sizeof(name) || memchr(v, '\0', len) || memchr(v, '/', len))
		return "IPv6 zone is not an interface name or index";
	memcpy(name, v, len);
	name[len] = '\0';
	*ret = if_nametoindex(name);
	if (!*ret)
		return "IPv6 zone names no interface";
	return NULL;
}

/*
 * IPv4:port or [IPv6%zone]:port, numeric only: wg resolves names before it
 * sends them, and wireguard-go accepts nothing else (netip.ParseAddrPort).
 * Returns NULL, or what is wrong.
 */
static const char *parse_endpoint(const char *v, size_t len, union wgt_sockaddr *ret)
{
	char addr[INET6_ADDRSTRLEN];
	const char *host, *port, *zone = NULL;
	size_t host_len, port_len, zone_len = 0;
	union wgt_sockaddr sa;
	uint64_t n;

	memset(&sa, 0, sizeof(sa));
	if (!len)
		return "empty";
	if (v[0] == '[') {
		const char *close = memchr(v, ']', len);

		if (!close)
			return "missing ']'";
		host = v + 1;
		host_len = (size_t)(close - host);
		if ((size_t)(close - v) + 1 >= len || close[1] != ':')
			return "missing ':port' after ']'";
		port = close + 2;
		zone = memchr(host, '%', host_len);
		if (zone) {
			zone_len = host_len - (size_t)(zone - host) - 1;
			host_len = (size_t)(zone - host);
			zone++;
		}
	} else {
		const char *colon = memrchr(v, ':', len);

		if (!colon)
			return "missing ':port'";
		host = v;
		host_len = (size_t)(colon - v);
		port = colon + 1;
		if (memchr(host, ':', host_len))
			return "an IPv6 address needs brackets: [addr]:port";
	}
	port_len = len - (size_t)(port - v);
	if (wgt_parse_uint(port, port_len, 65535, &n))
		return "port is not a number in 0-65535";

	if (v[0] == '[') {
		if (!wgt_parse_copy_addr(addr, host, host_len) ||
		    inet_pton(AF_INET6, addr, &sa.in6.sin6_addr) != 1)
			return "not a numeric IPv6 address inside [ ]";
		if (zone) {
			const char *why = parse_scope(zone, zone_len, &sa.in6.sin6_scope_id);

			if (why)
				return why;
		}
		sa.in6.sin6_family = AF_INET6;
		sa.in6.sin6_port = htons((uint16_t)n);
	} else {
		if (!wgt_parse_copy_addr(addr, host, host_len) ||
		    inet_pton(AF_INET, addr, &sa.in4.sin_addr) != 1)
			return looks_like_hostname(host, host_len) ?
			       "hostnames are not accepted (wg resolves them before sending)" :
			       "not a numeric IPv4 address";
		sa.in4.sin_family = AF_INET;
		sa.in4.sin_port = htons((uint16_t)n);
	}
	*ret = sa;
	return NULL;
}

/*
 * [-]addr/cidr, as netip.ParsePrefix takes it: no zone, no leading zero in
 * the prefix length, host bits allowed. Returns NULL, or what is wrong.
 */
static const char *parse_allowedip(const char *v, size_t len, struct wgt_uapi_allowedip *ret)
{
	char addr[INET6_ADDRSTRLEN];
	struct wgt_uapi_allowedip ip;
	const char *slash, *bits;
	size_t bits_len;
	uint64_t cidr;

	memset(&ip, 0, sizeof(ip));
	if (len && v[0] == '-') {
		ip.remove = true;
		v++;
		len--;
	}
	slash = memrchr(v, '/', len);
	if (!slash)
		return "missing '/cidr'";
	if (!wgt_parse_copy_addr(addr, v, (size_t)(slash - v)))
		return "not an IP address";
	if (strchr(addr, ':')) {
		if (inet_pton(AF_INET6, addr, ip.addr) != 1)
			return strchr(addr, '%') ? "an IPv6 zone is not allowed in a prefix" :
						   "not an IPv6 address";
		ip.family = AF_INET6;
	} else {
		if (inet_pton(AF_INET, addr, ip.addr) != 1)
			return "not an IPv4 address";
		ip.family = AF_INET;
	}
	bits = slash + 1;
	bits_len = len - (size_t)(bits - v);
	if (bits_len > 1 && bits[0] == '0')
		return "prefix length has a leading zero";
	if (wgt_parse_uint(bits, bits_len, 255, &cidr))
		return "prefix length is not a number";
	if (cidr > (ip.family == AF_INET ? 32U : 128U))
		return ip.family == AF_INET ? "prefix length above 32" : "prefix length above 128";
	ip.cidr = (uint8_t)cidr;
	*ret = ip;
	return NULL;
}

static int grow_peers(struct wgt_uapi_device *dev)
{
	size_t cap = dev->cap_peers ? 2 * dev->cap_peers : 4;
	struct wgt_uapi_peer *peers = calloc(cap, sizeof(*peers));

	if (!peers)
		return -ENOMEM;
	/* Not realloc(): the old block holds preshared keys and is wiped first. */
	if (dev->peers) {
		memcpy(peers, dev->peers, dev->n_peers * sizeof(*peers));
		explicit_bzero(dev->peers, dev->cap_peers * sizeof(*peers));
		free(dev->peers);
	}
	dev->peers = peers;
	dev->cap_peers = cap;
	return 0;
}

static int push_allowedip(struct wgt_uapi_peer *peer, const struct wgt_uapi_allowedip *ip)
{
	if (peer->n_allowed_ips == peer->cap_allowed_ips) {
		size_t cap = peer->cap_allowed_ips ? 2 * peer->cap_allowed_ips : 4;
		struct wgt_uapi_allowedip *ips = realloc(peer->allowed_ips, cap * sizeof(*ips));

		if (!ips)
			return -ENOMEM;
		peer->allowed_ips = ips;
		peer->cap_allowed_ips = cap;
	}
	peer->allowed_ips[peer->n_allowed_ips++] = *ip;
	return 0;
}

static struct wgt_uapi_peer *cur_peer(struct wgt_uapi_parser *p)
{
	WGT_ASSERT(p->in_peer && p->dev->n_peers);
	return &p->dev->peers[p->dev->n_peers - 1];
}

static int bad_value(struct wgt_uapi_parser *p, const char *key, const char *why)
{
	return fail(p, WGT_UAPI_ERR_INVALID_VALUE, "%s: %s", key, why);
}

static int bad_uint(struct wgt_uapi_parser *p, const char *key, int r, uint64_t max)
{
	if (r == -ERANGE)
		return fail(p, WGT_UAPI_ERR_INVALID_VALUE, "%s: out of range (max %llu)", key,
			    (unsigned long long)max);
	return bad_value(p, key, "not a decimal number");
}

static int set_private_key(struct wgt_uapi_parser *p, const char *key, const char *v, size_t len)
{
	if (!parse_key(p->dev->private_key, v, len))
		return bad_value(p, key, "not 64 hex digits");
	p->dev->flags |= WGT_UAPI_DEV_HAS_PRIVATE_KEY;
	return 0;
}

static int set_listen_port(struct wgt_uapi_parser *p, const char *key, const char *v, size_t len)
{
	uint64_t n;
	int r = wgt_parse_uint(v, len, 65535, &n);

	if (r)
		return bad_uint(p, key, r, 65535);
	p->dev->listen_port = (uint16_t)n;
	p->dev->flags |= WGT_UAPI_DEV_HAS_LISTEN_PORT;
	return 0;
}

static int set_fwmark(struct wgt_uapi_parser *p, const char *key, const char *v, size_t len)
{
	uint64_t n;
	int r = wgt_parse_uint(v, len, UINT32_MAX, &n);

	if (r)
		return bad_uint(p, key, r, UINT32_MAX);
	p->dev->fwmark = (uint32_t)n;
	p->dev->flags |= WGT_UAPI_DEV_HAS_FWMARK;
	return 0;
}

static int set_replace_peers(struct wgt_uapi_parser *p, const char *key, const char *v, size_t len)
{
	if (!is_true(v, len))
		return bad_value(p, key, "the only value is 'true'");
	p->dev->flags |= WGT_UAPI_DEV_REPLACE_PEERS;
	return 0;
}

/* Starts a peer section, from the device section or from another peer's. */
static int set_public_key(struct wgt_uapi_parser *p, const char *key, const char *v, size_t len)
{
	struct wgt_uapi_device *dev = p->dev;
	struct wgt_uapi_peer *peer;

	if (dev->n_peers >= p->limits.max_peers)
		return fail(p, WGT_UAPI_ERR_TOO_MANY_PEERS, "more than %zu peers in one set",
			    p->limits.max_peers);
	if (dev->n_peers == dev->cap_peers && grow_peers(dev))
		return fail(p, WGT_UAPI_ERR_NOMEM, "out of memory");
	peer = &dev->peers[dev->n_peers];
	memset(peer, 0, sizeof(*peer));
	if (!parse_key(peer->public_key, v, len))
		return bad_value(p, key, "not 64 hex digits");
	dev->n_peers++;
	p->in_peer = true;
	p->peer_allowedips = 0;
	return 0;
}

static int set_remove(struct wgt_uapi_parser *p, const char *key, const char *v, size_t len)
{
	if (!is_true(v, len))
		return bad_value(p, key, "the only value is 'true'");
	cur_peer(p)->flags |= WGT_UAPI_PEER_REMOVE;
	return 0;
}

static int set_update_only(struct wgt_uapi_parser *p, const char *key, const char *v, size_t len)
{
	if (!is_true(v, len))
		return bad_value(p, key, "the only value is 'true'");
	cur_peer(p)->flags |= WGT_UAPI_PEER_UPDATE_ONLY;
	return 0;
}

static int set_preshared_key(struct wgt_uapi_parser *p, const char *key, const char *v, size_t len)
{
	struct wgt_uapi_peer *peer = cur_peer(p);

	if (!parse_key(peer->preshared_key, v, len))
		return bad_value(p, key, "not 64 hex digits");
	peer->flags |= WGT_UAPI_PEER_HAS_PRESHARED_KEY;
	return 0;
}

static int set_endpoint(struct wgt_uapi_parser *p, const char *key, const char *v, size_t len)
{
	struct wgt_uapi_peer *peer = cur_peer(p);
	const char *why = parse_endpoint(v, len, &peer->endpoint);

	if (why)
		return bad_value(p, key, why);
	peer->flags |= WGT_UAPI_PEER_HAS_ENDPOINT;
	return 0;
}

static int set_keepalive(struct wgt_uapi_parser *p, const char *key, const char *v, size_t len)
{
	struct wgt_uapi_peer *peer = cur_peer(p);
	uint64_t n;
	int r = wgt_parse_uint(v, len, 65535, &n);

	if (r)
		return bad_uint(p, key, r, 65535);
	peer->persistent_keepalive = (uint16_t)n;
	peer->flags |= WGT_UAPI_PEER_HAS_PERSISTENT_KEEPALIVE;
	return 0;
}

/* wireguard-go removes the allowed IPs when it reads this line: drop the ones before it. */
static int set_replace_allowed_ips(struct wgt_uapi_parser *p, const char *key, const char *v,
				   size_t len)
{
	struct wgt_uapi_peer *peer = cur_peer(p);

	if (!is_true(v, len))
		return bad_value(p, key, "the only value is 'true'");
	peer->n_allowed_ips = 0;
	peer->flags |= WGT_UAPI_PEER_REPLACE_ALLOWED_IPS;
	return 0;
}

static int set_allowed_ip(struct wgt_uapi_parser *p, const char *key, const char *v, size_t len)
{
	struct wgt_uapi_allowedip ip;
	const char *why;

	if (p->set_allowedips >= p->limits.max_allowedips)
		return fail(p, WGT_UAPI_ERR_TOO_MANY_ALLOWEDIPS,
			    "more than %zu allowed IPs in one set", p->limits.max_allowedips);
	if (p->peer_allowedips >= p->limits.max_allowedips_per_peer)
		return fail(p, WGT_UAPI_ERR_TOO_MANY_ALLOWEDIPS_PEER,
			    "more than %zu allowed IPs for one peer",
			    p->limits.max_allowedips_per_peer);
	why = parse_allowedip(v, len, &ip);
	if (why)
		return bad_value(p, key, why);
	if (push_allowedip(cur_peer(p), &ip))
		return fail(p, WGT_UAPI_ERR_NOMEM, "out of memory");
	p->set_allowedips++;
	p->peer_allowedips++;
	return 0;
}

static int set_protocol_version(struct wgt_uapi_parser *p, const char *key, const char *v,
				size_t len)
{
	if (len != 1 || v[0] != '1')
		return bad_value(p, key, "only version 1 is supported");
	cur_peer(p)->flags |= WGT_UAPI_PEER_HAS_PROTOCOL_VERSION;
	return 0;
}

enum section { DEVICE, PEER, BOTH };

static const struct {
	const char *name;
	enum section section;
	int (*set)(struct wgt_uapi_parser *p, const char *key, const char *v, size_t len);
} keys[] = {
	{ "private_key", DEVICE, set_private_key },
	{ "listen_port", DEVICE, set_listen_port },
	{ "fwmark", DEVICE, set_fwmark },
	{ "replace_peers", DEVICE, set_replace_peers },
	{ "public_key", BOTH, set_public_key },
	{ "remove", PEER, set_remove },
	{ "update_only", PEER, set_update_only },
	{ "preshared_key", PEER, set_preshared_key },
	{ "endpoint", PEER, set_endpoint },
	{ "persistent_keepalive_interval", PEER, set_keepalive },
	{ "replace_allowed_ips", PEER, set_replace_allowed_ips },
	{ "allowed_ip", PEER, set_allowed_ip },
	{ "protocol_version", PEER, set_protocol_version },
};

/* Dispatches key=value the way wireguard-go's IpcSetOperation does. */
static int handle_pair(struct wgt_uapi_parser *p, const char *k, size_t klen, const char *v,
		       size_t vlen)
{
	enum section section = p->in_peer ? PEER : DEVICE;
	char quoted[33];
	const char *name;
	size_t i;

	for (i = 0; i < WGT_ARRAY_SIZE(keys); i++) {
		if (strlen(keys[i].name) != klen || memcmp(keys[i].name, k, klen))
			continue;
		if (keys[i].section == BOTH || keys[i].section == section)
			return keys[i].set(p, keys[i].name, v, vlen);
		if (section == DEVICE)
			return fail(p, WGT_UAPI_ERR_UNKNOWN_KEY,
				    "peer key '%s' before any public_key", keys[i].name);
		return fail(p, WGT_UAPI_ERR_UNKNOWN_KEY,
			    "device key '%s' inside a peer section", keys[i].name);
	}
	name = quotable_key(k, klen, quoted);
	if (!name)
		return fail(p, WGT_UAPI_ERR_UNKNOWN_KEY, "unknown %s key (not shown)",
			    section == DEVICE ? "device" : "peer");
	return fail(p, WGT_UAPI_ERR_UNKNOWN_KEY, "unknown %s key '%s'",
		    section == DEVICE ? "device" : "peer", name);
}

static void reset(struct wgt_uapi_parser *p)
{
	wgt_uapi_device_free(p->dev);
	p->dev = NULL;
	p->in_peer = false;
	p->done = false;
	p->err = 0;
	p->lineno = 0;
	p->set_bytes = 0;
	p->set_allowedips = 0;
	p->peer_allowedips = 0;
	explicit_bzero(p->buf, p->buf_len);
	p->buf_len = 0;
}

static size_t clamp_limit(size_t want, size_t hard)
{
	return want && want < hard ? want : hard;
}

struct wgt_uapi_parser *wgt_uapi_parser_new(const struct wgt_uapi_limits *limits)
{
	struct wgt_uapi_parser *p = calloc(1, sizeof(*p));
	struct wgt_uapi_limits none = { 0 };

	if (!p)
		return NULL;
	if (!limits)
		limits = &none;
	p->limits.max_set_bytes = clamp_limit(limits->max_set_bytes, WGT_UAPI_MAX_SET_BYTES);
	p->limits.max_peers = clamp_limit(limits->max_peers, WGT_UAPI_MAX_PEERS);
	p->limits.max_allowedips_per_peer = clamp_limit(limits->max_allowedips_per_peer,
							WGT_UAPI_MAX_ALLOWEDIPS_PER_PEER);
	p->limits.max_allowedips = clamp_limit(limits->max_allowedips, WGT_UAPI_MAX_ALLOWEDIPS);
	return p;
}

void wgt_uapi_parser_free(struct wgt_uapi_parser *p)
{
	if (!p)
		return;
	reset(p);
	explicit_bzero(p, sizeof(*p));
	free(p);
}

int wgt_uapi_parser_line(struct wgt_uapi_parser *p, const char *line, size_t len)
{
	const char *eq;
	size_t bytes;

	if (p->err)
		return p->err;
	if (!p->lineno) {
		p->reason = WGT_UAPI_OK;
		p->msg[0] = '\0';
	}
	p->lineno++;
	if (p->done)
		return fail(p, WGT_UAPI_ERR_TRAILING_DATA, "data after the blank line that ends the set");
	bytes = len;
	if (len && line[len - 1] == '\r')
		len--;
	if (len > WGT_UAPI_MAX_LINE)
		return fail(p, WGT_UAPI_ERR_LINE_TOO_LONG, "line longer than %u bytes",
			    WGT_UAPI_MAX_LINE);
	/* set_bytes <= max_set_bytes always; the '\n' counts too. */
	if (bytes >= p->limits.max_set_bytes - p->set_bytes)
		return fail(p, WGT_UAPI_ERR_SET_TOO_BIG, "set larger than %zu bytes",
			    p->limits.max_set_bytes);
	p->set_bytes += bytes + 1;
	if (!len) {
		p->done = true;
		return 1;
	}
	eq = memchr(line, '=', len);
	if (!eq)
		return fail(p, WGT_UAPI_ERR_SYNTAX, "expected key=value");
	if (!p->dev) {
		p->dev = calloc(1, sizeof(*p->dev));
		if (!p->dev)
			return fail(p, WGT_UAPI_ERR_NOMEM, "out of memory");
	}
	return handle_pair(p, line, (size_t)(eq - line), eq + 1, len - (size_t)(eq - line) - 1);
}

int wgt_uapi_parser_feed(struct wgt_uapi_parser *p, const void *data, size_t len,
			 size_t *ret_consumed)
{
	const char *d = data;
	size_t used = 0;
	int ret = p->err;

	while (!ret && used < len) {
		const char *nl = memchr(d + used, '\n', len - used);
		size_t chunk = nl ? (size_t)(nl - (d + used)) : len - used;

		if (chunk > sizeof(p->buf) - p->buf_len) {
			/* Counted as a line so the message names the right one. */
			p->lineno++;
			used += chunk;
			ret = fail(p, WGT_UAPI_ERR_LINE_TOO_LONG, "line longer than %u bytes",
				   WGT_UAPI_MAX_LINE);
			break;
		}
		memcpy(p->buf + p->buf_len, d + used, chunk);
		p->buf_len += chunk;
		used += chunk;
		if (!nl)
			break;
		used++;
		ret = wgt_uapi_parser_line(p, p->buf, p->buf_len);
		explicit_bzero(p->buf, p->buf_len);
		p->buf_len = 0;
	}
	*ret_consumed = used;
	return ret;
}

int wgt_uapi_parser_finish(struct wgt_uapi_parser *p, struct wgt_uapi_device **ret_dev)
{
	int ret = p->err;

	if (!ret && !p->dev) {
		p->dev = calloc(1, sizeof(*p->dev));
		if (!p->dev)
			ret = fail(p, WGT_UAPI_ERR_NOMEM, "out of memory");
	}
	if (!ret) {
		*ret_dev = p->dev;
		p->dev = NULL;
	}
	reset(p);
	return ret;
}

enum wgt_uapi_error wgt_uapi_parser_error(const struct wgt_uapi_parser *p)
{
	return p->reason;
}

const char *wgt_uapi_parser_message(const struct wgt_uapi_parser *p)
{
	return p->msg;
}
