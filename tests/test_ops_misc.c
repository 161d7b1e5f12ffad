/* test_ops_misc.c - softmax family, shape ops, embedding, dropout, sampling
 * and losses: finite-difference gradients, REF vs DNNL, values from PyTorch
 * and the error codes and messages.
 *
 * PyTorch numbers below came from /usr/bin/python3 (torch, float64):
 *
 *   import torch, math
 *   def fmt(t): return ", ".join("%.9g" % v for v in
 *                                t.detach().double().flatten().tolist())
 *   x = torch.tensor([math.sin(0.7 * i) * 3 for i in range(24)],
 *                    dtype=torch.float64).reshape(2, 3, 4).requires_grad_()
 *   w = torch.tensor([0.5 + (i % 7) / 7 for i in range(24)],
 *                    dtype=torch.float64).reshape(2, 3, 4)
 *   y = torch.softmax(x, 1); print("SM_MID", fmt(y))
 *   g, = torch.autograd.grad((y * w).sum(), x); print("SM_MID_GRAD", fmt(g))
 *   y = torch.log_softmax(x, 1); print("LSM_MID", fmt(y))
 *   g, = torch.autograd.grad((y * w).sum(), x); print("LSM_MID_GRAD", fmt(g))
 *   y = torch.logsumexp(x, 2); print("LSE_LAST", fmt(y))
 *   l = torch.tensor([-100, -3, -0.5, 0, 0.5, 3, 100, 100],
 *                    dtype=torch.float64, requires_grad=True)
 *   t = torch.tensor([0, 1, 0.3, 1, 0, 0.7, 0, 1], dtype=torch.float64,
 *                    requires_grad=True)
 *   y = torch.nn.functional.binary_cross_entropy_with_logits(
 *           l, t, reduction='none'); print("BCE", fmt(y))
 *   gl, gt = torch.autograd.grad(y.sum(), (l, t))
 *   print("BCE_GL", fmt(gl)); print("BCE_GT", fmt(gt))
 *   z = torch.tensor([math.cos(1.3 * i) * 2 for i in range(15)],
 *                    dtype=torch.float64).reshape(3, 5).requires_grad_()
 *   tg = torch.tensor([4, 0, 2])
 *   y = torch.nn.functional.cross_entropy(z, tg, reduction='none')
 *   print("CE", fmt(y))
 *   g, = torch.autograd.grad((y * torch.tensor([1.0, 0.5, 2.0],
 *                             dtype=torch.float64)).sum(), z)
 *   print("CE_GRAD", fmt(g))
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ck_run.h"
#include "dgm/error.h"
#include "dgm/graph.h"
#include "dgm/rng.h"
#include "dgm/tensor.h"
#include "gradcheck.h"
#include "oplog.h"

static const double SM_MID[24] = {
    0.257578673,   0.831398661,   0.726163561,   0.406710684,  0.703656036,
    0.0420183602,  0.00276405491, 0.00160178101, 0.0387652911, 0.126582979,
    0.271072384,   0.591687535,   0.398735751,   0.169067621,  0.0849224784,
    0.00910708203, 0.00162737617, 0.0101613604,  0.282038998,  0.950367662,
    0.599636873,   0.820771019,   0.633038524,   0.040525256};
static const double SM_MID_GRAD[24] = {
    -0.104996038,    -0.0349967076, -0.0292673588, -0.0340987511,
    0.115259921,     0.0222417802,  0.00146805724, -0.000820771399,
    -0.010263883,    0.0127549274,  0.0277993016,  0.0349195225,
    -0.0338785685,   0.119678385,   -0.021366429,  -0.00499848169,
    -0.000835716887, 0.00283808277, 0.0902043507,  0.0214517119,
    0.0347142854,    -0.122516467,  -0.0688379217, -0.0164532302};
static const double LSM_MID[24] = {
    -1.35643008,  -0.184645863, -0.319979999, -0.899653197, -0.351465628,
    -3.16964861,  -5.89105651,  -6.43663913,  -3.25022999,  -2.06685722,
    -1.30536939,  -0.524776595, -0.919456361, -1.77745652,  -2.46601646,
    -4.69870292,  -6.42078627,  -4.58916294,  -1.26570993,  -0.0509063566,
    -0.511431018, -0.197511114, -0.457223999, -3.20582989};
static const double LSM_MID_GRAD[24] = {
    -0.0703527765, -1.55441075,  -1.44464522,  -0.0882052807, -0.486666936,
    1.10323719,    1.34865326,   0.495995547,  0.557019713,   0.451173555,
    0.0959919625,  -0.407790267, -0.124327162, 0.88616877,    0.311957369,
    0.618788426,   0.780250951,  0.900264782,  0.446913648,   -1.29740025,
    -0.655923789,  -1.78643355,  -0.758871017, 0.678611823};
static const double LSE_LAST[6] = {3.70032063, 1.16520886, 3.32377249,
                                   2.77222308, 2.17126426, 3.55456935};
static const double BCE[8] = {
    0, 3.04858735, 0.624076984, 0.693147181, 0.974076984, 0.948587352, 100, 0};
static const double BCE_GL[8] = {3.72007598e-44,
                                 -0.952574127,
                                 0.0775406688,
                                 -0.5,
                                 0.622459331,
                                 0.252574127,
                                 1,
                                 0};
static const double BCE_GT[8] = {100, 3, 0.5, -0, -0.5, -3, -100, -100};
static const double CE[3] = {1.55312745, 0.555820471, 4.5056318};
static const double CE_GRAD[15] = {
    0.612527898,  0.141541385,  0.0149366359,  0.0194088642, -0.788414783,
    -0.213199278, 0.0453097942, 0.00611148124, 0.0132453144, 0.148532688,
    0.990806711,  0.116675553,  -1.97790678,   0.0770218679, 0.79340265};

/* ====================================================================== */
/* Helpers                                                                */
/* ====================================================================== */

