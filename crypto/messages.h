/* SPDX-License-Identifier: MIT */
/* WireGuard wire formats (whitepaper section 5.4) and protocol constants (section 6). */
#ifndef WGT_CRYPTO_MESSAGES_H
#define WGT_CRYPTO_MESSAGES_H

#include <stddef.h>
#include <stdint.h>

#include "common/clock.h"

#define WGT_KEY_LEN 32            /* X25519 keys, symmetric keys, hashes */
#define WGT_COOKIE_LEN 16
#define WGT_AEAD_TAG_LEN 16
#define WGT_TIMESTAMP_LEN 12      /* TAI64N */
#define WGT_MAC_LEN 16
#define WGT_XNONCE_LEN 24

/* Section 6.1: message limits and time constants. */
#define WGT_REKEY_AFTER_MESSAGES (1ULL << 60)
#define WGT_REJECT_AFTER_MESSAGES (UINT64_MAX - WGT_REPLAY_WINDOW - 1)
#define WGT_REKEY_AFTER_TIME (120 * WGT_NSEC_PER_SEC)
#define WGT_REJECT_AFTER_TIME (180 * WGT_NSEC_PER_SEC)
#define WGT_REKEY_ATTEMPT_TIME (90 * WGT_NSEC_PER_SEC)
#define WGT_REKEY_TIMEOUT (5 * WGT_NSEC_PER_SEC)
#define WGT_REKEY_TIMEOUT_JITTER_MAX (WGT_NSEC_PER_SEC / 3)
#define WGT_KEEPALIVE_TIMEOUT (10 * WGT_NSEC_PER_SEC)
#define WGT_COOKIE_SECRET_MAX_AGE (120 * WGT_NSEC_PER_SEC)
#define WGT_COOKIE_SECRET_LATENCY (5 * WGT_NSEC_PER_SEC)
#define WGT_MAX_TIMER_HANDSHAKES (WGT_REKEY_ATTEMPT_TIME / WGT_REKEY_TIMEOUT)
#define WGT_INITIATIONS_PER_SECOND 50 /* per peer, a consumed-initiation flood guard */

/* Replay window (RFC 6479 layout): 8192 bits of which one word is slack. */
#define WGT_REPLAY_BITS_TOTAL 8192
#define WGT_REPLAY_WINDOW (WGT_REPLAY_BITS_TOTAL - 64) /* 8128 packets */

enum wgt_message_type {
	WGT_MSG_INVALID = 0,
	WGT_MSG_HANDSHAKE_INITIATION = 1,
	WGT_MSG_HANDSHAKE_RESPONSE = 2,
	WGT_MSG_HANDSHAKE_COOKIE = 3,
	WGT_MSG_DATA = 4,
};

/* All multi-byte integers on the wire are little-endian. */
struct wgt_msg_header {
	uint32_t type; /* one byte of type, three reserved zero bytes */
} __attribute__((packed));

struct wgt_msg_macs {
	uint8_t mac1[WGT_MAC_LEN];
	uint8_t mac2[WGT_MAC_LEN];
} __attribute__((packed));

struct wgt_msg_initiation {
	struct wgt_msg_header header;
	uint32_t sender_index;
	uint8_t unencrypted_ephemeral[WGT_KEY_LEN];
	uint8_t encrypted_static[WGT_KEY_LEN + WGT_AEAD_TAG_LEN];
	uint8_t encrypted_timestamp[WGT_TIMESTAMP_LEN + WGT_AEAD_TAG_LEN];
	struct wgt_msg_macs macs;
} __attribute__((packed));

struct wgt_msg_response {
	struct wgt_msg_header header;
	uint32_t sender_index;
	uint32_t receiver_index;
	uint8_t unencrypted_ephemeral[WGT_KEY_LEN];
	uint8_t encrypted_nothing[WGT_AEAD_TAG_LEN];
	struct wgt_msg_macs macs;
} __attribute__((packed));

struct wgt_msg_cookie {
	struct wgt_msg_header header;
	uint32_t receiver_index;
	uint8_t nonce[WGT_XNONCE_LEN];
	uint8_t encrypted_cookie[WGT_COOKIE_LEN + WGT_AEAD_TAG_LEN];
} __attribute__((packed));

struct wgt_msg_data {
	struct wgt_msg_header header;
	uint32_t receiver_index;
	uint64_t counter;
	uint8_t encrypted_data[];
} __attribute__((packed));

#define WGT_MSG_INITIATION_LEN 148
#define WGT_MSG_RESPONSE_LEN 92
#define WGT_MSG_COOKIE_LEN 64
#define WGT_MSG_DATA_HEADER_LEN 16
#define WGT_MSG_DATA_MIN_LEN (WGT_MSG_DATA_HEADER_LEN + WGT_AEAD_TAG_LEN) /* 32: a keepalive */
#define WGT_MSG_PADDING 16

_Static_assert(sizeof(struct wgt_msg_initiation) == WGT_MSG_INITIATION_LEN, "initiation size");
_Static_assert(sizeof(struct wgt_msg_response) == WGT_MSG_RESPONSE_LEN, "response size");
_Static_assert(sizeof(struct wgt_msg_cookie) == WGT_MSG_COOKIE_LEN, "cookie size");
_Static_assert(sizeof(struct wgt_msg_data) == WGT_MSG_DATA_HEADER_LEN, "data header size");

/*
 * Returns the message type of `len` bytes at `buf` when the type byte, the
 * reserved bytes and the length agree with one of the four messages, else
 * WGT_MSG_INVALID. The first check every received datagram passes.
 */
static inline enum wgt_message_type wgt_msg_classify(const uint8_t *buf, size_t len)
{
	if (len < 4 || buf[1] || buf[2] || buf[3])
		return WGT_MSG_INVALID;
	switch (buf[0]) {
	case WGT_MSG_HANDSHAKE_INITIATION:
		return len == WGT_MSG_INITIATION_LEN ? WGT_MSG_HANDSHAKE_INITIATION : WGT_MSG_INVALID;
	case WGT_MSG_HANDSHAKE_RESPONSE:
		return len == WGT_MSG_RESPONSE_LEN ? WGT_MSG_HANDSHAKE_RESPONSE : WGT_MSG_INVALID;
	case WGT_MSG_HANDSHAKE_COOKIE:
		return len == WGT_MSG_COOKIE_LEN ? WGT_MSG_HANDSHAKE_COOKIE : WGT_MSG_INVALID;
	case WGT_MSG_DATA:
		return len >= WGT_MSG_DATA_MIN_LEN ? WGT_MSG_DATA : WGT_MSG_INVALID;
	default:
		return WGT_MSG_INVALID;
	}
}

#endif
