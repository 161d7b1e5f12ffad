/* idx.c - IDX arrays (the MNIST format): big-endian header and data, read
 * through zlib so gzipped and raw files load alike, validated before any
 * tensor is made. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "dgm/io.h"
#include "tensor_internal.h"

typedef struct idx_type {
    unsigned char code;
    size_t size;   /* bytes per element in the file */
    dgm_dtype out; /* the tensor's dtype */
    const char *name;
} idx_type;

static const idx_type idx_types[] = {
    {0x08, 1, DGM_U8, "unsigned byte"}, {0x09, 1, DGM_I32, "signed byte"},
    {0x0B, 2, DGM_I32, "short"},        {0x0C, 4, DGM_I32, "int"},
    {0x0D, 4, DGM_F32, "float"},        {0x0E, 8, DGM_F64, "double"},
};

/* Read up to n bytes; returns the count, or -1 on a zlib error (text in
 * *why). A short count without error is the end of the data. */
static int64_t gz_read_n(gzFile gz, void *buf, uint64_t n, const char **why)
{
    uint64_t got = 0;
    char *p = buf;
    while (got < n) {
        uint64_t want = n - got;
        unsigned chunk = want > (1u << 30) ? (1u << 30) : (unsigned)want;
        int r = gzread(gz, p + got, chunk);
        if (r < 0) {
            int errnum;
            *why = gzerror(gz, &errnum);
            return -1;
        }
        if (r == 0) {
            int errnum;
            const char *msg = gzerror(gz, &errnum);
            /* A cut gzip stream ends with Z_BUF_ERROR, not an error return. */
            if (errnum != Z_OK) {
                *why = msg;
                return (int64_t)got;
            }
            break;
        }
        got += (uint64_t)r;
    }
    return (int64_t)got;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           (uint32_t)p[3];
}

/* Convert n big-endian elements of type t from raw into dst (of t->out). */
static void convert(void *dst, const unsigned char *raw, uint64_t n,
                    const idx_type *t)
{
    switch (t->code) {
    case 0x08:
        memcpy(dst, raw, (size_t)n);
        break;
    case 0x09:
        for (uint64_t i = 0; i < n; i++)
            ((int32_t *)dst)[i] = (int8_t)raw[i];
        break;
    case 0x0B:
        for (uint64_t i = 0; i < n; i++)
            ((int32_t *)dst)[i] =
                (int16_t)(uint16_t)(raw[2 * i] << 8 | raw[2 * i + 1]);
        break;
    case 0x0C:
        for (uint64_t i = 0; i < n; i++)
            ((int32_t *)dst)[i] = (int32_t)be32(raw + 4 * i);
        break;
    case 0x0D:
        for (uint64_t i = 0; i < n; i++) {
            uint32_t u = be32(raw + 4 * i);
            memcpy((float *)dst + i, &u, 4);
        }
        break;
    case 0x0E:
        for (uint64_t i = 0; i < n; i++) {
            uint64_t u = (uint64_t)be32(raw + 8 * i) << 32 | be32(raw + 8 * i + 4);
            memcpy((double *)dst + i, &u, 8);
        }
        break;
    }
}

