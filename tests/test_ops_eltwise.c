/* test_ops_eltwise.c - unary elementwise ops beyond the gradient checks of
 * suite graph (which keep inputs off the kinks): the values and gradients
 * at the kinks themselves, on both backends.
 *
 * PyTorch (/usr/bin/python3, torch) gives clamp's gradient on the closed
 * interval [lo, hi]:
 *
 *   x = torch.tensor([-0.5, 0.7, 0.1, -2.0, 3.0], requires_grad=True)
 *   y = torch.clamp(x, -0.5, 0.7)
 *   (y * torch.tensor([1., 2., 3., 4., 5.])).sum().backward()
 *   x.grad -> [1, 2, 3, 0, 0]
 *   x = torch.tensor([0.3], requires_grad=True)
 *   torch.clamp(x, 0.3, 0.3).sum().backward(); x.grad -> [1]
 */
#include <check.h>
#include <stdint.h>
#include <string.h>

#include "ck_run.h"
#include "dgm/error.h"
#include "dgm/graph.h"
#include "dgm/tensor.h"

/* y = clamp(x, lo, hi); loss sum(y * w). Checks y and dL/dx = w on
 * [lo, hi], 0 outside, on backend `be`. */
static void check_clamp(dgm_backend be, int64_t n, const float *x,
                        const float *w, float lo, float hi, const float *want_y,
                        const float *want_g)
{
    dgm_graph *g = dgm_graph_new();
    dgm_graph_set_backend(g, be);
    dgm_tensor *xt = dgm_tensor_new(DGM_F32, 1, &n);
    dgm_tensor *wt = dgm_tensor_new(DGM_F32, 1, &n);
    float *xp = xt->data, *wp = wt->data;
    for (int64_t i = 0; i < n; i++) {
        xp[i] = x[i];
        wp[i] = w[i];
    }
    dgm_var *xv = dgm_leaf(g, xt, true);
    dgm_var *y = dgm_clamp(g, xv, lo, hi);
    ck_assert_msg(y != NULL, "%s", dgm_last_error());
    dgm_var *l = dgm_sum_all(g, dgm_mul(g, y, dgm_input(g, wt)));
    ck_assert_int_eq(dgm_backward(g, l), 0);
    const float *yp = dgm_value(y)->data, *gp = dgm_grad(xv)->data;
    for (int64_t i = 0; i < n; i++) {
        ck_assert_msg(yp[i] == want_y[i], "backend %d: y[%lld] %g, want %g",
                      (int)be, (long long)i, (double)yp[i], (double)want_y[i]);
        ck_assert_msg(gp[i] == want_g[i], "backend %d: dx[%lld] %g, want %g",
                      (int)be, (long long)i, (double)gp[i], (double)want_g[i]);
    }
    dgm_graph_free(g);
    dgm_tensor_free(xt);
    dgm_tensor_free(wt);
}

START_TEST(clamp_gradient_on_the_closed_interval)
{
    const dgm_backend be = _i ? DGM_BACKEND_REF : DGM_BACKEND_DNNL;
    /* x == lo, x == hi, inside, below, above */
    const float x[5] = {-0.5f, 0.7f, 0.1f, -2.0f, 3.0f};
    const float w[5] = {1, 2, 3, 4, 5};
    const float y[5] = {-0.5f, 0.7f, 0.1f, -0.5f, 0.7f};
    const float gr[5] = {1, 2, 3, 0, 0};
    check_clamp(be, 5, x, w, -0.5f, 0.7f, y, gr);
    /* lo == hi: the one point passes its gradient */
    const float one = 0.3f, wone = 1.0f;
    check_clamp(be, 1, &one, &wone, 0.3f, 0.3f, &one, &wone);
}
END_TEST

/* The same rule on a tensor large enough for the threaded loops and for
 * the size at which other ops switch to oneDNN. */
START_TEST(clamp_gradient_large)
{
    const dgm_backend be = _i ? DGM_BACKEND_REF : DGM_BACKEND_DNNL;
    enum { N = 40000 };
    static float x[N], w[N], y[N], gr[N];
    for (int i = 0; i < N; i++) {
        x[i] = (float)((i % 9) - 4) * 0.25f; /* -1 .. 1, hits both bounds */
        w[i] = (float)(i % 5 + 1);
        y[i] = x[i] < -0.5f ? -0.5f : (x[i] > 0.5f ? 0.5f : x[i]);
        gr[i] = x[i] >= -0.5f && x[i] <= 0.5f ? w[i] : 0.0f;
    }
    check_clamp(be, N, x, w, -0.5f, 0.5f, y, gr);
}
END_TEST

START_TEST(clamp_refuses_lo_above_hi)
{
    int64_t n = 2;
    dgm_graph *g = dgm_graph_new();
    dgm_tensor *xt = dgm_tensor_new(DGM_F32, 1, &n);
    ck_assert_ptr_null(dgm_clamp(g, dgm_input(g, xt), 1.0f, 0.0f));
    ck_assert_int_eq(dgm_last_code(), DGM_EINVAL);
    ck_assert_msg(strstr(dgm_last_error(), "clamp: lo 1 > hi 0"), "%s",
                  dgm_last_error());
    dgm_graph_free(g);
    dgm_tensor_free(xt);
}
END_TEST

static Suite *ops_eltwise_suite(void)
{
    Suite *s = suite_create("ops_eltwise");
    TCase *tc = tq_case(s, "clamp", clamp_refuses_lo_above_hi);
    tcase_add_loop_test(tc, clamp_gradient_on_the_closed_interval, 0, 2);
    tcase_add_loop_test(tc, clamp_gradient_large, 0, 2);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(ops_eltwise_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
