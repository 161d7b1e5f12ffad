/* report_sweep.c - dgm report's "metric against swept value" charts: for
 * each swept key and each metric, the variants' means with one standard
 * deviation as error bars, one line per combination of the other swept
 * values (a grid sweep's factors). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "compare.h"
#include "report_parts.h"

/* The group without key, as canonical text: what a line shares. */
static char *others_of(const json_t *group, const char *key)
{
    json_t *o = json_deep_copy(group);
    json_object_del(o, key);
    char *s = json_dumps(o, JSON_SORT_KEYS | JSON_COMPACT);
    json_decref(o);
    return s;
}

/* "lr=0.1 latent=2" from {"optimizer.lr": 0.1, ...}: last key segments. */
static void others_label(const json_t *group, const char *key, char *buf,
                         size_t n)
{
    const char *k;
    json_t *v;
    size_t l = 0;
    buf[0] = '\0';
    json_object_foreach((json_t *)group, k, v)
    {
        if (!strcmp(k, key) || l + 2 >= n)
            continue;
        const char *dot = strrchr(k, '.');
        char *t = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT |
                                    JSON_REAL_PRECISION(10));
        l += (size_t)snprintf(buf + l, n - l, "%s%s=%s", l ? " " : "",
                              dot ? dot + 1 : k, t ? t : "?");
        free(t);
        if (l >= n)
            l = n - 1;
    }
    if (!buf[0])
        snprintf(buf, n, "all");
}

enum { CW = 540, CH = 300, ML = 72, MR = 20, MT = 30, MB = 46, LROW = 18 };

typedef struct pt {
    double x, mean, sd;
    int line;
    int cat; /* position among the key's values (categorical axis) */
} pt;

static int by_line_x(const void *a, const void *b)
{
    const pt *p = a, *q = b;
    if (p->line != q->line)
        return p->line - q->line;
    return (p->x > q->x) - (p->x < q->x);
}

