/* gan.c - model `gan`: a generator and a discriminator given as blocks,
 * trained in two phases (discriminator, then generator), with optional
 * class conditioning (label embedding in G, projection in D, D's features
 * and labels exposed for an auxiliary classifier head as in AC-GAN), an
 * exponential moving average of G's weights for sampling and WGAN weight
 * clipping of D, and the option to generate each step's fake batch once
 * (reuse_fake). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/dgm.h"

static const dgm_param_spec params[] = {
    DGM_PARAM_INT("latent", .def = "64", DGM_GE(1), DGM_LE(65536),
                  .help = "dimensions of z ~ N(0, I)"),
    DGM_PARAM_PLUGIN(
        "generator", .def = "{plugin: dcgan_generator}", .kind = "block",
        .help = "z (with the label embedding) -> an image in data space"),
    DGM_PARAM_PLUGIN(
        "discriminator", .def = "{plugin: dcgan_discriminator}",
        .kind = "block",
        .help = "image -> features; the model adds the linear logit head "
                "(discriminator.head) and, if conditional, the projection"),
    DGM_PARAM_BOOL(
        "head_spectral_norm", .def = "false",
        .help =
            "spectral normalisation of the logit head and the projection "
            "embedding (pair with the discriminator block's spectral_norm)"),
    DGM_PARAM_BOOL("conditional", .def = "false",
                   .help =
                       "condition both networks on the data's class labels"),
    DGM_PARAM_BOOL(
        "projection", .def = "true",
        .help = "conditional: add the projection <embed_y, phi> to D's logit "
                "(false: "
                "D sees labels only through a head on d_feat, as in AC-GAN)"),
    DGM_PARAM_INT(
        "embed_dim", .def = "0", DGM_GE(0), DGM_LE(65536),
        .help =
            "generator's label embedding size, concatenated to z (0: latent)"),
    DGM_PARAM_FLOAT("ema", .def = "0.0", DGM_GE(0), DGM_LE(1),
                    .help =
                        "decay of the moving average of the generator's "
                        "parameters, kept as "
                        "buffers ema.<name> and used for sampling (0: off)"),
    DGM_PARAM_FLOAT("clip_d", .def = "0.0", DGM_GE(0), DGM_LE(1e6),
                    .help = "> 0: clip every discriminator weight to [-clip_d, "
                            "clip_d] after each "
                            "discriminator update (WGAN)"),
    DGM_PARAM_BOOL(
        "reuse_fake", .def = "false",
        .help = "generate the fake batch once per step, with a tape, in the "
                "discriminator phase (D's loss sees it detached) and reuse "
                "that forward for the generator's loss, re-run through the "
                "updated D (PyTorch's DCGAN example); false: the generator "
                "runs again in the generator phase"),
    DGM_PARAM_END,
};

enum { PHASE_D = 0, PHASE_G = 1 };

typedef struct gan {
    int64_t latent, embed_dim, n_classes;
    bool cond;
    bool proj; /* conditional with D's projection term */
    dgm_block *gen, *disc;
    dgm_param *head_w, *head_b;      /* discriminator.head: features -> 1 */
    dgm_param *g_embed, *d_embed;    /* conditional: label embeddings */
    dgm_sn_params head_sn, embed_sn; /* with head_spectral_norm */
    bool head_sn_on;
    /* generator parameters and their moving averages (ema > 0) */
    dgm_param **g_params, **g_ema;
    int n_g;
    dgm_param **d_weights; /* every discriminator weight (clip_d) */
    int n_d;
    float ema, clip;
    bool ema_fresh; /* the averages were set from this run's first step */
    bool reuse;     /* reuse_fake */
    bool armed;     /* the host keeps the next forward's graph */
    /* reuse_fake: the discriminator phase's generator output (on the tape,
     * not detached), its z and labels, for the generator phase of the same
     * step on the same graph; NULL when there is none to reuse. */
    dgm_var *kept_fake, *kept_z, *kept_y;
    dgm_graph *kept_g;
    int64_t kept_step;
    dgm_tensor **swap; /* sample(): the live values while EMA ones are in */
} gan;

static bool has_prefix(const char *s, const char *p)
{
    return !strncmp(s, p, strlen(p));
}

