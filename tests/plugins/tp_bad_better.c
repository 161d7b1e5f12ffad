/* tp_bad_better.c - refused by the registry: a metric whose direction
 * table holds a value that is no dgm_better. */
#include <stdlib.h>

#include "dgm/dgm.h"

static int create(void **self, const dgm_config *cfg)
{
    (void)cfg;
    *self = NULL;
    return 0;
}

static int evaluate(void *self, dgm_eval *ev, dgm_results *out)
{
    (void)self, (void)ev;
    return dgm_results_set(out, "score", 1);
}

static const dgm_metric_figure figures[] = {
    {"score", DGM_BETTER_HIGHER}, {"score_*", (dgm_better)7}, {NULL}};

static const dgm_metric_iface iface = {.create = create,
                                       .evaluate = evaluate,
                                       .destroy = free,
                                       .figures = figures};

static const dgm_plugin_desc desc = {
    DGM_PLUGIN_HEADER, DGM_PLUGIN_METRIC(&iface), .name = "bad_better",
    .version = "1.0", .summary = "refused"};

DGM_PLUGIN_EXPORT const dgm_plugin_desc *dgm_plugin_query(uint32_t i)
{
    return i == 0 ? &desc : NULL;
}
