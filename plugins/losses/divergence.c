/* divergence.c - loss `gaussian_kl`: KL(N(mu, exp(logvar)) || N(0, I))
 * per example, the VAE's regulariser (beta-VAE is its weight). */
#include "dgm/dgm.h"

/* -0.5 * sum(1 + logvar - mu^2 - exp(logvar)) over the latent axes. */
static dgm_var *kl_apply(void *self, dgm_graph *g, dgm_var *const *in, int n)
{
    dgm_var *mu = in[0], *lv = in[1];
    dgm_var *t = dgm_sub(g, dgm_affine(g, lv, 1.0f, 1.0f),
                         dgm_add(g, dgm_square(g, mu), dgm_exp(g, lv)));
    if (!t)
        return NULL;
    int nd = dgm_value(t)->ndim;
    dgm_var *s = nd > 1 ? dgm_sum(g, t, ((1u << nd) - 1u) & ~1u, false) : t;
    return dgm_affine(g, s, -0.5f, 0.0f);
}

static const dgm_loss_iface kl_iface = {
    .min_inputs = 2,
    .max_inputs = 2,
    .inputs_help = "mu logvar",
    .apply = kl_apply,
};

static const dgm_plugin_desc desc = {
    DGM_PLUGIN_HEADER,
    DGM_PLUGIN_LOSS(&kl_iface),
    .name = "gaussian_kl",
    .version = "1.0",
    .summary = "KL divergence of a diagonal Gaussian to N(0, I), per example",
    .params = NULL,

};

DGM_PLUGIN_NAME(gaussian_kl);

DGM_PLUGIN_EXPORT const dgm_plugin_desc *dgm_plugin_query(uint32_t i)
{
    return i == 0 ? &desc : NULL;
}
