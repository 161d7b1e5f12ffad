/* test_compare.c - dgm compare on run and sweep directories the test
 * writes (tests/support/compare_fixture.h, with known figures): means and
 * sample deviations against values worked out by hand; failed, diverged
 * and unfinished runs counted; the best marked by the direction rule and
 * its overrides; plain runs and sweeps grouped into variants; bad input
 * refused with the file named. The output formats and the HTML report are
 * in test_compare_format.c. */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "cfg_check.h"
#include "ck_run.h"
#include "compare.h"
#include "compare_check.h"
#include "compare_fixture.h"
#include "dgm/dgm.h"
#include "tool_files.h"

/* ---- statistics ------------------------------------------------------------
 */

START_TEST(test_sweep_stats)
{
    dgm__compare *c = load(tc_cmp_sweep, NULL);
    ck_assert_int_eq(c->n_variants, 3);
    ck_assert_int_eq(c->n_runs, 10);
    ck_assert_str_eq(c->variants[0].label, "latent=2");
    ck_assert_str_eq(c->variants[1].label, "latent=10");
    ck_assert_str_eq(c->variants[2].label, "latent=20");
    /* default metrics: the final figures in order, then train_loss */
    ck_assert_int_eq(c->n_metrics, 4);
    ck_assert_str_eq(c->metrics[0], "neg_elbo");
    ck_assert_str_eq(c->metrics[3], "train_loss");
    ck_assert_int_eq(c->better[metric(c, "neg_elbo")], DGM_BETTER_LOWER);
    ck_assert_int_eq(c->better[metric(c, "elbo")], DGM_BETTER_HIGHER);
    ck_assert_int_eq(c->better[metric(c, "accuracy")], DGM_BETTER_HIGHER);
    const dgm__cmp_variant *a = variant(c, "latent=2"),
                           *b = variant(c, "latent=10"),
                           *z = variant(c, "latent=20");
    ck_assert_int_eq(a->n_runs, 3);
    ck_assert_int_eq(a->done, 3);
    ck_assert_int_eq(b->n_runs, 3);
    ck_assert_int_eq(b->done, 2);
    ck_assert_int_eq(b->failed, 1);
    ck_assert_int_eq(z->n_runs, 4);
    ck_assert_int_eq(z->done, 1);
    ck_assert_int_eq(z->diverged, 1);
    ck_assert_int_eq(z->running, 1);
    ck_assert_int_eq(z->pending, 1);
    ck_assert_int_eq(z->failed, 0);
    for (int i = 0; i < tc_cmp_n_expect; i++) {
        const dgm__cmp_stat *st =
            &variant(c, tc_cmp_expect[i].label)
                 ->stat[metric(c, tc_cmp_expect[i].metric)];
        ck_assert_int_eq(st->n, tc_cmp_expect[i].n);
        CLOSE(st->mean, tc_cmp_expect[i].mean);
        if (isnan(tc_cmp_expect[i].sd))
            ck_assert(isnan(st->sd));
        else
            CLOSE(st->sd, tc_cmp_expect[i].sd);
        ck_assert_msg(st->best == tc_cmp_expect[i].best, "%s %s best=%d",
                      tc_cmp_expect[i].label, tc_cmp_expect[i].metric,
                      st->best);
    }
    /* the group is the swept values without seed */
    ck_assert_int_eq(json_object_size(a->group), 1);
    ck_assert_int_eq(
        json_integer_value(json_object_get(a->group, "model.latent")), 2);
    dgm__compare_free(c);
}
END_TEST

