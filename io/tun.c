/* SPDX-License-Identifier: MIT */
/* Multi-queue TUN device setup, offload probing, interface ioctls and packet I/O. */
#include "io/tun.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include <limits.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/compiler.h"

/* Linux 6.2 added UDP segmentation offload; Debian 12's headers predate it. */
#ifndef TUN_F_USO4
#define TUN_F_USO4 0x20
#endif
#ifndef TUN_F_USO6
#define TUN_F_USO6 0x40
#endif

_Static_assert(sizeof(struct virtio_net_hdr) == WGT_TUN_VNET_HDR_LEN,
	       "virtio_net_hdr is 10 bytes without num_buffers");

static const struct {
	unsigned ours;
	unsigned kernel;
} offload_map[] = {
	{ WGT_TUN_OFFLOAD_CSUM, TUN_F_CSUM },
	{ WGT_TUN_OFFLOAD_TSO4, TUN_F_TSO4 },
	{ WGT_TUN_OFFLOAD_TSO6, TUN_F_TSO6 },
	{ WGT_TUN_OFFLOAD_USO4, TUN_F_USO4 },
	{ WGT_TUN_OFFLOAD_USO6, TUN_F_USO6 },
};

/* Fallback order for the probe: each step drops what an older kernel lacks. */
static const unsigned probe_order[] = {
	WGT_TUN_OFFLOAD_ALL,
	WGT_TUN_OFFLOAD_CSUM | WGT_TUN_OFFLOAD_TSO4 | WGT_TUN_OFFLOAD_TSO6,
	WGT_TUN_OFFLOAD_CSUM,
	0,
};

static int check_ifname(const char *ifname)
{
	size_t len;

	if (!ifname)
		return -EINVAL;
	len = strnlen(ifname, IFNAMSIZ);
	if (len == 0)
		return -EINVAL;
	if (len >= IFNAMSIZ)
		return -ENAMETOOLONG;
	return 0;
}

/* Opens one queue of `name`; on success ifr->ifr_name holds the real name. */
static int open_queue(struct ifreq *ifr, const char *name, short iff, int *ret_fd)
{
	int fd, r;

	fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
	if (fd == -1)
		return -errno;

	memset(ifr, 0, sizeof(*ifr));
	memcpy(ifr->ifr_name, name, strlen(name) + 1);
	ifr->ifr_flags = iff;
	if (ioctl(fd, TUNSETIFF, ifr) == -1) {
		r = -errno;
		close(fd);
		return r;
	}
	*ret_fd = fd;
	return 0;
}

int wgt_tun_open(const char *name, unsigned nqueues, unsigned flags, int *ret_fds,
		 char ret_ifname[IFNAMSIZ])
{
	char ifname[IFNAMSIZ];
	struct ifreq ifr;
	short iff;
	unsigned i;
	int r;

	r = check_ifname(name);
	if (r < 0)
		return r;
	if (nqueues == 0 || nqueues > WGT_TUN_MAX_QUEUES)
		return -EINVAL;
	if (flags & ~(unsigned)(WGT_TUN_VNET_HDR | WGT_TUN_ATTACH))
		return -EINVAL;

	iff = IFF_TUN | IFF_NO_PI | IFF_MULTI_QUEUE;
	if (flags & WGT_TUN_VNET_HDR)
		iff |= IFF_VNET_HDR;

	/* The first queue creates the device and resolves a "%d" in the name. */
	r = open_queue(&ifr, name,
		       (short)(iff | (flags & WGT_TUN_ATTACH ? 0 : IFF_TUN_EXCL)),
		       &ret_fds[0]);
	if (r < 0)
		return r;
	memcpy(ifname, ifr.ifr_name, IFNAMSIZ);
	ifname[IFNAMSIZ - 1] = '\0';

	for (i = 1; i < nqueues; i++) {
		r = open_queue(&ifr, ifname, iff, &ret_fds[i]);
		if (r < 0)
			goto err_close;
	}

	memcpy(ret_ifname, ifname, IFNAMSIZ);
	return 0;

err_close:
	/* Closing the last queue of a non-persistent device deletes it. */
	while (i-- > 0) {
		close(ret_fds[i]);
		ret_fds[i] = -1;
	}
	return r;
}

static int get_tun_flags(int fd, short *ret_flags)
{
	struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	if (ioctl(fd, TUNGETIFF, &ifr) == -1)
		return -errno;
	*ret_flags = ifr.ifr_flags;
	return 0;
}

static unsigned long to_kernel_offloads(unsigned offloads)
{
	unsigned long k = 0;

	for (size_t i = 0; i < WGT_ARRAY_SIZE(offload_map); i++)
		if (offloads & offload_map[i].ours)
			k |= offload_map[i].kernel;
	return k;
}

/* The device must have IFF_VNET_HDR; checked by the callers. */
static int set_offload_vnet(int fd, unsigned offloads)
{
	int hdr_len = WGT_TUN_VNET_HDR_LEN;

	/* 10 is the kernel's default too; set it so nothing else decides it. */
	if (ioctl(fd, TUNSETVNETHDRSZ, &hdr_len) == -1)
		return -errno;
	/* TUNSETOFFLOAD takes the flags by value and rejects unknown bits
	 * with EINVAL, which is what makes it a probe. */
	if (ioctl(fd, TUNSETOFFLOAD, to_kernel_offloads(offloads)) == -1)
		return -errno;
	return 0;
}

