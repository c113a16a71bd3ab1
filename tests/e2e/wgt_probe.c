/* SPDX-License-Identifier: MIT */
/* wgt_probe: drives the protocol core over a plain UDP socket against a real WireGuard peer and checks an ICMP echo round trip through the tunnel. */
/*
 * No TUN device: the probe builds and checks the one IPv4 ICMP packet it
 * needs itself, so it runs in any network namespace without privileges of
 * its own. One thread does everything; it is both the core's control
 * thread and the worker that owns the AEAD context. Every receive polls
 * against one deadline, so the probe ends by --timeout whatever the peer does.
 */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "common/clock.h"
#include "common/endpoint.h"
#include "common/random.h"
#include "crypto/aead.h"
#include "crypto/blake2s.h"
#include "crypto/cookie.h"
#include "crypto/messages.h"
#include "crypto/noise.h"
#include "crypto/tai64n.h"
#include "crypto/transport.h"
#include "perf/tool_util.h"
#include "icmp_echo.h"

/*
 * Exit codes. The interop script tells "the peer never answered the
 * handshake" (what a wrong key must produce) from every other failure, so
 * that a crash or a usage error cannot pass for the expected negative result.
 */
enum {
	PROBE_EXIT_OK = 0,
	PROBE_EXIT_FAIL = 1,
	PROBE_EXIT_USAGE = 2,
	PROBE_EXIT_NO_HANDSHAKE = 3,
};

#define PROBE_MTU 1420                          /* wireguard-go's default */
#define PROBE_RETRY_NS (1 * WGT_NSEC_PER_SEC)   /* resend initiation / echo request */
#define PROBE_ICMP_PAYLOAD_LEN 56               /* as ping(8) */
#define PROBE_BUF_LEN (65536 + WGT_TRANSPORT_OVERHEAD_MAX)
#define PROBE_MAX_REKEYS 1000
/*
 * Between a strict initiator's initiations: a responder refuses more than
 * 50 a second from one peer (20 ms apart, by its own clock), and TAI64N
 * timestamps are coarsened to ~16.8 ms, so 30 ms keeps every one accepted.
 */
#define PROBE_REKEY_GAP_NS (30 * WGT_NSEC_PER_MSEC)
/* A strict run stops after this many failures: each costs a resend (PROBE_RETRY_NS). */
#define PROBE_STRICT_MAX_FAILURES 10

struct probe {
	bool initiator;
	int fd;
	union wgt_sockaddr peer;    /* initiate: given; respond: learned from the initiation */
	bool have_peer;
	struct in_addr tunnel_ip;
	struct in_addr peer_tunnel_ip;
	uint64_t deadline;          /* monotonic ns */
	unsigned int echo_count;    /* respond: echo requests to answer before exiting */

	struct wgt_noise_identity identity;
	struct wgt_noise_handshake hs;
	struct wgt_noise_keypairs keypairs;
	struct wgt_cookie_checker checker; /* mac1 of what we receive: keyed by our public key */
	struct wgt_cookie_maker maker;     /* mac1 of what we send: keyed by the peer's */
	struct wgt_aead *aead;

	/* initiate: the echo request we expect answered */
	uint16_t echo_id;
	uint16_t echo_seq;
	uint8_t echo_payload[PROBE_ICMP_PAYLOAD_LEN];

	/*
	 * initiate --rekeys N: a strict initiator. It handshakes N more times,
	 * pings after each, and forgets its previous keypair the moment it
	 * has a new one, so every reply must come under the newest.
	 */
	unsigned int rekeys;
	uint64_t last_initiation;            /* monotonic ns */
	uint32_t old_index[PROBE_MAX_REKEYS + 1]; /* our indices of the keypairs forgotten */
	unsigned int n_old;
	unsigned int under_newest;           /* data messages that opened under the newest */
	unsigned int under_older;            /* failures: addressed to a forgotten keypair */
	unsigned int undecryptable;          /* failures: newest index, but did not open */
	unsigned int unknown_index;          /* failures: an index we never had */
};

/* Per-packet chatter off (a strict run's re-handshakes); failures and results still print. */
static bool quiet;

static uint8_t buf[PROBE_BUF_LEN];

/* One "wgt_probe: " line on stdout, flushed. */
__attribute__((format(printf, 1, 0)))
static void vnote(const char *fmt, va_list ap)
{
	fputs("wgt_probe: ", stdout);
	vfprintf(stdout, fmt, ap);
	fputc('\n', stdout);
	fflush(stdout);
}

