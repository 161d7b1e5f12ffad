/* test_registry.c - the plugin registry: loading, every refusal (exact
 * code, message naming the file), lookup by name, path and kind, and the
 * `dgm plugins` command. Each test copies the test plugins it needs into
 * a scratch folder of its own, so refusals do not mix. */
#include <check.h>
#include <errno.h>
#include <limits.h>
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
#include "dgm/dgm.h"
#include "dgm/host.h"
#include "host_internal.h"
#include "quadrants.h"

/* ---- scratch folders -------------------------------------------------- */

static void mkdir_p(const char *path)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(buf, 0755);
            *p = '/';
        }
    ck_assert_msg(mkdir(buf, 0755) == 0 || errno == EEXIST, "mkdir %s: %s", buf,
                  strerror(errno));
}

/* A fresh folder <DGM_TEST_TMP>/registry-<pid>-<tag> holding copies of
 * the named test plugins (NULL-ended). */
static void scratch(char *out, size_t n, const char *tag, ...)
{
    const char *tmp = getenv("DGM_TEST_TMP");
    snprintf(out, n, "%s/registry-%ld-%s", tmp ? tmp : "/tmp", (long)getpid(),
             tag);
    mkdir_p(out);
    va_list ap;
    va_start(ap, tag);
    for (const char *f; (f = va_arg(ap, const char *));) {
        char cmd[3 * PATH_MAX];
        snprintf(cmd, sizeof cmd, "cp '%s/%s.so' '%s/'", DGM_TEST_PLUGIN_DIR, f,
                 out);
        ck_assert_msg(system(cmd) == 0, "%s failed", cmd);
    }
    va_end(ap);
}

static dgm_registry *registry_on(const char *dir)
{
    dgm_registry *r;
    ck_assert_int_eq(dgm_registry_new(&r), 0);
    ck_assert_int_eq(dgm_registry_add_dir(r, dir), 0);
    return r;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

#define ck_assert_contains(hay, needle)                                        \
    ck_assert_msg(strstr((hay), (needle)) != NULL,                             \
                  "expected \"%s\" in \"%s\"", (needle), (hay))

/* The good plugins are still usable. */
static void assert_good_found(dgm_registry *r)
{
    const dgm_plugin_desc *d = NULL;
    const char *file = NULL;
    ck_assert_int_eq(
        dgm_registry_find(r, DGM_KIND_LOSS, "good_loss", &d, &file), 0);
    ck_assert_str_eq(d->name, "good_loss");
    ck_assert_int_eq(d->kind, DGM_KIND_LOSS);
    ck_assert(ends_with(file, "/tp_good.so"));
}

/* ---- loading ---------------------------------------------------------- */

START_TEST(scan_good)
{
    char dir[PATH_MAX];
    scratch(dir, sizeof dir, "good", "tp_good", NULL);
    dgm_registry *r = registry_on(dir);
    ck_assert_int_eq(dgm_registry_scan(r), 0);
    ck_assert_int_eq(dgm_registry_problem_count(r), 0);
    ck_assert_int_eq(dgm_registry_count(r), 2);

    /* Iteration in query order, with the file. */
    const char *file = NULL;
    const dgm_plugin_desc *d0 = dgm_registry_at(r, 0, &file);
    ck_assert_str_eq(d0->name, "good_loss");
    char want[PATH_MAX + 16];
    snprintf(want, sizeof want, "%s/tp_good.so", dir);
    ck_assert_str_eq(file, want);
    const dgm_plugin_desc *d1 = dgm_registry_at(r, 1, NULL);
    ck_assert_str_eq(d1->name, "good_block");
    ck_assert_str_eq(d1->version, "0.3");
    ck_assert_str_eq(d1->params[2].name, "scale");
    ck_assert_ptr_null(dgm_registry_at(r, 2, NULL));
    ck_assert_ptr_null(dgm_registry_at(r, -1, NULL));

    /* By kind, and kind 0 for any. */
    const dgm_plugin_desc *d = NULL;
    ck_assert_int_eq(
        dgm_registry_find(r, DGM_KIND_BLOCK, "good_block", &d, NULL), 0);
    ck_assert_ptr_eq(d, d1);
    ck_assert_int_eq(dgm_registry_find(r, 0, "good_loss", &d, NULL), 0);
    ck_assert_ptr_eq(d, d0);
    const dgm_loss_iface *li = d->iface.loss;
    ck_assert_int_eq(li->max_inputs, 2);
    dgm_registry_free(r);
}
END_TEST

START_TEST(rescan_is_idempotent)
{
    char dir[PATH_MAX];
    scratch(dir, sizeof dir, "rescan", "tp_good", "tp_nosym", NULL);
    dgm_registry *r = registry_on(dir);
    ck_assert_int_eq(dgm_registry_add_dir(r, dir), 0); /* twice */
    ck_assert_int_eq(dgm_registry_scan(r), 1);
    ck_assert_int_eq(dgm_registry_scan(r), 0);
    ck_assert_int_eq(dgm_registry_count(r), 2);
    ck_assert_int_eq(dgm_registry_problem_count(r), 1);
    /* The same file loaded by path is not a duplicate of itself. */
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/tp_good.so", dir);
    ck_assert_int_eq(dgm_registry_load_file(r, path), 0);
    ck_assert_int_eq(dgm_registry_count(r), 2);
    assert_good_found(r);
    dgm_registry_free(r);
}
END_TEST

START_TEST(whole_test_folder)
{
    /* Every odd plugin at once: each refused file is one problem, the
     * duplicate is one more, and the good ones still load. */
    char dir[PATH_MAX];
    scratch(dir, sizeof dir, "all", "tp_abi_major", "tp_abi_minor",
            "tp_abi_layout", "tp_bad_default", "tp_short_iface", "tp_bad_kind",
            "tp_bad_name", "tp_bad_param", "tp_create_fails", "tp_dup_a",
            "tp_dup_b", "tp_good", "tp_nosym", "tp_small", NULL);
    dgm_registry *r = registry_on(dir);
    ck_assert_int_eq(dgm_registry_scan(r), 11);
    ck_assert_int_eq(dgm_registry_problem_count(r), 11);
    assert_good_found(r);
    const dgm_plugin_desc *d;
    ck_assert_int_eq(dgm_registry_find(r, 0, "create_fails", &d, NULL), 0);
    ck_assert_int_eq(dgm_registry_find(r, 0, "dup_thing", &d, NULL), DGM_EDUP);
    /* good: 2, create_fails: 1, dup_a and dup_b: 1 each. */
    ck_assert_int_eq(dgm_registry_count(r), 5);
    dgm_registry_free(r);
}
END_TEST

START_TEST(vars_copy_names)
{
    /* dgm_vars_set keeps a copy of the name: a caller may reuse its
     * buffer (a model naming outputs in a loop). */
    dgm_vars io = {0};
    dgm_var *a = (dgm_var *)&io, *b = (dgm_var *)&a; /* only compared */
    char name[DGM_VAR_NAME_MAX + 8];
    snprintf(name, sizeof name, "out_%d", 0);
    ck_assert_int_eq(dgm_vars_set(&io, name, a), 0);
    snprintf(name, sizeof name, "out_%d", 1);
    ck_assert_int_eq(dgm_vars_set(&io, name, b), 0);
    ck_assert_int_eq(dgm_vars_count(&io), 2);
    ck_assert_str_eq(dgm_vars_name_at(&io, 0), "out_0");
    ck_assert_ptr_eq(dgm_vars_get(&io, "out_0"), a);
    ck_assert_ptr_eq(dgm_vars_get(&io, "out_1"), b);
    /* A name too long to copy is refused, not cut. */
    memset(name, 'x', DGM_VAR_NAME_MAX);
    name[DGM_VAR_NAME_MAX] = '\0';
    ck_assert_int_eq(dgm_vars_set(&io, name, a), DGM_ERANGE);
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "is 64 bytes, at most 63"));
    ck_assert_int_eq(dgm_vars_count(&io), 2);
}
END_TEST

