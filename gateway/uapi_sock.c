/* SPDX-License-Identifier: MIT */
/* UAPI socket server: capped accept of root and our uid, deadlines, nonblocking replies. */
#include "gateway/uapi_sock.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <ev.h>

#include "common/clock.h"
#include "common/compiler.h"
#include "common/log.h"
#include "config/uapi.h"

_Static_assert(WGT_UAPI_ERR__COUNT <= WGT_UAPI_SOCK_MAX_ERRORS, "stats.errors[] too small");
_Static_assert(WGT_UAPI_SOCK_SET_BUDGET >= WGT_UAPI_MAX_SET_BYTES, "a set at the cap must fit");

#define READ_BUF_LEN     16384        /* per connection, wiped after use */
#define WRITE_BUDGET     (1U << 20)   /* bytes per callback: one big get must not starve the loop */
#define ACCEPT_BATCH     128          /* connections per accept callback */
#define ACCEPT_BACKOFF_S 1.0          /* no accepting for this long after EMFILE and the like */
#define LOG_MSG_LEN      256

enum conn_state {
	ST_OP,      /* reading the op line */
	ST_GET_NL,  /* after get=1: the next byte must be '\n' */
	ST_SET,     /* feeding the set parser */
	ST_SKIP,    /* after a failed set: dropping its lines up to the blank one */
};

struct conn {
	struct wgt_uapi_server *srv;
	struct conn *prev, *next;
	int fd;
	ev_io rio;
	ev_io wio;
	ev_timer deadline;              /* fires at the earlier of the two deadlines, or before */
	double last_io;                 /* mono_s() when a byte last moved either way */
	double req_deadline;            /* mono_s(); 0: no request in progress */
	uid_t uid;                      /* the client's, from SO_PEERCRED: for the logs */
	pid_t pid;
	enum conn_state state;
	bool eof;                       /* the peer shut down its side */
	bool close_after;               /* close once the reply is written */
	bool skip_cr;                   /* ST_SKIP: the line so far is "\r" */
	size_t skip_len;                /* ST_SKIP: bytes of the current line */
	struct wgt_uapi_parser *parser; /* ST_SET only */
	size_t set_bytes;               /* fed to parser: our share of srv->set_bytes */
	struct wgt_uapi_buf out;        /* the reply being written; may hold a private key */
	size_t out_off;
	void *get_cursor;               /* a streamed get in progress: the handler's place */
	size_t op_len;
	size_t in_off, in_len;          /* unread part of in[] */
	char op[WGT_UAPI_SOCK_MAX_OP_LINE];
	unsigned char in[READ_BUF_LEN]; /* may hold key material: wiped once consumed */
};

