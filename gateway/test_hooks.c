/* SPDX-License-Identifier: MIT */
/* Test builds' fault injection: UDP send failure storms and allocation failures at peer add. */
#include "gateway/test_hooks.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "gateway/device.h"
#include "io/udp.h"

#ifdef WGT_TEST_HOOKS
/* Control thread only, one device per process. */
static const char *send_fail_file, *alloc_fail_file;
static int send_fail_errno;
static unsigned send_fail_per_mille;
static unsigned alloc_nth, alloc_count;

void wgt_test_hooks_start(struct wgt_device *dev)
{
	send_fail_file = getenv("WGATE_TEST_SEND_FAIL_FILE");
	alloc_fail_file = getenv("WGATE_TEST_ALLOC_FAIL_FILE");
	if (send_fail_file)
		wgt_info("test hook: \"ERRNO PER_MILLE\" in %s makes UDP sends fail", send_fail_file);
	if (alloc_fail_file)
		wgt_info("test hook: N in %s fails the Nth allocation of a peer add", alloc_fail_file);
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
#endif
