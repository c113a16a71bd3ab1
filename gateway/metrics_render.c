/* SPDX-License-Identifier: MIT */
/* The Prometheus text of /metrics, rendered on the control thread in slices; text buffers. */
#include "gateway/metrics_pvt.h"
#include "gateway/uapi_sock.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/allowedips.h"
#include "common/log.h"
#include "crypto/messages.h"
#include "io/tun.h"
#include "gateway/device.h"

#define JOINED_IPS_MAX 4096   /* the allowed_ips label of a peer, in bytes */

/* ---- text buffers ---- */

static bool reserve(struct wgt_text *b, size_t n)
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

void wgt_text_put(struct wgt_text *b, const char *s, size_t n)
{
	if (!reserve(b, n))
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = 0;
}

void wgt_text_puts(struct wgt_text *b, const char *s)
{
	wgt_text_put(b, s, strlen(s));
}

void wgt_text_printf(struct wgt_text *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!reserve(b, 128))
		return;
	va_start(ap, fmt);
	n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->failed = true;
		return;
	}
	if ((size_t)n >= b->cap - b->len) {
		if (!reserve(b, (size_t)n))
			return;
		va_start(ap, fmt);
		vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
	}
	b->len += (size_t)n;
}

/* A label value as the exposition format wants it: backslash, quote and newline escaped. */
void wgt_text_label(struct wgt_text *b, const char *s)
{
	for (const char *run = s;; s++) {
		if (*s && *s != '\\' && *s != '"' && *s != '\n')
			continue;
		wgt_text_put(b, run, (size_t)(s - run));
		if (!*s)
			return;
		wgt_text_put(b, *s == '\n' ? "\\n" : *s == '"' ? "\\\"" : "\\\\", 2);
		run = s + 1;
	}
}

void wgt_text_free(struct wgt_text *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

void wgt_metrics_body_free(void *arg)
{
	struct wgt_metrics_body *b = arg;

	if (!b)
		return;
	for (unsigned i = 0; i < b->n; i++)
		wgt_text_free(&b->part[i]);
	free(b);
}

/* A body of n parts moved out of src (which is left empty), or NULL on failure. */
struct wgt_metrics_body *wgt_metrics_body_take(struct wgt_text *const *src, unsigned n)
{
	struct wgt_metrics_body *b = malloc(sizeof(*b) + n * sizeof(b->part[0]));
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
		wgt_metrics_body_free(b);
		for (unsigned i = 0; i < n; i++)
			wgt_text_free(src[i]);
		return NULL;
	}
	return b;
}

