/* test_ops_conv.c - suite "ops_conv": conv2d, conv_transpose2d, batch and
 * layer norm, pooling, upsampling. Gradients against central finite
 * differences on both backends, the oneDNN path against the plain-C
 * reference, batch-norm statistics against PyTorch, and bad input. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ck_run.h"
#include "dgm/error.h"
#include "dgm/graph.h"
#include "dgm/tensor.h"
#include "oplog.h"

#define MAX_IN 4

/* An op under test: inputs in[0..n) -> output. */
typedef dgm_var *(*op_fn)(dgm_graph *g, dgm_var *const *in, const void *arg);

typedef struct spec {
    int nin;
    int ndim[MAX_IN];
    int64_t shape[MAX_IN][4];
    bool grad[MAX_IN];
    op_fn fn;
    const void *arg;
    bool eval;           /* run in eval mode */
    bool noncontig_x;    /* in[0] is a permuted (non-contiguous) view */
    bool distinct_x;     /* in[0] values well apart (max pooling) */
} spec;

/* ---- deterministic data ------------------------------------------------ */

static uint64_t lcg_state;
static float lcg_uniform(void) /* [-1, 1) */
{
    lcg_state = lcg_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((lcg_state >> 40) / (double)(1ULL << 24)) * 2.0f - 1.0f;
}

/* The inputs of a spec (heap tensors the caller frees). For noncontig_x the
 * last two dims are stored swapped and in[0] is the permuted view. */
static void make_inputs(const spec *s, dgm_tensor **in, uint64_t seed)
{
    lcg_state = seed;
    for (int i = 0; i < s->nin; i++) {
        if (i == 0 && s->noncontig_x) {
            int64_t sh[4] = {s->shape[0][0], s->shape[0][1], s->shape[0][3],
                             s->shape[0][2]};
            dgm_tensor *base = dgm_tensor_new(DGM_F32, 4, sh);
            int perm[4] = {0, 1, 3, 2};
            in[0] = dgm_tensor_permute(base, perm);
            dgm_tensor_free(base);
        } else {
            in[i] = dgm_tensor_new(DGM_F32, s->ndim[i], s->shape[i]);
        }
        ck_assert_ptr_nonnull(in[i]);
        int64_t n = dgm_tensor_numel(in[i]);
        for (int64_t k = 0; k < n; k++)
            dgm_tensor_set(in[i], k, lcg_uniform());
        if (i == 0 && s->distinct_x) {
            /* a shuffled ramp: values 0.05 apart, so no max flips under
             * the finite-difference step */
            for (int64_t k = 0; k < n; k++)
                dgm_tensor_set(in[i], k, 0.05 * (double)k - 1.0);
            for (int64_t k = n - 1; k > 0; k--) {
                int64_t j = (int64_t)((lcg_uniform() + 1.0f) * 0.5f * k);
                double a = dgm_tensor_get(in[i], k),
                       b = dgm_tensor_get(in[i], j);
                dgm_tensor_set(in[i], k, b);
                dgm_tensor_set(in[i], j, a);
            }
        }
    }
}

/* ---- running one op ---------------------------------------------------- */

typedef struct result {
    dgm_tensor *y;
    dgm_tensor *grad[MAX_IN]; /* NULL where not requested */
} result;

static void result_free(result *r)
{
    dgm_tensor_free(r->y);
    for (int i = 0; i < MAX_IN; i++)
        dgm_tensor_free(r->grad[i]);
    memset(r, 0, sizeof *r);
}

/* The probe weights of the scalar loss sum(y * probe), fixed per shape. */
static dgm_tensor *make_probe(const dgm_tensor *y)
{
    dgm_tensor *p = dgm_tensor_new(DGM_F32, y->ndim, y->shape);
    uint64_t keep = lcg_state;
    lcg_state = 12345;
    for (int64_t k = 0; k < dgm_tensor_numel(p); k++)
        dgm_tensor_set(p, k, lcg_uniform());
    lcg_state = keep;
    return p;
}

/* s's op on a new graph (*g; the caller frees it) on backend be, its
 * leaves in v. */
