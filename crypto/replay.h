/* SPDX-License-Identifier: MIT */
/*
 * Receive-counter replay window (RFC 6479 layout, whitepaper section 5.4.6).
 *
 * A ring of WGT_REPLAY_BITS_TOTAL bits indexed by counter modulo the ring
 * size. `greatest` is one past the highest counter accepted so far. Moving
 * the window forward clears only the words it skips over, so a check costs
 * O(1) however far the counter jumps. One word of the ring is slack. As in
 * the kernel, after accepting counter H every counter from H - 8128
 * (WGT_REPLAY_WINDOW) up is still judged by its bit; older ones are refused.
 *
 *   counter:  ... [H - 8128 ........................ H] H+1 ...
 *                  too old below   window (bitmap)      new: window moves
 *
 * Several workers may receive on the same keypair; the check-and-set is one
 * short critical section under a spinlock owned by the window.
 */
#ifndef WGT_CRYPTO_REPLAY_H
#define WGT_CRYPTO_REPLAY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "crypto/messages.h"

struct wgt_replay {
	atomic_flag lock;
	uint64_t greatest;
	uint64_t bitmap[WGT_REPLAY_BITS_TOTAL / 64];
};

void wgt_replay_init(struct wgt_replay *r);

/*
 * Any thread. Accepts `counter` exactly once: returns true and records it
 * when it is below WGT_REJECT_AFTER_MESSAGES, not older than the window and
 * not seen before; returns false otherwise. Call only after the packet
 * carrying `counter` has been authenticated.
 */
bool wgt_replay_check_and_update(struct wgt_replay *r, uint64_t counter);

#endif
