/* SPDX-License-Identifier: MIT */
/* Placeholder suite: implementation in progress. */
int main(void)
{
	return 77;
}
