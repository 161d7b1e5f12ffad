/* cmd_plugins.c - `dgm plugins`: list the plugins found on the search
 * path, or show one plugin's descriptor and parameter table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "cli.h"
#include "dgm/error.h"
#include "dgm/host.h"

static const char help[] =
    "usage: dgm plugins [--path DIR]...\n"
    "       dgm plugins show [--kind KIND] [--path DIR]... NAME\n"
    "\n"
    "List every plugin found (kind, name, version, summary, file), sorted\n"
    "by kind then name; files that could not be loaded are reported on\n"
    "stderr as warnings. Lines fit $COLUMNS, else the terminal's width,\n"
    "else 80 columns: long summaries are cut with '...', then file paths\n"
    "shortened to '...' and their end; when even that does not fit, the\n"
    "FILE column is left out. `show` prints one plugin's descriptor in\n"
    "full and its parameter table; NAME may also be the path of a .so\n"
    "file.\n"
    "\n"
    "The search path is the plugin folder of this dgm (build tree or\n"
    "install), then $DGM_PLUGIN_PATH (colon-separated), then each --path.\n"
    "\n"
    "options:\n"
    "  --path DIR    also search DIR (repeatable)\n"
    "  --kind KIND   show: only a plugin of this kind (dataset, augment,\n"
    "                block, model, loss, optimizer, metric)\n"
    "  -h, --help    this text\n"
    "\n"
    "exit status: 0 ok, 1 failure, 2 usage error or unknown plugin\n";

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "dgm plugins: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(see 'dgm plugins --help')\n");
    return DGM_EXIT_USAGE;
}

static void print_problems(const dgm_registry *reg)
{
    for (int i = 0; i < dgm_registry_problem_count(reg); i++)
        fprintf(stderr, "dgm: warning: %s\n", dgm_registry_problem(reg, i));
}

static const char *str_or(const char *s, const char *dflt)
{
    return s && s[0] ? s : dflt;
}

/* ---- the list -------------------------------------------------------- */

typedef struct row {
    const dgm_plugin_desc *d;
    const char *file;
} row;

static int row_cmp(const void *a, const void *b)
{
    const row *x = a, *y = b;
    if (x->d->kind != y->d->kind)
        return x->d->kind < y->d->kind ? -1 : 1;
    int c = strcmp(x->d->name, y->d->name);
    return c ? c : strcmp(x->file, y->file);
}

/* The width the list fits: $COLUMNS when it is a positive number, else
 * the terminal's when stdout is one, else 80. */
static int out_width(void)
{
    const char *c = getenv("COLUMNS");
    if (c && *c) {
        char *end;
        long v = strtol(c, &end, 10);
        if (*end == '\0' && v > 0 && v <= 100000)
            return (int)v;
    }
    struct winsize ws;
    if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 &&
        ws.ws_col > 0)
        return ws.ws_col;
    return 80;
}

/* Columns a UTF-8 string takes (one per character, not per byte). */
static int text_width(const char *s)
{
    int w = 0;
    for (; *s; s++)
        w += ((unsigned char)*s & 0xC0) != 0x80;
    return w;
}

/* Byte offset where the last `keep` characters of s start. */
static size_t tail_start(const char *s, int keep)
{
    size_t i = strlen(s);
    while (i > 0 && keep > 0) {
        i--;
        if (((unsigned char)s[i] & 0xC0) != 0x80)
            keep--;
    }
    return i;
}

/* Print s in `width` columns and the two-space gap after it: cut with
 * "..." when longer (at the end; from_left: at the start, keeping the
 * end), padded when shorter. The line's last cell gets neither padding
 * nor gap. */
static void cell(const char *s, int width, bool from_left, bool last)
{
    int w = text_width(s);
    if (w <= width) {
        fputs(s, stdout);
        if (!last)
            printf("%*s", width - w + 2, "");
        return;
    }
    int keep = width > 3 ? width - 3 : 0;
    if (from_left) {
        /* the longest end of the path that starts at a '/' and fits */
        const char *t = s + tail_start(s, keep);
        const char *slash = strchr(t, '/');
        printf("...%s", slash ? slash : t);
    } else {
        size_t n = 0; /* bytes of the first `keep` characters */
        for (int k = 0; s[n]; n++) {
            if (((unsigned char)s[n] & 0xC0) != 0x80 && k++ == keep)
                break;
        }
        printf("%.*s...", (int)n, s);
    }
    if (!last)
        printf("  ");
}

