/* op_shape.c - shape ops: reshape, flatten, permute, transpose, contiguous,
 * concat and slice. Views share the input's storage (no copy); their
 * backward stores (first contribution) or adds the output gradient into
 * the matching strided elements of the input's gradient, or, for reshape
 * and contiguous, makes it the input's gradient. Shape ops take any dtype;
 * gradients are f32. */
#include <stdio.h>
#include <string.h>

#include "graph_internal.h"
#include "tensor_internal.h"

/* ====================================================================== */
/* Strided helpers                                                        */
/* ====================================================================== */

static bool is_dense(const dgm_tensor *t)
{
    int64_t expect = 1;
    for (int k = t->ndim - 1; k >= 0; k--) {
        if (t->shape[k] != 1 && t->strides[k] != expect)
            return false;
        expect *= t->shape[k];
    }
    return true;
}

/* How strided_write writes dst. */
enum { SW_ADD, SW_STORE, SW_ZERO };

/* dst += src (SW_ADD), dst = src (SW_STORE) or dst = 0 (SW_ZERO, src
 * unread), elementwise over equal shapes with any strides (f32). The
 * innermost dimension is the inner loop; the rest is an odometer. */
static void strided_write(dgm_tensor *dst, const dgm_tensor *src, int mode)
{
    const int nd = dst->ndim;
    int64_t n = 1;
    for (int k = 0; k < nd; k++)
        n *= dst->shape[k];
    if (n == 0)
        return;
    float *d = dgm_tensor_f32(dst);
    const float *s = mode == SW_ZERO ? NULL : dgm_tensor_f32(src);
    /* Both row-major (a slab of a slice, a reshape): one flat loop, not a
     * row of the innermost size (often the head size, 32) at a time. */
    if (is_dense(dst) && (!s || is_dense(src))) {
        if (mode == SW_ZERO)
            memset(d, 0, (size_t)n * sizeof *d);
        else if (mode == SW_STORE)
            memcpy(d, s, (size_t)n * sizeof *d);
        else
            for (int64_t i = 0; i < n; i++)
                d[i] += s[i];
        return;
    }
    if (nd == 0) {
        d[0] = mode == SW_ADD ? d[0] + s[0] : s ? s[0] : 0.0f;
        return;
    }
    const int64_t inner = dst->shape[nd - 1];
    const int64_t ds = dst->strides[nd - 1], ss = s ? src->strides[nd - 1] : 0;
    const int64_t outer = n / inner;
    int64_t idx[DGM_MAX_DIMS] = {0};
    for (int64_t o = 0; o < outer; o++) {
        int64_t doff = 0, soff = 0;
        for (int k = 0; k < nd - 1; k++) {
            doff += idx[k] * dst->strides[k];
            soff += s ? idx[k] * src->strides[k] : 0;
        }
        float *dp = d + doff;
        const float *sp = s ? s + soff : NULL;
        if (mode == SW_ZERO) {
            for (int64_t i = 0; i < inner; i++)
                dp[i * ds] = 0.0f;
        } else if (mode == SW_STORE) {
            if (ds == 1 && ss == 1)
                memcpy(dp, sp, (size_t)inner * sizeof *dp);
            else
                for (int64_t i = 0; i < inner; i++)
                    dp[i * ds] = sp[i * ss];
        } else if (ds == 1 && ss == 1) {
            for (int64_t i = 0; i < inner; i++)
                dp[i] += sp[i];
        } else {
            for (int64_t i = 0; i < inner; i++)
                dp[i * ds] += sp[i * ss];
        }
        for (int k = nd - 2; k >= 0; k--) {
            if (++idx[k] < dst->shape[k])
                break;
            idx[k] = 0;
        }
    }
}

static int norm_axis(int axis, int ndim)
{
    return axis < 0 ? axis + ndim : axis;
}

/* The gradient of a node as a contiguous tensor (the graph allocates them
 * contiguous; this only guards the assumption). */
static dgm_tensor *node_grad(dgm_graph *g, dgm_var *node)
{
    dgm_tensor *dy = node->grad;
    if (is_dense(dy))
        return dy;
    dgm_tensor *c = dgm__alloc_uninit(g, DGM_F32, dy->ndim, dy->shape);
    if (c)
        strided_write(c, dy, SW_STORE);
    return c;
}

