/* SPDX-License-Identifier: MIT */
/* The UAPI set that turns one parsed configuration file into another (syncconf-like). */
#include "gateway/conf_apply.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/crypto.h>

#include "common/endpoint.h"
#include "config/conf.h"
#include "config/uapi.h"

static const uint8_t zero_key[WGT_UAPI_KEY_LEN];

static int cmp_key_index(const void *a, const void *b, void *arg)
{
	const struct wgt_uapi_peer *peers = arg;
	size_t i = *(const size_t *)a, j = *(const size_t *)b;
	int c = memcmp(peers[i].public_key, peers[j].public_key, WGT_UAPI_KEY_LEN);

	/* Equal keys keep file order, so the first section of a key is found first. */
	if (c)
		return c;
	return i < j ? -1 : i > j;
}

/* Indices of peers[] sorted by public key; NULL with n == 0 is fine. */
static size_t *sorted_index(const struct wgt_uapi_peer *peers, size_t n)
{
	size_t *idx = malloc((n ? n : 1) * sizeof(*idx));

	if (!idx)
		return NULL;
	for (size_t i = 0; i < n; i++)
		idx[i] = i;
	qsort_r(idx, n, sizeof(*idx), cmp_key_index, (void *)peers);
	return idx;
}

static void mask_prefix(struct wgt_uapi_allowedip *a)
{
	unsigned bytes = a->family == AF_INET ? 4 : 16;

	for (unsigned i = 0; i < bytes; i++) {
		unsigned bit = i * 8;

		if (bit >= a->cidr)
			a->addr[i] = 0;
		else if (bit + 8 > a->cidr)
			a->addr[i] &= (uint8_t)(0xff00U >> (a->cidr - bit));
	}
	if (a->family == AF_INET)
		memset(a->addr + 4, 0, 12);
}

static int cmp_allowedip(const void *pa, const void *pb)
{
	const struct wgt_uapi_allowedip *a = pa, *b = pb;

	if (a->family != b->family)
		return a->family < b->family ? -1 : 1;
	if (a->cidr != b->cidr)
		return a->cidr < b->cidr ? -1 : 1;
	return memcmp(a->addr, b->addr, sizeof(a->addr));
}

/* The prefixes a peer's allowed IPs put in the table: masked, sorted, unique. */
static int normalized_ips(const struct wgt_uapi_peer *p, struct wgt_uapi_allowedip **ret,
			  size_t *ret_n)
{
	struct wgt_uapi_allowedip *v = malloc((p->n_allowed_ips ? p->n_allowed_ips : 1) * sizeof(*v));
	size_t n = 0, out = 0;

	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < p->n_allowed_ips; i++) {
		if (p->allowed_ips[i].remove)
			continue;
		memset(&v[n], 0, sizeof(v[n]));
		v[n].family = p->allowed_ips[i].family;
		v[n].cidr = p->allowed_ips[i].cidr;
		memcpy(v[n].addr, p->allowed_ips[i].addr, sizeof(v[n].addr));
		mask_prefix(&v[n]);
		n++;
	}
	qsort(v, n, sizeof(*v), cmp_allowedip);
	for (size_t i = 0; i < n; i++)
		if (!out || cmp_allowedip(&v[out - 1], &v[i]))
			v[out++] = v[i];
	*ret = v;
	*ret_n = out;
	return 0;
}

/* 1: the two peers' allowed IPs make the same table entries; 0: not; -ENOMEM. */
static int same_allowed_ips(const struct wgt_uapi_peer *a, const struct wgt_uapi_peer *b)
{
	struct wgt_uapi_allowedip *va = NULL, *vb = NULL;
	size_t na, nb;
	int r;

	r = normalized_ips(a, &va, &na);
	if (r)
		goto out;
	r = normalized_ips(b, &vb, &nb);
	if (r)
		goto out;
	r = na == nb;
	for (size_t i = 0; r && i < na; i++)
		r = !cmp_allowedip(&va[i], &vb[i]);
out:
	free(va);
	free(vb);
	return r;
}

