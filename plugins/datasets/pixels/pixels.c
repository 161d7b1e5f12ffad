/* pixels.c - the record store the `cifar`, `array` and `images` datasets
 * share (pixels.h), and the one query function of the module that holds
 * all three. */
#include "pixels.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

px_set *px_new(const char *plugin, const dgm_config *cfg)
{
    px_set *d = calloc(1, sizeof *d);
    if (!d) {
        dgm_error(DGM_ENOMEM, "%s: out of memory", plugin);
        return NULL;
    }
    d->plugin = plugin;
    d->symmetric = dgm_cfg_has(cfg, "scale") &&
                   strcmp(dgm_cfg_str(cfg, "scale"), "symmetric") == 0;
    return d;
}

void px_destroy(void *self)
{
    px_set *d = self;
    if (!d)
        return;
    for (int i = 0; i < DGM_SPLIT_COUNT; i++) {
        free(d->s[i].labels);
        free(d->s[i].keep);
        free(d->s[i].mask);
        free(d->owned[i]);
    }
    free(d->class_names);
    for (int i = 0; i < d->n_maps; i++)
        munmap(d->map[i], d->map_len[i]);
    free(d);
}

int px_map(px_set *d, const char *path, const unsigned char **data, size_t *len)
{
    if (d->n_maps >= PX_MAX_MAPS)
        return dgm_error(DGM_ERANGE, "%s: more than %d files", d->plugin,
                         PX_MAX_MAPS);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return dgm_error(DGM_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        int err = errno;
        close(fd);
        return dgm_error(DGM_EIO, "%s: not a regular file%s%s", path,
                         err ? ": " : "", err ? strerror(err) : "");
    }
    if (st.st_size == 0) {
        close(fd);
        return dgm_error(DGM_EFORMAT, "%s: empty file", path);
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int err = errno;
    close(fd);
    if (p == MAP_FAILED)
        return dgm_error(DGM_EIO, "%s: cannot map: %s", path, strerror(err));
    d->map[d->n_maps] = p;
    d->map_len[d->n_maps++] = (size_t)st.st_size;
    *data = p;
    *len = (size_t)st.st_size;
    return 0;
}

int px_join(const dgm_config *cfg, const char *key, const char *dir,
            const char *name, char *buf, size_t cap)
{
    int n = name[0] == '/' || !dir || !dir[0]
                ? snprintf(buf, cap, "%s", name)
                : snprintf(buf, cap, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= cap)
        return dgm_cfg_error(cfg, key, DGM_EINVAL, "path too long");
    return 0;
}

static size_t elem_size(const px_set *d)
{
    return d->f32 ? 4 : 1;
}

static int64_t plane_of(const px_set *d)
{
    int64_t n = 1;
    for (int i = 0; i < d->ndim; i++)
        n *= d->dim[i];
    return n;
}

/* The min and max over the kept records of f32 data; a NaN or infinity
 * is refused, since no model trains on it. */
static int scan_f32(px_set *d)
{
    int64_t plane = plane_of(d);
    float lo = INFINITY, hi = -INFINITY;
    for (int sp = 0; sp < DGM_SPLIT_COUNT; sp++) {
        const px_split *s = &d->s[sp];
        for (int64_t i = 0; i < s->n; i++) {
            const unsigned char *r =
                s->base + (size_t)s->keep[i] * s->stride + s->x_off;
            for (int64_t k = 0; k < plane; k++) {
                float v;
                memcpy(&v, r + 4 * k, 4);
                if (!isfinite(v))
                    return dgm_error(DGM_EFORMAT,
                                     "%s: %s example %lld holds a "
                                     "non-finite value",
                                     d->plugin, sp ? "test" : "train",
                                     (long long)s->keep[i]);
                lo = v < lo ? v : lo;
                hi = v > hi ? v : hi;
            }
        }
    }
    d->x_min = lo <= hi ? lo : 0.0f;
    d->x_max = lo <= hi ? hi : 1.0f;
    return 0;
}

int px_finish(px_set *d, const dgm_config *cfg, bool int_classes)
{
    int64_t count = 0;
    for (int sp = 0; sp < DGM_SPLIT_COUNT; sp++) {
        const px_split *s = &d->s[sp];
        for (int64_t i = 0; s->labels && i < s->total; i++) {
            if (s->labels[i] < 0 || s->labels[i] >= PX_MAX_CLASSES)
                return dgm_error(DGM_EFORMAT,
                                 "%s: label %lld of %s example %lld outside "
                                 "[0, %d)",
                                 d->plugin, (long long)s->labels[i],
                                 sp ? "test" : "train", (long long)i,
                                 PX_MAX_CLASSES);
            if (s->labels[i] + 1 > count)
                count = s->labels[i] + 1;
        }
    }
    if (d->n_classes == 0)
        d->n_classes = count;
    int64_t classes[256];
    int nc = int_classes ? dgm_cfg_int_list(cfg, "classes", classes, 256) : 0;
    if (nc > 256)
        return dgm_cfg_error(cfg, "classes", DGM_ERANGE,
                             "at most 256 classes, got %d", nc);
    if (nc > 0 && d->n_classes == 0)
        return dgm_cfg_error(cfg, "classes", DGM_EINVAL,
                             "the data has no labels to pick classes from");
    for (int i = 0; i < nc; i++)
        if (classes[i] >= d->n_classes)
            return dgm_cfg_error(cfg, "classes", DGM_ERANGE,
                                 "class %lld is not in the data (labels "
                                 "0..%lld)",
                                 (long long)classes[i],
                                 (long long)d->n_classes - 1);
    for (int sp = 0; sp < DGM_SPLIT_COUNT; sp++) {
        px_split *s = &d->s[sp];
        s->n = 0;
        s->keep = malloc((size_t)(s->total ? s->total : 1) * sizeof *s->keep);
        if (!s->keep)
            return dgm_error(DGM_ENOMEM, "%s: out of memory", d->plugin);
        for (int64_t i = 0; i < s->total; i++) {
            bool in = nc == 0;
            for (int c = 0; c < nc && !in; c++)
                in = s->labels[i] == classes[c];
            if (in)
                s->keep[s->n++] = i;
        }
    }
    if (d->s[DGM_SPLIT_TRAIN].n == 0)
        return dgm_error(DGM_EFORMAT, "%s: the training split is empty%s",
                         d->plugin, nc ? " after the class subset" : "");
    if (d->f32)
        return scan_f32(d);
    d->x_min = d->symmetric ? -1.0f : 0.0f;
    d->x_max = 1.0f;
    return 0;
}

static int64_t label_at(const void *ctx, int64_t row)
{
    return ((const px_split *)ctx)->labels[row];
}

int px_fractions(px_set *d, const dgm_config *cfg)
{
    px_split *tr = &d->s[DGM_SPLIT_TRAIN];
    return ds_fractions(cfg, d->plugin, (uint64_t)dgm_cfg_int(cfg, "seed"),
                        tr->keep, &tr->n, d->n_classes,
                        tr->labels ? label_at : NULL, tr, &tr->mask);
}

int px_create_done(px_set *d, const dgm_config *cfg, int rc, void **self)
{
    if (rc == 0)
        rc = px_finish(d, cfg, true);
    if (rc == 0)
        rc = px_fractions(d, cfg);
    if (rc < 0) {
        px_destroy(d);
        return rc;
    }
    *self = d;
    return 0;
}

int px_info(void *self, dgm_data_info *out)
{
    const px_set *d = self;
    memset(out, 0, sizeof *out);
    out->x_shape.ndim = d->ndim;
    for (int i = 0; i < d->ndim; i++)
        out->x_shape.dim[i] = d->dim[i];
    out->x_dtype = DGM_F32;
    out->has_y = d->n_classes > 0;
    out->y_shape.ndim = 0;
    out->y_dtype = DGM_I64;
    out->n_classes = d->n_classes;
    out->size[DGM_SPLIT_TRAIN] = d->s[DGM_SPLIT_TRAIN].n;
    out->size[DGM_SPLIT_TEST] = d->s[DGM_SPLIT_TEST].n;
    out->x_min = d->x_min;
    out->x_max = d->x_max;
    return 0;
}

/* Refuse a batch tensor that is not [n, rest...] of dtype dt. */
static int check_tensor(const px_set *d, const dgm_tensor *t, const char *what,
                        dgm_dtype dt, int ndim, const int64_t *shape)
{
    char a[96], b[96];
    bool ok = t->dtype == dt && t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++)
        ok = t->shape[i] == shape[i];
    if (!ok)
        return dgm_error(DGM_ESHAPE, "%s: batch %s is %s, expected %s %s",
                         d->plugin, what, dgm_tensor_describe(t, a, sizeof a),
                         dgm_shape_str(ndim, shape, b, sizeof b),
                         dgm_dtype_name(dt));
    return 0;
}

