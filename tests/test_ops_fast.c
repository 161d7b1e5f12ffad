/* test_ops_fast.c - the fast paths of the transformer's memory-bound ops
 * against their general paths or plain-C references: add/sub/mul/div on
 * contiguous same-shape and suffix-broadcast operands (against the strided
 * loops, DGM_BINARY_GENERAL=1, to the bit), on shapes that hit and miss
 * the fast path; gradients by finite differences; first contributions
 * stored and a second backward adding; 1 against 2 threads to the bit. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ck_run.h"
#include "dgm/dgm.h"
#include "gradcheck.h"

/* ---- binary ops ------------------------------------------------------- */

enum { K_ADD, K_SUB, K_MUL, K_DIV };

static dgm_var *bin(dgm_graph *g, int kind, dgm_var *a, dgm_var *b)
{
    switch (kind) {
    case K_ADD:
        return dgm_add(g, a, b);
    case K_SUB:
        return dgm_sub(g, a, b);
    case K_MUL:
        return dgm_mul(g, a, b);
    default:
        return dgm_div(g, a, b);
    }
}

/* One case: a's and b's shapes; how the operands reach the op. */
typedef struct bcase {
    int nda;
    int64_t sa[4];
    int ndb;
    int64_t sb[4];
    const char *what;
} bcase;

enum {
    IN_LEAF,  /* the leaves themselves: gradients added into */
    IN_NEG,   /* neg(leaf): op results, first contributions stored */
    IN_TRANS, /* transpose of the last two axes twice, the inner one left as
                 a strided view: misses the fast path */
    IN_SAME,  /* b is a (x op x): both gradients into one buffer */
    N_IN
};

static const bcase bcases[] = {
    {3, {3, 5, 7}, 3, {3, 5, 7}, "same shape, odd"},
    {1, {1}, 1, {1}, "one element"},
    {3, {16, 40, 64}, 3, {16, 40, 64}, "same shape, parallel"},
    {2, {2560, 17}, 1, {17}, "bias over rows, 17 columns, parallel"},
    {2, {300, 130}, 1, {130}, "bias, 130 columns (3 blocks), parallel"},
    {4, {4, 4, 48, 48}, 2, {48, 48}, "[T, T] over [N, H, T, T]"},
    {3, {6, 8, 20}, 3, {1, 8, 20}, "[1, T, D] over [N, T, D]"},
    {1, {20}, 3, {3, 4, 20}, "a broadcast, b full"},
    {3, {6, 1, 20}, 3, {6, 8, 20}, "middle axis: general path"},
    {2, {40, 20}, 2, {40, 1}, "column [N, 1]: general path"},
    {2, {40, 20}, 0, {0}, "scalar: general path"},
    {2, {64, 8}, 1, {8}, "bias of 8 columns: general path"},
};
#define N_BCASES (int)(sizeof bcases / sizeof *bcases)

static void fill_pos(dgm_tensor *t, uint32_t seed, float lo, float hi)
{
    float *p = dgm_tensor_f32(t);
    for (int64_t i = 0; i < dgm_tensor_numel(t); i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = lo + (hi - lo) * (float)(seed >> 8) / (float)(1u << 24);
    }
}

/* The leaf's var as the op's operand, per mode. */
static dgm_var *operand(dgm_graph *g, dgm_var *leaf, int mode)
{
    if (mode == IN_NEG)
        return dgm_neg(g, leaf);
    if (mode == IN_TRANS && dgm_value(leaf)->ndim >= 2) {
        int nd = dgm_value(leaf)->ndim;
        return dgm_transpose(
            g, dgm_contiguous(g, dgm_transpose(g, leaf, nd - 2, nd - 1)),
            nd - 2, nd - 1);
    }
    return leaf;
}

typedef struct bout {
    dgm_tensor *y, *ga[2], *gb[2]; /* gradients after one, two passes */
} bout;

static dgm_tensor *copy_of(const dgm_tensor *t)
{
    if (!t)
        return NULL;
    dgm_tensor *c = dgm_tensor_new(DGM_F32, t->ndim, t->shape);
    ck_assert_int_eq(dgm_tensor_copy(c, t), 0);
    return c;
}

