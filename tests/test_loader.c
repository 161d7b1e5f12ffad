/* test_loader.c - the trainer's batches (host/loader.c): a run with
 * data.prefetch 0 and one with 4 end bit for bit alike, a prefetched run
 * stopped and resumed too; an error raised on the loader's thread fails
 * the step that needed the batch, with its message; prefetch out of range
 * is refused naming the key. Through the dgm executable, on the tp_rgb
 * test dataset (with noise from the data stream) and the flip and noise
 * augments (the augment stream). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "ck_run.h"
#include "cli.h"
#include "st_diff.h"

static char root[1024];
static char out[1 << 16], err[1 << 16];

static const char feed_yaml[] =
    "name: feed\n"
    "seed: 3\n"
    "threads: 1\n"
    "data: {plugin: tp_rgb, size: 8, channels: 3, train: 60, test: 16,\n"
    "       noise: 0.05, batch_size: 16}\n"
    "augment: [{plugin: flip, p: 0.5}, {plugin: noise, std: 0.1}]\n"
    "model:\n"
    "  plugin: vae\n"
    "  latent: 3\n"
    "  encoder: {plugin: mlp, hidden: [16]}\n"
    "  decoder: {plugin: mlp, hidden: [16]}\n"
    "optimizer: {plugin: adam, lr: 0.01}\n"
    "train: {steps: 22, log_every: 1, eval_every: 7, checkpoint_every: 5,\n"
    "        sample_every: 6, samples: 4}\n"
    "metrics: [{plugin: elbo}]\n";

static void setup(void)
{
    const char *t = getenv("DGM_TEST_TMP");
    snprintf(root, sizeof root, "%s/loader-%ld", t ? t : "/tmp",
             (long)getpid());
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", root);
    ck_assert_int_eq(system(cmd), 0);
    char y[1200];
    snprintf(y, sizeof y, "%s/feed.yaml", root);
    FILE *f = fopen(y, "w");
    ck_assert_ptr_nonnull(f);
    fputs(feed_yaml, f);
    fclose(f);
}

static void teardown(void)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", root);
}

/* dgm ARGS with the test plugins on the path; its exit status. */
static int run(const char *fmt, const char *a, const char *b)
{
    char args[4096];
    snprintf(args, sizeof args, fmt, a, b);
    return tc_cli("DGM_PLUGIN_PATH=" DGM_TEST_PLUGIN_DIR, args, out, sizeof out,
                  err, sizeof err);
}

static json_t *summary(const char *dir)
{
    char p[1300];
    snprintf(p, sizeof p, "%s/summary.json", dir);
    json_error_t e;
    json_t *j = json_load_file(p, 0, &e);
    ck_assert_msg(j != NULL, "%s: %s", p, e.text);
    return j;
}

static void ckpt(char *p, size_t n, const char *dir)
{
    snprintf(p, n, "%s/checkpoints/last.safetensors", dir);
}

START_TEST(prefetch_is_bit_identical)
{
    char y[1200], a[1200], b[1200], pa[1300], pb[1300];
    snprintf(y, sizeof y, "%s/feed.yaml", root);
    snprintf(a, sizeof a, "%s/p0", root);
    snprintf(b, sizeof b, "%s/p4", root);
    ck_assert_msg(run("run %s --run-dir %s --quiet data.prefetch=0", y, a) == 0,
                  "%s", err);
    ck_assert_msg(run("run %s --run-dir %s --quiet data.prefetch=4", y, b) == 0,
                  "%s", err);
    ckpt(pa, sizeof pa, a);
    ckpt(pb, sizeof pb, b);
    /* parameters, Adam's moments, rng.data, rng.aug, rng.step, the step */
    tq_assert_same_checkpoint(pa, pb, 8);
    json_t *sa = summary(a), *sb = summary(b);
    double ea = json_real_value(
               json_object_get(json_object_get(sa, "final"), "neg_elbo")),
           eb = json_real_value(
               json_object_get(json_object_get(sb, "final"), "neg_elbo"));
    ck_assert_msg(ea == eb && ea > 0, "neg_elbo %.9g vs %.9g", ea, eb);
    /* the time spent getting batches is part of the training time */
    double dt = json_real_value(json_object_get(sb, "data_time_s"));
    double tt = json_real_value(json_object_get(sb, "train_time_s"));
    ck_assert_msg(json_is_real(json_object_get(sb, "data_time_s")) && dt >= 0 &&
                      dt <= tt,
                  "data_time_s %g of train_time_s %g", dt, tt);
    json_decref(sa);
    json_decref(sb);
    /* The saved config keeps the depth the run used. */
    char p[1300];
    snprintf(p, sizeof p, "%s/config.yaml", b);
    FILE *f = fopen(p, "r");
    ck_assert_ptr_nonnull(f);
    size_t got = fread(out, 1, sizeof out - 1, f);
    out[got] = '\0';
    fclose(f);
    ck_assert_msg(strstr(out, "prefetch: 4"), "%s", out);
}
END_TEST

