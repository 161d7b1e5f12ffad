/* gan.c - the GAN losses `gan_{ns,minimax,hinge,wasserstein,lsgan}_{d,g}`:
 * discriminator and generator objectives on logits / critic values. */
#include "dgm/dgm.h"

typedef enum gan_kind { NS, MINIMAX, HINGE, WASSERSTEIN, LSGAN } gan_kind;

/* Whether d is [N] or [N, 1]; otherwise DGM_ESHAPE naming loss and input.
 * Both inputs are checked before any op is recorded, so a refused call
 * leaves nothing on the tape. */
static int check_input(const char *loss, const char *what, const dgm_var *d)
{
    const dgm_tensor *t = dgm_value(d);
    if (t->ndim == 1 || (t->ndim == 2 && t->shape[1] == 1))
        return 0;
    char buf[128];
    return dgm_error(DGM_ESHAPE,
                     "%s: %s has shape %s; expected [N] or [N, 1] (one "
                     "logit per example)",
                     loss, what, dgm_tensor_describe(t, buf, sizeof buf));
}

/* [N] or [N, 1] -> [N] */
static dgm_var *flat(dgm_graph *g, dgm_var *d)
{
    const dgm_tensor *t = dgm_value(d);
    return t->ndim == 1 ? d : dgm_reshape(g, d, 1, (int64_t[]){t->shape[0]});
}

/* 0.5 * (x - target)^2 */
static dgm_var *half_sq(dgm_graph *g, dgm_var *x, float target)
{
    return dgm_affine(g, dgm_square(g, dgm_affine(g, x, 1.0f, -target)),
                      0.5f, 0.0f);
}

/* The discriminator's term on real logits. softplus(-x) = -log sigmoid(x),
 * computed stably by the op (no log of an underflowed sigmoid). */
static dgm_var *d_real_term(dgm_graph *g, gan_kind k, dgm_var *x)
{
    switch (k) {
    case NS:
    case MINIMAX: return dgm_softplus(g, dgm_neg(g, x));
    case HINGE: return dgm_relu(g, dgm_affine(g, x, -1.0f, 1.0f));
    case WASSERSTEIN: return dgm_neg(g, x);
    case LSGAN: return half_sq(g, x, 1.0f);
    }
    return NULL;
}

/* The discriminator's term on fake logits: softplus(x) = -log(1 - D). */
static dgm_var *d_fake_term(dgm_graph *g, gan_kind k, dgm_var *x)
{
    switch (k) {
    case NS:
    case MINIMAX: return dgm_softplus(g, x);
    case HINGE: return dgm_relu(g, dgm_affine(g, x, 1.0f, 1.0f));
    case WASSERSTEIN: return x;
    case LSGAN: return half_sq(g, x, 0.0f);
    }
    return NULL;
}

static dgm_var *g_term(dgm_graph *g, gan_kind k, dgm_var *x)
{
    switch (k) {
    case NS: return dgm_softplus(g, dgm_neg(g, x));
    case MINIMAX: return dgm_neg(g, dgm_softplus(g, x)); /* log(1 - D) */
    case HINGE:
    case WASSERSTEIN: return dgm_neg(g, x);
    case LSGAN: return half_sq(g, x, 1.0f);
    }
    return NULL;
}

/* Per example [N] when both batches have N examples; otherwise the terms
 * cannot be paired and the result is the scalar mean(real) + mean(fake). */
static dgm_var *apply_d(dgm_graph *g, gan_kind k, const char *loss,
                        dgm_var *const *in, int n)
{
    if (n != 2) {
        dgm_error(DGM_EINVAL, "%s: takes 2 inputs (d_real d_fake), got %d",
                  loss, n);
        return NULL;
    }
    if (!in[0] || !in[1])
        return NULL; /* as the ops: a NULL input keeps its error */
    if (check_input(loss, "d_real", in[0]) < 0 ||
        check_input(loss, "d_fake", in[1]) < 0)
        return NULL;
    dgm_var *r = flat(g, in[0]), *f = flat(g, in[1]);
    if (!r || !f)
        return NULL;
    dgm_var *tr = d_real_term(g, k, r), *tf = d_fake_term(g, k, f);
    if (!tr || !tf)
        return NULL;
    if (dgm_value(r)->shape[0] == dgm_value(f)->shape[0])
        return dgm_add(g, tr, tf);
    return dgm_add(g, dgm_mean_all(g, tr), dgm_mean_all(g, tf));
}

