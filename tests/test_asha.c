/* test_asha.c - the ASHA scheduler (framework/cli/tools/asha.c) driven by
 * synthetic trials: each trial's metric is a fixed curve of the step, a
 * simulated clock decides which running job finishes first, and the
 * promotions are checked against ones worked by hand. Also the
 * `scheduler: {asha: ...}` section's rungs and refusals. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asha.h"
#include "ck_run.h"
#include "dgm/dgm.h"

/* Trial i's metric at step s: v[i] + 10 / s, so that the ranking at any
 * rung is the ranking of v; NAN in v is a crash. */
static double curve(const double *v, int i, int64_t step)
{
    return isnan(v[i]) ? NAN : v[i] + 10.0 / (double)step;
}

typedef struct sim {
    char log[4096]; /* "s0 r0 ..." : start/promote of trial at rung */
    int64_t steps;
} sim;

/* Run the scheduler with `workers` jobs at once; a job costs the steps
 * from the trial's last rung to the new one, and the job that ends first
 * (then the lower trial) reports first. */
static void simulate(dgm__asha *a, const double *v, const int64_t *rungs,
                     int workers, sim *out)
{
    struct {
        int t, k;
        int64_t end;
    } run[16];
    int n_run = 0;
    int64_t now = 0;
    out->log[0] = '\0';
    for (;;) {
        int t, k, rc;
        while (n_run < workers &&
               (rc = dgm__asha_next(a, &t, &k)) == DGM__ASHA_JOB) {
            int64_t from = k ? rungs[k - 1] : 0;
            run[n_run].t = t;
            run[n_run].k = k;
            run[n_run].end = now + rungs[k] - from;
            n_run++;
            char w[32];
            snprintf(w, sizeof w, "%s%d@%d", out->log[0] ? " " : "", t, k);
            strcat(out->log, w);
        }
        if (n_run == 0) {
            ck_assert_int_eq(dgm__asha_next(a, &t, &k), DGM__ASHA_DONE);
            ck_assert(dgm__asha_finished(a));
            break;
        }
        ck_assert(!dgm__asha_finished(a));
        int best = 0;
        for (int j = 1; j < n_run; j++)
            if (run[j].end < run[best].end ||
                (run[j].end == run[best].end && run[j].t < run[best].t))
                best = j;
        now = run[best].end;
        ck_assert_int_eq(
            dgm__asha_report(a, run[best].t, run[best].k,
                             curve(v, run[best].t, rungs[run[best].k])),
            0);
        run[best] = run[--n_run];
    }
    out->steps = dgm__asha_steps(a);
}

static const int64_t rungs3[] = {1, 3, 9};
/* min mode: lower is better */
static const double v9[] = {5, 3, 8, 1, 9, 2, 7, 4, 6};

