/* SPDX-License-Identifier: MIT */
/* The control thread's side of a peer: timer events and actions, staged packets, keepalives. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common/log.h"
#include "crypto/transport.h"
#include "gateway/device.h"

/* Control thread only. Re-arms the peer's libev timer at the state machine's next deadline. */
void wgt_peer_timers_rearm(struct wgt_peer *peer)
{
	struct ev_loop *loop = peer->dev->loop;
	uint64_t d = wgt_timers_next_deadline(&peer->timers);
	uint64_t now;

	if (atomic_load_explicit(&peer->dead, memory_order_relaxed))
		d = 0;
	if (d == peer->timer_deadline && (d == 0) == !ev_is_active(&peer->timer))
		return;
	ev_timer_stop(loop, &peer->timer);
	peer->timer_deadline = d;
	if (!d)
		return;
	now = wgt_now_ns();
	ev_now_update(loop);
	ev_timer_set(&peer->timer, d > now ? (double)(d - now) / 1e9 : 0., 0.);
	ev_timer_start(loop, &peer->timer);
}

void wgt_peer_timers_stop(struct wgt_peer *peer)
{
	wgt_timers_event(&peer->timers, WGT_TIMER_EV_STOP, wgt_now_ns());
	ev_timer_stop(peer->dev->loop, &peer->timer);
	peer->timer_deadline = 0;
}

/*
 * Control thread only. The handshake and every keypair go, and with them the session
 * (peer_session.c); later data may ask again at once.
 */
static void zero_keys(struct wgt_peer *peer)
{
	wgt_peer_session_end(peer);
	wgt_noise_keypairs_clear(&peer->keypairs);
	atomic_store_explicit(&peer->want_handshake_at, 0, memory_order_relaxed);
}

/* Control thread only. As the kernel's wg_stop for one peer (link down, or removal). */
void wgt_peer_stop(struct wgt_peer *peer)
{
	wgt_peer_drop_staged(peer);
	wgt_peer_timers_stop(peer);
	wgt_audit_session_down(peer, false);
	zero_keys(peer);
}

/* Control thread only. Records a timer event, carries out what it calls for, re-arms. */
void wgt_peer_timers_event(struct wgt_peer *peer, enum wgt_timer_event ev)
{
	if (atomic_load_explicit(&peer->dead, memory_order_relaxed))
		return;
	wgt_peer_timers_apply(peer, wgt_timers_event(&peer->timers, ev, wgt_now_ns()));
	wgt_peer_timers_rearm(peer);
}

/* Control thread only. The actions in the order timers.h asks for. */
void wgt_peer_timers_apply(struct wgt_peer *peer, unsigned actions)
{
	if (!actions || atomic_load_explicit(&peer->dead, memory_order_relaxed))
		return;
	if (actions & WGT_TIMER_CLEAR_ENDPOINT_SRC)
		wgt_peer_clear_endpoint_src(peer);
	if (actions & WGT_TIMER_CLEAR_STAGED) {
		wgt_peer_drop_staged(peer);
		atomic_store_explicit(&peer->want_handshake_at, 0, memory_order_relaxed);
	}
	if (actions & WGT_TIMER_ZERO_KEYS) {
		wgt_audit_session_down(peer, true);
		zero_keys(peer);
	}
	if (actions & WGT_TIMER_SEND_INITIATION)
		wgt_handshake_send_initiation(peer);
	if (actions & WGT_TIMER_SEND_KEEPALIVE)
		wgt_peer_send_keepalive(peer);
}

static void staged_release(struct wgt_peer *peer, struct wgt_staged *s)
{
	/* S2: the worker may send directly once this reaches 0; pairs with S1 in send.c. */
	atomic_fetch_sub_explicit(&peer->staged_inflight, 1, memory_order_release);
	free(s);
}

void wgt_peer_drop_staged(struct wgt_peer *peer)
{
	struct wgt_staged *s;

	while ((s = peer->staged_head)) {
		peer->staged_head = s->next;
		peer->staged_dropped++;
		peer->dev->staged_drops++;
		staged_release(peer, s);
	}
	peer->staged_tail = NULL;
	peer->n_staged = 0;
}

