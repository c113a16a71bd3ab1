/* SPDX-License-Identifier: MIT */
/* Check suite for the per-peer timer state machine, driven by a fake clock. */
#include <check.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "crypto/messages.h"
#include "crypto/timers.h"

#define S WGT_NSEC_PER_SEC
#define MS WGT_NSEC_PER_MSEC
#define T0 (1000 * S) /* the fake clock's start: any monotonic time will do */
#define JMAX WGT_REKEY_TIMEOUT_JITTER_MAX
#define SEED 0x77676174655f746dULL

#define RETRANSMIT WGT_TIMER_ID_RETRANSMIT_HANDSHAKE
#define KEEPALIVE WGT_TIMER_ID_SEND_KEEPALIVE
#define NEW_HANDSHAKE WGT_TIMER_ID_NEW_HANDSHAKE
#define ZERO_KEYS WGT_TIMER_ID_ZERO_KEY_MATERIAL
#define PERSISTENT WGT_TIMER_ID_PERSISTENT_KEEPALIVE

static unsigned int ev(struct wgt_timers *t, enum wgt_timer_event e, uint64_t now)
{
	return wgt_timers_event(t, e, now);
}

/* What the gateway reports once it has put an initiation on the wire. */
static void sent_initiation(struct wgt_timers *t, uint64_t now)
{
	ck_assert_uint_eq(ev(t, WGT_TIMER_EV_AUTH_TRAVERSAL, now), 0);
	ck_assert_uint_eq(ev(t, WGT_TIMER_EV_AUTH_SENT, now), 0);
	ck_assert_uint_eq(ev(t, WGT_TIMER_EV_HANDSHAKE_INITIATED, now), 0);
}

/* What the gateway reports once it has sent a keepalive. */
static void sent_keepalive(struct wgt_timers *t, uint64_t now)
{
	ck_assert_uint_eq(ev(t, WGT_TIMER_EV_AUTH_TRAVERSAL, now), 0);
	ck_assert_uint_eq(ev(t, WGT_TIMER_EV_AUTH_SENT, now), 0);
}

START_TEST(test_init)
{
	struct wgt_timers t;
	int id;

	memset(&t, 0xa5, sizeof(t));
	wgt_timers_init(&t, SEED);
	for (id = 0; id < WGT_TIMER_ID_COUNT; id++)
		ck_assert_uint_eq(t.deadline[id], 0);
	ck_assert_uint_eq(wgt_timers_next_deadline(&t), 0);
	ck_assert(wgt_timers_may_send_initiation(&t, 0)); /* even at time 0: nothing sent yet */
	ck_assert_uint_eq(wgt_timers_expire(&t, T0), 0);
	ck_assert_uint_eq(t.handshake_attempts, 0);
	ck_assert_uint_eq(t.persistent_keepalive_interval, 0);
}
END_TEST

START_TEST(test_retransmit)
{
	struct wgt_timers t;
	uint64_t d;

	wgt_timers_init(&t, SEED);
	ck_assert_uint_eq(ev(&t, WGT_TIMER_EV_WANT_HANDSHAKE, T0), WGT_TIMER_SEND_INITIATION);
	/* Nothing is armed until the initiation is reported sent. */
	ck_assert_uint_eq(wgt_timers_next_deadline(&t), 0);
	sent_initiation(&t, T0);

	d = t.deadline[RETRANSMIT];
	ck_assert_uint_ge(d, T0 + WGT_REKEY_TIMEOUT);
	ck_assert_uint_lt(d, T0 + WGT_REKEY_TIMEOUT + JMAX);
	ck_assert_uint_eq(wgt_timers_next_deadline(&t), d);
	ck_assert_uint_eq(wgt_timers_expire(&t, d - 1), 0);
	ck_assert_uint_eq(wgt_timers_expire(&t, d),
			  WGT_TIMER_CLEAR_ENDPOINT_SRC | WGT_TIMER_SEND_INITIATION);
	ck_assert_uint_eq(t.handshake_attempts, 1);
	/* Re-armed only by the next reported initiation, as in the kernel. */
	ck_assert_uint_eq(wgt_timers_next_deadline(&t), 0);
	sent_initiation(&t, d);
	ck_assert_uint_ge(t.deadline[RETRANSMIT], d + WGT_REKEY_TIMEOUT);
	ck_assert_uint_lt(t.deadline[RETRANSMIT], d + WGT_REKEY_TIMEOUT + JMAX);
}
END_TEST

