/* bench_elt.c - the char transformer's memory-bound ops at its shapes
 * (N 32, T 64, D 128, 4 heads, vocabulary 96), forward and backward per
 * call in microseconds from the op profile: add of one shape, a bias over
 * rows, a [T, T] mask over [N, H, T, T], mul, layer_norm, cross_entropy.
 * Each case runs in alternating rounds with the binary ops' fast path (A)
 * and with DGM_BINARY_GENERAL=1 (B, the strided loops); the ops without
 * that switch time alike in A and B. Figures are the fastest round's: on a
 * shared machine the median moves with the load, the minimum much less.
 * "step cpu" is the whole step's (neg, the op, sum_all, backward) thread
 * CPU time: with 1 thread the steadiest figure under load. The inputs are
 * op results (neg of a leaf), so gradients are first contributions as in a
 * model.
 *
 *   ./build/bin/bench_elt [THREADS]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dgm/dgm.h"
#include "dgm/profile.h"

#define ROUNDS 9
#define ITERS 20

enum { N = 32, T = 64, D = 128, H = 4, V = 96 };

typedef struct ecase {
    const char *name, *op;
    int nda;
    int64_t sa[4];
    int ndb;
    int64_t sb[4];
} ecase;

static const ecase cases[] = {
    {"add [N,T,D] + [N,T,D]", "add", 3, {N, T, D}, 3, {N, T, D}},
    {"add [N*T,D] + [D]", "add", 2, {N * T, D}, 1, {D}},
    {"add [N,H,T,T] + [T,T]", "add", 4, {N, H, T, T}, 2, {T, T}},
    {"mul [N,T,D] * [N,T,D]", "mul", 3, {N, T, D}, 3, {N, T, D}},
    {"layer_norm [N*T,D]", "layer_norm", 2, {N * T, D}, 1, {D}},
    {"cross_entropy [N*T,V]", "cross_entropy", 2, {N * T, V}, 0, {0}},
};

static void fill(dgm_tensor *t, uint32_t seed)
{
    float *p = t->data;
    for (int64_t i = 0; i < dgm_tensor_numel(t); i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = (float)(seed >> 8) / (float)(1u << 24) + 0.5f;
    }
}

static int step(dgm_graph *g, const ecase *c, dgm_tensor *ta, dgm_tensor *tb,
                dgm_tensor *tgt)
{
    dgm_graph_reset(g);
    dgm_var *a = dgm_neg(g, dgm_leaf(g, ta, true));
    dgm_var *y;
    if (!strcmp(c->op, "cross_entropy")) {
        y = dgm_cross_entropy(g, a, dgm_input(g, tgt));
    } else {
        dgm_var *b = dgm_neg(g, dgm_leaf(g, tb, true));
        if (!strcmp(c->op, "add"))
            y = dgm_add(g, a, b);
        else if (!strcmp(c->op, "mul"))
            y = dgm_mul(g, a, b);
        else
            y = dgm_layer_norm(g, a, b, b, 1e-5f);
    }
    dgm_var *loss = dgm_sum_all(g, y);
    return loss ? dgm_backward(g, loss) : dgm_last_code();
}

static double cpu_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    dgm_set_threads(threads);
    dgm_profile_enable(true);
    dgm_graph *g = dgm_graph_new();
    printf("%d threads, us per call, fastest of %d alternating rounds of %d "
           "steps; A: fast path, B: DGM_BINARY_GENERAL=1\n",
           threads, ROUNDS, ITERS);
    printf("%-24s %7s %7s %7s %7s %6s %9s %9s\n", "case", "A fwd", "A bwd",
           "B fwd", "B bwd", "B/A", "A step cpu", "B step cpu");
    int64_t ts[1] = {N * T};
    dgm_tensor *tgt = dgm_tensor_new(DGM_I32, 1, ts);
    for (int64_t i = 0; i < N * T; i++)
        ((int32_t *)tgt->data)[i] = (int32_t)((i * 37) % V);
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        const ecase *c = &cases[k];
        dgm_tensor *ta = dgm_tensor_new(DGM_F32, c->nda, c->sa);
        dgm_tensor *tb = c->ndb ? dgm_tensor_new(DGM_F32, c->ndb, c->sb) : NULL;
        fill(ta, 1);
        if (tb)
            fill(tb, 2);
        double t[2][3][ROUNDS]; /* [A/B][fwd/bwd/step cpu][round] */
        for (int r = -1; r < ROUNDS; r++)
            for (int ab = 0; ab < 2; ab++) {
                if (ab)
                    setenv("DGM_BINARY_GENERAL", "1", 1);
                dgm_profile_reset();
                const double c0 = cpu_us();
                for (int i = 0; i < ITERS; i++)
                    if (step(g, c, ta, tb, tgt) < 0) {
                        fprintf(stderr, "bench_elt: %s\n", dgm_last_error());
                        return 1;
                    }
                const double c1 = cpu_us();
                unsetenv("DGM_BINARY_GENERAL");
                dgm_profile_row row;
                if (r < 0 || dgm_profile_get(c->op, &row) != 0)
                    continue; /* the first round warms up */
                for (int d = 0; d < 2; d++)
                    t[ab][d][r] = row.seconds[d] / (double)row.calls[d] * 1e6;
                t[ab][2][r] = (c1 - c0) / ITERS;
            }
        double m[2][3];
        for (int ab = 0; ab < 2; ab++)
            for (int d = 0; d < 3; d++) {
                qsort(t[ab][d], ROUNDS, sizeof(double), cmp_double);
                m[ab][d] = t[ab][d][0];
            }
        printf("%-24s %7.1f %7.1f %7.1f %7.1f %5.2fx %9.1f %9.1f\n", c->name,
               m[0][0], m[0][1], m[1][0], m[1][1],
               (m[1][0] + m[1][1]) / (m[0][0] + m[0][1]), m[0][2], m[1][2]);
        dgm_tensor_free(ta);
        dgm_tensor_free(tb);
    }
    dgm_tensor_free(tgt);
    dgm_graph_free(g);
    return 0;
}
