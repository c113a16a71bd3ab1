/* SPDX-License-Identifier: MIT */
/* The receive path of a worker: UDP GRO reads, decryption, cryptokey routing, coalesced TUN writes. */
#include <endian.h>
#include <errno.h>
#include <string.h>

#include "common/allowedips.h"
#include "common/log.h"
#include "common/ring.h"
#include "crypto/aead.h"
#include "crypto/aead_batch.h"
#include "crypto/transport.h"
#include "gateway/worker_pvt.h"

static struct wgt_log_ratelimit recv_log_rl = WGT_LOG_RATELIMIT_INIT;

/* flow_home entries: flow hash (32 bits), last use in ticks (24), worker + 1 (8; 0: empty). */
#define FLOW_TIME_MASK 0xffffffU
static inline uint64_t flow_entry(uint32_t h, uint32_t ticks, unsigned worker1)
{
	return (uint64_t)h << 32 | (uint64_t)(ticks & FLOW_TIME_MASK) << 8 | worker1;
}

static inline unsigned flow_worker1(uint64_t e)
{
	return (unsigned)(e & 0xff);
}

/*
 * The TUN queue a decrypted packet is written to. A multi-queue TUN device
 * sends a flow out through the queue that last wrote a packet of it (its
 * flow table is keyed by the symmetric flow hash), so the queue written
 * here picks the worker that will seal the flow's outgoing packets.
 * - A TCP segment carrying data goes to this worker's own queue. This end
 *   receives that flow, so its outgoing packets are mostly ACKs; they come
 *   back to the worker that is already awake decrypting the flow and ride
 *   in its batches. Sent to another worker they cost a wakeup per ACK (~9 us
 *   of CPU on the development VM, 0.2-0.3 CPU s per GB received).
 * - So do the packets of the peer's newest TCP connection (its last SYN or
 *   SYN-ACK): when this end sends that flow's data, the ACKs arrive here,
 *   on the peer's socket, and the data leaves from here too, not from a
 *   worker that another worker must wake for each ACK. A peer with one
 *   connection has both directions on one worker.
 * - The pure ACKs of the peer's older connections go to the queue of a
 *   worker the connection is given the first time it needs one (once a
 *   newer connection took the own queue): the other workers in turn, per
 *   peer, since this one holds the newest and decrypts all of the peer's
 *   datagrams. So a peer's connections spread evenly over the workers,
 *   where the flow hash left workers idle by chance (all 4 connections on
 *   one of 2 workers in 1 case of 8): up to N on N workers get one each.
 *   With 2 workers the turn includes this one (the other, this, the
 *   other, ...): skipping it put 3 of 4 connections on the other worker,
 *   measured 7% slower than 2 and 2. The choice is kept in a
 *   direct-mapped table per worker (flow_home, by flow hash). A slot goes
 *   to a new connection only when empty or idle for WORKER_FLOW_IDLE_TICKS;
 *   a connection that finds its slot held by a live one is left to its
 *   flow hash (counted), which stays stable while it lasts, so with more
 *   live connections than slots the workers fall back to the hash rather
 *   than move connections back and forth. Anything else (UDP, ICMP,
 *   fragments) goes to the queue the flow's own hash picks.
 * A connection moves from this worker's queue to its worker of the turn
 * once, when the peer opens a newer one, and a flow whose received packets
 * switch between data and pure ACKs (both ends sending) moves with them: a
 * packet in flight at the switch may leave before one queued earlier on
 * the other queue. Order inbound holds whatever the queue: a TUN write
 * hands the packet to the stack before it returns, and one worker writes a
 * peer's packets in the order it decrypted them. peer is the one the
 * packet came from (it passed cryptokey routing).
 */
static int tun_queue_fd(struct wgt_worker *w, const uint8_t *pkt, size_t len,
			struct wgt_peer *peer)
{
	const struct wgt_device *dev = w->dev;
	struct wgt_worker_data *d = w->data;
	struct worker_ip ip;
	uint32_t h = 0, a[8];
	size_t alen;
	bool tcp = false, syn = false;

