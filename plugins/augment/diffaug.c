/* diffaug.c - augment `diffaug`: differentiable augmentation (DiffAugment,
 * Zhao et al. 2020) built from graph ops, so a GAN applies it to real and
 * generated discriminator inputs and the generator's gradient passes
 * through. Per-example draws come from the step's RNG. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/dgm.h"

static const dgm_param_spec params[] = {
    DGM_PARAM_STRING_LIST(
        "policy", .def = "[color, translation, cutout]",
        .help =
            "transforms in order: color (= brightness, saturation, contrast), "
            "brightness, saturation, contrast, translation, cutout"),
    DGM_PARAM_FLOAT(
        "translation", .def = "0.125", DGM_GE(0), DGM_LE(1),
        .help =
            "largest shift as a fraction of the side (rounded), zero padded"),
    DGM_PARAM_FLOAT(
        "cutout", .def = "0.5", DGM_GE(0), DGM_LE(1),
        .help = "side of the zeroed square as a fraction of the image side"),
    DGM_PARAM_END,
};

enum { BRIGHTNESS, SATURATION, CONTRAST, TRANSLATION, CUTOUT };
#define MAX_OPS 32

typedef struct diffaug {
    int n_ops;
    int ops[MAX_OPS];
    double translation, cutout;
    dgm_shape x_shape; /* the data's, to unflatten [N, D] inputs */
} diffaug;

static int add_op(diffaug *d, const dgm_config *cfg, int op)
{
    if (d->n_ops >= MAX_OPS)
        return dgm_cfg_error(cfg, "policy", DGM_ERANGE, "at most %d transforms",
                             MAX_OPS);
    d->ops[d->n_ops++] = op;
    return 0;
}

static int create(void **self, const dgm_config *cfg, const dgm_data_info *data)
{
    diffaug *d = calloc(1, sizeof *d);
    if (!d)
        return dgm_error(DGM_ENOMEM, "diffaug: out of memory");
    d->translation = dgm_cfg_float(cfg, "translation");
    d->cutout = dgm_cfg_float(cfg, "cutout");
    if (data)
        d->x_shape = data->x_shape;
    const dgm_config *pol = dgm_cfg_get(cfg, "policy");
    int rc = 0;
    for (int i = 0; i < dgm_cfg_len(pol) && rc == 0; i++) {
        const char *s = dgm_cfg_text(dgm_cfg_at(pol, i));
        char key[32];
        snprintf(key, sizeof key, "policy[%d]", i);
        if (!s)
            rc = dgm_cfg_error(cfg, key, DGM_ETYPE, "not a string");
        else if (!strcmp(s, "color")) {
            rc = add_op(d, cfg, BRIGHTNESS);
            rc = rc ? rc : add_op(d, cfg, SATURATION);
            rc = rc ? rc : add_op(d, cfg, CONTRAST);
        } else if (!strcmp(s, "brightness"))
            rc = add_op(d, cfg, BRIGHTNESS);
        else if (!strcmp(s, "saturation"))
            rc = add_op(d, cfg, SATURATION);
        else if (!strcmp(s, "contrast"))
            rc = add_op(d, cfg, CONTRAST);
        else if (!strcmp(s, "translation"))
            rc = add_op(d, cfg, TRANSLATION);
        else if (!strcmp(s, "cutout"))
            rc = add_op(d, cfg, CUTOUT);
        else
            rc = dgm_cfg_error(cfg, key, DGM_ECONFIG,
                               "unknown transform '%s' (color, brightness, "
                               "saturation, contrast, translation, cutout)",
                               s);
    }
    if (rc < 0) {
        free(d);
        return rc;
    }
    *self = d;
    return 0;
}

static void destroy(void *self)
{
    free(self);
}

