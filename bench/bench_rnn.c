/* bench_rnn.c - forward+backward time of dgm_rnn at the char-LSTM
 * experiment's shape (T=64, N=32, embedding 64 -> 2-layer LSTM, hidden 256)
 * and the same GRU, with PyTorch's figure and the ratio when
 * bench/torch_rnn.py's output is given.
 *
 *   LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp \
 *       /usr/bin/python3 bench/torch_rnn.py > /tmp/torch_rnn.txt
 *   build/bin/bench_rnn [/tmp/torch_rnn.txt] [ref]
 *   build/bin/bench_rnn ab
 *
 * Each case times dgm_rnn + sum_all + backward with x needing a gradient
 * (it comes from an embedding), 2 threads; the median of the repetitions.
 * `ab`: first-write gradients against zero-fill + add (a graph made under
 * DGM_GRAD_ZERO=1), the two graphs alternating in one process; x and the
 * weights reach the op through an identity affine, so their gradients
 * are op results as in the char models (x's) and in training (the
 * weights', written first there too); medians of wall and process CPU
 * time per repetition. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_ab.h"
#include "dgm/error.h"
#include "dgm/graph.h"
#include "dgm/tensor.h"

typedef struct bcase {
    const char *name;
    dgm_rnn_cell cell;
    int64_t T, N, I, H;
    int L;
} bcase;

static const bcase CASES[] = {
    {"char-lstm T=64 N=32 64->256x2", DGM_RNN_LSTM, 64, 32, 64, 256, 2},
    {"char-gru T=64 N=32 64->256x2", DGM_RNN_GRU, 64, 32, 64, 256, 2},
};
#define N_CASES (int)(sizeof CASES / sizeof CASES[0])

static double torch_ms(const char *file, const char *name)
{
    if (!file)
        return -1.0;
    FILE *f = fopen(file, "r");
    if (!f)
        return -1.0;
    char line[512];
    double ms = -1.0;
    while (fgets(line, sizeof line, f)) {
        char *tab = strchr(line, '\t');
        if (!tab)
            continue;
        *tab = '\0';
        if (!strcmp(line, name)) {
            ms = atof(tab + 1);
            break;
        }
    }
    fclose(f);
    return ms;
}

/* The case's weights p[k][l] (w_ih, w_hh, b_ih, b_hh per layer) in ps. */
static int case_params(const bcase *c, dgm_params *ps, dgm_rng *r,
                       dgm_param *p[4][2])
{
    const int64_t GH = (c->cell == DGM_RNN_LSTM ? 4 : 3) * c->H;
    int rc = 0;
    for (int l = 0; l < c->L && !rc; l++)
        for (int k = 0; k < 4 && !rc; k++) {
            char name[32];
            snprintf(name, sizeof name, "p%d.%d", l, k);
            int64_t s[2] = {GH, k == 0 ? (l ? c->H : c->I) : c->H};
            rc = dgm_params_add(ps, name, DGM_ROLE_WEIGHT, k < 2 ? 2 : 1, s,
                                &p[k][l]);
            if (!rc) /* PyTorch's init: U(-1/sqrt(H), 1/sqrt(H)) */
                dgm_init_uniform(p[k][l]->value, r, -0.0625f, 0.0625f);
        }
    return rc;
}

/* One forward + backward on g; `via`: x and the weights through an
 * identity affine (see the file head). */
static int step(dgm_graph *g, const bcase *c, dgm_tensor *x, dgm_param *p[4][2],
                bool via)
{
    dgm_graph_reset(g);
    dgm_var *w[4][2];
    for (int l = 0; l < c->L; l++)
        for (int k = 0; k < 4; k++) {
            w[k][l] = dgm_param_var(g, p[k][l]);
            if (via)
                w[k][l] = dgm_affine(g, w[k][l], 1.0f, 0.0f);
        }
    dgm_rnn_weights rw = {c->cell, c->L, c->H, w[0], w[1], w[2], w[3]};
    dgm_var *xv = dgm_leaf(g, x, true);
    if (via)
        xv = dgm_affine(g, xv, 1.0f, 0.0f);
    dgm_var *y = dgm_rnn(g, xv, &rw, NULL, NULL, NULL, NULL);
    dgm_var *loss = dgm_sum_all(g, y);
    int rc = loss ? dgm_backward(g, loss) : dgm_last_code();
    if (rc < 0)
        fprintf(stderr, "bench_rnn: %s: %s\n", c->name, dgm_last_error());
    return rc;
}

