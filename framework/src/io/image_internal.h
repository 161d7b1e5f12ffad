/* image_internal.h - the PNG and JPEG decoders behind dgm_image_decode
 * (image_read.c). Each decodes data[0..len) to 8-bit interleaved pixels
 * of 1 (grey), 2 (grey + alpha), 3 (RGB) or 4 (RGBA) channels, refusing
 * a declared size over the limits before allocating anything for the
 * pixels; library errors become DGM_EFORMAT messages naming `name`. On
 * success out->pixels is malloc'ed. */
#ifndef DGM_IMAGE_INTERNAL_H
#define DGM_IMAGE_INTERNAL_H

#include <stddef.h>

#include "dgm/io.h"

int dgm__png_decode(const void *data, size_t len, const char *name,
                    dgm_image *out);
int dgm__jpeg_decode(const void *data, size_t len, const char *name,
                     dgm_image *out);
/* DGM_EFORMAT when w x h is empty or over the limits of dgm/io.h
 * (image_size.c). */
int dgm__image_check_size(const char *name, const char *fmt, uint64_t w,
                          uint64_t h);

#endif
