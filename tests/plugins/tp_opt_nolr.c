/* tp_opt_nolr.c - refused by the registry: an optimizer without `lr`,
 * the base rate the host reads to apply its schedules. */
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
    DGM_PARAM_FLOAT("rate", .def = "0.1", DGM_GE(0),
                    .help = "not what the host reads"),
    DGM_PARAM_END,
};

static const dgm_plugin_desc desc = {
    DGM_PLUGIN_HEADER, DGM_PLUGIN_OPTIMIZER(&iface), .name = "opt_nolr",
    .version = "1.0",  .summary = "refused: no lr",  .params = params};

DGM_PLUGIN_EXPORT const dgm_plugin_desc *dgm_plugin_query(uint32_t i)
{
    return i == 0 ? &desc : NULL;
}
