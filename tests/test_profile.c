/* test_profile.c - the per-op profile (dgm/profile.h): call counts of a
 * known small graph, forward and backward; the FLOP counts of a linear
 * layer, a transposed batched matmul and a convolution against their
 * formulas; nothing recorded when off; the table; and `dgm run --profile`
 * writing profile.txt for a tiny char_transformer run. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ck_run.h"
#include "cli.h"
#include "dgm/dgm.h"
#include "files.h"

static dgm_tensor *filled(int ndim, const int64_t *shape, float scale)
{
    dgm_tensor *t = dgm_tensor_new(DGM_F32, ndim, shape);
    float *p = dgm_tensor_f32(t);
    for (int64_t i = 0; i < dgm_tensor_numel(t); i++)
        p[i] = scale * (float)((i * 37) % 11 - 5);
    return t;
}

static dgm_profile_row row_of(const char *name)
{
    dgm_profile_row r;
    int rc = dgm_profile_get(name, &r);
    ck_assert_msg(rc == 0, "no row for %s: %s", name, dgm_last_error());
    return r;
}

/* Two steps of sum(relu(linear(x, w, b))) with x [4, 3], w [5, 3]. */
START_TEST(counts_calls_and_gemm_flops)
{
    dgm_profile_reset();
    dgm_profile_enable(true);
    dgm_graph *g = dgm_graph_new();
    dgm_tensor *xt = filled(2, (int64_t[]){4, 3}, 0.1f);
    dgm_tensor *wt = filled(2, (int64_t[]){5, 3}, 0.2f);
    dgm_tensor *bt = filled(1, (int64_t[]){5}, 0.3f);
    for (int step = 0; step < 2; step++) {
        dgm_graph_reset(g);
        dgm_var *x = dgm_leaf(g, xt, true), *w = dgm_leaf(g, wt, true);
        dgm_var *b = dgm_leaf(g, bt, false);
        dgm_var *s = dgm_sum_all(g, dgm_relu(g, dgm_linear(g, x, w, b)));
        ck_assert_ptr_nonnull(s);
        ck_assert_int_eq(dgm_backward(g, s), 0);
    }
    dgm_profile_row r = row_of("linear");
    ck_assert_int_eq(r.calls[0], 2);
    ck_assert_int_eq(r.calls[1], 2);
    /* 2 M N K per product: the forward, then dx and dw backward. */
    ck_assert_double_eq(r.flops[0], 2 * (2.0 * 4 * 5 * 3));
    ck_assert_double_eq(r.flops[1], 2 * (2 * 2.0 * 4 * 5 * 3));
    ck_assert(r.seconds[0] > 0 && r.seconds[1] > 0);
    r = row_of("relu");
    ck_assert_int_eq(r.calls[0], 2);
    ck_assert_int_eq(r.calls[1], 2);
    ck_assert_double_eq(r.flops[0], 0); /* memory-bound: not counted */
    r = row_of("sum_all");
    ck_assert_int_eq(r.calls[0], 2);
    ck_assert_int_eq(r.calls[1], 2);
    ck_assert_int_eq(dgm_profile_get("matmul", &r), DGM_ENOTFOUND);

    /* Only w needs a gradient now: one backward product, not two. */
    dgm_profile_reset();
    dgm_graph_reset(g);
    dgm_var *s = dgm_sum_all(
        g, dgm_linear(g, dgm_leaf(g, xt, false), dgm_leaf(g, wt, true), NULL));
    ck_assert_int_eq(dgm_backward(g, s), 0);
    r = row_of("linear");
    ck_assert_double_eq(r.flops[1], 2.0 * 4 * 5 * 3);

    dgm_profile_enable(false);
    dgm_graph_free(g);
    dgm_tensor_free(xt);
    dgm_tensor_free(wt);
    dgm_tensor_free(bt);
}
END_TEST

