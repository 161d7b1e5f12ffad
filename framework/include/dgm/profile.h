/* dgm/profile.h - where a step's time goes, op by op.
 *
 * When profiling is on, every op of every graph adds its time, its call
 * count and (for the ops that do arithmetic worth counting: GEMMs,
 * convolutions, recurrent layers, both attention ops: the packed one
 * counts its 2 forward and 4 backward GEMMs over the whole [T, T]) its
 * floating-point operations to one process-wide table, forward and
 * backward apart; the host adds named sections that are not ops (the
 * optimizer's update). Off, an op pays one predictable branch. `dgm run
 * --profile` or DGM_PROFILE=1 turns it on for a run and writes the table
 * to the run directory; a program
 * or a test does it by hand:
 *
 *     dgm_profile_enable(true);
 *     ... build and backward a few steps ...
 *     dgm_profile_row r;
 *     if (dgm_profile_get("linear", &r) == 0)
 *         printf("%.1f GFLOP/s\n", r.flops[0] / r.seconds[0] * 1e-9);
 *     dgm_profile_write(stdout, steps);
 *
 * A forward op's time runs from the previous event on its graph (the
 * previous op, a leaf, dgm_graph_reset) to its own node: it includes the
 * op's checks and allocation, and any plugin code between two ops counts
 * toward the second. A backward op's time is its backward rule alone.
 * The table is not thread-safe: profile one training loop per process.
 */
#ifndef DGM_PROFILE_H
#define DGM_PROFILE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "dgm/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dgm_profile_row {
    const char *name; /* the op's name (ops.def) or the section's */
    int64_t calls[2]; /* [0] forward, [1] backward */
    double seconds[2];
    double flops[2]; /* 0 for ops whose FLOPs are not counted */
} dgm_profile_row;

/* Turn collection on or off (the table is kept). DGM_PROFILE=1 in the
 * environment turns it on when the first graph is made. */
DGM_API void dgm_profile_enable(bool on);
DGM_API bool dgm_profile_enabled(void);
/* Forget everything collected so far (e.g. after warm-up steps). */
DGM_API void dgm_profile_reset(void);
/* The row of an op or section by name: 0, or DGM_ENOTFOUND when the name
 * has no calls yet (or names nothing). */
DGM_API int dgm_profile_get(const char *name, dgm_profile_row *row);
/* Add `seconds` to the named section (not an op; counted as one forward
 * call). The name is copied; up to 16 sections. No-op when off. */
DGM_API void dgm_profile_add(const char *name, double seconds);
/* The table, slowest first: per op, calls and milliseconds (per step when
 * steps > 0), GFLOP/s, forward and backward, and its share of the total.
 * Returns 0 or DGM_EIO. */
DGM_API int dgm_profile_write(FILE *f, int64_t steps);

#ifdef __cplusplus
}
#endif

#endif
