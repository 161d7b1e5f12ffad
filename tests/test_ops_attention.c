/* test_ops_attention.c - the fused attention ops: dgm_attention's
 * gradient against finite differences, causal and not; its values and
 * gradients against the unfused composition (matmul, mask, softmax,
 * matmul) at a transformer-like shape; and its refusals. The same for
 * dgm_attention_packed, against the composition the transformer block
 * builds from its packed projection (reshape, permute, slices, scale,
 * matmul, mask, softmax, matmul, heads merged). */
#include <check.h>
#include <math.h>
#include <string.h>

#include "ck_run.h"
#include "dgm/dgm.h"
#include "gradcheck.h"
#include "oplog.h"

typedef struct att_case {
    float scale;
    bool causal;
} att_case;

static dgm_var *build_fused(dgm_graph *g, dgm_var **in, void *ctx)
{
    const att_case *c = ctx;
    return dgm_attention(g, in[0], in[1], in[2], c->scale, c->causal);
}

/* The composition the transformer block used before the fused op. */
static dgm_var *build_unfused(dgm_graph *g, dgm_var **in, void *ctx)
{
    const att_case *c = ctx;
    const dgm_tensor *q = dgm_value(in[0]);
    int nd = q->ndim;
    int64_t T = q->shape[nd - 2];
    dgm_var *s =
        dgm_matmul(g, dgm_affine(g, in[0], c->scale, 0.0f), in[1], false, true);
    if (c->causal) {
        dgm_var *m = dgm_constant(g, 2, (int64_t[]){T, T}, 0.0f);
        float *p = dgm_value(m)->data;
        for (int64_t i = 0; i < T; i++)
            for (int64_t j = i + 1; j < T; j++)
                p[i * T + j] = -1e30f;
        s = dgm_add(g, s, m);
    }
    return dgm_matmul(g, dgm_softmax(g, s, nd - 1), in[2], false, false);
}

START_TEST(gradient_matches_finite_differences)
{
    const int64_t shape[4] = {2, 2, 5, 4};
    dgm_tensor *leaves[3];
    for (int i = 0; i < 3; i++)
        leaves[i] = gc_rand(4, shape, 11 + (uint64_t)i, -1.0f, 1.0f);
    for (int causal = 0; causal < 2; causal++) {
        att_case c = {0.7f, causal != 0};
        gc_result r = gc_gradcheck(build_fused, &c, 3, leaves, NULL,
                                   DGM_BACKEND_REF, 1e-3, 1e-2, 1e-3);
        ck_assert_msg(r.ok, "causal %d: %s", causal, gc_describe(&r));
        r = gc_gradcheck(build_fused, &c, 3, leaves, NULL, DGM_BACKEND_DNNL,
                         1e-3, 1e-2, 1e-3);
        ck_assert_msg(r.ok, "causal %d (dnnl graph): %s", causal,
                      gc_describe(&r));
    }
    /* Only q needs a gradient: k and v get none, q's is unchanged. */
    att_case c = {0.5f, true};
    bool needs[3] = {true, false, false};
    gc_result r = gc_gradcheck(build_fused, &c, 3, leaves, needs,
                               DGM_BACKEND_REF, 1e-3, 1e-2, 1e-3);
    ck_assert_msg(r.ok, "q only: %s", gc_describe(&r));
    if (oplog_enabled()) {
        dgm_graph *g = dgm_graph_new();
        dgm_var *in[3];
        for (int i = 0; i < 3; i++)
            in[i] = dgm_leaf(g, leaves[i], true);
        oplog_checked(build_fused(g, in, &c), OPLOG_GRAD);
        dgm_graph_free(g);
    }
    for (int i = 0; i < 3; i++)
        dgm_tensor_free(leaves[i]);
}
END_TEST

/* Forward values and the three gradients of loss = sum(y * w), fused
 * against unfused, at [N 2, H 4, T 64, d 32] (threads split the batch). */
