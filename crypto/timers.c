/* SPDX-License-Identifier: MIT */
/* Placeholder: implementation in progress. */
extern int wgt_placeholder_timers;