#define SHAPE_FAIL_RC(g)                                                       \
    (dgm_graph_status(g) ? dgm_graph_status(g) : DGM_ENOMEM)

/* ====================================================================== */
/* reshape, flatten                                                       */
/* ====================================================================== */

/* Backward of reshape, flatten and contiguous: dx (x's shape, any strides)
 * += dy read in row-major order. Gradient buffers are contiguous, so when
 * nothing else reads x, dx is dy itself (dgm__grad_alias): no copy. */
static int reshape_backward(dgm_graph *g, dgm_var *node)
{
    if (dgm__grad_alias(g, node))
        return 0;
    bool store;
    dgm_tensor *dx = dgm__grad_in(g, node, 0, &store);
    if (!dx)
        return 0;
    dgm_tensor *dy = node_grad(g, node);
    if (!dy)
        return SHAPE_FAIL_RC(g);
    dgm_tensor v = *dy; /* dy's storage seen with x's shape */
    v.ndim = dx->ndim;
    memcpy(v.shape, dx->shape, sizeof v.shape);
    dgm_contiguous_strides(v.ndim, v.shape, v.strides);
    strided_write(dx, &v, store ? SW_STORE : SW_ADD);
    return 0;
}

static const dgm__op op_reshape = {DGM_OP_RESHAPE, reshape_backward};
static const dgm__op op_flatten = {DGM_OP_FLATTEN, reshape_backward};
static const dgm__op op_contiguous = {DGM_OP_CONTIGUOUS, reshape_backward};

static dgm_var *reshape_impl(dgm_graph *g, const dgm__op *op, dgm_var *x,
                             int ndim, const int64_t *shape)
{
    char bx[128], bs[160];
    const dgm_tensor *xt = x->value;
    if (ndim < 0 || ndim > DGM_MAX_DIMS || (ndim > 0 && !shape))
        return dgm__fail_null(
            g, DGM_EINVAL, "%s: x %s: target rank %d outside [0, %d]",
            dgm__op_name(op), dgm_tensor_describe(xt, bx, sizeof bx), ndim,
            DGM_MAX_DIMS);
    int64_t out[DGM_MAX_DIMS];
    int infer = -1;
    int64_t known = 1;
    for (int k = 0; k < ndim; k++) {
        out[k] = shape[k];
        if (shape[k] == -1 && infer < 0) {
            infer = k;
        } else if (shape[k] < 0) {
            dgm_shape_str(ndim, shape, bs, sizeof bs);
            return dgm__fail_null(
                g, DGM_ESHAPE, "%s: cannot view x %s as %s (%s)",
                dgm__op_name(op), dgm_tensor_describe(xt, bx, sizeof bx), bs,
                shape[k] == -1 ? "more than one -1" : "negative size");
        } else if (!dgm__mul_i64(known, shape[k], &known)) {
            dgm_shape_str(ndim, shape, bs, sizeof bs);
            return dgm__fail_null(g, DGM_ESHAPE,
                                  "%s: cannot view x %s as %s (the sizes "
                                  "overflow at axis %d)",
                                  dgm__op_name(op),
                                  dgm_tensor_describe(xt, bx, sizeof bx), bs,
                                  k);
        }
    }
    const int64_t n = dgm_tensor_numel(xt);
    if (infer >= 0) {
        if (known == 0 || n % known != 0) {
            dgm_shape_str(ndim, shape, bs, sizeof bs);
            return dgm__fail_null(g, DGM_ESHAPE, "%s: cannot view x %s as %s",
                                  dgm__op_name(op),
                                  dgm_tensor_describe(xt, bx, sizeof bx), bs);
        }
        out[infer] = n / known;
    } else if (known != n) {
        dgm_shape_str(ndim, shape, bs, sizeof bs);
        return dgm__fail_null(g, DGM_ESHAPE, "%s: cannot view x %s as %s",
                              dgm__op_name(op),
                              dgm_tensor_describe(xt, bx, sizeof bx), bs);
    }
    /* an empty x matches any shape with a 0: its strides must fit */
    int axis = 0;
    if (dgm__shape_count(ndim, out, (int64_t)dgm_dtype_size(xt->dtype), NULL,
                         &axis) != DGM__SHAPE_OK) {
        dgm_shape_str(ndim, shape, bs, sizeof bs);
        return dgm__fail_null(g, DGM_ESHAPE,
                              "%s: cannot view x %s as %s (the non-zero sizes "
                              "overflow at axis %d)",
                              dgm__op_name(op),
                              dgm_tensor_describe(xt, bx, sizeof bx), bs, axis);
    }
    /* Contiguous input: a view. Otherwise copy first, then view the copy. */
    dgm_tensor *y;
    if (is_dense(xt)) {
        y = dgm__view(g, xt);
    } else {
        y = dgm__copy(g, xt);
    }
    if (!y)
        return NULL;
    y->ndim = ndim;
    memset(y->shape, 0, sizeof y->shape);
    memset(y->strides, 0, sizeof y->strides);
    memcpy(y->shape, out, (size_t)ndim * sizeof *out);
    dgm_contiguous_strides(ndim, y->shape, y->strides);
    dgm_var *in[1] = {x};
    return dgm__node(g, op, y, in, 1);
}

