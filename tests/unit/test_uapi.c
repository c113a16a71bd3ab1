/* SPDX-License-Identifier: MIT */
/* UAPI set parser and get formatter: wg's own bytes, every malformed class, the caps, round trips, random lines. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <net/if.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/uapi.h"
#include "tests/unit/hex.h"

/* Keys from `wg genkey`, throwaway. */
#define PRIV "80b610e7b389acc942ddce6b75da22fbfc676a1156b97840a7241063c2b88754"
#define PUB1 "9ebb5dfb0e2fcecd6d4a44de120684dab1382c98eefce4e4113f03b4af5a9e35"
#define PSK1 "acdcb0aaec6aba4ea39b3edd0b90e0a58bb4ceaafaa7c8278c9615dbc373d38a"
#define PUB2 "4ad51c9bf8b65fcd8eb306e59f55473ddbce0da2e8188f8b5cb886aba26c4f5d"
#define ZERO "0000000000000000000000000000000000000000000000000000000000000000"

/*
 * What wireguard-tools v1.0.20210914 wrote on the socket after `set=1` for
 * `wg setconf` of a two-peer config (captured from a fake UAPI socket);
 * `wg addconf` wrote the same without replace_peers.
 */
#define CONF_DEVICE "private_key=" PRIV "\nlisten_port=51820\nfwmark=4660\n"
#define CONF_PEERS \
	"public_key=" PUB1 "\npreshared_key=" PSK1 "\nendpoint=192.0.2.1:51820\n" \
	"persistent_keepalive_interval=25\nreplace_allowed_ips=true\n" \
	"allowed_ip=10.0.0.0/24\nallowed_ip=10.1.0.1/32\nallowed_ip=10.2.3.4/16\n" \
	"public_key=" PUB2 "\nendpoint=[2001:db8::1]:51821\nreplace_allowed_ips=true\n" \
	"allowed_ip=fd00::/64\nallowed_ip=::/0\nallowed_ip=0.0.0.0/0\n"
static const char setconf_text[] = CONF_DEVICE "replace_peers=true\n" CONF_PEERS "\n";
static const char addconf_text[] = CONF_DEVICE CONF_PEERS "\n";

/* The get=1 answer once the gateway applied it, before any handshake. */
static const char setconf_get[] =
	"private_key=" PRIV "\nlisten_port=51820\nfwmark=4660\n"
	"public_key=" PUB1 "\npreshared_key=" PSK1 "\nprotocol_version=1\n"
	"endpoint=192.0.2.1:51820\nlast_handshake_time_sec=0\nlast_handshake_time_nsec=0\n"
	"tx_bytes=0\nrx_bytes=0\npersistent_keepalive_interval=25\n"
	"allowed_ip=10.0.0.0/24\nallowed_ip=10.1.0.1/32\nallowed_ip=10.2.3.4/16\n"
	"public_key=" PUB2 "\npreshared_key=" ZERO "\nprotocol_version=1\n"
	"endpoint=[2001:db8::1]:51821\nlast_handshake_time_sec=0\nlast_handshake_time_nsec=0\n"
	"tx_bytes=0\nrx_bytes=0\npersistent_keepalive_interval=0\n"
	"allowed_ip=fd00::/64\nallowed_ip=::/0\nallowed_ip=0.0.0.0/0\n"
	"errno=0\n\n";

static char *get_text(const struct wgt_uapi_device *set);

static void assert_key(const uint8_t key[32], const char *hex)
{
	uint8_t want[32];

	unhex(want, hex, 32);
	ck_assert_mem_eq(key, want, 32);
}

static int parse(const char *text, struct wgt_uapi_device **dev, char *msg)
{
	*dev = NULL;
	return wgt_uapi_parse_set(text, strlen(text), dev, msg, WGT_UAPI_ERRMSG_LEN);
}

static struct wgt_uapi_device *parse_ok(const char *text)
{
	struct wgt_uapi_device *dev;
	char msg[WGT_UAPI_ERRMSG_LEN];
	int ret = parse(text, &dev, msg);

	ck_assert_msg(ret == 0, "'%s': %d %s", text, ret, msg);
	ck_assert_ptr_nonnull(dev);
	ck_assert_str_eq(msg, "");
	return dev;
}

/* Fails with `err`, hands out no device, explains itself without quoting `secret` (may be NULL). */
static void expect_err(const char *text, int err, const char *secret)
{
	struct wgt_uapi_device *dev = (struct wgt_uapi_device *)&dev;
	char msg[WGT_UAPI_ERRMSG_LEN];
	int ret = wgt_uapi_parse_set(text, strlen(text), &dev, msg, sizeof(msg));

	ck_assert_msg(ret == err, "'%s': got %d (%s), want %d", text, ret, msg, err);
	ck_assert_ptr_eq(dev, (struct wgt_uapi_device *)&dev);
	ck_assert_msg(strncmp(msg, "line ", 5) == 0, "'%s': message '%s'", text, msg);
	if (secret && strlen(secret) >= 8) {
		char frag[9];
		size_t i;

		for (i = 0; i + 8 <= strlen(secret); i++) {
			memcpy(frag, secret + i, 8);
			frag[8] = '\0';
			ck_assert_msg(!strstr(msg, frag), "message '%s' quotes the value", msg);
		}
	}
}

static void assert_ip(const struct wgt_uapi_allowedip *ip, int family, const char *addr,
		      unsigned cidr, bool remove)
{
	uint8_t want[16] = { 0 };

	ck_assert_int_eq(inet_pton(family, addr, want), 1);
	ck_assert_int_eq(ip->family, family);
	ck_assert_mem_eq(ip->addr, want, family == AF_INET ? 4 : 16);
	ck_assert_uint_eq(ip->cidr, cidr);
	ck_assert(ip->remove == remove);
}

/* A parse of setconf_text (or addconf_text): flags, then the rest through the get=1 text. */
static void assert_setconf(const struct wgt_uapi_device *dev, bool replace_peers)
{
	char *get = get_text(dev);

	ck_assert_uint_eq(dev->flags, WGT_UAPI_DEV_HAS_PRIVATE_KEY | WGT_UAPI_DEV_HAS_LISTEN_PORT |
				      WGT_UAPI_DEV_HAS_FWMARK |
				      (replace_peers ? WGT_UAPI_DEV_REPLACE_PEERS : 0));
	ck_assert_uint_eq(dev->n_peers, 2);
	ck_assert_uint_eq(dev->peers[0].flags,
			  WGT_UAPI_PEER_HAS_PRESHARED_KEY | WGT_UAPI_PEER_HAS_ENDPOINT |
			  WGT_UAPI_PEER_HAS_PERSISTENT_KEEPALIVE | WGT_UAPI_PEER_REPLACE_ALLOWED_IPS);
	ck_assert_uint_eq(dev->peers[1].flags,
			  WGT_UAPI_PEER_HAS_ENDPOINT | WGT_UAPI_PEER_REPLACE_ALLOWED_IPS);
	/* Host bits are kept (10.2.3.4/16): the allowed-IPs table masks them. */
	ck_assert_str_eq(get, setconf_get);
	free(get);
}