START_TEST(one_worker_matches_hand_worked_promotions)
{
    /* Worked by hand (reduction 3, one job at a time):
     * 0,1,2 at rung 0 -> the top 1 of 3 is trial 1 (3): promoted;
     * rung 1 has 1 (top 0); rung 0 top 1 is 1, taken: start 3 (1);
     * rung 0 of 4: top 1 is now 3: promoted; rung 1 of 2: top 0;
     * start 4 (9), then 5 (2): rung 0 of 6, top 2 = {3, 5}: 5 promoted;
     * rung 1 of 3 {1:3, 3:1, 5:2}, top 1 = 3: promoted to the top rung;
     * then 6, 7, 8 start and stop at rung 0 (top 3 of 9 = {3, 5, 1},
     * all gone up). */
    dgm__asha *a;
    ck_assert_int_eq(dgm__asha_new(&a, 9, rungs3, 3, 3, false), 0);
    sim s;
    simulate(a, v9, rungs3, 1, &s);
    ck_assert_str_eq(s.log, "0@0 1@0 2@0 1@1 3@0 3@1 4@0 5@0 5@1 3@2 6@0 "
                            "7@0 8@0");
    int want[9] = {0, 1, 0, 2, 0, 1, 0, 0, 0};
    for (int i = 0; i < 9; i++)
        ck_assert_int_eq(dgm__asha_reached(a, i), want[i]);
    /* six trials to step 1, two to 3, one to 9: 21 of the 81 steps a
     * full search spends */
    ck_assert_int_eq(s.steps, 21);
    ck_assert(fabs(dgm__asha_metric(a, 3, 2) - (1 + 10.0 / 9)) < 1e-12);
    char buf[256];
    ck_assert_str_eq(dgm__asha_reason(a, 3, buf, sizeof buf),
                     "reached the top rung (step 9)");
    ck_assert_str_eq(dgm__asha_reason(a, 1, buf, sizeof buf),
                     "stopped at rung 1 (step 3): rank 3 of 3, not in the "
                     "top 1");
    /* the promotions keep their rank at the time: 1 was first of 3 at
     * rung 0, 3 first of 4, then first of 3 at rung 1 */
    int rank, n;
    ck_assert(dgm__asha_promotion(a, 1, 0, &rank, &n));
    ck_assert(rank == 1 && n == 3);
    ck_assert(dgm__asha_promotion(a, 3, 0, &rank, &n));
    ck_assert(rank == 1 && n == 4);
    ck_assert(dgm__asha_promotion(a, 3, 1, &rank, &n));
    ck_assert(rank == 1 && n == 3);
    ck_assert(!dgm__asha_promotion(a, 1, 1, &rank, &n));
    ck_assert(dgm__asha_promotion(a, 5, 0, &rank, &n));
    ck_assert(rank == 2 && n == 6);
    ck_assert_str_eq(dgm__asha_reason(a, 8, buf, sizeof buf),
                     "stopped at rung 0 (step 1): rank 6 of 9, not in the "
                     "top 3");
    dgm__asha_free(a);
}
END_TEST

START_TEST(max_mode_reverses_the_ranking)
{
    /* negated values, mode max: the same decisions */
    double neg[9];
    for (int i = 0; i < 9; i++)
        neg[i] = -v9[i] - 20; /* curve adds 10/s: keep the order */
    dgm__asha *a;
    ck_assert_int_eq(dgm__asha_new(&a, 9, rungs3, 3, 3, true), 0);
    sim s;
    /* -v - 20 + 10/s: with s >= 1 the order of -v holds */
    simulate(a, neg, rungs3, 1, &s);
    ck_assert_str_eq(s.log, "0@0 1@0 2@0 1@1 3@0 3@1 4@0 5@0 5@1 3@2 6@0 "
                            "7@0 8@0");
    dgm__asha_free(a);
}
END_TEST

START_TEST(two_workers_promote_without_waiting_for_a_full_rung)
{
    /* Worked by hand, two jobs at once, a job costs its steps:
     * t=0 start 0@0, 1@0; t=1 both end (0 first, then 1): after 0's
     * report rung 0 has 1 (top 0): start 2@0; after 1's, rung 0 has 2,
     * top 0: start 3@0. t=2: 2 (8) and 3 (1) end: after 2, rung 0 of 3
     * top 1 = 1 (3): promoted 1@1 (ends t=4); after 3, rung 0 of 4 top 1
     * = 3: promoted 3@1 (ends t=4). t=4: 1 ends: rung 1 of 1; rung 0 of
     * 4 top 1 taken: start 4@0; 3 ends: rung 1 of 2, top 0: start 5@0.
     * t=5: 4 (9), 5 (2) end: after 4, rung 0 of 5 top 1 (3) taken: start
     * 6@0; after 5, rung 0 of 6, top 2 = {3, 5}: promote 5@1 (ends t=7).
     * t=6: 6 ends (7): rung 0 of 7, top 2 taken: start 7@0. t=7: 5 and 7
     * end: after 5, rung 1 of 3 {3:1, 5:2, 1:3}: top 1 = 3: promote 3@2
     * (ends t=13); after 7 (4), rung 0 of 8 top 2 taken: start 8@0.
     * t=8: 8 ends (6): rung 0 of 9 top 3 = {3, 5, 1} all up. t=13: 3
     * reaches the top. */
    dgm__asha *a;
    ck_assert_int_eq(dgm__asha_new(&a, 9, rungs3, 3, 3, false), 0);
    sim s;
    simulate(a, v9, rungs3, 2, &s);
    ck_assert_str_eq(s.log, "0@0 1@0 2@0 3@0 1@1 3@1 4@0 5@0 6@0 5@1 7@0 "
                            "3@2 8@0");
    ck_assert_int_eq(s.steps, 21);
    dgm__asha_free(a);
}
END_TEST

