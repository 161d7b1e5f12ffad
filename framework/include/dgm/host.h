/* dgm/host.h - what a program that hosts plugins uses: the plugin
 * registry, experiments and the trainer. The dgm CLI is such a program;
 * plugins never need this header.
 *
 *     dgm_registry *reg;
 *     if (dgm_registry_new(&reg) < 0 ||
 *         dgm_registry_add_dir(reg, "build/plugins") < 0 ||
 *         dgm_registry_add_env(reg) < 0 || dgm_registry_scan(reg) < 0)
 *         ...
 *     const dgm_plugin_desc *d;
 *     int rc = dgm_registry_find(reg, DGM_KIND_MODEL, "vae", &d, NULL);
 *     dgm_registry_free(reg);   // unloads every plugin
 */
#ifndef DGM_HOST_H
#define DGM_HOST_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "dgm/config.h"
#include "dgm/export.h"
#include "dgm/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ====================================================================== */
/* Plugin registry                                                        */
/* ====================================================================== */

/* Ownership: dgm_registry_new -> dgm_registry_free, which dlcloses every
 * plugin; descriptors found through it die with it. */
DGM_API int dgm_registry_new(dgm_registry **out);
DGM_API void dgm_registry_free(dgm_registry *r);
/* Append a folder to the search path (missing folders are kept in the
 * path, and shown in "not found" messages, but skipped). */
DGM_API int dgm_registry_add_dir(dgm_registry *r, const char *dir);
/* Append each folder of $DGM_PLUGIN_PATH (colon-separated). */
DGM_API int dgm_registry_add_env(dgm_registry *r);
/* Append the plugin folder that belongs to the running dgm executable
 * (<exe>/../plugins in a build tree, <exe>/../lib/dgm/plugins installed). */
DGM_API int dgm_registry_add_default(dgm_registry *r);
/* Load every *.so in the search path, in order. A file that cannot be
 * loaded (dlopen failure, no query symbol, ABI mismatch, bad descriptor)
 * is recorded as a problem, and the rest still load; two plugins of one
 * name make that name ambiguous (using it is an error naming both files).
 * Returns the number of problems (>= 0) or a negative code. */
DGM_API int dgm_registry_scan(dgm_registry *r);
/* Load one file explicitly (a YAML `plugin:` given as a path). Fails with
 * the file's problem. */
DGM_API int dgm_registry_load_file(dgm_registry *r, const char *path);
/* On demand (off by default; call before scanning): a scan only indexes
 * a file that lists its plugin names in a `.dgm_plugins` section
 * (DGM_PLUGIN_NAME in dgm/plugin.h; read from the file, none of its code
 * runs), and dgm_registry_find dlopens it when asked for one of those
 * names, with every other indexed file that lists the name, so a
 * duplicate is still reported naming both files. A file without the
 * section is loaded by the scan as before. `dgm run` and the other
 * subcommands that load an experiment use it; count/at see only loaded
 * files. */
DGM_API void dgm_registry_set_on_demand(dgm_registry *r, bool on);
/* Load every file indexed but not yet loaded (`dgm plugins` lists them
 * all). Returns the number of new problems (>= 0) or a negative code. */
DGM_API int dgm_registry_load_all(dgm_registry *r);

/* Problems met while scanning: "file: message". */
DGM_API int dgm_registry_problem_count(const dgm_registry *r);
DGM_API const char *dgm_registry_problem(const dgm_registry *r, int i);

/* Find a plugin by name (or by path, when name holds '/' or ends in .so:
 * the file is loaded on demand). kind 0 accepts any kind; otherwise a
 * plugin of another kind fails with DGM_EKIND naming the file and both
 * kinds. Not found: DGM_ENOTFOUND listing the search path. */
DGM_API int dgm_registry_find(dgm_registry *r, dgm_kind kind,
                              const char *name, const dgm_plugin_desc **desc,
                              const char **file);
DGM_API int dgm_registry_count(const dgm_registry *r);
DGM_API const dgm_plugin_desc *dgm_registry_at(const dgm_registry *r, int i,
                                               const char **file);
/* The search path joined with ':'. */
DGM_API const char *dgm_registry_search_path(const dgm_registry *r);

/* ====================================================================== */
/* Experiments and the trainer                                            */
/* ====================================================================== */

typedef struct dgm_experiment dgm_experiment;

typedef struct dgm_run_options {
    const char *runs_root;   /* default "runs" */
    const char *run_dir;     /* exact run directory (NULL: runs_root/name/time) */
    const char *resume_dir;  /* continue this run */
    bool quiet;              /* no progress output */
    int threads;             /* 0: the experiment's `threads:` */
    int64_t stop_after;      /* > 0: checkpoint and stop at this step, as
                                a time-limited job would; --resume goes on */
} dgm_run_options;

/* Load an experiment file, apply overrides ("a.b=v", "+a.b=v"), resolve
 * every plugin and validate every section. Nothing is built yet. */
DGM_API int dgm_experiment_load(dgm_experiment **out, dgm_registry *reg,
                                const char *path, const char *const *overrides,
                                int n_overrides);
