/* png_read.c - see png_read.h. */
#include "png_read.h"

#include <check.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>

tc_image tc_png_read(const char *path)
{
    FILE *fp = fopen(path, "rb");
    ck_assert_msg(fp != NULL, "cannot open %s", path);
    png_structp png =
        png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    ck_assert(png && info);
    if (setjmp(png_jmpbuf(png)))
        ck_abort_msg("libpng could not read %s", path);
    png_init_io(png, fp);
    png_read_info(png, info);
    tc_image im;
    im.w = png_get_image_width(png, info);
    im.h = png_get_image_height(png, info);
    im.channels = png_get_channels(png, info);
    im.color_type = png_get_color_type(png, info);
    im.bit_depth = png_get_bit_depth(png, info);
    size_t stride = png_get_rowbytes(png, info);
    im.pix = malloc(stride * im.h);
    ck_assert_ptr_nonnull(im.pix);
    for (uint32_t y = 0; y < im.h; y++)
        png_read_row(png, im.pix + y * stride, NULL);
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    fclose(fp);
    return im;
}

int tc_png_at(const tc_image *im, uint32_t x, uint32_t y, int c)
{
    return im->pix[((size_t)y * im->w + x) * (size_t)im->channels + (size_t)c];
}
