/* jpeg_read.c - JPEG to 8-bit pixels with libjpeg-turbo. libjpeg's
 * error_exit must not return: it longjmps back here with the message. Its
 * warnings about corrupt data (a truncated file decodes to grey with only
 * a warning) are errors here too, so a damaged file is never trained on.
 * Sizes are checked from the header before anything is decompressed. */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

#include "image_internal.h"

typedef struct jpeg_ctx {
    struct jpeg_error_mgr mgr; /* first: libjpeg hands back its address */
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
    unsigned char *pixels; /* owned across the longjmp */
} jpeg_ctx;

static void on_error(j_common_ptr cinfo)
{
    jpeg_ctx *c = (jpeg_ctx *)cinfo->err;
    cinfo->err->format_message(cinfo, c->msg);
    longjmp(c->jump, 1);
}

static void on_message(j_common_ptr cinfo, int level)
{
    if (level < 0) /* a warning: corrupt data */
        on_error(cinfo);
}

static int decode_into(struct jpeg_decompress_struct *cinfo, jpeg_ctx *c,
                       const unsigned char *data, size_t len, const char *name,
                       dgm_image *out)
{
    if (setjmp(c->jump))
        return dgm_error(DGM_EFORMAT, "%s: corrupt JPEG: %s", name, c->msg);
    jpeg_create_decompress(cinfo);
    jpeg_mem_src(cinfo, data, (unsigned long)len);
    jpeg_read_header(cinfo, TRUE);
    int rc = dgm__image_check_size(name, "JPEG", cinfo->image_width,
                                   cinfo->image_height);
    if (rc < 0)
        return rc;
    if (cinfo->jpeg_color_space == JCS_CMYK ||
        cinfo->jpeg_color_space == JCS_YCCK)
        return dgm_error(DGM_EFORMAT,
                         "%s: CMYK JPEG not supported; save it "
                         "as RGB",
                         name);
    cinfo->out_color_space =
        cinfo->num_components == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_start_decompress(cinfo);
    int ch = cinfo->output_components;
    size_t w = cinfo->output_width, h = cinfo->output_height;
    if ((ch != 1 && ch != 3) ||
        (rc = dgm__image_check_size(name, "JPEG", w, h)) < 0)
        return rc < 0 ? rc
                      : dgm_error(DGM_EFORMAT,
                                  "%s: JPEG decodes to %d "
                                  "channels",
                                  name, ch);
    c->pixels = malloc(w * h * (size_t)ch);
    if (!c->pixels)
        return dgm_error(DGM_ENOMEM, "%s: out of memory", name);
    while (cinfo->output_scanline < cinfo->output_height) {
        JSAMPROW row = c->pixels + (size_t)cinfo->output_scanline * w * ch;
        jpeg_read_scanlines(cinfo, &row, 1);
    }
    jpeg_finish_decompress(cinfo);
    out->w = (int)w;
    out->h = (int)h;
    out->channels = ch;
    return 0;
}

int dgm__jpeg_decode(const void *data, size_t len, const char *name,
                     dgm_image *out)
{
    struct jpeg_decompress_struct cinfo;
    jpeg_ctx c;
    memset(&c, 0, sizeof c);
    memset(&cinfo, 0, sizeof cinfo);
    cinfo.err = jpeg_std_error(&c.mgr);
    c.mgr.error_exit = on_error;
    c.mgr.emit_message = on_message;
    int rc = decode_into(&cinfo, &c, data, len, name, out);
    jpeg_destroy_decompress(&cinfo);
    if (rc == 0)
        out->pixels = c.pixels;
    else
        free(c.pixels);
    return rc;
}
