/* dcgan.c - blocks `dcgan_generator` and `dcgan_discriminator`: the DCGAN
 * pair (Radford et al. 2016) for small images, 4x4 stride-2 (transposed)
 * convolutions with batch norm; the image shape [C, H, W] is the data's,
 * and the number of stages follows its size (28x28: 7x7 base and 2 stages;
 * 16, 32, 64, 128: a 4x4 base and 2, 3, 4, 5 stages) unless `stages`
 * sets it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/dgm.h"
#include "image_stages.h"

#define DC_MAX_STAGES 6

/* The parameters both blocks take, last in each schema. */
#define DCGAN_SHARED_PARAMS                                                    \
    DGM_PARAM_INT("stages", .def = "0", DGM_GE(0), DGM_LE(DC_MAX_STAGES),      \
                  .help = "stride-2 stages; 0 derives them from the image "    \
                          "size (halved to a base of at most 7: 28 -> 2, "     \
                          "16 -> 2, 32 -> 3, 64 -> 4, 128 -> 5)"),             \
        DGM_PARAM_CHOICE("init", .def = "normal", .choices = "normal|default", \
                         .help =                                               \
                             "normal: DCGAN's N(0, 0.02) weights, zero "       \
                             "biases, batch-norm scale N(1, 0.02); default: "  \
                             "PyTorch's layer defaults"),                      \
        DGM_PARAM_BOOL("spectral_norm", .def = "false",                        \
                       .help = "spectral normalisation of every conv and "     \
                               "linear weight"),                               \
        DGM_PARAM_INT("attention_at", .def = "0", DGM_GE(0), DGM_LE(1 << 16),  \
                      .help = "insert the `attention` block after the stage "  \
                              "whose feature map has this height (28x28: 7 "   \
                              "or 14); 0: none"),                              \
        DGM_PARAM_PLUGIN("attention", .def = "{plugin: self_attention}",       \
                         .kind = "block",                                      \
                         .help = "the block inserted at attention_at (must "   \
                                 "keep its input shape)")

static const dgm_param_spec gen_params[] = {
    DGM_PARAM_INT("width", .def = "64", DGM_GE(1), DGM_LE(1 << 14),
                  .help = "channels of the last hidden feature map; each "
                          "earlier stage has twice "
                          "as many (28x28: 128@7x7 then 64@14x14)"),
    DGM_PARAM_INT_LIST(
        "channels", .def = "[]", DGM_GE(1), DGM_LE(1 << 16),
        .help =
            "explicit channels per stage, base map first ([] derives them from "
            "width); one entry per stage"),
    DGM_PARAM_BOOL(
        "batch_norm", .def = "true",
        .help =
            "batch norm + ReLU after the linear map and each hidden transposed "
            "conv (those layers have no bias)"),
    DGM_PARAM_CHOICE(
        "output", .def = "tanh", .choices = "tanh|sigmoid|none",
        .help = "activation of the image (tanh for data scaled to [-1, 1])"),
    DCGAN_SHARED_PARAMS,
    DGM_PARAM_END,
};

static const dgm_param_spec disc_params[] = {
    DGM_PARAM_INT(
        "width", .def = "64", DGM_GE(1), DGM_LE(1 << 14),
        .help =
            "channels of the first conv; each later stage has twice as many "
            "(28x28: 64@14x14 then 128@7x7)"),
    DGM_PARAM_INT_LIST("channels", .def = "[]", DGM_GE(1), DGM_LE(1 << 16),
                       .help = "explicit channels per stage, first conv first "
                               "([] derives them from "
                               "width)"),
    DGM_PARAM_BOOL("batch_norm", .def = "true",
                   .help = "batch norm on every conv but the first (those "
                           "convs have no bias)"),
    DGM_PARAM_FLOAT("slope", .def = "0.2", DGM_GE(0), DGM_LE(1),
                    .help = "negative slope of LeakyReLU"),
    DCGAN_SHARED_PARAMS,
    DGM_PARAM_END,
};

typedef struct dc_layer {
    dgm_param *w, *b; /* b NULL when batch norm follows */
    dgm_bn_params bn;
    bool has_bn;
    dgm_sn_params sn;
    bool has_sn;
} dc_layer;

typedef struct dcgan {
    bool gen;
    int k;       /* stride-2 stages */
    dc_layer fc; /* generator: z -> base map; discriminator:
                    the logit head when one is asked for */
    dc_layer conv[DC_MAX_STAGES];
    int64_t c0, h0, w0; /* generator's base map */
    char out_act[16];
    float slope;
    bool head; /* discriminator gives a logit */
    /* Hooks for per-stage extras (self-attention): a block applied to the
     * feature map of stage i (0 = the base map of the generator / the
     * first conv's output of the discriminator), NULL if none. */
    dgm_block *extra[DC_MAX_STAGES + 1];
} dcgan;