/* wg setconf's bytes, parsed, as the view the gateway would build, formatted. */
START_TEST(test_setconf)
{
	struct wgt_uapi_device *dev = parse_ok(setconf_text);

	assert_setconf(dev, true);
	wgt_uapi_device_free(dev);
	dev = parse_ok(addconf_text);
	assert_setconf(dev, false);
	wgt_uapi_device_free(dev);
}
END_TEST

/* The other shapes `wg set` produced on the fake socket. */
START_TEST(test_wg_set_shapes)
{
	struct wgt_uapi_device *dev;

	/* wg set wg0 peer X remove */
	dev = parse_ok("public_key=" PUB1 "\nremove=true\n\n");
	ck_assert_uint_eq(dev->n_peers, 1);
	ck_assert_uint_eq(dev->peers[0].flags, WGT_UAPI_PEER_REMOVE);
	wgt_uapi_device_free(dev);

	/* wg set wg0 peer X endpoint [fe80::1%lo]:1234 persistent-keepalive off allowed-ips "" */
	dev = parse_ok("public_key=" PUB2 "\nendpoint=[fe80::1%lo]:1234\n"
		       "persistent_keepalive_interval=0\nreplace_allowed_ips=true\n\n");
	ck_assert_uint_eq(dev->peers[0].flags, WGT_UAPI_PEER_HAS_ENDPOINT |
					       WGT_UAPI_PEER_HAS_PERSISTENT_KEEPALIVE |
					       WGT_UAPI_PEER_REPLACE_ALLOWED_IPS);
	ck_assert_uint_eq(dev->peers[0].endpoint.in6.sin6_scope_id, if_nametoindex("lo"));
	ck_assert_uint_eq(dev->peers[0].persistent_keepalive, 0);
	ck_assert_uint_eq(dev->peers[0].n_allowed_ips, 0);
	wgt_uapi_device_free(dev);

	/* wg set wg0 peer X endpoint [fe80::1%2]:1234 preshared-key /dev/null (wg wrote %ifb0) */
	dev = parse_ok("public_key=" PUB2 "\npreshared_key=" ZERO "\nendpoint=[fe80::1%2]:1234\n\n");
	ck_assert_uint_eq(dev->peers[0].flags,
			  WGT_UAPI_PEER_HAS_PRESHARED_KEY | WGT_UAPI_PEER_HAS_ENDPOINT);
	assert_key(dev->peers[0].preshared_key, ZERO);
	ck_assert_uint_eq(dev->peers[0].endpoint.in6.sin6_scope_id, 2);
	wgt_uapi_device_free(dev);

	/* wg set wg0 private-key /dev/null fwmark off listen-port 0 */
	dev = parse_ok("private_key=" ZERO "\nlisten_port=0\nfwmark=0\n\n");
	ck_assert_uint_eq(dev->flags, WGT_UAPI_DEV_HAS_PRIVATE_KEY | WGT_UAPI_DEV_HAS_LISTEN_PORT |
				      WGT_UAPI_DEV_HAS_FWMARK);
	assert_key(dev->private_key, ZERO);
	ck_assert_uint_eq(dev->listen_port, 0);
	ck_assert_uint_eq(dev->fwmark, 0);
	ck_assert_uint_eq(dev->n_peers, 0);
	wgt_uapi_device_free(dev);
}
END_TEST

START_TEST(test_peer_flags_and_order)
{
	struct wgt_uapi_device *dev;
	const struct wgt_uapi_peer *p;

	dev = parse_ok("public_key=" PUB1 "\n"
		       "protocol_version=1\n"
		       "update_only=true\n"
		       "allowed_ip=10.9.9.9/32\n"
		       "replace_allowed_ips=true\n"
		       "allowed_ip=10.0.0.0/8\n"
		       "allowed_ip=-10.0.0.0/8\n"
		       "allowed_ip=-fd00::1/128\n"
		       "public_key=" PUB1 "\n"
		       "endpoint=1.2.3.4:5\n"
		       "\n");
	ck_assert_uint_eq(dev->n_peers, 2);
	p = &dev->peers[0];
	ck_assert_uint_eq(p->flags, WGT_UAPI_PEER_HAS_PROTOCOL_VERSION | WGT_UAPI_PEER_UPDATE_ONLY |
				    WGT_UAPI_PEER_REPLACE_ALLOWED_IPS);
	/* The line before replace_allowed_ips is gone, as wireguard-go replaced it. */
	ck_assert_uint_eq(p->n_allowed_ips, 3);
	assert_ip(&p->allowed_ips[0], AF_INET, "10.0.0.0", 8, false);
	assert_ip(&p->allowed_ips[1], AF_INET, "10.0.0.0", 8, true);
	assert_ip(&p->allowed_ips[2], AF_INET6, "fd00::1", 128, true);
	/* The same key again is a second section, applied after the first. */
	p = &dev->peers[1];
	assert_key(p->public_key, PUB1);
	ck_assert_uint_eq(p->flags, WGT_UAPI_PEER_HAS_ENDPOINT);
	wgt_uapi_device_free(dev);

	/* Last value wins; uppercase hex is accepted as Go's hex.DecodeString does. */
	dev = parse_ok("listen_port=1\nlisten_port=2\nprivate_key="
		       "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n\n");
	ck_assert_uint_eq(dev->listen_port, 2);
	ck_assert_uint_eq(dev->private_key[0], 0xaa);
	ck_assert_uint_eq(dev->private_key[31], 0xaa);
	wgt_uapi_device_free(dev);
}
END_TEST

#define D(line) line "\n\n"
#define P(line) "public_key=" PUB1 "\n" line "\n\n"

