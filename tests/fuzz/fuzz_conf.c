/* SPDX-License-Identifier: MIT */
/* libFuzzer harness for the config-file parser: a consistent struct or errors, never a key in a message. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/conf.h"
#include "config/conf_pvt.h"
#include "fuzz.h"

#define NAME "fuzz.conf"

/* Key files the inputs may name: "k" (0600, valid), "open" (0644), "bad" (0600, not a key). */
static char dir[64];

static void write_key_file(const char *name, const char *text, mode_t mode)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (!f || fputs(text, f) < 0 || fclose(f) || chmod(path, mode))
		abort();
}

static void remove_dir(void)
{
	static const char *const names[] = { "k", "open", "bad" };
	char path[128];
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		unlink(path);
	}
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	snprintf(dir, sizeof(dir), "/tmp/wgt-fuzz-conf.XXXXXX");
	if (!mkdtemp(dir))
		abort();
	write_key_file("k", "mB8rMRsXYR1XhCbrIIfSeRzNZ7xGd2qlV3g1+P0ezXE=\n", 0600);
	write_key_file("open", "WIFf3jmNqyIQLZOyDJmq2sakbuTGPws1hpcgrvGezXk=\n", 0644);
	write_key_file("bad", "not a key\n", 0600);
	atexit(remove_dir);
	return 0;
}

/* The seed corpus: one file of each shape (tests/fuzz/corpus/conf/). */
static const struct {
	const char *name;
	const char *text;
} seed_texts[] = {
	{ "full",
	  "# wg0\n[Interface]\nPrivateKey = QBrxKmNGXDxg0eSH8ii2R2pJdMENj0UZnzWrn81i3WA=\n"
	  "ListenPort = 51820\nFwMark = 0x1234\nAddress = 10.0.0.1/24, fd00::1/64\n"
	  "Address = 10.0.1.1\nMTU = 1420\nTable = 1234\nDNS = 1.1.1.1\nPostUp = echo %i\n\n"
	  "[Peer]\n# Name = alice\nPublicKey = iF7o8k/qsZ3WQMDzJfAc+T12CyDvIzlVOgMggyFuPUg=\n"
	  "PresharedKey = WIFf3jmNqyIQLZOyDJmq2sakbuTGPws1hpcgrvGezXk=\n"
	  "AllowedIPs = 10.0.0.2/32 , fd00::2/128\nAllowedIPs = 192.168.7.0/24\n"
	  "Endpoint = [2001:db8::1]:51821\nPersistentKeepalive = 25\n" },
	{ "key-files",
	  "[Interface]\nPrivateKeyFile = k\n[Peer]\n"
	  "PublicKey = iF7o8k/qsZ3WQMDzJfAc+T12CyDvIzlVOgMggyFuPUg=\nPresharedKeyFile = k\n" },
	{ "key-file-open", "[Interface]\nPrivateKeyFile = open\n" },
	{ "key-file-bad", "[Interface]\nPrivateKeyFile = bad\n" },
	{ "lexical",
	  "\t# c\r\n  [ interface ]  # d\r\nprivatekey=QBrxKmNGXDxg0eSH8ii2R2pJdMENj0UZnzWrn81i3WA=\r\n"
	  "fwmark = OFF\r\ntable=AUTO\r\n[PEER]\r\n#NAME=bob\r\n"
	  "publickey = iF7o8k/qsZ3WQMDzJfAc+T12CyDvIzlVOgMggyFuPUg=\r\n"
	  "allowedips=10.1.0.0/16,10.2.0.0/16 ,  10.3.0.0/16\r\nALLOWEDIPS =\r\n"
	  "persistentkeepalive = off\r\nendpoint = [fe80::1%3]:7" },
	{ "endpoints",
	  "[Peer]\nPublicKey = iF7o8k/qsZ3WQMDzJfAc+T12CyDvIzlVOgMggyFuPUg=\n"
	  "Endpoint = vpn.example.com:443\n[Peer]\n"
	  "PublicKey = WIFf3jmNqyIQLZOyDJmq2sakbuTGPws1hpcgrvGezXk=\nEndpoint = 192.0.2.7:51820\n"
	  "[Peer]\nPublicKey = QBrxKmNGXDxg0eSH8ii2R2pJdMENj0UZnzWrn81i3WA=\n"
	  "Endpoint = [fe80::1%eth0]:1\n" },
	{ "duplicate-peers",
	  "[Peer]\nPublicKey = iF7o8k/qsZ3WQMDzJfAc+T12CyDvIzlVOgMggyFuPUg=\n[Peer]\n"
	  "PublicKey = iF7o8k/qsZ3WQMDzJfAc+T12CyDvIzlVOgMggyFuPUg=\n[Peer]\nAllowedIPs = ::/0\n" },
	{ "values",
	  "[Interface]\nListenPort = 65536\nFwMark = 0x100000000\nMTU = 1279\nAddress = fd00::1\n"
	  "Table = main\nAddress = 10.0.0.1/33,\nSaveConfig = true\n" },
	{ "sections",
	  "ListenPort = 1\n[Interface]\n[Interface]\n[Foo]\nx = y\n[Peer\n[Interface] x\n"
	  "Bogus = 1\n" },
	{ "names",
	  "[Peer]\n# Name = \"q\"\nPublicKey = iF7o8k/qsZ3WQMDzJfAc+T12CyDvIzlVOgMggyFuPUg=\n"
	  "# Name = a\n# Name = b\n# Named = c\n" },
	{ "pasted-key",
	  "[Interface]\nQBrxKmNGXDxg0eSH8ii2R2pJdMENj0UZnzWrn81i3WA=\n"
	  "PrivateKeyFile = QBrxKmNGXDxg0eSH8ii2R2pJdMENj0UZnzWrn81i3WA=\n" },
	{ "empty", "" },
};

