/* SPDX-License-Identifier: MIT */
/* The HTTP endpoint: Prometheus /metrics, /healthz and /readyz (libmicrohttpd). */
#ifndef WGT_GATEWAY_METRICS_H
#define WGT_GATEWAY_METRICS_H

/*
 * Design note
 *
 *   MHD threads (one per connection, at most 16)        control thread (libev)
 *   /healthz: wgt_health_check() (gateway/health.h): heartbeat atomics, no control thread
 *   /metrics, /readyz: queue a request, ev_async ---->  renders in chunks of ~1 ms
 *       wait on a condition variable (10 s cap)  <----  (a 0 s timer between chunks),
 *                                                       signals the waiter
 *
 * The peer list and most device fields belong to the control thread, so the
 * control thread renders: no lock and no QSBR read side is added anywhere,
 * and workers are never touched beyond relaxed loads of counters they own.
 * A render walks the peers with a cursor (dev->metrics_cursor) that
 * wgt_peer_remove() advances past a peer it unlinks, and gives the loop back
 * after about a millisecond, so handshakes and the UAPI are served between
 * chunks. /healthz must answer while the control thread is stuck, so it is
 * computed on the connection's own thread from heartbeat words.
 */

#include <stdbool.h>

#include "common/clock.h"

struct wgt_device;
struct wgt_metrics;
union wgt_sockaddr;

#define WGT_METRICS_PEER_LIMIT_DEFAULT 1000
#define WGT_METRICS_PEER_LIMIT_MAX (1U << 20)

struct wgt_metrics_config {
	const char *listen;        /* "ADDR:PORT", "[V6]:PORT" or ":PORT" (every address) */
	unsigned peer_limit;       /* peers with series of their own; the rest only in sums */
};

/* Any thread. Parses --metrics-listen (":PORT": AF_UNSPEC and the port). Returns 0 or -EINVAL. */
int wgt_metrics_parse_listen(const char *s, union wgt_sockaddr *ret);
/*
 * Control thread, before privileges are dropped and while no other thread
 * runs: binds the listening socket (errors logged). Returns 0 or -errno.
 */
int wgt_metrics_create(struct wgt_device *dev, const struct wgt_metrics_config *cfg,
		       struct wgt_metrics **ret);
/* Control thread, once the workers run: starts the server's threads. 0 or -errno (logged). */
int wgt_metrics_start(struct wgt_metrics *m);
/* Control thread. Stops the server, answers waiting requests, frees; accepts NULL. */
void wgt_metrics_stop(struct wgt_metrics *m);

#endif
