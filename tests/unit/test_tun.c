/* SPDX-License-Identifier: MIT */
/* Multi-queue TUN: open, offloads, interface ioctls and packets both ways, in a private netns. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <poll.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "io/checksum.h"
#include "io/tun.h"
#include "netns.h"

#ifndef VIRTIO_NET_HDR_GSO_UDP_L4
#define VIRTIO_NET_HDR_GSO_UDP_L4 5
#endif
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif

#define POLL_TIMEOUT_MS 2000
#define VNET WGT_TUN_VNET_HDR_LEN

static void run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Runs an `ip` command line; the test fails if it does. */
static void run(const char *fmt, ...)
{
	char cmd[256];
	va_list ap;
	int r;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	r = system(cmd);
	ck_assert_msg(r == 0, "`%s` failed: %d", cmd, r);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void close_all(int *fds, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

/* Opens a device, numbers it, gives it an MTU, IPv4 prefix 10.77.<net>.1/24, and up. */
static void setup_dev(const char *name, unsigned nqueues, unsigned flags, int *fds,
		      char ifname[IFNAMSIZ], int net)
{
	ck_assert_int_eq(wgt_tun_open(name, nqueues, flags, fds, ifname), 0);
	ck_assert_int_eq(wgt_tun_set_mtu(ifname, 1420), 0);
	run("ip addr add 10.77.%d.1/24 dev %s", net, ifname);
	ck_assert_int_eq(wgt_tun_set_up(ifname, true), 0);
}

static uint16_t get_be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* Where the UDP header of an IPv4 or IPv6 packet starts; 0 if not UDP. */
static size_t udp_offset(const uint8_t *ip, size_t len)
{
	if (len >= 28 && ip[0] >> 4 == 4 && ip[9] == IPPROTO_UDP)
		return (size_t)(ip[0] & 0xf) * 4;
	if (len >= 48 && ip[0] >> 4 == 6 && ip[6] == IPPROTO_UDP)
		return 40;
	return 0;
}

/*
 * Polls every queue until a UDP packet for dport comes out of one, skipping
 * anything else the stack sends (IPv6 router solicitations, MLD). Returns
 * the packet length after the virtio-net header, which stays at buf.
 */
static size_t read_udp(const int *fds, unsigned n, bool vnet, uint16_t dport, uint8_t *buf,
		       size_t cap, unsigned *ret_queue)
{
	int64_t deadline = now_ms() + POLL_TIMEOUT_MS;
	struct pollfd pfds[8];
	size_t hdr = vnet ? VNET : 0;

	ck_assert_uint_le(n, 8);
	for (unsigned i = 0; i < n; i++)
		pfds[i] = (struct pollfd){ .fd = fds[i], .events = POLLIN };

	for (;;) {
		int64_t left = deadline - now_ms();
		int r;

		ck_assert_msg(left > 0, "no UDP packet for port %u on any queue", dport);
		r = poll(pfds, n, (int)left);
		ck_assert_int_ge(r, 0);
		for (unsigned i = 0; i < n; i++) {
			ssize_t len;
			size_t off;

			if (!(pfds[i].revents & POLLIN))
				continue;
			len = wgt_tun_read(fds[i], buf, cap);
			if (len == -EAGAIN)
				continue;
			ck_assert_int_gt(len, (ssize_t)hdr);
			off = udp_offset(buf + hdr, (size_t)len - hdr);
			if (off && get_be16(buf + hdr + off + 2) == dport) {
				if (ret_queue)
					*ret_queue = i;
				return (size_t)len - hdr;
			}
		}
	}
}

/* The UDP checksum of an IPv4 or IPv6 packet verifies (sums to all ones). */
static void assert_udp_csum_ok(const uint8_t *ip, size_t len)
{
	size_t off = udp_offset(ip, len);
	uint32_t s;

	ck_assert_uint_ne(off, 0);
	if (ip[0] >> 4 == 4)
		s = wgt_csum_pseudo_ipv4(ip + 12, ip + 16, IPPROTO_UDP, (uint16_t)(len - off), 0);
	else
		s = wgt_csum_pseudo_ipv6(ip + 8, ip + 24, IPPROTO_UDP, (uint32_t)(len - off), 0);
	s = wgt_csum_partial(ip + off, len - off, s);
	ck_assert_uint_eq(wgt_csum_fold(s), 0xffff);
}

static int udp_socket_to(const char *dst, uint16_t port, const void *payload, size_t len)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(inet_pton(AF_INET, dst, &a.sin_addr), 1);
	ck_assert_int_eq(sendto(fd, payload, len, 0, (struct sockaddr *)&a, sizeof(a)), (ssize_t)len);
	return fd;
}

/* Socket bound to addr:0; returns the fd and its port. */
static int udp_listen(const char *addr, uint16_t *ret_port)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(inet_pton(AF_INET, addr, &a.sin_addr), 1);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
	*ret_port = ntohs(a.sin_port);
	return fd;
}

