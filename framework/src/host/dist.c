/* dist.c - data-parallel training across processes: rank, size, the
 * gradient sums, agreement and broadcast. With dist_shm.c (the sum through
 * a shared window, which this file chooses), the only code that calls MPI
 * (compiled with DGM_HAVE_MPI when the build found it); without MPI, or
 * when no launcher started us, one process of rank 0. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dgm/error.h"
#include "dgm/profile.h"
#include "dgm/tensor.h"
#include "dist.h"
#include "dist_shard.h"
#include "dist_shm.h"

#ifdef DGM_HAVE_MPI
#include <mpi.h>
#endif

static struct {
    bool ready, mpi;
    bool shm; /* gradient sums through the shared window (dist_shm.c) */
    int rank, size;
    double reduce_s, wait_s;
} D = {.size = 1};

/* Floats per gradient bucket (4 MB): large enough that a bucket's latency
 * is small against its transfer, small enough that the first bucket
 * leaves early in backward. */
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
    if (!done) {
        dgm__shm_close();
        MPI_Finalize();
    }
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
        int on = D.size > 1 ? dgm__shm_init(D.rank, D.size) : 0;
        if (on < 0)
            return on;
        D.shm = on > 0;
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

double dgm__dist_wait_seconds(void)
{
    return D.wait_s;
}

const char *dgm__dist_sum_path(void)
{
    return D.size < 2 ? "none" : D.shm ? "shm" : "iallreduce";
}

/* FNV-1a over the bytes of every parameter that has a gradient (buffers,
 * such as batch norm's running statistics without sync_bn, are each
 * rank's own). */
void dgm__dist_print_checksum(const dgm_params *ps)
{
    const char *env = getenv("DGM_MPI_CHECKSUM");
    if (!env || strcmp(env, "1") != 0)
        return;
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < dgm_params_count(ps); i++) {
        const dgm_param *p = dgm_params_at(ps, i);
        if (!p->grad)
            continue;
        const unsigned char *b =
            (const unsigned char *)dgm_tensor_f32(p->value);
        size_t n = (size_t)dgm_tensor_numel(p->value) * sizeof(float);
        for (size_t k = 0; k < n; k++)
            h = (h ^ b[k]) * 1099511628211ull;
    }
    fprintf(stderr, "dgm: rank %d of %d: parameters fnv1a64 %016llx\n", D.rank,
            D.size, (unsigned long long)h);
}

void dgm__dist_share(int64_t n, int64_t *off, int64_t *cnt)
{
    int64_t q = n / D.size, r = n % D.size;
    *off = D.rank * q + (D.rank < r ? D.rank : r);
    *cnt = q + (D.rank < r ? 1 : 0);
}

/* The small collectives of the training loop (loss sums, stop decisions)
 * in the profile: each is a meeting of the ranks, where one waits for the
 * slowest. */
#define MEET_ROW "(ranks meet)"

int dgm__dist_sum_f64(double *buf, int n)
{
#ifdef DGM_HAVE_MPI
    if (D.mpi && D.size > 1) {
        double t0 = dgm_profile_enabled() ? now_s() : 0;
        MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_DOUBLE, MPI_SUM,
                      MPI_COMM_WORLD);
        if (dgm_profile_enabled())
            dgm_profile_add(MEET_ROW, now_s() - t0);
    }
#endif
    (void)buf;
    (void)n;
    return 0;
}

