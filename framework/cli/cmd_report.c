/* cmd_report.c - `dgm report`: a sweep (or any runs) as one
 * self-contained HTML page (report.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_compare.h"
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

int dgm__cmd_report(int argc, char **argv)
{
    if (dgm__cli_help(argc, argv, help))
        return DGM_EXIT_OK;
    const char **paths = NULL;
    dgm__cli_cmp lists = {0};
    int np = 0;
    const char *out = NULL, *title = NULL;
    int status = DGM_EXIT_OK;
    bool dashdash = false;
    for (int i = 1; i < argc && status == DGM_EXIT_OK; i++) {
        const char *a = argv[i];
        if (dashdash || a[0] != '-') {
            if (add_name(&paths, &np, a) < 0) {
                fprintf(stderr, "dgm report: out of memory\n");
                status = DGM_EXIT_FAILED;
            }
            continue;
        }
        if (!strcmp(a, "--")) {
            dashdash = true;
            continue;
        }
        int took = dgm__cli_cmp_option(&lists, "report", argc, argv, &i);
        if (took < 0) {
            status = -took;
            continue;
        }
        if (took)
            continue;
        static const char *const opts[] = {"-o", "--output", "--title"};
        int which = -1;
        const char *val = NULL;
        for (int k = 0; k < 3 && which < 0; k++) {
            size_t len = strlen(opts[k]);
            if (!strcmp(a, opts[k])) {
                which = k;
                val = i + 1 < argc ? argv[++i] : NULL;
            } else if (k > 0 && !strncmp(a, opts[k], len) && a[len] == '=') {
                which = k;
                val = a + len + 1;
            }
        }
        if (which < 0) {
            fprintf(stderr, "dgm report: unknown option '%s'\n\n%s", a, help);
            status = DGM_EXIT_USAGE;
        } else if (!val || !val[0]) {
            fprintf(stderr, "dgm report: %s needs a value\n", opts[which]);
            status = DGM_EXIT_USAGE;
        } else if (which <= 1) {
            out = val;
        } else {
            title = val;
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
    dgm__compare *c;
    if (status == DGM_EXIT_OK &&
        (status = dgm__cli_cmp_load(&lists, "report", paths, np, &c)) ==
            DGM_EXIT_OK) {
        int rc = dgm__report_save(c, title, out);
        if (rc < 0) {
            dgm__cli_error("report", rc);
            status = DGM_EXIT_FAILED;
        } else {
            printf("%s: %d variants, %d runs\n", out, c->n_variants, c->n_runs);
        }
        dgm__compare_free(c);
    }
    free(paths);
    dgm__cli_cmp_free(&lists);
    return status;
}
