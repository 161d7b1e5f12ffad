/* test_sweep_asha.c - `dgm sweep` with `scheduler: {asha: ...}` end to
 * end on a tiny VAE: the manifest's decisions are the scheduler's given
 * the metrics the trials reported, each rung metric is the trial's
 * evaluation at the rung's step, a crash and a divergence count as the
 * worst and stop only their trials, the promoted trial ends with the
 * parameters of a run straight through, and an interrupted sweep resumed
 * ends as an uninterrupted one. */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "asha.h"
#include "ck_run.h"
#include "cli.h"
#include "dgm/dgm.h"
#include "files.h"
#include "scratch.h"
#include "st_diff.h"
#include "sweep.h"
#include "sweep_fixture.h"

static char root[1024];
static char out[1 << 16], err[1 << 16];

/* 3 objectives (good, crashing, turning NaN) x 3 learning rates: 9
 * trials, rungs 2, 6, 18 steps. */
static const char exp_fmt[] = TS_TINY_VAE
    "train: {epochs: 1, log_every: 1, samples: 4}\n"
    "sweep:\n"
    "  grid:\n"
    "    optimizer.lr: [0.03, 0.001, 0.01]\n"
    "    objective:\n"
    "      - [{loss: bernoulli_nll, inputs: [logits, x]}, {loss: "
    "gaussian_kl, inputs: [mu, logvar]}]\n"
    "      - [{loss: bernoulli_nll, inputs: [logits, x]}, {loss: "
    "crash_after, inputs: [mu], after: 1}]\n"
    "      - [{loss: bernoulli_nll, inputs: [logits, x]}, {loss: "
    "nan_after, inputs: [mu], after: 1}]\n"
    "  scheduler: {asha: {metric: neg_elbo, min_steps: 2, max_steps: 18, "
    "reduction: 3}}\n";

static char exp_path[1200];

