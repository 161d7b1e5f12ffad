/* tp_check.c - a loss with a `check` slot: `limit` above 10 is refused
 * with a located message, `limit` 7 with a code but no message (a plugin
 * bug the host must still report). */
#include "dgm/dgm.h"

static int check(const dgm_config *cfg)
{
    double limit = dgm_cfg_float(cfg, "limit");
    if (limit == 7)
        return DGM_ECONFIG;
    if (limit > 10)
        return dgm_cfg_error(cfg, "limit", DGM_ERANGE, "at most 10, got %g",
                             limit);
    return 0;
}

static dgm_var *apply(void *self, dgm_graph *g, dgm_var *const *in, int n)
{
    return in[0];
}

static const dgm_loss_iface iface = {
    .min_inputs = 1, .max_inputs = 1, .apply = apply, .check = check};

static const dgm_param_spec params[] = {
    DGM_PARAM_FLOAT("limit", .def = "1.0", .help = "at most 10"),
    DGM_PARAM_END,
};

static const dgm_plugin_desc descs[] = {
    {DGM_PLUGIN_HEADER, DGM_PLUGIN_LOSS(&iface), .name = "check_loss",
     .version = "1.0", .summary = "a loss with a config check",
     .params = params},
};

DGM_PLUGIN_EXPORT const dgm_plugin_desc *dgm_plugin_query(uint32_t i)
{
    return i < 1 ? &descs[i] : NULL;
}
