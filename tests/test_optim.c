/* test_optim.c - the optimizer plugins against PyTorch 1.13, the learning-
 * rate schedules and gradient clipping (framework/src/host/schedule.c).
 *
 * Reference numbers: tests/reference/optim.txt, made by
 *     /usr/bin/python3 tests/reference/gen_optim.py > tests/reference/optim.txt
 * (rerun it after changing a case there; the initial values and gradients
 * below must stay the formulas that script uses). */
#include <check.h>
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ck_run.h"
#include "dgm/dgm.h"
#include "schedule.h"

#define REF_FILE DGM_SOURCE_DIR "/tests/reference/optim.txt"

/* ---- helpers ------------------------------------------------------------ */

typedef struct loaded {
    void *so;
    const dgm_plugin_desc *desc;
} loaded;

/* dlopen DGM_PLUGIN_DIR/<file> and find the descriptor called name. */
static loaded load_plugin(const char *file, const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", DGM_PLUGIN_DIR, file);
    loaded l = {dlopen(path, RTLD_NOW | RTLD_LOCAL), NULL};
    ck_assert_msg(l.so, "dlopen %s: %s", path, dlerror());
    dgm_plugin_query_fn q =
        (dgm_plugin_query_fn)dlsym(l.so, DGM_PLUGIN_QUERY_SYMBOL);
    ck_assert_msg(q, "%s has no %s", path, DGM_PLUGIN_QUERY_SYMBOL);
    for (uint32_t i = 0; q(i); i++)
        if (!strcmp(q(i)->name, name))
            l.desc = q(i);
    ck_assert_msg(l.desc, "%s does not carry '%s'", path, name);
    ck_assert_int_eq(l.desc->abi_major, DGM_ABI_MAJOR);
    ck_assert_int_eq(l.desc->size, sizeof(dgm_plugin_desc));
    ck_assert_int_eq(l.desc->kind, DGM_KIND_OPTIMIZER);
    return l;
}

static const char *file_of(const char *plugin)
{
    if (!strcmp(plugin, "sgd"))
        return "optimizers_sgd.so";
    if (!strcmp(plugin, "rmsprop"))
        return "optimizers_rmsprop.so";
    return "optimizers_adam.so"; /* adam and adamw */
}

/* Parse YAML text and validate it against the plugin's schema. */
static dgm_config *make_cfg(const char *text, const dgm_plugin_desc *d)
{
    dgm_config *root = NULL;
    int rc = dgm_config_parse(&root, text, "test.yaml");
    ck_assert_msg(rc == 0, "parse '%s': %s", text, dgm_last_error());
    rc =
        dgm_config_validate(root, d->params, d->name, dgm__optimizer_host_keys);
    ck_assert_msg(rc == 0, "validate '%s': %s", text, dgm_last_error());
    return root;
}

static bool has_slot(const dgm_param *p, const char *name)
{
    for (int i = 0; i < dgm_param_slot_count(p); i++) {
        const char *s = NULL;
        if (dgm_param_slot_at(p, i, &s) && s && !strcmp(s, name))
            return true;
    }
    return false;
}

/* The formulas of gen_optim.py: exact binary fractions. */
static float init_value(int j, int i)
{
    return (float)(((i * 5 + j * 2) % 9 - 4) / 8.0);
}

static float grad_value(int j, int i, int t)
{
    return (float)(((i * 7 + t * 3 + j * 5) % 11 - 5) / 4.0);
}

static bool close_to(double got, double want, double rel)
{
    return fabs(got - want) <= rel * fabs(want) + 1e-7;
}

/* Compare n floats of t with the numbers on a reference line. */
static void expect_line(const dgm_tensor *t, const char *nums, const char *what,
                        double rel)
{
    const float *v = dgm_tensor_f32(t);
    int64_t n = dgm_tensor_numel(t);
    char *end = NULL;
    for (int64_t i = 0; i < n; i++) {
        double want = strtod(nums, &end);
        ck_assert_msg(end != nums, "%s: reference has fewer than %lld values",
                      what, (long long)n);
        nums = end;
        ck_assert_msg(close_to(v[i], want, rel),
                      "%s[%lld]: got %.9g, torch %.9g", what, (long long)i,
                      v[i], want);
    }
}