struct wgt_uapi_server {
	struct ev_loop *loop;
	struct wgt_uapi_handler h;
	void *ctx;
	pthread_t owner;
	int fd;
	bool bound;                     /* dev/ino name the file we created */
	bool removed_reported;
	dev_t dev;
	ino_t ino;
	ev_io accept_io;
	ev_timer accept_backoff;
	ev_stat stat_w;
	struct conn *conns;
	unsigned n_conns;
	double idle_s, request_s;
	size_t set_budget;              /* bytes all unfinished sets may hold together */
	size_t set_bytes;               /* what they hold now */
	struct wgt_log_ratelimit refuse_rl;  /* connections refused at accept */
	struct wgt_log_ratelimit req_rl;     /* bad requests and cut connections */
	struct wgt_uapi_server_stats stats;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

#define ASSERT_OWNER(s) WGT_ASSERT(pthread_equal((s)->owner, pthread_self()))

/* Any thread. The path still names the socket file we created. */
static bool still_ours(const struct wgt_uapi_server *s)
{
	struct stat st;

	return s->bound && lstat(s->path, &st) == 0 && st.st_dev == s->dev && st.st_ino == s->ino;
}

/*
 * Control thread only. A warning line, at most rl's burst per interval: a
 * client looping on a refused or bad request must not flood the log.
 */
static void __attribute__((format(printf, 2, 3)))
warn_limited(struct wgt_log_ratelimit *rl, const char *fmt, ...)
{
	char msg[LOG_MSG_LEN];
	va_list ap;

	if (!wgt_log_enabled(WGT_LOG_WARN) || !wgt_log_ratelimit_ok(rl, wgt_now_ns()))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	wgt_warn("%s", msg);
}

/* Control thread only. Frees the set parser, if any, and gives its bytes back to the budget. */
static void parser_drop(struct conn *c)
{
	wgt_uapi_parser_free(c->parser);
	c->parser = NULL;
	WGT_ASSERT(c->srv->set_bytes >= c->set_bytes);
	c->srv->set_bytes -= c->set_bytes;
	c->set_bytes = 0;
}

/* Control thread only. Frees c: the caller must not touch it after. */
static void conn_free(struct conn *c)
{
	struct wgt_uapi_server *s = c->srv;

	ASSERT_OWNER(s);
	ev_io_stop(s->loop, &c->rio);
	ev_io_stop(s->loop, &c->wio);
	ev_timer_stop(s->loop, &c->deadline);
	close(c->fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->n_conns--;
	s->stats.open_conns = s->n_conns;
	if (c->get_cursor)
		s->h.get_abort(s->ctx, c->get_cursor);
	parser_drop(c);
	wgt_uapi_buf_free(&c->out);
	explicit_bzero(c, sizeof(*c));
	free(c);
}

/* Control thread only. Queues "errno=<err>\n\n". Returns 0, or -ENOMEM: close the connection. */
static int queue_errno(struct conn *c, int err)
{
	return wgt_uapi_format_errno(&c->out, err);
}

/*
 * Any thread. Monotonic seconds for the deadlines: libev's ev_now() follows
 * the wall clock, which may jump, and is stale after a long handler.
 */
static double mono_s(void)
{
	return (double)wgt_now_ns() / (double)WGT_NSEC_PER_SEC;
}

/*
 * Control thread only. The daemon ran a handler from t0 (mono_s()) on: that
 * time was ours, not the client's, so the deadlines move by it.
 */
static void handler_ran(struct conn *c, double t0)
{
	double now = mono_s();

	if (c->req_deadline)
		c->req_deadline += now - t0;
	c->last_io = now;
}

/*
 * Control thread only. The parser rejected the set: count, log without
 * values, reply. After a size cap the connection closes once the reply is
 * out: the rest of an overlong line or an oversized set could be endless.
 */
static int set_rejected(struct conn *c, int err)
{
	struct wgt_uapi_server *s = c->srv;
	enum wgt_uapi_error reason = wgt_uapi_parser_error(c->parser);
	bool cut = reason == WGT_UAPI_ERR_LINE_TOO_LONG || reason == WGT_UAPI_ERR_SET_TOO_BIG;

	s->stats.sets_failed++;
	if ((unsigned)reason < WGT_UAPI_ERR__COUNT)
		s->stats.errors[reason]++;
	if (cut) {
		s->stats.cut_oversize++;
		c->close_after = true;
	}
	/* The parser's message never quotes a value. */
	warn_limited(&s->req_rl, "uapi %s: set from uid %u pid %d rejected (%s): %s%s", s->path,
		     (unsigned)c->uid, (int)c->pid, wgt_uapi_error_name(reason),
		     wgt_uapi_parser_message(c->parser), cut ? ", closing the connection" : "");
	parser_drop(c);
	return queue_errno(c, err);
}

/* Control thread only. The set ended (blank line or EOF): hand it to the daemon, reply. */
static int set_apply(struct conn *c)
{
	struct wgt_uapi_server *s = c->srv;
	struct wgt_uapi_device *dev = NULL;
	double t0;
	int r;

	c->state = ST_OP;
	r = wgt_uapi_parser_finish(c->parser, &dev);
	if (r < 0)
		return set_rejected(c, r);
	parser_drop(c);

	t0 = mono_s();
	r = s->h.set(s->ctx, dev);
	handler_ran(c, t0);
	wgt_uapi_device_free(dev);
	WGT_ASSERT(r <= 0);
	if (r < 0) {
		s->stats.sets_failed++;
		warn_limited(&s->req_rl, "uapi %s: set from uid %u pid %d failed: %s", s->path,
			     (unsigned)c->uid, (int)c->pid, strerror(-r));
	} else {
		s->stats.sets_ok++;
	}
	return queue_errno(c, r);
}

/* Control thread only. After a failed set, where its unread lines start. */
static void skip_begin(struct conn *c, const unsigned char *fed, size_t used)
{
	c->state = ST_SKIP;
	c->skip_cr = false;
	/* The parser stops after the failing line's '\n', or inside a line too long. */
	c->skip_len = used && fed[used - 1] == '\n' ? 0 : 1;
}

/* Control thread only. The op line is complete in c->op. Returns 0, or <0 to close. */
static int op_dispatch(struct conn *c)
{
	struct wgt_uapi_server *s = c->srv;

	if (c->op_len == 5 && !memcmp(c->op, "set=1", 5)) {
		c->parser = wgt_uapi_parser_new(NULL);
		if (!c->parser) {
			c->close_after = true;
			return queue_errno(c, -ENOMEM);
		}
		c->state = ST_SET;
		return 0;
	}
	if (c->op_len == 5 && !memcmp(c->op, "get=1", 5)) {
		c->state = ST_GET_NL;
		return 0;
	}
	/* wireguard-go logs the operation and hangs up, without a reply; we don't quote it. */
	s->stats.bad_ops++;
	warn_limited(&s->req_rl,
		     "uapi %s: unknown operation (%zu bytes) from uid %u pid %d, closing the connection",
		     s->path, c->op_len, (unsigned)c->uid, (int)c->pid);
	return -EPROTO;
}

/* Control thread only. */
static int step_op(struct conn *c, const unsigned char *d, size_t len)
{
	const unsigned char *nl = memchr(d, '\n', len);
	size_t chunk = nl ? (size_t)(nl - d) : len;
	int r;

	if (chunk > sizeof(c->op) - c->op_len) {
		c->srv->stats.op_too_long++;
		warn_limited(&c->srv->req_rl,
			     "uapi %s: operation line longer than %u bytes from uid %u pid %d, closing the connection",
			     c->srv->path, WGT_UAPI_SOCK_MAX_OP_LINE, (unsigned)c->uid, (int)c->pid);
		/* Unlike an unknown operation, worth an answer: the client may be ours, gone wrong. */
		c->close_after = true;
		c->in_off = c->in_len;
		return queue_errno(c, -EMSGSIZE);
	}
	memcpy(c->op + c->op_len, d, chunk);
	c->op_len += chunk;
	c->in_off += chunk + (nl ? 1 : 0);
	if (!nl)
		return 0;
	r = op_dispatch(c);
	explicit_bzero(c->op, c->op_len);
	c->op_len = 0;
	return r;
}

/*
 * Control thread only. Appends the next part of a get answer. Returns 0, or
 * <0 after part of the answer went out: close the connection.
 */
static int get_next(struct conn *c, bool first)
{
	struct wgt_uapi_server *s = c->srv;
	double t0 = mono_s();
	int r;

	r = s->h.get(s->ctx, &c->out, &c->get_cursor);
	handler_ran(c, t0);
	WGT_ASSERT(r <= 1);
	WGT_ASSERT(r == 0 ? c->get_cursor != NULL : c->get_cursor == NULL);
	if (r >= 0 && !c->out.len)
		r = -EIO;
	if (r < 0) {
		warn_limited(&s->req_rl, "uapi %s: get failed: %s", s->path, strerror(-r));
		if (c->get_cursor) {
			s->h.get_abort(s->ctx, c->get_cursor);
			c->get_cursor = NULL;
		}
		wgt_uapi_buf_free(&c->out);
		return first ? queue_errno(c, r) : r;
	}
	return 0;
}

/* Control thread only. The byte after get=1. */
static int step_get(struct conn *c, unsigned char next)
{
	struct wgt_uapi_server *s = c->srv;

	c->in_off++;
	c->state = ST_OP;
	if (next != '\n') {
		/* As wireguard-go: the byte is consumed, -EINVAL answered, the connection goes on. */
		s->stats.bad_ops++;
		warn_limited(&s->req_rl, "uapi %s: trailing character after get=1 from uid %u pid %d",
			     s->path, (unsigned)c->uid, (int)c->pid);
		return queue_errno(c, -EINVAL);
	}
	s->stats.gets++;
	return get_next(c, true);
}

/*
 * Control thread only. Unfinished sets together hold more than the budget:
 * 64 connections each at the parser's caps would be gigabytes. This one is
 * refused with -ENOBUFS and its connection closed; the others go on.
 */
static int set_over_budget(struct conn *c)
{
	struct wgt_uapi_server *s = c->srv;

	s->stats.sets_failed++;
	s->stats.cut_budget++;
	warn_limited(&s->req_rl,
		     "uapi %s: set from uid %u pid %d refused: unfinished sets hold %zu bytes, "
		     "the budget is %zu; closing the connection",
		     s->path, (unsigned)c->uid, (int)c->pid, s->set_bytes, s->set_budget);
	parser_drop(c);
	c->close_after = true;
	c->in_off = c->in_len;
	return queue_errno(c, -ENOBUFS);
}

/* Control thread only. */
static int step_set(struct conn *c, const unsigned char *d, size_t len)
{
	struct wgt_uapi_server *s = c->srv;
	size_t used = 0;
	int r;

	if (s->set_bytes >= s->set_budget)
		return set_over_budget(c);
	len = WGT_MIN(len, s->set_budget - s->set_bytes);
	r = wgt_uapi_parser_feed(c->parser, d, len, &used);
	c->in_off += used;
	c->set_bytes += used;
	s->set_bytes += used;
	if (r == 0) {
		WGT_ASSERT(used == len);
		return 0;
	}
	if (r == 1)
		return set_apply(c);
	skip_begin(c, d, used);
	return set_rejected(c, r);
}

/*
 * Control thread only. Drops the rest of a failed set up to its blank line,
 * so the next request starts clean and wg, still writing the set, does not
 * get EPIPE (wireguard-go would read those lines as operations and hang up).
 */
static int step_skip(struct conn *c, const unsigned char *d, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (d[i] != '\n') {
			c->skip_cr = c->skip_len == 0 && d[i] == '\r';
			c->skip_len++;
			continue;
		}
		if (c->skip_len == 0 || (c->skip_len == 1 && c->skip_cr)) {
			c->in_off += i + 1;
			c->state = ST_OP;
			return 0;
		}
		c->skip_len = 0;
		c->skip_cr = false;
	}
	c->in_off += len;
	return 0;
}

/* Control thread only. Consumes some buffered input. Returns 0, or <0 to close. */
static int step(struct conn *c)
{
	const unsigned char *d = c->in + c->in_off;
	size_t len = c->in_len - c->in_off;

	/* A request runs from its first byte to the end of its reply. */
	if (!c->req_deadline)
		c->req_deadline = mono_s() + c->srv->request_s;
	switch (c->state) {
	case ST_OP:
		return step_op(c, d, len);
	case ST_GET_NL:
		return step_get(c, d[0]);
	case ST_SET:
		return step_set(c, d, len);
	case ST_SKIP:
		return step_skip(c, d, len);
	}
	return -EINVAL;
}

/* Control thread only. The peer shut down its side and every byte was consumed. */
static int on_eof(struct conn *c)
{
	size_t used;
	int r;

	if (c->state != ST_SET)
		return -ECONNRESET; /* as wireguard-go: an unfinished op or get=1 gets no reply */
	/*
	 * wireguard-go takes a set cut short by EOF, its last line too when it
	 * lacks the '\n': a newline completes a buffered line or, if there is
	 * none, ends the set.
	 */
	c->close_after = true;
	r = wgt_uapi_parser_feed(c->parser, "\n", 1, &used);
	if (r < 0) {
		c->state = ST_SKIP;
		return set_rejected(c, r);
	}
	return set_apply(c);
}

/*
 * Control thread only. Writes what it can of the reply. Three outcomes:
 * 1 all written, 0 would block (or the budget is spent), <0 -errno.
 */
static int flush(struct conn *c)
{
	size_t budget = WRITE_BUDGET;

	while (c->out_off < c->out.len) {
		size_t n = WGT_MIN(c->out.len - c->out_off, budget);
		ssize_t w;

		if (!budget)
			return 0;
		w = send(c->fd, c->out.data + c->out_off, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w == -1) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return -errno;
		}
		c->out_off += (size_t)w;
		budget -= (size_t)w;
		c->last_io = mono_s();
	}
	return 1;
}

