/* SPDX-License-Identifier: MIT */
/* Prometheus /metrics, /healthz and /readyz over libmicrohttpd; rendering on the control thread. */
#include "gateway/metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>
#include <microhttpd.h>

#include "common/allowedips.h"
#include "common/endpoint.h"
#include "common/log.h"
#include "common/ring.h"
#include "crypto/messages.h"
#include "io/tun.h"
#include "gateway/device.h"

#define MAX_CONNECTIONS 16
#define MAX_QUEUED 16                            /* requests waiting for the control thread */
#define CONNECTION_TIMEOUT_S 10
#define RENDER_WAIT_NS (10 * WGT_NSEC_PER_SEC)   /* a request gives up on the control thread */
#define CHUNK_NS (1 * WGT_NSEC_PER_MSEC)         /* control thread time per render chunk */
#define JOINED_IPS_MAX 4096                      /* the allowed_ips label of a peer, in bytes */
#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* A growing text buffer; on allocation failure it stops growing and says so. */
struct mbuf {
	char *p;
	size_t len, cap;
	bool failed;
};

/* An answer's body: text buffers sent one after the other (an iovec, never joined). */
struct body {
	unsigned n;
	struct mbuf part[];
};

enum req_kind { REQ_METRICS, REQ_READYZ };

/* A request handed from a connection thread to the control thread (under m->mu). */
struct request {
	struct request *next;
	enum req_kind kind;
	bool done;          /* the control thread answered: status and body are set */
	bool abandoned;     /* the waiter gave up: whoever holds it last frees it */
	unsigned status;
	struct body *body;  /* NULL: none */
};

/* The per-peer metric families, rendered side by side and joined at the end. */
enum {
	FAM_PEER_INFO,
	FAM_PEER_ALLOWED_IPS,
	FAM_PEER_RX,
	FAM_PEER_TX,
	FAM_PEER_HANDSHAKE,
	FAM_MF_SENT,
	FAM_MF_RECEIVED,
	FAM_MF_HANDSHAKE,
	FAM_COUNT,
};

/* Control thread only: the render in progress. */
struct render {
	struct request *req;
	uint64_t start;
	struct mbuf head, fam[FAM_COUNT], scratch;
	uint64_t rx, tx;            /* sums over every peer */
	size_t seen, rendered, with_session;
};

struct wgt_metrics {
	struct wgt_device *dev;
	unsigned peer_limit;
	struct MHD_Daemon *mhd;
	ev_async async;
	ev_timer chunk;             /* 0 s: the next chunk of a render */
	ev_timer heartbeat;         /* 1 s: the control thread's heartbeat */
	_Atomic uint64_t ctrl_heartbeat;
	uint64_t last_render_ns;
	struct render r;            /* r.req == NULL: idle */
	struct request *active;     /* being rendered (also r.req) */

	pthread_mutex_t mu;
	pthread_cond_t cond;
	struct request *queue;      /* waiting, oldest first */
	unsigned queued;
	bool stopping;
#ifdef WGT_TEST_HOOKS
	const char *stall_file;     /* WGATE_TEST_STALL_FILE: holds the worker to stall */
#endif
};

/* ---- text buffers ---- */

static bool mb_reserve(struct mbuf *b, size_t n)
{
	size_t cap;
	char *p;

	if (b->failed)
		return false;
	if (b->len + n + 1 <= b->cap)
		return true;
	cap = b->cap ? b->cap : 4096;
	while (cap < b->len + n + 1)
		cap *= 2;
	p = realloc(b->p, cap);
	if (!p) {
		b->failed = true;
		return false;
	}
	b->p = p;
	b->cap = cap;
	return true;
}

static void mb_put(struct mbuf *b, const char *s, size_t n)
{
	if (!mb_reserve(b, n))
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = 0;
}

static void mb_puts(struct mbuf *b, const char *s)
{
	mb_put(b, s, strlen(s));
}

__attribute__((format(printf, 2, 3)))
static void mb_printf(struct mbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!mb_reserve(b, 128))
		return;
	va_start(ap, fmt);
	n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->failed = true;
		return;
	}
	if ((size_t)n >= b->cap - b->len) {
		if (!mb_reserve(b, (size_t)n))
			return;
		va_start(ap, fmt);
		vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
	}
	b->len += (size_t)n;
}

/* A label value as the exposition format wants it: backslash, quote and newline escaped. */
static void mb_label(struct mbuf *b, const char *s)
{
	for (const char *run = s;; s++) {
		if (*s && *s != '\\' && *s != '"' && *s != '\n')
			continue;
		mb_put(b, run, (size_t)(s - run));
		if (!*s)
			return;
		mb_put(b, *s == '\n' ? "\\n" : *s == '"' ? "\\\"" : "\\\\", 2);
		run = s + 1;
	}
}

