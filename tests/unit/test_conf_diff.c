/* SPDX-License-Identifier: MIT */
/* The config-file difference: which UAPI set each old/new pair gives, and a random differential against a naive device model. */
#include <arpa/inet.h>
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/conf.h"
#include "config/uapi.h"
#include "gateway/conf_apply.h"

#define MAX_PEERS 16
#define MAX_IPS 8

/* A file built by hand (the parser is another module's): fixed-size storage. */
struct file {
	struct wgt_conf conf;
	struct wgt_uapi_peer peers[MAX_PEERS];
	struct wgt_conf_peer_meta meta[MAX_PEERS];
	struct wgt_uapi_allowedip ips[MAX_PEERS][MAX_IPS];
};

static void file_init(struct file *f)
{
	memset(f, 0, sizeof(*f));
	f->conf.wg.peers = f->peers;
	f->conf.meta = f->meta;
}

static void set_private_key(struct file *f, uint8_t b)
{
	f->conf.wg.flags |= WGT_UAPI_DEV_HAS_PRIVATE_KEY;
	memset(f->conf.wg.private_key, b, 32);
}

/* Adds a peer whose key is 32 bytes of `k`; returns its index. */
static size_t add_peer(struct file *f, uint8_t k)
{
	size_t i = f->conf.wg.n_peers++;

	ck_assert_uint_lt(i, MAX_PEERS);
	memset(f->peers[i].public_key, k, 32);
	f->peers[i].allowed_ips = f->ips[i];
	return i;
}

static void add_ip(struct file *f, size_t i, const char *text)
{
	struct wgt_uapi_allowedip *a = &f->ips[i][f->peers[i].n_allowed_ips++];
	char buf[64], *slash;

	snprintf(buf, sizeof(buf), "%s", text);
	slash = strchr(buf, '/');
	*slash = 0;
	a->family = strchr(buf, ':') ? AF_INET6 : AF_INET;
	ck_assert_int_eq(inet_pton(a->family, buf, a->addr), 1);
	a->cidr = (uint8_t)atoi(slash + 1);
}

static void set_psk(struct file *f, size_t i, uint8_t b)
{
	f->peers[i].flags |= WGT_UAPI_PEER_HAS_PRESHARED_KEY;
	memset(f->peers[i].preshared_key, b, 32);
}

static void set_keepalive(struct file *f, size_t i, uint16_t s)
{
	f->peers[i].flags |= WGT_UAPI_PEER_HAS_PERSISTENT_KEEPALIVE;
	f->peers[i].persistent_keepalive = s;
}

/* An IP-literal endpoint: the parser fills both the sockaddr and the host as written. */
static void set_endpoint4(struct file *f, size_t i, const char *ip, uint16_t port)
{
	f->peers[i].flags |= WGT_UAPI_PEER_HAS_ENDPOINT;
	f->peers[i].endpoint.in4.sin_family = AF_INET;
	f->peers[i].endpoint.in4.sin_port = htons(port);
	inet_pton(AF_INET, ip, &f->peers[i].endpoint.in4.sin_addr);
	snprintf(f->meta[i].endpoint_host, sizeof(f->meta[i].endpoint_host), "%s", ip);
	f->meta[i].endpoint_port = port;
}

static void set_endpoint_host(struct file *f, size_t i, const char *host, uint16_t port)
{
	snprintf(f->meta[i].endpoint_host, sizeof(f->meta[i].endpoint_host), "%s", host);
	f->meta[i].endpoint_port = port;
}

static struct wgt_conf_diff diff(const struct file *old, const struct file *new)
{
	struct wgt_conf_diff d;

	ck_assert_int_eq(wgt_conf_diff(old ? &old->conf : NULL, &new->conf, NULL, &d), 0);
	return d;
}

static const struct wgt_uapi_peer *section(const struct wgt_conf_diff *d, uint8_t k)
{
	for (size_t i = 0; i < d->set->n_peers; i++)
		if (d->set->peers[i].public_key[0] == k)
			return &d->set->peers[i];
	return NULL;
}

