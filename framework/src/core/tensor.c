/* tensor.c - dtypes, heap tensors on reference-counted aligned storage,
 * views (reshape, permute, slice), queries, copy/fill/get/set, and the heap
 * allocation counter. Arenas live in arena.c, DLPack in dlpack.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/error.h"
#include "dgm/tensor.h"
#include "tensor_internal.h"

/* ---- heap allocation counter ------------------------------------------ */

static uint64_t heap_allocations;

void dgm__count_heap_alloc(void)
{
    __atomic_fetch_add(&heap_allocations, 1, __ATOMIC_RELAXED);
}

uint64_t dgm_heap_allocations(void)
{
    return __atomic_load_n(&heap_allocations, __ATOMIC_RELAXED);
}

/* ---- aligned memory --------------------------------------------------- */

void *dgm_aligned_alloc(size_t bytes)
{
    /* aligned_alloc wants a multiple of the alignment; 0 still gets a
     * unique pointer so empty tensors have non-NULL data. */
    size_t n = bytes ? bytes : 1;
    if (n > SIZE_MAX - (DGM_ALIGN - 1))
        return NULL;
    n = (n + DGM_ALIGN - 1) & ~(size_t)(DGM_ALIGN - 1);
    void *p = aligned_alloc(DGM_ALIGN, n);
    if (p)
        dgm__count_heap_alloc();
    return p;
}

void dgm_aligned_free(void *p)
{
    free(p);
}

/* ---- dtypes ----------------------------------------------------------- */

static const struct {
    size_t size;
    const char *name;
} dtype_info[DGM_DTYPE_COUNT] = {
    [DGM_F32] = {4, "f32"}, [DGM_F64] = {8, "f64"}, [DGM_I32] = {4, "i32"},
    [DGM_I64] = {8, "i64"}, [DGM_U8] = {1, "u8"},   [DGM_U64] = {8, "u64"},
};
_Static_assert(DGM_DTYPE_COUNT == 6, "dtype_info must cover every dtype");

static int dtype_ok(dgm_dtype t)
{
    return (unsigned)t < DGM_DTYPE_COUNT;
}

size_t dgm_dtype_size(dgm_dtype t)
{
    return dtype_ok(t) ? dtype_info[t].size : 0;
}

const char *dgm_dtype_name(dgm_dtype t)
{
    return dtype_ok(t) ? dtype_info[t].name : "?";
}

/* ---- storage ---------------------------------------------------------- */

/* The struct sits in the first DGM_ALIGN bytes of the block so that a heap
 * tensor's buffer costs one allocation and stays 64-byte aligned. */
#define STORAGE_HEADER DGM_ALIGN
_Static_assert(sizeof(struct dgm_storage) <= STORAGE_HEADER,
               "storage header must fit before the data");

dgm_storage *dgm__storage_new(size_t bytes)
{
    if (bytes > SIZE_MAX - 2 * STORAGE_HEADER) {
        dgm_error(DGM_ENOMEM, "tensor: storage of %zu bytes is too large",
                  bytes);
        return NULL;
    }
    char *block = dgm_aligned_alloc(STORAGE_HEADER + bytes);
    if (!block) {
        dgm_error(DGM_ENOMEM, "tensor: allocating %zu bytes", bytes);
        return NULL;
    }
    dgm_storage *s = (dgm_storage *)block;
    memset(s, 0, sizeof *s);
    s->refcount = 1;
    s->data = block + STORAGE_HEADER;
    s->bytes = bytes;
    memset(s->data, 0, bytes);
    return s;
}

dgm_storage *dgm__storage_wrap(void *data, size_t bytes,
                               void (*release)(void *ctx, void *data),
                               void *ctx)
{
    dgm_storage *s = malloc(sizeof *s);
    if (!s) {
        dgm_error(DGM_ENOMEM, "tensor: allocating a storage record");
        return NULL;
    }
    dgm__count_heap_alloc();
    s->refcount = 1;
    s->data = data;
    s->bytes = bytes;
    s->release = release;
    s->ctx = ctx;
    return s;
}

