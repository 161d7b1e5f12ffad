/* dist.c - data-parallel training across processes: rank, size, the
 * gradient sums, agreement and broadcast. The one file that calls MPI
 * (compiled with DGM_HAVE_MPI when the build found it); without MPI, or
 * when no launcher started us, one process of rank 0. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dgm/error.h"
#include "dgm/tensor.h"
#include "dist.h"

#ifdef DGM_HAVE_MPI
#include <mpi.h>
#endif

static struct {
    bool ready, mpi;
    int rank, size;
    double reduce_s;
    float *bucket[2];
} D = {.size = 1};

/* Floats per gradient bucket: large enough that a bucket's latency is
 * small against its transfer, small enough that two stay in cache-sized
 * memory and the next bucket is packed while this one travels. */
#define BUCKET_FLOATS ((int64_t)1 << 20)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The process count a launcher announces in the environment (Open MPI's
 * mpirun, PMIx as srun --mpi=pmix sets it, PMI-1/2), or 0: not launched.
 * Checked before MPI_Init so a plain run never initialises MPI. */
static int launcher_size(void)
{
    static const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_SIZE",
                                 "PMI_SIZE", "SLURM_NTASKS"};
    if (!getenv("OMPI_COMM_WORLD_SIZE") && !getenv("PMIX_RANK") &&
        !getenv("PMI_SIZE") && !getenv("PMI_RANK"))
        return 0;
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) {
        const char *v = getenv(vars[i]);
        if (v && atoi(v) > 0)
            return atoi(v);
    }
    return 1;
}

#ifdef DGM_HAVE_MPI
static void finalize(void)
{
    int done = 0;
    MPI_Finalized(&done);
    free(D.bucket[0]);
    free(D.bucket[1]);
    if (!done)
        MPI_Finalize();
}
#endif

int dgm__dist_init(void)
{
    if (D.ready)
        return 0;
    int n = launcher_size();
#ifdef DGM_HAVE_MPI
    if (n > 0) {
        int inited = 0;
        MPI_Initialized(&inited);
        if (!inited && MPI_Init(NULL, NULL) != MPI_SUCCESS)
            return dgm_error(DGM_EIO, "MPI_Init failed");
        MPI_Comm_rank(MPI_COMM_WORLD, &D.rank);
        MPI_Comm_size(MPI_COMM_WORLD, &D.size);
        D.mpi = true;
        if (!inited)
            atexit(finalize);
    }
#else
    if (n > 1)
        return dgm_error(DGM_EUNSUPPORTED,
                         "started as one of %d processes by an MPI launcher, "
                         "but this dgm was built without MPI (cmake "
                         "-DDGM_MPI=ON with libopenmpi-dev installed)",
                         n);
#endif
    D.ready = true;
    return 0;
}

int dgm__dist_rank(void)
{
    return D.rank;
}
int dgm__dist_size(void)
{
    return D.size;
}
double dgm__dist_reduce_seconds(void)
{
    return D.reduce_s;
}

void dgm__dist_share(int64_t n, int64_t *off, int64_t *cnt)
{
    int64_t q = n / D.size, r = n % D.size;
    *off = D.rank * q + (D.rank < r ? D.rank : r);
    *cnt = q + (D.rank < r ? 1 : 0);
}

int dgm__dist_sum_f64(double *buf, int n)
{
#ifdef DGM_HAVE_MPI
    if (D.mpi && D.size > 1)
        MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_DOUBLE, MPI_SUM,
                      MPI_COMM_WORLD);
#endif
    (void)buf;
    (void)n;
    return 0;
}

