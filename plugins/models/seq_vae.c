/* seq_vae.c - model `seq_vae`: the sequence VAE of Bowman et al. 2016
 * ("Generating sentences from a continuous space") on byte windows. An
 * LSTM or GRU encoder reads the window to q(z|x) = N(mu, exp(logvar)); z is
 * drawn by reparameterisation and concatenated to the decoder's input
 * embedding at every step; the decoder RNN predicts the next byte. Word
 * (character) dropout replaces decoder inputs by a reserved unknown id
 * while training, so the decoder must lean on z. */
#include <stdlib.h>
#include <string.h>

#include "dgm/dgm.h"
#include "token_loop.h"

static const dgm_param_spec params[] = {
    DGM_PARAM_CHOICE("cell", .def = "lstm", .choices = "lstm|gru",
                     .help = "recurrent cell of encoder and decoder"),
    DGM_PARAM_INT("embedding", .def = "64", DGM_GE(1), DGM_LE(1 << 16),
                  .help = "embedding width (shared by encoder and decoder)"),
    DGM_PARAM_INT("hidden", .def = "256", DGM_GE(1), DGM_LE(1 << 16),
                  .help = "hidden size of encoder and decoder"),
    DGM_PARAM_INT("layers", .def = "1", DGM_GE(1), DGM_LE(DGM_RNN_MAX_LAYERS),
                  .help = "stacked layers of encoder and decoder"),
    DGM_PARAM_INT("latent", .def = "32", DGM_GE(1), DGM_LE(65536),
                  .help = "latent dimensions"),
    DGM_PARAM_FLOAT("word_dropout", .def = "0.0", DGM_GE(0.0), DGM_LE(1.0),
                    .help = "probability of replacing a decoder input by the "
                            "unknown id (training only)"),
    DGM_PARAM_END,
};

typedef struct seq_vae {
    int64_t vocab, latent, T;
    dgm_param *emb, *mu_w, *mu_b, *lv_w, *lv_b, *head_w, *head_b;
    dgm_rnn_params enc, dec;
    float word_dropout;
    bool lstm;
    /* The decoder inputs after word dropout: dgm_input borrows its tensor,
     * so it lives here until the next step's graph reset. */
    dgm_tensor *drop_ids;
    /* decode()'s windows, which its output var borrows likewise */
    dgm_tensor *decoded;
} seq_vae;

static void destroy(void *self)
{
    seq_vae *m = self;
    if (!m)
        return;
    dgm_tensor_free(m->drop_ids);
    dgm_tensor_free(m->decoded);
    free(m);
}

static int create(void **self, const dgm_config *cfg, dgm_build *b,
                  const dgm_data_info *data)
{
    int bad = token_data_check("seq_vae", data);
    if (bad < 0)
        return bad;
    seq_vae *m = calloc(1, sizeof *m);
    if (!m)
        return dgm_error(DGM_ENOMEM, "seq_vae: out of memory");
    m->vocab = data->n_classes;
    m->T = data->x_shape.dim[0];
    m->latent = dgm_cfg_int(cfg, "latent");
    m->lstm = !strcmp(dgm_cfg_str(cfg, "cell"), "lstm");
    m->word_dropout = (float)dgm_cfg_float(cfg, "word_dropout");
    int64_t E = dgm_cfg_int(cfg, "embedding"), H = dgm_cfg_int(cfg, "hidden");
    int64_t Z = m->latent;
    int L = (int)dgm_cfg_int(cfg, "layers");
    dgm_rnn_cell cell = m->lstm ? DGM_RNN_LSTM : DGM_RNN_GRU;
    /* one row more than the vocabulary: the unknown id of word dropout */
    int rc = dgm_build_embedding(b, "embedding.weight", m->vocab + 1, E, 1.0f,
                                 &m->emb);
    if (rc == 0)
        rc = dgm_build_rnn(b, "encoder.rnn", cell, L, E, H, &m->enc);
    if (rc == 0)
        rc = dgm_build_weights(b, "encoder.mu", 2, (int64_t[]){Z, H}, Z,
                               &m->mu_w, &m->mu_b);
    if (rc == 0)
        rc = dgm_build_weights(b, "encoder.logvar", 2, (int64_t[]){Z, H}, Z,
                               &m->lv_w, &m->lv_b);
    if (rc == 0)
        rc = dgm_build_rnn(b, "decoder.rnn", cell, L, E + Z, H, &m->dec);
    if (rc == 0)
        rc = dgm_build_weights(b, "decoder.head", 2, (int64_t[]){m->vocab, H},
                               m->vocab, &m->head_w, &m->head_b);
    if (rc < 0) {
        destroy(m);
        return rc;
    }
    *self = m;
    return 0;
}

/* ids [T, N] -> mu, logvar [N, Z] from the encoder's last-layer final
 * state. */
