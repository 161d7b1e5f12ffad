/* tp_short_iface.c - refused by the registry: a loss whose iface_size
 * stops before the `check` slot, as a descriptor written without
 * DGM_PLUGIN_LOSS (or for a shorter interface) has it; the host must not
 * read past what the plugin declared. */
#include <stddef.h>

#include "dgm/dgm.h"

static dgm_var *apply(void *self, dgm_graph *g, dgm_var *const *in, int n)
{
    return in[0];
}

static const dgm_loss_iface iface = {
    .min_inputs = 1, .max_inputs = 1, .apply = apply};

static const dgm_plugin_desc desc = {DGM_PLUGIN_HEADER,
                                     .kind = DGM_KIND_LOSS,
                                     .name = "short_iface",
                                     .version = "1.0",
                                     .summary = "refused",
                                     .iface = {.loss = &iface},
                                     .iface_size =
                                         offsetof(dgm_loss_iface, check)};

DGM_PLUGIN_EXPORT const dgm_plugin_desc *dgm_plugin_query(uint32_t i)
{
    return i == 0 ? &desc : NULL;
}