/* recv() with a bounded wait. */
static ssize_t recv_wait(int fd, void *buf, size_t len, struct sockaddr_in *from)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	socklen_t flen = sizeof(*from);

	ck_assert_int_eq(poll(&p, 1, POLL_TIMEOUT_MS), 1);
	return recvfrom(fd, buf, len, MSG_DONTWAIT, (struct sockaddr *)from, &flen);
}

/*
 * Builds IPv4 + UDP from src:sport to dst:dport around payload, both
 * checksums filled in (UDP: complete, or with partial the pseudo-header sum
 * only, as for VIRTIO_NET_HDR_F_NEEDS_CSUM). Returns the packet length.
 */
static size_t build_udp4(uint8_t *pkt, const char *src, uint16_t sport, const char *dst,
			 uint16_t dport, const uint8_t *payload, size_t plen, bool partial)
{
	uint16_t tot = (uint16_t)(20 + 8 + plen), ulen = (uint16_t)(8 + plen), csum;

	memset(pkt, 0, 28);
	pkt[0] = 0x45;
	pkt[2] = (uint8_t)(tot >> 8);
	pkt[3] = (uint8_t)tot;
	pkt[4] = 0x12;
	pkt[5] = 0x34;
	pkt[6] = 0x40; /* DF */
	pkt[8] = 64;
	pkt[9] = IPPROTO_UDP;
	ck_assert_int_eq(inet_pton(AF_INET, src, pkt + 12), 1);
	ck_assert_int_eq(inet_pton(AF_INET, dst, pkt + 16), 1);
	csum = wgt_csum_finish(wgt_csum_partial(pkt, 20, 0));
	memcpy(pkt + 10, &csum, 2);

	pkt[20] = (uint8_t)(sport >> 8);
	pkt[21] = (uint8_t)sport;
	pkt[22] = (uint8_t)(dport >> 8);
	pkt[23] = (uint8_t)dport;
	pkt[24] = (uint8_t)(ulen >> 8);
	pkt[25] = (uint8_t)ulen;
	memcpy(pkt + 28, payload, plen);
	if (partial) {
		csum = wgt_csum_fold(wgt_csum_pseudo_ipv4(pkt + 12, pkt + 16, IPPROTO_UDP, ulen, 0));
	} else {
		csum = wgt_csum_finish(wgt_csum_partial(
			pkt + 20, ulen, wgt_csum_pseudo_ipv4(pkt + 12, pkt + 16, IPPROTO_UDP, ulen, 0)));
		if (csum == 0)
			csum = 0xffff;
	}
	memcpy(pkt + 26, &csum, 2);
	return tot;
}