START_TEST(shipped_plugins_load)
{
    /* Every shipped plugin passes the load checks (reserved keys, an
     * optimizer's lr): no problem, and the optimizers are there. */
    dgm_registry *r = registry_on(DGM_PLUGIN_DIR);
    int problems = dgm_registry_scan(r);
    ck_assert_msg(problems == 0, "%d problems, first: %s", problems,
                  dgm_registry_problem(r, 0));
    ck_assert_int_gt(dgm_registry_count(r), 30);
    const char *opts[] = {"sgd", "adam", "adamw", "rmsprop"};
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(
            dgm_registry_find(r, DGM_KIND_OPTIMIZER, opts[i], NULL, NULL), 0);
    dgm_registry_free(r);
}
END_TEST

/* ---- refusals --------------------------------------------------------- */

typedef struct refusal {
    const char *plugin; /* test plugin file, or NULL for a garbage .so */
    int code;
    const char *text; /* expected in the message after "<file>: " */
} refusal;

static const refusal refusals[] = {
    {"tp_nosym", DGM_ENOSYM, "no dgm_plugin_query symbol"},
    {"tp_abi_major", DGM_EABI, "plugin ABI 3.0, host ABI 2.1"},
    {"tp_abi_minor", DGM_EABI, "plugin ABI 2.99, host ABI 2.1"},
    {"tp_small", DGM_EABI, "descriptor 0 is 16 bytes, ABI 2.1 needs at least"},
    /* The right version, other layout constants: the file, the constant
     * and both values. */
    {"tp_abi_layout", DGM_EABI,
     "plugin built with DGM_MAX_DIMS = 4, this dgm has 8 (rebuild the "
     "plugin against this dgm's headers)"},
    {"tp_bad_kind", DGM_EFORMAT, "plugin 'tp_bad_kind': invalid kind 99"},
    {"tp_bad_name", DGM_EFORMAT,
     "descriptor 0: name 'Bad-Name' must be non-empty [a-z0-9_]"},
    {"tp_bad_param", DGM_EFORMAT,
     "plugin 'bad_param': param 'broken' has invalid type 42"},
    /* An interface shorter than the ABI's (no kind macro): refused before
     * the host reads a slot the plugin does not have. */
    {"tp_short_iface", DGM_EABI,
     "plugin 'short_iface' (loss): interface is 40 bytes, ABI 2.1 needs at "
     "least 48 (set it with DGM_PLUGIN_LOSS(&iface))"},
    /* A default outside its own bounds refuses the plugin at load. */
    {"tp_bad_default", DGM_EFORMAT,
     "plugin 'bad_default': param 'scale': default 0 fails: <default>:1:1: 0 "
     "is out of range for its own schema: must be > 0"},
    /* A key the host reads from the slot's map cannot be a parameter
     * too: the message names the plugin, the parameter and every
     * reserved key of that kind. */
    {"tp_opt_gamma", DGM_EFORMAT,
     "plugin 'opt_gamma' (optimizer): parameter 'gamma' clashes with a key "
     "the host reads from every optimizer's map (reserved: plugin, "
     "schedule, warmup, step_size, gamma, min_lr, clip_norm); rename it"},
    {"tp_loss_weight", DGM_EFORMAT,
     "plugin 'loss_weight' (loss): parameter 'weight' clashes with a key the "
     "host reads from every objective term (reserved: plugin, loss, inputs, "
     "weight, mask, name); rename it"},
    /* A metric's direction table holds only dgm_better values. */
    {"tp_bad_better", DGM_EFORMAT,
     "plugin 'bad_better' (metric): figures[1] ('score_*'): 7 is not a "
     "dgm_better value"},
    /* The host reads an optimizer's `lr`. */
    {"tp_opt_nolr", DGM_EFORMAT,
     "plugin 'opt_nolr' (optimizer) declares no parameter 'lr': the host "
     "reads the base learning rate from `lr`"},
    {NULL, DGM_EDLOPEN, "cannot load: "},
};

START_TEST(refused)
{
    const refusal *t = &refusals[_i];
    char dir[PATH_MAX], tag[32], file[PATH_MAX + 32];
    snprintf(tag, sizeof tag, "refuse%d", _i);
    scratch(dir, sizeof dir, tag, "tp_good", t->plugin, NULL);
    if (t->plugin) {
        snprintf(file, sizeof file, "%s/%s.so", dir, t->plugin);
    } else {
        snprintf(file, sizeof file, "%s/garbage.so", dir);
        FILE *f = fopen(file, "w");
        ck_assert_ptr_nonnull(f);
        fputs("not an ELF file\n", f);
        fclose(f);
    }
    char want[2 * PATH_MAX];
    snprintf(want, sizeof want, "%s: %s", file, t->text);

    /* During a scan: recorded, the rest still loads. */
    dgm_registry *r = registry_on(dir);
    ck_assert_int_eq(dgm_registry_scan(r), 1);
    ck_assert_int_eq(dgm_registry_problem_count(r), 1);
    ck_assert_contains(dgm_registry_problem(r, 0), want);
    ck_assert_ptr_null(dgm_registry_problem(r, 1));
    ck_assert_int_eq(dgm_registry_count(r), 2);
    assert_good_found(r);

    /* Loaded explicitly: the exact code and the same message. */
    dgm_error_clear();
    ck_assert_int_eq(dgm_registry_load_file(r, file), t->code);
    ck_assert_int_eq(dgm_last_code(), t->code);
    ck_assert_contains(dgm_last_error(), want);
    /* And by path through find. */
    ck_assert_int_eq(dgm_registry_find(r, 0, file, NULL, NULL), t->code);
    ck_assert_int_eq(dgm_registry_count(r), 2);
    assert_good_found(r);
    dgm_registry_free(r);
}
END_TEST

