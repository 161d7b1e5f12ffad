/* test_tpe.c - the Tree-structured Parzen Estimator (framework/cli/tools/
 * tpe.c): its Parzen densities against values worked in float64 by hand
 * (Python's math module) and integrating to one, the choice densities,
 * prior draws inside their ranges, determinism, a failure counted as the
 * worst, and proposals concentrating where the objective is best. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "ck_run.h"
#include "dgm/dgm.h"
#include "tpe.h"

START_TEST(densities_match_hand_worked_values)
{
    /* uniform [0, 10], values 2 and 5: bandwidths max(gap to the
     * neighbours or ends) = 3 and 5, clipped below at 10 / min(100, 3):
     * 3.33 and 5; log((1/10 + N_T(4; 2, 3.33) + N_T(4; 5, 5)) / 3) with
     * N_T truncated to [0, 10], worked in float64 with Python's math */
    dgm__tpe_param u = {DGM__TPE_UNIFORM, 0, 10, 0};
    double v2[] = {5, 2};
    ck_assert_double_eq_tol(dgm__tpe_log_density(&u, v2, 2, 4.0),
                            -2.137417501857824, 1e-12);
    /* loguniform [1e-4, 1e-2] with 1e-3: in log space, bandwidth ln 10 */
    dgm__tpe_param lu = {DGM__TPE_LOGUNIFORM, 1e-4, 1e-2, 0};
    double v1[] = {1e-3};
    ck_assert_double_eq_tol(dgm__tpe_log_density(&lu, v1, 1, 1e-3),
                            -1.4461817738851435, 1e-12);
    /* choice of 3, values {0, 0, 2}: (count + 1) / (3 + 3) */
    dgm__tpe_param ch = {DGM__TPE_CHOICE, 0, 0, 3};
    double vc[] = {0, 0, 2};
    ck_assert_double_eq_tol(dgm__tpe_log_density(&ch, vc, 3, 0), log(3.0 / 6),
                            1e-15);
    ck_assert_double_eq_tol(dgm__tpe_log_density(&ch, vc, 3, 1), log(1.0 / 6),
                            1e-15);
    /* no values: the prior */
    ck_assert_double_eq_tol(dgm__tpe_log_density(&u, NULL, 0, 7.0), log(0.1),
                            1e-15);
}
END_TEST

START_TEST(densities_integrate_to_one)
{
    /* midpoint rule over the range: the truncation keeps the mass in */
    dgm__tpe_param u = {DGM__TPE_UNIFORM, -1, 3, 0};
    double v[] = {-0.9, 0.1, 0.15, 2.9, 1.0};
    int m = 200000;
    double sum = 0, h = 4.0 / m;
    for (int i = 0; i < m; i++)
        sum += exp(dgm__tpe_log_density(&u, v, 5, -1 + (i + 0.5) * h)) * h;
    ck_assert_double_eq_tol(sum, 1.0, 1e-6);
    /* int [0, 9]: the cells' densities sum to about one (each cell's
     * density taken at its centre) */
    dgm__tpe_param in = {DGM__TPE_INT, 0, 9, 0};
    double vi[] = {3, 3, 7};
    sum = 0;
    for (int k = 0; k <= 9; k++)
        sum += exp(dgm__tpe_log_density(&in, vi, 3, k));
    ck_assert_double_eq_tol(sum, 1.0, 0.02);
}
END_TEST

static const dgm__tpe_param mixed[] = {
    {DGM__TPE_UNIFORM, 0, 1, 0},
    {DGM__TPE_LOGUNIFORM, 1e-4, 1e-2, 0},
    {DGM__TPE_INT, 2, 5, 0},
    {DGM__TPE_CHOICE, 0, 0, 3},
};

/* A toy loss over the four parameters: best at x0 = 0.3, lr = 1e-3, int
 * 4, choice 1. */
static double loss(const double *x)
{
    return pow(x[0] - 0.3, 2) + pow(log10(x[1]) + 3, 2) / 4 +
           (x[2] != 4) * 0.2 + (x[3] != 1) * 0.3;
}

