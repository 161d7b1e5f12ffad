/* test_gan.c - the gan model and the dcgan blocks through the host API: a
 * tiny DCGAN on generated 28x28 IDX data trains with every GAN loss (and
 * diffaug) without NaN, the two phases update disjoint parameters, the
 * EMA buffers follow their formula, clip_d clips, conditional sampling
 * runs, and the blocks fit 32x32 images. */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "ck_run.h"
#include "dgm/dgm.h"
#include "dgm/host.h"
#include "dgm/io.h"
#include "quadrants.h"
#include "scratch.h"
#include "st_diff.h"
#include "train.h"

static char root[1024]; /* this process's scratch folder */

static const char tiny_yaml[] = "name: tiny_gan\n"
                                "seed: 3\n" TQ_TINY_GAN TQ_TINY_GAN_ADAM
                                "train: {steps: 4, log_every: 1, samples: 4}\n";

static void setup(void)
{
    const char *t = getenv("DGM_TEST_TMP");
    snprintf(root, sizeof root, "%s/gan-%ld", t ? t : "/tmp", (long)getpid());
    tc_sh("mkdir -p '%s'", root);
    ck_assert_int_eq(tq_write_data(root, 64, 16, false), 0);
    ck_assert_int_eq(tq_write_yaml(root, tiny_yaml), 0);
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
    ck_assert_msg(
        dgm_registry_load_file(reg, DGM_TEST_PLUGIN_DIR "/tp_gan_cond.so") == 0,
        "%s", dgm_last_error());
    return reg;
}

/* Train tiny.yaml with the overrides into <root>/<tag>; returns the code
 * of dgm_experiment_run. */
static int train(const char *tag, const char *const *ov, int n_ov)
{
    dgm_registry *reg = registry();
    char path[1200], dir[1200];
    snprintf(path, sizeof path, "%s/tiny.yaml", root);
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

static const char *const loss_names[] = {"ns", "minimax", "hinge",
                                         "wasserstein", "lsgan"};

START_TEST(every_loss_trains_without_nan)
{
    const char *l = loss_names[_i];
    char od[256], og[256], tag[64];
    snprintf(od, sizeof od,
             "phases.discriminator.objective=[{loss: gan_%s_d, inputs: "
             "[d_real, d_fake]}]",
             l);
    snprintf(og, sizeof og,
             "phases.generator.objective=[{loss: gan_%s_g, inputs: "
             "[d_fake]}]",
             l);
    snprintf(tag, sizeof tag, "loss-%s", l);
    /* diffaug on every D input with hinge, clipping with wasserstein,
     * self-attention in both networks and spectral norm in D with lsgan */
    const char *ov[5] = {od, og, "augment=[{plugin: diffaug}]",
                         "model.clip_d=0.05", NULL};
    int n_ov = 2;
    if (!strcmp(l, "hinge"))
        n_ov = 3;
    if (!strcmp(l, "wasserstein"))
        ov[2] = ov[3], n_ov = 3;
    if (!strcmp(l, "lsgan")) {
        ov[2] = "model.generator={plugin: dcgan_generator, width: 8, "
                "attention_at: 14}";
        ov[3] = "model.discriminator={plugin: dcgan_discriminator, width: "
                "8, attention_at: 14, spectral_norm: true, batch_norm: "
                "false}";
        ov[4] = "model.head_spectral_norm=true";
        n_ov = 5;
    }
    int rc = train(tag, ov, n_ov);
    ck_assert_msg(rc == 0, "%s: %s", l, dgm_last_error());
    char p[1400], line[4096];
    snprintf(p, sizeof p, "%s/%s/metrics.jsonl", root, tag);
    FILE *f = fopen(p, "r");
    ck_assert(f != NULL);
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        json_t *j = json_loads(line, 0, NULL);
        ck_assert(j != NULL);
        json_t *d = json_object_get(j, "discriminator");
        json_t *g = json_object_get(j, "generator");
        if (d && g) {
            ck_assert_msg(isfinite(json_real_value(d)) &&
                              isfinite(json_real_value(g)),
                          "%s: %s", l, line);
            n++;
        }
        json_decref(j);
    }
    fclose(f);
    ck_assert_int_eq(n, 4);
    /* both networks moved, and the samples are finite images in [-1, 1] */
    const char *init_ov[7] = {"train.steps=0", "train.epochs=0"};
    for (int i = 0; i < n_ov; i++)
        init_ov[2 + i] = ov[i];
    ck_assert_int_eq(train("init", init_ov, 2 + n_ov), 0);
    dgm_st_file *a = ckpt("init"), *b = ckpt(tag);
    int k;
    ck_assert_double_gt(tq_max_diff(a, b, "generator.", &k), 0);
    ck_assert_double_gt(tq_max_diff(a, b, "discriminator.", &k), 0);
    dgm_st_close(a);
    dgm_st_close(b);
}
END_TEST

