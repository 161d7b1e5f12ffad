/* test_sweep.c - sweeps: expansion of grid, zip, random and seeds (counts,
 * contents, random draws against dgm_rng), the bounds on their size,
 * refused sections and the Slurm options read. Running them through the
 * executable is test_sweep_launch.c's. */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "ck_run.h"
#include "dgm/dgm.h"
#include "sweep.h"

/* ---- expansion ---------------------------------------------------------- */

static dgm_config *parse(const char *text)
{
    dgm_config *c = NULL;
    int rc = dgm_config_parse(&c, text, "t.yaml");
    ck_assert_msg(rc == 0, "%s", dgm_last_error());
    return c;
}

static dgm__sweep *expand(const char *text)
{
    dgm_config *c = parse(text);
    dgm__sweep *s = NULL;
    int rc = dgm__sweep_expand(&s, c);
    ck_assert_msg(rc == 0, "%s", dgm_last_error());
    dgm_config_free(c);
    return s;
}

static int expand_fails(const char *text)
{
    dgm_config *c = parse(text);
    dgm__sweep *s = NULL;
    int rc = dgm__sweep_expand(&s, c);
    ck_assert(s == NULL);
    dgm_config_free(c);
    return rc;
}

/* The trial's override texts joined by " ". */
static const char *overrides(const dgm__sweep *s, int i)
{
    static char buf[4096];
    buf[0] = '\0';
    for (int k = 0; k < s->trials[i].n_assign; k++) {
        char *t = dgm__sweep_override_text(&s->trials[i].assign[k]);
        if (k)
            strcat(buf, " ");
        strcat(buf, t);
        free(t);
    }
    return buf;
}

static const char base[] = "name: x\n"
                           "seed: 7\n"
                           "model:\n"
                           "  plugin: vae\n"
                           "  latent: 4\n"
                           "  decoder: {plugin: mlp, hidden: [32], act: "
                           "relu}\n"
                           "optimizer: {plugin: adam, lr: 0.01}\n";

START_TEST(grid_is_a_product_first_key_slowest)
{
    char text[2048];
    snprintf(text, sizeof text,
             "%ssweep:\n"
             "  grid:\n"
             "    model.latent: [2, 10, 20]\n"
             "    optimizer.lr: [0.1, 1.0e-3]\n"
             "  seeds: 2\n",
             base);
    dgm__sweep *s = expand(text);
    ck_assert_int_eq(s->n_trials, 12);
    ck_assert_str_eq(overrides(s, 0), "model.latent=2 optimizer.lr=0.1 seed=0");
    ck_assert_str_eq(overrides(s, 1), "model.latent=2 optimizer.lr=0.1 seed=1");
    ck_assert_str_eq(overrides(s, 2),
                     "model.latent=2 optimizer.lr=1.0e-3 seed=0");
    ck_assert_str_eq(overrides(s, 11),
                     "model.latent=20 optimizer.lr=1.0e-3 seed=1");
    ck_assert_str_eq(s->trials[0].name, "000-latent=2-lr=0.1-seed=0");
    ck_assert_str_eq(s->trials[11].name, "011-latent=20-lr=1.0e-3-seed=1");
    /* every combination exactly once */
    for (int i = 0; i < 12; i++)
        for (int j = 0; j < i; j++)
            ck_assert_str_ne(s->trials[i].name + 3, s->trials[j].name + 3);
    /* trial configs: the values set, the rest of the base kept, no sweep */
    dgm_config *c;
    ck_assert_int_eq(dgm__sweep_trial_config(s, 7, &c), 0);
    int64_t v;
    double f;
    ck_assert_int_eq(dgm_cfg_to_int(dgm_cfg_get(c, "model.latent"), &v), 0);
    ck_assert_int_eq(v, 10);
    ck_assert_int_eq(dgm_cfg_to_float(dgm_cfg_get(c, "optimizer.lr"), &f), 0);
    ck_assert(f == 1.0e-3);
    ck_assert_int_eq(dgm_cfg_to_int(dgm_cfg_get(c, "seed"), &v), 0);
    ck_assert_int_eq(v, 1);
    ck_assert_str_eq(dgm_cfg_text(dgm_cfg_get(c, "model.decoder.act")), "relu");
    ck_assert(dgm_cfg_get(c, "sweep") == NULL);
    dgm_config_free(c);
    ck_assert_int_eq(dgm__sweep_trial_config(s, 12, &c), DGM_EINVAL);
    dgm__sweep_free(s);
}
END_TEST