/* Run every case of REF_FILE whose plugin is `plugin`; returns how many. */
static int run_reference_cases(const char *plugin)
{
    FILE *f = fopen(REF_FILE, "r");
    ck_assert_msg(f, "cannot open %s", REF_FILE);
    char line[4096];
    int n_cases = 0;
    while (fgets(line, sizeof line, f)) {
        char name[64], plug[32];
        int off = 0;
        if (sscanf(line, "case %63s %31s %n", name, plug, &off) != 2 ||
            strcmp(plug, plugin))
            continue;
        line[strcspn(line, "\n")] = 0;
        const char *yaml = line + off;
        /* PyTorch's CPU kernels use fused multiply-adds, dgm's plain C does
         * not: a few ulp apart per step. Centered RMSprop's sq - ga^2
         * cancels and magnifies that to ~1e-5 (checked by emulating FMA in
         * numpy, which then matches torch to the last bit). */
        const double rel = strstr(yaml, "centered: true") ? 3e-5 : 2e-6;
        loaded l = load_plugin(file_of(plugin), plugin);
        dgm_config *cfg = make_cfg(yaml, l.desc);
        const dgm_optimizer_iface *oi = l.desc->iface.optimizer;
        void *self = NULL;
        ck_assert_msg(oi->create(&self, cfg) == 0, "%s: %s", name,
                      dgm_last_error());

        dgm_params *set = dgm_params_new();
        dgm_param *p[2], *frozen, *buffer;
        const int64_t s0[1] = {7}, s1[2] = {2, 2}, s2[1] = {3};
        ck_assert_int_eq(
            dgm_params_add(set, "p0", DGM_ROLE_WEIGHT, 1, s0, &p[0]), 0);
        ck_assert_int_eq(
            dgm_params_add(set, "p1", DGM_ROLE_WEIGHT, 2, s1, &p[1]), 0);
        ck_assert_int_eq(
            dgm_params_add(set, "frozen", DGM_ROLE_WEIGHT, 1, s2, &frozen), 0);
        ck_assert_int_eq(
            dgm_params_add(set, "buffer", DGM_ROLE_BUFFER, 1, s2, &buffer), 0);
        frozen->frozen = true;
        for (int j = 0; j < 2; j++)
            for (int64_t i = 0; i < dgm_tensor_numel(p[j]->value); i++)
                dgm_tensor_f32(p[j]->value)[i] = init_value(j, (int)i);
        for (int i = 0; i < 3; i++) {
            dgm_tensor_f32(frozen->value)[i] = (float)(i + 1);
            dgm_tensor_f32(frozen->grad)[i] = 5.0f;
            dgm_tensor_f32(buffer->value)[i] = (float)(10 + i);
        }
        ck_assert_ptr_null(buffer->grad);
        /* Mixed order, as a host's phase list may be. */
        dgm_param *list[4] = {p[0], frozen, p[1], buffer};

        int t = 0;
        while (fgets(line, sizeof line, f) && strncmp(line, "end", 3)) {
            double lr;
            int step;
            char slot_name[64];
            int j;
            if (sscanf(line, "step %d %lf", &step, &lr) == 2) {
                t = step;
                for (int k = 0; k < 2; k++)
                    for (int64_t i = 0; i < dgm_tensor_numel(p[k]->grad); i++)
                        dgm_tensor_f32(p[k]->grad)[i] =
                            grad_value(k, (int)i, t);
                int rc = oi->step(self, list, 4, lr, t);
                ck_assert_msg(rc == 0, "%s step %d: %s", name, t,
                              dgm_last_error());
            } else if (sscanf(line, "p%d %n", &j, &off) == 1 && j >= 0 &&
                       j < 2) {
                char what[128];
                snprintf(what, sizeof what, "%s step %d p%d", name, t, j);
                expect_line(p[j]->value, line + off, what, rel);
            } else if (sscanf(line, "slot p%d %63s %n", &j, slot_name, &off) ==
                       2) {
                char what[160];
                snprintf(what, sizeof what, "%s: slot p%d.%s", name, j,
                         slot_name);
                ck_assert_msg(has_slot(p[j], slot_name), "%s missing", what);
                expect_line(dgm_param_slot(p[j], slot_name), line + off, what,
                            rel);
            }
        }
        ck_assert_int_ge(t, 3);
        /* No slot torch does not have: the file lists every state tensor
         * of p0 (sgd without momentum has none). */
        rewind(f);
        int listed = 0;
        char l2[4096];
        bool in_case = false;
        while (fgets(l2, sizeof l2, f)) {
            char nm[64], pl[32];
            if (sscanf(l2, "case %63s %31s", nm, pl) == 2)
                in_case = !strcmp(nm, name);
            else if (in_case && !strncmp(l2, "slot p0 ", 8))
                listed++;
            else if (in_case && !strncmp(l2, "end", 3))
                break;
        }
        ck_assert_int_eq(dgm_param_slot_count(p[0]), listed);
        /* Frozen and gradient-less parameters: untouched, no state. */
        for (int i = 0; i < 3; i++) {
            ck_assert_float_eq(dgm_tensor_f32(frozen->value)[i],
                               (float)(i + 1));
            ck_assert_float_eq(dgm_tensor_f32(frozen->grad)[i], 5.0f);
            ck_assert_float_eq(dgm_tensor_f32(buffer->value)[i],
                               (float)(10 + i));
        }
        ck_assert_int_eq(dgm_param_slot_count(frozen), 0);
        ck_assert_int_eq(dgm_param_slot_count(buffer), 0);

        oi->destroy(self);
        dgm_params_free(set);
        dgm_config_free(cfg);
        dlclose(l.so);
        n_cases++;
    }
    fclose(f);
    return n_cases;
}

/* Create with a config that must fail; returns the code, self stays NULL.
 * The plugin's `check` slot (what `dgm config` calls) must refuse the
 * same config with the same code and message. */
static int create_fails(const char *plugin, const char *yaml)
{
    loaded l = load_plugin(file_of(plugin), plugin);
    dgm_config *cfg = make_cfg(yaml, l.desc);
    const dgm_optimizer_iface *oi = l.desc->iface.optimizer;
    ck_assert_ptr_nonnull(oi->check);
    dgm_error_clear();
    int checked = oi->check(cfg);
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", dgm_last_error());
    void *self = NULL;
    dgm_error_clear();
    int rc = oi->create(&self, cfg);
    ck_assert_ptr_null(self);
    ck_assert_int_eq(checked, rc);
    ck_assert_str_eq(msg, dgm_last_error());
    dgm_config_free(cfg);
    dlclose(l.so);
    return rc;
}

/* ---- descriptors -------------------------------------------------------- */

