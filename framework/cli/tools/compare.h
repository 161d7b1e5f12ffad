/* compare.h - comparing runs: the runs under run, sweep and run-folder
 * paths, grouped into variants, each metric's mean and sample deviation
 * over seeds, the best variant per metric; the tables `dgm compare`
 * prints and the HTML page `dgm report` writes (never installed).
 *
 * Part of the dgm_tools library (framework/cli/tools), which the dgm CLI,
 * the tests and the fuzz harnesses link; not in libdgm.
 *
 *     dgm__compare *c;
 *     const char *paths[] = {"runs/vae_fashion/sweep-20261128-200530"};
 *     dgm__cmp_options o = {0};                   // every final figure
 *     if (dgm__compare_load(&c, paths, 1, &o) < 0) ...
 *     dgm__compare_write(c, DGM__CMP_TABLE, stdout);
 *     dgm__compare_free(c);
 */
#ifndef DGM_COMPARE_H
#define DGM_COMPARE_H

#include <stdbool.h>
#include <stdio.h>

#include <jansson.h>

#include "dgm/config.h"
#include "dgm/host.h" /* dgm_better, dgm_better_name */

typedef enum dgm__cmp_format {
    DGM__CMP_TABLE = 0, /* aligned text */
    DGM__CMP_CSV,
    DGM__CMP_MARKDOWN,
    DGM__CMP_JSON
} dgm__cmp_format;

typedef struct dgm__cmp_options {
    /* Metrics (names in summary.json's "final", or its top-level numbers
     * such as train_loss); none: every final figure, then train_loss. */
    const char *const *metrics;
    int n_metrics;
    /* Config paths (model.latent) read from each run's config.yaml; when
     * given, a variant is one combination of their values. */
    const char *const *group_by;
    int n_group_by;
    /* Directions that override the ones the runs recorded (summary.json
     * "better") and the fallback guess of dgm__compare_better. */
    const char *const *higher;
    int n_higher;
    const char *const *lower;
    int n_lower;
} dgm__cmp_options;

/* A path as given: a sweep (manifest set) or a plain run directory. */
typedef struct dgm__cmp_source {
    char *path;
    json_t *manifest; /* a sweep's manifest.json, owned; NULL for a run */
} dgm__cmp_source;

typedef struct dgm__cmp_run {
    char *dir;          /* the run directory */
    const char *status; /* static: done, failed, diverged, stopped,
                           running, pending */
    char *name;         /* the experiment's name */
    json_t *seed;       /* owned; NULL when unknown */
    json_t *summary;    /* summary.json, owned; NULL when there is none */
    json_t *trial;      /* the manifest's trial object (borrowed), or NULL */
    dgm_config *config; /* config.yaml, owned; NULL when there is none */
    int source;         /* index into sources */
    int variant;        /* index into variants */
} dgm__cmp_run;

/* One metric of one variant over its completed runs: mean NAN when n = 0,
 * sd (sample, n - 1) NAN when n < 2. */
typedef struct dgm__cmp_stat {
    int n;
    double mean, sd;
    bool best;
} dgm__cmp_stat;

typedef struct dgm__cmp_variant {
    char *key;     /* what its runs share (canonical text) */
    char *label;   /* "latent=20", "vae_fashion model.latent=20" */
    json_t *group; /* the values that define it: {key: value}, owned */
    int n_runs;
    int *runs; /* indices into runs, in input order */
    int done, failed, diverged, stopped, running, pending;
    dgm__cmp_stat *stat; /* one per metric */
} dgm__cmp_variant;

typedef struct dgm__compare {
    int n_sources;
    dgm__cmp_source *sources;
    int n_runs;
    dgm__cmp_run *runs;
    int n_variants;
    dgm__cmp_variant *variants; /* in order of first appearance */
    int n_metrics;
    char **metrics;
    dgm_better *better; /* one per metric */
    int n_notes;
    char **notes; /* what the reader should know ("X/summary.json: none
                     yet, counted as running") */
} dgm__compare;

