/* safetensors.c - reading (fully validated, as the reference implementation)
 * and atomic writing of safetensors files: u64 LE header length N, N bytes
 * of JSON, then the little-endian row-major data buffer. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dgm/io.h"
#include "tensor_internal.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "safetensors.c reads and writes host order as little-endian");

/* ---- dtypes ----------------------------------------------------------- */

typedef struct st_dtype {
    const char *name;
    size_t size;
    int dgm; /* dgm_dtype, or -1 if dgm has none */
} st_dtype;

static const st_dtype st_dtypes[] = {
    {"BOOL", 1, -1},    {"U8", 1, DGM_U8},   {"I8", 1, -1},
    {"F8_E4M3", 1, -1}, {"F8_E5M2", 1, -1},  {"I16", 2, -1},
    {"U16", 2, -1},     {"F16", 2, -1},      {"BF16", 2, -1},
    {"I32", 4, DGM_I32}, {"U32", 4, -1},     {"F32", 4, DGM_F32},
    {"I64", 8, DGM_I64}, {"U64", 8, DGM_U64}, {"F64", 8, DGM_F64},
};
#define N_ST_DTYPES ((int)(sizeof st_dtypes / sizeof st_dtypes[0]))

static const st_dtype *st_dtype_find(const char *name)
{
    for (int i = 0; i < N_ST_DTYPES; i++)
        if (strcmp(st_dtypes[i].name, name) == 0)
            return &st_dtypes[i];
    return NULL;
}

const char *dgm_st_dtype_name(dgm_dtype t)
{
    for (int i = 0; i < N_ST_DTYPES; i++)
        if (st_dtypes[i].dgm == (int)t)
            return st_dtypes[i].name;
    return NULL;
}

/* ====================================================================== */
/* Reading                                                                */
/* ====================================================================== */

typedef struct st_tensor {
    char *name;
    const st_dtype *dt;
    int ndim;
    int64_t *shape;
    uint64_t begin, end;
    dgm_tensor *view; /* NULL unless dt->dgm >= 0 and ndim fits */
    void *copy;       /* aligned copy when the data in the buffer is not */
} st_tensor;

struct dgm_st_file {
    char *path;
    st_tensor *t;  /* sorted by name */
    int n;
    char **meta;   /* key, value, key, value, ... sorted by key */
    int n_meta;
    void *data;    /* the data buffer, 64-byte aligned */
    uint64_t data_size;
};

static void st_free(dgm_st_file *f)
{
    if (!f)
        return;
    for (int i = 0; i < f->n; i++) {
        free(f->t[i].name);
        free(f->t[i].shape);
        dgm_tensor_free(f->t[i].view);
        dgm_aligned_free(f->t[i].copy);
    }
    free(f->t);
    for (int i = 0; i < 2 * f->n_meta; i++)
        free(f->meta[i]);
    free(f->meta);
    dgm_aligned_free(f->data);
    free(f->path);
    free(f);
}

void dgm_st_close(dgm_st_file *f) { st_free(f); }

