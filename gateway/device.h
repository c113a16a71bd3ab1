/* SPDX-License-Identifier: MIT */
/* The gateway device: its threads, its peers and the messages between them. */
#ifndef WGT_GATEWAY_DEVICE_H
#define WGT_GATEWAY_DEVICE_H

/*
 * Design note
 *
 *   worker i (N of them)                         control thread (libev)
 *   TUN queue i --> allowed-IPs --> peer          UAPI socket, handshakes, cookies,
 *     --> current keypair --> encrypt --> UDP i   timers, staged packets, reclamation
 *   UDP i --> index table --> keypair --> decrypt
 *     --> replay --> source check --> TUN queue i
 *
 *   worker --to_ctrl ring--> control: handshake messages, staged packets,
 *       "want handshake", "key confirmed", timer events, "device gone"
 *   control --to_worker ring--> worker: new UDP sockets, stop
 *
 * Shared state (peers, keypairs, the index table, allowed-IPs) is written
 * by the control thread only and read by workers lock-free under QSBR; an
 * unlinked object is freed after a grace period and after the rings were
 * drained, since a ring message may still name it. One exception: the
 * worker that authenticates the first packet under a peer's pending
 * keypair makes it current itself, under the keypair set's lock
 * (crypto/noise.h), and tells the control thread, which retires what that
 * pushed out and does the rest ("key confirmed").
 *
 * Packet order: a flow stays on one TUN queue and so on one worker. A
 * packet that cannot be sent yet (no session) goes to the control thread
 * through the worker's ring, and while any of a peer's packets are there
 * (peer->staged_inflight > 0) later ones follow the same way, so the
 * control thread, which sends them in ring order, never lets a later
 * packet overtake an earlier one.
 *
 * Timer events from the data path are bits in a per-worker word of the
 * peer; the worker queues the peer to the control thread when the word
 * goes from zero to non-zero, and the control thread collects the bits
 * on its next tick (WGT_CTRL_TICK_NS), which timers measured in seconds
 * tolerate. Urgent messages wake the control thread through an eventfd.
 */

#include <net/if.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <ev.h>

#include "common/compiler.h"
#include "common/endpoint.h"
#include "common/qsbr.h"
#include "common/siphash.h"
#include "crypto/cookie.h"
#include "crypto/messages.h"
#include "crypto/noise.h"
#include "crypto/timers.h"
#include "gateway/index.h"

struct wgt_aead;
struct wgt_allowedips;
struct wgt_metrics;
struct wgt_conf_state;
struct wgt_ratelimiter;
struct wgt_ring;
struct wgt_uapi_server;
struct wgt_uapi_get_cursor;

#define WGT_MAX_WORKERS 64
#define WGT_MAX_PEERS (1U << 20)           /* the kernel's MAX_PEERS_PER_DEVICE */
#define WGT_MAX_STAGED 128                 /* per peer, as the kernel's MAX_STAGED_PACKETS */
#define WGT_RING_SIZE 4096                 /* messages per ring and direction */
/* A worker's ring, for handshake messages (hs_admit.h): the room they may take, and the
 * backlog that is "under load" (the control thread sums all rings). */
#define WGT_HS_RING_CAP (WGT_RING_SIZE / 4 * 3)
#define WGT_HS_UNDER_LOAD (WGT_RING_SIZE / 8)
#define WGT_CTRL_TICK_NS (25 * WGT_NSEC_PER_MSEC)
#define WGT_WANT_HANDSHAKE_INTERVAL WGT_NSEC_PER_SEC
#define WGT_DEFAULT_MTU 1420
/* Buffer layout: room for the data header before the packet and padding + tag after it. */
#define WGT_PKT_HEADROOM WGT_MSG_DATA_HEADER_LEN
#define WGT_PKT_TAILROOM (WGT_MSG_PADDING + WGT_AEAD_TAG_LEN)

/* Where a peer's datagrams go: its address and our source address for it. */
struct wgt_endpoint {
	union wgt_sockaddr addr;   /* AF_UNSPEC: none */
	union wgt_sockaddr local;  /* AF_UNSPEC: let routing choose */
	uint32_t ifindex;
};
#define WGT_ENDPOINT_WORDS ((sizeof(struct wgt_endpoint) + 7) / 8)