void dgm__storage_retain(dgm_storage *s)
{
    if (s)
        __atomic_fetch_add(&s->refcount, 1, __ATOMIC_RELAXED);
}

void dgm__storage_release(dgm_storage *s)
{
    if (!s || __atomic_sub_fetch(&s->refcount, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    if (s->release) {
        s->release(s->ctx, s->data);
        free(s);
    } else {
        dgm_aligned_free(s); /* header and data are one block */
    }
}

/* ---- shapes ----------------------------------------------------------- */

int64_t dgm_shape_numel(int ndim, const int64_t *shape)
{
    int64_t n = 1;
    for (int d = 0; d < ndim; d++)
        n *= shape[d];
    return n;
}

dgm__shape_fault dgm__shape_count(int ndim, const int64_t *shape,
                                  int64_t elem_size, int64_t *numel, int *axis)
{
    int64_t nz = elem_size > 0 ? elem_size : 1;
    bool empty = false;
    for (int d = 0; d < ndim; d++) {
        if (axis)
            *axis = d;
        if (shape[d] < 0)
            return DGM__SHAPE_NEGATIVE;
        if (shape[d] == 0)
            empty = true;
        else if (!dgm__mul_i64(nz, shape[d], &nz))
            return DGM__SHAPE_OVERFLOW;
    }
    if (numel)
        *numel = empty ? 0 : nz / (elem_size > 0 ? elem_size : 1);
    return DGM__SHAPE_OK;
}

void dgm_contiguous_strides(int ndim, const int64_t *shape, int64_t *strides)
{
    int64_t s = 1;
    for (int d = ndim - 1; d >= 0; d--) {
        strides[d] = s;
        s *= shape[d] > 0 ? shape[d] : 1;
    }
}

char *dgm_shape_str(int ndim, const int64_t *shape, char *buf, size_t n)
{
    if (!buf || n == 0)
        return buf;
    size_t at = 0;
    buf[0] = '\0';
#define PUT(...)                                                               \
    do {                                                                       \
        if (at < n) {                                                          \
            int k_ = snprintf(buf + at, n - at, __VA_ARGS__);                  \
            at = k_ < 0 ? n : at + (size_t)k_;                                 \
        }                                                                      \
    } while (0)
    PUT("[");
    for (int d = 0; d < ndim; d++)
        PUT(d ? ", %lld" : "%lld", (long long)shape[d]);
    PUT("]");
#undef PUT
    return buf;
}

char *dgm_tensor_describe(const dgm_tensor *t, char *buf, size_t n)
{
    if (!buf || n == 0)
        return buf;
    if (!t) {
        snprintf(buf, n, "(null)");
        return buf;
    }
    char sh[DGM_MAX_DIMS * 22 + 4];
    dgm_shape_str(t->ndim, t->shape, sh, sizeof sh);
    snprintf(buf, n, "%s %s", sh, dgm_dtype_name(t->dtype));
    return buf;
}

/* Validate dtype, rank and dims; compute numel and bytes with overflow
 * checks. `what` names the caller in the message. */
static int check_shape(const char *what, dgm_dtype dtype, int ndim,
                       const int64_t *shape, int64_t *numel, size_t *bytes)
{
    if (!dtype_ok(dtype))
        return dgm_error(DGM_EDTYPE, "%s: unknown dtype %d", what, (int)dtype);
    if (ndim < 0 || ndim > DGM_MAX_DIMS)
        return dgm_error(DGM_ESHAPE, "%s: rank %d outside [0, %d]", what, ndim,
                         DGM_MAX_DIMS);
    if (ndim > 0 && !shape)
        return dgm_error(DGM_EINVAL, "%s: NULL shape for rank %d", what, ndim);
    size_t sz = dtype_info[dtype].size;
    int64_t n;
    int axis = 0;
    char b[DGM_MAX_DIMS * 22 + 4];
    switch (dgm__shape_count(ndim, shape, (int64_t)sz, &n, &axis)) {
    case DGM__SHAPE_NEGATIVE:
        return dgm_error(DGM_ESHAPE, "%s: negative dim %lld at axis %d", what,
                         (long long)shape[axis], axis);
    case DGM__SHAPE_OVERFLOW:
        return dgm_error(DGM_ESHAPE,
                         "%s: shape %s %s: the byte size of the non-zero "
                         "dims overflows at axis %d",
                         what, dgm_shape_str(ndim, shape, b, sizeof b),
                         dtype_info[dtype].name, axis);
    case DGM__SHAPE_OK:
        break;
    }
    if ((uint64_t)n > SIZE_MAX / sz) /* 32-bit hosts */
        return dgm_error(DGM_ESHAPE, "%s: byte size overflows", what);
    *numel = n;
    *bytes = (size_t)n * sz;
    return 0;
}

/* ---- construction ----------------------------------------------------- */

static dgm_tensor *tensor_struct(void)
{
    dgm_tensor *t = malloc(sizeof *t);
    if (!t) {
        dgm_error(DGM_ENOMEM, "tensor: allocating a tensor struct");
        return NULL;
    }
    dgm__count_heap_alloc();
    memset(t, 0, sizeof *t);
    return t;
}

dgm_tensor *dgm_tensor_new(dgm_dtype dtype, int ndim, const int64_t *shape)
{
    int64_t numel;
    size_t bytes;
    if (check_shape("tensor_new", dtype, ndim, shape, &numel, &bytes) < 0)
        return NULL;
    dgm_tensor *t = tensor_struct();
    if (!t)
        return NULL;
    dgm_storage *s = dgm__storage_new(bytes);
    if (!s) {
        char sh[DGM_MAX_DIMS * 22 + 4];
        free(t);
        dgm_error_context(
            "tensor_new %s %s: ", dgm_shape_str(ndim, shape, sh, sizeof sh),
            dgm_dtype_name(dtype));
        return NULL;
    }
    t->dtype = dtype;
    t->ndim = ndim;
    for (int d = 0; d < ndim; d++)
        t->shape[d] = shape[d];
    dgm_contiguous_strides(ndim, t->shape, t->strides);
    t->data = s->data;
    t->storage = s;
    return t;
}

dgm_tensor *dgm_tensor_new_like(const dgm_tensor *t)
{
    if (!t) {
        dgm_error(DGM_EINVAL, "tensor_new_like: NULL tensor");
        return NULL;
    }
    return dgm_tensor_new(t->dtype, t->ndim, t->shape);
}

dgm_tensor *dgm_tensor_clone(const dgm_tensor *t)
{
    dgm_tensor *c = dgm_tensor_new_like(t);
    if (!c)
        return NULL;
    if (dgm_tensor_copy(c, t) < 0) {
        dgm_tensor_free(c);
        return NULL;
    }
    return c;
}

dgm_tensor *dgm_tensor_wrap(void *data, dgm_dtype dtype, int ndim,
                            const int64_t *shape, const int64_t *strides)
{
    int64_t numel;
    size_t bytes;
    if (check_shape("tensor_wrap", dtype, ndim, shape, &numel, &bytes) < 0)
        return NULL;
    if (!data && numel > 0) {
        dgm_error(DGM_EINVAL, "tensor_wrap: NULL data for %lld elements",
                  (long long)numel);
        return NULL;
    }
    dgm_tensor *t = tensor_struct();
    if (!t)
        return NULL;
    t->dtype = dtype;
    t->ndim = ndim;
    for (int d = 0; d < ndim; d++)
        t->shape[d] = shape[d];
    if (strides)
        for (int d = 0; d < ndim; d++)
            t->strides[d] = strides[d];
    else
        dgm_contiguous_strides(ndim, t->shape, t->strides);
    t->data = data;
    t->storage = NULL;
    return t;
}

void dgm_tensor_free(dgm_tensor *t)
{
    if (!t)
        return;
    dgm__storage_release(t->storage);
    free(t);
}

/* ---- views ------------------------------------------------------------ */

/* Shape after resolving one -1 (inferred) dim; ESHAPE if impossible. */
static int resolve_shape(const dgm_tensor *t, int ndim, const int64_t *shape,
                         int64_t *out)
{
    char a[200], b[200];
    if (ndim < 0 || ndim > DGM_MAX_DIMS)
        return dgm_error(DGM_ESHAPE, "reshape %s: rank %d outside [0, %d]",
                         dgm_shape_str(t->ndim, t->shape, a, sizeof a), ndim,
                         DGM_MAX_DIMS);
    if (ndim > 0 && !shape)
        return dgm_error(DGM_EINVAL, "reshape: NULL shape for rank %d", ndim);
    int infer = -1;
    int64_t known = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] == -1 && infer < 0) {
            infer = d;
            continue;
        }
        if (shape[d] < 0)
            return dgm_error(DGM_ESHAPE,
                             "reshape %s -> %s: invalid dim at axis %d",
                             dgm_shape_str(t->ndim, t->shape, a, sizeof a),
                             dgm_shape_str(ndim, shape, b, sizeof b), d);
        if (!dgm__mul_i64(known, shape[d], &known))
            return dgm_error(DGM_ESHAPE,
                             "reshape %s -> %s: the sizes overflow at axis %d",
                             dgm_shape_str(t->ndim, t->shape, a, sizeof a),
                             dgm_shape_str(ndim, shape, b, sizeof b), d);
        out[d] = shape[d];
    }
    int64_t numel = dgm_tensor_numel(t);
    if (infer >= 0) {
        if (known == 0 || numel % known != 0)
            return dgm_error(DGM_ESHAPE,
                             "reshape %s -> %s: cannot infer axis %d",
                             dgm_shape_str(t->ndim, t->shape, a, sizeof a),
                             dgm_shape_str(ndim, shape, b, sizeof b), infer);
        out[infer] = numel / known;
        known *= out[infer];
    }
    if (known != numel)
        return dgm_error(DGM_ESHAPE,
                         "reshape %s -> %s: element counts differ "
                         "(%lld vs %lld)",
                         dgm_shape_str(t->ndim, t->shape, a, sizeof a),
                         dgm_shape_str(ndim, shape, b, sizeof b),
                         (long long)numel, (long long)known);
    /* an empty tensor matches any shape with a 0: its strides must fit */
    int axis = 0;
    if (dgm__shape_count(ndim, out, (int64_t)dgm_dtype_size(t->dtype), NULL,
                         &axis) != DGM__SHAPE_OK)
        return dgm_error(DGM_ESHAPE,
                         "reshape %s -> %s: the non-zero sizes overflow at "
                         "axis %d",
                         dgm_shape_str(t->ndim, t->shape, a, sizeof a),
                         dgm_shape_str(ndim, out, b, sizeof b), axis);
    return 0;
}

