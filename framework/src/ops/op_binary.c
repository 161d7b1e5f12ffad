/* op_binary.c - add, sub, mul, div with NumPy broadcasting. Inputs of any
 * strides; backward sums the gradient over the broadcast axes. The general
 * kernels are the strided C loops of strided.h on both backends: oneDNN's
 * binary primitive was no faster here for these memory-bound sizes and
 * would need a contiguous copy of strided inputs plus a separate reduction
 * backward. The transformer's cases (residual adds of one shape, a bias or
 * positional table over the leading axes, a [T, T] mask over [N, H, T, T])
 * take a fast path: contiguous operands, flat vectorised loops, OpenMP
 * above PAR_MIN elements, both input gradients written in one pass over
 * the output gradient and a broadcast operand's gradient summed per column
 * in the general path's order (row after row, in float), so that the
 * results are the general path's to the bit, whatever the thread count. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph_internal.h"
#include "strided.h"

enum { BIN_ADD, BIN_SUB, BIN_MUL, BIN_DIV };

/* Below this many output elements one thread does the work: a parallel
 * region costs a few microseconds. */
#define PAR_MIN 32768
/* Elements per parallel chunk of the same-shape loops (16 KiB: the two
 * gradients' loops re-read dy from L1). */
#define CHUNK 4096
/* Fewest columns per thread for a broadcast operand's gradient. */
#define COLS 64

/* DGM_BINARY_GENERAL=1 sends every call to the general strided loops, for
 * timing the fast path against them in one process and for the tests
 * that compare the two (read at each call, so a program may flip it). */
static bool general_only(void)
{
    const char *e = getenv("DGM_BINARY_GENERAL");
    return e && *e && strcmp(e, "0");
}

/* The fast path's layout: y is [outer, inner]; an operand is either full
 * (y's shape, contiguous) or a suffix broadcast (its elements are y's last
 * `inner`, repeated over the `outer` rows; a bias, a [T, T] mask, a
 * [1, ...] table). Both full: inner = numel, outer = 1. */
typedef struct bin_fast {
    int64_t outer, inner;
    bool bc[2]; /* operand i is the broadcast one */
} bin_fast;

/* Does t (contiguous) broadcast to y's shape as a suffix: 1 (or absent)
 * on leading axes, equal to y on the rest? *inner: the suffix's size. */
static bool suffix_of(const dgm_tensor *t, int nd, const int64_t *shape,
                      int64_t *inner)
{
    if (!dgm_tensor_is_contiguous(t))
        return false;
    const int off = nd - t->ndim;
    int d0 = nd; /* first axis from which t matches y */
    while (d0 > 0) {
        const int td = d0 - 1 - off;
        const int64_t e = td >= 0 ? t->shape[td] : 1;
        if (e != shape[d0 - 1])
            break;
        d0--;
    }
    int64_t in = 1;
    for (int d = 0; d < nd; d++) {
        const int td = d - off;
        const int64_t e = td >= 0 ? t->shape[td] : 1;
        if (d < d0 && e != 1)
            return false;
        if (d >= d0)
            in *= shape[d];
    }
    *inner = in;
    return true;
}

/* Fill *f if the fast path applies to a (op) b -> y [shape]. A broadcast
 * operand needs rows of at least 16 elements (a vector); a scalar or a
 * [N, 1] column operand stays on the general path. */
static bool fast_plan(const dgm_tensor *ta, const dgm_tensor *tb, int nd,
                      const int64_t *shape, bin_fast *f)
{
    int64_t n = 1, ia, ib;
    for (int d = 0; d < nd; d++)
        n *= shape[d];
    if (n == 0 || !suffix_of(ta, nd, shape, &ia) ||
        !suffix_of(tb, nd, shape, &ib))
        return false;
    if (ia == n && ib == n) {
        *f = (bin_fast){.outer = 1, .inner = n};
        return true;
    }
    if (ia != n && ib != n)
        return false;
    const int64_t in = ia == n ? ib : ia;
    if (in < 16)
        return false;
    *f = (bin_fast){.outer = n / in, .inner = in, .bc = {ia != n, ib != n}};
    return true;
}