	if (dev->n_workers == 1)
		return w->tun_fd;
	if (worker_ip_parse(pkt, len, &ip)) {
		bool fragment = ip.family == AF_INET && ((pkt[6] & 0x3f) | pkt[7]);

		if (ip.proto == 6 && !fragment && ip.l4 + 20 <= len) {
			bool data = len > ip.l4 + (size_t)(pkt[ip.l4 + 12] >> 4) * 4;

			syn = pkt[ip.l4 + 13] & 0x02;
			/* The data path's common case, before any hashing. */
			if (data && !syn)
				return w->tun_fd;
			tcp = true;
		}
		/* src and dst are adjacent in both headers. */
		alen = ip.family == AF_INET ? 2 : 8;
		memcpy(a, ip.src, alen * 4);
		/* Symmetric in the two directions, like the kernel's flow hash: sum, not concatenation. */
		for (size_t i = 0; i < alen; i++)
			h += a[i] * 0x9e3779b1U;
		if ((ip.proto == 6 || ip.proto == 17) && ip.l4 + 4 <= len)
			h += ((uint32_t)pkt[ip.l4] << 8 | pkt[ip.l4 + 1]) +
			     ((uint32_t)pkt[ip.l4 + 2] << 8 | pkt[ip.l4 + 3]);
	}
	h ^= h >> 16;
	h *= 0x45d9f3bU;
	h ^= h >> 16;
	if (tcp) {
		uint64_t *home = &d->flow_home[h % WORKER_FLOW_SLOTS], e = *home;
		uint32_t now = (uint32_t)(d->now >> WORKER_FLOW_TICK_SHIFT) & FLOW_TIME_MASK;
		uint32_t used = (uint32_t)(e >> 8) & FLOW_TIME_MASK;

		if (syn)
			atomic_store_explicit(&peer->newest_flow, h, memory_order_relaxed);
		if (syn || atomic_load_explicit(&peer->newest_flow, memory_order_relaxed) == h)
			return w->tun_fd;
		if (e >> 32 == h && flow_worker1(e)) {
			if (used != now)
				*home = flow_entry(h, now, flow_worker1(e));
			return dev->workers[flow_worker1(e) - 1].tun_fd;
		}
		if (flow_worker1(e) && ((now - used) & FLOW_TIME_MASK) < WORKER_FLOW_IDLE_TICKS) {
			/* The table's cap: another live connection holds the slot. */
			wgt_worker_stat_inc(&w->stats.flow_collisions, 1);
		} else {
			unsigned n = dev->n_workers, turn = atomic_fetch_add_explicit(
							       &peer->flow_turn, 1, memory_order_relaxed);
			unsigned to = (w->id + 1 + turn % (n > 2 ? n - 1 : n)) % n;

			*home = flow_entry(h, now, to + 1);
			return dev->workers[to].tun_fd;
		}
	}
	return dev->workers[h % dev->n_workers].tun_fd;
}

/*
 * Worker-owned. One TUN write (virtio-net header included) of a packet
 * from peer, waiting for room if needed.
 */
static void tun_write(struct wgt_worker *w, const struct iovec *iov, struct wgt_peer *peer)
{
	int fd = tun_queue_fd(w, (const uint8_t *)iov->iov_base + WGT_TUN_VNET_HDR_LEN,
			      iov->iov_len - WGT_TUN_VNET_HDR_LEN, peer);

	for (int tries = 0; tries < WORKER_SEND_RETRIES; tries++) {
		ssize_t r = wgt_tun_write(fd, iov->iov_base, iov->iov_len);

		if (r >= 0) {
			wgt_worker_stat_inc(&w->stats.tun_writes, 1);
			return;
		}
		if (r == -EBADFD) {
			wgt_worker_device_gone(w);
			return;
		}
		if (r != -EAGAIN)
			break;
		wgt_worker_wait_writable(fd);
	}
	wgt_worker_stat_inc(&w->stats.tun_write_errors, 1);
}

/* Worker-owned. Writes the decrypted packets, coalesced when the TUN device takes GSO. */
static void flush_tun(struct wgt_worker *w, unsigned n)
{
	struct wgt_worker_data *d = w->data;
	struct wgt_device *dev = w->dev;
	unsigned nw;

	if (!n)
		return;
	if (dev->tun_offloads & (WGT_TUN_OFFLOAD_TSO4 | WGT_TUN_OFFLOAD_TSO6)) {
		nw = wgt_offload_coalesce(d->out_pkts, n,
					  dev->tun_offloads & WGT_TUN_OFFLOAD_USO4, d->writes);
	} else {
		for (unsigned i = 0; i < n; i++) {
			memset(d->out_pkts[i].data - WGT_TUN_VNET_HDR_LEN, 0, WGT_TUN_VNET_HDR_LEN);
			d->writes[i].iov_base = d->out_pkts[i].data - WGT_TUN_VNET_HDR_LEN;
			d->writes[i].iov_len = WGT_TUN_VNET_HDR_LEN + d->out_pkts[i].len;
		}
		nw = n;
	}
	/*
	 * Each write starts with one of the packets, in order (a coalesced one
	 * with the first of its run): walk them alongside to know its peer.
	 */
	for (unsigned i = 0, p = 0; i < nw; i++) {
		const uint8_t *start = d->writes[i].iov_base;

		while (p + 1 < n && d->out_pkts[p].data - WGT_TUN_VNET_HDR_LEN != start)
			p++;
		tun_write(w, &d->writes[i], d->out_peer[p]);
	}
}

