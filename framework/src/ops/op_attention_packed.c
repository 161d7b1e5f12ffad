/* op_attention_packed.c - multi-head attention straight from the packed
 * projection (dgm_attention_packed): qkv [N, T, 3D] -> [N, T, D]. The
 * graph holds no reshape, permute, copy, slice, scale or mask node. The
 * fast path (attention_fused.c) runs one task per (batch, head) with the
 * head's q, k, v in cache and only the causal key blocks; the reference
 * path here runs four plain batched GEMMs on the heads as strided views
 * around the same causal softmax rows. Both keep the probabilities P for
 * the backward, whose GEMMs write the packed gradient dqkv directly. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "attention_packed.h"
#include "graph_internal.h"
#include "profile_internal.h"
#include "tensor_internal.h"

#pragma GCC optimize("no-trapping-math")

static int packed_backward(dgm_graph *g, dgm_var *node);
static const dgm__op op_packed = {DGM_OP_ATTENTION_PACKED, packed_backward};

/* ---- strided batched GEMM -------------------------------------------- */

/* dst[b, h] (+)= A[b, h] [M, K] @ B[b, h] [K, N] for b < nb, h < nh, each
 * operand addressed by 4 strides (b, h, row, column), in elements. Any of
 * the operands may be a transposed view or a head inside a packed row.
 * The reference path's only GEMM: plain loops, one sum per element. */
typedef struct sgemm {
    int64_t nb, nh, m, n, k;
    int64_t as[4], bs[4], ds[4];
    int64_t accumulate;
} sgemm;

static void sgemm_ref(const sgemm *d, float *dst, const float *a,
                      const float *b)
{
    for (int64_t x = 0; x < d->nb; x++)
        for (int64_t y = 0; y < d->nh; y++) {
            const float *ab = a + x * d->as[0] + y * d->as[1];
            const float *bb = b + x * d->bs[0] + y * d->bs[1];
            float *db = dst + x * d->ds[0] + y * d->ds[1];
            for (int64_t i = 0; i < d->m; i++)
                for (int64_t j = 0; j < d->n; j++) {
                    float s = 0.0f;
                    for (int64_t p = 0; p < d->k; p++)
                        s += ab[i * d->as[2] + p * d->as[3]] *
                             bb[p * d->bs[2] + j * d->bs[3]];
                    float *o = db + i * d->ds[2] + j * d->ds[3];
                    *o = d->accumulate ? *o + s : s;
                }
        }
}

/* ---- the geometry of qkv ---------------------------------------------- */

typedef dgm__pk_geom pk_geom;

/* Strides (batch, head, row t, channel c) of q, k or v inside qkv
 * [N, T, 3D] (part 0, 1, 2 at offset part * D), and of out [N, T, D]. */
static void qkv_strides(const pk_geom *s, int64_t st[4])
{
    const int64_t D = s->H * s->d;
    st[0] = s->T * 3 * D, st[1] = s->d, st[2] = 3 * D, st[3] = 1;
}

static void out_strides(const pk_geom *s, int64_t st[4])
{
    const int64_t D = s->H * s->d;
    st[0] = s->T * D, st[1] = s->d, st[2] = D, st[3] = 1;
}

/* P [N, H, T, T] row-major, or its transpose (rows and columns swapped). */
static void tt_strides(const pk_geom *s, bool transposed, int64_t st[4])
{
    st[0] = s->H * s->T * s->T, st[1] = s->T * s->T;
    st[2] = transposed ? 1 : s->T, st[3] = transposed ? s->T : 1;
}

/* The same matrix read transposed: swap the row and column strides. */
static void swap_rc(int64_t st[4])
{
    int64_t t = st[2];
    st[2] = st[3], st[3] = t;
}

static sgemm gemm_desc(const pk_geom *s, int64_t m, int64_t n, int64_t k,
                       const int64_t as[4], const int64_t bs[4],
                       const int64_t ds[4], bool accumulate)
{
    sgemm d;
    memset(&d, 0, sizeof d);
    d.nb = s->N, d.nh = s->H, d.m = m, d.n = n, d.k = k;
    memcpy(d.as, as, sizeof d.as);
    memcpy(d.bs, bs, sizeof d.bs);
    memcpy(d.ds, ds, sizeof d.ds);
    d.accumulate = accumulate;
    return d;
}

/* ---- the causal softmax, in place ------------------------------------- */

/* A [T, T] head block is one task: T 64 is 16 KB of scores, so the
 * threads take whole blocks and no row is shared. */
/* Score elements below which the softmax loops stay on one thread. */
#define SOFTMAX_PAR_MIN (1 << 14)

