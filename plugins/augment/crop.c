/* crop.c - the `crop` augmentation: pad each image of [n, C, H, W] by
 * `pad` pixels (zeros or the edge pixel) and crop a random H x W window
 * back out, i.e. a random translation by up to pad pixels, in place. */
#include <stdlib.h>
#include <string.h>

#include "dgm/dgm.h"
#include "image_batch.h"

static const dgm_param_spec params[] = {
    DGM_PARAM_INT("pad", .def = "2", DGM_GE(0), DGM_LE(1e6),
                  .help = "padding on each side = the largest shift in pixels"),
    DGM_PARAM_CHOICE(
        "mode", .def = "zero", .choices = "zero|edge",
        .help =
            "fill of the padding: zeros or a copy of the nearest edge pixel"),
    DGM_PARAM_END,
};

typedef struct crop {
    int64_t pad;
    bool edge;
    image_scratch scratch;
} crop;

static int crop_create(void **self, const dgm_config *cfg,
                       const dgm_data_info *data)
{
    crop *o = calloc(1, sizeof *o);
    if (!o)
        return dgm_error(DGM_ENOMEM, "crop: out of memory");
    o->pad = dgm_cfg_int(cfg, "pad");
    o->edge = !strcmp(dgm_cfg_str(cfg, "mode"), "edge");
    *self = o;
    return 0;
}

static void crop_destroy(void *self)
{
    crop *o = self;
    if (!o)
        return;
    free(o->scratch.buf);
    free(o);
}

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* dst(y, x) = src(y + dy, x + dx) per plane, outside src: 0 or the edge. */
static void shift_image(float *restrict dst, const float *restrict src,
                        int64_t c, int64_t h, int64_t w, int64_t dy, int64_t dx,
                        bool edge)
{
    for (int64_t k = 0; k < c; k++) {
        const float *sp = src + k * h * w;
        float *dp = dst + k * h * w;
        for (int64_t y = 0; y < h; y++) {
            int64_t sy = y + dy;
            if (!edge && (sy < 0 || sy >= h)) {
                memset(dp + y * w, 0, (size_t)w * sizeof *dp);
                continue;
            }
            const float *srow = sp + clamp64(sy, 0, h - 1) * w;
            for (int64_t x = 0; x < w; x++) {
                int64_t sx = x + dx;
                if (sx >= 0 && sx < w)
                    dp[y * w + x] = srow[sx];
                else
                    dp[y * w + x] = edge ? srow[clamp64(sx, 0, w - 1)] : 0.0f;
            }
        }
    }
}

static int crop_apply(void *self, dgm_tensor *x, dgm_rng *rng)
{
    crop *o = self;
    int rc = image_batch_check("crop", x, rng);
    if (rc < 0)
        return rc;
    const int64_t n = x->shape[0], c = x->shape[1], h = x->shape[2],
                  w = x->shape[3];
    const size_t img = (size_t)(c * h * w);
    if ((rc = image_scratch_fit("crop", &o->scratch, x)) < 0)
        return rc;
    float *data = dgm_tensor_f32(x);
    const uint64_t choices = (uint64_t)(2 * o->pad + 1);
    for (int64_t i = 0; i < n; i++) {
        /* torchvision's RandomCrop order: the window's top, then left. */
        int64_t top = (int64_t)dgm_rng_below(rng, choices);
        int64_t left = (int64_t)dgm_rng_below(rng, choices);
        int64_t dy = top - o->pad, dx = left - o->pad;
        if (dy == 0 && dx == 0)
            continue;
        float *im = data + (size_t)i * img;
        memcpy(o->scratch.buf, im, img * sizeof *im);
        shift_image(im, o->scratch.buf, c, h, w, dy, dx, o->edge);
    }
    return 0;
}

static const dgm_augment_iface iface = {.create = crop_create,
                                        .apply = crop_apply,
                                        .forward = NULL,
                                        .destroy = crop_destroy};

static const dgm_plugin_desc desc = {
    DGM_PLUGIN_HEADER,
    DGM_PLUGIN_AUGMENT(&iface),
    .name = "crop",
    .version = "1.0",
    .summary = "random translation: pad, then crop back to the original size",
    .params = params,

};

DGM_PLUGIN_NAME(crop);

DGM_PLUGIN_EXPORT const dgm_plugin_desc *dgm_plugin_query(uint32_t index)
{
    return index == 0 ? &desc : NULL;
}