START_TEST(matches_the_unfused_composition)
{
    const int64_t shape[4] = {2, 4, 64, 32};
    dgm_tensor *leaves[3], *wt = gc_rand(4, shape, 99, 0.5f, 1.5f);
    for (int i = 0; i < 3; i++)
        leaves[i] = gc_randn(4, shape, 21 + (uint64_t)i);
    for (int causal = 0; causal < 2; causal++) {
        att_case c = {1.0f / sqrtf(32.0f), causal != 0};
        dgm_tensor *y[2], *gr[2][3];
        dgm_graph *gs[2];
        for (int f = 0; f < 2; f++) {
            dgm_graph *g = gs[f] = dgm_graph_new();
            dgm_var *in[3];
            for (int i = 0; i < 3; i++)
                in[i] = dgm_leaf(g, leaves[i], true);
            dgm_var *out = (f ? build_unfused : build_fused)(g, in, &c);
            dgm_var *loss = dgm_sum_all(g, dgm_mul(g, out, dgm_input(g, wt)));
            ck_assert_msg(loss != NULL, "%s", dgm_last_error());
            ck_assert_int_eq(dgm_backward(g, loss), 0);
            y[f] = dgm_value(out);
            for (int i = 0; i < 3; i++)
                gr[f][i] = dgm_grad(in[i]);
        }
        gc_result r = gc_compare_tensors(y[0], y[1], 1e-4, 1e-5);
        ck_assert_msg(r.ok, "causal %d, values: %s", causal, gc_describe(&r));
        for (int i = 0; i < 3; i++) {
            r = gc_compare_tensors(gr[0][i], gr[1][i], 1e-3, 1e-4);
            ck_assert_msg(r.ok, "causal %d, gradient of %c: %s", causal,
                          "qkv"[i], gc_describe(&r));
        }
        /* causal: the first query sees only the first value */
        if (causal)
            ck_assert_float_eq_tol(dgm_tensor_f32(y[0])[5],
                                   dgm_tensor_f32(leaves[2])[5], 1e-6);
        dgm_graph_free(gs[0]);
        dgm_graph_free(gs[1]);
    }
    for (int i = 0; i < 3; i++)
        dgm_tensor_free(leaves[i]);
    dgm_tensor_free(wt);
}
END_TEST

START_TEST(refuses_mismatched_inputs)
{
    dgm_graph *g = dgm_graph_new();
    dgm_var *q = dgm_constant(g, 3, (int64_t[]){2, 4, 8}, 1.0f);
    dgm_var *k = dgm_constant(g, 3, (int64_t[]){2, 5, 8}, 1.0f);
    ck_assert_ptr_null(dgm_attention(g, q, k, q, 1.0f, true));
    ck_assert_int_eq(dgm_last_code(), DGM_ESHAPE);
    ck_assert_msg(strstr(dgm_last_error(), "attention: q ") != NULL, "%s",
                  dgm_last_error());
    dgm_var *flat = dgm_constant(g, 1, (int64_t[]){8}, 1.0f);
    ck_assert_ptr_null(dgm_attention(g, flat, flat, flat, 1.0f, false));
    ck_assert_int_eq(dgm_last_code(), DGM_ESHAPE);
    ck_assert_ptr_null(dgm_attention(g, q, q, q, NAN, false));
    ck_assert_int_eq(dgm_last_code(), DGM_ESHAPE);
    ck_assert_ptr_null(dgm_attention(g, NULL, q, q, 1.0f, false));
    dgm_graph_free(g);
}
END_TEST

/* ---- dgm_attention_packed ------------------------------------------- */

typedef struct pk_case {
    int heads;
    float scale;
    bool causal;
} pk_case;

static dgm_var *build_packed(dgm_graph *g, dgm_var **in, void *ctx)
{
    const pk_case *c = ctx;
    return dgm_attention_packed(g, in[0], c->heads, c->scale, c->causal);
}

/* qkv [N, T, 3D] -> [N, T, D] as transformer_block composed it before the
 * packed op: heads split by a copy to [3, N, H, T, d], sliced, q scaled,
 * scores masked, softmax, value product, heads merged. */
