/* sweep_asha.c - `sweep: {scheduler: {asha: ...}}` in dgm sweep: the
 * trials' length and evaluations set from the rungs, the scheduler's
 * events kept in the manifest (replayed by --resume), and each job's
 * rung metric read from the trial's metrics.jsonl. The decisions
 * themselves are tools/asha.c's. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "dgm/error.h"
#include "sweep.h"
#include "sweep_run.h"

static int set_int(dgm_config *root, const char *path, int64_t v)
{
    char t[32];
    snprintf(t, sizeof t, "%lld", (long long)v);
    dgm_config *n = dgm_config_new_scalar(t, dgm_cfg_get(root, "sweep"));
    if (!n)
        return dgm_error(DGM_ENOMEM, "sweep: out of memory");
    int rc = dgm_config_set(root, path, n);
    dgm_config_free(n);
    return rc;
}

int dgm__sweep_asha_base(dgm__sweep *s, const dgm_config *root)
{
    const dgm__asha_config *ac = s->asha;
    const dgm_config *ev = dgm_cfg_get(s->base, "train.eval_every");
    int64_t every = 0;
    int rc;
    if (ev && (rc = dgm_cfg_to_int(ev, &every)) < 0)
        return rc;
    /* Every rung below the top needs an evaluation at its step; the top
     * is the run's end, which always evaluates. */
    if (every <= 0)
        every = ac->min_steps;
    for (int k = 0; k + 1 < ac->n_rungs; k++)
        if (ac->rungs[k] % every)
            return dgm_cfg_error(ev ? ev : dgm_cfg_get(root, "sweep"), NULL,
                                 DGM_ERANGE,
                                 "train.eval_every (%lld) must divide every "
                                 "ASHA rung's step; rung %d is step %lld",
                                 (long long)every, k, (long long)ac->rungs[k]);
    /* A trial is max_steps long, so that its learning-rate schedule is
     * the same whichever rung it stops at. */
    if ((rc = set_int(s->base, "train.eval_every", every)) < 0 ||
        (rc = set_int(s->base, "train.steps", ac->max_steps)) < 0)
        return rc;
    return 0;
}

static json_t *sched_obj(dgm__sweep_run *c)
{
    return json_object_get(c->manifest, "scheduler");
}

/* Each trial's "asha" object from the scheduler's state. */
static void refresh(dgm__sweep_run *c)
{
    const dgm__asha_config *ac = c->sweep->asha;
    for (int i = 0; i < c->sweep->n_trials; i++) {
        json_t *o = json_object(), *ms = json_array();
        int k = dgm__asha_reached(c->asha, i),
            r = dgm__asha_running(c->asha, i);
        for (int j = 0; j <= k; j++) {
            double v = dgm__asha_metric(c->asha, i, j);
            json_array_append_new(ms, isnan(v) ? json_null() : json_real(v));
        }
        char why[256];
        dgm__asha_reason(c->asha, i, why, sizeof why);
        const char *dec = r > 0                        ? "promoted"
                          : r == 0                     ? "running"
                          : k < 0                      ? "pending"
                          : !strncmp(why, "failed", 6) ? "failed"
                          : k == ac->n_rungs - 1       ? "top"
                                                       : "stopped";
        json_object_set_new(o, "rung", json_integer(k));
        json_object_set_new(o, "step",
                            k >= 0 ? json_integer(ac->rungs[k]) : json_null());
        json_object_set_new(o, "metrics", ms);
        json_t *pr = json_array();
        for (int j = 0; j + 1 < ac->n_rungs; j++) {
            int rank, n;
            if (dgm__asha_promotion(c->asha, i, j, &rank, &n))
                json_array_append_new(pr, json_pack("{s:i,s:I,s:i,s:i}", "rung",
                                                    j, "step",
                                                    (json_int_t)ac->rungs[j],
                                                    "rank", rank, "of", n));
        }
        json_object_set_new(o, "promotions", pr);
        json_object_set_new(o, "decision", json_string(dec));
        json_object_set_new(o, "reason", json_string(why));
        json_object_set_new(dgm__sweep_manifest_trial(c->manifest, i), "asha",
                            o);
    }
    json_object_set_new(sched_obj(c), "steps",
                        json_integer(dgm__asha_steps(c->asha)));
}

static void event(dgm__sweep_run *c, const char *what, int t, int k, double v)
{
    json_t *e = json_pack("[sii]", what, t, k);
    if (!strcmp(what, "report"))
        json_array_append_new(e, isnan(v) ? json_null() : json_real(v));
    json_array_append_new(json_object_get(sched_obj(c), "events"), e);
}