/* y = a (kind) b, loss = sum(y * w), backward twice. */
static void bin_run(const bcase *c, int kind, int mode, bool general,
                    int threads, bout *o)
{
    dgm_set_threads(threads);
    if (general)
        setenv("DGM_BINARY_GENERAL", "1", 1);
    dgm_tensor *ta = dgm_tensor_new(DGM_F32, c->nda, c->sa);
    dgm_tensor *tb = dgm_tensor_new(DGM_F32, c->ndb, c->sb);
    fill_pos(ta, 11, -1.0f, 1.0f);
    fill_pos(tb, 12, 0.5f, 1.5f); /* away from 0 for div */
    dgm_graph *g = dgm_graph_new();
    dgm_var *A = dgm_leaf(g, ta, true), *B = dgm_leaf(g, tb, true);
    dgm_var *a = operand(g, A, mode);
    dgm_var *b = mode == IN_SAME ? a : operand(g, B, mode);
    dgm_var *y = bin(g, kind, a, b);
    ck_assert_msg(y != NULL, "%s", dgm_last_error());
    const dgm_tensor *yt = dgm_value(y);
    dgm_tensor *w = dgm_tensor_new(DGM_F32, yt->ndim, yt->shape);
    fill_pos(w, 13, 0.5f, 1.5f);
    dgm_var *loss = dgm_sum_all(g, dgm_mul(g, y, dgm_input(g, w)));
    ck_assert_int_eq(dgm_backward(g, loss), 0);
    o->y = copy_of(yt);
    o->ga[0] = copy_of(dgm_grad(A));
    o->gb[0] = mode == IN_SAME ? NULL : copy_of(dgm_grad(B));
    ck_assert_int_eq(dgm_backward(g, loss), 0);
    o->ga[1] = copy_of(dgm_grad(A));
    o->gb[1] = mode == IN_SAME ? NULL : copy_of(dgm_grad(B));
    unsetenv("DGM_BINARY_GENERAL");
    dgm_graph_free(g);
    dgm_tensor_free(ta);
    dgm_tensor_free(tb);
    dgm_tensor_free(w);
}

static void bout_free(bout *o)
{
    dgm_tensor_free(o->y);
    for (int i = 0; i < 2; i++) {
        dgm_tensor_free(o->ga[i]);
        dgm_tensor_free(o->gb[i]);
    }
}

/* Every element of a and b the same bits (NaN never expected). */
static void same_bits(const dgm_tensor *a, const dgm_tensor *b,
                      const char *what, const char *ctx)
{
    ck_assert_msg((a == NULL) == (b == NULL), "%s %s: one missing", ctx, what);
    if (!a)
        return;
    ck_assert_int_eq(dgm_tensor_numel(a), dgm_tensor_numel(b));
    ck_assert_msg(memcmp(a->data, b->data, dgm_tensor_nbytes(a)) == 0,
                  "%s: %s differs", ctx, what);
}

static void same_out(const bout *x, const bout *y, const char *ctx)
{
    same_bits(x->y, y->y, "y", ctx);
    same_bits(x->ga[0], y->ga[0], "da (one pass)", ctx);
    same_bits(x->gb[0], y->gb[0], "db (one pass)", ctx);
    same_bits(x->ga[1], y->ga[1], "da (two passes)", ctx);
    same_bits(x->gb[1], y->gb[1], "db (two passes)", ctx);
}

/* Loop over cases x input modes, each with the four kinds: the fast path (2
 * threads and 1) against the general path, to the bit; a second pass adds
 * exactly the first pass's gradient again (leaves accumulate). */
START_TEST(binary_fast_equals_general)
{
    const bcase *c = &bcases[_i / N_IN];
    const int mode = _i % N_IN;
    if (mode == IN_SAME &&
        (c->nda != c->ndb || memcmp(c->sa, c->sb, sizeof c->sa) != 0))
        return;
    for (int kind = 0; kind < 4; kind++) {
        char ctx[160];
        snprintf(ctx, sizeof ctx, "%s, kind %d, mode %d", c->what, kind, mode);
        bout fast2, fast1, gen;
        /* thread counts on the modes that reach the fast path's two
         * store/add flavours; one run is enough for the rest */
        const bool both = mode == IN_LEAF || mode == IN_NEG;
        bin_run(c, kind, mode, false, 2, &fast2);
        if (both)
            bin_run(c, kind, mode, false, 1, &fast1);
        bin_run(c, kind, mode, true, 1, &gen);
        same_out(&fast2, &gen, ctx);
        if (both)
            same_out(&fast1, &gen, ctx);
        /* two passes: the leaf's gradient doubled (to rounding: a broadcast
         * operand's second pass adds its rows one by one onto the first's) */
        const dgm_tensor *g1 = fast2.ga[0], *g2 = fast2.ga[1];
        for (int64_t i = 0; i < dgm_tensor_numel(g1); i++) {
            const float v1 = dgm_tensor_f32(g1)[i], v2 = dgm_tensor_f32(g2)[i];
            ck_assert_msg(fabsf(v2 - 2.0f * v1) <= 1e-5f * fabsf(v2),
                          "%s: da[%lld] after two passes %g, after one %g", ctx,
                          (long long)i, (double)v2, (double)v1);
        }
        bout_free(&fast2);
        if (both)
            bout_free(&fast1);
        bout_free(&gen);
    }
}
END_TEST

/* An add's input that nothing else reads takes dy's storage (no copy);
 * one read twice, or by another op too, gets its own buffer. */
