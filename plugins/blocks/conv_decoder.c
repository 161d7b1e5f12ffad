/* conv_decoder.c - block `conv_decoder`: a linear map from features to a
 * small feature map, then transposed convolutions each multiplying the
 * size by the stride, the last giving the requested [C, H, W] with no norm
 * or activation (the model applies sigmoid/tanh or reads logits). The
 * number of transposed convs is the length of `channels`, or `stages`, or
 * follows the image size as the dcgan blocks' does (image_stages.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/dgm.h"
#include "image_stages.h"

#define DEC_MAX_LAYERS 8

static const dgm_param_spec params[] = {
    DGM_PARAM_INT_LIST(
        "channels", .def = "[]", DGM_GE(1), DGM_LE(1 << 16),
        .help = "channels of the feature maps, widest (first) to narrowest "
                "(their count is the stage count); [] derives them from width"),
    DGM_PARAM_INT("width", .def = "32", DGM_GE(1), DGM_LE(1 << 14),
                  .help = "with channels []: the last feature map's "
                          "channels, each earlier one twice as many (28x28: "
                          "64@7x7 then 32@14x14)"),
    DGM_PARAM_INT("stages", .def = "0", DGM_GE(0), DGM_LE(DEC_MAX_LAYERS),
                  .help = "transposed convs; 0: the length of channels, or "
                          "with channels [] and stride 2 derived from the "
                          "image size (halved to a side of at most 7: "
                          "28 -> 2, 16 -> 2, 32 -> 3, 64 -> 4, 128 -> 5)"),
    DGM_PARAM_INT("kernel", .def = "4", DGM_GE(1), DGM_LE(15),
                  .help = "kernel size"),
    DGM_PARAM_INT(
        "stride", .def = "2", DGM_GE(1), DGM_LE(4),
        .help =
            "stride = size factor of each transposed conv; padding is "
            "(kernel - stride + 1) / 2 and output_pad makes the factor exact"),
    DGM_PARAM_BOOL("batch_norm", .def = "true",
                   .help = "batch norm before each hidden activation (those "
                           "layers have no bias)"),
    DGM_PARAM_CHOICE("activation", .def = "relu", .choices = DGM_ACTIVATIONS,
                     .help = "activation of the hidden layers"),
    DGM_PARAM_FLOAT("slope", .def = "0.2", DGM_GE(0), DGM_LE(1),
                    .help = "negative slope of leaky_relu"),
    DGM_PARAM_BOOL(
        "spectral_norm", .def = "false",
        .help =
            "spectral normalisation of the linear and transposed-conv weights "
            "(rows: a transposed conv's output channels, dim 1, as PyTorch)"),
    DGM_PARAM_END,
};

/* Layer 0 is the linear map (its bn over the channels of the first map);
 * layers 1..n are transposed convs, the last without bn/activation. */
typedef struct dec_layer {
    dgm_param *w, *b;
    dgm_bn_params bn;
    dgm_sn_params sn; /* with spectral_norm */
} dec_layer;

typedef struct decoder {
    int n; /* transposed convs */
    dec_layer l[DEC_MAX_LAYERS + 1];
    int64_t c0, h0, w0; /* the first feature map */
    dgm_conv_params cp;
    char act[16];
    float slope;
    bool bn, sn;
} decoder;

/* <prefix><idx>.weight/.bias and bn<idx>.* with PyTorch's defaults
 * (a ConvTranspose2d weight is [in, out, k, k]; PyTorch takes its fan_in
 * from dim 1, as dgm_build_weights does). */
static int add_weights(dgm_build *b, dec_layer *l, const char *prefix,
                       int idx, int ndim, const int64_t *ws, int64_t nb,
                       bool bias, bool sn)
{
    char name[32];
    snprintf(name, sizeof name, "%s%d", prefix, idx);
    int rc = dgm_build_weights(b, name, ndim, ws, bias ? nb : 0, &l->w,
                               &l->b);
    /* dim 1 of a transposed conv's [in, out, k, k]: PyTorch's choice */
    return rc < 0 || !sn ? rc
                         : dgm_build_spectral_norm(b, name, l->w,
                                                   ndim == 4 ? 1 : 0, &l->sn);
}

static int add_bn(dgm_build *b, dec_layer *l, int idx, int64_t c)
{
    char name[32];
    snprintf(name, sizeof name, "bn%d", idx);
    return dgm_build_batch_norm(b, name, c, &l->bn);
}

