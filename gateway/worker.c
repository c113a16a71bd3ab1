/* SPDX-License-Identifier: MIT */
/* Worker threads: one TUN queue and one UDP socket per family each, the whole data path. */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <linux/virtio_net.h>

#include "common/allowedips.h"
#include "common/log.h"
#include "common/ring.h"
#include "crypto/aead.h"
#include "crypto/transport.h"
#include "io/tun.h"
#include "io/udp.h"
#include "gateway/device.h"

#define WORKER_BATCH 32
/* TUN reads land at +6 so the IP packet starts at +16, after the virtio-net header. */
#define VNET_OFF (WGT_PKT_HEADROOM - WGT_TUN_VNET_HDR_LEN)
#define BUF_SIZE (WGT_PKT_HEADROOM + 65535 + WGT_PKT_TAILROOM)
#define SEND_RETRIES 50

struct wgt_worker_data {
	uint8_t *tx[WORKER_BATCH];
	uint8_t *rx[WORKER_BATCH];
	struct mmsghdr msgs[WORKER_BATCH];
	struct iovec iov[WORKER_BATCH];
	union wgt_sockaddr names[WORKER_BATCH];
	union {
		struct cmsghdr align;
		char buf[WGT_UDP_CMSG_SPACE];
	} ctl[WORKER_BATCH];
	struct wgt_peer *peers[WORKER_BATCH];
	struct wgt_noise_keypair *kps[WORKER_BATCH];
	uint64_t now;
	bool stop;
};

static struct wgt_log_ratelimit dp_log_rl = WGT_LOG_RATELIMIT_INIT;

static void stat_inc(_Atomic uint64_t *c, uint64_t n)
{
	/* Single writer (this worker): no read-modify-write needed. */
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

/* Worker-owned. Pushes an urgent message and wakes the control thread. */
static bool push_urgent(struct wgt_worker *w, const struct wgt_ctrl_msg *m)
{
	if (!wgt_ring_push(w->to_ctrl, m)) {
		stat_inc(&w->stats.ring_full, 1);
		return false;
	}
	wgt_device_wake_ctrl(w->dev);
	return true;
}

/* Worker-owned. Records timer events for the control thread's next tick. */
static void peer_events(struct wgt_worker *w, struct wgt_peer *peer, uint32_t bits)
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
static void want_handshake(struct wgt_worker *w, struct wgt_peer *peer, enum wgt_ctrl_msg_kind k)
{
	uint64_t last = atomic_load_explicit(&peer->want_handshake_at, memory_order_relaxed);
	uint64_t now = w->data->now;
	struct wgt_ctrl_msg m;

	if (last && now - last < WGT_WANT_HANDSHAKE_INTERVAL)
		return;
	if (!atomic_compare_exchange_strong_explicit(&peer->want_handshake_at, &last, now,
						     memory_order_relaxed, memory_order_relaxed))
		return;
	m.kind = k;
	m.peer = peer;
	push_urgent(w, &m);
}

/* Worker-owned. Hands a packet without a session to the control thread, in order. */
static void stage(struct wgt_worker *w, struct wgt_peer *peer, const uint8_t *pkt, size_t len)
{
	size_t cap = WGT_PKT_HEADROOM + len + WGT_PKT_TAILROOM;
	struct wgt_staged *s = malloc(sizeof(*s) + cap);
	struct wgt_ctrl_msg m;

	if (!s) {
		stat_inc(&w->stats.ring_full, 1);
		return;
	}
	s->len = (uint32_t)len;
	s->cap = (uint32_t)cap;
	memcpy(s->buf + WGT_PKT_HEADROOM, pkt, len);
	m.kind = WGT_CTRL_STAGE;
	m.peer = peer;
	m.staged = s;
	atomic_fetch_add_explicit(&peer->staged_inflight, 1, memory_order_relaxed);
	if (!push_urgent(w, &m)) {
		atomic_fetch_sub_explicit(&peer->staged_inflight, 1, memory_order_relaxed);
		free(s);
	}
}

static const void *dst_addr(const uint8_t *pkt, size_t len, int *ret_family)
{
	if (len >= 20 && pkt[0] >> 4 == 4) {
		*ret_family = AF_INET;
		return pkt + 16;
	}
	if (len >= 40 && pkt[0] >> 4 == 6) {
		*ret_family = AF_INET6;
		return pkt + 24;
	}
	return NULL;
}

/* Worker-owned. Waits (offline) until fd is writable or a short timeout passes. */
static void wait_writable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLOUT };

	wgt_qsbr_offline();
	poll(&p, 1, 10);
	wgt_qsbr_online();
}

