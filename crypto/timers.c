/* SPDX-License-Identifier: MIT */
/*
 * Per-peer protocol timers as pure functions of (state, now, event) -> actions.
 *
 * The timers, what arms them and what they do (the kernel's five):
 *
 * - retransmit_handshake: armed REKEY_TIMEOUT + jitter after an initiation
 *   is sent; disarmed by HANDSHAKE_COMPLETE. Fires: resend the initiation,
 *   or after MAX_TIMER_HANDSHAKES + 1 retries give up: drop staged packets,
 *   stop the keepalive, and arm zero_key_material if it is not armed.
 * - send_keepalive: armed KEEPALIVE_TIMEOUT after data is received, unless
 *   already armed (then one more keepalive is owed); disarmed by any
 *   authenticated send. Fires: send a keepalive, re-arm if one more is owed.
 * - new_handshake: armed KEEPALIVE_TIMEOUT + REKEY_TIMEOUT + jitter after
 *   data is sent, unless already armed; disarmed by any authenticated
 *   receive. Fires: the peer went quiet, start a new handshake.
 * - zero_key_material: armed 3 * REJECT_AFTER_TIME after a session is
 *   derived (pushed back by each new one). Fires: wipe handshake and keys.
 * - persistent_keepalive: armed `interval` seconds after any authenticated
 *   packet traversal, when an interval is set. Fires: send a keepalive.
 *
 * Jitter is uniform in [0, REKEY_TIMEOUT_JITTER_MAX) so that peers which
 * lost packets together do not retry in lockstep.
 */
#include "crypto/timers.h"

#include <string.h>

#include "common/clock.h"
#include "common/compiler.h"
#include "crypto/messages.h"

#define ZERO_KEY_MATERIAL_AFTER (3 * WGT_REJECT_AFTER_TIME)
#define REKEY_ON_RECEIVE_AGE (WGT_REJECT_AFTER_TIME - WGT_KEEPALIVE_TIMEOUT - WGT_REKEY_TIMEOUT)

_Static_assert(WGT_MAX_TIMER_HANDSHAKES == 18, "whitepaper: REKEY_ATTEMPT_TIME / REKEY_TIMEOUT");
_Static_assert(WGT_REKEY_TIMEOUT_JITTER_MAX < (1ULL << 32), "jitter is drawn from 32 bits");