static const uint8_t *psk_of(const struct wgt_uapi_peer *p)
{
	return (p->flags & WGT_UAPI_PEER_HAS_PRESHARED_KEY) ? p->preshared_key : zero_key;
}

static uint16_t keepalive_of(const struct wgt_uapi_peer *p)
{
	return (p->flags & WGT_UAPI_PEER_HAS_PERSISTENT_KEEPALIVE) ? p->persistent_keepalive : 0;
}

static const struct wgt_conf_peer_meta no_meta;

static const struct wgt_conf_peer_meta *meta_of(const struct wgt_conf *c, size_t i)
{
	return c->meta ? &c->meta[i] : &no_meta;
}

/* The file's Endpoint line, as written, is the same. */
static bool same_endpoint_line(const struct wgt_uapi_peer *a, const struct wgt_conf_peer_meta *ma,
			       const struct wgt_uapi_peer *b, const struct wgt_conf_peer_meta *mb)
{
	bool ha = a->flags & WGT_UAPI_PEER_HAS_ENDPOINT, hb = b->flags & WGT_UAPI_PEER_HAS_ENDPOINT;

	if (ha != hb || strcmp(ma->endpoint_host, mb->endpoint_host) ||
	    ma->endpoint_port != mb->endpoint_port)
		return false;
	return !ha || wgt_sockaddr_equal(&a->endpoint, &b->endpoint);
}

static bool needs_resolution(const struct wgt_uapi_peer *p, const struct wgt_conf_peer_meta *m)
{
	return !(p->flags & WGT_UAPI_PEER_HAS_ENDPOINT) && m->endpoint_host[0];
}

static int copy_allowed_ips(struct wgt_uapi_peer *dst, const struct wgt_uapi_peer *src)
{
	dst->flags |= WGT_UAPI_PEER_REPLACE_ALLOWED_IPS;
	dst->n_allowed_ips = 0;
	dst->cap_allowed_ips = 0;
	dst->allowed_ips = NULL;
	if (!src->n_allowed_ips)
		return 0;
	dst->allowed_ips = malloc(src->n_allowed_ips * sizeof(*dst->allowed_ips));
	if (!dst->allowed_ips)
		return -ENOMEM;
	memcpy(dst->allowed_ips, src->allowed_ips, src->n_allowed_ips * sizeof(*dst->allowed_ips));
	dst->n_allowed_ips = dst->cap_allowed_ips = src->n_allowed_ips;
	return 0;
}

/* A full section for a peer the old file did not have. */
static int add_section(struct wgt_uapi_device *set, const struct wgt_uapi_peer *np)
{
	struct wgt_uapi_peer *s = &set->peers[set->n_peers++];

	memset(s, 0, sizeof(*s));
	memcpy(s->public_key, np->public_key, WGT_UAPI_KEY_LEN);
	s->flags = np->flags & (WGT_UAPI_PEER_HAS_PRESHARED_KEY | WGT_UAPI_PEER_HAS_ENDPOINT |
				WGT_UAPI_PEER_HAS_PERSISTENT_KEEPALIVE);
	memcpy(s->preshared_key, np->preshared_key, WGT_UAPI_KEY_LEN);
	s->endpoint = np->endpoint;
	s->persistent_keepalive = np->persistent_keepalive;
	return copy_allowed_ips(s, np);
}

static void remove_section(struct wgt_uapi_device *set, const struct wgt_uapi_peer *op)
{
	struct wgt_uapi_peer *s = &set->peers[set->n_peers++];

	memset(s, 0, sizeof(*s));
	memcpy(s->public_key, op->public_key, WGT_UAPI_KEY_LEN);
	s->flags = WGT_UAPI_PEER_REMOVE;
}

/*
 * A peer in both files: an update-only section with what changed, or none.
 * Sets WGT_CONF_PEER_CHANGED / _NAME / _RESOLVE in *flags.
 */