/* ---- lookup errors ---------------------------------------------------- */

START_TEST(duplicate_names)
{
    char dir[PATH_MAX];
    scratch(dir, sizeof dir, "dup", "tp_dup_a", "tp_dup_b", "tp_good", NULL);
    dgm_registry *r = registry_on(dir);
    ck_assert_int_eq(dgm_registry_scan(r), 1);
    char a[PATH_MAX + 16], b[PATH_MAX + 16], want[3 * PATH_MAX];
    snprintf(a, sizeof a, "%s/tp_dup_a.so", dir);
    snprintf(b, sizeof b, "%s/tp_dup_b.so", dir);
    snprintf(want, sizeof want,
             "%s: plugin name 'dup_thing' is also defined "
             "in %s",
             b, a);
    ck_assert_contains(dgm_registry_problem(r, 0), want);

    const dgm_plugin_desc *d = NULL;
    ck_assert_int_eq(dgm_registry_find(r, DGM_KIND_LOSS, "dup_thing", &d, NULL),
                     DGM_EDUP);
    snprintf(want, sizeof want,
             "plugin name 'dup_thing' is ambiguous: defined in %s and in %s", a,
             b);
    ck_assert_str_eq(dgm_last_error(), want);
    ck_assert_int_eq(dgm_registry_find(r, 0, "dup_thing", &d, NULL), DGM_EDUP);

    /* A path still picks one. */
    const char *file = NULL;
    ck_assert_int_eq(dgm_registry_find(r, DGM_KIND_LOSS, b, &d, &file), 0);
    ck_assert_str_eq(d->summary, "duplicate name (b)");
    ck_assert_str_eq(file, b);
    assert_good_found(r);
    dgm_registry_free(r);
}
END_TEST

START_TEST(not_found_lists_search_path)
{
    char dir[PATH_MAX];
    scratch(dir, sizeof dir, "notfound", "tp_good", NULL);
    dgm_registry *r = registry_on(dir);
    ck_assert_int_eq(dgm_registry_add_dir(r, "/nonexistent/dgm-plugins"), 0);
    ck_assert_int_eq(dgm_registry_scan(r), 0); /* missing folder: skipped */
    char want[2 * PATH_MAX];
    snprintf(want, sizeof want, "%s:/nonexistent/dgm-plugins", dir);
    ck_assert_str_eq(dgm_registry_search_path(r), want);

    const dgm_plugin_desc *d = (const dgm_plugin_desc *)r; /* sentinel */
    ck_assert_int_eq(dgm_registry_find(r, DGM_KIND_LOSS, "nope", &d, NULL),
                     DGM_ENOTFOUND);
    snprintf(want, sizeof want,
             "plugin 'nope' (loss) not found; search path: "
             "%s:/nonexistent/dgm-plugins",
             dir);
    ck_assert_str_eq(dgm_last_error(), want);
    ck_assert_ptr_eq(d, (const dgm_plugin_desc *)r); /* untouched */
    ck_assert_int_eq(dgm_registry_find(r, 0, "nope", &d, NULL), DGM_ENOTFOUND);
    ck_assert_contains(dgm_last_error(), "plugin 'nope' (any kind) not found");
    /* A path that does not exist. */
    ck_assert_int_eq(dgm_registry_find(r, 0, "/nonexistent/x.so", &d, NULL),
                     DGM_ENOTFOUND);
    ck_assert_contains(dgm_last_error(), "/nonexistent/x.so");
    dgm_registry_free(r);
}
END_TEST

START_TEST(wrong_kind)
{
    char dir[PATH_MAX], want[2 * PATH_MAX];
    scratch(dir, sizeof dir, "kind", "tp_good", NULL);
    dgm_registry *r = registry_on(dir);
    ck_assert_int_eq(dgm_registry_scan(r), 0);
    const dgm_plugin_desc *d;
    ck_assert_int_eq(
        dgm_registry_find(r, DGM_KIND_BLOCK, "good_loss", &d, NULL), DGM_EKIND);
    snprintf(want, sizeof want,
             "plugin 'good_loss' (%s/tp_good.so) is a loss, not a block", dir);
    ck_assert_str_eq(dgm_last_error(), want);
    ck_assert_int_eq(
        dgm_registry_find(r, DGM_KIND_METRIC, "good_block", &d, NULL),
        DGM_EKIND);
    ck_assert_contains(dgm_last_error(), "is a block, not a metric");
    /* By path, the file holds no dataset. */
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/tp_good.so", dir);
    ck_assert_int_eq(dgm_registry_find(r, DGM_KIND_DATASET, path, &d, NULL),
                     DGM_EKIND);
    ck_assert_contains(dgm_last_error(), "tp_good.so) is a loss, not a "
                                         "dataset");
    ck_assert_int_eq(dgm_registry_find(r, (dgm_kind)42, "good_loss", &d, NULL),
                     DGM_EINVAL);
    dgm_registry_free(r);
}
END_TEST

START_TEST(find_by_path_on_demand)
{
    dgm_registry *r;
    ck_assert_int_eq(dgm_registry_new(&r), 0);
    ck_assert_int_eq(dgm_registry_scan(r), 0);
    ck_assert_int_eq(dgm_registry_count(r), 0);
    const dgm_plugin_desc *d;
    const char *file;
    const char *path = DGM_TEST_PLUGIN_DIR "/tp_good.so";
    ck_assert_int_eq(dgm_registry_find(r, DGM_KIND_BLOCK, path, &d, &file), 0);
    ck_assert_str_eq(d->name, "good_block");
    ck_assert_str_eq(file, path);
    ck_assert_int_eq(dgm_registry_count(r), 2);
    ck_assert_int_eq(dgm_registry_find(r, 0, path, &d, NULL), 0);
    ck_assert_str_eq(d->name, "good_loss"); /* first in query order */
    /* Once loaded, it is found by name too. */
    ck_assert_int_eq(dgm_registry_find(r, 0, "good_block", &d, NULL), 0);
    ck_assert_int_eq(dgm_registry_count(r), 2);
    dgm_registry_free(r);
}
END_TEST

/* ---- plugin errors ---------------------------------------------------- */

START_TEST(create_error_survives)
{
    char dir[PATH_MAX];
    scratch(dir, sizeof dir, "create", "tp_create_fails", NULL);
    dgm_registry *r = registry_on(dir);
    ck_assert_int_eq(dgm_registry_scan(r), 0);
    const dgm_plugin_desc *d;
    ck_assert_int_eq(
        dgm_registry_find(r, DGM_KIND_OPTIMIZER, "create_fails", &d, NULL), 0);
    const dgm_optimizer_iface *f = d->iface.optimizer;
    void *self = (void *)&self;
    dgm_error_clear();
    ck_assert_int_eq(f->create(&self, NULL), DGM_ERANGE);
    ck_assert_int_eq(dgm_last_code(), DGM_ERANGE);
    ck_assert_str_eq(dgm_last_error(),
                     "create_fails: lr must be positive, got -1");
    ck_assert_ptr_null(self);
    dgm_registry_free(r);
}
END_TEST