/* noinline: inlined at -O3 into callers with small arrays, GCC 12 warns
 * (falsely) that it may read past them. */
__attribute__((noinline)) static dgm_tensor *tens(int ndim,
                                                 const int64_t *shape,
                                                 const double *v)
{
    dgm_tensor *t = dgm_tensor_new(DGM_F32, ndim, shape);
    ck_assert_ptr_nonnull(t);
    if (v) {
        int64_t n = dgm_tensor_numel(t);
        for (int64_t i = 0; i < n; i++)
            dgm_tensor_f32(t)[i] = (float)v[i];
    }
    return t;
}

static void assert_values(const dgm_tensor *t, const double *want, int64_t n,
                          double rtol, double atol, const char *what)
{
    ck_assert_msg(t != NULL, "%s: no tensor (%s)", what, dgm_last_error());
    ck_assert_int_eq(dgm_tensor_numel(t), n);
    for (int64_t i = 0; i < n; i++) {
        double a = dgm_tensor_get(t, i);
        ck_assert_msg(fabs(a - want[i]) <= atol + rtol * fabs(want[i]),
                      "%s[%lld]: %.9g, want %.9g", what, (long long)i, a,
                      want[i]);
    }
}

static void assert_error(dgm_var *v, int code, const char *a, const char *b,
                         const char *c)
{
    ck_assert_msg(v == NULL, "expected a failure (%s)", dgm_errname(code));
    ck_assert_msg(dgm_last_code() == code, "code %s, want %s: %s",
                  dgm_errname(dgm_last_code()), dgm_errname(code),
                  dgm_last_error());
    const char *m = dgm_last_error();
    ck_assert_msg(!a || strstr(m, a), "message '%s' lacks '%s'", m, a);
    ck_assert_msg(!b || strstr(m, b), "message '%s' lacks '%s'", m, b);
    ck_assert_msg(!c || strstr(m, c), "message '%s' lacks '%s'", m, c);
}

/* loss = sum(y * w) with w given, then backward. */
static void backward_weighted(dgm_graph *g, dgm_var *y, const double *w)
{
    dgm_tensor *yt = dgm_value(y);
    dgm_var *wv = dgm_constant(g, yt->ndim, yt->shape, 0.0f);
    ck_assert_ptr_nonnull(wv);
    int64_t n = dgm_tensor_numel(yt);
    for (int64_t i = 0; i < n; i++)
        dgm_tensor_f32(dgm_value(wv))[i] = w ? (float)w[i] : 1.0f;
    dgm_var *l = dgm_sum_all(g, dgm_mul(g, y, wv));
    ck_assert_msg(l != NULL, "%s", dgm_last_error());
    ck_assert_int_eq(dgm_backward(g, l), 0);
}

#define GC_OK(r) ck_assert_msg((r).ok, "%s", gc_describe(&(r)))

/* ====================================================================== */
/* softmax, log_softmax, logsumexp                                        */
/* ====================================================================== */

typedef struct axis_ctx {
    int which; /* 0 softmax, 1 log_softmax, 2 logsumexp */
    int axis;
} axis_ctx;

static dgm_var *build_axis(dgm_graph *g, dgm_var **in, void *ctx)
{
    const axis_ctx *c = ctx;
    switch (c->which) {
    case 0:
        return dgm_softmax(g, in[0], c->axis);
    case 1:
        return dgm_log_softmax(g, in[0], c->axis);
    default:
        return dgm_logsumexp(g, in[0], c->axis);
    }
}

START_TEST(softmax_gradcheck)
{
    struct {
        int nd;
        int64_t shape[3];
        int axis;
    } cases[] = {
        {2, {4, 7}, -1},    {2, {1, 5}, 1},    {3, {2, 3, 4}, 1},
        {3, {2, 3, 4}, -2}, {3, {3, 2, 2}, 0}, {1, {6}, 0},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        dgm_tensor *x = gc_rand(cases[k].nd, cases[k].shape, 10 + k, -2, 2);
        for (int which = 0; which < 3; which++) {
            axis_ctx c = {which, cases[k].axis};
            for (int be = 0; be < 2; be++) {
                gc_result r = gc_gradcheck(
                    build_axis, &c, 1, &x, NULL,
                    be ? DGM_BACKEND_REF : DGM_BACKEND_DNNL, 1e-2, 1e-2, 1e-3);
                ck_assert_msg(r.ok, "case %zu op %d backend %d: %s", k, which,
                              be, gc_describe(&r));
            }
        }
        dgm_tensor_free(x);
    }
}
END_TEST

START_TEST(softmax_gradcheck_strided)
{
    /* x is a transposed view [3, 4] of a [4, 3] buffer */
    dgm_tensor *base = gc_rand(2, (int64_t[]){4, 3}, 7, -2, 2);
    dgm_tensor *x = dgm_tensor_permute(base, (int[]){1, 0});
    ck_assert(!dgm_tensor_is_contiguous(x));
    for (int which = 0; which < 3; which++)
        for (int axis = 0; axis < 2; axis++) {
            axis_ctx c = {which, axis};
            gc_result r = gc_gradcheck(build_axis, &c, 1, &x, NULL,
                                       DGM_BACKEND_DNNL, 1e-2, 1e-2, 1e-3);
            ck_assert_msg(r.ok, "op %d axis %d: %s", which, axis,
                          gc_describe(&r));
        }
    dgm_tensor_free(x);
    dgm_tensor_free(base);
}
END_TEST

START_TEST(softmax_ref_vs_dnnl)
{
    /* [64, 512] is big enough for oneDNN's backward (where it is JIT) */
    int64_t shapes[][2] = {{32, 100}, {128, 10}, {1, 3}, {5, 1000}, {64, 512}};
    for (int k = 0; k < 5; k++) {
        dgm_tensor *x = gc_rand(2, shapes[k], 30 + k, -8, 8);
        for (int which = 0; which < 2; which++) {
            axis_ctx c = {which, -1};
            /* outputs agree to float rounding; log_softmax's gradient
             * (dy - exp(y) * sum dy, sums of ~1000) to about 1e-5 */
            gc_result r =
                gc_compare_backends(build_axis, &c, 1, &x, NULL, 1e-4, 2e-5);
            ck_assert_msg(r.ok, "shape %d op %d: %s", k, which,
                          gc_describe(&r));
        }
        dgm_tensor_free(x);
    }
}
END_TEST

