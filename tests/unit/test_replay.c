/* SPDX-License-Identifier: MIT */
/* Check suite for the replay window: kernel-style edge cases, a differential test against a naive set, threads. */
#include <check.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/replay.h"
#include "tests/unit/test_rand.h"

#define W WGT_REPLAY_WINDOW
#define REJ WGT_REJECT_AFTER_MESSAGES
/* One more than the window: the first distance from the top that is refused. */
#define LIM (W + 1)

#define DEFAULT_SEED 0x77676174655f7270ULL /* "wgate_rp" */

struct step {
	uint64_t counter;
	bool accept;
};

static void run_steps(const struct step *steps, size_t n)
{
	struct wgt_replay r;
	size_t i;

	wgt_replay_init(&r);
	for (i = 0; i < n; i++) {
		bool got = wgt_replay_check_and_update(&r, steps[i].counter);

		ck_assert_msg(got == steps[i].accept, "step %zu: counter %" PRIu64 " %s, expected %s",
			      i + 1, steps[i].counter, got ? "accepted" : "rejected",
			      steps[i].accept ? "accepted" : "rejected");
	}
}

/* The sequence the kernel's nonce counter selftest walks, so both agree case by case. */
START_TEST(test_kernel_sequence)
{
	static const struct step steps[] = {
		{ 0, true },  /* counter 0 is a valid first counter */
		{ 1, true },
		{ 1, false }, /* duplicate */
		{ 9, true },  /* gap */
		{ 8, true },  /* out of order, inside the window */
		{ 7, true },
		{ 7, false },
		{ LIM, true },
		{ LIM - 1, true },
		{ LIM - 1, false },
		{ LIM - 2, true },
		{ 2, true },  /* exactly W below the top: still inside */
		{ 2, false },
		{ LIM + 16, true },
		{ 3, false }, /* the top moved 16 on: 3 fell out */
		{ LIM + 16, false },
		{ LIM * 4, true },               /* big jump forward */
		{ LIM * 4 - (LIM - 1), true },   /* top - 8128: the oldest still accepted */
		{ 10, false },
		{ LIM * 4 - LIM, false },        /* top - 8129: the first refused */
		{ LIM * 4 - (LIM + 1), false },
		{ LIM * 4 - (LIM - 2), true },
		{ LIM * 4 + 1 - LIM, false },    /* already seen at step 18 */
		{ 0, false },
		{ REJ, false },                  /* the reject limit itself */
		{ REJ - 1, true },               /* the last usable counter */
		{ REJ, false },
		{ REJ - 1, false },
		{ REJ - 2, true },
		{ REJ + 1, false },
		{ REJ + 2, false },
		{ REJ - 2, false },
		{ REJ - 3, true },
		{ 0, false },
	};

	run_steps(steps, sizeof(steps) / sizeof(steps[0]));
}
END_TEST

/* Filling the whole window in either direction, then probing both of its ends. */
START_TEST(test_window_fill)
{
	struct wgt_replay r;
	uint64_t i;

	wgt_replay_init(&r);
	for (i = 1; i <= W; i++)
		ck_assert(wgt_replay_check_and_update(&r, i));
	ck_assert(wgt_replay_check_and_update(&r, 0)); /* top - 8128 */
	ck_assert(!wgt_replay_check_and_update(&r, 0));

	wgt_replay_init(&r);
	for (i = 2; i <= W + 1; i++)
		ck_assert(wgt_replay_check_and_update(&r, i));
	ck_assert(wgt_replay_check_and_update(&r, 1));
	ck_assert(!wgt_replay_check_and_update(&r, 0)); /* top - 8129 */

	/* Descending: every counter is a new low inside the window. */
	wgt_replay_init(&r);
	for (i = W + 1; i-- > 0;)
		ck_assert(wgt_replay_check_and_update(&r, i));

	wgt_replay_init(&r);
	for (i = W + 2; i-- > 1;)
		ck_assert(wgt_replay_check_and_update(&r, i));
	ck_assert(!wgt_replay_check_and_update(&r, 0));

	wgt_replay_init(&r);
	for (i = W + 1; i-- > 1;)
		ck_assert(wgt_replay_check_and_update(&r, i));
	ck_assert(wgt_replay_check_and_update(&r, W + 1));
	ck_assert(!wgt_replay_check_and_update(&r, 0));

	wgt_replay_init(&r);
	for (i = W + 1; i-- > 1;)
		ck_assert(wgt_replay_check_and_update(&r, i));
	ck_assert(wgt_replay_check_and_update(&r, 0));
	ck_assert(wgt_replay_check_and_update(&r, W + 1));
}
END_TEST

