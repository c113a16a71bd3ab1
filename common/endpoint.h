/* SPDX-License-Identifier: MIT */
/* A peer's UDP address, IPv4 or IPv6, as the kernel's sockaddr union. */
#ifndef WGT_COMMON_ENDPOINT_H
#define WGT_COMMON_ENDPOINT_H

#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>

union wgt_sockaddr {
	struct sockaddr sa;
	struct sockaddr_in in4;
	struct sockaddr_in6 in6;
};

static inline socklen_t wgt_sockaddr_len(const union wgt_sockaddr *a)
{
	return a->sa.sa_family == AF_INET6 ? sizeof(a->in6) : sizeof(a->in4);
}

/* Same family, address and port (IPv6 scope id included). */
static inline bool wgt_sockaddr_equal(const union wgt_sockaddr *a, const union wgt_sockaddr *b)
{
	if (a->sa.sa_family != b->sa.sa_family)
		return false;
	if (a->sa.sa_family == AF_INET)
		return a->in4.sin_port == b->in4.sin_port &&
		       a->in4.sin_addr.s_addr == b->in4.sin_addr.s_addr;
	if (a->sa.sa_family == AF_INET6)
		return a->in6.sin6_port == b->in6.sin6_port &&
		       a->in6.sin6_scope_id == b->in6.sin6_scope_id &&
		       !memcmp(&a->in6.sin6_addr, &b->in6.sin6_addr, 16);
	return false;
}

#endif
