/* SPDX-License-Identifier: MIT */
/*
 * A simulated WireGuard client peer on the protocol core: seeded keys, the
 * initiator's half of the handshake (initiation, response, cookie reply) and
 * data messages, with no I/O and no clock of its own.
 *
 * Design note. Load and flood generators (perf/loadgen, tests/) simulate
 * thousands of peers from one process. Each is one struct wgt_simpeer; the
 * caller owns the sockets, the event loop and the receiver index space: it
 * passes the index of each new initiation and routes a received type 2/3/4
 * message to the peer whose index it carries (wgt_simpeer_index_of()).
 *
 *   caller                         simpeer                       gateway
 *   initiation(index, now)  --->   type 1, mac1 (+ mac2 once a cookie is held)  --->
 *   consume_response()      <---   type 2 (mac1 checked, session begins)        <---
 *   consume_cookie()        <---   type 3: call initiation() again for mac2     <---
 *   seal() / open()         <-->   type 4 under the current / any live keypair  <-->
 *
 * Keys: wgt_simpeer_derive_key(seed, n) is BLAKE2s-256 of a fixed label, the
 * 64-bit seed and the 32-bit peer number (little-endian), clamped, so the
 * same seed yields the same peers in the process that prints the gateway's
 * [Peer] sections and the one that runs them. Not secret: test keys only.
 *
 * Threading: one owner thread per simpeer; none of it is shared.
 */
#ifndef WGT_PERF_SIMPEER_H
#define WGT_PERF_SIMPEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/cookie.h"
#include "crypto/messages.h"
#include "crypto/noise.h"

struct wgt_aead;

struct wgt_simpeer {
	struct wgt_noise_identity identity;
	struct wgt_noise_handshake hs;
	struct wgt_noise_keypairs keypairs;
	struct wgt_cookie_maker maker;     /* mac1/mac2 of what we send, keyed by the server's key */
	struct wgt_cookie_checker checker; /* mac1 of responses, keyed by our own key */
	uint8_t last_timestamp[WGT_TIMESTAMP_LEN];
	bool initiation_pending;           /* an initiation is out, no response consumed yet */
};

/* Deterministic private key of peer `n` for `seed` (clamped). Returns 0 or -errno. */
int wgt_simpeer_derive_key(uint8_t ret_key[WGT_KEY_LEN], uint64_t seed, uint32_t n);

/*
 * Owner only. Sets up a peer with private key `priv` towards the server's
 * public key; `psk` may be NULL. Returns 0 or -errno (-EINVAL: the two keys
 * give an all-zero shared secret). On failure the simpeer is left cleared.
 */
int wgt_simpeer_init(struct wgt_simpeer *sp, const uint8_t priv[WGT_KEY_LEN],
		     const uint8_t server_public[WGT_KEY_LEN], const uint8_t *psk);
/* Owner only. Wipes keys and frees keypairs; accepts a zeroed or half-built simpeer. */
void wgt_simpeer_destroy(struct wgt_simpeer *sp);

/*
 * Owner only. Writes a fresh initiation (new ephemeral key, sender `index`,
 * a TAI64N timestamp strictly after every earlier one of this peer) with
 * mac1, and mac2 when a cookie younger than its lifetime is held.
 * Returns 0 or -errno.
 */
int wgt_simpeer_initiation(struct wgt_simpeer *sp, struct wgt_msg_initiation *dst, uint32_t index,
			   uint64_t now);

/*
 * Owner only. Consumes a response addressed to our pending initiation and
 * begins the session (the new keypair is current at once). Returns 0 and
 * the keypair, or -EBADMSG (bad mac1 or does not decrypt), -EINVAL (not
 * for the pending initiation), -ENOMEM.
 */
int wgt_simpeer_consume_response(struct wgt_simpeer *sp, const struct wgt_msg_response *src,
				 uint64_t now, struct wgt_noise_keypair **ret_kp);

/*
 * Owner only. Consumes a cookie reply to our last handshake message. Returns
 * 0 (the next initiation carries mac2: send one now), -EINVAL or -EBADMSG.
 */
int wgt_simpeer_consume_cookie(struct wgt_simpeer *sp, const struct wgt_msg_cookie *src,
			       uint64_t now);

/* Owner only. The current keypair if it may still send (not expired, not replaced), else NULL. */
struct wgt_noise_keypair *wgt_simpeer_sending_keypair(struct wgt_simpeer *sp, uint64_t now);

/*
 * Owner only. Seals the `len`-byte packet at buf + 16 (0 = keepalive) under
 * the current keypair in place, transport.h's layout. Three outcomes: 0 and
 * *ret_len (sent); -EKEYEXPIRED: no keypair may send, a handshake is needed;
 * other -errno: error.
 */
int wgt_simpeer_seal(struct wgt_simpeer *sp, struct wgt_aead *a, uint8_t *buf, size_t len,
		     size_t cap, uint64_t now, size_t *ret_len);

/*
 * Owner only. Opens the data message of `len` bytes at buf in place under
 * whichever of our keypairs its receiver index names. Returns 0 with the
 * padded payload length (0 = keepalive) and the keypair, or -ENOKEY (no
 * such keypair) or transport.h's errors.
 */
int wgt_simpeer_open(struct wgt_simpeer *sp, struct wgt_aead *a, uint8_t *buf, size_t len,
		     uint64_t now, size_t *ret_payload_len, struct wgt_noise_keypair **ret_kp);

/* Owner only. Forgets the handshake and every keypair (a client restart). */
void wgt_simpeer_reset(struct wgt_simpeer *sp);

/*
 * The receiver index of a type 2, 3 or 4 message of `len` bytes (host
 * order), for the caller's demultiplexing; false for anything else.
 */
bool wgt_simpeer_index_of(const uint8_t *msg, size_t len, uint32_t *ret_index);

#endif