/* Jitter stays in [0, JMAX), covers that range, and is a function of the seed alone. */
START_TEST(test_jitter)
{
	uint64_t min_r = UINT64_MAX, max_r = 0, min_n = UINT64_MAX, max_n = 0, seed;

	for (seed = 0; seed < 2000; seed++) {
		struct wgt_timers t, u;
		uint64_t jr, jn;

		wgt_timers_init(&t, seed);
		ev(&t, WGT_TIMER_EV_HANDSHAKE_INITIATED, T0);
		ev(&t, WGT_TIMER_EV_DATA_SENT, T0);
		jr = t.deadline[RETRANSMIT] - T0 - WGT_REKEY_TIMEOUT;
		jn = t.deadline[NEW_HANDSHAKE] - T0 - WGT_KEEPALIVE_TIMEOUT - WGT_REKEY_TIMEOUT;
		ck_assert_uint_lt(jr, JMAX);
		ck_assert_uint_lt(jn, JMAX);
		min_r = jr < min_r ? jr : min_r;
		max_r = jr > max_r ? jr : max_r;
		min_n = jn < min_n ? jn : min_n;
		max_n = jn > max_n ? jn : max_n;

		wgt_timers_init(&u, seed);
		ev(&u, WGT_TIMER_EV_HANDSHAKE_INITIATED, T0);
		ev(&u, WGT_TIMER_EV_DATA_SENT, T0);
		ck_assert_mem_eq(t.deadline, u.deadline, sizeof(t.deadline));
	}
	ck_assert_uint_lt(min_r, JMAX / 100);
	ck_assert_uint_gt(max_r, JMAX - JMAX / 100);
	ck_assert_uint_lt(min_n, JMAX / 100);
	ck_assert_uint_gt(max_n, JMAX - JMAX / 100);
}
END_TEST

/*
 * No answer ever: the first initiation plus MAX_TIMER_HANDSHAKES + 1
 * retransmits (20 in all, the kernel's count), then the give-up: staged
 * packets dropped, the owed keepalive cancelled, key material wiped
 * 3 * REJECT_AFTER_TIME later, and silence after that.
 */
START_TEST(test_give_up)
{
	struct wgt_timers t;
	unsigned int initiations = 1, a, guard;
	uint64_t now = T0;

	wgt_timers_init(&t, SEED);
	ck_assert_uint_eq(ev(&t, WGT_TIMER_EV_WANT_HANDSHAKE, now), WGT_TIMER_SEND_INITIATION);
	sent_initiation(&t, now);
	for (guard = 0; guard < 100; guard++) {
		now = wgt_timers_next_deadline(&t);
		ck_assert_uint_eq(now, t.deadline[RETRANSMIT]);
		a = wgt_timers_expire(&t, now);
		if (!(a & WGT_TIMER_SEND_INITIATION))
			break;
		ck_assert_uint_eq(a, WGT_TIMER_CLEAR_ENDPOINT_SRC | WGT_TIMER_SEND_INITIATION);
		ck_assert_uint_eq(t.handshake_attempts, initiations);
		sent_initiation(&t, now);
		initiations++;
		/* Something is owed a keepalive when the give-up comes. */
		if (initiations == WGT_MAX_TIMER_HANDSHAKES + 2)
			ev(&t, WGT_TIMER_EV_DATA_RECEIVED, now);
	}
	ck_assert_uint_eq(initiations, WGT_MAX_TIMER_HANDSHAKES + 2);
	ck_assert_uint_eq(a, WGT_TIMER_CLEAR_STAGED);
	ck_assert_uint_ge(now - T0, (WGT_MAX_TIMER_HANDSHAKES + 2) * WGT_REKEY_TIMEOUT);
	ck_assert_uint_lt(now - T0, (WGT_MAX_TIMER_HANDSHAKES + 2) * (WGT_REKEY_TIMEOUT + JMAX));

	ck_assert_uint_eq(t.deadline[RETRANSMIT], 0);
	ck_assert_uint_eq(t.deadline[KEEPALIVE], 0);
	ck_assert_uint_eq(t.deadline[ZERO_KEYS], now + 540 * S);
	ck_assert_uint_eq(wgt_timers_next_deadline(&t), now + 540 * S);
	ck_assert_uint_eq(wgt_timers_expire(&t, now + 540 * S - 1), 0);
	ck_assert_uint_eq(wgt_timers_expire(&t, now + 540 * S), WGT_TIMER_ZERO_KEYS);
	ck_assert_uint_eq(wgt_timers_next_deadline(&t), 0);

	/* A new request starts a new series. */
	ck_assert_uint_eq(ev(&t, WGT_TIMER_EV_WANT_HANDSHAKE, now + 600 * S), WGT_TIMER_SEND_INITIATION);
	ck_assert_uint_eq(t.handshake_attempts, 0);
}
END_TEST

/* A wipe already scheduled by a derived session is not pushed back by the give-up. */
START_TEST(test_give_up_keeps_pending_wipe)
{
	struct wgt_timers t;
	uint64_t now = T0;

	wgt_timers_init(&t, SEED);
	ev(&t, WGT_TIMER_EV_SESSION_DERIVED, T0);
	ev(&t, WGT_TIMER_EV_WANT_HANDSHAKE, now);
	sent_initiation(&t, now);
	for (;;) {
		unsigned int a;

		now = t.deadline[RETRANSMIT];
		ck_assert_uint_ne(now, 0);
		a = wgt_timers_expire(&t, now);
		if (a == WGT_TIMER_CLEAR_STAGED)
			break;
		sent_initiation(&t, now);
	}
	ck_assert_uint_lt(now, T0 + 540 * S);
	ck_assert_uint_eq(t.deadline[ZERO_KEYS], T0 + 540 * S);
}
END_TEST

