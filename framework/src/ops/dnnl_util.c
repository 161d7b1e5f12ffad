/* dnnl_util.c - the process's oneDNN engine and stream (made once, lazily),
 * the primitive cache ops key by shape, and the thread count. */
#include <omp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/error.h"
#include "dgm/graph.h"
#include "dnnl_util.h"
#include "tensor_internal.h"

/* ---- engine and stream ----------------------------------------------- */

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static dnnl_engine_t g_engine;
static dnnl_stream_t g_stream;
static dnnl_status_t g_init_status = dnnl_success;

static void destroy_engine(void)
{
    if (g_stream)
        dnnl_stream_destroy(g_stream);
    if (g_engine)
        dnnl_engine_destroy(g_engine);
    g_stream = NULL;
    g_engine = NULL;
}

static void cache_destroy_all(void);

static void at_exit(void)
{
    /* Primitives before the engine they were made on. */
    cache_destroy_all();
    destroy_engine();
}

static void init_engine(void)
{
    g_init_status = dnnl_engine_create(&g_engine, dnnl_cpu, 0);
    if (g_init_status == dnnl_success)
        g_init_status =
            dnnl_stream_create(&g_stream, g_engine, dnnl_stream_default_flags);
    atexit(at_exit);
}

dnnl_engine_t dgm__dnnl_engine(void)
{
    pthread_once(&g_once, init_engine);
    if (g_init_status != dnnl_success) {
        dgm__dnnl_check(g_init_status, "creating the CPU engine");
        return NULL;
    }
    return g_engine;
}

dnnl_stream_t dgm__dnnl_stream(void)
{
    return dgm__dnnl_engine() ? g_stream : NULL;
}

static const char *status_name(dnnl_status_t st)
{
    switch (st) {
    case dnnl_success: return "success";
    case dnnl_out_of_memory: return "out of memory";
    case dnnl_invalid_arguments: return "invalid arguments";
    case dnnl_unimplemented: return "unimplemented";
    case dnnl_iterator_ends: return "iterator ends";
    case dnnl_runtime_error: return "runtime error";
    case dnnl_not_required: return "not required";
    default: return "unknown status";
    }
}

int dgm__dnnl_check(dnnl_status_t st, const char *what)
{
    if (st == dnnl_success)
        return 0;
    return dgm_error(DGM_EDNNL, "oneDNN: %s: %s (%d)", what, status_name(st),
                     (int)st);
}

int dgm__dnnl_memory(dnnl_memory_t *out, const dnnl_memory_desc_t *md,
                     void *handle)
{
    dnnl_engine_t eng = dgm__dnnl_engine();
    if (!eng)
        return DGM_EDNNL;
    return dgm__dnnl_check(
        dnnl_memory_create(out, md, eng, handle ? handle : DNNL_MEMORY_NONE),
        "creating a memory object");
}

/* ---- the primitive cache --------------------------------------------- */

/* Open addressing with linear probing on an FNV-1a hash of the key bytes.
 * Entries are never removed; the table doubles at half load. A mutex keeps
 * it safe if several threads run graphs (uncontended, it costs ~20 ns). */
typedef struct centry {
    uint64_t hash;
    void *key;
    size_t key_len;
    void *value;
    void (*destroy)(void *);
} centry;

static pthread_mutex_t g_cache_mu = PTHREAD_MUTEX_INITIALIZER;
static centry *g_tab;
static size_t g_cap, g_count;

typedef struct dup {
    void *value;
    void (*destroy)(void *);
    struct dup *next;
} dup;
static dup *g_dups;

static uint64_t fnv1a(const void *key, size_t n)
{
    const unsigned char *p = key;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h ? h : 1; /* 0 marks an empty slot */
}

static centry *find_slot(centry *tab, size_t cap, uint64_t h, const void *key,
                         size_t len)
{
    size_t i = (size_t)h & (cap - 1);
    for (;;) {
        centry *e = &tab[i];
        if (!e->hash)
            return e;
        if (e->hash == h && e->key_len == len && !memcmp(e->key, key, len))
            return e;
        i = (i + 1) & (cap - 1);
    }
}

void *dgm__dnnl_cache_get(const void *key, size_t key_len)
{
    void *v = NULL;
    uint64_t h = fnv1a(key, key_len);
    pthread_mutex_lock(&g_cache_mu);
    if (g_tab) {
        centry *e = find_slot(g_tab, g_cap, h, key, key_len);
        if (e->hash)
            v = e->value;
    }
    pthread_mutex_unlock(&g_cache_mu);
    return v;
}

static int grow(void)
{
    size_t cap = g_cap ? g_cap * 2 : 64;
    centry *tab = calloc(cap, sizeof *tab);
    if (!tab)
        return DGM_ENOMEM;
    for (size_t i = 0; i < g_cap; i++)
        if (g_tab[i].hash)
            *find_slot(tab, cap, g_tab[i].hash, g_tab[i].key,
                       g_tab[i].key_len) = g_tab[i];
    free(g_tab);
    g_tab = tab;
    g_cap = cap;
    return 0;
}

