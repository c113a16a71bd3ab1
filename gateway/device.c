/* SPDX-License-Identifier: MIT */
/* Device lifecycle: TUN queues, sockets, workers, the UAPI socket and the control loop. */
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/allowedips.h"
#include "common/log.h"
#include "common/random.h"
#include "common/ratelimiter.h"
#include "common/ring.h"
#include "crypto/aead.h"
#include "io/offload.h"
#include "io/rtnl.h"
#include "io/tun.h"
#include "io/udp.h"
#include "gateway/conf_apply.h"
#include "gateway/device.h"
#include "gateway/health.h"
#include "gateway/uapi_sock.h"

#define PEER_HASH_BUCKETS (1U << 10) /* to start with; peer.c doubles it as peers come */


static void allowedips_defer(void *ptr, void (*fn)(void *ptr), void *ctx)
{
	struct wgt_device *dev = ctx;

	wgt_qsbr_defer(&dev->deferred, fn, ptr);
}

static void ctrl_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	wgt_ctrl_drain_rings(wgt_container_of(w, struct wgt_device, ctrl_io));
}

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	wgt_ctrl_tick(wgt_container_of(w, struct wgt_device, tick));
}

/* Control thread only. Link up: every peer starts; down: every peer stops and forgets its keys. */
static void set_link_state(struct wgt_device *dev, bool up)
{
	if (up == dev->up)
		return;
	dev->up = up;
	wgt_info("%s: link %s", dev->ifname, up ? "up" : "down");
	for (struct wgt_peer *p = dev->peers_head; p; p = p->list_next) {
		if (up) {
			wgt_peer_timers_apply(p, wgt_timers_event(&p->timers, WGT_TIMER_EV_START,
								  wgt_now_ns()));
			wgt_peer_timers_rearm(p);
		} else {
			wgt_peer_stop(p);
		}
	}
}

/* Once a second: the MTU for padding, the rate limiter's garbage, the device still there. */
static void slow_tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct wgt_device *dev = wgt_container_of(w, struct wgt_device, slow_tick);
	unsigned mtu;

	if (!wgt_tun_exists(dev->ifname)) {
		/* Once: a worker's EBADFD (control.c) may have told it first. */
		if (!atomic_exchange_explicit(&dev->gone, true, memory_order_relaxed))
			wgt_info("interface %s is gone, exiting", dev->ifname);
		ev_break(loop, EVBREAK_ALL);
		return;
	}
	if (!wgt_tun_get_mtu(dev->ifname, &mtu))
		atomic_store_explicit(&dev->mtu, mtu, memory_order_relaxed);
	if (dev->link_fd < 0) {
		bool up;

		/* No link monitor: follow the link state once a second. */
		if (!wgt_tun_get_up(dev->ifname, &up))
			set_link_state(dev, up);
	}
	wgt_ratelimiter_gc(dev->ratelimiter, wgt_now_ns());
	wgt_handshake_publish_checker(dev);
}

