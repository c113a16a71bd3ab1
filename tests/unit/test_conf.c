/* SPDX-License-Identifier: MIT */
/* The wg-quick config parser: every valid shape, every error with its exact line, key files, caps, no secret in any message, and the same result as `wg setconf`. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config/conf.h"
#include "config/conf_pvt.h"
#include "config/uapi.h"
#include "tests/unit/hex.h"

/* Keys from `wg genkey`, throwaway, and their bytes (base64 -d | xxd -p). */
#define K1 "mB8rMRsXYR1XhCbrIIfSeRzNZ7xGd2qlV3g1+P0ezXE="
#define K1_HEX "981f2b311b17611d578426eb2087d2791ccd67bc46776aa5577835f8fd1ecd71"
#define K2 "WIFf3jmNqyIQLZOyDJmq2sakbuTGPws1hpcgrvGezXk="
#define K2_HEX "58815fde398dab22102d93b20c99aadac6a46ee4c63f0b35869720aef19ecd79"
#define K3 "QBrxKmNGXDxg0eSH8ii2R2pJdMENj0UZnzWrn81i3WA="
#define K3_HEX "401af12a63465c3c60d1e487f228b6476a4974c10d8f45199f35ab9fcd62dd60"
#define K4 "iF7o8k/qsZ3WQMDzJfAc+T12CyDvIzlVOgMggyFuPUg="
#define K4_HEX "885ee8f24feab19dd640c0f325f01cf93d760b20ef2339553a032083216e3d48"

#define MAX_MSGS 512

struct msgs {
	char *text[MAX_MSGS];
	enum wgt_conf_severity sev[MAX_MSGS];
	size_t n, n_errors, n_warnings;
};

static void collect(void *arg, enum wgt_conf_severity sev, const char *msg)
{
	struct msgs *m = arg;

	if (sev == WGT_CONF_ERROR)
		m->n_errors++;
	else
		m->n_warnings++;
	if (m->n == MAX_MSGS)
		return;
	m->sev[m->n] = sev;
	m->text[m->n] = strdup(msg);
	ck_assert_ptr_nonnull(m->text[m->n]);
	m->n++;
}

static void msgs_free(struct msgs *m)
{
	size_t i;

	for (i = 0; i < m->n; i++)
		free(m->text[i]);
	memset(m, 0, sizeof(*m));
}

/* No 6-byte fragment of any test key (or of `extra`) in any message. */
static void assert_no_secret(const struct msgs *m, const char *extra)
{
	const char *const secrets[] = { K1, K2, K3, K4, extra };
	size_t i, j, k;

	for (i = 0; i < m->n; i++)
		for (j = 0; j < sizeof(secrets) / sizeof(secrets[0]); j++) {
			const char *sec = secrets[j];

			for (k = 0; sec && k + 6 <= strlen(sec); k++) {
				char frag[7];

				memcpy(frag, sec + k, 6);
				frag[6] = '\0';
				ck_assert_msg(!strstr(m->text[i], frag), "'%s' quotes a key", m->text[i]);
			}
		}
}

static struct wgt_conf *parse_ok(const char *text, struct msgs *m)
{
	struct wgt_conf *conf = NULL;
	int r = wgt_conf_parse_text("t.conf", NULL, text, strlen(text), collect, m, &conf);

	ck_assert_msg(r == 0, "'%s': %d, first message '%s'", text, r, m->n ? m->text[0] : "");
	ck_assert_ptr_nonnull(conf);
	ck_assert_uint_eq(m->n_errors, 0);
	assert_no_secret(m, NULL);
	return conf;
}

/* The text fails with exactly these errors, in this order (NULL-terminated), and no conf. */
static void expect_errors_len(const char *text, size_t len, const char *const *want)
{
	struct wgt_conf *conf = (struct wgt_conf *)&conf;
	struct msgs m = { 0 };
	size_t i, j = 0;
	int r = wgt_conf_parse_text("t.conf", "/nonexistent-dir", text, len, collect, &m, &conf);

	ck_assert_msg(r == -EINVAL, "'%s': got %d", text, r);
	ck_assert_ptr_eq(conf, (struct wgt_conf *)&conf);
	for (i = 0; i < m.n; i++) {
		if (m.sev[i] != WGT_CONF_ERROR)
			continue;
		ck_assert_msg(want[j], "'%s': unexpected error '%s'", text, m.text[i]);
		ck_assert_str_eq(m.text[i], want[j]);
		j++;
	}
	ck_assert_msg(!want[j], "'%s': missing error '%s'", text, want[j]);
	assert_no_secret(&m, NULL);
	msgs_free(&m);
}

static void expect_errors(const char *text, const char *const *want)
{
	expect_errors_len(text, strlen(text), want);
}

static void expect_error(const char *text, const char *want)
{
	const char *const w[] = { want, NULL };

	expect_errors(text, w);
}

static void assert_key(const uint8_t key[32], const char *hex)
{
	uint8_t want[32];

	unhex(want, hex, 32);
	ck_assert_mem_eq(key, want, 32);
}

static void assert_prefix(int family, const uint8_t *addr, unsigned prefix, int want_family,
			  const char *want_addr, unsigned want_prefix)
{
	uint8_t want[16] = { 0 };

	ck_assert_int_eq(inet_pton(want_family, want_addr, want), 1);
	ck_assert_int_eq(family, want_family);
	ck_assert_mem_eq(addr, want, 16);
	ck_assert_uint_eq(prefix, want_prefix);
}

static const char full_text[] =
	"# wg0, as wg-quick writes it\n"                        /* 1 */
	"[Interface]\n"                                         /* 2 */
	"PrivateKey = " K1 "\n"                                 /* 3 */
	"ListenPort = 51820\n"                                  /* 4 */
	"FwMark = 0x1234\n"                                     /* 5 */
	"Address = 10.0.0.1/24, fd00::1/64\n"                   /* 6 */
	"Address = 10.0.1.1\n"                                  /* 7 */
	"MTU = 1420\n"                                          /* 8 */
	"Table = 1234\n"                                        /* 9 */
	"DNS = 1.1.1.1\n"                                       /* 10 */
	"PostUp = iptables -A FORWARD -i %i -j ACCEPT\n"        /* 11 */
	"\n"                                                    /* 12 */
	"[Peer]\n"                                              /* 13 */
	"# Name = alice\n"                                      /* 14 */
	"PublicKey = " K2 "\n"                                  /* 15 */
	"PresharedKey = " K3 "\n"                               /* 16 */
	"AllowedIPs = 10.0.0.2/32 , fd00::2/128\n"              /* 17 */
	"AllowedIPs = 192.168.7.9/16\n"                         /* 18 */
	"Endpoint = [2001:db8::1]:51821\n"                      /* 19 */
	"PersistentKeepalive = 25\n"                            /* 20 */
	"\n"                                                    /* 21 */
	"[Peer]\n"                                              /* 22 */
	"PublicKey = " K4 "\n"                                  /* 23 */
	"Endpoint = vpn.example.com:443\n"                      /* 24 */
	"AllowedIPs = 0.0.0.0/0, ::/0\n"                        /* 25 */
	"PersistentKeepalive = off\n"                           /* 26 */
	"[Peer]\n"                                              /* 27 */
	"PublicKey = " K1 "\n"                                  /* 28 */
	"Endpoint = 192.0.2.7:51820\n";                         /* 29 */