/* Strides that view t's elements with `shape` without copying, following
 * the rule PyTorch's view uses: the new shape must split or merge only
 * runs of old dims that are contiguous with each other. */
static int view_strides(const dgm_tensor *t, int ndim, const int64_t *shape,
                        int64_t *strides)
{
    if (dgm_tensor_numel(t) == 0) {
        dgm_contiguous_strides(ndim, shape, strides);
        return 0;
    }
    int64_t osh[DGM_MAX_DIMS], ost[DGM_MAX_DIMS];
    int ond = t->ndim;
    for (int d = 0; d < ond; d++) {
        osh[d] = t->shape[d];
        ost[d] = t->strides[d];
    }
    if (ond == 0) { /* a scalar is a [1] with stride 1 */
        osh[0] = 1;
        ost[0] = 1;
        ond = 1;
    }
    int view_d = ndim - 1;
    int64_t chunk_base = ost[ond - 1];
    int64_t tensor_numel = 1, view_numel = 1;
    for (int td = ond - 1; td >= 0; td--) {
        tensor_numel *= osh[td];
        if (td == 0 ||
            (osh[td - 1] != 1 && ost[td - 1] != tensor_numel * chunk_base)) {
            while (view_d >= 0 &&
                   (view_numel < tensor_numel || shape[view_d] == 1)) {
                strides[view_d] = view_numel * chunk_base;
                view_numel *= shape[view_d];
                view_d--;
            }
            if (view_numel != tensor_numel)
                return -1;
            if (td > 0) {
                chunk_base = ost[td - 1];
                tensor_numel = 1;
                view_numel = 1;
            }
        }
    }
    return view_d == -1 ? 0 : -1;
}

