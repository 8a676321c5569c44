/*
 * qrimg: a QR code of a text as PNG (libpng) or SVG, through libqrencode.
 * stbctl draws the published payload appvetd returns; the daemon never
 * links an image library.  Error correction M, the mode libqrencode picks
 * (alphanumeric for the base45 payload), a 4-module quiet zone.
 */
#ifndef STB_QRIMG_H
#define STB_QRIMG_H

#include <stddef.h>

#include "err.h"

#define QRIMG_TEXT_MAX 2048 /* characters */
#define QRIMG_SCALE    8    /* PNG pixels per module */
#define QRIMG_MARGIN   4    /* modules of quiet zone */

/* Writes text (NUL-terminated, at most QRIMG_TEXT_MAX) as a QR code to
 * path (replaced; 0644), 8-bit grey PNG.  BAD_REQUEST for an empty or too
 * long text, INTERNAL when encoding or writing fails (the message names
 * the path and errno). */
int qrimg_write_png(const char *text, const char *path, err_t *err);
/* The same as SVG: one <path> of unit squares, viewBox in modules. */
int qrimg_write_svg(const char *text, const char *path, err_t *err);

#endif
