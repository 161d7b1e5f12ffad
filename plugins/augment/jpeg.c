/* jpeg.c - the `jpeg` augmentation: each image of [n, C, H, W] (C = 1
 * grey or 3 RGB) mapped from the data's range to 8 bits, compressed to
 * JPEG at a quality and decoded back (a robustness corruption,
 * `corrupt: [{jpeg: 30}]`). libjpeg-turbo, in memory. */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

#include "dgm/dgm.h"

static const dgm_param_spec params[] = {
    DGM_PARAM_INT("quality", .def = "75", DGM_GE(1), DGM_LE(100),
                  .help = "JPEG quality (1: worst, 100: best; still lossy)"),
    DGM_PARAM_END,
};

typedef struct jpeg {
    int quality;
    float lo, hi;      /* the data's range, mapped to 0..255 */
    unsigned char *px; /* one image, interleaved 8-bit */
    size_t cap;
} jpeg;

static void jq_destroy(void *self)
{
    jpeg *o = self;
    if (o)
        free(o->px);
    free(o);
}

static int jq_create(void **self, const dgm_config *cfg,
                     const dgm_data_info *data)
{
    if (!data || !(data->x_min < data->x_max))
        return dgm_error(DGM_ECONFIG,
                         "jpeg: the data set declares no value range to map "
                         "to 8 bits");
    jpeg *o = calloc(1, sizeof *o);
    if (!o)
        return dgm_error(DGM_ENOMEM, "jpeg: out of memory");
    o->quality = (int)dgm_cfg_int(cfg, "quality");
    o->lo = data->x_min;
    o->hi = data->x_max;
    *self = o;
    return 0;
}

/* libjpeg reports errors through a longjmp we set up. */
typedef struct err_mgr {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
    char msg[JMSG_LENGTH_MAX];
} err_mgr;

static void on_error(j_common_ptr c)
{
    err_mgr *e = (err_mgr *)c->err;
    e->pub.format_message(c, e->msg);
    longjmp(e->jb, 1);
}

/* px (h x w x c bytes) through JPEG at quality q and back. */
static int round_trip(unsigned char *px, int h, int w, int c, int q)
{
    struct jpeg_compress_struct cc;
    struct jpeg_decompress_struct dc;
    err_mgr em;
    unsigned char *buf = NULL;
    unsigned long len = 0;
    volatile int stage = 0;
    cc.err = jpeg_std_error(&em.pub);
    dc.err = cc.err;
    em.pub.error_exit = on_error;
    if (setjmp(em.jb)) {
        if (stage >= 1)
            jpeg_destroy_compress(&cc);
        if (stage >= 2)
            jpeg_destroy_decompress(&dc);
        free(buf);
        return dgm_error(DGM_EIO, "jpeg: %s", em.msg);
    }
    jpeg_create_compress(&cc);
    stage = 1;
    jpeg_mem_dest(&cc, &buf, &len);
    cc.image_width = (JDIMENSION)w;
    cc.image_height = (JDIMENSION)h;
    cc.input_components = c;
    cc.in_color_space = c == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&cc);
    jpeg_set_quality(&cc, q, TRUE);
    jpeg_start_compress(&cc, TRUE);
    while (cc.next_scanline < cc.image_height) {
        JSAMPROW row = px + (size_t)cc.next_scanline * (size_t)(w * c);
        jpeg_write_scanlines(&cc, &row, 1);
    }
    jpeg_finish_compress(&cc);
    jpeg_create_decompress(&dc);
    stage = 2;
    jpeg_mem_src(&dc, buf, len);
    jpeg_read_header(&dc, TRUE);
    dc.out_color_space = c == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_start_decompress(&dc);
    while (dc.output_scanline < dc.output_height) {
        JSAMPROW row = px + (size_t)dc.output_scanline * (size_t)(w * c);
        jpeg_read_scanlines(&dc, &row, 1);
    }
    jpeg_finish_decompress(&dc);
    jpeg_destroy_decompress(&dc);
    jpeg_destroy_compress(&cc);
    free(buf);
    return 0;
}

static int jq_apply(void *self, dgm_tensor *x, dgm_rng *rng)
{
    jpeg *o = self;
    char buf[96];
    (void)rng; /* no draws */
    if (!x)
        return dgm_error(DGM_EINVAL, "jpeg: apply given no tensor");
    if (x->ndim != 4 || x->dtype != DGM_F32 || !dgm_tensor_is_contiguous(x) ||
        (x->shape[1] != 1 && x->shape[1] != 3))
        return dgm_error(DGM_ESHAPE,
                         "jpeg: expects a contiguous f32 batch [n, 1 or 3, "
                         "H, W], got %s",
                         dgm_tensor_describe(x, buf, sizeof buf));
    const int64_t n = x->shape[0], c = x->shape[1], h = x->shape[2],
                  w = x->shape[3];
    const size_t img = (size_t)(c * h * w);
    if (img > o->cap) {
        unsigned char *p = realloc(o->px, img);
        if (!p)
            return dgm_error(DGM_ENOMEM, "jpeg: out of memory");
        o->px = p;
        o->cap = img;
    }
    const float scale = 255.0f / (o->hi - o->lo);
    float *d = dgm_tensor_f32(x);
    for (int64_t i = 0; i < n; i++) {
        float *im = d + (size_t)i * img;
        for (int64_t k = 0; k < c; k++) /* planar floats -> interleaved */
            for (int64_t p = 0; p < h * w; p++) {
                float v = (im[k * h * w + p] - o->lo) * scale + 0.5f;
                o->px[p * c + k] = (unsigned char)(v < 0     ? 0
                                                   : v > 255 ? 255
                                                             : v);
            }
        int rc = round_trip(o->px, (int)h, (int)w, (int)c, o->quality);
        if (rc < 0)
            return rc;
        for (int64_t k = 0; k < c; k++)
            for (int64_t p = 0; p < h * w; p++)
                im[k * h * w + p] = o->lo + (float)o->px[p * c + k] / scale;
    }
    return 0;
}

static const dgm_augment_iface iface = {.create = jq_create,
                                        .apply = jq_apply,
                                        .forward = NULL,
                                        .destroy = jq_destroy};

static const dgm_plugin_desc desc = {
    DGM_PLUGIN_HEADER,
    DGM_PLUGIN_AUGMENT(&iface),
    .name = "jpeg",
    .version = "1.0",
    .summary = "JPEG compression and decoding at a quality",
    .params = params,
};

DGM_PLUGIN_NAME(jpeg);

DGM_PLUGIN_EXPORT const dgm_plugin_desc *dgm_plugin_query(uint32_t index)
{
    return index == 0 ? &desc : NULL;
}
