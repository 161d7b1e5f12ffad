/* image_size.c - the size limits every image decoder checks from the
 * header, before anything is allocated for the pixels (its own file so
 * that the decoders and image_read.c, which calls them, do not call each
 * other in a cycle). */
#include "image_internal.h"

int dgm__image_check_size(const char *name, const char *fmt, uint64_t w,
                          uint64_t h)
{
    if (w == 0 || h == 0 || w > DGM_IMAGE_MAX_SIDE || h > DGM_IMAGE_MAX_SIDE ||
        w * h > DGM_IMAGE_MAX_PIXELS)
        return dgm_error(DGM_EFORMAT,
                         "%s: %s declares %llu x %llu pixels, outside 1 .. "
                         "%d a side and %u pixels in all",
                         name, fmt, (unsigned long long)w,
                         (unsigned long long)h, DGM_IMAGE_MAX_SIDE,
                         DGM_IMAGE_MAX_PIXELS);
    return 0;
}
