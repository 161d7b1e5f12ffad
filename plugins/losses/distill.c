/* distill.c - loss `distill`: a student matches a frozen teacher, by KL
 * between temperature-softened class distributions (Hinton et al.) or by
 * mean squared error between features. The teacher's input is detached
 * here, so no gradient ever reaches the teacher. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/dgm.h"

static const dgm_param_spec params[] = {
    DGM_PARAM_CHOICE(
        "mode", .def = "kl", .choices = "kl|mse",
        .help =
            "kl: KL(softmax(t/T) || softmax(s/T)) * T^2 on logits [N, C]; mse: "
            "mean over features of (s - t)^2"),
    DGM_PARAM_FLOAT("temperature", .def = "1.0", DGM_GE(1e-6), DGM_LE(1e6),
                    .help = "T, the softening temperature (kl only)"),
    DGM_PARAM_END,
};

typedef struct distill {
    bool kl;
    float t;
} distill;

static int distill_create(void **self, const dgm_config *cfg)
{
    distill *d = calloc(1, sizeof *d);
    if (!d)
        return dgm_error(DGM_ENOMEM, "distill: out of memory");
    d->kl = !strcmp(dgm_cfg_str(cfg, "mode"), "kl");
    d->t = (float)dgm_cfg_float(cfg, "temperature");
    *self = d;
    return 0;
}

static void distill_destroy(void *self)
{
    free(self);
}

static dgm_var *distill_apply(void *self, dgm_graph *g, dgm_var *const *in,
                              int n)
{
    (void)n;
    distill *d = self;
    dgm_var *s = in[0], *t = in[1];
    if (!s || !t)
        return NULL;
    const dgm_tensor *sv = dgm_value(s), *tv = dgm_value(t);
    char a[96], b[96];
    if (!dgm_tensor_same_shape(sv, tv) || sv->ndim < 2 ||
        (d->kl && sv->ndim != 2)) {
        dgm_error(DGM_ESHAPE,
                  "distill (%s): student %s and teacher %s must have one "
                  "shape, [N, C] for kl, [N, ...] for mse",
                  d->kl ? "kl" : "mse", dgm_tensor_describe(sv, a, sizeof a),
                  dgm_tensor_describe(tv, b, sizeof b));
        return NULL;
    }
    t = dgm_detach(g, t);
    if (!d->kl) {
        dgm_var *diff =
            dgm_square(g, dgm_sub(g, dgm_flatten(g, s), dgm_flatten(g, t)));
        return dgm_mean(g, diff, 1u << 1, false);
    }
    float inv = 1.0f / d->t;
    dgm_var *lt = dgm_log_softmax(g, dgm_affine(g, t, inv, 0.0f), 1);
    dgm_var *ls = dgm_log_softmax(g, dgm_affine(g, s, inv, 0.0f), 1);
    dgm_var *pt = dgm_exp(g, lt);
    dgm_var *kl =
        dgm_sum(g, dgm_mul(g, pt, dgm_sub(g, lt, ls)), 1u << 1, false);
    return dgm_affine(g, kl, d->t * d->t, 0.0f);
}

static const dgm_loss_iface iface = {
    .create = distill_create,
    .min_inputs = 2,
    .max_inputs = 2,
    .inputs_help = "student teacher",
    .apply = distill_apply,
    .destroy = distill_destroy,
};

static const dgm_plugin_desc desc = {
    DGM_PLUGIN_HEADER,
    DGM_PLUGIN_LOSS(&iface),
    .name = "distill",
    .version = "1.0",
    .summary = "student vs frozen teacher: softened-logit KL or feature MSE",
    .params = params,

};

DGM_PLUGIN_NAME(distill);

DGM_PLUGIN_EXPORT const dgm_plugin_desc *dgm_plugin_query(uint32_t i)
{
    return i == 0 ? &desc : NULL;
}
