/* SPDX-License-Identifier: MIT */
/* UDP reuseport groups, GSO/GRO, pktinfo and mmsg batches over loopback, in a private netns. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <poll.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "io/tun.h"
#include "io/udp.h"
#include "netns.h"

#define POLL_TIMEOUT_MS 2000
#define SLOTS 16

/* One receive slot: a GRO-sized buffer, its name and control room. */
struct slot {
	uint8_t buf[65535];
	union wgt_sockaddr name;
	struct {
		/* cmsghdr alignment without embedding its flexible array member */
		uint8_t b[WGT_UDP_CMSG_SPACE] __attribute__((aligned(__alignof__(struct cmsghdr))));
	} ctl;
	struct iovec iov;
};

static struct slot *slots;
static struct mmsghdr msgs[SLOTS];

/* Resets what the kernel overwrites, as wgt_udp_recv_batch() asks. */
static void rx_prepare(void)
{
	for (int i = 0; i < SLOTS; i++) {
		struct msghdr *h = &msgs[i].msg_hdr;

		slots[i].iov = (struct iovec){ slots[i].buf, sizeof(slots[i].buf) };
		memset(h, 0, sizeof(*h));
		h->msg_name = &slots[i].name;
		h->msg_namelen = sizeof(slots[i].name);
		h->msg_iov = &slots[i].iov;
		h->msg_iovlen = 1;
		h->msg_control = slots[i].ctl.b;
		h->msg_controllen = sizeof(slots[i].ctl.b);
		msgs[i].msg_len = 0;
	}
}

static void setup(void)
{
	slots = calloc(SLOTS, sizeof(*slots));
	ck_assert_ptr_nonnull(slots);
}

static void teardown(void)
{
	free(slots);
	slots = NULL;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void wait_readable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	ck_assert_msg(poll(&p, 1, POLL_TIMEOUT_MS) == 1, "nothing arrived on fd %d", fd);
}

static union wgt_sockaddr loopback(int family, uint16_t port)
{
	union wgt_sockaddr a;

	memset(&a, 0, sizeof(a));
	if (family == AF_INET6) {
		a.in6.sin6_family = AF_INET6;
		a.in6.sin6_addr = in6addr_loopback;
		a.in6.sin6_port = htons(port);
	} else {
		a.in4.sin_family = AF_INET;
		a.in4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		a.in4.sin_port = htons(port);
	}
	return a;
}

static uint16_t port_of(int fd)
{
	union wgt_sockaddr a;
	socklen_t len = sizeof(a);

	ck_assert_int_eq(getsockname(fd, &a.sa, &len), 0);
	return ntohs(a.sa.sa_family == AF_INET6 ? a.in6.sin6_port : a.in4.sin_port);
}

static int getsockopt_int(int fd, int level, int name)
{
	int v = -1;
	socklen_t len = sizeof(v);

	ck_assert_int_eq(getsockopt(fd, level, name, &v, &len), 0);
	return v;
}

/* A plain socket of `family` bound to loopback port 0. */
static int plain_socket(int family)
{
	union wgt_sockaddr a = loopback(family, 0);
	int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, &a.sa, wgt_sockaddr_len(&a)), 0);
	return fd;
}

static void close_all(int *fds, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

static void set_port_range(const char *range)
{
	FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "w");

	ck_assert_ptr_nonnull(f);
	ck_assert_int_gt(fputs(range, f), 0);
	ck_assert_int_eq(fclose(f), 0);
}

