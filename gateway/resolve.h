/* SPDX-License-Identifier: MIT */
/*
 * Endpoint host names resolved off the control thread, retried until they
 * resolve.
 *
 *   control thread                         resolver thread
 *   wgt_resolver_add() --request queue--> getaddrinfo() (blocks)
 *   async_cb() <--done queue + ev_async-- (one job at a time)
 *     resolved: done(key, addr)
 *     failed:   ev_timer, then back to the request queue
 *
 * Retry schedule (wg(8) retries 15 times from 1 s, growing by 6/5 up to 20 s,
 * then gives up; a daemon must not give up, a name may appear later): after
 * failure n (1..15) wait min(1.2^(n-1), 20) s, about 72 s in all, then every
 * 60 s until it resolves or the job is cancelled. The first failure and the
 * 15th are logged as warnings, the others at debug level.
 *
 * A job is keyed by the peer's public key; adding a job for a key replaces
 * the pending one. Cancelling never waits: a job the thread is resolving is
 * only marked and freed when its answer comes back.
 */
#ifndef WGT_GATEWAY_RESOLVE_H
#define WGT_GATEWAY_RESOLVE_H

#include <stdint.h>

#include <ev.h>

#include "common/endpoint.h"

#define WGT_RESOLVE_RETRIES_FAST 15
#define WGT_RESOLVE_FIRST_DELAY 1.0      /* s */
#define WGT_RESOLVE_MAX_FAST_DELAY 20.0  /* s */
#define WGT_RESOLVE_SLOW_DELAY 60.0      /* s, after the fast retries */
#define WGT_RESOLVE_MAX_JOBS (1U << 18)  /* as many as peers */

struct wgt_resolver;

/* Control thread: `host` resolved to `addr` for the peer with `key`. */
typedef void (*wgt_resolver_done_fn)(void *arg, const uint8_t key[32], const union wgt_sockaddr *addr);

/* Control thread only. Starts the thread (every signal blocked in it). Returns 0 or -errno. */
int wgt_resolver_new(struct ev_loop *loop, const char *ifname, wgt_resolver_done_fn done,
		     void *arg, struct wgt_resolver **ret);

/*
 * Control thread only. Never waits for a getaddrinfo() in progress: that
 * thread is detached and frees the shared state itself. Accepts NULL.
 */
void wgt_resolver_free(struct wgt_resolver *r);

/* Control thread only. Queues host:port for key (replacing its pending job); `label` names the peer in logs. Returns 0 or -errno (-ENOSPC: cap). */
int wgt_resolver_add(struct wgt_resolver *r, const uint8_t key[32], const char *host,
		     uint16_t port, const char *label);

/* Control thread only. Cancels the pending job of key; none is fine. */
void wgt_resolver_cancel(struct wgt_resolver *r, const uint8_t key[32]);

/* Any thread. Seconds to wait after the n-th failure (n >= 1). */
double wgt_resolver_retry_delay(unsigned failures);

/* Control thread only. Jobs not yet resolved (for tests and the stats dump). */
size_t wgt_resolver_pending(const struct wgt_resolver *r);

#endif