START_TEST(whole_plugin_maps_swap)
{
    char text[2048];
    snprintf(text, sizeof text,
             "%ssweep:\n"
             "  grid:\n"
             "    model.decoder:\n"
             "      - {plugin: mlp, hidden: [8, 8]}\n"
             "      - {plugin: conv_decoder, base: 16, note: \"a, b\"}\n"
             "      - {plugin: mlp, hidden: [64]}\n",
             base);
    dgm__sweep *s = expand(text);
    ck_assert_int_eq(s->n_trials, 3);
    ck_assert_str_eq(s->trials[0].name, "000-decoder=mlp_0");
    ck_assert_str_eq(s->trials[1].name, "001-decoder=conv_decoder_1");
    ck_assert_str_eq(overrides(s, 1),
                     "model.decoder={plugin: conv_decoder, base: 16, note: "
                     "\"a, b\"}");
    dgm_config *c;
    ck_assert_int_eq(dgm__sweep_trial_config(s, 1, &c), 0);
    /* replaced whole: nothing of the base's decoder is left */
    ck_assert(dgm_cfg_get(c, "model.decoder.act") == NULL);
    ck_assert(dgm_cfg_get(c, "model.decoder.hidden") == NULL);
    ck_assert_str_eq(dgm_cfg_text(dgm_cfg_get(c, "model.decoder.plugin")),
                     "conv_decoder");
    /* The override text reads back to the same tree. */
    for (int i = 0; i < 3; i++) {
        dgm_config *a, *b = dgm_config_clone(s->base);
        ck_assert_int_eq(dgm__sweep_trial_config(s, i, &a), 0);
        for (int k = 0; k < s->trials[i].n_assign; k++) {
            char *t = dgm__sweep_override_text(&s->trials[i].assign[k]);
            ck_assert_msg(dgm_config_override(b, t) == 0, "%s: %s", t,
                          dgm_last_error());
            free(t);
        }
        char *sa = dgm_config_to_string(a), *sb = dgm_config_to_string(b);
        ck_assert_str_eq(sa, sb);
        free(sa);
        free(sb);
        dgm_config_free(a);
        dgm_config_free(b);
    }
    /* params as JSON */
    json_t *j = dgm__sweep_cfg_json(s->trials[0].assign[0].value);
    char *js = json_dumps(j, JSON_COMPACT);
    ck_assert_str_eq(js, "{\"plugin\":\"mlp\",\"hidden\":[8,8]}");
    free(js);
    json_decref(j);
    dgm_config_free(c);
    dgm__sweep_free(s);
}
END_TEST

/* Any swept value's override text (what the manifest keeps and compare
 * reads) reads back as the same value: C1 controls, line and paragraph
 * separators, YAML's indicators, a key longer than an implicit key may
 * be (libyaml: 1024 characters). */
START_TEST(override_text_reads_back_any_value)
{
    static char text[8192], key[1201];
    memset(key, 'k', sizeof key - 1);
    key[sizeof key - 1] = '\0';
    snprintf(text, sizeof text,
             "%ssweep:\n"
             "  grid:\n"
             "    model.tag:\n"
             "      - \"c1 \\u0090 \\u009f nel \\N ls \\L ps \\P\"\n"
             "      - \"a: b, [c] #d\"\n"
             "      - \"20\"\n"
             "      - \"\"\n"
             "      - ? \"%s\"\n"
             "        : 1\n"
             "        \"x\\u0085y\": [\"\\u0080\", ~]\n"
             "      - [yes, \"-\", \"? q\", \"tab\\tend \"]\n",
             base, key);
    dgm__sweep *s = expand(text);
    ck_assert_int_eq(s->n_trials, 6);
    for (int i = 0; i < s->n_trials; i++) {
        const dgm__sweep_assign *a = &s->trials[i].assign[0];
        char *t = dgm__sweep_override_text(a);
        ck_assert_msg(t != NULL, "trial %d: %s", i, dgm_last_error());
        ck_assert(!strchr(t, '\n'));
        dgm_config *b = parse("{}");
        ck_assert_msg(dgm_config_override(b, t) == 0, "trial %d: %s: %s", i, t,
                      dgm_last_error());
        ck_assert_msg(dgm_config_equal(dgm_cfg_get(b, "model.tag"), a->value),
                      "trial %d read back differently: %s", i, t);
        dgm_config_free(b);
        free(t);
    }
    dgm__sweep_free(s);
}
END_TEST