/* Every malformed class, with wireguard-go's errno (-EPROTO: no '='; -EINVAL: the rest). */
static const struct {
	const char *text;
	int err;
} rejects[] = {
	/* Framing and sections. */
	{ "listen_port=7\n\nfwmark=1\n", -EPROTO }, { "\n\n", -EPROTO }, { D("listen_port"), -EPROTO },
	{ D("private_key " PRIV), -EPROTO }, { D("="), -EINVAL }, { D("=7"), -EINVAL },
	{ D("set=1"), -EINVAL }, { D("get=1"), -EINVAL }, { D("foo=bar"), -EINVAL },
	{ P("foo=bar"), -EINVAL }, { D("Listen_port=1"), -EINVAL }, { D("listen_port =1"), -EINVAL },
	{ P("listen_port=1"), -EINVAL }, { P("private_key=" PRIV), -EINVAL },
	{ P("replace_peers=true"), -EINVAL }, { D("endpoint=1.2.3.4:5"), -EINVAL },
	{ D("allowed_ip=10.0.0.0/8"), -EINVAL }, { D("remove=true"), -EINVAL },
	{ P("protocol_version=2"), -EINVAL }, { P("protocol_version=0"), -EINVAL },
	{ P("protocol_version=01"), -EINVAL }, { P("protocol_version="), -EINVAL },
	/* Numbers: decimal digits only, in range. */
	{ D("listen_port=65536"), -EINVAL }, { D("listen_port=99999999999999999999999"), -EINVAL },
	{ D("listen_port=+5"), -EINVAL }, { D("listen_port=-1"), -EINVAL },
	{ D("listen_port= 1"), -EINVAL }, { D("listen_port=1 "), -EINVAL },
	{ D("listen_port=0x10"), -EINVAL }, { D("listen_port=1_000"), -EINVAL },
	{ D("listen_port="), -EINVAL }, { D("fwmark=4294967296"), -EINVAL },
	{ D("fwmark=18446744073709551616"), -EINVAL }, { D("fwmark=0x1234"), -EINVAL },
	{ P("persistent_keepalive_interval=65536"), -EINVAL },
	{ P("persistent_keepalive_interval=off"), -EINVAL },
	{ P("persistent_keepalive_interval="), -EINVAL },
	/* Endpoints: numeric IPv4:port or [IPv6%zone]:port. */
	{ P("endpoint="), -EINVAL }, { P("endpoint=:"), -EINVAL }, { P("endpoint=1.2.3.4"), -EINVAL },
	{ P("endpoint=1.2.3.4:"), -EINVAL }, { P("endpoint=:51820"), -EINVAL },
	{ P("endpoint=1.2.3.4:65536"), -EINVAL }, { P("endpoint=1.2.3.4:+5"), -EINVAL },
	{ P("endpoint=1.2.3.4:-5"), -EINVAL }, { P("endpoint=1.2.3.4:0x10"), -EINVAL },
	{ P("endpoint=1.2.3.4: 5"), -EINVAL }, { P("endpoint=01.2.3.4:5"), -EINVAL },
	{ P("endpoint=1.2.3:5"), -EINVAL }, { P("endpoint=1.2.3.4.5:5"), -EINVAL },
	{ P("endpoint=256.1.1.1:5"), -EINVAL }, { P("endpoint=[1.2.3.4]:5"), -EINVAL },
	{ P("endpoint=::1:5"), -EINVAL }, { P("endpoint=[::1]5"), -EINVAL },
	{ P("endpoint=[::1]"), -EINVAL }, { P("endpoint=[::1]:"), -EINVAL },
	{ P("endpoint=[::1"), -EINVAL }, { P("endpoint=::1]:5"), -EINVAL },
	{ P("endpoint=[]:5"), -EINVAL }, { P("endpoint=[::1%]:5"), -EINVAL },
	{ P("endpoint=[::1]:5]"), -EINVAL }, { P("endpoint=[:::1]:5"), -EINVAL },
	{ P("endpoint=[fe80::1%nosuchif0]:5"), -EINVAL },
	{ P("endpoint=[fe80::1%4294967296]:5"), -EINVAL },
	{ P("endpoint=[fe80::1%a/b]:5"), -EINVAL },
	{ P("endpoint=[fe80::1%abcdefghijklmnopq]:5"), -EINVAL },
	{ P("endpoint=localhost:51820"), -EINVAL }, { P("endpoint=vpn.example.com:51820"), -EINVAL },
	{ P("endpoint=[vpn.example.com]:51820"), -EINVAL }, { P("endpoint= 1.2.3.4:5"), -EINVAL },
	{ P("endpoint=1.2.3.4:5 "), -EINVAL }, { P("endpoint=1.2.3.4%lo:5"), -EINVAL },
	/* Allowed IPs: [-]addr/cidr as netip.ParsePrefix reads it. */
	{ P("allowed_ip="), -EINVAL }, { P("allowed_ip=-"), -EINVAL },
	{ P("allowed_ip=--10.0.0.0/8"), -EINVAL }, { P("allowed_ip=10.0.0.1"), -EINVAL },
	{ P("allowed_ip=10.0.0.1/"), -EINVAL }, { P("allowed_ip=/8"), -EINVAL },
	{ P("allowed_ip=10.0.0.1/33"), -EINVAL }, { P("allowed_ip=10.0.0.1/024"), -EINVAL },
	{ P("allowed_ip=10.0.0.1/00"), -EINVAL }, { P("allowed_ip=10.0.0.1/+8"), -EINVAL },
	{ P("allowed_ip=10.0.0.1/-1"), -EINVAL }, { P("allowed_ip=10.0.0.1/8 "), -EINVAL },
	{ P("allowed_ip= 10.0.0.1/8"), -EINVAL }, { P("allowed_ip=10.0.0.1/ 8"), -EINVAL },
	{ P("allowed_ip=010.0.0.1/8"), -EINVAL }, { P("allowed_ip=10.0.0/8"), -EINVAL },
	{ P("allowed_ip=10.0.0.256/8"), -EINVAL }, { P("allowed_ip=::/129"), -EINVAL },
	{ P("allowed_ip=::/1000"), -EINVAL }, { P("allowed_ip=fe80::1%lo/64"), -EINVAL },
	{ P("allowed_ip=fe80::1%1/64"), -EINVAL }, { P("allowed_ip=::1/128/128"), -EINVAL },
	{ P("allowed_ip=10.0.0.1//8"), -EINVAL }, { P("allowed_ip=[::1]/128"), -EINVAL },
	{ P("allowed_ip=1.2.3.4:5/32"), -EINVAL }, { P("allowed_ip=gggg::/16"), -EINVAL },
	{ P("allowed_ip=-10.0.0.1/33"), -EINVAL }, { P("allowed_ip=10.0.0.1/4294967328"), -EINVAL },
	{ P("allowed_ip=::/18446744073709551744"), -EINVAL },
};

START_TEST(test_rejects)
{
	expect_err(rejects[_i].text, rejects[_i].err, NULL);
}
END_TEST

START_TEST(test_booleans)
{
	static const char *const bad[] = { "True", "TRUE", "1", "yes", "", "true ", " true", "false" };
	static const char *const keys[] = { "remove", "update_only", "replace_allowed_ips" };
	char text[256];
	size_t i, j;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "replace_peers=%s\n\n", bad[i]);
		expect_err(text, -EINVAL, NULL);
		for (j = 0; j < sizeof(keys) / sizeof(keys[0]); j++) {
			snprintf(text, sizeof(text), P("%s=%s"), keys[j], bad[i]);
			expect_err(text, -EINVAL, NULL);
		}
	}
}
END_TEST

