/* flip.c - the `flip` augmentation: mirror each image of a batch
 * [n, C, H, W] left-right (or top-bottom) with probability p, in place. */
#include <stdbool.h>
#include <stdlib.h>

#include "dgm/dgm.h"
#include "image_batch.h"

static const dgm_param_spec params[] = {
    DGM_PARAM_FLOAT("p", .def = "0.5", DGM_GE(0), DGM_LE(1),
                    .help = "probability that an image is flipped"),
    DGM_PARAM_BOOL("horizontal", .def = "true",
                   .help = "mirror left-right; false mirrors top-bottom"),
    DGM_PARAM_END,
};

typedef struct flip {
    float p;
    bool horizontal;
} flip;

static int flip_create(void **self, const dgm_config *cfg,
                       const dgm_data_info *data)
{
    flip *o = calloc(1, sizeof *o);
    if (!o)
        return dgm_error(DGM_ENOMEM, "flip: out of memory");
    o->p = (float)dgm_cfg_float(cfg, "p");
    o->horizontal = dgm_cfg_bool(cfg, "horizontal");
    *self = o;
    return 0;
}

static void flip_destroy(void *self)
{
    free(self);
}

static void mirror_rows(float *restrict img, int64_t rows, int64_t w)
{
    for (int64_t r = 0; r < rows; r++) {
        float *row = img + r * w;
        for (int64_t a = 0, b = w - 1; a < b; a++, b--) {
            float tmp = row[a];
            row[a] = row[b];
            row[b] = tmp;
        }
    }
}

/* Swap rows y and h-1-y of each of the c planes. */
static void mirror_cols(float *restrict img, int64_t c, int64_t h, int64_t w)
{
    for (int64_t k = 0; k < c; k++) {
        float *plane = img + k * h * w;
        for (int64_t a = 0, b = h - 1; a < b; a++, b--)
            for (int64_t x = 0; x < w; x++) {
                float tmp = plane[a * w + x];
                plane[a * w + x] = plane[b * w + x];
                plane[b * w + x] = tmp;
            }
    }
}

static int flip_apply(void *self, dgm_tensor *x, dgm_rng *rng)
{
    flip *o = self;
    int rc = image_batch_check("flip", x, rng);
    if (rc < 0)
        return rc;
    const int64_t n = x->shape[0], c = x->shape[1], h = x->shape[2],
                  w = x->shape[3];
    float *data = dgm_tensor_f32(x);
    /* One draw per image, flipped or not, so the stream stays aligned. */
    for (int64_t i = 0; i < n; i++) {
        bool hit = dgm_rng_uniform(rng) < o->p;
        if (!hit)
            continue;
        float *img = data + i * c * h * w;
        if (o->horizontal)
            mirror_rows(img, c * h, w);
        else
            mirror_cols(img, c, h, w);
    }
    return 0;
}

static const dgm_augment_iface iface = {.create = flip_create,
                                        .apply = flip_apply,
                                        .forward = NULL,
                                        .destroy = flip_destroy};

static const dgm_plugin_desc desc = {
    DGM_PLUGIN_HEADER,
    DGM_PLUGIN_AUGMENT(&iface),
    .name = "flip",
    .version = "1.0",
    .summary = "random horizontal or vertical mirror of images",
    .params = params,

};

DGM_PLUGIN_NAME(flip);

DGM_PLUGIN_EXPORT const dgm_plugin_desc *dgm_plugin_query(uint32_t index)
{
    return index == 0 ? &desc : NULL;
}
