/* cmd_report.c - `dgm report`: a sweep (or any runs) as one
 * self-contained HTML page (report.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "compare.h"
#include "dgm/error.h"

static const char help[] =
    "usage: dgm report SWEEP_OR_RUNS... [-o FILE.html] [--title TEXT]\n"
    "                  [--metric NAME ...] [--group-by KEY ...]\n"
    "                  [--higher NAME ...] [--lower NAME ...]\n"
    "\n"
    "Write one self-contained HTML page (inline CSS and SVG, images as\n"
    "data: URIs; it fetches nothing) for a sweep directory, or for any\n"
    "runs `dgm compare` accepts: the comparison table (the numbers of dgm\n"
    "compare), a learning-curve chart per logged loss term with one curve\n"
    "per variant (the mean over its done runs at each logged step), the\n"
    "last sample grid (samples/*.png) of each variant side by side, and\n"
    "every run with its status and, for a failed trial, why.\n"
    "\n"
    "  -o, --output FILE  where to write (default: report.html in the first\n"
    "                     directory given); written atomically\n"
    "  --title TEXT       the page's title (default: the sweep's name)\n"
    "  --metric, --group-by, --higher, --lower: as for dgm compare\n"
    "\n"
    "exit status: 0 written, 1 unreadable or malformed run files or the\n"
    "page could not be written, 2 usage error\n";

static int add_name(const char ***list, int *n, const char *v)
{
    const char **p = realloc(*list, sizeof *p * (size_t)(*n + 1));
    if (!p)
        return -1;
    p[(*n)++] = v;
    *list = p;
    return 0;
}

/* Each of "a,b" appended as an owned copy (freed by free_names). */
static int add_names(char ***list, int *n, const char *arg)
{
    char *copy = strdup(arg);
    if (!copy)
        return -1;
    char *save = NULL;
    int rc = 0;
    for (char *t = strtok_r(copy, ",", &save); t && rc == 0;
         t = strtok_r(NULL, ",", &save)) {
        char **p = realloc(*list, sizeof *p * (size_t)(*n + 1));
        if (p)
            *list = p;
        if (!p || !(p[*n] = strdup(t)))
            rc = -1;
        else
            (*n)++;
    }
    free(copy);
    return rc;
}

static void free_names(char **list, int n)
{
    for (int i = 0; i < n; i++)
        free(list[i]);
    free(list);
}

int dgm__cmd_report(int argc, char **argv)
{
    if (dgm__cli_help(argc, argv, help))
        return DGM_EXIT_OK;
    const char **paths = NULL;
    char **metrics = NULL, **group = NULL, **higher = NULL, **lower = NULL;
    int np = 0, nm = 0, ng = 0, nh = 0, nl = 0;
    const char *out = NULL, *title = NULL;
    int status = DGM_EXIT_OK;
    bool dashdash = false;
    for (int i = 1; i < argc && status == DGM_EXIT_OK; i++) {
        const char *a = argv[i];
        int rc = 0;
        if (dashdash || a[0] != '-') {
            rc = add_name(&paths, &np, a);
        } else if (!strcmp(a, "--")) {
            dashdash = true;
        } else {
            static const char *const opts[] = {
                "-o",         "--output", "--title", "--metric",
                "--group-by", "--higher", "--lower"};
            int which = -1;
            const char *val = NULL;
            for (int k = 0; k < 7 && which < 0; k++) {
                size_t len = strlen(opts[k]);
                if (!strcmp(a, opts[k])) {
                    which = k;
                    val = i + 1 < argc ? argv[++i] : NULL;
                } else if (k > 0 && !strncmp(a, opts[k], len) &&
                           a[len] == '=') {
                    which = k;
                    val = a + len + 1;
                }
            }
            if (which < 0) {
                fprintf(stderr, "dgm report: unknown option '%s'\n\n%s", a,
                        help);
                status = DGM_EXIT_USAGE;
            } else if (!val || !val[0]) {
                fprintf(stderr, "dgm report: %s needs a value\n", opts[which]);
                status = DGM_EXIT_USAGE;
            } else if (which <= 1) {
                out = val;
            } else if (which == 2) {
                title = val;
            } else {
                char ***l[] = {&metrics, &group, &higher, &lower};
                int *c[] = {&nm, &ng, &nh, &nl};
                rc = add_names(l[which - 3], c[which - 3], val);
            }
        }
        if (rc < 0) {
            fprintf(stderr, "dgm report: out of memory\n");
            status = DGM_EXIT_FAILED;
        }
    }
    if (status == DGM_EXIT_OK && np == 0) {
        fprintf(stderr, "dgm report: no sweep or run directory given\n\n%s",
                help);
        status = DGM_EXIT_USAGE;
    }
    char def[4096];
    if (status == DGM_EXIT_OK && !out) {
        snprintf(def, sizeof def, "%s/report.html", paths[0]);
        out = def;
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
            dgm__cli_error("report", rc);
            status = rc == DGM_EKEY ? DGM_EXIT_USAGE : DGM_EXIT_FAILED;
        } else {
            for (int k = 0; k < c->n_notes; k++)
                fprintf(stderr, "dgm report: note: %s\n", c->notes[k]);
            if ((rc = dgm__report_save(c, title, out)) < 0) {
                dgm__cli_error("report", rc);
                status = DGM_EXIT_FAILED;
            } else {
                printf("%s: %d variants, %d runs\n", out, c->n_variants,
                       c->n_runs);
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