START_TEST(test_bad_keys)
{
	static const char *const values[] = {
		"", "0", PRIV "0", "gEJ6NhuIf8+v2VNYqldDFHK98mshQHIPX4CzNTYxkGU=",
		"80b610e7b389acc942ddce6b75da22fbfc676a1156b97840a7241063c2b8875",
		"g0b610e7b389acc942ddce6b75da22fbfc676a1156b97840a7241063c2b88754",
		"80b610e7b389acc942ddce6b75da22fbfc676a1156b97840a7241063c2b8875 ",
		" 0b610e7b389acc942ddce6b75da22fbfc676a1156b97840a7241063c2b88754",
		"80b610e7b389acc942ddce6b75da22fbfc676a1156b97840a7241063c2b8875:",
		"80b610e7b389acc942ddce6b75da22fbfc676a1156b97840a7241063c2b8875@",
		"80b610e7b389acc942ddce6b75da22fbfc676a1156b97840a7241063c2b8875`",
		"80b610e7b389acc942ddce6b75da22fbfc676a1156b97840a7241063c2b8875G",
	};
	static const char *const forms[] = { D("private_key=%s"), D("public_key=%s"),
					     P("preshared_key=%s") };
	char text[512];
	size_t i, j;

	for (i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		for (j = 0; j < sizeof(forms) / sizeof(forms[0]); j++) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
			snprintf(text, sizeof(text), forms[j], values[i]);
#pragma GCC diagnostic pop
			expect_err(text, -EINVAL, values[i]);
		}
	}
	/* A pasted key as the key name is not quoted either. */
	expect_err(D(PRIV "=1"), -EINVAL, PRIV);
	expect_err(D("private_key" PRIV "=1"), -EINVAL, PRIV);
}
END_TEST

START_TEST(test_messages)
{
	static const struct {
		const char *text;
		const char *msg;
	} cases[] = {
		{ "listen_port=1\nendpoint=1.2.3.4:5\n", "line 2: peer key 'endpoint' before any public_key" },
		{ P("fwmark=1"), "line 2: device key 'fwmark' inside a peer section" },
		{ P("colour=blue"), "line 2: unknown peer key 'colour'" },
		{ D("Colour=blue"), "line 1: unknown device key (not shown)" },
		{ D("listen_port=70000"), "line 1: listen_port: out of range (max 65535)" },
		{ D("fwmark=x"), "line 1: fwmark: not a decimal number" },
		{ D("x"), "line 1: expected key=value" },
		{ P("endpoint=vpn.example.com:51820"),
		  "line 2: endpoint: hostnames are not accepted (wg resolves them before sending)" },
		{ P("endpoint=[fe80::1%nosuchif0]:1"), "line 2: endpoint: IPv6 zone names no interface" },
		{ P("allowed_ip=::/129"), "line 2: allowed_ip: prefix length above 128" },
		{ P("protocol_version=2"), "line 2: protocol_version: only version 1 is supported" },
		{ "\n\n", "line 2: data after the blank line that ends the set" },
	};
	char msg[WGT_UAPI_ERRMSG_LEN];
	struct wgt_uapi_device *dev;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ck_assert_int_lt(parse(cases[i].text, &dev, msg), 0);
		ck_assert_str_eq(msg, cases[i].msg);
	}
	/* A short buffer gets a truncated, terminated message; NULL gets nothing. */
	ck_assert_int_eq(wgt_uapi_parse_set("x", 1, &dev, msg, 5), -EPROTO);
	ck_assert_str_eq(msg, "line");
	ck_assert_int_eq(wgt_uapi_parse_set("x", 1, &dev, NULL, 0), -EPROTO);
}
END_TEST

