/* test_grad_write_conv.c - first-write gradients of convolution, transposed
 * convolution, pooling, upsampling, batch norm and the RNN op: on both
 * backends the gradients of every leaf, parameter and intermediate result
 * are the same bits as with zero-filled buffers accumulated into
 * (DGM_GRAD_ZERO=1), a second backward adds to leaves and parameters and
 * gives op results the same gradient again, and results read by two
 * consumers get both contributions. In the sanitizer build a buffer told
 * to store starts as NaN, so an element a rule failed to write shows. */
#include <check.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ck_run.h"
#include "dgm/dgm.h"

static void fill(dgm_tensor *t, uint32_t seed, float scale)
{
    float *p = dgm_tensor_f32(t);
    int64_t n = dgm_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = scale * ((float)(seed >> 8) / (float)(1u << 24) - 0.5f);
    }
}

static dgm_tensor *leaf(int ndim, const int64_t *shape, uint32_t seed,
                        float scale)
{
    dgm_tensor *t = dgm_tensor_new(DGM_F32, ndim, shape);
    fill(t, seed, scale);
    return t;
}

/* What a graph is built from: parameters (ps), leaves and constants
 * (ts, freed with the set), and the vars whose gradients are compared. */
enum { MAX_T = 16, MAX_V = 16 };
typedef struct net {
    dgm_params *ps;
    dgm_param *p[MAX_T];
    int np;
    dgm_tensor *t[MAX_T];
    int nt;
    dgm_var *v[MAX_V]; /* leaves and intermediate results of one graph */
    bool acc[MAX_V];   /* v[i] is a leaf: it accumulates across passes */
    int nv;
} net;

static dgm_var *par(dgm_graph *g, net *m, const char *name, int ndim,
                    const int64_t *shape, float scale)
{
    dgm_param *p = dgm_params_find(m->ps, name);
    if (!p) {
        ck_assert_int_eq(
            dgm_params_add(m->ps, name, DGM_ROLE_WEIGHT, ndim, shape, &p), 0);
        fill(p->value, (uint32_t)(17 * m->np + 5), scale);
        m->p[m->np++] = p;
    }
    return dgm_param_var(g, p);
}

/* A leaf (grad: requires a gradient) made once per net, by order. */
static dgm_var *lf(dgm_graph *g, net *m, int *k, int ndim, const int64_t *shape,
                   float scale, bool grad)
{
    if (*k == m->nt)
        m->t[m->nt++] = leaf(ndim, shape, (uint32_t)(31 * *k + 7), scale);
    dgm_var *v = dgm_leaf(g, m->t[(*k)++], grad);
    if (grad) {
        m->acc[m->nv] = true;
        m->v[m->nv++] = v;
    }
    return v;
}

static dgm_var *track(net *m, dgm_var *v)
{
    m->acc[m->nv] = false;
    m->v[m->nv++] = v;
    return v;
}

/* sum(v * c) for a fixed c of v's shape */
static dgm_var *dot(dgm_graph *g, net *m, int *k, dgm_var *v)
{
    const dgm_tensor *t = dgm_value(v);
    return dgm_sum_all(
        g, dgm_mul(g, v, lf(g, m, k, t->ndim, t->shape, 1.0f, false)));
}

/* x -> a (affine), read by conv2d (16 channels, bias) and avg_pool2d;
 * batch norm (parameters), max pool, whose result feeds a transposed conv
 * and an upsampling; a conv without bias on the upsampled map, and a
 * 2-channel conv (plain layouts) after the transposed one. */