static void check_group(int family)
{
	enum { N = 4, FLOWS = 64 };
	int fds[N], senders[FLOWS], got[N] = { 0 };
	struct pollfd pfds[N];
	union wgt_sockaddr dst;
	uint16_t port = 0;
	int total = 0, used = 0;
	int64_t deadline;

	ck_assert_int_eq(wgt_udp_open_group(family, 0, 0, N, fds, &port), 0);
	ck_assert_uint_ne(port, 0);
	for (int i = 0; i < N; i++) {
		ck_assert_uint_eq(port_of(fds[i]), port);
		ck_assert(fcntl(fds[i], F_GETFL) & O_NONBLOCK);
		ck_assert(fcntl(fds[i], F_GETFD) & FD_CLOEXEC);
		ck_assert_int_eq(getsockopt_int(fds[i], SOL_SOCKET, SO_REUSEPORT), 1);
		/* The kernel reports double what was set, as bookkeeping room. */
		ck_assert_int_ge(getsockopt_int(fds[i], SOL_SOCKET, SO_RCVBUF), WGT_UDP_SOCKBUF_SIZE);
		ck_assert_int_ge(getsockopt_int(fds[i], SOL_SOCKET, SO_SNDBUF), WGT_UDP_SOCKBUF_SIZE);
		if (family == AF_INET6) {
			ck_assert_int_eq(getsockopt_int(fds[i], IPPROTO_IPV6, IPV6_V6ONLY), 1);
			ck_assert_int_eq(getsockopt_int(fds[i], IPPROTO_IPV6, IPV6_RECVPKTINFO), 1);
		} else {
			ck_assert_int_eq(getsockopt_int(fds[i], IPPROTO_IP, IP_PKTINFO), 1);
		}
		pfds[i] = (struct pollfd){ .fd = fds[i], .events = POLLIN };
	}

	/* Many 4-tuples: the reuseport hash spreads them over the group. */
	dst = loopback(family, port);
	for (int i = 0; i < FLOWS; i++) {
		senders[i] = plain_socket(family);
		ck_assert_int_eq(sendto(senders[i], &i, sizeof(i), 0, &dst.sa, wgt_sockaddr_len(&dst)),
				 (ssize_t)sizeof(i));
	}
	deadline = now_ms() + POLL_TIMEOUT_MS;
	while (total < FLOWS) {
		ck_assert_msg(now_ms() < deadline, "only %d of %d datagrams arrived", total, FLOWS);
		ck_assert_int_ge(poll(pfds, N, POLL_TIMEOUT_MS), 0);
		for (int i = 0; i < N; i++) {
			int r;

			if (!(pfds[i].revents & POLLIN))
				continue;
			rx_prepare();
			r = wgt_udp_recv_batch(fds[i], msgs, SLOTS);
			if (r == -EAGAIN)
				continue;
			ck_assert_int_gt(r, 0);
			got[i] += r;
			total += r;
		}
	}
	for (int i = 0; i < N; i++)
		used += got[i] > 0;
	printf("udp %s group of %d on port %u: %d flows spread %d/%d/%d/%d\n",
	       family == AF_INET6 ? "v6" : "v4", N, port, FLOWS, got[0], got[1], got[2], got[3]);
	/* All on one socket would have odds of 4^-63. */
	ck_assert_int_gt(used, 1);

	close_all(senders, FLOWS);
	close_all(fds, N);
}

START_TEST(test_group_ipv4)
{
	check_group(AF_INET);
}
END_TEST

START_TEST(test_group_ipv6)
{
	check_group(AF_INET6);
}
END_TEST

/*
 * Steering: one sender (one 4-tuple, which the hash would keep on one
 * socket) reaches every socket of the group through the selector byte;
 * other types and short datagrams still arrive, by the hash.
 */