static void dcgan_init(dgm_build *b, dc_layer *l, bool normal)
{
    if (!normal)
        return;
    dgm_rng *r = dgm_build_rng(b);
    dgm_init_normal(l->w->value, r, 0.0f, 0.02f);
    if (l->b)
        dgm_tensor_fill(l->b->value, 0.0);
    if (l->has_bn)
        dgm_init_normal(l->bn.weight->value, r, 1.0f, 0.02f);
}

/* "<name>.weight", then "bn<idx>.*" over bn_ch channels when bn_ch > 0,
 * else ".bias" [nbias]. The two counts differ for the generator's linear
 * map: its bias has one entry per output feature (c0 * h0 * w0), its batch
 * norm one per channel of the base map (c0). */
static int add_layer(dgm_build *b, dc_layer *l, const char *name, int idx,
                     int ndim, const int64_t *ws, int64_t nbias, int64_t bn_ch,
                     bool normal, bool sn)
{
    char n[32];
    bool bn = bn_ch > 0;
    snprintf(n, sizeof n, "%s%d", name, idx);
    int rc = dgm_build_weights(b, n, ndim, ws, bn ? 0 : nbias, &l->w, &l->b);
    l->has_bn = bn;
    if (rc == 0 && bn) {
        snprintf(n, sizeof n, "bn%d", idx);
        rc = dgm_build_batch_norm(b, n, bn_ch, &l->bn);
    }
    if (rc == 0)
        dcgan_init(b, l, normal);
    /* a transposed conv [in, out, k, k] is normalised over dim 1, as
     * PyTorch's spectral_norm does for ConvTranspose2d */
    l->has_sn = sn;
    if (rc == 0 && sn) {
        snprintf(n, sizeof n, "%s%d", name, idx);
        rc = dgm_build_spectral_norm(
            b, n, l->w, ndim == 4 && !strcmp(name, "deconv"), &l->sn);
    }
    return rc;
}

/* The weight as the layer uses it. */
static dgm_var *weight_of(dgm_graph *g, dc_layer *l)
{
    dgm_var *w = dgm_param_var(g, l->w);
    return l->has_sn ? dgm_sn_weight(g, &l->sn, w) : w;
}

/* The `attention` block after the stage whose map is [c, h, w], when
 * attention_at asks for h; *placed tells the caller it was used. */
static int add_attention(dcgan *d, const dgm_config *cfg, dgm_build *b,
                         int stage, int64_t c, int64_t h, int64_t w,
                         bool *placed)
{
    if (dgm_cfg_int(cfg, "attention_at") != h || *placed)
        return 0;
    dgm_shape in = {3, {c, h, w}}, out = {0};
    int rc = dgm_block_create(b, dgm_cfg_child(cfg, "attention"), "attention",
                              &in, &out, &d->extra[stage]);
    if (rc == 0 && (out.ndim != 3 || out.dim[0] != c || out.dim[1] != h ||
                    out.dim[2] != w))
        rc = dgm_cfg_error(cfg, "attention", DGM_ESHAPE,
                           "the attention block must keep its input shape "
                           "[%lld, %lld, %lld]",
                           (long long)c, (long long)h, (long long)w);
    *placed = true;
    return rc;
}

/* attention_at named no stage: list the sides there are. */
static int attention_missed(const dgm_config *cfg, const char *who,
                            int64_t first, int k, bool halving)
{
    char sides[128] = "";
    int64_t side = first;
    for (int i = 0; i < k; i++) {
        size_t len = strlen(sides);
        snprintf(sides + len, sizeof sides - len, "%s%lld", i ? ", " : "",
                 (long long)side);
        side = halving ? side / 2 : side * 2;
    }
    return dgm_cfg_error(cfg, "attention_at", DGM_ERANGE,
                         "%s: no stage has a feature map of height %lld "
                         "(stages: %s)",
                         who, (long long)dgm_cfg_int(cfg, "attention_at"),
                         sides);
}

