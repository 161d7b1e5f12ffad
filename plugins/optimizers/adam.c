/* adam.c - the `adam` and `adamw` optimizers: PyTorch 1.13's torch.optim.Adam
 * (L2 weight decay added to the gradient) and AdamW (decoupled decay),
 * with AMSGrad; state in the "exp_avg", "exp_avg_sq" and "max_exp_avg_sq"
 * slots. One step is one parallel pass over all the group's parameters,
 * cut into chunks. */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>

#include "dgm/dgm.h"

#define BIG 1e300

/* Elements per unit of work: 64 KB of each of p, g, m, v, enough to
 * amortise the loop's overhead, small enough to spread 100k-parameter
 * layers over both threads. */
#define ADAM_CHUNK 16384

/* The two schemas differ only in weight_decay's default and meaning. */
#define ADAM_SHARED_PARAMS                                                     \
    DGM_PARAM_FLOAT(                                                           \
        "lr", .def = "1.0e-3", DGM_GE(0),                                      \
        .help = "base learning rate (> 0); the host's schedule scales it"),    \
        DGM_PARAM_FLOAT("beta1", .def = "0.9", DGM_GE(0), DGM_LE(1),           \
                        .help = "decay of the first-moment average, "          \
                                "in [0, 1)"),                                  \
        DGM_PARAM_FLOAT("beta2", .def = "0.999", DGM_GE(0), DGM_LE(1),         \
                        .help = "decay of the second-moment average, "         \
                                "in [0, 1)"),                                  \
        DGM_PARAM_FLOAT(                                                       \
            "eps", .def = "1.0e-8", DGM_GE(0),                                 \
            .help = "added to the bias-corrected sqrt of the second moment"),  \
        DGM_PARAM_BOOL(                                                        \
            "amsgrad", .def = "false",                                         \
            .help = "use the running maximum of the second moment (AMSGrad)")

static const dgm_param_spec adam_params[] = {
    ADAM_SHARED_PARAMS,
    DGM_PARAM_FLOAT("weight_decay", .def = "0", DGM_GE(0),
                    .help = "L2 penalty added to the gradient"),
    DGM_PARAM_END,
};

static const dgm_param_spec adamw_params[] = {
    ADAM_SHARED_PARAMS,
    DGM_PARAM_FLOAT(
        "weight_decay", .def = "0.01", DGM_GE(0),
        .help =
            "decoupled decay: p *= 1 - lr * weight_decay before the update"),
    DGM_PARAM_END,
};

/* A run of one parameter's elements, updated by one thread. */
typedef struct chunk {
    float *p, *m, *v, *vmax;
    const float *g;
    int64_t n;
} chunk;

typedef struct adam {
    const char *name; /* "adam" or "adamw", for messages */
    bool decoupled;
    double beta1, beta2, eps, weight_decay;
    bool amsgrad;
    chunk *chunks; /* the step's work list, kept to avoid a malloc a step */
    int64_t cap;
} adam;

/* What the schema cannot say (both schemas); also the `check` slot, so
 * `dgm config` refuses what create would. */
static int adam_check(const dgm_config *cfg)
{
    double lr = dgm_cfg_float(cfg, "lr");
    double beta1 = dgm_cfg_float(cfg, "beta1");
    double beta2 = dgm_cfg_float(cfg, "beta2");
    if (!(lr > 0))
        return dgm_cfg_error(cfg, "lr", DGM_ERANGE, "must be > 0, got %g", lr);
    /* beta = 1 would make the bias correction 1 - beta^t zero. */
    if (!(beta1 < 1))
        return dgm_cfg_error(cfg, "beta1", DGM_ERANGE,
                             "must be in [0, 1), got %g", beta1);
    if (!(beta2 < 1))
        return dgm_cfg_error(cfg, "beta2", DGM_ERANGE,
                             "must be in [0, 1), got %g", beta2);
    return 0;
}

static int create_common(void **self, const dgm_config *cfg, const char *name,
                         bool decoupled)
{
    int rc = adam_check(cfg);
    if (rc < 0)
        return rc;
    adam *o = calloc(1, sizeof *o);
    if (!o)
        return dgm_error(DGM_ENOMEM, "%s: out of memory", name);
    o->name = name;
    o->decoupled = decoupled;
    o->beta1 = dgm_cfg_float(cfg, "beta1");
    o->beta2 = dgm_cfg_float(cfg, "beta2");
    o->eps = dgm_cfg_float(cfg, "eps");
    o->weight_decay = dgm_cfg_float(cfg, "weight_decay");
    o->amsgrad = dgm_cfg_bool(cfg, "amsgrad");
    *self = o;
    return 0;
}

