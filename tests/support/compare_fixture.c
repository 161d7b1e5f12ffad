/* compare_fixture.c - the run and sweep directories the compare suites
 * read (see compare_fixture.h). */
#include "compare_fixture.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dgm/dgm.h"

char tc_cmp_root[1024];
char tc_cmp_sweep[1200], tc_cmp_runs[1200], tc_cmp_bad[1200];

/* ---- fixtures ------------------------------------------------------------ */

/* mkdir -p with the tools' own helper; fixtures are also made outside a
 * test, where a ck_assert cannot report, so a failure aborts. */
void tc_cmp_mkdirs(const char *p)
{
    if (dgm_mkdirs(p) < 0) {
        fprintf(stderr, "test_compare: %s\n", dgm_last_error());
        abort();
    }
}

void tc_cmp_put(const char *text, const char *fmt, ...)
{
    char p[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p, sizeof p, fmt, ap);
    va_end(ap);
    char d[2048];
    snprintf(d, sizeof d, "%s", p);
    *strrchr(d, '/') = '\0';
    tc_cmp_mkdirs(d);
    FILE *f = fopen(p, "w");
    if (!f) {
        fprintf(stderr, "test_compare: cannot write %s: %s\n", p,
                strerror(errno));
        exit(1);
    }
    fputs(text, f);
    fclose(f);
}

void tc_cmp_summary(const char *dir, const char *status, const char *final,
                    double train_loss)
{
    char s[2048];
    snprintf(s, sizeof s,
             "{\"name\": \"vae\", \"status\": \"%s\", \"steps\": 3,\n"
             " \"train_loss\": %.17g, \"final\": {%s}}\n",
             status, train_loss, final);
    tc_cmp_put(s, "%s/summary.json", dir);
}

void tc_cmp_config(const char *dir, const char *name, int latent, double lr,
                   int seed)
{
    char s[2048];
    snprintf(s, sizeof s,
             "name: %s\nseed: %d\nmodel:\n  plugin: vae\n  latent: %d\n"
             "  decoder: {plugin: mlp, hidden: [8]}\n"
             "optimizer: {plugin: adam, lr: %g}\n",
             name, seed, latent, lr);
    tc_cmp_put(s, "%s/config.yaml", dir);
}

/* Three logged steps: loss = base + 10 - step, bernoulli_nll = base - step,
 * and an eval line that must not become a curve. */
static void tc_cmp_metrics(const char *dir, double base)
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
    tc_cmp_put(s, "%s/metrics.jsonl", dir);
}

static void tc_cmp_png(const char *dir, const char *name)
{
    char p[2200], d[2048];
    snprintf(d, sizeof d, "%s/samples", dir);
    tc_cmp_mkdirs(d);
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
    snprintf(tc_cmp_sweep, sizeof tc_cmp_sweep, "%s/sweep", tc_cmp_root);
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
        snprintf(dir, sizeof dir, "%s/trials/%s", tc_cmp_sweep, name);
        if (!strcmp(t[i].status, "pending"))
            continue;
        tc_cmp_mkdirs(dir);
        tc_cmp_config(dir, "vae", t[i].latent, 0.001, t[i].seed);
        if (!strcmp(t[i].status, "done")) {
            char fin[512];
            snprintf(fin, sizeof fin,
                     "\"neg_elbo\": %g, \"elbo\": %g, \"accuracy\": %g",
                     t[i].nll, -t[i].nll, t[i].acc);
            tc_cmp_summary(dir, "completed", fin, t[i].loss);
            tc_cmp_metrics(dir, t[i].nll + t[i].seed);
            tc_cmp_png(dir, "recon_000003.png");
            tc_cmp_png(dir, "samples_000003.png");
        } else if (!strcmp(t[i].status, "diverged")) {
            tc_cmp_summary(dir, "diverged", "", 1e30);
            tc_cmp_metrics(dir, 1000);
        } else if (!strcmp(t[i].status, "running")) {
            tc_cmp_metrics(dir, 500);
        }
    }
    snprintf(m + len, sizeof m - len, "]}\n");
    tc_cmp_put(m, "%s/manifest.json", tc_cmp_sweep);
    tc_cmp_put("name: vae\nsweep: {}\n", "%s/sweep.yaml", tc_cmp_sweep);
}

/* Plain runs under runs/<name>/<time>: latent 4 (lr 0.1 and 0.01: two
 * variants by config differences), latent 8, a run without summary, a
 * "latest" symbolic link that must not count twice, and an experiment
 * whose name needs HTML escaping. */
static void make_runs(void)
{
    snprintf(tc_cmp_runs, sizeof tc_cmp_runs, "%s/runs", tc_cmp_root);
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
        snprintf(d, sizeof d, "%s/vae/%s", tc_cmp_runs, r[i].t);
        tc_cmp_config(d, "vae", r[i].latent, r[i].lr, r[i].seed);
        char fin[128];
        snprintf(fin, sizeof fin, "\"neg_elbo\": %g", r[i].nll);
        tc_cmp_summary(d, "completed", fin, r[i].nll - 1);
        tc_cmp_metrics(d, r[i].nll);
    }
    snprintf(d, sizeof d, "%s/vae/20260101-000005", tc_cmp_runs);
    tc_cmp_config(d, "vae", 8, 0.1, 1);
    tc_cmp_metrics(d, 40);
    char l[2048];
    snprintf(l, sizeof l, "%s/vae/latest", tc_cmp_runs);
    if (symlink("20260101-000001", l) != 0) {
        fprintf(stderr, "test_compare: symlink %s: %s\n", l, strerror(errno));
        exit(1);
    }
    snprintf(d, sizeof d, "%s/odd/20260101-000001", tc_cmp_runs);
    tc_cmp_config(d, "\"<b>&odd</b>\"", 4, 0.1, 0);
    tc_cmp_put("{\"name\": \"<b>&odd</b>\", \"status\": \"completed\", "
               "\"train_loss\": 5, \"final\": {\"neg_elbo\": 7}}\n",
               "%s/summary.json", d);
}

/* The figures of the table in make_sweep, worked out by hand: mean and
 * sample deviation (n - 1). */
const tc_cmp_row tc_cmp_expect[] = {
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
const int tc_cmp_n_expect =
    (int)(sizeof tc_cmp_expect / sizeof tc_cmp_expect[0]);

void tc_cmp_setup(void)
{
    const char *t = getenv("DGM_TEST_TMP");
    if (!t)
        t = "/tmp";
    tc_cmp_mkdirs(t);
    snprintf(tc_cmp_root, sizeof tc_cmp_root, "%s/compare-%d", t,
             (int)getpid());
    tc_cmp_mkdirs(tc_cmp_root);
    snprintf(tc_cmp_bad, sizeof tc_cmp_bad, "%s/bad", tc_cmp_root);
    tc_cmp_mkdirs(tc_cmp_bad);
    make_sweep();
    make_runs();
}

void tc_cmp_cleanup(int failed)
{
    if (failed != 0)
        return;
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tc_cmp_root);
    if (system(cmd) != 0)
        fprintf(stderr, "test_compare: could not remove %s\n", tc_cmp_root);
}