static void check_steer(int family)
{
	enum { N = 4, ROUNDS = 3, TYPE_OFF = 0, TYPE = 4, SEL_OFF = 7 };
	uint8_t msg[16] = { TYPE }, got[32];
	union wgt_sockaddr dst;
	struct pollfd pfds[N];
	int fds[N], tx, counts[N] = { 0 }, arrived = 0;
	uint16_t port;

	ck_assert_int_eq(wgt_udp_open_group(family, 0, 0, N, fds, &port), 0);
	ck_assert_int_eq(wgt_udp_steer(fds[N - 1], N, TYPE_OFF, TYPE, SEL_OFF), 0);
	tx = plain_socket(family);
	dst = loopback(family, port);
	for (int k = 0; k < N * ROUNDS; k++) {
		int want = (k * 5 + 1) % 256;

		msg[SEL_OFF] = (uint8_t)want;
		ck_assert_int_eq(sendto(tx, msg, sizeof(msg), 0, &dst.sa, wgt_sockaddr_len(&dst)),
				 (ssize_t)sizeof(msg));
		wait_readable(fds[want % N]);
		ck_assert_int_eq(recv(fds[want % N], got, sizeof(got), MSG_DONTWAIT),
				 (ssize_t)sizeof(msg));
		ck_assert_uint_eq(got[SEL_OFF], (uint8_t)want);
		counts[want % N]++;
	}
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(counts[i], ROUNDS);

	/* Another type, and one too short to hold the selector: the hash picks, nothing is lost. */
	msg[TYPE_OFF] = TYPE + 1;
	ck_assert_int_eq(sendto(tx, msg, sizeof(msg), 0, &dst.sa, wgt_sockaddr_len(&dst)),
			 (ssize_t)sizeof(msg));
	msg[TYPE_OFF] = TYPE;
	ck_assert_int_eq(sendto(tx, msg, SEL_OFF, 0, &dst.sa, wgt_sockaddr_len(&dst)), SEL_OFF);
	for (int i = 0; i < N; i++)
		pfds[i] = (struct pollfd){ .fd = fds[i], .events = POLLIN };
	while (arrived < 2) {
		ck_assert_int_gt(poll(pfds, N, POLL_TIMEOUT_MS), 0);
		for (int i = 0; i < N; i++)
			if (pfds[i].revents & POLLIN)
				while (recv(fds[i], got, sizeof(got), MSG_DONTWAIT) > 0)
					arrived++;
	}
	ck_assert_int_eq(arrived, 2);
	printf("udp %s steering over %d sockets from one 4-tuple: %d/%d/%d/%d\n",
	       family == AF_INET6 ? "v6" : "v4", N, counts[0], counts[1], counts[2], counts[3]);

	ck_assert_int_eq(wgt_udp_steer(fds[0], 1, TYPE_OFF, TYPE, SEL_OFF), -EINVAL);
	ck_assert_int_eq(wgt_udp_steer(fds[0], WGT_UDP_GROUP_MAX + 1, 0, TYPE, SEL_OFF), -EINVAL);
	ck_assert_int_eq(wgt_udp_steer(-1, N, TYPE_OFF, TYPE, SEL_OFF), -EBADF);
	close(tx);
	close_all(fds, N);
}

START_TEST(test_steer_ipv4)
{
	check_steer(AF_INET);
}
END_TEST

START_TEST(test_steer_ipv6)
{
	check_steer(AF_INET6);
}
END_TEST

START_TEST(test_open_errors)
{
	int fd = -1, fds[2] = { -1, -1 }, foreign;
	uint16_t port = 0;

	ck_assert_int_eq(wgt_udp_open(AF_UNIX, 0, 0, 0, &fd, NULL), -EINVAL);
	ck_assert_int_eq(wgt_udp_open(AF_INET, 0, 0, WGT_UDP_JOIN, &fd, NULL), -EINVAL);
	ck_assert_int_eq(wgt_udp_open(AF_INET, 0, 0, 1U << 5, &fd, NULL), -EINVAL);
	ck_assert_int_eq(wgt_udp_open_group(AF_INET, 0, 0, 0, fds, NULL), -EINVAL);
	ck_assert_int_eq(wgt_udp_open_group(AF_INET, 0, 0, WGT_UDP_GROUP_MAX + 1, fds, NULL),
			 -EINVAL);
	ck_assert_int_eq(fd, -1);

	/* fwmark lands in SO_MARK. */
	ck_assert_int_eq(wgt_udp_open(AF_INET, 0, 0x51820, 0, &fd, &port), 0);
	ck_assert_int_eq(getsockopt_int(fd, SOL_SOCKET, SO_MARK), 0x51820);
	close(fd);

	/* A port held by a socket outside our group is refused, even when that
	 * socket has SO_REUSEPORT (same user) and would take us in. */
	foreign = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(foreign, 0);
	ck_assert_int_eq(setsockopt(foreign, SOL_SOCKET, SO_REUSEPORT, &(int){ 1 }, sizeof(int)), 0);
	{
		union wgt_sockaddr any = loopback(AF_INET, 0);

		any.in4.sin_addr.s_addr = htonl(INADDR_ANY);
		ck_assert_int_eq(bind(foreign, &any.sa, sizeof(any.in4)), 0);
	}
	port = port_of(foreign);
	ck_assert_int_eq(wgt_udp_open_group(AF_INET, port, 0, 2, fds, NULL), -EADDRINUSE);
	ck_assert_int_eq(fds[0], -1);
	ck_assert_int_eq(fds[1], -1);
	/* Joining is what WGT_UDP_JOIN is for, and only it. */
	ck_assert_int_eq(wgt_udp_open(AF_INET, port, 0, WGT_UDP_JOIN, &fd, NULL), 0);
	close(fd);
	close(foreign);
}
END_TEST

