/* SPDX-License-Identifier: MIT */
/* The UAPI get=1 answer, written line for line in wireguard-go's order and spelling. */
#include "config/uapi.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/compiler.h"

/* The longest text form of an IPv6 address, zone excluded ("::ffff:255.255.255.255" is shorter). */
#define IPV6_TEXT_MAX 39

/* A buffer being appended to; the first failure sticks and later writes do nothing. */
struct out {
	struct wgt_uapi_buf *buf;
	int err;
};

void wgt_uapi_buf_free(struct wgt_uapi_buf *buf)
{
	if (!buf)
		return;
	if (buf->data) {
		explicit_bzero(buf->data, buf->cap);
		free(buf->data);
	}
	buf->data = NULL;
	buf->len = 0;
	buf->cap = 0;
}

static int reserve(struct wgt_uapi_buf *buf, size_t extra)
{
	size_t cap = buf->cap ? buf->cap : 512;
	char *data;

	if (buf->cap - buf->len > extra)
		return 0;
	while (cap - buf->len <= extra) {
		if (cap > SIZE_MAX / 2)
			return -ENOMEM;
		cap *= 2;
	}
	/* Not realloc(): the old block may hold the private key and is wiped first. */
	data = malloc(cap);
	if (!data)
		return -ENOMEM;
	if (buf->data) {
		memcpy(data, buf->data, buf->len);
		explicit_bzero(buf->data, buf->cap);
		free(buf->data);
	}
	buf->data = data;
	buf->cap = cap;
	return 0;
}

static void put(struct out *o, const char *s, size_t len)
{
	if (o->err)
		return;
	o->err = reserve(o->buf, len);
	if (o->err)
		return;
	memcpy(o->buf->data + o->buf->len, s, len);
	o->buf->len += len;
	o->buf->data[o->buf->len] = '\0';
}

__attribute__((format(printf, 2, 3)))
static void putf(struct out *o, const char *fmt, ...)
{
	char line[128];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	WGT_ASSERT(n >= 0 && (size_t)n < sizeof(line));
	if (n < 0 || (size_t)n >= sizeof(line)) {
		o->err = o->err ? o->err : -EINVAL;
		return;
	}
	put(o, line, (size_t)n);
}

/* Lowercase hex with no branch or table lookup on the key bytes. */
static void put_key(struct out *o, const char *name, const uint8_t key[WGT_UAPI_KEY_LEN])
{
	char line[32 + 2 * WGT_UAPI_KEY_LEN + 2];
	size_t n = strlen(name), i;

	WGT_ASSERT(n + 2 * WGT_UAPI_KEY_LEN + 2 <= sizeof(line));
	memcpy(line, name, n);
	line[n++] = '=';
	for (i = 0; i < WGT_UAPI_KEY_LEN; i++) {
		unsigned hi = key[i] >> 4, lo = key[i] & 0xfU;

		line[n++] = (char)(hi + '0' + (((9U - hi) >> 8) & ('a' - '0' - 10)));
		line[n++] = (char)(lo + '0' + (((9U - lo) >> 8) & ('a' - '0' - 10)));
	}
	line[n++] = '\n';
	put(o, line, n);
	explicit_bzero(line, sizeof(line));
}

static bool key_is_zero(const uint8_t key[WGT_UAPI_KEY_LEN])
{
	uint8_t acc = 0;
	size_t i;

	for (i = 0; i < WGT_UAPI_KEY_LEN; i++)
		acc |= key[i];
	return !acc;
}

static size_t format_ipv4(char *dst, size_t size, const uint8_t a[4])
{
	int n = snprintf(dst, size, "%u.%u.%u.%u", a[0], a[1], a[2], a[3]);

	return n > 0 ? (size_t)n : 0;
}

/*
 * As Go's netip.Addr.String() writes IPv6 (RFC 5952): lowercase, no
 * leading zeros, the first longest run of two or more zero groups as "::",
 * and IPv4-mapped addresses as ::ffff:a.b.c.d. glibc's inet_ntop() differs
 * for ::a.b.c.d, hence our own.
 */
static size_t format_ipv6(char dst[IPV6_TEXT_MAX + 1], const uint8_t a[16])
{
	static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff };
	unsigned best_start = 8, best_len = 0, i;
	size_t n = 0;

	if (!memcmp(a, mapped, sizeof(mapped))) {
		memcpy(dst, "::ffff:", 7);
		return 7 + format_ipv4(dst + 7, IPV6_TEXT_MAX + 1 - 7, a + 12);
	}
	for (i = 0; i < 8; i++) {
		unsigned j = i;

		while (j < 8 && !a[2 * j] && !a[2 * j + 1])
			j++;
		if (j - i >= 2 && j - i > best_len) {
			best_start = i;
			best_len = j - i;
		}
	}
	for (i = 0; i < 8; i++) {
		if (i == best_start) {
			dst[n++] = ':';
			dst[n++] = ':';
			i += best_len - 1;
			continue;
		}
		if (i && i != best_start + best_len)
			dst[n++] = ':';
		n += (size_t)snprintf(dst + n, IPV6_TEXT_MAX + 1 - n, "%x",
				      (unsigned)a[2 * i] << 8 | a[2 * i + 1]);
	}
	dst[n] = '\0';
	return n;
}