static int read_full(int fd, void *buf, size_t n)
{
    char *p = buf;
    while (n > 0) {
        ssize_t r = read(fd, p, n > (1u << 30) ? (1u << 30) : n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0)
            errno = 0; /* the file shrank under us */
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(((const st_tensor *)a)->name, ((const st_tensor *)b)->name);
}

static int cmp_offsets(const void *a, const void *b)
{
    const st_tensor *x = *(st_tensor *const *)a, *y = *(st_tensor *const *)b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return 0;
}

static int cmp_meta(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A non-negative JSON integer, or -1. */
static int64_t json_nonneg(const json_t *v)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return -1;
    return (int64_t)json_integer_value(v);
}

static int parse_metadata(dgm_st_file *f, json_t *m)
{
    if (!json_is_object(m))
        return dgm_error(DGM_EFORMAT,
                         "%s: __metadata__ is not a map of strings", f->path);
    size_t n = json_object_size(m);
    f->meta = calloc(2 * (n ? n : 1), sizeof *f->meta);
    if (!f->meta)
        return dgm_error(DGM_ENOMEM, "%s: out of memory", f->path);
    const char *key;
    json_t *val;
    json_object_foreach(m, key, val)
    {
        if (!json_is_string(val))
            return dgm_error(DGM_EFORMAT,
                             "%s: __metadata__ value of '%s' is not a string",
                             f->path, key);
        char *k = strdup(key), *v = strdup(json_string_value(val));
        f->meta[2 * f->n_meta] = k;
        f->meta[2 * f->n_meta + 1] = v;
        f->n_meta++;
        if (!k || !v)
            return dgm_error(DGM_ENOMEM, "%s: out of memory", f->path);
    }
    /* Pairs sort by key: qsort over 2-pointer records. */
    qsort(f->meta, (size_t)f->n_meta, 2 * sizeof *f->meta, cmp_meta);
    return 0;
}

static int parse_entry(dgm_st_file *f, st_tensor *t, const char *name,
                       json_t *v)
{
    t->name = strdup(name);
    if (!t->name)
        return dgm_error(DGM_ENOMEM, "%s: out of memory", f->path);
    if (!json_is_object(v))
        return dgm_error(DGM_EFORMAT, "%s: tensor '%s': entry is not a map",
                         f->path, name);
    json_t *dt = json_object_get(v, "dtype");
    json_t *sh = json_object_get(v, "shape");
    json_t *off = json_object_get(v, "data_offsets");
    if (!json_is_string(dt))
        return dgm_error(DGM_EFORMAT, "%s: tensor '%s': missing dtype string",
                         f->path, name);
    t->dt = st_dtype_find(json_string_value(dt));
    if (!t->dt)
        return dgm_error(DGM_EFORMAT, "%s: tensor '%s': unknown dtype '%s'",
                         f->path, name, json_string_value(dt));
    if (!json_is_array(sh))
        return dgm_error(DGM_EFORMAT, "%s: tensor '%s': missing shape list",
                         f->path, name);
    size_t nd = json_array_size(sh);
    if (nd > 1024)
        return dgm_error(DGM_EFORMAT, "%s: tensor '%s': rank %zu is absurd",
                         f->path, name, nd);
    t->ndim = (int)nd;
    if (nd) {
        t->shape = malloc(nd * sizeof *t->shape);
        if (!t->shape)
            return dgm_error(DGM_ENOMEM, "%s: out of memory", f->path);
    }
    for (size_t d = 0; d < nd; d++) {
        int64_t s = json_nonneg(json_array_get(sh, d));
        if (s < 0)
            return dgm_error(DGM_EFORMAT,
                             "%s: tensor '%s': shape[%zu] is not a "
                             "non-negative integer",
                             f->path, name, d);
        t->shape[d] = s;
    }
    /* Element count times size, refusing overflow of the non-zero dims'
     * product too: a zero dim makes no data, but strides and element
     * counts of the other dims are still computed from the shape. */
    int64_t numel;
    int axis = 0;
    if (dgm__shape_count(t->ndim, t->shape, (int64_t)t->dt->size, &numel,
                         &axis) != DGM__SHAPE_OK)
        return dgm_error(DGM_EFORMAT,
                         "%s: tensor '%s': shape size overflows at "
                         "shape[%d] (%s elements)",
                         f->path, name, axis, t->dt->name);
    uint64_t bytes = (uint64_t)numel * t->dt->size;
    if (!json_is_array(off) || json_array_size(off) != 2)
        return dgm_error(DGM_EFORMAT,
                         "%s: tensor '%s': data_offsets is not [BEGIN, END]",
                         f->path, name);
    int64_t b = json_nonneg(json_array_get(off, 0));
    int64_t e = json_nonneg(json_array_get(off, 1));
    if (b < 0 || e < 0)
        return dgm_error(DGM_EFORMAT,
                         "%s: tensor '%s': data_offsets are not "
                         "non-negative integers",
                         f->path, name);
    if (e < b)
        return dgm_error(DGM_EFORMAT,
                         "%s: tensor '%s': data_offsets end %lld < begin %lld",
                         f->path, name, (long long)e, (long long)b);
    t->begin = (uint64_t)b;
    t->end = (uint64_t)e;
    if (bytes != t->end - t->begin)
        return dgm_error(DGM_EFORMAT,
                         "%s: tensor '%s': shape and dtype %s give %llu "
                         "bytes but data_offsets span %llu",
                         f->path, name, t->dt->name,
                         (unsigned long long)bytes,
                         (unsigned long long)(t->end - t->begin));
    return 0;
}

/* Offsets, sorted, must tile [0, data_size) exactly. */
static int check_layout(dgm_st_file *f)
{
    st_tensor **ord = malloc((size_t)(f->n ? f->n : 1) * sizeof *ord);
    if (!ord)
        return dgm_error(DGM_ENOMEM, "%s: out of memory", f->path);
    for (int i = 0; i < f->n; i++)
        ord[i] = &f->t[i];
    qsort(ord, (size_t)f->n, sizeof *ord, cmp_offsets);
    uint64_t pos = 0;
    const char *prev = NULL;
    int rc = 0;
    for (int i = 0; i < f->n && rc == 0; i++) {
        st_tensor *t = ord[i];
        if (t->begin > pos)
            rc = dgm_error(DGM_EFORMAT,
                           "%s: tensor '%s': hole in the data buffer: "
                           "begins at %llu but %s ends at %llu",
                           f->path, t->name, (unsigned long long)t->begin,
                           prev ? prev : "the buffer start",
                           (unsigned long long)pos);
        else if (t->begin < pos)
            rc = dgm_error(DGM_EFORMAT,
                           "%s: tensor '%s': overlaps '%s': begins at %llu "
                           "before %llu",
                           f->path, t->name, prev,
                           (unsigned long long)t->begin,
                           (unsigned long long)pos);
        pos = t->end;
        prev = t->name;
    }
    free(ord);
    if (rc == 0 && pos != f->data_size)
        rc = dgm_error(DGM_EFORMAT,
                       "%s: the tensors cover %llu data bytes but the file "
                       "holds %llu after the header (%s)",
                       f->path, (unsigned long long)pos,
                       (unsigned long long)f->data_size,
                       pos < f->data_size ? "trailing bytes" : "truncated");
    return rc;
}

static int make_views(dgm_st_file *f)
{
    for (int i = 0; i < f->n; i++) {
        st_tensor *t = &f->t[i];
        if (t->dt->dgm < 0 || t->ndim > DGM_MAX_DIMS)
            continue;
        char *p = (char *)f->data + t->begin;
        size_t n = (size_t)(t->end - t->begin);
        /* Files from other writers may misalign a tensor; views must not. */
        if ((uintptr_t)p % t->dt->size != 0) {
            t->copy = dgm_aligned_alloc(n ? n : 1);
            if (!t->copy)
                return dgm_error(DGM_ENOMEM, "%s: out of memory", f->path);
            memcpy(t->copy, p, n);
            p = t->copy;
        }
        t->view = dgm_tensor_wrap(n ? p : NULL, (dgm_dtype)t->dt->dgm,
                                  t->ndim, t->shape, NULL);
        if (!t->view)
            return dgm_error_context("%s: tensor '%s': ", f->path, t->name);
    }
    return 0;
}

static int parse_header(dgm_st_file *f, const char *text, size_t n)
{
    json_error_t jerr;
    json_t *root = json_loadb(text, n, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return dgm_error(DGM_EFORMAT,
                         "%s: header is not valid JSON: %s (line %d, column "
                         "%d)",
                         f->path, jerr.text, jerr.line, jerr.column);
    int rc = 0;
    if (!json_is_object(root)) {
        rc = dgm_error(DGM_EFORMAT, "%s: header is not a JSON object",
                       f->path);
        goto out;
    }
    size_t cap = json_object_size(root);
    f->t = calloc(cap ? cap : 1, sizeof *f->t);
    if (!f->t) {
        rc = dgm_error(DGM_ENOMEM, "%s: out of memory", f->path);
        goto out;
    }
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val)
    {
        if (strcmp(key, "__metadata__") == 0)
            rc = parse_metadata(f, val);
        else
            rc = parse_entry(f, &f->t[f->n++], key, val);
        if (rc < 0)
            goto out;
    }
    qsort(f->t, (size_t)f->n, sizeof *f->t, cmp_name);
out:
    json_decref(root);
    return rc;
}

int dgm_st_open(dgm_st_file **out, const char *path)
{
    if (!out || !path)
        return dgm_error(DGM_EINVAL, "st_open: NULL %s", out ? "path" : "out");
    *out = NULL;
    dgm_st_file *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path))) {
        free(f);
        return dgm_error(DGM_ENOMEM, "%s: out of memory", path);
    }
    char *text = NULL;
    int rc = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        rc = dgm_error(DGM_EIO, "%s: cannot open: %s", path, strerror(errno));
        goto fail;
    }
    uint64_t size = (uint64_t)sb.st_size;
    unsigned char lenb[8];
    if (size < 8) {
        rc = dgm_error(DGM_EFORMAT,
                       "%s: %llu bytes, too short for the 8-byte header "
                       "length",
                       path, (unsigned long long)size);
        goto fail;
    }
    if (read_full(fd, lenb, 8) < 0)
        goto ioerr;
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = n << 8 | lenb[i];
    if (n > DGM_ST_MAX_HEADER) {
        rc = dgm_error(DGM_EFORMAT,
                       "%s: header length %llu exceeds the cap of %u bytes",
                       path, (unsigned long long)n, DGM_ST_MAX_HEADER);
        goto fail;
    }
    if (n > size - 8) {
        rc = dgm_error(DGM_EFORMAT,
                       "%s: header length %llu runs past the end of the "
                       "file (%llu bytes)",
                       path, (unsigned long long)n, (unsigned long long)size);
        goto fail;
    }
    text = malloc(n ? n : 1);
    f->data_size = size - 8 - n;
    f->data = dgm_aligned_alloc(f->data_size ? f->data_size : 1);
    if (!text || !f->data) {
        rc = dgm_error(DGM_ENOMEM, "%s: out of memory", path);
        goto fail;
    }
    if (read_full(fd, text, n) < 0 ||
        read_full(fd, f->data, f->data_size) < 0)
        goto ioerr;
    close(fd);
    fd = -1;
    if ((rc = parse_header(f, text, n)) < 0 || (rc = check_layout(f)) < 0 ||
        (rc = make_views(f)) < 0)
        goto fail;
    free(text);
    *out = f;
    return 0;