/*
 * The hazard the late SO_REUSEPORT avoids: with two ephemeral ports and a
 * foreign reuseport socket on one of them, a group asking for port 0 must
 * always get the other one, never join the foreign socket.
 */
START_TEST(test_ephemeral_not_shared)
{
	int foreign[2], fds[2];
	uint16_t port, taken;

	set_port_range("47000 47001");
	for (int i = 0; i < 2; i++) {
		union wgt_sockaddr any = loopback(AF_INET, 0);

		any.in4.sin_addr.s_addr = htonl(INADDR_ANY);
		foreign[i] = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		ck_assert_int_ge(foreign[i], 0);
		ck_assert_int_eq(setsockopt(foreign[i], SOL_SOCKET, SO_REUSEPORT, &(int){ 1 },
					    sizeof(int)),
				 0);
		ck_assert_int_eq(bind(foreign[i], &any.sa, sizeof(any.in4)), 0);
	}
	/* Both bound with SO_REUSEPORT to port 0: the kernel may well have put
	 * the second into the first one's group. Keep one port held. */
	taken = port_of(foreign[0]);
	close(foreign[1]);

	for (int i = 0; i < 32; i++) {
		ck_assert_int_eq(wgt_udp_open_group(AF_INET, 0, 0, 2, fds, &port), 0);
		ck_assert_uint_ne(port, taken);
		close_all(fds, 2);
	}

	/* Both ports held: nothing left to claim. */
	ck_assert_int_eq(wgt_udp_open_group(AF_INET, 0, 0, 2, fds, &port), 0);
	ck_assert_int_eq(wgt_udp_open(AF_INET, 0, 0, 0, &foreign[1], NULL), -EADDRINUSE);
	close_all(fds, 2);
	close(foreign[0]);
	set_port_range("32768 60999");
}
END_TEST

START_TEST(test_dual)
{
	int fds4[3], fds6[3], blocker, fd;
	union wgt_sockaddr a;
	uint16_t port = 0, held;

	ck_assert_int_eq(wgt_udp_open_dual(0, 0, 3, fds4, fds6, &port), 0);
	for (int i = 0; i < 3; i++) {
		ck_assert_uint_eq(port_of(fds4[i]), port);
		ck_assert_uint_eq(port_of(fds6[i]), port);
	}
	close_all(fds4, 3);
	close_all(fds6, 3);

	/* Fixed port taken for IPv6 only: refused, and IPv4 let go again. */
	blocker = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(blocker, 0);
	ck_assert_int_eq(setsockopt(blocker, IPPROTO_IPV6, IPV6_V6ONLY, &(int){ 1 }, sizeof(int)), 0);
	a = loopback(AF_INET6, 0);
	a.in6.sin6_addr = in6addr_any;
	ck_assert_int_eq(bind(blocker, &a.sa, sizeof(a.in6)), 0);
	held = port_of(blocker);
	ck_assert_int_eq(wgt_udp_open_dual(held, 0, 3, fds4, fds6, &port), -EADDRINUSE);
	for (int i = 0; i < 3; i++)
		ck_assert(fds4[i] == -1 && fds6[i] == -1);
	ck_assert_int_eq(wgt_udp_open(AF_INET, held, 0, 0, &fd, NULL), 0);
	close(fd);

	/* Port 0 with one of two ephemeral ports taken for IPv6: the retry
	 * finds the other (odds of 16 misses in a row: 2^-16). */
	close(blocker);
	set_port_range("47100 47101");
	blocker = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ck_assert_int_eq(setsockopt(blocker, IPPROTO_IPV6, IPV6_V6ONLY, &(int){ 1 }, sizeof(int)), 0);
	a = loopback(AF_INET6, 47100);
	a.in6.sin6_addr = in6addr_any;
	ck_assert_int_eq(bind(blocker, &a.sa, sizeof(a.in6)), 0);
	for (int i = 0; i < 8; i++) {
		ck_assert_int_eq(wgt_udp_open_dual(0, 0, 3, fds4, fds6, &port), 0);
		ck_assert_uint_eq(port, 47101);
		close_all(fds4, 3);
		close_all(fds6, 3);
	}
	close(blocker);
	set_port_range("32768 60999");
}
END_TEST

