/* attention_fused.c - attention_packed's fast path: one task per (batch,
 * head) that copies its head's q, k and v out of the packed rows into
 * padded scratch (L1/L2-sized at T 64, d 32), computes only the key blocks
 * at or below the diagonal when causal, and writes its slice of the output
 * (forward) or of dqkv (backward) itself. The small GEMMs are plain C
 * tiles of R rows by 16 lanes that GCC keeps in vector registers; each
 * output element is one sum in a fixed order, so the bits do not depend on
 * the thread count. Measured against the batched oneDNN matmuls this
 * replaced in docs/performance-transformer.md. */
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

/* The keys P v and dS k sum over for the row block at i0: causal, the
 * block's last row's, i0 + R, not its lane group's end len (with R 8, half
 * a group of P's zeros skipped in every other block); adding those
 * zeros changed no bits. */
static inline int64_t key_end(const dgm__pk_geom *s, int64_t i0, int64_t len)
{
    return s->causal ? i0 + R : len;
}

int64_t dgm__pk_fused_scratch(const dgm__pk_geom *s, bool backward)
{
    const int64_t Tp = up(s->T, W), dp = up(s->d, W);
    /* forward: q [Tp, d], k^T [d, Tp], v [Tp, dp], a tile;
     * backward: q, k, dO [Tp, dp], v^T [d, Tp], dS [Tp, Tp], a tile;
     * both: load_cols's block [W, d] */
    if (!backward)
        return up(Tp * s->d, W) + s->d * Tp + Tp * dp + R * dp + W * s->d;
    return 3 * Tp * dp + s->d * Tp + Tp * Tp + R * dp + W * s->d;
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

/* The same head transposed -> dst [d, Tp], columns >= T zero. W rows at
 * a time are copied whole into blk [W, d] and transposed from there: each
 * cache line of the packed rows is read once. Reading down a column of the
 * packed rows instead came back to every line d / 16 times, and rows 3 D
 * floats apart fall in few L1 sets (with q and v in the same ones), so
 * those returns missed: that gather led the forward's profile. */
static void load_cols(float *restrict dst, float *restrict blk,
                      const float *src, int64_t ld, int64_t T, int64_t Tp,
                      int64_t d)
{
    for (int64_t t0 = 0; t0 < Tp; t0 += W) {
        const int64_t nt = T - t0 < W ? T - t0 : W;
        for (int64_t t = 0; t < nt; t++) {
            const float *x = src + (t0 + t) * ld;
            float *o = blk + t * d;
#pragma omp simd
            for (int64_t c = 0; c < d; c++)
                o[c] = x[c];
        }
        for (int64_t t = nt; t < W; t++)
#pragma omp simd
            for (int64_t c = 0; c < d; c++)
                blk[t * d + c] = 0.0f;
        for (int64_t c = 0; c < d; c++) {
            float *o = dst + c * Tp + t0;
#pragma omp simd
            for (int l = 0; l < W; l++)
                o[l] = blk[l * d + c];
        }
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
 * a third of its time). A NULL buffer is not asked for: the backward
 * asks for dqkv in its second loop, the rest in its first, so that neither
 * loop's bursts hold all of a head's lines (~5% of its time in
 * bench_transformer). always_inline: GCC deletes a call to a function of
 * nothing but prefetches as one without effects. */
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
        for (int64_t c = 0; c < d; c += 16) {
            if (qkv) {
                const float *x = qkv + (n * T + t) * 3 * D + h * d;
                __builtin_prefetch(x + c, 0, 3);
                __builtin_prefetch(x + D + c, 0, 3);
                __builtin_prefetch(x + 2 * D + c, 0, 3);
            }
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

/* ---- softmax rows, R at a time -----------------------------------------*/

/* The keys row t0 + r of a row block reads (nothing for a padding row). */
static void block_lens(const dgm__pk_geom *s, int64_t t0, int64_t n[R])
{
    for (int r = 0; r < R; r++)
        n[r] = t0 + r >= s->T ? 0 : s->causal ? t0 + r + 1 : s->T;
}

/* Lane-wise max and sum folds of R rows, interleaved: per row each is a
 * chain of 4 dependent steps, which row by row left the softmax waiting
 * on its own folds. The same steps in the same order as the rows'
 * dgm__pk_lanes_sum; the widths are constants, so that GCC unrolls the
 * steps into vector operations (a loop over the width stayed scalar). */
#define FOLD(a, w, op)                                                         \
    for (int r = 0; r < R; r++)                                                \
        for (int l = 0; l < (w); l++)                                          \
            a[r][l] = op(a[r][l], a[r][l + (w)]);
#define FMAX(x, y) ((y) > (x) ? (y) : (x))
#define FADD(x, y) ((x) + (y))

static inline void fold_max(float a[R][DGM_PK_LANES])
{
    _Static_assert(DGM_PK_LANES == 16, "the folds below are 16 lanes");
    FOLD(a, 8, FMAX) FOLD(a, 4, FMAX) FOLD(a, 2, FMAX) FOLD(a, 1, FMAX)
}

static inline void fold_sum(float a[R][DGM_PK_LANES])
{
    FOLD(a, 8, FADD) FOLD(a, 4, FADD) FOLD(a, 2, FADD) FOLD(a, 1, FADD)
}

/* dgm__pk_softmax_row on the R rows of a block of scores x (stride ld),
 * row r over keys j < n[r] of len (a whole number of lane groups, the
 * block's row_len), the same bits; a row with n 0 comes out zero. The
 * key masks below compare int lane indices with int counts (a row's
 * keys fit an int: P holds Tp^2 floats a head): with 64-bit counts GCC
 * compared each lane group as two vectors of 64-bit integers and merged
 * the masks (the forward ~2.5% longer with AVX-512, ~7% with AVX2). */
static void softmax_block(float *x, int64_t ld, const int64_t n[R], int64_t len,
                          float sc)
{
    enum { L = DGM_PK_LANES };
    float mx[R][L], acc[R][L], m[R], inv[R];
    for (int r = 0; r < R; r++)
        for (int l = 0; l < L; l++)
            mx[r][l] = -INFINITY;
    for (int64_t j0 = 0; j0 < len; j0 += L)
        for (int r = 0; r < R; r++) {
            const float *xj = x + r * ld + j0;
            const int nj = (int)(n[r] - j0);
#pragma omp simd
            for (int l = 0; l < L; l++) {
                const float v = l < nj ? xj[l] * sc : -INFINITY;
                mx[r][l] = v > mx[r][l] ? v : mx[r][l];
            }
        }
    fold_max(mx);
    for (int r = 0; r < R; r++) {
        m[r] = mx[r][0];
        for (int l = 0; l < L; l++)
            acc[r][l] = 0.0f;
    }
    for (int64_t j0 = 0; j0 < len; j0 += L)
        for (int r = 0; r < R; r++) {
            float *xj = x + r * ld + j0;
            const int nj = (int)(n[r] - j0);
            const float mr = m[r];
            /* exp_le_k: x sc - m is at most a rounding above 0 (or NaN,
             * which it keeps), where exp_k's clamp to inf is dead work */
#pragma omp simd
            for (int l = 0; l < L; l++) {
                const float e = l < nj ? exp_le_k(xj[l] * sc - mr) : 0.0f;
                xj[l] = e;
                acc[r][l] += e;
            }
        }
    fold_sum(acc);
    for (int r = 0; r < R; r++)
        inv[r] = n[r] > 0 ? 1.0f / acc[r][0] : 0.0f;
    for (int r = 0; r < R; r++) {
        float *xr = x + r * ld;
        const float ir = inv[r];
#pragma omp simd
        for (int64_t j = 0; j < len; j++)
            xr[j] *= ir;
    }
}

/* dgm__pk_softmax_row_backward on the R rows of a block of dP g (stride
 * ld) with their P rows y, the same bits; rows with n 0 come out zero. */
static void softmax_block_backward(float *g, const float *y, int64_t ld,
                                   const int64_t n[R], int64_t len, float sc)
{
    enum { L = DGM_PK_LANES };
    float acc[R][L];
    for (int r = 0; r < R; r++)
        for (int l = 0; l < L; l++)
            acc[r][l] = 0.0f;
    for (int64_t j0 = 0; j0 < len; j0 += L)
        for (int r = 0; r < R; r++) {
            const float *yj = y + r * ld + j0, *gj = g + r * ld + j0;
#pragma omp simd
            for (int l = 0; l < L; l++)
                acc[r][l] += yj[l] * gj[l];
        }
    fold_sum(acc);
    for (int r = 0; r < R; r++) {
        float *gr = g + r * ld;
        const float *yr = y + r * ld;
        const float dot = acc[r][0];
        const int nr = (int)n[r];
#pragma omp simd
        for (int j = 0; j < (int)len; j++)
            gr[j] = j < nr ? sc * yr[j] * (gr[j] - dot) : 0.0f;
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
          *tile = v + Tp * dp, *blk = tile + R * dp;
    load_rows(q, d, xq, 3 * D, T, Tp, d);
    load_cols(kt, blk, xq + D, 3 * D, T, Tp, d);
    load_rows(v, dp, xq + 2 * D, 3 * D, T, Tp, d);
    float *pb = p + b * Tp * Tp;
    float *ob = out + n * T * D + h * d;
    for (int64_t i0 = 0; i0 < T; i0 += R) {
        const int64_t len = row_len(s, Tp, i0);
        float *pr = pb + i0 * Tp;
        /* not P: the forward only writes it (asking for its rows too
         * made no difference outside the noise) */
        prefetch_head(s, b + 1, i0, i0 + R, qkv, NULL, NULL, NULL);
        tile_abt(pr, Tp, q + i0 * d, d, kt, Tp, d, len);
        int64_t nr[R];
        block_lens(s, i0, nr);
        softmax_block(pr, Tp, nr, len, s->scale);
        tile_ab(tile, pr, Tp, v, dp, key_end(s, i0, len), dp);
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
          *ds = vt + d * Tp, *tile = ds + Tp * Tp, *blk = tile + R * dp;
    load_rows(q, dp, xq, 3 * D, T, Tp, d);
    load_rows(k, dp, xq + D, 3 * D, T, Tp, d);
    load_rows(go, dp, dout + n * T * D + h * d, D, T, Tp, d);
    load_cols(vt, blk, xq + 2 * D, 3 * D, T, Tp, d);
    const float *pb = p + b * Tp * Tp;
    float *gq = dqkv + n * T * 3 * D + h * d, *gk = gq + D, *gv = gq + 2 * D;
    /* dS = scale P (dP - rowsum(dP P)), dP = dO v^T; then dq = dS k */
    for (int64_t i0 = 0; i0 < T; i0 += R) {
        const int64_t len = row_len(s, Tp, i0);
        float *dr = ds + i0 * Tp;
        prefetch_head(s, b + 1, i0, i0 + R, qkv, dout, NULL, p);
        tile_abt(dr, Tp, go + i0 * dp, dp, vt, Tp, d, len);
        int64_t nr[R];
        block_lens(s, i0, nr);
        softmax_block_backward(dr, pb + i0 * Tp, Tp, nr, len, s->scale);
        tile_ab(tile, dr, Tp, k, dp, key_end(s, i0, len), dp);
        tile_out(gq, 3 * D, tile, dp, i0, T, d, acc);
    }
    /* dv = P^T dO, dk = dS^T q: key j takes the queries i >= j (causal;
     * rows of the same lane group are written, zero above the diagonal) */
    for (int64_t j0 = 0; j0 < T; j0 += R) {
        const int64_t i0 = s->causal ? j0 : 0;
        prefetch_head(s, b + 1, j0, j0 + R, NULL, NULL, dqkv, NULL);
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
