/* tp_bad_param.c - refused: the second descriptor's schema has a param
 * of invalid type 42, so the whole file (its good first plugin too) is
 * refused. */
#include "dgm/dgm.h"

static dgm_var *apply(void *self, dgm_graph *g, dgm_var *const *in, int n)
{
    return in[0];
}

static const dgm_loss_iface iface = {
    .min_inputs = 1, .max_inputs = 1, .apply = apply};

static const dgm_param_spec params[] = {
    DGM_PARAM_INT("fine", .def = "1", .help = "a valid param"),
    {.name = "broken",
     .type = (dgm_ptype)42,
     .def = "1",
     .help = "invalid type"},
    DGM_PARAM_END,
};

static const dgm_plugin_desc descs[] = {
    {DGM_PLUGIN_HEADER, DGM_PLUGIN_LOSS(&iface), .name = "bad_param_ok",
     .version = "1.0", .summary = "valid"},
    {DGM_PLUGIN_HEADER, DGM_PLUGIN_LOSS(&iface), .name = "bad_param",
     .version = "1.0", .summary = "refused", .params = params},
};

DGM_PLUGIN_EXPORT const dgm_plugin_desc *dgm_plugin_query(uint32_t i)
{
    return i < 2 ? &descs[i] : NULL;
}