/*
 * Control thread only. Runs requests from the buffered input until it needs
 * more input or the socket stops taking the reply, and arms the matching
 * watcher: reading is paused while a reply is pending. May free c.
 */
static void conn_run(struct conn *c)
{
	struct ev_loop *loop = c->srv->loop;
	int r;

	for (;;) {
		if (c->out.len) {
			r = flush(c);
			if (r < 0) {
				wgt_dbg("uapi %s: write: %s", c->srv->path, strerror(-r));
				conn_free(c);
				return;
			}
			if (r == 0) {
				ev_io_stop(loop, &c->rio);
				ev_io_start(loop, &c->wio);
				return;
			}
			wgt_uapi_buf_free(&c->out);
			c->out_off = 0;
			if (c->get_cursor) {
				/* The next part of a streamed get, written on the next write
				 * event: other connections and the loop get their turn. */
				if (get_next(c, false) < 0) {
					conn_free(c);
					return;
				}
				ev_io_stop(loop, &c->rio);
				ev_io_start(loop, &c->wio);
				return;
			}
			if (c->close_after) {
				conn_free(c);
				return;
			}
			if (c->state == ST_OP && !c->op_len)
				c->req_deadline = 0;
			continue;
		}
		if (c->in_off == c->in_len) {
			explicit_bzero(c->in, c->in_len);
			c->in_off = c->in_len = 0;
			if (c->state == ST_OP && !c->op_len)
				c->req_deadline = 0;
			if (!c->eof) {
				ev_io_stop(loop, &c->wio);
				ev_io_start(loop, &c->rio);
				return;
			}
			r = on_eof(c);
			if (!r && !c->out.len)
				r = -ECONNRESET;
		} else {
			r = step(c);
		}
		if (r < 0) {
			conn_free(c);
			return;
		}
	}
}