START_TEST(prefetched_resume_is_bit_identical)
{
    char y[1200], a[1200], b[1200], pa[1300], pb[1300];
    snprintf(y, sizeof y, "%s/feed.yaml", root);
    snprintf(a, sizeof a, "%s/full", root);
    snprintf(b, sizeof b, "%s/split", root);
    ck_assert_msg(run("run %s --run-dir %s --quiet data.prefetch=0", y, a) == 0,
                  "%s", err);
    /* stopped mid-epoch (4 steps an epoch), past a checkpoint_every */
    ck_assert_msg(run("run %s --run-dir %s --quiet --stop-after 11 "
                      "data.prefetch=4",
                      y, b) == 0,
                  "%s", err);
    json_t *s = summary(b);
    ck_assert_int_eq(json_integer_value(json_object_get(s, "steps")), 11);
    json_decref(s);
    ck_assert_msg(run("run --resume %s --quiet%s", b, "") == 0, "%s", err);
    ckpt(pa, sizeof pa, a);
    ckpt(pb, sizeof pb, b);
    tq_assert_same_checkpoint(pa, pb, 8);
}
END_TEST

START_TEST(thread_error_fails_its_step)
{
    char y[1200], a[1200];
    snprintf(y, sizeof y, "%s/feed.yaml", root);
    snprintf(a, sizeof a, "%s/fail", root);
    /* The thread builds batches 0-4 at once; the third one fails, and
     * the run must still have done the two steps before it. */
    int rc = run("run %s --run-dir %s --quiet data.prefetch=4 "
                 "'augment=[{plugin: tp_fail_aug, fail_at: 3}]'",
                 y, a);
    ck_assert_int_ne(rc, 0);
    ck_assert_msg(strstr(err, "augment 'tp_fail_aug': tp_fail_aug: failing "
                              "at call 3"),
                  "%s", err);
    json_t *s = summary(a);
    ck_assert_str_eq(json_string_value(json_object_get(s, "status")), "failed");
    ck_assert_int_eq(json_integer_value(json_object_get(s, "steps")), 2);
    json_decref(s);
}
END_TEST

START_TEST(prefetch_out_of_range_is_refused)
{
    char y[1200], a[1200];
    struct stat st;
    snprintf(y, sizeof y, "%s/feed.yaml", root);
    snprintf(a, sizeof a, "%s/bad", root);
    ck_assert_int_eq(run("run %s --run-dir %s --quiet data.prefetch=65", y, a),
                     2);
    ck_assert_msg(strstr(err, "data.prefetch") &&
                      strstr(err, "prefetch must be in [0, 64], got 65"),
                  "%s", err);
    ck_assert_int_ne(run("config %s data.prefetch=two%s", y, ""), 0);
    ck_assert_msg(strstr(err, "data.prefetch"), "%s", err);
    ck_assert_int_ne(stat(a, &st), 0); /* no half-made run */
}
END_TEST

int main(void)
{
    Suite *s = suite_create("loader");
    TCase *tc =
        tq_case(s, "loader", prefetch_is_bit_identical,
                prefetched_resume_is_bit_identical, thread_error_fails_its_step,
                prefetch_out_of_range_is_refused);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    return tq_run(s, "installed", false);
}
