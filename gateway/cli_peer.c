/* SPDX-License-Identifier: MIT */
/* `wgate peer add|show|list|remove`: client management by editing the configuration file. */
#include "gateway/cli_peer.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "common/random.h"
#include "config/conf.h"
#include "crypto/x25519.h"
#include "gateway/cli_file.h"
#include "gateway/cli_pvt.h"
#include "gateway/cli_qr.h"

/*
 * Everything here runs in a short-lived, single-threaded process. The
 * configuration file is the one source of truth: a command takes the lock
 * file, reads and parses the file, and replaces it whole (cli_file.c); the
 * daemon, which watches the file, applies the difference by its reload. The
 * client's own configuration is kept in DIR/clients/IFACE/NAME.conf so that
 * `peer show` prints it again (its private key is nowhere else).
 */

#define DEFAULT_CONFIG "/etc/wgate/wg0.conf"
#define PERSISTENT_KEEPALIVE 25
#define KEY_B64_LEN 45                 /* 44 characters and '\0' */

enum { EXIT_FAIL = 1, EXIT_USAGE = 2 };

struct cmd {
	const char *verb;
	const char *config;
	const char *name;
	const char *address;
	const char *endpoint;
	const char *allowed_ips;
	const char *qr_png;
	bool qr;
	char dir[PATH_MAX];
	char iface[NAME_MAX + 1];
	char client_dir[PATH_MAX];
	char client_file[PATH_MAX];
};

/* The configuration as read (text, owner) and parsed. */
struct loaded {
	char *text;
	size_t len;
	uid_t uid;
	gid_t gid;
	struct wgt_conf *conf;
};

/* A client's growing configuration text: every reallocation wipes the old copy (it holds a key). */
struct sbuf {
	char *p;
	size_t len, cap;
	bool failed;
};

static void __attribute__((format(printf, 2, 3))) sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	size_t need, cap;
	char *p;
	int n;

	if (b->failed)
		return;
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->failed = true;
		return;
	}
	need = b->len + (size_t)n + 1;
	if (need > b->cap) {
		cap = need < 1024 ? 1024 : need * 2;
		p = malloc(cap);
		if (!p) {
			b->failed = true;
			return;
		}
		if (b->p) {
			memcpy(p, b->p, b->len + 1);
			OPENSSL_cleanse(b->p, b->cap);
			free(b->p);
		}
		b->p = p;
		b->cap = cap;
	}
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

static void sb_free(struct sbuf *b)
{
	if (b->p)
		OPENSSL_cleanse(b->p, b->cap);
	free(b->p);
	memset(b, 0, sizeof(*b));
}

