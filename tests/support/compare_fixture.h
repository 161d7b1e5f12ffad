/* compare_fixture.h - test support for the compare suites (compare,
 * compare_format): run and sweep directories with known figures
 * (summary.json, config.yaml, metrics.jsonl, manifest.json, samples), and
 * the statistics worked out by hand for them.
 *
 *     int main(void)
 *     {
 *         tc_cmp_setup();            // writes the sweep, runs and bad/
 *         ... run the suite ...
 *         tc_cmp_cleanup(failed);    // removes them when all passed
 *     }
 *
 * The fixtures are made outside a test, where a ck_assert cannot report:
 * a failure prints the reason and exits. */
#ifndef DGM_TEST_COMPARE_FIXTURE_H
#define DGM_TEST_COMPARE_FIXTURE_H

#include <stdbool.h>

/* This process's scratch folder, the sweep and the plain runs in it, and
 * a folder for the bad-input cases. */
extern char tc_cmp_root[1024];
extern char tc_cmp_sweep[1200], tc_cmp_runs[1200], tc_cmp_bad[1200];

/* The figures of the sweep's table (compare_fixture.c), worked out by
 * hand: mean and sample deviation (n - 1). */
typedef struct tc_cmp_row {
    const char *label, *metric;
    int n;
    double mean, sd; /* sd NAN: one run */
    bool best;
} tc_cmp_row;
extern const tc_cmp_row tc_cmp_expect[];
extern const int tc_cmp_n_expect;

/* Make the scratch folder, the sweep and the plain runs. */
void tc_cmp_setup(void);
/* Remove the scratch folder when no test failed (kept for a look if one
 * did). */
void tc_cmp_cleanup(int failed);

/* mkdir -p with the tools' own helper. */
void tc_cmp_mkdirs(const char *p);
/* Write text to the file the format names, making its folder. */
void tc_cmp_put(const char *text, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* DIR/summary.json: status, final figures (JSON members) and train loss. */
void tc_cmp_summary(const char *dir, const char *status, const char *final,
                    double train_loss);
/* DIR/config.yaml: a VAE experiment with these settings. */
void tc_cmp_config(const char *dir, const char *name, int latent, double lr,
                   int seed);

#endif