int px_get(void *self, dgm_split split, const int64_t *idx, dgm_batch *batch,
           dgm_rng *rng)
{
    (void)rng;
    const px_set *d = self;
    if ((unsigned)split >= DGM_SPLIT_COUNT || !batch || (!idx && batch->n))
        return dgm_error(DGM_EINVAL, "%s: get given a bad split or batch",
                         d->plugin);
    const px_split *s = &d->s[split];
    int64_t n = batch->n;
    int64_t xs[4] = {n, d->dim[0], d->dim[1], d->dim[2]};
    int rc;
    if (batch->x &&
        (rc = check_tensor(d, batch->x, "x", DGM_F32, 1 + d->ndim, xs)) < 0)
        return rc;
    if (batch->x && !dgm_tensor_is_contiguous(batch->x))
        return dgm_error(DGM_EINVAL, "%s: batch x must be contiguous",
                         d->plugin);
    if (batch->y && !s->labels && n > 0)
        return dgm_error(DGM_EINVAL, "%s: the data has no labels", d->plugin);
    if (batch->y && (rc = check_tensor(d, batch->y, "y", DGM_I64, 1, xs)) < 0)
        return rc;
    if (batch->y_mask &&
        (rc = check_tensor(d, batch->y_mask, "y_mask", DGM_F32, 1, xs)) < 0)
        return rc;
    for (int64_t i = 0; i < n; i++)
        if (idx[i] < 0 || idx[i] >= s->n)
            return dgm_error(DGM_ERANGE,
                             "%s: example %lld outside the %s split "
                             "[0, %lld)",
                             d->plugin, (long long)idx[i],
                             split == DGM_SPLIT_TRAIN ? "train" : "test",
                             (long long)s->n);
    int64_t plane = plane_of(d);
    float lo = d->symmetric ? -1.0f : 0.0f, span = d->symmetric ? 2.0f : 1.0f;
    for (int64_t i = 0; i < n; i++) {
        int64_t row = s->keep[idx[i]];
        const unsigned char *src = s->base + (size_t)row * s->stride + s->x_off;
        if (batch->x) {
            float *dst = dgm_tensor_f32(batch->x) + i * plane;
            if (d->f32)
                memcpy(dst, src, (size_t)plane * elem_size(d));
            else
                for (int64_t k = 0; k < plane; k++)
                    dst[k] = lo + span * (src[k] * (1.0f / 255.0f));
        }
        if (batch->y)
            ((int64_t *)batch->y->data)[i * batch->y->strides[0]] =
                s->labels[row];
        if (batch->y_mask)
            ((float *)batch->y_mask->data)[i * batch->y_mask->strides[0]] =
                s->mask ? s->mask[idx[i]] : 1.0f;
    }
    return 0;
}

/* ---- the module's plugins ---------------------------------------------- */

extern const dgm_plugin_desc px_cifar_desc, px_array_desc, px_images_desc;

DGM_PLUGIN_EXPORT const dgm_plugin_desc *dgm_plugin_query(uint32_t index)
{
    static const dgm_plugin_desc *const all[] = {&px_cifar_desc, &px_array_desc,
                                                 &px_images_desc};
    return index < sizeof all / sizeof all[0] ? all[index] : NULL;
}
