/* SPDX-License-Identifier: MIT */
/* Handshake messages on the control thread: initiations, responses, cookie replies. */
#include <errno.h>
#include <endian.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common/allowedips.h"
#include "common/log.h"
#include "common/ratelimiter.h"
#include "crypto/tai64n.h"
#include "gateway/device.h"

static struct wgt_log_ratelimit hs_log_rl = WGT_LOG_RATELIMIT_INIT;

static void keypair_free(void *ptr)
{
	wgt_noise_keypair_free(ptr);
}

/* Control thread only: keypairs->retire. The keypair leaves the index now, memory later. */
void wgt_handshake_retire_keypair(struct wgt_noise_keypair *kp, void *arg)
{
	struct wgt_peer *peer = arg;

	wgt_index_release(&peer->dev->index, kp->local_index, kp);
	wgt_qsbr_defer(&peer->dev->deferred, keypair_free, kp);
}

/* Control thread only. Forgets the pending handshake and its index (the session stays). */
void wgt_handshake_clear(struct wgt_peer *peer)
{
	struct wgt_peer_session *s = peer->session;

	if (!s)
		return;
	if (s->handshake_indexed) {
		wgt_index_release(&peer->dev->index, s->handshake.local_index, peer);
		s->handshake_indexed = false;
	}
	wgt_noise_handshake_clear(&s->handshake);
}

/* A fresh index for the peer's next handshake message; the old one is released. */
static int new_handshake_index(struct wgt_peer *peer, uint32_t *ret_index)
{
	struct wgt_peer_session *s = peer->session;

	if (s->handshake_indexed) {
		wgt_index_release(&peer->dev->index, s->handshake.local_index, peer);
		s->handshake_indexed = false;
	}
	return wgt_index_alloc(&peer->dev->index, WGT_INDEX_HANDSHAKE, peer, peer->lane,
			       peer->dev->n_workers, ret_index);
}

/* The failure reason a protocol errno stands for (metrics). */
static enum wgt_hs_fail fail_reason(const struct wgt_device *dev, int err)
{
	switch (err) {
	case -EBADMSG:
		return WGT_HS_FAIL_DECRYPT;
	case -ENOKEY:
		return dev->identity.has_identity ? WGT_HS_FAIL_UNKNOWN_PEER : WGT_HS_FAIL_OTHER;
	case -ESTALE:
		return WGT_HS_FAIL_STALE;
	case -EBUSY:
		return WGT_HS_FAIL_FLOOD;
	default:
		return WGT_HS_FAIL_OTHER;
	}
}

static void log_peer(enum wgt_log_level level, struct wgt_peer *peer, const char *what, int err)
{
	char name[WGT_PEER_LABEL_LEN];

	if (!wgt_log_enabled(level) || !wgt_log_ratelimit_ok(&hs_log_rl, wgt_now_ns()))
		return;
	wgt_peer_name(peer, name);
	wgt_log(level, "peer %s: %s%s%s", name, what, err ? ": " : "", err ? strerror(-err) : "");
}

/*
 * Control thread only. Builds and sends an initiation; the timer state
 * machine, which asks for it (WGT_TIMER_SEND_INITIATION), has already
 * applied the per-peer rate limit.
 */
void wgt_handshake_send_initiation(struct wgt_peer *peer)
{
	struct wgt_device *dev = peer->dev;
	struct wgt_msg_initiation msg;
	uint8_t ts[WGT_TIMESTAMP_LEN];
	struct wgt_peer_session *s;
	struct wgt_endpoint ep;
	uint64_t now = wgt_now_ns();
	bool made = !peer->session;
	uint32_t index;
	int r;

	wgt_peer_get_endpoint(peer, &ep);
	if (ep.addr.sa.sa_family == AF_UNSPEC || !dev->identity.has_identity)
		return;
	s = wgt_peer_session_get(peer);
	if (!s)
		return log_peer(WGT_LOG_WARN, peer, "no memory for a session", -ENOMEM);
	r = new_handshake_index(peer, &index);
	if (r) {
		log_peer(WGT_LOG_WARN, peer, "no receiver index for a handshake", r);
		goto fail;
	}
	wgt_tai64n_now(ts);
	r = wgt_noise_create_initiation(&s->handshake, &msg, index, ts);
	if (r) {
		wgt_index_release(&dev->index, index, peer);
		log_peer(WGT_LOG_DEBUG, peer, "cannot create an initiation", r);
		goto fail;
	}
	s->handshake_indexed = true;
	wgt_cookie_add_macs(&s->cookie, (uint8_t *)&msg, sizeof(msg), now);
	log_peer(WGT_LOG_DEBUG, peer, "sending handshake initiation", 0);
	r = wgt_device_send_to_peer(dev, peer, &msg, sizeof(msg));
	wgt_peer_timers_event(peer, WGT_TIMER_EV_AUTH_TRAVERSAL);
	if (!r) {
		dev->hs.init_sent++;
		wgt_peer_timers_event(peer, WGT_TIMER_EV_AUTH_SENT);
	}
	wgt_peer_timers_event(peer, WGT_TIMER_EV_HANDSHAKE_INITIATED);
	/* Later data may ask again: the retransmit timer owns this attempt now. */
	atomic_store_explicit(&peer->want_handshake_at, 0, memory_order_relaxed);
	return;
fail:
	/* Nothing half-built: a session made for this attempt goes with it. */
	if (made)
		wgt_peer_session_end(peer);
}

