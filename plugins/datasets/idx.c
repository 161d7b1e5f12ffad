/* idx.c - the `idx` dataset: MNIST-style IDX image/label files (by default
 * Fashion-MNIST from Debian), with class subsets, seeded stratified
 * fractions of the training set and of its labels, scaling and
 * binarisation. Images stay u8 in memory and are converted per batch. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dgm/dgm.h"
#include "fractions.h"

#define MAX_CLASSES 65536 /* a sanity cap on label values */

static const dgm_param_spec params[] = {
    DGM_PARAM_PATH("path", .def = "/usr/share/datasets/fashion-mnist",
                   .help = "folder holding the four IDX files"),
    DGM_PARAM_STRING(
        "train_images", .def = "train-images-idx3-ubyte.gz",
        .help = "training images (relative to path; the name without .gz is "
                "tried too)"),
    DGM_PARAM_STRING("train_labels", .def = "train-labels-idx1-ubyte.gz",
                     .help = "training labels"),
    DGM_PARAM_STRING("test_images", .def = "t10k-images-idx3-ubyte.gz",
                     .help = "test images"),
    DGM_PARAM_STRING("test_labels", .def = "t10k-labels-idx1-ubyte.gz",
                     .help = "test labels"),
    DGM_PARAM_CHOICE("scale", .def = "unit", .choices = "unit|symmetric",
                     .help = "pixel range: unit [0, 1] or symmetric [-1, 1]"),
    DGM_PARAM_CHOICE("binarize", .def = "none",
                     .choices = "none|dynamic|threshold",
                     .help = "dynamic: Bernoulli(pixel) per example and fetch; "
                             "threshold: > 0.5"),
    DGM_PARAM_INT_LIST(
        "classes", .def = "[]", DGM_GE(0), DGM_LE(MAX_CLASSES - 1),
        .help = "keep only these labels in both splits ([] keeps all)"),
    DS_FRACTION_PARAMS,
    DGM_PARAM_INT("seed", .def = "0", DGM_GE(0), DGM_LE(9.2e18),
                  .help = "seed for the subset and label choices"),
    DGM_PARAM_INT("batch_size", .def = "128", DGM_GE(1), DGM_LE(1e9),
                  .help = "examples per batch (read by the host)"),
    DGM_PARAM_BOOL(
        "shuffle", .def = "true",
        .help = "shuffle the training set each epoch (read by the host)"),
    DGM_PARAM_END,
};

enum { BIN_NONE, BIN_DYNAMIC, BIN_THRESHOLD };

typedef struct split_data {
    dgm_tensor *images; /* [N, H, W] u8 as loaded */
    dgm_tensor *labels; /* [N] u8 or i32 as loaded */
    int64_t n;          /* examples kept */
    int64_t *keep;      /* kept example -> row in the files */
    float *mask;        /* per kept example; NULL = all 1 */
} split_data;

typedef struct idx_ds {
    split_data s[DGM_SPLIT_COUNT];
    int64_t h, w, n_classes;
    bool symmetric;
    int binarize;
} idx_ds;

static void ds_destroy(void *self)
{
    idx_ds *d = self;
    if (!d)
        return;
    for (int i = 0; i < DGM_SPLIT_COUNT; i++) {
        dgm_tensor_free(d->s[i].images);
        dgm_tensor_free(d->s[i].labels);
        free(d->s[i].keep);
        free(d->s[i].mask);
    }
    free(d);
}

/* path/name (name alone if absolute); if missing and name ends in .gz, the
 * name without it. */
static int load_file(const dgm_config *cfg, const char *key, dgm_tensor **out)
{
    const char *dir = dgm_cfg_str(cfg, "path");
    const char *name = dgm_cfg_str(cfg, key);
    char p[4096];
    int len = name[0] == '/' ? snprintf(p, sizeof p, "%s", name)
                             : snprintf(p, sizeof p, "%s/%s", dir, name);
    if (len < 0 || len >= (int)sizeof p)
        return dgm_cfg_error(cfg, key, DGM_EINVAL, "path too long");
    if (access(p, F_OK) != 0 && len > 3 && strcmp(p + len - 3, ".gz") == 0) {
        p[len - 3] = '\0';
        if (access(p, F_OK) != 0)
            p[len - 3] = '.'; /* report the name as configured */
    }
    int rc = dgm_idx_load(p, out);
    if (rc < 0)
        return dgm_error_context("%s: ", key);
    return 0;
}

static int64_t label_of(const split_data *s, int64_t row)
{
    return s->labels->dtype == DGM_U8
               ? ((const uint8_t *)s->labels->data)[row]
               : ((const int32_t *)s->labels->data)[row];
}