/* Per-peer state one worker (or the control thread, the last slot) writes. */
struct wgt_peer_pcpu {
	_Atomic uint64_t rx_bytes;
	_Atomic uint64_t tx_bytes;
	/* Bits 1 << WGT_TIMER_EV_* not yet collected by the control thread. */
	_Atomic uint32_t events;
} __wgt_cacheline_aligned;

struct wgt_staged;

/*
 * What a peer needs only while it has a session, from its first handshake message
 * sent or received to the zeroing of its keys (3 * REJECT_AFTER_TIME after the last
 * handshake, or when handshakes gave up), a stop (link down) or its removal. Control
 * thread only: made by wgt_peer_session_get(), wiped and freed by wgt_peer_session_end()
 * (peer_session.c). The handshake's remote_static, latest_timestamp and
 * last_initiation_consumption are copies of the peer's, which outlive the session.
 */
struct wgt_peer_session {
	struct wgt_noise_handshake handshake;
	struct wgt_cookie_maker cookie;
	bool handshake_indexed;            /* handshake.local_index is in the index table */
};

/*
 * A peer is 512 bytes (the allocator's size class; _Static_assert in peer.c): one
 * cache line workers read on every packet, two they read and seldom write, and five
 * for the control thread. Everything only a session needs is in peer->session.
 */
struct wgt_peer {
	/* Read-mostly by workers. */
	struct wgt_device *dev;
	/* n_workers + 1 slots: the workers', then the control thread's. NULL while the peer
	 * never had a handshake message (an idle peer carries none): wgt_peer_pcpu_alloc()
	 * sets it once, before any keypair of the peer exists, and workers reach it only
	 * through a keypair, whose acquire load (send.c, index.h) orders this store. */
	struct wgt_peer_pcpu *pcpu;
	struct wgt_noise_keypairs keypairs;

	/* Read by workers on every packet, written seldom (by workers and control). */
	/* Endpoint, a seqlock: workers roam it, the control thread sets it. */
	_Atomic uint32_t ep_seq __wgt_cacheline_aligned;
	atomic_flag ep_lock;
	_Atomic uint64_t ep_words[WGT_ENDPOINT_WORDS];
	/* Flow hash of the newest TCP connection seen from the peer (its last SYN), set by
	 * the worker that decrypts it; picks the TUN queue of that flow's ACKs (receive.c). */
	_Atomic uint32_t newest_flow;
	/* Older connections given a TUN queue so far: the next one gets the next worker. */
	_Atomic uint32_t flow_turn;
	_Atomic uint32_t staged_inflight;  /* packets handed to control, not yet sent or dropped */
	_Atomic uint64_t want_handshake_at; /* monotonic ns of the last "want handshake" request */
	_Atomic bool rekey_on_receive_asked;
	_Atomic bool dead;

	/* Control thread only. */
	struct wgt_peer_session *session __wgt_cacheline_aligned; /* NULL: idle */
	/* The public key (also read by any thread for the peer's label, wgt_peer_name). */
	uint8_t remote_static[WGT_KEY_LEN];
	/* Replay protection of initiations, for the peer's whole life: the newest TAI64N
	 * accepted, and when (monotonic ns, 0 = never; the 50/s flood limit). */
	uint8_t latest_timestamp[WGT_TIMESTAMP_LEN];
	uint8_t lane;                      /* the worker its data reaches: every index's lane */
	bool audit_up;                     /* audit.c: a session is up */
	uint16_t n_staged;
	uint64_t last_initiation_consumption;
	uint8_t *psk;                      /* NULL: none; else WGT_KEY_LEN bytes, wiped when freed */
	struct wgt_timers timers;
	ev_timer timer;
	uint64_t timer_deadline;
	uint64_t last_handshake_ns;        /* wall clock, ns since the epoch; 0 = never */
	struct wgt_staged *staged_head, *staged_tail;
	uint64_t staged_dropped;
	struct wgt_peer *hash_next;        /* public-key table chain */
	struct wgt_peer *list_prev, *list_next;
	uint64_t id;                       /* creation order, for `wg show` */
	/* Audit log state (audit.c): the endpoint's seq last looked at, the endpoint last logged. */
	uint32_t audit_ep_seq;
	union wgt_sockaddr audit_ep;
	/* The config file's "# Name =" for logs and metrics; NULL: none. Set by the control
	 * thread (wgt_peer_set_name), read by any thread: A1 release store pairs with the
	 * acquire load in wgt_peer_name(); a replaced string is freed after a grace period. */
	_Atomic(char *) name;
};