__attribute__((format(printf, 1, 2)))
static void say(const char *fmt, ...)
{
	va_list ap;

	if (quiet)
		return;
	va_start(ap, fmt);
	vnote(fmt, ap);
	va_end(ap);
}

__attribute__((format(printf, 1, 2)))
static void complain(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("wgt_probe: error: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static void usage(void)
{
	fputs("usage: wgt_probe initiate|respond --private-key B64 --peer-public-key B64\n"
	      "           [--preshared-key B64] [--endpoint IP:PORT] [--listen-port N]\n"
	      "           --tunnel-ip A.B.C.D --peer-tunnel-ip A.B.C.D\n"
	      "           [--timeout SECONDS] [--count N] [--rekeys N]\n"
	      "initiate: handshake with the peer at --endpoint, ping its tunnel IP; with\n"
	      "          --rekeys N, then N more times a new handshake and a ping, as a\n"
	      "          strict initiator that forgets its previous keypair at once and\n"
	      "          counts every reply not under its newest keypair as a failure.\n"
	      "respond:  wait for the peer's handshake, answer --count echo requests (default 1).\n"
	      "Exit: 0 ok, 1 failure, 2 usage, 3 no handshake completed before the timeout.\n",
	      stderr);
}

/* As say(), even when quiet. */
__attribute__((format(printf, 1, 2)))
static void note(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vnote(fmt, ap);
	va_end(ap);
}

static int parse_uint(unsigned long *ret, const char *s, unsigned long max)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || end == s || v > max)
		return -EINVAL;
	*ret = v;
	return 0;
}

static const char *endpoint_str(const union wgt_sockaddr *ep)
{
	static char s[INET6_ADDRSTRLEN + 8];
	char host[INET6_ADDRSTRLEN];

	if (ep->sa.sa_family == AF_INET6) {
		inet_ntop(AF_INET6, &ep->in6.sin6_addr, host, sizeof(host));
		snprintf(s, sizeof(s), "[%s]:%u", host, ntohs(ep->in6.sin6_port));
	} else {
		inet_ntop(AF_INET, &ep->in4.sin_addr, host, sizeof(host));
		snprintf(s, sizeof(s), "%s:%u", host, ntohs(ep->in4.sin_port));
	}
	return s;
}

/*
 * Waits for one datagram until `until` (monotonic ns). Returns its length,
 * -ETIMEDOUT, or -errno. Datagrams larger than the buffer are dropped.
 */
static ssize_t recv_until(struct probe *p, union wgt_sockaddr *from, uint64_t until)
{
	for (;;) {
		struct pollfd pfd = { .fd = p->fd, .events = POLLIN };
		uint64_t now = wgt_now_ns();
		socklen_t alen = sizeof(*from);
		ssize_t len;
		int n;

		if (now >= until)
			return -ETIMEDOUT;
		n = poll(&pfd, 1, (int)((until - now + WGT_NSEC_PER_MSEC - 1) / WGT_NSEC_PER_MSEC));
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			continue;
		len = recvfrom(p->fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC, &from->sa, &alen);
		if (len == -1) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			return -errno;
		}
		if ((size_t)len > sizeof(buf)) {
			say("dropped an oversized datagram (%zd bytes)", len);
			continue;
		}
		return len;
	}
}

static int send_to_peer(struct probe *p, const void *msg, size_t len)
{
	ssize_t n = sendto(p->fd, msg, len, 0, &p->peer.sa, wgt_sockaddr_len(&p->peer));

	if (n == -1)
		return -errno;
	return (size_t)n == len ? 0 : -EMSGSIZE;
}

/* Encrypts the packet of `len` bytes at buf + 16 under kp and sends it. Returns 0 or -errno. */
static int send_packet(struct probe *p, struct wgt_noise_keypair *kp, size_t len)
{
	size_t out_len;
	int ret;

	ret = wgt_transport_encrypt(p->aead, kp, buf, len, sizeof(buf), PROBE_MTU, wgt_now_ns(),
				    &out_len);
	if (ret)
		return ret;
	return send_to_peer(p, buf, out_len);
}

/* Finds the keypair a data message is addressed to (by our receiver index), or NULL. */
static struct wgt_noise_keypair *keypair_for(struct probe *p, const uint8_t *msg)
{
	struct wgt_noise_keypair *slots[3] = {
		atomic_load(&p->keypairs.current),
		atomic_load(&p->keypairs.next),
		atomic_load(&p->keypairs.previous),
	};
	uint32_t index;
	size_t i;

