/* op_loss.c - elementwise losses: binary cross-entropy on logits and
 * categorical cross-entropy on logits with integer targets. Plain C on
 * both backends (one fused pass each; oneDNN has no such primitive). */
#include <math.h>
#include <string.h>

#include "graph_internal.h"
#include "vmath.h"

#define PAR_MIN 32768


/* ====================================================================== */
/* bce_with_logits                                                        */
/* ====================================================================== */

/* y[i] = max(l,0) - l*t + log1p(exp(-|l|)): never overflows, and exact
 * enough at |l| = 100 where the naive form gives inf or loses t. */
static void bce_fwd(float *y, const float *l, const float *t, int64_t n)
{
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
    for (int64_t i = 0; i < n; i++)
        y[i] = (l[i] > 0.0f ? l[i] : 0.0f) - l[i] * t[i] +
               log1p_k(exp_k(-fabsf(l[i]))); /* not fmaxf: it stays scalar */
}

static inline float sigmoidf_stable(float x)
{
    /* exp of -|x| never overflows; select instead of branch so the loop
     * vectorises. */
    const float e = exp_k(-fabsf(x)), r = 1.0f / (1.0f + e);
    return x >= 0.0f ? r : e * r;
}

/* dl += dy * (sigmoid(l) - t); dt += dy * (-l). Either may be NULL; =
 * instead of += for the one whose flag (sl, st) says first contribution. */
static void bce_bwd(float *dl, float *dt, const float *dy, const float *l,
                    const float *t, int64_t n, bool sl, bool st)
{
    /* Two loops, not `sl ? v : dl[i] + v` in one: GCC left that one scalar
     * (0.5 ms of a 4 ms VAE step at batch 128). */
    if (dl && sl) {
#pragma omp parallel for simd schedule(static) if (n >= PAR_MIN)
        for (int64_t i = 0; i < n; i++)
            dl[i] = dy[i] * (sigmoidf_stable(l[i]) - t[i]);
    } else if (dl) {
#pragma omp parallel for simd schedule(static) if (n >= PAR_MIN)
        for (int64_t i = 0; i < n; i++)
            dl[i] += dy[i] * (sigmoidf_stable(l[i]) - t[i]);
    }
    if (dt) {
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
        for (int64_t i = 0; i < n; i++)
            dt[i] = st ? -(dy[i] * l[i]) : dt[i] - dy[i] * l[i];
    }
}

/* saved[0] = logits, saved[1] = target (both contiguous). */
static int bce_backward(dgm_graph *g, dgm_var *node)
{
    bool sl, st; /* first contributions: store, don't add */
    dgm_tensor *dl = dgm__grad_in(g, node, 0, &sl);
    dgm_tensor *dt = dgm__grad_in(g, node, 1, &st);
    if (!dl && !dt)
        return 0;
    dgm_tensor *dy = dgm__contig(g, node->grad);
    if (!dy)
        return dgm__fail_rc(g);
    bce_bwd(dl ? dgm_tensor_f32(dl) : NULL, dt ? dgm_tensor_f32(dt) : NULL,
            dgm_tensor_f32(dy), dgm_tensor_f32(node->saved[0]),
            dgm_tensor_f32(node->saved[1]), dgm_tensor_numel(dy), sl, st);
    return 0;
}

static const dgm__op op_bce = {DGM_OP_BCE_WITH_LOGITS, bce_backward};

dgm_var *dgm_bce_with_logits(dgm_graph *g, dgm_var *logits, dgm_var *target)
{
    if (!g || !logits || !target)
        return NULL;
    char bl[128], bt[128];
    const dgm_tensor *lt = logits->value, *tt = target->value;
    dgm_tensor_describe(lt, bl, sizeof bl);
    dgm_tensor_describe(tt, bt, sizeof bt);
    if (lt->dtype != DGM_F32 || tt->dtype != DGM_F32)
        return dgm__fail_null(g, DGM_EDTYPE,
                              "bce_with_logits: logits %s and target %s must "
                              "be f32",
                              bl, bt);
    if (!dgm_tensor_same_shape(lt, tt))
        return dgm__fail_null(g, DGM_ESHAPE,
                              "bce_with_logits: logits %s and target %s "
                              "differ in shape",
                              bl, bt);
    dgm_tensor *l = dgm__contig(g, logits->value), *t = dgm__contig(g, target->value);
    if (!l || !t)
        return NULL;
    dgm_tensor *y = dgm__alloc_uninit(g, DGM_F32, l->ndim, l->shape);
    if (!y)
        return NULL;
    bce_fwd(dgm_tensor_f32(y), dgm_tensor_f32(l), dgm_tensor_f32(t),
            dgm_tensor_numel(l));
    dgm_var *in[2] = {logits, target};
    dgm_var *out = dgm__node(g, &op_bce, y, in, 2);
    if (out) {
        out->saved[0] = l;
        out->saved[1] = t;
    }
    return out;
}

/* ====================================================================== */
/* cross_entropy                                                          */
/* ====================================================================== */

static int64_t target_at(const dgm_tensor *t, int64_t i)
{
    return t->dtype == DGM_I32 ? ((const int32_t *)t->data)[i]
                               : ((const int64_t *)t->data)[i];
}

/* logits [rows, C], target [rows] (checked) -> y [rows] = lse - l[target],
 * lse [rows] kept for backward. Each row's max and sum of exp over vector
 * lanes (exp_k vectorises where glibc's expf does not). */