static int gen_create(void **self, const dgm_config *cfg, dgm_build *b,
                      const dgm_shape *in, dgm_shape *out)
{
    char sin[96], sout[96];
    dgm_shape_str(in->ndim, in->dim, sin, sizeof sin);
    dgm_shape_str(out->ndim, out->dim, sout, sizeof sout);
    if (out->ndim != 3)
        return dgm_error(DGM_ESHAPE,
                         "dcgan_generator: needs an output shape [C, H, W] "
                         "from its model, got %s (input %s)",
                         out->ndim ? sout : "none", sin);
    int64_t h0 = 0, w0 = 0;
    int k = image_stages(cfg, "dcgan_generator", out, &h0, &w0);
    if (k < 0)
        return k;
    dcgan *d = calloc(1, sizeof *d);
    if (!d)
        return dgm_error(DGM_ENOMEM, "dcgan_generator: out of memory");
    d->gen = true;
    d->k = k;
    d->h0 = h0, d->w0 = w0;
    snprintf(d->out_act, sizeof d->out_act, "%s", dgm_cfg_str(cfg, "output"));
    bool bn = dgm_cfg_bool(cfg, "batch_norm");
    bool normal = !strcmp(dgm_cfg_str(cfg, "init"), "normal");
    bool sn = dgm_cfg_bool(cfg, "spectral_norm"), placed = false;
    int64_t ch[DC_MAX_STAGES];
    int rc = image_stage_channels(cfg, "dcgan_generator", k, true, ch);
    if (rc == 0) {
        d->c0 = ch[0];
        int64_t ws[2] = {ch[0] * h0 * w0, dgm_shape_numel(in->ndim, in->dim)};
        rc = add_layer(b, &d->fc, "fc", 0, 2, ws, ws[0], bn ? ch[0] : 0, normal,
                       sn);
    }
    for (int i = 1; i <= k && rc == 0; i++) {
        bool last = i == k;
        int64_t oc = last ? out->dim[0] : ch[i];
        int64_t ws[4] = {ch[i - 1], oc, 4, 4};
        rc = add_layer(b, &d->conv[i - 1], "deconv", i, 4, ws, oc,
                       bn && !last ? oc : 0, normal, sn);
    }
    /* stage i is the map [ch[i], h0 << i, w0 << i] */
    for (int i = 0; i < k && rc == 0; i++)
        rc = add_attention(d, cfg, b, i, ch[i], h0 << i, w0 << i, &placed);
    if (rc == 0 && dgm_cfg_int(cfg, "attention_at") > 0 && !placed)
        rc = attention_missed(cfg, "dcgan_generator", h0, k, false);
    if (rc < 0) {
        free(d);
        return rc;
    }
    *self = d;
    return 0;
}

static int disc_create(void **self, const dgm_config *cfg, dgm_build *b,
                       const dgm_shape *in, dgm_shape *out)
{
    char sin[96], sout[96];
    dgm_shape_str(in->ndim, in->dim, sin, sizeof sin);
    dgm_shape_str(out->ndim, out->dim, sout, sizeof sout);
    int64_t h0 = 0, w0 = 0;
    int k = image_stages(cfg, "dcgan_discriminator", in, &h0, &w0);
    if (k < 0)
        return k;
    bool head = out->ndim > 0;
    if (head && dgm_shape_numel(out->ndim, out->dim) != 1)
        return dgm_error(DGM_ESHAPE,
                         "dcgan_discriminator: gives features (no output "
                         "shape asked) or one logit ([1]), not %s",
                         sout);
    dcgan *d = calloc(1, sizeof *d);
    if (!d)
        return dgm_error(DGM_ENOMEM, "dcgan_discriminator: out of memory");
    d->k = k;
    d->head = head;
    d->slope = (float)dgm_cfg_float(cfg, "slope");
    bool bn = dgm_cfg_bool(cfg, "batch_norm");
    bool normal = !strcmp(dgm_cfg_str(cfg, "init"), "normal");
    bool sn = dgm_cfg_bool(cfg, "spectral_norm"), placed = false;
    int64_t ch[DC_MAX_STAGES];
    int rc = image_stage_channels(cfg, "dcgan_discriminator", k, false, ch);
    for (int i = 0; i < k && rc == 0; i++) {
        int64_t ic = i == 0 ? in->dim[0] : ch[i - 1];
        int64_t ws[4] = {ch[i], ic, 4, 4};
        rc = add_layer(b, &d->conv[i], "conv", i + 1, 4, ws, ch[i],
                       bn && i > 0 ? ch[i] : 0, normal, sn);
    }
    /* stage i is the map [ch[i], H >> (i + 1), W >> (i + 1)] */
    for (int i = 0; i < k && rc == 0; i++)
        rc = add_attention(d, cfg, b, i, ch[i], in->dim[1] >> (i + 1),
                           in->dim[2] >> (i + 1), &placed);
    if (rc == 0 && dgm_cfg_int(cfg, "attention_at") > 0 && !placed)
        rc = attention_missed(cfg, "dcgan_discriminator", in->dim[1] / 2, k,
                              true);
    int64_t feat = rc == 0 ? ch[k - 1] * h0 * w0 : 0;
    if (rc == 0 && head) {
        int64_t ws[2] = {1, feat};
        rc = add_layer(b, &d->fc, "fc", k + 1, 2, ws, 1, 0, normal, sn);
    }
    if (rc < 0) {
        free(d);
        return rc;
    }
    if (!head) /* else [1] or [1, 1] as asked */
        *out = (dgm_shape){1, {feat}};
    *self = d;
    return 0;
}