static int create(void **self, const dgm_config *cfg, dgm_build *b,
                  const dgm_shape *in, dgm_shape *out)
{
    char sin[96], sout[96];
    dgm_shape_str(in->ndim, in->dim, sin, sizeof sin);
    dgm_shape_str(out->ndim, out->dim, sout, sizeof sout);
    if (out->ndim != 3)
        return dgm_error(DGM_ESHAPE,
                         "conv_decoder: needs an output shape [C, H, W] from "
                         "its model, got %s (input %s)",
                         out->ndim ? sout : "none", sin);
    const int64_t k = dgm_cfg_int(cfg, "kernel"), s = dgm_cfg_int(cfg, "stride");
    const int64_t pad = (k - s + 1) / 2, opad = s - k + 2 * pad;
    if (opad < 0 || opad >= s)
        return dgm_cfg_error(cfg, "kernel", DGM_ERANGE,
                             "conv_decoder: kernel %lld with stride %lld "
                             "cannot multiply the size by %lld exactly",
                             (long long)k, (long long)s, (long long)s);
    int64_t ch[DEC_MAX_LAYERS];
    int n = image_conv_stages(cfg, "conv_decoder", out, s, DEC_MAX_LAYERS);
    if (n < 0)
        return n;
    int rc = image_stage_channels(cfg, "conv_decoder", n, true, ch);
    if (rc < 0)
        return rc;
    int64_t factor = 1;
    for (int i = 0; i < n; i++)
        factor *= s;
    if (out->dim[1] % factor || out->dim[2] % factor)
        return dgm_error(DGM_ESHAPE,
                         "conv_decoder: output %s: H and W must be divisible "
                         "by %lld (%d transposed convs of stride %lld)",
                         sout, (long long)factor, n, (long long)s);
    decoder *d = calloc(1, sizeof *d);
    if (!d)
        return dgm_error(DGM_ENOMEM, "conv_decoder: out of memory");
    d->n = n;
    d->bn = dgm_cfg_bool(cfg, "batch_norm");
    d->sn = dgm_cfg_bool(cfg, "spectral_norm");
    d->slope = (float)dgm_cfg_float(cfg, "slope");
    snprintf(d->act, sizeof d->act, "%s", dgm_cfg_str(cfg, "activation"));
    d->cp = (dgm_conv_params){{(int)s, (int)s}, {(int)pad, (int)pad},
                              {1, 1}, 1, {(int)opad, (int)opad}};
    d->c0 = ch[0], d->h0 = out->dim[1] / factor, d->w0 = out->dim[2] / factor;
    const int64_t feat_in = dgm_shape_numel(in->ndim, in->dim);
    const int64_t feat0 = d->c0 * d->h0 * d->w0;
    int64_t ws2[2] = {feat0, feat_in};
    rc = add_weights(b, &d->l[0], "fc", 0, 2, ws2, feat0, true, d->sn);
    if (rc == 0 && d->bn)
        rc = add_bn(b, &d->l[0], 0, d->c0);
    for (int i = 1; i <= n && rc == 0; i++) {
        bool last = i == n;
        int64_t ic = ch[i - 1], oc = last ? out->dim[0] : ch[i];
        int64_t ws[4] = {ic, oc, k, k};
        rc = add_weights(b, &d->l[i], "deconv", i, 4, ws, oc,
                         last || !d->bn, d->sn);
        if (rc == 0 && d->bn && !last)
            rc = add_bn(b, &d->l[i], i, oc);
    }
    if (rc < 0) {
        free(d);
        return rc;
    }
    *self = d;
    return 0;
}

static dgm_var *norm_act(decoder *d, dgm_graph *g, dec_layer *l, dgm_var *h)
{
    if (d->bn)
        h = dgm_bn_forward(g, &l->bn, h);
    return dgm_activation(g, h, d->act, d->slope);
}

static dgm_var *weight(decoder *d, dgm_graph *g, dec_layer *l)
{
    dgm_var *w = dgm_param_var(g, l->w);
    return d->sn ? dgm_sn_weight(g, &l->sn, w) : w;
}

static dgm_var *forward(void *self, dgm_graph *g, dgm_var *x)
{
    decoder *d = self;
    if (!x)
        return NULL;
    dgm_var *h = dgm_value(x)->ndim != 2 ? dgm_flatten(g, x) : x;
    h = dgm_linear(g, h, weight(d, g, &d->l[0]), dgm_param_var(g, d->l[0].b));
    if (!h)
        return NULL;
    int64_t s[4] = {dgm_value(h)->shape[0], d->c0, d->h0, d->w0};
    h = norm_act(d, g, &d->l[0], dgm_reshape(g, h, 4, s));
    for (int i = 1; i <= d->n; i++) {
        dec_layer *l = &d->l[i];
        h = dgm_conv_transpose2d(g, h, weight(d, g, l),
                                 l->b ? dgm_param_var(g, l->b) : NULL, &d->cp);
        if (i < d->n)
            h = norm_act(d, g, l, h);
    }
    return h;
}

static void destroy(void *self) { free(self); }

static const dgm_block_iface iface = {
    .create = create, .forward = forward, .destroy = destroy};

static const dgm_plugin_desc desc = {
    DGM_PLUGIN_HEADER,
    DGM_PLUGIN_BLOCK(&iface),
    .name = "conv_decoder",
    .version = "1.0",
    .summary = "linear then transposed convolutions from features to an image",
    .params = params,

};

DGM_PLUGIN_NAME(conv_decoder);

DGM_PLUGIN_EXPORT const dgm_plugin_desc *dgm_plugin_query(uint32_t i)
{
    return i == 0 ? &desc : NULL;
}
