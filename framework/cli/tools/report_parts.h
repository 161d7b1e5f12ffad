/* report_parts.h - what the sections of dgm report's page share (never
 * installed): chart axes with round ticks over any finite range, HTML
 * escaping, the colours of variants.
 *
 *     dgm__axis ax;
 *     dgm__axis_make(&ax, 0, 4690, 6, true, false);   // steps
 *     double x = left + dgm__axis_at(&ax, step) * width;
 *     char lb[64];
 *     dgm__axis_label(lb, sizeof lb, &ax, 0);          // "0"
 */
#ifndef DGM_REPORT_PARTS_H
#define DGM_REPORT_PARTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* At most this many ticks on an axis, whatever the data. */
#define DGM__AXIS_MAX_TICKS 16

/* An axis over [lo, hi] (lo < hi, both finite, hi - lo large enough for
 * doubles to tell the ticks apart) with n ticks at tick[] and labels
 * printed with `digits` significant digits. Ticks are whole multiples of
 * a round step computed from their index, never by accumulation, so the
 * count is bounded for any finite input (values near 2^53, one ulp apart
 * at 1e18, or +-DBL_MAX). */
typedef struct dgm__axis {
    double lo, hi;
    double tick[DGM__AXIS_MAX_TICKS];
    int n, digits;
} dgm__axis;

/* lo..hi: the data's range; `want` ticks or so; `whole`: ticks at whole
 * numbers (steps); `snap`: widen the range to the outer ticks. */
void dgm__axis_make(dgm__axis *a, double lo, double hi, int want, bool whole,
                    bool snap);
/* Where v falls in [a->lo, a->hi], from 0 to 1 (halves: no overflow). */
double dgm__axis_at(const dgm__axis *a, double v);
/* Tick i's label ("%.*g" with the axis's digits; -0 and rounding noise
 * around zero print as 0). */
void dgm__axis_label(char *buf, size_t n, const dgm__axis *a, int i);

/* The largest PNG the report and the explore page embed. */
#define DGM__REPORT_MAX_PNG (16L << 20)
/* The whole file (*n bytes, the caller frees it) if it is a PNG of at
 * most DGM__REPORT_MAX_PNG bytes; else NULL and *why says why ("cannot be
 * read", "too large to embed", "not a PNG file"). */
unsigned char *dgm__report_read_png(const char *path, size_t *n,
                                    const char **why);
/* s into f with & < > " ' as entities (NULL writes nothing). */
void dgm__report_esc(FILE *f, const char *s);
/* The colour of variant v: dgm__report_palette[v % 10]. */
extern const char *const dgm__report_palette[10];

#endif