static void mb_free(struct mbuf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

static void body_free(void *arg)
{
	struct body *b = arg;

	if (!b)
		return;
	for (unsigned i = 0; i < b->n; i++)
		mb_free(&b->part[i]);
	free(b);
}

/* A body of n parts moved out of src (which is left empty), or NULL on failure. */
static struct body *body_take(struct mbuf *const *src, unsigned n)
{
	struct body *b = malloc(sizeof(*b) + n * sizeof(b->part[0]));
	bool failed = false;

	for (unsigned i = 0; i < n; i++)
		failed |= src[i]->failed;
	if (b) {
		b->n = n;
		for (unsigned i = 0; i < n; i++) {
			b->part[i] = *src[i];
			memset(src[i], 0, sizeof(*src[i]));
		}
	}
	if (!b || failed) {
		body_free(b);
		for (unsigned i = 0; i < n; i++)
			mb_free(src[i]);
		return NULL;
	}
	return b;
}

static void mb_family(struct mbuf *b, const char *name, const char *type, const char *help)
{
	mb_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* ---- formatting ---- */

static void key_base64(const uint8_t key[WGT_KEY_LEN], char out[45])
{
	static const char b64[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	unsigned i, o = 0;

	for (i = 0; i + 3 <= WGT_KEY_LEN; i += 3) {
		uint32_t v = (uint32_t)key[i] << 16 | (uint32_t)key[i + 1] << 8 | key[i + 2];

		out[o++] = b64[v >> 18 & 63];
		out[o++] = b64[v >> 12 & 63];
		out[o++] = b64[v >> 6 & 63];
		out[o++] = b64[v & 63];
	}
	/* 32 = 30 + 2: the last two bytes make three characters and one '='. */
	{
		uint32_t v = (uint32_t)key[30] << 16 | (uint32_t)key[31] << 8;

		out[o++] = b64[v >> 18 & 63];
		out[o++] = b64[v >> 12 & 63];
		out[o++] = b64[v >> 6 & 63];
		out[o++] = '=';
	}
	out[o] = 0;
}

/* "ADDR:PORT" or "[V6]:PORT"; "" for none. */
static void format_sockaddr(const union wgt_sockaddr *a, char *out, size_t size)
{
	char host[INET6_ADDRSTRLEN];

	out[0] = 0;
	if (a->sa.sa_family == AF_INET && inet_ntop(AF_INET, &a->in4.sin_addr, host, sizeof(host)))
		snprintf(out, size, "%s:%u", host, ntohs(a->in4.sin_port));
	else if (a->sa.sa_family == AF_INET6 &&
		 inet_ntop(AF_INET6, &a->in6.sin6_addr, host, sizeof(host)))
		snprintf(out, size, "[%s]:%u", host, ntohs(a->in6.sin6_port));
}

/* allowed-IPs walk: "a/n," appended to the scratch buffer. */
static int collect_ip(void *ctx, int family, const uint8_t *addr, uint8_t cidr)
{
	struct mbuf *b = ctx;
	char host[INET6_ADDRSTRLEN];

	if (inet_ntop(family, addr, host, sizeof(host)))
		mb_printf(b, "%s/%u,", host, cidr);
	return 0;
}

/* ---- rendering, control thread only ---- */

static bool peer_has_session(struct wgt_peer *peer, uint64_t now)
{
	/* The control thread writes the slots and frees keypairs itself: a plain read is safe. */
	struct wgt_noise_keypair *kp =
		atomic_load_explicit(&peer->keypairs.current, memory_order_relaxed);

	return kp && atomic_load_explicit(&kp->send_valid, memory_order_relaxed) &&
	       !wgt_has_expired(kp->birth, WGT_REJECT_AFTER_TIME, now);
}

static void render_begin(struct wgt_metrics *m, struct request *req)
{
	static const char *const fam[FAM_COUNT][3] = {
		[FAM_PEER_INFO] = { "wireguard_peer_info", "gauge",
			"Metadata about a peer: its endpoint and configured name." },
		[FAM_PEER_ALLOWED_IPS] = { "wireguard_peer_allowed_ips_info", "gauge",
			"One series per prefix a peer's allowed IPs hold." },
		[FAM_PEER_RX] = { "wireguard_peer_receive_bytes_total", "counter",
			"Bytes received from a peer (as wg show transfer)." },
		[FAM_PEER_TX] = { "wireguard_peer_transmit_bytes_total", "counter",
			"Bytes sent to a peer (as wg show transfer)." },
		[FAM_PEER_HANDSHAKE] = { "wireguard_peer_last_handshake_seconds", "gauge",
			"UNIX time of a peer's latest handshake; 0: none yet." },
		[FAM_MF_SENT] = { "wireguard_sent_bytes_total", "counter",
			"Bytes sent to the peer (prometheus_wireguard_exporter's name)." },
		[FAM_MF_RECEIVED] = { "wireguard_received_bytes_total", "counter",
			"Bytes received from the peer (prometheus_wireguard_exporter's name)." },
		[FAM_MF_HANDSHAKE] = { "wireguard_latest_handshake_seconds", "gauge",
			"UNIX time of the latest handshake (prometheus_wireguard_exporter's name)." },
	};
	struct render *r = &m->r;

	memset(r, 0, sizeof(*r));
	r->req = req;
	r->start = wgt_now_ns();
	for (unsigned i = 0; i < FAM_COUNT; i++)
		mb_family(&r->fam[i], fam[i][0], fam[i][1], fam[i][2]);
	m->dev->metrics_cursor = m->dev->peers_head;
}

/* One peer's series. p->name is read with the acquire of wgt_peer_name (A1 in device.h). */
static void render_peer(struct wgt_metrics *m, struct wgt_peer *peer, uint64_t rx, uint64_t tx)
{
	struct render *r = &m->r;
	struct wgt_device *dev = m->dev;
	const char *name = atomic_load_explicit(&peer->name, memory_order_acquire);
	char key[45], ep_text[64];
	struct wgt_endpoint ep;
	struct mbuf *b;
	char *ips, *p;
	size_t ips_len;

	key_base64(peer->handshake.remote_static, key);
	wgt_peer_get_endpoint(peer, &ep);
	format_sockaddr(&ep.addr, ep_text, sizeof(ep_text));
	r->scratch.len = 0;
	wgt_allowedips_walk_by_value(dev->allowedips, peer, collect_ip, &r->scratch);
	if (r->scratch.failed || !r->scratch.len) {
		ips = "";
		ips_len = 0;
	} else {
		ips = r->scratch.p;
		ips_len = r->scratch.len - 1;   /* without the last comma */
		ips[ips_len] = 0;
	}

	/* The labels every wireguard_peer_* series shares: device, public_key[, name]. */
#define PEER_LABELS(b)                                                  \
	do {                                                            \
		mb_puts(b, "{device=\"");                               \
		mb_label(b, dev->ifname);                               \
		mb_puts(b, "\",public_key=\"");                         \
		mb_puts(b, key);                                        \
		if (name) {                                             \
			mb_puts(b, "\",name=\"");                       \
			mb_label(b, name);                              \
		}                                                       \
		mb_puts(b, "\"");                                       \
	} while (0)

	b = &r->fam[FAM_PEER_INFO];
	mb_puts(b, "wireguard_peer_info{device=\"");
	mb_label(b, dev->ifname);
	mb_printf(b, "\",public_key=\"%s\",endpoint=\"%s\",name=\"", key, ep_text);
	mb_label(b, name ? name : "");
	mb_puts(b, "\"} 1\n");

	b = &r->fam[FAM_PEER_ALLOWED_IPS];
	for (p = ips; ips_len && p;) {
		char *comma = strchr(p, ',');

		mb_puts(b, "wireguard_peer_allowed_ips_info{device=\"");
		mb_label(b, dev->ifname);
		mb_printf(b, "\",public_key=\"%s\",allowed_ips=\"", key);
		mb_put(b, p, comma ? (size_t)(comma - p) : strlen(p));
		mb_puts(b, "\"} 1\n");
		p = comma ? comma + 1 : NULL;
	}

	mb_puts(&r->fam[FAM_PEER_RX], "wireguard_peer_receive_bytes_total");
	PEER_LABELS(&r->fam[FAM_PEER_RX]);
	mb_printf(&r->fam[FAM_PEER_RX], "} %llu\n", (unsigned long long)rx);
	mb_puts(&r->fam[FAM_PEER_TX], "wireguard_peer_transmit_bytes_total");
	PEER_LABELS(&r->fam[FAM_PEER_TX]);
	mb_printf(&r->fam[FAM_PEER_TX], "} %llu\n", (unsigned long long)tx);
	mb_puts(&r->fam[FAM_PEER_HANDSHAKE], "wireguard_peer_last_handshake_seconds");
	PEER_LABELS(&r->fam[FAM_PEER_HANDSHAKE]);
	mb_printf(&r->fam[FAM_PEER_HANDSHAKE], "} %lld\n", (long long)peer->last_handshake.tv_sec);
#undef PEER_LABELS

	/* prometheus_wireguard_exporter's series (Grafana dashboard 12177). */
	if (ips_len > JOINED_IPS_MAX) {
		/* Cut at the last prefix boundary that fits; the info series list them all. */
		size_t k = JOINED_IPS_MAX;

		while (k && ips[k] != ',')
			k--;
		ips[k ? k : JOINED_IPS_MAX] = 0;
	}
	for (unsigned f = FAM_MF_SENT; f <= FAM_MF_HANDSHAKE; f++) {
		b = &r->fam[f];
		mb_puts(b, f == FAM_MF_SENT ? "wireguard_sent_bytes_total{interface=\"" :
			   f == FAM_MF_RECEIVED ? "wireguard_received_bytes_total{interface=\"" :
			   "wireguard_latest_handshake_seconds{interface=\"");
		mb_label(b, dev->ifname);
		mb_printf(b, "\",public_key=\"%s\",allowed_ips=\"%s\"", key, ips);
		if (name) {
			mb_puts(b, ",friendly_name=\"");
			mb_label(b, name);
			mb_puts(b, "\"");
		}
		mb_printf(b, "} %llu\n",
			  f == FAM_MF_SENT ? (unsigned long long)tx :
			  f == FAM_MF_RECEIVED ? (unsigned long long)rx :
			  (unsigned long long)peer->last_handshake.tv_sec);
	}
}

/* Walks peers from the cursor for about CHUNK_NS. Returns true when the list is done. */
static bool render_peers(struct wgt_metrics *m)
{
	struct wgt_device *dev = m->dev;
	struct render *r = &m->r;
	uint64_t t0 = wgt_now_ns();

	for (unsigned n = 1; dev->metrics_cursor; n++) {
		struct wgt_peer *peer = dev->metrics_cursor;
		uint64_t rx, tx;

		dev->metrics_cursor = peer->list_next;
		wgt_peer_transfer(peer, &rx, &tx);
		r->rx += rx;
		r->tx += tx;
		r->seen++;
		if (peer_has_session(peer, t0))
			r->with_session++;
		if (r->rendered < m->peer_limit) {
			render_peer(m, peer, rx, tx);
			r->rendered++;
		}
		if (!(n & 63) && wgt_now_ns() - t0 >= CHUNK_NS)
			break;
	}
	return !dev->metrics_cursor;
}

static void worker_series(struct mbuf *b, const struct wgt_device *dev, const char *name,
			  const char *type, const char *help, const char *dir, size_t off)
{
	mb_family(b, name, type, help);
	for (unsigned i = 0; i < dev->n_workers; i++) {
		const _Atomic uint64_t *c =
			(const _Atomic uint64_t *)((const char *)&dev->workers[i].stats + off);
		unsigned long long v = atomic_load_explicit(c, memory_order_relaxed);

		if (dir)
			mb_printf(b, "%s{worker=\"%u\",direction=\"%s\"} %llu\n", name, i, dir, v);
		else
			mb_printf(b, "%s{worker=\"%u\"} %llu\n", name, i, v);
	}
}

#define STAT_OFF(f) offsetof(struct wgt_worker_stats, f)

static uint64_t sum_stat(const struct wgt_device *dev, size_t off)
{
	uint64_t sum = 0;

	for (unsigned i = 0; i < dev->n_workers; i++)
		sum += atomic_load_explicit((const _Atomic uint64_t *)((const char *)&dev->workers[i]
								       .stats + off),
					    memory_order_relaxed);
	return sum;
}

/* Device-wide series: everything but the per-peer families and their sums. */
static void render_device(struct wgt_metrics *m, struct mbuf *b)
{
	static const struct { const char *reason; size_t off; } drops[] = {
		{ "no_route", STAT_OFF(tx_no_route) },
		{ "no_endpoint", STAT_OFF(tx_no_endpoint) },
		{ "no_session", STAT_OFF(rx_no_keypair) },
		{ "authentication", STAT_OFF(rx_auth_failed) },
		{ "replay", STAT_OFF(rx_replayed) },
		{ "source_not_allowed", STAT_OFF(rx_bad_source) },
		{ "invalid", STAT_OFF(rx_invalid) },
		{ "malformed", STAT_OFF(tx_malformed) },
		{ "ring_full", STAT_OFF(ring_full) },
		{ "tun_error", STAT_OFF(tun_write_errors) },
		{ "udp_error", STAT_OFF(tx_send_errors) },
	};
	static const char *const fail[WGT_HS_FAIL_COUNT] = {
		[WGT_HS_FAIL_BAD_MAC] = "bad_mac",
		[WGT_HS_FAIL_DECRYPT] = "decrypt",
		[WGT_HS_FAIL_UNKNOWN_PEER] = "unknown_peer",
		[WGT_HS_FAIL_STALE] = "stale_timestamp",
		[WGT_HS_FAIL_FLOOD] = "flood",
		[WGT_HS_FAIL_RATE_LIMITED] = "rate_limited",
		[WGT_HS_FAIL_UNKNOWN_INDEX] = "unknown_index",
		[WGT_HS_FAIL_OTHER] = "other",
	};
	struct wgt_device *dev = m->dev;
	const struct wgt_handshake_stats *hs = &dev->hs;
	uint64_t now = wgt_now_ns();
	char key[45] = "";

	if (dev->identity.has_identity)
		key_base64(dev->identity.static_public, key);
	mb_family(b, "wgate_build_info", "gauge", "The running wgate's version.");
	mb_printf(b, "wgate_build_info{version=\"%s\"} 1\n", WGT_VERSION);
	mb_family(b, "wireguard_device_info", "gauge", "Metadata about the device.");
	mb_puts(b, "wireguard_device_info{device=\"");
	mb_label(b, dev->ifname);
	mb_printf(b, "\",public_key=\"%s\"} 1\n", key);

	mb_family(b, "wgate_handshakes_sent_total", "counter", "Handshake messages sent.");
	mb_printf(b, "wgate_handshakes_sent_total{message=\"initiation\"} %llu\n"
		  "wgate_handshakes_sent_total{message=\"response\"} %llu\n",
		  (unsigned long long)hs->init_sent, (unsigned long long)hs->resp_sent);
	mb_family(b, "wgate_handshakes_received_total", "counter",
		  "Handshake messages received (before any check).");
	mb_printf(b, "wgate_handshakes_received_total{message=\"initiation\"} %llu\n"
		  "wgate_handshakes_received_total{message=\"response\"} %llu\n"
		  "wgate_handshakes_received_total{message=\"cookie_reply\"} %llu\n",
		  (unsigned long long)hs->init_received, (unsigned long long)hs->resp_received,
		  (unsigned long long)hs->cookie_received);
	mb_family(b, "wgate_handshakes_completed_total", "counter",
		  "Sessions established: as initiator (response consumed) or responder (first data).");
	mb_printf(b, "wgate_handshakes_completed_total{role=\"initiator\"} %llu\n"
		  "wgate_handshakes_completed_total{role=\"responder\"} %llu\n",
		  (unsigned long long)hs->completed_initiator,
		  (unsigned long long)hs->completed_responder);
	mb_family(b, "wgate_handshakes_failed_total", "counter",
		  "Handshake messages that led nowhere, by reason.");
	for (unsigned i = 0; i < WGT_HS_FAIL_COUNT; i++)
		mb_printf(b, "wgate_handshakes_failed_total{reason=\"%s\"} %llu\n", fail[i],
			  (unsigned long long)hs->failed[i]);
	mb_family(b, "wgate_cookie_replies_sent_total", "counter",
		  "Cookie replies sent under load instead of a handshake.");
	mb_printf(b, "wgate_cookie_replies_sent_total %llu\n",
		  (unsigned long long)dev->under_load_cookies);
	mb_family(b, "wgate_under_load", "gauge",
		  "1 while the handshake backlog is deep (and for a second after): cookies first.");
	mb_printf(b, "wgate_under_load %d\n",
		  dev->last_under_load && now - dev->last_under_load < WGT_NSEC_PER_SEC);

	mb_family(b, "wgate_drops_total", "counter", "Packets dropped, by reason.");
	for (size_t i = 0; i < sizeof(drops) / sizeof(drops[0]); i++)
		mb_printf(b, "wgate_drops_total{reason=\"%s\"} %llu\n", drops[i].reason,
			  (unsigned long long)sum_stat(dev, drops[i].off));
	mb_printf(b, "wgate_drops_total{reason=\"staging_overflow\"} %llu\n",
		  (unsigned long long)dev->staged_drops);
	mb_family(b, "wgate_peer_cap_hits_total", "counter",
		  "Peers refused because the device holds the most it may.");
	mb_printf(b, "wgate_peer_cap_hits_total %llu\n", (unsigned long long)dev->peers_cap_hits);

	mb_family(b, "wgate_worker_packets_total", "counter", "Data packets per worker.");
	for (unsigned i = 0; i < dev->n_workers; i++) {
		const struct wgt_worker_stats *s = &dev->workers[i].stats;

		mb_printf(b, "wgate_worker_packets_total{worker=\"%u\",direction=\"rx\"} %llu\n"
			  "wgate_worker_packets_total{worker=\"%u\",direction=\"tx\"} %llu\n", i,
			  (unsigned long long)atomic_load_explicit(&s->rx_packets, memory_order_relaxed),
			  i,
			  (unsigned long long)atomic_load_explicit(&s->tx_packets, memory_order_relaxed));
	}
	mb_family(b, "wgate_worker_bytes_total", "counter",
		  "Data bytes per worker: decrypted payload received, plaintext sent.");
	for (unsigned i = 0; i < dev->n_workers; i++) {
		const struct wgt_worker_stats *s = &dev->workers[i].stats;

		mb_printf(b, "wgate_worker_bytes_total{worker=\"%u\",direction=\"rx\"} %llu\n"
			  "wgate_worker_bytes_total{worker=\"%u\",direction=\"tx\"} %llu\n", i,
			  (unsigned long long)atomic_load_explicit(&s->rx_bytes, memory_order_relaxed), i,
			  (unsigned long long)atomic_load_explicit(&s->tx_bytes, memory_order_relaxed));
	}
	mb_family(b, "wgate_worker_batches_total", "counter",
		  "Batches per worker: passes that read the TUN queue, datagram batches received.");
	for (unsigned i = 0; i < dev->n_workers; i++) {
		const struct wgt_worker_stats *s = &dev->workers[i].stats;

		mb_printf(b, "wgate_worker_batches_total{worker=\"%u\",direction=\"rx\"} %llu\n"
			  "wgate_worker_batches_total{worker=\"%u\",direction=\"tx\"} %llu\n", i,
			  (unsigned long long)atomic_load_explicit(&s->rx_batches, memory_order_relaxed),
			  i,
			  (unsigned long long)atomic_load_explicit(&s->tx_batches, memory_order_relaxed));
	}
	mb_family(b, "wgate_worker_busy_seconds_total", "counter",
		  "Time a worker spent outside poll() and naps (busy polling counts as busy).");
	for (unsigned i = 0; i < dev->n_workers; i++)
		mb_printf(b, "wgate_worker_busy_seconds_total{worker=\"%u\"} %.6f\n", i,
			  (double)atomic_load_explicit(&dev->workers[i].stats.busy_ns,
						       memory_order_relaxed) / 1e9);
	worker_series(b, dev, "wgate_worker_tun_writes_total", "counter",
		      "TUN writes per worker (a coalesced packet counts once).", NULL,
		      STAT_OFF(tun_writes));

	mb_family(b, "wgate_offload_active", "gauge", "Offloads in use (1) or not (0).");
	mb_printf(b, "wgate_offload_active{offload=\"tun_csum\"} %d\n"
		  "wgate_offload_active{offload=\"tun_tso4\"} %d\n"
		  "wgate_offload_active{offload=\"tun_tso6\"} %d\n"
		  "wgate_offload_active{offload=\"tun_uso4\"} %d\n"
		  "wgate_offload_active{offload=\"tun_uso6\"} %d\n"
		  "wgate_offload_active{offload=\"udp_gso\"} %d\n"
		  "wgate_offload_active{offload=\"udp_gro\"} %d\n"
		  "wgate_offload_active{offload=\"steering\"} %d\n",
		  !!(dev->tun_offloads & WGT_TUN_OFFLOAD_CSUM),
		  !!(dev->tun_offloads & WGT_TUN_OFFLOAD_TSO4),
		  !!(dev->tun_offloads & WGT_TUN_OFFLOAD_TSO6),
		  !!(dev->tun_offloads & WGT_TUN_OFFLOAD_USO4),
		  !!(dev->tun_offloads & WGT_TUN_OFFLOAD_USO6), dev->udp_gso, dev->udp_gro,
		  dev->steering);
	mb_family(b, "wgate_config_reloads_total", "counter", "Config file applied again.");
	mb_printf(b, "wgate_config_reloads_total %llu\n", (unsigned long long)dev->conf_reloads);
	mb_family(b, "wgate_config_reload_failures_total", "counter",
		  "Config files refused; the running configuration stayed.");
	mb_printf(b, "wgate_config_reload_failures_total %llu\n",
		  (unsigned long long)dev->conf_reload_failures);
	mb_family(b, "wgate_metrics_render_seconds", "gauge",
		  "Time the previous /metrics took to render on the control thread.");
	mb_printf(b, "wgate_metrics_render_seconds %.6f\n", (double)m->last_render_ns / 1e9);
}

/* After the peers: what needed all of them. */
static void render_tail(struct wgt_metrics *m, struct mbuf *b)
{
	struct render *r = &m->r;

	mb_family(b, "wgate_peers", "gauge", "Peers configured.");
	mb_printf(b, "wgate_peers %zu\n", r->seen);
	mb_family(b, "wgate_peers_with_session", "gauge",
		  "Peers with a current session that may still send.");
	mb_printf(b, "wgate_peers_with_session %zu\n", r->with_session);
	mb_family(b, "wgate_peers_receive_bytes_total", "counter", "Bytes received from all peers.");
	mb_printf(b, "wgate_peers_receive_bytes_total %llu\n", (unsigned long long)r->rx);
	mb_family(b, "wgate_peers_transmit_bytes_total", "counter", "Bytes sent to all peers.");
	mb_printf(b, "wgate_peers_transmit_bytes_total %llu\n", (unsigned long long)r->tx);
	mb_family(b, "wgate_metrics_peers_omitted", "gauge",
		  "Peers beyond --metrics-peer-limit: in the sums only, without series of their own.");
	mb_printf(b, "wgate_metrics_peers_omitted %zu\n", r->seen - r->rendered);
}

/* Control thread. Hands a finished request back to its waiter (or frees an abandoned one). */
static void complete(struct wgt_metrics *m, struct request *req, unsigned status,
		     struct body *body)
{
	pthread_mutex_lock(&m->mu);
	if (req->abandoned) {
		body_free(body);
		free(req);
	} else {
		req->status = body ? status : 500;
		req->body = body;
		req->done = true;
		pthread_cond_broadcast(&m->cond);
	}
	pthread_mutex_unlock(&m->mu);
}

static void render_finish(struct wgt_metrics *m)
{
	struct render *r = &m->r;
	struct mbuf *parts[1 + FAM_COUNT];
	struct body *body;

	render_tail(m, &r->head);
	parts[0] = &r->head;
	for (unsigned i = 0; i < FAM_COUNT; i++)
		parts[1 + i] = &r->fam[i];
	body = body_take(parts, 1 + FAM_COUNT);
	mb_free(&r->scratch);
	m->last_render_ns = wgt_now_ns() - r->start;
	wgt_dbg("metrics: %zu peers (%zu with series) in %.3f ms", r->seen, r->rendered,
		(double)m->last_render_ns / 1e6);
	if (!body)
		wgt_warn("metrics: out of memory while rendering");
	complete(m, r->req, 200, body);
	r->req = NULL;
	m->active = NULL;
}

static void readyz(struct wgt_metrics *m, struct request *req)
{
	struct wgt_device *dev = m->dev;
	struct mbuf b = { 0 }, *parts[1] = { &b };
	bool ready = dev->up && dev->identity.has_identity && dev->listen_port;

	if (ready) {
		mb_puts(&b, "ready\n");
	} else {
		mb_puts(&b, "not ready:");
		if (!dev->up)
			mb_puts(&b, " interface down;");
		if (!dev->identity.has_identity)
			mb_puts(&b, " no private key;");
		if (!dev->listen_port)
			mb_puts(&b, " no bound UDP port;");
		mb_puts(&b, "\n");
	}
	complete(m, req, ready ? 200 : 503, body_take(parts, 1));
}

/* Control thread: takes the next queued request, if idle. */
static void next_request(struct wgt_metrics *m)
{
	struct request *req;

	while (!m->active) {
		pthread_mutex_lock(&m->mu);
		/* A request its waiter gave up on is not worth a render. */
		while ((req = m->queue) && req->abandoned) {
			m->queue = req->next;
			m->queued--;
			free(req);
		}
		if (req) {
			m->queue = req->next;
			m->queued--;
		}
		pthread_mutex_unlock(&m->mu);
		if (!req)
			return;
		if (req->kind == REQ_READYZ) {
			readyz(m, req);
			continue;
		}
		m->active = req;
		render_begin(m, req);
		render_device(m, &m->r.head);
		ev_timer_set(&m->chunk, 0., 0.);
		ev_timer_start(m->dev->loop, &m->chunk);
	}
}

static void chunk_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct wgt_metrics *m = wgt_container_of(w, struct wgt_metrics, chunk);

	if (!m->active)
		return;
	if (!render_peers(m)) {
		/* More peers: give the loop back and go on in its next iteration. */
		ev_timer_set(&m->chunk, 0., 0.);
		ev_timer_start(loop, &m->chunk);
		return;
	}
	render_finish(m);
	next_request(m);
}

static void async_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	next_request(wgt_container_of(w, struct wgt_metrics, async));
}

#ifdef WGT_TEST_HOOKS
/* Test builds: the file named by WGATE_TEST_STALL_FILE holds a worker number to stall. */
static void test_stall_poll(struct wgt_metrics *m)
{
	struct wgt_device *dev = m->dev;
	unsigned target = ~0U;
	FILE *f;

	if (!m->stall_file)
		return;
	f = fopen(m->stall_file, "re");
	if (f) {
		if (fscanf(f, "%u", &target) != 1)
			target = ~0U;
		fclose(f);
	}
	for (unsigned i = 0; i < dev->n_workers; i++) {
		struct wgt_worker *w = &dev->workers[i];
		bool want = i == target, had = atomic_load_explicit(&w->test_stall, memory_order_relaxed);
		uint64_t one = 1;

		if (want == had)
			continue;
		atomic_store_explicit(&w->test_stall, want, memory_order_relaxed);
		/* Wake it, so that an idle worker sees the flag. */
		if (write(w->efd, &one, sizeof(one)) != sizeof(one))
			wgt_warn("test hook: cannot wake worker %u", i);
	}
}
#endif

static void heartbeat_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct wgt_metrics *m = wgt_container_of(w, struct wgt_metrics, heartbeat);

	atomic_store_explicit(&m->ctrl_heartbeat, wgt_now_ns(), memory_order_relaxed);
#ifdef WGT_TEST_HOOKS
	test_stall_poll(m);
#endif
}

