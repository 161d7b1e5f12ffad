/* test_acgan.c - AC-GAN from YAML: the gan model's d_feat / d_y outputs
 * and its `projection` option, and the `phases:` key of auxiliary heads,
 * on a tiny generated 28x28 IDX data set (4 classes): training runs
 * without NaN, the head trains in the discriminator phase only, the
 * outputs have the documented rows and values, the auxiliary term equals
 * a hand computation, and bad settings are refused with their place. */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "dgm/dgm.h"
#include "dgm/host.h"
#include "dgm/io.h"
#include "host_internal.h"
#include "quadrants.h"
#include "scratch.h"
#include "st_diff.h"
#include "train.h"

static char root[1024]; /* this process's scratch folder */

/* The tiny AC-GAN; %s: the data folder, then text appended at the end
 * (later keys override earlier ones in tests through overrides). */
static const char acgan_yaml[] =
    "name: tiny_acgan\n"
    "seed: 5\n"
    "threads: 1\n"
    "data:\n"
    "  plugin: idx\n"
    "  path: %s/data\n"
    "  train_images: train-img\n"
    "  train_labels: train-lab\n"
    "  test_images: test-img\n"
    "  test_labels: test-lab\n"
    "  scale: symmetric\n"
    "  batch_size: 8\n"
    "  shuffle: false\n"
    "model:\n"
    "  plugin: gan\n"
    "  latent: 8\n"
    "  conditional: true\n"
    "  projection: false\n"
    "  generator: {plugin: dcgan_generator, width: 8}\n"
    "  discriminator: {plugin: dcgan_discriminator, width: 8}\n"
    "heads:\n"
    "  - {name: cls, input: d_feat, out: [4], block: {plugin: mlp, "
    "hidden: []},\n"
    "     phases: %s}\n"
    "phases:\n"
    "  discriminator:\n"
    "    optimizer: {plugin: adam, lr: 2.0e-3, beta1: 0.5}\n"
    "    objective:\n"
    "      - {loss: gan_ns_d, inputs: [d_real, d_fake]}\n"
    "      - {loss: cross_entropy, inputs: [cls, d_y], weight: 2.0, "
    "name: aux}\n"
    "  generator:\n"
    "    optimizer: {plugin: adam, lr: 2.0e-3, beta1: 0.5}\n"
    "    objective:\n"
    "      - {loss: gan_ns_g, inputs: [d_fake]}\n"
    "%s"
    "train: {steps: 4, log_every: 1, samples: 0}\n";

static const char g_aux_term[] =
    "      - {loss: cross_entropy, inputs: [cls, d_y], name: aux}\n";

/* Write <root>/<tag>.yaml: the AC-GAN with head phases `phases` (YAML
 * text, "null" for the default) and, if g_aux, the generator's aux term. */
static void write_yaml(const char *tag, const char *phases, bool g_aux)
{
    char p[1200], text[8192];
    snprintf(p, sizeof p, "%s/%s.yaml", root, tag);
    snprintf(text, sizeof text, acgan_yaml, root, phases,
             g_aux ? g_aux_term : "");
    FILE *f = fopen(p, "w");
    ck_assert_msg(f != NULL, "%s: %s", p, strerror(errno));
    fputs(text, f);
    fclose(f);
}

static void setup(void)
{
    const char *t = getenv("DGM_TEST_TMP");
    snprintf(root, sizeof root, "%s/acgan-%ld", t ? t : "/tmp", (long)getpid());
    tc_sh("mkdir -p '%s'", root);
    ck_assert_int_eq(tq_write_data(root, 32, 16, false), 0);
    write_yaml("acgan", "[discriminator]", true);
}

static void teardown(void)
{
    tc_sh("rm -rf '%s'", root);
}

static dgm_registry *registry(void)
{
    dgm_registry *reg;
    ck_assert_int_eq(dgm_registry_new(&reg), 0);
    ck_assert_int_eq(dgm_registry_add_dir(reg, DGM_PLUGIN_DIR), 0);
    ck_assert_int_ge(dgm_registry_scan(reg), 0);
    return reg;
}