/* SIGUSR1: per-worker counters to the log, for benchmarks and debugging. */
static void stats_cb(struct ev_loop *loop, ev_signal *sw, int revents)
{
	struct wgt_device *dev = wgt_container_of(sw, struct wgt_device, sigusr1);

	for (unsigned i = 0; i < dev->n_workers; i++) {
		struct wgt_worker_stats *s = &dev->workers[i].stats;

#define V(f) (unsigned long long)atomic_load_explicit(&s->f, memory_order_relaxed)
		wgt_info("worker %u: rx %llu packets %llu bytes, tx %llu packets %llu bytes; "
			 "drops: invalid %llu no-keypair %llu auth %llu replay %llu source %llu "
			 "no-route %llu no-endpoint %llu send %llu (eagain %llu enobufs %llu) "
			 "malformed %llu ring %llu tun %llu; "
			 "flow collisions %llu; busy-poll hits %llu; tun writes %llu; "
			 "handshakes: limited %llu bad-mac %llu cookies %llu dropped %llu",
			 i, V(rx_packets), V(rx_bytes), V(tx_packets), V(tx_bytes), V(rx_invalid),
			 V(rx_no_keypair), V(rx_auth_failed), V(rx_replayed), V(rx_bad_source),
			 V(tx_no_route), V(tx_no_endpoint), V(tx_send_errors), V(tx_send_eagain),
			 V(tx_send_enobufs), V(tx_malformed), V(ring_full), V(tun_write_errors),
			 V(flow_collisions), V(busy_poll_hits), V(tun_writes), V(hs_limited),
			 V(hs_bad_mac), V(hs_cookies), V(hs_dropped));
#undef V
	}
	wgt_info("control: %zu peers, peer cap hits %llu, staged drops %llu, cookie replies %llu, "
		 "handshakes %llu done %llu rejected %llu rate-limited %llu bad-mac, "
		 "peer add failures %llu, send errors %llu eagain %llu enobufs %llu",
		 dev->n_peers, (unsigned long long)dev->peers_cap_hits,
		 (unsigned long long)dev->staged_drops, (unsigned long long)dev->under_load_cookies,
		 (unsigned long long)(dev->hs.completed_initiator + dev->hs.completed_responder),
		 (unsigned long long)(dev->hs.failed[WGT_HS_FAIL_DECRYPT] +
				      dev->hs.failed[WGT_HS_FAIL_UNKNOWN_PEER] +
				      dev->hs.failed[WGT_HS_FAIL_STALE] +
				      dev->hs.failed[WGT_HS_FAIL_FLOOD]),
		 (unsigned long long)dev->hs.failed[WGT_HS_FAIL_RATE_LIMITED],
		 (unsigned long long)dev->hs.failed[WGT_HS_FAIL_BAD_MAC],
		 (unsigned long long)dev->peer_add_failures,
		 (unsigned long long)dev->ctrl_send_errors,
		 (unsigned long long)dev->ctrl_send_eagain,
		 (unsigned long long)dev->ctrl_send_enobufs);
}

static void link_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct wgt_device *dev = wgt_container_of(w, struct wgt_device, link_io);
	bool up = dev->up;
	int bits = wgt_rtnl_link_monitor_read(dev->link_fd, dev->ifindex, &up);

	if (bits > 0 && (bits & WGT_RTNL_LINK_GONE)) {
		/* Once: a worker's EBADFD (control.c) may have told it first. */
		if (!atomic_exchange_explicit(&dev->gone, true, memory_order_relaxed))
			wgt_info("interface %s is gone, exiting", dev->ifname);
		ev_break(loop, EVBREAK_ALL);
		return;
	}
	/* Messages about other links change nothing; lost messages: ask the device itself. */
	if (bits == 0)
		return;
	if (bits < 0 && wgt_tun_get_up(dev->ifname, &up))
		return;
	set_link_state(dev, up);
}

static void signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	wgt_info("signal %d, shutting down", w->signum);
	ev_break(loop, EVBREAK_ALL);
}

static void uapi_removed(void *ctx)
{
	struct wgt_device *dev = ctx;

	wgt_info("UAPI socket of %s removed, exiting", dev->ifname);
	ev_break(dev->loop, EVBREAK_ALL);
}

static const struct wgt_uapi_handler uapi_handler = {
	.set = wgt_device_uapi_set,
	.get = wgt_device_uapi_get,
	.get_abort = wgt_device_uapi_get_abort,
	.removed = uapi_removed,
};

static void close_fds(int *fds, unsigned n)
{
	for (unsigned i = 0; fds && i < n; i++)
		if (fds[i] >= 0) {
			close(fds[i]);
			fds[i] = -1;
		}
}

