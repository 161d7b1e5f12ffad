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
 * -87.34 it returns 0 (denormals dropped), above 88.72 inf, NaN stays. */
static inline float exp_k(float x)
{
    const float lo = -87.33654f, hi = 88.72283f;
    float xc =
        x > lo ? x : lo; /* NaN -> lo: the int cast below stays defined */
    xc = xc < hi ? xc : hi;
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
    float y = p * f1 * f2;
    y = x < lo ? 0.0f : y;
    y = x > hi ? INFINITY : y;
    return x == x ? y : x;
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

/* log(erfc(a) / t) + a^2 for a >= 0, t = 1 / (1 + a / 2): the Chebyshev
 * fit of Numerical Recipes' erfcc (Press et al., 2nd ed., 6.2), whose
 * erfc has a relative error below 1.2e-7 everywhere, so GELU's left tail
 * keeps its relative precision (1 + erf(x) in float loses it). */
static inline float erfc_poly_k(float t)
{
    float p = 0.17087277f;
    p = p * t - 0.82215223f;
    p = p * t + 1.48851587f;
    p = p * t - 1.13520398f;
    p = p * t + 0.27886807f;
    p = p * t - 0.18628806f;
    p = p * t + 0.09678418f;
    p = p * t + 0.37409196f;
    p = p * t + 1.00002368f;
    return p * t - 1.26551223f;
}

/* exp(p) for p = erfc_poly_k(t), t in (0, 1], whose values lie in
 * [-1.2655, 0]: the Taylor series about the middle of that range, u = p +
 * 0.63275612 in [-0.633, 0.633], to u^9 (truncation below 6e-9 relative),
 * 10 FMAs instead of exp_k's range reduction and bit casts (the GELU
 * derivative pass in linear_gelu's forward went from 1.65 to 1.25 ms per
 * million elements on one Zen 4 core; same error against float64). */
static inline float exp_erfc_k(float p)
{
    const float u = p + 0.63275612f;
    float q = 1.0f / 362880.0f;
    q = q * u + 1.0f / 40320.0f;
    q = q * u + 1.0f / 5040.0f;
    q = q * u + 1.0f / 720.0f;
    q = q * u + 1.0f / 120.0f;
    q = q * u + 1.0f / 24.0f;
    q = q * u + 1.0f / 6.0f;
    q = q * u + 0.5f;
    q = q * u + 1.0f;
    q = q * u + 1.0f;
    return q * 0.531125935f; /* exp(-0.63275612) */
}

/* GELU, erf form: v Phi(v), Phi the standard normal cdf. */
static inline float gelu_k(float v)
{
    const float a = fabsf(v) * 0.70710678118654752f;
    const float t = 1.0f / (1.0f + 0.5f * a);
    const float h = 0.5f * t * exp_k(erfc_poly_k(t) - a * a); /* Phi(-|v|) */
    return v * (v > 0.0f ? 1.0f - h : h);
}

/* GELU and its derivative Phi(v) + v phi(v) at once, sharing the fit
 * (phi's exp is the erfc's own factor): y returned, the derivative in
 * *d. */
static inline float gelu_grad_k(float v, float *d)
{
    const float a = fabsf(v) * 0.70710678118654752f;
    const float t = 1.0f / (1.0f + 0.5f * a);
    const float e = exp_k(-a * a);
    const float h = 0.5f * t * e * exp_erfc_k(erfc_poly_k(t)); /* Phi(-|v|) */
    const float c = v > 0.0f ? 1.0f - h : h;
    *d = c + v * 0.39894228040143268f * e;
    return v * c;
}

#endif