static void setup(void)
{
    ts_let_segv_through();
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

static json_t *trial_asha(json_t *m, int i)
{
    return json_object_get(dgm__sweep_manifest_trial(m, i), "asha");
}

/* trial i's evaluation of neg_elbo at step in its metrics.jsonl */
static double eval_at(const char *sd, json_t *m, int i, int64_t step)
{
    char p[2400];
    snprintf(p, sizeof p, "%s/%s/metrics.jsonl", sd,
             json_string_value(
                 json_object_get(dgm__sweep_manifest_trial(m, i), "run_dir")));
    FILE *f = fopen(p, "r");
    ck_assert_msg(f != NULL, "%s", p);
    char line[8192];
    double v = NAN;
    while (fgets(line, sizeof line, f)) {
        json_t *j = json_loads(line, 0, NULL);
        json_t *e = json_object_get(json_object_get(j, "eval"), "neg_elbo");
        if (e && json_integer_value(json_object_get(j, "step")) == step)
            v = json_number_value(e);
        json_decref(j);
    }
    fclose(f);
    return v;
}

/* The manifest's events replayed through a fresh scheduler that makes
 * its own decisions: every start must be the one it asks for. */
static void check_decisions(json_t *m)
{
    static const int64_t rungs[] = {2, 6, 18};
    dgm__asha *a;
    ck_assert_int_eq(dgm__asha_new(&a, 9, rungs, 3, 3, false), 0);
    json_t *ev = json_object_get(json_object_get(m, "scheduler"), "events");
    ck_assert_int_gt(json_array_size(ev), 9);
    for (size_t j = 0; j < json_array_size(ev); j++) {
        json_t *e = json_array_get(ev, j);
        const char *what = json_string_value(json_array_get(e, 0));
        int t = (int)json_integer_value(json_array_get(e, 1));
        int k = (int)json_integer_value(json_array_get(e, 2));
        if (!strcmp(what, "start")) {
            int tt, kk;
            ck_assert_int_eq(dgm__asha_next(a, &tt, &kk), DGM__ASHA_JOB);
            ck_assert_int_eq(tt, t);
            ck_assert_int_eq(kk, k);
        } else {
            json_t *v = json_array_get(e, 3);
            dgm__asha_report(a, t, k,
                             json_is_number(v) ? json_number_value(v) : NAN);
        }
    }
    int t, k;
    ck_assert_int_eq(dgm__asha_next(a, &t, &k), DGM__ASHA_DONE);
    for (int i = 0; i < 9; i++)
        ck_assert_int_eq(
            dgm__asha_reached(a, i),
            json_integer_value(json_object_get(trial_asha(m, i), "rung")));
    dgm__asha_free(a);
}

START_TEST(asha_sweep_end_to_end)
{
    char args[4096], sd[1300];
    snprintf(sd, sizeof sd, "%s/s", root);
    snprintf(args, sizeof args, "sweep '%s' --sweep-dir '%s' -j 1", exp_path,
             sd);
    int st = tc_cli(NULL, args, out, sizeof out, err, sizeof err);
    /* the crash and the divergence fail their trials: exit 1 */
    ck_assert_msg(st == 1, "%d\n%s\n%s", st, out, err);
    json_t *m = manifest(sd);
    check_decisions(m);
    int top = -1, n_failed = 0;
    for (int i = 0; i < 9; i++) {
        json_t *a = trial_asha(m, i);
        const char *status = json_string_value(
            json_object_get(dgm__sweep_manifest_trial(m, i), "status"));
        const char *dec = json_string_value(json_object_get(a, "decision"));
        int k = (int)json_integer_value(json_object_get(a, "rung"));
        json_t *ms = json_object_get(a, "metrics");
        if (i % 3 == 0) {
            /* the good objective: each rung metric is the trial's own
             * evaluation at the rung's step */
            ck_assert_str_eq(status, "done");
            static const int64_t steps[] = {2, 6, 18};
            for (int r = 0; r <= k; r++)
                ck_assert_double_eq(
                    json_number_value(json_array_get(ms, (size_t)r)),
                    eval_at(sd, m, i, steps[r]));
            if (k == 2) {
                ck_assert_str_eq(dec, "top");
                top = i;
            }
        } else {
            /* a crash or a NaN: the worst value at rung 0, never on */
            ck_assert_msg(!strcmp(status, "failed") ||
                              !strcmp(status, "diverged"),
                          "%d: %s", i, status);
            ck_assert_str_eq(dec, "failed");
            ck_assert_int_eq(k, 0);
            ck_assert(json_is_null(json_array_get(ms, 0)));
            n_failed++;
        }
    }
    ck_assert_int_eq(n_failed, 6);
    ck_assert_int_ge(top, 0);
    /* The top 3 of rung 0's 9 are the good trials (the others count as
     * the worst): all go to rung 1, whose top 1 goes to the end. Six
     * trials to 2 steps, two to 6, one to 18: 42, less than a third of
     * the 9 x 18 a full search trains. */
    int64_t steps = json_integer_value(
        json_object_get(json_object_get(m, "scheduler"), "steps"));
    ck_assert_int_eq(steps, 42);
    ck_assert_int_lt(steps, 9 * 18 / 3);
    /* The top trial stopped at steps 2 and 6 and went on from its
     * checkpoint each time: it ends as a run straight through. */
    char d[2400], p[2600], q[2600];
    snprintf(d, sizeof d, "%s/%s", sd,
             json_string_value(json_object_get(
                 dgm__sweep_manifest_trial(m, top), "run_dir")));
    /* (a copy: the trial's folder name holds '=', an override to dgm run) */
    snprintf(args, sizeof args, "cp '%s/trial.yaml' '%s/straight.yaml'", d,
             root);
    ck_assert_int_eq(system(args), 0);
    snprintf(args, sizeof args,
             "run '%s/straight.yaml' --run-dir '%s/straight' --quiet", root,
             root);
    st = tc_cli(NULL, args, out, sizeof out, err, sizeof err);
    ck_assert_msg(st == 0, "%s", err);
    snprintf(p, sizeof p, "%s/checkpoints/last.safetensors", d);
    snprintf(q, sizeof q, "%s/straight/checkpoints/last.safetensors", root);
    /* ... and it did go on, not start over */
    char lp[2600];
    snprintf(lp, sizeof lp, "%s/log.txt", d);
    char *log = tc_slurp(lp, NULL, true);
    ck_assert_msg(strstr(log, "resuming") && strstr(log, "at step 2 of 18") &&
                      strstr(log, "at step 6 of 18"),
                  "%s", log);
    free(log);
    dgm_st_file *fa, *fb;
    ck_assert_int_eq(dgm_st_open(&fa, p), 0);
    ck_assert_int_eq(dgm_st_open(&fb, q), 0);
    int n = 0;
    ck_assert(tq_max_diff(fa, fb, "", &n) == 0.0);
    ck_assert_int_gt(n, 4);
    dgm_st_close(fa);
    dgm_st_close(fb);
    /* dgm compare: each trial's rung and why, as in the manifest */
    snprintf(args, sizeof args, "compare '%s' --format json", sd);
    st = tc_cli(NULL, args, out, sizeof out, err, sizeof err);
    ck_assert_msg(st == 0, "%s", err);
    json_t *cj = json_loads(out, 0, NULL);
    json_t *ct = json_object_get(json_array_get(json_object_get(cj, "asha"), 0),
                                 "trials");
    ck_assert_int_eq(json_array_size(ct), 9);
    for (int i = 0; i < 9; i++) {
        json_t *x = json_array_get(ct, (size_t)i), *y = trial_asha(m, i);
        ck_assert(
            json_equal(json_object_get(x, "rung"), json_object_get(y, "rung")));
        ck_assert(json_equal(json_object_get(x, "reason"),
                             json_object_get(y, "reason")));
    }
    json_decref(cj);
    snprintf(args, sizeof args, "compare '%s'", sd);
    st = tc_cli(NULL, args, out, sizeof out, err, sizeof err);
    ck_assert_msg(st == 0 &&
                      strstr(out, "rungs 2 6 18, reduction 3: 42 "
                                  "steps trained in all") &&
                      strstr(out, "reached the top rung (step 18)"),
                  "%s", out);
    /* dgm report: a point per trial and rung reached; filled where it
     * was promoted (3 from rung 0, 1 from rung 1) or at the top (1), open
     * where it stopped (2 at rung 1); failures have no point */
    snprintf(args, sizeof args, "report '%s' -o '%s/r.html'", sd, root);
    st = tc_cli(NULL, args, out, sizeof out, err, sizeof err);
    ck_assert_msg(st == 0, "%s", err);
    snprintf(p, sizeof p, "%s/r.html", root);
    char *html = tc_slurp(p, NULL, true);
    static const struct {
        const char *what;
        int n;
    } marks[] = {{"class=\"asha-trial\"", 9},
                 {"class=\"promoted\"", 4},
                 {"class=\"top\"", 1},
                 {"class=\"stopped\"", 2}};
    for (int j = 0; j < 4; j++) {
        int got = 0;
        for (const char *h = html; (h = strstr(h, marks[j].what)); h++)
            got++;
        ck_assert_msg(got == marks[j].n, "%s: %d", marks[j].what, got);
    }
    free(html);
    json_decref(m);
}
END_TEST

/* Each trial's rung and rung metrics, as text. */
static void outcome(json_t *m, char *buf, size_t n)
{
    buf[0] = '\0';
    for (int i = 0; i < 9; i++) {
        json_t *a = trial_asha(m, i);
        char *ms = json_dumps(json_object_get(a, "metrics"), JSON_COMPACT);
        size_t l = strlen(buf);
        snprintf(buf + l, n - l, "%d:%s:%s:%s ", i,
                 json_string_value(json_object_get(
                     dgm__sweep_manifest_trial(m, i), "status")),
                 json_string_value(json_object_get(a, "decision")), ms);
        free(ms);
    }
}

static size_t n_events(const char *sd)
{
    json_t *m;
    if (dgm__sweep_manifest_load(sd, &m) < 0)
        return 0;
    size_t n = json_array_size(
        json_object_get(json_object_get(m, "scheduler"), "events"));
    json_decref(m);
    return n;
}

START_TEST(interrupted_asha_sweep_resumes_to_the_same_end)
{
    char args[4096], sd[1300], sd2[1300], a[8192], b[8192];
    snprintf(sd, sizeof sd, "%s/whole", root);
    snprintf(args, sizeof args, "sweep '%s' --sweep-dir '%s' -j 2 --quiet",
             exp_path, sd);
    ck_assert_int_eq(tc_cli(NULL, args, out, sizeof out, err, sizeof err), 1);
    json_t *m = manifest(sd);
    outcome(m, a, sizeof a);
    json_decref(m);
    /* The same sweep, Ctrl-C after its first reports. */
    snprintf(sd2, sizeof sd2, "%s/cut", root);
    pid_t pid = fork();
    ck_assert(pid >= 0);
    if (pid == 0) {
        execl(DGM_CLI, DGM_CLI, "sweep", exp_path, "--sweep-dir", sd2, "-j",
              "2", "--quiet", (char *)NULL);
        _exit(127);
    }
    struct timespec ts = {0, 5 * 1000 * 1000};
    for (int w = 0; w < 20000 && n_events(sd2) < 10; w++)
        nanosleep(&ts, NULL);
    kill(pid, SIGINT);
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    m = manifest(sd2);
    bool open = false;
    for (int i = 0; i < 9; i++) {
        const char *s = json_string_value(
            json_object_get(dgm__sweep_manifest_trial(m, i), "status"));
        open |= !strcmp(s, "paused") || !strcmp(s, "stopped") ||
                !strcmp(s, "pending");
    }
    ck_assert_msg(open, "the sweep ended before it was interrupted");
    json_decref(m);
    snprintf(args, sizeof args, "sweep --resume '%s' -j 2 --quiet", sd2);
    ck_assert_int_eq(tc_cli(NULL, args, out, sizeof out, err, sizeof err), 1);
    m = manifest(sd2);
    check_decisions(m);
    outcome(m, b, sizeof b);
    json_decref(m);
    ck_assert_str_eq(b, a);
}
END_TEST

START_TEST(bad_asha_sweeps_are_refused_before_anything_runs)
{
    char args[4096];
    /* an eval_every that misses a rung */
    snprintf(args, sizeof args,
             "sweep '%s' train.eval_every=4 --sweep-dir '%s/x' --dry-run",
             exp_path, root);
    ck_assert_int_eq(tc_cli(NULL, args, out, sizeof out, err, sizeof err), 2);
    ck_assert_msg(strstr(err, "train.eval_every (4) must divide every ASHA "
                              "rung's step; rung 0 is step 2"),
                  "%s", err);
    /* a misspelt key, named where it is */
    snprintf(args, sizeof args,
             "sweep '%s' 'sweep.scheduler.asha.reduce=2' --dry-run", exp_path);
    ck_assert_int_eq(tc_cli(NULL, args, out, sizeof out, err, sizeof err), 2);
    ck_assert_msg(strstr(err, "sweep.scheduler.asha.reduce: unknown key "
                              "'reduce' (metric, mode, min_steps, "
                              "max_steps, reduction)"),
                  "%s", err);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sweep_asha");
    TCase *tc = tq_case(s, "local", asha_sweep_end_to_end,
                        interrupted_asha_sweep_resumes_to_the_same_end,
                        bad_asha_sweeps_are_refused_before_anything_runs);
    tcase_add_checked_fixture(tc, setup, tc_scratch_teardown);
    tcase_set_timeout(tc, 300);
    return tq_run(s, "installed", false);
}
