/* dist_shard.c - the plan of the optimizer step split between the ranks of
 * one node: which phases split it and which rank owns each parameter. The
 * owner alone sums the parameter's gradient, steps it and keeps its
 * optimizer slots; the others copy its new value (dist_shm.c). */
#include <stdlib.h>
#include <string.h>

#include "dgm/error.h"
#include "dgm/tensor.h"
#include "dist_shard.h"
#include "plugin_check.h"

typedef struct owned {
    const dgm_param *p;
    int owner;
} owned;

/* A split phase's parameters of this rank: ph->rest's, then each group's,
 * one list with offsets. */
typedef struct phase_plan {
    bool on;
    const char *why;
    dgm_param **mine;
    int *start; /* n_groups + 2 offsets into mine: rest, group 0, ... */
} phase_plan;

static struct {
    int rank, n_phases;
    owned *own; /* sorted by pointer */
    int n_own;
    phase_plan *ph;
} P;

static int by_ptr(const void *a, const void *b)
{
    const dgm_param *x = ((const owned *)a)->p, *y = ((const owned *)b)->p;
    return x < y ? -1 : x > y;
}

void dgm__shard_free(void)
{
    for (int i = 0; i < P.n_phases; i++) {
        free(P.ph[i].mine);
        free(P.ph[i].start);
    }
    free(P.ph);
    free(P.own);
    memset(&P, 0, sizeof P);
}

static bool independent(const dgm__inst *opt)
{
    const dgm_plugin_desc *d = opt->desc;
    return d && DGM__HAS_SLOT(d, dgm_optimizer_iface, params_independent) &&
           d->iface.optimizer->params_independent;
}

/* Why phase ph cannot split its step, or NULL. */
static const char *refusal(const dgm__phase *ph)
{
    if (ph->sched.clip_norm > 0)
        return "clip_norm (a norm over every gradient)";
    if (!independent(&ph->opt))
        return "its optimizer does not declare params_independent";
    for (int k = 0; k < ph->n_groups; k++)
        if (!independent(&ph->groups[k].opt))
            return "a param_groups optimizer does not declare "
                   "params_independent";
    return NULL;
}

static owned *find(const dgm_param *p)
{
    owned key = {.p = p};
    return P.n_own ? bsearch(&key, P.own, (size_t)P.n_own, sizeof key, by_ptr)
                   : NULL;
}

/* Sizes, largest first; ties keep the phase's order (stable by index). */
static const dgm__phase *sort_ph;
static int by_size(const void *a, const void *b)
{
    int i = *(const int *)a, j = *(const int *)b;
    int64_t x = dgm_tensor_numel(sort_ph->params[i]->value);
    int64_t y = dgm_tensor_numel(sort_ph->params[j]->value);
    return x != y ? (x < y ? 1 : -1) : (i > j) - (i < j);
}

/* Owners for phase ph's parameters that have none yet; the ones an
 * earlier phase gave an owner keep it and count in its rank's load. */
static int assign(const dgm__phase *ph, int size, int64_t *load)
{
    int n = ph->n_params;
    int *idx = malloc((size_t)(n ? n : 1) * sizeof *idx);
    if (!idx)
        return dgm_error(DGM_ENOMEM, "optimizer split: out of memory");
    memset(load, 0, (size_t)size * sizeof *load);
    for (int i = 0; i < n; i++) {
        idx[i] = i;
        const owned *o = find(ph->params[i]);
        if (o && o->owner >= 0)
            load[o->owner] += dgm_tensor_numel(ph->params[i]->value);
    }
    sort_ph = ph;
    qsort(idx, (size_t)n, sizeof *idx, by_size);
    for (int k = 0; k < n; k++) {
        owned *o = find(ph->params[idx[k]]);
        if (!o || o->owner != -2)
            continue; /* not trainable here, or an owner already */
        int best = 0;
        for (int r = 1; r < size; r++)
            if (load[r] < load[best])
                best = r;
        o->owner = best;
        load[best] += dgm_tensor_numel(o->p->value);
    }
    free(idx);
    return 0;
}

