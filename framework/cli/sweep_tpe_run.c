/* sweep_tpe_run.c - `sweep: {search: {tpe: ...}}` in dgm sweep: each
 * trial's values proposed when it launches from the trials finished so
 * far, the proposals and losses kept in the manifest as events (replayed
 * by --resume, so the estimator is where it was), each trial's proposal
 * and loss beside it. The estimator itself is tools/tpe.c.
 *
 * The loss: without a scheduler, the trial's last evaluation of the
 * search's metric; with ASHA, its metric at the lowest rung (the one
 * budget every trial is judged at); a failure or a divergence counts as
 * the worst. Each trial is observed once, when its first job ends. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "dgm/error.h"
#include "sweep.h"
#include "sweep_run.h"

static json_t *events(dgm__sweep_run *c)
{
    return json_object_get(json_object_get(c->manifest, "search"), "events");
}

/* The trial's overrides and params in the manifest from its
 * assignments; a searched key not proposed yet is null and no
 * override. */
static void sync_trial(dgm__sweep_run *c, int i, bool proposed)
{
    const dgm__sweep_trial *t = &c->sweep->trials[i];
    json_t *o = dgm__sweep_manifest_trial(c->manifest, i);
    json_t *ov = json_array(), *p = json_object();
    for (int k = 0; k < t->n_assign; k++) {
        bool searched = !t->assign[k].label[0];
        if (searched && !proposed) {
            json_object_set_new(p, t->assign[k].key, json_null());
            continue;
        }
        char *txt = dgm__sweep_override_text(&t->assign[k]);
        json_array_append_new(ov, json_string(txt ? txt : ""));
        free(txt);
        json_object_set_new(p, t->assign[k].key,
                            dgm__sweep_cfg_json(t->assign[k].value));
    }
    json_object_set_new(o, "overrides", ov);
    json_object_set_new(o, "params", p);
}

static json_t *x_json(const double *x, int n)
{
    json_t *a = json_array();
    for (int k = 0; k < n; k++)
        json_array_append_new(a, json_real(x[k]));
    return a;
}

/* A trial's recorded proposal into x; false when it has none. */
static bool recorded_x(dgm__sweep_run *c, int i, double *x)
{
    json_t *a = json_object_get(
        json_object_get(dgm__sweep_manifest_trial(c->manifest, i), "tpe"), "x");
    int n = c->sweep->tpe->n_params;
    if (json_array_size(a) != (size_t)n)
        return false;
    for (int k = 0; k < n; k++)
        x[k] = json_number_value(json_array_get(a, (size_t)k));
    return true;
}

int dgm__sweep_tpe_open(dgm__sweep_run *c, bool resume)
{
    const dgm__sweep_tpe *t = c->sweep->tpe;
    int rc = dgm__sweep_tpe_new(c->sweep, &c->tpe);
    if (rc < 0)
        return rc;
    json_t *s = json_object_get(c->manifest, "search");
    if (!resume || !s) {
        const dgm__asha_config *ac = c->sweep->asha;
        s = json_pack("{s:{s:I,s:I,s:I,s:f,s:I,s:s,s:s,s:s},s:[]}", "tpe", "n",
                      (json_int_t)t->n, "startup", (json_int_t)t->startup,
                      "seed", (json_int_t)t->seed, "gamma", t->gamma,
                      "candidates", (json_int_t)t->candidates, "metric",
                      ac ? ac->metric : t->metric, "mode",
                      (ac ? ac->maximize : t->maximize) ? "max" : "min", "loss",
                      ac ? "rung 0" : "last evaluation", "events");
        json_object_set_new(c->manifest, "search", s);
        for (int i = 0; i < c->sweep->n_trials; i++)
            sync_trial(c, i, false);
        return 0;
    }
    /* --resume: the same proposals and losses in the same order; each
     * proposal made again must be the one recorded. */
    json_t *ev = events(c);
    double *x = calloc((size_t)t->n_params, sizeof *x),
           *y = calloc((size_t)t->n_params, sizeof *y);
    if (!x || !y) {
        free(x);
        free(y);
        return dgm_error(DGM_ENOMEM, "sweep: out of memory");
    }
    for (size_t j = 0; rc == 0 && j < json_array_size(ev); j++) {
        json_t *e = json_array_get(ev, j);
        const char *what = json_string_value(json_array_get(e, 0));
        int i = (int)json_integer_value(json_array_get(e, 1));
        if (!what || i < 0 || i >= c->sweep->n_trials || !recorded_x(c, i, x))
            rc = DGM_EFORMAT;
        else if (!strcmp(what, "propose")) {
            rc = dgm__tpe_suggest(c->tpe, y);
            for (int k = 0; rc == 0 && k < t->n_params; k++)
                if (x[k] != y[k])
                    rc = DGM_EFORMAT;
            if (rc == 0 && (rc = dgm__sweep_tpe_assign(c->sweep, i, x)) == 0)
                sync_trial(c, i, true);
        } else {
            json_t *v = json_array_get(e, 2);
            rc = dgm__tpe_observe(
                c->tpe, x, json_is_number(v) ? json_number_value(v) : NAN);
        }
        if (rc < 0)
            rc = dgm_error(DGM_EFORMAT,
                           "%s/manifest.json: search event %zu does not "
                           "replay",
                           c->dir, j);
    }
    free(x);
    free(y);
    return rc;
}