/* Collect the parameters named "<prefix>..." into a fresh array: the
 * weights, and with stats also the batch-norm running statistics (whose
 * average is meaningful; power-iteration vectors are not averaged). */
static int collect(const dgm_params *ps, const char *prefix, bool stats,
                   dgm_param ***out, int *n)
{
    int np = dgm_params_count(ps), k = 0;
    dgm_param **a = malloc(sizeof *a * (size_t)(np ? np : 1));
    if (!a)
        return dgm_error(DGM_ENOMEM, "gan: out of memory");
    for (int i = 0; i < np; i++) {
        dgm_param *p = dgm_params_at(ps, i);
        if (has_prefix(p->name, prefix) &&
            (p->role == DGM_ROLE_WEIGHT ||
             (stats && strstr(p->name, ".running_"))))
            a[k++] = p;
    }
    *out = a;
    *n = k;
    return 0;
}

static void gan_free(gan *m)
{
    if (!m)
        return;
    free(m->g_params);
    free(m->g_ema);
    free(m->d_weights);
    if (m->swap)
        for (int i = 0; i < m->n_g; i++)
            dgm_tensor_free(m->swap[i]);
    free(m->swap);
    free(m);
}

/* A linear-layer weight [out, in] (+ bias) with PyTorch's init. */
static int linear_param(dgm_build *b, const char *name, int64_t in, int64_t out,
                        dgm_param **w, dgm_param **bias)
{
    int64_t ws[2] = {out, in};
    return dgm_build_weights(b, name, 2, ws, bias ? out : 0, w, bias);
}

static int ema_buffers(gan *m, dgm_build *b)
{
    m->g_ema = calloc((size_t)(m->n_g ? m->n_g : 1), sizeof *m->g_ema);
    m->swap = calloc((size_t)(m->n_g ? m->n_g : 1), sizeof *m->swap);
    if (!m->g_ema || !m->swap)
        return dgm_error(DGM_ENOMEM, "gan: out of memory");
    for (int i = 0; i < m->n_g; i++) {
        const dgm_tensor *v = m->g_params[i]->value;
        char name[768];
        snprintf(name, sizeof name, "ema.%s", m->g_params[i]->name);
        int rc = dgm_build_param(b, name, DGM_ROLE_BUFFER, v->ndim, v->shape,
                                 &m->g_ema[i]);
        if (rc < 0)
            return rc;
        dgm_tensor_copy(m->g_ema[i]->value, v);
        if (!(m->swap[i] = dgm_tensor_new_like(v)))
            return dgm_last_code();
    }
    return 0;
}

