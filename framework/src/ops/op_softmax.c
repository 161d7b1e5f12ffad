/* op_softmax.c - softmax, log_softmax (any axis) and logsumexp: plain-C
 * kernels on a [outer, C, inner] view of a contiguous tensor, and the
 * oneDNN softmax_v2 forward (and, where JIT-compiled, backward) for the
 * last axis. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <oneapi/dnnl/dnnl.h>

#include "dnnl_util.h"
#include "graph_internal.h"
#include "vmath.h"

/* Let GCC if-convert float compares (NaN traps are never enabled here), so
 * the exp_k loops below vectorise. */
#pragma GCC optimize("no-trapping-math")

/* Backward: oneDNN's softmax_v2 backward where it is JIT-compiled (AVX-512
 * machines) and the tensor is big enough to pay for a primitive call;
 * otherwise the C kernel. On AVX2 oneDNN 2.6 only has `ref:any` there
 * (see shared notes), so the rule follows the implementation oneDNN
 * reports. bench/bench_softmax on an AMD EPYC with AVX-512, 1 thread,
 * us per call (median of 7; the machine was shared, +-30%):
 *
 *   shape        op           C bwd   oneDNN bwd (jit:avx512_core)
 *   [2048, 256]  softmax        152      78-112
 *   [2048, 256]  log_softmax    800     200-360
 *   [128, 10]    softmax        2.1       1.2
 *   [128, 10]    log_softmax    4.0       1.7
 *
 * With 2 threads a small oneDNN call costs ~50 us (thread wake-up) against
 * 3-8 us in C, and dgm adds memory objects and a dx += tmp pass to it,
 * hence DNNL_BWD_MIN. Forward at [2048, 256]: oneDNN 230-310 us, C
 * 840-950 us (softmax) / 860-1300 us (log_softmax). */
#define DNNL_BWD_MIN 16384

/* Above this many elements a kernel spreads rows over OpenMP threads. */
#define PAR_MIN 32768

typedef struct sm_geom {
    int64_t outer, c, inner;
} sm_geom;


/* ====================================================================== */
/* Reference kernels                                                      */
/* ====================================================================== */

/* max of x[0..n): eight running maxima that GCC keeps in registers (an
 * `omp simd reduction(max)` kept its accumulator on the stack, 28% of the
 * forward's time). NaN-blind like fmaxf. */
static float row_max(const float *x, int64_t n)
{
    float mv[8];
    for (int t = 0; t < 8; t++)
        mv[t] = -INFINITY;
    int64_t j = 0;
    for (; j + 8 <= n; j += 8)
        for (int t = 0; t < 8; t++)
            mv[t] = x[j + t] > mv[t] ? x[j + t] : mv[t];
    float m = -INFINITY;
    for (int t = 0; t < 8; t++)
        m = mv[t] > m ? mv[t] : m;
    for (; j < n; j++)
        m = x[j] > m ? x[j] : m;
    return m;
}

/* x, y [outer, C, 1]: y = softmax(x) or log_softmax(x) along C. */
static void softmax_fwd_rows(float *y, const float *x, int64_t rows, int64_t c,
                             bool log_)
{
#pragma omp parallel for schedule(static) if (rows * c >= PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * c;
        float *yr = y + r * c;
        const float m = row_max(xr, c);
        float s = 0.0f;
#pragma omp simd reduction(+ : s)
        for (int64_t j = 0; j < c; j++) {
            float e = exp_k(xr[j] - m);
            yr[j] = e;
            s += e;
        }
        if (log_) {
            const float ls = m + logf(s);
#pragma omp simd
            for (int64_t j = 0; j < c; j++)
                yr[j] = xr[j] - ls;
        } else {
            const float inv = 1.0f / s;
#pragma omp simd
            for (int64_t j = 0; j < c; j++)
                yr[j] *= inv;
        }
    }
}

