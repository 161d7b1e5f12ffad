/* char_transformer.c - model `char_transformer`: a character-level
 * language model, embedding + positions -> N transformer blocks -> final
 * LayerNorm -> linear head, trained with next-token cross-entropy;
 * generation from a prompt over a context of at most the window length. */
#include <stdlib.h>
#include <string.h>

#include "dgm/dgm.h"
#include "token_loop.h"

#define MAX_LAYERS 64

static const dgm_param_spec params[] = {
    DGM_PARAM_INT("width", .def = "128", DGM_GE(1), DGM_LE(1 << 16),
                  .help = "model width D"),
    DGM_PARAM_INT("layers", .def = "4", DGM_GE(1), DGM_LE(MAX_LAYERS),
                  .help = "transformer blocks"),
    DGM_PARAM_PLUGIN("block", .def = "{plugin: transformer_block, heads: 4}",
                     .kind = "block",
                     .help = "each layer (built `layers` times)"),
    DGM_PARAM_PLUGIN("positional", .def = "{plugin: positional, kind: learned}",
                     .kind = "block",
                     .help = "position encoding added to the embeddings"),
    DGM_PARAM_END,
};

typedef struct char_tf {
    int64_t vocab, T, D;
    int layers;
    dgm_param *emb, *ln_w, *ln_b, *head_w, *head_b;
    dgm_block *pos, *blocks[MAX_LAYERS];
} char_tf;

static int create(void **self, const dgm_config *cfg, dgm_build *b,
                  const dgm_data_info *data)
{
    int bad = token_data_check("char_transformer", data);
    if (bad < 0)
        return bad;
    char_tf *m = calloc(1, sizeof *m);
    if (!m)
        return dgm_error(DGM_ENOMEM, "char_transformer: out of memory");
    m->vocab = data->n_classes;
    m->T = data->x_shape.dim[0];
    m->D = dgm_cfg_int(cfg, "width");
    m->layers = (int)dgm_cfg_int(cfg, "layers");
    dgm_shape seq = {2, {m->T, m->D}}, out = {0};
    int rc = dgm_build_embedding(b, "embedding.weight", m->vocab, m->D, 1.0f,
                                 &m->emb);
    if (rc == 0)
        rc = dgm_block_create(b, dgm_cfg_child(cfg, "positional"), "pos", &seq,
                              &out, &m->pos);
    for (int l = 0; rc == 0 && l < m->layers; l++) {
        char scope[32];
        snprintf(scope, sizeof scope, "blocks.%d", l);
        out = (dgm_shape){0};
        rc = dgm_block_create(b, dgm_cfg_child(cfg, "block"), scope, &seq, &out,
                              &m->blocks[l]);
        if (rc == 0 &&
            (out.ndim != 2 || out.dim[0] != m->T || out.dim[1] != m->D))
            rc = dgm_error(DGM_ESHAPE,
                           "char_transformer: block %d changes the shape "
                           "[T, D] of the sequence",
                           l);
    }
    if (rc == 0)
        rc = dgm_build_layer_norm(b, "ln_f", m->D, &m->ln_w, &m->ln_b);
    if (rc == 0)
        rc = dgm_build_weights(b, "head", 2, (int64_t[]){m->vocab, m->D},
                               m->vocab, &m->head_w, &m->head_b);
    if (rc < 0) {
        free(m); /* blocks belong to the host */
        return rc;
    }
    *self = m;
    return 0;
}

/* ids [N, t] -> logits [N, t, V] */
static dgm_var *run(char_tf *m, dgm_graph *g, dgm_var *ids)
{
    dgm_var *h = dgm_embedding(g, dgm_param_var(g, m->emb), ids);
    h = dgm_block_forward(m->pos, g, h);
    for (int l = 0; l < m->layers; l++)
        h = dgm_block_forward(m->blocks[l], g, h);
    h = dgm_layer_norm(g, h, dgm_param_var(g, m->ln_w),
                       dgm_param_var(g, m->ln_b), 1e-5f);
    return dgm_linear(g, h, dgm_param_var(g, m->head_w),
                      dgm_param_var(g, m->head_b));
}

