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

/* The plain-C kernels' bits depend on how the compiler vectorised them:
 * the lanes of their `omp simd` sums and whether fma_k (vmath.h) fuses,
 * which follow the target (-march) and the compiler's preferred vector
 * width. This file is built with the library's flags, so its own `omp
 * simd` sum tells the lanes: lane 0 starts at 2^24, which absorbs the ones
 * added to it, while the other lanes' sums of ones are kept, so the total
 * is 2^24 + 32 - 32 / lanes. */
/* volatile: read at run time, so the sum is not folded at compile time */
static volatile float probe_big = 16777216.0f, probe_one = 1.0f;

static int simd_lanes(void)
{
    float v[32], s = 0.0f;
    for (int i = 0; i < 32; i++)
        v[i] = i ? probe_one : probe_big;
#pragma omp simd reduction(+ : s)
    for (int i = 0; i < 32; i++)
        s += v[i];
    const int kept = (int)(s - 16777216.0f);
    return kept < 32 ? 32 / (32 - kept) : 0;
}

/* Checksums of the ref backend's gradients after one backward and after
 * two (one thread, this file's graph and values), per vectorisation.
 * Taken with GCC 12: the first with the zero-filled, accumulating buffers
 * of libdgm before first-write gradients at -march=native on an AVX-512
 * machine (Zen 4), retaken when cross_entropy moved from glibc's expf to
 * exp_k (vmath.h, within 1.3 ulp; before that 5b6e20d1d10090f0
 * 312954190a005c24; the fast paths of add/sub/mul/div and the one-pass
 * layer_norm backward kept those bits); the other two at
 * -march=x86-64-v3 (AVX2; -march=znver3, -march=haswell and
 * -march=skylake-avx512, whose tuning prefers 256-bit vectors, give the
 * same) and plain x86-64, where the suite had
 * compared them with the AVX-512 figures and failed. oneDNN's bits depend on
 * the CPU at run time, so its figures are asserted against DGM_GRAD_ZERO=1
 * below and printed. */
static const struct {
    int lanes, fma;
    uint64_t ref[2];
} before_ref[] = {
    {16, 1, {0x5b9d3b7bbec6f232ull, 0x0a2e1e6b75047ae2ull}},
    {8, 1, {0x8ed825379cd3b355ull, 0x2a326b18a9e16fbcull}},
    {4, 0, {0xeb9b87d6eb7bd57dull, 0x8db0efd34887ce62ull}},
};

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
#ifdef __FMA__
    const int fma = 1;
#else
    const int fma = 0;