START_TEST(softmax_torch_values)
{
    double xv[24], w[24];
    for (int i = 0; i < 24; i++) {
        xv[i] = sin(0.7 * i) * 3;
        w[i] = 0.5 + (i % 7) / 7.0;
    }
    for (int be = 0; be < 2; be++)
        for (int which = 0; which < 2; which++) {
            dgm_graph *g = dgm_graph_new();
            dgm_graph_set_backend(g, be ? DGM_BACKEND_REF : DGM_BACKEND_DNNL);
            dgm_tensor *xt = tens(3, (int64_t[]){2, 3, 4}, xv);
            dgm_var *x = dgm_leaf(g, xt, true);
            dgm_var *y =
                which ? dgm_log_softmax(g, x, 1) : dgm_softmax(g, x, 1);
            assert_values(dgm_value(y), which ? LSM_MID : SM_MID, 24, 1e-5,
                          1e-6, "softmax value");
            backward_weighted(g, y, w);
            assert_values(dgm_grad(x), which ? LSM_MID_GRAD : SM_MID_GRAD, 24,
                          1e-4, 1e-6, "softmax grad");
            dgm_graph_free(g);
            dgm_tensor_free(xt);
        }
    dgm_graph *g = dgm_graph_new();
    dgm_tensor *xt = tens(3, (int64_t[]){2, 3, 4}, xv);
    dgm_var *y = dgm_logsumexp(g, dgm_input(g, xt), 2);
    ck_assert_int_eq(dgm_value(y)->ndim, 2);
    ck_assert_int_eq(dgm_value(y)->shape[1], 3);
    assert_values(dgm_value(y), LSE_LAST, 6, 1e-6, 1e-6, "logsumexp");
    dgm_graph_free(g);
    dgm_tensor_free(xt);
}
END_TEST

START_TEST(logsumexp_stable)
{
    dgm_graph *g = dgm_graph_new();
    double v[6] = {1000, 1000, -1000, -INFINITY, -INFINITY, -INFINITY};
    dgm_tensor *xt = tens(2, (int64_t[]){2, 3}, v);
    dgm_var *x = dgm_leaf(g, xt, true);
    dgm_var *y = dgm_logsumexp(g, x, -1);
    const float *p = dgm_tensor_f32(dgm_value(y));
    ck_assert_float_eq_tol(p[0], 1000.0f + logf(2.0f), 1e-3);
    ck_assert(isinf(p[1]) && p[1] < 0);
    backward_weighted(g, y, NULL);
    const float *gx = dgm_tensor_f32(dgm_grad(x));
    ck_assert_float_eq_tol(gx[0], 0.5f, 1e-6);
    ck_assert_float_eq_tol(gx[1], 0.5f, 1e-6);
    ck_assert_float_eq_tol(gx[2], 0.0f, 1e-6);
    for (int i = 3; i < 6; i++)
        ck_assert(gx[i] == 0.0f); /* no NaN from the empty slice */
    /* softmax of huge logits stays finite and sums to one */
    dgm_var *s = dgm_softmax(g, x, 1);
    const float *sp = dgm_tensor_f32(dgm_value(s));
    ck_assert_float_eq_tol(sp[0] + sp[1] + sp[2], 1.0f, 1e-6);
    ck_assert_float_eq_tol(sp[0], 0.5f, 1e-6);
    dgm_graph_free(g);
    dgm_tensor_free(xt);
}
END_TEST

START_TEST(softmax_errors)
{
    dgm_graph *g = dgm_graph_new();
    dgm_tensor *xt = tens(2, (int64_t[]){2, 3}, NULL);
    dgm_var *x = dgm_input(g, xt);
    assert_error(dgm_softmax(g, x, 2), DGM_EINVAL, "softmax", "axis 2",
                 "[2, 3]");
    assert_error(dgm_log_softmax(g, x, -3), DGM_EINVAL, "log_softmax",
                 "axis -3", "[2, 3]");
    assert_error(dgm_logsumexp(g, x, 5), DGM_EINVAL, "logsumexp", "[2, 3]",
                 NULL);
    dgm_tensor *it = dgm_tensor_new(DGM_I32, 2, (int64_t[]){2, 3});
    assert_error(dgm_softmax(g, dgm_input(g, it), 1), DGM_EDTYPE, "softmax",
                 "[2, 3]", "i32");
    /* a NULL input: NULL out, message untouched */
    dgm_error_clear();
    ck_assert_ptr_null(dgm_softmax(g, NULL, 0));
    ck_assert_int_eq(dgm_last_code(), 0);
    dgm_graph_free(g);
    dgm_tensor_free(xt);
    dgm_tensor_free(it);
}
END_TEST

/* ====================================================================== */
/* shape ops                                                              */
/* ====================================================================== */

typedef struct shape_ctx {
    int which;
} shape_ctx;

static dgm_var *build_shape(dgm_graph *g, dgm_var **in, void *ctx)
{
    const shape_ctx *c = ctx;
    switch (c->which) {
    case 0:
        return dgm_reshape(g, in[0], 2, (int64_t[]){-1, 2});
    case 1:
        return dgm_flatten(g, in[0]);
    case 2:
        return dgm_permute(g, in[0], (int[]){2, 0, 1});
    case 3:
        return dgm_transpose(g, in[0], 0, -1);
    case 4:
        return dgm_contiguous(g, dgm_transpose(g, in[0], 1, 2));
    case 5:
        return dgm_slice(g, in[0], 2, -3, 100, 2);
    case 6: {
        dgm_var *xs[3] = {in[0], dgm_slice(g, in[0], 1, 0, 1, 1), in[0]};
        return dgm_concat(g, xs, 3, 1);
    }
    default: /* a chain of views, then something nonlinear */
        return dgm_softmax(
            g,
            dgm_reshape(g,
                        dgm_slice(g, dgm_transpose(g, in[0], 0, 2), 0, 1, 4, 2),
                        1, (int64_t[]){-1}),
            0);
    }
}