START_TEST(zip_varies_together)
{
    char text[2048];
    snprintf(text, sizeof text,
             "%ssweep:\n"
             "  grid: {model.decoder.act: [relu, tanh]}\n"
             "  zip:\n"
             "    model.latent: [2, 4, 8]\n"
             "    optimizer.lr: [0.1, 0.01, 0.001]\n"
             "  seeds: [5, 9]\n",
             base);
    dgm__sweep *s = expand(text);
    ck_assert_int_eq(s->n_trials, 2 * 3 * 2);
    ck_assert_str_eq(overrides(s, 0),
                     "model.decoder.act=relu model.latent=2 optimizer.lr=0.1 "
                     "seed=5");
    ck_assert_str_eq(overrides(s, 3),
                     "model.decoder.act=relu model.latent=4 optimizer.lr=0.01 "
                     "seed=9");
    ck_assert_str_eq(overrides(s, 11), "model.decoder.act=tanh model.latent=8 "
                                       "optimizer.lr=0.001 seed=9");
    dgm__sweep_free(s);

    snprintf(text, sizeof text,
             "%ssweep:\n"
             "  zip:\n"
             "    model.latent: [2, 4, 8]\n"
             "    optimizer.lr: [0.1, 0.01]\n",
             base);
    ck_assert_int_eq(expand_fails(text), DGM_ESHAPE);
    const char *m = dgm_last_error();
    ck_assert_msg(strstr(m, "t.yaml:10:") && strstr(m, "sweep.zip") &&
                      strstr(m, "'model.latent' has 3") &&
                      strstr(m, "'optimizer.lr' has 2"),
                  "%s", m);
}
END_TEST

static const char random_fmt[] =
    "%ssweep:\n"
    "  random:\n"
    "    n: %d\n"
    "    seed: %d\n"
    "    params:\n"
    "      optimizer.lr: {loguniform: [1.0e-4, 1.0e-1]}\n"
    "      model.latent: {int: [2, 32]}\n"
    "      model.decoder.act: {choice: [relu, tanh, gelu]}\n"
    "      model.beta: {uniform: [0.5, 2]}\n";

static dgm__sweep *random_sweep(int n, int seed)
{
    char text[2048];
    snprintf(text, sizeof text, random_fmt, base, n, seed);
    return expand(text);
}

START_TEST(random_draws_follow_the_sweep_seed)
{
    dgm__sweep *a = random_sweep(20, 0), *b = random_sweep(20, 0),
               *c = random_sweep(20, 1), *d = random_sweep(25, 0);
    ck_assert_int_eq(a->n_trials, 20);
    /* The reference: the same draws made with dgm_rng in the documented
     * order (draw after draw, parameter after parameter). */
    dgm_rng r;
    dgm_rng_seed(&r, 0);
    int differ = 0;
    for (int i = 0; i < 20; i++) {
        char want[512], lr[32], beta[32];
        double u = dgm_rng_uniform_f64(&r);
        snprintf(lr, sizeof lr, "%.6g",
                 exp(log(1e-4) + (log(1e-1) - log(1e-4)) * u));
        long long lat = 2 + (long long)dgm_rng_below(&r, 31);
        static const char *const acts[] = {"relu", "tanh", "gelu"};
        const char *act = acts[dgm_rng_below(&r, 3)];
        snprintf(beta, sizeof beta, "%.6g",
                 0.5 + 1.5 * dgm_rng_uniform_f64(&r));
        if (!strpbrk(beta, ".e"))
            strcat(beta, ".0");
        snprintf(want, sizeof want,
                 "optimizer.lr=%s model.latent=%lld model.decoder.act=%s "
                 "model.beta=%s",
                 lr, lat, act, beta);
        ck_assert_str_eq(overrides(a, i), want);
        double lrv = atof(lr), bv = atof(beta);
        ck_assert(lrv >= 1e-4 && lrv <= 1e-1);
        ck_assert(lat >= 2 && lat <= 32);
        ck_assert(bv >= 0.5 && bv <= 2);
        /* same seed, same draws; more draws keep the first ones */
        ck_assert_str_eq(overrides(b, i), want);
        ck_assert_str_eq(overrides(d, i), want);
        char *t = strdup(overrides(c, i));
        differ += strcmp(t, want) != 0;
        free(t);
    }
    ck_assert_int_eq(d->n_trials, 25);
    ck_assert_int_ge(differ, 19); /* another seed, other draws */
    dgm__sweep_free(a);
    dgm__sweep_free(b);
    dgm__sweep_free(c);
    dgm__sweep_free(d);
}
END_TEST