/* Load <root>/<yaml>.yaml with overrides; returns the code (0: *e set). */
static int load(dgm_registry *reg, const char *yaml, const char *const *ov,
                int n_ov, dgm_experiment **e)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%s.yaml", root, yaml);
    return dgm_experiment_load(e, reg, path, ov, n_ov);
}

/* Train <yaml>.yaml with the overrides into <root>/<tag>; returns the
 * code of dgm_experiment_run (loading must succeed). */
static int train(const char *yaml, const char *tag, const char *const *ov,
                 int n_ov)
{
    dgm_registry *reg = registry();
    char path[1200], dir[1200];
    snprintf(path, sizeof path, "%s/%s.yaml", root, yaml);
    snprintf(dir, sizeof dir, "%s/%s", root, tag);
    int rc = tc_train(reg, path, dir, ov, n_ov);
    dgm_registry_free(reg);
    return rc;
}

static dgm_st_file *ckpt(const char *tag)
{
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/%s", root, tag);
    return tc_ckpt(dir);
}

static bool starts(const char *s, const char *p)
{
    return !strncmp(s, p, strlen(p));
}

/* ---- (a) training ---------------------------------------------------- */

START_TEST(acgan_trains_without_nan)
{
    ck_assert_msg(train("acgan", "run", NULL, 0) == 0, "%s", dgm_last_error());
    char p[1400], line[4096];
    snprintf(p, sizeof p, "%s/run/metrics.jsonl", root);
    FILE *f = fopen(p, "r");
    ck_assert(f != NULL);
    const char *keys[] = {"discriminator/gan_ns_d", "discriminator/aux",
                          "generator/gan_ns_g", "generator/aux"};
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        json_t *j = json_loads(line, 0, NULL);
        ck_assert(j != NULL);
        if (json_object_get(j, "discriminator")) {
            for (int k = 0; k < 4; k++) {
                json_t *v = json_object_get(j, keys[k]);
                ck_assert_msg(v != NULL, "no %s in %s", keys[k], line);
                ck_assert_msg(isfinite(json_real_value(v)) &&
                                  json_real_value(v) > 0,
                              "%s in %s", keys[k], line);
            }
            n++;
        }
        json_decref(j);
    }
    fclose(f);
    ck_assert_int_eq(n, 4);
    /* the projection embedding does not exist without the projection */
    dgm_st_file *c = ckpt("run");
    ck_assert_int_lt(dgm_st_find(c, "discriminator.y_embed.weight"), 0);
    ck_assert_int_ge(dgm_st_find(c, "generator.y_embed.weight"), 0);
    ck_assert_int_ge(dgm_st_find(c, "heads.cls.fc1.weight"), 0);
    dgm_st_close(c);
}
END_TEST

/* ---- (b) which phase trains what --------------------------------------
 * One training step is one discriminator update then one generator
 * update. A phase's warm-up of 1000 updates makes its first update's
 * learning rate exactly 0 (docs/plugins.md, schedules), so a one-step run
 * with the generator's warm-up is a D step alone and one with the
 * discriminator's warm-up a G step alone. */

