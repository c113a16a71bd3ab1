/* SPDX-License-Identifier: MIT */
/*
 * Liveness of the daemon's threads, as /healthz and the systemd watchdog report it.
 *
 *   control thread: a 1 s libev timer stores the time (ctrl_heartbeat)
 *   worker i:       stores the time once per loop pass (stats.heartbeat), and
 *                   the time with bit 0 set before it blocks in poll(): idle is alive
 *   any thread:     wgt_health_check() compares them with now
 *
 * A thread that showed no progress for WGT_HEALTH_STUCK_NS (and is not asleep
 * waiting for work) is stuck. Test builds (-Dtest_hooks=true) also read the file
 * named by $WGATE_TEST_STALL_FILE on each tick: a worker number there stalls that
 * worker, so that tests can see a stuck one.
 */
#ifndef WGT_GATEWAY_HEALTH_H
#define WGT_GATEWAY_HEALTH_H

#include <stdbool.h>
#include <stddef.h>

#include "common/clock.h"

struct wgt_device;

#define WGT_HEALTH_STUCK_NS (5 * WGT_NSEC_PER_SEC)

/* Control thread only: starts and stops the control thread's heartbeat. */
void wgt_health_start(struct wgt_device *dev);
void wgt_health_stop(struct wgt_device *dev);

/*
 * Any thread. Returns true when every thread is alive; else false, with the
 * stuck threads named in buf ("control thread (no progress for 6.1 s); worker 1
 * (no progress for 5.2 s)"), cut to len and always terminated (buf may be NULL).
 */
bool wgt_health_check(struct wgt_device *dev, char *buf, size_t len);

#endif
