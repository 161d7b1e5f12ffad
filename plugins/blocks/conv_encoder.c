/* conv_encoder.c - block `conv_encoder`: strided convolutions (each with
 * optional batch norm and an activation) from an image [C, H, W] to a
 * feature vector, optionally projected by a final linear layer. The
 * number of convolutions is the length of `channels`, or `stages`, or
 * follows the image size as the dcgan blocks' does (image_stages.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/dgm.h"
#include "image_stages.h"

#define ENC_MAX_LAYERS 8

static const dgm_param_spec params[] = {
    DGM_PARAM_INT_LIST("channels", .def = "[]", DGM_GE(1), DGM_LE(1 << 16),
                       .help = "output channels of each convolution (their "
                               "count is the stage count); [] derives them "
                               "from width"),
    DGM_PARAM_INT("width", .def = "32", DGM_GE(1), DGM_LE(1 << 14),
                  .help = "with channels []: the first convolution's "
                          "channels, doubled at each later one (28x28: "
                          "32@14x14 then 64@7x7)"),
    DGM_PARAM_INT("stages", .def = "0", DGM_GE(0), DGM_LE(ENC_MAX_LAYERS),
                  .help = "convolutions; 0: the length of channels, or with "
                          "channels [] and stride 2 derived from the image "
                          "size (halved to a side of at most 7: 28 -> 2, "
                          "16 -> 2, 32 -> 3, 64 -> 4, 128 -> 5)"),
    DGM_PARAM_INT("kernel", .def = "4", DGM_GE(1), DGM_LE(15),
                  .help = "kernel size"),
    DGM_PARAM_INT(
        "stride", .def = "2", DGM_GE(1), DGM_LE(4),
        .help =
            "stride; padding is (kernel - stride + 1) / 2, so k4 s2 halves"),
    DGM_PARAM_BOOL(
        "batch_norm", .def = "true",
        .help =
            "batch norm after each convolution (the convs then have no bias)"),
    DGM_PARAM_CHOICE("activation", .def = "relu", .choices = DGM_ACTIVATIONS,
                     .help = "activation after each convolution"),
    DGM_PARAM_FLOAT("slope", .def = "0.2", DGM_GE(0), DGM_LE(1),
                    .help = "negative slope of leaky_relu"),
    DGM_PARAM_INT(
        "out", .def = "0", DGM_GE(0), DGM_LE(1 << 24),
        .help =
            "0: the flattened conv features; else a final linear to this many"),
    DGM_PARAM_BOOL(
        "spectral_norm", .def = "false",
        .help = "spectral normalisation of every conv and linear weight"),
    DGM_PARAM_END,
};

typedef struct conv_layer {
    dgm_param *w, *b; /* b only without batch norm */
    dgm_bn_params bn;
    dgm_sn_params sn; /* with spectral_norm */
} conv_layer;

typedef struct encoder {
    int n;
    conv_layer l[ENC_MAX_LAYERS];
    dgm_param *fc_w, *fc_b; /* the projection, if any */
    dgm_sn_params fc_sn;
    dgm_shape in, out;
    dgm_conv_params cp;
    char act[16];
    float slope;
    bool bn, sn;
} encoder;

/* conv<idx>.weight [oc, ic, k, k] (+ bias) and bn<idx>.* like PyTorch's
 * Conv2d and BatchNorm2d defaults. */
static int add_layer(encoder *e, dgm_build *b, int idx, int64_t ic,
                     int64_t oc, int64_t k)
{
    conv_layer *l = &e->l[idx - 1];
    char name[32];
    snprintf(name, sizeof name, "conv%d", idx);
    int rc = dgm_build_weights(b, name, 4, (int64_t[]){oc, ic, k, k},
                               e->bn ? 0 : oc, &l->w, &l->b);
    if (rc == 0 && e->sn)
        rc = dgm_build_spectral_norm(b, name, l->w, 0, &l->sn);
    if (rc < 0 || !e->bn)
        return rc;
    snprintf(name, sizeof name, "bn%d", idx);
    return dgm_build_batch_norm(b, name, oc, &l->bn);
}