static dgm_var *conv_loss(dgm_graph *g, net *m)
{
    int k = 0;
    m->nv = 0;
    const dgm_conv_params s1 = {{1, 1}, {1, 1}, {1, 1}, 1, {0, 0}};
    const dgm_conv_params s2 = {{2, 2}, {1, 1}, {1, 1}, 1, {0, 0}};
    dgm_var *x = lf(g, m, &k, 4, (int64_t[]){2, 3, 8, 8}, 2.0f, true);
    dgm_var *a = track(m, dgm_affine(g, x, 1.5f, 0.1f));
    dgm_var *c1 = track(
        m, dgm_conv2d(g, a, par(g, m, "w1", 4, (int64_t[]){16, 3, 3, 3}, 1.0f),
                      par(g, m, "b1", 1, (int64_t[]){16}, 0.5f), &s1));
    dgm_var *n1 = track(
        m, dgm_batch_norm(g, c1, par(g, m, "gamma", 1, (int64_t[]){16}, 1.0f),
                          par(g, m, "beta", 1, (int64_t[]){16}, 0.5f), NULL,
                          NULL, 0.1f, 1e-5f));
    dgm_var *r1 = dgm_leaky_relu(g, n1, 0.2f);
    dgm_var *p1 = track(m, dgm_max_pool2d(g, r1, 2, 2, 0)); /* [2,16,4,4] */
    dgm_var *d1 =
        track(m, dgm_conv_transpose2d(
                     g, p1, par(g, m, "wt", 4, (int64_t[]){16, 8, 4, 4}, 0.5f),
                     par(g, m, "bt", 1, (int64_t[]){8}, 0.5f), &s2));
    dgm_var *u = track(m, dgm_upsample_nearest2d(g, p1, 2)); /* [2,16,8,8] */
    dgm_var *c3 = dgm_conv2d(
        g, u, par(g, m, "w3", 4, (int64_t[]){8, 16, 3, 3}, 0.5f), NULL, &s1);
    dgm_var *c4 =
        dgm_conv2d(g, d1, par(g, m, "w4", 4, (int64_t[]){2, 8, 3, 3}, 0.5f),
                   par(g, m, "b4", 1, (int64_t[]){2}, 0.5f), &s1);
    dgm_var *ap = dgm_avg_pool2d(g, a, 3, 1, 1);
    dgm_var *l = dgm_add(g, dot(g, m, &k, c3), dot(g, m, &k, c4));
    return dgm_add(g, l, dot(g, m, &k, ap));
}

/* Embedding -> x [T, N, I], read by a 2-layer RNN and by a sum; h0 and c0
 * are op results (affine of leaves); y, h_n and c_n all reach the loss. */
static dgm_var *rnn_loss(dgm_graph *g, net *m, dgm_rnn_cell cell)
{
    enum { T = 5, N = 3, I = 6, Hd = 8, L = 2, V = 7 };
    const int G = cell == DGM_RNN_LSTM ? 4 : 3;
    int k = 0;
    m->nv = 0;
    if (m->nt == 0) {
        m->t[m->nt++] = dgm_tensor_new(DGM_I64, 2, (int64_t[]){T, N});
        for (int i = 0; i < T * N; i++)
            ((int64_t *)m->t[0]->data)[i] = (i * 5 + 2) % V;
    }
    k = 1;
    dgm_var *idx = dgm_input(g, m->t[0]);
    dgm_var *x = track(
        m, dgm_embedding(g, par(g, m, "emb", 2, (int64_t[]){V, I}, 2.0f), idx));
    dgm_var *wih[L], *whh[L], *bih[L], *bhh[L];
    for (int l = 0; l < L; l++) {
        char nm[32];
        snprintf(nm, sizeof nm, "w_ih%d", l);
        wih[l] = par(g, m, nm, 2, (int64_t[]){G * Hd, l ? Hd : I}, 0.8f);
        snprintf(nm, sizeof nm, "w_hh%d", l);
        whh[l] = par(g, m, nm, 2, (int64_t[]){G * Hd, Hd}, 0.8f);
        snprintf(nm, sizeof nm, "b_ih%d", l);
        bih[l] = par(g, m, nm, 1, (int64_t[]){G * Hd}, 0.5f);
        snprintf(nm, sizeof nm, "b_hh%d", l);
        bhh[l] = par(g, m, nm, 1, (int64_t[]){G * Hd}, 0.5f);
    }
    dgm_rnn_weights w = {cell, L, Hd, wih, whh, bih, bhh};
    dgm_var *h0l = lf(g, m, &k, 3, (int64_t[]){L, N, Hd}, 1.0f, true);
    dgm_var *h0 = track(m, dgm_affine(g, h0l, 0.5f, 0.0f));
    dgm_var *c0 = NULL;
    if (cell == DGM_RNN_LSTM) {
        dgm_var *c0l = lf(g, m, &k, 3, (int64_t[]){L, N, Hd}, 1.0f, true);
        c0 = track(m, dgm_affine(g, c0l, 0.5f, 0.1f));
    }
    dgm_var *hn = NULL, *cn = NULL;
    dgm_var *y =
        dgm_rnn(g, x, &w, h0, c0, &hn, cell == DGM_RNN_LSTM ? &cn : NULL);
    ck_assert_msg(y != NULL, "%s", dgm_last_error());
    dgm_var *l = dgm_add(g, dot(g, m, &k, y), dot(g, m, &k, hn));
    if (cn)
        l = dgm_add(g, l, dot(g, m, &k, cn));
    return dgm_add(g, l, dgm_affine(g, dgm_sum_all(g, x), 0.25f, 0.0f));
}

