/* images.h - the `images` dataset's two halves: images.c finds the files
 * (classes, splits) and image_cache.c turns them into the uint8 cache
 * that the dataset maps. */
#ifndef DGM_IMAGES_H
#define DGM_IMAGES_H

#include "pixels.h"

typedef struct img_file {
    char *path;   /* as opened (root/...) */
    int64_t size; /* bytes, and modification time in ns: the cache key */
    int64_t mtime_ns;
    int64_t label; /* -1 without classes */
    int split;     /* DGM_SPLIT_TRAIN or _TEST; -1: by test_fraction */
} img_file;

typedef struct img_opts {
    int size;     /* output side */
    bool crop;    /* resize: crop (no scaling), else shorter side */
    int channels; /* 1 or 3 */
} img_opts;

/* Decode files[0..n) (in parallel), resize each to [C, size, size], and
 * write the cache at cache_path (atomically: temp file, fsync, rename)
 * unless a cache there already holds exactly these files (paths, sizes,
 * mtimes, labels) decoded with these options. Then map it into d: *pixels
 * the records, [n, C, size, size] u8. `decoded` (may be NULL) is set to
 * the number of images decoded (0 on a cache hit). Errors name the image
 * or the cache file. */
int img_cache_open(px_set *d, const char *cache_path, const img_file *files,
                   int64_t n, const img_opts *o, const unsigned char **pixels,
                   int64_t *decoded);

/* Crop and resize one decoded image (interleaved, w x h x c) into dst
 * [c, size, size]: `shorter` takes the centred square of the shorter
 * side and box-filters it to size (area average; upscaling repeats
 * pixels); `crop` takes the centred size x size window (DGM_EFORMAT
 * naming `name` when the image is smaller). */
int img_resize(const dgm_image *img, const img_opts *o, const char *name,
               unsigned char *dst);

#endif
