/* tp_create_fails.c - an optimizer whose create() always fails with
 * DGM_ERANGE and a message: the message must survive the trip from the
 * plugin through libdgm's last-error buffer to the caller. */
#include "dgm/dgm.h"

static int create(void **self, const dgm_config *cfg)
{
    *self = NULL;
    return dgm_error(DGM_ERANGE, "create_fails: lr must be positive, got -1");
}

static int step(void *self, dgm_param *const *ps, int n, double lr, int64_t t)
{
    return 0;
}

static void destroy(void *self) {}

static const dgm_optimizer_iface iface = {
    .create = create, .step = step, .destroy = destroy};

/* Every optimizer declares `lr`: the host reads it. */
static const dgm_param_spec params[] = {
    DGM_PARAM_FLOAT("lr", .def = "0.1", .help = "base learning rate"),
    DGM_PARAM_END,
};

static const dgm_plugin_desc desc = {DGM_PLUGIN_HEADER,
                                     DGM_PLUGIN_OPTIMIZER(&iface),
                                     .name = "create_fails",
                                     .version = "1.0",
                                     .summary = "create() always fails",
                                     .params = params};

DGM_PLUGIN_EXPORT const dgm_plugin_desc *dgm_plugin_query(uint32_t i)
{
    return i == 0 ? &desc : NULL;
}
