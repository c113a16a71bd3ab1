/* SPDX-License-Identifier: MIT */
/* Check suite for the SPSC ring: edge cases, a differential test against a naive queue, two threads. */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/ring.h"
#include "tests/unit/test_rand.h"

#define DEFAULT_SEED 0x77676174655f7267ULL /* "wgate_rg" */

static uint64_t test_seed(void)
{
	return test_seed_named("test_ring", DEFAULT_SEED);
}

/* Fills an element with bytes derived from seq, so a torn or stale copy shows. */
static void make_elem(uint8_t *e, size_t size, uint64_t seq)
{
	uint64_t s = seq;
	size_t i;

	for (i = 0; i < size; i++) {
		if (i % 8 == 0)
			s = next_rand(&s) ^ seq;
		e[i] = (uint8_t)(s >> (8 * (i % 8)));
	}
}

static bool elem_is(const uint8_t *e, size_t size, uint64_t seq)
{
	uint8_t want[256];

	ck_assert_uint_le(size, sizeof(want));
	make_elem(want, size, seq);
	return memcmp(e, want, size) == 0;
}

START_TEST(test_args)
{
	static const size_t bad_caps[] = { 0, 1, 3, 6, 100, WGT_RING_CAPACITY_MAX + 1,
					   WGT_RING_CAPACITY_MAX * 2, SIZE_MAX };
	static const size_t bad_sizes[] = { 0, WGT_RING_ELEM_SIZE_MAX + 1, SIZE_MAX };
	struct wgt_ring *r;
	size_t i;

	for (i = 0; i < sizeof(bad_caps) / sizeof(bad_caps[0]); i++) {
		errno = 0;
		ck_assert_msg(!wgt_ring_new(bad_caps[i], 8), "capacity %zu accepted", bad_caps[i]);
		ck_assert_int_eq(errno, EINVAL);
	}
	for (i = 0; i < sizeof(bad_sizes) / sizeof(bad_sizes[0]); i++) {
		errno = 0;
		ck_assert_msg(!wgt_ring_new(16, bad_sizes[i]), "elem_size %zu accepted", bad_sizes[i]);
		ck_assert_int_eq(errno, EINVAL);
	}

	r = wgt_ring_new(2, 1);
	ck_assert_ptr_nonnull(r);
	ck_assert_uint_eq(wgt_ring_capacity(r), 2);
	ck_assert_uint_eq(wgt_ring_count(r), 0);
	wgt_ring_free(r);

	r = wgt_ring_new(4, WGT_RING_ELEM_SIZE_MAX);
	ck_assert_ptr_nonnull(r);
	ck_assert_uint_eq(wgt_ring_capacity(r), 4);
	wgt_ring_free(r);

	/* The largest ring: 2^24 slots of 16 bytes, untouched pages. */
	r = wgt_ring_new(WGT_RING_CAPACITY_MAX, 1);
	ck_assert_ptr_nonnull(r);
	ck_assert_uint_eq(wgt_ring_capacity(r), WGT_RING_CAPACITY_MAX);
	wgt_ring_free(r);

	wgt_ring_free(NULL);
}
END_TEST

