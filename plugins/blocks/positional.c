/* positional.c - block `positional`: adds position encodings to a
 * sequence [N, T, D]: learned (a parameter "<scope>.weight" [max_len, D],
 * drawn from N(0, 0.02^2)) or sinusoidal (Vaswani et al.: sin on even,
 * cos on odd features, wavelengths up to 10000 * 2 pi; a constant). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/dgm.h"

static const dgm_param_spec params[] = {
    DGM_PARAM_CHOICE("kind", .def = "learned", .choices = "learned|sinusoidal",
                     .help = "learned table or fixed sinusoids"),
    DGM_PARAM_INT("max_len", .def = "0", DGM_GE(0), DGM_LE(1 << 20),
                  .help = "longest sequence (0: the input's length)"),
    DGM_PARAM_END,
};

typedef struct pos {
    dgm_param *w;      /* learned */
    dgm_tensor *table; /* sinusoidal [max_len, D] */
    int64_t max_len, dim;
} pos;

static void destroy(void *self)
{
    pos *p = self;
    if (p)
        dgm_tensor_free(p->table);
    free(p);
}

static int create(void **self, const dgm_config *cfg, dgm_build *b,
                  const dgm_shape *in, dgm_shape *out)
{
    if (in->ndim != 2) {
        char s[64];
        return dgm_error(DGM_ESHAPE,
                         "positional: needs [T, D] per example, got %s",
                         dgm_shape_str(in->ndim, in->dim, s, sizeof s));
    }
    pos *p = calloc(1, sizeof *p);
    if (!p)
        return dgm_error(DGM_ENOMEM, "positional: out of memory");
    p->dim = in->dim[1];
    p->max_len = dgm_cfg_int(cfg, "max_len");
    if (p->max_len == 0)
        p->max_len = in->dim[0];
    int64_t shape[2] = {p->max_len, p->dim};
    int rc = 0;
    if (in->dim[0] > p->max_len)
        rc = dgm_cfg_error(cfg, "max_len", DGM_ERANGE,
                           "positional: sequences of %lld exceed max_len %lld",
                           (long long)in->dim[0], (long long)p->max_len);
    else if (!strcmp(dgm_cfg_str(cfg, "kind"), "learned")) {
        rc = dgm_build_param(b, "weight", DGM_ROLE_WEIGHT, 2, shape, &p->w);
        if (rc == 0)
            dgm_init_normal(p->w->value, dgm_build_rng(b), 0.0f, 0.02f);
    } else if (!(p->table = dgm_tensor_new(DGM_F32, 2, shape)))
        rc = dgm_last_code();
    else {
        float *t = p->table->data;
        for (int64_t i = 0; i < p->max_len; i++)
            for (int64_t k = 0; k < p->dim; k++) {
                double freq =
                    pow(10000.0, -(double)(k & ~1LL) / (double)p->dim);
                double a = (double)i * freq;
                t[i * p->dim + k] = (float)(k % 2 ? cos(a) : sin(a));
            }
    }
    if (rc < 0) {
        destroy(p);
        return rc;
    }
    *out = *in;
    *self = p;
    return 0;
}

static dgm_var *forward(void *self, dgm_graph *g, dgm_var *x)
{
    pos *p = self;
    if (!x)
        return NULL;
    const dgm_tensor *xt = dgm_value(x);
    if (xt->ndim != 3 || xt->shape[2] != p->dim || xt->shape[1] > p->max_len) {
        char s[96];
        dgm_error(DGM_ESHAPE,
                  "positional: input %s is not [N, T <= %lld, %lld]",
                  dgm_tensor_describe(xt, s, sizeof s), (long long)p->max_len,
                  (long long)p->dim);
        return NULL;
    }
    dgm_var *table = p->w ? dgm_param_var(g, p->w) : dgm_input(g, p->table);
    return dgm_add(g, x, dgm_slice(g, table, 0, 0, xt->shape[1], 1));
}

static const dgm_block_iface iface = {
    .create = create, .forward = forward, .destroy = destroy};

static const dgm_plugin_desc desc = {
    DGM_PLUGIN_HEADER,
    DGM_PLUGIN_BLOCK(&iface),
    .name = "positional",
    .version = "1.0",
    .summary = "adds learned or sinusoidal position encodings to [N, T, D]",
    .params = params,

};

DGM_PLUGIN_NAME(positional);

DGM_PLUGIN_EXPORT const dgm_plugin_desc *dgm_plugin_query(uint32_t i)
{
    return i == 0 ? &desc : NULL;
}