static dgm_var *build_composed(dgm_graph *g, dgm_var **in, void *ctx)
{
    const pk_case *c = ctx;
    const dgm_tensor *x = dgm_value(in[0]);
    int64_t N = x->shape[0], T = x->shape[1], D = x->shape[2] / 3, H = c->heads,
            d = D / H;
    dgm_var *qkv = dgm_reshape(g, in[0], 5, (int64_t[]){N, T, 3, H, d});
    qkv = dgm_contiguous(g, dgm_permute(g, qkv, (const int[]){2, 0, 3, 1, 4}));
    dgm_var *q = dgm_affine(g, dgm_slice(g, qkv, 0, 0, 1, 1), c->scale, 0.0f);
    dgm_var *k = dgm_slice(g, qkv, 0, 1, 2, 1);
    dgm_var *v = dgm_slice(g, qkv, 0, 2, 3, 1);
    dgm_var *s = dgm_matmul(g, q, k, false, true);
    if (c->causal) {
        dgm_var *m = dgm_constant(g, 2, (int64_t[]){T, T}, 0.0f);
        float *p = dgm_value(m)->data;
        for (int64_t i = 0; i < T; i++)
            for (int64_t j = i + 1; j < T; j++)
                p[i * T + j] = -1e30f;
        s = dgm_add(g, s, m);
    }
    dgm_var *o = dgm_matmul(g, dgm_softmax(g, s, 4), v, false, false);
    o = dgm_permute(g, o, (const int[]){0, 1, 3, 2, 4});
    return dgm_reshape(g, o, 3, (int64_t[]){N, T, D});
}

START_TEST(packed_gradient_matches_finite_differences)
{
    /* [N 2, T 5, H 2, d 3] and [N 1, T 20, H 2, d 11] (two lane groups
     * of keys, the second partial) on both paths */
    const int64_t small[3] = {2, 5, 18}, big[3] = {1, 20, 66};
    dgm_tensor *xs = gc_rand(3, small, 5, -1.0f, 1.0f);
    dgm_tensor *xb = gc_rand(3, big, 6, -1.0f, 1.0f);
    for (int causal = 0; causal < 2; causal++) {
        pk_case c = {2, 0.6f, causal != 0};
        gc_result r = gc_gradcheck(build_packed, &c, 1, &xs, NULL,
                                   DGM_BACKEND_REF, 1e-3, 1e-2, 1e-3);
        ck_assert_msg(r.ok, "causal %d: %s", causal, gc_describe(&r));
        r = gc_gradcheck(build_packed, &c, 1, &xs, NULL, DGM_BACKEND_DNNL, 1e-3,
                         1e-2, 1e-3);
        ck_assert_msg(r.ok, "causal %d (dnnl, small): %s", causal,
                      gc_describe(&r));
        r = gc_gradcheck(build_packed, &c, 1, &xb, NULL, DGM_BACKEND_DNNL, 1e-3,
                         1e-2, 1e-3);
        ck_assert_msg(r.ok, "causal %d (dnnl): %s", causal, gc_describe(&r));
        r = gc_gradcheck(build_packed, &c, 1, &xb, NULL, DGM_BACKEND_REF, 1e-3,
                         1e-2, 1e-3);
        ck_assert_msg(r.ok, "causal %d (ref, big): %s", causal,
                      gc_describe(&r));
        r = gc_compare_backends(build_packed, &c, 1, &xb, NULL, 1e-5, 1e-6);
        ck_assert_msg(r.ok, "causal %d (ref vs dnnl): %s", causal,
                      gc_describe(&r));
    }
    dgm_tensor_free(xs);
    dgm_tensor_free(xb);
}
END_TEST

/* Values and the gradient of loss = sum(y * w) through a producer
 * (qkv = 1.5 x, so the packed op's gradient is added to a buffer it writes
 * first, as after the qkv linear), packed against composed, 1e-5
 * relative (gradients: plus 1e-5 absolute, for elements of size ~1e-2
 * that are differences of O(1) terms, where float rounding differs): causal and
 * not, 1 and 4 heads, T 1, 7, 40 and 64 (whole lane groups of 16 and
 * partial ones), d 12 (not a multiple of 16). */
