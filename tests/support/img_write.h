/* img_write.h - test support: PNG and JPEG files written with libpng and
 * libjpeg in any colour type, for the image decoder and `images` suites.
 *
 *     unsigned char px[2 * 2 * 3] = {...};        // interleaved rows
 *     tc_write_png(path, 2, 2, PNG_COLOR_TYPE_RGB, 8, px, NULL, 0);
 *     tc_write_jpeg(path, 2, 2, 3, px, 95);
 */
#ifndef DGM_TEST_IMG_WRITE_H
#define DGM_TEST_IMG_WRITE_H

#include <stddef.h>

/* A PNG of w x h: `px` holds the rows as libpng takes them (16-bit
 * samples big-endian); palette (n_palette RGB triples) for palette
 * images. A failure fails the test. */
void tc_write_png(const char *path, int w, int h, int color_type, int bit_depth,
                  const unsigned char *px, const unsigned char *palette,
                  int n_palette);
/* A baseline JPEG of w x h with 1 or 3 components at `quality`. */
void tc_write_jpeg(const char *path, int w, int h, int comps,
                   const unsigned char *px, int quality);

#endif