START_TEST(shape_gradcheck)
{
    dgm_tensor *base = gc_rand(3, (int64_t[]){3, 2, 4}, 3, -1, 1);
    dgm_tensor *perm = dgm_tensor_permute(base, (int[]){1, 0, 2}); /* [2,3,4] */
    dgm_tensor *dense = gc_rand(3, (int64_t[]){2, 3, 4}, 4, -1, 1);
    dgm_tensor *one = gc_rand(3, (int64_t[]){1, 3, 4}, 5, -1, 1);
    dgm_tensor *xs[3] = {dense, perm, one};
    for (int k = 0; k < 3; k++)
        for (int which = 0; which < 8; which++) {
            shape_ctx c = {which};
            gc_result r = gc_gradcheck(build_shape, &c, 1, &xs[k], NULL,
                                       DGM_BACKEND_DNNL, 1e-2, 1e-3, 1e-3);
            ck_assert_msg(r.ok, "input %d op %d: %s", k, which,
                          gc_describe(&r));
        }
    dgm_tensor_free(perm);
    dgm_tensor_free(base);
    dgm_tensor_free(dense);
    dgm_tensor_free(one);
}
END_TEST

START_TEST(views_share_memory)
{
    dgm_graph *g = dgm_graph_new();
    double v[24];
    for (int i = 0; i < 24; i++)
        v[i] = i;
    dgm_tensor *xt = tens(3, (int64_t[]){2, 3, 4}, v);
    dgm_var *x = dgm_leaf(g, xt, true);
    const float *base = dgm_tensor_f32(xt);

    dgm_var *r = dgm_reshape(g, x, 2, (int64_t[]){4, -1});
    ck_assert_ptr_eq(dgm_value(r)->data, base);
    ck_assert_int_eq(dgm_value(r)->shape[1], 6);
    dgm_var *f = dgm_flatten(g, x);
    ck_assert_ptr_eq(dgm_value(f)->data, base);
    ck_assert_int_eq(dgm_value(f)->shape[1], 12);

    dgm_var *t = dgm_transpose(g, x, 0, 2); /* [4, 3, 2] */
    ck_assert_ptr_eq(dgm_value(t)->data, base);
    ck_assert_int_eq(dgm_value(t)->shape[0], 4);
    ck_assert_int_eq(dgm_value(t)->strides[0], 1);
    ck_assert_int_eq(dgm_value(t)->strides[2], 12);
    /* t[3, 1, 1] = x[1, 1, 3] = 12 + 4 + 3 */
    ck_assert_float_eq(dgm_tensor_get(dgm_value(t), 3 * 6 + 1 * 2 + 1), 19.0);

    dgm_var *p = dgm_permute(g, x, (int[]){1, 2, 0}); /* [3, 4, 2] */
    ck_assert_ptr_eq(dgm_value(p)->data, base);
    ck_assert_float_eq(dgm_tensor_get(dgm_value(p), 2 * 8 + 3 * 2 + 1),
                       12 + 8 + 3);

    dgm_var *s = dgm_slice(g, x, 2, -3, 4, 2); /* cols 1, 3 */
    ck_assert_ptr_eq(dgm_value(s)->data, base + 1);
    ck_assert_int_eq(dgm_value(s)->shape[2], 2);
    ck_assert_int_eq(dgm_value(s)->strides[2], 2);
    /* s[0, 2, 1] = x[0, 2, 3] */
    ck_assert_float_eq(dgm_tensor_get(dgm_value(s), 5), 2 * 4 + 3);

    /* reshape of a non-contiguous view copies, in logical order */
    dgm_var *rc = dgm_reshape(g, t, 1, (int64_t[]){24});
    ck_assert_ptr_ne(dgm_value(rc)->data, base);
    ck_assert_float_eq(dgm_tensor_get(dgm_value(rc), 1), 12.0);
    dgm_var *c = dgm_contiguous(g, t);
    ck_assert_ptr_ne(dgm_value(c)->data, base);
    ck_assert(dgm_tensor_is_contiguous(dgm_value(c)));
    ck_assert_float_eq(dgm_tensor_f32(dgm_value(c))[3 * 6 + 1 * 2 + 1], 19.0);
    ck_assert_ptr_eq(dgm_contiguous(g, x), x);

    /* gradient of the slice lands in x's columns 1 and 3 only; the
     * transpose's gradient adds on top in the permuted places */
    double w[12];
    for (int i = 0; i < 12; i++)
        w[i] = 1 + i;
    backward_weighted(g, s, w);
    const float *gx = dgm_tensor_f32(dgm_grad(x));
    for (int i = 0; i < 24; i++) {
        int col = i % 4, row = i / 4;
        float want = (col == 1 || col == 3) ? (float)w[row * 2 + col / 2] : 0;
        ck_assert_msg(gx[i] == want, "dx[%d] = %g, want %g", i, gx[i], want);
    }
    double wt[24];
    for (int i = 0; i < 24; i++)
        wt[i] = 100 * (i + 1);
    backward_weighted(g, t, wt);
    /* t[a, b, c] = x[c, b, a]: x[1, 2, 3] is t[3, 2, 1], flat 3*6+2*2+1 */
    float want = (float)wt[23] + (float)w[5 * 2 + 1]; /* slice row 5, col 3 */
    ck_assert_msg(gx[23] == want, "dx[23] = %g, want %g", gx[23], want);
    ck_assert_msg(gx[4] == (float)wt[0 * 6 + 1 * 2 + 0], "dx[4] = %g", gx[4]);
    dgm_graph_free(g);
    dgm_tensor_free(xt);
}
END_TEST

