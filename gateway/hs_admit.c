/* SPDX-License-Identifier: MIT */
/* Worker-side admission of handshake messages: per-source budgets, mac checks and cookie replies under load. */
#include "gateway/hs_admit.h"

#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "common/clock.h"
#include "common/compiler.h"
#include "common/random.h"
#include "crypto/cookie.h"
#include "gateway/worker_pvt.h"

#define COST_NS (WGT_NSEC_PER_SEC / WGT_HS_BUDGET_RATE)
#define FULL_NS (COST_NS * WGT_HS_BUDGET_BURST)

_Static_assert((WGT_HS_BUDGET_SLOTS & (WGT_HS_BUDGET_SLOTS - 1)) == 0, "slots: a power of two");

int wgt_hs_budget_init(struct wgt_hs_budget *b)
{
	memset(b->slot, 0, sizeof(b->slot));
	return wgt_random_bytes(&b->key, sizeof(b->key)) < 0 ? -EIO : 0;
}

/* IPv4 address (IPv4-mapped too) or IPv6 /64, as common/ratelimiter.c keys sources. */
static bool source_key(const union wgt_sockaddr *sa, uint8_t ret[9])
{
	memset(ret, 0, 9);
	if (sa->sa.sa_family == AF_INET) {
		ret[0] = 4;
		memcpy(ret + 1, &sa->in4.sin_addr, 4);
		return true;
	}
	if (sa->sa.sa_family != AF_INET6)
		return false;
	if (IN6_IS_ADDR_V4MAPPED(&sa->in6.sin6_addr)) {
		ret[0] = 4;
		memcpy(ret + 1, &sa->in6.sin6_addr.s6_addr[12], 4);
		return true;
	}
	ret[0] = 6;
	memcpy(ret + 1, sa->in6.sin6_addr.s6_addr, 8);
	return true;
}

/* Owner only. */
bool wgt_hs_budget_allow(struct wgt_hs_budget *b, const union wgt_sockaddr *src, uint64_t now_ns)
{
	struct wgt_hs_budget_slot *s;
	uint8_t key[9];
	uint64_t tag, elapsed;

	if (!source_key(src, key))
		return true;
	tag = wgt_siphash(&b->key, key, sizeof(key)) | 1;
	s = &b->slot[(tag >> 1) & (WGT_HS_BUDGET_SLOTS - 1)];
	if (s->tag != tag) {
		/* Missed: the source takes the slot over with a full bucket. */
		s->tag = tag;
		s->last_ns = now_ns;
		s->tokens_ns = FULL_NS - COST_NS;
		return true;
	}
	/* A clock step backwards refills nothing. */
	elapsed = now_ns > s->last_ns ? now_ns - s->last_ns : 0;
	s->tokens_ns = WGT_MIN(s->tokens_ns + WGT_MIN(elapsed, FULL_NS), FULL_NS);
	s->last_ns = now_ns;
	if (s->tokens_ns < COST_NS)
		return false;
	s->tokens_ns -= COST_NS;
	return true;
}

/* Worker-owned. A cookie reply through the socket the message came in on, from the address it was sent to. */
static void send_cookie(struct wgt_worker *w, int fd, const struct wgt_cookie_checker *c,
			const uint8_t *buf, size_t len, const union wgt_sockaddr *src,
			const struct wgt_udp_rx_info *info)
{
	struct wgt_msg_cookie reply;

	if (wgt_cookie_create_reply_ro(c, &reply, buf, len, src, w->data->now)) {
		wgt_worker_stat_inc(&w->stats.hs_dropped, 1);
		return;
	}
	if (wgt_device_send_fd(fd, src, info->has_local ? &info->local : NULL, info->ifindex,
			       &reply, sizeof(reply)))
		wgt_worker_stat_inc(&w->stats.tx_send_errors, 1);
	else
		wgt_worker_stat_inc(&w->stats.hs_cookies, 1);
}

/* Worker-owned (QSBR read side). */
enum wgt_hs_admit wgt_hs_admit(struct wgt_worker *w, int fd, const uint8_t *buf, size_t len,
			       const union wgt_sockaddr *src, const struct wgt_udp_rx_info *info)
{
	struct wgt_device *dev = w->dev;
	size_t count = wgt_ring_count(w->to_ctrl);
	uint64_t now = w->data->now;
	const struct wgt_cookie_checker *c;
	bool loaded;

	if (count >= WGT_HS_RING_CAP) {
		wgt_worker_stat_inc(&w->stats.ring_full, 1);
		return WGT_HS_DROPPED;
	}
	if (!wgt_hs_budget_allow(&w->data->hs_budget, src, now)) {
		wgt_worker_stat_inc(&w->stats.hs_limited, 1);
		return WGT_HS_DROPPED;
	}
	loaded = wgt_worker_hs_backlog(w) >= WGT_HS_UNDER_LOAD ||
		 now < atomic_load_explicit(&dev->under_load_until, memory_order_relaxed);
	/* A cookie reply answers a message of ours: the control thread checks it. */
	if (!loaded || buf[0] == WGT_MSG_HANDSHAKE_COOKIE)
		return WGT_HS_QUEUE;
	/* C2: pairs with C1 in handshake.c; the copy is immutable once published. */
	c = atomic_load_explicit(&dev->shared_checker, memory_order_acquire);
	if (!c)
		return WGT_HS_QUEUE;
	switch (wgt_cookie_validate(c, buf, len, src, true, now)) {
	case WGT_COOKIE_INVALID_MAC:
		wgt_worker_stat_inc(&w->stats.hs_bad_mac, 1);
		return WGT_HS_DROPPED;
	case WGT_COOKIE_VALID_MAC_NO_COOKIE:
		send_cookie(w, fd, c, buf, len, src, info);
		return WGT_HS_ANSWERED;
	default:
		return WGT_HS_QUEUE;
	}
}
