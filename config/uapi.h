/* SPDX-License-Identifier: MIT */
/*
 * The cross-platform userspace API (https://www.wireguard.com/xplatform/):
 * the `set=1` / `get=1` text protocol that wg(8) speaks on
 * /var/run/wireguard/INTERFACE.sock, accepted exactly as wireguard-go does.
 *
 *   wg --> daemon   set=1\n  key=value\n ... \n            (blank line ends it)
 *   daemon --> wg   errno=0\n\n    or    errno=-22\n\n     (negative, as wireguard-go)
 *   wg --> daemon   get=1\n\n
 *   daemon --> wg   key=value\n ... errno=0\n\n
 *
 * SET: the daemon reads the socket incrementally and hands the parser one
 * line at a time (or raw bytes, which it splits). The parser builds a plain
 * struct wgt_uapi_device (like wireguard-tools' struct wgdevice) that
 * gateway/ applies in one go: a set is all-or-nothing here, where
 * wireguard-go applies each line as it reads it and stops at the first bad
 * one. Lines are kept in order where order matters (peers, allowed IPs).
 *
 * Error codes are those wireguard-go's device/uapi.go returns, from its ipc
 * package (ipc/uapi_unix.go: IpcErrorProtocol = -EPROTO, IpcErrorInvalid =
 * -EINVAL, IpcErrorIO = -EIO):
 *   line without '='                               -EPROTO
 *   unknown key, device key inside a peer section,
 *   peer key before the first public_key, any bad
 *   value, protocol_version other than 1           -EINVAL
 * and, for the hard caps wireguard-go does not have (its only limit is
 * bufio.Scanner's 64 KiB token, reported as -EIO):
 *   line longer than WGT_UAPI_MAX_LINE             -EMSGSIZE
 *   set larger than WGT_UAPI_MAX_SET_BYTES         -E2BIG
 *   more peers / allowed IPs than the caps          -ENOSPC
 *   out of memory                                  -ENOMEM
 * Each failure also has a distinct enum wgt_uapi_error for counters, and a
 * one-line message that never quotes a value (values may be key material).
 *
 * GET: the daemon fills a read-only view (struct wgt_uapi_get_device) and
 * wgt_uapi_format_get() writes the lines in wireguard-go's order.
 *
 * No I/O and no crypto: keys are plain 32-byte arrays. Secrets are wiped
 * whenever this module frees memory that held them.
 */
#ifndef WGT_CONFIG_UAPI_H
#define WGT_CONFIG_UAPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/endpoint.h"

#define WGT_UAPI_KEY_LEN 32

/* Hard caps. A parser may be given lower ones (struct wgt_uapi_limits). */
#define WGT_UAPI_MAX_LINE                4096U       /* bytes, '\n' and a trailing '\r' excluded */
#define WGT_UAPI_MAX_SET_BYTES           (64U << 20) /* bytes of one set, newlines included */
#define WGT_UAPI_MAX_PEERS               (1U << 19)  /* public_key lines in one set (fits 64 MiB) */
#define WGT_UAPI_MAX_ALLOWEDIPS_PER_PEER (1U << 19)  /* allowed_ip lines in one peer section */
#define WGT_UAPI_MAX_ALLOWEDIPS          (1U << 21)  /* allowed_ip lines in one set: 4 per peer at the cap */

/* Enough for every message this module writes. */
#define WGT_UAPI_ERRMSG_LEN 128

enum wgt_uapi_error {
	WGT_UAPI_OK = 0,
	WGT_UAPI_ERR_SYNTAX,              /* -EPROTO: no '=' */
	WGT_UAPI_ERR_UNKNOWN_KEY,         /* -EINVAL: key unknown or in the wrong section */
	WGT_UAPI_ERR_INVALID_VALUE,       /* -EINVAL */
	WGT_UAPI_ERR_LINE_TOO_LONG,       /* -EMSGSIZE */
	WGT_UAPI_ERR_SET_TOO_BIG,         /* -E2BIG */
	WGT_UAPI_ERR_TOO_MANY_PEERS,      /* -ENOSPC */
	WGT_UAPI_ERR_TOO_MANY_ALLOWEDIPS_PEER, /* -ENOSPC */
	WGT_UAPI_ERR_TOO_MANY_ALLOWEDIPS, /* -ENOSPC */
	WGT_UAPI_ERR_TRAILING_DATA,       /* -EPROTO: wgt_uapi_parse_set() only */
	WGT_UAPI_ERR_NOMEM,               /* -ENOMEM */
	WGT_UAPI_ERR__COUNT,
};

/* Stable snake_case name for metric labels ("line_too_long"); NULL if out of range. */
const char *wgt_uapi_error_name(enum wgt_uapi_error err);

