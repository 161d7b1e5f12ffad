/* image_cache.c - the `images` dataset's decoding and its cache: every
 * image decoded once, resized to [C, size, size] u8, and written to one
 * file keyed by the file list (paths, sizes, mtimes, labels) and the
 * decode options; later opens with the same key map that file and read no
 * image. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "images.h"

#define CACHE_MAGIC "DGMIMG01"
#define CACHE_HEAD                                                             \
    64 /* header bytes; labels follow, pixels at a 64-multiple                 \
        */

typedef struct cache_head {
    char magic[8];
    uint64_t key[2];
    uint64_t n;
    uint32_t c, h, w, pad;
    char reserved[CACHE_HEAD - 8 - 16 - 8 - 16];
} cache_head;

_Static_assert(sizeof(cache_head) == CACHE_HEAD, "cache header is 64 bytes");

static void fnv(uint64_t *h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        *h ^= b[i];
        *h *= 1099511628211ull;
    }
}

/* Two FNV-1a hashes from different offsets: 128 bits, so an accidental
 * match of a stale cache is out of reach. */
static void cache_key(const img_file *files, int64_t n, const img_opts *o,
                      uint64_t key[2])
{
    key[0] = 14695981039346656037ull;
    key[1] = 0x9e3779b97f4a7c15ull;
    for (int k = 0; k < 2; k++) {
        uint64_t *h = &key[k];
        fnv(h, CACHE_MAGIC, 8);
        int opts[3] = {o->size, o->crop, o->channels};
        fnv(h, opts, sizeof opts);
        fnv(h, &n, sizeof n);
        for (int64_t i = 0; i < n; i++) {
            fnv(h, files[i].path, strlen(files[i].path) + 1);
            fnv(h, &files[i].size, 8);
            fnv(h, &files[i].mtime_ns, 8);
            fnv(h, &files[i].label, 8);
            fnv(h, &files[i].split, sizeof files[i].split);
        }
    }
}

static size_t pixels_at(int64_t n)
{
    size_t a = CACHE_HEAD + 8 * (size_t)n;
    return (a + 63) / 64 * 64;
}

/* ---- resizing ------------------------------------------------------------ */

/* The share of source cell i in output cell j when n_in cells map onto
 * n_out: the overlap of [i, i+1) with [j r, (j+1) r), r = n_in / n_out,
 * over r. */
static double overlap(int n_in, int n_out, int j, int i)
{
    double r = (double)n_in / n_out, a = j * r, b = (j + 1) * r;
    double lo = a > i ? a : i, hi = b < i + 1 ? b : i + 1;
    return hi > lo ? (hi - lo) / r : 0.0;
}

int img_resize(const dgm_image *img, const img_opts *o, const char *name,
               unsigned char *dst)
{
    int c = img->channels, size = o->size;
    if (o->crop) {
        if (img->w < size || img->h < size)
            return dgm_error(DGM_EFORMAT,
                             "%s: %d x %d is smaller than the %d x %d crop "
                             "(resize: crop does not scale; use resize: "
                             "shorter)",
                             name, img->w, img->h, size, size);
        int x0 = (img->w - size) / 2, y0 = (img->h - size) / 2;
        for (int ch = 0; ch < c; ch++)
            for (int y = 0; y < size; y++)
                for (int x = 0; x < size; x++)
                    dst[((size_t)ch * size + y) * size + x] =
                        img->pixels[((size_t)(y0 + y) * img->w + x0 + x) * c +
                                    ch];
        return 0;
    }
    int s = img->w < img->h ? img->w : img->h;
    int x0 = (img->w - s) / 2, y0 = (img->h - s) / 2;
    double r = (double)s / size;
    /* Separable: rows first into tmp [s][size][c], then columns. */
    double *tmp = malloc((size_t)s * size * c * sizeof *tmp);
    if (!tmp)
        return dgm_error(DGM_ENOMEM, "%s: out of memory", name);
    for (int y = 0; y < s; y++)
        for (int j = 0; j < size; j++) {
            int i0 = (int)floor(j * r), i1 = (int)ceil((j + 1) * r);
            for (int ch = 0; ch < c; ch++) {
                double v = 0;
                for (int i = i0; i < i1 && i < s; i++)
                    v += overlap(s, size, j, i) *
                         img->pixels[((size_t)(y0 + y) * img->w + x0 + i) * c +
                                     ch];
                tmp[((size_t)y * size + j) * c + ch] = v;
            }
        }
    for (int j = 0; j < size; j++) {
        int i0 = (int)floor(j * r), i1 = (int)ceil((j + 1) * r);
        for (int x = 0; x < size; x++)
            for (int ch = 0; ch < c; ch++) {
                double v = 0;
                for (int i = i0; i < i1 && i < s; i++)
                    v += overlap(s, size, j, i) *
                         tmp[((size_t)i * size + x) * c + ch];
                long q = lround(v);
                dst[((size_t)ch * size + j) * size + x] =
                    (unsigned char)(q < 0     ? 0
                                    : q > 255 ? 255
                                              : q);
            }
    }
    free(tmp);
    return 0;
}

