/* sweep_run.h - what `dgm sweep`'s files share while trials run: the
 * sweep being run, the manifest's bookkeeping of each trial, and the two
 * launchers (local processes, a Slurm job array). */
#ifndef DGM_SWEEP_RUN_H
#define DGM_SWEEP_RUN_H

#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "sweep.h"

typedef struct dgm__sweep_run {
    char dir[2048];     /* the sweep directory, absolute */
    char exe[PATH_MAX]; /* this dgm */
    dgm__sweep *sweep;
    json_t *manifest;
    int jobs, threads;
    bool fail_fast, quiet;
    int n_todo, n_finished;
    dgm__asha *asha;           /* an ASHA sweep's scheduler, or NULL */
    int *relaunch, n_relaunch; /* its jobs that --resume runs again */
    dgm__tpe *tpe;             /* a search's estimator, or NULL */
} dgm__sweep_run;

/* The signal (SIGINT, SIGTERM) that asked the sweep to stop, or 0. */
extern volatile sig_atomic_t dgm__sweep_got_signal;
void dgm__sweep_on_signal(int sig); /* sets dgm__sweep_got_signal */
void dgm__sweep_on_child(int sig);  /* only wakes sigsuspend */

/* "dgm sweep: <message>" to stderr; returns DGM_EXIT_USAGE. */
int dgm__sweep_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* text into path, atomically. */
int dgm__sweep_write_text(const char *path, const char *text);
/* Trial i's run directory (from the expansion's sanitised name). */
const char *dgm__sweep_trial_dir(const dgm__sweep_run *c, int i, char *buf,
                                 size_t n);
/* Trial i's status in the manifest. */
const char *dgm__sweep_status_of(const dgm__sweep_run *c, int i);
/* o[k] = v as a JSON string, or null when v is NULL. */
void dgm__sweep_set_str(json_t *o, const char *k, const char *v);
/* The manifest written; a failure is a warning (the trials go on). */
void dgm__sweep_save(dgm__sweep_run *c);
/* Trial i's run directory emptied and its trial.yaml written. */
int dgm__sweep_prepare_trial(dgm__sweep_run *c, int i);
/* Record how trial i ended (status, exit code, signal, message). */
void dgm__sweep_finish_trial(dgm__sweep_run *c, int i, int exit_code, int sig,
                             bool stopped, const char *why);
/* "failed" or "diverged". */
bool dgm__sweep_failed(const char *st);

/* Run the trials todo[0..n_todo) N at a time (c->jobs) as child
 * processes (`dgm sweep --run-trial`), or as one Slurm job array. Each
 * trial's outcome goes to the manifest; 0, or a negative DGM_E* code
 * when the launcher itself could not go on. */
int dgm__sweep_run_local(dgm__sweep_run *c, const int *todo, int n_todo);
int dgm__sweep_run_slurm(dgm__sweep_run *c, const int *todo, int n_todo);
/* An ASHA sweep on Slurm: each job (a trial to a rung) submitted as the
 * scheduler gives it, decisions made as jobs end (sweep_slurm.c). */
int dgm__sweep_run_slurm_asha(dgm__sweep_run *c);
/* `dgm sweep --run-trial SWEEPDIR INDEX`: one trial in this process;
 * returns the exit status. */
int dgm__sweep_run_trial(const char *dir, const char *index, int threads,
                         int64_t stop_after, bool cont);

/* ---- ASHA (sweep_asha.c) --------------------------------------------- */

/* The trials' base config for an ASHA sweep: train.steps = max_steps,
 * train.eval_every (min_steps unless given) dividing every lower rung. */
int dgm__sweep_asha_base(dgm__sweep *s, const dgm_config *root);
/* The scheduler, new or (resume) replayed from the manifest's events. */
int dgm__sweep_asha_open(dgm__sweep_run *c, bool resume);
/* The next job: trial and the step to train it to; 0 when none now. */
int dgm__sweep_asha_take(dgm__sweep_run *c, int *trial, int64_t *step);
/* A job of trial i ended (killed: stopped by dgm sweep). */
void dgm__sweep_asha_ended(dgm__sweep_run *c, int i, int exit_code, int sig,
                           bool killed);
/* The last evaluation of metric in dir/metrics.jsonl at step (step < 0:
 * the last one at any step), or NAN. */
double dgm__sweep_eval_metric(const char *dir, const char *metric,
                              int64_t step);
/* Free the scheduler; if it has nothing left, the trials left at a
 * lower rung are done. */
void dgm__sweep_asha_close(dgm__sweep_run *c);

/* ---- model-based search (sweep_tpe_run.c) ---------------------------- */

/* The estimator, new or (resume) replayed from the manifest's events. */
int dgm__sweep_tpe_open(dgm__sweep_run *c, bool resume);
/* Trial i is about to start: its proposal made (once) and set. */
int dgm__sweep_tpe_launch(dgm__sweep_run *c, int i);
/* A job of trial i ended (after the manifest has its outcome): its loss
 * to the estimator, once per trial. */
void dgm__sweep_tpe_ended(dgm__sweep_run *c, int i);
void dgm__sweep_tpe_close(dgm__sweep_run *c);

#endif
