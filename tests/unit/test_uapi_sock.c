/* SPDX-License-Identifier: MIT */
/* UAPI socket server: files, stale and live sockets, requests, caps, credentials, deadlines. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>

#include "config/uapi.h"
#include "tests/unit/hex.h"
#include "gateway/uapi_sock.h"

/* Keys from `wg genkey`, throwaway (as in test_uapi.c). */
#define PRIV "80b610e7b389acc942ddce6b75da22fbfc676a1156b97840a7241063c2b88754"
#define PUB1 "9ebb5dfb0e2fcecd6d4a44de120684dab1382c98eefce4e4113f03b4af5a9e35"

/* A set shaped as wg(8) writes it: device keys, replace_peers, one peer section, the blank line. */
static const char wg_set[] =
	"set=1\nprivate_key=" PRIV "\nlisten_port=51820\nreplace_peers=true\n"
	"public_key=" PUB1 "\nallowed_ip=10.0.0.2/32\n\n";

#define IFNAME "wgt0"

static char tmpdir[64];
static char rundir[128];
static char sockdir[160];
static char sockpath[200];
static struct ev_loop *loop;
static struct wgt_uapi_server *srv;

/* What the fake daemon saw. */
static struct {
	int sets, gets, removed;
	int set_ret, get_ret;
	unsigned dev_flags;
	uint16_t listen_port;
	uint8_t private_key[32];
	size_t n_peers;
	unsigned peer_flags;
	uint8_t public_key[32];
	size_t n_allowed_ips;
	struct wgt_uapi_allowedip allowed_ip;
	const struct wgt_uapi_buf *answer;  /* get: appended as is when set */
	unsigned set_delay_ms;              /* set: the daemon's own time, not the client's */
	unsigned stream_peers;              /* get: streamed, one peer per part */
	unsigned streamed;                  /* peers written so far */
	int stream_fail_at;                 /* get: a later part fails with -ENOMEM (0: none) */
	int aborts;
	int cursor;                         /* what the streamed get's cursor points to */
} fake;

static int fake_set(void *ctx, const struct wgt_uapi_device *dev)
{
	fake.sets++;
	if (fake.set_delay_ms) {
		struct timespec ts = { .tv_sec = fake.set_delay_ms / 1000,
				       .tv_nsec = (long)(fake.set_delay_ms % 1000) * 1000000 };

		nanosleep(&ts, NULL);
	}
	fake.dev_flags = dev->flags;
	fake.listen_port = dev->listen_port;
	memcpy(fake.private_key, dev->private_key, 32);
	fake.n_peers = dev->n_peers;
	if (dev->n_peers) {
		fake.peer_flags = dev->peers[0].flags;
		memcpy(fake.public_key, dev->peers[0].public_key, 32);
		fake.n_allowed_ips = dev->peers[0].n_allowed_ips;
		if (dev->peers[0].n_allowed_ips)
			fake.allowed_ip = dev->peers[0].allowed_ips[0];
	}
	return fake.set_ret;
}

/* One part of a streamed get: the device lines first, then peer `streamed`, then the end. */
static int fake_stream(struct wgt_uapi_buf *out, void **cursor)
{
	struct wgt_uapi_get_device dev = { .listen_port = fake.listen_port };
	struct wgt_uapi_get_peer peer = { 0 };

	if (!*cursor) {
		ck_assert_int_eq(wgt_uapi_format_get_device(out, &dev), 0);
		*cursor = &fake.cursor;
	} else {
		ck_assert_ptr_eq(*cursor, &fake.cursor);
	}
	if (fake.streamed < fake.stream_peers) {
		if (fake.stream_fail_at && fake.streamed == (unsigned)fake.stream_fail_at) {
			*cursor = NULL;
			return -ENOMEM;
		}
		memset(peer.public_key, (int)(fake.streamed % 256), sizeof(peer.public_key));
		ck_assert_int_eq(wgt_uapi_format_get_peer(out, &peer), 0);
		fake.streamed++;
		return 0;
	}
	ck_assert_int_eq(wgt_uapi_format_get_end(out), 0);
	*cursor = NULL;
	return 1;
}

static int fake_get(void *ctx, struct wgt_uapi_buf *out, void **cursor)
{
	struct wgt_uapi_get_device dev = { .listen_port = fake.listen_port };

	if (!*cursor)
		fake.gets++;
	if (fake.get_ret)
		return fake.get_ret;
	if (fake.stream_peers)
		return fake_stream(out, cursor);
	if (fake.answer) {
		/* A plain malloc'd buffer: grown here as the formatter would. */
		char *d = realloc(out->data, out->len + fake.answer->len);

		ck_assert_ptr_nonnull(d);
		memcpy(d + out->len, fake.answer->data, fake.answer->len);
		out->data = d;
		out->len += fake.answer->len;
		out->cap = out->len;
		return 1;
	}
	return wgt_uapi_format_get(out, &dev) ?: 1;
}

static void fake_get_abort(void *ctx, void *cursor)
{
	ck_assert_ptr_eq(cursor, &fake.cursor);
	fake.aborts++;
}

static void fake_removed(void *ctx)
{
	fake.removed++;
}

static const struct wgt_uapi_handler handler = {
	.set = fake_set,
	.get = fake_get,
	.get_abort = fake_get_abort,
	.removed = fake_removed,
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs the server's loop until cond holds; a deadline, never a sleep. */
#define PUMP_UNTIL(cond) do { \
	double deadline_ = now() + 20; \
	while (!(cond)) { \
		ck_assert_msg(now() < deadline_, "timed out waiting for " #cond); \
		ev_run(loop, EVRUN_NOWAIT); \
	} \
} while (0)

static struct wgt_uapi_server_stats stats(void)
{
	struct wgt_uapi_server_stats st;

	wgt_uapi_server_stats(srv, &st);
	return st;
}

static void setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/wgt-uapisock-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	snprintf(rundir, sizeof(rundir), "%s/run", tmpdir);
	snprintf(sockdir, sizeof(sockdir), "%s/wireguard", rundir);
	snprintf(sockpath, sizeof(sockpath), "%s/" IFNAME ".sock", sockdir);
	loop = ev_loop_new(EVFLAG_AUTO);
	ck_assert_ptr_nonnull(loop);
	memset(&fake, 0, sizeof(fake));
	srv = NULL;
}

