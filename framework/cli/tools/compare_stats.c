/* compare_stats.c - which metrics, which way each improves, each
 * variant's mean and sample deviation over seeds, the best per metric. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "compare.h"
#include "compare_internal.h"
#include "dgm/config.h"
#include "dgm/error.h"

static bool figure(const dgm__cmp_run *r, const char *name, double *out)
{
    json_t *v = json_object_get(json_object_get(r->summary, "final"), name);
    if (!json_is_number(v))
        v = json_object_get(r->summary, name);
    if (!json_is_number(v))
        return false;
    *out = json_number_value(v);
    return isfinite(*out);
}

static bool has_word(const char *name, const char *const *words)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", name);
    for (char *p = buf; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    char *save = NULL;
    for (char *w = strtok_r(buf, "_/.- ", &save); w;
         w = strtok_r(NULL, "_/.- ", &save))
        for (int i = 0; words[i]; i++)
            if (!strcmp(w, words[i]))
                return true;
    return false;
}

dgm_better dgm__compare_better(const char *metric)
{
    static const char *const none[] = {"std",    "var",   "steps", "epochs",
                                       "params", "count", NULL};
    static const char *const lower[] = {
        "neg", "nll",  "loss", "fid",  "kid",        "error", "err",
        "bpc", "bpd",  "bits", "nats", "perplexity", "ppl",   "mse",
        "mae", "rmse", "kl",   "time", "distance",   NULL};
    static const char *const higher[] = {
        "accuracy",  "acc", "precision", "recall",  "elbo",       "f1", "auc",
        "inception", "is",  "coverage",  "density", "likelihood", "ll", NULL};
    if (has_word(metric, none))
        return DGM_BETTER_NONE;
    if (has_word(metric, lower))
        return DGM_BETTER_LOWER;
    if (has_word(metric, higher))
        return DGM_BETTER_HIGHER;
    return DGM_BETTER_NONE;
}

/* The direction the runs recorded for a figure (summary.json "better",
 * written from the metrics' declarations): the first run that records
 * one wins. False for runs written before directions were recorded, or a
 * figure its metric did not declare. */
static bool recorded_better(const dgm__compare *c, const char *name,
                            dgm_better *out)
{
    for (int i = 0; i < c->n_runs; i++) {
        const char *s = json_string_value(json_object_get(
            json_object_get(c->runs[i].summary, "better"), name));
        for (int b = DGM_BETTER_NONE; s && b <= DGM_BETTER_HIGHER; b++)
            if (!strcmp(s, dgm_better_name((dgm_better)b))) {
                *out = (dgm_better)b;
                return true;
            }
    }
    return false;
}

static int metric_index(const dgm__compare *c, const char *name)
{
    for (int m = 0; m < c->n_metrics; m++)
        if (!strcmp(c->metrics[m], name))
            return m;
    return -1;
}

static int add_metric(dgm__cmp_loader *L, int *cap, const char *name)
{
    dgm__compare *c = L->c;
    if (metric_index(c, name) >= 0)
        return 0;
    if (!dgm__cmp_push((void **)&c->metrics, &c->n_metrics, cap,
                       sizeof *c->metrics) ||
        !(c->metrics[c->n_metrics] = strdup(name)))
        return dgm_error(DGM_ENOMEM, "compare: out of memory");
    c->n_metrics++;
    return 0;
}

/* Every figure name of any run, for did-you-mean. */
static int candidate_names(const dgm__compare *c, const char **out, int max)
{
    int n = 0;
    for (int i = 0; i < c->n_runs; i++) {
        const json_t *objs[2] = {json_object_get(c->runs[i].summary, "final"),
                                 c->runs[i].summary};
        for (int o = 0; o < 2; o++) {
            const char *k;
            json_t *v;
            json_object_foreach((json_t *)objs[o], k, v)
            {
                if (!json_is_number(v))
                    continue;
                bool seen = false;
                for (int j = 0; j < n && !seen; j++)
                    seen = !strcmp(out[j], k);
                if (!seen && n < max)
                    out[n++] = k;
            }
        }
    }
    return n;
}