/* splitmix64: tiny, seedable, any seed (0 too) is fine; jitter needs no secrecy. */
static uint64_t next_random(struct wgt_timers *t)
{
	uint64_t z = (t->rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Uniform in [0, WGT_REKEY_TIMEOUT_JITTER_MAX) by multiply-shift, no modulo bias worth the name. */
static uint64_t jitter(struct wgt_timers *t)
{
	return ((next_random(t) >> 32) * WGT_REKEY_TIMEOUT_JITTER_MAX) >> 32;
}

static bool armed(const struct wgt_timers *t, enum wgt_timer_id id)
{
	return t->deadline[id] != 0;
}

static void arm(struct wgt_timers *t, enum wgt_timer_id id, uint64_t now, uint64_t delay)
{
	/* A positive delay keeps 0 free for "disarmed" and lets expire() terminate. */
	WGT_ASSERT(delay > 0);
	t->deadline[id] = now + delay;
}

static void disarm(struct wgt_timers *t, enum wgt_timer_id id)
{
	t->deadline[id] = 0;
}

/* The initiation rate limit runs from here, whichever handshake message it was. */
static void note_handshake_sent(struct wgt_timers *t, uint64_t now)
{
	t->last_sent_handshake = now;
	t->sent_handshake = true;
}

/* Backs the owner-only contract as far as a pure module can: one monotonic clock. */
static void advance_clock(struct wgt_timers *t, uint64_t now)
{
	WGT_ASSERT(now >= t->last_now);
	t->last_now = now;
}

/*
 * Owner only. The caller asked for a handshake; a retry keeps counting
 * attempts, anything else starts the count again. The rate limit is taken
 * here, when the action is handed out, so two requests within REKEY_TIMEOUT
 * yield one initiation even if building it later fails.
 */
static unsigned int request_initiation(struct wgt_timers *t, uint64_t now, bool is_retry)
{
	if (!is_retry)
		t->handshake_attempts = 0;
	if (!wgt_timers_may_send_initiation(t, now))
		return 0;
	note_handshake_sent(t, now);
	return WGT_TIMER_SEND_INITIATION;
}

/* Owner only. */
static unsigned int expired_retransmit_handshake(struct wgt_timers *t, uint64_t now)
{
	/*
	 * The kernel compares with `>`, so it retries MAX_TIMER_HANDSHAKES + 1
	 * times: 20 initiations in all before giving up. Peers expect that
	 * cadence; keep it.
	 */
	if (t->handshake_attempts > WGT_MAX_TIMER_HANDSHAKES) {
		disarm(t, WGT_TIMER_ID_SEND_KEEPALIVE);
		/* Leftovers of a partial exchange still get wiped, but a pending wipe is not delayed. */
		if (!armed(t, WGT_TIMER_ID_ZERO_KEY_MATERIAL))
			arm(t, WGT_TIMER_ID_ZERO_KEY_MATERIAL, now, ZERO_KEY_MATERIAL_AFTER);
		return WGT_TIMER_CLEAR_STAGED;
	}
	t->handshake_attempts++;
	return WGT_TIMER_CLEAR_ENDPOINT_SRC | request_initiation(t, now, true);
}

/* Owner only. */
static unsigned int expired_send_keepalive(struct wgt_timers *t, uint64_t now)
{
	if (t->need_another_keepalive) {
		t->need_another_keepalive = false;
		arm(t, WGT_TIMER_ID_SEND_KEEPALIVE, now, WGT_KEEPALIVE_TIMEOUT);
	}
	return WGT_TIMER_SEND_KEEPALIVE;
}

/* Owner only. */
static unsigned int expired_new_handshake(struct wgt_timers *t, uint64_t now)
{
	return WGT_TIMER_CLEAR_ENDPOINT_SRC | request_initiation(t, now, false);
}

/* Owner only. */
static unsigned int expired_zero_key_material(struct wgt_timers *t, uint64_t now)
{
	return WGT_TIMER_ZERO_KEYS;
}

/* Owner only. Not re-armed here: the keepalive's own traversal re-arms it. */
static unsigned int expired_persistent_keepalive(struct wgt_timers *t, uint64_t now)
{
	return t->persistent_keepalive_interval ? WGT_TIMER_SEND_KEEPALIVE : 0;
}

static unsigned int (*const expired[WGT_TIMER_ID_COUNT])(struct wgt_timers *, uint64_t) = {
	[WGT_TIMER_ID_RETRANSMIT_HANDSHAKE] = expired_retransmit_handshake,
	[WGT_TIMER_ID_SEND_KEEPALIVE] = expired_send_keepalive,
	[WGT_TIMER_ID_NEW_HANDSHAKE] = expired_new_handshake,
	[WGT_TIMER_ID_ZERO_KEY_MATERIAL] = expired_zero_key_material,
	[WGT_TIMER_ID_PERSISTENT_KEEPALIVE] = expired_persistent_keepalive,
};

/* Owner only. */
void wgt_timers_init(struct wgt_timers *t, uint64_t seed)
{
	memset(t, 0, sizeof(*t));
	t->rng = seed;
}

/* Owner only. */
static void stop(struct wgt_timers *t)
{
	uint16_t interval = t->persistent_keepalive_interval;
	uint64_t rng = t->rng, now = t->last_now;

	/*
	 * Like the kernel's wg_stop: nothing stays armed, and the initiation
	 * rate limit is forgotten so the first handshake after START goes out
	 * at once. Configuration and the PRNG survive.
	 */
	memset(t, 0, sizeof(*t));
	t->persistent_keepalive_interval = interval;
	t->rng = rng;
	t->last_now = now;
	t->stopped = true;
}

/* Owner only. */
unsigned int wgt_timers_event(struct wgt_timers *t, enum wgt_timer_event ev, uint64_t now)
{
	advance_clock(t, now);
	if (t->stopped) {
		/* A stopped peer arms nothing, like the kernel's mod_peer_timer on a down device. */
		if (ev != WGT_TIMER_EV_START)
			return 0;
		t->stopped = false;
		return t->persistent_keepalive_interval ? WGT_TIMER_SEND_KEEPALIVE : 0;
	}

	switch (ev) {
	case WGT_TIMER_EV_DATA_SENT:
		/* Armed once per silence: later sends must not push the deadline out. */
		if (!armed(t, WGT_TIMER_ID_NEW_HANDSHAKE))
			arm(t, WGT_TIMER_ID_NEW_HANDSHAKE, now,
			    WGT_KEEPALIVE_TIMEOUT + WGT_REKEY_TIMEOUT + jitter(t));
		return 0;
	case WGT_TIMER_EV_DATA_RECEIVED:
		/*
		 * Data that arrives while a keepalive is already owed still needs
		 * its own acknowledgement: owe one more after that one.
		 */
		if (!armed(t, WGT_TIMER_ID_SEND_KEEPALIVE))
			arm(t, WGT_TIMER_ID_SEND_KEEPALIVE, now, WGT_KEEPALIVE_TIMEOUT);
		else
			t->need_another_keepalive = true;
		return 0;
	case WGT_TIMER_EV_AUTH_SENT:
		/* Anything we send tells the peer we are alive. */
		disarm(t, WGT_TIMER_ID_SEND_KEEPALIVE);
		return 0;
	case WGT_TIMER_EV_AUTH_RECEIVED:
		/* Anything authenticated proves the session still works. */
		disarm(t, WGT_TIMER_ID_NEW_HANDSHAKE);
		return 0;
	case WGT_TIMER_EV_AUTH_TRAVERSAL:
		if (t->persistent_keepalive_interval)
			arm(t, WGT_TIMER_ID_PERSISTENT_KEEPALIVE, now,
			    t->persistent_keepalive_interval * WGT_NSEC_PER_SEC);
		return 0;
	case WGT_TIMER_EV_HANDSHAKE_INITIATED:
		note_handshake_sent(t, now);
		arm(t, WGT_TIMER_ID_RETRANSMIT_HANDSHAKE, now, WGT_REKEY_TIMEOUT + jitter(t));
		return 0;
	case WGT_TIMER_EV_HANDSHAKE_RESPONDED:
		/* Responding counts against our own initiations, as in the kernel. */
		note_handshake_sent(t, now);
		return 0;
	case WGT_TIMER_EV_HANDSHAKE_COMPLETE:
		disarm(t, WGT_TIMER_ID_RETRANSMIT_HANDSHAKE);
		t->handshake_attempts = 0;
		t->sent_lastminute_handshake = false;
		return 0;
	case WGT_TIMER_EV_SESSION_DERIVED:
		arm(t, WGT_TIMER_ID_ZERO_KEY_MATERIAL, now, ZERO_KEY_MATERIAL_AFTER);
		return 0;
	case WGT_TIMER_EV_WANT_HANDSHAKE:
		return request_initiation(t, now, false);
	case WGT_TIMER_EV_WANT_HANDSHAKE_ON_RECEIVE:
		/*
		 * Every received packet on an old keypair asks again; one request
		 * per completed handshake is enough, the retransmit timer does
		 * the rest. Set even when rate limited, as the kernel does.
		 */
		if (t->sent_lastminute_handshake)
			return 0;
		t->sent_lastminute_handshake = true;
		return request_initiation(t, now, false);
	case WGT_TIMER_EV_START:
		return 0;
	case WGT_TIMER_EV_STOP:
		stop(t);
		return 0;
	}
	WGT_ASSERT(!"unknown timer event");
	return 0;
}

/* Owner only. Returns the earliest deadline due at `now`, or -1. */
static int earliest_due(const struct wgt_timers *t, uint64_t now)
{
	int id, best = -1;

	for (id = 0; id < WGT_TIMER_ID_COUNT; id++) {
		uint64_t d = t->deadline[id];

		if (d && d <= now && (best < 0 || d < t->deadline[best]))
			best = id;
	}
	return best;
}

/*
 * Owner only. Each timer fires at most once per call: handlers only arm
 * deadlines strictly after `now`. Firing in deadline order keeps the
 * kernel's outcome when the loop wakes late and several are due, e.g. a
 * give-up that stops a keepalive due after it but not one due before it.
 */
unsigned int wgt_timers_expire(struct wgt_timers *t, uint64_t now)
{
	unsigned int actions = 0;
	int id;

	advance_clock(t, now);
	while ((id = earliest_due(t, now)) >= 0) {
		disarm(t, (enum wgt_timer_id)id);
		actions |= expired[id](t, now);
	}
	return actions;
}

/* Owner only. */
uint64_t wgt_timers_next_deadline(const struct wgt_timers *t)
{
	uint64_t next = 0;
	int id;

	for (id = 0; id < WGT_TIMER_ID_COUNT; id++)
		if (t->deadline[id] && (!next || t->deadline[id] < next))
			next = t->deadline[id];
	return next;
}

/* Owner only. */
unsigned int wgt_timers_set_persistent_keepalive(struct wgt_timers *t, uint16_t interval_s,
						 uint64_t now)
{
	bool switched_on = !t->persistent_keepalive_interval && interval_s;

	advance_clock(t, now);
	t->persistent_keepalive_interval = interval_s;
	/*
	 * Off means no wakeups at all. A changed interval applies from the
	 * next traversal, as in the kernel.
	 */
	if (!interval_s)
		disarm(t, WGT_TIMER_ID_PERSISTENT_KEEPALIVE);
	return switched_on && !t->stopped ? WGT_TIMER_SEND_KEEPALIVE : 0;
}

/* Owner only. */
bool wgt_timers_may_send_initiation(const struct wgt_timers *t, uint64_t now)
{
	return !t->sent_handshake || wgt_has_expired(t->last_sent_handshake, WGT_REKEY_TIMEOUT, now);
}

/* Any thread. */
bool wgt_timers_should_rekey_on_send(bool is_initiator, uint64_t keypair_birth,
				     uint64_t send_counter, uint64_t now)
{
	/* Only the initiator rekeys on age, so both ends do not start crossing handshakes. */
	return send_counter > WGT_REKEY_AFTER_MESSAGES ||
	       (is_initiator && wgt_has_expired(keypair_birth, WGT_REKEY_AFTER_TIME, now));
}

/* Any thread. */
bool wgt_timers_should_rekey_on_receive(bool is_initiator, uint64_t keypair_birth, uint64_t now)
{
	return is_initiator && wgt_has_expired(keypair_birth, REKEY_ON_RECEIVE_AGE, now);
}