static dgm_var *build(dgm_graph **g, const spec *s, dgm_tensor **in,
                      dgm_backend be, bool want_grad, dgm_var **v)
{
    *g = dgm_graph_new();
    ck_assert_ptr_nonnull(*g);
    dgm_graph_set_backend(*g, be);
    dgm_graph_set_training(*g, !s->eval);
    for (int i = 0; i < s->nin; i++)
        v[i] = dgm_leaf(*g, in[i], want_grad && s->grad[i]);
    dgm_var *y = s->fn(*g, v, s->arg);
    ck_assert_msg(y != NULL, "op failed: %s", dgm_last_error());
    return y;
}

/* Forward (and, if want_grad, backward of sum(y * probe)) on backend be. */
static void run(const spec *s, dgm_tensor **in, dgm_backend be, bool want_grad,
                result *out)
{
    memset(out, 0, sizeof *out);
    dgm_graph *g;
    dgm_var *v[MAX_IN] = {0};
    dgm_var *y = build(&g, s, in, be, want_grad, v);
    out->y = dgm_tensor_clone(dgm_value(y));
    if (want_grad) {
        dgm_tensor *probe = make_probe(dgm_value(y));
        dgm_var *loss = dgm_sum_all(g, dgm_mul(g, y, dgm_input(g, probe)));
        ck_assert_msg(loss != NULL, "loss failed: %s", dgm_last_error());
        int rc = dgm_backward(g, loss);
        ck_assert_msg(rc == 0, "backward failed: %s", dgm_last_error());
        for (int i = 0; i < s->nin; i++)
            if (s->grad[i])
                out->grad[i] = dgm_tensor_clone(dgm_grad(v[i]));
        dgm_graph_free(g);
        dgm_tensor_free(probe);
        return;
    }
    dgm_graph_free(g);
}

/* Log a passed check of the ops under s's output (tests/support/oplog.h),
 * from a build with grad on backend be. */
static void log_checked(const spec *s, dgm_tensor **in, dgm_backend be,
                        const char *how)
{
    if (!oplog_enabled())
        return;
    dgm_graph *g;
    dgm_var *v[MAX_IN] = {0};
    oplog_checked(build(&g, s, in, be, true, v), how);
    dgm_graph_free(g);
}

/* sum(y * probe) in double, from a forward pass. */
static double loss_of(const spec *s, dgm_tensor **in, dgm_backend be)
{
    result r;
    run(s, in, be, false, &r);
    dgm_tensor *probe = make_probe(r.y);
    double acc = 0.0;
    for (int64_t k = 0; k < dgm_tensor_numel(r.y); k++)
        acc += dgm_tensor_get(r.y, k) * dgm_tensor_get(probe, k);
    dgm_tensor_free(probe);
    result_free(&r);
    return acc;
}

/* Analytic gradients against central differences at up to 30 elements of
 * every input needing one: |a - n| <= tol * (1 + |n|). */
static void gradcheck(const spec *s, dgm_backend be, double eps, double tol)
{
    dgm_tensor *in[MAX_IN] = {0};
    make_inputs(s, in, 7);
    result r;
    run(s, in, be, true, &r);
    for (int i = 0; i < s->nin; i++) {
        if (!s->grad[i])
            continue;
        ck_assert_ptr_nonnull(r.grad[i]);
        int64_t n = dgm_tensor_numel(in[i]);
        int64_t step = n > 30 ? n / 30 : 1;
        for (int64_t k = 0; k < n; k += step) {
            double x0 = dgm_tensor_get(in[i], k);
            dgm_tensor_set(in[i], k, x0 + eps);
            double lp = loss_of(s, in, be);
            dgm_tensor_set(in[i], k, x0 - eps);
            double lm = loss_of(s, in, be);
            dgm_tensor_set(in[i], k, x0);
            double num = (lp - lm) / (2.0 * eps);
            double ana = dgm_tensor_get(r.grad[i], k);
            ck_assert_msg(fabs(ana - num) <= tol * (1.0 + fabs(num)),
                          "%s: input %d element %lld: analytic %.6g vs "
                          "numeric %.6g",
                          be == DGM_BACKEND_REF ? "ref" : "dnnl", i,
                          (long long)k, ana, num);
        }
    }
    log_checked(s, in, be,
                be == DGM_BACKEND_REF ? OPLOG_GRAD : OPLOG_GRAD_DNNL);
    result_free(&r);
    for (int i = 0; i < s->nin; i++)
        dgm_tensor_free(in[i]);
}

static double max_abs(const dgm_tensor *t)
{
    double m = 0.0;
    for (int64_t k = 0; k < dgm_tensor_numel(t); k++)
        m = fmax(m, fabs(dgm_tensor_get(t, k)));
    return m;
}

