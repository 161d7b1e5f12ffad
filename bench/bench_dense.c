/* bench_dense.c - forward+backward time and GFLOP/s of dgm's linear,
 * matmul and elementwise ops at the VAE's shapes, the machine's FP32 peak,
 * the per-op overhead of the graph (dispatch, tape, arena), and PyTorch's
 * figure beside each when bench/torch_dense.py's output is given; then the
 * char transformer's dense shapes (2048 rows: N 32 x T 64), forward and
 * backward apart, each beside oneDNN's dnnl_sgemm of the same GEMMs (the
 * per-shape ceiling: no graph, no bias, no GELU).
 *
 *   LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp \
 *       /usr/bin/python3 bench/torch_dense.py > /tmp/torch_dense.txt
 *   build/bin/bench_dense [/tmp/torch_dense.txt]
 *   [BENCH_CLOCK=cpu] build/bin/bench_dense transformer [THREADS]
 *                                          (those cases only)
 *
 * Each VAE case times op + sum_all + backward, 2 threads, median of 50.
 * The transformer cases alternate dgm and sgemm in each of 25 rounds (a
 * shared machine's load hits both alike) and take the op's forward and
 * backward times from the per-op profile (dgm/profile.h): the op alone,
 * not the sum_all that seeds its gradient. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <oneapi/dnnl/dnnl.h>

#include "dgm/dgm.h"
#include "dgm/profile.h"

typedef struct bcase {
    const char *name;
    int kind; /* 0 linear, 1 matmul a@b^T batched, 2 relu, 3 sigmoid */
    int64_t n, in, out, batch;
} bcase;

static const bcase CASES[] = {
    {"vae.fc1 linear [128,784]->400", 0, 128, 784, 400, 0},
    {"vae.mu linear [128,400]->20", 0, 128, 400, 20, 0},
    {"vae.fc3 linear [128,20]->400", 0, 128, 20, 400, 0},
    {"vae.fc4 linear [128,400]->784", 0, 128, 400, 784, 0},
    {"attn matmul [32x4,64,32]@^T", 1, 64, 32, 64, 128},
    {"relu [128,400]", 2, 128, 400, 0, 0},
    {"sigmoid [128,784]", 3, 128, 784, 0, 0},
};
#define N_CASES (int)(sizeof CASES / sizeof CASES[0])

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double flops(const bcase *c)
{
    switch (c->kind) {
    case 0: /* forward + two backward GEMMs */
        return 3.0 * 2.0 * (double)(c->n * c->in * c->out);
    case 1:
        return 3.0 * 2.0 * (double)(c->batch * c->n * c->in * c->out);
    default:
        return 0;
    }
}

static dgm_tensor *rand_tensor(dgm_rng *r, int nd, const int64_t *shape)
{
    dgm_tensor *t = dgm_tensor_new(DGM_F32, nd, shape);
    dgm_init_normal(t, r, 0.0f, 0.5f);
    return t;
}

/* One timed iteration: build, sum, backward; returns seconds. */
static double run(dgm_graph *g, const bcase *c, dgm_tensor *const *t)
{
    double t0 = now();
    dgm_graph_reset(g);
    dgm_var *y = NULL;
    dgm_var *a = dgm_leaf(g, t[0], c->kind != 0);
    switch (c->kind) {
    case 0:
        y = dgm_linear(g, a, dgm_leaf(g, t[1], true), dgm_leaf(g, t[2], true));
        break;
    case 1:
        y = dgm_matmul(g, a, dgm_leaf(g, t[1], true), false, true);
        break;
    case 2:
        y = dgm_relu(g, a);
        break;
    default:
        y = dgm_sigmoid(g, a);
    }
    if (!y || dgm_backward(g, dgm_sum_all(g, y)) < 0) {
        fprintf(stderr, "%s: %s\n", c->name, dgm_last_error());
        exit(1);
    }
    return now() - t0;
}

static double torch_ms(const char *file, const char *name)
{
    FILE *f = file ? fopen(file, "r") : NULL;
    char line[512];
    double ms = 0;
    while (f && fgets(line, sizeof line, f)) {
        char *tab = strchr(line, '\t');
        if (tab && (size_t)(tab - line) == strlen(name) &&
            !strncmp(line, name, strlen(name)))
            ms = atof(tab + 1);
    }
    if (f)
        fclose(f);
    return ms;
}

static double peak_gflops(void)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    double mhz = 0;
    int avx512 = 0;
    while (f && fgets(line, sizeof line, f)) {
        if (!mhz && !strncmp(line, "cpu MHz", 7))
            mhz = atof(strchr(line, ':') + 1);
        if (!strncmp(line, "flags", 5) && strstr(line, " avx512f"))
            avx512 = 1;
    }
    if (f)
        fclose(f);
    /* 2 cores x 2 FMA units x lanes x 2 flops x clock */
    return 2.0 * 2.0 * (avx512 ? 16 : 8) * 2.0 * mhz / 1000.0;
}

/* ---- the char transformer's dense ops ---------------------------------- */