/* Keep a file's name whole when its path is cut: "..." and the name. */
static int file_min(const char *path)
{
    const char *slash = strrchr(path, '/');
    int w = text_width(path);
    int name = slash ? text_width(slash) + 3 : w;
    return name < w ? name : w;
}

static int list(dgm_registry *reg)
{
    int n = dgm_registry_count(reg);
    if (n == 0) {
        fprintf(stderr, "dgm plugins: no plugins found; search path: %s\n",
                str_or(dgm_registry_search_path(reg), "(empty)"));
        print_problems(reg);
        return DGM_EXIT_OK;
    }
    row *rows = malloc((size_t)n * sizeof *rows);
    if (!rows) {
        fprintf(stderr, "dgm plugins: out of memory\n");
        return DGM_EXIT_FAILED;
    }
    /* widths of KIND NAME VERSION SUMMARY FILE */
    int w[5] = {4, 4, 7, 7, 4}, file_floor = 4;
    for (int i = 0; i < n; i++) {
        rows[i].d = dgm_registry_at(reg, i, &rows[i].file);
        const char *cols[5] = {dgm_kind_name(rows[i].d->kind), rows[i].d->name,
                               str_or(rows[i].d->version, "-"),
                               str_or(rows[i].d->summary, "-"), rows[i].file};
        for (int c = 0; c < 5; c++) {
            int len = text_width(cols[c]);
            w[c] = len > w[c] ? len : w[c];
        }
        int fm = file_min(rows[i].file);
        file_floor = fm > file_floor ? fm : file_floor;
    }
    /* Fit the line: the summary gives way first (down to a readable
     * minimum), then the file paths (down to ".../" and the file name),
     * then the FILE column goes (`show` has it). Kind, name and version
     * are what a reader looks a plugin up by and stay whole. */
    enum { SUMMARY_MIN = 24 };
    int room = out_width() - (w[0] + w[1] + w[2] + 3 * 2);
    bool files = true;
    if (w[3] + 2 + w[4] > room) {
        int sum_min = w[3] < SUMMARY_MIN ? w[3] : SUMMARY_MIN;
        if (room - 2 - file_floor >= sum_min) {
            w[3] = room - 2 - w[4] > sum_min ? room - 2 - w[4] : sum_min;
            w[4] = room - 2 - w[3];
        } else {
            files = false;
            w[3] = room < w[3] ? (room > 10 ? room : 10) : w[3];
        }
    }
    qsort(rows, (size_t)n, sizeof *rows, row_cmp);
    const char *head[5] = {"KIND", "NAME", "VERSION", "SUMMARY", "FILE"};
    for (int c = 0; c < 4 + files; c++)
        cell(head[c], w[c], false, c == 3 + files);
    putchar('\n');
    for (int i = 0; i < n; i++) {
        cell(dgm_kind_name(rows[i].d->kind), w[0], false, false);
        cell(rows[i].d->name, w[1], false, false);
        cell(str_or(rows[i].d->version, "-"), w[2], false, false);
        cell(str_or(rows[i].d->summary, "-"), w[3], false, !files);
        if (files)
            cell(rows[i].file, w[4], true, true);
        putchar('\n');
    }
    free(rows);
    print_problems(reg);
    return DGM_EXIT_OK;
}

/* ---- show ------------------------------------------------------------ */