static int change_section(struct wgt_uapi_device *set, const struct wgt_uapi_peer *op,
			  const struct wgt_conf_peer_meta *om, const struct wgt_uapi_peer *np,
			  const struct wgt_conf_peer_meta *nm, unsigned *flags)
{
	struct wgt_uapi_peer *s = &set->peers[set->n_peers];
	bool any = false;
	int same_ips, r;

	memset(s, 0, sizeof(*s));
	memcpy(s->public_key, np->public_key, WGT_UAPI_KEY_LEN);
	s->flags = WGT_UAPI_PEER_UPDATE_ONLY;
	if (CRYPTO_memcmp(psk_of(op), psk_of(np), WGT_UAPI_KEY_LEN)) {
		s->flags |= WGT_UAPI_PEER_HAS_PRESHARED_KEY;
		memcpy(s->preshared_key, psk_of(np), WGT_UAPI_KEY_LEN);
		any = true;
	}
	if (keepalive_of(op) != keepalive_of(np)) {
		s->flags |= WGT_UAPI_PEER_HAS_PERSISTENT_KEEPALIVE;
		s->persistent_keepalive = keepalive_of(np);
		any = true;
	}
	if (!same_endpoint_line(op, om, np, nm)) {
		/* An Endpoint line taken out leaves the endpoint: UAPI cannot unset one. */
		if (np->flags & WGT_UAPI_PEER_HAS_ENDPOINT) {
			s->flags |= WGT_UAPI_PEER_HAS_ENDPOINT;
			s->endpoint = np->endpoint;
			any = true;
		} else if (needs_resolution(np, nm)) {
			*flags |= WGT_CONF_PEER_RESOLVE;
		}
		*flags |= WGT_CONF_PEER_ENDPOINT | WGT_CONF_PEER_CHANGED;
	}
	if (strcmp(om->name, nm->name))
		*flags |= WGT_CONF_PEER_NAME | WGT_CONF_PEER_CHANGED;
	same_ips = same_allowed_ips(op, np);
	if (same_ips < 0)
		return same_ips;
	if (!same_ips) {
		r = copy_allowed_ips(s, np);
		if (r)
			return r;
		any = true;
	}
	if (any) {
		set->n_peers++;
		*flags |= WGT_CONF_PEER_CHANGED;
	}
	return 0;
}

static void diff_device(const struct wgt_conf *old, const struct wgt_conf *new,
			struct wgt_conf_diff *d)
{
	const struct wgt_uapi_device *o = old ? &old->wg : NULL, *n = &new->wg;
	struct wgt_uapi_device *s = d->set;

	if ((n->flags & WGT_UAPI_DEV_HAS_PRIVATE_KEY) &&
	    (!o || !(o->flags & WGT_UAPI_DEV_HAS_PRIVATE_KEY) ||
	     CRYPTO_memcmp(o->private_key, n->private_key, WGT_UAPI_KEY_LEN))) {
		s->flags |= WGT_UAPI_DEV_HAS_PRIVATE_KEY;
		memcpy(s->private_key, n->private_key, WGT_UAPI_KEY_LEN);
		d->stats.private_key = true;
	}
	if ((n->flags & WGT_UAPI_DEV_HAS_LISTEN_PORT) &&
	    (!o || !(o->flags & WGT_UAPI_DEV_HAS_LISTEN_PORT) || o->listen_port != n->listen_port)) {
		s->flags |= WGT_UAPI_DEV_HAS_LISTEN_PORT;
		s->listen_port = n->listen_port;
		d->stats.listen_port = true;
	}
	if ((n->flags & WGT_UAPI_DEV_HAS_FWMARK) &&
	    (!o || !(o->flags & WGT_UAPI_DEV_HAS_FWMARK) || o->fwmark != n->fwmark)) {
		s->flags |= WGT_UAPI_DEV_HAS_FWMARK;
		s->fwmark = n->fwmark;
		d->stats.fwmark = true;
	}
}

/* Skips later sections of the key at sorted position *k (the first one is idx[*k]). */
static size_t skip_duplicates(const struct wgt_uapi_peer *peers, const size_t *idx, size_t n,
			      size_t k, unsigned *flags)
{
	while (k + 1 < n &&
	       !memcmp(peers[idx[k]].public_key, peers[idx[k + 1]].public_key, WGT_UAPI_KEY_LEN)) {
		if (flags)
			flags[idx[k + 1]] |= WGT_CONF_PEER_DUPLICATE;
		k++;
	}
	return k + 1;
}

