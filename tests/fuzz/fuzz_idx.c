/* fuzz_idx.c - the IDX reader (data sets, sample files), raw and gzipped.
 * Input: a flag byte, then the file. Flag bit 0 set: the harness gzips the
 * file before writing it, so the fuzzer explores IDX structure behind the
 * gzip path too (inputs that are gzip already are read as they are).
 * Properties: a refusal carries a message naming the file; an accepted
 * raw file holds exactly its header and data (trailing and missing bytes
 * are refused), so the tensor encoded back as IDX with the file's type
 * byte gives the file's bytes again. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "fuzz_common.h"

static void put_be(uint8_t *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

/* t encoded as IDX with type byte `code`; malloc'ed, length in *len. */
static uint8_t *encode(const dgm_tensor *t, uint8_t code, size_t *len)
{
    size_t es = code == 0x08 || code == 0x09 ? 1
                : code == 0x0B               ? 2
                : code == 0x0E               ? 8
                                             : 4;
    size_t n = (size_t)dgm_tensor_numel(t), head = 4 + 4 * (size_t)t->ndim;
    uint8_t *b = malloc(head + n * es + 1);
    if (!b)
        fz_fail("out of memory");
    b[0] = b[1] = 0;
    b[2] = code;
    b[3] = (uint8_t)t->ndim;
    for (int d = 0; d < t->ndim; d++)
        put_be(b + 4 + 4 * d, (uint64_t)t->shape[d], 4);
    const uint8_t *src = t->data;
    for (size_t i = 0; i < n; i++) {
        uint8_t *p = b + head + i * es;
        uint32_t u32;
        uint64_t u64;
        switch (code) {
        case 0x08:
            *p = src[i];
            break;
        case 0x09:
        case 0x0B:
        case 0x0C:
            memcpy(&u32, src + 4 * i, 4);
            put_be(p, u32, (int)es);
            break;
        case 0x0D:
            memcpy(&u32, src + 4 * i, 4);
            put_be(p, u32, 4);
            break;
        default:
            memcpy(&u64, src + 8 * i, 8);
            put_be(p, u64, 8);
        }
    }
    *len = head + n * es;
    return b;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    bool gz = data[0] & 1;
    const uint8_t *file = data + 1;
    size_t n = size - 1;
    char path[4096];
    if (gz) {
        snprintf(path, sizeof path, "%s/in.idx.gz", fz_dir());
        gzFile g = gzopen(path, "wb");
        if (!g || (n && gzwrite(g, file, (unsigned)n) != (int)n) ||
            gzclose(g) != Z_OK)
            fz_fail("cannot write %s", path);
    } else
        fz_write("in.idx", file, n, path, sizeof path);
    dgm_tensor *t;
    int rc = dgm_idx_load(path, &t);
    if (rc < 0) {
        fz_expect_error(rc, path);
        dgm_error_clear();
        return 0;
    }
    bool raw_gzip = !gz && n >= 2 && file[0] == 0x1f && file[1] == 0x8b;
    if (!raw_gzip) {
        if (n < 4)
            fz_fail("accepted a file of %zu bytes", n);
        if (!dgm_tensor_is_contiguous(t))
            fz_fail("the loaded tensor is not contiguous");
        size_t len;
        uint8_t *back = encode(t, file[2], &len);
        if (len != n || memcmp(back, file, n))
            fz_fail("the tensor encoded back (%zu bytes) is not the file "
                    "(%zu bytes)",
                    len, n);
        free(back);
    }
    dgm_tensor_free(t);
    return 0;
}