/* Gather the runs under paths (each a run directory, a sweep directory
 * with manifest.json, or a folder of those up to two levels deep:
 * runs/<name>/<run>), read their summary.json, config.yaml and the
 * sweeps' manifests, group them into variants and compute every metric.
 * Refused with the file named: a path that is none of those (DGM_ENOTFOUND),
 * malformed JSON or YAML (DGM_EFORMAT and the reader's codes), a
 * trial the manifest calls done or diverged without summary.json
 * (DGM_ENOTFOUND), a --metric or --group-by no run has (DGM_EKEY).
 * Ownership: *out -> dgm__compare_free. */
int dgm__compare_load(dgm__compare **out, const char *const *paths, int n_paths,
                      const dgm__cmp_options *o);
void dgm__compare_free(dgm__compare *c);

/* The fallback for runs that recorded no direction for a figure (written
 * before metrics declared one, or a metric that declares none): a guess
 * from the name's words (split
 * at '_', '/', '.', '-'): a word of {std, var, steps, epochs, params,
 * count} -> none; else a word of {neg, nll, loss, fid, kid, error, err,
 * bpc, bpd, bits, nats, perplexity, ppl, mse, mae, rmse, kl, time,
 * distance} -> lower; else a word of {accuracy, acc, precision, recall,
 * elbo, f1, auc, inception, is, coverage, density, likelihood, ll} ->
 * higher; else none. */
dgm_better dgm__compare_better(const char *metric);

/* "table", "csv", "markdown" (or "md"), "json"; DGM_EINVAL otherwise. */
int dgm__compare_format_parse(const char *s, dgm__cmp_format *out);
/* The comparison in a format. DGM_EIO when f fails. */
int dgm__compare_write(const dgm__compare *c, dgm__cmp_format fmt, FILE *f);
/* The comparison as JSON (what --format json prints). New reference. */
json_t *dgm__compare_json(const dgm__compare *c);
/* Cell texts the formats share: "244.275" (mean, %.6g), "1.23" (sd,
 * %.3g), "-" for NAN. */
const char *dgm__cmp_num(double v, int digits, char *buf, size_t n);

/* ASHA sweeps among the sources (manifest "scheduler"): a table of each
 * trial's rung, step, last rung metric, decision and reason, after the
 * comparison (table and markdown formats; compare_asha.c). */
void dgm__compare_asha_write(const dgm__compare *c, bool markdown, FILE *f);
/* The same as JSON: [{"sweep", "asha", "steps", "trials": [{"name",
 * "rung", "step", "metrics", "promotions", "decision", "reason"}]}].
 * New reference. */
json_t *dgm__compare_asha_json(const dgm__compare *c);

/* ---- the HTML report ------------------------------------------------- */

/* One self-contained HTML page (inline CSS and SVG, samples as data:
 * URIs; nothing fetched): the comparison table (<tr class="variant">),
 * a learning-curve chart per logged loss term with one
 * <polyline class="curve"> per variant (the mean over its completed runs
 * at each logged step), the last sample grid (samples/ PNG) of each variant,
 * and every run with its status. Every text from a file is HTML-escaped.
 * Refused: a malformed metrics.jsonl line (DGM_EFORMAT, file:line). */
int dgm__report_write(const dgm__compare *c, const char *title, FILE *f);
/* The report's ASHA section (nothing without an ASHA sweep): per sweep a
 * chart of the metric at each rung per trial (<g class="trial">, a
 * <circle class="promoted"> where it went up, class="stopped" where it
 * stopped) and the table of dgm__compare_asha_write
 * (<tr class="asha-trial">). */
void dgm__report_asha(const dgm__compare *c, FILE *f);
/* The report's "metrics against swept values" section (report_sweep.c;
 * nothing when no swept key has two values on one line): per swept key
 * and metric, a chart of the variants' means with one standard deviation
 * as error bars (<circle class="swept-point" data-mean data-sd>,
 * <line class="errbar">), one <polyline class="swept-line"> per
 * combination of the other swept values; log x for positive numbers over
 * two decades, categories in order of appearance for other values. */
void dgm__report_swept(const dgm__compare *c, FILE *f);
/* dgm__report_write into path, atomically (tmp + rename). */
int dgm__report_save(const dgm__compare *c, const char *title,
                     const char *path);

#endif
