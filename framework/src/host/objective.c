/* objective.c - what a phase's objective reads and what it computes: the
 * providers' tensors (heads, teachers) added, each loss term applied to
 * its named inputs, weighted and summed; and the build's check that every
 * input exists. */
#include <stdio.h>
#include <string.h>

#include "dgm/error.h"
#include "host_internal.h"

bool dgm__objective_reads(const dgm_config *objective, const char *name)
{
    for (int t = 0; t < dgm_cfg_len(objective); t++) {
        const dgm_config *tc = dgm_cfg_at(objective, t);
        const dgm_config *ins = dgm_cfg_get(tc, "inputs");
        for (int j = 0; j < dgm_cfg_len(ins); j++)
            if (!strcmp(dgm_cfg_text(dgm_cfg_at(ins, j)), name))
                return true;
        const dgm_config *m = dgm_cfg_get(tc, "mask");
        if (m && dgm_cfg_kind_of(m) == DGM_CFG_SCALAR &&
            !strcmp(dgm_cfg_text(m), name))
            return true;
    }
    return false;
}

bool dgm__phase_reads(const dgm__phase *ph, const char *name)
{
    return dgm__objective_reads(ph->objective, name);
}

/* Each provider adds what the phase reads, in the order the build listed
 * them (teachers, then heads: a head may read a teacher's output). */