START_TEST(test_features)
{
	int fd4, fd6;
	unsigned f4 = 0, f6 = 0;

	ck_assert_int_eq(wgt_udp_open(AF_INET, 0, 0, 0, &fd4, NULL), 0);
	ck_assert_int_eq(wgt_udp_open(AF_INET6, 0, 0, 0, &fd6, NULL), 0);
	ck_assert_int_eq(wgt_udp_probe_features(fd4, &f4), 0);
	ck_assert_int_eq(wgt_udp_probe_features(fd6, &f6), 0);
	printf("udp features: v4 gso %d gro %d, v6 gso %d gro %d\n", !!(f4 & WGT_UDP_GSO),
	       !!(f4 & WGT_UDP_GRO), !!(f6 & WGT_UDP_GSO), !!(f6 & WGT_UDP_GRO));
	if (f4 & WGT_UDP_GRO) {
		ck_assert_int_eq(getsockopt_int(fd4, SOL_UDP, UDP_GRO), 1);
		ck_assert_int_eq(wgt_udp_set_gro(fd4, false), 0);
		ck_assert_int_eq(getsockopt_int(fd4, SOL_UDP, UDP_GRO), 0);
	}
	ck_assert_int_eq(wgt_udp_probe_features(-1, &f4), -EBADF);
	close(fd4);
	close(fd6);
}
END_TEST

/* Sends one UDP_SEGMENT message of len bytes in gso-sized datagrams. */
static void send_gso(int fd, const union wgt_sockaddr *dst, const uint8_t *data, size_t len,
		     uint16_t gso)
{
	struct {
		/* cmsghdr alignment without embedding its flexible array member */
		uint8_t b[WGT_UDP_CMSG_SPACE] __attribute__((aligned(__alignof__(struct cmsghdr))));
	} ctl;
	struct iovec iov = { (void *)data, len };
	struct mmsghdr m;

	memset(&m, 0, sizeof(m));
	m.msg_hdr.msg_name = (void *)&dst->sa;
	m.msg_hdr.msg_namelen = wgt_sockaddr_len(dst);
	m.msg_hdr.msg_iov = &iov;
	m.msg_hdr.msg_iovlen = 1;
	m.msg_hdr.msg_control = ctl.b;
	m.msg_hdr.msg_controllen = 0;
	ck_assert_int_eq(wgt_udp_cmsg_add_segment(&m.msg_hdr, sizeof(ctl.b), gso), 0);
	ck_assert_int_eq(wgt_udp_send_batch(fd, &m, 1), 1);
	ck_assert_uint_eq(m.msg_len, len);
}