static int create(void **self, const dgm_config *cfg, dgm_build *b,
                  const dgm_data_info *data)
{
    char xs_s[64];
    dgm_shape_str(data->x_shape.ndim, data->x_shape.dim, xs_s, sizeof xs_s);
    if (data->x_dtype != DGM_F32)
        return dgm_error(DGM_EDTYPE,
                         "gan: the data must be f32 images, not "
                         "%s %s",
                         xs_s, dgm_dtype_name(data->x_dtype));
    bool cond = dgm_cfg_bool(cfg, "conditional");
    if (cond && (!data->has_y || data->n_classes < 1))
        return dgm_cfg_error(cfg, "conditional", DGM_ECONFIG,
                             "gan: conditional needs a data set with class "
                             "labels (this one has %s)",
                             data->has_y ? "no class count" : "none");
    /* Without labels there is nothing to project: `projection: false`
     * there means the experiment forgot `conditional: true`. */
    bool proj = dgm_cfg_bool(cfg, "projection");
    if (!cond && !proj)
        return dgm_cfg_error(cfg, "projection", DGM_ECONFIG,
                             "gan: projection: false only applies to a "
                             "conditional model (set conditional: true, or "
                             "drop projection)");
    gan *m = calloc(1, sizeof *m);
    if (!m)
        return dgm_error(DGM_ENOMEM, "gan: out of memory");
    m->latent = dgm_cfg_int(cfg, "latent");
    m->cond = cond;
    m->proj = cond && proj;
    m->n_classes = data->n_classes;
    m->embed_dim = dgm_cfg_int(cfg, "embed_dim");
    if (m->embed_dim == 0)
        m->embed_dim = m->latent;
    m->ema = (float)dgm_cfg_float(cfg, "ema");
    m->clip = (float)dgm_cfg_float(cfg, "clip_d");
    m->reuse = dgm_cfg_bool(cfg, "reuse_fake");
    int rc = 0;
    if (m->ema >= 1.0f)
        rc = dgm_cfg_error(cfg, "ema", DGM_ERANGE,
                           "gan: the decay must be below 1 (0 turns the "
                           "average off)");
    int64_t zin = m->latent + (cond ? m->embed_dim : 0);
    dgm_shape zs = {1, {zin}}, xs = data->x_shape, feat = {0};
    if (rc == 0 && cond)
        rc = dgm_build_embedding(b, "generator.y_embed.weight", m->n_classes,
                                 m->embed_dim, 1.0f, &m->g_embed);
    if (rc == 0)
        rc = dgm_block_create(b, dgm_cfg_child(cfg, "generator"), "generator",
                              &zs, &xs, &m->gen);
    if (rc == 0 && (xs.ndim != data->x_shape.ndim ||
                    memcmp(xs.dim, data->x_shape.dim,
                           sizeof(int64_t) * (size_t)xs.ndim))) {
        char a[64];
        rc = dgm_error(DGM_ESHAPE,
                       "gan: the generator gives %s per example, the data "
                       "is %s",
                       dgm_shape_str(xs.ndim, xs.dim, a, sizeof a), xs_s);
    }
    if (rc == 0)
        rc = dgm_block_create(b, dgm_cfg_child(cfg, "discriminator"),
                              "discriminator", &data->x_shape, &feat, &m->disc);
    int64_t f = dgm_shape_numel(feat.ndim, feat.dim);
    if (rc == 0)
        rc =
            linear_param(b, "discriminator.head", f, 1, &m->head_w, &m->head_b);
    /* The projection starts small so the unconditional logit leads. */
    if (rc == 0 && m->proj)
        rc =
            dgm_build_embedding(b, "discriminator.y_embed.weight", m->n_classes,
                                f, 1.0f / sqrtf((float)f), &m->d_embed);
    m->head_sn_on = dgm_cfg_bool(cfg, "head_spectral_norm");
    if (rc == 0 && m->head_sn_on)
        rc = dgm_build_spectral_norm(b, "discriminator.head", m->head_w, 0,
                                     &m->head_sn);
    if (rc == 0 && m->head_sn_on && m->proj)
        rc = dgm_build_spectral_norm(b, "discriminator.y_embed", m->d_embed, 0,
                                     &m->embed_sn);
    const dgm_params *ps = dgm_build_params(b);
    if (rc == 0)
        rc = collect(ps, "generator.", true, &m->g_params, &m->n_g);
    if (rc == 0)
        rc = collect(ps, "discriminator.", false, &m->d_weights, &m->n_d);
    if (rc == 0 && m->ema > 0)
        rc = ema_buffers(m, b);
    if (rc < 0) {
        gan_free(m); /* blocks and parameters belong to the host */
        return rc;
    }
    m->ema_fresh = false;
    *self = m;
    return 0;
}

/* z with the label embedding of y appended when conditional. */
static dgm_var *cond_input(gan *m, dgm_graph *g, dgm_var *z, dgm_var *y)
{
    if (!m->cond)
        return z;
    dgm_var *parts[2] = {z, dgm_embedding(g, dgm_param_var(g, m->g_embed), y)};
    return dgm_concat(g, parts, 2, 1);
}

/* z [n, latent] from N(0, 1), with the label embedding of y appended when
 * conditional. */
static dgm_var *gen_input(gan *m, dgm_graph *g, int64_t n, dgm_var *y,
                          dgm_var **z_out)
{
    int64_t zs[2] = {n, m->latent};
    dgm_var *z = dgm_randn(g, 2, zs);
    *z_out = z;
    return cond_input(m, g, z, y);
}

/* D's logit [N, 1]: head(phi) (+ <embed_y, phi> with the projection);
 * *phi_out: the flattened features phi [N, F] the logit is computed from. */
