/* eval.c - what metric plugins ask of the host: batches of a split in
 * eval mode, the model's forward, objective, likelihood and samples; under
 * several processes, each rank's share and the sums over the ranks. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/error.h"
#include "dist.h"
#include "eval_internal.h"
#include "plugin_check.h"
#include "transfer.h"

int dgm__eval_new(dgm_eval **out, dgm_experiment *e, uint64_t seed)
{
    *out = NULL;
    dgm_eval *ev = calloc(1, sizeof *ev);
    if (!ev)
        return dgm_error(DGM_ENOMEM, "eval: out of memory");
    ev->e = e;
    ev->g = dgm_graph_new();
    if (!ev->g) {
        free(ev);
        return dgm_last_code();
    }
    dgm_rng_seed(&ev->rng, seed);
    ev->base = ev->draw_base = ev->corrupt_base = ev->rng;
    ev->failed = -1;
    *out = ev;
    return 0;
}

void dgm__eval_free(dgm_eval *ev)
{
    if (!ev)
        return;
    dgm_graph_free(ev->g);
    dgm__batchbuf_free(&ev->bb);
    free(ev);
}

const dgm_data_info *dgm_eval_data(dgm_eval *ev) { return &ev->e->info; }

int dgm_eval_batch(dgm_eval *ev, dgm_split split, int64_t start, int64_t n,
                   dgm_step **s, dgm_vars **io)
{
    ev->step = (dgm_step){.g = ev->g, .step = ev->at_step};
    int rc = dgm__batch_read(&ev->bb, ev->e, split, start, n, &ev->rng,
                             &ev->step, &ev->io);
    if (rc == 0 && ev->corrupt)
        rc = dgm__corrupt_apply(ev->corrupt, &ev->bb.xv, &ev->corrupt_rng);
    if (rc < 0)
        return rc;
    *s = &ev->step;
    *io = &ev->io;
    return 0;
}

int dgm_eval_forward(dgm_eval *ev, dgm_step *s, dgm_vars *io)
{
    const dgm_model_iface *mi = ev->e->model.desc->iface.model;
    int rc = mi->forward(ev->e->model.self, s, 0, io);
    return rc < 0 ? dgm_error_context("model '%s': ",
                                      ev->e->model.desc->name)
                  : 0;
}

int dgm_eval_objective(dgm_eval *ev, dgm_step *s, dgm_vars *io,
                       dgm_var **total, dgm_var **terms, int max,
                       int *n_terms)
{
    dgm__phase *ph = &ev->e->phases[0];
    /* the caller's array may hold fewer than the objective's terms */
    dgm_var **tv = calloc((size_t)ph->n_terms, sizeof *tv);
    if (!tv)
        return dgm_error(DGM_ENOMEM, "eval: out of memory");
    int rc = dgm__objective(ev->e, 0, s->g, io, true, total, tv);
    if (rc == 0 && n_terms)
        *n_terms = ph->n_terms;
    for (int i = 0; rc == 0 && terms && i < ph->n_terms && i < max; i++)
        terms[i] = tv[i];
    free(tv);
    return rc;
}

int dgm_eval_term_count(dgm_eval *ev) { return ev->e->phases[0].n_terms; }

const char *dgm_eval_term_name(dgm_eval *ev, int i)
{
    return i >= 0 && i < ev->e->phases[0].n_terms
               ? ev->e->phases[0].terms[i].label
               : NULL;
}

double dgm_eval_term_weight(dgm_eval *ev, int i)
{
    return i >= 0 && i < ev->e->phases[0].n_terms
               ? ev->e->phases[0].terms[i].weight
               : 0.0;
}

int dgm_eval_log_likelihood(dgm_eval *ev, dgm_step *s, dgm_var *x, int k,
                            dgm_var **out)
{
    const dgm_model_iface *mi = ev->e->model.desc->iface.model;
    if (!mi->log_likelihood)
        return dgm_error(DGM_EUNSUPPORTED,
                         "model '%s' gives no log-likelihood estimate",
                         ev->e->model.desc->name);
    int rc = mi->log_likelihood(ev->e->model.self, s, x, k, out);
    return rc < 0 ? dgm_error_context("model '%s': ",
                                      ev->e->model.desc->name)
                  : 0;
}

