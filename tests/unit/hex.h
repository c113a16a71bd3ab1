/* SPDX-License-Identifier: MIT */
/* Hex decoding for known-answer vectors written inline in the suites. */
#ifndef WGT_TESTS_HEX_H
#define WGT_TESTS_HEX_H

#include <check.h>
#include <stdint.h>
#include <string.h>

static inline int nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	ck_abort_msg("bad hex digit '%c'", c);
	return -1;
}

/* Decodes exactly n bytes; the string must be 2n lowercase hex digits. */
static inline void unhex(uint8_t *out, const char *hex, size_t n)
{
	ck_assert_uint_eq(strlen(hex), 2 * n);
	for (size_t i = 0; i < n; i++)
		out[i] = (uint8_t)(nibble(hex[2 * i]) << 4 | nibble(hex[2 * i + 1]));
}

#endif
