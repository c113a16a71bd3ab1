/* SPDX-License-Identifier: MIT */
/* Clocks: monotonic nanoseconds for timers, wall clock for TAI64N and `wg show`. */
#ifndef WGT_COMMON_CLOCK_H
#define WGT_COMMON_CLOCK_H

#include <stdint.h>
#include <time.h>

#define WGT_NSEC_PER_SEC 1000000000ULL
#define WGT_NSEC_PER_MSEC 1000000ULL

static inline uint64_t wgt_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * WGT_NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

static inline void wgt_realtime(struct timespec *ret_ts)
{
	clock_gettime(CLOCK_REALTIME, ret_ts);
}

/* True when `birth + age` lies at or before `now` (all monotonic ns). */
static inline int wgt_has_expired(uint64_t birth, uint64_t age, uint64_t now)
{
	return birth + age <= now;
}

#endif