/* y = a (op) b over n elements; `a` or `b` may be the broadcast row. */
static void fwd_seg(int kind, float *restrict y, const float *restrict a,
                    const float *restrict b, int64_t n)
{
    switch (kind) {
    case BIN_ADD:
#pragma omp simd
        for (int64_t i = 0; i < n; i++)
            y[i] = a[i] + b[i];
        break;
    case BIN_SUB:
#pragma omp simd
        for (int64_t i = 0; i < n; i++)
            y[i] = a[i] - b[i];
        break;
    case BIN_MUL:
#pragma omp simd
        for (int64_t i = 0; i < n; i++)
            y[i] = a[i] * b[i];
        break;
    default:
#pragma omp simd
        for (int64_t i = 0; i < n; i++)
            y[i] = a[i] / b[i];
        break;
    }
}

static void fast_forward(int kind, const bin_fast *f, float *y, const float *a,
                         const float *b)
{
    const int64_t n = f->outer * f->inner;
    if (f->outer == 1) {
        const int64_t nc = (n + CHUNK - 1) / CHUNK;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
        for (int64_t c = 0; c < nc; c++) {
            const int64_t lo = c * CHUNK, m = n - lo < CHUNK ? n - lo : CHUNK;
            fwd_seg(kind, y + lo, a + lo, b + lo, m);
        }
        return;
    }
    const int64_t in = f->inner;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
    for (int64_t r = 0; r < f->outer; r++)
        fwd_seg(kind, y + r * in, f->bc[0] ? a : a + r * in,
                f->bc[1] ? b : b + r * in, in);
}

static int binary_backward(dgm_graph *g, dgm_var *node);

static const dgm__op op_add = {DGM_OP_ADD, binary_backward};
static const dgm__op op_sub = {DGM_OP_SUB, binary_backward};
static const dgm__op op_mul = {DGM_OP_MUL, binary_backward};
static const dgm__op op_div = {DGM_OP_DIV, binary_backward};

static void contig_strides(const dgm_tensor *t, int64_t *st)
{
    dgm_contiguous_strides(t->ndim, t->shape, st);
}

/* y = a (op) b, with y contiguous [broadcast shape]. */
static dgm_var *binary(dgm_graph *g, int kind, const dgm__op *op, dgm_var *a,
                       dgm_var *b)
{
    if (!a || !b)
        return NULL;
    const dgm_tensor *ta = a->value, *tb = b->value;
    char sa[128], sb[128];
    if (ta->dtype != DGM_F32 || tb->dtype != DGM_F32)
        return dgm__fail_null(g, DGM_EDTYPE, "%s: %s and %s (f32 only)",
                              dgm__op_name(op),
                              dgm_tensor_describe(ta, sa, sizeof sa),
                              dgm_tensor_describe(tb, sb, sizeof sb));
    int nd = ta->ndim > tb->ndim ? ta->ndim : tb->ndim;
    int64_t shape[DGM_MAX_DIMS];
    for (int d = 0; d < nd; d++) {
        int da = d - (nd - ta->ndim), db = d - (nd - tb->ndim);
        int64_t ea = da >= 0 ? ta->shape[da] : 1;
        int64_t eb = db >= 0 ? tb->shape[db] : 1;
        if (ea != eb && ea != 1 && eb != 1)
            return dgm__fail_null(
                g, DGM_ESHAPE, "%s: shapes %s and %s do not broadcast",
                dgm__op_name(op),
                dgm_shape_str(ta->ndim, ta->shape, sa, sizeof sa),
                dgm_shape_str(tb->ndim, tb->shape, sb, sizeof sb));
        shape[d] = ea == 1 ? eb : ea;
    }
    dgm_tensor *y = dgm__alloc_uninit(g, DGM_F32, nd, shape);
    if (!y)
        return NULL;
    bin_fast f;
    if (!general_only() && fast_plan(ta, tb, nd, shape, &f)) {
        fast_forward(kind, &f, y->data, ta->data, tb->data);
    } else {
        dgm__sop s = {.o = y->data, .x = {ta->data, tb->data, NULL}};
        contig_strides(y, s.so);
        dgm__bcast_strides(ta, nd, shape, s.sx[0]);
        dgm__bcast_strides(tb, nd, shape, s.sx[1]);
        static const dgm__skind fk[] = {DGM__S_ADD, DGM__S_SUB, DGM__S_MUL,
                                        DGM__S_DIV};
        dgm__strided(fk[kind], nd, shape, &s, 0.0f);
    }
    dgm_var *ins[2] = {a, b};
    dgm_var *v = dgm__node(g, op, y, ins, 2);
    if (v)
        v->attr.i[0] = kind;
    return v;
}