START_TEST(test_fresh)
{
	struct file f;
	struct wgt_conf_diff d;
	const struct wgt_uapi_peer *s;
	size_t a, b;

	file_init(&f);
	set_private_key(&f, 7);
	f.conf.wg.flags |= WGT_UAPI_DEV_HAS_LISTEN_PORT;
	f.conf.wg.listen_port = 51820;
	a = add_peer(&f, 1);
	add_ip(&f, a, "10.0.0.2/32");
	set_psk(&f, a, 9);
	set_endpoint4(&f, a, "192.0.2.1", 51820);
	set_keepalive(&f, a, 25);
	snprintf(f.meta[a].name, sizeof(f.meta[a].name), "alice");
	b = add_peer(&f, 2);
	add_ip(&f, b, "fd00::2/128");
	set_endpoint_host(&f, b, "gw.example", 51821);

	d = diff(NULL, &f);
	ck_assert_uint_eq(d.set->flags, WGT_UAPI_DEV_HAS_PRIVATE_KEY | WGT_UAPI_DEV_HAS_LISTEN_PORT);
	ck_assert_uint_eq(d.set->listen_port, 51820);
	ck_assert_uint_eq(d.set->n_peers, 2);
	ck_assert_uint_eq(d.stats.added, 2);
	ck_assert(d.stats.private_key && d.stats.listen_port && !d.stats.fwmark);
	s = section(&d, 1);
	ck_assert_uint_eq(s->flags, WGT_UAPI_PEER_HAS_PRESHARED_KEY | WGT_UAPI_PEER_HAS_ENDPOINT |
				    WGT_UAPI_PEER_HAS_PERSISTENT_KEEPALIVE |
				    WGT_UAPI_PEER_REPLACE_ALLOWED_IPS);
	ck_assert_uint_eq(s->n_allowed_ips, 1);
	ck_assert_uint_eq(s->persistent_keepalive, 25);
	ck_assert_uint_eq(d.peer_flags[a], WGT_CONF_PEER_NEW | WGT_CONF_PEER_NAME);
	/* A host name is not in the set: it goes to the resolver. */
	s = section(&d, 2);
	ck_assert_uint_eq(s->flags, WGT_UAPI_PEER_REPLACE_ALLOWED_IPS);
	ck_assert_uint_eq(d.peer_flags[b], WGT_CONF_PEER_NEW | WGT_CONF_PEER_RESOLVE);
	wgt_conf_diff_free(&d);
}
END_TEST

/* The same file twice: an empty set, so no peer is touched. */
START_TEST(test_identical)
{
	struct file f;
	struct wgt_conf_diff d;
	size_t a;

	file_init(&f);
	set_private_key(&f, 7);
	f.conf.wg.flags |= WGT_UAPI_DEV_HAS_FWMARK;
	f.conf.wg.fwmark = 0x1234;
	a = add_peer(&f, 1);
	add_ip(&f, a, "10.0.0.2/32");
	add_ip(&f, a, "fd00::/64");
	set_psk(&f, a, 9);
	set_endpoint4(&f, a, "192.0.2.1", 51820);
	set_keepalive(&f, a, 25);
	a = add_peer(&f, 2);
	set_endpoint_host(&f, a, "gw.example", 51821);

	d = diff(&f, &f);
	ck_assert_uint_eq(d.set->flags, 0);
	ck_assert_uint_eq(d.set->n_peers, 0);
	ck_assert_uint_eq(d.stats.unchanged, 2);
	ck_assert_uint_eq(d.stats.added + d.stats.removed + d.stats.changed, 0);
	ck_assert_uint_eq(d.peer_flags[0] | d.peer_flags[1], 0);
	wgt_conf_diff_free(&d);
}
END_TEST

