/* test_char.c - sequence models: the cross_entropy loss against a plain-C
 * reference, the lstm/gru/transformer_block/positional blocks (finite
 * differences, causal masking bit for bit, the sinusoid formula), token
 * drawing, the text data set's stream order, and whole runs of char_rnn
 * (LSTM and GRU) and char_transformer: a tiny corpus memorised,
 * generation repeatable for a seed (host API and `dgm sample --prompt`), a
 * corpus with another vocabulary refused (sampling and resuming), TBPTT
 * carrying state. */
#include <check.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ck_run.h"
#include "dgm/dgm.h"
#include "dgm/host.h"
#include "gradcheck.h"
#include "train.h"

static char root[1024];
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
    snprintf(root, sizeof root, "%s/char-%ld", t ? t : "/tmp", (long)getpid());
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

/* ---- cross_entropy ---------------------------------------------------- */

START_TEST(cross_entropy_matches_reference)
{
    const dgm_plugin_desc *d;
    ck_assert_int_eq(
        dgm_registry_find(reg, DGM_KIND_LOSS, "cross_entropy", &d, NULL), 0);
    const dgm_loss_iface *li = d->iface.loss;
    int64_t ls[3] = {2, 3, 5}, ts[2] = {2, 3};
    dgm_tensor *l = gc_randn(3, ls, 5);
    dgm_tensor *t = dgm_tensor_new(DGM_I64, 2, ts);
    int64_t *tp = t->data;
    for (int i = 0; i < 6; i++)
        tp[i] = (i * 3) % 5;
    dgm_graph *g = dgm_graph_new();
    dgm_var *in[2] = {dgm_input(g, l), dgm_input(g, t)};
    dgm_var *y = li->apply(NULL, g, in, 2);
    ck_assert_ptr_nonnull(y);
    ck_assert_int_eq(dgm_value(y)->ndim, 1);
    const float *lp = l->data;
    for (int n = 0; n < 2; n++) {
        double s = 0;
        for (int k = 0; k < 3; k++) {
            const float *row = lp + (n * 3 + k) * 5;
            double z = 0;
            for (int c = 0; c < 5; c++)
                z += exp(row[c]);
            s += log(z) - row[tp[n * 3 + k]];
        }
        ck_assert_double_eq_tol(dgm_tensor_get(dgm_value(y), n), s / 3, 1e-5);
    }
    /* targets of the wrong shape: refused naming both shapes */
    dgm_graph_reset(g);
    int64_t bad[2] = {2, 4};
    dgm_tensor *tb = dgm_tensor_new(DGM_I64, 2, bad);
    dgm_var *in2[2] = {dgm_input(g, l), dgm_input(g, tb)};
    ck_assert_ptr_null(li->apply(NULL, g, in2, 2));
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "[2, 3, 5]"));
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "[2, 4]"));
    dgm_graph_free(g);
    dgm_tensor_free(l);
    dgm_tensor_free(t);
    dgm_tensor_free(tb);
}
END_TEST

/* ---- blocks ----------------------------------------------------------- */

typedef struct blk_ctx {
    dgm_block *blk;
} blk_ctx;

static dgm_var *run_block(dgm_graph *g, dgm_var **in, void *ctx)
{
    return dgm_block_forward(((blk_ctx *)ctx)->blk, g, in[0]);
}

/* Make the block described by yaml for per-example input `in`. */
static dgm_block *make_block(dgm_build **b, dgm_params *ps, dgm_config **cfg,
                             const char *yaml, dgm_shape in, dgm_shape *out)
{
    ck_assert_int_eq(dgm_build_new(b, reg, ps, 3), 0);
    ck_assert_int_eq(dgm_config_parse(cfg, yaml, "block.yaml"), 0);
    dgm_block *blk;
    *out = (dgm_shape){0};
    int rc = dgm_block_create(*b, *cfg, "blk", &in, out, &blk);
    ck_assert_msg(rc == 0, "%s", dgm_last_error());
    return blk;
}

