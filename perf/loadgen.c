/* SPDX-License-Identifier: MIT */
/* wgate-loadgen: N simulated WireGuard peers in one process against one gateway: handshakes, cookies, keepalives, echo flows, rekeys, churn. */
/*
 * Design note. One thread does everything: the peers are struct lg_peer
 * (a simpeer plus the kernel's timer state machine, crypto/timers.h) in one
 * array, ordered by their next deadline in a binary min-heap; a few UDP
 * sockets, each on its own port, carry all of them. A received type 2/3/4
 * message finds its peer by the low 20 bits of the receiver index, which
 * we choose (the top 12 random, so a stale message rarely matches).
 *
 * Source addresses (--source-net): every peer sends from its own address
 * of the range, set per datagram with IP_PKTINFO / IPV6_PKTINFO on the
 * wildcard-bound sockets. The addresses must be local in our namespace; the
 * cheapest way for a whole range is an "AnyIP" route, `ip route add local
 * CIDR dev lo`, plus a route for the range back to us on the gateway's side.
 * Why: a gateway under load rate-limits handshakes per source address
 * (wgate: 20/s, burst 5, per IPv4 address or IPv6 /64), so thousands of
 * peers behind one address would measure that limiter and not the gateway.
 * Without --source-net all peers share the sockets' own address.
 *
 * Data: each session sends IPv4 ICMP echo requests from its tunnel address
 * to --target (the gateway's tunnel address) at --rate; the gateway's
 * kernel answers them through the tunnel. lost = sent - answered -
 * abandoned (in flight when churn restarted their peer), counted after a
 * drain at the end.
 */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "common/clock.h"
#include "common/compiler.h"
#include "common/endpoint.h"
#include "common/random.h"
#include "crypto/aead.h"
#include "crypto/blake2s.h"
#include "crypto/timers.h"
#include "crypto/transport.h"
#include "crypto/x25519.h"
#include "perf/loadgen_pvt.h"
#include "perf/simpeer.h"

#define BATCH 32

struct lg_peer {
	struct wgt_simpeer sp;
	struct wgt_timers timers;
	uint64_t wake;       /* heap key: earliest of the deadlines below, UINT64_MAX = none */
	uint64_t start_at;   /* first handshake, 0 = started */
	uint64_t next_data;  /* next echo request, 0 = none yet */
	uint64_t hs_start;   /* first initiation of the pending handshake, 0 = none */
	uint32_t heap_pos;
	uint32_t no;
	uint32_t outstanding; /* echo requests sent under this incarnation, unanswered */
	uint32_t dropped_index[3]; /* receiver indices of the sessions the last restart dropped */
	uint16_t echo_seq;
	uint16_t sock;
	bool hs_failed;      /* the pending handshake was counted as failed */
	bool ever_up;
};

struct lg {
	struct lg_opts o;
	struct lg_peer *peers;
	uint32_t *heap;
	int *fds;
	int epfd;
	struct wgt_aead *aead;
	uint64_t rate_ns;   /* interval between echo requests of one session */
	bool running;       /* echo flows and churn; false while draining */
	struct lg_stats st;
	uint8_t buf[2048] __wgt_cacheline_aligned;
};

static volatile sig_atomic_t interrupted;

/* The first signal ends the run early (summary after the drain), the second the drain too. */
static void on_signal(int sig)
{
	interrupted = interrupted + 1;
}

/* ---- heap of peers by wake time ---- */

static bool heap_less(struct lg *g, uint32_t a, uint32_t b)
{
	return g->peers[g->heap[a]].wake < g->peers[g->heap[b]].wake;
}

static void heap_swap(struct lg *g, uint32_t a, uint32_t b)
{
	uint32_t t = g->heap[a];

	g->heap[a] = g->heap[b];
	g->heap[b] = t;
	g->peers[g->heap[a]].heap_pos = a;
	g->peers[g->heap[b]].heap_pos = b;
}