	memcpy(&index, msg + 4, sizeof(index));
	index = le32toh(index);
	for (i = 0; i < WGT_ARRAY_SIZE(slots); i++)
		if (slots[i] && slots[i]->local_index == index)
			return slots[i];
	return NULL;
}

/*
 * Opens a data message of `len` bytes in buf. Returns 0 and the padded
 * payload length (0 for a keepalive) with the keypair it came under, or
 * -errno after saying why it was dropped.
 */
static int open_data(struct probe *p, size_t len, size_t *ret_len, struct wgt_noise_keypair **ret_kp)
{
	struct wgt_noise_keypair *kp = keypair_for(p, buf);
	int ret;

	if (!kp) {
		say("dropped a data message for an unknown receiver index");
		return -ENOKEY;
	}
	ret = wgt_transport_decrypt(p->aead, kp, buf, len, wgt_now_ns(), ret_len);
	if (ret) {
		say("dropped a data message: decrypt failed (%s)", strerror(-ret));
		return ret;
	}
	if (wgt_noise_received_with_keypair(&p->keypairs, kp))
		say("first data message under the new session: keypair confirmed");
	*ret_kp = kp;
	return 0;
}

/* Sends a fresh initiation with new ephemeral key, index and timestamp. Returns 0 or -errno. */
static int send_initiation(struct probe *p)
{
	struct wgt_msg_initiation msg;
	uint8_t timestamp[WGT_TIMESTAMP_LEN];
	uint32_t index = wgt_random_u32();
	int ret;

	wgt_tai64n_now(timestamp);
	ret = wgt_noise_create_initiation(&p->hs, &msg, index, timestamp);
	if (ret) {
		complain("create_initiation: %s", strerror(-ret));
		return ret;
	}
	ret = wgt_cookie_add_macs(&p->maker, (uint8_t *)&msg, sizeof(msg), wgt_now_ns());
	if (ret) {
		complain("add_macs: %s", strerror(-ret));
		return ret;
	}
	ret = send_to_peer(p, &msg, sizeof(msg));
	if (ret) {
		complain("sending the initiation to %s: %s", endpoint_str(&p->peer), strerror(-ret));
		return ret;
	}
	p->last_initiation = wgt_now_ns();
	say("sent handshake initiation (sender index %08x) to %s", index, endpoint_str(&p->peer));
	return 0;
}

/*
 * Initiator handshake: resends a fresh initiation every PROBE_RETRY_NS
 * until a response completes it or the deadline passes. Returns the new
 * keypair, or NULL with *ret_err set (-ETIMEDOUT: nobody answered).
 */
static struct wgt_noise_keypair *initiator_handshake(struct probe *p, int *ret_err)
{
	struct wgt_noise_keypair *kp;
	union wgt_sockaddr from;
	uint64_t resend_at = 0;
	ssize_t len;
	int ret;

	for (;;) {
		uint64_t now = wgt_now_ns();

		if (now >= p->deadline) {
			*ret_err = -ETIMEDOUT;
			return NULL;
		}
		if (now >= resend_at) {
			ret = send_initiation(p);
			if (ret) {
				*ret_err = ret;
				return NULL;
			}
			resend_at = now + PROBE_RETRY_NS;
		}
		len = recv_until(p, &from, WGT_MIN(resend_at, p->deadline));
		if (len == -ETIMEDOUT)
			continue;
		if (len < 0) {
			*ret_err = (int)len;
			complain("receive: %s", strerror((int)-len));
			return NULL;
		}
		now = wgt_now_ns();
		if (!wgt_sockaddr_equal(&from, &p->peer)) {
			say("ignored %zd bytes from %s", len, endpoint_str(&from));
			continue;
		}

		switch (wgt_msg_classify(buf, (size_t)len)) {
		case WGT_MSG_HANDSHAKE_RESPONSE:
			if (wgt_cookie_validate(&p->checker, buf, (size_t)len, &from, false, now) ==
			    WGT_COOKIE_INVALID_MAC) {
				say("dropped a handshake response with a bad mac1");
				continue;
			}
			ret = wgt_noise_consume_response(&p->hs, (const struct wgt_msg_response *)buf);
			if (ret) {
				say("dropped a handshake response: consume_response: %s", strerror(-ret));
				continue;
			}
			ret = wgt_noise_begin_session(&p->hs, &p->keypairs, now, &kp);
			if (ret) {
				*ret_err = ret;
				complain("begin_session: %s", strerror(-ret));
				return NULL;
			}
			say("handshake response accepted: session %08x <-> %08x", kp->local_index,
			    kp->remote_index);
			return kp;
		case WGT_MSG_HANDSHAKE_COOKIE: {
			const struct wgt_msg_cookie *cookie = (const struct wgt_msg_cookie *)buf;

			if (le32toh(cookie->receiver_index) != p->hs.local_index) {
				say("dropped a cookie reply for another index");
				continue;
			}
			ret = wgt_cookie_consume_reply(&p->maker, cookie, now);
			if (ret) {
				say("dropped a cookie reply: %s", strerror(-ret));
				continue;
			}
			say("peer is under load: got a cookie, resending with mac2");
			resend_at = 0;
			continue;
		}
		default:
			say("ignored a %zd-byte message of type %u before the handshake", len, buf[0]);
			continue;
		}
	}
}

