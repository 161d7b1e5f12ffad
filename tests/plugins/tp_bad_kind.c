/* tp_bad_kind.c - refused by the registry: a descriptor with kind 99 (out of
 * range). */
#include "dgm/dgm.h"

static dgm_var *apply(void *self, dgm_graph *g, dgm_var *const *in, int n)
{
    return in[0];
}

static const dgm_loss_iface iface = {
    .min_inputs = 1, .max_inputs = 1, .apply = apply};

static const dgm_plugin_desc desc = {
    DGM_PLUGIN_HEADER,         .kind = (dgm_kind)99, .name = "tp_bad_kind",
    .version = "1.0",          .summary = "refused", .iface = {.loss = &iface},
    .iface_size = sizeof iface};

DGM_PLUGIN_EXPORT const dgm_plugin_desc *dgm_plugin_query(uint32_t i)
{
    return i == 0 ? &desc : NULL;
}
