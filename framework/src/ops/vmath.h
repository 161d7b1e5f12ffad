/* vmath.h - float exp, log1p and GELU written so that loops over them
 * vectorise (glibc's expf/log1pf/erff do not without -ffast-math); shared
 * by the C kernels (never installed). */
#ifndef DGM_VMATH_H
#define DGM_VMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* exp for the kernels: Cephes' expf polynomial (about 1 ulp on its range)
 * written so that loops over it vectorise, which glibc's expf does not
 * without -ffast-math (with row_max below, the C forward went from 3300
 * to ~900 us at [2048, 256]). Max error 1.3 ulp on [-87, 88.5]; below
 * -87.34 it returns 0 (denormals dropped), NaN stays. This form is for
 * x <= 88.72 only; exp_k below takes every float. */
static inline float exp_le_k(float x)
{
    const float lo = -87.33654f;
    /* NaN -> lo: the int cast below stays defined */
    const float xc = x > lo ? x : lo;
    /* n = round(x / ln 2) by the 1.5 * 2^23 trick, r = x - n ln 2 */
    float n = xc * 1.44269504088896341f + 12582912.0f;
    n -= 12582912.0f;
    float r = xc - n * 0.693359375f;
    r -= n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    /* 2^n as 2^h * 2^(n-h), h = n/2: both halves are normal floats for
     * every n in [-126, 128], so neither end of the range is lost */
    const int32_t ni = (int32_t)n, h = ni >> 1;
    /* memcpy, not a union: GCC vectorises the bit cast only this way */
    const int32_t b1 = (h + 127) << 23, b2 = (ni - h + 127) << 23;
    float f1, f2;
    memcpy(&f1, &b1, sizeof f1);
    memcpy(&f2, &b2, sizeof f2);
    const float y = p * f1 * f2;
    return x < lo ? 0.0f : (x == x ? y : x);
}

/* exp_le_k for every float: above 88.72 inf. */
static inline float exp_k(float x)
{
    const float hi = 88.72283f;
    const float y = exp_le_k(x > hi ? hi : x); /* NaN stays NaN */
    return x > hi ? INFINITY : y;
}

/* log(1 + u) for u in [0, 1] (softplus of a non-positive argument): with
 * s = u / (2 + u) in [0, 1/3], log(1 + u) = 2 atanh(s), whose odd series
 * to s^13 is within 2e-8 relative; no cancellation for tiny u. */
static inline float log1p_k(float u)
{
    /* s*s of a tiny s is a denormal, which costs ~100x per operation on
     * x86: square a clamped copy (the series is 1 there anyway). */
    float s = u / (2.0f + u), sc = s > 1e-15f ? s : 1e-15f, s2 = sc * sc;
    float p = 1.0f / 13.0f;
    p = p * s2 + 1.0f / 11.0f;
    p = p * s2 + 1.0f / 9.0f;
    p = p * s2 + 1.0f / 7.0f;
    p = p * s2 + 1.0f / 5.0f;
    p = p * s2 + 1.0f / 3.0f;
    p = p * s2 + 1.0f;
    return 2.0f * s * p;
}

/* a * b + c, one rounding where the target has fused multiply-adds: the
 * build is ISO C, in which GCC does not contract a * b + c by itself
 * (-ffp-contract=off), and the GELU pass is bound by these operations. A
 * target without them (plain x86-64) gets the two roundings; the kernels
 * below meet their bounds either way (gelu_kernels_match_float64). */
static inline float fma_k(float a, float b, float c)
{
#ifdef __FMA__
    return fmaf(a, b, c);
#else
    return a * b + c;
#endif
}

/* exp(-w / 2) for GELU's w = v^2 >= 0 (or NaN). With x = -w / 2, n =
 * round(x / ln 2) and r = x - n ln 2 in [-ln 2 / 2, ln 2 / 2], the
 * polynomial is in r' = -2 r = w + 2 n ln 2: one fused step from w, no x
 * needed. 2 ln 2's rounding to float costs |n| 1.9e-9 relative (2.4e-7 at
 * n = -126), far below the v^2 / 2 * 6e-8 of rounding v^2 (the test's v^2
 * term); without fused multiply-adds the rounding of n * 2 ln 2 adds about
 * as much as v^2's. 2^n is one normal float for n in [-126, 0], made from
 * the bits of k = x / ln 2 + 1.5 * 2^23 + 127, whose low bits are n + 127:
 * one shift instead of exp_le_k's split into two halves. From w = 175.4
 * on, n = -127 (the clamp at 176 keeps it there) and those bits give
 * exactly +0: no select (exp_le_k's lower clamp moved by one binade). NaN
 * needs none either: its clamp gives 0, but the callers' t is NaN
 * already. The polynomial is exp(-r' / 2) on [-ln 2, ln 2], relative
 * minimax (as half_erfcx_t_k below) of degree 6: 1.9e-9 in exact
 * arithmetic, the constant term 1 exact; 3.5e-7 relative in float over w
 * in [0, 175] (the end term above). */
