/* test_ops_dense.c - linear, linear + GELU and matmul: finite-difference
 * gradients, oneDNN against the C reference, the fused linear + GELU
 * against the composition, shape errors, a small MLP trained on both
 * backends, and a steady-state step that allocates nothing. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ck_run.h"
#include "dgm/dgm.h"
#include "gradcheck.h"
#include "vmath.h"

/* ---- builders ---------------------------------------------------------- */

typedef struct lin_ctx {
    bool bias, transpose_x; /* x given as [in, N] and transposed (a view) */
} lin_ctx;

static dgm_var *build_linear(dgm_graph *g, dgm_var **l, void *vctx)
{
    lin_ctx *c = vctx;
    dgm_var *x = c->transpose_x ? dgm_transpose(g, l[0], 0, 1) : l[0];
    return dgm_linear(g, x, l[1], c->bias ? l[2] : NULL);
}

typedef struct mm_ctx {
    bool ta, tb;
} mm_ctx;

static dgm_var *build_matmul(dgm_graph *g, dgm_var **l, void *vctx)
{
    mm_ctx *c = vctx;
    return dgm_matmul(g, l[0], l[1], c->ta, c->tb);
}

/* The same weight used twice: its gradient must accumulate both uses. */
static dgm_var *build_shared(dgm_graph *g, dgm_var **l, void *vctx)
{
    return dgm_add(g, dgm_linear(g, l[0], l[1], l[2]),
                   dgm_tanh(g, dgm_linear(g, l[3], l[1], NULL)));
}

static void check_linear(int64_t n, int64_t in, int64_t out, bool bias,
                         bool tx, uint64_t seed)
{
    lin_ctx c = {bias, tx};
    int64_t xs[2] = {tx ? in : n, tx ? n : in}, ws[2] = {out, in},
            bs[1] = {out};
    dgm_tensor *t[3] = {gc_randn(2, xs, seed), gc_randn(2, ws, seed + 1),
                        gc_randn(1, bs, seed + 2)};
    bool need[3] = {true, true, true};
    for (int b = 0; b < 2; b++) {
        gc_result r = gc_gradcheck(build_linear, &c, bias ? 3 : 2, t, need,
                                   b ? DGM_BACKEND_DNNL : DGM_BACKEND_REF,
                                   1e-2, 2e-2, 2e-3);
        ck_assert_msg(r.ok, "linear n=%lld in=%lld out=%lld bias=%d tx=%d "
                            "backend %d: %s",
                      (long long)n, (long long)in, (long long)out, bias, tx,
                      b, gc_describe(&r));
    }
    for (int i = 0; i < 3; i++)
        dgm_tensor_free(t[i]);
}

START_TEST(linear_gradients)
{
    check_linear(1, 3, 2, true, false, 1);   /* batch 1 */
    check_linear(5, 7, 4, true, false, 10);
    check_linear(5, 7, 4, false, false, 20); /* no bias */
    check_linear(6, 5, 3, true, true, 30);   /* transposed view as x */
    check_linear(20, 24, 18, true, false, 40); /* big enough for oneDNN */
    for (int b = 0; b < 2; b++) {
        int64_t n = b ? 20 : 3, in = b ? 24 : 4, out = b ? 18 : 5;
        dgm_tensor *t[4] = {gc_randn(2, (int64_t[]){n, in}, 50),
                            gc_randn(2, (int64_t[]){out, in}, 51),
                            gc_randn(1, (int64_t[]){out}, 52),
                            gc_randn(2, (int64_t[]){n, in}, 53)};
        bool need[4] = {true, true, true, true};
        gc_result r = gc_gradcheck(build_shared, NULL, 4, t, need,
                                   b ? DGM_BACKEND_DNNL : DGM_BACKEND_REF,
                                   1e-2, 2e-2, 2e-3);
        ck_assert_msg(r.ok, "shared weight, backend %d: %s", b,
                      gc_describe(&r));
        for (int i = 0; i < 4; i++)
            dgm_tensor_free(t[i]);
    }
}
END_TEST

static void check_matmul(int nd_a, const int64_t *as, int nd_b,
                         const int64_t *bs, bool ta, bool tb, uint64_t seed)
{
    mm_ctx c = {ta, tb};
    dgm_tensor *t[2] = {gc_randn(nd_a, as, seed), gc_randn(nd_b, bs, seed + 1)};
    bool need[2] = {true, true};
    for (int b = 0; b < 2; b++) {
        gc_result r = gc_gradcheck(build_matmul, &c, 2, t, need,
                                   b ? DGM_BACKEND_DNNL : DGM_BACKEND_REF,
                                   1e-2, 2e-2, 2e-3);
        ck_assert_msg(r.ok, "matmul ta=%d tb=%d backend %d: %s", ta, tb, b,
                      gc_describe(&r));
    }
    dgm_tensor_free(t[0]);
    dgm_tensor_free(t[1]);
}

