/* op_dense.c - linear, linear + GELU as one op, and (batched) matmul with
 * either operand transposed: one GEMM kernel behind all, as a oneDNN matmul
 * primitive (cached per shape; gradients accumulate through a sum post-op)
 * or a plain C loop. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "dnnl_util.h"
#include "graph_internal.h"
#include "tensor_internal.h"
#include "vmath.h"

/* Problems this small cost more in oneDNN's dispatch than they compute
 * (PyTorch's mkldnn matmul makes the same cut at 16^3). */
#define DGM__GEMM_SMALL (16 * 16 * 16)

/* dst[b] (+)= op(X[b]) @ op(Y[b]) (+ bias): X is [M, K], or [K, M] when tx;
 * Y is [K, N], or [N, K] when ty; dst [M, N]; every operand contiguous. */
typedef struct gemm_desc {
    int64_t batch, m, n, k;
    int tx, ty, accumulate, bias;
} gemm_desc;

static void gemm_ref(const gemm_desc *d, float *dst, const float *x,
                     const float *y, const float *bias)
{
    int64_t M = d->m, N = d->n, K = d->k;
    for (int64_t b = 0; b < d->batch; b++) {
        const float *xb = x + b * M * K, *yb = y + b * K * N;
        float *db = dst + b * M * N;
        for (int64_t i = 0; i < M; i++) {
            float *row = db + i * N;
            if (!d->accumulate)
                for (int64_t j = 0; j < N; j++)
                    row[j] = bias ? bias[j] : 0.0f;
            else if (bias)
                for (int64_t j = 0; j < N; j++)
                    row[j] += bias[j];
            for (int64_t p = 0; p < K; p++) {
                float a = d->tx ? xb[p * M + i] : xb[i * K + p];
                if (d->ty) {
                    for (int64_t j = 0; j < N; j++)
                        row[j] += a * yb[j * K + p];
                } else {
                    const float *yr = yb + p * N;
                    for (int64_t j = 0; j < N; j++)
                        row[j] += a * yr[j];
                }
            }
        }
    }
}

/* The matmul of d: [B, M, K] x [B, K, N] (+ bias [1, 1, N]) -> [B, M, N],
 * either operand read transposed by its strides. */
static int gemm_prim_make(const gemm_desc *d, dgm__dnnl_matmul **out)
{
    int64_t B = d->batch, M = d->m, N = d->n, K = d->k;
    dnnl_dims_t sd = {B, M, K}, ss, wd = {B, K, N}, ws, dd = {B, M, N}, ds,
                bd = {1, 1, N}, bs = {N, N, 1};
    ss[0] = M * K, ss[1] = d->tx ? 1 : K, ss[2] = d->tx ? M : 1;
    ws[0] = K * N, ws[1] = d->ty ? 1 : N, ws[2] = d->ty ? K : 1;
    ds[0] = M * N, ds[1] = N, ds[2] = 1;
    dnnl_memory_desc_t smd, wmd, dmd, bmd;
    int rc = dgm__dnnl_check(
        dnnl_memory_desc_init_by_strides(&smd, 3, sd, dnnl_f32, ss), "src md");
    if (rc == 0)
        rc = dgm__dnnl_check(
            dnnl_memory_desc_init_by_strides(&wmd, 3, wd, dnnl_f32, ws),
            "weights md");
    if (rc == 0)
        rc = dgm__dnnl_check(
            dnnl_memory_desc_init_by_strides(&dmd, 3, dd, dnnl_f32, ds),
            "dst md");
    if (rc == 0 && d->bias)
        rc = dgm__dnnl_check(
            dnnl_memory_desc_init_by_strides(&bmd, 3, bd, dnnl_f32, bs),
            "bias md");
    if (rc < 0)
        return rc;
    return dgm__dnnl_matmul_new(&smd, &wmd, d->bias ? &bmd : NULL, &dmd,
                                d->accumulate, "matmul", out);
}

static int gemm(const dgm_graph *g, const gemm_desc *d, float *dst,
                const float *x, const float *y, const float *bias)
{
    if (!dgm__use_dnnl(g) || d->m * d->n * d->k <= DGM__GEMM_SMALL) {
        gemm_ref(d, dst, x, y, bias);
        return 0;
    }
    /* Tagged like every other key of the primitive cache, so that no
     * other op's key of the same length can equal it. */
    struct {
        char tag[8];
        gemm_desc d;
    } key;
    memset(&key, 0, sizeof key);
    memcpy(key.tag, "gemm", 4);
    key.d = *d;
    dgm__dnnl_matmul *p = dgm__dnnl_cache_get(&key, sizeof key);
    if (!p) {
        int rc = gemm_prim_make(d, &p);
        if (rc == 0)
            rc =
                dgm__dnnl_cache_put(&key, sizeof key, p, dgm__dnnl_matmul_free);
        if (rc < 0)
            return rc;
    }
    dnnl_memory_set_data_handle(p->src, (void *)x);
    dnnl_memory_set_data_handle(p->wei, (void *)y);
    dnnl_memory_set_data_handle(p->dst, dst);
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, p->src},
                               {DNNL_ARG_WEIGHTS, p->wei},
                               {DNNL_ARG_DST, p->dst},
                               {DNNL_ARG_BIAS, p->bias}};
    if (p->bias)
        dnnl_memory_set_data_handle(p->bias, (void *)bias);
    int rc = dgm__dnnl_check(dnnl_primitive_execute(p->prim,
                                                    dgm__dnnl_stream(),
                                                    p->bias ? 4 : 3, args),
                             "matmul");
    return rc;
}

