/* array.c - the `array` dataset: arrays a user exported from Python, as
 * .npy (NumPy format 1.0/2.0, little-endian, C order) or .safetensors,
 * memory-mapped. Images [N, H, W] (one channel) or [N, C, H, W], or
 * vectors [N, D]; uint8 (scaled as `scale` says) or float32 (as is);
 * labels optional: a .npy file of N integers, or a tensor of the same
 * .safetensors file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pixels.h"

static const dgm_param_spec params[] = {
    DGM_PARAM_PATH("path", .def = ".",
                   .help = "folder the file names are relative to (default: "
                           "the working directory)"),
    DGM_PARAM_STRING("train", .help = "training examples: a .npy or "
                                      ".safetensors file"),
    DGM_PARAM_STRING("test", .def = "\"\"",
                     .help = "test examples (\"\": no test split)"),
    DGM_PARAM_STRING("train_labels", .def = "\"\"",
                     .help = ".npy of N integer labels for `train` (with "
                             ".safetensors: the label tensor's name)"),
    DGM_PARAM_STRING("test_labels", .def = "\"\"",
                     .help = "the same for `test`"),
    DGM_PARAM_STRING("tensor", .def = "x",
                     .help = ".safetensors: the examples' tensor name"),
    DGM_PARAM_CHOICE("scale", .def = "unit", .choices = "unit|symmetric",
                     .help = "uint8 pixels: unit [0, 1] or symmetric "
                             "[-1, 1] (float32 data is used as is)"),
    DGM_PARAM_INT_LIST(
        "classes", .def = "[]", DGM_GE(0), DGM_LE(PX_MAX_CLASSES - 1),
        .help = "keep only these labels in both splits ([] keeps all)"),
    DS_FRACTION_PARAMS,
    DGM_PARAM_INT("seed", .def = "0", DGM_GE(0), DGM_LE(9.2e18),
                  .help = "seed of the train_fraction and label_fraction "
                          "choices"),
    DGM_PARAM_INT("batch_size", .def = "128", DGM_GE(1), DGM_LE(1e9),
                  .help = "examples per batch (read by the host)"),
    DGM_PARAM_BOOL(
        "shuffle", .def = "true",
        .help = "shuffle the training set each epoch (read by the host)"),
    DGM_PARAM_END,
};

/* One array as found in a file: element dtype, shape, its bytes. */
typedef struct found {
    dgm_dtype dtype;
    int ndim;
    int64_t shape[DGM_MAX_DIMS];
    const unsigned char *data;
} found;

static bool ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), m = strlen(tail);
    return n >= m && !strcmp(s + n - m, tail);
}

/* A .safetensors tensor: the file is validated by dgm_st_open, then mapped
 * so that the data stays on disk. */
static int find_st(px_set *d, const char *path, const char *tensor, found *out)
{
    dgm_st_file *f;
    int rc = dgm_st_open(&f, path);
    if (rc < 0)
        return rc;
    int i = dgm_st_find(f, tensor);
    dgm_st_entry e;
    if (i < 0 || (rc = dgm_st_entry_at(f, i, &e)) < 0) {
        dgm_st_close(f);
        return i < 0 ? i : rc;
    }
    static const struct {
        const char *name;
        dgm_dtype t;
    } types[] = {
        {"U8", DGM_U8}, {"F32", DGM_F32}, {"I32", DGM_I32}, {"I64", DGM_I64}};
    rc = DGM_EDTYPE;
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++)
        if (!strcmp(e.dtype, types[k].name)) {
            out->dtype = types[k].t;
            rc = 0;
        }
    if (rc < 0 || e.ndim > DGM_MAX_DIMS) {
        rc = dgm_error(rc < 0 ? rc : DGM_ESHAPE,
                       "%s: tensor '%s' is %s of rank %d: U8, F32, I32 or "
                       "I64 of rank <= %d only",
                       path, tensor, e.dtype, e.ndim, DGM_MAX_DIMS);
        dgm_st_close(f);
        return rc;
    }
    out->ndim = e.ndim;
    memcpy(out->shape, e.shape, (size_t)e.ndim * sizeof *e.shape);
    uint64_t begin = e.begin;
    dgm_st_close(f);
    const unsigned char *map;
    size_t len;
    if ((rc = px_map(d, path, &map, &len)) < 0)
        return rc;
    uint64_t hlen = 0;
    for (int b = 7; b >= 0; b--)
        hlen = hlen << 8 | map[b];
    /* dgm_st_open checked every range against the file's size; the file
     * is re-checked here in case it changed in between. */
    if (hlen > len - 8 || begin > len - 8 - hlen)
        return dgm_error(DGM_EFORMAT, "%s: changed while being opened", path);
    out->data = map + 8 + hlen + begin;
    return 0;
}