/*
 * A strict initiator keeps no previous keypair, as the protocol allows:
 * the moment a handshake gives it a new one, the old one is gone, and a
 * reply sealed under it can no longer be read. The probe is the only
 * thread that touches its keypair set.
 */
static void forget_previous(struct probe *p)
{
	struct wgt_noise_keypair *old = atomic_exchange(&p->keypairs.previous, NULL);

	if (!old)
		return;
	if (p->n_old < WGT_ARRAY_SIZE(p->old_index))
		p->old_index[p->n_old++] = old->local_index;
	wgt_noise_keypair_free(old);
}

/*
 * Strict mode: the data message in buf must be addressed to `newest`.
 * Returns 0 when it is, else counts and reports the failure and returns
 * -ESTALE (a forgotten keypair's) or -ENOKEY (an index we never had).
 */
static int strict_addressee(struct probe *p, const struct wgt_noise_keypair *newest)
{
	uint32_t index;

	memcpy(&index, buf + 4, sizeof(index));
	index = le32toh(index);
	if (index == newest->local_index)
		return 0;
	for (unsigned int i = p->n_old; i-- > 0;) {
		if (p->old_index[i] != index)
			continue;
		p->under_older++;
		note("FAIL: a data message under an older keypair (index %08x, %u handshakes old) "
		     "while echo seq %u waits under %08x",
		     index, p->n_old - i, p->echo_seq, newest->local_index);
		return -ESTALE;
	}
	p->unknown_index++;
	note("FAIL: a data message for index %08x, never ours", index);
	return -ENOKEY;
}

/*
 * Pings the peer's tunnel IP under kp (echo request p->echo_seq, sent again
 * with a new counter every PROBE_RETRY_NS) until the reply arrives.
 * Returns PROBE_EXIT_OK or PROBE_EXIT_FAIL.
 */
