/* img_write.c - see img_write.h. */
#include "img_write.h"

#include <check.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>

#include <jpeglib.h>

void tc_write_png(const char *path, int w, int h, int color_type, int bit_depth,
                  const unsigned char *px, const unsigned char *palette,
                  int n_palette)
{
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f, "cannot write %s", path);
    png_structp png =
        png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    ck_assert_int_eq(setjmp(png_jmpbuf(png)), 0);
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, bit_depth,
                 color_type, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (palette) {
        png_color pal[256];
        for (int i = 0; i < n_palette; i++) {
            pal[i].red = palette[3 * i];
            pal[i].green = palette[3 * i + 1];
            pal[i].blue = palette[3 * i + 2];
        }
        png_set_PLTE(png, info, pal, n_palette);
    }
    png_write_info(png, info);
    int ch = color_type == PNG_COLOR_TYPE_RGB          ? 3
             : color_type == PNG_COLOR_TYPE_RGB_ALPHA  ? 4
             : color_type == PNG_COLOR_TYPE_GRAY_ALPHA ? 2
                                                       : 1;
    size_t row = ((size_t)w * ch * bit_depth + 7) / 8;
    for (int y = 0; y < h; y++)
        png_write_row(png, (png_const_bytep)(px + (size_t)y * row));
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    ck_assert_int_eq(fclose(f), 0);
}

void tc_write_jpeg(const char *path, int w, int h, int comps,
                   const unsigned char *px, int quality)
{
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f, "cannot write %s", path);
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr err;
    c.err = jpeg_std_error(&err);
    jpeg_create_compress(&c);
    jpeg_stdio_dest(&c, f);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = comps;
    c.in_color_space = comps == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, quality, TRUE);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW r = (JSAMPROW)(px + (size_t)c.next_scanline * w * comps);
        jpeg_write_scanlines(&c, &r, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    ck_assert_int_eq(fclose(f), 0);
}