START_TEST(test_descriptors)
{
    const char *names[] = {"sgd", "adam", "adamw", "rmsprop"};
    for (int k = 0; k < 4; k++) {
        loaded l = load_plugin(file_of(names[k]), names[k]);
        const dgm_optimizer_iface *oi = l.desc->iface.optimizer;
        ck_assert_ptr_nonnull(oi->create);
        ck_assert_ptr_nonnull(oi->step);
        ck_assert_ptr_nonnull(oi->destroy);
        ck_assert_ptr_nonnull(oi->check);
        /* The defaults pass the check. */
        dgm_config *cfg = make_cfg("{}", l.desc);
        ck_assert_msg(oi->check(cfg) == 0, "%s: %s", names[k],
                      dgm_last_error());
        dgm_config_free(cfg);
        /* The host reads the base rate as dgm_cfg_float(cfg, "lr"). */
        bool lr = false;
        for (const dgm_param_spec *s = l.desc->params; s->name; s++) {
            if (!strcmp(s->name, "lr"))
                lr = s->type == DGM_P_FLOAT && s->def;
            /* No plugin key may shadow a host key. */
            for (int h = 0; dgm__optimizer_host_keys[h]; h++)
                ck_assert_str_ne(s->name, dgm__optimizer_host_keys[h]);
        }
        ck_assert_msg(lr, "%s has no float `lr` with a default", names[k]);
        dlclose(l.so);
    }
    /* adam.so carries exactly adam and adamw. */
    void *so = dlopen(DGM_PLUGIN_DIR "/optimizers_adam.so", RTLD_NOW);
    ck_assert_ptr_nonnull(so);
    dgm_plugin_query_fn q = (dgm_plugin_query_fn)dlsym(so, "dgm_plugin_query");
    ck_assert_str_eq(q(0)->name, "adam");
    ck_assert_str_eq(q(1)->name, "adamw");
    ck_assert_ptr_null(q(2));
    dlclose(so);
}
END_TEST

/* ---- against PyTorch ---------------------------------------------------- */

START_TEST(test_sgd_torch)
{
    ck_assert_int_eq(run_reference_cases("sgd"), 4);
}
END_TEST

START_TEST(test_adam_torch)
{
    ck_assert_int_eq(run_reference_cases("adam"), 3);
}
END_TEST

START_TEST(test_adamw_torch)
{
    ck_assert_int_eq(run_reference_cases("adamw"), 2);
}
END_TEST

START_TEST(test_rmsprop_torch)
{
    ck_assert_int_eq(run_reference_cases("rmsprop"), 2);
}
END_TEST

/* ---- config errors ------------------------------------------------------ */

START_TEST(test_config_errors)
{
    int rc = create_fails("sgd", "{lr: 0.1, nesterov: true}");
    ck_assert_int_eq(rc, DGM_ECONFIG);
    ck_assert_int_eq(dgm_last_code(), DGM_ECONFIG);
    ck_assert_msg(strstr(dgm_last_error(), "nesterov") &&
                      strstr(dgm_last_error(), "test.yaml:1:"),
                  "message: %s", dgm_last_error());

    rc = create_fails(
        "sgd", "{lr: 0.1, momentum: 0.9, dampening: 0.1, nesterov: true}");
    ck_assert_int_eq(rc, DGM_ECONFIG);
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "nesterov"));

    rc = create_fails("sgd", "{lr: 0}");
    ck_assert_int_eq(rc, DGM_ERANGE);
    ck_assert_msg(strstr(dgm_last_error(), "lr"), "%s", dgm_last_error());

    rc = create_fails("adam", "{beta1: 1.0}");
    ck_assert_int_eq(rc, DGM_ERANGE);
    ck_assert_msg(strstr(dgm_last_error(), "beta1"), "%s", dgm_last_error());

    rc = create_fails("adamw", "{beta2: 1}");
    ck_assert_int_eq(rc, DGM_ERANGE);
    ck_assert_msg(strstr(dgm_last_error(), "beta2"), "%s", dgm_last_error());

    rc = create_fails("rmsprop", "{lr: 0.0}");
    ck_assert_int_eq(rc, DGM_ERANGE);
    ck_assert_msg(strstr(dgm_last_error(), "lr"), "%s", dgm_last_error());
}
END_TEST

START_TEST(test_defaults)
{
    /* Validation fills the documented defaults in. */
    loaded l = load_plugin("optimizers_adam.so", "adamw");
    dgm_config *cfg = make_cfg("{amsgrad: true}", l.desc);
    ck_assert_double_eq_tol(dgm_cfg_float(cfg, "lr"), 1e-3, 1e-15);
    ck_assert_double_eq_tol(dgm_cfg_float(cfg, "weight_decay"), 0.01, 1e-15);
    ck_assert_double_eq_tol(dgm_cfg_float(cfg, "beta2"), 0.999, 1e-15);
    dgm_config_free(cfg);
    dlclose(l.so);
    l = load_plugin("optimizers_sgd.so", "sgd");
    cfg = make_cfg("{momentum: 0.5}", l.desc);
    ck_assert_double_eq_tol(dgm_cfg_float(cfg, "lr"), 0.01, 1e-15);
    ck_assert(!dgm_cfg_bool(cfg, "nesterov"));
    dgm_config_free(cfg);
    dlclose(l.so);
}
END_TEST

START_TEST(test_bad_step)
{
    loaded l = load_plugin("optimizers_adam.so", "adam");
    dgm_config *cfg = make_cfg("{lr: 0.1}", l.desc);
    const dgm_optimizer_iface *oi = l.desc->iface.optimizer;
    void *self = NULL;
    ck_assert_int_eq(oi->create(&self, cfg), 0);
    dgm_params *set = dgm_params_new();
    dgm_param *p;
    const int64_t s[1] = {2};
    ck_assert_int_eq(dgm_params_add(set, "w", DGM_ROLE_WEIGHT, 1, s, &p), 0);
    dgm_tensor_f32(p->grad)[0] = 1.0f;
    /* t is 1-based: 0 would divide by a zero bias correction. */
    ck_assert_int_eq(oi->step(self, &p, 1, 0.1, 0), DGM_EINVAL);
    ck_assert_ptr_nonnull(strstr(dgm_last_error(), "adam"));
    ck_assert_float_eq(dgm_tensor_f32(p->value)[0], 0.0f);
    ck_assert_int_eq(dgm_param_slot_count(p), 0);
    /* The first Adam step moves each weight by lr * sign(grad) (up to
     * eps); a zero gradient leaves its weight. */
    ck_assert_int_eq(oi->step(self, &p, 1, 0.1, 1), 0);
    ck_assert_double_eq_tol(dgm_tensor_f32(p->value)[0], -0.1, 1e-6);
    ck_assert_float_eq(dgm_tensor_f32(p->value)[1], 0.0f);
    oi->destroy(self);
    dgm_params_free(set);
    dgm_config_free(cfg);
    dlclose(l.so);
}
END_TEST

