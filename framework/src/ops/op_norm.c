/* op_norm.c - dgm_batch_norm (batch statistics in training, running ones in
 * eval, PyTorch's momentum update with the unbiased variance) and
 * dgm_layer_norm (over the last dimension), forward and backward.
 *
 * Kernels: plain C with OpenMP over channels / rows, on both backends.
 * Measured here (2 threads, fwd training + bwd, median of 20):
 *   shape            oneDNN ncsp_bnorm (nchw)  this C loop (*)  bnorm_jit nChw8c
 *   [64,128,7,7]     1.31 ms                   <= 1.46 ms       0.16 ms
 *   [64,64,14,14]    2.30 ms                   <= 3.08 ms       0.33 ms
 *   [128,64,7,7]     1.14 ms                   <= 1.46 ms
 *   [128,32,14,14]   2.29 ms                   <= 3.00 ms
 * (*) bench/bench_conv, which also counts sum_all, gradient buffers and the
 * tape. On NCHW the two are about even, so the C loop (exact PyTorch
 * semantics, double accumulation) stays; the 8x of bnorm_jit needs blocked
 * layouts carried between ops, which the NCHW op boundary does not do.
 * oneDNN's layer norm is `simple_layer_normalization:any` (not JIT) in 2.6,
 * so the C loop serves there too.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph_internal.h"

/* ====================================================================== */
/* Batch norm                                                             */
/* ====================================================================== */

/* x [N, C, S] -> per-channel mean and biased variance. Each row of S
 * values is summed in float by vector lanes (GCC does not reorder a float
 * reduction without `omp simd`), rows are summed in double. */
static void bn_stats(const float *x, int64_t n, int64_t c, int64_t s,
                     float *mean, float *var)
{
#pragma omp parallel for schedule(static)
    for (int64_t j = 0; j < c; j++) {
        double sum = 0.0, sq = 0.0;
        for (int64_t i = 0; i < n; i++) {
            const float *p = x + (i * c + j) * s;
            float r = 0.0f;
#pragma omp simd reduction(+ : r)
            for (int64_t k = 0; k < s; k++)
                r += p[k];
            sum += r;
        }
        const double m = sum / (double)(n * s);
        const float mf = (float)m;
        for (int64_t i = 0; i < n; i++) {
            const float *p = x + (i * c + j) * s;
            float r = 0.0f;
#pragma omp simd reduction(+ : r)
            for (int64_t k = 0; k < s; k++) {
                const float d = p[k] - mf;
                r += d * d;
            }
            sq += r;
        }
        mean[j] = (float)m;
        var[j] = (float)(sq / (double)(n * s));
    }
}

/* Per channel, the sum over rows of each row's float sum of x - shift
 * (shift NULL: of x), or of (x - shift)^2: bn_stats' two passes. */
static void bn_row_sums(const float *x, int64_t n, int64_t c, int64_t s,
                        const float *shift, bool square, double *out)
{
#pragma omp parallel for schedule(static)
    for (int64_t j = 0; j < c; j++) {
        const float mf = shift ? shift[j] : 0.0f;
        double sum = 0.0;
        for (int64_t i = 0; i < n; i++) {
            const float *p = x + (i * c + j) * s;
            float r = 0.0f;
            if (square) {
#pragma omp simd reduction(+ : r)
                for (int64_t k = 0; k < s; k++) {
                    const float d = p[k] - mf;
                    r += d * d;
                }
            } else {
#pragma omp simd reduction(+ : r)
                for (int64_t k = 0; k < s; k++)
                    r += p[k];
            }
            sum += r;
        }
        out[j] = sum;
    }
}

/* sync_bn: bn_stats over the global batch, the per-channel sums (and the
 * value count) summed across processes through the graph's hook, both
 * passes; *count: the global values per channel. */
