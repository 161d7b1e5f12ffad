/* eval.c - what metric plugins ask of the host: batches of a split in
 * eval mode, the model's forward, objective, likelihood and samples. */
#include <stdlib.h>
#include <string.h>

#include "dgm/error.h"
#include "eval_internal.h"

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
    *out = ev;
    return 0;
}

void dgm__eval_free(dgm_eval *ev)
{
    if (!ev)
        return;
    dgm_graph_free(ev->g);
    dgm_tensor_free(ev->x);
    dgm_tensor_free(ev->y);
    dgm_tensor_free(ev->ym);
    free(ev->idx);
    free(ev);
}

/* Batch tensors of capacity n (x, y, y_mask), reused across batches. */
int dgm__batch_alloc(const dgm_data_info *info, int64_t n, dgm_tensor **x,
                     dgm_tensor **y, dgm_tensor **ym)
{
    int64_t shape[DGM_MAX_DIMS + 1];
    shape[0] = n;
    memcpy(shape + 1, info->x_shape.dim,
           sizeof(int64_t) * (size_t)info->x_shape.ndim);
    *x = dgm_tensor_new(info->x_dtype, info->x_shape.ndim + 1, shape);
    *y = *ym = NULL;
    if (!*x)
        return dgm_last_code();
    if (info->has_y) {
        memcpy(shape + 1, info->y_shape.dim,
               sizeof(int64_t) * (size_t)info->y_shape.ndim);
        *y = dgm_tensor_new(info->y_dtype, info->y_shape.ndim + 1, shape);
        *ym = dgm_tensor_new(DGM_F32, 1, shape);
        if (!*y || !*ym) {
            dgm_tensor_free(*x);
            dgm_tensor_free(*y);
            dgm_tensor_free(*ym);
            *x = *y = *ym = NULL;
            return dgm_last_code();
        }
    }
    return 0;
}

/* The first n rows of t, as a struct view (no allocation). */
void dgm__rows_view(dgm_tensor *view, const dgm_tensor *t, int64_t n)
{
    *view = *t;
    view->shape[0] = n;
}

const dgm_data_info *dgm_eval_data(dgm_eval *ev) { return &ev->e->info; }

int dgm_eval_batch(dgm_eval *ev, dgm_split split, int64_t start, int64_t n,
                   dgm_step **s, dgm_vars **io)
{
    dgm_experiment *e = ev->e;
    if (split < 0 || split >= DGM_SPLIT_COUNT || start < 0 || n < 1 ||
        start + n > e->info.size[split])
        return dgm_error(DGM_ERANGE,
                         "eval: examples [%lld, %lld) outside the split of "
                         "%lld",
                         (long long)start, (long long)(start + n),
                         split >= 0 && split < DGM_SPLIT_COUNT
                             ? (long long)e->info.size[split]
                             : -1LL);
    if (n > ev->cap) {
        dgm_tensor *x, *y, *ym;
        int rc = dgm__batch_alloc(&e->info, n, &x, &y, &ym);
        if (rc < 0)
            return rc;
        int64_t *idx = realloc(ev->idx, sizeof *idx * (size_t)n);
        if (!idx) {
            dgm_tensor_free(x);
            dgm_tensor_free(y);
            dgm_tensor_free(ym);
            return dgm_error(DGM_ENOMEM, "eval: out of memory");
        }
        dgm_tensor_free(ev->x);
        dgm_tensor_free(ev->y);
        dgm_tensor_free(ev->ym);
        ev->x = x, ev->y = y, ev->ym = ym, ev->idx = idx, ev->cap = n;
    }
    for (int64_t i = 0; i < n; i++)
        ev->idx[i] = start + i;
    dgm__rows_view(&ev->xv, ev->x, n);
    dgm_batch b = {.n = n, .x = &ev->xv};
    if (ev->y) {
        dgm__rows_view(&ev->yv, ev->y, n);
        dgm__rows_view(&ev->mv, ev->ym, n);
        dgm_tensor_fill(&ev->mv, 1.0);
        b.y = &ev->yv;
        b.y_mask = &ev->mv;
    }
    const dgm_dataset_iface *di = e->data.desc->iface.dataset;
    int rc = di->get(e->data.self, split, ev->idx, &b, &ev->rng);
    if (rc < 0)
        return dgm_error_context("dataset '%s': ", e->data.desc->name);

    dgm_graph_reset(ev->g);
    dgm_graph_set_training(ev->g, false);
    dgm_graph_set_grad(ev->g, false);
    dgm_graph_set_rng(ev->g, &ev->rng);
    ev->step = (dgm_step){.g = ev->g, .rng = &ev->rng, .step = ev->at_step,
                          .training = false, .host_ = e};
    dgm__vars_clear(&ev->io);
    rc = dgm_vars_set(&ev->io, "x", dgm_input(ev->g, &ev->xv));
    if (rc == 0 && ev->y)
        rc = dgm_vars_set(&ev->io, "y", dgm_input(ev->g, &ev->yv));
    if (rc == 0 && ev->y)
        rc = dgm_vars_set(&ev->io, "y_mask", dgm_input(ev->g, &ev->mv));
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

/* A fresh eval-mode step with no batch (for sampling). */
dgm_step *dgm__eval_empty_step(dgm_eval *ev)
{
    dgm_graph_reset(ev->g);
    dgm_graph_set_training(ev->g, false);
    dgm_graph_set_grad(ev->g, false);
    dgm_graph_set_rng(ev->g, &ev->rng);
    ev->step = (dgm_step){.g = ev->g, .rng = &ev->rng, .step = ev->at_step,
                          .training = false, .host_ = ev->e};
    return &ev->step;
}

int dgm_results_set(dgm_results *r, const char *name, double value)
{
    for (int i = 0; i < r->n; i++)
        if (!strcmp(r->name[i], name)) {
            r->value[i] = value;
            return 0;
        }
    if (strlen(name) >= sizeof r->name[0])
        return dgm_error(DGM_ERANGE,
                         "results: figure name '%s' is longer than %d bytes",
                         name, DGM_MAX_RESULT_NAME - 1);
    if (r->n == DGM_MAX_RESULTS)
        return dgm_error(DGM_ERANGE,
                         "results: more than %d figures (adding '%s')",
                         DGM_MAX_RESULTS, name);
    strcpy(r->name[r->n], name);
    r->value[r->n++] = value;
    return 0;
}

int dgm__eval_metrics(dgm_eval *ev, dgm_results *res)
{
    dgm_experiment *e = ev->e;
    res->n = 0;
    for (int i = 0; i < e->n_metrics; i++) {
        const dgm_metric_iface *mi = e->metrics[i].desc->iface.metric;
        int rc = mi->evaluate(e->metrics[i].self, ev, res);
        if (rc < 0)
            return dgm_error_context("metric '%s': ",
                                     e->metrics[i].desc->name);
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
