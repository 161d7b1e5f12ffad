/* classification.c - loss `cross_entropy`: softmax cross-entropy of logits
 * [N, ..., C] against class ids [N, ...], per example the mean over its
 * positions (nats per token for a sequence, per image for a classifier). */
#include "dgm/dgm.h"

static dgm_var *ce_apply(void *self, dgm_graph *g, dgm_var *const *in, int n)
{
    (void)self;
    (void)n;
    dgm_var *logits = in[0], *target = in[1];
    if (!logits || !target)
        return NULL;
    const dgm_tensor *l = dgm_value(logits), *t = dgm_value(target);
    char a[96], b[96];
    bool ok = l->ndim == t->ndim + 1 && t->ndim >= 1;
    for (int i = 0; ok && i < t->ndim; i++)
        ok = l->shape[i] == t->shape[i];
    if (!ok) {
        dgm_error(DGM_ESHAPE,
                  "cross_entropy: logits %s need targets of their shape "
                  "without the class axis, got %s",
                  dgm_tensor_describe(l, a, sizeof a),
                  dgm_tensor_describe(t, b, sizeof b));
        return NULL;
    }
    dgm_var *ce = dgm_cross_entropy(g, logits, target); /* [N, ...] */
    if (!ce || t->ndim == 1)
        return ce;
    return dgm_mean(g, ce, ((1u << t->ndim) - 1u) & ~1u, false);
}

static const dgm_loss_iface ce_iface = {
    .min_inputs = 2,
    .max_inputs = 2,
    .inputs_help = "logits target",
    .apply = ce_apply,
};

static const dgm_plugin_desc desc = {
    DGM_PLUGIN_HEADER,
    DGM_PLUGIN_LOSS(&ce_iface),
    .name = "cross_entropy",
    .version = "1.0",
    .summary = "softmax cross-entropy with class ids, mean over positions",
    .params = NULL,

};

DGM_PLUGIN_NAME(cross_entropy);

DGM_PLUGIN_EXPORT const dgm_plugin_desc *dgm_plugin_query(uint32_t i)
{
    return i == 0 ? &desc : NULL;
}
