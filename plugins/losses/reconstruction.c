/* reconstruction.c - losses `bernoulli_nll`, `gaussian_nll` and `mse`:
 * how well a model's output explains the data, per example. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/dgm.h"

/* Sum or mean over every axis but the batch axis: [N, ...] -> [N]. */
static dgm_var *reduce_example(dgm_graph *g, dgm_var *v, bool mean)
{
    if (!v)
        return NULL;
    int nd = dgm_value(v)->ndim;
    if (nd < 2)
        return v;
    uint32_t axes = ((1u << nd) - 1u) & ~1u;
    return mean ? dgm_mean(g, v, axes, false) : dgm_sum(g, v, axes, false);
}

/* ---- bernoulli_nll ---------------------------------------------------- */

static dgm_var *bernoulli_apply(void *self, dgm_graph *g, dgm_var *const *in,
                                int n)
{
    return reduce_example(g, dgm_bce_with_logits(g, in[0], in[1]), false);
}

static const dgm_loss_iface bernoulli_iface = {
    .min_inputs = 2,
    .max_inputs = 2,
    .inputs_help = "logits target",
    .apply = bernoulli_apply,
};

/* ---- gaussian_nll ----------------------------------------------------- */

static const dgm_param_spec gaussian_params[] = {
    DGM_PARAM_FLOAT(
        "std", .def = "1.0", DGM_GE(1e-6), DGM_LE(1e6),
        .help =
            "fixed standard deviation (used when no logvar input is given)"),
    DGM_PARAM_END,
};

typedef struct gauss {
    float std;
} gauss;

static int gaussian_create(void **self, const dgm_config *cfg)
{
    gauss *s = malloc(sizeof *s);
    if (!s)
        return dgm_error(DGM_ENOMEM, "gaussian_nll: out of memory");
    s->std = (float)dgm_cfg_float(cfg, "std");
    *self = s;
    return 0;
}

/* -log N(x; mean, sigma^2) summed per example; inputs: mean, x[, logvar]. */
static dgm_var *gaussian_apply(void *self, dgm_graph *g, dgm_var *const *in,
                               int n)
{
    gauss *s = self;
    const float half_log2pi = 0.5f * logf(2.0f * (float)M_PI);
    dgm_var *d = dgm_sub(g, in[1], in[0]);
    dgm_var *e;
    if (n == 3) {
        /* 0.5 * (d^2 * exp(-logvar) + logvar + log 2pi) */
        dgm_var *lv = in[2];
        e = dgm_affine(
            g,
            dgm_add(g,
                    dgm_mul(g, dgm_square(g, d),
                            dgm_exp(g, dgm_neg(g, lv))),
                    lv),
            0.5f, half_log2pi);
    } else {
        e = dgm_affine(g, dgm_square(g, d), 0.5f / (s->std * s->std),
                       logf(s->std) + half_log2pi);
    }
    return reduce_example(g, e, false);
}

static const dgm_loss_iface gaussian_iface = {
    .create = gaussian_create,
    .min_inputs = 2,
    .max_inputs = 3,
    .inputs_help = "mean target [logvar]",
    .apply = gaussian_apply,
    .destroy = free,
};

/* ---- mse --------------------------------------------------------------- */

static const dgm_param_spec mse_params[] = {
    DGM_PARAM_CHOICE(
        "reduction", .def = "mean", .choices = "mean|sum",
        .help = "mean or sum of squared errors over each example's elements"),
    DGM_PARAM_END,
};

static int mse_create(void **self, const dgm_config *cfg)
{
    bool *sum = malloc(sizeof *sum);
    if (!sum)
        return dgm_error(DGM_ENOMEM, "mse: out of memory");
    *sum = !strcmp(dgm_cfg_str(cfg, "reduction"), "sum");
    *self = sum;
    return 0;
}

static dgm_var *mse_apply(void *self, dgm_graph *g, dgm_var *const *in, int n)
{
    bool sum = *(bool *)self;
    return reduce_example(g, dgm_square(g, dgm_sub(g, in[0], in[1])), !sum);
}

static const dgm_loss_iface mse_iface = {
    .create = mse_create,
    .min_inputs = 2,
    .max_inputs = 2,
    .inputs_help = "prediction target",
    .apply = mse_apply,
    .destroy = free,
};

static const dgm_plugin_desc descs[] = {
    {DGM_PLUGIN_HEADER, DGM_PLUGIN_LOSS(&bernoulli_iface),
     .name = "bernoulli_nll", .version = "1.0",
     .summary = "Bernoulli NLL from logits (stable BCE), summed per example",
     .params = NULL},
    {DGM_PLUGIN_HEADER, DGM_PLUGIN_LOSS(&gaussian_iface),
     .name = "gaussian_nll", .version = "1.0",
     .summary = "Gaussian NLL (fixed std or a logvar input), summed per "
                "example",
     .params = gaussian_params},
    {DGM_PLUGIN_HEADER, DGM_PLUGIN_LOSS(&mse_iface), .name = "mse",
     .version = "1.0", .summary = "squared error per example",
     .params = mse_params},
};

DGM_PLUGIN_NAME(bernoulli_nll);
DGM_PLUGIN_NAME(gaussian_nll);
DGM_PLUGIN_NAME(mse);

DGM_PLUGIN_EXPORT const dgm_plugin_desc *dgm_plugin_query(uint32_t i)
{
    return i < sizeof descs / sizeof descs[0] ? &descs[i] : NULL;
}
