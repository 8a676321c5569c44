/* qrimg: QR codes as PNG and SVG files (see qrimg.h). */
#include "qrimg.h"

#include <errno.h>
#include <png.h>
#include <qrencode.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "buf.h"

#define QRIMG_SVG_MAX (4u << 20)

static void
qrimg_puts(buf_t *b, const char *s)
{
	buf_append(b, s, strlen(s)); /* b->failed is checked once at the end */
}

static QRcode *
qrimg_encode(const char *text, err_t *err)
{
	size_t n = strnlen(text, QRIMG_TEXT_MAX + 1);
	QRcode *qr;

	if (n == 0 || n > QRIMG_TEXT_MAX) {
		err_set(err, STB_BAD_REQUEST, "a QR text is 1 to %d characters", QRIMG_TEXT_MAX);
		return NULL;
	}
	/* mode hint 8 with case sensitivity: libqrencode splits the text into
	 * the cheapest segments (alphanumeric for base45) */
	if ((qr = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1)) == NULL)
		err_set(err, STB_INTERNAL, "QR encoding: %s", strerror(errno));
	return qr;
}

/* Opens path's temporary sibling for writing; the caller renames it. */
static FILE *
qrimg_open(const char *path, char *tmp, size_t cap, err_t *err)
{
	FILE *f;

	if ((size_t)snprintf(tmp, cap, "%s.tmp", path) >= cap) {
		err_set(err, STB_BAD_REQUEST, "path too long: %s", path);
		return NULL;
	}
	if ((f = fopen(tmp, "wb")) == NULL)
		err_set(err, STB_INTERNAL, "%s: %s", tmp, strerror(errno));
	return f;
}

static int
qrimg_close(FILE *f, int ok, const char *tmp, const char *path, err_t *err)
{
	int e = 0;

	if (fflush(f) != 0 || ferror(f))
		e = errno ? errno : EIO;
	if (fclose(f) != 0 && e == 0)
		e = errno;
	if (ok && e == 0 && chmod(tmp, 0644) == 0 && rename(tmp, path) == 0)
		return 0;
	if (e == 0)
		e = errno;
	remove(tmp);
	if (!ok)
		return -1; /* err already says why */
	return err_set(err, STB_INTERNAL, "%s: %s", path, strerror(e));
}

static int
qrimg_dark(const QRcode *qr, int x, int y)
{
	return x >= 0 && y >= 0 && x < qr->width && y < qr->width &&
	       (qr->data[(size_t)y * (size_t)qr->width + (size_t)x] & 1);
}

/* The PNG rows through libpng; 0, or -1 after a libpng error. */
static int
qrimg_png_rows(FILE *f, const QRcode *qr, png_bytep row, err_t *err)
{
	int side = (qr->width + 2 * QRIMG_MARGIN) * QRIMG_SCALE;
	png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
	png_infop info = png != NULL ? png_create_info_struct(png) : NULL;

	if (png == NULL || info == NULL) {
		png_destroy_write_struct(&png, &info);
		return err_set(err, STB_INTERNAL, "out of memory");
	}
	if (setjmp(png_jmpbuf(png))) {
		png_destroy_write_struct(&png, &info);
		return err_set(err, STB_INTERNAL, "PNG encoding failed");
	}
	png_init_io(png, f);
	png_set_IHDR(png, info, (png_uint_32)side, (png_uint_32)side, 8, PNG_COLOR_TYPE_GRAY,
	             PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
	png_write_info(png, info);
	for (int y = 0; y < side; y++) {
		int my = y / QRIMG_SCALE - QRIMG_MARGIN;
		for (int x = 0; x < side; x++)
			row[x] = qrimg_dark(qr, x / QRIMG_SCALE - QRIMG_MARGIN, my) ? 0 : 255;
		png_write_row(png, row);
	}
	png_write_end(png, NULL);
	png_destroy_write_struct(&png, &info);
	return 0;
}

int
qrimg_write_png(const char *text, const char *path, err_t *err)
{
	char tmp[4096];
	QRcode *qr;
	png_bytep row;
	FILE *f;
	int rc;

	if ((qr = qrimg_encode(text, err)) == NULL)
		return -1;
	if ((row = malloc((size_t)(qr->width + 2 * QRIMG_MARGIN) * QRIMG_SCALE)) == NULL) {
		QRcode_free(qr);
		return err_set(err, STB_INTERNAL, "out of memory");
	}
	if ((f = qrimg_open(path, tmp, sizeof(tmp), err)) == NULL) {
		free(row);
		QRcode_free(qr);
		return -1;
	}
	rc = qrimg_png_rows(f, qr, row, err);
	rc = qrimg_close(f, rc == 0, tmp, path, err);
	free(row);
	QRcode_free(qr);
	return rc;
}

int
qrimg_write_svg(const char *text, const char *path, err_t *err)
{
	char tmp[4096], cell[48];
	QRcode *qr;
	int side, ok;
	buf_t b;
	FILE *f;

	if ((qr = qrimg_encode(text, err)) == NULL)
		return -1;
	side = qr->width + 2 * QRIMG_MARGIN;
	buf_init(&b, QRIMG_SVG_MAX);
	snprintf(cell, sizeof(cell), "%d", side);
	qrimg_puts(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
	qrimg_puts(&b, "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 ");
	qrimg_puts(&b, cell);
	qrimg_puts(&b, " ");
	qrimg_puts(&b, cell);
	qrimg_puts(&b, "\" shape-rendering=\"crispEdges\">\n<rect width=\"100%\" height=\"100%\" "
	               "fill=\"#fff\"/>\n<path fill=\"#000\" d=\"");
	for (int y = 0; y < qr->width; y++)
		for (int x = 0; x < qr->width; x++)
			if (qrimg_dark(qr, x, y)) {
				int n = snprintf(cell, sizeof(cell), "M%d %dh1v1h-1z",
				                 x + QRIMG_MARGIN, y + QRIMG_MARGIN);
				buf_append(&b, cell, (size_t)n);
			}
	qrimg_puts(&b, "\"/>\n</svg>\n");
	QRcode_free(qr);
	if (b.failed) {
		buf_free(&b);
		return err_set(err, STB_INTERNAL, "SVG larger than %u bytes", QRIMG_SVG_MAX);
	}
	if ((f = qrimg_open(path, tmp, sizeof(tmp), err)) == NULL) {
		buf_free(&b);
		return -1;
	}
	ok = fwrite(b.data, 1, b.len, f) == b.len;
	buf_free(&b);
	if (!ok)
		err_set(err, STB_INTERNAL, "%s: %s", tmp, strerror(errno));
	return qrimg_close(f, ok, tmp, path, err);
}
