/* config_validate.c - checking a plugin's map against its parameter schema:
 * unknown keys (with a suggestion), types, ranges, choices, required keys;
 * absent keys get their defaults. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"
#include "dgm/error.h"

static const char *type_name(dgm_ptype t)
{
    switch (t) {
    case DGM_P_BOOL:
        return "a boolean (true or false)";
    case DGM_P_INT:
        return "an integer";
    case DGM_P_FLOAT:
        return "a number";
    case DGM_P_STRING:
        return "a string";
    case DGM_P_CHOICE:
        return "one of the choices";
    case DGM_P_INT_LIST:
        return "a list of integers";
    case DGM_P_FLOAT_LIST:
        return "a list of numbers";
    case DGM_P_STRING_LIST:
        return "a list of strings";
    case DGM_P_PLUGIN:
        return "a map with `plugin:`";
    case DGM_P_PLUGIN_LIST:
        return "a list of maps with `plugin:`";
    case DGM_P_PATH:
        return "a path (a string)";
    case DGM_P_PATHS:
        return "a path or a list of paths";
    default:
        return "any value";
    }
}

static bool bounded(const dgm_param_spec *s)
{
    return s->has_min || s->has_max;
}

static bool in_range(const dgm_param_spec *s, double v)
{
    if (s->has_min && !(s->min_excl ? v > s->min : v >= s->min))
        return false;
    return !s->has_max || (s->max_excl ? v < s->max : v <= s->max);
}

/* A range bound as a reader expects it: 9e15 as 9000000000000000, the
 * schemas' "unbounded" 1e300 as inf. */
static const char *bound(double v, char *buf, size_t cap)
{
    if (fabs(v) >= 1e300)
        return v < 0 ? "-inf" : "inf";
    if (v == floor(v) && fabs(v) < 1e17)
        snprintf(buf, cap, "%.0f", v);
    else
        snprintf(buf, cap, "%.10g", v);
    return buf;
}

/* The bounds as a reader writes them: "[1, 1048576]", "[0, inf]" for
 * inclusive bounds (a missing one is infinite); "> 0", "<= 1", "in
 * [0, 1)" once a bound is exclusive, which the brackets alone would hide
 * too easily. */
const char *dgm_param_range_text(const dgm_param_spec *s, char *buf,
                                  size_t cap)
{
    char lo[64], hi[64];
    const char *l = s->has_min ? bound(s->min, lo, sizeof lo) : "-inf";
    const char *h = s->has_max ? bound(s->max, hi, sizeof hi) : "inf";
    if (!s->min_excl && !s->max_excl)
        snprintf(buf, cap, "[%s, %s]", l, h);
    else if (!s->has_max)
        snprintf(buf, cap, "%s %s", s->min_excl ? ">" : ">=", l);
    else if (!s->has_min)
        snprintf(buf, cap, "%s %s", s->max_excl ? "<" : "<=", h);
    else
        snprintf(buf, cap, "in %c%s, %s%c", s->min_excl ? '(' : '[', l, h,
                 s->max_excl ? ')' : ']');
    return buf;
}

static int range_error(const dgm_config *n, const dgm_param_spec *s,
                       const char *who)
{
    char r[160];
    dgm_param_range_text(s, r, sizeof r);
    if (!s->min_excl && !s->max_excl)
        return dgm_cfg_error(n, NULL, DGM_ERANGE,
                             "%s is out of range %s for %s", n->text, r, who);
    return dgm_cfg_error(n, NULL, DGM_ERANGE,
                         "%s is out of range for %s: must be %s", n->text, who,
                         r);
}

/* A list's length against min_len / max_len. */
static int check_len(const dgm_config *n, const dgm_param_spec *s,
                     const char *who)
{
    if (n->n >= s->min_len && (s->max_len <= 0 || n->n <= s->max_len))
        return 0;
    char want[64];
    if (s->max_len <= 0)
        snprintf(want, sizeof want, "at least %d", (int)s->min_len);
    else if (s->min_len <= 0)
        snprintf(want, sizeof want, "at most %d", (int)s->max_len);
    else
        snprintf(want, sizeof want, "%d to %d", (int)s->min_len,
                 (int)s->max_len);
    return dgm_cfg_error(n, NULL, DGM_ERANGE,
                         "a list of %d element%s for %s, which takes %s", n->n,
                         n->n == 1 ? "" : "s", who, want);
}