/* max |dnnl - ref| <= tol * max(1, max |ref|), output and every gradient */
static void assert_close(const dgm_tensor *a, const dgm_tensor *ref,
                         double tol, const char *what)
{
    ck_assert(dgm_tensor_same_shape(a, ref));
    double scale = fmax(1.0, max_abs(ref)), worst = 0.0;
    for (int64_t k = 0; k < dgm_tensor_numel(ref); k++)
        worst = fmax(worst,
                     fabs(dgm_tensor_get(a, k) - dgm_tensor_get(ref, k)));
    ck_assert_msg(worst <= tol * scale, "%s: max diff %.3g (scale %.3g)", what,
                  worst, scale);
}

static void ref_vs_dnnl(const spec *s, double tol)
{
    dgm_tensor *in[MAX_IN] = {0};
    make_inputs(s, in, 99);
    result a, b;
    run(s, in, DGM_BACKEND_DNNL, true, &a);
    run(s, in, DGM_BACKEND_REF, true, &b);
    assert_close(a.y, b.y, tol, "forward");
    for (int i = 0; i < s->nin; i++)
        if (s->grad[i]) {
            char what[32];
            snprintf(what, sizeof what, "grad of input %d", i);
            assert_close(a.grad[i], b.grad[i], tol, what);
        }
    log_checked(s, in, DGM_BACKEND_DNNL, OPLOG_DNNL);
    result_free(&a);
    result_free(&b);
    for (int i = 0; i < s->nin; i++)
        dgm_tensor_free(in[i]);
}

/* ---- op adapters -------------------------------------------------------- */

static dgm_var *do_conv(dgm_graph *g, dgm_var *const *in, const void *arg)
{
    return dgm_conv2d(g, in[0], in[1], in[2], arg);
}
static dgm_var *do_deconv(dgm_graph *g, dgm_var *const *in, const void *arg)
{
    return dgm_conv_transpose2d(g, in[0], in[1], in[2], arg);
}

#define CP(s0, s1, p0, p1, d0, d1, gr, o0, o1)                             \
    (&(const dgm_conv_params){{s0, s1}, {p0, p1}, {d0, d1}, gr, {o0, o1}})

/* x, w, b (b may have ndim 0 = absent) */
static spec conv_spec(op_fn fn, const dgm_conv_params *p, const int64_t *x,
                      const int64_t *w, int64_t b)
{
    spec s = {.nin = b ? 3 : 2, .fn = fn, .arg = p};
    s.ndim[0] = s.ndim[1] = 4;
    memcpy(s.shape[0], x, 4 * sizeof *x);
    memcpy(s.shape[1], w, 4 * sizeof *w);
    s.grad[0] = s.grad[1] = true;
    if (b) {
        s.ndim[2] = 1;
        s.shape[2][0] = b;
        s.grad[2] = true;
    }
    return s;
}

#define X4(a, b, c, d) ((const int64_t[4]){a, b, c, d})

/* Parameters live in static storage: specs keep pointers to them. */
static const dgm_conv_params CONV_P[9] = {
    {{1, 1}, {1, 1}, {1, 1}, 1, {0, 0}}, /* plain 3x3, pad 1, bias */
    {{2, 2}, {0, 0}, {1, 1}, 1, {0, 0}}, /* batch 1, stride 2, no bias */
    {{2, 1}, {1, 2}, {2, 2}, 1, {0, 0}}, /* dilation 2, uneven stride/pad */
    {{1, 1}, {1, 1}, {1, 1}, 2, {0, 0}}, /* groups 2 */
    {{2, 2}, {1, 1}, {1, 1}, 1, {0, 0}}, /* DCGAN discriminator k4 s2 p1 */
    {{1, 1}, {1, 1}, {1, 1}, 1, {0, 0}}, /* transpose, stride 1, pad 1 */
    {{2, 2}, {1, 1}, {1, 1}, 1, {1, 1}}, /* transpose, output_pad 1 */
    {{2, 2}, {0, 0}, {2, 2}, 2, {0, 0}}, /* transpose, groups, dilation */
    {{2, 2}, {1, 1}, {1, 1}, 1, {0, 0}}, /* DCGAN generator k4 s2 p1 */
};

