/* png_read.c - PNG to 8-bit pixels with libpng. libpng reports errors by
 * calling an error function that must not return: it longjmps back here
 * with the message kept, so a corrupt file is an error code, never an
 * exit. Sizes are checked from the header before the pixel buffer is
 * allocated. */
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image_internal.h"

typedef struct png_ctx {
    const unsigned char *data;
    size_t len, at;
    char msg[200];
    /* Owned across the longjmp, freed by the caller of decode_into. */
    unsigned char *pixels;
    png_bytep *rows;
} png_ctx;

static void on_error(png_structp png, png_const_charp msg)
{
    png_ctx *c = png_get_error_ptr(png);
    snprintf(c->msg, sizeof c->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp msg)
{
    (void)png; /* benign (a bad ancillary chunk): the image still decodes */
    (void)msg;
}

static void on_read(png_structp png, png_bytep out, png_size_t n)
{
    png_ctx *c = png_get_io_ptr(png);
    if (n > c->len - c->at)
        png_error(png, "file truncated");
    memcpy(out, c->data + c->at, n);
    c->at += n;
}

/* The part with setjmp: only c's fields change after it. */
static int decode_into(png_structp png, png_infop info, png_ctx *c,
                       const char *name, dgm_image *out)
{
    if (setjmp(png_jmpbuf(png)))
        return dgm_error(DGM_EFORMAT, "%s: corrupt PNG: %s", name, c->msg);
    png_set_read_fn(png, c, on_read);
    png_set_chunk_malloc_max(png, 64u << 20);
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info),
                h = png_get_image_height(png, info);
    int rc = dgm__image_check_size(name, "PNG", w, h);
    if (rc < 0)
        return rc;
    int type = png_get_color_type(png, info);
    if (type == PNG_COLOR_TYPE_PALETTE)
        png_set_palette_to_rgb(png);
    if (type == PNG_COLOR_TYPE_GRAY && png_get_bit_depth(png, info) < 8)
        png_set_expand_gray_1_2_4_to_8(png);
    if (png_get_valid(png, info, PNG_INFO_tRNS))
        png_set_tRNS_to_alpha(png);
    png_set_scale_16(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    int ch = png_get_channels(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    if (ch < 1 || ch > 4 || rowbytes != (size_t)w * (size_t)ch)
        return dgm_error(DGM_EFORMAT,
                         "%s: PNG decodes to %d channels of "
                         "%zu bytes a row",
                         name, ch, rowbytes);
    c->pixels = malloc((size_t)h * rowbytes);
    c->rows = malloc((size_t)h * sizeof *c->rows);
    if (!c->pixels || !c->rows)
        return dgm_error(DGM_ENOMEM, "%s: out of memory", name);
    for (png_uint_32 y = 0; y < h; y++)
        c->rows[y] = c->pixels + (size_t)y * rowbytes;
    png_read_image(png, c->rows);
    png_read_end(png, NULL);
    out->w = (int)w;
    out->h = (int)h;
    out->channels = ch;
    return 0;
}

int dgm__png_decode(const void *data, size_t len, const char *name,
                    dgm_image *out)
{
    /* IHDR comes first: its size is refused here, before libpng reads on
     * (and before anything is allocated for the pixels). */
    const unsigned char *b = data;
    if (len >= 24 && !memcmp(b + 12, "IHDR", 4)) {
        uint64_t w = (uint64_t)b[16] << 24 | (uint64_t)b[17] << 16 |
                     (uint64_t)b[18] << 8 | b[19];
        uint64_t h = (uint64_t)b[20] << 24 | (uint64_t)b[21] << 16 |
                     (uint64_t)b[22] << 8 | b[23];
        int rc = dgm__image_check_size(name, "PNG", w, h);
        if (rc < 0)
            return rc;
    }
    png_ctx c = {.data = data, .len = len};
    png_structp png =
        png_create_read_struct(PNG_LIBPNG_VER_STRING, &c, on_error, on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return dgm_error(DGM_ENOMEM, "%s: out of memory", name);
    }
    int rc = decode_into(png, info, &c, name, out);
    png_destroy_read_struct(&png, &info, NULL);
    free(c.rows);
    if (rc == 0)
        out->pixels = c.pixels;
    else
        free(c.pixels);
    return rc;
}