static const char *type_name(dgm_ptype t)
{
    switch (t) {
    case DGM_P_BOOL:
        return "bool";
    case DGM_P_INT:
        return "int";
    case DGM_P_FLOAT:
        return "float";
    case DGM_P_STRING:
        return "string";
    case DGM_P_CHOICE:
        return "choice";
    case DGM_P_INT_LIST:
        return "int list";
    case DGM_P_FLOAT_LIST:
        return "float list";
    case DGM_P_STRING_LIST:
        return "string list";
    case DGM_P_PLUGIN:
        return "plugin";
    case DGM_P_PLUGIN_LIST:
        return "plugin list";
    case DGM_P_ANY:
        return "any";
    case DGM_P_PATH:
        return "path";
    case DGM_P_PATHS:
        return "path(s)";
    }
    return "?";
}

static bool is_plugin_type(dgm_ptype t)
{
    return t == DGM_P_PLUGIN || t == DGM_P_PLUGIN_LIST;
}

static void default_text(const dgm_param_spec *p, char *buf, size_t n)
{
    if (p->def)
        snprintf(buf, n, "%s", p->def);
    else
        snprintf(buf, n, "%s", is_plugin_type(p->type) ? "(none)" : "required");
}

/* Range for numbers, choices, or the kind a nested plugin must have. */
static void range_text(const dgm_param_spec *p, char *buf, size_t n)
{
    if (p->type == DGM_P_CHOICE)
        snprintf(buf, n, "%s", str_or(p->choices, "-"));
    else if (is_plugin_type(p->type))
        snprintf(buf, n, "%s", p->kind ? p->kind : "any kind");
    else if (p->has_min || p->has_max)
        dgm_param_range_text(p, buf, n);
    else
        snprintf(buf, n, "-");
    size_t used = strlen(buf);
    if (p->max_len > 0) /* a list's length */
        snprintf(buf + used, n - used, ", length %d..%d", (int)p->min_len,
                 (int)p->max_len);
    else if (p->min_len > 0)
        snprintf(buf + used, n - used, ", length >= %d", (int)p->min_len);
}

static void print_params(const dgm_plugin_desc *d)
{
    int np = 0;
    while (d->params && d->params[np].name)
        np++;
    if (np == 0) {
        printf("\nparameters: none\n");
        return;
    }
    char dflt[256], range[256];
    int w[4] = {4, 4, 7, 14}; /* NAME TYPE DEFAULT RANGE/CHOICES */
    for (int i = 0; i < np; i++) {
        const dgm_param_spec *p = &d->params[i];
        default_text(p, dflt, sizeof dflt);
        range_text(p, range, sizeof range);
        int len[4] = {(int)strlen(p->name), (int)strlen(type_name(p->type)),
                      (int)strlen(dflt), (int)strlen(range)};
        for (int c = 0; c < 4; c++)
            w[c] = len[c] > w[c] ? len[c] : w[c];
    }
    printf("\nparameters:\n  %-*s  %-*s  %-*s  %-*s  %s\n", w[0], "NAME", w[1],
           "TYPE", w[2], "DEFAULT", w[3], "RANGE/CHOICES", "HELP");
    for (int i = 0; i < np; i++) {
        const dgm_param_spec *p = &d->params[i];
        default_text(p, dflt, sizeof dflt);
        range_text(p, range, sizeof range);
        printf("  %-*s  %-*s  %-*s  %-*s  %s\n", w[0], p->name, w[1],
               type_name(p->type), w[2], dflt, w[3], range,
               str_or(p->help, ""));
    }
}

/* What only some kinds declare in their interface. */
static void print_kind_details(const dgm_plugin_desc *d)
{
    if (d->kind == DGM_KIND_LOSS) {
        const dgm_loss_iface *f = d->iface.loss;
        printf("inputs:   %s (%d..%d)\n", str_or(f->inputs_help, "-"),
               f->min_inputs, f->max_inputs);
    } else if (d->kind == DGM_KIND_METRIC) {
        const dgm_metric_iface *f = d->iface.metric;
        const dgm_metric_figure *fig =
            DGM_PLUGIN_HAS_SLOT(d, dgm_metric_iface, figures) ? f->figures
                                                              : NULL;
        printf("figures: ");
        if (!fig || !fig->pattern)
            printf(" (no direction declared)");
        for (; fig && fig->pattern; fig++)
            printf(" %s [%s]", fig->pattern,
                   str_or(dgm_better_name(fig->better), "?"));
        /* under mpirun: every rank evaluates its share, or rank 0 all */
        printf("\nsharded:  %s\n",
               DGM_PLUGIN_HAS_SLOT(d, dgm_metric_iface, shard_aware) &&
                       f->shard_aware
                   ? "yes (each rank evaluates its share under mpirun)"
                   : "no (rank 0 evaluates alone under mpirun)");
    } else if (d->kind == DGM_KIND_MODEL) {
        const dgm_model_iface *f = d->iface.model;
        printf("phases:  ");
        for (int i = 0; i < f->n_phases; i++)
            printf(" %s [%s]", f->phases[i].name, f->phases[i].params);
        printf("\n");
    }
}

