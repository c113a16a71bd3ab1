/* SPDX-License-Identifier: MIT */
/* UDP sockets for the workers: one SO_REUSEPORT group per family, GSO/GRO, mmsg batches. */
#ifndef WGT_IO_UDP_H
#define WGT_IO_UDP_H

/*
 * Every worker owns one socket per family; all sockets of a family share
 * one port through SO_REUSEPORT, and the kernel hashes each remote 4-tuple
 * to one of them, so a peer's datagrams stay on one worker, unless a
 * steering program (wgt_udp_steer) picks the socket by content. IPv4 and IPv6
 * get separate sockets (IPV6_V6ONLY), as in wireguard-go, on the same port.
 *
 * Claiming the port: the first socket of a group binds WITHOUT
 * SO_REUSEPORT and turns it on only after bind; the rest join with it set
 * before bind. Binding with SO_REUSEPORT already set would let the kernel
 * hand out (port 0) or accept (a fixed port) a port that another socket of
 * the same user already holds with SO_REUSEPORT: measured on Linux 6.18, an
 * ephemeral bind joined an existing reuseport group in about half the tries
 * when the port range was narrowed to two ports. The late flag still makes
 * the first socket a full member: the first joiner attaches the group to it.
 *
 * Received datagrams carry the destination address (IP_PKTINFO or
 * IPV6_RECVPKTINFO is on), so replies can leave from the address the peer
 * used; with UDP_GRO on, a read may return several datagrams of one flow
 * glued together, with their size in a control message.
 */

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/endpoint.h"

/*
 * Receive and send buffer size asked for each socket. SO_RCVBUFFORCE and
 * SO_SNDBUFFORCE (CAP_NET_ADMIN) bypass net.core.rmem_max/wmem_max; without
 * the capability the plain options are capped there silently. wireguard-go
 * asks 7 MiB for its single socket; ours are one per worker. With UDP GRO a
 * queued entry is a whole 64 KiB batch: 4 MiB held ~50 of them, and with two
 * sending workers per peer the receiving socket overflowed in bursts
 * (RcvbufErrors, then ~8k TCP retransmits per 10 s in the 4-stream bench);
 * 16 MiB did not. Memory is only used while datagrams wait.
 */
#define WGT_UDP_SOCKBUF_SIZE (16 << 20)

/* Most sockets in one reuseport group; workers are at most 64. */
#define WGT_UDP_GROUP_MAX 256

/* Attempts to find a port free for both families (wgt_udp_open_dual). */
#define WGT_UDP_PORT_TRIES 16

/*
 * Most segments one UDP_SEGMENT send may carry on every kernel with GSO:
 * UDP_MAX_SEGMENTS was 64 for years; Linux 6.18 takes 128 (measured: 129
 * gives -EINVAL). Above the kernel's limit the send fails with -EINVAL.
 */
#define WGT_UDP_MAX_SEGMENTS 64

/*
 * Control buffer room for what this module reads or writes per message:
 * a UDP_GRO int or UDP_SEGMENT u16, plus an in6_pktinfo (larger than
 * in_pktinfo). Declare it as a union with struct cmsghdr for alignment.
 */
#define WGT_UDP_CMSG_SPACE (CMSG_SPACE(sizeof(int)) + CMSG_SPACE(sizeof(struct in6_pktinfo)))

/* wgt_udp_open() flags. */
enum {
	/*
	 * Join the reuseport group already bound to `port` (nonzero):
	 * SO_REUSEPORT is set before bind. Without it the socket claims the
	 * port alone and enables SO_REUSEPORT after bind (see above).
	 */
	WGT_UDP_JOIN = 1U << 0,
};

/* Features reported by wgt_udp_probe_features(). */
enum {
	/* UDP_SEGMENT (Linux 4.18): one send carries many datagrams. */
	WGT_UDP_GSO = 1U << 0,
	/* UDP_GRO (Linux 5.0): one read may return many datagrams. */
	WGT_UDP_GRO = 1U << 1,
};