static int adam_create(void **self, const dgm_config *cfg)
{
    return create_common(self, cfg, "adam", false);
}

static int adamw_create(void **self, const dgm_config *cfg)
{
    return create_common(self, cfg, "adamw", true);
}

static void adam_destroy(void *self)
{
    adam *o = self;
    free(o->chunks);
    free(o);
}

static bool trainable(const dgm_param *p)
{
    return p && !p->frozen && p->grad && p->value;
}

/* The per-step scalars, computed once in double as PyTorch does in
 * Python, then used in float like its kernels. */
typedef struct coeffs {
    float decay;      /* adamw: 1 - lr * wd; adam: 1 */
    float l2;         /* adam: wd; adamw: 0 */
    float b1, one_b1; /* beta1, 1 - beta1 */
    float b2, one_b2;
    float bc2_sqrt;  /* sqrt(1 - beta2^t) */
    float step_size; /* lr / (1 - beta1^t) */
    float eps;
} coeffs;

/* g' = g + l2 * p; m = b1 m + (1-b1) g'; v = b2 v + (1-b2) g'^2;
 * p = decay * p - step_size * m / (sqrt(v) / sqrt(bc2) + eps). */
static void adam_kernel(float *restrict p, const float *restrict g,
                        float *restrict m, float *restrict v, int64_t n,
                        const coeffs *c)
{
    const coeffs k = *c;
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        float gi = g[i] + k.l2 * p[i];
        float mi = k.b1 * m[i] + k.one_b1 * gi;
        float vi = k.b2 * v[i] + k.one_b2 * (gi * gi);
        m[i] = mi;
        v[i] = vi;
        float denom = sqrtf(vi) / k.bc2_sqrt + k.eps;
        p[i] = k.decay * p[i] - k.step_size * (mi / denom);
    }
}

static void amsgrad_kernel(float *restrict p, const float *restrict g,
                           float *restrict m, float *restrict v,
                           float *restrict vmax, int64_t n, const coeffs *c)
{
    const coeffs k = *c;
    for (int64_t i = 0; i < n; i++) {
        float gi = g[i] + k.l2 * p[i];
        float mi = k.b1 * m[i] + k.one_b1 * gi;
        float vi = k.b2 * v[i] + k.one_b2 * (gi * gi);
        float vm = vmax[i] > vi ? vmax[i] : vi;
        m[i] = mi;
        v[i] = vi;
        vmax[i] = vm;
        float denom = sqrtf(vm) / k.bc2_sqrt + k.eps;
        p[i] = k.decay * p[i] - k.step_size * (mi / denom);
    }
}