dgm_var *dgm_add(dgm_graph *g, dgm_var *a, dgm_var *b)
{
    return binary(g, BIN_ADD, &op_add, a, b);
}
dgm_var *dgm_sub(dgm_graph *g, dgm_var *a, dgm_var *b)
{
    return binary(g, BIN_SUB, &op_sub, a, b);
}
dgm_var *dgm_mul(dgm_graph *g, dgm_var *a, dgm_var *b)
{
    return binary(g, BIN_MUL, &op_mul, a, b);
}
dgm_var *dgm_div(dgm_graph *g, dgm_var *a, dgm_var *b)
{
    return binary(g, BIN_DIV, &op_div, a, b);
}

/* Accumulate into the gradient of one input: the loop runs over the output
 * shape with the input's gradient broadcast (stride 0 where it was), which
 * sums over the broadcast axes. store: gx is uninitialised and this is
 * its first contribution: a gradient of dy's size is written with the
 * storing kind `sk`; a broadcast one is zeroed, then summed into. */
static void acc_grad(dgm__skind k, dgm__skind sk, bool store,
                     const dgm_tensor *dy, dgm_tensor *gx, const dgm_tensor *x1,
                     const dgm_tensor *x2)
{
    const int nd = dy->ndim;
    if (store && dgm_tensor_numel(gx) != dgm_tensor_numel(dy))
        memset(gx->data, 0, dgm_tensor_nbytes(gx));
    else if (store)
        k = sk;
    dgm__sop s = {.o = gx->data,
                  .x = {dy->data, x1 ? x1->data : NULL, x2 ? x2->data : NULL}};
    dgm__bcast_strides(gx, nd, dy->shape, s.so);
    contig_strides(dy, s.sx[0]);
    if (x1)
        dgm__bcast_strides(x1, nd, dy->shape, s.sx[1]);
    if (x2)
        dgm__bcast_strides(x2, nd, dy->shape, s.sx[2]);
    dgm__strided(k, nd, dy->shape, &s, 0.0f);
}

/* ---- fast backward ---------------------------------------------------- */

/* The gradient of operand `w` (0: a, 1: b) over n elements where it is
 * full: gx = (store) or += (else) d(a op b)/dw * dy, with the general
 * path's expressions (strided.h's kinds) so the results are the same bits.
 * a, b: the values (either may be a broadcast row; unused ones NULL). */