int dgm__sweep_asha_open(dgm__sweep_run *c, bool resume)
{
    const dgm__asha_config *ac = c->sweep->asha;
    int rc = dgm__asha_new(&c->asha, c->sweep->n_trials, ac->rungs, ac->n_rungs,
                           ac->reduction, ac->maximize);
    if (rc < 0)
        return rc;
    c->relaunch = calloc((size_t)c->sweep->n_trials, sizeof *c->relaunch);
    if (!c->relaunch)
        return dgm_error(DGM_ENOMEM, "sweep: out of memory");
    json_t *s = sched_obj(c);
    if (!resume || !s) {
        json_t *r = json_array();
        for (int k = 0; k < ac->n_rungs; k++)
            json_array_append_new(r, json_integer(ac->rungs[k]));
        s = json_pack("{s:{s:s,s:s,s:i,s:o},s:[]}", "asha", "metric",
                      ac->metric, "mode", ac->maximize ? "max" : "min",
                      "reduction", ac->reduction, "rungs", r, "events");
        json_object_set_new(c->manifest, "scheduler", s);
        refresh(c);
        return 0;
    }
    /* --resume: the same starts and reports in the same order put the
     * scheduler where it was; the jobs that were running run again. */
    json_t *ev = json_object_get(s, "events");
    for (size_t j = 0; j < json_array_size(ev); j++) {
        json_t *e = json_array_get(ev, j);
        const char *what = json_string_value(json_array_get(e, 0));
        int t = (int)json_integer_value(json_array_get(e, 1));
        int k = (int)json_integer_value(json_array_get(e, 2));
        json_t *v = json_array_get(e, 3);
        if (!what)
            rc = DGM_EFORMAT;
        else if (!strcmp(what, "start"))
            rc = dgm__asha_start(c->asha, t, k);
        else
            rc = dgm__asha_report(
                c->asha, t, k, json_is_number(v) ? json_number_value(v) : NAN);
        if (rc < 0)
            return dgm_error(DGM_EFORMAT,
                             "%s/manifest.json: scheduler event %zu does not "
                             "replay: %s",
                             c->dir, j, dgm_last_error());
    }
    for (int i = 0; i < c->sweep->n_trials; i++)
        if (dgm__asha_running(c->asha, i) >= 0)
            c->relaunch[c->n_relaunch++] = i;
    refresh(c);
    return 0;
}

int dgm__sweep_asha_take(dgm__sweep_run *c, int *trial, int64_t *step)
{
    int t, k;
    if (c->n_relaunch > 0) {
        t = c->relaunch[--c->n_relaunch];
        k = dgm__asha_running(c->asha, t);
    } else {
        if (dgm__asha_next(c->asha, &t, &k) != DGM__ASHA_JOB)
            return 0;
        event(c, "start", t, k, 0);
    }
    *trial = t;
    *step = c->sweep->asha->rungs[k];
    refresh(c);
    return 1;
}

double dgm__sweep_eval_metric(const char *dir, const char *metric, int64_t step)
{
    char p[PATH_MAX + 16];
    snprintf(p, sizeof p, "%s/metrics.jsonl", dir);
    FILE *f = fopen(p, "r");
    double v = NAN;
    if (!f)
        return v;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        if (!strstr(line, "\"eval\""))
            continue;
        json_t *j = json_loads(line, 0, NULL);
        json_t *m = json_object_get(json_object_get(j, "eval"), metric);
        if ((step < 0 ||
             json_integer_value(json_object_get(j, "step")) == step) &&
            json_is_number(m))
            v = json_number_value(m);
        json_decref(j);
    }
    free(line);
    fclose(f);
    return v;
}

/* A job of trial i ended: its rung metric to the scheduler (a crash, a
 * divergence or a missing figure counts as the worst), the outcome to
 * the manifest. A job stopped by dgm sweep itself reports nothing: it
 * runs again on --resume. */
void dgm__sweep_asha_ended(dgm__sweep_run *c, int i, int exit_code, int sig,
                           bool killed)
{
    const dgm__asha_config *ac = c->sweep->asha;
    json_t *t = dgm__sweep_manifest_trial(c->manifest, i);
    int k = dgm__asha_running(c->asha, i);
    char d[PATH_MAX], now[40], msg[1200] = "";
    dgm__sweep_trial_dir(c, i, d, sizeof d);
    dgm__sweep_set_str(t, "ended", dgm__sweep_now(now, sizeof now));
    json_object_set_new(t, "exit_code",
                        exit_code >= 0 ? json_integer(exit_code) : json_null());
    json_object_set_new(t, "signal", sig ? json_integer(sig) : json_null());
    if (killed) {
        dgm__sweep_set_str(t, "status", "stopped");
        return;
    }
    double v = NAN;
    const char *st = "failed";
    if (sig) {
        snprintf(msg, sizeof msg, "killed by signal %d", sig);
    } else if (exit_code == 0) {
        v = dgm__sweep_eval_metric(d, ac->metric, ac->rungs[k]);
        if (isnan(v))
            snprintf(msg, sizeof msg,
                     "no evaluation of '%s' at step %lld in metrics.jsonl",
                     ac->metric, (long long)ac->rungs[k]);
        else
            st = k == ac->n_rungs - 1 ? "done" : "paused";
    } else {
        st = dgm__sweep_outcome(d, exit_code);
        snprintf(msg, sizeof msg, "%s at rung %d", st, k);
    }
    dgm__asha_report(c->asha, i, k, v);
    event(c, "report", i, k, v);
    dgm__sweep_set_str(t, "status", st);
    dgm__sweep_set_str(t, "message", msg[0] ? msg : NULL);
    refresh(c);
    if (!c->quiet) {
        const char *name = json_string_value(json_object_get(t, "name"));
        if (msg[0])
            printf("[asha] %s: rung %d (step %lld): %s\n", name, k,
                   (long long)ac->rungs[k], msg);
        else
            printf("[asha] %s: rung %d (step %lld): %s = %.6g\n", name, k,
                   (long long)ac->rungs[k], ac->metric, v);
        fflush(stdout);
    }
}

/* The sweep's end: when ASHA has nothing left, the trials it left at a
 * lower rung are done (an interrupted sweep leaves them paused). */
void dgm__sweep_asha_close(dgm__sweep_run *c)
{
    if (c->asha && dgm__asha_finished(c->asha)) {
        for (int i = 0; i < c->sweep->n_trials; i++)
            if (!strcmp(dgm__sweep_status_of(c, i), "paused"))
                dgm__sweep_set_str(dgm__sweep_manifest_trial(c->manifest, i),
                                   "status", "done");
        refresh(c);
    }
    dgm__asha_free(c->asha);
    c->asha = NULL;
    free(c->relaunch);
    c->relaunch = NULL;
}