/* A packet waiting for a session: payload at buf + WGT_PKT_HEADROOM. */
struct wgt_staged {
	struct wgt_staged *next;
	uint32_t len;
	uint32_t cap;
	uint8_t buf[];
};

enum wgt_ctrl_msg_kind {
	WGT_CTRL_HANDSHAKE,       /* data[len]: a type 1, 2 or 3 message from src */
	WGT_CTRL_STAGE,           /* staged: a packet for peer without a session */
	WGT_CTRL_WANT_HANDSHAKE,  /* peer needs a (new) handshake */
	WGT_CTRL_WANT_HANDSHAKE_ON_RECEIVE,
	WGT_CTRL_KEY_CONFIRMED,   /* the worker made kp, the pending `next`, current */
	WGT_CTRL_EVENTS,          /* collect peer->pcpu[worker].events */
	WGT_CTRL_DEVICE_GONE,     /* the TUN device was deleted */
};

/* Worker -> control. */
struct wgt_ctrl_msg {
	uint8_t kind;
	uint16_t len;
	struct wgt_peer *peer;
	struct wgt_noise_keypair *kp;
	struct wgt_staged *staged;
	union wgt_sockaddr src;
	union wgt_sockaddr local;
	uint32_t ifindex;
	uint8_t data[WGT_MSG_INITIATION_LEN];
};

enum wgt_worker_cmd_kind {
	WGT_WORKER_SET_SOCKETS,
	WGT_WORKER_STOP,
};

/* Control -> worker. */
struct wgt_worker_cmd {
	uint8_t kind;
	int fd4, fd6;
};

struct wgt_worker_stats {
	_Atomic uint64_t rx_packets, tx_packets, rx_bytes, tx_bytes;
	_Atomic uint64_t rx_invalid, rx_no_keypair, rx_auth_failed, rx_replayed, rx_bad_source;
	_Atomic uint64_t tx_no_route, tx_no_endpoint, tx_send_errors, tx_malformed, ring_full;
	_Atomic uint64_t tun_write_errors;
	/* Of tx_send_errors, the datagrams given up on a full socket (EAGAIN after the
	 * retries) and those the kernel refused with ENOBUFS (no memory, a full qdisc). */
	_Atomic uint64_t tx_send_eagain, tx_send_enobufs;
	_Atomic uint64_t tun_writes;        /* successful writes, a coalesced packet counting once */
	_Atomic uint64_t flow_collisions;   /* pure ACKs sent by hash: their flow_home slot held */
	_Atomic uint64_t busy_poll_hits;    /* idle periods a busy poll or nap ended (no wake-up) */
	_Atomic uint64_t tx_batches;        /* passes that read the TUN queue */
	_Atomic uint64_t rx_batches;        /* datagram batches received */
	_Atomic uint64_t busy_ns;           /* time not asleep in poll() or a nap */
	/* Monotonic ns of the latest loop pass; bit 0 set: asleep in poll() since then (alive).
	 * Read by /healthz (gateway/metrics.c). */
	_Atomic uint64_t heartbeat;
	/* Handshake messages kept from the control thread (hs_admit.c): over their source's
	 * budget, a bad mac1 under load, answered here with a cookie reply, or no cookie made. */
	_Atomic uint64_t hs_limited, hs_bad_mac, hs_cookies, hs_dropped;
} __wgt_cacheline_aligned;