START_TEST(test_add_remove_change)
{
	struct file o, n;
	struct wgt_conf_diff d;
	const struct wgt_uapi_peer *s;
	size_t i;

	file_init(&o);
	file_init(&n);
	set_private_key(&o, 7);
	set_private_key(&n, 8);
	i = add_peer(&o, 1);               /* removed */
	add_ip(&o, i, "10.0.0.1/32");
	i = add_peer(&o, 2);               /* allowed IPs change */
	add_ip(&o, i, "10.0.0.2/32");
	i = add_peer(&o, 3);               /* unchanged */
	add_ip(&o, i, "10.0.0.3/32");

	i = add_peer(&n, 4);               /* added */
	add_ip(&n, i, "10.0.0.4/32");
	i = add_peer(&n, 3);
	add_ip(&n, i, "10.0.0.3/32");
	i = add_peer(&n, 2);
	add_ip(&n, i, "10.0.0.2/32");
	add_ip(&n, i, "10.9.0.0/16");

	d = diff(&o, &n);
	ck_assert(d.stats.private_key);
	ck_assert_uint_eq(d.set->flags, WGT_UAPI_DEV_HAS_PRIVATE_KEY);
	ck_assert_uint_eq(d.stats.added, 1);
	ck_assert_uint_eq(d.stats.removed, 1);
	ck_assert_uint_eq(d.stats.changed, 1);
	ck_assert_uint_eq(d.stats.unchanged, 1);
	ck_assert_uint_eq(d.set->n_peers, 3);
	/* Removals first, then the new file's order. */
	ck_assert_uint_eq(d.set->peers[0].public_key[0], 1);
	ck_assert_uint_eq(d.set->peers[0].flags, WGT_UAPI_PEER_REMOVE);
	ck_assert_uint_eq(d.set->peers[1].public_key[0], 4);
	ck_assert_uint_eq(d.set->peers[2].public_key[0], 2);
	s = section(&d, 2);
	ck_assert_uint_eq(s->flags, WGT_UAPI_PEER_UPDATE_ONLY | WGT_UAPI_PEER_REPLACE_ALLOWED_IPS);
	ck_assert_uint_eq(s->n_allowed_ips, 2);
	ck_assert_ptr_null(section(&d, 3));
	ck_assert_uint_eq(d.peer_flags[0], WGT_CONF_PEER_NEW);
	ck_assert_uint_eq(d.peer_flags[1], 0);
	ck_assert_uint_eq(d.peer_flags[2], WGT_CONF_PEER_CHANGED);
	wgt_conf_diff_free(&d);
}
END_TEST

/* Allowed IPs compare as the table's prefixes: order, host bits and repeats do not matter. */
START_TEST(test_allowed_ips_as_sets)
{
	struct file o, n;
	struct wgt_conf_diff d;
	size_t i;

	file_init(&o);
	file_init(&n);
	i = add_peer(&o, 1);
	add_ip(&o, i, "10.0.0.0/24");
	add_ip(&o, i, "fd00::/64");
	i = add_peer(&n, 1);
	add_ip(&n, i, "fd00::1/64");
	add_ip(&n, i, "10.0.0.77/24");
	add_ip(&n, i, "10.0.0.0/24");
	d = diff(&o, &n);
	ck_assert_uint_eq(d.set->n_peers, 0);
	ck_assert_uint_eq(d.stats.unchanged, 1);
	wgt_conf_diff_free(&d);

	/* A prefix length is a change. */
	n.ips[0][2].cidr = 25;
	d = diff(&o, &n);
	ck_assert_uint_eq(d.set->n_peers, 1);
	ck_assert(d.set->peers[0].flags & WGT_UAPI_PEER_REPLACE_ALLOWED_IPS);
	wgt_conf_diff_free(&d);
}
END_TEST