START_TEST(add_gradient_aliases_dy)
{
    const int64_t sh[2] = {40, 20};
    dgm_tensor *ta = dgm_tensor_new(DGM_F32, 2, sh);
    dgm_tensor *w = dgm_tensor_new(DGM_F32, 2, sh);
    fill_pos(ta, 31, -1.0f, 1.0f);
    fill_pos(w, 32, 0.5f, 1.5f);
    dgm_graph *g = dgm_graph_new();
    dgm_var *A = dgm_leaf(g, ta, true);
    dgm_var *a = dgm_neg(g, A), *b = dgm_neg(g, A), *c = dgm_neg(g, A);
    dgm_var *y = dgm_add(g, a, b);
    dgm_var *z = dgm_add(g, dgm_mul(g, y, dgm_input(g, w)), c);
    dgm_var *u = dgm_add(g, z, c); /* c read twice */
    ck_assert_int_eq(dgm_backward(g, dgm_sum_all(g, u)), 0);
    ck_assert_ptr_eq(dgm_grad(a)->data, dgm_grad(y)->data);
    ck_assert_ptr_ne(dgm_grad(b)->data, dgm_grad(y)->data);
    ck_assert_ptr_ne(dgm_grad(c)->data, dgm_grad(u)->data);
    ck_assert_ptr_ne(dgm_grad(c)->data, dgm_grad(z)->data);
    for (int64_t i = 0; i < 40 * 20; i++) {
        const float wi = dgm_tensor_f32(w)[i];
        ck_assert_float_eq(dgm_tensor_f32(dgm_grad(a))[i], wi);
        ck_assert_float_eq(dgm_tensor_f32(dgm_grad(b))[i], wi);
        ck_assert_float_eq(dgm_tensor_f32(dgm_grad(c))[i], 2.0f);
        ck_assert_float_eq_tol(dgm_tensor_f32(dgm_grad(A))[i],
                               -(wi + wi + 2.0f), 1e-5f);
    }
    dgm_graph_free(g);
    dgm_tensor_free(ta);
    dgm_tensor_free(w);
}
END_TEST

typedef struct bctx {
    int kind, mode;
} bctx;

static dgm_var *bin_build(dgm_graph *g, dgm_var **in, void *ctx)
{
    const bctx *c = ctx;
    return bin(g, c->kind, operand(g, in[0], c->mode),
               operand(g, in[1], c->mode));
}

/* Finite differences on small shapes that hit (the first four) and miss
 * (the last two) the fast path. */
static const bcase gcases[] = {
    {3, {3, 5, 7}, 3, {3, 5, 7}, "same shape, odd"},
    {1, {1}, 1, {1}, "one element"},
    {3, {3, 2, 16}, 3, {1, 2, 16}, "[1, T, D] over [N, T, D]"},
    {1, {16}, 3, {2, 2, 16}, "a broadcast, b full"},
    {3, {3, 1, 16}, 3, {3, 2, 16}, "middle axis: general path"},
    {2, {4, 16}, 2, {4, 1}, "column [N, 1]: general path"},
};

START_TEST(binary_fast_gradcheck)
{
    const bcase *c = &gcases[_i / 8];
    bctx x = {.kind = _i / 2 % 4, .mode = _i % 2 ? IN_NEG : IN_LEAF};
    dgm_tensor *in[2] = {dgm_tensor_new(DGM_F32, c->nda, c->sa),
                         dgm_tensor_new(DGM_F32, c->ndb, c->sb)};
    fill_pos(in[0], 21, -1.0f, 1.0f);
    fill_pos(in[1], 22, 0.5f, 1.5f);
    gc_result r = gc_gradcheck(bin_build, &x, 2, in, NULL, DGM_BACKEND_DNNL,
                               1e-3, 1e-2, 1e-3);
    ck_assert_msg(r.ok, "%s, kind %d: %s", c->what, x.kind, gc_describe(&r));
    dgm_tensor_free(in[0]);
    dgm_tensor_free(in[1]);
}
END_TEST

/* ---- layer norm -------------------------------------------------------- */

static const int64_t ln_shapes[][3] = {
    {2, 2048, 128}, /* the transformer's, parallel */
    {3, 5, 7},      /* odd, one block */
    {2, 1, 1},      /* one element */
    {2, 130, 17},   /* three blocks, the last partial */
};

typedef struct lnout {
    dgm_tensor *y, *dx[2], *dg[2], *db[2];
} lnout;

/* y = layer_norm(neg(X) or X, gamma, beta); loss = sum(y * w); backward
 * twice; gradients after each pass. */
