/* SPDX-License-Identifier: MIT */
/* Audit events of peers: sessions established and ended, endpoints changed; peer and endpoint named. */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "gateway/device.h"

#define ENDPOINT_STR_LEN (INET6_ADDRSTRLEN + 8)

/*
 * Events are logged by the control thread only: workers never write a log
 * line for them. A worker that roams a peer only bumps the endpoint's
 * sequence; the control thread compares it when it collects the worker's
 * timer events for the peer (at most once per tick) and after handshakes.
 * Sessions are connect/disconnect pairs: the first handshake after none
 * was up logs "established", rekeys every two minutes do not (debug only),
 * and the keys going away logs "expired" or "closed".
 */

static void format_endpoint(const union wgt_sockaddr *a, char out[ENDPOINT_STR_LEN])
{
	char ip[INET6_ADDRSTRLEN];

	if (a->sa.sa_family == AF_INET && inet_ntop(AF_INET, &a->in4.sin_addr, ip, sizeof(ip)))
		snprintf(out, ENDPOINT_STR_LEN, "%s:%u", ip, ntohs(a->in4.sin_port));
	else if (a->sa.sa_family == AF_INET6 &&
		 inet_ntop(AF_INET6, &a->in6.sin6_addr, ip, sizeof(ip)))
		snprintf(out, ENDPOINT_STR_LEN, "[%s]:%u", ip, ntohs(a->in6.sin6_port));
	else
		snprintf(out, ENDPOINT_STR_LEN, "none");
}

/* Control thread only. The peer's label and current endpoint as strings. */
static void describe(struct wgt_peer *peer, char name[WGT_PEER_LABEL_LEN],
		     char endpoint[ENDPOINT_STR_LEN])
{
	struct wgt_endpoint ep;

	wgt_peer_name(peer, name);
	wgt_peer_get_endpoint(peer, &ep);
	format_endpoint(&ep.addr, endpoint);
}

/* Control thread only. */
void wgt_audit_session_up(struct wgt_peer *peer, bool initiator)
{
	const char *role = initiator ? "initiator" : "responder";
	char name[WGT_PEER_LABEL_LEN], endpoint[ENDPOINT_STR_LEN];

	if (peer->audit_up) {
		if (wgt_log_enabled(WGT_LOG_DEBUG)) {
			describe(peer, name, endpoint);
			wgt_dbg("%s: peer %s (%s): session renewed (%s)", peer->dev->ifname, name,
				endpoint, role);
		}
		return;
	}
	peer->audit_up = true;
	if (!wgt_log_enabled(WGT_LOG_INFO))
		return;
	describe(peer, name, endpoint);
	wgt_log_event(WGT_LOG_INFO, "session_established",
		      (const struct wgt_log_field[]){ { "device", peer->dev->ifname },
						      { "peer", name },
						      { "endpoint", endpoint },
						      { "role", role } },
		      4, "%s: peer %s (%s): session established (%s)", peer->dev->ifname, name,
		      endpoint, role);
}

/* Control thread only. */
void wgt_audit_session_down(struct wgt_peer *peer, bool expired)
{
	char name[WGT_PEER_LABEL_LEN], endpoint[ENDPOINT_STR_LEN];
	const char *reason;

	if (!peer->audit_up)
		return;
	peer->audit_up = false;
	if (!wgt_log_enabled(WGT_LOG_INFO))
		return;
	reason = expired ? "no handshake for 540 s" : peer->dev->stopping ? "shutdown" :
		 atomic_load_explicit(&peer->dead, memory_order_relaxed) ? "peer removed" :
		 !peer->dev->up ? "link down" : "stopped";
	describe(peer, name, endpoint);
	wgt_log_event(WGT_LOG_INFO, expired ? "session_expired" : "session_closed",
		      (const struct wgt_log_field[]){ { "device", peer->dev->ifname },
						      { "peer", name },
						      { "endpoint", endpoint },
						      { "reason", reason } },
		      4, "%s: peer %s (%s): session %s (%s)", peer->dev->ifname, name, endpoint,
		      expired ? "expired" : "closed", reason);
}

/* Control thread only. Returns whether the address moved since the last call. */
static bool endpoint_moved(struct wgt_peer *peer, union wgt_sockaddr *ret_old)
{
	uint32_t seq = atomic_load_explicit(&peer->ep_seq, memory_order_relaxed);
	struct wgt_endpoint ep;
	bool moved;

	if (seq == peer->audit_ep_seq)
		return false;
	/* An odd (mid-write) seq is stored too: the next call looks again. */
	peer->audit_ep_seq = seq;
	wgt_peer_get_endpoint(peer, &ep);
	moved = !wgt_sockaddr_equal(&ep.addr, &peer->audit_ep);
	*ret_old = peer->audit_ep;
	peer->audit_ep = ep.addr;
	return moved;
}

/* Control thread only. */
void wgt_audit_endpoint(struct wgt_peer *peer)
{
	char name[WGT_PEER_LABEL_LEN], endpoint[ENDPOINT_STR_LEN], before[ENDPOINT_STR_LEN];
	union wgt_sockaddr old;

	/* The first address learned is no change: the session line names it. */
	if (!endpoint_moved(peer, &old) || old.sa.sa_family == AF_UNSPEC ||
	    !wgt_log_enabled(WGT_LOG_INFO))
		return;
	describe(peer, name, endpoint);
	format_endpoint(&old, before);
	wgt_log_event(WGT_LOG_INFO, "endpoint_changed",
		      (const struct wgt_log_field[]){ { "device", peer->dev->ifname },
						      { "peer", name },
						      { "endpoint", endpoint },
						      { "previous_endpoint", before } },
		      4, "%s: peer %s: endpoint changed from %s to %s", peer->dev->ifname, name,
		      before, endpoint);
}

/* Control thread only. */
void wgt_audit_endpoint_configured(struct wgt_peer *peer)
{
	union wgt_sockaddr old;

	endpoint_moved(peer, &old);
}
