/* test_sweep_tpe.c - `dgm sweep` with `search: {tpe: ...}` end to end on
 * a tiny VAE: every proposal the manifest records is what a fresh
 * estimator proposes given the same history (the losses, in the order
 * the trials finished), each loss is the trial's own evaluation (with
 * ASHA: its rung-0 metric), each trial trained on its proposal, a sweep
 * cut short and resumed ends as the whole one, and bad search sections
 * are refused with the place named. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "ck_run.h"
#include "cli.h"
#include "dgm/dgm.h"
#include "files.h"
#include "scratch.h"
#include "sweep.h"
#include "sweep_fixture.h"
#include "tpe.h"

static char root[1024];
static char out[1 << 16], err[1 << 16];

/* 6 trials: lr (loguniform), latent (choice), hidden width (int). */
static const char exp_fmt[] =
    TS_TINY_VAE "train: {epochs: 1, log_every: 1, samples: 4}\n"
                "sweep:\n"
                "  search:\n"
                "    tpe:\n"
                "      n: 6\n"
                "      startup: 2\n"
                "      seed: 5\n"
                "      metric: neg_elbo\n"
                "      params:\n"
                "        optimizer.lr: {loguniform: [1.0e-3, 1.0e-1]}\n"
                "        model.latent: {choice: [2, 4]}\n"
                "        model.decoder.hidden[0]: {int: [4, 8]}\n";

static const dgm__tpe_param params[3] = {{DGM__TPE_LOGUNIFORM, 1e-3, 1e-1, 0},
                                         {DGM__TPE_CHOICE, 0, 0, 2},
                                         {DGM__TPE_INT, 4, 8, 0}};

static char exp_path[1200];

static void setup(void)
{
    ts_sweep_setup();
    ck_assert_int_lt(snprintf(root, sizeof root, "%s", tc_scratch_dir),
                     (int)sizeof root);
    snprintf(exp_path, sizeof exp_path, "%s/tiny.yaml", root);
    FILE *f = fopen(exp_path, "w");
    ck_assert(f != NULL);
    fprintf(f, exp_fmt, DGM_TEST_PLUGIN_DIR, root);
    fclose(f);
}

static json_t *manifest(const char *dir)
{
    json_t *m;
    ck_assert_msg(dgm__sweep_manifest_load(dir, &m) == 0, "%s",
                  dgm_last_error());
    return m;
}

static json_t *trial(json_t *m, int i)
{
    return dgm__sweep_manifest_trial(m, i);
}

/* trial i's last evaluation of neg_elbo in its metrics.jsonl */
static double last_eval(const char *sd, json_t *m, int i)
{
    char p[2400];
    snprintf(p, sizeof p, "%s/%s/metrics.jsonl", sd,
             json_string_value(json_object_get(trial(m, i), "run_dir")));
    FILE *f = fopen(p, "r");
    ck_assert_msg(f != NULL, "%s", p);
    static char line[1 << 16];
    double v = NAN;
    while (fgets(line, sizeof line, f)) {
        json_t *j = json_loads(line, 0, NULL);
        json_t *e = json_object_get(json_object_get(j, "eval"), "neg_elbo");
        if (e)
            v = json_number_value(e);
        json_decref(j);
    }
    fclose(f);
    return v;
}

/* The manifest's history replayed through a fresh estimator: each
 * proposal recorded must be the one it makes, and each trial's params
 * and trial.yaml must hold it. Returns the number of proposals. */