START_TEST(head_trains_in_the_discriminator_phase_only)
{
    const char *init[2] = {"train.steps=0", "train.epochs=0"};
    const char *d_step[2] = {"train.steps=1",
                             "phases.generator.optimizer.warmup=1000"};
    const char *g_step[2] = {"train.steps=1",
                             "phases.discriminator.optimizer.warmup=1000"};
    ck_assert_int_eq(train("acgan", "init", init, 2), 0);
    ck_assert_msg(train("acgan", "d", d_step, 2) == 0, "%s", dgm_last_error());
    ck_assert_msg(train("acgan", "g", g_step, 2) == 0, "%s", dgm_last_error());
    dgm_st_file *i = ckpt("init"), *d = ckpt("d"), *g = ckpt("g");
    int n;
    /* a D step: D and the head move, no G weight does */
    ck_assert_double_gt(tq_max_diff(i, d, "heads.cls.", &n), 1e-5);
    ck_assert_int_eq(n, 2);
    ck_assert_double_gt(tq_max_diff(i, d, "discriminator.", &n), 1e-5);
    ck_assert_double_eq(tq_max_diff(i, d, "generator.", &n), 0);
    ck_assert_int_ge(n, 6); /* fc, bn0 (2), deconv1, bn1 (2), deconv2, ... */
    /* a G step: G moves; the head (which the G objective reads) and D are
     * bit-identical */
    ck_assert_double_gt(tq_max_diff(i, g, "generator.", &n), 1e-5);
    ck_assert_double_eq(tq_max_diff(i, g, "heads.cls.", &n), 0);
    ck_assert_int_eq(n, 2);
    ck_assert_double_eq(tq_max_diff(i, g, "discriminator.", &n), 0);

    /* the head still runs in the G phase and its term reaches G: without
     * the G aux term the same G step ends elsewhere */
    write_yaml("noaux", "[discriminator]", false);
    ck_assert_int_eq(train("noaux", "g-noaux", g_step, 2), 0);
    dgm_st_file *gn = ckpt("g-noaux");
    ck_assert_double_gt(tq_max_diff(g, gn, "generator.", &n), 1e-6);

    /* by default (no `phases:`) both objectives read the head, so the G
     * step trains it too: the key is what keeps it out */
    write_yaml("both", "null", true);
    ck_assert_int_eq(train("both", "g-both", g_step, 2), 0);
    dgm_st_file *gb = ckpt("g-both");
    ck_assert_double_gt(tq_max_diff(i, gb, "heads.cls.", &n), 1e-5);
    ck_assert_double_eq(tq_max_diff(i, gb, "discriminator.", &n), 0);
    dgm_st_close(i);
    dgm_st_close(d);
    dgm_st_close(g);
    dgm_st_close(gn);
    dgm_st_close(gb);
}
END_TEST

START_TEST(phase_parameter_lists)
{
    /* the same fact from the built phases: head weights in the
     * discriminator's list only with `phases: [discriminator]`, in both
     * without the key */
    const char *cases[2] = {"[discriminator]", "null"};
    for (int c = 0; c < 2; c++) {
        write_yaml("lists", cases[c], true);
        dgm_registry *reg = registry();
        dgm_experiment *e;
        ck_assert_int_eq(load(reg, "lists", NULL, 0, &e), 0);
        ck_assert_msg(dgm_experiment_build(e) == 0, "%s", dgm_last_error());
        ck_assert_int_eq(e->n_phases, 2);
        for (int p = 0; p < 2; p++) {
            int heads = 0;
            for (int k = 0; k < e->phases[p].n_params; k++)
                heads += starts(e->phases[p].params[k]->name, "heads.cls.");
            ck_assert_int_eq(heads, p == 0 || c == 1 ? 2 : 0);
        }
        dgm_experiment_free(e);
        dgm_registry_free(reg);
    }
}
END_TEST

/* ---- (c), (d) the outputs and the auxiliary term -----------------------
 * The model is driven as the trainer drives it at step 0: the same
 * experiment built afresh (same seed: same weights and random streams),
 * the first batch (shuffle: false), training mode, the step RNG, phase 0
 * then phase 1. Only public entry points and function pointers are used
 * (host_internal.h for the experiment's layout). */

typedef struct fixture {
    dgm_registry *reg;
    dgm_experiment *e;
    dgm_graph *g;
    dgm_tensor *x, *y, *ym;
    dgm_step s;
    dgm_vars io;
} fixture;

