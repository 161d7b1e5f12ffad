/* op_attention.c - scaled dot-product attention as one op (dgm_attention):
 * scores, causal mask, softmax and the value product per query row, never
 * a [T, T] tensor; the backward recomputes each row's weights from the
 * log-sum-exp the forward saved (flash-attention's recipe, on the CPU:
 * one (batch, head) slice of K and V stays in cache while its queries
 * run). Plain C that GCC vectorises (the d-long dot products and axpys);
 * OpenMP over the batch. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "graph_internal.h"
#include "profile_internal.h"
#include "vmath.h"

#pragma GCC optimize("no-trapping-math")

/* Below this many score entries the op stays on one thread. */
#define PAR_MIN 16384

static int attention_backward(dgm_graph *g, dgm_var *node);
static const dgm__op op_attention = {DGM_OP_ATTENTION, attention_backward};

typedef struct att_geom {
    int64_t B, T, d;
    float scale;
    bool causal;
} att_geom;

static inline float dot(const float *a, const float *b, int64_t d)
{
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int64_t c = 0; c < d; c++)
        s += a[c] * b[c];
    return s;
}

static inline void axpy(float *y, float a, const float *x, int64_t n)
{
#pragma omp simd
    for (int64_t c = 0; c < n; c++)
        y[c] += a * x[c];
}

/* xt [d, T] = x [T, d]^T: the scores of one query against all keys are
 * then d axpys along the keys, which vectorise, instead of T dot products
 * of length d, each ending in a horizontal sum (3x slower at d 32). */
static void transpose(float *xt, const float *x, int64_t T, int64_t d)
{
    for (int64_t j = 0; j < T; j++)
        for (int64_t c = 0; c < d; c++)
            xt[c * T + j] = x[j * d + c];
}

/* s[j] = sum_c a[c] xt[c, j] for j < n. */
static inline void row_times(float *s, const float *a, const float *xt,
                             int64_t T, int64_t d, int64_t n)
{
    memset(s, 0, (size_t)n * sizeof *s);
    for (int64_t c = 0; c < d; c++)
        axpy(s, a[c], xt + c * T, n);
}

/* Scratch floats per thread: k^T, v^T and two score rows. */
static int64_t scratch_per_thread(const att_geom *s)
{
    return 2 * s->T * s->d + 2 * s->T;
}

/* o [B, T, d], lse [B, T] from q, k, v [B, T, d]. */
static void attention_fwd(const att_geom *s, float *o, float *lse,
                          const float *q, const float *k, const float *v,
                          float *scratch)
{
    const int64_t B = s->B, T = s->T, d = s->d;
#pragma omp parallel for schedule(static) if (B * T * T >= PAR_MIN)
    for (int64_t b = 0; b < B; b++) {
        float *kt = scratch + omp_get_thread_num() * scratch_per_thread(s);
        float *p = kt + 2 * T * d;
        const float *qb = q + b * T * d, *vb = v + b * T * d;
        transpose(kt, k + b * T * d, T, d);
        for (int64_t i = 0; i < T; i++) {
            const int64_t n = s->causal ? i + 1 : T;
            row_times(p, qb + i * d, kt, T, d, n);
            float m = -INFINITY;
            for (int64_t j = 0; j < n; j++) {
                p[j] *= s->scale;
                m = p[j] > m ? p[j] : m;
            }
            float l = 0.0f;
#pragma omp simd reduction(+ : l)
            for (int64_t j = 0; j < n; j++) {
                p[j] = exp_k(p[j] - m);
                l += p[j];
            }
            float *oi = o + (b * T + i) * d;
            memset(oi, 0, (size_t)d * sizeof *oi);
            const float inv = 1.0f / l;
            for (int64_t j = 0; j < n; j++)
                axpy(oi, p[j] * inv, vb + j * d, d);
            lse[b * T + i] = m + logf(l);
        }
    }
}

/* dq, dk, dv [B, T, d] (+=, any may be NULL) from dout and the saved o
 * and lse. Threads split the batch: rows of one slice all add into its
 * dk and dv. */
static void attention_bwd(const att_geom *s, float *dq, float *dk, float *dv,
                          const float *dout, const float *o, const float *lse,
                          const float *q, const float *k, const float *v,
                          float *scratch)
{
    const int64_t B = s->B, T = s->T, d = s->d;
#pragma omp parallel for schedule(static) if (B * T * T >= PAR_MIN)
    for (int64_t b = 0; b < B; b++) {
        const int64_t off = b * T * d;
        float *kt = scratch + omp_get_thread_num() * scratch_per_thread(s);
        float *vt = kt + T * d, *p = vt + T * d, *dp = p + T;
        const float *qb = q + off, *kb = k + off;
        transpose(kt, kb, T, d);
        transpose(vt, v + off, T, d);
        for (int64_t i = 0; i < T; i++) {
            const int64_t n = s->causal ? i + 1 : T;
            const float *qi = qb + i * d, *doi = dout + off + i * d;
            /* D_i = sum_j p_ij dp_ij = do_i . o_i */
            const float Di = dot(doi, o + off + i * d, d), Li = lse[b * T + i];
            row_times(p, qi, kt, T, d, n);
            row_times(dp, doi, vt, T, d, n);
#pragma omp simd
            for (int64_t j = 0; j < n; j++) {
                p[j] = exp_k(s->scale * p[j] - Li);
                dp[j] = p[j] * (dp[j] - Di) * s->scale; /* d score */
            }
            for (int64_t j = 0; j < n; j++) {
                if (dv)
                    axpy(dv + off + j * d, p[j], doi, d);
                if (dq)
                    axpy(dq + off + i * d, dp[j], kb + j * d, d);
                if (dk)
                    axpy(dk + off + j * d, dp[j], qi, d);
            }
        }
    }
}

