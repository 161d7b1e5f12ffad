/* tensor_internal.h - the reference-counted storage behind heap tensors and
 * the heap-allocation counter libdgm's steady-state tests rely on (never
 * installed). */
#ifndef DGM_TENSOR_INTERNAL_H
#define DGM_TENSOR_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dgm/tensor.h"

/* A buffer shared by every tensor (and DLPack export) viewing it. The
 * count is atomic because OpenMP workers may drop views concurrently. */
struct dgm_storage {
    int64_t refcount;
    void *data;   /* start of the buffer (not of any view) */
    size_t bytes; /* size of the buffer */
    /* Called once when the count reaches zero, then the struct is freed.
     * NULL: data came from dgm_aligned_alloc together with the struct
     * and goes with it. */
    void (*release)(void *ctx, void *data);
    void *ctx;
};

/* A zero-filled, 64-byte aligned buffer of `bytes` (0 allowed) with a
 * count of one; NULL with DGM_ENOMEM set on failure. One heap allocation. */
dgm_storage *dgm__storage_new(size_t bytes);
/* Adopt foreign memory: `release(ctx, data)` is called exactly once when
 * the last reference goes. On failure (NULL) release is not called. */
dgm_storage *dgm__storage_wrap(void *data, size_t bytes,
                               void (*release)(void *ctx, void *data),
                               void *ctx);
void dgm__storage_retain(dgm_storage *s);  /* NULL-safe */
void dgm__storage_release(dgm_storage *s); /* NULL-safe */

/* Count one heap allocation in dgm_heap_allocations(). Every malloc libdgm
 * makes for tensors, arenas and graph growth calls this (thread-safe). */
void dgm__count_heap_alloc(void);

/* a * b into *out; false, and *out untouched, when the product would
 * overflow int64. Every count derived from dimensions goes through this or
 * dgm__shape_count. */
static inline bool dgm__mul_i64(int64_t a, int64_t b, int64_t *out)
{
    int64_t r;
    if (__builtin_mul_overflow(a, b, &r))
        return false;
    *out = r;
    return true;
}

/* What dgm__shape_count found wrong, for the caller to word (it knows the
 * file, tensor or op to name). */
typedef enum dgm__shape_fault {
    DGM__SHAPE_OK = 0,
    DGM__SHAPE_NEGATIVE, /* shape[*axis] < 0 */
    DGM__SHAPE_OVERFLOW  /* the product overflows at *axis */
} dgm__shape_fault;

/* The element count of `shape` in *numel (0 when a dim is 0), checking
 * that no dim is negative and that the product of the non-zero dims times
 * elem_size fits in int64. Zero dims are skipped, not allowed to end the
 * check: contiguous strides skip them too, so [0, 2^32, 2^32, 2^32] has
 * no elements but would overflow its strides. With this check element
 * counts, strides and byte sizes of the shape never overflow. Sets no
 * error message; *axis (may be NULL) gets the offending axis. */
dgm__shape_fault dgm__shape_count(int ndim, const int64_t *shape,
                                  int64_t elem_size, int64_t *numel, int *axis);

/* Bytes from the lowest to one past the highest element t can reach (0 for
 * an empty tensor), and the lowest element's offset from t->data in
 * elements (<= 0; nonzero only with negative strides). */
size_t dgm__tensor_span_bytes(const dgm_tensor *t, int64_t *low_offset);

#endif
