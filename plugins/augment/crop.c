/* crop.c - the `crop` augmentation: pad each image of [n, C, H, W] by
 * `pad` pixels (zeros or the edge pixel) and crop a random H x W window
 * back out, i.e. a random translation by up to pad pixels, in place. */
#include <stdlib.h>
#include <string.h>

#include "dgm/dgm.h"

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
    float *scratch; /* one image; grown, then reused every call */
    size_t cap;     /* floats in scratch */
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
    free(o->scratch);
    free(o);
}

/* Refuse what is not a contiguous f32 [n, C, H, W] batch, naming it. */
static int check_batch(const dgm_tensor *x, const dgm_rng *rng)
{
    char buf[96];
    if (!x || !rng)
        return dgm_error(DGM_EINVAL, "crop: apply given no %s",
                         x ? "rng" : "tensor");
    if (x->ndim != 4)
        return dgm_error(DGM_ESHAPE,
                         "crop: expects a batch [n, C, H, W], got %s",
                         dgm_tensor_describe(x, buf, sizeof buf));
    if (x->dtype != DGM_F32)
        return dgm_error(DGM_EDTYPE, "crop: expects f32 images, got %s",
                         dgm_tensor_describe(x, buf, sizeof buf));
    if (!dgm_tensor_is_contiguous(x))
        return dgm_error(DGM_EINVAL,
                         "crop: expects a contiguous batch, got a strided "
                         "view %s",
                         dgm_tensor_describe(x, buf, sizeof buf));
    return 0;
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
    int rc = check_batch(x, rng);
    if (rc < 0)
        return rc;
    const int64_t n = x->shape[0], c = x->shape[1], h = x->shape[2],
                  w = x->shape[3];
    const size_t img = (size_t)(c * h * w);
    if (img > o->cap) {
        float *s = realloc(o->scratch, img * sizeof *s);
        if (!s)
            return dgm_error(DGM_ENOMEM,
                             "crop: no memory for a %lldx%lldx%lld "
                             "image",
                             (long long)c, (long long)h, (long long)w);
        o->scratch = s;
        o->cap = img;
    }
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
        memcpy(o->scratch, im, img * sizeof *im);
        shift_image(im, o->scratch, c, h, w, dy, dx, o->edge);
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