static int check_proposals(const char *sd, json_t *m, bool asha)
{
    dgm__tpe *t;
    ck_assert_int_eq(dgm__tpe_new(&t, params, 3, 2, 0.25, 24, 5, false), 0);
    json_t *ev = json_object_get(json_object_get(m, "search"), "events");
    int n_prop = 0, n_obs = 0;
    for (size_t j = 0; j < json_array_size(ev); j++) {
        json_t *e = json_array_get(ev, j);
        const char *what = json_string_value(json_array_get(e, 0));
        int i = (int)json_integer_value(json_array_get(e, 1));
        json_t *tx = json_object_get(json_object_get(trial(m, i), "tpe"), "x");
        double x[3], r[3];
        for (int k = 0; k < 3; k++)
            r[k] = json_number_value(json_array_get(tx, (size_t)k));
        if (!strcmp(what, "propose")) {
            ck_assert_int_eq(dgm__tpe_suggest(t, x), 0);
            for (int k = 0; k < 3; k++)
                ck_assert_msg(x[k] == r[k], "trial %d, param %d: %.17g %.17g",
                              i, k, x[k], r[k]);
            /* the trial trains on it */
            json_t *p = json_object_get(trial(m, i), "params");
            ck_assert_double_eq(
                json_number_value(json_object_get(p, "optimizer.lr")), x[0]);
            ck_assert_int_eq(
                json_integer_value(json_object_get(p, "model.latent")),
                x[1] == 0 ? 2 : 4);
            ck_assert_int_eq(json_integer_value(
                                 json_object_get(p, "model.decoder.hidden[0]")),
                             (int)x[2]);
            char yp[2600];
            snprintf(
                yp, sizeof yp, "%s/%s/trial.yaml", sd,
                json_string_value(json_object_get(trial(m, i), "run_dir")));
            dgm_config *c;
            ck_assert_int_eq(dgm_config_load(&c, yp), 0);
            double lr;
            ck_assert_int_eq(
                dgm_cfg_to_float(dgm_cfg_get(c, "optimizer.lr"), &lr), 0);
            ck_assert_double_eq(lr, x[0]);
            dgm_config_free(c);
            n_prop++;
        } else {
            ck_assert_str_eq(what, "observe");
            json_t *y = json_array_get(e, 2);
            ck_assert(json_is_number(y));
            double want =
                asha ? json_number_value(json_array_get(
                           json_object_get(json_object_get(trial(m, i), "asha"),
                                           "metrics"),
                           0))
                     : last_eval(sd, m, i);
            ck_assert_double_eq(json_number_value(y), want);
            ck_assert_int_eq(dgm__tpe_observe(t, r, json_number_value(y)), 0);
            n_obs++;
        }
    }
    ck_assert_int_eq(n_obs, n_prop);
    dgm__tpe_free(t);
    return n_prop;
}

START_TEST(tpe_sweep_end_to_end)
{
    char args[4096], sd[1300];
    snprintf(sd, sizeof sd, "%s/s", root);
    snprintf(args, sizeof args, "sweep '%s' --sweep-dir '%s' -j 1", exp_path,
             sd);
    int st = tc_cli(NULL, args, out, sizeof out, err, sizeof err);
    ck_assert_msg(st == 0, "%d\n%s\n%s", st, out, err);
    json_t *m = manifest(sd);
    ck_assert_int_eq(check_proposals(sd, m, false), 6);
    json_decref(m);
}
END_TEST

START_TEST(cut_short_tpe_sweep_resumes_to_the_same_end)
{
    char args[4096], sd[1300], sd2[1300];
    snprintf(sd, sizeof sd, "%s/whole", root);
    snprintf(sd2, sizeof sd2, "%s/cut", root);
    snprintf(args, sizeof args, "sweep '%s' --sweep-dir '%s' -j 1 --quiet",
             exp_path, sd);
    int st = tc_cli(NULL, args, out, sizeof out, err, sizeof err);
    ck_assert_msg(st == 0, "%s", err);
    /* the same sweep as if stopped after its third trial finished (and
     * the fourth proposed, its run lost): a copy with the later trials
     * and events taken back */
    snprintf(args, sizeof args, "cp -r '%s' '%s'", sd, sd2);
    ck_assert_int_eq(system(args), 0);
    json_t *m = manifest(sd2),
           *ev = json_object_get(json_object_get(m, "search"), "events");
    ck_assert_int_eq(json_array_size(ev), 12);
    while (json_array_size(ev) > 7)
        json_array_remove(ev, json_array_size(ev) - 1);
    for (int i = 3; i < 6; i++) {
        json_t *t = trial(m, i);
        json_object_set_new(t, "status", json_string("pending"));
        if (i > 3)
            json_object_del(t, "tpe");
        else {
            json_object_set_new(json_object_get(t, "tpe"), "loss", json_null());
            json_object_del(json_object_get(t, "tpe"), "observed");
        }
    }
    ck_assert_int_eq(dgm__sweep_manifest_write(sd2, m), 0);
    json_decref(m);
    snprintf(args, sizeof args, "sweep --resume '%s' -j 1 --quiet", sd2);
    st = tc_cli(NULL, args, out, sizeof out, err, sizeof err);
    ck_assert_msg(st == 0, "%s", err);
    json_t *a = manifest(sd), *b = manifest(sd2);
    ck_assert(
        json_equal(json_object_get(json_object_get(a, "search"), "events"),
                   json_object_get(json_object_get(b, "search"), "events")));
    for (int i = 0; i < 6; i++)
        ck_assert(json_equal(json_object_get(trial(a, i), "tpe"),
                             json_object_get(trial(b, i), "tpe")));
    ck_assert_int_eq(check_proposals(sd2, b, false), 6);
    json_decref(a);
    json_decref(b);
}
END_TEST