int dgm_eval_reconstruct(dgm_eval *ev, dgm_step *s, dgm_var *x,
                         dgm_var **out)
{
    const dgm_model_iface *mi = ev->e->model.desc->iface.model;
    if (!mi->reconstruct)
        return dgm_error(DGM_EUNSUPPORTED,
                         "model '%s' does not reconstruct",
                         ev->e->model.desc->name);
    int rc = mi->reconstruct(ev->e->model.self, s, x, out);
    return rc < 0 ? dgm_error_context("model '%s': ",
                                      ev->e->model.desc->name)
                  : 0;
}

int dgm_eval_sample(dgm_eval *ev, dgm_step *s, int64_t n, dgm_var **out)
{
    const dgm_model_iface *mi = ev->e->model.desc->iface.model;
    dgm__vars_clear(&ev->io);
    int rc = mi->sample(ev->e->model.self, s, n, &ev->io, out);
    return rc < 0 ? dgm_error_context("model '%s': ",
                                      ev->e->model.desc->name)
                  : 0;
}

int dgm_eval_sample_cond(dgm_eval *ev, dgm_step *s, const dgm_tensor *y,
                         dgm_var **out)
{
    const dgm_model_iface *mi = ev->e->model.desc->iface.model;
    const char *model = ev->e->model.desc->name;
    if (!y || y->ndim != 1 || y->dtype != DGM_I64 || y->shape[0] < 1)
        return dgm_error(DGM_EINVAL,
                         "sampling model '%s' conditionally: labels must be "
                         "a non-empty i64 [n] tensor",
                         model);
    if (!ev->e->info.has_y)
        return dgm_error(DGM_EUNSUPPORTED,
                         "model '%s' has no labels to condition on (the data "
                         "set has none)",
                         model);
    dgm__vars_clear(&ev->io);
    int rc = dgm_vars_set(&ev->io, "y", dgm_input(s->g, (dgm_tensor *)y));
    if (rc < 0)
        return rc;
    rc = mi->sample(ev->e->model.self, s, y->shape[0], &ev->io, out);
    if (rc < 0)
        return dgm_error_context("model '%s': ", model);
    /* A model that never read "y" sampled unconditionally: say so rather
     * than let a metric score it as conditional. */
    if (!dgm_vars_get(&ev->io, "y_used"))
        return dgm_error(DGM_EUNSUPPORTED,
                         "model '%s' does not sample conditionally (it did "
                         "not report \"y_used\")",
                         model);
    return 0;
}

dgm_registry *dgm_eval_registry(dgm_eval *ev) { return ev->e->reg; }

int dgm_eval_shard(dgm_eval *ev, int64_t n, int64_t batch, int64_t *start,
                   int64_t *count)
{
    if (!start || !count || n < 0 || batch < 1)
        return dgm_error(DGM_EINVAL,
                         "dgm_eval_shard: needs n >= 0 items, batch >= 1 "
                         "and two outputs, got n %lld, batch %lld",
                         (long long)n, (long long)batch);
    int64_t size = ev->sharded ? dgm__dist_size() : 1;
    int64_t rank = ev->sharded ? dgm__dist_rank() : 0;
    /* whole batches, so each rank's batches are the single process's and
     * a batch's draws (keyed by its first item) are the same too */
    int64_t nb = (n + batch - 1) / batch, q = nb / size, r = nb % size;
    int64_t b0 = rank * q + (rank < r ? rank : r);
    int64_t b1 = b0 + q + (rank < r ? 1 : 0);
    *start = b0 * batch < n ? b0 * batch : n;
    *count = (b1 * batch < n ? b1 * batch : n) - *start;
    return 0;
}

int dgm_eval_sum(dgm_eval *ev, double *v, int n)
{
    if (n < 0 || (n > 0 && !v))
        return dgm_error(DGM_EINVAL,
                         "dgm_eval_sum: needs n >= 0 values, got %d%s", n,
                         n > 0 ? " and no array" : "");
    if (!ev->sharded)
        return 0;
    /* A rank that failed in this metric before its sum is in the host's
     * agreement (dgm__eval_metrics) instead: meet it there first, so no
     * rank waits in a sum another will never make. */
    int who = dgm__dist_first(false);
    if (who >= 0) {
        ev->failed = who;
        return dgm_error(DGM_EINTERRUPTED,
                         "rank %d failed in this metric; every rank stops "
                         "(its message is on its standard error)",
                         who);
    }
    return dgm__dist_sum_f64(v, n);
}

