/* tp_opt_gamma.c - refused by the registry: an optimizer declaring
 * `gamma`, a key the host reads from every optimizer's map (the step
 * schedule's decay), so one value would mean two things. */
#include "dgm/dgm.h"

static int create(void **self, const dgm_config *cfg)
{
    *self = NULL;
    return 0;
}

static int step(void *self, dgm_param *const *ps, int n, double lr, int64_t t)
{
    return 0;
}

static void destroy(void *self) {}

static const dgm_optimizer_iface iface = {
    .create = create, .step = step, .destroy = destroy};

static const dgm_param_spec params[] = {
    DGM_PARAM_FLOAT("lr", .def = "0.1", DGM_GE(0),
                    .help = "base learning rate"),
    DGM_PARAM_FLOAT("gamma", .def = "0.9", DGM_GE(0), DGM_LE(1),
                    .help = "the plugin's own decay"),
    DGM_PARAM_END,
};

static const dgm_plugin_desc desc = {DGM_PLUGIN_HEADER,
                                     DGM_PLUGIN_OPTIMIZER(&iface),
                                     .name = "opt_gamma",
                                     .version = "1.0",
                                     .summary = "refused: declares gamma",
                                     .params = params};

DGM_PLUGIN_EXPORT const dgm_plugin_desc *dgm_plugin_query(uint32_t i)
{
    return i == 0 ? &desc : NULL;
}