/* gemm() for one 2-D product without bias (batch 1), through oneDNN's
 * sgemm rather than a matmul primitive: at the char transformer's
 * backward shapes (dx = dy w, dw = dy^T x: [2048, 384] x [384, 128],
 * [384, 2048] x [2048, 128], ...) it took 12-16% less CPU time on one
 * thread, alternating in one process (docs/performance-transformer.md). */
static int gemm_2d(const dgm_graph *g, const gemm_desc *d, float *dst,
                   const float *x, const float *y)
{
    if (!dgm__use_dnnl(g) || d->m * d->n * d->k <= DGM__GEMM_SMALL)
        return gemm(g, d, dst, x, y, NULL);
    return dgm__dnnl_check(
        dnnl_sgemm(d->tx ? 'T' : 'N', d->ty ? 'T' : 'N', d->m, d->n, d->k, 1.0f,
                   x, d->tx ? d->m : d->k, y, d->ty ? d->k : d->n,
                   d->accumulate ? 1.0f : 0.0f, dst, d->n),
        "sgemm");
}

static float *f32(const dgm_tensor *t) { return (float *)t->data; }

/* x, w and b must be contiguous for the kernels; views get a copy. */
static dgm_var *dense_input(dgm_graph *g, dgm_var *v)
{
    return v && !dgm_tensor_is_contiguous(dgm_value(v)) ? dgm_contiguous(g, v)
                                                         : v;
}

/* ---- linear ------------------------------------------------------------ */

/* Rows per partial sum of a bias gradient: a fixed blocking, so the
 * order of the sum, and its value, do not depend on the thread count. */
#define BIAS_ROWS 64

/* Below this many elements a pass stays on one thread (a team's start
 * costs more than the loop). */
#define PASS_PARALLEL_MIN 16384

/* The bias gradient db [O] from nb blocks' partial column sums part
 * [nb, O], added in block order; stored when `store` (the first
 * contribution), else added to. */
static void bias_sum(const float *part, int64_t nb, int64_t O, float *db,
                     bool store)
{
    int64_t blk = 0;
    if (store) {
        memcpy(db, part, sizeof(float) * (size_t)O);
        blk = 1;
    }
    for (; blk < nb; blk++) {
        const float *s = part + blk * O;
#pragma omp simd
        for (int64_t o = 0; o < O; o++)
            db[o] += s[o];
    }
}

/* attr.i: [0] rows N, [1] in, [2] out */
static int linear_backward(dgm_graph *g, dgm_var *node)
{
    dgm_var *x = node->in[0], *w = node->in[1];
    dgm_var *b = node->n_in > 2 ? node->in[2] : NULL;
    int64_t N = node->attr.i[0], I = node->attr.i[1], O = node->attr.i[2];
    const float *dy = f32(node->grad);
    bool sx, sw, sb = false; /* first contributions: store, don't add */
    dgm_tensor *dx = dgm__grad_in(g, node, 0, &sx);
    dgm_tensor *dw = dgm__grad_in(g, node, 1, &sw);
    dgm_tensor *db = b ? dgm__grad_in(g, node, 2, &sb) : NULL;
    int rc = 0;
    if (dx) { /* dx [N, I] (+)= dy [N, O] @ w [O, I] */
        gemm_desc d = {1, N, I, O, 0, 0, !sx, 0};
        rc = gemm_2d(g, &d, f32(dx), dy, f32(dgm_value(w)));
    }
    if (rc == 0 && dw) { /* dw [O, I] (+)= dy^T [O, N] @ x [N, I] */
        gemm_desc d = {1, O, I, N, 1, 0, !sw, 0};
        rc = gemm_2d(g, &d, f32(dw), dy, f32(dgm_value(x)));
    }
    if (rc == 0 && db) {
        /* Column sums of dy: a single block straight into db, row after
         * row (added to its old value in the order it always was); more in
         * parallel partial sums over blocks, then added in block order. */
        const int64_t nb = (N + BIAS_ROWS - 1) / BIAS_ROWS;
        float *part =
            nb > 1 ? dgm__arena_alloc(g, sizeof(float) * (size_t)(nb * O))
                   : f32(db);
        if (!part)
            return dgm__fail_rc(g);
        if (nb == 1 && !sb) {
            for (int64_t i = 0; i < N; i++) {
                const float *r = dy + i * O;
#pragma omp simd
                for (int64_t o = 0; o < O; o++)
                    part[o] += r[o];
            }
            return rc;
        }
#pragma omp parallel for schedule(static) if (N * O > PASS_PARALLEL_MIN)
        for (int64_t blk = 0; blk < nb; blk++) {
            const int64_t end =
                (blk + 1) * BIAS_ROWS < N ? (blk + 1) * BIAS_ROWS : N;
            float *s = part + blk * O;
            memcpy(s, dy + blk * BIAS_ROWS * O, sizeof(float) * (size_t)O);
            for (int64_t i = blk * BIAS_ROWS + 1; i < end; i++) {
                const float *r = dy + i * O;
#pragma omp simd
                for (int64_t o = 0; o < O; o++)
                    s[o] += r[o];
            }
        }
        if (nb > 1)
            bias_sum(part, nb, O, f32(db), sb);
    }
    return rc;
}