/* ---- HTTP, connection threads ---- */

/*
 * Any thread. "ok", or "stuck:" and the threads that showed no progress for
 * WGT_METRICS_STUCK_NS. Returns true when all are alive.
 */
static bool health(struct wgt_metrics *m, struct mbuf *b)
{
	size_t start;

	uint64_t now = wgt_now_ns();
	uint64_t hb = atomic_load_explicit(&m->ctrl_heartbeat, memory_order_relaxed);

	mb_puts(b, "stuck:");
	start = b->len;
	if (now - hb > WGT_METRICS_STUCK_NS)
		mb_printf(b, " control thread (no progress for %.1f s);", (double)(now - hb) / 1e9);
	for (unsigned i = 0; i < m->dev->n_workers; i++) {
		hb = atomic_load_explicit(&m->dev->workers[i].stats.heartbeat, memory_order_relaxed);
		/* Bit 0: asleep in poll() waiting for work, which is alive. */
		if (!(hb & 1) && now > hb && now - hb > WGT_METRICS_STUCK_NS)
			mb_printf(b, " worker %u (no progress for %.1f s);", i,
				  (double)(now - hb) / 1e9);
	}
	if (b->len == start) {
		b->len = 0;
		mb_puts(b, "ok\n");
		return true;
	}
	mb_puts(b, "\n");
	return false;
}

