/* SPDX-License-Identifier: MIT */
/* UDP reuseport groups, GSO/GRO probing, control messages and mmsg batches. */
#include "io/udp.h"

#include <errno.h>
#include <linux/filter.h>
#include <netinet/udp.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "common/compiler.h"
#include "common/random.h"

/* Linux 4.18 and 5.0; defined here for C libraries that predate them. */
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif
#ifndef SOL_UDP
#define SOL_UDP 17
#endif

static int setsockopt_int(int fd, int level, int name, int value)
{
	if (setsockopt(fd, level, name, &value, sizeof(value)) == -1)
		return -errno;
	return 0;
}

/* The FORCE variant ignores net.core.[rw]mem_max but needs CAP_NET_ADMIN. */
static int set_bufsize(int fd, int force_name, int name)
{
	if (setsockopt_int(fd, SOL_SOCKET, force_name, WGT_UDP_SOCKBUF_SIZE) == 0)
		return 0;
	return setsockopt_int(fd, SOL_SOCKET, name, WGT_UDP_SOCKBUF_SIZE);
}

static int bound_port(int fd, uint16_t *ret_port)
{
	union wgt_sockaddr a;
	socklen_t len = sizeof(a);

	if (getsockname(fd, &a.sa, &len) == -1)
		return -errno;
	*ret_port = ntohs(a.sa.sa_family == AF_INET6 ? a.in6.sin6_port : a.in4.sin_port);
	return 0;
}

int wgt_udp_open(int family, uint16_t port, uint32_t fwmark, unsigned flags, int *ret_fd,
		 uint16_t *ret_port)
{
	bool join = flags & WGT_UDP_JOIN;
	union wgt_sockaddr a;
	uint16_t p = 0;
	int fd, r;

	if (family != AF_INET && family != AF_INET6)
		return -EINVAL;
	if ((flags & ~(unsigned)WGT_UDP_JOIN) || (join && port == 0))
		return -EINVAL;

	fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP);
	if (fd == -1)
		return -errno;

	memset(&a, 0, sizeof(a));
	if (family == AF_INET6) {
		a.in6.sin6_family = AF_INET6;
		a.in6.sin6_addr = in6addr_any;
		a.in6.sin6_port = htons(port);
		/* Separate IPv4 sockets carry IPv4: no v4-mapped addresses here. */
		r = setsockopt_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1);
		if (r < 0)
			goto err;
		r = setsockopt_int(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1);
	} else {
		a.in4.sin_family = AF_INET;
		a.in4.sin_addr.s_addr = htonl(INADDR_ANY);
		a.in4.sin_port = htons(port);
		r = setsockopt_int(fd, IPPROTO_IP, IP_PKTINFO, 1);
	}
	if (r < 0)
		goto err;

	if (fwmark) {
		/* Keeps our own encrypted traffic out of routes into the tunnel. */
		if (setsockopt(fd, SOL_SOCKET, SO_MARK, &fwmark, sizeof(fwmark)) == -1) {
			r = -errno;
			goto err;
		}
	}

	r = set_bufsize(fd, SO_RCVBUFFORCE, SO_RCVBUF);
	if (r < 0)
		goto err;
	r = set_bufsize(fd, SO_SNDBUFFORCE, SO_SNDBUF);
	if (r < 0)
		goto err;

	/* See the header: only a joiner may bind with SO_REUSEPORT set. */
	if (join) {
		r = setsockopt_int(fd, SOL_SOCKET, SO_REUSEPORT, 1);
		if (r < 0)
			goto err;
	}
	if (bind(fd, &a.sa, wgt_sockaddr_len(&a)) == -1) {
		r = -errno;
		goto err;
	}
	if (!join) {
		r = setsockopt_int(fd, SOL_SOCKET, SO_REUSEPORT, 1);
		if (r < 0)
			goto err;
	}

	r = bound_port(fd, &p);
	if (r < 0)
		goto err;

	*ret_fd = fd;
	if (ret_port)
		*ret_port = p;
	return 0;

err:
	close(fd);
	return r;
}

static void close_fds(int *fds, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		if (fds[i] >= 0)
			close(fds[i]);
		fds[i] = -1;
	}
}

int wgt_udp_open_group(int family, uint16_t port, uint32_t fwmark, unsigned n, int *ret_fds,
		       uint16_t *ret_port)
{
	uint16_t p;
	unsigned i;
	int r;

	if (n == 0 || n > WGT_UDP_GROUP_MAX)
		return -EINVAL;
	for (i = 0; i < n; i++)
		ret_fds[i] = -1;

	r = wgt_udp_open(family, port, fwmark, 0, &ret_fds[0], &p);
	if (r < 0)
		return r;
	for (i = 1; i < n; i++) {
		r = wgt_udp_open(family, p, fwmark, WGT_UDP_JOIN, &ret_fds[i], NULL);
		if (r < 0)
			goto err;
	}
	if (ret_port)
		*ret_port = p;
	return 0;

err:
	close_fds(ret_fds, n);
	return r;
}

