/* SPDX-License-Identifier: MIT */
/*
 * Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s as WireGuard uses it (whitepaper 5.4),
 * plus the session keypairs it yields.
 *
 * Design note. The handshake core does no I/O and reads no clock: callers
 * pass the TAI64N timestamp and monotonic `now`, and allocate receiver
 * indices. Finding the peer of an incoming initiation is a callback, since
 * only the caller knows its peer table.
 *
 *   initiator                                responder
 *   create_initiation  --- type 1 (148) -->  consume_initiation
 *   consume_response   <-- type 2 (92)  ---  create_response
 *   begin_session                            begin_session
 *
 * A handshake moves ZEROED -> CREATED_INITIATION -> CONSUMED_RESPONSE on the
 * initiator and ZEROED -> CONSUMED_INITIATION -> CREATED_RESPONSE on the
 * responder; begin_session turns the last state into a keypair and zeroes
 * the handshake. Keypairs rotate through current/previous/next: the
 * initiator's new keypair becomes current at once; the responder's waits in
 * `next` until the first data packet arrives under it (key confirmation).
 *
 * Threading: the control thread calls everything here, except key
 * confirmation (wgt_noise_received_with_keypair), which the thread that
 * authenticated the packet calls, so that nothing is sealed under the old
 * keypair once the peer has shown it holds the new one (the kernel rotates
 * in its receive path too). Readers load slots lock-free; every change of
 * the slots takes keypairs->lock, a spinlock held for a few stores and
 * never across a call. Workers otherwise only read keypairs (send_counter
 * and the replay window are safe to touch from any thread). Dropped
 * keypairs leave through keypairs->retire, which the gateway routes to a
 * grace-period reclaimer, always on the control thread. A confirmation
 * drops nothing: installing a `next` empties `previous` (the kernel's
 * responder rule), and nothing else fills `previous` while `next` is set,
 * so the old current simply becomes previous.
 */
#ifndef WGT_CRYPTO_NOISE_H
#define WGT_CRYPTO_NOISE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/compiler.h"
#include "crypto/messages.h"
#include "crypto/replay.h"

enum wgt_handshake_state {
	WGT_HANDSHAKE_ZEROED,
	WGT_HANDSHAKE_CREATED_INITIATION,
	WGT_HANDSHAKE_CONSUMED_INITIATION,
	WGT_HANDSHAKE_CREATED_RESPONSE,
	WGT_HANDSHAKE_CONSUMED_RESPONSE,
};

/* Whether precomputed_static_static holds DH(local static, remote static). */
enum wgt_noise_static_static {
	WGT_NOISE_SS_UNKNOWN,   /* not computed yet, or the identity changed since */
	WGT_NOISE_SS_VALID,
	WGT_NOISE_SS_INVALID,   /* the DH is all zero (a low-order key): no handshake completes */
};

/* The device's own static key pair. */
struct wgt_noise_identity {
	uint8_t static_private[WGT_KEY_LEN];
	uint8_t static_public[WGT_KEY_LEN];
	bool has_identity;
};

/* Per-peer handshake state. */
struct wgt_noise_handshake {
	enum wgt_handshake_state state;
	const struct wgt_noise_identity *local;
	uint8_t remote_static[WGT_KEY_LEN];
	/* DH(local static, remote static), computed at the first handshake that needs it
	 * (adding a peer costs no X25519); all zero unless static_static is VALID. */
	uint8_t precomputed_static_static[WGT_KEY_LEN];
	uint8_t static_static;  /* enum wgt_noise_static_static */
	uint8_t preshared_key[WGT_KEY_LEN];
	uint8_t ephemeral_private[WGT_KEY_LEN];
	uint8_t remote_ephemeral[WGT_KEY_LEN];
	uint8_t hash[WGT_KEY_LEN];
	uint8_t chaining_key[WGT_KEY_LEN];
	uint8_t latest_timestamp[WGT_TIMESTAMP_LEN];
	uint64_t last_initiation_consumption; /* monotonic ns, 0 = never */
	uint32_t local_index;  /* ours, host order (the wire carries little-endian) */
	uint32_t remote_index; /* theirs, host order */
};

/*
 * A session. The send half is hot on workers: the counter sits on its own
 * cache line so that senders do not bounce the line receivers read.
 */
struct wgt_noise_keypair {
	uint8_t send_key[WGT_KEY_LEN];
	uint8_t recv_key[WGT_KEY_LEN];
	uint64_t send_key_id; /* unique per key, for struct wgt_aead's key cache */
	uint64_t recv_key_id;
	uint64_t birth;       /* monotonic ns */
	uint32_t local_index;
	uint32_t remote_index;
	bool is_initiator;
	void *owner;          /* the peer, for the caller */

	_Atomic uint64_t send_counter __wgt_cacheline_aligned;
	/* Cleared when the keypair must no longer send (expired or replaced). */
	_Atomic bool send_valid;

	struct wgt_replay replay __wgt_cacheline_aligned;
};

struct wgt_noise_keypairs {
	struct wgt_noise_keypair *_Atomic current;
	struct wgt_noise_keypair *_Atomic previous;
	struct wgt_noise_keypair *_Atomic next;
	/*
	 * Held by whoever changes the slots: the control thread, or a thread
	 * confirming `next`. Invariant at every release: `previous` is NULL
	 * while `next` is set.
	 */
	atomic_flag lock;
	/*
	 * Control thread only: called for every keypair dropped from the set;
	 * default: wgt_noise_keypair_free.
	 */
	void (*retire)(struct wgt_noise_keypair *kp, void *arg);
	void *retire_arg;
};

