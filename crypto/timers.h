/* SPDX-License-Identifier: MIT */
/*
 * Per-peer protocol timers (whitepaper section 6) as a pure state machine.
 *
 * Design note. The kernel keeps five timer_lists per peer and acts from
 * their callbacks. Here the same machine is a plain struct and functions of
 * (state, now, event): no clock, no I/O, no threads, no allocation. The
 * caller owns the clock and the event loop, tells the machine what happened
 * and gets back a bit set of WGT_TIMER_* actions to carry out. Carrying one
 * out usually produces events of its own (a keepalive is an authenticated
 * send), which the caller reports like any other.
 *
 *   handshake and data code --event-->  wgt_timers_event()  --actions--> caller
 *   event loop at wgt_timers_next_deadline() --> wgt_timers_expire() --actions--> caller
 *
 * One owner (the control thread) per struct; nothing in it is atomic. Times
 * are absolute CLOCK_MONOTONIC nanoseconds (wgt_now_ns()) and must not go
 * back between calls (asserted); a deadline of 0 means disarmed. The
 * handshake jitter comes from a PRNG seeded by the caller, so a test replays
 * exactly and the gateway seeds each peer from getrandom(2).
 *
 * What to report, in this order, for each thing that happens (the order of
 * the kernel's hooks):
 *
 *   initiation sent      AUTH_TRAVERSAL, AUTH_SENT, HANDSHAKE_INITIATED
 *   response sent        SESSION_DERIVED, AUTH_TRAVERSAL, AUTH_SENT, HANDSHAKE_RESPONDED
 *                        (HANDSHAKE_RESPONDED alone if building the response failed)
 *   initiation received  (send the response, above) AUTH_RECEIVED, AUTH_TRAVERSAL
 *   response received    SESSION_DERIVED, HANDSHAKE_COMPLETE, (send a keepalive),
 *                        AUTH_RECEIVED, AUTH_TRAVERSAL
 *   data sent            AUTH_TRAVERSAL, AUTH_SENT, then DATA_SENT unless every
 *                        packet was a keepalive
 *   data received        HANDSHAKE_COMPLETE if it confirmed a new keypair,
 *                        AUTH_RECEIVED, AUTH_TRAVERSAL, then DATA_RECEIVED unless
 *                        it was a keepalive
 *   handshake needed     WANT_HANDSHAKE: staged packets but no usable keypair, or
 *                        wgt_timers_should_rekey_on_send();
 *                        WANT_HANDSHAKE_ON_RECEIVE: wgt_timers_should_rekey_on_receive()
 *   device up / down     START / STOP; peer removed: STOP
 *
 * The data path may coalesce its events per batch: at a given `now` each of
 * DATA_SENT, AUTH_SENT, AUTH_RECEIVED and AUTH_TRAVERSAL is idempotent, and
 * DATA_RECEIVED reported twice is the same as reported any more times.
 */
#ifndef WGT_CRYPTO_TIMERS_H
#define WGT_CRYPTO_TIMERS_H

#include <stdbool.h>
#include <stdint.h>

enum wgt_timer_id {
	WGT_TIMER_ID_RETRANSMIT_HANDSHAKE,
	WGT_TIMER_ID_SEND_KEEPALIVE,
	WGT_TIMER_ID_NEW_HANDSHAKE,
	WGT_TIMER_ID_ZERO_KEY_MATERIAL,
	WGT_TIMER_ID_PERSISTENT_KEEPALIVE,
	WGT_TIMER_ID_COUNT,
};

/* Kernel hook each event stands for in parentheses (wg_timers_*, send.c). */
enum wgt_timer_event {
	WGT_TIMER_EV_DATA_SENT,            /* (data_sent) a non-keepalive data packet went out */
	WGT_TIMER_EV_DATA_RECEIVED,        /* (data_received) a non-keepalive data packet came in */
	WGT_TIMER_EV_AUTH_SENT,            /* (any_authenticated_packet_sent) */
	WGT_TIMER_EV_AUTH_RECEIVED,        /* (any_authenticated_packet_received) */
	WGT_TIMER_EV_AUTH_TRAVERSAL,       /* (any_authenticated_packet_traversal) either way */
	WGT_TIMER_EV_HANDSHAKE_INITIATED,  /* (handshake_initiated) an initiation went out */
	WGT_TIMER_EV_HANDSHAKE_RESPONDED,  /* (last_sent_handshake in send_handshake_response) */
	WGT_TIMER_EV_HANDSHAKE_COMPLETE,   /* (handshake_complete) response or key confirmation */
	WGT_TIMER_EV_SESSION_DERIVED,      /* (session_derived) a new keypair exists */
	WGT_TIMER_EV_WANT_HANDSHAKE,       /* (send_queued_handshake_initiation, not a retry) */
	WGT_TIMER_EV_WANT_HANDSHAKE_ON_RECEIVE, /* (receive.c keep_key_fresh) once per handshake */
	WGT_TIMER_EV_START,                /* device up (wg_open) */
	WGT_TIMER_EV_STOP,                 /* device down (wg_stop) or peer removed */
};