START_TEST(seeds_count_or_list)
{
    char text[2048];
    snprintf(text, sizeof text, "%ssweep: {seeds: 3}\n", base);
    dgm__sweep *s = expand(text);
    ck_assert_int_eq(s->n_trials, 3);
    for (int i = 0; i < 3; i++) {
        char want[32];
        snprintf(want, sizeof want, "seed=%d", i);
        ck_assert_str_eq(overrides(s, i), want);
    }
    json_t *m = dgm__sweep_manifest_new(s, "x", "t.yaml", "local");
    json_t *t2 = dgm__sweep_manifest_trial(m, 2);
    ck_assert_int_eq(json_integer_value(json_object_get(t2, "seed")), 2);
    ck_assert_str_eq(json_string_value(json_object_get(t2, "status")),
                     "pending");
    ck_assert_str_eq(json_string_value(json_object_get(t2, "run_dir")),
                     "trials/002-seed=2");
    ck_assert_int_eq(json_integer_value(json_object_get(
                         json_object_get(t2, "params"), "seed")),
                     2);
    json_decref(m);
    dgm__sweep_free(s);
    /* without seeds the manifest gives the experiment's seed */
    snprintf(text, sizeof text, "%ssweep: {grid: {model.latent: [1]}}\n", base);
    s = expand(text);
    m = dgm__sweep_manifest_new(s, "x", "t.yaml", "local");
    ck_assert_int_eq(json_integer_value(json_object_get(
                         dgm__sweep_manifest_trial(m, 0), "seed")),
                     7);
    json_decref(m);
    dgm__sweep_free(s);
    snprintf(text, sizeof text,
             "%ssweep: {seeds: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]}\n", base);
    s = expand(text);
    ck_assert_int_eq(s->n_trials, 11);
    ck_assert_str_eq(s->trials[10].name, "010-seed=10");
    dgm__sweep_free(s);
    snprintf(text, sizeof text, "%ssweep: {seeds: [0, -1]}\n", base);
    ck_assert_int_eq(expand_fails(text), DGM_ERANGE);
    ck_assert_msg(strstr(dgm_last_error(), "sweep.seeds[1]"), "%s",
                  dgm_last_error());
}
END_TEST

