/* SPDX-License-Identifier: MIT */
/* Worker threads: the loop around the send and receive paths, and what both share. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/ring.h"
#include "crypto/aead.h"
#include "gateway/busy_poll.h"
#include "gateway/worker_pvt.h"

/* Single writer (the owning worker): a load and a store, no read-modify-write. */
void wgt_worker_stat_inc(_Atomic uint64_t *c, uint64_t n)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

/* Worker-owned. Pushes an urgent message and wakes the control thread. */
bool wgt_worker_push_urgent(struct wgt_worker *w, const struct wgt_ctrl_msg *m)
{
	if (!wgt_ring_push(w->to_ctrl, m)) {
		wgt_worker_stat_inc(&w->stats.ring_full, 1);
		return false;
	}
	wgt_device_wake_ctrl(w->dev);
	return true;
}

/* Worker-owned. Records timer events for the control thread's next tick. */
void wgt_worker_peer_events(struct wgt_worker *w, struct wgt_peer *peer, uint32_t bits)
{
	struct wgt_peer_pcpu *p = &peer->pcpu[w->id];
	struct wgt_ctrl_msg m;

	if ((atomic_load_explicit(&p->events, memory_order_relaxed) & bits) == bits)
		return;
	/* V1: the bits are visible before the message; pairs with V2 in control.c. */
	if (atomic_fetch_or_explicit(&p->events, bits, memory_order_release))
		return;
	m.kind = WGT_CTRL_EVENTS;
	m.peer = peer;
	if (!wgt_ring_push(w->to_ctrl, &m))
		atomic_store_explicit(&w->events_overflow, true, memory_order_relaxed);
}

/* Worker-owned. Asks for a handshake at most once per WGT_WANT_HANDSHAKE_INTERVAL per peer. */
void wgt_worker_want_handshake(struct wgt_worker *w, struct wgt_peer *peer,
			       enum wgt_ctrl_msg_kind kind)
{
	uint64_t last = atomic_load_explicit(&peer->want_handshake_at, memory_order_relaxed);
	uint64_t now = w->data->now;
	struct wgt_ctrl_msg m;

	if (last && now - last < WGT_WANT_HANDSHAKE_INTERVAL)
		return;
	if (!atomic_compare_exchange_strong_explicit(&peer->want_handshake_at, &last, now,
						     memory_order_relaxed, memory_order_relaxed))
		return;
	m.kind = kind;
	m.peer = peer;
	wgt_worker_push_urgent(w, &m);
}

void wgt_worker_wait_writable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLOUT };

	wgt_qsbr_offline();
	poll(&p, 1, 10);
	wgt_qsbr_online();
}

/* Worker-owned. The TUN device is gone: tell the control thread and stop. */
void wgt_worker_device_gone(struct wgt_worker *w)
{
	struct wgt_ctrl_msg m = { .kind = WGT_CTRL_DEVICE_GONE };

	wgt_worker_push_urgent(w, &m);
	w->data->stop = true;
}

/* Worker-owned. Runs the control thread's commands (the caller drained the eventfd, if at all). */
static void handle_cmds(struct wgt_worker *w)
{
	struct wgt_worker_cmd cmd;

	while (wgt_ring_pop(w->to_worker, &cmd)) {
		if (cmd.kind == WGT_WORKER_STOP)
			w->data->stop = true;
		if (cmd.kind == WGT_WORKER_SET_SOCKETS) {
			w->udp_fd[0] = cmd.fd4;
			w->udp_fd[1] = cmd.fd6;
			w->data->gso[0] = w->data->gso[1] = w->dev->udp_gso;
		}
		/* C1: the control thread may close the old sockets after this; pairs with C2. */
		atomic_fetch_add_explicit(&w->cmd_done, 1, memory_order_release);
	}
}

/*
 * Worker-owned. The worker goes to sleep: the time since the last mark was
 * busy. A blocking sleep sets bit 0 of the heartbeat, so /healthz counts a
 * worker waiting for work as alive however long it waits.
 */
static void idle_begin(struct wgt_worker *w, bool blocking)
{
	uint64_t now = wgt_now_ns();

	wgt_worker_stat_inc(&w->stats.busy_ns, now - w->data->busy_mark);
	if (blocking)
		atomic_store_explicit(&w->stats.heartbeat, now | 1, memory_order_relaxed);
}

/* Worker-owned. Awake again: busy from now on, and a fresh heartbeat (bit 0 clear). */
static void idle_end(struct wgt_worker *w, bool blocking)
{
	uint64_t now = wgt_now_ns();

	w->data->busy_mark = now;
	if (blocking)
		atomic_store_explicit(&w->stats.heartbeat, now & ~1ULL, memory_order_relaxed);
}

/* The descriptors of a worker's poll(), and its bits for those thought readable. */
enum { FD_TUN, FD_UDP4, FD_UDP6, FD_EFD, FD_COUNT };
#define READY_ALL ((1U << FD_EFD) - 1)

/*
 * Worker-owned. Asks the kernel which descriptors are readable: without
 * waiting while the worker is busy, else until one is. Returns READY_*
 * bits; drains the eventfd when it fired.
 */