/* Control thread only. UDP_SEGMENT and UDP_GRO on every socket, as asked and offered. */
static void setup_socket_offloads(struct wgt_device *dev, const int *fds4, const int *fds6)
{
	unsigned common = WGT_UDP_GSO | WGT_UDP_GRO;

	for (unsigned i = 0; i < dev->n_workers; i++) {
		int fds[2] = { fds4[i], fds6[i] };

		for (int k = 0; k < 2; k++) {
			unsigned f = 0;

			if (fds[k] < 0)
				continue;
			if (wgt_udp_probe_features(fds[k], &f))
				f = 0;
			if (!dev->want_gro || !(f & WGT_UDP_GRO)) {
				if (f & WGT_UDP_GRO)
					wgt_udp_set_gro(fds[k], false);
				f &= ~(unsigned)WGT_UDP_GRO;
			}
			common &= f;
		}
	}
	dev->udp_gso = dev->want_gso && (common & WGT_UDP_GSO);
	dev->udp_gro = dev->want_gro && (common & WGT_UDP_GRO);
}

/*
 * Control thread only. Points each data message at the socket of its
 * receiver index's lane (gateway/index.h), so a peer's datagrams reach the
 * worker its lane names whatever its 4-tuple, and the peers spread over
 * the workers by count. Handshake messages keep the 4-tuple hash: any
 * worker passes them to the control thread. Without the program (a kernel
 * older than 4.5) the hash picks for data too, as before, and the lanes
 * cost nothing.
 */
static void setup_steering(struct wgt_device *dev, const int *fds4, const int *fds6)
{
	const unsigned sel = offsetof(struct wgt_msg_data, receiver_index) +
			     WGT_INDEX_LANE_SHIFT / 8;
	int r = 0;

	dev->steering = false;
	if (dev->n_workers < 2)
		return;
	r = wgt_udp_steer(fds4[0], dev->n_workers, 0, WGT_MSG_DATA, sel);
	if (!r && fds6[0] >= 0)
		r = wgt_udp_steer(fds6[0], dev->n_workers, 0, WGT_MSG_DATA, sel);
	if (r) {
		wgt_warn("%s: cannot steer data messages to their peers' workers (%s): "
			 "the 4-tuple hash picks", dev->ifname, strerror(-r));
		return;
	}
	dev->steering = true;
}

static int open_sockets(struct wgt_device *dev, uint16_t port, int *fds4, int *fds6,
			uint16_t *ret_port)
{
	int r = wgt_udp_open_dual(port, dev->fwmark, dev->n_workers, fds4, fds6, ret_port);

	if (r == -EAFNOSUPPORT || r == -EADDRNOTAVAIL) {
		/* No IPv6 at all here: IPv4 alone. */
		for (unsigned i = 0; i < dev->n_workers; i++)
			fds6[i] = -1;
		r = wgt_udp_open_group(AF_INET, port, dev->fwmark, dev->n_workers, fds4, ret_port);
	}
	if (!r) {
		setup_socket_offloads(dev, fds4, fds6);
		setup_steering(dev, fds4, fds6);
	}
	return r;
}

/* Control thread only. Hands every worker its new sockets and waits until each took them. */
static void swap_worker_sockets(struct wgt_device *dev, int *fds4, int *fds6)
{
	uint32_t want[WGT_MAX_WORKERS];

	for (unsigned i = 0; i < dev->n_workers; i++) {
		struct wgt_worker *w = &dev->workers[i];
		struct wgt_worker_cmd cmd = { .kind = WGT_WORKER_SET_SOCKETS, .fd4 = fds4[i],
					      .fd6 = fds6[i] };

		want[i] = atomic_load_explicit(&w->cmd_done, memory_order_relaxed);
		if (!w->started) {
			/* Before wgt_device_start(): nobody reads them yet. */
			w->udp_fd[0] = fds4[i];
			w->udp_fd[1] = fds6[i];
			continue;
		}
		want[i]++;
		while (wgt_worker_send_cmd(w, &cmd) == -ENOBUFS)
			sched_yield();
	}
	for (unsigned i = 0; i < dev->n_workers; i++)
		/* C2: pairs with C1 in worker.c: the worker no longer uses the old fds. */
		while (atomic_load_explicit(&dev->workers[i].cmd_done, memory_order_acquire) <
		       want[i])
			sched_yield();
}