int wgt_conf_diff(const struct wgt_conf *old, const struct wgt_conf *new, const bool *absent,
		  struct wgt_conf_diff *ret)
{
	const struct wgt_uapi_peer *op = old ? old->wg.peers : NULL, *np = new->wg.peers;
	size_t on = old ? old->wg.n_peers : 0, nn = new->wg.n_peers;
	size_t *oi = NULL, *ni = NULL, i = 0, j = 0;
	struct wgt_conf_diff d = { 0 };
	int r = -ENOMEM;

	d.set = calloc(1, sizeof(*d.set));
	d.peer_flags = calloc(nn ? nn : 1, sizeof(*d.peer_flags));
	oi = sorted_index(op, on);
	ni = sorted_index(np, nn);
	if (!d.set || !d.peer_flags || !oi || !ni)
		goto out;
	d.set->cap_peers = on + nn;
	d.set->peers = calloc(d.set->cap_peers ? d.set->cap_peers : 1, sizeof(*d.set->peers));
	if (!d.set->peers)
		goto out;
	diff_device(old, new, &d);

	/* Removals first: the peers they free count against no cap any more. */
	while (i < on || j < nn) {
		int c;

		if (i == on)
			c = 1;
		else if (j == nn)
			c = -1;
		else
			c = memcmp(op[oi[i]].public_key, np[ni[j]].public_key, WGT_UAPI_KEY_LEN);
		if (c < 0) {
			remove_section(d.set, &op[oi[i]]);
			d.stats.removed++;
			i = skip_duplicates(op, oi, on, i, NULL);
		} else if (c > 0) {
			j = skip_duplicates(np, ni, nn, j, d.peer_flags);
		} else {
			i = skip_duplicates(op, oi, on, i, NULL);
			j = skip_duplicates(np, ni, nn, j, d.peer_flags);
		}
	}
	/* Then additions and changes in the new file's order. */
	for (size_t pos = 0; pos < nn; pos++) {
		const struct wgt_uapi_peer *match = NULL;
		size_t match_i = 0, lo = 0, hi = on;

		if (d.peer_flags[pos] & WGT_CONF_PEER_DUPLICATE)
			continue;
		/* The old section of this key, by binary search over the sorted old index. */
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			int c = memcmp(op[oi[mid]].public_key, np[pos].public_key, WGT_UAPI_KEY_LEN);

			if (c < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo < on && !memcmp(op[oi[lo]].public_key, np[pos].public_key, WGT_UAPI_KEY_LEN)) {
			match = &op[oi[lo]];
			match_i = oi[lo];
		}
		if (match && absent && absent[pos]) {
			/* In both files, but no longer on the device: added again in full. */
			match = NULL;
			d.peer_flags[pos] |= WGT_CONF_PEER_READDED;
			d.stats.readded++;
		}
		if (!match) {
			d.peer_flags[pos] |= WGT_CONF_PEER_NEW;
			if (meta_of(new, pos)->name[0])
				d.peer_flags[pos] |= WGT_CONF_PEER_NAME;
			if (needs_resolution(&np[pos], meta_of(new, pos)))
				d.peer_flags[pos] |= WGT_CONF_PEER_RESOLVE;
			r = add_section(d.set, &np[pos]);
			if (r)
				goto out;
			d.stats.added++;
			continue;
		}
		r = change_section(d.set, match, meta_of(old, match_i), &np[pos], meta_of(new, pos),
				   &d.peer_flags[pos]);
		if (r)
			goto out;
		if (d.peer_flags[pos] & WGT_CONF_PEER_CHANGED)
			d.stats.changed++;
		else
			d.stats.unchanged++;
	}
	r = 0;
out:
	free(oi);
	free(ni);
	if (r)
		wgt_conf_diff_free(&d);
	else
		*ret = d;
	return r;
}

void wgt_conf_diff_free(struct wgt_conf_diff *diff)
{
	wgt_uapi_device_free(diff->set);
	free(diff->peer_flags);
	memset(diff, 0, sizeof(*diff));
}