typedef struct tcase {
    const char *name;
    int gelu; /* 0 linear, 1 linear_gelu */
    int64_t n, in, out;
} tcase;

static const tcase TCASES[] = {
    {"qkv linear [2048,128]->384", 0, 2048, 128, 384},
    {"proj linear [2048,128]->128", 0, 2048, 128, 128},
    {"fc1 linear_gelu [2048,128]->512", 1, 2048, 128, 512},
    {"fc2 linear [2048,512]->128", 0, 2048, 512, 128},
    {"head linear [2048,128]->96", 0, 2048, 128, 96},
};
#define N_TCASES (int)(sizeof TCASES / sizeof TCASES[0])
#define T_ROUNDS 25

/* The op's forward and backward seconds, from the profile. */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* BENCH_CLOCK=cpu: process CPU time instead of the profile's wall time
 * (steadier on a loaded machine, and on 1 thread the op's own work; the
 * backward then includes sum_all's, one fill of the output's gradient). */
static bool cpu_clock;

/* The op's forward and backward seconds, from the profile. */
static void run_t(dgm_graph *g, const tcase *c, dgm_tensor *const *t,
                  double *fwd, double *bwd)
{
    dgm_profile_reset();
    dgm_graph_reset(g);
    dgm_var *x = dgm_leaf(g, t[0], true), *w = dgm_leaf(g, t[1], true),
            *b = dgm_leaf(g, t[2], true);
    const double c0 = cpu_now();
    dgm_var *y = c->gelu ? dgm_linear_gelu(g, x, w, b) : dgm_linear(g, x, w, b);
    dgm_var *s = dgm_sum_all(g, y);
    const double c1 = cpu_now();
    if (!y || dgm_backward(g, s) < 0) {
        fprintf(stderr, "%s: %s\n", c->name, dgm_last_error());
        exit(1);
    }
    const double c2 = cpu_now();
    dgm_profile_row r;
    if (dgm_profile_get(c->gelu ? "linear_gelu" : "linear", &r) < 0) {
        fprintf(stderr, "%s: no profile row\n", c->name);
        exit(1);
    }
    *fwd = cpu_clock ? c1 - c0 : r.seconds[0];
    *bwd = cpu_clock ? c2 - c1 : r.seconds[1];
}

/* The same GEMMs through dnnl_sgemm (row-major): y = x w^T, then
 * dx = dy w and dw = dy^T x. */
static void run_sgemm(const tcase *c, float *const *m, double *fwd, double *bwd)
{
    const dnnl_dim_t N = c->n, I = c->in, O = c->out;
    double (*clk)(void) = cpu_clock ? cpu_now : now;
    double t0 = clk();
    dnnl_sgemm('N', 'T', N, O, I, 1.0f, m[0], I, m[1], I, 0.0f, m[2], O);
    double t1 = clk();
    dnnl_sgemm('N', 'N', N, I, O, 1.0f, m[2], O, m[1], I, 0.0f, m[3], I);
    dnnl_sgemm('T', 'N', O, I, N, 1.0f, m[2], O, m[0], I, 0.0f, m[4], I);
    *fwd = t1 - t0;
    *bwd = clk() - t1;
}

static void transformer_cases(dgm_graph *g, dgm_rng *r)
{
    const char *clock = getenv("BENCH_CLOCK");
    cpu_clock = clock && !strcmp(clock, "cpu");
    printf("\nchar transformer dense ops (%d threads, %s time, median of %d "
           "alternating rounds; sgemm: dnnl_sgemm of the same GEMMs)\n",
           dgm_threads(), cpu_clock ? "process CPU" : "wall", T_ROUNDS);
    printf("%-32s %8s %7s %8s %7s | %8s %7s %8s %7s | %5s %5s\n", "case",
           "fwd ms", "GF/s", "bwd ms", "GF/s", "sg fwd", "GF/s", "sg bwd",
           "GF/s", "fwd%", "bwd%");
    dgm_profile_enable(true);
    for (int i = 0; i < N_TCASES; i++) {
        const tcase *c = &TCASES[i];
        dgm_tensor *t[3] = {
            rand_tensor(r, 2, (int64_t[]){c->n, c->in}),
            rand_tensor(r, 2, (int64_t[]){c->out, c->in}),
            rand_tensor(r, 1, (int64_t[]){c->out}),
        };
        size_t sz[5] = {(size_t)(c->n * c->in), (size_t)(c->out * c->in),
                        (size_t)(c->n * c->out), (size_t)(c->n * c->in),
                        (size_t)(c->out * c->in)};
        float *m[5];
        for (int k = 0; k < 5; k++) {
            m[k] = malloc(sz[k] * sizeof(float));
            if (!m[k])
                exit(1);
            for (size_t j = 0; j < sz[k]; j++)
                m[k][j] = (float)((j * 2654435761u) % 1000) * 1e-3f - 0.5f;
        }
        double f[T_ROUNDS], bw[T_ROUNDS], sf[T_ROUNDS], sb[T_ROUNDS];
        for (int k = 0; k < 3; k++) { /* warm-up: primitives made */
            run_t(g, c, t, &f[0], &bw[0]);
            run_sgemm(c, m, &sf[0], &sb[0]);
        }
        for (int k = 0; k < T_ROUNDS; k++) {
            run_t(g, c, t, &f[k], &bw[k]);
            run_sgemm(c, m, &sf[k], &sb[k]);
        }
        qsort(f, T_ROUNDS, sizeof f[0], cmp);
        qsort(bw, T_ROUNDS, sizeof bw[0], cmp);
        qsort(sf, T_ROUNDS, sizeof sf[0], cmp);
        qsort(sb, T_ROUNDS, sizeof sb[0], cmp);
        const double gf = 2.0 * (double)(c->n * c->in * c->out) * 1e-9;
        const double mf = f[T_ROUNDS / 2], mb = bw[T_ROUNDS / 2],
                     msf = sf[T_ROUNDS / 2], msb = sb[T_ROUNDS / 2];
        printf("%-32s %8.3f %7.1f %8.3f %7.1f | %8.3f %7.1f %8.3f %7.1f | "
               "%4.0f%% %4.0f%%\n",
               c->name, mf * 1e3, gf / mf, mb * 1e3, 2 * gf / mb, msf * 1e3,
               gf / msf, msb * 1e3, 2 * gf / msb, 100 * msf / mf,
               100 * msb / mb);
        for (int k = 0; k < 3; k++)
            dgm_tensor_free(t[k]);
        for (int k = 0; k < 5; k++)
            free(m[k]);
    }
    dgm_profile_enable(false);
}

