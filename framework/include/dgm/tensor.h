/* dgm/tensor.h - the tensor every plugin, op and file format shares.
 *
 * A dgm_tensor is a strided view (shape and strides in elements) on a
 * storage buffer. Heap tensors own a reference to a 64-byte aligned,
 * reference-counted storage; arena tensors live until the arena is reset.
 *
 *     int64_t shape[2] = {128, 784};
 *     dgm_tensor *x = dgm_tensor_new(DGM_F32, 2, shape);   // zero-filled
 *     if (!x) return dgm_last_code();
 *     float *p = dgm_tensor_f32(x);
 *     ...
 *     dgm_tensor_free(x);
 *
 * Ownership:
 *   1. dgm_tensor_new / _view / _clone / _from_dlpack return a tensor the
 *      caller frees with dgm_tensor_free. On failure they return NULL and
 *      there is nothing to free.
 *   2. A view shares its parent's storage; the storage lives until the last
 *      tensor (or DLPack export) referring to it is freed.
 *   3. dgm_arena_tensor returns memory owned by the arena: never free it,
 *      and do not use it after dgm_arena_reset.
 */
#ifndef DGM_TENSOR_H
#define DGM_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dgm/export.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DGM_MAX_DIMS 8
#define DGM_ALIGN 64

typedef enum dgm_dtype {
    DGM_F32 = 0,
    DGM_F64,
    DGM_I32,
    DGM_I64,
    DGM_U8,
    DGM_U64,
    DGM_DTYPE_COUNT
} dgm_dtype;

typedef struct dgm_storage dgm_storage;

typedef struct dgm_tensor {
    dgm_dtype dtype;
    int ndim;
    int64_t shape[DGM_MAX_DIMS];
    int64_t strides[DGM_MAX_DIMS]; /* in elements */
    void *data;                    /* the first element */
    dgm_storage *storage;          /* NULL for arena or borrowed memory */
} dgm_tensor;

/* A shape without the tensor: used for block and dataset signatures. */
typedef struct dgm_shape {
    int ndim;
    int64_t dim[DGM_MAX_DIMS];
} dgm_shape;

/* ---- dtypes ---------------------------------------------------------- */

DGM_API size_t dgm_dtype_size(dgm_dtype t);
DGM_API const char *dgm_dtype_name(dgm_dtype t); /* "f32", ... */

/* ---- construction ---------------------------------------------------- */

/* A zero-filled, contiguous, 64-byte aligned tensor. Rank 0 is a scalar. */
DGM_API dgm_tensor *dgm_tensor_new(dgm_dtype dtype, int ndim,
                                   const int64_t *shape);
/* Same shape and dtype as t, zero-filled, contiguous. */
DGM_API dgm_tensor *dgm_tensor_new_like(const dgm_tensor *t);
/* A contiguous copy of t (of any strides). */
DGM_API dgm_tensor *dgm_tensor_clone(const dgm_tensor *t);
/* Wrap memory the caller keeps alive; the tensor does not free it. */
DGM_API dgm_tensor *dgm_tensor_wrap(void *data, dgm_dtype dtype, int ndim,
                                    const int64_t *shape,
                                    const int64_t *strides /* NULL: dense */);
DGM_API void dgm_tensor_free(dgm_tensor *t);

/* ---- views (share storage; the result is freed with dgm_tensor_free) -- */

DGM_API dgm_tensor *dgm_tensor_view(const dgm_tensor *t);
DGM_API dgm_tensor *dgm_tensor_reshape(const dgm_tensor *t, int ndim,
                                       const int64_t *shape);
DGM_API dgm_tensor *dgm_tensor_permute(const dgm_tensor *t, const int *perm);
DGM_API dgm_tensor *dgm_tensor_slice(const dgm_tensor *t, int axis,
                                     int64_t start, int64_t stop,
                                     int64_t step);

/* In-place view arithmetic on a tensor struct the caller owns (no alloc).
 * Return 0 or DGM_ESHAPE / DGM_EINVAL with a message. */