static int echo_round(struct probe *p, struct wgt_noise_keypair *kp)
{
	uint8_t pkt[IPV4_HEADER_LEN + ICMP_HEADER_LEN + PROBE_ICMP_PAYLOAD_LEN];
	struct wgt_noise_keypair *rx_kp;
	union wgt_sockaddr from;
	uint64_t resend_at = 0;
	unsigned int keepalives = 0;
	size_t pkt_len;
	int ret;

	pkt_len = icmp_echo_build(pkt, ICMP_ECHO_REQUEST, p->tunnel_ip, p->peer_tunnel_ip,
				  p->echo_id, p->echo_seq, p->echo_payload, sizeof(p->echo_payload));
	for (;;) {
		const char *why = NULL;
		struct icmp_echo e;
		size_t plen;
		ssize_t len;
		uint64_t now = wgt_now_ns();

		if (now >= p->deadline) {
			complain("no echo reply (seq %u) through the tunnel before the timeout "
				 "(%u keepalives seen)", p->echo_seq, keepalives);
			return PROBE_EXIT_FAIL;
		}
		/* The same request again (new counter) in case the first was lost. */
		if (now >= resend_at) {
			if (resend_at)
				note("no echo reply to seq %u within %llu ms: sending it again",
				     p->echo_seq,
				     (unsigned long long)(PROBE_RETRY_NS / WGT_NSEC_PER_MSEC));
			memcpy(buf + WGT_MSG_DATA_HEADER_LEN, pkt, pkt_len);
			ret = send_packet(p, kp, pkt_len);
			if (ret) {
				complain("sending the echo request: %s", strerror(-ret));
				return PROBE_EXIT_FAIL;
			}
			say("sent ICMP echo request id %u seq %u (%zu bytes, encrypted) to %s",
			    p->echo_id, p->echo_seq, pkt_len, endpoint_str(&p->peer));
			resend_at = now + PROBE_RETRY_NS;
		}
		len = recv_until(p, &from, WGT_MIN(resend_at, p->deadline));
		if (len == -ETIMEDOUT)
			continue;
		if (len < 0) {
			complain("receive: %s", strerror((int)-len));
			return PROBE_EXIT_FAIL;
		}
		if (wgt_msg_classify(buf, (size_t)len) != WGT_MSG_DATA) {
			say("ignored a %zd-byte non-data message of type %u", len, buf[0]);
			continue;
		}
		if (p->rekeys && strict_addressee(p, kp))
			continue;
		if (open_data(p, (size_t)len, &plen, &rx_kp)) {
			if (p->rekeys) {
				p->undecryptable++;
				note("FAIL: a data message under the newest keypair did not open");
			}
			continue;
		}
		p->under_newest += rx_kp == kp;
		if (plen == 0) {
			keepalives++;
			say("received a keepalive");
			continue;
		}
		if (icmp_echo_parse(&e, buf + WGT_MSG_DATA_HEADER_LEN, plen, &why)) {
			say("ignored a %zu-byte tunnel packet: %s", plen, why);
			continue;
		}
		if (e.type != ICMP_ECHO_REPLY || e.id != p->echo_id || e.seq != p->echo_seq ||
		    e.src.s_addr != p->peer_tunnel_ip.s_addr || e.dst.s_addr != p->tunnel_ip.s_addr) {
			say("ignored an ICMP packet that is not our echo reply (type %u id %u seq %u)",
			    e.type, e.id, e.seq);
			continue;
		}
		if (e.payload_len != sizeof(p->echo_payload) ||
		    memcmp(e.payload, p->echo_payload, e.payload_len)) {
			complain("echo reply payload differs from the request's");
			return PROBE_EXIT_FAIL;
		}
		say("received ICMP echo reply id %u seq %u with our %zu-byte payload: tunnel works",
		    e.id, e.seq, e.payload_len);
		return PROBE_EXIT_OK;
	}
}

static int run_initiate(struct probe *p)
{
	struct wgt_noise_keypair *kp;
	unsigned int failures;
	int ret = 0, rc;

	kp = initiator_handshake(p, &ret);
	if (!kp) {
		if (ret == -ETIMEDOUT) {
			complain("no valid handshake response from %s before the timeout",
				 endpoint_str(&p->peer));
			return PROBE_EXIT_NO_HANDSHAKE;
		}
		return PROBE_EXIT_FAIL;
	}

	p->echo_id = (uint16_t)wgt_random_u32();
	p->echo_seq = 1;
	memcpy(p->echo_payload, "wgt_probe echo ", 15);
	if (wgt_random_bytes(p->echo_payload + 15, sizeof(p->echo_payload) - 15)) {
		complain("getrandom failed");
		return PROBE_EXIT_FAIL;
	}
	rc = echo_round(p, kp);
	if (rc || !p->rekeys)
		return rc;

	note("strict initiator: %u re-handshakes, each followed by an echo request", p->rekeys);
	quiet = true;
	for (unsigned int i = 1; i <= p->rekeys; i++) {
		/* The responder's flood limit, not a wait for a condition (see PROBE_REKEY_GAP_NS). */
		uint64_t at = p->last_initiation + PROBE_REKEY_GAP_NS, now = wgt_now_ns();

		if (now < at) {
			struct timespec ts = { .tv_nsec = (long)(at - now) };

			nanosleep(&ts, NULL);
		}
		kp = initiator_handshake(p, &ret);
		if (!kp) {
			complain("re-handshake %u of %u: %s", i, p->rekeys,
				 ret == -ETIMEDOUT ? "no response before the timeout" : strerror(-ret));
			return PROBE_EXIT_FAIL;
		}
		forget_previous(p);
		p->echo_seq++;
		rc = echo_round(p, kp);
		if (rc) {
			complain("re-handshake %u of %u: no echo reply under the new keypair", i,
				 p->rekeys);
			return rc;
		}
		failures = p->under_older + p->undecryptable + p->unknown_index;
		if (failures >= PROBE_STRICT_MAX_FAILURES) {
			complain("%u failures after %u of %u re-handshakes: stopping", failures, i,
				 p->rekeys);
			break;
		}
	}
	quiet = false;
	failures = p->under_older + p->undecryptable + p->unknown_index;
	note("strict initiator: %u re-handshakes, %u echo replies; data messages under the newest "
	     "keypair %u, under an older one %u, undecryptable %u, unknown index %u",
	     p->n_old, p->n_old + 1, p->under_newest, p->under_older, p->undecryptable,
	     p->unknown_index);
	if (failures) {
		complain("%u data messages did not come under the newest keypair", failures);
		return PROBE_EXIT_FAIL;
	}
	return PROBE_EXIT_OK;
}

