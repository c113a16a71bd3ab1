/* SPDX-License-Identifier: MIT */
/* Multi-queue TUN device: open, virtio-net offloads, interface ioctls, hot-path read/write. */
#ifndef WGT_IO_TUN_H
#define WGT_IO_TUN_H

/*
 * One TUN device, N queues: every queue is its own fd on /dev/net/tun
 * attached to the same interface with IFF_MULTI_QUEUE. The kernel picks the
 * queue for a packet leaving the host by flow hash, so a flow stays on one
 * queue and one worker. Queues are equal; the device lives while any queue
 * fd is open (it is not made persistent) and disappears with the last one.
 *
 * Device-wide, not per queue: IFF_VNET_HDR, the virtio-net header size and
 * the offload set (TUNSETOFFLOAD). Setting them through any queue fd sets
 * them for all queues, so do it once, from one fd, before the workers start.
 *
 * With IFF_VNET_HDR every read and write starts with a 10-byte
 * struct virtio_net_hdr (<linux/virtio_net.h>), its 16-bit fields in host
 * byte order (TUN's legacy virtio default; we never set TUNSETVNETLE/BE).
 * With TSO/USO enabled a read may return a super-packet of up to 64 KiB
 * that the caller splits; a write may carry one too (GSO_TCPV4/6,
 * GSO_UDP_L4) and the kernel segments it.
 */

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct iovec;

/* The kernel's limit on queues per TUN device (MAX_TAP_QUEUES). */
#define WGT_TUN_MAX_QUEUES 256

/* sizeof(struct virtio_net_hdr): no mergeable-buffers field on TUN. */
#define WGT_TUN_VNET_HDR_LEN 10

/* Largest read: a 64 KiB GSO super-packet behind the virtio-net header. */
#define WGT_TUN_READ_MAX (WGT_TUN_VNET_HDR_LEN + 65535)

/* wgt_tun_open() flags. */
enum {
	/* Every packet carries a virtio-net header (IFF_VNET_HDR). */
	WGT_TUN_VNET_HDR = 1U << 0,
	/*
	 * Attach to a TUN device that already exists (say one made persistent
	 * with `ip tuntap add mode tun multi_queue`) instead of failing with
	 * -EBUSY. Without it the first queue is opened with IFF_TUN_EXCL.
	 */
	WGT_TUN_ATTACH = 1U << 1,
};

/* Offloads the TUN device accepts from the stack (TUNSETOFFLOAD). */
enum {
	/* Packets may leave the checksum to us (VIRTIO_NET_HDR_F_NEEDS_CSUM). */
	WGT_TUN_OFFLOAD_CSUM = 1U << 0,
	/* TCP segmentation offload: TCP super-packets. Needs CSUM. */
	WGT_TUN_OFFLOAD_TSO4 = 1U << 1,
	WGT_TUN_OFFLOAD_TSO6 = 1U << 2,
	/* UDP segmentation offload (Linux 6.2): UDP super-packets. Needs CSUM;
	 * the kernel accepts USO4 and USO6 only together. */
	WGT_TUN_OFFLOAD_USO4 = 1U << 3,
	WGT_TUN_OFFLOAD_USO6 = 1U << 4,
};

#define WGT_TUN_OFFLOAD_ALL                                                  \
	(WGT_TUN_OFFLOAD_CSUM | WGT_TUN_OFFLOAD_TSO4 | WGT_TUN_OFFLOAD_TSO6 | \
	 WGT_TUN_OFFLOAD_USO4 | WGT_TUN_OFFLOAD_USO6)

/*
 * Creates (or with WGT_TUN_ATTACH, attaches to) TUN device `name` and opens
 * nqueues queues on it: IFF_TUN | IFF_NO_PI | IFF_MULTI_QUEUE, plus
 * IFF_VNET_HDR with WGT_TUN_VNET_HDR. Every fd is O_CLOEXEC and O_NONBLOCK.
 * `name` may hold one "%d" for the kernel to number; the name it chose goes
 * to ret_ifname. ret_fds has room for nqueues fds.
 *
 * Returns 0, or -errno and leaves nothing open: -EINVAL for an empty name,
 * nqueues 0 or above WGT_TUN_MAX_QUEUES, unknown flags, or a name the kernel
 * refuses; -ENAMETOOLONG when name does not fit IFNAMSIZ; -EBUSY when the
 * device exists and WGT_TUN_ATTACH is not given; -EPERM without
 * CAP_NET_ADMIN; -ENOENT when /dev/net/tun is missing.
 *
 * Why IFF_TUN_EXCL by default: a multi-queue device accepts any number of
 * attached queues, so without it a second daemon (or a stale persistent
 * device) on the same name would silently share the flows with us.
 * wireguard-go does not set it; it has one queue and no such split.
 *
 * Control thread only (blocking setup syscalls).
 */