/* Control thread only. */
static void on_read(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c = w->data;
	ssize_t n;

	ASSERT_OWNER(c->srv);
	WGT_ASSERT(c->in_off == c->in_len && !c->out.len);
	n = read(c->fd, c->in, sizeof(c->in));
	if (n == -1) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return;
		wgt_dbg("uapi %s: read: %s", c->srv->path, strerror(errno));
		conn_free(c);
		return;
	}
	c->in_off = 0;
	c->in_len = (size_t)n;
	c->last_io = mono_s();
	if (!n)
		c->eof = true;
	conn_run(c);
}

/* Control thread only. */
static void on_write(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c = w->data;

	ASSERT_OWNER(c->srv);
	conn_run(c);
}

/*
 * Control thread only. Checked lazily, as libev's manual
 * suggests for idle timeouts, so a byte moving costs a store and not a
 * timer update: when the timer fires early it is re-armed for the rest.
 */
static void on_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct conn *c = w->data;
	struct wgt_uapi_server *s = c->srv;
	double now = mono_s(), idle_at = c->last_io + s->idle_s, next = idle_at;

	ASSERT_OWNER(s);
	if (c->req_deadline && c->req_deadline < next)
		next = c->req_deadline;
	if (now < next) {
		ev_timer_set(w, next - now, 0.);
		ev_timer_start(loop, w);
		return;
	}
	if (now >= idle_at) {
		s->stats.cut_idle++;
		warn_limited(&s->req_rl,
			     "uapi %s: connection from uid %u pid %d silent for %.1f s %s, closing it",
			     s->path, (unsigned)c->uid, (int)c->pid, s->idle_s,
			     c->out.len ? "while a reply waits" :
			     c->req_deadline ? "in a request" : "between requests");
	} else {
		s->stats.cut_request++;
		warn_limited(&s->req_rl,
			     "uapi %s: request from uid %u pid %d not done after %.1f s, closing the connection",
			     s->path, (unsigned)c->uid, (int)c->pid, s->request_s);
	}
	conn_free(c);
}

