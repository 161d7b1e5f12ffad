/* blur.c - the `blur` augmentation: a Gaussian blur of standard deviation
 * sigma pixels over each channel of [n, C, H, W], separable, the kernel
 * cut at 3 sigma and renormalised, edges replicated (a robustness
 * corruption, `corrupt: [{blur: 1.0}]`). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/dgm.h"

static const dgm_param_spec params[] = {
    DGM_PARAM_FLOAT("sigma", .def = "1.0", DGM_GE(0), DGM_LE(100),
                    .help = "standard deviation in pixels (0 leaves the "
                            "image unchanged)"),
    DGM_PARAM_END,
};

typedef struct blur {
    double sigma;
    int radius;
    float *k;       /* 2 * radius + 1 weights summing to 1 */
    float *scratch; /* one plane; grown, then reused */
    size_t cap;
} blur;

static void blur_destroy(void *self)
{
    blur *o = self;
    if (!o)
        return;
    free(o->k);
    free(o->scratch);
    free(o);
}

static int blur_create(void **self, const dgm_config *cfg,
                       const dgm_data_info *data)
{
    (void)data;
    blur *o = calloc(1, sizeof *o);
    if (!o)
        return dgm_error(DGM_ENOMEM, "blur: out of memory");
    o->sigma = dgm_cfg_float(cfg, "sigma");
    o->radius = o->sigma > 0 ? (int)ceil(3.0 * o->sigma) : 0;
    o->k = malloc(sizeof *o->k * (size_t)(2 * o->radius + 1));
    if (!o->k) {
        blur_destroy(o);
        return dgm_error(DGM_ENOMEM, "blur: out of memory");
    }
    double sum = 0;
    for (int j = -o->radius; j <= o->radius; j++)
        sum += o->sigma > 0 ? exp(-0.5 * j * j / (o->sigma * o->sigma)) : 1;
    for (int j = -o->radius; j <= o->radius; j++)
        o->k[j + o->radius] =
            (float)((o->sigma > 0 ? exp(-0.5 * j * j / (o->sigma * o->sigma))
                                  : 1) /
                    sum);
    *self = o;
    return 0;
}

static int64_t clampi(int64_t v, int64_t hi)
{
    return v < 0 ? 0 : v > hi ? hi : v;
}

/* dst[y, x] = sum_j k[j] src[y + j*dy, x + j*dx], indices replicated at the
 * edges. */
static void pass(float *dst, const float *src, int64_t h, int64_t w,
                 const float *k, int r, int dy, int dx)
{
    for (int64_t y = 0; y < h; y++)
        for (int64_t x = 0; x < w; x++) {
            float acc = 0;
            for (int j = -r; j <= r; j++)
                acc += k[j + r] * src[clampi(y + j * dy, h - 1) * w +
                                      clampi(x + j * dx, w - 1)];
            dst[y * w + x] = acc;
        }
}

static int blur_apply(void *self, dgm_tensor *x, dgm_rng *rng)
{
    blur *o = self;
    char buf[96];
    (void)rng; /* no draws */
    if (!x)
        return dgm_error(DGM_EINVAL, "blur: apply given no tensor");
    if (x->ndim != 4 || x->dtype != DGM_F32 || !dgm_tensor_is_contiguous(x))
        return dgm_error(DGM_ESHAPE,
                         "blur: expects a contiguous f32 batch [n, C, H, W], "
                         "got %s",
                         dgm_tensor_describe(x, buf, sizeof buf));
    if (o->radius == 0)
        return 0;
    const int64_t planes = x->shape[0] * x->shape[1], h = x->shape[2],
                  w = x->shape[3];
    const size_t plane = (size_t)(h * w);
    if (plane > o->cap) {
        float *s = realloc(o->scratch, plane * sizeof *s);
        if (!s)
            return dgm_error(DGM_ENOMEM, "blur: out of memory");
        o->scratch = s;
        o->cap = plane;
    }
    float *d = dgm_tensor_f32(x);
    for (int64_t p = 0; p < planes; p++) {
        float *im = d + (size_t)p * plane;
        pass(o->scratch, im, h, w, o->k, o->radius, 0, 1); /* rows */
        pass(im, o->scratch, h, w, o->k, o->radius, 1, 0); /* columns */
    }
    return 0;
}

static const dgm_augment_iface iface = {.create = blur_create,
                                        .apply = blur_apply,
                                        .forward = NULL,
                                        .destroy = blur_destroy};

static const dgm_plugin_desc desc = {
    DGM_PLUGIN_HEADER,
    DGM_PLUGIN_AUGMENT(&iface),
    .name = "blur",
    .version = "1.0",
    .summary = "Gaussian blur of each channel, edges replicated",
    .params = params,
};

DGM_PLUGIN_NAME(blur);

DGM_PLUGIN_EXPORT const dgm_plugin_desc *dgm_plugin_query(uint32_t index)
{
    return index == 0 ? &desc : NULL;
}