static const dgm__op op_linear = {DGM_OP_LINEAR, linear_backward};

/* Checks shared by linear and linear_gelu (`name` for the messages):
 * true when x, w and b fit, else the graph's error is set. */
static bool linear_fits(dgm_graph *g, const char *name, dgm_var *x, dgm_var *w,
                        dgm_var *b)
{
    const dgm_tensor *xv = dgm_value(x), *wv = dgm_value(w);
    const dgm_tensor *bv = b ? dgm_value(b) : NULL;
    char s1[96], s2[96], s3[96];
    if (xv->dtype != DGM_F32 || wv->dtype != DGM_F32 ||
        (bv && bv->dtype != DGM_F32)) {
        dgm__fail(g, DGM_EDTYPE, "%s: x %s, w %s: f32 only", name,
                  dgm_tensor_describe(xv, s1, sizeof s1),
                  dgm_tensor_describe(wv, s2, sizeof s2));
        return false;
    }
    if (xv->ndim < 1 || wv->ndim != 2 ||
        xv->shape[xv->ndim - 1] != wv->shape[1] ||
        (bv && (bv->ndim != 1 || bv->shape[0] != wv->shape[0])) ||
        dgm_tensor_numel(xv) == 0 || wv->shape[0] == 0) {
        dgm__fail(g, DGM_ESHAPE,
                  "%s: x %s, w %s%s%s do not fit (x [..., in], w [out, in], "
                  "b [out])",
                  name, dgm_tensor_describe(xv, s1, sizeof s1),
                  dgm_tensor_describe(wv, s2, sizeof s2), bv ? ", b " : "",
                  bv ? dgm_tensor_describe(bv, s3, sizeof s3) : "");
        return false;
    }
    return true;
}

/* x, w, b replaced by contiguous copies if views; dims of the node to be
 * (attr.i: rows, in, out) and a new uninitialised arena tensor of the
 * output's shape [..., out]. */
static dgm_tensor *linear_prepare(dgm_graph *g, dgm_var **x, dgm_var **w,
                                  dgm_var **b, int64_t dims[3])
{
    const dgm_tensor *xv = dgm_value(*x), *wv = dgm_value(*w);
    bool has_b = *b != NULL;
    *x = dense_input(g, *x);
    *w = dense_input(g, *w);
    *b = dense_input(g, *b);
    if (!*x || !*w || (has_b && !*b))
        return NULL;
    int64_t I = wv->shape[1], O = wv->shape[0];
    dims[0] = dgm_tensor_numel(dgm_value(*x)) / I;
    dims[1] = I;
    dims[2] = O;
    int64_t shape[DGM_MAX_DIMS];
    memcpy(shape, xv->shape, sizeof(int64_t) * (size_t)xv->ndim);
    shape[xv->ndim - 1] = O;
    return dgm__alloc_uninit(g, DGM_F32, xv->ndim, shape);
}

dgm_var *dgm_linear(dgm_graph *g, dgm_var *x, dgm_var *w, dgm_var *b)
{
    if (!x || !w || !linear_fits(g, "linear", x, w, b))
        return NULL;
    int64_t dims[3];
    dgm_tensor *y = linear_prepare(g, &x, &w, &b, dims);
    if (!y)
        return NULL;
    gemm_desc d = {1, dims[0], dims[2], dims[1], 0, 1, 0, b != NULL};
    if (gemm(g, &d, f32(y), f32(dgm_value(x)), f32(dgm_value(w)),
             b ? f32(dgm_value(b)) : NULL) < 0)
        return dgm__fail_null(g, dgm_last_code(), "linear: %s",
                              dgm_last_error());
    dgm_var *ins[3] = {x, w, b};
    dgm_var *out = dgm__node(g, &op_linear, y, ins, b ? 3 : 2);
    if (out)
        memcpy(out->attr.i, dims, sizeof dims);
    return out;
}

/* ---- linear + GELU ------------------------------------------------------ */

/* Rows per block of the forward's GEMM + GELU: a block's z, y and
 * gelu'(z) ([64, 512] at the transformer's fc1: 3 x 128 KB) and w stay in
 * L2 (64 was fastest of 32-256 there). */
#define LG_FWD_ROWS 64

/* attr.i: [0] rows N, [1] in, [2] out; saved[0] gelu'(z), z the
 * pre-activation (the forward computes it with y at little extra cost, so
 * the backward is one pass of memory traffic, no transcendental). */
