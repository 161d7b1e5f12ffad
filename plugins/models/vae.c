/* vae.c - model `vae`: a variational autoencoder with a Gaussian posterior
 * (reparameterised), a standard normal prior and a Bernoulli or Gaussian
 * decoder; encoder and decoder are blocks named in YAML. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/dgm.h"

static const dgm_param_spec params[] = {
    DGM_PARAM_INT("latent", .def = "20", DGM_GE(1), DGM_LE(65536),
                  .help = "latent dimensions"),
    DGM_PARAM_PLUGIN("encoder", .def = "{plugin: mlp, hidden: [400]}",
                     .kind = "block",
                     .help = "x -> features; linear heads give mu and logvar"),
    DGM_PARAM_PLUGIN("decoder", .def = "{plugin: mlp, hidden: [400]}",
                     .kind = "block",
                     .help = "z -> logits (or means) in the data's shape"),
    DGM_PARAM_CHOICE(
        "likelihood", .def = "bernoulli", .choices = "bernoulli|gaussian",
        .help = "decoder distribution (for samples and the IWAE bound)"),
    DGM_PARAM_FLOAT("obs_std", .def = "0.1", DGM_GE(1e-6), DGM_LE(1e6),
                    .help = "standard deviation of the gaussian likelihood"),
    DGM_PARAM_END,
};

typedef struct vae {
    int64_t latent;
    dgm_block *enc, *dec;
    dgm_param *mu_w, *mu_b, *lv_w, *lv_b;
    dgm_shape x_shape;
    bool bernoulli;
    float obs_std;
} vae;

static int head(dgm_build *b, const char *name, int64_t in, int64_t out,
                dgm_param **w, dgm_param **bias)
{
    char n[64];
    int64_t ws[2] = {out, in}, bs[1] = {out};
    snprintf(n, sizeof n, "encoder.%s.weight", name);
    int rc = dgm_build_param(b, n, DGM_ROLE_WEIGHT, 2, ws, w);
    snprintf(n, sizeof n, "encoder.%s.bias", name);
    if (rc == 0)
        rc = dgm_build_param(b, n, DGM_ROLE_WEIGHT, 1, bs, bias);
    if (rc < 0)
        return rc;
    dgm_init_kaiming_uniform((*w)->value, dgm_build_rng(b), 2.2360679775f);
    dgm_init_fan_in_uniform((*bias)->value, dgm_build_rng(b), in);
    return 0;
}

static int create(void **self, const dgm_config *cfg, dgm_build *b,
                  const dgm_data_info *data)
{
    if (data->x_dtype != DGM_F32)
        return dgm_error(DGM_EDTYPE, "vae: the data must be f32 images or "
                                     "vectors, not %s",
                         dgm_dtype_name(data->x_dtype));
    vae *m = calloc(1, sizeof *m);
    if (!m)
        return dgm_error(DGM_ENOMEM, "vae: out of memory");
    m->latent = dgm_cfg_int(cfg, "latent");
    m->x_shape = data->x_shape;
    m->bernoulli = !strcmp(dgm_cfg_str(cfg, "likelihood"), "bernoulli");
    m->obs_std = (float)dgm_cfg_float(cfg, "obs_std");
    dgm_shape feat = {0}, zs = {1, {m->latent}}, xs = data->x_shape;
    int rc = dgm_block_create(b, dgm_cfg_child(cfg, "encoder"), "encoder",
                              &data->x_shape, &feat, &m->enc);
    if (rc == 0) {
        int64_t f = dgm_shape_numel(feat.ndim, feat.dim);
        rc = head(b, "mu", f, m->latent, &m->mu_w, &m->mu_b);
        if (rc == 0)
            rc = head(b, "logvar", f, m->latent, &m->lv_w, &m->lv_b);
    }
    if (rc == 0)
        rc = dgm_block_create(b, dgm_cfg_child(cfg, "decoder"), "decoder",
                              &zs, &xs, &m->dec);
    if (rc == 0 && (xs.ndim != data->x_shape.ndim ||
                    memcmp(xs.dim, data->x_shape.dim,
                           sizeof(int64_t) * (size_t)xs.ndim))) {
        char a[64], c[64];
        rc = dgm_error(DGM_ESHAPE,
                       "vae: the decoder gives %s per example, the data is %s",
                       dgm_shape_str(xs.ndim, xs.dim, a, sizeof a),
                       dgm_shape_str(data->x_shape.ndim, data->x_shape.dim, c,
                                     sizeof c));
    }
    if (rc < 0) {
        free(m); /* blocks belong to the host */
        return rc;
    }
    *self = m;
    return 0;
}

