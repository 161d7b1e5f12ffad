/* gradcheck.h - test support: random tensors, finite-difference gradient
 * checks and REF-vs-DNNL comparisons for any op builder (linked into every
 * test; uses only the public API).
 *
 *     static dgm_var *build(dgm_graph *g, dgm_var **in, void *ctx)
 *     { return dgm_relu(g, in[0]); }
 *     ...
 *     dgm_tensor *x = gc_rand(2, (int64_t[]){3, 4}, 1, -1.0f, 1.0f);
 *     gc_result r = gc_gradcheck(build, NULL, 1, &x, NULL, DGM_BACKEND_REF,
 *                                1e-3, 1e-2, 1e-3);
 *     ck_assert_msg(r.ok, "%s", gc_describe(&r));
 *     dgm_tensor_free(x);
 *
 * The output y of the builder is reduced to loss = sum(y * w) with a fixed
 * pseudo-random w in [0.5, 1.5] (through dgm_mul and dgm_sum_all, which
 * test_graph checks by hand), so every output element matters and
 * symmetric mistakes do not cancel. The graph gets a fresh RNG seeded the
 * same way before each build, so random ops (dropout) are repeatable.
 */
#ifndef DGM_TEST_GRADCHECK_H
#define DGM_TEST_GRADCHECK_H

#include <stdbool.h>
#include <stdint.h>

#include "dgm/graph.h"
#include "dgm/tensor.h"

typedef dgm_var *(*gc_build)(dgm_graph *g, dgm_var **leaves, void *ctx);

typedef struct gc_result {
    int rc;          /* 0, or the error the builder/backward hit */
    bool ok;         /* rc == 0 and every |a - b| <= atol + rtol * |b| */
    double max_abs;  /* worst |a - b| over all compared elements */
    double max_rel;  /* worst |a - b| / max(|b|, 1e-12) */
    double worst;    /* worst |a - b| / (atol + rtol * |b|); ok iff <= 1 */
    int leaf;        /* where the worst element is: leaf index, -1: output */
    int64_t index;   /* flat row-major index */
    double a, b;     /* the two values there (analytic/numeric, ref/dnnl) */
    char msg[256];   /* gc_describe's text */
} gc_result;

/* A contiguous heap f32 tensor with U(lo, hi) values from `seed` (free it
 * with dgm_tensor_free). */
dgm_tensor *gc_rand(int ndim, const int64_t *shape, uint64_t seed, float lo,
                    float hi);
/* The same, from N(0, 1). */
dgm_tensor *gc_randn(int ndim, const int64_t *shape, uint64_t seed);

/* Central differences (step eps, sums in double) against the analytic
 * gradient of loss = sum(build(leaves) * w) for each leaf i with
 * needs_grad[i] (NULL: all leaves; integer leaves are skipped anyway).
 * Leaves may be strided views; they are restored after perturbation. */
gc_result gc_gradcheck(gc_build build, void *ctx, int n_leaves,
                       dgm_tensor *const *leaves, const bool *needs_grad,
                       dgm_backend backend, double eps, double rtol,
                       double atol);

/* Output and leaf gradients on DGM_BACKEND_REF (a) versus
 * DGM_BACKEND_DNNL (b). */
gc_result gc_compare_backends(gc_build build, void *ctx, int n_leaves,
                              dgm_tensor *const *leaves,
                              const bool *needs_grad, double rtol,
                              double atol);

/* Compare two tensors of equal shape (any strides/dtypes), as above. */
gc_result gc_compare_tensors(const dgm_tensor *a, const dgm_tensor *b,
                             double rtol, double atol);

/* Human-readable summary of a result (the msg field). */
const char *gc_describe(const gc_result *r);

#endif