START_TEST(test_psk_keepalive)
{
	struct file o, n;
	struct wgt_conf_diff d;
	static const uint8_t zero[32];
	size_t i;

	file_init(&o);
	file_init(&n);
	i = add_peer(&o, 1);
	set_psk(&o, i, 9);
	set_keepalive(&o, i, 25);
	i = add_peer(&n, 1);
	set_keepalive(&n, i, 25);
	/* PSK taken out: set to zero (none); keepalive 25 and 25: not sent. */
	d = diff(&o, &n);
	ck_assert_uint_eq(d.set->n_peers, 1);
	ck_assert_uint_eq(d.set->peers[0].flags,
			  WGT_UAPI_PEER_UPDATE_ONLY | WGT_UAPI_PEER_HAS_PRESHARED_KEY);
	ck_assert_mem_eq(d.set->peers[0].preshared_key, zero, 32);
	wgt_conf_diff_free(&d);

	/* Keepalive taken out: 0 (off); PSK explicitly all zero equals none. */
	set_psk(&n, 0, 0);
	set_psk(&o, 0, 0);
	n.peers[0].flags &= ~WGT_UAPI_PEER_HAS_PERSISTENT_KEEPALIVE;
	d = diff(&o, &n);
	ck_assert_uint_eq(d.set->peers[0].flags,
			  WGT_UAPI_PEER_UPDATE_ONLY | WGT_UAPI_PEER_HAS_PERSISTENT_KEEPALIVE);
	ck_assert_uint_eq(d.set->peers[0].persistent_keepalive, 0);
	wgt_conf_diff_free(&d);
}
END_TEST

/* The endpoint is set only when the FILE's Endpoint line changed: a roamed peer keeps its roamed address. */
START_TEST(test_endpoint)
{
	struct file o, n;
	struct wgt_conf_diff d;

	file_init(&o);
	file_init(&n);
	add_peer(&o, 1);
	add_peer(&n, 1);
	set_endpoint4(&o, 0, "192.0.2.1", 51820);
	set_endpoint4(&n, 0, "192.0.2.1", 51820);
	d = diff(&o, &n);
	ck_assert_uint_eq(d.set->n_peers, 0);
	wgt_conf_diff_free(&d);

	set_endpoint4(&n, 0, "192.0.2.1", 51821);
	d = diff(&o, &n);
	ck_assert_uint_eq(d.set->n_peers, 1);
	ck_assert_uint_eq(d.set->peers[0].flags,
			  WGT_UAPI_PEER_UPDATE_ONLY | WGT_UAPI_PEER_HAS_ENDPOINT);
	ck_assert_uint_eq(ntohs(d.set->peers[0].endpoint.in4.sin_port), 51821);
	ck_assert_uint_eq(d.peer_flags[0], WGT_CONF_PEER_CHANGED | WGT_CONF_PEER_ENDPOINT);
	wgt_conf_diff_free(&d);

	/* Literal to host name: resolved, not in the set. */
	file_init(&n);
	add_peer(&n, 1);
	set_endpoint_host(&n, 0, "gw.example", 51820);
	d = diff(&o, &n);
	ck_assert_uint_eq(d.set->n_peers, 0);
	ck_assert_uint_eq(d.stats.changed, 1);
	ck_assert_uint_eq(d.peer_flags[0],
			  WGT_CONF_PEER_CHANGED | WGT_CONF_PEER_ENDPOINT | WGT_CONF_PEER_RESOLVE);
	wgt_conf_diff_free(&d);

	/* Same host name: no new resolution (a resolved or roamed endpoint stays). */
	d = diff(&n, &n);
	ck_assert_uint_eq(d.peer_flags[0], 0);
	wgt_conf_diff_free(&d);

	/* Endpoint line taken out: nothing to set (UAPI cannot unset), a pending resolution goes. */
	file_init(&o);
	add_peer(&o, 1);
	d = diff(&n, &o);
	ck_assert_uint_eq(d.set->n_peers, 0);
	ck_assert_uint_eq(d.peer_flags[0], WGT_CONF_PEER_CHANGED | WGT_CONF_PEER_ENDPOINT);
	wgt_conf_diff_free(&d);
}
END_TEST