ioerr:
    rc = dgm_error(DGM_EIO, "%s: read failed: %s", path,
                   errno ? strerror(errno) : "file changed while reading");
fail:
    if (fd >= 0)
        close(fd);
    free(text);
    st_free(f);
    return rc;
}

int dgm_st_count(const dgm_st_file *f) { return f ? f->n : 0; }

const char *dgm_st_name_at(const dgm_st_file *f, int i)
{
    return f && i >= 0 && i < f->n ? f->t[i].name : NULL;
}

static int find(const dgm_st_file *f, const char *name)
{
    int lo = 0, hi = f->n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(f->t[mid].name, name);
        if (c == 0)
            return mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

int dgm_st_find(const dgm_st_file *f, const char *name)
{
    if (!f || !name)
        return dgm_error(DGM_EINVAL, "st_find: NULL %s", f ? "name" : "file");
    int i = find(f, name);
    if (i < 0)
        return dgm_error(DGM_ENOTFOUND, "%s: no tensor '%s'", f->path, name);
    return i;
}

int dgm_st_entry_at(const dgm_st_file *f, int i, dgm_st_entry *out)
{
    if (!f || !out || i < 0 || i >= f->n)
        return dgm_error(DGM_EINVAL, "st_entry_at: index %d outside [0, %d)",
                         i, f ? f->n : 0);
    const st_tensor *t = &f->t[i];
    out->name = t->name;
    out->dtype = t->dt->name;
    out->ndim = t->ndim;
    out->shape = t->shape;
    out->begin = t->begin;
    out->end = t->end;
    return 0;
}

int dgm_st_get(const dgm_st_file *f, const char *name, dgm_tensor **view)
{
    if (!view)
        return dgm_error(DGM_EINVAL, "st_get: NULL view");
    *view = NULL;
    int i = dgm_st_find(f, name);
    if (i < 0)
        return i;
    const st_tensor *t = &f->t[i];
    if (t->dt->dgm < 0)
        return dgm_error(DGM_EDTYPE,
                         "%s: tensor '%s' has dtype %s, which dgm tensors "
                         "cannot hold",
                         f->path, name, t->dt->name);
    if (!t->view)
        return dgm_error(DGM_ESHAPE, "%s: tensor '%s' has rank %d > %d",
                         f->path, name, t->ndim, DGM_MAX_DIMS);
    *view = t->view;
    return 0;
}

const char *dgm_st_meta(const dgm_st_file *f, const char *key)
{
    if (!f || !key)
        return NULL;
    for (int i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta[2 * i], key) == 0)
            return f->meta[2 * i + 1];
    return NULL;
}