static int bn_stats_sync(dgm_graph *g, const float *x, int64_t n, int64_t c,
                         int64_t s, float *mean, float *var, double *count)
{
    double *buf = malloc((size_t)(c + 1) * sizeof *buf);
    if (!buf)
        return dgm__fail(g, DGM_ENOMEM, "batch_norm: sync buffer of %lld",
                         (long long)c);
    bn_row_sums(x, n, c, s, NULL, false, buf);
    buf[c] = (double)(n * s);
    int rc = dgm__graph_sum(g, buf, (int)c + 1);
    const double m = buf[c];
    for (int64_t j = 0; rc == 0 && j < c; j++)
        mean[j] = (float)(buf[j] / m);
    if (rc == 0) {
        bn_row_sums(x, n, c, s, mean, true, buf);
        rc = dgm__graph_sum(g, buf, (int)c);
    }
    for (int64_t j = 0; rc == 0 && j < c; j++)
        var[j] = (float)(buf[j] / m);
    free(buf);
    *count = m;
    return rc < 0 ? dgm__fail(g, rc,
                              "batch_norm: summing the statistics "
                              "across processes failed")
                  : 0;
}

/* y = (x - mean) * invstd * gamma + beta; x, y [N, C, S] */
static void bn_apply(float *y, const float *x, int64_t n, int64_t c, int64_t s,
                     const float *mean, const float *invstd,
                     const float *gamma, const float *beta)
{
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < c; j++) {
            float a = invstd[j] * (gamma ? gamma[j] : 1.0f);
            float b = (beta ? beta[j] : 0.0f) - mean[j] * a;
            const float *p = x + (i * c + j) * s;
            float *q = y + (i * c + j) * s;
            for (int64_t k = 0; k < s; k++)
                q[k] = p[k] * a + b;
        }
}

/* One row of dx: r (+)= a * (dy - mdy - xhat * mdyx), stored on a first
 * write (store) without reading r. */
static inline void bn_dx_row(float *r, const float *p, const float *q,
                             int64_t s, float mu, float is, float a, float mdy,
                             float mdyx, bool store)
{
    if (store)
        for (int64_t k = 0; k < s; k++) {
            float xh = (p[k] - mu) * is;
            r[k] = a * (q[k] - mdy - xh * mdyx);
        }
    else
        for (int64_t k = 0; k < s; k++) {
            float xh = (p[k] - mu) * is;
            r[k] += a * (q[k] - mdy - xh * mdyx);
        }
}

/* bn_backward's sums with sync_bn. Each process's dy is the gradient of
 * its own loss, the mean over its rows, which weighs `share` in the global
 * loss: the global sums of dy terms are sums of share * local sums, and
 * dx is taken back to the local loss's scale (the gradient sum after
 * backward weighs it by share again). d gamma and d beta stay local sums,
 * which that gradient sum adds up. */
static int bn_backward_sync(dgm_graph *g, dgm_var *node, const float *xp,
                            const float *dy, int64_t n, int64_t c, int64_t s,
                            const float *mean, const float *invstd,
                            const float *gamma, float *dxp, float *dgp,
                            float *dbp, const bool st[3])
{
    double share = 1.0;
    dgm__graph_sums(g, &share);
    const double m = (double)node->attr.i[2];
    double *sums = malloc((size_t)(4 * c) * sizeof *sums);
    if (!sums)
        return DGM_ENOMEM;
    double *loc = sums + 2 * c;
#pragma omp parallel for schedule(static)
    for (int64_t j = 0; j < c; j++) {
        double sdy = 0.0, sdyx = 0.0;
        const float mu = mean[j];
        for (int64_t i = 0; i < n; i++) {
            const float *p = xp + (i * c + j) * s, *q = dy + (i * c + j) * s;
            float r1 = 0.0f, r2 = 0.0f;
#pragma omp simd reduction(+ : r1, r2)
            for (int64_t k = 0; k < s; k++) {
                r1 += q[k];
                r2 += q[k] * (p[k] - mu);
            }
            sdy += r1;
            sdyx += r2;
        }
        sdyx *= invstd[j];
        loc[j] = sdy;
        loc[c + j] = sdyx;
        sums[j] = share * sdy;
        sums[c + j] = share * sdyx;
    }
    int rc = dgm__graph_sum(g, sums, (int)(2 * c));
    if (rc < 0) {
        free(sums);
        return dgm__fail(g, rc,
                         "batch_norm: summing the gradient terms "
                         "across processes failed");
    }
#pragma omp parallel for schedule(static)
    for (int64_t j = 0; j < c; j++) {
        if (dgp)
            dgp[j] = (st[1] ? 0.0f : dgp[j]) + (float)loc[c + j];
        if (dbp)
            dbp[j] = (st[2] ? 0.0f : dbp[j]) + (float)loc[j];
        if (!dxp)
            continue;
        const float is = invstd[j], mu = mean[j];
        const float a = is * (gamma ? gamma[j] : 1.0f);
        const float mdy = (float)(sums[j] / (share * m));
        const float mdyx = (float)(sums[c + j] / (share * m));
        for (int64_t i = 0; i < n; i++)
            bn_dx_row(dxp + (i * c + j) * s, xp + (i * c + j) * s,
                      dy + (i * c + j) * s, s, mu, is, a, mdy, mdyx, st[0]);
    }
    free(sums);
    return 0;
}

