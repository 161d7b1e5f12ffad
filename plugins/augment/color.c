/* color.c - the `color` augmentation: brightness, contrast, saturation and
 * hue jitter of each image of [n, C, H, W], in place, with torchvision's
 * ColorJitter semantics (the four in a random order per image, each factor
 * drawn per image, results clamped to the data's range). */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>

#include "dgm/dgm.h"

static const dgm_param_spec params[] = {
    DGM_PARAM_FLOAT("brightness", .def = "0", DGM_GE(0), DGM_LE(1e3),
                    .help = "factor drawn from U(max(0, 1 - b), 1 + b); the "
                            "image is multiplied by it; 0: off"),
    DGM_PARAM_FLOAT("contrast", .def = "0", DGM_GE(0), DGM_LE(1e3),
                    .help = "factor from U(max(0, 1 - c), 1 + c); the image "
                            "is blended with its mean grey level; 0: off"),
    DGM_PARAM_FLOAT("saturation", .def = "0", DGM_GE(0), DGM_LE(1e3),
                    .help = "factor from U(max(0, 1 - s), 1 + s); the image "
                            "is blended with its grey version (RGB only); "
                            "0: off"),
    DGM_PARAM_FLOAT("hue", .def = "0", DGM_GE(0), DGM_LE(0.5),
                    .help = "shift from U(-h, h) of the hue, in turns (RGB "
                            "only); 0: off"),
    DGM_PARAM_BOOL("fixed", .def = "false",
                   .help = "no draws: factors 1 + brightness, 1 + contrast, "
                           "1 + saturation and a hue shift of +hue, in that "
                           "order, on every image"),
    DGM_PARAM_END,
};

enum { BRIGHT, CONTRAST, SAT, HUE, N_OPS };

typedef struct color {
    double amount[N_OPS];
    bool fixed;
    float lo, hi; /* the data's range, mapped to [0, 1] for the maths */
} color;

static int color_create(void **self, const dgm_config *cfg,
                        const dgm_data_info *data)
{
    int64_t c = data && data->x_shape.ndim == 3 ? data->x_shape.dim[0] : 3;
    color *o = calloc(1, sizeof *o);
    if (!o)
        return dgm_error(DGM_ENOMEM, "color: out of memory");
    o->amount[BRIGHT] = dgm_cfg_float(cfg, "brightness");
    o->amount[CONTRAST] = dgm_cfg_float(cfg, "contrast");
    o->amount[SAT] = dgm_cfg_float(cfg, "saturation");
    o->amount[HUE] = dgm_cfg_float(cfg, "hue");
    o->fixed = dgm_cfg_bool(cfg, "fixed");
    bool ranged = data && data->x_min < data->x_max;
    o->lo = ranged ? data->x_min : 0.0f;
    o->hi = ranged ? data->x_max : 1.0f;
    if (c != 1 && c != 3) {
        free(o);
        return dgm_cfg_error(cfg, NULL, DGM_ESHAPE,
                             "color: images of 1 or 3 channels, the data "
                             "has %lld",
                             (long long)c);
    }
    *self = o;
    return 0;
}

static void color_destroy(void *self)
{
    free(self);
}

static double clamp01(double v)
{
    return v < 0.0 ? 0.0 : v > 1.0 ? 1.0 : v;
}

static double grey(const double *r, const double *g, const double *b, int64_t k)
{
    return 0.2989 * r[k] + 0.587 * g[k] + 0.114 * b[k];
}

/* torchvision's _blend: f * a + (1 - f) * b, clamped to [0, 1]. */
static void blend_const(double *x, int64_t n, double f, double other)
{
    for (int64_t k = 0; k < n; k++)
        x[k] = clamp01(f * x[k] + (1.0 - f) * other);
}

static void contrast(double *x, int64_t c, int64_t plane, double f)
{
    double mean = 0;
    for (int64_t k = 0; k < plane; k++)
        mean += c == 3 ? grey(x, x + plane, x + 2 * plane, k) : 0.0;
    if (c != 3)
        for (int64_t k = 0; k < c * plane; k++)
            mean += x[k];
    mean /= (double)(c == 3 ? plane : c * plane);
    blend_const(x, c * plane, f, mean);
}

static void saturation(double *x, int64_t plane, double f)
{
    for (int64_t k = 0; k < plane; k++) {
        double gr = grey(x, x + plane, x + 2 * plane, k);
        for (int ch = 0; ch < 3; ch++)
            x[ch * plane + k] = clamp01(f * x[ch * plane + k] + (1.0 - f) * gr);
    }
}