static spec conv_cases(int i)
{
    switch (i) {
    case 0:
        return conv_spec(do_conv, &CONV_P[0], X4(2, 3, 6, 5), X4(4, 3, 3, 3), 4);
    case 1:
        return conv_spec(do_conv, &CONV_P[1], X4(1, 2, 7, 7), X4(3, 2, 3, 3), 0);
    case 2:
        return conv_spec(do_conv, &CONV_P[2], X4(2, 2, 8, 7), X4(2, 2, 3, 2), 2);
    case 3:
        return conv_spec(do_conv, &CONV_P[3], X4(2, 4, 5, 5), X4(6, 2, 3, 3), 6);
    case 4:
        return conv_spec(do_conv, &CONV_P[4], X4(2, 3, 8, 8), X4(5, 3, 4, 4), 5);
    case 5:
        return conv_spec(do_deconv, &CONV_P[5], X4(2, 3, 4, 4), X4(3, 2, 3, 3),
                         2);
    case 6:
        return conv_spec(do_deconv, &CONV_P[6], X4(2, 4, 3, 3), X4(4, 3, 3, 3),
                         3);
    case 7:
        return conv_spec(do_deconv, &CONV_P[7], X4(1, 4, 3, 3), X4(4, 1, 3, 3),
                         2);
    case 8:
        return conv_spec(do_deconv, &CONV_P[8], X4(2, 4, 3, 3), X4(4, 2, 4, 4),
                         2);
    }
    return (spec){0};
}
#define N_CONV_CASES 9

START_TEST(conv_gradcheck)
{
    spec s = conv_cases(_i);
    gradcheck(&s, DGM_BACKEND_REF, 1e-2, 2e-3);
    gradcheck(&s, DGM_BACKEND_DNNL, 1e-2, 2e-3);
}
END_TEST

START_TEST(conv_noncontiguous)
{
    spec s = conv_cases(_i == 0 ? 0 : 6);
    s.noncontig_x = true;
    gradcheck(&s, DGM_BACKEND_REF, 1e-2, 2e-3);
    gradcheck(&s, DGM_BACKEND_DNNL, 1e-2, 2e-3);
    ref_vs_dnnl(&s, 1e-5);
}
END_TEST

START_TEST(conv_ref_vs_dnnl)
{
    spec s = conv_cases(_i);
    ref_vs_dnnl(&s, 1e-5);
}
END_TEST

/* Larger, DCGAN- and VAE-like shapes: oneDNN takes its blocked jit paths. */
START_TEST(conv_ref_vs_dnnl_large)
{
    spec cases[4] = {
        conv_spec(do_conv, CP(2, 2, 1, 1, 1, 1, 1, 0, 0), X4(4, 16, 14, 14),
                  X4(32, 16, 4, 4), 32),
        conv_spec(do_conv, CP(2, 2, 1, 1, 1, 1, 1, 0, 0), X4(4, 1, 28, 28),
                  X4(16, 1, 4, 4), 16),
        conv_spec(do_deconv, CP(2, 2, 1, 1, 1, 1, 1, 0, 0), X4(4, 32, 7, 7),
                  X4(32, 16, 4, 4), 16),
        conv_spec(do_deconv, CP(2, 2, 1, 1, 1, 1, 1, 0, 0),
                  X4(4, 16, 14, 14), X4(16, 1, 4, 4), 1),
    };
    ref_vs_dnnl(&cases[_i], 1e-5);
}
END_TEST

/* oneDNN #6035: 1x1 stride-2 backward-weights with < 8 input channels was
 * wrong on jit_1x1:avx2 (nhwc); check what our layouts pick against ref. */
START_TEST(conv_onednn_6035)
{
    const int64_t ics[3] = {1, 3, 5};
    spec s = conv_spec(do_conv, CP(2, 2, 0, 0, 1, 1, 1, 0, 0),
                       X4(4, ics[_i], 9, 9), X4(16, ics[_i], 1, 1), 16);
    ref_vs_dnnl(&s, 1e-5);
    gradcheck(&s, DGM_BACKEND_DNNL, 1e-2, 2e-3);
}
END_TEST

/* ---- normalisation ------------------------------------------------------ */

typedef struct bn_arg {
    dgm_param *rm, *rv;
} bn_arg;

