/* test_compare_format.c - dgm compare's output formats (JSON, CSV, table,
 * Markdown, the command line) and dgm report's HTML (rows, curves,
 * escaping, embedded samples) on the run and sweep directories of
 * tests/support/compare_fixture.h, checked against the figures worked out
 * by hand. The statistics and bad input are in test_compare.c. */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "cfg_check.h"
#include "ck_run.h"
#include "cli.h"
#include "compare.h"
#include "compare_check.h"
#include "compare_fixture.h"
#include "dgm/dgm.h"
#include "files.h"
#include "tool_files.h"

/* ---- formats ----------------------------------------------------------------
 */

static char *write_fmt(const dgm__compare *c, dgm__cmp_format f)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&buf, &len);
    ck_assert_ptr_nonnull(fp);
    int rc = dgm__compare_write(c, f, fp);
    ck_assert_msg(rc == 0, "%s", dgm_last_error());
    fclose(fp);
    return buf;
}

/* The JSON output (as --format json prints it) checked against expect. */
static void check_json(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    ck_assert_msg(j, "bad JSON: %s", e.text);
    json_t *vs = json_object_get(j, "variants");
    ck_assert_int_eq(json_array_size(vs), 3);
    for (int i = 0; i < tc_cmp_n_expect; i++) {
        json_t *v = NULL;
        for (size_t k = 0; k < json_array_size(vs); k++)
            if (!strcmp(json_string_value(
                            json_object_get(json_array_get(vs, k), "label")),
                        tc_cmp_expect[i].label))
                v = json_array_get(vs, k);
        ck_assert_ptr_nonnull(v);
        json_t *s = json_object_get(json_object_get(v, "metrics"),
                                    tc_cmp_expect[i].metric);
        ck_assert_int_eq(json_integer_value(json_object_get(s, "n")),
                         tc_cmp_expect[i].n);
        CLOSE(json_number_value(json_object_get(s, "mean")),
              tc_cmp_expect[i].mean);
        if (isnan(tc_cmp_expect[i].sd))
            ck_assert(json_is_null(json_object_get(s, "sd")));
        else
            CLOSE(json_number_value(json_object_get(s, "sd")),
                  tc_cmp_expect[i].sd);
        ck_assert(json_is_true(json_object_get(s, "best")) ==
                  tc_cmp_expect[i].best);
    }
    json_t *b = json_array_get(vs, 1);
    ck_assert_int_eq(json_integer_value(json_object_get(b, "failed")), 1);
    ck_assert_int_eq(json_integer_value(json_object_get(b, "done")), 2);
    ck_assert_int_eq(json_array_size(json_object_get(b, "members")), 3);
    json_t *z = json_array_get(vs, 2);
    ck_assert_int_eq(json_integer_value(json_object_get(z, "diverged")), 1);
    ck_assert_int_eq(json_integer_value(json_object_get(z, "running")), 1);
    ck_assert_int_eq(json_integer_value(json_object_get(z, "pending")), 1);
    json_t *m0 = json_array_get(json_object_get(j, "metrics"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(m0, "name")),
                     "neg_elbo");
    ck_assert_str_eq(json_string_value(json_object_get(m0, "better")), "lower");
    json_decref(j);
}

START_TEST(test_format_json)
{
    dgm__compare *c = load(tc_cmp_sweep, NULL);
    char *s = write_fmt(c, DGM__CMP_JSON);
    check_json(s);
    free(s);
    dgm__compare_free(c);
}
END_TEST

/* Split a CSV line without quotes into cells (at most max). */
static int cells(char *line, char **out, int max)
{
    int n = 0;
    char *p = line;
    while (n < max) {
        out[n++] = p;
        char *comma = strchr(p, ',');
        if (!comma)
            break;
        *comma = '\0';
        p = comma + 1;
    }
    return n;
}