/* The one peer this probe knows, found by static public key. */
static struct wgt_noise_handshake *lookup_peer(void *arg, const uint8_t remote_static[WGT_KEY_LEN])
{
	struct probe *p = arg;

	return CRYPTO_memcmp(remote_static, p->hs.remote_static, WGT_KEY_LEN) ? NULL : &p->hs;
}

/*
 * Answers the initiation in buf from `from` with a response and installs
 * the new keypair (pending until the peer's first data message). Three
 * outcomes: 0 answered; -EAGAIN dropped (not for us: keep waiting);
 * other -errno fatal.
 */
static int answer_initiation(struct probe *p, size_t len, const union wgt_sockaddr *from)
{
	struct wgt_noise_handshake *hs;
	struct wgt_noise_keypair *kp;
	struct wgt_msg_response resp;
	uint64_t now = wgt_now_ns();
	uint32_t index;
	int ret;

	if (wgt_cookie_validate(&p->checker, buf, len, from, false, now) == WGT_COOKIE_INVALID_MAC) {
		say("dropped an initiation with a bad mac1 from %s", endpoint_str(from));
		return -EAGAIN;
	}
	ret = wgt_noise_consume_initiation((const struct wgt_msg_initiation *)buf, &p->identity,
					   lookup_peer, p, now, &hs);
	if (ret) {
		say("dropped an initiation from %s: consume_initiation: %s", endpoint_str(from),
		    strerror(-ret));
		return -EAGAIN;
	}
	say("accepted handshake initiation (sender index %08x) from %s", hs->remote_index,
	    endpoint_str(from));

	index = wgt_random_u32();
	ret = wgt_noise_create_response(hs, &resp, index);
	if (ret) {
		complain("create_response: %s", strerror(-ret));
		return ret;
	}
	ret = wgt_cookie_add_macs(&p->maker, (uint8_t *)&resp, sizeof(resp), now);
	if (ret) {
		complain("add_macs: %s", strerror(-ret));
		return ret;
	}
	/* Keys first, so that the peer's first data message finds them. */
	ret = wgt_noise_begin_session(hs, &p->keypairs, now, &kp);
	if (ret) {
		complain("begin_session: %s", strerror(-ret));
		return ret;
	}
	/* Reply where the initiation came from, as WireGuard's roaming does. */
	p->peer = *from;
	p->have_peer = true;
	ret = send_to_peer(p, &resp, sizeof(resp));
	if (ret) {
		complain("sending the response to %s: %s", endpoint_str(from), strerror(-ret));
		return ret;
	}
	say("sent handshake response (sender index %08x); session pending confirmation", index);
	return 0;
}

/* Answers the echo request in the decrypted packet through kp. Returns 0, -EAGAIN (not one), or -errno. */
static int answer_echo(struct probe *p, struct wgt_noise_keypair *kp, size_t plen)
{
	uint8_t payload[PROBE_MTU];
	const char *why = NULL;
	struct icmp_echo e;
	size_t pkt_len;
	int ret;

	if (icmp_echo_parse(&e, buf + WGT_MSG_DATA_HEADER_LEN, plen, &why)) {
		say("ignored a %zu-byte tunnel packet: %s", plen, why);
		return -EAGAIN;
	}
	if (e.type != ICMP_ECHO_REQUEST || e.dst.s_addr != p->tunnel_ip.s_addr ||
	    e.src.s_addr != p->peer_tunnel_ip.s_addr) {
		say("ignored an ICMP packet that is not an echo request to us (type %u)", e.type);
		return -EAGAIN;
	}
	if (e.payload_len > sizeof(payload)) {
		say("ignored an echo request with a %zu-byte payload", e.payload_len);
		return -EAGAIN;
	}
	say("received ICMP echo request id %u seq %u (%zu payload bytes)", e.id, e.seq,
	    e.payload_len);

	/* The reply is built in the same buffer: keep the payload aside first. */
	memcpy(payload, e.payload, e.payload_len);
	pkt_len = icmp_echo_build(buf + WGT_MSG_DATA_HEADER_LEN, ICMP_ECHO_REPLY, p->tunnel_ip,
				  p->peer_tunnel_ip, e.id, e.seq, payload, e.payload_len);
	ret = send_packet(p, kp, pkt_len);
	if (ret) {
		complain("sending the echo reply: %s", strerror(-ret));
		return ret;
	}
	say("sent ICMP echo reply id %u seq %u (encrypted) to %s", e.id, e.seq,
	    endpoint_str(&p->peer));
	return 0;
}

