/* test_grad_write.c - gradient buffers written by their first
 * contribution: the same gradients, to the bit, as zero-filled buffers
 * accumulated into (a small graph mixing every converted op, on both
 * backends, against a checksum taken before the change and against
 * DGM_GRAD_ZERO=1), a second backward adding to leaves and parameters, and
 * nodes with several consumers (views that alias their input's gradient
 * among them) getting every contribution. */
#include <check.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ck_run.h"
#include "dgm/dgm.h"

static float at(const dgm_tensor *t, int64_t i)
{
    return dgm_tensor_f32(t)[i];
}

/* ---- the mixed graph ------------------------------------------------------
 */

enum { B = 2, T = 8, D = 16, H = 2, HD = 8, V = 11 };

/* What the mixed graph is built from; parameters and leaves both, so both
 * accumulate paths are covered. */
typedef struct mixed {
    dgm_params *ps;
    dgm_param *emb, *w1, *b1, *wout;        /* parameters */
    dgm_tensor *w2, *b2, *gamma, *beta, *m; /* leaves */
    dgm_tensor *idx, *target;
} mixed;

static void fill(dgm_tensor *t, uint32_t seed, float scale)
{
    float *p = dgm_tensor_f32(t);
    int64_t n = dgm_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = scale * ((float)(seed >> 8) / (float)(1u << 24) - 0.5f);
    }
}

static dgm_param *param(mixed *m, const char *name, int ndim,
                        const int64_t *shape, uint32_t seed, float scale)
{
    dgm_param *p = NULL;
    ck_assert_int_eq(
        dgm_params_add(m->ps, name, DGM_ROLE_WEIGHT, ndim, shape, &p), 0);
    fill(p->value, seed, scale);
    return p;
}

static dgm_tensor *leaf(int ndim, const int64_t *shape, uint32_t seed,
                        float scale)
{
    dgm_tensor *t = dgm_tensor_new(DGM_F32, ndim, shape);
    fill(t, seed, scale);
    return t;
}

static void mixed_init(mixed *m)
{
    memset(m, 0, sizeof *m);
    m->ps = dgm_params_new();
    m->emb = param(m, "emb", 2, (int64_t[]){V, D}, 1, 2.0f);
    m->w1 = param(m, "w1", 2, (int64_t[]){3 * D, D}, 2, 1.0f);
    m->b1 = param(m, "b1", 1, (int64_t[]){3 * D}, 3, 0.5f);
    m->wout = param(m, "wout", 2, (int64_t[]){V, D}, 4, 1.0f);
    m->w2 = leaf(2, (int64_t[]){D, D}, 5, 1.0f);
    m->b2 = leaf(1, (int64_t[]){D}, 6, 0.5f);
    m->gamma = leaf(1, (int64_t[]){D}, 7, 1.0f);
    m->beta = leaf(1, (int64_t[]){D}, 8, 0.5f);
    m->m = leaf(2, (int64_t[]){D, D}, 9, 0.5f);
    for (int64_t i = 0; i < D; i++)
        dgm_tensor_f32(m->gamma)[i] += 1.0f;
    m->idx = dgm_tensor_new(DGM_I64, 2, (int64_t[]){B, T});
    m->target = dgm_tensor_new(DGM_I64, 2, (int64_t[]){B, T});
    for (int64_t i = 0; i < B * T; i++) {
        ((int64_t *)m->idx->data)[i] = (i * 7 + 3) % V;
        ((int64_t *)m->target->data)[i] = (i * 5 + 1) % V;
    }
}

static void mixed_free(mixed *m)
{
    dgm_params_free(m->ps);
    dgm_tensor *ts[] = {m->w2, m->b2,  m->gamma, m->beta,
                        m->m,  m->idx, m->target};
    for (size_t i = 0; i < sizeof ts / sizeof *ts; i++)
        dgm_tensor_free(ts[i]);
}

/* Leaves of one graph, to read their gradients back. */
typedef struct mixed_vars {
    dgm_var *w2, *b2, *gamma, *beta, *m;
} mixed_vars;