/* Exactly capacity elements fit, then push and reserve refuse; FIFO order on the way out. */
START_TEST(test_fill_and_fifo)
{
	static const size_t caps[] = { 2, 4, 64, 1024 };
	uint8_t e[24];
	size_t c, i;

	for (c = 0; c < sizeof(caps) / sizeof(caps[0]); c++) {
		struct wgt_ring *r = wgt_ring_new(caps[c], sizeof(e));

		ck_assert_ptr_nonnull(r);
		for (i = 0; i < caps[c]; i++) {
			make_elem(e, sizeof(e), i);
			ck_assert_msg(wgt_ring_push(r, e), "capacity %zu: push %zu refused", caps[c], i);
			ck_assert_uint_eq(wgt_ring_count(r), i + 1);
		}
		make_elem(e, sizeof(e), 999999);
		ck_assert(!wgt_ring_push(r, e));
		ck_assert_ptr_null(wgt_ring_reserve(r));
		ck_assert_uint_eq(wgt_ring_count(r), caps[c]);

		for (i = 0; i < caps[c]; i++) {
			memset(e, 0, sizeof(e));
			ck_assert(wgt_ring_pop(r, e));
			ck_assert_msg(elem_is(e, sizeof(e), i), "capacity %zu: element %zu out of order",
				      caps[c], i);
			ck_assert_uint_eq(wgt_ring_count(r), caps[c] - i - 1);
		}
		memset(e, 0x5a, sizeof(e));
		ck_assert(!wgt_ring_pop(r, e));
		ck_assert_uint_eq(e[0], 0x5a); /* a failed pop leaves the buffer alone */
		ck_assert_ptr_null(wgt_ring_peek(r));

		/* One slot freed: exactly one push fits again. */
		for (i = 0; i < caps[c]; i++)
			ck_assert(wgt_ring_push(r, e));
		ck_assert(wgt_ring_pop(r, e));
		ck_assert(wgt_ring_push(r, e));
		ck_assert(!wgt_ring_push(r, e));
		wgt_ring_free(r);
	}
}
END_TEST

/* Many turns of a small ring with bursts of every size, odd element size. */
START_TEST(test_wraparound)
{
	struct wgt_ring *r = wgt_ring_new(8, 13);
	uint64_t in = 0, out = 0, cycle;
	uint8_t e[13];

	ck_assert_ptr_nonnull(r);
	for (cycle = 0; cycle < 100000; cycle++) {
		size_t k, burst = cycle % 9; /* 0..8 */

		for (k = 0; k < burst; k++) {
			make_elem(e, sizeof(e), in++);
			ck_assert(wgt_ring_push(r, e));
		}
		ck_assert_uint_eq(wgt_ring_count(r), burst);
		for (k = 0; k < burst; k++) {
			ck_assert(wgt_ring_pop(r, e));
			if (!elem_is(e, sizeof(e), out))
				ck_abort_msg("cycle %" PRIu64 ": element %" PRIu64 " corrupt", cycle, out);
			out++;
		}
		ck_assert(!wgt_ring_pop(r, e));
	}
	ck_assert_uint_eq(in, out);
	ck_assert_uint_gt(in, 8 * 1000);
	wgt_ring_free(r);
}
END_TEST

START_TEST(test_reserve_peek)
{
	struct wgt_ring *r = wgt_ring_new(4, 200);
	uint8_t e[200];
	const uint8_t *p;
	uint8_t *w, *w2;
	size_t i;

	ck_assert_ptr_nonnull(r);
	w = wgt_ring_reserve(r);
	ck_assert_ptr_nonnull(w);
	ck_assert_uint_eq((uintptr_t)w % WGT_RING_ALIGN, 0);
	ck_assert_ptr_eq(wgt_ring_reserve(r), w); /* idempotent until commit */
	make_elem(w, 200, 7);
	/* Not visible before commit. */
	ck_assert_ptr_null(wgt_ring_peek(r));
	ck_assert_uint_eq(wgt_ring_count(r), 0);
	wgt_ring_commit(r);
	ck_assert_uint_eq(wgt_ring_count(r), 1);

	p = wgt_ring_peek(r);
	ck_assert_ptr_eq(p, w);
	ck_assert(elem_is(p, 200, 7));
	ck_assert_ptr_eq(wgt_ring_peek(r), p); /* idempotent until release */
	ck_assert_uint_eq(wgt_ring_count(r), 1);
	wgt_ring_release(r);
	ck_assert_uint_eq(wgt_ring_count(r), 0);
	ck_assert_ptr_null(wgt_ring_peek(r));

	/* The next slot is the neighbour, 16-byte aligned, and a full ring reserves nothing. */
	w2 = wgt_ring_reserve(r);
	ck_assert_ptr_eq(w2, w + 208);
	make_elem(w2, 200, 8);
	wgt_ring_commit(r);
	for (i = 9; i < 12; i++) {
		make_elem(e, 200, i);
		ck_assert(wgt_ring_push(r, e));
	}
	ck_assert_ptr_null(wgt_ring_reserve(r));

	/* Mixed: peek the oldest while a reserved slot is being filled. */
	p = wgt_ring_peek(r);
	ck_assert_ptr_eq(p, w2);
	ck_assert(elem_is(p, 200, 8));
	wgt_ring_release(r);
	w = wgt_ring_reserve(r);
	ck_assert_ptr_eq(w, w2); /* wrapped onto the slot just released */
	make_elem(w, 200, 12);
	p = wgt_ring_peek(r);
	ck_assert(elem_is(p, 200, 9));
	wgt_ring_commit(r);
	wgt_ring_release(r);
	for (i = 10; i <= 12; i++) {
		ck_assert(wgt_ring_pop(r, e));
		ck_assert_msg(elem_is(e, 200, i), "element %zu", i);
	}
	ck_assert(!wgt_ring_pop(r, e));
	wgt_ring_free(r);
}
END_TEST