/* Control thread only. Returns NULL when out of memory. */
static struct conn *conn_new(struct wgt_uapi_server *s, int fd, const struct ucred *cr)
{
	struct conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->srv = s;
	c->fd = fd;
	c->uid = cr->uid;
	c->pid = cr->pid;
	c->state = ST_OP;
	c->last_io = mono_s();
	ev_io_init(&c->rio, on_read, fd, EV_READ);
	ev_io_init(&c->wio, on_write, fd, EV_WRITE);
	ev_timer_init(&c->deadline, on_deadline, s->idle_s, 0.);
	c->rio.data = c;
	c->wio.data = c;
	c->deadline.data = c;
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	s->n_conns++;
	s->stats.open_conns = s->n_conns;
	ev_io_start(s->loop, &c->rio);
	ev_timer_start(s->loop, &c->deadline);
	return c;
}

/*
 * Any thread. Root, and the uid the daemon runs as (after a privilege drop,
 * the unprivileged user it runs as now): the people who could configure it
 * anyway.
 */
static bool peer_allowed(const struct ucred *cr)
{
	return cr->uid == 0 || cr->uid == geteuid();
}

/* Control thread only. */
static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	struct wgt_uapi_server *s = w->data;
	unsigned i;

	ASSERT_OWNER(s);
	for (i = 0; i < ACCEPT_BATCH; i++) {
		int fd = accept4(s->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct ucred cr = { .pid = 0, .uid = (uid_t)-1, .gid = (gid_t)-1 };
		socklen_t len = sizeof(cr);

		if (fd == -1) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			/* EMFILE and the like: the socket stays readable, so back off instead of spinning. */
			wgt_err("uapi %s: accept: %s", s->path, strerror(errno));
			ev_io_stop(loop, &s->accept_io);
			ev_timer_start(loop, &s->accept_backoff);
			return;
		}
		/* Before the cap: a flood of strangers is counted as what it is. */
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) == -1 || len != sizeof(cr) ||
		    !peer_allowed(&cr)) {
			close(fd);
			s->stats.refused_cred++;
			warn_limited(&s->refuse_rl,
				     "uapi %s: refused a connection from uid %d pid %d: "
				     "only root and uid %u may configure the device",
				     s->path, (int)cr.uid, (int)cr.pid, (unsigned)geteuid());
			continue;
		}
		if (s->n_conns >= WGT_UAPI_SOCK_MAX_CONNS) {
			close(fd);
			s->stats.refused_cap++;
			warn_limited(&s->refuse_rl, "uapi %s: %u connections open, refused one from uid %u pid %d",
				     s->path, s->n_conns, (unsigned)cr.uid, (int)cr.pid);
			continue;
		}
		if (!conn_new(s, fd, &cr)) {
			close(fd);
			wgt_err("uapi %s: out of memory for a connection", s->path);
			continue;
		}
		s->stats.accepted++;
	}
}