START_TEST(concat_values)
{
    dgm_graph *g = dgm_graph_new();
    double a[4] = {1, 2, 3, 4}, b[2] = {5, 6};
    dgm_tensor *at = tens(2, (int64_t[]){2, 2}, a);
    dgm_tensor *bt = tens(2, (int64_t[]){2, 1}, b);
    dgm_var *xs[3] = {dgm_leaf(g, at, true), dgm_leaf(g, bt, true),
                      dgm_leaf(g, at, false)};
    dgm_var *y = dgm_concat(g, xs, 3, -1); /* [2, 5] */
    double want[10] = {1, 2, 5, 1, 2, 3, 4, 6, 3, 4};
    assert_values(dgm_value(y), want, 10, 0, 0, "concat");
    double w[10];
    for (int i = 0; i < 10; i++)
        w[i] = i + 1;
    backward_weighted(g, y, w);
    double ga[4] = {1, 2, 6, 7}, gb[2] = {3, 8};
    assert_values(dgm_grad(xs[0]), ga, 4, 0, 0, "concat da");
    assert_values(dgm_grad(xs[1]), gb, 2, 0, 0, "concat db");
    ck_assert_ptr_null(dgm_grad(xs[2]));
    dgm_var *y0 = dgm_concat(g, xs, 1, 0);
    ck_assert_int_eq(dgm_value(y0)->shape[0], 2);
    dgm_var *ys[2] = {xs[0], xs[0]};
    dgm_var *y1 = dgm_concat(g, ys, 2, 0);
    ck_assert_int_eq(dgm_value(y1)->shape[0], 4);
    ck_assert_float_eq(dgm_tensor_get(dgm_value(y1), 5), 2.0);

    assert_error(dgm_concat(g, xs, 2, 0), DGM_ESHAPE, "concat", "[2, 1]",
                 "[2, 2]");
    assert_error(dgm_concat(g, xs, 0, 0), DGM_EINVAL, "concat", "n = 0", NULL);
    assert_error(dgm_concat(g, xs, 2, 2), DGM_EINVAL, "concat", "axis 2",
                 "[2, 2]");
    dgm_graph_free(g);
    dgm_tensor_free(at);
    dgm_tensor_free(bt);
}
END_TEST

START_TEST(shape_errors)
{
    dgm_graph *g = dgm_graph_new();
    dgm_tensor *xt = tens(2, (int64_t[]){2, 3}, NULL);
    dgm_var *x = dgm_leaf(g, xt, true);
    assert_error(dgm_reshape(g, x, 2, (int64_t[]){4, -1}), DGM_ESHAPE,
                 "reshape", "[2, 3]", "[4, -1]");
    assert_error(dgm_reshape(g, x, 2, (int64_t[]){-1, -1}), DGM_ESHAPE,
                 "reshape", "[2, 3]", "more than one -1");
    assert_error(dgm_reshape(g, x, 2, (int64_t[]){5, 1}), DGM_ESHAPE, "reshape",
                 "[5, 1]", NULL);
    /* sizes whose product overflows; an empty x with huge sizes beside its
     * 0, whose strides would overflow */
    assert_error(dgm_reshape(g, x, 3, (int64_t[]){1ll << 40, 1ll << 40, 8}),
                 DGM_ESHAPE, "reshape", "overflow at axis 1", NULL);
    dgm_tensor *zt = dgm_tensor_new(DGM_F32, 1, (int64_t[]){0});
    assert_error(dgm_reshape(g, dgm_input(g, zt), 3,
                             (int64_t[]){1ll << 40, 0, 1ll << 40}),
                 DGM_ESHAPE, "reshape", "overflow at axis 2", NULL);
    assert_error(dgm_permute(g, x, (int[]){0, 0}), DGM_EINVAL, "permute",
                 "[0, 0]", "[2, 3]");
    assert_error(dgm_transpose(g, x, 0, 2), DGM_EINVAL, "transpose", "(0, 2)",
                 "[2, 3]");
    assert_error(dgm_slice(g, x, 1, 0, 2, 0), DGM_EINVAL, "slice", "step 0",
                 "[2, 3]");
    assert_error(dgm_slice(g, x, -3, 0, 2, 1), DGM_EINVAL, "slice", "axis -3",
                 "[2, 3]");
    dgm_tensor *s0 = dgm_tensor_new(DGM_F32, 0, NULL);
    assert_error(dgm_flatten(g, dgm_input(g, s0)), DGM_ESHAPE, "flatten", "[]",
                 NULL);
    /* Python-style clamping: out-of-range bounds give an empty or full slice */
    dgm_var *e = dgm_slice(g, x, 1, 5, 10, 1);
    ck_assert_int_eq(dgm_value(e)->shape[1], 0);
    dgm_var *full = dgm_slice(g, x, 1, -100, INT64_MAX, 1);
    ck_assert_int_eq(dgm_value(full)->shape[1], 3);
    dgm_graph_free(g);
    dgm_tensor_free(xt);
    dgm_tensor_free(s0);
    dgm_tensor_free(zt);
}
END_TEST

/* ====================================================================== */
/* embedding                                                              */
/* ====================================================================== */

static dgm_var *build_embedding(dgm_graph *g, dgm_var **in, void *ctx)
{
    return dgm_embedding(g, in[0], in[1]);
}