/* "logits" [N, T, V] from "x" [N, T]; "target" is "y" when the batch has
 * it (training and evaluation; dgm_run_forward_output passes x alone). */
static int forward(void *self, dgm_step *s, int phase, dgm_vars *io)
{
    (void)phase;
    char_tf *m = self;
    dgm_var *x = dgm_vars_get(io, "x"), *y = dgm_vars_get(io, "y");
    if (!x)
        return dgm_error(DGM_EMISSING, "char_transformer: needs input x");
    dgm_var *logits = run(m, s->g, x);
    if (!logits)
        return dgm_last_code();
    int rc = dgm_vars_set(io, "logits", logits);
    return rc == 0 && y ? dgm_vars_set(io, "target", y) : rc;
}

static int sample(void *self, dgm_step *s, int64_t n, dgm_vars *io,
                  dgm_var **out)
{
    (void)self;
    (void)s;
    (void)n;
    (void)io;
    return token_no_sample("char_transformer", out);
}

/* Each new token runs the model on the last T tokens (no key/value cache:
 * a window of T = 64 characters costs little). */
static int generate(void *self, dgm_step *s, const int32_t *prompt,
                    int64_t prompt_len, int64_t length,
                    const dgm_generate_opts *o, int32_t *out)
{
    char_tf *m = self;
    int64_t shape[2] = {1, m->T};
    dgm_tensor *ids = dgm_tensor_new(DGM_I64, 2, shape);
    if (!ids)
        return dgm_last_code();
    for (int64_t i = 0; i < prompt_len; i++) {
        if (prompt[i] < 0 || prompt[i] >= m->vocab) {
            dgm_tensor_free(ids);
            return dgm_error(DGM_ERANGE,
                             "char_transformer: prompt id %d at %lld is "
                             "outside the vocabulary [0, %lld)",
                             prompt[i], (long long)i, (long long)m->vocab);
        }
        out[i] = prompt[i];
    }
    int rc = 0;
    for (int64_t at = prompt_len; rc == 0 && at < prompt_len + length; at++) {
        int64_t t = at < m->T ? at : m->T, from = at - t;
        ids->shape[1] = t;
        dgm_contiguous_strides(2, ids->shape, ids->strides);
        for (int64_t i = 0; i < t; i++)
            ((int64_t *)ids->data)[i] = out[from + i];
        dgm_graph_reset(s->g);
        dgm_var *logits = run(m, s->g, dgm_input(s->g, ids));
        if (!logits) {
            rc = dgm_last_code();
            break;
        }
        const float *l = dgm_value(logits)->data;
        out[at] = dgm_draw_token(l + (t - 1) * m->vocab, m->vocab, o, s->rng);
    }
    dgm_tensor_free(ids);
    return rc;
}

static void destroy(void *self)
{
    free(self);
}

static const dgm_phase_desc phases[] = {
    {"train", "*", "[{loss: cross_entropy, inputs: [logits, target]}]", 1},
};

static const dgm_model_iface iface = {
    .phases = phases,
    .n_phases = 1,
    .create = create,
    .forward = forward,
    .sample = sample,
    .destroy = destroy,
    .generate = generate,
};

static const dgm_plugin_desc desc = {
    DGM_PLUGIN_HEADER,
    DGM_PLUGIN_MODEL(&iface),
    .name = "char_transformer",
    .version = "1.0",
    .summary = "character transformer language model (outputs logits, "
               "target)",
    .params = params,

};

DGM_PLUGIN_NAME(char_transformer);

DGM_PLUGIN_EXPORT const dgm_plugin_desc *dgm_plugin_query(uint32_t i)
{
    return i == 0 ? &desc : NULL;
}
