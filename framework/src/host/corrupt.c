/* corrupt.c - robustness: a metric's `corrupt:` list, each entry an
 * augmentation with one strength ({noise: 0.1}, {rotate: 15}, ...),
 * checked when the experiment is loaded, built into augment instances and
 * applied in place to the batches the metric reads (eval.c runs the
 * metric once per corruption). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/error.h"
#include "host_internal.h"

/* The shorthand: `{name: strength}` is the augment plugin `plugin` with
 * `key: strength` and the fixed keys `extra` (rotate turns every image by
 * exactly the angle, so the figure has no draws to average over). */
static const struct shorthand {
    const char *name, *plugin, *key, *extra;
    double min, max;
} shorthands[] = {
    {"noise", "noise", "std", "clamp: true", 0, INFINITY},
    {"occlude", "occlude", "size", "", 0, 1e6},
    {"rotate", "rotate", "degrees", "fixed: true", 0, 360},
    {"blur", "blur", "sigma", "", 0, 100},
    {"jpeg", "jpeg", "quality", "", 1, 100},
};
#define N_SHORTHANDS ((int)(sizeof shorthands / sizeof *shorthands))

static const struct shorthand *find_shorthand(const char *name)
{
    for (int i = 0; i < N_SHORTHANDS; i++)
        if (!strcmp(shorthands[i].name, name))
            return &shorthands[i];
    return NULL;
}

/* Entry `c` of a corrupt list: its shorthand and strength. */
static int read_entry(const dgm_config *c, const struct shorthand **sh,
                      double *v)
{
    if (dgm_cfg_kind_of(c) != DGM_CFG_MAP || dgm_cfg_len(c) != 1)
        return dgm_cfg_error(c, NULL, DGM_ETYPE,
                             "a corruption is a map of one key, its "
                             "strength: {noise: 0.1}, {occlude: 8}, "
                             "{rotate: 15}, {blur: 1.0} or {jpeg: 30}");
    const char *name = dgm_cfg_key_at(c, 0);
    if (!(*sh = find_shorthand(name))) {
        const char *names[N_SHORTHANDS];
        for (int i = 0; i < N_SHORTHANDS; i++)
            names[i] = shorthands[i].name;
        const char *sugg = dgm_did_you_mean(name, names, N_SHORTHANDS);
        return dgm_cfg_error(c, name, DGM_EKEY,
                             "unknown corruption '%s'%s%s%s (one of noise, "
                             "occlude, rotate, blur, jpeg)",
                             name, sugg ? " (did you mean '" : "",
                             sugg ? sugg : "", sugg ? "'?)" : "");
    }
    int rc = dgm_cfg_to_float(dgm_cfg_at(c, 0), v);
    if (rc < 0)
        return rc;
    if (!(*v >= (*sh)->min && *v <= (*sh)->max))
        return dgm_cfg_error(c, name, DGM_ERANGE,
                             "%s strength %g is outside [%g, %g]", name, *v,
                             (*sh)->min, (*sh)->max);
    return 0;
}

int dgm__corrupt_check(const dgm_config *list)
{
    if (!list || dgm_cfg_kind_of(list) == DGM_CFG_NULL)
        return 0;
    if (dgm_cfg_kind_of(list) != DGM_CFG_SEQ)
        return dgm_cfg_error(list, NULL, DGM_ETYPE,
                             "`corrupt:` is a list of corruptions, e.g. "
                             "[{noise: 0.1}, {rotate: 15}]");
    for (int i = 0; i < dgm_cfg_len(list); i++) {
        const struct shorthand *sh;
        double v;
        int rc = read_entry(dgm_cfg_at(list, i), &sh, &v);
        if (rc < 0)
            return rc;
        for (int j = 0; j < i; j++) {
            const dgm_config *o = dgm_cfg_at(list, j);
            double w;
            if (!strcmp(dgm_cfg_key_at(o, 0), sh->name) &&
                dgm_cfg_to_float(dgm_cfg_at(o, 0), &w) == 0 && w == v)
                return dgm_cfg_error(dgm_cfg_at(list, i), sh->name, DGM_EDUP,
                                     "corruption %s: %g is listed twice",
                                     sh->name, v);
        }
    }
    return 0;
}