static int bn_backward(dgm_graph *g, dgm_var *node)
{
    dgm_var *gv = node->in[1], *bv = node->in[2];
    dgm_tensor *x = node->saved[0], *mean_t = node->saved[1],
               *invstd_t = node->saved[2], *gamma_t = node->saved[3];
    dgm_tensor *dyt = dgm__contig(g, node->grad);
    if (!dyt)
        return DGM_ENOMEM;
    const bool batch_stats = node->attr.i[0] != 0;
    const int64_t n = x->shape[0], c = x->shape[1];
    const int64_t s = dgm_tensor_numel(x) / (n * c), m = n * s;
    /* first contributions (st[i]) store: no zero fill, no read */
    bool st[3] = {false, false, false};
    dgm_tensor *dx = dgm__grad_in(g, node, 0, &st[0]);
    dgm_tensor *dg = gv ? dgm__grad_in(g, node, 1, &st[1]) : NULL;
    dgm_tensor *db = bv ? dgm__grad_in(g, node, 2, &st[2]) : NULL;
    if (dgm_graph_status(g))
        return dgm_graph_status(g);
    const float *xp = dgm_tensor_f32(x), *dy = dgm_tensor_f32(dyt);
    const float *mean = dgm_tensor_f32(mean_t),
                *invstd = dgm_tensor_f32(invstd_t);
    const float *gamma = gamma_t ? dgm_tensor_f32(gamma_t) : NULL;
    float *dxp = dx ? dgm_tensor_f32(dx) : NULL;
    float *dgp = dg ? dgm_tensor_f32(dg) : NULL;
    float *dbp = db ? dgm_tensor_f32(db) : NULL;
    /* sync_bn (attr.i[1]): dx needs the means of dy and dy * xhat over the
     * global batch, so first the per-channel sums, summed across the
     * processes, then dx. */
    if (node->attr.i[1])
        return bn_backward_sync(g, node, xp, dy, n, c, s, mean, invstd, gamma,
                                dxp, dgp, dbp, st);
#pragma omp parallel for schedule(static)
    for (int64_t j = 0; j < c; j++) {
        double sdy = 0.0, sdyx = 0.0;
        const float mu = mean[j], is = invstd[j];
        for (int64_t i = 0; i < n; i++) {
            const float *p = xp + (i * c + j) * s, *q = dy + (i * c + j) * s;
            float r1 = 0.0f, r2 = 0.0f; /* float per row, as in bn_stats */
#pragma omp simd reduction(+ : r1, r2)
            for (int64_t k = 0; k < s; k++) {
                r1 += q[k];
                r2 += q[k] * (p[k] - mu);
            }
            sdy += r1;
            sdyx += r2;
        }
        sdyx *= is; /* sum dy * xhat */
        if (dgp)
            dgp[j] = (st[1] ? 0.0f : dgp[j]) + (float)sdyx;
        if (dbp)
            dbp[j] = (st[2] ? 0.0f : dbp[j]) + (float)sdy;
        if (!dxp)
            continue;
        const float a = is * (gamma ? gamma[j] : 1.0f);
        const float mdy = batch_stats ? (float)(sdy / (double)m) : 0.0f;
        const float mdyx = batch_stats ? (float)(sdyx / (double)m) : 0.0f;
        for (int64_t i = 0; i < n; i++)
            bn_dx_row(dxp + (i * c + j) * s, xp + (i * c + j) * s,
                      dy + (i * c + j) * s, s, mu, is, a, mdy, mdyx, st[0]);
    }
    return 0;
}

