/* compare_asha.c - an ASHA sweep in dgm compare and dgm report: each
 * trial's rung, its metric there, the decision and why, from the
 * manifest; in the report also a chart of the metric against steps for
 * every trial with its promotions marked. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "compare.h"
#include "report_parts.h"

static json_t *asha_of(const dgm__cmp_source *s)
{
    return json_object_get(json_object_get(s->manifest, "scheduler"), "asha");
}

/* The last metric the trial reported (NAN: none or a failure). */
static double last_metric(json_t *ta)
{
    json_t *ms = json_object_get(ta, "metrics");
    size_t n = json_array_size(ms);
    json_t *v = n ? json_array_get(ms, n - 1) : NULL;
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static const char *str(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

void dgm__compare_asha_write(const dgm__compare *c, bool markdown, FILE *f)
{
    for (int s = 0; s < c->n_sources; s++) {
        json_t *a = asha_of(&c->sources[s]);
        if (!a)
            continue;
        json_t *sch = json_object_get(c->sources[s].manifest, "scheduler");
        json_t *trials = json_object_get(c->sources[s].manifest, "trials");
        const char *metric = str(a, "metric");
        fprintf(f, "\n%sASHA on %s (%s), rungs", markdown ? "**" : "", metric,
                str(a, "mode"));
        json_t *r;
        size_t k;
        json_array_foreach(json_object_get(a, "rungs"), k, r)
            fprintf(f, " %lld", (long long)json_integer_value(r));
        fprintf(f, ", reduction %lld: %lld steps trained in all (%s)%s\n\n",
                (long long)json_integer_value(json_object_get(a, "reduction")),
                (long long)json_integer_value(json_object_get(sch, "steps")),
                c->sources[s].path, markdown ? "**" : "");
        int w = 5;
        json_t *t;
        size_t i;
        json_array_foreach(trials, i, t)
        {
            int l = (int)strlen(str(t, "name"));
            w = l > w ? l : w;
        }
        if (markdown)
            fprintf(f,
                    "| trial | rung | step | %s | decision | reason |\n"
                    "|---|---|---|---|---|---|\n",
                    metric);
        else
            fprintf(f, "%-*s  %4s  %8s  %12s  %-8s  %s\n", w, "TRIAL", "RUNG",
                    "STEP", metric, "DECISION", "REASON");
        json_array_foreach(trials, i, t)
        {
            json_t *ta = json_object_get(t, "asha");
            double m = last_metric(ta);
            char mb[32], sb[32];
            dgm__cmp_num(m, 6, mb, sizeof mb);
            json_t *st = json_object_get(ta, "step");
            snprintf(sb, sizeof sb, "%s", "-");
            if (json_is_integer(st))
                snprintf(sb, sizeof sb, "%lld",
                         (long long)json_integer_value(st));
            long long rung = json_integer_value(json_object_get(ta, "rung"));
            if (markdown)
                fprintf(f, "| %s | %lld | %s | %s | %s | %s |\n",
                        str(t, "name"), rung, sb, mb, str(ta, "decision"),
                        str(ta, "reason"));
            else
                fprintf(f, "%-*s  %4lld  %8s  %12s  %-8s  %s\n", w,
                        str(t, "name"), rung, sb, mb, str(ta, "decision"),
                        str(ta, "reason"));
        }
    }
}

json_t *dgm__compare_asha_json(const dgm__compare *c)
{
    json_t *out = json_array();
    for (int s = 0; s < c->n_sources; s++) {
        json_t *a = asha_of(&c->sources[s]);
        if (!a)
            continue;
        json_t *o = json_object(), *tr = json_array(), *t;
        size_t i;
        json_array_foreach(json_object_get(c->sources[s].manifest, "trials"), i,
                           t)
        {
            json_t *x = json_deep_copy(json_object_get(t, "asha"));
            if (!x)
                x = json_object();
            json_object_set(x, "name", json_object_get(t, "name"));
            json_array_append_new(tr, x);
        }
        json_object_set_new(o, "sweep", json_string(c->sources[s].path));
        json_object_set(o, "asha", a);
        json_object_set(
            o, "steps",
            json_object_get(
                json_object_get(c->sources[s].manifest, "scheduler"), "steps"));
        json_object_set_new(o, "trials", tr);
        json_array_append_new(out, o);
    }
    return out;
}

/* ---- the report's section ----------------------------------------------- */

enum { CW = 540, CH = 300, ML = 72, MR = 20, MT = 30, MB = 46 };

static void chart(json_t *man, json_t *a, int index, FILE *f)
{
    json_t *trials = json_object_get(man, "trials"), *t, *v;
    size_t i, k;
    double x1 = 0, y0 = INFINITY, y1 = -INFINITY;
    json_t *rungs = json_object_get(a, "rungs");
    json_array_foreach(rungs, k, v) x1 =
        fmax(x1, (double)json_integer_value(v));
    json_array_foreach(trials, i, t) json_array_foreach(
        json_object_get(json_object_get(t, "asha"), "metrics"), k,
        v) if (json_is_number(v))
    {
        y0 = fmin(y0, json_number_value(v));
        y1 = fmax(y1, json_number_value(v));
    }
    if (!(y0 <= y1) || !(x1 > 0))
        return;
    dgm__axis ax, ay;
    dgm__axis_make(&ax, 0, x1, 6, true, false);
    dgm__axis_make(&ay, y0, y1, 5, false, true);
    int pw = CW - ML - MR, ph = CH - MT - MB;
#define PX(x) (ML + dgm__axis_at(&ax, (x)) * pw)
#define PY(y) (MT + (1 - dgm__axis_at(&ay, (y))) * ph)
    fprintf(f,
            "<figure class=\"chart\" id=\"asha-%d\">\n"
            "<svg class=\"chart\" width=\"%d\" height=\"%d\" "
            "viewBox=\"0 0 %d %d\" role=\"img\">\n"
            "<text x=\"8\" y=\"18\" font-size=\"14\" font-weight=\"bold\">",
            index, CW, CH + 24, CW, CH + 24);
    dgm__report_esc(f, str(a, "metric"));
    fputs(" <tspan font-weight=\"normal\" fill=\"#666\">at each rung, per "
          "trial</tspan></text>\n<g class=\"axes\" font-size=\"11\" "
          "fill=\"#444\">\n",
          f);
    char lb[64];
    for (int j = 0; j < ay.n; j++) {
        double py = PY(ay.tick[j]);
        dgm__axis_label(lb, sizeof lb, &ay, j);
        fprintf(f,
                "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" "
                "stroke=\"#e4e4e4\"/><text x=\"%d\" y=\"%.1f\" "
                "text-anchor=\"end\">%s</text>\n",
                ML, py, ML + pw, py, ML - 8, py + 4, lb);
    }
    /* the rungs, as vertical rules */
    json_array_foreach(rungs, k, v)
    {
        double px = PX((double)json_integer_value(v));
        fprintf(
            f,
            "<line class=\"rung\" x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" "
            "y2=\"%d\" stroke=\"#bbb\" stroke-dasharray=\"3 3\"/>"
            "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%lld</text>\n",
            px, MT, px, MT + ph, px, MT + ph + 18,
            (long long)json_integer_value(v));
    }
    fprintf(f,
            "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" "
            "stroke=\"#444\"/>\n<text x=\"%d\" y=\"%d\" "
            "text-anchor=\"middle\">step (filled: promoted from that rung or "
            "at the top; open: stopped there)</text>\n</g>\n",
            ML, MT, pw, ph, ML + pw / 2, MT + ph + 36);
    json_array_foreach(trials, i, t)
    {
        json_t *ta = json_object_get(t, "asha");
        json_t *ms = json_object_get(ta, "metrics");
        const char *col = dgm__report_palette[i % 10];
        fprintf(f, "<g class=\"trial\" data-trial=\"%zu\"><title>%zu: ", i, i);
        dgm__report_esc(f, str(t, "name"));
        fputs(" - ", f);
        dgm__report_esc(f, str(ta, "reason"));
        fprintf(f,
                "</title><polyline fill=\"none\" stroke=\"%s\" "
                "stroke-width=\"1.5\" points=\"",
                col);
        json_array_foreach(ms, k, v) if (json_is_number(v))
            fprintf(f, "%s%.1f,%.1f", k ? " " : "",
                    PX((double)json_integer_value(json_array_get(rungs, k))),
                    PY(json_number_value(v)));
        fputs("\"/>\n", f);
        size_t n = json_array_size(ms);
        json_array_foreach(ms, k, v)
        {
            if (!json_is_number(v))
                continue;
            /* promoted from rung k when the trial went further */
            bool up = k + 1 < n,
                 top = !up && !strcmp(str(ta, "decision"), "top");
            fprintf(f,
                    "<circle class=\"%s\" cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" "
                    "stroke=\"%s\" fill=\"%s\"/>\n",
                    up ? "promoted" : top ? "top" : "stopped",
                    PX((double)json_integer_value(json_array_get(rungs, k))),
                    PY(json_number_value(v)), col, up || top ? col : "white");
        }
        fputs("</g>\n", f);
    }
#undef PX
#undef PY
    fputs("</svg></figure>\n", f);
}

void dgm__report_asha(const dgm__compare *c, FILE *f)
{
    int shown = 0;
    for (int s = 0; s < c->n_sources; s++) {
        json_t *a = asha_of(&c->sources[s]);
        if (!a)
            continue;
        json_t *man = c->sources[s].manifest, *t;
        if (!shown++)
            fputs("<h2>ASHA</h2>\n", f);
        fputs("<p class=\"rule\">", f);
        dgm__report_esc(f, c->sources[s].path);
        fprintf(f, ": %lld steps trained in all</p>\n<div class=\"charts\">\n",
                (long long)json_integer_value(json_object_get(
                    json_object_get(man, "scheduler"), "steps")));
        chart(man, a, s, f);
        fputs("</div>\n<table class=\"asha\"><thead><tr><th>trial</th>"
              "<th>rung</th><th>step</th><th>",
              f);
        dgm__report_esc(f, str(a, "metric"));
        fputs("</th><th>decision</th><th>reason</th></tr></thead><tbody>\n", f);
        size_t i;
        json_array_foreach(json_object_get(man, "trials"), i, t)
        {
            json_t *ta = json_object_get(t, "asha");
            char mb[32];
            dgm__cmp_num(last_metric(ta), 6, mb, sizeof mb);
            fputs("<tr class=\"asha-trial\"><td>", f);
            dgm__report_esc(f, str(t, "name"));
            fprintf(f, "</td><td>%lld</td><td>%lld</td><td>%s</td><td>",
                    (long long)json_integer_value(json_object_get(ta, "rung")),
                    (long long)json_integer_value(json_object_get(ta, "step")),
                    mb);
            dgm__report_esc(f, str(ta, "decision"));
            fputs("</td><td>", f);
            dgm__report_esc(f, str(ta, "reason"));
            fputs("</td></tr>\n", f);
        }
        fputs("</tbody></table>\n", f);
    }
}