static int adam_step(void *self, dgm_param *const *ps, int n, double lr,
                     int64_t t)
{
    adam *o = self;
    if (n < 0 || (n > 0 && !ps))
        return dgm_error(DGM_EINVAL, "%s: step given %d params", o->name, n);
    if (t < 1)
        return dgm_error(DGM_EINVAL,
                         "%s: update count t must be >= 1, got %lld", o->name,
                         (long long)t);
    for (int i = 0; i < n; i++) {
        dgm_param *p = ps[i];
        if (!trainable(p))
            continue;
        if (p->value->dtype != DGM_F32 || p->grad->dtype != DGM_F32)
            return dgm_error(DGM_EDTYPE, "%s: parameter '%s' is not f32",
                             o->name, p->name);
        /* Make all state first so running out of memory changes no
         * parameter. */
        if (!dgm_param_slot(p, "exp_avg") || !dgm_param_slot(p, "exp_avg_sq") ||
            (o->amsgrad && !dgm_param_slot(p, "max_exp_avg_sq")))
            return dgm_error(DGM_ENOMEM, "%s: no memory for the state of '%s'",
                             o->name, p->name);
    }
    double bc1 = 1.0 - pow(o->beta1, (double)t);
    double bc2 = 1.0 - pow(o->beta2, (double)t);
    coeffs c = {
        .decay = o->decoupled ? (float)(1.0 - lr * o->weight_decay) : 1.0f,
        .l2 = o->decoupled ? 0.0f : (float)o->weight_decay,
        .b1 = (float)o->beta1,
        .one_b1 = (float)(1.0 - o->beta1),
        .b2 = (float)o->beta2,
        .one_b2 = (float)(1.0 - o->beta2),
        .bc2_sqrt = (float)sqrt(bc2),
        .step_size = (float)(lr / bc1),
        .eps = (float)o->eps,
    };
    /* The work list: every trainable parameter cut into chunks, so that
     * one parallel loop spreads them all over the threads (a loop per
     * parameter ran the char transformer's many small ones on one thread
     * each and started a thread team for each large one). */
    int64_t nc = 0, total = 0;
    for (int i = 0; i < n; i++)
        if (trainable(ps[i])) {
            int64_t len = dgm_tensor_numel(ps[i]->value);
            nc += (len + ADAM_CHUNK - 1) / ADAM_CHUNK;
            total += len;
        }
    if (nc > o->cap) {
        chunk *c2 = realloc(o->chunks, sizeof(chunk) * (size_t)nc);
        if (!c2)
            return dgm_error(DGM_ENOMEM, "%s: no memory for %lld chunks",
                             o->name, (long long)nc);
        o->chunks = c2;
        o->cap = nc;
    }
    chunk *ch = o->chunks;
    int64_t k = 0;
    for (int i = 0; i < n; i++) {
        dgm_param *p = ps[i];
        if (!trainable(p))
            continue;
        float *w = dgm_tensor_f32(p->value);
        const float *g = dgm_tensor_f32(p->grad);
        float *m = dgm_tensor_f32(dgm_param_slot(p, "exp_avg"));
        float *v = dgm_tensor_f32(dgm_param_slot(p, "exp_avg_sq"));
        float *vm = o->amsgrad
                        ? dgm_tensor_f32(dgm_param_slot(p, "max_exp_avg_sq"))
                        : NULL;
        int64_t len = dgm_tensor_numel(p->value);
        for (int64_t off = 0; off < len; off += ADAM_CHUNK, k++)
            ch[k] = (chunk){
                w + off, m + off,
                v + off, vm ? vm + off : NULL,
                g + off, len - off < ADAM_CHUNK ? len - off : ADAM_CHUNK};
    }
    const bool ams = o->amsgrad;
    /* Memory-bound: both cores' bandwidth helps once there is enough. */
#pragma omp parallel for schedule(static) if (total >= 65536)
    for (int64_t j = 0; j < nc; j++) {
        const chunk *q = &ch[j];
        if (ams)
            amsgrad_kernel(q->p, q->g, q->m, q->v, q->vmax, q->n, &c);
        else
            adam_kernel(q->p, q->g, q->m, q->v, q->n, &c);
    }
    return 0;
}

static const dgm_optimizer_iface adam_iface = {.create = adam_create,
                                               .step = adam_step,
                                               .destroy = adam_destroy,
                                               .check = adam_check,
                                               .params_independent = true};
static const dgm_optimizer_iface adamw_iface = {.create = adamw_create,
                                                .step = adam_step,
                                                .destroy = adam_destroy,
                                                .check = adam_check,
                                                .params_independent = true};

static const dgm_plugin_desc descs[] = {
    {
        DGM_PLUGIN_HEADER,
        DGM_PLUGIN_OPTIMIZER(&adam_iface),
        .name = "adam",
        .version = "1.0",
        .summary = "Adam with L2 weight decay and AMSGrad (torch.optim.Adam)",
        .params = adam_params,

    },
    {
        DGM_PLUGIN_HEADER,
        DGM_PLUGIN_OPTIMIZER(&adamw_iface),
        .name = "adamw",
        .version = "1.0",
        .summary = "Adam with decoupled weight decay (torch.optim.AdamW)",
        .params = adamw_params,

    },
};

DGM_PLUGIN_NAME(adam);
DGM_PLUGIN_NAME(adamw);

DGM_PLUGIN_EXPORT const dgm_plugin_desc *dgm_plugin_query(uint32_t index)
{
    return index < sizeof descs / sizeof *descs ? &descs[index] : NULL;
}