/*
 * Opens a nonblocking, close-on-exec UDP socket of `family` (AF_INET or
 * AF_INET6) bound to the wildcard address and `port` (0: the kernel picks).
 * Sets IPV6_V6ONLY (IPv6), IP_PKTINFO / IPV6_RECVPKTINFO, SO_MARK when
 * fwmark is nonzero, WGT_UDP_SOCKBUF_SIZE buffers, and SO_REUSEPORT.
 * The bound port goes to ret_port, which may be NULL.
 * Returns 0 or -errno: -EINVAL for a bad family or flags, or WGT_UDP_JOIN
 * with port 0; -EADDRINUSE when the port is taken (without WGT_UDP_JOIN:
 * taken at all; with it: by a socket that is not in a reuseport group of
 * ours); -EPERM for SO_MARK without CAP_NET_ADMIN; -EAFNOSUPPORT when the
 * kernel has no IPv6.
 * Control thread only.
 */
int wgt_udp_open(int family, uint16_t port, uint32_t fwmark, unsigned flags, int *ret_fd,
		 uint16_t *ret_port);

/*
 * Opens n (1..WGT_UDP_GROUP_MAX) sockets of `family` sharing one port: the
 * first claims `port` (0: the kernel picks), the others join it. ret_fds has
 * room for n; the port goes to ret_port, which may be NULL. Returns 0, or
 * -errno with nothing left open and every ret_fds entry -1.
 * Control thread only.
 */
int wgt_udp_open_group(int family, uint16_t port, uint32_t fwmark, unsigned n, int *ret_fds,
		       uint16_t *ret_port);

/*
 * Opens an IPv4 group and an IPv6 group of n sockets each, all on one port.
 * With port 0 it takes an ephemeral IPv4 port and binds IPv6 to it; if
 * that port is taken for IPv6 it starts over, at most WGT_UDP_PORT_TRIES
 * times (-EADDRINUSE after that). On a kernel without IPv6 the IPv6 group
 * is skipped: ret_fds6 is filled with -1 and the call succeeds.
 * Returns 0, or -errno with nothing left open and every entry -1.
 * Control thread only.
 */
int wgt_udp_open_dual(uint16_t port, uint32_t fwmark, unsigned n, int *ret_fds4,
		      int *ret_fds6, uint16_t *ret_port);

/*
 * Steers the datagrams of a reuseport group by their content: a datagram
 * whose byte `type_off` is `type` goes to socket (byte `sel_off`) % n of
 * the group, in the order the sockets joined it (wgt_udp_open_group's
 * ret_fds order); any other datagram, or one too short to hold both bytes,
 * keeps the kernel's 4-tuple hash. Offsets count from the UDP payload.
 * A classic BPF program (SO_ATTACH_REUSEPORT_CBPF, Linux 4.5) attached to
 * fd, any member, serves the whole group, and with UDP GRO it sees the
 * first datagram of a batch. n is 2..WGT_UDP_GROUP_MAX.
 * Returns 0 or -errno (-EINVAL for bad arguments).
 * Control thread only.
 */
int wgt_udp_steer(int fd, unsigned n, unsigned type_off, uint8_t type, unsigned sel_off);

/*
 * Reports which of WGT_UDP_GSO and WGT_UDP_GRO this kernel offers on fd and
 * enables what it can: UDP_SEGMENT is set to 0 (no per-socket default size;
 * sends ask per message), UDP_GRO is turned on. Returns 0 or -errno for an
 * error other than "unsupported". GSO supported here can still be refused
 * per path at send time; see wgt_udp_send_batch().
 * Control thread only.
 */
int wgt_udp_probe_features(int fd, unsigned *ret);

/*
 * Turns UDP_GRO on or off: with it on, reads must pass a control buffer and
 * split by wgt_udp_rx_info.gso_size. Returns 0 or -errno (-ENOPROTOOPT when
 * the kernel lacks UDP_GRO). Control thread only, before the worker runs.
 */
int wgt_udp_set_gro(int fd, bool on);

/*
 * Hot path. Receives up to n datagrams (recvmmsg, MSG_DONTWAIT). Before
 * every call the caller resets, per message, msg_namelen to the name buffer
 * size and msg_controllen to the control buffer size (the kernel overwrites
 * both) and gives iovecs of 65535 bytes when GRO is on.
 * Returns how many were received (msgs[i].msg_len bytes each, 1..n), or
 * -errno:
 *   -EAGAIN   nothing queued: poll the fd for POLLIN (retry);
 *   other     report and retry later (an error that arrives after the
 *             first datagram is kept for the next call by the kernel).
 * Worker-owned fd: one thread per socket.
 */
