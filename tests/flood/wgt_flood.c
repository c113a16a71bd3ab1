/* SPDX-License-Identifier: MIT */
/* wgt-flood: floods a WireGuard gateway's port with hostile datagrams of selectable kinds. */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "common/clock.h"
#include "common/compiler.h"
#include "common/endpoint.h"
#include "common/random.h"
#include "crypto/aead.h"
#include "crypto/blake2s.h"
#include "crypto/x25519.h"
#include "perf/simpeer.h"
#include "perf/tool_util.h"

/*
 * Design note
 *
 * Kinds, each sent --count times (or for --seconds) in turn:
 *   random        random bytes, 0..1500 of them (mostly type "invalid")
 *   short         0..15 bytes: shorter than any message
 *   bad-mac1      initiations (148 bytes, type 1) with random content and mac1
 *   unknown-index data messages (type 4) under receiver indices nobody gave out
 *   replay-data   the data messages of a real session, captured and sent again
 *   replay-init   that session's initiation, sent again (valid mac1, stale TAI64N)
 *   valid-mac1    initiations from static keys the gateway does not know, with a
 *                 correct mac1 for its public key: it must do Diffie-Hellman to
 *                 reject them, or answer with a cookie reply under load
 *
 * valid-mac1 costs us one MAC per datagram and the gateway one X25519: a pool
 * of real initiations from random unknown keys is made once, and each datagram
 * is one of them with a fresh sender index (not part of the Noise transcript)
 * and mac1 computed again. The replay kinds first complete a real handshake as
 * a configured peer (--peer-private-key) from the sockets' own address, send
 * CAPTURE data messages under it, and keep copies of those and the initiation.
 * --save-init writes that initiation to a file; --load-init replays one from a
 * file instead (replay-init only, no handshake): an old initiation sent again
 * later, after the gateway's session with the peer ended and began again.
 *
 * With --source-net every datagram leaves from the next address of the range
 * (IP_PKTINFO; the range is made local with `ip route add local CIDR dev lo`),
 * and from socket i % --sockets, so the gateway's reuseport hash spreads the
 * flood over its workers. Replies (cookie replies under load) are read and
 * counted after every batch. IPv4 only.
 */

#define BATCH 64
#define POOL 64                  /* valid-mac1: real initiations to vary */
#define CAPTURE 64               /* replay-data: data messages captured */
#define MAX_SOCKETS 64
#define MAX_DGRAM 1500

enum kind { K_RANDOM, K_SHORT, K_BAD_MAC1, K_UNKNOWN_INDEX, K_REPLAY_DATA, K_REPLAY_INIT,
	    K_VALID_MAC1, K_COUNT };
static const char *const kind_names[K_COUNT] = {
	"random", "short", "bad-mac1", "unknown-index", "replay-data", "replay-init", "valid-mac1",
};

struct opts {
	struct sockaddr_in server;
	uint8_t server_public[WGT_KEY_LEN];
	bool have_public;
	uint8_t peer_private[WGT_KEY_LEN];
	bool have_peer;
	unsigned kinds;              /* bit set of enum kind, run in enum order */
	uint64_t count;
	uint64_t rate;
	uint64_t seconds;
	struct in_addr src_base;     /* the first source address */
	uint32_t n_src;              /* 0: the sockets' own address */
	unsigned sockets;
	size_t size;
	const char *save_init;       /* --save-init: the captured initiation goes there */
	const char *load_init;       /* --load-init: replay-init sends this one, no capture */
};

struct flood {
	struct opts o;
	int fds[MAX_SOCKETS];
	uint64_t rng;
	uint8_t mac1_key[WGT_KEY_LEN];
	struct wgt_msg_initiation pool[POOL];
	struct wgt_msg_initiation captured_init;
	uint8_t captured[CAPTURE][MAX_DGRAM];
	size_t captured_len[CAPTURE];
	uint8_t bufs[BATCH][MAX_DGRAM];
	uint64_t rx[5];              /* replies by type; [0]: anything else */
	uint64_t send_errors;
};