START_TEST(test_full)
{
	struct msgs m = { 0 };
	struct wgt_conf *conf = parse_ok(full_text, &m);
	const struct wgt_uapi_device *wg = &conf->wg;
	const struct wgt_uapi_peer *p;

	ck_assert_uint_eq(m.n, 2);
	ck_assert_str_eq(m.text[0], "t.conf:10: DNS is a wg-quick key; wgate does not run it");
	ck_assert_str_eq(m.text[1], "t.conf:11: PostUp is a wg-quick key; wgate does not run it");
	ck_assert(m.sev[0] == WGT_CONF_WARNING && m.sev[1] == WGT_CONF_WARNING);

	/* The applier decides on REPLACE_PEERS and REPLACE_ALLOWED_IPS, not the file. */
	ck_assert_uint_eq(wg->flags, WGT_UAPI_DEV_HAS_PRIVATE_KEY | WGT_UAPI_DEV_HAS_LISTEN_PORT |
				     WGT_UAPI_DEV_HAS_FWMARK);
	assert_key(wg->private_key, K1_HEX);
	ck_assert_uint_eq(wg->listen_port, 51820);
	ck_assert_uint_eq(wg->fwmark, 0x1234);
	ck_assert_uint_eq(conf->n_addresses, 3);
	assert_prefix(conf->addresses[0].family, conf->addresses[0].addr, conf->addresses[0].prefix,
		      AF_INET, "10.0.0.1", 24);
	assert_prefix(conf->addresses[1].family, conf->addresses[1].addr, conf->addresses[1].prefix,
		      AF_INET6, "fd00::1", 64);
	assert_prefix(conf->addresses[2].family, conf->addresses[2].addr, conf->addresses[2].prefix,
		      AF_INET, "10.0.1.1", 32);
	ck_assert_uint_eq(conf->flags, WGT_CONF_HAS_MTU);
	ck_assert_uint_eq(conf->mtu, 1420);
	ck_assert_int_eq(conf->table, WGT_CONF_TABLE_ID);
	ck_assert_uint_eq(conf->table_id, 1234);

	ck_assert_uint_eq(wg->n_peers, 3);
	p = &wg->peers[0];
	ck_assert_uint_eq(p->flags, WGT_UAPI_PEER_HAS_PRESHARED_KEY | WGT_UAPI_PEER_HAS_ENDPOINT |
				    WGT_UAPI_PEER_HAS_PERSISTENT_KEEPALIVE);
	assert_key(p->public_key, K2_HEX);
	assert_key(p->preshared_key, K3_HEX);
	ck_assert_uint_eq(p->n_allowed_ips, 3);
	assert_prefix(p->allowed_ips[0].family, p->allowed_ips[0].addr, p->allowed_ips[0].cidr,
		      AF_INET, "10.0.0.2", 32);
	assert_prefix(p->allowed_ips[1].family, p->allowed_ips[1].addr, p->allowed_ips[1].cidr,
		      AF_INET6, "fd00::2", 128);
	/* Host bits kept, as wg sends them; the allowed-IPs table masks them. */
	assert_prefix(p->allowed_ips[2].family, p->allowed_ips[2].addr, p->allowed_ips[2].cidr,
		      AF_INET, "192.168.7.9", 16);
	ck_assert(!p->allowed_ips[0].remove);
	ck_assert_int_eq(p->endpoint.sa.sa_family, AF_INET6);
	ck_assert_uint_eq(ntohs(p->endpoint.in6.sin6_port), 51821);
	ck_assert_uint_eq(p->persistent_keepalive, 25);
	ck_assert_str_eq(conf->meta[0].name, "alice");
	ck_assert_str_eq(conf->meta[0].endpoint_host, "2001:db8::1");
	ck_assert_uint_eq(conf->meta[0].endpoint_port, 51821);
	ck_assert_uint_eq(conf->meta[0].line, 13);

	p = &wg->peers[1];
	/* A host name is left to gateway/: no endpoint in the UAPI section. */
	ck_assert_uint_eq(p->flags, WGT_UAPI_PEER_HAS_PERSISTENT_KEEPALIVE);
	ck_assert_uint_eq(p->persistent_keepalive, 0);
	assert_key(p->public_key, K4_HEX);
	ck_assert_int_eq(p->endpoint.sa.sa_family, AF_UNSPEC);
	ck_assert_str_eq(conf->meta[1].endpoint_host, "vpn.example.com");
	ck_assert_uint_eq(conf->meta[1].endpoint_port, 443);
	ck_assert_str_eq(conf->meta[1].name, "");
	ck_assert_uint_eq(p->n_allowed_ips, 2);
	ck_assert_uint_eq(p->allowed_ips[1].cidr, 0);
	ck_assert_int_eq(p->allowed_ips[1].family, AF_INET6);

	p = &wg->peers[2];
	ck_assert_uint_eq(p->flags, WGT_UAPI_PEER_HAS_ENDPOINT);
	ck_assert_int_eq(p->endpoint.sa.sa_family, AF_INET);
	ck_assert_uint_eq(ntohl(p->endpoint.in4.sin_addr.s_addr), 0xc0000207);
	ck_assert_uint_eq(ntohs(p->endpoint.in4.sin_port), 51820);
	ck_assert_str_eq(conf->meta[2].endpoint_host, "192.0.2.7");
	ck_assert_uint_eq(p->n_allowed_ips, 0);
	ck_assert_uint_eq(conf->meta[2].line, 27);

	wgt_conf_free(conf);
	msgs_free(&m);
}
END_TEST

/* Case, whitespace, CRLF, comments everywhere, the last line without '\n'. */
START_TEST(test_lexical)
{
	static const char text[] =
		"\t# leading comment\r\n"
		"  [ interface ]   # the device\r\n"
		"privatekey=" K1 "\r\n"
		"  LISTENPORT\t=\t0  \r\n"
		"fwmark = OFF#no mark\r\n"
		"mtu = 576\r\n"
		"table = AUTO\r\n"
		"[PEER]\r\n"
		"#NAME=bob the builder\r\n"
		"publickey = " K2 "   # who\r\n"
		"allowedips=10.1.0.0/16,10.2.0.0/16 ,  10.3.0.0/16\r\n"
		"ALLOWEDIPS =\r\n"
		"persistentkeepalive = 0\r\n"
		"endpoint = [fe80::1%3]:7";
	struct msgs m = { 0 };
	struct wgt_conf *conf = parse_ok(text, &m);

	ck_assert_uint_eq(m.n, 0);
	ck_assert_uint_eq(conf->wg.flags, WGT_UAPI_DEV_HAS_PRIVATE_KEY |
					  WGT_UAPI_DEV_HAS_LISTEN_PORT | WGT_UAPI_DEV_HAS_FWMARK);
	ck_assert_uint_eq(conf->wg.listen_port, 0);
	ck_assert_uint_eq(conf->wg.fwmark, 0);
	/* 576 with no IPv6 address is fine. */
	ck_assert_uint_eq(conf->mtu, 576);
	ck_assert_int_eq(conf->table, WGT_CONF_TABLE_AUTO);
	ck_assert_uint_eq(conf->wg.n_peers, 1);
	ck_assert_str_eq(conf->meta[0].name, "bob the builder");
	ck_assert_uint_eq(conf->wg.peers[0].n_allowed_ips, 3);
	ck_assert_uint_eq(conf->wg.peers[0].allowed_ips[2].addr[1], 3);
	ck_assert_uint_eq(conf->wg.peers[0].flags, WGT_UAPI_PEER_HAS_PERSISTENT_KEEPALIVE |
						   WGT_UAPI_PEER_HAS_ENDPOINT);
	ck_assert_uint_eq(conf->wg.peers[0].endpoint.in6.sin6_scope_id, 3);
	ck_assert_uint_eq(ntohs(conf->wg.peers[0].endpoint.in6.sin6_port), 7);
	ck_assert_str_eq(conf->meta[0].endpoint_host, "fe80::1%3");
	wgt_conf_free(conf);
	msgs_free(&m);
}
END_TEST

START_TEST(test_empty_and_minimal)
{
	struct msgs m = { 0 };
	struct wgt_conf *conf = parse_ok("", &m);

	ck_assert_uint_eq(conf->wg.flags, 0);
	ck_assert_uint_eq(conf->wg.n_peers, 0);
	ck_assert_uint_eq(conf->n_addresses, 0);
	ck_assert_uint_eq(conf->flags, 0);
	ck_assert_int_eq(conf->table, WGT_CONF_TABLE_AUTO);
	wgt_conf_free(conf);
	conf = parse_ok("# only comments\n\n   \n[Interface]\n", &m);
	ck_assert_uint_eq(conf->wg.flags, 0);
	wgt_conf_free(conf);
	/* A UTF-8 byte order mark is skipped; anywhere else it is an unknown key. */
	conf = parse_ok("\xef\xbb\xbf[Interface]\nListenPort = 1\n", &m);
	ck_assert_uint_eq(conf->wg.listen_port, 1);
	wgt_conf_free(conf);
	/* A peer-only file, as `wg addconf` takes. */
	conf = parse_ok("[Peer]\nPublicKey=" K2, &m);
	ck_assert_uint_eq(conf->wg.n_peers, 1);
	ck_assert_uint_eq(conf->wg.peers[0].flags, 0);
	wgt_conf_free(conf);
	wgt_conf_free(NULL);
	msgs_free(&m);
}
END_TEST

/* Values that parse, one [Interface] or [Peer] line at a time. */
static const struct {
	const char *line;
	bool peer;
} accepts[] = {
	{ "FwMark = 4660", false },
	{ "FwMark = 0xffffffff", false },
	{ "FwMark = 0XaBc", false },
	{ "FwMark = 4294967295", false },
	{ "ListenPort = 65535", false },
	{ "MTU = 68", false },
	{ "MTU = 65535", false },
	{ "Table = off", false },
	{ "Table = main", false },
	{ "Table = 4294967295", false },
	{ "Address = 10.0.0.1/0", false },
	{ "Address = ::1", false },
	{ "Address = 10.0.0.1/024", false },
	{ "SaveConfig = true", false },
	{ "PreUp = echo # not a key", false },
	{ "PrivateKey = AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", false },
	{ "Endpoint = 1.2.3.4:1", true },
	{ "Endpoint = [::ffff:1.2.3.4]:65535", true },
	{ "Endpoint = host_with-dash.example.:51820", true },
	{ "Endpoint = localhost:51820", true },
	{ "Endpoint = [fe80::1%eth0]:51820", true },
	{ "PersistentKeepalive = 65535", true },
	{ "PersistentKeepalive = OFF", true },
	{ "AllowedIPs = ::/0,0.0.0.0/0", true },
	{ "AllowedIPs = 10.0.0.1", true },
	{ "PresharedKey = " K3, true },
	{ "# Name = " "123456789012345678901234567890123456789012345678901234567890123", true },
	{ "# Name = a = b # c!", true },
	{ "# Named = not a name \"\\", true },
	{ "## Name = \"not a name either\"", true },
};

