/* SPDX-License-Identifier: MIT */
/* The send path of a worker: TUN reads, TSO/USO split, routing, encryption, UDP GSO sends. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <linux/virtio_net.h>

#include "common/allowedips.h"
#include "common/log.h"
#include "crypto/aead.h"
#include "crypto/aead_batch.h"
#include "crypto/transport.h"
#include "gateway/worker_pvt.h"

static struct wgt_log_ratelimit send_log_rl = WGT_LOG_RATELIMIT_INIT;

/* Most bytes one UDP_SEGMENT send may carry: the IP length field of the super-packet. */
#define GSO_MAX_BYTES (65535 - 40 - 8)

/* Worker-owned. Hands a packet without a session to the control thread, in order. */
static void stage(struct wgt_worker *w, struct wgt_peer *peer, const uint8_t *pkt, size_t len)
{
	size_t cap = WGT_PKT_HEADROOM + len + WGT_PKT_TAILROOM;
	struct wgt_staged *s = malloc(sizeof(*s) + cap);
	struct wgt_ctrl_msg m;

	if (!s) {
		wgt_worker_stat_inc(&w->stats.ring_full, 1);
		return;
	}
	s->len = (uint32_t)len;
	s->cap = (uint32_t)cap;
	memcpy(s->buf + WGT_PKT_HEADROOM, pkt, len);
	m.kind = WGT_CTRL_STAGE;
	m.peer = peer;
	m.staged = s;
	atomic_fetch_add_explicit(&peer->staged_inflight, 1, memory_order_relaxed);
	if (!wgt_worker_push_urgent(w, &m)) {
		atomic_fetch_sub_explicit(&peer->staged_inflight, 1, memory_order_relaxed);
		free(s);
	}
}

/*
 * Worker-owned. Splits the super-packet in d->rbuf (r bytes read) into
 * messages n.. and returns how many, or -1 when it is malformed. The
 * segments go back to back into the arena while it has room for the most
 * this packet could need, else each into its own pool slot. A segment
 * holds at most hdr_len + gso_size bytes; the arena stride allows
 * WORKER_ARENA_HDR for the headers, and a packet whose real headers are
 * longer (IPv6 options) fails that split and is split again into slots.
 */
static int split_one(struct wgt_worker_data *d, unsigned n, size_t r, size_t *arena_off)
{
	const struct virtio_net_hdr *vh = (const void *)(d->rbuf + WORKER_VNET_OFF);
	uint8_t *segs[WGT_OFFLOAD_MAX_SEGS];
	uint16_t lens[WGT_OFFLOAD_MAX_SEGS];
	/* A buffer's bytes that are not the segment: header before, padding and tag after. */
	const size_t room = WGT_PKT_HEADROOM + WGT_PKT_TAILROOM + 16;
	size_t gso = vh->gso_size ? vh->gso_size : 1;
	size_t stride = WGT_ALIGN_UP(room + WORKER_ARENA_HDR + gso, 64);
	size_t most = (r + gso - 1) / gso, cap;
	bool arena;
	int k = -1;

	if (most > WGT_OFFLOAD_MAX_SEGS)
		most = WGT_OFFLOAD_MAX_SEGS;
	arena = most * stride <= WORKER_ARENA_SIZE - *arena_off;
	if (arena) {
		for (size_t i = 0; i < most; i++)
			segs[i] = d->arena + *arena_off + i * stride + WGT_PKT_HEADROOM;
		k = wgt_offload_split(d->rbuf + WORKER_VNET_OFF, r, segs, stride - room,
				      (unsigned)most, lens);
	}
	if (k < 0) {
		arena = false;
		for (unsigned i = 0; i < WGT_OFFLOAD_MAX_SEGS; i++)
			segs[i] = d->slot[n + i] + WGT_PKT_HEADROOM;
		k = wgt_offload_split(d->rbuf + WORKER_VNET_OFF, r, segs, WORKER_SLOT_SIZE - room,
				      WGT_OFFLOAD_MAX_SEGS, lens);
		if (k < 0)
			return -1;
	}
	cap = arena ? stride : WORKER_SLOT_SIZE;
	for (unsigned i = 0; i < (unsigned)k; i++) {
		d->tx_head[n + i] = i == 0 && k > 1;
		d->tx[n + i] = segs[i] - WGT_PKT_HEADROOM;
		d->tx_cap[n + i] = (uint32_t)cap;
		d->tx_len[n + i] = lens[i];
	}
	if (arena)
		*arena_off += (size_t)k * stride;
	return k;
}

