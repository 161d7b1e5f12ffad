/* test_report_ticks.c - `dgm report`'s chart axes on curves whose steps or
 * values sit where doubles run out of precision or range (steps near 2^53
 * and 2^63, values one ulp apart at 1e18, +-1.7e308, subnormals): the
 * report must finish, and each axis must carry a few distinct, finite
 * tick labels with every point inside the plot. Each report is written in
 * a child process under alarm(10) into a buffer capped at 8 MB, so a tick
 * loop that never ends fails its test instead of hanging the suite or
 * eating the machine's memory. */
#define _GNU_SOURCE /* fopencookie */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ck_run.h"
#include "compare.h"
#include "dgm/dgm.h"

static char root[1024];

/* ---- a run directory with the given metrics.jsonl ------------------------ */

static void put(const char *dir, const char *file, const char *text)
{
    char p[2048];
    mkdir(dir, 0755);
    snprintf(p, sizeof p, "%s/%s", dir, file);
    FILE *f = fopen(p, "w");
    if (!f) {
        fprintf(stderr, "test_report_ticks: cannot write %s: %s\n", p,
                strerror(errno));
        exit(1);
    }
    fputs(text, f);
    fclose(f);
}

static void make_run(const char *dir, const char *metrics)
{
    put(dir, "summary.json",
        "{\"name\": \"ticks\", \"status\": \"completed\", \"steps\": 1}\n");
    put(dir, "metrics.jsonl", metrics);
}

/* ---- a FILE that refuses to grow past a cap ------------------------------ */

#define CAP (8 << 20)

typedef struct capped {
    char *buf;
    size_t len;
} capped;

static ssize_t capped_write(void *cookie, const char *data, size_t n)
{
    capped *c = cookie;
    if (c->len + n > CAP) {
        errno = EFBIG;
        return -1;
    }
    memcpy(c->buf + c->len, data, n);
    c->len += n;
    return (ssize_t)n;
}

/* ---- what a sane chart looks like ---------------------------------------- */

enum {
    OK = 0,
    E_LOAD = 10,
    E_WRITE,
    E_AXIS_Y,
    E_AXIS_X,
    E_DUP,
    E_NONFINITE,
    E_OUTSIDE,
    E_NO_CHART
};

/* The labels of one axis in chart text: "<text ... text-anchor=A>L</text>"
 * (the x axis's title "step" is not a tick). Returns the count, or -1 if
 * two labels repeat. */
static int axis_labels(const char *svg, const char *anchor)
{
    char needle[64], seen[64][64];
    snprintf(needle, sizeof needle, "text-anchor=\"%s\">", anchor);
    int n = 0;
    for (const char *p = strstr(svg, needle); p; p = strstr(p, needle)) {
        p += strlen(needle);
        const char *end = strchr(p, '<');
        if (!end || (size_t)(end - p) >= sizeof seen[0])
            return -1;
        char lb[64];
        snprintf(lb, sizeof lb, "%.*s", (int)(end - p), p);
        if (!strcmp(lb, "step"))
            continue;
        for (int i = 0; i < n && i < 64; i++)
            if (!strcmp(seen[i], lb))
                return -1;
        if (n < 64)
            snprintf(seen[n], sizeof seen[n], "%s", lb);
        n++;
    }
    return n;
}

/* Every polyline/circle coordinate inside the 540 x 300 chart area. */
static bool points_inside(const char *svg)
{
    const char *key = "points=\"";
    for (const char *p = strstr(svg, key); p; p = strstr(p, key)) {
        p += strlen(key);
        while (*p && *p != '"') {
            char *end;
            double x = strtod(p, &end);
            if (end == p || *end != ',')
                return false;
            double y = strtod(end + 1, &end);
            if (!(x >= 0 && x <= 540 && y >= 0 && y <= 300))
                return false;
            p = end + (*end == ' ');
        }
    }
    return true;
}

/* In the child: the report of dir, checked; exit status says what failed. */
static int report_child(const char *dir)
{
    /* Check's own SIGALRM handler would kill the whole test */
    signal(SIGALRM, SIG_DFL);
    alarm(10);
    dgm__compare *c;
    const char *paths[] = {dir};
    dgm__cmp_options o = {0};
    if (dgm__compare_load(&c, paths, 1, &o) < 0)
        return E_LOAD;
    capped cb = {malloc(CAP + 1), 0};
    cookie_io_functions_t io = {.write = capped_write};
    FILE *f = cb.buf ? fopencookie(&cb, "w", io) : NULL;
    if (!f)
        return E_WRITE;
    int rc = dgm__report_write(c, NULL, f);
    if (fclose(f) != 0 || rc < 0)
        return E_WRITE;
    dgm__compare_free(c);
    cb.buf[cb.len] = '\0';
    const char *svg = strstr(cb.buf, "<svg class=\"chart\"");
    if (!svg)
        return E_NO_CHART;
    char *end = strstr(svg, "</svg>");
    if (!end)
        return E_NO_CHART;
    *end = '\0';
    int ny = axis_labels(svg, "end"), nx = axis_labels(svg, "middle");
    if (ny < 0 || nx < 0)
        return E_DUP;
    if (ny < 2 || ny > 16)
        return E_AXIS_Y;
    if (nx < 1 || nx > 16)
        return E_AXIS_X;
    if (strstr(svg, "nan") || strstr(svg, "inf"))
        return E_NONFINITE;
    if (!points_inside(svg))
        return E_OUTSIDE;
    free(cb.buf);
    return OK;
}