static const dgm__op op_batch_norm = {DGM_OP_BATCH_NORM, bn_backward};

static bool vec_ok(const dgm_tensor *t, int64_t c)
{
    return t->ndim == 1 && t->shape[0] == c && t->dtype == DGM_F32;
}

dgm_var *dgm_batch_norm(dgm_graph *g, dgm_var *xv, dgm_var *gv, dgm_var *bv,
                        dgm_param *running_mean, dgm_param *running_var,
                        float momentum, float eps)
{
    if (!xv)
        return NULL;
    dgm_tensor *xt = xv->value;
    char sx[96];
    dgm_tensor_describe(xt, sx, sizeof sx);
    if (xt->dtype != DGM_F32 || xt->ndim < 2 || xt->ndim > 5)
        return dgm__fail_null(g, DGM_ESHAPE,
                              "batch_norm: want f32 x [N, C] or [N, C, ...], "
                              "got %s",
                              sx);
    const int64_t n = xt->shape[0], c = xt->shape[1];
    const int64_t s = n && c ? dgm_tensor_numel(xt) / (n * c) : 0;
    if (n < 1 || c < 1 || s < 1)
        return dgm__fail_null(g, DGM_ESHAPE, "batch_norm: empty x %s", sx);
    struct {
        const char *what;
        const dgm_tensor *t;
    } vecs[4] = {{"gamma", gv ? gv->value : NULL},
                 {"beta", bv ? bv->value : NULL},
                 {"running_mean", running_mean ? running_mean->value : NULL},
                 {"running_var", running_var ? running_var->value : NULL}};
    for (int i = 0; i < 4; i++) {
        if (vecs[i].t && !vec_ok(vecs[i].t, c)) {
            char sv[96];
            dgm_tensor_describe(vecs[i].t, sv, sizeof sv);
            return dgm__fail_null(g, DGM_ESHAPE,
                                  "batch_norm: %s %s does not match x %s "
                                  "(want [%lld] f32)",
                                  vecs[i].what, sv, sx, (long long)c);
        }
    }
    if (!(eps > 0.0f) || !(momentum >= 0.0f && momentum <= 1.0f))
        return dgm__fail_null(g, DGM_EINVAL,
                              "batch_norm: eps %g must be > 0 and momentum %g "
                              "in [0, 1] (x %s)",
                              (double)eps, (double)momentum, sx);
    const bool have_running = running_mean && running_var;
    const bool batch_stats = dgm_graph_training(g) || !have_running;
    if (batch_stats && n * s < 2)
        return dgm__fail_null(g, DGM_ESHAPE,
                              "batch_norm: x %s has one value per channel; "
                              "training needs more",
                              sx);

    dgm_tensor *x = dgm__contig(g, xt);
    dgm_tensor *gamma = gv ? dgm__contig(g, gv->value) : NULL;
    dgm_tensor *beta = bv ? dgm__contig(g, bv->value) : NULL;
    int64_t cs[1] = {c};
    dgm_tensor *mean_t = dgm__alloc(g, DGM_F32, 1, cs);
    dgm_tensor *invstd_t = dgm__alloc(g, DGM_F32, 1, cs);
    /* bn_apply writes every element */
    dgm_tensor *y = dgm__alloc_uninit(g, DGM_F32, xt->ndim, xt->shape);
    if (!x || (gv && !gamma) || (bv && !beta) || !mean_t || !invstd_t || !y)
        return NULL;
    float *mean = dgm_tensor_f32(mean_t), *invstd = dgm_tensor_f32(invstd_t);
    double share;
    const bool sync =
        batch_stats && dgm_graph_training(g) && dgm__graph_sums(g, &share);
    double count = (double)(n * s);
    if (sync) {
        if (bn_stats_sync(g, dgm_tensor_f32(x), n, c, s, mean, invstd, &count) <
            0)
            return NULL;
    } else if (batch_stats) {
        bn_stats(dgm_tensor_f32(x), n, c, s, mean, invstd);
    }
    if (batch_stats) {
        /* a frozen statistic (freeze_bn_stats) keeps its value */
        if (dgm_graph_training(g) && have_running && !running_mean->frozen &&
            !running_var->frozen) {
            float *rm = dgm_tensor_f32(running_mean->value);
            float *rv = dgm_tensor_f32(running_var->value);
            const double unbias = count / (count - 1.0);
            for (int64_t j = 0; j < c; j++) {
                rm[j] = (1.0f - momentum) * rm[j] + momentum * mean[j];
                rv[j] = (float)((1.0 - momentum) * rv[j] +
                                momentum * invstd[j] * unbias);
            }
        }
        for (int64_t j = 0; j < c; j++)
            invstd[j] = 1.0f / sqrtf(invstd[j] + eps);
    } else {
        const float *rm = dgm_tensor_f32(running_mean->value);
        const float *rv = dgm_tensor_f32(running_var->value);
        for (int64_t j = 0; j < c; j++) {
            mean[j] = rm[j];
            invstd[j] = 1.0f / sqrtf(rv[j] + eps);
        }
    }
    bn_apply(dgm_tensor_f32(y), dgm_tensor_f32(x), n, c, s, mean, invstd,
             gamma ? dgm_tensor_f32(gamma) : NULL,
             beta ? dgm_tensor_f32(beta) : NULL);
    dgm_var *ins[3] = {xv, gv, bv};
    dgm_var *out = dgm__node(g, &op_batch_norm, y, ins, 3);
    if (!out)
        return NULL;
    out->saved[0] = x;
    out->saved[1] = mean_t;
    out->saved[2] = invstd_t;
    out->saved[3] = gamma;
    out->attr.i[0] = batch_stats;
    out->attr.i[1] = sync;
    out->attr.i[2] = (int64_t)count;
    return out;
}