START_TEST(matmul_gradients)
{
    /* [M, K] x [K, P] with every transpose combination */
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            int64_t as[2] = {ta ? 4 : 3, ta ? 3 : 4};
            int64_t bs[2] = {tb ? 5 : 4, tb ? 4 : 5};
            check_matmul(2, as, 2, bs, ta, tb, 100 + 10 * ta + tb);
        }
    /* batched, equal batch dims */
    check_matmul(3, (int64_t[]){2, 3, 4}, 3, (int64_t[]){2, 4, 5}, false,
                 false, 200);
    check_matmul(4, (int64_t[]){2, 2, 4, 3}, 4, (int64_t[]){2, 2, 5, 4}, true,
                 true, 210);
    /* one side without batch dims: shared by every batch */
    check_matmul(3, (int64_t[]){3, 2, 4}, 2, (int64_t[]){4, 5}, false, false,
                 220);
    check_matmul(3, (int64_t[]){3, 4, 2}, 2, (int64_t[]){5, 4}, true, true,
                 230);
    check_matmul(2, (int64_t[]){2, 4}, 3, (int64_t[]){3, 4, 5}, false, false,
                 240);
    /* batch 1, M = 1 */
    check_matmul(3, (int64_t[]){1, 1, 6}, 3, (int64_t[]){1, 6, 2}, false,
                 false, 250);
}
END_TEST

START_TEST(backends_agree_at_real_sizes)
{
    lin_ctx lc = {true, false};
    dgm_tensor *lt[3] = {gc_randn(2, (int64_t[]){128, 300}, 1),
                         gc_randn(2, (int64_t[]){200, 300}, 2),
                         gc_randn(1, (int64_t[]){200}, 3)};
    bool need[3] = {true, true, true};
    gc_result r = gc_compare_backends(build_linear, &lc, 3, lt, need, 1e-4,
                                      1e-4);
    ck_assert_msg(r.ok, "linear: %s", gc_describe(&r));
    for (int i = 0; i < 3; i++)
        dgm_tensor_free(lt[i]);
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            mm_ctx mc = {ta, tb};
            dgm_tensor *mt[2] = {
                gc_randn(3, (int64_t[]){4, ta ? 50 : 40, ta ? 40 : 50}, 7),
                gc_randn(3, (int64_t[]){4, tb ? 30 : 50, tb ? 50 : 30}, 8)};
            r = gc_compare_backends(build_matmul, &mc, 2, mt, need, 1e-4,
                                    1e-4);
            ck_assert_msg(r.ok, "matmul ta=%d tb=%d: %s", ta, tb,
                          gc_describe(&r));
            dgm_tensor_free(mt[0]);
            dgm_tensor_free(mt[1]);
        }
}
END_TEST

/* ---- linear + GELU ------------------------------------------------------ */

static dgm_var *build_linear_gelu(dgm_graph *g, dgm_var **l, void *vctx)
{
    lin_ctx *c = vctx;
    dgm_var *x = c->transpose_x ? dgm_transpose(g, l[0], 0, 1) : l[0];
    return dgm_linear_gelu(g, x, l[1], c->bias ? l[2] : NULL);
}

/* What the transformer block ran before the fused op. */
static dgm_var *build_linear_then_gelu(dgm_graph *g, dgm_var **l, void *vctx)
{
    lin_ctx *c = vctx;
    return dgm_gelu(g, dgm_linear(g, l[0], l[1], c->bias ? l[2] : NULL));
}

static void check_linear_gelu(int64_t n, int64_t in, int64_t out, bool bias,
                              bool tx, uint64_t seed)
{
    lin_ctx c = {bias, tx};
    int64_t xs[2] = {tx ? in : n, tx ? n : in}, ws[2] = {out, in},
            bs[1] = {out};
    /* x and w of unit scale put z across GELU's curved middle and both
     * tails */
    dgm_tensor *t[3] = {gc_randn(2, xs, seed), gc_randn(2, ws, seed + 1),
                        gc_randn(1, bs, seed + 2)};
    for (int b = 0; b < 2; b++) {
        gc_result r = gc_gradcheck(build_linear_gelu, &c, bias ? 3 : 2, t, NULL,
                                   b ? DGM_BACKEND_DNNL : DGM_BACKEND_REF, 1e-3,
                                   1e-2, 1e-3);
        ck_assert_msg(r.ok,
                      "linear_gelu n=%lld in=%lld out=%lld bias=%d "
                      "tx=%d backend %d: %s",
                      (long long)n, (long long)in, (long long)out, bias, tx, b,
                      gc_describe(&r));
    }
    for (int i = 0; i < 3; i++)
        dgm_tensor_free(t[i]);
}

START_TEST(linear_gelu_gradients)
{
    check_linear_gelu(1, 3, 2, true, false, 300);
    check_linear_gelu(5, 7, 4, false, false, 310); /* no bias */
    check_linear_gelu(6, 5, 3, true, true, 320);   /* transposed view as x */
    /* 70 rows: two blocks of the bias gradient's partial sums, the last
     * one short (oneDNN's GEMM: linear_gelu_matches_the_composition) */
    check_linear_gelu(70, 6, 5, true, false, 330);
    /* only w needs a gradient: x and b get none */
    lin_ctx c = {true, false};
    dgm_tensor *t[3] = {gc_randn(2, (int64_t[]){4, 3}, 340),
                        gc_randn(2, (int64_t[]){5, 3}, 341),
                        gc_randn(1, (int64_t[]){5}, 342)};
    bool need[3] = {false, true, false};
    gc_result r = gc_gradcheck(build_linear_gelu, &c, 3, t, need,
                               DGM_BACKEND_REF, 1e-3, 1e-2, 1e-3);
    ck_assert_msg(r.ok, "w only: %s", gc_describe(&r));
    for (int i = 0; i < 3; i++)
        dgm_tensor_free(t[i]);
}
END_TEST

static double max_abs(const dgm_tensor *t)
{
    const float *p = dgm_tensor_f32(t);
    double m = 0;
    for (int64_t i = 0; i < dgm_tensor_numel(t); i++)
        m = fabs(p[i]) > m ? fabs(p[i]) : m;
    return m;
}

