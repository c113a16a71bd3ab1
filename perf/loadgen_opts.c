/* SPDX-License-Identifier: MIT */
/* wgate-loadgen's command line, address ranges, --print-peers and the echo packets its sessions carry. */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "common/clock.h"
#include "crypto/x25519.h"
#include "perf/loadgen_pvt.h"
#include "perf/simpeer.h"
#include "perf/tool_util.h"

static void usage(FILE *f)
{
	fputs("usage: wgate-loadgen --server HOST:PORT --server-public-key KEY --peers N [options]\n"
	      "       wgate-loadgen --print-peers --peers N [--seed N] [--tunnel-net CIDR] [--tunnel-net6 CIDR]\n"
	      "Simulates N WireGuard peers (initiators) against one gateway: handshakes (answering\n"
	      "cookie replies with mac2), keepalives, ICMP echo flows through the tunnel, rekeys, churn.\n"
	      "  --server HOST:PORT        the gateway (IPv4 A.B.C.D:P or [IPv6]:P)\n"
	      "  --server-public-key KEY   its public key (base64)\n"
	      "  --peers N                 simulated peers, 1..1048573\n"
	      "  --seconds S               run time (10), then a drain (--drain)\n"
	      "  --seed N                  peer keys: peer i's private key derives from (seed, i) (1)\n"
	      "  --print-peers             print the gateway's [Peer] sections for --seed and --peers\n"
	      "  --rate PPS                echo requests per second per session, 0 = none (1)\n"
	      "  --size BYTES              inner IPv4 packet size, 28..1420 (84, as ping)\n"
	      "  --target A.B.C.D          echo target: the gateway's tunnel address (tunnel-net + 1)\n"
	      "  --tunnel-net CIDR         peer i's tunnel address is CIDR + 2 + i (10.128.0.0/16)\n"
	      "  --tunnel-net6 CIDR        peer i's tunnel /128 is CIDR + 2 + i (fd00:128::/64)\n"
	      "  --source-net CIDR         peer i sends from CIDR + 1 + i (local: `ip route add local\n"
	      "                            CIDR dev lo`); default: the sockets' own address for all\n"
	      "  --sockets K               UDP sockets (source ports), peer i on socket i % K (16)\n"
	      "  --source-port P           first source port, then P+1, ... (0: ephemeral ports)\n"
	      "  --ramp S                  spread the first handshakes over S seconds (0: at once)\n"
	      "  --keepalive S             persistent keepalive interval, 0 = off (25)\n"
	      "  --rekey-after S           initiator rekey age (120, REKEY_AFTER_TIME)\n"
	      "  --churn R                 client restarts per second, random peers (0)\n"
	      "  --handshake-timeout S     a handshake not done after S seconds has failed (10)\n"
	      "  --drain S                 after --seconds, wait up to S for replies and handshakes (2)\n"
	      "  --max-loss N              lost packets tolerated before exiting non-zero (0)\n"
	      "  --quiet                   no progress lines\n"
	      "Progress (stderr) every second; then one summary line (stdout):\n"
	      "  loadgen: N sessions, H handshakes (F failed), P packets (L lost), handshake p50 X ms p99 Y ms, R handshakes/s\n"
	      "N: sessions up at the end; H: completed handshakes (first and rekeys); F: handshakes\n"
	      "not done within --handshake-timeout or left open; P: echo requests sent; L: unanswered\n"
	      "after the drain (restarted peers' in-flight ones excepted); R: the best one-second rate.\n"
	      "Exit: 0 all up and nothing failed, 1 otherwise, 2 usage.\n",
	      f);
}

static int parse_double(double *ret, const char *s, double max)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || end == s || !(v >= 0) || v > max)
		return -EINVAL;
	*ret = v;
	return 0;
}