static void gradcheck_block(const char *yaml, dgm_shape in, int64_t n)
{
    dgm_params *ps = dgm_params_new();
    dgm_build *b;
    dgm_config *cfg;
    dgm_shape out;
    blk_ctx c = {make_block(&b, ps, &cfg, yaml, in, &out)};
    int64_t xs[4] = {n};
    memcpy(xs + 1, in.dim, sizeof(int64_t) * (size_t)in.ndim);
    dgm_tensor *x = gc_randn(in.ndim + 1, xs, 11);
    gc_result r = gc_gradcheck(run_block, &c, 1, &x, NULL, DGM_BACKEND_REF,
                               1e-2, 2e-2, 2e-3);
    ck_assert_msg(r.ok, "%s: %s", yaml, gc_describe(&r));
    r = gc_compare_backends(run_block, &c, 1, &x, NULL, 1e-4, 1e-4);
    ck_assert_msg(r.ok, "%s: %s", yaml, gc_describe(&r));
    dgm_tensor_free(x);
    dgm_build_free(b);
    dgm_config_free(cfg);
    dgm_params_free(ps);
}

/* The lstm block takes DGM_RNN_MAX_LAYERS layers and refuses one more,
 * naming the key and where it was written (the schema's range is the
 * op's limit). */
START_TEST(rnn_block_layer_limit)
{
    for (int extra = 0; extra <= 1; extra++) {
        char yaml[96];
        snprintf(yaml, sizeof yaml, "{plugin: lstm, hidden: 2, layers: %d}",
                 DGM_RNN_MAX_LAYERS + extra);
        dgm_params *ps = dgm_params_new();
        dgm_build *b;
        dgm_config *cfg;
        ck_assert_int_eq(dgm_build_new(&b, reg, ps, 3), 0);
        ck_assert_int_eq(dgm_config_parse(&cfg, yaml, "block.yaml"), 0);
        dgm_block *blk = NULL;
        dgm_shape in = {2, {3, 4}}, out = {0};
        int rc = dgm_block_create(b, cfg, "blk", &in, &out, &blk);
        if (!extra) {
            ck_assert_msg(rc == 0, "%s", dgm_last_error());
            char name[64];
            snprintf(name, sizeof name, "blk.lstm.weight_hh_l%d",
                     DGM_RNN_MAX_LAYERS - 1);
            ck_assert_ptr_nonnull(dgm_params_find(ps, name));
        } else {
            ck_assert_int_lt(rc, 0);
            const char *m = dgm_last_error();
            ck_assert_msg(strstr(m, "block.yaml:1") && strstr(m, "layers"),
                          "%s", m);
        }
        dgm_build_free(b);
        dgm_config_free(cfg);
        dgm_params_free(ps);
    }
}
END_TEST

START_TEST(blocks_pass_finite_differences)
{
    dgm_shape seq = {2, {5, 8}};
    gradcheck_block("{plugin: lstm, hidden: 6, layers: 2}", seq, 2);
    gradcheck_block("{plugin: gru, hidden: 6, layers: 2}", seq, 1);
    gradcheck_block("{plugin: transformer_block, heads: 2}", seq, 2);
    gradcheck_block("{plugin: transformer_block, heads: 1, causal: false}",
                    (dgm_shape){2, {1, 8}}, 1);
    gradcheck_block("{plugin: positional, kind: learned}", seq, 2);
}
END_TEST

/* No position sees a later one: changing token k leaves outputs before k
 * bit-identical and changes k and later. */
START_TEST(attention_is_causal)
{
    dgm_params *ps = dgm_params_new();
    dgm_build *b;
    dgm_config *cfg;
    dgm_shape out;
    const int64_t T = 7, D = 8, k = 4;
    dgm_block *blk =
        make_block(&b, ps, &cfg, "{plugin: transformer_block, heads: 2}",
                   (dgm_shape){2, {T, D}}, &out);
    int64_t xs[3] = {2, T, D};
    dgm_tensor *x = gc_randn(3, xs, 1), *x2 = dgm_tensor_clone(x);
    float *p2 = x2->data;
    /* not a constant shift, which the layer norm would remove */
    for (int n = 0; n < 2; n++)
        for (int64_t d = 0; d < D; d++)
            p2[(n * T + k) * D + d] += 0.25f * (float)(d % 3);
    dgm_graph *g = dgm_graph_new();
    dgm_graph_set_grad(g, false);
    dgm_tensor *y1 =
        dgm_tensor_clone(dgm_value(dgm_block_forward(blk, g, dgm_input(g, x))));
    dgm_graph_reset(g);
    dgm_tensor *y2 = dgm_tensor_clone(
        dgm_value(dgm_block_forward(blk, g, dgm_input(g, x2))));
    const float *a = y1->data, *c = y2->data;
    for (int n = 0; n < 2; n++) {
        size_t row = (size_t)D * sizeof(float);
        for (int64_t t = 0; t < T; t++) {
            bool same = !memcmp(a + (n * T + t) * D, c + (n * T + t) * D, row);
            ck_assert_msg(same == (t < k), "example %d position %lld: %s", n,
                          (long long)t, same ? "unchanged" : "changed");
        }
    }
    dgm_graph_free(g);
    dgm_tensor_free(x);
    dgm_tensor_free(x2);
    dgm_tensor_free(y1);
    dgm_tensor_free(y2);
    dgm_build_free(b);
    dgm_config_free(cfg);
    dgm_params_free(ps);
}
END_TEST

