/* test_graph.c - the tape and its rules (backward, accumulation, detach,
 * no-grad, frozen parameters, modes, error propagation), parameters and
 * initialisers, and finite-difference checks of the elementwise, binary
 * and reduction ops on both backends. */
#include <check.h>
#include <math.h>
#include <string.h>

#include "ck_run.h"
#include "dgm/dgm.h"
#include "gradcheck.h"

static float at(const dgm_tensor *t, int64_t i) { return dgm_tensor_f32(t)[i]; }

static dgm_tensor *vec(int n, const float *v)
{
    dgm_tensor *t = dgm_tensor_new(DGM_F32, 1, (int64_t[]){n});
    memcpy(t->data, v, sizeof(float) * (size_t)n);
    return t;
}

/* ---- tape ---------------------------------------------------------------- */

START_TEST(backward_by_hand)
{
    /* f = sum(x * y + exp(x)) -> df/dx = y + exp(x), df/dy = x */
    dgm_graph *g = dgm_graph_new();
    dgm_tensor *xt = vec(3, (float[]){0.5f, -1.0f, 2.0f});
    dgm_tensor *yt = vec(3, (float[]){3.0f, 4.0f, -2.0f});
    dgm_var *x = dgm_leaf(g, xt, true), *y = dgm_leaf(g, yt, true);
    dgm_var *f = dgm_sum_all(g, dgm_add(g, dgm_mul(g, x, y), dgm_exp(g, x)));
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(dgm_value(f)->ndim, 0);
    ck_assert_int_eq(dgm_backward(g, f), 0);
    for (int i = 0; i < 3; i++) {
        ck_assert_float_eq_tol(at(dgm_grad(x), i),
                               at(yt, i) + expf(at(xt, i)), 1e-5);
        ck_assert_float_eq_tol(at(dgm_grad(y), i), at(xt, i), 1e-6);
    }
    /* A second backward on the same tape accumulates. */
    ck_assert_int_eq(dgm_backward(g, f), 0);
    ck_assert_float_eq_tol(at(dgm_grad(y), 2), 2 * at(xt, 2), 1e-6);
    dgm_graph_free(g);
    dgm_tensor_free(xt);
    dgm_tensor_free(yt);
}
END_TEST

START_TEST(detach_and_no_grad)
{
    dgm_graph *g = dgm_graph_new();
    dgm_tensor *xt = vec(2, (float[]){1.0f, 2.0f});
    dgm_var *x = dgm_leaf(g, xt, true);
    /* f = sum(x * detach(x)): df/dx = detach(x) only */
    dgm_var *f = dgm_sum_all(g, dgm_mul(g, x, dgm_detach(g, x)));
    ck_assert_int_eq(dgm_backward(g, f), 0);
    ck_assert_float_eq_tol(at(dgm_grad(x), 1), 2.0f, 1e-6);

    dgm_graph_reset(g);
    bool was = dgm_graph_set_grad(g, false);
    ck_assert(was);
    x = dgm_leaf(g, xt, true);
    dgm_var *h = dgm_square(g, x);
    ck_assert(!dgm_requires_grad(h));
    ck_assert_float_eq_tol(at(dgm_value(h), 1), 4.0f, 1e-6);
    dgm_graph_set_grad(g, true);
    dgm_graph_free(g);
    dgm_tensor_free(xt);
}
END_TEST