static int linear_gelu_backward(dgm_graph *g, dgm_var *node)
{
    dgm_var *x = node->in[0], *w = node->in[1];
    dgm_var *b = node->n_in > 2 ? node->in[2] : NULL;
    const int64_t N = node->attr.i[0], I = node->attr.i[1], O = node->attr.i[2];
    const float *dy = f32(node->grad), *gz = f32(node->saved[0]);
    bool sx, sw, sb = false; /* first contributions: store, don't add */
    dgm_tensor *dx = dgm__grad_in(g, node, 0, &sx);
    dgm_tensor *dw = dgm__grad_in(g, node, 1, &sw);
    dgm_tensor *db = b ? dgm__grad_in(g, node, 2, &sb) : NULL;
    if (!dx && !dw && !db)
        return 0;
    /* dz = dy * gelu'(z), written once (no zero fill), and in the same
     * pass each block's column sums for the bias gradient. */
    float *dz = dgm__arena_alloc(g, sizeof(float) * (size_t)(N * O));
    const int64_t nb = (N + BIAS_ROWS - 1) / BIAS_ROWS;
    float *part =
        db ? dgm__arena_alloc(g, sizeof(float) * (size_t)(nb * O)) : NULL;
    if (!dz || (db && !part))
        return dgm__fail_rc(g);
#pragma omp parallel for schedule(static) if (N * O > PASS_PARALLEL_MIN)
    for (int64_t blk = 0; blk < nb; blk++) {
        const int64_t end =
            (blk + 1) * BIAS_ROWS < N ? (blk + 1) * BIAS_ROWS : N;
        float *s = part ? part + blk * O : NULL;
        if (s)
            memset(s, 0, sizeof(float) * (size_t)O);
        for (int64_t i = blk * BIAS_ROWS; i < end; i++) {
            const float *gr = gz + i * O, *dyr = dy + i * O;
            float *dzr = dz + i * O;
            if (s) {
#pragma omp simd
                for (int64_t o = 0; o < O; o++) {
                    const float d = dyr[o] * gr[o];
                    dzr[o] = d;
                    s[o] += d;
                }
            } else {
#pragma omp simd
                for (int64_t o = 0; o < O; o++)
                    dzr[o] = dyr[o] * gr[o];
            }
        }
    }
    if (db)
        bias_sum(part, nb, O, f32(db), sb);
    int rc = 0;
    if (dx) { /* dx [N, I] (+)= dz [N, O] @ w [O, I] */
        gemm_desc d = {1, N, I, O, 0, 0, !sx, 0};
        rc = gemm_2d(g, &d, f32(dx), dz, f32(dgm_value(w)));
    }
    if (rc == 0 && dw) { /* dw [O, I] (+)= dz^T [O, N] @ x [N, I] */
        gemm_desc d = {1, O, I, N, 1, 0, !sw, 0};
        rc = gemm_2d(g, &d, f32(dw), dz, f32(dgm_value(x)));
    }
    return rc;
}

static const dgm__op op_linear_gelu = {DGM_OP_LINEAR_GELU,
                                       linear_gelu_backward};

/* The forward's GEMM per row block through one oneDNN matmul primitive
 * (brgemm) whose weights are in its own blocked layout, BA16a64b with
 * AVX-512: w is packed into it once per forward by each thread before its
 * first block, instead of a dnnl_sgemm per block that packed w again each
 * time. The primitive is planned for one thread and executed by each
 * thread on its own blocks with its own stream, memory objects and
 * scratchpad (user scratchpad mode), which oneDNN allows concurrently.
 * Every block runs the same kernel, so the values do not depend on the
 * thread count; a last block short of LG_FWD_ROWS rows goes through a
 * zero-padded copy. Where oneDNN picks another layout (no AVX-512: a
 * gemm-based matmul on plain weights, which with oneDNN's reorder of w
 * was 18-25% slower than the sgemm blocks), the blocks call dnnl_sgemm. */
typedef struct lg_key {
    char tag[12]; /* "linear_gelu" */
    int32_t bias, nthr;
    int64_t in, out;
} lg_key;

/* Per thread: a stream and memory objects src, wei, bias, dst, scratch. */
#define LG_MEMS 5
typedef struct lg_prim {
    bool blocked; /* false: the weights layout is not BA16a64b, use sgemm */
    dnnl_primitive_t mm;
    size_t wei_bytes, scratch_bytes;
    int nthr;
    dnnl_stream_t *stream; /* [nthr] */
    dnnl_memory_t *mem;    /* [nthr][LG_MEMS] */
} lg_prim;

/* w [O, I] row-major into BA16a64b, the layout of the weights [I, O] (I a
 * multiple of 16, O of 64): tiles of 16 inputs x 64 outputs, outputs
 * innermost, tiles ordered by output block then input block. oneDNN's
 * own reorder of this transposition took 0.16-0.2 ms at fc1 (loaded
 * machine), twice a row block's GEMM. */
static void lg_pack(float *dst, const float *w, int64_t I, int64_t O)
{
    for (int64_t ob = 0; ob < O / 64; ob++)
        for (int64_t ib = 0; ib < I / 16; ib++) {
            float *d = dst + (ob * (I / 16) + ib) * 1024;
            for (int64_t o = 0; o < 64; o++) {
                const float *src = w + (ob * 64 + o) * I + ib * 16;
                for (int64_t i = 0; i < 16; i++)
                    d[i * 64 + o] = src[i];
            }
        }
}

