/* dnnl_util.h - the process's oneDNN engine and stream, the cache that
 * makes each primitive once per shape, and the matmul primitive the GEMM
 * ops share (never installed). */
#ifndef DGM_DNNL_UTIL_H
#define DGM_DNNL_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <oneapi/dnnl/dnnl.h>

dnnl_engine_t dgm__dnnl_engine(void);
dnnl_stream_t dgm__dnnl_stream(void);

/* Turn a dnnl_status_t into DGM_EDNNL with "what: status" in the last
 * error; returns 0 for dnnl_success. */
int dgm__dnnl_check(dnnl_status_t st, const char *what);

/* Primitive cache keyed by bytes (an op tag plus shapes and attributes;
 * zero the key struct before filling it so padding compares equal).
 * Values are owned by the cache and destroyed with `destroy` at exit. */
void *dgm__dnnl_cache_get(const void *key, size_t key_len);
int dgm__dnnl_cache_put(const void *key, size_t key_len, void *value,
                        void (*destroy)(void *value));

/* Memory objects over existing buffers: set the handle each call rather
 * than re-creating descriptors (dnnl_memory_set_data_handle). */
int dgm__dnnl_memory(dnnl_memory_t *out, const dnnl_memory_desc_t *md,
                     void *handle);

/* A oneDNN matmul src x weights (+ bias) -> dst on these memory
 * descriptors (bias may be NULL), adding into dst through a sum post-op
 * when accumulate, with a memory object for each whose buffer is set per
 * call (dnnl_memory_set_data_handle). `what` names it in errors. Freed by
 * dgm__dnnl_matmul_free, which the primitive cache can take as destroy. */
typedef struct dgm__dnnl_matmul {
    dnnl_primitive_t prim;
    dnnl_memory_t src, wei, bias, dst;
} dgm__dnnl_matmul;

int dgm__dnnl_matmul_new(const dnnl_memory_desc_t *src,
                         const dnnl_memory_desc_t *wei,
                         const dnnl_memory_desc_t *bias,
                         const dnnl_memory_desc_t *dst, bool accumulate,
                         const char *what, dgm__dnnl_matmul **out);
void dgm__dnnl_matmul_free(void *m);

#endif