/* Control thread only. */
static void on_accept_backoff(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct wgt_uapi_server *s = w->data;

	ev_io_start(loop, &s->accept_io);
}

/*
 * Control thread only. libev watches the path with inotify (polling where it
 * cannot); like wireguard-go we check with lstat, and also catch a file put
 * in our place. The handler may close the server, so it is called last.
 */
static void on_stat(struct ev_loop *loop, ev_stat *w, int revents)
{
	struct wgt_uapi_server *s = w->data;

	ASSERT_OWNER(s);
	if (s->removed_reported || still_ours(s))
		return;
	s->removed_reported = true;
	wgt_warn("uapi %s: socket file removed or replaced", s->path);
	if (s->h.removed)
		s->h.removed(s->ctx);
}

/* Any thread. An interface name fit for a file name: what the kernel would take, and no '/'. */
static bool ifname_ok(const char *ifname)
{
	size_t len = ifname ? strnlen(ifname, 16) : 0;

	if (!len || len >= 16 || strchr(ifname, '/'))
		return false;
	return strcmp(ifname, ".") && strcmp(ifname, "..");
}

/* Any thread. mkdir -p: directories it creates get 0755 whatever the umask, others keep theirs. */
static int make_dir(const char *dir)
{
	char buf[PATH_MAX];
	size_t len = strlen(dir), i;
	struct stat st;

	if (!len || len >= sizeof(buf))
		return len ? -ENAMETOOLONG : -EINVAL;
	memcpy(buf, dir, len + 1);
	for (i = 1; i <= len; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		buf[i] = '\0';
		if (mkdir(buf, 0755) == 0) {
			if (chmod(buf, 0755) == -1)
				return -errno;
		} else if (errno != EEXIST) {
			return -errno;
		}
		buf[i] = dir[i];
	}
	if (stat(dir, &st) == -1)
		return -errno;
	return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

/*
 * Any thread. bind() found something at the path. Returns 0 when it was a stale socket,
 * now removed (or the path went away meanwhile), -EADDRINUSE when a server
 * listens there, -EEXIST when it is not a socket, or another -errno.
 */
static int remove_stale(const struct sockaddr_un *sa)
{
	struct stat st;
	int fd, r;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -errno;
	r = connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == -1 ? -errno : 0;
	close(fd);
	/* EAGAIN: a live server whose backlog is full. */
	if (r == 0 || r == -EAGAIN || r == -EINPROGRESS)
		return -EADDRINUSE;
	if (r == -ENOENT)
		return 0;
	if (r != -ECONNREFUSED)
		return r;
	if (lstat(sa->sun_path, &st) == -1)
		return errno == ENOENT ? 0 : -errno;
	/* wireguard-go removes whatever is there; a non-socket is nobody's stale socket. */
	if (!S_ISSOCK(st.st_mode))
		return -EEXIST;
	if (unlink(sa->sun_path) == -1 && errno != ENOENT)
		return -errno;
	return 0;
}

/* Control thread only. Binds and listens on s->path, 0600; sets s->fd, s->dev, s->ino. */
static int listen_socket(struct wgt_uapi_server *s)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int attempt, r;

	memcpy(sa.sun_path, s->path, strlen(s->path) + 1);
	for (attempt = 0;; attempt++) {
		s->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (s->fd == -1)
			return -errno;
		/*
		 * bind() creates the file with the socket inode's mode less the
		 * umask, so from its first instant it is no wider than 0600; the
		 * chmod below makes it exactly 0600. The umask is process-wide and
		 * is not ours to change under other threads, as wireguard-go does.
		 */
		if (fchmod(s->fd, 0600) == -1)
			return -errno;
		if (bind(s->fd, (const struct sockaddr *)&sa, sizeof(sa)) == 0)
			break;
		r = -errno;
		close(s->fd);
		s->fd = -1;
		if (r != -EADDRINUSE || attempt)
			return r;
		r = remove_stale(&sa);
		if (r < 0)
			return r;
	}
	if (lstat(s->path, &st) == -1)
		return -errno;
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	s->bound = true;
	if (chmod(s->path, 0600) == -1)
		return -errno;
	if (listen(s->fd, SOMAXCONN) == -1)
		return -errno;
	return 0;
}