START_TEST(phases_update_disjoint_parameters)
{
    /* With one network's learning rate at 0 only the other phase's updates
     * change anything: a D update must leave every G weight as it was, and
     * the reverse. */
    const char *init_ov[2] = {"train.steps=0", "train.epochs=0"};
    const char *d_only[1] = {
        "param_groups=[{params: 'generator.*', lr_mult: 0}]"};
    const char *g_only[1] = {
        "param_groups=[{params: 'discriminator.*', lr_mult: 0}]"};
    ck_assert_int_eq(train("init", init_ov, 2), 0);
    ck_assert_msg(train("d-only", d_only, 1) == 0, "%s", dgm_last_error());
    ck_assert_msg(train("g-only", g_only, 1) == 0, "%s", dgm_last_error());
    dgm_st_file *i = ckpt("init"), *d = ckpt("d-only"), *g = ckpt("g-only");
    int ng, nd;
    ck_assert_double_eq(tq_max_diff(i, d, "generator.", &ng), 0);
    ck_assert_double_gt(tq_max_diff(i, d, "discriminator.", &nd), 1e-4);
    ck_assert_int_ge(ng, 5); /* fc, bn0 (2), deconv1, bn1 (2), deconv2 (2) */
    ck_assert_int_ge(nd, 5); /* conv1 (2), conv2, bn2 (2), head (2) */
    ck_assert_double_eq(tq_max_diff(i, g, "discriminator.", &nd), 0);
    ck_assert_double_gt(tq_max_diff(i, g, "generator.", &ng), 1e-4);
    dgm_st_close(i);
    dgm_st_close(d);
    dgm_st_close(g);
}
END_TEST

/* For every generator tensor: ema_new == d * ema_old + (1 - d) * w_new. */
static void check_ema(dgm_st_file *old, dgm_st_file *now, double decay,
                      bool old_is_init)
{
    int n = 0;
    for (int i = 0; i < dgm_st_count(now); i++) {
        const char *name = dgm_st_name_at(now, i);
        if (!starts(name, "generator."))
            continue;
        char en[512];
        snprintf(en, sizeof en, "ema.%s", name);
        dgm_tensor *w, *e, *eo;
        ck_assert_int_eq(dgm_st_get(now, name, &w), 0);
        ck_assert_msg(dgm_st_get(now, en, &e) == 0, "%s", dgm_last_error());
        /* before training the average is the weights themselves */
        ck_assert_int_eq(dgm_st_get(old, old_is_init ? name : en, &eo), 0);
        for (int64_t k = 0; k < dgm_tensor_numel(w); k++) {
            double want = decay * dgm_tensor_get(eo, k) +
                          (1 - decay) * dgm_tensor_get(w, k);
            double got = dgm_tensor_get(e, k);
            ck_assert_msg(fabs(got - want) <= 1e-6 + 1e-6 * fabs(want),
                          "%s[%lld]: %.9g, want %.9g", en, (long long)k, got,
                          want);
        }
        n++;
    }
    ck_assert_int_ge(n, 9); /* weights and running statistics */
}