/* ---- search path and kind names -------------------------------------- */

START_TEST(env_and_default_path)
{
    dgm_registry *r;
    ck_assert_int_eq(dgm_registry_new(&r), 0);
    ck_assert_str_eq(dgm_registry_search_path(r), "");
    setenv("DGM_PLUGIN_PATH", "/a/one::/b/two:", 1);
    ck_assert_int_eq(dgm_registry_add_env(r), 0);
    ck_assert_str_eq(dgm_registry_search_path(r), "/a/one:/b/two");
    unsetenv("DGM_PLUGIN_PATH");
    ck_assert_int_eq(dgm_registry_add_env(r), 0);
    ck_assert_str_eq(dgm_registry_search_path(r), "/a/one:/b/two");

    char exe[PATH_MAX], want[3 * PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    ck_assert_int_gt(n, 0);
    exe[n] = '\0';
    *strrchr(exe, '/') = '\0';
    ck_assert_int_eq(dgm_registry_add_default(r), 0);
    snprintf(want, sizeof want,
             "/a/one:/b/two:%s/../plugins:%s/../lib/dgm/plugins", exe, exe);
    ck_assert_str_eq(dgm_registry_search_path(r), want);
    ck_assert_int_eq(dgm_registry_add_dir(r, ""), DGM_EINVAL);
    dgm_registry_free(r);
}
END_TEST

START_TEST(kind_names)
{
    const char *names[] = {NULL,    "dataset", "augment",   "block",
                           "model", "loss",    "optimizer", "metric"};
    for (int k = 0; k < DGM_KIND_COUNT_; k++)
        if (names[k])
            ck_assert_str_eq(dgm_kind_name((dgm_kind)k), names[k]);
        else
            ck_assert_ptr_null(dgm_kind_name((dgm_kind)k));
    ck_assert_ptr_null(dgm_kind_name(DGM_KIND_COUNT_));
    ck_assert_ptr_null(dgm_kind_name((dgm_kind)-1));
}
END_TEST

/* ---- dgm plugins ------------------------------------------------------ */

/* Run `dgm ARGS` (ARGS starting with the command) with the environment
 * settings env (e.g. "COLUMNS=80", or "-u COLUMNS"); capture stdout and
 * stderr into buffers. */
static int run_dgm_env(const char *env, const char *args, char *out,
                       size_t n_out, char *err, size_t n_err)
{
    int st = tc_cli(env, args, out, n_out, err, n_err);
    ck_assert_int_ge(st, 0);
    return st;
}

/* `dgm ARGS`, wide enough for whole lines: summaries and paths uncut. */
static int run_dgm(const char *args, char *out, size_t n_out, char *err,
                   size_t n_err)
{
    return run_dgm_env("COLUMNS=1000", args, out, n_out, err, n_err);
}

/* `dgm plugins ARGS` with the environment settings env. */
static int run_cli_env(const char *env, const char *args, char *out,
                       size_t n_out, char *err, size_t n_err)
{
    char cmd[4 * PATH_MAX];
    snprintf(cmd, sizeof cmd, "plugins %s", args);
    return run_dgm_env(env, cmd, out, n_out, err, n_err);
}

/* `dgm plugins ARGS`, wide enough for whole lines. */
static int run_cli(const char *args, char *out, size_t n_out, char *err,
                   size_t n_err)
{
    return run_cli_env("COLUMNS=1000", args, out, n_out, err, n_err);
}

START_TEST(cli_list)
{
    char dir[PATH_MAX], args[2 * PATH_MAX], out[16384], err[8192];
    scratch(dir, sizeof dir, "cli", "tp_good", "tp_abi_major",
            "tp_create_fails", NULL);
    snprintf(args, sizeof args, "--path '%s'", dir);
    ck_assert_int_eq(run_cli(args, out, sizeof out, err, sizeof err), 0);
    ck_assert_contains(out, "KIND");
    /* Sorted by kind: block before loss before optimizer. */
    char *blk = strstr(out, "block  ");
    char *loss = strstr(out, "loss  ");
    char *opt = strstr(out, "optimizer  ");
    ck_assert(blk && loss && opt && blk < loss && loss < opt);
    ck_assert_contains(blk, "good_block");
    ck_assert_contains(loss, "good_loss");
    ck_assert_contains(loss, "1.2");
    ck_assert_contains(loss, "test loss: returns its first input");
    ck_assert_contains(loss, "/tp_good.so");
    char want[2 * PATH_MAX];
    snprintf(want, sizeof want,
             "dgm: warning: %s/tp_abi_major.so: plugin ABI 3.0, host ABI 2.1",
             dir);
    ck_assert_contains(err, want);

    ck_assert_int_eq(run_cli("--bogus", out, sizeof out, err, sizeof err), 2);
    ck_assert_contains(err, "unknown option '--bogus'");
    ck_assert_int_eq(run_cli("--help", out, sizeof out, err, sizeof err), 0);
    ck_assert_contains(out, "usage: dgm plugins");
}
END_TEST

START_TEST(cli_show)
{
    char dir[PATH_MAX], args[2 * PATH_MAX], out[16384], err[8192];
    scratch(dir, sizeof dir, "clishow", "tp_good", NULL);
    snprintf(args, sizeof args, "show --path '%s' good_block", dir);
    ck_assert_int_eq(run_cli(args, out, sizeof out, err, sizeof err), 0);
    ck_assert_contains(out, "name:     good_block");
    ck_assert_contains(out, "kind:     block");
    ck_assert_contains(out, "version:  0.3");
    /* One row per param: name, type, default or "required", range or
     * choices, help. */
    char *row = strstr(out, "  width ");
    ck_assert_ptr_nonnull(row);
    ck_assert_int_eq(sscanf(row, " width int 8 [1, 1024] %s", args), 1);
    ck_assert_str_eq(args, "units");
    ck_assert_ptr_nonnull(strstr(out, "  act "));
    ck_assert_contains(strstr(out, "  act "), "choice");
    ck_assert_contains(strstr(out, "  act "), "relu|tanh");
    ck_assert_contains(strstr(out, "  scale "), "required");
    ck_assert_contains(strstr(out, "  scale "), "[0, 2]");
    ck_assert_contains(strstr(out, "  inner "), "(none)");

    snprintf(args, sizeof args, "show --path '%s' good_loss", dir);
    ck_assert_int_eq(run_cli(args, out, sizeof out, err, sizeof err), 0);
    ck_assert_contains(out, "inputs:   x [target] (1..2)");
    ck_assert_contains(out, "parameters: none");

    snprintf(args, sizeof args, "show --path '%s' nope", dir);
    ck_assert_int_eq(run_cli(args, out, sizeof out, err, sizeof err), 2);
    ck_assert_contains(err, "plugin 'nope' (any kind) not found; search "
                            "path: ");
    ck_assert_contains(err, dir);
    snprintf(args, sizeof args, "show --kind model --path '%s' good_loss", dir);
    ck_assert_int_eq(run_cli(args, out, sizeof out, err, sizeof err), 2);
    ck_assert_contains(err, "is a loss, not a model");
    ck_assert_int_eq(run_cli("show", out, sizeof out, err, sizeof err), 2);
}
END_TEST

/* ---- what the host promises a plugin author ---------------------------- */

/* docs/writing-plugins.md states these; tests/plugins/tp_host.c carries
 * the plugins that probe them, trained on a tiny VAE experiment. */

static char host_dir[PATH_MAX];

static void host_setup(void)
{
    const char *tmp = getenv("DGM_TEST_TMP");
    snprintf(host_dir, sizeof host_dir, "%s/registry-%ld-host",
             tmp ? tmp : "/tmp", (long)getpid());
    mkdir_p(host_dir);
    ck_assert_int_eq(
        tq_write_quadrants(host_dir, "train-img", "train-lab", 32, 5), 0);
    ck_assert_int_eq(
        tq_write_quadrants(host_dir, "test-img", "test-lab", 16, 6), 0);
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/host.yaml", host_dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f,
            "name: host\n"
            "seed: 3\n"
            "threads: 1\n"
            "data: {plugin: idx, path: '%s', train_images: train-img,\n"
            "       train_labels: train-lab, test_images: test-img,\n"
            "       test_labels: test-lab, batch_size: 8}\n"
            "model: {plugin: vae, latent: 2, encoder: {plugin: mlp, hidden: "
            "[8]},\n"
            "        decoder: {plugin: mlp, hidden: [8]}}\n"
            "optimizer: {plugin: adam, lr: 0.01}\n"
            "train: {steps: 3, log_every: 1, samples: 0}\n"
            "metrics: []\n",
            host_dir);
    fclose(f);
}

