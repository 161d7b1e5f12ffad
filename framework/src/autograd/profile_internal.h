/* profile_internal.h - what the tape tells the per-op profile (never
 * installed). Callers test dgm__profile_on first, so a step without the
 * profile pays one branch per op. */
#ifndef DGM_PROFILE_INTERNAL_H
#define DGM_PROFILE_INTERNAL_H

#include <stdbool.h>

#include "graph_internal.h"

extern bool dgm__profile_on;

/* Monotonic seconds. */
double dgm__profile_now(void);
/* An op's forward: its output, its inputs, the seconds it took. */
void dgm__profile_forward(const dgm__op *op, const dgm_tensor *out,
                          dgm_var *const *in, int n_in, double seconds);
/* A node's backward rule took `seconds`. */
void dgm__profile_backward(const dgm_var *node, double seconds);
/* FLOPs an op counts itself (dir 0 forward, 1 backward), for ops whose
 * count the shapes alone do not give (attention: causal or not). */
void dgm__profile_add_flops(dgm__op_id id, int dir, double flops);

#endif
