/* block_check.h - test support: one block made from YAML through the
 * shipped registry (tc_reg, so the case needs tc_shipped_setup), run on a
 * random batch, its output shape, its layer count and its gradients
 * checked.
 *
 *     tc_sized_block("{plugin: conv_encoder, out: 5}", img, (dgm_shape){0},
 *                    2, (int64_t[]){2, 5});
 *     tc_gradcheck_block("{plugin: conv_decoder}", z, img, 2, false);
 */
#ifndef DGM_TEST_BLOCK_CHECK_H
#define DGM_TEST_BLOCK_CHECK_H

#include <stdbool.h>
#include <stdint.h>

#include "dgm/dgm.h"
#include "dgm/host.h"

/* What tc_run_block runs: the block, in eval mode when eval. */
typedef struct tc_block_ctx {
    dgm_block *blk;
    bool eval;
} tc_block_ctx;

/* A gc_build running the block of ctx (a tc_block_ctx) on in[0]. */
dgm_var *tc_run_block(dgm_graph *g, dgm_var **in, void *ctx);

/* The block of yaml (scope "blk", seed 3) for input `in`, *out as its
 * create left it; a refusal fails the test. The caller frees *b, *cfg
 * (and ps) with dgm_build_free, dgm_config_free. */
dgm_block *tc_make_block(dgm_build **b, dgm_params *ps, dgm_config **cfg,
                         const char *yaml, dgm_shape in, dgm_shape *out);

/* A batch [n, in...] of N(0, 1) values from seed (dgm_tensor_free). */
dgm_tensor *tc_batch_of(dgm_shape in, int64_t n, uint64_t seed);

/* Finite differences wrt the input (eval mode for spectral norm) and REF
 * against oneDNN, on a batch of n. Asserts. */
void tc_gradcheck_block(const char *yaml, dgm_shape in, dgm_shape out,
                        int64_t n, bool eval);

/* The block of yaml run on a batch of 2; asserts its output is [want]
 * (ndim_want dims). */
void tc_sized_block(const char *yaml, dgm_shape in, dgm_shape out,
                    int ndim_want, const int64_t *want);

/* The number of a block's parameters named blk.<prefix><i>.weight,
 * i >= 1, and dim 1 of the last one in *dim1_of_last. */
int tc_count_layers(const char *yaml, dgm_shape in, dgm_shape out,
                    const char *prefix, int64_t *dim1_of_last);

#endif