/* torchvision's _rgb2hsv, hue shift mod 1, _hsv2rgb, per pixel. */
static void hue(double *x, int64_t plane, double shift)
{
    for (int64_t k = 0; k < plane; k++) {
        double r = x[k], g = x[plane + k], b = x[2 * plane + k];
        double maxc = fmax(r, fmax(g, b)), minc = fmin(r, fmin(g, b));
        bool eq = maxc == minc;
        double cr = maxc - minc;
        double s = cr / (eq ? 1.0 : maxc), div = eq ? 1.0 : cr;
        double rc = (maxc - r) / div, gc = (maxc - g) / div,
               bc = (maxc - b) / div;
        double h = maxc == r   ? bc - gc
                   : maxc == g ? 2.0 + rc - bc
                               : 4.0 + gc - rc;
        h = fmod(h / 6.0 + 1.0, 1.0);
        h = fmod(h + shift, 1.0);
        if (h < 0)
            h += 1.0;
        double v = maxc, i = floor(h * 6.0), f = h * 6.0 - i;
        double p = clamp01(v * (1.0 - s)), q = clamp01(v * (1.0 - s * f)),
               t = clamp01(v * (1.0 - s * (1.0 - f)));
        int sec = (int)i % 6;
        const double rgb[6][3] = {{v, t, p}, {q, v, p}, {p, v, t},
                                  {p, q, v}, {t, p, v}, {v, p, q}};
        for (int ch = 0; ch < 3; ch++)
            x[ch * plane + k] = rgb[sec][ch];
    }
}

static int check_batch(const dgm_tensor *x, const dgm_rng *rng)
{
    char buf[96];
    if (!x || !rng)
        return dgm_error(DGM_EINVAL, "color: apply given no %s",
                         x ? "rng" : "tensor");
    if (x->ndim != 4 || (x->shape[1] != 1 && x->shape[1] != 3))
        return dgm_error(DGM_ESHAPE,
                         "color: expects a batch [n, C, H, W] with C 1 or "
                         "3, got %s",
                         dgm_tensor_describe(x, buf, sizeof buf));
    if (x->dtype != DGM_F32)
        return dgm_error(DGM_EDTYPE, "color: expects f32 images, got %s",
                         dgm_tensor_describe(x, buf, sizeof buf));
    if (!dgm_tensor_is_contiguous(x))
        return dgm_error(DGM_EINVAL,
                         "color: expects a contiguous batch, got a strided "
                         "view %s",
                         dgm_tensor_describe(x, buf, sizeof buf));
    return 0;
}

static int color_apply(void *self, dgm_tensor *x, dgm_rng *rng)
{
    color *o = self;
    int rc = check_batch(x, rng);
    if (rc < 0)
        return rc;
    const int64_t n = x->shape[0], c = x->shape[1],
                  plane = x->shape[2] * x->shape[3], img = c * plane;
    double *buf = malloc(sizeof *buf * (size_t)img);
    if (!buf)
        return dgm_error(DGM_ENOMEM, "color: out of memory");
    const double span = (double)o->hi - (double)o->lo;
    float *data = dgm_tensor_f32(x);
    for (int64_t i = 0; i < n; i++) {
        /* ColorJitter.get_params: the order, then each enabled factor */
        int order[N_OPS] = {BRIGHT, CONTRAST, SAT, HUE};
        double f[N_OPS] = {0};
        if (!o->fixed)
            for (int j = N_OPS - 1; j > 0; j--) {
                int r = (int)dgm_rng_below(rng, (uint64_t)j + 1), t = order[j];
                order[j] = order[r];
                order[r] = t;
            }
        for (int op = 0; op < N_OPS; op++) {
            double a = o->amount[op];
            if (a <= 0)
                continue;
            double lo = op == HUE ? -a : fmax(0.0, 1.0 - a);
            double hi = op == HUE ? a : 1.0 + a;
            f[op] = o->fixed ? (op == HUE ? a : 1.0 + a)
                             : lo + (hi - lo) * dgm_rng_uniform_f64(rng);
        }
        float *im = data + i * img;
        for (int64_t k = 0; k < img; k++)
            buf[k] = ((double)im[k] - o->lo) / span;
        for (int j = 0; j < N_OPS; j++) {
            int op = order[j];
            if (o->amount[op] <= 0)
                continue;
            if (op == BRIGHT)
                blend_const(buf, img, f[op], 0.0);
            else if (op == CONTRAST)
                contrast(buf, c, plane, f[op]);
            else if (op == SAT && c == 3) /* a grey image has none */
                saturation(buf, plane, f[op]);
            else if (op == HUE && c == 3)
                hue(buf, plane, f[op]);
        }
        for (int64_t k = 0; k < img; k++)
            im[k] = (float)(o->lo + span * buf[k]);
    }
    free(buf);
    return 0;
}

static const dgm_augment_iface iface = {.create = color_create,
                                        .apply = color_apply,
                                        .forward = NULL,
                                        .destroy = color_destroy};

static const dgm_plugin_desc desc = {
    DGM_PLUGIN_HEADER,
    DGM_PLUGIN_AUGMENT(&iface),
    .name = "color",
    .version = "1.0",
    .summary = "brightness, contrast, saturation and hue jitter "
               "(torchvision's ColorJitter)",
    .params = params,
};

DGM_PLUGIN_NAME(color);

DGM_PLUGIN_EXPORT const dgm_plugin_desc *dgm_plugin_query(uint32_t index)
{
    return index == 0 ? &desc : NULL;
}