/* Control thread only. */
int wgt_device_set_listen_port(struct wgt_device *dev, uint16_t port)
{
	int *fds4, *fds6;
	uint16_t bound;
	int r;

	if (port && port == dev->listen_port)
		return 0;
	fds4 = calloc(dev->n_workers, sizeof(int));
	fds6 = calloc(dev->n_workers, sizeof(int));
	if (!fds4 || !fds6) {
		free(fds4);
		free(fds6);
		return -ENOMEM;
	}
	r = open_sockets(dev, port, fds4, fds6, &bound);
	if (r) {
		free(fds4);
		free(fds6);
		return r;
	}
	swap_worker_sockets(dev, fds4, fds6);
	close_fds(dev->udp4, dev->n_workers);
	close_fds(dev->udp6, dev->n_workers);
	free(dev->udp4);
	free(dev->udp6);
	dev->udp4 = fds4;
	dev->udp6 = fds6;
	dev->listen_port = bound;
	wgt_info("%s: listening on UDP port %u", dev->ifname, bound);
	return 0;
}

/* Control thread only. */
int wgt_device_set_fwmark(struct wgt_device *dev, uint32_t fwmark)
{
	for (unsigned i = 0; i < dev->n_workers; i++) {
		int fds[2] = { dev->udp4[i], dev->udp6[i] };

		for (int k = 0; k < 2; k++)
			if (fds[k] >= 0 &&
			    setsockopt(fds[k], SOL_SOCKET, SO_MARK, &fwmark, sizeof(fwmark)) == -1)
				return -errno;
	}
	dev->fwmark = fwmark;
	return 0;
}

/* A second daemon for one interface: name the first, if its UAPI socket tells. */
static void log_already_run(const struct wgt_device_config *cfg, const char *ifname)
{
	int pid = wgt_uapi_owner_pid(cfg->uapi_dir, ifname);

	if (pid > 0)
		wgt_err("interface %s is already run by another process (pid %d)", ifname, pid);
	else
		wgt_err("interface %s is already run by another process (no UAPI socket answers "
			"for it in %s)", ifname, cfg->uapi_dir ? cfg->uapi_dir : WGT_UAPI_SOCK_DEFAULT_DIR);
}

/* One line naming why the TUN device could not be made: the usual causes by their errno. */
static void log_tun_error(const struct wgt_device_config *cfg, int r)
{
	const char *name = cfg->ifname;

	switch (r) {
	case -EBUSY:
		/* IFF_TUN_EXCL: the device exists and another process holds its queues. */
		return log_already_run(cfg, name);
	case -EPERM:
		return wgt_err("cannot create TUN device %s: no CAP_NET_ADMIN (run as root, or give "
			       "the binary the capability: setcap cap_net_admin+ep)", name);
	case -EACCES:
		return wgt_err("cannot create TUN device %s: no read-write access to /dev/net/tun",
			       name);
	case -ENOENT:
	case -ENODEV:
	case -ENXIO:
		return wgt_err("cannot create TUN device %s: /dev/net/tun %s (the tun module, or a "
			       "container's device, is missing)", name,
			       r == -ENOENT ? "does not exist" : "has no driver");
	case -EINVAL:
		return wgt_err("cannot create TUN device %s: %s exists and is not a multi-queue TUN "
			       "device", name, name);
	default:
		return wgt_err("cannot create TUN device %s: %s", name, strerror(-r));
	}
}

static void log_uapi_error(const struct wgt_device_config *cfg, const char *ifname, int r)
{
	const char *dir = cfg->uapi_dir ? cfg->uapi_dir : WGT_UAPI_SOCK_DEFAULT_DIR;

	if (r == -EADDRINUSE)
		return log_already_run(cfg, ifname);
	if (r == -EACCES || r == -EPERM || r == -EROFS)
		return wgt_err("cannot create the UAPI socket %s/%s.sock: %s (the directory must be "
			       "writable by uid %u; --uapi-dir names another)", dir, ifname,
			       strerror(-r), (unsigned)geteuid());
	wgt_err("cannot create the UAPI socket %s/%s.sock: %s", dir, ifname, strerror(-r));
}