static void family_header(struct wgt_text *b, const char *name, const char *type,
			  const char *help)
{
	wgt_text_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* ---- formatting ---- */

void wgt_metrics_key_base64(const uint8_t key[WGT_KEY_LEN], char out[45])
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
	struct wgt_text *b = ctx;
	char host[INET6_ADDRSTRLEN];

	if (inet_ntop(family, addr, host, sizeof(host)))
		wgt_text_printf(b, "%s/%u,", host, cidr);
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

static void render_device(struct wgt_metrics_render *r, struct wgt_text *b);

/* Control thread only. Starts a render: device-wide series, family headers, the cursor. */
void wgt_metrics_render_begin(struct wgt_metrics_render *r)
{
	static const char *const fam[WGT_METRICS_FAM_COUNT][3] = {
		[WGT_METRICS_FAM_PEER_INFO] = { "wireguard_peer_info", "gauge",
			"Metadata about a peer: its endpoint and configured name." },
		[WGT_METRICS_FAM_PEER_ALLOWED_IPS] = { "wireguard_peer_allowed_ips_info", "gauge",
			"One series per prefix a peer's allowed IPs hold." },
		[WGT_METRICS_FAM_PEER_RX] = { "wireguard_peer_receive_bytes_total", "counter",
			"Bytes received from a peer (as wg show transfer)." },
		[WGT_METRICS_FAM_PEER_TX] = { "wireguard_peer_transmit_bytes_total", "counter",
			"Bytes sent to a peer (as wg show transfer)." },
		[WGT_METRICS_FAM_PEER_HANDSHAKE] = { "wireguard_peer_last_handshake_seconds", "gauge",
			"UNIX time of a peer's latest handshake; 0: none yet." },
		[WGT_METRICS_FAM_MF_SENT] = { "wireguard_sent_bytes_total", "counter",
			"Bytes sent to the peer (prometheus_wireguard_exporter's name)." },
		[WGT_METRICS_FAM_MF_RECEIVED] = { "wireguard_received_bytes_total", "counter",
			"Bytes received from the peer (prometheus_wireguard_exporter's name)." },
		[WGT_METRICS_FAM_MF_HANDSHAKE] = { "wireguard_latest_handshake_seconds", "gauge",
			"UNIX time of the latest handshake (prometheus_wireguard_exporter's name)." },
	};

	wgt_metrics_render_discard(r);
	r->active = true;
	r->start = wgt_now_ns();
	render_device(r, &r->head);
	for (unsigned i = 0; i < WGT_METRICS_FAM_COUNT; i++)
		family_header(&r->fam[i], fam[i][0], fam[i][1], fam[i][2]);
	r->dev->metrics_cursor = r->dev->peers_head;
}

/* One peer's series. p->name is read with the acquire of wgt_peer_name (A1 in device.h). */
static void render_peer(struct wgt_metrics_render *r, struct wgt_peer *peer, uint64_t rx,
			uint64_t tx)
{
	struct wgt_device *dev = r->dev;
	const char *name = atomic_load_explicit(&peer->name, memory_order_acquire);
	char key[45], ep_text[64];
	struct wgt_endpoint ep;
	struct wgt_text *b;
	char *ips, *p;
	size_t ips_len;

	wgt_metrics_key_base64(peer->remote_static, key);
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

	b = &r->fam[WGT_METRICS_FAM_PEER_INFO];
	wgt_text_puts(b, "wireguard_peer_info{device=\"");
	wgt_text_label(b, dev->ifname);
	wgt_text_printf(b, "\",public_key=\"%s\",endpoint=\"%s\",name=\"", key, ep_text);
	wgt_text_label(b, name ? name : "");
	wgt_text_puts(b, "\"} 1\n");

	b = &r->fam[WGT_METRICS_FAM_PEER_ALLOWED_IPS];
	for (p = ips; ips_len && p;) {
		char *comma = strchr(p, ',');

		wgt_text_puts(b, "wireguard_peer_allowed_ips_info{device=\"");
		wgt_text_label(b, dev->ifname);
		wgt_text_printf(b, "\",public_key=\"%s\",allowed_ips=\"", key);
		wgt_text_put(b, p, comma ? (size_t)(comma - p) : strlen(p));
		wgt_text_puts(b, "\"} 1\n");
		p = comma ? comma + 1 : NULL;
	}

	/* Counters and handshake time, labelled device, public_key[, name]. */
	for (unsigned k = 0; k < 3; k++) {
		static const char *const metric[3] = {
			"wireguard_peer_receive_bytes_total{device=\"",
			"wireguard_peer_transmit_bytes_total{device=\"",
			"wireguard_peer_last_handshake_seconds{device=\"",
		};
		unsigned long long v = k == 0 ? rx : k == 1 ? tx :
				       (unsigned long long)(peer->last_handshake_ns / WGT_NSEC_PER_SEC);

		b = &r->fam[WGT_METRICS_FAM_PEER_RX + k];
		wgt_text_puts(b, metric[k]);
		wgt_text_label(b, dev->ifname);
		wgt_text_printf(b, "\",public_key=\"%s", key);
		if (name) {
			wgt_text_puts(b, "\",name=\"");
			wgt_text_label(b, name);
		}
		wgt_text_printf(b, "\"} %llu\n", v);
	}

	/* prometheus_wireguard_exporter's series (Grafana dashboard 12177). */
	if (ips_len > JOINED_IPS_MAX) {
		/* Cut at the last prefix boundary that fits; the info series list them all. */
		size_t k = JOINED_IPS_MAX;

		while (k && ips[k] != ',')
			k--;
		ips[k ? k : JOINED_IPS_MAX] = 0;
	}
	for (unsigned f = WGT_METRICS_FAM_MF_SENT; f <= WGT_METRICS_FAM_MF_HANDSHAKE; f++) {
		b = &r->fam[f];
		wgt_text_puts(b, f == WGT_METRICS_FAM_MF_SENT ? "wireguard_sent_bytes_total{interface=\"" :
			   f == WGT_METRICS_FAM_MF_RECEIVED ? "wireguard_received_bytes_total{interface=\"" :
			   "wireguard_latest_handshake_seconds{interface=\"");
		wgt_text_label(b, dev->ifname);
		wgt_text_printf(b, "\",public_key=\"%s\",allowed_ips=\"%s\"", key, ips);
		if (name) {
			wgt_text_puts(b, ",friendly_name=\"");
			wgt_text_label(b, name);
			wgt_text_puts(b, "\"");
		}
		wgt_text_printf(b, "} %llu\n",
			  f == WGT_METRICS_FAM_MF_SENT ? (unsigned long long)tx :
			  f == WGT_METRICS_FAM_MF_RECEIVED ? (unsigned long long)rx :
			  (unsigned long long)(peer->last_handshake_ns / WGT_NSEC_PER_SEC));
	}
}

/*
 * Control thread only. Walks peers from the cursor for about
 * WGT_METRICS_CHUNK_NS. Returns true when the list is done.
 */
bool wgt_metrics_render_step(struct wgt_metrics_render *r)
{
	struct wgt_device *dev = r->dev;
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
		if (r->rendered < r->peer_limit) {
			render_peer(r, peer, rx, tx);
			r->rendered++;
		}
		if (!(n & 63) && wgt_now_ns() - t0 >= WGT_METRICS_CHUNK_NS)
			break;
	}
	return !dev->metrics_cursor;
}