int dgm__dnnl_cache_put(const void *key, size_t key_len, void *value,
                        void (*destroy)(void *value))
{
    uint64_t h = fnv1a(key, key_len);
    int rc = 0;
    pthread_mutex_lock(&g_cache_mu);
    if ((g_count + 1) * 2 > g_cap && grow() < 0) {
        rc = DGM_ENOMEM;
        goto out;
    }
    centry *e = find_slot(g_tab, g_cap, h, key, key_len);
    if (e->hash) {
        /* Another thread made the same primitive meanwhile. The caller is
         * already using its value, so keep it alive until exit too. */
        dup *d = malloc(sizeof *d);
        if (!d) {
            rc = DGM_ENOMEM;
            goto out;
        }
        d->value = value;
        d->destroy = destroy;
        d->next = g_dups;
        g_dups = d;
        goto out;
    }
    e->key = malloc(key_len);
    if (!e->key) {
        rc = DGM_ENOMEM;
        goto out;
    }
    memcpy(e->key, key, key_len);
    e->hash = h;
    e->key_len = key_len;
    e->value = value;
    e->destroy = destroy;
    g_count++;
out:
    pthread_mutex_unlock(&g_cache_mu);
    if (rc < 0)
        return dgm_error(DGM_ENOMEM, "oneDNN primitive cache: %zu entries",
                         g_count);
    return 0;
}

static void cache_destroy_all(void)
{
    pthread_mutex_lock(&g_cache_mu);
    for (size_t i = 0; i < g_cap; i++)
        if (g_tab[i].hash) {
            if (g_tab[i].destroy)
                g_tab[i].destroy(g_tab[i].value);
            free(g_tab[i].key);
        }
    free(g_tab);
    g_tab = NULL;
    g_cap = g_count = 0;
    while (g_dups) {
        dup *d = g_dups;
        g_dups = d->next;
        if (d->destroy)
            d->destroy(d->value);
        free(d);
    }
    pthread_mutex_unlock(&g_cache_mu);
}

/* ---- threads --------------------------------------------------------- */

void dgm_set_threads(int n)
{
    omp_set_num_threads(n > 0 ? n : omp_get_num_procs());
}

int dgm_threads(void) { return omp_get_max_threads(); }

void dgm__dnnl_matmul_free(void *v)
{
    dgm__dnnl_matmul *m = v;
    if (!m)
        return;
    if (m->prim)
        dnnl_primitive_destroy(m->prim);
    dnnl_memory_t mem[4] = {m->src, m->wei, m->bias, m->dst};
    for (int i = 0; i < 4; i++)
        if (mem[i])
            dnnl_memory_destroy(mem[i]);
    free(m);
}

int dgm__dnnl_matmul_new(const dnnl_memory_desc_t *src,
                         const dnnl_memory_desc_t *wei,
                         const dnnl_memory_desc_t *bias,
                         const dnnl_memory_desc_t *dst, bool accumulate,
                         const char *what, dgm__dnnl_matmul **out)
{
    dnnl_matmul_desc_t md;
    int rc = dgm__dnnl_check(dnnl_matmul_desc_init(&md, src, wei, bias, dst),
                             "matmul desc");
    if (rc < 0)
        return rc;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    rc = dgm__dnnl_check(dnnl_primitive_attr_create(&attr), "attr");
    if (rc == 0 && accumulate) {
        rc = dgm__dnnl_check(dnnl_post_ops_create(&po), "post_ops");
        if (rc == 0)
            rc = dgm__dnnl_check(dnnl_post_ops_append_sum(po, 1.0f), "sum");
        if (rc == 0)
            rc = dgm__dnnl_check(dnnl_primitive_attr_set_post_ops(attr, po),
                                 "set_post_ops");
    }
    dnnl_primitive_desc_t pd = NULL;
    if (rc == 0)
        rc = dgm__dnnl_check(dnnl_primitive_desc_create(
                                 &pd, &md, attr, dgm__dnnl_engine(), NULL),
                             what);
    if (po)
        dnnl_post_ops_destroy(po);
    if (attr)
        dnnl_primitive_attr_destroy(attr);
    if (rc < 0)
        return rc;
    dgm__dnnl_matmul *m = calloc(1, sizeof *m);
    if (!m) {
        dnnl_primitive_desc_destroy(pd);
        return dgm_error(DGM_ENOMEM, "%s: out of memory", what);
    }
    dgm__count_heap_alloc();
    rc = dgm__dnnl_check(dnnl_primitive_create(&m->prim, pd), what);
    dnnl_primitive_desc_destroy(pd);
    if (rc == 0)
        rc = dgm__dnnl_memory(&m->src, src, NULL);
    if (rc == 0)
        rc = dgm__dnnl_memory(&m->wei, wei, NULL);
    if (rc == 0)
        rc = dgm__dnnl_memory(&m->dst, dst, NULL);
    if (rc == 0 && bias)
        rc = dgm__dnnl_memory(&m->bias, bias, NULL);
    if (rc < 0) {
        dgm__dnnl_matmul_free(m);
        return rc;
    }
    *out = m;
    return 0;
}