/* p [N H, T, T] scores (row i of a block is query i) -> softmax of
 * scale * p over keys j <= i (every key when not causal), zeros written
 * at the masked keys, which are never exponentiated. */
static void softmax_rows(const pk_geom *s, float *p)
{
    const int64_t T = s->T, B = s->N * s->H;
#pragma omp parallel for schedule(static) if (B > 1 &&                         \
                                              B * T * T >= SOFTMAX_PAR_MIN)
    for (int64_t b = 0; b < B; b++)
        for (int64_t i = 0; i < T; i++)
            dgm__pk_softmax_row(p + (b * T + i) * T, s->causal ? i + 1 : T, T,
                                s->scale);
}

/* dp [N H, T, T] (d loss / d P) -> d loss / d (q k^T), in place:
 * scale * P (dP - sum_j P dP), zero at masked keys as P is. */
static void softmax_rows_backward(const pk_geom *s, float *dp, const float *p)
{
    const int64_t T = s->T, B = s->N * s->H;
#pragma omp parallel for schedule(static) if (B > 1 &&                         \
                                              B * T * T >= SOFTMAX_PAR_MIN)
    for (int64_t b = 0; b < B; b++)
        for (int64_t i = 0; i < T; i++)
            dgm__pk_softmax_row_backward(dp + (b * T + i) * T,
                                         p + (b * T + i) * T,
                                         s->causal ? i + 1 : T, T, s->scale);
}

/* Multiply-adds count 2, over the whole [T, T] as PyTorch computes it
 * (the fused path skips most of the masked half when causal, so its rate
 * reads higher than the arithmetic done). */
static double gemm_flops(const pk_geom *s, int gemms)
{
    return 2.0 * gemms * (double)s->N * (double)s->H * (double)s->T *
           (double)s->T * (double)s->d;
}

/* ---- the reference path ------------------------------------------------*/

/* out [N, T, D] and p [N, H, T, T] from qkv [N, T, 3D], the heads read
 * inside the packed rows. */
static void reference_forward(const pk_geom *s, float *out, float *p,
                              const float *x)
{
    const int64_t T = s->T, D = s->H * s->d;
    int64_t qs[4], kt[4], os[4], ps[4];
    qkv_strides(s, qs);
    qkv_strides(s, kt);
    swap_rc(kt); /* k^T [d, T] */
    out_strides(s, os);
    tt_strides(s, false, ps);
    sgemm d1 = gemm_desc(s, T, T, s->d, qs, kt, ps, false); /* q k^T */
    sgemm_ref(&d1, p, x, x + D);
    softmax_rows(s, p);
    sgemm d2 = gemm_desc(s, T, s->d, T, ps, qs, os, false); /* P v */
    sgemm_ref(&d2, out, p, x + 2 * D);
}

/* dqkv (+)= the gradient, dp [N, H, T, T] scratch. */
static void reference_backward(const pk_geom *s, float *gx, bool acc,
                               const float *go, const float *p, const float *x,
                               float *dp)
{
    const int64_t T = s->T, D = s->H * s->d;
    int64_t qs[4], qt[4], hs[4], ps[4], pt[4];
    qkv_strides(s, qs); /* a head of q, k, v or of its gradient in dqkv */
    qkv_strides(s, qt);
    swap_rc(qt);
    out_strides(s, hs); /* a head of dout */
    tt_strides(s, false, ps);
    tt_strides(s, true, pt);
    /* dv = P^T dO */
    sgemm d = gemm_desc(s, T, s->d, T, pt, hs, qs, acc);
    sgemm_ref(&d, gx + 2 * D, p, go);
    d = gemm_desc(s, T, T, s->d, hs, qt, ps, false); /* dP = dO v^T */
    sgemm_ref(&d, dp, go, x + 2 * D);
    softmax_rows_backward(s, dp, p);               /* dS, scale included */
    d = gemm_desc(s, T, s->d, T, ps, qs, qs, acc); /* dq = dS k */
    sgemm_ref(&d, gx, dp, x + D);
    d = gemm_desc(s, T, s->d, T, pt, qs, qs, acc); /* dk = dS^T q */
    sgemm_ref(&d, gx + D, dp, x);
}

/* ---- the op -------------------------------------------------------------*/