START_TEST(frozen_and_buffers_get_no_gradient)
{
    dgm_params *ps = dgm_params_new();
    dgm_param *w, *fz, *buf;
    ck_assert_int_eq(dgm_params_add(ps, "a.w", DGM_ROLE_WEIGHT, 1,
                                    (int64_t[]){2}, &w), 0);
    ck_assert_int_eq(dgm_params_add(ps, "a.frozen", DGM_ROLE_WEIGHT, 1,
                                    (int64_t[]){2}, &fz), 0);
    ck_assert_int_eq(dgm_params_add(ps, "a.stat", DGM_ROLE_BUFFER, 1,
                                    (int64_t[]){2}, &buf), 0);
    ck_assert_ptr_null(buf->grad);
    fz->frozen = true;
    dgm_tensor_fill(w->value, 2.0);
    dgm_tensor_fill(fz->value, 3.0);
    dgm_tensor_fill(buf->value, 5.0);
    dgm_graph *g = dgm_graph_new();
    dgm_var *f = dgm_sum_all(
        g, dgm_mul(g, dgm_mul(g, dgm_param_var(g, w), dgm_param_var(g, fz)),
                   dgm_param_var(g, buf)));
    ck_assert_int_eq(dgm_backward(g, f), 0);
    ck_assert_float_eq_tol(at(w->grad, 0), 15.0f, 1e-5);
    for (int i = 0; i < 2; i++)
        ck_assert_float_eq(at(fz->grad, i), 0.0f);
    dgm_params_zero_grad(ps);
    ck_assert_float_eq(at(w->grad, 0), 0.0f);
    int64_t tr, fr;
    dgm_params_counts(ps, &tr, &fr);
    ck_assert_int_eq(tr, 2);
    ck_assert_int_eq(fr, 2);
    /* names are unique */
    dgm_param *dup;
    ck_assert_int_eq(dgm_params_add(ps, "a.w", DGM_ROLE_WEIGHT, 1,
                                    (int64_t[]){2}, &dup),
                     DGM_EDUP);
    ck_assert_ptr_eq(dgm_params_find(ps, "a.stat"), buf);
    /* optimizer slots: zero-filled, the parameter's shape, listed */
    dgm_tensor *m = dgm_param_slot(w, "exp_avg");
    ck_assert_ptr_nonnull(m);
    ck_assert_ptr_eq(dgm_param_slot(w, "exp_avg"), m);
    ck_assert_int_eq(dgm_param_slot_count(w), 1);
    const char *name;
    ck_assert_ptr_eq(dgm_param_slot_at(w, 0, &name), m);
    ck_assert_str_eq(name, "exp_avg");
    dgm_graph_free(g);
    dgm_params_free(ps);
}
END_TEST

START_TEST(errors_propagate_as_null)
{
    dgm_graph *g = dgm_graph_new();
    dgm_tensor *a = dgm_tensor_new(DGM_F32, 1, (int64_t[]){3});
    dgm_tensor *b = dgm_tensor_new(DGM_F32, 1, (int64_t[]){4});
    dgm_var *bad = dgm_add(g, dgm_input(g, a), dgm_input(g, b));
    ck_assert_ptr_null(bad);
    ck_assert_int_eq(dgm_graph_status(g), DGM_ESHAPE);
    ck_assert_msg(strstr(dgm_last_error(), "[3]") &&
                      strstr(dgm_last_error(), "[4]"),
                  "%s", dgm_last_error());
    char keep[512];
    snprintf(keep, sizeof keep, "%s", dgm_last_error());
    ck_assert_ptr_null(dgm_exp(g, dgm_relu(g, bad)));
    ck_assert_str_eq(dgm_last_error(), keep);
    /* backward needs one element */
    dgm_graph_reset(g);
    ck_assert_int_eq(dgm_graph_status(g), 0);
    dgm_var *v = dgm_leaf(g, a, true);
    ck_assert_int_eq(dgm_backward(g, v), DGM_ESHAPE);
    dgm_graph_free(g);
    dgm_tensor_free(a);
    dgm_tensor_free(b);
}
END_TEST

START_TEST(initialisers_follow_pytorch)
{
    dgm_rng r;
    dgm_rng_seed(&r, 3);
    dgm_tensor *w = dgm_tensor_new(DGM_F32, 2, (int64_t[]){400, 784});
    dgm_init_kaiming_uniform(w, &r, sqrtf(5.0f));
    /* bound = sqrt(6 / ((1 + a^2) fan_in)) = 1 / sqrt(fan_in) */
    double bound = 1.0 / sqrt(784.0), mx = 0, mean = 0, var = 0;
    int64_t n = dgm_tensor_numel(w);
    for (int64_t i = 0; i < n; i++) {
        double v = at(w, i);
        mx = fabs(v) > mx ? fabs(v) : mx;
        mean += v / (double)n;
    }
    for (int64_t i = 0; i < n; i++)
        var += (at(w, i) - mean) * (at(w, i) - mean) / (double)n;
    ck_assert_msg(mx <= bound && mx > 0.99 * bound, "max %g bound %g", mx,
                  bound);
    ck_assert_double_eq_tol(var, bound * bound / 3.0, 0.02 * bound * bound);
    dgm_tensor *x = dgm_tensor_new(DGM_F32, 2, (int64_t[]){200, 300});
    dgm_init_xavier_uniform(x, &r, 1.0f);
    double xb = sqrt(6.0 / 500.0), xm = 0;
    for (int64_t i = 0; i < dgm_tensor_numel(x); i++)
        xm = fabs(at(x, i)) > xm ? fabs(at(x, i)) : xm;
    ck_assert(xm <= xb && xm > 0.99 * xb);
    dgm_tensor_free(w);
    dgm_tensor_free(x);
}
END_TEST

