/* SPDX-License-Identifier: MIT */
/* Worker-side admission of handshake messages to the control thread: per-source budgets, cookies under load. */
#ifndef WGT_GATEWAY_HS_ADMIT_H
#define WGT_GATEWAY_HS_ADMIT_H

/*
 * Design note
 *
 * Every handshake message (types 1-3) reaches the control thread through its
 * worker's to_ctrl ring (4096 slots), which also carries what the data path
 * cannot lose: key confirmations, staged packets, timer events. A flood must
 * neither fill that ring nor make the gateway "under load" for everybody, so
 * a worker decides, per message, by how full its ring is (count, all
 * messages) and by its handshake backlog (hs, the handshake messages in it):
 *
 *   count >= WGT_HS_RING_CAP (3/4)     dropped: the last quarter is for the
 *                                      data path's messages
 *   always                             the source's budget (below) must allow it
 *   under load (hs >= 1/8 of the ring, macs checked here: a bad mac1 is
 *     or the control thread saw such   dropped, a good mac1 without a valid
 *     a backlog over all rings within  mac2 gets a cookie reply from this
 *     a second)                        worker, only a valid mac2 is queued
 *   otherwise                          queued (the control thread checks all)
 *
 * Only handshake messages count toward "under load", as in the kernel (its
 * handshake queue): with thousands of sessions the ring also holds timer
 * events and staged packets, and counting those sent cookies to real peers
 * of a gateway that was merely busy moving data.
 *
 * Budgets: a direct-mapped table of WGT_HS_BUDGET_SLOTS token buckets per
 * worker (WGT_HS_BUDGET_RATE per second, burst WGT_HS_BUDGET_BURST), keyed
 * by the source's IPv4 address or IPv6 /64 under a random SipHash key. A
 * source that misses its slot takes it over with a full bucket, so the
 * table cannot be filled: a flood from many addresses only makes budgets
 * forgetful (harmless: each of those sources sends little), while one
 * flooding source keeps its empty bucket and is dropped before it costs a
 * ring slot or a MAC. The kernel's and the control thread's rate limiter
 * (20/s per source) applies only under load and only after the macs; this
 * one is looser (a NAT carries many peers on one address) and always on:
 * applied only while the ring fills, it let one source hold the ring at
 * that level and the control thread busy with its Diffie-Hellman, which
 * on a small machine starved the workers of CPU until the sockets dropped
 * real peers' messages (tests/e2e/flood.sh, step (e)).
 *
 * The macs are checked against a copy of the control thread's cookie
 * checker that it publishes (dev->shared_checker, QSBR) with a secret it
 * renews before it expires, so cookies made by workers and by the control
 * thread agree.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/endpoint.h"
#include "common/siphash.h"
#include "common/ring.h"

#define WGT_HS_BUDGET_SLOTS 4096
#define WGT_HS_BUDGET_RATE 100
#define WGT_HS_BUDGET_BURST 50

struct wgt_worker;
struct wgt_udp_rx_info;

struct wgt_hs_budget_slot {
	uint64_t tag;       /* SipHash of the source, | 1; 0 = empty */
	uint64_t last_ns;
	uint64_t tokens_ns; /* credit: one message costs 1 s / WGT_HS_BUDGET_RATE */
};

struct wgt_hs_budget {
	struct wgt_siphash_key key;
	struct wgt_hs_budget_slot slot[WGT_HS_BUDGET_SLOTS];
};

/* Owner only. A random key and empty slots. Returns 0 or -errno. */
int wgt_hs_budget_init(struct wgt_hs_budget *b);

/*
 * Owner only. Takes one message's cost from src's bucket: true when there
 * was enough. Unknown families are allowed (there is nothing to key them by).
 */
bool wgt_hs_budget_allow(struct wgt_hs_budget *b, const union wgt_sockaddr *src, uint64_t now_ns);

enum wgt_hs_admit {
	WGT_HS_QUEUE,       /* to the control thread */
	WGT_HS_DROPPED,     /* counted in the worker's stats */
	WGT_HS_ANSWERED,    /* a cookie reply went out */
};

/* Worker-owned (QSBR read side). Decides what becomes of a type 1-3 message from src on fd. */
enum wgt_hs_admit wgt_hs_admit(struct wgt_worker *w, int fd, const uint8_t *buf, size_t len,
			       const union wgt_sockaddr *src, const struct wgt_udp_rx_info *info);

#endif