/* "ADDR/LEN"; host bits are cleared. */
static int parse_net(struct lg_net *net, const char *s)
{
	char addr[INET6_ADDRSTRLEN];
	const char *slash = strchr(s, '/');
	uint64_t len;
	size_t alen;
	unsigned int i;

	if (!slash || (alen = (size_t)(slash - s)) == 0 || alen >= sizeof(addr))
		return -EINVAL;
	memcpy(addr, s, alen);
	addr[alen] = '\0';
	memset(net, 0, sizeof(*net));
	if (inet_pton(AF_INET, addr, &net->base.in4.sin_addr) == 1) {
		if (wgt_tool_parse_u64(&len, slash + 1, 8, 32))
			return -EINVAL;
		net->base.sa.sa_family = AF_INET;
		net->base.in4.sin_addr.s_addr &= htonl(len ? ~0U << (32 - len) : 0);
	} else if (inet_pton(AF_INET6, addr, &net->base.in6.sin6_addr) == 1) {
		if (wgt_tool_parse_u64(&len, slash + 1, 64, 128))
			return -EINVAL;
		net->base.sa.sa_family = AF_INET6;
		for (i = 0; i < 16; i++) {
			int bits = (int)len - 8 * (int)i; /* prefix bits in byte i */

			if (bits <= 0)
				net->base.in6.sin6_addr.s6_addr[i] = 0;
			else if (bits < 8)
				net->base.in6.sin6_addr.s6_addr[i] &= (uint8_t)(0xff << (8 - bits));
		}
	} else {
		return -EINVAL;
	}
	net->prefix = (unsigned int)len;
	return 0;
}

/* Addresses a range holds past the network address, capped at 2^32. */
static uint64_t net_room(const struct lg_net *net)
{
	unsigned int host_bits = (net->base.sa.sa_family == AF_INET ? 32 : 128) - net->prefix;

	return host_bits >= 32 ? (1ULL << 32) - 1 : (1ULL << host_bits) - 1;
}

void lg_nth_addr(union wgt_sockaddr *ret, const struct lg_net *net, uint32_t n)
{
	*ret = net->base;
	if (net->base.sa.sa_family == AF_INET) {
		ret->in4.sin_addr.s_addr = htonl(ntohl(net->base.in4.sin_addr.s_addr) + n);
	} else {
		uint64_t lo;

		memcpy(&lo, &ret->in6.sin6_addr.s6_addr[8], 8);
		lo = htobe64(be64toh(lo) + n);
		memcpy(&ret->in6.sin6_addr.s6_addr[8], &lo, 8);
	}
}

static const char *option_name(const struct option *options, int val)
{
	for (; options->name; options++)
		if (options->val == val)
			return options->name;
	return "?";
}