/*
 * Worker-owned. Sends msgs[0..n) on fd; returns how many left. Each
 * message is tried until sent or refused: a full socket buffer waits.
 */
static unsigned send_all(struct wgt_worker *w, int fd, struct mmsghdr *msgs, unsigned n,
			 bool *sent)
{
	unsigned done = 0, tries = 0;

	while (done < n) {
		int r = wgt_udp_send_batch(fd, msgs + done, n - done);

		if (r > 0) {
			for (int i = 0; i < r; i++)
				sent[done + i] = true;
			done += (unsigned)r;
			continue;
		}
		if (r == -EAGAIN && ++tries < SEND_RETRIES) {
			wait_writable(fd);
			continue;
		}
		if (r == -EINVAL && msgs[done].msg_hdr.msg_controllen) {
			/* Our cached source address is gone: let routing choose. */
			msgs[done].msg_hdr.msg_controllen = 0;
			msgs[done].msg_hdr.msg_control = NULL;
			continue;
		}
		stat_inc(&w->stats.tx_send_errors, 1);
		if (wgt_log_ratelimit_ok(&dp_log_rl, w->data->now))
			wgt_warn("worker %u: send: %s", w->id, strerror(-r));
		sent[done++] = false;
		tries = 0;
	}
	return done;
}

/* Worker-owned. Reads a batch from the TUN queue, encrypts and sends it. Returns packets read. */
static unsigned tun_to_udp(struct wgt_worker *w)
{
	struct wgt_worker_data *d = w->data;
	struct wgt_device *dev = w->dev;
	size_t mtu = atomic_load_explicit(&dev->mtu, memory_order_relaxed);
	unsigned nread = 0, nmsg = 0;
	bool sent[WORKER_BATCH];
	int fds[WORKER_BATCH];

	for (; nread < WORKER_BATCH; nread++) {
		uint8_t *buf = d->tx[nmsg];
		ssize_t n = wgt_tun_read(w->tun_fd, buf + VNET_OFF, BUF_SIZE - VNET_OFF - WGT_PKT_TAILROOM);
		struct virtio_net_hdr *vh = (void *)(buf + VNET_OFF);
		struct wgt_noise_keypair *kp;
		struct wgt_endpoint ep;
		struct wgt_peer *peer;
		const void *dst;
		size_t len, out;
		int family, r;

		if (n == -EAGAIN)
			break;
		if (n < 0) {
			if (n == -EBADFD) {
				struct wgt_ctrl_msg m = { .kind = WGT_CTRL_DEVICE_GONE };

				push_urgent(w, &m);
				d->stop = true;
			}
			break;
		}
		if ((size_t)n <= WGT_TUN_VNET_HDR_LEN || vh->gso_type != VIRTIO_NET_HDR_GSO_NONE)
			continue;
		len = (size_t)n - WGT_TUN_VNET_HDR_LEN;
		dst = dst_addr(buf + WGT_PKT_HEADROOM, len, &family);
		if (!dst)
			continue;
		peer = wgt_allowedips_lookup(dev->allowedips, family, dst);
		if (unlikely(!peer)) {
			stat_inc(&w->stats.tx_no_route, 1);
			continue;
		}
		/* S1: pairs with S2 in peer_timers.c: once 0, every staged packet is out. */
		kp = atomic_load_explicit(&peer->keypairs.current, memory_order_acquire);
		if (unlikely(atomic_load_explicit(&peer->staged_inflight, memory_order_acquire) ||
			     !kp)) {
			stage(w, peer, buf + WGT_PKT_HEADROOM, len);
			want_handshake(w, peer, WGT_CTRL_WANT_HANDSHAKE);
			continue;
		}
		r = wgt_transport_encrypt(w->aead, kp, buf, len, BUF_SIZE, mtu, d->now, &out);
		if (unlikely(r)) {
			if (r == -EKEYEXPIRED) {
				stage(w, peer, buf + WGT_PKT_HEADROOM, len);
				want_handshake(w, peer, WGT_CTRL_WANT_HANDSHAKE);
			}
			continue;
		}
		wgt_peer_get_endpoint(peer, &ep);
		if (unlikely(ep.addr.sa.sa_family == AF_UNSPEC)) {
			stat_inc(&w->stats.tx_no_endpoint, 1);
			continue;
		}
		fds[nmsg] = w->udp_fd[ep.addr.sa.sa_family == AF_INET6];
		d->names[nmsg] = ep.addr;
		d->iov[nmsg].iov_base = buf;
		d->iov[nmsg].iov_len = out;
		memset(&d->msgs[nmsg], 0, sizeof(d->msgs[nmsg]));
		d->msgs[nmsg].msg_hdr.msg_name = &d->names[nmsg];
		d->msgs[nmsg].msg_hdr.msg_namelen = wgt_sockaddr_len(&ep.addr);
		d->msgs[nmsg].msg_hdr.msg_iov = &d->iov[nmsg];
		d->msgs[nmsg].msg_hdr.msg_iovlen = 1;
		if (ep.local.sa.sa_family == ep.addr.sa.sa_family) {
			d->msgs[nmsg].msg_hdr.msg_control = d->ctl[nmsg].buf;
			if (wgt_udp_cmsg_add_src(&d->msgs[nmsg].msg_hdr, sizeof(d->ctl[nmsg].buf),
						 &ep.local, ep.ifindex)) {
				d->msgs[nmsg].msg_hdr.msg_control = NULL;
				d->msgs[nmsg].msg_hdr.msg_controllen = 0;
			}
		}
		d->peers[nmsg] = peer;
		d->kps[nmsg] = kp;
		nmsg++;
	}

	/* Runs of messages on one socket go out in one sendmmsg, in read order. */
	for (unsigned i = 0; i < nmsg;) {
		unsigned j = i + 1;

		while (j < nmsg && fds[j] == fds[i])
			j++;
		if (fds[i] < 0) {
			for (unsigned k = i; k < j; k++)
				sent[k] = false;
		} else {
			send_all(w, fds[i], d->msgs + i, j - i, sent + i);
		}
		i = j;
	}
	for (unsigned i = 0; i < nmsg; i++) {
		struct wgt_noise_keypair *kp = d->kps[i];

		if (!sent[i])
			continue;
		wgt_peer_count_tx(d->peers[i], w->id, d->iov[i].iov_len);
		stat_inc(&w->stats.tx_packets, 1);
		stat_inc(&w->stats.tx_bytes, d->iov[i].iov_len);
		peer_events(w, d->peers[i],
			    1U << WGT_TIMER_EV_AUTH_TRAVERSAL | 1U << WGT_TIMER_EV_AUTH_SENT |
				    1U << WGT_TIMER_EV_DATA_SENT);
		if (unlikely(wgt_timers_should_rekey_on_send(
			    kp->is_initiator, kp->birth,
			    atomic_load_explicit(&kp->send_counter, memory_order_relaxed), d->now)))
			want_handshake(w, d->peers[i], WGT_CTRL_WANT_HANDSHAKE);
	}
	return nread;
}