static void grad_seg(int kind, int w, bool store, float *restrict gx,
                     const float *restrict dy, const float *restrict a,
                     const float *restrict b, int64_t n)
{
    switch (kind * 2 + w) {
    case BIN_ADD * 2:
    case BIN_ADD * 2 + 1:
    case BIN_SUB * 2:
        if (store)
            memcpy(gx, dy, (size_t)n * sizeof *gx);
        else
#pragma omp simd
            for (int64_t i = 0; i < n; i++)
                gx[i] += dy[i];
        break;
    case BIN_SUB * 2 + 1:
        if (store)
#pragma omp simd
            for (int64_t i = 0; i < n; i++)
                gx[i] = -dy[i];
        else
#pragma omp simd
            for (int64_t i = 0; i < n; i++)
                gx[i] -= dy[i];
        break;
    case BIN_MUL * 2:
    case BIN_MUL * 2 + 1: {
        const float *x = w ? a : b;
        if (store)
#pragma omp simd
            for (int64_t i = 0; i < n; i++)
                gx[i] = dy[i] * x[i];
        else
#pragma omp simd
            for (int64_t i = 0; i < n; i++)
                gx[i] += dy[i] * x[i];
        break;
    }
    case BIN_DIV * 2:
        if (store)
#pragma omp simd
            for (int64_t i = 0; i < n; i++)
                gx[i] = dy[i] / b[i];
        else
#pragma omp simd
            for (int64_t i = 0; i < n; i++)
                gx[i] += dy[i] / b[i];
        break;
    default: /* BIN_DIV, b */
        if (store)
#pragma omp simd
            for (int64_t i = 0; i < n; i++)
                gx[i] = -(dy[i] * a[i] / (b[i] * b[i]));
        else
#pragma omp simd
            for (int64_t i = 0; i < n; i++)
                gx[i] -= dy[i] * a[i] / (b[i] * b[i]);
        break;
    }
}

/* The gradient of the broadcast operand w, columns [j0, j1) of its
 * `inner`: summed over the `outer` rows of dy in row order, in float, as
 * the general path does (it zero-fills a first contribution, then adds
 * row after row). a, b: full values, the broadcast one indexed by column. */
static void grad_cols(int kind, int w, bool store, float *restrict gx,
                      const float *restrict dy, const float *a, const float *b,
                      int64_t outer, int64_t inner, int64_t j0, int64_t j1)
{
    if (store)
        for (int64_t j = j0; j < j1; j++)
            gx[j] = 0.0f;
    const bool neg = (kind == BIN_SUB || kind == BIN_DIV) && w == 1;
    for (int64_t r = 0; r < outer; r++) {
        const float *q = dy + r * inner;
        const float *ar = w == 0 ? a : a + r * inner;
        const float *br = w == 1 ? b : b + r * inner;
        switch (kind) {
        case BIN_ADD:
        case BIN_SUB:
            if (neg)
#pragma omp simd
                for (int64_t j = j0; j < j1; j++)
                    gx[j] -= q[j];
            else
#pragma omp simd
                for (int64_t j = j0; j < j1; j++)
                    gx[j] += q[j];
            break;
        case BIN_MUL: {
            const float *x = w ? ar : br;
#pragma omp simd
            for (int64_t j = j0; j < j1; j++)
                gx[j] += q[j] * x[j];
            break;
        }
        default:
            if (neg)
#pragma omp simd
                for (int64_t j = j0; j < j1; j++)
                    gx[j] -= q[j] * ar[j] / (br[j] * br[j]);
            else
#pragma omp simd
                for (int64_t j = j0; j < j1; j++)
                    gx[j] += q[j] / br[j];
            break;
        }
    }
}

/* Both gradients in one pass over dy: chunk by chunk (or row by row), the
 * second operand's loop re-reads dy from L1. g[i]/st[i]: operand i's
 * gradient (NULL: none) and whether this is its first contribution. */
static void fast_backward(int kind, const bin_fast *f, const float *dy,
                          const float *a, const float *b, float *g[2],
                          const bool st[2])
{
    const int64_t n = f->outer * f->inner, in = f->inner;
    if (f->outer == 1) {
        const int64_t nc = (n + CHUNK - 1) / CHUNK;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
        for (int64_t c = 0; c < nc; c++) {
            const int64_t lo = c * CHUNK, m = n - lo < CHUNK ? n - lo : CHUNK;
            for (int w = 0; w < 2; w++)
                if (g[w])
                    grad_seg(kind, w, st[w], g[w] + lo, dy + lo, a + lo, b + lo,
                             m);
        }
        return;
    }
    const int bw = f->bc[0] ? 0 : 1, fw = 1 - bw; /* broadcast, full */
    if (g[fw]) {
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
        for (int64_t r = 0; r < f->outer; r++)
            grad_seg(kind, fw, st[fw], g[fw] + r * in, dy + r * in,
                     bw == 0 ? a : a + r * in, bw == 1 ? b : b + r * in, in);
    }
    if (g[bw]) {
        /* Columns split among the threads, one contiguous span each, read
         * row after row (narrow spans stride across dy: 1.5x slower on the
         * [T, T] mask); each column's sum keeps its order, so the thread
         * count never changes a bit. */
        const int nt = n >= PAR_MIN ? omp_get_max_threads() : 1;
        int64_t w = (in + nt - 1) / nt;
        w = w < COLS ? COLS : (w + 15) / 16 * 16;
        const int64_t nb = (in + w - 1) / w;
#pragma omp parallel for schedule(static) if (nb > 1)
        for (int64_t c = 0; c < nb; c++) {
            const int64_t j1 = (c + 1) * w < in ? (c + 1) * w : in;
            grad_cols(kind, bw, st[bw], g[bw], dy, a, b, f->outer, in, c * w,
                      j1);
        }
    }
}

