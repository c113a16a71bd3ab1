/* SPDX-License-Identifier: MIT */
/*
 * The configuration file applied to the running device, at start and on
 * every reload, as the difference from the last file applied.
 *
 *   file --digest--> same as the last text read? --> skip (file events only)
 *                   |
 *                   +--wgt_conf_parse_file--> struct wgt_conf --wgt_conf_diff(last, new)-->
 *                        UAPI set (only what changed) --wgt_device_uapi_set-->
 *                        peer names, host-name endpoints queued to the resolver,
 *                        interface addresses/MTU/routes (netconf) --> last = new
 *
 * The difference is taken against the last FILE applied, not against the
 * live device: what `wg set` changed behind the file's back stays unless the
 * file's own line for it changed (as `wg syncconf` with a stripped file
 * behaves, except that syncconf diffs against the device). That is what
 * keeps a roamed endpoint: the file's Endpoint is set again only when the
 * file's Endpoint changed. One exception: a peer of the file that the
 * device does not have (`wg set ... remove`) is added again in full.
 */
#ifndef WGT_GATEWAY_CONF_APPLY_H
#define WGT_GATEWAY_CONF_APPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ev.h>

#include "config/conf.h"

struct wgt_conf;
struct wgt_device;
struct wgt_resolver;
struct wgt_uapi_device;

/* What a new file changes against the last one. */
struct wgt_conf_diff_stats {
	size_t added, removed, changed, unchanged;   /* peers */
	size_t readded;                              /* of `added`: in both files, absent from the device */
	bool private_key, listen_port, fwmark;       /* the interface's keys that changed */
};

/* Per peer of the NEW file (same index as new->wg.peers[]). */
enum {
	WGT_CONF_PEER_NEW = 1U << 0,        /* not in the old file */
	WGT_CONF_PEER_CHANGED = 1U << 1,    /* in both, some line changed (name included) */
	WGT_CONF_PEER_NAME = 1U << 2,       /* its name is to be set (new peer or new name) */
	WGT_CONF_PEER_RESOLVE = 1U << 3,    /* a host-name Endpoint that is new or changed */
	WGT_CONF_PEER_DUPLICATE = 1U << 4,  /* an earlier section of the file has this key */
	WGT_CONF_PEER_ENDPOINT = 1U << 5,   /* in both, and its Endpoint line changed */
	WGT_CONF_PEER_READDED = 1U << 6,    /* in both, absent from the device: added in full (and _NEW) */
};

struct wgt_conf_diff {
	struct wgt_uapi_device *set;   /* the UAPI set that turns old into new */
	unsigned *peer_flags;          /* new->wg.n_peers entries of WGT_CONF_PEER_* */
	struct wgt_conf_diff_stats stats;
};

/*
 * Any thread; pure (no device). The UAPI set that makes a device configured
 * from `old` (NULL: a fresh device) match `new`:
 *  - private key, listen port, fwmark only where the new file gives one that
 *    differs (a key the file no longer gives is left as it is, as syncconf);
 *  - peers only in old: WGT_UAPI_PEER_REMOVE; peers only in new: a full
 *    section (allowed IPs replaced, PSK, IP-literal endpoint, keepalive);
 *  - peers in both: a WGT_UAPI_PEER_UPDATE_ONLY section carrying only what
 *    changed: allowed IPs (compared as sets of masked prefixes; replaced as a
 *    whole), PSK, keepalive, and the endpoint only when the file's Endpoint
 *    line changed; no section at all when nothing changed, so the peer's
 *    sessions, handshake time and counters are not touched.
 *  - peers in both that the device no longer has (`absent`, NULL: none; one
 *    entry per peer of `new`, as the caller found them, e.g. removed by
 *    `wg set IF peer K remove`): a full section as for a new peer, flagged
 *    WGT_CONF_PEER_NEW | WGT_CONF_PEER_READDED, so a reload converges the
 *    device to the file's peers as `wg syncconf` does.
 * A key given twice in the new file: the first section wins, later ones are
 * flagged WGT_CONF_PEER_DUPLICATE and ignored.
 * Returns 0 and fills *ret (free with wgt_conf_diff_free), or -ENOMEM.
 */