START_TEST(embedding_values_and_grad)
{
    for (int dt = 0; dt < 2; dt++) {
        dgm_graph *g = dgm_graph_new();
        double wv[12];
        for (int i = 0; i < 12; i++)
            wv[i] = i;
        dgm_tensor *wt = tens(2, (int64_t[]){4, 3}, wv); /* V 4, D 3 */
        int64_t ids[6] = {3, 0, 3, 1, 3, 0};
        dgm_tensor *it =
            dgm_tensor_new(dt ? DGM_I64 : DGM_I32, 2, (int64_t[]){2, 3});
        for (int i = 0; i < 6; i++)
            dgm_tensor_set(it, i, (double)ids[i]);
        dgm_var *w = dgm_leaf(g, wt, true);
        dgm_var *y = dgm_embedding(g, w, dgm_input(g, it));
        ck_assert_msg(y != NULL, "%s", dgm_last_error());
        ck_assert_int_eq(dgm_value(y)->ndim, 3);
        ck_assert_int_eq(dgm_value(y)->shape[2], 3);
        for (int i = 0; i < 6; i++)
            for (int j = 0; j < 3; j++)
                ck_assert_float_eq(dgm_tensor_get(dgm_value(y), i * 3 + j),
                                   ids[i] * 3 + j);
        double gw[18];
        for (int i = 0; i < 18; i++)
            gw[i] = i / 3 + 1; /* row i of y weighted by i + 1 */
        backward_weighted(g, y, gw);
        /* row 3 of dW gets 1 + 3 + 5, row 0 gets 2 + 6, row 1 gets 4 */
        double want[12] = {8, 8, 8, 4, 4, 4, 0, 0, 0, 9, 9, 9};
        assert_values(dgm_grad(w), want, 12, 0, 0, "embedding dW");
        dgm_graph_free(g);

        dgm_tensor *leaves[2] = {gc_rand(2, (int64_t[]){4, 3}, 9, -1, 1), it};
        gc_result r = gc_gradcheck(build_embedding, NULL, 2, leaves, NULL,
                                   DGM_BACKEND_DNNL, 1e-2, 1e-3, 1e-3);
        GC_OK(r);
        dgm_tensor_free(leaves[0]);
        dgm_tensor_free(wt);
        dgm_tensor_free(it);
    }
}
END_TEST

START_TEST(embedding_errors)
{
    dgm_graph *g = dgm_graph_new();
    dgm_tensor *wt = tens(2, (int64_t[]){10, 4}, NULL);
    dgm_tensor *it = dgm_tensor_new(DGM_I64, 1, (int64_t[]){3});
    dgm_tensor_set(it, 1, 10);
    dgm_var *w = dgm_leaf(g, wt, true);
    assert_error(dgm_embedding(g, w, dgm_input(g, it)), DGM_EINVAL, "embedding",
                 "index 10", "V = 10");
    dgm_tensor_set(it, 1, -1);
    assert_error(dgm_embedding(g, w, dgm_input(g, it)), DGM_EINVAL, "embedding",
                 "index -1", "[10, 4]");
    dgm_tensor *ft = tens(1, (int64_t[]){3}, NULL);
    assert_error(dgm_embedding(g, w, dgm_input(g, ft)), DGM_EDTYPE, "embedding",
                 "[3] f32", NULL);
    assert_error(dgm_embedding(g, dgm_input(g, ft), dgm_input(g, it)),
                 DGM_ESHAPE, "embedding", "[3] f32", NULL);
    dgm_graph_free(g);
    dgm_tensor_free(wt);
    dgm_tensor_free(it);
    dgm_tensor_free(ft);
}
END_TEST

/* ====================================================================== */
/* dropout and sampling                                                   */
/* ====================================================================== */

static dgm_var *build_dropout(dgm_graph *g, dgm_var **in, void *ctx)
{
    return dgm_dropout(g, in[0], 0.4f);
}

START_TEST(dropout_statistics)
{
    dgm_graph *g = dgm_graph_new();
    dgm_rng rng;
    dgm_rng_seed(&rng, 1);
    dgm_graph_set_rng(g, &rng);
    const int64_t n = 100000;
    dgm_tensor *xt = gc_rand(1, &n, 2, 1, 2);
    dgm_var *x = dgm_leaf(g, xt, true);
    dgm_var *y = dgm_dropout(g, x, 0.3f);
    ck_assert_msg(y != NULL, "%s", dgm_last_error());
    int64_t zeros = 0;
    double sx = 0, sy = 0;
    for (int64_t i = 0; i < n; i++) {
        float a = dgm_tensor_f32(xt)[i], b = dgm_tensor_f32(dgm_value(y))[i];
        sx += a;
        sy += b;
        if (b == 0.0f)
            zeros++;
        else
            ck_assert_float_eq_tol(b, a / 0.7f, 1e-5);
    }
    /* 0.3 +- 4.4 sigma (sigma = sqrt(.3*.7/1e5) = 0.00145) */
    ck_assert_msg(fabs((double)zeros / n - 0.3) < 0.0065, "drop rate %g",
                  (double)zeros / n);
    ck_assert_msg(fabs(sy / sx - 1.0) < 0.01, "mean ratio %g", sy / sx);
    /* gradient: dy * mask */
    backward_weighted(g, y, NULL);
    for (int64_t i = 0; i < 1000; i++) {
        float m = dgm_tensor_f32(dgm_value(y))[i] == 0.0f ? 0.0f : 1 / 0.7f;
        ck_assert_float_eq_tol(dgm_tensor_f32(dgm_grad(x))[i], m, 1e-6);
    }
    /* eval mode and p == 0: the very same var */
    dgm_graph_set_training(g, false);
    ck_assert_ptr_eq(dgm_dropout(g, x, 0.5f), x);
    dgm_graph_set_training(g, true);
    ck_assert_ptr_eq(dgm_dropout(g, x, 0.0f), x);
    dgm_graph_free(g);

    dgm_tensor *small = gc_rand(2, (int64_t[]){3, 5}, 5, -1, 1);
    gc_result r = gc_gradcheck(build_dropout, NULL, 1, &small, NULL,
                               DGM_BACKEND_DNNL, 1e-2, 1e-3, 1e-3);
    GC_OK(r);
    dgm_tensor_free(small);
    dgm_tensor_free(xt);
}
END_TEST

