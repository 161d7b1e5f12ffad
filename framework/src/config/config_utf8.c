/* config_utf8.c - decoding one UTF-8 character, for the reader's and
 * the writer's checks. On its own, without state, so that a test can
 * compile it in (libdgm does not export it). */
#include <stdint.h>

#include "config_internal.h"

int dgm__utf8_next(const unsigned char *s, uint32_t *cp)
{
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    int w = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc0 ? 2 : 0;
    if (w == 0 || s[0] > 0xf4)
        return 0;
    uint32_t v = s[0] & (0x7f >> w);
    for (int i = 1; i < w; i++) {
        if ((s[i] & 0xc0) != 0x80) /* a NUL ends the loop here too */
            return 0;
        v = v << 6 | (s[i] & 0x3f);
    }
    static const uint32_t least[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (v < least[w] || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return w;
}