/* Adam's update of one element over t = 1..3 as test_adam_group_pass's
 * gradients drive it, in double (the formulas of torch.optim.Adam/AdamW):
 * a check of each element independent of how the plugin splits the work. */
static double adam_ref(int c, int j, int64_t i)
{
    const double lr = 0.01, b1 = 0.9, b2 = 0.999, eps = 1e-8;
    double p = init_value(j, (int)(i % 1000)), m = 0, v = 0, vmax = 0;
    for (int t = 1; t <= 3; t++) {
        double g = (double)(grad_value(j, (int)(i % 1013), t) *
                            (1.0f + (float)(i % 7) / 8.0f));
        if (c == 0)
            g += 0.1 * p; /* adam, weight_decay 0.1 */
        if (c == 1)
            p *= 1 - lr * 0.01; /* adamw's default decoupled decay */
        m = b1 * m + (1 - b1) * g;
        v = b2 * v + (1 - b2) * g * g;
        vmax = v > vmax ? v : vmax;
        double bc1 = 1 - pow(b1, t), bc2 = 1 - pow(b2, t);
        p -= lr / bc1 * m / (sqrt(c == 2 ? vmax : v) / sqrt(bc2) + eps);
    }
    return p;
}

/* One step over a whole group is one parallel pass over chunks of all its
 * parameters: it must give, bit for bit, what stepping each parameter on
 * its own gives, and each element what Adam's formula gives (checked on a
 * spread of elements), with parameters of several chunks (the last one
 * short), a tiny one, and a frozen one between them left alone. */
START_TEST(test_adam_group_pass)
{
    const char *cases[][2] = {{"adam", "{lr: 0.01, weight_decay: 0.1}"},
                              {"adamw", "{lr: 0.01}"},
                              {"adam", "{lr: 0.01, amsgrad: true}"}};
    const int64_t len[4] = {40000, 5, 20000, 70001};
    for (int c = 0; c < 3; c++) {
        loaded l = load_plugin("optimizers_adam.so", cases[c][0]);
        dgm_config *cfg = make_cfg(cases[c][1], l.desc);
        const dgm_optimizer_iface *oi = l.desc->iface.optimizer;
        void *self[2] = {NULL, NULL};
        dgm_params *set[2];
        dgm_param *p[2][4];
        for (int k = 0; k < 2; k++) {
            ck_assert_int_eq(oi->create(&self[k], cfg), 0);
            set[k] = dgm_params_new();
            for (int j = 0; j < 4; j++) {
                char name[8] = {'p', (char)('0' + j), 0};
                ck_assert_int_eq(dgm_params_add(set[k], name, DGM_ROLE_WEIGHT,
                                                1, &len[j], &p[k][j]),
                                 0);
                p[k][j]->frozen = j == 2;
                for (int64_t i = 0; i < len[j]; i++)
                    dgm_tensor_f32(p[k][j]->value)[i] =
                        init_value(j, (int)(i % 1000));
            }
        }
        for (int t = 1; t <= 3; t++) {
            for (int k = 0; k < 2; k++)
                for (int j = 0; j < 4; j++)
                    for (int64_t i = 0; i < len[j]; i++)
                        dgm_tensor_f32(p[k][j]->grad)[i] =
                            grad_value(j, (int)(i % 1013), t) *
                            (1.0f + (float)(i % 7) / 8.0f);
            ck_assert_int_eq(oi->step(self[0], p[0], 4, 0.01, t), 0);
            for (int j = 0; j < 4; j++)
                ck_assert_int_eq(oi->step(self[1], &p[1][j], 1, 0.01, t), 0);
        }
        for (int j = 0; j < 4; j++) {
            ck_assert_msg(!memcmp(dgm_tensor_f32(p[0][j]->value),
                                  dgm_tensor_f32(p[1][j]->value),
                                  sizeof(float) * (size_t)len[j]),
                          "%s: parameter %d differs", cases[c][1], j);
            for (int64_t i = j == 2 ? len[j] : 0; i < len[j]; i += 1 + i / 3) {
                double want = adam_ref(c, j, i);
                ck_assert_msg(
                    close_to(dgm_tensor_f32(p[0][j]->value)[i], want, 2e-6),
                    "%s: p%d[%lld] = %.9g, formula %.9g", cases[c][1], j,
                    (long long)i, dgm_tensor_f32(p[0][j]->value)[i], want);
            }
            if (j == 2) /* frozen: untouched, no state */
                ck_assert_float_eq(dgm_tensor_f32(p[0][2]->value)[7],
                                   init_value(2, 7));
            else
                ck_assert_float_ne(dgm_tensor_f32(p[0][j]->value)[len[j] - 1],
                                   init_value(j, (int)((len[j] - 1) % 1000)));
        }
        ck_assert_int_eq(dgm_param_slot_count(p[0][2]), 0);
        for (int k = 0; k < 2; k++) {
            oi->destroy(self[k]);
            dgm_params_free(set[k]);
        }
        dgm_config_free(cfg);
        dlclose(l.so);
    }
}
END_TEST

/* ---- schedules ---------------------------------------------------------- */

