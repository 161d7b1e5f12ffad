/* bench_gelu.c - the GELU pass of linear_gelu's forward alone: y = gelu(z)
 * in place and gz = gelu'(z), as lg_pass (ops/op_dense.c) runs it on each
 * row block while the block is in cache. 1M floats (about normal, std 2,
 * like fc1's pre-activations) go through in 128 KB blocks: each block is
 * copied into a cache-resident buffer, then passed. Arms, in alternating
 * rounds on one thread: "copy" (the copies alone), A (the erf form this
 * pass had before: general exp, degree-10 erfcx, no fused multiply-adds),
 * B (gelu_grad_k of vmath.h now). Printed: median ns per element of each
 * arm less the copy's, wall and process CPU, and B's speed-up.
 *
 *   ./build/bin/bench_gelu [ROUNDS]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_ab.h"
#include "vmath.h"

enum { TOTAL = 1 << 20, BLOCK = 32768, MAX_ROUNDS = 201 };

/* A: the kernels as they were (kept here only as the baseline): the
 * general exp_le_k of vmath.h, which the pass used, and the erfc fit of
 * degree 10 it had */
static inline float a_erfcx(float t)
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

static inline float a_gelu_grad(float v, float *d)
{
    const float a = fabsf(v) * 0.70710678118654752f;
    const float t = 1.0f / (1.0f + 0.5f * a);
    const float e = exp_le_k(-a * a);
    const float h = 0.5f * t * e * a_erfcx(t);
    const float c = v > 0.0f ? 1.0f - h : h;
    *d = c + v * 0.39894228040143268f * e;
    return v * c;
}

/* noinline: each arm is one loop the compiler vectorises on its own, as
 * lg_pass is */
static __attribute__((noinline)) void pass_a(float *y, float *gz, int64_t n)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        float d;
        y[i] = a_gelu_grad(y[i], &d);
        gz[i] = d;
    }
}

static __attribute__((noinline)) void pass_b(float *y, float *gz, int64_t n)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        float d;
        y[i] = gelu_grad_k(y[i], &d);
        gz[i] = d;
    }
}

static __attribute__((noinline)) void pass_none(float *y, float *gz, int64_t n)
{
    (void)y, (void)gz, (void)n;
}

typedef void (*pass_fn)(float *, float *, int64_t);

static float sink;

/* one round of an arm: the whole input through the block buffers */
static void run(pass_fn f, const float *src, float *y, float *gz)
{
    for (int64_t off = 0; off < TOTAL; off += BLOCK) {
        memcpy(y, src + off, sizeof(float) * BLOCK);
        f(y, gz, BLOCK);
        sink += y[off % BLOCK] + gz[off % BLOCK];
    }
}

int main(int argc, char **argv)
{
    const int rounds = argc > 1 ? atoi(argv[1]) : 41;
    if (rounds < 1 || rounds > MAX_ROUNDS) {
        fprintf(stderr, "bench_gelu: ROUNDS must be in [1, %d]\n", MAX_ROUNDS);
        return 2;
    }
    float *src = malloc(sizeof(float) * TOTAL);
    float *y = aligned_alloc(64, sizeof(float) * BLOCK);
    float *gz = aligned_alloc(64, sizeof(float) * BLOCK);
    static double t[3][MAX_ROUNDS], u[3][MAX_ROUNDS];
    if (!src || !y || !gz) {
        fprintf(stderr, "bench_gelu: out of memory\n");
        return 1;
    }
    /* about N(0, 4): the sum of four uniforms on [-sqrt 3, sqrt 3] */
    uint32_t s = 12345u;
    for (int64_t i = 0; i < TOTAL; i++) {
        float v = 0.0f;
        for (int k = 0; k < 4; k++) {
            s = s * 1664525u + 1013904223u;
            v += ((float)(s >> 8) / (float)(1u << 24) - 0.5f) * 3.4641016f;
        }
        src[i] = v;
    }
    memset(gz, 0, sizeof(float) * BLOCK);
    const pass_fn arms[3] = {pass_none, pass_a, pass_b};
    for (int it = -3; it < rounds; it++)
        for (int k = 0; k < 3; k++) {
            const int arm =
                ((it + 3) + k) % 3; /* rotate which arm goes first */
            const double t0 = now(), c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
            run(arms[arm], src, y, gz);
            if (it >= 0) {
                t[arm][it] = now() - t0;
                u[arm][it] = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
            }
        }
    double mt[3], mu[3];
    for (int arm = 0; arm < 3; arm++) {
        qsort(t[arm], (size_t)rounds, sizeof(double), cmp_double);
        qsort(u[arm], (size_t)rounds, sizeof(double), cmp_double);
        mt[arm] = t[arm][rounds / 2] * 1e9 / TOTAL;
        mu[arm] = u[arm][rounds / 2] * 1e9 / TOTAL;
    }
    printf("gelu pass, %d floats in %d-float blocks, %d rounds, medians\n",
           TOTAL, BLOCK, rounds);
    printf("%-34s %10s %10s\n", "arm", "wall ns/el", "cpu ns/el");
    printf("%-34s %10.3f %10.3f\n", "copy alone", mt[0], mu[0]);
    printf("%-34s %10.3f %10.3f\n", "A: before (less the copy)", mt[1] - mt[0],
           mu[1] - mu[0]);
    printf("%-34s %10.3f %10.3f\n", "B: gelu_grad_k (less the copy)",
           mt[2] - mt[0], mu[2] - mu[0]);
    printf("speed-up of B over A: wall %.2fx, cpu %.2fx\n",
           (mt[1] - mt[0]) / (mt[2] - mt[0]),
           (mu[1] - mu[0]) / (mu[2] - mu[0]));
    free(src);
    free(y);
    free(gz);
    return sink == 12345.678f; /* keeps the passes' results alive */
}
