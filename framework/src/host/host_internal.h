/* host_internal.h - the experiment host's structures: instantiated
 * plugins, phases, the model build context (never installed). */
#ifndef DGM_HOST_INTERNAL_H
#define DGM_HOST_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "dgm/host.h"
#include "dgm/plugin.h"
#include "plugin_internal.h"
#include "schedule.h"

/* ---- limits -------------------------------------------------------------
 * The host's fixed capacities, in this one place and in docs/experiments.md
 * ("Limits"). Those a config can reach are checked when the experiment is
 * resolved (experiment.c), with the file:line and key; the others when a
 * plugin adds past them. Objective terms, metrics, parameter groups and
 * the figures of an evaluation have no limit (allocated to size); heads and
 * teachers together take at most half of DGM_MAX_VARS (plugin_internal.h). */
#define DGM_MAX_LOSS_INPUTS 8   /* `inputs:` of one objective term */
#define DGM_MAX_PHASES 32       /* training phases of a model */
#define DGM_MAX_RESULT_NAME 64  /* bytes of a figure's name, with its NUL */
#define DGM_MAX_TEACHER_DEPTH 8 /* teachers of teachers */

/* One term of an objective. */
typedef struct dgm__term {
    dgm__inst loss;
    const char *label;    /* "bernoulli_nll" or the term's `name:` */
    int n_inputs;
    const char *inputs[DGM_MAX_LOSS_INPUTS];
    const char *mask;     /* NULL: unmasked */
    double weight;
} dgm__term;

/* A `param_groups:` entry inside a phase: the phase's parameters that
 * matched it first, with their own optimizer instance (the group's
 * `optimizer:`, or the phase's with the group's weight_decay) and a
 * learning-rate multiplier applied on top of the phase's schedule. */
typedef struct dgm__group {
    int index;           /* in `param_groups:` */
    dgm__inst opt;
    dgm_config *opt_cfg; /* owned: the optimizer map the group uses */
    double base_lr, lr_mult;
    dgm_param **params;
    int n_params;
} dgm__group;

/* An auxiliary head: a block on a named tensor of the model, its output
 * added to io under `name` when an objective needs it. */
typedef struct dgm__head {
    const char *name, *input;
    bool detach;
    const dgm_config *cfg; /* the head's map in `heads:` */
    dgm_block *blk;
} dgm__head;

typedef struct dgm__teachers dgm__teachers;

typedef struct dgm__phase {
    const char *name;
    int repeat;
    dgm__term *terms;
    int n_terms;
    dgm__inst opt;
    dgm__schedule sched; /* learning rate and clip_norm */
    double base_lr;
    dgm_param **params;  /* trainable weights of this phase */
    int n_params;
    int64_t updates;     /* optimizer steps taken */
    /* params matched by `param_groups:` (each stepped by the group's
     * optimizer); the others are ph->rest, stepped by ph->opt. */
    dgm__group *groups;
    int n_groups;
    dgm_param **rest;
    int n_rest;
} dgm__phase;

struct dgm_experiment {
    dgm_registry *reg;
    dgm_config *root;      /* resolved config */
    const char *name;
    uint64_t seed;
    int threads;
    bool live; /* counted in experiment_build.c's live_experiments */

    /* built by dgm__experiment_build */
    bool built;
    dgm__inst data;
    dgm_data_info info;
    dgm_params *data_state; /* the dataset's save_state, or NULL */
    dgm__inst *augments;
    int n_augments;
    dgm__inst model;
    dgm_build build;
    dgm_params *params;
    dgm__phase *phases;
    int n_phases;
    dgm__head *heads;
    int n_heads;
    struct dgm__teachers *teachers; /* `teachers:` (teacher.c), or NULL */
    dgm__inst *metrics;
    int n_metrics;
    int64_t batch_size;
    bool shuffle;
    dgm_rng rng_init, rng_data, rng_aug, rng_step;
};

int dgm__experiment_build(dgm_experiment *e);
/* Does the phase's objective read `name` (as an input or a mask)? */
bool dgm__phase_reads(const dgm__phase *ph, const char *name);
/* Add the outputs of the heads phase `phase`'s objective reads to io (a
 * no-op for heads already there or whose input is missing). */
int dgm__heads_forward(dgm_experiment *e, int phase, dgm_graph *g,
                       dgm_vars *io);
/* (Re)read the dataset's save_state into e->data_state (none if the
 * dataset has no state). */
int dgm__data_state_export(dgm_experiment *e);
/* Compute one phase's objective on io: total scalar, and per-term batch
 * values (term_values[i], may be NULL). per_example: total [N] instead. */
int dgm__objective(dgm_experiment *e, int phase, dgm_graph *g, dgm_vars *io,
                   bool per_example, dgm_var **total, dgm_var **term_values);

/* Grows with each new figure (an elbo reports one per objective term, and
 * terms are unbounded); dgm__results_clear releases the arrays. */
struct dgm_results {
    int n, cap;
    char (*name)[DGM_MAX_RESULT_NAME];
    double *value;
};

/* ---- checks that need no training data (experiment.c) -------------------
 * Both run when an experiment is resolved (steps_per_epoch unknown: -1)
 * and again when it is built (the data set's size known). */

/* Updates of the whole run: train.steps, else train.epochs times
 * steps_per_epoch; -1 when that depends on a steps_per_epoch not known
 * (<= 0). */
int64_t dgm__experiment_total_steps(const dgm_config *root,
                                    int64_t steps_per_epoch);
/* Every phase's learning-rate schedule against the run's length (a
 * warm-up longer than the run): 0, or DGM_ECONFIG naming
 * phases.<phase>.optimizer.<key>. Checks nothing while the length is
 * unknown. */
int dgm__experiment_check_schedules(const dgm_config *root,
                                    int64_t steps_per_epoch);

/* ---- checks on the built experiment (experiment_build.c) ---------------- */

/* ceil(training examples / batch size). */
int64_t dgm__steps_per_epoch(const dgm_experiment *e);
/* Every objective term's inputs and mask are named tensors of its phase
 * (the model's outputs, x, y, heads, teachers): one eval-mode forward of
 * each phase on the first training examples, with a throwaway RNG. 0, or
 * DGM_ENOTFOUND naming the term's `inputs:` and what the phase has. Run by
 * dgm__experiment_build. */
int dgm__experiment_check_inputs(dgm_experiment *e);

#endif