static void ln_run(const int64_t *sh, bool op_input, int threads, lnout *o,
                   dgm_tensor **w_out)
{
    dgm_set_threads(threads);
    const int nd = (int)sh[0];
    const int64_t d = sh[nd];
    dgm_tensor *tx = dgm_tensor_new(DGM_F32, nd, sh + 1);
    dgm_tensor *tg = dgm_tensor_new(DGM_F32, 1, &d);
    dgm_tensor *tb = dgm_tensor_new(DGM_F32, 1, &d);
    fill_pos(tx, 41, -2.0f, 3.0f);
    fill_pos(tg, 42, 0.5f, 1.5f);
    fill_pos(tb, 43, -0.5f, 0.5f);
    dgm_graph *g = dgm_graph_new();
    dgm_var *X = dgm_leaf(g, tx, true), *G = dgm_leaf(g, tg, true),
            *Bv = dgm_leaf(g, tb, true);
    dgm_var *y = dgm_layer_norm(g, op_input ? dgm_neg(g, X) : X, G, Bv, 1e-5f);
    ck_assert_msg(y != NULL, "%s", dgm_last_error());
    dgm_tensor *w = dgm_tensor_new(DGM_F32, nd, sh + 1);
    fill_pos(w, 44, 0.5f, 1.5f);
    dgm_var *loss = dgm_sum_all(g, dgm_mul(g, y, dgm_input(g, w)));
    for (int pass = 0; pass < 2; pass++) {
        ck_assert_int_eq(dgm_backward(g, loss), 0);
        o->dx[pass] = copy_of(dgm_grad(X));
        o->dg[pass] = copy_of(dgm_grad(G));
        o->db[pass] = copy_of(dgm_grad(Bv));
    }
    o->y = copy_of(dgm_value(y));
    dgm_graph_free(g);
    dgm_tensor_free(tg);
    dgm_tensor_free(tb);
    if (w_out) {
        *w_out = w;
        /* x and w stay for the reference: x in dx[1]'s place */
        dgm_tensor_free(o->dx[1]);
        o->dx[1] = tx;
    } else {
        dgm_tensor_free(w);
        dgm_tensor_free(tx);
    }
}

static void lnout_free(lnout *o)
{
    dgm_tensor_free(o->y);
    for (int i = 0; i < 2; i++) {
        dgm_tensor_free(o->dx[i]);
        dgm_tensor_free(o->dg[i]);
        dgm_tensor_free(o->db[i]);
    }
}

/* 1 and 2 threads to the bit; against a float64 plain-C reference
 * (the values the fill gives, gamma and beta refilled the same way); a
 * second pass adds the first's gradient again. */
START_TEST(layer_norm_threads_reference_two_passes)
{
    const int64_t *sh = ln_shapes[_i / 2];
    const bool op_input = _i % 2;
    const int nd = (int)sh[0];
    const int64_t d = sh[nd];
    lnout o1, o2, o3;
    ln_run(sh, op_input, 1, &o1, NULL);
    ln_run(sh, op_input, 2, &o2, NULL);
    same_bits(o1.y, o2.y, "y", "layer_norm 1 vs 2 threads");
    for (int p = 0; p < 2; p++) {
        same_bits(o1.dx[p], o2.dx[p], "dx", "layer_norm 1 vs 2 threads");
        same_bits(o1.dg[p], o2.dg[p], "dgamma", "layer_norm 1 vs 2 threads");
        same_bits(o1.db[p], o2.db[p], "dbeta", "layer_norm 1 vs 2 threads");
    }
    /* float64 reference of y, dx, dgamma, dbeta */
    dgm_tensor *w;
    ln_run(sh, op_input, 2, &o3, &w);
    const dgm_tensor *tx = o3.dx[1];
    dgm_tensor *tg = dgm_tensor_new(DGM_F32, 1, &d);
    dgm_tensor *tb = dgm_tensor_new(DGM_F32, 1, &d);
    fill_pos(tg, 42, 0.5f, 1.5f);
    fill_pos(tb, 43, -0.5f, 0.5f);
    const float *x = tx->data, *gm = tg->data, *bt = tb->data, *wp = w->data;
    const double sgn = op_input ? -1.0 : 1.0;
    double *dgr = calloc((size_t)d, sizeof(double)),
           *dbr = calloc((size_t)d, sizeof(double));
    double *xh = malloc((size_t)d * sizeof(double));
    const int64_t nr = dgm_tensor_numel(tx) / d;
    for (int64_t i = 0; i < nr; i++) {
        double m = 0.0, v = 0.0;
        for (int64_t k = 0; k < d; k++)
            m += sgn * x[i * d + k];
        m /= d;
        for (int64_t k = 0; k < d; k++)
            v += (sgn * x[i * d + k] - m) * (sgn * x[i * d + k] - m);
        const double is = 1.0 / sqrt(v / d + 1e-5);
        double s1 = 0.0, s2 = 0.0;
        for (int64_t k = 0; k < d; k++) {
            xh[k] = (sgn * x[i * d + k] - m) * is;
            const double want = xh[k] * gm[k] + bt[k];
            const double got = dgm_tensor_f32(o3.y)[i * d + k];
            ck_assert_msg(fabs(got - want) <= 1e-5 * (1 + fabs(want)),
                          "y[%lld] %g, want %g", (long long)(i * d + k), got,
                          want);
            const double gy = wp[i * d + k];
            dgr[k] += gy * xh[k];
            dbr[k] += gy;
            s1 += gy * gm[k];
            s2 += gy * gm[k] * xh[k];
        }
        for (int64_t k = 0; k < d; k++) {
            const double want =
                sgn * is * (wp[i * d + k] * gm[k] - s1 / d - xh[k] * s2 / d);
            const double got = dgm_tensor_f32(o3.dx[0])[i * d + k];
            ck_assert_msg(fabs(got - want) <= 1e-4 * (1 + fabs(want)),
                          "dx[%lld] %g, want %g", (long long)(i * d + k), got,
                          want);
        }
    }
    for (int64_t k = 0; k < d; k++) {
        const double g1 = dgm_tensor_f32(o3.dg[0])[k],
                     b1 = dgm_tensor_f32(o3.db[0])[k];
        ck_assert_msg(fabs(g1 - dgr[k]) <= 1e-5 * (1 + fabs(dgr[k])),
                      "dgamma[%lld] %g, want %g", (long long)k, g1, dgr[k]);
        ck_assert_msg(fabs(b1 - dbr[k]) <= 1e-5 * (1 + fabs(dbr[k])),
                      "dbeta[%lld] %g, want %g", (long long)k, b1, dbr[k]);
        /* the second pass added the same again */
        const double g2 = dgm_tensor_f32(o3.dg[1])[k],
                     b2 = dgm_tensor_f32(o3.db[1])[k];
        ck_assert_msg(fabs(g2 - 2 * g1) <= 1e-6 * fabs(g2) + 1e-30 &&
                          fabs(b2 - 2 * b1) <= 1e-6 * fabs(b2) + 1e-30,
                      "two passes: dgamma[%lld] %g (one %g), dbeta %g (one %g)",
                      (long long)k, g2, g1, b2, b1);
    }
    for (int64_t i = 0; i < dgm_tensor_numel(o1.dx[0]); i++)
        ck_assert_msg(dgm_tensor_f32(o1.dx[1])[i] ==
                          2.0f * dgm_tensor_f32(o1.dx[0])[i],
                      "two passes: dx[%lld]", (long long)i);
    free(dgr);
    free(dbr);
    free(xh);
    dgm_tensor_free(tg);
    dgm_tensor_free(tb);
    dgm_tensor_free(w);
    lnout_free(&o1);
    lnout_free(&o2);
    lnout_free(&o3);
}
END_TEST

