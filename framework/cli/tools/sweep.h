/* sweep.h - a sweep: the experiment's `sweep:` section expanded into
 * trials (config assignments), the trials' configs, and the sweep
 * directory's manifest.json (never installed).
 *
 * Part of the dgm_tools library (framework/cli/tools), which the dgm CLI,
 * the tests and the fuzz harnesses link; not in libdgm.
 *
 *     dgm__sweep *s;
 *     if (dgm__sweep_expand(&s, root) < 0) ...      // root: the experiment
 *     for (int i = 0; i < s->n_trials; i++) {
 *         dgm_config *c;
 *         dgm__sweep_trial_config(s, i, &c);        // c: caller frees
 *         ...
 *     }
 *     dgm__sweep_free(s);
 */
#ifndef DGM_SWEEP_H
#define DGM_SWEEP_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "asha.h"
#include "dgm/config.h"
#include "tool_config.h"
#include "tpe.h"

/* At most this many trials in one sweep. */
#define DGM__SWEEP_MAX_TRIALS 100000
/* The expanded size: what all trials together assign, counted over every
 * trial (a value that 100 trials share counts 100 times), since the
 * manifest, the listing and the trials' configs each spell it out.
 * Values are shared, not copied, inside the sweep itself. */
#define DGM__SWEEP_MAX_NODES (1L << 21) /* config nodes */
#define DGM__SWEEP_MAX_BYTES (1L << 26) /* bytes of keys and scalar text */

/* One assignment of a trial: the config path and the value put there.
 * All three belong to the sweep and are shared by the trials. */
typedef struct dgm__sweep_assign {
    char *key;               /* "model.latent", "model.encoder.hidden[0]" */
    const dgm_config *value; /* keeps the sweep file's positions */
    char *label;             /* short text for the trial's name ("20", "mlp") */
} dgm__sweep_assign;

typedef struct dgm__sweep_trial {
    int index;
    char *name; /* "003-latent=20-seed=1": unique, safe as a folder */
    int n_assign;
    dgm__sweep_assign *assign; /* grid, zip, random, then seed */
} dgm__sweep_trial;

/* The `sweep.slurm:` options (strings NULL when not given). */
typedef struct dgm__sweep_slurm {
    char *partition;
    char *time;
    int64_t cpus_per_task; /* default 1 */
    int64_t max_parallel;  /* 0: no limit */
    int64_t ntasks;        /* MPI ranks per trial (srun -n), default 1 */
    int n_extra;
    char **extra_args; /* more sbatch arguments, as given */
} dgm__sweep_slurm;

/* `search: {tpe: ...}`: model-based proposals, each trial's values
 * decided when it launches (sweep_tpe.c). */
typedef struct dgm__sweep_tpe {
    int64_t n, startup, seed, candidates;
    double gamma;
    char *metric; /* NULL with an ASHA scheduler: its metric */
    bool maximize;
    int n_params;
    char **keys;             /* the swept config keys, in file order */
    dgm__tpe_param *params;  /* their distributions */
    const dgm_config **args; /* each one's list or range, borrowed */
    dgm__tool_scalars made;  /* the proposed values set in trials */
} dgm__sweep_tpe;

typedef struct dgm__sweep {
    dgm_config *base; /* the experiment without its sweep section; owned */
    int n_trials;
    dgm__sweep_trial *trials;
    dgm__sweep_slurm slurm;
    dgm__asha_config *asha;           /* `scheduler: {asha: ...}`, or NULL */
    dgm__sweep_tpe *tpe;              /* `search: {tpe: ...}`, or NULL */
    struct dgm__sweep_values *values; /* what assignments point into */
} dgm__sweep;

/* Expand root's `sweep:` section (grid x zip x random draws x seeds, in
 * that nesting, grid's first key slowest). root is not changed. Errors
 * name the sweep key ("exp.yaml:12:5: sweep.zip: ..."); an expanded size
 * over the limits above is refused (DGM_ERANGE) before any trial is
 * made. Ownership: *out -> dgm__sweep_free. */
int dgm__sweep_expand(dgm__sweep **out, const dgm_config *root);
void dgm__sweep_free(dgm__sweep *s);

/* Trial i's experiment: base with the trial's assignments set (values
 * deep-copied as trees, so whole plugin maps swap cleanly). Ownership:
 * *out -> dgm_config_free. */
int dgm__sweep_trial_config(const dgm__sweep *s, int i, dgm_config **out);

/* "model.latent=20": the assignment as a command-line override that
 * reads back to the same value (flow-style YAML). malloc'ed; NULL on
 * ENOMEM. */
char *dgm__sweep_override_text(const dgm__sweep_assign *a);

/* A config value as JSON: ints, floats, bools and null by YAML's core
 * schema, quoted scalars as strings, lists and maps. New reference. */
json_t *dgm__sweep_cfg_json(const dgm_config *n);

/* The two ends of a `[lo, hi]` range of a distribution kind
 * ("uniform", "loguniform"; int_range for "int"), refused with the
 * place named when not a range. */
int dgm__sweep_range_of(const dgm_config *r, const char *kind, double *lo,
                        double *hi);
int dgm__sweep_int_range_of(const dgm_config *r, int64_t *lo, int64_t *hi);

/* ---- model-based search (sweep_tpe.c) -------------------------------- */

/* Read `search: {tpe: {n, startup, seed, gamma, candidates, metric,
 * mode, params}}` into *out (errors name the key). */
int dgm__sweep_tpe_read(dgm__sweep_tpe **out, const dgm_config *sec);
void dgm__sweep_tpe_free(dgm__sweep_tpe *t);
/* A value for parameter k where trial i's config is validated before its
 * proposal exists (the range's low end, the first choice). */
const dgm_config *dgm__sweep_tpe_placeholder(const dgm__sweep_tpe *t, int k);
/* Trial i's searched keys set to the proposal x (a choice: its index). */
int dgm__sweep_tpe_assign(dgm__sweep *s, int i, const double *x);
/* A new estimator for the sweep's search (its seed, startup, ...). */
int dgm__sweep_tpe_new(const dgm__sweep *s, dgm__tpe **out);

/* ---- the manifest ---------------------------------------------------- */

/* A new manifest (format 1, every trial "pending"). New reference. */
json_t *dgm__sweep_manifest_new(const dgm__sweep *s, const char *name,
                                const char *experiment, const char *launcher);
/* <dir>/manifest.json written atomically (tmp + rename). */
int dgm__sweep_manifest_write(const char *dir, const json_t *m);
/* Read <dir>/manifest.json and check its shape. New reference. */
int dgm__sweep_manifest_load(const char *dir, json_t **out);
/* Trial i's object in the manifest (borrowed), or NULL. */
json_t *dgm__sweep_manifest_trial(json_t *m, int i);

/* The status of a trial whose process ended: "done" when the process
 * exited 0 and the run's summary.json says completed, "diverged" when
 * the summary says diverged, else "failed". exit_code as a shell gives
 * it (128 + signal for a signal). */
const char *dgm__sweep_outcome(const char *run_dir, int exit_code);

/* The current UTC time as ISO 8601 ("2026-11-28T19:56:19Z") in buf. */
const char *dgm__sweep_now(char *buf, size_t n);

#endif