int lg_parse_options(struct lg_opts *o, int argc, char **argv)
{
	static const struct option options[] = {
		{ "server", required_argument, NULL, 'S' },
		{ "server-public-key", required_argument, NULL, 'K' },
		{ "peers", required_argument, NULL, 'n' },
		{ "seconds", required_argument, NULL, 's' },
		{ "seed", required_argument, NULL, 'e' },
		{ "print-peers", no_argument, NULL, 'P' },
		{ "rate", required_argument, NULL, 'r' },
		{ "size", required_argument, NULL, 'z' },
		{ "target", required_argument, NULL, 't' },
		{ "tunnel-net", required_argument, NULL, 'T' },
		{ "tunnel-net6", required_argument, NULL, '6' },
		{ "source-net", required_argument, NULL, 'a' },
		{ "sockets", required_argument, NULL, 'k' },
		{ "source-port", required_argument, NULL, 'p' },
		{ "ramp", required_argument, NULL, 'R' },
		{ "keepalive", required_argument, NULL, 'A' },
		{ "rekey-after", required_argument, NULL, 'y' },
		{ "churn", required_argument, NULL, 'c' },
		{ "handshake-timeout", required_argument, NULL, 'H' },
		{ "drain", required_argument, NULL, 'd' },
		{ "max-loss", required_argument, NULL, 'l' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	bool have_server = false, have_target = false;
	uint64_t v;
	double d;
	int opt, bad = 0;

	memset(o, 0, sizeof(*o));
	o->seconds = 10;
	o->seed = 1;
	o->rate = 1;
	o->size = 84;
	o->sockets = 16;
	o->keepalive_s = 25;
	o->rekey_after_ns = WGT_REKEY_AFTER_TIME;
	o->hs_timeout_ns = 10 * WGT_NSEC_PER_SEC;
	o->drain_ns = 2 * WGT_NSEC_PER_SEC;
	parse_net(&o->tunnel_net, "10.128.0.0/16");
	parse_net(&o->tunnel_net6, "fd00:128::/64");

	while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		switch (opt) {
		case 'S':
			bad = wgt_tool_parse_endpoint(&o->server, optarg);
			have_server = !bad;
			break;
		case 'K':
			bad = wgt_tool_parse_key(o->server_public, optarg);
			o->have_server_public = !bad;
			break;
		case 'n':
			bad = wgt_tool_parse_u64(&v, optarg, 1, LG_MAX_PEERS);
			o->peers = (uint32_t)v;
			break;
		case 's':
			bad = wgt_tool_parse_u64(&o->seconds, optarg, 1, 86400);
			break;
		case 'e':
			bad = wgt_tool_parse_u64(&o->seed, optarg, 0, UINT64_MAX);
			break;
		case 'P':
			o->print_peers = true;
			break;
		case 'r':
			bad = parse_double(&o->rate, optarg, 1000);
			break;
		case 'z':
			bad = wgt_tool_parse_u64(&v, optarg, LG_MIN_SIZE, LG_MAX_SIZE);
			o->size = (size_t)v;
			break;
		case 't':
			bad = inet_pton(AF_INET, optarg, &o->target) == 1 ? 0 : -EINVAL;
			have_target = !bad;
			break;
		case 'T':
			bad = parse_net(&o->tunnel_net, optarg);
			if (!bad && o->tunnel_net.base.sa.sa_family != AF_INET)
				bad = -EINVAL;
			break;
		case '6':
			bad = parse_net(&o->tunnel_net6, optarg);
			if (!bad && o->tunnel_net6.base.sa.sa_family != AF_INET6)
				bad = -EINVAL;
			break;
		case 'a':
			bad = parse_net(&o->source_net, optarg);
			o->have_source = !bad;
			break;
		case 'k':
			bad = wgt_tool_parse_u64(&v, optarg, 1, LG_MAX_SOCKETS);
			o->sockets = (unsigned int)v;
			break;
		case 'p':
			bad = wgt_tool_parse_u64(&v, optarg, 0, 65535);
			o->source_port = (unsigned int)v;
			break;
		case 'R':
			bad = parse_double(&d, optarg, 3600);
			o->ramp_ns = (uint64_t)(d * 1e9);
			break;
		case 'A':
			bad = wgt_tool_parse_u64(&v, optarg, 0, 65535);
			o->keepalive_s = (uint16_t)v;
			break;
		case 'y':
			bad = wgt_tool_parse_u64(&v, optarg, 5, 170);
			o->rekey_after_ns = v * WGT_NSEC_PER_SEC;
			break;
		case 'c':
			bad = parse_double(&o->churn, optarg, 100000);
			break;
		case 'H':
			bad = wgt_tool_parse_u64(&v, optarg, 1, 3600);
			o->hs_timeout_ns = v * WGT_NSEC_PER_SEC;
			break;
		case 'd':
			bad = parse_double(&d, optarg, 600);
			o->drain_ns = (uint64_t)(d * 1e9);
			break;
		case 'l':
			bad = wgt_tool_parse_u64(&o->max_loss, optarg, 0, UINT64_MAX);
			break;
		case 'q':
			o->quiet = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return -1;
		}
		if (bad) {
			fprintf(stderr, "loadgen: invalid value for --%s: %s\n", option_name(options, opt),
				optarg);
			return -1;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "loadgen: unexpected argument: %s\n", argv[optind]);
		return -1;
	}
	if (!o->peers) {
		fprintf(stderr, "loadgen: --peers is required\n");
		return -1;
	}
	if ((uint64_t)o->peers + 2 > net_room(&o->tunnel_net) ||
	    (uint64_t)o->peers + 2 > net_room(&o->tunnel_net6)) {
		fprintf(stderr, "loadgen: %u peers do not fit the tunnel ranges\n", o->peers);
		return -1;
	}
	if (o->print_peers)
		return 1;
	if (!have_server || !o->have_server_public) {
		fprintf(stderr, "loadgen: --server and --server-public-key are required\n");
		return -1;
	}
	if (o->have_source && (o->source_net.base.sa.sa_family != o->server.sa.sa_family ||
			       (uint64_t)o->peers + 1 > net_room(&o->source_net))) {
		fprintf(stderr, "loadgen: --source-net must be of the server's family and hold --peers addresses\n");
		return -1;
	}
	if (o->source_port && o->source_port + o->sockets - 1 > 65535) {
		fprintf(stderr, "loadgen: --source-port + --sockets passes port 65535\n");
		return -1;
	}
	if (o->ramp_ns >= o->seconds * WGT_NSEC_PER_SEC) {
		fprintf(stderr, "loadgen: --ramp must be shorter than --seconds\n");
		return -1;
	}
	if (o->sockets > o->peers)
		o->sockets = o->peers;
	if (!have_target) {
		union wgt_sockaddr a;

		lg_nth_addr(&a, &o->tunnel_net, 1);
		o->target = a.in4.sin_addr;
	}
	return 1;
}

int lg_print_peers(const struct lg_opts *o)
{
	uint8_t priv[WGT_KEY_LEN], pub[WGT_KEY_LEN];
	char b64[4 * ((WGT_KEY_LEN + 2) / 3) + 1];
	char a4[INET_ADDRSTRLEN], a6[INET6_ADDRSTRLEN];
	union wgt_sockaddr t4, t6;
	uint32_t i;
	int r = 0;

	for (i = 0; i < o->peers; i++) {
		r = wgt_simpeer_derive_key(priv, o->seed, i);
		if (!r)
			r = wgt_x25519_public(pub, priv);
		if (r)
			break;
		EVP_EncodeBlock((unsigned char *)b64, pub, WGT_KEY_LEN);
		lg_nth_addr(&t4, &o->tunnel_net, i + 2);
		lg_nth_addr(&t6, &o->tunnel_net6, i + 2);
		inet_ntop(AF_INET, &t4.in4.sin_addr, a4, sizeof(a4));
		inet_ntop(AF_INET6, &t6.in6.sin6_addr, a6, sizeof(a6));
		if (printf("[Peer]\nPublicKey = %s\nAllowedIPs = %s/32, %s/128\n\n", b64, a4, a6) < 0) {
			r = -EIO;
			break;
		}
	}
	OPENSSL_cleanse(priv, sizeof(priv));
	if (fflush(stdout))
		r = -EIO;
	if (r)
		fprintf(stderr, "loadgen: --print-peers: %s\n", strerror(-r));
	return r;
}

size_t lg_echo_build(uint8_t *pkt, size_t size, struct in_addr src, struct in_addr dst, uint16_t id,
		     uint16_t seq)
{
	uint8_t *icmp = pkt + 20;
	uint16_t c;
	size_t i;

	memset(pkt, 0, 28);
	pkt[0] = 0x45;
	pkt[2] = (uint8_t)(size >> 8);
	pkt[3] = (uint8_t)size;
	pkt[8] = 64;  /* TTL */
	pkt[9] = 1;   /* ICMP */
	memcpy(pkt + 12, &src, 4);
	memcpy(pkt + 16, &dst, 4);
	c = wgt_tool_inet_csum(pkt, 20);
	pkt[10] = (uint8_t)(c >> 8);
	pkt[11] = (uint8_t)c;
	icmp[0] = 8;  /* echo request */
	icmp[4] = (uint8_t)(id >> 8);
	icmp[5] = (uint8_t)id;
	icmp[6] = (uint8_t)(seq >> 8);
	icmp[7] = (uint8_t)seq;
	for (i = 28; i < size; i++)
		pkt[i] = (uint8_t)i;
	c = wgt_tool_inet_csum(icmp, size - 20);
	icmp[2] = (uint8_t)(c >> 8);
	icmp[3] = (uint8_t)c;
	return size;
}

bool lg_echo_is_reply(const uint8_t *pkt, size_t len, struct in_addr dst, uint16_t id)
{
	if (len < 28 || pkt[0] != 0x45 || pkt[9] != 1 || memcmp(pkt + 16, &dst, 4))
		return false;
	if ((size_t)(pkt[2] << 8 | pkt[3]) > len)
		return false;
	return pkt[20] == 0 && (uint16_t)(pkt[24] << 8 | pkt[25]) == id;
}