int main(int argc, char **argv)
{
    /* "transformer" as the argument: only the transformer cases */
    const bool tonly = argc > 1 && !strcmp(argv[1], "transformer");
    const char *torch = argc > 1 && !tonly ? argv[1] : NULL;
    dgm_set_threads(tonly && argc > 2 ? atoi(argv[2]) : 2);
    dgm_rng r;
    dgm_rng_seed(&r, 1);
    dgm_graph *g = dgm_graph_new();
    if (tonly) {
        transformer_cases(g, &r);
        dgm_graph_free(g);
        return 0;
    }
    printf("FP32 peak (2 cores, FMA, clock from /proc/cpuinfo): %.0f GFLOP/s\n",
           peak_gflops());
    printf("%-32s %10s %9s %10s %9s %7s\n", "case (fwd+bwd)", "dgm ms",
           "GFLOP/s", "torch ms", "GFLOP/s", "ratio");
    for (int i = 0; i < N_CASES; i++) {
        const bcase *c = &CASES[i];
        dgm_tensor *t[3] = {NULL, NULL, NULL};
        if (c->kind == 0) {
            t[0] = rand_tensor(&r, 2, (int64_t[]){c->n, c->in});
            t[1] = rand_tensor(&r, 2, (int64_t[]){c->out, c->in});
            t[2] = rand_tensor(&r, 1, (int64_t[]){c->out});
        } else if (c->kind == 1) {
            t[0] = rand_tensor(&r, 3, (int64_t[]){c->batch, c->n, c->in});
            t[1] = rand_tensor(&r, 3, (int64_t[]){c->batch, c->out, c->in});
        } else {
            t[0] = rand_tensor(&r, 2, (int64_t[]){c->n, c->in});
        }
        double ts[50];
        for (int w = 0; w < 5; w++)
            run(g, c, t);
        for (int k = 0; k < 50; k++)
            ts[k] = run(g, c, t);
        qsort(ts, 50, sizeof ts[0], cmp);
        double ms = ts[25] * 1e3, tm = torch_ms(torch, c->name);
        double fl = flops(c);
        printf("%-32s %10.3f %9.1f", c->name, ms, fl ? fl / ms / 1e6 : 0.0);
        if (tm > 0)
            printf(" %10.3f %9.1f %6.2fx\n", tm, fl ? fl / tm / 1e6 : 0.0,
                   tm / ms);
        else
            printf(" %10s %9s %7s\n", "-", "-", "-");
        for (int k = 0; k < 3; k++)
            dgm_tensor_free(t[k]);
    }
    /* The graph's own cost per op: a 1-element op chain, forward and
     * backward, divided by the ops it records. */
    dgm_tensor *s = dgm_tensor_new(DGM_F32, 1, (int64_t[]){1});
    double best = 1e9;
    for (int rep = 0; rep < 200; rep++) {
        double t0 = now();
        dgm_graph_reset(g);
        dgm_var *x = dgm_leaf(g, s, true);
        for (int k = 0; k < 100; k++)
            x = dgm_affine(g, x, 1.0f, 0.0f);
        dgm_backward(g, dgm_sum_all(g, x));
        double dt = (now() - t0) / 101.0;
        best = dt < best ? dt : best;
    }
    printf("graph overhead per op (1 element, forward + backward): %.2f us\n",
           best * 1e6);
    dgm_tensor_free(s);
    transformer_cases(g, &r);
    dgm_graph_free(g);
    return 0;
}