/* Same from an already loaded config tree (taken over by the experiment). */
DGM_API int dgm_experiment_from_config(dgm_experiment **out,
                                       dgm_registry *reg, dgm_config *root);
DGM_API void dgm_experiment_free(dgm_experiment *e);
/* The resolved config (defaults filled in). */
DGM_API const dgm_config *dgm_experiment_config(const dgm_experiment *e);

/* Instantiate every plugin (data set read, model built). dgm_experiment_run
 * does it if it was not done; calling it first separates configuration
 * problems (a missing data file, a block that cannot fit the data) from
 * failures of the run. */
DGM_API int dgm_experiment_build(dgm_experiment *e);

/* Build, train, evaluate, write the run directory. Returns 0, or a code:
 * DGM_EDIVERGED for a non-finite loss (summary says "diverged"). A run
 * stopped by stop_after returns 0 with status "stopped". */
DGM_API int dgm_experiment_run(dgm_experiment *e, const dgm_run_options *o);

/* Build the experiment saved in a run directory, load its last
 * checkpoint's parameters and write a grid of n samples to out_png. */
DGM_API int dgm_run_sample_grid(dgm_registry *reg, const char *run_dir,
                                int64_t n, const char *out_png,
                                uint64_t seed);

/* ====================================================================== */
/* Blocks outside an experiment                                           */
/* ====================================================================== */

/* A build context of its own, to create and run blocks without a model:
 * unit tests of a block, tools. Parameters go into `params` (borrowed) and
 * are initialised from a generator seeded with `seed`. Ownership:
 * dgm_build_new -> dgm_build_free, which destroys the blocks it made;
 * reg must outlive it. */
DGM_API int dgm_build_new(dgm_build **out, dgm_registry *reg,
                          dgm_params *params, uint64_t seed);
DGM_API void dgm_build_free(dgm_build *b);

/* ====================================================================== */
/* Finished runs                                                          */
/* ====================================================================== */

/* A run directory's experiment rebuilt from its config.yaml with its last
 * checkpoint's parameters (and data-set state) loaded, in eval mode.
 * Ownership: dgm_run_open -> dgm_run_close; reg must outlive it. */
typedef struct dgm_run dgm_run;
DGM_API int dgm_run_open(dgm_run **out, dgm_registry *reg,
                         const char *run_dir);
DGM_API void dgm_run_close(dgm_run *r);
DGM_API dgm_experiment *dgm_run_experiment(dgm_run *r);
/* Run the model's first-phase forward on x [n, x_shape...] in eval mode,
 * in batches of at most 256, and copy the named output (2-D after
 * flattening) into a new tensor *out [n, D] the caller frees. */
DGM_API int dgm_run_forward_output(dgm_run *r, const dgm_tensor *x,
                                   const char *output, dgm_tensor **out);

/* The data set the run was trained on (shapes, classes, value range). */
DGM_API const dgm_data_info *dgm_run_data_info(dgm_run *r);
/* The name of the run's model plugin ("vae"); borrowed from the run. */
DGM_API const char *dgm_run_model_name(dgm_run *r);

/* ---- a run's data and latent space (dgm explore) ----------------------- */

/* Examples [start, start + n) of split as the model sees them: new
 * tensors *x [n, x_shape...] and, when y is not NULL and the data has
 * class labels, *y i64 [n] (else *y stays NULL); the caller frees both.
 * DGM_ERANGE naming the split's size for rows outside it. */
DGM_API int dgm_run_examples(dgm_run *r, dgm_split split, int64_t start,
                             int64_t n, dgm_tensor **x, dgm_tensor **y);
/* n samples of the model (as dgm sample draws them, the same for the
 * same seed) into a new tensor *x [n, x_shape...] the caller frees. */
DGM_API int dgm_run_samples(dgm_run *r, int64_t n, uint64_t seed,
                            dgm_tensor **x);
/* The size of the model's latent z: 0 when it has none it can decode
 * (its plugin lacks the latent_size and decode slots, ABI 2.2). */
DGM_API int64_t dgm_run_latent_size(dgm_run *r);
/* The posterior of x [n, x_shape...] (token windows [n, t] may be
 * shorter, 1 <= t <= T): new tensors *mean and (if logvar is not NULL and
 * the model gives one) *logvar, [n, latent]. A model without an encode
 * slot: DGM_EUNSUPPORTED naming it. */
DGM_API int dgm_run_encode(dgm_run *r, const dgm_tensor *x, dgm_tensor **mean,
                           dgm_tensor **logvar);
/* Data for latents z f32 [n, latent] into a new tensor *x [n,
 * x_shape...], conditioned on labels y i64 [n] when y is not NULL: a
 * model that ignores labels is then refused with DGM_EUNSUPPORTED, as is
 * one with no latent space. */
DGM_API int dgm_run_decode(dgm_run *r, const dgm_tensor *z, const dgm_tensor *y,
                           dgm_tensor **x);
/* A sequence model's decode with its tokens drawn at `temperature` (> 0)
 * instead of its own (greedy) choice, the same for the same seed: new
 * *x [n, x_shape...]. A model that decodes deterministically (it does
 * not report "temperature_used") is refused with DGM_EUNSUPPORTED. */
