/* SPDX-License-Identifier: MIT */
/*
 * Whether a worker out of work busy-polls before it sleeps in poll(). A
 * sleeping worker is woken by whoever makes its descriptor readable, and a
 * wake-up across CPUs costs that waker an IPI: tens of microseconds on a
 * VM whose hypervisor delivers them (the development VM's pipe round trip
 * across CPUs is ~70 us against ~2 us on one CPU). A sending gateway pays
 * it inside its own sendmmsg() for every receiving worker it wakes, and a
 * TCP sender's ACKs pay it for the gateway's TUN reader. A worker that
 * keeps polling for up to the cap (--busy-poll-us) avoids that when the
 * next batch comes soon, and costs itself the time it spins when not.
 *
 * Whether to spin follows a score of recent spins: a spin that found work
 * (a hit) adds 2, one that did not (a miss, followed by the sleep) takes 1,
 * between 0 and WGT_BUSY_POLL_SCORE_MAX. The worker spins while the score
 * is above 0, that is while at least about one spin in three is a hit
 * (measured on a stream into one gateway: about one in two). At 0 it
 * sleeps at once but for every WGT_BUSY_POLL_PROBE-th idle period, which
 * spins to find out whether the traffic has changed. Sparse traffic thus
 * costs a spin of the cap per WGT_BUSY_POLL_PROBE packets at most, once the
 * score has run down.
 */
#ifndef WGT_GATEWAY_BUSY_POLL_H
#define WGT_GATEWAY_BUSY_POLL_H

#include <stdbool.h>
#include <stdint.h>

/*
 * The default cap (--busy-poll-us): off. In alternating pairs of runs on the
 * development VM a 50 us cap carried a single stream 11% faster (medians),
 * but the full benchmark on it measured single streams no faster and four
 * streams 7% slower, with the decrypting side's CPU per GB up 0.15 (see
 * perf/README.md). The most the option takes.
 */
#define WGT_BUSY_POLL_DEFAULT_US 0
#define WGT_BUSY_POLL_MAX_US 1000

/*
 * Napping (--nap-us), the other way to spare the sender its wake-up: where
 * a spin would start, the worker instead sleeps up to WGT_NAP_TRIES times
 * for the nap on a timer, waiting on its TUN queue and eventfd but not on
 * its UDP sockets, and looks at the sockets after each nap. Data that
 * arrives meanwhile wakes nobody: the sender's sendmmsg() finds no waiter
 * and pays no IPI, and the receiver's CPU, not the sender's, pays for the
 * timer. Unlike a spin, a nap leaves the CPU to other threads. The same
 * receiving-stream gate and hit score decide when it runs; a busy-poll cap
 * above 0 takes precedence. Measured on the development VM, alternating
 * fresh pairs of gateways with and without (6 runs each): single stream
 * 6.21 Gbit/s median against 5.83, the decrypting side's CPU up from
 * 0.72-0.90 to 0.85-0.93 s/GB; four streams unchanged or faster (see
 * perf/README.md for those and the full benchmark). The timer slack of a
 * worker that naps is set to WGT_NAP_SLACK_NS, so a nap lasts what it says.
 */
#define WGT_NAP_DEFAULT_US 50
#define WGT_NAP_MAX_US 1000
#define WGT_NAP_TRIES 4U
#define WGT_NAP_SLACK_NS 1000UL

/*
 * Only a worker that receives a stream spins, and one that receives more
 * than it sends: the bytes it decrypted and the bytes it encrypted, each
 * summed over idle periods with a decay of 1/8 per period (so about eight
 * periods' worth), the first at least this many. On the gateway that
 * encrypts a stream, where its ACKs come back, spinning took CPU from the
 * process producing the stream on the same CPU and carried no more; on the
 * one that decrypts it, the sender no longer paid a wake-up per batch.
 */
#define WGT_BUSY_POLL_MIN_RX 32768U

#define WGT_BUSY_POLL_SCORE_MAX 16U
#define WGT_BUSY_POLL_PROBE 16U

struct wgt_busy_poll {
	unsigned score;   /* starts at 0: a new worker probes first */
	unsigned idles;   /* idle periods, for the probes */
	uint64_t rx, tx;  /* decayed sums of bytes decrypted and encrypted */
	uint64_t rx_mark, tx_mark;  /* the worker's counters at the last idle period */
};

/*
 * At the start of an idle period, with the worker's byte counters: whether
 * it is receiving a stream, more than it sends (see WGT_BUSY_POLL_MIN_RX).
 */
static inline bool wgt_busy_poll_receiving(struct wgt_busy_poll *b, uint64_t rx_total,
					   uint64_t tx_total)
{
	b->rx = b->rx - b->rx / 8 + (rx_total - b->rx_mark);
	b->tx = b->tx - b->tx / 8 + (tx_total - b->tx_mark);
	b->rx_mark = rx_total;
	b->tx_mark = tx_total;
	return b->rx >= WGT_BUSY_POLL_MIN_RX && b->rx > b->tx;
}

/* Whether this idle period starts with a spin. */
static inline bool wgt_busy_poll_spin(struct wgt_busy_poll *b)
{
	return b->score || ++b->idles % WGT_BUSY_POLL_PROBE == 0;
}

/* After a spin: hit, it found work; else the worker went on to sleep. */
static inline void wgt_busy_poll_result(struct wgt_busy_poll *b, bool hit)
{
	if (hit)
		b->score = b->score + 2 > WGT_BUSY_POLL_SCORE_MAX ? WGT_BUSY_POLL_SCORE_MAX
								  : b->score + 2;
	else if (b->score)
		b->score--;
}

#endif