static unsigned wait_ready(struct wgt_worker *w, bool block)
{
	struct pollfd p[FD_COUNT] = {
		[FD_TUN] = { .fd = w->tun_fd, .events = POLLIN },
		[FD_UDP4] = { .fd = w->udp_fd[0], .events = POLLIN },
		[FD_UDP6] = { .fd = w->udp_fd[1], .events = POLLIN },
		[FD_EFD] = { .fd = w->efd, .events = POLLIN },
	};
	unsigned ready = 0;
	uint64_t v;

	if (block) {
		idle_begin(w, true);
		wgt_qsbr_offline();
	}
	poll(p, FD_COUNT, block ? -1 : 0);
	if (block) {
		wgt_qsbr_online();
		idle_end(w, true);
	}
	if (p[FD_TUN].revents & (POLLERR | POLLHUP | POLLNVAL) && !wgt_tun_exists(w->dev->ifname))
		wgt_worker_device_gone(w);
	for (unsigned i = 0; i < FD_EFD; i++)
		if (p[i].revents)
			ready |= 1U << i;
	if (p[FD_EFD].revents & POLLIN)
		while (read(w->efd, &v, sizeof(v)) == sizeof(v))
			;
	return ready;
}

/*
 * Worker-owned. Sleeps up to the nap on a timer, woken early only by the
 * TUN queue or the eventfd: the UDP sockets are left out, so whoever sends
 * to them meanwhile wakes nobody (busy_poll.h). Then asks which
 * descriptors are readable, as wait_ready(w, false) does.
 */
static unsigned nap(struct wgt_worker *w, uint64_t ns)
{
	struct pollfd p[2] = {
		{ .fd = w->tun_fd, .events = POLLIN },
		{ .fd = w->efd, .events = POLLIN },
	};
	struct timespec ts = { .tv_sec = (time_t)(ns / 1000000000), .tv_nsec = (long)(ns % 1000000000) };

	idle_begin(w, false);
	wgt_qsbr_offline();
	ppoll(p, 2, &ts, NULL);
	wgt_qsbr_online();
	idle_end(w, false);
	return wait_ready(w, false);
}

/*
 * Worker-owned, out of work. When the worker receives a stream and
 * busy_poll.h says to, it polls without waiting for up to the busy-poll
 * cap, or else naps up to WGT_NAP_TRIES times; then it sleeps in poll().
 * Returns READY_* bits.
 */
static unsigned idle_wait(struct wgt_worker *w)
{
	struct wgt_worker_data *d = w->data;
	uint64_t cap = w->dev->busy_poll_ns, nap_ns = w->dev->nap_ns;
	unsigned ready = 0;

	if ((cap || nap_ns) &&
	    wgt_busy_poll_receiving(&d->busy_poll,
				    atomic_load_explicit(&w->stats.rx_bytes, memory_order_relaxed),
				    atomic_load_explicit(&w->stats.tx_bytes, memory_order_relaxed)) &&
	    wgt_busy_poll_spin(&d->busy_poll)) {
		if (cap) {
			uint64_t t0 = wgt_now_ns();

			do
				ready = wait_ready(w, false);
			while (!ready && !d->stop && wgt_now_ns() - t0 < cap);
		} else {
			for (unsigned k = 0; !ready && !d->stop && k < WGT_NAP_TRIES; k++)
				ready = nap(w, nap_ns);
		}
		wgt_busy_poll_result(&d->busy_poll, ready != 0);
		if (ready) {
			wgt_worker_stat_inc(&w->stats.busy_poll_hits, 1);
			return ready;
		}
	}
	return wait_ready(w, true);
}

#ifdef WGT_TEST_HOOKS
/*
 * Worker-owned, test builds only: stalls while w->test_stall is set
 * (gateway/health.c sets it from a trigger file), offline for QSBR so that
 * the control thread goes on, and without a heartbeat, as a stuck worker.
 */
static void test_stall(struct wgt_worker *w)
{
	wgt_info("test hook: worker %u stalls", w->id);
	wgt_qsbr_offline();
	while (atomic_load_explicit(&w->test_stall, memory_order_relaxed) &&
	       !wgt_ring_count(w->to_worker))
		usleep(10000);
	wgt_qsbr_online();
	wgt_info("test hook: worker %u resumes", w->id);
}
#endif

/*
 * The loop serves the descriptors it thinks readable and stops calling
 * the ones that came back empty, until poll() says otherwise: a busy TUN
 * queue no longer costs an empty recvmmsg() and an eventfd read() per
 * pass. While the worker has work, poll() does not wait and runs only when
 * one descriptor is thought empty; commands are seen by the ring, not by
 * the eventfd, so a worker that never waits still takes them.
 */