/* Accepted sets, and a line the get=1 answer then holds. */
static const struct {
	const char *text, *get;
} accepts[] = {
	/* CRLF, as Go's bufio.Scanner drops a '\r' before '\n'. */
	{ "listen_port=7\r\npublic_key=" PUB1 "\r\nremove=true\r\n\r\n", "listen_port=7\n" },
	/* Cut short by EOF, last line without '\n': wireguard-go applies it. */
	{ "listen_port=7\nfwmark=9", "fwmark=9\n" },
	{ "\n", "errno=0\n\n" }, { "", "errno=0\n\n" },
	/* Number limits; leading zeros are fine for strconv.ParseUint. Last value wins. */
	{ D("listen_port=65535"), "listen_port=65535\n" }, { D("fwmark=4294967295"), "fwmark=4294967295\n" },
	{ D("listen_port=0051820"), "listen_port=51820\n" }, { D("listen_port=1\nlisten_port=2"), "listen_port=2\n" },
	{ P("persistent_keepalive_interval=65535"), "persistent_keepalive_interval=65535\n" },
	/* Either case of hex, as Go's hex.DecodeString. */
	{ D("private_key=" "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
	  "private_key=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n" },
	{ P("endpoint=1.2.3.4:0"), "endpoint=1.2.3.4:0\n" },
	{ P("endpoint=255.255.255.255:00065535"), "endpoint=255.255.255.255:65535\n" },
	{ P("endpoint=[::ffff:1.2.3.4]:5"), "endpoint=[::ffff:1.2.3.4]:5\n" },
	{ P("endpoint=[FE80::ABCD%4294967295]:51820"), "endpoint=[fe80::abcd%4294967295]:51820\n" },
	{ P("endpoint=[2001:db8::1%0]:1"), "endpoint=[2001:db8::1]:1\n" },
	{ P("allowed_ip=0.0.0.0/0"), "allowed_ip=0.0.0.0/0\n" },
	{ P("allowed_ip=255.255.255.255/32"), "allowed_ip=255.255.255.255/32\n" },
	{ P("allowed_ip=2001:DB8::1/128"), "allowed_ip=2001:db8::1/128\n" },
	{ P("allowed_ip=::ffff:1.2.3.4/128"), "allowed_ip=::ffff:1.2.3.4/128\n" },
	{ P("allowed_ip=-192.168.1.77/24"), "allowed_ip=192.168.1.77/24\n" },
};

START_TEST(test_accepts)
{
	struct wgt_uapi_device *dev = parse_ok(accepts[_i].text);
	char *get = get_text(dev);

	ck_assert_msg(strstr(get, accepts[_i].get), "'%s' gave '%s'", accepts[_i].text, get);
	free(get);
	wgt_uapi_device_free(dev);
}
END_TEST

/* The set failed for `reason`: finish() says so, hands out nothing and resets. */
static void assert_failed(struct wgt_uapi_parser *p, int err, enum wgt_uapi_error reason)
{
	struct wgt_uapi_device *dev = NULL;

	ck_assert_int_eq(wgt_uapi_parser_error(p), reason);
	ck_assert_int_eq(wgt_uapi_parser_finish(p, &dev), err);
	ck_assert_ptr_null(dev);
}

/* Feeds `count` copies of `line` (no '\n'); returns the first non-zero result. */
static int feed_repeat(struct wgt_uapi_parser *p, const char *line, size_t count)
{
	size_t len = strlen(line), i;
	int ret = 0;

	for (i = 0; i < count && !ret; i++)
		ret = wgt_uapi_parser_line(p, line, len);
	return ret;
}

/* "key=000...7", `len` bytes long. */
static const char *padded(char *line, const char *key, size_t len)
{
	size_t klen = strlen(key);

	ck_assert_uint_gt(len, klen);
	memcpy(line, key, klen);
	memset(line + klen, '0', len - klen - 1);
	line[len - 1] = '7';
	line[len] = '\0';
	return line;
}

START_TEST(test_line_cap)
{
	static char line[WGT_UAPI_MAX_LINE + 16];
	struct wgt_uapi_parser *p = wgt_uapi_parser_new(NULL);
	struct wgt_uapi_device *dev;
	size_t used;

	/* Exactly WGT_UAPI_MAX_LINE bytes, then with a '\r' after. */
	padded(line, "listen_port=", WGT_UAPI_MAX_LINE);
	ck_assert_int_eq(wgt_uapi_parser_line(p, line, WGT_UAPI_MAX_LINE), 0);
	line[WGT_UAPI_MAX_LINE] = '\r';
	ck_assert_int_eq(wgt_uapi_parser_line(p, line, WGT_UAPI_MAX_LINE + 1), 0);
	ck_assert_int_eq(wgt_uapi_parser_finish(p, &dev), 0);
	ck_assert_uint_eq(dev->listen_port, 7);
	wgt_uapi_device_free(dev);
	/* One byte more is refused, with its own errno and reason. */
	line[WGT_UAPI_MAX_LINE] = '7';
	ck_assert_int_eq(wgt_uapi_parser_line(p, "fwmark=1", 8), 0);
	ck_assert_int_eq(wgt_uapi_parser_line(p, line, WGT_UAPI_MAX_LINE + 1), -EMSGSIZE);
	ck_assert_str_eq(wgt_uapi_parser_message(p), "line 2: line longer than 4096 bytes");
	assert_failed(p, -EMSGSIZE, WGT_UAPI_ERR_LINE_TOO_LONG);

	/* feed() refuses it as soon as its buffer would overflow, newline or not. */
	memset(line, 'a', sizeof(line));
	ck_assert_int_eq(wgt_uapi_parser_feed(p, line, sizeof(line), &used), -EMSGSIZE);
	assert_failed(p, -EMSGSIZE, WGT_UAPI_ERR_LINE_TOO_LONG);
	ck_assert_int_eq(wgt_uapi_parser_feed(p, line, WGT_UAPI_MAX_LINE, &used), 0);
	ck_assert_int_eq(wgt_uapi_parser_feed(p, "a\r\n", 3, &used), -EMSGSIZE);
	assert_failed(p, -EMSGSIZE, WGT_UAPI_ERR_LINE_TOO_LONG);
	/* The longest line and its '\r' fit (and then lack their '='). */
	ck_assert_int_eq(wgt_uapi_parser_feed(p, line, WGT_UAPI_MAX_LINE, &used), 0);
	ck_assert_uint_eq(used, WGT_UAPI_MAX_LINE);
	ck_assert_int_eq(wgt_uapi_parser_feed(p, "\r", 1, &used), 0);
	ck_assert_int_eq(wgt_uapi_parser_feed(p, "\n", 1, &used), -EPROTO);
	assert_failed(p, -EPROTO, WGT_UAPI_ERR_SYNTAX);
	wgt_uapi_parser_free(p);
}
END_TEST

/* The hard caps on peers and allowed IPs, at their real sizes. */
START_TEST(test_count_caps)
{
	struct wgt_uapi_parser *p = wgt_uapi_parser_new(NULL);
	const char *pub = "public_key=" PUB1, *ip = "allowed_ip=10.0.0.0/8";
	struct wgt_uapi_device *dev;
	size_t i;

	ck_assert_int_eq(feed_repeat(p, pub, WGT_UAPI_MAX_PEERS), 0);
	ck_assert_int_eq(wgt_uapi_parser_finish(p, &dev), 0);
	ck_assert_uint_eq(dev->n_peers, WGT_UAPI_MAX_PEERS);
	wgt_uapi_device_free(dev);
	ck_assert_int_eq(feed_repeat(p, pub, WGT_UAPI_MAX_PEERS + 1), -ENOSPC);
	ck_assert_str_eq(wgt_uapi_error_name(wgt_uapi_parser_error(p)), "too_many_peers");
	/* Sticky: the set stays failed. */
	ck_assert_int_eq(wgt_uapi_parser_line(p, "listen_port=1", 13), -ENOSPC);
	assert_failed(p, -ENOSPC, WGT_UAPI_ERR_TOO_MANY_PEERS);
	/* The reason outlives finish() until the next set begins. */
	ck_assert_int_eq(wgt_uapi_parser_error(p), WGT_UAPI_ERR_TOO_MANY_PEERS);
	ck_assert_int_eq(wgt_uapi_parser_line(p, "listen_port=1", 13), 0);
	ck_assert_int_eq(wgt_uapi_parser_error(p), WGT_UAPI_OK);
	ck_assert_str_eq(wgt_uapi_parser_message(p), "");

	/* Per peer... */
	ck_assert_int_eq(feed_repeat(p, pub, 1), 0);
	ck_assert_int_eq(feed_repeat(p, ip, WGT_UAPI_MAX_ALLOWEDIPS_PER_PEER), 0);
	ck_assert_int_eq(feed_repeat(p, ip, 1), -ENOSPC);
	assert_failed(p, -ENOSPC, WGT_UAPI_ERR_TOO_MANY_ALLOWEDIPS_PEER);
	/* ...and per set: full peers up to the set cap, then one more. */
	ck_assert_uint_eq(WGT_UAPI_MAX_ALLOWEDIPS % WGT_UAPI_MAX_ALLOWEDIPS_PER_PEER, 0);
	for (i = 0; i < WGT_UAPI_MAX_ALLOWEDIPS / WGT_UAPI_MAX_ALLOWEDIPS_PER_PEER; i++) {
		ck_assert_int_eq(feed_repeat(p, pub, 1), 0);
		ck_assert_int_eq(feed_repeat(p, ip, WGT_UAPI_MAX_ALLOWEDIPS_PER_PEER), 0);
	}
	ck_assert_int_eq(feed_repeat(p, pub, 1), 0);
	ck_assert_int_eq(feed_repeat(p, ip, 1), -ENOSPC);
	assert_failed(p, -ENOSPC, WGT_UAPI_ERR_TOO_MANY_ALLOWEDIPS);
	wgt_uapi_parser_free(p);
}
END_TEST

START_TEST(test_set_size_cap)
{
	static char line[WGT_UAPI_MAX_LINE + 1];
	struct wgt_uapi_limits small = { .max_set_bytes = 100 };
	struct wgt_uapi_parser *p = wgt_uapi_parser_new(NULL);
	struct wgt_uapi_device *dev;

	/* 64 MiB of 4 KiB lines, then one line more. */
	padded(line, "listen_port=", WGT_UAPI_MAX_LINE);
	ck_assert_int_eq(feed_repeat(p, line, WGT_UAPI_MAX_SET_BYTES / (WGT_UAPI_MAX_LINE + 1)), 0);
	ck_assert_int_eq(feed_repeat(p, line, 1), -E2BIG);
	assert_failed(p, -E2BIG, WGT_UAPI_ERR_SET_TOO_BIG);
	wgt_uapi_parser_free(p);

	/* The boundary on a small limit: 100 bytes, newlines and the blank line included. */
	p = wgt_uapi_parser_new(&small);
	ck_assert_int_eq(feed_repeat(p, padded(line, "listen_port=", 59), 1), 0);
	ck_assert_int_eq(feed_repeat(p, padded(line, "fwmark=", 38), 1), 0);
	ck_assert_int_eq(wgt_uapi_parser_line(p, "", 0), 1);
	ck_assert_int_eq(wgt_uapi_parser_finish(p, &dev), 0);
	wgt_uapi_device_free(dev);
	ck_assert_int_eq(feed_repeat(p, padded(line, "listen_port=", 59), 1), 0);
	ck_assert_int_eq(feed_repeat(p, padded(line, "fwmark=", 39), 1), 0);
	ck_assert_int_eq(wgt_uapi_parser_line(p, "", 0), -E2BIG);
	assert_failed(p, -E2BIG, WGT_UAPI_ERR_SET_TOO_BIG);
	ck_assert_int_eq(feed_repeat(p, padded(line, "listen_port=", 59), 1), 0);
	ck_assert_int_eq(feed_repeat(p, padded(line, "fwmark=", 40), 1), -E2BIG);
	assert_failed(p, -E2BIG, WGT_UAPI_ERR_SET_TOO_BIG);
	wgt_uapi_parser_free(p);
}
END_TEST

START_TEST(test_small_limits)
{
	struct wgt_uapi_limits limits = {
		.max_peers = 2, .max_allowedips_per_peer = 2, .max_allowedips = 3,
	};
	struct wgt_uapi_parser *p = wgt_uapi_parser_new(&limits);

	ck_assert_int_eq(feed_repeat(p, "public_key=" PUB1, 3), -ENOSPC);
	ck_assert_str_eq(wgt_uapi_parser_message(p), "line 3: more than 2 peers in one set");
	assert_failed(p, -ENOSPC, WGT_UAPI_ERR_TOO_MANY_PEERS);
	ck_assert_int_eq(feed_repeat(p, "public_key=" PUB1, 1), 0);
	ck_assert_int_eq(feed_repeat(p, "allowed_ip=::/0", 3), -ENOSPC);
	assert_failed(p, -ENOSPC, WGT_UAPI_ERR_TOO_MANY_ALLOWEDIPS_PEER);
	/* replace_allowed_ips drops lines, not the count of them. */
	ck_assert_int_eq(feed_repeat(p, "public_key=" PUB1, 1), 0);
	ck_assert_int_eq(feed_repeat(p, "allowed_ip=::/0", 2), 0);
	ck_assert_int_eq(feed_repeat(p, "replace_allowed_ips=true", 1), 0);
	ck_assert_int_eq(feed_repeat(p, "public_key=" PUB1, 1), 0);
	ck_assert_int_eq(feed_repeat(p, "allowed_ip=::/0", 2), -ENOSPC);
	assert_failed(p, -ENOSPC, WGT_UAPI_ERR_TOO_MANY_ALLOWEDIPS);
	wgt_uapi_parser_free(p);
}
END_TEST

/*
 * The get=1 text for a parsed set, through the view the gateway would
 * build before any handshake or traffic. Checks the set's invariants on the
 * way (format_get() itself refuses bad families and prefix lengths).
 */
static char *get_text(const struct wgt_uapi_device *set)
{
	struct wgt_uapi_get_peer *peers = calloc(set->n_peers + 1, sizeof(*peers));
	struct wgt_uapi_get_device view = {
		.has_private_key = (set->flags & WGT_UAPI_DEV_HAS_PRIVATE_KEY) != 0,
		.listen_port = set->listen_port,
		.fwmark = set->fwmark,
		.peers = peers,
		.n_peers = set->n_peers,
	};
	struct wgt_uapi_buf buf = { 0 };
	char *text;
	size_t i;

	ck_assert_ptr_nonnull(peers);
	ck_assert_uint_le(set->n_peers, set->cap_peers);
	memcpy(view.private_key, set->private_key, 32);
	for (i = 0; i < set->n_peers; i++) {
		const struct wgt_uapi_peer *peer = &set->peers[i];

		ck_assert_uint_le(peer->n_allowed_ips, peer->cap_allowed_ips);
		ck_assert(!(peer->flags & WGT_UAPI_PEER_HAS_ENDPOINT) ||
			  peer->endpoint.sa.sa_family == AF_INET ||
			  peer->endpoint.sa.sa_family == AF_INET6);
		memcpy(peers[i].public_key, peer->public_key, 32);
		memcpy(peers[i].preshared_key, peer->preshared_key, 32);
		peers[i].endpoint = peer->endpoint;
		peers[i].persistent_keepalive_interval = peer->persistent_keepalive;
		peers[i].allowed_ips = peer->allowed_ips;
		peers[i].n_allowed_ips = peer->n_allowed_ips;
	}
	ck_assert_int_eq(wgt_uapi_format_get(&buf, &view), 0);
	text = strdup(buf.data);
	ck_assert_ptr_nonnull(text);
	wgt_uapi_buf_free(&buf);
	free(peers);
	return text;
}

START_TEST(test_feed)
{
	struct wgt_uapi_parser *p = wgt_uapi_parser_new(NULL);
	struct wgt_uapi_device *dev;
	size_t len = strlen(setconf_text), off, used, step;
	char stream[2048];

	/* Byte by byte, then in chunks of every size up to 97. */
	for (step = 1; step < 98; step++) {
		int ret = 0;

		for (off = 0; off < len && !ret; off += used) {
			size_t chunk = len - off < step ? len - off : step;

			ret = wgt_uapi_parser_feed(p, setconf_text + off, chunk, &used);
			ck_assert_uint_le(used, chunk);
		}
		ck_assert_int_eq(ret, 1);
		ck_assert_uint_eq(off, len);
		ck_assert_int_eq(wgt_uapi_parser_finish(p, &dev), 0);
		assert_setconf(dev, true);
		wgt_uapi_device_free(dev);
	}

	/* The bytes after the blank line are the next request's. */
	snprintf(stream, sizeof(stream), "%sget=1\n\n", setconf_text);
	ck_assert_int_eq(wgt_uapi_parser_feed(p, stream, strlen(stream), &used), 1);
	ck_assert_uint_eq(used, len);
	ck_assert_int_eq(wgt_uapi_parser_finish(p, &dev), 0);
	assert_setconf(dev, true);
	wgt_uapi_device_free(dev);

	/* An error stops at the bad line; the parser then refuses everything. */
	ck_assert_int_eq(wgt_uapi_parser_feed(p, "fwmark=1\nbad\nfwmark=2\n", 22, &used), -EPROTO);
	ck_assert_uint_eq(used, 13);
	ck_assert_int_eq(wgt_uapi_parser_feed(p, "fwmark=2\n", 9, &used), -EPROTO);
	ck_assert_uint_eq(used, 0);
	ck_assert_int_eq(wgt_uapi_parser_finish(p, &dev), -EPROTO);
	/* A line after the blank one, through the line interface. */
	ck_assert_int_eq(wgt_uapi_parser_line(p, "", 0), 1);
	ck_assert_int_eq(wgt_uapi_parser_line(p, "fwmark=1", 8), -EPROTO);
	assert_failed(p, -EPROTO, WGT_UAPI_ERR_TRAILING_DATA);
	/* EOF without the blank line: finish() takes what was fed. */
	ck_assert_int_eq(wgt_uapi_parser_feed(p, "fwmark=3\nlisten_port=4", 22, &used), 0);
	ck_assert_uint_eq(used, 22);
	ck_assert_int_eq(wgt_uapi_parser_feed(p, "\n", 1, &used), 0);
	ck_assert_int_eq(wgt_uapi_parser_finish(p, &dev), 0);
	ck_assert_uint_eq(dev->fwmark, 3);
	ck_assert_uint_eq(dev->listen_port, 4);
	wgt_uapi_device_free(dev);
	wgt_uapi_parser_free(p);
	wgt_uapi_device_free(NULL);
	wgt_uapi_parser_free(NULL);
	wgt_uapi_buf_free(NULL);
}
END_TEST

START_TEST(test_error_names)
{
	ck_assert_str_eq(wgt_uapi_error_name(WGT_UAPI_OK), "ok");
	ck_assert_str_eq(wgt_uapi_error_name(WGT_UAPI_ERR_LINE_TOO_LONG), "line_too_long");
	ck_assert_ptr_null(wgt_uapi_error_name(WGT_UAPI_ERR__COUNT));
	ck_assert_ptr_null(wgt_uapi_error_name((enum wgt_uapi_error)-1));
	for (int i = 0; i < WGT_UAPI_ERR__COUNT; i++)
		ck_assert_ptr_nonnull(wgt_uapi_error_name((enum wgt_uapi_error)i));
}
END_TEST

START_TEST(test_get_format)
{
	/* IPv6 text as wireguard-go v0.0.20220316 printed these (Go's netip, RFC 5952). */
	static const struct {
		const char *in, *out;
	} v6[] = {
		{ "2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1" }, { "::102:304", "::102:304" },
		{ "2001:DB8:0:1:0:0:0:0", "2001:db8:0:1::" }, { "1:0:2:0:0:3:0:0", "1:0:2::3:0:0" },
		{ "::", "::" }, { "::1", "::1" }, { "::ffff:1.2.3.4", "::ffff:1.2.3.4" },
		{ "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8" }, { "1:0:3:4:5:6:7:8", "1:0:3:4:5:6:7:8" },
		{ "fe80::", "fe80::" }, { "0:0:1::", "0:0:1::" },
		{ "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff" },
	};
	struct wgt_uapi_allowedip ips[sizeof(v6) / sizeof(v6[0]) + 1];
	struct wgt_uapi_get_peer peers[2];
	struct wgt_uapi_get_device dev;
	struct wgt_uapi_buf buf = { 0 };
	char want[4096];
	size_t i, n = 0;

	memset(ips, 0, sizeof(ips));
	for (i = 0; i < sizeof(ips) / sizeof(ips[0]); i++) {
		ips[i].family = i < sizeof(v6) / sizeof(v6[0]) ? AF_INET6 : AF_INET;
		ck_assert_int_eq(inet_pton(ips[i].family, ips[i].family == AF_INET6 ? v6[i].in :
							  "10.2.3.4", ips[i].addr), 1);
		ips[i].cidr = (uint8_t)(ips[i].family == AF_INET6 ? 128 - i : 16);
	}
	memset(&peers, 0, sizeof(peers));
	unhex(peers[0].public_key, PUB1, 32);
	unhex(peers[0].preshared_key, PSK1, 32);
	peers[0].endpoint.in4 = (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons(51820),
						      .sin_addr.s_addr = htonl(0xc0000201) };
	peers[0].last_handshake_time_sec = 1700000000;
	peers[0].last_handshake_time_nsec = 999999999;
	peers[0].rx_bytes = UINT64_MAX;
	peers[0].tx_bytes = 12345;
	peers[0].persistent_keepalive_interval = 25;
	peers[0].allowed_ips = ips;
	peers[0].n_allowed_ips = sizeof(ips) / sizeof(ips[0]);
	unhex(peers[1].public_key, PUB2, 32);
	peers[1].endpoint.in6 = (struct sockaddr_in6){ .sin6_family = AF_INET6, .sin6_port = htons(1),
						       .sin6_scope_id = 7 };
	inet_pton(AF_INET6, "fe80::1", &peers[1].endpoint.in6.sin6_addr);
	memset(&dev, 0, sizeof(dev));
	dev.has_private_key = true;
	unhex(dev.private_key, PRIV, 32);
	dev.listen_port = 51820;
	dev.fwmark = 4294967295U;
	dev.peers = peers;
	dev.n_peers = 2;

	n += (size_t)snprintf(want + n, sizeof(want) - n,
		"private_key=" PRIV "\nlisten_port=51820\nfwmark=4294967295\n"
		"public_key=" PUB1 "\npreshared_key=" PSK1 "\nprotocol_version=1\n"
		"endpoint=192.0.2.1:51820\nlast_handshake_time_sec=1700000000\n"
		"last_handshake_time_nsec=999999999\ntx_bytes=12345\n"
		"rx_bytes=18446744073709551615\npersistent_keepalive_interval=25\n");
	for (i = 0; i < sizeof(v6) / sizeof(v6[0]); i++)
		n += (size_t)snprintf(want + n, sizeof(want) - n, "allowed_ip=%s/%zu\n",
				      v6[i].out, 128 - i);
	n += (size_t)snprintf(want + n, sizeof(want) - n,
		"allowed_ip=10.2.3.4/16\n"
		"public_key=" PUB2 "\npreshared_key=" ZERO "\nprotocol_version=1\n"
		"endpoint=[fe80::1%%7]:1\nlast_handshake_time_sec=0\n"
		"last_handshake_time_nsec=0\ntx_bytes=0\nrx_bytes=0\n"
		"persistent_keepalive_interval=0\nerrno=0\n\n");
	ck_assert_uint_lt(n, sizeof(want));
	ck_assert_int_eq(wgt_uapi_format_get(&buf, &dev), 0);
	ck_assert_str_eq(buf.data, want);
	ck_assert_uint_eq(buf.len, n);

	/* Appends; an empty device is only the status. */
	memset(&dev, 0, sizeof(dev));
	dev.has_private_key = true; /* ...but all zero: not written */
	ck_assert_int_eq(wgt_uapi_format_get(&buf, &dev), 0);
	ck_assert_str_eq(buf.data + n, "errno=0\n\n");

	/* A malformed view writes nothing. */
	dev.peers = peers;
	dev.n_peers = 1;
	ips[0].cidr = 129;
	ck_assert_int_eq(wgt_uapi_format_get(&buf, &dev), -EINVAL);
	ips[0].cidr = 0;
	ips[1].family = AF_UNIX;
	ck_assert_int_eq(wgt_uapi_format_get(&buf, &dev), -EINVAL);
	ips[1].family = AF_INET6;
	peers[0].endpoint.sa.sa_family = AF_UNIX;
	ck_assert_int_eq(wgt_uapi_format_get(&buf, &dev), -EINVAL);
	ck_assert_uint_eq(buf.len, n + 9);

	ck_assert_int_eq(wgt_uapi_format_errno(&buf, -EINVAL), 0);
	ck_assert_str_eq(buf.data + n + 9, "errno=-22\n\n");
	wgt_uapi_buf_free(&buf);
	ck_assert_ptr_null(buf.data);
	ck_assert_uint_eq(buf.len, 0);
}
END_TEST

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint32_t rnd(uint32_t n)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state % n);
}

