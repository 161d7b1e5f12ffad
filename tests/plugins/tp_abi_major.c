/* tp_abi_major.c - refused by the registry: a plugin built for ABI 3.0 (major
 * mismatch). */
#include "dgm/dgm.h"

static dgm_var *apply(void *self, dgm_graph *g, dgm_var *const *in, int n)
{
    return in[0];
}

static const dgm_loss_iface iface = {
    .min_inputs = 1, .max_inputs = 1, .apply = apply};

static const dgm_plugin_desc desc = {.abi_major = DGM_ABI_MAJOR + 1,
                                     .abi_minor = 0,
                                     .size = sizeof(dgm_plugin_desc),
                                     DGM_PLUGIN_LOSS(&iface),
                                     .name = "tp_abi_major",
                                     .version = "1.0",
                                     .summary = "refused"};

DGM_PLUGIN_EXPORT const dgm_plugin_desc *dgm_plugin_query(uint32_t i)
{
    return i == 0 ? &desc : NULL;
}