int dgm__dist_first(bool flag)
{
    int r = flag ? D.rank : D.size;
#ifdef DGM_HAVE_MPI
    if (D.mpi && D.size > 1)
        MPI_Allreduce(MPI_IN_PLACE, &r, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
#endif
    return r < D.size ? r : -1;
}

int dgm__dist_bcast(void *buf, int64_t n, int root)
{
#ifdef DGM_HAVE_MPI
    if (D.mpi && D.size > 1)
        for (int64_t at = 0; at < n;) {
            int part = n - at > (1 << 30) ? 1 << 30 : (int)(n - at);
            MPI_Bcast((char *)buf + at, part, MPI_BYTE, root, MPI_COMM_WORLD);
            at += part;
        }
#endif
    (void)buf;
    (void)n;
    (void)root;
    return 0;
}

int dgm__dist_barrier(void)
{
#ifdef DGM_HAVE_MPI
    if (D.mpi && D.size > 1)
        MPI_Barrier(MPI_COMM_WORLD);
#endif
    return 0;
}

#ifdef DGM_HAVE_MPI
/* Where a bucket's floats go back to: parameters [p0, p1), the first from
 * element e0, the last up to its element e1. */
typedef struct span {
    int p0, p1;
    int64_t e0, e1, n;
} span;

static bool reduced(const dgm_param *q)
{
    return q->grad && !q->frozen;
}

static void unpack(dgm_param **ps, const span *s, const float *b)
{
    int64_t at = 0;
    for (int k = s->p0; k <= s->p1 && at < s->n; k++) {
        if (!reduced(ps[k]))
            continue;
        float *g = dgm_tensor_f32(ps[k]->grad);
        int64_t from = k == s->p0 ? s->e0 : 0;
        int64_t to = dgm_tensor_numel(ps[k]->grad);
        if (k == s->p1 && s->e1 < to)
            to = s->e1;
        memcpy(g + from, b + at, (size_t)(to - from) * sizeof *g);
        at += to - from;
    }
}
#endif

#ifdef DGM_HAVE_MPI
/* Two buckets: one is packed while the other's sum travels. */
typedef struct buckets {
    MPI_Request req[2];
    span sp[2];
    int cur;
    int64_t fill;
    span s; /* of the bucket being packed; p0 < 0: empty */
} buckets;

/* Start summing the current bucket; wait for the other one (whose sum
 * started before) and copy it back, so it can be packed next. */
static void flush(buckets *bk, dgm_param **ps)
{
    int c = bk->cur;
    bk->s.n = bk->fill;
    MPI_Iallreduce(MPI_IN_PLACE, D.bucket[c], (int)bk->fill, MPI_FLOAT, MPI_SUM,
                   MPI_COMM_WORLD, &bk->req[c]);
    bk->sp[c] = bk->s;
    bk->cur = c ^ 1;
    if (bk->req[c ^ 1] != MPI_REQUEST_NULL) {
        MPI_Wait(&bk->req[c ^ 1], MPI_STATUS_IGNORE);
        unpack(ps, &bk->sp[c ^ 1], D.bucket[c ^ 1]);
    }
    bk->fill = 0;
    bk->s.p0 = -1;
}
#endif

int dgm__dist_reduce_grads(dgm_param **ps, int n, double scale)
{
    if (D.size < 2)
        return 0;
#ifdef DGM_HAVE_MPI
    double t0 = now_s();
    for (int i = 0; i < 2; i++)
        if (!D.bucket[i] &&
            !(D.bucket[i] = malloc(sizeof(float) * BUCKET_FLOATS)))
            return dgm_error(DGM_ENOMEM, "gradient buckets: out of memory");
    buckets bk = {.req = {MPI_REQUEST_NULL, MPI_REQUEST_NULL}, .s = {.p0 = -1}};
    const float f = (float)scale;
    for (int k = 0; k < n; k++) {
        if (!reduced(ps[k]))
            continue;
        int64_t len = dgm_tensor_numel(ps[k]->grad);
        const float *g = dgm_tensor_f32(ps[k]->grad);
        for (int64_t e = 0; e < len;) {
            if (bk.s.p0 < 0) {
                bk.s.p0 = k;
                bk.s.e0 = e;
            }
            int64_t room = BUCKET_FLOATS - bk.fill;
            int64_t take = len - e < room ? len - e : room;
            float *b = D.bucket[bk.cur] + bk.fill;
            for (int64_t i = 0; i < take; i++)
                b[i] = g[e + i] * f;
            e += take;
            bk.fill += take;
            bk.s.p1 = k;
            bk.s.e1 = e;
            if (bk.fill == BUCKET_FLOATS)
                flush(&bk, ps);
        }
    }
    if (bk.fill > 0)
        flush(&bk, ps);
    for (int i = 0; i < 2; i++)
        if (bk.req[i] != MPI_REQUEST_NULL) {
            MPI_Wait(&bk.req[i], MPI_STATUS_IGNORE);
            unpack(ps, &bk.sp[i], D.bucket[i]);
        }
    D.reduce_s += now_s() - t0;
#else
    (void)ps;
    (void)n;
    (void)scale;
#endif
    return 0;
}
