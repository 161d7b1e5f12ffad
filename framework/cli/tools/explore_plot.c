/* explore_plot.c - the drawn figures of `dgm explore`: a scatter plot with
 * a legend and a heat map, painted on an RGB canvas and written with
 * dgm's PNG writer; text in a built-in 3x5 pixel font (digits, letters,
 * a few signs), enough for class names, axis names and their ranges. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/error.h"
#include "dgm/io.h"
#include "explore.h"

/* ---- the canvas ------------------------------------------------------- */

typedef struct canvas {
    dgm_tensor *t; /* [1, 3, h, w] in [0, 1] */
    int w, h;
} canvas;

static int canvas_new(canvas *c, int w, int h)
{
    int64_t shape[4] = {1, 3, h, w};
    c->w = w, c->h = h;
    if (!(c->t = dgm_tensor_new(DGM_F32, 4, shape)))
        return dgm_last_code();
    float *p = dgm_tensor_f32(c->t);
    for (int64_t i = 0; i < 3 * (int64_t)w * h; i++)
        p[i] = 1.0f; /* white */
    return 0;
}

static void put(canvas *c, int x, int y, const float rgb[3])
{
    if (x < 0 || y < 0 || x >= c->w || y >= c->h)
        return;
    float *p = dgm_tensor_f32(c->t);
    for (int k = 0; k < 3; k++)
        p[((int64_t)k * c->h + y) * c->w + x] = rgb[k];
}

static void rect(canvas *c, int x0, int y0, int w, int h, const float rgb[3])
{
    for (int y = y0; y < y0 + h; y++)
        for (int x = x0; x < x0 + w; x++)
            put(c, x, y, rgb);
}

static int canvas_write(canvas *c, const char *path)
{
    int rc = dgm_png_write_grid(path, c->t, 1, 0.0f, 1.0f);
    dgm_tensor_free(c->t);
    c->t = NULL;
    return rc;
}

/* ---- text ------------------------------------------------------------- */

/* 3x5 glyphs, five rows of three bits (the top row in bits 14..12, the
 * left pixel the high bit of each row). */
static const struct {
    char ch;
    unsigned short bits;
} font[] = {
#define G(c, a, b, d, e, f)                                                    \
    {                                                                          \
        c, (unsigned short)(a << 12 | b << 9 | d << 6 | e << 3 | f)            \
    }
    G('0', 7, 5, 5, 5, 7), G('1', 2, 6, 2, 2, 7), G('2', 7, 1, 7, 4, 7),
    G('3', 7, 1, 7, 1, 7), G('4', 5, 5, 7, 1, 1), G('5', 7, 4, 7, 1, 7),
    G('6', 7, 4, 7, 5, 7), G('7', 7, 1, 1, 2, 2), G('8', 7, 5, 7, 5, 7),
    G('9', 7, 5, 7, 1, 7), G('a', 2, 5, 7, 5, 5), G('b', 6, 5, 6, 5, 6),
    G('c', 3, 4, 4, 4, 3), G('d', 6, 5, 5, 5, 6), G('e', 7, 4, 6, 4, 7),
    G('f', 7, 4, 6, 4, 4), G('g', 3, 4, 5, 5, 3), G('h', 5, 5, 7, 5, 5),
    G('i', 7, 2, 2, 2, 7), G('j', 1, 1, 1, 5, 2), G('k', 5, 5, 6, 5, 5),
    G('l', 4, 4, 4, 4, 7), G('m', 5, 7, 7, 5, 5), G('n', 6, 5, 5, 5, 5),
    G('o', 2, 5, 5, 5, 2), G('p', 6, 5, 6, 4, 4), G('q', 2, 5, 5, 6, 3),
    G('r', 6, 5, 6, 5, 5), G('s', 3, 4, 2, 1, 6), G('t', 7, 2, 2, 2, 2),
    G('u', 5, 5, 5, 5, 7), G('v', 5, 5, 5, 5, 2), G('w', 5, 5, 7, 7, 5),
    G('x', 5, 5, 2, 5, 5), G('y', 5, 5, 2, 2, 2), G('z', 7, 1, 2, 4, 7),
    G('-', 0, 0, 7, 0, 0), G('+', 0, 2, 7, 2, 0), G('.', 0, 0, 0, 0, 2),
    G(':', 0, 2, 0, 2, 0), G('_', 0, 0, 0, 0, 7), G('=', 0, 7, 0, 7, 0),
    G('(', 1, 2, 2, 2, 1), G(')', 4, 2, 2, 2, 4), G('/', 1, 1, 2, 4, 4),
#undef G
};

enum { SCALE = 2, ADVANCE = 4 * SCALE, TEXT_H = 5 * SCALE };

/* Text at (x, y), its top left; capitals drawn as small letters, other
 * bytes the font lacks as a blank. Returns the width drawn. */
static int text(canvas *c, int x, int y, const char *s, const float rgb[3])
{
    int at = x;
    for (; *s; s++, at += ADVANCE) {
        char ch = *s >= 'A' && *s <= 'Z' ? (char)(*s - 'A' + 'a') : *s;
        unsigned bits = 0;
        for (size_t i = 0; i < sizeof font / sizeof font[0]; i++)
            if (font[i].ch == ch)
                bits = font[i].bits;
        for (int row = 0; row < 5; row++)
            for (int col = 0; col < 3; col++)
                if (bits >> (14 - row * 3 - col) & 1)
                    rect(c, at + col * SCALE, y + row * SCALE, SCALE, SCALE,
                         rgb);
    }
    return at - x;
}