/* Values and the three gradients of loss = sum(y * w'), fused against
 * linear then gelu, on both backends, at the char transformer's MLP
 * (rows 512 of its 2048, 128 -> 512), where the unfused gelu runs
 * oneDNN's eltwise on the oneDNN backend and glibc's erff on the
 * reference one. */
START_TEST(linear_gelu_matches_the_composition)
{
    const int64_t N = 512, I = 128, O = 512;
    dgm_tensor *t[3] = {gc_randn(2, (int64_t[]){N, I}, 400),
                        gc_rand(2, (int64_t[]){O, I}, 401, -0.2f, 0.2f),
                        gc_randn(1, (int64_t[]){O}, 402)};
    dgm_tensor *wt = gc_rand(2, (int64_t[]){N, O}, 403, 0.5f, 1.5f);
    lin_ctx c = {true, false};
    for (int be = 0; be < 2; be++) {
        dgm_tensor *y[2], *gr[2][3];
        dgm_graph *gs[2];
        for (int f = 0; f < 2; f++) {
            dgm_graph *g = gs[f] = dgm_graph_new();
            dgm_graph_set_backend(g, be ? DGM_BACKEND_DNNL : DGM_BACKEND_REF);
            dgm_var *in[3];
            for (int i = 0; i < 3; i++)
                in[i] = dgm_leaf(g, t[i], true);
            dgm_var *out =
                (f ? build_linear_then_gelu : build_linear_gelu)(g, in, &c);
            dgm_var *loss = dgm_sum_all(g, dgm_mul(g, out, dgm_input(g, wt)));
            ck_assert_msg(loss != NULL, "%s", dgm_last_error());
            ck_assert_int_eq(dgm_backward(g, loss), 0);
            y[f] = dgm_value(out);
            for (int i = 0; i < 3; i++)
                gr[f][i] = dgm_grad(in[i]);
        }
        /* 1e-6 relative; the absolute floor is for GELU's left tail, where
         * y is near 0: 1 + erff(x) in float loses relative precision there
         * (1e-7), and oneDNN's gelu_erf takes erf from Abramowitz & Stegun
         * 7.1.26 (within 1.5e-7 of erf, so up to 5e-7 off at v = -3) */
        gc_result r = gc_compare_tensors(y[0], y[1], 1e-6, be ? 6e-7 : 1e-7);
        ck_assert_msg(r.ok, "backend %d, values: %s", be, gc_describe(&r));
        /* A gradient element is a sum of 128 to 512 terms of both signs:
         * the absolute floor is 1e-6 of the tensor's largest element, so a
         * sum that cancels to near 0 is held to its terms' precision. */
        for (int i = 0; i < 3; i++) {
            r = gc_compare_tensors(gr[0][i], gr[1][i], 1e-6,
                                   1e-6 * max_abs(gr[1][i]));
            ck_assert_msg(r.ok, "backend %d, gradient of %s: %s", be,
                          (const char *[]){"x", "w", "b"}[i], gc_describe(&r));
        }
        dgm_graph_free(gs[0]);
        dgm_graph_free(gs[1]);
    }
    bool need[3] = {true, true, true};
    /* the GEMMs sum 512 products in another order (as for linear) */
    gc_result r =
        gc_compare_backends(build_linear_gelu, &c, 3, t, need, 1e-4, 2e-4);
    ck_assert_msg(r.ok, "linear_gelu, reference vs oneDNN: %s",
                  gc_describe(&r));
    for (int i = 0; i < 3; i++)
        dgm_tensor_free(t[i]);
    dgm_tensor_free(wt);
}
END_TEST

/* A weight shared by linear_gelu and linear: its gradient takes both
 * contributions (the second accumulates into the first's). */
static dgm_var *build_gelu_shared(dgm_graph *g, dgm_var **l, void *vctx)
{
    return dgm_add(g, dgm_linear_gelu(g, l[0], l[1], l[2]),
                   dgm_linear(g, l[3], l[1], NULL));
}

/* y = gelu(x w^T + b) in float64 (erf form), [N, O] into y. */
static void linear_gelu_f64(const dgm_tensor *x, const dgm_tensor *w,
                            const dgm_tensor *b, double *y)
{
    const int64_t N = x->shape[0], I = x->shape[1], O = w->shape[0];
    const float *xp = dgm_tensor_f32(x), *wp = dgm_tensor_f32(w),
                *bp = b ? dgm_tensor_f32(b) : NULL;
    for (int64_t i = 0; i < N; i++)
        for (int64_t o = 0; o < O; o++) {
            double z = bp ? bp[o] : 0.0;
            for (int64_t k = 0; k < I; k++)
                z += (double)xp[i * I + k] * wp[o * I + k];
            y[i * O + o] = z * 0.5 * erfc(-z / sqrt(2.0));
        }
}

/* The forward runs in blocks of 64 rows, one GEMM and GELU pass per block
 * on one thread: row counts around the block size and a single row, with
 * and without a tape, on both backends and 1 or 2 threads, against
 * float64; the oneDNN values the same to the bit on 1 and 2 threads (the
 * blocks are fixed); gradients, also of a weight shared with a linear,
 * against the reference backend. */