static const void *src_addr(const uint8_t *pkt, size_t len, int *ret_family, size_t *ret_len)
{
	if (len >= 20 && pkt[0] >> 4 == 4) {
		size_t tot = (size_t)pkt[2] << 8 | pkt[3];

		if (tot < 20 || tot > len)
			return NULL;
		*ret_family = AF_INET;
		*ret_len = tot;
		return pkt + 12;
	}
	if (len >= 40 && pkt[0] >> 4 == 6) {
		size_t tot = 40 + ((size_t)pkt[4] << 8 | pkt[5]);

		if (tot > len)
			return NULL;
		*ret_family = AF_INET6;
		*ret_len = tot;
		return pkt + 8;
	}
	return NULL;
}

/* Worker-owned. Writes one packet (virtio-net header at buf + VNET_OFF) to the TUN queue. */
static void tun_write(struct wgt_worker *w, uint8_t *buf, size_t len)
{
	for (int tries = 0; tries < SEND_RETRIES; tries++) {
		ssize_t r = wgt_tun_write(w->tun_fd, buf + VNET_OFF, WGT_TUN_VNET_HDR_LEN + len);

		if (r >= 0)
			return;
		if (r != -EAGAIN) {
			stat_inc(&w->stats.tun_write_errors, 1);
			return;
		}
		wait_writable(w->tun_fd);
	}
	stat_inc(&w->stats.tun_write_errors, 1);
}