/* A constant [N, 1, 1, 1] of per-example draws lo + (hi - lo) * U. */
static dgm_var *per_example(dgm_graph *g, dgm_rng *rng, int64_t n, float lo,
                            float hi)
{
    dgm_tensor *t = dgm_arena_tensor(dgm_graph_arena(g), DGM_F32, 4,
                                     (int64_t[]){n, 1, 1, 1});
    if (!t) {
        dgm_error(DGM_ENOMEM, "diffaug: out of memory");
        return NULL;
    }
    float *p = dgm_tensor_f32(t);
    for (int64_t i = 0; i < n; i++)
        p[i] = lo + (hi - lo) * dgm_rng_uniform(rng);
    return dgm_input(g, t);
}

/* (x - mean) * factor + mean, the mean over `axes`. */
static dgm_var *scale_about_mean(dgm_graph *g, dgm_var *x, uint32_t axes,
                                 dgm_var *factor)
{
    dgm_var *m = dgm_mean(g, x, axes, true);
    return dgm_add(g, dgm_mul(g, dgm_sub(g, x, m), factor), m);
}

/* out[n, c, i, j] = x[n, c, i + dy, j + dx], 0 outside: Ty @ x @ Tx^T
 * with one-hot shift matrices Ty[i, i + dy] and Tx[j, j + dx], batched
 * over N * C. Draws (dy, dx) per example, each uniform in [-s, s]. */
static dgm_var *translate(diffaug *d, dgm_graph *g, dgm_var *x, dgm_rng *rng)
{
    const dgm_tensor *t = dgm_value(x);
    const int64_t n = t->shape[0], c = t->shape[1], h = t->shape[2],
                  w = t->shape[3];
    const int64_t sy = (int64_t)(h * d->translation + 0.5),
                  sx = (int64_t)(w * d->translation + 0.5);
    if (sy == 0 && sx == 0)
        return x;
    dgm_arena *ar = dgm_graph_arena(g);
    dgm_tensor *ty = dgm_arena_tensor(ar, DGM_F32, 3, (int64_t[]){n * c, h, h});
    dgm_tensor *tx = dgm_arena_tensor(ar, DGM_F32, 3, (int64_t[]){n * c, w, w});
    if (!ty || !tx) {
        dgm_error(DGM_ENOMEM, "diffaug: out of memory");
        return NULL;
    }
    float *py = dgm_tensor_f32(ty), *px = dgm_tensor_f32(tx);
    for (int64_t e = 0; e < n; e++) {
        int64_t dy = (int64_t)dgm_rng_below(rng, (uint64_t)(2 * sy + 1)) - sy;
        int64_t dx = (int64_t)dgm_rng_below(rng, (uint64_t)(2 * sx + 1)) - sx;
        for (int64_t k = 0; k < c; k++) {
            float *my = py + (e * c + k) * h * h,
                  *mx = px + (e * c + k) * w * w;
            for (int64_t i = 0; i < h; i++)
                if (i + dy >= 0 && i + dy < h)
                    my[i * h + i + dy] = 1.0f;
            for (int64_t j = 0; j < w; j++)
                if (j + dx >= 0 && j + dx < w)
                    mx[j * w + j + dx] = 1.0f;
        }
    }
    dgm_var *x3 = dgm_reshape(g, x, 3, (int64_t[]){n * c, h, w});
    dgm_var *y = dgm_matmul(g, dgm_input(g, ty), x3, false, false);
    y = dgm_matmul(g, y, dgm_input(g, tx), false, true);
    return dgm_reshape(g, y, 4, (int64_t[]){n, c, h, w});
}

/* x * mask, mask [N, 1, H, W] zero on a square of side cutout * H (as
 * DiffAugment: centre drawn in [0, H + 1 - side % 2), clipped to the
 * image). Draws (cy, cx) per example. */