/*
 * Worker-owned. Step 1 of a data message: find its keypair, check it
 * before opening, and queue it for opening into output slot `slot`.
 * Returns true when queued.
 */
static bool data_queue(struct wgt_worker *w, const uint8_t *buf, size_t len, unsigned msg,
		       unsigned slot)
{
	struct wgt_worker_data *d = w->data;
	struct wgt_device *dev = w->dev;
	uint32_t index = le32toh(((const struct wgt_msg_data *)buf)->receiver_index);
	struct wgt_noise_keypair *kp;
	enum wgt_index_kind kind;
	uint64_t counter;

	kp = wgt_index_lookup(&dev->index, index, &kind);
	if (unlikely(!kp || kind != WGT_INDEX_KEYPAIR || kp->local_index != index)) {
		wgt_worker_stat_inc(&w->stats.rx_no_keypair, 1);
		return false;
	}
	if (unlikely(wgt_transport_decrypt_check(kp, buf, len, d->now, &counter))) {
		wgt_worker_stat_inc(&w->stats.rx_auth_failed, 1);
		return false;
	}
	d->rx_kp[slot] = kp;
	d->rx_msg[slot] = msg;
	d->rx_items[slot] = (struct wgt_aead_batch_item){
		.dst = d->out[slot] + WGT_PKT_HEADROOM,
		.src = buf + WGT_MSG_DATA_HEADER_LEN,
		.len = len - WGT_MSG_DATA_MIN_LEN,
		.nonce = counter,
	};
	return true;
}

/*
 * Worker-owned. This worker made kp, the peer's pending keypair, current:
 * the control thread does the handshake's housekeeping (timers, "latest
 * handshake", staged packets). When the ring is full the timer event
 * (collected on the control thread's tick) carries the same news, so it
 * is never lost.
 */
static void key_confirmed(struct wgt_worker *w, struct wgt_peer *peer,
			  struct wgt_noise_keypair *kp)
{
	struct wgt_ctrl_msg m = { .kind = WGT_CTRL_KEY_CONFIRMED, .peer = peer, .kp = kp };

	if (!wgt_worker_push_urgent(w, &m))
		wgt_worker_peer_events(w, peer, 1U << WGT_TIMER_EV_HANDSHAKE_COMPLETE);
}

/*
 * Worker-owned. Step 2, after opening: the replay window, roaming,
 * counters, timers, the inner source check. Returns true when the packet
 * (*ret_len bytes at the item's dst) goes to the TUN device.
 */
