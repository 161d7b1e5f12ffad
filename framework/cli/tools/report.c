/* report.c - `dgm report`: one self-contained HTML page (inline CSS and
 * SVG, sample grids as data: URIs) with the comparison table, learning
 * curves per variant, the last sample grid of each variant and the runs'
 * `dgm explore` figures. */
#include <dirent.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "compare.h"
#include "dgm/error.h"
#include "dgm/io.h"
#include "explore.h"
#include "report_parts.h"
#include "tool_files.h"

/* A sample grid larger than this is named, not embedded. */
/* Longest legend label, in characters (the full one is the tooltip). */
#define LEGEND_CHARS 66

/* ---- curves: per loss term, per variant, the mean over runs by step --- */

typedef struct series {
    int n, cap;
    int64_t *step;
    long double *sum; /* wider than the values: sums of huge ones stay finite */
    long double *sq;  /* sums of squares: the band of one deviation */
    int *cnt;
} series;

typedef struct term {
    char *name;
    series *v; /* one per variant */
} term;

typedef struct curves {
    int n, cap;
    term *t;
} curves;

static int series_add(series *s, int64_t step, double x)
{
    /* steps arrive ascending within a run: look from the end */
    int lo = s->n;
    while (lo > 0 && s->step[lo - 1] > step)
        lo--;
    if (lo > 0 && s->step[lo - 1] == step) {
        s->sum[lo - 1] += x;
        s->sq[lo - 1] += (long double)x * x;
        s->cnt[lo - 1]++;
        return 0;
    }
    if (s->n == s->cap) {
        int c = s->cap ? s->cap * 2 : 64;
        int64_t *st = realloc(s->step, sizeof *st * (size_t)c);
        if (st)
            s->step = st;
        long double *su = st ? realloc(s->sum, sizeof *su * (size_t)c) : NULL;
        if (su)
            s->sum = su;
        long double *sq = su ? realloc(s->sq, sizeof *sq * (size_t)c) : NULL;
        if (sq)
            s->sq = sq;
        int *cn = sq ? realloc(s->cnt, sizeof *cn * (size_t)c) : NULL;
        if (!cn)
            return dgm_error(DGM_ENOMEM, "report: out of memory");
        s->cnt = cn;
        s->cap = c;
    }
    memmove(s->step + lo + 1, s->step + lo,
            sizeof *s->step * (size_t)(s->n - lo));
    memmove(s->sum + lo + 1, s->sum + lo, sizeof *s->sum * (size_t)(s->n - lo));
    memmove(s->cnt + lo + 1, s->cnt + lo, sizeof *s->cnt * (size_t)(s->n - lo));
    memmove(s->sq + lo + 1, s->sq + lo, sizeof *s->sq * (size_t)(s->n - lo));
    s->step[lo] = step;
    s->sum[lo] = x;
    s->sq[lo] = (long double)x * x;
    s->cnt[lo] = 1;
    s->n++;
    return 0;
}

static term *term_get(curves *cv, const char *name, int n_variants)
{
    for (int i = 0; i < cv->n; i++)
        if (!strcmp(cv->t[i].name, name))
            return &cv->t[i];
    if (cv->n == cv->cap) {
        int c = cv->cap ? cv->cap * 2 : 8;
        term *t = realloc(cv->t, sizeof *t * (size_t)c);
        if (!t)
            return NULL;
        cv->t = t;
        cv->cap = c;
    }
    term *t = &cv->t[cv->n];
    t->name = strdup(name);
    t->v = calloc((size_t)n_variants, sizeof *t->v);
    if (!t->name || !t->v) {
        free(t->name);
        free(t->v);
        return NULL;
    }
    cv->n++;
    return t;
}

static void curves_free(curves *cv)
{
    for (int i = 0; i < cv->n; i++) {
        free(cv->t[i].name);
        free(cv->t[i].v);
    }
    free(cv->t);
}

static void curves_free_series(curves *cv, int n_variants)
{
    for (int i = 0; i < cv->n; i++)
        for (int v = 0; v < n_variants; v++) {
            free(cv->t[i].v[v].step);
            free(cv->t[i].v[v].sum);
            free(cv->t[i].v[v].sq);
            free(cv->t[i].v[v].cnt);
        }
    curves_free(cv);
}

