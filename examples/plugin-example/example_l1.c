/* example_l1.c - the `example_l1` loss, an out-of-tree plugin example:
 * mean absolute error per example, inputs [prediction, target] of one
 * shape [N, ...] -> [N], the mean over the non-batch dims of |p - t|. */
#include "dgm/dgm.h"

/* Refuse inputs whose shapes differ, naming both (the ops would broadcast
 * silently, which is never what a per-example loss wants). */
static int check_shapes(const dgm_tensor *p, const dgm_tensor *t)
{
    bool same = p->ndim == t->ndim && p->ndim >= 1;
    for (int i = 0; same && i < p->ndim; i++)
        same = p->shape[i] == t->shape[i];
    if (same)
        return 0;
    char a[96], b[96];
    return dgm_error(DGM_ESHAPE,
                     "example_l1: prediction %s and target %s must have one "
                     "shape [N, ...]",
                     dgm_tensor_describe(p, a, sizeof a),
                     dgm_tensor_describe(t, b, sizeof b));
}

/* in[0] prediction [N, ...], in[1] target [N, ...] -> [N]. */
static dgm_var *l1_apply(void *self, dgm_graph *g, dgm_var *const *in, int n)
{
    if (!in[0] || !in[1])
        return NULL; /* an earlier op failed and set the message */
    if (check_shapes(dgm_value(in[0]), dgm_value(in[1])) < 0)
        return NULL;
    dgm_var *err = dgm_abs(g, dgm_sub(g, in[0], in[1]));
    int ndim = dgm_value(in[0])->ndim;
    if (ndim == 1)
        return err; /* one value per example already */
    uint32_t non_batch = 0;
    for (int i = 1; i < ndim; i++)
        non_batch |= 1u << i;
    return dgm_mean(g, err, non_batch, false);
}

/* No parameters and no state: create and destroy may be NULL for a loss. */
static const dgm_loss_iface iface = {
    .min_inputs = 2,
    .max_inputs = 2,
    .inputs_help = "prediction target",
    .apply = l1_apply,
};

static const dgm_plugin_desc desc = {
    DGM_PLUGIN_HEADER,
    DGM_PLUGIN_LOSS(&iface),
    .name = "example_l1",
    .version = "1.0",
    .summary = "mean absolute error per example (out-of-tree example)",
    .params = NULL,
};

/* Lists the name where dgm reads it without loading the file, so only
 * an experiment that uses example_l1 loads this library. */
DGM_PLUGIN_NAME(example_l1);

DGM_PLUGIN_EXPORT const dgm_plugin_desc *dgm_plugin_query(uint32_t index)
{
    return index == 0 ? &desc : NULL;
}