static dgm_var *ln_build(dgm_graph *g, dgm_var **in, void *ctx)
{
    (void)ctx;
    return dgm_layer_norm(g, dgm_neg(g, in[0]), in[1], in[2], 1e-5f);
}

START_TEST(layer_norm_gradcheck)
{
    const int64_t *sh = ln_shapes[1 + _i];
    const int64_t d = sh[sh[0]];
    dgm_tensor *in[3] = {dgm_tensor_new(DGM_F32, (int)sh[0], sh + 1),
                         dgm_tensor_new(DGM_F32, 1, &d),
                         dgm_tensor_new(DGM_F32, 1, &d)};
    fill_pos(in[0], 51, -2.0f, 3.0f);
    fill_pos(in[1], 52, 0.5f, 1.5f);
    fill_pos(in[2], 53, -0.5f, 0.5f);
    gc_result r = gc_gradcheck(ln_build, NULL, 3, in, NULL, DGM_BACKEND_DNNL,
                               1e-3, 2e-2, 2e-3);
    ck_assert_msg(r.ok, "layer_norm %lld x %lld: %s", (long long)sh[1],
                  (long long)d, gc_describe(&r));
    for (int i = 0; i < 3; i++)
        dgm_tensor_free(in[i]);
}
END_TEST

/* Tight float64 references: the layer norm's statistics in one shifted
 * pass and its sums in fixed lanes (op_norm.c) against a plain two-pass
 * float64 rebuild, at d 128, 37 and 1 and rows 1 to 300, each element
 * within a few float roundings of the scale of its own terms (the bound
 * of float arithmetic on those terms). Data: uniform rows, and rows of
 * mean 8192 and spread about 0.03 built symmetric about it (their mean is
 * a float exactly, so y shows the variance's accuracy alone: a one-pass
 * form without the shift loses 1e-5 of it there). With and without gamma
 * and beta; 1 and 2 threads give the same bits. */
static const int64_t lnt_d[] = {128, 37, 1};
static const int64_t lnt_rows[] = {1, 5, 64, 65, 300};
enum { LNT_CASES = 3 * 5 * 2 };

typedef struct lntout {
    dgm_tensor *y, *dx, *dg, *db;
} lntout;

static void lnt_fill(dgm_tensor *x, bool hard)
{
    const int64_t d = x->shape[1], r = x->shape[0];
    float *p = x->data;
    if (!hard) {
        fill_pos(x, 61, -2.0f, 3.0f);
        return;
    }
    uint32_t seed = 62;
    for (int64_t i = 0; i < r; i++) {
        float *row = p + i * d;
        if (d % 2)
            row[d - 1] = 8192.0f;
        for (int64_t k = 0; k + 1 < d; k += 2) {
            seed = seed * 1664525u + 1013904223u;
            const float o = (float)(1 + (seed >> 28)) / 256.0f; /* exact */
            row[k] = 8192.0f + o;
            row[k + 1] = 8192.0f - o;
        }
    }
}

