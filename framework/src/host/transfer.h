/* transfer.h - transfer learning on the host side: `init:` (parameters
 * loaded by name from safetensors files, with renames and a report) and
 * `freeze:` (never installed). */
#ifndef DGM_TRANSFER_H
#define DGM_TRANSFER_H

#include <stdbool.h>

#include "dgm/config.h"
#include "dgm/graph.h"

/* Check an experiment's `init:` list (fills defaults) and its `freeze:`
 * list; 0 or a code with the key path in the message. */
int dgm__init_validate(dgm_config *init);
int dgm__freeze_validate(dgm_config *freeze);

/* Load every source of `init` (a validated list) into ps. All sources are
 * checked before any value is copied, so a failure changes nothing. On
 * success *report (malloc'd, the caller frees) lists, per source, what was
 * loaded and from which tensor, what in the file went unused, and then
 * which parameters and buffers stayed at their initialisation. A shape or
 * dtype mismatch is DGM_ESHAPE / DGM_EDTYPE naming the model tensor and
 * the file's tensor, unless the source has skip_mismatch: true. */
int dgm__init_apply(dgm_params *ps, const dgm_config *init, char **report);

/* Mark every parameter matching one of the globs frozen (weights; with
 * bn_stats also the batch-norm running statistics, buffers, they match).
 * A glob that matches nothing is refused (DGM_ENOTFOUND) and nothing is
 * changed. */
int dgm__freeze_apply(dgm_params *ps, const dgm_config *freeze, bool bn_stats);

/* True if name matches one of the space-separated globs of text (NULL:
 * everything): the one glob matcher of `freeze:`, `init:`,
 * `param_groups:` and a model phase's parameters. */
bool dgm__globs_in(const char *text, const char *name);
/* True if name matches one of globs: a string of space-separated globs or
 * a list of them (NULL: everything). */
bool dgm__globs_match(const dgm_config *globs, const char *name);

/* Map a name through rename rules `{FROM: TO}` (a glob with one '*' whose
 * match replaces the '*' of TO, a prefix ending in '.', or an exact name);
 * the first rule that matches wins; no match keeps the name. out has n
 * bytes. */
void dgm__rename(const dgm_config *rules, const char *name, char *out,
                 size_t n);

#endif
