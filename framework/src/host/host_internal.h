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
/* runs opened inside each other: a teacher's teacher's ... (run/) */
#define DGM_MAX_RUN_NESTING 16
/* data.prefetch when unset: batches built ahead on the loader's thread */
#define DGM__PREFETCH_DEFAULT 2

/* One term of an objective. */
typedef struct dgm__term {
    dgm__inst loss;
    const char *label;    /* "bernoulli_nll" or the term's `name:` */
    int n_inputs;
    const char *inputs[DGM_MAX_LOSS_INPUTS];
    const char *mask;     /* NULL: unmasked */
    double weight;        /* `weight:`, or its map's `value:` */
    /* `weight:` as a map: the schedule over the phase's updates (constant
     * otherwise); scheduled says whether the trainer logs it. */
    dgm__schedule wsched;
    bool scheduled;
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

/* A provider adds named tensors to a step's before the objective reads
 * them: the heads (heads.c) and the teachers (run/teacher.c). The build
 * lists them; the objective calls each in order, and freeing the
 * experiment closes them, so neither needs to know what they are. */
typedef struct dgm__provider {
    void *self;
    /* Add what phase `phase`'s objective reads (dgm__phase_reads) and io
     * lacks. */
    int (*forward)(void *self, dgm_experiment *e, int phase, dgm_graph *g,
                   dgm_vars *io);
    void (*close)(void *self); /* may be NULL */
} dgm__provider;
#define DGM_MAX_PROVIDERS 4

/* One entry of a metric's `corrupt:` (corrupt.c): an augmentation that
 * the metric's batches go through in place. */
typedef struct dgm__corruption {
    char label[32]; /* "noise=0.1": the figures' suffix after '@' */
    dgm__inst aug;
    dgm_config *cfg; /* owned: the augment's map, built from the entry */
} dgm__corruption;
typedef struct dgm__corruptions {
    dgm__corruption *c;
    int n;
} dgm__corruptions;

/* A metric's `generalization_gap:` (gap.c): the same metric on the first
 * N training examples. */
typedef struct dgm__gap {
    dgm__inst inst;  /* desc NULL: the metric has no gap */
    dgm_config *cfg; /* owned: the metric's map with split: train */
} dgm__gap;

typedef struct dgm__phase {
    const char *name;
    const dgm_config *objective; /* its terms' list, or NULL: none */
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
    bool live; /* counted in experiment.c's live_experiments */

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
    dgm__provider providers[DGM_MAX_PROVIDERS]; /* in the order they run */
    int n_providers;
    dgm__inst *metrics;
    int n_metrics;
    dgm__corruptions *corrupt; /* per metric; NULL: none has `corrupt:` */
    dgm__gap *gap; /* per metric; NULL: none has `generalization_gap:` */
    int64_t batch_size;
    bool shuffle;
    int prefetch; /* data.prefetch, DGM__PREFETCH_DEFAULT if unset */
    dgm_rng rng_init, rng_data, rng_aug, rng_step;
};

/* ---- building (experiment_build.c) ------------------------------------ */

int dgm__experiment_build(dgm_experiment *e);
/* Count e among the live experiments (once); the first one alive sets the
 * process's thread count (experiment.c). */
void dgm__experiment_set_live(dgm_experiment *e);
/* Append p to the experiment's providers (DGM_ERANGE past
 * DGM_MAX_PROVIDERS); on failure p->close is called (experiment.c). */
int dgm__experiment_add_provider(dgm_experiment *e, const dgm__provider *p);

/* Teachers are runs, and opening a run builds an experiment: the code
 * that opens them lives a layer up (run/teacher.c), and the build reaches
 * it only through this hook. The run layer sets it from a constructor when
 * libdgm is loaded, so that every way into a build (the CLI, a test, a
 * metric plugin opening its classifier run) finds it without a setup call
 * to forget; NULL (teachers refused) only if that layer were left out. */
typedef struct dgm__teacher_opener {
    /* Open e's validated, non-empty `teachers:` list, try each teacher on
     * example (one training example's x [1, ...], or NULL), and fill *out
     * with the provider that adds their outputs. */
    int (*open)(dgm_experiment *e, const dgm_config *list,
                const dgm_tensor *example, dgm__provider *out);
} dgm__teacher_opener;
extern const dgm__teacher_opener *dgm__teachers_hook;

/* ---- robustness (corrupt.c) --------------------------------------------- */

/* A metric's `corrupt:` list (NULL or absent: none): 0, or an error at
 * the entry (an unknown name with a suggestion, a strength out of range,
 * an entry listed twice). */
int dgm__corrupt_check(const dgm_config *list);
/* Build every metric's corruptions into e->corrupt (after the metrics). */
int dgm__corrupt_build(dgm_experiment *e);
void dgm__corrupt_free(dgm_experiment *e);
/* The same for a list of n metric maps other than e's own (checked with
 * dgm__corrupt_check; dgm eval's): *out gets n entries, to free with
 * dgm__corrupt_free_list(*out, n) whether or not the build succeeded. */
int dgm__corrupt_build_list(dgm_experiment *e, const dgm_config *metrics, int n,
                            dgm__corruptions **out);
void dgm__corrupt_free_list(dgm__corruptions *all, int n);
/* Corrupt the batch x in place with c's augmentation, drawing from rng. */
int dgm__corrupt_apply(const dgm__corruption *c, dgm_tensor *x, dgm_rng *rng);

/* ---- generalization gaps (gap.c) ---------------------------------------- */

/* A metric map's `generalization_gap:` (absent or null: none): an int >= 1
 * and a metric that takes `split: train` and max_examples / max_windows. */
int dgm__gap_check(dgm_registry *reg, const dgm_config *metric);
/* Build the training-subset instances into e->gap (after the metrics). */
int dgm__gap_build(dgm_experiment *e);
void dgm__gap_free(dgm_experiment *e);
/* The same for a list of n metric maps and their created instances inst
 * (dgm eval's): *out (NULL on entry) stays NULL when no metric asks for a
 * gap, else n entries to free with dgm__gap_free_list(*out, n) whether or
 * not the build succeeded. */
int dgm__gap_build_list(const dgm_config *metrics, const dgm__inst *inst, int n,
                        dgm__gap **out);
void dgm__gap_free_list(dgm__gap *gap, int n);

/* ---- heads (heads.c) ----------------------------------------------------- */

/* Build `heads:` and add their provider (none when there are no heads). */
int dgm__heads_build(dgm_experiment *e);
/* Does head hd's weights train in phase ph? */
bool dgm__head_trains_in(const dgm__head *hd, const dgm__phase *ph);

/* ---- the objective (objective.c) ---------------------------------------- */

/* Does an objective (a list of terms, config) read `name`, as an input or
 * a mask? The one rule behind what a phase reads, at load and at build. */
bool dgm__objective_reads(const dgm_config *objective, const char *name);
/* Does the phase's objective read `name`? */
bool dgm__phase_reads(const dgm__phase *ph, const char *name);
/* Term t's weight after `updates` completed updates of its phase. */
double dgm__term_weight(const dgm__term *tm, int64_t updates);
/* Compute one phase's objective on io, after the providers: total scalar,
 * and per-term batch values (term_values[i], may be NULL). per_example:
 * total [N] instead. */
int dgm__objective(dgm_experiment *e, int phase, dgm_graph *g, dgm_vars *io,
                   bool per_example, dgm_var **total, dgm_var **term_values);

/* Grows with each new figure (an elbo reports one per objective term, and
 * terms are unbounded); dgm__results_clear releases the arrays. */
struct dgm_results {
    int n, cap;
    char (*name)[DGM_MAX_RESULT_NAME];
    double *value;
    dgm_better *better; /* as the figure's metric declares it */
};

/* ---- checks that need no training data (experiment.c) -------------------
 * Both run when an experiment is resolved (steps_per_epoch unknown: -1)
 * and again when it is built (the data set's size known). */

/* Updates of the whole run: train.steps, else train.epochs times
 * steps_per_epoch; -1 when that depends on a steps_per_epoch not known
 * (<= 0). */
int64_t dgm__experiment_total_steps(const dgm_config *root,
                                    int64_t steps_per_epoch);
/* Every phase's learning-rate schedule, and every scheduled term weight,
 * against the run's length (a warm-up longer than the run): 0, or
 * DGM_ECONFIG naming phases.<phase>.optimizer.<key> (or the term's
 * weight.<key>). Checks nothing while the length is unknown. */
int dgm__experiment_check_schedules(const dgm_config *root,
                                    int64_t steps_per_epoch);

/* ---- checks on the built experiment ------------------------------------ */

/* ceil(training examples / batch size) (experiment_build.c). */
int64_t dgm__steps_per_epoch(const dgm_experiment *e);
/* Every objective term's inputs and mask are named tensors of its phase
 * (the model's outputs, x, y, heads, teachers): one eval-mode forward of
 * each phase on the first training examples, with a throwaway RNG. 0, or
 * DGM_ENOTFOUND naming the term's `inputs:` and what the phase has. Run by
 * dgm__experiment_build (objective.c). */
int dgm__experiment_check_inputs(dgm_experiment *e);

/* ---- batches outside training (batch.c) --------------------------------- */

/* Batch tensors of capacity n (x, y, y_mask), reused across batches. */
int dgm__batch_alloc(const dgm_data_info *info, int64_t n, dgm_tensor **x,
                     dgm_tensor **y, dgm_tensor **ym);
/* The first n rows of t, as a struct view (no allocation). */
void dgm__rows_view(dgm_tensor *view, const dgm_tensor *t, int64_t n);

/* Rows of a split read in order, in buffers that grow to the largest
 * batch asked (evaluation, the build's probes). Zero-initialised is
 * empty; dgm__batchbuf_free releases it. */
typedef struct dgm__batchbuf {
    dgm_tensor *x, *y, *ym; /* capacity `cap` rows */
    dgm_tensor xv, yv, mv;  /* views of the current batch's rows */
    int64_t cap;
    int64_t *idx;
} dgm__batchbuf;
void dgm__batchbuf_free(dgm__batchbuf *bb);
/* An eval-mode step on g (reset) with rng, at training step `at`. */
void dgm__step_eval(dgm_step *s, dgm_graph *g, dgm_rng *rng, int64_t at,
                    dgm_experiment *e);
/* Examples [start, start + n) of split into bb, drawn with rng; *s made
 * an eval-mode step on its graph s->g at training step s->step, and the
 * batch set as x (and y, y_mask) of io (cleared first). */
int dgm__batch_read(dgm__batchbuf *bb, dgm_experiment *e, dgm_split split,
                    int64_t start, int64_t n, dgm_rng *rng, dgm_step *s,
                    dgm_vars *io);

/* A probe: the first training examples in an eval-mode step of its own
 * (own graph, own RNG seeded from seed), so the build can try the model,
 * heads and teachers without touching the run's streams. */
typedef struct dgm__probe {
    dgm_graph *g;
    dgm_rng rng;
    dgm_step step;
    dgm_vars io;
    dgm__batchbuf bb;
} dgm__probe;
int dgm__probe_init(dgm__probe *p, uint64_t seed);
/* The first n training examples in a fresh step: *s and *io, valid until
 * the next call. */
int dgm__probe_batch(dgm__probe *p, dgm_experiment *e, int64_t n, dgm_step **s,
                     dgm_vars **io);
void dgm__probe_free(dgm__probe *p);

#endif
