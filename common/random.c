/* SPDX-License-Identifier: MIT */
/* getrandom(2) wrappers. */
#include "common/random.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/random.h>

int wgt_random_bytes(void *buf, size_t len)
{
	unsigned char *p = buf;

	while (len) {
		ssize_t n = getrandom(p, len, 0);

		if (n == -1) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

uint32_t wgt_random_u32(void)
{
	uint32_t v;

	/* getrandom() on a booted Linux only fails for bad arguments. */
	if (wgt_random_bytes(&v, sizeof(v)) < 0)
		abort();
	return v;
}