static int show(dgm_registry *reg, dgm_kind kind, const char *name)
{
    const dgm_plugin_desc *d;
    const char *file;
    int rc = dgm_registry_find(reg, kind, name, &d, &file);
    if (rc < 0) {
        dgm__cli_error("plugins", rc);
        print_problems(reg);
        return rc == DGM_ENOTFOUND || rc == DGM_EKIND || rc == DGM_EDUP
                   ? DGM_EXIT_USAGE
                   : DGM_EXIT_FAILED;
    }
    printf("name:     %s\n", d->name);
    printf("kind:     %s\n", dgm_kind_name(d->kind));
    printf("version:  %s\n", str_or(d->version, "-"));
    printf("summary:  %s\n", str_or(d->summary, "-"));
    printf("file:     %s\n", file);
    printf("abi:      %u.%u (host %d.%d)\n", d->abi_major, d->abi_minor,
           DGM_ABI_MAJOR, DGM_ABI_MINOR);
    print_kind_details(d);
    print_params(d);
    return DGM_EXIT_OK;
}

static dgm_kind parse_kind(const char *s)
{
    for (int k = 1; k < DGM_KIND_COUNT_; k++)
        if (!strcmp(dgm_kind_name((dgm_kind)k), s))
            return (dgm_kind)k;
    return 0;
}

int dgm__cmd_plugins(int argc, char **argv)
{
    if (dgm__cli_help(argc, argv, help))
        return DGM_EXIT_OK;
    const char **paths = calloc((size_t)argc, sizeof *paths);
    if (!paths) {
        fprintf(stderr, "dgm plugins: out of memory\n");
        return DGM_EXIT_FAILED;
    }
    int n_paths = 0, rc = DGM_EXIT_USAGE;
    bool showing = false;
    const char *name = NULL;
    dgm_kind kind = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--path") || !strcmp(a, "--kind")) {
            if (i + 1 >= argc) {
                usage_error("%s needs a value", a);
                goto out;
            }
            const char *v = argv[++i];
            if (a[2] == 'p') {
                paths[n_paths++] = v;
            } else if (!(kind = parse_kind(v))) {
                usage_error("unknown kind '%s'", v);
                goto out;
            }
        } else if (!strncmp(a, "--path=", 7)) {
            paths[n_paths++] = a + 7;
        } else if (a[0] == '-') {
            usage_error("unknown option '%s'", a);
            goto out;
        } else if (!showing && !strcmp(a, "show")) {
            showing = true;
        } else if (showing && !name) {
            name = a;
        } else {
            usage_error("unexpected argument '%s'", a);
            goto out;
        }
    }
    if (showing && !name) {
        usage_error("%s", "show needs a plugin NAME");
        goto out;
    }
    if (kind && !showing) {
        usage_error("%s", "--kind only applies to 'show'");
        goto out;
    }
    dgm_registry *reg;
    int err = dgm__cli_registry(&reg, paths, n_paths, false);
    if (err == 0 && (err = dgm_registry_load_all(reg)) < 0)
        dgm_registry_free(reg);
    if (err < 0) {
        dgm__cli_error("plugins", err);
        rc = DGM_EXIT_FAILED;
        goto out;
    }
    rc = showing ? show(reg, kind, name) : list(reg);
    dgm_registry_free(reg);
out:
    free(paths);
    return rc;
}