static void *worker_main(void *arg)
{
	struct wgt_worker *w = arg;
	struct wgt_worker_data *d = w->data;
	unsigned ready = READY_ALL;

	wgt_qsbr_register();
	d->busy_mark = wgt_now_ns();
	atomic_store_explicit(&w->stats.heartbeat, d->busy_mark & ~1ULL, memory_order_relaxed);
	/* A nap lasts what it says: the default slack of 50 us would double it. */
	if (w->dev->nap_ns)
		prctl(PR_SET_TIMERSLACK, WGT_NAP_SLACK_NS);
	while (!d->stop) {
		unsigned did = 0, want;
		bool drained;

		if (wgt_ring_count(w->to_worker)) {
			handle_cmds(w);
			ready = READY_ALL;   /* the sockets may be new */
		}
		if (d->stop)
			break;
#ifdef WGT_TEST_HOOKS
		if (atomic_load_explicit(&w->test_stall, memory_order_relaxed))
			test_stall(w);
#endif
		d->now = wgt_now_ns();
		/* One store and one add per pass, on the worker's own stats lines. */
		atomic_store_explicit(&w->stats.heartbeat, d->now & ~1ULL, memory_order_relaxed);
		wgt_worker_stat_inc(&w->stats.busy_ns, d->now - d->busy_mark);
		d->busy_mark = d->now;
		if (ready & 1U << FD_TUN) {
			unsigned n = wgt_send_from_tun(w, &drained);

			if (n)
				wgt_worker_stat_inc(&w->stats.tx_batches, 1);
			did += n;
			if (drained)
				ready &= ~(1U << FD_TUN);
		}
		for (unsigned i = 0; i < 2; i++) {
			unsigned n;

			if (!(ready & 1U << (FD_UDP4 + i)))
				continue;
			n = wgt_receive_from_udp(w, w->udp_fd[i], &drained);
			if (n)
				wgt_worker_stat_inc(&w->stats.rx_batches, n);
			did += n;
			if (drained)
				ready &= ~(1U << (FD_UDP4 + i));
		}
		wgt_qsbr_quiescent();
		/* A socket that is absent (-1) is never reported readable: it does not count. */
		want = 1U << FD_TUN | (unsigned)(w->udp_fd[0] >= 0) << FD_UDP4 |
		       (unsigned)(w->udp_fd[1] >= 0) << FD_UDP6;
		if (d->stop || (did && (ready & want) == want))
			continue;
		ready |= did ? wait_ready(w, false) : idle_wait(w);
	}
	wgt_qsbr_unregister();
	return NULL;
}

static void data_free(struct wgt_worker_data *d)
{
	if (!d)
		return;
	for (unsigned i = 0; i < WORKER_TX_POOL; i++)
		free(d->slot[i]);
	free(d->rbuf);
	free(d->arena);
	for (unsigned i = 0; i < WORKER_RX_MSGS; i++)
		free(d->rx[i]);
	for (unsigned i = 0; i < WORKER_RX_OUT; i++)
		free(d->out[i]);
	free(d);
}

static struct wgt_worker_data *data_new(const struct wgt_device *dev)
{
	struct wgt_worker_data *d = calloc(1, sizeof(*d));
	bool ok = d != NULL;

	for (unsigned i = 0; ok && i < WORKER_TX_POOL; i++)
		ok = (d->slot[i] = aligned_alloc(64, WORKER_SLOT_SIZE)) != NULL;
	if (ok)
		ok = !wgt_hs_budget_init(&d->hs_budget);
	if (ok)
		ok = (d->rbuf = aligned_alloc(64, WORKER_SLOT_SIZE)) != NULL;
	if (ok)
		ok = (d->arena = aligned_alloc(64, WORKER_ARENA_SIZE)) != NULL;
	for (unsigned i = 0; ok && i < WORKER_RX_MSGS; i++)
		ok = (d->rx[i] = aligned_alloc(64, WORKER_SLOT_SIZE)) != NULL;
	for (unsigned i = 0; ok && i < WORKER_RX_OUT; i++)
		ok = (d->out[i] = aligned_alloc(64, WORKER_SLOT_SIZE)) != NULL;
	if (!ok) {
		data_free(d);
		return NULL;
	}
	d->gso[0] = d->gso[1] = dev->udp_gso;
	return d;
}

/* Control thread only. Allocates the worker's buffers and starts its thread. */
int wgt_worker_start(struct wgt_worker *w)
{
	char name[16];
	int r;

	w->data = data_new(w->dev);
	w->aead = wgt_aead_new();
	if (!w->data || !w->aead) {
		wgt_worker_release(w);
		return -ENOMEM;
	}
	r = pthread_create(&w->thread, NULL, worker_main, w);
	if (r) {
		wgt_worker_release(w);
		return -r;
	}
	snprintf(name, sizeof(name), "wgate-w%u", w->id);
	pthread_setname_np(w->thread, name);
	w->started = true;
	return 0;
}

/* Control thread only: the single producer of w->to_worker. */
int wgt_worker_send_cmd(struct wgt_worker *w, const struct wgt_worker_cmd *cmd)
{
	uint64_t one = 1;

	if (!wgt_ring_push(w->to_worker, cmd))
		return -ENOBUFS;
	if (write(w->efd, &one, sizeof(one)) != sizeof(one))
		return -errno;
	return 0;
}

/* Control thread only, after the thread was joined (or never started). */
void wgt_worker_release(struct wgt_worker *w)
{
	wgt_aead_free(w->aead);
	w->aead = NULL;
	data_free(w->data);
	w->data = NULL;
}