static dgm_var *do_bn(dgm_graph *g, dgm_var *const *in, const void *arg)
{
    const bn_arg *a = arg;
    return dgm_batch_norm(g, in[0], in[1], in[2], a ? a->rm : NULL,
                          a ? a->rv : NULL, 0.1f, 1e-5f);
}
static dgm_var *do_bn_plain(dgm_graph *g, dgm_var *const *in, const void *arg)
{
    return dgm_batch_norm(g, in[0], NULL, NULL, NULL, NULL, 0.1f, 1e-5f);
}
static dgm_var *do_ln(dgm_graph *g, dgm_var *const *in, const void *arg)
{
    return dgm_layer_norm(g, in[0], in[1], in[2], 1e-5f);
}
static dgm_var *do_ln_plain(dgm_graph *g, dgm_var *const *in, const void *arg)
{
    return dgm_layer_norm(g, in[0], NULL, NULL, 1e-5f);
}

static spec norm_spec(op_fn fn, int nd, const int64_t *x, int64_t c, int nin)
{
    spec s = {.nin = nin, .fn = fn};
    s.ndim[0] = nd;
    memcpy(s.shape[0], x, (size_t)nd * sizeof *x);
    for (int i = 0; i < nin; i++)
        s.grad[i] = true;
    for (int i = 1; i < nin; i++) {
        s.ndim[i] = 1;
        s.shape[i][0] = c;
    }
    return s;
}

START_TEST(norm_gradcheck)
{
    dgm_params *ps = dgm_params_new();
    int64_t c3[1] = {3};
    bn_arg a = {0};
    ck_assert_int_eq(dgm_params_add(ps, "rm", DGM_ROLE_BUFFER, 1, c3, &a.rm), 0);
    ck_assert_int_eq(dgm_params_add(ps, "rv", DGM_ROLE_BUFFER, 1, c3, &a.rv), 0);
    for (int j = 0; j < 3; j++) {
        dgm_tensor_set(a.rm->value, j, 0.1 * j - 0.05);
        dgm_tensor_set(a.rv->value, j, 0.5 + 0.3 * j);
    }
    spec cases[7] = {
        norm_spec(do_bn, 4, X4(3, 3, 3, 2), 3, 3),
        norm_spec(do_bn, 2, X4(5, 3, 0, 0), 3, 3),
        norm_spec(do_bn_plain, 4, X4(2, 3, 2, 2), 3, 1),
        norm_spec(do_bn, 4, X4(2, 3, 2, 2), 3, 3), /* eval */
        norm_spec(do_ln, 2, X4(4, 5, 0, 0), 5, 3),
        norm_spec(do_ln, 3, X4(2, 3, 6, 0), 6, 3),
        norm_spec(do_ln_plain, 2, X4(3, 7, 0, 0), 7, 1),
    };
    cases[0].arg = cases[1].arg = cases[3].arg = &a;
    cases[3].eval = true;
    /* training steps move the running stats; their values do not enter the
     * training-mode output, so finite differences stay consistent */
    gradcheck(&cases[_i], DGM_BACKEND_REF, 3e-3, 3e-3);
    gradcheck(&cases[_i], DGM_BACKEND_DNNL, 3e-3, 3e-3);
    ref_vs_dnnl(&cases[_i], 1e-5);
    dgm_params_free(ps);
}
END_TEST

/* Same formula as make_x() in tests/reference/bn_running_stats.py. */
static dgm_tensor *bn_input(int nd, const int64_t *shape, int step)
{
    dgm_tensor *t = dgm_tensor_new(DGM_F32, nd, shape);
    for (int64_t i = 0; i < dgm_tensor_numel(t); i++)
        dgm_tensor_set(t, i, (float)(sin(0.37 * (double)i + step) * 2.0 +
                                     0.3 * (double)((i * 7) % 5)));
    return t;
}

/* Numbers printed by tests/reference/bn_running_stats.py (PyTorch 2.x,
 * momentum 0.1, eps 1e-5, two training steps then eval). */
static const float BN4_RM[3] = {1.7054927e-01f, 1.2392940e-01f,
                                5.9251368e-02f};
static const float BN4_RV[3] = {1.2615037e+00f, 1.2343566e+00f,
                                1.2439280e+00f};
static const float BN4_Y0[6] = {-5.8214784e-01f, 2.9641938e-01f,
                                1.1099946e+00f,  8.0644816e-01f,
                                8.0771053e-01f,  4.7999164e-01f};
