/* SPDX-License-Identifier: MIT */
/* Number and address helpers shared by the config file and UAPI parsers. */
#include "config/parse.h"

#include <errno.h>
#include <string.h>

int wgt_parse_uint(const char *v, size_t len, uint64_t max, uint64_t *ret)
{
	uint64_t n = 0;
	size_t i;

	if (!len)
		return -EINVAL;
	for (i = 0; i < len; i++)
		if (v[i] < '0' || v[i] > '9')
			return -EINVAL;
	for (i = 0; i < len; i++) {
		unsigned digit = (unsigned)(v[i] - '0');

		if (n > (max - digit) / 10)
			return -ERANGE;
		n = n * 10 + digit;
	}
	*ret = n;
	return 0;
}

bool wgt_parse_copy_addr(char out[INET6_ADDRSTRLEN], const char *v, size_t len)
{
	if (!len || len >= INET6_ADDRSTRLEN || memchr(v, '\0', len))
		return false;
	memcpy(out, v, len);
	out[len] = '\0';
	return true;
}
