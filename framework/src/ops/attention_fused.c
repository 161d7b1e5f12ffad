/* attention_fused.c - attention_packed's fast path: one task per (batch,
 * head) that copies its head's q, k and v out of the packed rows into
 * padded scratch (L1/L2-sized at T 64, d 32), computes only the key blocks
 * at or below the diagonal when causal, and writes its slice of the output
 * (forward) or of dqkv (backward) itself. The small GEMMs are plain C
 * tiles of R rows by 16 lanes that GCC keeps in vector registers; each
 * output element is one sum in a fixed order, so the bits do not depend on
 * the thread count. Measured against the batched oneDNN matmuls this
 * replaced in docs/performance.md. */
#include <omp.h>

#include "attention_packed.h"

#pragma GCC optimize("no-trapping-math")
/* ISO C mode leaves a * b + c as two roundings; the tiles are multiply-add
 * chains, one FMA each where the machine has it. */
#pragma GCC optimize("fp-contract=fast")

/* Tiles: R rows by W lanes of accumulators, enough independent FMA chains
 * to cover the FMA latency: 8 x 16 floats is 8 AVX-512 registers; with
 * 16 registers of 8 floats (AVX2) 4 x 16 fits without spilling. Tp and
 * the padded d are multiples of W, so the tiles need no tails; a row
 * block of R never straddles a lane group, so its rows share one causal
 * length. */
#define W 16
#ifdef __AVX512F__
#define R 8
#else
#define R 4
#endif

static int64_t up(int64_t x, int64_t m)
{
    return (x + m - 1) / m * m;
}

int64_t dgm__pk_fused_tp(int64_t T)
{
    return up(T, W);
}

/* Keys a causal query row i reads, whole lane groups: P is written (and
 * zero past key i) up to this column, never beyond. */
static inline int64_t row_len(const dgm__pk_geom *s, int64_t Tp, int64_t i)
{
    return s->causal ? up(i + 1, W) : Tp;
}

int64_t dgm__pk_fused_scratch(const dgm__pk_geom *s, bool backward)
{
    const int64_t Tp = up(s->T, W), dp = up(s->d, W);
    /* forward: q [Tp, d], k^T [d, Tp], v [Tp, dp], a tile;
     * backward: q, k, dO [Tp, dp], v^T [d, Tp], dS [Tp, Tp], a tile */
    if (!backward)
        return up(Tp * s->d, W) + s->d * Tp + Tp * dp + R * dp;
    return 3 * Tp * dp + s->d * Tp + Tp * Tp + R * dp;
}

/* ---- tiles -------------------------------------------------------------*/

/* o[r, j] = sum_c a[r, c] bt[c, j] for r < R, j < n (a multiple of W):
 * scores q k^T and dP = dO v^T, keys along the lanes. */
static void tile_abt(float *restrict o, int64_t ldo, const float *restrict a,
                     int64_t lda, const float *restrict bt, int64_t ldb,
                     int64_t k, int64_t n)
{
    for (int64_t j0 = 0; j0 < n; j0 += W) {
        float acc[R][W] = {{0}};
        for (int64_t c = 0; c < k; c++) {
            const float *b = bt + c * ldb + j0;
            for (int r = 0; r < R; r++) {
                const float x = a[r * lda + c];
#pragma omp simd
                for (int l = 0; l < W; l++)
                    acc[r][l] += x * b[l];
            }
        }
        for (int r = 0; r < R; r++)
            memcpy(o + r * ldo + j0, acc[r], sizeof acc[r]);
    }
}

/* o[r, c] = sum_{j < n} a[r, j] b[j, c] for r < R, c < dp: P v and
 * dS k, channels along the lanes. */
static void tile_ab(float *restrict o, const float *restrict a, int64_t lda,
                    const float *restrict b, int64_t ldb, int64_t n, int64_t dp)
{
    for (int64_t c0 = 0; c0 < dp; c0 += W) {
        float acc[R][W] = {{0}};
        for (int64_t j = 0; j < n; j++) {
            const float *bj = b + j * ldb + c0;
            for (int r = 0; r < R; r++) {
                const float x = a[r * lda + j];
#pragma omp simd
                for (int l = 0; l < W; l++)
                    acc[r][l] += x * bj[l];
            }
        }
        for (int r = 0; r < R; r++)
            memcpy(o + r * dp + c0, acc[r], sizeof acc[r]);
    }
}

/* o[r, c] = sum_{i0 <= i < i1} a[i, r] b[i, c] for r < R, c < dp: P^T dO
 * and dS^T q, a read down its columns (a row of R floats per i). */
static void tile_atb(float *restrict o, const float *restrict a, int64_t lda,
                     const float *restrict b, int64_t ldb, int64_t i0,
                     int64_t i1, int64_t dp)
{
    for (int64_t c0 = 0; c0 < dp; c0 += W) {
        float acc[R][W] = {{0}};
        for (int64_t i = i0; i < i1; i++) {
            const float *bi = b + i * ldb + c0;
            for (int r = 0; r < R; r++) {
                const float x = a[i * lda + r];
#pragma omp simd
                for (int l = 0; l < W; l++)
                    acc[r][l] += x * bi[l];
            }
        }
        for (int r = 0; r < R; r++)
            memcpy(o + r * dp + c0, acc[r], sizeof acc[r]);
    }
}

