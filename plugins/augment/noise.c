/* noise.c - the `noise` augmentation: add N(0, std^2) to every element of
 * a batch in place, optionally clamped to the data's value range. */
#include <stdbool.h>
#include <stdlib.h>

#include "dgm/dgm.h"

static const dgm_param_spec params[] = {
    DGM_PARAM_FLOAT("std", .def = "0.05", DGM_GE(0),
                    .help = "standard deviation of the added Gaussian noise"),
    DGM_PARAM_BOOL("clamp", .def = "true",
                   .help = "clamp the result to the dataset's [x_min, x_max]"),
    DGM_PARAM_END,
};

typedef struct noise {
    float std;
    bool clamp; /* only when the dataset declared a range */
    float lo, hi;
} noise;

static int noise_create(void **self, const dgm_config *cfg,
                        const dgm_data_info *data)
{
    noise *o = calloc(1, sizeof *o);
    if (!o)
        return dgm_error(DGM_ENOMEM, "noise: out of memory");
    o->std = (float)dgm_cfg_float(cfg, "std");
    /* A dataset without a range (x_min == x_max) has nothing to clamp to. */
    o->clamp = dgm_cfg_bool(cfg, "clamp") && data && data->x_min < data->x_max;
    if (o->clamp) {
        o->lo = data->x_min;
        o->hi = data->x_max;
    }
    *self = o;
    return 0;
}

static void noise_destroy(void *self)
{
    free(self);
}

static void clamp_all(float *restrict x, int64_t n, float lo, float hi)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = x[i] < lo ? lo : x[i] > hi ? hi : x[i];
}

static int noise_apply(void *self, dgm_tensor *x, dgm_rng *rng)
{
    noise *o = self;
    char buf[96];
    if (!x || !rng)
        return dgm_error(DGM_EINVAL, "noise: apply given no %s",
                         x ? "rng" : "tensor");
    if (x->dtype != DGM_F32)
        return dgm_error(DGM_EDTYPE, "noise: expects f32 data, got %s",
                         dgm_tensor_describe(x, buf, sizeof buf));
    if (!dgm_tensor_is_contiguous(x))
        return dgm_error(DGM_EINVAL,
                         "noise: expects a contiguous batch, got a strided "
                         "view %s",
                         dgm_tensor_describe(x, buf, sizeof buf));
    float *d = dgm_tensor_f32(x);
    const int64_t n = dgm_tensor_numel(x);
    /* One normal per element in row-major order, whatever std is. */
    for (int64_t i = 0; i < n; i++)
        d[i] += o->std * dgm_rng_normal(rng);
    if (o->clamp)
        clamp_all(d, n, o->lo, o->hi);
    return 0;
}

static const dgm_augment_iface iface = {.create = noise_create,
                                        .apply = noise_apply,
                                        .forward = NULL,
                                        .destroy = noise_destroy};

static const dgm_plugin_desc desc = {
    DGM_PLUGIN_HEADER,
    DGM_PLUGIN_AUGMENT(&iface),
    .name = "noise",
    .version = "1.0",
    .summary = "additive Gaussian noise, clamped to the data range",
    .params = params,

};

DGM_PLUGIN_NAME(noise);

DGM_PLUGIN_EXPORT const dgm_plugin_desc *dgm_plugin_query(uint32_t index)
{
    return index == 0 ? &desc : NULL;
}
