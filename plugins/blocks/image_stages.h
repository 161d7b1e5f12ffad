/* image_stages.h - what the image blocks share (dcgan_generator,
 * dcgan_discriminator, conv_encoder, conv_decoder): the number of
 * stride-2 stages for an image [C, H, W] and the channels of each stage.
 * Static inline, so each block module that includes it has its own copy
 * (a plugin links only libdgm).
 *
 *     int64_t h0, w0, ch[MAX];  (k <= MAX: the `stages` range)
 *     int k = image_stages(cfg, "conv_encoder", in, &h0, &w0);
 *     if (k < 0 || image_stage_channels(cfg, "conv_encoder", k, false, ch))
 *         ... refused: the message names the block, the key and the shape
 */
#ifndef DGM_PLUGINS_IMAGE_STAGES_H
#define DGM_PLUGINS_IMAGE_STAGES_H

#include <stdbool.h>
#include <stdint.h>

#include "dgm/dgm.h"

/* The largest side the stages are derived for. */
#define IMAGE_STAGES_MAX_SIDE 128
/* Halvings tried when deriving (128 -> 4 takes 5). */
#define IMAGE_STAGES_MAX_DERIVED 6

/* Stride-2 stages and the base map [*h0, *w0] for an image [C, H, W]:
 * `stages` when set (H and W divisible by 2^stages), else H (a power of
 * two or 28) halved while above 7 (28 -> 7: 2, 32 -> 4: 3), W as often; a
 * side of at most IMAGE_STAGES_MAX_SIDE. A size that does not fit is
 * refused naming the plugin, the key and the shape (DGM_ESHAPE). */
static inline int image_stages(const dgm_config *cfg, const char *who,
                               const dgm_shape *img, int64_t *h0, int64_t *w0)
{
    char si[96];
    dgm_shape_str(img->ndim, img->dim, si, sizeof si);
    if (img->ndim != 3)
        return dgm_error(DGM_ESHAPE, "%s: needs an image [C, H, W], got %s",
                         who, si);
    int64_t h = img->dim[1], w = img->dim[2];
    int k = (int)dgm_cfg_int(cfg, "stages");
    if (h > IMAGE_STAGES_MAX_SIDE || w > IMAGE_STAGES_MAX_SIDE)
        return dgm_cfg_error(cfg, "stages", DGM_ESHAPE,
                             "%s: image %s is larger than %d x %d (sizes: "
                             "a power of two from 16 to 128, or 28)",
                             who, si, IMAGE_STAGES_MAX_SIDE,
                             IMAGE_STAGES_MAX_SIDE);
    if (k > 0) {
        int64_t f = (int64_t)1 << k;
        if (h % f || w % f)
            return dgm_cfg_error(cfg, "stages", DGM_ESHAPE,
                                 "%s: %d stride-2 stages need H and W "
                                 "divisible by %lld; the image is %s",
                                 who, k, (long long)f, si);
        *h0 = h / f, *w0 = w / f;
        return k;
    }
    /* 28 is Fashion-MNIST's (a 7x7 base); 8 the tests' small images */
    bool pow2 = (h & (h - 1)) == 0 && h >= 8;
    while (h > 7 && h % 2 == 0 && k < IMAGE_STAGES_MAX_DERIVED)
        h /= 2, k++;
    if (!(pow2 || img->dim[1] == 28) || k < 1 || h > 7 ||
        w % ((int64_t)1 << k) || (w >> k) > 7)
        return dgm_cfg_error(cfg, "stages", DGM_ESHAPE,
                             "%s: image %s: the stages are derived for H a "
                             "power of two from 16 to 128 (or 28), W halving "
                             "as often; set `stages` for another size",
                             who, si);
    *h0 = h, *w0 = w >> k;
    return k;
}

/* The k stage channels in ch[k]: the `channels` list (one entry per
 * stage), or `width` doubled per stage away from the image (widest_first:
 * the generator's and decoder's order, base map first). */
static inline int image_stage_channels(const dgm_config *cfg, const char *who,
                                       int k, bool widest_first, int64_t *ch)
{
    int64_t given[16];
    int n = dgm_cfg_int_list(cfg, "channels", given, 16);
    if (n > 0 && n != k)
        return dgm_cfg_error(cfg, "channels", DGM_ERANGE,
                             "%s: %d entries for %d stages", who, n, k);
    int64_t w = dgm_cfg_int(cfg, "width");
    for (int i = 0; i < k; i++)
        ch[i] = n > 0 ? given[i] : w << (widest_first ? k - 1 - i : i);
    return 0;
}

/* The conv blocks' stage count, at most max: `stages` when set, else the
 * length of `channels` when given (any size the layers fit, as before
 * the count could be derived), else derived from the image size, which
 * needs stride 2 (the stages halve or double the side). */
static inline int image_conv_stages(const dgm_config *cfg, const char *who,
                                    const dgm_shape *img, int64_t stride,
                                    int max)
{
    int64_t given[16], h0, w0;
    int n = dgm_cfg_int_list(cfg, "channels", given, 16);
    int k = (int)dgm_cfg_int(cfg, "stages");
    if (n > max)
        return dgm_cfg_error(cfg, "channels", DGM_ERANGE,
                             "%s: at most %d stages, got %d entries", who, max,
                             n);
    if (k == 0 && n > 0)
        return n;
    if (stride != 2 && k > 0)
        return k;
    if (stride != 2)
        return dgm_cfg_error(cfg, "stages", DGM_ERANGE,
                             "%s: the stage count is derived for stride 2 "
                             "only (stride is %lld); set `stages` or "
                             "`channels`",
                             who, (long long)stride);
    return image_stages(cfg, who, img, &h0, &w0);
}

#endif
