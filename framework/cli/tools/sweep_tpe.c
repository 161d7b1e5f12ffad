/* sweep_tpe.c - `sweep: {search: {tpe: ...}}`: the section read into the
 * estimator's parameters, the placeholders a trial holds until its
 * proposal, and a proposal set into a trial as config values. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/error.h"
#include "sweep.h"
#include "tool_config.h"

static int oom(void)
{
    return dgm_error(DGM_ENOMEM, "sweep: out of memory");
}

void dgm__sweep_tpe_free(dgm__sweep_tpe *t)
{
    if (!t)
        return;
    for (int k = 0; k < t->n_params; k++)
        free(t->keys[k]);
    dgm__tool_scalars_free(&t->made);
    free(t->keys);
    free(t->params);
    free(t->args);
    free(t->metric);
    free(t);
}

static int int_key(const dgm_config *sec, const char *k, int64_t lo, int64_t hi,
                   int64_t *v)
{
    const dgm_config *n = dgm_cfg_get(sec, k);
    int rc;
    if (!n)
        return 0;
    if ((rc = dgm_cfg_to_int(n, v)) < 0)
        return rc;
    if (*v < lo || *v > hi)
        return dgm_cfg_error(n, NULL, DGM_ERANGE, "%s: %lld to %lld, got %lld",
                             k, (long long)lo, (long long)hi, (long long)*v);
    return 0;
}

/* One parameter's distribution, as the random section spells it. */
static int read_param(dgm__sweep_tpe *t, int k, const dgm_config *spec)
{
    static const char *const kinds[] = {"choice", "uniform", "loguniform",
                                        "int"};
    if (dgm_cfg_kind_of(spec) != DGM_CFG_MAP || dgm_cfg_len(spec) != 1)
        return dgm_cfg_error(spec, NULL, DGM_ETYPE,
                             "expected one of {choice: [...]}, {uniform: "
                             "[lo, hi]}, {loguniform: [lo, hi]}, {int: "
                             "[lo, hi]}");
    const char *kind = dgm_cfg_key_at(spec, 0);
    const dgm_config *arg = dgm_cfg_at(spec, 0);
    dgm__tpe_param *p = &t->params[k];
    int rc;
    t->args[k] = arg;
    if (!strcmp(kind, "choice")) {
        if (dgm_cfg_kind_of(arg) != DGM_CFG_SEQ || dgm_cfg_len(arg) == 0)
            return dgm_cfg_error(arg, NULL, DGM_ETYPE,
                                 "choice: expected a non-empty list");
        p->kind = DGM__TPE_CHOICE;
        p->n_choices = dgm_cfg_len(arg);
    } else if (!strcmp(kind, "int")) {
        int64_t lo, hi;
        if ((rc = dgm__sweep_int_range_of(arg, &lo, &hi)) < 0)
            return rc;
        /* The estimator works in doubles: exact integers only to 2^53. */
        if (llabs(lo) > (1LL << 53) || llabs(hi) > (1LL << 53))
            return dgm_cfg_error(arg, NULL, DGM_ERANGE,
                                 "int: a searched range stays within "
                                 "+-2^53");
        *p = (dgm__tpe_param){DGM__TPE_INT, (double)lo, (double)hi, 0};
    } else if (!strcmp(kind, "uniform") || !strcmp(kind, "loguniform")) {
        double lo, hi;
        if ((rc = dgm__sweep_range_of(arg, kind, &lo, &hi)) < 0)
            return rc;
        *p = (dgm__tpe_param){
            kind[0] == 'u' ? DGM__TPE_UNIFORM : DGM__TPE_LOGUNIFORM, lo, hi, 0};
    } else {
        const char *dym = dgm_did_you_mean(kind, kinds, 4);
        return dgm_cfg_error(spec, NULL, DGM_EKEY,
                             "unknown distribution '%s'%s%s%s (choice, "
                             "uniform, loguniform, int)",
                             kind, dym ? " (did you mean '" : "",
                             dym ? dym : "", dym ? "'?)" : "");
    }
    return 0;
}

