/* test_report_sweep.c - dgm report's charts of each metric against each
 * swept value: the points are the variants' means over seeds, the error
 * bars one standard deviation on the chart's own scale, one line per
 * value of the other swept keys, on the compare fixture's 1-D sweep and
 * a 2 x 2 grid written here. */
#define _GNU_SOURCE /* open_memstream */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ck_run.h"
#include "compare.h"
#include "compare_fixture.h"
#include "dgm/dgm.h"

/* The section dgm report writes for the sources. */
static char *swept_html(const char *path)
{
    dgm__compare *c;
    dgm__cmp_options o = {0};
    const char *paths[] = {path};
    ck_assert_msg(dgm__compare_load(&c, paths, 1, &o) == 0, "%s",
                  dgm_last_error());
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    dgm__report_swept(c, f);
    fclose(f);
    dgm__compare_free(c);
    return buf;
}

/* The chart of metric against key (its <figure> ... </figure>), or NULL. */
static char *figure(const char *html, const char *metric, const char *key)
{
    char want[256];
    snprintf(want, sizeof want,
             "%s <tspan font-weight=\"normal\" "
             "fill=\"#666\">against %s",
             metric, key);
    const char *a = strstr(html, want);
    if (!a)
        return NULL;
    const char *e = strstr(a, "</figure>");
    return strndup(a, (size_t)(e - a));
}

static int count(const char *s, const char *what)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, what)); p++)
        n++;
    return n;
}

typedef struct point {
    double mean, sd, cx, cy;
} point;

/* The points in the figure, in order. */
static int points(const char *fig, point *pt, int max)
{
    int n = 0;
    for (const char *p = fig;
         n < max && (p = strstr(p, "class=\"swept-point\"")); p++) {
        ck_assert_int_eq(sscanf(p,
                                "class=\"swept-point\" data-mean=\"%lf\" "
                                "data-sd=\"%lf\" cx=\"%lf\" cy=\"%lf\"",
                                &pt[n].mean, &pt[n].sd, &pt[n].cx, &pt[n].cy),
                         4);
        n++;
    }
    return n;
}

/* The error bars' half-lengths over sd: one scale for every bar, each
 * centred on its point. */
static void check_bars(const char *fig, const point *pt, int n)
{
    double scale = NAN;
    const char *p = fig;
    for (int i = 0; i < n; i++) {
        if (!(pt[i].sd > 0))
            continue;
        p = strstr(p, "class=\"errbar\"");
        ck_assert_ptr_nonnull(p);
        double x1, y1, x2, y2;
        ck_assert_int_eq(sscanf(p,
                                "class=\"errbar\" x1=\"%lf\" y1=\"%lf\" "
                                "x2=\"%lf\" y2=\"%lf\"",
                                &x1, &y1, &x2, &y2),
                         4);
        p++;
        ck_assert_double_eq_tol(x1, pt[i].cx, 1e-3);
        ck_assert_double_eq_tol((y1 + y2) / 2, pt[i].cy, 2e-3);
        double s = (y2 - y1) / 2 / pt[i].sd;
        if (isnan(scale))
            scale = s;
        ck_assert_double_eq_tol(s, scale, 1e-3 * scale);
    }
    ck_assert(scale > 0);
}