/* x, y [outer, C, inner], inner > 1: the same along the middle axis,
 * vectorised over inner; tmp holds 2 * outer * inner floats. */
static void softmax_fwd_mid(float *y, const float *x, const sm_geom *s,
                            bool log_, float *tmp)
{
    const int64_t c = s->c, in = s->inner;
#pragma omp parallel for schedule(static) if (s->outer * c * in >= PAR_MIN)
    for (int64_t o = 0; o < s->outer; o++) {
        const float *xo = x + o * c * in;
        float *yo = y + o * c * in;
        float *m = tmp + 2 * o * in, *sum = m + in;
        for (int64_t i = 0; i < in; i++) {
            m[i] = -INFINITY;
            sum[i] = 0.0f;
        }
        for (int64_t j = 0; j < c; j++)
            for (int64_t i = 0; i < in; i++)
                m[i] = fmaxf(m[i], xo[j * in + i]);
        for (int64_t j = 0; j < c; j++)
            for (int64_t i = 0; i < in; i++) {
                float e = exp_k(xo[j * in + i] - m[i]);
                yo[j * in + i] = e;
                sum[i] += e;
            }
        if (log_) {
            for (int64_t i = 0; i < in; i++)
                sum[i] = m[i] + logf(sum[i]);
            for (int64_t j = 0; j < c; j++)
                for (int64_t i = 0; i < in; i++)
                    yo[j * in + i] = xo[j * in + i] - sum[i];
        } else {
            for (int64_t i = 0; i < in; i++)
                sum[i] = 1.0f / sum[i];
            for (int64_t j = 0; j < c; j++)
                for (int64_t i = 0; i < in; i++)
                    yo[j * in + i] *= sum[i];
        }
    }
}

/* dx += y * (dy - sum_j dy*y)            (softmax, y = softmax(x))
 * dx += dy - exp(y) * sum_j dy           (log_softmax, y = log_softmax(x))
 * over [rows, C] rows; = instead of += when store (dx's first
 * contribution: dx is uninitialised). */
static void softmax_bwd_rows(float *dx, const float *dy, const float *y,
                             int64_t rows, int64_t c, bool log_, bool store)
{
#pragma omp parallel for schedule(static) if (rows * c >= PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float *yr = y + r * c, *gr = dy + r * c;
        float *dr = dx + r * c;
        float s = 0.0f;
        if (log_) {
#pragma omp simd reduction(+ : s)
            for (int64_t j = 0; j < c; j++)
                s += gr[j];
#pragma omp simd
            for (int64_t j = 0; j < c; j++) {
                float v = gr[j] - exp_k(yr[j]) * s;
                dr[j] = store ? v : dr[j] + v;
            }
        } else {
#pragma omp simd reduction(+ : s)
            for (int64_t j = 0; j < c; j++)
                s += gr[j] * yr[j];
#pragma omp simd
            for (int64_t j = 0; j < c; j++) {
                float v = yr[j] * (gr[j] - s);
                dr[j] = store ? v : dr[j] + v;
            }
        }
    }
}

/* The same along a middle axis; tmp holds outer * inner floats. */
static void softmax_bwd_mid(float *dx, const float *dy, const float *y,
                            const sm_geom *s, bool log_, float *tmp, bool store)
{
    const int64_t c = s->c, in = s->inner;
#pragma omp parallel for schedule(static) if (s->outer * c * in >= PAR_MIN)
    for (int64_t o = 0; o < s->outer; o++) {
        const int64_t base = o * c * in;
        float *acc = tmp + o * in;
        for (int64_t i = 0; i < in; i++)
            acc[i] = 0.0f;
        for (int64_t j = 0; j < c; j++)
            for (int64_t i = 0; i < in; i++) {
                const int64_t k = base + j * in + i;
                acc[i] += log_ ? dy[k] : dy[k] * y[k];
            }
        for (int64_t j = 0; j < c; j++)
            for (int64_t i = 0; i < in; i++) {
                const int64_t k = base + j * in + i;
                float v = log_ ? dy[k] - exp_k(y[k]) * acc[i]
                               : y[k] * (dy[k] - acc[i]);
                dx[k] = store ? v : dx[k] + v;
            }
    }
}

