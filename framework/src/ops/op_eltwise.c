/* op_eltwise.c - unary elementwise ops: reference loops and oneDNN eltwise
 * forward/backward (the *_use_dst_for_bwd algs where the output is all the
 * backward needs, so the input need not be kept). Strided inputs are
 * copied to a contiguous arena tensor first. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dnnl_util.h"
#include "graph_internal.h"
#include "strided.h"
#include "vmath.h"

typedef enum ekind {
    E_RELU, E_LEAKY, E_ELU, E_GELU, E_TANH, E_SIGMOID, E_SOFTPLUS, E_EXP,
    E_LOG, E_SQRT, E_SQUARE, E_ABS, E_CLAMP, E_AFFINE
} ekind;

/* The dgm__op first so the node's op pointer leads back to its entry. */
typedef struct edef {
    dgm__op op;
    ekind kind;
    dnnl_alg_kind_t alg;     /* forward and backward alg */
    bool use_dst;            /* backward reads y (saved[0] = y) */
} edef;

static int eltwise_backward(dgm_graph *g, dgm_var *node);

#define E(id, kind, alg, dst)                                                  \
    {                                                                          \
        {DGM_OP_##id, eltwise_backward}, kind, alg, dst                        \
    }
static const edef d_relu =
    E(RELU, E_RELU, dnnl_eltwise_relu_use_dst_for_bwd, true);
static const edef d_leaky = E(LEAKY_RELU, E_LEAKY, dnnl_eltwise_relu, false);
static const edef d_leaky_dst =
    E(LEAKY_RELU, E_LEAKY, dnnl_eltwise_relu_use_dst_for_bwd, true);
static const edef d_elu = E(ELU, E_ELU, dnnl_eltwise_elu_use_dst_for_bwd, true);
static const edef d_elu_src = E(ELU, E_ELU, dnnl_eltwise_elu, false);
static const edef d_gelu = E(GELU, E_GELU, dnnl_eltwise_gelu_erf, false);
static const edef d_tanh =
    E(TANH, E_TANH, dnnl_eltwise_tanh_use_dst_for_bwd, true);
static const edef d_sigmoid =
    E(SIGMOID, E_SIGMOID, dnnl_eltwise_logistic_use_dst_for_bwd, true);
static const edef d_softplus =
    E(SOFTPLUS, E_SOFTPLUS, dnnl_eltwise_soft_relu, false);
static const edef d_exp = E(EXP, E_EXP, dnnl_eltwise_exp_use_dst_for_bwd, true);
static const edef d_log = E(LOG, E_LOG, dnnl_eltwise_log, false);
static const edef d_sqrt =
    E(SQRT, E_SQRT, dnnl_eltwise_sqrt_use_dst_for_bwd, true);
static const edef d_square = E(SQUARE, E_SQUARE, dnnl_eltwise_square, false);
static const edef d_abs = E(ABS, E_ABS, dnnl_eltwise_abs, false);
static const edef d_clamp = E(CLAMP, E_CLAMP, dnnl_eltwise_clip_v2, false);
static const edef d_affine = E(AFFINE, E_AFFINE, dnnl_eltwise_linear, false);
static const edef d_neg = E(NEG, E_AFFINE, dnnl_eltwise_linear, false);
#undef E

/* Whether oneDNN beats the C loop. Measured at the VAE's shapes with 2
 * threads: a oneDNN eltwise call costs 20-40 us of dispatch and thread
 * wake-up, the vectorised C loop for relu/affine/square on 51200 floats
 * about 10 us; transcendental ops gain from oneDNN's JIT only on large
 * tensors. */
#define DNNL_TRANSCENDENTAL_MIN 32768
static bool dnnl_worth(ekind k, int64_t n)
{
    switch (k) {
    case E_RELU:
    case E_LEAKY:
    case E_SQUARE:
    case E_ABS:
    case E_CLAMP:
    case E_AFFINE:
        return false;
    default:
        return n >= DNNL_TRANSCENDENTAL_MIN;
    }
}

/* ---- reference kernels ----------------------------------------------- */

/* y[i] = f(x[i]); x, y contiguous [n]. */
static void ref_forward(ekind k, float a, float b, int64_t n, float *y,
                        const float *x)
{
    int64_t i;
/* Small tensors skip OpenMP entirely: even a one-thread team costs about
 * a microsecond, the whole budget of a small op. */
#define LOOP(expr)                                                          \
    if (n > 16384) {                                                        \
        _Pragma("omp parallel for simd schedule(static)")                   \
        for (i = 0; i < n; i++) {                                           \
            const float v = x[i];                                           \
            y[i] = (expr);                                                  \
        }                                                                   \
    } else {                                                                \
        _Pragma("omp simd")                                                 \
        for (i = 0; i < n; i++) {                                           \
            const float v = x[i];                                           \
            y[i] = (expr);                                                  \
        }                                                                   \
    }
    switch (k) {
    case E_RELU: LOOP(v > 0.0f ? v : 0.0f) break;
    case E_LEAKY: LOOP(v > 0.0f ? v : a * v) break;
    case E_ELU: LOOP(v > 0.0f ? v : a * expm1f(v)) break;
    case E_GELU: LOOP(0.5f * v * (1.0f + erff(v * 0.70710678118654752f))) break;
    case E_TANH: LOOP(tanhf(v)) break;
    /* exp_k/log1p_k (vmath.h) vectorise; glibc's expf/log1pf do not. */
    case E_SIGMOID: LOOP(1.0f / (1.0f + exp_k(-v))) break;
    case E_SOFTPLUS:
        LOOP((v > 0.0f ? v : 0.0f) + log1p_k(exp_k(-fabsf(v))))
        break;
    case E_EXP: LOOP(exp_k(v)) break;
    case E_LOG: LOOP(logf(v)) break;
    case E_SQRT: LOOP(sqrtf(v)) break;
    case E_SQUARE: LOOP(v * v) break;
    case E_ABS: LOOP(fabsf(v)) break;
    case E_CLAMP: LOOP(v < a ? a : (v > b ? b : v)) break;
    case E_AFFINE: LOOP(a * v + b) break;
    }
#undef LOOP
#undef LOOP1
}

/* dx[i] (= or +=) dy[i] * f'(.), from s = saved x or y. */
/* dx = (store) or += (add) the input gradient. */
static void ref_backward(ekind k, bool use_dst, float a, float b, int64_t n,
                         float *dx, const float *dy, const float *s, bool store)
{
    int64_t i;
#define LOOP1(OP, expr)                                                        \
    if (n > 16384) {                                                           \
        _Pragma("omp parallel for simd schedule(static)") for (i = 0; i < n;   \
                                                               i++)            \
        {                                                                      \
            const float v = s[i], d = dy[i];                                   \
            (void)v;                                                           \
            dx[i] OP(expr);                                                    \
        }                                                                      \
    } else {                                                                   \
        _Pragma("omp simd") for (i = 0; i < n; i++)                            \
        {                                                                      \
            const float v = s[i], d = dy[i];                                   \
            (void)v;                                                           \
            dx[i] OP(expr);                                                    \
        }                                                                      \
    }
#define LOOP(expr)                                                             \
    if (store) {                                                               \
        LOOP1(=, expr)                                                         \
    } else {                                                                   \
        LOOP1(+=, expr)                                                        \
    }
    /* An unconditional load vectorises; ops that read no saved tensor
     * get dy as a stand-in. */
    if (!s)
        s = dy;
    switch (k) {
    case E_RELU: LOOP(v > 0.0f ? d : 0.0f) break;
    case E_LEAKY: LOOP(v > 0.0f ? d : a * d) break;
    case E_ELU:
        if (use_dst) {
            LOOP(v > 0.0f ? d : d * (v + a))
        } else {
            LOOP(v > 0.0f ? d : d * a * expf(v))
        }
        break;
    case E_GELU:
        LOOP(d * (0.5f * (1.0f + erff(v * 0.70710678118654752f)) +
                  v * 0.39894228040143268f * expf(-0.5f * v * v)))
        break;
    case E_TANH: LOOP(d * (1.0f - v * v)) break;
    case E_SIGMOID: LOOP(d * v * (1.0f - v)) break;
    case E_SOFTPLUS: LOOP(d / (1.0f + exp_k(-v))) break;
    case E_EXP: LOOP(d * v) break;
    case E_LOG: LOOP(d / v) break;
    case E_SQRT: LOOP(d * 0.5f / v) break;
    case E_SQUARE: LOOP(2.0f * v * d) break;
    case E_ABS: LOOP(v > 0.0f ? d : (v < 0.0f ? -d : 0.0f)) break;
    /* PyTorch's rule: the gradient passes on the closed [lo, hi] */
    case E_CLAMP: LOOP(v >= a && v <= b ? d : 0.0f) break;
    case E_AFFINE: LOOP(a * d) break;
    }
#undef LOOP
#undef LOOP1
}

/* ---- oneDNN ---------------------------------------------------------- */

typedef struct eprim {
    dnnl_primitive_desc_t fpd, bpd;
    dnnl_primitive_t fwd, bwd;
    dnnl_memory_t src, dst, ddst, dsrc;
} eprim;

typedef struct ekey {
    char tag[8];
    int32_t alg;
    float alpha, beta;
    int64_t n;
} ekey;

static void eprim_destroy(void *p)
{
    eprim *e = p;
    dnnl_memory_destroy(e->src);
    dnnl_memory_destroy(e->dst);
    dnnl_memory_destroy(e->ddst);
    dnnl_memory_destroy(e->dsrc);
    dnnl_primitive_destroy(e->fwd);
    dnnl_primitive_destroy(e->bwd);
    dnnl_primitive_desc_destroy(e->fpd);
    dnnl_primitive_desc_destroy(e->bpd);
    free(e);
}

/* The cached forward+backward pair for (alg, alpha, beta, n), made on the
 * first call. Inputs are treated as flat [n]: eltwise is layout-blind. */
static eprim *get_prim(dnnl_alg_kind_t alg, float alpha, float beta,
                       int64_t n)
{
    ekey key;
    memset(&key, 0, sizeof key);
    memcpy(key.tag, "eltwise", 8);
    key.alg = (int32_t)alg;
    key.alpha = alpha;
    key.beta = beta;
    key.n = n;
    eprim *e = dgm__dnnl_cache_get(&key, sizeof key);
    if (e)
        return e;
    dnnl_engine_t eng = dgm__dnnl_engine();
    if (!eng)
        return NULL;
    e = calloc(1, sizeof *e);
    if (!e) {
        dgm_error(DGM_ENOMEM, "eltwise: primitive for %lld elements",
                  (long long)n);
        return NULL;
    }
    dnnl_memory_desc_t md;
    dnnl_dims_t dims = {n};
    dnnl_eltwise_desc_t fd, bd;
    int rc = dgm__dnnl_check(
        dnnl_memory_desc_init_by_tag(&md, 1, dims, dnnl_f32, dnnl_a),
        "eltwise memory desc");
    if (!rc)
        rc = dgm__dnnl_check(dnnl_eltwise_forward_desc_init(
                                 &fd, dnnl_forward_training, alg, &md, alpha,
                                 beta),
                             "eltwise forward desc");
    if (!rc)
        rc = dgm__dnnl_check(
            dnnl_primitive_desc_create(&e->fpd, &fd, NULL, eng, NULL),
            "eltwise forward pd");
    if (!rc)
        rc = dgm__dnnl_check(dnnl_primitive_create(&e->fwd, e->fpd),
                             "eltwise forward primitive");
    if (!rc)
        rc = dgm__dnnl_check(
            dnnl_eltwise_backward_desc_init(&bd, alg, &md, &md, alpha, beta),
            "eltwise backward desc");
    if (!rc)
        rc = dgm__dnnl_check(
            dnnl_primitive_desc_create(&e->bpd, &bd, NULL, eng, e->fpd),
            "eltwise backward pd");
    if (!rc)
        rc = dgm__dnnl_check(dnnl_primitive_create(&e->bwd, e->bpd),
                             "eltwise backward primitive");
    if (!rc) rc = dgm__dnnl_memory(&e->src, &md, NULL);
    if (!rc) rc = dgm__dnnl_memory(&e->dst, &md, NULL);
    if (!rc) rc = dgm__dnnl_memory(&e->ddst, &md, NULL);
    if (!rc) rc = dgm__dnnl_memory(&e->dsrc, &md, NULL);
    if (!rc)
        rc = dgm__dnnl_cache_put(&key, sizeof key, e, eprim_destroy);
    if (rc) {
        eprim_destroy(e);
        return NULL;
    }
    return e;
}

/* ---- the op ---------------------------------------------------------- */

/* A contiguous, uninitialised arena tensor (every element gets written). */

static dgm_var *eltwise(dgm_graph *g, const edef *d, dgm_var *x, float a,
                        float b)
{
    if (!x)
        return NULL;
    const dgm_tensor *t = x->value;
    if (t->dtype != DGM_F32) {
        char s[96];
        return dgm__fail_null(g, DGM_EDTYPE, "%s: x %s (f32 only)",
                              dgm__op_name(&d->op),
                              dgm_tensor_describe(t, s, sizeof s));
    }
    if (!dgm_tensor_is_contiguous(t)) {
        dgm_tensor *c = dgm__alloc_uninit(g, DGM_F32, t->ndim, t->shape);
        if (!c || dgm_tensor_copy(c, t))
            return NULL;
        t = c;
    }
    dgm_tensor *y = dgm__alloc_uninit(g, DGM_F32, t->ndim, t->shape);
    if (!y)
        return NULL;
    int64_t n = dgm_tensor_numel(t);
    if (n > 0 && dgm__use_dnnl(g) && dnnl_worth(d->kind, n)) {
        eprim *e = get_prim(d->alg, a, b, n);
        if (!e) {
            dgm__fail(g, dgm_last_code(), "%s: oneDNN: %s",
                      dgm__op_name(&d->op), dgm_last_error());
            return NULL;
        }
        dnnl_memory_set_data_handle(e->src, t->data);
        dnnl_memory_set_data_handle(e->dst, y->data);
        dnnl_exec_arg_t args[2] = {{DNNL_ARG_SRC, e->src},
                                   {DNNL_ARG_DST, e->dst}};
        int rc = dgm__dnnl_check(
            dnnl_primitive_execute(e->fwd, dgm__dnnl_stream(), 2, args),
            dgm__op_name(&d->op));
        if (rc)
            return dgm__fail_null(g, rc, "%s: %s", dgm__op_name(&d->op),
                                  dgm_last_error());
    } else {
        ref_forward(d->kind, a, b, n, y->data, t->data);
    }
    dgm_var *v = dgm__node(g, &d->op, y, &x, 1);
    if (v && v->requires_grad) {
        v->attr.f[0] = a;
        v->attr.f[1] = b;
        v->saved[0] = d->use_dst ? y : (dgm_tensor *)t;
    }
    return v;
}

static int eltwise_backward(dgm_graph *g, dgm_var *node)
{
    const edef *d = (const edef *)node->op;
    dgm_var *x = node->in[0];
    /* The first contribution: oneDNN writes the gradient directly;
     * otherwise its result goes to a scratch buffer and is added. */
    bool fresh;
    dgm_tensor *gx = dgm__grad_in(g, node, 0, &fresh);
    if (!gx)
        return x->requires_grad ? DGM_ENOMEM : 0;
    const float a = node->attr.f[0], b = node->attr.f[1];
    const dgm_tensor *s = node->saved[0], *dy = node->grad;
    int64_t n = dgm_tensor_numel(dy);
    if (n == 0)
        return 0;
    /* oneDNN's clip_v2 passes the gradient on (lo, hi] only, so clamp's
     * backward is always the reference kernel's closed [lo, hi]. */
    if (!dgm__use_dnnl(g) || !dnnl_worth(d->kind, n) || d->kind == E_CLAMP) {
        ref_backward(d->kind, d->use_dst, a, b, n, gx->data, dy->data, s->data,
                     fresh);
        return 0;
    }
    eprim *e = get_prim(d->alg, a, b, n);
    if (!e)
        return dgm_last_code();
    float *out = gx->data;
    if (!fresh) {
        out = dgm__arena_alloc(g, (size_t)n * sizeof(float));
        if (!out)
            return DGM_ENOMEM;
    }
    dnnl_memory_t sm = d->use_dst ? e->dst : e->src;
    dnnl_memory_set_data_handle(sm, s->data);
    dnnl_memory_set_data_handle(e->ddst, dy->data);
    dnnl_memory_set_data_handle(e->dsrc, out);
    dnnl_exec_arg_t args[3] = {
        {d->use_dst ? DNNL_ARG_DST : DNNL_ARG_SRC, sm},
        {DNNL_ARG_DIFF_DST, e->ddst},
        {DNNL_ARG_DIFF_SRC, e->dsrc}};
    int rc = dgm__dnnl_check(
        dnnl_primitive_execute(e->bwd, dgm__dnnl_stream(), 3, args),
        dgm__op_name(&d->op));
    if (rc)
        return rc;
    if (!fresh) {
        float *gp = gx->data;
#pragma omp parallel for simd if (n > 16384) schedule(static)
        for (int64_t i = 0; i < n; i++)
            gp[i] += out[i];
    }
    return 0;
}

/* ---- public constructors --------------------------------------------- */

dgm_var *dgm_relu(dgm_graph *g, dgm_var *x) { return eltwise(g, &d_relu, x, 0, 0); }
dgm_var *dgm_leaky_relu(dgm_graph *g, dgm_var *x, float slope)
{
    return eltwise(g, slope >= 0.0f ? &d_leaky_dst : &d_leaky, x, slope, 0);
}
dgm_var *dgm_elu(dgm_graph *g, dgm_var *x, float alpha)
{
    return eltwise(g, alpha >= 0.0f ? &d_elu : &d_elu_src, x, alpha, 0);
}
dgm_var *dgm_gelu(dgm_graph *g, dgm_var *x) { return eltwise(g, &d_gelu, x, 0, 0); }
dgm_var *dgm_tanh(dgm_graph *g, dgm_var *x) { return eltwise(g, &d_tanh, x, 0, 0); }
dgm_var *dgm_sigmoid(dgm_graph *g, dgm_var *x) { return eltwise(g, &d_sigmoid, x, 0, 0); }
dgm_var *dgm_softplus(dgm_graph *g, dgm_var *x) { return eltwise(g, &d_softplus, x, 0, 0); }
dgm_var *dgm_exp(dgm_graph *g, dgm_var *x) { return eltwise(g, &d_exp, x, 0, 0); }
dgm_var *dgm_log(dgm_graph *g, dgm_var *x) { return eltwise(g, &d_log, x, 0, 0); }
dgm_var *dgm_sqrt(dgm_graph *g, dgm_var *x) { return eltwise(g, &d_sqrt, x, 0, 0); }
dgm_var *dgm_square(dgm_graph *g, dgm_var *x) { return eltwise(g, &d_square, x, 0, 0); }
dgm_var *dgm_abs(dgm_graph *g, dgm_var *x) { return eltwise(g, &d_abs, x, 0, 0); }
dgm_var *dgm_clamp(dgm_graph *g, dgm_var *x, float lo, float hi)
{
    if (x && !(lo <= hi))
        return dgm__fail_null(g, DGM_EINVAL, "clamp: lo %g > hi %g",
                              (double)lo, (double)hi);
    return eltwise(g, &d_clamp, x, lo, hi);
}
dgm_var *dgm_affine(dgm_graph *g, dgm_var *x, float alpha, float beta)
{
    return eltwise(g, &d_affine, x, alpha, beta);
}
dgm_var *dgm_neg(dgm_graph *g, dgm_var *x) { return eltwise(g, &d_neg, x, -1.0f, 0); }

dgm_var *dgm_activation(dgm_graph *g, dgm_var *x, const char *name,
                        float slope)
{
    if (!x)
        return NULL;
    if (!strcmp(name, "relu"))
        return dgm_relu(g, x);
    if (!strcmp(name, "leaky_relu"))
        return dgm_leaky_relu(g, x, slope);
    if (!strcmp(name, "elu"))
        return dgm_elu(g, x, 1.0f);
    if (!strcmp(name, "gelu"))
        return dgm_gelu(g, x);
    if (!strcmp(name, "tanh"))
        return dgm_tanh(g, x);
    if (!strcmp(name, "sigmoid"))
        return dgm_sigmoid(g, x);
    if (!strcmp(name, "softplus"))
        return dgm_softplus(g, x);
    if (!strcmp(name, "none"))
        return x;
    return dgm__fail_null(g, DGM_EINVAL,
                          "activation: unknown name '%s' (one of %s)", name,
                          DGM_ACTIVATIONS);
}