/* The edge measured from several tops, including ones on and beside word boundaries. */
START_TEST(test_window_edge)
{
	static const uint64_t tops[] = { W + 1, W + 2, 8191, 8192, 8193, 3 * 8192 - 1, 1ULL << 40, REJ - 1 };
	struct wgt_replay r;
	size_t i;

	for (i = 0; i < sizeof(tops) / sizeof(tops[0]); i++) {
		uint64_t top = tops[i];

		wgt_replay_init(&r);
		ck_assert(wgt_replay_check_and_update(&r, top));
		ck_assert_msg(!wgt_replay_check_and_update(&r, top - W - 1), "top %" PRIu64, top);
		ck_assert_msg(wgt_replay_check_and_update(&r, top - W), "top %" PRIu64, top);
		ck_assert(!wgt_replay_check_and_update(&r, top - W));
		ck_assert(wgt_replay_check_and_update(&r, top - 1));
		ck_assert(!wgt_replay_check_and_update(&r, top));
		ck_assert_uint_eq(r.greatest, top + 1);
	}
}
END_TEST

/*
 * Moving forward must clear exactly the words it skips: bits left over from
 * a previous turn of the ring would refuse new counters, and clearing the
 * old top word would let a replay through.
 */
START_TEST(test_advance_clears_skipped_words)
{
	struct wgt_replay r;
	uint64_t i, top;

	wgt_replay_init(&r);
	/* Every counter for three turns of the ring, in order: all new. */
	for (i = 0; i < 3 * WGT_REPLAY_BITS_TOTAL; i++)
		ck_assert(wgt_replay_check_and_update(&r, i));
	top = i - 1;
	/* Everything inside the window is a replay, everything below is too old. */
	for (i = 0; i <= top; i++)
		if (wgt_replay_check_and_update(&r, i))
			ck_abort_msg("counter %" PRIu64 " accepted twice", i);

	/* Jumps of 1..3 words forward, then fill the gap backwards. */
	for (i = 64; i <= 3 * 64; i += 64) {
		uint64_t c;

		ck_assert(wgt_replay_check_and_update(&r, top + i));
		for (c = top + i - 1; c > top + i - 64; c--)
			ck_assert(wgt_replay_check_and_update(&r, c));
		top += i;
	}
}
END_TEST

START_TEST(test_big_jumps)
{
	struct wgt_replay r;

	wgt_replay_init(&r);
	ck_assert(wgt_replay_check_and_update(&r, 5));
	/* Same ring bit as 5, one full turn later: must be new. */
	ck_assert(wgt_replay_check_and_update(&r, 5 + WGT_REPLAY_BITS_TOTAL));
	ck_assert(!wgt_replay_check_and_update(&r, 5));
	/* Same bit again, far beyond any turn count. */
	ck_assert(wgt_replay_check_and_update(&r, 5 + ((uint64_t)WGT_REPLAY_BITS_TOTAL << 30)));
	ck_assert(!wgt_replay_check_and_update(&r, 5 + WGT_REPLAY_BITS_TOTAL));
	ck_assert(wgt_replay_check_and_update(&r, 5 + ((uint64_t)WGT_REPLAY_BITS_TOTAL << 30) - 1));
	ck_assert(wgt_replay_check_and_update(&r, 5 + ((uint64_t)WGT_REPLAY_BITS_TOTAL << 30) - W));
	/* From 0 straight to the last usable counter, then one below the window. */
	wgt_replay_init(&r);
	ck_assert(wgt_replay_check_and_update(&r, 0));
	ck_assert(wgt_replay_check_and_update(&r, REJ - 1));
	ck_assert(!wgt_replay_check_and_update(&r, 0));
	ck_assert(wgt_replay_check_and_update(&r, REJ - 1 - W));
	ck_assert(!wgt_replay_check_and_update(&r, REJ - 2 - W));
	ck_assert(!wgt_replay_check_and_update(&r, UINT64_MAX));
}
END_TEST

START_TEST(test_init_forgets)
{
	struct wgt_replay r;
	uint64_t i;

	memset(&r, 0xa5, sizeof(r));
	wgt_replay_init(&r);
	ck_assert_uint_eq(r.greatest, 0);
	for (i = 0; i < WGT_REPLAY_BITS_TOTAL / 64; i++)
		ck_assert_uint_eq(r.bitmap[i], 0);
	for (i = 0; i < 100; i++)
		ck_assert(wgt_replay_check_and_update(&r, i));
	wgt_replay_init(&r);
	for (i = 0; i < 100; i++)
		ck_assert(wgt_replay_check_and_update(&r, i));
}
END_TEST

