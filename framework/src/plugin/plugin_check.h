/* plugin_check.h - what the host asks of a plugin's schema and config
 * beyond the ABI: the keys it reads from a plugin's own map (reserved, so
 * a schema may not declare them) and the kinds' optional config checks
 * (never installed). */
#ifndef DGM_PLUGIN_CHECK_H
#define DGM_PLUGIN_CHECK_H

#include "dgm/config.h"
#include "dgm/plugin.h"

/* The keys of an optimizer's map that the host reads for its learning-rate
 * schedule (host/schedule.c): "schedule", "warmup", "step_size", "gamma",
 * "min_lr", "clip_norm" (NULL-ended). */
extern const char *const dgm__optimizer_host_keys[];
/* The keys of a loss term that the host reads: "loss", "inputs",
 * "weight", "mask", "name" (NULL-ended). */
extern const char *const dgm__loss_host_keys[];

/* The keys the host reads from the map of a plugin of kind k besides
 * "plugin" (every kind's), NULL-ended: an optimizer's schedule keys
 * (dgm__optimizer_host_keys), a loss term's (dgm__loss_host_keys), none
 * for the other kinds. The registry refuses a plugin whose schema
 * declares one of them or "plugin". */
const char *const *dgm__plugin_host_keys(dgm_kind k);

/* Call the plugin's `check` slot (ABI 1.2) on its validated map; 0 when
 * it has none. A refusal keeps the plugin's message, prefixed with
 * "<kind> '<name>': ". */
int dgm__plugin_check(const dgm_plugin_desc *d, const dgm_config *cfg);

#endif