struct wgt_worker {
	struct wgt_device *dev;
	unsigned id;
	pthread_t thread;
	bool started;
	int tun_fd;
	int udp_fd[2];                      /* IPv4, IPv6; -1 when absent */
	int efd;                            /* control wakes the worker */
	struct wgt_ring *to_ctrl;
	struct wgt_ring *to_worker;
	_Atomic uint32_t cmd_done;          /* commands processed, for the control thread to wait on */
	_Atomic bool events_overflow;       /* an EVENTS message did not fit: scan all peers */
	/* Handshake messages in to_ctrl: pushed (the worker writes it) less handled (the
	 * control thread writes it). The backlog that makes the device "under load" counts
	 * these only, as the kernel's handshake queue does: the ring's timer events and
	 * staged packets, many with thousands of sessions, say nothing about handshakes. */
	_Atomic uint64_t hs_pushed;
	_Atomic uint64_t hs_handled;
	struct wgt_aead *aead;
	struct wgt_worker_data *data;       /* buffers, worker-owned */
	struct wgt_worker_stats stats;
#ifdef WGT_TEST_HOOKS
	_Atomic bool test_stall;            /* test builds: the worker stops making progress */
#endif
};

/* Why a received handshake message led nowhere (metrics). */
enum wgt_hs_fail {
	WGT_HS_FAIL_BAD_MAC,       /* mac1 (or mac2 under load) wrong */
	WGT_HS_FAIL_DECRYPT,       /* a field did not authenticate: not for our key, or forged */
	WGT_HS_FAIL_UNKNOWN_PEER,  /* an initiation from a key we do not know */
	WGT_HS_FAIL_STALE,         /* an initiation whose timestamp is not newer (replay) */
	WGT_HS_FAIL_FLOOD,         /* initiations of one peer faster than 50/s */
	WGT_HS_FAIL_RATE_LIMITED,  /* under load, the source's token bucket was empty */
	WGT_HS_FAIL_UNKNOWN_INDEX, /* a response or cookie for no pending handshake of ours */
	WGT_HS_FAIL_OTHER,         /* no identity, no index, link down, ... */
	WGT_HS_FAIL_COUNT,
};

/* Handshake counters, control thread only. */
struct wgt_handshake_stats {
	uint64_t init_sent, resp_sent;
	uint64_t init_received, resp_received, cookie_received;
	uint64_t completed_initiator, completed_responder;
	uint64_t failed[WGT_HS_FAIL_COUNT];
};

struct wgt_device {
	char ifname[IFNAMSIZ];
	unsigned n_workers;
	struct wgt_worker *workers;
	int ctrl_efd;
	_Atomic bool ctrl_wake_pending;
	_Atomic uint32_t mtu;
	_Atomic bool gone;

	/* Set before the workers start, read-only after. */
	unsigned tun_offloads;               /* WGT_TUN_OFFLOAD_* enabled on the device */
	bool udp_gso, udp_gro;               /* in use: asked for and offered by the kernel */
	bool want_gso, want_gro;             /* asked for (not turned off on the command line) */
	uint64_t busy_poll_ns;               /* the workers' busy-poll cap (busy_poll.h); 0: off */
	uint64_t nap_ns;                     /* the workers' nap (busy_poll.h); 0: off, or busy polling */

	/* Shared with workers (read side). */
	struct wgt_allowedips *allowedips;
	struct wgt_index_table index;
	_Atomic bool has_identity;
	/* A copy of `checker` for the workers (hs_admit.h), immutable once published; NULL:
	 * no identity. And until when (monotonic ns) the control thread saw a backlog. */
	_Atomic(struct wgt_cookie_checker *) shared_checker;
	_Atomic uint64_t under_load_until;

