/* SPDX-License-Identifier: MIT */
/* Applies UAPI sets to the live device and answers gets from it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common/allowedips.h"
#include "common/log.h"
#include "config/uapi.h"
#include "crypto/x25519.h"
#include "gateway/device.h"
#include "gateway/test_hooks.h"

static const uint8_t zero_key[WGT_KEY_LEN];

/* Control thread only. As the kernel: a peer with our new public key is removed. */
static int set_private_key(struct wgt_device *dev, const uint8_t key[WGT_KEY_LEN])
{
	uint8_t priv[WGT_KEY_LEN], pub[WGT_KEY_LEN];
	bool remove = !CRYPTO_memcmp(key, zero_key, WGT_KEY_LEN);
	struct wgt_peer *same;
	int r = 0;

	memcpy(priv, key, WGT_KEY_LEN);
	wgt_x25519_clamp(priv);
	if (!remove && dev->identity.has_identity &&
	    !CRYPTO_memcmp(priv, dev->identity.static_private, WGT_KEY_LEN))
		goto out;
	if (remove) {
		wgt_noise_identity_clear(&dev->identity);
		wgt_cookie_checker_clear(&dev->checker);
	} else {
		r = wgt_x25519_public(pub, priv);
		if (r)
			goto out;
		same = wgt_peer_lookup(dev, pub);
		if (same)
			wgt_peer_remove(same);
		r = wgt_noise_identity_set(&dev->identity, priv);
		if (r)
			goto out;
		r = wgt_cookie_checker_init(&dev->checker, dev->identity.static_public);
		if (r)
			goto out;
	}
	wgt_handshake_publish_checker(dev);
	atomic_store_explicit(&dev->has_identity, !remove, memory_order_relaxed);
	for (struct wgt_peer *p = dev->peers_head; p; p = p->list_next) {
		wgt_handshake_clear(p);
		if (p->session)
			wgt_noise_handshake_refresh_identity(&p->session->handshake);
		wgt_noise_keypairs_expire_current(&p->keypairs);
	}
out:
	OPENSSL_cleanse(priv, sizeof(priv));
	return r;
}

static int apply_allowed_ips(struct wgt_device *dev, struct wgt_peer *peer,
			     const struct wgt_uapi_peer *up)
{
	if (up->flags & WGT_UAPI_PEER_REPLACE_ALLOWED_IPS)
		wgt_allowedips_remove_by_value(dev->allowedips, peer);
	for (size_t i = 0; i < up->n_allowed_ips; i++) {
		const struct wgt_uapi_allowedip *a = &up->allowed_ips[i];
		int r;

		if (a->remove) {
			wgt_allowedips_remove(dev->allowedips, a->family, a->addr, a->cidr, peer);
			continue;
		}
		/* The table masks host bits, as `wg` users expect (10.0.0.1/24 is 10.0.0.0/24). */
		r = wgt_test_hooks_fail_alloc() ?
			    -ENOMEM :
			    wgt_allowedips_insert(dev->allowedips, a->family, a->addr, a->cidr, peer);
		if (r)
			return r;
	}
	return 0;
}

/*
 * Control thread only. A peer this set creates is either built whole or not
 * at all: when a later step fails (no memory for an allowed IP, the table's
 * cap) it is removed again, so `wg show` is what it was before, and the
 * failure is counted.
 */