static dgm__schedule sched_from(const char *yaml, int64_t total)
{
    dgm_config *root = NULL;
    ck_assert_int_eq(dgm_config_parse(&root, yaml, "opt.yaml"), 0);
    dgm__schedule s;
    int rc = dgm__schedule_from_config(&s, root, total);
    ck_assert_msg(rc == 0, "%s: %s", yaml, dgm_last_error());
    dgm_config_free(root);
    return s;
}

static int sched_fails(const char *yaml, int64_t total)
{
    dgm_config *root = NULL;
    ck_assert_int_eq(dgm_config_parse(&root, yaml, "opt.yaml"), 0);
    dgm__schedule s;
    dgm__schedule_init(&s);
    s.warmup = 77; /* must survive a failed read */
    dgm_error_clear();
    int rc = dgm__schedule_from_config(&s, root, total);
    ck_assert_int_eq(s.warmup, 77);
    dgm_config_free(root);
    return rc;
}

START_TEST(test_schedule_torch)
{
    FILE *f = fopen(REF_FILE, "r");
    ck_assert_ptr_nonnull(f);
    char line[1024];
    int n_sched = 0, n_lr = 0;
    dgm__schedule s;
    char name[32] = "";
    while (fgets(line, sizeof line, f)) {
        int off = 0;
        long long total, step;
        double want;
        if (sscanf(line, "sched %31s %lld %n", name, &total, &off) == 2) {
            line[strcspn(line, "\n")] = 0;
            s = sched_from(line + off, total);
            n_sched++;
        } else if (n_sched && sscanf(line, "lr %lld %lf", &step, &want) == 2) {
            double got = dgm__schedule_lr(&s, 0.1, step);
            ck_assert_msg(fabs(got - want) <= 1e-12 * want,
                          "%s step %lld: %.17g, torch %.17g", name, step, got,
                          want);
            n_lr++;
        }
    }
    fclose(f);
    ck_assert_int_eq(n_sched, 3);
    ck_assert_int_eq(n_lr, 33);
}
END_TEST

START_TEST(test_schedule_hand)
{
    /* Defaults: constant, no warm-up, no clipping. */
    dgm__schedule s = sched_from("{lr: 0.1}", 0);
    ck_assert_int_eq(s.kind, DGM__SCHED_CONSTANT);
    ck_assert_int_eq(s.warmup, 0);
    ck_assert(s.clip_norm == 0.0);
    ck_assert(dgm__schedule_lr(&s, 0.1, 0) == 0.1);
    ck_assert(dgm__schedule_lr(&s, 0.1, 123456) == 0.1);

    /* Warm-up from 0: base * step / warmup, then the base rate. */
    s = sched_from("{schedule: constant, warmup: 4, clip_norm: 2.5}", 0);
    ck_assert(s.clip_norm == 2.5);
    ck_assert(dgm__schedule_lr(&s, 0.2, 0) == 0.0);
    ck_assert_double_eq_tol(dgm__schedule_lr(&s, 0.2, 1), 0.05, 1e-15);
    ck_assert_double_eq_tol(dgm__schedule_lr(&s, 0.2, 3), 0.15, 1e-15);
    ck_assert(dgm__schedule_lr(&s, 0.2, 4) == 0.2);
    ck_assert(dgm__schedule_lr(&s, 0.2, 100) == 0.2);

    /* Step after a warm-up of 2 counts from the end of the warm-up. */
    s = sched_from("{schedule: step, warmup: 2, step_size: 3, gamma: 0.1}", 0);
    ck_assert_double_eq_tol(dgm__schedule_lr(&s, 1.0, 1), 0.5, 1e-15);
    ck_assert(dgm__schedule_lr(&s, 1.0, 2) == 1.0);
    ck_assert(dgm__schedule_lr(&s, 1.0, 4) == 1.0);
    ck_assert_double_eq_tol(dgm__schedule_lr(&s, 1.0, 5), 0.1, 1e-15);
    ck_assert_double_eq_tol(dgm__schedule_lr(&s, 1.0, 8), 0.01, 1e-15);
    ck_assert_double_eq_tol(dgm__schedule_lr(&s, 1.0, 11), 0.001, 1e-15);

    /* Cosine over 12 updates, 2 of warm-up: half-way (step 7) is the mean
     * of base and min_lr; at and past the end, min_lr. */
    s = sched_from("{schedule: cosine, warmup: 2, min_lr: 0.01}", 12);
    ck_assert_double_eq_tol(dgm__schedule_lr(&s, 0.2, 1), 0.1, 1e-15);
    ck_assert(dgm__schedule_lr(&s, 0.2, 2) == 0.2);
    ck_assert_double_eq_tol(dgm__schedule_lr(&s, 0.2, 7), 0.105, 1e-15);
    /* step 4: k = 2 of 10, 0.01 + 0.19 * (1 + cos(pi / 5)) / 2 */
    ck_assert_double_eq_tol(dgm__schedule_lr(&s, 0.2, 4),
                            0.01 + 0.19 * (1 + 0.80901699437494745) / 2, 1e-15);
    ck_assert(dgm__schedule_lr(&s, 0.2, 12) == 0.01);
    ck_assert(dgm__schedule_lr(&s, 0.2, 500) == 0.01);

    /* Linear from 0.3 to 0.1 over 4 updates. */
    s = sched_from("{schedule: linear, min_lr: 0.1}", 4);
    ck_assert_double_eq_tol(dgm__schedule_lr(&s, 0.3, 1), 0.25, 1e-15);
    ck_assert_double_eq_tol(dgm__schedule_lr(&s, 0.3, 2), 0.2, 1e-15);
    ck_assert(dgm__schedule_lr(&s, 0.3, 4) == 0.1);
    ck_assert(dgm__schedule_lr(&s, 0.3, 9) == 0.1);
    ck_assert_str_eq(dgm__schedule_name(s.kind), "linear");
}
END_TEST