/* One corruption built: the augment plugin on a config of its own. */
static int build_one(dgm_experiment *e, const dgm_config *c,
                     dgm__corruption *out)
{
    const struct shorthand *sh;
    double v;
    int rc = read_entry(c, &sh, &v);
    if (rc < 0)
        return rc;
    snprintf(out->label, sizeof out->label, "%s=%g", sh->name, v);
    char text[256];
    snprintf(text, sizeof text, "{plugin: %s, %s: %.17g%s%s}", sh->plugin,
             sh->key, v, sh->extra[0] ? ", " : "", sh->extra);
    if ((rc = dgm_config_parse(&out->cfg, text, out->label)) < 0)
        return rc;
    const char *file;
    if ((rc = dgm_registry_find(e->reg, DGM_KIND_AUGMENT, sh->plugin,
                                &out->aug.desc, &file)) < 0)
        return dgm_cfg_error(c, sh->name, rc, "%s", dgm_last_error());
    const dgm_augment_iface *ai = out->aug.desc->iface.augment;
    if (!ai->apply)
        return dgm_cfg_error(c, sh->name, DGM_EUNSUPPORTED,
                             "augment '%s' has no in-place apply to corrupt "
                             "a batch with",
                             sh->plugin);
    if ((rc = dgm_config_validate(out->cfg, out->aug.desc->params, sh->plugin,
                                  NULL)) < 0 ||
        (rc = ai->create(&out->aug.self, out->cfg, &e->info)) < 0)
        return dgm_cfg_error(c, sh->name, rc, "%s", dgm_last_error());
    out->aug.cfg = out->cfg;
    return 0;
}

int dgm__corrupt_build_list(dgm_experiment *e, const dgm_config *metrics,
                            int n_metrics, dgm__corruptions **out)
{
    *out = NULL;
    if (n_metrics < 1)
        return 0;
    dgm__corruptions *all = calloc((size_t)n_metrics, sizeof *all);
    if (!all)
        return dgm_error(DGM_ENOMEM, "corrupt: out of memory");
    *out = all; /* freed by the caller, whatever got built */
    for (int i = 0; i < n_metrics; i++) {
        const dgm_config *list = dgm_cfg_get(dgm_cfg_at(metrics, i), "corrupt");
        int n = dgm_cfg_kind_of(list) == DGM_CFG_SEQ ? dgm_cfg_len(list) : 0;
        if (n < 1)
            continue;
        dgm__corruptions *cs = &all[i];
        if (!(cs->c = calloc((size_t)n, sizeof *cs->c)))
            return dgm_error(DGM_ENOMEM, "corrupt: out of memory");
        for (; cs->n < n; cs->n++) {
            int rc = build_one(e, dgm_cfg_at(list, cs->n), &cs->c[cs->n]);
            if (rc < 0) {
                cs->n++; /* freed with the others */
                return rc;
            }
        }
    }
    return 0;
}

void dgm__corrupt_free_list(dgm__corruptions *all, int n_metrics)
{
    for (int i = 0; all && i < n_metrics; i++) {
        for (int k = 0; k < all[i].n; k++) {
            dgm__inst_destroy(&all[i].c[k].aug);
            dgm_config_free(all[i].c[k].cfg);
        }
        free(all[i].c);
    }
    free(all);
}

int dgm__corrupt_build(dgm_experiment *e)
{
    return dgm__corrupt_build_list(e, dgm_cfg_get(e->root, "metrics"),
                                   e->n_metrics, &e->corrupt);
}

void dgm__corrupt_free(dgm_experiment *e)
{
    dgm__corrupt_free_list(e->corrupt, e->n_metrics);
    e->corrupt = NULL;
}

int dgm__corrupt_apply(const dgm__corruption *c, dgm_tensor *x, dgm_rng *rng)
{
    int rc = c->aug.desc->iface.augment->apply(c->aug.self, x, rng);
    return rc < 0 ? dgm_error_context("corruption %s: ", c->label) : 0;
}