START_TEST(test_name_and_device_keys)
{
	struct file o, n;
	struct wgt_conf_diff d;

	file_init(&o);
	file_init(&n);
	set_private_key(&o, 7);
	set_private_key(&n, 7);
	o.conf.wg.flags |= WGT_UAPI_DEV_HAS_LISTEN_PORT | WGT_UAPI_DEV_HAS_FWMARK;
	o.conf.wg.listen_port = 51820;
	o.conf.wg.fwmark = 1;
	n.conf.wg.flags |= WGT_UAPI_DEV_HAS_FWMARK;
	n.conf.wg.fwmark = 2;
	add_peer(&o, 1);
	add_peer(&n, 1);
	snprintf(n.meta[0].name, sizeof(n.meta[0].name), "bob");
	d = diff(&o, &n);
	/* Same key: not set; port no longer given: left as it is (syncconf); fwmark changed. */
	ck_assert_uint_eq(d.set->flags, WGT_UAPI_DEV_HAS_FWMARK);
	ck_assert_uint_eq(d.set->fwmark, 2);
	ck_assert(!d.stats.private_key && !d.stats.listen_port && d.stats.fwmark);
	/* A new name only: no UAPI section, the peer is renamed. */
	ck_assert_uint_eq(d.set->n_peers, 0);
	ck_assert_uint_eq(d.peer_flags[0], WGT_CONF_PEER_CHANGED | WGT_CONF_PEER_NAME);
	ck_assert_uint_eq(d.stats.changed, 1);
	wgt_conf_diff_free(&d);
}
END_TEST

/*
 * Peers of both files that the device no longer has (wg set ... remove): a
 * full section again, with a host-name Endpoint queued and the name set; the
 * peers it has keep no section, and a duplicate's flag is not looked at.
 */
START_TEST(test_absent_readded)
{
	bool absent[4] = { true, false, true, true };
	const struct wgt_uapi_peer *s;
	struct wgt_conf_diff d;
	struct file f;
	size_t a;

	file_init(&f);
	a = add_peer(&f, 1);
	add_ip(&f, a, "10.0.0.2/32");
	add_ip(&f, a, "fd00::/64");
	set_psk(&f, a, 9);
	set_endpoint4(&f, a, "192.0.2.1", 51820);
	set_keepalive(&f, a, 25);
	snprintf(f.meta[a].name, sizeof(f.meta[a].name), "alice");
	a = add_peer(&f, 2);
	add_ip(&f, a, "10.0.0.3/32");
	a = add_peer(&f, 3);
	set_endpoint_host(&f, a, "gw.example", 51821);
	add_peer(&f, 2);

	ck_assert_int_eq(wgt_conf_diff(&f.conf, &f.conf, absent, &d), 0);
	ck_assert_uint_eq(d.set->n_peers, 2);
	s = section(&d, 1);
	ck_assert_ptr_nonnull(s);
	ck_assert_uint_eq(s->flags, WGT_UAPI_PEER_HAS_PRESHARED_KEY | WGT_UAPI_PEER_HAS_ENDPOINT |
			  WGT_UAPI_PEER_HAS_PERSISTENT_KEEPALIVE | WGT_UAPI_PEER_REPLACE_ALLOWED_IPS);
	ck_assert_uint_eq(s->preshared_key[0], 9);
	ck_assert_uint_eq(ntohs(s->endpoint.in4.sin_port), 51820);
	ck_assert_uint_eq(s->persistent_keepalive, 25);
	ck_assert_uint_eq(s->n_allowed_ips, 2);
	s = section(&d, 3);
	ck_assert_ptr_nonnull(s);
	ck_assert_uint_eq(s->flags, WGT_UAPI_PEER_REPLACE_ALLOWED_IPS);
	ck_assert_ptr_null(section(&d, 2));
	ck_assert_uint_eq(d.peer_flags[0],
			  WGT_CONF_PEER_NEW | WGT_CONF_PEER_READDED | WGT_CONF_PEER_NAME);
	ck_assert_uint_eq(d.peer_flags[1], 0);
	ck_assert_uint_eq(d.peer_flags[2],
			  WGT_CONF_PEER_NEW | WGT_CONF_PEER_READDED | WGT_CONF_PEER_RESOLVE);
	ck_assert_uint_eq(d.peer_flags[3], WGT_CONF_PEER_DUPLICATE);
	ck_assert_uint_eq(d.stats.added, 2);
	ck_assert_uint_eq(d.stats.readded, 2);
	ck_assert_uint_eq(d.stats.unchanged, 1);
	ck_assert_uint_eq(d.stats.changed + d.stats.removed, 0);
	wgt_conf_diff_free(&d);

	/* Nothing absent: the same as no list. */
	memset(absent, 0, sizeof(absent));
	ck_assert_int_eq(wgt_conf_diff(&f.conf, &f.conf, absent, &d), 0);
	ck_assert_uint_eq(d.set->n_peers, 0);
	ck_assert_uint_eq(d.stats.readded, 0);
	wgt_conf_diff_free(&d);
}
END_TEST