int dgm_view_reshape(dgm_tensor *t, int ndim, const int64_t *shape)
{
    if (!t)
        return dgm_error(DGM_EINVAL, "reshape: NULL tensor");
    int64_t sh[DGM_MAX_DIMS], st[DGM_MAX_DIMS];
    int rc = resolve_shape(t, ndim, shape, sh);
    if (rc < 0)
        return rc;
    if (view_strides(t, ndim, sh, st) < 0) {
        char a[200], b[200];
        return dgm_error(DGM_ESHAPE,
                         "reshape %s -> %s: the strides of the input do not "
                         "allow a view; copy it to a contiguous tensor first",
                         dgm_shape_str(t->ndim, t->shape, a, sizeof a),
                         dgm_shape_str(ndim, sh, b, sizeof b));
    }
    t->ndim = ndim;
    for (int d = 0; d < DGM_MAX_DIMS; d++) {
        t->shape[d] = d < ndim ? sh[d] : 0;
        t->strides[d] = d < ndim ? st[d] : 0;
    }
    return 0;
}

int dgm_view_permute(dgm_tensor *t, const int *perm)
{
    if (!t)
        return dgm_error(DGM_EINVAL, "permute: NULL tensor");
    if (t->ndim > 0 && !perm)
        return dgm_error(DGM_EINVAL, "permute: NULL perm");
    int seen[DGM_MAX_DIMS] = {0};
    for (int d = 0; d < t->ndim; d++) {
        if (perm[d] < 0 || perm[d] >= t->ndim || seen[perm[d]]) {
            char a[200];
            return dgm_error(DGM_EINVAL,
                             "permute %s: perm[%d] = %d is not a permutation "
                             "of 0..%d",
                             dgm_shape_str(t->ndim, t->shape, a, sizeof a), d,
                             perm[d], t->ndim - 1);
        }
        seen[perm[d]] = 1;
    }
    int64_t sh[DGM_MAX_DIMS], st[DGM_MAX_DIMS];
    for (int d = 0; d < t->ndim; d++) {
        sh[d] = t->shape[perm[d]];
        st[d] = t->strides[perm[d]];
    }
    for (int d = 0; d < t->ndim; d++) {
        t->shape[d] = sh[d];
        t->strides[d] = st[d];
    }
    return 0;
}

