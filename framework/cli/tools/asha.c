/* asha.c - asynchronous successive halving: which trial trains to which
 * rung next, from the metrics reported so far (see asha.h). Also reads
 * the `sweep.scheduler.asha:` section. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asha.h"
#include "dgm/error.h"
#include "tool_config.h"

/* ---- the configuration ------------------------------------------------- */

void dgm__asha_config_free(dgm__asha_config *c)
{
    free(c->metric);
    c->metric = NULL;
}

static int read_int(const dgm_config *sec, const char *key, int64_t lo,
                    int64_t *out, bool required)
{
    const dgm_config *n = dgm_cfg_get(sec, key);
    if (!n) {
        if (required)
            return dgm_cfg_error(sec, NULL, DGM_EMISSING, "missing `%s:`", key);
        return 0;
    }
    int rc = dgm_cfg_to_int(n, out);
    if (rc < 0)
        return rc;
    if (*out < lo)
        return dgm_cfg_error(n, NULL, DGM_ERANGE, "%s: at least %lld, got %lld",
                             key, (long long)lo, (long long)*out);
    return 0;
}

int dgm__asha_config_read(dgm__asha_config *c, const dgm_config *sec)
{
    static const char *const keys[] = {"metric", "mode", "min_steps",
                                       "max_steps", "reduction"};
    memset(c, 0, sizeof *c);
    if (dgm_cfg_kind_of(sec) != DGM_CFG_MAP)
        return dgm_cfg_error(sec, NULL, DGM_ETYPE,
                             "expected a map {metric: M, mode: min|max, "
                             "min_steps: S, max_steps: T, reduction: R}");
    int krc = dgm__tool_known_keys(sec, "", keys, 5);
    if (krc < 0)
        return krc;
    const dgm_config *m = dgm_cfg_get(sec, "metric");
    const char *ms = NULL;
    if (!m)
        return dgm_cfg_error(sec, NULL, DGM_EMISSING,
                             "missing `metric:` (an evaluation figure, e.g. "
                             "neg_elbo)");
    int rc = dgm_cfg_to_str(m, &ms);
    if (rc < 0)
        return rc;
    const dgm_config *mode = dgm_cfg_get(sec, "mode");
    const char *md = "min";
    if (mode && (rc = dgm_cfg_to_str(mode, &md)) < 0)
        return rc;
    if (strcmp(md, "min") && strcmp(md, "max"))
        return dgm_cfg_error(mode, NULL, DGM_ERANGE,
                             "mode: min or max, not '%s'", md);
    int64_t red = 3;
    if ((rc = read_int(sec, "min_steps", 1, &c->min_steps, true)) < 0 ||
        (rc = read_int(sec, "max_steps", 1, &c->max_steps, true)) < 0 ||
        (rc = read_int(sec, "reduction", 2, &red, false)) < 0)
        return rc;
    if (red > 1000)
        return dgm_cfg_error(dgm_cfg_get(sec, "reduction"), NULL, DGM_ERANGE,
                             "reduction: 2 to 1000, got %lld", (long long)red);
    if (c->max_steps < c->min_steps)
        return dgm_cfg_error(dgm_cfg_get(sec, "max_steps"), NULL, DGM_ERANGE,
                             "max_steps (%lld) is below min_steps (%lld)",
                             (long long)c->max_steps, (long long)c->min_steps);
    c->reduction = (int)red;
    c->maximize = !strcmp(md, "max");
    /* min_steps * reduction^k below max_steps, then max_steps itself. */
    for (int64_t r = c->min_steps; r < c->max_steps; r *= red) {
        if (c->n_rungs == DGM__ASHA_MAX_RUNGS - 1)
            return dgm_cfg_error(sec, NULL, DGM_ERANGE, "more than %d rungs",
                                 DGM__ASHA_MAX_RUNGS);
        c->rungs[c->n_rungs++] = r;
    }
    c->rungs[c->n_rungs++] = c->max_steps;
    c->metric = strdup(ms);
    if (!c->metric)
        return dgm_error(DGM_ENOMEM, "out of memory");
    return 0;
}

/* ---- the scheduler ------------------------------------------------------ */

typedef struct entry {
    int trial;
    double key; /* lower is better; NAN mapped to +inf */
    long seq;   /* order of the report */
} entry;

struct dgm__asha {
    int n_trials, n_rungs, reduction;
    bool maximize;
    int64_t rungs[DGM__ASHA_MAX_RUNGS];
    int next_new; /* trials below this index have started */
    long seq;     /* reports so far */
    int *running; /* rung being trained to, -1 */
    int *reached; /* highest reported rung, -1 */
    bool *failed;
    double *metric; /* [trial][rung], NAN */
    /* [trial][rung]: promoted from that rung, and the rank it had then */
    int *promo_rank, *promo_n;
    entry *rung; /* [rung][n_trials]: the reports at each rung */
    int *n_rung;
    entry *scratch;
};

