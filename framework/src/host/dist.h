/* dist.h - data-parallel training across processes (never installed).
 *
 * dist.c, and dist_shm.c which it calls, are the files that call MPI.
 * Under a launcher (mpirun, or srun --mpi=pmix: the launcher's environment
 * says so) the first call of dgm__dist_init initialises MPI and registers
 * its finalisation at exit;
 * a plain `dgm run`, and a build without MPI (DGM_MPI off), is one process
 * of rank 0 for which every collective below is a no-op. All ranks must
 * make the same collective calls in the same order. */
#ifndef DGM_DIST_H
#define DGM_DIST_H

#include <stdbool.h>
#include <stdint.h>

#include "dgm/graph.h"

/* 0, or DGM_EUNSUPPORTED when a launcher started several processes and
 * this build has no MPI. Idempotent. */
int dgm__dist_init(void);
int dgm__dist_rank(void);
int dgm__dist_size(void);

/* This rank's rows of a global batch of n rows: the contiguous share
 * [*off, *off + *cnt), rank r before rank r + 1. */
void dgm__dist_share(int64_t n, int64_t *off, int64_t *cnt);

/* In-place sums over the ranks. */
int dgm__dist_sum_f64(double *buf, int n);
/* The lowest rank whose flag is set, or -1: how ranks agree to stop. */
int dgm__dist_first(bool flag);
/* A failure this rank alone met where the others cannot be told (inside
 * backward, whose bucket sums they wait for, or after it): print the last
 * error naming the rank and end every rank with MPI_Abort, the one way
 * out of a collective that will never complete (the last finished
 * checkpoint is intact: checkpoints are written by rename). Returns
 * without doing anything for one process. */
void dgm__dist_abort(void);
/* Root's n bytes to every rank. */
int dgm__dist_bcast(void *buf, int64_t n, int root);
int dgm__dist_barrier(void);

/* The gradient sum over the ranks, overlapped with backward:
 * dgm__dist_grads_begin(scale) before backward, dgm__dist_grad_final as the
 * graph's hook (dgm__graph_on_grad_final) packs each gradient, scaled by
 * `scale` (this rank's share of the global batch), into flat buckets and
 * starts summing each bucket when it is full; dgm__dist_grads_end starts
 * the last, waits for all and writes the sums back into the gradients.
 * When every rank is on one node (and DGM_MPI_SHM is not 0) the gradients
 * are packed instead into this rank's region of a shared window and summed
 * there by dgm__dist_grads_end (dist_shm.c), which every rank then enters
 * even when its backward failed (rc < 0): all ranks return an error naming
 * the failed one. Parameters that are frozen or have no gradient are
 * skipped. No-ops on one rank. */
int dgm__dist_grads_begin(double scale, bool shard);
void dgm__dist_grad_final(void *ctx, dgm_param *p);
int dgm__dist_grads_end(int rc);
/* With shard (the phase's optimizer step is split between the ranks of
 * one node, dist_shard.c; ignored on the bucket path), dgm__dist_grads_end
 * leaves the sum only in the gradients this rank steps; after stepping
 * them, every rank calls dgm__dist_share_params with the phase's
 * parameters (collective), which gives every rank the new values of the
 * parameters the others own. No-op after a step that was not split. */
int dgm__dist_share_params(dgm_param *const *ps, int n);
/* Collective: the optimizer slots of every parameter another rank owns
 * copied to rank 0 (made there when missing), so that rank 0's checkpoint
 * holds every parameter's state. No-op without a split. */
int dgm__dist_gather_slots(dgm_params *ps);
/* The same without a graph: ps in order, then the wait. */
int dgm__dist_reduce_grads(dgm_param **ps, int n, double scale);

/* Seconds in the gradient sum: all of it (packing, starting, waiting),
 * and waiting after backward (what overlap did not hide). */
double dgm__dist_reduce_seconds(void);
double dgm__dist_wait_seconds(void);
/* How gradients are summed: "shm" (a shared window on one node),
 * "iallreduce" (flat buckets), "none" (one process). */
const char *dgm__dist_sum_path(void);
/* With DGM_MPI_CHECKSUM=1 in the environment, print a checksum of the
 * parameters on standard error (every rank: they must agree). */
void dgm__dist_print_checksum(const dgm_params *ps);

#endif