START_TEST(test_duplicates)
{
	struct file o, n;
	struct wgt_conf_diff d;
	size_t i;

	file_init(&o);
	file_init(&n);
	i = add_peer(&n, 5);
	add_ip(&n, i, "10.0.0.5/32");
	i = add_peer(&n, 5);
	add_ip(&n, i, "10.0.0.6/32");
	d = diff(&o, &n);
	ck_assert_uint_eq(d.set->n_peers, 1);
	ck_assert_uint_eq(d.set->peers[0].allowed_ips[0].addr[3], 5);
	ck_assert_uint_eq(d.peer_flags[0], WGT_CONF_PEER_NEW);
	ck_assert_uint_eq(d.peer_flags[1], WGT_CONF_PEER_DUPLICATE);
	wgt_conf_diff_free(&d);
	/* As the old file, its second section does not exist either. */
	d = diff(&n, &n);
	ck_assert_uint_eq(d.set->n_peers, 0);
	wgt_conf_diff_free(&d);
}
END_TEST

/*
 * A naive device: per key, PSK, keepalive, endpoint and allowed IPs (masked
 * prefixes, a bitmap over the small universe below). Applying diff(NULL, a),
 * removing some peers behind the file's back, then diff(a, b) (told which of
 * b's peers are absent) must give what diff(NULL, b) gives on a fresh device,
 * but for the endpoint, which the file cannot take away.
 */
#define N_KEYS 6
#define N_PREFIXES 6
static const char *const universe[N_PREFIXES] = {
	"10.0.0.0/24", "10.0.0.1/32", "10.1.0.0/16", "fd00::/64", "fd00::1/128", "0.0.0.0/0",
};

struct model_peer {
	bool present;
	uint8_t psk;
	uint16_t keepalive;
	uint16_t port;       /* endpoint, 0: none */
	unsigned ips;        /* bit i: universe[i] */
};

static unsigned prefix_bit(const struct wgt_uapi_allowedip *a)
{
	struct file tmp;

	file_init(&tmp);
	add_peer(&tmp, 0);
	for (unsigned u = 0; u < N_PREFIXES; u++) {
		add_ip(&tmp, 0, universe[u]);
		if (tmp.ips[0][u].family == a->family && tmp.ips[0][u].cidr == a->cidr &&
		    !memcmp(tmp.ips[0][u].addr, a->addr, 16))
			return 1U << u;
	}
	ck_abort_msg("prefix outside the universe");
	return 0;
}

static void model_apply(struct model_peer m[N_KEYS], const struct wgt_uapi_device *set)
{
	for (size_t i = 0; i < set->n_peers; i++) {
		const struct wgt_uapi_peer *s = &set->peers[i];
		struct model_peer *p = &m[s->public_key[0]];

		if (s->flags & WGT_UAPI_PEER_REMOVE) {
			memset(p, 0, sizeof(*p));
			continue;
		}
		if (!p->present && (s->flags & WGT_UAPI_PEER_UPDATE_ONLY))
			continue;
		p->present = true;
		if (s->flags & WGT_UAPI_PEER_HAS_PRESHARED_KEY)
			p->psk = s->preshared_key[0];
		if (s->flags & WGT_UAPI_PEER_HAS_PERSISTENT_KEEPALIVE)
			p->keepalive = s->persistent_keepalive;
		if (s->flags & WGT_UAPI_PEER_HAS_ENDPOINT)
			p->port = ntohs(s->endpoint.in4.sin_port);
		if (s->flags & WGT_UAPI_PEER_REPLACE_ALLOWED_IPS)
			p->ips = 0;
		for (size_t k = 0; k < s->n_allowed_ips; k++) {
			unsigned bit = prefix_bit(&s->allowed_ips[k]);

			/* A prefix belongs to one peer: inserting moves it. */
			for (unsigned q = 0; q < N_KEYS; q++)
				m[q].ips &= ~bit;
			p->ips |= bit;
		}
	}
}