static const float BN4_Y2[6] = {1.4673145e+00f, 1.6239786e+00f,
                                1.6125948e+00f, 1.7150146e-01f,
                                1.5044922e-01f, -5.4138309e-01f};
static const float BN2_RM[3] = {1.3137501e-01f, 1.1503689e-01f,
                                9.8558456e-02f};
static const float BN2_RV[3] = {1.1201421e+00f, 1.5389509e+00f,
                                1.3677423e+00f};
static const float BN2_Y0[6] = {-7.0809060e-01f, 2.6034957e-01f,
                                2.4457517e+00f,  1.1051021e+00f,
                                6.9351143e-01f,  1.5737528e+00f};
static const float BN2_Y2[6] = {1.5941646e+00f, 8.5753524e-01f,
                                3.0205147e+00f, 2.1901534e-01f,
                                1.4876582e-01f, -2.5938392e+00f};

START_TEST(bn_running_stats_vs_torch)
{
    const bool four = _i % 2 == 0;
    const dgm_backend be = _i < 2 ? DGM_BACKEND_REF : DGM_BACKEND_DNNL;
    const int nd = four ? 4 : 2;
    const int64_t *shape = four ? X4(4, 3, 2, 2) : X4(5, 3, 0, 0);
    const float *rm_want = four ? BN4_RM : BN2_RM,
                *rv_want = four ? BN4_RV : BN2_RV,
                *y0_want = four ? BN4_Y0 : BN2_Y0,
                *y2_want = four ? BN4_Y2 : BN2_Y2;
    dgm_params *ps = dgm_params_new();
    int64_t c3[1] = {3};
    dgm_param *rm, *rv, *gamma, *beta;
    ck_assert_int_eq(dgm_params_add(ps, "rm", DGM_ROLE_BUFFER, 1, c3, &rm), 0);
    ck_assert_int_eq(dgm_params_add(ps, "rv", DGM_ROLE_BUFFER, 1, c3, &rv), 0);
    ck_assert_int_eq(dgm_params_add(ps, "g", DGM_ROLE_WEIGHT, 1, c3, &gamma),
                     0);
    ck_assert_int_eq(dgm_params_add(ps, "b", DGM_ROLE_WEIGHT, 1, c3, &beta),
                     0);
    dgm_tensor_fill(rv->value, 1.0); /* PyTorch's initial running_var */
    const float gv[3] = {1.0f, 0.5f, 2.0f}, bv[3] = {0.0f, 0.1f, -0.2f};
    for (int j = 0; j < 3; j++) {
        dgm_tensor_set(gamma->value, j, gv[j]);
        dgm_tensor_set(beta->value, j, bv[j]);
    }
    dgm_graph *g = dgm_graph_new();
    dgm_graph_set_backend(g, be);
    for (int step = 0; step < 3; step++) {
        dgm_graph_reset(g);
        dgm_graph_set_training(g, step < 2);
        dgm_tensor *x = bn_input(nd, shape, step);
        dgm_var *y = dgm_batch_norm(g, dgm_input(g, x), dgm_param_var(g, gamma),
                                    dgm_param_var(g, beta), rm, rv, 0.1f,
                                    1e-5f);
        ck_assert_msg(y != NULL, "%s", dgm_last_error());
        const float *want = step == 0 ? y0_want : step == 2 ? y2_want : NULL;
        for (int k = 0; want && k < 6; k++)
            ck_assert_msg(fabs(dgm_tensor_get(dgm_value(y), k) - want[k]) <=
                              2e-5 * (1.0 + fabs(want[k])),
                          "step %d y[%d] = %.7g, torch %.7g", step, k,
                          dgm_tensor_get(dgm_value(y), k), want[k]);
        if (step == 1)
            for (int j = 0; j < 3; j++) {
                ck_assert_msg(fabs(dgm_tensor_get(rm->value, j) - rm_want[j]) <=
                                  1e-6,
                              "running_mean[%d] = %.7g, torch %.7g", j,
                              dgm_tensor_get(rm->value, j), rm_want[j]);
                ck_assert_msg(fabs(dgm_tensor_get(rv->value, j) - rv_want[j]) <=
                                  2e-6,
                              "running_var[%d] = %.7g, torch %.7g", j,
                              dgm_tensor_get(rv->value, j), rv_want[j]);
            }
        dgm_graph_reset(g);
        dgm_tensor_free(x);
    }
    /* eval leaves the running stats alone */
    ck_assert(fabs(dgm_tensor_get(rm->value, 0) - rm_want[0]) <= 1e-6);
    dgm_graph_free(g);
    dgm_params_free(ps);
}
END_TEST