static int load_split(idx_ds *d, const dgm_config *cfg, const char *ik,
                      const char *lk, split_data *s)
{
    int rc = load_file(cfg, ik, &s->images);
    if (rc < 0 || (rc = load_file(cfg, lk, &s->labels)) < 0)
        return rc;
    const dgm_tensor *x = s->images, *y = s->labels;
    char a[96], b[96];
    if (x->ndim != 3 || x->dtype != DGM_U8)
        return dgm_cfg_error(cfg, ik, DGM_EFORMAT,
                             "%s: expected u8 images [N, H, W], got %s",
                             dgm_cfg_str(cfg, ik),
                             dgm_tensor_describe(x, a, sizeof a));
    if (y->ndim != 1 || (y->dtype != DGM_U8 && y->dtype != DGM_I32))
        return dgm_cfg_error(cfg, lk, DGM_EFORMAT,
                             "%s: expected integer labels [N], got %s",
                             dgm_cfg_str(cfg, lk),
                             dgm_tensor_describe(y, a, sizeof a));
    if (x->shape[0] != y->shape[0])
        return dgm_cfg_error(cfg, lk, DGM_EFORMAT,
                             "%s holds %lld labels but %s holds %lld images",
                             dgm_cfg_str(cfg, lk), (long long)y->shape[0],
                             dgm_cfg_str(cfg, ik), (long long)x->shape[0]);
    if (d->h == 0) {
        d->h = x->shape[1];
        d->w = x->shape[2];
    } else if (x->shape[1] != d->h || x->shape[2] != d->w)
        return dgm_cfg_error(cfg, ik, DGM_EFORMAT,
                             "%s: images %s differ in size from the "
                             "training images [%lld, %lld]",
                             dgm_cfg_str(cfg, ik),
                             dgm_tensor_describe(x, b, sizeof b),
                             (long long)d->h, (long long)d->w);
    if (d->h <= 0 || d->w <= 0)
        return dgm_cfg_error(cfg, ik, DGM_EFORMAT, "%s: empty images %s",
                             dgm_cfg_str(cfg, ik),
                             dgm_tensor_describe(x, b, sizeof b));
    for (int64_t i = 0; i < y->shape[0]; i++) {
        int64_t v = label_of(s, i);
        if (v < 0 || v >= MAX_CLASSES)
            return dgm_cfg_error(cfg, lk, DGM_EFORMAT,
                                 "%s: label %lld of example %lld outside "
                                 "[0, %d)",
                                 dgm_cfg_str(cfg, lk), (long long)v,
                                 (long long)i, MAX_CLASSES);
        if (v + 1 > d->n_classes)
            d->n_classes = v + 1;
    }
    return 0;
}

/* label_of for ds_fractions: ctx is the split. */
static int64_t label_at(const void *ctx, int64_t row)
{
    return label_of(ctx, row);
}

static int subset(idx_ds *d, const dgm_config *cfg)
{
    int64_t classes[256];
    int nc = dgm_cfg_int_list(cfg, "classes", classes, 256);
    if (nc > 256)
        return dgm_cfg_error(cfg, "classes", DGM_ERANGE,
                             "at most 256 classes, got %d", nc);
    for (int i = 0; i < nc; i++)
        if (classes[i] >= d->n_classes)
            return dgm_cfg_error(cfg, "classes", DGM_ERANGE,
                                 "class %lld is not in the data (labels "
                                 "0..%lld)",
                                 (long long)classes[i],
                                 (long long)d->n_classes - 1);
    for (int sp = 0; sp < DGM_SPLIT_COUNT; sp++) {
        split_data *s = &d->s[sp];
        int64_t total = s->labels->shape[0];
        s->keep = malloc((size_t)(total ? total : 1) * sizeof *s->keep);
        if (!s->keep)
            return dgm_error(DGM_ENOMEM, "idx: out of memory");
        for (int64_t i = 0; i < total; i++) {
            bool in = nc == 0;
            for (int c = 0; c < nc && !in; c++)
                in = label_of(s, i) == classes[c];
            if (in)
                s->keep[s->n++] = i;
        }
    }
    split_data *tr = &d->s[DGM_SPLIT_TRAIN];
    return ds_fractions(cfg, "idx", (uint64_t)dgm_cfg_int(cfg, "seed"),
                        tr->keep, &tr->n, d->n_classes, label_at, tr,
                        &tr->mask);
}

static int ds_create(void **self, const dgm_config *cfg)
{
    idx_ds *d = calloc(1, sizeof *d);
    if (!d)
        return dgm_error(DGM_ENOMEM, "idx: out of memory");
    d->symmetric = strcmp(dgm_cfg_str(cfg, "scale"), "symmetric") == 0;
    const char *bin = dgm_cfg_str(cfg, "binarize");
    d->binarize = strcmp(bin, "dynamic") == 0     ? BIN_DYNAMIC
                  : strcmp(bin, "threshold") == 0 ? BIN_THRESHOLD
                                                  : BIN_NONE;
    int rc = load_split(d, cfg, "train_images", "train_labels",
                        &d->s[DGM_SPLIT_TRAIN]);
    if (rc == 0)
        rc = load_split(d, cfg, "test_images", "test_labels",
                        &d->s[DGM_SPLIT_TEST]);
    if (rc == 0)
        rc = subset(d, cfg);
    if (rc < 0) {
        ds_destroy(d);
        return rc;
    }
    *self = d;
    return 0;
}