START_TEST(dropout_errors)
{
    dgm_graph *g = dgm_graph_new();
    dgm_tensor *xt = tens(2, (int64_t[]){2, 3}, NULL);
    dgm_var *x = dgm_input(g, xt);
    dgm_rng rng;
    dgm_rng_seed(&rng, 1);
    assert_error(dgm_dropout(g, x, 1.0f), DGM_ERANGE, "dropout", "p = 1",
                 "[2, 3]");
    assert_error(dgm_dropout(g, x, -0.1f), DGM_ERANGE, "dropout", "p = -0.1",
                 NULL);
    assert_error(dgm_dropout(g, x, NAN), DGM_ERANGE, "dropout", NULL, NULL);
    /* the range check holds in eval mode too */
    dgm_graph_set_training(g, false);
    assert_error(dgm_dropout(g, x, 2.0f), DGM_ERANGE, "dropout", NULL, NULL);
    dgm_graph_set_training(g, true);
    assert_error(dgm_dropout(g, x, 0.5f), DGM_ESTATE, "dropout", "RNG",
                 "[2, 3]");
    assert_error(dgm_randn(g, 1, (int64_t[]){4}), DGM_ESTATE, "randn", "RNG",
                 "[4]");
    assert_error(dgm_rand_uniform(g, 1, (int64_t[]){4}, 0, 1), DGM_ESTATE,
                 "rand_uniform", "RNG", "[4]");
    dgm_graph_set_rng(g, &rng);
    assert_error(dgm_rand_uniform(g, 1, (int64_t[]){4}, 1, 0), DGM_ERANGE,
                 "rand_uniform", NULL, NULL);
    assert_error(dgm_randn(g, 2, (int64_t[]){4, -2}), DGM_ESHAPE, "randn",
                 "[4, -2]", NULL);
    dgm_graph_free(g);
    dgm_tensor_free(xt);
}
END_TEST

START_TEST(sampling_statistics)
{
    dgm_graph *g = dgm_graph_new();
    dgm_rng rng;
    dgm_rng_seed(&rng, 42);
    dgm_graph_set_rng(g, &rng);
    int64_t shape[2] = {200, 500};
    dgm_var *z = dgm_randn(g, 2, shape);
    dgm_var *u = dgm_rand_uniform(g, 2, shape, -2.0f, 3.0f);
    ck_assert_msg(z && u, "%s", dgm_last_error());
    ck_assert(!dgm_requires_grad(z) && !dgm_requires_grad(u));
    ck_assert_str_eq(dgm_var_op_name(z), "randn");
    double s1 = 0, s2 = 0, su = 0, mn = 1e9, mx = -1e9;
    const int64_t n = 100000;
    for (int64_t i = 0; i < n; i++) {
        double a = dgm_tensor_f32(dgm_value(z))[i];
        double b = dgm_tensor_f32(dgm_value(u))[i];
        s1 += a;
        s2 += a * a;
        su += b;
        mn = fmin(mn, b);
        mx = fmax(mx, b);
    }
    ck_assert_msg(fabs(s1 / n) < 0.015, "randn mean %g", s1 / n);
    ck_assert_msg(fabs(s2 / n - 1) < 0.02, "randn var %g", s2 / n);
    ck_assert_msg(fabs(su / n - 0.5) < 0.03, "uniform mean %g", su / n);
    ck_assert(mn >= -2.0 && mn < -1.99 && mx < 3.0 && mx > 2.99);
    /* the same seed draws the same numbers */
    float first = dgm_tensor_f32(dgm_value(z))[0];
    dgm_rng_seed(&rng, 42);
    dgm_var *z2 = dgm_randn(g, 0, NULL);
    ck_assert_float_eq(dgm_tensor_f32(dgm_value(z2))[0], first);
    oplog_checked(z, OPLOG_REF);
    oplog_checked(u, OPLOG_REF);
    dgm_graph_free(g);
}
END_TEST

/* ====================================================================== */
/* losses                                                                 */
/* ====================================================================== */

static dgm_var *build_bce(dgm_graph *g, dgm_var **in, void *ctx)
{
    return dgm_bce_with_logits(g, in[0], in[1]);
}

static dgm_var *build_ce(dgm_graph *g, dgm_var **in, void *ctx)
{
    return dgm_cross_entropy(g, in[0], in[1]);
}

START_TEST(bce_torch_values)
{
    double l[8] = {-100, -3, -0.5, 0, 0.5, 3, 100, 100};
    double t[8] = {0, 1, 0.3, 1, 0, 0.7, 0, 1};
    dgm_graph *g = dgm_graph_new();
    dgm_tensor *lt = tens(1, (int64_t[]){8}, l),
               *tt = tens(1, (int64_t[]){8}, t);
    dgm_var *lv = dgm_leaf(g, lt, true), *tv = dgm_leaf(g, tt, true);
    dgm_var *y = dgm_bce_with_logits(g, lv, tv);
    ck_assert_msg(y != NULL, "%s", dgm_last_error());
    for (int i = 0; i < 8; i++)
        ck_assert(isfinite(dgm_tensor_f32(dgm_value(y))[i]));
    assert_values(dgm_value(y), BCE, 8, 1e-6, 1e-6, "bce");
    backward_weighted(g, y, NULL);
    assert_values(dgm_grad(lv), BCE_GL, 8, 1e-6, 1e-7, "bce dl");
    assert_values(dgm_grad(tv), BCE_GT, 8, 1e-7, 0, "bce dt");
    assert_error(dgm_bce_with_logits(g, lv, dgm_slice(g, tv, 0, 0, 4, 1)),
                 DGM_ESHAPE, "bce_with_logits", "[8] f32", "[4] f32");
    dgm_graph_free(g);

    dgm_tensor *lr = gc_rand(2, (int64_t[]){3, 4}, 11, -3, 3);
    dgm_tensor *tr = gc_rand(2, (int64_t[]){3, 4}, 12, 0, 1);
    dgm_tensor *leaves[2] = {lr, tr};
    gc_result r = gc_gradcheck(build_bce, NULL, 2, leaves, NULL,
                               DGM_BACKEND_REF, 1e-2, 1e-3, 1e-3);
    GC_OK(r);
    dgm_tensor *lp = dgm_tensor_permute(lr, (int[]){1, 0});
    dgm_tensor *tp = dgm_tensor_permute(tr, (int[]){1, 0});
    dgm_tensor *pl[2] = {lp, tp};
    r = gc_gradcheck(build_bce, NULL, 2, pl, (bool[]){true, false},
                     DGM_BACKEND_DNNL, 1e-2, 1e-3, 1e-3);
    GC_OK(r);
    dgm_tensor_free(lp);
    dgm_tensor_free(tp);
    dgm_tensor_free(lr);
    dgm_tensor_free(tr);
    dgm_tensor_free(lt);
    dgm_tensor_free(tt);
}
END_TEST

