/* rmsprop.c - the `rmsprop` optimizer: PyTorch 1.13's torch.optim.RMSprop
 * (centered variant, momentum, L2 weight decay); state in the
 * "square_avg", "grad_avg" and "momentum_buffer" slots. */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>

#include "dgm/dgm.h"

#define BIG 1e300

static const dgm_param_spec params[] = {
    DGM_PARAM_FLOAT(
        "lr", .def = "0.01", DGM_GE(0),
        .help = "base learning rate (> 0); the host's schedule scales it"),
    DGM_PARAM_FLOAT("alpha", .def = "0.99", DGM_GE(0), DGM_LE(1),
                    .help = "decay of the squared-gradient average"),
    DGM_PARAM_FLOAT("eps", .def = "1.0e-8", DGM_GE(0),
                    .help = "added to the root of the average"),
    DGM_PARAM_FLOAT("weight_decay", .def = "0", DGM_GE(0),
                    .help = "L2 penalty added to the gradient"),
    DGM_PARAM_FLOAT("momentum", .def = "0", DGM_GE(0), DGM_LE(1),
                    .help = "momentum factor"),
    DGM_PARAM_BOOL(
        "centered", .def = "false",
        .help = "normalise by the estimated variance instead of the raw second "
                "moment"),
    DGM_PARAM_END,
};

typedef struct rmsprop {
    float alpha, eps, weight_decay, momentum;
    bool centered;
} rmsprop;

/* What the schema cannot say; also the `check` slot, so `dgm config`
 * refuses what create would. */
static int rmsprop_check(const dgm_config *cfg)
{
    double lr = dgm_cfg_float(cfg, "lr");
    if (!(lr > 0))
        return dgm_cfg_error(cfg, "lr", DGM_ERANGE, "must be > 0, got %g", lr);
    return 0;
}

static int rmsprop_create(void **self, const dgm_config *cfg)
{
    int rc = rmsprop_check(cfg);
    if (rc < 0)
        return rc;
    rmsprop *o = calloc(1, sizeof *o);
    if (!o)
        return dgm_error(DGM_ENOMEM, "rmsprop: out of memory");
    o->alpha = (float)dgm_cfg_float(cfg, "alpha");
    o->eps = (float)dgm_cfg_float(cfg, "eps");
    o->weight_decay = (float)dgm_cfg_float(cfg, "weight_decay");
    o->momentum = (float)dgm_cfg_float(cfg, "momentum");
    o->centered = dgm_cfg_bool(cfg, "centered");
    *self = o;
    return 0;
}

static void rmsprop_destroy(void *self)
{
    free(self);
}

static bool trainable(const dgm_param *p)
{
    return p && !p->frozen && p->grad && p->value;
}

/* g' = g + wd p; sq = a sq + (1-a) g'^2;
 * centered: ga = a ga + (1-a) g', avg = sqrt(sq - ga^2) + eps,
 * else avg = sqrt(sq) + eps;
 * momentum: buf = m buf + g'/avg, p -= lr buf; else p -= lr g'/avg.
 * Inlined with constant flags below, so each variant is a branch-free
 * loop. */
static inline __attribute__((always_inline)) void
rmsprop_loop(float *restrict p, const float *restrict g, float *restrict sq,
             float *restrict ga, float *restrict buf, int64_t n, float lr,
             float a, float eps, float wd, float m, bool centered,
             bool momentum)
{
    const float one_a = 1.0f - a;
    for (int64_t i = 0; i < n; i++) {
        float gi = g[i] + wd * p[i];
        float s = a * sq[i] + one_a * (gi * gi);
        sq[i] = s;
        float avg;
        if (centered) {
            float c = a * ga[i] + one_a * gi;
            ga[i] = c;
            avg = sqrtf(s - c * c) + eps;
        } else {
            avg = sqrtf(s) + eps;
        }
        if (momentum) {
            float b = m * buf[i] + gi / avg;
            buf[i] = b;
            p[i] -= lr * b;
        } else {
            p[i] -= lr * (gi / avg);
        }
    }
}

/* ga and buf are NULL when unused. */
static void rmsprop_kernel(float *p, const float *g, float *sq, float *ga,
                           float *buf, int64_t n, float lr, float a, float eps,
                           float wd, float m)
{
    if (ga && buf)
        rmsprop_loop(p, g, sq, ga, buf, n, lr, a, eps, wd, m, true, true);
    else if (ga)
        rmsprop_loop(p, g, sq, ga, NULL, n, lr, a, eps, wd, m, true, false);
    else if (buf)
        rmsprop_loop(p, g, sq, NULL, buf, n, lr, a, eps, wd, m, false, true);
    else
        rmsprop_loop(p, g, sq, NULL, NULL, n, lr, a, eps, wd, m, false, false);
}

static int rmsprop_step(void *self, dgm_param *const *ps, int n, double lr,
                        int64_t t)
{
    rmsprop *o = self;
    if (n < 0 || (n > 0 && !ps))
        return dgm_error(DGM_EINVAL, "rmsprop: step given %d params", n);
    for (int i = 0; i < n; i++) {
        dgm_param *p = ps[i];
        if (!trainable(p))
            continue;
        if (p->value->dtype != DGM_F32 || p->grad->dtype != DGM_F32)
            return dgm_error(DGM_EDTYPE, "rmsprop: parameter '%s' is not f32",
                             p->name);
        /* All state first, so running out of memory changes nothing. */
        if (!dgm_param_slot(p, "square_avg") ||
            (o->centered && !dgm_param_slot(p, "grad_avg")) ||
            (o->momentum > 0 && !dgm_param_slot(p, "momentum_buffer")))
            return dgm_error(DGM_ENOMEM,
                             "rmsprop: no memory for the state of '%s'",
                             p->name);
    }
    for (int i = 0; i < n; i++) {
        dgm_param *p = ps[i];
        if (!trainable(p))
            continue;
        float *ga =
            o->centered ? dgm_tensor_f32(dgm_param_slot(p, "grad_avg")) : NULL;
        float *buf = o->momentum > 0
                         ? dgm_tensor_f32(dgm_param_slot(p, "momentum_buffer"))
                         : NULL;
        rmsprop_kernel(dgm_tensor_f32(p->value), dgm_tensor_f32(p->grad),
                       dgm_tensor_f32(dgm_param_slot(p, "square_avg")), ga, buf,
                       dgm_tensor_numel(p->value), (float)lr, o->alpha, o->eps,
                       o->weight_decay, o->momentum);
    }
    return 0;
}

static const dgm_optimizer_iface iface = {.create = rmsprop_create,
                                          .step = rmsprop_step,
                                          .destroy = rmsprop_destroy,
                                          .check = rmsprop_check,
                                          .params_independent = true};

static const dgm_plugin_desc desc = {
    DGM_PLUGIN_HEADER,
    DGM_PLUGIN_OPTIMIZER(&iface),
    .name = "rmsprop",
    .version = "1.0",
    .summary = "RMSprop, optionally centered, with momentum "
               "(torch.optim.RMSprop)",
    .params = params,

};

DGM_PLUGIN_NAME(rmsprop);

DGM_PLUGIN_EXPORT const dgm_plugin_desc *dgm_plugin_query(uint32_t index)
{
    return index == 0 ? &desc : NULL;
}