static dgm_var *apply_g(dgm_graph *g, gan_kind k, const char *loss,
                        dgm_var *const *in, int n)
{
    if (n != 1) {
        dgm_error(DGM_EINVAL, "%s: takes 1 input (d_fake), got %d", loss, n);
        return NULL;
    }
    if (!in[0] || check_input(loss, "d_fake", in[0]) < 0)
        return NULL;
    return g_term(g, k, flat(g, in[0]));
}

/* One apply per descriptor: a loss without create() gets no self. */
#define GAN_PAIR(lower, K)                                                 \
    static dgm_var *lower##_d_apply(void *self, dgm_graph *g,              \
                                    dgm_var *const *in, int n)             \
    {                                                                      \
        (void)self;                                                        \
        return apply_d(g, K, "gan_" #lower "_d", in, n);                   \
    }                                                                      \
    static dgm_var *lower##_g_apply(void *self, dgm_graph *g,              \
                                    dgm_var *const *in, int n)             \
    {                                                                      \
        (void)self;                                                        \
        return apply_g(g, K, "gan_" #lower "_g", in, n);                   \
    }                                                                      \
    static const dgm_loss_iface lower##_d_iface = {                        \
        .min_inputs = 2, .max_inputs = 2, .inputs_help = "d_real d_fake",  \
        .apply = lower##_d_apply};                                         \
    static const dgm_loss_iface lower##_g_iface = {                        \
        .min_inputs = 1, .max_inputs = 1, .inputs_help = "d_fake",         \
        .apply = lower##_g_apply};

GAN_PAIR(ns, NS)
GAN_PAIR(minimax, MINIMAX)
GAN_PAIR(hinge, HINGE)
GAN_PAIR(wasserstein, WASSERSTEIN)
GAN_PAIR(lsgan, LSGAN)

#define UNPAIRED " (if d_real and d_fake differ in N: the scalar " \
                 "mean(real part) + mean(fake part))"

#define DESC(nm, sum, ifc)                                                     \
    {                                                                          \
        DGM_PLUGIN_HEADER, DGM_PLUGIN_LOSS(&ifc),                              \
            .name = nm, .version = "1.0", .summary = sum, .params = NULL       \
    }

static const dgm_plugin_desc descs[] = {
    DESC("gan_ns_d",
         "GAN discriminator BCE on logits: softplus(-d_real) + "
         "softplus(d_fake)" UNPAIRED,
         ns_d_iface),
    DESC("gan_ns_g",
         "non-saturating GAN generator loss: softplus(-d_fake)",
         ns_g_iface),
    DESC("gan_minimax_d",
         "minimax GAN discriminator (same as gan_ns_d): softplus(-d_real) + "
         "softplus(d_fake)" UNPAIRED,
         minimax_d_iface),
    DESC("gan_minimax_g",
         "minimax GAN generator loss log(1 - D): -softplus(d_fake)",
         minimax_g_iface),
    DESC("gan_hinge_d",
         "hinge GAN discriminator: relu(1 - d_real) + relu(1 + d_fake)"
         UNPAIRED,
         hinge_d_iface),
    DESC("gan_hinge_g", "hinge GAN generator loss: -d_fake", hinge_g_iface),
    DESC("gan_wasserstein_d",
         "WGAN critic loss: d_fake - d_real" UNPAIRED, wasserstein_d_iface),
    DESC("gan_wasserstein_g", "WGAN generator loss: -d_fake",
         wasserstein_g_iface),
    DESC("gan_lsgan_d",
         "least-squares GAN discriminator: 0.5 ((d_real - 1)^2 + d_fake^2)"
         UNPAIRED,
         lsgan_d_iface),
    DESC("gan_lsgan_g",
         "least-squares GAN generator loss: 0.5 (d_fake - 1)^2",
         lsgan_g_iface),
};

DGM_PLUGIN_NAME(gan_ns_d);
DGM_PLUGIN_NAME(gan_ns_g);
DGM_PLUGIN_NAME(gan_minimax_d);
DGM_PLUGIN_NAME(gan_minimax_g);
DGM_PLUGIN_NAME(gan_hinge_d);
DGM_PLUGIN_NAME(gan_hinge_g);
DGM_PLUGIN_NAME(gan_wasserstein_d);
DGM_PLUGIN_NAME(gan_wasserstein_g);
DGM_PLUGIN_NAME(gan_lsgan_d);
DGM_PLUGIN_NAME(gan_lsgan_g);

DGM_PLUGIN_EXPORT const dgm_plugin_desc *dgm_plugin_query(uint32_t i)
{
    return i < sizeof descs / sizeof descs[0] ? &descs[i] : NULL;
}