START_TEST(test_accepts)
{
	char text[512];
	struct msgs m = { 0 };
	struct wgt_conf *conf;

	if (accepts[_i].peer)
		snprintf(text, sizeof(text), "[Peer]\nPublicKey = " K2 "\n%s\n", accepts[_i].line);
	else
		snprintf(text, sizeof(text), "[Interface]\n%s\n", accepts[_i].line);
	conf = parse_ok(text, &m);
	wgt_conf_free(conf);
	msgs_free(&m);
}
END_TEST

START_TEST(test_value_details)
{
	struct msgs m = { 0 };
	struct wgt_conf *conf;

	conf = parse_ok("[Interface]\nFwMark = 0XaBc\nTable = main\nMTU = 1280\nAddress = fd00::1\n", &m);
	ck_assert_uint_eq(conf->wg.fwmark, 0xabc);
	ck_assert_int_eq(conf->table, WGT_CONF_TABLE_ID);
	ck_assert_uint_eq(conf->table_id, 254);
	ck_assert_uint_eq(conf->addresses[0].prefix, 128);
	wgt_conf_free(conf);

	conf = parse_ok("[Interface]\nTable = off\n", &m);
	ck_assert_int_eq(conf->table, WGT_CONF_TABLE_OFF);
	wgt_conf_free(conf);

	conf = parse_ok("[Peer]\nPublicKey=" K2 "\nEndpoint = [fe80::1%eth0]:51820\n"
			"# name = x\n", &m);
	ck_assert_uint_eq(conf->wg.peers[0].flags, 0);
	ck_assert_str_eq(conf->meta[0].endpoint_host, "fe80::1%eth0");
	ck_assert_uint_eq(conf->meta[0].endpoint_port, 51820);
	ck_assert_str_eq(conf->meta[0].name, "x");
	wgt_conf_free(conf);

	/* "# Name" in [Interface] is a plain comment. */
	conf = parse_ok("[Interface]\n# Name = \"quoted\"\n[Peer]\nPublicKey=" K2 "\n", &m);
	ck_assert_str_eq(conf->meta[0].name, "");
	wgt_conf_free(conf);

	/* Repeated wg-quick keys: one warning per line. */
	conf = parse_ok("[Interface]\nDNS = 1.1.1.1\ndns = 8.8.8.8\nPreDown = x\n", &m);
	ck_assert_uint_eq(m.n_warnings, 3);
	ck_assert_str_eq(m.text[1], "t.conf:3: DNS is a wg-quick key; wgate does not run it");
	ck_assert_str_eq(m.text[2], "t.conf:4: PreDown is a wg-quick key; wgate does not run it");
	wgt_conf_free(conf);
	msgs_free(&m);
}
END_TEST

START_TEST(test_key_run)
{
	ck_assert(wgt_conf_has_key_run(K1, 44));
	ck_assert(wgt_conf_has_key_run(&("x/" K4)[24], 22));
	ck_assert(!wgt_conf_has_key_run("/etc/wireguard/keys/server/private.key", 38));
	ck_assert(!wgt_conf_has_key_run("abcdefghijklmnopqrstuvwxyzABCDEF", 32));
	ck_assert(!wgt_conf_has_key_run("..2024_01_01_12_00_00.123456789", 31));
	ck_assert(!wgt_conf_has_key_run("aB3aB3aB3aB3aB3", 15));
	ck_assert(wgt_conf_has_key_run("aB3aB3aB3aB3aB3a", 16));
}
END_TEST

START_TEST(test_base64)
{
	uint8_t key[32];
	char bad[WGT_CONF_B64_KEY_LEN + 1];
	size_t i;

	ck_assert(wgt_conf_key_from_base64(key, K1, 44));
	assert_key(key, K1_HEX);
	ck_assert(wgt_conf_key_from_base64(key, K4, 44));
	assert_key(key, K4_HEX);
	ck_assert(!wgt_conf_key_from_base64(key, K1, 43));
	ck_assert(!wgt_conf_key_from_base64(key, K1 "=", 45));
	/* 'E' (4) ends K1; 'F' (5) sets one of the two bits past the 32 bytes. */
	memcpy(bad, K1, sizeof(bad));
	bad[42] = 'F';
	ck_assert(!wgt_conf_key_from_base64(key, bad, 44));
	for (i = 0; i < 32; i++)
		ck_assert_uint_eq(key[i], 0); /* wiped on failure */
	memcpy(bad, K1, sizeof(bad));
	bad[43] = 'A';
	ck_assert(!wgt_conf_key_from_base64(key, bad, 44));
	for (i = 0; i < 43; i++) {
		static const char not_b64[] = { '!', '-', '_', '=', ' ', '\0', (char)0xc3 };
		size_t j;

		for (j = 0; j < sizeof(not_b64); j++) {
			memcpy(bad, K4, sizeof(bad));
			bad[i] = not_b64[j];
			ck_assert_msg(!wgt_conf_key_from_base64(key, bad, 44), "pos %zu byte %zu", i, j);
		}
	}
}
END_TEST