static int ds_info(void *self, dgm_data_info *out)
{
    const idx_ds *d = self;
    memset(out, 0, sizeof *out);
    out->x_shape.ndim = 3;
    out->x_shape.dim[0] = 1;
    out->x_shape.dim[1] = d->h;
    out->x_shape.dim[2] = d->w;
    out->x_dtype = DGM_F32;
    out->has_y = true;
    out->y_shape.ndim = 0;
    out->y_dtype = DGM_I64;
    out->n_classes = d->n_classes;
    out->size[DGM_SPLIT_TRAIN] = d->s[DGM_SPLIT_TRAIN].n;
    out->size[DGM_SPLIT_TEST] = d->s[DGM_SPLIT_TEST].n;
    out->x_min = d->symmetric ? -1.0f : 0.0f;
    out->x_max = 1.0f;
    return 0;
}

/* Refuse a batch tensor that is not [n, rest...] of dtype dt. */
static int check_tensor(const dgm_tensor *t, const char *what, dgm_dtype dt,
                        int ndim, const int64_t *shape)
{
    char a[96], b[96];
    bool ok = t->dtype == dt && t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++)
        ok = t->shape[i] == shape[i];
    if (!ok)
        return dgm_error(DGM_ESHAPE, "idx: batch %s is %s, expected %s %s",
                         what, dgm_tensor_describe(t, a, sizeof a),
                         dgm_shape_str(ndim, shape, b, sizeof b),
                         dgm_dtype_name(dt));
    return 0;
}

static int ds_get(void *self, dgm_split split, const int64_t *idx,
                  dgm_batch *batch, dgm_rng *rng)
{
    const idx_ds *d = self;
    if ((unsigned)split >= DGM_SPLIT_COUNT || !batch || (!idx && batch->n))
        return dgm_error(DGM_EINVAL, "idx: get given a bad split or batch");
    const split_data *s = &d->s[split];
    int64_t n = batch->n;
    int64_t xs[4] = {n, 1, d->h, d->w};
    int rc;
    if (batch->x && (rc = check_tensor(batch->x, "x", DGM_F32, 4, xs)) < 0)
        return rc;
    if (batch->x && !dgm_tensor_is_contiguous(batch->x))
        return dgm_error(DGM_EINVAL, "idx: batch x must be contiguous");
    if (batch->y && (rc = check_tensor(batch->y, "y", DGM_I64, 1, xs)) < 0)
        return rc;
    if (batch->y_mask &&
        (rc = check_tensor(batch->y_mask, "y_mask", DGM_F32, 1, xs)) < 0)
        return rc;
    if (batch->x && d->binarize == BIN_DYNAMIC && !rng)
        return dgm_error(DGM_EINVAL, "idx: dynamic binarisation needs an rng");
    for (int64_t i = 0; i < n; i++)
        if (idx[i] < 0 || idx[i] >= s->n)
            return dgm_error(DGM_ERANGE,
                             "idx: example %lld outside the %s split "
                             "[0, %lld)",
                             (long long)idx[i],
                             split == DGM_SPLIT_TRAIN ? "train" : "test",
                             (long long)s->n);
    int64_t plane = d->h * d->w;
    float lo = d->symmetric ? -1.0f : 0.0f, span = d->symmetric ? 2.0f : 1.0f;
    for (int64_t i = 0; i < n; i++) {
        int64_t row = s->keep[idx[i]];
        if (batch->x) {
            const uint8_t *src = (const uint8_t *)s->images->data + row * plane;
            float *dst = dgm_tensor_f32(batch->x) + i * plane;
            /* One loop per mode, so the common one vectorises. */
            if (d->binarize == BIN_DYNAMIC) {
                for (int64_t k = 0; k < plane; k++) {
                    float p = src[k] * (1.0f / 255.0f);
                    dst[k] = lo + span * (dgm_rng_uniform(rng) < p);
                }
            } else if (d->binarize == BIN_THRESHOLD) {
                for (int64_t k = 0; k < plane; k++)
                    dst[k] = lo + span * (src[k] * (1.0f / 255.0f) > 0.5f);
            } else {
                for (int64_t k = 0; k < plane; k++)
                    dst[k] = lo + span * (src[k] * (1.0f / 255.0f));
            }
        }
        if (batch->y)
            ((int64_t *)batch->y->data)[i * batch->y->strides[0]] =
                label_of(s, row);
        if (batch->y_mask)
            ((float *)batch->y_mask->data)[i * batch->y_mask->strides[0]] =
                s->mask ? s->mask[idx[i]] : 1.0f;
    }
    return 0;
}

static const dgm_dataset_iface iface = {
    .create = ds_create, .info = ds_info, .get = ds_get, .destroy = ds_destroy};

static const dgm_plugin_desc desc = {
    DGM_PLUGIN_HEADER,
    DGM_PLUGIN_DATASET(&iface),
    .name = "idx",
    .version = "1.0",
    .summary = "IDX image/label files (Fashion-MNIST, MNIST)",
    .params = params,

};

DGM_PLUGIN_NAME(idx);

DGM_PLUGIN_EXPORT const dgm_plugin_desc *dgm_plugin_query(uint32_t index)
{
    return index == 0 ? &desc : NULL;
}
