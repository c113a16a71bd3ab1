/* SPDX-License-Identifier: MIT */
/* A parsed configuration file applied to the running device as the difference from the last one. */
#include "gateway/conf_apply.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "common/log.h"
#include "config/conf.h"
#include "config/uapi.h"
#include "crypto/blake2s.h"
#include "gateway/device.h"
#include "gateway/netconf.h"
#include "gateway/resolve.h"

static void format_addr(const union wgt_sockaddr *a, char *out, size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	if (a->sa.sa_family == AF_INET) {
		inet_ntop(AF_INET, &a->in4.sin_addr, ip, sizeof(ip));
		snprintf(out, len, "%s:%u", ip, ntohs(a->in4.sin_port));
	} else {
		inet_ntop(AF_INET6, &a->in6.sin6_addr, ip, sizeof(ip));
		snprintf(out, len, "[%s]:%u", ip, ntohs(a->in6.sin6_port));
	}
}

/* Control thread: a host name resolved; set as a UAPI set of one endpoint would. */
static void resolved(void *arg, const uint8_t key[32], const union wgt_sockaddr *addr)
{
	struct wgt_device *dev = arg;
	struct wgt_uapi_peer up = {
		.flags = WGT_UAPI_PEER_UPDATE_ONLY | WGT_UAPI_PEER_HAS_ENDPOINT,
		.endpoint = *addr,
	};
	struct wgt_uapi_device set = { .peers = &up, .n_peers = 1, .cap_peers = 1 };
	struct wgt_peer *peer = wgt_peer_lookup(dev, key);
	char label[WGT_PEER_LABEL_LEN], ep[64];
	int r;

	if (!peer)
		return;  /* removed behind the file's back (wg set): nothing to do */
	memcpy(up.public_key, key, WGT_UAPI_KEY_LEN);
	r = wgt_device_uapi_set(dev, &set);
	wgt_peer_name(peer, label);
	format_addr(addr, ep, sizeof(ep));
	if (r)
		wgt_err("%s: peer %s: cannot set the resolved endpoint %s: %s", dev->ifname, label,
			ep, strerror(-r));
	else
		wgt_info("%s: peer %s: endpoint resolved to %s", dev->ifname, label, ep);
}

/* Control thread only. */
struct wgt_conf_state *wgt_conf_state_get(struct wgt_device *dev)
{
	struct wgt_conf_state *st = dev->conf_state;

	if (st)
		return st;
	st = calloc(1, sizeof(*st));
	if (!st)
		return NULL;
	st->dev = dev;
	st->inotify_fd = -1;
	st->wd_dir = st->wd_target = -1;
	dev->conf_state = st;
	return st;
}

/* Control thread only. Resolutions the new file cancels (peer gone, Endpoint changed) or asks for. */
static void update_resolutions(struct wgt_conf_state *st, const struct wgt_conf *conf,
			       const struct wgt_conf_diff *d, size_t *ret_queued)
{
	struct wgt_device *dev = st->dev;

	*ret_queued = 0;
	for (size_t i = 0; i < d->set->n_peers; i++)
		if (d->set->peers[i].flags & WGT_UAPI_PEER_REMOVE)
			wgt_resolver_cancel(st->resolver, d->set->peers[i].public_key);
	for (size_t i = 0; i < conf->wg.n_peers; i++) {
		const struct wgt_conf_peer_meta *m = &conf->meta[i];
		const uint8_t *key = conf->wg.peers[i].public_key;
		char label[WGT_PEER_LABEL_LEN] = "?";
		struct wgt_peer *peer;
		int r;

		if (!(d->peer_flags[i] & (WGT_CONF_PEER_NEW | WGT_CONF_PEER_ENDPOINT)))
			continue;
		wgt_resolver_cancel(st->resolver, key);
		if (!(d->peer_flags[i] & WGT_CONF_PEER_RESOLVE))
			continue;
		/*
		 * Started with the first host name only: a file of IP literals never
		 * runs the thread, and one started after privileges were dropped
		 * has only the capabilities left (they are per thread).
		 */
		if (!st->resolver) {
			r = wgt_resolver_new(dev->loop, dev->ifname, resolved, dev, &st->resolver);
			if (r) {
				wgt_err("%s: cannot start the endpoint resolver: %s", dev->ifname,
					strerror(-r));
				return;
			}
		}
		peer = wgt_peer_lookup(dev, key);
		if (peer)
			wgt_peer_name(peer, label);
		r = wgt_resolver_add(st->resolver, key, m->endpoint_host, m->endpoint_port, label);
		if (r)
			wgt_err("%s: peer %s: cannot queue the resolution of %s: %s", dev->ifname,
				label, m->endpoint_host, strerror(-r));
		else
			(*ret_queued)++;
	}
}

/* Control thread only. */
static void set_names(struct wgt_device *dev, const struct wgt_conf *conf,
		      const struct wgt_conf_diff *d)
{
	for (size_t i = 0; i < conf->wg.n_peers; i++) {
		struct wgt_peer *peer;

		if (!(d->peer_flags[i] & WGT_CONF_PEER_NAME))
			continue;
		peer = wgt_peer_lookup(dev, conf->wg.peers[i].public_key);
		if (peer && wgt_peer_set_name(peer, conf->meta[i].name))
			wgt_warn("%s: out of memory for the name of a peer", dev->ifname);
	}
}

/*
 * Control thread only. Which peers of `conf` the device does not have (one
 * entry per peer; NULL and 0 when there is no last file, every peer being new
 * then), so that the difference adds them again in full.
 */