START_TEST(training_and_eval_modes)
{
    dgm_graph *g = dgm_graph_new();
    ck_assert(dgm_graph_training(g));
    dgm_rng r;
    dgm_rng_seed(&r, 1);
    dgm_graph_set_rng(g, &r);
    dgm_tensor *t = dgm_tensor_new(DGM_F32, 1, (int64_t[]){1000});
    dgm_tensor_fill(t, 1.0);
    dgm_var *d = dgm_dropout(g, dgm_input(g, t), 0.5f);
    int zeros = 0;
    for (int i = 0; i < 1000; i++)
        zeros += at(dgm_value(d), i) == 0.0f;
    ck_assert_int_gt(zeros, 400);
    ck_assert_int_lt(zeros, 600);
    dgm_graph_set_training(g, false);
    d = dgm_dropout(g, dgm_input(g, t), 0.5f);
    ck_assert_float_eq(at(dgm_value(d), 7), 1.0f);
    dgm_graph_free(g);
    dgm_tensor_free(t);
}
END_TEST

/* ---- finite differences for the elementwise, binary and reduction ops -- */

typedef struct un_ctx {
    int op;
} un_ctx;

static dgm_var *build_unary(dgm_graph *g, dgm_var **l, void *vctx)
{
    dgm_var *x = l[0];
    switch (((un_ctx *)vctx)->op) {
    case 0: return dgm_relu(g, x);
    case 1: return dgm_leaky_relu(g, x, 0.2f);
    case 2: return dgm_elu(g, x, 1.0f);
    case 3: return dgm_gelu(g, x);
    case 4: return dgm_tanh(g, x);
    case 5: return dgm_sigmoid(g, x);
    case 6: return dgm_softplus(g, x);
    case 7: return dgm_exp(g, x);
    case 8: return dgm_log(g, dgm_affine(g, dgm_abs(g, x), 1.0f, 0.5f));
    case 9: return dgm_sqrt(g, dgm_affine(g, dgm_square(g, x), 1.0f, 0.3f));
    case 10: return dgm_square(g, x);
    case 11: return dgm_abs(g, x);
    case 12: return dgm_clamp(g, x, -0.5f, 0.7f);
    case 13: return dgm_affine(g, x, -1.5f, 0.25f);
    default: return dgm_neg(g, x);
    }
}

START_TEST(unary_gradients)
{
    /* Shapes: batch 1, a matrix, and one big enough for oneDNN's path. */
    const int64_t shapes[3][2] = {{1, 5}, {7, 9}, {64, 600}};
    for (int op = 0; op <= 14; op++)
        for (int s = 0; s < 3; s++) {
            un_ctx c = {op};
            /* values kept off the kinks (0 for relu/abs, the clamp
             * bounds) by more than the finite-difference step */
            dgm_tensor *x = gc_rand(2, shapes[s], 1000 + op * 7 + s, -2, 2);
            float *v = dgm_tensor_f32(x);
            for (int64_t i = 0; i < dgm_tensor_numel(x); i++) {
                if (fabsf(v[i]) < 0.05f)
                    v[i] += 0.1f;
                if (fabsf(v[i] + 0.5f) < 0.05f || fabsf(v[i] - 0.7f) < 0.05f)
                    v[i] += 0.1f;
            }
            bool need = true;
            for (int b = 0; b < 2; b++) {
                if (s == 2)
                    break; /* the big shape: oneDNN against C, below */
                gc_result r = gc_gradcheck(
                    build_unary, &c, 1, &x, &need,
                    b ? DGM_BACKEND_DNNL : DGM_BACKEND_REF, 1e-2, 2e-2, 2e-3);
                ck_assert_msg(r.ok, "op %d shape %d backend %d: %s", op, s, b,
                              gc_describe(&r));
            }
            if (s == 2) {
                gc_result r = gc_compare_backends(build_unary, &c, 1, &x,
                                                  &need, 1e-4, 1e-5);
                ck_assert_msg(r.ok, "op %d ref vs dnnl: %s", op,
                              gc_describe(&r));
            }
            dgm_tensor_free(x);
        }
}
END_TEST

static dgm_var *build_binary(dgm_graph *g, dgm_var **l, void *vctx)
{
    switch (((un_ctx *)vctx)->op) {
    case 0: return dgm_add(g, l[0], l[1]);
    case 1: return dgm_sub(g, l[0], l[1]);
    case 2: return dgm_mul(g, l[0], l[1]);
    default: return dgm_div(g, l[0], dgm_affine(g, dgm_abs(g, l[1]), 1.0f,
                                                0.5f));
    }
}