START_TEST(test_complete_cancels_retransmit)
{
	struct wgt_timers t;
	uint64_t now = T0;
	int i;

	wgt_timers_init(&t, SEED);
	ev(&t, WGT_TIMER_EV_WANT_HANDSHAKE, now);
	sent_initiation(&t, now);
	for (i = 0; i < 2; i++) {
		now = t.deadline[RETRANSMIT];
		ck_assert(wgt_timers_expire(&t, now) & WGT_TIMER_SEND_INITIATION);
		sent_initiation(&t, now);
	}
	ck_assert_uint_eq(t.handshake_attempts, 2);
	ck_assert_uint_eq(ev(&t, WGT_TIMER_EV_HANDSHAKE_COMPLETE, now + S), 0);
	ck_assert_uint_eq(t.deadline[RETRANSMIT], 0);
	ck_assert_uint_eq(t.handshake_attempts, 0);
	ck_assert_uint_eq(wgt_timers_next_deadline(&t), 0);
	ck_assert_uint_eq(wgt_timers_expire(&t, now + 60 * S), 0);
}
END_TEST

START_TEST(test_keepalive_after_receive)
{
	struct wgt_timers t;
	uint64_t t1 = T0 + 100 * S, t2 = T0 + 200 * S;

	wgt_timers_init(&t, SEED);
	ev(&t, WGT_TIMER_EV_AUTH_RECEIVED, T0);
	ev(&t, WGT_TIMER_EV_DATA_RECEIVED, T0);
	ck_assert_uint_eq(t.deadline[KEEPALIVE], T0 + 10 * S);
	ck_assert_uint_eq(wgt_timers_expire(&t, T0 + 10 * S - 1), 0);
	ck_assert_uint_eq(wgt_timers_expire(&t, T0 + 10 * S), WGT_TIMER_SEND_KEEPALIVE);
	ck_assert_uint_eq(wgt_timers_next_deadline(&t), 0);

	/* Anything sent in the meantime already told the peer we are alive. */
	ev(&t, WGT_TIMER_EV_DATA_RECEIVED, t1);
	ev(&t, WGT_TIMER_EV_AUTH_SENT, t1 + 3 * S);
	ck_assert_uint_eq(wgt_timers_expire(&t, t1 + 10 * S), 0);

	/* More data while a keepalive is owed: one more after it, no later. */
	ev(&t, WGT_TIMER_EV_DATA_RECEIVED, t2);
	ev(&t, WGT_TIMER_EV_DATA_RECEIVED, t2 + 4 * S);
	ev(&t, WGT_TIMER_EV_DATA_RECEIVED, t2 + 5 * S);
	ck_assert_uint_eq(t.deadline[KEEPALIVE], t2 + 10 * S);
	ck_assert_uint_eq(wgt_timers_expire(&t, t2 + 10 * S), WGT_TIMER_SEND_KEEPALIVE);
	ck_assert_uint_eq(t.deadline[KEEPALIVE], t2 + 20 * S);
	ck_assert_uint_eq(wgt_timers_expire(&t, t2 + 20 * S), WGT_TIMER_SEND_KEEPALIVE);
	ck_assert_uint_eq(wgt_timers_next_deadline(&t), 0);
}
END_TEST

START_TEST(test_new_handshake_after_send)
{
	struct wgt_timers t;
	uint64_t d, t1 = T0 + 100 * S, t2 = T0 + 200 * S;

	wgt_timers_init(&t, SEED);
	ev(&t, WGT_TIMER_EV_DATA_SENT, T0);
	d = t.deadline[NEW_HANDSHAKE];
	ck_assert_uint_ge(d, T0 + 15 * S);
	ck_assert_uint_lt(d, T0 + 15 * S + JMAX);
	/* Later sends do not push it out: it measures silence since the first. */
	ev(&t, WGT_TIMER_EV_DATA_SENT, T0 + 5 * S);
	ck_assert_uint_eq(t.deadline[NEW_HANDSHAKE], d);
	t.handshake_attempts = 7; /* left over from an older series */
	ck_assert_uint_eq(wgt_timers_expire(&t, d - 1), 0);
	ck_assert_uint_eq(wgt_timers_expire(&t, d),
			  WGT_TIMER_CLEAR_ENDPOINT_SRC | WGT_TIMER_SEND_INITIATION);
	ck_assert_uint_eq(t.handshake_attempts, 0);

	/* Any authenticated reply cancels it. */
	ev(&t, WGT_TIMER_EV_DATA_SENT, t1);
	ev(&t, WGT_TIMER_EV_AUTH_RECEIVED, t1 + 14 * S);
	ck_assert_uint_eq(wgt_timers_expire(&t, t1 + 20 * S), 0);

	/* An initiation sent just before: the endpoint is still reset, the initiation waits. */
	ev(&t, WGT_TIMER_EV_DATA_SENT, t2);
	d = t.deadline[NEW_HANDSHAKE];
	sent_initiation(&t, d - S);
	ck_assert_uint_eq(wgt_timers_expire(&t, d), WGT_TIMER_CLEAR_ENDPOINT_SRC);
}
END_TEST

