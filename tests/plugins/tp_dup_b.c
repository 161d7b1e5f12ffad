/* tp_dup_b.c - one of two files that both define a plugin named
 * "dup_thing": the name becomes ambiguous. */
#include "dgm/dgm.h"

static dgm_var *apply(void *self, dgm_graph *g, dgm_var *const *in, int n)
{
    return in[0];
}

static const dgm_loss_iface iface = {
    .min_inputs = 1, .max_inputs = 1, .apply = apply};

static const dgm_plugin_desc desc = {DGM_PLUGIN_HEADER, DGM_PLUGIN_LOSS(&iface),
                                     .name = "dup_thing", .version = "1.0",
                                     .summary = "duplicate name (b)"};
/* Listed, so a registry on demand loads both files when asked for it. */
DGM_PLUGIN_NAME(dup_thing);

DGM_PLUGIN_EXPORT const dgm_plugin_desc *dgm_plugin_query(uint32_t i)
{
    return i == 0 ? &desc : NULL;
}