START_TEST(bad_sections_are_refused)
{
    char text[2048];
    struct {
        const char *sweep;
        int code;
        const char *says;
    } cases[] = {
        {"  grdi: {seed: [1]}\n", DGM_EKEY, "did you mean 'grid'"},
        {"  grid: {model.latent: 3}\n", DGM_ETYPE, "sweep.grid.model.latent"},
        {"  grid: {model.latent: []}\n", DGM_ETYPE, "non-empty list"},
        {"  grid: {seed: [1, 2]}\n  seeds: 2\n", DGM_EDUP, "swept twice"},
        {"  random: {n: 2, params: {x: {gauss: [0, 1]}}}\n", DGM_EKEY,
         "unknown distribution 'gauss'"},
        {"  random: {n: 2, params: {x: {unifrom: [0, 1]}}}\n", DGM_EKEY,
         "did you mean 'uniform'"},
        {"  random: {n: 2, params: {x: {uniform: [2, 1]}}}\n", DGM_ERANGE,
         "sweep.random.params.x.uniform"},
        {"  random: {n: 2, params: {x: {loguniform: [0, 1]}}}\n", DGM_ERANGE,
         "> 0"},
        {"  random: {params: {x: {int: [0, 1]}}}\n", DGM_EMISSING, "`n:`"},
        {"  slurm: {cpus_per_tsk: 2}\n", DGM_EKEY,
         "did you mean 'cpus_per_task'"},
        {"  slurm: {ntasks: 0}\n", DGM_ERANGE, "ntasks: 1 to 100000, got 0"},
        {"  slurm: {ntasks: two}\n", DGM_ETYPE, "sweep.slurm.ntasks"},
        {"  grid: {a: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], b: [1, 2, 3, 4, 5, "
         "6, 7, 8, 9, 10], c: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], d: [1, 2, 3, "
         "4, 5, 6, 7, 8, 9, 10], e: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]}\n",
         DGM_ERANGE, "at most 100000"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(text, sizeof text, "%ssweep:\n%s", base, cases[i].sweep);
        int rc = expand_fails(text);
        ck_assert_msg(
            rc == cases[i].code && strstr(dgm_last_error(), cases[i].says) &&
                strstr(dgm_last_error(), "t.yaml:"),
            "case %zu: %s (%s)", i, dgm_last_error(), dgm_errname(rc));
    }
    ck_assert_int_eq(expand_fails(base), DGM_EMISSING);
    ck_assert(strstr(dgm_last_error(), "no `sweep:` section"));
}
END_TEST

START_TEST(slurm_options_read)
{
    char text[2048];
    snprintf(text, sizeof text,
             "%ssweep:\n  seeds: 2\n  slurm: {partition: debug, time: "
             "\"00:10:00\", cpus_per_task: 2, max_parallel: 3, extra_args: "
             "[--qos=short]}\n",
             base);
    dgm__sweep *s = expand(text);
    ck_assert_str_eq(s->slurm.partition, "debug");
    ck_assert_str_eq(s->slurm.time, "00:10:00");
    ck_assert_int_eq(s->slurm.cpus_per_task, 2);
    ck_assert_int_eq(s->slurm.max_parallel, 3);
    ck_assert_int_eq(s->slurm.n_extra, 1);
    ck_assert_str_eq(s->slurm.extra_args[0], "--qos=short");
    ck_assert_int_eq(s->slurm.ntasks, 1);
    dgm__sweep_free(s);
    snprintf(text, sizeof text, "%ssweep:\n  seeds: 2\n  slurm: {ntasks: 4}\n",
             base);
    s = expand(text);
    ck_assert_int_eq(s->slurm.ntasks, 4);
    dgm__sweep_free(s);
}
END_TEST

/* ---- integer ranges ---------------------------------------------------- */

/* The values n draws of `int: [lo, hi]` give, as text. */
static dgm__sweep *int_sweep(const char *lo, const char *hi, int n)
{
    char text[2048];
    snprintf(text, sizeof text,
             "%ssweep: {random: {n: %d, seed: 3, params: {model.latent: "
             "{int: [%s, %s]}}}}\n",
             base, n, lo, hi);
    return expand(text);
}

START_TEST(int_ranges_stay_integers)
{
    /* Above 2^53 a double cannot hold the ends: ...993 drew ...992. */
    dgm__sweep *s = int_sweep("9007199254740993", "9007199254740993", 3);
    for (int i = 0; i < 3; i++)
        ck_assert_str_eq(overrides(s, i), "model.latent=9007199254740993");
    dgm__sweep_free(s);
    /* The widest ranges: hi - lo overflowed int64. Each draw is the
     * reference draw (unbiased, by dgm_rng) and inside the range. */
    static const struct {
        const char *lo, *hi;
        long long l, h;
    } r[] = {
        {"-9223372036854775808", "9223372036854775807", INT64_MIN, INT64_MAX},
        {"-9223372036854775808", "-9223372036854775807", INT64_MIN,
         INT64_MIN + 1},
        {"9223372036854775806", "9223372036854775807", INT64_MAX - 1,
         INT64_MAX},
        {"-1", "9223372036854775807", -1, INT64_MAX},
        {"-3", "3", -3, 3},
    };
    for (size_t c = 0; c < sizeof r / sizeof r[0]; c++) {
        s = int_sweep(r[c].lo, r[c].hi, 40);
        dgm_rng rng;
        dgm_rng_seed(&rng, 3);
        uint64_t span = (uint64_t)r[c].h - (uint64_t)r[c].l;
        bool saw_lo = false, saw_hi = false;
        for (int i = 0; i < 40; i++) {
            uint64_t off = span == UINT64_MAX ? dgm_rng_u64(&rng)
                                              : dgm_rng_below(&rng, span + 1);
            char want[64];
            snprintf(want, sizeof want, "model.latent=%lld",
                     (long long)((uint64_t)r[c].l + off));
            ck_assert_str_eq(overrides(s, i), want);
            long long v = strtoll(overrides(s, i) + 13, NULL, 10);
            ck_assert(v >= r[c].l && v <= r[c].h);
            saw_lo |= v == r[c].l;
            saw_hi |= v == r[c].h;
        }
        if (span < 8) /* a small range shows both ends in 40 draws */
            ck_assert(saw_lo && saw_hi);
        dgm__sweep_free(s);
    }
    /* Checked: ordered ends, integers, within int64. */
    struct {
        const char *lo, *hi;
        int code;
        const char *says;
    } bad[] = {
        {"5", "4", DGM_ERANGE, "int: low 5 is above high 4"},
        {"9223372036854775807", "-9223372036854775808", DGM_ERANGE,
         "low 9223372036854775807 is above high -9223372036854775808"},
        {"1.5", "3", DGM_ETYPE, "expected an integer, found '1.5'"},
        {"0", "1e3", DGM_ETYPE, "expected an integer"},
        {"0", "9223372036854775808", DGM_ETYPE, "expected an integer"},
        {"\"0\"", "1", DGM_ETYPE, "found the string \"0\""},
    };
    for (size_t c = 0; c < sizeof bad / sizeof bad[0]; c++) {
        char text[2048];
        snprintf(text, sizeof text,
                 "%ssweep: {random: {n: 2, params: {model.latent: {int: "
                 "[%s, %s]}}}}\n",
                 base, bad[c].lo, bad[c].hi);
        int rc = expand_fails(text);
        ck_assert_msg(
            rc == bad[c].code && strstr(dgm_last_error(), "t.yaml:") &&
                strstr(dgm_last_error(), "sweep.random.params") &&
                strstr(dgm_last_error(), bad[c].says),
            "case %zu: %s (%s)", c, dgm_last_error(), dgm_errname(rc));
    }
}
END_TEST

/* ---- the expanded size ------------------------------------------------- */

/* A sweep of one grid value, a list of `len` numbers, times `seeds`. */
static char *big_value_sweep(int len, int seeds)
{
    size_t cap = sizeof base + (size_t)len * 3 + 200;
    char *t = malloc(cap);
    size_t l = (size_t)snprintf(t, cap,
                                "%ssweep:\n  grid:\n    "
                                "model.decoder.hidden: [[",
                                base);
    for (int i = 0; i < len; i++)
        l += (size_t)snprintf(t + l, cap - l, i ? ",1" : "1");
    snprintf(t + l, cap - l, "]]\n  seeds: %d\n", seeds);
    return t;
}

/* What expanding text gives, run in a child whose address space is
 * limited (not under ASan, which reserves terabytes of shadow), so that a
 * sweep that grows without bound fails the test instead of the machine.
 * Returns the code; msg gets the message. */
static int expand_limited(const char *text, char *msg, size_t cap)
{
    int fd[2];
    ck_assert_int_eq(pipe(fd), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(fd[0]);
#ifndef __SANITIZE_ADDRESS__
        struct rlimit lim = {(rlim_t)1 << 30, (rlim_t)1 << 30};
        setrlimit(RLIMIT_AS, &lim);
#endif
        alarm(60);
        dgm_config *c = NULL;
        dgm__sweep *s = NULL;
        int rc = dgm_config_parse(&c, text, "t.yaml");
        if (rc == 0)
            rc = dgm__sweep_expand(&s, c);
        char buf[1024];
        int n = snprintf(buf, sizeof buf, "%d %s", rc, dgm_last_error());
        if (write(fd[1], buf, (size_t)n) != n)
            _exit(3);
        _exit(0);
    }
    close(fd[1]);
    char buf[1024];
    ssize_t n = read(fd[0], buf, sizeof buf - 1);
    close(fd[0]);
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0 && n > 0,
                  "the expansion died (status 0x%x)", st);
    buf[n] = '\0';
    int rc = 0, used = 0;
    ck_assert_int_eq(sscanf(buf, "%d %n", &rc, &used), 1);
    snprintf(msg, cap, "%s", buf + used);
    return rc;
}

