/* quadrants.c - see quadrants.h. */
#include "quadrants.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>

static void be32(FILE *f, uint32_t v)
{
    unsigned char b[4] = {v >> 24, v >> 16, v >> 8, v};
    fwrite(b, 1, 4, f);
}

/* The pixel of image i (class i % 4) at index k of a side x side image;
 * s is the image set's LCG state. */
typedef unsigned char (*pixel_fn)(int side, int c, int k, unsigned *s);

static unsigned char quadrant_px(int side, int c, int k, unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    int r = k / side, q = k % side;
    bool in = r / 14 == c / 2 && q / 14 == c % 2 && r % 14 > 2 &&
              q % 14 > 2 && r % 14 < 12 && q % 14 < 12;
    return in ? 220 + (*s >> 16) % 30 : (*s >> 16) % 40;
}

static unsigned char band_px(int side, int c, int k, unsigned *s)
{
    bool lit = k / side / 2 == c;
    if (*s == 0) /* no speckle */
        return lit ? 230 : 10;
    *s = *s * 1103515245u + 12345u;
    return lit ? 230 : ((*s >> 16) % 16 == 0 ? 200 : 10);
}

static int write_set(const char *dir, const char *img, const char *lab, int n,
                     int side, unsigned seed, pixel_fn px)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, img);
    FILE *fi = fopen(p, "wb");
    snprintf(p, sizeof p, "%s/%s", dir, lab);
    FILE *fl = fopen(p, "wb");
    if (!fi || !fl) {
        if (fi)
            fclose(fi);
        if (fl)
            fclose(fl);
        return -1;
    }
    be32(fi, 0x00000803);
    be32(fi, (uint32_t)n);
    be32(fi, (uint32_t)side);
    be32(fi, (uint32_t)side);
    be32(fl, 0x00000801);
    be32(fl, (uint32_t)n);
    unsigned s = seed;
    for (int i = 0; i < n; i++) {
        int c = i % 4;
        for (int k = 0; k < side * side; k++)
            fputc(px(side, c, k, &s), fi);
        fputc(c, fl);
    }
    int bad = ferror(fi) || ferror(fl);
    bad |= fclose(fi) != 0;
    bad |= fclose(fl) != 0;
    return bad ? -1 : 0;
}

int tq_write_quadrants(const char *dir, const char *img, const char *lab, int n,
                       unsigned seed)
{
    return write_set(dir, img, lab, n, 28, seed, quadrant_px);
}

int tq_write_bands(const char *dir, const char *img, const char *lab, int n,
                   unsigned seed)
{
    return write_set(dir, img, lab, n, 8, seed, band_px);
}

int tq_write_data(const char *root, int n_train, int n_test, bool bands)
{
    char d[4096];
    if (snprintf(d, sizeof d, "%s/data", root) >= (int)sizeof d)
        return -1;
    if ((mkdir(root, 0755) != 0 && errno != EEXIST) ||
        (mkdir(d, 0755) != 0 && errno != EEXIST))
        return -1;
    int (*put)(const char *, const char *, const char *, int, unsigned) =
        bands ? tq_write_bands : tq_write_quadrants;
    return put(d, "train-img", "train-lab", n_train, 7) < 0 ||
                   put(d, "test-img", "test-lab", n_test, 99) < 0
               ? -1
               : 0;
}

int tq_write_yaml(const char *root, const char *yaml_fmt)
{
    char p[4200], text[8192];
    int n = snprintf(text, sizeof text, yaml_fmt, root);
    if (n < 0 || n >= (int)sizeof text ||
        snprintf(p, sizeof p, "%s/tiny.yaml", root) >= (int)sizeof p)
        return -1;
    FILE *f = fopen(p, "w");
    if (!f)
        return -1;
    int ok = fputs(text, f) >= 0;
    return fclose(f) == 0 && ok ? 0 : -1;
}