/* One fault each: the text, and its one error line. */
static const struct {
	const char *text;
	const char *error;
} rejects[] = {
	{ "[Interface]\n[Foo]\nbar = 1\n", "t.conf:2: unknown section [Foo] (only [Interface] and [Peer])" },
	{ "[Interface]\n[Foo Bar]\n", "t.conf:2: unknown section (not shown; only [Interface] and [Peer])" },
	{ "ListenPort = 1\n[Interface]\n", "t.conf:1: key outside a section (the file starts with [Interface] or [Peer])" },
	{ "[Interface]\nFoo = 1\n", "t.conf:2: unknown key 'Foo' in [Interface]" },
	{ "[Interface]\n\xef\xbb\xbfMTU = 1400\n", "t.conf:2: unknown key in [Interface] (not shown)" },
	{ "[Interface]\n" K1 "\n", "t.conf:2: unknown key in [Interface] (not shown)" },
	{ "[Interface]\nPrivate Key = " K1 "\n", "t.conf:2: unknown key in [Interface] (not shown)" },
	{ "[Interface]\nListenPort\n", "t.conf:2: expected 'Key = Value' or a [Section]" },
	{ "[Interface]\n[Peer\n", "t.conf:2: a section header is '[Interface]' or '[Peer]' alone on its line" },
	{ "[Interface] x\n", "t.conf:1: a section header is '[Interface]' or '[Peer]' alone on its line" },
	{ "[Interface]\n[Interface]\n", "t.conf:2: second [Interface] section (the first is on line 1)" },
	{ "[Interface]\nPrivateKey = mB8rMRsXYR1XhCbrIIfSeRzNZ7xGd2qlV3g1+P0ezXF=\n",
	  "t.conf:2: PrivateKey: not a base64 key of 32 bytes (44 characters ending in '=')" },
	{ "[Interface]\nPrivateKey = mB8rMRsXYR1XhCbrIIfSeRzNZ7xGd2qlV3g1+P0ezX\n",
	  "t.conf:2: PrivateKey: not a base64 key of 32 bytes (44 characters ending in '=')" },
	{ "[Interface]\nPrivateKey = 981f2b311b17611d578426eb2087d2791ccd67bc46776aa5577835f8fd1ecd71\n",
	  "t.conf:2: PrivateKey: not a base64 key of 32 bytes (44 characters ending in '=')" },
	{ "[Interface]\nPrivateKey = " K1 "\nPrivateKeyFile = /nonexistent\n",
	  "t.conf:3: PrivateKeyFile and PrivateKey both given (the other on line 2)" },
	{ "[Interface]\nPrivateKey = " K1 "\nPrivateKey = " K2 "\n",
	  "t.conf:3: PrivateKey given twice in one section (first on line 2)" },
	{ "[Interface]\nListenPort = 65536\n", "t.conf:2: ListenPort: not a number from 0 to 65535" },
	{ "[Interface]\nListenPort = -1\n", "t.conf:2: ListenPort: not a number from 0 to 65535" },
	{ "[Interface]\nListenPort = 5 1\n", "t.conf:2: ListenPort: not a number from 0 to 65535" },
	{ "[Interface]\nListenPort = 1\nlistenport = 2\n", "t.conf:3: ListenPort given twice in one section (first on line 2)" },
	{ "[Interface]\nFwMark = 0x100000000\n", "t.conf:2: FwMark: above 0xffffffff" },
	{ "[Interface]\nFwMark = 4294967296\n", "t.conf:2: FwMark: above 4294967295" },
	{ "[Interface]\nFwMark = 12a\n", "t.conf:2: FwMark: not a number (decimal, 0x-prefixed hexadecimal, or off)" },
	{ "[Interface]\nFwMark = 0x\n", "t.conf:2: FwMark: not a number (decimal, 0x-prefixed hexadecimal, or off)" },
	{ "[Interface]\nAddress = 10.0.0.256/24\n", "t.conf:2: Address: entry 1: not an IPv4 address" },
	{ "[Interface]\nAddress = 10.0.0.1/24, 10.0.0.2/33\n", "t.conf:2: Address: entry 2: prefix length is not a number from 0 to 32" },
	{ "[Interface]\nAddress = fd00::1/129\n", "t.conf:2: Address: entry 1: prefix length is not a number from 0 to 128" },
	{ "[Interface]\nAddress = fd00::g/64\n", "t.conf:2: Address: entry 1: not an IPv6 address" },
	{ "[Interface]\nAddress = fe80::1%eth0/64\n", "t.conf:2: Address: entry 1: an IPv6 zone is not allowed here" },
	{ "[Interface]\nAddress = 10.0.0.1/\n", "t.conf:2: Address: entry 1: prefix length is not a number from 0 to 32" },
	{ "[Interface]\nAddress = 10.0.0.1/24,\n", "t.conf:2: Address: entry 2 of the list is empty" },
	{ "[Interface]\nAddress =\n", "t.conf:2: Address: entry 1 of the list is empty" },
	{ "[Interface]\nAddress = host.example\n", "t.conf:2: Address: entry 1: not an IPv4 address" },
	{ "[Interface]\nMTU = 67\n", "t.conf:2: MTU: not a number from 68 to 65535" },
	{ "[Interface]\nMTU = 65536\n", "t.conf:2: MTU: not a number from 68 to 65535" },
	{ "[Interface]\nMTU = 1279\nAddress = 10.0.0.1/24\nAddress = fd00::1/64\n",
	  "t.conf:2: MTU: below 1280, the minimum for IPv6 (an IPv6 Address is on line 4)" },
	{ "[Interface]\nTable = 0\n", "t.conf:2: Table: not off, auto, main or a table number from 1 to 4294967295" },
	{ "[Interface]\nTable = blah\n", "t.conf:2: Table: not off, auto, main or a table number from 1 to 4294967295" },
	{ "[Interface]\nTable = 4294967296\n", "t.conf:2: Table: not off, auto, main or a table number from 1 to 4294967295" },
	{ "[Interface]\nPublicKey = " K2 "\n", "t.conf:2: PublicKey belongs in [Peer], not in [Interface]" },
	{ "[Peer]\nPublicKey = " K2 "\nListenPort = 1\n", "t.conf:3: ListenPort belongs in [Interface], not in [Peer]" },
	{ "[Peer]\nPublicKey = " K2 "\nDNS = 1.1.1.1\n", "t.conf:3: DNS belongs in [Interface], not in [Peer]" },
	{ "[Peer]\nPublicKey = " K2 "\nPublicKey = " K4 "\n", "t.conf:3: PublicKey given twice in one section (first on line 2)" },
	{ "[Peer]\nAllowedIPs = 10.0.0.0/8\n", "t.conf:1: [Peer] without PublicKey" },
	{ "[Peer]\nPublicKey = " K2 "\n[Peer]\n[Peer]\nPublicKey = " K4 "\n", "t.conf:3: [Peer] without PublicKey" },
	{ "[Peer]\nPublicKey = " K2 "\n\n[Peer]\npublickey = " K2 "\n", "t.conf:5: PublicKey: the peer on line 2 has the same key" },
	{ "[Peer]\nPublicKey = " K2 "\nPresharedKey = " K3 "\nPresharedKeyFile = k\n",
	  "t.conf:4: PresharedKeyFile and PresharedKey both given (the other on line 3)" },
	{ "[Peer]\nPublicKey = " K2 "\nPresharedKey = " K3 "x\n",
	  "t.conf:3: PresharedKey: not a base64 key of 32 bytes (44 characters ending in '=')" },
	{ "[Peer]\nPublicKey = " K2 "\nAllowedIPs = 10.0.0.0/8, 10.1.0.0/33\n", "t.conf:3: AllowedIPs: entry 2: prefix length is not a number from 0 to 32" },
	{ "[Peer]\nPublicKey = " K2 "\nAllowedIPs = 10.0.0.0/8,,10.1.0.0/16\n", "t.conf:3: AllowedIPs: entry 2 of the list is empty" },
	{ "[Peer]\nPublicKey = " K2 "\nEndpoint = 1.2.3.4\n", "t.conf:3: Endpoint: missing ':port'" },
	{ "[Peer]\nPublicKey = " K2 "\nEndpoint = 1.2.3.4:\n", "t.conf:3: Endpoint: missing the port after ':'" },
	{ "[Peer]\nPublicKey = " K2 "\nEndpoint = 1.2.3.4:0\n", "t.conf:3: Endpoint: port is not a number from 1 to 65535" },
	{ "[Peer]\nPublicKey = " K2 "\nEndpoint = 1.2.3.4:65536\n", "t.conf:3: Endpoint: port is not a number from 1 to 65535" },
	{ "[Peer]\nPublicKey = " K2 "\nEndpoint = :51820\n", "t.conf:3: Endpoint: missing the host before ':port'" },
	{ "[Peer]\nPublicKey = " K2 "\nEndpoint = ::1:51820\n", "t.conf:3: Endpoint: an IPv6 address needs brackets: [address]:port" },
	{ "[Peer]\nPublicKey = " K2 "\nEndpoint = [::1]\n", "t.conf:3: Endpoint: missing ':port' after ']'" },
	{ "[Peer]\nPublicKey = " K2 "\nEndpoint = [::1:51820\n", "t.conf:3: Endpoint: missing ']' after an IPv6 address" },
	{ "[Peer]\nPublicKey = " K2 "\nEndpoint = [example.com]:1\n", "t.conf:3: Endpoint: not an IPv6 address inside [ ]" },
	{ "[Peer]\nPublicKey = " K2 "\nEndpoint = [fe80::1%]:1\n", "t.conf:3: Endpoint: empty IPv6 zone after '%'" },
	{ "[Peer]\nPublicKey = " K2 "\nEndpoint = [fe80::1%a/b]:1\n", "t.conf:3: Endpoint: IPv6 zone is not an interface name or index" },
	{ "[Peer]\nPublicKey = " K2 "\nEndpoint = 1.2.3.256:1\n", "t.conf:3: Endpoint: not an IPv4 address or a host name" },
	{ "[Peer]\nPublicKey = " K2 "\nEndpoint = bad!host:1\n", "t.conf:3: Endpoint: not an IPv4 address or a host name" },
	{ "[Peer]\nPublicKey = " K2 "\nEndpoint = a..b:1\n", "t.conf:3: Endpoint: not an IPv4 address or a host name" },
	{ "[Peer]\nPublicKey = " K2 "\nEndpoint = \n", "t.conf:3: Endpoint: empty" },
	{ "[Peer]\nPublicKey = " K2 "\nPersistentKeepalive = 65536\n", "t.conf:3: PersistentKeepalive: not off or a number of seconds from 0 to 65535" },
	{ "[Peer]\nPublicKey = " K2 "\nPersistentKeepalive = on\n", "t.conf:3: PersistentKeepalive: not off or a number of seconds from 0 to 65535" },
	{ "[Peer]\n# Name = 1234567890123456789012345678901234567890123456789012345678901234\nPublicKey = " K2 "\n",
	  "t.conf:2: Name: longer than 63 bytes" },
	{ "[Peer]\n# Name = \"alice\"\nPublicKey = " K2 "\n", "t.conf:2: Name: quotes and backslashes are not allowed" },
	{ "[Peer]\n# Name = a\\b\nPublicKey = " K2 "\n", "t.conf:2: Name: quotes and backslashes are not allowed" },
	{ "[Peer]\n# Name = a\tb\nPublicKey = " K2 "\n", "t.conf:2: Name: not printable ASCII" },
	{ "[Peer]\n# Name = caf\xc3\xa9\nPublicKey = " K2 "\n", "t.conf:2: Name: not printable ASCII" },
	{ "[Peer]\n# Name =\nPublicKey = " K2 "\n", "t.conf:2: Name: empty" },
	{ "[Peer]\n# Name = a\nPublicKey = " K2 "\n# Name = b\n", "t.conf:4: Name given twice for one peer (first on line 2)" },
	{ "[Interface]\nPrivateKeyFile =\n", "t.conf:2: PrivateKeyFile: empty path" },
	{ "[Interface]\nPrivateKeyFile = k\n", "t.conf:2: cannot open key file /nonexistent-dir/k: No such file or directory" },
	{ "[Interface]\nPrivateKeyFile = /dev/null\n", "t.conf:2: key file /dev/null is not a regular file" },
	{ "[Interface]\nPrivateKeyFile = " K1 "\n", "t.conf:2: PrivateKeyFile: this is a key, not a file name (use PrivateKey)" },
	{ "[Peer]\nPublicKey = " K2 "\nPresharedKeyFile = " K3 "\n", "t.conf:3: PresharedKeyFile: this is a key, not a file name (use PresharedKey)" },
	{ "[Interface]\nPrivateKeyFile = /etc/mB8rMRsXYR1XhCbrIIfS\n",
	  "t.conf:2: cannot open key file (path not shown: it looks like a key): No such file or directory" },
	{ "[Interface]\nPrivateKeyFile = /etc/wireguard/keys/server/private.key\n",
	  "t.conf:2: cannot open key file /etc/wireguard/keys/server/private.key: No such file or directory" },
};

