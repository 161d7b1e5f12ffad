/* dist_shm.h - the gradient sum of ranks that share one node, through an
 * MPI-3 shared window (never installed). dist.c chooses this path when
 * every rank of the job is on one node and calls it; nothing here calls
 * back into dist.c. Every function marked collective must be called by
 * every rank at the same point. */
#ifndef DGM_DIST_SHM_H
#define DGM_DIST_SHM_H

#include <stdbool.h>
#include <stdint.h>

#include "dgm/graph.h"

/* Collective over MPI_COMM_WORLD (this process is rank `rank` of `size`):
 * 1 when every rank is on one node and DGM_MPI_SHM is not 0 (the same
 * answer on every rank), 0 for the bucket path, DGM_EINVAL for a
 * DGM_MPI_SHM other than 0 or 1. Without MPI, 0. */
int dgm__shm_init(int rank, int size);

/* One step's sum: dgm__shm_begin(scale, shard), dgm__shm_pack(p) for each
 * gradient as it becomes final (written, times scale, into this rank's
 * region of the window), then dgm__shm_end. pack returns 0 or the error it
 * met (out of memory); after an error the step's later packs do nothing. */
void dgm__shm_begin(float scale, bool shard);
int dgm__shm_pack(dgm_param *p);
/* Collective. rc is this rank's state so far (0, or the error of a pack or
 * of backward): every rank learns whether some rank failed and then
 * returns an error naming it, without summing. Otherwise the ranks agree
 * on the flat gradient's size (the window grows, collectively, when it is
 * larger than before), each sums its slice over every rank's region in
 * rank order, and every rank copies the sums back into the gradients it
 * packed. Returns 0 or a negative DGM_E* code. */
int dgm__shm_end(int rc);
/* With shard (the step's optimizer step is split, dist_shard.c),
 * dgm__shm_end sums only the gradients this rank steps (those it owns, and
 * those of owner -1), into them, and the other gradients keep this rank's
 * own values; after the optimizer stepped them, dgm__shm_share(ps, n)
 * (collective; ps the phase's parameters, the same list on every rank)
 * publishes the new values of the parameters this rank owns and copies
 * every other owner's into this rank's. 0 or a negative DGM_E* code. */
int dgm__shm_share(dgm_param *const *ps, int n);
/* Collective: frees the window (before MPI_Finalize). */
void dgm__shm_close(void);

#endif