/* Worker-owned. One data message: decrypt, replay check, roam, source check, TUN. */
static void receive_data(struct wgt_worker *w, uint8_t *buf, size_t len,
			 const union wgt_sockaddr *src, const struct wgt_udp_rx_info *info)
{
	struct wgt_device *dev = w->dev;
	uint32_t index = le32toh(((const struct wgt_msg_data *)buf)->receiver_index);
	struct wgt_noise_keypair *kp;
	enum wgt_index_kind kind;
	struct wgt_peer *peer;
	size_t plen, ilen;
	const void *isrc;
	int family, r;

	kp = wgt_index_lookup(&dev->index, index, &kind);
	if (unlikely(!kp || kind != WGT_INDEX_KEYPAIR || kp->local_index != index)) {
		stat_inc(&w->stats.rx_no_keypair, 1);
		return;
	}
	peer = kp->owner;
	r = wgt_transport_decrypt(w->aead, kp, buf, len, w->data->now, &plen);
	if (unlikely(r)) {
		if (r == -ESTALE)
			stat_inc(&w->stats.rx_replayed, 1);
		else
			stat_inc(&w->stats.rx_auth_failed, 1);
		return;
	}
	wgt_peer_roam(peer, src, info->has_local ? &info->local : NULL, info->ifindex);
	wgt_peer_count_rx(peer, w->id, len);
	stat_inc(&w->stats.rx_packets, 1);
	stat_inc(&w->stats.rx_bytes, len);
	if (unlikely(kp == atomic_load_explicit(&peer->keypairs.next, memory_order_relaxed))) {
		struct wgt_ctrl_msg m = { .kind = WGT_CTRL_KEY_CONFIRMED, .peer = peer, .kp = kp };

		push_urgent(w, &m);
	} else if (unlikely(kp == atomic_load_explicit(&peer->keypairs.current,
						       memory_order_relaxed) &&
			    wgt_timers_should_rekey_on_receive(kp->is_initiator, kp->birth,
							       w->data->now) &&
			    !atomic_exchange_explicit(&peer->rekey_on_receive_asked, true,
						      memory_order_relaxed))) {
		struct wgt_ctrl_msg m = { .kind = WGT_CTRL_WANT_HANDSHAKE_ON_RECEIVE, .peer = peer };

		push_urgent(w, &m);
	}
	if (!plen) {
		peer_events(w, peer, 1U << WGT_TIMER_EV_AUTH_RECEIVED |
					     1U << WGT_TIMER_EV_AUTH_TRAVERSAL);
		return;
	}
	peer_events(w, peer, 1U << WGT_TIMER_EV_AUTH_RECEIVED | 1U << WGT_TIMER_EV_AUTH_TRAVERSAL |
				     1U << WGT_TIMER_EV_DATA_RECEIVED);
	isrc = src_addr(buf + WGT_PKT_HEADROOM, plen, &family, &ilen);
	if (unlikely(!isrc)) {
		stat_inc(&w->stats.rx_invalid, 1);
		return;
	}
	/* Cryptokey routing: the inner source must be one of the peer's allowed IPs. */
	if (unlikely(wgt_allowedips_lookup(dev->allowedips, family, isrc) != peer)) {
		stat_inc(&w->stats.rx_bad_source, 1);
		if (wgt_log_ratelimit_ok(&dp_log_rl, w->data->now)) {
			char name[12];

			wgt_peer_name(peer, name);
			wgt_dbg("peer %s: packet with a source outside its allowed IPs", name);
		}
		return;
	}
	memset(buf + VNET_OFF, 0, WGT_TUN_VNET_HDR_LEN);
	tun_write(w, buf, ilen);
}

/* Worker-owned. Receives a batch on one socket and handles each datagram. Returns datagrams. */
static unsigned udp_to_tun(struct wgt_worker *w, int fd)
{
	struct wgt_worker_data *d = w->data;
	int n;

	if (fd < 0)
		return 0;
	for (unsigned i = 0; i < WORKER_BATCH; i++) {
		memset(&d->msgs[i], 0, sizeof(d->msgs[i]));
		d->iov[i].iov_base = d->rx[i];
		d->iov[i].iov_len = BUF_SIZE - WGT_PKT_TAILROOM;
		d->msgs[i].msg_hdr.msg_name = &d->names[i];
		d->msgs[i].msg_hdr.msg_namelen = sizeof(d->names[i]);
		d->msgs[i].msg_hdr.msg_iov = &d->iov[i];
		d->msgs[i].msg_hdr.msg_iovlen = 1;
		d->msgs[i].msg_hdr.msg_control = d->ctl[i].buf;
		d->msgs[i].msg_hdr.msg_controllen = sizeof(d->ctl[i].buf);
	}
	n = wgt_udp_recv_batch(fd, d->msgs, WORKER_BATCH);
	if (n <= 0)
		return 0;
	for (int i = 0; i < n; i++) {
		struct wgt_udp_rx_info info;
		uint8_t *buf = d->rx[i];
		size_t len = d->msgs[i].msg_len;
		enum wgt_message_type type;

		if (wgt_udp_rx_info_parse(&d->msgs[i].msg_hdr, &info)) {
			stat_inc(&w->stats.rx_invalid, 1);
			continue;
		}
		type = wgt_msg_classify(buf, len);
		if (likely(type == WGT_MSG_DATA)) {
			receive_data(w, buf, len, &d->names[i], &info);
		} else if (type != WGT_MSG_INVALID) {
			struct wgt_ctrl_msg *m = wgt_ring_reserve(w->to_ctrl);

			if (!m) {
				stat_inc(&w->stats.ring_full, 1);
				continue;
			}
			m->kind = WGT_CTRL_HANDSHAKE;
			m->len = (uint16_t)len;
			memcpy(m->data, buf, len);
			m->src = d->names[i];
			if (info.has_local)
				m->local = info.local;
			else
				memset(&m->local, 0, sizeof(m->local));
			m->ifindex = info.ifindex;
			wgt_ring_commit(w->to_ctrl);
			wgt_device_wake_ctrl(w->dev);
		} else {
			stat_inc(&w->stats.rx_invalid, 1);
		}
	}
	return (unsigned)n;
}

