/* test_transformer.c - the attention side of the sequence models, beyond
 * what suite char checks (block gradients, block-level masking, sinusoids,
 * memorising): a trained char_transformer run's logits against a PyTorch
 * float64 reconstruction of the same weights, causal masking through the
 * whole model bit for bit, generation from a prompt longer than the
 * window, learned positions, and the blocks' refusals. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ck_run.h"
#include "dgm/dgm.h"
#include "dgm/host.h"

#define T_LEN 8
#define LAYERS 2
#define HEADS 2

static char root[1024], run_dir[1200];
static dgm_registry *reg;

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_msg(f != NULL, "cannot write %s", path);
    fputs(text, f);
    fclose(f);
}

static void setup(void)
{
    const char *t = getenv("DGM_TEST_TMP");
    snprintf(root, sizeof root, "%s/transformer-%ld", t ? t : "/tmp",
             (long)getpid());
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", root);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_int_eq(dgm_registry_new(&reg), 0);
    ck_assert_int_eq(dgm_registry_add_dir(reg, DGM_PLUGIN_DIR), 0);
    ck_assert_int_ge(dgm_registry_scan(reg), 0);
}

static void teardown(void)
{
    dgm_registry_free(reg);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", root);
}

/* A few training steps of a small char_transformer on a 10-letter corpus
 * (so the weights are not their initial values) into run_dir. Once, for
 * the three model checks: training before a fork would leave OpenMP's
 * threads unusable in the forked tests. */
static void train_small(void)
{
    char corpus[1200], yaml[3000], path[1300];
    snprintf(corpus, sizeof corpus, "%s/corpus.txt", root);
    FILE *f = fopen(corpus, "w");
    ck_assert_ptr_nonnull(f);
    for (int i = 0; i < 3000; i++)
        fputc("abcdefghi\n"[(i * 7 + i / 13) % 10], f);
    fclose(f);
    snprintf(yaml, sizeof yaml,
             "name: tf_small\nseed: 4\nthreads: 2\n"
             "data: {plugin: text, path: '%s', seq_len: %d, batch_size: 4, "
             "val_fraction: 0.2}\n"
             "model: {plugin: char_transformer, width: 16, layers: %d, "
             "block: {plugin: transformer_block, heads: %d}}\n"
             "optimizer: {plugin: adam, lr: 1.0e-2}\n"
             "train: {steps: 3, log_every: 1}\nmetrics: []\n",
             corpus, T_LEN, LAYERS, HEADS);
    snprintf(path, sizeof path, "%s/tf_small.yaml", root);
    write_text(path, yaml);
    snprintf(run_dir, sizeof run_dir, "%s/tf_small", root);
    dgm_experiment *e;
    int rc = dgm_experiment_load(&e, reg, path, NULL, 0);
    ck_assert_msg(rc == 0, "%s", dgm_last_error());
    dgm_run_options o = {.run_dir = run_dir, .quiet = true};
    rc = dgm_experiment_run(e, &o);
    ck_assert_msg(rc == 0, "%s", dgm_last_error());
    dgm_experiment_free(e);
}

/* logits [T_LEN * V] of one window of ids through the run's model (one
 * row per call, so every call runs the same kernels on the same shapes). */
static dgm_tensor *logits_of(dgm_run *r, const int64_t *ids)
{
    int64_t shape[2] = {1, T_LEN};
    dgm_tensor *x = dgm_tensor_new(DGM_I64, 2, shape), *out = NULL;
    memcpy(x->data, ids, sizeof(int64_t) * T_LEN);
    int rc = dgm_run_forward_output(r, x, "logits", &out);
    ck_assert_msg(rc == 0, "%s", dgm_last_error());
    dgm_tensor_free(x);
    return out;
}