static int encode(seq_vae *m, dgm_graph *g, dgm_var *ids, dgm_var **mu,
                  dgm_var **logvar)
{
    dgm_var *e = dgm_embedding(g, dgm_param_var(g, m->emb), ids);
    dgm_var *h_n = NULL, *c_n = NULL;
    dgm_var *y = dgm_rnn_forward(g, &m->enc, e, 0.0f, NULL, NULL, &h_n,
                                 m->lstm ? &c_n : NULL);
    if (!y)
        return dgm_last_code();
    const dgm_tensor *hv = dgm_value(h_n);
    int64_t L = hv->shape[0], nh[2] = {hv->shape[1], hv->shape[2]};
    dgm_var *h = dgm_reshape(g, dgm_slice(g, h_n, 0, L - 1, L, 1), 2, nh);
    *mu =
        dgm_linear(g, h, dgm_param_var(g, m->mu_w), dgm_param_var(g, m->mu_b));
    *logvar =
        dgm_linear(g, h, dgm_param_var(g, m->lv_w), dgm_param_var(g, m->lv_b));
    return *mu && *logvar ? 0 : dgm_last_code();
}

/* Decoder: ids [T, N], z [N, Z] -> logits [T, N, V]; z joins the input
 * embedding at every step. h0/c0 may be NULL; h_n/c_n may be NULL. */
static dgm_var *decode(seq_vae *m, dgm_graph *g, dgm_var *ids, dgm_var *z,
                       dgm_var *h0, dgm_var *c0, dgm_var **h_n, dgm_var **c_n)
{
    dgm_var *e = dgm_embedding(g, dgm_param_var(g, m->emb), ids);
    if (!e || !z)
        return NULL;
    int64_t T = dgm_value(e)->shape[0], N = dgm_value(e)->shape[1];
    int64_t zs[3] = {1, N, m->latent};
    dgm_var *z1 = dgm_reshape(g, z, 3, zs);
    dgm_var **rep = malloc(sizeof *rep * (size_t)T);
    if (!rep) {
        dgm_error(DGM_ENOMEM, "seq_vae: out of memory");
        return NULL;
    }
    for (int64_t t = 0; t < T; t++)
        rep[t] = z1;
    dgm_var *zt = T == 1 ? z1 : dgm_concat(g, rep, (int)T, 0); /* [T,N,Z] */
    free(rep);
    dgm_var *parts[2] = {e, zt};
    dgm_var *y = dgm_rnn_forward(g, &m->dec, dgm_concat(g, parts, 2, 2), 0.0f,
                                 h0, c0, h_n, m->lstm ? c_n : NULL);
    return dgm_linear(g, y, dgm_param_var(g, m->head_w),
                      dgm_param_var(g, m->head_b));
}

/* The decoder's inputs x [N, T] as [T, N] ids, each replaced by the
 * unknown id with probability word_dropout (drawn from the step's RNG). */
static dgm_var *dropped_inputs(seq_vae *m, dgm_step *s, dgm_var *x)
{
    const dgm_tensor *xv = dgm_value(x);
    dgm_tensor *c = dgm_tensor_clone(xv);
    if (!c)
        return NULL;
    int64_t n = dgm_tensor_numel(c);
    int64_t *p = c->data;
    for (int64_t i = 0; i < n; i++)
        if (dgm_rng_uniform(s->rng) < m->word_dropout)
            p[i] = m->vocab;
    dgm_tensor_free(m->drop_ids); /* the previous step's graph is reset */
    m->drop_ids = c;
    return dgm_transpose(s->g, dgm_input(s->g, c), 0, 1);
}

/* z = mu + exp(logvar / 2) * eps */
static dgm_var *reparam(dgm_graph *g, dgm_var *mu, dgm_var *logvar)
{
    dgm_var *eps = dgm_randn(g, 2, dgm_value(mu)->shape);
    return dgm_add(
        g, mu, dgm_mul(g, dgm_exp(g, dgm_affine(g, logvar, 0.5f, 0.0f)), eps));
}

