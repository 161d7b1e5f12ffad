/* tp_host.c - test plugins for what the host promises a plugin author
 * (docs/writing-plugins.md): the block `tp_wrong_shape` reports the
 * shape it is asked for but returns its input unchanged; the loss
 * `tp_scalar_mse` returns the batch's mean squared error as one scalar
 * (the batch mean of what `mse` gives per example); the optimizer
 * `tp_probe_sgd` is plain SGD that refuses any parameter the docs say
 * `step` never receives and counts its updates in a state slot. */
#include <stdlib.h>
#include <string.h>

#include "dgm/dgm.h"

/* ---- tp_wrong_shape ---------------------------------------------------- */

static int wrong_create(void **self, const dgm_config *cfg, dgm_build *b,
                        const dgm_shape *in, dgm_shape *out)
{
    (void)cfg;
    (void)b;
    if (out->ndim == 0)
        *out = *in;
    *self = malloc(1);
    return *self ? 0 : dgm_error(DGM_ENOMEM, "tp_wrong_shape: out of memory");
}

static dgm_var *wrong_forward(void *self, dgm_graph *g, dgm_var *x)
{
    (void)self;
    (void)g;
    return x; /* whatever create reported */
}

static const dgm_block_iface wrong_iface = {
    .create = wrong_create, .forward = wrong_forward, .destroy = free};

/* ---- tp_scalar_mse ------------------------------------------------------ */

/* in[0], in[1] [N, ...] -> the scalar mean of (in[0] - in[1])^2. */
static dgm_var *scalar_apply(void *self, dgm_graph *g, dgm_var *const *in,
                             int n)
{
    (void)self;
    (void)n;
    return dgm_mean_all(g, dgm_square(g, dgm_sub(g, in[0], in[1])));
}

static const dgm_loss_iface scalar_iface = {.min_inputs = 2,
                                            .max_inputs = 2,
                                            .inputs_help = "a b",
                                            .apply = scalar_apply};

/* ---- tp_probe_sgd ------------------------------------------------------ */

static const dgm_param_spec probe_params[] = {
    DGM_PARAM_FLOAT("lr", .def = "0.01", DGM_GE(0), .help = "learning rate"),
    DGM_PARAM_FLOAT("weight_decay", .def = "0", DGM_GE(0),
                    .help = "L2 penalty added to the gradient"),
    DGM_PARAM_END,
};

typedef struct probe {
    double wd;
} probe;

static int probe_create(void **self, const dgm_config *cfg)
{
    probe *o = calloc(1, sizeof *o);
    if (!o)
        return dgm_error(DGM_ENOMEM, "tp_probe_sgd: out of memory");
    o->wd = dgm_cfg_float(cfg, "weight_decay");
    *self = o;
    return 0;
}

static int probe_step(void *self, dgm_param *const *ps, int n, double lr,
                      int64_t t)
{
    probe *o = self;
    for (int i = 0; i < n; i++) {
        dgm_param *p = ps[i];
        if (p->frozen || p->role != DGM_ROLE_WEIGHT || !p->grad)
            return dgm_error(DGM_EINVAL,
                             "tp_probe_sgd: given '%s' (frozen %d, role %d)",
                             p->name, p->frozen, (int)p->role);
        if (!dgm_tensor_is_contiguous(p->grad) ||
            !dgm_tensor_same_shape(p->grad, p->value) ||
            p->grad->dtype != DGM_F32 || p->value->dtype != DGM_F32)
            return dgm_error(DGM_EINVAL,
                             "tp_probe_sgd: '%s' has a gradient unlike "
                             "its value",
                             p->name);
        /* calls[0]: updates seen; calls[1]: the last t (when it fits). */
        dgm_tensor *calls = dgm_param_slot(p, "calls");
        if (!calls)
            return dgm_error(DGM_ENOMEM, "tp_probe_sgd: out of memory");
        float *c = dgm_tensor_f32(calls);
        c[0] += 1.0f;
        if (dgm_tensor_numel(calls) > 1)
            c[1] = (float)t;
        float *w = dgm_tensor_f32(p->value);
        const float *gr = dgm_tensor_f32(p->grad);
        for (int64_t k = 0; k < dgm_tensor_numel(p->value); k++)
            w[k] -= (float)lr * (gr[k] + (float)o->wd * w[k]);
    }
    return 0;
}

static const dgm_optimizer_iface probe_iface = {
    .create = probe_create, .step = probe_step, .destroy = free};

static const dgm_plugin_desc descs[] = {
    {DGM_PLUGIN_HEADER, DGM_PLUGIN_BLOCK(&wrong_iface),
     .name = "tp_wrong_shape", .version = "1.0",
     .summary = "test block: claims any shape, returns x"},
    {DGM_PLUGIN_HEADER, DGM_PLUGIN_LOSS(&scalar_iface), .name = "tp_scalar_mse",
     .version = "1.0", .summary = "test loss: scalar batch mean of (a - b)^2"},
    {DGM_PLUGIN_HEADER, DGM_PLUGIN_OPTIMIZER(&probe_iface),
     .name = "tp_probe_sgd", .version = "1.0",
     .summary = "test optimizer: SGD that checks its input",
     .params = probe_params},
};

DGM_PLUGIN_EXPORT const dgm_plugin_desc *dgm_plugin_query(uint32_t i)
{
    return i < sizeof descs / sizeof descs[0] ? &descs[i] : NULL;
}