/* `name` (the value of cfg's `key`) as an array: a .safetensors file's
 * tensor `tensor`, or a .npy file. */
static int open_file(px_set *d, const dgm_config *cfg, const char *key,
                     const char *name, const char *tensor, found *out)
{
    char path[4096];
    int rc =
        px_join(cfg, key, dgm_cfg_str(cfg, "path"), name, path, sizeof path);
    if (rc < 0)
        return rc;
    if (ends_with(path, ".safetensors"))
        rc = find_st(d, path, tensor, out);
    else {
        const unsigned char *map;
        size_t len;
        dgm_npy_header h;
        if ((rc = px_map(d, path, &map, &len)) == 0 &&
            (rc = dgm_npy_parse(map, len, path, &h)) == 0) {
            out->dtype = h.dtype;
            out->ndim = h.ndim;
            memcpy(out->shape, h.shape, sizeof h.shape);
            out->data = map + h.data_offset;
        }
    }
    if (rc < 0)
        return dgm_error_context("%s: ", key);
    return 0;
}

/* The labels of split sp: N integers of a .npy file, or (with a
 * .safetensors `train`/`test`) a tensor of that file. */
static int load_labels(px_set *d, const dgm_config *cfg, int sp,
                       const char *data_key, const char *key)
{
    const char *name = dgm_cfg_str(cfg, key);
    if (!name[0])
        return 0;
    bool st = ends_with(dgm_cfg_str(cfg, data_key), ".safetensors");
    found y;
    int rc = st ? open_file(d, cfg, key, dgm_cfg_str(cfg, data_key), name, &y)
                : open_file(d, cfg, key, name, NULL, &y);
    if (rc < 0)
        return rc;
    px_split *s = &d->s[sp];
    char a[DGM_MAX_DIMS * 22 + 4];
    if (y.ndim != 1 || y.shape[0] != s->total ||
        (y.dtype != DGM_U8 && y.dtype != DGM_I32 && y.dtype != DGM_I64))
        return dgm_cfg_error(cfg, key, DGM_EFORMAT,
                             "%s: labels are %s %s; expected [%lld] integers "
                             "(uint8, int32 or int64), one per example",
                             name, dgm_dtype_name(y.dtype),
                             dgm_shape_str(y.ndim, y.shape, a, sizeof a),
                             (long long)s->total);
    s->labels = malloc((size_t)(s->total ? s->total : 1) * sizeof *s->labels);
    if (!s->labels)
        return dgm_error(DGM_ENOMEM, "array: out of memory");
    for (int64_t i = 0; i < s->total; i++) {
        if (y.dtype == DGM_U8)
            s->labels[i] = y.data[i];
        else if (y.dtype == DGM_I32) {
            int32_t v;
            memcpy(&v, y.data + 4 * i, 4);
            s->labels[i] = v;
        } else
            memcpy(&s->labels[i], y.data + 8 * i, 8);
    }
    return 0;
}

/* The examples of split sp; the first split fixes the example shape, the
 * other must match it. */