static int forward(void *self, dgm_step *s, int phase, dgm_vars *io)
{
    (void)phase;
    seq_vae *m = self;
    dgm_graph *g = s->g;
    dgm_var *x = dgm_vars_get(io, "x"), *y = dgm_vars_get(io, "y");
    if (!x || !y)
        return dgm_error(DGM_EMISSING, "seq_vae: needs inputs x and y");
    if (dgm_value(x)->dtype != DGM_I64)
        return dgm_error(DGM_EDTYPE, "seq_vae: x must be i64 ids");
    /* the encoder reads the sequence the decoder reconstructs */
    dgm_var *mu = NULL, *logvar = NULL;
    int rc = encode(m, g, dgm_transpose(g, y, 0, 1), &mu, &logvar);
    if (rc < 0)
        return rc;
    /* evaluation also samples z: the metrics' bound needs z ~ q(z|x) */
    dgm_var *z = reparam(g, mu, logvar);
    dgm_var *in = s->training && m->word_dropout > 0
                      ? dropped_inputs(m, s, x)
                      : dgm_transpose(g, x, 0, 1);
    dgm_var *logits = decode(m, g, in, z, NULL, NULL, NULL, NULL);
    if (!logits)
        return dgm_last_code();
    if ((rc = dgm_vars_set(io, "logits", dgm_transpose(g, logits, 0, 1))) < 0 ||
        (rc = dgm_vars_set(io, "target", y)) < 0 ||
        (rc = dgm_vars_set(io, "mu", mu)) < 0 ||
        (rc = dgm_vars_set(io, "logvar", logvar)) < 0 ||
        (rc = dgm_vars_set(io, "z", z)) < 0)
        return rc;
    return 0;
}

static int sample(void *self, dgm_step *s, int64_t n, dgm_vars *io,
                  dgm_var **out)
{
    (void)self;
    (void)s;
    (void)n;
    (void)io;
    return token_no_sample("seq_vae", out);
}

/* Feed ids [t, n] with z [n, Z] from the states in h/c [L, n, H] (zeros
 * unless have_state); the last step's logits land in `last` [n, V] and the
 * final states back in h/c. */
static int feed(seq_vae *m, dgm_graph *g, dgm_tensor *ids, dgm_tensor *z,
                dgm_tensor *h, dgm_tensor *c, bool have_state, float *last)
{
    dgm_graph_reset(g);
    dgm_var *h_n = NULL, *c_n = NULL;
    dgm_var *logits =
        decode(m, g, dgm_input(g, ids), dgm_input(g, z),
               have_state ? dgm_input(g, h) : NULL,
               have_state && m->lstm ? dgm_input(g, c) : NULL, &h_n, &c_n);
    return token_feed_end(logits, last, h, h_n, m->lstm ? c : NULL, c_n);
}

/* What generate carries between feeds: z [1, Z] and the states h/c
 * [L, 1, H]. */
typedef struct gen_state {
    seq_vae *m;
    dgm_tensor *z, *h, *c;
} gen_state;

static int feed_gen(void *ctx, dgm_graph *g, dgm_tensor *ids, bool have_state,
                    float *last)
{
    gen_state *st = ctx;
    return feed(st->m, g, ids, st->z, st->h, st->c, have_state, last);
}

/* Text from the prior: z ~ N(0, I) drawn once from the step's RNG, then
 * the prompt and each drawn byte fed to the decoder with that z. */
static int generate(void *self, dgm_step *s, const int32_t *prompt,
                    int64_t prompt_len, int64_t length,
                    const dgm_generate_opts *o, int32_t *out)
{
    seq_vae *m = self;
    int64_t sshape[3] = {m->dec.layers, 1, m->dec.hidden};
    int64_t zshape[2] = {1, m->latent};
    gen_state st = {m, dgm_tensor_new(DGM_F32, 2, zshape),
                    dgm_tensor_new(DGM_F32, 3, sshape),
                    dgm_tensor_new(DGM_F32, 3, sshape)};
    int rc = st.z && st.h && st.c
                 ? 0
                 : dgm_error(DGM_ENOMEM, "seq_vae: out of memory");
    for (int64_t i = 0; rc == 0 && i < m->latent; i++)
        ((float *)st.z->data)[i] = dgm_rng_normal(s->rng);
    if (rc == 0)
        rc = token_generate("seq_vae", &st, feed_gen, m->vocab, s, prompt,
                            prompt_len, length, o, out);
    dgm_tensor_free(st.z);
    dgm_tensor_free(st.h);
    dgm_tensor_free(st.c);
    return rc;
}

static int64_t latent_size(void *self)
{
    return ((seq_vae *)self)->latent;
}

/* q(z | x) of windows x [n, t] (i64 ids, t <= T: a prompt may be
 * shorter than the training windows). */
static int encode_slot(void *self, dgm_step *s, dgm_var *x, dgm_var **mean,
                       dgm_var **logvar)
{
    seq_vae *m = self;
    const dgm_tensor *xv = dgm_value(x);
    if (xv->dtype != DGM_I64 || xv->ndim != 2)
        return dgm_error(DGM_EDTYPE, "seq_vae: encode needs i64 ids [n, t]");
    return encode(m, s->g, dgm_transpose(s->g, x, 0, 1), mean, logvar);
}

/* The most likely of logits[0..n): the first of equal ones. */
static int32_t argmax(const float *logits, int64_t n)
{
    int64_t best = 0;
    for (int64_t i = 1; i < n; i++)
        if (logits[i] > logits[best])
            best = i;
    return (int32_t)best;
}