START_TEST(test_zero_keys)
{
	struct wgt_timers t;

	ck_assert_uint_eq(3 * WGT_REJECT_AFTER_TIME, 540 * S);
	wgt_timers_init(&t, SEED);
	ev(&t, WGT_TIMER_EV_SESSION_DERIVED, T0);
	ck_assert_uint_eq(t.deadline[ZERO_KEYS], T0 + 540 * S);
	ck_assert_uint_eq(wgt_timers_expire(&t, T0 + 540 * S - 1), 0);
	ck_assert_uint_eq(wgt_timers_expire(&t, T0 + 540 * S), WGT_TIMER_ZERO_KEYS);
	ck_assert_uint_eq(wgt_timers_next_deadline(&t), 0);

	/* Each new session pushes the wipe back. */
	wgt_timers_init(&t, SEED);
	ev(&t, WGT_TIMER_EV_SESSION_DERIVED, T0);
	ev(&t, WGT_TIMER_EV_SESSION_DERIVED, T0 + 100 * S);
	ck_assert_uint_eq(wgt_timers_expire(&t, T0 + 540 * S), 0);
	ck_assert_uint_eq(wgt_timers_expire(&t, T0 + 640 * S - 1), 0);
	ck_assert_uint_eq(wgt_timers_expire(&t, T0 + 640 * S), WGT_TIMER_ZERO_KEYS);
	ck_assert_uint_eq(wgt_timers_next_deadline(&t), 0);
}
END_TEST

START_TEST(test_persistent_keepalive)
{
	struct wgt_timers t;
	uint64_t now = T0, prev;
	int i;

	wgt_timers_init(&t, SEED);
	/* Switching it on sends one at once; its traversal arms the cadence. */
	ck_assert_uint_eq(wgt_timers_set_persistent_keepalive(&t, 25, now), WGT_TIMER_SEND_KEEPALIVE);
	ck_assert_uint_eq(wgt_timers_next_deadline(&t), 0);
	sent_keepalive(&t, now);
	for (i = 0; i < 10; i++) {
		prev = now;
		now = wgt_timers_next_deadline(&t);
		ck_assert_uint_eq(now, prev + 25 * S);
		ck_assert_uint_eq(wgt_timers_expire(&t, now - 1), 0);
		ck_assert_uint_eq(wgt_timers_expire(&t, now), WGT_TIMER_SEND_KEEPALIVE);
		sent_keepalive(&t, now);
	}
	/* Other traffic either way counts: the interval runs from the last traversal. */
	ev(&t, WGT_TIMER_EV_AUTH_TRAVERSAL, now + 10 * S);
	ck_assert_uint_eq(t.deadline[PERSISTENT], now + 35 * S);

	/* Same or another nonzero interval: no extra keepalive, applies from the next traversal. */
	ck_assert_uint_eq(wgt_timers_set_persistent_keepalive(&t, 25, now + 11 * S), 0);
	ck_assert_uint_eq(wgt_timers_set_persistent_keepalive(&t, 10, now + 11 * S), 0);
	ck_assert_uint_eq(t.deadline[PERSISTENT], now + 35 * S);
	ev(&t, WGT_TIMER_EV_AUTH_TRAVERSAL, now + 12 * S);
	ck_assert_uint_eq(t.deadline[PERSISTENT], now + 22 * S);

	/* Off: disarmed at once and nothing re-arms it. */
	ck_assert_uint_eq(wgt_timers_set_persistent_keepalive(&t, 0, now + 13 * S), 0);
	ck_assert_uint_eq(wgt_timers_next_deadline(&t), 0);
	ev(&t, WGT_TIMER_EV_AUTH_TRAVERSAL, now + 14 * S);
	ck_assert_uint_eq(wgt_timers_next_deadline(&t), 0);

	/* The largest interval `wg` accepts. */
	ck_assert_uint_eq(wgt_timers_set_persistent_keepalive(&t, UINT16_MAX, now + 15 * S),
			  WGT_TIMER_SEND_KEEPALIVE);
	ev(&t, WGT_TIMER_EV_AUTH_TRAVERSAL, now + 15 * S);
	ck_assert_uint_eq(t.deadline[PERSISTENT], now + 15 * S + UINT16_MAX * S);
}
END_TEST

START_TEST(test_persistent_keepalive_while_stopped)
{
	struct wgt_timers t;

	wgt_timers_init(&t, SEED);
	ev(&t, WGT_TIMER_EV_STOP, T0);
	ck_assert_uint_eq(wgt_timers_set_persistent_keepalive(&t, 25, T0), 0);
	ev(&t, WGT_TIMER_EV_AUTH_TRAVERSAL, T0);
	ck_assert_uint_eq(wgt_timers_next_deadline(&t), 0);
	/* Coming up with an interval configured sends one, like the kernel's wg_open. */
	ck_assert_uint_eq(ev(&t, WGT_TIMER_EV_START, T0 + S), WGT_TIMER_SEND_KEEPALIVE);
	ck_assert_uint_eq(ev(&t, WGT_TIMER_EV_START, T0 + S), 0);
	sent_keepalive(&t, T0 + S);
	ck_assert_uint_eq(wgt_timers_next_deadline(&t), T0 + 26 * S);
}
END_TEST