static void teardown(void)
{
	wgt_uapi_server_close(srv);
	srv = NULL;
	ev_loop_destroy(loop);
	unlink(sockpath);
	rmdir(sockdir);
	rmdir(rundir);
	rmdir(tmpdir);
}

static void open_server(void)
{
	ck_assert_int_eq(wgt_uapi_server_open(loop, sockdir, IFNAME, &handler, NULL, &srv), 0);
}

static void unix_addr(struct sockaddr_un *sa, const char *path)
{
	size_t len = strlen(path);

	ck_assert_uint_lt(len, sizeof(sa->sun_path));
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path, path, len + 1);
}

/* A nonblocking client that collects what the server writes. */
struct client {
	int fd;
	bool eof;
	char *buf;
	size_t len, cap;
};

static void client_open(struct client *c)
{
	struct sockaddr_un sa;

	memset(c, 0, sizeof(*c));
	unix_addr(&sa, sockpath);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	ck_assert_int_ne(c->fd, -1);
	ck_assert_int_eq(connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
}

static void client_close(struct client *c)
{
	close(c->fd);
	free(c->buf);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

static void client_send(struct client *c, const void *data, size_t len)
{
	const char *d = data;

	while (len) {
		ssize_t n = send(c->fd, d, len, MSG_NOSIGNAL);

		if (n == -1) {
			ck_assert_msg(errno == EAGAIN, "send: %s", strerror(errno));
			ev_run(loop, EVRUN_NOWAIT);
			continue;
		}
		d += n;
		len -= (size_t)n;
	}
}

static void client_sends(struct client *c, const char *s)
{
	client_send(c, s, strlen(s));
}

/* Reads at most max bytes of what is there. Returns true (for PUMP_UNTIL) if it got any or EOF. */
static bool client_fill(struct client *c, size_t max)
{
	ssize_t n;

	if (c->eof)
		return true;
	if (c->cap - c->len < max + 1) {
		c->cap = c->len + max + 1 + c->cap;
		c->buf = realloc(c->buf, c->cap);
		ck_assert_ptr_nonnull(c->buf);
	}
	n = recv(c->fd, c->buf + c->len, max, 0);
	if (n == -1) {
		if (errno == ECONNRESET) {
			c->eof = true;
			return true;
		}
		ck_assert_msg(errno == EAGAIN, "recv: %s", strerror(errno));
		return false;
	}
	if (n == 0)
		c->eof = true;
	c->len += (size_t)n;
	c->buf[c->len] = '\0';
	return true;
}

static bool client_has_reply(struct client *c)
{
	client_fill(c, 65536);
	return c->len && memmem(c->buf, c->len, "\n\n", 2);
}

/* Waits for one reply (up to its blank line) and compares it. */
static void client_expect(struct client *c, const char *want)
{
	size_t n;

	PUMP_UNTIL(client_has_reply(c) || c->eof);
	ck_assert_msg(c->len && memmem(c->buf, c->len, "\n\n", 2), "EOF before a reply");
	n = (size_t)((char *)memmem(c->buf, c->len, "\n\n", 2) - c->buf) + 2;
	ck_assert_uint_eq(n, strlen(want));
	ck_assert_mem_eq(c->buf, want, n);
	memmove(c->buf, c->buf + n, c->len - n + 1);
	c->len -= n;
}

/* The server hangs up, with nothing more to say. */
static void client_expect_eof(struct client *c)
{
	PUMP_UNTIL((client_fill(c, 65536), c->eof));
	ck_assert_uint_eq(c->len, 0);
}

static void assert_key(const uint8_t key[32], const char *hex)
{
	uint8_t want[32];

	unhex(want, hex, 32);
	ck_assert_mem_eq(key, want, 32);
}

START_TEST(test_modes)
{
	struct stat st;
	mode_t old = umask(077);

	open_server();
	ck_assert_int_eq(stat(rundir, &st), 0);
	ck_assert(S_ISDIR(st.st_mode));
	ck_assert_uint_eq(st.st_mode & 07777, 0755);
	ck_assert_int_eq(stat(sockdir, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0755);
	ck_assert_int_eq(lstat(sockpath, &st), 0);
	ck_assert(S_ISSOCK(st.st_mode));
	ck_assert_uint_eq(st.st_mode & 07777, 0600);
	wgt_uapi_server_close(srv);
	srv = NULL;
	ck_assert_int_eq(lstat(sockpath, &st), -1);
	ck_assert_int_eq(errno, ENOENT);

	/* A lax umask changes nothing; an existing directory keeps its mode. */
	ck_assert_int_eq(chmod(sockdir, 0711), 0);
	umask(0);
	open_server();
	ck_assert_int_eq(lstat(sockpath, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0600);
	ck_assert_int_eq(stat(sockdir, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0711);
	umask(old);
}
END_TEST

START_TEST(test_bad_args)
{
	struct wgt_uapi_server *s = NULL;
	char longdir[200];

	ck_assert_int_eq(wgt_uapi_server_open(loop, sockdir, "", &handler, NULL, &s), -EINVAL);
	ck_assert_int_eq(wgt_uapi_server_open(loop, sockdir, "a/b", &handler, NULL, &s), -EINVAL);
	ck_assert_int_eq(wgt_uapi_server_open(loop, sockdir, "..", &handler, NULL, &s), -EINVAL);
	ck_assert_int_eq(wgt_uapi_server_open(loop, sockdir, "0123456789abcdef", &handler, NULL, &s),
			 -EINVAL);
	memset(longdir, 'd', sizeof(longdir) - 1);
	longdir[0] = '/';
	longdir[sizeof(longdir) - 1] = '\0';
	ck_assert_int_eq(wgt_uapi_server_open(loop, longdir, IFNAME, &handler, NULL, &s), -ENAMETOOLONG);
	ck_assert_ptr_null(s);
	wgt_uapi_server_close(NULL);
}
END_TEST

START_TEST(test_stale_replaced)
{
	struct sockaddr_un sa;
	struct client c;
	int fd;

	/* A daemon that died: its socket file stays, nobody listens. */
	ck_assert_int_eq(mkdir(rundir, 0755), 0);
	ck_assert_int_eq(mkdir(sockdir, 0755), 0);
	unix_addr(&sa, sockpath);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);

	open_server();
	client_open(&c);
	client_sends(&c, "get=1\n\n");
	client_expect(&c, "errno=0\n\n");
	client_close(&c);
}
END_TEST

START_TEST(test_not_a_socket)
{
	struct wgt_uapi_server *s = NULL;
	FILE *f;

	ck_assert_int_eq(mkdir(rundir, 0755), 0);
	ck_assert_int_eq(mkdir(sockdir, 0755), 0);
	f = fopen(sockpath, "w");
	ck_assert_ptr_nonnull(f);
	fclose(f);
	ck_assert_int_eq(wgt_uapi_server_open(loop, sockdir, IFNAME, &handler, NULL, &s), -EEXIST);
	ck_assert_int_eq(access(sockpath, F_OK), 0);
}
END_TEST

START_TEST(test_live_in_use)
{
	struct wgt_uapi_server *other = NULL;
	struct client c;

	open_server();
	ck_assert_int_eq(wgt_uapi_server_open(loop, sockdir, IFNAME, &handler, NULL, &other),
			 -EADDRINUSE);
	ck_assert_ptr_null(other);
	/* The live one still owns the file and serves. */
	client_open(&c);
	client_sends(&c, "get=1\n\n");
	client_expect(&c, "errno=0\n\n");
	client_close(&c);
}
END_TEST

START_TEST(test_get)
{
	struct client c;

	fake.listen_port = 51820;
	open_server();
	client_open(&c);
	client_sends(&c, "get=1\n\n");
	client_expect(&c, "listen_port=51820\nerrno=0\n\n");

	fake.get_ret = -ENOMEM;
	client_sends(&c, "get=1\n\n");
	client_expect(&c, "errno=-12\n\n");
	ck_assert_int_eq(fake.gets, 2);
	ck_assert_uint_eq(stats().gets, 2);
	client_close(&c);
}
END_TEST

/* A get streamed in parts arrives whole, as if written at once; one that fails late hangs up. */
START_TEST(test_get_streamed)
{
	struct client c;
	char want[4096];
	size_t n;

	fake.listen_port = 51820;
	fake.stream_peers = 3;
	open_server();
	client_open(&c);
	client_sends(&c, "get=1\n\n");
	n = (size_t)snprintf(want, sizeof(want), "listen_port=51820\n");
	for (unsigned i = 0; i < 3; i++) {
		n += (size_t)snprintf(want + n, sizeof(want) - n, "public_key=");
		for (unsigned k = 0; k < 32; k++)
			n += (size_t)snprintf(want + n, sizeof(want) - n, "%02x", i);
		n += (size_t)snprintf(want + n, sizeof(want) - n,
				      "\npreshared_key=%064d\nprotocol_version=1\n"
				      "last_handshake_time_sec=0\nlast_handshake_time_nsec=0\n"
				      "tx_bytes=0\nrx_bytes=0\npersistent_keepalive_interval=0\n", 0);
	}
	snprintf(want + n, sizeof(want) - n, "errno=0\n\n");
	client_expect(&c, want);
	ck_assert_uint_eq(fake.streamed, 3);
	ck_assert_int_eq(fake.gets, 1);

	/* The connection goes on after a streamed answer. */
	fake.stream_peers = 0;
	client_sends(&c, "get=1\n\n");
	client_expect(&c, "listen_port=51820\nerrno=0\n\n");

	/* A part after the first fails: part of the answer went out, so the server hangs up. */
	fake.stream_peers = 5;
	fake.streamed = 0;
	fake.stream_fail_at = 2;
	client_sends(&c, "get=1\n\n");
	PUMP_UNTIL((client_fill(&c, 65536), c.eof));
	ck_assert_ptr_null(memmem(c.buf, c.len, "\n\n", 2));
	ck_assert_int_eq(fake.aborts, 0);
	client_close(&c);
}
END_TEST

/* A client that leaves during a streamed get: the handler's cursor is handed back. */
START_TEST(test_get_streamed_abort)
{
	struct client c;

	fake.stream_peers = 1000000;
	open_server();
	client_open(&c);
	client_sends(&c, "get=1\n\n");
	PUMP_UNTIL(fake.streamed > 20); /* parts went out; a million do not fit a socket buffer */
	client_close(&c);
	PUMP_UNTIL(fake.aborts == 1);
	ck_assert_uint_lt(fake.streamed, 1000000);
	PUMP_UNTIL(stats().open_conns == 0);
}
END_TEST

START_TEST(test_set_wg_bytes)
{
	struct client c;
	uint8_t ip[4] = { 10, 0, 0, 2 };

	open_server();
	client_open(&c);
	client_sends(&c, wg_set);
	client_expect(&c, "errno=0\n\n");
	ck_assert_int_eq(fake.sets, 1);
	ck_assert_uint_eq(fake.dev_flags, WGT_UAPI_DEV_HAS_PRIVATE_KEY | WGT_UAPI_DEV_HAS_LISTEN_PORT |
			  WGT_UAPI_DEV_REPLACE_PEERS);
	assert_key(fake.private_key, PRIV);
	ck_assert_uint_eq(fake.listen_port, 51820);
	ck_assert_uint_eq(fake.n_peers, 1);
	ck_assert_uint_eq(fake.peer_flags, 0);
	assert_key(fake.public_key, PUB1);
	ck_assert_uint_eq(fake.n_allowed_ips, 1);
	ck_assert_int_eq(fake.allowed_ip.family, AF_INET);
	ck_assert_mem_eq(fake.allowed_ip.addr, ip, 4);
	ck_assert_uint_eq(fake.allowed_ip.cidr, 32);
	ck_assert_uint_eq(stats().sets_ok, 1);
	ck_assert_uint_eq(stats().accepted, 1);
	client_close(&c);
}
END_TEST

START_TEST(test_set_malformed)
{
	struct client c;
	struct wgt_uapi_server_stats st;

	open_server();
	client_open(&c);
	/* A bad value, then lines after it: the rest of the set is dropped, the connection goes on. */
	client_sends(&c, "set=1\nlisten_port=99999\nprivate_key=" PRIV "\n\n");
	client_expect(&c, "errno=-22\n\n");
	client_sends(&c, "set=1\nno equals sign\r\nlisten_port=1\n\r\n");
	client_expect(&c, "errno=-71\n\n");
	ck_assert_int_eq(fake.sets, 0);

	/* The daemon's own failure is passed on. */
	fake.set_ret = -EADDRINUSE;
	client_sends(&c, "set=1\nlisten_port=1\n\n");
	client_expect(&c, "errno=-98\n\n");
	ck_assert_int_eq(fake.sets, 1);

	client_sends(&c, "get=1\n\n");
	client_expect(&c, "listen_port=1\nerrno=0\n\n");
	st = stats();
	ck_assert_uint_eq(st.sets_failed, 3);
	ck_assert_uint_eq(st.sets_ok, 0);
	ck_assert_uint_eq(st.errors[WGT_UAPI_ERR_INVALID_VALUE], 1);
	ck_assert_uint_eq(st.errors[WGT_UAPI_ERR_SYNTAX], 1);
	ck_assert_uint_eq(st.cut_oversize, 0);
	client_close(&c);
}
END_TEST

/* A set line over the parser's cap: -EMSGSIZE, then closed (the line may never end). */
START_TEST(test_line_too_long)
{
	size_t n = WGT_UAPI_MAX_LINE + 100;
	char *big = malloc(n + 32);
	struct client c;

	ck_assert_ptr_nonnull(big);
	memcpy(big, "set=1\nendpoint=", 15);
	memset(big + 15, '1', n);
	memcpy(big + 15 + n, "\n\n", 3);
	open_server();
	client_open(&c);
	client_sends(&c, big);
	free(big);
	client_expect(&c, "errno=-90\n\n");
	client_expect_eof(&c);
	client_close(&c);
	ck_assert_int_eq(fake.sets, 0);
	ck_assert_uint_eq(stats().errors[WGT_UAPI_ERR_LINE_TOO_LONG], 1);
	ck_assert_uint_eq(stats().cut_oversize, 1);
	ck_assert_uint_eq(stats().open_conns, 0);
}
END_TEST

/*
 * An endless set of valid lines: -E2BIG once it passes the set cap, then the
 * connection closes, while the client is still writing.
 */
START_TEST(test_set_too_big)
{
	enum { LINE = 4000, N_LINES = 256, CHUNK = LINE * N_LINES };
	char *chunk = malloc(CHUNK);
	size_t i, off = 0, sent = 0;
	struct client c;

	ck_assert_ptr_nonnull(chunk);
	/* "fwmark=000...0\n": each line valid, and cheap to parse. */
	for (i = 0; i < CHUNK; i += LINE) {
		memcpy(chunk + i, "fwmark=", 7);
		memset(chunk + i + 7, '0', LINE - 8);
		chunk[i + LINE - 1] = '\n';
	}
	open_server();
	client_open(&c);
	client_sends(&c, "set=1\n");
	while (!c.eof) {
		ssize_t w = send(c.fd, chunk + off, CHUNK - off, MSG_NOSIGNAL);
		int err = w == -1 ? errno : 0;

		if (w > 0) {
			off = (off + (size_t)w) % CHUNK;
			sent += (size_t)w;
		}
		ck_assert_msg(!err || err == EAGAIN || err == EPIPE || err == ECONNRESET,
			      "send: %s", strerror(err));
		ck_assert_uint_lt(sent, 2 * (size_t)WGT_UAPI_MAX_SET_BYTES);
		ev_run(loop, EVRUN_NOWAIT);
		client_fill(&c, 65536);
		if (err && err != EAGAIN)
			PUMP_UNTIL((client_fill(&c, 65536), c.eof));
	}
	free(chunk);
	ck_assert_uint_gt(sent, WGT_UAPI_MAX_SET_BYTES);
	ck_assert_str_eq(c.buf ? c.buf : "", "errno=-7\n\n");
	client_close(&c);
	ck_assert_int_eq(fake.sets, 0);
	ck_assert_uint_eq(stats().errors[WGT_UAPI_ERR_SET_TOO_BIG], 1);
	ck_assert_uint_eq(stats().cut_oversize, 1);
	ck_assert_uint_eq(stats().open_conns, 0);
}
END_TEST

START_TEST(test_two_requests)
{
	struct client c;

	open_server();
	client_open(&c);
	client_sends(&c, "set=1\nlisten_port=4242\n\nget=1\n\n");
	client_expect(&c, "errno=0\n\n");
	client_expect(&c, "listen_port=4242\nerrno=0\n\n");
	client_sends(&c, wg_set);
	client_expect(&c, "errno=0\n\n");
	ck_assert_int_eq(fake.sets, 2);
	ck_assert_int_eq(fake.gets, 1);
	ck_assert_uint_eq(stats().accepted, 1);
	client_close(&c);
}
END_TEST

START_TEST(test_set_cut_by_eof)
{
	struct client c;

	open_server();
	client_open(&c);
	/* As wireguard-go, the last line counts even without its '\n'. */
	client_sends(&c, "set=1\nfwmark=7\nlisten_port=51820");
	ck_assert_int_eq(shutdown(c.fd, SHUT_WR), 0);
	client_expect(&c, "errno=0\n\n");
	client_expect_eof(&c);
	ck_assert_int_eq(fake.sets, 1);
	ck_assert_uint_eq(fake.listen_port, 51820);
	client_close(&c);

	client_open(&c);
	client_sends(&c, "set=1\nlisten_port=1\n");
	ck_assert_int_eq(shutdown(c.fd, SHUT_WR), 0);
	client_expect(&c, "errno=0\n\n");
	client_expect_eof(&c);
	ck_assert_uint_eq(fake.listen_port, 1);
	client_close(&c);

	/* A bad last line is still an error. */
	client_open(&c);
	client_sends(&c, "set=1\nlisten_port=x");
	ck_assert_int_eq(shutdown(c.fd, SHUT_WR), 0);
	client_expect(&c, "errno=-22\n\n");
	client_expect_eof(&c);
	ck_assert_int_eq(fake.sets, 2);
	client_close(&c);
}
END_TEST

START_TEST(test_dribble)
{
	static const char req[] = "get=1\n\n";
	struct client c;
	size_t i;

	open_server();
	client_open(&c);
	for (i = 0; i < sizeof(wg_set) - 1; i++) {
		client_send(&c, wg_set + i, 1);
		ev_run(loop, EVRUN_NOWAIT);
		ev_run(loop, EVRUN_NOWAIT);
	}
	client_expect(&c, "errno=0\n\n");
	ck_assert_int_eq(fake.sets, 1);
	assert_key(fake.public_key, PUB1);
	for (i = 0; i < sizeof(req) - 1; i++) {
		client_send(&c, req + i, 1);
		ev_run(loop, EVRUN_NOWAIT);
	}
	client_expect(&c, "listen_port=51820\nerrno=0\n\n");
	client_close(&c);
}
END_TEST

START_TEST(test_connection_cap)
{
	struct client c[WGT_UAPI_SOCK_MAX_CONNS + 1];
	size_t i;

	open_server();
	for (i = 0; i < WGT_UAPI_SOCK_MAX_CONNS; i++)
		client_open(&c[i]);
	PUMP_UNTIL(stats().accepted == WGT_UAPI_SOCK_MAX_CONNS);
	ck_assert_uint_eq(stats().open_conns, WGT_UAPI_SOCK_MAX_CONNS);

	client_open(&c[WGT_UAPI_SOCK_MAX_CONNS]);
	PUMP_UNTIL(stats().refused_cap == 1);
	client_expect_eof(&c[WGT_UAPI_SOCK_MAX_CONNS]);
	client_close(&c[WGT_UAPI_SOCK_MAX_CONNS]);

	/* Those inside still work; one leaving makes room again. */
	client_sends(&c[7], "get=1\n\n");
	client_expect(&c[7], "errno=0\n\n");
	client_close(&c[0]);
	PUMP_UNTIL(stats().open_conns == WGT_UAPI_SOCK_MAX_CONNS - 1);
	client_open(&c[0]);
	client_sends(&c[0], "get=1\n\n");
	client_expect(&c[0], "errno=0\n\n");
	ck_assert_uint_eq(stats().accepted, WGT_UAPI_SOCK_MAX_CONNS + 1);
	ck_assert_uint_eq(stats().refused_cap, 1);
	for (i = 0; i < WGT_UAPI_SOCK_MAX_CONNS; i++)
		client_close(&c[i]);
}
END_TEST

START_TEST(test_bad_ops)
{
	struct client c;
	char *big;

	open_server();

	/* wireguard-go hangs up on an unknown operation without a reply. */
	client_open(&c);
	client_sends(&c, "private_key=" PRIV "\n");
	client_expect_eof(&c);
	client_close(&c);
	ck_assert_uint_eq(stats().bad_ops, 1);

	/* An op line over the cap, before its '\n' arrives: -EMSGSIZE, and closed. */
	big = malloc(WGT_UAPI_SOCK_MAX_OP_LINE + 2);
	ck_assert_ptr_nonnull(big);
	memset(big, 's', WGT_UAPI_SOCK_MAX_OP_LINE + 1);
	client_open(&c);
	client_send(&c, big, WGT_UAPI_SOCK_MAX_OP_LINE + 1);
	free(big);
	client_expect(&c, "errno=-90\n\n");
	client_expect_eof(&c);
	client_close(&c);
	ck_assert_uint_eq(stats().op_too_long, 1);

	/* get=1 and a byte that is not '\n': -EINVAL, the byte is gone, the connection goes on. */
	client_open(&c);
	client_sends(&c, "get=1\nxget=1\n\n");
	client_expect(&c, "errno=-22\n\n");
	client_expect(&c, "errno=0\n\n");
	ck_assert_uint_eq(stats().bad_ops, 2);
	ck_assert_int_eq(fake.gets, 1);

	/* get=1 then EOF: no reply, as wireguard-go. */
	client_sends(&c, "get=1\n");
	ck_assert_int_eq(shutdown(c.fd, SHUT_WR), 0);
	client_expect_eof(&c);
	client_close(&c);
	ck_assert_int_eq(fake.gets, 1);
	ck_assert_uint_eq(stats().open_conns, 0);
}
END_TEST

/* fwmark=0...0 lines, n bytes in all (a multiple of 100): valid, and never ending the set. */
static char *fwmark_lines(size_t n)
{
	char *d = malloc(n + 1);
	size_t i;

	ck_assert_ptr_nonnull(d);
	ck_assert_uint_eq(n % 100, 0);
	for (i = 0; i < n; i += 100) {
		memcpy(d + i, "fwmark=", 7);
		memset(d + i + 7, '0', 92);
		d[i + 99] = '\n';
	}
	d[n] = '\0';
	return d;
}

/* Unfinished sets share one budget: the set that would pass it is refused, the others go on. */
START_TEST(test_set_budget)
{
	char *body = fwmark_lines(40000);
	struct client a, b, c;

	open_server();
	wgt_uapi_server_set_budget(srv, 65536);
	client_open(&a);
	client_open(&b);
	client_sends(&a, "set=1\n");
	client_sends(&a, body);
	PUMP_UNTIL(stats().set_bytes == 40000);
	client_sends(&b, "set=1\n");
	client_sends(&b, body);
	client_expect(&b, "errno=-105\n\n");
	client_expect_eof(&b);
	ck_assert_uint_eq(stats().cut_budget, 1);
	ck_assert_uint_eq(stats().set_bytes, 40000);
	/* A, under the budget all along, completes. */
	client_sends(&a, "\n");
	client_expect(&a, "errno=0\n\n");
	ck_assert_int_eq(fake.sets, 1);
	ck_assert_uint_eq(stats().set_bytes, 0);
	/* And the budget is free again. */
	client_open(&c);
	client_sends(&c, "set=1\n");
	client_sends(&c, body);
	client_sends(&c, "\n");
	client_expect(&c, "errno=0\n\n");
	ck_assert_int_eq(fake.sets, 2);
	/* A connection closed in the middle of a set gives its bytes back. */
	client_sends(&c, "set=1\n");
	client_sends(&c, body);
	PUMP_UNTIL(stats().set_bytes == 40000);
	client_close(&c);
	PUMP_UNTIL(stats().open_conns == 1);
	ck_assert_uint_eq(stats().set_bytes, 0);
	ck_assert_uint_eq(stats().cut_budget, 1);
	client_close(&a);
	client_close(&b);
	free(body);
}
END_TEST

/* Pumps the loop for about `secs` seconds. */
static void pump_for(double secs)
{
	double end = now() + secs;

	while (now() < end) {
		ev_run(loop, EVRUN_NOWAIT);
		usleep(1000);
	}
}

/* Pumps until the client sees EOF; returns the seconds it took. */
static double time_to_eof(struct client *c)
{
	double t0 = now();

	PUMP_UNTIL((client_fill(c, 65536), c->eof));
	return now() - t0;
}

/* A client that says nothing, or stops in the middle of a request, is cut at the idle deadline. */
START_TEST(test_idle_cut)
{
	struct client a, b;
	double t;

	open_server();
	wgt_uapi_server_set_timeouts(srv, 0.3, 5.0);
	client_open(&a);
	client_open(&b);
	client_sends(&b, "set=1\nlisten_port=");
	t = time_to_eof(&a);
	ck_assert_msg(t >= 0.25, "cut after %.3f s, before the idle deadline", t);
	PUMP_UNTIL((client_fill(&b, 65536), b.eof));
	ck_assert_uint_eq(a.len + b.len, 0);
	ck_assert_uint_eq(stats().cut_idle, 2);
	ck_assert_uint_eq(stats().cut_request, 0);
	ck_assert_uint_eq(stats().open_conns, 0);
	ck_assert_int_eq(fake.sets, 0);
	client_close(&a);
	client_close(&b);
}
END_TEST

/* One byte every 0.1 s never trips the idle deadline, but the request deadline cuts it. */
START_TEST(test_drip_cut)
{
	static const char line[] = "fwmark=1\n";
	struct client c;
	double t0, t;
	size_t i = 0;

	open_server();
	wgt_uapi_server_set_timeouts(srv, 0.5, 1.0);
	client_open(&c);
	client_sends(&c, "set=1\n");
	t0 = now();
	while (!c.eof) {
		if (send(c.fd, &line[i++ % (sizeof(line) - 1)], 1, MSG_NOSIGNAL) == -1)
			ck_assert_msg(errno == EPIPE || errno == ECONNRESET, "send: %s", strerror(errno));
		pump_for(0.1);
		client_fill(&c, 65536);
		ck_assert_msg(now() - t0 < 20, "never cut");
	}
	t = now() - t0;
	ck_assert_msg(t >= 0.95, "cut after %.3f s, before the request deadline", t);
	ck_assert_uint_eq(c.len, 0);
	ck_assert_uint_eq(stats().cut_request, 1);
	ck_assert_uint_eq(stats().cut_idle, 0);
	ck_assert_int_eq(fake.sets, 0);
	client_close(&c);
}
END_TEST

/*
 * The deadlines are the client's: the time the daemon spends applying a set
 * does not count, and each request starts a new one, so a connection may
 * outlive both with requests spaced under the idle deadline.
 */
START_TEST(test_deadlines_fair)
{
	struct client c;
	double t0;
	int i;

	open_server();
	wgt_uapi_server_set_timeouts(srv, 0.5, 0.8);
	fake.set_delay_ms = 1200;
	client_open(&c);
	client_sends(&c, "set=1\nlisten_port=7\n\n");
	client_expect(&c, "errno=0\n\n");
	ck_assert_int_eq(fake.sets, 1);
	t0 = now();
	for (i = 0; i < 5; i++) {
		pump_for(0.25);
		client_sends(&c, "get=1\n\n");
		client_expect(&c, "listen_port=7\nerrno=0\n\n");
	}
	ck_assert_double_ge(now() - t0, 1.2);
	ck_assert_uint_eq(stats().cut_idle + stats().cut_request, 0);
	ck_assert_uint_eq(stats().open_conns, 1);
	client_close(&c);
}
END_TEST

/* 1,000 connections at once: 64 served, the rest closed at once; the 64 go at the idle deadline. */
START_TEST(test_thousand_conns)
{
	enum { N = 1000 };
	struct client *c = calloc(N, sizeof(*c));
	struct rlimit rl;
	size_t i, closed;

	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_cur < 2 * N) {
		rl.rlim_cur = rl.rlim_max < 4 * N ? rl.rlim_max : 4 * N;
		ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
	}
	ck_assert_uint_ge(rl.rlim_cur, N + WGT_UAPI_SOCK_MAX_CONNS + 16);
	open_server();
	wgt_uapi_server_set_timeouts(srv, 1.0, 5.0);
	for (i = 0; i < N; i++)
		client_open(&c[i]);
	PUMP_UNTIL(stats().accepted + stats().refused_cap == N);
	ck_assert_uint_eq(stats().accepted, WGT_UAPI_SOCK_MAX_CONNS);
	ck_assert_uint_eq(stats().refused_cap, N - WGT_UAPI_SOCK_MAX_CONNS);
	ck_assert_uint_eq(stats().open_conns, WGT_UAPI_SOCK_MAX_CONNS);
	for (i = 0, closed = 0; i < N; i++)
		closed += (client_fill(&c[i], 16), c[i].eof);
	ck_assert_uint_ge(closed, N - WGT_UAPI_SOCK_MAX_CONNS);
	PUMP_UNTIL(stats().open_conns == 0);
	ck_assert_uint_eq(stats().cut_idle, WGT_UAPI_SOCK_MAX_CONNS);
	for (i = 0; i < N; i++) {
		PUMP_UNTIL((client_fill(&c[i], 16), c[i].eof));
		ck_assert_uint_eq(c[i].len, 0);
		client_close(&c[i]);
	}
	free(c);
	/* And the server serves again. */
	{
		struct client d;

		client_open(&d);
		client_sends(&d, "get=1\n\n");
		client_expect(&d, "errno=0\n\n");
		client_close(&d);
	}
}
END_TEST

/*
 * Child process: as uid, connects, asks get=1 and reads to EOF. Exits 0 when
 * what it read equals want, 1 when not, 2 on an error; never returns.
 */
static _Noreturn void child_get(uid_t uid, const char *want)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char buf[256];
	size_t len = 0;
	int fd;

	alarm(20);
	/* The parent may run with euid nobody: its saved uid 0 gives root back. */
	if ((geteuid() && seteuid(0) == -1) || setgroups(0, NULL) == -1 ||
	    setresgid(uid, uid, uid) == -1 || setresuid(uid, uid, uid) == -1)
		_exit(2);
	memcpy(sa.sun_path, sockpath, strlen(sockpath) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1)
		_exit(2);
	if (send(fd, "get=1\n\n", 7, MSG_NOSIGNAL) != 7 && errno != EPIPE)
		_exit(2);
	for (;;) {
		ssize_t n = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);

		if (n == -1 && errno == ECONNRESET)
			break;
		if (n == -1)
			_exit(2);
		if (n == 0)
			break;
		len += (size_t)n;
		if (len == sizeof(buf) - 1 || memmem(buf, len, "\n\n", 2))
			break;
	}
	buf[len] = '\0';
	_exit(strcmp(buf, want) ? 1 : 0);
}

/* Runs child_get() in a child while the loop serves; returns its exit status. */
static int run_child_get(uid_t uid, const char *want)
{
	pid_t pid = fork();
	int status = 0;

	ck_assert_int_ne(pid, -1);
	if (pid == 0)
		child_get(uid, want);
	PUMP_UNTIL(waitpid(pid, &status, WNOHANG) == pid);
	ck_assert(WIFEXITED(status));
	return WEXITSTATUS(status);
}

#define NOBODY  65534
#define STRANGER 65533

/*
 * SO_PEERCRED: root and the daemon's own euid are served, anyone else is
 * closed at once, even with the socket file opened up to everyone.
 */
START_TEST(test_peer_cred)
{
	if (geteuid() != 0) {
		fprintf(stderr, "test_peer_cred: SKIP: needs root to run clients as other users\n");
		return;
	}
	open_server();
	ck_assert_int_eq(chmod(tmpdir, 0755), 0);
	ck_assert_int_eq(chmod(sockpath, 0666), 0);

	ck_assert_int_eq(run_child_get(NOBODY, ""), 0);
	ck_assert_uint_eq(stats().refused_cred, 1);
	ck_assert_uint_eq(stats().accepted, 0);
	ck_assert_int_eq(run_child_get(0, "errno=0\n\n"), 0);
	ck_assert_uint_eq(stats().accepted, 1);

	/* A daemon that dropped privileges to a user: that user, and root, get in. */
	ck_assert_int_eq(seteuid(NOBODY), 0);
	ck_assert_int_eq(run_child_get(NOBODY, "errno=0\n\n"), 0);
	ck_assert_int_eq(run_child_get(0, "errno=0\n\n"), 0);
	ck_assert_int_eq(run_child_get(STRANGER, ""), 0);
	ck_assert_int_eq(seteuid(0), 0);
	ck_assert_uint_eq(stats().accepted, 3);
	ck_assert_uint_eq(stats().refused_cred, 2);
	ck_assert_int_eq(fake.gets, 3);
}
END_TEST

START_TEST(test_removed)
{
	open_server();
	ev_run(loop, EVRUN_NOWAIT);
	ck_assert_int_eq(fake.removed, 0);
	ck_assert_int_eq(unlink(sockpath), 0);
	PUMP_UNTIL(fake.removed == 1);
}
END_TEST

START_TEST(test_replaced)
{
	struct sockaddr_un sa;
	char tmp[220];
	struct stat st;
	int fd;

	open_server();
	/* Someone else's socket renamed over ours: never one instant without a file. */
	snprintf(tmp, sizeof(tmp), "%s/other.sock", sockdir);
	unix_addr(&sa, tmp);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(rename(tmp, sockpath), 0);
	PUMP_UNTIL(fake.removed == 1);

	/* Closing leaves the other file alone. */
	wgt_uapi_server_close(srv);
	srv = NULL;
	ck_assert_int_eq(lstat(sockpath, &st), 0);
	close(fd);
}
END_TEST

/* A get answer of about 5 MB, like a few ten thousand peers, read 1 KiB at a time. */
START_TEST(test_large_get)
{
	enum { N_PEERS = 17000 };
	struct wgt_uapi_get_peer *peers = calloc(N_PEERS, sizeof(*peers));
	struct wgt_uapi_allowedip *ips = calloc(N_PEERS, sizeof(*ips));
	struct wgt_uapi_get_device dev = { .listen_port = 1, .peers = peers, .n_peers = N_PEERS };
	struct wgt_uapi_buf answer = { 0 };
	struct client c;
	int rcvbuf = 4096;
	size_t i;

	ck_assert_ptr_nonnull(peers);
	ck_assert_ptr_nonnull(ips);
	for (i = 0; i < N_PEERS; i++) {
		memset(peers[i].public_key, 0x11, 32);
		memcpy(peers[i].public_key, &i, sizeof(i));
		peers[i].tx_bytes = i * 1000003;
		peers[i].rx_bytes = i * 7;
		ips[i].family = AF_INET6;
		memcpy(ips[i].addr, &i, sizeof(i));
		ips[i].cidr = 128;
		peers[i].allowed_ips = &ips[i];
		peers[i].n_allowed_ips = 1;
	}
	ck_assert_int_eq(wgt_uapi_format_get(&answer, &dev), 0);
	ck_assert_uint_gt(answer.len, 5000000);
	fake.answer = &answer;

	open_server();
	client_open(&c);
	ck_assert_int_eq(setsockopt(c.fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)), 0);
	client_sends(&c, "get=1\n\n");
	PUMP_UNTIL((client_fill(&c, 1024), c.len >= answer.len || c.eof));
	ck_assert_uint_eq(c.len, answer.len);
	ck_assert_mem_eq(c.buf, answer.data, answer.len);

	/* And the connection is ready for more. */
	fake.answer = NULL;
	client_sends(&c, "get=1\n\n");
	c.len = 0;
	client_expect(&c, "errno=0\n\n");
	client_close(&c);
	wgt_uapi_buf_free(&answer);
	free(ips);
	free(peers);
}
END_TEST