START_TEST(sinusoidal_positions_follow_the_formula)
{
    dgm_params *ps = dgm_params_new();
    dgm_build *b;
    dgm_config *cfg;
    dgm_shape out;
    dgm_block *blk =
        make_block(&b, ps, &cfg, "{plugin: positional, kind: sinusoidal}",
                   (dgm_shape){2, {6, 4}}, &out);
    ck_assert_int_eq(dgm_params_count(ps), 0); /* a constant, no weights */
    int64_t xs[3] = {1, 6, 4};
    dgm_tensor *x = dgm_tensor_new(DGM_F32, 3, xs);
    dgm_graph *g = dgm_graph_new();
    const float *y =
        dgm_value(dgm_block_forward(blk, g, dgm_input(g, x)))->data;
    for (int i = 0; i < 6; i++)
        for (int k = 0; k < 4; k++) {
            double a = i * pow(10000.0, -(double)(k / 2 * 2) / 4.0);
            ck_assert_double_eq_tol(y[i * 4 + k], k % 2 ? cos(a) : sin(a),
                                    1e-6);
        }
    dgm_graph_free(g);
    dgm_tensor_free(x);
    dgm_build_free(b);
    dgm_config_free(cfg);
    dgm_params_free(ps);
}
END_TEST

/* ---- drawing tokens ---------------------------------------------------- */

START_TEST(draw_token_honours_temperature_and_top_k)
{
    dgm_rng r;
    dgm_rng_seed(&r, 9);
    float l[4] = {0.0f, logf(3.0f), -1.0f, 0.5f};
    dgm_generate_opts top1 = {.temperature = 1.0f, .top_k = 1};
    dgm_generate_opts cold = {.temperature = 1e-3f, .top_k = 0};
    dgm_generate_opts top2 = {.temperature = 1.0f, .top_k = 2};
    int hits = 0;
    for (int i = 0; i < 20000; i++) {
        ck_assert_int_eq(dgm_draw_token(l, 4, &top1, &r), 1);
        ck_assert_int_eq(dgm_draw_token(l, 4, &cold, &r), 1);
        int t = dgm_draw_token(l, 4, &top2, &r);
        ck_assert(t == 1 || t == 3);
        /* top-2 keeps ids 1 and 3: p(1) = 3 / (3 + e^0.5) */
        hits += t == 1;
    }
    double p = 3.0 / (3.0 + exp(0.5));
    ck_assert_double_eq_tol(hits / 20000.0, p, 0.015);
}
END_TEST

/* ---- the text data set's stream order ---------------------------------- */

