/* op_attention_packed.c - multi-head attention straight from the packed
 * projection (dgm_attention_packed): qkv [N, T, 3D] -> [N, T, D]. The
 * graph holds no reshape, permute, copy, slice, scale or mask node: the
 * op splits q, k and v once into dense [N, T, D] buffers of its own, runs
 * four batched GEMMs on the heads as strided views (oneDNN matmul, batch
 * dims N and H) around a causal softmax done in place on the scores, and
 * writes the heads' outputs side by side; the probabilities P
 * [N, H, T, T] are kept for the backward, whose GEMMs write the packed
 * gradient dqkv directly. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dnnl_util.h"
#include "graph_internal.h"
#include "profile_internal.h"
#include "tensor_internal.h"
#include "vmath.h"

#pragma GCC optimize("no-trapping-math")

/* A batched GEMM whose per-matrix work is this small runs the plain loop:
 * oneDNN's dispatch costs more than it computes (op_dense.c's cut). */
#define SMALL_GEMM (16 * 16 * 16)

static int packed_backward(dgm_graph *g, dgm_var *node);
static const dgm__op op_packed = {DGM_OP_ATTENTION_PACKED, packed_backward};

/* ---- strided batched GEMM -------------------------------------------- */

/* dst[b, h] (+)= A[b, h] [M, K] @ B[b, h] [K, N] for b < nb, h < nh, each
 * operand addressed by 4 strides (b, h, row, column), in elements. Any of
 * the operands may be a transposed view or a head inside a packed row.
 * (op_dense.c's contiguous GEMM could be expressed with this too.) */
typedef struct sgemm {
    int64_t tag; /* keeps the cache key apart from other ops' keys */
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

static int sgemm_prim_make(const sgemm *d, dgm__dnnl_matmul **out)
{
    dnnl_dims_t ad = {d->nb, d->nh, d->m, d->k},
                bd = {d->nb, d->nh, d->k, d->n},
                dd = {d->nb, d->nh, d->m, d->n}, as, bs, ds;
    for (int i = 0; i < 4; i++)
        as[i] = d->as[i], bs[i] = d->bs[i], ds[i] = d->ds[i];
    dnnl_memory_desc_t amd, bmd, dmd;
    int rc = dgm__dnnl_check(
        dnnl_memory_desc_init_by_strides(&amd, 4, ad, dnnl_f32, as), "src md");
    if (rc == 0)
        rc = dgm__dnnl_check(
            dnnl_memory_desc_init_by_strides(&bmd, 4, bd, dnnl_f32, bs),
            "weights md");
    if (rc == 0)
        rc = dgm__dnnl_check(
            dnnl_memory_desc_init_by_strides(&dmd, 4, dd, dnnl_f32, ds),
            "dst md");
    if (rc < 0)
        return rc;
    return dgm__dnnl_matmul_new(&amd, &bmd, NULL, &dmd, d->accumulate,
                                "attention_packed matmul", out);
}

static int sgemm_run(const dgm_graph *g, const sgemm *d, float *dst,
                     const float *a, const float *b)
{
    if (!dgm__use_dnnl(g) || d->m * d->n * d->k <= SMALL_GEMM) {
        sgemm_ref(d, dst, a, b);
        return 0;
    }
    sgemm key;
    memset(&key, 0, sizeof key);
    key = *d;
    key.tag = DGM_OP_ATTENTION_PACKED;
    dgm__dnnl_matmul *p = dgm__dnnl_cache_get(&key, sizeof key);
    if (!p) {
        int rc = sgemm_prim_make(&key, &p);
        if (rc == 0)
            rc =
                dgm__dnnl_cache_put(&key, sizeof key, p, dgm__dnnl_matmul_free);
        if (rc < 0)
            return rc;
    }
    dnnl_memory_set_data_handle(p->src, (void *)a);
    dnnl_memory_set_data_handle(p->wei, (void *)b);
    dnnl_memory_set_data_handle(p->dst, dst);
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, p->src},
                               {DNNL_ARG_WEIGHTS, p->wei},
                               {DNNL_ARG_DST, p->dst}};
    return dgm__dnnl_check(
        dnnl_primitive_execute(p->prim, dgm__dnnl_stream(), 3, args),
        "attention_packed matmul");
}