/* Control thread only. The workers' rings and descriptors; wgt_device_start() starts them. */
static int init_workers(struct wgt_device *dev, int *tun_fds)
{
	dev->workers = calloc(dev->n_workers, sizeof(*dev->workers));
	if (!dev->workers)
		return -ENOMEM;
	for (unsigned i = 0; i < dev->n_workers; i++)
		dev->workers[i].tun_fd = dev->workers[i].efd = -1;
	for (unsigned i = 0; i < dev->n_workers; i++) {
		struct wgt_worker *w = &dev->workers[i];

		w->dev = dev;
		w->id = i;
		w->tun_fd = tun_fds[i];
		tun_fds[i] = -1;
		w->udp_fd[0] = dev->udp4[i];
		w->udp_fd[1] = dev->udp6[i];
		w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		w->to_ctrl = wgt_ring_new(WGT_RING_SIZE, sizeof(struct wgt_ctrl_msg));
		w->to_worker = wgt_ring_new(64, sizeof(struct wgt_worker_cmd));
		if (w->efd == -1 || !w->to_ctrl || !w->to_worker)
			return -ENOMEM;
	}
	return 0;
}

/* Control thread only. */
int wgt_device_start(struct wgt_device *dev)
{
	sigset_t all, old;
	int r = 0;

	/* Workers take no signals: they all go to the control thread's loop. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (unsigned i = 0; i < dev->n_workers && !r; i++)
		r = wgt_worker_start(&dev->workers[i]);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r)
		wgt_err("%s: cannot start the worker threads: %s", dev->ifname, strerror(-r));
	else
		wgt_health_start(dev);
	return r;
}

int wgt_device_create(struct ev_loop *loop, const struct wgt_device_config *cfg,
		      struct wgt_device **ret)
{
	struct wgt_device *dev;
	int tun_fds[WGT_MAX_WORKERS];
	uint8_t hkey[16];
	int r;

	if (!cfg->n_workers || cfg->n_workers > WGT_MAX_WORKERS)
		return -EINVAL;
	for (unsigned i = 0; i < WGT_MAX_WORKERS; i++)
		tun_fds[i] = -1;
	dev = calloc(1, sizeof(*dev));
	if (!dev)
		return -ENOMEM;
	dev->loop = loop;
	dev->n_workers = cfg->n_workers;
	dev->ctrl_efd = -1;
	dev->link_fd = -1;
	atomic_init(&dev->mtu, WGT_DEFAULT_MTU);
	snprintf(dev->ifname, sizeof(dev->ifname), "%s", cfg->ifname);

	dev->peer_hash = calloc(PEER_HASH_BUCKETS, sizeof(*dev->peer_hash));
	dev->peer_hash_mask = PEER_HASH_BUCKETS - 1;
	dev->allowedips = wgt_allowedips_new();
	dev->ratelimiter = wgt_ratelimiter_new(WGT_RATELIMITER_MAX_ENTRIES / 16);
	dev->aead = wgt_aead_new();
	dev->udp4 = calloc(dev->n_workers, sizeof(int));
	dev->udp6 = calloc(dev->n_workers, sizeof(int));
	if (!dev->peer_hash || !dev->allowedips || !dev->ratelimiter || !dev->aead || !dev->udp4 ||
	    !dev->udp6 || wgt_index_table_init(&dev->index)) {
		r = -ENOMEM;
		goto err;
	}
	for (unsigned i = 0; i < dev->n_workers; i++)
		dev->udp4[i] = dev->udp6[i] = -1;
	wgt_random_bytes(hkey, sizeof(hkey));
	wgt_siphash_key_init(&dev->peer_hash_key, hkey);
	wgt_allowedips_set_defer_free(dev->allowedips, allowedips_defer, dev);

	r = wgt_tun_open(cfg->ifname, dev->n_workers, WGT_TUN_VNET_HDR, tun_fds, dev->ifname);
	if (r) {
		log_tun_error(cfg, r);
		goto err;
	}
	dev->want_gso = !cfg->no_udp_gso;
	dev->want_gro = !cfg->no_udp_gro;
	dev->busy_poll_ns = (uint64_t)cfg->busy_poll_us * 1000;
	/* Busy polling takes precedence: a worker that spins does not nap. */
	dev->nap_ns = cfg->busy_poll_us ? 0 : (uint64_t)cfg->nap_us * 1000;
	if (cfg->no_tun_offload)
		r = wgt_tun_set_offload(tun_fds[0], 0);
	else
		r = wgt_tun_probe_offloads(tun_fds[0], &dev->tun_offloads);
	if (r) {
		wgt_err("cannot set the offloads of %s: %s", dev->ifname, strerror(-r));
		goto err;
	}
	wgt_tun_set_mtu(dev->ifname, WGT_DEFAULT_MTU);
	if (dev->tun_offloads & (WGT_TUN_OFFLOAD_TSO4 | WGT_TUN_OFFLOAD_USO4)) {
		unsigned ifindex;

		/* A super-packet must split into no more segments than a worker holds. */
		r = wgt_tun_get_ifindex(dev->ifname, &ifindex);
		if (!r)
			r = wgt_rtnl_set_gso_max_segs(ifindex, WGT_OFFLOAD_MAX_SEGS);
		if (r) {
			wgt_warn("%s: cannot cap GSO segments (%s): TUN offloads off", dev->ifname,
				 strerror(-r));
			dev->tun_offloads = 0;
			r = wgt_tun_set_offload(tun_fds[0], 0);
			if (r)
				goto err;
		}
	}
	r = open_sockets(dev, 0, dev->udp4, dev->udp6, &dev->listen_port);
	if (r) {
		wgt_err("cannot open UDP sockets: %s", strerror(-r));
		goto err;
	}
	dev->ctrl_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (dev->ctrl_efd == -1) {
		r = -errno;
		goto err;
	}
	r = init_workers(dev, tun_fds);
	if (r)
		goto err;

	if (wgt_tun_get_ifindex(dev->ifname, &dev->ifindex) || wgt_tun_get_up(dev->ifname, &dev->up))
		dev->up = true;
	r = wgt_rtnl_link_monitor_open(&dev->link_fd);
	if (r) {
		wgt_warn("%s: no rtnetlink link monitor (%s): polling the link state", dev->ifname,
			 strerror(-r));
		dev->link_fd = -1;
	} else {
		ev_io_init(&dev->link_io, link_cb, dev->link_fd, EV_READ);
		ev_io_start(loop, &dev->link_io);
	}
	ev_io_init(&dev->ctrl_io, ctrl_io_cb, dev->ctrl_efd, EV_READ);
	ev_io_start(loop, &dev->ctrl_io);
	ev_timer_init(&dev->tick, tick_cb, WGT_CTRL_TICK_NS / 1e9, WGT_CTRL_TICK_NS / 1e9);
	ev_timer_start(loop, &dev->tick);
	ev_timer_init(&dev->slow_tick, slow_tick_cb, 1., 1.);
	ev_timer_start(loop, &dev->slow_tick);
	ev_signal_init(&dev->sigint, signal_cb, SIGINT);
	ev_signal_start(loop, &dev->sigint);
	ev_signal_init(&dev->sigterm, signal_cb, SIGTERM);
	ev_signal_start(loop, &dev->sigterm);
	ev_signal_init(&dev->sigusr1, stats_cb, SIGUSR1);
	ev_signal_start(loop, &dev->sigusr1);

	r = wgt_uapi_server_open(loop, cfg->uapi_dir, dev->ifname, &uapi_handler, dev, &dev->uapi);
	if (r) {
		log_uapi_error(cfg, dev->ifname, r);
		goto err;
	}
	wgt_info("%s: %u worker threads, UDP port %u; offloads: TUN csum %s tso %s uso %s, "
		 "UDP gso %s gro %s; data steered to peers' workers %s; busy polling up to %u us; "
		 "naps of %u us",
		 dev->ifname,
		 dev->n_workers, dev->listen_port,
		 dev->tun_offloads & WGT_TUN_OFFLOAD_CSUM ? "on" : "off",
		 dev->tun_offloads & WGT_TUN_OFFLOAD_TSO4 ? "on" : "off",
		 dev->tun_offloads & WGT_TUN_OFFLOAD_USO4 ? "on" : "off", dev->udp_gso ? "on" : "off",
		 dev->udp_gro ? "on" : "off", dev->steering ? "on" : "off", cfg->busy_poll_us,
		 (unsigned)(dev->nap_ns / 1000));
	*ret = dev;
	return 0;
err:
	close_fds(tun_fds, WGT_MAX_WORKERS);
	wgt_device_destroy(dev);
	return r;
}