static void open_fixture(fixture *f, const char *yaml, const char *const *ov,
                         int n_ov, int64_t n)
{
    memset(f, 0, sizeof *f);
    f->reg = registry();
    ck_assert_msg(load(f->reg, yaml, ov, n_ov, &f->e) == 0, "%s",
                  dgm_last_error());
    ck_assert_msg(dgm_experiment_build(f->e) == 0, "%s", dgm_last_error());
    const dgm_data_info *info = &f->e->info;
    int64_t xs[4] = {n, 1, 28, 28};
    f->x = dgm_tensor_new(info->x_dtype, 4, xs);
    f->y = dgm_tensor_new(info->y_dtype, 1, &n);
    f->ym = dgm_tensor_new(DGM_F32, 1, &n);
    ck_assert(f->x && f->y && f->ym);
    dgm_tensor_fill(f->ym, 1.0);
    int64_t idx[64];
    ck_assert_int_le(n, 64);
    for (int64_t i = 0; i < n; i++)
        idx[i] = i;
    dgm_batch b = {.n = n, .x = f->x, .y = f->y, .y_mask = f->ym};
    const dgm_dataset_iface *di = f->e->data.desc->iface.dataset;
    ck_assert_int_eq(
        di->get(f->e->data.self, DGM_SPLIT_TRAIN, idx, &b, &f->e->rng_data), 0);
    f->g = dgm_graph_new();
    ck_assert_ptr_nonnull(f->g);
}

static void forward(fixture *f, int phase)
{
    dgm_graph *g = f->g;
    dgm_graph_reset(g);
    dgm_graph_set_training(g, true);
    dgm_graph_set_grad(g, true);
    dgm_graph_set_rng(g, &f->e->rng_step);
    f->s = (dgm_step){.g = g,
                      .rng = &f->e->rng_step,
                      .step = 0,
                      .training = true,
                      .host_ = f->e};
    memset(&f->io, 0, sizeof f->io);
    ck_assert_int_eq(dgm_vars_set(&f->io, "x", dgm_input(g, f->x)), 0);
    ck_assert_int_eq(dgm_vars_set(&f->io, "y", dgm_input(g, f->y)), 0);
    ck_assert_int_eq(dgm_vars_set(&f->io, "y_mask", dgm_input(g, f->ym)), 0);
    const dgm_model_iface *mi = f->e->model.desc->iface.model;
    ck_assert_msg(mi->forward(f->e->model.self, &f->s, phase, &f->io) == 0,
                  "%s", dgm_last_error());
}

static void close_fixture(fixture *f)
{
    dgm_graph_free(f->g);
    dgm_tensor_free(f->x);
    dgm_tensor_free(f->y);
    dgm_tensor_free(f->ym);
    dgm_experiment_free(f->e);
    dgm_registry_free(f->reg);
}

static const dgm_tensor *out(fixture *f, const char *name)
{
    dgm_var *v = dgm_vars_get(&f->io, name);
    ck_assert_msg(v != NULL, "no output %s", name);
    return dgm_value(v);
}

static const dgm_tensor *param(fixture *f, const char *name)
{
    dgm_param *p = dgm_params_find(f->e->params, name);
    ck_assert_msg(p != NULL, "no parameter %s", name);
    return p->value;
}

/* |got - want| within 1e-5 absolute + 1e-5 relative (float kernels
 * against a double sum). */
static void near(double got, double want, const char *what, int64_t i)
{
    ck_assert_msg(fabs(got - want) <= 1e-5 + 1e-5 * fabs(want),
                  "%s[%lld]: %.9g, want %.9g", what, (long long)i, got, want);
}

/* Logits d [rows, 1] against the logit head on d_feat's rows from + i
 * (and, when emb is given, the projection <emb[y_i], phi_i>). */
