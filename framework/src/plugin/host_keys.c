/* host_keys.c - the keys the host reads from a plugin's own map, which
 * the registry reserves. Constant data on its own, so that a test can
 * compile it in (libdgm does not export it). */
#include "plugin_check.h"

const char *const dgm__optimizer_host_keys[] = {
    "schedule", "warmup", "step_size", "gamma", "min_lr", "clip_norm", NULL};

const char *const dgm__loss_host_keys[] = {"loss", "inputs", "weight",
                                           "mask", "name",   NULL};

const char *const dgm__dataset_host_keys[] = {"prefetch", NULL};
const char *const dgm__metric_host_keys[] = {"corrupt", "generalization_gap",
                                             NULL};

/* Keys the host reads are for the host alone: a plugin parameter of the
 * same name would be read by both (an optimizer's `gamma` as the step
 * schedule's decay too, a loss's `weight` merged with the term's). */
const char *const *dgm__plugin_host_keys(dgm_kind k)
{
    static const char *const none[] = {NULL};
    switch (k) {
    case DGM_KIND_OPTIMIZER:
        return dgm__optimizer_host_keys;
    case DGM_KIND_LOSS:
        return dgm__loss_host_keys;
    case DGM_KIND_DATASET:
        return dgm__dataset_host_keys;
    case DGM_KIND_METRIC:
        return dgm__metric_host_keys;
    default:
        return none;
    }
}

const char *const *dgm_host_keys(dgm_kind k)
{
    return dgm__plugin_host_keys(k);
}
