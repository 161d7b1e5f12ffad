/* test_plugin_path.c - a run's config.yaml works from any working
 * directory: a relative plugin_path is resolved where it was written
 * (the experiment file's folder, an included file's folder, the working
 * directory for an override) and saved absolute, so that dgm eval and
 * dgm sample find the plugins when run from elsewhere. The same for the
 * keys of plugins that name files (data.path and the like: relative to
 * the working directory, saved absolute). */
#include <check.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ck_run.h"
#include "dgm/dgm.h"
#include "quadrants.h"
#include "scratch.h"

static char root[1024];
static char out[1 << 16];

/* dgm ARGS run in root/CWD; output in `out`, the exit status returned. */
static int dgm_in(const char *cwd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int dgm_in(const char *cwd, const char *fmt, ...)
{
    char args[2048], cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "cd '%s/%s' && '%s' %s 2>&1", root, cwd, DGM_CLI,
             args);
    FILE *p = popen(cmd, "r");
    ck_assert(p != NULL);
    size_t got = fread(out, 1, sizeof out - 1, p);
    out[got] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void put(const char *rel, const char *text)
{
    char p[1200];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    FILE *f = fopen(p, "w");
    ck_assert_msg(f != NULL, "%s", p);
    fputs(text, f);
    fclose(f);
}

/* The experiment needs `nan_after`, a test plugin found only through
 * plugin_path (proj/plugins, a link to the test plugins). */
static const char exp_fmt[] =
    "name: tiny\n"
    "seed: 1\n"
    "threads: 1\n"
    "%s"
    "data: {plugin: idx, path: %s/data, train_images: ti, train_labels: "
    "tl, test_images: si, test_labels: sl, batch_size: 16}\n"
    "model:\n"
    "  plugin: vae\n"
    "  latent: 2\n"
    "  encoder: {plugin: mlp, hidden: [8]}\n"
    "  decoder: {plugin: mlp, hidden: [8]}\n"
    "objective:\n"
    "  - {loss: bernoulli_nll, inputs: [logits, x]}\n"
    "  - {loss: nan_after, inputs: [mu], after: 100000, weight: 0.0}\n"
    "optimizer: {plugin: adam, lr: 0.01}\n"
    "train: {steps: 2, log_every: 1, samples: 4}\n"
    "metrics: [{plugin: iwae_nll, k: 2}]\n";

static char plugins_real[PATH_MAX];

static void setup(void)
{
    const char *t = getenv("DGM_TEST_TMP");
    snprintf(root, sizeof root, "%s/plugin-path-%ld", t ? t : "/tmp",
             (long)getpid());
    tc_sh("mkdir -p '%s/data' '%s/proj/exp' '%s/proj/common' '%s/elsewhere'",
          root, root, root, root);
    tc_sh("ln -s '%s' '%s/proj/plugins'", DGM_TEST_PLUGIN_DIR, root);
    char p[1200];
    snprintf(p, sizeof p, "%s/proj/plugins", root);
    ck_assert(realpath(p, plugins_real) != NULL);
    snprintf(p, sizeof p, "%s/data", root);
    ck_assert_int_eq(tq_write_bands(p, "ti", "tl", 64, 0), 0);
    ck_assert_int_eq(tq_write_bands(p, "si", "sl", 16, 0), 0);
    char text[4096];
    snprintf(text, sizeof text, exp_fmt, "plugin_path: [../plugins]\n", root);
    put("proj/exp/tiny.yaml", text);
    /* the same, with plugin_path in an included file of another folder */
    put("proj/common/base.yaml", "plugin_path: [../plugins]\n");
    snprintf(text, sizeof text, exp_fmt, "include: ../common/base.yaml\n",
             root);
    put("proj/exp/child.yaml", text);
    snprintf(text, sizeof text, exp_fmt, "", root);
    put("proj/exp/none.yaml", text);
}

static void teardown(void)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", root);
}