START_TEST(test_rejects)
{
	expect_error(rejects[_i].text, rejects[_i].error);
}
END_TEST

/* Every error of a file, in line order, and the file's own checks after them. */
START_TEST(test_collects_all)
{
	static const char text[] =
		"[Interface]\n"                    /* 1 */
		"PrivateKey = " K1 "x\n"           /* 2 */
		"ListenPort = 99999\n"             /* 3 */
		"DNS = 1.1.1.1\n"                  /* 4: a warning only */
		"Bogus = " K1 "\n"                 /* 5 */
		"[Peer]\n"                         /* 6 */
		"PublicKey = " K2 "\n"             /* 7 */
		"Endpoint = nowhere\n"             /* 8 */
		"[Peer]\n"                         /* 9 */
		"PublicKey = " K2 "\n"             /* 10 */
		"[Peer]\n";                        /* 11 */
	static const char *const want[] = {
		"t.conf:2: PrivateKey: not a base64 key of 32 bytes (44 characters ending in '=')",
		"t.conf:3: ListenPort: not a number from 0 to 65535",
		"t.conf:5: unknown key 'Bogus' in [Interface]",
		"t.conf:8: Endpoint: missing ':port'",
		"t.conf:11: [Peer] without PublicKey",
		"t.conf:10: PublicKey: the peer on line 7 has the same key",
		NULL,
	};

	expect_errors(text, want);
}
END_TEST

START_TEST(test_lines)
{
	static const char *const nul[] = { "t.conf:2: NUL byte in the line", NULL };
	static const char *const long_line[] = { "t.conf:3: line longer than 4096 bytes", NULL };
	static const char text_nul[] = "[Interface]\nListenPort = 1\0" "2\nMTU = 1400\n";
	char *text = malloc(8400);
	size_t n;

	ck_assert_ptr_nonnull(text);
	expect_errors_len(text_nul, sizeof(text_nul) - 1, nul);
	/* 4096 bytes (and a '\r') are fine, 4097 are not. */
	n = (size_t)sprintf(text, "[Interface]\n# ");
	memset(text + n, 'x', 4094);
	n += 4094;
	n += (size_t)sprintf(text + n, "\r\n# ");
	memset(text + n, 'y', 4095);
	n += 4095;
	strcpy(text + n, "\nListenPort = 1\n");
	expect_errors(text, long_line);
	free(text);
}
END_TEST

START_TEST(test_too_many_errors)
{
	struct wgt_conf *conf = NULL;
	struct msgs m = { 0 };
	char *text = malloc(200 * 16 + 16);
	size_t i, n;
	int r;

	ck_assert_ptr_nonnull(text);
	n = (size_t)sprintf(text, "[Interface]\n");
	for (i = 0; i < 200; i++)
		n += (size_t)sprintf(text + n, "Nope = %zu\n", i);
	r = wgt_conf_parse_text("t.conf", NULL, text, n, collect, &m, &conf);
	ck_assert_int_eq(r, -EINVAL);
	ck_assert_uint_eq(m.n, 101);
	ck_assert_str_eq(m.text[99], "t.conf:101: unknown key 'Nope' in [Interface]");
	ck_assert_str_eq(m.text[100], "t.conf:102: more than 100 errors; not reading further");
	msgs_free(&m);
	/* Warnings: 100, one line saying so, and a valid file all the same. */
	n = (size_t)sprintf(text, "[Interface]\n");
	for (i = 0; i < 200; i++)
		n += (size_t)sprintf(text + n, "DNS = %zu\n", i);
	r = wgt_conf_parse_text("t.conf", NULL, text, n, collect, &m, &conf);
	ck_assert_int_eq(r, 0);
	wgt_conf_free(conf);
	ck_assert_uint_eq(m.n, 101);
	ck_assert_str_eq(m.text[100], "t.conf:102: more than 100 warnings; the rest are not shown");
	msgs_free(&m);
	free(text);
}
END_TEST

START_TEST(test_cap_addresses)
{
	static const char *const want[] = { "t.conf:258: Address: more than 256 addresses", NULL };
	char *text = malloc(300 * 32);
	struct msgs m = { 0 };
	struct wgt_conf *conf;
	size_t i, n;

	ck_assert_ptr_nonnull(text);
	n = (size_t)sprintf(text, "[Interface]\n");
	for (i = 0; i < WGT_CONF_MAX_ADDRESSES; i++)
		n += (size_t)sprintf(text + n, "Address = 10.0.%zu.%zu/24\n", i / 256, i % 256);
	conf = parse_ok(text, &m);
	ck_assert_uint_eq(conf->n_addresses, WGT_CONF_MAX_ADDRESSES);
	wgt_conf_free(conf);
	/* One error only, however many more follow. */
	sprintf(text + n, "Address = 10.9.0.1, 10.9.0.2\nAddress = 10.9.0.3\n");
	expect_errors(text, want);
	msgs_free(&m);
	free(text);
}
END_TEST

/* Builds `n` peers with distinct keys (the index in the first bytes), each with `ips` allowed IPs on one line. */
static char *many_peers(size_t n, size_t ips, size_t *ret_len)
{
	size_t cap = n * (120 + ips * 20) + 64, len = 0, i, j;
	char *text = malloc(cap);

	ck_assert_ptr_nonnull(text);
	for (i = 0; i < n; i++) {
		uint8_t key[32] = { 0 };
		char b64[45];

		key[0] = (uint8_t)i;
		key[1] = (uint8_t)(i >> 8);
		key[2] = (uint8_t)(i >> 16);
		key[3] = 1;
		/* Plain base64, enough for a fixture (the decoder is the code under test). */
		for (j = 0; j < 43; j++) {
			static const char d[] =
				"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
			size_t bit = j * 6, byte = bit / 8, off = bit % 8;
			unsigned v = (unsigned)key[byte] << 8 | (byte + 1 < 32 ? key[byte + 1] : 0);

			b64[j] = d[(v >> (10 - off)) & 63];
		}
		b64[43] = '=';
		b64[44] = '\0';
		len += (size_t)sprintf(text + len, "[Peer]\nPublicKey = %s\n", b64);
		if (ips) {
			len += (size_t)sprintf(text + len, "AllowedIPs = ");
			for (j = 0; j < ips; j++)
				len += (size_t)sprintf(text + len, "%s10.%zu.%zu.%zu", j ? "," : "",
						       (j >> 16) & 255, (j >> 8) & 255, j & 255);
			text[len++] = '\n';
		}
	}
	text[len] = '\0';
	*ret_len = len;
	return text;
}

START_TEST(test_cap_peers)
{
	struct wgt_conf *conf = NULL;
	struct msgs m = { 0 };
	size_t len;
	char *text = many_peers(WGT_CONF_MAX_PEERS + 2, 0, &len);
	int r;

	r = wgt_conf_parse_text("t.conf", NULL, text, len, collect, &m, &conf);
	ck_assert_int_eq(r, -EINVAL);
	ck_assert_uint_eq(m.n, 1);
	ck_assert_str_eq(m.text[0], "t.conf:262145: more than 131072 peers");
	msgs_free(&m);
	/* Exactly at the cap: every peer, no duplicate found among distinct keys. */
	free(text);
	text = many_peers(WGT_CONF_MAX_PEERS, 0, &len);
	r = wgt_conf_parse_text("t.conf", NULL, text, len, collect, &m, &conf);
	ck_assert_int_eq(r, 0);
	ck_assert_uint_eq(conf->wg.n_peers, WGT_CONF_MAX_PEERS);
	wgt_conf_free(conf);
	msgs_free(&m);
	free(text);
}
END_TEST

