/* SPDX-License-Identifier: MIT */
/* The threads' heartbeats, read by /healthz and the systemd watchdog; the test builds' stall hook. */
#include "gateway/health.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/compiler.h"
#include "common/log.h"
#include "gateway/device.h"
#include "gateway/test_hooks.h"

#ifdef WGT_TEST_HOOKS
/* Test builds: the file named by WGATE_TEST_STALL_FILE holds a worker number to stall. */
static void test_stall_poll(struct wgt_device *dev)
{
	unsigned target = ~0U;
	FILE *f;

	if (!dev->test_stall_file)
		return;
	f = fopen(dev->test_stall_file, "re");
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

static void tick_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct wgt_device *dev = wgt_container_of(t, struct wgt_device, health_tick);

	atomic_store_explicit(&dev->ctrl_heartbeat, wgt_now_ns(), memory_order_relaxed);
#ifdef WGT_TEST_HOOKS
	test_stall_poll(dev);
	wgt_test_hooks_tick(dev);
#endif
}

/* Control thread only. */
void wgt_health_start(struct wgt_device *dev)
{
	atomic_store_explicit(&dev->ctrl_heartbeat, wgt_now_ns(), memory_order_relaxed);
#ifdef WGT_TEST_HOOKS
	dev->test_stall_file = getenv("WGATE_TEST_STALL_FILE");
	if (dev->test_stall_file)
		wgt_info("test hook: a worker number in %s stalls that worker", dev->test_stall_file);
	wgt_test_hooks_start(dev);
#endif
	ev_timer_init(&dev->health_tick, tick_cb, 1., 1.);
	ev_timer_start(dev->loop, &dev->health_tick);
}

/* Control thread only. Accepts a device whose heartbeat never started. */
void wgt_health_stop(struct wgt_device *dev)
{
	ev_timer_stop(dev->loop, &dev->health_tick);
}

/* Appends to buf (NULL: nothing), cut at len, always terminated. */
static void __attribute__((format(printf, 4, 5)))
appendf(char *buf, size_t len, size_t *pos, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!buf || *pos >= len)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf + *pos, len - *pos, fmt, ap);
	va_end(ap);
	if (n > 0)
		*pos += (size_t)n;
}

/* Any thread: relaxed loads of timestamps, each written by one thread. */
bool wgt_health_check(struct wgt_device *dev, char *buf, size_t len)
{
	uint64_t now = wgt_now_ns();
	uint64_t hb = atomic_load_explicit(&dev->ctrl_heartbeat, memory_order_relaxed);
	size_t pos = 0;
	bool ok = true;

	if (buf && len)
		buf[0] = '\0';
	if (now > hb && now - hb > WGT_HEALTH_STUCK_NS) {
		appendf(buf, len, &pos, "control thread (no progress for %.1f s)",
			(double)(now - hb) / 1e9);
		ok = false;
	}
	for (unsigned i = 0; i < dev->n_workers; i++) {
		hb = atomic_load_explicit(&dev->workers[i].stats.heartbeat, memory_order_relaxed);
		/* Bit 0: asleep in poll() waiting for work, which is alive. */
		if (!(hb & 1) && now > hb && now - hb > WGT_HEALTH_STUCK_NS) {
			appendf(buf, len, &pos, "%sworker %u (no progress for %.1f s)",
				pos ? "; " : "", i, (double)(now - hb) / 1e9);
			ok = false;
		}
	}
	return ok;
}