static int providers_forward(dgm_experiment *e, int phase, dgm_graph *g,
                             dgm_vars *io)
{
    for (int i = 0; i < e->n_providers; i++) {
        const dgm__provider *p = &e->providers[i];
        int rc = p->forward(p->self, e, phase, g, io);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* An objective term reads a tensor its phase does not have: name the
 * term's key and what the phase has. */
static int no_input(const dgm_experiment *e, const dgm__phase *ph,
                    const dgm__term *tm, const char *key, const char *name,
                    const dgm_vars *io)
{
    char have[512];
    return dgm_cfg_error(tm->loss.cfg, key, DGM_ENOTFOUND,
                         "model '%s' has no output '%s' in phase '%s' (it "
                         "has: %s)",
                         e->model.desc->name, name, ph->name,
                         dgm__vars_names(io, have, sizeof have));
}

/* The providers (teachers, heads) of phase p added to io, then every
 * term's inputs and mask looked up. */
static int phase_inputs_present(dgm_experiment *e, int p, dgm_graph *g,
                                dgm_vars *io)
{
    int rc = providers_forward(e, p, g, io);
    if (rc < 0)
        return rc;
    const dgm__phase *ph = &e->phases[p];
    for (int t = 0; t < ph->n_terms; t++) {
        const dgm__term *tm = &ph->terms[t];
        for (int j = 0; j < tm->n_inputs; j++)
            if (!dgm_vars_get(io, tm->inputs[j]))
                return no_input(e, ph, tm, "inputs", tm->inputs[j], io);
        if (tm->mask && !dgm_vars_get(io, tm->mask))
            return no_input(e, ph, tm, "mask", tm->mask, io);
    }
    return 0;
}

int dgm__experiment_check_inputs(dgm_experiment *e)
{
    dgm__probe pr;
    int rc = dgm__probe_init(&pr, e->seed ^ 0x1a9e7ULL);
    if (rc < 0)
        return rc;
    const dgm_model_iface *mi = e->model.desc->iface.model;
    int64_t n = e->info.size[DGM_SPLIT_TRAIN] < 2 ? 1 : 2;
    for (int p = 0; p < e->n_phases && rc == 0; p++) {
        dgm_step *s;
        dgm_vars *io;
        if ((rc = dgm__probe_batch(&pr, e, n, &s, &io)) < 0)
            break;
        if ((rc = mi->forward(e->model.self, s, p, io)) < 0)
            rc = dgm_error_context("model '%s' forward, phase '%s': ",
                                   e->model.desc->name, e->phases[p].name);
        else
            rc = phase_inputs_present(e, p, s->g, io);
    }
    dgm__probe_free(&pr);
    return rc;
}

/* Sum of a [N] f32 mask's values: the number of examples that count. */
static double mask_count(const dgm_tensor *m)
{
    double s = 0;
    int64_t n = dgm_tensor_numel(m);
    for (int64_t i = 0; i < n; i++)
        s += dgm_tensor_get(m, i);
    return s;
}

/* Evaluation reads a term per example. A scalar (a batch mean, or a
 * statistic of the whole batch) stands for every example of its batch, so
 * a split's average weights each batch by its size: what a loop that adds
 * loss * batch size and divides by the split size reports. A vector must
 * hold one value per example. *scalar says whether *v was broadcast. */
static int per_example_values(dgm_graph *g, dgm_vars *io, const dgm__term *tm,
                              dgm_var **v, bool *scalar)
{
    const dgm_var *x = dgm_vars_get(io, "x");
    const dgm_tensor *val = dgm_value(*v);
    if (!x || dgm_value(x)->ndim < 1)
        return dgm_error(DGM_ESHAPE,
                         "loss '%s' (term '%s'): the batch has no x to "
                         "count its examples",
                         tm->loss.desc->name, tm->label);
    int64_t n = dgm_value(x)->shape[0];
    if (val->ndim == 1 && val->shape[0] == n) {
        *scalar = false;
        return 0;
    }
    if (!*scalar)
        return dgm_error(DGM_ESHAPE,
                         "loss '%s' (term '%s') gave %lld values for a "
                         "batch of %lld examples; evaluation needs one per "
                         "example (or a scalar)",
                         tm->loss.desc->name, tm->label,
                         (long long)val->shape[0], (long long)n);
    *v = dgm_add(g, dgm_constant(g, 1, &n, 0.0f), *v);
    return *v ? 0
              : dgm_error_context(
                    "loss '%s' (term '%s'): ", tm->loss.desc->name, tm->label);
}

double dgm__term_weight(const dgm__term *tm, int64_t updates)
{
    return dgm__schedule_lr(&tm->wsched, tm->weight, updates);
}

/* In training a term is weighted as scheduled for the update about to be
 * made; evaluation (per_example) weighs it at its `value:`, so figures do
 * not depend on where an annealing schedule stood (a KL weight at 0 would
 * drop the KL from an ELBO that divides the weights out). */
int dgm__objective(dgm_experiment *e, int phase, dgm_graph *g, dgm_vars *io,
                   bool per_example, dgm_var **total, dgm_var **term_values)
{
    dgm__phase *ph = &e->phases[phase];
    dgm_var *sum = NULL;
    *total = NULL;
    int hrc = providers_forward(e, phase, g, io);
    if (hrc < 0)
        return hrc;
    for (int t = 0; t < ph->n_terms; t++) {
        dgm__term *tm = &ph->terms[t];
        dgm_var *ins[DGM_MAX_LOSS_INPUTS];
        for (int j = 0; j < tm->n_inputs; j++)
            if (!(ins[j] = dgm_vars_get(io, tm->inputs[j])))
                return no_input(e, ph, tm, "inputs", tm->inputs[j], io);
        const dgm_loss_iface *li = tm->loss.desc->iface.loss;
        dgm_var *v = li->apply(tm->loss.self, g, ins, tm->n_inputs);
        if (!v)
            return dgm_error_context(
                "loss '%s' (term '%s'): ", tm->loss.desc->name, tm->label);
        dgm_tensor *val = dgm_value(v);
        bool scalar = dgm_tensor_numel(val) == 1 && val->ndim <= 1;
        if (!scalar && val->ndim != 1)
            return dgm_error(DGM_ESHAPE,
                             "loss '%s' (term '%s') returned rank %d; a "
                             "loss returns per-example values [N] or a "
                             "scalar",
                             tm->loss.desc->name, tm->label, val->ndim);
        if (per_example &&
            (hrc = per_example_values(g, io, tm, &v, &scalar)) < 0)
            return hrc;
        if (!scalar) {
            double count = (double)val->shape[0];
            if (tm->mask) {
                dgm_var *m = dgm_vars_get(io, tm->mask);
                if (!m)
                    return no_input(e, ph, tm, "mask", tm->mask, io);
                count = mask_count(dgm_value(m));
                v = dgm_mul(g, v, m);
            }
            if (!per_example)
                v = count > 0 ? dgm_affine(g, dgm_sum_all(g, v),
                                           (float)(1.0 / count), 0.0f)
                              : dgm_affine(g, dgm_sum_all(g, v), 0.0f, 0.0f);
        }
        double w = per_example ? tm->weight : dgm__term_weight(tm, ph->updates);
        if (w != 1.0)
            v = dgm_affine(g, v, (float)w, 0.0f);
        if (!v)
            return dgm_error_context("term '%s': ", tm->label);
        if (term_values)
            term_values[t] = v;
        sum = sum ? dgm_add(g, sum, v) : v;
        if (!sum)
            return dgm_last_code();
    }
    *total = sum;
    return 0;
}