int dgm_st_meta_count(const dgm_st_file *f) { return f ? f->n_meta : 0; }

const char *dgm_st_meta_key_at(const dgm_st_file *f, int i)
{
    return f && i >= 0 && i < f->n_meta ? f->meta[2 * i] : NULL;
}

/* ====================================================================== */
/* Writing                                                                */
/* ====================================================================== */

typedef struct st_item {
    char *name;
    const dgm_tensor *t;
} st_item;

struct dgm_st_writer {
    st_item *items;
    int n, cap;
    char **meta; /* key, value pairs */
    int n_meta, cap_meta;
};

dgm_st_writer *dgm_st_writer_new(void)
{
    dgm_st_writer *w = calloc(1, sizeof *w);
    if (!w)
        dgm_error(DGM_ENOMEM, "st_writer_new: out of memory");
    return w;
}

void dgm_st_writer_free(dgm_st_writer *w)
{
    if (!w)
        return;
    for (int i = 0; i < w->n; i++)
        free(w->items[i].name);
    free(w->items);
    for (int i = 0; i < 2 * w->n_meta; i++)
        free(w->meta[i]);
    free(w->meta);
    free(w);
}

int dgm_st_writer_add(dgm_st_writer *w, const char *name, const dgm_tensor *t)
{
    if (!w || !name || !t)
        return dgm_error(DGM_EINVAL, "st_writer_add: NULL %s",
                         !w ? "writer" : !name ? "name" : "tensor");
    if (!*name || strcmp(name, "__metadata__") == 0)
        return dgm_error(DGM_EINVAL, "st_writer_add: '%s' cannot name a "
                                     "tensor", name);
    if ((unsigned)t->dtype >= DGM_DTYPE_COUNT || !dgm_st_dtype_name(t->dtype))
        return dgm_error(DGM_EDTYPE, "st_writer_add: tensor '%s': unknown "
                                     "dtype %d", name, (int)t->dtype);
    if (t->ndim < 0 || t->ndim > DGM_MAX_DIMS)
        return dgm_error(DGM_ESHAPE, "st_writer_add: tensor '%s': rank %d",
                         name, t->ndim);
    for (int i = 0; i < w->n; i++)
        if (strcmp(w->items[i].name, name) == 0)
            return dgm_error(DGM_EDUP, "st_writer_add: tensor '%s' added "
                                       "twice", name);
    if (w->n == w->cap) {
        int cap = w->cap ? 2 * w->cap : 16;
        st_item *p = realloc(w->items, (size_t)cap * sizeof *p);
        if (!p)
            return dgm_error(DGM_ENOMEM, "st_writer_add: out of memory");
        w->items = p;
        w->cap = cap;
    }
    char *copy = strdup(name);
    if (!copy)
        return dgm_error(DGM_ENOMEM, "st_writer_add: out of memory");
    w->items[w->n].name = copy;
    w->items[w->n].t = t;
    w->n++;
    return 0;
}

