/* dist_shm.c - the gradient sum of ranks on one node through an MPI-3
 * shared window (MPI_Win_allocate_shared): each rank writes its scaled
 * gradients into its own region, then sums one slice of the flat gradient
 * over every region, and every rank copies the whole sum back. On one node
 * this moves (n + 2) x the gradient's bytes through memory per rank, where
 * MPI_Allreduce's pipelined copies through vader take several times longer
 * and cannot overlap backward when every core computes. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/error.h"
#include "dgm/tensor.h"
#include "dist_shard.h"
#include "dist_shm.h"

#ifdef DGM_HAVE_MPI
#include <mpi.h>

/* Floats summed per block: 16 KB of result and of each region, so the
 * rank-order adds of a block stay in L1. Also the slice alignment: slices
 * start on a cache line, so no two ranks write one line of the result. */
#define BLOCK ((int64_t)4096)
#define ALIGN ((int64_t)16)

/* p's gradient is [at, at + n) of the flat gradient. */
typedef struct piece {
    dgm_param *p;
    int64_t at, n;
} piece;

static struct {
    int rank, size;
    bool on;
    MPI_Comm node;
    MPI_Win win;
    bool has_win;
    int64_t cap;    /* floats of each rank's region */
    int64_t slices; /* floats each rank's result slice can hold */
    int64_t vneed;  /* floats a split step's new values need there */
    bool shard;     /* this step's optimizer step is split (dist_shard.c) */
    float **region; /* size pointers into the window */
    float **result; /* rank r's slice of the sum, after its region */
    float *spill;   /* what did not fit the region this step */
    int64_t spill_cap;
    int64_t fill; /* floats packed this step */
    float scale;
    int rc;
    piece *pieces;
    int n_pieces, cap_pieces;
} S;

static int64_t round_up(int64_t n, int64_t to)
{
    return (n + to - 1) / to * to;
}

/* The result slice length for a flat gradient of n floats: every rank's
 * the same, a multiple of ALIGN, the last rank's possibly shorter. */
static int64_t slice_len(int64_t n)
{
    return round_up((n + S.size - 1) / S.size, ALIGN);
}

int dgm__shm_init(int rank, int size)
{
    const char *env = getenv("DGM_MPI_SHM");
    int want = 1;
    if (env && strcmp(env, "0") == 0)
        want = 0;
    else if (env && *env && strcmp(env, "1") != 0)
        return dgm_error(DGM_EINVAL,
                         "environment variable DGM_MPI_SHM='%s': expected 0 "
                         "(gradient sums with MPI_Iallreduce) or 1 (through "
                         "shared memory when every rank is on one node, the "
                         "default)",
                         env);
    S.rank = rank;
    S.size = size;
    MPI_Comm node;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0,
                            MPI_INFO_NULL, &node) != MPI_SUCCESS)
        want = 0, node = MPI_COMM_NULL;
    int n_node = 0;
    if (node != MPI_COMM_NULL)
        MPI_Comm_size(node, &n_node);
    /* every rank must take the same path: the lowest wish wins */
    int on = want && n_node == size;
    MPI_Allreduce(MPI_IN_PLACE, &on, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (!on) {
        if (node != MPI_COMM_NULL)
            MPI_Comm_free(&node);
        return 0;
    }
    /* a failed window allocation (out of memory) is reported, not fatal */
    MPI_Comm_set_errhandler(node, MPI_ERRORS_RETURN);
    S.node = node;
    S.on = true;
    return 1;
}

void dgm__shm_begin(float scale, bool shard)
{
    S.scale = scale;
    S.shard = shard;
    S.fill = 0;
    S.n_pieces = 0;
    S.rc = 0;
}

/* dst[0, n) = g * scale, vectorised; the copies are the gradient's one
 * pass through memory before the sum. */
static void put_scaled(float *restrict dst, const float *restrict g, int64_t n,
                       float scale)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++)
        dst[i] = g[i] * scale;
}