static void check_logits(fixture *f, const dgm_tensor *d, int64_t from,
                         const dgm_tensor *y, int64_t y_from,
                         const dgm_tensor *emb)
{
    const dgm_tensor *feat = out(f, "d_feat");
    const dgm_tensor *w = param(f, "discriminator.head.weight");
    const dgm_tensor *b = param(f, "discriminator.head.bias");
    int64_t F = feat->shape[1];
    ck_assert_int_eq(w->shape[1], F);
    for (int64_t i = 0; i < d->shape[0]; i++) {
        double want = dgm_tensor_get(b, 0);
        int64_t c = emb ? (int64_t)dgm_tensor_get(y, y_from + i) : 0;
        for (int64_t k = 0; k < F; k++) {
            double phi = dgm_tensor_get(feat, (from + i) * F + k);
            want += dgm_tensor_get(w, k) * phi;
            if (emb)
                want += dgm_tensor_get(emb, c * F + k) * phi;
        }
        near(dgm_tensor_get(d, i), want, "logit", i);
    }
}

START_TEST(outputs_have_their_rows_and_values)
{
    const int64_t n = 8;
    fixture f;
    open_fixture(&f, "acgan", NULL, 0, n);
    /* discriminator phase: real rows then fake rows */
    forward(&f, 0);
    const dgm_tensor *feat = out(&f, "d_feat"), *dy = out(&f, "d_y");
    const dgm_tensor *y = out(&f, "y");
    ck_assert_int_eq(feat->ndim, 2);
    ck_assert_int_eq(feat->shape[0], 2 * n);
    ck_assert_int_eq(feat->shape[1], 16 * 7 * 7);
    ck_assert_int_eq(dy->ndim, 1);
    ck_assert_int_eq(dy->shape[0], 2 * n);
    ck_assert_int_eq(dy->dtype, y->dtype);
    int spread = 0;
    for (int64_t i = 0; i < n; i++) {
        ck_assert_double_eq(dgm_tensor_get(dy, i), dgm_tensor_get(y, i));
        ck_assert_double_eq(dgm_tensor_get(y, i), (double)(i % 4));
        double c = dgm_tensor_get(dy, n + i);
        ck_assert(c >= 0 && c < 4 && c == floor(c));
        spread += c != dgm_tensor_get(dy, n);
    }
    ck_assert_int_gt(spread, 0); /* drawn, not a constant */
    /* d_feat is the tensor the logit head reads (no projection here) */
    check_logits(&f, out(&f, "d_real"), 0, NULL, 0, NULL);
    check_logits(&f, out(&f, "d_fake"), n, NULL, 0, NULL);
    /* generator phase: the fake rows only */
    forward(&f, 1);
    feat = out(&f, "d_feat");
    dy = out(&f, "d_y");
    ck_assert_int_eq(feat->shape[0], n);
    ck_assert_int_eq(feat->shape[1], 16 * 7 * 7);
    ck_assert_int_eq(dy->shape[0], n);
    ck_assert_ptr_null(dgm_vars_get(&f.io, "d_real"));
    for (int64_t i = 0; i < n; i++) {
        double c = dgm_tensor_get(dy, i);
        ck_assert(c >= 0 && c < 4 && c == floor(c));
    }
    check_logits(&f, out(&f, "d_fake"), 0, NULL, 0, NULL);
    ck_assert_ptr_null(
        dgm_params_find(f.e->params, "discriminator.y_embed.weight"));
    close_fixture(&f);

    /* with the projection (the conditional default) the logit adds
     * <e_y, phi> on the same features, with d_y's labels */
    write_yaml("proj", "null", false);
    const char *ov[2] = {"model.projection=true", "heads=[]"};
    const char *dobj = "phases.discriminator.objective=[{loss: gan_ns_d, "
                       "inputs: [d_real, d_fake]}]";
    const char *ov3[3] = {ov[0], ov[1], dobj};
    open_fixture(&f, "proj", ov3, 3, n);
    forward(&f, 0);
    const dgm_tensor *emb = param(&f, "discriminator.y_embed.weight");
    dy = out(&f, "d_y");
    check_logits(&f, out(&f, "d_real"), 0, dy, 0, emb);
    check_logits(&f, out(&f, "d_fake"), n, dy, n, emb);
    forward(&f, 1);
    check_logits(&f, out(&f, "d_fake"), 0, out(&f, "d_y"), 0, emb);
    close_fixture(&f);

    /* an unconditional GAN has no labels for its fakes: no outputs */
    const char *unc[4] = {"model.conditional=false", "model.projection=true",
                          "heads=[]", dobj};
    open_fixture(&f, "proj", unc, 4, n);
    for (int p = 0; p < 2; p++) {
        forward(&f, p);
        ck_assert_ptr_nonnull(dgm_vars_get(&f.io, "d_fake"));
        ck_assert_ptr_null(dgm_vars_get(&f.io, "d_feat"));
        ck_assert_ptr_null(dgm_vars_get(&f.io, "d_y"));
    }
    close_fixture(&f);
}
END_TEST