static void lnt_run(int64_t r, int64_t d, bool hard, bool affine, int threads,
                    lntout *o, dgm_tensor **x_out, dgm_tensor **w_out)
{
    dgm_set_threads(threads);
    int64_t sh[2] = {r, d};
    dgm_tensor *tx = dgm_tensor_new(DGM_F32, 2, sh);
    dgm_tensor *tw = dgm_tensor_new(DGM_F32, 2, sh);
    dgm_tensor *tg = dgm_tensor_new(DGM_F32, 1, &d);
    dgm_tensor *tb = dgm_tensor_new(DGM_F32, 1, &d);
    lnt_fill(tx, hard);
    fill_pos(tw, 63, -1.0f, 1.0f);
    fill_pos(tg, 64, 0.5f, 1.5f);
    fill_pos(tb, 65, -0.5f, 0.5f);
    dgm_graph *g = dgm_graph_new();
    dgm_var *X = dgm_leaf(g, tx, true), *G = dgm_leaf(g, tg, true),
            *B = dgm_leaf(g, tb, true);
    dgm_var *y =
        dgm_layer_norm(g, X, affine ? G : NULL, affine ? B : NULL, 1e-5f);
    ck_assert_msg(y != NULL, "%s", dgm_last_error());
    dgm_var *loss = dgm_sum_all(g, dgm_mul(g, y, dgm_input(g, tw)));
    ck_assert_int_eq(dgm_backward(g, loss), 0);
    o->y = copy_of(dgm_value(y));
    o->dx = copy_of(dgm_grad(X));
    o->dg = affine ? copy_of(dgm_grad(G)) : NULL;
    o->db = affine ? copy_of(dgm_grad(B)) : NULL;
    dgm_graph_free(g);
    *x_out = tx;
    *w_out = tw;
    dgm_tensor_free(tg);
    dgm_tensor_free(tb);
}

static void lntout_free(lntout *o)
{
    dgm_tensor_free(o->y);
    dgm_tensor_free(o->dx);
    dgm_tensor_free(o->dg);
    dgm_tensor_free(o->db);
}

/* |got - want| within `ulps` float roundings of scale */
static void lnt_close(double got, double want, double scale, double ulps,
                      const char *what, int64_t i, const char *ctx)
{
    const double tol = ulps * 0x1p-24 * scale + 1e-30;
    ck_assert_msg(fabs(got - want) <= tol,
                  "%s: %s[%lld] %.9g, want %.9g (off by %.3g of the bound)",
                  ctx, what, (long long)i, got, want, fabs(got - want) / tol);
}