/* Keys of a metrics.jsonl line that are not loss terms. */
static bool bookkeeping(const char *k)
{
    return !strcmp(k, "step") || !strcmp(k, "epoch") || !strcmp(k, "time") ||
           !strcmp(k, "lr");
}

/* Add one run's logged training lines (eval lines skipped). A line that
 * does not parse is refused with file:line, except an unterminated last
 * line, which a run in progress may be writing. */
static int read_metrics(curves *cv, const char *dir, int variant,
                        int n_variants)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long no = 0;
    int rc = 0;
    while (rc == 0 && (len = getline(&line, &cap, f)) > 0) {
        no++;
        bool complete = line[len - 1] == '\n';
        json_error_t e;
        json_t *o = json_loadb(line, (size_t)len, 0, &e);
        if (!o || !json_is_object(o)) {
            json_decref(o);
            if (!complete)
                break;
            bool blank = strspn(line, " \t\r\n") == (size_t)len;
            if (!blank)
                rc = dgm_error(DGM_EFORMAT, "%s:%ld: %s", path, no,
                               o ? "not a JSON object" : e.text);
            continue;
        }
        json_t *step = json_object_get(o, "step");
        if (json_is_integer(step) && !json_object_get(o, "eval")) {
            const char *k;
            json_t *val;
            json_object_foreach(o, k, val)
            {
                if (bookkeeping(k) || !json_is_number(val) ||
                    !isfinite(json_number_value(val)))
                    continue;
                term *t = term_get(cv, k, n_variants);
                if (!t) {
                    rc = dgm_error(DGM_ENOMEM, "report: out of memory");
                    break;
                }
                if ((rc = series_add(&t->v[variant], json_integer_value(step),
                                     json_number_value(val))) < 0)
                    break;
            }
        }
        json_decref(o);
    }
    free(line);
    fclose(f);
    return rc;
}

/* Each variant's mean curve: over its done runs, or, when none is done
 * yet, over whichever runs have logged something. */
static int load_curves(const dgm__compare *c, curves *cv)
{
    for (int v = 0; v < c->n_variants; v++) {
        const dgm__cmp_variant *va = &c->variants[v];
        for (int pass = 0; pass < 2; pass++) {
            int used = 0;
            for (int k = 0; k < va->n_runs; k++) {
                const dgm__cmp_run *r = &c->runs[va->runs[k]];
                if (pass == 0 && strcmp(r->status, "done"))
                    continue;
                char p[4096];
                snprintf(p, sizeof p, "%s/metrics.jsonl", r->dir);
                if (access(p, F_OK) != 0)
                    continue;
                int rc = read_metrics(cv, r->dir, v, c->n_variants);
                if (rc < 0)
                    return rc;
                used++;
            }
            if (used)
                break;
        }
    }
    return 0;
}

/* ---- HTML helpers ------------------------------------------------------- */

static void esc(FILE *f, const char *s)
{
    dgm__report_esc(f, s);
}

/* At most max characters of UTF-8 text, escaped, "…" when cut. */
static void esc_cut(FILE *f, const char *s, int max)
{
    int chars = 0;
    const char *p = s;
    for (; *p; p++) {
        if (((unsigned char)*p & 0xC0) != 0x80 && chars++ == max)
            break;
    }
    char *cut = strndup(s, (size_t)(p - s));
    esc(f, cut ? cut : "");
    free(cut);
    if (*p)
        fputs("\xE2\x80\xA6", f);
}

static const char *const *const palette = dgm__report_palette;
static const char *const dashes[3] = {"", "6 3", "2 2"};