START_TEST(test_rate_limit)
{
	struct wgt_timers t;
	uint64_t t1 = T0 + 100 * S, t2 = T0 + 200 * S, now;

	wgt_timers_init(&t, SEED);
	ck_assert(wgt_timers_may_send_initiation(&t, T0));
	ck_assert_uint_eq(ev(&t, WGT_TIMER_EV_WANT_HANDSHAKE, T0), WGT_TIMER_SEND_INITIATION);
	/* Limited from the moment the action is handed out, before any send is reported. */
	ck_assert(!wgt_timers_may_send_initiation(&t, T0));
	ck_assert_uint_eq(ev(&t, WGT_TIMER_EV_WANT_HANDSHAKE, T0 + S), 0);
	ck_assert_uint_eq(ev(&t, WGT_TIMER_EV_WANT_HANDSHAKE, T0 + 5 * S - 1), 0);
	ck_assert(!wgt_timers_may_send_initiation(&t, T0 + 5 * S - 1));
	ck_assert(wgt_timers_may_send_initiation(&t, T0 + 5 * S));
	ck_assert_uint_eq(ev(&t, WGT_TIMER_EV_WANT_HANDSHAKE, T0 + 5 * S), WGT_TIMER_SEND_INITIATION);

	/* Answering the peer's initiation counts too. */
	ck_assert_uint_eq(ev(&t, WGT_TIMER_EV_HANDSHAKE_RESPONDED, t1), 0);
	ck_assert(!wgt_timers_may_send_initiation(&t, t1 + 5 * S - 1));
	ck_assert_uint_eq(ev(&t, WGT_TIMER_EV_WANT_HANDSHAKE, t1 + 5 * S - 1), 0);
	ck_assert(wgt_timers_may_send_initiation(&t, t1 + 5 * S));

	/* So does a reported initiation. */
	ck_assert_uint_eq(ev(&t, WGT_TIMER_EV_HANDSHAKE_INITIATED, t2), 0);
	ck_assert(!wgt_timers_may_send_initiation(&t, t2 + 5 * S - 1));
	ck_assert(wgt_timers_may_send_initiation(&t, t2 + 5 * S));

	/* A fresh request resets the retry count even when it is rate limited. */
	now = t.deadline[RETRANSMIT];
	ck_assert(wgt_timers_expire(&t, now) & WGT_TIMER_SEND_INITIATION);
	sent_initiation(&t, now);
	ck_assert_uint_eq(t.handshake_attempts, 1);
	ck_assert_uint_eq(ev(&t, WGT_TIMER_EV_WANT_HANDSHAKE, now + S), 0);
	ck_assert_uint_eq(t.handshake_attempts, 0);
}
END_TEST

START_TEST(test_rekey_on_receive_once)
{
	struct wgt_timers t;
	uint64_t t1 = T0 + 100 * S;

	wgt_timers_init(&t, SEED);
	ck_assert_uint_eq(ev(&t, WGT_TIMER_EV_WANT_HANDSHAKE_ON_RECEIVE, T0), WGT_TIMER_SEND_INITIATION);
	/* Every later packet on the old keypair asks again: once per handshake is enough. */
	ck_assert_uint_eq(ev(&t, WGT_TIMER_EV_WANT_HANDSHAKE_ON_RECEIVE, T0 + 10 * S), 0);
	ev(&t, WGT_TIMER_EV_HANDSHAKE_COMPLETE, T0 + 11 * S);
	ck_assert_uint_eq(ev(&t, WGT_TIMER_EV_WANT_HANDSHAKE_ON_RECEIVE, T0 + 11 * S),
			  WGT_TIMER_SEND_INITIATION);

	/* A request swallowed by the rate limit still uses up the once. */
	ev(&t, WGT_TIMER_EV_HANDSHAKE_COMPLETE, t1);
	ck_assert_uint_eq(ev(&t, WGT_TIMER_EV_WANT_HANDSHAKE, t1), WGT_TIMER_SEND_INITIATION);
	ck_assert_uint_eq(ev(&t, WGT_TIMER_EV_WANT_HANDSHAKE_ON_RECEIVE, t1 + S), 0);
	ck_assert_uint_eq(ev(&t, WGT_TIMER_EV_WANT_HANDSHAKE_ON_RECEIVE, t1 + 6 * S), 0);
	/* The plain request is not limited to once. */
	ck_assert_uint_eq(ev(&t, WGT_TIMER_EV_WANT_HANDSHAKE, t1 + 6 * S), WGT_TIMER_SEND_INITIATION);
}
END_TEST