START_TEST(one_key_one_line_with_error_bars)
{
    char *html = swept_html(tc_cmp_sweep);
    char *fig = figure(html, "neg_elbo", "model.latent");
    ck_assert_msg(fig != NULL, "%s", html);
    /* latent 2: 100 102 107; 10: 90 94; 20: 95 (no bar) */
    point pt[8];
    ck_assert_int_eq(points(fig, pt, 8), 3);
    ck_assert_int_eq(count(fig, "class=\"swept-line\""), 1);
    ck_assert_int_eq(count(fig, "class=\"errbar\""), 2);
    ck_assert_double_eq_tol(pt[0].mean, 103, 1e-12);
    ck_assert_double_eq_tol(pt[0].sd, sqrt(13), 1e-12);
    ck_assert_double_eq_tol(pt[1].mean, 92, 1e-12);
    ck_assert_double_eq_tol(pt[1].sd, sqrt(8), 1e-12);
    ck_assert_double_eq_tol(pt[2].mean, 95, 1e-12);
    /* a linear x: 2, 10, 20 at proportional places */
    ck_assert_double_eq_tol((pt[1].cx - pt[0].cx) / (pt[2].cx - pt[1].cx), 0.8,
                            1e-3);
    /* y grows downwards: 103 highest on the page, then 95, then 92 */
    ck_assert(pt[0].cy < pt[2].cy && pt[2].cy < pt[1].cy);
    check_bars(fig, pt, 3);
    /* "all": no other swept key */
    ck_assert_ptr_nonnull(strstr(fig, ">all</text>"));
    free(fig);
    free(html);
}
END_TEST

START_TEST(a_grid_gets_one_line_per_other_value)
{
    /* latent {2, 8} x lr {0.1, 0.01} x seeds {0, 1}: neg_elbo
     * 100 + latent + 1000 lr +- seed, i.e. per variant the mean
     * 100 + latent + 1000 lr + 0.5 and sd sqrt(0.5) */
    char sd[1200], m[8192];
    snprintf(sd, sizeof sd, "%s/grid", tc_cmp_root);
    size_t len = (size_t)snprintf(m, sizeof m,
                                  "{\"format\": 1, \"name\": \"g\", "
                                  "\"experiment\": \"/x/g.yaml\", "
                                  "\"launcher\": \"local\", \"created\": "
                                  "\"2026-12-03T00:00:00Z\", \"trials\": [\n");
    int lat[2] = {2, 8}, i = 0;
    double lr[2] = {0.1, 0.01};
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 2; b++)
            for (int s = 0; s < 2; s++, i++) {
                char name[64], dir[1400], fin[128];
                snprintf(name, sizeof name, "%03d-latent=%d-lr=%g-seed=%d", i,
                         lat[a], lr[b], s);
                len += (size_t)snprintf(
                    m + len, sizeof m - len,
                    "%s{\"index\": %d, \"name\": \"%s\", \"overrides\": "
                    "[\"model.latent=%d\", \"optimizer.lr=%g\", \"seed=%d\"], "
                    "\"params\": {\"model.latent\": %d, \"optimizer.lr\": %g, "
                    "\"seed\": %d}, \"seed\": %d, \"run_dir\": \"trials/%s\", "
                    "\"status\": \"done\", \"exit_code\": 0, \"message\": "
                    "null}\n",
                    i ? "," : "", i, name, lat[a], lr[b], s, lat[a], lr[b], s,
                    s, name);
                snprintf(dir, sizeof dir, "%s/trials/%s", sd, name);
                tc_cmp_mkdirs(dir);
                tc_cmp_config(dir, "g", lat[a], lr[b], s);
                snprintf(fin, sizeof fin, "\"neg_elbo\": %.17g",
                         100 + lat[a] + 1000 * lr[b] + s);
                tc_cmp_summary(dir, "completed", fin, 1.0);
            }
    snprintf(m + len, sizeof m - len, "]}\n");
    tc_cmp_put(m, "%s/manifest.json", sd);
    tc_cmp_put("name: g\nsweep: {}\n", "%s/sweep.yaml", sd);
    char *html = swept_html(sd);
    char *fig = figure(html, "neg_elbo", "model.latent");
    ck_assert_msg(fig != NULL, "%s", html);
    ck_assert_int_eq(count(fig, "class=\"swept-line\""), 2);
    point pt[8];
    ck_assert_int_eq(points(fig, pt, 8), 4);
    /* line lr=0.1: latent 2, 8; then line lr=0.01 */
    static const double want[4] = {202.5, 208.5, 112.5, 118.5};
    for (int k = 0; k < 4; k++) {
        ck_assert_double_eq_tol(pt[k].mean, want[k], 1e-9);
        ck_assert_double_eq_tol(pt[k].sd, sqrt(0.5), 1e-12);
    }
    check_bars(fig, pt, 4);
    ck_assert_ptr_nonnull(strstr(fig, ">lr=0.1</text>"));
    ck_assert_ptr_nonnull(strstr(fig, ">lr=0.01</text>"));
    free(fig);
    /* against lr: two lines (latent 2, 8); linear x here (one decade) */
    fig = figure(html, "neg_elbo", "optimizer.lr");
    ck_assert_ptr_nonnull(fig);
    ck_assert_int_eq(count(fig, "class=\"swept-line\""), 2);
    ck_assert_int_eq(points(fig, pt, 8), 4);
    ck_assert_ptr_nonnull(strstr(fig, ">latent=2</text>"));
    free(fig);
    /* seeds are not a swept value: no chart against seed */
    ck_assert_ptr_null(strstr(html, "against seed"));
    free(html);
}
END_TEST

