/* SPDX-License-Identifier: MIT */
/* A peer's session state: made by its first handshake message, freed when the session ends. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "gateway/device.h"
#include "gateway/test_hooks.h"

/*
 * Design note. An idle peer (never a handshake, or none for 3 * REJECT_AFTER_TIME)
 * holds no handshake state and no cookie maker: peer->session is NULL. The control
 * thread makes the session when it sends the peer's first initiation or consumes its
 * first initiation, and ends it where the kernel zeroes a peer's key material (the
 * zero-key timer, a stop, the peer's removal) or when a message that made it leads
 * nowhere. Workers never read it, so it is freed at once, without a grace period.
 * What must outlive a session lives in the peer and is copied in and out here: the
 * public key, the pre-shared key, and the replay protection of initiations (the
 * newest TAI64N and the flood limit), so an initiation refused once stays refused.
 * The static-static DH is session state too: a new session computes it again (one
 * X25519 per session, not per message).
 */

/* Control thread only. */
struct wgt_peer_session *wgt_peer_session_get(struct wgt_peer *peer)
{
	struct wgt_device *dev = peer->dev;
	struct wgt_peer_session *s = peer->session;

	if (s)
		return s;
	/* A removed peer stopped for good: nothing may make it a session again. */
	if (atomic_load_explicit(&peer->dead, memory_order_relaxed))
		return NULL;
	s = wgt_test_hooks_fail_session() ? NULL : calloc(1, sizeof(*s));
	if (!s)
		goto fail;
	if (wgt_noise_handshake_init(&s->handshake, &dev->identity, peer->remote_static, peer->psk) ||
	    wgt_cookie_maker_init(&s->cookie, peer->remote_static)) {
		OPENSSL_cleanse(s, sizeof(*s));
		free(s);
		goto fail;
	}
	memcpy(s->handshake.latest_timestamp, peer->latest_timestamp, WGT_TIMESTAMP_LEN);
	s->handshake.last_initiation_consumption = peer->last_initiation_consumption;
	peer->session = s;
	dev->n_sessions++;
	return s;
fail:
	dev->session_alloc_failures++;
	return NULL;
}

/* Control thread only. */
void wgt_peer_session_save(struct wgt_peer *peer)
{
	const struct wgt_noise_handshake *hs = &peer->session->handshake;

	memcpy(peer->latest_timestamp, hs->latest_timestamp, WGT_TIMESTAMP_LEN);
	peer->last_initiation_consumption = hs->last_initiation_consumption;
}

/* Control thread only. */
void wgt_peer_session_end(struct wgt_peer *peer)
{
	struct wgt_peer_session *s = peer->session;

	if (!s)
		return;
	if (s->handshake_indexed)
		wgt_index_release(&peer->dev->index, s->handshake.local_index, peer);
	wgt_peer_session_save(peer);
	wgt_noise_handshake_destroy(&s->handshake);
	wgt_cookie_maker_clear(&s->cookie);
	OPENSSL_cleanse(s, sizeof(*s));
	free(s);
	peer->session = NULL;
	peer->dev->n_sessions--;
}

void wgt_peer_last_handshake(const struct wgt_peer *peer, struct timespec *ret)
{
	ret->tv_sec = (time_t)(peer->last_handshake_ns / WGT_NSEC_PER_SEC);
	ret->tv_nsec = (long)(peer->last_handshake_ns % WGT_NSEC_PER_SEC);
}

/* Control thread only. */
void wgt_peer_stamp_handshake(struct wgt_peer *peer)
{
	struct timespec ts;

	wgt_realtime(&ts);
	peer->last_handshake_ns = (uint64_t)ts.tv_sec * WGT_NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}