START_TEST(test_open_basic)
{
	char ifname[IFNAMSIZ];
	int fds[2] = { -1, -1 };
	unsigned idx = 0, mtu = 0;

	ck_assert_int_eq(wgt_tun_open("wgtb%d", 2, 0, fds, ifname), 0);
	ck_assert_str_eq(ifname, "wgtb0");
	ck_assert_int_ne(fds[0], fds[1]);
	for (int i = 0; i < 2; i++) {
		struct ifreq ifr;

		ck_assert(fcntl(fds[i], F_GETFL) & O_NONBLOCK);
		ck_assert(fcntl(fds[i], F_GETFD) & FD_CLOEXEC);
		memset(&ifr, 0, sizeof(ifr));
		ck_assert_int_eq(ioctl(fds[i], TUNGETIFF, &ifr), 0);
		ck_assert_str_eq(ifr.ifr_name, "wgtb0");
		ck_assert(ifr.ifr_flags & IFF_MULTI_QUEUE);
		ck_assert(ifr.ifr_flags & IFF_NO_PI);
		ck_assert(!(ifr.ifr_flags & IFF_VNET_HDR));
		/* Nothing queued yet. */
		ck_assert_int_eq(wgt_tun_read(fds[i], &ifr, sizeof(ifr)), -EAGAIN);
	}
	ck_assert(wgt_tun_exists(ifname));
	ck_assert_int_eq(wgt_tun_get_ifindex(ifname, &idx), 0);
	ck_assert_uint_gt(idx, 0);
	ck_assert_int_eq(wgt_tun_set_mtu(ifname, 1380), 0);
	ck_assert_int_eq(wgt_tun_get_mtu(ifname, &mtu), 0);
	ck_assert_uint_eq(mtu, 1380);
	ck_assert_int_eq(wgt_tun_set_up(ifname, true), 0);
	ck_assert_int_eq(wgt_tun_set_up(ifname, false), 0);

	/* The device lives as long as one queue does. */
	close(fds[0]);
	ck_assert(wgt_tun_exists(ifname));
	close(fds[1]);
	ck_assert(!wgt_tun_exists(ifname));
	ck_assert_int_eq(wgt_tun_get_ifindex(ifname, &idx), -ENODEV);
}
END_TEST

START_TEST(test_open_errors)
{
	char ifname[IFNAMSIZ], other[IFNAMSIZ];
	int fds[4] = { -1, -1, -1, -1 };
	unsigned probed;

	/* IFNAMSIZ is 16 with the NUL: 15 characters fit, 16 do not. */
	ck_assert_int_eq(wgt_tun_open("abcdefghijklmnop", 1, 0, fds, ifname), -ENAMETOOLONG);
	ck_assert(!wgt_tun_exists("abcdefghijklmnop"));
	ck_assert_int_eq(wgt_tun_set_mtu("abcdefghijklmnop", 1400), -ENAMETOOLONG);
	ck_assert_int_eq(wgt_tun_open("", 1, 0, fds, ifname), -EINVAL);
	ck_assert_int_eq(wgt_tun_open(NULL, 1, 0, fds, ifname), -EINVAL);
	ck_assert_int_eq(wgt_tun_open("wgte%d", 0, 0, fds, ifname), -EINVAL);
	ck_assert_int_eq(wgt_tun_open("wgte%d", WGT_TUN_MAX_QUEUES + 1, 0, fds, ifname), -EINVAL);
	ck_assert_int_eq(wgt_tun_open("wgte%d", 1, 1U << 7, fds, ifname), -EINVAL);
	ck_assert_int_eq(wgt_tun_open("bad/name", 1, 0, fds, ifname), -EINVAL);
	ck_assert_int_eq(fds[0], -1);

	ck_assert_int_eq(wgt_tun_open("abcdefghijklmno", 2, 0, fds, ifname), 0);
	ck_assert_str_eq(ifname, "abcdefghijklmno");
	/* Taken: a second daemon must not silently share the flows. */
	ck_assert_int_eq(wgt_tun_open(ifname, 2, 0, fds + 2, other), -EBUSY);
	/* Unless it asks to attach. */
	ck_assert_int_eq(wgt_tun_open(ifname, 2, WGT_TUN_ATTACH, fds + 2, other), 0);
	ck_assert_str_eq(other, ifname);
	/* Not a TUN device. */
	ck_assert_int_eq(wgt_tun_open("lo", 1, WGT_TUN_ATTACH, fds, other), -EINVAL);

	/* Offloads need the virtio-net header. */
	ck_assert_int_eq(wgt_tun_set_offload(fds[0], WGT_TUN_OFFLOAD_CSUM), -EINVAL);
	ck_assert_int_eq(wgt_tun_set_offload(fds[0], 0), 0);
	ck_assert_int_eq(wgt_tun_probe_offloads(fds[0], &probed), -EINVAL);
	ck_assert_int_eq(wgt_tun_set_offload(-1, 0), -EBADF);
	close_all(fds, 4);
	ck_assert(!wgt_tun_exists(ifname));
}
END_TEST