void dgm_eval_draws(dgm_eval *ev, uint64_t key)
{
    dgm_rng_fork(&ev->rng, &ev->draw_base, key);
    if (ev->corrupt)
        dgm_rng_fork(&ev->corrupt_rng, &ev->corrupt_base, key);
}

/* A fresh eval-mode step with no batch (for sampling). */
dgm_step *dgm__eval_empty_step(dgm_eval *ev)
{
    dgm__step_eval(&ev->step, ev->g, &ev->rng, ev->at_step, ev->e);
    return &ev->step;
}

/* The figures res[first..) that metric d added take its declared
 * direction; a plugin built before ABI 2.1 has no table (undeclared). */
static void declare(const dgm_plugin_desc *d, dgm_results *res, int first)
{
    const dgm_metric_iface *mi = d->iface.metric;
    const dgm_metric_figure *t =
        DGM__HAS_SLOT(d, dgm_metric_iface, figures) ? mi->figures : NULL;
    for (int f = first; t && f < res->n; f++)
        for (const dgm_metric_figure *row = t; row->pattern; row++)
            if (dgm__globs_in(row->pattern, res->name[f])) {
                res->better[f] = row->better;
                break;
            }
}

/* How much worse a figure got: clean - corrupted when higher is better,
 * corrupted - clean otherwise, so a positive drop is always a loss. */
static double drop(dgm_better b, double clean, double corrupted)
{
    return b == DGM_BETTER_HIGHER ? clean - corrupted : corrupted - clean;
}

/* Metric instance m again into *out, from the RNG state the clean run
 * started from, with every batch through corruption c (NULL: none). */
static int eval_again(dgm_eval *ev, const dgm__inst *m,
                      const dgm__corruption *c, const dgm_rng *start,
                      uint64_t draws, dgm_results *out)
{
    ev->rng = *start;
    if (ev->restart)
        ev->restart(ev->restart_arg);
    ev->corrupt = c;
    dgm_rng_seed(&ev->corrupt_rng, draws);
    ev->corrupt_base = ev->corrupt_rng;
    int rc = m->desc->iface.metric->evaluate(m->self, ev, out);
    ev->corrupt = NULL;
    if (rc < 0)
        return rc;
    declare(m->desc, out, 0);
    return 0;
}

/* The value of figure `name` in r (NAN if r lacks it). */
static double value_of(const dgm_results *r, const char *name)
{
    for (int j = 0; j < r->n; j++)
        if (!strcmp(r->name[j], name))
            return r->value[j];
    return NAN;
}

/* Add figure `base`@`label` (direction b) and `base`@`label`/`what`
 * (value d, direction db). */
static int add_pair(dgm_results *res, const char *base, const char *label,
                    double v, dgm_better b, const char *what, double d,
                    dgm_better db)
{
    /* base may point into res, which adding a figure can move */
    char b0[DGM_MAX_RESULT_NAME], name[2 * DGM_MAX_RESULT_NAME + 8];
    snprintf(b0, sizeof b0, "%s", base);
    base = b0;
    snprintf(name, sizeof name, "%s@%s", base, label);
    int rc = dgm_results_set(res, name, v);
    if (rc < 0)
        return rc;
    res->better[res->n - 1] = b;
    snprintf(name, sizeof name, "%s@%s/%s", base, label, what);
    if ((rc = dgm_results_set(res, name, d)) < 0)
        return rc;
    res->better[res->n - 1] = db;
    return 0;
}

/* Metric i again on each of its corruptions and on its training subset:
 * each clean figure F = res[first..n_clean) gets F@LABEL and
 * F@LABEL/drop per corruption, F@train and F@train/gap (train - test). A
 * strength-0 corruption gives the clean figures: the metric's draws
 * start where the clean run's did, the corruption's are its own. */
