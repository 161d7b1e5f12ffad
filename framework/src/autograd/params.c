/* params.c - named, persistent parameters with their gradients and
 * per-parameter optimizer slots, and the initialisers (PyTorch semantics). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/error.h"
#include "dgm/graph.h"
#include "graph_internal.h"

typedef struct slot {
    char *name;
    dgm_tensor *t;
} slot;

/* The public dgm_param first, so a dgm_param* is also a param_impl*: slots
 * hang off the parameter without widening the public struct. */
typedef struct param_impl {
    dgm_param p;
    slot *slots;
    int n_slots, cap_slots;
    /* The gradient holds nothing of the coming backward: its first
     * contribution stores (dgm__params_grad_fresh). */
    bool fresh;
} param_impl;

struct dgm_params {
    param_impl **items; /* owned; pointers stay valid as the array grows */
    int n, cap;
};

dgm_params *dgm_params_new(void)
{
    dgm_params *ps = calloc(1, sizeof *ps);
    if (!ps)
        dgm_error(DGM_ENOMEM, "params: allocating the set");
    return ps;
}

static void param_free(param_impl *pi)
{
    if (!pi)
        return;
    for (int i = 0; i < pi->n_slots; i++) {
        free(pi->slots[i].name);
        dgm_tensor_free(pi->slots[i].t);
    }
    free(pi->slots);
    free((char *)pi->p.name);
    dgm_tensor_free(pi->p.value);
    dgm_tensor_free(pi->p.grad);
    free(pi);
}

void dgm_params_free(dgm_params *ps)
{
    if (!ps)
        return;
    for (int i = 0; i < ps->n; i++)
        param_free(ps->items[i]);
    free(ps->items);
    free(ps);
}

int dgm_params_add_copy(dgm_params *ps, const char *name,
                        const dgm_tensor *src, dgm_param **out)
{
    if (out)
        *out = NULL;
    if (!src)
        return dgm_error(DGM_EINVAL, "params: adding '%s' from no tensor",
                         name ? name : "(null)");
    dgm_param *p;
    int rc = dgm_params_add(ps, name, DGM_ROLE_BUFFER, 0, NULL, &p);
    if (rc < 0)
        return rc;
    dgm_tensor *t = dgm_tensor_new(src->dtype, src->ndim, src->shape);
    if (!t || dgm_tensor_copy(t, src) < 0) {
        dgm_tensor_free(t);
        return dgm_error(DGM_ENOMEM, "params: copying '%s'", name);
    }
    dgm_tensor_free(p->value);
    p->value = t;
    if (out)
        *out = p;
    return 0;
}

dgm_param *dgm_params_find(const dgm_params *ps, const char *name)
{
    if (!ps || !name)
        return NULL;
    for (int i = 0; i < ps->n; i++)
        if (!strcmp(ps->items[i]->p.name, name))
            return &ps->items[i]->p;
    return NULL;
}