static dgm_var *disc_logit(gan *m, dgm_step *s, dgm_var *x, dgm_var *y,
                           dgm_var **phi_out)
{
    dgm_graph *g = s->g;
    dgm_var *phi = dgm_block_forward(m->disc, g, dgm_step_augment(s, x));
    if (phi && dgm_value(phi)->ndim != 2)
        phi = dgm_flatten(g, phi);
    *phi_out = phi;
    dgm_var *w = dgm_param_var(g, m->head_w);
    if (m->head_sn_on)
        w = dgm_sn_weight(g, &m->head_sn, w);
    dgm_var *out = dgm_linear(g, phi, w, dgm_param_var(g, m->head_b));
    if (!m->proj || !out)
        return out;
    dgm_var *ew = dgm_param_var(g, m->d_embed);
    if (m->head_sn_on)
        ew = dgm_sn_weight(g, &m->embed_sn, ew);
    dgm_var *e = dgm_embedding(g, ew, y);
    dgm_var *proj = dgm_sum(g, dgm_mul(g, e, phi), 1u << 1, true);
    return dgm_add(g, out, proj);
}

/* Conditional models name D's features and the labels D was given, for
 * an auxiliary classifier head (AC-GAN): d_feat [M, F] and d_y [M], the k
 * batches D saw stacked in order (real, then fake, in the discriminator
 * phase). Unconditional ones have no labels for the fakes: no outputs. */
static int set_aux(gan *m, dgm_graph *g, dgm_vars *io, dgm_var *const *phi,
                   dgm_var *const *y, int k)
{
    if (!m->cond)
        return 0;
    dgm_var *f = k > 1 ? dgm_concat(g, phi, k, 0) : phi[0];
    dgm_var *l = k > 1 ? dgm_concat(g, y, k, 0) : y[0];
    if (!f || !l)
        return dgm_last_code();
    int rc = dgm_vars_set(io, "d_feat", f);
    return rc < 0 ? rc : dgm_vars_set(io, "d_y", l);
}

/* Labels for n generated examples: uniform over the classes. */
static dgm_var *random_labels(gan *m, dgm_step *s, int64_t n)
{
    dgm_tensor *t = dgm_arena_tensor(dgm_graph_arena(s->g), DGM_I64, 1, &n);
    if (!t) {
        dgm_error(DGM_ENOMEM, "gan: out of memory");
        return NULL;
    }
    int64_t *p = t->data;
    for (int64_t i = 0; i < n; i++)
        p[i] = (int64_t)dgm_rng_below(s->rng, (uint64_t)m->n_classes);
    return dgm_input(s->g, t);
}

static void ema_start(gan *m)
{
    for (int i = 0; i < m->n_g; i++)
        dgm_tensor_copy(m->g_ema[i]->value, m->g_params[i]->value);
}