static void check_gso(int family)
{
	enum { GSO = 1000, LEN = 2500 };
	uint8_t data[LEN], got[LEN];
	union wgt_sockaddr dst;
	struct wgt_udp_rx_info info;
	unsigned features = 0;
	int tx, rx, rxg;
	uint16_t gport;

	for (int i = 0; i < LEN; i++)
		data[i] = (uint8_t)(i * 13 + 1);
	ck_assert_int_eq(wgt_udp_open(family, 0, 0, 0, &tx, NULL), 0);
	ck_assert_int_eq(wgt_udp_probe_features(tx, &features), 0);
	ck_assert_msg(features & WGT_UDP_GSO, "this kernel has no UDP GSO");
	ck_assert_msg(features & WGT_UDP_GRO, "this kernel has no UDP GRO");

	/* A plain receiver sees three datagrams: 1000, 1000, 500. */
	rx = plain_socket(family);
	dst = loopback(family, port_of(rx));
	send_gso(tx, &dst, data, LEN, GSO);
	for (int off = 0; off < LEN; off += GSO) {
		int want = LEN - off < GSO ? LEN - off : GSO;

		wait_readable(rx);
		ck_assert_int_eq(recv(rx, got, sizeof(got), MSG_DONTWAIT), want);
		ck_assert_mem_eq(got, data + off, (size_t)want);
	}
	ck_assert_int_eq(recv(rx, got, sizeof(got), MSG_DONTWAIT), -1);
	close(rx);

	/* A GRO receiver may take them in one read, with the segment size. */
	ck_assert_int_eq(wgt_udp_open(family, 0, 0, 0, &rxg, &gport), 0);
	ck_assert_int_eq(wgt_udp_set_gro(rxg, true), 0);
	dst = loopback(family, gport);
	send_gso(tx, &dst, data, LEN, GSO);
	wait_readable(rxg);
	rx_prepare();
	ck_assert_int_eq(wgt_udp_recv_batch(rxg, msgs, SLOTS), 1);
	ck_assert_uint_eq(msgs[0].msg_len, LEN);
	ck_assert_mem_eq(slots[0].buf, data, LEN);
	ck_assert_int_eq(wgt_udp_rx_info_parse(&msgs[0].msg_hdr, &info), 0);
	ck_assert_uint_eq(info.gso_size, GSO);
	ck_assert(info.has_local);
	ck_assert_int_eq(info.local.sa.sa_family, family);
	printf("udp %s: GSO send of %d bytes in %d-byte segments read as one GRO datagram, "
	       "gso_size %u\n",
	       family == AF_INET6 ? "v6" : "v4", LEN, GSO, info.gso_size);

	/* A single datagram on the same GRO socket comes without a size. */
	ck_assert_int_eq(sendto(tx, data, 100, 0, &dst.sa, wgt_sockaddr_len(&dst)), 100);
	wait_readable(rxg);
	rx_prepare();
	ck_assert_int_eq(wgt_udp_recv_batch(rxg, msgs, SLOTS), 1);
	ck_assert_int_eq(wgt_udp_rx_info_parse(&msgs[0].msg_hdr, &info), 0);
	ck_assert_uint_eq(info.gso_size, 0);
	ck_assert_int_eq(wgt_udp_recv_batch(rxg, msgs, SLOTS), -EAGAIN);

	close(rxg);
	close(tx);
}

START_TEST(test_gso_ipv4)
{
	check_gso(AF_INET);
}
END_TEST

START_TEST(test_gso_ipv6)
{
	check_gso(AF_INET6);
}
END_TEST

START_TEST(test_batches)
{
	enum { N = 8 };
	struct mmsghdr out[N];
	struct iovec iov[N];
	union wgt_sockaddr dst;
	int vals[N], tx, rx, got = 0, best = 0;
	int64_t deadline;

	ck_assert_int_eq(wgt_udp_open(AF_INET, 0, 0, 0, &tx, NULL), 0);
	ck_assert_int_eq(wgt_udp_open(AF_INET, 0, 0, 0, &rx, NULL), 0);
	rx_prepare();
	ck_assert_int_eq(wgt_udp_recv_batch(rx, msgs, SLOTS), -EAGAIN);

	/* One sendmmsg of N datagrams... */
	dst = loopback(AF_INET, port_of(rx));
	memset(out, 0, sizeof(out));
	for (int i = 0; i < N; i++) {
		vals[i] = i * 1000;
		iov[i] = (struct iovec){ &vals[i], sizeof(vals[i]) };
		out[i].msg_hdr.msg_name = &dst.sa;
		out[i].msg_hdr.msg_namelen = wgt_sockaddr_len(&dst);
		out[i].msg_hdr.msg_iov = &iov[i];
		out[i].msg_hdr.msg_iovlen = 1;
	}
	ck_assert_int_eq(wgt_udp_send_batch(tx, out, N), N);

	/* ...come back in (normally) one recvmmsg. */
	deadline = now_ms() + POLL_TIMEOUT_MS;
	while (got < N) {
		int r;

		ck_assert(now_ms() < deadline);
		wait_readable(rx);
		rx_prepare();
		r = wgt_udp_recv_batch(rx, msgs, SLOTS);
		if (r == -EAGAIN)
			continue;
		ck_assert_int_gt(r, 0);
		for (int i = 0; i < r; i++) {
			int v;

			ck_assert_uint_eq(msgs[i].msg_len, sizeof(int));
			memcpy(&v, slots[i].buf, sizeof(v));
			ck_assert_int_eq(v, (got + i) * 1000);
			ck_assert_uint_eq(ntohs(slots[i].name.in4.sin_port), port_of(tx));
		}
		got += r;
		best = r > best ? r : best;
	}
	printf("udp: %d datagrams from one sendmmsg, largest recvmmsg batch %d\n", N, best);
	ck_assert_int_gt(best, 1);
	close(rx);
	close(tx);
}
END_TEST

