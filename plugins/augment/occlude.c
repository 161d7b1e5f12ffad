/* occlude.c - the `occlude` augmentation: fill one size x size square of
 * each image of [n, C, H, W], at a uniformly drawn position, with the
 * data's lowest value (a robustness corruption, `corrupt: [{occlude: 8}]`). */
#include <stdlib.h>

#include "dgm/dgm.h"

static const dgm_param_spec params[] = {
    DGM_PARAM_INT("size", .def = "8", DGM_GE(0), DGM_LE(1e6),
                  .help = "side of the square, in pixels (clipped to the "
                          "image; 0 leaves it unchanged)"),
    DGM_PARAM_END,
};

typedef struct occlude {
    int64_t size;
    float fill; /* the data's x_min when it declares a range, else 0 */
} occlude;

static int occlude_create(void **self, const dgm_config *cfg,
                          const dgm_data_info *data)
{
    occlude *o = calloc(1, sizeof *o);
    if (!o)
        return dgm_error(DGM_ENOMEM, "occlude: out of memory");
    o->size = dgm_cfg_int(cfg, "size");
    o->fill = data && data->x_min < data->x_max ? data->x_min : 0.0f;
    *self = o;
    return 0;
}

static void occlude_destroy(void *self)
{
    free(self);
}

static int occlude_apply(void *self, dgm_tensor *x, dgm_rng *rng)
{
    occlude *o = self;
    char buf[96];
    if (!x || !rng)
        return dgm_error(DGM_EINVAL, "occlude: apply given no %s",
                         x ? "rng" : "tensor");
    if (x->ndim != 4 || x->dtype != DGM_F32 || !dgm_tensor_is_contiguous(x))
        return dgm_error(DGM_ESHAPE,
                         "occlude: expects a contiguous f32 batch [n, C, H, "
                         "W], got %s",
                         dgm_tensor_describe(x, buf, sizeof buf));
    const int64_t n = x->shape[0], c = x->shape[1], h = x->shape[2],
                  w = x->shape[3];
    const int64_t sh = o->size < h ? o->size : h,
                  sw = o->size < w ? o->size : w;
    float *d = dgm_tensor_f32(x);
    for (int64_t i = 0; i < n; i++) {
        /* Two draws per image, whatever the size, so the draws of one
         * image do not depend on the others'. */
        int64_t y0 = (int64_t)(dgm_rng_uniform_f64(rng) * (double)(h - sh + 1));
        int64_t x0 = (int64_t)(dgm_rng_uniform_f64(rng) * (double)(w - sw + 1));
        y0 = y0 > h - sh ? h - sh : y0;
        x0 = x0 > w - sw ? w - sw : x0;
        for (int64_t k = 0; k < c; k++)
            for (int64_t y = y0; y < y0 + sh; y++)
                for (int64_t xx = x0; xx < x0 + sw; xx++)
                    d[((i * c + k) * h + y) * w + xx] = o->fill;
    }
    return 0;
}

static const dgm_augment_iface iface = {.create = occlude_create,
                                        .apply = occlude_apply,
                                        .forward = NULL,
                                        .destroy = occlude_destroy};

static const dgm_plugin_desc desc = {
    DGM_PLUGIN_HEADER,
    DGM_PLUGIN_AUGMENT(&iface),
    .name = "occlude",
    .version = "1.0",
    .summary = "one square per image filled with the data's lowest value",
    .params = params,
};

DGM_PLUGIN_NAME(occlude);

DGM_PLUGIN_EXPORT const dgm_plugin_desc *dgm_plugin_query(uint32_t index)
{
    return index == 0 ? &desc : NULL;
}