int dgm__shm_pack(dgm_param *p)
{
    if (S.rc < 0)
        return S.rc;
    int64_t n = dgm_tensor_numel(p->grad);
    const float *g = dgm_tensor_f32(p->grad);
    if (S.n_pieces == S.cap_pieces) {
        int cap = S.cap_pieces ? 2 * S.cap_pieces : 256;
        piece *np = realloc(S.pieces, (size_t)cap * sizeof *np);
        if (!np)
            return S.rc = dgm_error(DGM_ENOMEM,
                                    "gradient sum through shared memory: out "
                                    "of memory");
        S.pieces = np;
        S.cap_pieces = cap;
    }
    int64_t at = S.fill, end = at + n;
    /* the region first; past it (the window is too small for this step:
     * the first step, or a phase with more parameters) into the spill,
     * which dgm__shm_end moves into a larger window */
    if (end > S.cap && end - S.cap > S.spill_cap) {
        int64_t cap = round_up(end - S.cap, (int64_t)1 << 16);
        float *sp = realloc(S.spill, (size_t)cap * sizeof *sp);
        if (!sp)
            return S.rc = dgm_error(DGM_ENOMEM,
                                    "gradient sum through shared memory: out "
                                    "of memory for %lld floats",
                                    (long long)end);
        S.spill = sp;
        S.spill_cap = cap;
    }
    /* A gradient this rank steps is read by nobody else: its owner sums
     * it from the parameter itself (sum_own), so it is not copied. */
    if (S.shard && dgm__shard_owner(p) == S.rank) {
        S.pieces[S.n_pieces++] = (piece){.p = p, .at = at, .n = n};
        S.fill = end;
        return 0;
    }
    int64_t in_region = at < S.cap ? (end < S.cap ? n : S.cap - at) : 0;
    if (in_region > 0)
        put_scaled(S.region[S.rank] + at, g, in_region, S.scale);
    if (in_region < n)
        put_scaled(S.spill + (at + in_region - S.cap), g + in_region,
                   n - in_region, S.scale);
    S.pieces[S.n_pieces++] = (piece){.p = p, .at = at, .n = n};
    S.fill = end;
    return 0;
}

/* Collective: a window of at least `need` floats per region, and result
 * slices of at least S.vneed, holding what this rank packed so far (the
 * old region, then the spill). */
static int grow(int64_t need)
{
    int64_t cap = round_up(need, BLOCK);
    int64_t slices = slice_len(cap);
    if (slices < round_up(S.vneed, ALIGN))
        slices = round_up(S.vneed, ALIGN);
    MPI_Info info;
    MPI_Info_create(&info);
    /* each rank's part on its own pages (first touched by that rank) */
    MPI_Info_set(info, "alloc_shared_noncontig", "true");
    float *base = NULL;
    MPI_Win win;
    int ok = MPI_Win_allocate_shared((MPI_Aint)((cap + slices) * 4), 4, info,
                                     S.node, &base, &win) == MPI_SUCCESS;
    MPI_Info_free(&info);
    float **region = ok ? malloc(2 * (size_t)S.size * sizeof *region) : NULL;
    int all = region != NULL;
    MPI_Allreduce(MPI_IN_PLACE, &all, 1, MPI_INT, MPI_MIN, S.node);
    if (!all) {
        free(region);
        if (ok)
            MPI_Win_free(&win);
        return dgm_error(DGM_ENOMEM,
                         "gradient sum through shared memory: could not "
                         "allocate a window of %lld floats per rank on "
                         "every rank (run with DGM_MPI_SHM=0 to sum with "
                         "MPI_Iallreduce instead)",
                         (long long)(cap + slices));
    }
    MPI_Win_lock_all(MPI_MODE_NOCHECK, win);
    for (int r = 0; r < S.size; r++) {
        MPI_Aint bytes;
        int unit;
        MPI_Win_shared_query(win, r, &bytes, &unit, &region[r]);
        region[S.size + r] = region[r] + cap;
    }
    int64_t old = S.fill < S.cap ? S.fill : S.cap;
    if (old > 0)
        memcpy(region[S.rank], S.region[S.rank], (size_t)old * sizeof(float));
    if (S.fill > old)
        memcpy(region[S.rank] + old, S.spill,
               (size_t)(S.fill - old) * sizeof(float));
    if (S.has_win) {
        MPI_Win_unlock_all(S.win);
        MPI_Win_free(&S.win);
    }
    free(S.region);
    S.win = win;
    S.has_win = true;
    S.region = region;
    S.result = region + S.size;
    S.cap = cap;
    S.slices = slices;
    /* the spill's memory is not needed until the next growth */
    free(S.spill);
    S.spill = NULL;
    S.spill_cap = 0;
    return 0;
}

/* result slice of this rank = sum over the ranks, in rank order 0..n-1 (the
 * order is the same for every element, so the sum does not depend on which
 * rank computes it), block by block over the threads. */
static void sum_slice(int64_t lo, int64_t hi)
{
    float *out = S.result[S.rank];
    float *const *reg = S.region;
    int size = S.size;
#pragma omp parallel for schedule(static) if (hi - lo > 4 * BLOCK)
    for (int64_t b = lo; b < hi; b += BLOCK) {
        int64_t n = hi - b < BLOCK ? hi - b : BLOCK;
        float *restrict o = out + (b - lo);
        const float *restrict r0 = reg[0] + b;
#pragma omp simd
        for (int64_t i = 0; i < n; i++)
            o[i] = r0[i];
        for (int r = 1; r < size; r++) {
            const float *restrict rr = reg[r] + b;
#pragma omp simd
            for (int64_t i = 0; i < n; i++)
                o[i] += rr[i];
        }
    }
}