START_TEST(test_attach_persistent)
{
	char ifname[IFNAMSIZ];
	int fds[2] = { -1, -1 };

	run("ip tuntap add mode tun multi_queue name wgtp0");
	ck_assert_int_eq(wgt_tun_open("wgtp0", 2, 0, fds, ifname), -EBUSY);
	ck_assert_int_eq(fds[0], -1);
	ck_assert_int_eq(wgt_tun_open("wgtp0", 2, WGT_TUN_ATTACH, fds, ifname), 0);
	close_all(fds, 2);
	/* Persistent: it outlives our queues. */
	ck_assert(wgt_tun_exists("wgtp0"));
	run("ip link del wgtp0");
	ck_assert(!wgt_tun_exists("wgtp0"));
}
END_TEST

START_TEST(test_read_ipv4)
{
	static const char payload[] = "from the host to the tunnel";
	uint8_t buf[2048];
	char ifname[IFNAMSIZ];
	int fds[2] = { -1, -1 };
	unsigned queue = 99;
	size_t len;
	uint32_t s;
	int sock;

	setup_dev("wgtr%d", 2, 0, fds, ifname, 1);
	sock = udp_socket_to("10.77.1.2", 4001, payload, sizeof(payload));
	len = read_udp(fds, 2, false, 4001, buf, sizeof(buf), &queue);
	ck_assert_uint_lt(queue, 2);

	ck_assert_uint_eq(len, 20 + 8 + sizeof(payload));
	ck_assert_uint_eq(buf[0], 0x45);
	ck_assert_uint_eq(buf[16], 10);
	ck_assert_uint_eq(buf[18], 1);
	ck_assert_uint_eq(buf[19], 2);
	/* The kernel's own checksums verify with ours. */
	s = wgt_csum_partial(buf, 20, 0);
	ck_assert_uint_eq(wgt_csum_fold(s), 0xffff);
	assert_udp_csum_ok(buf, len);
	ck_assert_mem_eq(buf + 28, payload, sizeof(payload));

	close(sock);
	close_all(fds, 2);
}
END_TEST

START_TEST(test_read_ipv6)
{
	uint8_t buf[2048], payload[333];
	struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_port = htons(4002) };
	char ifname[IFNAMSIZ];
	int fds[2] = { -1, -1 };
	size_t len;
	int sock;

	memset(payload, 0xa5, sizeof(payload));
	ck_assert_int_eq(wgt_tun_open("wgt6%d", 2, 0, fds, ifname), 0);
	ck_assert_int_eq(wgt_tun_set_up(ifname, true), 0);
	/* nodad: usable at once, no sleeping through duplicate detection. */
	run("ip -6 addr add fd77::1/64 dev %s nodad", ifname);

	sock = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(sock, 0);
	ck_assert_int_eq(inet_pton(AF_INET6, "fd77::2", &a.sin6_addr), 1);
	ck_assert_int_eq(sendto(sock, payload, sizeof(payload), 0, (struct sockaddr *)&a, sizeof(a)),
			 (ssize_t)sizeof(payload));

	len = read_udp(fds, 2, false, 4002, buf, sizeof(buf), NULL);
	ck_assert_uint_eq(len, 40 + 8 + sizeof(payload));
	ck_assert_uint_eq(buf[0] >> 4, 6);
	assert_udp_csum_ok(buf, len);
	ck_assert_mem_eq(buf + 48, payload, sizeof(payload));

	close(sock);
	close_all(fds, 2);
}
END_TEST