#endif
    const int lanes = simd_lanes();
    const uint64_t *want = NULL;
    for (size_t k = 0; k < sizeof before_ref / sizeof *before_ref; k++)
        if (before_ref[k].lanes == lanes && before_ref[k].fma == fma)
            want = before_ref[k].ref;
    if (!want)
        printf("mixed graph: no checksum recorded for %d lanes%s; the ref "
               "bits are compared with DGM_GRAD_ZERO=1 only\n",
               lanes, fma ? " with FMA" : "");
    for (int i = 0; i < 2; i++) {
        ck_assert_msg(
            !want || ref[i] == want[i],
            "ref pass %d: %016" PRIx64 ", before %016" PRIx64 " (%d lanes%s)",
            i + 1, ref[i], want ? want[i] : 0, lanes, fma ? " with FMA" : "");
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

START_TEST(second_backward_adds_to_leaves_and_params)
{
    for (int be = 0; be < 2; be++) {
        mixed m;
        mixed_init(&m);
        mixed_vars lv;
        dgm_graph *g = dgm_graph_new();
        dgm_graph_set_backend(g, be ? DGM_BACKEND_DNNL : DGM_BACKEND_REF);
        dgm_var *loss = mixed_loss(g, &m, &lv);
        ck_assert_ptr_nonnull(loss);
        const dgm_tensor *ts[] = {m.emb->grad,  m.w1->grad, m.b1->grad,
                                  m.wout->grad, NULL,       NULL,
                                  NULL,         NULL,       NULL};
        ck_assert_int_eq(dgm_backward(g, loss), 0);
        dgm_var *lvs[] = {lv.w2, lv.b2, lv.gamma, lv.beta, lv.m};
        for (int i = 0; i < 5; i++)
            ts[4 + i] = dgm_grad(lvs[i]);
        float *once[9];
        for (int i = 0; i < 9; i++) {
            size_t n = (size_t)dgm_tensor_numel(ts[i]);
            once[i] = malloc(n * sizeof(float));
            memcpy(once[i], ts[i]->data, n * sizeof(float));
        }
        ck_assert_int_eq(dgm_backward(g, loss), 0);
        for (int i = 0; i < 9; i++) {
            double norm = 0;
            for (int64_t j = 0; j < dgm_tensor_numel(ts[i]); j++) {
                float want = 2.0f * once[i][j];
                norm += fabs(once[i][j]);
                ck_assert_msg(
                    fabsf(at(ts[i], j) - want) <= 1e-6f * (1.0f + fabsf(want)),
                    "backend %d tensor %d [%" PRId64
                    "]: %g after two passes, %g after one",
                    be, i, j, (double)at(ts[i], j), (double)once[i][j]);
            }
            ck_assert_msg(norm > 0, "tensor %d got no gradient", i);
            free(once[i]);
        }
        dgm_graph_free(g);
        mixed_free(&m);
    }
}
END_TEST

/* ---- several consumers ----------------------------------------------------
 */

enum { C0 = 2, C1 = 3, C2 = 4, CN = C0 * C1 * C2 };

/* x [2, 3, 4] -> e = exp(x), an op result (so its gradient is first-write);
 * each case builds a loss of e and gives d loss / d e, which times e is the
 * expected d loss / d x. */
typedef dgm_var *(*case_fn)(dgm_graph *g, dgm_var *e, const dgm_tensor *c,
                            float *dl_de, dgm_var **probe);

static float cval(const dgm_tensor *c, int i)
{
    return at(c, i);
}

/* e read by a sum, then by a reshape whose backward runs first: the
 * reshape must not alias e's gradient (the sum adds to it later), or the
 * reshape's own gradient (probe) would change. */
static dgm_var *case_reshape_and_sum(dgm_graph *g, dgm_var *e,
                                     const dgm_tensor *c, float *dl_de,
                                     dgm_var **probe)
{
    dgm_var *cv = dgm_input(g, (dgm_tensor *)c);
    dgm_var *s = dgm_sum_all(g, e);
    dgm_var *r = dgm_reshape(g, e, 2, (int64_t[]){C0 * C1, C2});
    *probe = r;
    for (int i = 0; i < CN; i++)
        dl_de[i] = 1.0f + cval(c, i);
    cv = dgm_reshape(g, cv, 2, (int64_t[]){C0 * C1, C2});
    return dgm_add(g, s, dgm_sum_all(g, dgm_mul(g, r, cv)));
}

/* e read only by a reshape: its gradient is the reshape's, aliased; the
 * reshape's own gradient (probe) must still read c. */
static dgm_var *case_reshape_alone(dgm_graph *g, dgm_var *e,
                                   const dgm_tensor *c, float *dl_de,
                                   dgm_var **probe)
{
    dgm_var *cv = dgm_input(g, (dgm_tensor *)c);
    dgm_var *r = dgm_reshape(g, e, 2, (int64_t[]){C0 * C1, C2});
    *probe = r;
    for (int i = 0; i < CN; i++)
        dl_de[i] = cval(c, i);
    cv = dgm_reshape(g, cv, 2, (int64_t[]){C0 * C1, C2});
    return dgm_sum_all(g, dgm_mul(g, r, cv));
}

/* permute + contiguous (the alias of a copy) and a slice of e. */
static dgm_var *case_permute_and_slice(dgm_graph *g, dgm_var *e,
                                       const dgm_tensor *c, float *dl_de,
                                       dgm_var **probe)
{
    (void)probe;
    dgm_var *cv = dgm_input(g, (dgm_tensor *)c); /* read as [4, 3, 2] */
    cv = dgm_reshape(g, cv, 3, (int64_t[]){C2, C1, C0});
    dgm_var *p = dgm_contiguous(g, dgm_permute(g, e, (const int[]){2, 1, 0}));
    for (int i = 0; i < C0; i++)
        for (int j = 0; j < C1; j++)
            for (int k = 0; k < C2; k++)
                dl_de[(i * C1 + j) * C2 + k] =
                    cval(c, (k * C1 + j) * C0 + i) + (k >= 1 && k < 3);
    return dgm_add(g, dgm_sum_all(g, dgm_mul(g, p, cv)),
                   dgm_sum_all(g, dgm_slice(g, e, 2, 1, 3, 1)));
}

/* A strided slice first (stores with holes), then a second slice. */
static dgm_var *case_two_slices(dgm_graph *g, dgm_var *e, const dgm_tensor *c,
                                float *dl_de, dgm_var **probe)
{
    (void)c;
    (void)probe;
    for (int i = 0; i < CN; i++)
        dl_de[i] = (i % C2 % 2 == 0 ? 3.0f : 0.0f) +
                   (i / (C1 * C2) == 1 ? 1.0f : 0.0f);
    dgm_var *a = dgm_slice(g, e, 0, 1, 2, 1);
    dgm_var *b = dgm_affine(g, dgm_slice(g, e, 2, 0, C2, 2), 3.0f, 0.0f);
    return dgm_add(g, dgm_sum_all(g, a), dgm_sum_all(g, b));
}

/* e twice in one op: mul(e, e) and concat([e, e]). */
static dgm_var *case_same_input_twice(dgm_graph *g, dgm_var *e,
                                      const dgm_tensor *c, float *dl_de,
                                      dgm_var **probe)
{
    (void)probe;
    dgm_var *cv = dgm_input(g, (dgm_tensor *)c);
    dgm_var *cat = dgm_concat(g, (dgm_var *[]){e, e}, 2, 0);
    cv = dgm_concat(g, (dgm_var *[]){cv, dgm_affine(g, cv, 2.0f, 0.0f)}, 2, 0);
    for (int i = 0; i < CN; i++)
        dl_de[i] = 3.0f * cval(c, i); /* + 2 e from e * e, added below */
    return dgm_add(g, dgm_sum_all(g, dgm_mul(g, e, e)),
                   dgm_sum_all(g, dgm_mul(g, cat, cv)));
}

START_TEST(several_consumers_get_every_contribution)
{
    const case_fn cases[] = {case_reshape_and_sum, case_reshape_alone,
                             case_permute_and_slice, case_two_slices,
                             case_same_input_twice};
    dgm_tensor *xt = leaf(3, (int64_t[]){C0, C1, C2}, 11, 1.0f);
    dgm_tensor *c = leaf(3, (int64_t[]){C0, C1, C2}, 12, 2.0f);
    for (int be = 0; be < 2; be++)
        for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
            dgm_graph *g = dgm_graph_new();
            dgm_graph_set_backend(g, be ? DGM_BACKEND_DNNL : DGM_BACKEND_REF);
            dgm_var *x = dgm_leaf(g, xt, true), *e = dgm_exp(g, x);
            float dl_de[CN];
            dgm_var *probe = NULL;
            dgm_var *loss = cases[k](g, e, c, dl_de, &probe);
            ck_assert_msg(loss != NULL, "%s", dgm_last_error());
            for (int pass = 1; pass <= 2; pass++) {
                ck_assert_int_eq(dgm_backward(g, loss), 0);
                const dgm_tensor *gx = dgm_grad(x);
                for (int i = 0; i < CN; i++) {
                    float ev = expf(at(xt, i)), want = dl_de[i] * ev;
                    if (k == 4)
                        want += 2.0f * ev * ev;
                    want *= (float)pass;
                    ck_assert_msg(
                        fabsf(at(gx, i) - want) <= 1e-5f * (1.0f + fabsf(want)),
                        "backend %d case %zu pass %d [%d]: %g, "
                        "want %g",
                        be, k, pass, i, (double)at(gx, i), (double)want);
                }
                if (probe) /* an aliased view's own gradient */
                    for (int i = 0; i < CN; i++)
                        ck_assert_float_eq_tol(at(dgm_grad(probe), i),
                                               cval(c, i), 1e-6);
            }
            dgm_graph_free(g);
        }
    dgm_tensor_free(xt);
    dgm_tensor_free(c);
}
END_TEST

static Suite *grad_write_suite(void)
{
    Suite *s = suite_create("grad_write");
    tq_case(s, "bits", mixed_graph_same_bits_as_before);
    tq_case(s, "accumulate", second_backward_adds_to_leaves_and_params,
            several_consumers_get_every_contribution);
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