/* Connection thread. Sends body (which the response then owns) with status. */
static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, struct body *body,
			     const char *type)
{
	struct MHD_IoVec iov[1 + FAM_COUNT];
	struct MHD_Response *resp;
	enum MHD_Result ret;
	unsigned n = 0;

	if (!body) {
		/* Out of memory for the text: the status alone. */
		resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
		if (!resp)
			return MHD_NO;
		ret = MHD_queue_response(c, status == 200 ? 500 : status, resp);
		MHD_destroy_response(resp);
		return ret;
	}
	for (unsigned i = 0; body && i < body->n && n < 1 + FAM_COUNT; i++)
		if (body->part[i].len)
			iov[n++] = (struct MHD_IoVec){ body->part[i].p, body->part[i].len };
	resp = MHD_create_response_from_iovec(iov, n, body_free, body);
	if (!resp) {
		body_free(body);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	ret = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result reply_text(struct MHD_Connection *c, unsigned status, const char *text)
{
	struct mbuf b = { 0 }, *parts[1] = { &b };

	mb_puts(&b, text);
	return reply(c, status, body_take(parts, 1), "text/plain; charset=utf-8");
}

/* Connection thread. Queues a request for the control thread and waits for its answer. */
static enum MHD_Result ask_control(struct wgt_metrics *m, struct MHD_Connection *c,
				   enum req_kind kind)
{
	struct request *req = calloc(1, sizeof(*req));
	struct timespec deadline;
	struct request **pp;
	struct body *body;
	unsigned status;

	if (!req)
		return reply_text(c, 500, "out of memory\n");
	req->kind = kind;
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += RENDER_WAIT_NS / WGT_NSEC_PER_SEC;
	pthread_mutex_lock(&m->mu);
	if (m->stopping || m->queued >= MAX_QUEUED) {
		pthread_mutex_unlock(&m->mu);
		free(req);
		return reply_text(c, 503, "busy\n");
	}
	for (pp = &m->queue; *pp; pp = &(*pp)->next)
		;
	*pp = req;
	m->queued++;
	ev_async_send(m->dev->loop, &m->async);
	/* wgt_metrics_stop() answers every waiter, so done comes, or the deadline. */
	while (!req->done)
		if (pthread_cond_timedwait(&m->cond, &m->mu, &deadline) == ETIMEDOUT)
			break;
	if (!req->done) {
		/* The control thread frees it when it gets to it (or at stop). */
		req->abandoned = true;
		pthread_mutex_unlock(&m->mu);
		return reply_text(c, 503, "control thread not responding\n");
	}
	pthread_mutex_unlock(&m->mu);
	status = req->status;
	body = req->body;
	free(req);
	if (!body)
		return reply_text(c, status, status == 503 ? "stopping\n" : "out of memory\n");
	return reply(c, status, body,
		     kind == REQ_METRICS && status == 200 ? CONTENT_TYPE : "text/plain; charset=utf-8");
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
			      const char *method, const char *version, const char *upload_data,
			      size_t *upload_data_size, void **con_cls)
{
	struct wgt_metrics *m = cls;

	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
		return reply_text(c, 405, "method not allowed\n");
	if (!strcmp(url, "/metrics"))
		return ask_control(m, c, REQ_METRICS);
	if (!strcmp(url, "/readyz"))
		return ask_control(m, c, REQ_READYZ);
	if (!strcmp(url, "/healthz")) {
		struct mbuf b = { 0 }, *parts[1] = { &b };
		bool ok = health(m, &b);

		return reply(c, ok ? 200 : 503, body_take(parts, 1), "text/plain; charset=utf-8");
	}
	return reply_text(c, 404, "not found: /metrics, /healthz and /readyz are\n");
}

/* ---- lifecycle ---- */

int wgt_metrics_parse_listen(const char *s, union wgt_sockaddr *ret)
{
	union wgt_sockaddr a;
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon, *port_text;
	unsigned long port;
	char *end;
	size_t n;

	memset(&a, 0, sizeof(a));
	colon = s[0] == '[' ? strstr(s, "]:") : strrchr(s, ':');
	if (!colon)
		return -EINVAL;
	port_text = colon + (s[0] == '[' ? 2 : 1);
	errno = 0;
	port = strtoul(port_text, &end, 10);
	if (errno || end == port_text || *end || port_text[0] == '-' || port < 1 || port > 65535)
		return -EINVAL;
	n = (size_t)(colon - s);
	if (s[0] == '[') {
		if (n - 1 >= sizeof(host))
			return -EINVAL;
		memcpy(host, s + 1, n - 1);
		host[n - 1] = 0;
		if (inet_pton(AF_INET6, host, &a.in6.sin6_addr) != 1)
			return -EINVAL;
		a.in6.sin6_family = AF_INET6;
		a.in6.sin6_port = htons((uint16_t)port);
	} else if (n) {
		if (n >= sizeof(host))
			return -EINVAL;
		memcpy(host, s, n);
		host[n] = 0;
		if (inet_pton(AF_INET, host, &a.in4.sin_addr) != 1)
			return -EINVAL;
		a.in4.sin_family = AF_INET;
		a.in4.sin_port = htons((uint16_t)port);
	} else {
		/* ":PORT": every address, v6 and v4; the port rides in the IPv4 slot. */
		a.in4.sin_family = AF_UNSPEC;
		a.in4.sin_port = htons((uint16_t)port);
	}
	*ret = a;
	return 0;
}

static struct MHD_Daemon *listen_on(struct wgt_metrics *m, const union wgt_sockaddr *a)
{
	unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD;
	uint16_t port = ntohs(a->in4.sin_port);
	struct MHD_Daemon *d;

	if (a->sa.sa_family == AF_UNSPEC) {
		/* Every address: dual stack, or IPv4 alone where IPv6 is absent. */
		d = MHD_start_daemon(flags | MHD_USE_DUAL_STACK, port, NULL, NULL, handle, m,
				     MHD_OPTION_CONNECTION_LIMIT, (unsigned)MAX_CONNECTIONS,
				     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONNECTION_TIMEOUT_S,
				     MHD_OPTION_LISTENING_ADDRESS_REUSE, 1U, MHD_OPTION_END);
		if (d)
			return d;
		return MHD_start_daemon(flags, port, NULL, NULL, handle, m,
					MHD_OPTION_CONNECTION_LIMIT, (unsigned)MAX_CONNECTIONS,
					MHD_OPTION_CONNECTION_TIMEOUT,
					(unsigned)CONNECTION_TIMEOUT_S,
					MHD_OPTION_LISTENING_ADDRESS_REUSE, 1U, MHD_OPTION_END);
	}
	if (a->sa.sa_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	return MHD_start_daemon(flags, port, NULL, NULL, handle, m,
				MHD_OPTION_SOCK_ADDR, &a->sa,
				MHD_OPTION_CONNECTION_LIMIT, (unsigned)MAX_CONNECTIONS,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONNECTION_TIMEOUT_S,
				MHD_OPTION_LISTENING_ADDRESS_REUSE, 1U, MHD_OPTION_END);
}

/* Control thread, before the loop runs. */
int wgt_metrics_start(struct wgt_device *dev, const struct wgt_metrics_config *cfg,
		      struct wgt_metrics **ret)
{
	struct wgt_metrics *m;
	union wgt_sockaddr a;
	pthread_condattr_t ca;
	sigset_t all, old;
	int r;

	r = wgt_metrics_parse_listen(cfg->listen, &a);
	if (r) {
		wgt_err("--metrics-listen: '%s' is not ADDR:PORT, [ADDR]:PORT or :PORT", cfg->listen);
		return r;
	}
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->dev = dev;
	m->peer_limit = cfg->peer_limit;
	pthread_mutex_init(&m->mu, NULL);
	/* The waiters' deadlines are monotonic, as every clock of ours. */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&m->cond, &ca);
	pthread_condattr_destroy(&ca);
	atomic_store_explicit(&m->ctrl_heartbeat, wgt_now_ns(), memory_order_relaxed);
#ifdef WGT_TEST_HOOKS
	m->stall_file = getenv("WGATE_TEST_STALL_FILE");
	if (m->stall_file)
		wgt_info("test hook: a worker number in %s stalls that worker", m->stall_file);
#endif
	ev_async_init(&m->async, async_cb);
	ev_async_start(dev->loop, &m->async);
	ev_timer_init(&m->chunk, chunk_cb, 0., 0.);
	ev_timer_init(&m->heartbeat, heartbeat_cb, 1., 1.);
	ev_timer_start(dev->loop, &m->heartbeat);

	/* The server's threads take no signals: they all go to the control thread's loop. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	errno = 0;
	m->mhd = listen_on(m, &a);
	r = errno ? -errno : -EADDRNOTAVAIL;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!m->mhd) {
		wgt_err("cannot listen for metrics on %s: %s", cfg->listen, strerror(-r));
		wgt_metrics_stop(m);
		return r;
	}
	wgt_info("%s: metrics on http://%s/metrics (and /healthz, /readyz), series for up to %u peers",
		 dev->ifname, cfg->listen, m->peer_limit);
	dev->metrics = m;
	*ret = m;
	return 0;
}

void wgt_metrics_stop(struct wgt_metrics *m)
{
	struct request *req, *next;

	if (!m)
		return;
	/*
	 * Every waiter gets a 503 at once (a request nobody waits for any more
	 * is freed here); then the server can join the connection threads.
	 */
	pthread_mutex_lock(&m->mu);
	m->stopping = true;
	if (m->active) {
		m->active->next = m->queue;
		m->queue = m->active;
	}
	for (req = m->queue; req; req = next) {
		next = req->next;
		if (req->abandoned) {
			free(req);
		} else {
			req->status = 503;
			req->done = true;
		}
	}
	m->queue = NULL;
	m->active = NULL;
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->mu);
	if (m->mhd)
		MHD_stop_daemon(m->mhd);
	for (unsigned i = 0; i < FAM_COUNT; i++)
		mb_free(&m->r.fam[i]);
	mb_free(&m->r.scratch);
	mb_free(&m->r.head);
	m->r.req = NULL;
	ev_async_stop(m->dev->loop, &m->async);
	ev_timer_stop(m->dev->loop, &m->chunk);
	ev_timer_stop(m->dev->loop, &m->heartbeat);
	m->dev->metrics_cursor = NULL;
	m->dev->metrics = NULL;
	pthread_cond_destroy(&m->cond);
	pthread_mutex_destroy(&m->mu);
	free(m);
}