/* A line that is often valid or nearly so: a real key, a value meant for it or not, a few mutations. */
static size_t random_line(char *line, size_t cap)
{
	static const struct {
		const char *key;
		const char *value;
	} pairs[] = {
		{ "private_key", PRIV }, { "private_key", ZERO }, { "listen_port", "51820" },
		{ "listen_port", "0" }, { "fwmark", "4294967295" }, { "replace_peers", "true" },
		{ "public_key", PUB1 }, { "remove", "true" }, { "update_only", "true" },
		{ "preshared_key", PSK1 }, { "endpoint", "192.0.2.1:51820" },
		{ "endpoint", "[2001:db8::1]:51821" }, { "endpoint", "[fe80::1%lo]:1" },
		{ "endpoint", "[fe80::1%1]:65535" }, { "persistent_keepalive_interval", "25" },
		{ "replace_allowed_ips", "true" }, { "allowed_ip", "10.0.0.0/8" },
		{ "allowed_ip", "-10.0.0.0/8" }, { "allowed_ip", "::/0" },
		{ "allowed_ip", "fd00::1/128" }, { "allowed_ip", "::ffff:1.2.3.4/96" },
		{ "protocol_version", "1" }, { "", "" }, { "set", "1" }, { "errno", "0" },
		{ "endpoint", "example.com:1" }, { "allowed_ip", "1.2.3.4" },
	};
	const size_t n = sizeof(pairs) / sizeof(pairs[0]);
	size_t len, i, mutations, k = rnd((uint32_t)n);
	const char *value = rnd(4) ? pairs[k].value : pairs[rnd((uint32_t)n)].value;

	if (rnd(16) == 0) {
		len = rnd((uint32_t)cap);
		for (i = 0; i < len; i++)
			line[i] = (char)rnd(256);
		return len;
	}
	len = (size_t)snprintf(line, cap, "%s=%s", pairs[k].key, value);
	if (len >= cap)
		len = cap - 1;
	mutations = rnd(6) ? 0 : 1 + rnd(3);
	for (i = 0; i < mutations && len; i++) {
		size_t at = rnd((uint32_t)len);

		switch (rnd(3)) {
		case 0:
			line[at] = (char)rnd(256);
			break;
		case 1:
			memmove(line + at, line + at + 1, len - at - 1);
			len--;
			break;
		default:
			if (len + 1 < cap) {
				memmove(line + at + 1, line + at, len - at);
				line[at] = "0:/.[]%-=fF9"[rnd(12)];
				len++;
			}
		}
	}
	return len;
}