dgm_var *dgm_reshape(dgm_graph *g, dgm_var *x, int ndim, const int64_t *shape)
{
    if (!g || !x)
        return NULL;
    return reshape_impl(g, &op_reshape, x, ndim, shape);
}

dgm_var *dgm_flatten(dgm_graph *g, dgm_var *x)
{
    if (!g || !x)
        return NULL;
    const dgm_tensor *xt = x->value;
    if (xt->ndim < 1) {
        char bx[128];
        return dgm__fail_null(g, DGM_ESHAPE,
                              "flatten: x %s has no batch dimension",
                              dgm_tensor_describe(xt, bx, sizeof bx));
    }
    int64_t rest = 1;
    for (int k = 1; k < xt->ndim; k++)
        rest *= xt->shape[k];
    int64_t shape[2] = {xt->shape[0], rest};
    return reshape_impl(g, &op_flatten, x, 2, shape);
}

dgm_var *dgm_contiguous(dgm_graph *g, dgm_var *x)
{
    if (!g || !x)
        return NULL;
    if (is_dense(x->value))
        return x; /* already contiguous: nothing to record */
    dgm_tensor *y = dgm__copy(g, x->value);
    if (!y)
        return NULL;
    dgm_var *in[1] = {x};
    return dgm__node(g, &op_contiguous, y, in, 1);
}

/* ====================================================================== */
/* permute, transpose                                                     */
/* ====================================================================== */

/* dx viewed through the same permutation has y's shape: add dy there. */
static int permute_backward(dgm_graph *g, dgm_var *node)
{
    bool store;
    dgm_tensor *dx = dgm__grad_in(g, node, 0, &store);
    if (!dx)
        return 0;
    dgm_tensor v = *dx;
    for (int k = 0; k < dx->ndim; k++) {
        int p = (int)node->attr.i[k];
        v.shape[k] = dx->shape[p];
        v.strides[k] = dx->strides[p];
    }
    strided_write(&v, node->grad, store ? SW_STORE : SW_ADD);
    return 0;
}

static const dgm__op op_permute = {DGM_OP_PERMUTE, permute_backward};
static const dgm__op op_transpose = {DGM_OP_TRANSPOSE, permute_backward};

static dgm_var *permute_impl(dgm_graph *g, const dgm__op *op, dgm_var *x,
                             const int *perm)
{
    const dgm_tensor *xt = x->value;
    const int nd = xt->ndim;
    unsigned seen = 0;
    bool ok = perm != NULL || nd == 0;
    for (int k = 0; ok && k < nd; k++) {
        if (perm[k] < 0 || perm[k] >= nd || (seen & (1u << perm[k])))
            ok = false;
        else
            seen |= 1u << perm[k];
    }
    if (!ok) {
        char bx[128], bp[96] = "(null)";
        if (perm) {
            size_t o = 0;
            bp[o++] = '[';
            for (int k = 0; k < nd && o < sizeof bp - 16; k++)
                o += (size_t)snprintf(bp + o, sizeof bp - o, "%s%d",
                                      k ? ", " : "", perm[k]);
            snprintf(bp + o, sizeof bp - o, "]");
        }
        return dgm__fail_null(g, DGM_EINVAL,
                              "%s: %s is not a permutation of the %d axes of "
                              "x %s",
                              dgm__op_name(op), bp, nd,
                              dgm_tensor_describe(xt, bx, sizeof bx));
    }
    dgm_tensor *y = dgm__view(g, xt);
    if (!y)
        return NULL;
    for (int k = 0; k < nd; k++) {
        y->shape[k] = xt->shape[perm[k]];
        y->strides[k] = xt->strides[perm[k]];
    }
    dgm_var *in[1] = {x};
    dgm_var *v = dgm__node(g, op, y, in, 1);
    if (v)
        for (int k = 0; k < nd; k++)
            v->attr.i[k] = perm[k];
    return v;
}