int wgt_tun_open(const char *name, unsigned nqueues, unsigned flags, int *ret_fds,
		 char ret_ifname[IFNAMSIZ]);

/*
 * Sets the virtio-net header size (10) and the device's offload set to
 * `offloads` (WGT_TUN_OFFLOAD_*; 0 turns them all off). The fd must have been
 * opened with WGT_TUN_VNET_HDR unless offloads is 0 (-EINVAL otherwise).
 * Returns 0 or -errno; -EINVAL also when this kernel does not know a
 * requested offload or the combination is invalid (TSO/USO without CSUM,
 * USO4 without USO6). Device-wide: any one queue fd will do.
 * Control thread only.
 */
int wgt_tun_set_offload(int fd, unsigned offloads);

/*
 * Enables the best offload set this kernel accepts and reports it in
 * ret_supported: all of WGT_TUN_OFFLOAD_ALL, else without USO (before Linux
 * 6.2), else CSUM only, else none (0, still a success). Returns 0, or -errno
 * for an error other than "unsupported" (a bad fd; no IFF_VNET_HDR gives
 * -EINVAL). The device is left with the reported set enabled.
 * Control thread only.
 */
int wgt_tun_probe_offloads(int fd, unsigned *ret_supported);

/*
 * Interface helpers by name, through ioctls on a short-lived AF_INET
 * datagram socket (rtnetlink replaces them with the daemon). They work on
 * any interface in the caller's network namespace. Each returns 0 or -errno
 * (-ENODEV: no such interface; -ENAMETOOLONG: name too long).
 * Control thread only.
 */
int wgt_tun_get_ifindex(const char *ifname, unsigned *ret_ifindex);
int wgt_tun_get_mtu(const char *ifname, unsigned *ret_mtu);
int wgt_tun_set_mtu(const char *ifname, unsigned mtu);
/* Sets or clears IFF_UP (read-modify-write of the flags; not atomic against
 * another writer of the same interface's flags). */
int wgt_tun_set_up(const char *ifname, bool up);
/* Whether IFF_UP is set (the administrative state `ip link set up/down` changes). */
int wgt_tun_get_up(const char *ifname, bool *ret_up);

/*
 * Whether an interface of that name exists now, so the daemon can notice
 * that its device was deleted (`ip link del`). Queue fds of a deleted device
 * also fail reads and writes with -EBADFD. Any thread.
 */
bool wgt_tun_exists(const char *ifname);

/*
 * Hot path. Reads one packet (with its virtio-net header when the device has
 * IFF_VNET_HDR) into buf. Returns its length, or -errno:
 *   -EAGAIN   no packet now: poll the fd for POLLIN (retry);
 *   -EBADFD   the device is gone (fatal for this fd);
 *   other     fatal for this call (-EFAULT, -EINVAL for a buffer shorter
 *             than the virtio-net header).
 * A packet longer than len is silently cut to len (the return is then len,
 * so it cannot be told apart): size buf as WGT_TUN_READ_MAX with offloads
 * on, or above MTU (+ header) without.
 * Worker-owned fd: one thread per queue fd.
 */
ssize_t wgt_tun_read(int fd, void *buf, size_t len);

/*
 * Hot path. Writes one packet (header included with IFF_VNET_HDR) from buf,
 * or gathered from iov for wgt_tun_writev(). Returns the bytes written, or
 * -errno:
 *   -EAGAIN   would block (rare: TUN writes do not wait for the stack); retry;
 *   -EIO      the interface is down: drop the packet (the kernel does too);
 *   -EINVAL   neither IPv4 nor IPv6 by its first nibble, or a bad
 *             virtio-net header: drop it (TUN checks no more than that;
 *             IP drops other damage later and the write still succeeds);
 *   -EBADFD   the device is gone (fatal for this fd);
 *   other     drop the packet.
 * Worker-owned fd: one thread per queue fd.
 */
ssize_t wgt_tun_write(int fd, const void *buf, size_t len);
ssize_t wgt_tun_writev(int fd, const struct iovec *iov, int iovcnt);

#endif