START_TEST(ema_follows_its_formula)
{
    const char *o0[3] = {"model.ema=0.75", "train.steps=0", "train.epochs=0"};
    const char *o1[2] = {"model.ema=0.75", "train.steps=1"};
    const char *o2[2] = {"model.ema=0.75", "train.steps=2"};
    ck_assert_int_eq(train("ema0", o0, 3), 0);
    ck_assert_int_eq(train("ema1", o1, 2), 0);
    ck_assert_int_eq(train("ema2", o2, 2), 0);
    dgm_st_file *a = ckpt("ema0"), *b = ckpt("ema1"), *c = ckpt("ema2");
    check_ema(a, b, 0.75, true);
    check_ema(b, c, 0.75, false);
    /* and it lags: the average differs from the weights after an update */
    dgm_tensor *w, *e;
    ck_assert_int_eq(dgm_st_get(c, "generator.fc0.weight", &w), 0);
    ck_assert_int_eq(dgm_st_get(c, "ema.generator.fc0.weight", &e), 0);
    double d = 0;
    for (int64_t k = 0; k < dgm_tensor_numel(w); k++)
        d += fabs(dgm_tensor_get(w, k) - dgm_tensor_get(e, k));
    ck_assert_double_gt(d, 0);
    /* a run that starts from a checkpoint (init:) starts its average from
     * the loaded weights, also when a head's shape probe ran the model
     * before training */
    char init[1400];
    snprintf(init, sizeof init, "+init=[{path: '%s/ema2'}]", root);
    const char *o3[4] = {
        "model.ema=0.75", "train.steps=1", init,
        "+heads=[{name: h, input: d_fake, out: [2], block: {plugin: "
        "mlp}}]"};
    ck_assert_msg(train("ema3", o3, 4) == 0, "%s", dgm_last_error());
    dgm_st_file *f = ckpt("ema3");
    check_ema(c, f, 0.75, true);
    dgm_st_close(f);
    /* without ema there are no such buffers */
    dgm_st_file *plain;
    const char *p0[1] = {"train.steps=1"};
    ck_assert_int_eq(train("plain", p0, 1), 0);
    plain = ckpt("plain");
    ck_assert_int_lt(dgm_st_find(plain, "ema.generator.fc0.weight"), 0);
    dgm_st_close(plain);
    dgm_st_close(a);
    dgm_st_close(b);
    dgm_st_close(c);
}
END_TEST

START_TEST(clip_d_clips_every_discriminator_weight)
{
    const char *ov[3] = {
        "model.clip_d=0.01",
        "phases.discriminator.objective=[{loss: gan_wasserstein_d, inputs: "
        "[d_real, d_fake]}]",
        "phases.generator.objective=[{loss: gan_wasserstein_g, inputs: "
        "[d_fake]}]"};
    ck_assert_msg(train("clip", ov, 3) == 0, "%s", dgm_last_error());
    dgm_st_file *f = ckpt("clip");
    int n = 0;
    double biggest = 0, g_biggest = 0;
    for (int i = 0; i < dgm_st_count(f); i++) {
        const char *name = dgm_st_name_at(f, i);
        bool d = starts(name, "discriminator.");
        if ((!d && !starts(name, "generator.")) || strstr(name, "running_"))
            continue;
        dgm_tensor *t;
        ck_assert_int_eq(dgm_st_get(f, name, &t), 0);
        for (int64_t k = 0; k < dgm_tensor_numel(t); k++) {
            double v = fabs(dgm_tensor_get(t, k));
            if (d) {
                ck_assert_msg(v <= 0.01f, "%s[%lld] = %g", name, (long long)k,
                              v);
                biggest = v > biggest ? v : biggest;
            } else {
                g_biggest = v > g_biggest ? v : g_biggest;
            }
        }
        n += d;
    }
    ck_assert_int_ge(n, 5);
    /* weights were clipped (bn scales start near 1), G's were not */
    ck_assert_double_eq_tol(biggest, 0.01, 1e-7);
    ck_assert_double_gt(g_biggest, 0.5);
    dgm_st_close(f);
}
END_TEST

START_TEST(bad_settings_are_refused)
{
    const char *ema[1] = {"model.ema=1"};
    int rc = train("bad-ema", ema, 1);
    ck_assert_int_eq(rc, DGM_ERANGE);
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "model.ema"));
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "tiny.yaml"));
    /* a generator that cannot give the data's shape */
    const char *gen[1] = {"model.generator={plugin: dcgan_generator, "
                          "channels: [32, 16, 8]}"};
    rc = train("bad-gen", gen, 1);
    ck_assert_int_eq(rc, DGM_ERANGE);
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "3 entries for 2 stages"));
}
END_TEST

