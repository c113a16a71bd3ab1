/* SPDX-License-Identifier: MIT */
/*
 * The UAPI socket server: /var/run/wireguard/IFNAME.sock, where wg(8)
 * speaks the set=1 / get=1 protocol of config/uapi.h, served from the
 * control thread's libev loop without ever blocking it.
 *
 * One connection carries any number of requests, one after the other, as
 * with wireguard-go (device/uapi.go IpcHandle):
 *
 *   OP ---"set=1\n"---> SET ---blank line or EOF---> h->set ---> REPLY
 *    |                   `--parse error--> REPLY, then SKIP to the blank line
 *    |---"get=1\n"---> GET_NL ---'\n'---> h->get ---> REPLY
 *    |                        `--other byte--> REPLY errno=-EINVAL
 *    `---anything else---> close
 *   REPLY: written from a buffer as the socket drains, reading paused;
 *          then back to OP (or close, after EOF, or after a cut below).
 *
 * The socket is 0600, and a client must also be root or the daemon's own
 * effective uid (SO_PEERCRED at accept, so a socket file whose mode was
 * widened or a descriptor passed on lets nobody else in).
 *
 * Caps, each cut counted in struct wgt_uapi_server_stats and logged rate
 * limited:
 *   - WGT_UAPI_SOCK_MAX_CONNS connections; more are accepted and closed at once;
 *   - an op line over WGT_UAPI_SOCK_MAX_OP_LINE, a set line over
 *     WGT_UAPI_MAX_LINE or a set over WGT_UAPI_MAX_SET_BYTES get their errno=
 *     reply and the connection is closed, since the rest could be endless
 *     (other parse errors skip to the set's blank line, the connection goes on);
 *   - unfinished sets together hold at most WGT_UAPI_SOCK_SET_BUDGET bytes:
 *     the set that would pass it gets -ENOBUFS and its connection is closed;
 *   - two deadlines per connection, whatever its state:
 *       idle     no byte read or written for WGT_UAPI_SOCK_IDLE_TIMEOUT_S (a
 *                silent client, a request dripped slower, a reply not read);
 *       request  from a request's first byte to the end of its reply, at most
 *                WGT_UAPI_SOCK_REQUEST_TIMEOUT_S, the time the daemon itself
 *                spends applying a set or building a get not counted (a
 *                request dripped just fast enough to stay under idle);
 *     a connection cut at a deadline is closed without a reply.
 * What a connection can hold is its struct (about 20 KiB) plus its share of
 * the set budget (the parser's structs take at most about 4 times the bytes:
 * a 128-byte struct per 76-byte public_key line, arrays grown by doubling)
 * or one get answer, for no longer than the deadlines.
 */
#ifndef WGT_GATEWAY_UAPI_SOCK_H
#define WGT_GATEWAY_UAPI_SOCK_H

#include <stddef.h>
#include <stdint.h>

struct ev_loop;
struct wgt_uapi_device;
struct wgt_uapi_buf;

#define WGT_UAPI_SOCK_DEFAULT_DIR   "/var/run/wireguard"
#define WGT_UAPI_SOCK_MAX_CONNS     64
#define WGT_UAPI_SOCK_MAX_OP_LINE   4096U  /* bytes, '\n' excluded */
#define WGT_UAPI_SOCK_MAX_ERRORS    16     /* >= WGT_UAPI_ERR__COUNT, checked in uapi_sock.c */
/*
 * wg addconf of 100,000 peers (12 MB) took 1.0 s in all, apply included,
 * on a 2-core VM, and wg reads a get answer as fast as it comes: both
 * deadlines leave a wide margin on a loaded machine.
 */
/* Two sets at WGT_UAPI_MAX_SET_BYTES. */
#define WGT_UAPI_SOCK_SET_BUDGET        (2 * (size_t)(64U << 20))
#define WGT_UAPI_SOCK_IDLE_TIMEOUT_S    10.0
#define WGT_UAPI_SOCK_REQUEST_TIMEOUT_S 30.0
/*
 * Tests only: these environment variables, in milliseconds, shorten the
 * deadlines (never lengthen them) so a test of the cuts runs in seconds.
 */
#define WGT_UAPI_SOCK_IDLE_ENV    "WGT_UAPI_IDLE_TIMEOUT_MS"
#define WGT_UAPI_SOCK_REQUEST_ENV "WGT_UAPI_REQUEST_TIMEOUT_MS"