START_TEST(counts_matmul_and_conv_flops)
{
    dgm_profile_reset();
    dgm_profile_enable(true);
    dgm_graph *g = dgm_graph_new();
    /* a [2, 3, 4] transposed: M 4, K 3; b [2, 3, 6]: P 6 -> [2, 4, 6] */
    dgm_tensor *at = filled(3, (int64_t[]){2, 3, 4}, 0.1f);
    dgm_tensor *bt = filled(3, (int64_t[]){2, 3, 6}, 0.1f);
    dgm_var *c = dgm_matmul(g, dgm_leaf(g, at, false), dgm_leaf(g, bt, false),
                            true, false);
    ck_assert_ptr_nonnull(c);
    ck_assert_double_eq(row_of("matmul").flops[0], 2.0 * 2 * 4 * 6 * 3);
    /* x [1, 2, 5, 5], w [3, 2, 3, 3] -> [1, 3, 3, 3]: 27 outputs of 18
     * multiply-adds each. */
    dgm_tensor *xt = filled(4, (int64_t[]){1, 2, 5, 5}, 0.1f);
    dgm_tensor *wt = filled(4, (int64_t[]){3, 2, 3, 3}, 0.1f);
    dgm_conv_params p = {{1, 1}, {0, 0}, {1, 1}, 1, {0, 0}};
    ck_assert_ptr_nonnull(dgm_conv2d(g, dgm_leaf(g, xt, false),
                                     dgm_leaf(g, wt, false), NULL, &p));
    ck_assert_double_eq(row_of("conv2d").flops[0], 2.0 * 27 * 18);
    dgm_profile_enable(false);
    dgm_graph_free(g);
    dgm_tensor_free(at);
    dgm_tensor_free(bt);
    dgm_tensor_free(xt);
    dgm_tensor_free(wt);
}
END_TEST

START_TEST(off_records_nothing)
{
    dgm_profile_reset();
    dgm_profile_enable(false);
    dgm_graph *g = dgm_graph_new();
    dgm_tensor *xt = filled(1, (int64_t[]){3}, 1.0f);
    dgm_var *s = dgm_sum_all(g, dgm_exp(g, dgm_leaf(g, xt, true)));
    ck_assert_int_eq(dgm_backward(g, s), 0);
    dgm_profile_row r;
    ck_assert_int_eq(dgm_profile_get("exp", &r), DGM_ENOTFOUND);
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "'exp'"));
    dgm_profile_add("(optimizer)", 1.0);
    ck_assert_int_eq(dgm_profile_get("(optimizer)", &r), DGM_ENOTFOUND);
    dgm_graph_free(g);
    dgm_tensor_free(xt);
}
END_TEST

START_TEST(table_lists_rows_per_step)
{
    dgm_profile_reset();
    dgm_profile_enable(true);
    dgm_graph *g = dgm_graph_new();
    dgm_tensor *xt = filled(2, (int64_t[]){8, 8}, 0.1f);
    for (int step = 0; step < 4; step++) {
        dgm_graph_reset(g);
        dgm_var *x = dgm_leaf(g, xt, true);
        dgm_var *s = dgm_sum_all(g, dgm_matmul(g, x, x, false, true));
        ck_assert_int_eq(dgm_backward(g, s), 0);
    }
    dgm_profile_add("(optimizer)", 0.004);
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    ck_assert_int_eq(dgm_profile_write(m, 4), 0);
    fclose(m);
    ck_assert_msg(strncmp(text, "op ", 3) == 0, "%s", text);
    /* Per step: one call each way; 2 * 8^3 FLOPs forward. */
    const char *line = strstr(text, "\nmatmul ");
    ck_assert_msg(line != NULL, "%s", text);
    double fc, fms, bc, bms;
    char g0[32], g1[32];
    ck_assert_int_eq(sscanf(line + 1, "matmul %lf %lf %31s %lf %lf %31s", &fc,
                            &fms, g0, &bc, &bms, g1),
                     6);
    ck_assert_double_eq(fc, 1);
    ck_assert_double_eq(bc, 1);
    ck_assert(strcmp(g0, "-") != 0 && strcmp(g1, "-") != 0);
    /* The optimizer's 4 ms over 4 steps: 1 ms per step. */
    line = strstr(text, "\n(optimizer) ");
    ck_assert_msg(line != NULL, "%s", text);
    ck_assert_int_eq(sscanf(line + 1, "(optimizer) %lf %lf", &fc, &fms), 2);
    ck_assert_double_eq_tol(fms, 1.0, 1e-9);
    ck_assert_ptr_nonnull(strstr(text, "\ntotal: "));
    ck_assert_ptr_nonnull(strstr(text, "(4 steps; calls and ms are per step)"));
    free(text);
    dgm_profile_enable(false);
    dgm_graph_free(g);
    dgm_tensor_free(xt);
}
END_TEST

