/* mlp.c - block `mlp`: flatten, then fully connected layers with an
 * activation (and optional batch norm and dropout) between them. */
#include <stdlib.h>
#include <string.h>

#include "dgm/dgm.h"

#define MLP_MAX_LAYERS 16

static const dgm_param_spec params[] = {
    DGM_PARAM_INT_LIST("hidden", .def = "[]", DGM_GE(1), DGM_LE(1 << 20),
                       .help = "widths of the hidden layers"),
    DGM_PARAM_CHOICE("activation", .def = "relu", .choices = DGM_ACTIVATIONS,
                     .help = "activation between layers"),
    DGM_PARAM_FLOAT("slope", .def = "0.2", DGM_GE(0), DGM_LE(1),
                    .help = "negative slope of leaky_relu"),
    DGM_PARAM_BOOL("batch_norm", .def = "false",
                   .help = "batch norm before each hidden activation"),
    DGM_PARAM_FLOAT("dropout", .def = "0.0", DGM_GE(0), DGM_LE(0.99),
                    .help = "dropout after each hidden activation"),
    DGM_PARAM_BOOL("spectral_norm", .def = "false",
                   .help =
                       "spectral normalisation of every linear layer's weight"),
    DGM_PARAM_END,
};

typedef struct layer {
    dgm_param *w, *b;
    dgm_bn_params bn; /* hidden layers, with batch_norm */
    dgm_sn_params sn; /* with spectral_norm */
} layer;

typedef struct mlp {
    int n; /* layers; the last is the output layer when `project` */
    layer l[MLP_MAX_LAYERS + 1];
    bool project; /* a final linear to the requested output shape */
    dgm_shape out;
    char act[16];
    float slope, dropout;
    bool bn, sn;
} mlp;

static int add_linear(dgm_build *b, layer *l, int idx, int64_t in,
                      int64_t out, bool sn)
{
    char name[32];
    snprintf(name, sizeof name, "fc%d", idx);
    int rc = dgm_build_weights(b, name, 2, (int64_t[]){out, in}, out, &l->w,
                               &l->b);
    return rc < 0 || !sn ? rc : dgm_build_spectral_norm(b, name, l->w, 0,
                                                        &l->sn);
}

static int add_bn(dgm_build *b, layer *l, int idx, int64_t c)
{
    char name[32];
    snprintf(name, sizeof name, "bn%d", idx);
    return dgm_build_batch_norm(b, name, c, &l->bn);
}

static int create(void **self, const dgm_config *cfg, dgm_build *b,
                  const dgm_shape *in, dgm_shape *out)
{
    int64_t hidden[MLP_MAX_LAYERS];
    int nh = dgm_cfg_int_list(cfg, "hidden", hidden, MLP_MAX_LAYERS);
    if (nh > MLP_MAX_LAYERS)
        return dgm_cfg_error(cfg, "hidden", DGM_ERANGE,
                             "at most %d hidden layers, got %d",
                             MLP_MAX_LAYERS, nh);
    if (nh == 0 && out->ndim == 0)
        return dgm_cfg_error(cfg, "hidden", DGM_ECONFIG,
                             "an mlp with no hidden layers needs an output "
                             "shape from its model");
    mlp *m = calloc(1, sizeof *m);
    if (!m)
        return dgm_error(DGM_ENOMEM, "mlp: out of memory");
    snprintf(m->act, sizeof m->act, "%s", dgm_cfg_str(cfg, "activation"));
    m->slope = (float)dgm_cfg_float(cfg, "slope");
    m->dropout = (float)dgm_cfg_float(cfg, "dropout");
    m->bn = dgm_cfg_bool(cfg, "batch_norm");
    m->sn = dgm_cfg_bool(cfg, "spectral_norm");
    int64_t width = dgm_shape_numel(in->ndim, in->dim);
    int rc = 0;
    for (int i = 0; i < nh && rc == 0; i++) {
        rc = add_linear(b, &m->l[i], i + 1, width, hidden[i], m->sn);
        if (rc == 0 && m->bn)
            rc = add_bn(b, &m->l[i], i + 1, hidden[i]);
        width = hidden[i];
    }
    m->n = nh;
    if (rc == 0 && out->ndim > 0) {
        m->project = true;
        m->out = *out;
        rc = add_linear(b, &m->l[nh], nh + 1, width,
                        dgm_shape_numel(out->ndim, out->dim), m->sn);
        m->n = nh + 1;
    } else if (rc == 0) {
        out->ndim = 1;
        out->dim[0] = width;
        m->out = *out;
    }
    if (rc < 0) {
        free(m);
        return rc;
    }
    *self = m;
    return 0;
}

static dgm_var *forward(void *self, dgm_graph *g, dgm_var *x)
{
    mlp *m = self;
    dgm_var *h = x && dgm_value(x)->ndim != 2 ? dgm_flatten(g, x) : x;
    int hidden = m->project ? m->n - 1 : m->n;
    for (int i = 0; i < m->n; i++) {
        layer *l = &m->l[i];
        dgm_var *w = dgm_param_var(g, l->w);
        if (m->sn)
            w = dgm_sn_weight(g, &l->sn, w);
        /* GELU straight after the GEMM (no batch norm between): one op
         * whose backward reads and writes the hidden layer once */
        if (i < hidden && !m->bn && !strcmp(m->act, "gelu")) {
            h = dgm_linear_gelu(g, h, w, dgm_param_var(g, l->b));
        } else {
            h = dgm_linear(g, h, w, dgm_param_var(g, l->b));
            if (i >= hidden)
                break;
            if (m->bn)
                h = dgm_bn_forward(g, &l->bn, h);
            h = dgm_activation(g, h, m->act, m->slope);
        }
        if (m->dropout > 0)
            h = dgm_dropout(g, h, m->dropout);
    }
    if (h && m->project && m->out.ndim > 1) {
        int64_t shape[DGM_MAX_DIMS + 1];
        shape[0] = dgm_value(h)->shape[0];
        memcpy(shape + 1, m->out.dim, sizeof(int64_t) * (size_t)m->out.ndim);
        h = dgm_reshape(g, h, m->out.ndim + 1, shape);
    }
    return h;
}

static void destroy(void *self) { free(self); }

static const dgm_block_iface iface = {
    .create = create, .forward = forward, .destroy = destroy};

static const dgm_plugin_desc desc = {
    DGM_PLUGIN_HEADER,
    DGM_PLUGIN_BLOCK(&iface),
    .name = "mlp",
    .version = "1.0",
    .summary = "fully connected layers (flattens its input)",
    .params = params,

};

DGM_PLUGIN_NAME(mlp);

DGM_PLUGIN_EXPORT const dgm_plugin_desc *dgm_plugin_query(uint32_t i)
{
    return i == 0 ? &desc : NULL;
}