static uint64_t test_seed(void)
{
	return test_seed_named("test_replay", DEFAULT_SEED);
}

/*
 * The deliberately naive reference: one flag per counter ever accepted and
 * the highest accepted counter. Accept iff below the reject limit, not seen,
 * and not more than W below the highest accepted so far.
 */
struct naive {
	uint8_t *seen; /* indexed by counter - base */
	uint64_t base;
	uint64_t len;
	uint64_t highest;
	bool any;
};

static bool naive_check(struct naive *n, uint64_t counter)
{
	uint8_t *flag = &n->seen[counter - n->base];

	if (counter >= REJ || *flag || (n->any && counter + W < n->highest))
		return false;
	*flag = 1;
	if (!n->any || counter > n->highest)
		n->highest = counter;
	n->any = true;
	return true;
}

#define DOMAIN (1ULL << 21)
#define OPS 600000
#define RECENT 64

/*
 * Random traffic over a bounded domain of counters: in-order bursts,
 * reordering around the window edge, duplicates, small and large jumps and
 * stale counters. When the sender runs off the domain a fresh window starts
 * on a new base: 0, an arbitrary 48-bit base, or straddling the reject limit.
 */
START_TEST(test_differential)
{
	uint64_t seed = test_seed(), s = seed;
	uint64_t recent[RECENT] = { 0 };
	uint64_t ops = 0, accepted = 0, windows = 0, cur = 0;
	struct naive n = { .len = DOMAIN };
	struct wgt_replay r;
	unsigned int nrecent = 0;

	n.seen = calloc(DOMAIN, 1);
	ck_assert_ptr_nonnull(n.seen);

	while (ops < OPS) {
		uint64_t batch[64], nbatch = 0, k, kind;

		if (windows == 0 || cur - n.base >= DOMAIN - 64) {
			switch (windows++ % 3) {
			case 0:
				n.base = 0;
				break;
			case 1:
				n.base = rand_below(&s, 1ULL << 48);
				break;
			default:
				/* Ends past the reject limit, short of UINT64_MAX. */
				n.base = REJ - DOMAIN + 4096 + rand_below(&s, 1024);
				break;
			}
			memset(n.seen, 0, DOMAIN);
			n.any = false;
			n.highest = 0;
			nrecent = 0;
			cur = n.base;
			wgt_replay_init(&r);
		}

		kind = rand_below(&s, 100);
		if (kind < 30) { /* in-order burst */
			for (k = rand_below(&s, 16) + 1; k--;)
				batch[nbatch++] = cur++;
		} else if (kind < 55) { /* reordered, up to just past the window edge */
			for (k = rand_below(&s, 8) + 1; k--;) {
				uint64_t back = rand_below(&s, W + 64);

				batch[nbatch++] = cur - n.base > back ? cur - back : n.base;
			}
		} else if (kind < 65 && n.any) { /* exactly at and beside the edge */
			for (k = 0; k < 3; k++)
				if (n.highest - n.base + k >= W + 1)
					batch[nbatch++] = n.highest - W - 1 + k;
		} else if (kind < 75 && nrecent) { /* duplicates */
			for (k = rand_below(&s, 4) + 1; k--;)
				batch[nbatch++] = recent[rand_below(&s, nrecent < RECENT ? nrecent : RECENT)];
		} else if (kind < 87) { /* jump of up to three ring turns */
			cur += rand_below(&s, 3 * WGT_REPLAY_BITS_TOTAL) + 1;
		} else if (kind < 89) { /* long jump */
			cur += rand_below(&s, DOMAIN / 8);
		} else { /* anything old */
			for (k = rand_below(&s, 4) + 1; k--;)
				batch[nbatch++] = n.base + rand_below(&s, cur - n.base + 1);
		}

		for (k = 0; k < nbatch; k++) {
			uint64_t c = batch[k];
			bool want, got;

			if (c - n.base >= DOMAIN)
				continue;
			want = naive_check(&n, c);
			got = wgt_replay_check_and_update(&r, c);
			if (got != want)
				ck_abort_msg("seed 0x%016" PRIx64 " op %" PRIu64 ": counter %" PRIu64
					     " (highest %" PRIu64 ") %s, reference %s",
					     seed, ops, c, n.highest, got ? "accepted" : "rejected",
					     want ? "accepted" : "rejected");
			accepted += got;
			recent[nrecent++ % RECENT] = c;
			ops++;
		}
	}
	fprintf(stderr, "test_replay: %" PRIu64 " checks, %" PRIu64 " accepted, %" PRIu64 " windows\n",
		ops, accepted, windows);
	/* A sanity floor so a generator bug cannot turn this into a no-op. */
	ck_assert_uint_gt(accepted, OPS / 4);
	ck_assert_uint_gt(ops - accepted, OPS / 10);
	free(n.seen);
}
END_TEST