START_TEST(a_crash_is_the_worst_value_and_never_promoted)
{
    /* 3 trials, reduction 3: the top 1 of rung 0 goes up. With a crash
     * in trial 1 (it would have been the best), trial 0 goes up; when all
     * three crash, none does and the sweep ends. */
    static const int64_t r2[] = {2, 4};
    double v[3] = {1, NAN, 2};
    dgm__asha *a;
    ck_assert_int_eq(dgm__asha_new(&a, 3, r2, 2, 3, false), 0);
    sim s;
    simulate(a, v, r2, 1, &s);
    ck_assert_str_eq(s.log, "0@0 1@0 2@0 0@1");
    char buf[256];
    ck_assert_str_eq(dgm__asha_reason(a, 1, buf, sizeof buf),
                     "failed at rung 0 (step 2): counts as the worst value");
    ck_assert_str_eq(dgm__asha_reason(a, 2, buf, sizeof buf),
                     "stopped at rung 0 (step 2): rank 2 of 3, not in the "
                     "top 1");
    dgm__asha_free(a);
    double all[3] = {NAN, NAN, NAN};
    ck_assert_int_eq(dgm__asha_new(&a, 3, r2, 2, 3, false), 0);
    simulate(a, all, r2, 1, &s);
    ck_assert_str_eq(s.log, "0@0 1@0 2@0");
    dgm__asha_free(a);
}
END_TEST

START_TEST(replayed_events_give_the_same_decisions)
{
    /* Interrupt after 7 jobs of the one-worker sweep, with 5@1 running;
     * a new scheduler fed the same starts and reports continues exactly
     * as the first would have. */
    dgm__asha *a, *b;
    ck_assert_int_eq(dgm__asha_new(&a, 9, rungs3, 3, 3, false), 0);
    ck_assert_int_eq(dgm__asha_new(&b, 9, rungs3, 3, 3, false), 0);
    int ev[][2] = {{0, 0}, {1, 0}, {2, 0}, {1, 1}, {3, 0},
                   {3, 1}, {4, 0}, {5, 0}, {5, 1}};
    for (int j = 0; j < 9; j++) {
        int t, k;
        ck_assert_int_eq(dgm__asha_next(a, &t, &k), DGM__ASHA_JOB);
        ck_assert_int_eq(t, ev[j][0]);
        ck_assert_int_eq(k, ev[j][1]);
        ck_assert_int_eq(dgm__asha_start(b, t, k), 0);
        if (j < 8) { /* the last stays running */
            double m = curve(v9, t, rungs3[k]);
            ck_assert_int_eq(dgm__asha_report(a, t, k, m), 0);
            ck_assert_int_eq(dgm__asha_report(b, t, k, m), 0);
        }
    }
    ck_assert_int_eq(dgm__asha_running(b, 5), 1);
    char ra[256], rb[256];
    ck_assert_str_eq(dgm__asha_reason(b, 5, rb, sizeof rb),
                     "promoted at rung 0 (step 1): rank 2 of 6, top 2");
    ck_assert_str_eq(dgm__asha_reason(a, 5, ra, sizeof ra), rb);
    /* a start that ASHA would not make is refused */
    ck_assert_int_eq(dgm__asha_start(b, 4, 1), DGM_ESTATE);
    ck_assert_int_eq(dgm__asha_start(b, 5, 1), DGM_ESTATE); /* running */
    ck_assert_int_eq(dgm__asha_report(b, 4, 1, 1.0), DGM_ESTATE);
    double m = curve(v9, 5, 3);
    ck_assert_int_eq(dgm__asha_report(a, 5, 1, m), 0);
    ck_assert_int_eq(dgm__asha_report(b, 5, 1, m), 0);
    for (;;) {
        int ta, ka, tb, kb;
        int x = dgm__asha_next(a, &ta, &ka), y = dgm__asha_next(b, &tb, &kb);
        ck_assert_int_eq(x, y);
        if (x != DGM__ASHA_JOB)
            break;
        ck_assert_int_eq(ta, tb);
        ck_assert_int_eq(ka, kb);
        m = curve(v9, ta, rungs3[ka]);
        dgm__asha_report(a, ta, ka, m);
        dgm__asha_report(b, tb, kb, m);
    }
    for (int i = 0; i < 9; i++)
        ck_assert_int_eq(dgm__asha_reached(a, i), dgm__asha_reached(b, i));
    ck_assert_int_eq(dgm__asha_reached(b, 3), 2);
    dgm__asha_free(a);
    dgm__asha_free(b);
}
END_TEST

