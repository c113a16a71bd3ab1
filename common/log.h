/* SPDX-License-Identifier: MIT */
/* Leveled logging to stderr, text or JSON lines; data-path callers rate limit. */
#ifndef WGT_COMMON_LOG_H
#define WGT_COMMON_LOG_H

#include <stdbool.h>
#include <stdint.h>

enum wgt_log_level {
	WGT_LOG_ERROR,
	WGT_LOG_WARN,
	WGT_LOG_INFO,
	WGT_LOG_DEBUG,
};

enum wgt_log_format {
	WGT_LOG_TEXT,
	WGT_LOG_JSON,
};

void wgt_log_setup(enum wgt_log_level level, enum wgt_log_format format);
/* Returns 0, or -EINVAL for an unknown name. */
int wgt_log_level_parse(const char *name, enum wgt_log_level *ret_level);
bool wgt_log_enabled(enum wgt_log_level level);
void wgt_log(enum wgt_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * An audit event: one line like wgt_log() in the text format; in JSON the
 * event name and every field are keys of their own beside "msg", e.g.
 * {"ts":...,"level":"info","event":"session_established","peer":"alice",
 *  "endpoint":"192.0.2.1:51820","msg":"..."}. Keys are the caller's
 * constants; values are escaped. Never pass key material.
 */
struct wgt_log_field {
	const char *key;
	const char *value;
};
void wgt_log_event(enum wgt_log_level level, const char *event, const struct wgt_log_field *fields,
		   unsigned n_fields, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#define wgt_err(...)   wgt_log(WGT_LOG_ERROR, __VA_ARGS__)
#define wgt_warn(...)  wgt_log(WGT_LOG_WARN, __VA_ARGS__)
#define wgt_info(...)  wgt_log(WGT_LOG_INFO, __VA_ARGS__)
#define wgt_dbg(...)   do { if (wgt_log_enabled(WGT_LOG_DEBUG)) wgt_log(WGT_LOG_DEBUG, __VA_ARGS__); } while (0)

/*
 * Rate limit for data-path logs: at most `burst` messages per `interval_ns`.
 * Any thread; the state is updated with relaxed atomics, so a burst may
 * overshoot by a message or two under contention, which is harmless.
 */
struct wgt_log_ratelimit {
	uint64_t interval_ns;
	uint32_t burst;
	uint64_t window_start;
	uint32_t printed;
	uint64_t suppressed;
};

#define WGT_LOG_RATELIMIT_INIT { .interval_ns = 5000000000ULL, .burst = 10 }

bool wgt_log_ratelimit_ok(struct wgt_log_ratelimit *rl, uint64_t now_ns);

#endif
