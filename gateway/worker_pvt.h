/* SPDX-License-Identifier: MIT */
/* Worker internals shared by the loop (worker.c), the send path (send.c) and the receive path (receive.c). */
#ifndef WGT_GATEWAY_WORKER_PVT_H
#define WGT_GATEWAY_WORKER_PVT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "common/endpoint.h"
#include "crypto/aead_batch.h"
#include "io/offload.h"
#include "io/tun.h"
#include "io/udp.h"
#include "gateway/busy_poll.h"
#include "gateway/device.h"
#include "gateway/hs_admit.h"

/*
 * Buffers. Every slot holds one packet with room for the data-message
 * header before it and padding and tag after it; a TUN read lands at
 * +6 so the virtio-net header ends where the packet starts (+16):
 *
 *   | 6 | virtio hdr 10 | IP packet (up to 64 KiB) ...... | pad + tag 32 |
 *   ^ slot            ^ WGT_PKT_HEADROOM
 */
#define WORKER_VNET_OFF (WGT_PKT_HEADROOM - WGT_TUN_VNET_HDR_LEN)
/* A multiple of 64: aligned_alloc() takes only sizes that are multiples of the alignment. */
#define WORKER_SLOT_SIZE WGT_ALIGN_UP(WGT_PKT_HEADROOM + 65535 + WGT_PKT_TAILROOM + 16, 64)
/* Plaintext packets one send pass may hold: reads are stopped while a full split might not fit. */
#define WORKER_TX_MSGS 128
#define WORKER_TX_POOL (WORKER_TX_MSGS + WGT_OFFLOAD_MAX_SEGS)
/*
 * The arena: room for three 64 KiB super-packets at an MSS of 1400 or more,
 * and the header bytes a segment's place allows there beyond gso_size.
 */
#define WORKER_ARENA_SIZE (256 * 1024)
#define WORKER_ARENA_HDR 128
/* TUN reads per send pass, datagram batches per receive pass. */
#define WORKER_TX_READS 64
#define WORKER_RX_MSGS 8
/*
 * Decrypted packets coalesced per batch of TUN writes. A sender's 64 KiB
 * TCP super-packet (47 segments at MTU 1420) no longer fits one 64 KiB
 * UDP GSO send once encrypted, so it arrives in two GRO reads; a batch
 * that holds both writes it as one packet (see group_end in send.c). 64
 * would do for wgate's trains (45 + 2); 128 also holds two reads of a
 * sender whose trains run across super-packets, as wgate's did (36
 * packets per write against 29 with 64).
 */
#define WORKER_RX_OUT 128
/*
 * TCP connections a worker remembers the TUN queue of (receive.c,
 * tun_queue_fd), and after how long unused a slot may go to another: ticks
 * of 2^30 ns (~1.07 s), 4 of them.
 */
#define WORKER_FLOW_SLOTS 4096
#define WORKER_FLOW_TICK_SHIFT 30
#define WORKER_FLOW_IDLE_TICKS 4
/* Retries of a full socket or TUN queue (each waits up to 10 ms for room). */
#define WORKER_SEND_RETRIES 50

union worker_cmsg {
	struct cmsghdr align;
	char buf[WGT_UDP_CMSG_SPACE];
};

/* Worker-owned. Allocated once; nothing on the data path allocates. */
struct wgt_worker_data {
	/* send: slots, per-message state, one mmsghdr per GSO group */
	uint8_t *slot[WORKER_TX_POOL];         /* owned; message i of a plain packet uses slot i */
	uint8_t *rbuf;                         /* where TUN reads land (see read_tun) */
	uint8_t *arena;                        /* segments of super-packets, back to back */
	uint8_t *tx[WORKER_TX_POOL];           /* message i: a slot or a place in the arena */
	uint32_t tx_cap[WORKER_TX_POOL];       /* and its size */
	uint32_t tx_len[WORKER_TX_POOL];
	bool tx_head[WORKER_TX_POOL];          /* first segment of a split super-packet */
	struct wgt_peer *tx_peer[WORKER_TX_POOL];
	struct wgt_noise_keypair *tx_kp[WORKER_TX_POOL];
	struct wgt_aead_batch_item tx_items[WORKER_TX_POOL];
	struct iovec tx_iov[WORKER_TX_POOL];
	struct mmsghdr tx_msgs[WORKER_TX_POOL];
	union wgt_sockaddr tx_names[WORKER_TX_POOL];
	union worker_cmsg tx_ctl[WORKER_TX_POOL];
	int tx_fd[WORKER_TX_POOL];
	unsigned tx_first[WORKER_TX_POOL];   /* group -> its first message */
	bool tx_sent[WORKER_TX_POOL];