START_TEST(test_format_csv)
{
    dgm__compare *c = load(tc_cmp_sweep, NULL);
    char *s = write_fmt(c, DGM__CMP_CSV);
    char *lines[8];
    int nl = 0;
    char *save = NULL;
    for (char *l = strtok_r(s, "\n", &save); l && nl < 8;
         l = strtok_r(NULL, "\n", &save))
        lines[nl++] = l;
    ck_assert_int_eq(nl, 4);
    char *h[64];
    int nh = cells(lines[0], h, 64);
    ck_assert_int_eq(nh, 8 + 4 * 4);
    ck_assert_str_eq(h[0], "variant");
    ck_assert_str_eq(h[3], "failed");
    ck_assert_str_eq(h[8], "neg_elbo_mean");
    ck_assert_str_eq(h[9], "neg_elbo_sd");
    ck_assert_str_eq(h[10], "neg_elbo_n");
    ck_assert_str_eq(h[11], "neg_elbo_best");
    /* Every expected figure and both status rows must be found: a changed
     * label must fail here, not skip the value checks. */
    int checked = 0, status_rows = 0;
    for (int r = 1; r < 4; r++) {
        char *v[64];
        ck_assert_int_eq(cells(lines[r], v, 64), nh);
        for (int i = 0; i < tc_cmp_n_expect; i++) {
            if (strcmp(v[0], tc_cmp_expect[i].label))
                continue;
            int col = -1;
            char want[128];
            snprintf(want, sizeof want, "%s_mean", tc_cmp_expect[i].metric);
            for (int k = 0; k < nh; k++)
                if (!strcmp(h[k], want))
                    col = k;
            ck_assert_int_ge(col, 0);
            CLOSE(strtod(v[col], NULL), tc_cmp_expect[i].mean);
            if (isnan(tc_cmp_expect[i].sd))
                ck_assert_str_eq(v[col + 1], ""); /* one run: empty */
            else
                CLOSE(strtod(v[col + 1], NULL), tc_cmp_expect[i].sd);
            ck_assert_int_eq(atoi(v[col + 2]), tc_cmp_expect[i].n);
            ck_assert_int_eq(atoi(v[col + 3]), tc_cmp_expect[i].best);
            checked++;
        }
        if (!strcmp(v[0], "latent=20")) {
            status_rows++;
            ck_assert_str_eq(v[1], "4"); /* runs */
            ck_assert_str_eq(v[2], "1"); /* done */
            ck_assert_str_eq(v[3], "0"); /* failed */
            ck_assert_str_eq(v[4], "1"); /* diverged */
            ck_assert_str_eq(v[6], "1"); /* running */
            ck_assert_str_eq(v[7], "1"); /* pending */
        }
        if (!strcmp(v[0], "latent=10")) {
            status_rows++;
            ck_assert_str_eq(v[3], "1");
        }
    }
    ck_assert_int_eq(checked, tc_cmp_n_expect);
    ck_assert_int_eq(status_rows, 2);
    free(s);
    dgm__compare_free(c);
}
END_TEST

