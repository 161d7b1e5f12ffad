/* bench_conv.c - forward+backward time and GFLOP/s of dgm's conv, conv
 * transpose and batch norm at the DCGAN (28x28) and conv-VAE shapes, with
 * PyTorch's figure beside each when bench/torch_conv.py's output is given.
 *
 *   LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp \
 *       /usr/bin/python3 bench/torch_conv.py > /tmp/torch_conv.txt
 *   build/bin/bench_conv [/tmp/torch_conv.txt] [ref]
 *   build/bin/bench_conv ab
 *
 * Each case times dgm op + sum_all + backward (the sum is what PyTorch's
 * y.sum().backward() does too); the median of the timed repetitions.
 * `ab`: first-write gradients against zero-fill + add (a graph made under
 * DGM_GRAD_ZERO=1), the two graphs alternating in one process; x and the
 * weights reach the op through an identity affine, so their gradients
 * are op results as in a network (an input's) and in training (a
 * parameter's, written first there too); medians of wall and process CPU
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
    int kind; /* 0 conv, 1 conv_transpose, 2 batch_norm */
    int64_t x[4];
    int64_t oc, k; /* output channels, kernel (stride 2, pad 1) */
    int x_grad;    /* the input needs a gradient (not a data batch) */
} bcase;

static const bcase CASES[] = {
    {"dcgan.D.conv1 1->64 [64,1,28,28]", 0, {64, 1, 28, 28}, 64, 4, 0},
    {"dcgan.D.conv2 64->128 [64,64,14,14]", 0, {64, 64, 14, 14}, 128, 4, 1},
    {"dcgan.G.deconv1 128->64 [64,128,7,7]", 1, {64, 128, 7, 7}, 64, 4, 1},
    {"dcgan.G.deconv2 64->1 [64,64,14,14]", 1, {64, 64, 14, 14}, 1, 4, 1},
    {"dcgan.bn [64,128,7,7]", 2, {64, 128, 7, 7}, 0, 0, 1},
    {"dcgan.bn [64,64,14,14]", 2, {64, 64, 14, 14}, 0, 0, 1},
    {"vae.enc.conv1 1->32 [128,1,28,28]", 0, {128, 1, 28, 28}, 32, 4, 0},
    {"vae.enc.conv2 32->64 [128,32,14,14]", 0, {128, 32, 14, 14}, 64, 4, 1},
    {"vae.dec.deconv1 64->32 [128,64,7,7]", 1, {128, 64, 7, 7}, 32, 4, 1},
    {"vae.dec.deconv2 32->1 [128,32,14,14]", 1, {128, 32, 14, 14}, 1, 4, 1},
    {"vae.bn [128,32,14,14]", 2, {128, 32, 14, 14}, 0, 0, 1},
    {"vae.bn [128,64,7,7]", 2, {128, 64, 7, 7}, 0, 0, 1},
};
#define N_CASES (int)(sizeof CASES / sizeof CASES[0])

/* Forward FLOPs of the multiply-adds (2 per MAC); backward adds data (if
 * the input needs it) and weights, each as costly as forward. */
static double flops(const bcase *c)
{
    if (c->kind == 2)
        return 0.0;
    int64_t n = c->x[0], ic = c->x[1], h = c->x[2], w = c->x[3];
    double macs;
    if (c->kind == 0) /* conv: output h/2 x w/2 */
        macs = (double)n * c->oc * (h / 2) * (w / 2) * ic * c->k * c->k;
    else /* transpose: each input pixel scatters a kernel */
        macs = (double)n * ic * h * w * c->oc * c->k * c->k;
    return 2.0 * macs * (2.0 + (c->x_grad ? 1.0 : 0.0));
}

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

/* The case's parameters in ps: weights (batch norm: gamma, running
 * statistics) and bias, initialised from r. */
static int case_params(const bcase *c, dgm_params *ps, dgm_rng *r,
                       dgm_param **w, dgm_param **b, dgm_param **rm,
                       dgm_param **rv)
{
    int64_t ch = c->kind == 2 ? c->x[1] : c->oc;
    int64_t ws[4] = {c->kind == 1 ? c->x[1] : c->oc,
                     c->kind == 1 ? c->oc : c->x[1], c->k, c->k};
    int rc = c->kind == 2 ? dgm_params_add(ps, "w", DGM_ROLE_WEIGHT, 1, &ch, w)
                          : dgm_params_add(ps, "w", DGM_ROLE_WEIGHT, 4, ws, w);
    if (!rc && c->kind == 2)
        rc = dgm_params_add(ps, "rm", DGM_ROLE_BUFFER, 1, &ch, rm);
    if (!rc && c->kind == 2)
        rc = dgm_params_add(ps, "rv", DGM_ROLE_BUFFER, 1, &ch, rv);
    if (!rc)
        rc = dgm_params_add(ps, "b", DGM_ROLE_WEIGHT, 1, &ch, b);
    if (rc)
        return rc;
    if (c->kind == 2)
        dgm_tensor_fill((*w)->value, 1.0);
    else
        dgm_init_uniform((*w)->value, r, -0.1f, 0.1f);
    return 0;
}

/* One forward + backward of case c on g: the op's inputs through an
 * identity affine when `via` (see the file head). */