static void handle_cmds(struct wgt_worker *w)
{
	struct wgt_worker_cmd cmd;
	uint64_t v;

	while (read(w->efd, &v, sizeof(v)) == sizeof(v))
		;
	while (wgt_ring_pop(w->to_worker, &cmd)) {
		if (cmd.kind == WGT_WORKER_STOP)
			w->data->stop = true;
		if (cmd.kind == WGT_WORKER_SET_SOCKETS) {
			w->udp_fd[0] = cmd.fd4;
			w->udp_fd[1] = cmd.fd6;
		}
		/* C1: the control thread may close the old sockets after this; pairs with C2. */
		atomic_fetch_add_explicit(&w->cmd_done, 1, memory_order_release);
	}
}

static void *worker_main(void *arg)
{
	struct wgt_worker *w = arg;
	struct wgt_worker_data *d = w->data;

	wgt_qsbr_register();
	while (!d->stop) {
		unsigned did;

		handle_cmds(w);
		if (d->stop)
			break;
		d->now = wgt_now_ns();
		did = tun_to_udp(w);
		did += udp_to_tun(w, w->udp_fd[0]);
		did += udp_to_tun(w, w->udp_fd[1]);
		wgt_qsbr_quiescent();
		if (!did && !d->stop) {
			struct pollfd p[4] = {
				{ .fd = w->tun_fd, .events = POLLIN },
				{ .fd = w->udp_fd[0], .events = POLLIN },
				{ .fd = w->udp_fd[1], .events = POLLIN },
				{ .fd = w->efd, .events = POLLIN },
			};

			wgt_qsbr_offline();
			poll(p, 4, -1);
			wgt_qsbr_online();
			if (p[0].revents & (POLLERR | POLLHUP | POLLNVAL) && !wgt_tun_exists(w->dev->ifname)) {
				struct wgt_ctrl_msg m = { .kind = WGT_CTRL_DEVICE_GONE };

				push_urgent(w, &m);
				d->stop = true;
			}
		}
	}
	wgt_qsbr_unregister();
	return NULL;
}

static void data_free(struct wgt_worker_data *d)
{
	if (!d)
		return;
	for (unsigned i = 0; i < WORKER_BATCH; i++) {
		free(d->tx[i]);
		free(d->rx[i]);
	}
	free(d);
}

/* Control thread only. Allocates the worker's buffers and starts its thread. */
int wgt_worker_start(struct wgt_worker *w)
{
	struct wgt_worker_data *d = calloc(1, sizeof(*d));
	int r;

	if (!d)
		return -ENOMEM;
	w->data = d;
	for (unsigned i = 0; i < WORKER_BATCH; i++) {
		d->tx[i] = malloc(BUF_SIZE);
		d->rx[i] = malloc(BUF_SIZE);
		if (!d->tx[i] || !d->rx[i])
			goto nomem;
	}
	w->aead = wgt_aead_new();
	if (!w->aead)
		goto nomem;
	r = pthread_create(&w->thread, NULL, worker_main, w);
	if (r) {
		wgt_aead_free(w->aead);
		w->aead = NULL;
		data_free(d);
		w->data = NULL;
		return -r;
	}
	w->started = true;
	return 0;
nomem:
	data_free(d);
	w->data = NULL;
	return -ENOMEM;
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

/* Control thread only, after the thread was joined. */
void wgt_worker_release(struct wgt_worker *w)
{
	wgt_aead_free(w->aead);
	w->aead = NULL;
	data_free(w->data);
	w->data = NULL;
}