/* Line lengths cap a line's list: allowed IPs reach their caps through many lines. */
START_TEST(test_cap_allowedips)
{
	const size_t per_line = 200, lines = WGT_UAPI_MAX_ALLOWEDIPS_PER_PEER / per_line + 1;
	size_t cap = lines * per_line * 16 + 1024, len, i, j;
	struct wgt_conf *conf = NULL;
	struct msgs m = { 0 };
	char *text = malloc(cap);
	int r;

	ck_assert_ptr_nonnull(text);
	len = (size_t)sprintf(text, "[Peer]\nPublicKey = " K2 "\n");
	for (i = 0; i < lines; i++) {
		len += (size_t)sprintf(text + len, "AllowedIPs = ");
		for (j = 0; j < per_line; j++) {
			size_t k = i * per_line + j;

			len += (size_t)sprintf(text + len, "%s10.%zu.%zu.%zu", j ? "," : "",
					       (k >> 16) & 255, (k >> 8) & 255, k & 255);
		}
		text[len++] = '\n';
	}
	r = wgt_conf_parse_text("t.conf", NULL, text, len, collect, &m, &conf);
	ck_assert_int_eq(r, -EINVAL);
	ck_assert_uint_eq(m.n, 1);
	ck_assert_str_eq(m.text[0], "t.conf:2624: AllowedIPs: more than 524288 allowed IPs for one peer");
	msgs_free(&m);
	free(text);
}
END_TEST

START_TEST(test_file_too_big)
{
	struct wgt_conf *conf = NULL;
	struct msgs m = { 0 };
	size_t len = WGT_CONF_MAX_FILE_BYTES + 1;
	char *text = malloc(len);
	char path[] = "/tmp/wgt-conf-big.XXXXXX";
	int fd, r;

	ck_assert_ptr_nonnull(text);
	memset(text, '\n', len);
	r = wgt_conf_parse_text("t.conf", NULL, text, len, collect, &m, &conf);
	ck_assert_int_eq(r, -EINVAL);
	ck_assert_str_eq(m.text[0], "t.conf: larger than 64 MiB");
	msgs_free(&m);
	/* Exactly the cap: fine. */
	r = wgt_conf_parse_text("t.conf", NULL, text, len - 1, collect, &m, &conf);
	ck_assert_int_eq(r, 0);
	wgt_conf_free(conf);
	free(text);

	fd = mkstemp(path);
	ck_assert_int_ne(fd, -1);
	ck_assert_int_eq(ftruncate(fd, (off_t)len), 0);
	close(fd);
	r = wgt_conf_parse_file(path, collect, &m, &conf);
	ck_assert_int_eq(r, -EFBIG);
	ck_assert_uint_eq(m.n, 1);
	ck_assert(strstr(m.text[0], ": larger than 64 MiB"));
	unlink(path);
	msgs_free(&m);
}
END_TEST

/* Key files and the file's own mode, in a fresh directory. */
static char tmpdir[64];

static void write_file(const char *name, const char *text, mode_t mode)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	ck_assert_int_ne(fd, -1);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	ck_assert_int_eq(fchmod(fd, mode), 0);
	close(fd);
}

static void setup_dir(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/wgt-conf.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown_dir(void)
{
	char cmd[128];

	/* The wg differential's fake socket, if an assertion left it behind. */
	snprintf(cmd, sizeof(cmd), "/var/run/wireguard/wgtc%d.sock", (int)getpid());
	unlink(cmd);

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	ck_assert_int_eq(system(cmd), 0);
}

/* Parses tmpdir/NAME; returns the result, messages in m. */
static int parse_path(const char *name, struct msgs *m, struct wgt_conf **conf)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	*conf = NULL;
	return wgt_conf_parse_file(path, collect, m, conf);
}

/* A group this process is not in (nogroup): files given it are another group's. */
#define FOREIGN_GID ((gid_t)65534)

/* Gives tmpdir/NAME the group FOREIGN_GID; false when that cannot be done (not root). */
static bool give_foreign_group(const char *name)
{
	char path[256];

	if (geteuid() || getegid() == FOREIGN_GID)
		return false;
	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	ck_assert_int_eq(chown(path, (uid_t)-1, FOREIGN_GID), 0);
	return true;
}

/*
 * Parses tmpdir/NAME in a child whose only supplementary group is GID (its
 * effective group unchanged); returns the result, or -ECHILD if the child
 * failed or printed any message.
 */
static int parse_as_member(const char *name, gid_t gid)
{
	int status;
	pid_t pid;

	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (!pid) {
		struct wgt_conf *conf;
		struct msgs m = { 0 };
		int r;

		if (setgroups(1, &gid))
			_exit(100);
		r = parse_path(name, &m, &conf);
		if (!r)
			wgt_conf_free(conf);
		_exit(m.n ? 101 : -r);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status) >= 100)
		return -ECHILD;
	return -WEXITSTATUS(status);
}

START_TEST(test_key_files)
{
	struct wgt_conf *conf;
	struct msgs m = { 0 };
	char want[256];
	int r;

	write_file("priv.key", K1 "\n", 0600);
	write_file("psk", "  \n" K3 "  \r\n\n", 0400);
	write_file("wg0.conf",
		   "[Interface]\nPrivateKeyFile = priv.key\n"
		   "[Peer]\nPublicKey = " K2 "\nPresharedKeyFile = psk\n", 0644);
	r = parse_path("wg0.conf", &m, &conf);
	ck_assert_int_eq(r, 0);
	/* Keys only in key files: the config file's mode does not matter. */
	ck_assert_uint_eq(m.n, 0);
	ck_assert_uint_eq(conf->wg.flags, WGT_UAPI_DEV_HAS_PRIVATE_KEY);
	assert_key(conf->wg.private_key, K1_HEX);
	ck_assert_uint_eq(conf->wg.peers[0].flags, WGT_UAPI_PEER_HAS_PRESHARED_KEY);
	assert_key(conf->wg.peers[0].preshared_key, K3_HEX);
	wgt_conf_free(conf);

	/* An absolute path, and a config file in the current directory ("wg0.conf"). */
	snprintf(want, sizeof(want), "[Interface]\nPrivateKeyFile = %s/priv.key\n", tmpdir);
	write_file("abs.conf", want, 0600);
	r = parse_path("abs.conf", &m, &conf);
	ck_assert_int_eq(r, 0);
	wgt_conf_free(conf);
	ck_assert_int_eq(chdir(tmpdir), 0);
	r = wgt_conf_parse_file("wg0.conf", collect, &m, &conf);
	ck_assert_int_eq(r, 0);
	wgt_conf_free(conf);
	ck_assert_uint_eq(m.n, 0);

	/*
	 * Its group may read, the group being the daemon's own (a Kubernetes
	 * Secret mounted 0440 with fsGroup): accepted, no message.
	 */
	ck_assert_int_eq(chmod("priv.key", 0640), 0);
	ck_assert_int_eq(parse_path("wg0.conf", &m, &conf), 0);
	ck_assert_uint_eq(m.n, 0);
	wgt_conf_free(conf);
	ck_assert_int_eq(chmod("priv.key", 0440), 0);
	ck_assert_int_eq(parse_path("wg0.conf", &m, &conf), 0);
	ck_assert_uint_eq(m.n, 0);
	wgt_conf_free(conf);

	/* Others may read or write: refused, and not read. */
	snprintf(want, sizeof(want),
		 "%s/wg0.conf:2: key file %s/priv.key is accessible by group or others (chmod 600)",
		 tmpdir, tmpdir);
	ck_assert_int_eq(chmod("priv.key", 0604), 0);
	ck_assert_int_eq(parse_path("wg0.conf", &m, &conf), -EINVAL);
	ck_assert_uint_eq(m.n, 1);
	ck_assert_str_eq(m.text[0], want);
	msgs_free(&m);
	ck_assert_int_eq(chmod("priv.key", 0602), 0);
	ck_assert_int_eq(parse_path("wg0.conf", &m, &conf), -EINVAL);
	msgs_free(&m);

	/* A group the daemon is not in may read: refused too (root only: chown). */
	if (give_foreign_group("priv.key")) {
		ck_assert_int_eq(chmod("priv.key", 0640), 0);
		ck_assert_int_eq(parse_path("wg0.conf", &m, &conf), -EINVAL);
		ck_assert_uint_eq(m.n, 1);
		ck_assert_str_eq(m.text[0], want);
		msgs_free(&m);
		/* ... unless it is one of the daemon's supplementary groups. */
		ck_assert_int_eq(parse_as_member("wg0.conf", FOREIGN_GID), 0);
		ck_assert_int_eq(chmod("priv.key", 0600), 0);
	}

	/* Not a key inside, too long, a directory. */
	write_file("priv.key", K1 "x\n", 0600);
	ck_assert_int_eq(parse_path("wg0.conf", &m, &conf), -EINVAL);
	snprintf(want, sizeof(want),
		 "%s/wg0.conf:2: key file %s/priv.key does not hold one base64 key of 32 bytes",
		 tmpdir, tmpdir);
	ck_assert_str_eq(m.text[0], want);
	msgs_free(&m);
	write_file("priv.key", K1 "\n" K2 "\n" K3 "\n" K4 "\n" K1 "\n" K2 "\n", 0600);
	ck_assert_int_eq(parse_path("wg0.conf", &m, &conf), -EINVAL);
	ck_assert_str_eq(m.text[0], want);
	assert_no_secret(&m, NULL);
	msgs_free(&m);
	write_file("priv.key", "", 0600);
	ck_assert_int_eq(parse_path("wg0.conf", &m, &conf), -EINVAL);
	msgs_free(&m);
	ck_assert_int_eq(unlink("priv.key"), 0);
	ck_assert_int_eq(mkdir("priv.key", 0700), 0);
	ck_assert_int_eq(parse_path("wg0.conf", &m, &conf), -EINVAL);
	snprintf(want, sizeof(want), "%s/wg0.conf:2: key file %s/priv.key is not a regular file",
		 tmpdir, tmpdir);
	ck_assert_str_eq(m.text[0], want);
	msgs_free(&m);
	ck_assert_int_eq(rmdir("priv.key"), 0);
	ck_assert_int_eq(chdir("/"), 0);
}
END_TEST