int wgt_device_run(struct wgt_device *dev)
{
	ev_run(dev->loop, 0);
	return 0;
}

static void stop_workers(struct wgt_device *dev)
{
	struct wgt_worker_cmd stop = { .kind = WGT_WORKER_STOP };

	for (unsigned i = 0; i < dev->n_workers; i++) {
		struct wgt_worker *w = &dev->workers[i];

		if (!w->started)
			continue;
		while (wgt_worker_send_cmd(w, &stop) == -ENOBUFS)
			sched_yield();
	}
	for (unsigned i = 0; i < dev->n_workers; i++) {
		struct wgt_worker *w = &dev->workers[i];

		if (w->started)
			pthread_join(w->thread, NULL);
		w->started = false;
	}
}

void wgt_device_destroy(struct wgt_device *dev)
{
	if (!dev)
		return;
	wgt_uapi_server_close(dev->uapi);
	dev->uapi = NULL;
	wgt_conf_state_free(dev);
	if (dev->workers)
		stop_workers(dev);
	if (dev->loop) {
		ev_io_stop(dev->loop, &dev->ctrl_io);
		if (dev->link_fd >= 0)
			ev_io_stop(dev->loop, &dev->link_io);
		ev_timer_stop(dev->loop, &dev->tick);
		ev_timer_stop(dev->loop, &dev->slow_tick);
		wgt_health_stop(dev);
		ev_signal_stop(dev->loop, &dev->sigint);
		ev_signal_stop(dev->loop, &dev->sigterm);
		ev_signal_stop(dev->loop, &dev->sigusr1);
	}
	if (dev->workers) {
		/* No reader is left: what the rings hold is handled, then everything goes. */
		dev->stopping = true;
		wgt_ctrl_drain_rings(dev);
		wgt_peer_remove_all(dev);
		wgt_ctrl_drain_rings(dev);
	}
	wgt_qsbr_deferred_destroy(&dev->deferred);
	{
		struct wgt_cookie_checker *c = atomic_load_explicit(&dev->shared_checker,
								    memory_order_relaxed);

		if (c) {
			wgt_cookie_checker_clear(c);
			free(c);
		}
	}
	for (unsigned i = 0; dev->workers && i < dev->n_workers; i++) {
		struct wgt_worker *w = &dev->workers[i];

		wgt_worker_release(w);
		if (w->tun_fd >= 0)
			close(w->tun_fd);
		if (w->efd >= 0)
			close(w->efd);
		wgt_ring_free(w->to_ctrl);
		wgt_ring_free(w->to_worker);
	}
	free(dev->workers);
	close_fds(dev->udp4, dev->n_workers);
	close_fds(dev->udp6, dev->n_workers);
	free(dev->udp4);
	free(dev->udp6);
	if (dev->ctrl_efd >= 0)
		close(dev->ctrl_efd);
	if (dev->link_fd >= 0)
		close(dev->link_fd);
	wgt_allowedips_free(dev->allowedips);
	wgt_index_table_destroy(&dev->index);
	wgt_ratelimiter_free(dev->ratelimiter);
	wgt_aead_free(dev->aead);
	free(dev->peer_hash);
	wgt_noise_identity_clear(&dev->identity);
	wgt_cookie_checker_clear(&dev->checker);
	free(dev);
}
