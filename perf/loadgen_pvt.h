/* SPDX-License-Identifier: MIT */
/* wgate-loadgen internals shared by its files: options, address ranges, echo packets, statistics. */
#ifndef WGT_PERF_LOADGEN_PVT_H
#define WGT_PERF_LOADGEN_PVT_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/endpoint.h"
#include "crypto/messages.h"

/* Low bits of our receiver indices: the peer number. */
#define LG_INDEX_BITS 20
#define LG_INDEX_MASK ((1U << LG_INDEX_BITS) - 1)
#define LG_MAX_PEERS (LG_INDEX_MASK - 2)
#define LG_MAX_SOCKETS 1024
#define LG_MIN_SIZE 28   /* IPv4 + ICMP headers */
#define LG_MAX_SIZE 1420

struct lg_net {
	union wgt_sockaddr base; /* network address, port 0 */
	unsigned int prefix;
};

struct lg_opts {
	union wgt_sockaddr server;
	uint8_t server_public[WGT_KEY_LEN];
	bool have_server_public;
	uint32_t peers;
	uint64_t seconds;
	uint64_t seed;
	bool print_peers;
	double rate;             /* echo requests per second per session */
	size_t size;             /* inner packet bytes */
	struct in_addr target;   /* the gateway's tunnel address */
	struct lg_net tunnel_net;  /* peer i: base + 2 + i; the gateway: base + 1 */
	struct lg_net tunnel_net6;
	struct lg_net source_net;  /* peer i sends from base + 1 + i */
	bool have_source;
	unsigned int sockets;
	unsigned int source_port;
	uint64_t ramp_ns;
	uint16_t keepalive_s;
	uint64_t rekey_after_ns;
	double churn;            /* restarts per second */
	uint64_t hs_timeout_ns;
	uint64_t drain_ns;
	uint64_t max_loss;
	bool quiet;
};

struct lg_stats {
	uint64_t t0;
	uint64_t hs_started, hs_resent, hs_done, hs_failed, hs_second, hs_peak;
	uint64_t first_up, cookies, keepalives, restarts, abandoned;
	uint64_t sent, received, sent_prev, received_prev, hs_done_prev;
	uint64_t dropped_session, bad_responses, bad_cookies, bad_data, other_data, unknown, initiations_in;
	uint64_t send_errors, errors;
	uint32_t *lat_us;        /* every handshake's latency */
	size_t lat_n, lat_cap, lat_second; /* lat_second: index of this second's first */
};

/*
 * Parses the command line. Returns 1 to run, 0 after --help, -1 after a
 * usage error (one line said which).
 */
int lg_parse_options(struct lg_opts *o, int argc, char **argv);
/* The gateway's [Peer] sections for --seed and --peers, to stdout. Returns 0 or -errno. */
int lg_print_peers(const struct lg_opts *o);
/* Address n of a range (n counted from the network address). */
void lg_nth_addr(union wgt_sockaddr *ret, const struct lg_net *net, uint32_t n);

/* Writes an IPv4 ICMP echo request of `size` bytes at pkt; returns size. */
size_t lg_echo_build(uint8_t *pkt, size_t size, struct in_addr src, struct in_addr dst, uint16_t id,
		     uint16_t seq);
/* True when the padded packet is an echo reply to `dst` with identifier `id`. */
bool lg_echo_is_reply(const uint8_t *pkt, size_t len, struct in_addr dst, uint16_t id);

int lg_stats_init(struct lg_stats *st);
void lg_stats_free(struct lg_stats *st);
void lg_stats_latency(struct lg_stats *st, uint64_t ns);
/*
 * One progress line (stderr) at `second`, rates over the `elapsed_ns` since
 * the last one; also keeps the peak handshake rate.
 */
void lg_stats_progress(struct lg_stats *st, uint64_t second, uint64_t elapsed_ns, uint32_t up,
		       uint32_t peers, bool quiet);
/* The summary line (stdout). Returns 0 when nothing failed, else -1 (and says why on stderr). */
int lg_stats_summary(struct lg_stats *st, const struct lg_opts *o, uint32_t up);

#endif