static uint64_t rnd(struct flood *f)
{
	/* xorshift64*: fast junk, not secrets. */
	f->rng ^= f->rng >> 12;
	f->rng ^= f->rng << 25;
	f->rng ^= f->rng >> 27;
	return f->rng * 0x2545F4914F6CDD1DULL;
}

static void rnd_fill(struct flood *f, uint8_t *p, size_t n)
{
	while (n) {
		uint64_t v = rnd(f);
		size_t k = WGT_MIN(n, sizeof(v));

		memcpy(p, &v, k);
		p += k;
		n -= k;
	}
}

static void usage(FILE *out)
{
	fputs("usage: wgt-flood --server A.B.C.D:PORT --kind K[,K...] [options]\n"
	      "Floods a WireGuard gateway with hostile datagrams, kind after kind.\n"
	      "  --kind K[,K...]          random, short, bad-mac1, unknown-index, replay-data,\n"
	      "                           replay-init, valid-mac1, or all\n"
	      "  --count N                datagrams per kind (100000)\n"
	      "  --rate PPS               per kind, 0 = as fast as possible (0)\n"
	      "  --seconds S              stop a kind after S seconds, 0 = no limit (0)\n"
	      "  --server-public-key KEY  the gateway's public key (valid-mac1, replay-*)\n"
	      "  --peer-private-key FILE  a peer the gateway knows, for the capture (replay-*)\n"
	      "  --source-net CIDR        send from its host addresses in turn (local through\n"
	      "                           `ip route add local CIDR dev lo`); default: own address\n"
	      "  --sockets K              UDP sockets (source ports), 1..64 (8)\n"
	      "  --size BYTES             replay-data payload, 0..1400 (1024)\n"
	      "  --save-init FILE         write the captured initiation (148 bytes) to FILE\n"
	      "  --load-init FILE         replay-init: send FILE's initiation, no capture\n"
	      "Prints one line per kind (stdout):\n"
	      "  flood: KIND sent N in T s (R/s), send errors E, replies: cookie C, response S, data D, other O\n"
	      "Exit: 0 sent, 1 error (the capture's handshake failed, no socket), 2 usage.\n",
	      out);
}

static int read_key_file(uint8_t key[WGT_KEY_LEN], const char *path)
{
	char line[128] = { 0 };
	FILE *fp = fopen(path, "r");
	int ret;

	if (!fp)
		return -errno;
	if (!fgets(line, sizeof(line), fp))
		line[0] = '\0';
	fclose(fp);
	line[strcspn(line, "\r\n")] = '\0';
	ret = wgt_tool_parse_key(key, line);
	OPENSSL_cleanse(line, sizeof(line));
	return ret;
}

static int parse_server(struct sockaddr_in *sa, const char *s)
{
	char host[INET_ADDRSTRLEN];
	const char *colon = strrchr(s, ':');
	uint64_t port;
	size_t n;

	if (!colon || wgt_tool_parse_u64(&port, colon + 1, 1, 65535) || (n = (size_t)(colon - s)) == 0 ||
	    n >= sizeof(host))
		return -EINVAL;
	memcpy(host, s, n);
	host[n] = '\0';
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)port);
	return inet_pton(AF_INET, host, &sa->sin_addr) == 1 ? 0 : -EINVAL;
}

static int parse_net(struct opts *o, const char *s)
{
	char host[INET_ADDRSTRLEN];
	const char *slash = strchr(s, '/');
	uint64_t len;
	size_t n;

	if (!slash || wgt_tool_parse_u64(&len, slash + 1, 8, 32) || (n = (size_t)(slash - s)) == 0 ||
	    n >= sizeof(host))
		return -EINVAL;
	memcpy(host, s, n);
	host[n] = '\0';
	if (inet_pton(AF_INET, host, &o->src_base) != 1)
		return -EINVAL;
	o->src_base.s_addr = htonl(ntohl(o->src_base.s_addr) & (uint32_t)~((1ULL << (32 - len)) - 1));
	/* Hosts only, but a /31 or /32 is all of it. */
	if (len < 31) {
		o->src_base.s_addr = htonl(ntohl(o->src_base.s_addr) + 1);
		o->n_src = (1U << (32 - len)) - 2;
	} else {
		o->n_src = 1U << (32 - len);
	}
	return 0;
}