static int type_error(const dgm_config *n, const char *expected,
                      const char *who)
{
    char buf[256];
    return dgm_cfg_error(n, NULL, DGM_ETYPE, "expected %s for %s, found %s",
                         expected, who, dgm__cfg_describe(n, buf, sizeof buf));
}

/* One scalar element of type t (INT, FLOAT, BOOL, STRING). */
static int check_scalar(const dgm_config *n, dgm_ptype t,
                        const dgm_param_spec *s, const char *who)
{
    if (n->kind != DGM_CFG_SCALAR || dgm__cfg_is_null(n))
        return type_error(n, type_name(t), who);
    long long i;
    double f;
    bool b;
    switch (t) {
    case DGM_P_INT:
        if (n->quoted || !dgm__cfg_parse_int(n->text, &i))
            return type_error(n, type_name(t), who);
        return in_range(s, (double)i) ? 0 : range_error(n, s, who);
    case DGM_P_FLOAT:
        if (n->quoted || !dgm__cfg_parse_float(n->text, &f))
            return type_error(n, type_name(t), who);
        /* A bounded number is finite: NaN is in no range, and +-inf is
         * no more a learning rate than NaN is. */
        return !bounded(s) || (isfinite(f) && in_range(s, f))
                   ? 0
                   : range_error(n, s, who);
    case DGM_P_BOOL:
        if (n->quoted || !dgm__cfg_parse_bool(n->text, &b))
            return type_error(n, type_name(t), who);
        return 0;
    default:
        return 0;
    }
}

static int check_choice(const dgm_config *n, const dgm_param_spec *s,
                        const char *who)
{
    if (n->kind != DGM_CFG_SCALAR || dgm__cfg_is_null(n))
        return type_error(n, "a string", who);
    const char *c = s->choices ? s->choices : "";
    size_t l = strlen(n->text);
    for (const char *p = c; *p;) {
        size_t k = strcspn(p, "|");
        if (k == l && !strncmp(p, n->text, l))
            return 0;
        p += k + (p[k] == '|');
    }
    return dgm_cfg_error(n, NULL, DGM_ERANGE,
                         "'%s' is not a choice of %s (choose one of: %s)",
                         n->text, who, c);
}

static int check_plugin_map(const dgm_config *n, const char *who)
{
    if (n->kind != DGM_CFG_MAP)
        return type_error(n, "a map with `plugin: NAME`", who);
    int i = dgm__cfg_index(n, "plugin");
    if (i < 0)
        return dgm_cfg_error(n, "plugin", DGM_EMISSING,
                             "missing `plugin: NAME` (for %s)", who);
    const dgm_config *p = n->child[i];
    if (p->kind != DGM_CFG_SCALAR || dgm__cfg_is_null(p))
        return type_error(p, "a plugin name", who);
    return 0;
}

static int check_value(const dgm_config *n, const dgm_param_spec *s,
                       const char *who)
{
    switch (s->type) {
    case DGM_P_BOOL:
    case DGM_P_INT:
    case DGM_P_FLOAT:
        return check_scalar(n, s->type, s, who);
    case DGM_P_STRING:
    case DGM_P_PATH:
        if (n->kind != DGM_CFG_SCALAR || dgm__cfg_is_null(n))
            return type_error(n, type_name(s->type), who);
        return 0;
    case DGM_P_PATHS:
        if (n->kind == DGM_CFG_SEQ && n->n == 0)
            return type_error(n, "a path or a non-empty list of paths", who);
        for (int i = 0; n->kind == DGM_CFG_SEQ && i < n->n; i++)
            if (n->child[i]->kind != DGM_CFG_SCALAR ||
                dgm__cfg_is_null(n->child[i]))
                return type_error(n->child[i], "a path (a string)", who);
        if (n->kind != DGM_CFG_SEQ &&
            (n->kind != DGM_CFG_SCALAR || dgm__cfg_is_null(n)))
            return type_error(n, type_name(s->type), who);
        return 0;
    case DGM_P_CHOICE:
        return check_choice(n, s, who);
    case DGM_P_INT_LIST:
    case DGM_P_FLOAT_LIST:
    case DGM_P_STRING_LIST: {
        if (n->kind != DGM_CFG_SEQ)
            return type_error(n, type_name(s->type), who);
        int rc = check_len(n, s, who);
        if (rc < 0)
            return rc;
        dgm_ptype el = s->type == DGM_P_INT_LIST     ? DGM_P_INT
                       : s->type == DGM_P_FLOAT_LIST ? DGM_P_FLOAT
                                                     : DGM_P_STRING;
        for (int i = 0; i < n->n; i++) {
            rc = el == DGM_P_STRING
                     ? (n->child[i]->kind == DGM_CFG_SCALAR &&
                                !dgm__cfg_is_null(n->child[i])
                            ? 0
                            : type_error(n->child[i], "a string", who))
                     : check_scalar(n->child[i], el, s, who);
            if (rc < 0)
                return rc;
        }
        return 0;
    }
    case DGM_P_PLUGIN:
        return check_plugin_map(n, who);
    case DGM_P_PLUGIN_LIST: {
        if (n->kind != DGM_CFG_SEQ)
            return type_error(n, type_name(s->type), who);
        int rc = check_len(n, s, who);
        for (int i = 0; i < n->n && rc == 0; i++)
            rc = check_plugin_map(n->child[i], who);
        return rc;
    }
    default:
        return 0;
    }
}