START_TEST(test_rekey_predicates)
{
	const uint64_t b = T0;

	ck_assert_uint_eq(WGT_REKEY_AFTER_TIME, 120 * S);
	ck_assert_uint_eq(WGT_REJECT_AFTER_TIME - WGT_KEEPALIVE_TIMEOUT - WGT_REKEY_TIMEOUT, 165 * S);

	/* By count, either role, strictly more than REKEY_AFTER_MESSAGES. */
	ck_assert(!wgt_timers_should_rekey_on_send(false, b, WGT_REKEY_AFTER_MESSAGES, b));
	ck_assert(wgt_timers_should_rekey_on_send(false, b, WGT_REKEY_AFTER_MESSAGES + 1, b));
	ck_assert(!wgt_timers_should_rekey_on_send(true, b, WGT_REKEY_AFTER_MESSAGES, b));
	ck_assert(wgt_timers_should_rekey_on_send(true, b, WGT_REKEY_AFTER_MESSAGES + 1, b));

	/* By age, initiator only, from the nanosecond the age is reached. */
	ck_assert(!wgt_timers_should_rekey_on_send(true, b, 0, b + 120 * S - 1));
	ck_assert(wgt_timers_should_rekey_on_send(true, b, 0, b + 120 * S));
	ck_assert(wgt_timers_should_rekey_on_send(true, b, 0, b + 120 * S + 1));
	ck_assert(!wgt_timers_should_rekey_on_send(false, b, 0, b + 120 * S));
	ck_assert(!wgt_timers_should_rekey_on_send(false, b, 0, b + 100000 * S));

	ck_assert(!wgt_timers_should_rekey_on_receive(true, b, b + 165 * S - 1));
	ck_assert(wgt_timers_should_rekey_on_receive(true, b, b + 165 * S));
	ck_assert(wgt_timers_should_rekey_on_receive(true, b, b + 165 * S + 1));
	ck_assert(!wgt_timers_should_rekey_on_receive(false, b, b + 165 * S));
	ck_assert(!wgt_timers_should_rekey_on_receive(false, b, b + 100000 * S));
}
END_TEST

static uint64_t min_deadline(const struct wgt_timers *t)
{
	uint64_t m = 0;
	int id;

	for (id = 0; id < WGT_TIMER_ID_COUNT; id++)
		if (t->deadline[id] && (!m || t->deadline[id] < m))
			m = t->deadline[id];
	return m;
}

/* Arms all five timers, each at a known distance from T0. */
static void arm_all(struct wgt_timers *t)
{
	ev(t, WGT_TIMER_EV_SESSION_DERIVED, T0);          /* zero keys: T0 + 540 s */
	ev(t, WGT_TIMER_EV_DATA_RECEIVED, T0 + S);        /* keepalive: T0 + 11 s */
	ev(t, WGT_TIMER_EV_DATA_SENT, T0 + 2 * S);        /* new handshake: T0 + 17 s + jitter */
	ev(t, WGT_TIMER_EV_HANDSHAKE_INITIATED, T0 + 3 * S); /* retransmit: T0 + 8 s + jitter */
	wgt_timers_set_persistent_keepalive(t, 1, T0 + 3 * S);
	ev(t, WGT_TIMER_EV_AUTH_TRAVERSAL, T0 + 3 * S);   /* persistent: T0 + 4 s */
}

START_TEST(test_next_deadline)
{
	struct wgt_timers t;

	wgt_timers_init(&t, SEED);
	ck_assert_uint_eq(wgt_timers_next_deadline(&t), 0);
	ev(&t, WGT_TIMER_EV_SESSION_DERIVED, T0);
	ck_assert_uint_eq(wgt_timers_next_deadline(&t), T0 + 540 * S);
	ev(&t, WGT_TIMER_EV_DATA_RECEIVED, T0 + S);
	ck_assert_uint_eq(wgt_timers_next_deadline(&t), T0 + 11 * S);
	ev(&t, WGT_TIMER_EV_DATA_SENT, T0 + 2 * S);
	ck_assert_uint_eq(wgt_timers_next_deadline(&t), T0 + 11 * S);
	ev(&t, WGT_TIMER_EV_HANDSHAKE_INITIATED, T0 + 3 * S);
	ck_assert_uint_eq(wgt_timers_next_deadline(&t), t.deadline[RETRANSMIT]);
	ck_assert_uint_lt(t.deadline[RETRANSMIT], T0 + 11 * S);
	wgt_timers_set_persistent_keepalive(&t, 1, T0 + 3 * S);
	ev(&t, WGT_TIMER_EV_AUTH_TRAVERSAL, T0 + 3 * S);
	ck_assert_uint_eq(wgt_timers_next_deadline(&t), T0 + 4 * S);
	ck_assert_uint_eq(wgt_timers_next_deadline(&t), min_deadline(&t));

	/* Disarm them one by one, earliest first. */
	wgt_timers_set_persistent_keepalive(&t, 0, T0 + 3 * S);
	ck_assert_uint_eq(wgt_timers_next_deadline(&t), t.deadline[RETRANSMIT]);
	ev(&t, WGT_TIMER_EV_HANDSHAKE_COMPLETE, T0 + 3 * S);
	ck_assert_uint_eq(wgt_timers_next_deadline(&t), T0 + 11 * S);
	ev(&t, WGT_TIMER_EV_AUTH_SENT, T0 + 3 * S);
	ck_assert_uint_eq(wgt_timers_next_deadline(&t), t.deadline[NEW_HANDSHAKE]);
	ev(&t, WGT_TIMER_EV_AUTH_RECEIVED, T0 + 3 * S);
	ck_assert_uint_eq(wgt_timers_next_deadline(&t), T0 + 540 * S);
	ck_assert_uint_eq(wgt_timers_expire(&t, T0 + 540 * S), WGT_TIMER_ZERO_KEYS);
	ck_assert_uint_eq(wgt_timers_next_deadline(&t), 0);
}
END_TEST

