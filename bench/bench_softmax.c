/* bench_softmax.c - softmax / log_softmax over the last axis: dgm's forward
 * on both backends (oneDNN softmax_v2 vs the C kernel), and the backward:
 * the C kernel against a raw oneDNN softmax_v2 backward primitive (dgm's
 * DNNL backend adds one pass, dx += tmp, to the latter), in microseconds
 * per call. These figures set the rule in op_softmax.c.
 *
 *   ./bench_softmax            (threads: OMP_NUM_THREADS)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <oneapi/dnnl/dnnl.h>

#include "dgm/error.h"
#include "dgm/graph.h"
#include "dgm/tensor.h"
#include "graph_internal.h" /* struct dgm_var: to call one op's backward */

#define REPEATS 7

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median over REPEATS of the mean time of `iters` calls of fn(ctx). */
static double time_it(void (*fn)(void *), void *ctx, int iters)
{
    double t[REPEATS];
    fn(ctx); /* warm up: primitive creation, arena growth, page faults */
    for (int r = 0; r < REPEATS; r++) {
        double t0 = now_us();
        for (int i = 0; i < iters; i++)
            fn(ctx);
        t[r] = (now_us() - t0) / iters;
    }
    qsort(t, REPEATS, sizeof *t, cmp_double);
    return t[REPEATS / 2];
}

typedef struct fwd_ctx {
    dgm_graph *g;
    dgm_tensor *x;
    bool log_;
} fwd_ctx;

static void run_fwd(void *p)
{
    fwd_ctx *c = p;
    dgm_graph_reset(c->g);
    dgm_var *x = dgm_input(c->g, c->x);
    dgm_var *y =
        c->log_ ? dgm_log_softmax(c->g, x, -1) : dgm_softmax(c->g, x, -1);
    if (!y) {
        fprintf(stderr, "bench_softmax: %s\n", dgm_last_error());
        exit(1);
    }
}

/* dgm's C backward alone: the node's gradient is set by hand and its rule
 * run again and again on the REF backend (it accumulates into x's
 * gradient; fine here, and that path allocates nothing). */
typedef struct bwd_ctx {
    dgm_graph *g;
    dgm_var *y;
} bwd_ctx;

static void run_bwd(void *p)
{
    bwd_ctx *c = p;
    if (c->y->op->backward(c->g, c->y)) {
        fprintf(stderr, "bench_softmax: %s\n", dgm_last_error());
        exit(1);
    }
}

typedef struct dnnl_ctx {
    dnnl_primitive_t p;
    dnnl_stream_t s;
    int nargs;
    dnnl_exec_arg_t args[3];
} dnnl_ctx;

static void run_dnnl(void *p)
{
    dnnl_ctx *c = p;
    dnnl_primitive_execute(c->p, c->s, c->nargs, c->args);
    dnnl_stream_wait(c->s);
}

#define CHECK(call)                                                            \
    do {                                                                       \
        dnnl_status_t st_ = (call);                                            \
        if (st_ != dnnl_success) {                                             \
            fprintf(stderr, "bench_softmax: %s failed (%d)\n", #call,          \
                    (int)st_);                                                 \
            exit(1);                                                           \
        }                                                                      \
    } while (0)

/* Raw oneDNN forward and backward for [rows, c]; times in *fwd, *bwd. */
static void bench_dnnl(int64_t rows, int64_t c, bool log_, float *x, float *y,
                       float *dy, float *dx, int iters, double *fwd,
                       double *bwd, const char **impl_bwd)
{
    dnnl_engine_t eng;
    dnnl_stream_t s;
    CHECK(dnnl_engine_create(&eng, dnnl_cpu, 0));
    CHECK(dnnl_stream_create(&s, eng, dnnl_stream_default_flags));
    dnnl_memory_desc_t md;
    dnnl_dims_t dims = {rows, c};
    CHECK(dnnl_memory_desc_init_by_tag(&md, 2, dims, dnnl_f32, dnnl_ab));
    dnnl_alg_kind_t alg = log_ ? dnnl_softmax_log : dnnl_softmax_accurate;
    dnnl_softmax_v2_desc_t fd, bd;
    CHECK(dnnl_softmax_v2_forward_desc_init(&fd, dnnl_forward_training, alg,
                                            &md, &md, 1));
    dnnl_primitive_desc_t fpd, bpd;
    CHECK(dnnl_primitive_desc_create(&fpd, &fd, NULL, eng, NULL));
    CHECK(dnnl_softmax_v2_backward_desc_init(&bd, alg, &md, &md, &md, 1));
    CHECK(dnnl_primitive_desc_create(&bpd, &bd, NULL, eng, fpd));
    CHECK(
        dnnl_primitive_desc_query(bpd, dnnl_query_impl_info_str, 0, impl_bwd));
    dnnl_primitive_t fp, bp;
    CHECK(dnnl_primitive_create(&fp, fpd));
    CHECK(dnnl_primitive_create(&bp, bpd));
    dnnl_memory_t mx, my, mdy, mdx;
    CHECK(dnnl_memory_create(&mx, &md, eng, x));
    CHECK(dnnl_memory_create(&my, &md, eng, y));
    CHECK(dnnl_memory_create(&mdy, &md, eng, dy));
    CHECK(dnnl_memory_create(&mdx, &md, eng, dx));
    dnnl_ctx f = {fp, s, 2, {{DNNL_ARG_SRC, mx}, {DNNL_ARG_DST, my}}};
    dnnl_ctx b = {bp,
                  s,
                  3,
                  {{DNNL_ARG_DST, my},
                   {DNNL_ARG_DIFF_DST, mdy},
                   {DNNL_ARG_DIFF_SRC, mdx}}};
    *fwd = time_it(run_dnnl, &f, iters);
    *bwd = time_it(run_dnnl, &b, iters);
    dnnl_memory_destroy(mx);
    dnnl_memory_destroy(my);
    dnnl_memory_destroy(mdy);
    dnnl_memory_destroy(mdx);
    dnnl_primitive_destroy(fp);
    dnnl_primitive_destroy(bp);
    /* impl_bwd points into bpd: copy before destroying it */
    static char impl[64];
    snprintf(impl, sizeof impl, "%s", *impl_bwd);
    *impl_bwd = impl;
    dnnl_primitive_desc_destroy(fpd);
    dnnl_primitive_desc_destroy(bpd);
    dnnl_stream_destroy(s);
    dnnl_engine_destroy(eng);
}