DGM_API int dgm_run_decode_sampled(dgm_run *r, const dgm_tensor *z,
                                   float temperature, uint64_t seed,
                                   dgm_tensor **x);
/* What the model's blocks record under `name` (dgm_graph_tap, e.g.
 * "attention") while the run's first-phase forward reads examples x, or
 * while its decode reads latents z (give exactly one, at most 256 rows):
 * a new tensor per record into out[0..*n), in the order recorded, at
 * most max; the caller frees them. DGM_EUNSUPPORTED when no block
 * records `name`. */
DGM_API int dgm_run_probe(dgm_run *r, const dgm_tensor *x, const dgm_tensor *z,
                          const char *name, dgm_tensor **out, int max, int *n);
/* text's bytes as the run's token ids (the data set's "vocab" state),
 * strlen(text) of them into ids; bytes the vocabulary lacks are refused,
 * naming them, as dgm_run_generate does. */
DGM_API int dgm_run_text_ids(dgm_run *r, const char *text, int32_t *ids);
/* The bytes of token ids[0..n) into text[0..n] (NUL-terminated); an id
 * outside the vocabulary (a model's unknown id) is shown as '?'. */
DGM_API int dgm_run_ids_text(dgm_run *r, const int64_t *ids, int64_t n,
                             char *text);

/* ====================================================================== */
/* Evaluating outside training (dgm eval)                                 */
/* ====================================================================== */

/* The figures of an evaluation, in the order the metrics set them.
 * Ownership: made by dgm_run_evaluate / dgm_eval_file_metrics, freed with
 * dgm_results_free. */
DGM_API int dgm_results_count(const dgm_results *r);
DGM_API const char *dgm_results_name(const dgm_results *r, int i);
DGM_API double dgm_results_value(const dgm_results *r, int i);
/* Which way figure i improves, as its metric's `figures` table declares
 * (DGM_BETTER_UNKNOWN when it does not). */
DGM_API dgm_better dgm_results_better(const dgm_results *r, int i);
/* "lower", "higher", "none"; NULL for DGM_BETTER_UNKNOWN (undeclared). */
DGM_API const char *dgm_better_name(dgm_better b);
DGM_API void dgm_results_free(dgm_results *r);

/* Run metrics on an opened run. `metrics` is a YAML sequence of metric
 * maps ({plugin: fid, classifier: DIR}), each validated against its
 * plugin's schema (defaults filled in), or NULL for the run's own
 * `metrics:`. A map's `corrupt:` and `generalization_gap:` are evaluated
 * as in training: figures F@<corruption>, F@<corruption>/drop, F@train,
 * F@train/gap after the metric's own. The seed fixes every random draw of
 * the evaluation; with dgm_run_eval_seed(r) the figures are those the
 * run's own evaluation gave for the same checkpoint. */
DGM_API int dgm_run_evaluate(dgm_run *r, const dgm_config *metrics,
                             uint64_t seed, dgm_results **out);
/* The seed the run's own evaluations used (derived from its `seed:`). */
DGM_API uint64_t dgm_run_eval_seed(dgm_run *r);

/* Score a file of samples against a data set: `samples` is an IDX file of
 * u8 images (gzipped or not; 0..255 mapped linearly onto the data's value
 * range) or a .safetensors file holding one F32 tensor [n, C, H, W] or
 * [n, H, W] in the data's value range (see docs/formats.md); `data` is an
 * experiment YAML or a run directory whose `data:` gives the data set (no
 * model is built). The metrics (a non-empty sequence as above) draw their
 * samples from the file, from its first row for each metric; a metric
 * whose `n` is not given is set to the file's count. `corrupt:` disturbs
 * the data set's examples a metric reads (not the file's samples), as in
 * training; `generalization_gap:` is refused (DGM_EUNSUPPORTED, naming
 * the key): a file of samples has no model to run on training examples.
 * A malformed file
 * (unreadable, truncated, wrong magic or dtype, a shape that is not the
 * data's, non-finite values) is refused with DGM_EFORMAT, DGM_EDTYPE or
 * DGM_ESHAPE and a message naming the file. */
DGM_API int dgm_eval_file_metrics(dgm_registry *reg, const char *samples,
                                  const char *data,
                                  const dgm_config *metrics, uint64_t seed,
                                  dgm_results **out);

/* Generate text from a sequence model's run: the prompt's bytes are
 * mapped through the data set's vocabulary (its "vocab" state: U8 [V]
 * bytes in id order), continued by `length` tokens with o, and the whole
 * text returned in *text (malloc'd, NUL-terminated; the caller frees).
 * The same seed gives the same text. Bytes of the prompt that are not in
 * the vocabulary are refused, naming them. */
DGM_API int dgm_run_generate(dgm_registry *reg, const char *run_dir,
                             const char *prompt, int64_t length,
                             const dgm_generate_opts *o, uint64_t seed,
                             char **text);

#ifdef __cplusplus
}
#endif
#endif