#define DIFF_OPS 1000000
#define DIFF_ELEM 40

/*
 * Random push/pop traffic, through both the copying and the zero-copy
 * calls, against the deliberately naive reference: an array of every
 * sequence number ever queued and two indices into it. Phases bias the
 * traffic towards filling or draining so both ends are hit often.
 */
START_TEST(test_differential)
{
	static const size_t caps[] = { 2, 16, 256 };
	uint64_t seed = test_seed(), s = seed;
	uint64_t *ref, ops = 0, fulls = 0, empties = 0;
	uint8_t e[DIFF_ELEM];
	size_t c;

	ref = malloc(DIFF_OPS * sizeof(*ref));
	ck_assert_ptr_nonnull(ref);
	for (c = 0; c < sizeof(caps) / sizeof(caps[0]); c++) {
		struct wgt_ring *r = wgt_ring_new(caps[c], DIFF_ELEM);
		size_t rin = 0, rout = 0, cap = caps[c];
		uint64_t push_pct = 50, next_seq = 0;
		uint64_t end = (c + 1) * DIFF_OPS / (sizeof(caps) / sizeof(caps[0]));

		ck_assert_ptr_nonnull(r);
		for (; ops < end; ops++) {
			uint64_t roll = rand_below(&s, 100);
			bool ref_full = rin - rout == cap, ref_empty = rin == rout;

			if (ops % 1000 == 0)
				push_pct = (uint64_t[]){ 10, 50, 90, 55, 45 }[rand_below(&s, 5)];
			if (roll < push_pct) {
				bool ok;

				if (roll & 1) {
					make_elem(e, DIFF_ELEM, next_seq);
					ok = wgt_ring_push(r, e);
				} else {
					void *w = wgt_ring_reserve(r);

					ok = w != NULL;
					if (ok) {
						make_elem(w, DIFF_ELEM, next_seq);
						wgt_ring_commit(r);
					}
				}
				if (ok == ref_full)
					ck_abort_msg("seed 0x%016" PRIx64 " op %" PRIu64 ": push %s, reference %s",
						     seed, ops, ok ? "accepted" : "refused",
						     ref_full ? "full" : "has room");
				if (ok)
					ref[rin++] = next_seq++;
				fulls += !ok;
			} else {
				const uint8_t *got = NULL;

				if (roll & 1) {
					if (wgt_ring_pop(r, e))
						got = e;
				} else {
					got = wgt_ring_peek(r);
				}
				if ((got != NULL) == ref_empty)
					ck_abort_msg("seed 0x%016" PRIx64 " op %" PRIu64 ": pop %s, reference %s",
						     seed, ops, got ? "returned" : "found nothing",
						     ref_empty ? "empty" : "not empty");
				if (got) {
					if (!elem_is(got, DIFF_ELEM, ref[rout]))
						ck_abort_msg("seed 0x%016" PRIx64 " op %" PRIu64
							     ": wrong element, want seq %" PRIu64,
							     seed, ops, ref[rout]);
					if (got != e)
						wgt_ring_release(r);
					rout++;
				}
				empties += !got;
			}
			if (wgt_ring_count(r) != rin - rout)
				ck_abort_msg("seed 0x%016" PRIx64 " op %" PRIu64 ": count %zu, reference %zu",
					     seed, ops, wgt_ring_count(r), rin - rout);
		}
		wgt_ring_free(r);
	}
	fprintf(stderr, "test_ring: %" PRIu64 " ops, %" PRIu64 " refused pushes, %" PRIu64 " empty pops\n",
		ops, fulls, empties);
	/* A sanity floor so a generator bug cannot turn this into a no-op. */
	ck_assert_uint_eq(ops, DIFF_OPS);
	ck_assert_uint_gt(fulls, 1000);
	ck_assert_uint_gt(empties, 1000);
	free(ref);
}
END_TEST