static const char css[] =
    "body{font-family:'DejaVu Sans',Verdana,sans-serif;margin:24px 32px;"
    "color:#222;background:#fff;font-size:14px}"
    "h1{font-size:22px;margin:0 0 6px}h2{font-size:18px;margin:28px 0 8px;"
    "border-bottom:1px solid #ddd;padding-bottom:4px}"
    ".meta{color:#555;margin:2px 0}"
    "table{border-collapse:collapse;margin:6px 0}"
    "th,td{border:1px solid #ccc;padding:4px 8px;text-align:right;"
    "vertical-align:top}"
    "th{background:#f0f0f0}td.label,th.label{text-align:left;min-width:12em;"
    "max-width:36em;overflow-wrap:break-word}"
    ".wide{overflow-x:auto;max-width:100%}"
    "td.best{font-weight:bold;background:#e6f4e6}"
    "td.bad{color:#b00020;font-weight:bold}"
    ".rule{color:#555;font-size:12px}"
    ".notes{background:#fff8e1;border:1px solid #f0d080;padding:6px 12px}"
    ".charts{display:flex;flex-wrap:wrap;gap:16px}"
    "figure{margin:0}figure.chart{border:1px solid #ddd;padding:4px}"
    ".samples{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}"
    "figure.sample{border:1px solid #ddd;padding:6px;max-width:420px}"
    "figure.sample img{image-rendering:pixelated;display:block}"
    "figcaption{font-size:12px;margin-top:4px;word-break:break-word}"
    ".file{color:#777}"
    "tr.status-failed td,tr.status-diverged td{background:#fdecea}"
    "tr.status-running td,tr.status-pending td,tr.status-stopped td"
    "{background:#f4f4f4}"
    "svg text{font-family:'DejaVu Sans',Verdana,sans-serif}";

/* ---- the table ------------------------------------------------------------
 */

static void table(const dgm__compare *c, FILE *f)
{
    fputs("<div class=\"wide\"><table class=\"compare\" "
          "id=\"compare\">\n<thead><tr>"
          "<th class=\"label\">variant</th><th>runs</th><th>done</th>"
          "<th>failed</th><th>diverged</th><th>other</th>",
          f);
    for (int m = 0; m < c->n_metrics; m++) {
        fputs("<th class=\"metric\">", f);
        esc(f, c->metrics[m]);
        fprintf(f, " <span class=\"rule\">(%s)</span></th><th>sd</th>",
                c->better[m] == DGM_BETTER_LOWER    ? "&darr;"
                : c->better[m] == DGM_BETTER_HIGHER ? "&uarr;"
                                                    : "&middot;");
    }
    fputs("</tr></thead>\n<tbody>\n", f);
    for (int v = 0; v < c->n_variants; v++) {
        const dgm__cmp_variant *va = &c->variants[v];
        fprintf(f,
                "<tr class=\"variant\" id=\"variant-%d\"><td class=\"label\">"
                "<span style=\"color:%s\">&#9632;</span> ",
                v, palette[v % 10]);
        esc(f, va->label);
        fprintf(f, "</td><td>%d</td><td>%d</td><td%s>%d</td><td%s>%d</td>",
                va->n_runs, va->done, va->failed ? " class=\"bad\"" : "",
                va->failed, va->diverged ? " class=\"bad\"" : "", va->diverged);
        char b[128];
        const int k[3] = {va->stopped, va->running, va->pending};
        const char *w[3] = {"stopped", "running", "pending"};
        size_t len = 0;
        b[0] = '\0';
        for (int i = 0; i < 3; i++)
            if (k[i] && len < sizeof b)
                len += (size_t)snprintf(b + len, sizeof b - len, "%s%d %s",
                                        len ? ", " : "", k[i], w[i]);
        fprintf(f, "<td>%s</td>", b[0] ? b : "-");
        for (int m = 0; m < c->n_metrics; m++) {
            const dgm__cmp_stat *st = &va->stat[m];
            char mean[64], sd[64];
            dgm__cmp_num(st->mean, 6, mean, sizeof mean);
            dgm__cmp_num(st->sd, 3, sd, sizeof sd);
            fprintf(f, "<td class=\"mean%s\">%s", st->best ? " best" : "",
                    mean);
            if (st->n && st->n != va->done)
                fprintf(f, " (n=%d)", st->n);
            fprintf(f, "</td><td class=\"sd\">%s</td>", sd);
        }
        fputs("</tr>\n", f);
    }
    fputs("</tbody></table></div>\n<p class=\"rule\">Mean and sample standard "
          "deviation (n&nbsp;&minus;&nbsp;1) over each variant's done runs; "
          "best mean per metric highlighted (&darr; lower is better, &uarr; "
          "higher, &middot; no direction).</p>\n",
          f);
}

/* ---- charts ---------------------------------------------------------------
 */

/* The mean of a series at i, NAN if it does not fit a double. */
static double mean_at(const series *s, int i)
{
    double y = (double)(s->sum[i] / s->cnt[i]);
    return isfinite(y) ? y : NAN;
}