START_TEST(linear_gelu_row_blocks)
{
    const int64_t I = 40, O = 130, rows[] = {1, 63, 64, 65, 130, 200};
    const int threads = dgm_threads();
    lin_ctx c = {true, false};
    for (size_t ri = 0; ri < sizeof rows / sizeof rows[0]; ri++) {
        const int64_t N = rows[ri];
        dgm_tensor *t[4] = {
            gc_randn(2, (int64_t[]){N, I}, 500 + ri),
            gc_rand(2, (int64_t[]){O, I}, 510 + ri, -0.3f, 0.3f),
            gc_randn(1, (int64_t[]){O}, 520 + ri),
            gc_randn(2, (int64_t[]){N, I}, 530 + ri)};
        double *ref = malloc(sizeof(double) * (size_t)(N * O));
        float *first = malloc(sizeof(float) * (size_t)(N * O));
        ck_assert(ref && first);
        linear_gelu_f64(t[0], t[1], t[2], ref);
        for (int thr = 1; thr <= 2; thr++) {
            dgm_set_threads(thr);
            for (int be = 0; be < 2; be++)
                for (int tape = 0; tape < 2; tape++) {
                    dgm_graph *g = dgm_graph_new();
                    dgm_graph_set_backend(g, be ? DGM_BACKEND_DNNL
                                                : DGM_BACKEND_REF);
                    dgm_graph_set_grad(g, tape);
                    dgm_var *y = dgm_linear_gelu(g, dgm_leaf(g, t[0], tape),
                                                 dgm_leaf(g, t[1], tape),
                                                 dgm_leaf(g, t[2], tape));
                    ck_assert_msg(y != NULL, "%s", dgm_last_error());
                    const float *yp = dgm_tensor_f32(dgm_value(y));
                    for (int64_t i = 0; i < N * O; i++)
                        ck_assert_msg(fabs(yp[i] - ref[i]) <=
                                          1e-5 * fabs(ref[i]) + 2e-6,
                                      "N %lld threads %d backend %d tape %d "
                                      "element %lld: %.9g, float64 %.9g",
                                      (long long)N, thr, be, tape, (long long)i,
                                      yp[i], ref[i]);
                    if (be && tape && thr == 1)
                        memcpy(first, yp, sizeof(float) * (size_t)(N * O));
                    else if (be && tape)
                        ck_assert_msg(
                            !memcmp(first, yp, sizeof(float) * (size_t)(N * O)),
                            "N %lld: 1 and 2 threads differ", (long long)N);
                    dgm_graph_free(g);
                }
        }
        dgm_set_threads(threads);
        bool need[4] = {true, true, true, true};
        gc_result r =
            gc_compare_backends(build_linear_gelu, &c, 3, t, need, 1e-4, 1e-4);
        ck_assert_msg(r.ok, "N %lld, reference vs oneDNN: %s", (long long)N,
                      gc_describe(&r));
        r = gc_compare_backends(build_gelu_shared, NULL, 4, t, need, 1e-4,
                                1e-4);
        ck_assert_msg(r.ok, "N %lld, shared weight: %s", (long long)N,
                      gc_describe(&r));
        free(ref);
        free(first);
        for (int i = 0; i < 4; i++)
            dgm_tensor_free(t[i]);
    }
}
END_TEST

/* On oneDNN the forward runs one matmul primitive per row block with w
 * reordered into the primitive's own layout at each forward, by each
 * thread: at fc1's width (128 -> 512, where that layout is blocked), with
 * and without bias, a short last block, 1 and 2 threads bit-equal, against
 * float64; then w changed in place between two forwards (an optimizer
 * step): the second forward must see the new w, not a stale copy; and the
 * gradients against the reference backend. */
START_TEST(linear_gelu_blocked_weights)
{
    const int64_t N = 130, I = 128, O = 512;
    const int threads = dgm_threads();
    dgm_tensor *t[3] = {gc_randn(2, (int64_t[]){N, I}, 560),
                        gc_rand(2, (int64_t[]){O, I}, 561, -0.2f, 0.2f),
                        gc_randn(1, (int64_t[]){O}, 562)};
    double *ref = malloc(sizeof(double) * (size_t)(N * O));
    float *first = malloc(sizeof(float) * (size_t)(N * O));
    ck_assert(ref && first);
    for (int bias = 0; bias < 2; bias++)
        for (int step = 0; step < 2; step++) {
            if (step) { /* an update in place, as the optimizer makes */
                float *wp = dgm_tensor_f32(t[1]);
                for (int64_t i = 0; i < O * I; i++)
                    wp[i] = -0.5f * wp[i] + 0.01f;
            }
            linear_gelu_f64(t[0], t[1], bias ? t[2] : NULL, ref);
            for (int thr = 1; thr <= 2; thr++) {
                dgm_set_threads(thr);
                dgm_graph *g = dgm_graph_new();
                dgm_graph_set_backend(g, DGM_BACKEND_DNNL);
                dgm_var *y = dgm_linear_gelu(
                    g, dgm_leaf(g, t[0], true), dgm_leaf(g, t[1], true),
                    bias ? dgm_leaf(g, t[2], true) : NULL);
                ck_assert_msg(y != NULL, "%s", dgm_last_error());
                const float *yp = dgm_tensor_f32(dgm_value(y));
                for (int64_t i = 0; i < N * O; i++)
                    ck_assert_msg(fabs(yp[i] - ref[i]) <=
                                      1e-5 * fabs(ref[i]) + 2e-6,
                                  "bias %d step %d threads %d element %lld: "
                                  "%.9g, float64 %.9g",
                                  bias, step, thr, (long long)i, yp[i], ref[i]);
                if (thr == 1)
                    memcpy(first, yp, sizeof(float) * (size_t)(N * O));
                else
                    ck_assert_msg(
                        !memcmp(first, yp, sizeof(float) * (size_t)(N * O)),
                        "bias %d step %d: 1 and 2 threads differ", bias, step);
                dgm_graph_free(g);
            }
            dgm_set_threads(threads);
        }
    bool need[3] = {true, true, true};
    for (int bias = 0; bias < 2; bias++) {
        lin_ctx c = {bias, false};
        gc_result r = gc_compare_backends(build_linear_gelu, &c, bias ? 3 : 2,
                                          t, need, 1e-4, 2e-4);
        ck_assert_msg(r.ok, "bias %d, reference vs oneDNN: %s", bias,
                      gc_describe(&r));
    }
    free(ref);
    free(first);
    for (int i = 0; i < 3; i++)
        dgm_tensor_free(t[i]);
}
END_TEST

