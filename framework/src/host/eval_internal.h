/* eval_internal.h - the evaluation context behind dgm_eval (never
 * installed). */
#ifndef DGM_EVAL_INTERNAL_H
#define DGM_EVAL_INTERNAL_H

#include "host_internal.h"

struct dgm_eval {
    dgm_experiment *e;
    dgm_graph *g;
    dgm_step step;
    dgm_vars io;
    dgm__batchbuf bb;
    dgm_rng rng;
    int64_t at_step;
    /* while a metric is run again on corrupted data: the corruption every
     * batch goes through, and its own draws (so that the metric's draws
     * are those of the clean run) */
    const dgm__corruption *corrupt;
    dgm_rng corrupt_rng;
    /* Sharded evaluation (ABI 2.3). ranks: every rank of a data-parallel
     * run evaluates together (the trainer sets it); sharded: the running
     * metric is shard-aware and runs on every rank; failed: the rank a
     * dgm_eval_sum learned had failed in it (-1: none). */
    bool ranks, sharded;
    int failed;
    /* the draws' seeds: the evaluation's (from dgm__eval_new's seed), the
     * running metric's and its corruption's, which dgm_eval_draws keys */
    dgm_rng base, draw_base, corrupt_base;
    /* may be NULL: called before each run of a metric (clean, corrupted,
     * on the training subset), so that a sample file standing in for the
     * model hands out the same rows to each (run/eval_file.c) */
    void (*restart)(void *arg);
    void *restart_arg;
};

/* The seed of a run's own evaluations (every eval_every and the final
 * one) from the run's seed; dgm eval on a run directory takes it by
 * default (dgm_run_eval_seed), so that it reproduces them. */
#define DGM__EVAL_SEED(run_seed) ((uint64_t)(run_seed) ^ 0x5eed5eedULL)

/* Ownership: dgm__eval_new -> dgm__eval_free. The seed fixes every random
 * draw of the evaluation, so figures are repeatable. */
int dgm__eval_new(dgm_eval **out, dgm_experiment *e, uint64_t seed);
void dgm__eval_free(dgm_eval *ev);
int dgm__eval_metrics(dgm_eval *ev, dgm_results *res);
/* Free a results object's arrays and empty it (the struct stays). */
void dgm__results_clear(dgm_results *r);
dgm_step *dgm__eval_empty_step(dgm_eval *ev);

#endif
