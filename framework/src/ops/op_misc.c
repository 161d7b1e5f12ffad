/* op_misc.c - embedding lookup, inverted dropout and the sampling leaves
 * (randn, rand_uniform). Plain C: oneDNN has no primitive for these. */
#include <math.h>
#include <string.h>

#include "graph_internal.h"


static int64_t index_at(const dgm_tensor *idx, int64_t i)
{
    return idx->dtype == DGM_I32 ? ((const int32_t *)idx->data)[i]
                                 : ((const int64_t *)idx->data)[i];
}

/* ====================================================================== */
/* embedding                                                              */
/* ====================================================================== */

/* y [n, D] = w[idx[i], :] for i < n; every index already checked. */
static void embedding_fwd(float *y, const float *w, const dgm_tensor *idx,
                          int64_t n, int64_t d)
{
    for (int64_t i = 0; i < n; i++)
        memcpy(y + i * d, w + index_at(idx, i) * d, (size_t)d * sizeof *y);
}

/* dw[idx[i], :] += dy[i, :]; serial because indices repeat. dw has row
 * stride rs and element stride 1. */
static void embedding_bwd(float *dw, int64_t rs, const float *dy,
                          const dgm_tensor *idx, int64_t n, int64_t d)
{
    for (int64_t i = 0; i < n; i++) {
        float *row = dw + index_at(idx, i) * rs;
        const float *g = dy + i * d;
        for (int64_t j = 0; j < d; j++)
            row[j] += g[j];
    }
}

/* saved[0] = idx (contiguous). A scatter-add that may leave rows
 * untouched, so it stays on the zero-filled path (dgm__grad_buf); the
 * weight is a parameter in practice, which accumulates anyway. */
static int embedding_backward(dgm_graph *g, dgm_var *node)
{
    dgm_tensor *dw = dgm__grad_buf(g, node->in[0]);
    if (!dw)
        return 0;
    dgm_tensor *dy = dgm__contig(g, node->grad);
    if (!dy)
        return dgm__fail_rc(g);
    const dgm_tensor *idx = node->saved[0];
    const int64_t d = dw->shape[1];
    if (dw->strides[1] != 1 && d > 1)
        return dgm__fail(g, DGM_EUNSUPPORTED,
                         "embedding: weight gradient is not row-major");
    embedding_bwd(dgm_tensor_f32(dw), dw->strides[0], dgm_tensor_f32(dy), idx,
                  dgm_tensor_numel(idx), d);
    return 0;
}

static const dgm__op op_embedding = {DGM_OP_EMBEDDING, embedding_backward};

dgm_var *dgm_embedding(dgm_graph *g, dgm_var *weight, dgm_var *idx)
{
    if (!g || !weight || !idx)
        return NULL;
    char bw[128], bi[128];
    const dgm_tensor *wt = weight->value, *it0 = idx->value;
    dgm_tensor_describe(wt, bw, sizeof bw);
    dgm_tensor_describe(it0, bi, sizeof bi);
    if (wt->ndim != 2 || wt->dtype != DGM_F32)
        return dgm__fail_null(g, wt->ndim != 2 ? DGM_ESHAPE : DGM_EDTYPE,
                              "embedding: weight %s must be [V, D] f32 (idx "
                              "%s)",
                              bw, bi);
    if (it0->dtype != DGM_I32 && it0->dtype != DGM_I64)
        return dgm__fail_null(g, DGM_EDTYPE,
                              "embedding: idx %s must be i32 or i64 (weight "
                              "%s)",
                              bi, bw);
    if (it0->ndim + 1 > DGM_MAX_DIMS)
        return dgm__fail_null(g, DGM_ESHAPE,
                              "embedding: idx %s has too many dims for an "
                              "output of rank idx + 1 (max %d)",
                              bi, DGM_MAX_DIMS);
    const int64_t v = wt->shape[0], d = wt->shape[1];
    dgm_tensor *it = dgm__contig(g, idx->value);
    if (!it)
        return NULL;
    const int64_t n = dgm_tensor_numel(it);
    for (int64_t i = 0; i < n; i++) {
        const int64_t k = index_at(it, i);
        if (k < 0 || k >= v)
            return dgm__fail_null(g, DGM_EINVAL,
                                  "embedding: index %lld at position %lld of "
                                  "idx %s out of range [0, V = %lld) for "
                                  "weight %s",
                                  (long long)k, (long long)i, bi, (long long)v,
                                  bw);
    }
    dgm_tensor *w = dgm__contig(g, weight->value);
    if (!w)
        return NULL;
    int64_t shape[DGM_MAX_DIMS];
    memcpy(shape, it->shape, (size_t)it->ndim * sizeof *shape);
    shape[it->ndim] = d;
    dgm_tensor *y = dgm__alloc(g, DGM_F32, it->ndim + 1, shape);
    if (!y)
        return NULL;
    embedding_fwd(dgm_tensor_f32(y), dgm_tensor_f32(w), it, n, d);
    dgm_var *in[2] = {weight, idx};
    dgm_var *out = dgm__node(g, &op_embedding, y, in, 2);
    if (out)
        out->saved[0] = it;
    return out;
}