static dgm__schedule wsched_from(const char *yaml, int64_t total, double *v)
{
    dgm_config *root = NULL;
    ck_assert_int_eq(dgm_config_parse(&root, yaml, "w.yaml"), 0);
    dgm__schedule s;
    int rc = dgm__weight_schedule_from_config(&s, v, root, total);
    ck_assert_msg(rc == 0, "%s: %s", yaml, dgm_last_error());
    dgm_config_free(root);
    return s;
}

/* Objective term weights: the lr's shapes on `value:`, and cyclical
 * annealing against Fu et al. 2019's formula worked by hand. */
START_TEST(test_weight_schedule)
{
    double v = 0;
    /* Linear warm-up of a KL weight to 1 over 10 updates. */
    dgm__schedule s = wsched_from("{warmup: 10}", 100, &v);
    ck_assert(v == 1.0);
    ck_assert(dgm__schedule_lr(&s, v, 0) == 0.0);
    ck_assert_double_eq_tol(dgm__schedule_lr(&s, v, 3), 0.3, 1e-15);
    ck_assert(dgm__schedule_lr(&s, v, 10) == 1.0);
    ck_assert(dgm__schedule_lr(&s, v, 99) == 1.0);

    /* Cyclical, 100 updates in 4 cycles of 25, rising over the first half
     * (12.5 updates) to 2: update 5 is 2 * (5 / 25) / 0.5 = 0.8; 12 is
     * 2 * 0.48 / 0.5 = 1.92; 13 holds at 2; 25 starts again at 0; 30 is
     * like 5; 99 holds. */
    s = wsched_from("{value: 2, schedule: cyclical, cycles: 4, ratio: 0.5}",
                    100, &v);
    ck_assert(v == 2.0);
    ck_assert_str_eq(dgm__schedule_name(s.kind), "cyclical");
    ck_assert(dgm__schedule_lr(&s, v, 0) == 0.0);
    ck_assert_double_eq_tol(dgm__schedule_lr(&s, v, 5), 0.8, 1e-12);
    ck_assert_double_eq_tol(dgm__schedule_lr(&s, v, 12), 1.92, 1e-12);
    ck_assert(dgm__schedule_lr(&s, v, 13) == 2.0);
    ck_assert(dgm__schedule_lr(&s, v, 24) == 2.0);
    ck_assert(dgm__schedule_lr(&s, v, 25) == 0.0);
    ck_assert_double_eq_tol(dgm__schedule_lr(&s, v, 30), 0.8, 1e-12);
    ck_assert(dgm__schedule_lr(&s, v, 99) == 2.0);
    ck_assert(dgm__schedule_lr(&s, v, 100) == 2.0);
    /* Every update of the formula, with a cycle length that is not whole
     * (10 updates in 3 cycles) and a warm-up of 2 before it. */
    s = wsched_from("{schedule: cyclical, cycles: 3, ratio: 0.8, warmup: 2}",
                    12, &v);
    for (int64_t t = 2; t < 12; t++) {
        double period = 10.0 / 3.0,
               tau = fmod((double)(t - 2), period) / period;
        double want = tau <= 0.8 ? tau / 0.8 : 1.0;
        ck_assert_double_eq_tol(dgm__schedule_lr(&s, 1.0, t), want, 1e-12);
    }
    ck_assert_double_eq_tol(dgm__schedule_lr(&s, 1.0, 1), 0.5, 1e-15);

    /* Step and cosine on a weight: value 0.5, halved every 10 updates;
     * cosine from 1 to min 0.2 over 20 (half-way: 0.6). */
    s = wsched_from("{value: 0.5, schedule: step, step_size: 10, gamma: 0.5}",
                    0, &v);
    ck_assert(dgm__schedule_lr(&s, v, 9) == 0.5);
    ck_assert(dgm__schedule_lr(&s, v, 10) == 0.25);
    ck_assert(dgm__schedule_lr(&s, v, 35) == 0.0625);
    s = wsched_from("{schedule: cosine, min: 0.2}", 20, &v);
    ck_assert_double_eq_tol(dgm__schedule_lr(&s, v, 10), 0.6, 1e-15);
    ck_assert(dgm__schedule_lr(&s, v, 20) == 0.2);

    /* Bad maps: cyclical needs the run's length; ratio in (0, 1]; the
     * lr's schedules do not know cyclical. */
    dgm_config *root = NULL;
    const char *bad[] = {"{schedule: cyclical}", "{ratio: 0}", "{ratio: 1.5}",
                         "{cycles: 0}"};
    int64_t totals[] = {0, 10, 10, 10};
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(dgm_config_parse(&root, bad[i], "w.yaml"), 0);
        int rc = dgm__weight_schedule_from_config(&s, &v, root, totals[i]);
        ck_assert_msg(rc < 0 && strstr(dgm_last_error(), "w.yaml:1:"),
                      "%s: %d %s", bad[i], rc, dgm_last_error());
        dgm_config_free(root);
    }
    ck_assert_int_eq(sched_fails("{schedule: cyclical}", 100), DGM_ERANGE);
}
END_TEST