/* The head's logits on d_feat by hand, checked against the head block's
 * output, and the mean cross-entropy against d_y. */
static double hand_ce(fixture *f)
{
    const dgm_tensor *feat = out(f, "d_feat"), *dy = out(f, "d_y");
    dgm_var *hv = dgm_block_forward(f->e->heads[0].blk, f->g,
                                    dgm_vars_get(&f->io, "d_feat"));
    ck_assert_msg(hv != NULL, "%s", dgm_last_error());
    const dgm_tensor *cls = dgm_value(hv);
    const dgm_tensor *w = param(f, "heads.cls.fc1.weight");
    const dgm_tensor *b = param(f, "heads.cls.fc1.bias");
    int64_t rows = feat->shape[0], F = feat->shape[1];
    ck_assert_int_eq(cls->shape[0], rows);
    ck_assert_int_eq(cls->shape[1], 4);
    double ce = 0;
    for (int64_t i = 0; i < rows; i++) {
        double l[4], mx = -INFINITY, se = 0;
        for (int c = 0; c < 4; c++) {
            l[c] = dgm_tensor_get(b, c);
            for (int64_t k = 0; k < F; k++)
                l[c] += dgm_tensor_get(w, c * F + k) *
                        dgm_tensor_get(feat, i * F + k);
            near(dgm_tensor_get(cls, i * 4 + c), l[c], "cls", i);
            mx = l[c] > mx ? l[c] : mx;
        }
        for (int c = 0; c < 4; c++)
            se += exp(l[c] - mx);
        ce += mx + log(se) - l[(int)dgm_tensor_get(dy, i)];
    }
    return ce / (double)rows;
}

static double logged(const char *tag, const char *key)
{
    char p[1400], line[4096];
    snprintf(p, sizeof p, "%s/%s/metrics.jsonl", root, tag);
    FILE *f = fopen(p, "r");
    ck_assert_msg(f != NULL, "%s", p);
    double v = NAN;
    while (isnan(v) && fgets(line, sizeof line, f)) {
        json_t *j = json_loads(line, 0, NULL);
        ck_assert(j != NULL);
        json_t *x = json_object_get(j, key);
        if (x)
            v = json_number_value(x);
        json_decref(j);
    }
    fclose(f);
    ck_assert_msg(!isnan(v), "no %s in %s", key, p);
    return v;
}

START_TEST(aux_term_equals_a_hand_computation)
{
    /* One training step whose discriminator update has rate 0 (warm-up),
     * so the generator phase of step 0 sees the initial D and head too:
     * both logged aux terms are then functions of the initial weights,
     * the first batch and the step RNG, which the fixture replays. */
    const char *ov[2] = {"train.steps=1",
                         "phases.discriminator.optimizer.warmup=1000"};
    ck_assert_msg(train("acgan", "one", ov, 2) == 0, "%s", dgm_last_error());
    fixture f;
    open_fixture(&f, "acgan", ov, 2, 8);
    forward(&f, 0);
    ck_assert_int_eq(out(&f, "d_feat")->shape[0], 16);
    double ce_d = hand_ce(&f);
    forward(&f, 1);
    ck_assert_int_eq(out(&f, "d_feat")->shape[0], 8);
    double ce_g = hand_ce(&f);
    close_fixture(&f);
    /* weights 2 and 1 as in acgan_yaml; a fresh head is far from sure */
    ck_assert_double_gt(ce_d, 0.1);
    ck_assert_double_gt(ce_g, 0.1);
    near(logged("one", "discriminator/aux"), 2.0 * ce_d, "D aux", 0);
    near(logged("one", "generator/aux"), ce_g, "G aux", 0);
    near(logged("one", "discriminator"),
         logged("one", "discriminator/gan_ns_d") + 2.0 * ce_d, "D total", 0);
}
END_TEST