/* dst[0, n) = the sum over the ranks of [at, at + n) of the flat
 * gradient, in rank order, block by block over the threads. */
static void sum_into(float *dst, int64_t at, int64_t n)
{
    float *const *reg = S.region;
    int size = S.size;
#pragma omp parallel for schedule(static) if (n > 4 * BLOCK)
    for (int64_t b = 0; b < n; b += BLOCK) {
        int64_t m = n - b < BLOCK ? n - b : BLOCK;
        float *restrict o = dst + b;
        const float *restrict r0 = reg[0] + at + b;
#pragma omp simd
        for (int64_t i = 0; i < m; i++)
            o[i] = r0[i];
        for (int r = 1; r < size; r++) {
            const float *restrict rr = reg[r] + at + b;
#pragma omp simd
            for (int64_t i = 0; i < m; i++)
                o[i] += rr[i];
        }
    }
}

/* g[0, n) = the sum over the ranks of [at, at + n) of the flat gradient,
 * where this rank's own part is g * scale, not packed (dgm__shm_pack):
 * the same adds in the same order as sum_into, so the same bits. g is
 * both this rank's term and the result: rank 0 sums in place; rank 1 of
 * 2 in one pass; another rank through a block in L1. Every loop runs
 * along the elements (one over the ranks inside would vectorise across
 * the ranks, with gathers). */
static void sum_own(float *g, int64_t at, int64_t n)
{
    float *const *reg = S.region;
    const int size = S.size, own = S.rank;
    const float scale = S.scale;
#pragma omp parallel for schedule(static) if (n > 4 * BLOCK)
    for (int64_t b = 0; b < n; b += BLOCK) {
        int64_t m = n - b < BLOCK ? n - b : BLOCK;
        float *restrict o = g + b;
        if (own == 0) {
#pragma omp simd
            for (int64_t i = 0; i < m; i++)
                o[i] *= scale; /* rounded as packed */
            for (int r = 1; r < size; r++) {
                const float *restrict rr = reg[r] + at + b;
#pragma omp simd
                for (int64_t i = 0; i < m; i++)
                    o[i] += rr[i];
            }
            continue;
        }
        const float *restrict r0 = reg[0] + at + b;
        if (size == 2) {
#pragma omp simd
            for (int64_t i = 0; i < m; i++) {
                const float c = o[i] * scale;
                o[i] = r0[i] + c;
            }
            continue;
        }
        float t[BLOCK];
        memcpy(t, r0, (size_t)m * sizeof *t);
        for (int r = 1; r < size; r++) {
            const float *restrict rr = reg[r] + at + b;
            if (r == own) {
#pragma omp simd
                for (int64_t i = 0; i < m; i++) {
                    const float c = o[i] * scale;
                    t[i] += c;
                }
            } else {
#pragma omp simd
                for (int64_t i = 0; i < m; i++)
                    t[i] += rr[i];
            }
        }
        memcpy(o, t, (size_t)m * sizeof *o);
    }
}

/* The sums of [at, at + n) of the flat gradient into dst, across the
 * result slices (len floats each) of the ranks that hold them. */
static void copy_out(float *dst, int64_t at, int64_t n, int64_t len)
{
    while (n > 0) {
        int64_t r = at / len, off = at % len;
        int64_t take = len - off < n ? len - off : n;
        memcpy(dst, S.result[r] + off, (size_t)take * sizeof(float));
        dst += take;
        at += take;
        n -= take;
    }
}