/* The sample deviation (n - 1) at i: 0 for one run, NAN if not finite. */
static double sd_at(const series *s, int i)
{
    if (s->cnt[i] < 2)
        return 0;
    long double m = s->sum[i] / s->cnt[i];
    long double v = (s->sq[i] - m * s->sum[i]) / (s->cnt[i] - 1);
    double d = v > 0 ? (double)sqrtl(v) : 0;
    return isfinite(d) ? d : NAN;
}

enum { CW = 540, CH = 300, ML = 72, MR = 20, MT = 30, MB = 46, LROW = 18 };

/* A variant's band of one standard deviation around its mean curve, where
 * it has two runs or more: mean + sd forwards, mean - sd back. */
static void band(const series *s, int v, const char *col, const dgm__axis *ax,
                 const dgm__axis *ay, int pw, int ph, FILE *f)
{
    bool any = false;
    for (int i = 0; i < s->n; i++)
        any |= s->cnt[i] > 1 && sd_at(s, i) > 0;
    if (!any)
        return;
    fprintf(f,
            "<polygon class=\"band\" data-variant=\"%d\" fill=\"%s\" "
            "fill-opacity=\"0.15\" stroke=\"none\" points=\"",
            v, col);
    for (int pass = 0, first = 1; pass < 2; pass++)
        for (int k = 0; k < s->n; k++) {
            int i = pass ? s->n - 1 - k : k;
            double y = mean_at(s, i), d = sd_at(s, i);
            if (isnan(y) || isnan(d))
                continue;
            double yy = pass ? y - d : y + d;
            fprintf(f, "%s%.3f,%.3f", first ? "" : " ",
                    ML + dgm__axis_at(ax, (double)s->step[i]) * pw,
                    MT + (1 - dgm__axis_at(ay, yy)) * ph);
            first = 0;
        }
    fputs("\"/>\n", f);
}

