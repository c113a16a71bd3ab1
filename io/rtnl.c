/* SPDX-License-Identifier: MIT */
/* rtnetlink link settings through libmnl. */
#include "io/rtnl.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>

/* Requests and acknowledgements here are a few hundred bytes; 8 KiB as libmnl suggests. */
#define RTNL_BUF_SIZE 8192

/* One request, one acknowledgement. Returns 0 or -errno from the kernel. */
static int request(struct nlmsghdr *nlh)
{
	char buf[RTNL_BUF_SIZE];
	struct mnl_socket *nl = mnl_socket_open(NETLINK_ROUTE);
	unsigned portid;
	int r;

	if (!nl)
		return -errno;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		r = -errno;
		goto out;
	}
	portid = mnl_socket_get_portid(nl);
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
		r = -errno;
		goto out;
	}
	r = (int)mnl_socket_recvfrom(nl, buf, sizeof(buf));
	if (r < 0) {
		r = -errno;
		goto out;
	}
	r = mnl_cb_run(buf, (size_t)r, nlh->nlmsg_seq, portid, NULL, NULL);
	r = r < 0 ? -errno : 0;
out:
	mnl_socket_close(nl);
	return r;
}

int wgt_rtnl_set_gso_max_segs(unsigned ifindex, uint32_t max_segs)
{
	char buf[RTNL_BUF_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ifinfomsg *ifm;

	nlh->nlmsg_type = RTM_NEWLINK;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	nlh->nlmsg_seq = (uint32_t)time(NULL);
	ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));
	memset(ifm, 0, sizeof(*ifm));
	ifm->ifi_family = AF_UNSPEC;
	ifm->ifi_index = (int)ifindex;
	mnl_attr_put_u32(nlh, IFLA_GSO_MAX_SEGS, max_segs);
	return request(nlh);
}

int wgt_rtnl_link_monitor_open(int *ret_fd)
{
	struct mnl_socket *nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_NONBLOCK | SOCK_CLOEXEC);
	int fd;

	if (!nl)
		return -errno;
	if (mnl_socket_bind(nl, RTMGRP_LINK, MNL_SOCKET_AUTOPID) < 0) {
		int r = -errno;

		mnl_socket_close(nl);
		return r;
	}
	/* Keep the fd and drop the wrapper: the fd is all the caller reads. */
	fd = dup(mnl_socket_get_fd(nl));
	mnl_socket_close(nl);
	if (fd < 0)
		return -errno;
	if (fcntl(fd, F_SETFD, FD_CLOEXEC) == -1 ||
	    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) == -1) {
		int r = -errno;

		close(fd);
		return r;
	}
	*ret_fd = fd;
	return 0;
}

struct link_ctx {
	unsigned ifindex;
	unsigned bits;
	bool up;
};

static int link_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct ifinfomsg *ifm = mnl_nlmsg_get_payload(nlh);
	struct link_ctx *c = data;

	if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*ifm)) || (unsigned)ifm->ifi_index != c->ifindex)
		return MNL_CB_OK;
	if (nlh->nlmsg_type == RTM_DELLINK) {
		c->bits |= WGT_RTNL_LINK_GONE;
	} else if (nlh->nlmsg_type == RTM_NEWLINK) {
		c->up = ifm->ifi_flags & IFF_UP;
		c->bits |= c->up ? WGT_RTNL_LINK_UP : WGT_RTNL_LINK_DOWN;
	}
	return MNL_CB_OK;
}

int wgt_rtnl_link_monitor_read(int fd, unsigned ifindex, bool *ret_up)
{
	char buf[RTNL_BUF_SIZE];
	struct link_ctx c = { .ifindex = ifindex };
	ssize_t n;

	while ((n = recv(fd, buf, sizeof(buf), 0)) > 0)
		mnl_cb_run(buf, (size_t)n, 0, 0, link_cb, &c);
	if (n == -1 && errno != EAGAIN && errno != EWOULDBLOCK)
		return -errno;
	*ret_up = c.up;
	return (int)c.bits;
}