static void host_teardown(void)
{
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", host_dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* Load host.yaml with the overrides, the shipped plugins and tp_host. */
static dgm_experiment *host_experiment(dgm_registry **reg,
                                       const char *const *ov, int n_ov)
{
    ck_assert_int_eq(dgm_registry_new(reg), 0);
    ck_assert_int_eq(dgm_registry_add_dir(*reg, DGM_PLUGIN_DIR), 0);
    ck_assert_int_ge(dgm_registry_scan(*reg), 0);
    ck_assert_msg(
        dgm_registry_load_file(*reg, DGM_TEST_PLUGIN_DIR "/tp_host.so") == 0,
        "%s", dgm_last_error());
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/host.yaml", host_dir);
    dgm_experiment *e;
    ck_assert_msg(dgm_experiment_load(&e, *reg, path, ov, n_ov) == 0, "%s",
                  dgm_last_error());
    return e;
}

static int host_run(dgm_experiment *e, const char *tag)
{
    char dir[PATH_MAX + 64];
    snprintf(dir, sizeof dir, "%s/%s", host_dir, tag);
    dgm_run_options o = {.run_dir = dir, .quiet = true};
    return dgm_experiment_run(e, &o);
}

/* A block whose forward returns another shape than its create reported
 * is refused at that forward, naming the plugin, its scope and both
 * shapes (here a decoder asked for [1, 28, 28] that returns z). The
 * build's probe forward on two examples is the first to meet it. */
START_TEST(block_output_shape_checked)
{
    const char *ov[] = {"model.decoder={plugin: tp_wrong_shape}"};
    dgm_registry *reg;
    dgm_experiment *e = host_experiment(&reg, ov, 1);
    int rc = host_run(e, "wrong_shape");
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", dgm_last_error());
    dgm_experiment_free(e);
    dgm_registry_free(reg);
    ck_assert_msg(rc == DGM_ESHAPE, "rc %d: %s", rc, msg);
    ck_assert_contains(msg, "block 'tp_wrong_shape' (decoder): forward "
                            "returned [2, 2] for input [2, 2], but its "
                            "create reported [1, 28, 28] per example "
                            "([2, 1, 28, 28] for this batch)");
}
END_TEST

static double final_figure(const char *tag, const char *key)
{
    char path[PATH_MAX + 96];
    snprintf(path, sizeof path, "%s/%s/summary.json", host_dir, tag);
    json_error_t jerr;
    json_t *s = json_load_file(path, 0, &jerr);
    ck_assert_msg(s != NULL, "%s: %s", path, jerr.text);
    json_t *v = json_object_get(json_object_get(s, "final"), key);
    ck_assert_msg(json_is_number(v), "no final figure '%s' in %s", key, path);
    double d = json_number_value(v);
    json_decref(s);
    return d;
}

/* A loss returning a scalar (the batch mean) is evaluated as that value
 * for each example of its batch: over batches of 5, 5, 5 and 1 the
 * split's figure equals that of `mse`, its per-example counterpart. */
START_TEST(scalar_loss_evaluates)
{
    const char *ov[] = {
        "objective=[{loss: bernoulli_nll, inputs: [logits, x]}, "
        "{loss: gaussian_kl, inputs: [mu, logvar]}, "
        "{loss: mse, inputs: [logits, x]}, "
        "{loss: tp_scalar_mse, inputs: [logits, x], weight: 0.5}]",
        "metrics=[{plugin: elbo, batch_size: 5}]"};
    dgm_registry *reg;
    dgm_experiment *e = host_experiment(&reg, ov, 2);
    int rc = host_run(e, "scalar");
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", dgm_last_error());
    dgm_experiment_free(e);
    dgm_registry_free(reg);
    ck_assert_msg(rc == 0, "rc %d: %s", rc, msg);
    double per = final_figure("scalar", "neg_elbo/mse");
    double scalar = final_figure("scalar", "neg_elbo/tp_scalar_mse");
    ck_assert_msg(per > 0 && fabs(scalar - per) <= 1e-5 * per,
                  "scalar loss %.9g, per-example %.9g", scalar, per);
}
END_TEST

static dgm_tensor *find_slot(const dgm_param *p, const char *name)
{
    for (int i = 0; i < dgm_param_slot_count(p); i++) {
        const char *s = NULL;
        dgm_tensor *t = dgm_param_slot_at(p, i, &s);
        if (s && !strcmp(s, name))
            return t;
    }
    return NULL;
}

/* An optimizer's step receives only trainable weights (never a frozen
 * parameter or a buffer), each with a contiguous f32 gradient of its
 * value's shape (tp_probe_sgd refuses anything else), every update, with
 * t counting from 1; a param_groups entry's weight_decay reaches its
 * optimizer instance as the key `weight_decay`. */
START_TEST(optimizer_step_gets_trainable_weights)
{
    const char *ov[] = {
        "optimizer={plugin: tp_probe_sgd, lr: 0.01}", "freeze=[encoder.*]",
        "param_groups=[{params: decoder.*, weight_decay: 0.25}]"};
    dgm_registry *reg;
    dgm_experiment *e = host_experiment(&reg, ov, 3);
    int rc = host_run(e, "probe");
    ck_assert_msg(rc == 0, "rc %d: %s", rc, dgm_last_error());
    int frozen = 0, stepped = 0;
    for (int k = 0; k < dgm_params_count(e->params); k++) {
        dgm_param *p = dgm_params_at(e->params, k);
        dgm_tensor *calls = find_slot(p, "calls");
        if (p->role != DGM_ROLE_WEIGHT || p->frozen) {
            ck_assert_msg(!calls, "'%s' reached step", p->name);
            frozen += p->frozen;
            continue;
        }
        ck_assert_msg(calls != NULL, "'%s' never reached step", p->name);
        ck_assert_float_eq(dgm_tensor_f32(calls)[0], 3.0f);
        if (dgm_tensor_numel(calls) > 1)
            ck_assert_float_eq(dgm_tensor_f32(calls)[1], 3.0f);
        stepped++;
    }
    ck_assert_int_gt(frozen, 0);
    ck_assert_int_gt(stepped, 0);
    dgm__phase *ph = &e->phases[0];
    ck_assert_int_eq(ph->n_groups, 1);
    ck_assert_double_eq(dgm_cfg_float(ph->groups[0].opt_cfg, "weight_decay"),
                        0.25);
    ck_assert_double_eq(dgm_cfg_float(ph->opt.cfg, "weight_decay"), 0.0);
    dgm_experiment_free(e);
    dgm_registry_free(reg);
}
END_TEST

static int widest_line(const char *text)
{
    int widest = 0;
    while (*text) {
        const char *nl = strchr(text, '\n');
        int len = nl ? (int)(nl - text) : (int)strlen(text);
        widest = len > widest ? len : widest;
        text += len + (nl != NULL);
    }
    return widest;
}

/* The line of text that holds needle, without its newline. */
static void line_with(const char *text, const char *needle, char *out, size_t n)
{
    const char *at = strstr(text, needle);
    ck_assert_msg(at != NULL, "no '%s' in:\n%s", needle, text);
    while (at > text && at[-1] != '\n')
        at--;
    size_t len = strcspn(at, "\n");
    snprintf(out, n, "%.*s", (int)len, at);
}

/* The list fits $COLUMNS, else 80 when stdout is not a terminal: long
 * summaries are cut with "...", then paths shortened to "..." and their
 * end, then the FILE column left out; `show` keeps the full text. The
 * scratch folder's long name makes its paths need shortening. */
START_TEST(cli_list_fits_width)
{
    char dir[PATH_MAX], args[2 * PATH_MAX], out[32768], err[8192];
    char line[1024], file[PATH_MAX + 16];
    scratch(dir, sizeof dir,
            "cliwidth_with_a_folder_name_long_enough_that_its_paths_never_"
            "fit_in_120_columns",
            "tp_good", "tp_host", NULL);
    snprintf(args, sizeof args, "--path '%s'", dir);
    snprintf(file, sizeof file, "%s/tp_host.so", dir);
    const char *full = "test optimizer: SGD that checks its input";

    ck_assert_int_eq(
        run_cli_env("COLUMNS=1000", args, out, sizeof out, err, sizeof err), 0);
    line_with(out, "tp_probe_sgd", line, sizeof line);
    ck_assert_contains(line, full);
    ck_assert_contains(line, file);

    /* Summaries cut, paths shortened at a '/'. */
    ck_assert_int_eq(
        run_cli_env("COLUMNS=120", args, out, sizeof out, err, sizeof err), 0);
    ck_assert_int_le(widest_line(out), 120);
    line_with(out, "tp_probe_sgd", line, sizeof line);
    ck_assert_msg(ends_with(line, "/tp_host.so") && strstr(line, ".../") &&
                      !strstr(line, dir) && !strstr(line, full),
                  "%s", line);
    ck_assert_contains(out, "FILE");

    /* No room for files: the column goes, the summary fills the line. */
    ck_assert_int_eq(
        run_cli_env("COLUMNS=60", args, out, sizeof out, err, sizeof err), 0);
    ck_assert_int_eq(widest_line(out), 60);
    line_with(out, "tp_probe_sgd", line, sizeof line);
    ck_assert_msg(strlen(line) == 60 && ends_with(line, "..."), "%s", line);
    ck_assert_msg(!strstr(out, "FILE") && !strstr(out, ".so"), "%s", out);

    /* Not a terminal, no COLUMNS: 80; a COLUMNS that is not a positive
     * number is ignored. */
    ck_assert_int_eq(
        run_cli_env("-u COLUMNS", args, out, sizeof out, err, sizeof err), 0);
    ck_assert_int_le(widest_line(out), 80);
    ck_assert_int_ge(widest_line(out), 70);
    ck_assert_int_eq(
        run_cli_env("COLUMNS=abc", args, out, sizeof out, err, sizeof err), 0);
    ck_assert_int_le(widest_line(out), 80);

    snprintf(args, sizeof args, "show --path '%s' tp_probe_sgd", dir);
    ck_assert_int_eq(
        run_cli_env("COLUMNS=40", args, out, sizeof out, err, sizeof err), 0);
    ck_assert_contains(out, full);
}
END_TEST

/* ---- dgm config runs the plugins' own checks -------------------------- */

/* An experiment that validates (no data is read by `dgm config`), in a
 * scratch folder that also holds tp_check.so; line 6 is the optimizer,
 * line 9 the objective's check_loss term. Returns its path in exp. */
static void write_check_experiment(char *exp, size_t n, const char *tag,
                                   const char *optimizer, const char *extra)
{
    char dir[PATH_MAX / 2];
    scratch(dir, sizeof dir, tag, "tp_check", NULL);
    ck_assert_int_lt(snprintf(exp, n, "%s/exp.yaml", dir), (int)n);
    FILE *f = fopen(exp, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f,
            "name: chk\n"
            "plugin_path: [\"%s\"]\n"
            "data: {plugin: idx, path: %s/no-data, batch_size: 8}\n"
            "model: {plugin: vae, latent: 2, encoder: {plugin: mlp, hidden: "
            "[8]}, decoder: {plugin: mlp, hidden: [8]}}\n"
            "train: {steps: 10}\n"
            "optimizer: %s\n"
            "objective:\n"
            "  - {loss: bernoulli_nll, inputs: [logits, x]}\n"
            "  - {loss: check_loss, inputs: [mu], limit: 1}\n"
            "%s",
            dir, dir, optimizer, extra ? extra : "");
    fclose(f);
}

/* `dgm config EXP OVERRIDES` must refuse with exit 2 and a message on
 * stderr holding each of the NULL-ended strings; nothing on stdout. */
static void config_refuses(const char *exp, const char *overrides, ...)
{
    char args[4 * PATH_MAX], out[65536], err[8192];
    snprintf(args, sizeof args, "config '%s' %s", exp, overrides);
    int rc = run_dgm(args, out, sizeof out, err, sizeof err);
    ck_assert_msg(rc == 2, "dgm %s: exit %d, stderr: %s", args, rc, err);
    ck_assert_str_eq(out, "");
    va_list ap;
    va_start(ap, overrides);
    for (const char *w; (w = va_arg(ap, const char *));)
        ck_assert_contains(err, w);
    va_end(ap);
}

START_TEST(config_runs_optimizer_checks)
{
    char exp[PATH_MAX], args[2 * PATH_MAX], out[65536], err[8192];
    write_check_experiment(exp, sizeof exp, "cfgopt", "{plugin: sgd, lr: 0.1}",
                           NULL);
    /* The baseline is valid: what follows is refused for its value. */
    snprintf(args, sizeof args, "config '%s'", exp);
    ck_assert_msg(run_dgm(args, out, sizeof out, err, sizeof err) == 0, "%s",
                  err);
    ck_assert_contains(out, "nesterov: false");
    /* Overridden values are located on the command line. */
    config_refuses(exp, "optimizer.lr=0", "optimizer 'sgd': ",
                   "<command line>:1:14: optimizer.lr: must be > 0, got 0",
                   NULL);
    config_refuses(exp, "optimizer.nesterov=true", "optimizer 'sgd': ",
                   "optimizer.nesterov: Nesterov momentum needs momentum > 0 "
                   "and dampening 0 (momentum 0, dampening 0)",
                   NULL);
    /* With momentum it is valid. */
    snprintf(args, sizeof args,
             "config '%s' optimizer.nesterov=true optimizer.momentum=0.9", exp);
    ck_assert_msg(run_dgm(args, out, sizeof out, err, sizeof err) == 0, "%s",
                  err);
    /* A phase's own optimizer, the other shipped optimizers, and a
     * parameter group's optimizer are checked too. */
    config_refuses(exp, "'phases.train.optimizer={plugin: adam, beta1: 1}'",
                   "optimizer 'adam': ",
                   "phases.train.optimizer.beta1: must "
                   "be in [0, 1), got 1",
                   NULL);
    config_refuses(exp, "'optimizer={plugin: rmsprop, lr: 0}'",
                   "optimizer 'rmsprop': ", "optimizer.lr: must be > 0", NULL);
    config_refuses(exp,
                   "'param_groups=[{params: \"decoder.*\", optimizer: "
                   "{plugin: adamw, lr: 0}}]'",
                   "optimizer 'adamw': ",
                   "param_groups[0].optimizer.lr: must be > 0", NULL);
    /* Values from the file are located in it: lr: 0 passes the schema
     * ([0, inf)) but not sgd's create, and so not its check. */
    write_check_experiment(exp, sizeof exp, "cfgopt", "{plugin: sgd, lr: 0}",
                           NULL);
    char where[PATH_MAX + 64];
    snprintf(where, sizeof where,
             "optimizer 'sgd': %s:6:30: optimizer.lr: must be > 0, got 0", exp);
    config_refuses(exp, "", where, NULL);
}
END_TEST

/* A registry on demand dlopens a listed file only when one of its names
 * is asked for (tp_stray's constructor writes the marker), loads every
 * file listing a name so a duplicate still names both files, and still
 * loads unlisted files (tp_good) at scan time; load_all loads the rest. */
START_TEST(on_demand_loads_named_files_only)
{
    char dir[PATH_MAX], marker[PATH_MAX + 16];
    scratch(dir, sizeof dir, "ondemand", "tp_stray", "tp_dup_a", "tp_dup_b",
            "tp_good", NULL);
    snprintf(marker, sizeof marker, "%s/marker", dir);
    unlink(marker);
    ck_assert_int_eq(setenv("DGM_TEST_STRAY_MARKER", marker, 1), 0);
    dgm_registry *r = registry_on(dir);
    dgm_registry_set_on_demand(r, true);
    ck_assert_int_eq(dgm_registry_scan(r), 0);
    ck_assert_int_ne(access(marker, F_OK), 0);
    /* tp_good lists nothing: loaded by the scan, as before. */
    ck_assert_int_eq(dgm_registry_count(r), 2);
    assert_good_found(r);
    ck_assert_int_ne(access(marker, F_OK), 0);
    const dgm_plugin_desc *d;
    const char *file;
    ck_assert_int_eq(dgm_registry_find(r, 0, "dup_thing", &d, NULL), DGM_EDUP);
    ck_assert_contains(dgm_last_error(), "tp_dup_a.so");
    ck_assert_contains(dgm_last_error(), "tp_dup_b.so");
    ck_assert_int_ne(access(marker, F_OK), 0);
    ck_assert_int_eq(
        dgm_registry_find(r, DGM_KIND_BLOCK, "stray_block", &d, &file), 0);
    ck_assert(ends_with(file, "/tp_stray.so"));
    ck_assert_int_eq(access(marker, F_OK), 0);
    ck_assert_int_eq(dgm_registry_count(r), 5);
    dgm_registry_free(r);

    /* load_all loads every listed file. A copy in another folder: the
     * first may stay mapped (DGM_NO_DLCLOSE, sanitizer builds), and its
     * constructor would not run again. */
    scratch(dir, sizeof dir, "ondemand2", "tp_stray", "tp_dup_a", "tp_dup_b",
            "tp_good", NULL);
    unlink(marker);
    r = registry_on(dir);
    dgm_registry_set_on_demand(r, true);
    ck_assert_int_eq(dgm_registry_scan(r), 0);
    ck_assert_int_ne(access(marker, F_OK), 0);
    ck_assert_int_eq(dgm_registry_load_all(r), 1); /* the duplicate */
    ck_assert_int_eq(access(marker, F_OK), 0);
    ck_assert_int_eq(dgm_registry_count(r), 5);
    dgm_registry_free(r);
    unsetenv("DGM_TEST_STRAY_MARKER");
}
END_TEST

/* `dgm config` and `dgm run` never dlopen a stray plugin on the search
 * path that the experiment does not name; `dgm plugins` lists it. */
START_TEST(cli_skips_stray_plugin)
{
    char exp[PATH_MAX], dir[PATH_MAX], marker[PATH_MAX + 16];
    char env[4 * PATH_MAX], args[3 * PATH_MAX], out[65536], err[8192];
    write_check_experiment(exp, sizeof exp, "stray", "{plugin: sgd, lr: 0.1}",
                           NULL);
    scratch(dir, sizeof dir, "stray", "tp_stray", NULL);
    snprintf(marker, sizeof marker, "%s/marker", dir);
    snprintf(env, sizeof env,
             "COLUMNS=1000 DGM_TEST_STRAY_MARKER='%s' DGM_PLUGIN_PATH='%s'",
             marker, dir);
    unlink(marker);
    snprintf(args, sizeof args, "config '%s'", exp);
    int rc = run_dgm_env(env, args, out, sizeof out, err, sizeof err);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, err);
    ck_assert_contains(out, "check_loss"); /* it did read the experiment */
    ck_assert_msg(access(marker, F_OK) != 0, "dgm config loaded tp_stray");
    /* dgm run gets as far as the data (there is none): the plugins named
     * by the experiment are loaded by then, the stray one is not. */
    snprintf(args, sizeof args, "run '%s' --runs '%s/runs'", exp, dir);
    rc = run_dgm_env(env, args, out, sizeof out, err, sizeof err);
    ck_assert_msg(rc != 0, "dgm run without data succeeded: %s", out);
    ck_assert_contains(err, "no-data");
    ck_assert_msg(access(marker, F_OK) != 0, "dgm run loaded tp_stray");
    /* The experiment names it: loaded. */
    snprintf(args, sizeof args,
             "config '%s' 'model.encoder={plugin: stray_block}'", exp);
    rc = run_dgm_env(env, args, out, sizeof out, err, sizeof err);
    ck_assert_int_eq(access(marker, F_OK), 0);
    unlink(marker);
    /* dgm plugins lists everything. */
    rc = run_dgm_env(env, "plugins", out, sizeof out, err, sizeof err);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, err);
    ck_assert_contains(out, "stray_block");
    ck_assert_int_eq(access(marker, F_OK), 0);
}
END_TEST