static void worker_series(struct wgt_text *b, const struct wgt_device *dev, const char *name,
			  const char *type, const char *help, const char *dir, size_t off)
{
	family_header(b, name, type, help);
	for (unsigned i = 0; i < dev->n_workers; i++) {
		const _Atomic uint64_t *c =
			(const _Atomic uint64_t *)((const char *)&dev->workers[i].stats + off);
		unsigned long long v = atomic_load_explicit(c, memory_order_relaxed);

		if (dir)
			wgt_text_printf(b, "%s{worker=\"%u\",direction=\"%s\"} %llu\n", name, i, dir, v);
		else
			wgt_text_printf(b, "%s{worker=\"%u\"} %llu\n", name, i, v);
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
static void render_device(struct wgt_metrics_render *r, struct wgt_text *b)
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
		{ "handshake_source_budget", STAT_OFF(hs_limited) },
		{ "handshake_no_cookie", STAT_OFF(hs_dropped) },
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
	struct wgt_device *dev = r->dev;
	const struct wgt_handshake_stats *hs = &dev->hs;
	uint64_t now = wgt_now_ns();
	char key[45] = "";

	if (dev->identity.has_identity)
		wgt_metrics_key_base64(dev->identity.static_public, key);
	family_header(b, "wgate_build_info", "gauge", "The running wgate's version.");
	wgt_text_printf(b, "wgate_build_info{version=\"%s\"} 1\n", WGT_VERSION);
	family_header(b, "wireguard_device_info", "gauge", "Metadata about the device.");
	wgt_text_puts(b, "wireguard_device_info{device=\"");
	wgt_text_label(b, dev->ifname);
	wgt_text_printf(b, "\",public_key=\"%s\"} 1\n", key);

	family_header(b, "wgate_handshakes_sent_total", "counter", "Handshake messages sent.");
	wgt_text_printf(b, "wgate_handshakes_sent_total{message=\"initiation\"} %llu\n"
		  "wgate_handshakes_sent_total{message=\"response\"} %llu\n",
		  (unsigned long long)hs->init_sent, (unsigned long long)hs->resp_sent);
	family_header(b, "wgate_handshakes_received_total", "counter",
		  "Handshake messages received (before any check).");
	wgt_text_printf(b, "wgate_handshakes_received_total{message=\"initiation\"} %llu\n"
		  "wgate_handshakes_received_total{message=\"response\"} %llu\n"
		  "wgate_handshakes_received_total{message=\"cookie_reply\"} %llu\n",
		  (unsigned long long)hs->init_received, (unsigned long long)hs->resp_received,
		  (unsigned long long)hs->cookie_received);
	family_header(b, "wgate_handshakes_completed_total", "counter",
		  "Sessions established: as initiator (response consumed) or responder (first data).");
	wgt_text_printf(b, "wgate_handshakes_completed_total{role=\"initiator\"} %llu\n"
		  "wgate_handshakes_completed_total{role=\"responder\"} %llu\n",
		  (unsigned long long)hs->completed_initiator,
		  (unsigned long long)hs->completed_responder);
	family_header(b, "wgate_handshakes_failed_total", "counter",
		  "Handshake messages that led nowhere, by reason.");
	/* A bad mac1 under load is dropped by a worker (hs_admit.c) before the control thread. */
	for (unsigned i = 0; i < WGT_HS_FAIL_COUNT; i++)
		wgt_text_printf(b, "wgate_handshakes_failed_total{reason=\"%s\"} %llu\n", fail[i],
			  (unsigned long long)(hs->failed[i] +
					       (i == WGT_HS_FAIL_BAD_MAC ? sum_stat(dev, STAT_OFF(hs_bad_mac))
									 : 0)));
	family_header(b, "wgate_cookie_replies_sent_total", "counter",
		  "Cookie replies sent under load instead of a handshake.");
	wgt_text_printf(b, "wgate_cookie_replies_sent_total %llu\n",
		  (unsigned long long)(dev->under_load_cookies + sum_stat(dev, STAT_OFF(hs_cookies))));
	family_header(b, "wgate_under_load", "gauge",
		  "1 while the handshake backlog is deep (and for a second after): cookies first.");
	wgt_text_printf(b, "wgate_under_load %d\n",
		  dev->last_under_load && now - dev->last_under_load < WGT_NSEC_PER_SEC);

	family_header(b, "wgate_drops_total", "counter", "Packets dropped, by reason.");
	for (size_t i = 0; i < sizeof(drops) / sizeof(drops[0]); i++)
		wgt_text_printf(b, "wgate_drops_total{reason=\"%s\"} %llu\n", drops[i].reason,
			  (unsigned long long)sum_stat(dev, drops[i].off));
	wgt_text_printf(b, "wgate_drops_total{reason=\"staging_overflow\"} %llu\n",
		  (unsigned long long)dev->staged_drops);
	family_header(b, "wgate_peer_cap_hits_total", "counter",
		  "Peers refused because the device holds the most it may.");
	wgt_text_printf(b, "wgate_peer_cap_hits_total %llu\n", (unsigned long long)dev->peers_cap_hits);
	family_header(b, "wgate_peer_add_failures_total", "counter",
		  "New peers a UAPI set could not build (no memory, cap): the set failed, nothing kept.");
	wgt_text_printf(b, "wgate_peer_add_failures_total %llu\n",
		  (unsigned long long)dev->peer_add_failures);
	family_header(b, "wgate_peers_with_session_state", "gauge",
		  "Peers holding session state (a handshake in the last 9 minutes, or one under way).");
	wgt_text_printf(b, "wgate_peers_with_session_state %llu\n",
		  (unsigned long long)dev->n_sessions);
	family_header(b, "wgate_session_state_alloc_failures_total", "counter",
		  "Handshakes dropped because a peer's session state could not be allocated.");
	wgt_text_printf(b, "wgate_session_state_alloc_failures_total %llu\n",
		  (unsigned long long)dev->session_alloc_failures);
	{
		/* Workers add to the total first: read it last, and never let "other" wrap. */
		uint64_t again = sum_stat(dev, STAT_OFF(tx_send_eagain)) + dev->ctrl_send_eagain;
		uint64_t nobufs = sum_stat(dev, STAT_OFF(tx_send_enobufs)) + dev->ctrl_send_enobufs;
		uint64_t all = sum_stat(dev, STAT_OFF(tx_send_errors)) + dev->ctrl_send_errors;
		uint64_t other = all > again + nobufs ? all - again - nobufs : 0;

		family_header(b, "wgate_udp_send_errors_total", "counter",
			  "UDP sends that failed, data and handshakes, by errno: EAGAIN (socket "
			  "buffer still full after the retries), ENOBUFS, other.");
		wgt_text_printf(b, "wgate_udp_send_errors_total{errno=\"EAGAIN\"} %llu\n"
			  "wgate_udp_send_errors_total{errno=\"ENOBUFS\"} %llu\n"
			  "wgate_udp_send_errors_total{errno=\"other\"} %llu\n",
			  (unsigned long long)again, (unsigned long long)nobufs,
			  (unsigned long long)other);
	}

	family_header(b, "wgate_worker_packets_total", "counter", "Data packets per worker.");
	for (unsigned i = 0; i < dev->n_workers; i++) {
		const struct wgt_worker_stats *s = &dev->workers[i].stats;

		wgt_text_printf(b, "wgate_worker_packets_total{worker=\"%u\",direction=\"rx\"} %llu\n"
			  "wgate_worker_packets_total{worker=\"%u\",direction=\"tx\"} %llu\n", i,
			  (unsigned long long)atomic_load_explicit(&s->rx_packets, memory_order_relaxed),
			  i,
			  (unsigned long long)atomic_load_explicit(&s->tx_packets, memory_order_relaxed));
	}
	family_header(b, "wgate_worker_bytes_total", "counter",
		  "Data bytes per worker: decrypted payload received, plaintext sent.");
	for (unsigned i = 0; i < dev->n_workers; i++) {
		const struct wgt_worker_stats *s = &dev->workers[i].stats;

		wgt_text_printf(b, "wgate_worker_bytes_total{worker=\"%u\",direction=\"rx\"} %llu\n"
			  "wgate_worker_bytes_total{worker=\"%u\",direction=\"tx\"} %llu\n", i,
			  (unsigned long long)atomic_load_explicit(&s->rx_bytes, memory_order_relaxed), i,
			  (unsigned long long)atomic_load_explicit(&s->tx_bytes, memory_order_relaxed));
	}
	family_header(b, "wgate_worker_batches_total", "counter",
		  "Batches per worker: passes that read the TUN queue, datagram batches received.");
	for (unsigned i = 0; i < dev->n_workers; i++) {
		const struct wgt_worker_stats *s = &dev->workers[i].stats;

		wgt_text_printf(b, "wgate_worker_batches_total{worker=\"%u\",direction=\"rx\"} %llu\n"
			  "wgate_worker_batches_total{worker=\"%u\",direction=\"tx\"} %llu\n", i,
			  (unsigned long long)atomic_load_explicit(&s->rx_batches, memory_order_relaxed),
			  i,
			  (unsigned long long)atomic_load_explicit(&s->tx_batches, memory_order_relaxed));
	}
	family_header(b, "wgate_worker_busy_seconds_total", "counter",
		  "Time a worker spent outside poll() and naps (busy polling counts as busy).");
	for (unsigned i = 0; i < dev->n_workers; i++)
		wgt_text_printf(b, "wgate_worker_busy_seconds_total{worker=\"%u\"} %.6f\n", i,
			  (double)atomic_load_explicit(&dev->workers[i].stats.busy_ns,
						       memory_order_relaxed) / 1e9);
	worker_series(b, dev, "wgate_worker_tun_writes_total", "counter",
		      "TUN writes per worker (a coalesced packet counts once).", NULL,
		      STAT_OFF(tun_writes));

	family_header(b, "wgate_offload_active", "gauge", "Offloads in use (1) or not (0).");
	wgt_text_printf(b, "wgate_offload_active{offload=\"tun_csum\"} %d\n"
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
	family_header(b, "wgate_config_reloads_total", "counter", "Config file applied again.");
	wgt_text_printf(b, "wgate_config_reloads_total %llu\n", (unsigned long long)dev->conf_reloads);
	family_header(b, "wgate_config_reload_failures_total", "counter",
		  "Config files refused; the running configuration stayed.");
	wgt_text_printf(b, "wgate_config_reload_failures_total %llu\n",
		  (unsigned long long)dev->conf_reload_failures);
	if (dev->uapi) {
		struct wgt_uapi_server_stats st;

		wgt_uapi_server_stats(dev->uapi, &st);
		family_header(b, "wgate_uapi_connections_closed_total", "counter",
			  "UAPI connections refused or cut, by reason.");
		wgt_text_printf(b,
			  "wgate_uapi_connections_closed_total{reason=\"connection_cap\"} %llu\n"
			  "wgate_uapi_connections_closed_total{reason=\"not_root_or_owner\"} %llu\n"
			  "wgate_uapi_connections_closed_total{reason=\"oversize\"} %llu\n"
			  "wgate_uapi_connections_closed_total{reason=\"set_budget\"} %llu\n"
			  "wgate_uapi_connections_closed_total{reason=\"idle_deadline\"} %llu\n"
			  "wgate_uapi_connections_closed_total{reason=\"request_deadline\"} %llu\n",
			  (unsigned long long)st.refused_cap, (unsigned long long)st.refused_cred,
			  (unsigned long long)st.cut_oversize, (unsigned long long)st.cut_budget,
			  (unsigned long long)st.cut_idle, (unsigned long long)st.cut_request);
		family_header(b, "wgate_uapi_sets_total", "counter", "UAPI set requests, by result.");
		wgt_text_printf(b, "wgate_uapi_sets_total{result=\"ok\"} %llu\n"
			  "wgate_uapi_sets_total{result=\"failed\"} %llu\n",
			  (unsigned long long)st.sets_ok, (unsigned long long)st.sets_failed);
	}
	family_header(b, "wgate_metrics_render_seconds", "gauge",
		  "Time the previous /metrics took to render on the control thread.");
	wgt_text_printf(b, "wgate_metrics_render_seconds %.6f\n", (double)r->last_ns / 1e9);
}

/* After the peers: what needed all of them. */
static void render_tail(struct wgt_metrics_render *r, struct wgt_text *b)
{

	family_header(b, "wgate_peers", "gauge", "Peers configured.");
	wgt_text_printf(b, "wgate_peers %zu\n", r->seen);
	family_header(b, "wgate_peers_with_session", "gauge",
		  "Peers with a current session that may still send.");
	wgt_text_printf(b, "wgate_peers_with_session %zu\n", r->with_session);
	family_header(b, "wgate_peers_receive_bytes_total", "counter", "Bytes received from all peers.");
	wgt_text_printf(b, "wgate_peers_receive_bytes_total %llu\n", (unsigned long long)r->rx);
	family_header(b, "wgate_peers_transmit_bytes_total", "counter", "Bytes sent to all peers.");
	wgt_text_printf(b, "wgate_peers_transmit_bytes_total %llu\n", (unsigned long long)r->tx);
	family_header(b, "wgate_metrics_peers_omitted", "gauge",
		  "Peers beyond --metrics-peer-limit: in the sums only, without series of their own.");
	wgt_text_printf(b, "wgate_metrics_peers_omitted %zu\n", r->seen - r->rendered);
}

/* Control thread. Hands a finished request back to its waiter (or frees an abandoned one). */
/* Control thread only. Ends a render: its body, or NULL when memory ran out. */
struct wgt_metrics_body *wgt_metrics_render_end(struct wgt_metrics_render *r)
{
	struct wgt_text *parts[1 + WGT_METRICS_FAM_COUNT];
	struct wgt_metrics_body *body;

	render_tail(r, &r->head);
	parts[0] = &r->head;
	for (unsigned i = 0; i < WGT_METRICS_FAM_COUNT; i++)
		parts[1 + i] = &r->fam[i];
	body = wgt_metrics_body_take(parts, 1 + WGT_METRICS_FAM_COUNT);
	r->last_ns = wgt_now_ns() - r->start;
	wgt_dbg("metrics: %zu peers (%zu with series) in %.3f ms", r->seen, r->rendered,
		(double)r->last_ns / 1e6);
	if (!body)
		wgt_warn("metrics: out of memory while rendering");
	wgt_metrics_render_discard(r);
	return body;
}

/* Control thread only. Drops a render's buffers (none in progress: nothing to do). */
void wgt_metrics_render_discard(struct wgt_metrics_render *r)
{
	for (unsigned i = 0; i < WGT_METRICS_FAM_COUNT; i++)
		wgt_text_free(&r->fam[i]);
	wgt_text_free(&r->scratch);
	wgt_text_free(&r->head);
	if (r->active)
		r->dev->metrics_cursor = NULL;
	r->active = false;
	r->start = 0;
	r->rx = r->tx = 0;
	r->seen = r->rendered = r->with_session = 0;
}
