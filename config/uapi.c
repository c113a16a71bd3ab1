/* SPDX-License-Identifier: MIT */
/* UAPI plumbing shared by set and get: error names, freeing a parsed set, whole-text parsing. */
#include "config/uapi.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/compiler.h"

static const char *const error_names[WGT_UAPI_ERR__COUNT] = {
	[WGT_UAPI_OK] = "ok",
	[WGT_UAPI_ERR_SYNTAX] = "syntax",
	[WGT_UAPI_ERR_UNKNOWN_KEY] = "unknown_key",
	[WGT_UAPI_ERR_INVALID_VALUE] = "invalid_value",
	[WGT_UAPI_ERR_LINE_TOO_LONG] = "line_too_long",
	[WGT_UAPI_ERR_SET_TOO_BIG] = "set_too_big",
	[WGT_UAPI_ERR_TOO_MANY_PEERS] = "too_many_peers",
	[WGT_UAPI_ERR_TOO_MANY_ALLOWEDIPS_PEER] = "too_many_allowedips_peer",
	[WGT_UAPI_ERR_TOO_MANY_ALLOWEDIPS] = "too_many_allowedips",
	[WGT_UAPI_ERR_TRAILING_DATA] = "trailing_data",
	[WGT_UAPI_ERR_NOMEM] = "nomem",
};

const char *wgt_uapi_error_name(enum wgt_uapi_error err)
{
	if ((unsigned)err >= WGT_UAPI_ERR__COUNT)
		return NULL;
	return error_names[err];
}

void wgt_uapi_device_free(struct wgt_uapi_device *dev)
{
	size_t i;

	if (!dev)
		return;
	for (i = 0; i < dev->n_peers; i++)
		free(dev->peers[i].allowed_ips);
	if (dev->peers) {
		explicit_bzero(dev->peers, WGT_MAX(dev->cap_peers, dev->n_peers) * sizeof(*dev->peers));
		free(dev->peers);
	}
	explicit_bzero(dev, sizeof(*dev));
	free(dev);
}

static void copy_message(char *errbuf, size_t errbuf_len, const char *msg)
{
	if (errbuf && errbuf_len)
		snprintf(errbuf, errbuf_len, "%s", msg);
}

int wgt_uapi_parse_set(const char *text, size_t len, struct wgt_uapi_device **ret_dev,
		       char *errbuf, size_t errbuf_len)
{
	struct wgt_uapi_parser *p;
	size_t off = 0;
	int ret = 0;

	copy_message(errbuf, errbuf_len, "");
	p = wgt_uapi_parser_new(NULL);
	if (!p) {
		copy_message(errbuf, errbuf_len, "out of memory");
		return -ENOMEM;
	}
	/*
	 * A last line without '\n' still counts, as with Go's bufio.Scanner;
	 * a line after the blank one fails in the parser.
	 */
	while (off < len && ret >= 0) {
		const char *nl = memchr(text + off, '\n', len - off);
		size_t line_len = nl ? (size_t)(nl - (text + off)) : len - off;

		ret = wgt_uapi_parser_line(p, text + off, line_len);
		off += line_len + (nl ? 1 : 0);
	}
	/* The message outlives finish() until the parser sees another line. */
	ret = wgt_uapi_parser_finish(p, ret_dev);
	if (ret < 0)
		copy_message(errbuf, errbuf_len, wgt_uapi_parser_message(p));
	wgt_uapi_parser_free(p);
	return ret;
}