static void lg_prim_free(void *v)
{
    lg_prim *p = v;
    if (!p)
        return;
    if (p->mm)
        dnnl_primitive_destroy(p->mm);
    for (int t = 0; p->stream && t < p->nthr; t++)
        if (p->stream[t])
            dnnl_stream_destroy(p->stream[t]);
    for (int i = 0; p->mem && i < p->nthr * LG_MEMS; i++)
        if (p->mem[i])
            dnnl_memory_destroy(p->mem[i]);
    free(p->stream);
    free(p->mem);
    free(p);
}

/* The matmul [LG_FWD_ROWS, I] x [I, O] (+ bias [1, O]) with weights in the
 * layout oneDNN picks, planned for one thread. */
static int lg_pd_make(const lg_key *k, dnnl_primitive_desc_t *pd)
{
    const int64_t I = k->in, O = k->out;
    dnnl_dims_t sd = {LG_FWD_ROWS, I}, wd = {I, O}, dd = {LG_FWD_ROWS, O},
                bd = {1, O};
    dnnl_memory_desc_t smd, wmd, dmd, bmd;
    int rc = dgm__dnnl_check(
        dnnl_memory_desc_init_by_tag(&smd, 2, sd, dnnl_f32, dnnl_ab), "src md");
    if (rc == 0)
        rc = dgm__dnnl_check(dnnl_memory_desc_init_by_tag(&wmd, 2, wd, dnnl_f32,
                                                          dnnl_format_tag_any),
                             "weights md");
    if (rc == 0)
        rc = dgm__dnnl_check(
            dnnl_memory_desc_init_by_tag(&dmd, 2, dd, dnnl_f32, dnnl_ab),
            "dst md");
    if (rc == 0)
        rc = dgm__dnnl_check(
            dnnl_memory_desc_init_by_tag(&bmd, 2, bd, dnnl_f32, dnnl_ab),
            "bias md");
    dnnl_matmul_desc_t md;
    if (rc == 0)
        rc = dgm__dnnl_check(
            dnnl_matmul_desc_init(&md, &smd, &wmd, k->bias ? &bmd : NULL, &dmd),
            "matmul desc");
    dnnl_primitive_attr_t attr = NULL;
    if (rc == 0)
        rc = dgm__dnnl_check(dnnl_primitive_attr_create(&attr), "attr");
    if (rc == 0)
        rc = dgm__dnnl_check(dnnl_primitive_attr_set_scratchpad_mode(
                                 attr, dnnl_scratchpad_mode_user),
                             "scratchpad mode");
    if (rc == 0) {
        /* planned (work split, scratchpad size) for the one thread that
         * runs it: inside the forward's parallel region oneDNN runs a
         * primitive on the calling thread alone */
        const int n = omp_get_max_threads();
        omp_set_num_threads(1);
        rc = dgm__dnnl_check(
            dnnl_primitive_desc_create(pd, &md, attr, dgm__dnnl_engine(), NULL),
            "matmul");
        omp_set_num_threads(n);
    }
    if (attr)
        dnnl_primitive_attr_destroy(attr);
    return rc;
}