START_TEST(test_direction_rule)
{
    static const struct {
        const char *name;
        dgm_better b;
    } r[] = {{"neg_elbo", DGM_BETTER_LOWER},
             {"elbo", DGM_BETTER_HIGHER},
             {"neg_elbo/gaussian_kl", DGM_BETTER_LOWER},
             {"iwae_nll", DGM_BETTER_LOWER},
             {"train_loss", DGM_BETTER_LOWER},
             {"recon_error", DGM_BETTER_LOWER},
             {"fid", DGM_BETTER_LOWER},
             {"kid", DGM_BETTER_LOWER},
             {"kid_std", DGM_BETTER_NONE},
             {"bits_per_char", DGM_BETTER_LOWER},
             {"perplexity", DGM_BETTER_LOWER},
             {"accuracy", DGM_BETTER_HIGHER},
             {"classifier_accuracy", DGM_BETTER_HIGHER},
             {"Precision", DGM_BETTER_HIGHER},
             {"recall", DGM_BETTER_HIGHER},
             {"steps_per_s", DGM_BETTER_NONE},
             {"wall_time_s", DGM_BETTER_LOWER},
             {"lossy", DGM_BETTER_NONE},
             {"xyz", DGM_BETTER_NONE}};
    for (size_t i = 0; i < sizeof r / sizeof r[0]; i++)
        ck_assert_msg(dgm__compare_better(r[i].name) == r[i].b, "%s: %s",
                      r[i].name,
                      dgm_better_name(dgm__compare_better(r[i].name)));
    /* --higher train_loss: the best moves to the highest mean (latent 2),
     * --lower accuracy to the lowest (latent 2 too) */
    const char *hi[] = {"train_loss"}, *lo[] = {"accuracy"};
    dgm__cmp_options o = {
        .higher = hi, .n_higher = 1, .lower = lo, .n_lower = 1};
    dgm__compare *c = load(tc_cmp_sweep, &o);
    int m = metric(c, "train_loss"), k = metric(c, "accuracy");
    ck_assert_int_eq(c->better[m], DGM_BETTER_HIGHER);
    ck_assert_int_eq(c->better[k], DGM_BETTER_LOWER);
    ck_assert(variant(c, "latent=2")->stat[m].best);
    ck_assert(!variant(c, "latent=10")->stat[m].best);
    ck_assert(variant(c, "latent=2")->stat[k].best);
    ck_assert(!variant(c, "latent=20")->stat[k].best);
    dgm__compare_free(c);
}
END_TEST

/* Runs that recorded directions (summary.json "better", from the metrics'
 * declarations) are ranked by them, not by the guess from the name:
 * error_rate recorded higher, kid_std recorded lower (the guess says
 * lower and none). --lower still overrides a recorded direction. Summaries
 * without "better" (written before directions were recorded) fall back
 * to the guess. */
START_TEST(test_recorded_direction)
{
    char base[1200], d[1400];
    snprintf(base, sizeof base, "%s/recorded/vae", tc_cmp_root);
    static const struct {
        const char *t;
        int latent;
        double err, sd;
    } r[] = {{"20260101-000001", 4, 0.2, 1}, {"20260101-000002", 8, 0.8, 2}};
    for (int i = 0; i < 2; i++) {
        snprintf(d, sizeof d, "%s/%s", base, r[i].t);
        tc_cmp_config(d, "vae", r[i].latent, 0.1, 0);
        char s[1024];
        snprintf(s, sizeof s,
                 "{\"name\": \"vae\", \"status\": \"completed\", "
                 "\"train_loss\": 1, \"final\": {\"error_rate\": %g, "
                 "\"kid_std\": %g}, \"better\": {\"error_rate\": "
                 "\"higher\", \"kid_std\": \"lower\", \"train_loss\": "
                 "\"lower\"}}\n",
                 r[i].err, r[i].sd);
        tc_cmp_put(s, "%s/summary.json", d);
    }
    dgm__compare *c = load(base, NULL);
    int e = metric(c, "error_rate"), k = metric(c, "kid_std");
    ck_assert_int_eq(dgm__compare_better("error_rate"), DGM_BETTER_LOWER);
    ck_assert_int_eq(dgm__compare_better("kid_std"), DGM_BETTER_NONE);
    ck_assert_int_eq(c->better[e], DGM_BETTER_HIGHER);
    ck_assert_int_eq(c->better[k], DGM_BETTER_LOWER);
    ck_assert(variant(c, "model.latent=8")->stat[e].best);
    ck_assert(!variant(c, "model.latent=4")->stat[e].best);
    ck_assert(variant(c, "model.latent=4")->stat[k].best);
    dgm__compare_free(c);

    const char *lo[] = {"error_rate"};
    dgm__cmp_options o = {.lower = lo, .n_lower = 1};
    c = load(base, &o);
    e = metric(c, "error_rate");
    ck_assert_int_eq(c->better[e], DGM_BETTER_LOWER);
    ck_assert(variant(c, "model.latent=4")->stat[e].best);
    dgm__compare_free(c);

    /* the sweep's summaries record no direction: the guess */
    c = load(tc_cmp_sweep, NULL);
    ck_assert_int_eq(c->better[metric(c, "neg_elbo")], DGM_BETTER_LOWER);
    ck_assert_int_eq(c->better[metric(c, "elbo")], DGM_BETTER_HIGHER);
    ck_assert_int_eq(c->better[metric(c, "accuracy")], DGM_BETTER_HIGHER);
    ck_assert_int_eq(c->better[metric(c, "train_loss")], DGM_BETTER_LOWER);
    dgm__compare_free(c);
}
END_TEST