START_TEST(packed_matches_the_composition)
{
    const int64_t Ts[4] = {1, 7, 40, 64}, d = 12;
    for (int causal = 0; causal < 2; causal++)
        for (int hi = 0; hi < 2; hi++)
            for (int ti = 0; ti < 4; ti++) {
                const int H = hi ? 4 : 1;
                const int64_t T = Ts[ti], D = H * d;
                const int64_t shape[3] = {3, T, 3 * D}, oshape[3] = {3, T, D};
                dgm_tensor *x = gc_randn(3, shape, 40 + (uint64_t)T);
                dgm_tensor *w = gc_rand(3, oshape, 41, 0.5f, 1.5f);
                pk_case c = {H, 1.0f / sqrtf((float)d), causal != 0};
                dgm_tensor *y[2], *gr[2];
                dgm_graph *gs[2];
                for (int f = 0; f < 2; f++) {
                    dgm_graph *g = gs[f] = dgm_graph_new();
                    dgm_var *in = dgm_leaf(g, x, true);
                    dgm_var *qkv = dgm_affine(g, in, 1.5f, 0.0f);
                    dgm_var *out =
                        (f ? build_composed : build_packed)(g, &qkv, &c);
                    dgm_var *loss =
                        dgm_sum_all(g, dgm_mul(g, out, dgm_input(g, w)));
                    ck_assert_msg(loss != NULL, "%s", dgm_last_error());
                    ck_assert_int_eq(dgm_backward(g, loss), 0);
                    y[f] = dgm_value(out);
                    gr[f] = dgm_grad(in);
                }
                gc_result r = gc_compare_tensors(y[0], y[1], 1e-5, 1e-6);
                ck_assert_msg(r.ok, "causal %d, H %d, T %lld, values: %s",
                              causal, H, (long long)T, gc_describe(&r));
                r = gc_compare_tensors(gr[0], gr[1], 1e-5, 1e-5);
                ck_assert_msg(r.ok, "causal %d, H %d, T %lld, gradient: %s",
                              causal, H, (long long)T, gc_describe(&r));
                /* T 1 or causal: the first token's output is its own v */
                if (causal || T == 1)
                    for (int64_t c2 = 0; c2 < D; c2++)
                        ck_assert_float_eq_tol(
                            dgm_tensor_f32(y[0])[c2],
                            1.5f * dgm_tensor_f32(x)[2 * D + c2], 1e-5);
                dgm_graph_free(gs[0]);
                dgm_graph_free(gs[1]);
                dgm_tensor_free(x);
                dgm_tensor_free(w);
            }
}
END_TEST

/* The softmax's row sums run in a fixed order: the values and the
 * gradient are the same bits on 1 and 2 threads (both backends), causal
 * and not, at T 40 (two lane groups of 16 and a partial one). */
START_TEST(packed_threads_give_the_same_bits)
{
    const int64_t N = 3, T = 40, H = 4, d = 12, D = H * d;
    const int threads = dgm_threads();
    dgm_tensor *x = gc_randn(3, (int64_t[]){N, T, 3 * D}, 77);
    dgm_tensor *w = gc_rand(3, (int64_t[]){N, T, D}, 78, 0.5f, 1.5f);
    for (int be = 0; be < 2; be++)
        for (int causal = 0; causal < 2; causal++) {
            pk_case c = {(int)H, 1.0f / sqrtf((float)d), causal != 0};
            dgm_tensor *y[2], *gr[2];
            dgm_graph *gs[2];
            for (int thr = 1; thr <= 2; thr++) {
                dgm_set_threads(thr);
                dgm_graph *g = gs[thr - 1] = dgm_graph_new();
                dgm_graph_set_backend(g,
                                      be ? DGM_BACKEND_DNNL : DGM_BACKEND_REF);
                dgm_var *in = dgm_leaf(g, x, true);
                dgm_var *out = build_packed(g, &in, &c);
                dgm_var *loss =
                    dgm_sum_all(g, dgm_mul(g, out, dgm_input(g, w)));
                ck_assert_msg(loss != NULL, "%s", dgm_last_error());
                ck_assert_int_eq(dgm_backward(g, loss), 0);
                y[thr - 1] = dgm_value(out);
                gr[thr - 1] = dgm_grad(in);
            }
            dgm_set_threads(threads);
            ck_assert_msg(!memcmp(dgm_tensor_f32(y[0]), dgm_tensor_f32(y[1]),
                                  sizeof(float) * (size_t)(N * T * D)),
                          "backend %d causal %d: values differ", be, causal);
            ck_assert_msg(!memcmp(dgm_tensor_f32(gr[0]), dgm_tensor_f32(gr[1]),
                                  sizeof(float) * (size_t)(N * T * 3 * D)),
                          "backend %d causal %d: gradients differ", be, causal);
            dgm_graph_free(gs[0]);
            dgm_graph_free(gs[1]);
        }
    dgm_tensor_free(x);
    dgm_tensor_free(w);
}
END_TEST