static dgm_var *cutout(diffaug *d, dgm_graph *g, dgm_var *x, dgm_rng *rng)
{
    const dgm_tensor *t = dgm_value(x);
    const int64_t n = t->shape[0], h = t->shape[2], w = t->shape[3];
    const int64_t ch = (int64_t)(h * d->cutout + 0.5),
                  cw = (int64_t)(w * d->cutout + 0.5);
    if (ch == 0 || cw == 0)
        return x;
    dgm_tensor *m = dgm_arena_tensor(dgm_graph_arena(g), DGM_F32, 4,
                                     (int64_t[]){n, 1, h, w});
    if (!m) {
        dgm_error(DGM_ENOMEM, "diffaug: out of memory");
        return NULL;
    }
    float *p = dgm_tensor_f32(m);
    for (int64_t i = 0; i < n * h * w; i++)
        p[i] = 1.0f;
    for (int64_t e = 0; e < n; e++) {
        int64_t cy = (int64_t)dgm_rng_below(rng, (uint64_t)(h + 1 - ch % 2));
        int64_t cx = (int64_t)dgm_rng_below(rng, (uint64_t)(w + 1 - cw % 2));
        int64_t y0 = cy - ch / 2, x0 = cx - cw / 2;
        for (int64_t i = y0 < 0 ? 0 : y0; i < y0 + ch && i < h; i++)
            for (int64_t j = x0 < 0 ? 0 : x0; j < x0 + cw && j < w; j++)
                p[(e * h + i) * w + j] = 0.0f;
    }
    return dgm_mul(g, x, dgm_input(g, m));
}

static dgm_var *forward(void *self, dgm_graph *g, dgm_var *x, dgm_rng *rng)
{
    diffaug *d = self;
    char buf[96];
    if (!x)
        return NULL;
    if (!dgm_graph_training(g)) /* training-time augmentation only */
        return x;
    if (!rng) {
        dgm_error(DGM_EINVAL, "diffaug: forward given no rng");
        return NULL;
    }
    const dgm_tensor *t = dgm_value(x);
    dgm_var *h = x;
    if (t->ndim == 2 && d->x_shape.ndim == 3 &&
        t->shape[1] == dgm_shape_numel(3, d->x_shape.dim))
        h = dgm_reshape(g, x, 4,
                        (int64_t[]){t->shape[0], d->x_shape.dim[0],
                                    d->x_shape.dim[1], d->x_shape.dim[2]});
    else if (t->ndim != 4) {
        dgm_error(DGM_ESHAPE,
                  "diffaug: input %s is not a batch of images [N, C, H, W]",
                  dgm_tensor_describe(t, buf, sizeof buf));
        return NULL;
    }
    const int64_t n = t->shape[0];
    for (int i = 0; i < d->n_ops && h; i++) {
        switch (d->ops[i]) {
        case BRIGHTNESS:
            h = dgm_add(g, h, per_example(g, rng, n, -0.5f, 0.5f));
            break;
        case SATURATION: /* about the mean over channels */
            h = scale_about_mean(g, h, 1u << 1, per_example(g, rng, n, 0, 2));
            break;
        case CONTRAST: /* about the mean over the whole image */
            h = scale_about_mean(g, h, 0xEu,
                                 per_example(g, rng, n, 0.5f, 1.5f));
            break;
        case TRANSLATION:
            h = translate(d, g, h, rng);
            break;
        case CUTOUT:
            h = cutout(d, g, h, rng);
            break;
        }
    }
    if (h && t->ndim == 2)
        h = dgm_reshape(g, h, 2, t->shape);
    return h;
}

static const dgm_augment_iface iface = {
    .create = create, .apply = NULL, .forward = forward, .destroy = destroy};

static const dgm_plugin_desc desc = {
    DGM_PLUGIN_HEADER,
    DGM_PLUGIN_AUGMENT(&iface),
    .name = "diffaug",
    .version = "1.0",
    .summary = "differentiable augmentation (DiffAugment) on the graph",
    .params = params,

};

DGM_PLUGIN_NAME(diffaug);

DGM_PLUGIN_EXPORT const dgm_plugin_desc *dgm_plugin_query(uint32_t i)
{
    return i == 0 ? &desc : NULL;
}