/* Called on the control thread; set and get must not close the server. */
struct wgt_uapi_handler {
	/*
	 * Applies a whole parsed set (the parse is all-or-nothing and already
	 * done). Returns 0 or -errno, sent back as errno=. The server frees
	 * dev afterwards.
	 */
	int (*set)(void *ctx, const struct wgt_uapi_device *dev);
	/*
	 * Appends the next part of the get answer to out (what
	 * wgt_uapi_format_get() writes, "errno=0\n\n" last), so that a
	 * million peers are streamed, not built in memory at once. *cursor is
	 * NULL on the first call of a get; the handler keeps its place there.
	 * Three outcomes:
	 *   1   the answer is complete (*cursor is NULL again);
	 *   0   more follows (out is not empty, *cursor is set): the server
	 *       writes out, then calls again with the same cursor;
	 *   <0  -errno (*cursor is NULL again): on the first call the server
	 *       drops what was appended and answers errno=<err>; later, part
	 *       of the answer went out, so it closes the connection.
	 */
	int (*get)(void *ctx, struct wgt_uapi_buf *out, void **cursor);
	/* A connection with a get in progress closed: frees the handler's cursor. */
	void (*get_abort)(void *ctx, void *cursor);
	/*
	 * The socket file was removed or replaced by someone else: the daemon
	 * should exit. Called once; may close the server. May be NULL.
	 */
	void (*removed)(void *ctx);
};

struct wgt_uapi_server;

/*
 * Control thread only. Creates dir (mode 0755 whatever the umask, parents
 * too, default WGT_UAPI_SOCK_DEFAULT_DIR when dir is NULL) and the socket
 * dir/IFNAME.sock (mode 0600 whatever the umask). A stale socket (connect()
 * gets ECONNREFUSED) is replaced; a live one fails with -EADDRINUSE; a
 * file there that is not a socket fails with -EEXIST. Registers watchers
 * on loop. Returns 0 or -errno (-EINVAL for a bad ifname, -ENAMETOOLONG
 * when the path does not fit in sun_path).
 */
int wgt_uapi_server_open(struct ev_loop *loop, const char *dir, const char *ifname,
			 const struct wgt_uapi_handler *h, void *ctx,
			 struct wgt_uapi_server **ret);

/*
 * Control thread only. Sets the two deadlines (seconds, > 0), for every
 * connection from its next check on; for tests, as the environment
 * variables above.
 */
void wgt_uapi_server_set_timeouts(struct wgt_uapi_server *s, double idle_s, double request_s);

/* Control thread only. Sets the set budget (bytes, > 0); for tests. */
void wgt_uapi_server_set_budget(struct wgt_uapi_server *s, size_t set_bytes);

/*
 * Control thread only. Stops the watchers, closes the connections (replies
 * not yet written are dropped) and unlinks the socket file if it is still
 * ours (same device and inode). Accepts NULL.
 */
void wgt_uapi_server_close(struct wgt_uapi_server *s);

/*
 * Any thread. The pid of the process listening on dir/IFNAME.sock (dir NULL:
 * the default), from the socket's peer credentials, or -errno (-ENOENT: no
 * socket there, -ECONNREFUSED: a stale one). For "already run by pid N".
 */
int wgt_uapi_owner_pid(const char *dir, const char *ifname);

/* Counters for metrics; every way a connection is refused or cut has one. */
struct wgt_uapi_server_stats {
	uint64_t accepted;     /* connections served */
	uint64_t refused_cap;  /* connections closed at once: WGT_UAPI_SOCK_MAX_CONNS were open */
	uint64_t refused_cred; /* closed at once: the peer is neither root nor our euid */
	uint64_t cut_oversize; /* closed after errno=: a set line or a set over the parser's cap */
	uint64_t cut_idle;     /* closed: no byte moved for the idle deadline */
	uint64_t cut_request;  /* closed: a request and its reply outlasted their deadline */
	uint64_t cut_budget;   /* closed after errno=-ENOBUFS: unfinished sets held the budget */
	uint64_t sets_ok;
	uint64_t sets_failed;  /* parse errors and handler errors */
	uint64_t gets;         /* get=1 answered by the handler, successfully or not */
	/* Parse errors by enum wgt_uapi_error; handler errors are not in here. */
	uint64_t errors[WGT_UAPI_SOCK_MAX_ERRORS];
	uint64_t bad_ops;      /* unknown operation, or get=1 not followed by '\n' */
	uint64_t op_too_long;  /* op line over WGT_UAPI_SOCK_MAX_OP_LINE: errno=-EMSGSIZE, closed */
	uint64_t open_conns;   /* gauge: connections open now */
	uint64_t set_bytes;    /* gauge: bytes unfinished sets hold (budget WGT_UAPI_SOCK_SET_BUDGET) */
};

/* Control thread only. */
void wgt_uapi_server_stats(const struct wgt_uapi_server *s, struct wgt_uapi_server_stats *ret);

#endif