DGM_API int dgm_view_reshape(dgm_tensor *t, int ndim, const int64_t *shape);
DGM_API int dgm_view_permute(dgm_tensor *t, const int *perm);
DGM_API int dgm_view_slice(dgm_tensor *t, int axis, int64_t start,
                           int64_t stop, int64_t step);

/* ---- queries --------------------------------------------------------- */

DGM_API int64_t dgm_tensor_numel(const dgm_tensor *t);
DGM_API size_t dgm_tensor_nbytes(const dgm_tensor *t); /* numel * size */
DGM_API bool dgm_tensor_is_contiguous(const dgm_tensor *t);
DGM_API bool dgm_tensor_same_shape(const dgm_tensor *a, const dgm_tensor *b);
/* Writes "[128, 784] f32" into buf (always terminated); returns buf. */
DGM_API char *dgm_tensor_describe(const dgm_tensor *t, char *buf, size_t n);
DGM_API char *dgm_shape_str(int ndim, const int64_t *shape, char *buf,
                            size_t n);
DGM_API void dgm_contiguous_strides(int ndim, const int64_t *shape,
                                    int64_t *strides);
DGM_API int64_t dgm_shape_numel(int ndim, const int64_t *shape);

static inline float *dgm_tensor_f32(const dgm_tensor *t)
{
    return (float *)t->data;
}

/* ---- data movement --------------------------------------------------- */

/* dst and src must have equal shapes and dtypes; any strides. */
DGM_API int dgm_tensor_copy(dgm_tensor *dst, const dgm_tensor *src);
DGM_API int dgm_tensor_fill(dgm_tensor *t, double value);
/* Value at a flat (row-major logical) index, as double; for tests and
 * messages, not hot loops. */
DGM_API double dgm_tensor_get(const dgm_tensor *t, int64_t flat_index);
DGM_API void dgm_tensor_set(dgm_tensor *t, int64_t flat_index, double v);

/* ---- aligned heap memory ---------------------------------------------- */

DGM_API void *dgm_aligned_alloc(size_t bytes); /* 64-byte aligned */
DGM_API void dgm_aligned_free(void *p);

/* ---- arenas: per-step memory, reset each step ------------------------ */

typedef struct dgm_arena dgm_arena;

DGM_API dgm_arena *dgm_arena_new(size_t initial_bytes);
DGM_API void dgm_arena_free(dgm_arena *a);
/* Forget everything allocated; keeps (and merges) the chunks, so a step
 * that allocates what the previous step did touches no heap. */
DGM_API void dgm_arena_reset(dgm_arena *a);
DGM_API void *dgm_arena_alloc(dgm_arena *a, size_t bytes); /* 64-aligned */
/* Zero-filled contiguous tensor whose struct and data live in the arena. */
DGM_API dgm_tensor *dgm_arena_tensor(dgm_arena *a, dgm_dtype dtype, int ndim,
                                     const int64_t *shape);
/* Bytes handed out since the last reset, and the heap chunks held. */
DGM_API size_t dgm_arena_used(const dgm_arena *a);
DGM_API size_t dgm_arena_capacity(const dgm_arena *a);

/* ---- heap allocation counter (tests assert steady-state steps) ------- */

/* Number of heap allocations libdgm made (tensors, arena chunks, graph
 * growth) since the process started. */
DGM_API uint64_t dgm_heap_allocations(void);

/* ---- DLPack (dlpack/dlpack.h 0.6), zero copy ------------------------- */

struct DLManagedTensor;
/* Export t without copying: the DLManagedTensor holds a reference to t's
 * storage (or to t's memory, for borrowed tensors, which must then outlive
 * it). The consumer calls its deleter exactly once. */
DGM_API int dgm_tensor_to_dlpack(const dgm_tensor *t,
                                 struct DLManagedTensor **out);
/* Import without copying. On success the dgm tensor owns m and calls
 * m->deleter when the last reference goes; on failure m is untouched and
 * still the caller's. */
DGM_API int dgm_tensor_from_dlpack(struct DLManagedTensor *m,
                                   dgm_tensor **out);

#ifdef __cplusplus
}
#endif
#endif