static int find_absent(struct wgt_device *dev, const struct wgt_conf *last,
		       const struct wgt_conf *conf, bool **ret)
{
	bool *absent;

	*ret = NULL;
	if (!last || !conf->wg.n_peers)
		return 0;
	absent = calloc(conf->wg.n_peers, sizeof(*absent));
	if (!absent)
		return -ENOMEM;
	for (size_t i = 0; i < conf->wg.n_peers; i++)
		absent[i] = !wgt_peer_lookup(dev, conf->wg.peers[i].public_key);
	*ret = absent;
	return 0;
}

/* Control thread only: one line per peer of the file that was added back. */
static void log_readded(struct wgt_device *dev, const struct wgt_conf *conf,
			const struct wgt_conf_diff *d)
{
	for (size_t i = 0; i < conf->wg.n_peers; i++) {
		char label[WGT_PEER_LABEL_LEN] = "?";
		struct wgt_peer *peer;

		if (!(d->peer_flags[i] & WGT_CONF_PEER_READDED))
			continue;
		peer = wgt_peer_lookup(dev, conf->wg.peers[i].public_key);
		if (peer)
			wgt_peer_name(peer, label);
		wgt_info("%s: peer %s: added again: it is in the config file but was not on the "
			 "device (removed behind the file's back)", dev->ifname, label);
	}
}

/* Control thread only. */
int wgt_conf_apply(struct wgt_device *dev, struct wgt_conf *conf, const char *source)
{
	struct wgt_conf_state *st = wgt_conf_state_get(dev);
	struct wgt_conf_diff d = { 0 };
	bool *absent = NULL;
	size_t queued;
	int r;

	if (!st) {
		r = -ENOMEM;
		goto err;
	}
	r = find_absent(dev, st->last, conf, &absent);
	if (r)
		goto err;
	r = wgt_conf_diff(st->last, conf, absent, &d);
	if (r)
		goto err;
	r = wgt_device_uapi_set(dev, d.set);
	if (r) {
		wgt_err("%s: config %s: cannot apply: %s", dev->ifname, source, strerror(-r));
		goto err;
	}
	set_names(dev, conf, &d);
	if (d.stats.readded)
		log_readded(dev, conf, &d);
	update_resolutions(st, conf, &d, &queued);
	/*
	 * The interface side reads the interface back each time, so a step that
	 * failed is retried by the next apply even when the file did not change:
	 * the file counts as applied (the peers' difference is not repeated), and
	 * the error is returned.
	 */
	r = wgt_netconf_apply(dev, st->last, conf);
	wgt_info("%s: config applied: peers +%zu -%zu ~%zu, %zu unchanged; private key %s, "
		 "listen port %s, fwmark %s; %zu endpoint names to resolve (%s)",
		 dev->ifname, d.stats.added, d.stats.removed, d.stats.changed, d.stats.unchanged,
		 d.stats.private_key ? "set" : "unchanged", d.stats.listen_port ? "set" : "unchanged",
		 d.stats.fwmark ? "set" : "unchanged", queued, source);
	wgt_conf_free(st->last);
	st->last = conf;
	wgt_conf_diff_free(&d);
	free(absent);
	return r;
err:
	wgt_conf_diff_free(&d);
	free(absent);
	wgt_conf_free(conf);
	return r;
}

/* Reads a whole file of at most WGT_CONF_MAX_FILE_BYTES; the caller wipes and frees *ret. */
static int read_text(const char *path, char **ret, size_t *ret_len)
{
	size_t cap = 4096, len = 0;
	char *buf = NULL;
	int fd, r = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd == -1)
		return -errno;
	buf = malloc(cap);
	if (!buf) {
		r = -ENOMEM;
		goto out;
	}
	for (;;) {
		ssize_t n;

		if (len == cap) {
			char *nbuf;

			if (cap >= WGT_CONF_MAX_FILE_BYTES) {
				r = -EFBIG;
				goto out;
			}
			nbuf = malloc(cap * 2);
			if (!nbuf) {
				r = -ENOMEM;
				goto out;
			}
			/* Grown by copy, so no key is left behind in freed memory. */
			memcpy(nbuf, buf, len);
			OPENSSL_cleanse(buf, cap);
			free(buf);
			buf = nbuf;
			cap *= 2;
		}
		n = read(fd, buf + len, cap - len);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			r = -errno;
			goto out;
		}
		if (!n)
			break;
		len += (size_t)n;
	}
out:
	close(fd);
	if (r) {
		if (buf)
			OPENSSL_cleanse(buf, cap);
		free(buf);
		return r;
	}
	*ret = buf;
	*ret_len = len;
	return 0;
}

/* Any thread. */
int wgt_conf_digest(const char *path, wgt_conf_report_fn report, void *arg,
		    uint8_t ret_digest[WGT_CONF_DIGEST_LEN])
{
	char msg[512], *text = NULL;
	size_t len = 0;
	int r;

	r = read_text(path, &text, &len);
	if (!r) {
		r = wgt_blake2s_hash(ret_digest, text, len);
		OPENSSL_cleanse(text, len);
		free(text);
	}
	if (r && report) {
		snprintf(msg, sizeof(msg), "%s: cannot read: %s", path, strerror(-r));
		report(arg, WGT_CONF_ERROR, msg);
	}
	return r;
}

int wgt_conf_load(const char *path, wgt_conf_report_fn report, void *arg,
		  struct wgt_conf **ret_conf, uint8_t ret_digest[WGT_CONF_DIGEST_LEN])
{
	int r;

	r = wgt_conf_digest(path, report, arg, ret_digest);
	if (r)
		return r;
	return wgt_conf_parse_file(path, report, arg, ret_conf);
}
