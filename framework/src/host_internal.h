/* host_internal.h - the experiment host's structures: instantiated
 * plugins, phases, the model build context (never installed). */
#ifndef DGM_HOST_INTERNAL_H
#define DGM_HOST_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "dgm/host.h"
#include "dgm/plugin.h"
#include "schedule.h"

#define DGM__VARS_MAX 48

struct dgm_vars {
    int n;
    const char *name[DGM__VARS_MAX];
    dgm_var *var[DGM__VARS_MAX];
};

void dgm__vars_clear(dgm_vars *vs);

/* A plugin instance: descriptor, its state and the config it was made
 * from. */
typedef struct dgm__inst {
    const dgm_plugin_desc *desc;
    void *self;
    const dgm_config *cfg;
} dgm__inst;

void dgm__inst_destroy(dgm__inst *in);

struct dgm_block {
    dgm__inst inst;
    char *scope;
    dgm_shape in, out;
    struct dgm_block *next; /* the build's list, for destruction */
};

struct dgm_build {
    dgm_registry *reg;
    dgm_params *params;
    dgm_rng *rng;
    char scope[512];
    dgm_block *blocks; /* every block created, newest first */
};

/* Destroy every block a build created. */
void dgm__build_destroy_blocks(dgm_build *b);

/* One term of an objective. */
typedef struct dgm__term {
    dgm__inst loss;
    const char *label;    /* "bernoulli_nll" or the term's `name:` */
    int n_inputs;
    const char *inputs[8];
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

struct dgm_results {
    int n;
    char name[64][64];
    double value[64];
};

#endif