static int create(void **self, const dgm_config *cfg, dgm_build *b,
                  const dgm_shape *in, dgm_shape *out)
{
    char sin[96];
    dgm_shape_str(in->ndim, in->dim, sin, sizeof sin);
    if (in->ndim != 3)
        return dgm_error(DGM_ESHAPE,
                         "conv_encoder: input %s is not an image [C, H, W]",
                         sin);
    const int64_t k = dgm_cfg_int(cfg, "kernel"), s = dgm_cfg_int(cfg, "stride");
    int64_t ch[ENC_MAX_LAYERS];
    int n = image_conv_stages(cfg, "conv_encoder", in, s, ENC_MAX_LAYERS);
    if (n < 0)
        return n;
    int rc = image_stage_channels(cfg, "conv_encoder", n, false, ch);
    if (rc < 0)
        return rc;
    const int64_t pad = (k - s + 1) / 2, out_feat = dgm_cfg_int(cfg, "out");
    encoder *e = calloc(1, sizeof *e);
    if (!e)
        return dgm_error(DGM_ENOMEM, "conv_encoder: out of memory");
    e->n = n;
    e->in = *in;
    e->bn = dgm_cfg_bool(cfg, "batch_norm");
    e->sn = dgm_cfg_bool(cfg, "spectral_norm");
    e->slope = (float)dgm_cfg_float(cfg, "slope");
    snprintf(e->act, sizeof e->act, "%s", dgm_cfg_str(cfg, "activation"));
    e->cp = (dgm_conv_params){{(int)s, (int)s}, {(int)pad, (int)pad},
                              {1, 1}, 1, {0, 0}};
    int64_t c = in->dim[0], h = in->dim[1], w = in->dim[2];
    for (int i = 0; i < n && rc == 0; i++) {
        int64_t oh = (h + 2 * pad - k) / s + 1, ow = (w + 2 * pad - k) / s + 1;
        if (h + 2 * pad < k || w + 2 * pad < k || oh < 1 || ow < 1) {
            rc = dgm_error(DGM_ESHAPE,
                           "conv_encoder: input %s shrinks to nothing at "
                           "conv%d ([%lld, %lld, %lld], kernel %lld, stride "
                           "%lld)",
                           sin, i + 1, (long long)c, (long long)h,
                           (long long)w, (long long)k, (long long)s);
            break;
        }
        rc = add_layer(e, b, i + 1, c, ch[i], k);
        c = ch[i], h = oh, w = ow;
    }
    int64_t feat = c * h * w;
    int64_t want = out->ndim > 0 ? dgm_shape_numel(out->ndim, out->dim)
                                 : out_feat;
    if (rc == 0 && out->ndim > 0 && out_feat > 0 && out_feat != want) {
        char so[96];
        dgm_shape_str(out->ndim, out->dim, so, sizeof so);
        rc = dgm_cfg_error(cfg, "out", DGM_ESHAPE,
                           "conv_encoder: out %lld disagrees with the "
                           "requested output %s",
                           (long long)out_feat, so);
    }
    if (rc == 0 && want > 0) {
        rc = dgm_build_weights(b, "fc", 2, (int64_t[]){want, feat}, want,
                               &e->fc_w, &e->fc_b);
        if (rc == 0 && e->sn)
            rc = dgm_build_spectral_norm(b, "fc", e->fc_w, 0, &e->fc_sn);
        if (out->ndim == 0) {
            out->ndim = 1;
            out->dim[0] = want;
        }
    } else if (rc == 0) {
        out->ndim = 1;
        out->dim[0] = feat;
    }
    if (rc < 0) {
        free(e);
        return rc;
    }
    e->out = *out;
    *self = e;
    return 0;
}

static dgm_var *forward(void *self, dgm_graph *g, dgm_var *x)
{
    encoder *e = self;
    if (!x)
        return NULL;
    dgm_var *h = x;
    if (dgm_value(x)->ndim != 4) { /* [N, C*H*W] from a flat dataset */
        int64_t s[4] = {dgm_value(x)->shape[0], e->in.dim[0], e->in.dim[1],
                        e->in.dim[2]};
        h = dgm_reshape(g, x, 4, s);
    }
    for (int i = 0; i < e->n; i++) {
        conv_layer *l = &e->l[i];
        dgm_var *w = dgm_param_var(g, l->w);
        if (e->sn)
            w = dgm_sn_weight(g, &l->sn, w);
        h = dgm_conv2d(g, h, w, l->b ? dgm_param_var(g, l->b) : NULL, &e->cp);
        if (e->bn)
            h = dgm_bn_forward(g, &l->bn, h);
        h = dgm_activation(g, h, e->act, e->slope);
    }
    h = dgm_flatten(g, h);
    if (e->fc_w) {
        dgm_var *w = dgm_param_var(g, e->fc_w);
        if (e->sn)
            w = dgm_sn_weight(g, &e->fc_sn, w);
        h = dgm_linear(g, h, w, dgm_param_var(g, e->fc_b));
    }
    if (h && e->out.ndim > 1) {
        int64_t shape[DGM_MAX_DIMS + 1];
        shape[0] = dgm_value(h)->shape[0];
        memcpy(shape + 1, e->out.dim, sizeof(int64_t) * (size_t)e->out.ndim);
        h = dgm_reshape(g, h, e->out.ndim + 1, shape);
    }
    return h;
}

static void destroy(void *self) { free(self); }

static const dgm_block_iface iface = {
    .create = create, .forward = forward, .destroy = destroy};

static const dgm_plugin_desc desc = {
    DGM_PLUGIN_HEADER,
    DGM_PLUGIN_BLOCK(&iface),
    .name = "conv_encoder",
    .version = "1.0",
    .summary = "strided convolutions from an image to features",
    .params = params,

};

DGM_PLUGIN_NAME(conv_encoder);

DGM_PLUGIN_EXPORT const dgm_plugin_desc *dgm_plugin_query(uint32_t i)
{
    return i == 0 ? &desc : NULL;
}