/* The bias gradient of linear and linear_gelu is a column sum of the
 * output's gradient, in parallel partial sums over blocks of 64 rows: at
 * rows around the block, as a leaf's gradient (added to: a second
 * backward doubles it) and through an affine (the first contribution
 * stores), against float64; 1 and 2 threads give the same bits. */
START_TEST(bias_gradient_blocks)
{
    const int64_t I = 8, O = 50, rows[] = {1, 64, 65, 200};
    const int threads = dgm_threads();
    for (size_t ri = 0; ri < sizeof rows / sizeof rows[0]; ri++) {
        const int64_t N = rows[ri];
        dgm_tensor *x = gc_randn(2, (int64_t[]){N, I}, 600 + ri),
                   *w = gc_randn(2, (int64_t[]){O, I}, 610 + ri),
                   *b = gc_randn(1, (int64_t[]){O}, 620 + ri),
                   *wt = gc_randn(2, (int64_t[]){N, O}, 630 + ri);
        for (int op = 0; op < 2; op++) {
            /* loss = sum(y * wt): dy = wt, so db = wt's column sums (for
             * linear_gelu, of wt * gelu'(z), recomputed here) */
            double ref[50];
            const float *xp = dgm_tensor_f32(x), *wp = dgm_tensor_f32(w),
                        *bp = dgm_tensor_f32(b), *tp = dgm_tensor_f32(wt);
            for (int64_t o = 0; o < O; o++) {
                ref[o] = 0;
                for (int64_t i = 0; i < N; i++) {
                    double z = bp[o], d = 1;
                    for (int64_t k = 0; k < I; k++)
                        z += (double)xp[i * I + k] * wp[o * I + k];
                    if (op)
                        d = 0.5 * erfc(-z / sqrt(2.0)) +
                            z * exp(-0.5 * z * z) / sqrt(2 * M_PI);
                    ref[o] += tp[i * O + o] * d;
                }
            }
            float first[50];
            for (int thr = 1; thr <= 2; thr++)
                for (int via = 0; via < 2; via++) {
                    dgm_set_threads(thr);
                    dgm_graph *g = dgm_graph_new();
                    dgm_var *bl = dgm_leaf(g, b, true);
                    dgm_var *bv = via ? dgm_affine(g, bl, 1.0f, 0.0f) : bl;
                    dgm_var *xv = dgm_leaf(g, x, true),
                            *wv = dgm_leaf(g, w, true);
                    dgm_var *y = op ? dgm_linear_gelu(g, xv, wv, bv)
                                    : dgm_linear(g, xv, wv, bv);
                    dgm_var *loss =
                        dgm_sum_all(g, dgm_mul(g, y, dgm_input(g, wt)));
                    ck_assert_msg(loss != NULL, "%s", dgm_last_error());
                    for (int pass = 1; pass <= 2; pass++) {
                        ck_assert_int_eq(dgm_backward(g, loss), 0);
                        const float *db = dgm_tensor_f32(dgm_grad(bl));
                        for (int64_t o = 0; o < O; o++)
                            ck_assert_msg(
                                fabs(db[o] - pass * ref[o]) <=
                                    1e-5 * fabs(pass * ref[o]) + 1e-4,
                                "op %d N %lld threads %d via %d pass %d "
                                "column %lld: %.9g, float64 %.9g",
                                op, (long long)N, thr, via, pass, (long long)o,
                                db[o], pass * ref[o]);
                        if (pass == 2)
                            continue;
                        if (thr == 1 && via == 0)
                            memcpy(first, db, sizeof first[0] * (size_t)O);
                        else
                            ck_assert_msg(
                                !memcmp(first, db, sizeof first[0] * (size_t)O),
                                "op %d N %lld threads %d via %d: other bits",
                                op, (long long)N, thr, via);
                    }
                    dgm_graph_free(g);
                }
        }
        dgm_set_threads(threads);
        dgm_tensor_free(x);
        dgm_tensor_free(w);
        dgm_tensor_free(b);
        dgm_tensor_free(wt);
    }
}
END_TEST