START_TEST(test_write_ipv4)
{
	static const uint8_t payload[] = "from the tunnel to the host";
	uint8_t pkt[256], got[256];
	struct sockaddr_in from;
	char ifname[IFNAMSIZ];
	int fds[2] = { -1, -1 };
	uint16_t port;
	size_t len;
	int sock;

	ck_assert_int_eq(wgt_tun_open("wgtw%d", 2, 0, fds, ifname), 0);
	run("ip addr add 10.77.2.1/24 dev %s", ifname);
	sock = udp_listen("10.77.2.1", &port);
	len = build_udp4(pkt, "10.77.2.2", 4242, "10.77.2.1", port, payload, sizeof(payload), false);

	/* Down: the kernel refuses with EIO. */
	ck_assert_int_eq(wgt_tun_write(fds[1], pkt, len), -EIO);

	ck_assert_int_eq(wgt_tun_set_up(ifname, true), 0);
	ck_assert_int_eq(wgt_tun_write(fds[1], pkt, len), (ssize_t)len);
	ck_assert_int_eq(recv_wait(sock, got, sizeof(got), &from), (ssize_t)sizeof(payload));
	ck_assert_mem_eq(got, payload, sizeof(payload));
	ck_assert_uint_eq(ntohs(from.sin_port), 4242);
	ck_assert_uint_eq(ntohl(from.sin_addr.s_addr), 0x0a4d0202);

	/* TUN checks only the IP version (IP drops other damage later, after
	 * the write succeeded). */
	pkt[0] = 0x35;
	ck_assert_int_eq(wgt_tun_write(fds[0], pkt, len), -EINVAL);
	pkt[0] = 0x45;
	ck_assert_int_eq(wgt_tun_write(fds[0], pkt, 3), 3);

	close(sock);
	close_all(fds, 2);
}
END_TEST