/* One chart of metric m against key; 1 if drawn. */
static int chart(const dgm__compare *c, const char *key, int m, int index,
                 bool *opened, FILE *f)
{
    int nv = c->n_variants, np = 0, n_lines = 0, n_vals = 0;
    pt *p = calloc((size_t)nv, sizeof *p);
    char **lines = calloc((size_t)nv, sizeof *lines);
    json_t **vals = calloc((size_t)nv, sizeof *vals);
    int *line_of = calloc((size_t)nv, sizeof *line_of);
    bool numeric = true;
    int drawn = 0;
    if (!p || !lines || !vals || !line_of)
        goto out;
    for (int v = 0; v < nv; v++) {
        const dgm__cmp_variant *va = &c->variants[v];
        json_t *x = json_object_get(va->group, key);
        const dgm__cmp_stat *st = &va->stat[m];
        if (!x || st->n < 1 || !isfinite(st->mean))
            continue;
        numeric &= json_is_number(x);
        char *o = others_of(va->group, key);
        int l = 0;
        while (l < n_lines && strcmp(lines[l], o))
            l++;
        if (l == n_lines) {
            lines[n_lines] = o;
            line_of[n_lines++] = v;
        } else {
            free(o);
        }
        int k = 0;
        while (k < n_vals && !json_equal(vals[k], x))
            k++;
        if (k == n_vals)
            vals[n_vals++] = x;
        p[np++] = (pt){json_is_number(x) ? json_number_value(x) : 0, st->mean,
                       st->sd, l, k};
    }
    /* Worth a chart when some line has two values of the key. */
    bool worth = false;
    for (int i = 0; i < np; i++)
        for (int j = 0; j < i; j++)
            worth |= p[i].line == p[j].line && p[i].cat != p[j].cat;
    if (!worth || n_vals < 2)
        goto out;
    if (!numeric)
        for (int i = 0; i < np; i++)
            p[i].x = p[i].cat;
    /* log10 x for positive values over two decades or more (rates) */
    bool logx = numeric;
    double xmin = INFINITY, xmax = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (int i = 0; i < np; i++) {
        logx &= p[i].x > 0;
        xmin = fmin(xmin, p[i].x);
        xmax = fmax(xmax, p[i].x);
    }
    logx = logx && xmax / xmin >= 100;
    for (int i = 0; i < np; i++) {
        if (logx)
            p[i].x = log10(p[i].x);
        double e = isfinite(p[i].sd) ? p[i].sd : 0;
        y0 = fmin(y0, p[i].mean - e);
        y1 = fmax(y1, p[i].mean + e);
    }
    qsort(p, (size_t)np, sizeof *p, by_line_x);
    double x0 = INFINITY, x1 = -INFINITY;
    for (int i = 0; i < np; i++) {
        x0 = fmin(x0, p[i].x);
        x1 = fmax(x1, p[i].x);
    }
    dgm__axis ax, ay;
    dgm__axis_make(&ax, x0, x1, 6, !numeric, false);
    dgm__axis_make(&ay, y0, y1, 5, false, true);
    /* room at the ends so that the outer points are not on the frame */
    double pad = (ax.hi - ax.lo) * 0.06;
    ax.lo -= pad;
    ax.hi += pad;
    int pw = CW - ML - MR, ph = CH - MT - MB;
    int height = CH + n_lines * LROW + 8;
    if (!*opened) {
        fputs("<h2>Metrics against swept values</h2>\n"
              "<div class=\"charts\">\n",
              f);
        *opened = true;
    }
#define PX(x) (ML + dgm__axis_at(&ax, (x)) * pw)
#define PY(y) (MT + (1 - dgm__axis_at(&ay, (y))) * ph)
    fprintf(f,
            "<figure class=\"chart swept\" id=\"swept-%d\">\n<svg "
            "class=\"chart\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
            "role=\"img\">\n<text x=\"8\" y=\"18\" font-size=\"14\" "
            "font-weight=\"bold\">",
            index, CW, height, CW, height);
    dgm__report_esc(f, c->metrics[m]);
    fputs(" <tspan font-weight=\"normal\" fill=\"#666\">against ", f);
    dgm__report_esc(f, key);
    fprintf(f,
            "%s (mean &#177; sd over seeds)</tspan></text>\n<g class=\"axes\" "
            "font-size=\"11\" fill=\"#444\">\n",
            logx ? ", log scale" : "");
    char lb[64];
    for (int i = 0; i < ay.n; i++) {
        double py = PY(ay.tick[i]);
        dgm__axis_label(lb, sizeof lb, &ay, i);
        fprintf(f,
                "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" "
                "stroke=\"#e4e4e4\"/><text x=\"%d\" y=\"%.1f\" "
                "text-anchor=\"end\">%s</text>\n",
                ML, py, ML + pw, py, ML - 8, py + 4, lb);
    }
    if (numeric) {
        for (int i = 0; i < ax.n; i++) {
            if (logx)
                snprintf(lb, sizeof lb, "%.3g", pow(10, ax.tick[i]));
            else
                dgm__axis_label(lb, sizeof lb, &ax, i);
            fprintf(f,
                    "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s"
                    "</text>\n",
                    PX(ax.tick[i]), MT + ph + 18, lb);
        }
    } else {
        for (int k = 0; k < n_vals; k++) {
            char *t = json_dumps(vals[k], JSON_ENCODE_ANY | JSON_COMPACT |
                                              JSON_REAL_PRECISION(10));
            fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">",
                    PX((double)k), MT + ph + 18);
            dgm__report_esc(f, t);
            fputs("</text>\n", f);
            free(t);
        }
    }
    fprintf(f,
            "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" "
            "stroke=\"#444\"/>\n<text x=\"%d\" y=\"%d\" "
            "text-anchor=\"middle\">",
            ML, MT, pw, ph, ML + pw / 2, MT + ph + 36);
    dgm__report_esc(f, key);
    fputs("</text>\n</g>\n", f);
    for (int l = 0; l < n_lines; l++) {
        const char *col = dgm__report_palette[l % 10];
        fprintf(f,
                "<polyline class=\"swept-line\" fill=\"none\" "
                "stroke=\"%s\" stroke-width=\"1.8\" points=\"",
                col);
        for (int i = 0, first = 1; i < np; i++)
            if (p[i].line == l) {
                fprintf(f, "%s%.1f,%.1f", first ? "" : " ", PX(p[i].x),
                        PY(p[i].mean));
                first = 0;
            }
        fputs("\"/>\n", f);
        for (int i = 0; i < np; i++) {
            if (p[i].line != l)
                continue;
            double px = PX(p[i].x), py = PY(p[i].mean);
            if (isfinite(p[i].sd) && p[i].sd > 0)
                fprintf(f,
                        "<line class=\"errbar\" x1=\"%.3f\" y1=\"%.3f\" "
                        "x2=\"%.3f\" y2=\"%.3f\" stroke=\"%s\"/>\n",
                        px, PY(p[i].mean + p[i].sd), px,
                        PY(p[i].mean - p[i].sd), col);
            fprintf(f,
                    "<circle class=\"swept-point\" data-mean=\"%.17g\" "
                    "data-sd=\"%.17g\" cx=\"%.3f\" cy=\"%.3f\" r=\"3\" "
                    "fill=\"%s\"/>\n",
                    p[i].mean, p[i].sd, px, py, col);
        }
        char lab[512];
        others_label(c->variants[line_of[l]].group, key, lab, sizeof lab);
        int ly = CH + l * LROW + 4;
        fprintf(f,
                "<g class=\"legend\"><line x1=\"12\" y1=\"%d\" x2=\"36\" "
                "y2=\"%d\" stroke=\"%s\" stroke-width=\"3\"/><text x=\"42\" "
                "y=\"%d\" font-size=\"12\">",
                ly, ly, col, ly + 4);
        dgm__report_esc(f, lab);
        fputs("</text></g>\n", f);
    }
#undef PX
#undef PY
    fputs("</svg></figure>\n", f);
    drawn = 1;
out:
    for (int l = 0; l < n_lines; l++)
        free(lines[l]);
    free(lines);
    free(vals);
    free(line_of);
    free(p);
    return drawn;
}

void dgm__report_swept(const dgm__compare *c, FILE *f)
{
    /* the swept keys, in order of first appearance */
    const char *keys[64];
    int nk = 0;
    for (int v = 0; v < c->n_variants; v++) {
        const char *k;
        json_t *x;
        json_object_foreach(c->variants[v].group, k, x)
        {
            int j = 0;
            while (j < nk && strcmp(keys[j], k))
                j++;
            if (j == nk && nk < 64)
                keys[nk++] = k;
        }
    }
    int shown = 0;
    bool opened = false;
    for (int k = 0; k < nk; k++)
        for (int m = 0; m < c->n_metrics; m++)
            shown += chart(c, keys[k], m, shown, &opened, f);
    if (opened)
        fputs("</div>\n", f);
}
