/* sgd.c - the `sgd` optimizer: PyTorch 1.13's torch.optim.SGD (momentum,
 * dampening, Nesterov, L2 weight decay), state in the "momentum_buffer"
 * slot. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/dgm.h"

#define BIG 1e300

static const dgm_param_spec params[] = {
    DGM_PARAM_FLOAT(
        "lr", .def = "0.01", DGM_GE(0),
        .help = "base learning rate (> 0); the host's schedule scales it"),
    DGM_PARAM_FLOAT("momentum", .def = "0", DGM_GE(0), DGM_LE(1),
                    .help = "momentum factor"),
    DGM_PARAM_FLOAT(
        "dampening", .def = "0", DGM_GE(0), DGM_LE(1),
        .help = "dampening of the gradient added to the momentum buffer"),
    DGM_PARAM_BOOL(
        "nesterov", .def = "false",
        .help = "Nesterov momentum (needs momentum > 0 and dampening 0)"),
    DGM_PARAM_FLOAT("weight_decay", .def = "0", DGM_GE(0),
                    .help = "L2 penalty added to the gradient"),
    DGM_PARAM_END,
};

typedef struct sgd {
    float momentum, dampening, weight_decay;
    bool nesterov;
    /* step()'s scratch: which params had no buffer yet (grown, not
     * reallocated, in steady state). */
    bool *fresh;
    int cap;
} sgd;

/* What the schema cannot say; also the `check` slot, so `dgm config`
 * refuses what create would. */
static int sgd_check(const dgm_config *cfg)
{
    double lr = dgm_cfg_float(cfg, "lr");
    double momentum = dgm_cfg_float(cfg, "momentum");
    double dampening = dgm_cfg_float(cfg, "dampening");
    if (!(lr > 0))
        return dgm_cfg_error(cfg, "lr", DGM_ERANGE, "must be > 0, got %g", lr);
    if (dgm_cfg_bool(cfg, "nesterov") && (momentum <= 0 || dampening != 0))
        return dgm_cfg_error(cfg, "nesterov", DGM_ECONFIG,
                             "Nesterov momentum needs momentum > 0 and "
                             "dampening 0 (momentum %g, dampening %g)",
                             momentum, dampening);
    return 0;
}

static int sgd_create(void **self, const dgm_config *cfg)
{
    int rc = sgd_check(cfg);
    if (rc < 0)
        return rc;
    sgd *o = calloc(1, sizeof *o);
    if (!o)
        return dgm_error(DGM_ENOMEM, "sgd: out of memory");
    o->momentum = (float)dgm_cfg_float(cfg, "momentum");
    o->dampening = (float)dgm_cfg_float(cfg, "dampening");
    o->nesterov = dgm_cfg_bool(cfg, "nesterov");
    o->weight_decay = (float)dgm_cfg_float(cfg, "weight_decay");
    *self = o;
    return 0;
}

static void sgd_destroy(void *self)
{
    sgd *o = self;
    if (!o)
        return;
    free(o->fresh);
    free(o);
}

static bool has_slot(const dgm_param *p, const char *name)
{
    int n = dgm_param_slot_count(p);
    for (int i = 0; i < n; i++) {
        const char *s = NULL;
        if (dgm_param_slot_at(p, i, &s) && s && !strcmp(s, name))
            return true;
    }
    return false;
}

static bool trainable(const dgm_param *p)
{
    return p && !p->frozen && p->grad && p->value;
}

/* d = g + wd * p; buf = fresh ? d : m * buf + (1 - damp) * d;
 * p -= lr * (nesterov ? d + m * buf : buf). */
static void sgd_momentum_kernel(float *restrict p, const float *restrict g,
                                float *restrict buf, int64_t n, float lr,
                                float wd, float m, float damp, bool fresh,
                                bool nesterov)
{
    const float keep = 1.0f - damp;
    if (fresh) {
        for (int64_t i = 0; i < n; i++)
            buf[i] = g[i] + wd * p[i];
    } else {
        for (int64_t i = 0; i < n; i++)
            buf[i] = m * buf[i] + keep * (g[i] + wd * p[i]);
    }
    if (nesterov) {
        for (int64_t i = 0; i < n; i++)
            p[i] -= lr * ((g[i] + wd * p[i]) + m * buf[i]);
    } else {
        for (int64_t i = 0; i < n; i++)
            p[i] -= lr * buf[i];
    }
}

static void sgd_plain_kernel(float *restrict p, const float *restrict g,
                             int64_t n, float lr, float wd)
{
    for (int64_t i = 0; i < n; i++)
        p[i] -= lr * (g[i] + wd * p[i]);
}

static int sgd_step(void *self, dgm_param *const *ps, int n, double lr,
                    int64_t t)
{
    sgd *o = self;
    if (n < 0 || (n > 0 && !ps))
        return dgm_error(DGM_EINVAL, "sgd: step given %d params", n);
    for (int i = 0; i < n; i++)
        if (trainable(ps[i]) &&
            (ps[i]->value->dtype != DGM_F32 || ps[i]->grad->dtype != DGM_F32))
            return dgm_error(DGM_EDTYPE, "sgd: parameter '%s' is not f32",
                             ps[i]->name);
    const bool use_buf = o->momentum != 0;
    if (use_buf) {
        /* Make every buffer first, so running out of memory changes no
         * parameter. */
        if (n > o->cap) {
            bool *f = realloc(o->fresh, (size_t)n * sizeof *f);
            if (!f)
                return dgm_error(DGM_ENOMEM, "sgd: out of memory");
            o->fresh = f;
            o->cap = n;
        }
        for (int i = 0; i < n; i++) {
            if (!trainable(ps[i]))
                continue;
            o->fresh[i] = !has_slot(ps[i], "momentum_buffer");
            if (!dgm_param_slot(ps[i], "momentum_buffer"))
                return dgm_error(DGM_ENOMEM,
                                 "sgd: no memory for the momentum buffer of "
                                 "'%s'",
                                 ps[i]->name);
        }
    }
    for (int i = 0; i < n; i++) {
        dgm_param *p = ps[i];
        if (!trainable(p))
            continue;
        float *w = dgm_tensor_f32(p->value);
        const float *g = dgm_tensor_f32(p->grad);
        int64_t len = dgm_tensor_numel(p->value);
        if (use_buf)
            sgd_momentum_kernel(
                w, g, dgm_tensor_f32(dgm_param_slot(p, "momentum_buffer")), len,
                (float)lr, o->weight_decay, o->momentum, o->dampening,
                o->fresh[i], o->nesterov);
        else
            sgd_plain_kernel(w, g, len, (float)lr, o->weight_decay);
    }
    return 0;
}

static const dgm_optimizer_iface iface = {.create = sgd_create,
                                          .step = sgd_step,
                                          .destroy = sgd_destroy,
                                          .check = sgd_check,
                                          .params_independent = true};

static const dgm_plugin_desc desc = {
    DGM_PLUGIN_HEADER,
    DGM_PLUGIN_OPTIMIZER(&iface),
    .name = "sgd",
    .version = "1.0",
    .summary = "stochastic gradient descent with momentum (torch.optim.SGD)",
    .params = params,

};

DGM_PLUGIN_NAME(sgd);

DGM_PLUGIN_EXPORT const dgm_plugin_desc *dgm_plugin_query(uint32_t index)
{
    return index == 0 ? &desc : NULL;
}
