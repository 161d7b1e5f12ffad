/* rotate.c - the `rotate` augmentation: turn each image of [n, C, H, W]
 * about its centre by a random angle in [-degrees, degrees] (or exactly
 * `degrees` when `fixed`), bilinear, zeros where the source is outside. */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/dgm.h"
#include "image_batch.h"

static const dgm_param_spec params[] = {
    DGM_PARAM_FLOAT(
        "degrees", .def = "10", DGM_GE(0), DGM_LE(360),
        .help = "largest angle; each image turns by U(-degrees, degrees)"),
    DGM_PARAM_BOOL("fixed", .def = "false",
                   .help = "turn every image by exactly +degrees "
                           "(counter-clockwise), no draws"),
    DGM_PARAM_END,
};

typedef struct rotate {
    double degrees;
    bool fixed;
    image_scratch scratch;
} rotate;

static int rotate_create(void **self, const dgm_config *cfg,
                         const dgm_data_info *data)
{
    rotate *o = calloc(1, sizeof *o);
    if (!o)
        return dgm_error(DGM_ENOMEM, "rotate: out of memory");
    o->degrees = dgm_cfg_float(cfg, "degrees");
    o->fixed = dgm_cfg_bool(cfg, "fixed");
    *self = o;
    return 0;
}

static void rotate_destroy(void *self)
{
    rotate *o = self;
    if (!o)
        return;
    free(o->scratch.buf);
    free(o);
}

/* Source coordinates that are integers up to rounding (multiples of 90
 * degrees) are snapped, so those turns copy pixels exactly. */
static double snap(double v)
{
    double r = nearbyint(v);
    return fabs(v - r) < 1e-9 ? r : v;
}

/* dst = src turned by `rad` counter-clockwise as displayed (y down):
 * dst(x, y) = src(cx + dx cos - dy sin, cy + dx sin + dy cos) with
 * (dx, dy) = (x - cx, y - cy), bilinear, 0 outside. */
static void rotate_image(float *restrict dst, const float *restrict src,
                         int64_t c, int64_t h, int64_t w, double rad)
{
    const double cs = cos(rad), sn = sin(rad);
    const double cx = 0.5 * (double)(w - 1), cy = 0.5 * (double)(h - 1);
    const int64_t plane = h * w;
    for (int64_t y = 0; y < h; y++) {
        for (int64_t x = 0; x < w; x++) {
            double dx = (double)x - cx, dy = (double)y - cy;
            double sx = snap(cx + dx * cs - dy * sn);
            double sy = snap(cy + dx * sn + dy * cs);
            double fx0 = floor(sx), fy0 = floor(sy);
            int64_t x0 = (int64_t)fx0, y0 = (int64_t)fy0;
            float ax = (float)(sx - fx0), ay = (float)(sy - fy0);
            /* The four neighbours' weights; an outside one counts 0. */
            float wt[4] = {(1 - ax) * (1 - ay), ax * (1 - ay), (1 - ax) * ay,
                           ax * ay};
            int64_t off[4];
            int64_t nx[4] = {x0, x0 + 1, x0, x0 + 1};
            int64_t ny[4] = {y0, y0, y0 + 1, y0 + 1};
            for (int j = 0; j < 4; j++) {
                bool in = nx[j] >= 0 && nx[j] < w && ny[j] >= 0 && ny[j] < h;
                if (!in || wt[j] == 0.0f) {
                    wt[j] = 0.0f;
                    off[j] = 0;
                } else {
                    off[j] = ny[j] * w + nx[j];
                }
            }
            for (int64_t k = 0; k < c; k++) {
                const float *sp = src + k * plane;
                dst[k * plane + y * w + x] =
                    wt[0] * sp[off[0]] + wt[1] * sp[off[1]] +
                    wt[2] * sp[off[2]] + wt[3] * sp[off[3]];
            }
        }
    }
}

static int rotate_apply(void *self, dgm_tensor *x, dgm_rng *rng)
{
    rotate *o = self;
    int rc = image_batch_check("rotate", x, rng);
    if (rc < 0)
        return rc;
    const int64_t n = x->shape[0], c = x->shape[1], h = x->shape[2],
                  w = x->shape[3];
    const size_t img = (size_t)(c * h * w);
    if ((rc = image_scratch_fit("rotate", &o->scratch, x)) < 0)
        return rc;
    float *data = dgm_tensor_f32(x);
    for (int64_t i = 0; i < n; i++) {
        /* One draw per image (none when fixed), in batch order. */
        double deg = o->fixed
                         ? o->degrees
                         : o->degrees * (2.0 * dgm_rng_uniform_f64(rng) - 1.0);
        if (deg == 0.0)
            continue;
        float *im = data + (size_t)i * img;
        memcpy(o->scratch.buf, im, img * sizeof *im);
        rotate_image(im, o->scratch.buf, c, h, w, deg * (M_PI / 180.0));
    }
    return 0;
}

static const dgm_augment_iface iface = {.create = rotate_create,
                                        .apply = rotate_apply,
                                        .forward = NULL,
                                        .destroy = rotate_destroy};

static const dgm_plugin_desc desc = {
    DGM_PLUGIN_HEADER,
    DGM_PLUGIN_AUGMENT(&iface),
    .name = "rotate",
    .version = "1.0",
    .summary = "random rotation about the image centre, bilinear, zero fill",
    .params = params,

};

DGM_PLUGIN_NAME(rotate);

DGM_PLUGIN_EXPORT const dgm_plugin_desc *dgm_plugin_query(uint32_t index)
{
    return index == 0 ? &desc : NULL;
}