/* A copy of the last message, to quote it in a new one (dgm_error must
 * not format from its own buffer). */
static const char *last_text(void)
{
    static _Thread_local char copy[1024];
    snprintf(copy, sizeof copy, "%s", dgm_last_error());
    return copy;
}

static bool optional(const dgm_param_spec *s)
{
    return s->def && !strcmp(s->def, "null");
}

/* A checked DGM_P_PATH(S) value (or null, or NULL) made absolute. */
static int absolute_paths(dgm_config *v)
{
    if (!v || dgm__cfg_is_null(v))
        return 0;
    if (v->kind != DGM_CFG_SEQ)
        return dgm__cfg_absolute_cwd(v);
    int rc = 0;
    for (int i = 0; i < v->n && rc == 0; i++)
        rc = dgm__cfg_absolute_cwd(v->child[i]);
    return rc;
}

int dgm_config_validate(dgm_config *node, const dgm_param_spec *schema,
                        const char *owner, const char *const *extra)
{
    if (!owner)
        owner = "?";
    /* Messages say "for plugin 'vae'"; the experiment's own keys "for the
     * experiment"; an owner with a blank ("the train section") as is. */
    char who[160];
    if (!strcmp(owner, "experiment"))
        snprintf(who, sizeof who, "the experiment");
    else if (strchr(owner, ' '))
        snprintf(who, sizeof who, "%.150s", owner);
    else
        snprintf(who, sizeof who, "plugin '%.140s'", owner);
    if (!node || node->kind != DGM_CFG_MAP)
        return node ? type_error(node, "a map", who)
                    : dgm_error(DGM_EINVAL, "%s: no config to validate", who);
    /* Unknown keys first: a typo is the likeliest mistake. */
    const char *names[256];
    int nn = 0;
    for (const dgm_param_spec *s = schema; s && s->name && nn < 250; s++)
        names[nn++] = s->name;
    names[nn++] = "plugin";
    for (int e = 0; extra && extra[e] && nn < 256; e++)
        names[nn++] = extra[e];
    for (int i = 0; i < node->n; i++) {
        const char *k = node->child[i]->key;
        bool known = false;
        for (int j = 0; j < nn && !known; j++)
            known = !strcmp(names[j], k);
        if (known)
            continue;
        const char *dym = dgm_did_you_mean(k, names, nn);
        const dgm_config *c = node->child[i];
        /* Point at the key itself, not at its value. */
        return dgm_error(DGM_EKEY, "%s:%d:%d: %s: unknown key for %s%s%s%s",
                         c->file, c->key_line ? c->key_line : c->line,
                         c->key_line ? c->key_col : c->col, dgm_cfg_path(c),
                         who, dym ? " (did you mean '" : "", dym ? dym : "",
                         dym ? "'?)" : "");
    }
    /* Check every value and every default before adding any default, so
     * that a refused map is left as it was. */
    int n_spec = 0;
    for (const dgm_param_spec *s = schema; s && s->name; s++)
        n_spec++;
    dgm_config **defaults = calloc((size_t)n_spec + 1, sizeof *defaults);
    if (!defaults)
        return dgm_error(DGM_ENOMEM, "config: out of memory");
    int rc = 0;
    for (int k = 0; k < n_spec && rc == 0; k++) {
        const dgm_param_spec *s = &schema[k];
        int i = dgm__cfg_index(node, s->name);
        if (i >= 0) {
            dgm_config *v = node->child[i];
            if (!(dgm__cfg_is_null(v) && optional(s)))
                rc = check_value(v, s, who);
            continue;
        }
        if (!s->def) {
            rc = dgm_cfg_error(node, s->name, DGM_EMISSING,
                               "required by %s (%s)", who,
                               s->help ? s->help : type_name(s->type));
            continue;
        }
        char where[128];
        snprintf(where, sizeof where, "<default of %s>", owner);
        rc = dgm_config_parse(&defaults[k], s->def, where);
        if (rc < 0) {
            rc = dgm_error(DGM_EPLUGIN, "plugin '%s': bad default for '%s': %s",
                           owner, s->name, last_text());
            continue;
        }
        dgm__cfg_mark_default(defaults[k]);
        if (!dgm__cfg_is_null(defaults[k]) &&
            (rc = check_value(defaults[k], s, who)) < 0)
            rc = dgm_error(DGM_EPLUGIN,
                           "plugin '%s': its default for '%s' fails its own "
                           "schema: %s",
                           owner, s->name, last_text());
    }
    /* Every check passed: paths (given or default) become absolute. */
    for (int k = 0; k < n_spec && rc == 0; k++)
        if (schema[k].type == DGM_P_PATH || schema[k].type == DGM_P_PATHS) {
            int i = dgm__cfg_index(node, schema[k].name);
            rc = absolute_paths(i >= 0 ? node->child[i] : defaults[k]);
        }
    int added = 0;
    for (int k = 0; k < n_spec && rc == 0; k++) {
        if (!defaults[k])
            continue;
        if ((rc = dgm__cfg_append(node, schema[k].name, defaults[k])) == 0) {
            defaults[k] = NULL;
            added++;
        }
    }
    if (rc < 0) /* out of memory half way: take the added ones back */
        for (; added > 0; added--)
            dgm_config_free(node->child[--node->n]);
    for (int k = 0; k < n_spec; k++)
        dgm_config_free(defaults[k]);
    free(defaults);
    return rc;
}