static void heap_fix(struct lg *g, uint32_t i)
{
	uint32_t n = g->o.peers;

	while (i > 0 && heap_less(g, i, (i - 1) / 2)) {
		heap_swap(g, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
	for (;;) {
		uint32_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < n && heap_less(g, l, m))
			m = l;
		if (r < n && heap_less(g, r, m))
			m = r;
		if (m == i)
			return;
		heap_swap(g, i, m);
		i = m;
	}
}

static void reschedule(struct lg *g, struct lg_peer *p)
{
	uint64_t w = UINT64_MAX, d = wgt_timers_next_deadline(&p->timers);

	if (p->start_at)
		w = p->start_at;
	if (d)
		w = WGT_MIN(w, d);
	if (g->running && p->next_data)
		w = WGT_MIN(w, p->next_data);
	if (p->hs_start && !p->hs_failed)
		w = WGT_MIN(w, p->hs_start + g->o.hs_timeout_ns);
	p->wake = w;
	heap_fix(g, p->heap_pos);
}

/* ---- sending ---- */

static int send_msg(struct lg *g, struct lg_peer *p, const void *msg, size_t len)
{
	union {
		struct cmsghdr align;
		char b[CMSG_SPACE(sizeof(struct in6_pktinfo))];
	} ctl;
	struct iovec iov = { .iov_base = (void *)msg, .iov_len = len };
	struct msghdr mh = {
		.msg_name = &g->o.server,
		.msg_namelen = wgt_sockaddr_len(&g->o.server),
		.msg_iov = &iov,
		.msg_iovlen = 1,
	};
	union wgt_sockaddr src;

	if (g->o.have_source) {
		struct cmsghdr *c;

		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.b;
		lg_nth_addr(&src, &g->o.source_net, p->no + 1);
		if (src.sa.sa_family == AF_INET) {
			struct in_pktinfo pi = { .ipi_spec_dst = src.in4.sin_addr };

			mh.msg_controllen = CMSG_SPACE(sizeof(pi));
			c = CMSG_FIRSTHDR(&mh);
			c->cmsg_level = IPPROTO_IP;
			c->cmsg_type = IP_PKTINFO;
			c->cmsg_len = CMSG_LEN(sizeof(pi));
			memcpy(CMSG_DATA(c), &pi, sizeof(pi));
		} else {
			struct in6_pktinfo pi = { .ipi6_addr = src.in6.sin6_addr };

			mh.msg_controllen = CMSG_SPACE(sizeof(pi));
			c = CMSG_FIRSTHDR(&mh);
			c->cmsg_level = IPPROTO_IPV6;
			c->cmsg_type = IPV6_PKTINFO;
			c->cmsg_len = CMSG_LEN(sizeof(pi));
			memcpy(CMSG_DATA(c), &pi, sizeof(pi));
		}
	}
	if (sendmsg(g->fds[p->sock], &mh, 0) == -1) {
		g->st.send_errors++;
		if (g->st.send_errors == 1)
			fprintf(stderr, "loadgen: sendmsg: %s (counted from now on)\n", strerror(errno));
		return -errno;
	}
	return 0;
}

static void do_actions(struct lg *g, struct lg_peer *p, unsigned int actions, uint64_t now);

static void timer_event(struct lg *g, struct lg_peer *p, enum wgt_timer_event ev, uint64_t now)
{
	unsigned int actions = wgt_timers_event(&p->timers, ev, now);

	if (actions)
		do_actions(g, p, actions, now);
}

static void send_initiation(struct lg *g, struct lg_peer *p, uint64_t now)
{
	struct wgt_msg_initiation msg;
	uint32_t index = (wgt_random_u32() & ~LG_INDEX_MASK) | p->no;
	int r;

	r = wgt_simpeer_initiation(&p->sp, &msg, index, now);
	if (r) {
		g->st.errors++;
		fprintf(stderr, "loadgen: peer %u: cannot build an initiation: %s\n", p->no, strerror(-r));
		return;
	}
	if (!p->hs_start) {
		p->hs_start = now;
		p->hs_failed = false;
		g->st.hs_started++;
	} else {
		g->st.hs_resent++;
	}
	r = send_msg(g, p, &msg, sizeof(msg));
	timer_event(g, p, WGT_TIMER_EV_AUTH_TRAVERSAL, now);
	if (!r)
		timer_event(g, p, WGT_TIMER_EV_AUTH_SENT, now);
	timer_event(g, p, WGT_TIMER_EV_HANDSHAKE_INITIATED, now);
}

/* IPv4 ICMP echo request of g->o.size bytes from the peer's tunnel address to the target. */
static size_t build_echo(struct lg *g, struct lg_peer *p, uint8_t *pkt)
{
	union wgt_sockaddr tun;

	lg_nth_addr(&tun, &g->o.tunnel_net, p->no + 2);
	return lg_echo_build(pkt, g->o.size, tun.in4.sin_addr, g->o.target, (uint16_t)p->no,
			     ++p->echo_seq);
}

/*
 * Seals and sends `len` bytes at g->buf + 16 (0: a keepalive). Three
 * outcomes: 0 sent; -EKEYEXPIRED no session, a handshake was asked for;
 * other -errno not sent.
 */
static int send_data(struct lg *g, struct lg_peer *p, size_t len, uint64_t now)
{
	struct wgt_noise_keypair *kp = wgt_simpeer_sending_keypair(&p->sp, now);
	size_t out_len;
	int r;

	if (!kp) {
		timer_event(g, p, WGT_TIMER_EV_WANT_HANDSHAKE, now);
		return -EKEYEXPIRED;
	}
	r = wgt_simpeer_seal(&p->sp, g->aead, g->buf, len, sizeof(g->buf), now, &out_len);
	if (r == -EKEYEXPIRED) {
		timer_event(g, p, WGT_TIMER_EV_WANT_HANDSHAKE, now);
		return r;
	}
	if (r) {
		g->st.errors++;
		return r;
	}
	r = send_msg(g, p, g->buf, out_len);
	timer_event(g, p, WGT_TIMER_EV_AUTH_TRAVERSAL, now);
	if (r)
		return r;
	timer_event(g, p, WGT_TIMER_EV_AUTH_SENT, now);
	if (len)
		timer_event(g, p, WGT_TIMER_EV_DATA_SENT, now);
	else
		g->st.keepalives++;
	/* The initiator's rekey, at --rekey-after instead of REKEY_AFTER_TIME when asked. */
	if (kp->is_initiator && (wgt_has_expired(kp->birth, g->o.rekey_after_ns, now) ||
				 wgt_timers_should_rekey_on_send(true, kp->birth,
								 atomic_load(&kp->send_counter), now)))
		timer_event(g, p, WGT_TIMER_EV_WANT_HANDSHAKE, now);
	return 0;
}

static void send_echo(struct lg *g, struct lg_peer *p, uint64_t now)
{
	size_t len = build_echo(g, p, g->buf + WGT_MSG_DATA_HEADER_LEN);

	if (send_data(g, p, len, now))
		return;
	g->st.sent++;
	p->outstanding++;
}

/* The end of a handshake attempt that will not complete: counted once. */
static void handshake_failed(struct lg *g, struct lg_peer *p)
{
	if (p->hs_start && !p->hs_failed) {
		p->hs_failed = true;
		g->st.hs_failed++;
	}
}

/* Carries out the timer machine's actions in its order (timers.h). */
static void do_actions(struct lg *g, struct lg_peer *p, unsigned int actions, uint64_t now)
{
	if (actions & WGT_TIMER_CLEAR_STAGED) {
		/* Attempts exhausted: the kernel gives up on this handshake here. */
		handshake_failed(g, p);
		p->hs_start = 0;
	}
	if (actions & WGT_TIMER_ZERO_KEYS) {
		wgt_simpeer_reset(&p->sp);
		p->hs_start = 0;
	}
	if (actions & WGT_TIMER_SEND_INITIATION)
		send_initiation(g, p, now);
	if (actions & WGT_TIMER_SEND_KEEPALIVE)
		send_data(g, p, 0, now);
}

/* A client restart: the session and its in-flight packets are gone, a new handshake starts. */
static void restart_peer(struct lg *g, struct lg_peer *p, uint64_t now)
{
	struct wgt_noise_keypair *kps[3] = {
		atomic_load(&p->sp.keypairs.current),
		atomic_load(&p->sp.keypairs.previous),
		atomic_load(&p->sp.keypairs.next),
	};
	unsigned int i;

	for (i = 0; i < 3; i++)
		p->dropped_index[i] = kps[i] ? kps[i]->local_index : 0;
	g->st.abandoned += p->outstanding;
	p->outstanding = 0;
	p->hs_start = 0; /* an attempt cut short by the restart is not a failure */
	wgt_simpeer_reset(&p->sp);
	wgt_timers_init(&p->timers, ((uint64_t)p->no << 32) ^ now);
	wgt_timers_set_persistent_keepalive(&p->timers, g->o.keepalive_s, now);
	g->st.restarts++;
	timer_event(g, p, WGT_TIMER_EV_WANT_HANDSHAKE, now);
	reschedule(g, p);
}

/* Everything due for peer p at `now`. */
static void run_peer(struct lg *g, struct lg_peer *p, uint64_t now)
{
	unsigned int actions;

	if (p->start_at && now >= p->start_at) {
		p->start_at = 0;
		actions = wgt_timers_set_persistent_keepalive(&p->timers, g->o.keepalive_s, now);
		/* A keepalive without a session asks for the handshake itself. */
		if (!(actions & WGT_TIMER_SEND_KEEPALIVE))
			timer_event(g, p, WGT_TIMER_EV_WANT_HANDSHAKE, now);
		else
			do_actions(g, p, actions, now);
	}
	actions = wgt_timers_expire(&p->timers, now);
	if (actions)
		do_actions(g, p, actions, now);
	if (g->running && p->next_data && now >= p->next_data) {
		send_echo(g, p, now);
		p->next_data += g->rate_ns;
		if (p->next_data <= now)
			p->next_data = now + g->rate_ns;
	}
	if (p->hs_start && !p->hs_failed && now - p->hs_start >= g->o.hs_timeout_ns)
		handshake_failed(g, p);
	reschedule(g, p);
}

/* ---- receiving ---- */

static void handshake_done(struct lg *g, struct lg_peer *p, uint64_t now)
{
	if (p->hs_start) {
		lg_stats_latency(&g->st, now - p->hs_start);
		p->hs_start = 0;
	}
	g->st.hs_done++;
	g->st.hs_second++;
	if (!p->ever_up) {
		p->ever_up = true;
		g->st.first_up++;
		/* Spread the flows over the interval so that they do not tick together. */
		if (g->rate_ns)
			p->next_data = now + g->rate_ns * (p->no % 1024) / 1024 + 1;
	}
	timer_event(g, p, WGT_TIMER_EV_SESSION_DERIVED, now);
	timer_event(g, p, WGT_TIMER_EV_HANDSHAKE_COMPLETE, now);
	/* Confirms the session at the gateway, whose keypair waits for our first data. */
	send_data(g, p, 0, now);
	timer_event(g, p, WGT_TIMER_EV_AUTH_RECEIVED, now);
	timer_event(g, p, WGT_TIMER_EV_AUTH_TRAVERSAL, now);
}

static void receive_data(struct lg *g, struct lg_peer *p, uint8_t *msg, size_t len, uint64_t now)
{
	union wgt_sockaddr tun;
	struct wgt_noise_keypair *kp;
	size_t plen;
	int r;

	r = wgt_simpeer_open(&p->sp, g->aead, msg, len, now, &plen, &kp);
	if (r == -ENOKEY) {
		uint32_t index;

		wgt_simpeer_index_of(msg, len, &index);
		if (index && (index == p->dropped_index[0] || index == p->dropped_index[1] ||
			      index == p->dropped_index[2])) {
			/* The gateway still sends under the session we dropped: a loss for a real client. */
			g->st.dropped_session++;
			return;
		}
	}
	if (r) {
		g->st.bad_data++;
		return;
	}
	timer_event(g, p, WGT_TIMER_EV_AUTH_RECEIVED, now);
	timer_event(g, p, WGT_TIMER_EV_AUTH_TRAVERSAL, now);
	if (plen)
		timer_event(g, p, WGT_TIMER_EV_DATA_RECEIVED, now);
	if (kp == atomic_load(&p->sp.keypairs.current) &&
	    wgt_timers_should_rekey_on_receive(kp->is_initiator, kp->birth, now))
		timer_event(g, p, WGT_TIMER_EV_WANT_HANDSHAKE_ON_RECEIVE, now);
	if (!plen)
		return;
	lg_nth_addr(&tun, &g->o.tunnel_net, p->no + 2);
	if (lg_echo_is_reply(msg + WGT_MSG_DATA_HEADER_LEN, plen, tun.in4.sin_addr,
			     (uint16_t)p->no) && p->outstanding) {
		p->outstanding--;
		g->st.received++;
	} else {
		g->st.other_data++;
	}
}

static void receive_one(struct lg *g, uint8_t *msg, size_t len, uint64_t now)
{
	struct wgt_noise_keypair *kp;
	struct lg_peer *p;
	uint32_t index;
	int r;

	if (!wgt_simpeer_index_of(msg, len, &index)) {
		g->st.unknown++;
		if (wgt_msg_classify(msg, len) == WGT_MSG_HANDSHAKE_INITIATION)
			g->st.initiations_in++;
		return;
	}
	if ((index & LG_INDEX_MASK) >= g->o.peers) {
		g->st.unknown++;
		return;
	}
	p = &g->peers[index & LG_INDEX_MASK];
	switch (msg[0]) {
	case WGT_MSG_HANDSHAKE_RESPONSE:
		r = wgt_simpeer_consume_response(&p->sp, (const void *)msg, now, &kp);
		if (r) {
			g->st.bad_responses++;
			break;
		}
		handshake_done(g, p, now);
		break;
	case WGT_MSG_HANDSHAKE_COOKIE:
		r = wgt_simpeer_consume_cookie(&p->sp, (const void *)msg, now);
		if (r) {
			g->st.bad_cookies++;
			break;
		}
		/* The gateway is under load: resend at once, now with mac2. */
		g->st.cookies++;
		send_initiation(g, p, now);
		break;
	case WGT_MSG_DATA:
		receive_data(g, p, msg, len, now);
		break;
	}
	reschedule(g, p);
}

static void receive_all(struct lg *g, int fd)
{
	static uint8_t bufs[BATCH][2048];
	struct mmsghdr mm[BATCH];
	struct iovec iov[BATCH];
	int n, i;

	do {
		for (i = 0; i < BATCH; i++) {
			iov[i] = (struct iovec){ .iov_base = bufs[i], .iov_len = sizeof(bufs[i]) };
			mm[i].msg_hdr = (struct msghdr){ .msg_iov = &iov[i], .msg_iovlen = 1 };
		}
		n = recvmmsg(fd, mm, BATCH, MSG_DONTWAIT, NULL);
		if (n == -1)
			return;
		for (i = 0; i < n; i++)
			receive_one(g, bufs[i], mm[i].msg_len, wgt_now_ns());
	} while (n == BATCH);
}

/* ---- set-up ---- */

static int open_sockets(struct lg *g)
{
	int family = g->o.server.sa.sa_family;
	struct epoll_event ev = { .events = EPOLLIN };
	int one = 1, bufsz = 8 << 20;
	unsigned int i;

	g->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (g->epfd == -1)
		return -errno;
	for (i = 0; i < g->o.sockets; i++) {
		union wgt_sockaddr local = { .sa.sa_family = (sa_family_t)family };
		uint16_t port = g->o.source_port ? (uint16_t)(g->o.source_port + i) : 0;
		int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_UDP);

		if (fd == -1)
			return -errno;
		g->fds[i] = fd;
		if (family == AF_INET6) {
			local.in6.sin6_port = htons(port);
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
			/*
			 * IPv6 takes a source in IPV6_PKTINFO only when it is an
			 * interface's address, not one an AnyIP route makes local,
			 * unless the socket may bind to non-local addresses.
			 */
			if (g->o.have_source &&
			    setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof(one)) == -1)
				return -errno;
		} else {
			local.in4.sin_port = htons(port);
		}
		/* Root: past rmem_max; otherwise the default, which a burst of replies may overflow. */
		if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bufsz, sizeof(bufsz)) == -1)
			setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bufsz, sizeof(bufsz));
		if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &bufsz, sizeof(bufsz)) == -1)
			setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bufsz, sizeof(bufsz));
		if (bind(fd, &local.sa, wgt_sockaddr_len(&local)) == -1) {
			fprintf(stderr, "loadgen: binding UDP port %u: %s\n", port, strerror(errno));
			return -errno;
		}
		ev.data.fd = fd;
		if (epoll_ctl(g->epfd, EPOLL_CTL_ADD, fd, &ev) == -1)
			return -errno;
	}
	return 0;
}

