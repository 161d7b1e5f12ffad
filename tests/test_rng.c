/* test_rng.c - the "rng" suite: exact streams against an independent
 * Python rendering of splitmix64 + xoshiro256**, forks, and the statistics
 * of uniform, normal, below and shuffle (fixed seeds, so no flakiness). */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ck_run.h"
#include "dgm/rng.h"

/* ---- determinism -------------------------------------------------------- */

START_TEST(test_reference_stream)
{
    /* Values from /usr/bin/python3 running the reference algorithms
     * (splitmix64 seeding, xoshiro256** next); a change here breaks the
     * resumption of every checkpoint, so it must be deliberate. */
    dgm_rng r;
    dgm_rng_seed(&r, 0);
    ck_assert_uint_eq(r.s[0], 0xe220a8397b1dcdafull);
    ck_assert_uint_eq(r.s[3], 0xf88bb8a8724c81ecull);
    ck_assert_uint_eq(dgm_rng_u64(&r), 0x99ec5f36cb75f2b4ull);
    ck_assert_uint_eq(dgm_rng_u64(&r), 0xbf6e1f784956452aull);
    ck_assert_uint_eq(dgm_rng_u64(&r), 0x1a5f849d4933e6e0ull);
    dgm_rng_seed(&r, 42);
    ck_assert_uint_eq(dgm_rng_u64(&r), 0x15780b2e0c2ec716ull);
    ck_assert_uint_eq(dgm_rng_u64(&r), 0x6104d9866d113a7eull);
    ck_assert_uint_eq(dgm_rng_u64(&r), 0xae17533239e499a1ull);
}
END_TEST

START_TEST(test_same_seed_same_stream)
{
    dgm_rng a, b, c;
    dgm_rng_seed(&a, 7);
    dgm_rng_seed(&b, 7);
    dgm_rng_seed(&c, 8);
    int differ = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t x = dgm_rng_u64(&a);
        ck_assert_uint_eq(x, dgm_rng_u64(&b));
        differ += x != dgm_rng_u64(&c);
    }
    ck_assert_int_eq(differ, 1000);
    /* normals and uniforms are pure functions of the state too */
    dgm_rng_seed(&a, 9);
    dgm_rng_seed(&b, 9);
    for (int i = 0; i < 100; i++) {
        ck_assert(dgm_rng_normal(&a) == dgm_rng_normal(&b));
        ck_assert(dgm_rng_uniform(&a) == dgm_rng_uniform(&b));
    }
    /* a copied state (a checkpoint) resumes the same sequence */
    dgm_rng saved = a;
    float want[10];
    for (int i = 0; i < 10; i++)
        want[i] = dgm_rng_normal(&a);
    for (int i = 0; i < 10; i++)
        ck_assert(dgm_rng_normal(&saved) == want[i]);
}
END_TEST

/* ---- fork --------------------------------------------------------------- */

