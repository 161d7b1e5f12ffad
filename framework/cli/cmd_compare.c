/* cmd_compare.c - `dgm compare`: one row per variant of some runs and
 * sweeps, each metric's mean and deviation over seeds (compare.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_compare.h"
#include "dgm/error.h"

static const char help[] =
    "usage: dgm compare RUN_OR_SWEEP... [--metric NAME ...] [--group-by KEY "
    "...]\n"
    "                   [--format table|csv|markdown|json] [--higher NAME "
    "...]\n"
    "                   [--lower NAME ...]\n"
    "\n"
    "Compare runs: each argument is a run directory, a sweep directory\n"
    "(manifest.json) or a folder of those (runs/, runs/<name>/). Runs are\n"
    "grouped into variants: a sweep's trials by their swept values but\n"
    "seed, plain runs by experiment name and the config keys whose values\n"
    "differ among them, or by the --group-by keys. One row per variant:\n"
    "its runs, how many are done, failed, diverged or otherwise (stopped,\n"
    "running, pending), and per metric the mean and sample standard\n"
    "deviation (n - 1; '-' for one run) over its done runs. The best mean\n"
    "per metric is marked.\n"
    "\n"
    "  --metric NAME   a figure of summary.json's \"final\", or a top-level\n"
    "                  number such as train_loss or steps_per_s; repeat or\n"
    "                  separate with commas (default: every final figure,\n"
    "                  then train_loss)\n"
    "  --group-by KEY  a config path (model.latent) read from each run's\n"
    "                  config.yaml; repeat for several\n"
    "  --format F      table (default), csv, markdown or json\n"
    "  --higher NAME   higher is better for this metric (overrides what\n"
    "                  the runs recorded and the rule below)\n"
    "  --lower NAME    lower is better for this metric\n"
    "\n"
    "Which way is better: --higher/--lower, else what the runs recorded\n"
    "(summary.json's \"better\": each metric declares it), else, for runs\n"
    "written before directions were recorded, a rule on the words of the\n"
    "metric's name (split at _ / . -):\n"
    "std, var, steps, epochs, params, count: none (not marked); neg, nll,\n"
    "loss, fid, kid, error, err, bpc, bpd, bits, nats, perplexity, ppl, mse,\n"
    "mae, rmse, kl, time, distance: lower; accuracy, acc, precision, recall,\n"
    "elbo, f1, auc, inception, is, coverage, density, likelihood, ll:\n"
    "higher; anything else: none.\n"
    "\n"
    "exit status: 0 ok, 1 unreadable or malformed run files, 2 usage error\n";

int dgm__cmd_compare(int argc, char **argv)
{
    if (dgm__cli_help(argc, argv, help))
        return DGM_EXIT_OK;
    dgm__cli_cmp lists = {0};
    const char **paths = calloc((size_t)argc, sizeof *paths);
    int np = 0, status = paths ? DGM_EXIT_OK : DGM_EXIT_FAILED;
    if (!paths)
        fprintf(stderr, "dgm compare: out of memory\n");
    dgm__cmp_format fmt = DGM__CMP_TABLE;
    bool dashdash = false;
    for (int i = 1; i < argc && status == DGM_EXIT_OK; i++) {
        const char *a = argv[i];
        if (dashdash || a[0] != '-') {
            paths[np++] = a;
            continue;
        }
        if (!strcmp(a, "--")) {
            dashdash = true;
            continue;
        }
        int took = dgm__cli_cmp_option(&lists, "compare", argc, argv, &i);
        if (took < 0) {
            status = -took;
            continue;
        }
        if (took)
            continue;
        const char *val = NULL;
        if (!strcmp(a, "--format"))
            val = i + 1 < argc ? argv[++i] : NULL;
        else if (!strncmp(a, "--format=", 9))
            val = a + 9;
        else {
            fprintf(stderr, "dgm compare: unknown option '%s'\n\n%s", a, help);
            status = DGM_EXIT_USAGE;
            continue;
        }
        if (!val || !val[0]) {
            fprintf(stderr, "dgm compare: --format needs a value\n");
            status = DGM_EXIT_USAGE;
        } else if (dgm__compare_format_parse(val, &fmt) < 0) {
            dgm__cli_error("compare", DGM_EINVAL);
            status = DGM_EXIT_USAGE;
        }
    }
    if (status == DGM_EXIT_OK && np == 0) {
        fprintf(stderr, "dgm compare: no run or sweep directory given\n\n%s",
                help);
        status = DGM_EXIT_USAGE;
    }
    dgm__compare *c;
    if (status == DGM_EXIT_OK &&
        (status = dgm__cli_cmp_load(&lists, "compare", paths, np, &c)) ==
            DGM_EXIT_OK) {
        int rc = dgm__compare_write(c, fmt, stdout);
        if (rc < 0) {
            dgm__cli_error("compare", rc);
            status = DGM_EXIT_FAILED;
        }
        dgm__compare_free(c);
    }
    free(paths);
    dgm__cli_cmp_free(&lists);
    return status;
}