int dgm_idx_load(const char *path, dgm_tensor **out)
{
    if (!path || !out)
        return dgm_error(DGM_EINVAL, "idx_load: NULL %s", path ? "out" : "path");
    *out = NULL;
    gzFile gz = gzopen(path, "rb");
    if (!gz)
        return dgm_error(DGM_EIO, "%s: cannot open: %s", path,
                         errno ? strerror(errno) : "out of memory");
    int rc = 0;
    unsigned char *raw = NULL;
    const char *why = NULL;
    unsigned char head[4 + 4 * 4];
    int64_t got = gz_read_n(gz, head, 4, &why);
    if (got < 4) {
        rc = dgm_error(DGM_EFORMAT, "%s: %s: %lld bytes, too short for the "
                                    "4-byte IDX magic",
                       path, why ? why : "truncated", (long long)(got < 0 ? 0 : got));
        goto out;
    }
    if (head[0] != 0 || head[1] != 0) {
        rc = dgm_error(DGM_EFORMAT,
                       "%s: not an IDX file: magic %02x %02x %02x %02x does "
                       "not start with two zero bytes",
                       path, head[0], head[1], head[2], head[3]);
        goto out;
    }
    const idx_type *t = NULL;
    for (size_t i = 0; i < sizeof idx_types / sizeof idx_types[0]; i++)
        if (idx_types[i].code == head[2])
            t = &idx_types[i];
    if (!t) {
        rc = dgm_error(DGM_EFORMAT, "%s: unknown IDX type byte 0x%02x", path,
                       head[2]);
        goto out;
    }
    int rank = head[3];
    if (rank < 1 || rank > 4) {
        rc = dgm_error(DGM_EFORMAT, "%s: IDX rank %d outside [1, 4]", path,
                       rank);
        goto out;
    }
    got = gz_read_n(gz, head + 4, 4 * (uint64_t)rank, &why);
    if (got < 4 * rank) {
        rc = dgm_error(DGM_EFORMAT,
                       "%s: truncated header: expected %d dimension bytes, "
                       "got %lld",
                       path, 4 * rank, (long long)(got < 0 ? 0 : got));
        goto out;
    }
    int64_t shape[4], count;
    for (int d = 0; d < rank; d++)
        shape[d] = be32(head + 4 + 4 * d);
    /* Bytes in the file and in the tensor (an element may widen), over the
     * non-zero dims too: a zero dim leaves no data but the tensor's strides
     * still multiply the others. */
    size_t widest =
        dgm_dtype_size(t->out) > t->size ? dgm_dtype_size(t->out) : t->size;
    int axis = 0;
    if (dgm__shape_count(rank, shape, (int64_t)widest, &count, &axis) !=
        DGM__SHAPE_OK) {
        char b[4 * 22 + 4];
        rc = dgm_error(DGM_EFORMAT,
                       "%s: IDX dimensions overflow: %s (zero dims aside) "
                       "as %s elements is too large at dimension %d",
                       path, dgm_shape_str(rank, shape, b, sizeof b),
                       dgm_dtype_name(t->out), axis);
        goto out;
    }
    uint64_t numel = (uint64_t)count, bytes = numel * t->size;
    /* Grow the buffer with the data actually present, so a header that
     * claims terabytes costs nothing before it is found out. */
    uint64_t cap = bytes < (1u << 20) ? bytes : (1u << 20), have = 0;
    raw = malloc(cap + 1);
    if (!raw) {
        rc = dgm_error(DGM_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    for (;;) {
        got = gz_read_n(gz, raw + have, cap + 1 - have, &why);
        if (got < 0) {
            rc = dgm_error(DGM_EFORMAT, "%s: corrupt data: %s", path, why);
            goto out;
        }
        have += (uint64_t)got;
        if (have < cap + 1 || cap == bytes)
            break;
        uint64_t ncap = cap * 2 < bytes ? cap * 2 : bytes;
        unsigned char *p = realloc(raw, ncap + 1);
        if (!p) {
            rc = dgm_error(DGM_ENOMEM, "%s: out of memory", path);
            goto out;
        }
        raw = p;
        cap = ncap;
    }
    if (have < bytes) {
        rc = dgm_error(DGM_EFORMAT,
                       "%s: truncated data: expected %llu bytes, got %llu%s%s",
                       path, (unsigned long long)bytes,
                       (unsigned long long)have, why ? ": " : "",
                       why ? why : "");
        goto out;
    }
    if (have > bytes) {
        rc = dgm_error(DGM_EFORMAT,
                       "%s: trailing bytes after the %llu data bytes", path,
                       (unsigned long long)bytes);
        goto out;
    }
    if (why) {
        rc = dgm_error(DGM_EFORMAT, "%s: corrupt gzip stream after the data: "
                                    "%s", path, why);
        goto out;
    }
    dgm_tensor *x = dgm_tensor_new(t->out, rank, shape);
    if (!x) {
        rc = dgm_error_context("%s: ", path);
        goto out;
    }
    convert(x->data, raw, numel, t);
    *out = x;
out:
    free(raw);
    gzclose(gz);
    return rc;
}