static int apply_peer(struct wgt_device *dev, const struct wgt_uapi_peer *up)
{
	struct wgt_peer *peer;
	bool created = false;
	int r;

	if (dev->identity.has_identity &&
	    !CRYPTO_memcmp(up->public_key, dev->identity.static_public, WGT_KEY_LEN))
		return 0; /* our own key: ignored, as by the kernel */
	peer = wgt_peer_lookup(dev, up->public_key);
	if (up->flags & WGT_UAPI_PEER_REMOVE) {
		if (peer)
			wgt_peer_remove(peer);
		return 0;
	}
	if (!peer) {
		if (up->flags & WGT_UAPI_PEER_UPDATE_ONLY)
			return 0;
		wgt_test_hooks_peer_begin();
		r = wgt_peer_create(dev, up->public_key, &peer);
		if (r) {
			wgt_test_hooks_peer_end();
			dev->peer_add_failures++;
			wgt_warn("%s: cannot add a peer: %s", dev->ifname, strerror(-r));
			return r;
		}
		created = true;
	}
	if (up->flags & WGT_UAPI_PEER_HAS_PRESHARED_KEY) {
		r = wgt_peer_set_psk(peer, up->preshared_key);
		if (r) {
			wgt_test_hooks_peer_end();
			wgt_warn("%s: cannot set a peer's pre-shared key: %s%s", dev->ifname,
				 strerror(-r), created ? "; the peer is not added" : "");
			if (created) {
				dev->peer_add_failures++;
				wgt_peer_remove(peer);
			}
			return r;
		}
	}
	if (up->flags & WGT_UAPI_PEER_HAS_ENDPOINT) {
		struct wgt_endpoint ep = { .addr = up->endpoint };

		wgt_peer_set_endpoint(peer, &ep);
		wgt_audit_endpoint_configured(peer);
	}
	r = apply_allowed_ips(dev, peer, up);
	wgt_test_hooks_peer_end();
	if (r) {
		if (created) {
			char label[WGT_PEER_LABEL_LEN];

			wgt_peer_name(peer, label);
			wgt_warn("%s: cannot add peer %s: its allowed IPs: %s; the peer is not added",
				 dev->ifname, label, strerror(-r));
			dev->peer_add_failures++;
			wgt_peer_remove(peer);
		}
		return r;
	}
	if (up->flags & WGT_UAPI_PEER_HAS_PERSISTENT_KEEPALIVE) {
		unsigned actions = wgt_timers_set_persistent_keepalive(
			&peer->timers, up->persistent_keepalive, wgt_now_ns());

		wgt_peer_timers_apply(peer, actions);
		wgt_peer_timers_rearm(peer);
	}
	/* A changed key, endpoint or PSK deserves a prompt new attempt. */
	atomic_store_explicit(&peer->want_handshake_at, 0, memory_order_relaxed);
	return 0;
}

/* Control thread only: struct wgt_uapi_handler.set. */
int wgt_device_uapi_set(void *ctx, const struct wgt_uapi_device *set)
{
	struct wgt_device *dev = ctx;
	int r;

	if (set->flags & WGT_UAPI_DEV_HAS_PRIVATE_KEY) {
		r = set_private_key(dev, set->private_key);
		if (r)
			return r;
	}
	if (set->flags & WGT_UAPI_DEV_HAS_LISTEN_PORT) {
		r = wgt_device_set_listen_port(dev, set->listen_port);
		if (r) {
			wgt_err("%s: cannot listen on UDP port %u: %s%s; still on port %u", dev->ifname,
				set->listen_port, strerror(-r),
				r == -EADDRINUSE ? " (another socket holds it)" :
				r == -EACCES ? " (a port below 1024 needs CAP_NET_BIND_SERVICE)" : "",
				dev->listen_port);
			return r;
		}
	}
	if (set->flags & WGT_UAPI_DEV_HAS_FWMARK) {
		r = wgt_device_set_fwmark(dev, set->fwmark);
		if (r) {
			wgt_err("%s: cannot set fwmark %u: %s", dev->ifname, set->fwmark,
				strerror(-r));
			return r;
		}
	}
	if (set->flags & WGT_UAPI_DEV_REPLACE_PEERS)
		wgt_peer_remove_all(dev);
	for (size_t i = 0; i < set->n_peers; i++) {
		r = apply_peer(dev, &set->peers[i]);
		if (r)
			return r;
	}
	return 0;
}

struct ips {
	struct wgt_uapi_allowedip *v;
	size_t n, cap;
};

static int collect_ip(void *ctx, int family, const uint8_t *addr, uint8_t cidr)
{
	struct ips *ips = ctx;

	if (ips->n == ips->cap) {
		size_t cap = ips->cap ? ips->cap * 2 : 8;
		void *v = realloc(ips->v, cap * sizeof(*ips->v));

		if (!v)
			return -ENOMEM;
		ips->v = v;
		ips->cap = cap;
	}
	memset(&ips->v[ips->n], 0, sizeof(ips->v[ips->n]));
	ips->v[ips->n].family = family;
	memcpy(ips->v[ips->n].addr, addr, family == AF_INET ? 4 : 16);
	ips->v[ips->n].cidr = cidr;
	ips->n++;
	return 0;
}

