/* dgm/io.h - the files dgm reads and writes: safetensors checkpoints, PNG
 * sample grids and IDX datasets (MNIST, Fashion-MNIST), .npy array
 * headers, and PNG/JPEG images decoded for the image datasets.
 *
 * Every reader validates the whole file before handing anything out and
 * refuses a malformed one with DGM_EFORMAT and a message naming the file
 * and the problem; every writer writes "<path>.tmp.<pid>", fsyncs it and
 * renames it over path, so a crash mid-write never leaves a torn file.
 *
 *     dgm_st_writer *w = dgm_st_writer_new();
 *     dgm_st_writer_add(w, "encoder.fc1.weight", weight);
 *     dgm_st_writer_meta(w, "dgm.step", "1200");
 *     int rc = dgm_st_writer_write(w, "ckpt.safetensors");
 *     dgm_st_writer_free(w);
 *
 *     dgm_st_file *f;
 *     dgm_tensor *v;
 *     if (dgm_st_open(&f, "ckpt.safetensors") == 0) {
 *         if (dgm_st_get(f, "encoder.fc1.weight", &v) == 0)
 *             dgm_tensor_copy(weight, v);      // v belongs to f
 *         dgm_st_close(f);
 *     }
 *
 * Ownership:
 *   1. dgm_st_open returns a file the caller closes with dgm_st_close;
 *      names, entries, metadata strings and tensor views it hands out
 *      belong to the file and die with it. On failure there is nothing to
 *      close.
 *   2. dgm_st_writer_new returns a writer freed with dgm_st_writer_free.
 *      The writer copies names and metadata but only references the
 *      tensors: they must stay alive and unchanged until the write.
 *   3. dgm_idx_load returns a tensor the caller frees with dgm_tensor_free.
 */
#ifndef DGM_IO_H
#define DGM_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dgm/error.h"
#include "dgm/export.h"
#include "dgm/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ====================================================================== */
/* safetensors: reading                                                   */
/* ====================================================================== */

/* The largest JSON header dgm accepts, as the reference implementation. */
#define DGM_ST_MAX_HEADER 100000000u

typedef struct dgm_st_file dgm_st_file;

/* One tensor as the file describes it. */
typedef struct dgm_st_entry {
    const char *name;
    const char *dtype;    /* "F32", "BF16", ... as spelt in the file */
    int ndim;
    const int64_t *shape; /* ndim values (NULL for rank 0) */
    uint64_t begin, end;  /* byte range in the data buffer */
} dgm_st_entry;

/* Read and validate path (header length cap, JSON, dtypes, shapes, sizes,
 * contiguous offsets from 0 with no holes or overlaps, exact file size,
 * unique names, __metadata__ a map of strings). DGM_EIO if it cannot be
 * read, DGM_EFORMAT naming the file (and tensor) if it is malformed. */
DGM_API int dgm_st_open(dgm_st_file **out, const char *path);
DGM_API void dgm_st_close(dgm_st_file *f);

/* Tensors, sorted by name. */
DGM_API int dgm_st_count(const dgm_st_file *f);
DGM_API const char *dgm_st_name_at(const dgm_st_file *f, int i);
/* The index of name, or DGM_ENOTFOUND (message names file and tensor). */
DGM_API int dgm_st_find(const dgm_st_file *f, const char *name);
/* Description of tensor i (for `dgm inspect`); DGM_EINVAL if i is out of
 * range. */
DGM_API int dgm_st_entry_at(const dgm_st_file *f, int i, dgm_st_entry *out);
/* A read-only view of a tensor, borrowed from f: do not free it, do not
 * write through it, do not use it after dgm_st_close. F32, F64, I32, I64,
 * U8 and U64 are viewed directly; other dtypes are listed but refused
 * here with DGM_EDTYPE, ranks above DGM_MAX_DIMS with DGM_ESHAPE. */
DGM_API int dgm_st_get(const dgm_st_file *f, const char *name,
                       dgm_tensor **view);

/* The __metadata__ value of key, or NULL if absent. */
DGM_API const char *dgm_st_meta(const dgm_st_file *f, const char *key);
DGM_API int dgm_st_meta_count(const dgm_st_file *f);
DGM_API const char *dgm_st_meta_key_at(const dgm_st_file *f, int i);

/* The dgm dtype spelt as safetensors spells it ("F32"); NULL if unknown. */
DGM_API const char *dgm_st_dtype_name(dgm_dtype t);

/* ====================================================================== */
/* safetensors: writing                                                   */
/* ====================================================================== */

typedef struct dgm_st_writer dgm_st_writer;

/* NULL (with DGM_ENOMEM set) if out of memory. */
DGM_API dgm_st_writer *dgm_st_writer_new(void);
DGM_API void dgm_st_writer_free(dgm_st_writer *w);
/* Add t (any strides; it is written row-major) under name. DGM_EDUP if the
 * name is taken, DGM_EINVAL for an empty name or "__metadata__". */
DGM_API int dgm_st_writer_add(dgm_st_writer *w, const char *name,
                              const dgm_tensor *t);
/* Set (or replace) a __metadata__ entry. */
DGM_API int dgm_st_writer_meta(dgm_st_writer *w, const char *key,
                               const char *value);