/*
 * Pktinfo names the address the peer sent to, and a reply sent with it as
 * source leaves from that address: 127.0.0.2 here, not the 127.0.0.1 that
 * routing would pick.
 */
START_TEST(test_pktinfo_reply)
{
	struct wgt_udp_rx_info info;
	union wgt_sockaddr dst, from;
	struct {
		/* cmsghdr alignment without embedding its flexible array member */
		uint8_t b[WGT_UDP_CMSG_SPACE] __attribute__((aligned(__alignof__(struct cmsghdr))));
	} ctl;
	struct iovec iov;
	struct mmsghdr m;
	socklen_t flen = sizeof(from);
	char reply[8];
	int srv, peer;

	ck_assert_int_eq(wgt_udp_open(AF_INET, 0, 0, 0, &srv, NULL), 0);
	peer = plain_socket(AF_INET);
	dst = loopback(AF_INET, port_of(srv));
	dst.in4.sin_addr.s_addr = htonl(0x7f000002);
	ck_assert_int_eq(sendto(peer, "ping", 4, 0, &dst.sa, sizeof(dst.in4)), 4);

	wait_readable(srv);
	rx_prepare();
	ck_assert_int_eq(wgt_udp_recv_batch(srv, msgs, SLOTS), 1);
	ck_assert_int_eq(wgt_udp_rx_info_parse(&msgs[0].msg_hdr, &info), 0);
	ck_assert(info.has_local);
	ck_assert_int_eq(info.local.sa.sa_family, AF_INET);
	ck_assert_uint_eq(ntohl(info.local.in4.sin_addr.s_addr), 0x7f000002);
	ck_assert_uint_gt(info.ifindex, 0);
	ck_assert_uint_eq(info.gso_size, 0);

	memset(&m, 0, sizeof(m));
	iov = (struct iovec){ "pong", 4 };
	m.msg_hdr.msg_name = &slots[0].name;
	m.msg_hdr.msg_namelen = msgs[0].msg_hdr.msg_namelen;
	m.msg_hdr.msg_iov = &iov;
	m.msg_hdr.msg_iovlen = 1;
	m.msg_hdr.msg_control = ctl.b;
	ck_assert_int_eq(wgt_udp_cmsg_add_src(&m.msg_hdr, sizeof(ctl.b), &info.local, 0), 0);
	ck_assert_int_eq(wgt_udp_send_batch(srv, &m, 1), 1);

	wait_readable(peer);
	ck_assert_int_eq(recvfrom(peer, reply, sizeof(reply), 0, &from.sa, &flen), 4);
	ck_assert_uint_eq(ntohl(from.in4.sin_addr.s_addr), 0x7f000002);
	ck_assert_uint_eq(ntohs(from.in4.sin_port), port_of(srv));
	close(peer);
	close(srv);
}
END_TEST

START_TEST(test_pktinfo_ipv6)
{
	struct wgt_udp_rx_info info;
	union wgt_sockaddr dst;
	int srv, peer;

	ck_assert_int_eq(wgt_udp_open(AF_INET6, 0, 0, 0, &srv, NULL), 0);
	peer = plain_socket(AF_INET6);
	dst = loopback(AF_INET6, port_of(srv));
	ck_assert_int_eq(sendto(peer, "ping", 4, 0, &dst.sa, sizeof(dst.in6)), 4);
	wait_readable(srv);
	rx_prepare();
	ck_assert_int_eq(wgt_udp_recv_batch(srv, msgs, SLOTS), 1);
	ck_assert_int_eq(wgt_udp_rx_info_parse(&msgs[0].msg_hdr, &info), 0);
	ck_assert(info.has_local);
	ck_assert_int_eq(info.local.sa.sa_family, AF_INET6);
	ck_assert(IN6_IS_ADDR_LOOPBACK(&info.local.in6.sin6_addr));
	close(peer);
	close(srv);
}
END_TEST