/*
 * Worker-owned. Fills d->tx[] with plaintext packets from the TUN queue.
 * Every read lands in d->rbuf: a plain packet trades places with the pool
 * slot of its message, a super-packet is split (split_one) and rbuf stays.
 * Under load almost every read is a super-packet, so the 64 KiB the
 * kernel copies lands in one buffer that stays in cache, and the segments
 * lie back to back in the arena: reading into the pool walked all of it
 * (~12 MiB) in turn, and one slot per segment spread them a slot apart.
 * Returns the number of messages; *ret_reads counts the reads, *drained
 * tells whether one met an empty queue.
 */
static unsigned read_tun(struct wgt_worker *w, unsigned *ret_reads, bool *drained)
{
	struct wgt_worker_data *d = w->data;
	unsigned n = 0, reads = 0;
	size_t arena_off = 0;

	*drained = false;
	while (reads < WORKER_TX_READS && n + WGT_OFFLOAD_MAX_SEGS <= WORKER_TX_POOL) {
		uint8_t *buf = d->rbuf;
		ssize_t r = wgt_tun_read(w->tun_fd, buf + WORKER_VNET_OFF,
					 WORKER_SLOT_SIZE - WORKER_VNET_OFF - WGT_PKT_TAILROOM - 16);
		const struct virtio_net_hdr *vh = (const void *)(buf + WORKER_VNET_OFF);
		int k;

		if (r < 0) {
			*drained = true;
			if (r == -EBADFD)
				wgt_worker_device_gone(w);
			break;
		}
		reads++;
		if ((size_t)r <= WGT_TUN_VNET_HDR_LEN)
			continue;
		if (vh->gso_type == VIRTIO_NET_HDR_GSO_NONE) {
			if (unlikely(vh->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) &&
			    wgt_offload_csum_complete(buf + WORKER_VNET_OFF, (size_t)r)) {
				wgt_worker_stat_inc(&w->stats.tx_malformed, 1);
				continue;
			}
			d->rbuf = d->slot[n];
			d->slot[n] = buf;
			d->tx[n] = buf;
			d->tx_head[n] = false;
			d->tx_cap[n] = WORKER_SLOT_SIZE;
			d->tx_len[n++] = (uint32_t)r - WGT_TUN_VNET_HDR_LEN;
			continue;
		}
		k = split_one(d, n, (size_t)r, &arena_off);
		if (unlikely(k < 0)) {
			wgt_worker_stat_inc(&w->stats.tx_malformed, 1);
			continue;
		}
		n += (unsigned)k;
	}
	*ret_reads = reads;
	return n;
}

/*
 * The last route looked up in a pass. It keeps a copy of the address: the
 * packet it came from is encrypted in place right after the lookup.
 */
struct route_cache {
	int family;                /* 0: empty */
	uint8_t dst[16];
	struct wgt_peer *peer;
};

/*
 * Worker-owned. Routes message i and prepares it for sealing (header,
 * counter, padding); false when it does not go out now.
 */
