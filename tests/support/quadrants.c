/* quadrants.c - see quadrants.h. */
#include "quadrants.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

static void be32(FILE *f, uint32_t v)
{
    unsigned char b[4] = {v >> 24, v >> 16, v >> 8, v};
    fwrite(b, 1, 4, f);
}

int tq_write_quadrants(const char *dir, const char *img, const char *lab, int n,
                       unsigned seed)
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
    be32(fi, 28);
    be32(fi, 28);
    be32(fl, 0x00000801);
    be32(fl, (uint32_t)n);
    unsigned s = seed;
    for (int i = 0; i < n; i++) {
        int c = i % 4;
        unsigned char px[784];
        for (int k = 0; k < 784; k++) {
            s = s * 1103515245u + 12345u;
            int r = k / 28, q = k % 28;
            bool in = r / 14 == c / 2 && q / 14 == c % 2 && r % 14 > 2 &&
                      q % 14 > 2 && r % 14 < 12 && q % 14 < 12;
            px[k] = in ? 220 + (s >> 16) % 30 : (s >> 16) % 40;
        }
        fwrite(px, 1, 784, fi);
        unsigned char l = (unsigned char)c;
        fwrite(&l, 1, 1, fl);
    }
    int bad = ferror(fi) || ferror(fl);
    bad |= fclose(fi) != 0;
    bad |= fclose(fl) != 0;
    return bad ? -1 : 0;
}
