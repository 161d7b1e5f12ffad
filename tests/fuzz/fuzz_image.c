/* fuzz_image.c - the image and array decoders the data sets use. Input: a
 * flag byte, then a file. Flag bit 0 set: a .npy file (dgm_npy_parse);
 * else a PNG or JPEG (dgm_image_decode) to 3 channels, or to 1 with bit 1.
 * Properties: a refusal carries a message naming the file; an accepted
 * image is within the size limits and every pixel of it can be read (ASan
 * checks the buffer); an accepted .npy header accounts for exactly the
 * bytes after it, within DGM_MAX_DIMS dimensions. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const uint8_t *file = data + 1;
    size_t n = size - 1;
    if (data[0] & 1) {
        dgm_npy_header h;
        int rc = dgm_npy_parse(file, n, "in.npy", &h);
        if (rc < 0) {
            fz_expect_error(rc, "in.npy");
            dgm_error_clear();
            return 0;
        }
        if (h.ndim < 0 || h.ndim > DGM_MAX_DIMS || h.fortran_order)
            fz_fail("accepted rank %d, fortran %d", h.ndim, h.fortran_order);
        uint64_t bytes = dgm_dtype_size(h.dtype);
        for (int d = 0; d < h.ndim; d++)
            bytes *= (uint64_t)h.shape[d];
        if (h.data_offset > n || h.data_bytes != n - h.data_offset ||
            bytes != h.data_bytes)
            fz_fail("header accounts for %llu bytes at %llu, file has %zu",
                    (unsigned long long)bytes,
                    (unsigned long long)h.data_offset, n);
        return 0;
    }
    int channels = data[0] & 2 ? 1 : 3;
    dgm_image img;
    int rc = dgm_image_decode(file, n, "in.img", channels, &img);
    if (rc < 0) {
        fz_expect_error(rc, "in.img");
        if (img.pixels)
            fz_fail("a refused image left pixels");
        dgm_error_clear();
        return 0;
    }
    if (img.w < 1 || img.h < 1 || img.w > DGM_IMAGE_MAX_SIDE ||
        img.h > DGM_IMAGE_MAX_SIDE || img.channels != channels)
        fz_fail("accepted %d x %d x %d", img.w, img.h, img.channels);
    unsigned sum = 0;
    size_t total = (size_t)img.w * img.h * img.channels;
    for (size_t i = 0; i < total; i++)
        sum += img.pixels[i];
    if (sum == 0xFFFFFFFFu) /* keeps the reads */
        fprintf(stderr, "sum\n");
    dgm_image_free(&img);
    return 0;
}
