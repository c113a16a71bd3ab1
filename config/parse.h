/* SPDX-License-Identifier: MIT */
/*
 * Value helpers shared by the config file parser (conf_value.c, conf.c) and
 * the UAPI set parser (uapi_set.c). Values come as (v, len), not
 * NUL-terminated.
 */
#ifndef WGT_CONFIG_PARSE_H
#define WGT_CONFIG_PARSE_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Decimal digits only, like Go's strconv.ParseUint(v, 10, bits): no sign,
 * no space, no base prefix; leading zeros are accepted. Returns 0,
 * -EINVAL (not a number) or -ERANGE (above max).
 */
int wgt_parse_uint(const char *v, size_t len, uint64_t max, uint64_t *ret);

/*
 * Copies an address into a NUL-terminated buffer for inet_pton(). False when
 * empty, too long for any address, or holding a NUL byte.
 */
bool wgt_parse_copy_addr(char out[INET6_ADDRSTRLEN], const char *v, size_t len);

#endif