/* 1.2.3.4:51820, [2001:db8::1]:51820, [fe80::1%2]:51820 (netip.AddrPort.String()). */
static void put_endpoint(struct out *o, const union wgt_sockaddr *ep)
{
	char addr[IPV6_TEXT_MAX + 1];

	if (ep->sa.sa_family == AF_INET) {
		format_ipv4(addr, sizeof(addr), (const uint8_t *)&ep->in4.sin_addr);
		putf(o, "endpoint=%s:%u\n", addr, (unsigned)ntohs(ep->in4.sin_port));
	} else if (ep->sa.sa_family == AF_INET6) {
		format_ipv6(addr, ep->in6.sin6_addr.s6_addr);
		if (ep->in6.sin6_scope_id)
			putf(o, "endpoint=[%s%%%" PRIu32 "]:%u\n", addr, ep->in6.sin6_scope_id,
			     (unsigned)ntohs(ep->in6.sin6_port));
		else
			putf(o, "endpoint=[%s]:%u\n", addr, (unsigned)ntohs(ep->in6.sin6_port));
	}
}

static void put_allowedip(struct out *o, const struct wgt_uapi_allowedip *ip)
{
	char addr[IPV6_TEXT_MAX + 1];

	if (ip->family == AF_INET)
		format_ipv4(addr, sizeof(addr), ip->addr);
	else
		format_ipv6(addr, ip->addr);
	putf(o, "allowed_ip=%s/%u\n", addr, ip->cidr);
}

static bool peer_is_valid(const struct wgt_uapi_get_peer *peer)
{
	int family = peer->endpoint.sa.sa_family;
	size_t j;

	if (family != AF_UNSPEC && family != AF_INET && family != AF_INET6)
		return false;
	if (peer->n_allowed_ips && !peer->allowed_ips)
		return false;
	for (j = 0; j < peer->n_allowed_ips; j++) {
		const struct wgt_uapi_allowedip *ip = &peer->allowed_ips[j];

		if (!((ip->family == AF_INET && ip->cidr <= 32) ||
		      (ip->family == AF_INET6 && ip->cidr <= 128)))
			return false;
	}
	return true;
}

static bool view_is_valid(const struct wgt_uapi_get_device *dev)
{
	if (dev->n_peers && !dev->peers)
		return false;
	for (size_t i = 0; i < dev->n_peers; i++)
		if (!peer_is_valid(&dev->peers[i]))
			return false;
	return true;
}

/* A failed write takes back everything appended since `start`. */
static int finish(struct out *o, size_t start)
{
	struct wgt_uapi_buf *out = o->buf;

	if (o->err && out->data) {
		explicit_bzero(out->data + start, out->len - start);
		out->len = start;
		out->data[start] = '\0';
	}
	return o->err;
}

static void put_device(struct out *o, const struct wgt_uapi_get_device *dev)
{
	if (dev->has_private_key && !key_is_zero(dev->private_key))
		put_key(o, "private_key", dev->private_key);
	if (dev->listen_port)
		putf(o, "listen_port=%u\n", dev->listen_port);
	if (dev->fwmark)
		putf(o, "fwmark=%" PRIu32 "\n", dev->fwmark);
}

static void put_peer(struct out *o, const struct wgt_uapi_get_peer *peer)
{
	put_key(o, "public_key", peer->public_key);
	put_key(o, "preshared_key", peer->preshared_key);
	putf(o, "protocol_version=%" PRIu32 "\n",
	     peer->protocol_version ? peer->protocol_version : 1);
	put_endpoint(o, &peer->endpoint);
	putf(o, "last_handshake_time_sec=%" PRId64 "\n", peer->last_handshake_time_sec);
	putf(o, "last_handshake_time_nsec=%" PRId64 "\n", peer->last_handshake_time_nsec);
	putf(o, "tx_bytes=%" PRIu64 "\n", peer->tx_bytes);
	putf(o, "rx_bytes=%" PRIu64 "\n", peer->rx_bytes);
	putf(o, "persistent_keepalive_interval=%u\n", peer->persistent_keepalive_interval);
	for (size_t j = 0; j < peer->n_allowed_ips; j++)
		put_allowedip(o, &peer->allowed_ips[j]);
}

int wgt_uapi_format_get(struct wgt_uapi_buf *out, const struct wgt_uapi_get_device *dev)
{
	struct out o = { .buf = out };
	size_t start = out->len;

	if (!view_is_valid(dev))
		return -EINVAL;
	put_device(&o, dev);
	for (size_t i = 0; i < dev->n_peers; i++)
		put_peer(&o, &dev->peers[i]);
	put(&o, "errno=0\n\n", 9);
	return finish(&o, start);
}

int wgt_uapi_format_get_device(struct wgt_uapi_buf *out, const struct wgt_uapi_get_device *dev)
{
	struct out o = { .buf = out };
	size_t start = out->len;

	put_device(&o, dev);
	return finish(&o, start);
}

int wgt_uapi_format_get_peer(struct wgt_uapi_buf *out, const struct wgt_uapi_get_peer *peer)
{
	struct out o = { .buf = out };
	size_t start = out->len;

	if (!peer_is_valid(peer))
		return -EINVAL;
	put_peer(&o, peer);
	return finish(&o, start);
}

int wgt_uapi_format_get_end(struct wgt_uapi_buf *out)
{
	struct out o = { .buf = out };
	size_t start = out->len;

	put(&o, "errno=0\n\n", 9);
	return finish(&o, start);
}

int wgt_uapi_format_errno(struct wgt_uapi_buf *out, int err)
{
	struct out o = { .buf = out };

	putf(&o, "errno=%d\n\n", err);
	return o.err;
}