/* ====================================================================== */
/* Layer norm                                                             */
/* ====================================================================== */

/* Rows per partial sum of d gamma / d beta. */
#define LN_ROWS 64
/* A row's sums run in LN_LANES fixed partial sums (lane l takes the
 * elements k = l mod LN_LANES: independent chains of additions), folded by
 * a fixed tree. The order is fixed by the code, not by the vector width or
 * the thread count: AVX2 and AVX-512 give the same bits. The fold's widths
 * are constants, so that GCC unrolls it into vector operations (a loop
 * over the width, or `omp simd reduction`, folded through memory, one
 * scalar addition after another). Rows are taken one after another:
 * interleaving several rows' sums (more chains) was faster with the rows
 * in cache but slower on rows coming from memory, whose sequential
 * stream the hardware prefetchers follow. */
#define LN_LANES 16
#define LN_FOLD(a, w)                                                          \
    for (int l = 0; l < (w); l++)                                              \
        a[l] += a[l + (w)];

static inline void ln_fold(double a[LN_LANES], double b[LN_LANES])
{
    _Static_assert(LN_LANES == 16, "the folds below are 16 lanes");
    LN_FOLD(a, 8);
    LN_FOLD(b, 8);
    LN_FOLD(a, 4);
    LN_FOLD(b, 4);
    LN_FOLD(a, 2);
    LN_FOLD(b, 2);
    LN_FOLD(a, 1);
    LN_FOLD(b, 1);
}

/* The mean and the biased variance of the row p of d, in double, in one
 * pass: the sums of t = x - x[0] and of t^2 (shifted by the row's first
 * element). var = S2/d - (S1/d)^2 loses at most a factor of d + 1 of the
 * relative precision of S2 to the cancellation, since
 * (mean - x[0])^2 <= sum (x - mean)^2; in double that is below 1e-12 of
 * the variance for d up to 10^3 and far below float's rounding for any d
 * in memory: the float mean and 1 / sqrt(var + eps) are the two-pass
 * form's up to their own rounding (the suite ops_fast checks a float64
 * reference, also on rows of mean 8192 and spread 0.03, where the form
 * without the shift fails). */