START_TEST(test_random_lines)
{
	struct wgt_uapi_parser *p = wgt_uapi_parser_new(NULL);
	unsigned ok = 0, failed = 0, iter;
	char line[160];

	for (iter = 0; iter < 20000; iter++) {
		struct wgt_uapi_device *dev = NULL;
		unsigned n = 1 + rnd(10), i;
		int ret = rnd(2) ? wgt_uapi_parser_line(p, "public_key=" PUB2, 75) : 0;

		for (i = 0; i < n && ret >= 0; i++) {
			size_t len = random_line(line, sizeof(line)), used;

			if (iter & 1) {
				line[len] = '\n';
				ret = wgt_uapi_parser_feed(p, line, len + 1, &used);
				ck_assert_uint_le(used, len + 1);
			} else {
				ret = wgt_uapi_parser_line(p, line, len);
			}
			ck_assert(ret == 0 || ret == 1 || ret == -EPROTO || ret == -EINVAL);
			if (ret < 0) {
				ck_assert_int_ne(wgt_uapi_parser_error(p), WGT_UAPI_OK);
				ck_assert_uint_gt(strlen(wgt_uapi_parser_message(p)), 0);
				ck_assert_ptr_null(strstr(wgt_uapi_parser_message(p), &PRIV[8]));
			}
		}
		if (wgt_uapi_parser_finish(p, &dev)) {
			failed++;
			continue;
		}
		/* Whatever parsed is well-formed and formats. */
		ok++;
		free(get_text(dev));
		wgt_uapi_device_free(dev);
	}
	ck_assert_uint_gt(ok, 500);
	ck_assert_uint_gt(failed, 1000);
	wgt_uapi_parser_free(p);
}
END_TEST