/* Windows of T ids [n, T] for z [n, Z]. The decoder starts from the
 * unknown id, which word dropout taught it to read as "no input" (so the
 * first byte comes from z alone, with no prompt to favour one end of a
 * homotopy), and is fed back each step's most likely byte (greedy), or,
 * when io holds "temperature" (f32 [1], > 0), a byte drawn at that
 * temperature with the step's RNG; it then sets "temperature_used". */
static int decode_slot(void *self, dgm_step *s, dgm_var *zv, dgm_vars *io,
                       dgm_var **out)
{
    seq_vae *m = self;
    *out = NULL;
    const dgm_tensor *zt = dgm_value(zv);
    if (zt->dtype != DGM_F32 || zt->ndim != 2 || zt->shape[1] != m->latent)
        return dgm_error(DGM_ESHAPE, "seq_vae: decode needs z f32 [n, %lld]",
                         (long long)m->latent);
    dgm_var *tv = dgm_vars_get(io, "temperature");
    dgm_generate_opts o = {.temperature = 1.0f};
    if (tv) {
        const dgm_tensor *t = dgm_value(tv);
        if (t->dtype != DGM_F32 || dgm_tensor_numel(t) != 1 ||
            !(((const float *)dgm_tensor_f32(t))[0] > 0.0f))
            return dgm_error(DGM_EINVAL, "seq_vae: decode's \"temperature\" "
                                         "must be one f32 > 0");
        o.temperature = ((const float *)dgm_tensor_f32(t))[0];
    }
    int64_t n = zt->shape[0], V = m->vocab;
    int64_t sshape[3] = {m->dec.layers, n, m->dec.hidden};
    int64_t tshape[2] = {1, n}, oshape[2] = {n, m->T};
    /* z is copied: each fed step resets the graph that holds zv */
    dgm_tensor *z = dgm_tensor_clone(zt);
    dgm_tensor *h = dgm_tensor_new(DGM_F32, 3, sshape);
    dgm_tensor *c = dgm_tensor_new(DGM_F32, 3, sshape);
    dgm_tensor *tok = dgm_tensor_new(DGM_I64, 2, tshape);
    float *last = malloc(sizeof *last * (size_t)(n * V));
    dgm_tensor_free(m->decoded);
    m->decoded = dgm_tensor_new(DGM_I64, 2, oshape);
    int rc = z && h && c && tok && last && m->decoded
                 ? 0
                 : dgm_error(DGM_ENOMEM, "seq_vae: out of memory");
    int64_t *ids = rc == 0 ? tok->data : NULL;
    int64_t *win = rc == 0 ? m->decoded->data : NULL;
    for (int64_t i = 0; rc == 0 && i < n; i++)
        ids[i] = V; /* the unknown id */
    for (int64_t t = 0; rc == 0 && t < m->T; t++) {
        if ((rc = feed(m, s->g, tok, z, h, c, t > 0, last)) < 0)
            break;
        for (int64_t i = 0; i < n; i++) {
            const float *l = last + i * V;
            ids[i] = tv ? dgm_draw_token(l, V, &o, s->rng) : argmax(l, V);
            win[i * m->T + t] = ids[i];
        }
    }
    if (rc == 0 && !(*out = dgm_input(s->g, m->decoded)))
        rc = dgm_last_code();
    if (rc == 0 && tv)
        rc = dgm_vars_set(io, "temperature_used", *out);
    dgm_tensor_free(z);
    dgm_tensor_free(h);
    dgm_tensor_free(c);
    dgm_tensor_free(tok);
    free(last);
    return rc;
}

/* cross_entropy is nats per byte, gaussian_kl nats per window: a
 * experiment weights the KL by 1/T (and anneals it) for the per-byte
 * negative ELBO. */
static const dgm_phase_desc phases[] = {
    {"train", "*",
     "[{loss: cross_entropy, inputs: [logits, target]},"
     " {loss: gaussian_kl, inputs: [mu, logvar]}]",
     1},
};

static const dgm_model_iface iface = {
    .phases = phases,
    .n_phases = 1,
    .create = create,
    .forward = forward,
    .sample = sample,
    .destroy = destroy,
    .generate = generate,
    .latent_size = latent_size,
    .decode = decode_slot,
    .encode = encode_slot,
};

static const dgm_plugin_desc desc = {
    DGM_PLUGIN_HEADER,
    DGM_PLUGIN_MODEL(&iface),
    .name = "seq_vae",
    .version = "1.0",
    .summary = "sequence VAE, RNN encoder/decoder with z at every step "
               "(outputs logits, target, mu, logvar, z)",
    .params = params,

};

DGM_PLUGIN_NAME(seq_vae);

DGM_PLUGIN_EXPORT const dgm_plugin_desc *dgm_plugin_query(uint32_t i)
{
    return i == 0 ? &desc : NULL;
}
