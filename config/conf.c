/* SPDX-License-Identifier: MIT */
/* The wg-quick config file: lines, sections and keys into a struct wgt_conf, every problem reported. */
#include "config/conf.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/compiler.h"
#include "config/conf_pvt.h"
#include "config/parse.h"

#define MAX_LINE 4096U       /* bytes, '\n' and a trailing '\r' excluded */
#define MAX_ERRORS 100U      /* then one line saying so, and the parse stops */
#define MAX_WARNINGS 100U    /* then the rest are dropped */
#define MTU_MIN 68U          /* the TUN driver's limits (drivers/net/tun.c MIN_MTU, MAX_MTU) */
#define MTU_MAX 65535U
#define MTU_MIN_IPV6 1280U   /* below it the kernel turns IPv6 off on the link */
#define MSG_LEN WGT_CONF_MSG_LEN

enum section { SEC_NONE, SEC_INTERFACE, SEC_PEER, SEC_SKIP };

static const char *const section_names[] = {
	[SEC_NONE] = "", [SEC_INTERFACE] = "Interface", [SEC_PEER] = "Peer", [SEC_SKIP] = "",
};

/* Keys given at most once per section; seen[] holds the line of each. */
enum key_id {
	K_PRIVATE_KEY, K_PRIVATE_KEY_FILE, K_LISTEN_PORT, K_FWMARK, K_MTU, K_TABLE,
	K_PUBLIC_KEY, K_PRESHARED_KEY, K_PRESHARED_KEY_FILE, K_ENDPOINT, K_KEEPALIVE, K_NAME,
	K__COUNT,
	K_REPEATABLE = -1,
};

struct parser {
	const char *name;              /* the file, in messages */
	const char *dir;               /* relative key files are taken from here */
	wgt_conf_report_fn report;
	void *arg;
	struct wgt_conf *conf;
	unsigned *pubkey_lines;        /* per peer: its PublicKey line, 0 when none */
	unsigned lineno;
	enum section section;
	unsigned section_line;         /* the current section's header */
	unsigned seen[K__COUNT];       /* in the current section */
	unsigned interface_line;       /* the first [Interface] */
	unsigned secret_line;          /* the first key written in the file itself */
	unsigned v6_address_line;      /* the first IPv6 Address */
	unsigned mtu_line;
	unsigned n_errors, n_warnings;
	size_t n_allowedips;           /* in the whole file */
	bool stop;                     /* too many errors, or out of memory */
	bool nomem;
	bool peers_capped, addresses_capped, allowedips_capped;
	bool peer_allowedips_capped;   /* in the current peer */
	char msg[MSG_LEN];
};

__attribute__((format(printf, 4, 0)))
static void vsay(struct parser *p, enum wgt_conf_severity sev, unsigned line, const char *fmt,
		 va_list ap)
{
	int n;

	if (!p->report)
		return;
	if (line)
		n = snprintf(p->msg, sizeof(p->msg), "%s:%u: ", p->name, line);
	else
		n = snprintf(p->msg, sizeof(p->msg), "%s: ", p->name);
	if (n < 0 || (size_t)n >= sizeof(p->msg))
		n = 0;
	vsnprintf(p->msg + n, sizeof(p->msg) - (size_t)n, fmt, ap);
	p->report(p->arg, sev, p->msg);
}

__attribute__((format(printf, 4, 5)))
static void say(struct parser *p, enum wgt_conf_severity sev, unsigned line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsay(p, sev, line, fmt, ap);
	va_end(ap);
}

/* An error on `line` (0: the whole file). Never pass a value that may be a secret. */
__attribute__((format(printf, 3, 4)))
static void error_at(struct parser *p, unsigned line, const char *fmt, ...)
{
	va_list ap;

	if (p->stop)
		return;
	if (++p->n_errors > MAX_ERRORS) {
		say(p, WGT_CONF_ERROR, line, "more than %u errors; not reading further",
		    MAX_ERRORS);
		p->stop = true;
		return;
	}
	va_start(ap, fmt);
	vsay(p, WGT_CONF_ERROR, line, fmt, ap);
	va_end(ap);
}

