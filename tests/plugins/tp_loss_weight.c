/* tp_loss_weight.c - refused by the registry: a loss declaring `weight`,
 * a key the host reads from every objective term (the term's weight). */
#include "dgm/dgm.h"

static dgm_var *apply(void *self, dgm_graph *g, dgm_var *const *in, int n)
{
    return in[0];
}

static const dgm_loss_iface iface = {
    .min_inputs = 1, .max_inputs = 1, .apply = apply};

static const dgm_param_spec params[] = {
    DGM_PARAM_FLOAT("weight", .def = "1.0", .help = "a class weight"),
    DGM_PARAM_END,
};

static const dgm_plugin_desc desc = {DGM_PLUGIN_HEADER,
                                     DGM_PLUGIN_LOSS(&iface),
                                     .name = "loss_weight",
                                     .version = "1.0",
                                     .summary = "refused: declares weight",
                                     .params = params};

DGM_PLUGIN_EXPORT const dgm_plugin_desc *dgm_plugin_query(uint32_t i)
{
    return i == 0 ? &desc : NULL;
}