static void chart(const dgm__compare *c, const term *t, int index, FILE *f)
{
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    int shown = 0;
    for (int v = 0; v < c->n_variants; v++) {
        const series *s = &t->v[v];
        shown += s->n > 0;
        for (int i = 0; i < s->n; i++) {
            double y = mean_at(s, i), d = sd_at(s, i);
            if (isnan(y))
                continue;
            d = isfinite(y - d) && isfinite(y + d) ? d : 0;
            x0 = fmin(x0, (double)s->step[i]);
            x1 = fmax(x1, (double)s->step[i]);
            y0 = fmin(y0, y - d);
            y1 = fmax(y1, y + d);
        }
    }
    if (!shown || !(x0 <= x1))
        return;
    dgm__axis ax, ay;
    dgm__axis_make(&ax, x0, x1, 6, true, false);
    dgm__axis_make(&ay, y0, y1, 5, false, true);
    int pw = CW - ML - MR, ph = CH - MT - MB;
    int height = CH + shown * LROW + 8;
#define PX(x) (ML + dgm__axis_at(&ax, (x)) * pw)
#define PY(y) (MT + (1 - dgm__axis_at(&ay, (y))) * ph)
    fprintf(f,
            "<figure class=\"chart\" id=\"chart-%d\">\n"
            "<svg class=\"chart\" width=\"%d\" height=\"%d\" "
            "viewBox=\"0 0 %d %d\" role=\"img\">\n",
            index, CW, height, CW, height);
    fputs("<text x=\"8\" y=\"18\" font-size=\"14\" font-weight=\"bold\">", f);
    esc(f, t->name);
    fputs(" <tspan font-weight=\"normal\" fill=\"#666\">(mean over runs)"
          "</tspan></text>\n",
          f);
    /* grid and ticks */
    fputs("<g class=\"axes\" font-size=\"11\" fill=\"#444\">\n", f);
    char lb[64];
    for (int i = 0; i < ay.n; i++) {
        double py = PY(ay.tick[i]);
        dgm__axis_label(lb, sizeof lb, &ay, i);
        fprintf(f,
                "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" "
                "stroke=\"#e4e4e4\"/><line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" "
                "y2=\"%.1f\" stroke=\"#444\"/><text x=\"%d\" y=\"%.1f\" "
                "text-anchor=\"end\">%s</text>\n",
                ML, py, ML + pw, py, ML - 5, py, ML, py, ML - 8, py + 4, lb);
    }
    for (int i = 0; i < ax.n; i++) {
        double px = PX(ax.tick[i]);
        dgm__axis_label(lb, sizeof lb, &ax, i);
        fprintf(f,
                "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" "
                "stroke=\"#444\"/><text x=\"%.1f\" y=\"%d\" "
                "text-anchor=\"middle\">%s</text>\n",
                px, MT + ph, px, MT + ph + 5, px, MT + ph + 18, lb);
    }
    fprintf(f,
            "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" "
            "stroke=\"#444\"/>\n<text x=\"%d\" y=\"%d\" "
            "text-anchor=\"middle\">step</text>\n</g>\n",
            ML, MT, pw, ph, ML + pw / 2, MT + ph + 36);
    /* one curve per variant */
    int row = 0;
    for (int v = 0; v < c->n_variants; v++) {
        const series *s = &t->v[v];
        if (!s->n)
            continue;
        const char *col = palette[v % 10], *dash = dashes[(v / 10) % 3];
        band(s, v, col, &ax, &ay, pw, ph, f);
        fprintf(f,
                "<polyline class=\"curve\" data-variant=\"%d\" fill=\"none\" "
                "stroke=\"%s\" stroke-width=\"1.8\"%s%s%s points=\"",
                v, col, dash[0] ? " stroke-dasharray=\"" : "", dash,
                dash[0] ? "\"" : "");
        for (int i = 0, first = 1; i < s->n; i++)
            if (!isnan(mean_at(s, i))) {
                fprintf(f, "%s%.1f,%.1f", first ? "" : " ",
                        PX((double)s->step[i]), PY(mean_at(s, i)));
                first = 0;
            }
        fputs("\"><title>", f);
        esc(f, c->variants[v].label);
        fputs("</title></polyline>\n", f);
        if (s->n == 1 && !isnan(mean_at(s, 0))) /* a lone point: no line */
            fprintf(f,
                    "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n",
                    PX((double)s->step[0]), PY(mean_at(s, 0)), col);
        int ly = CH + row * LROW + 4;
        fprintf(f,
                "<g class=\"legend\"><line x1=\"%d\" y1=\"%d\" x2=\"%d\" "
                "y2=\"%d\" stroke=\"%s\" stroke-width=\"3\"%s%s%s/>"
                "<text x=\"%d\" y=\"%d\" font-size=\"12\"><title>",
                12, ly, 36, ly, col, dash[0] ? " stroke-dasharray=\"" : "",
                dash, dash[0] ? "\"" : "", 42, ly + 4);
        esc(f, c->variants[v].label);
        fputs("</title>", f);
        esc_cut(f, c->variants[v].label, LEGEND_CHARS);
        fputs("</text></g>\n", f);
        row++;
    }
#undef PX
#undef PY
    fputs("</svg></figure>\n", f);
}

/* p relative to the run's source (a sweep's or run's directory, named at
 * the top of the page) when inside it: shorter captions. */
static const char *rel(const dgm__compare *c, const dgm__cmp_run *r,
                       const char *p)
{
    const char *src = c->sources[r->source].path;
    size_t n = strlen(src);
    if (c->sources[r->source].manifest && !strncmp(p, src, n) && p[n] == '/')
        return p + n + 1;
    return p;
}

/* ---- samples ---------------------------------------------------------- */

static int png_filter(const struct dirent *d)
{
    size_t n = strlen(d->d_name);
    return d->d_name[0] != '.' && n > 4 && !strcmp(d->d_name + n - 4, ".png");
}

/* The last samples_*.png of dir/samples by name (the latest step), else
 * the last *.png; malloc'ed path or NULL. */
static char *last_png(const char *dir)
{
    char sd[4096];
    snprintf(sd, sizeof sd, "%s/samples", dir);
    struct dirent **list;
    int n = scandir(sd, &list, png_filter, alphasort);
    if (n <= 0)
        return NULL;
    int pick = n - 1;
    for (int i = n - 1; i >= 0; i--)
        if (!strncmp(list[i]->d_name, "samples_", 8)) {
            pick = i;
            break;
        }
    size_t len = strlen(sd) + strlen(list[pick]->d_name) + 2;
    char *p = malloc(len);
    if (p)
        snprintf(p, len, "%s/%s", sd, list[pick]->d_name);
    for (int i = 0; i < n; i++)
        free(list[i]);
    free(list);
    return p;
}