START_TEST(test_fork)
{
    dgm_rng p, before, c1, c1b, c2;
    dgm_rng_seed(&p, 1234);
    before = p;
    dgm_rng_fork(&c1, &p, 1);
    ck_assert(memcmp(&p, &before, sizeof p) == 0); /* parent not advanced */
    dgm_rng_fork(&c1b, &p, 1);
    dgm_rng_fork(&c2, &p, 2);
    ck_assert(memcmp(&c1, &c1b, sizeof c1) == 0); /* same label, same child */
    ck_assert(memcmp(&c1, &c2, sizeof c1) != 0);

    /* a different parent state gives a different child for the same label */
    dgm_rng q = p, cq;
    dgm_rng_u64(&q);
    dgm_rng_fork(&cq, &q, 1);
    ck_assert(memcmp(&c1, &cq, sizeof c1) != 0);

    /* streams of child 1, child 2 and the parent are uncorrelated:
     * |r| < 0.02 where its standard deviation is 1/sqrt(n) = 0.0032 */
    const int n = 100000;
    double s1 = 0, s2 = 0, sp = 0, s11 = 0, s22 = 0, spp = 0, s12 = 0, s1p = 0;
    for (int i = 0; i < n; i++) {
        double a = dgm_rng_uniform_f64(&c1), b = dgm_rng_uniform_f64(&c2),
               c = dgm_rng_uniform_f64(&p);
        s1 += a, s2 += b, sp += c;
        s11 += a * a, s22 += b * b, spp += c * c;
        s12 += a * b, s1p += a * c;
    }
    double v1 = s11 / n - (s1 / n) * (s1 / n);
    double v2 = s22 / n - (s2 / n) * (s2 / n);
    double vp = spp / n - (sp / n) * (sp / n);
    double r12 = (s12 / n - (s1 / n) * (s2 / n)) / sqrt(v1 * v2);
    double r1p = (s1p / n - (s1 / n) * (sp / n)) / sqrt(v1 * vp);
    ck_assert_double_lt(fabs(r12), 0.02);
    ck_assert_double_lt(fabs(r1p), 0.02);

    /* the child may be the parent itself */
    dgm_rng self = before, other;
    dgm_rng_fork(&other, &self, 5);
    dgm_rng_fork(&self, &self, 5);
    ck_assert(memcmp(&self, &other, sizeof self) == 0);
}
END_TEST

/* ---- uniform ------------------------------------------------------------ */

START_TEST(test_uniform)
{
    /* 1e5 draws: mean 1/2 within 0.005 (sd 0.0009), variance 1/12 within
     * 0.003 (sd 0.0003). */
    dgm_rng r;
    dgm_rng_seed(&r, 3);
    const int n = 100000;
    double s = 0, ss = 0, s64 = 0;
    float lo = 1, hi = 0;
    for (int i = 0; i < n; i++) {
        float u = dgm_rng_uniform(&r);
        ck_assert(u >= 0.0f && u < 1.0f);
        lo = u < lo ? u : lo;
        hi = u > hi ? u : hi;
        s += u;
        ss += (double)u * u;
        double d = dgm_rng_uniform_f64(&r);
        ck_assert(d >= 0.0 && d < 1.0);
        s64 += d;
    }
    double mean = s / n, var = ss / n - mean * mean;
    ck_assert_double_eq_tol(mean, 0.5, 0.005);
    ck_assert_double_eq_tol(var, 1.0 / 12.0, 0.003);
    ck_assert_double_eq_tol(s64 / n, 0.5, 0.005);
    ck_assert_float_lt(lo, 0.001f);
    ck_assert_float_gt(hi, 0.999f);

    /* uniform is the top 24 bits of the next u64, exactly */
    dgm_rng a, b;
    dgm_rng_seed(&a, 11);
    dgm_rng_seed(&b, 11);
    uint64_t x = dgm_rng_u64(&a);
    ck_assert(dgm_rng_uniform(&b) == (float)(x >> 40) / 16777216.0f);
    x = dgm_rng_u64(&a);
    ck_assert(dgm_rng_uniform_f64(&b) ==
              (double)(x >> 11) / 9007199254740992.0);
}
END_TEST

/* ---- normal ------------------------------------------------------------- */

START_TEST(test_normal)
{
    /* 1e5 draws: mean 0 within 0.02 (sd 0.0032), variance 1 within 0.03
     * (sd 0.0045), P(|z| < 1) = 0.6827 within 0.01 (sd 0.0015), kurtosis
     * E[z^4] = 3 within 0.15 (sd 0.03). */
    dgm_rng r;
    dgm_rng_seed(&r, 5);
    const int n = 100000;
    double s = 0, ss = 0, s4 = 0;
    int inside = 0;
    for (int i = 0; i < n; i++) {
        double z = dgm_rng_normal(&r);
        ck_assert(isfinite(z));
        s += z;
        ss += z * z;
        s4 += z * z * z * z;
        inside += fabs(z) < 1.0;
    }
    double mean = s / n, var = ss / n - mean * mean;
    ck_assert_double_eq_tol(mean, 0.0, 0.02);
    ck_assert_double_eq_tol(var, 1.0, 0.03);
    ck_assert_double_eq_tol((double)inside / n, 0.6826894921, 0.01);
    ck_assert_double_eq_tol(s4 / n, 3.0, 0.15);
}
END_TEST