/* plugin_path[0] of a config file. */
static char *saved_plugin_path(const char *rel)
{
    char p[1200];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    dgm_config *c = NULL;
    ck_assert_msg(dgm_config_load(&c, p) == 0, "%s", dgm_last_error());
    const char *t = dgm_cfg_text(dgm_cfg_get(c, "plugin_path[0]"));
    char *s = strdup(t ? t : "(none)");
    dgm_config_free(c);
    return s;
}

START_TEST(run_config_works_from_elsewhere)
{
    int rc = dgm_in("proj", "run exp/tiny.yaml --run-dir runs/r1 --quiet");
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    char *pp = saved_plugin_path("proj/runs/r1/config.yaml");
    ck_assert_str_eq(pp, plugins_real);
    free(pp);
    /* From another working directory, by a relative and by an absolute
     * run directory. */
    rc = dgm_in("elsewhere", "eval ../proj/runs/r1");
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    rc = dgm_in("elsewhere", "sample ../proj/runs/r1 -n 4 -o s.png");
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    char p[1200];
    snprintf(p, sizeof p, "%s/elsewhere/s.png", root);
    ck_assert_int_eq(access(p, F_OK), 0);
    rc = dgm_in("data", "eval %s/proj/runs/r1 --json", root);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
}
END_TEST

START_TEST(relative_to_where_it_is_written)
{
    /* an included file's entry: relative to that file's folder */
    int rc = dgm_in("elsewhere", "config ../proj/exp/child.yaml");
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    char want[PATH_MAX + 64];
    snprintf(want, sizeof want, "plugin_path: [%s]\n", plugins_real);
    ck_assert_msg(strstr(out, want), "%s", out);
    /* an override's: relative to the working directory */
    rc = dgm_in("proj", "config exp/none.yaml 'plugin_path=[plugins]'");
    ck_assert_msg(rc == 0 && strstr(out, want), "exit %d: %s", rc, out);
    /* a folder that does not exist is named, absolute */
    rc = dgm_in("proj", "config exp/none.yaml 'plugin_path=[nowhere]'");
    char missing[1200];
    snprintf(missing, sizeof missing, "%s/proj/nowhere", root);
    ck_assert_msg(rc == 2 && strstr(out, missing), "exit %d: %s", rc, out);
    /* a sweep's trials carry the absolute path as well */
    rc = dgm_in("elsewhere", "sweep ../proj/exp/tiny.yaml --dry-run "
                             "'+sweep={seeds: 2}'");
    ck_assert_msg(rc == 0 && strstr(out, "2 trials, all valid"), "exit %d: %s",
                  rc, out);
}
END_TEST

/* A data path given relative to the working directory is saved joined to
 * it, so the run is evaluated from another folder. */
START_TEST(data_path_saved_absolute)
{
    int rc = dgm_in("proj", "run exp/tiny.yaml data.path=../data --run-dir "
                            "runs/r2 --quiet");
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    char p[1200], proj[PATH_MAX], want[PATH_MAX + 16];
    snprintf(p, sizeof p, "%s/proj", root);
    ck_assert(realpath(p, proj) != NULL);
    snprintf(want, sizeof want, "%s/../data", proj);
    snprintf(p, sizeof p, "%s/proj/runs/r2/config.yaml", root);
    dgm_config *c = NULL;
    ck_assert_msg(dgm_config_load(&c, p) == 0, "%s", dgm_last_error());
    ck_assert_str_eq(dgm_cfg_text(dgm_cfg_get(c, "data.path")), want);
    dgm_config_free(c);
    rc = dgm_in("elsewhere", "eval ../proj/runs/r2");
    ck_assert_msg(rc == 0 && strstr(out, "iwae_nll"), "exit %d: %s", rc, out);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("plugin_path");
    TCase *tc =
        tq_case(s, "any_working_directory", run_config_works_from_elsewhere,
                relative_to_where_it_is_written, data_path_saved_absolute);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
