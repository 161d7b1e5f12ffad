/* dist_shard.h - which rank steps which parameter when the ranks of one
 * node split the optimizer step (ZeRO stage 1; never installed). The plan
 * is bookkeeping only: no MPI here; dist.c and dist_shm.c read it. */
#ifndef DGM_DIST_SHARD_H
#define DGM_DIST_SHARD_H

#include <stdbool.h>

#include "host_internal.h"

/* Decide, for each phase of e, whether its optimizer step is split, and
 * give every trainable parameter of a split phase one owner rank (whole
 * parameters, the largest first, each to the rank with the fewest of the
 * phase's floats so far, ties to the lowest rank: every rank computes the
 * same plan). A phase is split when there are several ranks on one node
 * (shm), DGM_MPI_SHARD is not 0, it has no clip_norm (a norm over every
 * gradient) and its optimizer and every param_groups optimizer declare
 * params_independent (ABI 2.5). DGM_EINVAL for a DGM_MPI_SHARD other than
 * 0 or 1, naming the variable. Replaces an earlier plan. */
int dgm__shard_plan(const dgm_experiment *e, int rank, int size, bool shm);
void dgm__shard_free(void);

/* Is phase p's step split? */
bool dgm__shard_on(int phase);
/* The rank that steps p, or -1: every rank (no plan, or p is in a phase
 * whose step is not split). */
int dgm__shard_owner(const dgm_param *p);
/* Phase p's parameters that this rank steps: of ph->rest (group -1) or of
 * param_groups[k] (group k), in their order. Only for a split phase. */
dgm_param **dgm__shard_mine(int phase, int group, int *n);

/* "sharded" (every phase split), "replicated" (none), "mixed". */
const char *dgm__shard_mode(void);
/* Why phase p is not split ("DGM_MPI_SHARD=0", "clip_norm", ...), or NULL
 * when it is. */
const char *dgm__shard_why(int phase);

#endif