static int eval_variants(dgm_eval *ev, int i, const dgm_rng *start,
                         dgm_results *res, int first)
{
    dgm_experiment *e = ev->e;
    const dgm__inst *m = &e->metrics[i];
    int n_clean = res->n, rc = 0;
    dgm_rng after = ev->rng;
    int n_c = e->corrupt ? e->corrupt[i].n : 0;
    for (int k = 0; rc == 0 && k < n_c; k++) {
        const dgm__corruption *c = &e->corrupt[i].c[k];
        dgm_results cr = {0};
        rc = eval_again(
            ev, m, c, start,
            e->seed ^ 0xc0aa7ULL ^ ((uint64_t)i << 32) ^ (uint64_t)k, &cr);
        if (rc < 0)
            rc = dgm_error_context(
                "metric '%s', corruption %s: ", m->desc->name, c->label);
        for (int f = first; rc == 0 && f < n_clean; f++) {
            double v = value_of(&cr, res->name[f]);
            dgm_better b = res->better[f];
            rc = add_pair(res, res->name[f], c->label, v, b, "drop",
                          drop(b, res->value[f], v), DGM_BETTER_LOWER);
        }
        dgm__results_clear(&cr);
    }
    if (rc == 0 && e->gap && e->gap[i].inst.desc) {
        dgm_results tr = {0};
        rc = eval_again(ev, &e->gap[i].inst, NULL, start, 0, &tr);
        if (rc < 0)
            rc = dgm_error_context("metric '%s' on the training subset: ",
                                   m->desc->name);
        for (int f = first; rc == 0 && f < n_clean; f++) {
            double v = value_of(&tr, res->name[f]);
            rc = add_pair(res, res->name[f], "train", v, res->better[f], "gap",
                          v - res->value[f], DGM_BETTER_NONE);
        }
        dgm__results_clear(&tr);
    }
    ev->rng = after;
    return rc;
}

/* Metric i (and its corruptions and training subset) into res. */
static int eval_one(dgm_eval *ev, int i, dgm_results *res)
{
    dgm_experiment *e = ev->e;
    const dgm_plugin_desc *d = e->metrics[i].desc;
    int first = res->n;
    dgm_rng start = ev->rng;
    if (ev->restart)
        ev->restart(ev->restart_arg);
    int rc = d->iface.metric->evaluate(e->metrics[i].self, ev, res);
    if (rc < 0)
        return dgm_error_context("metric '%s': ", d->name);
    declare(d, res, first);
    if ((e->corrupt && e->corrupt[i].n > 0) || (e->gap && e->gap[i].inst.desc))
        rc = eval_variants(ev, i, &start, res, first);
    return rc;
}

static bool shard_aware(const dgm_plugin_desc *d)
{
    return DGM__HAS_SLOT(d, dgm_metric_iface, shard_aware) &&
           d->iface.metric->shard_aware;
}

int dgm__eval_metrics(dgm_eval *ev, dgm_results *res)
{
    dgm_experiment *e = ev->e;
    bool many = ev->ranks && dgm__dist_size() > 1;
    res->n = 0;
    for (int i = 0; i < e->n_metrics; i++) {
        const dgm_plugin_desc *d = e->metrics[i].desc;
        /* A shard-aware metric runs on every rank, keying its draws from
         * its own seed, and leaves the evaluation's stream where it found
         * it, so the figures of every metric are one process's. Another
         * runs on rank 0 alone, over everything. */
        bool shard = shard_aware(d);
        dgm_rng before = ev->rng;
        dgm_rng_fork(&ev->draw_base, &ev->base, (uint64_t)i + 1);
        int rc = 0;
        ev->failed = -1;
        ev->sharded = many && shard;
        if (!many || shard || dgm__dist_rank() == 0)
            rc = eval_one(ev, i, res);
        ev->sharded = false;
        if (shard)
            ev->rng = before;
        /* every rank stops when one failed (unless a sum told them) */
        if (many && ev->failed < 0) {
            int who = dgm__dist_first(rc < 0);
            if (who >= 0 && rc == 0)
                rc = dgm_error(DGM_EINTERRUPTED,
                               "metric '%s': rank %d failed; every rank "
                               "stops (its message is on its standard "
                               "error)",
                               d->name, who);
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

dgm_var *dgm_step_augment(dgm_step *s, dgm_var *x)
{
    if (!x)
        return NULL;
    dgm_experiment *e = s->host_;
    if (!e || !s->training) /* augmentation is for training only */
        return x;
    for (int i = 0; i < e->n_augments && x; i++) {
        const dgm_augment_iface *ai = e->augments[i].desc->iface.augment;
        if (ai->forward)
            x = ai->forward(e->augments[i].self, s->g, x, s->rng);
    }
    return x;
}
