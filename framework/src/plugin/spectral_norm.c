/* spectral_norm.c - spectral normalisation of a layer's weight, as
 * torch.nn.utils.spectral_norm: power iteration on two buffers in plain C,
 * then w / (u^T W v) composed from graph ops so the gradient reaches W. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "dgm/plugin.h"
#include "graph_internal.h"
#include "plugin_internal.h"

/* The matrix view of a weight of shape s: rows = s[dim]; element (i, j)
 * sits at flat index (a * rows + i) * r + k with j = a * r + k, where
 * a runs over s[0] when dim is 1 (else once) and k over the trailing
 * dims. That is PyTorch's weight.permute(dim, ...).reshape(rows, -1). */
typedef struct sn_view {
    int64_t outer, rows, inner, cols;
} sn_view;

static int sn_view_of(const dgm_tensor *w, int dim, sn_view *v)
{
    if (w->ndim < dim + 1 || w->ndim < 1)
        return -1;
    v->rows = w->shape[dim];
    v->outer = dim == 1 ? w->shape[0] : 1;
    v->inner = dgm_shape_numel(w->ndim - dim - 1, w->shape + dim + 1);
    v->cols = v->outer * v->inner;
    return v->rows > 0 && v->cols > 0 ? 0 : -1;
}

static void normalise(float *x, const double *acc, int64_t n, float eps)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += acc[i] * acc[i];
    double d = sqrt(s);
    if (d < eps)
        d = eps;
    for (int64_t i = 0; i < n; i++)
        x[i] = (float)(acc[i] / d);
}

/* v = normalise(W^T u), u = normalise(W v), n times. acc holds rows +
 * cols doubles of scratch. */
static void power_iterate(const float *w, const sn_view *m, float *u, float *v,
                          int n, float eps, double *acc)
{
    double *au = acc, *av = acc + m->rows;
    for (int it = 0; it < n; it++) {
        memset(av, 0, sizeof(double) * (size_t)m->cols);
        for (int64_t a = 0; a < m->outer; a++)
            for (int64_t i = 0; i < m->rows; i++) {
                const float *row = w + (a * m->rows + i) * m->inner;
                double *dst = av + a * m->inner;
                for (int64_t k = 0; k < m->inner; k++)
                    dst[k] += (double)row[k] * u[i];
            }
        normalise(v, av, m->cols, eps);
        for (int64_t i = 0; i < m->rows; i++)
            au[i] = 0;
        for (int64_t a = 0; a < m->outer; a++)
            for (int64_t i = 0; i < m->rows; i++) {
                const float *row = w + (a * m->rows + i) * m->inner;
                const float *src = v + a * m->inner;
                double s = 0;
                for (int64_t k = 0; k < m->inner; k++)
                    s += (double)row[k] * src[k];
                au[i] += s;
            }
        normalise(u, au, m->rows, eps);
    }
}

int dgm_build_spectral_norm(dgm_build *b, const char *name,
                            const dgm_param *weight, int dim,
                            dgm_sn_params *out)
{
    char full[2][640], buf[96];
    sn_view m;
    if (!b || !name || !weight || !out)
        return dgm_error(DGM_EINVAL, "spectral_norm: NULL argument");
    const dgm_tensor *w = weight->value;
    if (w->dtype != DGM_F32 || (dim != 0 && dim != 1) ||
        sn_view_of(w, dim, &m) < 0)
        return dgm_error(DGM_ESHAPE,
                         "spectral_norm '%s': weight %s: need f32 with a "
                         "dim %d to take rows from",
                         name, dgm_tensor_describe(w, buf, sizeof buf), dim);
    const char *sfx[2] = {"weight_u", "weight_v"};
    for (int i = 0; i < 2; i++) {
        int len = b->scope[0] ? snprintf(full[i], sizeof full[i], "%s.%s.%s",
                                         b->scope, name, sfx[i])
                              : snprintf(full[i], sizeof full[i], "%s.%s", name,
                                         sfx[i]);
        if (len < 0 || (size_t)len >= sizeof full[i])
            return dgm_error(DGM_EINVAL, "spectral_norm: name too long: %s.%s",
                             b->scope, name);
        /* Checked first so a duplicate leaves no half-made pair. */
        if (dgm_params_find(b->params, full[i]))
            return dgm_error(DGM_EDUP, "spectral_norm: '%s' exists", full[i]);
    }
    dgm_param *u, *v;
    int rc =
        dgm_params_add(b->params, full[0], DGM_ROLE_BUFFER, 1, &m.rows, &u);
    if (rc == 0)
        rc =
            dgm_params_add(b->params, full[1], DGM_ROLE_BUFFER, 1, &m.cols, &v);
    if (rc < 0)
        return rc; /* out of memory: the model build fails as a whole */
    /* PyTorch: normalize(randn(h)), normalize(randn(w)). */
    dgm_param *pv[2] = {u, v};
    for (int i = 0; i < 2; i++) {
        float *p = dgm_tensor_f32(pv[i]->value);
        int64_t n = dgm_tensor_numel(pv[i]->value);
        double ss = 0;
        for (int64_t k = 0; k < n; k++) {
            p[k] = dgm_rng_normal(b->rng);
            ss += (double)p[k] * p[k];
        }
        double norm = sqrt(ss) < 1e-12 ? 1e-12 : sqrt(ss);
        for (int64_t k = 0; k < n; k++)
            p[k] = (float)(p[k] / norm);
    }
    *out = (dgm_sn_params){
        .u = u, .v = v, .dim = dim, .n_power = 1, .eps = 1e-12f};
    return 0;
}