static inline float exp_halfsq_k(float w)
{
    const float hi = 176.0f, magic = 12582912.0f + 127.0f;
    const float wc = w < hi ? w : hi; /* NaN -> hi */
    const float k = fma_k(wc, -0.72134752044448170f, magic);
    const float n = k - magic;
    const float r = fma_k(n, 1.38629436111989061f, wc);
    /* memcpy, not a union: GCC vectorises the bit cast only this way;
     * unsigned: the shift drops k's exponent bits */
    uint32_t kb;
    memcpy(&kb, &k, sizeof kb);
    kb <<= 23;
    float s;
    memcpy(&s, &kb, sizeof s);
    float p = 2.162007178e-05f;
    p = fma_k(p, r, -2.617129939e-04f);
    p = fma_k(p, r, 2.604264098e-03f);
    p = fma_k(p, r, -2.083302521e-02f);
    p = fma_k(p, r, 1.249999802e-01f);
    p = fma_k(p, r, -5.000000182e-01f);
    p = fma_k(p, r, 1.000000001e+00f);
    return p * s;
}

/* erfc(a) exp(a^2) / (2 t) for a >= 0, t = 1 / (1 + a / 2) in (0, 1]: one
 * polynomial in t - 0.585 of degree 9, so that Phi(-|v|) = t e q(t) and
 * phi(v) share the single exponential e = exp(-a^2) (the erfc fit of
 * Numerical Recipes' erfcc is of this function's log and needed a second
 * exponential). Only t > 0.176 matters: e is 0 from a^2 = 87.7 on, where
 * t = 0.176 (below, the value is finite and unused). Fitted in float64 with
 * numpy: relative minimax by Lawson's reweighted least squares (3000 rounds,
 * the best kept) on 4000 Chebyshev points of t in [0.17, 1] against
 * math.erfc(a) * exp(a^2) / (2 t): max relative error 1.9e-8 in exact
 * arithmetic, 1.6e-7 evaluated in float by this Horner form (1.9e-7
 * without fused multiply-adds); degree 8 had 4.3e-8 and took the GELU
 * kernels to 0.76 of the test's bound instead of 0.63. Relative, not absolute,
 * precision is the point: GELU's left tail v Phi(v) would lose it as 1 + erf(x)
 * in float. */
static inline float half_erfcx_t_k(float t)
{
    const float u = t - 0.585f;
    float q = 6.504305147e-03f;
    q = fma_k(q, u, -2.931143143e-02f);
    q = fma_k(q, u, 1.585500213e-03f);
    q = fma_k(q, u, 5.598242557e-02f);
    q = fma_k(q, u, -2.422750716e-02f);
    q = fma_k(q, u, -1.022359850e-01f);
    q = fma_k(q, u, 4.053965544e-02f);
    q = fma_k(q, u, 2.940490306e-01f);
    q = fma_k(q, u, 3.924467543e-01f);
    return fma_k(q, u, 2.866592526e-01f);
}

/* GELU, erf form: v Phi(v), Phi the standard normal cdf. */
static inline float gelu_k(float v)
{
    const float t = 1.0f / fma_k(fabsf(v), 0.35355339059327376f, 1.0f);
    /* Phi(-|v|); exp(-v^2 / 2) = exp(-a^2), a = |v| / sqrt 2 */
    const float h = t * exp_halfsq_k(v * v) * half_erfcx_t_k(t);
    return v * (v > 0.0f ? 1.0f - h : h);
}

/* GELU and its derivative Phi(v) + v phi(v) at once, one exponential per
 * element (phi's exp is the erfc's own factor): y returned, the
 * derivative in *d. */
static inline float gelu_grad_k(float v, float *d)
{
    const float t = 1.0f / fma_k(fabsf(v), 0.35355339059327376f, 1.0f);
    const float e = exp_halfsq_k(v * v);
    const float h = t * e * half_erfcx_t_k(t); /* Phi(-|v|) */
    const float c = v > 0.0f ? 1.0f - h : h;
    *d = fma_k(v * e, 0.39894228040143268f, c);
    return v * c;
}

#endif
