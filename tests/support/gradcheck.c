/* gradcheck.c - finite-difference and cross-backend checks for op tests
 * (see gradcheck.h). Everything here goes through the public API; a passed
 * check is logged for the op_table test (oplog.h). */
#include "gradcheck.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/error.h"
#include "dgm/rng.h"
#include "oplog.h"

#define GC_MAX_LEAVES 16
#define GC_RNG_SEED 0x5eedULL

dgm_tensor *gc_rand(int ndim, const int64_t *shape, uint64_t seed, float lo,
                    float hi)
{
    dgm_tensor *t = dgm_tensor_new(DGM_F32, ndim, shape);
    if (!t)
        return NULL;
    dgm_rng r;
    dgm_rng_seed(&r, seed);
    dgm_init_uniform(t, &r, lo, hi);
    return t;
}

dgm_tensor *gc_randn(int ndim, const int64_t *shape, uint64_t seed)
{
    dgm_tensor *t = dgm_tensor_new(DGM_F32, ndim, shape);
    if (!t)
        return NULL;
    dgm_rng r;
    dgm_rng_seed(&r, seed);
    dgm_init_normal(t, &r, 0.0f, 1.0f);
    return t;
}

/* The loss weight of output element i: in [0.5, 1.5), fixed per index. */
static double weight_at(int64_t i)
{
    uint64_t z = (uint64_t)i * 0x9e3779b97f4a7c15ULL + 0x1234567ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return 0.5 + (double)(z >> 11) / 9007199254740992.0;
}

static void result_init(gc_result *r)
{
    memset(r, 0, sizeof *r);
    r->ok = true;
    r->leaf = -2;
    r->index = -1;
}

static void result_add(gc_result *r, int leaf, int64_t idx, double a,
                       double b, double rtol, double atol)
{
    double d = fabs(a - b);
    if (isnan(a) != isnan(b) || (isnan(d) && !isnan(a)))
        d = INFINITY;
    if (isnan(a) && isnan(b))
        d = 0.0;
    double rel = d / fmax(fabs(b), 1e-12);
    double w = d / (atol + rtol * fabs(b));
    if (d > r->max_abs)
        r->max_abs = d;
    if (rel > r->max_rel)
        r->max_rel = rel;
    if (w > r->worst || r->index < 0) {
        r->worst = w;
        r->leaf = leaf;
        r->index = idx;
        r->a = a;
        r->b = b;
    }
    if (!(w <= 1.0))
        r->ok = false;
}

const char *gc_describe(const gc_result *r)
{
    gc_result *m = (gc_result *)r;
    if (r->rc)
        snprintf(m->msg, sizeof m->msg, "error %s: %s", dgm_errname(r->rc),
                 dgm_last_error());
    else
        snprintf(m->msg, sizeof m->msg,
                 "%s: worst at %s %d index %lld: %.8g vs %.8g "
                 "(max abs %.3g, max rel %.3g, ratio to tolerance %.3g)",
                 r->ok ? "ok" : "MISMATCH", r->leaf < 0 ? "output" : "leaf",
                 r->leaf, (long long)r->index, r->a, r->b, r->max_abs,
                 r->max_rel, r->worst);
    return r->msg;
}

static bool wants_grad(const dgm_tensor *t, const bool *mask, int i)
{
    return t->dtype == DGM_F32 && (!mask || mask[i]);
}

/* Build once on a reset graph. With grad, also backward through
 * sum(y * w); *loss is always computed in double from y's values. */
static int run(dgm_graph *g, dgm_rng *rng, gc_build build, void *ctx, int n,
               dgm_tensor *const *leaves, const bool *mask, bool with_grad,
               dgm_var **vars, dgm_var **yout, double *loss)
{
    dgm_graph_reset(g);
    dgm_rng_seed(rng, GC_RNG_SEED);
    dgm_graph_set_rng(g, rng);
    dgm_graph_set_grad(g, with_grad);
    for (int i = 0; i < n; i++) {
        vars[i] = dgm_leaf(g, leaves[i],
                           with_grad && wants_grad(leaves[i], mask, i));
        if (!vars[i])
            return dgm_last_code() ? dgm_last_code() : DGM_EINVAL;
    }
    dgm_var *y = build(g, vars, ctx);
    if (!y)
        return dgm_last_code() ? dgm_last_code() : DGM_EINVAL;
    const dgm_tensor *yv = dgm_value(y);
    int64_t ny = dgm_tensor_numel(yv);
    double s = 0.0;
    for (int64_t i = 0; i < ny; i++)
        s += dgm_tensor_get(yv, i) * weight_at(i);
    *loss = s;
    *yout = y;
    if (!with_grad || !dgm_requires_grad(y))
        return 0;
    dgm_var *w = dgm_constant(g, yv->ndim, yv->shape, 0.0f);
    if (!w)
        return dgm_last_code();
    float *wp = dgm_tensor_f32(dgm_value(w));
    for (int64_t i = 0; i < ny; i++)
        wp[i] = (float)weight_at(i);
    dgm_var *l = dgm_sum_all(g, dgm_mul(g, y, w));
    if (!l)
        return dgm_last_code();
    return dgm_backward(g, l);
}

/* Heap copies of each leaf's gradient (NULL entry: zero gradient). */
static void grab_grads(int n, dgm_var **vars, dgm_tensor **out)
{
    for (int i = 0; i < n; i++) {
        dgm_tensor *gr = dgm_grad(vars[i]);
        out[i] = gr ? dgm_tensor_clone(gr) : NULL;
    }
}

