/* tp_bad_default.c - refused by the registry when it loads: a default
 * outside the parameter's own bounds (lr > 0 with default 0), which no
 * experiment has to leave out first for the bug to show. */
#include "dgm/dgm.h"

static dgm_var *apply(void *self, dgm_graph *g, dgm_var *const *in, int n)
{
    return in[0];
}

static const dgm_loss_iface iface = {
    .min_inputs = 1, .max_inputs = 1, .apply = apply};

static const dgm_param_spec params[] = {
    DGM_PARAM_FLOAT("scale", .def = "0", DGM_GT(0), .help = "a factor"),
    DGM_PARAM_END,
};

static const dgm_plugin_desc desc = {
    DGM_PLUGIN_HEADER, DGM_PLUGIN_LOSS(&iface), .name = "bad_default",
    .version = "1.0",  .summary = "refused",    .params = params};

DGM_PLUGIN_EXPORT const dgm_plugin_desc *dgm_plugin_query(uint32_t i)
{
    return i == 0 ? &desc : NULL;
}
