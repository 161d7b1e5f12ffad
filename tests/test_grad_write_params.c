/* test_grad_write_params.c - parameter gradients written by their first
 * contribution in the trainer (no per-step zero fill): a few steps of a
 * tiny DCGAN (conv, transposed conv, batch norm, linear; the
 * discriminator read twice per step, real and fake, and the generator in
 * both phases) and of a 2-layer char LSTM and GRU (embedding, RNN,
 * linear) leave the same checkpoint, byte for byte, as with zero-filled
 * gradients accumulated into (DGM_GRAD_ZERO=1). A second use of a
 * parameter that stored instead of adding, or an element left unwritten
 * (NaN in the sanitizer build), changes the weights. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ck_run.h"
#include "dgm/dgm.h"
#include "dgm/host.h"
#include "quadrants.h"
#include "scratch.h"
#include "st_diff.h"
#include "train.h"

static char root[1024]; /* this process's scratch folder */

static const char gan_yaml[] = "name: tiny_gan_fw\n"
                               "seed: 5\n" TQ_TINY_GAN TQ_TINY_GAN_ADAM
                               "train: {steps: 3, log_every: 1, samples: 0}\n"
                               "metrics: []\n";

static void setup(void)
{
    const char *t = getenv("DGM_TEST_TMP");
    snprintf(root, sizeof root, "%s/gwp-%ld", t ? t : "/tmp", (long)getpid());
    tc_sh("mkdir -p '%s'", root);
}

static void teardown(void)
{
    tc_sh("rm -rf '%s'", root);
}

/* Train yaml (in root) into root/<tag>, zero-filled or not. */
static void train(const char *yaml, const char *tag, bool zero_fill)
{
    dgm_registry *reg;
    ck_assert_int_eq(dgm_registry_new(&reg), 0);
    ck_assert_int_eq(dgm_registry_add_dir(reg, DGM_PLUGIN_DIR), 0);
    ck_assert_int_ge(dgm_registry_scan(reg), 0);
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/%s", root, tag);
    if (zero_fill)
        setenv("DGM_GRAD_ZERO", "1", 1);
    int rc = tc_train(reg, yaml, dir, NULL, 0);
    unsetenv("DGM_GRAD_ZERO");
    ck_assert_msg(rc == 0, "%s: %s", tag, dgm_last_error());
    dgm_registry_free(reg);
}

static void assert_same(const char *a, const char *b, int min_tensors)
{
    char p1[1300], p2[1300];
    snprintf(p1, sizeof p1, "%s/%s/checkpoints/last.safetensors", root, a);
    snprintf(p2, sizeof p2, "%s/%s/checkpoints/last.safetensors", root, b);
    tq_assert_same_checkpoint(p1, p2, min_tensors);
}

START_TEST(dcgan_steps_same_bytes)
{
    ck_assert_int_eq(tq_write_data(root, 64, 16, false), 0);
    ck_assert_int_eq(tq_write_yaml(root, gan_yaml), 0);
    char yaml[1200];
    snprintf(yaml, sizeof yaml, "%s/tiny.yaml", root);
    train(yaml, "first_write", false);
    train(yaml, "zero_fill", true);
    assert_same("first_write", "zero_fill", 10);
}
END_TEST

START_TEST(char_rnn_steps_same_bytes)
{
    const char *cell = _i ? "gru" : "lstm";
    char path[1200], yaml[2400];
    snprintf(path, sizeof path, "%s/corpus.txt", root);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    for (int i = 0; i < 30; i++)
        fputs("the quick brown fox jumps over the lazy dog. ", f);
    fclose(f);
    snprintf(yaml, sizeof yaml,
             "name: tiny_char_fw\nseed: 3\nthreads: 1\n"
             "data: {plugin: text, path: '%s/corpus.txt', seq_len: 16, "
             "batch_size: 8, val_fraction: 0.2}\n"
             "model: {plugin: char_rnn, cell: %s, embedding: 8, hidden: 16, "
             "layers: 2}\n"
             "optimizer: {plugin: adam, lr: 1.0e-2}\n"
             "train: {steps: 3, log_every: 1}\n"
             "metrics: []\n",
             root, cell);
    snprintf(path, sizeof path, "%s/char.yaml", root);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(yaml, f);
    fclose(f);
    train(path, "first_write", false);
    train(path, "zero_fill", true);
    assert_same("first_write", "zero_fill", 8);
}
END_TEST

static Suite *grad_write_params_suite(void)
{
    Suite *s = suite_create("grad_write_params");
    TCase *tc = tq_case(s, "trainer", dcgan_steps_same_bytes);
    tcase_add_loop_test(tc, char_rnn_steps_same_bytes, 0, 2);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(grad_write_params_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
