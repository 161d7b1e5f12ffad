/* test_compare.c - dgm compare and dgm report on run and sweep directories
 * the test writes (summary.json, config.yaml, metrics.jsonl, manifest.json
 * with known figures): means and sample deviations against values worked
 * out by hand, in every format; failed, diverged and unfinished runs
 * counted; the best marked by the direction rule and its overrides; bad
 * input refused with the file named; the HTML report's rows, curves,
 * escaping and embedded samples. */
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

#include "cli.h"
#include "compare.h"
#include "dgm/dgm.h"
#include "tool_files.h"
#include "files.h"

static char root[1024]; /* this process's scratch folder */
static char sweep[1200], runs[1200], bad[1200];

/* ---- fixtures ------------------------------------------------------------ */

/* mkdir -p with the tools' own helper; fixtures are also made outside a
 * test, where a ck_assert cannot report, so a failure aborts. */
static void mkdirs(const char *p)
{
    if (dgm_mkdirs(p) < 0) {
        fprintf(stderr, "test_compare: %s\n", dgm_last_error());
        abort();
    }
}

static void put(const char *text, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void put(const char *text, const char *fmt, ...)
{
    char p[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p, sizeof p, fmt, ap);
    va_end(ap);
    char d[2048];
    snprintf(d, sizeof d, "%s", p);
    *strrchr(d, '/') = '\0';
    mkdirs(d);
    FILE *f = fopen(p, "w");
    if (!f) {
        fprintf(stderr, "test_compare: cannot write %s: %s\n", p,
                strerror(errno));
        exit(1);
    }
    fputs(text, f);
    fclose(f);
}

static void summary(const char *dir, const char *status, const char *final,
                    double train_loss)
{
    char s[2048];
    snprintf(s, sizeof s,
             "{\"name\": \"vae\", \"status\": \"%s\", \"steps\": 3,\n"
             " \"train_loss\": %.17g, \"final\": {%s}}\n",
             status, train_loss, final);
    put(s, "%s/summary.json", dir);
}

static void config(const char *dir, const char *name, int latent, double lr,
                   int seed)
{
    char s[2048];
    snprintf(s, sizeof s,
             "name: %s\nseed: %d\nmodel:\n  plugin: vae\n  latent: %d\n"
             "  decoder: {plugin: mlp, hidden: [8]}\n"
             "optimizer: {plugin: adam, lr: %g}\n",
             name, seed, latent, lr);
    put(s, "%s/config.yaml", dir);
}

/* Three logged steps: loss = base + 10 - step, bernoulli_nll = base - step,
 * and an eval line that must not become a curve. */
static void metrics(const char *dir, double base)
{
    char s[2048];
    size_t n = 0;
    for (int step = 1; step <= 3; step++)
        n += (size_t)snprintf(s + n, sizeof s - n,
                              "{\"bernoulli_nll\": %g, \"loss\": %g, \"lr\": "
                              "0.001, \"step\": %d, \"epoch\": 1, \"time\": "
                              "0.1}\n",
                              base - step, base + 10 - step, step);
    snprintf(s + n, sizeof s - n, "{\"step\": 3, \"eval\": {\"x\": 1}}\n");
    put(s, "%s/metrics.jsonl", dir);
}

static void png(const char *dir, const char *name)
{
    char p[2200], d[2048];
    snprintf(d, sizeof d, "%s/samples", dir);
    mkdirs(d);
    snprintf(p, sizeof p, "%s/%s", d, name);
    dgm_tensor *t = dgm_tensor_new(DGM_F32, 3, (int64_t[]){4, 6, 6});
    if (!t)
        exit(1);
    for (int i = 0; i < 4 * 36; i++)
        dgm_tensor_set(t, i, (double)(i % 7) / 6.0);
    if (dgm_png_write_grid(p, t, 2, 0, 1) < 0) {
        fprintf(stderr, "test_compare: %s\n", dgm_last_error());
        exit(1);
    }
    dgm_tensor_free(t);
}

/* The sweep: latent 2 (seeds 0-2 done), latent 10 (two done, one failed),
 * latent 20 (done, diverged, running, pending). Figures:
 *   latent  neg_elbo        elbo               accuracy         train_loss
 *   2       100 102 107     -100 -102 -107     0.5 0.6 0.7      99 101 104
 *   10      90 94           -90 -94            0.8 0.9          91 92
 *   20      95              -95                0.95             96 */
static void make_sweep(void)
{
    static const struct {
        int latent, seed;
        const char *status;
        double nll, acc, loss;
    } t[] = {{2, 0, "done", 100, 0.5, 99},  {2, 1, "done", 102, 0.6, 101},
             {2, 2, "done", 107, 0.7, 104}, {10, 0, "done", 90, 0.8, 91},
             {10, 1, "done", 94, 0.9, 92},  {10, 2, "failed", 0, 0, 0},
             {20, 0, "done", 95, 0.95, 96}, {20, 1, "diverged", 0, 0, 0},
             {20, 2, "running", 0, 0, 0},   {20, 3, "pending", 0, 0, 0}};
    int n = (int)(sizeof t / sizeof t[0]);
    snprintf(sweep, sizeof sweep, "%s/sweep", root);
    char m[16384];
    size_t len = (size_t)snprintf(
        m, sizeof m,
        "{\"format\": 1, \"name\": \"vae\", \"experiment\": \"/x/vae.yaml\", "
        "\"launcher\": \"local\", \"created\": \"2026-11-28T20:00:00Z\", "
        "\"trials\": [\n");
    for (int i = 0; i < n; i++) {
        char name[64], dir[2048];
        snprintf(name, sizeof name, "%03d-latent=%d-seed=%d", i, t[i].latent,
                 t[i].seed);
        len += (size_t)snprintf(
            m + len, sizeof m - len,
            "%s{\"index\": %d, \"name\": \"%s\", \"overrides\": "
            "[\"model.latent=%d\", \"seed=%d\"], \"params\": "
            "{\"model.latent\": %d, \"seed\": %d}, \"seed\": %d, "
            "\"run_dir\": \"trials/%s\", \"status\": \"%s\", \"exit_code\": "
            "%s, \"message\": %s}\n",
            i ? "," : "", i, name, t[i].latent, t[i].seed, t[i].latent,
            t[i].seed, t[i].seed, name, t[i].status,
            !strcmp(t[i].status, "failed") ? "139" : "0",
            !strcmp(t[i].status, "failed")
                ? "\"killed by signal 11 <Segmentation fault>\""
                : "null");
        snprintf(dir, sizeof dir, "%s/trials/%s", sweep, name);
        if (!strcmp(t[i].status, "pending"))
            continue;
        mkdirs(dir);
        config(dir, "vae", t[i].latent, 0.001, t[i].seed);
        if (!strcmp(t[i].status, "done")) {
            char fin[512];
            snprintf(fin, sizeof fin,
                     "\"neg_elbo\": %g, \"elbo\": %g, \"accuracy\": %g",
                     t[i].nll, -t[i].nll, t[i].acc);
            summary(dir, "completed", fin, t[i].loss);
            metrics(dir, t[i].nll + t[i].seed);
            png(dir, "recon_000003.png");
            png(dir, "samples_000003.png");
        } else if (!strcmp(t[i].status, "diverged")) {
            summary(dir, "diverged", "", 1e30);
            metrics(dir, 1000);
        } else if (!strcmp(t[i].status, "running")) {
            metrics(dir, 500);
        }
    }
    snprintf(m + len, sizeof m - len, "]}\n");
    put(m, "%s/manifest.json", sweep);
    put("name: vae\nsweep: {}\n", "%s/sweep.yaml", sweep);
}

/* Plain runs under runs/<name>/<time>: latent 4 (lr 0.1 and 0.01: two
 * variants by config differences), latent 8, a run without summary, a
 * "latest" symbolic link that must not count twice, and an experiment
 * whose name needs HTML escaping. */
static void make_runs(void)
{
    snprintf(runs, sizeof runs, "%s/runs", root);
    char d[2048];
    static const struct {
        const char *t;
        int latent, seed;
        double lr, nll;
    } r[] = {{"20260101-000001", 4, 0, 0.1, 10},
             {"20260101-000002", 4, 1, 0.1, 12},
             {"20260101-000003", 4, 0, 0.01, 20},
             {"20260101-000004", 8, 0, 0.1, 30}};
    for (int i = 0; i < 4; i++) {
        snprintf(d, sizeof d, "%s/vae/%s", runs, r[i].t);
        config(d, "vae", r[i].latent, r[i].lr, r[i].seed);
        char fin[128];
        snprintf(fin, sizeof fin, "\"neg_elbo\": %g", r[i].nll);
        summary(d, "completed", fin, r[i].nll - 1);
        metrics(d, r[i].nll);
    }
    snprintf(d, sizeof d, "%s/vae/20260101-000005", runs);
    config(d, "vae", 8, 0.1, 1);
    metrics(d, 40);
    char l[2048];
    snprintf(l, sizeof l, "%s/vae/latest", runs);
    if (symlink("20260101-000001", l) != 0) {
        fprintf(stderr, "test_compare: symlink %s: %s\n", l, strerror(errno));
        exit(1);
    }
    snprintf(d, sizeof d, "%s/odd/20260101-000001", runs);
    config(d, "\"<b>&odd</b>\"", 4, 0.1, 0);
    put("{\"name\": \"<b>&odd</b>\", \"status\": \"completed\", "
        "\"train_loss\": 5, \"final\": {\"neg_elbo\": 7}}\n",
        "%s/summary.json", d);
}

static dgm__compare *load(const char *path, const dgm__cmp_options *o)
{
    dgm__compare *c = NULL;
    const char *p[1] = {path};
    int rc = dgm__compare_load(&c, p, 1, o);
    ck_assert_msg(rc == 0, "%s", dgm_last_error());
    return c;
}

static int load_fails(const char *path, const dgm__cmp_options *o)
{
    dgm__compare *c = NULL;
    const char *p[1] = {path};
    int rc = dgm__compare_load(&c, p, 1, o);
    ck_assert_ptr_null(c);
    return rc;
}

static const dgm__cmp_variant *variant(const dgm__compare *c, const char *label)
{
    for (int v = 0; v < c->n_variants; v++)
        if (!strcmp(c->variants[v].label, label))
            return &c->variants[v];
    ck_abort_msg("no variant '%s'", label);
    return NULL;
}

static int metric(const dgm__compare *c, const char *name)
{
    for (int m = 0; m < c->n_metrics; m++)
        if (!strcmp(c->metrics[m], name))
            return m;
    ck_abort_msg("no metric '%s'", name);
    return -1;
}

#define CLOSE(a, b)                                                            \
    ck_assert_msg(fabs((double)(a) - (double)(b)) <=                           \
                      1e-9 * (1 + fabs((double)(b))),                          \
                  "%s = %.17g, expected %.17g", #a, (double)(a), (double)(b))

/* The figures of the table in make_sweep, worked out by hand: mean and
 * sample deviation (n - 1). */
static const struct {
    const char *label, *metric;
    int n;
    double mean, sd; /* sd NAN: one run */
    bool best;
} expect[] = {
    {"latent=2", "neg_elbo", 3, 103, 3.6055512754639891 /* sqrt(13) */, 0},
    {"latent=10", "neg_elbo", 2, 92, 2.8284271247461901 /* sqrt(8) */, 1},
    {"latent=20", "neg_elbo", 1, 95, NAN, 0},
    {"latent=2", "elbo", 3, -103, 3.6055512754639891, 0},
    {"latent=10", "elbo", 2, -92, 2.8284271247461901, 1},
    {"latent=20", "elbo", 1, -95, NAN, 0},
    {"latent=2", "accuracy", 3, 0.6, 0.1, 0},
    {"latent=10", "accuracy", 2, 0.85, 0.070710678118654752 /* .1/sqrt2 */, 0},
    {"latent=20", "accuracy", 1, 0.95, NAN, 1},
    /* 99 101 104: mean 304/3, squares 49/9 + 1/9 + 64/9 = 114/9, / 2 */
    {"latent=2", "train_loss", 3, 101.33333333333333,
     2.5166114784235836 /* sqrt(57/9) */, 0},
    {"latent=10", "train_loss", 2, 91.5, 0.70710678118654752, 1},
    {"latent=20", "train_loss", 1, 96, NAN, 0},
};
#define N_EXPECT (int)(sizeof expect / sizeof expect[0])

/* ---- statistics ------------------------------------------------------------
 */

START_TEST(test_sweep_stats)
{
    dgm__compare *c = load(sweep, NULL);
    ck_assert_int_eq(c->n_variants, 3);
    ck_assert_int_eq(c->n_runs, 10);
    ck_assert_str_eq(c->variants[0].label, "latent=2");
    ck_assert_str_eq(c->variants[1].label, "latent=10");
    ck_assert_str_eq(c->variants[2].label, "latent=20");
    /* default metrics: the final figures in order, then train_loss */
    ck_assert_int_eq(c->n_metrics, 4);
    ck_assert_str_eq(c->metrics[0], "neg_elbo");
    ck_assert_str_eq(c->metrics[3], "train_loss");
    ck_assert_int_eq(c->better[metric(c, "neg_elbo")], DGM__BETTER_LOWER);
    ck_assert_int_eq(c->better[metric(c, "elbo")], DGM__BETTER_HIGHER);
    ck_assert_int_eq(c->better[metric(c, "accuracy")], DGM__BETTER_HIGHER);
    const dgm__cmp_variant *a = variant(c, "latent=2"),
                           *b = variant(c, "latent=10"),
                           *z = variant(c, "latent=20");
    ck_assert_int_eq(a->n_runs, 3);
    ck_assert_int_eq(a->done, 3);
    ck_assert_int_eq(b->n_runs, 3);
    ck_assert_int_eq(b->done, 2);
    ck_assert_int_eq(b->failed, 1);
    ck_assert_int_eq(z->n_runs, 4);
    ck_assert_int_eq(z->done, 1);
    ck_assert_int_eq(z->diverged, 1);
    ck_assert_int_eq(z->running, 1);
    ck_assert_int_eq(z->pending, 1);
    ck_assert_int_eq(z->failed, 0);
    for (int i = 0; i < N_EXPECT; i++) {
        const dgm__cmp_stat *st =
            &variant(c, expect[i].label)->stat[metric(c, expect[i].metric)];
        ck_assert_int_eq(st->n, expect[i].n);
        CLOSE(st->mean, expect[i].mean);
        if (isnan(expect[i].sd))
            ck_assert(isnan(st->sd));
        else
            CLOSE(st->sd, expect[i].sd);
        ck_assert_msg(st->best == expect[i].best, "%s %s best=%d",
                      expect[i].label, expect[i].metric, st->best);
    }
    /* the group is the swept values without seed */
    ck_assert_int_eq(json_object_size(a->group), 1);
    ck_assert_int_eq(
        json_integer_value(json_object_get(a->group, "model.latent")), 2);
    dgm__compare_free(c);
}
END_TEST

START_TEST(test_direction_rule)
{
    static const struct {
        const char *name;
        dgm__better b;
    } r[] = {{"neg_elbo", DGM__BETTER_LOWER},
             {"elbo", DGM__BETTER_HIGHER},
             {"neg_elbo/gaussian_kl", DGM__BETTER_LOWER},
             {"iwae_nll", DGM__BETTER_LOWER},
             {"train_loss", DGM__BETTER_LOWER},
             {"recon_error", DGM__BETTER_LOWER},
             {"fid", DGM__BETTER_LOWER},
             {"kid", DGM__BETTER_LOWER},
             {"kid_std", DGM__BETTER_NONE},
             {"bits_per_char", DGM__BETTER_LOWER},
             {"perplexity", DGM__BETTER_LOWER},
             {"accuracy", DGM__BETTER_HIGHER},
             {"classifier_accuracy", DGM__BETTER_HIGHER},
             {"Precision", DGM__BETTER_HIGHER},
             {"recall", DGM__BETTER_HIGHER},
             {"steps_per_s", DGM__BETTER_NONE},
             {"wall_time_s", DGM__BETTER_LOWER},
             {"lossy", DGM__BETTER_NONE},
             {"xyz", DGM__BETTER_NONE}};
    for (size_t i = 0; i < sizeof r / sizeof r[0]; i++)
        ck_assert_msg(dgm__compare_better(r[i].name) == r[i].b, "%s: %s",
                      r[i].name,
                      dgm__better_name(dgm__compare_better(r[i].name)));
    /* --higher train_loss: the best moves to the highest mean (latent 2),
     * --lower accuracy to the lowest (latent 2 too) */
    const char *hi[] = {"train_loss"}, *lo[] = {"accuracy"};
    dgm__cmp_options o = {
        .higher = hi, .n_higher = 1, .lower = lo, .n_lower = 1};
    dgm__compare *c = load(sweep, &o);
    int m = metric(c, "train_loss"), k = metric(c, "accuracy");
    ck_assert_int_eq(c->better[m], DGM__BETTER_HIGHER);
    ck_assert_int_eq(c->better[k], DGM__BETTER_LOWER);
    ck_assert(variant(c, "latent=2")->stat[m].best);
    ck_assert(!variant(c, "latent=10")->stat[m].best);
    ck_assert(variant(c, "latent=2")->stat[k].best);
    ck_assert(!variant(c, "latent=20")->stat[k].best);
    dgm__compare_free(c);
}
END_TEST

/* Runs that recorded directions (summary.json "better", from the metrics'
 * declarations) are ranked by them, not by the guess from the name:
 * error_rate recorded higher, kid_std recorded lower (the guess says
 * lower and none). --lower still overrides a recorded direction. Summaries
 * without "better" (written before directions were recorded) fall back
 * to the guess. */
START_TEST(test_recorded_direction)
{
    char base[1200], d[1400];
    snprintf(base, sizeof base, "%s/recorded/vae", root);
    static const struct {
        const char *t;
        int latent;
        double err, sd;
    } r[] = {{"20260101-000001", 4, 0.2, 1}, {"20260101-000002", 8, 0.8, 2}};
    for (int i = 0; i < 2; i++) {
        snprintf(d, sizeof d, "%s/%s", base, r[i].t);
        config(d, "vae", r[i].latent, 0.1, 0);
        char s[1024];
        snprintf(s, sizeof s,
                 "{\"name\": \"vae\", \"status\": \"completed\", "
                 "\"train_loss\": 1, \"final\": {\"error_rate\": %g, "
                 "\"kid_std\": %g}, \"better\": {\"error_rate\": "
                 "\"higher\", \"kid_std\": \"lower\", \"train_loss\": "
                 "\"lower\"}}\n",
                 r[i].err, r[i].sd);
        put(s, "%s/summary.json", d);
    }
    dgm__compare *c = load(base, NULL);
    int e = metric(c, "error_rate"), k = metric(c, "kid_std");
    ck_assert_int_eq(dgm__compare_better("error_rate"), DGM__BETTER_LOWER);
    ck_assert_int_eq(dgm__compare_better("kid_std"), DGM__BETTER_NONE);
    ck_assert_int_eq(c->better[e], DGM__BETTER_HIGHER);
    ck_assert_int_eq(c->better[k], DGM__BETTER_LOWER);
    ck_assert(variant(c, "model.latent=8")->stat[e].best);
    ck_assert(!variant(c, "model.latent=4")->stat[e].best);
    ck_assert(variant(c, "model.latent=4")->stat[k].best);
    dgm__compare_free(c);

    const char *lo[] = {"error_rate"};
    dgm__cmp_options o = {.lower = lo, .n_lower = 1};
    c = load(base, &o);
    e = metric(c, "error_rate");
    ck_assert_int_eq(c->better[e], DGM__BETTER_LOWER);
    ck_assert(variant(c, "model.latent=4")->stat[e].best);
    dgm__compare_free(c);

    /* the sweep's summaries record no direction: the guess */
    c = load(sweep, NULL);
    ck_assert_int_eq(c->better[metric(c, "neg_elbo")], DGM__BETTER_LOWER);
    ck_assert_int_eq(c->better[metric(c, "elbo")], DGM__BETTER_HIGHER);
    ck_assert_int_eq(c->better[metric(c, "accuracy")], DGM__BETTER_HIGHER);
    ck_assert_int_eq(c->better[metric(c, "train_loss")], DGM__BETTER_LOWER);
    dgm__compare_free(c);
}
END_TEST

START_TEST(test_metric_choice)
{
    const char *ms[] = {"accuracy", "steps"};
    dgm__cmp_options o = {.metrics = ms, .n_metrics = 2};
    dgm__compare *c = load(sweep, &o);
    ck_assert_int_eq(c->n_metrics, 2);
    ck_assert_str_eq(c->metrics[0], "accuracy");
    /* a top-level number: steps is 3 in every done summary, no direction */
    ck_assert_int_eq(c->better[1], DGM__BETTER_NONE);
    const dgm__cmp_stat *st = &variant(c, "latent=2")->stat[1];
    ck_assert_int_eq(st->n, 3);
    CLOSE(st->mean, 3);
    CLOSE(st->sd, 0);
    ck_assert(!st->best);
    dgm__compare_free(c);
}
END_TEST

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
    for (int i = 0; i < N_EXPECT; i++) {
        json_t *v = NULL;
        for (size_t k = 0; k < json_array_size(vs); k++)
            if (!strcmp(json_string_value(
                            json_object_get(json_array_get(vs, k), "label")),
                        expect[i].label))
                v = json_array_get(vs, k);
        ck_assert_ptr_nonnull(v);
        json_t *s =
            json_object_get(json_object_get(v, "metrics"), expect[i].metric);
        ck_assert_int_eq(json_integer_value(json_object_get(s, "n")),
                         expect[i].n);
        CLOSE(json_number_value(json_object_get(s, "mean")), expect[i].mean);
        if (isnan(expect[i].sd))
            ck_assert(json_is_null(json_object_get(s, "sd")));
        else
            CLOSE(json_number_value(json_object_get(s, "sd")), expect[i].sd);
        ck_assert(json_is_true(json_object_get(s, "best")) == expect[i].best);
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
    dgm__compare *c = load(sweep, NULL);
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
    dgm__compare *c = load(sweep, NULL);
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
        for (int i = 0; i < N_EXPECT; i++) {
            if (strcmp(v[0], expect[i].label))
                continue;
            int col = -1;
            char want[128];
            snprintf(want, sizeof want, "%s_mean", expect[i].metric);
            for (int k = 0; k < nh; k++)
                if (!strcmp(h[k], want))
                    col = k;
            ck_assert_int_ge(col, 0);
            CLOSE(strtod(v[col], NULL), expect[i].mean);
            if (isnan(expect[i].sd))
                ck_assert_str_eq(v[col + 1], ""); /* one run: empty */
            else
                CLOSE(strtod(v[col + 1], NULL), expect[i].sd);
            ck_assert_int_eq(atoi(v[col + 2]), expect[i].n);
            ck_assert_int_eq(atoi(v[col + 3]), expect[i].best);
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
    ck_assert_int_eq(checked, N_EXPECT);
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
    dgm__compare *c = load(sweep, NULL);
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
    dgm__compare *c = load(sweep, NULL);
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
    snprintf(args, sizeof args, "compare %s --format json", sweep);
    ck_assert_int_eq(run_cli(out, sizeof out, err, sizeof err, args), 0);
    check_json(out);
    snprintf(args, sizeof args, "compare %s --format=csv --metric accuracy",
             sweep);
    ck_assert_int_eq(run_cli(out, sizeof out, err, sizeof err, args), 0);
    ck_assert_ptr_nonnull(strstr(out, "latent=10,3,2,1,0,0,0,0,0.85,"));
    snprintf(args, sizeof args, "compare %s --format xml", sweep);
    ck_assert_int_eq(run_cli(out, sizeof out, err, sizeof err, args), 2);
    ck_assert_ptr_nonnull(strstr(err, "--format xml"));
    snprintf(args, sizeof args, "compare %s --metric acuracy", sweep);
    ck_assert_int_eq(run_cli(out, sizeof out, err, sizeof err, args), 2);
    ck_assert_ptr_nonnull(strstr(err, "did you mean 'accuracy'"));
    snprintf(args, sizeof args, "compare %s/nothing-here", root);
    ck_assert_int_eq(run_cli(out, sizeof out, err, sizeof err, args), 1);
    ck_assert_ptr_nonnull(strstr(err, "nothing-here"));
    ck_assert_int_eq(run_cli(out, sizeof out, err, sizeof err, "compare"), 2);
}
END_TEST

/* ---- plain runs
 * --------------------------------------------------------------- */

START_TEST(test_plain_runs)
{
    char vae[1300];
    snprintf(vae, sizeof vae, "%s/vae", runs);
    dgm__compare *c = load(vae, NULL);
    /* 5 runs (latest is a link), the config differences name variants */
    ck_assert_int_eq(c->n_runs, 5);
    ck_assert_int_eq(c->n_variants, 3);
    const dgm__cmp_variant *a = variant(c, "model.latent=4 optimizer.lr=0.1");
    const dgm__cmp_variant *b = variant(c, "model.latent=4 optimizer.lr=0.01");
    const dgm__cmp_variant *d = variant(c, "model.latent=8 optimizer.lr=0.1");
    int m = metric(c, "neg_elbo");
    ck_assert_int_eq(a->done, 2);
    CLOSE(a->stat[m].mean, 11);
    CLOSE(a->stat[m].sd, 1.4142135623730951); /* sqrt(2) */
    ck_assert(a->stat[m].best);
    CLOSE(b->stat[m].mean, 20);
    ck_assert_int_eq(d->n_runs, 2);
    ck_assert_int_eq(d->done, 1);
    ck_assert_int_eq(d->running, 1);
    /* the run without summary.json is a note naming it */
    ck_assert_int_eq(c->n_notes, 1);
    ck_assert_ptr_nonnull(strstr(c->notes[0], "20260101-000005"));
    ck_assert_ptr_nonnull(strstr(c->notes[0], "summary.json"));
    dgm__compare_free(c);

    /* the whole folder: two experiment names, labels carry the name */
    c = load(runs, NULL);
    ck_assert_int_eq(c->n_variants, 4);
    variant(c, "vae model.latent=4 optimizer.lr=0.1");
    variant(c, "<b>&odd</b>");
    dgm__compare_free(c);

    /* --group-by merges the two learning rates of latent 4 */
    const char *g[] = {"model.latent"};
    dgm__cmp_options o = {.group_by = g, .n_group_by = 1};
    c = load(vae, &o);
    ck_assert_int_eq(c->n_variants, 2);
    a = variant(c, "model.latent=4");
    ck_assert_int_eq(a->done, 3);
    /* 10 12 20: mean 14, squares 16 + 4 + 36 = 56, / 2 = 28 */
    CLOSE(a->stat[m].mean, 14);
    CLOSE(a->stat[m].sd, 5.2915026221291814);
    ck_assert_str_eq(
        json_string_value(json_object_get(a->group, "model.latent")), "4");
    dgm__compare_free(c);

    /* a sweep and runs together, grouped by a key both have */
    const char *both[2] = {sweep, vae};
    ck_assert_int_eq(dgm__compare_load(&c, both, 2, &o), 0);
    ck_assert_int_eq(c->n_variants, 5); /* 2 10 20 4 8 */
    ck_assert_int_eq(c->n_runs, 15);
    dgm__compare_free(c);
}
END_TEST

/* ---- bad input
 * ------------------------------------------------------------------ */

static void expect_error(int rc, int code, const char *needle)
{
    ck_assert_msg(rc == code, "rc %d (%s), expected %d; %s", rc,
                  dgm_errname(rc), code, dgm_last_error());
    ck_assert_msg(strstr(dgm_last_error(), needle), "'%s' not in '%s'", needle,
                  dgm_last_error());
}

START_TEST(test_bad_input)
{
    char d[1400], f[1500];
    /* a path that does not exist, a file, an empty folder */
    snprintf(d, sizeof d, "%s/absent", bad);
    expect_error(load_fails(d, NULL), DGM_ENOTFOUND, d);
    snprintf(d, sizeof d, "%s/plain.txt", bad);
    put("x", "%s", d);
    expect_error(load_fails(d, NULL), DGM_ENOTFOUND, "not a directory");
    snprintf(d, sizeof d, "%s/empty", bad);
    mkdirs(d);
    expect_error(load_fails(d, NULL), DGM_ENOTFOUND, d);
    /* malformed summary.json: file, line and column */
    snprintf(d, sizeof d, "%s/badjson", bad);
    put("{\"status\": \"completed\",\n \"final\": {\"x\": 1,}}\n",
        "%s/summary.json", d);
    snprintf(f, sizeof f, "%s/summary.json:2:", d);
    expect_error(load_fails(d, NULL), DGM_EFORMAT, f);
    /* summary.json that is not an object, or has an unknown status */
    snprintf(d, sizeof d, "%s/array", bad);
    put("[1, 2]\n", "%s/summary.json", d);
    expect_error(load_fails(d, NULL), DGM_EFORMAT, "not a JSON object");
    snprintf(d, sizeof d, "%s/status", bad);
    put("{\"status\": \"great\"}\n", "%s/summary.json", d);
    expect_error(load_fails(d, NULL), DGM_EFORMAT, "unknown status 'great'");
    /* recorded directions that are none of lower, higher, none */
    snprintf(d, sizeof d, "%s/better", bad);
    put("{\"status\": \"completed\", \"better\": {\"fid\": \"down\"}}\n",
        "%s/summary.json", d);
    snprintf(f, sizeof f, "%s/summary.json: better.fid: expected", d);
    expect_error(load_fails(d, NULL), DGM_EFORMAT, f);
    snprintf(d, sizeof d, "%s/better_list", bad);
    put("{\"status\": \"completed\", \"better\": [\"lower\"]}\n",
        "%s/summary.json", d);
    expect_error(load_fails(d, NULL), DGM_EFORMAT,
                 "\"better\" is not an object of directions");
    /* a malformed config.yaml names its file */
    snprintf(d, sizeof d, "%s/badyaml", bad);
    put("name: [unclosed\n", "%s/config.yaml", d);
    snprintf(f, sizeof f, "%s/config.yaml", d);
    ck_assert_int_lt(load_fails(d, NULL), 0);
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), f));
    /* a manifest that is not JSON */
    snprintf(d, sizeof d, "%s/badsweep", bad);
    put("{\"format\": 1, \"trials\": [\n", "%s/manifest.json", d);
    expect_error(load_fails(d, NULL), DGM_EFORMAT, "manifest.json");
    /* a trial the manifest calls done without its summary */
    snprintf(d, sizeof d, "%s/nosummary", bad);
    put("{\"format\": 1, \"name\": \"x\", \"trials\": [{\"index\": 0, "
        "\"name\": \"000-a=1\", \"run_dir\": \"trials/000-a=1\", "
        "\"status\": \"done\", \"params\": {\"a\": 1}}]}\n",
        "%s/manifest.json", d);
    snprintf(f, sizeof f, "%s/trials/000-a=1", d);
    mkdirs(f);
    strcat(f, "/summary.json");
    expect_error(load_fails(d, NULL), DGM_ENOTFOUND, f);
    /* an unknown trial status */
    snprintf(d, sizeof d, "%s/oddstatus", bad);
    put("{\"format\": 1, \"name\": \"x\", \"trials\": [{\"index\": 0, "
        "\"name\": \"t\", \"run_dir\": \"trials/t\", \"status\": "
        "\"exploded\"}]}\n",
        "%s/manifest.json", d);
    expect_error(load_fails(d, NULL), DGM_EFORMAT, "unknown status 'exploded'");
    /* --metric, --group-by, --higher no run has */
    const char *ms[] = {"acuracy"};
    dgm__cmp_options o = {.metrics = ms, .n_metrics = 1};
    expect_error(load_fails(sweep, &o), DGM_EKEY, "did you mean 'accuracy'");
    const char *g[] = {"model.latnt"};
    dgm__cmp_options og = {.group_by = g, .n_group_by = 1};
    expect_error(load_fails(sweep, &og), DGM_EKEY, "--group-by model.latnt");
    expect_error(load_fails(sweep, &og), DGM_EKEY, "config.yaml");
    const char *h[] = {"fid"};
    dgm__cmp_options oh = {.higher = h, .n_higher = 1};
    expect_error(load_fails(sweep, &oh), DGM_EKEY, "--higher fid");
    dgm__cmp_format fmt;
    expect_error(dgm__compare_format_parse("xml", &fmt), DGM_EINVAL, "xml");
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
    dgm__compare *c = load(sweep, NULL);
    char path[1300];
    snprintf(path, sizeof path, "%s/report-%d.html", root, (int)getpid());
    int rc = dgm__report_save(c, NULL, path);
    ck_assert_msg(rc == 0, "%s", dgm_last_error());
    char *s = slurp(path);
    ck_assert_int_eq(count(s, "<tr class=\"variant\""), 3);
    /* two loss terms (loss, bernoulli_nll) x three variants; the eval line
     * and lr are no curves */
    ck_assert_int_eq(count(s, "<polyline class=\"curve\""), 6);
    ck_assert_int_eq(count(s, "<svg class=\"chart\""), 2);
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
    c = load(runs, NULL);
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
    snprintf(d, sizeof d, "%s/badmetrics", bad);
    config(d, "vae", 4, 0.1, 0);
    put("{\"status\": \"completed\", \"train_loss\": 1, \"final\": {}}\n",
        "%s/summary.json", d);
    put("{\"step\": 1, \"loss\": 2}\n{\"step\": 2, \"loss\": \n"
        "{\"step\": 3, \"loss\": 1}\n",
        "%s/metrics.jsonl", d);
    dgm__compare *c = load(d, NULL);
    char path[1500], f[1500];
    snprintf(path, sizeof path, "%s/r.html", d);
    snprintf(f, sizeof f, "%s/metrics.jsonl:2:", d);
    expect_error(dgm__report_save(c, NULL, path), DGM_EFORMAT, f);
    ck_assert_int_ne(access(path, F_OK), 0); /* nothing half-written */
    dgm__compare_free(c);
    /* an unterminated last line is a run still writing: accepted */
    put("{\"step\": 1, \"loss\": 2}\n{\"step\": 2, \"lo", "%s/metrics.jsonl",
        d);
    c = load(d, NULL);
    ck_assert_int_eq(dgm__report_save(c, NULL, path), 0);
    char *s = slurp(path);
    ck_assert_int_eq(count(s, "<polyline class=\"curve\""), 1);
    free(s);
    dgm__compare_free(c);
}
END_TEST