static dgm_config *parse(const char *text)
{
    dgm_config *c = NULL;
    ck_assert_msg(dgm_config_parse(&c, text, "t.yaml") == 0, "%s",
                  dgm_last_error());
    return c;
}

START_TEST(config_rungs_and_refusals)
{
    dgm_config *c = parse("{metric: neg_elbo, mode: min, min_steps: 200, "
                          "max_steps: 4690, reduction: 3}");
    dgm__asha_config ac;
    ck_assert_int_eq(dgm__asha_config_read(&ac, c), 0);
    ck_assert_int_eq(ac.n_rungs, 4);
    ck_assert_int_eq(ac.rungs[0], 200);
    ck_assert_int_eq(ac.rungs[1], 600);
    ck_assert_int_eq(ac.rungs[2], 1800);
    ck_assert_int_eq(ac.rungs[3], 4690);
    ck_assert_str_eq(ac.metric, "neg_elbo");
    ck_assert(!ac.maximize);
    dgm__asha_config_free(&ac);
    dgm_config_free(c);
    /* max_steps on a rung: no duplicate */
    c = parse("{metric: acc, mode: max, min_steps: 10, max_steps: 40, "
              "reduction: 2}");
    ck_assert_int_eq(dgm__asha_config_read(&ac, c), 0);
    ck_assert_int_eq(ac.n_rungs, 3);
    ck_assert_int_eq(ac.rungs[2], 40);
    ck_assert(ac.maximize);
    dgm__asha_config_free(&ac);
    dgm_config_free(c);
    static const struct {
        const char *text, *msg;
        int code;
    } bad[] = {
        {"{metric: m, min_steps: 10, max_steps: 40, reducton: 2}",
         "t.yaml:1:53: reducton: unknown key 'reducton' (did you mean "
         "'reduction'?)",
         DGM_EKEY},
        {"{min_steps: 10, max_steps: 40}", "missing `metric:`", DGM_EMISSING},
        {"{metric: m, mode: up, min_steps: 10, max_steps: 40}",
         "mode: min or max, not 'up'", DGM_ERANGE},
        {"{metric: m, min_steps: 10, max_steps: 5}",
         "max_steps (5) is below min_steps (10)", DGM_ERANGE},
        {"{metric: m, min_steps: 10, max_steps: 40, reduction: 1}",
         "reduction: at least 2, got 1", DGM_ERANGE},
        {"{metric: m, max_steps: 40}", "missing `min_steps:`", DGM_EMISSING},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        c = parse(bad[i].text);
        int rc = dgm__asha_config_read(&ac, c);
        ck_assert_msg(rc == bad[i].code && strstr(dgm_last_error(), bad[i].msg),
                      "%s: %d %s", bad[i].text, rc, dgm_last_error());
        dgm__asha_config_free(&ac);
        dgm_config_free(c);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("asha");
    tq_case(s, "scheduler", one_worker_matches_hand_worked_promotions,
            max_mode_reverses_the_ranking,
            two_workers_promote_without_waiting_for_a_full_rung,
            a_crash_is_the_worst_value_and_never_promoted,
            replayed_events_give_the_same_decisions);
    tq_case(s, "config", config_rungs_and_refusals);
    return tq_run(s, "installed", false);
}