static int run_respond(struct probe *p)
{
	unsigned int answered = 0;
	bool handshaken = false;
	union wgt_sockaddr from;
	int ret;

	say("waiting for a handshake initiation");
	for (;;) {
		struct wgt_noise_keypair *kp;
		size_t plen;
		ssize_t len;

		len = recv_until(p, &from, p->deadline);
		if (len == -ETIMEDOUT) {
			if (!handshaken) {
				complain("no valid handshake initiation before the timeout");
				return PROBE_EXIT_NO_HANDSHAKE;
			}
			complain("answered %u of %u echo requests before the timeout", answered,
				 p->echo_count);
			return PROBE_EXIT_FAIL;
		}
		if (len < 0) {
			complain("receive: %s", strerror((int)-len));
			return PROBE_EXIT_FAIL;
		}

		switch (wgt_msg_classify(buf, (size_t)len)) {
		case WGT_MSG_HANDSHAKE_INITIATION:
			ret = answer_initiation(p, (size_t)len, &from);
			if (ret == -EAGAIN)
				continue;
			if (ret)
				return PROBE_EXIT_FAIL;
			handshaken = true;
			continue;
		case WGT_MSG_DATA:
			if (open_data(p, (size_t)len, &plen, &kp))
				continue;
			/* Data under our keys proves the sender; follow it as WireGuard roams. */
			p->peer = from;
			if (plen == 0) {
				say("received a keepalive");
				continue;
			}
			ret = answer_echo(p, kp, plen);
			if (ret == -EAGAIN)
				continue;
			if (ret)
				return PROBE_EXIT_FAIL;
			if (++answered >= p->echo_count)
				return PROBE_EXIT_OK;
			continue;
		default:
			say("ignored a %zd-byte message of type %u from %s", len, buf[0],
			    endpoint_str(&from));
			continue;
		}
	}
}

static int open_socket(struct probe *p, int family, uint16_t port)
{
	union wgt_sockaddr local;
	int fd;

	memset(&local, 0, sizeof(local));
	local.sa.sa_family = (sa_family_t)family;
	if (family == AF_INET6)
		local.in6.sin6_port = htons(port);
	else
		local.in4.sin_port = htons(port);

	fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_UDP);
	if (fd == -1)
		return -errno;
	if (bind(fd, &local.sa, wgt_sockaddr_len(&local)) == -1) {
		int err = -errno;

		close(fd);
		return err;
	}
	p->fd = fd;
	return 0;
}

static void probe_destroy(struct probe *p)
{
	wgt_noise_keypairs_clear(&p->keypairs);
	wgt_noise_handshake_destroy(&p->hs);
	wgt_noise_identity_clear(&p->identity);
	wgt_cookie_checker_clear(&p->checker);
	wgt_cookie_maker_clear(&p->maker);
	wgt_aead_free(p->aead);
	if (p->fd >= 0)
		close(p->fd);
	OPENSSL_cleanse(buf, sizeof(buf));
}

