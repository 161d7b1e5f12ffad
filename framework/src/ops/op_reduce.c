/* op_reduce.c - sum and mean over an axis mask, and over everything. One C
 * loop serves both backends: oneDNN's reduction is `ref:any` on AVX2 in
 * 2.6 (see notes/onednn-2.6.md) and measured slower than this loop. */
#include <stdio.h>
#include <string.h>

#include "graph_internal.h"
#include "strided.h"

static int reduce_backward(dgm_graph *g, dgm_var *node);
static const dgm__op op_sum = {DGM_OP_SUM, reduce_backward};
static const dgm__op op_mean = {DGM_OP_MEAN, reduce_backward};
static const dgm__op op_sum_all = {DGM_OP_SUM_ALL, reduce_backward};
static const dgm__op op_mean_all = {DGM_OP_MEAN_ALL, reduce_backward};

/* Strides, over x's shape, of the reduced result laid out contiguously
 * with kept dims: 0 on reduced axes. */
static void reduced_strides(const dgm_tensor *x, uint32_t mask, int64_t *st)
{
    int64_t s = 1;
    for (int d = x->ndim - 1; d >= 0; d--) {
        if (mask >> d & 1u) {
            st[d] = 0;
        } else {
            st[d] = s;
            s *= x->shape[d];
        }
    }
}

/* Whole-tensor sums get a double accumulator: losses are sums of many
 * terms and float drift would show up in finite differences. The simd
 * reduction lets the compiler vectorise it (lanes of doubles); large
 * tensors also split across threads (small ones skip OpenMP, whose team
 * start costs about a microsecond). */
static double sum_contiguous(const float *xp, int64_t n)
{
    double s = 0.0;
    int64_t i;
    if (n > 65536) {
#pragma omp parallel for simd reduction(+ : s) schedule(static)
        for (i = 0; i < n; i++)
            s += xp[i];
    } else {
#pragma omp simd reduction(+ : s)
        for (i = 0; i < n; i++)
            s += xp[i];
    }
    return s;
}

static dgm_var *reduce(dgm_graph *g, const dgm__op *op, dgm_var *x,
                       uint32_t mask, bool keepdim, bool mean)
{
    if (!x)
        return NULL;
    const dgm_tensor *t = x->value;
    char b[128];
    if (t->dtype != DGM_F32)
        return dgm__fail_null(g, DGM_EDTYPE, "%s: x %s (f32 only)",
                              dgm__op_name(op),
                              dgm_tensor_describe(t, b, sizeof b));
    if (t->ndim < 32 && (mask >> t->ndim) != 0)
        return dgm__fail_null(g, DGM_EINVAL,
                              "%s: axis mask 0x%x names axes beyond x %s",
                              dgm__op_name(op), (unsigned)mask,
                              dgm_shape_str(t->ndim, t->shape, b, sizeof b));
    int64_t shape[DGM_MAX_DIMS] = {0}, count = 1;
    int nd = 0;
    for (int d = 0; d < t->ndim; d++) {
        if (mask >> d & 1u) {
            count *= t->shape[d];
            if (keepdim)
                shape[nd++] = 1;
        } else {
            shape[nd++] = t->shape[d];
        }
    }
    dgm_tensor *y = dgm__alloc(g, DGM_F32, nd, shape);
    if (!y)
        return NULL;
    float *yp = dgm_tensor_f32(y);
    if (nd == 0 && dgm_tensor_is_contiguous(t)) {
        double s = sum_contiguous(t->data, dgm_tensor_numel(t));
        yp[0] = (float)(mean && count ? s / (double)count : s);
    } else {
        dgm__sop s = {.o = yp, .x = {t->data, NULL, NULL}};
        reduced_strides(t, mask, s.so);
        memcpy(s.sx[0], t->strides, sizeof s.sx[0]);
        dgm__strided(DGM__S_ACC, t->ndim, t->shape, &s, 0.0f);
        if (mean && count != 1) {
            int64_t n = dgm_tensor_numel(y);
            float inv = count ? 1.0f / (float)count : 0.0f;
            for (int64_t i = 0; i < n; i++)
                yp[i] *= inv;
        }
    }
    dgm_var *v = dgm__node(g, op, y, &x, 1);
    if (v) {
        v->attr.i[0] = (int64_t)mask;
        v->attr.i[1] = mean ? count : 0; /* 0: plain sum */
    }
    return v;
}

static uint32_t all_axes(const dgm_var *x)
{
    return x ? (uint32_t)((1ull << x->value->ndim) - 1) : 0;
}

dgm_var *dgm_sum(dgm_graph *g, dgm_var *x, uint32_t axis_mask, bool keepdim)
{
    return reduce(g, &op_sum, x, axis_mask, keepdim, false);
}
dgm_var *dgm_mean(dgm_graph *g, dgm_var *x, uint32_t axis_mask, bool keepdim)
{
    return reduce(g, &op_mean, x, axis_mask, keepdim, true);
}
dgm_var *dgm_sum_all(dgm_graph *g, dgm_var *x)
{
    return reduce(g, &op_sum_all, x, all_axes(x), false, false);
}
dgm_var *dgm_mean_all(dgm_graph *g, dgm_var *x)
{
    return reduce(g, &op_mean_all, x, all_axes(x), false, true);
}

/* dx += dy broadcast back over the reduced axes (times 1/count for mean). */
static int reduce_backward(dgm_graph *g, dgm_var *node)
{
    dgm_var *x = node->in[0];
    bool store; /* first contribution: the whole-tensor case stores */
    dgm_tensor *gx = dgm__grad_in(g, node, 0, &store);
    if (!gx)
        return x->requires_grad ? DGM_ENOMEM : 0;
    uint32_t mask = (uint32_t)node->attr.i[0];
    int64_t count = node->attr.i[1];
    float scale = count ? 1.0f / (float)count : 1.0f;
    if (node->value->ndim == 0 && dgm_tensor_is_contiguous(gx)) {
        /* A whole-tensor sum: every gradient element gets the same value. */
        const float v = dgm_tensor_f32(node->grad)[0] * scale;
        float *o = gx->data;
        int64_t n = dgm_tensor_numel(gx), i;
        if (n > 65536) {
#pragma omp parallel for simd schedule(static)
            for (i = 0; i < n; i++)
                o[i] = store ? v : o[i] + v;
        } else {
#pragma omp simd
            for (i = 0; i < n; i++)
                o[i] = store ? v : o[i] + v;
        }
        return 0;
    }
    if (store)
        memset(gx->data, 0, dgm_tensor_nbytes(gx));
    dgm__sop s = {.o = gx->data, .x = {node->grad->data, NULL, NULL}};
    dgm_contiguous_strides(gx->ndim, gx->shape, s.so);
    reduced_strides(gx, mask, s.sx[0]);
    dgm__strided(DGM__S_ACC_SCALE, gx->ndim, gx->shape, &s, scale);
    return 0;
}
