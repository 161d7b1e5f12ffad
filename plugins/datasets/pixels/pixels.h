/* pixels.h - what the `cifar`, `array` and `images` datasets share: each
 * split is fixed-size records in one buffer (usually a memory-mapped file:
 * CIFAR's own files, a .npy or .safetensors file, the images' cache), with
 * a label per record; a class subset picks records; a batch converts the
 * picked records' pixels (u8 scaled to unit or symmetric, or f32 as is). */
#ifndef DGM_PIXELS_H
#define DGM_PIXELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../fractions.h"
#include "dgm/dgm.h"

#define PX_MAX_CLASSES 65536 /* a sanity cap on label values, as idx's */
#define PX_MAX_MAPS 8

typedef struct px_split {
    const unsigned char *base; /* record 0 */
    size_t stride;             /* bytes from one record to the next */
    size_t x_off;              /* the pixels' offset in a record */
    int64_t total;             /* records */
    int64_t *labels;           /* per record (malloc'ed); NULL: unlabelled */
    int64_t n;                 /* records kept */
    int64_t *keep;             /* kept example -> record */
    float *mask;               /* y_mask per kept example; NULL: all 1 */
} px_split;

typedef struct px_set {
    const char *plugin; /* for messages */
    px_split s[DGM_SPLIT_COUNT];
    int ndim; /* x_shape: [C, H, W] (3) or [D] (1) */
    int64_t dim[3];
    bool f32;          /* elements are little-endian float32, else u8 */
    bool symmetric;    /* u8 to [-1, 1], else [0, 1] */
    int64_t n_classes; /* 0: unlabelled */
    float x_min, x_max;
    void *map[PX_MAX_MAPS]; /* munmap'ed by px_destroy */
    size_t map_len[PX_MAX_MAPS];
    int n_maps;
    void *owned[DGM_SPLIT_COUNT]; /* free'd by px_destroy */
    char *class_names; /* images: the class folders, '\n'-joined (free'd) */
} px_set;

/* A new set for `plugin` (static string), scale from cfg's `scale`; NULL
 * with DGM_ENOMEM set. */
px_set *px_new(const char *plugin, const dgm_config *cfg);
void px_destroy(void *self);

/* Map path read-only into the set (unmapped by px_destroy); *len its size.
 * An empty file is refused (DGM_EFORMAT), an unreadable one DGM_EIO, both
 * naming path. */
int px_map(px_set *d, const char *path, const unsigned char **data,
           size_t *len);

/* After the plugin filled the splits' records and labels: check the
 * labels (< PX_MAX_CLASSES), count the classes (unless the plugin set
 * n_classes), keep the classes of cfg's integer `classes` list when
 * int_classes (in both splits; else keep all), refuse an empty training
 * split, and for u8 data set x_min/x_max from the scale; f32 data scans
 * the kept records for them (refusing NaN and infinities). */
int px_finish(px_set *d, const dgm_config *cfg, bool int_classes);

/* After the plugin's keep lists are final: cfg's train_fraction and
 * label_fraction on the training split, seeded with cfg's `seed`, as the
 * idx dataset does (fractions.h). */
int px_fractions(px_set *d, const dgm_config *cfg);

/* The end of cifar's and array's create, given the code of their
 * reading (rc): when 0, px_finish with cfg's `classes` and px_fractions;
 * then the set handed over in *self (0), or destroyed (the first error). */
int px_create_done(px_set *d, const dgm_config *cfg, int rc, void **self);

/* The dataset interface slots, shared. */
int px_info(void *self, dgm_data_info *out);
int px_get(void *self, dgm_split split, const int64_t *idx, dgm_batch *batch,
           dgm_rng *rng);

/* path/name, or name alone when absolute, into buf; DGM_EINVAL naming
 * key when too long. */
int px_join(const dgm_config *cfg, const char *key, const char *dir,
            const char *name, char *buf, size_t cap);

#endif