static int parse_kinds(unsigned *ret, const char *s)
{
	char buf[256], *save = NULL, *tok;

	if (strlen(s) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, s);
	*ret = 0;
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		unsigned k;

		if (!strcmp(tok, "all")) {
			*ret = (1U << K_COUNT) - 1;
			continue;
		}
		for (k = 0; k < K_COUNT && strcmp(tok, kind_names[k]); k++)
			;
		if (k == K_COUNT)
			return -EINVAL;
		*ret |= 1U << k;
	}
	return *ret ? 0 : -EINVAL;
}

/* Returns 1 to run, 0 after --help, -1 after a usage error (one line said which). */
static int parse_options(struct opts *o, int argc, char **argv)
{
	static const struct option options[] = {
		{ "server", required_argument, NULL, 's' },
		{ "server-public-key", required_argument, NULL, 'k' },
		{ "peer-private-key", required_argument, NULL, 'p' },
		{ "kind", required_argument, NULL, 'K' },
		{ "count", required_argument, NULL, 'c' },
		{ "rate", required_argument, NULL, 'r' },
		{ "seconds", required_argument, NULL, 't' },
		{ "source-net", required_argument, NULL, 'n' },
		{ "sockets", required_argument, NULL, 'S' },
		{ "size", required_argument, NULL, 'z' },
		{ "save-init", required_argument, NULL, 'w' },
		{ "load-init", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	bool have_server = false;
	uint64_t v;
	int c, r;

	memset(o, 0, sizeof(*o));
	o->count = 100000;
	o->sockets = 8;
	o->size = 1024;
	while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
		const char *what = NULL;

		switch (c) {
		case 's':
			r = parse_server(&o->server, optarg);
			have_server = !r;
			what = "--server wants A.B.C.D:PORT";
			break;
		case 'k':
			r = wgt_tool_parse_key(o->server_public, optarg);
			o->have_public = !r;
			what = "--server-public-key wants a base64 key";
			break;
		case 'p':
			r = read_key_file(o->peer_private, optarg);
			o->have_peer = !r;
			what = "--peer-private-key wants a readable file with a base64 key";
			break;
		case 'K':
			r = parse_kinds(&o->kinds, optarg);
			what = "--kind: unknown kind (see --help)";
			break;
		case 'c':
			r = wgt_tool_parse_u64(&o->count, optarg, 1, UINT64_MAX / 2);
			what = "--count wants 1 or more";
			break;
		case 'r':
			r = wgt_tool_parse_u64(&o->rate, optarg, 0, 100000000);
			what = "--rate wants 0..100000000";
			break;
		case 't':
			r = wgt_tool_parse_u64(&o->seconds, optarg, 0, 86400);
			what = "--seconds wants 0..86400";
			break;
		case 'n':
			r = parse_net(o, optarg);
			what = "--source-net wants an IPv4 CIDR with a prefix of 8..32";
			break;
		case 'S':
			r = wgt_tool_parse_u64(&v, optarg, 1, MAX_SOCKETS);
			o->sockets = (unsigned)v;
			what = "--sockets wants 1..64";
			break;
		case 'z':
			r = wgt_tool_parse_u64(&v, optarg, 0, 1400);
			o->size = v;
			what = "--size wants 0..1400";
			break;
		case 'w':
			o->save_init = optarg;
			r = 0;
			break;
		case 'l':
			o->load_init = optarg;
			r = 0;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return -1;
		}
		if (r) {
			fprintf(stderr, "wgt-flood: %s\n", what);
			return -1;
		}
	}
	if (optind != argc || !have_server || !o->kinds) {
		fprintf(stderr, "wgt-flood: --server and --kind are required, and nothing else\n");
		return -1;
	}
	if ((o->kinds & (1U << K_VALID_MAC1 | 1U << K_REPLAY_DATA | 1U << K_REPLAY_INIT)) &&
	    !o->have_public) {
		fprintf(stderr, "wgt-flood: valid-mac1 and replay-* need --server-public-key\n");
		return -1;
	}
	if (o->load_init && (o->kinds != 1U << K_REPLAY_INIT || o->save_init)) {
		fprintf(stderr, "wgt-flood: --load-init goes with --kind replay-init alone\n");
		return -1;
	}
	if ((o->kinds & (1U << K_REPLAY_DATA | 1U << K_REPLAY_INIT)) && !o->have_peer &&
	    !o->load_init) {
		fprintf(stderr, "wgt-flood: replay-* need --peer-private-key\n");
		return -1;
	}
	return 1;
}

static int open_sockets(struct flood *f)
{
	int bufsz = 4 << 20;

	for (unsigned i = 0; i < f->o.sockets; i++) {
		struct sockaddr_in any = { .sin_family = AF_INET };
		int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_UDP);

		if (fd == -1)
			return -errno;
		f->fds[i] = fd;
		if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &bufsz, sizeof(bufsz)) == -1)
			setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bufsz, sizeof(bufsz));
		if (bind(fd, (struct sockaddr *)&any, sizeof(any)) == -1)
			return -errno;
	}
	return 0;
}