/* ---- pooling and upsampling -------------------------------------------- */

typedef struct pool_arg {
    int kind; /* 0 max, 1 avg, 2 upsample */
    int k, s, p;
} pool_arg;

static dgm_var *do_pool(dgm_graph *g, dgm_var *const *in, const void *arg)
{
    const pool_arg *a = arg;
    if (a->kind == 0)
        return dgm_max_pool2d(g, in[0], a->k, a->s, a->p);
    if (a->kind == 1)
        return dgm_avg_pool2d(g, in[0], a->k, a->s, a->p);
    return dgm_upsample_nearest2d(g, in[0], a->k);
}

static const pool_arg POOLS[6] = {{0, 2, 2, 0}, {0, 3, 2, 1}, {1, 2, 2, 0},
                                  {1, 3, 2, 1}, {2, 2, 0, 0}, {2, 3, 0, 0}};

START_TEST(pool_gradcheck)
{
    spec s = {.nin = 1, .fn = do_pool, .arg = &POOLS[_i], .grad = {true}};
    s.ndim[0] = 4;
    memcpy(s.shape[0], _i % 2 ? X4(1, 3, 7, 7) : X4(2, 2, 6, 6),
           4 * sizeof(int64_t));
    s.distinct_x = POOLS[_i].kind == 0;
    gradcheck(&s, DGM_BACKEND_REF, 1e-3, 2e-3);
    gradcheck(&s, DGM_BACKEND_DNNL, 1e-3, 2e-3);
    ref_vs_dnnl(&s, 1e-6);
}
END_TEST

/* avg_pool2d counts padding (PyTorch's count_include_pad=True): a corner
 * window of a 3x3 kernel with pad 1 on ones averages 4 ones over 9, an
 * edge window 6 over 9, an inner one 9 over 9. */
START_TEST(avg_pool_counts_padding)
{
    for (int be = 0; be < 2; be++) {
        dgm_graph *g = dgm_graph_new();
        dgm_graph_set_backend(g, be ? DGM_BACKEND_REF : DGM_BACKEND_DNNL);
        dgm_tensor *x = dgm_tensor_new(DGM_F32, 4, X4(1, 1, 4, 4));
        dgm_tensor_fill(x, 1.0);
        dgm_var *y = dgm_avg_pool2d(g, dgm_input(g, x), 3, 2, 1);
        ck_assert_ptr_nonnull(y);
        ck_assert_int_eq(dgm_value(y)->shape[2], 2);
        ck_assert_float_eq_tol(dgm_tensor_get(dgm_value(y), 0), 4.0 / 9.0,
                               1e-6);
        ck_assert_float_eq_tol(dgm_tensor_get(dgm_value(y), 1), 6.0 / 9.0,
                               1e-6);
        ck_assert_float_eq_tol(dgm_tensor_get(dgm_value(y), 3), 1.0, 1e-6);
        dgm_tensor_free(x);
        dgm_graph_free(g);
    }
}
END_TEST

/* ---- bad input ----------------------------------------------------------- */

static void expect_fail(dgm_graph *g, dgm_var *v, int code, const char *a,
                        const char *b)
{
    ck_assert_msg(v == NULL, "expected failure naming '%s' '%s'", a, b);
    ck_assert_int_eq(dgm_last_code(), code);
    ck_assert_msg(strstr(dgm_last_error(), a) && strstr(dgm_last_error(), b),
                  "message '%s' should name '%s' and '%s'", dgm_last_error(),
                  a, b);
    ck_assert_int_eq(dgm_graph_status(g), code);
    dgm_graph_reset(g);
}