int wgt_cli_fail(const char *fmt, ...)
{
	va_list ap;

	fputs("wgate peer: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return EXIT_FAIL;
}

static void usage(FILE *f)
{
	fputs("Usage: wgate peer add NAME [--config FILE] [--address A[,A6]] [--endpoint HOST:PORT]\n"
	      "                           [--allowed-ips LIST] [--qr] [--qr-png FILE]\n"
	      "       wgate peer show NAME [--config FILE] [--qr] [--qr-png FILE]\n"
	      "       wgate peer list [--config FILE]\n"
	      "       wgate peer remove NAME [--config FILE]\n"
	      "\n"
	      "Edits the configuration file (default $WGATE_CONFIG, else " DEFAULT_CONFIG ")\n"
	      "atomically; a wgate running with --config FILE applies the change by its reload.\n"
	      "add chooses the next free address in the interface's Address networks, writes\n"
	      "the client's configuration to DIR/clients/IFACE/NAME.conf and prints it.\n"
	      "\n"
	      "  --address A[,A6]     the client's addresses instead of the next free ones\n"
	      "  --endpoint HOST:PORT the gateway as clients reach it (default: the\n"
	      "                       \"# Endpoint = HOST:PORT\" line of [Interface])\n"
	      "  --allowed-ips LIST   what the client routes into the tunnel (default: the\n"
	      "                       interface's Address networks; 0.0.0.0/0, ::/0 for all)\n"
	      "  --qr                 also print the client configuration as a QR code\n"
	      "  --qr-png FILE        write that QR code to FILE as a PNG\n",
	      f);
}

static int bad_usage(const char *what)
{
	fprintf(stderr, "wgate peer: %s (see wgate peer --help)\n", what);
	return EXIT_USAGE;
}

/* 1..63 of [A-Za-z0-9._-], not starting with '.' (it names a file, never "." or ".."). */
static bool name_valid(const char *name)
{
	size_t i, len = strlen(name);

	if (len == 0 || len >= WGT_CONF_NAME_LEN || name[0] == '.')
		return false;
	for (i = 0; i < len; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

static void key_b64(char out[KEY_B64_LEN], const uint8_t key[WGT_X25519_KEY_LEN])
{
	EVP_EncodeBlock((unsigned char *)out, key, WGT_X25519_KEY_LEN);
}

/* The errors of the file as FILE:LINE lines; warnings are the daemon's business. */
static void report_stderr(void *arg, enum wgt_conf_severity sev, const char *msg)
{
	(void)arg;
	if (sev == WGT_CONF_ERROR)
		fprintf(stderr, "%s\n", msg);
}

static void loaded_free(struct loaded *l)
{
	if (l->text)
		OPENSSL_cleanse(l->text, l->len);
	free(l->text);
	wgt_conf_free(l->conf);
	memset(l, 0, sizeof(*l));
}

static int load(const struct cmd *c, struct loaded *l)
{
	int r;

	r = wgt_cli_file_read(c->config, WGT_CONF_MAX_FILE_BYTES, &l->text, &l->len, &l->uid,
			      &l->gid);
	if (r == -ENOENT)
		return wgt_cli_fail("%s: no such file (give --config FILE or set WGATE_CONFIG)", c->config);
	if (r)
		return wgt_cli_fail("cannot read %s: %s", c->config, strerror(-r));
	r = wgt_conf_parse_text(c->config, c->dir, l->text, l->len, report_stderr, NULL, &l->conf);
	if (r == -EINVAL)
		return wgt_cli_fail("%s has errors (above); nothing changed", c->config);
	if (r)
		return wgt_cli_fail("cannot parse %s: %s", c->config, strerror(-r));
	return 0;
}

/* The index of the peer named `name`, or -1. */
static long peer_by_name(const struct wgt_conf *conf, const char *name)
{
	size_t i;

	for (i = 0; i < conf->wg.n_peers; i++)
		if (!strcmp(conf->meta[i].name, name))
			return (long)i;
	return -1;
}

/* --allowed-ips as given, else every Address network of the interface, masked, without repeats. */
static void client_allowed_ips(const struct cmd *c, const struct wgt_conf *conf, struct sbuf *b)
{
	char s[WGT_CLI_ADDR_STR_LEN], seen[WGT_CONF_MAX_ADDRESSES][WGT_CLI_ADDR_STR_LEN];
	size_t i, j, n = 0;

	if (c->allowed_ips) {
		sb_printf(b, "%s", c->allowed_ips);
		return;
	}
	for (i = 0; i < conf->n_addresses && n < WGT_CONF_MAX_ADDRESSES; i++) {
		const struct wgt_conf_address *a = &conf->addresses[i];
		uint8_t net[16];

		memcpy(net, a->addr, 16);
		wgt_cli_addr_mask(net, a->family, a->prefix);
		wgt_cli_addr_str(s, a->family, net, a->prefix);
		for (j = 0; j < n && strcmp(seen[j], s); j++)
			;
		if (j < n)
			continue;
		memcpy(seen[n++], s, sizeof(s));
		sb_printf(b, "%s%s", n > 1 ? ", " : "", s);
	}
}

/* "10.0.0.2/32, fd00::2/128" */
static void client_addr_list(const struct wgt_cli_addrs *ca, struct sbuf *b)
{
	char s[WGT_CLI_ADDR_STR_LEN];

	if (ca->has4) {
		wgt_cli_addr_str(s, AF_INET, ca->a4, 32);
		sb_printf(b, "%s", s);
	}
	if (ca->has6) {
		wgt_cli_addr_str(s, AF_INET6, ca->a6, 128);
		sb_printf(b, "%s%s", ca->has4 ? ", " : "", s);
	}
}

/* Prints the client configuration, then its QR code as asked. */
static int output_client(const struct cmd *c, const char *text)
{
	int r;

	fputs(text, stdout);
	if (c->qr) {
		fputc('\n', stdout);
		r = wgt_cli_qr_print(stdout, text);
		if (r)
			return wgt_cli_fail("cannot draw the QR code: %s", strerror(-r));
	}
	if (c->qr_png) {
		r = wgt_cli_qr_png(c->qr_png, text);
		if (r)
			return wgt_cli_fail("cannot write %s: %s", c->qr_png, strerror(-r));
	}
	if (fflush(stdout) == EOF)
		return wgt_cli_fail("cannot write to stdout: %s", strerror(errno));
	return 0;
}

static int lock(const struct cmd *c, int *ret_fd)
{
	char path[PATH_MAX];
	const char *base = strrchr(c->config, '/');
	int r;

	/* A missing file gets its own error, and no lock file is left for it. */
	if (access(c->config, F_OK) == -1 && errno == ENOENT)
		return wgt_cli_fail("%s: no such file (give --config FILE or set WGATE_CONFIG)", c->config);
	base = base ? base + 1 : c->config;
	if (snprintf(path, sizeof(path), "%s/.%s.lock", c->dir, base) >= (int)sizeof(path))
		return wgt_cli_fail("cannot lock %s: path too long", c->config);
	r = wgt_cli_file_lock(path, ret_fd);
	if (r)
		return wgt_cli_fail("cannot lock %s: %s", path, strerror(-r));
	return 0;
}

static int cmd_add(struct cmd *c)
{
	uint8_t priv[WGT_X25519_KEY_LEN], pub[WGT_X25519_KEY_LEN], psk[WGT_X25519_KEY_LEN];
	uint8_t gw_pub[WGT_X25519_KEY_LEN], zero[WGT_X25519_KEY_LEN] = { 0 };
	char priv_b64[KEY_B64_LEN], pub_b64[KEY_B64_LEN], psk_b64[KEY_B64_LEN];
	char gw_b64[KEY_B64_LEN], endpoint[WGT_CONF_HOST_LEN + 16], comment[WGT_CONF_HOST_LEN + 16];
	struct sbuf client = { 0 }, server = { 0 }, addrs = { 0 };
	struct wgt_cli_addrs ca = { 0 };
	struct loaded l = { 0 };
	uint16_t port;
	size_t keep;
	int lock_fd = -1, r;

	if (!name_valid(c->name)) {
		r = wgt_cli_fail("'%s' is not a valid name: 1 to %d of A-Z a-z 0-9 . _ - (not starting with '.')",
			 c->name, WGT_CONF_NAME_LEN - 1);
		goto out;
	}
	r = lock(c, &lock_fd);
	if (r)
		goto out;
	r = load(c, &l);
	if (r)
		goto out;
	if (peer_by_name(l.conf, c->name) >= 0) {
		r = wgt_cli_fail("a peer named '%s' is already in %s", c->name, c->config);
		goto out;
	}
	if (!(l.conf->wg.flags & WGT_UAPI_DEV_HAS_PRIVATE_KEY) ||
	    !CRYPTO_memcmp(l.conf->wg.private_key, zero, sizeof(zero))) {
		r = wgt_cli_fail("%s has no PrivateKey in [Interface]: the client needs the gateway's public key",
			 c->config);
		goto out;
	}
	port = l.conf->wg.flags & WGT_UAPI_DEV_HAS_LISTEN_PORT ? l.conf->wg.listen_port : 0;
	if (c->endpoint)
		r = wgt_cli_endpoint_normalize("--endpoint", c->endpoint, port, endpoint, sizeof(endpoint));
	else if (wgt_cli_endpoint_comment(l.text, comment, sizeof(comment)))
		r = wgt_cli_endpoint_normalize("# Endpoint", comment, port, endpoint, sizeof(endpoint));
	else
		r = wgt_cli_fail("no endpoint for the client: give --endpoint HOST:PORT or put a line "
			 "'# Endpoint = HOST:PORT' in [Interface] of %s", c->config);
	if (r)
		goto out;
	if (c->allowed_ips) {
		r = wgt_cli_allowed_ips_check(c->allowed_ips);
		if (r)
			goto out;
	}
	r = c->address ? wgt_cli_addrs_parse(c->address, l.conf, &ca) :
			   wgt_cli_addrs_choose(c->config, l.conf, &ca);
	if (r)
		goto out;

	r = wgt_x25519_generate(priv, pub);
	if (!r)
		r = wgt_random_bytes(psk, sizeof(psk));
	if (!r)
		r = wgt_x25519_public(gw_pub, l.conf->wg.private_key);
	if (r) {
		r = wgt_cli_fail("cannot generate keys: %s", strerror(-r));
		goto out;
	}
	key_b64(priv_b64, priv);
	key_b64(pub_b64, pub);
	key_b64(psk_b64, psk);
	key_b64(gw_b64, gw_pub);
	client_addr_list(&ca, &addrs);

	sb_printf(&client, "[Interface]\nPrivateKey = %s\nAddress = %s\n\n", priv_b64,
		  addrs.p ? addrs.p : "");
	sb_printf(&client, "[Peer]\nPublicKey = %s\nPresharedKey = %s\nAllowedIPs = ", gw_b64,
		  psk_b64);
	client_allowed_ips(c, l.conf, &client);
	sb_printf(&client, "\nEndpoint = %s\nPersistentKeepalive = %d\n", endpoint,
		  PERSISTENT_KEEPALIVE);

	/* The file as it was, without trailing blank lines, then one blank line and the section. */
	for (keep = l.len; keep && strchr(" \t\r\n", l.text[keep - 1]); keep--)
		;
	sb_printf(&server, "%.*s%s[Peer]\n# Name = %s\nPublicKey = %s\nPresharedKey = %s\n"
		  "AllowedIPs = %s\n", (int)keep, l.text, keep ? "\n\n" : "", c->name, pub_b64,
		  psk_b64, addrs.p ? addrs.p : "");
	if (client.failed || server.failed || addrs.failed) {
		r = wgt_cli_fail("out of memory");
		goto out;
	}

	r = wgt_cli_file_mkdirs(c->client_dir);
	if (!r)
		r = wgt_cli_file_replace(c->client_file, client.p, client.len, l.uid, l.gid);
	if (r) {
		r = wgt_cli_fail("cannot write %s: %s", c->client_file, strerror(-r));
		goto out;
	}
	r = wgt_cli_file_replace(c->config, server.p, server.len, l.uid, l.gid);
	if (r) {
		unlink(c->client_file);
		r = wgt_cli_fail("cannot replace %s: %s", c->config, strerror(-r));
		goto out;
	}
	fprintf(stderr, "wgate peer: added %s (%s) to %s; client file %s\n", c->name, addrs.p,
		c->config, c->client_file);
	r = output_client(c, client.p);
out:
	OPENSSL_cleanse(priv, sizeof(priv));
	OPENSSL_cleanse(psk, sizeof(psk));
	OPENSSL_cleanse(priv_b64, sizeof(priv_b64));
	OPENSSL_cleanse(psk_b64, sizeof(psk_b64));
	sb_free(&client);
	sb_free(&server);
	sb_free(&addrs);
	loaded_free(&l);
	if (lock_fd >= 0)
		close(lock_fd);
	return r;
}

static int cmd_show(struct cmd *c)
{
	uid_t uid;
	gid_t gid;
	char *text = NULL;
	size_t len = 0;
	int r;

	if (!name_valid(c->name))
		return wgt_cli_fail("'%s' is not a valid name", c->name);
	r = wgt_cli_file_read(c->client_file, 1U << 20, &text, &len, &uid, &gid);
	if (r == -ENOENT)
		return wgt_cli_fail("no client file %s (only clients made by 'wgate peer add' have one)",
			    c->client_file);
	if (r)
		return wgt_cli_fail("cannot read %s: %s", c->client_file, strerror(-r));
	r = output_client(c, text);
	OPENSSL_cleanse(text, len);
	free(text);
	return r;
}

static int cmd_list(struct cmd *c)
{
	struct loaded l = { 0 };
	char key[KEY_B64_LEN], s[WGT_CLI_ADDR_STR_LEN];
	size_t i, j;
	int r;

	r = load(c, &l);
	if (r)
		goto out;
	for (i = 0; i < l.conf->wg.n_peers; i++) {
		const struct wgt_uapi_peer *p = &l.conf->wg.peers[i];
		bool first = true;

		key_b64(key, p->public_key);
		printf("%s\t%s\t", l.conf->meta[i].name[0] ? l.conf->meta[i].name : "-", key);
		for (j = 0; j < p->n_allowed_ips; j++) {
			if (p->allowed_ips[j].remove)
				continue;
			wgt_cli_addr_str(s, p->allowed_ips[j].family, p->allowed_ips[j].addr,
				 p->allowed_ips[j].cidr);
			printf("%s%s", first ? "" : ",", s);
			first = false;
		}
		printf("%s\n", first ? "-" : "");
	}
	if (fflush(stdout) == EOF)
		r = wgt_cli_fail("cannot write to stdout: %s", strerror(errno));
out:
	loaded_free(&l);
	return r;
}

/* Byte offset of the start of line `n` (1-based) of text, or len. */
static size_t line_offset(const char *text, size_t len, unsigned n)
{
	size_t off = 0;

	while (--n && off < len) {
		const char *nl = memchr(text + off, '\n', len - off);

		off = nl ? (size_t)(nl - text) + 1 : len;
	}
	return off;
}

/* The first non-blank character of the line at `off` ('\n' for an empty line, '\0' at the end). */
static char line_lead(const char *text, size_t len, size_t off)
{
	while (off < len && (text[off] == ' ' || text[off] == '\t' || text[off] == '\r'))
		off++;
	return off < len ? text[off] : '\0';
}

/* The start of the line before the line starting at `off` (> 0). */
static size_t line_before(const char *text, size_t off)
{
	off--;
	while (off && text[off - 1] != '\n')
		off--;
	return off;
}

/*
 * The end of the section whose header line starts at `start`: the start of the
 * next header line (first non-blank character '['), or the end of the text. A
 * block of comment lines right above the next header that a blank line sets
 * apart from this section is the next section's, and stays.
 */
static size_t section_end(const char *text, size_t len, size_t start)
{
	const char *nl = memchr(text + start, '\n', len - start);
	size_t first = nl ? (size_t)(nl - text) + 1 : len, next = first, b;

	while (next < len && line_lead(text, len, next) != '[') {
		nl = memchr(text + next, '\n', len - next);
		next = nl ? (size_t)(nl - text) + 1 : len;
	}
	if (next >= len)
		return len;
	for (b = next; b > first && line_lead(text, len, line_before(text, b)) == '#';)
		b = line_before(text, b);
	if (b < next && b > first && line_lead(text, len, line_before(text, b)) == '\n')
		return b;
	return next;
}

static int cmd_remove(struct cmd *c)
{
	struct sbuf out = { 0 };
	struct loaded l = { 0 };
	size_t start, end, keep, b;
	int lock_fd = -1, r;
	long i;

	if (!name_valid(c->name))
		return wgt_cli_fail("'%s' is not a valid name", c->name);
	r = lock(c, &lock_fd);
	if (r)
		goto out;
	r = load(c, &l);
	if (r)
		goto out;
	i = peer_by_name(l.conf, c->name);
	if (i < 0) {
		r = wgt_cli_fail("no peer named '%s' in %s", c->name, c->config);
		goto out;
	}
	/* From its [Peer] line (and comments above it after a blank line) to the next section. */
	start = line_offset(l.text, l.len, l.conf->meta[i].line);
	end = section_end(l.text, l.len, start);
	for (b = start; b && line_lead(l.text, l.len, line_before(l.text, b)) == '#';)
		b = line_before(l.text, b);
	if (b < start && (!b || line_lead(l.text, l.len, line_before(l.text, b)) == '\n'))
		start = b;
	for (keep = start; keep && strchr(" \t\r\n", l.text[keep - 1]); keep--)
		;
	if (end < l.len)
		sb_printf(&out, "%.*s%s%s", (int)keep, l.text, keep ? "\n\n" : "", l.text + end);
	else
		sb_printf(&out, "%.*s%s", (int)keep, l.text, keep ? "\n" : "");
	if (out.failed) {
		r = wgt_cli_fail("out of memory");
		goto out;
	}
	r = wgt_cli_file_replace(c->config, out.p, out.len, l.uid, l.gid);
	if (r) {
		r = wgt_cli_fail("cannot replace %s: %s", c->config, strerror(-r));
		goto out;
	}
	if (unlink(c->client_file) == -1 && errno != ENOENT)
		fprintf(stderr, "wgate peer: removed %s, but cannot remove %s: %s\n", c->name,
			c->client_file, strerror(errno));
	else
		fprintf(stderr, "wgate peer: removed %s from %s\n", c->name, c->config);
out:
	sb_free(&out);
	loaded_free(&l);
	if (lock_fd >= 0)
		close(lock_fd);
	return r;
}

/* DIR and IFACE (the file's name without .conf) from the config path; the client file's path. */
static int paths(struct cmd *c)
{
	const char *slash = strrchr(c->config, '/'), *base = slash ? slash + 1 : c->config;
	size_t blen = strlen(base);

	if (!blen)
		return wgt_cli_fail("--config: '%s' names a directory, not a file", c->config);
	if (!slash)
		snprintf(c->dir, sizeof(c->dir), ".");
	else if (slash == c->config)
		snprintf(c->dir, sizeof(c->dir), "/");
	else
		snprintf(c->dir, sizeof(c->dir), "%.*s", (int)(slash - c->config), c->config);
	if (blen > 5 && !strcmp(base + blen - 5, ".conf"))
		blen -= 5;
	snprintf(c->iface, sizeof(c->iface), "%.*s", (int)blen, base);
	if (snprintf(c->client_dir, sizeof(c->client_dir), "%s/clients/%s", c->dir, c->iface) >=
		    (int)sizeof(c->client_dir) ||
	    snprintf(c->client_file, sizeof(c->client_file), "%s/%s.conf", c->client_dir,
		     c->name ? c->name : "") >= (int)sizeof(c->client_file))
		return wgt_cli_fail("--config: path too long");
	return 0;
}

int wgt_cli_peer_main(int argc, char **argv)
{
	enum { OPT_CONFIG = 256, OPT_ADDRESS, OPT_ENDPOINT, OPT_ALLOWED_IPS, OPT_QR, OPT_QR_PNG };
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, OPT_CONFIG },
		{ "address", required_argument, NULL, OPT_ADDRESS },
		{ "endpoint", required_argument, NULL, OPT_ENDPOINT },
		{ "allowed-ips", required_argument, NULL, OPT_ALLOWED_IPS },
		{ "qr", no_argument, NULL, OPT_QR },
		{ "qr-png", required_argument, NULL, OPT_QR_PNG },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct cmd c = { 0 };
	bool adds, needs_name;
	int opt, r;

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_USAGE : 0;
	}
	c.verb = argv[1];
	c.config = getenv("WGATE_CONFIG");
	if (!c.config || !c.config[0])
		c.config = DEFAULT_CONFIG;
	/* argv[1] (the verb) stands as getopt's program name; NAME may come before or after options. */
	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc - 1, argv + 1, ":h", longopts, NULL)) != -1) {
		switch (opt) {
		case OPT_CONFIG:
			c.config = optarg;
			break;
		case OPT_ADDRESS:
			c.address = optarg;
			break;
		case OPT_ENDPOINT:
			c.endpoint = optarg;
			break;
		case OPT_ALLOWED_IPS:
			c.allowed_ips = optarg;
			break;
		case OPT_QR:
			c.qr = true;
			break;
		case OPT_QR_PNG:
			c.qr_png = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case ':':
			fprintf(stderr, "wgate peer: option '%s' needs an argument\n", argv[optind]);
			return EXIT_USAGE;
		default:
			fprintf(stderr, "wgate peer: unknown option '%s'\n", argv[optind]);
			return EXIT_USAGE;
		}
	}
	argc -= optind + 1;
	argv += optind + 1;
	adds = !strcmp(c.verb, "add");
	needs_name = adds || !strcmp(c.verb, "remove") || !strcmp(c.verb, "show");
	if (!needs_name && strcmp(c.verb, "list"))
		return bad_usage("unknown command: use add, show, list or remove");
	if (needs_name && argc < 1)
		return bad_usage("missing the peer's NAME");
	if (argc > (needs_name ? 1 : 0))
		return bad_usage("too many arguments");
	if (!adds && (c.address || c.endpoint || c.allowed_ips))
		return bad_usage("--address, --endpoint and --allowed-ips are for add");
	if (strcmp(c.verb, "add") && strcmp(c.verb, "show") && (c.qr || c.qr_png))
		return bad_usage("--qr and --qr-png are for add and show");
	c.name = needs_name ? argv[0] : NULL;
	r = paths(&c);
	if (r)
		return r;
	if (adds)
		return cmd_add(&c);
	if (!strcmp(c.verb, "show"))
		return cmd_show(&c);
	if (!strcmp(c.verb, "remove"))
		return cmd_remove(&c);
	return cmd_list(&c);
}