START_TEST(test_metric_choice)
{
    const char *ms[] = {"accuracy", "steps"};
    dgm__cmp_options o = {.metrics = ms, .n_metrics = 2};
    dgm__compare *c = load(tc_cmp_sweep, &o);
    ck_assert_int_eq(c->n_metrics, 2);
    ck_assert_str_eq(c->metrics[0], "accuracy");
    /* a top-level number: steps is 3 in every done summary, no direction */
    ck_assert_int_eq(c->better[1], DGM_BETTER_NONE);
    const dgm__cmp_stat *st = &variant(c, "latent=2")->stat[1];
    ck_assert_int_eq(st->n, 3);
    CLOSE(st->mean, 3);
    CLOSE(st->sd, 0);
    ck_assert(!st->best);
    dgm__compare_free(c);
}
END_TEST

/* ---- plain runs
 * --------------------------------------------------------------- */

START_TEST(test_plain_runs)
{
    char vae[1300];
    snprintf(vae, sizeof vae, "%s/vae", tc_cmp_runs);
    dgm__compare *c = load(vae, NULL);
    /* 5 runs (latest is a link), the config differences name variants */
    ck_assert_int_eq(c->n_runs, 5);
    ck_assert_int_eq(c->n_variants, 3);
    const dgm__cmp_variant *a = variant(c, "model.latent=4 optimizer.lr=0.1");
    const dgm__cmp_variant *b = variant(c, "model.latent=4 optimizer.lr=0.01");
    const dgm__cmp_variant *d = variant(c, "model.latent=8 optimizer.lr=0.1");
    int m = metric(c, "neg_elbo");
    ck_assert_int_eq(a->done, 2);
    CLOSE(a->stat[m].mean, 11);
    CLOSE(a->stat[m].sd, 1.4142135623730951); /* sqrt(2) */
    ck_assert(a->stat[m].best);
    CLOSE(b->stat[m].mean, 20);
    ck_assert_int_eq(d->n_runs, 2);
    ck_assert_int_eq(d->done, 1);
    ck_assert_int_eq(d->running, 1);
    /* the run without summary.json is a note naming it */
    ck_assert_int_eq(c->n_notes, 1);
    ck_assert_ptr_nonnull(strstr(c->notes[0], "20260101-000005"));
    ck_assert_ptr_nonnull(strstr(c->notes[0], "summary.json"));
    dgm__compare_free(c);

    /* the whole folder: two experiment names, labels carry the name */
    c = load(tc_cmp_runs, NULL);
    ck_assert_int_eq(c->n_variants, 4);
    variant(c, "vae model.latent=4 optimizer.lr=0.1");
    variant(c, "<b>&odd</b>");
    dgm__compare_free(c);

    /* --group-by merges the two learning rates of latent 4 */
    const char *g[] = {"model.latent"};
    dgm__cmp_options o = {.group_by = g, .n_group_by = 1};
    c = load(vae, &o);
    ck_assert_int_eq(c->n_variants, 2);
    a = variant(c, "model.latent=4");
    ck_assert_int_eq(a->done, 3);
    /* 10 12 20: mean 14, squares 16 + 4 + 36 = 56, / 2 = 28 */
    CLOSE(a->stat[m].mean, 14);
    CLOSE(a->stat[m].sd, 5.2915026221291814);
    ck_assert_str_eq(
        json_string_value(json_object_get(a->group, "model.latent")), "4");
    dgm__compare_free(c);

    /* a sweep and runs together, grouped by a key both have */
    const char *both[2] = {tc_cmp_sweep, vae};
    ck_assert_int_eq(dgm__compare_load(&c, both, 2, &o), 0);
    ck_assert_int_eq(c->n_variants, 5); /* 2 10 20 4 8 */
    ck_assert_int_eq(c->n_runs, 15);
    dgm__compare_free(c);
}
END_TEST