static void samples(const dgm__compare *c, FILE *f)
{
    fputs("<div class=\"samples\">\n", f);
    for (int v = 0; v < c->n_variants; v++) {
        const dgm__cmp_variant *va = &c->variants[v];
        char *png = NULL;
        const dgm__cmp_run *from = NULL;
        for (int pass = 0; pass < 2 && !png; pass++)
            for (int k = 0; k < va->n_runs && !png; k++) {
                from = &c->runs[va->runs[k]];
                if (pass == 0 && strcmp(from->status, "done"))
                    continue;
                png = last_png(from->dir);
            }
        fprintf(f, "<figure class=\"sample\" id=\"sample-%d\">", v);
        size_t n = 0;
        const char *why = NULL;
        unsigned char *d = png ? dgm__report_read_png(png, &n, &why) : NULL;
        if (d) {
            unsigned w = (unsigned)d[16] << 24 | (unsigned)d[17] << 16 |
                         (unsigned)d[18] << 8 | d[19];
            unsigned scale = w > 0 && w < 200 ? 200 / w + 1 : 1;
            if (w * scale > 400)
                scale = 1;
            fputs("<img alt=\"samples of ", f);
            esc(f, va->label);
            fprintf(f, "\" style=\"width:%upx\" src=\"data:image/png;base64,",
                    w ? (w * scale < 400 ? w * scale : 400) : 200);
            dgm__base64(f, d, n);
            fputs("\">", f);
            free(d);
        } else {
            fputs("<p class=\"rule\">", f);
            if (png) {
                esc(f, rel(c, from, png));
                fprintf(f, ": %s", why);
            } else
                fputs("no samples/*.png", f);
            fputs("</p>", f);
        }
        fprintf(f, "<figcaption><span style=\"color:%s\">&#9632;</span> ",
                palette[v % 10]);
        esc(f, va->label);
        if (png && d) {
            fputs("<br><span class=\"file\">", f);
            esc(f, rel(c, from, png));
            fputs("</span>", f);
        }
        fputs("</figcaption></figure>\n", f);
        free(png);
    }
    fputs("</div>\n", f);
}

/* ---- runs and sources ------------------------------------------------- */

static void runs_table(const dgm__compare *c, FILE *f)
{
    fputs("<div class=\"wide\"><table class=\"runs\" "
          "id=\"runs\">\n<thead><tr><th class=\"label\">"
          "run</th><th class=\"label\">variant</th><th>status</th><th>seed"
          "</th><th>steps</th><th class=\"label\">message</th></tr></thead>\n"
          "<tbody>\n",
          f);
    for (int i = 0; i < c->n_runs; i++) {
        const dgm__cmp_run *r = &c->runs[i];
        fprintf(f, "<tr class=\"run status-%s\"><td class=\"label\">",
                r->status);
        esc(f, rel(c, r, r->dir));
        fputs("</td><td class=\"label\">", f);
        esc(f, c->variants[r->variant].label);
        fprintf(f, "</td><td>%s</td><td>", r->status);
        if (json_is_integer(r->seed))
            fprintf(f, "%lld", (long long)json_integer_value(r->seed));
        else
            fputs("-", f);
        json_t *steps = json_object_get(r->summary, "steps");
        if (json_is_integer(steps))
            fprintf(f, "</td><td>%lld", (long long)json_integer_value(steps));
        else
            fputs("</td><td>-", f);
        fputs("</td><td class=\"label\">", f);
        const char *msg =
            json_string_value(json_object_get(r->trial, "message"));
        esc(f, msg ? msg : "");
        fputs("</td></tr>\n", f);
    }
    fputs("</tbody></table></div>\n", f);
}

