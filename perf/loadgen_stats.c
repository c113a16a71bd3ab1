/* SPDX-License-Identifier: MIT */
/* wgate-loadgen's figures: handshake latencies, the progress line each second and the summary line. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "common/clock.h"
#include "common/compiler.h"
#include "perf/loadgen_pvt.h"

int lg_stats_init(struct lg_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->lat_cap = 4096;
	st->lat_us = malloc(st->lat_cap * sizeof(*st->lat_us));
	return st->lat_us ? 0 : -ENOMEM;
}

void lg_stats_free(struct lg_stats *st)
{
	free(st->lat_us);
	st->lat_us = NULL;
}

void lg_stats_latency(struct lg_stats *st, uint64_t ns)
{
	uint64_t us = ns / 1000;

	if (st->lat_n == st->lat_cap) {
		uint32_t *n = realloc(st->lat_us, 2 * st->lat_cap * sizeof(*n));

		if (!n)
			return; /* the percentiles lose a sample, nothing else */
		st->lat_us = n;
		st->lat_cap *= 2;
	}
	st->lat_us[st->lat_n++] = (uint32_t)WGT_MIN(us, UINT32_MAX);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of n sorted samples, in ms; -1 without samples. */
static double pct_ms(const uint32_t *sorted, size_t n, unsigned int pct)
{
	size_t rank;

	if (!n)
		return -1;
	rank = (n * pct + 99) / 100;
	return sorted[rank ? rank - 1 : 0] / 1000.0;
}

/* p50 and p99 of samples [from, lat_n); sorts that stretch (it is not needed in order). */
static void percentiles(struct lg_stats *st, size_t from, double *p50, double *p99)
{
	size_t n = st->lat_n - from;

	qsort(st->lat_us + from, n, sizeof(*st->lat_us), cmp_u32);
	*p50 = pct_ms(st->lat_us + from, n, 50);
	*p99 = pct_ms(st->lat_us + from, n, 99);
}

void lg_stats_progress(struct lg_stats *st, uint64_t second, uint64_t elapsed_ns, uint32_t up,
		       uint32_t peers, bool quiet)
{
	double secs = elapsed_ns ? (double)elapsed_ns / 1e9 : 1;
	double hs = (double)(st->hs_done - st->hs_done_prev) / secs;
	double p50, p99;

	st->hs_peak = WGT_MAX(st->hs_peak, (uint64_t)(hs + 0.5));
	percentiles(st, st->lat_second, &p50, &p99);
	if (!quiet)
		fprintf(stderr,
			"loadgen [%4lu s] up %u/%u, %.0f handshakes/s (%lu resent, %lu cookies, %lu failed), "
			"%.0f packets/s out, %.0f in, unanswered %ld, handshake p50 %.2f ms p99 %.2f ms\n",
			(unsigned long)second, up, peers, hs, (unsigned long)st->hs_resent,
			(unsigned long)st->cookies, (unsigned long)st->hs_failed,
			(double)(st->sent - st->sent_prev) / secs,
			(double)(st->received - st->received_prev) / secs,
			(long)(st->sent - st->received - st->abandoned), p50 < 0 ? 0 : p50,
			p99 < 0 ? 0 : p99);
	st->hs_done_prev = st->hs_done;
	st->sent_prev = st->sent;
	st->received_prev = st->received;
	st->lat_second = st->lat_n;
}

int lg_stats_summary(struct lg_stats *st, const struct lg_opts *o, uint32_t up)
{
	uint64_t lost = st->sent - st->received - st->abandoned;
	struct rusage ru;
	double p50, p99;
	int rc = 0;

	percentiles(st, 0, &p50, &p99);
	getrusage(RUSAGE_SELF, &ru);
	fprintf(stderr,
		"loadgen: details: CPU %.2f s user %.2f s system; %lu initiations resent (retries and cookie answers), %lu cookie "
		"replies, %lu keepalives sent, %lu restarts (%lu packets abandoned, %lu data messages "
		"later under a dropped session), %lu initiations "
		"from the gateway ignored, dropped: %lu bad responses, %lu bad cookies, %lu bad data, "
		"%lu unknown; %lu send errors, %lu other errors\n",
		ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6, ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6,
		(unsigned long)st->hs_resent, (unsigned long)st->cookies, (unsigned long)st->keepalives,
		(unsigned long)st->restarts, (unsigned long)st->abandoned,
		(unsigned long)st->dropped_session,
		(unsigned long)st->initiations_in, (unsigned long)st->bad_responses,
		(unsigned long)st->bad_cookies, (unsigned long)st->bad_data, (unsigned long)st->unknown,
		(unsigned long)st->send_errors, (unsigned long)st->errors);
	printf("loadgen: %u sessions, %lu handshakes (%lu failed), %lu packets (%lu lost), "
	       "handshake p50 %.2f ms p99 %.2f ms, %lu handshakes/s\n",
	       up, (unsigned long)st->hs_done, (unsigned long)st->hs_failed, (unsigned long)st->sent,
	       (unsigned long)lost, p50 < 0 ? 0 : p50, p99 < 0 ? 0 : p99,
	       (unsigned long)st->hs_peak);
	fflush(stdout);
	if (up < o->peers) {
		fprintf(stderr, "loadgen: FAIL: %u of %u sessions up at the end\n", up, o->peers);
		rc = -1;
	}
	if (st->hs_failed) {
		fprintf(stderr, "loadgen: FAIL: %lu handshakes failed\n", (unsigned long)st->hs_failed);
		rc = -1;
	}
	if (lost > o->max_loss) {
		fprintf(stderr, "loadgen: FAIL: %lu packets lost (--max-loss %lu)\n",
			(unsigned long)lost, (unsigned long)o->max_loss);
		rc = -1;
	}
	if (st->send_errors || st->errors) {
		fprintf(stderr, "loadgen: FAIL: %lu send errors, %lu other errors\n",
			(unsigned long)st->send_errors, (unsigned long)st->errors);
		rc = -1;
	}
	return rc;
}