static int lg_prim_make(const lg_key *k, lg_prim **out)
{
    dnnl_primitive_desc_t pd = NULL;
    int rc = lg_pd_make(k, &pd);
    if (rc < 0)
        return rc;
    lg_prim *p = calloc(1, sizeof *p);
    if (!p) {
        dnnl_primitive_desc_destroy(pd);
        return dgm_error(DGM_ENOMEM, "linear_gelu: out of memory");
    }
    dgm__count_heap_alloc();
    p->nthr = k->nthr;
    const dnnl_memory_desc_t *q[LG_MEMS] = {
        dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0),
        dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0),
        dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 1),
        dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0),
        dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0)};
    dnnl_dims_t wd = {k->in, k->out};
    dnnl_memory_desc_t bmd;
    p->blocked = k->in % 16 == 0 && k->out % 64 == 0 &&
                 dnnl_memory_desc_init_by_tag(&bmd, 2, wd, dnnl_f32,
                                              dnnl_BA16a64b) == dnnl_success &&
                 dnnl_memory_desc_equal(&bmd, q[1]);
    if (p->blocked) {
        p->wei_bytes = dnnl_memory_desc_get_size(q[1]);
        p->scratch_bytes = dnnl_memory_desc_get_size(q[4]);
        p->stream = calloc((size_t)p->nthr, sizeof *p->stream);
        p->mem = calloc((size_t)(p->nthr * LG_MEMS), sizeof *p->mem);
        if (!p->stream || !p->mem)
            rc = dgm_error(DGM_ENOMEM, "linear_gelu: out of memory");
        else {
            dgm__count_heap_alloc();
            dgm__count_heap_alloc();
        }
        if (rc == 0)
            rc = dgm__dnnl_check(dnnl_primitive_create(&p->mm, pd), "matmul");
        for (int t = 0; rc == 0 && t < p->nthr; t++) {
            rc = dgm__dnnl_check(dnnl_stream_create(&p->stream[t],
                                                    dgm__dnnl_engine(),
                                                    dnnl_stream_default_flags),
                                 "stream");
            for (int i = 0; rc == 0 && i < LG_MEMS; i++)
                if (i != 2 || k->bias)
                    rc = dgm__dnnl_memory(&p->mem[t * LG_MEMS + i], q[i], NULL);
        }
    }
    dnnl_primitive_desc_destroy(pd);
    if (rc < 0) {
        lg_prim_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

/* y = gelu(z) over n elements in place (y holds z), and gelu'(z) into gz
 * when given: run on a block while it is still in cache. */
static void lg_pass(float *y, float *gz, int64_t n)
{
    if (gz) {
#pragma omp simd
        for (int64_t i = 0; i < n; i++) {
            float d;
            y[i] = gelu_grad_k(y[i], &d);
            gz[i] = d;
        }
    } else {
#pragma omp simd
        for (int64_t i = 0; i < n; i++)
            y[i] = gelu_k(y[i]);
    }
}

/* One row block [r0, r0 + m) through dnnl_sgemm on the calling thread
 * (oneDNN's GEMM runs serially inside a parallel region), the bias copied
 * into the block first and added to. */
static dnnl_status_t lg_block_sgemm(int64_t r0, int64_t m, int64_t I, int64_t O,
                                    float *y, const float *x, const float *w,
                                    const float *b)
{
    float *yb = y + r0 * O;
    if (b)
        for (int64_t i = 0; i < m; i++)
            memcpy(yb + i * O, b, sizeof(float) * (size_t)O);
    return dnnl_sgemm('N', 'T', m, O, I, 1.0f, x + r0 * I, I, w, I,
                      b ? 1.0f : 0.0f, yb, O);
}

/* The forward on oneDNN: the rows of x [N, I] in blocks of LG_FWD_ROWS,
 * in parallel, each the matmul of lg_prim (or dnnl_sgemm) then the GELU
 * pass. */
static int lg_forward_dnnl(dgm_graph *g, const int64_t dims[3], float *y,
                           float *gz, const float *x, const float *w,
                           const float *b)
{
    const int64_t N = dims[0], I = dims[1], O = dims[2];
    lg_key key;
    memset(&key, 0, sizeof key);
    memcpy(key.tag, "linear_gelu", 12);
    key.bias = b != NULL;
    key.nthr = omp_get_max_threads();
    key.in = I;
    key.out = O;
    lg_prim *p = dgm__dnnl_cache_get(&key, sizeof key);
    if (!p) {
        int rc = lg_prim_make(&key, &p);
        if (rc == 0)
            rc = dgm__dnnl_cache_put(&key, sizeof key, p, lg_prim_free);
        if (rc < 0)
            return rc;
    }
    const bool blocked = p->blocked;
    const int64_t nb = (N + LG_FWD_ROWS - 1) / LG_FWD_ROWS,
                  tail = blocked ? N % LG_FWD_ROWS : 0;
    const size_t sbytes = (p->scratch_bytes + 63) / 64 * 64,
                 wbytes = (p->wei_bytes + 63) / 64 * 64;
    char *wbuf = blocked ? dgm__arena_alloc(g, wbytes * (size_t)p->nthr) : NULL;
    char *scratch =
        sbytes ? dgm__arena_alloc(g, sbytes * (size_t)p->nthr) : NULL;
    /* the short last block's rows, zero-padded to a whole block */
    float *px = tail ? dgm__arena_alloc(g, sizeof(float) *
                                               (size_t)(LG_FWD_ROWS * (I + O)))
                     : NULL;
    if ((blocked && !wbuf) || (sbytes && !scratch) || (tail && !px))
        return dgm__fail_rc(g);
    if (tail) {
        memset(px, 0, sizeof(float) * (size_t)(LG_FWD_ROWS * I));
        memcpy(px, x + (N - tail) * I, sizeof(float) * (size_t)(tail * I));
    }
    int bad = dnnl_success;
#pragma omp parallel if (nb > 1 && N * O > PASS_PARALLEL_MIN)
    {
        const int t = omp_get_thread_num();
        dnnl_memory_t *mem = blocked ? p->mem + t * LG_MEMS : NULL;
        dnnl_status_t st = dnnl_success;
        bool packed = false;
#pragma omp for schedule(static)
        for (int64_t blk = 0; blk < nb; blk++) {
            const bool last = tail && blk == nb - 1;
            const int64_t r0 = blk * LG_FWD_ROWS,
                          m = N - r0 < LG_FWD_ROWS ? N - r0 : LG_FWD_ROWS;
            if (st != dnnl_success)
                continue;
            if (!blocked) {
                st = lg_block_sgemm(r0, m, I, O, y, x, w, b);
            } else {
                if (!packed) { /* this thread's copy of w, in wei's layout */
                    lg_pack((float *)(wbuf + wbytes * (size_t)t), w, I, O);
                    dnnl_memory_set_data_handle(mem[1],
                                                wbuf + wbytes * (size_t)t);
                    packed = true;
                }
                float *yb = last ? px + LG_FWD_ROWS * I : y + r0 * O;
                dnnl_memory_set_data_handle(mem[0],
                                            (void *)(last ? px : x + r0 * I));
                dnnl_memory_set_data_handle(mem[3], yb);
                dnnl_exec_arg_t args[5] = {{DNNL_ARG_SRC, mem[0]},
                                           {DNNL_ARG_WEIGHTS, mem[1]},
                                           {DNNL_ARG_DST, mem[3]}};
                int na = 3;
                if (sbytes) {
                    dnnl_memory_set_data_handle(mem[4],
                                                scratch + sbytes * (size_t)t);
                    args[na++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, mem[4]};
                }
                if (b) {
                    dnnl_memory_set_data_handle(mem[2], (void *)b);
                    args[na++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, mem[2]};
                }
                st = dnnl_primitive_execute(p->mm, p->stream[t], na, args);
                if (st == dnnl_success && last)
                    memcpy(y + r0 * O, yb, sizeof(float) * (size_t)(m * O));
            }
            if (st == dnnl_success)
                lg_pass(y + r0 * O, gz ? gz + r0 * O : NULL, m * O);
        }
        if (st != dnnl_success) {
#pragma omp atomic write
            bad = (int)st;
        }
    }
    return dgm__dnnl_check((dnnl_status_t)bad,
                           blocked ? "linear_gelu's matmul" : "sgemm");
}

dgm_var *dgm_linear_gelu(dgm_graph *g, dgm_var *x, dgm_var *w, dgm_var *b)
{
    if (!x || !w || !linear_fits(g, "linear_gelu", x, w, b))
        return NULL;
    int64_t dims[3];
    dgm_tensor *y = linear_prepare(g, &x, &w, &b, dims);
    if (!y)
        return NULL;
    const int64_t N = dims[0], O = dims[2];
    /* dgm__node's rule for whether the node will need a backward: only
     * then is gelu'(z) kept (all the backward needs) */
    const bool grad =
        dgm__grad_enabled(g) &&
        (x->requires_grad || w->requires_grad || (b && b->requires_grad));
    dgm_tensor *gz =
        grad ? dgm__alloc_uninit(g, DGM_F32, y->ndim, y->shape) : NULL;
    if (grad && !gz)
        return NULL;
    /* Row blocks of LG_FWD_ROWS, one GEMM each on one thread, so that z
     * is read back from cache, not memory (at the transformer's fc1,
     * [2048, 128] -> 512, a whole GEMM then a pass cost about twice the
     * GEMM alone). The blocks are fixed, so the result does not depend on
     * the thread count. */
    const float *xp = f32(dgm_value(x)), *wp = f32(dgm_value(w)),
                *bp = b ? f32(dgm_value(b)) : NULL;
    float *yp = f32(y), *gp = gz ? f32(gz) : NULL;
    if (dgm__use_dnnl(g) && N * O * dims[1] > DGM__GEMM_SMALL) {
        if (lg_forward_dnnl(g, dims, yp, gp, xp, wp, bp) < 0)
            return dgm__fail_null(g, dgm_last_code(), "linear_gelu: %s",
                                  dgm_last_error());
    } else {
        const int64_t nb = (N + LG_FWD_ROWS - 1) / LG_FWD_ROWS;
#pragma omp parallel for schedule(static) if (nb > 1 &&                        \
                                              N * O > PASS_PARALLEL_MIN)
        for (int64_t blk = 0; blk < nb; blk++) {
            const int64_t r0 = blk * LG_FWD_ROWS;
            const int64_t m = N - r0 < LG_FWD_ROWS ? N - r0 : LG_FWD_ROWS;
            gemm_desc d = {1, m, O, dims[1], 0, 1, 0, bp != NULL};
            gemm_ref(&d, yp + r0 * O, xp + r0 * dims[1], wp, bp);
            lg_pass(yp + r0 * O, gp ? gp + r0 * O : NULL, m * O);
        }
    }
    dgm_var *ins[3] = {x, w, b};
    dgm_var *out = dgm__node(g, &op_linear_gelu, y, ins, b ? 3 : 2);
    if (out) {
        memcpy(out->attr.i, dims, sizeof dims);
        out->saved[0] = gz;
    }
    return out;
}

