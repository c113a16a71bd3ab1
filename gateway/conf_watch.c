/* SPDX-License-Identifier: MIT */
/* Live reload of the configuration file: SIGHUP, and inotify on its directory with a debounce. */
#include "gateway/conf_apply.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "common/compiler.h"
#include "common/log.h"
#include "config/conf.h"
#include "gateway/device.h"
#include "gateway/notify.h"
#include "gateway/resolve.h"

/*
 * Editors write a temporary file and rename it over the old one, Kubernetes
 * renames a `..data` symlink to a new timestamped directory: the file's own
 * inode is no use to watch, its directory is. Any change there (a swap file,
 * a key file too) re-reads the file once things are quiet for DEBOUNCE_S;
 * a text identical to the last one read is skipped.
 */
#define DEBOUNCE_S 0.2
#define WATCH_MASK (IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_CLOSE_WRITE | IN_DELETE | \
		    IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)

struct report {
	unsigned errors;
};

static void log_report(void *arg, enum wgt_conf_severity sev, const char *msg)
{
	struct report *rep = arg;

	if (sev == WGT_CONF_ERROR) {
		rep->errors++;
		wgt_err("%s", msg);
	} else {
		wgt_warn("%s", msg);
	}
}

/* The directory the path's symlinks end in, watched too when it is not the path's own. */
static void update_target_watch(struct wgt_conf_state *st)
{
	char real[PATH_MAX], *dir;
	int wd;

	if (st->inotify_fd < 0 || !realpath(st->path, real))
		return;
	dir = dirname(real);
	if (st->target_dir && !strcmp(st->target_dir, dir))
		return;
	if (st->wd_target >= 0 && st->wd_target != st->wd_dir)
		inotify_rm_watch(st->inotify_fd, st->wd_target);
	st->wd_target = -1;
	free(st->target_dir);
	st->target_dir = strdup(dir);
	wd = inotify_add_watch(st->inotify_fd, dir, WATCH_MASK);
	if (wd == -1)
		wgt_dbg("%s: cannot watch %s: %s", st->dev->ifname, dir, strerror(errno));
	else if (wd != st->wd_dir)
		st->wd_target = wd;
}

static void refused(struct wgt_conf_state *st, const char *why)
{
	struct wgt_device *dev = st->dev;

	dev->conf_reload_failures++;
	wgt_err("%s: config %s %s: the running configuration stays (%llu failed reloads)",
		dev->ifname, st->path, why, (unsigned long long)dev->conf_reload_failures);
}

/* Control thread only. `forced` (SIGHUP) applies even a text already seen. */
static void reload(struct wgt_conf_state *st, bool forced, const char *trigger)
{
	struct wgt_device *dev = st->dev;
	uint8_t digest[WGT_CONF_DIGEST_LEN];
	struct report rep = { 0 };
	struct wgt_conf *conf = NULL;
	char why[64];
	int r;

	/* A file gone for a moment (a save that deletes before it writes) is waited for, not refused. */
	if (!forced && access(st->path, F_OK) == -1 && errno == ENOENT) {
		wgt_warn("%s: config %s is gone: the running configuration stays", dev->ifname,
			 st->path);
		goto out;
	}
	r = wgt_conf_digest(st->path, log_report, &rep, digest);
	if (r) {
		refused(st, "unreadable");
		goto out;
	}
	if (!forced && st->have_seen && !CRYPTO_memcmp(digest, st->seen, sizeof(digest))) {
		wgt_dbg("%s: config %s unchanged (%s)", dev->ifname, st->path, trigger);
		goto out;
	}
	memcpy(st->seen, digest, sizeof(digest));
	st->have_seen = true;
	wgt_info("%s: reloading config %s (%s)", dev->ifname, st->path, trigger);
	/* systemd: RELOADING=1 now, READY=1 once done, whatever the outcome. */
	wgt_notify_reloading();
	r = wgt_conf_parse_file(st->path, log_report, &rep, &conf);
	if (r) {
		if (rep.errors)
			snprintf(why, sizeof(why), "refused (%u error%s)", rep.errors,
				 rep.errors == 1 ? "" : "s");
		else
			snprintf(why, sizeof(why), "refused (%s)", strerror(-r));
		refused(st, why);
		goto reloaded;
	}
	r = wgt_conf_apply(dev, conf, st->path);
	if (r) {
		refused(st, "not fully applied");
		goto reloaded;
	}
	dev->conf_reloads++;
reloaded:
	wgt_notify_reloaded(dev);
out:
	update_target_watch(st);
}