START_TEST(tpe_with_asha_learns_from_rung_zero)
{
    char args[4096], sd[1300];
    snprintf(sd, sizeof sd, "%s/a", root);
    snprintf(args, sizeof args,
             "sweep '%s' --sweep-dir '%s' -j 1 --quiet "
             "'sweep.search.tpe.metric=null' "
             "'sweep.scheduler={asha: {metric: neg_elbo, min_steps: 2, "
             "max_steps: 6, reduction: 3}}'",
             exp_path, sd);
    int st = tc_cli(NULL, args, out, sizeof out, err, sizeof err);
    ck_assert_msg(st == 0, "%d\n%s\n%s", st, out, err);
    json_t *m = manifest(sd);
    ck_assert_int_eq(check_proposals(sd, m, true), 6);
    json_decref(m);
}
END_TEST

START_TEST(bad_search_sections_are_refused_with_the_place)
{
    static const struct {
        const char *over, *msg;
    } bad[] = {
        {"sweep.search.tpe.startpu=2",
         "sweep.search.tpe.startpu: unknown key 'startpu' (did you mean "
         "'startup'?)"},
        {"sweep.search.tpe.gamma=1.5", "gamma: the good fraction"},
        {"sweep.search.tpe.params={model.latent: {choise: [2]}}",
         "unknown distribution 'choise' (did you mean 'choice'?)"},
        {"sweep.search.tpe.metric=null", "sweep.search.tpe: missing `metric:`"},
        {"sweep.random={n: 2, params: {model.latent: {choice: [2, 4]}}}",
         "give no grid, zip or random with it"},
        {"sweep.seeds=[0, 1]", "give one seed, not 2"},
    };
    char args[4096];
    for (size_t j = 0; j < sizeof bad / sizeof *bad; j++) {
        snprintf(args, sizeof args, "sweep '%s' '%s' --dry-run", exp_path,
                 bad[j].over);
        ck_assert_int_eq(tc_cli(NULL, args, out, sizeof out, err, sizeof err),
                         2);
        ck_assert_msg(strstr(err, bad[j].msg), "%s\n%s", bad[j].over, err);
        ck_assert_msg(strstr(err, "tiny.yaml") || strstr(err, "sweep."), "%s",
                      err);
    }
    /* the Slurm launcher does not run a search yet: said, not ignored */
    snprintf(args, sizeof args,
             "sweep '%s' --sweep-dir '%s/y' --launcher slurm", exp_path, root);
    ck_assert_int_eq(tc_cli(NULL, args, out, sizeof out, err, sizeof err), 2);
    ck_assert_msg(strstr(err, "local launcher only"), "%s", err);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sweep_tpe");
    TCase *tc = tq_case(s, "local", tpe_sweep_end_to_end,
                        cut_short_tpe_sweep_resumes_to_the_same_end,
                        tpe_with_asha_learns_from_rung_zero,
                        bad_search_sections_are_refused_with_the_place);
    tcase_add_checked_fixture(tc, setup, tc_scratch_teardown);
    tcase_set_timeout(tc, 300);
    return tq_run(s, "installed", false);
}