/* consume_initiation's lookup: the peer, and its session, made if it had none. */
struct lookup_ctx {
	struct wgt_device *dev;
	struct wgt_peer *peer;
	bool made;    /* the session was made by this lookup */
	bool nomem;   /* the peer has no session and none could be made */
};

static struct wgt_noise_handshake *lookup_by_key(void *arg, const uint8_t key[WGT_KEY_LEN])
{
	struct lookup_ctx *c = arg;
	struct wgt_peer_session *s;

	c->peer = wgt_peer_lookup(c->dev, key);
	if (!c->peer)
		return NULL;
	c->made = !c->peer->session;
	s = wgt_peer_session_get(c->peer);
	c->nomem = !s;
	return s ? &s->handshake : NULL;
}

/* After a session is derived: the keypair takes over the handshake's index. */
static void publish_keypair(struct wgt_peer *peer, struct wgt_noise_keypair *kp)
{
	kp->owner = peer;
	wgt_index_replace(&peer->dev->index, kp->local_index, WGT_INDEX_KEYPAIR, kp);
	peer->session->handshake_indexed = false;
}

static bool has_keypair(struct wgt_peer *peer)
{
	struct wgt_noise_keypairs *k = &peer->keypairs;

	return atomic_load_explicit(&k->current, memory_order_relaxed) ||
	       atomic_load_explicit(&k->previous, memory_order_relaxed) ||
	       atomic_load_explicit(&k->next, memory_order_relaxed);
}

static void consume_initiation(struct wgt_device *dev, const struct wgt_ctrl_msg *msg)
{
	struct lookup_ctx ctx = { .dev = dev };
	struct wgt_noise_handshake *hs = NULL;
	struct wgt_msg_response resp;
	struct wgt_noise_keypair *kp;
	struct wgt_peer_session *s;
	struct wgt_peer *peer;
	uint64_t now = wgt_now_ns();
	uint32_t index;
	int r;

	r = wgt_noise_consume_initiation((const void *)msg->data, &dev->identity, lookup_by_key,
					 &ctx, now, &hs);
	if (r) {
		dev->hs.failed[ctx.nomem ? WGT_HS_FAIL_OTHER : fail_reason(dev, r)]++;
		/* A refused message leaves nothing behind: the session it made goes. */
		if (ctx.made && ctx.peer->session)
			wgt_peer_session_end(ctx.peer);
		if (wgt_log_enabled(WGT_LOG_DEBUG) && wgt_log_ratelimit_ok(&hs_log_rl, now))
			wgt_dbg("invalid handshake initiation: %s",
				ctx.nomem ? "no memory for a session" : strerror(-r));
		return;
	}
	peer = ctx.peer;
	s = peer->session;
	wgt_peer_session_save(peer);
	/* Its first handshake: now the peer gets its counters (idle peers have none). */
	if (wgt_peer_pcpu_alloc(peer)) {
		log_peer(WGT_LOG_WARN, peer, "no memory for its counters", -ENOMEM);
		goto fail;
	}
	wgt_peer_roam(peer, &msg->src, msg->local.sa.sa_family ? &msg->local : NULL, msg->ifindex);
	wgt_audit_endpoint(peer);
	wgt_peer_count_rx(peer, dev->n_workers, WGT_MSG_INITIATION_LEN);
	log_peer(WGT_LOG_DEBUG, peer, "received handshake initiation", 0);

	r = new_handshake_index(peer, &index);
	if (r) {
		log_peer(WGT_LOG_WARN, peer, "no receiver index for a response", r);
		goto fail;
	}
	r = wgt_noise_create_response(&s->handshake, &resp, index);
	if (r) {
		wgt_index_release(&dev->index, index, peer);
		wgt_peer_timers_event(peer, WGT_TIMER_EV_HANDSHAKE_RESPONDED);
		log_peer(WGT_LOG_DEBUG, peer, "cannot create a response", r);
		goto fail;
	}
	s->handshake_indexed = true;
	wgt_cookie_add_macs(&s->cookie, (uint8_t *)&resp, sizeof(resp), now);
	r = wgt_noise_begin_session(&s->handshake, &peer->keypairs, now, &kp);
	if (r) {
		log_peer(WGT_LOG_WARN, peer, "cannot derive a session", r);
		wgt_handshake_clear(peer);
		goto fail;
	}
	publish_keypair(peer, kp);
	wgt_peer_timers_event(peer, WGT_TIMER_EV_SESSION_DERIVED);
	r = wgt_device_send_to_peer(dev, peer, &resp, sizeof(resp));
	wgt_peer_timers_event(peer, WGT_TIMER_EV_AUTH_TRAVERSAL);
	if (!r) {
		dev->hs.resp_sent++;
		wgt_peer_timers_event(peer, WGT_TIMER_EV_AUTH_SENT);
	}
	wgt_peer_timers_event(peer, WGT_TIMER_EV_HANDSHAKE_RESPONDED);
	wgt_peer_timers_event(peer, WGT_TIMER_EV_AUTH_RECEIVED);
	wgt_peer_timers_event(peer, WGT_TIMER_EV_AUTH_TRAVERSAL);
	log_peer(WGT_LOG_DEBUG, peer, "sent handshake response", 0);
	return;
fail:
	dev->hs.failed[WGT_HS_FAIL_OTHER]++;
	/* Its replay protection was saved; a session this message made and nothing uses goes. */
	if (ctx.made && !has_keypair(peer))
		wgt_peer_session_end(peer);
}