int dgm__sweep_tpe_read(dgm__sweep_tpe **out, const dgm_config *sec)
{
    static const char *const keys[] = {"n",     "startup",    "seed",
                                       "gamma", "candidates", "metric",
                                       "mode",  "params"};
    *out = NULL;
    if (dgm_cfg_kind_of(sec) != DGM_CFG_MAP)
        return dgm_cfg_error(sec, NULL, DGM_ETYPE,
                             "expected a map {n: N, startup: S, params: "
                             "{key: distribution}}");
    int krc = dgm__tool_known_keys(sec, "", keys, 8);
    if (krc < 0)
        return krc;
    const dgm_config *params = dgm_cfg_get(sec, "params");
    if (!dgm_cfg_get(sec, "n"))
        return dgm_cfg_error(sec, NULL, DGM_EMISSING,
                             "missing `n:` (the number of trials)");
    if (dgm_cfg_kind_of(params) != DGM_CFG_MAP || dgm_cfg_len(params) == 0)
        return dgm_cfg_error(params ? params : sec, NULL, DGM_EMISSING,
                             "`params:` must map each key to a "
                             "distribution");
    if (dgm_cfg_len(params) > 256)
        return dgm_cfg_error(params, NULL, DGM_ERANGE,
                             "at most 256 searched keys, got %d",
                             dgm_cfg_len(params));
    dgm__sweep_tpe *t = calloc(1, sizeof *t);
    if (!t)
        return oom();
    int np = dgm_cfg_len(params), rc;
    t->n_params = np;
    t->keys = calloc((size_t)np, sizeof *t->keys);
    t->params = calloc((size_t)np, sizeof *t->params);
    t->args = calloc((size_t)np, sizeof *t->args);
    t->startup = 10;
    t->candidates = 24;
    t->gamma = 0.25;
    if (!t->keys || !t->params || !t->args) {
        rc = oom();
        goto fail;
    }
    if ((rc = int_key(sec, "n", 1, DGM__SWEEP_MAX_TRIALS, &t->n)) < 0 ||
        (rc = int_key(sec, "startup", 1, DGM__SWEEP_MAX_TRIALS, &t->startup)) <
            0 ||
        (rc = int_key(sec, "seed", 0, INT64_MAX, &t->seed)) < 0 ||
        (rc = int_key(sec, "candidates", 1, 100000, &t->candidates)) < 0)
        goto fail;
    const dgm_config *g = dgm_cfg_get(sec, "gamma");
    if (g && (rc = dgm_cfg_to_float(g, &t->gamma)) < 0)
        goto fail;
    if (!(t->gamma > 0 && t->gamma < 1)) {
        rc = dgm_cfg_error(g, NULL, DGM_ERANGE,
                           "gamma: the good fraction, above 0 and below 1, "
                           "got %g",
                           t->gamma);
        goto fail;
    }
    /* null: not given (an override can take a key back) */
    const dgm_config *m = dgm_cfg_get(sec, "metric");
    if (dgm_cfg_kind_of(m) == DGM_CFG_NULL)
        m = NULL;
    if (m && (!dgm_cfg_text(m) || !(t->metric = strdup(dgm_cfg_text(m))))) {
        rc = dgm_cfg_error(m, NULL, DGM_ETYPE,
                           "metric: the name of an evaluation figure");
        goto fail;
    }
    const dgm_config *mode = dgm_cfg_get(sec, "mode");
    const char *md = dgm_cfg_text(mode);
    if (mode && (!m || !md || (strcmp(md, "min") && strcmp(md, "max")))) {
        rc = dgm_cfg_error(mode, NULL, DGM_ERANGE,
                           m ? "mode: min or max, not '%s'"
                             : "mode: goes with metric: (none given)%s",
                           m ? (md ? md : "?") : "");
        goto fail;
    }
    t->maximize = md && !strcmp(md, "max");
    for (int k = 0; k < np; k++) {
        if (!(t->keys[k] = strdup(dgm_cfg_key_at(params, k)))) {
            rc = oom();
            goto fail;
        }
        if ((rc = read_param(t, k, dgm_cfg_at(params, k))) < 0)
            goto fail;
    }
    *out = t;
    return 0;
fail:
    dgm__sweep_tpe_free(t);
    return rc;
}

const dgm_config *dgm__sweep_tpe_placeholder(const dgm__sweep_tpe *t, int k)
{
    return dgm_cfg_at(t->args[k], 0); /* the first choice, the low end */
}

int dgm__sweep_tpe_new(const dgm__sweep *s, dgm__tpe **out)
{
    const dgm__sweep_tpe *t = s->tpe;
    bool maximize = s->asha ? s->asha->maximize : t->maximize;
    return dgm__tpe_new(out, t->params, t->n_params, (int)t->startup, t->gamma,
                        (int)t->candidates, (uint64_t)t->seed, maximize);
}

int dgm__sweep_tpe_assign(dgm__sweep *s, int i, const double *x)
{
    dgm__sweep_tpe *t = s->tpe;
    dgm__sweep_trial *tr = &s->trials[i];
    for (int k = 0; k < t->n_params; k++) {
        const dgm_config *v;
        char text[64];
        if (t->params[k].kind == DGM__TPE_CHOICE) {
            int j = (int)x[k];
            if (j < 0 || j >= t->params[k].n_choices)
                return dgm_error(DGM_ERANGE,
                                 "search: choice %d of %s is out of range", j,
                                 t->keys[k]);
            v = dgm_cfg_at(t->args[k], j);
        } else {
            if (t->params[k].kind == DGM__TPE_INT)
                snprintf(text, sizeof text, "%.0f", x[k]);
            else {
                /* Every digit: the trial trains on the value proposed. */
                snprintf(text, sizeof text, "%.17g", x[k]);
                if (!strpbrk(text, ".eEin"))
                    strcat(text, ".0");
            }
            v = dgm__tool_scalar(&t->made, dgm__sweep_tpe_placeholder(t, k),
                                 text);
            if (!v)
                return oom();
        }
        for (int a = 0; a < tr->n_assign; a++)
            if (!strcmp(tr->assign[a].key, t->keys[k]))
                tr->assign[a].value = v;
    }
    return 0;
}