/*
 * Actions, numbered in the order to carry them out when several come back
 * together: what a tick discards goes before what it sends, so a send never
 * uses something the same tick threw away.
 */
enum {
	/* Forget the cached local source address of the endpoint, in case it broke the handshake. */
	WGT_TIMER_CLEAR_ENDPOINT_SRC = 1U << 0,
	/* Handshake attempts are exhausted: drop the staged packets. The peer looks unreachable. */
	WGT_TIMER_CLEAR_STAGED = 1U << 1,
	/* Wipe the handshake state and every keypair of the peer. */
	WGT_TIMER_ZERO_KEYS = 1U << 2,
	/* Build and send an initiation now; the per-peer rate limit is already applied. */
	WGT_TIMER_SEND_INITIATION = 1U << 3,
	/*
	 * Send the staged packets, or one empty data packet when none are
	 * staged. Without a usable keypair the keepalive stays staged and the
	 * caller reports WANT_HANDSHAKE, as the kernel's send path does.
	 */
	WGT_TIMER_SEND_KEEPALIVE = 1U << 4,
};

struct wgt_timers {
	uint64_t deadline[WGT_TIMER_ID_COUNT]; /* absolute monotonic ns, 0 = disarmed */
	uint64_t last_sent_handshake;          /* valid when sent_handshake */
	uint64_t last_now;                     /* latest `now` seen: time must not go back */
	uint64_t rng;                          /* jitter PRNG state (splitmix64) */
	uint32_t handshake_attempts;           /* retransmits of the current initiation */
	uint16_t persistent_keepalive_interval; /* seconds, 0 = off */
	bool sent_handshake;
	bool need_another_keepalive;
	bool sent_lastminute_handshake;
	bool stopped;
};

/* Owner only. Armed nothing, started (device up), jitter drawn from `seed`. */
void wgt_timers_init(struct wgt_timers *t, uint64_t seed);

/* Owner only. Records `ev` at `now`; returns the WGT_TIMER_* actions it calls for. */
unsigned int wgt_timers_event(struct wgt_timers *t, enum wgt_timer_event ev, uint64_t now);

/*
 * Owner only. Fires every deadline at or before `now`, earliest first (ties
 * in enum wgt_timer_id order), and returns the union of their actions. A
 * fired timer is disarmed or re-armed after `now`, so a second call at the
 * same `now` returns 0.
 */
unsigned int wgt_timers_expire(struct wgt_timers *t, uint64_t now);

/* Owner only. The earliest armed deadline, or 0 when nothing is armed. */
uint64_t wgt_timers_next_deadline(const struct wgt_timers *t);

/*
 * Owner only. Sets the persistent keepalive interval (seconds, 0 = off);
 * switching it on while started asks for a keepalive at once, as
 * `wg set ... persistent-keepalive` does on a running device.
 */
unsigned int wgt_timers_set_persistent_keepalive(struct wgt_timers *t, uint16_t interval_s,
						 uint64_t now);

/* Owner only. The per-peer initiation rate limit: one per REKEY_TIMEOUT. */
bool wgt_timers_may_send_initiation(const struct wgt_timers *t, uint64_t now);

/*
 * Any thread (pure). After sending on a keypair: rekey once more than
 * REKEY_AFTER_MESSAGES nonces are used (`send_counter` is the next nonce),
 * or, for the initiator, once the keypair is REKEY_AFTER_TIME old.
 */
bool wgt_timers_should_rekey_on_send(bool is_initiator, uint64_t keypair_birth,
				     uint64_t send_counter, uint64_t now);

/*
 * Any thread (pure). After receiving on the current keypair: the initiator
 * rekeys once it is REJECT_AFTER_TIME - KEEPALIVE_TIMEOUT - REKEY_TIMEOUT
 * old, so a new session is up before the old one expires even when it only
 * receives.
 */
bool wgt_timers_should_rekey_on_receive(bool is_initiator, uint64_t keypair_birth, uint64_t now);

#endif