static struct wgt_peer *peer_of_index(struct wgt_device *dev, uint32_t index, bool keypairs_too)
{
	enum wgt_index_kind kind;
	void *obj = wgt_index_lookup(&dev->index, index, &kind);
	struct wgt_peer *peer;

	if (!obj)
		return NULL;
	if (kind == WGT_INDEX_HANDSHAKE) {
		peer = obj;
		return peer->session && peer->session->handshake_indexed &&
		       peer->session->handshake.local_index == index ? peer : NULL;
	}
	if (!keypairs_too || ((struct wgt_noise_keypair *)obj)->local_index != index)
		return NULL;
	return ((struct wgt_noise_keypair *)obj)->owner;
}

static void consume_response(struct wgt_device *dev, const struct wgt_ctrl_msg *msg)
{
	const struct wgt_msg_response *resp = (const void *)msg->data;
	struct wgt_noise_keypair *kp;
	struct wgt_peer *peer;
	uint64_t now = wgt_now_ns();
	int r;

	peer = peer_of_index(dev, le32toh(resp->receiver_index), false);
	if (!peer) {
		dev->hs.failed[WGT_HS_FAIL_UNKNOWN_INDEX]++;
		return;
	}
	/* Normally given when the initiation went out (wgt_device_send_to_peer). */
	if (wgt_peer_pcpu_alloc(peer)) {
		dev->hs.failed[WGT_HS_FAIL_OTHER]++;
		return log_peer(WGT_LOG_WARN, peer, "no memory for its counters", -ENOMEM);
	}
	r = wgt_noise_consume_response(&peer->session->handshake, resp);
	if (r) {
		dev->hs.failed[fail_reason(dev, r)]++;
		return log_peer(WGT_LOG_DEBUG, peer, "invalid handshake response", r);
	}
	wgt_peer_roam(peer, &msg->src, msg->local.sa.sa_family ? &msg->local : NULL, msg->ifindex);
	wgt_audit_endpoint(peer);
	wgt_peer_count_rx(peer, dev->n_workers, WGT_MSG_RESPONSE_LEN);
	r = wgt_noise_begin_session(&peer->session->handshake, &peer->keypairs, now, &kp);
	if (r) {
		dev->hs.failed[WGT_HS_FAIL_OTHER]++;
		wgt_handshake_clear(peer);
		return log_peer(WGT_LOG_WARN, peer, "cannot derive a session", r);
	}
	publish_keypair(peer, kp);
	wgt_audit_session_up(peer, true);
	dev->hs.completed_initiator++;
	wgt_peer_timers_event(peer, WGT_TIMER_EV_SESSION_DERIVED);
	wgt_peer_timers_event(peer, WGT_TIMER_EV_HANDSHAKE_COMPLETE);
	wgt_peer_stamp_handshake(peer);
	/* The initiator confirms the session at once: staged packets or a keepalive. */
	wgt_peer_send_keepalive(peer);
	wgt_peer_timers_event(peer, WGT_TIMER_EV_AUTH_RECEIVED);
	wgt_peer_timers_event(peer, WGT_TIMER_EV_AUTH_TRAVERSAL);
}