/* ---- below -------------------------------------------------------------- */

START_TEST(test_below)
{
    dgm_rng r;
    dgm_rng_seed(&r, 17);
    /* 70000 draws over 7 bins: 10000 each within 500 (sd 93) */
    int count[7] = {0};
    for (int i = 0; i < 70000; i++) {
        uint64_t v = dgm_rng_below(&r, 7);
        ck_assert_uint_lt(v, 7);
        count[v]++;
    }
    for (int k = 0; k < 7; k++)
        ck_assert_int_lt(abs(count[k] - 10000), 500);

    for (int i = 0; i < 100; i++)
        ck_assert_uint_eq(dgm_rng_below(&r, 1), 0);
    ck_assert_uint_eq(dgm_rng_below(&r, 0), 0);

    /* a bound just above 2^63 rejects about half the raw draws: the
     * results stay below it and both halves occur */
    uint64_t big = (1ull << 63) + 1;
    int upper = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t v = dgm_rng_below(&r, big);
        ck_assert_uint_lt(v, big);
        upper += v >= (1ull << 62);
    }
    ck_assert_int_gt(upper, 400); /* 500 expected, sd 16 */
    ck_assert_int_lt(upper, 600);
}
END_TEST

/* ---- shuffle ------------------------------------------------------------ */

START_TEST(test_shuffle)
{
    dgm_rng r;
    dgm_rng_seed(&r, 99);
    enum { N = 1000 };
    int64_t idx[N];
    for (int i = 0; i < N; i++)
        idx[i] = i;
    dgm_rng_shuffle(&r, idx, N);
    int seen[N] = {0}, fixed = 0;
    for (int i = 0; i < N; i++) {
        ck_assert(idx[i] >= 0 && idx[i] < N);
        ck_assert_int_eq(seen[idx[i]], 0);
        seen[idx[i]] = 1;
        fixed += idx[i] == i;
    }
    ck_assert_int_lt(fixed, 10); /* expected 1 fixed point */

    /* same seed, same order */
    int64_t again[N];
    for (int i = 0; i < N; i++)
        again[i] = i;
    dgm_rng_seed(&r, 99);
    dgm_rng_shuffle(&r, again, N);
    ck_assert(memcmp(idx, again, sizeof idx) == 0);

    /* all 6 orders of 3 items: 60000 shuffles, 10000 each within 500 */
    int perm_count[6] = {0};
    for (int t = 0; t < 60000; t++) {
        int64_t v[3] = {0, 1, 2};
        dgm_rng_shuffle(&r, v, 3);
        int code = (int)(v[0] * 2 + (v[1] > v[2]));
        perm_count[code]++;
    }
    for (int k = 0; k < 6; k++)
        ck_assert_int_lt(abs(perm_count[k] - 10000), 500);

    /* n of 0 and 1 are no-ops */
    int64_t one = 42;
    dgm_rng_shuffle(&r, &one, 1);
    ck_assert_int_eq(one, 42);
    dgm_rng_shuffle(&r, NULL, 0);
}
END_TEST

static Suite *rng_suite(void)
{
    Suite *s = suite_create("rng");
    tq_case(s, "determinism", test_reference_stream,
            test_same_seed_same_stream);
    tq_case(s, "fork", test_fork);
    tq_case(s, "uniform", test_uniform);
    tq_case(s, "normal", test_normal);
    tq_case(s, "below", test_below);
    tq_case(s, "shuffle", test_shuffle);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(rng_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
