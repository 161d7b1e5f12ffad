/* batch.c - examples of a split read in order outside training: the
 * buffers, the eval-mode step they go into, and the build's probes (a few
 * training examples in a step of their own). */
#include <stdlib.h>
#include <string.h>

#include "dgm/error.h"
#include "host_internal.h"

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

void dgm__rows_view(dgm_tensor *view, const dgm_tensor *t, int64_t n)
{
    *view = *t;
    view->shape[0] = n;
}

void dgm__batchbuf_free(dgm__batchbuf *bb)
{
    dgm_tensor_free(bb->x);
    dgm_tensor_free(bb->y);
    dgm_tensor_free(bb->ym);
    free(bb->idx);
    memset(bb, 0, sizeof *bb);
}

void dgm__step_eval(dgm_step *s, dgm_graph *g, dgm_rng *rng, int64_t at,
                    dgm_experiment *e)
{
    dgm_graph_reset(g);
    dgm_graph_set_training(g, false);
    dgm_graph_set_grad(g, false);
    dgm_graph_set_rng(g, rng);
    *s = (dgm_step){
        .g = g, .rng = rng, .step = at, .training = false, .host_ = e};
}

int dgm__batch_read(dgm__batchbuf *bb, dgm_experiment *e, dgm_split split,
                    int64_t start, int64_t n, dgm_rng *rng, dgm_step *s,
                    dgm_vars *io)
{
    if (split < 0 || split >= DGM_SPLIT_COUNT || start < 0 || n < 1 ||
        start + n > e->info.size[split])
        return dgm_error(DGM_ERANGE,
                         "eval: examples [%lld, %lld) outside the split of "
                         "%lld",
                         (long long)start, (long long)(start + n),
                         split >= 0 && split < DGM_SPLIT_COUNT
                             ? (long long)e->info.size[split]
                             : -1LL);
    if (n > bb->cap) {
        dgm_tensor *x, *y, *ym;
        int rc = dgm__batch_alloc(&e->info, n, &x, &y, &ym);
        if (rc < 0)
            return rc;
        int64_t *idx = realloc(bb->idx, sizeof *idx * (size_t)n);
        if (!idx) {
            dgm_tensor_free(x);
            dgm_tensor_free(y);
            dgm_tensor_free(ym);
            return dgm_error(DGM_ENOMEM, "eval: out of memory");
        }
        dgm_tensor_free(bb->x);
        dgm_tensor_free(bb->y);
        dgm_tensor_free(bb->ym);
        bb->x = x, bb->y = y, bb->ym = ym, bb->idx = idx, bb->cap = n;
    }
    for (int64_t i = 0; i < n; i++)
        bb->idx[i] = start + i;
    dgm__rows_view(&bb->xv, bb->x, n);
    dgm_batch b = {.n = n, .x = &bb->xv};
    if (bb->y) {
        dgm__rows_view(&bb->yv, bb->y, n);
        dgm__rows_view(&bb->mv, bb->ym, n);
        dgm_tensor_fill(&bb->mv, 1.0);
        b.y = &bb->yv;
        b.y_mask = &bb->mv;
    }
    const dgm_dataset_iface *di = e->data.desc->iface.dataset;
    int rc = di->get(e->data.self, split, bb->idx, &b, rng);
    if (rc < 0)
        return dgm_error_context("dataset '%s': ", e->data.desc->name);

    dgm__step_eval(s, s->g, rng, s->step, e);
    dgm__vars_clear(io);
    rc = dgm_vars_set(io, "x", dgm_input(s->g, &bb->xv));
    if (rc == 0 && bb->y)
        rc = dgm_vars_set(io, "y", dgm_input(s->g, &bb->yv));
    if (rc == 0 && bb->y)
        rc = dgm_vars_set(io, "y_mask", dgm_input(s->g, &bb->mv));
    return rc;
}

int dgm__probe_init(dgm__probe *p, uint64_t seed)
{
    memset(p, 0, sizeof *p);
    if (!(p->g = dgm_graph_new()))
        return dgm_last_code();
    dgm_rng_seed(&p->rng, seed);
    return 0;
}

int dgm__probe_batch(dgm__probe *p, dgm_experiment *e, int64_t n, dgm_step **s,
                     dgm_vars **io)
{
    p->step = (dgm_step){.g = p->g};
    int rc = dgm__batch_read(&p->bb, e, DGM_SPLIT_TRAIN, 0, n, &p->rng,
                             &p->step, &p->io);
    if (rc < 0)
        return rc;
    *s = &p->step;
    *io = &p->io;
    return 0;
}

void dgm__probe_free(dgm__probe *p)
{
    dgm_graph_free(p->g);
    dgm__batchbuf_free(&p->bb);
    memset(p, 0, sizeof *p);
}