static bool prepare_one(struct wgt_worker *w, unsigned i, struct route_cache *rc)
{
	struct wgt_worker_data *d = w->data;
	struct wgt_device *dev = w->dev;
	uint8_t *buf = d->tx[i];
	size_t len = d->tx_len[i], out;
	struct wgt_noise_keypair *kp;
	struct worker_ip ip;
	struct wgt_peer *peer;
	int r;

	if (unlikely(!worker_ip_parse(buf + WGT_PKT_HEADROOM, len, &ip)))
		return false;
	/* Segments of one super-packet share their destination: route once. */
	if (ip.family == rc->family && !memcmp(ip.dst, rc->dst, ip.family == AF_INET ? 4 : 16)) {
		peer = rc->peer;
	} else {
		peer = wgt_allowedips_lookup(dev->allowedips, ip.family, ip.dst);
		rc->peer = peer;
		rc->family = ip.family;
		memcpy(rc->dst, ip.dst, ip.family == AF_INET ? 4 : 16);
	}
	if (unlikely(!peer)) {
		wgt_worker_stat_inc(&w->stats.tx_no_route, 1);
		return false;
	}
	/* S1: pairs with S2 in peer_timers.c: once 0, every staged packet is out. */
	kp = atomic_load_explicit(&peer->keypairs.current, memory_order_acquire);
	if (unlikely(atomic_load_explicit(&peer->staged_inflight, memory_order_acquire) || !kp))
		goto stage;
	r = wgt_transport_encrypt_prepare(kp, buf, len, d->tx_cap[i],
					  atomic_load_explicit(&dev->mtu, memory_order_relaxed),
					  d->now, &out);
	if (unlikely(r)) {
		if (r == -EKEYEXPIRED)
			goto stage;
		return false;
	}
	d->tx_peer[i] = peer;
	d->tx_kp[i] = kp;
	d->tx_len[i] = (uint32_t)out;
	return true;
stage:
	stage(w, peer, buf + WGT_PKT_HEADROOM, len);
	wgt_worker_want_handshake(w, peer, WGT_CTRL_WANT_HANDSHAKE);
	return false;
}

/* Worker-owned. Seals the prepared messages of [0, n), each run under one keypair in one call. */
static void seal_all(struct wgt_worker *w, unsigned n)
{
	struct wgt_worker_data *d = w->data;

	for (unsigned i = 0; i < n;) {
		struct wgt_noise_keypair *kp = d->tx_kp[i];
		unsigned j = i, k = 0;

		if (!d->tx_peer[i]) {
			i++;
			continue;
		}
		for (; j < n && (!d->tx_peer[j] || d->tx_kp[j] == kp); j++)
			if (d->tx_peer[j])
				wgt_transport_seal_item(d->tx[j], d->tx_len[j], &d->tx_items[k++]);
		if (unlikely(wgt_aead_seal_many(w->aead, kp->send_key_id, kp->send_key,
						d->tx_items, k))) {
			for (unsigned m = i; m < j; m++)
				d->tx_peer[m] = NULL;
			wgt_worker_stat_inc(&w->stats.tx_send_errors, k);
		}
		i = j;
	}
}

/*
 * Worker-owned. Groups messages [i, ...) for one UDP_SEGMENT send: same
 * peer, equal lengths (the last may be shorter), at most 64 segments and
 * GSO_MAX_BYTES, and no first segment of another super-packet after the
 * first message. A 64 KiB TCP super-packet, once encrypted, needs two
 * sends (45 + 2 segments at MTU 1420); starting the next one in the second
 * would put every super-packet across two of the receiver's GRO reads, and
 * a receiving wgate would write more of them to its TUN device in two
 * parts (36 segments per write on average against 45). Returns the index
 * after the group.
 */
static unsigned group_end(struct wgt_worker_data *d, unsigned i, unsigned n, bool gso)
{
	uint32_t seg = d->tx_len[i];
	size_t bytes = seg;
	unsigned j = i + 1;

	if (!gso)
		return j;
	while (j < n && !d->tx_head[j] && d->tx_peer[j] == d->tx_peer[i] &&
	       j - i < WGT_UDP_MAX_SEGMENTS && d->tx_len[j] <= seg &&
	       bytes + d->tx_len[j] <= GSO_MAX_BYTES) {
		bytes += d->tx_len[j];
		if (d->tx_len[j++] < seg)
			break;
	}
	return j;
}

