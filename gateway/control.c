/* SPDX-License-Identifier: MIT */
/* The control thread's event handlers: worker rings, the tick, sends through worker sockets. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/ratelimiter.h"
#include "common/ring.h"
#include "io/tun.h"
#include "io/udp.h"
#include "gateway/device.h"

/* Any thread. Wakes the control thread once until it drains the rings. */
void wgt_device_wake_ctrl(struct wgt_device *dev)
{
	uint64_t one = 1;

	/* W0: the ring push is visible before we look at the flag; pairs with W2. */
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&dev->ctrl_wake_pending, memory_order_relaxed))
		return;
	/* W1: the ring push happened before; pairs with W2. */
	if (atomic_exchange_explicit(&dev->ctrl_wake_pending, true, memory_order_acq_rel))
		return;
	if (write(dev->ctrl_efd, &one, sizeof(one)) != sizeof(one))
		atomic_store_explicit(&dev->ctrl_wake_pending, false, memory_order_relaxed);
}

/*
 * Control thread only. A worker made the peer's pending keypair current
 * (receive.c); what the kernel does after wg_noise_received_with_keypair.
 */
static void key_confirmed(struct wgt_peer *peer)
{
	/* The keys were zeroed, or the peer stopped (link down), since the worker confirmed. */
	if (!atomic_load_explicit(&peer->keypairs.current, memory_order_relaxed))
		return;
	atomic_store_explicit(&peer->rekey_on_receive_asked, false, memory_order_relaxed);
	peer->dev->hs.completed_responder++;
	wgt_peer_stamp_handshake(peer);
	wgt_audit_session_up(peer, false);
	wgt_peer_timers_event(peer, WGT_TIMER_EV_HANDSHAKE_COMPLETE);
	wgt_peer_send_staged(peer);
}

static void collect_events(struct wgt_peer *peer, unsigned slot)
{
	/* V2: pairs with V1 in worker.c. */
	uint32_t bits = atomic_exchange_explicit(&peer->pcpu[slot].events, 0, memory_order_acquire);

	for (unsigned ev = 0; bits; ev++, bits >>= 1) {
		if (!(bits & 1))
			continue;
		/* Workers report this one only for a confirmation whose message did not fit. */
		if (ev == WGT_TIMER_EV_HANDSHAKE_COMPLETE)
			key_confirmed(peer);
		else
			wgt_peer_timers_event(peer, (enum wgt_timer_event)ev);
	}
	/* A worker may have roamed the peer: the control thread, not the worker, logs it. */
	wgt_audit_endpoint(peer);
}

/*
 * Under load when the handshake backlog (handshake messages queued in all rings, not
 * the rings' other messages) is deep, and for a second after.
 */
static bool under_load(struct wgt_device *dev, uint64_t now)
{
	uint64_t backlog = 0;

	for (unsigned i = 0; i < dev->n_workers; i++)
		backlog += wgt_worker_hs_backlog(&dev->workers[i]);
	if (backlog >= WGT_HS_UNDER_LOAD) {
		dev->last_under_load = now;
		/* Workers answer cookies themselves until then (hs_admit.c). */
		atomic_store_explicit(&dev->under_load_until, now + WGT_NSEC_PER_SEC,
				      memory_order_relaxed);
		return true;
	}
	return dev->last_under_load && now - dev->last_under_load < WGT_NSEC_PER_SEC;
}

static void handle_msg(struct wgt_device *dev, unsigned worker, const struct wgt_ctrl_msg *m)
{
	struct wgt_peer *peer = m->peer;
	bool dead = peer && atomic_load_explicit(&peer->dead, memory_order_relaxed);

	switch (m->kind) {
	case WGT_CTRL_HANDSHAKE:
		/* Counted handled first: the backlog is the messages behind this one. */
		atomic_store_explicit(&dev->workers[worker].hs_handled,
				      atomic_load_explicit(&dev->workers[worker].hs_handled,
							   memory_order_relaxed) + 1,
				      memory_order_relaxed);
		wgt_handshake_receive(dev, m, under_load(dev, wgt_now_ns()));
		break;
	case WGT_CTRL_STAGE:
		wgt_peer_stage(peer, m->staged);
		break;
	case WGT_CTRL_WANT_HANDSHAKE:
		if (!dead)
			wgt_peer_timers_event(peer, WGT_TIMER_EV_WANT_HANDSHAKE);
		break;
	case WGT_CTRL_WANT_HANDSHAKE_ON_RECEIVE:
		if (!dead)
			wgt_peer_timers_event(peer, WGT_TIMER_EV_WANT_HANDSHAKE_ON_RECEIVE);
		break;
	case WGT_CTRL_KEY_CONFIRMED:
		if (!dead)
			key_confirmed(peer);
		break;
	case WGT_CTRL_EVENTS:
		if (!dead)
			collect_events(peer, worker);
		break;
	case WGT_CTRL_DEVICE_GONE:
		/* Every worker reports it; the link monitor may have seen it first. */
		if (!atomic_exchange_explicit(&dev->gone, true, memory_order_relaxed))
			wgt_info("interface %s is gone (its TUN queue failed), exiting", dev->ifname);
		break;
	}
}

