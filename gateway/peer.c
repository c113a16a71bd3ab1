/* SPDX-License-Identifier: MIT */
/* Peers: creation, the public-key table, removal, endpoints and counters. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common/allowedips.h"
#include "common/log.h"
#include "gateway/device.h"
#include "gateway/test_hooks.h"

/* The allocator's 512-byte class (jemalloc): an idle peer costs no more (ARCHITECTURE.md). */
_Static_assert(sizeof(struct wgt_peer) <= 512, "an idle peer must fit 512 bytes");

static size_t key_bucket(const struct wgt_device *dev, const uint8_t key[WGT_KEY_LEN])
{
	return wgt_siphash(&dev->peer_hash_key, key, WGT_KEY_LEN) & dev->peer_hash_mask;
}

void wgt_peer_name(const struct wgt_peer *peer, char out[WGT_PEER_LABEL_LEN])
{
	static const char b64[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const uint8_t *k = peer->remote_static;
	/* A1: pairs with the release store in wgt_peer_set_name(). */
	const char *name = atomic_load_explicit(&peer->name, memory_order_acquire);

	if (name) {
		snprintf(out, WGT_PEER_LABEL_LEN, "%s", name);
		return;
	}

	/* Six bytes are eight base64 characters, the start of what `wg show` prints. */
	for (int i = 0; i < 2; i++) {
		uint32_t v = (uint32_t)k[3 * i] << 16 | (uint32_t)k[3 * i + 1] << 8 | k[3 * i + 2];

		out[4 * i] = b64[v >> 18 & 63];
		out[4 * i + 1] = b64[v >> 12 & 63];
		out[4 * i + 2] = b64[v >> 6 & 63];
		out[4 * i + 3] = b64[v & 63];
	}
	memcpy(out + 8, "...", 4);
}

/* Control thread only. */
int wgt_peer_set_name(struct wgt_peer *peer, const char *name)
{
	char *copy = NULL, *old;

	if (name && name[0]) {
		copy = strndup(name, WGT_PEER_LABEL_LEN - 1);
		if (!copy)
			return -ENOMEM;
	}
	/* A1: publishes the string's bytes to readers in wgt_peer_name(). */
	old = atomic_exchange_explicit(&peer->name, copy, memory_order_acq_rel);
	if (old)
		wgt_qsbr_defer(&peer->dev->deferred, free, old);
	return 0;
}

/* Control thread only. */
struct wgt_peer *wgt_peer_lookup(struct wgt_device *dev, const uint8_t public_key[WGT_KEY_LEN])
{
	struct wgt_peer *p = dev->peer_hash[key_bucket(dev, public_key)];

	for (; p; p = p->hash_next)
		if (!CRYPTO_memcmp(p->remote_static, public_key, WGT_KEY_LEN))
			return p;
	return NULL;
}

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct wgt_peer *peer = wgt_container_of(w, struct wgt_peer, timer);

	peer->timer_deadline = 0;
	wgt_peer_timers_apply(peer, wgt_timers_expire(&peer->timers, wgt_now_ns()));
	wgt_peer_timers_rearm(peer);
}

/*
 * Control thread only. Doubles the public-key table when the peers outnumber
 * its buckets, so that a lookup stays one short chain up to WGT_MAX_PEERS
 * (1M peers: 2^20 buckets, 8 MiB). Workers never read the table. A failed
 * allocation keeps the old table: longer chains, still correct.
 */
static void grow_hash(struct wgt_device *dev)
{
	size_t n = (dev->peer_hash_mask + 1) * 2, mask = n - 1;
	struct wgt_peer **t;

	if (dev->n_peers < dev->peer_hash_mask + 1 || n > WGT_MAX_PEERS)
		return;
	t = calloc(n, sizeof(*t));
	if (!t)
		return;
	for (size_t i = 0; i <= dev->peer_hash_mask; i++) {
		struct wgt_peer *p = dev->peer_hash[i], *next;

		for (; p; p = next) {
			size_t b = wgt_siphash(&dev->peer_hash_key, p->remote_static,
					       WGT_KEY_LEN) & mask;

			next = p->hash_next;
			p->hash_next = t[b];
			t[b] = p;
		}
	}
	free(dev->peer_hash);
	dev->peer_hash = t;
	dev->peer_hash_mask = mask;
}

/* Control thread only. */
int wgt_peer_create(struct wgt_device *dev, const uint8_t public_key[WGT_KEY_LEN],
		    struct wgt_peer **ret)
{
	size_t size = sizeof(struct wgt_peer);
	struct wgt_peer *peer;
	uint64_t seed;
	size_t b;