/* out [outer, inner] = log sum_j exp(x[o, j, i]), stable; an all -inf
 * slice gives -inf and a +inf anywhere gives +inf. */
static void logsumexp_fwd(float *out, const float *x, const sm_geom *s)
{
    const int64_t c = s->c, in = s->inner;
#pragma omp parallel for schedule(static) if (s->outer * c * in >= PAR_MIN)
    for (int64_t o = 0; o < s->outer; o++)
        for (int64_t i = 0; i < in; i++) {
            const float *xp = x + o * c * in + i;
            float m = -INFINITY;
            for (int64_t j = 0; j < c; j++)
                m = fmaxf(m, xp[j * in]);
            if (isinf(m)) {
                out[o * in + i] = m;
                continue;
            }
            float sum = 0.0f;
            for (int64_t j = 0; j < c; j++)
                sum += expf(xp[j * in] - m);
            out[o * in + i] = m + logf(sum);
        }
}

/* dx[o, j, i] += dout[o, i] * softmax(x[o, :, i])[j]. The softmax is
 * recomputed from x rather than taken as exp(x - out): out is rounded to
 * float, which at |x| ~ 1000 would cost 5 digits of the gradient. */
static void logsumexp_bwd(float *dx, const float *dout, const float *x,
                          const float *out, const sm_geom *s)
{
    const int64_t c = s->c, in = s->inner;
#pragma omp parallel for schedule(static) if (s->outer * c * in >= PAR_MIN)
    for (int64_t o = 0; o < s->outer; o++)
        for (int64_t i = 0; i < in; i++) {
            const float lo = out[o * in + i];
            if (isinf(lo) && lo < 0)
                continue; /* all -inf: no mass, no gradient */
            const float *xp = x + o * c * in + i;
            float *dp = dx + o * c * in + i;
            float m = -INFINITY, sum = 0.0f;
            for (int64_t j = 0; j < c; j++)
                m = fmaxf(m, xp[j * in]);
            for (int64_t j = 0; j < c; j++)
                sum += expf(xp[j * in] - m);
            const float scale = dout[o * in + i] / sum;
            for (int64_t j = 0; j < c; j++)
                dp[j * in] += scale * expf(xp[j * in] - m);
        }
}

/* ====================================================================== */
/* oneDNN (last axis)                                                     */
/* ====================================================================== */

typedef struct sm_key {
    char tag[8];
    int64_t rows, c;
    int32_t log_, pad;
} sm_key;

typedef struct sm_entry {
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t prim;
    dnnl_memory_desc_t md;
} sm_entry;

static void sm_entry_destroy(void *p)
{
    sm_entry *e = p;
    if (!e)
        return;
    if (e->prim)
        dnnl_primitive_destroy(e->prim);
    if (e->pd)
        dnnl_primitive_desc_destroy(e->pd);
    free(e);
}

static int sm_entry_make(sm_entry **out, const sm_key *k)
{
    sm_entry *e = calloc(1, sizeof *e);
    if (!e)
        return dgm_error(DGM_ENOMEM, "softmax: out of memory");
    dnnl_dims_t dims = {k->rows, k->c};
    int rc = dgm__dnnl_check(
        dnnl_memory_desc_init_by_tag(&e->md, 2, dims, dnnl_f32, dnnl_ab),
        "softmax memory desc");
    dnnl_softmax_v2_desc_t d;
    if (!rc)
        rc = dgm__dnnl_check(
            dnnl_softmax_v2_forward_desc_init(&d, dnnl_forward_training,
                                              k->log_ ? dnnl_softmax_log
                                                      : dnnl_softmax_accurate,
                                              &e->md, &e->md, 1),
            "softmax forward desc");
    if (!rc)
        rc = dgm__dnnl_check(dnnl_primitive_desc_create(
                                 &e->pd, &d, NULL, dgm__dnnl_engine(), NULL),
                             "softmax forward pd");
    if (!rc)
        rc = dgm__dnnl_check(dnnl_primitive_create(&e->prim, e->pd),
                             "softmax forward primitive");
    if (rc) {
        sm_entry_destroy(e);
        return rc;
    }
    *out = e;
    return 0;
}