/* `dgm run --profile` on a tiny char_transformer: profile.txt in the run
 * directory, with the ops of a transformer step, the optimizer and the
 * clipping. */
START_TEST(run_writes_profile)
{
    const char *tmp = getenv("DGM_TEST_TMP");
    char dir[1024], path[1200], cmd[3000];
    snprintf(dir, sizeof dir, "%s/profile-%ld", tmp ? tmp : "/tmp",
             (long)getpid());
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", dir, dir);
    ck_assert_int_eq(system(cmd), 0);
    snprintf(path, sizeof path, "%s/corpus.txt", dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    for (int i = 0; i < 2000; i++)
        fputc("abcdefghi\n"[(i * 7 + i / 13) % 10], f);
    fclose(f);
    snprintf(path, sizeof path, "%s/tf.yaml", dir);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f,
            "name: tf_prof\nseed: 1\nthreads: 1\n"
            "data: {plugin: text, path: '%s/corpus.txt', seq_len: 8, "
            "batch_size: 4, val_fraction: 0.2}\n"
            "model: {plugin: char_transformer, width: 16, layers: 2, "
            "block: {plugin: transformer_block, heads: 2}}\n"
            "optimizer: {plugin: adam, lr: 1.0e-2, clip_norm: 1.0}\n"
            "train: {steps: 3, log_every: 1}\nmetrics: []\n",
            dir);
    fclose(f);
    snprintf(cmd, sizeof cmd, "run '%s' --profile --quiet --run-dir '%s/run'",
             path, dir);
    char err[4096];
    int st = tc_cli(NULL, cmd, NULL, 0, err, sizeof err);
    ck_assert_msg(st == 0, "dgm run: %s", err);
    snprintf(path, sizeof path, "%s/run/profile.txt", dir);
    size_t n;
    char *text = tc_slurp(path, &n, false);
    ck_assert_msg(text != NULL, "no %s", path);
    /* Two steps after the first; per step, the two layers' and the head's
     * linear layers run once forward and once backward each. */
    ck_assert_msg(strstr(text, "(2 steps; calls and ms are per step)"), "%s",
                  text);
    const char *line = strstr(text, "\nlinear ");
    ck_assert_msg(line != NULL, "%s", text);
    double fc, fms, bc;
    char g0[32];
    ck_assert_int_eq(
        sscanf(line + 1, "linear %lf %lf %31s %lf", &fc, &fms, g0, &bc), 4);
    ck_assert(fc >= 2 * 2 + 1);
    ck_assert_double_eq(fc, bc);
    ck_assert_ptr_nonnull(strstr(text, "\nlayer_norm "));
    ck_assert_ptr_nonnull(strstr(text, "\n(optimizer) "));
    ck_assert_ptr_nonnull(strstr(text, "\n(clip grad norm) "));
    free(text);
    /* DGM_PROFILE=1 does what --profile does; without either, no table */
    snprintf(cmd, sizeof cmd, "run '%s/tf.yaml' --quiet --run-dir '%s/run2'",
             dir, dir);
    st = tc_cli("DGM_PROFILE=1", cmd, NULL, 0, err, sizeof err);
    ck_assert_msg(st == 0, "dgm run: %s", err);
    snprintf(path, sizeof path, "%s/run2/profile.txt", dir);
    text = tc_slurp(path, &n, false);
    ck_assert_msg(text != NULL && strstr(text, "\nlinear "), "no %s", path);
    free(text);
    snprintf(cmd, sizeof cmd, "run '%s/tf.yaml' --quiet --run-dir '%s/run3'",
             dir, dir);
    st = tc_cli("DGM_PROFILE=0", cmd, NULL, 0, err, sizeof err);
    ck_assert_msg(st == 0, "dgm run: %s", err);
    snprintf(path, sizeof path, "%s/run3/profile.txt", dir);
    ck_assert_int_ne(access(path, F_OK), 0);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

static Suite *profile_suite(void)
{
    Suite *s = suite_create("profile");
    tq_case(s, "table", counts_calls_and_gemm_flops,
            counts_matmul_and_conv_flops, off_records_nothing,
            table_lists_rows_per_step);
    TCase *run = tq_case(s, "run", run_writes_profile);
    tcase_set_timeout(run, 120);
    return s;
}

int main(void)
{
    return tq_run(profile_suite(), "installed", false);
}