static bool data_done(struct wgt_worker *w, unsigned slot, struct wgt_peer **roamed,
		      unsigned *roamed_msg, size_t *ret_len)
{
	struct wgt_worker_data *d = w->data;
	struct wgt_device *dev = w->dev;
	struct wgt_aead_batch_item *it = &d->rx_items[slot];
	struct wgt_noise_keypair *kp = d->rx_kp[slot];
	struct wgt_peer *peer = kp->owner;
	unsigned msg = d->rx_msg[slot];
	size_t len = it->len + WGT_MSG_DATA_MIN_LEN, plen = it->len;
	struct wgt_udp_rx_info *info = &d->rx_info[msg];
	struct worker_ip ip;

	if (unlikely(it->result)) {
		wgt_worker_stat_inc(&w->stats.rx_auth_failed, 1);
		return false;
	}
	if (unlikely(wgt_transport_decrypt_commit(kp, it->nonce))) {
		wgt_worker_stat_inc(&w->stats.rx_replayed, 1);
		return false;
	}
	/* The datagrams of one read share their source: roam once per peer and read. */
	if (*roamed != peer || *roamed_msg != msg) {
		wgt_peer_roam(peer, &d->rx_names[msg], info->has_local ? &info->local : NULL,
			      info->ifindex);
		*roamed = peer;
		*roamed_msg = msg;
	}
	wgt_peer_count_rx(peer, w->id, len);
	wgt_worker_stat_inc(&w->stats.rx_packets, 1);
	wgt_worker_stat_inc(&w->stats.rx_bytes, len);
	/*
	 * Key confirmation: the first authentic packet under the pending
	 * `next` makes it current here and now, so every packet sealed for the
	 * peer from here on, by any worker, uses it. The common case costs the
	 * relaxed load of this test.
	 */
	if (unlikely(kp == atomic_load_explicit(&peer->keypairs.next, memory_order_relaxed))) {
		if (wgt_noise_received_with_keypair(&peer->keypairs, kp))
			key_confirmed(w, peer, kp);
	} else if (unlikely(kp == atomic_load_explicit(&peer->keypairs.current,
						       memory_order_relaxed) &&
			    wgt_timers_should_rekey_on_receive(kp->is_initiator, kp->birth, d->now) &&
			    !atomic_exchange_explicit(&peer->rekey_on_receive_asked, true,
						      memory_order_relaxed))) {
		struct wgt_ctrl_msg m = { .kind = WGT_CTRL_WANT_HANDSHAKE_ON_RECEIVE, .peer = peer };

		wgt_worker_push_urgent(w, &m);
	}
	if (!plen) {
		wgt_worker_peer_events(w, peer, 1U << WGT_TIMER_EV_AUTH_RECEIVED |
							1U << WGT_TIMER_EV_AUTH_TRAVERSAL);
		return false;
	}
	wgt_worker_peer_events(w, peer, 1U << WGT_TIMER_EV_AUTH_RECEIVED |
						1U << WGT_TIMER_EV_AUTH_TRAVERSAL |
						1U << WGT_TIMER_EV_DATA_RECEIVED);
	if (unlikely(!worker_ip_parse(it->dst, plen, &ip) || ip.tot_len < 20 || ip.tot_len > plen)) {
		wgt_worker_stat_inc(&w->stats.rx_invalid, 1);
		return false;
	}
	/* Cryptokey routing: the inner source must be one of the peer's allowed IPs. */
	if (unlikely(wgt_allowedips_lookup(dev->allowedips, ip.family, ip.src) != peer)) {
		wgt_worker_stat_inc(&w->stats.rx_bad_source, 1);
		if (wgt_log_enabled(WGT_LOG_DEBUG) && wgt_log_ratelimit_ok(&recv_log_rl, d->now)) {
			char name[WGT_PEER_LABEL_LEN];

			wgt_peer_name(peer, name);
			wgt_dbg("peer %s: packet with a source outside its allowed IPs", name);
		}
		return false;
	}
	*ret_len = ip.tot_len;
	return true;
}

/*
 * Worker-owned. Opens the queued data messages [0, n), each run under one
 * keypair in one call, finishes them in order and writes them to the TUN
 * device.
 */
static void data_flush(struct wgt_worker *w, unsigned n)
{
	struct wgt_worker_data *d = w->data;
	struct wgt_peer *roamed = NULL;
	unsigned roamed_msg = 0, nout = 0;

	for (unsigned i = 0; i < n;) {
		struct wgt_noise_keypair *kp = d->rx_kp[i];
		unsigned j = i + 1;

		while (j < n && d->rx_kp[j] == kp)
			j++;
		wgt_aead_open_many(w->aead, kp->recv_key_id, kp->recv_key, &d->rx_items[i], j - i);
		i = j;
	}
	for (unsigned i = 0; i < n; i++) {
		size_t len;

		if (!data_done(w, i, &roamed, &roamed_msg, &len))
			continue;
		d->out_pkts[nout].data = d->rx_items[i].dst;
		d->out_pkts[nout].len = len;
		d->out_pkts[nout].cap = WORKER_SLOT_SIZE - WGT_PKT_HEADROOM - 16;
		d->out_peer[nout] = d->rx_kp[i]->owner;
		nout++;
	}
	flush_tun(w, nout);
}

/*
 * Worker-owned. A handshake message goes to the control thread with its
 * addresses, if hs_admit.c lets it (floods are dropped or answered here).
 */