int dgm_params_add(dgm_params *ps, const char *name, dgm_param_role role,
                   int ndim, const int64_t *shape, dgm_param **out)
{
    if (out)
        *out = NULL;
    if (!ps || !name || !*name || ndim < 0 || ndim > DGM_MAX_DIMS ||
        (ndim > 0 && !shape))
        return dgm_error(DGM_EINVAL, "params: adding '%s' (bad arguments)",
                         name ? name : "(null)");
    if (role != DGM_ROLE_WEIGHT && role != DGM_ROLE_BUFFER)
        return dgm_error(DGM_EINVAL, "params: '%s' has an unknown role %d",
                         name, (int)role);
    for (int i = 0; i < ndim; i++)
        if (shape[i] < 0) {
            char b[128];
            return dgm_error(DGM_ESHAPE, "params: '%s' has shape %s", name,
                             dgm_shape_str(ndim, shape, b, sizeof b));
        }
    if (dgm_params_find(ps, name))
        return dgm_error(DGM_EDUP, "params: '%s' already exists", name);
    if (ps->n == ps->cap) {
        int cap = ps->cap ? ps->cap * 2 : 16;
        param_impl **it = realloc(ps->items, (size_t)cap * sizeof *it);
        if (!it)
            return dgm_error(DGM_ENOMEM, "params: adding '%s'", name);
        ps->items = it;
        ps->cap = cap;
    }
    param_impl *pi = calloc(1, sizeof *pi);
    if (!pi)
        return dgm_error(DGM_ENOMEM, "params: adding '%s'", name);
    pi->p.name = strdup(name);
    pi->p.role = role;
    pi->p.group = -1;
    pi->p.value = dgm_tensor_new(DGM_F32, ndim, shape);
    if (role == DGM_ROLE_WEIGHT)
        pi->p.grad = dgm_tensor_new(DGM_F32, ndim, shape);
    if (!pi->p.name || !pi->p.value ||
        (role == DGM_ROLE_WEIGHT && !pi->p.grad)) {
        param_free(pi);
        return dgm_error(DGM_ENOMEM, "params: allocating '%s'", name);
    }
    ps->items[ps->n++] = pi;
    if (out)
        *out = &pi->p;
    return 0;
}

int dgm_params_count(const dgm_params *ps) { return ps ? ps->n : 0; }

dgm_param *dgm_params_at(const dgm_params *ps, int i)
{
    if (!ps || i < 0 || i >= ps->n)
        return NULL;
    return &ps->items[i]->p;
}

bool *dgm__param_fresh(dgm_param *p)
{
    return &((param_impl *)p)->fresh;
}

void dgm__params_grad_fresh(dgm_param *const *ps, int n)
{
    for (int i = 0; i < n; i++)
        if (ps[i]->grad)
            ((param_impl *)ps[i])->fresh = true;
}

void dgm__param_grad_settle(dgm_param *p)
{
    param_impl *pi = (param_impl *)p;
    if (pi->fresh && p->grad)
        dgm_tensor_fill(p->grad, 0.0);
    pi->fresh = false;
}

void dgm__params_grad_settle(dgm_param *const *ps, int n)
{
    for (int i = 0; i < n; i++)
        dgm__param_grad_settle(ps[i]);
}

void dgm_params_zero_grad(dgm_params *ps)
{
    if (!ps)
        return;
    for (int i = 0; i < ps->n; i++)
        if (ps->items[i]->p.grad)
            dgm_tensor_fill(ps->items[i]->p.grad, 0.0);
}

void dgm_params_counts(const dgm_params *ps, int64_t *trainable,
                       int64_t *frozen)
{
    int64_t t = 0, f = 0;
    for (int i = 0; ps && i < ps->n; i++) {
        const dgm_param *p = &ps->items[i]->p;
        if (p->role != DGM_ROLE_WEIGHT)
            continue;
        if (p->frozen)
            f += dgm_tensor_numel(p->value);
        else
            t += dgm_tensor_numel(p->value);
    }
    if (trainable)
        *trainable = t;
    if (frozen)
        *frozen = f;
}

/* ---- slots ----------------------------------------------------------- */

dgm_tensor *dgm_param_slot(dgm_param *p, const char *name)
{
    if (!p || !name) {
        dgm_error(DGM_EINVAL, "params: slot of %s", p ? "a param" : "NULL");
        return NULL;
    }
    param_impl *pi = (param_impl *)p;
    for (int i = 0; i < pi->n_slots; i++)
        if (!strcmp(pi->slots[i].name, name))
            return pi->slots[i].t;
    if (pi->n_slots == pi->cap_slots) {
        int cap = pi->cap_slots ? pi->cap_slots * 2 : 2;
        slot *s = realloc(pi->slots, (size_t)cap * sizeof *s);
        if (!s) {
            dgm_error(DGM_ENOMEM, "params: slot '%s' of '%s'", name, p->name);
            return NULL;
        }
        pi->slots = s;
        pi->cap_slots = cap;
    }
    char *nm = strdup(name);
    dgm_tensor *t = dgm_tensor_new_like(p->value);
    if (!nm || !t) {
        free(nm);
        dgm_tensor_free(t);
        dgm_error(DGM_ENOMEM, "params: slot '%s' of '%s'", name, p->name);
        return NULL;
    }
    pi->slots[pi->n_slots].name = nm;
    pi->slots[pi->n_slots].t = t;
    pi->n_slots++;
    return t;
}