	if (dev->n_peers >= WGT_MAX_PEERS) {
		dev->peers_cap_hits++;
		return -ENOSPC;
	}
	if (wgt_test_hooks_fail_alloc() || posix_memalign((void **)&peer, WGT_CACHELINE, size))
		return -ENOMEM;
	memset(peer, 0, size);
	peer->dev = dev;
	wgt_noise_keypairs_init(&peer->keypairs);
	peer->keypairs.retire = wgt_handshake_retire_keypair;
	peer->keypairs.retire_arg = peer;
	atomic_flag_clear(&peer->ep_lock);
	/* No DH, no handshake state: the first handshake message makes the session. */
	memcpy(peer->remote_static, public_key, WGT_KEY_LEN);
	/* The jitter's seed: unpredictable (the table's random key), without a syscall per peer. */
	seed = wgt_siphash(&dev->peer_hash_key, &dev->next_peer_id, sizeof(dev->next_peer_id));
	wgt_timers_init(&peer->timers, seed);
	/* While the link is down the peer's timers stay stopped, as in the kernel. */
	if (!dev->up)
		wgt_timers_event(&peer->timers, WGT_TIMER_EV_STOP, wgt_now_ns());
	ev_init(&peer->timer, timer_cb);
	peer->id = dev->next_peer_id++;
	for (unsigned i = 1; i < dev->n_workers; i++)
		if (dev->lane_peers[i] < dev->lane_peers[peer->lane])
			peer->lane = i;
	dev->lane_peers[peer->lane]++;

	grow_hash(dev);
	b = key_bucket(dev, public_key);
	peer->hash_next = dev->peer_hash[b];
	dev->peer_hash[b] = peer;
	peer->list_prev = dev->peers_tail;
	if (dev->peers_tail)
		dev->peers_tail->list_next = peer;
	else
		dev->peers_head = peer;
	dev->peers_tail = peer;
	dev->n_peers++;
	*ret = peer;
	return 0;
}

/* Control thread only. */
int wgt_peer_pcpu_alloc(struct wgt_peer *peer)
{
	size_t size = (peer->dev->n_workers + 1) * sizeof(struct wgt_peer_pcpu);
	struct wgt_peer_pcpu *p;

	if (peer->pcpu)
		return 0;
	if (posix_memalign((void **)&p, WGT_CACHELINE, size))
		return -ENOMEM;
	memset(p, 0, size);
	peer->pcpu = p;
	return 0;
}

static void peer_free(void *ptr)
{
	struct wgt_peer *peer = ptr;

	/* wgt_peer_remove() stopped the peer: its session ended there. */
	if (peer->psk) {
		OPENSSL_cleanse(peer->psk, WGT_KEY_LEN);
		free(peer->psk);
	}
	free(atomic_load_explicit(&peer->name, memory_order_relaxed));
	free(peer->pcpu);
	free(peer);
}

/* Control thread only. Unlinks the peer; its memory goes after a grace period. */
void wgt_peer_remove(struct wgt_peer *peer)
{
	struct wgt_device *dev = peer->dev;
	struct wgt_peer **pp = &dev->peer_hash[key_bucket(dev, peer->remote_static)];

	atomic_store_explicit(&peer->dead, true, memory_order_relaxed);
	wgt_allowedips_remove_by_value(dev->allowedips, peer);
	wgt_peer_stop(peer);
	for (; *pp; pp = &(*pp)->hash_next) {
		if (*pp == peer) {
			*pp = peer->hash_next;
			break;
		}
	}
	if (dev->metrics_cursor == peer)
		dev->metrics_cursor = peer->list_next;
	if (dev->get_cursors)
		wgt_device_uapi_get_forget(dev, peer);
	if (peer->list_prev)
		peer->list_prev->list_next = peer->list_next;
	else
		dev->peers_head = peer->list_next;
	if (peer->list_next)
		peer->list_next->list_prev = peer->list_prev;
	else
		dev->peers_tail = peer->list_prev;
	dev->n_peers--;
	dev->lane_peers[peer->lane]--;
	wgt_qsbr_defer(&dev->deferred, peer_free, peer);
}

void wgt_peer_remove_all(struct wgt_device *dev)
{
	while (dev->peers_head)
		wgt_peer_remove(dev->peers_head);
}

/* Control thread only. A peer without a pre-shared key pays a pointer for it. */
int wgt_peer_set_psk(struct wgt_peer *peer, const uint8_t *psk)
{
	static const uint8_t zero[WGT_KEY_LEN];

	if (psk && CRYPTO_memcmp(psk, zero, WGT_KEY_LEN)) {
		if (!peer->psk)
			peer->psk = malloc(WGT_KEY_LEN);
		if (!peer->psk)
			return -ENOMEM;
		memcpy(peer->psk, psk, WGT_KEY_LEN);
	} else if (peer->psk) {
		OPENSSL_cleanse(peer->psk, WGT_KEY_LEN);
		free(peer->psk);
		peer->psk = NULL;
	}
	if (peer->session)
		wgt_noise_handshake_set_psk(&peer->session->handshake, peer->psk);
	return 0;
}