START_TEST(config_runs_loss_checks)
{
    char exp[PATH_MAX], args[2 * PATH_MAX], out[65536], err[8192];
    write_check_experiment(exp, sizeof exp, "cfgloss", "{plugin: adam}", NULL);
    snprintf(args, sizeof args, "config '%s'", exp);
    ck_assert_msg(run_dgm(args, out, sizeof out, err, sizeof err) == 0, "%s",
                  err);
    config_refuses(exp, "objective[1].limit=11", "loss 'check_loss': ",
                   "objective[1].limit: at most 10, got 11", NULL);
    /* A check that fails without a message is still reported, as the
     * plugin's fault. */
    config_refuses(exp, "objective[1].limit=7",
                   "loss 'check_loss': check returned -6 (DGM_ECONFIG) "
                   "without a message (a plugin bug)",
                   NULL);
    /* Located in the file when the value is there. */
    write_check_experiment(exp, sizeof exp, "cfgloss", "{plugin: adam}",
                           "phases: {train: {objective: [{loss: check_loss, "
                           "inputs: [mu], limit: 12}]}}\n");
    char where[PATH_MAX + 64];
    snprintf(where, sizeof where, "loss 'check_loss': %s:10:", exp);
    config_refuses(exp, "", where, "limit: at most 10, got 12", NULL);
}
END_TEST