enum {
	WGT_UAPI_DEV_HAS_PRIVATE_KEY = 1U << 0, /* an all-zero key removes the private key */
	WGT_UAPI_DEV_HAS_LISTEN_PORT = 1U << 1, /* 0: pick a random port */
	WGT_UAPI_DEV_HAS_FWMARK      = 1U << 2, /* 0 removes the mark */
	WGT_UAPI_DEV_REPLACE_PEERS   = 1U << 3, /* remove every peer before applying these */
};

enum {
	WGT_UAPI_PEER_HAS_PRESHARED_KEY        = 1U << 0, /* all-zero: no preshared key */
	WGT_UAPI_PEER_HAS_ENDPOINT             = 1U << 1,
	WGT_UAPI_PEER_HAS_PERSISTENT_KEEPALIVE = 1U << 2, /* 0 turns it off */
	/* Remove the peer; every other field of this section is to be ignored. */
	WGT_UAPI_PEER_REMOVE                   = 1U << 3,
	/* Do not create the peer: apply the section only if it already exists. */
	WGT_UAPI_PEER_UPDATE_ONLY              = 1U << 4,
	/*
	 * Remove the peer's allowed IPs before adding allowed_ips[]. The parser
	 * already dropped the allowed_ip lines that came before the
	 * replace_allowed_ips line, as wireguard-go would have replaced them.
	 */
	WGT_UAPI_PEER_REPLACE_ALLOWED_IPS      = 1U << 5,
	WGT_UAPI_PEER_HAS_PROTOCOL_VERSION     = 1U << 6, /* validated: always 1 */
};

/*
 * One allowed_ip line. Host bits are kept as sent (wg sends them as typed);
 * the allowed-IPs table masks them on insert.
 */
struct wgt_uapi_allowedip {
	int family;        /* AF_INET or AF_INET6 */
	uint8_t addr[16];  /* network byte order; IPv4 uses the first 4 bytes */
	uint8_t cidr;      /* <= 32 for IPv4, <= 128 for IPv6 */
	bool remove;       /* "allowed_ip=-addr/cidr": remove, don't add */
};

/* One peer section, from its public_key line to the next one. */
struct wgt_uapi_peer {
	unsigned flags;    /* WGT_UAPI_PEER_* */
	uint8_t public_key[WGT_UAPI_KEY_LEN];
	uint8_t preshared_key[WGT_UAPI_KEY_LEN];
	union wgt_sockaddr endpoint;
	uint16_t persistent_keepalive;
	/* In line order: an add and a later remove of the same prefix cancel. */
	struct wgt_uapi_allowedip *allowed_ips;
	size_t n_allowed_ips;
	size_t cap_allowed_ips;  /* allocated entries */
};

/* A parsed set. Apply peers[] in order: the same key may appear twice. */
struct wgt_uapi_device {
	unsigned flags;    /* WGT_UAPI_DEV_* */
	uint8_t private_key[WGT_UAPI_KEY_LEN];
	uint16_t listen_port;
	uint32_t fwmark;
	struct wgt_uapi_peer *peers;
	size_t n_peers;
	size_t cap_peers;        /* allocated entries, all wiped on free */
};

/* Any thread. Wipes the private and preshared keys. Accepts NULL. */
void wgt_uapi_device_free(struct wgt_uapi_device *dev);

/* Lower caps for one parser; a zero field means the hard cap. */
struct wgt_uapi_limits {
	size_t max_set_bytes;
	size_t max_peers;
	size_t max_allowedips_per_peer;
	size_t max_allowedips;
};

struct wgt_uapi_parser;

/*
 * A parser for the lines that follow `set=1`. Owner thread only: a parser
 * is never shared. `limits` may be NULL; values above the hard caps are
 * clamped. Returns NULL when out of memory.
 */
struct wgt_uapi_parser *wgt_uapi_parser_new(const struct wgt_uapi_limits *limits);

/* Wipes the partial set and any buffered line. Accepts NULL. */
void wgt_uapi_parser_free(struct wgt_uapi_parser *p);

/*
 * Feeds one line without its '\n' (a trailing '\r' is dropped, as Go's
 * bufio.Scanner does). Three outcomes:
 *   0   the line was taken, send the next one;
 *   1   it was the blank line that ends the set: call wgt_uapi_parser_finish();
 *   <0  -errno (see the table above): the set is rejected and the parser
 *       stays failed, returning the same error, until finish() resets it.
 */
int wgt_uapi_parser_line(struct wgt_uapi_parser *p, const char *line, size_t len);