/* A message about the size the gateway passes between worker and control threads. */
struct msg {
	uint64_t seq;
	uint8_t body[184];
};

struct side {
	struct wgt_ring *r;
	uint64_t n;
	uint64_t seed;
	uint64_t stalls;	/* full (producer) or empty (consumer) */
	uint64_t done;		/* elements moved */
	char error[160];	/* the first failure, reported by the main thread */
};

static void *produce(void *arg)
{
	struct side *p = arg;
	uint64_t s = p->seed, seq = 0;
	struct msg m;

	while (seq < p->n) {
		uint64_t burst = rand_below(&s, 2 * wgt_ring_capacity(p->r)) + 1;

		while (burst-- && seq < p->n) {
			bool ok;

			if (seq & 1) {
				m.seq = seq;
				make_elem(m.body, sizeof(m.body), seq);
				ok = wgt_ring_push(p->r, &m);
			} else {
				struct msg *w = wgt_ring_reserve(p->r);

				ok = w != NULL;
				if (ok) {
					w->seq = seq;
					make_elem(w->body, sizeof(w->body), seq);
					wgt_ring_commit(p->r);
				}
			}
			if (ok) {
				seq++;
			} else {
				p->stalls++;
				sched_yield();
			}
		}
		if (rand_below(&s, 4) == 0)
			sched_yield(); /* let the consumer catch up now and then: empty rings too */
	}
	p->done = seq;
	return NULL;
}

static void *consume(void *arg)
{
	struct side *c = arg;
	uint64_t s = c->seed, want = 0;
	struct msg m;

	while (want < c->n) {
		uint64_t burst = rand_below(&s, 2 * wgt_ring_capacity(c->r)) + 1;

		while (burst-- && want < c->n) {
			const struct msg *got = NULL;
			bool peeked = rand_below(&s, 2);

			if (peeked) {
				got = wgt_ring_peek(c->r);
			} else if (wgt_ring_pop(c->r, &m)) {
				got = &m;
			}
			if (!got) {
				c->stalls++;
				sched_yield();
				continue;
			}
			if (got->seq != want || !elem_is(got->body, sizeof(got->body), want)) {
				snprintf(c->error, sizeof(c->error),
					 "got seq %" PRIu64 " (body %s), want %" PRIu64, got->seq,
					 elem_is(got->body, sizeof(got->body), got->seq) ? "intact" : "corrupt",
					 want);
				c->done = want;
				return NULL;
			}
			if (peeked)
				wgt_ring_release(c->r);
			want++;
		}
		if (wgt_ring_count(c->r) > wgt_ring_capacity(c->r)) {
			snprintf(c->error, sizeof(c->error), "count %zu above capacity", wgt_ring_count(c->r));
			break;
		}
	}
	c->done = want;
	return NULL;
}