static Suite *uapi_suite(void)
{
	Suite *s = suite_create("uapi");
	TCase *set = tcase_create("set");
	TCase *caps = tcase_create("caps");
	TCase *get = tcase_create("get");
	TCase *robust = tcase_create("robustness");

	tcase_add_test(set, test_setconf);
	tcase_add_test(set, test_wg_set_shapes);
	tcase_add_test(set, test_peer_flags_and_order);
	tcase_add_loop_test(set, test_accepts, 0, sizeof(accepts) / sizeof(accepts[0]));
	tcase_add_loop_test(set, test_rejects, 0, sizeof(rejects) / sizeof(rejects[0]));
	tcase_add_test(set, test_booleans);
	tcase_add_test(set, test_bad_keys);
	tcase_add_test(set, test_messages);
	tcase_add_test(set, test_feed);
	tcase_add_test(set, test_error_names);
	suite_add_tcase(s, set);

	tcase_set_timeout(caps, 120);
	tcase_add_test(caps, test_line_cap);
	tcase_add_test(caps, test_count_caps);
	tcase_add_test(caps, test_set_size_cap);
	tcase_add_test(caps, test_small_limits);
	suite_add_tcase(s, caps);

	tcase_add_test(get, test_get_format);
	suite_add_tcase(s, get);

	tcase_set_timeout(robust, 120);
	tcase_add_test(robust, test_random_lines);
	suite_add_tcase(s, robust);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(uapi_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
