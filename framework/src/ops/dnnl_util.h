/* dnnl_util.h - the process's oneDNN engine and stream, and the cache that
 * makes each primitive once per shape (never installed). */
#ifndef DGM_DNNL_UTIL_H
#define DGM_DNNL_UTIL_H

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

#endif