int wgt_udp_recv_batch(int fd, struct mmsghdr *msgs, unsigned n);

/* What the control messages of one received datagram said. */
struct wgt_udp_rx_info {
	/*
	 * UDP_GRO segment size: the payload is datagrams of gso_size bytes
	 * each, the last one possibly shorter. 0 when it is one datagram.
	 */
	uint16_t gso_size;
	/* Has `local` and `ifindex` (IP_PKTINFO / IPV6_PKTINFO was there). */
	bool has_local;
	/* Interface the datagram arrived on. */
	unsigned ifindex;
	/* Address the datagram was sent to (ours); port 0; a link-local
	 * IPv6 address gets ifindex as its scope id. */
	union wgt_sockaddr local;
};

/*
 * Parses the control messages of one received datagram (msgs[i].msg_hdr
 * after wgt_udp_recv_batch()). Returns 0, or -EMSGSIZE when the datagram or
 * its control data was cut short (MSG_TRUNC / MSG_CTRUNC): drop it, since a
 * lost UDP_GRO size would make one of many datagrams.
 * Any thread; touches only its arguments.
 */
int wgt_udp_rx_info_parse(const struct msghdr *msg, struct wgt_udp_rx_info *ret);

/*
 * Appends a control message to msg, whose msg_control points at a buffer
 * of `cap` bytes (aligned for struct cmsghdr) and whose msg_controllen is
 * the length used so far (0 to start). Returns 0, or -ENOBUFS when it does
 * not fit (wgt_udp_cmsg_add_src: -EAFNOSUPPORT for a family other than
 * AF_INET and AF_INET6). Any thread; touches only its arguments.
 *
 * wgt_udp_cmsg_add_segment: UDP_SEGMENT, the payload is split into
 * datagrams of gso_size bytes (the last may be shorter), at most
 * WGT_UDP_MAX_SEGMENTS of them, each fitting the path MTU.
 *
 * wgt_udp_cmsg_add_src: send from `src` (its family must be the socket's;
 * its port is ignored), e.g. the `local` of a datagram received from the
 * same peer; ifindex 0 lets routing pick the interface, nonzero forces it
 * (needed for an IPv6 link-local source).
 */
int wgt_udp_cmsg_add_segment(struct msghdr *msg, size_t cap, uint16_t gso_size);
int wgt_udp_cmsg_add_src(struct msghdr *msg, size_t cap, const union wgt_sockaddr *src,
			 unsigned ifindex);

/*
 * Hot path. Sends up to n messages (sendmmsg, MSG_DONTWAIT). Three outcomes:
 *   > 0       sent: that many messages left, in order. If fewer than n, call
 *             again from msgs[ret]; the error that stopped the batch, if
 *             any, is returned by that call.
 *   -EAGAIN   retry: the socket buffer is full, poll the fd for POLLOUT.
 *   other     fatal for msgs[0]: drop it (count it) and go on with
 *             msgs[1]. Notably:
 *             -EIO      a UDP_SEGMENT send the path refused (an xfrm
 *                       route, or on older kernels an egress device
 *                       without checksum offload): turn GSO off for this socket and resend
 *                       msgs[0] as separate datagrams;
 *             -EINVAL   with UDP_SEGMENT: too many segments, or a segment
 *                       larger than the path MTU; with a source cmsg: the
 *                       source address is no longer ours, clear it and
 *                       resend;
 *             -EMSGSIZE datagram larger than the path MTU allows;
 *             -ENETUNREACH, -EHOSTUNREACH, -EPERM (firewall): per
 *                       destination, drop.
 * Worker-owned fd (the control thread may send through a worker's fd only
 * with sendmsg calls of its own; the kernel serializes them).
 */
int wgt_udp_send_batch(int fd, struct mmsghdr *msgs, unsigned n);

#ifdef WGT_TEST_HOOKS
/*
 * Test builds only (-Dtest_hooks=true): from now on, per_mille of every 1000
 * wgt_udp_send_batch() calls fail with -err before reaching the kernel, as a
 * storm of ENOBUFS or EAGAIN would; 0 turns it off. Any thread.
 */
void wgt_udp_test_fail_sends(int err, unsigned per_mille);
#endif

#endif