int wgt_udp_open_dual(uint16_t port, uint32_t fwmark, unsigned n, int *ret_fds4,
		      int *ret_fds6, uint16_t *ret_port)
{
	uint16_t p;
	int r;

	if (n == 0 || n > WGT_UDP_GROUP_MAX)
		return -EINVAL;
	for (unsigned i = 0; i < n; i++)
		ret_fds6[i] = -1;

	for (unsigned tries = 0;; tries++) {
		r = wgt_udp_open_group(AF_INET, port, fwmark, n, ret_fds4, &p);
		if (r < 0)
			return r;
		r = wgt_udp_open_group(AF_INET6, p, fwmark, n, ret_fds6, NULL);
		if (r == 0)
			break;
		if (r == -EAFNOSUPPORT)
			/* No IPv6 in this kernel: carry on with IPv4 alone. */
			break;
		close_fds(ret_fds4, n);
		/* A fixed port is the operator's choice: no second guess. */
		if (r != -EADDRINUSE || port != 0 || tries + 1 >= WGT_UDP_PORT_TRIES)
			return r;
	}
	if (ret_port)
		*ret_port = p;
	return 0;
}

int wgt_udp_steer(int fd, unsigned n, unsigned type_off, uint8_t type, unsigned sel_off)
{
	/*
	 * A return of n or more leaves the datagram to the kernel's hash. A
	 * load past the end would end the program with 0 (socket 0), so the
	 * length (of the payload: the kernel pulls the UDP header first) is
	 * checked before any load.
	 */
	struct sock_filter prog[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_LEN, 0),
		BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, WGT_MAX(type_off, sel_off), 0, 5),
		BPF_STMT(BPF_LD | BPF_B | BPF_ABS, type_off),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, type, 0, 3),
		BPF_STMT(BPF_LD | BPF_B | BPF_ABS, sel_off),
		BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, n),
		BPF_STMT(BPF_RET | BPF_A, 0),
		BPF_STMT(BPF_RET | BPF_K, 0xffffffffU),
	};
	struct sock_fprog fprog = { .len = WGT_ARRAY_SIZE(prog), .filter = prog };

	if (n < 2 || n > WGT_UDP_GROUP_MAX || type_off > 0xffff || sel_off > 0xffff)
		return -EINVAL;
	if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &fprog, sizeof(fprog)) == -1)
		return -errno;
	return 0;
}

int wgt_udp_probe_features(int fd, unsigned *ret)
{
	unsigned features = 0;
	int r;

	/* 0 is every socket's default: asking it changes nothing but proves
	 * the kernel knows the option. Sizes go per message in cmsgs. */
	r = setsockopt_int(fd, SOL_UDP, UDP_SEGMENT, 0);
	if (r == 0)
		features |= WGT_UDP_GSO;
	else if (r != -ENOPROTOOPT)
		return r;

	r = wgt_udp_set_gro(fd, true);
	if (r == 0)
		features |= WGT_UDP_GRO;
	else if (r != -ENOPROTOOPT)
		return r;

	*ret = features;
	return 0;
}

int wgt_udp_set_gro(int fd, bool on)
{
	return setsockopt_int(fd, SOL_UDP, UDP_GRO, on);
}

/* Worker-owned fd */
int wgt_udp_recv_batch(int fd, struct mmsghdr *msgs, unsigned n)
{
	int r = recvmmsg(fd, msgs, n, MSG_DONTWAIT, NULL);

	return r == -1 ? -errno : r;
}

#ifdef WGT_TEST_HOOKS
/* Test builds: the share of sends (per 1000) that fail, and with which errno. */
static _Atomic unsigned test_fail_per_mille;
static _Atomic int test_fail_errno;

/* Any thread. */
void wgt_udp_test_fail_sends(int err, unsigned per_mille)
{
	atomic_store_explicit(&test_fail_errno, err, memory_order_relaxed);
	atomic_store_explicit(&test_fail_per_mille, per_mille > 1000 ? 1000 : per_mille,
			      memory_order_relaxed);
}

/* Any thread: 0, or the errno this send is to fail with. A per-thread xorshift. */
static int test_fail_roll(void)
{
	static _Thread_local uint32_t x;
	unsigned pm = atomic_load_explicit(&test_fail_per_mille, memory_order_relaxed);

	if (!pm)
		return 0;
	if (!x)
		x = wgt_random_u32() | 1;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	if (x % 1000 >= pm)
		return 0;
	return atomic_load_explicit(&test_fail_errno, memory_order_relaxed);
}
#endif

/* Worker-owned fd */
int wgt_udp_send_batch(int fd, struct mmsghdr *msgs, unsigned n)
{
	int r;

#ifdef WGT_TEST_HOOKS
	r = test_fail_roll();
	if (r)
		return -r;
#endif
	r = sendmmsg(fd, msgs, n, MSG_DONTWAIT);

	return r == -1 ? -errno : r;
}

