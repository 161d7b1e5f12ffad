/* char_rnn.c - model `char_rnn`: a character-level language model,
 * embedding -> multi-layer LSTM or GRU -> linear head, trained with
 * next-token cross-entropy; truncated BPTT with carried hidden state as an
 * option; generation from a prompt (temperature, top-k). */
#include <stdlib.h>
#include <string.h>

#include "dgm/dgm.h"
#include "token_loop.h"

static const dgm_param_spec params[] = {
    DGM_PARAM_CHOICE("cell", .def = "lstm", .choices = "lstm|gru",
                     .help = "recurrent cell"),
    DGM_PARAM_INT("embedding", .def = "64", DGM_GE(1), DGM_LE(1 << 16),
                  .help = "embedding width"),
    DGM_PARAM_INT("hidden", .def = "256", DGM_GE(1), DGM_LE(1 << 16),
                  .help = "hidden size"),
    DGM_PARAM_INT("layers", .def = "2", DGM_GE(1), DGM_LE(DGM_RNN_MAX_LAYERS),
                  .help = "stacked layers"),
    DGM_PARAM_FLOAT("dropout", .def = "0.0", DGM_GE(0.0), DGM_LE(0.99),
                    .help = "dropout between recurrent layers (training only)"),
    DGM_PARAM_BOOL(
        "tbptt", .def = "false",
        .help = "truncated BPTT: carry the final hidden state (detached) into "
                "the next "
                "training step; pair with the text data set's order: stream"),
    DGM_PARAM_END,
};

typedef struct char_rnn {
    int64_t vocab, T;
    dgm_param *emb, *head_w, *head_b;
    dgm_rnn_params rnn;
    float dropout;
    bool lstm, tbptt;
    /* Carried state, double-buffered: this step's h0 must stay intact for
     * backward while the final state is copied out for the next step. */
    dgm_tensor *h[2], *c[2];
    int cur;
    bool carry; /* h[cur] holds a state to continue from */
} char_rnn;

static void destroy(void *self)
{
    char_rnn *m = self;
    if (!m)
        return;
    for (int i = 0; i < 2; i++) {
        dgm_tensor_free(m->h[i]);
        dgm_tensor_free(m->c[i]);
    }
    free(m);
}

static int create(void **self, const dgm_config *cfg, dgm_build *b,
                  const dgm_data_info *data)
{
    int bad = token_data_check("char_rnn", data);
    if (bad < 0)
        return bad;
    char_rnn *m = calloc(1, sizeof *m);
    if (!m)
        return dgm_error(DGM_ENOMEM, "char_rnn: out of memory");
    m->vocab = data->n_classes;
    m->T = data->x_shape.dim[0];
    m->lstm = !strcmp(dgm_cfg_str(cfg, "cell"), "lstm");
    m->tbptt = dgm_cfg_bool(cfg, "tbptt");
    m->dropout = (float)dgm_cfg_float(cfg, "dropout");
    int64_t E = dgm_cfg_int(cfg, "embedding"), H = dgm_cfg_int(cfg, "hidden");
    int rc =
        dgm_build_embedding(b, "embedding.weight", m->vocab, E, 1.0f, &m->emb);
    if (rc == 0)
        rc = dgm_build_rnn(b, "rnn", m->lstm ? DGM_RNN_LSTM : DGM_RNN_GRU,
                           (int)dgm_cfg_int(cfg, "layers"), E, H, &m->rnn);
    if (rc == 0)
        rc = dgm_build_weights(b, "head", 2, (int64_t[]){m->vocab, H}, m->vocab,
                               &m->head_w, &m->head_b);
    if (rc < 0) {
        destroy(m);
        return rc;
    }
    *self = m;
    return 0;
}

/* ids [T, N] (time-major) -> logits [T, N, V]; h0/c0 may be NULL. */
static dgm_var *run(char_rnn *m, dgm_graph *g, dgm_var *ids, dgm_var *h0,
                    dgm_var *c0, dgm_var **h_n, dgm_var **c_n)
{
    dgm_var *e = dgm_embedding(g, dgm_param_var(g, m->emb), ids);
    dgm_var *y = dgm_rnn_forward(g, &m->rnn, e, m->dropout, h0, c0, h_n,
                                 m->lstm ? c_n : NULL);
    return dgm_linear(g, y, dgm_param_var(g, m->head_w),
                      dgm_param_var(g, m->head_b));
}

