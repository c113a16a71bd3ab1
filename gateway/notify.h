/* SPDX-License-Identifier: MIT */
/*
 * systemd's notification protocol (libsystemd's sd_notify), for Type=notify
 * units: READY=1 once the interface is configured and the threads run,
 * RELOADING=1 / READY=1 around a configuration reload, STOPPING=1 at the end,
 * and WATCHDOG=1 every half WatchdogSec while wgt_health_check() finds every
 * thread alive, so that a stuck worker gets the service restarted. Without
 * $NOTIFY_SOCKET (not under systemd) every call does nothing.
 */
#ifndef WGT_GATEWAY_NOTIFY_H
#define WGT_GATEWAY_NOTIFY_H

struct wgt_device;

/* Control thread only, after wgt_device_start(): READY=1 and the watchdog timer. */
void wgt_notify_ready(struct wgt_device *dev);
/* Control thread only. */
void wgt_notify_reloading(void);
void wgt_notify_reloaded(struct wgt_device *dev);
void wgt_notify_stopping(struct wgt_device *dev);

#endif