/* Worker-owned. Counts n datagrams (one message, a GSO train) the kernel did not take, by errno. */
static void count_send_error(struct wgt_worker *w, int r, size_t n)
{
	wgt_worker_stat_inc(&w->stats.tx_send_errors, n);
	if (r == -EAGAIN)
		wgt_worker_stat_inc(&w->stats.tx_send_eagain, n);
	else if (r == -ENOBUFS)
		wgt_worker_stat_inc(&w->stats.tx_send_enobufs, n);
}

/* Worker-owned. Sends group g's segments one datagram at a time (GSO refused). */
static bool send_unsegmented(struct wgt_worker *w, int fd, struct mmsghdr *m)
{
	struct msghdr h = m->msg_hdr;
	bool ok = true;

	for (size_t k = 0; k < m->msg_hdr.msg_iovlen; k++) {
		struct mmsghdr one = { .msg_hdr = h };
		int r;

		one.msg_hdr.msg_iov = &m->msg_hdr.msg_iov[k];
		one.msg_hdr.msg_iovlen = 1;
		one.msg_hdr.msg_control = NULL;
		one.msg_hdr.msg_controllen = 0;
		r = wgt_udp_send_batch(fd, &one, 1);
		if (r != 1) {
			count_send_error(w, r < 0 ? r : -EAGAIN, 1);
			ok = false;
		}
	}
	return ok;
}

/*
 * Worker-owned. Sends groups [0, ng) that share fd; marks each sent or not.
 * A full socket waits for room; EIO on a segmented send turns GSO off for
 * this socket (logged once) and resends the group datagram by datagram.
 */
static void send_groups(struct wgt_worker *w, int fd, unsigned g0, unsigned ng)
{
	struct wgt_worker_data *d = w->data;
	unsigned done = 0, tries = 0;

	while (done < ng) {
		struct mmsghdr *m = &d->tx_msgs[g0 + done];
		int r = wgt_udp_send_batch(fd, m, ng - done);

		if (r > 0) {
			for (int k = 0; k < r; k++)
				d->tx_sent[g0 + done + (unsigned)k] = true;
			done += (unsigned)r;
			tries = 0;
			continue;
		}
		if (r == -EAGAIN && ++tries < WORKER_SEND_RETRIES) {
			wgt_worker_wait_writable(fd);
			continue;
		}
		if (r == -EIO && m->msg_hdr.msg_iovlen > 1) {
			bool v6 = fd == w->udp_fd[1];

			if (d->gso[v6]) {
				d->gso[v6] = false;
				wgt_warn("worker %u: the kernel refused a UDP GSO send (EIO): "
					 "GSO off for this socket", w->id);
			}
			d->tx_sent[g0 + done] = send_unsegmented(w, fd, m);
			done++;
			continue;
		}
		if (r == -EINVAL && m->msg_hdr.msg_controllen) {
			/* A cached source address that is no longer ours: let routing choose. */
			wgt_peer_clear_endpoint_src(d->tx_peer[d->tx_first[g0 + done]]);
			m->msg_hdr.msg_control = NULL;
			m->msg_hdr.msg_controllen = 0;
			if (m->msg_hdr.msg_iovlen > 1) {
				d->tx_sent[g0 + done] = send_unsegmented(w, fd, m);
				done++;
			}
			continue;
		}
		count_send_error(w, r, m->msg_hdr.msg_iovlen);
		if (wgt_log_ratelimit_ok(&send_log_rl, d->now))
			wgt_warn("worker %u: send: %s", w->id, strerror(-r));
		d->tx_sent[g0 + done++] = false;
		tries = 0;
	}
}