static void ce_fwd(float *y, float *lse, const float *l, const dgm_tensor *t,
                   int64_t rows, int64_t c)
{
#pragma omp parallel for schedule(static) if (rows * c >= PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float *lr = l + r * c;
        float m = -INFINITY;
#pragma omp simd reduction(max : m)
        for (int64_t j = 0; j < c; j++)
            m = lr[j] > m ? lr[j] : m; /* not fmaxf: it stays scalar */
        /* 16 running sums, one per lane, added up in a fixed order: the
         * same bits on AVX2 and AVX-512 (an omp simd reduction's order
         * follows the vector width). */
        float part[16] = {0.0f}, s = 0.0f;
        int64_t j = 0;
        for (; j + 16 <= c; j += 16)
#pragma omp simd
            for (int k = 0; k < 16; k++)
                part[k] += exp_k(lr[j + k] - m);
        for (int k = 0; k < 16; k++)
            s += part[k];
        for (; j < c; j++)
            s += exp_k(lr[j] - m);
        lse[r] = m + logf(s);
        y[r] = lse[r] - lr[target_at(t, r)];
    }
}

/* dl[r, j] += dy[r] * (softmax(l)[r, j] - (j == target[r])); = instead
 * of += when store (dl's first contribution). */
static void ce_bwd(float *dl, const float *dy, const float *l, const float *lse,
                   const dgm_tensor *t, int64_t rows, int64_t c, bool store)
{
#pragma omp parallel for schedule(static) if (rows * c >= PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float *lr = l + r * c;
        float *dr = dl + r * c;
        const float g = dy[r], z = lse[r];
        if (store) {
#pragma omp simd
            for (int64_t j = 0; j < c; j++)
                dr[j] = g * exp_k(lr[j] - z);
        } else {
#pragma omp simd
            for (int64_t j = 0; j < c; j++)
                dr[j] += g * exp_k(lr[j] - z);
        }
        dr[target_at(t, r)] -= g;
    }
}

/* saved[0] = logits, [1] = lse, [2] = target (all contiguous);
 * attr.i = rows, C. */
static int ce_backward(dgm_graph *g, dgm_var *node)
{
    bool store;
    dgm_tensor *dl = dgm__grad_in(g, node, 0, &store);
    if (!dl)
        return 0;
    dgm_tensor *dy = dgm__contig(g, node->grad);
    if (!dy)
        return dgm__fail_rc(g);
    ce_bwd(dgm_tensor_f32(dl), dgm_tensor_f32(dy),
           dgm_tensor_f32(node->saved[0]), dgm_tensor_f32(node->saved[1]),
           node->saved[2], node->attr.i[0], node->attr.i[1], store);
    return 0;
}

static const dgm__op op_cross_entropy = {DGM_OP_CROSS_ENTROPY, ce_backward};

dgm_var *dgm_cross_entropy(dgm_graph *g, dgm_var *logits, dgm_var *target)
{
    if (!g || !logits || !target)
        return NULL;
    char bl[128], bt[128];
    const dgm_tensor *lt = logits->value, *tt = target->value;
    dgm_tensor_describe(lt, bl, sizeof bl);
    dgm_tensor_describe(tt, bt, sizeof bt);
    if (lt->dtype != DGM_F32 || (tt->dtype != DGM_I32 && tt->dtype != DGM_I64))
        return dgm__fail_null(g, DGM_EDTYPE,
                              "cross_entropy: logits %s must be f32 and "
                              "target %s i32 or i64",
                              bl, bt);
    bool ok = lt->ndim >= 1 && tt->ndim == lt->ndim - 1;
    for (int k = 0; ok && k < tt->ndim; k++)
        ok = tt->shape[k] == lt->shape[k];
    if (!ok)
        return dgm__fail_null(g, DGM_ESHAPE,
                              "cross_entropy: logits %s must be [..., C] "
                              "over target %s [...]",
                              bl, bt);
    const int64_t c = lt->shape[lt->ndim - 1];
    dgm_tensor *t = dgm__contig(g, target->value);
    if (!t)
        return NULL;
    const int64_t rows = dgm_tensor_numel(t);
    for (int64_t r = 0; r < rows; r++) {
        const int64_t k = target_at(t, r);
        if (k < 0 || k >= c)
            return dgm__fail_null(g, DGM_EINVAL,
                                  "cross_entropy: target %lld at position "
                                  "%lld out of range [0, C = %lld) (logits "
                                  "%s, target %s)",
                                  (long long)k, (long long)r, (long long)c, bl,
                                  bt);
    }
    dgm_tensor *l = dgm__contig(g, logits->value);
    if (!l)
        return NULL;
    dgm_tensor *y = dgm__alloc(g, DGM_F32, t->ndim, t->shape);
    dgm_tensor *lse = dgm__alloc(g, DGM_F32, t->ndim, t->shape);
    if (!y || !lse)
        return NULL;
    if (rows > 0 && c > 0)
        ce_fwd(dgm_tensor_f32(y), dgm_tensor_f32(lse), dgm_tensor_f32(l), t,
               rows, c);
    dgm_var *in[2] = {logits, target};
    dgm_var *out = dgm__node(g, &op_cross_entropy, y, in, 2);
    if (out) {
        out->saved[0] = l;
        out->saved[1] = lse;
        out->saved[2] = t;
        out->attr.i[0] = rows;
        out->attr.i[1] = c;
    }
    return out;
}