static void logits_match_pytorch(void)
{
    dgm_run *r;
    ck_assert_int_eq(dgm_run_open(&r, reg, run_dir), 0);
    const int64_t ids[T_LEN] = {3, 1, 4, 1, 5, 9, 2, 6};
    dgm_tensor *l = logits_of(r, ids);
    int64_t V = l->shape[1] / T_LEN;
    ck_assert_int_eq(V, 11); /* 10 letters and the unknown id */
    char cmd[2048];
    int n = snprintf(cmd, sizeof cmd,
                     "/usr/bin/python3 '%s/tests/reference/"
                     "char_transformer_ref.py' '%s/checkpoints/"
                     "last.safetensors' %d %d",
                     DGM_SOURCE_DIR, run_dir, LAYERS, HEADS);
    for (int i = 0; i < T_LEN; i++)
        n += snprintf(cmd + n, sizeof cmd - (size_t)n, " %lld",
                      (long long)ids[i]);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    const float *lp = l->data;
    int64_t count = 0;
    double worst = 0.0, v;
    while (fscanf(p, "%lf", &v) == 1) {
        ck_assert_int_lt(count, T_LEN * V);
        double e = fabs(lp[count] - v) / (1.0 + fabs(v));
        worst = e > worst ? e : worst;
        count++;
    }
    ck_assert_int_eq(pclose(p), 0);
    ck_assert_int_eq(count, T_LEN * V);
    ck_assert_msg(worst < 2e-5, "largest relative difference %g", worst);
    dgm_tensor_free(l);
    dgm_run_close(r);
}

/* Changing token k leaves every position before k bit-identical and
 * changes k and every later one; changing token 0 changes all. */
static void model_is_causal_bit_for_bit(void)
{
    dgm_run *r;
    ck_assert_int_eq(dgm_run_open(&r, reg, run_dir), 0);
    const int64_t base[T_LEN] = {0, 1, 2, 3, 4, 5, 6, 7};
    dgm_tensor *l0 = logits_of(r, base);
    int64_t V = l0->shape[1] / T_LEN;
    for (int k = 0; k < T_LEN; k++) {
        int64_t ids[T_LEN];
        memcpy(ids, base, sizeof ids);
        ids[k] = 9;
        dgm_tensor *l1 = logits_of(r, ids);
        const float *a = l0->data, *b = l1->data;
        for (int t = 0; t < T_LEN; t++) {
            bool same =
                !memcmp(a + t * V, b + t * V, sizeof(float) * (size_t)V);
            ck_assert_msg(same == (t < k),
                          "token %d changed: position %d's logits %s", k, t,
                          same ? "unchanged" : "changed");
        }
        dgm_tensor_free(l1);
    }
    dgm_tensor_free(l0);
    dgm_run_close(r);
}

/* A prompt longer than the window: the model sees the last T_LEN tokens;
 * the same seed gives the same text, another seed another one. */
static void generates_past_the_window(void)
{
    const char *prompt = "abcdefghi\nabcdefghi\nabc"; /* 23 > T_LEN */
    dgm_generate_opts o = {.temperature = 1.0f, .top_k = 3};
    char *a, *b, *c;
    ck_assert_int_eq(dgm_run_generate(reg, run_dir, prompt, 30, &o, 7, &a), 0);
    ck_assert_int_eq(dgm_run_generate(reg, run_dir, prompt, 30, &o, 7, &b), 0);
    ck_assert_int_eq(dgm_run_generate(reg, run_dir, prompt, 30, &o, 8, &c), 0);
    ck_assert_uint_eq(strlen(a), strlen(prompt) + 30);
    ck_assert(!strncmp(a, prompt, strlen(prompt)));
    for (const char *q = a; *q; q++)
        ck_assert_msg(strchr("abcdefghi\n", *q), "byte %d outside the corpus",
                      *q);
    ck_assert_str_eq(a, b);
    ck_assert_str_ne(a, c);
    free(a);
    free(b);
    free(c);
}

START_TEST(trained_model_checks)
{
    train_small();
    logits_match_pytorch();
    model_is_causal_bit_for_bit();
    generates_past_the_window();
}
END_TEST

/* ---- blocks on their own ----------------------------------------------- */