/* A final figure of a run's summary.json. */
static double figure(const char *tag, const char *name)
{
    char p[1400];
    snprintf(p, sizeof p, "%s/%s/summary.json", root, tag);
    json_error_t err;
    json_t *j = json_load_file(p, 0, &err);
    ck_assert_msg(j != NULL, "%s: %s", p, err.text);
    json_t *v = json_object_get(json_object_get(j, "final"), name);
    ck_assert_msg(v != NULL, "%s: no final figure %s", p, name);
    double x = json_number_value(v);
    json_decref(j);
    return x;
}

START_TEST(conditional_sampling)
{
    /* tp_gan_cond (tests/plugins) samples through dgm_eval_sample_cond */
    const char *ov[4] = {"model.conditional=true", "model.ema=0.5",
                         "metrics=[{plugin: tp_gan_cond}]",
                         "model.head_spectral_norm=true"};
    ck_assert_msg(train("cond", ov, 4) == 0, "%s", dgm_last_error());
    ck_assert_double_eq(figure("cond", "rc"), 0);
    ck_assert_double_eq(figure("cond", "n"), 8);
    ck_assert_double_eq(figure("cond", "ndim"), 4);
    ck_assert_double_eq(figure("cond", "side"), 28);
    ck_assert_double_eq(figure("cond", "finite"), 1);
    ck_assert_double_ge(figure("cond", "min"), -1);
    ck_assert_double_le(figure("cond", "max"), 1);
    ck_assert_double_lt(figure("cond", "min"), figure("cond", "max"));
    ck_assert_double_eq(figure("cond", "bad_label_rc"), DGM_ERANGE);
    /* the generator and discriminator have their label embeddings */
    dgm_st_file *f = ckpt("cond");
    dgm_tensor *t;
    ck_assert_int_eq(dgm_st_get(f, "generator.y_embed.weight", &t), 0);
    ck_assert_int_eq(t->shape[0], 4);
    ck_assert_int_eq(t->shape[1], 8); /* embed_dim 0: latent */
    ck_assert_int_eq(dgm_st_get(f, "discriminator.y_embed.weight", &t), 0);
    ck_assert_int_eq(t->shape[1], 16 * 7 * 7);
    /* its spectral norm's power-iteration vectors, and the head's */
    ck_assert_int_ge(dgm_st_find(f, "discriminator.y_embed.weight_u"), 0);
    ck_assert_int_ge(dgm_st_find(f, "discriminator.head.weight_v"), 0);
    dgm_st_close(f);
    /* an unconditional GAN says it cannot */
    const char *uo[2] = {"train.steps=1", "metrics=[{plugin: tp_gan_cond}]"};
    ck_assert_int_eq(train("uncond", uo, 2), 0);
    ck_assert_double_eq(figure("uncond", "rc"), DGM_EUNSUPPORTED);
}
END_TEST

/* Create a block from YAML text with dgm_build_new. */
static int block(dgm_registry *reg, dgm_params *ps, const char *yaml,
                 dgm_shape in, dgm_shape *out, dgm_block **blk, dgm_build **b,
                 dgm_config **cfg)
{
    ck_assert_int_eq(dgm_config_parse(cfg, yaml, "test"), 0);
    ck_assert_int_eq(dgm_build_new(b, reg, ps, 1), 0);
    return dgm_block_create(*b, *cfg, "net", &in, out, blk);
}