int dgm_st_writer_meta(dgm_st_writer *w, const char *key, const char *value)
{
    if (!w || !key || !value)
        return dgm_error(DGM_EINVAL, "st_writer_meta: NULL %s",
                         !w ? "writer" : !key ? "key" : "value");
    char *v = strdup(value);
    if (!v)
        return dgm_error(DGM_ENOMEM, "st_writer_meta: out of memory");
    for (int i = 0; i < w->n_meta; i++)
        if (strcmp(w->meta[2 * i], key) == 0) {
            free(w->meta[2 * i + 1]);
            w->meta[2 * i + 1] = v;
            return 0;
        }
    char *k = strdup(key);
    if (k && w->n_meta == w->cap_meta) {
        int cap = w->cap_meta ? 2 * w->cap_meta : 8;
        char **p = realloc(w->meta, 2 * (size_t)cap * sizeof *p);
        if (!p) {
            free(k);
            k = NULL;
        } else {
            w->meta = p;
            w->cap_meta = cap;
        }
    }
    if (!k) {
        free(v);
        return dgm_error(DGM_ENOMEM, "st_writer_meta: out of memory");
    }
    w->meta[2 * w->n_meta] = k;
    w->meta[2 * w->n_meta + 1] = v;
    w->n_meta++;
    return 0;
}