static void debounce_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct wgt_conf_state *st = wgt_container_of(w, struct wgt_conf_state, debounce);

	(void)revents;
	ev_timer_stop(loop, w);
	reload(st, false, "file changed");
}

static void sighup_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct wgt_conf_state *st = wgt_container_of(w, struct wgt_conf_state, sighup);

	(void)loop;
	(void)revents;
	reload(st, true, "SIGHUP");
}

static void inotify_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct wgt_conf_state *st = wgt_container_of(w, struct wgt_conf_state, inotify_io);
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool any = false;
	ssize_t n;

	(void)revents;
	while ((n = read(st->inotify_fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;

			if ((ev->mask & IN_IGNORED) && ev->wd == st->wd_target) {
				st->wd_target = -1;
				free(st->target_dir);
				st->target_dir = NULL;
			} else if ((ev->mask & IN_IGNORED) && ev->wd == st->wd_dir) {
				wgt_warn("%s: the directory of %s is gone: reload with SIGHUP",
					 st->dev->ifname, st->path);
				st->wd_dir = -1;
			} else {
				any = true;
			}
			p += sizeof(*ev) + ev->len;
		}
	}
	if (any) {
		/* Restarts the quiet period. */
		st->debounce.repeat = DEBOUNCE_S;
		ev_timer_again(loop, &st->debounce);
	}
}

int wgt_conf_watch_start(struct wgt_device *dev, const char *path, struct wgt_conf *conf,
			 const uint8_t digest[WGT_CONF_DIGEST_LEN])
{
	struct wgt_conf_state *st = wgt_conf_state_get(dev);
	char cwd[PATH_MAX], *copy;
	int r;

	if (!st) {
		wgt_conf_free(conf);
		return -ENOMEM;
	}
	free(st->path);
	free(st->dir);
	/* Absolute, so that no later chdir() changes what is read; symlinks kept (Kubernetes). */
	if (path[0] == '/' || !getcwd(cwd, sizeof(cwd)))
		st->path = strdup(path);
	else if (asprintf(&st->path, "%s/%s", cwd, path) == -1)
		st->path = NULL;
	copy = st->path ? strdup(st->path) : NULL;
	st->dir = copy ? strdup(dirname(copy)) : NULL;
	free(copy);
	if (!st->path || !st->dir) {
		wgt_conf_free(conf);
		return -ENOMEM;
	}
	memcpy(st->seen, digest, WGT_CONF_DIGEST_LEN);
	st->have_seen = true;
	r = wgt_conf_apply(dev, conf, path);
	if (r)
		return r;
	ev_signal_init(&st->sighup, sighup_cb, SIGHUP);
	ev_signal_start(dev->loop, &st->sighup);
	ev_init(&st->debounce, debounce_cb);
	st->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (st->inotify_fd >= 0)
		st->wd_dir = inotify_add_watch(st->inotify_fd, st->dir, WATCH_MASK);
	if (st->inotify_fd < 0 || st->wd_dir < 0) {
		wgt_warn("%s: cannot watch %s (%s): reload with SIGHUP only", dev->ifname, st->dir,
			 strerror(errno));
	} else {
		ev_io_init(&st->inotify_io, inotify_cb, st->inotify_fd, EV_READ);
		ev_io_start(dev->loop, &st->inotify_io);
		update_target_watch(st);
	}
	st->watching = true;
	return 0;
}

void wgt_conf_state_free(struct wgt_device *dev)
{
	struct wgt_conf_state *st = dev->conf_state;

	if (!st)
		return;
	if (st->watching) {
		ev_signal_stop(dev->loop, &st->sighup);
		ev_timer_stop(dev->loop, &st->debounce);
		if (st->inotify_fd >= 0)
			ev_io_stop(dev->loop, &st->inotify_io);
	}
	if (st->inotify_fd >= 0)
		close(st->inotify_fd);
	wgt_resolver_free(st->resolver);
	wgt_conf_free(st->last);
	free(st->path);
	free(st->dir);
	free(st->target_dir);
	free(st);
	dev->conf_state = NULL;
}
