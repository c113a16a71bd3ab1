/* SPDX-License-Identifier: MIT */
/* RFC 6479 sliding replay window with the acceptance rule of the kernel's counter_validate. */
#include "crypto/replay.h"

#include <string.h>

#include "common/compiler.h"
#include "common/spinlock.h"

#define WORD_BITS 64
#define RING_WORDS (WGT_REPLAY_BITS_TOTAL / WORD_BITS)

/* Ring indices are taken with a mask, and a window must fit in the ring minus the slack word. */
_Static_assert((RING_WORDS & (RING_WORDS - 1)) == 0, "replay ring must be a power of two words");
_Static_assert(WGT_REPLAY_WINDOW == WGT_REPLAY_BITS_TOTAL - WORD_BITS, "one slack word");
_Static_assert(sizeof(((struct wgt_replay *)0)->bitmap) * 8 == WGT_REPLAY_BITS_TOTAL, "ring size");
/* `counter + 1 + WGT_REPLAY_WINDOW` below must not wrap for any counter we let in. */
_Static_assert(WGT_REJECT_AFTER_MESSAGES <= UINT64_MAX - WGT_REPLAY_WINDOW, "reject limit");

/* Any thread. */
static void lock(struct wgt_replay *r)
{
	/*
	 * L1: acquire (S1), pairs with U1 of the previous holder, so its bitmap
	 * and greatest writes are visible.
	 */
	wgt_spin_lock(&r->lock);
}

/* Lock holder only. */
static void unlock(struct wgt_replay *r)
{
	/* U1: release (S2), pairs with L1 of the next holder. */
	wgt_spin_unlock(&r->lock);
}

/* Owner only, before the keypair is published to other threads (publication orders it). */
void wgt_replay_init(struct wgt_replay *r)
{
	memset(r->bitmap, 0, sizeof(r->bitmap));
	r->greatest = 0;
	wgt_spin_init(&r->lock);
}

/*
 * Any thread; takes the window's spinlock for a bounded critical section
 * (at most RING_WORDS word stores).
 *
 * Counters are tracked shifted by one ("position" = counter + 1) so that
 * `greatest == 0` can mean "nothing accepted yet" and is one past the highest
 * accepted counter otherwise. A counter is too old when its position plus the
 * window still lies below `greatest`: after accepting H, H - 8128 is the
 * oldest counter still accepted and H - 8129 the first rejected, which is the
 * kernel's edge and what interoperating peers expect.
 */
bool wgt_replay_check_and_update(struct wgt_replay *r, uint64_t counter)
{
	uint64_t pos, word, cur, skip, i, bit;
	bool fresh = false;

	/* Depends only on the argument: no need to hold the lock to refuse it. */
	if (unlikely(counter >= WGT_REJECT_AFTER_MESSAGES))
		return false;
	pos = counter + 1;
	word = pos / WORD_BITS;

	lock(r);
	if (unlikely(pos + WGT_REPLAY_WINDOW < r->greatest))
		goto out;
	if (likely(pos > r->greatest)) {
		/*
		 * Moving forward: the words between the old top word and the new
		 * one now describe counters nobody has seen. Clearing is capped at
		 * one full turn of the ring, so a huge jump costs the same as a
		 * jump of one ring. The old top word itself keeps its bits: it
		 * still holds live counters at or below the old greatest.
		 */
		cur = r->greatest / WORD_BITS;
		skip = WGT_MIN(word - cur, (uint64_t)RING_WORDS);
		for (i = 1; i <= skip; i++)
			r->bitmap[(cur + i) & (RING_WORDS - 1)] = 0;
		r->greatest = pos;
	}
	bit = 1ULL << (pos & (WORD_BITS - 1));
	word &= RING_WORDS - 1;
	fresh = !(r->bitmap[word] & bit);
	r->bitmap[word] |= bit;
out:
	unlock(r);
	return fresh;
}