/* y = (log_)softmax(x) over the rows of [rows, C] with oneDNN. */
static int softmax_fwd_dnnl(float *y, const float *x, int64_t rows, int64_t c,
                            bool log_)
{
    sm_key k;
    memset(&k, 0, sizeof k);
    memcpy(k.tag, "softmax", 8);
    k.rows = rows;
    k.c = c;
    k.log_ = log_;
    sm_entry *e = dgm__dnnl_cache_get(&k, sizeof k);
    if (!e) {
        int rc = sm_entry_make(&e, &k);
        if (rc)
            return rc;
        rc = dgm__dnnl_cache_put(&k, sizeof k, e, sm_entry_destroy);
        if (rc) {
            sm_entry_destroy(e);
            return rc;
        }
    }
    /* Memory objects per call: cheap next to the primitive, and they keep
     * a shared cache entry safe to use from several threads. */
    dnnl_memory_t ms = NULL, md = NULL;
    int rc = dgm__dnnl_memory(&ms, &e->md, (void *)x);
    if (!rc)
        rc = dgm__dnnl_memory(&md, &e->md, y);
    if (!rc) {
        dnnl_exec_arg_t args[2] = {{DNNL_ARG_SRC, ms}, {DNNL_ARG_DST, md}};
        rc = dgm__dnnl_check(
            dnnl_primitive_execute(e->prim, dgm__dnnl_stream(), 2, args),
            "softmax forward");
        if (!rc)
            rc = dgm__dnnl_check(dnnl_stream_wait(dgm__dnnl_stream()),
                                 "softmax forward wait");
    }
    if (ms)
        dnnl_memory_destroy(ms);
    if (md)
        dnnl_memory_destroy(md);
    return rc;
}

/* The backward primitive for [rows, C], cached apart from the forward one
 * (with its own forward pd as the hint) so that neither is edited after
 * it is shared. */
typedef struct sm_bwd_entry {
    dnnl_primitive_desc_t fpd, pd;
    dnnl_primitive_t prim;
    dnnl_memory_desc_t md;
    bool jit; /* false: oneDNN would run its reference code */
} sm_bwd_entry;

static void sm_bwd_destroy(void *p)
{
    sm_bwd_entry *e = p;
    if (!e)
        return;
    if (e->prim)
        dnnl_primitive_destroy(e->prim);
    if (e->pd)
        dnnl_primitive_desc_destroy(e->pd);
    if (e->fpd)
        dnnl_primitive_desc_destroy(e->fpd);
    free(e);
}

