/* SPDX-License-Identifier: MIT */
/* libFuzzer harness for the UAPI set parser (lines, raw bytes, whole text) and the get formatter. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/uapi.h"
#include "fuzz.h"

/* A set as `wg setconf` sends it: two peers, PSK, v4 and v6 endpoints, keepalive. */
static const char seed_setconf[] =
	"\x00" /* mode: lines split on newlines, default limits */
	"private_key=e84b5a6d2717c1003a13b431570353dbaca9146cf150c5f8575680feba52027a\n"
	"listen_port=12912\n"
	"replace_peers=true\n"
	"public_key=b85996fecc9c7f1fc6d2572a76eda11d59bcd20be8e543b15ce4bd85a8e75a33\n"
	"preshared_key=188515093e952f5f22e865cef3012e72f8b5f0b598ac0309d5dacce3b70fcf52\n"
	"replace_allowed_ips=true\n"
	"allowed_ip=192.168.4.4/32\n"
	"endpoint=[abcd:23::33%2]:51820\n"
	"public_key=58402e695ba1772b1cc9309755f043251ea77fdcf10fbe63989ceb7e19321376\n"
	"replace_allowed_ips=true\n"
	"allowed_ip=192.168.4.6/32\n"
	"persistent_keepalive_interval=111\n"
	"endpoint=182.122.22.19:3233\n"
	"allowed_ip=-10.0.0.0/8\n"
	"protocol_version=1\n"
	"\n";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	return 0;
}

size_t fuzz_seeds(struct fuzz_seed *seeds)
{
	size_t len = sizeof(seed_setconf) - 1;

	snprintf(seeds[0].name, sizeof(seeds[0].name), "setconf");
	seeds[0].data = malloc(len);
	if (!seeds[0].data)
		abort();
	memcpy(seeds[0].data, seed_setconf, len);
	seeds[0].len = len;
	return 1;
}

/* Formats whatever parsed, as the gateway's get=1 view of it would be. */
static void format(const struct wgt_uapi_device *dev)
{
	struct wgt_uapi_get_peer *peers = calloc(dev->n_peers + 1, sizeof(*peers));
	struct wgt_uapi_get_device view = {
		.has_private_key = (dev->flags & WGT_UAPI_DEV_HAS_PRIVATE_KEY) != 0,
		.listen_port = dev->listen_port,
		.fwmark = dev->fwmark,
		.peers = peers,
		.n_peers = dev->n_peers,
	};
	struct wgt_uapi_buf buf = { 0 };
	size_t i;

	if (!peers)
		return;
	memcpy(view.private_key, dev->private_key, sizeof(view.private_key));
	for (i = 0; i < dev->n_peers; i++) {
		memcpy(peers[i].public_key, dev->peers[i].public_key, WGT_UAPI_KEY_LEN);
		memcpy(peers[i].preshared_key, dev->peers[i].preshared_key, WGT_UAPI_KEY_LEN);
		peers[i].endpoint = dev->peers[i].endpoint;
		peers[i].persistent_keepalive_interval = dev->peers[i].persistent_keepalive;
		peers[i].allowed_ips = dev->peers[i].allowed_ips;
		peers[i].n_allowed_ips = dev->peers[i].n_allowed_ips;
	}
	/* A parsed set always makes a valid view. */
	if (wgt_uapi_format_get(&buf, &view) == -EINVAL)
		abort();
	wgt_uapi_buf_free(&buf);
	free(peers);
}

static void finish(struct wgt_uapi_parser *p)
{
	struct wgt_uapi_device *dev = NULL;

	if (!wgt_uapi_parser_finish(p, &dev))
		format(dev);
	wgt_uapi_device_free(dev);
}

/*
 * The first byte picks the path and the limits: bits 0-1 the interface
 * (lines split on '\n', raw chunks of the size in bits 4-7, or the whole
 * text), bit 2 small limits so the caps are reached. Several sets may
 * follow each other in one input.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct wgt_uapi_limits small = {
		.max_set_bytes = 512, .max_peers = 3,
		.max_allowedips_per_peer = 2, .max_allowedips = 4,
	};
	struct wgt_uapi_parser *p;
	const char *text;
	size_t len, off = 0;
	uint8_t mode;

	if (!size)
		return 0;
	mode = data[0];
	text = (const char *)data + 1;
	len = size - 1;

	if ((mode & 3) == 3) {
		struct wgt_uapi_device *dev = NULL;
		char msg[WGT_UAPI_ERRMSG_LEN];

		if (!wgt_uapi_parse_set(text, len, &dev, msg, sizeof(msg)))
			format(dev);
		wgt_uapi_device_free(dev);
		return 0;
	}

	p = wgt_uapi_parser_new(mode & 4 ? &small : NULL);
	if (!p)
		return 0;
	while (off < len) {
		int ret;

		if ((mode & 3) == 0) {
			const char *nl = memchr(text + off, '\n', len - off);
			size_t line = nl ? (size_t)(nl - (text + off)) : len - off;

			ret = wgt_uapi_parser_line(p, text + off, line);
			off += line + (nl ? 1 : 0);
		} else {
			size_t chunk = 1 + (mode >> 4), used = 0;

			if (chunk > len - off)
				chunk = len - off;
			ret = wgt_uapi_parser_feed(p, text + off, chunk, &used);
			if (used > chunk)
				abort();
			/* After an error nothing is taken: skip the chunk. */
			off += ret < 0 ? chunk : used;
		}
		if (ret < 0 && !wgt_uapi_parser_message(p)[0])
			abort();
		if (ret != 0)
			finish(p);
	}
	finish(p);
	wgt_uapi_parser_free(p);
	return 0;
}