/* ====================================================================== */
/* dropout                                                                */
/* ====================================================================== */

/* saved[0] = mask: 0 or 1/(1-p), so dx += dy * mask. */
static int dropout_backward(dgm_graph *g, dgm_var *node)
{
    bool store; /* first contribution: = instead of += */
    dgm_tensor *dx = dgm__grad_in(g, node, 0, &store);
    if (!dx)
        return 0;
    dgm_tensor *dy = dgm__contig(g, node->grad);
    if (!dy)
        return dgm__fail_rc(g);
    float *d = dgm_tensor_f32(dx);
    const float *gy = dgm_tensor_f32(dy), *m = dgm_tensor_f32(node->saved[0]);
    const int64_t n = dgm_tensor_numel(dx);
    for (int64_t i = 0; i < n; i++)
        d[i] = store ? gy[i] * m[i] : d[i] + gy[i] * m[i];
    return 0;
}

static const dgm__op op_dropout = {DGM_OP_DROPOUT, dropout_backward};

/* A shard of a data-parallel batch (dgm__graph_set_shard) draws what one
 * process would draw for the whole global batch and keeps its rows: the
 * u64 draws of the rows before its own and after them, for n values of
 * `per` u64 draws each (normal: 2, uniform: 1). */
static void shard_skips(const dgm_graph *g, int ndim, const int64_t *shape,
                        int64_t n, int64_t per, int64_t *before, int64_t *after)
{
    int64_t off, total;
    *before = *after = 0;
    if (ndim < 1 || shape[0] < 1 ||
        !dgm__graph_shard(g, shape[0], &off, &total))
        return;
    int64_t row = n / shape[0];
    *before = off * row * per;
    *after = (total - off - shape[0]) * row * per;
}

static void skip_u64(dgm_rng *r, int64_t k)
{
    for (int64_t i = 0; i < k; i++)
        (void)dgm_rng_u64(r);
}

dgm_var *dgm_dropout(dgm_graph *g, dgm_var *x, float p)
{
    if (!g || !x)
        return NULL;
    char bx[128];
    if (!(p >= 0.0f && p < 1.0f))
        return dgm__fail_null(
            g, DGM_ERANGE, "dropout: p = %g outside [0, 1) (x %s)", (double)p,
            dgm_tensor_describe(x->value, bx, sizeof bx));
    if (x->value->dtype != DGM_F32)
        return dgm__fail_null(g, DGM_EDTYPE, "dropout: x %s must be f32",
                              dgm_tensor_describe(x->value, bx, sizeof bx));
    if (!dgm_graph_training(g) || p == 0.0f)
        return x;
    dgm_rng *r = dgm_graph_rng(g);
    if (!r)
        return dgm__fail_null(g, DGM_ESTATE,
                              "dropout: the graph has no RNG "
                              "(dgm_graph_set_rng) (x %s)",
                              dgm_tensor_describe(x->value, bx, sizeof bx));
    dgm_tensor *xt = dgm__contig(g, x->value);
    if (!xt)
        return NULL;
    dgm_tensor *y = dgm__alloc(g, DGM_F32, xt->ndim, xt->shape);
    dgm_tensor *mask = dgm__alloc(g, DGM_F32, xt->ndim, xt->shape);
    if (!y || !mask)
        return NULL;
    const float scale = 1.0f / (1.0f - p);
    const int64_t n = dgm_tensor_numel(xt);
    float *yp = dgm_tensor_f32(y), *mp = dgm_tensor_f32(mask);
    const float *xp = dgm_tensor_f32(xt);
    int64_t skip_before = 0, skip_after = 0;
    shard_skips(g, xt->ndim, xt->shape, n, 1, &skip_before, &skip_after);
    skip_u64(r, skip_before);
    for (int64_t i = 0; i < n; i++) {
        mp[i] = dgm_rng_uniform(r) < p ? 0.0f : scale;
        yp[i] = xp[i] * mp[i];
    }
    skip_u64(r, skip_after);
    dgm_var *in[1] = {x};
    dgm_var *out = dgm__node(g, &op_dropout, y, in, 1);
    if (out)
        out->saved[0] = mask;
    return out;
}

