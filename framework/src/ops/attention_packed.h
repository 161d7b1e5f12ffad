/* attention_packed.h - what op_attention_packed.c (the op, its plain-C
 * reference path) and attention_fused.c (the fused per-head kernels) share:
 * the geometry, the causal softmax rows and the fused kernels' entry
 * points (never installed). */
#ifndef DGM_ATTENTION_PACKED_H
#define DGM_ATTENTION_PACKED_H

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "vmath.h"

/* qkv [N, T, 3D] with D = H d; scale multiplies the scores q k^T. */
typedef struct dgm__pk_geom {
    int64_t N, T, H, d;
    float scale;
    bool causal;
} dgm__pk_geom;

/* ---- the causal softmax rows ------------------------------------------ */

/* The row sums run in LANES fixed partial sums (lane l takes the keys
 * j = l mod LANES), folded by a fixed tree: the same bits whatever the
 * vector width (AVX2 and AVX-512 both hold a lane group in registers) and
 * the thread count, where `omp simd reduction` leaves the order to the
 * compiler. */
#define DGM_PK_LANES 16

static inline float dgm__pk_lanes_sum(float a[DGM_PK_LANES])
{
    for (int w = DGM_PK_LANES / 2; w > 0; w /= 2)
        for (int l = 0; l < w; l++)
            a[l] += a[l + w];
    return a[0];
}

/* One row of scores x [T] -> its softmax over keys j < n, zeros after.
 * The loops run over whole lane groups up to nv (n rounded up to LANES,
 * at most T) with keys j >= n masked to -inf (exp_k gives 0), so a causal
 * row's short length costs no scalar tails; the sum is the same as over
 * j < n alone (the masked lanes add zeros). */
static inline void dgm__pk_softmax_row(float *x, int64_t n, int64_t T, float sc)
{
    enum { L = DGM_PK_LANES };
    const int64_t nv = (n + L - 1) / L * L < T ? (n + L - 1) / L * L : T;
    /* the largest scaled score (any sign of sc), lane-wise over whole
     * groups (not fmaxf: a libm call here); max is exact in any order */
    float mx[L];
    for (int l = 0; l < L; l++)
        mx[l] = -INFINITY;
    int64_t j0 = 0;
    for (; j0 + L <= nv; j0 += L) {
        const float *xj = x + j0;
        const int64_t nj = n - j0;
#pragma omp simd
        for (int l = 0; l < L; l++) {
            const float v = l < nj ? xj[l] * sc : -INFINITY;
            mx[l] = v > mx[l] ? v : mx[l];
        }
    }
    for (int64_t j = j0; j < n; j++) {
        const float v = x[j] * sc;
        mx[0] = v > mx[0] ? v : mx[0];
    }
    for (int w = L / 2; w > 0; w /= 2)
        for (int l = 0; l < w; l++)
            mx[l] = mx[l + w] > mx[l] ? mx[l + w] : mx[l];
    const float m = mx[0];
    float acc[L] = {0};
    for (j0 = 0; j0 + L <= nv; j0 += L) {
        float *xj = x + j0;
        const int64_t nj = n - j0;
#pragma omp simd
        for (int l = 0; l < L; l++) {
            const float e = l < nj ? exp_k(xj[l] * sc - m) : 0.0f;
            xj[l] = e;
            acc[l] += e;
        }
    }
    {
        float *xj = x + j0;
        const int rest = (int)(nv - j0);
        const int64_t nj = n - j0;
#pragma omp simd
        for (int l = 0; l < rest; l++) {
            const float e = l < nj ? exp_k(xj[l] * sc - m) : 0.0f;
            xj[l] = e;
            acc[l] += e;
        }
    }
    const float inv = 1.0f / dgm__pk_lanes_sum(acc);
#pragma omp simd
    for (int64_t j = 0; j < nv; j++)
        x[j] *= inv;
    if (nv < T)
        memset(x + nv, 0, (size_t)(T - nv) * sizeof *x);
}

/* One row of dP g [T] -> scale * y (g - sum_j y g) for j < n, zeros
 * after; y (P) is zero at j >= n, so the dot runs over whole lane groups
 * up to nv as the forward does, in the same fixed order. */
static inline void dgm__pk_softmax_row_backward(float *g, const float *y,
                                                int64_t n, int64_t T, float sc)
{
    enum { L = DGM_PK_LANES };
    const int64_t nv = (n + L - 1) / L * L < T ? (n + L - 1) / L * L : T;
    float acc[L] = {0};
    int64_t j0 = 0;
    for (; j0 + L <= nv; j0 += L) {
#pragma omp simd
        for (int l = 0; l < L; l++)
            acc[l] += y[j0 + l] * g[j0 + l];
    }
    const int rest = (int)(nv - j0);
#pragma omp simd
    for (int l = 0; l < rest; l++)
        acc[l] += y[j0 + l] * g[j0 + l];
    const float dot = dgm__pk_lanes_sum(acc);
#pragma omp simd
    for (int64_t j = 0; j < nv; j++)
        g[j] = j < n ? sc * y[j] * (g[j] - dot) : 0.0f;
    if (nv < T)
        memset(g + nv, 0, (size_t)(T - nv) * sizeof *g);
}

/* ---- the fused kernels (attention_fused.c) ---------------------------- */

/* The fused path keeps P as [N, H, Tp, Tp], Tp = T rounded up to 16:
 * whole lane groups in every row; a causal row i is written up to key
 * i + 1 rounded up to 16, rows >= T are never read. */
int64_t dgm__pk_fused_tp(int64_t T);

/* Scratch floats one thread needs (forward or backward). */
int64_t dgm__pk_fused_scratch(const dgm__pk_geom *s, bool backward);

/* out [N, T, D] and p [N, H, Tp, Tp] from qkv [N, T, 3D]; scratch holds
 * threads * dgm__pk_fused_scratch(s, false) floats. */
void dgm__pk_fused_forward(const dgm__pk_geom *s, float *out, float *p,
                           const float *qkv, float *scratch, int threads);

/* dqkv [N, T, 3D] (+)= the gradient of out, from dout [N, T, D], p and
 * qkv as the forward left them; stores when accumulate is false. */
void dgm__pk_fused_backward(const dgm__pk_geom *s, float *dqkv, bool accumulate,
                            const float *dout, const float *p, const float *qkv,
                            float *scratch, int threads);

#endif