	/* Control thread only. */
	struct ev_loop *loop;
	ev_io ctrl_io;
	ev_timer tick;
	ev_timer slow_tick;
	ev_signal sigint, sigterm, sigusr1;
	ev_io link_io;                      /* rtnetlink link changes, link_fd */
	int link_fd;
	unsigned ifindex;
	bool up;                            /* IFF_UP: peers run only while the link is up */
	bool stopping;                      /* wgt_device_destroy() runs: for the audit log */
	struct wgt_uapi_server *uapi;
	struct wgt_noise_identity identity;
	struct wgt_cookie_checker checker;
	struct wgt_ratelimiter *ratelimiter;
	struct wgt_aead *aead;
	struct wgt_qsbr_deferred deferred;
	uint16_t listen_port;
	uint32_t fwmark;
	int *udp4, *udp6;                   /* authoritative socket lists, one per worker */
	struct wgt_peer **peer_hash;         /* chains by public key; buckets >= peers (peer.c) */
	struct wgt_siphash_key peer_hash_key;
	size_t peer_hash_mask;
	struct wgt_peer *peers_head, *peers_tail;
	size_t n_peers;
	struct wgt_uapi_get_cursor *get_cursors; /* streamed gets in progress (uapi_apply.c) */
	uint64_t next_peer_id;
	unsigned lane_peers[WGT_MAX_WORKERS]; /* peers per lane, to give a new one the emptiest */
	bool steering;                      /* data messages reach sockets by their index's lane */
	uint64_t last_under_load;
	uint64_t peers_cap_hits, staged_drops, under_load_cookies;
	uint64_t peer_add_failures;         /* a UAPI set could not build a new peer: nothing kept */
	size_t n_sessions;                  /* peers with a peer->session */
	uint64_t session_alloc_failures;    /* a session could not be made: its handshake dropped */
	/* The control thread's own sends (handshakes, staged packets, keepalives) that failed:
	 * all, and of them EAGAIN (socket full) and ENOBUFS. */
	uint64_t ctrl_send_errors, ctrl_send_eagain, ctrl_send_enobufs;
	uint64_t conf_reloads, conf_reload_failures; /* config file applied again / refused */
	struct wgt_handshake_stats hs;
	struct wgt_metrics *metrics;        /* --metrics-listen; NULL: off */
	ev_timer health_tick;               /* 1 s: the control thread's heartbeat (health.c) */
	_Atomic uint64_t ctrl_heartbeat;    /* written by the control thread, read by any */
	const char *test_stall_file;        /* test builds: $WGATE_TEST_STALL_FILE */
	ev_timer watchdog;                  /* systemd watchdog (notify.c) */
	bool watchdog_starved;              /* a thread is stuck: the watchdog goes unfed */
	struct wgt_peer *metrics_cursor;    /* a render's next peer; wgt_peer_remove() moves it on */
	struct wgt_conf_state *conf_state;  /* --config: last file, watchers, resolver (conf_apply.h) */
};

/* ---- device.c: lifecycle ---- */
struct wgt_device_config {
	const char *ifname;
	unsigned n_workers;
	const char *uapi_dir;      /* NULL: /var/run/wireguard */
	bool no_tun_offload;       /* --no-tun-offload: plain packets on the TUN queues */
	bool no_udp_gso;           /* --no-udp-gso: one datagram per send */
	bool no_udp_gro;           /* --no-udp-gro: one datagram per receive */
	unsigned busy_poll_us;     /* --busy-poll-us: the workers' busy-poll cap (0: off) */
	unsigned nap_us;           /* --nap-us: the workers' nap (0: off) */
};
/*
 * Opens the TUN queues, the sockets and the UAPI socket; no thread is started
 * yet (so privileges can still be dropped for the whole process, privs.h).
 * Returns 0 or -errno, after one error line naming the cause.
 */
int wgt_device_create(struct ev_loop *loop, const struct wgt_device_config *cfg,
		      struct wgt_device **ret);
/* Control thread only. Starts the worker threads. Returns 0 or -errno. */
int wgt_device_start(struct wgt_device *dev);
/* Control thread. Runs until a signal, the device or the socket disappears. Returns the exit status. */
int wgt_device_run(struct wgt_device *dev);
void wgt_device_destroy(struct wgt_device *dev);
/* Control thread only. Rebinds every worker's sockets to port (0: any). Returns 0 or -errno. */
int wgt_device_set_listen_port(struct wgt_device *dev, uint16_t port);
int wgt_device_set_fwmark(struct wgt_device *dev, uint32_t fwmark);
/* Control thread only. Sends one datagram to a peer's endpoint through a worker socket. */
int wgt_device_send_to_peer(struct wgt_device *dev, struct wgt_peer *peer, const void *buf,
			    size_t len);
/* Any thread. One datagram through fd, from `local` when given. Returns 0 or -errno. */
int wgt_device_send_fd(int fd, const union wgt_sockaddr *dst, const union wgt_sockaddr *local,
		       uint32_t ifindex, const void *buf, size_t len);
int wgt_device_send_to(struct wgt_device *dev, const union wgt_sockaddr *dst,
		       const union wgt_sockaddr *local, uint32_t ifindex, const void *buf,
		       size_t len);
