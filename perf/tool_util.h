/* SPDX-License-Identifier: MIT */
/*
 * Helpers the perf/ and tests/ tools share (wgate-loadgen, wgt-flood,
 * wgt_probe): command-line values and the Internet checksum. Each parser
 * returns 0 or -EINVAL and writes its output only on success.
 */
#ifndef WGT_PERF_TOOL_UTIL_H
#define WGT_PERF_TOOL_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "common/endpoint.h"
#include "crypto/messages.h"

/*
 * A key as `wg genkey`/`wg pubkey` print it: 44 base64 characters, the last
 * a single '='. EVP_DecodeBlock does not strip the padding, so a valid key
 * decodes to 33 bytes of which the last is zero. The decoded copy is wiped.
 */
int wgt_tool_parse_key(uint8_t key[WGT_KEY_LEN], const char *b64);

/* A decimal number from min to max, without a sign. */
int wgt_tool_parse_u64(uint64_t *ret, const char *s, uint64_t min, uint64_t max);

/* "A.B.C.D:PORT" or "[v6]:PORT", the port from 1 to 65535. */
int wgt_tool_parse_endpoint(union wgt_sockaddr *ep, const char *s);

/* RFC 1071 over an even or odd number of bytes, in host order; a correct packet sums to 0. */
uint16_t wgt_tool_inet_csum(const uint8_t *p, size_t len);

#endif