/* Multiply-adds per (query, key) pair and channel: the forward's scores
 * and value product; the backward's recomputed scores, dv, dp, dq, dk. */
static double pair_flops(const att_geom *s, int per_pair)
{
    double pairs = s->causal ? 0.5 * (double)s->T * (double)(s->T + 1)
                             : (double)s->T * (double)s->T;
    return 2.0 * per_pair * (double)s->B * pairs * (double)s->d;
}

dgm_var *dgm_attention(dgm_graph *g, dgm_var *q, dgm_var *k, dgm_var *v,
                       float scale, bool causal)
{
    if (!q || !k || !v)
        return NULL;
    const dgm_tensor *qt = dgm_value(q), *kt = dgm_value(k), *vt = dgm_value(v);
    char s1[96], s2[96], s3[96];
    bool ok =
        qt->dtype == DGM_F32 && kt->dtype == DGM_F32 && vt->dtype == DGM_F32 &&
        qt->ndim >= 2 && qt->ndim == kt->ndim && qt->ndim == vt->ndim &&
        !memcmp(qt->shape, kt->shape, sizeof(int64_t) * (size_t)qt->ndim) &&
        !memcmp(qt->shape, vt->shape, sizeof(int64_t) * (size_t)qt->ndim);
    if (!ok || !isfinite(scale))
        return dgm__fail_null(
            g, qt->dtype == DGM_F32 ? DGM_ESHAPE : DGM_EDTYPE,
            "attention: q %s, k %s, v %s must be f32 [..., T, d] of one "
            "shape (scale %g finite)",
            dgm_tensor_describe(qt, s1, sizeof s1),
            dgm_tensor_describe(kt, s2, sizeof s2),
            dgm_tensor_describe(vt, s3, sizeof s3), (double)scale);
    att_geom s = {1, qt->shape[qt->ndim - 2], qt->shape[qt->ndim - 1], scale,
                  causal};
    for (int i = 0; i < qt->ndim - 2; i++)
        s.B *= qt->shape[i];
    dgm_tensor *qc = dgm__contig(g, q->value), *kc = dgm__contig(g, k->value),
               *vc = dgm__contig(g, v->value);
    dgm_tensor *o = qc && kc && vc
                        ? dgm__alloc_uninit(g, DGM_F32, qt->ndim, qt->shape)
                        : NULL;
    dgm_tensor *lse =
        o ? dgm__alloc_uninit(g, DGM_F32, 2, (int64_t[]){s.B, s.T}) : NULL;
    float *scratch =
        lse ? dgm__arena_alloc(
                  g, (size_t)(dgm_threads() * scratch_per_thread(&s)) *
                         sizeof(float))
            : NULL;
    if (!scratch)
        return NULL;
    if (s.B * s.T * s.d > 0)
        attention_fwd(&s, dgm_tensor_f32(o), dgm_tensor_f32(lse),
                      dgm_tensor_f32(qc), dgm_tensor_f32(kc),
                      dgm_tensor_f32(vc), scratch);
    dgm_var *ins[3] = {q, k, v};
    dgm_var *out = dgm__node(g, &op_attention, o, ins, 3);
    if (out) {
        out->saved[0] = lse;
        out->saved[1] = qc;
        out->saved[2] = kc;
        out->saved[3] = vc;
        out->attr.i[0] = s.B;
        out->attr.i[1] = s.T;
        out->attr.i[2] = s.d;
        out->attr.i[3] = causal;
        /* attr.f aliases attr.i: the scale's bits in a slot of its own */
        memcpy(&out->attr.i[4], &scale, sizeof scale);
        if (dgm__profile_on)
            dgm__profile_add_flops(DGM_OP_ATTENTION, 0, pair_flops(&s, 2));
    }
    return out;
}

static int attention_backward(dgm_graph *g, dgm_var *node)
{
    float scale;
    memcpy(&scale, &node->attr.i[4], sizeof scale);
    const att_geom s = {node->attr.i[0], node->attr.i[1], node->attr.i[2],
                        scale, node->attr.i[3] != 0};
    dgm_tensor *dq = dgm__grad_buf(g, node->in[0]);
    dgm_tensor *dk = dgm__grad_buf(g, node->in[1]);
    dgm_tensor *dv = dgm__grad_buf(g, node->in[2]);
    dgm_tensor *dout = dgm__contig(g, node->grad);
    float *scratch = dgm__arena_alloc(
        g, (size_t)(dgm_threads() * scratch_per_thread(&s)) * sizeof(float));
    if ((node->in[0]->requires_grad && !dq) ||
        (node->in[1]->requires_grad && !dk) ||
        (node->in[2]->requires_grad && !dv) || !dout || !scratch)
        return dgm__fail_rc(g);
    if (s.B * s.T * s.d > 0)
        attention_bwd(
            &s, dq ? dgm_tensor_f32(dq) : NULL, dk ? dgm_tensor_f32(dk) : NULL,
            dv ? dgm_tensor_f32(dv) : NULL, dgm_tensor_f32(dout),
            dgm_tensor_f32(node->value), dgm_tensor_f32(node->saved[0]),
            dgm_tensor_f32(node->saved[1]), dgm_tensor_f32(node->saved[2]),
            dgm_tensor_f32(node->saved[3]), scratch);
    if (dgm__profile_on)
        dgm__profile_add_flops(DGM_OP_ATTENTION, 1, pair_flops(&s, 5));
    return 0;
}
