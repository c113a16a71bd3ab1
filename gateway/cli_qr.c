/* SPDX-License-Identifier: MIT */
/* A client configuration as a QR code: UTF-8 half blocks for a terminal, or a PNG file. */
#include "gateway/cli_qr.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <png.h>
#include <qrencode.h>

/*
 * The code of `text` (byte mode, error correction level L as the WireGuard
 * apps' own exporters use: a config with a key is ~300 bytes, version 10 or so).
 */
static int encode(const char *text, QRcode **ret_qr)
{
	QRcode *qr;

	errno = 0;
	qr = QRcode_encodeString8bit(text, 0, QR_ECLEVEL_L);
	if (!qr)
		return errno ? -errno : -EINVAL;
	*ret_qr = qr;
	return 0;
}

/* The data holds the client's private key: wipe it before libqrencode frees it. */
static void qr_free(QRcode *qr)
{
	if (!qr)
		return;
	OPENSSL_cleanse(qr->data, (size_t)qr->width * (size_t)qr->width);
	QRcode_free(qr);
}

/* Module (x, y), quiet zone included in the coordinates: true when dark. */
static bool dark(const QRcode *qr, int x, int y)
{
	x -= WGT_QR_QUIET_ZONE;
	y -= WGT_QR_QUIET_ZONE;
	if (x < 0 || y < 0 || x >= qr->width || y >= qr->width)
		return false;
	return qr->data[y * qr->width + x] & 1;
}

int wgt_cli_qr_print(FILE *f, const char *text)
{
	static const char *const cell[4] = {
		/* index: top light << 1 | bottom light */
		" ", "\u2584", "\u2580", "\u2588",
	};
	QRcode *qr;
	int x, y, size, r;

	r = encode(text, &qr);
	if (r)
		return r;
	size = qr->width + 2 * WGT_QR_QUIET_ZONE;
	for (y = 0; y < size; y += 2) {
		for (x = 0; x < size; x++) {
			/* Past the last row (odd size) is more quiet zone: light. */
			bool bottom_light = y + 1 >= size || !dark(qr, x, y + 1);

			fputs(cell[!dark(qr, x, y) << 1 | bottom_light], f);
		}
		fputc('\n', f);
	}
	qr_free(qr);
	return ferror(f) ? -EIO : 0;
}

int wgt_cli_qr_png(const char *path, const char *text)
{
	png_image image;
	QRcode *qr = NULL;
	uint8_t *px = NULL;
	size_t side, n;
	FILE *f = NULL;
	int fd, x, y, r;

	r = encode(text, &qr);
	if (r)
		return r;
	side = (size_t)(qr->width + 2 * WGT_QR_QUIET_ZONE) * WGT_QR_PNG_SCALE;
	n = side * side;
	px = malloc(n);
	if (!px) {
		r = -ENOMEM;
		goto out;
	}
	for (y = 0; (size_t)y < side; y++)
		for (x = 0; (size_t)x < side; x++)
			px[(size_t)y * side + (size_t)x] =
				dark(qr, x / WGT_QR_PNG_SCALE, y / WGT_QR_PNG_SCALE) ? 0 : 255;
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0600);
	if (fd == -1) {
		r = -errno;
		goto out;
	}
	f = fdopen(fd, "wb");
	if (!f) {
		r = -errno;
		close(fd);
		goto out;
	}
	memset(&image, 0, sizeof(image));
	image.version = PNG_IMAGE_VERSION;
	image.width = (png_uint_32)side;
	image.height = (png_uint_32)side;
	image.format = PNG_FORMAT_GRAY;
	r = png_image_write_to_stdio(&image, f, 0, px, (png_int_32)side, NULL) ? 0 : -EIO;
	png_image_free(&image);
	if (fclose(f) == EOF && !r)
		r = -errno;
out:
	if (px)
		OPENSSL_cleanse(px, n);
	free(px);
	qr_free(qr);
	return r;
}