int dgm__sweep_tpe_launch(dgm__sweep_run *c, int i)
{
    json_t *o = dgm__sweep_manifest_trial(c->manifest, i);
    if (json_object_get(o, "tpe"))
        return 0; /* proposed before (a rerun, a promotion) */
    int n = c->sweep->tpe->n_params, rc;
    double *x = calloc((size_t)n, sizeof *x);
    if (!x)
        return dgm_error(DGM_ENOMEM, "sweep: out of memory");
    if ((rc = dgm__tpe_suggest(c->tpe, x)) == 0 &&
        (rc = dgm__sweep_tpe_assign(c->sweep, i, x)) == 0) {
        json_object_set_new(o, "tpe",
                            json_pack("{s:o,s:n}", "x", x_json(x, n), "loss"));
        json_array_append_new(events(c), json_pack("[si]", "propose", i));
        sync_trial(c, i, true);
    }
    free(x);
    return rc;
}

void dgm__sweep_tpe_ended(dgm__sweep_run *c, int i)
{
    json_t *o = dgm__sweep_manifest_trial(c->manifest, i);
    json_t *tp = json_object_get(o, "tpe");
    const char *st = json_string_value(json_object_get(o, "status"));
    int n = c->sweep->tpe->n_params;
    double x[256];
    /* stopped by dgm sweep: it runs again, and is judged then */
    if (!tp || json_object_get(tp, "observed") || !st ||
        !strcmp(st, "stopped") || n > 256 || !recorded_x(c, i, x))
        return;
    double y = NAN;
    if (c->sweep->asha) {
        y = dgm__asha_metric(c->asha, i, 0);
    } else if (!strcmp(st, "done")) {
        char d[PATH_MAX];
        dgm__sweep_trial_dir(c, i, d, sizeof d);
        y = dgm__sweep_eval_metric(d, c->sweep->tpe->metric, -1);
    }
    dgm__tpe_observe(c->tpe, x, y);
    json_object_set_new(tp, "loss", isnan(y) ? json_null() : json_real(y));
    json_object_set_new(tp, "observed", json_true());
    if (!c->quiet) {
        /* What the estimator learnt: the proposal and its loss. */
        json_t *ov = json_object_get(o, "overrides");
        printf("[tpe] %s:", json_string_value(json_object_get(o, "name")));
        for (size_t k = 0; k < json_array_size(ov); k++)
            printf(" %s", json_string_value(json_array_get(ov, k)));
        printf(": loss %.6g%s\n", y, isnan(y) ? " (failed: the worst)" : "");
        fflush(stdout);
    }
    json_array_append_new(events(c),
                          json_pack("[sio]", "observe", i,
                                    isnan(y) ? json_null() : json_real(y)));
}

void dgm__sweep_tpe_close(dgm__sweep_run *c)
{
    dgm__tpe_free(c->tpe);
    c->tpe = NULL;
}