int wgt_conf_diff(const struct wgt_conf *old, const struct wgt_conf *new, const bool *absent,
		  struct wgt_conf_diff *ret);

/* Wipes and frees what wgt_conf_diff() allocated. Accepts a zeroed diff. */
void wgt_conf_diff_free(struct wgt_conf_diff *diff);

/*
 * Control thread only. Applies `conf` as the difference from the last file
 * applied and takes ownership of it. When the UAPI set fails, `conf` is
 * freed and the last file stays the reference (a set that failed half-way
 * is applied again in full by the next reload: every step is idempotent).
 * Once the set succeeded, `conf` becomes the last file even if the
 * interface side (netconf) failed, which reads the interface back and so
 * retries by itself on the next apply. `source` names the file in the log
 * line. Returns 0 or -errno.
 */
int wgt_conf_apply(struct wgt_device *dev, struct wgt_conf *conf, const char *source);

#define WGT_CONF_DIGEST_LEN 32

/*
 * Any thread. The digest of the file's text (wgt_conf_digest), then the file
 * parsed by wgt_conf_parse_file(); every warning and error goes to `report`
 * as "FILE:LINE: problem" (a file that cannot be read: one line "FILE:
 * cause"). Returns 0, the configuration and the digest, or -errno (-EINVAL:
 * the file has errors). The file is read twice: a change in between is seen
 * by the watcher, which reads it again.
 */
int wgt_conf_load(const char *path, wgt_conf_report_fn report, void *arg,
		  struct wgt_conf **ret_conf, uint8_t ret_digest[WGT_CONF_DIGEST_LEN]);

/*
 * Any thread. The BLAKE2s digest of the file's text, so that a reload can
 * skip a text it has seen; -errno when it cannot be read (reported).
 */
int wgt_conf_digest(const char *path, wgt_conf_report_fn report, void *arg,
		    uint8_t ret_digest[WGT_CONF_DIGEST_LEN]);

/*
 * Control thread only. Applies `conf` (loaded from `path` by wgt_conf_load,
 * its digest `digest`; ownership passes in every case), then starts the
 * reload watchers: SIGHUP and inotify on the file's directory (and on its
 * symlink target's). Returns 0 or -errno.
 */
int wgt_conf_watch_start(struct wgt_device *dev, const char *path, struct wgt_conf *conf,
			 const uint8_t digest[WGT_CONF_DIGEST_LEN]);

/*
 * The device's configuration-file state (dev->conf_state), private to
 * conf_apply.c and conf_watch.c. Control thread only.
 */
struct wgt_conf_state {
	struct wgt_device *dev;
	struct wgt_conf *last;                    /* the last file applied (owned) */
	uint8_t seen[WGT_CONF_DIGEST_LEN];        /* digest of the last text read, applied or not */
	bool have_seen;
	struct wgt_resolver *resolver;            /* started by the first host name; NULL until then */
	char *path;                               /* absolute (cwd prefixed), symlinks kept */
	char *dir;                                /* its directory */
	char *target_dir;                         /* the directory of its symlink target; NULL: same */
	int inotify_fd;
	int wd_dir, wd_target;                    /* -1: none */
	ev_io inotify_io;
	ev_timer debounce;
	ev_signal sighup;
	bool watching;
};

/* Control thread only: dev->conf_state, created on first use; NULL when out of memory. */
struct wgt_conf_state *wgt_conf_state_get(struct wgt_device *dev);

/* Control thread only, from wgt_device_destroy(): stops the watchers and the resolver, frees the last file. */
void wgt_conf_state_free(struct wgt_device *dev);

#endif