/* ---- (e) refusals ------------------------------------------------------ */

#define ASSERT_MSG_HAS(s)                                                      \
    ck_assert_msg(strstr(dgm_last_error(), (s)) != NULL,                       \
                  "\"%s\" not in \"%s\"", (s), dgm_last_error())

/* Load <tag>.yaml written with head phases `phases`; returns the code. */
static int load_phases(const char *tag, const char *phases, bool g_aux)
{
    write_yaml(tag, phases, g_aux);
    dgm_registry *reg = registry();
    dgm_experiment *e = NULL;
    int rc = load(reg, tag, NULL, 0, &e);
    dgm_experiment_free(e);
    dgm_registry_free(reg);
    return rc;
}

START_TEST(bad_phases_are_refused)
{
    /* a typo: the place, the did-you-mean and the model's phases */
    ck_assert_int_eq(load_phases("typo", "[discriminator, generatr]", true),
                     DGM_EKEY);
    ASSERT_MSG_HAS("typo.yaml:23:30: ");
    ASSERT_MSG_HAS("heads[0].phases[1]: head 'cls': model 'gan' has no "
                   "phase 'generatr' (did you mean 'generator'?) (its "
                   "phases: discriminator, generator)");
    /* a phase whose objective does not read the head cannot train it */
    ck_assert_int_eq(load_phases("unread", "[generator]", false), DGM_ECONFIG);
    ASSERT_MSG_HAS("unread.yaml:23:");
    ASSERT_MSG_HAS("heads[0].phases[0]: head 'cls': phase 'generator' "
                   "cannot train it: no term of phases.generator.objective "
                   "reads 'cls'");
    /* a mask counts as reading */
    write_yaml("mask", "[discriminator, generator]", false);
    const char *mask[1] = {"phases.generator.objective=[{loss: gan_ns_g, "
                           "inputs: [d_fake], mask: cls}]"};
    dgm_registry *reg = registry();
    dgm_experiment *e = NULL;
    ck_assert_msg(load(reg, "mask", mask, 1, &e) == 0, "%s", dgm_last_error());
    dgm_experiment_free(e);
    dgm_registry_free(reg);
    /* each phase once */
    ck_assert_int_eq(
        load_phases("twice", "[discriminator, discriminator]", true), DGM_EDUP);
    ASSERT_MSG_HAS("heads[0].phases[1]: head 'cls': phase 'discriminator' "
                   "is listed twice");
    ck_assert_int_eq(load_phases("empty", "[]", true), DGM_ECONFIG);
    ASSERT_MSG_HAS("heads[0].phases: head 'cls': an empty list trains it "
                   "in no phase");
    ck_assert_int_ne(load_phases("scalar", "discriminator", true), 0);
    ASSERT_MSG_HAS("heads[0].phases");
    ASSERT_MSG_HAS("a list of strings");
    /* both phases listed is the default spelled out */
    ck_assert_int_eq(load_phases("ok", "[generator, discriminator]", true), 0);
}
END_TEST