/* A schema entry's own consistency, for the registry to refuse a plugin
 * at load rather than when an experiment first uses the key: bounds only
 * where there are numbers, a non-empty interval, list lengths on lists,
 * and a default that passes its own schema. */
int dgm_param_spec_check(const dgm_param_spec *s)
{
    bool numeric = s->type == DGM_P_INT || s->type == DGM_P_FLOAT ||
                   s->type == DGM_P_INT_LIST || s->type == DGM_P_FLOAT_LIST;
    bool list = s->type == DGM_P_INT_LIST || s->type == DGM_P_FLOAT_LIST ||
                s->type == DGM_P_STRING_LIST || s->type == DGM_P_PLUGIN_LIST;
    if (bounded(s) && !numeric)
        return dgm_error(DGM_EFORMAT,
                         "param '%s': bounds on a type without numbers",
                         s->name);
    if ((s->has_min && isnan(s->min)) || (s->has_max && isnan(s->max)) ||
        (s->has_min && s->has_max &&
         (s->min > s->max ||
          (s->min == s->max && (s->min_excl || s->max_excl))))) {
        char r[160];
        return dgm_error(DGM_EFORMAT, "param '%s': the range %s is empty",
                         s->name, dgm_param_range_text(s, r, sizeof r));
    }
    if ((s->min_len || s->max_len) && !list)
        return dgm_error(DGM_EFORMAT,
                         "param '%s': min_len/max_len on a type that is not a "
                         "list",
                         s->name);
    if (s->min_len < 0 || s->max_len < 0 ||
        (s->max_len > 0 && s->min_len > s->max_len))
        return dgm_error(DGM_EFORMAT,
                         "param '%s': list length %d..%d is not a valid "
                         "range",
                         s->name, (int)s->min_len, (int)s->max_len);
    if (s->choices && s->type != DGM_P_CHOICE)
        return dgm_error(DGM_EFORMAT,
                         "param '%s': choices on a type other than "
                         "DGM_P_CHOICE",
                         s->name);
    if (!s->def || !strcmp(s->def, "null"))
        return 0;
    dgm_config *d = NULL;
    if (dgm_config_parse(&d, s->def, "<default>") < 0)
        return dgm_error(DGM_EFORMAT, "param '%s': its default is not YAML: %s",
                         s->name, last_text());
    int rc = dgm__cfg_is_null(d) ? 0 : check_value(d, s, "its own schema");
    dgm_config_free(d);
    if (rc < 0)
        return dgm_error(DGM_EFORMAT, "param '%s': default %s fails: %s",
                         s->name, s->def, last_text());
    return 0;
}