/* ---- scatter plot ----------------------------------------------------- */

/* The report's palette (tableau 10), as RGB in [0, 1]. */
static void colour(int64_t k, float rgb[3])
{
    static const unsigned hex[10] = {0x1f77b4, 0xff7f0e, 0x2ca02c, 0xd62728,
                                     0x9467bd, 0x8c564b, 0xe377c2, 0x7f7f7f,
                                     0xbcbd22, 0x17becf};
    unsigned v = hex[(k < 0 ? 0 : k) % 10];
    rgb[0] = (float)(v >> 16 & 255) / 255.0f;
    rgb[1] = (float)(v >> 8 & 255) / 255.0f;
    rgb[2] = (float)(v & 255) / 255.0f;
}

int dgm__plot_scatter(const char *path, const dgm_tensor *xy,
                      const dgm_tensor *labels, int64_t n_classes,
                      const char *x_name, const char *y_name)
{
    const int W = 520, H = 424, left = 56, top = 20, pw = 360, ph = 340;
    const float black[3] = {0, 0, 0}, grey[3] = {0.6f, 0.6f, 0.6f};
    int64_t n = xy->shape[0];
    const float *p = dgm_tensor_f32(xy);
    float lo[2] = {INFINITY, INFINITY}, hi[2] = {-INFINITY, -INFINITY};
    for (int64_t i = 0; i < n; i++)
        for (int k = 0; k < 2; k++) {
            float v = p[i * 2 + k];
            if (isfinite(v))
                lo[k] = v < lo[k] ? v : lo[k], hi[k] = v > hi[k] ? v : hi[k];
        }
    for (int k = 0; k < 2; k++) {
        if (!(hi[k] >= lo[k]))
            lo[k] = -1, hi[k] = 1;
        if (hi[k] - lo[k] < 1e-6f)
            lo[k] -= 0.5f, hi[k] += 0.5f;
    }
    canvas c;
    int rc = canvas_new(&c, W, H);
    if (rc < 0)
        return rc;
    rect(&c, left - 1, top - 1, pw + 2, 1, grey);
    rect(&c, left - 1, top + ph, pw + 2, 1, grey);
    rect(&c, left - 1, top - 1, 1, ph + 2, grey);
    rect(&c, left + pw, top - 1, 1, ph + 2, grey);
    for (int64_t i = 0; i < n; i++) {
        float rgb[3];
        colour(labels ? (int64_t)dgm_tensor_get(labels, i) : 0, rgb);
        float u = (p[i * 2] - lo[0]) / (hi[0] - lo[0]);
        float v = (p[i * 2 + 1] - lo[1]) / (hi[1] - lo[1]);
        if (isfinite(u) && isfinite(v))
            rect(&c, left + (int)(u * (pw - 3)),
                 top + (int)((1 - v) * (ph - 3)), 3, 3, rgb);
    }
    char s[64];
    snprintf(s, sizeof s, "%.3g", lo[0]);
    text(&c, left, top + ph + 6, s, black);
    snprintf(s, sizeof s, "%.3g", hi[0]);
    text(&c, left + pw - (int)strlen(s) * ADVANCE, top + ph + 6, s, black);
    text(&c, left + pw / 2 - (int)strlen(x_name) * ADVANCE / 2, top + ph + 6,
         x_name, black);
    snprintf(s, sizeof s, "%.3g", hi[1]);
    text(&c, 2, top, s, black);
    snprintf(s, sizeof s, "%.3g", lo[1]);
    text(&c, 2, top + ph - TEXT_H, s, black);
    text(&c, left, 4, y_name, black);
    /* the legend: one swatch and class number per class */
    int64_t shown = labels ? n_classes : 0;
    for (int64_t k = 0; k < shown && k < 30; k++) {
        float rgb[3];
        colour(k, rgb);
        int y = top + 4 + (int)k * (TEXT_H + 4);
        rect(&c, left + pw + 16, y, TEXT_H, TEXT_H, rgb);
        snprintf(s, sizeof s, "%lld", (long long)k);
        text(&c, left + pw + 16 + TEXT_H + 6, y, s, black);
    }
    if (shown > 30)
        text(&c, left + pw + 16, top + 4 + 30 * (TEXT_H + 4), "...", black);
    return canvas_write(&c, path);
}

/* ---- heat map --------------------------------------------------------- */

int dgm__plot_heat(const char *path, const float *m, int rows, int cols,
                   int cell)
{
    float max = 0;
    for (int64_t i = 0; i < (int64_t)rows * cols; i++)
        max = m[i] > max ? m[i] : max;
    canvas c;
    int rc = canvas_new(&c, cols * cell, rows * cell);
    if (rc < 0)
        return rc;
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) {
            float rgb[3];
            dgm__heat_rgb(max > 0 ? m[(int64_t)i * cols + j] / max : 0, rgb);
            rect(&c, j * cell, i * cell, cell, cell, rgb);
        }
    return canvas_write(&c, path);
}