/* ====================================================================== */
/* sampling leaves                                                        */
/* ====================================================================== */

static const dgm__op op_randn = {DGM_OP_RANDN, NULL};
static const dgm__op op_rand_uniform = {DGM_OP_RAND_UNIFORM, NULL};

/* A constant f32 leaf of `shape` after checking the shape and the RNG. */
static dgm_tensor *sample_tensor(dgm_graph *g, const char *op, int ndim,
                                 const int64_t *shape, dgm_rng **r)
{
    char bs[160] = "?";
    if (ndim < 0 || ndim > DGM_MAX_DIMS || (ndim > 0 && !shape))
        return dgm__fail_null(g, DGM_EINVAL, "%s: rank %d outside [0, %d]", op,
                              ndim, DGM_MAX_DIMS);
    dgm_shape_str(ndim, shape, bs, sizeof bs);
    for (int k = 0; k < ndim; k++)
        if (shape[k] < 0)
            return dgm__fail_null(g, DGM_ESHAPE, "%s: negative size in %s", op,
                                  bs);
    *r = dgm_graph_rng(g);
    if (!*r)
        return dgm__fail_null(g, DGM_ESTATE,
                              "%s: the graph has no RNG (dgm_graph_set_rng) "
                              "for shape %s",
                              op, bs);
    return dgm__alloc(g, DGM_F32, ndim, shape);
}

dgm_var *dgm_randn(dgm_graph *g, int ndim, const int64_t *shape)
{
    if (!g)
        return NULL;
    dgm_rng *r = NULL;
    dgm_tensor *t = sample_tensor(g, "randn", ndim, shape, &r);
    if (!t)
        return NULL;
    float *p = dgm_tensor_f32(t);
    const int64_t n = dgm_tensor_numel(t);
    int64_t skip_before = 0, skip_after = 0;
    shard_skips(g, ndim, shape, n, 2, &skip_before, &skip_after);
    skip_u64(r, skip_before);
    for (int64_t i = 0; i < n; i++)
        p[i] = dgm_rng_normal(r);
    skip_u64(r, skip_after);
    return dgm__node(g, &op_randn, t, NULL, 0);
}

dgm_var *dgm_rand_uniform(dgm_graph *g, int ndim, const int64_t *shape,
                          float lo, float hi)
{
    if (!g)
        return NULL;
    if (!(lo <= hi) || !isfinite(lo) || !isfinite(hi))
        return dgm__fail_null(g, DGM_ERANGE,
                              "rand_uniform: need finite lo <= hi, got [%g, "
                              "%g)",
                              (double)lo, (double)hi);
    dgm_rng *r = NULL;
    dgm_tensor *t = sample_tensor(g, "rand_uniform", ndim, shape, &r);
    if (!t)
        return NULL;
    float *p = dgm_tensor_f32(t);
    const int64_t n = dgm_tensor_numel(t);
    const float w = hi - lo;
    int64_t skip_before = 0, skip_after = 0;
    shard_skips(g, ndim, shape, n, 1, &skip_before, &skip_after);
    skip_u64(r, skip_before);
    for (int64_t i = 0; i < n; i++) {
        float u = lo + w * dgm_rng_uniform(r);
        p[i] = u < hi ? u : nextafterf(hi, lo); /* rounding must not reach hi */
    }
    skip_u64(r, skip_after);
    return dgm__node(g, &op_rand_uniform, t, NULL, 0);
}