/* Embedding, layer norm, linear with and without bias, the head split of a
 * transformer block (reshape, permute, contiguous, slice), scaled scores
 * (affine, batched matmul), softmax, a batched @ shared matmul, add with
 * and without broadcasting, gelu, concat, strided slices that overlap and
 * leave holes, cross entropy, log-softmax, mul and reductions; h, y, u and
 * gamma each feed several ops. */
static dgm_var *mixed_loss(dgm_graph *g, mixed *m, mixed_vars *lv)
{
    lv->w2 = dgm_leaf(g, m->w2, true);
    lv->b2 = dgm_leaf(g, m->b2, true);
    lv->gamma = dgm_leaf(g, m->gamma, true);
    lv->beta = dgm_leaf(g, m->beta, true);
    lv->m = dgm_leaf(g, m->m, true);
    dgm_var *idx = dgm_input(g, m->idx), *tgt = dgm_input(g, m->target);
    dgm_var *h = dgm_embedding(g, dgm_param_var(g, m->emb), idx);
    dgm_var *x = dgm_layer_norm(g, h, lv->gamma, lv->beta, 1e-5f);
    dgm_var *qkv =
        dgm_linear(g, x, dgm_param_var(g, m->w1), dgm_param_var(g, m->b1));
    qkv = dgm_reshape(g, qkv, 5, (int64_t[]){B, T, 3, H, HD});
    qkv = dgm_contiguous(g, dgm_permute(g, qkv, (const int[]){2, 0, 3, 1, 4}));
    dgm_var *q = dgm_slice(g, qkv, 0, 0, 1, 1);
    dgm_var *k = dgm_slice(g, qkv, 0, 1, 2, 1);
    dgm_var *v = dgm_slice(g, qkv, 0, 2, 3, 1);
    dgm_var *s = dgm_matmul(g, dgm_affine(g, q, 0.35f, 0.0f), k, false, true);
    dgm_var *o = dgm_matmul(g, dgm_softmax(g, s, 4), v, false, false);
    o = dgm_permute(g, o, (const int[]){0, 1, 3, 2, 4});
    o = dgm_reshape(g, o, 3, (int64_t[]){B, T, D});
    dgm_var *y = dgm_add(g, h, o);
    dgm_var *z = dgm_add(g, dgm_linear(g, y, lv->w2, lv->b2),
                         dgm_matmul(g, y, lv->m, false, false));
    z = dgm_gelu(g, z);
    dgm_var *cat = dgm_concat(g, (dgm_var *[]){z, y}, 2, 2); /* [B, T, 2D] */
    dgm_var *u = dgm_add(g, dgm_slice(g, cat, 2, 0, D, 1),
                         dgm_slice(g, cat, 2, D, 2 * D, 1));
    u = dgm_add(g, u, dgm_slice(g, cat, 2, 1, 2 * D, 2));
    u = dgm_reshape(g, u, 2, (int64_t[]){B * T, D});
    dgm_var *logits = dgm_linear(g, u, dgm_param_var(g, m->wout), NULL);
    logits = dgm_reshape(g, logits, 3, (int64_t[]){B, T, V});
    dgm_var *ce = dgm_mean_all(g, dgm_cross_entropy(g, logits, tgt));
    dgm_var *ls = dgm_mean_all(g, dgm_mul(g, dgm_log_softmax(g, logits, 2),
                                          dgm_softmax(g, logits, 2)));
    dgm_var *reg = dgm_mean_all(g, dgm_mul(g, u, lv->gamma)); /* broadcast */
    return dgm_add(g, dgm_add(g, ce, dgm_affine(g, ls, 0.5f, 0.0f)),
                   dgm_affine(g, reg, 0.1f, 0.0f));
}

/* FNV-1a over the bits of every gradient, -0 read as +0 (a first write may
 * store -0 where 0 + -0 gave +0: the same value). */
static uint64_t hash_grad(uint64_t h, const dgm_tensor *t)
{
    int64_t n = dgm_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) {
        float f = at(t, i) + 0.0f;
        uint32_t u;
        memcpy(&u, &f, sizeof u);
        for (int b = 0; b < 4; b++) {
            h ^= (u >> (8 * b)) & 0xffu;
            h *= 1099511628211ull;
        }
    }
    return h;
}

