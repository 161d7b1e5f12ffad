/* cmd_compare.c - `dgm compare`: one row per variant of some runs and
 * sweeps, each metric's mean and deviation over seeds (compare.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "compare.h"
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
    "  --higher NAME   higher is better for this metric (overrides the rule)\n"
    "  --lower NAME    lower is better for this metric\n"
    "\n"
    "Direction rule, on the words of a metric's name (split at _ / . -):\n"
    "std, var, steps, epochs, params, count: none (not marked); neg, nll,\n"
    "loss, fid, kid, error, err, bpc, bpd, bits, nats, perplexity, ppl, mse,\n"
    "mae, rmse, kl, time, distance: lower; accuracy, acc, precision, recall,\n"
    "elbo, f1, auc, inception, is, coverage, density, likelihood, ll:\n"
    "higher; anything else: none.\n"
    "\n"
    "exit status: 0 ok, 1 unreadable or malformed run files, 2 usage error\n";

/* Append NAME (or each of "a,b") to a list of borrowed/owned strings. */
static int add_names(char ***list, int *n, const char *arg)
{
    char *copy = strdup(arg);
    if (!copy)
        return -1;
    char *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t;
         t = strtok_r(NULL, ",", &save)) {
        char **p = realloc(*list, sizeof *p * (size_t)(*n + 1));
        if (!p || !(p[*n] = strdup(t))) {
            if (p)
                *list = p;
            free(copy);
            return -1;
        }
        *list = p;
        (*n)++;
    }
    free(copy);
    return 0;
}

static void free_names(char **list, int n)
{
    for (int i = 0; i < n; i++)
        free(list[i]);
    free(list);
}

int dgm__cmd_compare(int argc, char **argv)
{
    if (dgm__cli_help(argc, argv, help))
        return DGM_EXIT_OK;
    char **metrics = NULL, **group = NULL, **higher = NULL, **lower = NULL;
    int nm = 0, ng = 0, nh = 0, nl = 0;
    const char **paths = calloc((size_t)argc, sizeof *paths);
    int np = 0, status = DGM_EXIT_OK;
    dgm__cmp_format fmt = DGM__CMP_TABLE;
    bool dashdash = false;
    for (int i = 1; i < argc && status == DGM_EXIT_OK; i++) {
        const char *a = argv[i];
        if (dashdash || a[0] != '-') {
            if (paths)
                paths[np++] = a;
            continue;
        }
        if (!strcmp(a, "--")) {
            dashdash = true;
            continue;
        }
        static const char *const opts[] = {"--metric", "--group-by", "--format",
                                           "--higher", "--lower"};
        int which = -1;
        const char *val = NULL;
        for (int k = 0; k < 5 && which < 0; k++) {
            size_t len = strlen(opts[k]);
            if (!strcmp(a, opts[k])) {
                which = k;
                val = i + 1 < argc ? argv[++i] : NULL;
            } else if (!strncmp(a, opts[k], len) && a[len] == '=') {
                which = k;
                val = a + len + 1;
            }
        }
        if (which < 0) {
            fprintf(stderr, "dgm compare: unknown option '%s'\n\n%s", a, help);
            status = DGM_EXIT_USAGE;
        } else if (!val || !val[0]) {
            fprintf(stderr, "dgm compare: %s needs a value\n", opts[which]);
            status = DGM_EXIT_USAGE;
        } else if (which == 2) {
            if (dgm__compare_format_parse(val, &fmt) < 0) {
                dgm__cli_error("compare", DGM_EINVAL);
                status = DGM_EXIT_USAGE;
            }
        } else {
            char ***l[] = {&metrics, &group, NULL, &higher, &lower};
            int *c[] = {&nm, &ng, NULL, &nh, &nl};
            if (add_names(l[which], c[which], val) < 0) {
                fprintf(stderr, "dgm compare: out of memory\n");
                status = DGM_EXIT_FAILED;
            }
        }
    }
    if (status == DGM_EXIT_OK && !paths) {
        fprintf(stderr, "dgm compare: out of memory\n");
        status = DGM_EXIT_FAILED;
    }
    if (status == DGM_EXIT_OK && np == 0) {
        fprintf(stderr, "dgm compare: no run or sweep directory given\n\n%s",
                help);
        status = DGM_EXIT_USAGE;
    }
    if (status == DGM_EXIT_OK) {
        dgm__cmp_options o = {.metrics = (const char *const *)metrics,
                              .n_metrics = nm,
                              .group_by = (const char *const *)group,
                              .n_group_by = ng,
                              .higher = (const char *const *)higher,
                              .n_higher = nh,
                              .lower = (const char *const *)lower,
                              .n_lower = nl};
        dgm__compare *c;
        int rc = dgm__compare_load(&c, paths, np, &o);
        if (rc < 0) {
            dgm__cli_error("compare", rc);
            status = rc == DGM_EKEY ? DGM_EXIT_USAGE : DGM_EXIT_FAILED;
        } else {
            for (int k = 0; k < c->n_notes; k++)
                fprintf(stderr, "dgm compare: note: %s\n", c->notes[k]);
            if ((rc = dgm__compare_write(c, fmt, stdout)) < 0) {
                dgm__cli_error("compare", rc);
                status = DGM_EXIT_FAILED;
            }
            dgm__compare_free(c);
        }
    }
    free(paths);
    free_names(metrics, nm);
    free_names(group, ng);
    free_names(higher, nh);
    free_names(lower, nl);
    return status;
}