START_TEST(layer_norm_tight_float64_reference)
{
    const int64_t d = lnt_d[_i / 10], r = lnt_rows[_i / 2 % 5];
    const bool hard = _i % 2;
    char ctx[96];
    for (int affine = 0; affine < 2; affine++) {
        snprintf(ctx, sizeof ctx, "layer_norm [%lld, %lld]%s%s", (long long)r,
                 (long long)d, hard ? " mean 8192" : "",
                 affine ? "" : " no gamma/beta");
        lntout o1, o2;
        dgm_tensor *tx, *tw, *tx2, *tw2;
        lnt_run(r, d, hard, affine, 1, &o1, &tx, &tw);
        lnt_run(r, d, hard, affine, 2, &o2, &tx2, &tw2);
        same_bits(o1.y, o2.y, "y", ctx);
        same_bits(o1.dx, o2.dx, "dx", ctx);
        same_bits(o1.dg, o2.dg, "dgamma", ctx);
        same_bits(o1.db, o2.db, "dbeta", ctx);
        dgm_tensor *tg = dgm_tensor_new(DGM_F32, 1, &d);
        dgm_tensor *tb = dgm_tensor_new(DGM_F32, 1, &d);
        fill_pos(tg, 64, 0.5f, 1.5f);
        fill_pos(tb, 65, -0.5f, 0.5f);
        const float *x = tx->data, *w = tw->data;
        const float *gm = tg->data, *bt = tb->data;
        double *dgr = calloc((size_t)d, sizeof(double));
        double *dbr = calloc((size_t)d, sizeof(double));
        double *dgs = calloc((size_t)d, sizeof(double));
        double *xh = malloc((size_t)d * sizeof(double));
        for (int64_t i = 0; i < r; i++) {
            const float *xr = x + i * d, *wr = w + i * d;
            double m = 0.0, v = 0.0;
            for (int64_t k = 0; k < d; k++)
                m += xr[k];
            m /= d;
            for (int64_t k = 0; k < d; k++)
                v += (xr[k] - m) * (xr[k] - m);
            const double is = 1.0 / sqrt(v / d + 1e-5);
            /* the float mean's rounding moves every xhat by em: in units of
             * the float rounding, a term of the bounds below */
            const double em = fabs((double)(float)m - m) * is / 0x1p-24;
            double s1 = 0.0, s2 = 0.0, a1 = 0.0, a2 = 0.0;
            for (int64_t k = 0; k < d; k++) {
                const double gk = affine ? gm[k] : 1.0, bk = affine ? bt[k] : 0;
                xh[k] = (xr[k] - m) * is;
                const double want = xh[k] * gk + bk;
                /* one rounding each: mu, is, x - mu, * is, * gamma + beta */
                const double scale =
                    fabs(xh[k] * gk) + fabs(bk) + em * fabs(gk);
                lnt_close(dgm_tensor_f32(o1.y)[i * d + k], want, scale, 4.0,
                          "y", i * d + k, ctx);
                dgr[k] += wr[k] * xh[k];
                dbr[k] += wr[k];
                dgs[k] += fabs(wr[k]) * (fabs(xh[k]) + em);
                s1 += wr[k] * gk;
                s2 += wr[k] * gk * xh[k];
                a1 += fabs(wr[k] * gk);
                a2 += fabs(wr[k] * gk * xh[k]);
            }
            for (int64_t k = 0; k < d; k++) {
                const double gk = affine ? gm[k] : 1.0;
                const double want = is * (wr[k] * gk - s1 / d - xh[k] * s2 / d);
                const double scale = is * (fabs(wr[k] * gk) + a1 / d +
                                           (fabs(xh[k]) + em) * a2 / d);
                lnt_close(dgm_tensor_f32(o1.dx)[i * d + k], want, scale, 4.0,
                          "dx", i * d + k, ctx);
            }
        }
        for (int64_t k = 0; affine && k < d; k++) {
            lnt_close(dgm_tensor_f32(o1.dg)[k], dgr[k], dgs[k] + fabs(dgr[k]),
                      3.0, "dgamma", k, ctx);
            lnt_close(dgm_tensor_f32(o1.db)[k], dbr[k], fabs(dbr[k]), 1.0,
                      "dbeta", k, ctx);
        }
        free(dgr);
        free(dbr);
        free(dgs);
        free(xh);
        dgm_tensor_free(tg);
        dgm_tensor_free(tb);
        dgm_tensor_free(tx);
        dgm_tensor_free(tw);
        dgm_tensor_free(tx2);
        dgm_tensor_free(tw2);
        lntout_free(&o1);
        lntout_free(&o2);
    }
}
END_TEST

/* ---- cross entropy ----------------------------------------------------- */

/* rows x C: the transformer's head (parallel, 16-lane sums), a remainder
 * after one group of 16, fewer than 16 classes, one class. */
static const int64_t ce_shapes[][2] = {{2048, 96}, {33, 17}, {7, 5}, {3, 1}};

typedef struct ceout {
    dgm_tensor *y, *dl[2];
} ceout;

/* y = cross_entropy(neg(L) or L, target); loss = sum(y * w) via mean-free
 * weights; backward twice. */
static void ce_run(const int64_t *sh, bool op_input, int threads, ceout *o)
{
    dgm_set_threads(threads);
    dgm_tensor *tl = dgm_tensor_new(DGM_F32, 2, sh);
    fill_pos(tl, 61, -4.0f, 4.0f);
    dgm_tensor *tt = dgm_tensor_new(DGM_I64, 1, sh);
    dgm_tensor *w = dgm_tensor_new(DGM_F32, 1, sh);
    fill_pos(w, 62, 0.5f, 1.5f);
    for (int64_t r = 0; r < sh[0]; r++)
        ((int64_t *)tt->data)[r] = (r * 7 + 3) % sh[1];
    dgm_graph *g = dgm_graph_new();
    dgm_var *L = dgm_leaf(g, tl, true);
    dgm_var *y =
        dgm_cross_entropy(g, op_input ? dgm_neg(g, L) : L, dgm_input(g, tt));
    ck_assert_msg(y != NULL, "%s", dgm_last_error());
    dgm_var *loss = dgm_sum_all(g, dgm_mul(g, y, dgm_input(g, w)));
    for (int pass = 0; pass < 2; pass++) {
        ck_assert_int_eq(dgm_backward(g, loss), 0);
        o->dl[pass] = copy_of(dgm_grad(L));
    }
    o->y = copy_of(dgm_value(y));
    /* float64 reference of y and dL (one pass) */
    const float *l = tl->data, *wp = w->data;
    const double sgn = op_input ? -1.0 : 1.0;
    for (int64_t r = 0; r < sh[0]; r++) {
        double m = -INFINITY, s = 0.0;
        for (int64_t j = 0; j < sh[1]; j++)
            m = fmax(m, sgn * l[r * sh[1] + j]);
        for (int64_t j = 0; j < sh[1]; j++)
            s += exp(sgn * l[r * sh[1] + j] - m);
        const double lse = m + log(s);
        const int64_t t = ((int64_t *)tt->data)[r];
        const double want = lse - sgn * l[r * sh[1] + t];
        const double got = dgm_tensor_f32(o->y)[r];
        ck_assert_msg(fabs(got - want) <= 1e-5 * (1 + fabs(want)),
                      "ce y[%lld] %g, want %g", (long long)r, got, want);
        for (int64_t j = 0; j < sh[1]; j++) {
            const double p = exp(sgn * l[r * sh[1] + j] - lse);
            const double wd = sgn * wp[r] * (p - (j == t));
            const double gd = dgm_tensor_f32(o->dl[0])[r * sh[1] + j];
            ck_assert_msg(fabs(gd - wd) <= 1e-6 + 1e-5 * fabs(wd),
                          "ce dl[%lld, %lld] %g, want %g", (long long)r,
                          (long long)j, gd, wd);
        }
    }
    dgm_graph_free(g);
    dgm_tensor_free(tl);
    dgm_tensor_free(tt);
    dgm_tensor_free(w);
}