START_TEST(binary_gradients_with_broadcasting)
{
    const int64_t a[][3] = {{2, 3, 4}, {2, 3, 4}, {2, 1, 4}, {5, 1, 1}};
    const int64_t b[][3] = {{2, 3, 4}, {1, 3, 1}, {1, 3, 1}, {1, 3, 4}};
    for (int op = 0; op < 4; op++)
        for (int s = 0; s < 4; s++) {
            un_ctx c = {op};
            dgm_tensor *t[2] = {gc_randn(3, a[s], 50 + s), gc_randn(3, b[s], 60 + s)};
            bool need[2] = {true, true};
            gc_result r = gc_gradcheck(build_binary, &c, 2, t, need,
                                       DGM_BACKEND_DNNL, 1e-2, 2e-2, 2e-3);
            ck_assert_msg(r.ok, "op %d shapes %d: %s", op, s, gc_describe(&r));
            dgm_tensor_free(t[0]);
            dgm_tensor_free(t[1]);
        }
    /* a scalar (rank 0) broadcast against a matrix, and a transposed view */
    dgm_tensor *t[2] = {gc_randn(2, (int64_t[]){3, 4}, 7),
                        gc_randn(0, NULL, 8)};
    bool need[2] = {true, true};
    un_ctx c = {2};
    gc_result r = gc_gradcheck(build_binary, &c, 2, t, need, DGM_BACKEND_REF,
                               1e-2, 2e-2, 2e-3);
    ck_assert_msg(r.ok, "scalar: %s", gc_describe(&r));
    dgm_tensor_free(t[0]);
    dgm_tensor_free(t[1]);
}
END_TEST

typedef struct red_ctx {
    uint32_t mask;
    bool mean, keep;
} red_ctx;

static dgm_var *build_reduce(dgm_graph *g, dgm_var **l, void *vctx)
{
    red_ctx *c = vctx;
    dgm_var *x = dgm_transpose(g, l[0], 0, 2); /* strided input */
    return c->mean ? dgm_mean(g, x, c->mask, c->keep)
                   : dgm_sum(g, x, c->mask, c->keep);
}

static dgm_var *build_reduce_all(dgm_graph *g, dgm_var **l, void *vctx)
{
    dgm_var *x = dgm_transpose(g, l[0], 0, 2); /* strided input */
    return ((red_ctx *)vctx)->mean ? dgm_mean_all(g, x) : dgm_sum_all(g, x);
}

START_TEST(reduction_gradients)
{
    dgm_tensor *x = gc_randn(3, (int64_t[]){4, 3, 5}, 77);
    bool need = true;
    for (int mean = 0; mean < 2; mean++) {
        red_ctx c = {0, mean, false};
        gc_result r = gc_gradcheck(build_reduce_all, &c, 1, &x, &need,
                                   DGM_BACKEND_REF, 1e-2, 2e-2, 2e-3);
        ck_assert_msg(r.ok, "%s_all: %s", mean ? "mean" : "sum",
                      gc_describe(&r));
    }
    for (uint32_t mask = 1; mask < 8; mask++)
        for (int mean = 0; mean < 2; mean++)
            for (int keep = 0; keep < 2; keep++) {
                red_ctx c = {mask, mean, keep};
                gc_result r = gc_gradcheck(build_reduce, &c, 1, &x, &need,
                                           DGM_BACKEND_DNNL, 1e-2, 2e-2, 2e-3);
                ck_assert_msg(r.ok, "mask %u mean %d keep %d: %s", mask, mean,
                              keep, gc_describe(&r));
            }
    /* values: sum over axis 1 of a known matrix */
    dgm_graph *g = dgm_graph_new();
    dgm_tensor *m = dgm_tensor_new(DGM_F32, 2, (int64_t[]){2, 3});
    for (int i = 0; i < 6; i++)
        dgm_tensor_f32(m)[i] = (float)(i + 1);
    dgm_var *s = dgm_sum(g, dgm_input(g, m), 1u << 1, false);
    ck_assert_float_eq(at(dgm_value(s), 0), 6.0f);
    ck_assert_float_eq(at(dgm_value(s), 1), 15.0f);
    dgm_var *mm = dgm_mean_all(g, dgm_input(g, m));
    ck_assert_float_eq_tol(at(dgm_value(mm), 0), 3.5f, 1e-6);
    dgm_graph_free(g);
    dgm_tensor_free(m);
    dgm_tensor_free(x);
}
END_TEST

static Suite *graph_suite(void)
{
    Suite *s = suite_create("graph");
    tq_case(s, "tape", backward_by_hand, detach_and_no_grad,
            frozen_and_buffers_get_no_gradient, errors_propagate_as_null,
            initialisers_follow_pytorch, training_and_eval_modes);
    TCase *ops =
        tq_case(s, "ops", unary_gradients, binary_gradients_with_broadcasting,
                reduction_gradients);
    tcase_set_timeout(ops, 300);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(graph_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