/* Larger dtypes first, then by name: keeps every tensor aligned. */
static int cmp_items(const void *a, const void *b)
{
    const st_item *x = a, *y = b;
    size_t sx = dgm_dtype_size(x->t->dtype), sy = dgm_dtype_size(y->t->dtype);
    if (sx != sy)
        return sx > sy ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int write_full(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t r = write(fd, p, n > (1u << 30) ? (1u << 30) : n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/* Write t row-major: directly if contiguous, else gathered through buf. */
static int write_tensor(int fd, const dgm_tensor *t, char *buf, size_t bufsz)
{
    size_t es = dgm_dtype_size(t->dtype);
    int64_t numel = dgm_tensor_numel(t);
    if (numel == 0)
        return 0;
    if (dgm_tensor_is_contiguous(t))
        return write_full(fd, t->data, (size_t)numel * es);
    int64_t idx[DGM_MAX_DIMS] = {0};
    size_t used = 0;
    const char *base = t->data;
    for (int64_t k = 0; k < numel; k++) {
        int64_t off = 0;
        for (int d = 0; d < t->ndim; d++)
            off += idx[d] * t->strides[d];
        memcpy(buf + used, base + off * (int64_t)es, es);
        used += es;
        if (used + es > bufsz) {
            if (write_full(fd, buf, used) < 0)
                return -1;
            used = 0;
        }
        for (int d = t->ndim - 1; d >= 0; d--) {
            if (++idx[d] < t->shape[d])
                break;
            idx[d] = 0;
        }
    }
    return used ? write_full(fd, buf, used) : 0;
}

/* Header JSON (compact, insertion order), padded with spaces so that
 * 8 + N is a multiple of 8. Returns a malloc'ed text and its length. */
static char *build_header(const dgm_st_writer *w, const st_item *ord,
                          size_t *len)
{
    json_t *root = json_object();
    int bad = !root;
    if (!bad && w->n_meta) {
        json_t *m = json_object();
        bad = json_object_set_new(root, "__metadata__", m) != 0;
        for (int i = 0; i < w->n_meta && !bad; i++)
            bad = json_object_set_new(m, w->meta[2 * i],
                                      json_string(w->meta[2 * i + 1])) != 0;
    }
    uint64_t pos = 0;
    for (int i = 0; i < w->n && !bad; i++) {
        const dgm_tensor *t = ord[i].t;
        json_t *shape = json_array();
        bad = !shape;
        for (int d = 0; d < t->ndim && !bad; d++)
            bad = json_array_append_new(shape, json_integer(t->shape[d])) != 0;
        uint64_t nb = (uint64_t)dgm_tensor_nbytes(t);
        json_t *e = json_pack("{s:s, s:o, s:[I, I]}", "dtype",
                              dgm_st_dtype_name(t->dtype), "shape", shape,
                              "data_offsets", (json_int_t)pos,
                              (json_int_t)(pos + nb));
        bad = bad || !e || json_object_set_new(root, ord[i].name, e) != 0;
        pos += nb;
    }
    char *text = bad ? NULL : json_dumps(root, JSON_COMPACT |
                                                   JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!text)
        return NULL;
    size_t n = strlen(text), padded = (n + 7) / 8 * 8;
    char *out = realloc(text, padded + 1);
    if (!out) {
        free(text);
        return NULL;
    }
    memset(out + n, ' ', padded - n);
    out[padded] = '\0';
    *len = padded;
    return out;
}

/* Best effort: make the rename itself durable. */
static void fsync_dir_of(const char *path)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        dir[1] = '\0';
    else if (slash)
        *slash = '\0';
    else
        snprintf(dir, sizeof dir, ".");
    int fd = open(dir, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

int dgm_st_writer_write(dgm_st_writer *w, const char *path)
{
    if (!w || !path)
        return dgm_error(DGM_EINVAL, "st_writer_write: NULL %s",
                         w ? "path" : "writer");
    st_item *ord = malloc((size_t)(w->n ? w->n : 1) * sizeof *ord);
    char *buf = malloc(1 << 16);
    char tmp[PATH_MAX] = "";
    size_t hlen = 0;
    char *header = NULL;
    int rc = 0, fd = -1, created = 0;
    if (!ord || !buf) {
        rc = dgm_error(DGM_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    if (w->n)
        memcpy(ord, w->items, (size_t)w->n * sizeof *ord);
    qsort(ord, (size_t)w->n, sizeof *ord, cmp_items);
    header = build_header(w, ord, &hlen);
    if (!header) {
        rc = dgm_error(DGM_ENOMEM, "%s: cannot build the header", path);
        goto out;
    }
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >=
        (int)sizeof tmp) {
        rc = dgm_error(DGM_EINVAL, "%s: path too long", path);
        goto out;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = dgm_error(DGM_EIO, "%s: cannot create: %s", tmp, strerror(errno));
        goto out;
    }
    created = 1;
    unsigned char lenb[8];
    for (int i = 0; i < 8; i++)
        lenb[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    int bad = write_full(fd, lenb, 8) < 0 || write_full(fd, header, hlen) < 0;
    for (int i = 0; i < w->n && !bad; i++)
        bad = write_tensor(fd, ord[i].t, buf, 1 << 16) < 0;
    if (bad || fsync(fd) != 0) {
        rc = dgm_error(DGM_EIO, "%s: write failed: %s", tmp, strerror(errno));
        goto out;
    }
    int crc = close(fd);
    fd = -1;
    if (crc != 0) {
        rc = dgm_error(DGM_EIO, "%s: close failed: %s", tmp, strerror(errno));
        goto out;
    }
    if (rename(tmp, path) != 0) {
        rc = dgm_error(DGM_EIO, "%s: cannot rename %s over it: %s", path, tmp,
                       strerror(errno));
        goto out;
    }
    created = 0;
    fsync_dir_of(path);
out:
    if (fd >= 0)
        close(fd);
    if (created)
        unlink(tmp);
    free(header);
    free(buf);
    free(ord);
    return rc;
}
