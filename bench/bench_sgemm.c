/* bench_sgemm.c - the machine's measured GEMM ceiling, the figure every
 * "share of the ceiling" in docs/performance-transformer.md is taken
 * against: oneDNN's dnnl_sgemm of N x N by N x N (row-major, no
 * transposes) on the threads OMP_NUM_THREADS gives oneDNN, the fastest of
 * REPS calls after 3 untimed ones. Prints one line, the GFLOP/s last, for
 * scripts to cut:
 *
 *   OMP_NUM_THREADS=2 ./build/bin/bench_sgemm [N] [REPS]
 *   sgemm 1024^3, 2 threads, best of 17: 208.1 GFLOP/s
 */
#include <stdio.h>
#include <stdlib.h>

#include <dnnl.h>
#include <omp.h>

#include "bench_ab.h"

int main(int argc, char **argv)
{
    const long n = argc > 1 ? atol(argv[1]) : 1024;
    const int reps = argc > 2 ? atoi(argv[2]) : 17;
    if (n < 1 || n > 16384 || reps < 1) {
        fprintf(stderr, "usage: %s [N in 1..16384] [REPS >= 1]\n", argv[0]);
        return 2;
    }
    float *a = malloc(sizeof(float) * (size_t)(n * n));
    float *b = malloc(sizeof(float) * (size_t)(n * n));
    float *c = malloc(sizeof(float) * (size_t)(n * n));
    if (!a || !b || !c) {
        fprintf(stderr, "bench_sgemm: out of memory for N %ld\n", n);
        return 1;
    }
    srand(1);
    for (long i = 0; i < n * n; i++) {
        a[i] = (float)rand() / (float)RAND_MAX;
        b[i] = a[i] - 0.5f;
    }
    double best = 1e30;
    for (int r = 0; r < reps + 3; r++) {
        const double t = now();
        if (dnnl_sgemm('N', 'N', n, n, n, 1.0f, a, n, b, n, 0.0f, c, n) !=
            dnnl_success) {
            fprintf(stderr, "bench_sgemm: dnnl_sgemm failed at N %ld\n", n);
            return 1;
        }
        const double dt = now() - t;
        if (r >= 3 && dt < best)
            best = dt;
    }
    printf("sgemm %ld^3, %d threads, best of %d: %.1f GFLOP/s\n", n,
           omp_get_max_threads(), reps, 2.0 * n * n * n / best * 1e-9);
    free(a);
    free(b);
    free(c);
    return 0;
}