int wgt_udp_rx_info_parse(const struct msghdr *msg, struct wgt_udp_rx_info *ret)
{
	struct wgt_udp_rx_info info;
	struct cmsghdr *c;

	if (msg->msg_flags & (MSG_TRUNC | MSG_CTRUNC))
		return -EMSGSIZE;

	memset(&info, 0, sizeof(info));
	/* glibc's CMSG_NXTHDR takes a non-const msghdr; it only reads it. */
	for (c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR((struct msghdr *)msg, c)) {
		if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO &&
		    c->cmsg_len >= CMSG_LEN(sizeof(int))) {
			int size;

			/* An int, not the u16 that UDP_SEGMENT takes on send. */
			memcpy(&size, CMSG_DATA(c), sizeof(size));
			if (size > 0 && size <= UINT16_MAX)
				info.gso_size = (uint16_t)size;
		} else if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO &&
			   c->cmsg_len >= CMSG_LEN(sizeof(struct in_pktinfo))) {
			struct in_pktinfo pi;

			memcpy(&pi, CMSG_DATA(c), sizeof(pi));
			info.has_local = true;
			info.ifindex = (unsigned)pi.ipi_ifindex;
			info.local.in4.sin_family = AF_INET;
			/* ipi_addr is the header's destination; ipi_spec_dst
			 * is the route's preferred source, not what the peer
			 * sent to. */
			info.local.in4.sin_addr = pi.ipi_addr;
		} else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO &&
			   c->cmsg_len >= CMSG_LEN(sizeof(struct in6_pktinfo))) {
			struct in6_pktinfo pi;

			memcpy(&pi, CMSG_DATA(c), sizeof(pi));
			info.has_local = true;
			info.ifindex = pi.ipi6_ifindex;
			info.local.in6.sin6_family = AF_INET6;
			info.local.in6.sin6_addr = pi.ipi6_addr;
			if (IN6_IS_ADDR_LINKLOCAL(&pi.ipi6_addr))
				info.local.in6.sin6_scope_id = pi.ipi6_ifindex;
		}
	}
	*ret = info;
	return 0;
}

/* Reserves a zeroed control message of data_len bytes at the end of msg. */
static struct cmsghdr *cmsg_append(struct msghdr *msg, size_t cap, size_t data_len)
{
	size_t used = msg->msg_controllen;
	size_t space = CMSG_SPACE(data_len);
	struct cmsghdr *c;

	if (!msg->msg_control || used > cap || cap - used < space)
		return NULL;
	/* Earlier appends used CMSG_SPACE, so the next header is aligned. */
	WGT_ASSERT(used % CMSG_ALIGN(1) == 0);
	c = (struct cmsghdr *)((char *)msg->msg_control + used);
	memset(c, 0, space);
	c->cmsg_len = CMSG_LEN(data_len);
	msg->msg_controllen = used + space;
	return c;
}

int wgt_udp_cmsg_add_segment(struct msghdr *msg, size_t cap, uint16_t gso_size)
{
	/* The kernel insists on exactly CMSG_LEN(sizeof(__u16)). */
	struct cmsghdr *c = cmsg_append(msg, cap, sizeof(gso_size));

	if (!c)
		return -ENOBUFS;
	c->cmsg_level = SOL_UDP;
	c->cmsg_type = UDP_SEGMENT;
	memcpy(CMSG_DATA(c), &gso_size, sizeof(gso_size));
	return 0;
}

int wgt_udp_cmsg_add_src(struct msghdr *msg, size_t cap, const union wgt_sockaddr *src,
			 unsigned ifindex)
{
	struct cmsghdr *c;

	if (src->sa.sa_family == AF_INET) {
		struct in_pktinfo pi;

		memset(&pi, 0, sizeof(pi));
		pi.ipi_ifindex = (int)ifindex;
		/* On send, ipi_spec_dst is the source address to use. */
		pi.ipi_spec_dst = src->in4.sin_addr;
		c = cmsg_append(msg, cap, sizeof(pi));
		if (!c)
			return -ENOBUFS;
		c->cmsg_level = IPPROTO_IP;
		c->cmsg_type = IP_PKTINFO;
		memcpy(CMSG_DATA(c), &pi, sizeof(pi));
		return 0;
	}
	if (src->sa.sa_family == AF_INET6) {
		struct in6_pktinfo pi;

		memset(&pi, 0, sizeof(pi));
		pi.ipi6_addr = src->in6.sin6_addr;
		pi.ipi6_ifindex = ifindex;
		c = cmsg_append(msg, cap, sizeof(pi));
		if (!c)
			return -ENOBUFS;
		c->cmsg_level = IPPROTO_IPV6;
		c->cmsg_type = IPV6_PKTINFO;
		memcpy(CMSG_DATA(c), &pi, sizeof(pi));
		return 0;
	}
	return -EAFNOSUPPORT;
}