START_TEST(one_phase_models_name_their_phase)
{
    /* a one-phase model's only phase is `train`: listing it is the
     * default, any other name is refused */
    static const char vae[] =
        "name: tiny_vae\n"
        "threads: 1\n"
        "data: {plugin: idx, path: %s/data, train_images: train-img,\n"
        "       train_labels: train-lab, test_images: test-img,\n"
        "       test_labels: test-lab, batch_size: 8}\n"
        "model: {plugin: vae, latent: 2, encoder: {plugin: mlp, hidden: "
        "[8]},\n"
        "        decoder: {plugin: mlp, hidden: [8]}}\n"
        "heads: [{name: cls, input: mu, out: [4], block: {plugin: mlp},\n"
        "         phases: %s}]\n"
        "objective:\n"
        "  - {loss: bernoulli_nll, inputs: [logits, x]}\n"
        "  - {loss: gaussian_kl, inputs: [mu, logvar]}\n"
        "  - {loss: cross_entropy, inputs: [cls, y]}\n";
    const char *lists[2] = {"[train]", "[trian]"};
    for (int c = 0; c < 2; c++) {
        char p[1200], text[4096];
        snprintf(p, sizeof p, "%s/vae.yaml", root);
        snprintf(text, sizeof text, vae, root, lists[c]);
        FILE *f = fopen(p, "w");
        ck_assert(f != NULL);
        fputs(text, f);
        fclose(f);
        dgm_registry *reg = registry();
        dgm_experiment *e = NULL;
        int rc = load(reg, "vae", NULL, 0, &e);
        if (c == 0) {
            ck_assert_msg(rc == 0, "%s", dgm_last_error());
            ck_assert_msg(dgm_experiment_build(e) == 0, "%s", dgm_last_error());
            int heads = 0;
            for (int k = 0; k < e->phases[0].n_params; k++)
                heads += starts(e->phases[0].params[k]->name, "heads.cls.");
            ck_assert_int_eq(heads, 2);
        } else {
            ck_assert_int_eq(rc, DGM_EKEY);
            ASSERT_MSG_HAS("heads[0].phases[0]: head 'cls': model 'vae' has "
                           "no phase 'trian' (did you mean 'train'?) (its "
                           "phases: train)");
        }
        dgm_experiment_free(e);
        dgm_registry_free(reg);
    }
}
END_TEST

START_TEST(model_settings_are_refused)
{
    /* projection: false without conditional: true */
    const char *ov[1] = {"model.conditional=false"};
    dgm_registry *reg = registry();
    dgm_experiment *e;
    ck_assert_int_eq(load(reg, "acgan", ov, 1, &e), 0);
    ck_assert_int_eq(dgm_experiment_build(e), DGM_ECONFIG);
    ASSERT_MSG_HAS("model.projection: gan: projection: false only applies "
                   "to a conditional model");
    ASSERT_MSG_HAS("acgan.yaml");
    dgm_experiment_free(e);
    /* a head on d_feat of an unconditional model: no such output */
    const char *unc[2] = {"model.conditional=false", "model.projection=true"};
    ck_assert_int_eq(load(reg, "acgan", unc, 2, &e), 0);
    ck_assert_int_eq(dgm_experiment_build(e), DGM_ENOTFOUND);
    ASSERT_MSG_HAS("heads[0].input: head 'cls': model 'gan' has no output "
                   "'d_feat' in any phase");
    dgm_experiment_free(e);
    dgm_registry_free(reg);
}
END_TEST

static Suite *acgan_suite(void)
{
    Suite *s = suite_create("acgan");
    struct {
        const char *name;
        const TTest *test;
    } cases[] = {
        {"train", acgan_trains_without_nan},
        {"phases", head_trains_in_the_discriminator_phase_only},
        {"lists", phase_parameter_lists},
        {"outputs", outputs_have_their_rows_and_values},
        {"aux_term", aux_term_equals_a_hand_computation},
        {"bad_phases", bad_phases_are_refused},
        {"one_phase", one_phase_models_name_their_phase},
        {"model", model_settings_are_refused},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        TCase *t = tcase_create(cases[i].name);
        tcase_add_checked_fixture(t, setup, teardown);
        tcase_set_timeout(t, 300);
        tcase_add_test(t, cases[i].test);
        suite_add_tcase(s, t);
    }
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(acgan_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
