/* dgm/rng.h - the run's random numbers: xoshiro256** with a 4-word state
 * that checkpoints as a U64 tensor, so a resumed run draws what an
 * uninterrupted one would.
 *
 *     dgm_rng r;
 *     dgm_rng_seed(&r, 42);
 *     float u = dgm_rng_uniform(&r);      // [0, 1)
 *     float z = dgm_rng_normal(&r);       // N(0, 1)
 */
#ifndef DGM_RNG_H
#define DGM_RNG_H

#include <stdint.h>

#include "dgm/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dgm_rng {
    uint64_t s[4];
} dgm_rng;

DGM_API void dgm_rng_seed(dgm_rng *r, uint64_t seed);
/* An independent stream derived from r's seed and a label (for workers,
 * augmentations, data order) without advancing r. */
DGM_API void dgm_rng_fork(dgm_rng *child, const dgm_rng *r, uint64_t label);
DGM_API uint64_t dgm_rng_u64(dgm_rng *r);
DGM_API float dgm_rng_uniform(dgm_rng *r);     /* [0, 1) */
DGM_API double dgm_rng_uniform_f64(dgm_rng *r); /* [0, 1) */
DGM_API float dgm_rng_normal(dgm_rng *r);      /* N(0, 1) */
DGM_API uint64_t dgm_rng_below(dgm_rng *r, uint64_t n); /* [0, n), unbiased */
/* Fisher-Yates shuffle of idx[0..n). */
DGM_API void dgm_rng_shuffle(dgm_rng *r, int64_t *idx, int64_t n);

#ifdef __cplusplus
}
#endif
#endif