static int sm_bwd_make(sm_bwd_entry **out, const sm_key *k)
{
    sm_bwd_entry *e = calloc(1, sizeof *e);
    if (!e)
        return dgm_error(DGM_ENOMEM, "softmax: out of memory");
    const dnnl_alg_kind_t alg =
        k->log_ ? dnnl_softmax_log : dnnl_softmax_accurate;
    dnnl_dims_t dims = {k->rows, k->c};
    dnnl_softmax_v2_desc_t fd, bd;
    int rc = dgm__dnnl_check(
        dnnl_memory_desc_init_by_tag(&e->md, 2, dims, dnnl_f32, dnnl_ab),
        "softmax memory desc");
    if (!rc)
        rc = dgm__dnnl_check(
            dnnl_softmax_v2_forward_desc_init(&fd, dnnl_forward_training, alg,
                                              &e->md, &e->md, 1),
            "softmax forward desc");
    if (!rc)
        rc = dgm__dnnl_check(dnnl_primitive_desc_create(
                                 &e->fpd, &fd, NULL, dgm__dnnl_engine(), NULL),
                             "softmax forward pd");
    if (!rc)
        rc = dgm__dnnl_check(dnnl_softmax_v2_backward_desc_init(
                                 &bd, alg, &e->md, &e->md, &e->md, 1),
                             "softmax backward desc");
    if (!rc)
        rc = dgm__dnnl_check(dnnl_primitive_desc_create(
                                 &e->pd, &bd, NULL, dgm__dnnl_engine(), e->fpd),
                             "softmax backward pd");
    const char *impl = NULL;
    if (!rc)
        rc = dgm__dnnl_check(dnnl_primitive_desc_query(
                                 e->pd, dnnl_query_impl_info_str, 0, &impl),
                             "softmax backward impl");
    if (!rc) {
        e->jit = impl && strncmp(impl, "ref", 3) != 0;
        if (e->jit)
            rc = dgm__dnnl_check(dnnl_primitive_create(&e->prim, e->pd),
                                 "softmax backward primitive");
    }
    if (rc) {
        sm_bwd_destroy(e);
        return rc;
    }
    *out = e;
    return 0;
}

/* dx += (log_)softmax backward over [rows, C] with oneDNN, when oneDNN has
 * a JIT kernel for it. Returns 1 if it did nothing (use the C kernel), 0
 * on success, or a DGM_E* code. tmp holds rows * C floats: oneDNN
 * overwrites diff_src, and dx must accumulate, unless store (dx's first
 * contribution), when oneDNN writes dx itself and tmp may be NULL. */
static int softmax_bwd_dnnl(float *dx, const float *dy, const float *y,
                            int64_t rows, int64_t c, bool log_, float *tmp,
                            bool store)
{
    sm_key k;
    memset(&k, 0, sizeof k);
    memcpy(k.tag, "smbwd", 6);
    k.rows = rows;
    k.c = c;
    k.log_ = log_;
    sm_bwd_entry *e = dgm__dnnl_cache_get(&k, sizeof k);
    if (!e) {
        int rc = sm_bwd_make(&e, &k);
        if (rc)
            return rc;
        rc = dgm__dnnl_cache_put(&k, sizeof k, e, sm_bwd_destroy);
        if (rc) {
            sm_bwd_destroy(e);
            return rc;
        }
    }
    if (!e->jit)
        return 1;
    dnnl_memory_t my = NULL, mdy = NULL, mdx = NULL;
    int rc = dgm__dnnl_memory(&my, &e->md, (void *)y);
    if (!rc)
        rc = dgm__dnnl_memory(&mdy, &e->md, (void *)dy);
    if (!rc)
        rc = dgm__dnnl_memory(&mdx, &e->md, store ? dx : tmp);
    if (!rc) {
        dnnl_exec_arg_t args[3] = {{DNNL_ARG_DST, my},
                                   {DNNL_ARG_DIFF_DST, mdy},
                                   {DNNL_ARG_DIFF_SRC, mdx}};
        rc = dgm__dnnl_check(
            dnnl_primitive_execute(e->prim, dgm__dnnl_stream(), 3, args),
            "softmax backward");
        if (!rc)
            rc = dgm__dnnl_check(dnnl_stream_wait(dgm__dnnl_stream()),
                                 "softmax backward wait");
    }
    if (my)
        dnnl_memory_destroy(my);
    if (mdy)
        dnnl_memory_destroy(mdy);
    if (mdx)
        dnnl_memory_destroy(mdx);
    if (rc || store)
        return rc;
    const int64_t n = rows * c;
#pragma omp parallel for simd schedule(static) if (n >= PAR_MIN)
    for (int64_t i = 0; i < n; i++)
        dx[i] += tmp[i];
    return 0;
}

/* ====================================================================== */
/* The ops                                                                */
/* ====================================================================== */


