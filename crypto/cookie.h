/* SPDX-License-Identifier: MIT */
/*
 * MAC1/MAC2 and cookie replies: WireGuard's DoS defence (whitepaper 5.4.4, 5.4.7).
 *
 * Every handshake message ends in mac1 = MAC(HASH("mac1----" || Spub_receiver),
 * msg up to mac1), which proves the sender knows our public key, and mac2 =
 * MAC(cookie, msg up to mac2), which proves it recently received a cookie at
 * its source address. Under load the responder demands mac2 and answers a
 * message without it by a cookie reply: the cookie is MAC(Rchanging, source
 * IP || port), Rchanging a random secret that changes every two minutes,
 * encrypted with XChaCha20-Poly1305 under HASH("cookie--" || Spub_responder)
 * and bound to the message's mac1 as associated data.
 *
 * The checker is the receiving side (one per device), the maker the sending
 * side (one per peer). Both: one owner thread. A checker copy that nobody
 * writes any more (the gateway publishes one to its workers) may be read by
 * any thread through the functions taking a const checker.
 */
#ifndef WGT_CRYPTO_COOKIE_H
#define WGT_CRYPTO_COOKIE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/endpoint.h"
#include "crypto/messages.h"

struct wgt_cookie_checker {
	uint8_t secret[WGT_KEY_LEN];
	uint64_t secret_birth;	/* monotonic ns; 0 = no secret yet */
	uint8_t mac1_key[WGT_KEY_LEN];
	uint8_t cookie_key[WGT_KEY_LEN];
	bool has_keys;
};

struct wgt_cookie_maker {
	uint8_t mac1_key[WGT_KEY_LEN];
	uint8_t cookie_key[WGT_KEY_LEN];
	uint8_t cookie[WGT_COOKIE_LEN];
	uint64_t cookie_birth;	/* monotonic ns */
	bool have_cookie;
	uint8_t last_mac1_sent[WGT_MAC_LEN];
	bool have_sent_mac1;
};

enum wgt_cookie_mac_state {
	WGT_COOKIE_INVALID_MAC,
	WGT_COOKIE_VALID_MAC_NO_COOKIE,   /* mac1 good, mac2 absent or wrong */
	WGT_COOKIE_VALID_MAC_WITH_COOKIE, /* both good */
};

/* Derives the checker's keys from our public key (NULL clears them). Returns 0 or -errno. */
int wgt_cookie_checker_init(struct wgt_cookie_checker *c, const uint8_t *local_public);
void wgt_cookie_checker_clear(struct wgt_cookie_checker *c);

/*
 * Checks the MACs of a handshake message of `len` bytes (148 or 92) from
 * `src`. mac2 is checked only when `check_cookie` (under load); otherwise a
 * good mac1 yields VALID_MAC_NO_COOKIE.
 */
enum wgt_cookie_mac_state wgt_cookie_validate(const struct wgt_cookie_checker *c, const uint8_t *msg,
					      size_t len, const union wgt_sockaddr *src,
					      bool check_cookie, uint64_t now);

/*
 * Writes the cookie reply to handshake message `msg` (whose sender index is
 * the reply's receiver index) from `src`, making a new secret first when
 * there is none or it is two minutes old. Returns 0 or -errno.
 */
int wgt_cookie_create_reply(struct wgt_cookie_checker *c, struct wgt_msg_cookie *dst,
			    const uint8_t *msg, size_t len, const union wgt_sockaddr *src,
			    uint64_t now);

/*
 * The same without touching the checker: -ESTALE when it holds no secret
 * younger than two minutes. For copies read by several threads.
 */
int wgt_cookie_create_reply_ro(const struct wgt_cookie_checker *c, struct wgt_msg_cookie *dst,
			       const uint8_t *msg, size_t len, const union wgt_sockaddr *src,
			       uint64_t now);

/*
 * Makes a new secret when there is none or it is older than `max_age` (at
 * most two minutes), so that copies handed out now stay usable for a
 * while. Returns 1 when it made one, 0 when not (or no keys), -errno.
 */
int wgt_cookie_checker_refresh(struct wgt_cookie_checker *c, uint64_t max_age, uint64_t now);

/* Derives the maker's keys from the peer's public key. Returns 0 or -errno. */
int wgt_cookie_maker_init(struct wgt_cookie_maker *m, const uint8_t remote_public[WGT_KEY_LEN]);
void wgt_cookie_maker_clear(struct wgt_cookie_maker *m);

/*
 * Fills mac1 and, when a cookie younger than two minutes (less latency)
 * is held, mac2 of an outgoing handshake message. Returns 0 or -errno.
 */
int wgt_cookie_add_macs(struct wgt_cookie_maker *m, uint8_t *msg, size_t len, uint64_t now);

/*
 * Consumes a cookie reply for this peer. Returns 0, -EINVAL when we sent no
 * handshake message it could answer, or -EBADMSG when it does not decrypt.
 */
int wgt_cookie_consume_reply(struct wgt_cookie_maker *m, const struct wgt_msg_cookie *src,
			     uint64_t now);

#endif