/*
 * Each prefix goes to at most one peer: a file that gives one prefix to two
 * peers means "the last one", and a difference cannot keep that order for
 * peers it leaves untouched (syncconf cannot either).
 */
static void random_file(struct file *f, unsigned *seed)
{
	int at[N_KEYS];

	file_init(f);
	for (uint8_t k = 0; k < N_KEYS; k++) {
		size_t i;

		at[k] = -1;
		if (rand_r(seed) % 3 == 0)
			continue;
		i = add_peer(f, k);
		at[k] = (int)i;
		if (rand_r(seed) % 2)
			set_psk(f, i, (uint8_t)(rand_r(seed) % 3));
		if (rand_r(seed) % 2)
			set_keepalive(f, i, (uint16_t)(rand_r(seed) % 3));
		if (rand_r(seed) % 2)
			set_endpoint4(f, i, "192.0.2.1", (uint16_t)(1 + rand_r(seed) % 3));
	}
	for (unsigned u = 0; u < N_PREFIXES; u++) {
		int owner = at[rand_r(seed) % N_KEYS];

		if (owner >= 0)
			add_ip(f, (size_t)owner, universe[u]);
	}
}

START_TEST(test_random_differential)
{
	unsigned seed = 12345;

	for (int round = 0; round < 3000; round++) {
		struct model_peer got[N_KEYS] = { 0 }, want[N_KEYS] = { 0 };
		struct file a, b;
		struct wgt_conf_diff d;

		bool absent[MAX_PEERS] = { false };

		random_file(&a, &seed);
		random_file(&b, &seed);
		d = diff(NULL, &a);
		model_apply(got, d.set);
		wgt_conf_diff_free(&d);
		/* Some peers removed behind the file's back (wg set ... remove). */
		for (unsigned k = 0; k < N_KEYS; k++)
			if (rand_r(&seed) % 4 == 0)
				memset(&got[k], 0, sizeof(got[k]));
		for (size_t i = 0; i < b.conf.wg.n_peers; i++)
			absent[i] = !got[b.peers[i].public_key[0]].present;
		ck_assert_int_eq(wgt_conf_diff(&a.conf, &b.conf, absent, &d), 0);
		model_apply(got, d.set);
		wgt_conf_diff_free(&d);
		d = diff(NULL, &b);
		model_apply(want, d.set);
		wgt_conf_diff_free(&d);
		for (unsigned k = 0; k < N_KEYS; k++) {
			/* An endpoint the new file does not give stays as it was. */
			if (want[k].present && !want[k].port)
				want[k].port = got[k].port;
			ck_assert_msg(!memcmp(&got[k], &want[k], sizeof(got[k])),
				      "round %d key %u: present %d/%d psk %u/%u ka %u/%u port %u/%u "
				      "ips %x/%x", round, k, got[k].present, want[k].present,
				      got[k].psk, want[k].psk, got[k].keepalive, want[k].keepalive,
				      got[k].port, want[k].port, got[k].ips, want[k].ips);
		}
	}
}
END_TEST

static Suite *conf_diff_suite(void)
{
	Suite *s = suite_create("conf_diff");
	TCase *tc = tcase_create("diff");

	tcase_add_test(tc, test_fresh);
	tcase_add_test(tc, test_identical);
	tcase_add_test(tc, test_add_remove_change);
	tcase_add_test(tc, test_allowed_ips_as_sets);
	tcase_add_test(tc, test_psk_keepalive);
	tcase_add_test(tc, test_endpoint);
	tcase_add_test(tc, test_name_and_device_keys);
	tcase_add_test(tc, test_duplicates);
	tcase_add_test(tc, test_absent_readded);
	suite_add_tcase(s, tc);
	/* Named so that run.sh's ThreadSanitizer pass leaves it out (single-threaded). */
	tc = tcase_create("random");
	tcase_add_test(tc, test_random_differential);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(conf_diff_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
