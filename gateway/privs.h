/* SPDX-License-Identifier: MIT */
/*
 * Least privilege: once the TUN queues and the sockets are open, the daemon
 * keeps only CAP_NET_ADMIN (and CAP_NET_BIND_SERVICE for a port below 1024),
 * optionally as another user, and can never gain more (PR_SET_NO_NEW_PRIVS).
 *
 * Capabilities are per thread: the drop must happen while the control
 * thread is the only one, before the workers start, so that they inherit
 * the reduced sets. wgt_privs_drop() refuses to run otherwise.
 *
 * What still needs privileges afterwards, and has them through CAP_NET_ADMIN:
 * rtnetlink changes (addresses, routes, MTU, link state), SO_MARK, the
 * sockets' forced buffer sizes, and rebinding the UDP sockets on a new
 * listen port. What does not: a port below 1024 unless kept at the drop,
 * creating files where the user may not, and removing the UAPI socket from
 * a directory the user cannot write (the next start replaces a stale one).
 */
#ifndef WGT_GATEWAY_PRIVS_H
#define WGT_GATEWAY_PRIVS_H

#include <stdint.h>
#include <sys/types.h>

/* A user to switch to, looked up before anything is opened. */
struct wgt_privs_user {
	char name[64];
	uid_t uid;
	gid_t gid;
};

/* Any thread. Looks up a user name; -ENOENT when there is no such user, or -errno. */
int wgt_privs_lookup_user(const char *name, struct wgt_privs_user *ret);

/*
 * Control thread, before any other thread exists. Drops every capability
 * but CAP_NET_ADMIN (and CAP_NET_BIND_SERVICE when listen_port is 1..1023)
 * from the effective, permitted, inheritable and ambient sets, and from the
 * bounding set when CAP_SETPCAP allows it (a process started with only a
 * file capability cannot, and NO_NEW_PRIVS makes the bounding set moot);
 * with user, switches to its uid, gid and groups keeping those; then sets
 * PR_SET_NO_NEW_PRIVS. A capability the process does not hold is not
 * gained. Logs what it kept. Returns 0 or -errno, after one error line.
 */
int wgt_privs_drop(const struct wgt_privs_user *user, uint16_t listen_port);

#endif
