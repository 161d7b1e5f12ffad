/* rnn.c - blocks `lstm` and `gru`: a sequence [N, T, in] -> the last
 * layer's hidden states [N, T, hidden], multi-layer, with dropout between
 * layers, on oneDNN's RNN primitives (dgm_rnn_forward). */
#include <stdlib.h>

#include "dgm/dgm.h"

static const dgm_param_spec params[] = {
    DGM_PARAM_INT("hidden", .def = "256", DGM_GE(1), DGM_LE(1 << 16),
                  .help = "hidden size"),
    DGM_PARAM_INT("layers", .def = "1", DGM_GE(1), DGM_LE(DGM_RNN_MAX_LAYERS),
                  .help = "stacked layers"),
    DGM_PARAM_FLOAT("dropout", .def = "0.0", DGM_GE(0.0), DGM_LE(0.99),
                    .help = "dropout between layers (training only)"),
    DGM_PARAM_END,
};

typedef struct rnn_block {
    dgm_rnn_params p;
    float dropout;
} rnn_block;

static int create(dgm_rnn_cell cell, void **self, const dgm_config *cfg,
                  dgm_build *b, const dgm_shape *in, dgm_shape *out)
{
    const char *what = cell == DGM_RNN_LSTM ? "lstm" : "gru";
    if (in->ndim != 2) {
        char s[64];
        return dgm_error(DGM_ESHAPE,
                         "%s: needs [T, features] per example, got %s", what,
                         dgm_shape_str(in->ndim, in->dim, s, sizeof s));
    }
    rnn_block *r = calloc(1, sizeof *r);
    if (!r)
        return dgm_error(DGM_ENOMEM, "%s: out of memory", what);
    r->dropout = (float)dgm_cfg_float(cfg, "dropout");
    int rc = dgm_build_rnn(b, what, cell, (int)dgm_cfg_int(cfg, "layers"),
                           in->dim[1], dgm_cfg_int(cfg, "hidden"), &r->p);
    if (rc < 0) {
        free(r);
        return rc;
    }
    *out = (dgm_shape){2, {in->dim[0], r->p.hidden}};
    *self = r;
    return 0;
}

static int create_lstm(void **self, const dgm_config *cfg, dgm_build *b,
                       const dgm_shape *in, dgm_shape *out)
{
    return create(DGM_RNN_LSTM, self, cfg, b, in, out);
}

static int create_gru(void **self, const dgm_config *cfg, dgm_build *b,
                      const dgm_shape *in, dgm_shape *out)
{
    return create(DGM_RNN_GRU, self, cfg, b, in, out);
}

/* x [N, T, in] -> [N, T, H]; the primitive runs time-major. */
static dgm_var *forward(void *self, dgm_graph *g, dgm_var *x)
{
    rnn_block *r = self;
    dgm_var *y = dgm_rnn_forward(g, &r->p, dgm_transpose(g, x, 0, 1),
                                 r->dropout, NULL, NULL, NULL, NULL);
    return dgm_transpose(g, y, 0, 1);
}

static void destroy(void *self)
{
    free(self);
}

static const dgm_block_iface lstm_iface = {
    .create = create_lstm, .forward = forward, .destroy = destroy};
static const dgm_block_iface gru_iface = {
    .create = create_gru, .forward = forward, .destroy = destroy};

static const dgm_plugin_desc descs[] = {
    {DGM_PLUGIN_HEADER, DGM_PLUGIN_BLOCK(&lstm_iface), .name = "lstm",
     .version = "1.0", .summary = "multi-layer LSTM over [N, T, in]",
     .params = params},
    {DGM_PLUGIN_HEADER, DGM_PLUGIN_BLOCK(&gru_iface), .name = "gru",
     .version = "1.0", .summary = "multi-layer GRU over [N, T, in]",
     .params = params},
};

DGM_PLUGIN_NAME(lstm);
DGM_PLUGIN_NAME(gru);

DGM_PLUGIN_EXPORT const dgm_plugin_desc *dgm_plugin_query(uint32_t i)
{
    return i < 2 ? &descs[i] : NULL;
}
