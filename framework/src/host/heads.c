/* heads.c - `heads:`: blocks on named tensors of the model, built after
 * it (their input's shape read from a probe forward) and run as a provider
 * before the objective, their weights trained in the phases that read
 * them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/error.h"
#include "host_internal.h"

/* The provider of the heads (the heads themselves are e->heads): the
 * output of each head the phase reads and io lacks, when its input is
 * there. */
static int heads_forward(void *self, dgm_experiment *e, int phase, dgm_graph *g,
                         dgm_vars *io)
{
    (void)self;
    dgm__phase *ph = &e->phases[phase];
    for (int h = 0; h < e->n_heads; h++) {
        dgm__head *hd = &e->heads[h];
        bool needed = dgm__phase_reads(ph, hd->name);
        dgm_var *in = dgm_vars_get(io, hd->input);
        if (!needed || !in || dgm_vars_get(io, hd->name))
            continue;
        if (hd->detach)
            in = dgm_detach(g, in);
        dgm_var *out = dgm_block_forward(hd->blk, g, in);
        if (!out)
            return dgm_error_context("head '%s': ", hd->name);
        int rc = dgm_vars_set(io, hd->name, out);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Build the `heads:` blocks under "heads.<name>". The input's
 * per-example shape is read from one eval-mode forward of the model on
 * two training examples (with a throwaway RNG, so the run's streams are
 * untouched), in the first phase that produces it. Its rows may be
 * several batches stacked (gan's d_feat: the real and the fake batch). */
int dgm__heads_build(dgm_experiment *e)
{
    const dgm_config *hs = dgm_cfg_get(e->root, "heads");
    int nh = dgm_cfg_kind_of(hs) == DGM_CFG_SEQ ? dgm_cfg_len(hs) : 0;
    if (nh == 0)
        return 0;
    if (!(e->heads = calloc((size_t)nh, sizeof *e->heads)))
        return dgm_error(DGM_ENOMEM, "out of memory");
    dgm__probe pr;
    int rc = dgm__probe_init(&pr, e->seed ^ 0x4ead5ULL);
    if (rc < 0)
        return rc;
    const dgm_model_iface *mi = e->model.desc->iface.model;
    int64_t n = e->info.size[DGM_SPLIT_TRAIN] < 2 ? 1 : 2;
    for (int h = 0; h < nh && rc == 0; h++) {
        dgm__head *hd = &e->heads[h];
        const dgm_config *hc = dgm_cfg_at(hs, h);
        hd->cfg = hc;
        hd->name = dgm_cfg_str(hc, "name");
        hd->input = dgm_cfg_str(hc, "input");
        hd->detach = dgm_cfg_bool(hc, "detach");
        dgm_var *in = NULL;
        for (int p = 0; p < mi->n_phases && !in && rc == 0; p++) {
            dgm_step *s;
            dgm_vars *io;
            if ((rc = dgm__probe_batch(&pr, e, n, &s, &io)) < 0)
                break;
            if ((rc = mi->forward(e->model.self, s, p, io)) < 0) {
                rc = dgm_error_context("heads: model '%s' forward, phase "
                                       "%d: ",
                                       e->model.desc->name, p);
                break;
            }
            in = dgm_vars_get(io, hd->input);
        }
        if (rc < 0)
            break;
        if (!in) {
            rc = dgm_cfg_error(hc, "input", DGM_ENOTFOUND,
                               "head '%s': model '%s' has no output '%s' "
                               "in any phase",
                               hd->name, e->model.desc->name, hd->input);
            break;
        }
        const dgm_tensor *v = dgm_value(in);
        if (v->ndim < 1 || v->shape[0] < n || v->shape[0] % n != 0) {
            rc = dgm_cfg_error(hc, "input", DGM_ESHAPE,
                               "head '%s': '%s' is not per example", hd->name,
                               hd->input);
            break;
        }
        dgm_shape ins = {.ndim = v->ndim - 1}, outs = {0};
        outs.ndim = dgm_cfg_int_list(hc, "out", outs.dim, DGM_MAX_DIMS);
        for (int d = 1; d < v->ndim; d++)
            ins.dim[d - 1] = v->shape[d];
        char scope[160];
        snprintf(scope, sizeof scope, "heads.%s", hd->name);
        rc = dgm_block_create(&e->build, dgm_cfg_child(hc, "block"), scope,
                              &ins, &outs, &hd->blk);
        if (rc < 0)
            rc = dgm_error_context("head '%s': ", hd->name);
        else
            e->n_heads++;
    }
    dgm__probe_free(&pr);
    if (rc < 0)
        return rc;
    dgm__provider p = {.self = NULL, .forward = heads_forward};
    return dgm__experiment_add_provider(e, &p);
}

/* The phases a head's weights belong to: its `phases:` list (checked at
 * resolve time to name phases that read it), else every phase that reads
 * it. */
bool dgm__head_trains_in(const dgm__head *hd, const dgm__phase *ph)
{
    const dgm_config *list = dgm_cfg_get(hd->cfg, "phases");
    if (dgm_cfg_kind_of(list) != DGM_CFG_SEQ)
        return dgm__phase_reads(ph, hd->name);
    for (int j = 0; j < dgm_cfg_len(list); j++)
        if (!strcmp(dgm_cfg_text(dgm_cfg_at(list, j)), ph->name))
            return true;
    return false;
}