/*
 * Woken long after everything fell due: each timer fires once, in deadline
 * order, and a second call at the same time finds nothing to do.
 */
START_TEST(test_expire_idempotent)
{
	struct wgt_timers t;
	uint64_t late = T0 + 1000 * S;

	wgt_timers_init(&t, SEED);
	ev(&t, WGT_TIMER_EV_DATA_RECEIVED, T0);
	ck_assert_uint_eq(wgt_timers_expire(&t, T0 + 10 * S), WGT_TIMER_SEND_KEEPALIVE);
	ck_assert_uint_eq(wgt_timers_expire(&t, T0 + 10 * S), 0);

	wgt_timers_init(&t, SEED);
	arm_all(&t);
	/*
	 * persistent (T0+4) keepalive; retransmit (T0+8) retries the
	 * initiation; keepalive (T0+11); new_handshake (T0+17) resets the count
	 * but is rate limited by the retry just handed out; zero keys (T0+540).
	 */
	ck_assert_uint_eq(wgt_timers_expire(&t, late),
			  WGT_TIMER_SEND_KEEPALIVE | WGT_TIMER_SEND_INITIATION |
			  WGT_TIMER_CLEAR_ENDPOINT_SRC | WGT_TIMER_ZERO_KEYS);
	ck_assert_uint_eq(t.handshake_attempts, 0);
	ck_assert_uint_eq(wgt_timers_next_deadline(&t), 0);
	ck_assert_uint_eq(wgt_timers_expire(&t, late), 0);
}
END_TEST

/* Deadlines due together fire in deadline order, so the outcome depends on which came first. */
START_TEST(test_fire_order)
{
	struct wgt_timers t;

	/* Give-up before the keepalive is due: the keepalive is cancelled. */
	wgt_timers_init(&t, SEED);
	t.handshake_attempts = WGT_MAX_TIMER_HANDSHAKES + 1;
	ev(&t, WGT_TIMER_EV_HANDSHAKE_INITIATED, T0);  /* ~T0 + 5 s */
	ev(&t, WGT_TIMER_EV_DATA_RECEIVED, T0 + S);    /* T0 + 11 s */
	ck_assert_uint_eq(wgt_timers_expire(&t, T0 + 20 * S), WGT_TIMER_CLEAR_STAGED);

	/* Keepalive due before the give-up: it goes out first. */
	wgt_timers_init(&t, SEED);
	t.handshake_attempts = WGT_MAX_TIMER_HANDSHAKES + 1;
	ev(&t, WGT_TIMER_EV_DATA_RECEIVED, T0);            /* T0 + 10 s */
	ev(&t, WGT_TIMER_EV_HANDSHAKE_INITIATED, T0 + 6 * S); /* ~T0 + 11 s */
	ck_assert_uint_eq(wgt_timers_expire(&t, T0 + 20 * S),
			  WGT_TIMER_SEND_KEEPALIVE | WGT_TIMER_CLEAR_STAGED);

	/* Wipe before the give-up: the give-up schedules another wipe. */
	wgt_timers_init(&t, SEED);
	t.handshake_attempts = WGT_MAX_TIMER_HANDSHAKES + 1;
	ev(&t, WGT_TIMER_EV_SESSION_DERIVED, T0);              /* T0 + 540 s */
	ev(&t, WGT_TIMER_EV_HANDSHAKE_INITIATED, T0 + 536 * S); /* ~T0 + 541 s */
	ck_assert_uint_eq(wgt_timers_expire(&t, T0 + 600 * S),
			  WGT_TIMER_ZERO_KEYS | WGT_TIMER_CLEAR_STAGED);
	ck_assert_uint_eq(wgt_timers_next_deadline(&t), T0 + 1140 * S);

	/* Give-up before the wipe: the pending wipe is kept and fires. */
	wgt_timers_init(&t, SEED);
	t.handshake_attempts = WGT_MAX_TIMER_HANDSHAKES + 1;
	ev(&t, WGT_TIMER_EV_SESSION_DERIVED, T0 + 10 * S);      /* T0 + 550 s */
	ev(&t, WGT_TIMER_EV_HANDSHAKE_INITIATED, T0 + 540 * S); /* ~T0 + 545 s */
	ck_assert_uint_eq(wgt_timers_expire(&t, T0 + 600 * S),
			  WGT_TIMER_CLEAR_STAGED | WGT_TIMER_ZERO_KEYS);
	ck_assert_uint_eq(wgt_timers_next_deadline(&t), 0);
}
END_TEST

