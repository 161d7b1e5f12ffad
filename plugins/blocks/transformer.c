/* transformer.c - block `transformer_block`: a pre-norm transformer layer
 * on [N, T, D]: x + attn(LN(x)), then x + MLP(LN(x)), with causal
 * multi-head self-attention (no position attends to a later one). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/dgm.h"

static const dgm_param_spec params[] = {
    DGM_PARAM_INT("heads", .def = "4", DGM_GE(1), DGM_LE(1024),
                  .help = "attention heads (must divide the width)"),
    DGM_PARAM_FLOAT("mlp_ratio", .def = "4.0", DGM_GE(0.25), DGM_LE(64),
                    .help =
                        "MLP hidden width as a multiple of the model width"),
    DGM_PARAM_INT("mlp_hidden", .def = "0", DGM_GE(0), DGM_LE(1 << 20),
                  .help = "MLP hidden width (0: mlp_ratio times the width)"),
    DGM_PARAM_FLOAT(
        "dropout", .def = "0.0", DGM_GE(0.0), DGM_LE(0.99),
        .help = "dropout on attention weights and on both residual branches"),
    DGM_PARAM_CHOICE("activation", .def = "gelu", .choices = DGM_ACTIVATIONS,
                     .help = "MLP activation"),
    DGM_PARAM_FLOAT("slope", .def = "0.2", DGM_GE(0), DGM_LE(1),
                    .help = "negative slope of leaky_relu"),
    DGM_PARAM_BOOL("causal", .def = "true",
                   .help = "mask attention to later positions"),
    DGM_PARAM_BOOL("fused_attention", .def = "false",
                   .help = "attention as one op that keeps no [T, T] tensor "
                           "(dgm_attention, for long sequences); false: "
                           "packed_attention decides"),
    DGM_PARAM_BOOL("packed_attention", .def = "true",
                   .help = "attention as one op on the packed projection "
                           "(dgm_attention_packed); false: reshape, permute, "
                           "slices, matmul, mask, softmax, matmul (always so "
                           "with dropout > 0 or the attention tapped)"),
    DGM_PARAM_BOOL("fused_mlp", .def = "true",
                   .help = "with activation gelu: fc1's GEMM, bias and GELU "
                           "as one op (dgm_linear_gelu); false: linear, "
                           "then gelu"),
    DGM_PARAM_END,
};

typedef struct linear {
    dgm_param *w, *b;
} linear;

typedef struct tblock {
    int64_t D, heads, hidden;
    float dropout, slope;
    bool causal, fused, packed, fused_mlp;
    char act[16];
    dgm_param *ln1_w, *ln1_b, *ln2_w, *ln2_b;
    linear qkv, proj, fc1, fc2; /* qkv: [3D, D], rows q, then k, then v */
} tblock;

static int add_linear(dgm_build *b, const char *name, int64_t in, int64_t out,
                      linear *l)
{
    return dgm_build_weights(b, name, 2, (int64_t[]){out, in}, out, &l->w,
                             &l->b);
}

static int create(void **self, const dgm_config *cfg, dgm_build *b,
                  const dgm_shape *in, dgm_shape *out)
{
    char s[64];
    if (in->ndim != 2)
        return dgm_error(DGM_ESHAPE,
                         "transformer_block: needs [T, D] per example, got %s",
                         dgm_shape_str(in->ndim, in->dim, s, sizeof s));
    int64_t D = in->dim[1], H = dgm_cfg_int(cfg, "heads");
    if (D % H)
        return dgm_cfg_error(cfg, "heads", DGM_ERANGE,
                             "transformer_block: %lld heads do not divide "
                             "the width %lld",
                             (long long)H, (long long)D);
    tblock *t = calloc(1, sizeof *t);
    if (!t)
        return dgm_error(DGM_ENOMEM, "transformer_block: out of memory");
    t->D = D;
    t->heads = H;
    t->hidden = dgm_cfg_int(cfg, "mlp_hidden");
    if (t->hidden == 0)
        t->hidden =
            (int64_t)llround(dgm_cfg_float(cfg, "mlp_ratio") * (double)D);
    if (t->hidden < 1)
        t->hidden = 1;
    t->dropout = (float)dgm_cfg_float(cfg, "dropout");
    t->slope = (float)dgm_cfg_float(cfg, "slope");
    t->causal = dgm_cfg_bool(cfg, "causal");
    t->fused = dgm_cfg_bool(cfg, "fused_attention");
    t->packed = dgm_cfg_bool(cfg, "packed_attention");
    t->fused_mlp = dgm_cfg_bool(cfg, "fused_mlp");
    snprintf(t->act, sizeof t->act, "%s", dgm_cfg_str(cfg, "activation"));
    int rc = dgm_build_layer_norm(b, "ln1", D, &t->ln1_w, &t->ln1_b);
    if (rc == 0)
        rc = add_linear(b, "attn.qkv", D, 3 * D, &t->qkv);
    if (rc == 0)
        rc = add_linear(b, "attn.proj", D, D, &t->proj);
    if (rc == 0)
        rc = dgm_build_layer_norm(b, "ln2", D, &t->ln2_w, &t->ln2_b);
    if (rc == 0)
        rc = add_linear(b, "mlp.fc1", D, t->hidden, &t->fc1);
    if (rc == 0)
        rc = add_linear(b, "mlp.fc2", t->hidden, D, &t->fc2);
    if (rc < 0) {
        free(t);
        return rc;
    }
    *out = *in;
    *self = t;
    return 0;
}

static dgm_var *lin(dgm_graph *g, const linear *l, dgm_var *x)
{
    return dgm_linear(g, x, dgm_param_var(g, l->w), dgm_param_var(g, l->b));
}