/* Two seed-only sweeps of one experiment whose sweep-wide overrides differ
 * (sweep.yaml: freeze [] against [enc.*] plus a key only one sets) are two
 * variants, labelled by those settings; a third sweep with the first's
 * settings joins the first's variant. */
static void seed_sweep(const char *dir, const char *fixed, const double *nll)
{
    char m[4096];
    size_t len = (size_t)snprintf(
        m, sizeof m,
        "{\"format\": 1, \"name\": \"ft\", \"experiment\": "
        "\"/x/ft.yaml\", \"launcher\": \"local\", \"created\": "
        "\"2026-11-29T06:00:00Z\", \"trials\": [\n");
    for (int i = 0; i < 2; i++) {
        char name[64], d[2048], fin[128];
        snprintf(name, sizeof name, "%03d-seed=%d", i, i);
        len += (size_t)snprintf(
            m + len, sizeof m - len,
            "%s{\"index\": %d, \"name\": \"%s\", \"overrides\": "
            "[\"seed=%d\"], \"params\": {\"seed\": %d}, \"seed\": %d, "
            "\"run_dir\": \"trials/%s\", \"status\": \"done\", "
            "\"exit_code\": 0, \"message\": null}\n",
            i ? "," : "", i, name, i, i, i, name);
        snprintf(d, sizeof d, "%s/trials/%s", dir, name);
        mkdirs(d);
        snprintf(fin, sizeof fin, "\"neg_elbo\": %g", nll[i]);
        summary(d, "completed", fin, nll[i]);
    }
    snprintf(m + len, sizeof m - len, "]}\n");
    put(m, "%s/manifest.json", dir);
    put(fixed, "%s/sweep.yaml", dir);
}