static int run_case(const bcase *c, dgm_backend be, int reps, double *ms_out)
{
    dgm_params *ps = dgm_params_new();
    dgm_graph *g = dgm_graph_new();
    dgm_rng r;
    dgm_rng_seed(&r, 1);
    int64_t xs[3] = {c->T, c->N, c->I};
    dgm_tensor *x = dgm_tensor_new(DGM_F32, 3, xs);
    if (!ps || !g || !x)
        return DGM_ENOMEM;
    dgm_init_uniform(x, &r, -1.0f, 1.0f);
    dgm_param *p[4][2];
    int rc = case_params(c, ps, &r, p);
    if (rc)
        return rc;
    dgm_graph_set_backend(g, be);
    enum { WARM = 3, MAXREPS = 32 };
    double t[MAXREPS];
    for (int it = 0; it < WARM + reps; it++) {
        double t0 = now();
        if ((rc = step(g, c, x, p, false)) < 0)
            return rc;
        if (it >= WARM)
            t[it - WARM] = now() - t0;
    }
    qsort(t, (size_t)reps, sizeof t[0], cmp_double);
    *ms_out = t[reps / 2] * 1e3;
    dgm_tensor_free(x);
    dgm_graph_free(g);
    dgm_params_free(ps);
    return 0;
}

/* One `ab` step of a case (ab_step_fn). */
typedef struct rnn_ctx {
    const bcase *c;
    dgm_tensor *x;
    dgm_param *(*p)[2];
} rnn_ctx;

static int rnn_step(void *ctx, dgm_graph *g)
{
    rnn_ctx *k = ctx;
    return step(g, k->c, k->x, k->p, true);
}

/* `ab`: ms[0] / cpu[0] zero-fill + add, [1] first write (medians). */
static int run_case_ab(const bcase *c, double ms[2], double cpu[2])
{
    dgm_params *ps = dgm_params_new();
    dgm_rng r;
    dgm_rng_seed(&r, 1);
    int64_t xs[3] = {c->T, c->N, c->I};
    dgm_tensor *x = dgm_tensor_new(DGM_F32, 3, xs);
    dgm_graph *g[2];
    ab_graphs(g);
    if (!ps || !x || !g[0] || !g[1])
        return DGM_ENOMEM;
    dgm_init_uniform(x, &r, -1.0f, 1.0f);
    dgm_param *p[4][2];
    int rc = case_params(c, ps, &r, p);
    if (rc)
        return rc;
    rnn_ctx cx = {c, x, p};
    rc = ab_time(g, rnn_step, &cx, 2, 15, ms, cpu);
    if (rc < 0)
        return rc;
    dgm_tensor_free(x);
    dgm_graph_free(g[0]);
    dgm_graph_free(g[1]);
    dgm_params_free(ps);
    return 0;
}

static int main_ab(void)
{
    dgm_set_threads(2);
    printf("%-34s %9s %9s %9s %9s %7s\n", "case (fwd+bwd)", "zero ms",
           "first ms", "zero cpu", "first cpu", "cpu");
    for (int i = 0; i < N_CASES; i++) {
        double ms[2] = {0, 0}, cpu[2] = {0, 0};
        if (run_case_ab(&CASES[i], ms, cpu) != 0)
            return 1;
        printf("%-34s %9.3f %9.3f %9.3f %9.3f %6.1f%%\n", CASES[i].name, ms[0],
               ms[1], cpu[0], cpu[1], 100.0 * (cpu[1] - cpu[0]) / cpu[0]);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "ab"))
        return main_ab();
    const char *torch_file = argc > 1 ? argv[1] : NULL;
    dgm_backend be = argc > 2 && !strcmp(argv[2], "ref") ? DGM_BACKEND_REF
                                                         : DGM_BACKEND_DNNL;
    dgm_set_threads(2);
    printf("%-34s %10s %10s %8s\n", "case (fwd+bwd)", "dgm ms", "torch ms",
           "dgm/torch");
    for (int i = 0; i < N_CASES; i++) {
        double ms = 0.0;
        if (run_case(&CASES[i], be, be == DGM_BACKEND_REF ? 3 : 15, &ms) < 0)
            return 1;
        double tms = torch_ms(torch_file, CASES[i].name);
        printf("%-34s %10.3f", CASES[i].name, ms);
        if (tms > 0)
            printf(" %10.3f %8.2f\n", tms, ms / tms);
        else
            printf(" %10s %8s\n", "-", "-");
    }
    return 0;
}