#define THREADS 4
#define ROUNDS 48
#define SPAN (W + 1) /* counters per round: exactly what one window holds */

struct feeder {
	pthread_t thread;
	struct wgt_replay *r;
	pthread_barrier_t *barrier;
	atomic_uint *hits; /* ROUNDS x SPAN */
	unsigned int index;
	uint64_t seed;
	uint64_t accepted;
};

/*
 * Thread i feeds its slice of each round's SPAN counters twice, in its own
 * random order; neighbouring slices overlap by half. Every counter of a round
 * stays inside the window whatever the interleaving, so each one must be
 * accepted exactly once across all threads. The barrier keeps a fast thread
 * from moving the window on before the others finish the round.
 */
static void *feed(void *arg)
{
	struct feeder *f = arg;
	uint64_t step = SPAN / (THREADS + 1), lo = f->index * step;
	uint64_t hi = f->index == THREADS - 1 ? SPAN : lo + 2 * step;
	uint64_t len = 2 * (hi - lo), *order, s = f->seed, i, round;

	order = malloc(len * sizeof(*order));
	if (!order)
		abort();
	for (round = 0; round < ROUNDS; round++) {
		/* Rounds sit three ring turns apart, at an offset that straddles words. */
		uint64_t base = round * 3 * WGT_REPLAY_BITS_TOTAL + 37;

		for (i = 0; i < len; i++)
			order[i] = lo + i / 2;
		for (i = len - 1; i > 0; i--) {
			uint64_t j = rand_below(&s, i + 1), t = order[i];

			order[i] = order[j];
			order[j] = t;
		}
		pthread_barrier_wait(f->barrier);
		for (i = 0; i < len; i++) {
			if (wgt_replay_check_and_update(f->r, base + order[i])) {
				atomic_fetch_add_explicit(&f->hits[round * SPAN + order[i]], 1,
							  memory_order_relaxed);
				f->accepted++;
			}
		}
	}
	free(order);
	return NULL;
}

START_TEST(test_threads)
{
	struct feeder feeders[THREADS];
	pthread_barrier_t barrier;
	struct wgt_replay r;
	atomic_uint *hits;
	uint64_t total = 0, i, s = test_seed();

	hits = calloc(ROUNDS * SPAN, sizeof(*hits));
	ck_assert_ptr_nonnull(hits);
	wgt_replay_init(&r);
	ck_assert_int_eq(pthread_barrier_init(&barrier, NULL, THREADS), 0);
	for (i = 0; i < THREADS; i++) {
		feeders[i] = (struct feeder){
			.r = &r, .barrier = &barrier, .hits = hits,
			.index = (unsigned int)i, .seed = next_rand(&s),
		};
		ck_assert_int_eq(pthread_create(&feeders[i].thread, NULL, feed, &feeders[i]), 0);
	}
	for (i = 0; i < THREADS; i++) {
		ck_assert_int_eq(pthread_join(feeders[i].thread, NULL), 0);
		total += feeders[i].accepted;
	}
	pthread_barrier_destroy(&barrier);

	for (i = 0; i < ROUNDS * SPAN; i++)
		if (atomic_load_explicit(&hits[i], memory_order_relaxed) != 1)
			ck_abort_msg("round %" PRIu64 " counter offset %" PRIu64 " accepted %u times",
				     i / SPAN, i % SPAN, atomic_load(&hits[i]));
	ck_assert_uint_eq(total, ROUNDS * SPAN);
	free(hits);
}
END_TEST

static Suite *replay_suite(void)
{
	Suite *s = suite_create("replay");
	TCase *tc = tcase_create("window");
	TCase *rnd = tcase_create("differential");
	TCase *thr = tcase_create("threads");

	tcase_add_test(tc, test_kernel_sequence);
	tcase_add_test(tc, test_window_fill);
	tcase_add_test(tc, test_window_edge);
	tcase_add_test(tc, test_advance_clears_skipped_words);
	tcase_add_test(tc, test_big_jumps);
	tcase_add_test(tc, test_init_forgets);
	suite_add_tcase(s, tc);

	tcase_add_test(rnd, test_differential);
	suite_add_tcase(s, rnd);

	/* Slow under ThreadSanitizer; the meson timeout still bounds it. */
	tcase_set_timeout(thr, 100);
	tcase_add_test(thr, test_threads);
	suite_add_tcase(s, thr);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(replay_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