START_TEST(cross_entropy_threads_reference_two_passes)
{
    const int64_t *sh = ce_shapes[_i / 2];
    ceout o1, o2;
    ce_run(sh, _i % 2, 1, &o1);
    ce_run(sh, _i % 2, 2, &o2);
    same_bits(o1.y, o2.y, "y", "cross_entropy 1 vs 2 threads");
    for (int p = 0; p < 2; p++)
        same_bits(o1.dl[p], o2.dl[p], "dl", "cross_entropy 1 vs 2 threads");
    /* a second pass adds the first's gradient again (a leaf's target
     * entry gets its -dy after the row's add, so to rounding) */
    for (int64_t i = 0; i < dgm_tensor_numel(o1.dl[0]); i++) {
        const float v1 = dgm_tensor_f32(o1.dl[0])[i],
                    v2 = dgm_tensor_f32(o1.dl[1])[i];
        ck_assert_msg(fabsf(v2 - 2.0f * v1) <= 1e-6f * fabsf(v2) + 1e-7f,
                      "two passes: dl[%lld] %g, one %g", (long long)i,
                      (double)v2, (double)v1);
    }
    for (int k = 0; k < 2; k++) {
        ceout *o = k ? &o2 : &o1;
        dgm_tensor_free(o->y);
        dgm_tensor_free(o->dl[0]);
        dgm_tensor_free(o->dl[1]);
    }
}
END_TEST

static dgm_var *ce_build(dgm_graph *g, dgm_var **in, void *ctx)
{
    (void)ctx;
    return dgm_cross_entropy(g, dgm_neg(g, in[0]), in[1]);
}

START_TEST(cross_entropy_gradcheck)
{
    const int64_t *sh = ce_shapes[1 + _i];
    dgm_tensor *in[2] = {dgm_tensor_new(DGM_F32, 2, sh),
                         dgm_tensor_new(DGM_I64, 1, sh)};
    fill_pos(in[0], 71, -3.0f, 3.0f);
    for (int64_t r = 0; r < sh[0]; r++)
        ((int64_t *)in[1]->data)[r] = (r * 5 + 1) % sh[1];
    gc_result r = gc_gradcheck(ce_build, NULL, 2, in, NULL, DGM_BACKEND_DNNL,
                               1e-3, 1e-2, 1e-3);
    ck_assert_msg(r.ok, "cross_entropy %lld x %lld: %s", (long long)sh[0],
                  (long long)sh[1], gc_describe(&r));
    dgm_tensor_free(in[0]);
    dgm_tensor_free(in[1]);
}
END_TEST

static Suite *ops_fast_suite(void)
{
    Suite *s = suite_create("ops_fast");
    TCase *tc = tcase_create("binary");
    suite_add_tcase(s, tc);
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, binary_fast_equals_general, 0, N_BCASES * N_IN);
    tcase_add_test(tc, add_gradient_aliases_dy);
    tcase_add_loop_test(tc, binary_fast_gradcheck, 0, 6 * 8);
    TCase *ln = tcase_create("layer_norm");
    suite_add_tcase(s, ln);
    tcase_set_timeout(ln, 120);
    tcase_add_loop_test(ln, layer_norm_threads_reference_two_passes, 0, 8);
    tcase_add_loop_test(ln, layer_norm_gradcheck, 0, 3);
    tcase_add_loop_test(ln, layer_norm_tight_float64_reference, 0, LNT_CASES);
    TCase *ce = tcase_create("cross_entropy");
    suite_add_tcase(s, ce);
    tcase_set_timeout(ce, 120);
    tcase_add_loop_test(ce, cross_entropy_threads_reference_two_passes, 0, 8);
    tcase_add_loop_test(ce, cross_entropy_gradcheck, 0, 3);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(ops_fast_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
