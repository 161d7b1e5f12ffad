/* st_diff.h - test support: comparing two checkpoints (linked into every
 * test; uses the public API and Check's assertions). */
#ifndef DGM_TEST_ST_DIFF_H
#define DGM_TEST_ST_DIFF_H

#include "dgm/io.h"

/* Largest |a - b| over the tensors of a named prefix* that are weights
 * (batch-norm running statistics left out: G's forward in a GAN's
 * discriminator phase moves them); *n counts the tensors compared. Each
 * must be in b with as many elements (a failed check otherwise). */
double tq_max_diff(dgm_st_file *a, dgm_st_file *b, const char *prefix, int *n);

/* Every tensor of checkpoint file a (parameters, optimizer state, RNG
 * streams, step) in checkpoint file b with the same bytes, and more than
 * min_tensors of them (failed checks naming the tensor otherwise). */
void tq_assert_same_checkpoint(const char *a, const char *b, int min_tensors);

#endif