static inline void ln_moments(const float *restrict p, int64_t d, double *mean,
                              double *var)
{
    const double sh = p[0];
    double a[LN_LANES], b[LN_LANES];
    for (int l = 0; l < LN_LANES; l++)
        a[l] = b[l] = 0.0;
    int64_t k = 0;
    for (; k + LN_LANES <= d; k += LN_LANES)
#pragma omp simd
        for (int l = 0; l < LN_LANES; l++) {
            const double t = (double)p[k + l] - sh;
            a[l] += t;
            b[l] += t * t;
        }
    for (int l = 0; k + l < d; l++) {
        const double t = (double)p[k + l] - sh;
        a[l] += t;
        b[l] += t * t;
    }
    ln_fold(a, b);
    const double s1 = a[0] / (double)d, v = b[0] / (double)d - s1 * s1;
    *mean = sh + s1;
    *var = v > 0.0 ? v : 0.0;
}

/* The backward's row sums: s1 = sum gd, s2 = sum gd * xhat, gd = dy *
 * gamma as a float product, xhat = (x - mu) * is in float, the sums in
 * double. */
static inline void ln_row_sums(const float *restrict p, const float *restrict q,
                               const float *restrict gamma, float mu, float is,
                               int64_t d, double *s1, double *s2)
{
    double a[LN_LANES], b[LN_LANES];
    for (int l = 0; l < LN_LANES; l++)
        a[l] = b[l] = 0.0;
    int64_t k = 0;
    for (; k + LN_LANES <= d; k += LN_LANES)
#pragma omp simd
        for (int l = 0; l < LN_LANES; l++) {
            const double gd = q[k + l] * gamma[k + l];
            a[l] += gd;
            b[l] += gd * (double)((p[k + l] - mu) * is);
        }
    for (int l = 0; k + l < d; l++) {
        const double gd = q[k + l] * gamma[k + l];
        a[l] += gd;
        b[l] += gd * (double)((p[k + l] - mu) * is);
    }
    ln_fold(a, b);
    *s1 = a[0];
    *s2 = b[0];
}

/* One row of dx: o = (store) or += is * (gd - m1 - xhat * m2). */
static inline void ln_dx_row(float *restrict o, const float *restrict p,
                             const float *restrict q,
                             const float *restrict gamma, float mu, float is,
                             float m1, float m2, int64_t d, bool store)
{
    if (store) {
#pragma omp simd
        for (int64_t k = 0; k < d; k++) {
            const float xh = (p[k] - mu) * is;
            o[k] = is * (q[k] * gamma[k] - m1 - xh * m2);
        }
    } else {
#pragma omp simd
        for (int64_t k = 0; k < d; k++) {
            const float xh = (p[k] - mu) * is;
            o[k] += is * (q[k] * gamma[k] - m1 - xh * m2);
        }
    }
}

/* The column partials of d beta (sb) and d gamma (sg) of LN_R rows (in
 * L1 after their dx), in double: the rows' terms summed in a fixed tree,
 * then added to the block's partials (a quarter of the partials' loads and
 * stores). */
#define LN_R 4
static void ln_col_sums(double *restrict sg, double *restrict sb,
                        const float *const p[LN_R], const float *const q[LN_R],
                        const float mu[LN_R], const float is[LN_R], int64_t d)
{
    _Static_assert(LN_R == 4, "the column sums below take 4 rows");
    const float *p0 = p[0], *p1 = p[1], *p2 = p[2], *p3 = p[3];
    const float *q0 = q[0], *q1 = q[1], *q2 = q[2], *q3 = q[3];
#pragma omp simd
    for (int64_t k = 0; k < d; k++) {
        const double d0 = q0[k], d1 = q1[k], d2 = q2[k], d3 = q3[k];
        sb[k] += (d0 + d1) + (d2 + d3);
        sg[k] += (d0 * (double)((p0[k] - mu[0]) * is[0]) +
                  d1 * (double)((p1[k] - mu[1]) * is[1])) +
                 (d2 * (double)((p2[k] - mu[2]) * is[2]) +
                  d3 * (double)((p3[k] - mu[3]) * is[3]));
    }
}