/* n "x,y" pairs after the first points=" following at. */
static void read_points(const char *at, double *xy, int n)
{
    const char *p = strstr(at, "points=\"");
    ck_assert_ptr_nonnull(p);
    p += 8;
    for (int i = 0; i < n; i++) {
        int used = 0;
        ck_assert_int_eq(
            sscanf(p, "%lf,%lf%n", &xy[2 * i], &xy[2 * i + 1], &used), 2);
        p += used;
    }
}

START_TEST(learning_curves_get_a_band_of_one_deviation)
{
    /* the fixture's loss at step s is base + 10 - s, bases 100, 103, 109
     * for latent=2 (sd sqrt(21)) and 90, 95 for latent=10 (sd
     * sqrt(12.5)), alike at every step */
    dgm__compare *c;
    dgm__cmp_options o = {0};
    const char *paths[] = {tc_cmp_sweep};
    ck_assert_int_eq(dgm__compare_load(&c, paths, 1, &o), 0);
    char *html = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&html, &n);
    ck_assert_int_eq(dgm__report_write(c, NULL, f), 0);
    fclose(f);
    dgm__compare_free(c);
    const char *chart = strstr(html, "id=\"chart-0\"");
    ck_assert_ptr_nonnull(chart);
    double half[2];
    for (int v = 0; v < 2; v++) {
        char b[64], cu[64];
        snprintf(b, sizeof b, "<polygon class=\"band\" data-variant=\"%d\"", v);
        snprintf(cu, sizeof cu, "<polyline class=\"curve\" data-variant=\"%d\"",
                 v);
        const char *pb = strstr(chart, b), *pc = strstr(chart, cu);
        ck_assert(pb && pc);
        double band[12], curve[6];
        read_points(pb, band, 6);
        read_points(pc, curve, 3);
        for (int i = 0; i < 3; i++) {
            /* upper at i, lower at 5 - i, centred on the curve */
            double up = band[2 * i + 1], lo = band[2 * (5 - i) + 1];
            ck_assert_double_eq_tol(band[2 * i], curve[2 * i], 0.06);
            ck_assert_double_eq_tol((up + lo) / 2, curve[2 * i + 1], 0.06);
            double h = (lo - up) / 2;
            if (i == 0)
                half[v] = h;
            ck_assert_double_eq_tol(h, half[v], 0.01);
        }
    }
    ck_assert_double_eq_tol(half[0] / half[1], sqrt(21 / 12.5), 1e-3);
    free(html);
}
END_TEST

int main(void)
{
    tc_cmp_setup();
    Suite *s = suite_create("report_sweep");
    tq_case(s, "swept", one_key_one_line_with_error_bars,
            a_grid_gets_one_line_per_other_value,
            learning_curves_get_a_band_of_one_deviation);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    tc_cmp_cleanup(failed);
    return failed ? 1 : 0;
}