/* The fused path (oneDNN backend: per-head tasks, tiles of 16 keys and
 * 4 or 8 rows, causal key blocks only) against the plain strided GEMMs
 * (reference backend), values and gradients 1e-5 relative: T 1, T odd,
 * T one past a lane group (17, 33), T 200 (13 groups, the last partial),
 * heads 1, 2, 4 and 8, d 3, 4, 12, 16, 20 and 32 (padded to 16 or 32),
 * causal and not. */
START_TEST(packed_fused_matches_the_reference)
{
    static const struct {
        int64_t N, T, H, d;
    } cs[] = {{2, 1, 1, 12},  {2, 5, 8, 3},   {1, 17, 2, 20},
              {1, 33, 1, 16}, {1, 200, 8, 4}, {2, 64, 4, 32}};
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++)
        for (int causal = 0; causal < 2; causal++) {
            const int64_t shape[3] = {cs[i].N, cs[i].T, 3 * cs[i].H * cs[i].d};
            dgm_tensor *x = gc_randn(3, shape, 90 + (uint64_t)i);
            pk_case c = {(int)cs[i].H, 1.0f / sqrtf((float)cs[i].d),
                         causal != 0};
            gc_result r =
                gc_compare_backends(build_packed, &c, 1, &x, NULL, 1e-5, 1e-6);
            ck_assert_msg(r.ok, "N %lld T %lld H %lld d %lld causal %d: %s",
                          (long long)cs[i].N, (long long)cs[i].T,
                          (long long)cs[i].H, (long long)cs[i].d, causal,
                          gc_describe(&r));
            dgm_tensor_free(x);
        }
}
END_TEST

START_TEST(packed_refuses_bad_shapes)
{
    dgm_graph *g = dgm_graph_new();
    dgm_var *x = dgm_constant(g, 3, (int64_t[]){2, 4, 24}, 1.0f);
    /* 24 = 3 D, D 8: 3 heads do not divide it */
    ck_assert_ptr_null(dgm_attention_packed(g, x, 3, 1.0f, true));
    ck_assert_int_eq(dgm_last_code(), DGM_ESHAPE);
    ck_assert_msg(strstr(dgm_last_error(), "attention_packed: qkv ") &&
                      strstr(dgm_last_error(), "[2, 4, 24]") &&
                      strstr(dgm_last_error(), "heads 3"),
                  "%s", dgm_last_error());
    dgm_var *odd = dgm_constant(g, 3, (int64_t[]){2, 4, 10}, 1.0f);
    ck_assert_ptr_null(dgm_attention_packed(g, odd, 1, 1.0f, false));
    ck_assert_int_eq(dgm_last_code(), DGM_ESHAPE);
    dgm_var *flat = dgm_constant(g, 2, (int64_t[]){4, 24}, 1.0f);
    ck_assert_ptr_null(dgm_attention_packed(g, flat, 1, 1.0f, false));
    ck_assert_int_eq(dgm_last_code(), DGM_ESHAPE);
    ck_assert_ptr_null(dgm_attention_packed(g, x, 0, 1.0f, false));
    ck_assert_int_eq(dgm_last_code(), DGM_ESHAPE);
    ck_assert_ptr_null(dgm_attention_packed(g, x, 1, INFINITY, false));
    ck_assert_int_eq(dgm_last_code(), DGM_ESHAPE);
    ck_assert_ptr_null(dgm_attention_packed(g, NULL, 1, 1.0f, false));
    dgm_graph_free(g);
}
END_TEST

static Suite *attention_suite(void)
{
    Suite *s = suite_create("ops_attention");
    TCase *tc = tq_case(
        s, "attention", gradient_matches_finite_differences,
        matches_the_unfused_composition, refuses_mismatched_inputs,
        packed_gradient_matches_finite_differences,
        packed_matches_the_composition, packed_threads_give_the_same_bits,
        packed_fused_matches_the_reference, packed_refuses_bad_shapes);
    tcase_set_timeout(tc, 120);
    return s;
}

int main(void)
{
    return tq_run(attention_suite(), "installed", false);
}