int dgm_param_slot_count(const dgm_param *p)
{
    return p ? ((const param_impl *)p)->n_slots : 0;
}

dgm_tensor *dgm_param_slot_at(const dgm_param *p, int i,
                              const char **slot_name)
{
    const param_impl *pi = (const param_impl *)p;
    if (!p || i < 0 || i >= pi->n_slots) {
        if (slot_name)
            *slot_name = NULL;
        return NULL;
    }
    if (slot_name)
        *slot_name = pi->slots[i].name;
    return pi->slots[i].t;
}

/* ---- initialisers ---------------------------------------------------- */

/* PyTorch's _calculate_fan_in_and_fan_out: receptive field = prod(shape[2:]).
 * A 1-D tensor uses its length for both (PyTorch refuses; a bias-like
 * vector is the only sensible reading). */
static void fans(const dgm_tensor *t, double *fan_in, double *fan_out)
{
    if (t->ndim < 2) {
        double n = t->ndim == 1 ? (double)t->shape[0] : 1.0;
        *fan_in = *fan_out = n;
        return;
    }
    double rf = 1.0;
    for (int i = 2; i < t->ndim; i++)
        rf *= (double)t->shape[i];
    *fan_in = (double)t->shape[1] * rf;
    *fan_out = (double)t->shape[0] * rf;
}

void dgm_init_uniform(dgm_tensor *t, dgm_rng *r, float lo, float hi)
{
    int64_t n = dgm_tensor_numel(t);
    if (t->dtype == DGM_F32 && dgm_tensor_is_contiguous(t)) {
        float *p = dgm_tensor_f32(t);
        for (int64_t i = 0; i < n; i++)
            p[i] = lo + (hi - lo) * dgm_rng_uniform(r);
        return;
    }
    for (int64_t i = 0; i < n; i++)
        dgm_tensor_set(t, i, lo + (hi - lo) * dgm_rng_uniform(r));
}

void dgm_init_normal(dgm_tensor *t, dgm_rng *r, float mean, float std)
{
    int64_t n = dgm_tensor_numel(t);
    if (t->dtype == DGM_F32 && dgm_tensor_is_contiguous(t)) {
        float *p = dgm_tensor_f32(t);
        for (int64_t i = 0; i < n; i++)
            p[i] = mean + std * dgm_rng_normal(r);
        return;
    }
    for (int64_t i = 0; i < n; i++)
        dgm_tensor_set(t, i, mean + std * dgm_rng_normal(r));
}

void dgm_init_kaiming_uniform(dgm_tensor *w, dgm_rng *r, float a)
{
    double fi, fo;
    fans(w, &fi, &fo);
    /* gain = sqrt(2 / (1 + a^2)), bound = gain * sqrt(3 / fan_in) */
    double bound = fi > 0 ? sqrt(6.0 / ((1.0 + (double)a * a) * fi)) : 0.0;
    dgm_init_uniform(w, r, (float)-bound, (float)bound);
}

void dgm_init_fan_in_uniform(dgm_tensor *b, dgm_rng *r, int64_t fan_in)
{
    double bound = fan_in > 0 ? 1.0 / sqrt((double)fan_in) : 0.0;
    dgm_init_uniform(b, r, (float)-bound, (float)bound);
}

void dgm_init_xavier_uniform(dgm_tensor *w, dgm_rng *r, float gain)
{
    double fi, fo;
    fans(w, &fi, &fo);
    double bound = fi + fo > 0 ? gain * sqrt(6.0 / (fi + fo)) : 0.0;
    dgm_init_uniform(w, r, (float)-bound, (float)bound);
}