static int make_block(dgm_build **b, dgm_params *ps, dgm_config **cfg,
                      const char *yaml, dgm_shape in, dgm_block **blk)
{
    ck_assert_int_eq(dgm_build_new(b, reg, ps, 5), 0);
    ck_assert_int_eq(dgm_config_parse(cfg, yaml, "block.yaml"), 0);
    dgm_shape out = {0};
    return dgm_block_create(*b, *cfg, "blk", &in, &out, blk);
}

/* max_len above T: the first T rows of the table are added. */
START_TEST(learned_positions_add_the_table)
{
    dgm_params *ps = dgm_params_new();
    dgm_build *b;
    dgm_config *cfg;
    dgm_block *blk;
    ck_assert_int_eq(make_block(&b, ps, &cfg,
                                "{plugin: positional, kind: learned, "
                                "max_len: 10}",
                                (dgm_shape){2, {4, 3}}, &blk),
                     0);
    dgm_param *w = dgm_params_find(ps, "blk.weight");
    ck_assert_ptr_nonnull(w);
    ck_assert_int_eq(w->value->shape[0], 10);
    ck_assert_int_eq(w->value->shape[1], 3);
    int64_t xs[3] = {2, 4, 3};
    dgm_tensor *x = dgm_tensor_new(DGM_F32, 3, xs);
    float *xp = x->data;
    for (int i = 0; i < 24; i++)
        xp[i] = (float)i;
    dgm_graph *g = dgm_graph_new();
    const float *y =
        dgm_value(dgm_block_forward(blk, g, dgm_input(g, x)))->data;
    const float *wp = w->value->data;
    for (int n = 0; n < 2; n++)
        for (int i = 0; i < 12; i++)
            ck_assert_float_eq(y[n * 12 + i], xp[n * 12 + i] + wp[i]);
    /* the table's spread is N(0, 0.02^2) */
    double sq = 0;
    for (int i = 0; i < 30; i++)
        sq += wp[i] * wp[i];
    ck_assert_double_lt(sqrt(sq / 30), 0.05);
    ck_assert_double_gt(sqrt(sq / 30), 0.008);
    dgm_graph_free(g);
    dgm_tensor_free(x);
    dgm_build_free(b);
    dgm_config_free(cfg);
    dgm_params_free(ps);
}
END_TEST

static void refused(const char *yaml, dgm_shape in, int code, const char *a,
                    const char *b2)
{
    dgm_params *ps = dgm_params_new();
    dgm_build *b;
    dgm_config *cfg;
    dgm_block *blk;
    ck_assert_int_eq(make_block(&b, ps, &cfg, yaml, in, &blk), code);
    ck_assert_msg(strstr(dgm_last_error(), a), "%s: %s", yaml,
                  dgm_last_error());
    ck_assert_msg(strstr(dgm_last_error(), b2), "%s: %s", yaml,
                  dgm_last_error());
    dgm_build_free(b);
    dgm_config_free(cfg);
    dgm_params_free(ps);
}

START_TEST(blocks_refuse_what_does_not_fit)
{
    refused("{plugin: transformer_block, heads: 3}", (dgm_shape){2, {5, 8}},
            DGM_ERANGE, "heads", "3 heads do not divide the width 8");
    refused("{plugin: transformer_block}", (dgm_shape){1, {8}}, DGM_ESHAPE,
            "transformer_block", "[T, D]");
    refused("{plugin: positional, max_len: 4}", (dgm_shape){2, {6, 8}},
            DGM_ERANGE, "max_len", "sequences of 6 exceed max_len 4");
    refused("{plugin: positional}", (dgm_shape){3, {2, 6, 8}}, DGM_ESHAPE,
            "positional", "[2, 6, 8]");
}
END_TEST