/*
 * Feeds raw bytes as read from the socket and splits them into lines,
 * buffering a partial line (at most WGT_UAPI_MAX_LINE bytes) across calls.
 * Same outcomes as wgt_uapi_parser_line(); *ret_consumed is how many bytes
 * were used: on 1 the bytes after the blank line belong to the next request.
 * The line buffer is wiped after every line.
 */
int wgt_uapi_parser_feed(struct wgt_uapi_parser *p, const void *data, size_t len,
			 size_t *ret_consumed);

/*
 * Ends the set, after the blank line or at end of input (wireguard-go
 * accepts a set cut short by EOF). Returns 0 and hands over the device
 * (free it with wgt_uapi_device_free()), or the error that failed the set.
 * Either way the parser is reset, ready for the next set.
 */
int wgt_uapi_parser_finish(struct wgt_uapi_parser *p, struct wgt_uapi_device **ret_dev);

/*
 * Why the current set failed, WGT_UAPI_OK while it has not. Like the
 * message, it is kept after finish() until the next set's first line.
 */
enum wgt_uapi_error wgt_uapi_parser_error(const struct wgt_uapi_parser *p);

/* The failure as one line ("line 3: listen_port: out of range (max 65535)"); "" when none. */
const char *wgt_uapi_parser_message(const struct wgt_uapi_parser *p);

/*
 * Any thread. Parses a whole set body (the lines after `set=1`), ended by
 * a blank line or by the end of `text`; bytes after the blank line are an
 * error. On failure returns -errno and, if errbuf is not NULL, writes the
 * message into it (truncated to errbuf_len, always terminated).
 */
int wgt_uapi_parse_set(const char *text, size_t len, struct wgt_uapi_device **ret_dev,
		       char *errbuf, size_t errbuf_len);

/* GET: a read-only view the gateway fills from its live state. */
struct wgt_uapi_get_peer {
	uint8_t public_key[WGT_UAPI_KEY_LEN];
	uint8_t preshared_key[WGT_UAPI_KEY_LEN];        /* all zero when none */
	union wgt_sockaddr endpoint;                     /* AF_UNSPEC: no endpoint line */
	int64_t last_handshake_time_sec;
	int64_t last_handshake_time_nsec;
	uint64_t rx_bytes;
	uint64_t tx_bytes;
	uint16_t persistent_keepalive_interval;
	uint32_t protocol_version;                       /* 0 is written as 1 */
	const struct wgt_uapi_allowedip *allowed_ips;   /* `remove` is ignored */
	size_t n_allowed_ips;
};

struct wgt_uapi_get_device {
	bool has_private_key;                            /* written only if also non-zero */
	uint8_t private_key[WGT_UAPI_KEY_LEN];
	uint16_t listen_port;                            /* written only if non-zero */
	uint32_t fwmark;                                 /* written only if non-zero */
	const struct wgt_uapi_get_peer *peers;
	size_t n_peers;
};

/* A growable output buffer. Zero-initialise it; it may hold a private key. */
struct wgt_uapi_buf {
	char *data;
	size_t len;
	size_t cap;
};

/* Wipes and frees the contents; the buffer is empty and reusable after. Accepts NULL. */
void wgt_uapi_buf_free(struct wgt_uapi_buf *buf);

/*
 * Any thread. Appends the answer to `get=1`: private_key, listen_port,
 * fwmark, then per peer public_key, preshared_key, protocol_version,
 * endpoint, last_handshake_time_sec/_nsec, tx_bytes, rx_bytes,
 * persistent_keepalive_interval and allowed_ip lines, then `errno=0` and
 * the blank line. Keys in lowercase hex. Returns 0 or -ENOMEM (the buffer
 * then holds what it held before), -EINVAL for a malformed view.
 */
int wgt_uapi_format_get(struct wgt_uapi_buf *out, const struct wgt_uapi_get_device *dev);

/*
 * Any thread. The same answer in parts, for a get streamed without a view of
 * every peer: the device's lines (dev->peers is not read), then one call per
 * peer, then the end ("errno=0" and the blank line). Each returns 0 or
 * -ENOMEM (the buffer then holds what it held before); _peer -EINVAL for a
 * malformed peer.
 */
int wgt_uapi_format_get_device(struct wgt_uapi_buf *out, const struct wgt_uapi_get_device *dev);
int wgt_uapi_format_get_peer(struct wgt_uapi_buf *out, const struct wgt_uapi_get_peer *peer);
int wgt_uapi_format_get_end(struct wgt_uapi_buf *out);

/* Any thread. Appends "errno=<err>\n\n"; err is 0 or a negative errno, as wireguard-go writes it. */
int wgt_uapi_format_errno(struct wgt_uapi_buf *out, int err);

#endif