void dgm__asha_free(dgm__asha *a)
{
    if (!a)
        return;
    free(a->running);
    free(a->reached);
    free(a->failed);
    free(a->metric);
    free(a->promo_rank);
    free(a->promo_n);
    free(a->rung);
    free(a->n_rung);
    free(a->scratch);
    free(a);
}

int dgm__asha_new(dgm__asha **out, int n_trials, const int64_t *rungs,
                  int n_rungs, int reduction, bool maximize)
{
    *out = NULL;
    if (n_trials < 1 || n_rungs < 1 || n_rungs > DGM__ASHA_MAX_RUNGS ||
        reduction < 2)
        return dgm_error(DGM_EINVAL, "asha: %d trials, %d rungs, reduction %d",
                         n_trials, n_rungs, reduction);
    for (int k = 1; k < n_rungs; k++)
        if (rungs[k] <= rungs[k - 1])
            return dgm_error(DGM_EINVAL, "asha: rungs must increase");
    dgm__asha *a = calloc(1, sizeof *a);
    size_t nt = (size_t)n_trials, tr = nt * (size_t)n_rungs;
    if (a) {
        a->running = malloc(nt * sizeof *a->running);
        a->reached = malloc(nt * sizeof *a->reached);
        a->failed = calloc(nt, sizeof *a->failed);
        a->metric = malloc(tr * sizeof *a->metric);
        a->promo_rank = calloc(tr, sizeof *a->promo_rank);
        a->promo_n = calloc(tr, sizeof *a->promo_n);
        a->rung = malloc(tr * sizeof *a->rung);
        a->n_rung = calloc((size_t)n_rungs, sizeof *a->n_rung);
        a->scratch = malloc(nt * sizeof *a->scratch);
    }
    if (!a || !a->running || !a->reached || !a->failed || !a->metric ||
        !a->promo_rank || !a->promo_n || !a->rung || !a->n_rung ||
        !a->scratch) {
        dgm__asha_free(a);
        return dgm_error(DGM_ENOMEM, "out of memory");
    }
    a->n_trials = n_trials;
    a->n_rungs = n_rungs;
    a->reduction = reduction;
    a->maximize = maximize;
    memcpy(a->rungs, rungs, (size_t)n_rungs * sizeof *rungs);
    for (int i = 0; i < n_trials; i++)
        a->running[i] = a->reached[i] = -1;
    for (size_t i = 0; i < tr; i++)
        a->metric[i] = NAN;
    *out = a;
    return 0;
}

static int by_key(const void *pa, const void *pb)
{
    const entry *x = pa, *y = pb;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    if (x->seq != y->seq)
        return x->seq < y->seq ? -1 : 1;
    return (x->trial > y->trial) - (x->trial < y->trial);
}

/* Rung k's reports best first, in a->scratch; returns their number. */
static int ranked(dgm__asha *a, int k)
{
    int n = a->n_rung[k];
    memcpy(a->scratch, a->rung + (size_t)k * (size_t)a->n_trials,
           (size_t)n * sizeof *a->scratch);
    qsort(a->scratch, (size_t)n, sizeof *a->scratch, by_key);
    return n;
}

/* A trial of rung k (not the top) to promote: the best of the top
 * floor(n / reduction) that has not gone up yet and did not fail. */
static int promotable(dgm__asha *a, int k, int *rank, int *n_out)
{
    int n = ranked(a, k), top = n / a->reduction;
    for (int r = 0; r < top; r++) {
        int t = a->scratch[r].trial;
        if (a->reached[t] == k && a->running[t] < 0 && !a->failed[t]) {
            *rank = r + 1;
            *n_out = n;
            return t;
        }
    }
    return -1;
}

int dgm__asha_start(dgm__asha *a, int trial, int rung)
{
    if (trial < 0 || trial >= a->n_trials || rung < 0 || rung >= a->n_rungs)
        return dgm_error(DGM_ERANGE, "asha: no trial %d at rung %d", trial,
                         rung);
    if (a->running[trial] >= 0 || a->failed[trial] ||
        a->reached[trial] != rung - 1)
        return dgm_error(DGM_ESTATE,
                         "asha: trial %d cannot start rung %d (it reached "
                         "rung %d%s)",
                         trial, rung, a->reached[trial],
                         a->running[trial] >= 0 ? " and is running" : "");
    if (rung > 0) {
        int rank, n;
        /* Replayed or not, a promotion must be one ASHA would make now. */
        int k = rung - 1, nr = ranked(a, k), top = nr / a->reduction;
        rank = -1;
        for (int r = 0; r < top; r++)
            if (a->scratch[r].trial == trial)
                rank = r + 1;
        if (rank < 0)
            return dgm_error(DGM_ESTATE,
                             "asha: trial %d is not in the top %d of rung %d",
                             trial, top, k);
        n = nr;
        size_t at = (size_t)trial * (size_t)a->n_rungs + (size_t)k;
        a->promo_rank[at] = rank;
        a->promo_n[at] = n;
    } else if (trial >= a->next_new) {
        a->next_new = trial + 1;
    }
    a->running[trial] = rung;
    return 0;
}

