/* png_write.c - sample grids as 8-bit PNG (grey or RGB) with libpng,
 * written to a temporary file and renamed over the target. */
#include <errno.h>
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dgm/io.h"

#define GRID_PAD 2
#define GRID_BORDER 128

/* libpng reports errors through a callback that must not return: keep the
 * text and jump back to the setjmp in encode(). */
static void png_fail(png_structp png, png_const_charp msg)
{
    char *buf = png_get_error_ptr(png);
    snprintf(buf, 256, "%s", msg);
    png_longjmp(png, 1);
}

static void png_warn(png_structp png, png_const_charp msg) {}

static int encode(FILE *fp, const unsigned char *pix, uint32_t width,
                  uint32_t height, int channels, char *err)
{
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, err,
                                              png_fail, png_warn);
    if (!png)
        return -1;
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        return -1;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return -1;
    }
    png_init_io(png, fp);
    png_set_IHDR(png, info, width, height, 8,
                 channels == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    size_t stride = (size_t)width * (size_t)channels;
    for (uint32_t y = 0; y < height; y++)
        png_write_row(png, pix + (size_t)y * stride);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return 0;
}

static unsigned char to_byte(double v, double lo, double hi)
{
    double s = (v - lo) / (hi - lo) * 255.0;
    if (!(s > 0)) /* also NaN */
        return 0;
    if (s >= 255)
        return 255;
    return (unsigned char)lrint(s);
}

int dgm_png_write_grid(const char *path, const dgm_tensor *images, int nrow,
                       float lo, float hi)
{
    char desc[96];
    if (!path || !images)
        return dgm_error(DGM_EINVAL, "png_write_grid: NULL %s",
                         path ? "images" : "path");
    dgm_tensor_describe(images, desc, sizeof desc);
    if (images->ndim != 3 && images->ndim != 4)
        return dgm_error(DGM_ESHAPE,
                         "%s: png grid expects [N, H, W] or [N, C, H, W], "
                         "got %s",
                         path, desc);
    int c = images->ndim == 4 ? (int)images->shape[1] : 1;
    if (c != 1 && c != 3)
        return dgm_error(DGM_ESHAPE,
                         "%s: png grid expects 1 or 3 channels, got %s", path,
                         desc);
    int64_t n = images->shape[0];
    int64_t h = images->shape[images->ndim - 2];
    int64_t w = images->shape[images->ndim - 1];
    if (n <= 0 || h <= 0 || w <= 0)
        return dgm_error(DGM_ESHAPE, "%s: png grid of no pixels: %s", path,
                         desc);
    if (nrow <= 0)
        return dgm_error(DGM_EINVAL, "%s: png grid nrow %d must be positive",
                         path, nrow);
    if (!(hi > lo))
        return dgm_error(DGM_EINVAL,
                         "%s: png grid range [%g, %g] is empty", path,
                         (double)lo, (double)hi);
    int64_t cols = n < nrow ? n : nrow;
    int64_t rows = (n + cols - 1) / cols;
    int64_t width = cols * (w + GRID_PAD) + GRID_PAD;
    int64_t height = rows * (h + GRID_PAD) + GRID_PAD;
    if (width > 1000000 || height > 1000000 || width * height > (1 << 28))
        return dgm_error(DGM_ERANGE, "%s: png grid of %lldx%lld is too large",
                         path, (long long)width, (long long)height);
    size_t stride = (size_t)width * (size_t)c;
    unsigned char *pix = malloc(stride * (size_t)height);
    if (!pix)
        return dgm_error(DGM_ENOMEM, "%s: out of memory", path);
    memset(pix, GRID_BORDER, stride * (size_t)height);
    /* dgm_tensor_get handles every dtype and stride; grids are small. */
    int64_t plane = h * w;
    for (int64_t k = 0; k < n; k++) {
        int64_t x0 = GRID_PAD + (k % cols) * (w + GRID_PAD);
        int64_t y0 = GRID_PAD + (k / cols) * (h + GRID_PAD);
        for (int ch = 0; ch < c; ch++)
            for (int64_t y = 0; y < h; y++)
                for (int64_t x = 0; x < w; x++) {
                    double v = dgm_tensor_get(
                        images, (k * c + ch) * plane + y * w + x);
                    pix[(size_t)(y0 + y) * stride +
                        (size_t)(x0 + x) * (size_t)c + (size_t)ch] =
                        to_byte(v, lo, hi);
                }
    }

    char tmp[4096], err[256] = "";
    int rc = 0;
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >=
        (int)sizeof tmp) {
        free(pix);
        return dgm_error(DGM_EINVAL, "%s: path too long", path);
    }
    FILE *fp = fopen(tmp, "wb");
    if (!fp) {
        rc = dgm_error(DGM_EIO, "%s: cannot create: %s", tmp, strerror(errno));
        free(pix);
        return rc;
    }
    if (encode(fp, pix, (uint32_t)width, (uint32_t)height, c, err) < 0)
        rc = dgm_error(DGM_EIO, "%s: libpng failed: %s", tmp,
                       err[0] ? err : "out of memory");
    else if (fflush(fp) != 0 || fsync(fileno(fp)) != 0)
        rc = dgm_error(DGM_EIO, "%s: write failed: %s", tmp, strerror(errno));
    if (fclose(fp) != 0 && rc == 0)
        rc = dgm_error(DGM_EIO, "%s: close failed: %s", tmp, strerror(errno));
    if (rc == 0 && rename(tmp, path) != 0)
        rc = dgm_error(DGM_EIO, "%s: cannot rename %s over it: %s", path, tmp,
                       strerror(errno));
    if (rc < 0)
        unlink(tmp);
    free(pix);
    return rc;
}
