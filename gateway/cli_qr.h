/* SPDX-License-Identifier: MIT */
/* A client configuration as a QR code: UTF-8 half blocks for a terminal, or a PNG file. */
#ifndef WGT_GATEWAY_CLI_QR_H
#define WGT_GATEWAY_CLI_QR_H

#include <stdio.h>

#define WGT_QR_QUIET_ZONE 4   /* modules of light border on each side (ISO/IEC 18004) */
#define WGT_QR_PNG_SCALE 8    /* pixels per module in the PNG */

/*
 * Writes `text` to `f` as a QR code, two module rows per line of text in
 * UTF-8 half blocks, drawn for a light-on-dark terminal (a light module is
 * a lit cell, as `qrencode -t UTF8` draws it). Returns 0 or -errno.
 */
int wgt_cli_qr_print(FILE *f, const char *text);

/* `text` as a QR code in the PNG file `path` (mode 0600: it holds a key). Returns 0 or -errno. */
int wgt_cli_qr_png(const char *path, const char *text);

#endif