/* ---- matmul ------------------------------------------------------------ */

/* attr.i: [0] batch, [1] M, [2] P, [3] K, [4] ta, [5] tb,
 * [6] a batched, [7] b batched */
static int mm_backward(dgm_graph *g, dgm_var *node)
{
    int64_t B = node->attr.i[0], M = node->attr.i[1], P = node->attr.i[2],
            K = node->attr.i[3];
    int ta = (int)node->attr.i[4], tb = (int)node->attr.i[5];
    bool ab = node->attr.i[6], bb = node->attr.i[7];
    dgm_var *a = node->in[0], *b = node->in[1];
    const float *dc = f32(node->grad), *av = f32(dgm_value(a)),
                *bv = f32(dgm_value(b));
    bool sa, sb; /* first contributions: the first GEMM into each stores */
    dgm_tensor *da = dgm__grad_in(g, node, 0, &sa);
    dgm_tensor *db = dgm__grad_in(g, node, 1, &sb);
    int rc = 0;
    /* Both sides batched (attention): one batched GEMM per gradient, not
     * B small ones, each a primitive call with its own thread team. */
    int64_t step = ab && bb ? B : 1;
    /* A side without batch dims is shared by every batch: its gradient is
     * the sum over batches, which accumulating batch by batch gives. */
    for (int64_t i = 0; i < B && rc == 0; i += step) {
        const float *dci = dc + i * M * P;
        const float *ai = av + (ab ? i * M * K : 0);
        const float *bi = bv + (bb ? i * K * P : 0);
        if (da) {
            float *dai = f32(da) + (ab ? i * M * K : 0);
            int acc = !sa || (!ab && i > 0);
            if (!ta) { /* dA [M,K] += dC [M,P] @ op(B)^T [P,K] */
                gemm_desc d = {step, M, K, P, 0, !tb, acc, 0};
                rc = gemm(g, &d, dai, dci, bi, NULL);
            } else { /* dA [K,M] += op(B) [K,P] @ dC^T [P,M] */
                gemm_desc d = {step, K, M, P, tb, 1, acc, 0};
                rc = gemm(g, &d, dai, bi, dci, NULL);
            }
        }
        if (db && rc == 0) {
            float *dbi = f32(db) + (bb ? i * K * P : 0);
            int acc = !sb || (!bb && i > 0);
            if (!tb) { /* dB [K,P] += op(A)^T [K,M] @ dC [M,P] */
                gemm_desc d = {step, K, P, M, !ta, 0, acc, 0};
                rc = gemm(g, &d, dbi, ai, dci, NULL);
            } else { /* dB [P,K] += dC^T [P,M] @ op(A) [M,K] */
                gemm_desc d = {step, P, K, M, 1, ta, acc, 0};
                rc = gemm(g, &d, dbi, dci, ai, NULL);
            }
        }
    }
    return rc;
}

