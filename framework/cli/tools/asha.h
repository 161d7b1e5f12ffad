/* asha.h - asynchronous successive halving (ASHA, Li et al. 2020) for a
 * sweep's trials: pure bookkeeping, no processes, no files, so that the
 * tests drive it with synthetic trials and the launchers with real ones
 * (never installed).
 *
 * Rungs are steps r_0 < r_1 < ... < r_top. A trial starts at the bottom;
 * when it has reported its metric at rung k, it may be promoted to k+1 as
 * soon as it ranks in the top floor(n_k / reduction) of the n_k trials
 * that reported at rung k so far: no rung waits to be full.
 *
 *     dgm__asha *a;
 *     dgm__asha_new(&a, n_trials, rungs, n_rungs, 3, false);
 *     int t, k;
 *     while (dgm__asha_next(a, &t, &k) != DGM__ASHA_DONE) {
 *         ... train trial t to step rungs[k] (continuing from where it
 *         stopped), then: dgm__asha_report(a, t, k, metric);
 *     }
 *     dgm__asha_free(a);
 *
 * Determinism: the decisions depend only on the trials' metrics and the
 * order of the calls (ties in the metric go to the earlier report, then
 * to the lower trial index). A crashed or diverged trial reports NAN and
 * counts as the worst value; it is never promoted.
 */
#ifndef DGM_ASHA_H
#define DGM_ASHA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dgm/config.h"

#define DGM__ASHA_MAX_RUNGS 32

/* The `sweep.scheduler.asha:` section. */
typedef struct dgm__asha_config {
    char *metric;  /* an evaluation figure ("neg_elbo"); owned */
    bool maximize; /* mode: max */
    int64_t min_steps, max_steps;
    int reduction; /* default 3 */
    int n_rungs;
    int64_t rungs[DGM__ASHA_MAX_RUNGS]; /* min_steps * reduction^k, max_steps */
} dgm__asha_config;

/* Read sec (the `asha:` map); errors name the key. *c zeroed first;
 * free with dgm__asha_config_free. */
int dgm__asha_config_read(dgm__asha_config *c, const dgm_config *sec);
void dgm__asha_config_free(dgm__asha_config *c);

typedef struct dgm__asha dgm__asha;

/* What dgm__asha_next says. */
enum { DGM__ASHA_WAIT = 0, DGM__ASHA_JOB = 1, DGM__ASHA_DONE = 2 };

/* A scheduler for trials 0..n_trials-1 (started in index order) over the
 * given rungs (steps, increasing). Ownership: *out -> dgm__asha_free. */
int dgm__asha_new(dgm__asha **out, int n_trials, const int64_t *rungs,
                  int n_rungs, int reduction, bool maximize);
void dgm__asha_free(dgm__asha *a);

/* The next job: trial *trial to be trained up to rung *rung (a promotion
 * from the highest rung that has one, else the next new trial at rung 0);
 * the job counts as running until reported. DGM__ASHA_WAIT: nothing to
 * start until a running job reports; DGM__ASHA_DONE: nothing runs and
 * nothing is left. */
int dgm__asha_next(dgm__asha *a, int *trial, int *rung);
/* Mark a job as running without asking for it: replaying a manifest's
 * events on --resume. DGM_ESTATE if the trial is not where that job
 * starts (a new trial at rung 0, or a promotable trial one rung up). */
int dgm__asha_start(dgm__asha *a, int trial, int rung);
/* Nothing runs and nothing is left to start: every trial has its final
 * rung (what dgm__asha_next would answer with DGM__ASHA_DONE). */
bool dgm__asha_finished(dgm__asha *a);
/* Trial's metric at rung (NAN: it crashed or diverged there). */
int dgm__asha_report(dgm__asha *a, int trial, int rung, double metric);

/* The rung trial is running to (-1: none). */
int dgm__asha_running(const dgm__asha *a, int trial);
/* The highest rung trial reported at (-1: none yet). */
int dgm__asha_reached(const dgm__asha *a, int trial);
/* Its metric at rung k (NAN if none). */
double dgm__asha_metric(const dgm__asha *a, int trial, int k);
/* Whether trial was promoted from rung k, with its rank among the n
 * reports of rung k then. */
bool dgm__asha_promotion(const dgm__asha *a, int trial, int k, int *rank,
                         int *n);
/* Why trial is where it is, as one line for the manifest and the
 * report: "promoted at rung 0 (step 200): rank 1 of 3, top 1", "stopped
 * at rung 1 (step 600): rank 3 of 5, not in the top 1", "reached the top
 * rung (step 4690)", "failed at rung 0: counts as the worst value". The
 * buffer is returned. */
const char *dgm__asha_reason(const dgm__asha *a, int trial, char *buf,
                             size_t n);
/* Total steps the jobs so far trained (each trial to its highest rung). */
int64_t dgm__asha_steps(const dgm__asha *a);

#endif
