/* cmd_plugins.c - `dgm plugins`: list the plugins found on the search
 * path, or show one plugin's descriptor and parameter table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dgm/error.h"
#include "dgm/host.h"

static const char help[] =
    "usage: dgm plugins [--path DIR]...\n"
    "       dgm plugins show [--kind KIND] [--path DIR]... NAME\n"
    "\n"
    "List every plugin found (kind, name, version, summary, file), sorted\n"
    "by kind then name; files that could not be loaded are reported on\n"
    "stderr as warnings. `show` prints one plugin's descriptor and its\n"
    "parameter table; NAME may also be the path of a .so file.\n"
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
    int w[4] = {4, 4, 7, 7}; /* widths of KIND NAME VERSION SUMMARY */
    for (int i = 0; i < n; i++) {
        rows[i].d = dgm_registry_at(reg, i, &rows[i].file);
        const char *cols[4] = {dgm_kind_name(rows[i].d->kind), rows[i].d->name,
                               str_or(rows[i].d->version, "-"),
                               str_or(rows[i].d->summary, "-")};
        for (int c = 0; c < 4; c++) {
            int len = (int)strlen(cols[c]);
            w[c] = len > w[c] ? len : w[c];
        }
    }
    qsort(rows, (size_t)n, sizeof *rows, row_cmp);
    printf("%-*s  %-*s  %-*s  %-*s  %s\n", w[0], "KIND", w[1], "NAME", w[2],
           "VERSION", w[3], "SUMMARY", "FILE");
    for (int i = 0; i < n; i++)
        printf("%-*s  %-*s  %-*s  %-*s  %s\n", w[0],
               dgm_kind_name(rows[i].d->kind), w[1], rows[i].d->name, w[2],
               str_or(rows[i].d->version, "-"), w[3],
               str_or(rows[i].d->summary, "-"), rows[i].file);
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
    }
    return "?";
}

static bool is_plugin_type(dgm_ptype t)
{
    return t == DGM_P_PLUGIN || t == DGM_P_PLUGIN_LIST;
}

static void default_text(const dgm_param_spec *p, char *buf, size_t n)
{
    if (p->default_value)
        snprintf(buf, n, "%s", p->default_value);
    else
        snprintf(buf, n, "%s", is_plugin_type(p->type) ? "(none)" : "required");
}

/* Range for numbers, choices, or the kind a nested plugin must have. */
static void range_text(const dgm_param_spec *p, char *buf, size_t n)
{
    if (p->type == DGM_P_CHOICE)
        snprintf(buf, n, "%s", str_or(p->choices, "-"));
    else if (is_plugin_type(p->type))
        snprintf(buf, n, "%s", p->choices ? p->choices : "any kind");
    else if ((p->type == DGM_P_INT || p->type == DGM_P_FLOAT ||
              p->type == DGM_P_INT_LIST || p->type == DGM_P_FLOAT_LIST) &&
             p->min <= p->max)
        snprintf(buf, n, "[%.10g, %.10g]", p->min, p->max);
    else
        snprintf(buf, n, "-");
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
        const dgm_loss_iface *f = d->iface;
        printf("inputs:   %s (%d..%d)\n", str_or(f->inputs_help, "-"),
               f->min_inputs, f->max_inputs);
    } else if (d->kind == DGM_KIND_MODEL) {
        const dgm_model_iface *f = d->iface;
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