	/* receive: datagram buffers (64 KiB each for UDP_GRO), decrypted packets */
	uint8_t *rx[WORKER_RX_MSGS];
	struct mmsghdr rx_msgs[WORKER_RX_MSGS];
	struct iovec rx_iov[WORKER_RX_MSGS];
	union wgt_sockaddr rx_names[WORKER_RX_MSGS];
	union worker_cmsg rx_ctl[WORKER_RX_MSGS];
	struct wgt_udp_rx_info rx_info[WORKER_RX_MSGS];
	/* data messages queued for opening, by output slot */
	struct wgt_aead_batch_item rx_items[WORKER_RX_OUT];
	struct wgt_noise_keypair *rx_kp[WORKER_RX_OUT];
	unsigned rx_msg[WORKER_RX_OUT];       /* the datagram batch it came in */
	uint8_t *out[WORKER_RX_OUT];
	struct wgt_offload_pkt out_pkts[WORKER_RX_OUT];
	struct wgt_peer *out_peer[WORKER_RX_OUT];  /* whose packet out_pkts[i] is */
	struct iovec writes[WORKER_RX_OUT];
	uint64_t flow_home[WORKER_FLOW_SLOTS]; /* TCP flow hash -> worker its ACKs go to, last use */
	struct wgt_hs_budget hs_budget;        /* handshake messages per source (hs_admit.h) */

	uint64_t now;
	uint64_t busy_mark;                    /* monotonic ns since which the worker is busy */
	struct wgt_busy_poll busy_poll;        /* whether to spin or nap before sleeping */
	bool stop;
	bool gso[2];                           /* UDP_SEGMENT still usable on udp_fd[0], [1] */
};

/* What the workers read from an IP header (the packet's own, not validated against len). */
struct worker_ip {
	int family;               /* AF_INET or AF_INET6 */
	const uint8_t *src, *dst; /* into the packet, 4 or 16 bytes */
	size_t tot_len;           /* total length the header claims */
	size_t l4;                /* offset of the transport header */
	uint8_t proto;            /* IPv4 protocol / IPv6 next header */
};

/* Any thread. False when pkt holds no whole IPv4 or IPv6 header. */
static inline bool worker_ip_parse(const uint8_t *pkt, size_t len, struct worker_ip *ip)
{
	if (len >= 20 && pkt[0] >> 4 == 4) {
		ip->family = AF_INET;
		ip->src = pkt + 12;
		ip->dst = pkt + 16;
		ip->tot_len = (size_t)pkt[2] << 8 | pkt[3];
		ip->l4 = (size_t)(pkt[0] & 15) * 4;
		ip->proto = pkt[9];
		return true;
	}
	if (len >= 40 && pkt[0] >> 4 == 6) {
		ip->family = AF_INET6;
		ip->src = pkt + 8;
		ip->dst = pkt + 24;
		ip->tot_len = 40 + ((size_t)pkt[4] << 8 | pkt[5]);
		ip->l4 = 40;
		ip->proto = pkt[6];
		return true;
	}
	return false;
}

/* worker.c */
void wgt_worker_stat_inc(_Atomic uint64_t *c, uint64_t n);
bool wgt_worker_push_urgent(struct wgt_worker *w, const struct wgt_ctrl_msg *m);
void wgt_worker_peer_events(struct wgt_worker *w, struct wgt_peer *peer, uint32_t bits);
void wgt_worker_want_handshake(struct wgt_worker *w, struct wgt_peer *peer,
			       enum wgt_ctrl_msg_kind kind);
/* Waits (QSBR offline) until fd is writable or 10 ms passed. */
void wgt_worker_wait_writable(int fd);
void wgt_worker_device_gone(struct wgt_worker *w);

/*
 * send.c: reads a batch from the TUN queue, encrypts and sends it. Returns
 * TUN reads; *drained: the queue was found empty (a read met EAGAIN).
 */
unsigned wgt_send_from_tun(struct wgt_worker *w, bool *drained);
/*
 * receive.c: receives a batch on fd and handles it. Returns datagram
 * batches read; *drained: the socket had fewer than a full batch queued.
 */
unsigned wgt_receive_from_udp(struct wgt_worker *w, int fd, bool *drained);

#endif
