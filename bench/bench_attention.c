/* bench_attention.c - the attention_packed op alone at the char
 * transformer's shape (qkv [32, 64, 384], 4 heads, causal), forward and
 * backward apart, in ms per call: warm (the op's tensors left in cache by
 * the call before) and flushed (a buffer of FLUSH_MB megabytes written
 * before the forward and again before the backward, outside the timing,
 * as a training step's other layers do), in alternating rounds. The gap
 * between the two is the op's memory traffic (qkv read twice, P written
 * and read back, dqkv written); in a training step the op runs at about
 * the flushed figure.
 *
 *   ./build/bin/bench_attention [THREADS] [ROUNDS] [FLUSH_MB]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "bench_ab.h"
#include "dgm/dgm.h"

#define ITERS 10

/* milliseconds on bench_ab.h's monotonic clock */
static double now_ms(void)
{
    return now() * 1e3;
}

static void flush(float *buf, size_t n)
{
    for (size_t i = 0; i < n; i += 16)
        buf[i] += 1.0f;
}

int main(int argc, char **argv)
{
    const int threads = argc > 1 ? atoi(argv[1]) : 1;
    const int rounds = argc > 2 ? atoi(argv[2]) : 21;
    const size_t nflush = (size_t)(argc > 3 ? atoi(argv[3]) : 64) << 18;
    const int64_t N = 32, T = 64, D = 128, heads = 4;
    if (threads < 1 || rounds < 1 || rounds > 1000) {
        fprintf(stderr, "usage: bench_attention [THREADS] [ROUNDS 1..1000] "
                        "[FLUSH_MB]\n");
        return 2;
    }
    dgm_set_threads(threads);
    dgm_tensor *x = dgm_tensor_new(DGM_F32, 3, (int64_t[]){N, T, 3 * D});
    float *buf = calloc(nflush ? nflush : 1, sizeof *buf);
    double *t[2][2];
    for (int k = 0; k < 4; k++)
        t[k / 2][k % 2] = calloc((size_t)rounds, sizeof(double));
    if (!x || !buf || !t[1][1]) {
        fprintf(stderr, "bench_attention: out of memory\n");
        return 1;
    }
    float *xp = x->data;
    for (int64_t i = 0; i < N * T * 3 * D; i++)
        xp[i] = (float)((i * 7919) % 1000) / 500.0f - 1.0f;
    dgm_graph *g = dgm_graph_new();
    const float scale = 1.0f / sqrtf((float)(D / heads));
    /* one call first: the arena and the scratch reach their size */
    for (int r = -1; r < rounds; r++)
        for (int cold = 0; cold < 2; cold++) {
            double fwd = 0, bwd = 0;
            for (int i = 0; i < ITERS; i++) {
                dgm_graph_reset(g);
                dgm_var *xv = dgm_leaf(g, x, true);
                if (cold)
                    flush(buf, nflush);
                double t0 = now_ms();
                dgm_var *y =
                    dgm_attention_packed(g, xv, (int)heads, scale, true);
                fwd += now_ms() - t0;
                dgm_var *loss = dgm_sum_all(g, y);
                if (cold)
                    flush(buf, nflush);
                t0 = now_ms();
                if (!loss || dgm_backward(g, loss) < 0) {
                    fprintf(stderr, "bench_attention: %s\n", dgm_last_error());
                    return 1;
                }
                bwd += now_ms() - t0;
            }
            if (r >= 0) {
                t[cold][0][r] = fwd / ITERS;
                t[cold][1][r] = bwd / ITERS;
            }
        }
    printf("attention_packed [%lld, %lld, %lld] heads %lld causal, %d "
           "threads, %d alternating rounds of %d calls, ms per call "
           "(median, fastest):\n",
           (long long)N, (long long)T, (long long)(3 * D), (long long)heads,
           threads, rounds, ITERS);
    double med[2][2];
    for (int cold = 0; cold < 2; cold++) {
        for (int k = 0; k < 2; k++) {
            qsort(t[cold][k], (size_t)rounds, sizeof(double), cmp_double);
            med[cold][k] = t[cold][k][rounds / 2];
        }
        printf("  %-24s forward %6.3f %6.3f   backward %6.3f %6.3f\n",
               cold ? "flushed before each:" : "warm:", med[cold][0],
               t[cold][0][0], med[cold][1], t[cold][1][0]);
    }
    printf("  flushed / warm (medians): forward %.2fx, backward %.2fx\n",
           med[1][0] / med[0][0], med[1][1] / med[0][1]);
    dgm_graph_free(g);
    dgm_tensor_free(x);
    free(buf);
    for (int k = 0; k < 4; k++)
        free(t[k / 2][k % 2]);
    return 0;
}