dgm_var *dgm_attention_packed(dgm_graph *g, dgm_var *qkv, int heads,
                              float scale, bool causal)
{
    if (!qkv)
        return NULL;
    const dgm_tensor *xt = dgm_value(qkv);
    char s1[96];
    if (xt->dtype != DGM_F32)
        return dgm__fail_null(g, DGM_EDTYPE,
                              "attention_packed: qkv %s must be f32",
                              dgm_tensor_describe(xt, s1, sizeof s1));
    if (xt->ndim != 3 || heads < 1 || xt->shape[2] % (3 * (int64_t)heads) ||
        xt->shape[2] == 0 || !isfinite(scale))
        return dgm__fail_null(
            g, DGM_ESHAPE,
            "attention_packed: qkv %s must be [N, T, 3 * D] with D a "
            "multiple of heads %d (scale %g finite)",
            dgm_tensor_describe(xt, s1, sizeof s1), heads, (double)scale);
    const int64_t N = xt->shape[0], T = xt->shape[1], D = xt->shape[2] / 3;
    pk_geom s = {N, T, heads, D / heads, scale, causal};
    /* the fast path with oneDNN's backend (the default), the plain
     * reference with the reference backend the tests compare against */
    const bool fused = dgm__use_dnnl(g);
    const int64_t Tp = fused ? dgm__pk_fused_tp(T) : T;
    const int threads = dgm_threads();
    dgm_tensor *xc = dgm__contig(g, qkv->value);
    dgm_tensor *o =
        xc ? dgm__alloc_uninit(g, DGM_F32, 3, (int64_t[]){N, T, D}) : NULL;
    dgm_tensor *p =
        o ? dgm__alloc_uninit(g, DGM_F32, 4, (int64_t[]){N, heads, Tp, Tp})
          : NULL;
    float *scratch =
        p && fused && N * T > 0
            ? dgm__arena_alloc(
                  g, (size_t)(threads * dgm__pk_fused_scratch(&s, false)) *
                         sizeof(float))
            : NULL;
    if (!p || (fused && N * T > 0 && !scratch))
        return NULL;
    if (N * T > 0) {
        if (fused)
            dgm__pk_fused_forward(&s, dgm_tensor_f32(o), dgm_tensor_f32(p),
                                  dgm_tensor_f32(xc), scratch, threads);
        else
            reference_forward(&s, dgm_tensor_f32(o), dgm_tensor_f32(p),
                              dgm_tensor_f32(xc));
    }
    dgm_var *out = dgm__node(g, &op_packed, o, &qkv, 1);
    if (out) {
        out->saved[0] = p;
        out->saved[1] = xc;
        out->attr.i[0] = N;
        out->attr.i[1] = T;
        out->attr.i[2] = heads;
        out->attr.i[3] = s.d;
        out->attr.i[4] = causal;
        /* attr.f aliases attr.i: the scale's bits in a slot of its own */
        memcpy(&out->attr.i[5], &scale, sizeof scale);
        out->attr.i[6] = fused; /* P's layout follows the path */
        if (dgm__profile_on)
            dgm__profile_add_flops(DGM_OP_ATTENTION_PACKED, 0,
                                   gemm_flops(&s, 2));
    }
    return out;
}

static int packed_backward(dgm_graph *g, dgm_var *node)
{
    float scale;
    memcpy(&scale, &node->attr.i[5], sizeof scale);
    const pk_geom s = {node->attr.i[0], node->attr.i[1], node->attr.i[2],
                       node->attr.i[3], scale,           node->attr.i[4] != 0};
    const bool fused = node->attr.i[6] != 0;
    const int64_t N = s.N, T = s.T;
    const int threads = dgm_threads();
    bool store;
    dgm_tensor *dx = dgm__grad_in(g, node, 0, &store);
    if (!dx)
        return node->in[0]->requires_grad ? dgm__fail_rc(g) : 0;
    dgm_tensor *dout = dgm__contig(g, node->grad);
    const size_t scratch =
        fused ? (size_t)(threads * dgm__pk_fused_scratch(&s, true))
              : (size_t)(N * s.H * T * T);
    float *w = dgm__arena_alloc(g, scratch * sizeof(float));
    if (!dout || !w)
        return dgm__fail_rc(g);
    if (N * T == 0)
        return 0;
    const float *x = dgm_tensor_f32(node->saved[1]); /* qkv [N, T, 3D] */
    const float *p = dgm_tensor_f32(node->saved[0]);
    /* Store mode: dq, dk and dv each write their third of every row of
     * dqkv in full, so together they store every element. */
    if (fused)
        dgm__pk_fused_backward(&s, dgm_tensor_f32(dx), !store,
                               dgm_tensor_f32(dout), p, x, w, threads);
    else
        reference_backward(&s, dgm_tensor_f32(dx), !store, dgm_tensor_f32(dout),
                           p, x, w);
    if (dgm__profile_on)
        dgm__profile_add_flops(DGM_OP_ATTENTION_PACKED, 1, gemm_flops(&s, 4));
    return 0;
}
