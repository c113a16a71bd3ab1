/* SPDX-License-Identifier: MIT */
/* Metrics internals shared by the HTTP side (metrics.c) and the renderer (metrics_render.c). */
#ifndef WGT_GATEWAY_METRICS_PVT_H
#define WGT_GATEWAY_METRICS_PVT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/clock.h"
#include "crypto/noise.h"
#include "gateway/metrics.h"

struct wgt_device;

/* Control-thread time per render slice: the loop serves everything else in between. */
#define WGT_METRICS_CHUNK_NS (1 * WGT_NSEC_PER_MSEC)

/* A growing text buffer; on allocation failure it stops growing and says so. Any thread. */
struct wgt_text {
	char *p;
	size_t len, cap;
	bool failed;
};
void wgt_text_put(struct wgt_text *b, const char *s, size_t n);
void wgt_text_puts(struct wgt_text *b, const char *s);
__attribute__((format(printf, 2, 3)))
void wgt_text_printf(struct wgt_text *b, const char *fmt, ...);
/* A label value as the exposition format wants it: backslash, quote and newline escaped. */
void wgt_text_label(struct wgt_text *b, const char *s);
void wgt_text_free(struct wgt_text *b);

/* An answer's body: text buffers sent one after the other (an iovec, never joined). */
struct wgt_metrics_body {
	unsigned n;
	struct wgt_text part[];
};
/* Any thread. Accepts NULL; shaped as libmicrohttpd's free callback. */
void wgt_metrics_body_free(void *body);
/* Any thread. A body of n parts moved out of src (left empty); NULL if one failed or no memory. */
struct wgt_metrics_body *wgt_metrics_body_take(struct wgt_text *const *src, unsigned n);

/* A public key as `wg` prints it: 44 base64 characters and a NUL. */
void wgt_metrics_key_base64(const uint8_t key[WGT_KEY_LEN], char out[45]);

/* The per-peer metric families, rendered side by side (each must stay together). */
enum {
	WGT_METRICS_FAM_PEER_INFO,
	WGT_METRICS_FAM_PEER_ALLOWED_IPS,
	WGT_METRICS_FAM_PEER_RX,
	WGT_METRICS_FAM_PEER_TX,
	WGT_METRICS_FAM_PEER_HANDSHAKE,
	WGT_METRICS_FAM_MF_SENT,          /* prometheus_wireguard_exporter's names */
	WGT_METRICS_FAM_MF_RECEIVED,
	WGT_METRICS_FAM_MF_HANDSHAKE,
	WGT_METRICS_FAM_COUNT,
};

/* Control thread only: the renderer, and the render in progress when `active`. */
struct wgt_metrics_render {
	struct wgt_device *dev;
	unsigned peer_limit;        /* peers with series of their own */
	uint64_t last_ns;           /* how long the previous render took */

	bool active;
	uint64_t start;
	struct wgt_text head, fam[WGT_METRICS_FAM_COUNT], scratch;
	uint64_t rx, tx;            /* sums over every peer */
	size_t seen, rendered, with_session;
};

/*
 * Control thread only. begin renders the device-wide series and points
 * dev->metrics_cursor at the first peer; step renders peers for about
 * WGT_METRICS_CHUNK_NS and returns true once the list is done; end returns
 * the body (NULL when memory ran out); discard drops a render midway.
 */
void wgt_metrics_render_begin(struct wgt_metrics_render *r);
bool wgt_metrics_render_step(struct wgt_metrics_render *r);
struct wgt_metrics_body *wgt_metrics_render_end(struct wgt_metrics_render *r);
void wgt_metrics_render_discard(struct wgt_metrics_render *r);

#endif