START_TEST(stream_order_continues_rows)
{
    char corpus[1200], yaml[2600];
    snprintf(corpus, sizeof corpus, "%s/stream.txt", root);
    char text[2001];
    for (int i = 0; i < 2000; i++)
        text[i] = (char)('a' + (i * 7 + i / 26) % 26);
    text[2000] = '\0';
    write_text(corpus, text);
    snprintf(yaml, sizeof yaml,
             "{path: '%s', seq_len: 8, batch_size: 4, shuffle: false, "
             "order: stream, val_fraction: 0.1}",
             corpus);
    const dgm_plugin_desc *d;
    ck_assert_int_eq(dgm_registry_find(reg, DGM_KIND_DATASET, "text", &d, NULL),
                     0);
    dgm_config *cfg;
    ck_assert_int_eq(dgm_config_parse(&cfg, yaml, "data.yaml"), 0);
    ck_assert_int_eq(dgm_config_validate(cfg, d->params, "text", NULL), 0);
    const dgm_dataset_iface *di = d->iface.dataset;
    void *self;
    ck_assert_int_eq(di->create(&self, cfg), 0);
    int64_t sh[2] = {4, 8};
    dgm_tensor *x0 = dgm_tensor_new(DGM_I64, 2, sh),
               *y0 = dgm_tensor_new(DGM_I64, 2, sh),
               *x1 = dgm_tensor_new(DGM_I64, 2, sh);
    int64_t i0[4] = {0, 1, 2, 3}, i1[4] = {4, 5, 6, 7};
    dgm_batch b0 = {.n = 4, .x = x0, .y = y0}, b1 = {.n = 4, .x = x1};
    ck_assert_int_eq(di->get(self, DGM_SPLIT_TRAIN, i0, &b0, NULL), 0);
    ck_assert_int_eq(di->get(self, DGM_SPLIT_TRAIN, i1, &b1, NULL), 0);
    const int64_t *px0 = x0->data, *py0 = y0->data, *px1 = x1->data;
    for (int r = 0; r < 4; r++) {
        /* batch 1 row r starts where batch 0 row r's targets end */
        ck_assert_int_eq(px1[r * 8], py0[r * 8 + 7]);
        /* and targets are the inputs shifted by one */
        for (int k = 0; k < 7; k++)
            ck_assert_int_eq(py0[r * 8 + k], px0[r * 8 + k + 1]);
    }
    /* rows are different streams */
    ck_assert(memcmp(px0, px0 + 8, 8 * sizeof(int64_t)) != 0);
    di->destroy(self);
    dgm_config_free(cfg);
    /* stream order with shuffling is refused, naming the key */
    snprintf(yaml, sizeof yaml,
             "{path: '%s', seq_len: 8, batch_size: 4, order: stream}", corpus);
    ck_assert_int_eq(dgm_config_parse(&cfg, yaml, "data.yaml"), 0);
    ck_assert_int_eq(dgm_config_validate(cfg, d->params, "text", NULL), 0);
    ck_assert_int_eq(di->create(&self, cfg), DGM_ECONFIG);
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "shuffle: false"));
    dgm_config_free(cfg);
    dgm_tensor_free(x0);
    dgm_tensor_free(y0);
    dgm_tensor_free(x1);
}
END_TEST

/* ---- whole runs -------------------------------------------------------- */

static const char corpus_text[] =
    "the quick brown fox jumps over the lazy dog. ";

static void write_corpus(const char *path, const char *unit, int times)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    for (int i = 0; i < times; i++)
        fputs(unit, f);
    fclose(f);
}

/* Train the model yaml on corpus.txt into root/<name>; returns the
 * summary (caller decrefs). */
static json_t *train(const char *name, const char *model, const char *extra,
                     int steps)
{
    char yaml[4096], path[1400], dir[1300];
    snprintf(yaml, sizeof yaml,
             "name: %s\nseed: 2\nthreads: 2\n"
             "data: {plugin: text, path: '%s/corpus.txt', seq_len: 16, "
             "batch_size: 16, val_fraction: 0.2%s}\n"
             "model: %s\n"
             "optimizer: {plugin: adam, lr: 1.0e-2, clip_norm: 1.0}\n"
             "train: {steps: %d, log_every: 1}\n"
             "metrics: [{plugin: bits_per_char}, {plugin: perplexity}]\n",
             name, root, extra, model, steps);
    snprintf(path, sizeof path, "%s/%s.yaml", root, name);
    write_text(path, yaml);
    snprintf(dir, sizeof dir, "%s/%s", root, name);
    ck_assert_msg(tc_train(reg, path, dir, NULL, 0) == 0, "%s",
                  dgm_last_error());
    snprintf(path, sizeof path, "%s/summary.json", dir);
    json_error_t err;
    json_t *s = json_load_file(path, 0, &err);
    ck_assert_msg(s != NULL, "%s: %s", path, err.text);
    return s;
}

static double final_of(json_t *s, const char *key)
{
    return json_real_value(json_object_get(json_object_get(s, "final"), key));
}

/* Run `dgm sample DIR --prompt ...` with the extra arguments; returns the
 * exit status, stdout+stderr in out. */