gc_result gc_gradcheck(gc_build build, void *ctx, int n,
                       dgm_tensor *const *leaves, const bool *mask,
                       dgm_backend backend, double eps, double rtol,
                       double atol)
{
    gc_result r;
    result_init(&r);
    if (n > GC_MAX_LEAVES) {
        r.rc = dgm_error(DGM_EINVAL, "gradcheck: too many leaves");
        r.ok = false;
        return r;
    }
    if (eps <= 0)
        eps = 1e-3;
    dgm_graph *g = dgm_graph_new();
    dgm_rng rng;
    dgm_var *vars[GC_MAX_LEAVES];
    dgm_tensor *grads[GC_MAX_LEAVES] = {0};
    dgm_var *y = NULL;
    double l0;
    if (!g) {
        r.rc = dgm_last_code();
        r.ok = false;
        return r;
    }
    dgm_graph_set_backend(g, backend);
    r.rc = run(g, &rng, build, ctx, n, leaves, mask, true, vars, &y, &l0);
    if (r.rc) {
        r.ok = false;
        goto out;
    }
    grab_grads(n, vars, grads);
    for (int i = 0; i < n && !r.rc; i++) {
        if (!wants_grad(leaves[i], mask, i))
            continue;
        dgm_tensor *t = leaves[i];
        int64_t ne = dgm_tensor_numel(t);
        for (int64_t j = 0; j < ne; j++) {
            double v = dgm_tensor_get(t, j), lp, lm;
            dgm_tensor_set(t, j, v + eps);
            double hp = dgm_tensor_get(t, j) - v;
            r.rc = run(g, &rng, build, ctx, n, leaves, mask, false, vars, &y,
                       &lp);
            dgm_tensor_set(t, j, v - eps);
            double hm = v - dgm_tensor_get(t, j);
            if (!r.rc)
                r.rc = run(g, &rng, build, ctx, n, leaves, mask, false, vars,
                           &y, &lm);
            dgm_tensor_set(t, j, v);
            if (r.rc) {
                r.ok = false;
                break;
            }
            double num = (lp - lm) / (hp + hm);
            double ana = grads[i] ? dgm_tensor_get(grads[i], j) : 0.0;
            result_add(&r, i, j, ana, num, rtol, atol);
        }
    }
out:
    /* The perturbed builds ran without grad, which records no inputs: one
     * more build with grad gives the log the whole graph under y. */
    if (r.ok && oplog_enabled() &&
        run(g, &rng, build, ctx, n, leaves, mask, true, vars, &y, &l0) == 0)
        oplog_checked(y, backend == DGM_BACKEND_REF ? OPLOG_GRAD
                                                    : OPLOG_GRAD_DNNL);
    for (int i = 0; i < n; i++)
        dgm_tensor_free(grads[i]);
    dgm_graph_free(g);
    gc_describe(&r);
    return r;
}

gc_result gc_compare_tensors(const dgm_tensor *a, const dgm_tensor *b,
                             double rtol, double atol)
{
    gc_result r;
    result_init(&r);
    if (!a || !b || !dgm_tensor_same_shape(a, b)) {
        r.rc = dgm_error(DGM_ESHAPE, "gc_compare_tensors: shapes differ");
        r.ok = false;
        return r;
    }
    int64_t ne = dgm_tensor_numel(a);
    for (int64_t i = 0; i < ne; i++)
        result_add(&r, -1, i, dgm_tensor_get(a, i), dgm_tensor_get(b, i),
                   rtol, atol);
    gc_describe(&r);
    return r;
}

gc_result gc_compare_backends(gc_build build, void *ctx, int n,
                              dgm_tensor *const *leaves, const bool *mask,
                              double rtol, double atol)
{
    gc_result r;
    result_init(&r);
    if (n > GC_MAX_LEAVES) {
        r.rc = dgm_error(DGM_EINVAL, "gc_compare_backends: too many leaves");
        r.ok = false;
        return r;
    }
    dgm_graph *g = dgm_graph_new();
    if (!g) {
        r.rc = dgm_last_code();
        r.ok = false;
        return r;
    }
    dgm_rng rng;
    dgm_var *vars[GC_MAX_LEAVES], *y = NULL;
    dgm_tensor *ga[GC_MAX_LEAVES] = {0}, *gb[GC_MAX_LEAVES] = {0};
    dgm_tensor *ya = NULL;
    double l;
    dgm_graph_set_backend(g, DGM_BACKEND_REF);
    r.rc = run(g, &rng, build, ctx, n, leaves, mask, true, vars, &y, &l);
    if (!r.rc) {
        ya = dgm_tensor_clone(dgm_value(y));
        grab_grads(n, vars, ga);
        dgm_graph_set_backend(g, DGM_BACKEND_DNNL);
        r.rc = run(g, &rng, build, ctx, n, leaves, mask, true, vars, &y, &l);
    }
    if (!r.rc) {
        int64_t ne = dgm_tensor_numel(ya);
        for (int64_t i = 0; i < ne; i++)
            result_add(&r, -1, i, dgm_tensor_get(ya, i),
                       dgm_tensor_get(dgm_value(y), i), rtol, atol);
        grab_grads(n, vars, gb);
        for (int i = 0; i < n; i++) {
            if (!ga[i] && !gb[i])
                continue;
            int64_t m = dgm_tensor_numel(leaves[i]);
            for (int64_t j = 0; j < m; j++)
                result_add(&r, i, j, ga[i] ? dgm_tensor_get(ga[i], j) : 0.0,
                           gb[i] ? dgm_tensor_get(gb[i], j) : 0.0, rtol,
                           atol);
        }
    } else {
        r.ok = false;
    }
    if (r.ok)
        oplog_checked(y, OPLOG_DNNL);
    for (int i = 0; i < n; i++) {
        dgm_tensor_free(ga[i]);
        dgm_tensor_free(gb[i]);
    }
    dgm_tensor_free(ya);
    dgm_graph_free(g);
    gc_describe(&r);
    return r;
}
