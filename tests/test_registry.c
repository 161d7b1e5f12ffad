/* test_registry.c - the plugin registry: loading, every refusal (exact
 * code, message naming the file), lookup by name, path and kind, on-demand
 * loading and the search path. Each test copies the test plugins it needs
 * into a scratch folder of its own (tests/support/registry_fixture.h), so
 * refusals do not mix. The `dgm plugins` and `dgm config` cases and the
 * host's promises are in test_registry_cli.c. */
#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ck_run.h"
#include "dgm/dgm.h"
#include "dgm/host.h"
#include "host_internal.h"
#include "registry_fixture.h"

/* ---- scratch registries ------------------------------------------------ */

static dgm_registry *registry_on(const char *dir)
{
    dgm_registry *r;
    ck_assert_int_eq(dgm_registry_new(&r), 0);
    ck_assert_int_eq(dgm_registry_add_dir(r, dir), 0);
    return r;
}
/* The good plugins are still usable. */
static void assert_good_found(dgm_registry *r)
{
    const dgm_plugin_desc *d = NULL;
    const char *file = NULL;
    ck_assert_int_eq(
        dgm_registry_find(r, DGM_KIND_LOSS, "good_loss", &d, &file), 0);
    ck_assert_str_eq(d->name, "good_loss");
    ck_assert_int_eq(d->kind, DGM_KIND_LOSS);
    ck_assert(tc_ends_with(file, "/tp_good.so"));
}

/* ---- loading ---------------------------------------------------------- */

START_TEST(scan_good)
{
    char dir[PATH_MAX];
    tc_scratch(dir, sizeof dir, "good", "tp_good", NULL);
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
    tc_scratch(dir, sizeof dir, "rescan", "tp_good", "tp_nosym", NULL);
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
    tc_scratch(dir, sizeof dir, "all", "tp_abi_major", "tp_abi_minor",
               "tp_abi_layout", "tp_bad_default", "tp_short_iface",
               "tp_bad_kind", "tp_bad_name", "tp_bad_param", "tp_create_fails",
               "tp_dup_a", "tp_dup_b", "tp_good", "tp_nosym", "tp_small", NULL);
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
    {"tp_abi_major", DGM_EABI, "plugin ABI 3.0, host ABI 2.5"},
    {"tp_abi_minor", DGM_EABI, "plugin ABI 2.99, host ABI 2.5"},
    {"tp_small", DGM_EABI, "descriptor 0 is 16 bytes, ABI 2.5 needs at least"},
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
     "plugin 'short_iface' (loss): interface is 40 bytes, ABI 2.5 needs at "
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
    {"tp_ds_prefetch", DGM_EFORMAT,
     "plugin 'ds_prefetch' (dataset): parameter 'prefetch' clashes with a "
     "key the host reads from every dataset's map (reserved: plugin, "
     "prefetch); rename it"},
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
    tc_scratch(dir, sizeof dir, tag, "tp_good", t->plugin, NULL);
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
    tc_scratch(dir, sizeof dir, "dup", "tp_dup_a", "tp_dup_b", "tp_good", NULL);
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
    tc_scratch(dir, sizeof dir, "notfound", "tp_good", NULL);
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
    tc_scratch(dir, sizeof dir, "kind", "tp_good", NULL);
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
    tc_scratch(dir, sizeof dir, "create", "tp_create_fails", NULL);
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

/* A registry on demand dlopens a listed file only when one of its names
 * is asked for (tp_stray's constructor writes the marker), loads every
 * file listing a name so a duplicate still names both files, and still
 * loads unlisted files (tp_good) at scan time; load_all loads the rest. */
START_TEST(on_demand_loads_named_files_only)
{
    char dir[PATH_MAX], marker[PATH_MAX + 16];
    tc_scratch(dir, sizeof dir, "ondemand", "tp_stray", "tp_dup_a", "tp_dup_b",
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
    ck_assert(tc_ends_with(file, "/tp_stray.so"));
    ck_assert_int_eq(access(marker, F_OK), 0);
    ck_assert_int_eq(dgm_registry_count(r), 5);
    dgm_registry_free(r);

    /* load_all loads every listed file. A copy in another folder: the
     * first may stay mapped (DGM_NO_DLCLOSE, sanitizer builds), and its
     * constructor would not run again. */
    tc_scratch(dir, sizeof dir, "ondemand2", "tp_stray", "tp_dup_a", "tp_dup_b",
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

static Suite *registry_suite(void)
{
    Suite *s = suite_create("registry");
    tq_case(s, "scan", scan_good, rescan_is_idempotent, whole_test_folder,
            shipped_plugins_load);
    TCase *tc = tcase_create("refusals");
    tcase_add_loop_test(tc, refused, 0,
                        (int)(sizeof refusals / sizeof refusals[0]));
    suite_add_tcase(s, tc);
    tq_case(s, "lookup", duplicate_names, on_demand_loads_named_files_only,
            not_found_lists_search_path, wrong_kind, find_by_path_on_demand);
    tq_case(s, "plugin_errors", create_error_survives);
    tq_case(s, "search_path", env_and_default_path, kind_names);
    tq_case(s, "vars", vars_copy_names);
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