/* Worker-owned. Builds group g from messages [i, j) to ep. */
static void build_group(struct wgt_worker *w, unsigned g, unsigned i, unsigned j,
			const struct wgt_endpoint *ep)
{
	struct wgt_worker_data *d = w->data;
	struct msghdr *h = &d->tx_msgs[g].msg_hdr;
	bool v6 = ep->addr.sa.sa_family == AF_INET6;

	for (unsigned k = i; k < j; k++) {
		d->tx_iov[k].iov_base = d->tx[k];
		d->tx_iov[k].iov_len = d->tx_len[k];
	}
	memset(&d->tx_msgs[g], 0, sizeof(d->tx_msgs[g]));
	d->tx_names[g] = ep->addr;
	h->msg_name = &d->tx_names[g];
	h->msg_namelen = wgt_sockaddr_len(&ep->addr);
	h->msg_iov = &d->tx_iov[i];
	h->msg_iovlen = j - i;
	h->msg_control = d->tx_ctl[g].buf;
	if (j - i > 1)
		wgt_udp_cmsg_add_segment(h, sizeof(d->tx_ctl[g].buf), (uint16_t)d->tx_len[i]);
	if (ep->local.sa.sa_family == ep->addr.sa.sa_family)
		wgt_udp_cmsg_add_src(h, sizeof(d->tx_ctl[g].buf), &ep->local, ep->ifindex);
	if (!h->msg_controllen)
		h->msg_control = NULL;
	d->tx_fd[g] = w->udp_fd[v6];
	d->tx_first[g] = i;
	d->tx_sent[g] = false;
}

/* Worker-owned. Reads a batch from the TUN queue, encrypts and sends it. Returns TUN reads. */
unsigned wgt_send_from_tun(struct wgt_worker *w, bool *drained)
{
	struct wgt_worker_data *d = w->data;
	struct route_cache rc = { 0 };
	unsigned reads, n, ng = 0;

	n = read_tun(w, &reads, drained);
	for (unsigned i = 0; i < n; i++)
		if (!prepare_one(w, i, &rc))
			d->tx_peer[i] = NULL;
	seal_all(w, n);

	for (unsigned i = 0; i < n;) {
		struct wgt_peer *peer = d->tx_peer[i];
		struct wgt_endpoint ep;
		unsigned j;

		if (!peer) {
			i++;
			continue;
		}
		wgt_peer_get_endpoint(peer, &ep);
		if (unlikely(ep.addr.sa.sa_family == AF_UNSPEC ||
			     w->udp_fd[ep.addr.sa.sa_family == AF_INET6] < 0)) {
			wgt_worker_stat_inc(&w->stats.tx_no_endpoint, 1);
			i++;
			continue;
		}
		j = group_end(d, i, n, d->gso[ep.addr.sa.sa_family == AF_INET6]);
		build_group(w, ng++, i, j, &ep);
		i = j;
	}

	/* Runs of groups on one socket go out in one sendmmsg, in read order. */
	for (unsigned g = 0; g < ng;) {
		unsigned h = g + 1;

		while (h < ng && d->tx_fd[h] == d->tx_fd[g])
			h++;
		send_groups(w, d->tx_fd[g], g, h - g);
		g = h;
	}

	for (unsigned g = 0; g < ng; g++) {
		unsigned i = d->tx_first[g];
		struct wgt_peer *peer = d->tx_peer[i];
		struct wgt_noise_keypair *kp = d->tx_kp[i];
		size_t bytes = 0;

		if (!d->tx_sent[g])
			continue;
		for (size_t k = 0; k < d->tx_msgs[g].msg_hdr.msg_iovlen; k++)
			bytes += d->tx_iov[i + k].iov_len;
		wgt_peer_count_tx(peer, w->id, bytes);
		wgt_worker_stat_inc(&w->stats.tx_packets, d->tx_msgs[g].msg_hdr.msg_iovlen);
		wgt_worker_stat_inc(&w->stats.tx_bytes, bytes);
		wgt_worker_peer_events(w, peer,
				       1U << WGT_TIMER_EV_AUTH_TRAVERSAL | 1U << WGT_TIMER_EV_AUTH_SENT |
					       1U << WGT_TIMER_EV_DATA_SENT);
		if (unlikely(wgt_timers_should_rekey_on_send(
			    kp->is_initiator, kp->birth,
			    atomic_load_explicit(&kp->send_counter, memory_order_relaxed), d->now)))
			wgt_worker_want_handshake(w, peer, WGT_CTRL_WANT_HANDSHAKE);
	}
	return reads;
}
