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
 * x <= 88.72 only (GELU's exp(-a^2): the upper clamp and the inf select
 * cost ~10% of its pass); exp_k below takes every float. */
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

/* erfc(a) exp(a^2) / t for a >= 0, t = 1 / (1 + a / 2) in (0, 1]: one
 * polynomial in t - 1/2 of degree 10, so that Phi(-|v|) = t e q(t) / 2 and
 * phi(v) share the single exponential e = exp(-a^2) (the erfc fit of
 * Numerical Recipes' erfcc is of this function's log and needed a second
 * exponential; the GELU pass of linear_gelu's forward was bound by the
 * two). Fitted in float64 with numpy: relative minimax by Lawson's
 * reweighted least squares on 4000 Chebyshev points of t in [1e-6, 1]
 * against math.erfc(a) * exp(a^2) (its continued fraction for a >= 20):
 * max relative error 1.1e-8 in exact arithmetic, 1.4e-7 evaluated in
 * float by this Horner form. Relative, not absolute, precision is the
 * point: GELU's left tail v Phi(v) would lose it as 1 + erf(x) in float. */
static inline float erfcx_t_k(float t)
{
    const float u = t - 0.5f;
    float q = 4.235230508e-02f;
    q = q * u - 1.909484370e-02f;
    q = q * u - 7.621375037e-02f;
    q = q * u + 5.530812619e-02f;
    q = q * u + 9.779286231e-02f;
    q = q * u - 1.038209996e-01f;
    q = q * u - 1.720214929e-01f;
    q = q * u + 1.457751909e-01f;
    q = q * u + 5.589428610e-01f;
    q = q * u + 6.871606090e-01f;
    return q * u + 5.107913569e-01f;
}

/* GELU, erf form: v Phi(v), Phi the standard normal cdf. */
static inline float gelu_k(float v)
{
    const float a = fabsf(v) * 0.70710678118654752f;
    const float t = 1.0f / (1.0f + 0.5f * a);
    const float h = 0.5f * t * exp_le_k(-a * a) * erfcx_t_k(t); /* Phi(-|v|) */
    return v * (v > 0.0f ? 1.0f - h : h);
}

/* GELU and its derivative Phi(v) + v phi(v) at once, one exponential per
 * element (phi's exp is the erfc's own factor): y returned, the
 * derivative in *d. */
static inline float gelu_grad_k(float v, float *d)
{
    const float a = fabsf(v) * 0.70710678118654752f;
    const float t = 1.0f / (1.0f + 0.5f * a);
    const float e = exp_le_k(-a * a);
    const float h = 0.5f * t * e * erfcx_t_k(t); /* Phi(-|v|) */
    const float c = v > 0.0f ? 1.0f - h : h;
    *d = c + v * 0.39894228040143268f * e;
    return v * c;
}

#endif