dgm_var *dgm_sn_weight(dgm_graph *g, const dgm_sn_params *p, dgm_var *w)
{
    char buf[96];
    sn_view m;
    if (!w)
        return NULL;
    if (!p || !p->u || !p->v)
        return dgm__fail_null(g, DGM_EINVAL, "spectral_norm: no parameters");
    dgm_tensor *wt = dgm_value(w);
    if (wt->dtype != DGM_F32 || sn_view_of(wt, p->dim, &m) < 0 ||
        m.rows != dgm_tensor_numel(p->u->value) ||
        m.cols != dgm_tensor_numel(p->v->value))
        return dgm__fail_null(
            g, DGM_ESHAPE,
            "spectral_norm: weight %s does not match u [%lld] and v [%lld] "
            "(dim %d)",
            dgm_tensor_describe(wt, buf, sizeof buf),
            (long long)dgm_tensor_numel(p->u->value),
            (long long)dgm_tensor_numel(p->v->value), p->dim);
    dgm_tensor *wc = dgm__contig(g, wt);
    if (!wc)
        return NULL;
    const float *wd = dgm_tensor_f32(wc);
    float *u = dgm_tensor_f32(p->u->value), *v = dgm_tensor_f32(p->v->value);
    if (dgm_graph_training(g) && p->n_power > 0) {
        double *acc =
            dgm__arena_alloc(g, sizeof(double) * (size_t)(m.rows + m.cols));
        if (!acc)
            return dgm__fail_null(g, DGM_ENOMEM,
                                  "spectral_norm: out of memory");
        power_iterate(wd, &m, u, v, p->n_power, p->eps, acc);
    }
    if (!dgm_requires_grad(w)) { /* no tape: sigma in plain C */
        double sigma = 0;
        for (int64_t a = 0; a < m.outer; a++)
            for (int64_t i = 0; i < m.rows; i++) {
                const float *row = wd + (a * m.rows + i) * m.inner;
                const float *vv = v + a * m.inner;
                double s = 0;
                for (int64_t k = 0; k < m.inner; k++)
                    s += (double)row[k] * vv[k];
                sigma += s * u[i];
            }
        return dgm_affine(g, w, (float)(1.0 / sigma), 0.0f);
    }
    /* sigma = sum(W * u v^T): d sigma / dW = u v^T with u, v constant. */
    dgm_tensor *uv = dgm__alloc_uninit(g, DGM_F32, wt->ndim, wt->shape);
    if (!uv)
        return NULL;
    float *o = dgm_tensor_f32(uv);
    for (int64_t a = 0; a < m.outer; a++)
        for (int64_t i = 0; i < m.rows; i++) {
            float *row = o + (a * m.rows + i) * m.inner;
            const float *vv = v + a * m.inner;
            for (int64_t k = 0; k < m.inner; k++)
                row[k] = u[i] * vv[k];
        }
    dgm_var *sigma = dgm_sum_all(g, dgm_mul(g, w, dgm_input(g, uv)));
    return dgm_div(g, w, sigma);
}
