/* SPDX-License-Identifier: MIT */
/* Placeholder. */
int main(void)
{
	return 0;
}