static int ln_backward(dgm_graph *g, dgm_var *node)
{
    dgm_var *xv = node->in[0], *gv = node->in[1], *bv = node->in[2];
    dgm_tensor *x = node->saved[0], *mean_t = node->saved[1],
               *invstd_t = node->saved[2], *gamma_t = node->saved[3];
    dgm_tensor *dyt = dgm__contig(g, node->grad);
    if (!dyt)
        return DGM_ENOMEM;
    const int64_t d = x->shape[x->ndim - 1], r = dgm_tensor_numel(x) / d;
    bool sx, sgam, sbet; /* first contributions: store, don't add */
    dgm_tensor *dx = dgm__grad_in(g, node, 0, &sx);
    dgm_tensor *dg = dgm__grad_in(g, node, 1, &sgam);
    dgm_tensor *db = dgm__grad_in(g, node, 2, &sbet);
    if ((xv->requires_grad && !dx) || (gv && gv->requires_grad && !dg) ||
        (bv && bv->requires_grad && !db))
        return dgm__fail_rc(g);
    const float *xp = dgm_tensor_f32(x), *dy = dgm_tensor_f32(dyt);
    const float *mean = dgm_tensor_f32(mean_t),
                *invstd = dgm_tensor_f32(invstd_t);
    float *dxp = dx ? dgm_tensor_f32(dx) : NULL;
    float *dgp = dg ? dgm_tensor_f32(dg) : NULL;
    float *dbp = db ? dgm_tensor_f32(db) : NULL;
    /* No gamma: ones (x 1 is exact), so that the kernels have one form. */
    const float *gamma = gamma_t ? dgm_tensor_f32(gamma_t) : NULL;
    if (!gamma && dxp) {
        float *ones = dgm__arena_alloc(g, sizeof(float) * (size_t)d);
        if (!ones)
            return dgm__fail_rc(g);
        for (int64_t k = 0; k < d; k++)
            ones[k] = 1.0f;
        gamma = ones;
    }
    /* One pass over x and dy, in blocks of LN_ROWS rows, in groups of
     * LN_R rows: each row's sums (in double) and dx, then the group's
     * terms of the block's partial column sums for d gamma and d beta
     * while the rows are in L1 (a tail group's unused places repeat its
     * last row and are not read). The partials are added up in block
     * order, so the result does not depend on the thread count. */
    const int64_t nb = (r + LN_ROWS - 1) / LN_ROWS;
    double *part = NULL;
    if (dg || db) {
        part = dgm__arena_alloc(g, sizeof(double) * 2 * (size_t)(nb * d));
        if (!part)
            return dgm__fail_rc(g);
    }
#pragma omp parallel for schedule(static) if (r * d >= 16384)
    for (int64_t blk = 0; blk < nb; blk++) {
        double *sg = part ? part + 2 * blk * d : NULL, *sb = sg ? sg + d : NULL;
        if (sg)
            memset(sg, 0, sizeof(double) * 2 * (size_t)d);
        const int64_t end = (blk + 1) * LN_ROWS < r ? (blk + 1) * LN_ROWS : r;
        for (int64_t i0 = blk * LN_ROWS; i0 < end; i0 += LN_R) {
            const int nr = end - i0 < LN_R ? (int)(end - i0) : LN_R;
            const float *p[LN_R], *q[LN_R];
            float mu[LN_R], is[LN_R];
            for (int j = 0; j < LN_R; j++) {
                const int64_t i = i0 + (j < nr ? j : nr - 1);
                p[j] = xp + i * d;
                q[j] = dy + i * d;
                mu[j] = mean[i];
                is[j] = invstd[i];
            }
            for (int j = 0; dxp && j < nr; j++) {
                double s1, s2;
                ln_row_sums(p[j], q[j], gamma, mu[j], is[j], d, &s1, &s2);
                ln_dx_row(dxp + (i0 + j) * d, p[j], q[j], gamma, mu[j], is[j],
                          (float)(s1 / d), (float)(s2 / d), d, sx);
            }
            if (!sg)
                continue;
            if (nr == LN_R) {
                ln_col_sums(sg, sb, p, q, mu, is, d);
            } else {
                for (int j = 0; j < nr; j++) {
                    const float *pj = p[j], *qj = q[j];
                    const float m = mu[j], s = is[j];
#pragma omp simd
                    for (int64_t k = 0; k < d; k++) {
                        sb[k] += qj[k];
                        sg[k] += (double)qj[k] * (double)((pj[k] - m) * s);
                    }
                }
            }
        }
    }
    if (part) {
        for (int64_t k = 0; k < d; k++) {
            double tg = 0.0, tb = 0.0;
            for (int64_t blk = 0; blk < nb; blk++) {
                tg += part[2 * blk * d + k];
                tb += part[(2 * blk + 1) * d + k];
            }
            if (dgp)
                dgp[k] = sgam ? (float)tg : dgp[k] + (float)tg;
            if (dbp)
                dbp[k] = sbet ? (float)tb : dbp[k] + (float)tb;
        }
    }
    return 0;
}