static int forward(void *self, dgm_step *s, int phase, dgm_vars *io)
{
    gan *m = self;
    dgm_graph *g = s->g;
    dgm_var *x = dgm_vars_get(io, "x");
    if (!x)
        return dgm_error(DGM_EINVAL, "gan: no \"x\" in the batch");
    /* A run starts its average from the weights it trains from (after any
     * `init:`); a resumed run keeps the checkpointed one. */
    if (m->ema > 0 && !m->ema_fresh && s->training && s->step == 0)
        ema_start(m);
    /* only a training step settles it: the host's eval-mode probes before
     * training (a head's input shape, a teacher) must not */
    if (s->training)
        m->ema_fresh = true;
    int64_t n = dgm_value(x)->shape[0];
    /* reuse_fake: the generator phase right after a training
     * discriminator phase on the same graph takes that phase's fake */
    bool reuse_d = m->armed && s->training && phase == PHASE_D;
    m->armed = false;
    bool reuse_g = m->reuse && s->training && phase == PHASE_G &&
                   m->kept_fake && m->kept_g == g && m->kept_step == s->step;
    dgm_var *kept_fake = m->kept_fake, *kept_z = m->kept_z, *kept_y = m->kept_y;
    m->kept_fake = m->kept_z = m->kept_y = NULL;
    m->kept_g = NULL;
    dgm_var *y = NULL, *y_fake = NULL, *z;
    if (m->cond && reuse_g) {
        if (!(y = dgm_vars_get(io, "y")))
            return dgm_error(DGM_EINVAL, "gan: conditional, but the batch "
                                         "has no labels \"y\"");
        y_fake = kept_y;
    } else if (m->cond) {
        if (!(y = dgm_vars_get(io, "y")))
            return dgm_error(DGM_EINVAL, "gan: conditional, but the batch "
                                         "has no labels \"y\"");
        if (!(y_fake = random_labels(m, s, n)))
            return dgm_last_code();
    }
    int rc;
    if (phase == PHASE_D) {
        /* G runs without a tape: the fake batch is a constant here. With
         * reuse_fake (the host keeping this graph) it is recorded for the
         * generator phase instead, and D's loss sees it detached. */
        bool was = dgm_graph_set_grad(g, false);
        if (reuse_d)
            dgm_graph_set_grad(g, was);
        dgm_var *fake =
            dgm_block_forward(m->gen, g, gen_input(m, g, n, y_fake, &z));
        dgm_graph_set_grad(g, was);
        if (!fake)
            return dgm_last_code();
        if (reuse_d) {
            m->kept_fake = fake;
            m->kept_z = z;
            m->kept_y = y_fake;
            m->kept_g = g;
            m->kept_step = s->step;
        }
        fake = dgm_detach(g, fake);
        dgm_var *phi[2], *ys[2] = {y, y_fake};
        dgm_var *d_real = disc_logit(m, s, x, y, &phi[0]);
        dgm_var *d_fake = disc_logit(m, s, fake, y_fake, &phi[1]);
        if (!d_real || !d_fake)
            return dgm_last_code();
        if ((rc = dgm_vars_set(io, "d_real", d_real)) < 0 ||
            (rc = dgm_vars_set(io, "d_fake", d_fake)) < 0 ||
            (rc = dgm_vars_set(io, "fake", fake)) < 0 ||
            (rc = dgm_vars_set(io, "z", z)) < 0 ||
            (rc = set_aux(m, g, io, phi, ys, 2)) < 0)
            return rc;
        return 0;
    }
    dgm_var *fake;
    if (reuse_g) {
        fake = kept_fake;
        z = kept_z;
    } else {
        fake = dgm_block_forward(m->gen, g, gen_input(m, g, n, y_fake, &z));
    }
    dgm_var *phi;
    dgm_var *d_fake = disc_logit(m, s, fake, y_fake, &phi);
    if (!d_fake)
        return dgm_last_code();
    if ((rc = dgm_vars_set(io, "d_fake", d_fake)) < 0 ||
        (rc = dgm_vars_set(io, "fake", fake)) < 0 ||
        (rc = dgm_vars_set(io, "z", z)) < 0 ||
        (rc = set_aux(m, g, io, &phi, &y_fake, 1)) < 0)
        return rc;
    return 0;
}

/* Swap the average into (in = true) or out of the generator's values. */
static void ema_swap(gan *m, bool in)
{
    for (int i = 0; i < m->n_g; i++) {
        if (in) {
            dgm_tensor_copy(m->swap[i], m->g_params[i]->value);
            dgm_tensor_copy(m->g_params[i]->value, m->g_ema[i]->value);
        } else {
            dgm_tensor_copy(m->g_params[i]->value, m->swap[i]);
        }
    }
}

/* The generator on z [n, latent] (NULL: drawn from N(0, I)) with the
 * labels io holds, or random ones; the averaged weights when ema > 0. */
static int generate_from(gan *m, dgm_step *s, int64_t n, dgm_var *z_given,
                         dgm_vars *io, dgm_var **out)
{
    dgm_graph *g = s->g;
    dgm_var *y = io ? dgm_vars_get(io, "y") : NULL, *z;
    if (m->cond && !y) {
        if (!(y = random_labels(m, s, n)))
            return dgm_last_code();
    } else if (m->cond) {
        const dgm_tensor *t = dgm_value(y);
        for (int64_t i = 0; i < t->shape[0]; i++) {
            double c = dgm_tensor_get(t, i);
            if (c < 0 || c >= (double)m->n_classes)
                return dgm_error(DGM_ERANGE,
                                 "gan: sampling label %lld (example %lld) "
                                 "is outside the %lld classes",
                                 (long long)c, (long long)i,
                                 (long long)m->n_classes);
        }
        int rc = dgm_vars_set(io, "y_used", y);
        if (rc < 0)
            return rc;
    }
    bool was = dgm_graph_set_grad(g, false);
    if (m->ema > 0)
        ema_swap(m, true);
    dgm_var *in =
        z_given ? cond_input(m, g, z_given, y) : gen_input(m, g, n, y, &z);
    *out = dgm_block_forward(m->gen, g, in);
    if (m->ema > 0)
        ema_swap(m, false);
    dgm_graph_set_grad(g, was);
    return *out ? 0 : dgm_last_code();
}