static uint64_t mixed_hash(const mixed *m, const mixed_vars *lv)
{
    uint64_t h = 14695981039346656037ull;
    const dgm_tensor *ts[] = {
        m->emb->grad,        m->w1->grad,        m->b1->grad,
        m->wout->grad,       dgm_grad(lv->w2),   dgm_grad(lv->b2),
        dgm_grad(lv->gamma), dgm_grad(lv->beta), dgm_grad(lv->m)};
    for (size_t i = 0; i < sizeof ts / sizeof *ts; i++) {
        ck_assert_ptr_nonnull(ts[i]);
        h = hash_grad(h, ts[i]);
    }
    return h;
}

/* One and two backward passes of the mixed graph on a backend: the
 * checksums of the gradients after each. */
static void mixed_run(dgm_backend be, bool zero_fill, uint64_t out[2])
{
    mixed m;
    mixed_init(&m);
    mixed_vars lv;
    if (zero_fill)
        setenv("DGM_GRAD_ZERO", "1", 1);
    dgm_graph *g = dgm_graph_new();
    unsetenv("DGM_GRAD_ZERO");
    dgm_graph_set_backend(g, be);
    dgm_var *loss = mixed_loss(g, &m, &lv);
    ck_assert_msg(loss != NULL, "%s", dgm_last_error());
    ck_assert_int_eq(dgm_backward(g, loss), 0);
    out[0] = mixed_hash(&m, &lv);
    ck_assert_int_eq(dgm_backward(g, loss), 0);
    out[1] = mixed_hash(&m, &lv);
    dgm_graph_free(g);
    mixed_free(&m);
}

/* Taken with the zero-filled, accumulating buffers of libdgm before
 * first-write gradients (one thread, this file's graph and values): ref
 * after one backward and after two, then oneDNN's. The plain-C kernels are
 * compiled without FMA contraction (ISO C), so the ref figures hold on
 * any x86-64; oneDNN's kernels depend on the CPU (these are AVX-512's), so
 * its figures are asserted against DGM_GRAD_ZERO=1 below and printed. */
static const uint64_t before_ref[2] = {0x5b6e20d1d10090f0ull,
                                       0x312954190a005c24ull};

START_TEST(mixed_graph_same_bits_as_before)
{
    dgm_set_threads(1);
    uint64_t ref[2], dnnl[2], zref[2], zdnnl[2];
    mixed_run(DGM_BACKEND_REF, false, ref);
    mixed_run(DGM_BACKEND_DNNL, false, dnnl);
    mixed_run(DGM_BACKEND_REF, true, zref);
    mixed_run(DGM_BACKEND_DNNL, true, zdnnl);
    printf("mixed graph: ref %016" PRIx64 " %016" PRIx64 ", dnnl %016" PRIx64
           " %016" PRIx64 " (AVX-512 before the change: cbf2c18acd7f8eed "
           "87e1a068ea599696)\n",
           ref[0], ref[1], dnnl[0], dnnl[1]);
    for (int i = 0; i < 2; i++) {
        ck_assert_msg(ref[i] == before_ref[i],
                      "ref pass %d: %016" PRIx64 ", before %016" PRIx64, i + 1,
                      ref[i], before_ref[i]);
        ck_assert_msg(ref[i] == zref[i], "ref pass %d: DGM_GRAD_ZERO differs",
                      i + 1);
        ck_assert_msg(dnnl[i] == zdnnl[i],
                      "oneDNN pass %d: %016" PRIx64 ", zero-filled %016" PRIx64,
                      i + 1, dnnl[i], zdnnl[i]);
    }
    /* the second pass really added something */
    ck_assert(ref[1] != ref[0] && dnnl[1] != dnnl[0]);
}
END_TEST

static Suite *grad_write_suite(void)
{
    Suite *s = suite_create("grad_write");
    tq_case(s, "bits", mixed_graph_same_bits_as_before);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(grad_write_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