int dgm_view_slice(dgm_tensor *t, int axis, int64_t start, int64_t stop,
                   int64_t step)
{
    if (!t)
        return dgm_error(DGM_EINVAL, "slice: NULL tensor");
    char a[200];
    int ax = axis < 0 ? axis + t->ndim : axis;
    if (ax < 0 || ax >= t->ndim)
        return dgm_error(DGM_EINVAL, "slice %s: axis %d out of range",
                         dgm_shape_str(t->ndim, t->shape, a, sizeof a), axis);
    int64_t n = t->shape[ax];
    if (step < 1 || start < 0 || stop < start || stop > n)
        return dgm_error(DGM_ESHAPE,
                         "slice %s: [%lld:%lld:%lld] on axis %d of size %lld "
                         "(need 0 <= start <= stop <= size, step >= 1)",
                         dgm_shape_str(t->ndim, t->shape, a, sizeof a),
                         (long long)start, (long long)stop, (long long)step,
                         axis, (long long)n);
    int64_t len = (stop - start + step - 1) / step;
    if (len > 0)
        t->data = (char *)t->data +
                  start * t->strides[ax] * (int64_t)dgm_dtype_size(t->dtype);
    t->shape[ax] = len;
    t->strides[ax] *= step;
    return 0;
}

dgm_tensor *dgm_tensor_view(const dgm_tensor *t)
{
    if (!t) {
        dgm_error(DGM_EINVAL, "tensor_view: NULL tensor");
        return NULL;
    }
    dgm_tensor *v = tensor_struct();
    if (!v)
        return NULL;
    *v = *t;
    dgm__storage_retain(v->storage);
    return v;
}