/* Any thread: wake the control thread for urgent ring messages. */
void wgt_device_wake_ctrl(struct wgt_device *dev);

/* ---- peer.c ---- */
/* Control thread only. */
int wgt_peer_create(struct wgt_device *dev, const uint8_t public_key[WGT_KEY_LEN],
		    struct wgt_peer **ret);
struct wgt_peer *wgt_peer_lookup(struct wgt_device *dev, const uint8_t public_key[WGT_KEY_LEN]);
void wgt_peer_remove(struct wgt_peer *peer);
void wgt_peer_remove_all(struct wgt_device *dev);
/* Control thread only. NULL or all zero: none. Returns 0 or -ENOMEM (the old key kept). */
int wgt_peer_set_psk(struct wgt_peer *peer, const uint8_t *psk);
/* Control thread only. Gives the peer its counters (peer->pcpu) if it has none. Returns 0 or -ENOMEM. */
int wgt_peer_pcpu_alloc(struct wgt_peer *peer);
/* Any thread: a consistent copy of the endpoint. */
void wgt_peer_get_endpoint(struct wgt_peer *peer, struct wgt_endpoint *ret);
/* Any thread: sets the endpoint (and our source address for it). */
void wgt_peer_set_endpoint(struct wgt_peer *peer, const struct wgt_endpoint *ep);
/* Any thread: follows a peer that moved (roaming) when src or local differ. */
void wgt_peer_roam(struct wgt_peer *peer, const union wgt_sockaddr *src,
		   const union wgt_sockaddr *local, uint32_t ifindex);
void wgt_peer_clear_endpoint_src(struct wgt_peer *peer);
/* Control thread only: sums of the per-worker counters (0 for a peer without them). */
void wgt_peer_transfer(const struct wgt_peer *peer, uint64_t *ret_rx, uint64_t *ret_tx);
/* Worker `slot` (or the control thread, slot n_workers): counts. peer->pcpu is set: a worker
 * has a keypair of the peer; the control thread calls wgt_peer_pcpu_alloc() first. */
/*
 * Any thread: handshake messages queued in w's ring. The worker reads the control
 * thread's count late at worst (a larger backlog, for a moment); the control thread
 * sees every push before it can count the message handled (receive.c).
 */
static inline uint64_t wgt_worker_hs_backlog(struct wgt_worker *w)
{
	uint64_t pushed = atomic_load_explicit(&w->hs_pushed, memory_order_relaxed);
	uint64_t handled = atomic_load_explicit(&w->hs_handled, memory_order_relaxed);

	return pushed > handled ? pushed - handled : 0;
}

static inline void wgt_peer_count_tx(struct wgt_peer *peer, unsigned slot, uint64_t bytes)
{
	struct wgt_peer_pcpu *p = &peer->pcpu[slot];

	/* Single writer per slot: a load and a store, no read-modify-write. */
	atomic_store_explicit(&p->tx_bytes,
			      atomic_load_explicit(&p->tx_bytes, memory_order_relaxed) + bytes,
			      memory_order_relaxed);
}
static inline void wgt_peer_count_rx(struct wgt_peer *peer, unsigned slot, uint64_t bytes)
{
	struct wgt_peer_pcpu *p = &peer->pcpu[slot];

	atomic_store_explicit(&p->rx_bytes,
			      atomic_load_explicit(&p->rx_bytes, memory_order_relaxed) + bytes,
			      memory_order_relaxed);
}

/* ---- peer_session.c: control thread only ---- */
/*
 * The peer's session state, made (and counted in dev->n_sessions) if it has none,
 * from the peer's key, pre-shared key and replay protection. NULL: no memory
 * (dev->session_alloc_failures counts it; nothing is kept), or the peer was removed.
 */
struct wgt_peer_session *wgt_peer_session_get(struct wgt_peer *peer);
/* After an initiation was consumed: its replay protection goes to the peer. */
void wgt_peer_session_save(struct wgt_peer *peer);
/* The session ends: its handshake index is released, its secrets wiped, its memory freed. */
void wgt_peer_session_end(struct wgt_peer *peer);
/* The wall clock of the peer's last handshake, for `wg show` and metrics. */
void wgt_peer_last_handshake(const struct wgt_peer *peer, struct timespec *ret);
/* A handshake completed now (wall clock). */
void wgt_peer_stamp_handshake(struct wgt_peer *peer);