/* Closing with a reply half written and a set half read frees everything (ASan checks). */
START_TEST(test_close_busy)
{
	struct wgt_uapi_buf answer = { 0 };
	struct client a, b;
	size_t i;

	for (i = 0; i < 200000; i++)
		ck_assert_int_eq(wgt_uapi_format_errno(&answer, 1), 0);
	/* One blank line, at the very end. */
	for (i = 0; i + 1 < answer.len; i++)
		if (answer.data[i] == '\n' && answer.data[i + 1] == '\n')
			answer.data[i] = ' ';
	fake.answer = &answer;
	open_server();
	client_open(&a);
	client_open(&b);
	client_sends(&a, "get=1\n\n");
	client_sends(&b, "set=1\nprivate_key=" PRIV "\n");
	PUMP_UNTIL(stats().accepted == 2 && fake.gets == 1);
	for (i = 0; i < 10; i++)
		ev_run(loop, EVRUN_NOWAIT);
	wgt_uapi_server_close(srv);
	srv = NULL;
	client_expect_eof(&b);
	client_close(&a);
	client_close(&b);
	wgt_uapi_buf_free(&answer);
}
END_TEST

static Suite *uapi_sock_suite(void)
{
	Suite *s = suite_create("uapi_sock");
	TCase *file = tcase_create("file");
	TCase *proto = tcase_create("protocol");
	TCase *caps = tcase_create("caps");
	TCase *deadlines = tcase_create("deadlines");

	tcase_add_checked_fixture(file, setup, teardown);
	tcase_add_test(file, test_modes);
	tcase_add_test(file, test_bad_args);
	tcase_add_test(file, test_stale_replaced);
	tcase_add_test(file, test_not_a_socket);
	tcase_add_test(file, test_live_in_use);
	tcase_add_test(file, test_removed);
	tcase_add_test(file, test_replaced);
	suite_add_tcase(s, file);

	tcase_add_checked_fixture(proto, setup, teardown);
	tcase_add_test(proto, test_get);
	tcase_add_test(proto, test_get_streamed);
	tcase_add_test(proto, test_get_streamed_abort);
	tcase_add_test(proto, test_set_wg_bytes);
	tcase_add_test(proto, test_set_malformed);
	tcase_add_test(proto, test_line_too_long);
	tcase_add_test(proto, test_two_requests);
	tcase_add_test(proto, test_set_cut_by_eof);
	tcase_add_test(proto, test_dribble);
	tcase_add_test(proto, test_bad_ops);
	suite_add_tcase(s, proto);

	tcase_add_checked_fixture(caps, setup, teardown);
	tcase_add_test(caps, test_connection_cap);
	tcase_add_test(caps, test_large_get);
	tcase_add_test(caps, test_close_busy);
	tcase_add_test(caps, test_set_too_big);
	tcase_add_test(caps, test_set_budget);
	tcase_add_test(caps, test_thousand_conns);
	tcase_add_test(caps, test_peer_cred);
	suite_add_tcase(s, caps);

	tcase_add_checked_fixture(deadlines, setup, teardown);
	tcase_add_test(deadlines, test_idle_cut);
	tcase_add_test(deadlines, test_drip_cut);
	tcase_add_test(deadlines, test_deadlines_fair);
	suite_add_tcase(s, deadlines);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(uapi_sock_suite());
	int failed;

	/* A test client writing to a connection the server closed must see EPIPE, not die. */
	signal(SIGPIPE, SIG_IGN);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
