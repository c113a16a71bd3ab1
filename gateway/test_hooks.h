/* SPDX-License-Identifier: MIT */
/*
 * Fault injection for the end-to-end tests, compiled only with -Dtest_hooks=true
 * (WGT_TEST_HOOKS); in a release build every hook below is an inline no-op.
 *
 *   $WGATE_TEST_SEND_FAIL_FILE   read on the 1 s health tick: "ENOBUFS 300" makes
 *                                300 of every 1000 UDP sends fail with ENOBUFS
 *                                (io/udp.c), "EAGAIN 1000" all of them with EAGAIN;
 *                                no file (or "off") ends the storm
 *   $WGATE_TEST_ALLOC_FAIL_FILE  read at every peer a UAPI set creates: N there makes
 *                                the Nth allocation of that peer's creation fail
 *                                (1: the peer itself, 2..: its allowed IPs, in order)
 *   $WGATE_TEST_SESSION_FAIL_FILE  looked at (stat) at every session-state allocation
 *                                (peer_session.c): when the file is new or changed, N
 *                                there makes the next N of them fail as if calloc had
 *                                failed (the handshake is dropped and counted); rewriting
 *                                it arms again, removing it (or "0") disarms
 *
 * The worker stall ($WGATE_TEST_STALL_FILE) lives in health.c.
 */
#ifndef WGT_GATEWAY_TEST_HOOKS_H
#define WGT_GATEWAY_TEST_HOOKS_H

#include <stdbool.h>

struct wgt_device;

#ifdef WGT_TEST_HOOKS
/* Control thread only: reads the environment once, at start. */
void wgt_test_hooks_start(struct wgt_device *dev);
/* Control thread only: the 1 s tick re-reads the send-failure file. */
void wgt_test_hooks_tick(struct wgt_device *dev);
/* Control thread only: a peer's creation begins (re-reads the allocation file) or ends. */
void wgt_test_hooks_peer_begin(void);
void wgt_test_hooks_peer_end(void);
/* Control thread only: true when the allocation about to be made is to fail. */
bool wgt_test_hooks_fail_alloc(void);
/* Control thread only: true when the session-state allocation about to be made is to fail. */
bool wgt_test_hooks_fail_session(void);
#else
static inline void wgt_test_hooks_peer_begin(void)
{
}
static inline void wgt_test_hooks_peer_end(void)
{
}
static inline bool wgt_test_hooks_fail_alloc(void)
{
	return false;
}
static inline bool wgt_test_hooks_fail_session(void)
{
	return false;
}
#endif

#endif
