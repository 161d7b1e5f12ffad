/* bench_transformer.c - one transformer_block (the char_transformer
 * experiment's: N = 32, T = 64, D = 128, 4 heads, MLP 512) forward and
 * backward, in ms per call, wall and process CPU time (the CPU figure is
 * the steadier one on a shared machine), with the GEMM FLOPs' rate; with
 * two variants of the block, by default the packed attention op (A,
 * packed_attention: true) and the composition (B, false), timed in
 * alternating rounds in one process so a shared machine's load hits both
 * alike. BENCH_A and BENCH_B replace the variants' extra keys (YAML flow
 * entries, e.g. BENCH_A='fused_mlp: true' BENCH_B='fused_mlp: false').
 * DGM_PROFILE=1 adds the per-op table of both together.
 *
 *   ./build/bin/bench_transformer [THREADS] [N T D HEADS]
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "dgm/dgm.h"
#include "dgm/host.h"
#include "dgm/profile.h"

#define REPEATS 9
#define ITERS 10

static double now_ms(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int step(dgm_graph *g, dgm_block *blk, dgm_tensor *x)
{
    dgm_graph_reset(g);
    dgm_var *xv = dgm_leaf(g, x, true);
    dgm_var *loss = dgm_sum_all(g, dgm_block_forward(blk, g, xv));
    return loss ? dgm_backward(g, loss) : dgm_last_code();
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    int64_t N = argc > 5 ? atoll(argv[2]) : 32,
            T = argc > 5 ? atoll(argv[3]) : 64,
            D = argc > 5 ? atoll(argv[4]) : 128;
    int heads = argc > 5 ? atoi(argv[5]) : 4;
    dgm_set_threads(threads);
    dgm_registry *reg;
    dgm_params *ps = dgm_params_new();
    dgm_build *b;
    dgm_config *cfg[2] = {NULL, NULL};
    dgm_block *blk[2];
    dgm_shape in = {2, {T, D}}, out = {0};
    int rc = dgm_registry_new(&reg);
    if (rc == 0 && (rc = dgm_registry_add_default(reg)) == 0 &&
        (rc = dgm_registry_scan(reg)) >= 0)
        rc = dgm_build_new(&b, reg, ps, 1);
    const char *var[2] = {getenv("BENCH_A"), getenv("BENCH_B")};
    if (!var[0])
        var[0] = "packed_attention: true";
    if (!var[1])
        var[1] = "packed_attention: false";
    for (int k = 0; k < 2 && rc >= 0; k++) {
        char yaml[512];
        snprintf(yaml, sizeof yaml,
                 "{plugin: transformer_block, heads: %d, %s}", heads, var[k]);
        if ((rc = dgm_config_parse(&cfg[k], yaml, "bench")) == 0)
            rc = dgm_block_create(b, cfg[k], k == 0 ? "fused" : "unfused", &in,
                                  &out, &blk[k]);
    }
    if (rc < 0) {
        fprintf(stderr, "bench_transformer: %s\n", dgm_last_error());
        return 1;
    }
    int64_t xs[3] = {N, T, D};
    dgm_tensor *x = dgm_tensor_new(DGM_F32, 3, xs);
    float *xp = x->data;
    for (int64_t i = 0; i < N * T * D; i++)
        xp[i] = (float)((i * 7919) % 1000) / 500.0f - 1.0f;
    dgm_graph *g = dgm_graph_new();
    double wall[2][REPEATS], cpu[2][REPEATS];
    for (int k = 0; k < 2; k++)
        if (step(g, blk[k], x) < 0) {
            fprintf(stderr, "bench_transformer: %s\n", dgm_last_error());
            return 1;
        }
    dgm_profile_reset(); /* the warm-up built oneDNN's primitives */
    uint64_t allocs = dgm_heap_allocations();
    for (int r = 0; r < REPEATS; r++)
        for (int k = 0; k < 2; k++) {
            double w0 = now_ms(CLOCK_MONOTONIC),
                   c0 = now_ms(CLOCK_PROCESS_CPUTIME_ID);
            for (int i = 0; i < ITERS; i++)
                step(g, blk[k], x);
            wall[k][r] = (now_ms(CLOCK_MONOTONIC) - w0) / ITERS;
            cpu[k][r] = (now_ms(CLOCK_PROCESS_CPUTIME_ID) - c0) / ITERS;
        }
    allocs = dgm_heap_allocations() - allocs;
    /* forward GEMMs: qkv, proj, fc1, fc2 and the two attention products
     * (all T x T pairs, as the unfused one computes them); backward twice
     * that */
    double hid = 4.0 * (double)D, rows = (double)(N * T);
    double fwd =
        2 * rows * D * (3 * D + D + 2 * hid) + 2.0 * 2 * (double)N * T * T * D;
    printf("transformer_block [%lld, %lld, %lld] heads %d, %d threads, "
           "fwd+bwd, median of %d alternating rounds:\n",
           (long long)N, (long long)T, (long long)D, heads, threads, REPEATS);
    for (int k = 0; k < 2; k++) {
        qsort(wall[k], REPEATS, sizeof *wall[k], cmp_double);
        qsort(cpu[k], REPEATS, sizeof *cpu[k], cmp_double);
        printf("  %c {%s}\n    %8.2f ms wall %8.2f ms cpu  GEMMs %6.1f "
               "GFLOP/s wall\n",
               "AB"[k], var[k], wall[k][REPEATS / 2], cpu[k][REPEATS / 2],
               3 * fwd / wall[k][REPEATS / 2] / 1e6);
    }
    printf("  B / A: %.2fx wall, %.2fx cpu; heap allocations per "
           "step %.1f\n",
           wall[1][REPEATS / 2] / wall[0][REPEATS / 2],
           cpu[1][REPEATS / 2] / cpu[0][REPEATS / 2],
           (double)allocs / (2 * REPEATS * ITERS));
    if (dgm_profile_enabled())
        dgm_profile_write(stdout, 2 * REPEATS * ITERS);
    dgm_graph_free(g);
    dgm_tensor_free(x);
    dgm_build_free(b);
    dgm_config_free(cfg[0]);
    dgm_config_free(cfg[1]);
    dgm_params_free(ps);
    dgm_registry_free(reg);
    return 0;
}
