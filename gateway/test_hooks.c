/* SPDX-License-Identifier: MIT */
/* Test builds' fault injection: UDP send failure storms, allocation failures at peer add and of session state. */
#include "gateway/test_hooks.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/log.h"
#include "gateway/device.h"
#include "io/udp.h"

#ifdef WGT_TEST_HOOKS
/* Control thread only, one device per process. */
static const char *send_fail_file, *alloc_fail_file, *session_fail_file;
static int send_fail_errno;
static unsigned send_fail_per_mille;
static unsigned alloc_nth, alloc_count;
static struct stat session_fail_seen;  /* the version of the file last read; st_ino 0: none */
static unsigned session_fail_left;

void wgt_test_hooks_start(struct wgt_device *dev)
{
	send_fail_file = getenv("WGATE_TEST_SEND_FAIL_FILE");
	alloc_fail_file = getenv("WGATE_TEST_ALLOC_FAIL_FILE");
	session_fail_file = getenv("WGATE_TEST_SESSION_FAIL_FILE");
	if (send_fail_file)
		wgt_info("test hook: \"ERRNO PER_MILLE\" in %s makes UDP sends fail", send_fail_file);
	if (alloc_fail_file)
		wgt_info("test hook: N in %s fails the Nth allocation of a peer add", alloc_fail_file);
	if (session_fail_file)
		wgt_info("test hook: N in %s fails the next N session-state allocations",
			 session_fail_file);
	wgt_test_hooks_tick(dev);
}

void wgt_test_hooks_tick(struct wgt_device *dev)
{
	char name[16] = "";
	unsigned pm = 0;
	int err = 0;
	FILE *f;

	if (!send_fail_file)
		return;
	f = fopen(send_fail_file, "re");
	if (f) {
		if (fscanf(f, "%15s %u", name, &pm) != 2)
			pm = 0;
		fclose(f);
	}
	if (!strcmp(name, "ENOBUFS"))
		err = ENOBUFS;
	else if (!strcmp(name, "EAGAIN"))
		err = EAGAIN;
	else
		pm = 0;
	if (err == send_fail_errno && pm == send_fail_per_mille)
		return;
	if (pm)
		wgt_info("%s: test hook: %u of 1000 UDP sends fail with %s", dev->ifname, pm, name);
	else
		wgt_info("%s: test hook: UDP sends no longer fail", dev->ifname);
	send_fail_errno = err;
	send_fail_per_mille = pm;
	wgt_udp_test_fail_sends(err, pm);
}

void wgt_test_hooks_peer_begin(void)
{
	FILE *f;

	alloc_nth = 0;
	alloc_count = 0;
	if (!alloc_fail_file)
		return;
	f = fopen(alloc_fail_file, "re");
	if (!f)
		return;
	if (fscanf(f, "%u", &alloc_nth) != 1)
		alloc_nth = 0;
	fclose(f);
}

void wgt_test_hooks_peer_end(void)
{
	alloc_nth = 0;
}

bool wgt_test_hooks_fail_alloc(void)
{
	if (!alloc_nth || ++alloc_count != alloc_nth)
		return false;
	wgt_info("test hook: allocation %u of this peer add fails", alloc_nth);
	return true;
}

/* The file's N, when it is not the version read last; false when it is, or unreadable. */
static bool session_fail_reread(const struct stat *st, unsigned *n)
{
	bool same = st->st_ino == session_fail_seen.st_ino && st->st_dev == session_fail_seen.st_dev &&
		    st->st_size == session_fail_seen.st_size &&
		    st->st_mtim.tv_sec == session_fail_seen.st_mtim.tv_sec &&
		    st->st_mtim.tv_nsec == session_fail_seen.st_mtim.tv_nsec;
	FILE *f;

	if (same)
		return false;
	session_fail_seen = *st;
	*n = 0;
	f = fopen(session_fail_file, "re");
	if (!f)
		return true;
	if (fscanf(f, "%u", n) != 1)
		*n = 0;
	fclose(f);
	return true;
}

bool wgt_test_hooks_fail_session(void)
{
	struct stat st;
	unsigned n;

	if (!session_fail_file)
		return false;
	if (stat(session_fail_file, &st)) {
		/* Removed: disarmed, and the next file, whatever its times, is new. */
		memset(&session_fail_seen, 0, sizeof(session_fail_seen));
		session_fail_left = 0;
	} else if (session_fail_reread(&st, &n)) {
		session_fail_left = n;
		wgt_info("test hook: the next %u session-state allocations fail", n);
	}
	if (!session_fail_left)
		return false;
	session_fail_left--;
	wgt_info("test hook: a session-state allocation fails (%u more to fail)", session_fail_left);
	return true;
}
#endif