/* Two seed-only sweeps of one experiment whose sweep-wide overrides differ
 * (sweep.yaml: freeze [] against [enc.*] plus a key only one sets) are two
 * variants, labelled by those settings; a third sweep with the first's
 * settings joins the first's variant. */
static void seed_sweep(const char *dir, const char *fixed, const double *nll)
{
    char m[4096];
    size_t len = (size_t)snprintf(
        m, sizeof m,
        "{\"format\": 1, \"name\": \"ft\", \"experiment\": "
        "\"/x/ft.yaml\", \"launcher\": \"local\", \"created\": "
        "\"2026-11-29T06:00:00Z\", \"trials\": [\n");
    for (int i = 0; i < 2; i++) {
        char name[64], d[2048], fin[128];
        snprintf(name, sizeof name, "%03d-seed=%d", i, i);
        len += (size_t)snprintf(
            m + len, sizeof m - len,
            "%s{\"index\": %d, \"name\": \"%s\", \"overrides\": "
            "[\"seed=%d\"], \"params\": {\"seed\": %d}, \"seed\": %d, "
            "\"run_dir\": \"trials/%s\", \"status\": \"done\", "
            "\"exit_code\": 0, \"message\": null}\n",
            i ? "," : "", i, name, i, i, i, name);
        snprintf(d, sizeof d, "%s/trials/%s", dir, name);
        tc_cmp_mkdirs(d);
        snprintf(fin, sizeof fin, "\"neg_elbo\": %g", nll[i]);
        tc_cmp_summary(d, "completed", fin, nll[i]);
    }
    snprintf(m + len, sizeof m - len, "]}\n");
    tc_cmp_put(m, "%s/manifest.json", dir);
    tc_cmp_put(fixed, "%s/sweep.yaml", dir);
}