START_TEST(test_schedule_errors)
{
    ck_assert_int_eq(sched_fails("{schedule: cosine}", 0), DGM_ECONFIG);
    ck_assert_msg(strstr(dgm_last_error(), "schedule") &&
                      strstr(dgm_last_error(), "opt.yaml:1:"),
                  "%s", dgm_last_error());
    ck_assert_int_eq(sched_fails("{schedule: linear, warmup: 10}", 10),
                     DGM_ECONFIG);
    ck_assert_msg(strstr(dgm_last_error(), "warmup"), "%s", dgm_last_error());
    ck_assert_int_eq(sched_fails("{schedule: cosin}", 100), DGM_ERANGE);
    ck_assert_msg(strstr(dgm_last_error(), "cosin") &&
                      strstr(dgm_last_error(), "schedule"),
                  "%s", dgm_last_error());
    ck_assert_int_eq(sched_fails("{warmup: -1}", 100), DGM_ERANGE);
    ck_assert_msg(strstr(dgm_last_error(), "warmup"), "%s", dgm_last_error());
    ck_assert_int_eq(sched_fails("{schedule: step, step_size: 0}", 100),
                     DGM_ERANGE);
    ck_assert_msg(strstr(dgm_last_error(), "step_size"), "%s",
                  dgm_last_error());
    ck_assert_int_eq(sched_fails("{gamma: fast}", 100), DGM_ETYPE);
    ck_assert_msg(strstr(dgm_last_error(), "gamma"), "%s", dgm_last_error());
}
END_TEST

START_TEST(test_schedule_schema)
{
    /* The host keys and the schema list the same names, and the schema
     * validates an optimizer's map when the plugin's keys are allowed. */
    int n = 0;
    for (; dgm__optimizer_host_keys[n]; n++)
        ck_assert_str_eq(dgm__schedule_schema[n].name,
                         dgm__optimizer_host_keys[n]);
    ck_assert_int_eq(n, 6);
    ck_assert_ptr_null(dgm__schedule_schema[n].name);
    dgm_config *root = NULL;
    ck_assert_int_eq(
        dgm_config_parse(&root, "{lr: 0.1, schedule: step, gamma: 0.5}", "o"),
        0);
    const char *plugin_keys[] = {"lr", NULL};
    ck_assert_int_eq(dgm_config_validate(root, dgm__schedule_schema, "schedule",
                                         plugin_keys),
                     0);
    ck_assert_int_eq(dgm_cfg_int(root, "warmup"), 0);
    ck_assert_double_eq_tol(dgm_cfg_float(root, "gamma"), 0.5, 1e-15);
    dgm__schedule s;
    ck_assert_int_eq(dgm__schedule_from_config(&s, root, 10), 0);
    ck_assert_int_eq(s.kind, DGM__SCHED_STEP);
    ck_assert_int_eq(s.step_size, 1000);
    dgm_config_free(root);
}
END_TEST

/* ---- clipping ----------------------------------------------------------- */

typedef struct clip_fixture {
    dgm_params *set;
    dgm_param *a, *b, *frozen, *buffer;
} clip_fixture;

/* Gradients a = (3, 4), b = (12): global norm 13. frozen has a large
 * gradient that must not count; buffer has none. */
static clip_fixture clip_setup(void)
{
    clip_fixture c;
    c.set = dgm_params_new();
    const int64_t s2[1] = {2}, s1[1] = {1};
    ck_assert_int_eq(dgm_params_add(c.set, "a", DGM_ROLE_WEIGHT, 1, s2, &c.a),
                     0);
    ck_assert_int_eq(dgm_params_add(c.set, "b", DGM_ROLE_WEIGHT, 1, s1, &c.b),
                     0);
    ck_assert_int_eq(
        dgm_params_add(c.set, "f", DGM_ROLE_WEIGHT, 1, s1, &c.frozen), 0);
    ck_assert_int_eq(
        dgm_params_add(c.set, "r", DGM_ROLE_BUFFER, 1, s1, &c.buffer), 0);
    c.frozen->frozen = true;
    dgm_tensor_f32(c.a->grad)[0] = 3;
    dgm_tensor_f32(c.a->grad)[1] = 4;
    dgm_tensor_f32(c.b->grad)[0] = 12;
    dgm_tensor_f32(c.frozen->grad)[0] = 100;
    return c;
}

START_TEST(test_clip)
{
    clip_fixture c = clip_setup();
    dgm_param *list[4] = {c.a, c.frozen, c.buffer, c.b};
    /* Below the limit: measured, untouched. */
    ck_assert(dgm__clip_grad_norm(list, 4, 20.0) == 13.0);
    ck_assert_float_eq(dgm_tensor_f32(c.a->grad)[1], 4.0f);
    /* 0 measures only. */
    ck_assert(dgm__clip_grad_norm(list, 4, 0.0) == 13.0);
    ck_assert_float_eq(dgm_tensor_f32(c.b->grad)[0], 12.0f);
    /* Above: scaled by max / (norm + 1e-6). */
    double coef = 6.5 / (13.0 + 1e-6);
    ck_assert(dgm__clip_grad_norm(list, 4, 6.5) == 13.0);
    ck_assert_float_eq_tol(dgm_tensor_f32(c.a->grad)[0], 3 * coef, 1e-6);
    ck_assert_float_eq_tol(dgm_tensor_f32(c.a->grad)[1], 4 * coef, 1e-6);
    ck_assert_float_eq_tol(dgm_tensor_f32(c.b->grad)[0], 12 * coef, 1e-6);
    ck_assert(dgm_tensor_f32(c.b->grad)[0] < 6.0f); /* the epsilon shows */
    ck_assert_float_eq(dgm_tensor_f32(c.frozen->grad)[0], 100.0f);
    /* Now at ~6.5: a second clip to 6.5 keeps it (coef just below 1). */
    double n2 = dgm__clip_grad_norm(list, 4, 6.5);
    ck_assert_double_eq_tol(n2, 6.5, 1e-5);
    /* A NaN gradient propagates, as in torch. */
    dgm_tensor_f32(c.a->grad)[0] = NAN;
    ck_assert(isnan(dgm__clip_grad_norm(list, 4, 1.0)));
    ck_assert(isnan(dgm_tensor_f32(c.b->grad)[0]));
    ck_assert(dgm__clip_grad_norm(list, 0, 1.0) == 0.0);
    dgm_params_free(c.set);
}
END_TEST