/*
 * The endpoint is a seqlock of atomic words: readers never block and never
 * see a torn endpoint; writers (any worker that sees the peer roam, and the
 * control thread) serialise on a spinlock held for a few stores.
 */
void wgt_peer_get_endpoint(struct wgt_peer *peer, struct wgt_endpoint *ret)
{
	uint64_t words[WGT_ENDPOINT_WORDS];
	uint32_t s1, s2;

	do {
		/* E1: pairs with the release store E3 of the writer. */
		s1 = atomic_load_explicit(&peer->ep_seq, memory_order_acquire);
		for (size_t i = 0; i < WGT_ENDPOINT_WORDS; i++)
			words[i] = atomic_load_explicit(&peer->ep_words[i], memory_order_relaxed);
		/* E2: orders the word loads before the re-check; pairs with E4. */
		atomic_thread_fence(memory_order_acquire);
		s2 = atomic_load_explicit(&peer->ep_seq, memory_order_relaxed);
	} while ((s1 & 1) || s1 != s2);
	memcpy(ret, words, sizeof(*ret));
}

void wgt_peer_set_endpoint(struct wgt_peer *peer, const struct wgt_endpoint *ep)
{
	uint64_t words[WGT_ENDPOINT_WORDS] = { 0 };
	uint32_t s;

	memcpy(words, ep, sizeof(*ep));
	while (atomic_flag_test_and_set_explicit(&peer->ep_lock, memory_order_acquire))
		;
	s = atomic_load_explicit(&peer->ep_seq, memory_order_relaxed);
	atomic_store_explicit(&peer->ep_seq, s + 1, memory_order_relaxed);
	/* E4: the odd sequence is visible before any word changes; pairs with E2. */
	atomic_thread_fence(memory_order_release);
	for (size_t i = 0; i < WGT_ENDPOINT_WORDS; i++)
		atomic_store_explicit(&peer->ep_words[i], words[i], memory_order_relaxed);
	/* E3: pairs with E1. */
	atomic_store_explicit(&peer->ep_seq, s + 2, memory_order_release);
	atomic_flag_clear_explicit(&peer->ep_lock, memory_order_release);
}

static bool same_addr(const union wgt_sockaddr *a, const union wgt_sockaddr *b)
{
	if (a->sa.sa_family != b->sa.sa_family)
		return false;
	if (a->sa.sa_family == AF_INET)
		return a->in4.sin_addr.s_addr == b->in4.sin_addr.s_addr;
	if (a->sa.sa_family == AF_INET6)
		return !memcmp(&a->in6.sin6_addr, &b->in6.sin6_addr, 16);
	return true;
}

void wgt_peer_roam(struct wgt_peer *peer, const union wgt_sockaddr *src,
		   const union wgt_sockaddr *local, uint32_t ifindex)
{
	struct wgt_endpoint ep;

	wgt_peer_get_endpoint(peer, &ep);
	if (wgt_sockaddr_equal(&ep.addr, src) &&
	    (!local || (same_addr(&ep.local, local) && ep.ifindex == ifindex)))
		return;
	ep.addr = *src;
	if (local) {
		ep.local = *local;
		ep.ifindex = ifindex;
	} else {
		memset(&ep.local, 0, sizeof(ep.local));
		ep.ifindex = 0;
	}
	wgt_peer_set_endpoint(peer, &ep);
}

void wgt_peer_clear_endpoint_src(struct wgt_peer *peer)
{
	struct wgt_endpoint ep;

	wgt_peer_get_endpoint(peer, &ep);
	if (ep.local.sa.sa_family == AF_UNSPEC)
		return;
	memset(&ep.local, 0, sizeof(ep.local));
	ep.ifindex = 0;
	wgt_peer_set_endpoint(peer, &ep);
}

void wgt_peer_transfer(const struct wgt_peer *peer, uint64_t *ret_rx, uint64_t *ret_tx)
{
	uint64_t rx = 0, tx = 0;

	for (unsigned i = 0; peer->pcpu && i <= peer->dev->n_workers; i++) {
		rx += atomic_load_explicit(&peer->pcpu[i].rx_bytes, memory_order_relaxed);
		tx += atomic_load_explicit(&peer->pcpu[i].tx_bytes, memory_order_relaxed);
	}
	*ret_rx = rx;
	*ret_tx = tx;
}