dgm_var *dgm_permute(dgm_graph *g, dgm_var *x, const int *perm)
{
    if (!g || !x)
        return NULL;
    return permute_impl(g, &op_permute, x, perm);
}

dgm_var *dgm_transpose(dgm_graph *g, dgm_var *x, int a, int b)
{
    if (!g || !x)
        return NULL;
    const int nd = x->value->ndim;
    int aa = norm_axis(a, nd), bb = norm_axis(b, nd);
    if (aa < 0 || aa >= nd || bb < 0 || bb >= nd) {
        char bx[128];
        return dgm__fail_null(
            g, DGM_EINVAL, "transpose: axes (%d, %d) out of range for x %s", a,
            b, dgm_tensor_describe(x->value, bx, sizeof bx));
    }
    int perm[DGM_MAX_DIMS];
    for (int k = 0; k < nd; k++)
        perm[k] = k;
    perm[aa] = bb;
    perm[bb] = aa;
    return permute_impl(g, &op_transpose, x, perm);
}

/* ====================================================================== */
/* slice                                                                  */
/* ====================================================================== */

/* attr.i: axis, start, step (the normalised values). The first
 * contribution to dx stores the slice and zeroes the rest of dx (the
 * elements before and after it along the axis; with a step, all of dx
 * first). */
static int slice_backward(dgm_graph *g, dgm_var *node)
{
    bool store;
    dgm_tensor *dx = dgm__grad_in(g, node, 0, &store);
    if (!dx)
        return 0;
    const int axis = (int)node->attr.i[0];
    const int64_t start = node->attr.i[1], step = node->attr.i[2];
    const int64_t len = node->grad->shape[axis], n = dx->shape[axis];
    if (store && (step != 1 || len == 0)) {
        strided_write(dx, NULL, SW_ZERO);
    } else if (store) {
        dgm_tensor z = *dx; /* [0, start) and [start + len, n) */
        z.shape[axis] = start;
        strided_write(&z, NULL, SW_ZERO);
        z.shape[axis] = n - start - len;
        z.data = (float *)dx->data + (start + len) * dx->strides[axis];
        strided_write(&z, NULL, SW_ZERO);
    }
    if (len == 0)
        return 0;
    dgm_tensor v = *dx;
    v.shape[axis] = len;
    v.data = (float *)dx->data + start * dx->strides[axis];
    v.strides[axis] = dx->strides[axis] * step;
    strided_write(&v, node->grad, store && step == 1 ? SW_STORE : SW_ADD);
    return 0;
}

static const dgm__op op_slice = {DGM_OP_SLICE, slice_backward};

/* Python's rule for one bound: negative counts from the end, then clamp. */
static int64_t clamp_bound(int64_t i, int64_t n)
{
    if (i < 0) {
        i += n;
        if (i < 0)
            i = 0;
    }
    return i > n ? n : i;
}

dgm_var *dgm_slice(dgm_graph *g, dgm_var *x, int axis, int64_t start,
                   int64_t stop, int64_t step)
{
    if (!g || !x)
        return NULL;
    const dgm_tensor *xt = x->value;
    char bx[128];
    const int ax = norm_axis(axis, xt->ndim);
    if (ax < 0 || ax >= xt->ndim)
        return dgm__fail_null(g, DGM_EINVAL,
                              "slice: axis %d out of range for x %s", axis,
                              dgm_tensor_describe(xt, bx, sizeof bx));
    if (step < 1)
        return dgm__fail_null(g, DGM_EINVAL,
                              "slice: step %lld must be positive (x %s, axis "
                              "%d)",
                              (long long)step,
                              dgm_tensor_describe(xt, bx, sizeof bx), axis);
    const int64_t n = xt->shape[ax];
    const int64_t s = clamp_bound(start, n), e = clamp_bound(stop, n);
    const int64_t len = e > s ? (e - s + step - 1) / step : 0;
    dgm_tensor *y = dgm__view(g, xt);
    if (!y)
        return NULL;
    y->shape[ax] = len;
    if (len > 0)
        y->data = (char *)xt->data +
                  (size_t)(s * xt->strides[ax]) * dgm_dtype_size(xt->dtype);
    y->strides[ax] = xt->strides[ax] * step;
    dgm_var *in[1] = {x};
    dgm_var *v = dgm__node(g, &op_slice, y, in, 1);
    if (v) {
        v->attr.i[0] = ax;
        v->attr.i[1] = s;
        v->attr.i[2] = step;
    }
    return v;
}

