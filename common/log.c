/* SPDX-License-Identifier: MIT */
/* Leveled logging to stderr. */
#include "common/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static enum wgt_log_level log_level = WGT_LOG_INFO;
static enum wgt_log_format log_format = WGT_LOG_TEXT;

static const char *const level_names[] = {
	[WGT_LOG_ERROR] = "error",
	[WGT_LOG_WARN] = "warn",
	[WGT_LOG_INFO] = "info",
	[WGT_LOG_DEBUG] = "debug",
};

void wgt_log_setup(enum wgt_log_level level, enum wgt_log_format format)
{
	static char line_buf[8192];

	log_level = level;
	log_format = format;
	/*
	 * Unbuffered stderr wrote a JSON line in dozens of write()s, which a container
	 * runtime's log driver records as partial lines (and other writers could split).
	 * Line buffered, with vlog() holding the stream's lock, a line is one write.
	 */
	setvbuf(stderr, line_buf, _IOLBF, sizeof(line_buf));
}

int wgt_log_level_parse(const char *name, enum wgt_log_level *ret_level)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (!strcmp(name, level_names[i])) {
			*ret_level = (enum wgt_log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

bool wgt_log_enabled(enum wgt_log_level level)
{
	return level <= log_level;
}

/* JSON string escaping for the message field; control characters become \u00XX. */
static void json_escape(FILE *f, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
}

static void __attribute__((format(printf, 5, 0)))
vlog(enum wgt_log_level level, const char *event, const struct wgt_log_field *fields,
     unsigned n_fields, const char *fmt, va_list ap)
{
	char msg[1024];
	char stamp[64];
	struct timespec ts;
	struct tm tm;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(stamp, sizeof(stamp), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		 tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);

	flockfile(stderr);
	if (log_format == WGT_LOG_JSON) {
		fprintf(stderr, "{\"ts\":\"%s\",\"level\":\"%s\",", stamp, level_names[level]);
		if (event) {
			fputs("\"event\":\"", stderr);
			json_escape(stderr, event);
			fputs("\",", stderr);
		}
		for (unsigned i = 0; i < n_fields; i++) {
			fputc('"', stderr);
			json_escape(stderr, fields[i].key);
			fputs("\":\"", stderr);
			json_escape(stderr, fields[i].value ? fields[i].value : "");
			fputs("\",", stderr);
		}
		fputs("\"msg\":\"", stderr);
		json_escape(stderr, msg);
		fputs("\"}\n", stderr);
	} else {
		fprintf(stderr, "%s %-5s %s\n", stamp, level_names[level], msg);
	}
	funlockfile(stderr);
}

void wgt_log(enum wgt_log_level level, const char *fmt, ...)
{
	va_list ap;

	if (!wgt_log_enabled(level))
		return;
	va_start(ap, fmt);
	vlog(level, NULL, NULL, 0, fmt, ap);
	va_end(ap);
}

void wgt_log_event(enum wgt_log_level level, const char *event, const struct wgt_log_field *fields,
		   unsigned n_fields, const char *fmt, ...)
{
	va_list ap;

	if (!wgt_log_enabled(level))
		return;
	va_start(ap, fmt);
	vlog(level, event, fields, n_fields, fmt, ap);
	va_end(ap);
}

bool wgt_log_ratelimit_ok(struct wgt_log_ratelimit *rl, uint64_t now_ns)
{
	uint64_t start = __atomic_load_n(&rl->window_start, __ATOMIC_RELAXED);

	if (now_ns - start >= rl->interval_ns) {
		__atomic_store_n(&rl->window_start, now_ns, __ATOMIC_RELAXED);
		__atomic_store_n(&rl->printed, 0, __ATOMIC_RELAXED);
	}
	if (__atomic_fetch_add(&rl->printed, 1, __ATOMIC_RELAXED) < rl->burst)
		return true;
	__atomic_fetch_add(&rl->suppressed, 1, __ATOMIC_RELAXED);
	return false;
}
