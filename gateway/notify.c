/* SPDX-License-Identifier: MIT */
/* sd_notify for systemd: readiness, reloads, stopping, and a watchdog fed by the health check. */
#include "gateway/notify.h"

#include <stdint.h>
#include <string.h>

#include <ev.h>
#include <systemd/sd-daemon.h>

#include "common/log.h"
#include "gateway/device.h"
#include "gateway/health.h"

static void status(struct wgt_device *dev, const char *state)
{
	int r = sd_notifyf(0, "%s\nSTATUS=%s: %zu peers, UDP port %u", state, dev->ifname,
			   dev->n_peers, (unsigned)dev->listen_port);

	if (r < 0)
		wgt_warn("sd_notify %s: %s", state, strerror(-r));
}

/* Control thread: WATCHDOG=1 only while every thread shows progress. */
static void watchdog_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct wgt_device *dev = t->data;
	char why[256];

	if (wgt_health_check(dev, why, sizeof(why))) {
		if (dev->watchdog_starved) {
			wgt_info("%s: every thread shows progress again; feeding the watchdog", dev->ifname);
			dev->watchdog_starved = false;
		}
		sd_notify(0, "WATCHDOG=1");
		return;
	}
	if (!dev->watchdog_starved)
		wgt_err("%s: not feeding the systemd watchdog: %s", dev->ifname, why);
	dev->watchdog_starved = true;
}

void wgt_notify_ready(struct wgt_device *dev)
{
	uint64_t usec = 0;

	status(dev, "READY=1");
	/* > 0: a watchdog is asked for, and for this process (WATCHDOG_PID). */
	if (sd_watchdog_enabled(0, &usec) <= 0 || !usec)
		return;
	ev_timer_init(&dev->watchdog, watchdog_cb, 0., (double)usec / 2e6);
	dev->watchdog.data = dev;
	ev_timer_again(dev->loop, &dev->watchdog);
	wgt_info("%s: feeding the systemd watchdog every %.1f s while healthy", dev->ifname,
		 (double)usec / 2e6);
}

void wgt_notify_reloading(void)
{
	sd_notify(0, "RELOADING=1");
}

void wgt_notify_reloaded(struct wgt_device *dev)
{
	status(dev, "READY=1");
}

void wgt_notify_stopping(struct wgt_device *dev)
{
	ev_timer_stop(dev->loop, &dev->watchdog);
	sd_notify(0, "STOPPING=1");
}