static int encode(vae *m, dgm_graph *g, dgm_var *x, dgm_var **mu,
                  dgm_var **logvar)
{
    dgm_var *h = dgm_block_forward(m->enc, g, x);
    if (h && dgm_value(h)->ndim != 2)
        h = dgm_flatten(g, h);
    *mu = dgm_linear(g, h, dgm_param_var(g, m->mu_w),
                     dgm_param_var(g, m->mu_b));
    *logvar = dgm_linear(g, h, dgm_param_var(g, m->lv_w),
                         dgm_param_var(g, m->lv_b));
    return *mu && *logvar ? 0 : dgm_last_code();
}

/* z = mu + exp(logvar / 2) * eps */
static dgm_var *reparam(dgm_graph *g, dgm_var *mu, dgm_var *logvar,
                        dgm_var *eps)
{
    return dgm_add(g, mu, dgm_mul(g, dgm_exp(g, dgm_affine(g, logvar, 0.5f,
                                                           0.0f)),
                                  eps));
}

static int forward(void *self, dgm_step *s, int phase, dgm_vars *io)
{
    vae *m = self;
    dgm_graph *g = s->g;
    dgm_var *x = dgm_vars_get(io, "x"), *mu, *logvar;
    int rc = encode(m, g, x, &mu, &logvar);
    if (rc < 0)
        return rc;
    dgm_var *eps = dgm_randn(g, 2, dgm_value(mu)->shape);
    dgm_var *z = reparam(g, mu, logvar, eps);
    dgm_var *logits = dgm_block_forward(m->dec, g, z);
    if (!logits)
        return dgm_last_code();
    if ((rc = dgm_vars_set(io, "mu", mu)) < 0 ||
        (rc = dgm_vars_set(io, "logvar", logvar)) < 0 ||
        (rc = dgm_vars_set(io, "z", z)) < 0 ||
        (rc = dgm_vars_set(io, "logits", logits)) < 0)
        return rc;
    return 0;
}

static dgm_var *mean_of(vae *m, dgm_graph *g, dgm_var *logits)
{
    return m->bernoulli ? dgm_sigmoid(g, logits) : logits;
}

static int sample(void *self, dgm_step *s, int64_t n, dgm_vars *io,
                  dgm_var **out)
{
    vae *m = self;
    int64_t shape[2] = {n, m->latent};
    dgm_var *z = dgm_randn(s->g, 2, shape);
    *out = mean_of(m, s->g, dgm_block_forward(m->dec, s->g, z));
    return *out ? 0 : dgm_last_code();
}

static int reconstruct(void *self, dgm_step *s, dgm_var *x, dgm_var **out)
{
    vae *m = self;
    dgm_var *mu, *logvar;
    int rc = encode(m, s->g, x, &mu, &logvar);
    if (rc < 0)
        return rc;
    *out = mean_of(m, s->g, dgm_block_forward(m->dec, s->g, mu));
    return *out ? 0 : dgm_last_code();
}

static int64_t latent_size(void *self)
{
    return ((vae *)self)->latent;
}

static int decode(void *self, dgm_step *s, dgm_var *z, dgm_vars *io,
                  dgm_var **out)
{
    (void)io; /* unconditional */
    vae *m = self;
    *out = mean_of(m, s->g, dgm_block_forward(m->dec, s->g, z));
    return *out ? 0 : dgm_last_code();
}

static int encode_slot(void *self, dgm_step *s, dgm_var *x, dgm_var **mean,
                       dgm_var **logvar)
{
    return encode(self, s->g, x, mean, logvar);
}

/* Sum over every axis but the first: [k, ...] -> [k]. */
static dgm_var *sum_rest(dgm_graph *g, dgm_var *v)
{
    if (!v)
        return NULL;
    int nd = dgm_value(v)->ndim;
    return dgm_sum(g, v, ((1u << nd) - 1u) & ~1u, false);
}