/* ---- the geometry of qkv ---------------------------------------------- */

typedef struct pk_geom {
    int64_t N, T, H, d;
    float scale;
    bool causal;
} pk_geom;

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

/* qkv [N, T, 3D] -> split [3, N, T, D]: q, k and v each dense, so that a
 * head's [T, d] is a dense permuted view oneDNN runs with its
 * batch-reduce kernel; read inside the packed rows (a stride of 3D
 * between tokens) oneDNN falls back to its slower looped GEMM, which cost
 * 1.7x more on the scores q k^T. One pass over qkv (~0.1 ms at
 * [32, 64, 384]) buys it back several times over; gradients are still
 * written straight into the packed dqkv, where that fallback is as fast. */
static void split_qkv(const pk_geom *s, float *split, const float *x)
{
    const int64_t D = s->H * s->d, R = s->N * s->T;
    const size_t row = (size_t)D * sizeof(float);
#pragma omp parallel for schedule(static) if (R * D >= (1 << 16))
    for (int64_t r = 0; r < R; r++)
        for (int p = 0; p < 3; p++)
            memcpy(split + p * R * D + r * D, x + r * 3 * D + p * D, row);
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

/* The row sums run in LANES fixed partial sums (lane l takes the keys
 * j = l mod LANES), folded by a fixed tree: the same bits whatever the
 * vector width (AVX2 and AVX-512 both hold a lane group in registers) and
 * the thread count, where `omp simd reduction` leaves the order to the
 * compiler. A [T, T] head block is one task: T 64 is 16 KB of scores, so
 * the threads take whole blocks and no row is shared. */
#define LANES 16
/* Score elements below which the softmax loops stay on one thread. */
#define SOFTMAX_PAR_MIN (1 << 14)

static inline float lanes_sum(float a[LANES])
{
    for (int w = LANES / 2; w > 0; w /= 2)
        for (int l = 0; l < w; l++)
            a[l] += a[l + w];
    return a[0];
}

/* One row of scores x [T] -> its softmax over keys j < n, zeros after.
 * The loops run over whole lane groups up to nv (n rounded up to LANES,
 * at most T) with keys j >= n masked to -inf (exp_k gives 0), so a causal
 * row's short length costs no scalar tails; the sum is the same as over
 * j < n alone (the masked lanes add zeros). */
static inline void softmax_row(float *x, int64_t n, int64_t T, float sc)
{
    const int64_t nv = (n + LANES - 1) / LANES * LANES < T
                           ? (n + LANES - 1) / LANES * LANES
                           : T;
    /* the largest scaled score (any sign of sc), lane-wise over whole
     * groups (not fmaxf: a libm call here); max is exact in any order */
    float mx[LANES];
    for (int l = 0; l < LANES; l++)
        mx[l] = -INFINITY;
    int64_t j0 = 0;
    for (; j0 + LANES <= nv; j0 += LANES) {
        const float *xj = x + j0;
        const int64_t nj = n - j0;
#pragma omp simd
        for (int l = 0; l < LANES; l++) {
            const float v = l < nj ? xj[l] * sc : -INFINITY;
            mx[l] = v > mx[l] ? v : mx[l];
        }
    }
    for (int64_t j = j0; j < n; j++) {
        const float v = x[j] * sc;
        mx[0] = v > mx[0] ? v : mx[0];
    }
    for (int w = LANES / 2; w > 0; w /= 2)
        for (int l = 0; l < w; l++)
            mx[l] = mx[l + w] > mx[l] ? mx[l + w] : mx[l];
    const float m = mx[0];
    float acc[LANES] = {0};
    for (j0 = 0; j0 + LANES <= nv; j0 += LANES) {
        float *xj = x + j0;
        const int64_t nj = n - j0;
#pragma omp simd
        for (int l = 0; l < LANES; l++) {
            const float e = l < nj ? exp_k(xj[l] * sc - m) : 0.0f;
            xj[l] = e;
            acc[l] += e;
        }
    }
    {
        float *xj = x + j0;
        const int rest = (int)(nv - j0);
        const int64_t nj = n - j0;
#pragma omp simd
        for (int l = 0; l < rest; l++) {
            const float e = l < nj ? exp_k(xj[l] * sc - m) : 0.0f;
            xj[l] = e;
            acc[l] += e;
        }
    }
    const float inv = 1.0f / lanes_sum(acc);
#pragma omp simd
    for (int64_t j = 0; j < nv; j++)
        x[j] *= inv;
    if (nv < T)
        memset(x + nv, 0, (size_t)(T - nv) * sizeof *x);
}

/* One row of dP g [T] -> scale * y (g - sum_j y g) for j < n, zeros
 * after; y (P) is zero at j >= n, so the dot runs over whole lane groups
 * up to nv as the forward does, in the same fixed order. */
static inline void softmax_row_backward(float *g, const float *y, int64_t n,
                                        int64_t T, float sc)
{
    const int64_t nv = (n + LANES - 1) / LANES * LANES < T
                           ? (n + LANES - 1) / LANES * LANES
                           : T;
    float acc[LANES] = {0};
    int64_t j0 = 0;
    for (; j0 + LANES <= nv; j0 += LANES) {
#pragma omp simd
        for (int l = 0; l < LANES; l++)
            acc[l] += y[j0 + l] * g[j0 + l];
    }
    const int rest = (int)(nv - j0);
#pragma omp simd
    for (int l = 0; l < rest; l++)
        acc[l] += y[j0 + l] * g[j0 + l];
    const float dot = lanes_sum(acc);
#pragma omp simd
    for (int64_t j = 0; j < nv; j++)
        g[j] = j < n ? sc * y[j] * (g[j] - dot) : 0.0f;
    if (nv < T)
        memset(g + nv, 0, (size_t)(T - nv) * sizeof *g);
}

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
            softmax_row(p + (b * T + i) * T, s->causal ? i + 1 : T, T,
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
            softmax_row_backward(dp + (b * T + i) * T, p + (b * T + i) * T,
                                 s->causal ? i + 1 : T, T, s->scale);
}

/* Multiply-adds count 2; the GEMMs run over the whole [T, T] even when
 * causal (the masked half is computed, then ignored). */
static double gemm_flops(const pk_geom *s, int gemms)
{
    return 2.0 * gemms * (double)s->N * (double)s->H * (double)s->T *
           (double)s->T * (double)s->d;
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
    dgm_tensor *xc = dgm__contig(g, qkv->value);
    dgm_tensor *sp =
        xc ? dgm__alloc_uninit(g, DGM_F32, 4, (int64_t[]){3, N, T, D}) : NULL;
    dgm_tensor *o =
        sp ? dgm__alloc_uninit(g, DGM_F32, 3, (int64_t[]){N, T, D}) : NULL;
    dgm_tensor *p =
        o ? dgm__alloc_uninit(g, DGM_F32, 4, (int64_t[]){N, heads, T, T})
          : NULL;
    if (!p)
        return NULL;
    if (N * T > 0) {
        float *x = dgm_tensor_f32(sp);
        split_qkv(&s, x, dgm_tensor_f32(xc));
        const int64_t part = N * T * D;
        int64_t hs[4], kt[4], ps[4];
        out_strides(&s, hs); /* a head of q, k, v or out: [T, d] */
        out_strides(&s, kt);
        swap_rc(kt); /* k^T [d, T] */
        tt_strides(&s, false, ps);
        /* scores = q k^T, [N, H, T, T] */
        sgemm d1 = gemm_desc(&s, T, T, s.d, hs, kt, ps, false);
        int rc = sgemm_run(g, &d1, dgm_tensor_f32(p), x, x + part);
        if (rc == 0) {
            softmax_rows(&s, dgm_tensor_f32(p));
            /* out = P v, heads side by side in each token's row */
            sgemm d2 = gemm_desc(&s, T, s.d, T, ps, hs, hs, false);
            rc = sgemm_run(g, &d2, dgm_tensor_f32(o), dgm_tensor_f32(p),
                           x + 2 * part);
        }
        if (rc < 0)
            return dgm__fail_null(g, rc, "%s", dgm_last_error());
    }
    dgm_var *out = dgm__node(g, &op_packed, o, &qkv, 1);
    if (out) {
        out->saved[0] = p;
        out->saved[1] = sp; /* q, k, v split */
        out->attr.i[0] = N;
        out->attr.i[1] = T;
        out->attr.i[2] = heads;
        out->attr.i[3] = s.d;
        out->attr.i[4] = causal;
        /* attr.f aliases attr.i: the scale's bits in a slot of its own */
        memcpy(&out->attr.i[5], &scale, sizeof scale);
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
    const int64_t N = s.N, T = s.T, D = s.H * s.d;
    bool store;
    dgm_tensor *dx = dgm__grad_in(g, node, 0, &store);
    if (!dx)
        return node->in[0]->requires_grad ? dgm__fail_rc(g) : 0;
    dgm_tensor *dout = dgm__contig(g, node->grad);
    float *dp = dgm__arena_alloc(g, (size_t)(N * s.H * T * T) * sizeof(float));
    if (!dout || !dp)
        return dgm__fail_rc(g);
    if (N * T == 0)
        return 0;
    const float *x = dgm_tensor_f32(node->saved[1]); /* [3, N, T, D] */
    const float *p = dgm_tensor_f32(node->saved[0]);
    const float *go = dgm_tensor_f32(dout);
    float *gx = dgm_tensor_f32(dx);
    const int64_t part = N * T * D;
    int64_t qs[4], hs[4], ht[4], ps[4], pt[4];
    qkv_strides(&s, qs); /* a head's gradient inside dqkv */
    out_strides(&s, hs); /* a head of dout or of split q, k, v */
    out_strides(&s, ht);
    swap_rc(ht);
    tt_strides(&s, false, ps);
    tt_strides(&s, true, pt);
    /* Store mode: dq, dk and dv each write their third of every row of
     * dqkv in full, so together they store every element. */
    const bool acc = !store;
    /* dv = P^T dO */
    sgemm d = gemm_desc(&s, T, s.d, T, pt, hs, qs, acc);
    int rc = sgemm_run(g, &d, gx + 2 * D, p, go);
    if (rc == 0) { /* dP = dO v^T */
        d = gemm_desc(&s, T, T, s.d, hs, ht, ps, false);
        rc = sgemm_run(g, &d, dp, go, x + 2 * part);
    }
    if (rc == 0) {
        softmax_rows_backward(&s, dp, p);              /* dS, scale included */
        d = gemm_desc(&s, T, s.d, T, ps, hs, qs, acc); /* dq = dS k */
        rc = sgemm_run(g, &d, gx, dp, x + part);
    }
    if (rc == 0) { /* dk = dS^T q */
        d = gemm_desc(&s, T, s.d, T, pt, hs, qs, acc);
        rc = sgemm_run(g, &d, gx + D, dp, x);
    }
    if (rc < 0)
        return rc;
    if (dgm__profile_on)
        dgm__profile_add_flops(DGM_OP_ATTENTION_PACKED, 1, gemm_flops(&s, 4));
    return 0;
}
