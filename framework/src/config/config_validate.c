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
    default:
        return "any value";
    }
}

static bool in_range(const dgm_param_spec *s, double v)
{
    return s->min > s->max || (v >= s->min && v <= s->max);
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

static int range_error(const dgm_config *n, const dgm_param_spec *s,
                       const char *who)
{
    char lo[64], hi[64];
    return dgm_cfg_error(
        n, NULL, DGM_ERANGE, "%s is out of range [%s, %s] for %s", n->text,
        bound(s->min, lo, sizeof lo), bound(s->max, hi, sizeof hi), who);
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
        /* NaN is in no range: a bounded number is never NaN. */
        return (s->min > s->max || !isnan(f)) && in_range(s, f)
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
        if (n->kind != DGM_CFG_SCALAR || dgm__cfg_is_null(n))
            return type_error(n, type_name(s->type), who);
        return 0;
    case DGM_P_CHOICE:
        return check_choice(n, s, who);
    case DGM_P_INT_LIST:
    case DGM_P_FLOAT_LIST:
    case DGM_P_STRING_LIST: {
        if (n->kind != DGM_CFG_SEQ)
            return type_error(n, type_name(s->type), who);
        dgm_ptype el = s->type == DGM_P_INT_LIST     ? DGM_P_INT
                       : s->type == DGM_P_FLOAT_LIST ? DGM_P_FLOAT
                                                     : DGM_P_STRING;
        for (int i = 0; i < n->n; i++) {
            int rc = el == DGM_P_STRING
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
    case DGM_P_PLUGIN_LIST:
        if (n->kind != DGM_CFG_SEQ)
            return type_error(n, type_name(s->type), who);
        for (int i = 0; i < n->n; i++) {
            int rc = check_plugin_map(n->child[i], who);
            if (rc < 0)
                return rc;
        }
        return 0;
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
    return s->default_value && !strcmp(s->default_value, "null");
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
        if (!s->default_value) {
            rc = dgm_cfg_error(node, s->name, DGM_EMISSING,
                               "required by %s (%s)", who,
                               s->help ? s->help : type_name(s->type));
            continue;
        }
        char where[128];
        snprintf(where, sizeof where, "<default of %s>", owner);
        rc = dgm_config_parse(&defaults[k], s->default_value, where);
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