/* mlp_hidden overrides mlp_ratio; the fused q/k/v weight is [3D, D]. */
START_TEST(block_parameters_have_their_shapes)
{
    dgm_params *ps = dgm_params_new();
    dgm_build *b;
    dgm_config *cfg;
    dgm_block *blk;
    ck_assert_int_eq(make_block(&b, ps, &cfg,
                                "{plugin: transformer_block, heads: 2, "
                                "mlp_hidden: 20}",
                                (dgm_shape){2, {5, 8}}, &blk),
                     0);
    ck_assert_int_eq(
        dgm_params_find(ps, "blk.attn.qkv.weight")->value->shape[0], 24);
    ck_assert_int_eq(dgm_params_find(ps, "blk.mlp.fc1.weight")->value->shape[0],
                     20);
    ck_assert_int_eq(dgm_params_find(ps, "blk.mlp.fc2.weight")->value->shape[1],
                     20);
    /* layer norms start as the identity map */
    ck_assert_double_eq(
        dgm_tensor_get(dgm_params_find(ps, "blk.ln1.weight")->value, 3), 1.0);
    ck_assert_double_eq(
        dgm_tensor_get(dgm_params_find(ps, "blk.ln2.bias")->value, 3), 0.0);
    ck_assert_int_eq(dgm_params_count(ps), 12);
    dgm_build_free(b);
    dgm_config_free(cfg);
    dgm_params_free(ps);
}
END_TEST

/* The MLP branch with leaky_relu against a plain double reference. The
 * attention weights are zeroed so the block is x + fc2(act(fc1(LN2(x))))
 * (LN2 starts as the identity affine); fc1's outputs have both signs, so
 * a slope passed as 0 (ReLU) would differ. Checks the default slope 0.2
 * and an explicit one. */
static void leaky_mlp_matches_reference(const char *yaml, double slope)
{
    enum { N = 2, T = 3, D = 4 };
    dgm_params *ps = dgm_params_new();
    dgm_build *b;
    dgm_config *cfg;
    dgm_block *blk;
    int rc = make_block(&b, ps, &cfg, yaml, (dgm_shape){2, {T, D}}, &blk);
    ck_assert_msg(rc == 0, "%s: %s", yaml, dgm_last_error());
    const char *zero[] = {"blk.attn.qkv.weight", "blk.attn.qkv.bias",
                          "blk.attn.proj.weight", "blk.attn.proj.bias"};
    for (int i = 0; i < 4; i++)
        dgm_tensor_fill(dgm_params_find(ps, zero[i])->value, 0.0);
    const dgm_tensor *w1 = dgm_params_find(ps, "blk.mlp.fc1.weight")->value;
    const dgm_tensor *b1 = dgm_params_find(ps, "blk.mlp.fc1.bias")->value;
    const dgm_tensor *w2 = dgm_params_find(ps, "blk.mlp.fc2.weight")->value;
    const dgm_tensor *b2 = dgm_params_find(ps, "blk.mlp.fc2.bias")->value;
    int64_t Hd = w1->shape[0];
    int64_t xs[3] = {N, T, D};
    dgm_tensor *x = dgm_tensor_new(DGM_F32, 3, xs);
    float *xp = x->data;
    for (int i = 0; i < N * T * D; i++)
        xp[i] = (float)sin(1.7 * i + 0.3) * 2.0f;
    dgm_graph *g = dgm_graph_new();
    dgm_var *yv = dgm_block_forward(blk, g, dgm_input(g, x));
    ck_assert_msg(yv != NULL, "%s", dgm_last_error());
    const float *y = dgm_value(yv)->data;
    int negatives = 0;
    double worst = 0.0;
    for (int r = 0; r < N * T; r++) {
        const float *row = xp + r * D;
        double mean = 0, var = 0, ln[D], out[D];
        for (int j = 0; j < D; j++)
            mean += row[j];
        mean /= D;
        for (int j = 0; j < D; j++)
            var += (row[j] - mean) * (row[j] - mean);
        var /= D;
        for (int j = 0; j < D; j++) {
            ln[j] = (row[j] - mean) / sqrt(var + 1e-5);
            out[j] = row[j] + dgm_tensor_get(b2, j);
        }
        for (int64_t h = 0; h < Hd; h++) {
            double a = dgm_tensor_get(b1, h);
            for (int j = 0; j < D; j++)
                a += dgm_tensor_get(w1, h * D + j) * ln[j];
            if (a < 0) {
                negatives++;
                a *= slope;
            }
            for (int j = 0; j < D; j++)
                out[j] += dgm_tensor_get(w2, j * Hd + h) * a;
        }
        for (int j = 0; j < D; j++) {
            double e = fabs(y[r * D + j] - out[j]) / (1.0 + fabs(out[j]));
            worst = e > worst ? e : worst;
        }
    }
    ck_assert_int_gt(negatives, 0);
    ck_assert_msg(worst < 1e-5, "%s: largest relative difference %g", yaml,
                  worst);
    dgm_graph_free(g);
    dgm_tensor_free(x);
    dgm_build_free(b);
    dgm_config_free(cfg);
    dgm_params_free(ps);
}

