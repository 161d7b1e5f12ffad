/* test_gan_reuse.c - the gan model's reuse_fake (the fake batch generated
 * once per step, in the discriminator phase, and reused for the
 * generator's loss through the trainer's keeps_graph hook), on a tiny
 * DCGAN over generated 28x28 IDX data: the generator's gradient equals a
 * fresh generator forward's for the same z, the discriminator phase is
 * unchanged, the default is unchanged, and conditional models with
 * n_critic > 1 train with it. */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dgm/dgm.h"
#include "dgm/host.h"
#include "dgm/io.h"
#include "host_internal.h"
#include "quadrants.h"
#include "scratch.h"
#include "st_diff.h"
#include "train.h"

static char root[1024]; /* this process's scratch folder */

/* SGD on both networks: the discriminator's rate 1e-30 (no float32 weight
 * moves, so the generator's loss sees the same D in the trainer and in the hand
 * computation), the generator's 1 (its update is minus its gradient). */
static const char tiny_yaml[] = "name: tiny_gan_reuse\n"
                                "seed: 11\n" TQ_TINY_GAN "phases:\n"
                                "  discriminator:\n"
                                "    optimizer: {plugin: sgd, lr: 1.0e-30}\n"
                                "  generator:\n"
                                "    optimizer: {plugin: sgd, lr: 1.0}\n"
                                "train: {steps: 1, log_every: 1, samples: 0}\n"
                                "metrics: []\n";

static void setup(void)
{
    const char *t = getenv("DGM_TEST_TMP");
    snprintf(root, sizeof root, "%s/ganr-%ld", t ? t : "/tmp", (long)getpid());
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
    return reg;
}

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

/* (a) One trained step with reuse_fake moves each generator weight by
 * minus its gradient (SGD, rate 1), the gradient of the generator's loss
 * through the discriminator phase's generator forward. The same gradient
 * by hand: the experiment built afresh (same seed: same weights, same
 * step RNG, so the same first draw z), no reuse, the generator phase's
 * forward alone (G(z) on a new tape), softplus(-d_fake) averaged,
 * backward. A fresh z in the generator phase, or a gradient that does not
 * reach G through the kept forward, fails it. */
START_TEST(reused_forward_gives_the_fresh_forwards_gradient)
{
    const char *ov[] = {"model.reuse_fake=true"};
    ck_assert_msg(train("reuse", ov, 1) == 0, "%s", dgm_last_error());
    dgm_st_file *after = ckpt("reuse");

    dgm_registry *reg = registry();
    char path[1200];
    snprintf(path, sizeof path, "%s/tiny.yaml", root);
    dgm_experiment *e = NULL;
    ck_assert_msg(dgm_experiment_load(&e, reg, path, NULL, 0) == 0, "%s",
                  dgm_last_error());
    ck_assert_msg(dgm_experiment_build(e) == 0, "%s", dgm_last_error());
    int64_t xs[4] = {16, 1, 28, 28};
    dgm_tensor *x = dgm_tensor_new(DGM_F32, 4, xs);
    ck_assert_ptr_nonnull(x);
    dgm_graph *g = dgm_graph_new();
    ck_assert_ptr_nonnull(g);
    dgm_graph_set_training(g, true);
    dgm_graph_set_rng(g, &e->rng_step);
    dgm_step s = {.g = g, .rng = &e->rng_step, .training = true, .host_ = e};
    dgm_vars io = {0};
    ck_assert_int_eq(dgm_vars_set(&io, "x", dgm_input(g, x)), 0);
    const dgm_model_iface *mi = e->model.desc->iface.model;
    ck_assert_msg(mi->forward(e->model.self, &s, 1, &io) == 0, "%s",
                  dgm_last_error());
    dgm_var *loss = dgm_mean_all(
        g, dgm_softplus(g, dgm_neg(g, dgm_vars_get(&io, "d_fake"))));
    dgm_params_zero_grad(e->params);
    ck_assert_msg(dgm_backward(g, loss) == 0, "%s", dgm_last_error());

    int compared = 0;
    double worst = 0, largest = 0;
    for (int i = 0; i < dgm_params_count(e->params); i++) {
        dgm_param *p = dgm_params_at(e->params, i);
        if (strncmp(p->name, "generator.", 10) || p->role != DGM_ROLE_WEIGHT)
            continue;
        dgm_tensor *w1;
        ck_assert_msg(dgm_st_get(after, p->name, &w1) == 0, "%s", p->name);
        const float *w0 = dgm_tensor_f32(p->value),
                    *gr = dgm_tensor_f32(p->grad);
        const float *a = dgm_tensor_f32(w1);
        int64_t n = dgm_tensor_numel(p->value);
        ck_assert_int_eq(dgm_tensor_numel(w1), n);
        for (int64_t j = 0; j < n; j++) {
            double step = (double)w0[j] - (double)a[j];
            double d = fabs(step - gr[j]) / fmax(1.0, fabs(gr[j]));
            worst = fmax(worst, d);
            largest = fmax(largest, fabs(gr[j]));
        }
        compared++;
    }
    ck_assert_int_ge(compared, 4);
    ck_assert_msg(largest > 1e-4, "the generator's gradient is all ~0 (%g)",
                  largest);
    ck_assert_msg(worst <= 1e-6,
                  "reused forward's gradient differs from a fresh forward's "
                  "by %g (largest gradient %g)",
                  worst, largest);
    dgm_graph_free(g);
    dgm_tensor_free(x);
    dgm_experiment_free(e);
    dgm_registry_free(reg);
    dgm_st_close(after);
}
END_TEST