static const char *option_name(const struct option *options, int val)
{
	for (; options->name; options++)
		if (options->val == val)
			return options->name;
	return "?";
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "private-key", required_argument, NULL, 'k' },
		{ "peer-public-key", required_argument, NULL, 'p' },
		{ "preshared-key", required_argument, NULL, 'q' },
		{ "endpoint", required_argument, NULL, 'e' },
		{ "listen-port", required_argument, NULL, 'l' },
		{ "tunnel-ip", required_argument, NULL, 't' },
		{ "peer-tunnel-ip", required_argument, NULL, 'T' },
		{ "timeout", required_argument, NULL, 'w' },
		{ "count", required_argument, NULL, 'c' },
		{ "rekeys", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	uint8_t private_key[WGT_KEY_LEN], peer_public[WGT_KEY_LEN], psk[WGT_KEY_LEN];
	bool have_private = false, have_peer_public = false, have_psk = false;
	bool have_tunnel = false, have_peer_tunnel = false;
	unsigned long listen_port = 0, timeout_s = 10, count = 1, rekeys = 0;
	struct probe p = { .fd = -1 };
	int opt, ret, rc = PROBE_EXIT_USAGE;

	wgt_noise_keypairs_init(&p.keypairs);

	while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		switch (opt) {
		case 'k':
			if (wgt_tool_parse_key(private_key, optarg))
				goto bad_arg;
			have_private = true;
			break;
		case 'p':
			if (wgt_tool_parse_key(peer_public, optarg))
				goto bad_arg;
			have_peer_public = true;
			break;
		case 'q':
			if (wgt_tool_parse_key(psk, optarg))
				goto bad_arg;
			have_psk = true;
			break;
		case 'e':
			if (wgt_tool_parse_endpoint(&p.peer, optarg))
				goto bad_arg;
			p.have_peer = true;
			break;
		case 'l':
			if (parse_uint(&listen_port, optarg, 65535))
				goto bad_arg;
			break;
		case 't':
			if (inet_pton(AF_INET, optarg, &p.tunnel_ip) != 1)
				goto bad_arg;
			have_tunnel = true;
			break;
		case 'T':
			if (inet_pton(AF_INET, optarg, &p.peer_tunnel_ip) != 1)
				goto bad_arg;
			have_peer_tunnel = true;
			break;
		case 'w':
			if (parse_uint(&timeout_s, optarg, 3600) || timeout_s == 0)
				goto bad_arg;
			break;
		case 'c':
			if (parse_uint(&count, optarg, 1000) || count == 0)
				goto bad_arg;
			break;
		case 'r':
			if (parse_uint(&rekeys, optarg, PROBE_MAX_REKEYS))
				goto bad_arg;
			break;
		case 'h':
			usage();
			rc = PROBE_EXIT_OK;
			goto out;
		default:
			usage();
			goto out;
		}
	}
	if (optind != argc - 1 || !have_private || !have_peer_public || !have_tunnel ||
	    !have_peer_tunnel) {
		usage();
		goto out;
	}
	if (!strcmp(argv[optind], "initiate")) {
		p.initiator = true;
		if (!p.have_peer) {
			complain("initiate needs --endpoint");
			goto out;
		}
	} else if (strcmp(argv[optind], "respond")) {
		usage();
		goto out;
	} else if (rekeys) {
		complain("--rekeys is for initiate");
		goto out;
	}
	p.echo_count = (unsigned int)count;
	p.rekeys = (unsigned int)rekeys;
	rc = PROBE_EXIT_FAIL;

	ret = wgt_crypto_init();
	if (ret) {
		complain("crypto init: %s", strerror(-ret));
		goto out;
	}
	p.aead = wgt_aead_new();
	if (!p.aead) {
		complain("out of memory");
		goto out;
	}
	ret = wgt_noise_identity_set(&p.identity, private_key);
	if (!ret)
		ret = wgt_noise_handshake_init(&p.hs, &p.identity, peer_public,
					       have_psk ? psk : NULL);
	if (!ret)
		ret = wgt_cookie_checker_init(&p.checker, p.identity.static_public);
	if (!ret)
		ret = wgt_cookie_maker_init(&p.maker, peer_public);
	if (ret) {
		complain("setting up keys: %s", strerror(-ret));
		goto out;
	}
	ret = open_socket(&p, p.have_peer ? p.peer.sa.sa_family : AF_INET, (uint16_t)listen_port);
	if (ret) {
		complain("binding UDP port %lu: %s", listen_port, strerror(-ret));
		goto out;
	}
	p.deadline = wgt_now_ns() + timeout_s * WGT_NSEC_PER_SEC;
	say("%s mode, tunnel %s, %s pre-shared key, timeout %lu s", p.initiator ? "initiate" : "respond",
	    inet_ntoa(p.tunnel_ip), have_psk ? "with" : "without", timeout_s);

	rc = p.initiator ? run_initiate(&p) : run_respond(&p);
out:
	probe_destroy(&p);
	OPENSSL_cleanse(private_key, sizeof(private_key));
	OPENSSL_cleanse(psk, sizeof(psk));
	return rc;

bad_arg:
	complain("invalid value for --%s: %s", option_name(options, opt), optarg);
	rc = PROBE_EXIT_USAGE;
	goto out;
}