START_TEST(leaky_relu_uses_the_slope)
{
    leaky_mlp_matches_reference(
        "{plugin: transformer_block, heads: 2, activation: leaky_relu}", 0.2);
    leaky_mlp_matches_reference("{plugin: transformer_block, heads: 2, "
                                "activation: leaky_relu, slope: 0.55}",
                                0.55);
}
END_TEST

/* The three attention paths of the block give one result: the packed op
 * (the default), the composition (packed_attention: false, and what a
 * tapping graph gets) and the flash-style op (fused_attention: true),
 * same weights (same build seed), within 1e-5 of 1 + |value|. */
START_TEST(attention_paths_agree)
{
    enum { N = 2, T = 9, D = 24 };
    const char *yaml[3] = {
        "{plugin: transformer_block, heads: 3}",
        "{plugin: transformer_block, heads: 3, packed_attention: false}",
        "{plugin: transformer_block, heads: 3, fused_attention: true}"};
    dgm_tensor *x = dgm_tensor_new(DGM_F32, 3, (int64_t[]){N, T, D});
    float *xp = x->data;
    for (int i = 0; i < N * T * D; i++)
        xp[i] = (float)sin(0.7 * i + 0.1);
    float ref[N * T * D];
    for (int k = 0; k < 4; k++) {
        dgm_params *ps = dgm_params_new();
        dgm_build *b;
        dgm_config *cfg;
        dgm_block *blk;
        int rc =
            make_block(&b, ps, &cfg, yaml[k % 3], (dgm_shape){2, {T, D}}, &blk);
        ck_assert_msg(rc == 0, "%s: %s", yaml[k % 3], dgm_last_error());
        dgm_graph *g = dgm_graph_new();
        if (k == 3) /* the default block on a tapping graph */
            dgm_graph_set_tapping(g, true);
        dgm_var *y = dgm_block_forward(blk, g, dgm_input(g, x));
        ck_assert_msg(y != NULL, "%s", dgm_last_error());
        const float *yp = dgm_value(y)->data;
        if (k == 0)
            memcpy(ref, yp, sizeof ref);
        double worst = 0.0;
        for (int i = 0; i < N * T * D; i++) {
            double e = fabs(yp[i] - ref[i]) / (1.0 + fabs(ref[i]));
            worst = e > worst ? e : worst;
        }
        ck_assert_msg(worst < 1e-5, "path %d: largest relative difference %g",
                      k, worst);
        dgm_graph_free(g);
        dgm_build_free(b);
        dgm_config_free(cfg);
        dgm_params_free(ps);
    }
    dgm_tensor_free(x);
}
END_TEST

static Suite *transformer_suite(void)
{
    Suite *s = suite_create("transformer");
    TCase *tc = tq_case(s, "model", trained_model_checks);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tc = tq_case(s, "blocks", learned_positions_add_the_table,
                 blocks_refuse_what_does_not_fit,
                 block_parameters_have_their_shapes, leaky_relu_uses_the_slope,
                 attention_paths_agree);
    tcase_add_checked_fixture(tc, setup, teardown);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(transformer_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