int dgm__shm_end(int rc)
{
    if (rc == 0)
        rc = S.rc;
    /* The agreement, which is also the first barrier: the lowest failed
     * rank, and the flat size (every rank packs the same gradients, in the
     * same order: the same graph; max and min must agree). */
    long long v[3] = {rc < 0 ? S.size - S.rank : 0, S.fill, -S.fill};
    if (S.has_win)
        MPI_Win_sync(S.win); /* this rank's packed stores, visible */
    MPI_Allreduce(MPI_IN_PLACE, v, 3, MPI_LONG_LONG, MPI_MAX, MPI_COMM_WORLD);
    if (v[0] > 0) {
        int who = S.size - (int)v[0];
        if (rc < 0)
            return rc;
        return dgm_error(DGM_EINTERRUPTED,
                         "rank %d failed before its gradients were summed; "
                         "every rank stops (its message is on its standard "
                         "error)",
                         who);
    }
    int64_t n = v[1];
    if (n != -v[2])
        return dgm_error(DGM_ESTATE,
                         "gradient sum through shared memory: the ranks "
                         "packed different numbers of gradient values (%lld "
                         "to %lld): their graphs differ",
                         -v[2], v[1]);
    if (n == 0)
        return 0;
    if (n > S.cap) {
        if ((rc = grow(n)) < 0)
            return rc;
        MPI_Win_sync(S.win);
        MPI_Barrier(S.node); /* every region moved into the new window */
    }
    MPI_Win_sync(S.win); /* the other ranks' regions, as they wrote them */
    if (S.shard) {
        /* Each rank sums only the gradients it steps, straight into them
         * (the same adds in the same order as sum_slice: the same bits).
         * No barrier: nobody writes a region again before every rank has
         * passed dgm__shm_share's barrier, after its sums. */
        for (int k = 0; k < S.n_pieces; k++) {
            const piece *pc = &S.pieces[k];
            int o = dgm__shard_owner(pc->p);
            if (o == S.rank)
                sum_own(dgm_tensor_f32(pc->p->grad), pc->at, pc->n);
            else if (o < 0)
                sum_into(dgm_tensor_f32(pc->p->grad), pc->at, pc->n);
        }
        return 0;
    }
    int64_t len = slice_len(n);
    int64_t lo = S.rank * len, hi = lo + len < n ? lo + len : n;
    if (lo < hi)
        sum_slice(lo, hi);
    MPI_Win_sync(S.win);
    /* the second barrier: every slice summed; and no rank packs the next
     * step into its region before every rank has read it */
    MPI_Barrier(S.node);
    MPI_Win_sync(S.win);
    for (int k = 0; k < S.n_pieces; k++) {
        const piece *pc = &S.pieces[k];
        copy_out(dgm_tensor_f32(pc->p->grad), pc->at, pc->n, len);
    }
    /* Nobody writes a result slice again before the next step's agreement,
     * which every rank reaches only after its copy above. */
    return 0;
}

/* Parameters that are stepped: the optimizers' own test. */
static bool stepped(const dgm_param *p)
{
    return p && !p->frozen && p->grad && p->value;
}

int dgm__shm_share(dgm_param *const *ps, int n)
{
    /* The values' layout: ps's stepped parameters back to back, the same
     * on every rank (the same list). */
    int64_t total = 0;
    for (int i = 0; i < n; i++)
        if (stepped(ps[i]))
            total += dgm_tensor_numel(ps[i]->value);
    if (total > S.vneed)
        S.vneed = total;
    if (total > S.slices) { /* the same answer on every rank */
        int rc = grow(S.cap > 0 ? S.cap : BLOCK);
        if (rc < 0)
            return rc;
    }
    float *mine = S.result[S.rank];
    int64_t at = 0;
    for (int i = 0; i < n; i++) {
        if (!stepped(ps[i]))
            continue;
        int64_t len = dgm_tensor_numel(ps[i]->value);
        if (dgm__shard_owner(ps[i]) == S.rank)
            memcpy(mine + at, dgm_tensor_f32(ps[i]->value),
                   (size_t)len * sizeof(float));
        at += len;
    }
    MPI_Win_sync(S.win);
    /* Every owner's values written; every rank's sums done, so regions
     * may be packed again after this. */
    MPI_Barrier(S.node);
    MPI_Win_sync(S.win);
    at = 0;
    for (int i = 0; i < n; i++) {
        if (!stepped(ps[i]))
            continue;
        int64_t len = dgm_tensor_numel(ps[i]->value);
        int o = dgm__shard_owner(ps[i]);
        if (o >= 0 && o != S.rank)
            memcpy(dgm_tensor_f32(ps[i]->value), S.result[o] + at,
                   (size_t)len * sizeof(float));
        at += len;
    }
    /* Nobody writes a result slice again before the next step's
     * agreement, which every rank reaches only after its copies. */
    return 0;
}

void dgm__shm_close(void)
{
    if (!S.on)
        return;
    if (S.has_win) {
        MPI_Win_unlock_all(S.win);
        MPI_Win_free(&S.win);
        S.has_win = false;
    }
    MPI_Comm_free(&S.node);
    free(S.region);
    free(S.spill);
    free(S.pieces);
    memset(&S, 0, sizeof S);
}

#else /* without MPI: one process, never called past init */

int dgm__shm_init(int rank, int size)
{
    (void)rank;
    (void)size;
    return 0;
}
void dgm__shm_begin(float scale, bool shard)
{
    (void)scale;
    (void)shard;
}
int dgm__shm_pack(dgm_param *p)
{
    (void)p;
    return 0;
}
int dgm__shm_end(int rc)
{
    return rc;
}
int dgm__shm_share(dgm_param *const *ps, int n)
{
    (void)ps;
    (void)n;
    return 0;
}
void dgm__shm_close(void) {}

#endif