int main(void)
{
    const int64_t shapes[][2] = {{32 * 64, 256}, {128, 10}};
    printf("softmax over the last axis, us per call (median of %d)\n", REPEATS);
    printf("%-12s %-12s %9s %9s %9s | %9s %9s  %s\n", "shape", "op", "fwd DNNL",
           "fwd C", "fwd raw", "bwd C", "bwd raw", "raw bwd impl");
    for (int k = 0; k < 2; k++) {
        const int64_t rows = shapes[k][0], c = shapes[k][1];
        const int64_t n = rows * c;
        const int iters = n > 100000 ? 200 : 5000;
        dgm_tensor *xt = dgm_tensor_new(DGM_F32, 2, shapes[k]);
        dgm_tensor *dyt = dgm_tensor_new(DGM_F32, 2, shapes[k]);
        if (!xt || !dyt) {
            fprintf(stderr, "bench_softmax: %s\n", dgm_last_error());
            return 1;
        }
        float *xp = dgm_tensor_f32(xt), *dyp = dgm_tensor_f32(dyt);
        for (int64_t i = 0; i < n; i++) {
            xp[i] = 4.0f * sinf(0.37f * (float)i);
            dyp[i] = cosf(0.11f * (float)i);
        }
        for (int log_ = 0; log_ < 2; log_++) {
            dgm_graph *g = dgm_graph_new();
            if (!g)
                return 1;
            fwd_ctx fc = {g, xt, log_};
            dgm_graph_set_backend(g, DGM_BACKEND_DNNL);
            double f_dnnl = time_it(run_fwd, &fc, iters);
            dgm_graph_set_backend(g, DGM_BACKEND_REF);
            double f_ref = time_it(run_fwd, &fc, iters);

            dgm_graph_reset(g);
            dgm_var *x = dgm_leaf(g, xt, true);
            dgm_var *y =
                log_ ? dgm_log_softmax(g, x, -1) : dgm_softmax(g, x, -1);
            if (!y) {
                fprintf(stderr, "bench_softmax: %s\n", dgm_last_error());
                return 1;
            }
            y->grad = dyt;
            bwd_ctx bc = {g, y};
            dgm_graph_set_backend(g, DGM_BACKEND_REF);
            double b_c = time_it(run_bwd, &bc, iters);
            float *ybuf = malloc((size_t)n * sizeof *ybuf);
            float *dxbuf = malloc((size_t)n * sizeof *dxbuf);
            double raw_f, b_dnnl;
            const char *impl = "?";
            bench_dnnl(rows, c, log_, xp, ybuf, dyp, dxbuf, iters, &raw_f,
                       &b_dnnl, &impl);
            char sh[32];
            snprintf(sh, sizeof sh, "[%lld, %lld]", (long long)rows,
                     (long long)c);
            printf("%-12s %-12s %9.1f %9.1f %9.1f | %9.1f %9.1f  %s\n", sh,
                   log_ ? "log_softmax" : "softmax", f_dnnl, f_ref, raw_f, b_c,
                   b_dnnl, impl);
            free(ybuf);
            free(dxbuf);
            dgm_graph_free(g);
        }
        dgm_tensor_free(xt);
        dgm_tensor_free(dyt);
    }
    return 0;
}