enum { NET_CONV, NET_LSTM, NET_GRU };

static dgm_var *net_loss(dgm_graph *g, net *m, int which)
{
    return which == NET_CONV
               ? conv_loss(g, m)
               : rnn_loss(g, m, which == NET_LSTM ? DGM_RNN_LSTM : DGM_RNN_GRU);
}

static void net_free(net *m)
{
    dgm_params_free(m->ps);
    for (int i = 0; i < m->nt; i++)
        dgm_tensor_free(m->t[i]);
}

/* The gradients of one graph, flattened: parameters, then tracked vars;
 * acc[j]: element j accumulates across passes (a parameter or a leaf). */
typedef struct grads {
    float *v;
    bool *acc;
    int64_t n;
} grads;

static grads collect(const net *m)
{
    grads r = {NULL, NULL, 0};
    for (int pass = 0; pass < 2; pass++) {
        int64_t o = 0;
        for (int i = 0; i < m->np + m->nv; i++) {
            const dgm_tensor *t =
                i < m->np ? m->p[i]->grad : dgm_grad(m->v[i - m->np]);
            ck_assert_msg(t != NULL, "tensor %d has no gradient", i);
            int64_t n = dgm_tensor_numel(t);
            if (pass) {
                memcpy(r.v + o, t->data, (size_t)n * sizeof(float));
                for (int64_t j = 0; j < n; j++)
                    r.acc[o + j] = i < m->np || m->acc[i - m->np];
            }
            o += n;
        }
        if (!pass) {
            r.n = o;
            r.v = malloc((size_t)o * sizeof(float));
            r.acc = malloc((size_t)o * sizeof(bool));
        }
    }
    return r;
}

/* One and two backward passes of a net on a backend, zero-filled or not. */
static void run(int which, dgm_backend be, bool zero_fill, grads out[2])
{
    net m;
    memset(&m, 0, sizeof m);
    m.ps = dgm_params_new();
    if (zero_fill)
        setenv("DGM_GRAD_ZERO", "1", 1);
    dgm_graph *g = dgm_graph_new();
    unsetenv("DGM_GRAD_ZERO");
    dgm_graph_set_backend(g, be);
    dgm_var *loss = net_loss(g, &m, which);
    ck_assert_msg(loss != NULL, "%s", dgm_last_error());
    for (int pass = 0; pass < 2; pass++) {
        ck_assert_int_eq(dgm_backward(g, loss), 0);
        out[pass] = collect(&m);
    }
    dgm_graph_free(g);
    net_free(&m);
}

static const char *const names[] = {"conv", "lstm", "gru"};

/* Same bits as zero-fill + accumulate, every value finite, on both passes;
 * the second pass doubles parameters and leaves and repeats op results. */
START_TEST(same_bits_as_zero_fill)
{
    const int which = _i / 2;
    const dgm_backend be = _i % 2 ? DGM_BACKEND_DNNL : DGM_BACKEND_REF;
    dgm_set_threads(1);
    grads fw[2], zf[2];
    run(which, be, false, fw);
    run(which, be, true, zf);
    for (int pass = 0; pass < 2; pass++) {
        ck_assert_int_eq(fw[pass].n, zf[pass].n);
        double norm = 0;
        for (int64_t j = 0; j < fw[pass].n; j++) {
            float a = fw[pass].v[j] + 0.0f, b = zf[pass].v[j] + 0.0f;
            ck_assert_msg(isfinite(a),
                          "%s backend %d pass %d [%" PRId64
                          "]: %g (an element not written)",
                          names[which], (int)be, pass + 1, j, (double)a);
            ck_assert_msg(
                memcmp(&a, &b, sizeof a) == 0,
                "%s backend %d pass %d [%" PRId64 "]: %.9g, zero-filled %.9g",
                names[which], (int)be, pass + 1, j, (double)a, (double)b);
            norm += fabsf(a);
            float once = fw[0].v[j];
            float want = fw[1].acc[j] ? 2.0f * once : once;
            if (pass)
                ck_assert_msg(fabsf(a - want) <= 1e-5f * (1.0f + fabsf(want)),
                              "%s backend %d [%" PRId64
                              "]: %g after two passes, %g after one",
                              names[which], (int)be, j, (double)a,
                              (double)once);
        }
        ck_assert(norm > 0);
    }
    for (int pass = 0; pass < 2; pass++) {
        grads *gs[2] = {&fw[pass], &zf[pass]};
        for (int i = 0; i < 2; i++) {
            free(gs[i]->v);
            free(gs[i]->acc);
        }
    }
}
END_TEST