START_TEST(bad_input)
{
    dgm_graph *g = dgm_graph_new();
    dgm_tensor *x = dgm_tensor_new(DGM_F32, 4, X4(2, 3, 6, 5));
    dgm_tensor *w = dgm_tensor_new(DGM_F32, 4, X4(4, 2, 3, 3));
    dgm_tensor *w2 = dgm_tensor_new(DGM_F32, 4, X4(3, 2, 3, 3));
    int64_t c5[1] = {5};
    dgm_tensor *v5 = dgm_tensor_new(DGM_F32, 1, c5);
    dgm_tensor *x2 = dgm_tensor_new(DGM_F32, 2, X4(4, 3, 0, 0));
    const dgm_conv_params *p = CP(1, 1, 1, 1, 1, 1, 1, 0, 0);

    expect_fail(g, dgm_conv2d(g, dgm_input(g, x), dgm_input(g, w), NULL, p),
                DGM_ESHAPE, "conv2d: x [2, 3, 6, 5]", "w [4, 2, 3, 3]");
    expect_fail(g,
                dgm_conv2d(g, dgm_input(g, x), dgm_input(g, w2),
                           dgm_input(g, v5), CP(1, 1, 1, 1, 1, 1, 1, 0, 0)),
                DGM_ESHAPE, "conv2d", "[2, 3, 6, 5]");
    expect_fail(g, dgm_conv2d(g, dgm_input(g, x2), dgm_input(g, w), NULL, p),
                DGM_ESHAPE, "conv2d", "[4, 3]");
    expect_fail(g,
                dgm_conv2d(g, dgm_input(g, x), dgm_input(g, w), NULL,
                           CP(0, 1, 1, 1, 1, 1, 1, 0, 0)),
                DGM_EINVAL, "conv2d", "stride (0, 1)");
    expect_fail(g,
                dgm_conv_transpose2d(g, dgm_input(g, x), dgm_input(g, w2),
                                     NULL, CP(2, 2, 1, 1, 1, 1, 1, 2, 0)),
                DGM_EINVAL, "conv_transpose2d", "output_pad (2, 0)");
    expect_fail(g,
                dgm_conv_transpose2d(g, dgm_input(g, x), dgm_input(g, w),
                                     NULL, p),
                DGM_ESHAPE, "conv_transpose2d", "w [4, 2, 3, 3]");
    expect_fail(g,
                dgm_batch_norm(g, dgm_input(g, x), dgm_input(g, v5), NULL,
                               NULL, NULL, 0.1f, 1e-5f),
                DGM_ESHAPE, "batch_norm: gamma [5]", "[2, 3, 6, 5]");
    expect_fail(g, dgm_layer_norm(g, dgm_input(g, x2), NULL, dgm_input(g, v5),
                                  1e-5f),
                DGM_ESHAPE, "layer_norm: beta [5]", "x [4, 3]");
    expect_fail(g, dgm_max_pool2d(g, dgm_input(g, x), 2, 2, 2), DGM_EINVAL,
                "max_pool2d", "pad 2");
    expect_fail(g, dgm_avg_pool2d(g, dgm_input(g, x2), 2, 2, 0), DGM_ESHAPE,
                "avg_pool2d", "[4, 3]");
    expect_fail(g, dgm_upsample_nearest2d(g, dgm_input(g, x), 0), DGM_EINVAL,
                "upsample_nearest2d", "scale 0");
    /* a NULL input passes through without touching the message */
    dgm_error(DGM_EIO, "earlier");
    ck_assert_ptr_null(dgm_conv2d(g, NULL, dgm_input(g, w), NULL, p));
    ck_assert_str_eq(dgm_last_error(), "earlier");
    dgm_tensor_free(x);
    dgm_tensor_free(w);
    dgm_tensor_free(w2);
    dgm_tensor_free(v5);
    dgm_tensor_free(x2);
    dgm_graph_free(g);
}
END_TEST

static Suite *ops_conv_suite(void)
{
    Suite *s = suite_create("ops_conv");
    TCase *tc;
    tc = tcase_create("conv_gradcheck");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, conv_gradcheck, 0, N_CONV_CASES);
    tcase_add_loop_test(tc, conv_noncontiguous, 0, 2);
    suite_add_tcase(s, tc);
    tc = tcase_create("conv_ref_vs_dnnl");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, conv_ref_vs_dnnl, 0, N_CONV_CASES);
    tcase_add_loop_test(tc, conv_ref_vs_dnnl_large, 0, 4);
    tcase_add_loop_test(tc, conv_onednn_6035, 0, 3);
    suite_add_tcase(s, tc);
    tc = tcase_create("norm");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, norm_gradcheck, 0, 7);
    tcase_add_loop_test(tc, bn_running_stats_vs_torch, 0, 4);
    suite_add_tcase(s, tc);
    tc = tq_case(s, "pool", avg_pool_counts_padding);
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, pool_gradcheck, 0, 6);
    tq_case(s, "errors", bad_input);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(ops_conv_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
