/* tool_config.h - what the CLI's tools share in reading their sections of
 * an experiment (sweep:, scheduler:, search:) beyond libdgm's config API
 * (never installed). */
#ifndef DGM_TOOL_CONFIG_H
#define DGM_TOOL_CONFIG_H

#include "dgm/config.h"

/* 0 if every key of the map `sec` is one of keys[0..n); else DGM_EKEY at
 * the first other key: "unknown <what>key 'k' (did you mean 'x'?) (k0,
 * k1, ...)", `what` being "" or a word and a space ("sweep "). */
int dgm__tool_known_keys(const dgm_config *sec, const char *what,
                         const char *const *keys, int n);

#endif