/* Check x and axis for `op`, fill the geometry; returns the axis or -1. */
static int sm_check(dgm_graph *g, const char *op, const dgm_var *x, int axis,
                    sm_geom *s)
{
    char bx[128];
    const dgm_tensor *t = x->value;
    if (t->dtype != DGM_F32) {
        dgm__fail(g, DGM_EDTYPE, "%s: x %s must be f32", op,
                  dgm_tensor_describe(t, bx, sizeof bx));
        return -1;
    }
    const int ax = axis < 0 ? axis + t->ndim : axis;
    if (ax < 0 || ax >= t->ndim) {
        dgm__fail(g, DGM_EINVAL, "%s: axis %d out of range for x %s", op, axis,
                  dgm_tensor_describe(t, bx, sizeof bx));
        return -1;
    }
    s->outer = 1;
    s->inner = 1;
    for (int k = 0; k < ax; k++)
        s->outer *= t->shape[k];
    for (int k = ax + 1; k < t->ndim; k++)
        s->inner *= t->shape[k];
    s->c = t->shape[ax];
    return ax;
}

static void geom_store(dgm_var *v, const sm_geom *s, bool log_)
{
    v->attr.i[0] = s->outer;
    v->attr.i[1] = s->c;
    v->attr.i[2] = s->inner;
    v->attr.i[3] = log_;
}

static sm_geom geom_load(const dgm_var *v)
{
    sm_geom s = {v->attr.i[0], v->attr.i[1], v->attr.i[2]};
    return s;
}

/* saved[0] = y (contiguous), node->grad = dy. */
static int softmax_backward(dgm_graph *g, dgm_var *node)
{
    bool store;
    dgm_tensor *dx = dgm__grad_in(g, node, 0, &store);
    if (!dx)
        return 0;
    dgm_tensor *dy = dgm__contig(g, node->grad);
    if (!dy)
        return dgm__fail_rc(g);
    const sm_geom s = geom_load(node);
    const bool log_ = node->attr.i[3] != 0;
    const float *yp = dgm_tensor_f32(node->saved[0]);
    const int64_t n = s.outer * s.c;
    if (s.inner == 1 && dgm__use_dnnl(g) && n >= DNNL_BWD_MIN) {
        float *tmp =
            store ? NULL : dgm__arena_alloc(g, (size_t)n * sizeof(float));
        if (!store && !tmp)
            return dgm__fail_rc(g);
        int rc = softmax_bwd_dnnl(dgm_tensor_f32(dx), dgm_tensor_f32(dy), yp,
                                  s.outer, s.c, log_, tmp, store);
        if (rc < 0)
            return dgm__fail(g, rc, "%s: %s", dgm__op_name(node->op),
                             dgm_last_error());
        if (rc == 0)
            return 0;
    }
    if (s.inner == 1) {
        softmax_bwd_rows(dgm_tensor_f32(dx), dgm_tensor_f32(dy), yp, s.outer,
                         s.c, log_, store);
    } else {
        float *tmp =
            dgm__arena_alloc(g, (size_t)(s.outer * s.inner) * sizeof(float));
        if (!tmp)
            return dgm__fail_rc(g);
        softmax_bwd_mid(dgm_tensor_f32(dx), dgm_tensor_f32(dy), yp, &s, log_,
                        tmp, store);
    }
    return 0;
}

static const dgm__op op_softmax = {DGM_OP_SOFTMAX, softmax_backward};
static const dgm__op op_log_softmax = {DGM_OP_LOG_SOFTMAX, softmax_backward};

