/* tp_feed.c - test plugins for feeding and colour: the dataset `tp_rgb`
 * gives [C, S, S] images of a known pattern (no files), optionally with
 * noise drawn from the data stream; the augment `tp_fail_aug` fails on
 * its fail_at-th call, so an error raised on the loader's thread can be
 * checked. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/dgm.h"

/* ---- tp_rgb ------------------------------------------------------------- */

static const dgm_param_spec rgb_params[] = {
    DGM_PARAM_INT("size", .def = "8", DGM_GE(1), DGM_LE(256),
                  .help = "image side S"),
    DGM_PARAM_INT("channels", .def = "3", DGM_GE(1), DGM_LE(4),
                  .help = "channels C"),
    DGM_PARAM_INT("train", .def = "64", DGM_GE(1), DGM_LE(1e6),
                  .help = "training examples"),
    DGM_PARAM_INT("test", .def = "16", DGM_GE(1), DGM_LE(1e6),
                  .help = "test examples"),
    DGM_PARAM_BOOL("symmetric", .def = "false",
                   .help = "values in [-1, 1] instead of [0, 1]"),
    DGM_PARAM_FLOAT("noise", .def = "0", DGM_GE(0),
                    .help = "std of noise drawn from the data stream"),
    DGM_PARAM_INT("batch_size", .def = "16", DGM_GE(1), DGM_LE(1e9),
                  .help = "read by the host"),
    DGM_PARAM_BOOL("shuffle", .def = "true", .help = "read by the host"),
    DGM_PARAM_END,
};

typedef struct rgb {
    int64_t s, c, n[DGM_SPLIT_COUNT];
    bool symmetric;
    float noise;
} rgb;

static int rgb_create(void **self, const dgm_config *cfg)
{
    rgb *o = calloc(1, sizeof *o);
    if (!o)
        return dgm_error(DGM_ENOMEM, "tp_rgb: out of memory");
    o->s = dgm_cfg_int(cfg, "size");
    o->c = dgm_cfg_int(cfg, "channels");
    o->n[DGM_SPLIT_TRAIN] = dgm_cfg_int(cfg, "train");
    o->n[DGM_SPLIT_TEST] = dgm_cfg_int(cfg, "test");
    o->symmetric = dgm_cfg_bool(cfg, "symmetric");
    o->noise = (float)dgm_cfg_float(cfg, "noise");
    *self = o;
    return 0;
}

static int rgb_info(void *self, dgm_data_info *out)
{
    const rgb *o = self;
    memset(out, 0, sizeof *out);
    out->x_shape.ndim = 3;
    out->x_shape.dim[0] = o->c;
    out->x_shape.dim[1] = o->s;
    out->x_shape.dim[2] = o->s;
    out->x_dtype = DGM_F32;
    out->has_y = true;
    out->y_dtype = DGM_I64;
    out->n_classes = 4;
    out->size[DGM_SPLIT_TRAIN] = o->n[DGM_SPLIT_TRAIN];
    out->size[DGM_SPLIT_TEST] = o->n[DGM_SPLIT_TEST];
    out->x_min = o->symmetric ? -1.0f : 0.0f;
    out->x_max = 1.0f;
    return 0;
}

static int rgb_get(void *self, dgm_split split, const int64_t *idx,
                   dgm_batch *b, dgm_rng *rng)
{
    const rgb *o = self;
    int64_t plane = o->s * o->s, img = o->c * plane;
    float lo = o->symmetric ? -1.0f : 0.0f, span = o->symmetric ? 2.0f : 1.0f;
    for (int64_t i = 0; i < b->n; i++) {
        if (idx[i] < 0 || idx[i] >= o->n[split])
            return dgm_error(DGM_ERANGE, "tp_rgb: example %lld out of range",
                             (long long)idx[i]);
        /* example e, channel c, pixel (y, x): (7e + 50c + 3y + 5x) % 256 */
        float *x = dgm_tensor_f32(b->x) + i * img;
        for (int64_t c = 0; c < o->c; c++)
            for (int64_t k = 0; k < plane; k++) {
                int64_t v =
                    (7 * idx[i] + 50 * c + 3 * (k / o->s) + 5 * (k % o->s)) %
                    256;
                x[c * plane + k] = lo + span * (float)v / 255.0f;
                if (o->noise > 0)
                    x[c * plane + k] += o->noise * dgm_rng_normal(rng);
            }
        if (b->y)
            ((int64_t *)b->y->data)[i] = idx[i] % 4;
    }
    return 0;
}

static const dgm_dataset_iface rgb_iface = {
    .create = rgb_create, .info = rgb_info, .get = rgb_get, .destroy = free};

/* ---- tp_fail_aug ------------------------------------------------------- */

static const dgm_param_spec fail_params[] = {
    DGM_PARAM_INT("fail_at", .def = "3", DGM_GE(1), DGM_LE(1e9),
                  .help = "the 1-based call that fails"),
    DGM_PARAM_END,
};

typedef struct fail_aug {
    int64_t fail_at, calls;
} fail_aug;

static int fail_create(void **self, const dgm_config *cfg,
                       const dgm_data_info *data)
{
    (void)data;
    fail_aug *o = calloc(1, sizeof *o);
    if (!o)
        return dgm_error(DGM_ENOMEM, "tp_fail_aug: out of memory");
    o->fail_at = dgm_cfg_int(cfg, "fail_at");
    *self = o;
    return 0;
}

static int fail_apply(void *self, dgm_tensor *x, dgm_rng *rng)
{
    (void)x;
    (void)rng;
    fail_aug *o = self;
    if (++o->calls == o->fail_at)
        return dgm_error(DGM_EPLUGIN, "tp_fail_aug: failing at call %lld",
                         (long long)o->calls);
    return 0;
}

static const dgm_augment_iface fail_iface = {
    .create = fail_create, .apply = fail_apply, .destroy = free};

static const dgm_plugin_desc descs[] = {
    {DGM_PLUGIN_HEADER, DGM_PLUGIN_DATASET(&rgb_iface), .name = "tp_rgb",
     .version = "1.0", .summary = "test dataset: [C, S, S] known patterns",
     .params = rgb_params},
    {DGM_PLUGIN_HEADER, DGM_PLUGIN_AUGMENT(&fail_iface), .name = "tp_fail_aug",
     .version = "1.0", .summary = "test augment: fails on a given call",
     .params = fail_params},
};

DGM_PLUGIN_NAME(tp_rgb);
DGM_PLUGIN_NAME(tp_fail_aug);

DGM_PLUGIN_EXPORT const dgm_plugin_desc *dgm_plugin_query(uint32_t i)
{
    return i < sizeof descs / sizeof descs[0] ? &descs[i] : NULL;
}
