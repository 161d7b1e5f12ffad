/* image_batch.h - what the augmentations that work image by image on a
 * batch [n, C, H, W] share (crop, flip, rotate): refusing any other
 * tensor, and a one-image scratch buffer. Static inline, so each module
 * that includes it has its own copy (a plugin links only libdgm). */
#ifndef DGM_PLUGINS_IMAGE_BATCH_H
#define DGM_PLUGINS_IMAGE_BATCH_H

#include <stdlib.h>

#include "dgm/dgm.h"

/* Refuse what is not a contiguous f32 [n, C, H, W] batch, naming the
 * plugin (who) and the tensor. */
static inline int image_batch_check(const char *who, const dgm_tensor *x,
                                    const dgm_rng *rng)
{
    char buf[96];
    if (!x || !rng)
        return dgm_error(DGM_EINVAL, "%s: apply given no %s", who,
                         x ? "rng" : "tensor");
    if (x->ndim != 4)
        return dgm_error(DGM_ESHAPE, "%s: expects a batch [n, C, H, W], got %s",
                         who, dgm_tensor_describe(x, buf, sizeof buf));
    if (x->dtype != DGM_F32)
        return dgm_error(DGM_EDTYPE, "%s: expects f32 images, got %s", who,
                         dgm_tensor_describe(x, buf, sizeof buf));
    if (!dgm_tensor_is_contiguous(x))
        return dgm_error(DGM_EINVAL,
                         "%s: expects a contiguous batch, got a strided "
                         "view %s",
                         who, dgm_tensor_describe(x, buf, sizeof buf));
    return 0;
}

/* One image's floats; grown, then reused every call. */
typedef struct image_scratch {
    float *buf;
    size_t cap; /* floats in buf */
} image_scratch;

/* Room in s for one image (C*H*W floats) of the checked batch x. */
static inline int image_scratch_fit(const char *who, image_scratch *s,
                                    const dgm_tensor *x)
{
    const int64_t c = x->shape[1], h = x->shape[2], w = x->shape[3];
    const size_t img = (size_t)(c * h * w);
    if (img <= s->cap)
        return 0;
    float *b = realloc(s->buf, img * sizeof *b);
    if (!b)
        return dgm_error(DGM_ENOMEM, "%s: no memory for a %lldx%lldx%lld image",
                         who, (long long)c, (long long)h, (long long)w);
    s->buf = b;
    s->cap = img;
    return 0;
}

#endif