START_TEST(test_sweeps_apart)
{
    char base[1200], a[1300], b[1300], a2[1300];
    snprintf(base, sizeof base, "%s/apart", tc_cmp_root);
    snprintf(a, sizeof a, "%s/a", base);
    snprintf(b, sizeof b, "%s/b", base);
    snprintf(a2, sizeof a2, "%s/a2", base);
    seed_sweep(a, "name: ft\nseed: 0\nfreeze: []\nsweep: {seeds: [0, 1]}\n",
               (double[]){260, 262});
    seed_sweep(b,
               "name: ft\nseed: 0\nfreeze: [enc.*]\nfreeze_bn_stats: "
               "true\nsweep: {seeds: [0, 1, 2]}\n",
               (double[]){290, 294});
    seed_sweep(a2, "name: ft\nseed: 5\nfreeze: []\nsweep: {seeds: [3]}\n",
               (double[]){264, 266});
    dgm__compare *c = load(base, NULL);
    ck_assert_int_eq(c->n_variants, 2);
    const dgm__cmp_variant *va =
        variant(c, "freeze=[] freeze_bn_stats=(absent)");
    const dgm__cmp_variant *vb =
        variant(c, "freeze=[enc.*] freeze_bn_stats=true");
    ck_assert_int_eq(va->n_runs, 4);
    ck_assert_int_eq(vb->n_runs, 2);
    int m = metric(c, "neg_elbo");
    CLOSE(va->stat[m].mean, 263);
    CLOSE(vb->stat[m].mean, 292);
    dgm__compare_free(c);

    /* a difference inside a list shows the list whole */
    char lists[1200], l1[1300], l2[1300];
    snprintf(lists, sizeof lists, "%s/lists", tc_cmp_root);
    snprintf(l1, sizeof l1, "%s/l1", lists);
    snprintf(l2, sizeof l2, "%s/l2", lists);
    seed_sweep(l1, "name: ft\nobjective: [{loss: a, weight: 1}]\n",
               (double[]){1, 2});
    seed_sweep(l2, "name: ft\nobjective: [{loss: a, weight: 2}]\n",
               (double[]){3, 4});
    c = load(lists, NULL);
    ck_assert_int_eq(c->n_variants, 2);
    ck_assert_int_eq(variant(c, "objective=[{loss: a, weight: 1}]")->n_runs, 2);
    ck_assert_int_eq(variant(c, "objective=[{loss: a, weight: 2}]")->n_runs, 2);
    dgm__compare_free(c);
}
END_TEST

/* ---- bad input
 * ------------------------------------------------------------------ */