/* Apply an in-place view op to a copy of t so a failure allocates nothing. */
#define VIEW_OF(t, call)                                                       \
    do {                                                                       \
        if (!(t)) {                                                            \
            dgm_error(DGM_EINVAL, "view: NULL tensor");                        \
            return NULL;                                                       \
        }                                                                      \
        dgm_tensor tmp_ = *(t);                                                \
        dgm_tensor *v_ = &tmp_;                                                \
        if (call < 0)                                                          \
            return NULL;                                                       \
        dgm_tensor *out_ = tensor_struct();                                    \
        if (!out_)                                                             \
            return NULL;                                                       \
        *out_ = tmp_;                                                          \
        dgm__storage_retain(out_->storage);                                    \
        return out_;                                                           \
    } while (0)

dgm_tensor *dgm_tensor_reshape(const dgm_tensor *t, int ndim,
                               const int64_t *shape)
{
    VIEW_OF(t, dgm_view_reshape(v_, ndim, shape));
}

dgm_tensor *dgm_tensor_permute(const dgm_tensor *t, const int *perm)
{
    VIEW_OF(t, dgm_view_permute(v_, perm));
}

dgm_tensor *dgm_tensor_slice(const dgm_tensor *t, int axis, int64_t start,
                             int64_t stop, int64_t step)
{
    VIEW_OF(t, dgm_view_slice(v_, axis, start, stop, step));
}

/* ---- queries ---------------------------------------------------------- */

int64_t dgm_tensor_numel(const dgm_tensor *t)
{
    return dgm_shape_numel(t->ndim, t->shape);
}

size_t dgm_tensor_nbytes(const dgm_tensor *t)
{
    return (size_t)dgm_tensor_numel(t) * dgm_dtype_size(t->dtype);
}

bool dgm_tensor_is_contiguous(const dgm_tensor *t)
{
    int64_t s = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        if (t->shape[d] == 0)
            return true;
        if (t->shape[d] != 1 && t->strides[d] != s)
            return false;
        s *= t->shape[d];
    }
    return true;
}

bool dgm_tensor_same_shape(const dgm_tensor *a, const dgm_tensor *b)
{
    if (a->ndim != b->ndim)
        return false;
    for (int d = 0; d < a->ndim; d++)
        if (a->shape[d] != b->shape[d])
            return false;
    return true;
}

size_t dgm__tensor_span_bytes(const dgm_tensor *t, int64_t *low_offset)
{
    int64_t lo = 0, hi = 0;
    for (int d = 0; d < t->ndim; d++) {
        if (t->shape[d] == 0) {
            if (low_offset)
                *low_offset = 0;
            return 0;
        }
        int64_t ext = (t->shape[d] - 1) * t->strides[d];
        if (ext < 0)
            lo += ext;
        else
            hi += ext;
    }
    if (low_offset)
        *low_offset = lo;
    return (size_t)(hi - lo + 1) * dgm_dtype_size(t->dtype);
}

/* ---- data movement ---------------------------------------------------- */