static int cli_sample(char *out, size_t n, const char *dir, const char *args)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' sample '%s' %s 2>&1", DGM_CLI, dir, args);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t got = fread(out, 1, n - 1, p);
    out[got] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void memorises(const char *name, const char *model, int steps)
{
    char corpus[1300];
    snprintf(corpus, sizeof corpus, "%s/corpus.txt", root);
    write_corpus(corpus, corpus_text, 40);
    json_t *s = train(name, model, "", steps);
    double loss = json_real_value(json_object_get(s, "train_loss"));
    double bpc = final_of(s, "bits_per_char");
    ck_assert_msg(loss < 0.05, "%s: train loss %g after %d steps", name, loss,
                  steps);
    /* the first characters of a window have no context: not quite 0 */
    ck_assert_msg(bpc < 0.2, "%s: validation bits/char %g", name, bpc);
    ck_assert_double_eq_tol(final_of(s, "perplexity"), exp2(bpc), 1e-6);
    json_decref(s);

    /* generation: the same seed, the same text; the memorised sentence
     * continues the prompt */
    char dir[1300], *a, *b, *c;
    snprintf(dir, sizeof dir, "%s/%s", root, name);
    dgm_generate_opts hot = {.temperature = 3.0f}, cold = {.temperature = 0.1f};
    ck_assert_int_eq(dgm_run_generate(reg, dir, "the quick", 40, &hot, 1, &a),
                     0);
    ck_assert_int_eq(dgm_run_generate(reg, dir, "the quick", 40, &hot, 1, &b),
                     0);
    ck_assert_str_eq(a, b);
    free(b);
    ck_assert_int_eq(dgm_run_generate(reg, dir, "the quick", 40, &hot, 2, &b),
                     0);
    ck_assert_str_ne(a, b);
    ck_assert_int_eq(dgm_run_generate(reg, dir, "the quick", 20, &cold, 3, &c),
                     0);
    ck_assert_str_eq(c, "the quick brown fox jumps ove");
    free(a);
    free(b);
    free(c);

    /* the same through the command line: two runs with one seed print the
     * same text, another seed another */
    char o1[512], o2[512];
    const char *hot_args = "--prompt 'the quick' --length 40 "
                           "--temperature 3 --top-k 8 --seed";
    char args[256];
    snprintf(args, sizeof args, "%s 5", hot_args);
    ck_assert_int_eq(cli_sample(o1, sizeof o1, dir, args), 0);
    ck_assert_int_eq(cli_sample(o2, sizeof o2, dir, args), 0);
    ck_assert_str_eq(o1, o2);
    ck_assert_int_eq(strlen(o1), 9 + 40 + 1); /* text and newline */
    ck_assert_int_eq(strncmp(o1, "the quick", 9), 0);
    snprintf(args, sizeof args, "%s 6", hot_args);
    ck_assert_int_eq(cli_sample(o2, sizeof o2, dir, args), 0);
    ck_assert_str_ne(o1, o2);
    ck_assert_int_eq(
        cli_sample(o1, sizeof o1, dir, "--prompt 'the QUICK' --length 3"), 1);
    ck_assert_msg(strstr(o1, "'Q'") && strstr(o1, "vocabulary"), "%s", o1);

    /* images asked of a text model: refused, naming the model and the
     * way to its text */
    ck_assert_int_eq(cli_sample(o1, sizeof o1, dir, "-n 4"), 1);
    ck_assert_msg(strstr(o1, ": samples are text; use dgm sample --prompt"),
                  "%s", o1);

    /* a prompt byte outside the vocabulary is named */
    ck_assert_int_eq(dgm_run_generate(reg, dir, "the QUICK", 5, &cold, 3, &a),
                     DGM_EINVAL);
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "'Q'"));

    /* the corpus now gives another vocabulary: refused by name */
    write_corpus(corpus, "THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG. ", 40);
    ck_assert_int_eq(dgm_run_generate(reg, dir, "T", 5, &cold, 3, &a),
                     DGM_ESTATE);
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "vocabulary"));
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "checkpoint"));
}

START_TEST(char_rnn_memorises_and_generates)
{
    memorises("lstm",
              "{plugin: char_rnn, cell: lstm, embedding: 16, hidden: 64, "
              "layers: 1}",
              150);
}
END_TEST

START_TEST(char_gru_memorises_and_generates)
{
    memorises("gru",
              "{plugin: char_rnn, cell: gru, embedding: 16, hidden: 64, "
              "layers: 2}",
              150);
}
END_TEST

START_TEST(char_transformer_memorises_and_generates)
{
    memorises("tf",
              "{plugin: char_transformer, width: 32, layers: 2, "
              "block: {plugin: transformer_block, heads: 2}}",
              150);
}
END_TEST

/* The loss of logged step `step` in a run's metrics.jsonl. */
static double loss_at(const char *name, int step)
{
    char path[1300], line[4096];
    snprintf(path, sizeof path, "%s/%s/metrics.jsonl", root, name);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    double v = NAN;
    while (fgets(line, sizeof line, f)) {
        json_t *j = json_loads(line, 0, NULL);
        if (j && json_integer_value(json_object_get(j, "step")) == step &&
            json_object_get(j, "loss"))
            v = json_real_value(json_object_get(j, "loss"));
        json_decref(j);
    }
    fclose(f);
    ck_assert_msg(!isnan(v), "no loss at step %d in %s", step, path);
    return v;
}