START_TEST(shape_errors_name_op_and_shapes)
{
    dgm_graph *g = dgm_graph_new();
    dgm_tensor *x = dgm_tensor_new(DGM_F32, 2, (int64_t[]){4, 3});
    dgm_tensor *w = dgm_tensor_new(DGM_F32, 2, (int64_t[]){5, 2});
    dgm_tensor *b = dgm_tensor_new(DGM_F32, 1, (int64_t[]){4});
    dgm_tensor *xi = dgm_tensor_new(DGM_I32, 2, (int64_t[]){4, 3});
    dgm_var *y = dgm_linear(g, dgm_input(g, x), dgm_input(g, w), NULL);
    ck_assert_ptr_null(y);
    ck_assert_int_eq(dgm_last_code(), DGM_ESHAPE);
    ck_assert_int_eq(dgm_graph_status(g), DGM_ESHAPE);
    ck_assert_msg(strstr(dgm_last_error(), "linear") &&
                      strstr(dgm_last_error(), "[4, 3]") &&
                      strstr(dgm_last_error(), "[5, 2]"),
                  "%s", dgm_last_error());
    /* an error propagates as NULL without a new message */
    ck_assert_ptr_null(dgm_relu(g, y));
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "linear"));

    dgm_graph_reset(g);
    dgm_tensor *w2 = dgm_tensor_new(DGM_F32, 2, (int64_t[]){5, 3});
    ck_assert_ptr_null(dgm_linear(g, dgm_input(g, x), dgm_input(g, w2),
                                  dgm_input(g, b)));
    ck_assert_int_eq(dgm_last_code(), DGM_ESHAPE);
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "[4]"));
    ck_assert_ptr_null(dgm_linear(g, dgm_input(g, xi), dgm_input(g, w2),
                                  NULL));
    ck_assert_int_eq(dgm_last_code(), DGM_EDTYPE);
    /* the fused op refuses the same, under its own name */
    ck_assert_ptr_null(
        dgm_linear_gelu(g, dgm_input(g, x), dgm_input(g, w2), dgm_input(g, b)));
    ck_assert_int_eq(dgm_last_code(), DGM_ESHAPE);
    ck_assert_msg(strstr(dgm_last_error(), "linear_gelu: ") &&
                      strstr(dgm_last_error(), "[4]"),
                  "%s", dgm_last_error());
    ck_assert_ptr_null(
        dgm_linear_gelu(g, dgm_input(g, xi), dgm_input(g, w2), NULL));
    ck_assert_int_eq(dgm_last_code(), DGM_EDTYPE);

    ck_assert_ptr_null(dgm_matmul(g, dgm_input(g, x), dgm_input(g, w2), false,
                                  false));
    ck_assert_int_eq(dgm_last_code(), DGM_ESHAPE);
    ck_assert_msg(strstr(dgm_last_error(), "matmul") &&
                      strstr(dgm_last_error(), "[4, 3]") &&
                      strstr(dgm_last_error(), "[5, 3]"),
                  "%s", dgm_last_error());
    /* batch dims that differ */
    dgm_tensor *a3 = dgm_tensor_new(DGM_F32, 3, (int64_t[]){2, 4, 3});
    dgm_tensor *b3 = dgm_tensor_new(DGM_F32, 3, (int64_t[]){3, 3, 4});
    ck_assert_ptr_null(dgm_matmul(g, dgm_input(g, a3), dgm_input(g, b3),
                                  false, false));
    ck_assert_int_eq(dgm_last_code(), DGM_ESHAPE);
    dgm_tensor *t[] = {x, w, b, xi, w2, a3, b3};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        dgm_tensor_free(t[i]);
    dgm_graph_free(g);
}
END_TEST

/* A 2-layer MLP trained by plain SGD on fixed data; returns the params. */
static dgm_params *train_mlp(dgm_backend backend, int steps)
{
    dgm_params *ps = dgm_params_new();
    dgm_param *w1, *b1, *w2, *b2;
    dgm_params_add(ps, "fc1.weight", DGM_ROLE_WEIGHT, 2, (int64_t[]){48, 64},
                   &w1);
    dgm_params_add(ps, "fc1.bias", DGM_ROLE_WEIGHT, 1, (int64_t[]){48}, &b1);
    dgm_params_add(ps, "fc2.weight", DGM_ROLE_WEIGHT, 2, (int64_t[]){10, 48},
                   &w2);
    dgm_params_add(ps, "fc2.bias", DGM_ROLE_WEIGHT, 1, (int64_t[]){10}, &b2);
    dgm_rng r;
    dgm_rng_seed(&r, 5);
    dgm_init_kaiming_uniform(w1->value, &r, 2.2360679775f);
    dgm_init_kaiming_uniform(w2->value, &r, 2.2360679775f);
    dgm_tensor *x = gc_randn(2, (int64_t[]){96, 64}, 11);
    dgm_tensor *y = gc_randn(2, (int64_t[]){96, 10}, 12);
    dgm_graph *g = dgm_graph_new();
    dgm_graph_set_backend(g, backend);
    for (int s = 0; s < steps; s++) {
        dgm_graph_reset(g);
        dgm_params_zero_grad(ps);
        dgm_var *h = dgm_relu(g, dgm_linear(g, dgm_input(g, x),
                                            dgm_param_var(g, w1),
                                            dgm_param_var(g, b1)));
        dgm_var *o = dgm_linear(g, h, dgm_param_var(g, w2),
                                dgm_param_var(g, b2));
        dgm_var *loss =
            dgm_mean_all(g, dgm_square(g, dgm_sub(g, o, dgm_input(g, y))));
        ck_assert_msg(loss && dgm_backward(g, loss) == 0, "%s",
                      dgm_last_error());
        for (int i = 0; i < dgm_params_count(ps); i++) {
            dgm_param *p = dgm_params_at(ps, i);
            float *v = dgm_tensor_f32(p->value), *gr = dgm_tensor_f32(p->grad);
            for (int64_t k = 0; k < dgm_tensor_numel(p->value); k++)
                v[k] -= 0.05f * gr[k];
        }
    }
    dgm_graph_free(g);
    dgm_tensor_free(x);
    dgm_tensor_free(y);
    return ps;
}