/* Offset in elements of the element at a row-major logical index. */
static int64_t flat_offset(const dgm_tensor *t, int64_t i)
{
    int64_t off = 0;
    for (int d = t->ndim - 1; d >= 0; d--) {
        int64_t n = t->shape[d];
        off += (i % n) * t->strides[d];
        i /= n;
    }
    return off;
}

/* Collapse dims that are contiguous in both operands (b may be NULL), so
 * the common dense case is one flat loop. Returns the collapsed rank. */
static int coalesce(const dgm_tensor *a, const dgm_tensor *b, int64_t *sh,
                    int64_t *sa, int64_t *sb)
{
    int nd = 0;
    for (int d = 0; d < a->ndim; d++) {
        if (a->shape[d] == 1)
            continue;
        int64_t bs = b ? b->strides[d] : 0;
        if (nd > 0 && sa[nd - 1] == a->strides[d] * a->shape[d] &&
            (!b || sb[nd - 1] == bs * a->shape[d])) {
            sh[nd - 1] *= a->shape[d];
            sa[nd - 1] = a->strides[d];
            sb[nd - 1] = bs;
            continue;
        }
        sh[nd] = a->shape[d];
        sa[nd] = a->strides[d];
        sb[nd] = bs;
        nd++;
    }
    if (nd == 0) {
        sh[0] = 1;
        sa[0] = sb[0] = 0;
        nd = 1;
    }
    return nd;
}

static void copy_inner(char *d, int64_t sd, const char *s, int64_t ss,
                       int64_t n, size_t es)
{
    if (sd == (int64_t)es && ss == (int64_t)es) {
        memmove(d, s, (size_t)n * es);
        return;
    }
    switch (es) {
    case 1:
        for (int64_t i = 0; i < n; i++)
            d[i * sd] = s[i * ss];
        break;
    case 4:
        for (int64_t i = 0; i < n; i++)
            memcpy(d + i * sd, s + i * ss, 4);
        break;
    default:
        for (int64_t i = 0; i < n; i++)
            memcpy(d + i * sd, s + i * ss, 8);
        break;
    }
}

int dgm_tensor_copy(dgm_tensor *dst, const dgm_tensor *src)
{
    if (!dst || !src)
        return dgm_error(DGM_EINVAL, "tensor_copy: NULL tensor");
    char a[240], b[240];
    if (dst->dtype != src->dtype)
        return dgm_error(DGM_EDTYPE,
                         "tensor_copy: dtypes differ (dst %s, "
                         "src %s)",
                         dgm_tensor_describe(dst, a, sizeof a),
                         dgm_tensor_describe(src, b, sizeof b));
    if (!dgm_tensor_same_shape(dst, src))
        return dgm_error(DGM_ESHAPE,
                         "tensor_copy: shapes differ (dst %s, "
                         "src %s)",
                         dgm_tensor_describe(dst, a, sizeof a),
                         dgm_tensor_describe(src, b, sizeof b));
    if (dgm_tensor_numel(dst) == 0 || dst->data == src->data)
        return 0;
    int64_t sh[DGM_MAX_DIMS], sd[DGM_MAX_DIMS], ss[DGM_MAX_DIMS];
    int nd = coalesce(dst, src, sh, sd, ss);
    size_t es = dgm_dtype_size(dst->dtype);
    int64_t idx[DGM_MAX_DIMS] = {0};
    char *pd = dst->data;
    const char *ps = src->data;
    for (;;) {
        copy_inner(pd, sd[nd - 1] * (int64_t)es, ps, ss[nd - 1] * (int64_t)es,
                   sh[nd - 1], es);
        int d = nd - 2;
        for (; d >= 0; d--) {
            pd += sd[d] * (int64_t)es;
            ps += ss[d] * (int64_t)es;
            if (++idx[d] < sh[d])
                break;
            pd -= sd[d] * sh[d] * (int64_t)es;
            ps -= ss[d] * sh[d] * (int64_t)es;
            idx[d] = 0;
        }
        if (d < 0)
            return 0;
    }
}