/* Rows t0.. of a tile [R, dp] -> dst rows (stride ld), the first d
 * channels of each, rows < T only; added when acc. Plain loops, not
 * memcpy: rows of d 32 are 128 bytes, where a libc call costs as much
 * as the copy. */
static void tile_out(float *restrict dst, int64_t ld, const float *tile,
                     int64_t dp, int64_t t0, int64_t T, int64_t d, bool acc)
{
    for (int r = 0; r < R && t0 + r < T; r++) {
        float *o = dst + (t0 + r) * ld;
        const float *x = tile + r * dp;
        if (acc) {
#pragma omp simd
            for (int64_t c = 0; c < d; c++)
                o[c] += x[c];
        } else {
#pragma omp simd
            for (int64_t c = 0; c < d; c++)
                o[c] = x[c];
        }
    }
}

/* A head's [T, d] at src (row stride ld) -> dst [Tp, ldd], zero padded
 * (rows >= T, channels d..ldd). */
static void load_rows(float *restrict dst, int64_t ldd, const float *src,
                      int64_t ld, int64_t T, int64_t Tp, int64_t d)
{
    for (int64_t t = 0; t < T; t++) {
        float *o = dst + t * ldd;
        const float *x = src + t * ld;
#pragma omp simd
        for (int64_t c = 0; c < d; c++)
            o[c] = x[c];
        for (int64_t c = d; c < ldd; c++)
            o[c] = 0.0f;
    }
    for (int64_t t = T; t < Tp; t++)
        for (int64_t c = 0; c < ldd; c++)
            dst[t * ldd + c] = 0.0f;
}

/* The same head transposed -> dst [d, Tp], columns >= T zero. */
static void load_cols(float *restrict dst, const float *src, int64_t ld,
                      int64_t T, int64_t Tp, int64_t d)
{
    for (int64_t c = 0; c < d; c++) {
        float *o = dst + c * Tp;
        for (int64_t t = 0; t < T; t++)
            o[t] = src[t * ld + c];
        for (int64_t t = T; t < Tp; t++)
            o[t] = 0.0f;
    }
}

/* The rows of head b + 1 (its q, k, v in qkv, and what the backward reads
 * or writes in dout, dqkv and P) asked into cache while head b computes:
 * they are 2 of the 24 cache lines of each token's packed row, a pattern
 * the hardware prefetchers do not follow. Tokens t0..t1 of that head are
 * asked for with each row block, spread over the head's work rather than in
 * one burst the miss queues cannot hold (the loads of q and v stalled
 * ~40% of the forward's time without this; in the training step the
 * backward's first read of P, written by the forward long before, stalled
 * a third of its time). always_inline: GCC deletes a call to a function
 * of nothing but prefetches as one without effects. */
static inline __attribute__((always_inline)) void
prefetch_head(const dgm__pk_geom *s, int64_t b, int64_t t0, int64_t t1,
              const float *qkv, const float *dout, const float *dqkv,
              const float *p)
{
    if (b >= s->N * s->H)
        return;
    const int64_t T = s->T, d = s->d, D = s->H * d, n = b / s->H, h = b % s->H,
                  Tp = up(T, W);
    for (int64_t t = t0; t < t1 && t < T; t++) {
        const float *x = qkv + (n * T + t) * 3 * D + h * d;
        for (int64_t c = 0; c < d; c += 16) {
            __builtin_prefetch(x + c, 0, 3);
            __builtin_prefetch(x + D + c, 0, 3);
            __builtin_prefetch(x + 2 * D + c, 0, 3);
            if (dout)
                __builtin_prefetch(dout + (n * T + t) * D + h * d + c, 0, 3);
            if (dqkv) {
                const float *y = dqkv + (n * T + t) * 3 * D + h * d;
                __builtin_prefetch(y + c, 1, 3);
                __builtin_prefetch(y + D + c, 1, 3);
                __builtin_prefetch(y + 2 * D + c, 1, 3);
            }
        }
        if (p) {
            const float *pr = p + (b * Tp + t) * Tp;
            const int64_t len = s->causal ? up(t + 1, W) : Tp;
            for (int64_t j = 0; j < len; j += 16)
                __builtin_prefetch(pr + j, 0, 3);
        }
    }
}

/* ---- forward -----------------------------------------------------------*/