/* Phase p's lists of the parameters this rank steps. */
static int collect(const dgm__phase *ph, phase_plan *pp)
{
    int total = ph->n_rest;
    for (int k = 0; k < ph->n_groups; k++)
        total += ph->groups[k].n_params;
    pp->mine = malloc((size_t)(total ? total : 1) * sizeof *pp->mine);
    pp->start = malloc((size_t)(ph->n_groups + 2) * sizeof *pp->start);
    if (!pp->mine || !pp->start)
        return dgm_error(DGM_ENOMEM, "optimizer split: out of memory");
    int m = 0;
    for (int k = -1; k < ph->n_groups; k++) {
        dgm_param **ps = k < 0 ? ph->rest : ph->groups[k].params;
        int n = k < 0 ? ph->n_rest : ph->groups[k].n_params;
        pp->start[k + 1] = m;
        for (int i = 0; i < n; i++) { /* owner -1: every rank steps it */
            int o = dgm__shard_owner(ps[i]);
            if (o == P.rank || o < 0)
                pp->mine[m++] = ps[i];
        }
    }
    pp->start[ph->n_groups + 1] = m;
    return 0;
}

int dgm__shard_plan(const dgm_experiment *e, int rank, int size, bool shm)
{
    dgm__shard_free();
    const char *env = getenv("DGM_MPI_SHARD");
    bool want = true;
    if (env && strcmp(env, "0") == 0)
        want = false;
    else if (env && *env && strcmp(env, "1") != 0)
        return dgm_error(DGM_EINVAL,
                         "environment variable DGM_MPI_SHARD='%s': expected 0 "
                         "(every rank steps every parameter) or 1 (ranks on "
                         "one node split the optimizer step, the default)",
                         env);
    P.rank = rank;
    P.n_phases = e->n_phases;
    if (!(P.ph = calloc((size_t)e->n_phases, sizeof *P.ph)))
        return dgm_error(DGM_ENOMEM, "optimizer split: out of memory");
    int n_all = 0;
    for (int p = 0; p < e->n_phases; p++) {
        const dgm__phase *ph = &e->phases[p];
        P.ph[p].why = size < 2 ? "one process"
                      : !shm   ? "the ranks are not on one node"
                      : !want  ? "DGM_MPI_SHARD=0"
                               : refusal(ph);
        P.ph[p].on = !P.ph[p].why;
        n_all += ph->n_params;
    }
    /* Every parameter of a phase: -1 (stepped by every rank) when some
     * phase that does not split has it, else -2 (to assign). */
    P.own = malloc((size_t)(n_all ? n_all : 1) * sizeof *P.own);
    int64_t *load = calloc((size_t)size, sizeof *load);
    if (!P.own || !load) {
        free(load);
        return dgm_error(DGM_ENOMEM, "optimizer split: out of memory");
    }
    for (int p = 0; p < e->n_phases; p++)
        for (int i = 0; i < e->phases[p].n_params; i++) {
            const dgm_param *q = e->phases[p].params[i];
            owned *o = find(q);
            if (!o) {
                P.own[P.n_own++] = (owned){q, P.ph[p].on ? -2 : -1};
                qsort(P.own, (size_t)P.n_own, sizeof *P.own, by_ptr);
            } else if (!P.ph[p].on) {
                o->owner = -1;
            }
        }
    int rc = 0;
    for (int p = 0; p < e->n_phases && rc == 0; p++)
        if (P.ph[p].on)
            rc = assign(&e->phases[p], size, load);
    free(load);
    for (int p = 0; p < e->n_phases && rc == 0; p++)
        if (P.ph[p].on)
            rc = collect(&e->phases[p], &P.ph[p]);
    return rc;
}

bool dgm__shard_on(int phase)
{
    return phase >= 0 && phase < P.n_phases && P.ph[phase].on;
}

int dgm__shard_owner(const dgm_param *p)
{
    const owned *o = find(p);
    return o && o->owner >= 0 ? o->owner : -1;
}

dgm_param **dgm__shard_mine(int phase, int group, int *n)
{
    const phase_plan *pp = &P.ph[phase];
    *n = pp->start[group + 2] - pp->start[group + 1];
    return pp->mine + pp->start[group + 1];
}

const char *dgm__shard_mode(void)
{
    int on = 0;
    for (int p = 0; p < P.n_phases; p++)
        on += P.ph[p].on;
    return on == 0 ? "replicated" : on == P.n_phases ? "sharded" : "mixed";
}

const char *dgm__shard_why(int phase)
{
    return phase >= 0 && phase < P.n_phases ? P.ph[phase].why : NULL;
}
