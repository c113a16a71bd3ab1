/* SPDX-License-Identifier: MIT */
/* Placeholder. */
void bench_allowedips(void);
void bench_allowedips(void)
{
}