/* x read by two consumers of the converted ops (conv2d and avg_pool2d; a
 * max pool's result by a transposed conv and an upsampling): its gradient
 * is the sum of what each alone gives. */
START_TEST(two_consumers_sum)
{
    const dgm_backend be = _i ? DGM_BACKEND_DNNL : DGM_BACKEND_REF;
    const dgm_conv_params s1 = {{1, 1}, {1, 1}, {1, 1}, 1, {0, 0}};
    const dgm_conv_params s2 = {{2, 2}, {1, 1}, {1, 1}, 1, {0, 0}};
    dgm_tensor *xt = leaf(4, (int64_t[]){2, 16, 8, 8}, 3, 2.0f);
    dgm_tensor *w = leaf(4, (int64_t[]){16, 16, 3, 3}, 4, 0.5f);
    dgm_tensor *wt = leaf(4, (int64_t[]){16, 8, 4, 4}, 5, 0.5f);
    dgm_tensor *c1 = leaf(4, (int64_t[]){2, 16, 8, 8}, 6, 1.0f);
    dgm_tensor *c2 = leaf(4, (int64_t[]){2, 16, 8, 8}, 7, 1.0f);
    dgm_tensor *c3 = leaf(4, (int64_t[]){2, 8, 8, 8}, 8, 1.0f);
    int64_t n = dgm_tensor_numel(xt);
    float *part[3];
    /* mask bit 0: conv2d, bit 1: avg_pool2d + upsample of a max pool, bit
     * 2: transposed conv of the same max pool */
    for (int mask = 1; mask <= 7; mask++) {
        dgm_graph *g = dgm_graph_new();
        dgm_graph_set_backend(g, be);
        dgm_var *x = dgm_leaf(g, xt, true);
        dgm_var *e = dgm_affine(g, x, 1.0f, 0.25f);
        dgm_var *p = dgm_max_pool2d(g, e, 2, 2, 0);
        dgm_var *l = NULL;
        if (mask & 1)
            l = dgm_sum_all(
                g, dgm_mul(g, dgm_conv2d(g, e, dgm_input(g, w), NULL, &s1),
                           dgm_input(g, c1)));
        if (mask & 2) {
            dgm_var *s = dgm_add(g, dgm_avg_pool2d(g, e, 3, 1, 1),
                                 dgm_upsample_nearest2d(g, p, 2));
            dgm_var *t = dgm_sum_all(g, dgm_mul(g, s, dgm_input(g, c2)));
            l = l ? dgm_add(g, l, t) : t;
        }
        if (mask & 4) {
            dgm_var *t = dgm_sum_all(
                g,
                dgm_mul(g,
                        dgm_conv_transpose2d(g, p, dgm_input(g, wt), NULL, &s2),
                        dgm_input(g, c3)));
            l = l ? dgm_add(g, l, t) : t;
        }
        ck_assert_msg(l != NULL, "%s", dgm_last_error());
        ck_assert_int_eq(dgm_backward(g, l), 0);
        const float *gx = dgm_tensor_f32(dgm_grad(x));
        if (mask == 1 || mask == 2 || mask == 4) {
            part[mask / 2] = malloc((size_t)n * sizeof(float));
            memcpy(part[mask / 2], gx, (size_t)n * sizeof(float));
        } else {
            for (int64_t i = 0; i < n; i++) {
                float want = 0.0f;
                for (int b = 0; b < 3; b++)
                    if (mask & (1 << b))
                        want += part[b][i];
                ck_assert_msg(fabsf(gx[i] - want) <=
                                  2e-5f * (1.0f + fabsf(want)),
                              "backend %d mask %d [%" PRId64 "]: %g, want %g",
                              (int)be, mask, i, (double)gx[i], (double)want);
            }
        }
        dgm_graph_free(g);
    }
    for (int b = 0; b < 3; b++)
        free(part[b]);
    dgm_tensor *ts[] = {xt, w, wt, c1, c2, c3};
    for (size_t i = 0; i < sizeof ts / sizeof *ts; i++)
        dgm_tensor_free(ts[i]);
}
END_TEST

static Suite *grad_write_conv_suite(void)
{
    Suite *s = suite_create("grad_write_conv");
    TCase *tc = tcase_create("bits");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, same_bits_as_zero_fill, 0, 6);
    tcase_add_loop_test(tc, two_consumers_sum, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(grad_write_conv_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