static struct wgt_noise_keypair *usable_keypair(struct wgt_peer *peer)
{
	struct wgt_noise_keypair *kp = atomic_load_explicit(&peer->keypairs.current,
							     memory_order_relaxed);

	if (!kp || !atomic_load_explicit(&kp->send_valid, memory_order_relaxed))
		return NULL;
	return kp;
}

/* Control thread only. Encrypts buf (payload at +16) in place and sends it. Returns 0 or -errno. */
static int send_data(struct wgt_peer *peer, struct wgt_noise_keypair *kp, uint8_t *buf,
		     size_t len, size_t cap)
{
	struct wgt_device *dev = peer->dev;
	size_t out;
	int r;

	r = wgt_transport_encrypt(dev->aead, kp, buf, len, cap,
				  atomic_load_explicit(&dev->mtu, memory_order_relaxed),
				  wgt_now_ns(), &out);
	if (r)
		return r;
	wgt_device_send_to_peer(dev, peer, buf, out);
	return 0;
}

static void after_send(struct wgt_peer *peer, struct wgt_noise_keypair *kp, bool data)
{
	wgt_peer_timers_event(peer, WGT_TIMER_EV_AUTH_TRAVERSAL);
	wgt_peer_timers_event(peer, WGT_TIMER_EV_AUTH_SENT);
	if (data)
		wgt_peer_timers_event(peer, WGT_TIMER_EV_DATA_SENT);
	if (wgt_timers_should_rekey_on_send(kp->is_initiator, kp->birth,
					    atomic_load_explicit(&kp->send_counter,
								 memory_order_relaxed),
					    wgt_now_ns()))
		wgt_peer_timers_event(peer, WGT_TIMER_EV_WANT_HANDSHAKE);
}

/* Control thread only. Sends the staged packets in order while a session allows. */
void wgt_peer_send_staged(struct wgt_peer *peer)
{
	struct wgt_noise_keypair *kp = usable_keypair(peer);
	struct wgt_staged *s;
	bool sent = false;

	while (kp && (s = peer->staged_head)) {
		int r = send_data(peer, kp, s->buf, s->len, s->cap);

		if (r == -EKEYEXPIRED)
			break;
		peer->staged_head = s->next;
		if (!peer->staged_head)
			peer->staged_tail = NULL;
		peer->n_staged--;
		staged_release(peer, s);
		sent = true;
	}
	if (sent)
		after_send(peer, kp, true);
	if (peer->staged_head)
		wgt_peer_timers_event(peer, WGT_TIMER_EV_WANT_HANDSHAKE);
}

/* Control thread only. Takes a packet a worker could not send; the oldest goes when full. */
void wgt_peer_stage(struct wgt_peer *peer, struct wgt_staged *pkt)
{
	if (atomic_load_explicit(&peer->dead, memory_order_relaxed)) {
		/* Removed while the packet was in a worker's ring: dropped, and counted. */
		peer->dev->staged_drops++;
		staged_release(peer, pkt);
		return;
	}
	pkt->next = NULL;
	if (peer->staged_tail)
		peer->staged_tail->next = pkt;
	else
		peer->staged_head = pkt;
	peer->staged_tail = pkt;
	if (++peer->n_staged > WGT_MAX_STAGED) {
		struct wgt_staged *old = peer->staged_head;

		peer->staged_head = old->next;
		peer->n_staged--;
		peer->staged_dropped++;
		peer->dev->staged_drops++;
		staged_release(peer, old);
	}
	wgt_peer_send_staged(peer);
}

/* Control thread only. The staged packets, or else one empty data message. */
void wgt_peer_send_keepalive(struct wgt_peer *peer)
{
	uint8_t buf[WGT_MSG_DATA_MIN_LEN];
	struct wgt_noise_keypair *kp;

	if (peer->staged_head) {
		wgt_peer_send_staged(peer);
		return;
	}
	kp = usable_keypair(peer);
	if (!kp || send_data(peer, kp, buf, 0, sizeof(buf))) {
		wgt_peer_timers_event(peer, WGT_TIMER_EV_WANT_HANDSHAKE);
		return;
	}
	after_send(peer, kp, false);
}