static int sample(void *self, dgm_step *s, int64_t n, dgm_vars *io,
                  dgm_var **out)
{
    return generate_from(self, s, n, NULL, io, out);
}

static int64_t latent_size(void *self)
{
    return ((gan *)self)->latent;
}

static int decode(void *self, dgm_step *s, dgm_var *z, dgm_vars *io,
                  dgm_var **out)
{
    gan *m = self;
    const dgm_tensor *t = z ? dgm_value(z) : NULL;
    if (!t || t->ndim != 2 || t->shape[1] != m->latent)
        return dgm_error(DGM_ESHAPE, "gan: decode needs z [n, %lld]",
                         (long long)m->latent);
    return generate_from(m, s, t->shape[0], z, io, out);
}

static int after_update(void *self, dgm_step *s, int phase)
{
    gan *m = self;
    (void)s;
    if (phase == PHASE_D && m->clip > 0) {
        for (int i = 0; i < m->n_d; i++) {
            dgm_tensor *t = m->d_weights[i]->value;
            float *p = dgm_tensor_f32(t), c = m->clip;
            int64_t k = dgm_tensor_numel(t);
            for (int64_t j = 0; j < k; j++)
                p[j] = p[j] > c ? c : p[j] < -c ? -c : p[j];
        }
    }
    if (phase == PHASE_G && m->ema > 0) {
        /* ema = decay * ema + (1 - decay) * w, running statistics too */
        const float d = m->ema, e = 1.0f - m->ema;
        for (int i = 0; i < m->n_g; i++) {
            const dgm_tensor *w = m->g_params[i]->value;
            if (w->dtype != DGM_F32)
                continue;
            float *a = dgm_tensor_f32(m->g_ema[i]->value);
            const float *p = dgm_tensor_f32(w);
            int64_t k = dgm_tensor_numel(w);
            for (int64_t j = 0; j < k; j++)
                a[j] = d * a[j] + e * p[j];
        }
    }
    return 0;
}

/* ABI 2.3: with reuse_fake the discriminator phase's graph (the
 * generator's forward) goes on into the generator phase. Only a forward
 * the host announced so records the generator on a tape and keeps it:
 * other callers (evaluation, tests driving phases on a graph they reset)
 * get the plain two-forward step. */
static bool keeps_graph(void *self, int phase)
{
    gan *m = self;
    m->armed = m->reuse && phase == PHASE_D;
    return m->armed;
}

static void destroy(void *self)
{
    gan_free(self);
}

static const dgm_phase_desc phases[] = {
    {"discriminator", "discriminator.*",
     "[{loss: gan_ns_d, inputs: [d_real, d_fake]}]", 1},
    {"generator", "generator.*", "[{loss: gan_ns_g, inputs: [d_fake]}]", 1},
};

static const dgm_model_iface iface = {
    .phases = phases,
    .n_phases = 2,
    .create = create,
    .forward = forward,
    .sample = sample,
    .destroy = destroy,
    .after_update = after_update,
    .latent_size = latent_size,
    .decode = decode,
    .keeps_graph = keeps_graph,
};

static const dgm_plugin_desc desc = {
    DGM_PLUGIN_HEADER,
    DGM_PLUGIN_MODEL(&iface),
    .name = "gan",
    .version = "1.0",
    .summary = "GAN: discriminator then generator phases (outputs d_real, "
               "d_fake, fake, z; conditional: d_feat, d_y)",
    .params = params,

};

DGM_PLUGIN_NAME(gan);

DGM_PLUGIN_EXPORT const dgm_plugin_desc *dgm_plugin_query(uint32_t i)
{
    return i == 0 ? &desc : NULL;
}
