/* SPDX-License-Identifier: MIT */
/* Root-only suites run in a private network namespace so they never touch the host's interfaces. */
#ifndef WGT_TESTS_NETNS_H
#define WGT_TESTS_NETNS_H

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "io/tun.h"

/*
 * Enters a fresh network namespace with loopback up. Returns 0, or 77
 * (meson's "skipped") after saying why when not root or when that fails.
 */
static inline int unit_enter_netns(const char *suite, const char *why_root)
{
	if (geteuid() != 0) {
		printf("%s: needs root (%s); skipped\n", suite, why_root);
		return 77;
	}
	if (unshare(CLONE_NEWNET) == -1) {
		printf("%s: unshare(CLONE_NEWNET): %s; skipped\n", suite, strerror(errno));
		return 77;
	}
	if (wgt_tun_set_up("lo", true) < 0) {
		printf("%s: cannot bring lo up; skipped\n", suite);
		return 77;
	}
	setvbuf(stdout, NULL, _IONBF, 0);
	return 0;
}

#endif