static dgm_var *softmax_impl(dgm_graph *g, const dgm__op *op, dgm_var *x,
                             int axis, bool log_)
{
    if (!g || !x)
        return NULL;
    sm_geom s;
    if (sm_check(g, dgm__op_name(op), x, axis, &s) < 0)
        return NULL;
    dgm_tensor *xt = dgm__contig(g, x->value);
    if (!xt)
        return NULL;
    dgm_tensor *y = dgm__alloc(g, DGM_F32, xt->ndim, xt->shape);
    if (!y)
        return NULL;
    float *yp = dgm_tensor_f32(y);
    const float *xp = dgm_tensor_f32(xt);
    if (s.outer * s.c * s.inner == 0) {
        /* empty: nothing to compute */
    } else if (s.inner == 1 && dgm__use_dnnl(g)) {
        int rc = softmax_fwd_dnnl(yp, xp, s.outer, s.c, log_);
        if (rc) {
            char bx[128];
            return dgm__fail_null(g, rc, "%s: x %s: %s", dgm__op_name(op),
                                  dgm_tensor_describe(xt, bx, sizeof bx),
                                  dgm_last_error());
        }
    } else if (s.inner == 1) {
        softmax_fwd_rows(yp, xp, s.outer, s.c, log_);
    } else {
        float *tmp = dgm__arena_alloc(g, (size_t)(2 * s.outer * s.inner) *
                                             sizeof(float));
        if (!tmp)
            return dgm__fail_null(g, DGM_ENOMEM, "%s: out of memory",
                                  dgm__op_name(op));
        softmax_fwd_mid(yp, xp, &s, log_, tmp);
    }
    dgm_var *in[1] = {x};
    dgm_var *v = dgm__node(g, op, y, in, 1);
    if (v) {
        v->saved[0] = y;
        geom_store(v, &s, log_);
    }
    return v;
}

dgm_var *dgm_softmax(dgm_graph *g, dgm_var *x, int axis)
{
    return softmax_impl(g, &op_softmax, x, axis, false);
}

dgm_var *dgm_log_softmax(dgm_graph *g, dgm_var *x, int axis)
{
    return softmax_impl(g, &op_log_softmax, x, axis, true);
}

/* saved[0] = x (contiguous), saved[1] = out. */
static int logsumexp_backward(dgm_graph *g, dgm_var *node)
{
    dgm_tensor *dx = dgm__grad_buf(g, node->in[0]);
    if (!dx)
        return 0;
    dgm_tensor *dy = dgm__contig(g, node->grad);
    if (!dy)
        return dgm__fail_rc(g);
    const sm_geom s = geom_load(node);
    logsumexp_bwd(dgm_tensor_f32(dx), dgm_tensor_f32(dy),
                  dgm_tensor_f32(node->saved[0]),
                  dgm_tensor_f32(node->saved[1]), &s);
    return 0;
}

static const dgm__op op_logsumexp = {DGM_OP_LOGSUMEXP, logsumexp_backward};

dgm_var *dgm_logsumexp(dgm_graph *g, dgm_var *x, int axis)
{
    if (!g || !x)
        return NULL;
    sm_geom s;
    const int ax = sm_check(g, "logsumexp", x, axis, &s);
    if (ax < 0)
        return NULL;
    dgm_tensor *xt = dgm__contig(g, x->value);
    if (!xt)
        return NULL;
    int64_t shape[DGM_MAX_DIMS];
    int nd = 0;
    for (int k = 0; k < xt->ndim; k++)
        if (k != ax)
            shape[nd++] = xt->shape[k];
    dgm_tensor *y = dgm__alloc(g, DGM_F32, nd, shape);
    if (!y)
        return NULL;
    if (s.c == 0) {
        /* log of an empty sum */
        float *yp = dgm_tensor_f32(y);
        for (int64_t i = 0; i < s.outer * s.inner; i++)
            yp[i] = -INFINITY;
    } else {
        logsumexp_fwd(dgm_tensor_f32(y), dgm_tensor_f32(xt), &s);
    }
    dgm_var *in[1] = {x};
    dgm_var *v = dgm__node(g, &op_logsumexp, y, in, 1);
    if (v) {
        v->saved[0] = xt;
        v->saved[1] = y;
        geom_store(v, &s, false);
    }
    return v;
}