/*
 * Every source address must be local here, or replies cannot reach us. bind()
 * says so for IPv4; IPv6's bind() accepts only interfaces' addresses, so an
 * IPv6 range is taken on trust (the sockets send from it with IP_FREEBIND).
 */
static int check_source_net(struct lg *g)
{
	uint32_t probe[2] = { 1, g->o.peers };
	unsigned int i;

	if (g->o.source_net.base.sa.sa_family != AF_INET)
		return 0;
	for (i = 0; i < 2; i++) {
		union wgt_sockaddr a;
		char s[INET6_ADDRSTRLEN];
		int fd, err = 0;

		lg_nth_addr(&a, &g->o.source_net, probe[i]);
		fd = socket(a.sa.sa_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (fd == -1)
			return -errno;
		if (bind(fd, &a.sa, wgt_sockaddr_len(&a)) == -1)
			err = -errno;
		close(fd);
		if (err) {
			inet_ntop(a.sa.sa_family, a.sa.sa_family == AF_INET ? (void *)&a.in4.sin_addr
									      : (void *)&a.in6.sin6_addr,
				  s, sizeof(s));
			fprintf(stderr,
				"loadgen: source address %s is not local here (%s): add the range, e.g. "
				"`ip route add local CIDR dev lo`\n",
				s, strerror(-err));
			return err;
		}
	}
	return 0;
}

static int setup_peers(struct lg *g, uint64_t t0)
{
	uint32_t i;

	for (i = 0; i < g->o.peers; i++) {
		struct lg_peer *p = &g->peers[i];
		uint8_t priv[WGT_KEY_LEN];
		int r;

		r = wgt_simpeer_derive_key(priv, g->o.seed, i);
		if (!r)
			r = wgt_simpeer_init(&p->sp, priv, g->o.server_public, NULL);
		OPENSSL_cleanse(priv, sizeof(priv));
		if (r) {
			fprintf(stderr, "loadgen: peer %u: %s\n", i, strerror(-r));
			return r;
		}
		p->no = i;
		p->sock = (uint16_t)(i % g->o.sockets);
		p->heap_pos = i;
		g->heap[i] = i;
		wgt_timers_init(&p->timers, ((uint64_t)i << 32) ^ g->o.seed);
		p->start_at = t0 + (uint64_t)((double)g->o.ramp_ns * i / g->o.peers) + 1;
		p->wake = p->start_at;
	}
	return 0;
}

static void destroy(struct lg *g)
{
	uint32_t i;

	if (g->peers)
		for (i = 0; i < g->o.peers; i++)
			wgt_simpeer_destroy(&g->peers[i].sp);
	free(g->peers);
	free(g->heap);
	if (g->fds)
		for (i = 0; i < g->o.sockets; i++)
			if (g->fds[i] > 0)
				close(g->fds[i]);
	free(g->fds);
	if (g->epfd > 0)
		close(g->epfd);
	wgt_aead_free(g->aead);
	lg_stats_free(&g->st);
}

/* ---- the run ---- */

static uint32_t sessions_up(struct lg *g, uint64_t now)
{
	uint32_t i, n = 0;

	for (i = 0; i < g->o.peers; i++)
		n += wgt_simpeer_sending_keypair(&g->peers[i].sp, now) != NULL;
	return n;
}

static uint64_t pending_handshakes(struct lg *g)
{
	uint64_t n = 0;
	uint32_t i;

	for (i = 0; i < g->o.peers; i++)
		n += g->peers[i].hs_start != 0;
	return n;
}

static void loop(struct lg *g, uint64_t t0)
{
	uint64_t t_end = t0 + g->o.seconds * WGT_NSEC_PER_SEC, t_stop = 0;
	uint64_t next_tick = t0 + WGT_NSEC_PER_SEC, last_tick = t0, next_churn = 0;
	double churn_ns = g->o.churn > 0 ? 1e9 / g->o.churn : 0;

	if (churn_ns)
		next_churn = t0 + (uint64_t)churn_ns;
	g->running = true;
	for (;;) {
		struct epoll_event evs[16];
		uint64_t now = wgt_now_ns(), next;
		int n, i, budget = 512, timeout_ms;

		while (budget-- > 0 && g->peers[g->heap[0]].wake <= now) {
			run_peer(g, &g->peers[g->heap[0]], now);
			now = wgt_now_ns();
		}
		if (g->running && next_churn && now >= next_churn) {
			struct lg_peer *p = &g->peers[wgt_random_u32() % g->o.peers];

			if (p->ever_up)
				restart_peer(g, p, now);
			next_churn += (uint64_t)churn_ns;
		}
		if (now >= next_tick) {
			/* Rates over the time since the last line: a busy loop may print late. */
			lg_stats_progress(&g->st, (next_tick - t0) / WGT_NSEC_PER_SEC,
					  now - last_tick, sessions_up(g, now), g->o.peers, g->o.quiet);
			last_tick = now;
			next_tick += WGT_NSEC_PER_SEC;
			if (next_tick <= now)
				next_tick = now + WGT_NSEC_PER_SEC;
		}
		if (g->running && (now >= t_end || interrupted)) {
			/* Drain: no new echo requests or restarts; wait for replies and handshakes. */
			g->running = false;
			t_stop = now;
		}
		if (!g->running) {
			uint64_t out = 0;
			uint32_t k;

			for (k = 0; k < g->o.peers; k++)
				out += g->peers[k].outstanding;
			if ((out == 0 && pending_handshakes(g) == 0) || now >= t_stop + g->o.drain_ns ||
			    interrupted > 1)
				return;
		}

		next = WGT_MIN(next_tick, g->peers[g->heap[0]].wake);
		if (g->running && next_churn)
			next = WGT_MIN(next, next_churn);
		if (budget <= 0 || next <= now)
			timeout_ms = 0;
		else
			timeout_ms = (int)WGT_MIN((next - now + WGT_NSEC_PER_MSEC - 1) / WGT_NSEC_PER_MSEC,
						  100);
		n = epoll_wait(g->epfd, evs, WGT_ARRAY_SIZE(evs), timeout_ms);
		for (i = 0; i < n; i++)
			receive_all(g, evs[i].data.fd);
	}
}

int main(int argc, char **argv)
{
	struct lg g = { .epfd = -1 };
	uint64_t t0, now;
	uint32_t up, i;
	int r, rc = 1;

	r = lg_parse_options(&g.o, argc, argv);
	if (r <= 0)
		return r == 0 ? 0 : 2;
	r = wgt_crypto_init();
	if (r) {
		fprintf(stderr, "loadgen: crypto init: %s\n", strerror(-r));
		return 1;
	}
	if (g.o.print_peers)
		return lg_print_peers(&g.o) ? 1 : 0;

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	g.rate_ns = g.o.rate > 0 ? (uint64_t)(1e9 / g.o.rate) : 0;
	g.peers = calloc(g.o.peers, sizeof(*g.peers));
	g.heap = calloc(g.o.peers, sizeof(*g.heap));
	g.fds = calloc(g.o.sockets, sizeof(*g.fds));
	g.aead = wgt_aead_new();
	if (!g.peers || !g.heap || !g.fds || !g.aead || lg_stats_init(&g.st)) {
		fprintf(stderr, "loadgen: out of memory\n");
		goto out;
	}
	for (i = 0; i < g.o.sockets; i++)
		g.fds[i] = -1;
	if (g.o.have_source && check_source_net(&g))
		goto out;
	r = open_sockets(&g);
	if (r) {
		fprintf(stderr, "loadgen: sockets: %s\n", strerror(-r));
		goto out;
	}
	now = wgt_now_ns();
	if (setup_peers(&g, 0))
		goto out;
	t0 = wgt_now_ns();
	if (!g.o.quiet)
		fprintf(stderr, "loadgen: %u peers set up in %.2f s; running for %lu s\n", g.o.peers,
			(double)(t0 - now) / 1e9, g.o.seconds);
	/* Start times were relative to 0: move them to t0. */
	for (i = 0; i < g.o.peers; i++) {
		g.peers[i].start_at += t0;
		g.peers[i].wake = g.peers[i].start_at;
	}
	g.st.t0 = t0;
	loop(&g, t0);

	now = wgt_now_ns();
	up = sessions_up(&g, now);
	/* Handshakes still open after the drain never completed. */
	for (i = 0; i < g.o.peers; i++)
		handshake_failed(&g, &g.peers[i]);
	rc = lg_stats_summary(&g.st, &g.o, up) ? 1 : 0;
out:
	destroy(&g);
	return rc;
}
