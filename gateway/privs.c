/* SPDX-License-Identifier: MIT */
/* Least privilege: keep CAP_NET_ADMIN only, optionally as another user, no new privileges. */
#include "gateway/privs.h"

#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cap-ng.h>

#include "common/log.h"

int wgt_privs_lookup_user(const char *name, struct wgt_privs_user *ret)
{
	struct passwd pw, *found = NULL;
	char buf[4096];
	int r;

	if (!name || !name[0] || strlen(name) >= sizeof(ret->name))
		return -EINVAL;
	r = getpwnam_r(name, &pw, buf, sizeof(buf), &found);
	if (r)
		return -r;
	if (!found)
		return -ENOENT;
	snprintf(ret->name, sizeof(ret->name), "%s", name);
	ret->uid = pw.pw_uid;
	ret->gid = pw.pw_gid;
	return 0;
}

/* The process's threads, from /proc/self/task; 0 when it cannot tell. */
static unsigned count_threads(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	unsigned n = 0;

	if (!d)
		return 0;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* Switches uid, gid and supplementary groups, keeping the permitted capabilities. */
static int switch_user(const struct wgt_privs_user *user)
{
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) == -1)
		return -errno;
	if (initgroups(user->name, user->gid) == -1 || setresgid(user->gid, user->gid, user->gid) == -1 ||
	    setresuid(user->uid, user->uid, user->uid) == -1)
		return -errno;
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) == -1)
		return -errno;
	return 0;
}

/* Control thread, before any other thread exists. */
int wgt_privs_drop(const struct wgt_privs_user *user, uint16_t listen_port)
{
	static const unsigned wanted[] = { CAP_NET_ADMIN, CAP_NET_BIND_SERVICE };
	unsigned n_wanted = listen_port && listen_port < 1024 ? 2 : 1;
	bool keep[2] = { false, false };
	bool bounded = false;
	unsigned threads = count_threads();
	int r;

	if (threads > 1) {
#ifdef __SANITIZE_THREAD__
		/* ThreadSanitizer's runtime starts a thread of its own in a forked child. */
		wgt_warn("%u threads run before the privilege drop: all but this one keep their "
			 "capabilities (ThreadSanitizer build)", threads);
#else
		wgt_err("cannot drop privileges: %u threads already run (capabilities are per thread)",
			threads);
		return -EBUSY;
#endif
	}
	if (capng_get_caps_process()) {
		wgt_err("cannot read the process's capabilities");
		return -EIO;
	}
	for (unsigned i = 0; i < n_wanted; i++)
		keep[i] = capng_have_capability(CAPNG_PERMITTED, wanted[i]) == 1;
	/* The bounding set first: changing it needs CAP_SETPCAP, which a root start has. */
	if (capng_have_capability(CAPNG_EFFECTIVE, CAP_SETPCAP) == 1) {
		capng_clear(CAPNG_SELECT_BOUNDS);
		for (unsigned i = 0; i < n_wanted; i++)
			if (keep[i])
				capng_update(CAPNG_ADD, CAPNG_BOUNDING_SET, wanted[i]);
		if (capng_apply(CAPNG_SELECT_BOUNDS)) {
			wgt_err("cannot reduce the capability bounding set");
			return -EPERM;
		}
		bounded = true;
	}
	if (user) {
		r = switch_user(user);
		if (r) {
			wgt_err("cannot switch to user %s (uid %u, gid %u): %s", user->name,
				(unsigned)user->uid, (unsigned)user->gid, strerror(-r));
			return r;
		}
	}
	capng_clear(CAPNG_SELECT_CAPS);
	for (unsigned i = 0; i < n_wanted; i++)
		if (keep[i])
			capng_update(CAPNG_ADD, CAPNG_EFFECTIVE | CAPNG_PERMITTED, wanted[i]);
	if (capng_apply(CAPNG_SELECT_CAPS)) {
		r = -errno;
		wgt_err("cannot drop capabilities: %s", strerror(-r));
		return r;
	}
	/* EINVAL: a kernel before 4.3 has no ambient set, so nothing to clear. */
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) == -1 && errno != EINVAL) {
		r = -errno;
		wgt_err("cannot clear the ambient capabilities: %s", strerror(-r));
		return r;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1) {
		r = -errno;
		wgt_err("cannot set no_new_privs: %s", strerror(-r));
		return r;
	}
	/* Paranoia, as OpenSSH's permanently_set_uid(): the old identity must be out of reach. */
	if (user && user->uid != 0 && (setuid(0) != -1 || seteuid(0) != -1)) {
		wgt_err("could regain root after switching to user %s: refusing to run", user->name);
		return -EPERM;
	}
	wgt_info("privileges: uid %u gid %u, capabilities %s%s%s (bounding set %s), no_new_privs",
		 (unsigned)getuid(), (unsigned)getgid(), keep[0] ? "cap_net_admin" : "none",
		 keep[1] ? ", cap_net_bind_service" : "",
		 !keep[0] ? " (no CAP_NET_ADMIN: listen-port and fwmark changes will fail)" : "",
		 bounded ? "reduced" : "unchanged: no CAP_SETPCAP");
	return 0;
}
