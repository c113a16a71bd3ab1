/* SPDX-License-Identifier: MIT */
/*
 * The configuration file: wg-quick's INI format, parsed into plain structs
 * that gateway/ applies (at start with --config, and again on every reload).
 *
 *   [Interface]  PrivateKey | PrivateKeyFile, ListenPort, FwMark, Address (repeatable,
 *                comma lists, v4 and v6), MTU, Table (off | auto | a number)
 *   [Peer]       PublicKey, PresharedKey | PresharedKeyFile, AllowedIPs, Endpoint
 *                (host:port, [v6]:port; host names kept unresolved here),
 *                PersistentKeepalive; a comment line "# Name = alice" names the peer
 *
 * Keys and section names are case-insensitive, '#' starts a comment, Address
 * and AllowedIPs take comma lists and accumulate over repeated lines; any
 * other key given twice in one section is an error, as are two [Interface]
 * sections and two peers with one PublicKey. MTU is 68..65535 (the TUN
 * driver's limits), at least 1280 when an Address is IPv6.
 *
 * wg-quick-only keys (DNS, PreUp, PostUp, PreDown, PostDown, SaveConfig) are
 * accepted and not executed: each gives one warning naming its line. Key files
 * readable by group or others are refused, as ssh refuses such a key.
 *
 * Every problem is reported as one line "FILE:LINE: problem" that never
 * quotes a key; the parser collects every error of a file, not just the first.
 *
 * No I/O but reading the file and its key files; no crypto (keys are 32-byte
 * arrays decoded from base64); no name resolution.
 */
#ifndef WGT_CONFIG_CONF_H
#define WGT_CONFIG_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/uapi.h"

#define WGT_CONF_NAME_LEN 64          /* a peer's name, '\0' included */
#define WGT_CONF_HOST_LEN 256         /* an endpoint's host, '\0' included */
#define WGT_CONF_MAX_ADDRESSES 256    /* Address entries of the interface */
#define WGT_CONF_MAX_FILE_BYTES (64U << 20)
/* A file's peers and allowed IPs: the UAPI caps of one set before they grew to a million
 * peers (WGT_UAPI_MAX_PEERS); a file this size fits WGT_CONF_MAX_FILE_BYTES. */
#define WGT_CONF_MAX_PEERS (1U << 17)
#define WGT_CONF_MAX_ALLOWEDIPS (1U << 20)

/* An interface address, "10.0.0.1/24" or "fd00::1/64" (a bare address is /32 or /128). */
struct wgt_conf_address {
	int family;        /* AF_INET or AF_INET6 */
	uint8_t addr[16];  /* network byte order; IPv4 uses the first 4 bytes */
	uint8_t prefix;
};

enum wgt_conf_table {
	WGT_CONF_TABLE_AUTO = 0,   /* a route per allowed IP in the main table (the default) */
	WGT_CONF_TABLE_OFF,        /* no routes */
	WGT_CONF_TABLE_ID,         /* a route per allowed IP in table `table_id` */
};

/* What the file says of one peer beyond its UAPI section (same index in wg.peers[]). */
struct wgt_conf_peer_meta {
	char name[WGT_CONF_NAME_LEN];        /* "" when no "# Name =" line */
	/* "" when no Endpoint; else the host as written (an IP literal too, without brackets) */
	char endpoint_host[WGT_CONF_HOST_LEN];
	uint16_t endpoint_port;
	unsigned line;                       /* the line of its [Peer] header */
};

enum {
	WGT_CONF_HAS_MTU = 1U << 0,
};

struct wgt_conf {
	/*
	 * Private key, listen port, fwmark and peers as a UAPI set would carry
	 * them (WGT_UAPI_DEV_HAS_* and WGT_UAPI_PEER_HAS_* presence flags set for
	 * what the file gives). An endpoint given as an IP literal is already in
	 * peers[i].endpoint with WGT_UAPI_PEER_HAS_ENDPOINT; one given as a host
	 * name is only in meta[i].endpoint_host, for gateway/ to resolve.
	 */
	struct wgt_uapi_device wg;
	struct wgt_conf_peer_meta *meta;     /* wg.n_peers entries */
	unsigned flags;                      /* WGT_CONF_HAS_* */
	uint32_t mtu;
	enum wgt_conf_table table;
	uint32_t table_id;
	struct wgt_conf_address *addresses;
	size_t n_addresses;
};

/* Any thread. Wipes every key. Accepts NULL. */
void wgt_conf_free(struct wgt_conf *conf);

/* Where the parser's messages go: one call per line of output, without '\n'. */
enum wgt_conf_severity {
	WGT_CONF_WARNING,
	WGT_CONF_ERROR,
};
typedef void (*wgt_conf_report_fn)(void *arg, enum wgt_conf_severity sev, const char *msg);

/*
 * Any thread (no shared state; `report` is called on the caller's thread).
 * Parses the file at `path` (and the key files it names, relative paths
 * taken from the file's directory). Every warning and error is handed to
 * `report` (NULL: dropped) as "PATH:LINE: problem". Returns 0 and the
 * configuration, or -errno (-EINVAL: the file has errors, each reported;
 * -ENOENT, -EACCES, ...: it could not be read, also reported).
 */
int wgt_conf_parse_file(const char *path, wgt_conf_report_fn report, void *arg,
			struct wgt_conf **ret_conf);

/* The same on text in memory; `name` stands for the file in messages and key files are relative to `dir` (NULL: "."). */
int wgt_conf_parse_text(const char *name, const char *dir, const char *text, size_t len,
			wgt_conf_report_fn report, void *arg, struct wgt_conf **ret_conf);

#endif