START_TEST(test_sweeps_apart)
{
    char base[1200], a[1300], b[1300], a2[1300];
    snprintf(base, sizeof base, "%s/apart", root);
    snprintf(a, sizeof a, "%s/a", base);
    snprintf(b, sizeof b, "%s/b", base);
    snprintf(a2, sizeof a2, "%s/a2", base);
    seed_sweep(a, "name: ft\nseed: 0\nfreeze: []\nsweep: {seeds: [0, 1]}\n",
               (double[]){260, 262});
    seed_sweep(b,
               "name: ft\nseed: 0\nfreeze: [enc.*]\nfreeze_bn_stats: "
               "true\nsweep: {seeds: [0, 1, 2]}\n",
               (double[]){290, 294});
    seed_sweep(a2, "name: ft\nseed: 5\nfreeze: []\nsweep: {seeds: [3]}\n",
               (double[]){264, 266});
    dgm__compare *c = load(base, NULL);
    ck_assert_int_eq(c->n_variants, 2);
    const dgm__cmp_variant *va =
        variant(c, "freeze=[] freeze_bn_stats=(absent)");
    const dgm__cmp_variant *vb =
        variant(c, "freeze=[enc.*] freeze_bn_stats=true");
    ck_assert_int_eq(va->n_runs, 4);
    ck_assert_int_eq(vb->n_runs, 2);
    int m = metric(c, "neg_elbo");
    CLOSE(va->stat[m].mean, 263);
    CLOSE(vb->stat[m].mean, 292);
    dgm__compare_free(c);

    /* a difference inside a list shows the list whole */
    char lists[1200], l1[1300], l2[1300];
    snprintf(lists, sizeof lists, "%s/lists", root);
    snprintf(l1, sizeof l1, "%s/l1", lists);
    snprintf(l2, sizeof l2, "%s/l2", lists);
    seed_sweep(l1, "name: ft\nobjective: [{loss: a, weight: 1}]\n",
               (double[]){1, 2});
    seed_sweep(l2, "name: ft\nobjective: [{loss: a, weight: 2}]\n",
               (double[]){3, 4});
    c = load(lists, NULL);
    ck_assert_int_eq(c->n_variants, 2);
    ck_assert_int_eq(variant(c, "objective=[{loss: a, weight: 1}]")->n_runs, 2);
    ck_assert_int_eq(variant(c, "objective=[{loss: a, weight: 2}]")->n_runs, 2);
    dgm__compare_free(c);
}
END_TEST

