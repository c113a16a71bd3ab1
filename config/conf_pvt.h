/* SPDX-License-Identifier: MIT */
/*
 * The configuration file's value parsers, shared by conf.c and the unit tests.
 * Each takes a value already stripped of surrounding whitespace as (v, len),
 * not NUL-terminated, and returns NULL or a short phrase saying what is wrong
 * that never quotes the value (it may be a mistyped or pasted key).
 */
#ifndef WGT_CONFIG_CONF_PVT_H
#define WGT_CONFIG_CONF_PVT_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/endpoint.h"
#include "config/conf.h"

#define WGT_CONF_B64_KEY_LEN 44  /* 32 bytes in base64: 43 digits and one '=' */
#define WGT_CONF_MSG_LEN (PATH_MAX + 256) /* a report line: a path and a phrase */

/*
 * conf.c: parses text, as wgt_conf_parse_text(), and also says where the
 * text itself holds a key: *ret_secret_line is the first line of a
 * PrivateKey or PresharedKey (0: none), for the file-mode warning.
 */
int wgt_conf_parse(const char *name, const char *dir, const char *text, size_t len,
		   wgt_conf_report_fn report, void *arg, struct wgt_conf **ret_conf,
		   unsigned *ret_secret_line);

/*
 * conf_file.c: reads the key file at `path` into key. It must be a regular
 * file that neither group nor others may read or write (as ssh insists for
 * a private key), holding one base64 key and whitespace. Returns 0, or
 * -errno and what is wrong in `why` ("key file PATH is ..."), never quoting
 * the contents, nor the path when hide_path. The bytes read are wiped on
 * every path.
 */
int wgt_conf_read_key_file(const char *path, bool hide_path, uint8_t key[32], char *why,
			   size_t why_len);

/*
 * A piece of a key, never to be quoted: 16 or more of [A-Za-z0-9+=] in a
 * row with lower and upper case letters and digits ('/' ends a run, so a
 * path's directories do not add up). File names rarely look so.
 */
bool wgt_conf_has_key_run(const char *v, size_t len);

/*
 * A key as `wg genkey` writes it: 44 characters, the last one '=', and the
 * unused low bits of the 43rd zero (as wireguard-tools' key_from_base64).
 * Constant time in the digits; the key is wiped on failure.
 */
bool wgt_conf_key_from_base64(uint8_t key[32], const char *v, size_t len);

/* FwMark as wg reads it: `off` (0), 0x-prefixed hexadecimal or decimal, at most 2^32-1. */
const char *wgt_conf_parse_fwmark(const char *v, size_t len, uint32_t *ret);

/*
 * "addr" or "addr/prefix", IPv4 or IPv6 without a zone; a bare address is
 * /32 or /128. Host bits are kept. `addr` is in network byte order.
 */
const char *wgt_conf_parse_prefix(const char *v, size_t len, int *ret_family,
				  uint8_t ret_addr[16], uint8_t *ret_prefix);

/* An Endpoint value: an IP literal (sa set), or a host name to resolve later (sa AF_UNSPEC). */
struct wgt_conf_endpoint {
	union wgt_sockaddr sa;
	char host[WGT_CONF_HOST_LEN];  /* as written, without brackets */
	uint16_t port;
};

/*
 * host:port, 1.2.3.4:port or [v6]:port, the port in decimal from 1 to
 * 65535. A host name is letters, digits, '-', '_' and '.' with at least
 * one letter; an IPv6 zone given by name ([fe80::1%eth0]:port) is left to
 * the resolver too, as a host.
 */
const char *wgt_conf_parse_endpoint(const char *v, size_t len, struct wgt_conf_endpoint *ret);

/* A peer's "# Name =": 1 to WGT_CONF_NAME_LEN - 1 printable ASCII bytes, no quote or backslash. */
const char *wgt_conf_check_name(const char *v, size_t len);

#endif