static const dgm__op op_matmul = {DGM_OP_MATMUL, mm_backward};

dgm_var *dgm_matmul(dgm_graph *g, dgm_var *a, dgm_var *b, bool trans_a,
                    bool trans_b)
{
    if (!a || !b)
        return NULL;
    const dgm_tensor *at = dgm_value(a), *bt = dgm_value(b);
    char s1[96], s2[96];
    if (at->dtype != DGM_F32 || bt->dtype != DGM_F32)
        return dgm__fail_null(g, DGM_EDTYPE, "matmul: a %s, b %s: f32 only",
                              dgm_tensor_describe(at, s1, sizeof s1),
                              dgm_tensor_describe(bt, s2, sizeof s2));
    bool ok = at->ndim >= 2 && bt->ndim >= 2;
    int64_t M = 0, K = 0, K2 = 0, P = 0;
    if (ok) {
        M = at->shape[at->ndim - (trans_a ? 1 : 2)];
        K = at->shape[at->ndim - (trans_a ? 2 : 1)];
        K2 = bt->shape[bt->ndim - (trans_b ? 1 : 2)];
        P = bt->shape[bt->ndim - (trans_b ? 2 : 1)];
        ok = K == K2 && M > 0 && K > 0 && P > 0;
    }
    /* Batch dims: equal, or one side has none. */
    int abd = at->ndim - 2, bbd = bt->ndim - 2;
    if (ok && abd > 0 && bbd > 0)
        ok = abd == bbd && !memcmp(at->shape, bt->shape,
                                   sizeof(int64_t) * (size_t)abd);
    if (!ok)
        return dgm__fail_null(
            g, DGM_ESHAPE,
            "matmul: a %s%s and b %s%s do not multiply (batch dims must be "
            "equal or absent on one side)",
            dgm_tensor_describe(at, s1, sizeof s1), trans_a ? "^T" : "",
            dgm_tensor_describe(bt, s2, sizeof s2), trans_b ? "^T" : "");
    a = dense_input(g, a);
    b = dense_input(g, b);
    if (!a || !b)
        return NULL;
    const dgm_tensor *lead = abd > 0 ? at : bt;
    int nb = abd > 0 ? abd : bbd;
    int64_t B = 1, shape[DGM_MAX_DIMS];
    for (int i = 0; i < nb; i++)
        B *= (shape[i] = lead->shape[i]);
    shape[nb] = M;
    shape[nb + 1] = P;
    dgm_tensor *c = dgm__alloc_uninit(g, DGM_F32, nb + 2, shape);
    if (!c)
        return NULL;
    const float *av = f32(dgm_value(a)), *bv = f32(dgm_value(b));
    gemm_desc d = {1, M, P, K, trans_a, trans_b, 0, 0};
    int rc = 0;
    if (abd > 0 && bbd > 0) {
        d.batch = B;
        rc = gemm(g, &d, f32(c), av, bv, NULL);
    } else if (abd == 0 && bbd == 0) {
        rc = gemm(g, &d, f32(c), av, bv, NULL);
    } else if (abd > 0 && !trans_a) {
        /* [B, M, K] @ [K, P]: one GEMM with M' = B * M. */
        d.m = B * M;
        rc = gemm(g, &d, f32(c), av, bv, NULL);
    } else {
        for (int64_t i = 0; i < B && rc == 0; i++)
            rc = gemm(g, &d, f32(c) + i * M * P,
                      av + (abd > 0 ? i * M * K : 0),
                      bv + (bbd > 0 ? i * K * P : 0), NULL);
    }
    if (rc < 0)
        return dgm__fail_null(g, rc, "matmul: %s", dgm_last_error());
    dgm_var *ins[2] = {a, b};
    dgm_var *out = dgm__node(g, &op_matmul, c, ins, 2);
    if (out) {
        int64_t attr[8] = {B, M, P, K, trans_a, trans_b, abd > 0, bbd > 0};
        memcpy(out->attr.i, attr, sizeof attr);
    }
    return out;
}