START_TEST(test_vnet_hdr)
{
	static const uint8_t payload[] = "with a virtio-net header";
	uint8_t buf[WGT_TUN_READ_MAX], got[256];
	struct virtio_net_hdr vh;
	struct sockaddr_in from;
	char ifname[IFNAMSIZ];
	int fds[2] = { -1, -1 };
	unsigned offloads = 0;
	struct iovec iov[2];
	uint16_t port;
	size_t len;
	int sock;

	ck_assert_int_eq(wgt_tun_open("wgtv%d", 2, WGT_TUN_VNET_HDR, fds, ifname), 0);
	ck_assert_int_eq(wgt_tun_probe_offloads(fds[0], &offloads), 0);
	printf("tun offloads: csum %d tso4 %d tso6 %d uso4 %d uso6 %d\n",
	       !!(offloads & WGT_TUN_OFFLOAD_CSUM), !!(offloads & WGT_TUN_OFFLOAD_TSO4),
	       !!(offloads & WGT_TUN_OFFLOAD_TSO6), !!(offloads & WGT_TUN_OFFLOAD_USO4),
	       !!(offloads & WGT_TUN_OFFLOAD_USO6));
	ck_assert(offloads & WGT_TUN_OFFLOAD_CSUM);
	/* The kernel takes USO4 only with USO6, and TSO only with CSUM. */
	ck_assert_int_eq(wgt_tun_set_offload(fds[1], WGT_TUN_OFFLOAD_CSUM | WGT_TUN_OFFLOAD_USO4),
			 -EINVAL);
	ck_assert_int_eq(wgt_tun_set_offload(fds[1], WGT_TUN_OFFLOAD_TSO4), -EINVAL);
	ck_assert_int_eq(wgt_tun_set_offload(fds[1], 1U << 9), -EINVAL);
	/* Device-wide: set through one queue, seen through the other. */
	ck_assert_int_eq(wgt_tun_set_offload(fds[1], offloads), 0);

	ck_assert_int_eq(wgt_tun_set_mtu(ifname, 1420), 0);
	run("ip addr add 10.77.3.1/24 dev %s", ifname);
	ck_assert_int_eq(wgt_tun_set_up(ifname, true), 0);

	/* Host -> tunnel: header first; with CSUM offload the UDP checksum
	 * may be left to us (NEEDS_CSUM), which we then complete. */
	sock = udp_socket_to("10.77.3.2", 4003, payload, sizeof(payload));
	len = read_udp(fds, 2, true, 4003, buf, sizeof(buf), NULL);
	memcpy(&vh, buf, sizeof(vh));
	ck_assert_uint_eq(vh.gso_type, VIRTIO_NET_HDR_GSO_NONE);
	ck_assert_uint_eq(len, 28 + sizeof(payload));
	if (vh.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
		uint8_t *l4 = buf + VNET + vh.csum_start;
		uint16_t csum;

		ck_assert_uint_eq(vh.csum_start, 20);
		ck_assert_uint_eq(vh.csum_offset, 6);
		csum = wgt_csum_finish(wgt_csum_partial(l4, len - vh.csum_start, 0));
		memcpy(l4 + vh.csum_offset, &csum, 2);
	}
	printf("tun read: virtio-net flags %#x (NEEDS_CSUM %s)\n", vh.flags,
	       vh.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM ? "yes" : "no");
	assert_udp_csum_ok(buf + VNET, len);
	close(sock);

	/* Tunnel -> host: a zeroed header says "plain packet, checksums done". */
	sock = udp_listen("10.77.3.1", &port);
	memset(&vh, 0, sizeof(vh));
	len = build_udp4(buf, "10.77.3.2", 4343, "10.77.3.1", port, payload, sizeof(payload), false);
	iov[0] = (struct iovec){ .iov_base = &vh, .iov_len = sizeof(vh) };
	iov[1] = (struct iovec){ .iov_base = buf, .iov_len = len };
	ck_assert_int_eq(wgt_tun_writev(fds[0], iov, 2), (ssize_t)(VNET + len));
	ck_assert_int_eq(recv_wait(sock, got, sizeof(got), &from), (ssize_t)sizeof(payload));
	ck_assert_mem_eq(got, payload, sizeof(payload));
	ck_assert_uint_eq(ntohs(from.sin_port), 4343);

	/* A header alone is too short to be a packet. */
	ck_assert_int_eq(wgt_tun_write(fds[0], &vh, sizeof(vh)), -EINVAL);

	close(sock);
	close_all(fds, 2);
}
END_TEST