START_TEST(test_stop_start)
{
	static const enum wgt_timer_event arming[] = {
		WGT_TIMER_EV_DATA_SENT, WGT_TIMER_EV_DATA_RECEIVED, WGT_TIMER_EV_AUTH_TRAVERSAL,
		WGT_TIMER_EV_HANDSHAKE_INITIATED, WGT_TIMER_EV_SESSION_DERIVED,
		WGT_TIMER_EV_WANT_HANDSHAKE, WGT_TIMER_EV_WANT_HANDSHAKE_ON_RECEIVE,
		WGT_TIMER_EV_STOP,
	};
	struct wgt_timers t;
	uint64_t now = T0 + 10 * S;
	size_t i;

	wgt_timers_init(&t, SEED);
	arm_all(&t);
	ck_assert_uint_eq(ev(&t, WGT_TIMER_EV_STOP, now), 0);
	ck_assert_uint_eq(wgt_timers_next_deadline(&t), 0);
	ck_assert_uint_eq(t.persistent_keepalive_interval, 1); /* configuration survives */
	for (i = 0; i < sizeof(arming) / sizeof(arming[0]); i++)
		ck_assert_uint_eq(ev(&t, arming[i], now), 0);
	ck_assert_uint_eq(wgt_timers_next_deadline(&t), 0);
	ck_assert_uint_eq(wgt_timers_expire(&t, now + 1000 * S), 0);

	/* Up again, with the persistent keepalive still configured. */
	ck_assert_uint_eq(ev(&t, WGT_TIMER_EV_START, now + 1000 * S), WGT_TIMER_SEND_KEEPALIVE);
	ck_assert_uint_eq(ev(&t, WGT_TIMER_EV_STOP, now + 1000 * S), 0);
	ck_assert_uint_eq(ev(&t, WGT_TIMER_EV_START, now + 1000 * S), WGT_TIMER_SEND_KEEPALIVE);
	ck_assert_uint_eq(ev(&t, WGT_TIMER_EV_WANT_HANDSHAKE, now + 1000 * S), WGT_TIMER_SEND_INITIATION);

	/* Right after a stop, even a just-sent initiation does not hold the next one back. */
	wgt_timers_init(&t, SEED);
	ck_assert_uint_eq(ev(&t, WGT_TIMER_EV_WANT_HANDSHAKE, T0), WGT_TIMER_SEND_INITIATION);
	ev(&t, WGT_TIMER_EV_STOP, T0 + S);
	ev(&t, WGT_TIMER_EV_START, T0 + S);
	ck_assert_uint_eq(ev(&t, WGT_TIMER_EV_WANT_HANDSHAKE, T0 + S), WGT_TIMER_SEND_INITIATION);
}
END_TEST

/* The same seed and events give the same deadlines; another seed moves the jitter. */
START_TEST(test_deterministic)
{
	struct wgt_timers a, b, c;

	wgt_timers_init(&a, SEED);
	wgt_timers_init(&b, SEED);
	wgt_timers_init(&c, SEED + 1);
	arm_all(&a);
	arm_all(&b);
	arm_all(&c);
	ck_assert_mem_eq(a.deadline, b.deadline, sizeof(a.deadline));
	ck_assert_uint_eq(a.rng, b.rng);
	ck_assert_uint_ne(a.deadline[RETRANSMIT], c.deadline[RETRANSMIT]);
	ck_assert_uint_ne(a.deadline[NEW_HANDSHAKE], c.deadline[NEW_HANDSHAKE]);
}
END_TEST

static Suite *timers_suite(void)
{
	Suite *s = suite_create("timers");
	TCase *hs = tcase_create("handshake");
	TCase *ka = tcase_create("keepalive");
	TCase *mech = tcase_create("mechanics");

	tcase_add_test(hs, test_retransmit);
	tcase_add_test(hs, test_jitter);
	tcase_add_test(hs, test_give_up);
	tcase_add_test(hs, test_give_up_keeps_pending_wipe);
	tcase_add_test(hs, test_complete_cancels_retransmit);
	tcase_add_test(hs, test_new_handshake_after_send);
	tcase_add_test(hs, test_zero_keys);
	tcase_add_test(hs, test_rate_limit);
	tcase_add_test(hs, test_rekey_on_receive_once);
	tcase_add_test(hs, test_rekey_predicates);
	suite_add_tcase(s, hs);

	tcase_add_test(ka, test_keepalive_after_receive);
	tcase_add_test(ka, test_persistent_keepalive);
	tcase_add_test(ka, test_persistent_keepalive_while_stopped);
	suite_add_tcase(s, ka);

	tcase_add_test(mech, test_init);
	tcase_add_test(mech, test_next_deadline);
	tcase_add_test(mech, test_expire_idempotent);
	tcase_add_test(mech, test_fire_order);
	tcase_add_test(mech, test_stop_start);
	tcase_add_test(mech, test_deterministic);
	suite_add_tcase(s, mech);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(timers_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