static int binary_backward(dgm_graph *g, dgm_var *node)
{
    dgm_var *a = node->in[0], *b = node->in[1];
    const dgm_tensor *dy = node->grad;
    /* An add's gradient is dy itself: one input that nothing else reads
     * (a residual branch, the attention scores under a mask) takes dy's
     * storage instead of a copy; the other is written as usual. */
    int alias = -1;
    if (node->attr.i[0] == BIN_ADD) {
        const int64_t n = dgm_tensor_numel(dy);
        for (int i = 0; i < 2 && alias < 0; i++)
            if (dgm_tensor_numel(node->in[i]->value) == n &&
                dgm__grad_alias_in(g, node, i))
                alias = i;
    }
    bool sa = false, sb = false;
    dgm_tensor *ga = alias == 0 ? NULL : dgm__grad_in(g, node, 0, &sa);
    dgm_tensor *gb = alias == 1 ? NULL : dgm__grad_in(g, node, 1, &sb);
    if ((alias != 0 && a->requires_grad && !ga) ||
        (alias != 1 && b->requires_grad && !gb))
        return DGM_ENOMEM;
    /* The fast path wants every tensor it touches contiguous; a gradient
     * buffer is, unless it is a parameter's or an alias of another's. */
    bin_fast f;
    if (!general_only() && dgm_tensor_is_contiguous(dy) &&
        (!ga || dgm_tensor_is_contiguous(ga)) &&
        (!gb || dgm_tensor_is_contiguous(gb)) &&
        fast_plan(a->value, b->value, dy->ndim, dy->shape, &f)) {
        float *gp[2] = {ga ? ga->data : NULL, gb ? gb->data : NULL};
        const bool st[2] = {sa, sb};
        fast_backward(node->attr.i[0], &f, dy->data, a->value->data,
                      b->value->data, gp, st);
        return 0;
    }
    switch (node->attr.i[0]) {
    case BIN_ADD:
        if (ga)
            acc_grad(DGM__S_ACC, DGM__S_COPY, sa, dy, ga, NULL, NULL);
        if (gb)
            acc_grad(DGM__S_ACC, DGM__S_COPY, sb, dy, gb, NULL, NULL);
        break;
    case BIN_SUB:
        if (ga)
            acc_grad(DGM__S_ACC, DGM__S_COPY, sa, dy, ga, NULL, NULL);
        if (gb)
            acc_grad(DGM__S_ACC_NEG, DGM__S_NEG, sb, dy, gb, NULL, NULL);
        break;
    case BIN_MUL:
        if (ga)
            acc_grad(DGM__S_ACC_MUL, DGM__S_MUL, sa, dy, ga, b->value, NULL);
        if (gb)
            acc_grad(DGM__S_ACC_MUL, DGM__S_MUL, sb, dy, gb, a->value, NULL);
        break;
    case BIN_DIV:
        if (ga)
            acc_grad(DGM__S_ACC_DIV, DGM__S_DIV, sa, dy, ga, b->value, NULL);
        if (gb)
            acc_grad(DGM__S_ACC_DIVB, DGM__S_DIVB, sb, dy, gb, a->value,
                     b->value);
        break;
    }
    return 0;
}