/* ====================================================================== */
/* concat                                                                 */
/* ====================================================================== */

/* attr.i[0]: axis. Each input's gradient is its slab of dy. */
static int concat_backward(dgm_graph *g, dgm_var *node)
{
    const int axis = (int)node->attr.i[0];
    dgm_tensor *dy = node->grad;
    int64_t off = 0;
    for (int i = 0; i < node->n_in; i++) {
        dgm_var *xv = node->in[i];
        const int64_t len = xv->value->shape[axis];
        bool store; /* the slab covers all of dx */
        dgm_tensor *dx = dgm__grad_in(g, node, i, &store);
        if (dx && len > 0) {
            dgm_tensor v = *dy;
            v.shape[axis] = len;
            v.data = (float *)dy->data + off * dy->strides[axis];
            strided_write(dx, &v, store ? SW_STORE : SW_ADD);
        }
        off += len;
    }
    return 0;
}

static const dgm__op op_concat = {DGM_OP_CONCAT, concat_backward};

dgm_var *dgm_concat(dgm_graph *g, dgm_var *const *xs, int n, int axis)
{
    if (!g)
        return NULL;
    if (!xs || n < 1)
        return dgm__fail_null(g, DGM_EINVAL,
                              "concat: needs at least one input (n = %d)", n);
    for (int i = 0; i < n; i++)
        if (!xs[i])
            return NULL; /* an earlier op failed */
    char b0[128], bi[128];
    const dgm_tensor *x0 = xs[0]->value;
    const int nd = x0->ndim;
    const int ax = norm_axis(axis, nd);
    if (ax < 0 || ax >= nd)
        return dgm__fail_null(g, DGM_EINVAL,
                              "concat: axis %d out of range for xs[0] %s", axis,
                              dgm_tensor_describe(x0, b0, sizeof b0));
    int64_t total = 0;
    for (int i = 0; i < n; i++) {
        const dgm_tensor *xi = xs[i]->value;
        bool same = xi->ndim == nd && xi->dtype == x0->dtype;
        for (int k = 0; same && k < nd; k++)
            if (k != ax && xi->shape[k] != x0->shape[k])
                same = false;
        if (!same)
            return dgm__fail_null(
                g, xi->dtype != x0->dtype ? DGM_EDTYPE : DGM_ESHAPE,
                "concat: xs[%d] %s does not match xs[0] %s outside axis %d", i,
                dgm_tensor_describe(xi, bi, sizeof bi),
                dgm_tensor_describe(x0, b0, sizeof b0), axis);
        total += xi->shape[ax];
    }
    int64_t shape[DGM_MAX_DIMS];
    memcpy(shape, x0->shape, (size_t)nd * sizeof *shape);
    shape[ax] = total;
    dgm_tensor *y = dgm__alloc(g, x0->dtype, nd, shape);
    if (!y)
        return NULL;
    const size_t es = dgm_dtype_size(x0->dtype);
    int64_t off = 0;
    for (int i = 0; i < n; i++) {
        const dgm_tensor *xi = xs[i]->value;
        const int64_t len = xi->shape[ax];
        if (len > 0) {
            dgm_tensor v = *y;
            v.storage = NULL;
            v.shape[ax] = len;
            v.data = (char *)y->data + (size_t)(off * y->strides[ax]) * es;
            if (dgm_tensor_copy(&v, xi) < 0)
                return dgm__fail_null(g, dgm_last_code(), "concat: %s",
                                      dgm_last_error());
        }
        off += len;
    }
    dgm_var *out = dgm__node(g, &op_concat, y, xs, n);
    if (out)
        out->attr.i[0] = ax;
    return out;
}