/* Store v at p converted to dtype (saturating nothing: C conversion). */
static void store(dgm_dtype dt, void *p, double v)
{
    switch (dt) {
    case DGM_F32:
        *(float *)p = (float)v;
        break;
    case DGM_F64:
        *(double *)p = v;
        break;
    case DGM_I32:
        *(int32_t *)p = (int32_t)v;
        break;
    case DGM_I64:
        *(int64_t *)p = (int64_t)v;
        break;
    case DGM_U8:
        *(uint8_t *)p = (uint8_t)v;
        break;
    case DGM_U64:
        *(uint64_t *)p = (uint64_t)v;
        break;
    default:
        break;
    }
}

static double load(dgm_dtype dt, const void *p)
{
    switch (dt) {
    case DGM_F32:
        return *(const float *)p;
    case DGM_F64:
        return *(const double *)p;
    case DGM_I32:
        return *(const int32_t *)p;
    case DGM_I64:
        return (double)*(const int64_t *)p;
    case DGM_U8:
        return *(const uint8_t *)p;
    case DGM_U64:
        return (double)*(const uint64_t *)p;
    default:
        return NAN;
    }
}

int dgm_tensor_fill(dgm_tensor *t, double value)
{
    if (!t)
        return dgm_error(DGM_EINVAL, "tensor_fill: NULL tensor");
    if (!dtype_ok(t->dtype))
        return dgm_error(DGM_EDTYPE, "tensor_fill: unknown dtype %d",
                         (int)t->dtype);
    if (dgm_tensor_numel(t) == 0)
        return 0;
    size_t es = dgm_dtype_size(t->dtype);
    unsigned char one[8];
    store(t->dtype, one, value);
    /* The hot cases (zeroing gradients each step, f32 constants) as plain
     * loops the compiler turns into memset / vector stores. */
    if (dgm_tensor_is_contiguous(t)) {
        int64_t n = dgm_tensor_numel(t);
        bool zero = true;
        for (size_t b = 0; b < es; b++)
            zero &= one[b] == 0;
        if (zero) {
            memset(t->data, 0, (size_t)n * es);
            return 0;
        }
        if (t->dtype == DGM_F32) {
            float v, *f = t->data;
            memcpy(&v, one, sizeof v);
            for (int64_t i = 0; i < n; i++)
                f[i] = v;
            return 0;
        }
    }
    int64_t sh[DGM_MAX_DIMS], st[DGM_MAX_DIMS], unused[DGM_MAX_DIMS];
    int nd = coalesce(t, NULL, sh, st, unused);
    int64_t idx[DGM_MAX_DIMS] = {0};
    char *p = t->data;
    for (;;) {
        int64_t s = st[nd - 1] * (int64_t)es;
        for (int64_t i = 0; i < sh[nd - 1]; i++)
            memcpy(p + i * s, one, es);
        int d = nd - 2;
        for (; d >= 0; d--) {
            p += st[d] * (int64_t)es;
            if (++idx[d] < sh[d])
                break;
            p -= st[d] * sh[d] * (int64_t)es;
            idx[d] = 0;
        }
        if (d < 0)
            return 0;
    }
}

double dgm_tensor_get(const dgm_tensor *t, int64_t flat_index)
{
    if (!t || flat_index < 0 || flat_index >= dgm_tensor_numel(t))
        return NAN;
    size_t es = dgm_dtype_size(t->dtype);
    return load(t->dtype, (const char *)t->data +
                              flat_offset(t, flat_index) * (int64_t)es);
}

void dgm_tensor_set(dgm_tensor *t, int64_t flat_index, double v)
{
    if (!t || flat_index < 0 || flat_index >= dgm_tensor_numel(t))
        return;
    size_t es = dgm_dtype_size(t->dtype);
    store(t->dtype, (char *)t->data + flat_offset(t, flat_index) * (int64_t)es,
          v);
}