START_TEST(cross_entropy_torch_values)
{
    double z[15], wrow[3] = {1.0, 0.5, 2.0};
    for (int i = 0; i < 15; i++)
        z[i] = cos(1.3 * i) * 2;
    dgm_graph *g = dgm_graph_new();
    dgm_tensor *zt = tens(2, (int64_t[]){3, 5}, z);
    dgm_tensor *tg = dgm_tensor_new(DGM_I64, 1, (int64_t[]){3});
    dgm_tensor_set(tg, 0, 4);
    dgm_tensor_set(tg, 1, 0);
    dgm_tensor_set(tg, 2, 2);
    dgm_var *zv = dgm_leaf(g, zt, true);
    dgm_var *y = dgm_cross_entropy(g, zv, dgm_input(g, tg));
    ck_assert_msg(y != NULL, "%s", dgm_last_error());
    ck_assert_int_eq(dgm_value(y)->ndim, 1);
    assert_values(dgm_value(y), CE, 3, 1e-6, 1e-6, "cross_entropy");
    backward_weighted(g, y, wrow);
    assert_values(dgm_grad(zv), CE_GRAD, 15, 1e-5, 1e-6, "cross_entropy dz");

    dgm_tensor_set(tg, 2, 5);
    assert_error(dgm_cross_entropy(g, zv, dgm_input(g, tg)), DGM_EINVAL,
                 "cross_entropy", "target 5", "C = 5");
    dgm_tensor *t2 = dgm_tensor_new(DGM_I32, 1, (int64_t[]){4});
    assert_error(dgm_cross_entropy(g, zv, dgm_input(g, t2)), DGM_ESHAPE,
                 "cross_entropy", "[3, 5] f32", "[4] i32");
    assert_error(dgm_cross_entropy(g, zv, zv), DGM_EDTYPE, "cross_entropy",
                 "[3, 5] f32", NULL);
    dgm_graph_free(g);

    /* [2, 3, 4] logits over [2, 3] i32 targets, and a batch of one */
    dgm_tensor *lr = gc_rand(3, (int64_t[]){2, 3, 4}, 13, -2, 2);
    dgm_tensor *ti = dgm_tensor_new(DGM_I32, 2, (int64_t[]){2, 3});
    for (int i = 0; i < 6; i++)
        dgm_tensor_set(ti, i, (i * 7) % 4);
    dgm_tensor *leaves[2] = {lr, ti};
    gc_result r = gc_gradcheck(build_ce, NULL, 2, leaves, NULL,
                               DGM_BACKEND_DNNL, 1e-2, 1e-3, 1e-3);
    GC_OK(r);
    dgm_tensor *l1 = gc_rand(2, (int64_t[]){1, 7}, 14, -2, 2);
    dgm_tensor *t1 = dgm_tensor_new(DGM_I64, 1, (int64_t[]){1});
    dgm_tensor_set(t1, 0, 6);
    dgm_tensor *leaves1[2] = {l1, t1};
    r = gc_gradcheck(build_ce, NULL, 2, leaves1, NULL, DGM_BACKEND_REF, 1e-2,
                     1e-3, 1e-3);
    GC_OK(r);
    /* non-contiguous logits: a transposed [3, 2] view of [2, 3] */
    dgm_tensor *l2b = gc_rand(2, (int64_t[]){2, 3}, 15, -2, 2);
    dgm_tensor *l2 = dgm_tensor_permute(l2b, (int[]){1, 0});
    dgm_tensor *t3 = dgm_tensor_new(DGM_I64, 1, (int64_t[]){3});
    dgm_tensor_set(t3, 0, 1);
    dgm_tensor *leaves2[2] = {l2, t3};
    r = gc_gradcheck(build_ce, NULL, 2, leaves2, NULL, DGM_BACKEND_DNNL, 1e-2,
                     1e-3, 1e-3);
    GC_OK(r);
    dgm_tensor_free(l2);
    dgm_tensor_free(l2b);
    dgm_tensor_free(t3);
    dgm_tensor_free(l1);
    dgm_tensor_free(t1);
    dgm_tensor_free(lr);
    dgm_tensor_free(ti);
    dgm_tensor_free(zt);
    dgm_tensor_free(tg);
    dgm_tensor_free(t2);
}
END_TEST

/* ====================================================================== */

static Suite *ops_misc_suite(void)
{
    Suite *s = suite_create("ops_misc");
    TCase *tc = tq_case(s, "softmax", softmax_gradcheck,
                        softmax_gradcheck_strided, softmax_ref_vs_dnnl,
                        softmax_torch_values, logsumexp_stable, softmax_errors);
    tcase_set_timeout(tc, 120);

    tc = tq_case(s, "shape", shape_gradcheck, views_share_memory, concat_values,
                 shape_errors);
    tcase_set_timeout(tc, 120);

    tq_case(s, "embedding", embedding_values_and_grad, embedding_errors);

    tq_case(s, "dropout_sampling", dropout_statistics, dropout_errors,
            sampling_statistics);

    tq_case(s, "losses", bce_torch_values, cross_entropy_torch_values);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(ops_misc_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