/* ---- handshake.c: control thread ---- */
void wgt_handshake_receive(struct wgt_device *dev, const struct wgt_ctrl_msg *msg, bool under_load);
/* Sends an initiation (the timers, which ask for it, rate-limit it). */
void wgt_handshake_send_initiation(struct wgt_peer *peer);
void wgt_handshake_clear(struct wgt_peer *peer);
/* Renews the cookie secret when due and publishes the checker to the workers if it changed. */
void wgt_handshake_publish_checker(struct wgt_device *dev);
/* keypairs->retire hook. */
void wgt_handshake_retire_keypair(struct wgt_noise_keypair *kp, void *arg);

/* ---- peer_timers.c: control thread ---- */
void wgt_peer_timers_event(struct wgt_peer *peer, enum wgt_timer_event ev);
void wgt_peer_timers_apply(struct wgt_peer *peer, unsigned actions);
void wgt_peer_timers_rearm(struct wgt_peer *peer);
void wgt_peer_timers_stop(struct wgt_peer *peer);
/* Staged packets and keepalives, sent by the control thread. */
void wgt_peer_stage(struct wgt_peer *peer, struct wgt_staged *pkt);
void wgt_peer_send_staged(struct wgt_peer *peer);
void wgt_peer_send_keepalive(struct wgt_peer *peer);
void wgt_peer_drop_staged(struct wgt_peer *peer);
/*
 * As the kernel's wg_stop for one peer (link down, or the peer removed): its
 * staged packets, handshake and keypairs go and its timers stop.
 */
void wgt_peer_stop(struct wgt_peer *peer);

/* ---- worker.c ---- */
int wgt_worker_start(struct wgt_worker *w);
/* Control thread: queue a command and wake the worker. Returns 0 or -ENOBUFS. */
int wgt_worker_send_cmd(struct wgt_worker *w, const struct wgt_worker_cmd *cmd);
/* Control thread, after the worker's thread was joined: frees its buffers. Accepts a never-started worker. */
void wgt_worker_release(struct wgt_worker *w);

/* ---- uapi_apply.c: control thread ---- */
struct wgt_uapi_device;
struct wgt_uapi_buf;
int wgt_device_uapi_set(void *ctx, const struct wgt_uapi_device *set);
int wgt_device_uapi_get(void *ctx, struct wgt_uapi_buf *out, void **cursor);
void wgt_device_uapi_get_abort(void *ctx, void *cursor);
/* A peer leaves the list: streamed gets standing on it move to the next one. */
void wgt_device_uapi_get_forget(struct wgt_device *dev, struct wgt_peer *peer);

/* ---- control.c ---- */
void wgt_ctrl_drain_rings(void *dev);
void wgt_ctrl_tick(struct wgt_device *dev);

/* ---- audit.c: control thread only; one info line per event, with peer and endpoint ---- */
/* A handshake completed: "session established" when none was up (connect), else debug. */
void wgt_audit_session_up(struct wgt_peer *peer, bool initiator);
/* The keys are gone: expired (no new handshake in time), or closed (link down, removal). */
void wgt_audit_session_down(struct wgt_peer *peer, bool expired);
/* The endpoint moved since last seen (roaming, written by any thread): logs it. Cheap when not. */
void wgt_audit_endpoint(struct wgt_peer *peer);
/* The endpoint was configured: remembered, not logged as roaming. */
void wgt_audit_endpoint_configured(struct wgt_peer *peer);

/* A peer's label in logs and metrics: its configured name, else the first 8 base64
 * characters of its key and "...". Any thread (QSBR read side for workers). */
#define WGT_PEER_LABEL_LEN 64
void wgt_peer_name(const struct wgt_peer *peer, char out[WGT_PEER_LABEL_LEN]);
/* Control thread only. NULL or "" clears the name; longer names are cut. Returns 0 or -ENOMEM. */
int wgt_peer_set_name(struct wgt_peer *peer, const char *name);

#endif
