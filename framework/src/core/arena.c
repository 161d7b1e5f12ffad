/* arena.c - per-step bump allocation in 64-byte aligned chunks. A reset
 * keeps the memory and merges several chunks into one, so a step that
 * allocates what the previous one did makes no heap allocation. An arena
 * is not thread-safe: each graph (thread) owns its own. */
#include <stdlib.h>
#include <string.h>

#include "dgm/error.h"
#include "dgm/tensor.h"
#include "tensor_internal.h"

#define ARENA_DEFAULT (64u << 10)

/* The header occupies the first DGM_ALIGN bytes of the chunk's block, so
 * each chunk is one heap allocation and its data is 64-byte aligned. */
typedef struct chunk {
    struct chunk *next; /* older chunks */
    size_t cap;         /* data bytes after the header */
    size_t used;
} chunk;
_Static_assert(sizeof(chunk) <= DGM_ALIGN, "chunk header must fit");

struct dgm_arena {
    chunk *head;     /* the chunk being filled; older ones follow */
    size_t used;     /* bytes handed out since the last reset */
    size_t capacity; /* sum of the chunks' caps */
};

static char *chunk_data(chunk *c)
{
    return (char *)c + DGM_ALIGN;
}

static chunk *chunk_new(size_t cap)
{
    if (cap > SIZE_MAX - DGM_ALIGN)
        return NULL;
    chunk *c = dgm_aligned_alloc(DGM_ALIGN + cap); /* counted there */
    if (!c)
        return NULL;
    c->next = NULL;
    c->cap = cap;
    c->used = 0;
    return c;
}

static size_t round_up(size_t n)
{
    return (n + DGM_ALIGN - 1) & ~(size_t)(DGM_ALIGN - 1);
}

dgm_arena *dgm_arena_new(size_t initial_bytes)
{
    dgm_arena *a = malloc(sizeof *a);
    if (!a) {
        dgm_error(DGM_ENOMEM, "arena: allocating the arena");
        return NULL;
    }
    dgm__count_heap_alloc();
    size_t cap = round_up(initial_bytes ? initial_bytes : ARENA_DEFAULT);
    a->head = chunk_new(cap);
    if (!a->head) {
        free(a);
        dgm_error(DGM_ENOMEM, "arena: allocating a first chunk of %zu bytes",
                  cap);
        return NULL;
    }
    a->used = 0;
    a->capacity = cap;
    return a;
}

static void free_chunks(chunk *c)
{
    while (c) {
        chunk *next = c->next;
        dgm_aligned_free(c);
        c = next;
    }
}

void dgm_arena_free(dgm_arena *a)
{
    if (!a)
        return;
    free_chunks(a->head);
    free(a);
}

void dgm_arena_reset(dgm_arena *a)
{
    if (!a)
        return;
    if (a->head->next) {
        /* One chunk as large as all of them holds the same sequence of
         * (padded) allocations, so the next identical step fits. If the
         * merge cannot be allocated, keep the chunks we have. */
        chunk *merged = chunk_new(a->capacity);
        if (merged) {
            free_chunks(a->head);
            a->head = merged;
        } else {
            /* keep the largest (newest) chunk in front; reuse all */
            for (chunk *c = a->head; c; c = c->next)
                c->used = 0;
        }
    }
    a->head->used = 0;
    a->used = 0;
}

void *dgm_arena_alloc(dgm_arena *a, size_t bytes)
{
    if (!a) {
        dgm_error(DGM_EINVAL, "arena_alloc: NULL arena");
        return NULL;
    }
    if (bytes > SIZE_MAX / 2) {
        dgm_error(DGM_ENOMEM, "arena_alloc: %zu bytes is too large", bytes);
        return NULL;
    }
    size_t need = round_up(bytes ? bytes : 1);
    chunk *c = a->head;
    if (c->cap - c->used < need) {
        /* After a failed merge older chunks may have room again; look
         * there before growing. */
        chunk *prev = NULL, *fit = NULL;
        for (chunk *o = c->next, *p = c; o; p = o, o = o->next)
            if (o->cap - o->used >= need) {
                fit = o;
                prev = p;
                break;
            }
        if (fit) {
            prev->next = fit->next; /* move it to the front */
            fit->next = a->head;
            a->head = fit;
            c = fit;
        } else {
            size_t cap = c->cap * 2 > need ? c->cap * 2 : need;
            chunk *n = chunk_new(cap);
            if (!n) {
                dgm_error(DGM_ENOMEM,
                          "arena_alloc: growing by a chunk of %zu bytes", cap);
                return NULL;
            }
            n->next = a->head;
            a->head = n;
            a->capacity += cap;
            c = n;
        }
    }
    void *p = chunk_data(c) + c->used;
    c->used += need;
    a->used += need;
    return p;
}

dgm_tensor *dgm_arena_tensor(dgm_arena *a, dgm_dtype dtype, int ndim,
                             const int64_t *shape)
{
    if (!a) {
        dgm_error(DGM_EINVAL, "arena_tensor: NULL arena");
        return NULL;
    }
    if ((unsigned)dtype >= DGM_DTYPE_COUNT) {
        dgm_error(DGM_EDTYPE, "arena_tensor: unknown dtype %d", (int)dtype);
        return NULL;
    }
    if (ndim < 0 || ndim > DGM_MAX_DIMS || (ndim > 0 && !shape)) {
        dgm_error(DGM_ESHAPE,
                  "arena_tensor: rank %d outside [0, %d] or "
                  "NULL shape",
                  ndim, DGM_MAX_DIMS);
        return NULL;
    }
    size_t es = dgm_dtype_size(dtype);
    int64_t n;
    if (dgm__shape_count(ndim, shape, (int64_t)es, &n, NULL) != DGM__SHAPE_OK) {
        char b[200];
        dgm_error(DGM_ESHAPE, "arena_tensor: invalid shape %s",
                  dgm_shape_str(ndim, shape, b, sizeof b));
        return NULL;
    }
    if ((uint64_t)n > (SIZE_MAX / 2) / es) {
        dgm_error(DGM_ENOMEM, "arena_tensor: %lld elements is too large",
                  (long long)n);
        return NULL;
    }
    size_t bytes = (size_t)n * es;
    /* struct and data in one request: one check, nothing half-done */
    size_t head = round_up(sizeof(dgm_tensor));
    char *p = dgm_arena_alloc(a, head + bytes);
    if (!p)
        return NULL;
    dgm_tensor *t = (dgm_tensor *)p;
    memset(t, 0, sizeof *t);
    t->dtype = dtype;
    t->ndim = ndim;
    for (int d = 0; d < ndim; d++)
        t->shape[d] = shape[d];
    dgm_contiguous_strides(ndim, t->shape, t->strides);
    t->data = p + head;
    t->storage = NULL;
    memset(t->data, 0, bytes);
    return t;
}

size_t dgm_arena_used(const dgm_arena *a)
{
    return a ? a->used : 0;
}

size_t dgm_arena_capacity(const dgm_arena *a)
{
    return a ? a->capacity : 0;
}