int dgm__dist_first(bool flag)
{
    int r = flag ? D.rank : D.size;
#ifdef DGM_HAVE_MPI
    if (D.mpi && D.size > 1) {
        double t0 = dgm_profile_enabled() ? now_s() : 0;
        MPI_Allreduce(MPI_IN_PLACE, &r, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
        if (dgm_profile_enabled())
            dgm_profile_add(MEET_ROW, now_s() - t0);
    }
#endif
    return r < D.size ? r : -1;
}

void dgm__dist_abort(void)
{
#ifdef DGM_HAVE_MPI
    if (D.mpi && D.size > 1) {
        fprintf(stderr,
                "dgm: rank %d of %d: %s\ndgm: rank %d failed alone where "
                "the other ranks wait for it: ending the job (MPI_Abort)\n",
                D.rank, D.size, dgm_last_error(), D.rank);
        fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
#endif
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

/* ---- the gradient sum --------------------------------------------------
 * Buckets are filled in the order gradients become final (the same on every
 * rank: the same graph) and each is summed with MPI_Iallreduce as soon as it
 * is full, while backward goes on; dgm__dist_grads_end sends the last one,
 * waits for all and copies the sums back. */

/* A piece of a parameter's gradient in a bucket. */
typedef struct seg {
    dgm_param *p;
    int64_t e0, n; /* elements [e0, e0 + n) of p's gradient */
    int bucket;
    int64_t at; /* where in the bucket */
} seg;

static struct {
    bool on;
    bool shard; /* this step's optimizer step is split */
    int rc;
    float scale;
    float **buf; /* n_buf buckets of BUCKET_FLOATS */
    int n_buf, cap_buf;
    int cur;      /* the bucket being filled */
    int64_t fill; /* floats in it */
    seg *segs;
    int n_segs, cap_segs;
#ifdef DGM_HAVE_MPI
    MPI_Request *req; /* per bucket */
#endif
} G;

static int grow_segs(void)
{
    if (G.n_segs < G.cap_segs)
        return 0;
    int cap = G.cap_segs ? 2 * G.cap_segs : 256;
    seg *s = realloc(G.segs, (size_t)cap * sizeof *s);
    if (!s)
        return dgm_error(DGM_ENOMEM, "gradient buckets: out of memory");
    G.segs = s;
    G.cap_segs = cap;
    return 0;
}

/* Bucket b exists (allocated once, reused by every step after). */
static int need_bucket(int b)
{
    if (b < G.n_buf)
        return 0;
    if (b >= G.cap_buf) {
        int cap = G.cap_buf ? 2 * G.cap_buf : 8;
        float **nb = realloc(G.buf, (size_t)cap * sizeof *nb);
        if (!nb)
            return dgm_error(DGM_ENOMEM, "gradient buckets: out of memory");
        G.buf = nb;
#ifdef DGM_HAVE_MPI
        MPI_Request *r = realloc(G.req, (size_t)cap * sizeof *r);
        if (!r)
            return dgm_error(DGM_ENOMEM, "gradient buckets: out of memory");
        G.req = r;
#endif
        G.cap_buf = cap;
    }
    if (!(G.buf[b] = malloc(sizeof(float) * BUCKET_FLOATS)))
        return dgm_error(DGM_ENOMEM, "gradient buckets: out of memory");
    G.n_buf = b + 1;
    return 0;
}

static void start_bucket(void)
{
#ifdef DGM_HAVE_MPI
    MPI_Iallreduce(MPI_IN_PLACE, G.buf[G.cur], (int)G.fill, MPI_FLOAT, MPI_SUM,
                   MPI_COMM_WORLD, &G.req[G.cur]);
#endif
    G.cur++;
    G.fill = 0;
}

int dgm__dist_grads_begin(double scale, bool shard)
{
    G.on = D.size > 1;
    G.shard = G.on && D.shm && shard;
    G.rc = 0;
    G.scale = (float)scale;
    if (G.on && D.shm)
        dgm__shm_begin(G.scale, G.shard);
    G.cur = 0;
    G.fill = 0;
    G.n_segs = 0;
    return 0;
}

void dgm__dist_grad_final(void *ctx, dgm_param *p)
{
    (void)ctx;
    if (!G.on || G.rc < 0 || !p->grad || p->frozen)
        return;
    double t0 = now_s();
    if (D.shm) {
        G.rc = dgm__shm_pack(p);
        D.reduce_s += now_s() - t0;
        return;
    }
    int64_t len = dgm_tensor_numel(p->grad);
    const float *g = dgm_tensor_f32(p->grad);
    for (int64_t e = 0; e < len;) {
        if ((G.rc = need_bucket(G.cur)) < 0 || (G.rc = grow_segs()) < 0)
            return;
        int64_t room = BUCKET_FLOATS - G.fill;
        int64_t take = len - e < room ? len - e : room;
        float *b = G.buf[G.cur] + G.fill;
        for (int64_t i = 0; i < take; i++)
            b[i] = g[e + i] * G.scale;
        G.segs[G.n_segs++] =
            (seg){.p = p, .e0 = e, .n = take, .bucket = G.cur, .at = G.fill};
        e += take;
        G.fill += take;
        if (G.fill == BUCKET_FLOATS)
            start_bucket();
    }
#ifdef DGM_HAVE_MPI
    /* Open MPI moves a non-blocking collective along only inside MPI calls:
     * give the buckets in flight a turn between two parameters. */
    int done;
    if (G.cur > 0)
        MPI_Testall(G.cur, G.req, &done, MPI_STATUSES_IGNORE);
#endif
    D.reduce_s += now_s() - t0;
}

int dgm__dist_grads_end(int rc)
{
    if (!G.on)
        return 0;
    G.on = false;
    if (D.shm) { /* every rank joins, a failed one too: no rank is left
                  * waiting, and all learn who failed */
        double t0 = now_s();
        int src = dgm__shm_end(rc < 0 ? rc : G.rc);
        double dt = now_s() - t0;
        D.reduce_s += dt;
        D.wait_s += dt;
        return src;
    }
    if (G.rc < 0)
        return G.rc; /* out of memory: this rank cannot go on */
    double t0 = now_s();
    if (G.fill > 0)
        start_bucket();
#ifdef DGM_HAVE_MPI
    if (G.cur > 0)
        MPI_Waitall(G.cur, G.req, MPI_STATUSES_IGNORE);
#endif
    for (int k = 0; k < G.n_segs; k++) {
        const seg *s = &G.segs[k];
        memcpy(dgm_tensor_f32(s->p->grad) + s->e0, G.buf[s->bucket] + s->at,
               (size_t)s->n * sizeof(float));
    }
    double dt = now_s() - t0;
    D.reduce_s += dt;
    D.wait_s += dt;
    return 0;
}

int dgm__dist_reduce_grads(dgm_param **ps, int n, double scale)
{
    if (D.size < 2)
        return 0;
    dgm__dist_grads_begin(scale, false);
    for (int k = 0; k < n; k++)
        dgm__dist_grad_final(NULL, ps[k]);
    return dgm__dist_grads_end(0);
}

int dgm__dist_share_params(dgm_param *const *ps, int n)
{
    if (!G.shard)
        return 0;
    G.shard = false;
    double t0 = now_s();
    int rc = dgm__shm_share(ps, n);
    double dt = now_s() - t0;
    D.reduce_s += dt;
    D.wait_s += dt;
    return rc;
}

/* ---- optimizer slots to rank 0 ----------------------------------------
 * Parameter by parameter, in the checkpoint's order: the owner sends its
 * slot count, then each slot's name and values; rank 0 makes the slot
 * (dgm_param_slot, which keeps the owner's order of slots) and receives. */
#define SLOT_NAME 128

int dgm__dist_gather_slots(dgm_params *ps)
{
#ifdef DGM_HAVE_MPI
    if (!D.mpi || D.size < 2)
        return 0;
    for (int i = 0; i < dgm_params_count(ps); i++) {
        dgm_param *p = dgm_params_at(ps, i);
        int o = dgm__shard_owner(p);
        if (o <= 0 || (D.rank != 0 && D.rank != o))
            continue;
        int k = dgm_param_slot_count(p);
        if (D.rank == o)
            MPI_Send(&k, 1, MPI_INT, 0, 0, MPI_COMM_WORLD);
        else
            MPI_Recv(&k, 1, MPI_INT, o, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        for (int j = 0; j < k; j++) {
            char name[SLOT_NAME] = {0};
            dgm_tensor *t = NULL;
            if (D.rank == o) {
                const char *nm;
                t = dgm_param_slot_at(p, j, &nm);
                snprintf(name, sizeof name, "%s", nm);
                MPI_Send(name, SLOT_NAME, MPI_CHAR, 0, 0, MPI_COMM_WORLD);
            } else {
                MPI_Recv(name, SLOT_NAME, MPI_CHAR, o, 0, MPI_COMM_WORLD,
                         MPI_STATUS_IGNORE);
                name[SLOT_NAME - 1] = '\0';
                if (!(t = dgm_param_slot(p, name))) {
                    /* the owner is already sending: no way back */
                    dgm_error_context("optimizer state of '%s' to rank 0: ",
                                      p->name);
                    dgm__dist_abort();
                    return dgm_last_code();
                }
            }
            /* a slot is like its parameter: contiguous, its dtype */
            int64_t bytes = dgm_tensor_nbytes(t);
            for (int64_t at = 0; at < bytes;) {
                int part = bytes - at > (1 << 30) ? 1 << 30 : (int)(bytes - at);
                char *b = (char *)t->data + at;
                if (D.rank == o)
                    MPI_Send(b, part, MPI_BYTE, 0, 1, MPI_COMM_WORLD);
                else
                    MPI_Recv(b, part, MPI_BYTE, o, 1, MPI_COMM_WORLD,
                             MPI_STATUS_IGNORE);
                at += part;
            }
        }
    }
#endif
    (void)ps;
    return 0;
}