/*
 * Control thread only. A deadline from the environment (tests): honoured
 * only to shorten the default, so it cannot weaken a daemon.
 */
static double env_timeout(const char *name, double dflt)
{
	const char *v = getenv(name);
	unsigned long ms;
	char *end;

	if (!v || !*v)
		return dflt;
	errno = 0;
	ms = strtoul(v, &end, 10);
	if (errno || *end || !ms || (double)ms / 1000. >= dflt) {
		wgt_warn("uapi: ignoring %s=%s (milliseconds, 1 to below %.0f s)", name, v, dflt);
		return dflt;
	}
	wgt_info("uapi: %s=%lu shortens a deadline to %.3f s", name, ms, (double)ms / 1000.);
	return (double)ms / 1000.;
}

/* Control thread only. */
int wgt_uapi_server_open(struct ev_loop *loop, const char *dir, const char *ifname,
			 const struct wgt_uapi_handler *h, void *ctx,
			 struct wgt_uapi_server **ret)
{
	struct wgt_uapi_server *s;
	int n, r;

	if (!loop || !h || !h->set || !h->get || !h->get_abort || !ret || !ifname_ok(ifname))
		return -EINVAL;
	if (!dir)
		dir = WGT_UAPI_SOCK_DEFAULT_DIR;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->loop = loop;
	s->h = *h;
	s->ctx = ctx;
	s->owner = pthread_self();
	s->fd = -1;
	s->set_budget = WGT_UAPI_SOCK_SET_BUDGET;
	s->idle_s = env_timeout(WGT_UAPI_SOCK_IDLE_ENV, WGT_UAPI_SOCK_IDLE_TIMEOUT_S);
	s->request_s = env_timeout(WGT_UAPI_SOCK_REQUEST_ENV, WGT_UAPI_SOCK_REQUEST_TIMEOUT_S);
	s->refuse_rl = (struct wgt_log_ratelimit)WGT_LOG_RATELIMIT_INIT;
	s->req_rl = (struct wgt_log_ratelimit)WGT_LOG_RATELIMIT_INIT;
	ev_init(&s->accept_io, on_accept);
	ev_timer_init(&s->accept_backoff, on_accept_backoff, ACCEPT_BACKOFF_S, 0.);
	ev_stat_init(&s->stat_w, on_stat, s->path, 0.);
	s->accept_io.data = s;
	s->accept_backoff.data = s;
	s->stat_w.data = s;