START_TEST(sweep_dry_run_runs_checks)
{
    char exp[PATH_MAX], args[4 * PATH_MAX], out[65536], err[8192];
    char sd[PATH_MAX + 16];
    write_check_experiment(exp, sizeof exp, "sweepchk",
                           "{plugin: sgd, lr: 0.1}",
                           "sweep: {grid: {optimizer.lr: [0.1, 0, 0.01]}}\n");
    snprintf(sd, sizeof sd, "%s.sweep", exp);
    snprintf(args, sizeof args, "sweep '%s' --dry-run --sweep-dir '%s'", exp,
             sd);
    int rc = run_dgm(args, out, sizeof out, err, sizeof err);
    ck_assert_msg(rc == 2, "exit %d: %s%s", rc, out, err);
    ck_assert_contains(err, "trial 1 (001-lr=0)");
    ck_assert_contains(err, "optimizer 'sgd': ");
    ck_assert_contains(err, "optimizer.lr: must be > 0, got 0");
    ck_assert_contains(err, "1 of 3 trials are invalid");
    ck_assert_ptr_null(strstr(err, "trial 0 "));
    ck_assert_ptr_null(strstr(err, "trial 2 "));
    ck_assert_int_ne(access(sd, F_OK), 0);
    /* Without the bad value every trial is valid. */
    write_check_experiment(exp, sizeof exp, "sweepchk",
                           "{plugin: sgd, lr: 0.1}",
                           "sweep: {grid: {optimizer.lr: [0.1, 0.01]}}\n");
    rc = run_dgm(args, out, sizeof out, err, sizeof err);
    ck_assert_msg(rc == 0, "exit %d: %s%s", rc, out, err);
    ck_assert_contains(out, "2 trials, all valid");
}
END_TEST