static dgm_var *extra(dcgan *d, dgm_graph *g, int stage, dgm_var *h)
{
    return d->extra[stage] ? dgm_block_forward(d->extra[stage], g, h) : h;
}

static dgm_var *bias_of(dgm_graph *g, const dc_layer *l)
{
    return l->b ? dgm_param_var(g, l->b) : NULL;
}

static const dgm_conv_params s2 = {{2, 2}, {1, 1}, {1, 1}, 1, {0, 0}};

static dgm_var *gen_forward(void *self, dgm_graph *g, dgm_var *x)
{
    dcgan *d = self;
    if (!x)
        return NULL;
    dgm_var *h = dgm_value(x)->ndim != 2 ? dgm_flatten(g, x) : x;
    h = dgm_linear(g, h, weight_of(g, &d->fc), bias_of(g, &d->fc));
    if (!h)
        return NULL;
    int64_t s[4] = {dgm_value(h)->shape[0], d->c0, d->h0, d->w0};
    h = dgm_reshape(g, h, 4, s);
    if (d->fc.has_bn)
        h = dgm_bn_forward(g, &d->fc.bn, h);
    h = extra(d, g, 0, dgm_relu(g, h));
    for (int i = 0; i < d->k; i++) {
        dc_layer *l = &d->conv[i];
        h = dgm_conv_transpose2d(g, h, weight_of(g, l), bias_of(g, l), &s2);
        if (i == d->k - 1)
            break;
        if (l->has_bn)
            h = dgm_bn_forward(g, &l->bn, h);
        h = extra(d, g, i + 1, dgm_relu(g, h));
    }
    return dgm_activation(g, h, d->out_act, 0.0f);
}

static dgm_var *disc_forward(void *self, dgm_graph *g, dgm_var *x)
{
    dcgan *d = self;
    if (!x)
        return NULL;
    dgm_var *h = x;
    for (int i = 0; i < d->k; i++) {
        dc_layer *l = &d->conv[i];
        h = dgm_conv2d(g, h, weight_of(g, l), bias_of(g, l), &s2);
        if (l->has_bn)
            h = dgm_bn_forward(g, &l->bn, h);
        h = extra(d, g, i, dgm_leaky_relu(g, h, d->slope));
    }
    h = dgm_flatten(g, h);
    if (d->head)
        h = dgm_linear(g, h, weight_of(g, &d->fc), bias_of(g, &d->fc));
    return h;
}

static void destroy(void *self)
{
    free(self);
}

static const dgm_block_iface gen_iface = {
    .create = gen_create, .forward = gen_forward, .destroy = destroy};
static const dgm_block_iface disc_iface = {
    .create = disc_create, .forward = disc_forward, .destroy = destroy};

static const dgm_plugin_desc descs[] = {
    {DGM_PLUGIN_HEADER, DGM_PLUGIN_BLOCK(&gen_iface), .name = "dcgan_generator",
     .version = "1.0",
     .summary = "DCGAN generator: linear to a base map, 4x4 stride-2 "
                "transposed convs with batch norm + ReLU, tanh image",
     .params = gen_params},
    {DGM_PLUGIN_HEADER, DGM_PLUGIN_BLOCK(&disc_iface),
     .name = "dcgan_discriminator", .version = "1.0",
     .summary = "DCGAN discriminator: 4x4 stride-2 convs with batch norm + "
                "LeakyReLU; features, or a logit when [1] is asked",
     .params = disc_params},
};

DGM_PLUGIN_NAME(dcgan_generator);
DGM_PLUGIN_NAME(dcgan_discriminator);

DGM_PLUGIN_EXPORT const dgm_plugin_desc *dgm_plugin_query(uint32_t i)
{
    return i < sizeof descs / sizeof descs[0] ? &descs[i] : NULL;
}
