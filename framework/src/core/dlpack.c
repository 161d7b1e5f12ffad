/* dlpack.c - zero-copy exchange with other frameworks through DLPack 0.6
 * DLManagedTensor (NumPy, PyTorch, ...): export holds a storage reference,
 * import adopts the producer's deleter as the storage's release. */
#include <stdlib.h>
#include <string.h>

#include <dlpack/dlpack.h>

#include "dgm/error.h"
#include "dgm/tensor.h"
#include "tensor_internal.h"

/* ---- export ----------------------------------------------------------- */

/* One allocation carries the managed tensor, its shape and strides, and
 * the storage reference the deleter drops. */
typedef struct export_ctx {
    DLManagedTensor m;
    int64_t shape[DGM_MAX_DIMS];
    int64_t strides[DGM_MAX_DIMS];
    dgm_storage *storage;
} export_ctx;

static void export_deleter(DLManagedTensor *m)
{
    export_ctx *c = m->manager_ctx;
    dgm__storage_release(c->storage);
    free(c);
}

static const struct {
    uint8_t code, bits;
} dl_types[DGM_DTYPE_COUNT] = {
    [DGM_F32] = {kDLFloat, 32}, [DGM_F64] = {kDLFloat, 64},
    [DGM_I32] = {kDLInt, 32},   [DGM_I64] = {kDLInt, 64},
    [DGM_U8] = {kDLUInt, 8},    [DGM_U64] = {kDLUInt, 64},
};

int dgm_tensor_to_dlpack(const dgm_tensor *t, struct DLManagedTensor **out)
{
    if (!t || !out)
        return dgm_error(DGM_EINVAL, "dlpack export: NULL %s",
                         t ? "out" : "tensor");
    if ((unsigned)t->dtype >= DGM_DTYPE_COUNT)
        return dgm_error(DGM_EDTYPE, "dlpack export: unknown dtype %d",
                         (int)t->dtype);
    export_ctx *c = malloc(sizeof *c);
    if (!c)
        return dgm_error(DGM_ENOMEM, "dlpack export: allocating the "
                                     "managed tensor");
    dgm__count_heap_alloc();
    memset(c, 0, sizeof *c);
    for (int d = 0; d < t->ndim; d++) {
        c->shape[d] = t->shape[d];
        c->strides[d] = t->strides[d];
    }
    c->storage = t->storage;
    dgm__storage_retain(c->storage);
    DLTensor *dl = &c->m.dl_tensor;
    /* data is the first element and byte_offset 0, as PyTorch does on the
     * CPU, so the consumer sees exactly t->data. */
    dl->data = t->data;
    dl->device.device_type = kDLCPU;
    dl->device.device_id = 0;
    dl->ndim = t->ndim;
    dl->dtype.code = dl_types[t->dtype].code;
    dl->dtype.bits = dl_types[t->dtype].bits;
    dl->dtype.lanes = 1;
    dl->shape = c->shape;
    dl->strides = c->strides;
    dl->byte_offset = 0;
    c->m.manager_ctx = c;
    c->m.deleter = export_deleter;
    *out = &c->m;
    return 0;
}

/* ---- import ----------------------------------------------------------- */

static void import_release(void *ctx, void *data)
{
    (void)data;
    DLManagedTensor *m = ctx;
    if (m->deleter)
        m->deleter(m);
}

static int dl_dtype(DLDataType t, dgm_dtype *out)
{
    if (t.lanes == 1)
        for (int i = 0; i < DGM_DTYPE_COUNT; i++)
            if (dl_types[i].code == t.code && dl_types[i].bits == t.bits) {
                *out = (dgm_dtype)i;
                return 0;
            }
    return dgm_error(DGM_EDTYPE,
                     "dlpack import: unsupported dtype (code %u, bits %u, "
                     "lanes %u); dgm takes f32, f64, i32, i64, u8, u64",
                     (unsigned)t.code, (unsigned)t.bits, (unsigned)t.lanes);
}

int dgm_tensor_from_dlpack(struct DLManagedTensor *m, dgm_tensor **out)
{
    if (!m || !out)
        return dgm_error(DGM_EINVAL, "dlpack import: NULL %s",
                         m ? "out" : "managed tensor");
    const DLTensor *dl = &m->dl_tensor;
    if (dl->device.device_type != kDLCPU)
        return dgm_error(DGM_EUNSUPPORTED,
                         "dlpack import: device type %d (id %d); dgm takes "
                         "CPU tensors (kDLCPU = %d) only",
                         (int)dl->device.device_type, (int)dl->device.device_id,
                         (int)kDLCPU);
    dgm_dtype dtype = DGM_F32;
    int rc = dl_dtype(dl->dtype, &dtype);
    if (rc < 0)
        return rc;
    if (dl->ndim < 0 || dl->ndim > DGM_MAX_DIMS)
        return dgm_error(DGM_ESHAPE, "dlpack import: rank %d outside [0, %d]",
                         (int)dl->ndim, DGM_MAX_DIMS);
    if (dl->ndim > 0 && !dl->shape)
        return dgm_error(DGM_EINVAL, "dlpack import: NULL shape for rank %d",
                         (int)dl->ndim);

    dgm_tensor tmp;
    memset(&tmp, 0, sizeof tmp);
    tmp.dtype = dtype;
    tmp.ndim = dl->ndim;
    for (int d = 0; d < dl->ndim; d++)
        tmp.shape[d] = dl->shape[d];
    int64_t n;
    int axis = 0;
    if (dgm__shape_count(tmp.ndim, tmp.shape, (int64_t)dgm_dtype_size(dtype),
                         &n, &axis) != DGM__SHAPE_OK)
        return dgm_error(DGM_ESHAPE,
                         "dlpack import: invalid dim %lld at axis %d",
                         (long long)tmp.shape[axis], axis);
    if (dl->strides)
        for (int d = 0; d < dl->ndim; d++)
            tmp.strides[d] = dl->strides[d];
    else
        dgm_contiguous_strides(tmp.ndim, tmp.shape, tmp.strides);
    if (!dl->data && n > 0)
        return dgm_error(DGM_EINVAL,
                         "dlpack import: NULL data for %lld "
                         "elements",
                         (long long)n);
    tmp.data = dl->data ? (char *)dl->data + dl->byte_offset : NULL;

    int64_t low;
    size_t span = dgm__tensor_span_bytes(&tmp, &low);
    char *base = tmp.data
                     ? (char *)tmp.data + low * (int64_t)dgm_dtype_size(dtype)
                     : NULL;
    dgm_tensor *t = malloc(sizeof *t);
    if (!t)
        return dgm_error(DGM_ENOMEM, "dlpack import: allocating a tensor");
    dgm__count_heap_alloc();
    tmp.storage = dgm__storage_wrap(base, span, import_release, m);
    if (!tmp.storage) {
        free(t);
        return dgm_last_code();
    }
    *t = tmp;
    *out = t;
    return 0;
}
