/* self_attention.c - block `self_attention` (SAGAN, Zhang et al. 2019):
 * 1x1 query/key projections to C/reduction channels and a value
 * projection to C, softmax attention over the H*W positions, and
 * y = gamma * attended + x with a learned gate gamma that starts at 0, so
 * the block is the identity when inserted and learns how much to attend. */
#include <stdio.h>
#include <stdlib.h>

#include "dgm/dgm.h"

static const dgm_param_spec params[] = {
    DGM_PARAM_INT("reduction", .def = "8", DGM_GE(1), DGM_LE(1 << 16),
                  .help = "query/key channels are max(1, C / reduction)"),
    DGM_PARAM_BOOL("spectral_norm", .def = "false",
                   .help = "spectral normalisation of the three projections"),
    DGM_PARAM_END,
};

enum { Q, K, V, NPROJ };

typedef struct attn {
    dgm_param *wt[NPROJ], *b[NPROJ], *gamma;
    dgm_sn_params sn[NPROJ];
    bool spectral;
    int64_t c, h, w, ck;
} attn;

static int create(void **self, const dgm_config *cfg, dgm_build *b,
                  const dgm_shape *in, dgm_shape *out)
{
    char sin[96], sout[96];
    dgm_shape_str(in->ndim, in->dim, sin, sizeof sin);
    if (in->ndim != 3)
        return dgm_error(DGM_ESHAPE,
                         "self_attention: input %s is not a feature map "
                         "[C, H, W]",
                         sin);
    if (out->ndim > 0 &&
        (out->ndim != 3 || out->dim[0] != in->dim[0] ||
         out->dim[1] != in->dim[1] || out->dim[2] != in->dim[2])) {
        dgm_shape_str(out->ndim, out->dim, sout, sizeof sout);
        return dgm_error(DGM_ESHAPE,
                         "self_attention: keeps its input shape %s, cannot "
                         "give %s",
                         sin, sout);
    }
    attn *a = calloc(1, sizeof *a);
    if (!a)
        return dgm_error(DGM_ENOMEM, "self_attention: out of memory");
    a->c = in->dim[0], a->h = in->dim[1], a->w = in->dim[2];
    a->ck = a->c / dgm_cfg_int(cfg, "reduction");
    if (a->ck < 1)
        a->ck = 1;
    a->spectral = dgm_cfg_bool(cfg, "spectral_norm");
    static const char *names[NPROJ] = {"query", "key", "value"};
    int rc = 0;
    for (int i = 0; i < NPROJ && rc == 0; i++) {
        int64_t oc = i == V ? a->c : a->ck;
        rc = dgm_build_weights(b, names[i], 4, (int64_t[]){oc, a->c, 1, 1}, oc,
                               &a->wt[i], &a->b[i]);
        if (rc == 0 && a->spectral)
            rc = dgm_build_spectral_norm(b, names[i], a->wt[i], 0, &a->sn[i]);
    }
    if (rc == 0)
        rc = dgm_build_param(b, "gamma", DGM_ROLE_WEIGHT, 1, (int64_t[]){1},
                             &a->gamma); /* zero-filled: the identity */
    if (rc < 0) {
        free(a);
        return rc;
    }
    *out = *in;
    *self = a;
    return 0;
}

/* x [N, C, H, W] -> the projection i as [N, oc, H*W]. */
static dgm_var *project(attn *a, dgm_graph *g, dgm_var *x, int i)
{
    static const dgm_conv_params one = {{1, 1}, {0, 0}, {1, 1}, 1, {0, 0}};
    dgm_var *w = dgm_param_var(g, a->wt[i]);
    if (a->spectral)
        w = dgm_sn_weight(g, &a->sn[i], w);
    dgm_var *y = dgm_conv2d(g, x, w, dgm_param_var(g, a->b[i]), &one);
    if (!y)
        return NULL;
    const dgm_tensor *t = dgm_value(y);
    return dgm_reshape(g, y, 3,
                       (int64_t[]){t->shape[0], t->shape[1], a->h * a->w});
}

static dgm_var *forward(void *self, dgm_graph *g, dgm_var *x)
{
    attn *a = self;
    if (!x)
        return NULL;
    const int64_t n = dgm_value(x)->shape[0];
    const int64_t shape[4] = {n, a->c, a->h, a->w};
    if (dgm_value(x)->ndim != 4) /* [N, C*H*W] from a flat producer */
        x = dgm_reshape(g, x, 4, shape);
    dgm_var *q = project(a, g, x, Q), *k = project(a, g, x, K);
    dgm_var *v = project(a, g, x, V);
    /* attn[n, i, j] = softmax_j(q[:, i] . k[:, j]) */
    dgm_var *att = dgm_softmax(g, dgm_matmul(g, q, k, true, false), 2);
    dgm_graph_tap(g, "attention", att); /* [N, HW, HW]: for dgm explore */
    /* o[n, c, i] = sum_j v[n, c, j] attn[n, i, j] */
    dgm_var *o = dgm_reshape(g, dgm_matmul(g, v, att, false, true), 4, shape);
    return dgm_add(g, dgm_mul(g, dgm_param_var(g, a->gamma), o), x);
}

static void destroy(void *self)
{
    free(self);
}

static const dgm_block_iface iface = {
    .create = create, .forward = forward, .destroy = destroy};

static const dgm_plugin_desc desc = {
    DGM_PLUGIN_HEADER,
    DGM_PLUGIN_BLOCK(&iface),
    .name = "self_attention",
    .version = "1.0",
    .summary = "SAGAN self-attention over positions, gated residual",
    .params = params,

};

DGM_PLUGIN_NAME(self_attention);

DGM_PLUGIN_EXPORT const dgm_plugin_desc *dgm_plugin_query(uint32_t i)
{
    return i == 0 ? &desc : NULL;
}