START_TEST(test_cmsg_limits)
{
	struct wgt_udp_rx_info info;
	union wgt_sockaddr dst, src;
	struct {
		/* cmsghdr alignment without embedding its flexible array member */
		uint8_t b[WGT_UDP_CMSG_SPACE] __attribute__((aligned(__alignof__(struct cmsghdr))));
	} ctl;
	struct msghdr h;
	int srv, peer;

	/* Appends fill the buffer exactly; one more does not fit. */
	memset(&h, 0, sizeof(h));
	h.msg_control = ctl.b;
	src = loopback(AF_INET6, 0);
	ck_assert_int_eq(wgt_udp_cmsg_add_segment(&h, sizeof(ctl.b), 1200), 0);
	ck_assert_int_eq(wgt_udp_cmsg_add_src(&h, sizeof(ctl.b), &src, 0), 0);
	ck_assert_uint_le(h.msg_controllen, sizeof(ctl.b));
	ck_assert_int_eq(wgt_udp_cmsg_add_segment(&h, sizeof(ctl.b), 1200), -ENOBUFS);
	src.sa.sa_family = AF_UNIX;
	h.msg_controllen = 0;
	ck_assert_int_eq(wgt_udp_cmsg_add_src(&h, sizeof(ctl.b), &src, 0), -EAFNOSUPPORT);

	/* A control buffer too small for pktinfo: the parse refuses it. */
	ck_assert_int_eq(wgt_udp_open(AF_INET, 0, 0, 0, &srv, NULL), 0);
	peer = plain_socket(AF_INET);
	dst = loopback(AF_INET, port_of(srv));
	ck_assert_int_eq(sendto(peer, "x", 1, 0, &dst.sa, sizeof(dst.in4)), 1);
	wait_readable(srv);
	rx_prepare();
	msgs[0].msg_hdr.msg_controllen = sizeof(struct cmsghdr);
	ck_assert_int_eq(wgt_udp_recv_batch(srv, msgs, 1), 1);
	ck_assert(msgs[0].msg_hdr.msg_flags & MSG_CTRUNC);
	ck_assert_int_eq(wgt_udp_rx_info_parse(&msgs[0].msg_hdr, &info), -EMSGSIZE);

	/* So is a datagram cut short by a small buffer. */
	ck_assert_int_eq(sendto(peer, "xyz", 3, 0, &dst.sa, sizeof(dst.in4)), 3);
	wait_readable(srv);
	rx_prepare();
	slots[0].iov.iov_len = 2;
	ck_assert_int_eq(wgt_udp_recv_batch(srv, msgs, 1), 1);
	ck_assert_int_eq(wgt_udp_rx_info_parse(&msgs[0].msg_hdr, &info), -EMSGSIZE);
	close(peer);
	close(srv);
}
END_TEST

static Suite *udp_suite(void)
{
	Suite *s = suite_create("udp");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_group_ipv4);
	tcase_add_test(tc, test_group_ipv6);
	tcase_add_test(tc, test_steer_ipv4);
	tcase_add_test(tc, test_steer_ipv6);
	tcase_add_test(tc, test_open_errors);
	tcase_add_test(tc, test_ephemeral_not_shared);
	tcase_add_test(tc, test_dual);
	tcase_add_test(tc, test_features);
	tcase_add_test(tc, test_gso_ipv4);
	tcase_add_test(tc, test_gso_ipv6);
	tcase_add_test(tc, test_batches);
	tcase_add_test(tc, test_pktinfo_reply);
	tcase_add_test(tc, test_pktinfo_ipv6);
	tcase_add_test(tc, test_cmsg_limits);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr;
	int failed;

	if (unit_enter_netns("test_udp", "a network namespace, SO_MARK"))
		return 77;

	sr = srunner_create(udp_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