/* Report on a run logging `metrics`; fails the test unless the child
 * finished in time with a sane chart. */
static void check_report(const char *name, const char *metrics)
{
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/%s", root, name);
    make_run(dir, metrics);
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        _exit(report_child(dir));
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    if (WIFSIGNALED(st))
        ck_abort_msg("%s: the report did not finish: signal %d (%s)", name,
                     WTERMSIG(st),
                     WTERMSIG(st) == SIGALRM ? "over 10 s" : "crash");
    ck_assert_msg(
        WIFEXITED(st) && WEXITSTATUS(st) == OK,
        "%s: report check failed with code %d (%s)", name, WEXITSTATUS(st),
        (const char *[]){"load", "write", "y ticks", "x ticks",
                         "repeated tick label", "nan or inf",
                         "point outside the plot",
                         "no chart"}[WEXITSTATUS(st) >= E_LOAD &&
                                             WEXITSTATUS(st) <= E_NO_CHART
                                         ? WEXITSTATUS(st) - E_LOAD
                                         : 0]);
}

START_TEST(test_step_2p53)
{
    /* the one-line reproduction: a single step at 2^53 */
    check_report("step-2p53", "{\"step\":9007199254740992,\"loss\":1}\n");
}
END_TEST

START_TEST(test_steps_one_apart_at_1e18)
{
    check_report("steps-1e18", "{\"step\":1000000000000000000,\"loss\":1}\n"
                               "{\"step\":1000000000000000001,\"loss\":2}\n");
}
END_TEST

START_TEST(test_steps_int64_extremes)
{
    check_report("steps-int64", "{\"step\":-9223372036854775808,\"loss\":1}\n"
                                "{\"step\":9223372036854775807,\"loss\":2}\n");
}
END_TEST

START_TEST(test_values_one_ulp_at_1e18)
{
    check_report("values-1e18",
                 "{\"step\":1,\"loss\":1e18}\n"
                 "{\"step\":2,\"loss\":1.0000000000000001e18}\n");
}
END_TEST

START_TEST(test_values_near_2p53)
{
    check_report("values-2p53", "{\"step\":1,\"loss\":9007199254740992}\n"
                                "{\"step\":2,\"loss\":9007199254740993}\n"
                                "{\"step\":3,\"loss\":9007199254740994}\n");
}
END_TEST

START_TEST(test_values_full_range)
{
    /* the span overflows a double; a step of two runs would sum to inf */
    check_report("values-range",
                 "{\"step\":1,\"loss\":-1.7e308}\n"
                 "{\"step\":2,\"loss\":1.7e308}\n"
                 "{\"step\":3,\"loss\":1.7976931348623157e308}\n");
}
END_TEST

START_TEST(test_values_constant_max)
{
    check_report("values-max",
                 "{\"step\":5,\"loss\":1.7976931348623157e308}\n"
                 "{\"step\":6,\"loss\":1.7976931348623157e308}\n");
}
END_TEST

START_TEST(test_values_subnormal)
{
    check_report("values-tiny", "{\"step\":1,\"loss\":5e-324}\n"
                                "{\"step\":2,\"loss\":1e-323}\n"
                                "{\"step\":3,\"loss\":0}\n");
}
END_TEST

START_TEST(test_ordinary_curve)
{
    /* what every real run logs keeps its usual axes */
    check_report("ordinary", "{\"step\":100,\"loss\":2.5}\n"
                             "{\"step\":200,\"loss\":1.25}\n"
                             "{\"step\":300,\"loss\":0.75}\n");
}
END_TEST

static Suite *ticks_suite(void)
{
    Suite *s = suite_create("report_ticks");
    TCase *tc = tq_case(s, "axes", test_step_2p53, test_steps_one_apart_at_1e18,
                        test_steps_int64_extremes, test_values_one_ulp_at_1e18,
                        test_values_near_2p53, test_values_full_range,
                        test_values_constant_max, test_values_subnormal,
                        test_ordinary_curve);
    tcase_set_timeout(tc, 60);
    return s;
}

int main(void)
{
    const char *t = getenv("DGM_TEST_TMP");
    if (!t)
        t = "/tmp";
    mkdir(t, 0755);
    snprintf(root, sizeof root, "%s/report-ticks-%d", t, (int)getpid());
    if (mkdir(root, 0755) != 0) {
        fprintf(stderr, "test_report_ticks: cannot create %s: %s\n", root,
                strerror(errno));
        return 1;
    }
    SRunner *sr = srunner_create(ticks_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    if (failed == 0) {
        char cmd[1200];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
        if (system(cmd) != 0)
            fprintf(stderr, "test_report_ticks: could not remove %s\n", root);
    }
    return failed != 0;
}
