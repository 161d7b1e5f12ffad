/* tp_ds_prefetch.c - refused by the registry: a dataset declaring
 * `prefetch`, which the host reads from every dataset's map. */
#include <stdlib.h>

#include "dgm/dgm.h"

static const dgm_param_spec params[] = {
    DGM_PARAM_INT("prefetch", .def = "1", .help = "clashes with the host's"),
    DGM_PARAM_END,
};

static int create(void **self, const dgm_config *cfg)
{
    (void)cfg;
    *self = NULL;
    return 0;
}

static int info(void *self, dgm_data_info *out)
{
    (void)self;
    (void)out;
    return 0;
}

static int get(void *self, dgm_split split, const int64_t *idx,
               dgm_batch *batch, dgm_rng *rng)
{
    (void)self;
    (void)split;
    (void)idx;
    (void)batch;
    (void)rng;
    return 0;
}

static const dgm_dataset_iface iface = {
    .create = create, .info = info, .get = get, .destroy = free};

static const dgm_plugin_desc desc = {
    DGM_PLUGIN_HEADER, DGM_PLUGIN_DATASET(&iface), .name = "ds_prefetch",
    .version = "1.0",  .summary = "refused",       .params = params};

DGM_PLUGIN_EXPORT const dgm_plugin_desc *dgm_plugin_query(uint32_t i)
{
    return i == 0 ? &desc : NULL;
}
