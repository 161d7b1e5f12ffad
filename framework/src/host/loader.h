/* loader.h - the training batches of a run, in order, optionally built
 * (read and augmented) on a background thread ahead of the step that
 * needs them.
 *
 *     dgm__loader *ld;
 *     rc = dgm__loader_new(&ld, e, 4);
 *     rc = dgm__loader_get(ld, step, &b, &off, &total); // views
 *     dgm__loader_pause(ld);                // before evaluation
 *     dgm__loader_free(ld);
 *
 * The batch of global step s depends on the seed, s and the RNG states the
 * run had after step s - 1 only, never on the prefetch depth: the thread
 * draws from its own copies of the run's data and augment streams and
 * hands their state after each batch back with it, so a checkpoint taken
 * after step s saves what an unprefetched run would. */
#ifndef DGM_HOST_LOADER_H
#define DGM_HOST_LOADER_H

#include "host_internal.h"

typedef struct dgm__loader dgm__loader;

/* A loader of e's training split (e built), `depth` batches ahead on a
 * thread (0: each batch is built on the caller's thread when asked). Free
 * with dgm__loader_free; on failure there is nothing to free. */
int dgm__loader_new(dgm__loader **out, dgm_experiment *e, int depth);

/* The batch of global step `step` in *b (views into the loader's buffers,
 * valid until the next call), read and augmented; sets e->rng_data and
 * e->rng_aug to their state after that batch. A step other than the one
 * after the previous call (the first call, a resume) restarts the
 * prefetch from e's current RNG states. With several ranks (dist.h) the
 * batch is this rank's contiguous share, rows [*sh_off, *sh_off + b->n)
 * of the step's global batch of *sh_total rows (either pointer may be
 * NULL). 0, or the dataset's or an augment's error, named. */
int dgm__loader_get(dgm__loader *l, int64_t step, dgm_batch *b,
                    int64_t *sh_off, int64_t *sh_total);

/* Wait until the thread is idle and keep it so until the next get: the
 * dataset and augment plugins are then free for other callers
 * (evaluation reads the test split through the same dataset). */
void dgm__loader_pause(dgm__loader *l);

/* Seconds the caller spent in dgm__loader_get so far (building a batch,
 * or waiting for the thread to finish it). */
double dgm__loader_wait_s(const dgm__loader *l);

void dgm__loader_free(dgm__loader *l);

#endif