static const dgm__op op_layer_norm = {DGM_OP_LAYER_NORM, ln_backward};

dgm_var *dgm_layer_norm(dgm_graph *g, dgm_var *xv, dgm_var *gv, dgm_var *bv,
                        float eps)
{
    if (!xv)
        return NULL;
    dgm_tensor *xt = xv->value;
    char sx[96];
    dgm_tensor_describe(xt, sx, sizeof sx);
    if (xt->dtype != DGM_F32 || xt->ndim < 1 || xt->shape[xt->ndim - 1] < 1)
        return dgm__fail_null(g, DGM_ESHAPE,
                              "layer_norm: want f32 x [..., D], D >= 1, got "
                              "%s",
                              sx);
    const int64_t d = xt->shape[xt->ndim - 1], r = dgm_tensor_numel(xt) / d;
    const dgm_tensor *vs[2] = {gv ? gv->value : NULL, bv ? bv->value : NULL};
    for (int i = 0; i < 2; i++)
        if (vs[i] && !vec_ok(vs[i], d)) {
            char sv[96];
            dgm_tensor_describe(vs[i], sv, sizeof sv);
            return dgm__fail_null(g, DGM_ESHAPE,
                                  "layer_norm: %s %s does not match x %s "
                                  "(want [%lld] f32)",
                                  i ? "beta" : "gamma", sv, sx, (long long)d);
        }
    if (!(eps > 0.0f))
        return dgm__fail_null(g, DGM_EINVAL,
                              "layer_norm: eps %g must be > 0 (x %s)",
                              (double)eps, sx);
    dgm_tensor *x = dgm__contig(g, xt);
    dgm_tensor *gamma = gv ? dgm__contig(g, gv->value) : NULL;
    dgm_tensor *beta = bv ? dgm__contig(g, bv->value) : NULL;
    int64_t rs[1] = {r};
    dgm_tensor *mean_t = dgm__alloc(g, DGM_F32, 1, rs);
    dgm_tensor *invstd_t = dgm__alloc(g, DGM_F32, 1, rs);
    /* the row loop writes every element */
    dgm_tensor *y = dgm__alloc_uninit(g, DGM_F32, xt->ndim, xt->shape);
    if (!x || (gv && !gamma) || (bv && !beta) || !mean_t || !invstd_t || !y)
        return NULL;
    const float *xp = dgm_tensor_f32(x);
    const float *gp = gamma ? dgm_tensor_f32(gamma) : NULL;
    const float *bp = beta ? dgm_tensor_f32(beta) : NULL;
    float *yp = dgm_tensor_f32(y), *mean = dgm_tensor_f32(mean_t),
          *invstd = dgm_tensor_f32(invstd_t);
    /* Row by row: the statistics in one pass (ln_moments), then the
     * outputs while the row is in L1. Each row's result depends on that
     * row alone: the same bits at any thread count. */
#pragma omp parallel for schedule(static) if (r * d >= 16384)
    for (int64_t i = 0; i < r; i++) {
        const float *p = xp + i * d;
        double m, v;
        ln_moments(p, d, &m, &v);
        const float mu = (float)m, is = (float)(1.0 / sqrt(v + eps));
        mean[i] = mu;
        invstd[i] = is;
        float *o = yp + i * d;
#pragma omp simd
        for (int64_t k = 0; k < d; k++) {
            const float xh = (p[k] - mu) * is;
            o[k] = xh * (gp ? gp[k] : 1.0f) + (bp ? bp[k] : 0.0f);
        }
    }
    dgm_var *ins[3] = {xv, gv, bv};
    dgm_var *out = dgm__node(g, &op_layer_norm, y, ins, 3);
    if (!out)
        return NULL;
    out->saved[0] = x;
    out->saved[1] = mean_t;
    out->saved[2] = invstd_t;
    out->saved[3] = gamma;
    return out;
}