/* log p(x) >= log mean_k p(x, z_k) / q(z_k | x), z_k ~ q(z | x): the
 * importance-weighted bound of Burda et al., per example [N]. */
static int log_likelihood(void *self, dgm_step *s, dgm_var *x, int k,
                          dgm_var **out)
{
    vae *m = self;
    dgm_graph *g = s->g;
    dgm_var *mu, *logvar;
    int rc = encode(m, g, x, &mu, &logvar);
    if (rc < 0)
        return rc;
    int64_t n = dgm_value(mu)->shape[0], L = m->latent;
    int64_t es[3] = {k, n, L};
    dgm_var *eps = dgm_randn(g, 3, es);
    dgm_var *z = reparam(g, mu, logvar, eps); /* [k, n, L] */
    int64_t flat[2] = {k * n, L};
    dgm_var *logits = dgm_block_forward(m->dec, g, dgm_reshape(g, z, 2, flat));
    if (!logits)
        return dgm_last_code();
    dgm_var **xs = malloc(sizeof *xs * (size_t)k);
    if (!xs)
        return dgm_error(DGM_ENOMEM, "vae: out of memory");
    for (int i = 0; i < k; i++)
        xs[i] = x;
    dgm_var *xk = dgm_concat(g, xs, k, 0); /* [k*n, ...] */
    free(xs);
    dgm_var *log_px;
    if (m->bernoulli) {
        log_px = dgm_neg(g, sum_rest(g, dgm_bce_with_logits(g, logits, xk)));
    } else {
        float c = -logf(m->obs_std) - 0.5f * logf(2.0f * (float)M_PI);
        dgm_var *d = dgm_affine(g, dgm_sub(g, xk, logits), 1.0f / m->obs_std,
                                0.0f);
        int64_t numel = dgm_shape_numel(m->x_shape.ndim, m->x_shape.dim);
        log_px = dgm_affine(g, sum_rest(g, dgm_square(g, d)), -0.5f,
                            c * (float)numel);
    }
    int64_t kn[2] = {k, n};
    log_px = dgm_reshape(g, log_px, 2, kn);
    float half_log2pi = 0.5f * logf(2.0f * (float)M_PI);
    /* log p(z) - log q(z|x) = sum(-z^2/2 + eps^2/2 + logvar/2) */
    dgm_var *lpz = dgm_affine(g, dgm_sum(g, dgm_square(g, z), 1u << 2, false),
                              -0.5f, -half_log2pi * (float)L);
    dgm_var *lqz = dgm_sub(
        g,
        dgm_affine(g, dgm_sum(g, dgm_square(g, eps), 1u << 2, false), -0.5f,
                   -half_log2pi * (float)L),
        dgm_affine(g, dgm_sum(g, logvar, 1u << 1, false), 0.5f, 0.0f));
    dgm_var *logw = dgm_add(g, dgm_add(g, log_px, lpz), dgm_neg(g, lqz));
    *out = dgm_affine(g, dgm_logsumexp(g, logw, 0), 1.0f, -logf((float)k));
    return *out ? 0 : dgm_last_code();
}

static void destroy(void *self) { free(self); }

static const dgm_phase_desc phases[] = {
    {"train", "*",
     "[{loss: bernoulli_nll, inputs: [logits, x]},"
     " {loss: gaussian_kl, inputs: [mu, logvar]}]",
     1},
};

static const dgm_model_iface iface = {
    .phases = phases,
    .n_phases = 1,
    .create = create,
    .forward = forward,
    .sample = sample,
    .log_likelihood = log_likelihood,
    .reconstruct = reconstruct,
    .destroy = destroy,
    .latent_size = latent_size,
    .decode = decode,
    .encode = encode_slot,
};

static const dgm_plugin_desc desc = {
    DGM_PLUGIN_HEADER,
    DGM_PLUGIN_MODEL(&iface),
    .name = "vae",
    .version = "1.0",
    .summary = "variational autoencoder (outputs x, mu, logvar, z, logits)",
    .params = params,

};

DGM_PLUGIN_NAME(vae);

DGM_PLUGIN_EXPORT const dgm_plugin_desc *dgm_plugin_query(uint32_t i)
{
    return i == 0 ? &desc : NULL;
}