int dgm__asha_next(dgm__asha *a, int *trial, int *rung)
{
    /* Highest rung first: the budget goes to the most promising trials
     * before new ones start (Li et al. 2020, Algorithm 2). */
    for (int k = a->n_rungs - 2; k >= 0; k--) {
        int rank, n, t = promotable(a, k, &rank, &n);
        if (t >= 0) {
            dgm__asha_start(a, t, k + 1);
            *trial = t;
            *rung = k + 1;
            return DGM__ASHA_JOB;
        }
    }
    while (a->next_new < a->n_trials &&
           (a->running[a->next_new] >= 0 || a->reached[a->next_new] >= 0))
        a->next_new++;
    if (a->next_new < a->n_trials) {
        *trial = a->next_new;
        *rung = 0;
        dgm__asha_start(a, *trial, 0);
        return DGM__ASHA_JOB;
    }
    for (int i = 0; i < a->n_trials; i++)
        if (a->running[i] >= 0)
            return DGM__ASHA_WAIT;
    return DGM__ASHA_DONE;
}

bool dgm__asha_finished(dgm__asha *a)
{
    for (int i = 0; i < a->n_trials; i++)
        if (a->running[i] >= 0 || a->reached[i] < 0)
            return false;
    for (int k = a->n_rungs - 2; k >= 0; k--) {
        int rank, n;
        if (promotable(a, k, &rank, &n) >= 0)
            return false;
    }
    return true;
}

int dgm__asha_report(dgm__asha *a, int trial, int rung, double metric)
{
    if (trial < 0 || trial >= a->n_trials || a->running[trial] != rung)
        return dgm_error(DGM_ESTATE, "asha: trial %d is not running rung %d",
                         trial, rung);
    a->running[trial] = -1;
    a->reached[trial] = rung;
    a->metric[(size_t)trial * (size_t)a->n_rungs + (size_t)rung] = metric;
    bool bad = isnan(metric);
    a->failed[trial] = bad;
    double key = bad ? INFINITY : a->maximize ? -metric : metric;
    entry *e = a->rung + (size_t)rung * (size_t)a->n_trials + a->n_rung[rung]++;
    *e = (entry){trial, key, a->seq++};
    return 0;
}

int dgm__asha_running(const dgm__asha *a, int trial)
{
    return a->running[trial];
}

int dgm__asha_reached(const dgm__asha *a, int trial)
{
    return a->reached[trial];
}

double dgm__asha_metric(const dgm__asha *a, int trial, int k)
{
    return a->metric[(size_t)trial * (size_t)a->n_rungs + (size_t)k];
}

bool dgm__asha_promotion(const dgm__asha *a, int trial, int k, int *rank,
                         int *n)
{
    size_t at = (size_t)trial * (size_t)a->n_rungs + (size_t)k;
    *rank = a->promo_rank[at];
    *n = a->promo_n[at];
    return *rank > 0;
}

int64_t dgm__asha_steps(const dgm__asha *a)
{
    int64_t s = 0;
    for (int i = 0; i < a->n_trials; i++) {
        int k = a->running[i] >= 0 ? a->running[i] : a->reached[i];
        if (k >= 0)
            s += a->rungs[k];
    }
    return s;
}

const char *dgm__asha_reason(const dgm__asha *a, int trial, char *buf, size_t n)
{
    int k = a->reached[trial];
    if (a->running[trial] >= 0) {
        int r = a->running[trial];
        size_t at = (size_t)trial * (size_t)a->n_rungs + (size_t)(r - 1);
        if (r == 0)
            snprintf(buf, n, "running to rung 0 (step %lld)",
                     (long long)a->rungs[0]);
        else
            snprintf(buf, n,
                     "promoted at rung %d (step %lld): rank %d of %d, top %d",
                     r - 1, (long long)a->rungs[r - 1], a->promo_rank[at],
                     a->promo_n[at], a->promo_n[at] / a->reduction);
        return buf;
    }
    if (k < 0) {
        snprintf(buf, n, "not started");
        return buf;
    }
    if (a->failed[trial]) {
        snprintf(buf, n,
                 "failed at rung %d (step %lld): counts as the worst value", k,
                 (long long)a->rungs[k]);
        return buf;
    }
    if (k == a->n_rungs - 1) {
        snprintf(buf, n, "reached the top rung (step %lld)",
                 (long long)a->rungs[k]);
        return buf;
    }
    dgm__asha *m = (dgm__asha *)a; /* ranked() only uses the scratch */
    int nr = ranked(m, k), rank = 0;
    for (int r = 0; r < nr; r++)
        if (m->scratch[r].trial == trial)
            rank = r + 1;
    snprintf(buf, n,
             "stopped at rung %d (step %lld): rank %d of %d, not in "
             "the top %d",
             k, (long long)a->rungs[k], rank, nr, nr / a->reduction);
    return buf;
}