/* Make the carried-state buffers [L, n, H] (zeros), or keep them. */
static int state_buffers(char_rnn *m, int64_t n)
{
    int64_t shape[3] = {m->rnn.layers, n, m->rnn.hidden};
    if (m->h[0] && m->h[0]->shape[1] == n)
        return 0;
    for (int i = 0; i < 2; i++) {
        dgm_tensor_free(m->h[i]);
        dgm_tensor_free(m->c[i]);
        m->h[i] = dgm_tensor_new(DGM_F32, 3, shape);
        m->c[i] = dgm_tensor_new(DGM_F32, 3, shape);
        if (!m->h[i] || !m->c[i])
            return dgm_last_code();
    }
    m->carry = false;
    return 0;
}

static int forward(void *self, dgm_step *s, int phase, dgm_vars *io)
{
    (void)phase;
    char_rnn *m = self;
    dgm_graph *g = s->g;
    dgm_var *x = dgm_vars_get(io, "x"), *y = dgm_vars_get(io, "y");
    if (!x || !y)
        return dgm_error(DGM_EMISSING, "char_rnn: needs inputs x and y");
    bool carry = m->tbptt && s->training;
    dgm_var *h0 = NULL, *c0 = NULL, *h_n = NULL, *c_n = NULL;
    if (carry) {
        int rc = state_buffers(m, dgm_value(x)->shape[0]);
        if (rc < 0)
            return rc;
        if (m->carry) {
            h0 = dgm_input(g, m->h[m->cur]);
            c0 = m->lstm ? dgm_input(g, m->c[m->cur]) : NULL;
        }
    }
    dgm_var *logits = run(m, g, dgm_transpose(g, x, 0, 1), h0, c0,
                          carry ? &h_n : NULL, carry ? &c_n : NULL);
    if (!logits)
        return dgm_last_code();
    if (carry) {
        int next = 1 - m->cur;
        int rc = dgm_tensor_copy(m->h[next], dgm_value(h_n));
        if (rc == 0 && m->lstm)
            rc = dgm_tensor_copy(m->c[next], dgm_value(c_n));
        if (rc < 0)
            return rc;
        m->cur = next;
        m->carry = true;
    }
    int rc = dgm_vars_set(io, "logits", dgm_transpose(g, logits, 0, 1));
    if (rc == 0)
        rc = dgm_vars_set(io, "target", y);
    return rc;
}

static int sample(void *self, dgm_step *s, int64_t n, dgm_vars *io,
                  dgm_var **out)
{
    (void)self;
    (void)s;
    (void)n;
    (void)io;
    return token_no_sample("char_rnn", out);
}

/* What generate carries between feeds: the states h/c [L, 1, H]. */
typedef struct gen_state {
    char_rnn *m;
    dgm_tensor *h, *c;
} gen_state;

/* token_feed_fn: ids [t, 1] from the states in st (zeros unless
 * have_state); the last step's logits land in `last` [V] and the final
 * states back in st. */
static int feed(void *ctx, dgm_graph *g, dgm_tensor *ids, bool have_state,
                float *last)
{
    gen_state *st = ctx;
    char_rnn *m = st->m;
    dgm_graph_reset(g);
    dgm_var *h_n = NULL, *c_n = NULL;
    dgm_var *logits =
        run(m, g, dgm_input(g, ids), have_state ? dgm_input(g, st->h) : NULL,
            have_state && m->lstm ? dgm_input(g, st->c) : NULL, &h_n, &c_n);
    return token_feed_end(logits, last, st->h, h_n, m->lstm ? st->c : NULL,
                          c_n);
}

static int generate(void *self, dgm_step *s, const int32_t *prompt,
                    int64_t prompt_len, int64_t length,
                    const dgm_generate_opts *o, int32_t *out)
{
    char_rnn *m = self;
    int64_t sshape[3] = {m->rnn.layers, 1, m->rnn.hidden};
    gen_state st = {m, dgm_tensor_new(DGM_F32, 3, sshape),
                    dgm_tensor_new(DGM_F32, 3, sshape)};
    int rc = st.h && st.c ? token_generate("char_rnn", &st, feed, m->vocab, s,
                                           prompt, prompt_len, length, o, out)
                          : dgm_error(DGM_ENOMEM, "char_rnn: out of memory");
    dgm_tensor_free(st.h);
    dgm_tensor_free(st.c);
    return rc;
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
    .name = "char_rnn",
    .version = "1.0",
    .summary = "character LSTM/GRU language model (outputs logits, target)",
    .params = params,

};

DGM_PLUGIN_NAME(char_rnn);

DGM_PLUGIN_EXPORT const dgm_plugin_desc *dgm_plugin_query(uint32_t i)
{
    return i == 0 ? &desc : NULL;
}