static Suite *compare_suite(void)
{
    Suite *s = suite_create("compare");
    TCase *tc = tcase_create("statistics");
    tcase_add_test(tc, test_sweep_stats);
    tcase_add_test(tc, test_direction_rule);
    tcase_add_test(tc, test_recorded_direction);
    tcase_add_test(tc, test_metric_choice);
    suite_add_tcase(s, tc);
    tc = tcase_create("formats");
    tcase_add_test(tc, test_format_json);
    tcase_add_test(tc, test_format_csv);
    tcase_add_test(tc, test_format_table);
    tcase_add_test(tc, test_format_markdown);
    tcase_add_test(tc, test_cli);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    tc = tcase_create("plain_runs");
    tcase_add_test(tc, test_plain_runs);
    tcase_add_test(tc, test_sweeps_apart);
    suite_add_tcase(s, tc);
    tc = tcase_create("bad_input");
    tcase_add_test(tc, test_bad_input);
    suite_add_tcase(s, tc);
    tc = tcase_create("report");
    tcase_add_test(tc, test_report);
    tcase_add_test(tc, test_report_bad_metrics);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    const char *t = getenv("DGM_TEST_TMP");
    if (!t)
        t = "/tmp";
    mkdirs(t);
    snprintf(root, sizeof root, "%s/compare-%d", t, (int)getpid());
    mkdirs(root);
    snprintf(bad, sizeof bad, "%s/bad", root);
    mkdirs(bad);
    make_sweep();
    make_runs();
    SRunner *sr = srunner_create(compare_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    if (failed == 0) {
        char cmd[1200];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
        if (system(cmd) != 0)
            fprintf(stderr, "test_compare: could not remove %s\n", root);
    }
    return failed != 0;
}
