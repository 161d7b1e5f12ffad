/* plugin_check.h - what the host asks of a plugin's schema and config
 * beyond the ABI: the keys it reads from a plugin's own map (reserved, so
 * a schema may not declare them) and the kinds' optional config checks
 * (never installed). */
#ifndef DGM_PLUGIN_CHECK_H
#define DGM_PLUGIN_CHECK_H

#include <stddef.h>

#include "dgm/config.h"
#include "dgm/plugin.h"

/* The keys of an optimizer's map that the host reads for its learning-rate
 * schedule (host/schedule.c): "schedule", "warmup", "step_size", "gamma",
 * "min_lr", "clip_norm" (NULL-ended). */
extern const char *const dgm__optimizer_host_keys[];
/* The keys of a loss term that the host reads: "loss", "inputs",
 * "weight", "mask", "name" (NULL-ended). */
extern const char *const dgm__loss_host_keys[];
/* The keys of a dataset's map that the host reads besides the ones its
 * schema declares: "prefetch" (the trainer's loader, host/loader.c). */
extern const char *const dgm__dataset_host_keys[];
/* The keys of a metric's map that the host reads: "corrupt" (the
 * robustness corruptions, host/corrupt.c), "generalization_gap"
 * (host/gap.c). */
extern const char *const dgm__metric_host_keys[];

/* The keys the host reads from the map of a plugin of kind k besides
 * "plugin" (every kind's), NULL-ended: an optimizer's schedule keys
 * (dgm__optimizer_host_keys), a loss term's (dgm__loss_host_keys), a
 * dataset's (dgm__dataset_host_keys) and a metric's (dgm__metric_host_keys),
 * none for the other kinds. The registry
 * refuses a plugin whose schema declares one of them or "plugin". */
const char *const *dgm__plugin_host_keys(dgm_kind k);

/* The public DGM_PLUGIN_SLOT_END and DGM_PLUGIN_HAS_SLOT under the
 * host's names. A slot added to an interface in a later minor ABI is read
 * only when DGM__HAS_SLOT. */
#define DGM__SLOT_END(type, slot) DGM_PLUGIN_SLOT_END(type, slot)
#define DGM__HAS_SLOT(desc, type, slot) DGM_PLUGIN_HAS_SLOT(desc, type, slot)

/* Call the plugin's `check` slot on its validated map; 0 when
 * it has none. A refusal keeps the plugin's message, prefixed with
 * "<kind> '<name>': ". */
int dgm__plugin_check(const dgm_plugin_desc *d, const dgm_config *cfg);

/* Check descriptor idx of the file `path`, the ABI fields first (major,
 * minor, size, layout) and the rest only if the descriptor is large
 * enough to hold it: name, kind, schema, reserved keys, interface size
 * and the slots the host calls unchecked. 0, or a DGM_E* code with a
 * message naming the file (desc_check.c). */
int dgm__plugin_desc_check(const char *path, uint32_t idx,
                           const dgm_plugin_desc *d);

#endif
