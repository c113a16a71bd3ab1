/* SPDX-License-Identifier: MIT */
/* What the files of `wgate peer` share: the one-line error, addresses, endpoints (cli_addr.c). */
#ifndef WGT_GATEWAY_CLI_PVT_H
#define WGT_GATEWAY_CLI_PVT_H

#include <arpa/inet.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wgt_conf;

/* Everything here runs in the short-lived, single-threaded `wgate peer` process. */

#define WGT_CLI_ADDR_STR_LEN (INET6_ADDRSTRLEN + 5)   /* "ADDR/PREFIX" */

/* The client's addresses: at most one per family. */
struct wgt_cli_addrs {
	bool has4, has6;
	uint8_t a4[16], a6[16];
};

/* "wgate peer: MESSAGE" on stderr; returns the exit status 1. */
int wgt_cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

void wgt_cli_addr_str(char out[WGT_CLI_ADDR_STR_LEN], int family, const uint8_t *addr,
		      unsigned prefix);

/* Clears the host bits of `a` beyond `prefix`. */
void wgt_cli_addr_mask(uint8_t *a, int family, unsigned prefix);

/*
 * The next free client addresses of `conf` (the file `config`, for messages).
 * These functions return 0, or the exit status 1 after one line on stderr.
 */
int wgt_cli_addrs_choose(const char *config, const struct wgt_conf *conf,
			 struct wgt_cli_addrs *ca);

/* --address A[,A6]: host addresses, at most one per family, none taken in `conf`. */
int wgt_cli_addrs_parse(const char *arg, const struct wgt_conf *conf, struct wgt_cli_addrs *ca);

/* --allowed-ips: a comma list of ADDR[/PREFIX]. */
int wgt_cli_allowed_ips_check(const char *list);

/*
 * HOST, HOST:PORT, [V6] or [V6]:PORT into "HOST:PORT" ("[V6]:PORT"); a bare
 * IPv6 literal gets brackets, a missing port is `port` (0: an error).
 */
int wgt_cli_endpoint_normalize(const char *what, const char *in, uint16_t port, char *out,
			       size_t size);

/* The value of a "# Endpoint = HOST:PORT" comment line in [Interface]; false when none. */
bool wgt_cli_endpoint_comment(const char *text, char *out, size_t size);

#endif