/* With tbptt the second batch starts from the first one's final state, so
 * the first step's loss is the same with and without it and the second
 * differs. */
START_TEST(tbptt_carries_state)
{
    char corpus[1300];
    snprintf(corpus, sizeof corpus, "%s/corpus.txt", root);
    write_corpus(corpus, corpus_text, 40);
    const char *stream = ", order: stream, shuffle: false";
    json_decref(train("plain",
                      "{plugin: char_rnn, embedding: 8, hidden: 16, "
                      "layers: 2}",
                      stream, 3));
    json_decref(train("carried",
                      "{plugin: char_rnn, embedding: 8, hidden: 16, "
                      "layers: 2, tbptt: true}",
                      stream, 3));
    ck_assert_double_eq(loss_at("plain", 1), loss_at("carried", 1));
    ck_assert_double_ne(loss_at("plain", 2), loss_at("carried", 2));
}
END_TEST

/* A run stopped early and resumed against a corpus that now gives another
 * vocabulary is refused (DGM_ESTATE), naming the corpus and the bytes. */
START_TEST(resume_refuses_another_vocabulary)
{
    char corpus[1300], path[1400], dir[1300];
    snprintf(corpus, sizeof corpus, "%s/corpus.txt", root);
    write_corpus(corpus, corpus_text, 40);
    snprintf(dir, sizeof dir, "%s/resumed", root);
    char yaml[2048];
    snprintf(yaml, sizeof yaml,
             "name: resumed\nseed: 1\nthreads: 2\n"
             "data: {plugin: text, path: '%s', seq_len: 16, batch_size: 8, "
             "val_fraction: 0.2}\n"
             "model: {plugin: char_rnn, embedding: 8, hidden: 16, layers: 1}\n"
             "train: {steps: 6}\n",
             corpus);
    snprintf(path, sizeof path, "%s/resumed.yaml", root);
    write_text(path, yaml);
    dgm_experiment *e;
    ck_assert_int_eq(dgm_experiment_load(&e, reg, path, NULL, 0), 0);
    dgm_run_options o = {.run_dir = dir, .quiet = true, .stop_after = 2};
    int rc = dgm_experiment_run(e, &o);
    ck_assert_msg(rc == 0, "%s", dgm_last_error());
    dgm_experiment_free(e);
    /* the same corpus resumes */
    snprintf(path, sizeof path, "%s/config.yaml", dir);
    ck_assert_int_eq(dgm_experiment_load(&e, reg, path, NULL, 0), 0);
    o = (dgm_run_options){.resume_dir = dir, .quiet = true, .stop_after = 4};
    rc = dgm_experiment_run(e, &o);
    ck_assert_msg(rc == 0, "%s", dgm_last_error());
    dgm_experiment_free(e);
    /* upper case: every letter's id changes */
    write_corpus(corpus, "THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG. ", 40);
    ck_assert_int_eq(dgm_experiment_load(&e, reg, path, NULL, 0), 0);
    o = (dgm_run_options){.resume_dir = dir, .quiet = true};
    ck_assert_int_eq(dgm_experiment_run(e, &o), DGM_ESTATE);
    const char *m = dgm_last_error();
    ck_assert_msg(strstr(m, corpus) && strstr(m, "checkpoint") &&
                      strstr(m, "'a' in the checkpoint, 'A' in the corpus"),
                  "message: %s", m);
    dgm_experiment_free(e);
}
END_TEST

static Suite *char_suite(void)
{
    Suite *s = suite_create("char");
    TCase *tc = tq_case(s, "loss", cross_entropy_matches_reference,
                        draw_token_honours_temperature_and_top_k);
    tcase_add_checked_fixture(tc, setup, teardown);
    tc = tq_case(s, "blocks", blocks_pass_finite_differences,
                 rnn_block_layer_limit, attention_is_causal,
                 sinusoidal_positions_follow_the_formula);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tc = tq_case(s, "data", stream_order_continues_rows);
    tcase_add_checked_fixture(tc, setup, teardown);
    tc = tq_case(s, "runs", char_rnn_memorises_and_generates,
                 char_gru_memorises_and_generates,
                 char_transformer_memorises_and_generates, tbptt_carries_state,
                 resume_refuses_another_vocabulary);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(char_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