static void run(uint64_t seed, int n, double *xs, double *ys)
{
    dgm__tpe *t;
    ck_assert_int_eq(dgm__tpe_new(&t, mixed, 4, 10, 0.25, 24, seed, false), 0);
    for (int i = 0; i < n; i++) {
        double *x = xs + 4 * i;
        ck_assert_int_eq(dgm__tpe_suggest(t, x), 0);
        /* every proposal inside its range, ints whole */
        ck_assert(x[0] >= 0 && x[0] <= 1);
        ck_assert(x[1] >= 1e-4 && x[1] <= 1e-2);
        ck_assert(x[2] >= 2 && x[2] <= 5 && x[2] == floor(x[2]));
        ck_assert(x[3] == 0 || x[3] == 1 || x[3] == 2);
        ys[i] = loss(x);
        ck_assert_int_eq(dgm__tpe_observe(t, x, ys[i]), 0);
    }
    dgm__tpe_free(t);
}

START_TEST(proposals_are_seeded_and_concentrate_on_the_best)
{
    enum { N = 60 };
    double xa[4 * N], ya[N], xb[4 * N], yb[N];
    run(7, N, xa, ya);
    run(7, N, xb, yb);
    for (int i = 0; i < 4 * N; i++)
        ck_assert(xa[i] == xb[i]); /* same seed, same proposals */
    run(8, N, xb, yb);
    int differ = 0;
    for (int i = 0; i < 4 * N; i++)
        differ += xa[i] != xb[i];
    ck_assert_int_gt(differ, 0);
    /* the last 20 proposals (model-based) are far better on average than
     * the 10 prior draws, and pick the best choice most of the time, over
     * several seeds */
    for (uint64_t seed = 1; seed <= 5; seed++) {
        run(seed, N, xa, ya);
        double early = 0, late = 0;
        int right = 0;
        for (int i = 0; i < 10; i++)
            early += ya[i] / 10;
        for (int i = N - 20; i < N; i++) {
            late += ya[i] / 20;
            right += xa[4 * i + 3] == 1;
        }
        ck_assert_msg(late < early / 2, "seed %d: %g vs %g", (int)seed, late,
                      early);
        ck_assert_int_ge(right, 12);
    }
}
END_TEST

START_TEST(a_failure_counts_as_the_worst)
{
    /* x < 0.5 fails (NAN), else (x - 0.7)^2: once the model takes over,
     * most proposals stay out of the failing half */
    dgm__tpe_param p = {DGM__TPE_UNIFORM, 0, 1, 0};
    dgm__tpe *t;
    ck_assert_int_eq(dgm__tpe_new(&t, &p, 1, 10, 0.25, 24, 3, false), 0);
    int late_ok = 0;
    for (int i = 0; i < 50; i++) {
        double x;
        dgm__tpe_suggest(t, &x);
        double y = x < 0.5 ? NAN : pow(x - 0.7, 2);
        dgm__tpe_observe(t, &x, y);
        if (i >= 30)
            late_ok += x >= 0.5;
    }
    ck_assert_int_ge(late_ok, 16);
    dgm__tpe_free(t);
    /* maximize: the same loss negated gives the same proposals */
    dgm__tpe *a, *b;
    ck_assert_int_eq(dgm__tpe_new(&a, &p, 1, 5, 0.25, 24, 9, false), 0);
    ck_assert_int_eq(dgm__tpe_new(&b, &p, 1, 5, 0.25, 24, 9, true), 0);
    for (int i = 0; i < 30; i++) {
        double xa, xb;
        dgm__tpe_suggest(a, &xa);
        dgm__tpe_suggest(b, &xb);
        ck_assert(xa == xb);
        dgm__tpe_observe(a, &xa, pow(xa - 0.2, 2));
        dgm__tpe_observe(b, &xb, -pow(xb - 0.2, 2));
    }
    dgm__tpe_free(a);
    dgm__tpe_free(b);
}
END_TEST

START_TEST(bad_parameters_are_refused)
{
    dgm__tpe *t;
    dgm__tpe_param bad[] = {{DGM__TPE_UNIFORM, 2, 1, 0},
                            {DGM__TPE_LOGUNIFORM, 0, 1, 0},
                            {DGM__TPE_CHOICE, 0, 0, 0},
                            {DGM__TPE_UNIFORM, 0, INFINITY, 0}};
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(dgm__tpe_new(&t, &bad[i], 1, 5, 0.25, 24, 1, false),
                         DGM_EINVAL);
        ck_assert_ptr_null(t);
    }
    ck_assert_int_eq(dgm__tpe_new(&t, bad, 0, 5, 0.25, 24, 1, false),
                     DGM_EINVAL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tpe");
    tq_case(s, "tpe", densities_match_hand_worked_values,
            densities_integrate_to_one,
            proposals_are_seeded_and_concentrate_on_the_best,
            a_failure_counts_as_the_worst, bad_parameters_are_refused);
    return tq_run(s, "installed", false);
}