/* A constant [T, T]: 0 where key j <= query i, a large negative number
 * where j > i. Not -inf: exp of it is exactly 0 in float all the same, and
 * a row could never turn into NaN (none is fully masked: j = i is kept). */
static dgm_var *causal_mask(dgm_graph *g, int64_t T)
{
    int64_t s[2] = {T, T};
    dgm_var *m = dgm_constant(g, 2, s, 0.0f);
    if (!m)
        return NULL;
    float *p = dgm_value(m)->data;
    for (int64_t i = 0; i < T; i++)
        for (int64_t j = i + 1; j < T; j++)
            p[i * T + j] = -1e30f;
    return m;
}

/* h [N, T, D] -> attention output [N, T, D] before the projection. */
static dgm_var *attention(tblock *t, dgm_graph *g, dgm_var *h)
{
    if (!h)
        return NULL;
    const dgm_tensor *ht = dgm_value(h);
    int64_t N = ht->shape[0], T = ht->shape[1], H = t->heads, d = t->D / H;
    const float scale = 1.0f / sqrtf((float)d);
    dgm_var *qkv = lin(g, &t->qkv, h); /* [N, T, 3D] */
    /* a probe (dgm explore) needs the weights as a tensor; dropout on the
     * weights too */
    const bool composed = t->dropout > 0 || dgm_graph_tapping(g);
    if (!t->fused && t->packed && !composed)
        /* heads addressed inside qkv: no copies, no mask tensor, no
         * gradient passes through them (docs/performance-transformer.md) */
        return dgm_attention_packed(g, qkv, (int)H, scale, t->causal);
    /* One copy to [3, N, H, T, d]: q, k and v are then contiguous slices
     * [1, N, H, T, d], as the batched GEMMs want (batch dims [1, N, H]; no
     * reshape, so no extra gradient pass). */
    qkv = dgm_reshape(g, qkv, 5, (int64_t[]){N, T, 3, H, d});
    qkv = dgm_contiguous(g, dgm_permute(g, qkv, (const int[]){2, 0, 3, 1, 4}));
    dgm_var *q = dgm_slice(g, qkv, 0, 0, 1, 1);
    dgm_var *k = dgm_slice(g, qkv, 0, 1, 2, 1);
    dgm_var *v = dgm_slice(g, qkv, 0, 2, 3, 1);
    dgm_var *o; /* [1,N,H,T,d] */
    if (t->fused && !composed) {
        /* One op, no [T, T] tensor kept: less memory at long T. At the
         * char transformer's shape (T 64) it ran 6-11% slower than the
         * composition below on a quiet 2-core AVX-512 machine
         * (bench/bench_transformer), hence off by default. */
        o = dgm_attention(g, q, k, v, scale, t->causal);
    } else { /* dropout on the weights needs them as a tensor */
        /* the scale on q: a quarter of the elements of the scores */
        q = dgm_affine(g, q, scale, 0.0f);
        dgm_var *scores = dgm_matmul(g, q, k, false, true); /* [1,N,H,T,T] */
        if (t->causal)
            scores = dgm_add(g, scores, causal_mask(g, T));
        dgm_var *att = dgm_softmax(g, scores, 4);
        dgm_graph_tap(g, "attention", att); /* [1, N, H, T, T]: dgm explore */
        if (t->dropout > 0)
            att = dgm_dropout(g, att, t->dropout);
        o = dgm_matmul(g, att, v, false, false);
    }
    /* heads merged: reshaping the permuted view copies it in the same op */
    o = dgm_permute(g, o, (const int[]){0, 1, 3, 2, 4}); /* [1,N,T,H,d] */
    return dgm_reshape(g, o, 3, (int64_t[]){N, T, t->D});
}

static dgm_var *forward(void *self, dgm_graph *g, dgm_var *x)
{
    tblock *t = self;
    if (!x)
        return NULL;
    const dgm_tensor *xt = dgm_value(x);
    if (xt->ndim != 3 || xt->shape[2] != t->D) {
        char s[96];
        dgm_error(DGM_ESHAPE, "transformer_block: input %s is not [N, T, %lld]",
                  dgm_tensor_describe(xt, s, sizeof s), (long long)t->D);
        return NULL;
    }
    dgm_var *h = dgm_layer_norm(g, x, dgm_param_var(g, t->ln1_w),
                                dgm_param_var(g, t->ln1_b), 1e-5f);
    dgm_var *a = lin(g, &t->proj, attention(t, g, h));
    if (t->dropout > 0)
        a = dgm_dropout(g, a, t->dropout);
    x = dgm_add(g, x, a);
    h = dgm_layer_norm(g, x, dgm_param_var(g, t->ln2_w),
                       dgm_param_var(g, t->ln2_b), 1e-5f);
    if (t->fused_mlp && !strcmp(t->act, "gelu"))
        h = dgm_linear_gelu(g, h, dgm_param_var(g, t->fc1.w),
                            dgm_param_var(g, t->fc1.b));
    else
        h = dgm_activation(g, lin(g, &t->fc1, h), t->act, t->slope);
    h = lin(g, &t->fc2, h);
    if (t->dropout > 0)
        h = dgm_dropout(g, h, t->dropout);
    return dgm_add(g, x, h);
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
    .name = "transformer_block",
    .version = "1.0",
    .summary = "pre-norm causal multi-head self-attention + MLP on [N, T, D]",
    .params = params,

};

DGM_PLUGIN_NAME(transformer_block);

DGM_PLUGIN_EXPORT const dgm_plugin_desc *dgm_plugin_query(uint32_t i)
{
    return i == 0 ? &desc : NULL;
}