/* wg0.conf parses, with one warning: the key on LINE is in a file others may read. */
static void expect_exposed_warning(unsigned line)
{
	struct wgt_conf *conf;
	struct msgs m = { 0 };
	char want[256];

	ck_assert_int_eq(parse_path("wg0.conf", &m, &conf), 0);
	wgt_conf_free(conf);
	ck_assert_uint_eq(m.n, 1);
	ck_assert(m.sev[0] == WGT_CONF_WARNING);
	snprintf(want, sizeof(want), "%s/wg0.conf:%u: the file holds a key and is accessible by "
		 "group or others (chmod 600)", tmpdir, line);
	ck_assert_str_eq(m.text[0], want);
	msgs_free(&m);
}

/* wg0.conf, written with TEXT and MODE, parses without a message. */
static void expect_silent(const char *text, mode_t mode)
{
	struct wgt_conf *conf;
	struct msgs m = { 0 };

	write_file("wg0.conf", text, mode);
	ck_assert_int_eq(parse_path("wg0.conf", &m, &conf), 0);
	ck_assert_uint_eq(m.n, 0);
	wgt_conf_free(conf);
}

START_TEST(test_config_file_mode)
{
	/* A key in a file others can read: a warning (as wg-quick), still valid. */
	write_file("wg0.conf", "[Interface]\nListenPort = 1\n[Peer]\nPublicKey = " K2 "\n"
		   "PresharedKey = " K3 "\n", 0604);
	expect_exposed_warning(5);

	/* A group the daemon is not in may read it: the same warning (root only: chown). */
	write_file("wg0.conf", "[Interface]\nPrivateKey = " K1 "\n", 0640);
	if (give_foreign_group("wg0.conf")) {
		expect_exposed_warning(2);
		/* ... unless it is one of the daemon's supplementary groups. */
		ck_assert_int_eq(parse_as_member("wg0.conf", FOREIGN_GID), 0);
	}

	/* 0600, 0640 or 0440 in the daemon's own group, or no key in it: no warning. */
	expect_silent("[Interface]\nPrivateKey = " K1 "\n", 0600);
	expect_silent("[Interface]\nPrivateKey = " K1 "\n", 0640);
	expect_silent("[Interface]\nPrivateKey = " K1 "\n", 0440);
	expect_silent("[Interface]\nListenPort = 1\n", 0644);
}
END_TEST

START_TEST(test_file_errors)
{
	struct wgt_conf *conf;
	struct msgs m = { 0 };
	char want[256];

	ck_assert_int_eq(parse_path("missing.conf", &m, &conf), -ENOENT);
	snprintf(want, sizeof(want), "%s/missing.conf: cannot open: No such file or directory",
		 tmpdir);
	ck_assert_str_eq(m.text[0], want);
	ck_assert_ptr_null(conf);
	msgs_free(&m);
	ck_assert_int_eq(parse_path("", &m, &conf), -EISDIR);
	msgs_free(&m);
	/* Not a regular file: read to its end all the same. */
	ck_assert_int_eq(wgt_conf_parse_file("/dev/null", collect, &m, &conf), 0);
	ck_assert_uint_eq(conf->wg.n_peers, 0);
	wgt_conf_free(conf);
	/* No report function: nothing is said, the result is the same. */
	ck_assert_int_eq(wgt_conf_parse_file("/nonexistent/wg0.conf", NULL, NULL, &conf), -ENOENT);
	ck_assert_int_eq(wgt_conf_parse_text("x", NULL, "[x]", 3, NULL, NULL, &conf), -EINVAL);
}
END_TEST

/* Two peers at the per-peer cap fill the file's cap; one more IP in a third peer is over. */
START_TEST(test_cap_allowedips_total)
{
	const size_t per_line = 200, lines = WGT_UAPI_MAX_ALLOWEDIPS_PER_PEER / per_line;
	size_t cap = 3 * (lines * per_line * 16 + 1024), len = 0, i, j, peer;
	const char *const keys[] = { K2, K3, K4 };
	struct wgt_conf *conf = NULL;
	struct msgs m = { 0 };
	char *text = malloc(cap);
	char want[128];
	int r;

	ck_assert_uint_eq(lines * per_line, WGT_UAPI_MAX_ALLOWEDIPS_PER_PEER - 88);
	ck_assert_ptr_nonnull(text);
	for (peer = 0; peer < 3; peer++) {
		size_t n_ips = peer < 2 ? WGT_UAPI_MAX_ALLOWEDIPS_PER_PEER : 1;

		len += (size_t)sprintf(text + len, "[Peer]\nPublicKey = %s\n", keys[peer]);
		for (i = 0; i < n_ips; i += per_line) {
			len += (size_t)sprintf(text + len, "AllowedIPs = ");
			for (j = i; j < n_ips && j < i + per_line; j++)
				len += (size_t)sprintf(text + len, "%s10.%zu.%zu.%zu", j > i ? "," : "",
						       (j >> 16) & 255, (j >> 8) & 255, j & 255);
			text[len++] = '\n';
		}
	}
	r = wgt_conf_parse_text("t.conf", NULL, text, len, collect, &m, &conf);
	ck_assert_int_eq(r, -EINVAL);
	ck_assert_uint_eq(m.n, 1);
	/* Each full peer: 2 header lines and 2622 AllowedIPs lines. */
	snprintf(want, sizeof(want), "t.conf:%u: AllowedIPs: more than 1048576 allowed IPs in the file",
		 2 * (2 + 2622) + 3);
	ck_assert_str_eq(m.text[0], want);
	msgs_free(&m);
	free(text);
}
END_TEST

/*
 * Differential against wireguard-tools: `wg setconf` parses the same file
 * with its own config.c and sends the result as a UAPI set to a fake
 * socket here; that set (through config/uapi_set.c) must equal what this
 * parser made of the file. Only wg's keys, so that both accept the file.
 * Root (for /var/run/wireguard) and wg are needed; else the case says so
 * and passes.
 */
static const char *const wg_files[] = {
	"[Interface]\nPrivateKey = " K1 "\nListenPort = 51820\nFwMark = 0x1234\n\n"
	"[Peer]\nPublicKey = " K2 "\nPresharedKey = " K3 "\n"
	"AllowedIPs = 10.0.0.2/32 , fd00::2/128\nAllowedIPs = 192.168.7.9/16\n"
	"Endpoint = [2001:db8::1]:51821\nPersistentKeepalive = 25\n\n"
	"[Peer]\nPublicKey = " K4 "\nEndpoint = 192.0.2.7:51820\nAllowedIPs = 0.0.0.0/0, ::/0\n",
	"\t# case, comments, CRLF\r\n  [ interface ]   # the device\r\n"
	"privatekey=" K1 "\r\n  LISTENPORT\t=\t0  \r\nfwmark = OFF#no mark\r\n[PEER]\r\n"
	"#NAME=bob\r\npublickey = " K2 "   # who\r\n"
	"allowedips=10.1.0.0/16,10.2.0.0/16 ,  10.3.0.1\r\npersistentkeepalive = off\r\n",
	"[Peer]\nPublicKey = " K2 "\nAllowedIPs = 10.0.0.0/8\n[Peer]\nPublicKey = " K3 "\n"
	"PersistentKeepalive = 0\nEndpoint = 1.2.3.4:1\n",
	"[Interface]\nFwMark = 4294967295\nListenPort = 65535\n",
};