/* Sets the identity from a private key (clamped here). Returns 0 or -errno. */
int wgt_noise_identity_set(struct wgt_noise_identity *id, const uint8_t private_key[WGT_KEY_LEN]);
void wgt_noise_identity_clear(struct wgt_noise_identity *id);

/*
 * Control thread only. Prepares a peer's handshake; `psk` may be NULL. Does
 * no DH: the static-static DH is computed by the first handshake message
 * that needs it, so adding a peer costs microseconds. A peer whose DH with
 * ours is all zero (a low-order key) stays in the table, but no handshake
 * with it can complete (-ENOKEY then), as in the kernel. Returns 0.
 */
int wgt_noise_handshake_init(struct wgt_noise_handshake *hs, const struct wgt_noise_identity *local,
			     const uint8_t remote_static[WGT_KEY_LEN], const uint8_t *psk);
/*
 * Control thread only. Forgets the static-static DH after the identity
 * changed (the next handshake computes it). Returns 0, or -ENOKEY when there
 * is no identity.
 */
int wgt_noise_handshake_refresh_identity(struct wgt_noise_handshake *hs);
void wgt_noise_handshake_set_psk(struct wgt_noise_handshake *hs, const uint8_t *psk);
/* Forgets ephemeral state (keeps identity, remote static, psk and latest timestamp). */
void wgt_noise_handshake_clear(struct wgt_noise_handshake *hs);
/* Wipes everything. */
void wgt_noise_handshake_destroy(struct wgt_noise_handshake *hs);

/*
 * Control thread only. Writes a type-1 message (MACs left zero: the cookie
 * layer adds them). Returns 0, -ENOKEY without an identity or with an
 * invalid static-static DH, or -ENOMEM/-EIO.
 */
int wgt_noise_create_initiation(struct wgt_noise_handshake *hs, struct wgt_msg_initiation *dst,
				uint32_t local_index, const uint8_t timestamp[WGT_TIMESTAMP_LEN]);

/* Finds the handshake of the peer with this static public key, or NULL. */
typedef struct wgt_noise_handshake *(*wgt_noise_lookup_fn)(void *arg,
							   const uint8_t remote_static[WGT_KEY_LEN]);

/*
 * Control thread only. Consumes a type-1 message whose MAC1 was already
 * checked. Returns 0 and the peer's handshake in *ret_hs, or:
 * -ENOKEY  no identity, or no peer with that static key;
 * -EBADMSG a decryption failed (not for us, or corrupted);
 * -ESTALE  the timestamp is not newer than the last accepted one (replay);
 * -EBUSY   the peer sent initiations faster than WGT_INITIATIONS_PER_SECOND.
 */
int wgt_noise_consume_initiation(const struct wgt_msg_initiation *src,
				 const struct wgt_noise_identity *local, wgt_noise_lookup_fn lookup,
				 void *arg, uint64_t now, struct wgt_noise_handshake **ret_hs);

/* Control thread only. Writes a type-2 message after consume_initiation. Returns 0 or -errno. */
int wgt_noise_create_response(struct wgt_noise_handshake *hs, struct wgt_msg_response *dst,
			      uint32_t local_index);

/*
 * Control thread only. Consumes a type-2 message addressed (receiver_index)
 * to `hs`, whose MAC1 was already checked. Returns 0, -EINVAL when hs is not
 * waiting for a response or the index differs, -EBADMSG when it does not
 * decrypt, -ENOKEY when a DH fails.
 */
int wgt_noise_consume_response(struct wgt_noise_handshake *hs, const struct wgt_msg_response *src);

/*
 * Control thread only. Derives the transport keys of a completed handshake
 * (initiator after consume_response, responder after create_response),
 * installs the keypair in `kps` by the rotation rules and zeroes the
 * handshake. Returns 0 and the new keypair in *ret_kp (owned by kps), or
 * -EINVAL when the handshake is in no completing state, or -ENOMEM.
 */
int wgt_noise_begin_session(struct wgt_noise_handshake *hs, struct wgt_noise_keypairs *kps,
			    uint64_t now, struct wgt_noise_keypair **ret_kp);

void wgt_noise_keypairs_init(struct wgt_noise_keypairs *kps);
/*
 * Any thread, inside the read side that keeps kp alive (QSBR for the
 * gateway's workers). A data packet authenticated under `kp`: when kp is
 * the pending `next`, it becomes current at once and the old current
 * becomes previous (nothing is retired). Returns true when this call
 * rotated; false when kp is not `next`, also when the control thread
 * replaced or dropped it, or another thread confirmed it, first. Costs one
 * relaxed load when kp is not `next`.
 */
bool wgt_noise_received_with_keypair(struct wgt_noise_keypairs *kps, struct wgt_noise_keypair *kp);
/* Control thread only. Retires all three keypairs. */
void wgt_noise_keypairs_clear(struct wgt_noise_keypairs *kps);
/*
 * Control thread only. Marks current and next unusable for sending (expiry)
 * without freeing them, so a confirmation racing with it cannot bring a
 * sendable keypair of the old state back.
 */
void wgt_noise_keypairs_expire_current(struct wgt_noise_keypairs *kps);

/* Wipes and frees; accepts NULL. */
void wgt_noise_keypair_free(struct wgt_noise_keypair *kp);

#endif