static void consume_cookie(struct wgt_device *dev, const struct wgt_ctrl_msg *msg)
{
	const struct wgt_msg_cookie *c = (const void *)msg->data;
	struct wgt_peer *peer = peer_of_index(dev, le32toh(c->receiver_index), true);
	int r;

	/* A peer with a keypair has a session; checked all the same. */
	if (!peer || !peer->session) {
		dev->hs.failed[WGT_HS_FAIL_UNKNOWN_INDEX]++;
		return;
	}
	r = wgt_cookie_consume_reply(&peer->session->cookie, c, wgt_now_ns());
	if (r)
		dev->hs.failed[fail_reason(dev, r)]++;
	log_peer(WGT_LOG_DEBUG, peer, r ? "invalid cookie reply" : "received cookie reply", r);
}

static void checker_free(void *ptr)
{
	struct wgt_cookie_checker *c = ptr;

	wgt_cookie_checker_clear(c);
	free(c);
}

/*
 * Control thread only: at every slow tick and after the identity changed.
 * Renews the cookie secret 5 s before it expires (so the workers' copy is
 * never stale and the control thread's own replies never rotate it), and
 * publishes a new copy when the checker differs from the published one.
 */
void wgt_handshake_publish_checker(struct wgt_device *dev)
{
	struct wgt_cookie_checker *old = atomic_load_explicit(&dev->shared_checker,
							      memory_order_relaxed);
	struct wgt_cookie_checker *copy = NULL;

	if (wgt_cookie_checker_refresh(&dev->checker,
				       WGT_COOKIE_SECRET_MAX_AGE - WGT_COOKIE_SECRET_LATENCY,
				       wgt_now_ns()) < 0)
		return;
	if (dev->checker.has_keys) {
		if (old && !CRYPTO_memcmp(old, &dev->checker, sizeof(*old)))
			return;
		copy = malloc(sizeof(*copy));
		if (!copy)
			return;
		memcpy(copy, &dev->checker, sizeof(*copy));
	} else if (!old) {
		return;
	}
	/* C1: the copy is complete before workers see it; pairs with C2 in hs_admit.c. */
	atomic_store_explicit(&dev->shared_checker, copy, memory_order_release);
	if (old)
		wgt_qsbr_defer(&dev->deferred, checker_free, old);
}

/* Control thread only. One handshake message (type 1-3) from a worker. */
void wgt_handshake_receive(struct wgt_device *dev, const struct wgt_ctrl_msg *msg, bool under_load)
{
	enum wgt_message_type type = wgt_msg_classify(msg->data, msg->len);
	enum wgt_cookie_mac_state st;
	uint64_t now = wgt_now_ns();

	/* A down link answers nothing (the kernel closes its sockets then). */
	if (!dev->up)
		return;
	if (type == WGT_MSG_HANDSHAKE_COOKIE) {
		dev->hs.cookie_received++;
		consume_cookie(dev, msg);
		return;
	}
	if (type != WGT_MSG_HANDSHAKE_INITIATION && type != WGT_MSG_HANDSHAKE_RESPONSE)
		return;
	if (type == WGT_MSG_HANDSHAKE_INITIATION)
		dev->hs.init_received++;
	else
		dev->hs.resp_received++;
	st = wgt_cookie_validate(&dev->checker, msg->data, msg->len, &msg->src, under_load, now);
	if (st == WGT_COOKIE_INVALID_MAC) {
		dev->hs.failed[WGT_HS_FAIL_BAD_MAC]++;
		return;
	}
	if (under_load && st == WGT_COOKIE_VALID_MAC_NO_COOKIE) {
		struct wgt_msg_cookie reply;

		if (!wgt_cookie_create_reply(&dev->checker, &reply, msg->data, msg->len, &msg->src,
					     now)) {
			dev->under_load_cookies++;
			wgt_device_send_to(dev, &msg->src, NULL, 0, &reply, sizeof(reply));
		}
		return;
	}
	if (under_load && !wgt_ratelimiter_allow(dev->ratelimiter, &msg->src, now)) {
		dev->hs.failed[WGT_HS_FAIL_RATE_LIMITED]++;
		return;
	}
	if (type == WGT_MSG_HANDSHAKE_INITIATION)
		consume_initiation(dev, msg);
	else
		consume_response(dev, msg);
}