size_t fuzz_seeds(struct fuzz_seed *seeds)
{
	size_t i, n = sizeof(seed_texts) / sizeof(seed_texts[0]);

	for (i = 0; i < n; i++) {
		size_t len = strlen(seed_texts[i].text);

		snprintf(seeds[i].name, sizeof(seeds[i].name), "%s", seed_texts[i].name);
		seeds[i].data = malloc(len + 1);
		if (!seeds[i].data)
			abort();
		memcpy(seeds[i].data, seed_texts[i].text, len);
		seeds[i].len = len;
	}
	return n;
}

struct seen {
	size_t errors, warnings;
};

/* Every line names the file first and never holds a piece of a key. */
static void check_message(void *arg, enum wgt_conf_severity sev, const char *msg)
{
	struct seen *s = arg;
	size_t name_len = strlen(NAME);

	FUZZ_CHECK(!strncmp(msg, NAME ":", name_len + 1));
	FUZZ_CHECK(!wgt_conf_has_key_run(msg + name_len, strlen(msg + name_len)));
	FUZZ_CHECK(!strchr(msg, '\n'));
	if (sev == WGT_CONF_ERROR)
		s->errors++;
	else
		s->warnings++;
}

/* What a successful parse promises gateway/. */
static void check_conf(const struct wgt_conf *conf)
{
	const struct wgt_uapi_device *wg = &conf->wg;
	size_t i, j;

	FUZZ_CHECK(!(wg->flags & WGT_UAPI_DEV_REPLACE_PEERS));
	FUZZ_CHECK(wg->n_peers <= WGT_CONF_MAX_PEERS);
	FUZZ_CHECK(conf->n_addresses <= WGT_CONF_MAX_ADDRESSES);
	FUZZ_CHECK(!(conf->flags & WGT_CONF_HAS_MTU) || (conf->mtu >= 68 && conf->mtu <= 65535));
	FUZZ_CHECK(conf->table != WGT_CONF_TABLE_ID || conf->table_id);
	for (i = 0; i < conf->n_addresses; i++) {
		const struct wgt_conf_address *a = &conf->addresses[i];

		FUZZ_CHECK(a->family == AF_INET || a->family == AF_INET6);
		FUZZ_CHECK(a->prefix <= (a->family == AF_INET ? 32 : 128));
	}
	for (i = 0; i < wg->n_peers; i++) {
		const struct wgt_uapi_peer *p = &wg->peers[i];
		const struct wgt_conf_peer_meta *m = &conf->meta[i];

		FUZZ_CHECK(!(p->flags & (WGT_UAPI_PEER_REPLACE_ALLOWED_IPS | WGT_UAPI_PEER_REMOVE |
					 WGT_UAPI_PEER_UPDATE_ONLY)));
		FUZZ_CHECK(strlen(m->name) < WGT_CONF_NAME_LEN);
		FUZZ_CHECK(!m->name[0] || !wgt_conf_check_name(m->name, strlen(m->name)));
		FUZZ_CHECK(strlen(m->endpoint_host) < WGT_CONF_HOST_LEN);
		if (p->flags & WGT_UAPI_PEER_HAS_ENDPOINT) {
			int family = p->endpoint.sa.sa_family;

			FUZZ_CHECK(family == AF_INET || family == AF_INET6);
			FUZZ_CHECK(m->endpoint_host[0] && m->endpoint_port);
		}
		FUZZ_CHECK(!m->endpoint_host[0] || m->endpoint_port);
		FUZZ_CHECK(p->n_allowed_ips <= WGT_UAPI_MAX_ALLOWEDIPS_PER_PEER);
		for (j = 0; j < p->n_allowed_ips; j++) {
			const struct wgt_uapi_allowedip *ip = &p->allowed_ips[j];

			FUZZ_CHECK(ip->family == AF_INET || ip->family == AF_INET6);
			FUZZ_CHECK(ip->cidr <= (ip->family == AF_INET ? 32 : 128));
			FUZZ_CHECK(!ip->remove);
		}
		for (j = 0; j < i; j++)
			FUZZ_CHECK(memcmp(p->public_key, wg->peers[j].public_key, WGT_UAPI_KEY_LEN));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wgt_conf *conf = NULL;
	struct seen seen = { 0 };
	int r;

	r = wgt_conf_parse_text(NAME, dir, (const char *)data, size, check_message, &seen, &conf);
	FUZZ_CHECK(r == 0 || r == -EINVAL || r == -ENOMEM);
	if (r) {
		/* A failure always says why; no configuration comes out. */
		FUZZ_CHECK(seen.errors > 0);
		FUZZ_CHECK(!conf);
		return 0;
	}
	FUZZ_CHECK(!seen.errors);
	check_conf(conf);
	wgt_conf_free(conf);
	return 0;
}