START_TEST(mlp_trains_alike_on_both_backends)
{
    dgm_params *a = train_mlp(DGM_BACKEND_REF, 8);
    dgm_params *b = train_mlp(DGM_BACKEND_DNNL, 8);
    for (int i = 0; i < dgm_params_count(a); i++) {
        gc_result r = gc_compare_tensors(dgm_params_at(a, i)->value,
                                         dgm_params_at(b, i)->value, 1e-4,
                                         1e-5);
        ck_assert_msg(r.ok, "%s: %s", dgm_params_at(a, i)->name,
                      gc_describe(&r));
    }
    /* and training moved them: the two runs are not trivially equal */
    dgm_params *c = train_mlp(DGM_BACKEND_DNNL, 0);
    gc_result moved = gc_compare_tensors(dgm_params_at(b, 0)->value,
                                         dgm_params_at(c, 0)->value, 0, 1e-6);
    ck_assert(!moved.ok);
    dgm_params_free(a);
    dgm_params_free(b);
    dgm_params_free(c);
}
END_TEST

/* A small conv net (conv, batch norm, leaky relu, pooling, linear) trained
 * by SGD for a few steps: both backends end with the same parameters. */
static dgm_params *train_convnet(dgm_backend backend, int steps)
{
    dgm_params *ps = dgm_params_new();
    dgm_param *cw, *g1, *b1, *rm, *rv, *fw, *fb;
    dgm_params_add(ps, "conv.weight", DGM_ROLE_WEIGHT, 4,
                   (int64_t[]){8, 1, 4, 4}, &cw);
    dgm_params_add(ps, "bn.weight", DGM_ROLE_WEIGHT, 1, (int64_t[]){8}, &g1);
    dgm_params_add(ps, "bn.bias", DGM_ROLE_WEIGHT, 1, (int64_t[]){8}, &b1);
    dgm_params_add(ps, "bn.running_mean", DGM_ROLE_BUFFER, 1, (int64_t[]){8},
                   &rm);
    dgm_params_add(ps, "bn.running_var", DGM_ROLE_BUFFER, 1, (int64_t[]){8},
                   &rv);
    dgm_params_add(ps, "fc.weight", DGM_ROLE_WEIGHT, 2,
                   (int64_t[]){10, 8 * 4 * 4}, &fw);
    dgm_params_add(ps, "fc.bias", DGM_ROLE_WEIGHT, 1, (int64_t[]){10}, &fb);
    dgm_rng r;
    dgm_rng_seed(&r, 9);
    dgm_init_kaiming_uniform(cw->value, &r, 2.2360679775f);
    dgm_init_kaiming_uniform(fw->value, &r, 2.2360679775f);
    dgm_tensor_fill(g1->value, 1.0);
    dgm_tensor_fill(rv->value, 1.0);
    dgm_tensor *x = gc_randn(4, (int64_t[]){16, 1, 16, 16}, 21);
    dgm_tensor *y = gc_randn(2, (int64_t[]){16, 10}, 22);
    dgm_conv_params cp = {{2, 2}, {1, 1}, {1, 1}, 1, {0, 0}};
    dgm_graph *g = dgm_graph_new();
    dgm_graph_set_backend(g, backend);
    for (int s = 0; s < steps; s++) {
        dgm_graph_reset(g);
        dgm_params_zero_grad(ps);
        dgm_var *h = dgm_conv2d(g, dgm_input(g, x), dgm_param_var(g, cw),
                                NULL, &cp); /* [16, 8, 8, 8] */
        h = dgm_batch_norm(g, h, dgm_param_var(g, g1), dgm_param_var(g, b1),
                           rm, rv, 0.1f, 1e-5f);
        h = dgm_max_pool2d(g, dgm_leaky_relu(g, h, 0.2f), 2, 2, 0);
        h = dgm_linear(g, dgm_flatten(g, h), dgm_param_var(g, fw),
                       dgm_param_var(g, fb));
        dgm_var *loss =
            dgm_mean_all(g, dgm_square(g, dgm_sub(g, h, dgm_input(g, y))));
        ck_assert_msg(loss && dgm_backward(g, loss) == 0, "%s",
                      dgm_last_error());
        for (int i = 0; i < dgm_params_count(ps); i++) {
            dgm_param *p = dgm_params_at(ps, i);
            if (p->role != DGM_ROLE_WEIGHT)
                continue;
            float *v = dgm_tensor_f32(p->value), *gr = dgm_tensor_f32(p->grad);
            for (int64_t k = 0; k < dgm_tensor_numel(p->value); k++)
                v[k] -= 0.05f * gr[k];
        }
    }
    dgm_graph_free(g);
    dgm_tensor_free(x);
    dgm_tensor_free(y);
    return ps;
}

START_TEST(convnet_trains_alike_on_both_backends)
{
    dgm_params *a = train_convnet(DGM_BACKEND_REF, 6);
    dgm_params *b = train_convnet(DGM_BACKEND_DNNL, 6);
    dgm_params *c = train_convnet(DGM_BACKEND_DNNL, 0);
    for (int i = 0; i < dgm_params_count(a); i++) {
        gc_result r = gc_compare_tensors(dgm_params_at(a, i)->value,
                                         dgm_params_at(b, i)->value, 1e-4,
                                         1e-5);
        ck_assert_msg(r.ok, "%s: %s", dgm_params_at(a, i)->name,
                      gc_describe(&r));
        /* every parameter and statistic moved */
        gc_result moved = gc_compare_tensors(dgm_params_at(b, i)->value,
                                             dgm_params_at(c, i)->value, 0,
                                             1e-7);
        ck_assert_msg(!moved.ok, "%s did not change",
                      dgm_params_at(a, i)->name);
    }
    dgm_params_free(a);
    dgm_params_free(b);
    dgm_params_free(c);
}
END_TEST