START_TEST(test_bad_input)
{
    char d[1400], f[1500];
    /* a path that does not exist, a file, an empty folder */
    snprintf(d, sizeof d, "%s/absent", tc_cmp_bad);
    ASSERT_ERR(load_fails(d, NULL), DGM_ENOTFOUND, d);
    snprintf(d, sizeof d, "%s/plain.txt", tc_cmp_bad);
    tc_cmp_put("x", "%s", d);
    ASSERT_ERR(load_fails(d, NULL), DGM_ENOTFOUND, "not a directory");
    snprintf(d, sizeof d, "%s/empty", tc_cmp_bad);
    tc_cmp_mkdirs(d);
    ASSERT_ERR(load_fails(d, NULL), DGM_ENOTFOUND, d);
    /* malformed summary.json: file, line and column */
    snprintf(d, sizeof d, "%s/badjson", tc_cmp_bad);
    tc_cmp_put("{\"status\": \"completed\",\n \"final\": {\"x\": 1,}}\n",
               "%s/summary.json", d);
    snprintf(f, sizeof f, "%s/summary.json:2:", d);
    ASSERT_ERR(load_fails(d, NULL), DGM_EFORMAT, f);
    /* summary.json that is not an object, or has an unknown status */
    snprintf(d, sizeof d, "%s/array", tc_cmp_bad);
    tc_cmp_put("[1, 2]\n", "%s/summary.json", d);
    ASSERT_ERR(load_fails(d, NULL), DGM_EFORMAT, "not a JSON object");
    snprintf(d, sizeof d, "%s/status", tc_cmp_bad);
    tc_cmp_put("{\"status\": \"great\"}\n", "%s/summary.json", d);
    ASSERT_ERR(load_fails(d, NULL), DGM_EFORMAT, "unknown status 'great'");
    /* recorded directions that are none of lower, higher, none */
    snprintf(d, sizeof d, "%s/better", tc_cmp_bad);
    tc_cmp_put("{\"status\": \"completed\", \"better\": {\"fid\": \"down\"}}\n",
               "%s/summary.json", d);
    snprintf(f, sizeof f, "%s/summary.json: better.fid: expected", d);
    ASSERT_ERR(load_fails(d, NULL), DGM_EFORMAT, f);
    snprintf(d, sizeof d, "%s/better_list", tc_cmp_bad);
    tc_cmp_put("{\"status\": \"completed\", \"better\": [\"lower\"]}\n",
               "%s/summary.json", d);
    ASSERT_ERR(load_fails(d, NULL), DGM_EFORMAT,
               "\"better\" is not an object of directions");
    /* a malformed config.yaml names its file */
    snprintf(d, sizeof d, "%s/badyaml", tc_cmp_bad);
    tc_cmp_put("name: [unclosed\n", "%s/config.yaml", d);
    snprintf(f, sizeof f, "%s/config.yaml", d);
    ck_assert_int_lt(load_fails(d, NULL), 0);
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), f));
    /* a manifest that is not JSON */
    snprintf(d, sizeof d, "%s/badsweep", tc_cmp_bad);
    tc_cmp_put("{\"format\": 1, \"trials\": [\n", "%s/manifest.json", d);
    ASSERT_ERR(load_fails(d, NULL), DGM_EFORMAT, "manifest.json");
    /* a trial the manifest calls done without its summary */
    snprintf(d, sizeof d, "%s/nosummary", tc_cmp_bad);
    tc_cmp_put("{\"format\": 1, \"name\": \"x\", \"trials\": [{\"index\": 0, "
               "\"name\": \"000-a=1\", \"run_dir\": \"trials/000-a=1\", "
               "\"status\": \"done\", \"params\": {\"a\": 1}}]}\n",
               "%s/manifest.json", d);
    snprintf(f, sizeof f, "%s/trials/000-a=1", d);
    tc_cmp_mkdirs(f);
    strcat(f, "/summary.json");
    ASSERT_ERR(load_fails(d, NULL), DGM_ENOTFOUND, f);
    /* an unknown trial status */
    snprintf(d, sizeof d, "%s/oddstatus", tc_cmp_bad);
    tc_cmp_put("{\"format\": 1, \"name\": \"x\", \"trials\": [{\"index\": 0, "
               "\"name\": \"t\", \"run_dir\": \"trials/t\", \"status\": "
               "\"exploded\"}]}\n",
               "%s/manifest.json", d);
    ASSERT_ERR(load_fails(d, NULL), DGM_EFORMAT, "unknown status 'exploded'");
    /* --metric, --group-by, --higher no run has */
    const char *ms[] = {"acuracy"};
    dgm__cmp_options o = {.metrics = ms, .n_metrics = 1};
    ASSERT_ERR(load_fails(tc_cmp_sweep, &o), DGM_EKEY,
               "did you mean 'accuracy'");
    const char *g[] = {"model.latnt"};
    dgm__cmp_options og = {.group_by = g, .n_group_by = 1};
    ASSERT_ERR(load_fails(tc_cmp_sweep, &og), DGM_EKEY,
               "--group-by model.latnt");
    ASSERT_ERR(load_fails(tc_cmp_sweep, &og), DGM_EKEY, "config.yaml");
    const char *h[] = {"fid"};
    dgm__cmp_options oh = {.higher = h, .n_higher = 1};
    ASSERT_ERR(load_fails(tc_cmp_sweep, &oh), DGM_EKEY, "--higher fid");
    dgm__cmp_format fmt;
    ASSERT_ERR(dgm__compare_format_parse("xml", &fmt), DGM_EINVAL, "xml");
}
END_TEST

static Suite *compare_suite(void)
{
    Suite *s = suite_create("compare");
    tq_case(s, "statistics", test_sweep_stats, test_direction_rule,
            test_recorded_direction, test_metric_choice);
    tq_case(s, "plain_runs", test_plain_runs, test_sweeps_apart);
    tq_case(s, "bad_input", test_bad_input);
    return s;
}

int main(void)
{
    tc_cmp_setup();
    SRunner *sr = srunner_create(compare_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    tc_cmp_cleanup(failed);
    return failed != 0;
}