/*
 * Both refuse these (wg exits non-zero without sending a set). Not here:
 * ListenPort = 65536, which wg v1.0.20210914 sends as listen_port=0 (a
 * random port) through getaddrinfo(); this parser refuses it.
 */
static const char *const wg_broken[] = {
	"[Interface]\nPrivateKey = mB8rMRsXYR1XhCbrIIfSeRzNZ7xGd2qlV3g1+P0ezXF=\n",
	"[Interface]\nFwMark = 0x100000000\n",
	"[Interface]\nBogus = 1\n",
	"ListenPort = 1\n",
	"[Peer]\nPublicKey = " K2 "\nPersistentKeepalive = 65536\n",
	"[Peer]\nPublicKey = " K2 "\nAllowedIPs = 10.0.0.1/33\n",
	"[Peer]\nPublicKey = " K2 "\nEndpoint = 1.2.3.4\n",
	"[Peer]\nAllowedIPs = 10.0.0.0/8\n",
};

/*
 * Runs `wg setconf IFACE path` against a fake UAPI socket and returns what
 * wg sent after "set=1" (malloc'd), or NULL when wg failed.
 */
static char *wg_setconf(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char iface[16], cmd[512], *got = NULL;
	int lfd, status;
	pid_t wg;

	snprintf(iface, sizeof(iface), "wgtc%d", (int)getpid());
	snprintf(sun.sun_path, sizeof(sun.sun_path), "/var/run/wireguard/%s.sock", iface);
	mkdir("/var/run/wireguard", 0755);
	unlink(sun.sun_path);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ne(lfd, -1);
	ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	ck_assert_int_eq(listen(lfd, 1), 0);
	wg = fork();
	ck_assert_int_ne(wg, -1);
	if (!wg) {
		snprintf(cmd, sizeof(cmd), "exec wg setconf %s %s >/dev/null 2>&1", iface, path);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	for (;;) {
		struct pollfd pfd = { .fd = lfd, .events = POLLIN };
		int r = poll(&pfd, 1, 50);

		if (r == 1) {
			size_t len = 0, cap = 1 << 16;
			int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

			ck_assert_int_ne(cfd, -1);
			got = calloc(1, cap);
			ck_assert_ptr_nonnull(got);
			while (len < cap - 1 && !strstr(got, "\n\n")) {
				ssize_t n = read(cfd, got + len, cap - 1 - len);

				ck_assert_int_ge(n, 0);
				if (!n)
					break;
				len += (size_t)n;
			}
			if (len)
				ck_assert_int_eq(write(cfd, "errno=0\n\n", 9), 9);
			close(cfd);
			/* wg first connects once only to see that the socket is alive. */
			if (!len) {
				free(got);
				got = NULL;
				continue;
			}
			ck_assert_int_eq(waitpid(wg, &status, 0), wg);
			ck_assert_msg(WIFEXITED(status) && !WEXITSTATUS(status), "wg setconf failed");
			break;
		}
		if (waitpid(wg, &status, WNOHANG) == wg) {
			ck_assert_msg(!WIFEXITED(status) || WEXITSTATUS(status) != 127, "no wg");
			ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status), "wg sent nothing");
			break;
		}
	}
	close(lfd);
	unlink(sun.sun_path);
	if (got) {
		ck_assert_msg(!strncmp(got, "set=1\n", 6), "wg sent '%.20s'", got);
		memmove(got, got + 6, strlen(got + 6) + 1);
	}
	return got;
}

static bool wg_usable(void)
{
	if (geteuid() || system("command -v wg >/dev/null 2>&1")) {
		printf("conf: the wg differential needs root and wg (apt-get install wireguard-tools); "
		       "not run\n");
		return false;
	}
	return true;
}

START_TEST(test_wg_same)
{
	const unsigned peer_mask = WGT_UAPI_PEER_REPLACE_ALLOWED_IPS;
	struct wgt_uapi_device *dev = NULL;
	struct wgt_conf *conf = NULL;
	struct msgs m = { 0 };
	char path[128], err[WGT_UAPI_ERRMSG_LEN], *set;
	size_t i, j;

	if (!wg_usable())
		return;
	snprintf(path, sizeof(path), "%s/wg.conf", tmpdir);
	write_file("wg.conf", wg_files[_i], 0600);
	ck_assert_int_eq(wgt_conf_parse_file(path, collect, &m, &conf), 0);
	set = wg_setconf(path);
	ck_assert_ptr_nonnull(set);
	ck_assert_msg(!wgt_uapi_parse_set(set, strlen(set), &dev, err, sizeof(err)), "%s", err);
	/*
	 * setconf replaces the whole device: wg sends private_key, listen_port
	 * and fwmark (zero when the file has none), replace_peers and each
	 * peer's replace_allowed_ips. What the file gives must be among them.
	 */
	ck_assert_uint_eq(dev->flags & conf->wg.flags, conf->wg.flags);
	ck_assert_mem_eq(dev->private_key, conf->wg.private_key, 32);
	ck_assert_uint_eq(dev->listen_port, conf->wg.listen_port);
	ck_assert_uint_eq(dev->fwmark, conf->wg.fwmark);
	ck_assert_uint_eq(dev->n_peers, conf->wg.n_peers);
	for (i = 0; i < dev->n_peers; i++) {
		const struct wgt_uapi_peer *a = &dev->peers[i], *b = &conf->wg.peers[i];

		ck_assert_uint_eq(a->flags & ~peer_mask, b->flags);
		ck_assert_mem_eq(a->public_key, b->public_key, 32);
		ck_assert_mem_eq(a->preshared_key, b->preshared_key, 32);
		ck_assert_uint_eq(a->persistent_keepalive, b->persistent_keepalive);
		ck_assert(!(a->flags & WGT_UAPI_PEER_HAS_ENDPOINT) ||
			  wgt_sockaddr_equal(&a->endpoint, &b->endpoint));
		ck_assert_uint_eq(a->n_allowed_ips, b->n_allowed_ips);
		for (j = 0; j < a->n_allowed_ips; j++) {
			ck_assert_int_eq(a->allowed_ips[j].family, b->allowed_ips[j].family);
			ck_assert_mem_eq(a->allowed_ips[j].addr, b->allowed_ips[j].addr, 16);
			ck_assert_uint_eq(a->allowed_ips[j].cidr, b->allowed_ips[j].cidr);
		}
	}
	wgt_uapi_device_free(dev);
	wgt_conf_free(conf);
	free(set);
	msgs_free(&m);
}
END_TEST

START_TEST(test_wg_broken)
{
	struct wgt_conf *conf = NULL;
	struct msgs m = { 0 };
	char path[128];

	if (!wg_usable())
		return;
	snprintf(path, sizeof(path), "%s/wg.conf", tmpdir);
	write_file("wg.conf", wg_broken[_i], 0600);
	ck_assert_int_eq(wgt_conf_parse_file(path, collect, &m, &conf), -EINVAL);
	ck_assert_ptr_null(wg_setconf(path));
	msgs_free(&m);
}
END_TEST

static Suite *conf_suite(void)
{
	Suite *s = suite_create("conf");
	TCase *text = tcase_create("text");
	TCase *caps = tcase_create("caps");
	TCase *files = tcase_create("files");
	TCase *wg = tcase_create("wg");

	tcase_add_test(text, test_full);
	tcase_add_test(text, test_lexical);
	tcase_add_test(text, test_empty_and_minimal);
	tcase_add_loop_test(text, test_accepts, 0, sizeof(accepts) / sizeof(accepts[0]));
	tcase_add_test(text, test_value_details);
	tcase_add_test(text, test_base64);
	tcase_add_test(text, test_key_run);
	tcase_add_loop_test(text, test_rejects, 0, sizeof(rejects) / sizeof(rejects[0]));
	tcase_add_test(text, test_collects_all);
	tcase_add_test(text, test_lines);
	tcase_add_test(text, test_too_many_errors);
	suite_add_tcase(s, text);

	tcase_add_test(caps, test_cap_addresses);
	tcase_add_test(caps, test_cap_peers);
	tcase_add_test(caps, test_cap_allowedips);
	tcase_add_test(caps, test_cap_allowedips_total);
	tcase_add_test(caps, test_file_too_big);
	suite_add_tcase(s, caps);

	tcase_add_checked_fixture(files, setup_dir, teardown_dir);
	tcase_add_test(files, test_key_files);
	tcase_add_test(files, test_config_file_mode);
	tcase_add_test(files, test_file_errors);
	suite_add_tcase(s, files);

	tcase_add_checked_fixture(wg, setup_dir, teardown_dir);
	tcase_add_loop_test(wg, test_wg_same, 0, sizeof(wg_files) / sizeof(wg_files[0]));
	tcase_add_loop_test(wg, test_wg_broken, 0, sizeof(wg_broken) / sizeof(wg_broken[0]));
	suite_add_tcase(s, wg);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(conf_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