static void forward_head(const dgm__pk_geom *s, int64_t b, float *out, float *p,
                         const float *qkv, float *w)
{
    const int64_t T = s->T, d = s->d, D = s->H * d, Tp = up(T, W),
                  dp = up(d, W), n = b / s->H, h = b % s->H;
    const float *xq = qkv + n * T * 3 * D + h * d;
    float *q = w, *kt = q + up(Tp * d, W), *v = kt + d * Tp,
          *tile = v + Tp * dp;
    load_rows(q, d, xq, 3 * D, T, Tp, d);
    load_cols(kt, xq + D, 3 * D, T, Tp, d);
    load_rows(v, dp, xq + 2 * D, 3 * D, T, Tp, d);
    float *pb = p + b * Tp * Tp;
    float *ob = out + n * T * D + h * d;
    for (int64_t i0 = 0; i0 < T; i0 += R) {
        const int64_t len = row_len(s, Tp, i0);
        float *pr = pb + i0 * Tp;
        prefetch_head(s, b + 1, i0, i0 + R, qkv, NULL, NULL, p);
        tile_abt(pr, Tp, q + i0 * d, d, kt, Tp, d, len);
        for (int r = 0; r < R; r++) {
            if (i0 + r < T)
                dgm__pk_softmax_row(pr + r * Tp, s->causal ? i0 + r + 1 : T,
                                    len, s->scale);
            else /* padding rows: no query, zero probabilities */
                memset(pr + r * Tp, 0, (size_t)len * sizeof *pr);
        }
        tile_ab(tile, pr, Tp, v, dp, len, dp);
        tile_out(ob, D, tile, dp, i0, T, d, false);
    }
}

void dgm__pk_fused_forward(const dgm__pk_geom *s, float *out, float *p,
                           const float *qkv, float *scratch, int threads)
{
    const int64_t B = s->N * s->H, per = dgm__pk_fused_scratch(s, false);
    (void)threads;
#pragma omp parallel for schedule(static) num_threads(threads) if (B > 1)
    for (int64_t b = 0; b < B; b++)
        forward_head(s, b, out, p, qkv, scratch + omp_get_thread_num() * per);
}

/* ---- backward ----------------------------------------------------------*/

static void backward_head(const dgm__pk_geom *s, int64_t b, float *dqkv,
                          bool acc, const float *dout, const float *p,
                          const float *qkv, float *w)
{
    const int64_t T = s->T, d = s->d, D = s->H * d, Tp = up(T, W),
                  dp = up(d, W), n = b / s->H, h = b % s->H;
    const float *xq = qkv + n * T * 3 * D + h * d;
    float *q = w, *k = q + Tp * dp, *go = k + Tp * dp, *vt = go + Tp * dp,
          *ds = vt + d * Tp, *tile = ds + Tp * Tp;
    load_rows(q, dp, xq, 3 * D, T, Tp, d);
    load_rows(k, dp, xq + D, 3 * D, T, Tp, d);
    load_rows(go, dp, dout + n * T * D + h * d, D, T, Tp, d);
    load_cols(vt, xq + 2 * D, 3 * D, T, Tp, d);
    const float *pb = p + b * Tp * Tp;
    float *gq = dqkv + n * T * 3 * D + h * d, *gk = gq + D, *gv = gq + 2 * D;
    /* dS = scale P (dP - rowsum(dP P)), dP = dO v^T; then dq = dS k */
    for (int64_t i0 = 0; i0 < T; i0 += R) {
        const int64_t len = row_len(s, Tp, i0);
        float *dr = ds + i0 * Tp;
        prefetch_head(s, b + 1, i0, i0 + R, qkv, dout, dqkv, p);
        tile_abt(dr, Tp, go + i0 * dp, dp, vt, Tp, d, len);
        for (int r = 0; r < R; r++) {
            if (i0 + r < T)
                dgm__pk_softmax_row_backward(dr + r * Tp, pb + (i0 + r) * Tp,
                                             s->causal ? i0 + r + 1 : T, len,
                                             s->scale);
            else
                memset(dr + r * Tp, 0, (size_t)len * sizeof *dr);
        }
        tile_ab(tile, dr, Tp, k, dp, len, dp);
        tile_out(gq, 3 * D, tile, dp, i0, T, d, acc);
    }
    /* dv = P^T dO, dk = dS^T q: key j takes the queries i >= j (causal;
     * rows of the same lane group are written, zero above the diagonal) */
    for (int64_t j0 = 0; j0 < T; j0 += R) {
        const int64_t i0 = s->causal ? j0 : 0;
        tile_atb(tile, pb + j0, Tp, go, dp, i0, T, dp);
        tile_out(gv, 3 * D, tile, dp, j0, T, d, acc);
        tile_atb(tile, ds + j0, Tp, q, dp, i0, T, dp);
        tile_out(gk, 3 * D, tile, dp, j0, T, d, acc);
    }
}

void dgm__pk_fused_backward(const dgm__pk_geom *s, float *dqkv, bool accumulate,
                            const float *dout, const float *p, const float *qkv,
                            float *scratch, int threads)
{
    const int64_t B = s->N * s->H, per = dgm__pk_fused_scratch(s, true);
    (void)threads;
#pragma omp parallel for schedule(static) num_threads(threads) if (B > 1)
    for (int64_t b = 0; b < B; b++)
        backward_head(s, b, dqkv, accumulate, dout, p, qkv,
                      scratch + omp_get_thread_num() * per);
}
