/* test_ops_attention.c - the fused attention op (dgm_attention): its
 * gradient against finite differences, causal and not; its values and
 * gradients against the unfused composition (matmul, mask, softmax,
 * matmul) at a transformer-like shape; and its refusals. */
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

static Suite *attention_suite(void)
{
    Suite *s = suite_create("ops_attention");
    TCase *tc =
        tq_case(s, "attention", gradient_matches_finite_differences,
                matches_the_unfused_composition, refuses_mismatched_inputs);
    tcase_set_timeout(tc, 120);
    return s;
}

int main(void)
{
    return tq_run(attention_suite(), "installed", false);
}