int wgt_tun_set_offload(int fd, unsigned offloads)
{
	short tun_flags = 0;
	int r;

	if (offloads & ~(unsigned)WGT_TUN_OFFLOAD_ALL)
		return -EINVAL;
	r = get_tun_flags(fd, &tun_flags);
	if (r < 0)
		return r;
	if (!(tun_flags & IFF_VNET_HDR)) {
		/* Offloads need the header to describe the packets. */
		if (offloads)
			return -EINVAL;
		if (ioctl(fd, TUNSETOFFLOAD, 0UL) == -1)
			return -errno;
		return 0;
	}
	return set_offload_vnet(fd, offloads);
}

int wgt_tun_probe_offloads(int fd, unsigned *ret_supported)
{
	short tun_flags = 0;
	int r;

	r = get_tun_flags(fd, &tun_flags);
	if (r < 0)
		return r;
	if (!(tun_flags & IFF_VNET_HDR))
		return -EINVAL;

	for (size_t i = 0; i < WGT_ARRAY_SIZE(probe_order); i++) {
		r = set_offload_vnet(fd, probe_order[i]);
		if (r == 0) {
			*ret_supported = probe_order[i];
			return 0;
		}
		if (r != -EINVAL)
			return r;
	}
	/* Not even "no offloads" was accepted: not an unsupported feature. */
	return r;
}

/* Runs one SIOC* ioctl for ifname on a short-lived socket; ifr in and out. */
static int ifreq_ioctl(const char *ifname, unsigned long req, struct ifreq *ifr)
{
	int fd, r;

	r = check_ifname(ifname);
	if (r < 0)
		return r;
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -errno;
	memcpy(ifr->ifr_name, ifname, strlen(ifname) + 1);
	r = ioctl(fd, req, ifr) == -1 ? -errno : 0;
	close(fd);
	return r;
}

int wgt_tun_get_ifindex(const char *ifname, unsigned *ret_ifindex)
{
	struct ifreq ifr;
	int r;

	memset(&ifr, 0, sizeof(ifr));
	r = ifreq_ioctl(ifname, SIOCGIFINDEX, &ifr);
	if (r < 0)
		return r;
	*ret_ifindex = (unsigned)ifr.ifr_ifindex;
	return 0;
}

int wgt_tun_get_mtu(const char *ifname, unsigned *ret_mtu)
{
	struct ifreq ifr;
	int r;

	memset(&ifr, 0, sizeof(ifr));
	r = ifreq_ioctl(ifname, SIOCGIFMTU, &ifr);
	if (r < 0)
		return r;
	*ret_mtu = (unsigned)ifr.ifr_mtu;
	return 0;
}

int wgt_tun_set_mtu(const char *ifname, unsigned mtu)
{
	struct ifreq ifr;

	if (mtu > INT_MAX)
		return -EINVAL;
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_mtu = (int)mtu;
	return ifreq_ioctl(ifname, SIOCSIFMTU, &ifr);
}

int wgt_tun_set_up(const char *ifname, bool up)
{
	struct ifreq ifr;
	short flags;
	int r;

	memset(&ifr, 0, sizeof(ifr));
	r = ifreq_ioctl(ifname, SIOCGIFFLAGS, &ifr);
	if (r < 0)
		return r;
	flags = up ? (short)(ifr.ifr_flags | IFF_UP) : (short)(ifr.ifr_flags & ~IFF_UP);
	if (flags == ifr.ifr_flags)
		return 0;
	ifr.ifr_flags = flags;
	return ifreq_ioctl(ifname, SIOCSIFFLAGS, &ifr);
}

int wgt_tun_get_up(const char *ifname, bool *ret_up)
{
	struct ifreq ifr;
	int r;

	memset(&ifr, 0, sizeof(ifr));
	r = ifreq_ioctl(ifname, SIOCGIFFLAGS, &ifr);
	if (r < 0)
		return r;
	*ret_up = ifr.ifr_flags & IFF_UP;
	return 0;
}

bool wgt_tun_exists(const char *ifname)
{
	if (check_ifname(ifname) < 0)
		return false;
	return if_nametoindex(ifname) != 0;
}

/* Worker-owned fd */
ssize_t wgt_tun_read(int fd, void *buf, size_t len)
{
	ssize_t n = read(fd, buf, len);

	return n == -1 ? -errno : n;
}

/* Worker-owned fd */
ssize_t wgt_tun_write(int fd, const void *buf, size_t len)
{
	ssize_t n = write(fd, buf, len);

	return n == -1 ? -errno : n;
}

/* Worker-owned fd */
ssize_t wgt_tun_writev(int fd, const struct iovec *iov, int iovcnt)
{
	ssize_t n = writev(fd, iov, iovcnt);

	return n == -1 ? -errno : n;
}