	n = snprintf(s->path, sizeof(s->path), "%s/%s.sock", dir, ifname);
	if (n < 0 || (size_t)n >= sizeof(s->path)) {
		r = -ENAMETOOLONG;
		goto err;
	}
	r = make_dir(dir);
	if (r < 0)
		goto err;
	r = listen_socket(s);
	if (r < 0)
		goto err;

	ev_io_set(&s->accept_io, s->fd, EV_READ);
	ev_io_start(loop, &s->accept_io);
	ev_stat_start(loop, &s->stat_w);
	/* Gone before the watch began: no event would ever tell. */
	if (!still_ours(s)) {
		r = -ENOENT;
		goto err;
	}
	*ret = s;
	return 0;

err:
	wgt_uapi_server_close(s);
	return r;
}

/* Control thread only. */
void wgt_uapi_server_set_timeouts(struct wgt_uapi_server *s, double idle_s, double request_s)
{
	ASSERT_OWNER(s);
	WGT_ASSERT(idle_s > 0 && request_s > 0);
	s->idle_s = idle_s;
	s->request_s = request_s;
}

/* Control thread only. */
void wgt_uapi_server_set_budget(struct wgt_uapi_server *s, size_t set_bytes)
{
	ASSERT_OWNER(s);
	WGT_ASSERT(set_bytes > 0);
	s->set_budget = set_bytes;
}

/* Control thread only. */
void wgt_uapi_server_close(struct wgt_uapi_server *s)
{
	if (!s)
		return;
	ASSERT_OWNER(s);
	while (s->conns)
		conn_free(s->conns);
	ev_io_stop(s->loop, &s->accept_io);
	ev_timer_stop(s->loop, &s->accept_backoff);
	ev_stat_stop(s->loop, &s->stat_w);
	/* Someone else's file, if ours was replaced: leave it. */
	if (still_ours(s) && unlink(s->path) == -1)
		/* EACCES after --user: the directory is root's. The file is a stale socket now,
		 * which `wg` removes when it meets one and the next start replaces. */
		wgt_warn("uapi %s: cannot remove the socket file: %s", s->path, strerror(errno));
	if (s->fd != -1)
		close(s->fd);
	free(s);
}

/* Control thread only. */
void wgt_uapi_server_stats(const struct wgt_uapi_server *s, struct wgt_uapi_server_stats *ret)
{
	ASSERT_OWNER(s);
	*ret = s->stats;
	ret->set_bytes = s->set_bytes;
}

/* Any thread. */
int wgt_uapi_owner_pid(const char *dir, const char *ifname)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct ucred cred;
	socklen_t len = sizeof(cred);
	int fd, n, r;

	if (!ifname_ok(ifname))
		return -EINVAL;
	n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s.sock",
		     dir ? dir : WGT_UAPI_SOCK_DEFAULT_DIR, ifname);
	if (n < 0 || (size_t)n >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -errno;
	/* The peer credentials of a listening socket are its owner's at listen(). */
	if (connect(fd, (const struct sockaddr *)&sa, sizeof(sa)) == -1 && errno != EINPROGRESS &&
	    errno != EAGAIN)
		r = -errno;
	else if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1)
		r = -errno;
	else
		r = cred.pid > 0 ? cred.pid : -ESRCH;
	close(fd);
	return r;
}
