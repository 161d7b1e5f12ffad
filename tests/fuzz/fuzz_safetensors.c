/* fuzz_safetensors.c - the safetensors reader (checkpoints, `dgm inspect`,
 * sample files) on arbitrary files.
 * Properties: a refusal carries a message naming the file; an accepted
 * file describes itself consistently (names sorted and found again, byte
 * ranges that match dtype and shape); the tensors it lets us view and its
 * metadata, written with dgm's writer and read again, come back with the
 * same names, dtypes, shapes, bytes and metadata. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"

static size_t st_size(const char *dtype)
{
    static const struct {
        const char *name;
        size_t size;
    } t[] = {{"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8},
             {"I32", 4}, {"I16", 2}, {"I8", 1},  {"U64", 8},  {"U32", 4},
             {"U16", 2}, {"U8", 1},  {"BOOL", 1}};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (!strcmp(t[i].name, dtype))
            return t[i].size;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[4096], again[4096];
    fz_write("in.safetensors", data, size, path, sizeof path);
    dgm_st_file *f;
    int rc = dgm_st_open(&f, path);
    if (rc < 0) {
        fz_expect_error(rc, path);
        dgm_error_clear();
        return 0;
    }
    int n = dgm_st_count(f);
    dgm_st_writer *w = dgm_st_writer_new();
    if (!w)
        fz_fail("out of memory");
    int added = 0;
    for (int i = 0; i < n; i++) {
        dgm_st_entry e;
        if (dgm_st_entry_at(f, i, &e) < 0)
            fz_fail("entry %d of %d not described", i, n);
        if (strcmp(e.name, dgm_st_name_at(f, i)) || dgm_st_find(f, e.name) != i)
            fz_fail("tensor %d '%s' not found again by name", i, e.name);
        if (i > 0 && strcmp(dgm_st_name_at(f, i - 1), e.name) >= 0)
            fz_fail("names not sorted at %d", i);
        size_t es = st_size(e.dtype);
        if (!es)
            fz_fail("tensor '%s': accepted unknown dtype %s", e.name, e.dtype);
        unsigned __int128 bytes = es;
        for (int d = 0; d < e.ndim; d++) {
            if (e.shape[d] < 0)
                fz_fail("tensor '%s': negative dimension", e.name);
            bytes *= (unsigned __int128)e.shape[d];
        }
        if (e.end < e.begin || bytes != e.end - e.begin)
            fz_fail("tensor '%s': byte range [%llu, %llu) does not hold its "
                    "shape",
                    e.name, (unsigned long long)e.begin,
                    (unsigned long long)e.end);
        dgm_tensor *v;
        if (dgm_st_get(f, e.name, &v) < 0) {
            dgm_error_clear(); /* listed but not viewable: not rewritten */
            continue;
        }
        if (v->ndim != e.ndim ||
            (size_t)dgm_tensor_numel(v) * dgm_dtype_size(v->dtype) !=
                e.end - e.begin)
            fz_fail("tensor '%s': the view is not the tensor described",
                    e.name);
        if ((rc = dgm_st_writer_add(w, e.name, v)) < 0)
            fz_fail("tensor '%s': the writer refused what the reader gave",
                    e.name);
        added++;
    }
    for (int i = 0; i < dgm_st_meta_count(f); i++) {
        const char *k = dgm_st_meta_key_at(f, i);
        if (dgm_st_writer_meta(w, k, dgm_st_meta(f, k)) < 0)
            fz_fail("metadata '%s': the writer refused it", k);
    }
    snprintf(again, sizeof again, "%s/again.safetensors", fz_dir());
    if (dgm_st_writer_write(w, again) < 0)
        fz_fail("the writer could not write what was read");
    dgm_st_file *g;
    if (dgm_st_open(&g, again) < 0)
        fz_fail("what the writer wrote does not read back");
    if (dgm_st_count(g) != added ||
        dgm_st_meta_count(g) != dgm_st_meta_count(f))
        fz_fail("read back: %d tensors and %d metadata, wrote %d and %d",
                dgm_st_count(g), dgm_st_meta_count(g), added,
                dgm_st_meta_count(f));
    for (int i = 0; i < dgm_st_count(g); i++) {
        const char *name = dgm_st_name_at(g, i);
        dgm_st_entry a, b;
        dgm_tensor *va, *vb;
        if (dgm_st_entry_at(f, dgm_st_find(f, name), &a) < 0 ||
            dgm_st_entry_at(g, i, &b) < 0 || dgm_st_get(f, name, &va) < 0 ||
            dgm_st_get(g, name, &vb) < 0)
            fz_fail("read back: tensor '%s' lost", name);
        size_t nb = (size_t)(a.end - a.begin);
        if (strcmp(a.dtype, b.dtype) || a.ndim != b.ndim ||
            (a.ndim && memcmp(a.shape, b.shape, sizeof *a.shape * a.ndim)) ||
            b.end - b.begin != nb || (nb && memcmp(va->data, vb->data, nb)))
            fz_fail("read back: tensor '%s' differs", name);
    }
    for (int i = 0; i < dgm_st_meta_count(f); i++) {
        const char *k = dgm_st_meta_key_at(f, i);
        const char *vg = dgm_st_meta(g, k);
        if (!vg || strcmp(vg, dgm_st_meta(f, k)))
            fz_fail("read back: metadata '%s' differs", k);
    }
    dgm_st_close(g);
    dgm_st_writer_free(w);
    dgm_st_close(f);
    dgm_error_clear();
    return 0;
}
