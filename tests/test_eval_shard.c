/* test_eval_shard.c - the sharded-evaluation ABI (2.3) in one process:
 * dgm_eval_shard gives the whole of the items and dgm_eval_sum is the
 * identity, for a shard-aware metric and for one that is not; bad
 * arguments are refused with DGM_EINVAL; a corruption of strength 0 around
 * a shard-aware metric gives its figures exactly (its draws are keyed by
 * the batch, whatever ran before); summary.json records the final
 * evaluation's time. The 2-rank figures are checked by
 * tests/test_mpi_eval.sh. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "ck_run.h"
#include "cli.h"
#include "dgm/error.h"
#include "quadrants.h"

static char root[1024];
static char out[1 << 16], err[1 << 16];

static const char tiny_yaml[] =
    "name: tiny\n"
    "seed: 3\n"
    "threads: 1\n"
    "plugin_path: [\"%s\"]\n"
    "data: {plugin: idx, path: %s/data, train_images: train-img, "
    "train_labels: train-lab, test_images: test-img, test_labels: test-lab, "
    "batch_size: 16}\n"
    "model:\n"
    "  plugin: vae\n"
    "  latent: 2\n"
    "  encoder: {plugin: mlp, hidden: [8]}\n"
    "  decoder: {plugin: mlp, hidden: [8]}\n"
    "optimizer: {plugin: adam, lr: 0.01}\n"
    "train: {steps: 2, log_every: 1, samples: 0}\n";

static void setup(void)
{
    const char *t = getenv("DGM_TEST_TMP");
    snprintf(root, sizeof root, "%s/eval-shard-%ld", t ? t : "/tmp",
             (long)getpid());
    char cmd[1400], d[1200];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/data'", root);
    ck_assert_int_eq(system(cmd), 0);
    snprintf(d, sizeof d, "%s/data", root);
    ck_assert_int_eq(tq_write_bands(d, "train-img", "train-lab", 32, 7), 0);
    ck_assert_int_eq(tq_write_bands(d, "test-img", "test-lab", 16, 99), 0);
    char y[1200], text[4096];
    snprintf(y, sizeof y, "%s/tiny.yaml", root);
    snprintf(text, sizeof text, tiny_yaml, DGM_TEST_PLUGIN_DIR, root);
    FILE *f = fopen(y, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static void teardown(void)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", root);
}

/* Train tiny.yaml with `metrics=<metrics>` into root/<tag>; its "final"
 * figures (a new reference). */
static json_t *run(const char *tag, const char *metrics)
{
    char args[4096];
    snprintf(args, sizeof args,
             "run %s/tiny.yaml --quiet --run-dir %s/%s 'metrics=%s'", root,
             root, tag, metrics);
    int st = tc_cli(NULL, args, out, sizeof out, err, sizeof err);
    ck_assert_msg(st == 0, "exit %d: %.2000s", st, err);
    char p[1400];
    snprintf(p, sizeof p, "%s/%s/summary.json", root, tag);
    json_error_t e;
    json_t *s = json_load_file(p, 0, &e);
    ck_assert_msg(s != NULL, "%s: %s", p, e.text);
    json_t *fin = json_incref(json_object_get(s, "final"));
    /* the final evaluation's time is recorded beside the figures */
    double es = json_number_value(json_object_get(s, "eval_time_s"));
    ck_assert_msg(es > 0 && es < 600, "eval_time_s %g", es);
    json_decref(s);
    ck_assert_ptr_nonnull(fin);
    return fin;
}

static double fig(const json_t *fin, const char *name)
{
    const json_t *v = json_object_get(fin, name);
    ck_assert_msg(json_is_number(v), "no figure %s", name);
    return json_number_value(v);
}

/* One process: the share is everything, the sum the identity, whether
 * the metric is shard-aware or not. */
START_TEST(one_process_walks_everything)
{
    json_t *f = run("whole", "[{plugin: shard_probe, n: 10, batch: 3}, "
                             "{plugin: rank0_probe, n: 7, batch: 2}]");
    ck_assert_double_eq(fig(f, "shard_probe/start"), 0);
    ck_assert_double_eq(fig(f, "shard_probe/count"), 10);
    ck_assert_double_eq(fig(f, "shard_probe/items"), 10);
    ck_assert_double_eq(fig(f, "shard_probe/index_sum"), 45);
    /* four batches, one uniform draw in [0, 1) each */
    double d = fig(f, "shard_probe/draws");
    ck_assert_msg(d > 0 && d < 4, "draws %g", d);
    ck_assert_double_eq(fig(f, "rank0_probe/start"), 0);
    ck_assert_double_eq(fig(f, "rank0_probe/count"), 7);
    ck_assert_double_eq(fig(f, "rank0_probe/items"), 7);
    ck_assert_double_eq(fig(f, "rank0_probe/index_sum"), 21);
    json_decref(f);
}
END_TEST

START_TEST(bad_arguments_refused)
{
    json_t *f = run("bad", "[{plugin: shard_probe, bad: true}]");
    ck_assert_double_eq(fig(f, "shard_probe/bad_n"), DGM_EINVAL);
    ck_assert_double_eq(fig(f, "shard_probe/bad_batch"), DGM_EINVAL);
    ck_assert_double_eq(fig(f, "shard_probe/bad_sum"), DGM_EINVAL);
    ck_assert_double_eq(fig(f, "shard_probe/empty_sum"), 0);
    json_decref(f);
}
END_TEST

/* The corrupted run of a shard-aware metric draws, batch for batch, what
 * the clean run drew (keyed draws), so strength 0 gives its figures; a
 * metric in front of it (iwae_nll, drawing much) changes nothing. */
START_TEST(keyed_draws_under_wrappers)
{
    json_t *a = run("keyed-a", "[{plugin: iwae_nll, k: 3, batch_size: 5}, "
                               "{plugin: shard_probe, n: 9, batch: 2, "
                               "corrupt: [{noise: 0}, {noise: 0.5}]}]");
    double d = fig(a, "shard_probe/draws");
    ck_assert_double_eq(fig(a, "shard_probe/draws@noise=0"), d);
    ck_assert_double_eq(fig(a, "shard_probe/draws@noise=0.5"), d);
    ck_assert_double_eq(fig(a, "shard_probe/index_sum@noise=0.5"), 36);
    json_decref(a);
    /* the same metric at the same place after another metric: same draws */
    json_t *b = run("keyed-b", "[{plugin: elbo, batch_size: 3}, "
                               "{plugin: shard_probe, n: 9, batch: 2}]");
    ck_assert_double_eq(fig(b, "shard_probe/draws"), d);
    json_decref(b);
}
END_TEST

static Suite *eval_shard_suite(void)
{
    Suite *s = suite_create("eval_shard");
    TCase *tc = tq_case(s, "abi", one_process_walks_everything,
                        bad_arguments_refused, keyed_draws_under_wrappers);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    return s;
}

int main(void)
{
    return tq_run(eval_shard_suite(), "installed", false);
}