/* Write the file atomically. Tensors are laid out by descending dtype
 * size, then name: every dgm dtype's alignment is its size and the data
 * buffer starts at a multiple of 8, so each tensor starts aligned. The
 * writer may be written again (to another path) afterwards. */
DGM_API int dgm_st_writer_write(dgm_st_writer *w, const char *path);

/* ====================================================================== */
/* PNG sample grids                                                       */
/* ====================================================================== */

/* images [N, H, W] or [N, C, H, W] with C 1 (grey) or 3 (RGB), any dtype
 * and strides. Values map linearly from [lo, hi] to 0..255 (clamped; NaN
 * is 0). Cells are laid out nrow per row (the last row may be short),
 * separated and surrounded by a 2-pixel mid-grey (128) border. */
DGM_API int dgm_png_write_grid(const char *path, const dgm_tensor *images,
                               int nrow, float lo, float hi);

/* ====================================================================== */
/* IDX (MNIST-style) arrays                                               */
/* ====================================================================== */

/* Load an IDX file, gzipped or not (detected from its content). Type bytes
 * 0x08 -> U8; 0x09, 0x0B, 0x0C -> I32; 0x0D -> F32; 0x0E -> F64. Ranks 1 to
 * 4; zero dimensions give an empty tensor. DGM_EFORMAT naming the file for
 * a bad magic, type or rank, a size that overflows, truncated data
 * (expected and actual bytes) or trailing bytes; DGM_EIO if unreadable. */
DGM_API int dgm_idx_load(const char *path, dgm_tensor **out);

/* ====================================================================== */
/* NumPy .npy arrays                                                      */
/* ====================================================================== */

typedef struct dgm_npy_header {
    dgm_dtype dtype; /* |u1 U8, <i4 I32, <i8 I64, <f4 F32, <f8 F64 */
    int ndim;
    int64_t shape[DGM_MAX_DIMS];
    bool fortran_order;   /* always false on success */
    uint64_t data_offset; /* where the C-order data starts in the file */
    uint64_t data_bytes;  /* == the file's length - data_offset */
} dgm_npy_header;

/* Parse the header of a .npy file (format 1.0, 2.0 or 3.0) held whole in
 * data[0..len) (a mapped file), and check that the shape and dtype account
 * for exactly the bytes after it. DGM_EFORMAT naming `name` for a bad
 * magic or version, a malformed header, Fortran order, a big-endian or
 * unsupported dtype, more than DGM_MAX_DIMS dimensions, or a size that
 * disagrees with the data. Nothing to free. */
DGM_API int dgm_npy_parse(const void *data, size_t len, const char *name,
                          dgm_npy_header *out);

/* ====================================================================== */
/* PNG and JPEG images                                                    */
/* ====================================================================== */

/* Images larger than this are refused from their header, before any
 * pixel memory is allocated (a 60000 x 60000 declaration costs nothing). */
#define DGM_IMAGE_MAX_SIDE 16384
#define DGM_IMAGE_MAX_PIXELS (64u << 20)
/* Encoded files larger than this are refused before being read. */
#define DGM_IMAGE_MAX_FILE (256u << 20)

/* Decoded pixels, 8-bit, interleaved: pixels[(y * w + x) * channels + c]. */
typedef struct dgm_image {
    int w, h;
    int channels;          /* 1 grey or 3 RGB, as asked */
    unsigned char *pixels; /* malloc'ed; dgm_image_free */
} dgm_image;

/* Decode a PNG (libpng: any bit depth, palette, grey, alpha, interlaced;
 * 16-bit samples scaled to 8 with rounding) or a JPEG (libjpeg-turbo;
 * grey or YCbCr; CMYK refused) held in data[0..len), recognised by its
 * signature, to `channels` 1 or 3: grey is repeated into RGB, RGB becomes
 * grey as (299 R + 587 G + 114 B) / 1000 rounded, and alpha is
 * composited on black (each channel times alpha / 255, rounded), then
 * dropped. DGM_EFORMAT naming `name` for a file that is neither, a
 * truncated or corrupt one (libjpeg's warnings about corrupt data are
 * errors here), or a declared size over the limits above; DGM_ENOMEM.
 * On failure out is zeroed and there is nothing to free. */
DGM_API int dgm_image_decode(const void *data, size_t len, const char *name,
                             int channels, dgm_image *out);
/* dgm_image_decode of a file (at most DGM_IMAGE_MAX_FILE bytes); DGM_EIO
 * naming path if it cannot be read. */
DGM_API int dgm_image_load(const char *path, int channels, dgm_image *out);
DGM_API void dgm_image_free(dgm_image *img);

/* ---- folders and whole files ------------------------------------------ */

/* mkdir -p: path and every missing parent (mode 0777, umask applies).
 * 0, or DGM_EIO naming the folder that could not be made. */
DGM_API int dgm_mkdirs(const char *path);
/* len bytes of data into path as the writers above do: through
 * "<path>.tmp.<pid>", fsync'ed, renamed over path, so that a reader sees
 * the old file or the whole new one. 0, or DGM_EIO naming the file. */
DGM_API int dgm_write_file_atomic(const char *path, const void *data,
                                  size_t len);

#ifdef __cplusplus
}
#endif
#endif
