/* probe.c - what a finished run's blocks record while they run
 * (dgm_graph_tap: attention probabilities), read for `dgm explore`; and
 * text turned into the run's token ids for it. */
#include <string.h>

#include "dgm/error.h"
#include "run_internal.h"

/* The taps named `name` of the graph as new tensors. */
static int collect(dgm_graph *g, const char *name, dgm_tensor **out, int max,
                   int *n)
{
    for (int i = 0; i < dgm_graph_tap_count(g); i++) {
        const char *tn;
        dgm_var *v = dgm_graph_tap_at(g, i, &tn);
        if (strcmp(tn, name))
            continue;
        if (*n == max)
            return dgm_error(DGM_ERANGE, "probing: more than %d '%s' taps", max,
                             name);
        if (!(out[*n] = dgm_tensor_clone(dgm_value(v))))
            return dgm_last_code();
        (*n)++;
    }
    return 0;
}

int dgm_run_probe(dgm_run *r, const dgm_tensor *x, const dgm_tensor *z,
                  const char *name, dgm_tensor **out, int max, int *n)
{
    *n = 0;
    dgm_experiment *e = dgm_run_experiment(r);
    const dgm_tensor *in = x ? x : z;
    if ((x == NULL) == (z == NULL) || !name || !in || in->ndim < 1 ||
        in->shape[0] < 1 || in->shape[0] > 256)
        return dgm_error(DGM_EINVAL,
                         "probing run '%s': give examples x or latents z "
                         "(one of them, 1 to 256 rows) and a name",
                         e->name);
    dgm_eval *ev = dgm__run_eval(r);
    dgm_step *s = dgm__eval_empty_step(ev);
    bool was = dgm_graph_set_tapping(s->g, true);
    int rc;
    if (x) {
        const dgm_data_info *info = &e->info;
        if (x->ndim != info->x_shape.ndim + 1 || x->dtype != info->x_dtype ||
            memcmp(x->shape + 1, info->x_shape.dim,
                   sizeof(int64_t) * (size_t)info->x_shape.ndim))
            rc = dgm_error(DGM_ESHAPE,
                           "probing run '%s': x is not the model's examples",
                           e->name);
        else {
            dgm__vars_clear(&ev->io);
            rc = dgm_vars_set(&ev->io, "x", dgm_input(s->g, (dgm_tensor *)x));
            if (rc == 0)
                rc = e->model.desc->iface.model->forward(e->model.self, s, 0,
                                                         &ev->io);
        }
    } else {
        int (*dec)(void *, dgm_step *, dgm_var *, dgm_vars *, dgm_var **) =
            dgm_run_latent_size(r) > 0 ? e->model.desc->iface.model->decode
                                       : NULL;
        dgm_var *o;
        dgm__vars_clear(&ev->io);
        rc = dec ? dec(e->model.self, s, dgm_input(s->g, (dgm_tensor *)z),
                       &ev->io, &o)
                 : dgm_error(DGM_EUNSUPPORTED,
                             "model '%s' has no latent space to decode",
                             dgm_run_model_name(r));
    }
    if (rc == 0)
        rc = collect(s->g, name, out, max, n);
    dgm_graph_set_tapping(s->g, was);
    if (rc < 0) {
        for (int i = 0; i < *n; i++)
            dgm_tensor_free(out[i]);
        *n = 0;
        return dgm_error_context("model '%s': ", dgm_run_model_name(r));
    }
    if (*n == 0)
        return dgm_error(DGM_EUNSUPPORTED,
                         "model '%s' records no '%s' (none of its blocks "
                         "taps it)",
                         dgm_run_model_name(r), name);
    return 0;
}