/* Control thread only. Handles every queued worker message. */
void wgt_ctrl_drain_rings(void *arg)
{
	struct wgt_device *dev = arg;
	uint64_t v;

	/* W2: clear the flag before looking, so a push after this wakes us again. */
	atomic_store_explicit(&dev->ctrl_wake_pending, false, memory_order_seq_cst);
	while (read(dev->ctrl_efd, &v, sizeof(v)) == sizeof(v))
		;
	for (unsigned i = 0; i < dev->n_workers; i++) {
		struct wgt_worker *w = &dev->workers[i];
		const struct wgt_ctrl_msg *m;

		/* A bounded pass per ring, so one busy worker cannot starve the loop. */
		for (unsigned n = 0; n < WGT_RING_SIZE && (m = wgt_ring_peek(w->to_ctrl)); n++) {
			handle_msg(dev, i, m);
			wgt_ring_release(w->to_ctrl);
		}
		if (atomic_exchange_explicit(&w->events_overflow, false, memory_order_relaxed))
			for (struct wgt_peer *p = dev->peers_head; p; p = p->list_next)
				if (p->pcpu) /* none: no worker ever saw the peer */
					collect_events(p, i);
	}
	if (dev->gone)
		ev_break(dev->loop, EVBREAK_ALL);
}

/* Control thread only, every WGT_CTRL_TICK_NS: timer events, then reclamation. */
void wgt_ctrl_tick(struct wgt_device *dev)
{
	wgt_ctrl_drain_rings(dev);
	wgt_qsbr_reclaim(&dev->deferred, wgt_ctrl_drain_rings, dev);
}

/* Control thread only. One datagram through worker 0's socket of dst's family. */
int wgt_device_send_to(struct wgt_device *dev, const union wgt_sockaddr *dst,
		       const union wgt_sockaddr *local, uint32_t ifindex, const void *buf,
		       size_t len)
{
	int r = wgt_device_send_fd(dst->sa.sa_family == AF_INET6 ? dev->udp6[0] : dev->udp4[0],
				   dst, local, ifindex, buf, len);

	if (r) {
		dev->ctrl_send_errors++;
		dev->ctrl_send_eagain += r == -EAGAIN;
		dev->ctrl_send_enobufs += r == -ENOBUFS;
	}
	return r;
}

/* Any thread. */
int wgt_device_send_fd(int fd, const union wgt_sockaddr *dst, const union wgt_sockaddr *local,
		       uint32_t ifindex, const void *buf, size_t len)
{
	union {
		struct cmsghdr align;
		char buf[WGT_UDP_CMSG_SPACE];
	} ctl;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct mmsghdr m = { 0 };
	int r;

	if (fd < 0)
		return -EAFNOSUPPORT;
	m.msg_hdr.msg_name = (void *)dst;
	m.msg_hdr.msg_namelen = wgt_sockaddr_len(dst);
	m.msg_hdr.msg_iov = &iov;
	m.msg_hdr.msg_iovlen = 1;
	if (local && local->sa.sa_family == dst->sa.sa_family) {
		m.msg_hdr.msg_control = ctl.buf;
		if (wgt_udp_cmsg_add_src(&m.msg_hdr, sizeof(ctl.buf), local, ifindex)) {
			m.msg_hdr.msg_control = NULL;
			m.msg_hdr.msg_controllen = 0;
		}
	}
	r = wgt_udp_send_batch(fd, &m, 1);
	if (r == -EINVAL && m.msg_hdr.msg_controllen) {
		m.msg_hdr.msg_control = NULL;
		m.msg_hdr.msg_controllen = 0;
		r = wgt_udp_send_batch(fd, &m, 1);
	}
	return r == 1 ? 0 : r < 0 ? r : -EAGAIN;
}

/* Control thread only. Sends to the peer's endpoint and counts it. */
int wgt_device_send_to_peer(struct wgt_device *dev, struct wgt_peer *peer, const void *buf,
			    size_t len)
{
	struct wgt_endpoint ep;
	int r;

	wgt_peer_get_endpoint(peer, &ep);
	if (ep.addr.sa.sa_family == AF_UNSPEC)
		return -EDESTADDRREQ;
	r = wgt_device_send_to(dev, &ep.addr, &ep.local, ep.ifindex, buf, len);
	if (!r && !wgt_peer_pcpu_alloc(peer))
		wgt_peer_count_tx(peer, dev->n_workers, len);
	return r;
}