/* Reads and counts every reply waiting on our sockets (cookie replies under load). */
static void drain_replies(struct flood *f)
{
	for (unsigned i = 0; i < f->o.sockets; i++) {
		struct mmsghdr m[BATCH];
		struct iovec iov[BATCH];
		int n;

		do {
			memset(m, 0, sizeof(m));
			for (unsigned j = 0; j < BATCH; j++) {
				iov[j].iov_base = f->bufs[j];
				iov[j].iov_len = MAX_DGRAM;
				m[j].msg_hdr.msg_iov = &iov[j];
				m[j].msg_hdr.msg_iovlen = 1;
			}
			n = recvmmsg(f->fds[i], m, BATCH, MSG_DONTWAIT, NULL);
			for (int j = 0; j < n; j++) {
				enum wgt_message_type t = wgt_msg_classify(f->bufs[j], m[j].msg_len);

				f->rx[t >= 1 && t <= 4 ? t : 0]++;
			}
		} while (n == BATCH);
	}
}

/* One datagram of kind k, number i, into buf. Returns its length. */
static size_t build(struct flood *f, enum kind k, uint64_t i, uint8_t *buf)
{
	size_t len;

	switch (k) {
	case K_RANDOM:
		len = rnd(f) % (MAX_DGRAM + 1);
		rnd_fill(f, buf, len);
		return len;
	case K_SHORT:
		len = i % 16;
		rnd_fill(f, buf, len);
		/* Some look like the start of a real message. */
		if (len && (i & 1))
			buf[0] = (uint8_t)(1 + i % 4);
		return len;
	case K_BAD_MAC1:
		rnd_fill(f, buf, WGT_MSG_INITIATION_LEN);
		memset(buf, 0, 4);
		buf[0] = WGT_MSG_HANDSHAKE_INITIATION;
		return WGT_MSG_INITIATION_LEN;
	case K_UNKNOWN_INDEX:
		len = WGT_MSG_DATA_MIN_LEN + 16 * (rnd(f) % 64);
		rnd_fill(f, buf, len);
		memset(buf, 0, 4);
		buf[0] = WGT_MSG_DATA;
		return len;
	case K_REPLAY_DATA:
		len = f->captured_len[i % CAPTURE];
		memcpy(buf, f->captured[i % CAPTURE], len);
		return len;
	case K_REPLAY_INIT:
		memcpy(buf, &f->captured_init, sizeof(f->captured_init));
		return sizeof(f->captured_init);
	case K_VALID_MAC1: {
		struct wgt_msg_initiation *m = (void *)buf;
		uint32_t index = (uint32_t)rnd(f);

		*m = f->pool[i % POOL];
		m->sender_index = htole32(index);
		wgt_blake2s_keyed(m->macs.mac1, WGT_MAC_LEN, f->mac1_key, WGT_KEY_LEN, m,
				  offsetof(struct wgt_msg_initiation, macs));
		memset(m->macs.mac2, 0, WGT_MAC_LEN);
		return sizeof(*m);
	}
	default:
		return 0;
	}
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * WGT_NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

/* Sends kind k; prints its line. */
static void run_kind(struct flood *f, enum kind k)
{
	union {
		struct cmsghdr align;
		char b[CMSG_SPACE(sizeof(struct in_pktinfo))];
	} ctl[BATCH];
	struct mmsghdr m[BATCH];
	struct iovec iov[BATCH];
	uint64_t t0 = now_ns(), sent = 0, errors0 = f->send_errors, rx0[5], batch = BATCH, t;

	memcpy(rx0, f->rx, sizeof(rx0));
	if (f->o.rate && f->o.rate < 100 * BATCH)
		batch = WGT_MAX(f->o.rate / 100, 1);
	while (sent < f->o.count) {
		unsigned n = (unsigned)WGT_MIN(batch, f->o.count - sent);
		unsigned sock = (unsigned)(sent / batch % f->o.sockets);
		int r;

		t = now_ns();
		if (f->o.seconds && t - t0 >= f->o.seconds * WGT_NSEC_PER_SEC)
			break;
		if (f->o.rate) {
			uint64_t due = t0 + sent * WGT_NSEC_PER_SEC / f->o.rate;

			if (due > t) {
				struct timespec ts = { .tv_sec = (time_t)((due - t) / WGT_NSEC_PER_SEC),
						       .tv_nsec = (long)((due - t) % WGT_NSEC_PER_SEC) };

				nanosleep(&ts, NULL);
			}
		}
		memset(m, 0, sizeof(m[0]) * n);
		for (unsigned j = 0; j < n; j++) {
			iov[j].iov_base = f->bufs[j];
			iov[j].iov_len = build(f, k, sent + j, f->bufs[j]);
			m[j].msg_hdr.msg_name = &f->o.server;
			m[j].msg_hdr.msg_namelen = sizeof(f->o.server);
			m[j].msg_hdr.msg_iov = &iov[j];
			m[j].msg_hdr.msg_iovlen = 1;
			if (f->o.n_src) {
				struct in_pktinfo pi = { 0 };
				struct cmsghdr *c;

				pi.ipi_spec_dst.s_addr =
					htonl(ntohl(f->o.src_base.s_addr) +
					      (uint32_t)((sent + j) % f->o.n_src));
				memset(&ctl[j], 0, sizeof(ctl[j]));
				m[j].msg_hdr.msg_control = ctl[j].b;
				m[j].msg_hdr.msg_controllen = sizeof(ctl[j].b);
				c = CMSG_FIRSTHDR(&m[j].msg_hdr);
				c->cmsg_level = IPPROTO_IP;
				c->cmsg_type = IP_PKTINFO;
				c->cmsg_len = CMSG_LEN(sizeof(pi));
				memcpy(CMSG_DATA(c), &pi, sizeof(pi));
			}
		}
		r = sendmmsg(f->fds[sock], m, n, 0);
		if (r < (int)n) {
			/* The rest of a batch the kernel refused counts as sent with an error. */
			if (!f->send_errors && r == -1)
				fprintf(stderr, "wgt-flood: sendmmsg: %s (counted from now on)\n",
					strerror(errno));
			f->send_errors += n - (unsigned)WGT_MAX(r, 0);
		}
		sent += n;
		drain_replies(f);
	}
	t = now_ns() - t0;
	printf("flood: %s sent %llu in %.2f s (%.0f/s), send errors %llu, replies: cookie %llu, "
	       "response %llu, data %llu, other %llu\n",
	       kind_names[k], (unsigned long long)sent, (double)t / 1e9,
	       t ? (double)sent * 1e9 / (double)t : 0.0,
	       (unsigned long long)(f->send_errors - errors0),
	       (unsigned long long)(f->rx[3] - rx0[3]), (unsigned long long)(f->rx[2] - rx0[2]),
	       (unsigned long long)(f->rx[4] - rx0[4]), (unsigned long long)(f->rx[0] - rx0[0]));
	fflush(stdout);
}

/* valid-mac1: POOL initiations from random static keys the gateway does not know. */
static int make_pool(struct flood *f)
{
	for (unsigned i = 0; i < POOL; i++) {
		uint8_t priv[WGT_KEY_LEN], pub[WGT_KEY_LEN];
		struct wgt_simpeer sp;
		int r = wgt_x25519_generate(priv, pub);

		if (!r)
			r = wgt_simpeer_init(&sp, priv, f->o.server_public, NULL);
		OPENSSL_cleanse(priv, sizeof(priv));
		if (r)
			return r;
		r = wgt_simpeer_initiation(&sp, &f->pool[i], (uint32_t)rnd(f), now_ns());
		wgt_simpeer_destroy(&sp);
		if (r)
			return r;
	}
	return 0;
}

/* Waits up to `ms` for one datagram on socket 0. Returns its length or -errno. */
static ssize_t recv_wait(struct flood *f, uint8_t *buf, size_t cap, int ms)
{
	struct pollfd p = { .fd = f->fds[0], .events = POLLIN };
	ssize_t n;

	if (poll(&p, 1, ms) <= 0)
		return -ETIMEDOUT;
	n = recv(f->fds[0], buf, cap, MSG_DONTWAIT);
	return n == -1 ? -errno : n;
}

/*
 * The capture for the replay kinds: a real handshake as the configured peer
 * from socket 0's own address (so the response reaches us), then CAPTURE
 * data messages of --size bytes under the new session, sent once and kept.
 */
static int capture(struct flood *f)
{
	struct wgt_simpeer sp;
	struct wgt_aead *aead = wgt_aead_new();
	struct wgt_noise_keypair *kp = NULL;
	uint8_t buf[MAX_DGRAM];
	int ret;

	if (!aead)
		return -ENOMEM;
	ret = wgt_simpeer_init(&sp, f->o.peer_private, f->o.server_public, NULL);
	if (ret)
		goto out_aead;
	for (unsigned attempt = 0; attempt < 10 && !kp; attempt++) {
		uint64_t deadline;

		ret = wgt_simpeer_initiation(&sp, &f->captured_init, 0x464c4f00 + attempt, now_ns());
		if (ret)
			goto out;
		if (sendto(f->fds[0], &f->captured_init, sizeof(f->captured_init), 0,
			   (struct sockaddr *)&f->o.server, sizeof(f->o.server)) == -1) {
			ret = -errno;
			goto out;
		}
		deadline = now_ns() + WGT_NSEC_PER_SEC;
		while (!kp && now_ns() < deadline) {
			ssize_t n = recv_wait(f, buf, sizeof(buf), 100);
			enum wgt_message_type t;

			if (n < 0)
				continue;
			t = wgt_msg_classify(buf, (size_t)n);
			if (t == WGT_MSG_HANDSHAKE_RESPONSE)
				wgt_simpeer_consume_response(&sp, (const void *)buf, now_ns(), &kp);
			else if (t == WGT_MSG_HANDSHAKE_COOKIE &&
				 !wgt_simpeer_consume_cookie(&sp, (const void *)buf, now_ns()))
				break; /* the next initiation carries mac2 */
		}
	}
	if (!kp) {
		fprintf(stderr, "wgt-flood: no handshake with %s as the configured peer (10 tries)\n",
			inet_ntoa(f->o.server.sin_addr));
		ret = -ETIMEDOUT;
		goto out;
	}
	for (unsigned i = 0; i < CAPTURE; i++) {
		uint8_t *p = f->captured[i];

		memset(p, 0, MAX_DGRAM);
		ret = wgt_simpeer_seal(&sp, aead, p, f->o.size, MAX_DGRAM, now_ns(),
				       &f->captured_len[i]);
		if (ret)
			goto out;
		/* Sent once for real, so the gateway has seen every counter we replay. */
		if (sendto(f->fds[0], p, f->captured_len[i], 0, (struct sockaddr *)&f->o.server,
			   sizeof(f->o.server)) == -1)
			f->send_errors++;
	}
	printf("flood: captured a handshake and %u data messages of %zu bytes as the configured peer\n",
	       CAPTURE, f->captured_len[0]);
	fflush(stdout);
	ret = 0;
out:
	wgt_simpeer_destroy(&sp);
out_aead:
	wgt_aead_free(aead);
	return ret;
}

/* --save-init / --load-init: the initiation's 148 bytes, raw. Returns 0 or -errno. */
static int init_file(struct flood *f, bool save)
{
	const char *path = save ? f->o.save_init : f->o.load_init;
	FILE *fp = fopen(path, save ? "wb" : "rb");
	size_t n;
	int ret = 0;

	if (!fp)
		ret = -errno;
	if (!ret) {
		n = save ? fwrite(&f->captured_init, 1, sizeof(f->captured_init), fp) :
			   fread(&f->captured_init, 1, sizeof(f->captured_init), fp);
		if (n != sizeof(f->captured_init))
			ret = -EIO;
		if (fclose(fp) && !ret)
			ret = -errno;
	}
	if (ret)
		fprintf(stderr, "wgt-flood: %s %s: %s\n", save ? "--save-init" : "--load-init", path,
			ret == -EIO ? "not 148 bytes" : strerror(-ret));
	return ret;
}

int main(int argc, char **argv)
{
	static struct flood f;
	int r;

	r = parse_options(&f.o, argc, argv);
	if (r <= 0)
		return r ? 2 : 0;
	for (unsigned i = 0; i < MAX_SOCKETS; i++)
		f.fds[i] = -1;
	r = wgt_crypto_init();
	if (!r && wgt_random_bytes(&f.rng, sizeof(f.rng)) < 0)
		r = -EIO;
	f.rng |= 1;
	if (r) {
		fprintf(stderr, "wgt-flood: crypto init: %s\n", strerror(-r));
		return 1;
	}
	r = open_sockets(&f);
	if (r) {
		fprintf(stderr, "wgt-flood: UDP sockets: %s\n", strerror(-r));
		goto out;
	}
	if (f.o.have_public) {
		static const char label[] = "mac1----";

		r = wgt_blake2s_hash2(f.mac1_key, label, 8, f.o.server_public, WGT_KEY_LEN);
		if (!r && (f.o.kinds & 1U << K_VALID_MAC1))
			r = make_pool(&f);
		if (r) {
			fprintf(stderr, "wgt-flood: valid-mac1 initiations: %s\n", strerror(-r));
			goto out;
		}
	}
	if (f.o.load_init) {
		r = init_file(&f, false);
		if (r)
			goto out;
	} else if (f.o.kinds & (1U << K_REPLAY_DATA | 1U << K_REPLAY_INIT)) {
		r = capture(&f);
		if (!r && f.o.save_init)
			r = init_file(&f, true);
		if (r)
			goto out;
	}
	for (unsigned k = 0; k < K_COUNT; k++)
		if (f.o.kinds & 1U << k)
			run_kind(&f, (enum kind)k);
	r = 0;
out:
	for (unsigned i = 0; i < MAX_SOCKETS; i++)
		if (f.fds[i] >= 0)
			close(f.fds[i]);
	OPENSSL_cleanse(f.o.peer_private, sizeof(f.o.peer_private));
	return r ? 1 : 0;
}