/* A streamed get's place: the next peer to write, kept valid across removals. */
struct wgt_uapi_get_cursor {
	struct wgt_uapi_get_cursor *prev, *next;  /* dev->get_cursors */
	struct wgt_peer *peer;                    /* NULL: the end */
};

/* Bytes of answer per part: the peers between two writes to the socket. */
#define GET_PART_BYTES (64U << 10)

static void cursor_free(struct wgt_device *dev, struct wgt_uapi_get_cursor *cur)
{
	if (cur->prev)
		cur->prev->next = cur->next;
	else
		dev->get_cursors = cur->next;
	if (cur->next)
		cur->next->prev = cur->prev;
	free(cur);
}

/* Control thread only. */
void wgt_device_uapi_get_forget(struct wgt_device *dev, struct wgt_peer *peer)
{
	for (struct wgt_uapi_get_cursor *c = dev->get_cursors; c; c = c->next)
		if (c->peer == peer)
			c->peer = peer->list_next;
}

/* Control thread only: struct wgt_uapi_handler.get_abort. */
void wgt_device_uapi_get_abort(void *ctx, void *cursor)
{
	cursor_free(ctx, cursor);
}

/* Control thread only. Appends one peer's lines. Returns 0 or -errno. */
static int put_peer(struct wgt_device *dev, struct wgt_peer *p, struct wgt_uapi_buf *out)
{
	struct wgt_uapi_get_peer gp = { 0 };
	struct wgt_endpoint ep;
	struct timespec lh;
	struct ips ips = { 0 };
	int r;

	memcpy(gp.public_key, p->remote_static, WGT_KEY_LEN);
	if (p->psk)
		memcpy(gp.preshared_key, p->psk, WGT_KEY_LEN);
	wgt_peer_get_endpoint(p, &ep);
	gp.endpoint = ep.addr;
	wgt_peer_last_handshake(p, &lh);
	gp.last_handshake_time_sec = lh.tv_sec;
	gp.last_handshake_time_nsec = lh.tv_nsec;
	wgt_peer_transfer(p, &gp.rx_bytes, &gp.tx_bytes);
	gp.persistent_keepalive_interval = p->timers.persistent_keepalive_interval;
	gp.protocol_version = 1;
	r = wgt_allowedips_walk_by_value(dev->allowedips, p, collect_ip, &ips);
	gp.allowed_ips = ips.v;
	gp.n_allowed_ips = ips.n;
	if (!r)
		r = wgt_uapi_format_get_peer(out, &gp);
	free(ips.v);
	OPENSSL_cleanse(&gp, sizeof(gp));
	return r;
}

/*
 * Control thread only: struct wgt_uapi_handler.get. Streams the peers in
 * list order, GET_PART_BYTES at a time: no view of all of them is built. A
 * peer removed meanwhile is skipped (the cursor moves past it), a peer
 * added meanwhile comes at the end; the device lines are those of the start.
 */
int wgt_device_uapi_get(void *ctx, struct wgt_uapi_buf *out, void **cursor)
{
	struct wgt_device *dev = ctx;
	struct wgt_uapi_get_cursor *cur = *cursor;
	int r = 0;

	if (!cur) {
		struct wgt_uapi_get_device g = { 0 };

		cur = calloc(1, sizeof(*cur));
		if (!cur)
			return -ENOMEM;
		g.has_private_key = dev->identity.has_identity;
		memcpy(g.private_key, dev->identity.static_private, WGT_KEY_LEN);
		g.listen_port = dev->listen_port;
		g.fwmark = dev->fwmark;
		r = wgt_uapi_format_get_device(out, &g);
		OPENSSL_cleanse(&g, sizeof(g));
		if (r) {
			free(cur);
			return r;
		}
		cur->peer = dev->peers_head;
		cur->next = dev->get_cursors;
		if (cur->next)
			cur->next->prev = cur;
		dev->get_cursors = cur;
	}
	while (cur->peer && out->len < GET_PART_BYTES) {
		r = put_peer(dev, cur->peer, out);
		if (r)
			goto fail;
		cur->peer = cur->peer->list_next;
	}
	if (cur->peer && out->len) {
		*cursor = cur;
		return 0;
	}
	r = wgt_uapi_format_get_end(out);
	if (r)
		goto fail;
	cursor_free(dev, cur);
	*cursor = NULL;
	return 1;
fail:
	cursor_free(dev, cur);
	*cursor = NULL;
	return r;
}