START_TEST(steady_state_step_allocates_nothing)
{
    dgm_params *ps = dgm_params_new();
    dgm_param *w, *bias, *w2, *b2;
    dgm_params_add(ps, "w", DGM_ROLE_WEIGHT, 2, (int64_t[]){64, 100}, &w);
    dgm_params_add(ps, "b", DGM_ROLE_WEIGHT, 1, (int64_t[]){64}, &bias);
    /* linear_gelu 64 -> 64 on 32 rows: the matmul primitive's path (one
     * short block) where oneDNN picks blocked weights */
    dgm_params_add(ps, "w2", DGM_ROLE_WEIGHT, 2, (int64_t[]){64, 64}, &w2);
    dgm_params_add(ps, "b2", DGM_ROLE_WEIGHT, 1, (int64_t[]){64}, &b2);
    dgm_tensor *x = gc_randn(2, (int64_t[]){32, 100}, 3);
    dgm_graph *g = dgm_graph_new();
    uint64_t before = 0;
    for (int s = 0; s < 4; s++) {
        if (s == 3)
            before = dgm_heap_allocations();
        dgm_graph_reset(g);
        dgm_var *h = dgm_relu(g, dgm_linear(g, dgm_input(g, x),
                                            dgm_param_var(g, w),
                                            dgm_param_var(g, bias)));
        h = dgm_linear_gelu(g, h, dgm_param_var(g, w2), dgm_param_var(g, b2));
        dgm_var *m = dgm_matmul(g, h, h, true, false); /* [64, 64] */
        ck_assert_int_eq(dgm_backward(g, dgm_mean_all(g, m)), 0);
    }
    ck_assert_uint_eq(dgm_heap_allocations() - before, 0);
    dgm_graph_free(g);
    dgm_tensor_free(x);
    dgm_params_free(ps);
}
END_TEST

/* gelu_k and gelu_grad_k (vmath.h) against float64 at 480001 points of
 * [-12, 12] (the left tail included: Phi(-12) ~ 2e-33): relative error of
 * y, and of gelu'(v) relative to Phi(v) + |v| phi(v) (gelu' has a zero
 * near v = -0.75 where a pure relative error means nothing). The floor
 * grows as v^2: float rounds a^2 = v^2 / 2 before the exponential, a
 * relative error of ~v^2 2^-24 / 2 in exp(-a^2) whatever the fit; at
 * v = -12 both the fit of erfc's log with two exponentials and the one
 * polynomial erfc(a) exp(a^2) / t measure 1.4e-5 to 1.8e-5. */
START_TEST(gelu_kernels_match_float64)
{
    double worst_y = 0.0, worst_d = 0.0;
    for (long i = -240000; i <= 240000; i++) {
        const float v = (float)((double)i * 5e-5);
        const double dv = v, P = 0.5 * erfc(-dv / M_SQRT2),
                     ph = exp(-dv * dv / 2) / sqrt(2 * M_PI);
        const double yr = dv * P, dr = P + dv * ph;
        const double bound = 5e-7 + 1.5e-7 * dv * dv;
        float d;
        const float y = gelu_grad_k(v, &d), y1 = gelu_k(v);
        if (yr != 0.0) {
            const double ey = fmax(fabs(y - yr), fabs(y1 - yr)) / fabs(yr);
            worst_y = fmax(worst_y, ey / bound);
            ck_assert_msg(ey <= bound, "gelu(%.6g) = %.9g, %.9g; float64 %.9g",
                          (double)v, (double)y, (double)y1, yr);
        } else
            ck_assert(y == 0.0f && y1 == 0.0f);
        const double ed = fabs(d - dr) / (P + fabs(dv) * ph);
        worst_d = fmax(worst_d, ed / bound);
        ck_assert_msg(ed <= bound, "gelu'(%.6g) = %.9g; float64 %.9g",
                      (double)v, (double)d, dr);
    }
    /* far out: the exponential underflows to 0, y = max(v, 0) exactly */
    const float far[] = {-40.0f, -20.0f, 20.0f, 40.0f};
    for (int i = 0; i < 4; i++) {
        float d;
        const float y = gelu_grad_k(far[i], &d);
        ck_assert(y == (far[i] > 0 ? far[i] : 0.0f) && gelu_k(far[i]) == y);
        ck_assert(d == (far[i] > 0 ? 1.0f : 0.0f));
    }
    fprintf(stderr, "gelu kernels: worst error / bound: y %.2f, gelu' %.2f\n",
            worst_y, worst_d);
}
END_TEST

static Suite *dense_suite(void)
{
    Suite *s = suite_create("ops_dense");
    TCase *tc = tq_case(s, "gradients", linear_gradients, matmul_gradients,
                        linear_gelu_gradients);
    tcase_set_timeout(tc, 120);
    TCase *be = tq_case(s, "backends", backends_agree_at_real_sizes,
                        linear_gelu_matches_the_composition,
                        linear_gelu_row_blocks, linear_gelu_blocked_weights,
                        bias_gradient_blocks, mlp_trains_alike_on_both_backends,
                        convnet_trains_alike_on_both_backends);
    tcase_set_timeout(be, 120);
    tq_case(s, "errors", shape_errors_name_op_and_shapes);
    tq_case(s, "kernels", gelu_kernels_match_float64);
    tq_case(s, "allocation", steady_state_step_allocates_nothing);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(dense_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
