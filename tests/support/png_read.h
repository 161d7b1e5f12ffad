/* png_read.h - test support: decoding a PNG the tests wrote (linked into
 * every test; uses libpng and Check).
 *
 *     tc_image im = tc_png_read(path);
 *     ck_assert_int_eq(im.color_type, PNG_COLOR_TYPE_RGB);
 *     ck_assert_int_eq(tc_png_at(&im, x, y, 0), 255);
 *     free(im.pix);
 */
#ifndef DGM_TEST_PNG_READ_H
#define DGM_TEST_PNG_READ_H

#include <stdint.h>

/* A decoded image: 8-bit, `channels` samples per pixel, rows packed. */
typedef struct tc_image {
    uint32_t w, h;
    int channels, color_type, bit_depth;
    unsigned char *pix; /* malloc'ed; the caller frees */
} tc_image;

/* The PNG at path, decoded (a failed check if it cannot be read). */
tc_image tc_png_read(const char *path);

/* Sample c of pixel (x, y). */
int tc_png_at(const tc_image *im, uint32_t x, uint32_t y, int c);

#endif