/* The blocked, threaded passes: parameters of 1, 17 and 100000 floats
 * (the last in 7 blocks, the last partial; enough floats for two
 * threads). The norm against a float64 sum, the clipped gradients within
 * two float roundings of g * coef, 1 and 2 threads the same bits, a norm
 * under the limit leaves every bit, a NaN anywhere reaches every
 * gradient. */
/* The last is more than the 512 blocks of 16384 floats that clipping
 * sums at a time (schedule.c). */
enum { CLIP_NP = 4 };
static const int64_t clip_sizes[CLIP_NP] = {1, 17, 100000, 512 * 16384 + 5};

static dgm_params *clip_params(dgm_param *ps[CLIP_NP], uint32_t seed)
{
    dgm_params *set = dgm_params_new();
    for (int i = 0; i < CLIP_NP; i++) {
        char name[8];
        snprintf(name, sizeof name, "p%d", i);
        ck_assert_int_eq(dgm_params_add(set, name, DGM_ROLE_WEIGHT, 1,
                                        &clip_sizes[i], &ps[i]),
                         0);
        float *g = dgm_tensor_f32(ps[i]->grad);
        for (int64_t k = 0; k < clip_sizes[i]; k++) {
            seed = seed * 1664525u + 1013904223u;
            g[k] = ((float)(seed >> 8) / (float)(1u << 24) - 0.5f) * 4.0f;
        }
    }
    return set;
}

START_TEST(test_clip_blocks_threads)
{
    dgm_param *ps[2][CLIP_NP];
    dgm_params *set[2] = {clip_params(ps[0], 7), clip_params(ps[1], 7)};
    /* compensated in long double: exact to far below the 1e-12 asked of
     * the blocked double sums over 8 M squares */
    long double acc = 0.0L, comp = 0.0L;
    for (int i = 0; i < CLIP_NP; i++)
        for (int64_t k = 0; k < clip_sizes[i]; k++) {
            const long double v = dgm_tensor_f32(ps[0][i]->grad)[k];
            const long double y = v * v - comp, t = acc + y;
            comp = (t - acc) - y;
            acc = t;
        }
    const double ref = (double)sqrtl(acc);
    /* under the limit: measured, not a bit changed */
    dgm_set_threads(2);
    ck_assert_double_eq_tol(dgm__clip_grad_norm(ps[0], CLIP_NP, 1e9), ref,
                            1e-12 * ref);
    for (int i = 0; i < CLIP_NP; i++)
        ck_assert_mem_eq(ps[0][i]->grad->data, ps[1][i]->grad->data,
                         (size_t)clip_sizes[i] * sizeof(float));
    double norm[2];
    for (int t = 0; t < 2; t++) {
        dgm_set_threads(t + 1);
        norm[t] = dgm__clip_grad_norm(ps[t], CLIP_NP, 1.0);
    }
    ck_assert_msg(norm[0] == norm[1], "norm %.17g at 1 thread, %.17g at 2",
                  norm[0], norm[1]);
    ck_assert_double_eq_tol(norm[0], ref, 1e-12 * ref);
    const double coef = 1.0 / (ref + 1e-6);
    dgm_param *orig[CLIP_NP];
    dgm_params *oset = clip_params(orig, 7);
    for (int i = 0; i < CLIP_NP; i++) {
        ck_assert_mem_eq(ps[0][i]->grad->data, ps[1][i]->grad->data,
                         (size_t)clip_sizes[i] * sizeof(float));
        int64_t k = 0; /* the first element off, if any (8 M of them) */
        for (; k < clip_sizes[i]; k++) {
            const double want = dgm_tensor_f32(orig[i]->grad)[k] * coef;
            if (!(fabs(dgm_tensor_f32(ps[0][i]->grad)[k] - want) <=
                  0x1p-23 * fabs(want)))
                break;
        }
        ck_assert_msg(
            k == clip_sizes[i], "p%d[%lld] %.9g, want %.9g", i, (long long)k,
            k < clip_sizes[i] ? dgm_tensor_f32(ps[0][i]->grad)[k] : 0.0,
            k < clip_sizes[i] ? dgm_tensor_f32(orig[i]->grad)[k] * coef : 0.0);
    }
    /* a NaN in one block of the large parameter */
    for (int t = 0; t < 2; t++) {
        dgm_set_threads(t + 1);
        dgm_tensor_f32(ps[t][2]->grad)[77777] = NAN;
        ck_assert(isnan(dgm__clip_grad_norm(ps[t], CLIP_NP, 1.0)));
        for (int i = 0; i < CLIP_NP; i++) {
            int64_t k = 0;
            while (k < clip_sizes[i] &&
                   isnan(dgm_tensor_f32(ps[t][i]->grad)[k]))
                k++;
            ck_assert_msg(k == clip_sizes[i],
                          "%d threads: p%d[%lld] is not NaN", t + 1, i,
                          (long long)k);
        }
    }
    dgm_params_free(oset);
    dgm_params_free(set[0]);
    dgm_params_free(set[1]);
}
END_TEST

static Suite *optim_suite(void)
{
    Suite *s = suite_create("optim");
    tq_case(s, "plugins", test_descriptors, test_defaults);
    tq_case(s, "torch", test_sgd_torch, test_adam_torch, test_adamw_torch,
            test_rmsprop_torch, test_bad_step, test_adam_group_pass);
    tq_case(s, "config_errors", test_config_errors);
    tq_case(s, "schedules", test_schedule_torch, test_schedule_hand,
            test_weight_schedule, test_schedule_errors, test_schedule_schema);
    tq_case(s, "clipping", test_clip, test_clip_blocks_threads);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(optim_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