static void run_threads(size_t capacity, uint64_t n, uint64_t seed)
{
	struct wgt_ring *r = wgt_ring_new(capacity, sizeof(struct msg));
	struct side p = { .r = r, .n = n, .seed = seed };
	struct side c = { .r = r, .n = n, .seed = seed ^ 0xc0ffee };
	pthread_t pt, ct;

	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(pthread_create(&ct, NULL, consume, &c), 0);
	ck_assert_int_eq(pthread_create(&pt, NULL, produce, &p), 0);
	ck_assert_int_eq(pthread_join(pt, NULL), 0);
	ck_assert_int_eq(pthread_join(ct, NULL), 0);

	fprintf(stderr, "test_ring: capacity %zu: %" PRIu64 " messages, %" PRIu64 " full stalls, %" PRIu64
		" empty stalls\n", capacity, c.done, p.stalls, c.stalls);
	ck_assert_msg(!c.error[0], "capacity %zu seed 0x%016" PRIx64 ": %s", capacity, seed, c.error);
	/* In order and exactly once: the consumer saw 0..n-1 and nothing is left over. */
	ck_assert_uint_eq(p.done, n);
	ck_assert_uint_eq(c.done, n);
	ck_assert_uint_eq(wgt_ring_count(r), 0);
	wgt_ring_free(r);
}

START_TEST(test_threads)
{
	uint64_t seed = test_seed();

	run_threads(64, 2000000, seed);
	run_threads(2, 200000, seed + 1);
}
END_TEST

#ifndef NDEBUG
static void *push_once(void *arg)
{
	uint64_t v = 1;

	return wgt_ring_push(arg, &v) ? arg : NULL;
}

/* Runs misuse() in a child and expects the contract assertion to abort it. */
static void expect_abort(void (*misuse)(struct wgt_ring *r), struct wgt_ring *r)
{
	int status;
	pid_t pid;

	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		/* The assertion message is expected; keep the log clean. */
		if (!freopen("/dev/null", "w", stderr))
			_exit(3);
		misuse(r);
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
		      "misuse was not caught (status 0x%x)", status);
}

static void second_producer(struct wgt_ring *r)
{
	uint64_t v = 2;

	wgt_ring_push(r, &v);
}

static void commit_unreserved(struct wgt_ring *r)
{
	wgt_ring_commit(r);
}
#endif

/* Debug builds catch a second producer and an unpaired commit. */
START_TEST(test_contract)
{
#ifndef NDEBUG
	struct wgt_ring *r = wgt_ring_new(4, 8), *q = wgt_ring_new(4, 8);
	pthread_t t;
	void *ret;

	ck_assert_ptr_nonnull(r);
	ck_assert_ptr_nonnull(q);
	/* Another thread becomes r's producer; the child's main thread then tries too. */
	ck_assert_int_eq(pthread_create(&t, NULL, push_once, r), 0);
	ck_assert_int_eq(pthread_join(t, &ret), 0);
	ck_assert_ptr_eq(ret, r);
	expect_abort(second_producer, r);
	expect_abort(commit_unreserved, q);
	wgt_ring_free(r);
	wgt_ring_free(q);
#else
	fprintf(stderr, "test_ring: NDEBUG build, contract assertions compiled out\n");
#endif
}
END_TEST

static Suite *ring_suite(void)
{
	Suite *s = suite_create("ring");
	TCase *tc = tcase_create("ring");
	TCase *rnd = tcase_create("differential");
	TCase *thr = tcase_create("threads");

	tcase_add_test(tc, test_args);
	tcase_add_test(tc, test_fill_and_fifo);
	tcase_add_test(tc, test_wraparound);
	tcase_add_test(tc, test_reserve_peek);
	tcase_add_test(tc, test_contract);
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
	SRunner *sr = srunner_create(ring_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