START_TEST(blocks_fit_32x32_and_refuse_odd_sizes)
{
    dgm_registry *reg = registry();
    dgm_params *ps = dgm_params_new(), *pd = dgm_params_new();
    dgm_build *bg, *bd, *bx;
    dgm_config *cg, *cd, *cx;
    dgm_block *g, *d, *x;
    dgm_shape out = {3, {3, 32, 32}};
    ck_assert_int_eq(block(reg, ps, "{plugin: dcgan_generator, width: 16}",
                           (dgm_shape){1, {10}}, &out, &g, &bg, &cg),
                     0);
    dgm_shape feat = {0};
    ck_assert_int_eq(block(reg, pd, "{plugin: dcgan_discriminator, width: 16}",
                           (dgm_shape){3, {3, 32, 32}}, &feat, &d, &bd, &cd),
                     0);
    /* three stages: 16 -> 32 -> 64 channels, 4x4 features */
    ck_assert_int_eq(feat.ndim, 1);
    ck_assert_int_eq(feat.dim[0], 64 * 4 * 4);
    ck_assert_ptr_nonnull(dgm_params_find(ps, "net.deconv3.weight"));
    ck_assert_ptr_nonnull(dgm_params_find(pd, "net.conv3.weight"));
    dgm_graph *gr = dgm_graph_new();
    dgm_rng rng;
    dgm_rng_seed(&rng, 5);
    dgm_graph_set_rng(gr, &rng);
    int64_t zs[2] = {4, 10};
    dgm_var *img = dgm_block_forward(g, gr, dgm_randn(gr, 2, zs));
    ck_assert_ptr_nonnull(img);
    ck_assert_int_eq(dgm_value(img)->shape[1], 3);
    ck_assert_int_eq(dgm_value(img)->shape[3], 32);
    dgm_var *f = dgm_block_forward(d, gr, img);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(dgm_value(f)->shape[1], 64 * 4 * 4);
    /* 28x28 with the defaults is the DCGAN: 128@7x7 then 64@14x14 */
    dgm_params *p2 = dgm_params_new();
    out = (dgm_shape){3, {1, 28, 28}};
    dgm_build *b2;
    dgm_config *c2;
    dgm_block *g2;
    ck_assert_int_eq(block(reg, p2, "{plugin: dcgan_generator}",
                           (dgm_shape){1, {64}}, &out, &g2, &b2, &c2),
                     0);
    dgm_param *fc = dgm_params_find(p2, "net.fc0.weight");
    ck_assert_ptr_nonnull(fc);
    ck_assert_int_eq(fc->value->shape[0], 128 * 7 * 7);
    ck_assert_int_eq(dgm_params_find(p2, "net.deconv1.weight")->value->shape[1],
                     64);
    ck_assert_ptr_null(dgm_params_find(p2, "net.fc0.bias")); /* bn follows */
    /* an odd image side cannot halve */
    out = (dgm_shape){3, {1, 27, 27}};
    int rc = block(reg, ps, "{plugin: dcgan_generator}", (dgm_shape){1, {8}},
                   &out, &x, &bx, &cx);
    ck_assert_int_eq(rc, DGM_ESHAPE);
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "dcgan_generator"));
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "[1, 27, 27]"));
    dgm_graph_free(gr);
    dgm_build_free(bg);
    dgm_build_free(bd);
    dgm_build_free(bx);
    dgm_build_free(b2);
    dgm_config_free(cg);
    dgm_config_free(cd);
    dgm_config_free(cx);
    dgm_config_free(c2);
    dgm_params_free(ps);
    dgm_params_free(p2);
    dgm_params_free(pd);
    dgm_registry_free(reg);
}
END_TEST

static Suite *gan_suite(void)
{
    Suite *s = suite_create("gan");
    TCase *t = tcase_create("losses");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_set_timeout(t, 120);
    tcase_add_loop_test(t, every_loss_trains_without_nan, 0, 5);
    suite_add_tcase(s, t);
    t = tq_case(s, "phases", phases_update_disjoint_parameters);
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_set_timeout(t, 120);
    t = tq_case(s, "ema", ema_follows_its_formula);
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_set_timeout(t, 120);
    t = tq_case(s, "clip_d", clip_d_clips_every_discriminator_weight);
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_set_timeout(t, 120);
    t = tq_case(s, "refusals", bad_settings_are_refused);
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_set_timeout(t, 120);
    t = tq_case(s, "conditional", conditional_sampling);
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_set_timeout(t, 120);
    t = tq_case(s, "blocks", blocks_fit_32x32_and_refuse_odd_sizes);
    tcase_set_timeout(t, 120);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(gan_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