/* The table row starting with label, collapsed to single blanks. */
static void row_of(const char *text, const char *label, char *out, size_t n)
{
    const char *p = text;
    size_t ll = strlen(label);
    while (p && strncmp(p, label, ll) != 0) {
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    ck_assert_msg(p, "no row '%s' in:\n%s", label, text);
    size_t k = 0;
    bool blank = false;
    for (; *p && *p != '\n' && k + 1 < n; p++) {
        if (*p == ' ') {
            blank = true;
            continue;
        }
        if (blank && k)
            out[k++] = ' ';
        blank = false;
        out[k++] = *p;
    }
    out[k] = '\0';
}

START_TEST(test_format_table)
{
    dgm__compare *c = load(tc_cmp_sweep, NULL);
    char *s = write_fmt(c, DGM__CMP_TABLE);
    char r[512];
    row_of(s, "variant ", r, sizeof r);
    ck_assert_str_eq(r, "variant runs done failed diverged other neg_elbo sd "
                        "elbo sd accuracy sd train_loss sd");
    row_of(s, "latent=2 ", r, sizeof r);
    ck_assert_str_eq(r, "latent=2 3 3 0 0 - 103 3.61 -103 3.61 0.6 0.1 "
                        "101.333 2.52");
    row_of(s, "latent=10 ", r, sizeof r);
    ck_assert_str_eq(r, "latent=10 3 2 1 0 - 92 * 2.83 -92 * 2.83 0.85 "
                        "0.0707 91.5 * 0.707");
    row_of(s, "latent=20 ", r, sizeof r);
    ck_assert_str_eq(r, "latent=20 4 1 0 1 1 running, 1 pending 95 - -95 - "
                        "0.95 * - 96 -");
    ck_assert_ptr_nonnull(strstr(s, "lower is better for neg_elbo, "
                                    "train_loss; higher is better for elbo, "
                                    "accuracy"));
    /* columns line up: every row as long as the header */
    size_t w = strcspn(s, "\n");
    const char *p = s;
    for (int i = 0; i < 4; i++) {
        ck_assert_uint_eq(strcspn(p, "\n"), w);
        p += w + 1;
    }
    free(s);
    dgm__compare_free(c);
}
END_TEST

START_TEST(test_format_markdown)
{
    dgm__compare *c = load(tc_cmp_sweep, NULL);
    char *s = write_fmt(c, DGM__CMP_MARKDOWN);
    ck_assert_ptr_nonnull(strstr(
        s, "| variant | runs | done | failed | diverged | other | neg_elbo | "
           "sd | elbo | sd | accuracy | sd | train_loss | sd |\n| --- | "));
    ck_assert_ptr_nonnull(strstr(
        s, "| latent=2 | 3 | 3 | 0 | 0 | - | 103 | 3.61 | -103 | 3.61 | 0.6 "
           "| 0.1 | 101.333 | 2.52 |\n"));
    ck_assert_ptr_nonnull(strstr(
        s, "| latent=10 | 3 | 2 | 1 | 0 | - | **92** | 2.83 | **-92** | 2.83 "
           "| 0.85 | 0.0707 | **91.5** | 0.707 |\n"));
    ck_assert_ptr_nonnull(
        strstr(s, "| latent=20 | 4 | 1 | 0 | 1 | 1 running, 1 pending | 95 | "
                  "- | -95 | - | **0.95** | - | 96 | - |\n"));
    free(s);
    dgm__compare_free(c);
}
END_TEST

/* Run the dgm executable; its stdout into out, stderr into err. */
static int run_cli(char *out, size_t n_out, char *err, size_t n_err,
                   const char *args)
{
    return tc_cli(NULL, args, out, n_out, err, n_err);
}

START_TEST(test_cli)
{
    static char out[1 << 16], err[8192];
    char args[2048];
    snprintf(args, sizeof args, "compare %s --format json", tc_cmp_sweep);
    ck_assert_int_eq(run_cli(out, sizeof out, err, sizeof err, args), 0);
    check_json(out);
    snprintf(args, sizeof args, "compare %s --format=csv --metric accuracy",
             tc_cmp_sweep);
    ck_assert_int_eq(run_cli(out, sizeof out, err, sizeof err, args), 0);
    ck_assert_ptr_nonnull(strstr(out, "latent=10,3,2,1,0,0,0,0,0.85,"));
    snprintf(args, sizeof args, "compare %s --format xml", tc_cmp_sweep);
    ck_assert_int_eq(run_cli(out, sizeof out, err, sizeof err, args), 2);
    ck_assert_ptr_nonnull(strstr(err, "--format xml"));
    snprintf(args, sizeof args, "compare %s --metric acuracy", tc_cmp_sweep);
    ck_assert_int_eq(run_cli(out, sizeof out, err, sizeof err, args), 2);
    ck_assert_ptr_nonnull(strstr(err, "did you mean 'accuracy'"));
    snprintf(args, sizeof args, "compare %s/nothing-here", tc_cmp_root);
    ck_assert_int_eq(run_cli(out, sizeof out, err, sizeof err, args), 1);
    ck_assert_ptr_nonnull(strstr(err, "nothing-here"));
    ck_assert_int_eq(run_cli(out, sizeof out, err, sizeof err, "compare"), 2);
}
END_TEST

/* ---- the HTML report
 * ------------------------------------------------------------ */

static int count(const char *s, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

static char *slurp(const char *path)
{
    return tc_slurp(path, NULL, true);
}

START_TEST(test_report)
{
    dgm__compare *c = load(tc_cmp_sweep, NULL);
    char path[1300];
    snprintf(path, sizeof path, "%s/report-%d.html", tc_cmp_root,
             (int)getpid());
    int rc = dgm__report_save(c, NULL, path);
    ck_assert_msg(rc == 0, "%s", dgm_last_error());
    char *s = slurp(path);
    ck_assert_int_eq(count(s, "<tr class=\"variant\""), 3);
    /* two loss terms (loss, bernoulli_nll) x three variants; the eval line
     * and lr are no curves */
    ck_assert_int_eq(count(s, "<polyline class=\"curve\""), 6);
    ck_assert_int_eq(count(s, "<figure class=\"chart\" id=\"chart-"), 2);
    /* and each of the four figures against the swept latent */
    ck_assert_int_eq(count(s, "<figure class=\"chart swept\""), 4);
    /* a band of one deviation for latent=2 and 10 (two runs or more), in
     * each learning-curve chart; none for latent=20 (one run) */
    ck_assert_int_eq(count(s, "<polygon class=\"band\" data-variant=\"0\""),
                     2);
    ck_assert_int_eq(count(s, "<polygon class=\"band\" data-variant=\"1\""),
                     2);
    ck_assert_int_eq(count(s, "<polygon class=\"band\" data-variant=\"2\""),
                     0);
    /* one sample grid per variant that has a done run */
    ck_assert_int_eq(count(s, "src=\"data:image/png;base64,iVBORw0KGgo"), 3);
    ck_assert_int_eq(count(s, "samples_000003.png"), 3);
    ck_assert_int_eq(count(s, "<tr class=\"run status-"), 10);
    ck_assert_ptr_null(strstr(s, "http://"));
    ck_assert_ptr_null(strstr(s, "https://"));
    ck_assert_ptr_null(strstr(s, "<script"));
    /* the failed trial's message, escaped */
    ck_assert_ptr_nonnull(
        strstr(s, "killed by signal 11 &lt;Segmentation fault&gt;"));
    /* the curves of latent=2: three points each, the mean of seeds 0, 1
     * and 2 (bases 100, 103, 109): loss at step 1 = 113, 2 = 112,
     * 3 = 111; a curve's first point is at the left edge */
    const char *p = strstr(s, "<polyline class=\"curve\" data-variant=\"0\"");
    ck_assert_ptr_nonnull(p);
    const char *pts = strstr(p, "points=\"") + 8;
    int spaces = 0;
    for (const char *q = pts; *q != '"'; q++)
        spaces += *q == ' ';
    ck_assert_int_eq(spaces, 2);
    free(s);
    dgm__compare_free(c);

    /* every text from the files is escaped */
    c = load(tc_cmp_runs, NULL);
    ck_assert_int_eq(dgm__report_save(c, "a <title> & more", path), 0);
    s = slurp(path);
    ck_assert_ptr_null(strstr(s, "<b>&odd"));
    ck_assert_ptr_nonnull(strstr(s, "&lt;b&gt;&amp;odd&lt;/b&gt;"));
    ck_assert_ptr_nonnull(
        strstr(s, "<title>a &lt;title&gt; &amp; more</title>"));
    ck_assert_int_eq(count(s, "<tr class=\"variant\""), 4);
    free(s);
    dgm__compare_free(c);
    unlink(path);
}
END_TEST

START_TEST(test_report_bad_metrics)
{
    char d[1400];
    snprintf(d, sizeof d, "%s/badmetrics", tc_cmp_bad);
    tc_cmp_config(d, "vae", 4, 0.1, 0);
    tc_cmp_put(
        "{\"status\": \"completed\", \"train_loss\": 1, \"final\": {}}\n",
        "%s/summary.json", d);
    tc_cmp_put("{\"step\": 1, \"loss\": 2}\n{\"step\": 2, \"loss\": \n"
               "{\"step\": 3, \"loss\": 1}\n",
               "%s/metrics.jsonl", d);
    dgm__compare *c = load(d, NULL);
    char path[1500], f[1500];
    snprintf(path, sizeof path, "%s/r.html", d);
    snprintf(f, sizeof f, "%s/metrics.jsonl:2:", d);
    ASSERT_ERR(dgm__report_save(c, NULL, path), DGM_EFORMAT, f);
    ck_assert_int_ne(access(path, F_OK), 0); /* nothing half-written */
    dgm__compare_free(c);
    /* an unterminated last line is a run still writing: accepted */
    tc_cmp_put("{\"step\": 1, \"loss\": 2}\n{\"step\": 2, \"lo",
               "%s/metrics.jsonl", d);
    c = load(d, NULL);
    ck_assert_int_eq(dgm__report_save(c, NULL, path), 0);
    char *s = slurp(path);
    ck_assert_int_eq(count(s, "<polyline class=\"curve\""), 1);
    free(s);
    dgm__compare_free(c);
}
END_TEST

static Suite *compare_format_suite(void)
{
    Suite *s = suite_create("compare_format");
    TCase *tc = tq_case(s, "formats", test_format_json, test_format_csv,
                        test_format_table, test_format_markdown, test_cli);
    tcase_set_timeout(tc, 60);
    tq_case(s, "report", test_report, test_report_bad_metrics);
    return s;
}

int main(void)
{
    tc_cmp_setup();
    SRunner *sr = srunner_create(compare_format_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    tc_cmp_cleanup(failed);
    return failed != 0;
}