static void sources(const dgm__compare *c, FILE *f)
{
    int plain = 0;
    for (int s = 0; s < c->n_sources; s++) {
        const json_t *m = c->sources[s].manifest;
        if (!m) {
            plain++;
            continue;
        }
        fputs("<p class=\"meta sweep\">sweep <b>", f);
        esc(f, c->sources[s].path);
        fputs("</b>: experiment ", f);
        esc(f, json_string_value(json_object_get(m, "experiment")));
        fputs(", launcher ", f);
        esc(f, json_string_value(json_object_get(m, "launcher")));
        const char *created = json_string_value(json_object_get(m, "created"));
        if (created) {
            fputs(", created ", f);
            esc(f, created);
        }
        fprintf(f, ", %zu trials</p>\n",
                json_array_size(json_object_get(m, "trials")));
    }
    if (plain)
        fprintf(f, "<p class=\"meta\">%d run director%s</p>\n", plain,
                plain == 1 ? "y" : "ies");
    int k[6] = {0};
    static const char *const w[6] = {"done",    "failed",  "diverged",
                                     "stopped", "running", "pending"};
    for (int i = 0; i < c->n_runs; i++)
        for (int j = 0; j < 6; j++)
            k[j] += !strcmp(c->runs[i].status, w[j]);
    fprintf(f, "<p class=\"meta\" id=\"counts\">%d runs in %d variants:",
            c->n_runs, c->n_variants);
    for (int j = 0, first = 1; j < 6; j++)
        if (k[j]) {
            fprintf(f, "%s %d %s", first ? "" : ",", k[j], w[j]);
            first = 0;
        }
    fputs("</p>\n", f);
}

/* ---- the page ------------------------------------------------------------ */

/* Chart order: the total loss, then each phase's total and plain terms
 * ("generator", "bernoulli_nll"), then a phase's terms ("generator/x"). */
static int chart_pass(const char *name)
{
    return !strcmp(name, "loss") ? 0 : strchr(name, '/') ? 2 : 1;
}

int dgm__report_write(const dgm__compare *c, const char *title, FILE *f)
{
    curves cv = {0};
    int rc = load_curves(c, &cv);
    if (rc < 0) {
        curves_free_series(&cv, c->n_variants);
        return rc;
    }
    if (!title || !title[0]) {
        title = "dgm report";
        for (int s = 0; s < c->n_sources; s++) {
            const char *n = json_string_value(
                json_object_get(c->sources[s].manifest, "name"));
            if (n) {
                title = n;
                break;
            }
        }
    }
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta "
          "charset=\"utf-8\">\n<title>",
          f);
    esc(f, title);
    fprintf(f, "</title>\n<style>%s</style>\n</head>\n<body>\n<h1>", css);
    esc(f, title);
    fputs("</h1>\n", f);
    sources(c, f);
    if (c->n_notes) {
        fputs("<div class=\"notes\"><ul>\n", f);
        for (int k = 0; k < c->n_notes; k++) {
            fputs("<li>", f);
            esc(f, c->notes[k]);
            fputs("</li>\n", f);
        }
        fputs("</ul></div>\n", f);
    }
    fputs("<h2>Comparison</h2>\n", f);
    table(c, f);
    fputs("<h2>Learning curves</h2>\n<div class=\"charts\">\n", f);
    /* the total loss first, then the terms as logged */
    int shown = 0;
    for (int pass = 0; pass < 3; pass++)
        for (int i = 0; i < cv.n; i++)
            if (chart_pass(cv.t[i].name) == pass)
                chart(c, &cv.t[i], shown++, f);
    if (!cv.n)
        fputs("<p class=\"rule\">No run has logged training steps "
              "(metrics.jsonl) yet.</p>\n",
              f);
    fputs("</div>\n", f);
    dgm__report_swept(c, f);
    dgm__report_asha(c, f);
    fputs("<h2>Samples</h2>\n", f);
    samples(c, f);
    /* each run's `dgm explore` figures, when it has some */
    for (int i = 0, any = 0; i < c->n_runs; i++)
        any += dgm__explore_embed(f, c->runs[i].dir,
                                  rel(c, &c->runs[i], c->runs[i].dir),
                                  any ? NULL : "<h2>Explore</h2>\n");
    fputs("<h2>Runs</h2>\n", f);
    runs_table(c, f);
    fputs("<p class=\"rule\">Written by dgm report.</p>\n</body>\n</html>\n",
          f);
    curves_free_series(&cv, c->n_variants);
    if (fflush(f) != 0 || ferror(f))
        return dgm_error(DGM_EIO, "report: write failed: %s", strerror(errno));
    return 0;
}

int dgm__report_save(const dgm__compare *c, const char *title, const char *path)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return dgm_error(DGM_ENOMEM, "report: out of memory");
    int rc = dgm__report_write(c, title, f);
    if (fclose(f) != 0 && rc == 0)
        rc = dgm_error(DGM_ENOMEM, "report: out of memory");
    if (rc == 0)
        rc = dgm_write_file_atomic(path, buf, len);
    free(buf);
    return rc;
}