/* UDP segmentation offload both ways, when the kernel has it (6.2+). */
START_TEST(test_vnet_uso)
{
	enum { SEG = 1000, NSEG = 3 };
	uint8_t buf[WGT_TUN_READ_MAX], payload[SEG * NSEG], got[SEG * NSEG];
	struct virtio_net_hdr vh;
	struct sockaddr_in from;
	char ifname[IFNAMSIZ];
	int fds[2] = { -1, -1 };
	unsigned offloads = 0;
	uint16_t port, gso = SEG;
	size_t len;
	int sock;

	for (size_t i = 0; i < sizeof(payload); i++)
		payload[i] = (uint8_t)(i * 7);
	ck_assert_int_eq(wgt_tun_open("wgtu%d", 2, WGT_TUN_VNET_HDR, fds, ifname), 0);
	ck_assert_int_eq(wgt_tun_probe_offloads(fds[0], &offloads), 0);
	if (!(offloads & WGT_TUN_OFFLOAD_USO4)) {
		printf("tun: no USO on this kernel, skipping the USO round trip\n");
		close_all(fds, 2);
		return;
	}
	ck_assert_int_eq(wgt_tun_set_mtu(ifname, 1420), 0);
	run("ip addr add 10.77.4.1/24 dev %s", ifname);
	ck_assert_int_eq(wgt_tun_set_up(ifname, true), 0);

	/* Host -> tunnel: one UDP_SEGMENT send arrives as one super-packet. */
	sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(sock, 0);
	ck_assert_int_eq(setsockopt(sock, SOL_UDP, UDP_SEGMENT, &(int){ SEG }, sizeof(int)), 0);
	{
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(4004) };

		inet_pton(AF_INET, "10.77.4.2", &a.sin_addr);
		ck_assert_int_eq(sendto(sock, payload, sizeof(payload), 0, (struct sockaddr *)&a,
					sizeof(a)),
				 (ssize_t)sizeof(payload));
	}
	len = read_udp(fds, 2, true, 4004, buf, sizeof(buf), NULL);
	memcpy(&vh, buf, sizeof(vh));
	printf("tun read after a 3-segment UDP GSO send: %zu bytes, gso_type %u gso_size %u\n",
	       len, vh.gso_type, vh.gso_size);
	ck_assert_uint_eq(vh.gso_type, VIRTIO_NET_HDR_GSO_UDP_L4);
	ck_assert_uint_eq(vh.gso_size, SEG);
	ck_assert(vh.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM);
	ck_assert_uint_eq(len, 28 + sizeof(payload));
	ck_assert_mem_eq(buf + VNET + 28, payload, sizeof(payload));
	close(sock);

	/* Tunnel -> host: one USO write reaches a plain socket as 3 datagrams. */
	sock = udp_listen("10.77.4.1", &port);
	len = build_udp4(buf + VNET, "10.77.4.2", 4444, "10.77.4.1", port, payload,
			 sizeof(payload), true);
	memset(&vh, 0, sizeof(vh));
	vh.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	vh.gso_type = VIRTIO_NET_HDR_GSO_UDP_L4;
	vh.hdr_len = 28;
	vh.gso_size = gso;
	vh.csum_start = 20;
	vh.csum_offset = 6;
	memcpy(buf, &vh, sizeof(vh));
	ck_assert_int_eq(wgt_tun_write(fds[1], buf, VNET + len), (ssize_t)(VNET + len));
	for (int i = 0; i < NSEG; i++) {
		ck_assert_int_eq(recv_wait(sock, got, sizeof(got), &from), SEG);
		ck_assert_mem_eq(got, payload + i * SEG, SEG);
	}
	close(sock);
	close_all(fds, 2);
}
END_TEST

START_TEST(test_deleted)
{
	char ifname[IFNAMSIZ];
	int fds[2] = { -1, -1 };
	uint8_t buf[64];

	setup_dev("wgtd%d", 2, 0, fds, ifname, 5);
	ck_assert(wgt_tun_exists(ifname));
	run("ip link del %s", ifname);
	ck_assert(!wgt_tun_exists(ifname));
	/* The queues are detached: every call says the device is gone. */
	ck_assert_int_eq(wgt_tun_read(fds[0], buf, sizeof(buf)), -EBADFD);
	ck_assert_int_eq(wgt_tun_write(fds[1], buf, sizeof(buf)), -EBADFD);
	close_all(fds, 2);
}
END_TEST

static Suite *tun_suite(void)
{
	Suite *s = suite_create("tun");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_open_basic);
	tcase_add_test(tc, test_open_errors);
	tcase_add_test(tc, test_attach_persistent);
	tcase_add_test(tc, test_read_ipv4);
	tcase_add_test(tc, test_read_ipv6);
	tcase_add_test(tc, test_write_ipv4);
	tcase_add_test(tc, test_vnet_hdr);
	tcase_add_test(tc, test_vnet_uso);
	tcase_add_test(tc, test_deleted);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr;
	int failed;

	if (unit_enter_netns("test_tun", "TUN devices, a network namespace"))
		return 77;

	sr = srunner_create(tun_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
