/* report_parts.c - what the sections of dgm report's page share: chart
 * axes with round ticks over any finite range, HTML escaping, the
 * colours (see report_parts.h). */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report_parts.h"

/* A round step near x > 0 (1, 2 or 5 times a power of ten). */
static double nice_step(double x)
{
    double e = pow(10, floor(log10(x)));
    double m = x / e;
    return (m < 1.5 ? 1 : m < 3 ? 2 : m < 7 ? 5 : 10) * e;
}

/* v + d, clamped to the finite range. */
static double add_clamped(double v, double d)
{
    double r = v + d;
    return isfinite(r) ? r : r > 0 ? DBL_MAX : -DBL_MAX;
}

void dgm__axis_make(dgm__axis *a, double lo, double hi, int want, bool whole,
                    bool snap)
{
    double mag = fmax(fabs(lo), fabs(hi));
    /* Halves: hi - lo itself may overflow. A range narrower than ~4500
     * ulps of its values (or than 1e-300: subnormal steps) gives ticks
     * doubles cannot tell apart: widen it around the data. */
    if (!(hi / 2 - lo / 2 > fmax(mag * 0.5e-12, 1e-300))) {
        double pad = mag * (whole ? 1e-9 : 0.05);
        if (!(pad > 1e-300) || (whole && pad < 1))
            pad = 1;
        lo = add_clamped(lo, -pad);
        hi = add_clamped(hi, pad);
    }
    double step = nice_step(hi / want - lo / want);
    if (whole && step < 1)
        step = 1;
    a->n = 0;
    if (isfinite(step) && step > 0) {
        double k0 = snap ? floor(lo / step) : ceil(lo / step);
        double k1 = snap ? ceil(hi / step) : floor(hi / step);
        if (snap) { /* the outer ticks, where they are finite */
            lo = fmax(k0 * step, -DBL_MAX);
            hi = fmin(k1 * step, DBL_MAX);
        }
        if (k1 - k0 >= 0 && k1 - k0 < DGM__AXIS_MAX_TICKS)
            for (double k = k0; k <= k1; k++) {
                double t = k * step;
                if (isfinite(t) && t >= lo && t <= hi)
                    a->tick[a->n++] = t;
            }
    }
    if (a->n < 2 && !(a->n == 1 && !snap)) { /* fall back on the ends */
        a->tick[0] = lo;
        a->tick[1] = hi;
        a->n = 2;
    }
    a->lo = lo;
    a->hi = hi;
    /* enough digits to tell neighbouring ticks apart */
    double gap = a->n > 1 ? (a->tick[1] - a->tick[0]) : step;
    int d = 6;
    if (isfinite(gap) && gap > 0 && mag > 0)
        d = (int)fmax(6, fmin(17, floor(log10(mag)) - floor(log10(gap)) + 2));
    a->digits = d;
}

double dgm__axis_at(const dgm__axis *a, double v)
{
    return (v / 2 - a->lo / 2) / (a->hi / 2 - a->lo / 2);
}

void dgm__axis_label(char *buf, size_t n, const dgm__axis *a, int i)
{
    double v = a->tick[i];
    double gap = a->n > 1 ? fabs(a->tick[1] - a->tick[0]) : fabs(v);
    if (fabs(v) < gap * 1e-9)
        v = 0;
    snprintf(buf, n, "%.*g", a->digits, v);
}

const char *const dgm__report_palette[10] = {
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

void dgm__report_esc(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '&':
            fputs("&amp;", f);
            break;
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        case '\'':
            fputs("&#39;", f);
            break;
        default:
            fputc(*s, f);
        }
    }
}

/* (report_parts.h) */
unsigned char *dgm__report_read_png(const char *path, size_t *n,
                                     const char **why)
{
    FILE *fp = fopen(path, "rb");
    *why = "cannot be read";
    if (!fp)
        return NULL;
    unsigned char *buf = NULL;
    long size = -1;
    if (fseek(fp, 0, SEEK_END) == 0)
        size = ftell(fp);
    rewind(fp);
    if (size > DGM__REPORT_MAX_PNG)
        *why = "too large to embed";
    else if (size >= 24 && (buf = malloc((size_t)size)) &&
             fread(buf, 1, (size_t)size, fp) == (size_t)size &&
             !memcmp(buf, "\x89PNG\r\n\x1a\n", 8)) {
        *n = (size_t)size;
        fclose(fp);
        return buf;
    } else if (size >= 0)
        *why = "not a PNG file";
    free(buf);
    fclose(fp);
    return NULL;
}
