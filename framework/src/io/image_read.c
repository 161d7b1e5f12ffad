/* image_read.c - PNG and JPEG files to 8-bit grey or RGB pixels: the
 * format is recognised by its signature, decoded by png_read.c or
 * jpeg_read.c, and converted to the channels asked for here, so both
 * formats convert alike. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image_internal.h"

void dgm_image_free(dgm_image *img)
{
    if (!img)
        return;
    free(img->pixels);
    memset(img, 0, sizeof *img);
}

/* In place where the result is not larger (to grey, or alpha dropped),
 * else into a new buffer. */
static int convert(dgm_image *img, int want, const char *name)
{
    int have = img->channels;
    size_t n = (size_t)img->w * (size_t)img->h;
    unsigned char *src = img->pixels, *dst = src;
    if (want > have) {
        dst = malloc(n * (size_t)want);
        if (!dst)
            return dgm_error(DGM_ENOMEM, "%s: out of memory", name);
    }
    bool alpha = have == 2 || have == 4;
    for (size_t i = 0; i < n; i++) {
        const unsigned char *p = src + i * (size_t)have;
        unsigned a = alpha ? p[have - 1] : 255;
        unsigned r = p[0], g = have >= 3 ? p[1] : p[0],
                 b = have >= 3 ? p[2] : p[0];
        if (alpha) {
            r = (r * a + 127) / 255;
            g = (g * a + 127) / 255;
            b = (b * a + 127) / 255;
        }
        unsigned char *q = dst + i * (size_t)want;
        if (want == 1)
            q[0] = have >= 3
                       ? (unsigned char)((299 * r + 587 * g + 114 * b + 500) /
                                         1000)
                       : (unsigned char)r;
        else {
            q[0] = (unsigned char)r;
            q[1] = (unsigned char)g;
            q[2] = (unsigned char)b;
        }
    }
    if (dst != src)
        free(src);
    img->pixels = dst;
    img->channels = want;
    return 0;
}

int dgm_image_decode(const void *data, size_t len, const char *name,
                     int channels, dgm_image *out)
{
    if (!out)
        return dgm_error(DGM_EINVAL, "image_decode: NULL out");
    memset(out, 0, sizeof *out);
    name = name ? name : "(image)";
    if (!data || (channels != 1 && channels != 3))
        return dgm_error(DGM_EINVAL,
                         "%s: image_decode: NULL data or "
                         "channels %d (1 or 3)",
                         name, channels);
    const unsigned char *b = data;
    int rc;
    if (len >= 8 && !memcmp(b, "\x89PNG\r\n\x1a\n", 8))
        rc = dgm__png_decode(data, len, name, out);
    else if (len >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF)
        rc = dgm__jpeg_decode(data, len, name, out);
    else
        return dgm_error(DGM_EFORMAT,
                         "%s: not a PNG or JPEG file (%zu bytes, "
                         "no PNG or JPEG signature)",
                         name, len);
    if (rc == 0 && out->channels != channels)
        rc = convert(out, channels, name);
    if (rc < 0)
        dgm_image_free(out);
    return rc;
}

int dgm_image_load(const char *path, int channels, dgm_image *out)
{
    if (!out || !path)
        return dgm_error(DGM_EINVAL, "image_load: NULL argument");
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return dgm_error(DGM_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return dgm_error(DGM_EIO, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > DGM_IMAGE_MAX_FILE) {
        close(fd);
        return dgm_error(DGM_EFORMAT,
                         "%s: %lld bytes, over the %u-byte cap "
                         "for an image file",
                         path, (long long)st.st_size, DGM_IMAGE_MAX_FILE);
    }
    size_t n = (size_t)st.st_size;
    unsigned char *buf = malloc(n ? n : 1);
    if (!buf) {
        close(fd);
        return dgm_error(DGM_ENOMEM, "%s: out of memory", path);
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    int err = errno;
    close(fd);
    int rc = got == n ? dgm_image_decode(buf, n, path, channels, out)
                      : dgm_error(DGM_EIO, "%s: read failed: %s", path,
                                  strerror(err));
    free(buf);
    return rc;
}