static void to_control(struct wgt_worker *w, int fd, const uint8_t *buf, size_t len,
		       const union wgt_sockaddr *src, const struct wgt_udp_rx_info *info)
{
	struct wgt_ctrl_msg *m;

	if (wgt_hs_admit(w, fd, buf, len, src, info) != WGT_HS_QUEUE)
		return;
	m = wgt_ring_reserve(w->to_ctrl);
	if (!m) {
		wgt_worker_stat_inc(&w->stats.ring_full, 1);
		return;
	}
	m->kind = WGT_CTRL_HANDSHAKE;
	/* No peer: the slot may still hold an earlier message's, perhaps freed by now. */
	m->peer = NULL;
	m->len = (uint16_t)len;
	memcpy(m->data, buf, len);
	m->src = *src;
	if (info->has_local)
		m->local = info->local;
	else
		memset(&m->local, 0, sizeof(m->local));
	m->ifindex = info->ifindex;
	/* Only this worker writes it. Before the commit: the control thread, which counts
	 * the message handled once it has it, then never sees more handled than pushed. */
	atomic_store_explicit(&w->hs_pushed,
			      atomic_load_explicit(&w->hs_pushed, memory_order_relaxed) + 1,
			      memory_order_relaxed);
	wgt_ring_commit(w->to_ctrl);
	wgt_device_wake_ctrl(w->dev);
}

/* Worker-owned. Receives a batch on fd and handles it. Returns datagram batches read. */
unsigned wgt_receive_from_udp(struct wgt_worker *w, int fd, bool *drained)
{
	struct wgt_worker_data *d = w->data;
	unsigned nq = 0;
	int n;

	*drained = true;
	if (fd < 0)
		return 0;
	for (unsigned i = 0; i < WORKER_RX_MSGS; i++) {
		memset(&d->rx_msgs[i], 0, sizeof(d->rx_msgs[i]));
		d->rx_iov[i].iov_base = d->rx[i];
		d->rx_iov[i].iov_len = 65535;
		d->rx_msgs[i].msg_hdr.msg_name = &d->rx_names[i];
		d->rx_msgs[i].msg_hdr.msg_namelen = sizeof(d->rx_names[i]);
		d->rx_msgs[i].msg_hdr.msg_iov = &d->rx_iov[i];
		d->rx_msgs[i].msg_hdr.msg_iovlen = 1;
		d->rx_msgs[i].msg_hdr.msg_control = d->rx_ctl[i].buf;
		d->rx_msgs[i].msg_hdr.msg_controllen = sizeof(d->rx_ctl[i].buf);
	}
	n = wgt_udp_recv_batch(fd, d->rx_msgs, WORKER_RX_MSGS);
	if (n <= 0)
		return 0;
	*drained = n < WORKER_RX_MSGS;
	for (int i = 0; i < n; i++) {
		const union wgt_sockaddr *src = &d->rx_names[i];
		size_t total = d->rx_msgs[i].msg_len, seg;
		struct wgt_udp_rx_info *info = &d->rx_info[i];

		if (wgt_udp_rx_info_parse(&d->rx_msgs[i].msg_hdr, info)) {
			wgt_worker_stat_inc(&w->stats.rx_invalid, 1);
			continue;
		}
		/* With UDP_GRO one read holds datagrams of gso_size bytes, the last maybe shorter. */
		seg = info->gso_size ? info->gso_size : total;
		/*
		 * A read whose datagrams would not all fit the pending batch
		 * starts a new one. Cut in two, a sender's GSO send (most often
		 * one super-packet of one flow) would be written to the TUN
		 * device as two coalesced packets where one holds it, and each
		 * write costs the stack a receive and the flow an ACK.
		 */
		if (nq && seg && nq + (total + seg - 1) / seg > WORKER_RX_OUT) {
			data_flush(w, nq);
			nq = 0;
		}
		for (size_t off = 0; off < total; off += seg) {
			const uint8_t *buf = d->rx[i] + off;
			size_t len = WGT_MIN(seg, total - off);
			enum wgt_message_type type = wgt_msg_classify(buf, len);

			if (likely(type == WGT_MSG_DATA)) {
				if (data_queue(w, buf, len, (unsigned)i, nq) &&
				    ++nq == WORKER_RX_OUT) {
					data_flush(w, nq);
					nq = 0;
				}
			} else if (type != WGT_MSG_INVALID) {
				to_control(w, fd, buf, len, src, info);
			} else {
				wgt_worker_stat_inc(&w->stats.rx_invalid, 1);
			}
		}
	}
	data_flush(w, nq);
	return (unsigned)n;
}
