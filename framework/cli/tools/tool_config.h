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

/* Scalars a tool makes (drawn or proposed values), each placed where a
 * node of the experiment stands (for messages), and kept until the tool's
 * object is freed: zero-initialise, add with dgm__tool_scalar, free all
 * with dgm__tool_scalars_free. */
typedef struct dgm__tool_scalars {
    dgm_config **made;
    int n, cap;
} dgm__tool_scalars;

/* A scalar of `text` placed at `at`, kept in s; NULL when out of memory. */
const dgm_config *dgm__tool_scalar(dgm__tool_scalars *s, const dgm_config *at,
                                   const char *text);
void dgm__tool_scalars_free(dgm__tool_scalars *s);

#endif