static int load_split(px_set *d, const dgm_config *cfg, int sp, const char *key)
{
    const char *name = dgm_cfg_str(cfg, key);
    found x;
    int rc = open_file(d, cfg, key, name, dgm_cfg_str(cfg, "tensor"), &x);
    if (rc < 0)
        return rc;
    char a[DGM_MAX_DIMS * 22 + 4];
    if ((x.dtype != DGM_U8 && x.dtype != DGM_F32) || x.ndim < 2 || x.ndim > 4)
        return dgm_cfg_error(cfg, key, DGM_EFORMAT,
                             "%s: %s %s; expected uint8 or float32 images "
                             "[N, H, W], [N, C, H, W] or vectors [N, D]",
                             name, dgm_dtype_name(x.dtype),
                             dgm_shape_str(x.ndim, x.shape, a, sizeof a));
    int ndim = x.ndim == 2 ? 1 : 3;
    int64_t dim[3] = {1, 1, 1};
    if (x.ndim == 2)
        dim[0] = x.shape[1];
    else if (x.ndim == 3) {
        dim[1] = x.shape[1];
        dim[2] = x.shape[2];
    } else
        memcpy(dim, x.shape + 1, sizeof dim);
    if (sp == DGM_SPLIT_TRAIN) {
        d->f32 = x.dtype == DGM_F32;
        d->ndim = ndim;
        memcpy(d->dim, dim, sizeof dim);
        if (dim[0] * dim[1] * dim[2] == 0)
            return dgm_cfg_error(cfg, key, DGM_EFORMAT, "%s: empty examples %s",
                                 name,
                                 dgm_shape_str(x.ndim, x.shape, a, sizeof a));
    } else if ((x.dtype == DGM_F32) != d->f32 || ndim != d->ndim ||
               memcmp(dim, d->dim, sizeof dim))
        return dgm_cfg_error(cfg, key, DGM_EFORMAT,
                             "%s: %s %s differs from the training data's "
                             "examples",
                             name, dgm_dtype_name(x.dtype),
                             dgm_shape_str(x.ndim, x.shape, a, sizeof a));
    px_split *s = &d->s[sp];
    s->base = x.data;
    s->stride = (size_t)(dim[0] * dim[1] * dim[2]) * (d->f32 ? 4 : 1);
    s->x_off = 0;
    s->total = x.shape[0];
    return 0;
}

static int ds_create(void **self, const dgm_config *cfg)
{
    px_set *d = px_new("array", cfg);
    if (!d)
        return DGM_ENOMEM;
    int rc = load_split(d, cfg, DGM_SPLIT_TRAIN, "train");
    if (rc == 0 && dgm_cfg_str(cfg, "test")[0])
        rc = load_split(d, cfg, DGM_SPLIT_TEST, "test");
    if (rc == 0)
        rc = load_labels(d, cfg, DGM_SPLIT_TRAIN, "train", "train_labels");
    if (rc == 0 && dgm_cfg_str(cfg, "test")[0])
        rc = load_labels(d, cfg, DGM_SPLIT_TEST, "test", "test_labels");
    if (rc == 0 && d->s[DGM_SPLIT_TEST].total > 0 &&
        !d->s[DGM_SPLIT_TRAIN].labels != !d->s[DGM_SPLIT_TEST].labels)
        rc = dgm_cfg_error(cfg, "test_labels", DGM_EINVAL,
                           "give labels for both splits or for neither");
    return px_create_done(d, cfg, rc, self);
}

static const dgm_dataset_iface iface = {
    .create = ds_create, .info = px_info, .get = px_get, .destroy = px_destroy};

const dgm_plugin_desc px_array_desc = {
    DGM_PLUGIN_HEADER,
    DGM_PLUGIN_DATASET(&iface),
    .name = "array",
    .version = "1.0",
    .summary = ".npy / .safetensors arrays of images or vectors, memory-mapped",
    .params = params,
};

DGM_PLUGIN_NAME(array);