int dgm__cmp_choose_metrics(dgm__cmp_loader *L, const dgm__cmp_options *o)
{
    dgm__compare *c = L->c;
    int cap = 0, rc;
    if (o->n_metrics > 0) {
        for (int k = 0; k < o->n_metrics; k++) {
            bool any = false;
            double x;
            for (int i = 0; i < c->n_runs && !any; i++)
                any = figure(&c->runs[i], o->metrics[k], &x);
            if (!any) {
                const char *cand[512];
                int nc = candidate_names(c, cand, 512);
                const char *dym = dgm_did_you_mean(o->metrics[k], cand, nc);
                return dgm_error(DGM_EKEY,
                                 "--metric %s: no run's summary.json has "
                                 "this figure%s%s%s",
                                 o->metrics[k], dym ? " (did you mean '" : "",
                                 dym ? dym : "", dym ? "'?)" : "");
            }
            if ((rc = add_metric(L, &cap, o->metrics[k])) < 0)
                return rc;
        }
    } else {
        bool loss = false;
        for (int i = 0; i < c->n_runs; i++) {
            const char *k;
            json_t *v;
            json_object_foreach(json_object_get(c->runs[i].summary, "final"), k,
                                v)
            {
                if (json_is_number(v) && (rc = add_metric(L, &cap, k)) < 0)
                    return rc;
            }
            loss |= json_is_number(
                json_object_get(c->runs[i].summary, "train_loss"));
        }
        if (loss && (rc = add_metric(L, &cap, "train_loss")) < 0)
            return rc;
    }
    c->better = calloc((size_t)c->n_metrics + 1, sizeof *c->better);
    if (!c->better)
        return dgm_error(DGM_ENOMEM, "compare: out of memory");
    /* --higher/--lower, else what the runs recorded, else (runs written
     * before metrics declared a direction) the guess from the name */
    for (int m = 0; m < c->n_metrics; m++)
        if (!recorded_better(c, c->metrics[m], &c->better[m]))
            c->better[m] = dgm__compare_better(c->metrics[m]);
    const char *const *lists[2] = {o->higher, o->lower};
    int counts[2] = {o->n_higher, o->n_lower};
    for (int l = 0; l < 2; l++)
        for (int k = 0; k < counts[l]; k++) {
            int m = metric_index(c, lists[l][k]);
            if (m < 0)
                return dgm_error(DGM_EKEY,
                                 "--%s %s: not a metric of this comparison",
                                 l ? "lower" : "higher", lists[l][k]);
            c->better[m] = l ? DGM_BETTER_LOWER : DGM_BETTER_HIGHER;
        }
    return 0;
}

int dgm__cmp_compute(dgm__compare *c)
{
    for (int i = 0; i < c->n_runs; i++) {
        dgm__cmp_variant *v = &c->variants[c->runs[i].variant];
        int *p = realloc(v->runs, sizeof *p * (size_t)(v->n_runs + 1));
        if (!p)
            return dgm_error(DGM_ENOMEM, "compare: out of memory");
        v->runs = p;
        v->runs[v->n_runs++] = i;
        const char *s = c->runs[i].status;
        int *counter[] = {&v->done,    &v->failed,  &v->diverged,
                          &v->stopped, &v->running, &v->pending};
        for (int k = 0; k < 6; k++)
            if (s == dgm__cmp_statuses[k])
                (*counter[k])++;
    }
    for (int vi = 0; vi < c->n_variants; vi++) {
        dgm__cmp_variant *v = &c->variants[vi];
        v->stat = calloc((size_t)c->n_metrics + 1, sizeof *v->stat);
        if (!v->stat)
            return dgm_error(DGM_ENOMEM, "compare: out of memory");
        for (int m = 0; m < c->n_metrics; m++) {
            dgm__cmp_stat *st = &v->stat[m];
            double sum = 0, x;
            for (int k = 0; k < v->n_runs; k++) {
                const dgm__cmp_run *r = &c->runs[v->runs[k]];
                if (r->status == dgm__cmp_statuses[0] &&
                    figure(r, c->metrics[m], &x)) {
                    sum += x;
                    st->n++;
                }
            }
            st->mean = st->n ? sum / st->n : NAN;
            double ss = 0;
            for (int k = 0; k < v->n_runs; k++) {
                const dgm__cmp_run *r = &c->runs[v->runs[k]];
                if (r->status == dgm__cmp_statuses[0] &&
                    figure(r, c->metrics[m], &x))
                    ss += (x - st->mean) * (x - st->mean);
            }
            st->sd = st->n > 1 ? sqrt(ss / (st->n - 1)) : NAN;
        }
    }
    /* best: only when at least two variants have the figure */
    for (int m = 0; m < c->n_metrics; m++) {
        if (c->better[m] != DGM_BETTER_LOWER &&
            c->better[m] != DGM_BETTER_HIGHER)
            continue;
        int have = 0;
        double best = 0;
        for (int vi = 0; vi < c->n_variants; vi++) {
            const dgm__cmp_stat *st = &c->variants[vi].stat[m];
            if (!st->n)
                continue;
            if (!have++ || (c->better[m] == DGM_BETTER_LOWER ? st->mean < best
                                                             : st->mean > best))
                best = st->mean;
        }
        for (int vi = 0; vi < c->n_variants && have > 1; vi++) {
            dgm__cmp_stat *st = &c->variants[vi].stat[m];
            st->best = st->n && st->mean == best;
        }
    }
    return 0;
}

/* ---- load and free --------------------------------------------------------
 */