/* (b) The discriminator phase draws and uses the same fake batch with and
 * without reuse (a tape changes no value), so after one step (Adam on D)
 * the discriminators agree; the generators do not (with reuse G's loss
 * reads the z drawn in the discriminator phase, not a second draw).
 * reuse_fake: false is the default, byte for byte. */
START_TEST(discriminator_phase_and_default_unchanged)
{
    const char *adam = "phases.discriminator.optimizer={plugin: adam, lr: "
                       "2.0e-3, beta1: 0.5}";
    const char *on[] = {adam, "model.reuse_fake=true"};
    const char *off[] = {adam, "model.reuse_fake=false"};
    ck_assert_msg(train("on", on, 2) == 0, "%s", dgm_last_error());
    ck_assert_msg(train("off", off, 2) == 0, "%s", dgm_last_error());
    dgm_st_file *a = ckpt("on"), *b = ckpt("off");
    int n = 0;
    double dd = tq_max_diff(a, b, "discriminator.", &n);
    ck_assert_int_ge(n, 4);
    ck_assert_msg(dd <= 1e-6, "discriminators differ by %g", dd);
    double dg = tq_max_diff(a, b, "generator.", &n);
    ck_assert_msg(dg > 1e-5, "generators agree (%g): was the fake reused?", dg);
    dgm_st_close(a);
    dgm_st_close(b);
    const char *dflt[] = {adam};
    ck_assert_msg(train("default", dflt, 1) == 0, "%s", dgm_last_error());
    char p1[1300], p2[1300];
    snprintf(p1, sizeof p1, "%s/off/checkpoints/last.safetensors", root);
    snprintf(p2, sizeof p2, "%s/default/checkpoints/last.safetensors", root);
    tq_assert_same_checkpoint(p1, p2, 10);
}
END_TEST

/* (c) Conditional (the fakes' labels are kept with the fake), n_critic 2
 * (only the last discriminator repeat's graph goes on), hinge losses:
 * three steps train without a non-finite loss. */
START_TEST(conditional_with_repeats_trains)
{
    const char *ov[] = {
        "model.reuse_fake=true",
        "model.conditional=true",
        "phases.discriminator.repeat=2",
        "phases.discriminator.optimizer={plugin: adam, lr: 2.0e-3}",
        "phases.discriminator.objective=[{loss: gan_hinge_d, inputs: "
        "[d_real, d_fake]}]",
        "phases.generator.objective=[{loss: gan_hinge_g, inputs: [d_fake]}]",
        "phases.generator.optimizer={plugin: adam, lr: 2.0e-3}",
        "train.steps=3",
    };
    ck_assert_msg(train("cond", ov, 8) == 0, "%s", dgm_last_error());
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("gan_reuse");
    TCase *t = tcase_create("reuse_fake");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_set_timeout(t, 300);
    tcase_add_test(t, reused_forward_gives_the_fresh_forwards_gradient);
    tcase_add_test(t, discriminator_phase_and_default_unchanged);
    tcase_add_test(t, conditional_with_repeats_trains);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    SRunner *r = srunner_create(suite());
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