#define error_here(p, ...) error_at(p, (p)->lineno, __VA_ARGS__)

__attribute__((format(printf, 3, 4)))
static void warn_at(struct parser *p, unsigned line, const char *fmt, ...)
{
	va_list ap;

	if (++p->n_warnings > MAX_WARNINGS) {
		if (p->n_warnings == MAX_WARNINGS + 1)
			say(p, WGT_CONF_WARNING, line,
			    "more than %u warnings; the rest are not shown", MAX_WARNINGS);
		return;
	}
	va_start(ap, fmt);
	vsay(p, WGT_CONF_WARNING, line, fmt, ap);
	va_end(ap);
}

static void out_of_memory(struct parser *p)
{
	if (!p->nomem)
		error_here(p, "out of memory");
	p->nomem = true;
	p->stop = true;
}

/* A section or key name fit to quote: letters only, at most 32. Anything else may be a secret. */
static bool quotable(const char *s, size_t len)
{
	size_t i;

	if (!len || len > 32)
		return false;
	for (i = 0; i < len; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')))
			return false;
	return true;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r';
}

static void trim(const char **s, const char **e)
{
	while (*s < *e && is_space(**s))
		(*s)++;
	while (*e > *s && is_space((*e)[-1]))
		(*e)--;
}

static bool equals_ci(const char *s, size_t len, const char *word)
{
	return strlen(word) == len && !strncasecmp(s, word, len);
}

static struct wgt_uapi_peer *cur_peer(struct parser *p)
{
	WGT_ASSERT(p->section == SEC_PEER && p->conf->wg.n_peers);
	return &p->conf->wg.peers[p->conf->wg.n_peers - 1];
}

static struct wgt_conf_peer_meta *cur_meta(struct parser *p)
{
	return &p->conf->meta[p->conf->wg.n_peers - 1];
}

/*
 * The key file named on the current line, relative to the file's
 * directory, into key. Reports and returns false on any problem.
 */
static bool read_key_file(struct parser *p, const char *what, const char *v, size_t len,
			  uint8_t key[WGT_UAPI_KEY_LEN])
{
	char path[PATH_MAX], why[MSG_LEN];
	bool ok = false;
	int r;

	if (!len) {
		error_here(p, "%s: empty path", what);
		return false;
	}
	/* A key pasted in place of the file name must not reach a message as a path. */
	if (wgt_conf_key_from_base64(key, v, len)) {
		explicit_bzero(key, WGT_UAPI_KEY_LEN);
		error_here(p, "%s: this is a key, not a file name (use %.*s)", what,
			   (int)(strlen(what) - 4), what);
		return false;
	}
	if (v[0] == '/')
		r = snprintf(path, sizeof(path), "%.*s", (int)len, v);
	else
		r = snprintf(path, sizeof(path), "%s/%.*s", p->dir, (int)len, v);
	if (r < 0 || (size_t)r >= sizeof(path))
		error_here(p, "%s: path longer than %u bytes", what, PATH_MAX - 1);
	else if (wgt_conf_read_key_file(path, wgt_conf_has_key_run(v, len), key, why, sizeof(why)))
		error_here(p, "%s", why);
	else
		ok = true;
	/* It may hold a piece of a mistyped key. */
	explicit_bzero(path, sizeof(path));
	return ok;
}

static bool parse_key(struct parser *p, const char *what, const char *v, size_t len,
		      uint8_t key[WGT_UAPI_KEY_LEN])
{
	if (wgt_conf_key_from_base64(key, v, len))
		return true;
	error_here(p, "%s: not a base64 key of 32 bytes (44 characters ending in '=')", what);
	return false;
}

static void set_private_key(struct parser *p, const char *key, const char *v, size_t len)
{
	struct wgt_uapi_device *wg = &p->conf->wg;

	if (!p->secret_line)
		p->secret_line = p->lineno;
	if (parse_key(p, key, v, len, wg->private_key))
		wg->flags |= WGT_UAPI_DEV_HAS_PRIVATE_KEY;
}

static void set_private_key_file(struct parser *p, const char *key, const char *v, size_t len)
{
	struct wgt_uapi_device *wg = &p->conf->wg;

	if (read_key_file(p, key, v, len, wg->private_key))
		wg->flags |= WGT_UAPI_DEV_HAS_PRIVATE_KEY;
}

/* A decimal number from min to max, else an error naming the key and the range. */
static bool parse_number(struct parser *p, const char *key, const char *v, size_t len,
			 uint32_t min, uint32_t max, uint32_t *ret)
{
	uint64_t n;

	if (wgt_parse_uint(v, len, max, &n) || n < min) {
		error_here(p, "%s: not a number from %u to %u", key, min, max);
		return false;
	}
	*ret = (uint32_t)n;
	return true;
}

static void set_listen_port(struct parser *p, const char *key, const char *v, size_t len)
{
	struct wgt_uapi_device *wg = &p->conf->wg;
	uint32_t n;

	if (!parse_number(p, key, v, len, 0, 65535, &n))
		return;
	wg->listen_port = (uint16_t)n;
	wg->flags |= WGT_UAPI_DEV_HAS_LISTEN_PORT;
}

static void set_fwmark(struct parser *p, const char *key, const char *v, size_t len)
{
	struct wgt_uapi_device *wg = &p->conf->wg;
	const char *why = wgt_conf_parse_fwmark(v, len, &wg->fwmark);

	if (why) {
		error_here(p, "%s: %s", key, why);
		return;
	}
	wg->flags |= WGT_UAPI_DEV_HAS_FWMARK;
}

static void set_mtu(struct parser *p, const char *key, const char *v, size_t len)
{
	if (!parse_number(p, key, v, len, MTU_MIN, MTU_MAX, &p->conf->mtu))
		return;
	p->conf->flags |= WGT_CONF_HAS_MTU;
	p->mtu_line = p->lineno;
}

static void set_table(struct parser *p, const char *key, const char *v, size_t len)
{
	struct wgt_conf *conf = p->conf;
	uint64_t n;

	if (equals_ci(v, len, "off")) {
		conf->table = WGT_CONF_TABLE_OFF;
	} else if (equals_ci(v, len, "auto")) {
		conf->table = WGT_CONF_TABLE_AUTO;
	} else if (equals_ci(v, len, "main")) {
		conf->table = WGT_CONF_TABLE_ID;
		conf->table_id = 254; /* RT_TABLE_MAIN */
	} else if (!wgt_parse_uint(v, len, UINT32_MAX, &n) && n) {
		conf->table = WGT_CONF_TABLE_ID;
		conf->table_id = (uint32_t)n;
	} else {
		error_here(p, "%s: not off, auto, main or a table number from 1 to %u", key,
			   UINT32_MAX);
	}
}

/*
 * Calls fn for each item of a comma list, stripped of whitespace; an empty
 * item is an error. Stops early when the parse stopped.
 */
static void for_each_item(struct parser *p, const char *key, const char *v, size_t len,
			  void (*fn)(struct parser *p, const char *key, unsigned idx,
				     const char *item, size_t item_len))
{
	const char *end = v + len;
	unsigned idx = 1;

	while (!p->stop) {
		const char *comma = memchr(v, ',', (size_t)(end - v));
		const char *s = v, *e = comma ? comma : end;

		trim(&s, &e);
		if (s == e)
			error_here(p, "%s: entry %u of the list is empty", key, idx);
		else
			fn(p, key, idx, s, (size_t)(e - s));
		if (!comma)
			break;
		v = comma + 1;
		idx++;
	}
}

static void add_address(struct parser *p, const char *key, unsigned idx, const char *v, size_t len)
{
	struct wgt_conf *conf = p->conf;
	struct wgt_conf_address a = { 0 };
	const char *why;

	why = wgt_conf_parse_prefix(v, len, &a.family, a.addr, &a.prefix);
	if (why) {
		error_here(p, "%s: entry %u: %s", key, idx, why);
		return;
	}
	if (conf->n_addresses >= WGT_CONF_MAX_ADDRESSES) {
		if (!p->addresses_capped)
			error_here(p, "%s: more than %u addresses", key, WGT_CONF_MAX_ADDRESSES);
		p->addresses_capped = true;
		return;
	}
	if (!conf->addresses) {
		conf->addresses = calloc(WGT_CONF_MAX_ADDRESSES, sizeof(*conf->addresses));
		if (!conf->addresses) {
			out_of_memory(p);
			return;
		}
	}
	if (a.family == AF_INET6 && !p->v6_address_line)
		p->v6_address_line = p->lineno;
	conf->addresses[conf->n_addresses++] = a;
}

static void set_address(struct parser *p, const char *key, const char *v, size_t len)
{
	for_each_item(p, key, v, len, add_address);
}

static void add_allowed_ip(struct parser *p, const char *key, unsigned idx, const char *v,
			   size_t len)
{
	struct wgt_uapi_peer *peer = cur_peer(p);
	struct wgt_uapi_allowedip ip = { 0 };
	const char *why;

	why = wgt_conf_parse_prefix(v, len, &ip.family, ip.addr, &ip.cidr);
	if (why) {
		error_here(p, "%s: entry %u: %s", key, idx, why);
		return;
	}
	if (p->n_allowedips >= WGT_CONF_MAX_ALLOWEDIPS) {
		if (!p->allowedips_capped)
			error_here(p, "%s: more than %u allowed IPs in the file", key,
				   WGT_CONF_MAX_ALLOWEDIPS);
		p->allowedips_capped = true;
		return;
	}
	if (peer->n_allowed_ips >= WGT_UAPI_MAX_ALLOWEDIPS_PER_PEER) {
		if (!p->peer_allowedips_capped)
			error_here(p, "%s: more than %u allowed IPs for one peer", key,
				   WGT_UAPI_MAX_ALLOWEDIPS_PER_PEER);
		p->peer_allowedips_capped = true;
		return;
	}
	if (peer->n_allowed_ips == peer->cap_allowed_ips) {
		size_t cap = peer->cap_allowed_ips ? 2 * peer->cap_allowed_ips : 4;
		struct wgt_uapi_allowedip *ips = realloc(peer->allowed_ips, cap * sizeof(*ips));

		if (!ips) {
			out_of_memory(p);
			return;
		}
		peer->allowed_ips = ips;
		peer->cap_allowed_ips = cap;
	}
	peer->allowed_ips[peer->n_allowed_ips++] = ip;
	p->n_allowedips++;
}

static void set_allowed_ips(struct parser *p, const char *key, const char *v, size_t len)
{
	/* "AllowedIPs =" with nothing after it adds nothing, as in wg. */
	if (len)
		for_each_item(p, key, v, len, add_allowed_ip);
}

static void set_public_key(struct parser *p, const char *key, const char *v, size_t len)
{
	if (parse_key(p, key, v, len, cur_peer(p)->public_key))
		p->pubkey_lines[p->conf->wg.n_peers - 1] = p->lineno;
}

static void set_preshared_key(struct parser *p, const char *key, const char *v, size_t len)
{
	struct wgt_uapi_peer *peer = cur_peer(p);

	if (!p->secret_line)
		p->secret_line = p->lineno;
	if (parse_key(p, key, v, len, peer->preshared_key))
		peer->flags |= WGT_UAPI_PEER_HAS_PRESHARED_KEY;
}

static void set_preshared_key_file(struct parser *p, const char *key, const char *v, size_t len)
{
	struct wgt_uapi_peer *peer = cur_peer(p);

	if (read_key_file(p, key, v, len, peer->preshared_key))
		peer->flags |= WGT_UAPI_PEER_HAS_PRESHARED_KEY;
}

static void set_endpoint(struct parser *p, const char *key, const char *v, size_t len)
{
	struct wgt_uapi_peer *peer = cur_peer(p);
	struct wgt_conf_peer_meta *meta = cur_meta(p);
	struct wgt_conf_endpoint ep;
	const char *why = wgt_conf_parse_endpoint(v, len, &ep);

	if (why) {
		error_here(p, "%s: %s", key, why);
		return;
	}
	memcpy(meta->endpoint_host, ep.host, sizeof(meta->endpoint_host));
	meta->endpoint_port = ep.port;
	if (ep.sa.sa.sa_family != AF_UNSPEC) {
		peer->endpoint = ep.sa;
		peer->flags |= WGT_UAPI_PEER_HAS_ENDPOINT;
	}
}

static void set_keepalive(struct parser *p, const char *key, const char *v, size_t len)
{
	struct wgt_uapi_peer *peer = cur_peer(p);
	uint64_t n;

	if (equals_ci(v, len, "off"))
		n = 0;
	else if (wgt_parse_uint(v, len, 65535, &n)) {
		error_here(p, "%s: not off or a number of seconds from 0 to 65535", key);
		return;
	}
	peer->persistent_keepalive = (uint16_t)n;
	peer->flags |= WGT_UAPI_PEER_HAS_PERSISTENT_KEEPALIVE;
}

static void wg_quick_only(struct parser *p, const char *key, const char *v, size_t len)
{
	warn_at(p, p->lineno, "%s is a wg-quick key; wgate does not run it", key);
}

static const struct conf_key {
	const char *name;
	enum section section;
	enum key_id id;
	enum key_id excludes;  /* the other way to give the same thing */
	void (*set)(struct parser *p, const char *key, const char *v, size_t len);
} conf_keys[] = {
	{ "PrivateKey", SEC_INTERFACE, K_PRIVATE_KEY, K_PRIVATE_KEY_FILE, set_private_key },
	{ "PrivateKeyFile", SEC_INTERFACE, K_PRIVATE_KEY_FILE, K_PRIVATE_KEY,
	  set_private_key_file },
	{ "ListenPort", SEC_INTERFACE, K_LISTEN_PORT, K_REPEATABLE, set_listen_port },
	{ "FwMark", SEC_INTERFACE, K_FWMARK, K_REPEATABLE, set_fwmark },
	{ "Address", SEC_INTERFACE, K_REPEATABLE, K_REPEATABLE, set_address },
	{ "MTU", SEC_INTERFACE, K_MTU, K_REPEATABLE, set_mtu },
	{ "Table", SEC_INTERFACE, K_TABLE, K_REPEATABLE, set_table },
	{ "DNS", SEC_INTERFACE, K_REPEATABLE, K_REPEATABLE, wg_quick_only },
	{ "PreUp", SEC_INTERFACE, K_REPEATABLE, K_REPEATABLE, wg_quick_only },
	{ "PostUp", SEC_INTERFACE, K_REPEATABLE, K_REPEATABLE, wg_quick_only },
	{ "PreDown", SEC_INTERFACE, K_REPEATABLE, K_REPEATABLE, wg_quick_only },
	{ "PostDown", SEC_INTERFACE, K_REPEATABLE, K_REPEATABLE, wg_quick_only },
	{ "SaveConfig", SEC_INTERFACE, K_REPEATABLE, K_REPEATABLE, wg_quick_only },
	{ "PublicKey", SEC_PEER, K_PUBLIC_KEY, K_REPEATABLE, set_public_key },
	{ "PresharedKey", SEC_PEER, K_PRESHARED_KEY, K_PRESHARED_KEY_FILE, set_preshared_key },
	{ "PresharedKeyFile", SEC_PEER, K_PRESHARED_KEY_FILE, K_PRESHARED_KEY,
	  set_preshared_key_file },
	{ "AllowedIPs", SEC_PEER, K_REPEATABLE, K_REPEATABLE, set_allowed_ips },
	{ "Endpoint", SEC_PEER, K_ENDPOINT, K_REPEATABLE, set_endpoint },
	{ "PersistentKeepalive", SEC_PEER, K_KEEPALIVE, K_REPEATABLE, set_keepalive },
};

static const char *key_name(enum key_id id)
{
	size_t i;

	for (i = 0; i < WGT_ARRAY_SIZE(conf_keys); i++)
		if (conf_keys[i].id == id)
			return conf_keys[i].name;
	return "?";
}

static void handle_key(struct parser *p, const char *k, size_t klen, const char *v, size_t vlen)
{
	const struct conf_key *key = NULL;
	size_t i;

	if (p->section == SEC_SKIP)
		return;
	if (p->section == SEC_NONE) {
		error_here(p, "key outside a section (the file starts with [Interface] or [Peer])");
		return;
	}
	for (i = 0; i < WGT_ARRAY_SIZE(conf_keys) && !key; i++)
		if (equals_ci(k, klen, conf_keys[i].name))
			key = &conf_keys[i];
	if (!key) {
		if (quotable(k, klen))
			error_here(p, "unknown key '%.*s' in [%s]", (int)klen, k,
				   section_names[p->section]);
		else
			error_here(p, "unknown key in [%s] (not shown)", section_names[p->section]);
		return;
	}
	if (key->section != p->section) {
		error_here(p, "%s belongs in [%s], not in [%s]", key->name,
			   section_names[key->section], section_names[p->section]);
		return;
	}
	if (key->id != K_REPEATABLE) {
		if (p->seen[key->id]) {
			error_here(p, "%s given twice in one section (first on line %u)", key->name,
				   p->seen[key->id]);
			return;
		}
		p->seen[key->id] = p->lineno;
		if (key->excludes != K_REPEATABLE && p->seen[key->excludes]) {
			error_here(p, "%s and %s both given (the other on line %u)", key->name,
				   key_name(key->excludes), p->seen[key->excludes]);
			return;
		}
	}
	key->set(p, key->name, v, vlen);
}

/* Checks the section that ends here (at a header or at the end of the file). */
static void end_section(struct parser *p)
{
	if (p->section == SEC_PEER && !p->seen[K_PUBLIC_KEY])
		error_at(p, p->section_line, "[Peer] without PublicKey");
	memset(p->seen, 0, sizeof(p->seen));
}

static void start_peer(struct parser *p)
{
	struct wgt_uapi_device *wg = &p->conf->wg;
	struct wgt_conf *conf = p->conf;

	if (wg->n_peers >= WGT_CONF_MAX_PEERS) {
		if (!p->peers_capped)
			error_here(p, "more than %u peers", WGT_CONF_MAX_PEERS);
		p->peers_capped = true;
		p->section = SEC_SKIP;
		return;
	}
	if (wg->n_peers == wg->cap_peers) {
		size_t cap = wg->cap_peers ? 2 * wg->cap_peers : 8;
		struct wgt_uapi_peer *peers = calloc(cap, sizeof(*peers));
		struct wgt_conf_peer_meta *meta = calloc(cap, sizeof(*meta));
		unsigned *lines = calloc(cap, sizeof(*lines));

		if (!peers || !meta || !lines) {
			free(peers);
			free(meta);
			free(lines);
			out_of_memory(p);
			p->section = SEC_SKIP;
			return;
		}
		/* Not realloc(): the old block holds preshared keys and is wiped first. */
		if (wg->peers) {
			memcpy(peers, wg->peers, wg->n_peers * sizeof(*peers));
			memcpy(meta, conf->meta, wg->n_peers * sizeof(*meta));
			memcpy(lines, p->pubkey_lines, wg->n_peers * sizeof(*lines));
			explicit_bzero(wg->peers, wg->cap_peers * sizeof(*peers));
		}
		free(wg->peers);
		free(conf->meta);
		free(p->pubkey_lines);
		wg->peers = peers;
		conf->meta = meta;
		p->pubkey_lines = lines;
		wg->cap_peers = cap;
	}
	conf->meta[wg->n_peers].line = p->lineno;
	wg->n_peers++;
	p->peer_allowedips_capped = false;
	p->section = SEC_PEER;
}

static void section_header(struct parser *p, const char *s, const char *e)
{
	const char *name = s + 1, *name_end = e - 1;

	end_section(p);
	p->section = SEC_SKIP;
	p->section_line = p->lineno;
	if (e - s < 2 || e[-1] != ']') {
		error_here(p, "a section header is '[Interface]' or '[Peer]' alone on its line");
		return;
	}
	trim(&name, &name_end);
	if (equals_ci(name, (size_t)(name_end - name), "Interface")) {
		if (p->interface_line) {
			error_here(p, "second [Interface] section (the first is on line %u)",
				   p->interface_line);
			return;
		}
		p->interface_line = p->lineno;
		p->section = SEC_INTERFACE;
	} else if (equals_ci(name, (size_t)(name_end - name), "Peer")) {
		start_peer(p);
	} else if (quotable(name, (size_t)(name_end - name))) {
		error_here(p, "unknown section [%.*s] (only [Interface] and [Peer])",
			   (int)(name_end - name), name);
	} else {
		error_here(p, "unknown section (not shown; only [Interface] and [Peer])");
	}
}

/* "# Name = alice" in a [Peer]: the peer's name. Any other comment is ignored. */
static void comment(struct parser *p, const char *s, const char *e)
{
	const char *eq;
	const char *why;

	if (p->section != SEC_PEER)
		return;
	trim(&s, &e);
	if ((size_t)(e - s) < 4 || strncasecmp(s, "name", 4))
		return;
	eq = s + 4;
	while (eq < e && is_space(*eq))
		eq++;
	if (eq == e || *eq != '=')
		return;
	s = eq + 1;
	trim(&s, &e);
	if (p->seen[K_NAME]) {
		error_here(p, "Name given twice for one peer (first on line %u)", p->seen[K_NAME]);
		return;
	}
	p->seen[K_NAME] = p->lineno;
	why = wgt_conf_check_name(s, (size_t)(e - s));
	if (why) {
		error_here(p, "Name: %s", why);
		return;
	}
	memcpy(cur_meta(p)->name, s, (size_t)(e - s));
	cur_meta(p)->name[e - s] = '\0';
}

static void parse_line(struct parser *p, const char *line, size_t len)
{
	const char *s = line, *e, *hash, *eq, *k, *k_end, *v;

	if (len && line[len - 1] == '\r')
		len--;
	if (len > MAX_LINE) {
		error_here(p, "line longer than %u bytes", MAX_LINE);
		return;
	}
	if (memchr(line, '\0', len)) {
		error_here(p, "NUL byte in the line");
		return;
	}
	e = line + len;
	trim(&s, &e);
	if (s < e && *s == '#') {
		comment(p, s + 1, e);
		return;
	}
	if (s == e)
		return;
	hash = memchr(s, '#', (size_t)(e - s));
	if (hash) {
		e = hash;
		trim(&s, &e);
	}
	if (s == e)
		return;
	if (*s == '[') {
		section_header(p, s, e);
		return;
	}
	eq = memchr(s, '=', (size_t)(e - s));
	if (!eq) {
		error_here(p, "expected 'Key = Value' or a [Section]");
		return;
	}
	k = s;
	k_end = eq;
	trim(&k, &k_end);
	v = eq + 1;
	trim(&v, &e);
	handle_key(p, k, (size_t)(k_end - k), v, (size_t)(e - v));
}

struct key_line {
	uint8_t key[WGT_UAPI_KEY_LEN];
	unsigned line;
};

static int cmp_key_line(const void *a, const void *b)
{
	const struct key_line *x = a, *y = b;
	int r = memcmp(x->key, y->key, sizeof(x->key));

	if (r)
		return r;
	return x->line < y->line ? -1 : x->line > y->line;
}

/* Public keys are not secret: sorted copies find the duplicates in n log n. */
static void check_duplicate_peers(struct parser *p)
{
	const struct wgt_uapi_device *wg = &p->conf->wg;
	struct key_line *kl;
	size_t i, n = 0, first = 0;

	if (wg->n_peers < 2)
		return;
	kl = calloc(wg->n_peers, sizeof(*kl));
	if (!kl) {
		out_of_memory(p);
		return;
	}
	for (i = 0; i < wg->n_peers; i++) {
		if (!p->pubkey_lines[i])
			continue;
		memcpy(kl[n].key, wg->peers[i].public_key, WGT_UAPI_KEY_LEN);
		kl[n++].line = p->pubkey_lines[i];
	}
	qsort(kl, n, sizeof(*kl), cmp_key_line);
	for (i = 1; i < n; i++) {
		if (memcmp(kl[i].key, kl[first].key, WGT_UAPI_KEY_LEN)) {
			first = i;
			continue;
		}
		error_at(p, kl[i].line, "PublicKey: the peer on line %u has the same key",
			 kl[first].line);
	}
	free(kl);
}

static void check_whole_file(struct parser *p)
{
	const struct wgt_conf *conf = p->conf;

	if ((conf->flags & WGT_CONF_HAS_MTU) && conf->mtu < MTU_MIN_IPV6 && p->v6_address_line)
		error_at(p, p->mtu_line,
			 "MTU: below %u, the minimum for IPv6 (an IPv6 Address is on line %u)",
			 MTU_MIN_IPV6, p->v6_address_line);
	check_duplicate_peers(p);
}

void wgt_conf_free(struct wgt_conf *conf)
{
	size_t i;

	if (!conf)
		return;
	for (i = 0; i < conf->wg.n_peers; i++)
		free(conf->wg.peers[i].allowed_ips);
	if (conf->wg.peers) {
		explicit_bzero(conf->wg.peers, WGT_MAX(conf->wg.cap_peers, conf->wg.n_peers) *
						       sizeof(*conf->wg.peers));
		free(conf->wg.peers);
	}
	free(conf->meta);
	free(conf->addresses);
	explicit_bzero(conf, sizeof(*conf));
	free(conf);
}

int wgt_conf_parse(const char *name, const char *dir, const char *text, size_t len,
		 wgt_conf_report_fn report, void *arg, struct wgt_conf **ret_conf,
		 unsigned *ret_secret_line)
{
	struct parser *p = calloc(1, sizeof(*p));
	size_t off = 0;
	int ret;

	if (!p)
		return -ENOMEM;
	p->name = name ? name : "-";
	p->dir = dir ? dir : ".";
	p->report = report;
	p->arg = arg;
	p->conf = calloc(1, sizeof(*p->conf));
	if (!p->conf) {
		out_of_memory(p);
		goto out;
	}
	if (len > WGT_CONF_MAX_FILE_BYTES) {
		error_at(p, 0, "larger than %u MiB", WGT_CONF_MAX_FILE_BYTES >> 20);
		goto out;
	}
	/* A UTF-8 byte order mark, as some Windows editors write one. */
	if (len >= 3 && !memcmp(text, "\xef\xbb\xbf", 3))
		off = 3;
	while (off < len && !p->stop) {
		const char *nl = memchr(text + off, '\n', len - off);
		size_t line_len = nl ? (size_t)(nl - (text + off)) : len - off;

		p->lineno++;
		parse_line(p, text + off, line_len);
		off += line_len + (nl ? 1 : 0);
	}
	if (!p->stop) {
		end_section(p);
		check_whole_file(p);
	}
out:
	ret = p->nomem ? -ENOMEM : p->n_errors ? -EINVAL : 0;
	if (!ret) {
		*ret_conf = p->conf;
		p->conf = NULL;
	}
	*ret_secret_line = p->secret_line;
	wgt_conf_free(p->conf);
	free(p->pubkey_lines);
	explicit_bzero(p, sizeof(*p));
	free(p);
	return ret;
}

int wgt_conf_parse_text(const char *name, const char *dir, const char *text, size_t len,
			wgt_conf_report_fn report, void *arg, struct wgt_conf **ret_conf)
{
	unsigned secret_line;

	return wgt_conf_parse(name, dir, text, len, report, arg, ret_conf, &secret_line);
}