START_TEST(expanded_size_is_bounded)
{
    /* The 3 kB file: a 1000-number value in 100000 trials grew to
     * 4 GB. Refused at once, naming the sweep and the limit. */
    char *t = big_value_sweep(1000, 100000);
    ck_assert_int_lt(strlen(t), 3500);
    char msg[1024];
    time_t t0 = time(NULL);
    int rc = expand_limited(t, msg, sizeof msg);
    ck_assert_msg(rc == DGM_ERANGE && strstr(msg, "t.yaml:") &&
                      strstr(msg, "sweep: the sweep of 'x' is too big: "
                                  "100000 trials assign 100200000 config "
                                  "values in all (up to 1002 each); at "
                                  "most 2097152 in one sweep"),
                  "%s (%s)", msg, dgm_errname(rc));
    ck_assert_int_le(time(NULL) - t0, 20);
    free(t);
    /* Within the bound, the trials share the value: one copy, not one a
     * trial. */
    t = big_value_sweep(1000, 1000);
    dgm__sweep *s = expand(t);
    ck_assert_int_eq(s->n_trials, 1000);
    ck_assert_ptr_eq(s->trials[0].assign[0].value,
                     s->trials[999].assign[0].value);
    ck_assert_int_eq(dgm_cfg_len(s->trials[999].assign[0].value), 1000);
    dgm_config *c = NULL;
    ck_assert_int_eq(dgm__sweep_trial_config(s, 999, &c), 0);
    ck_assert_int_eq(dgm_cfg_len(dgm_cfg_get(c, "model.decoder.hidden")), 1000);
    ck_assert_str_eq(dgm_cfg_text(dgm_cfg_get(c, "seed")), "999");
    ck_assert_ptr_null(dgm_cfg_get(c, "sweep"));
    dgm_config_free(c);
    dgm__sweep_free(s);
    free(t);
    /* Long text counts too: 1000 trials of a 100 kB string. */
    size_t cap = 120000;
    t = malloc(cap);
    size_t l = (size_t)snprintf(t, cap, "%ssweep:\n  grid: {name: [", base);
    memset(t + l, 'a', 100000);
    l += 100000;
    snprintf(t + l, cap - l, "]}\n  seeds: 1000\n");
    rc = expand_limited(t, msg, sizeof msg);
    ck_assert_msg(rc == DGM_ERANGE &&
                      strstr(msg, "1000 trials assign 100010890 bytes of "
                                  "keys and text in all") &&
                      strstr(msg, "at most 67108864"),
                  "%s", msg);
    free(t);
    /* Random draws are refused before they are drawn. */
    char text[4096];
    l = (size_t)snprintf(text, sizeof text,
                         "%ssweep: {random: {n: 100000, params: {", base);
    for (int i = 0; i < 30; i++)
        l += (size_t)snprintf(text + l, sizeof text - l, "%sp%d: {int: [0, 9]}",
                              i ? ", " : "", i);
    snprintf(text + l, sizeof text - l, "}}}\n");
    rc = expand_limited(text, msg, sizeof msg);
    ck_assert_msg(rc == DGM_ERANGE && strstr(msg, "sweep.random: 100000 "
                                                  "draws of 30 parameters"),
                  "%s", msg);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("sweep");
    tq_case(s, "grid", grid_is_a_product_first_key_slowest,
            whole_plugin_maps_swap);
    tq_case(s, "zip", override_text_reads_back_any_value, zip_varies_together);
    tq_case(s, "random", random_draws_follow_the_sweep_seed);
    tq_case(s, "seeds", seeds_count_or_list);
    TCase *tc = tq_case(s, "bounds", int_ranges_stay_integers,
                        expanded_size_is_bounded);
    tcase_set_timeout(tc, 120);
    tq_case(s, "refusals", bad_sections_are_refused, slurm_options_read);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