static Suite *registry_suite(void)
{
    Suite *s = suite_create("registry");
    TCase *tc = tcase_create("scan");
    tcase_add_test(tc, scan_good);
    tcase_add_test(tc, rescan_is_idempotent);
    tcase_add_test(tc, whole_test_folder);
    tcase_add_test(tc, shipped_plugins_load);
    suite_add_tcase(s, tc);
    tc = tcase_create("refusals");
    tcase_add_loop_test(tc, refused, 0,
                        (int)(sizeof refusals / sizeof refusals[0]));
    suite_add_tcase(s, tc);
    tc = tcase_create("lookup");
    tcase_add_test(tc, duplicate_names);
    tcase_add_test(tc, on_demand_loads_named_files_only);
    tcase_add_test(tc, not_found_lists_search_path);
    tcase_add_test(tc, wrong_kind);
    tcase_add_test(tc, find_by_path_on_demand);
    suite_add_tcase(s, tc);
    tc = tcase_create("plugin_errors");
    tcase_add_test(tc, create_error_survives);
    suite_add_tcase(s, tc);
    tc = tcase_create("search_path");
    tcase_add_test(tc, env_and_default_path);
    tcase_add_test(tc, kind_names);
    suite_add_tcase(s, tc);
    tc = tcase_create("cli");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, cli_list);
    tcase_add_test(tc, cli_show);
    tcase_add_test(tc, cli_list_fits_width);
    suite_add_tcase(s, tc);
    tc = tcase_create("host_promises");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, host_setup, host_teardown);
    tcase_add_test(tc, block_output_shape_checked);
    tcase_add_test(tc, scalar_loss_evaluates);
    tcase_add_test(tc, optimizer_step_gets_trainable_weights);
    suite_add_tcase(s, tc);
    tc = tcase_create("config_check");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, config_runs_optimizer_checks);
    tcase_add_test(tc, config_runs_loss_checks);
    tcase_add_test(tc, sweep_dry_run_runs_checks);
    tcase_add_test(tc, cli_skips_stray_plugin);
    tcase_add_test(tc, vars_copy_names);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(registry_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