/* ---- the cache file ------------------------------------------------------ */

static int decode_one(const img_file *f, const img_opts *o, unsigned char *dst)
{
    dgm_image img;
    int rc = dgm_image_load(f->path, o->channels, &img);
    if (rc == 0) {
        rc = img_resize(&img, o, f->path, dst);
        dgm_image_free(&img);
    }
    return rc;
}

/* Whether the file at path is a cache of exactly `key` and shape. */
static bool cache_fits(const unsigned char *map, size_t len,
                       const uint64_t key[2], int64_t n, size_t rec)
{
    cache_head h;
    if (len < CACHE_HEAD)
        return false;
    memcpy(&h, map, sizeof h);
    return !memcmp(h.magic, CACHE_MAGIC, 8) && h.key[0] == key[0] &&
           h.key[1] == key[1] && h.n == (uint64_t)n &&
           len == pixels_at(n) + (size_t)n * rec;
}

static int write_cache(const char *path, const cache_head *h,
                       const img_file *files, int64_t n,
                       const unsigned char *px, size_t rec)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        int rc = dgm_mkdirs(dir);
        if (rc < 0)
            return dgm_error_context("images: cache: ");
    }
    char tmp[4096 + 32];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f)
        return dgm_error(DGM_EIO, "%s: cannot write the image cache: %s", tmp,
                         strerror(errno));
    bool ok = fwrite(h, sizeof *h, 1, f) == 1;
    for (int64_t i = 0; i < n && ok; i++)
        ok = fwrite(&files[i].label, 8, 1, f) == 1;
    static const unsigned char zero[64];
    size_t pad = pixels_at(n) - CACHE_HEAD - 8 * (size_t)n;
    ok = ok && (pad == 0 || fwrite(zero, 1, pad, f) == pad);
    ok = ok && fwrite(px, rec, (size_t)n, f) == (size_t)n;
    ok = fflush(f) == 0 && ok;
    ok = fsync(fileno(f)) == 0 && ok;
    int err = errno;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) < 0) {
        err = ok ? errno : err;
        unlink(tmp);
        return dgm_error(DGM_EIO, "%s: cannot write the image cache: %s", path,
                         strerror(err));
    }
    return 0;
}

int img_cache_open(px_set *d, const char *cache_path, const img_file *files,
                   int64_t n, const img_opts *o, const unsigned char **pixels,
                   int64_t *decoded)
{
    size_t rec = (size_t)o->channels * o->size * o->size;
    uint64_t key[2];
    cache_key(files, n, o, key);
    if (decoded)
        *decoded = 0;
    if (access(cache_path, R_OK) == 0) {
        const unsigned char *map;
        size_t len;
        int rc = px_map(d, cache_path, &map, &len);
        if (rc == 0 && cache_fits(map, len, key, n, rec)) {
            *pixels = map + pixels_at(n);
            return 0;
        }
        /* stale or foreign: rebuilt below (its mapping dies with d) */
    }
    if ((uint64_t)n > SIZE_MAX / rec)
        return dgm_error(DGM_ERANGE,
                         "images: %lld images of %zu bytes "
                         "overflow",
                         (long long)n, rec);
    unsigned char *px = malloc((size_t)n * rec);
    int *rcs = malloc((size_t)n * sizeof *rcs);
    if (!px || !rcs) {
        free(px);
        free(rcs);
        return dgm_error(DGM_ENOMEM,
                         "images: out of memory for %lld "
                         "images of %zu bytes",
                         (long long)n, rec);
    }
#pragma omp parallel for schedule(dynamic, 16)
    for (int64_t i = 0; i < n; i++)
        rcs[i] = decode_one(&files[i], o, px + (size_t)i * rec);
    int rc = 0;
    for (int64_t i = 0; i < n && rc == 0; i++)
        if (rcs[i] < 0) /* again here: the message is the thread's own */
            rc = decode_one(&files[i], o, px + (size_t)i * rec);
    free(rcs);
    if (decoded)
        *decoded = n;
    cache_head h = {.n = (uint64_t)n,
                    .c = (uint32_t)o->channels,
                    .h = (uint32_t)o->size,
                    .w = (uint32_t)o->size};
    memcpy(h.magic, CACHE_MAGIC, 8);
    h.key[0] = key[0];
    h.key[1] = key[1];
    if (rc == 0)
        rc = write_cache(cache_path, &h, files, n, px, rec);
    free(px);
    if (rc < 0)
        return rc;
    const unsigned char *map;
    size_t len;
    if ((rc = px_map(d, cache_path, &map, &len)) < 0)
        return rc;
    if (!cache_fits(map, len, key, n, rec))
        return dgm_error(DGM_EIO,
                         "%s: the image cache changed as it was "
                         "written (another run?)",
                         cache_path);
    *pixels = map + pixels_at(n);
    return 0;
}