static int step(dgm_graph *g, const bcase *c, dgm_tensor *x, dgm_param *w,
                dgm_param *b, dgm_param *rm, dgm_param *rv, bool via)
{
    const dgm_conv_params cp = {{2, 2}, {1, 1}, {1, 1}, 1, {0, 0}};
    dgm_graph_reset(g);
    dgm_var *xv = dgm_leaf(g, x, c->x_grad != 0 || via);
    dgm_var *wv = dgm_param_var(g, w), *bv = dgm_param_var(g, b);
    if (via) {
        if (c->x_grad)
            xv = dgm_affine(g, xv, 1.0f, 0.0f);
        wv = dgm_affine(g, wv, 1.0f, 0.0f);
        bv = dgm_affine(g, bv, 1.0f, 0.0f);
    }
    dgm_var *y;
    if (c->kind == 0)
        y = dgm_conv2d(g, xv, wv, bv, &cp);
    else if (c->kind == 1)
        y = dgm_conv_transpose2d(g, xv, wv, bv, &cp);
    else
        y = dgm_batch_norm(g, xv, wv, bv, rm, rv, 0.1f, 1e-5f);
    dgm_var *loss = dgm_sum_all(g, y);
    int rc = loss ? dgm_backward(g, loss) : dgm_last_code();
    if (rc < 0)
        fprintf(stderr, "bench_conv: %s: %s\n", c->name, dgm_last_error());
    return rc;
}

static int run_case(const bcase *c, dgm_backend be, double *ms_out)
{
    dgm_params *ps = dgm_params_new();
    dgm_graph *g = dgm_graph_new();
    dgm_rng r;
    dgm_rng_seed(&r, 1);
    dgm_tensor *x = dgm_tensor_new(DGM_F32, 4, c->x);
    if (!ps || !g || !x)
        return dgm_last_code();
    dgm_init_uniform(x, &r, -1.0f, 1.0f);
    dgm_param *w = NULL, *b = NULL, *rm = NULL, *rv = NULL;
    int rc = case_params(c, ps, &r, &w, &b, &rm, &rv);
    if (rc)
        return rc;
    dgm_graph_set_backend(g, be);
    enum { WARM = 3, REPS = 15 };
    double t[REPS];
    for (int it = 0; it < WARM + REPS; it++) {
        double t0 = now();
        if ((rc = step(g, c, x, w, b, rm, rv, false)) < 0)
            return rc;
        if (it >= WARM)
            t[it - WARM] = now() - t0;
    }
    qsort(t, REPS, sizeof t[0], cmp_double);
    *ms_out = t[REPS / 2] * 1e3;
    dgm_tensor_free(x);
    dgm_graph_free(g);
    dgm_params_free(ps);
    return 0;
}

/* One `ab` step of a case (ab_step_fn). */
typedef struct conv_ctx {
    const bcase *c;
    dgm_tensor *x;
    dgm_param *w, *b, *rm, *rv;
} conv_ctx;

static int conv_step(void *ctx, dgm_graph *g)
{
    conv_ctx *k = ctx;
    return step(g, k->c, k->x, k->w, k->b, k->rm, k->rv, true);
}

/* `ab`: ms[0] / cpu[0] zero-fill + add, [1] first write (medians). */
static int run_case_ab(const bcase *c, double ms[2], double cpu[2])
{
    dgm_params *ps = dgm_params_new();
    dgm_rng r;
    dgm_rng_seed(&r, 1);
    dgm_tensor *x = dgm_tensor_new(DGM_F32, 4, c->x);
    dgm_graph *g[2];
    ab_graphs(g);
    if (!ps || !x || !g[0] || !g[1])
        return dgm_last_code();
    dgm_init_uniform(x, &r, -1.0f, 1.0f);
    dgm_param *w = NULL, *b = NULL, *rm = NULL, *rv = NULL;
    int rc = case_params(c, ps, &r, &w, &b, &rm, &rv);
    if (rc)
        return rc;
    conv_ctx cx = {c, x, w, b, rm, rv};
    rc = ab_time(g, conv_step, &cx, 3, 21, ms, cpu);
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
    printf("%-40s %9s %9s %9s %9s %7s\n", "case (fwd+bwd)", "zero ms",
           "first ms", "zero cpu", "first cpu", "cpu");
    for (int i = 0; i < N_CASES; i++) {
        double ms[2], cpu[2];
        if (run_case_ab(&CASES[i], ms, cpu) != 0)
            return 1;
        printf("%-40s %9.3f %9.3f %9.3f %9.3f %6.1f%%\n", CASES[i].name, ms[0],
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
    printf("%-40s %10s %9s %10s %9s\n", "case (fwd+bwd)", "dgm ms", "GFLOP/s",
           "torch ms", "GFLOP/s");
    for (int i = 0; i < N_CASES; i++) {
        double ms = 0.0;
        if (run_case(&CASES[i], be, &ms) != 0)
            return 1;
        double tms = torch_ms(torch_file, CASES[i].name);
        double fl = flops(&CASES[i]);
        printf("%-40s %10.3f %9.1f", CASES[i].name, ms,
               fl > 0 ? fl / ms * 1e-6 : 0.0);
        if (tms > 0)
            printf(" %10.3f %9.1f\n", tms, fl > 0 ? fl / tms * 1e-6 : 0.0);
        else
            printf(" %10s %9s\n", "-", "-");
    }
    return 0;
}
