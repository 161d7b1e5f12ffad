/* test_sweep.c - sweeps: expansion of grid, zip, random and seeds (counts,
 * contents, random draws against dgm_rng), refused sections, and `dgm
 * sweep` through the executable: a crashing and a diverging trial among
 * good ones, --resume, --fail-fast, --dry-run validation, Ctrl-C. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "ck_run.h"
#include "dgm/dgm.h"
#include "files.h"
#include "scratch.h"
#include "sweep.h"
#include "sweep_fixture.h"

static char root[1024]; /* this process's scratch folder */
static char out[1 << 16];

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

/* ---- the executable --------------------------------------------------- */

static void mkdir_p(const char *p)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", p);
    ck_assert_int_eq(system(cmd), 0);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
    fputs(text, f);
    fclose(f);
}

/* Three objectives: good, a plugin that crashes (unless <root>/disarm
 * exists), a loss that turns NaN; two latents. */
static const char tiny_fmt[] = TS_TINY_VAE
    "train: {steps: %d, log_every: 1, samples: 4}\n"
    "sweep:\n"
    "  grid:\n"
    "    objective:\n"
    "      - [{loss: bernoulli_nll, inputs: [logits, x]}, {loss: "
    "gaussian_kl, inputs: [mu, logvar]}]\n"
    "      - [{loss: bernoulli_nll, inputs: [logits, x]}, {loss: "
    "crash_after, inputs: [mu], after: 1, unless_exists: %s/disarm}]\n"
    "      - [{loss: bernoulli_nll, inputs: [logits, x]}, {loss: "
    "nan_after, inputs: [mu], after: 1}]\n"
    "    model.latent: [2, 3]\n";

static char exp_path[1200];

static void write_experiment(int steps)
{
    char text[4096];
    snprintf(text, sizeof text, tiny_fmt, DGM_TEST_PLUGIN_DIR, root, steps,
             root);
    write_text(exp_path, text);
}

static void setup(void)
{
    ts_let_segv_through();
    ts_sweep_setup();
    ck_assert_int_lt(snprintf(root, sizeof root, "%s", tc_scratch_dir),
                     (int)sizeof root);
    snprintf(exp_path, sizeof exp_path, "%s/tiny.yaml", root);
    write_experiment(3);
}

static int dgm_cli(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int dgm_cli(const char *fmt, ...)
{
    char args[4096], cmd[4600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "'%s' %s 2>&1", DGM_CLI, args);
    FILE *p = popen(cmd, "r");
    ck_assert(p != NULL);
    size_t got = fread(out, 1, sizeof out - 1, p);
    out[got] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static json_t *manifest(const char *dir)
{
    json_t *m;
    ck_assert_msg(dgm__sweep_manifest_load(dir, &m) == 0, "%s",
                  dgm_last_error());
    return m;
}

static const char *tstatus(json_t *m, int i)
{
    return json_string_value(
        json_object_get(dgm__sweep_manifest_trial(m, i), "status"));
}

static char *read_file(const char *path)
{
    return tc_slurp(path, NULL, false);
}

static char *trial_file(const char *sd, json_t *m, int i, const char *f)
{
    char p[2400];
    snprintf(p, sizeof p, "%s/%s/%s", sd,
             json_string_value(
                 json_object_get(dgm__sweep_manifest_trial(m, i), "run_dir")),
             f);
    return read_file(p);
}

START_TEST(crash_and_divergence_fail_only_their_trials)
{
    char sd[1300];
    snprintf(sd, sizeof sd, "%s/s", root);
    int rc = dgm_cli("sweep %s -j 2 --sweep-dir %s", exp_path, sd);
    ck_assert_msg(rc == 1, "exit %d: %s", rc, out);
    ck_assert_msg(strstr(out, "6 trials: 2 done, 2 failed, 2 diverged"), "%s",
                  out);
    json_t *m = manifest(sd);
    ck_assert_str_eq(json_string_value(json_object_get(m, "launcher")),
                     "local");
    ck_assert_str_eq(json_string_value(json_object_get(m, "name")), "tiny");
    for (int i = 0; i < 6; i++) {
        json_t *t = dgm__sweep_manifest_trial(m, i);
        const char *want = i < 2 ? "done" : i < 4 ? "failed" : "diverged";
        ck_assert_msg(!strcmp(tstatus(m, i), want), "trial %d: %s", i,
                      tstatus(m, i));
        int code = (int)json_integer_value(json_object_get(t, "exit_code"));
        ck_assert_int_eq(code, i < 2 ? 0 : i < 4 ? 128 + SIGSEGV : 1);
        const char *msg = json_string_value(json_object_get(t, "message"));
        if (i >= 2 && i < 4) {
            ck_assert_int_eq(json_integer_value(json_object_get(t, "signal")),
                             SIGSEGV);
            ck_assert_msg(msg && strstr(msg, "signal 11"), "%s", msg);
        }
        if (i >= 4)
            ck_assert_msg(msg && strstr(msg, "nan_after"), "%s", msg);
        ck_assert(json_is_string(json_object_get(t, "started")));
        ck_assert(json_is_string(json_object_get(t, "ended")));
        /* each trial is a whole run directory */
        char *s = trial_file(sd, m, i, "config.yaml");
        ck_assert_msg(s != NULL, "trial %d has no config.yaml", i);
        free(s);
        s = trial_file(sd, m, i, "summary.json");
        ck_assert((s != NULL) == (i < 2 || i >= 4));
        free(s);
    }
    ck_assert_str_eq(json_string_value(json_object_get(
                         dgm__sweep_manifest_trial(m, 3), "name")),
                     "003-objective=bernoulli_nll_1-latent=3");
    json_decref(m);
    /* sweep.yaml keeps the sweep and reads back */
    char p[1400];
    snprintf(p, sizeof p, "%s/sweep.yaml", sd);
    dgm_config *c;
    ck_assert_int_eq(dgm_config_load(&c, p), 0);
    ck_assert(dgm_cfg_get(c, "sweep.grid.objective") != NULL);
    dgm_config_free(c);
}
END_TEST

START_TEST(resume_runs_only_what_is_missing)
{
    char sd[1300], p[1400];
    snprintf(sd, sizeof sd, "%s/s", root);
    int rc = dgm_cli("sweep %s -j 2 --sweep-dir %s --quiet", exp_path, sd);
    ck_assert_msg(rc == 1, "exit %d: %s", rc, out);
    json_t *m = manifest(sd);
    char *done0 = trial_file(sd, m, 0, "trial.json");
    char *crash2 = trial_file(sd, m, 2, "trial.json");
    ck_assert(done0 && crash2);
    json_decref(m);
    /* the crashing plugin disarmed: its trials now finish */
    snprintf(p, sizeof p, "%s/disarm", root);
    write_text(p, "");
    rc = dgm_cli("sweep --resume %s -j 2", sd);
    ck_assert_msg(rc == 1, "exit %d: %s", rc, out);
    ck_assert_msg(strstr(out, "6 trials, 4 to run") &&
                      strstr(out, "6 trials: 4 done, 2 diverged"),
                  "%s", out);
    m = manifest(sd);
    for (int i = 0; i < 6; i++)
        ck_assert_str_eq(tstatus(m, i), i < 4 ? "done" : "diverged");
    char *again0 = trial_file(sd, m, 0, "trial.json");
    char *again2 = trial_file(sd, m, 2, "trial.json");
    ck_assert_str_eq(again0, done0);  /* not rerun */
    ck_assert_str_ne(again2, crash2); /* rerun (another pid) */
    free(done0);
    free(crash2);
    free(again0);
    free(again2);
    json_decref(m);
    /* a manifest that does not fit sweep.yaml is refused */
    rc = dgm_cli("sweep --resume %s/nowhere", root);
    ck_assert_int_eq(rc, 2);
}
END_TEST

START_TEST(fail_fast_stops_at_the_first_failure)
{
    char sd[1300];
    snprintf(sd, sizeof sd, "%s/s", root);
    int rc = dgm_cli("sweep %s --fail-fast --sweep-dir %s", exp_path, sd);
    ck_assert_msg(rc == 1, "exit %d: %s", rc, out);
    ck_assert_msg(strstr(out, "--fail-fast"), "%s", out);
    json_t *m = manifest(sd);
    ck_assert_str_eq(tstatus(m, 0), "done");
    ck_assert_str_eq(tstatus(m, 1), "done");
    ck_assert_str_eq(tstatus(m, 2), "failed");
    for (int i = 3; i < 6; i++)
        ck_assert_str_eq(tstatus(m, i), "pending");
    json_decref(m);
}
END_TEST

START_TEST(dry_run_lists_and_validates)
{
    int rc = dgm_cli("sweep %s --dry-run", exp_path);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    ck_assert_msg(strstr(out, "6 trials, all valid") &&
                      strstr(out, "005-objective=bernoulli_nll_2-latent=3") &&
                      strstr(out, "model.latent=3"),
                  "%s", out);
    /* every trial is validated before anything runs */
    char sd[1300];
    snprintf(sd, sizeof sd, "%s/bad", root);
    rc = dgm_cli("sweep %s --sweep-dir %s 'sweep.grid.objective=[[{loss: "
                 "bernoulli_nll, inputs: [logits, x]}], [{loss: nope, "
                 "inputs: [x]}]]'",
                 exp_path, sd);
    ck_assert_msg(rc == 2, "exit %d: %s", rc, out);
    ck_assert_msg(strstr(out, "trial 3 (003-objective=nope-latent=3)") &&
                      strstr(out, "objective[0].loss") && strstr(out, "nope") &&
                      strstr(out, "2 of 4 trials are invalid"),
                  "%s", out);
    ck_assert_int_ne(access(sd, F_OK), 0);
    rc = dgm_cli("sweep %s -j 0", exp_path);
    ck_assert_int_eq(rc, 2);
    rc = dgm_cli("sweep %s --launcher pbs", exp_path);
    ck_assert_int_eq(rc, 2);
}
END_TEST

/* sweep.slurm.ntasks: the job script starts the trial with srun on that
 * many ranks (read from the script a stand-in sbatch refused, so no
 * Slurm is needed); the local launcher refuses it before making the
 * sweep directory. */
START_TEST(ntasks_trials_start_under_srun)
{
    char sd[1300], bin[1300], p[1400], path[4096];
    snprintf(sd, sizeof sd, "%s/s", root);
    int rc =
        dgm_cli("sweep %s --sweep-dir %s sweep.slurm.ntasks=2", exp_path, sd);
    ck_assert_msg(rc == 2 && strstr(out, "sweep.slurm.ntasks: 2 ranks per "
                                         "trial need --launcher slurm"),
                  "exit %d: %s", rc, out);
    ck_assert_int_ne(access(sd, F_OK), 0);
    snprintf(bin, sizeof bin, "%s/bin", root);
    mkdir_p(bin);
    snprintf(p, sizeof p, "%s/sbatch", bin);
    write_text(p, "#!/bin/sh\necho 'sbatch: refused here' >&2\nexit 3\n");
    ck_assert_int_eq(chmod(p, 0755), 0);
    snprintf(path, sizeof path, "%s:%s", bin, getenv("PATH"));
    setenv("PATH", path, 1);
    rc = dgm_cli("sweep %s --launcher slurm --sweep-dir %s "
                 "sweep.slurm.ntasks=2 sweep.slurm.cpus_per_task=3",
                 exp_path, sd);
    ck_assert_msg(rc == 1 && strstr(out, "failed (exit 3)"), "exit %d: %s", rc,
                  out);
    snprintf(p, sizeof p, "%s/slurm/job.sh", sd);
    char *job = read_file(p);
    /* the line runs the dgm executable (its real path) under srun */
    const char *line = strstr(job, "\nsrun --mpi=pmix -n 2 '/");
    ck_assert_msg(strstr(job, "\n#SBATCH --ntasks=2\n") &&
                      strstr(job, "\n#SBATCH --cpus-per-task=3\n") && line &&
                      strstr(line,
                             "' sweep --run-trial \"$d\" \"$i\" "
                             "--threads \"${SLURM_CPUS_PER_TASK:-3}\"\n") ==
                          strchr(line + 23, '\''),
                  "%s", job);
    free(job);
    /* one rank: the script is the plain one, no srun */
    snprintf(sd, sizeof sd, "%s/s1", root);
    rc = dgm_cli("sweep %s --launcher slurm --sweep-dir %s", exp_path, sd);
    ck_assert_msg(rc == 1, "exit %d: %s", rc, out);
    snprintf(p, sizeof p, "%s/slurm/job.sh", sd);
    job = read_file(p);
    ck_assert_msg(!strstr(job, "srun") && !strstr(job, "--ntasks"), "%s", job);
    free(job);
}
END_TEST

START_TEST(interrupt_leaves_a_consistent_manifest)
{
    char sd[1300];
    snprintf(sd, sizeof sd, "%s/s", root);
    write_experiment(1000000);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open("/dev/null", 1);
        dup2(fd, 1);
        dup2(fd, 2);
        execl(DGM_CLI, DGM_CLI, "sweep", exp_path, "-j", "2", "--sweep-dir", sd,
              "sweep.grid.objective=[[{loss: bernoulli_nll, inputs: "
              "[logits, x]}]]",
              (char *)NULL);
        _exit(127);
    }
    /* wait until two trials run */
    int running = 0;
    for (int k = 0; k < 200 && running < 2; k++) {
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
        json_t *m;
        if (dgm__sweep_manifest_load(sd, &m) < 0)
            continue;
        running = 0;
        for (int i = 0; i < 2; i++)
            running += !strcmp(tstatus(m, i), "running");
        json_decref(m);
    }
    ck_assert_int_eq(running, 2);
    /* one dgm sweep per sweep directory */
    int rc = dgm_cli("sweep --resume %s", sd);
    ck_assert_msg(rc == 2 && strstr(out, "in use by another dgm sweep"),
                  "exit %d: %s", rc, out);
    kill(pid, SIGINT);
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert(WIFEXITED(st));
    ck_assert_int_eq(WEXITSTATUS(st), 1);
    json_t *m = manifest(sd);
    for (int i = 0; i < 2; i++) {
        ck_assert_str_eq(tstatus(m, i), "stopped");
        ck_assert(json_is_string(
            json_object_get(dgm__sweep_manifest_trial(m, i), "ended")));
    }
    json_decref(m);
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
    tc = tq_case(
        s, "local_launcher", crash_and_divergence_fail_only_their_trials,
        resume_runs_only_what_is_missing, fail_fast_stops_at_the_first_failure,
        dry_run_lists_and_validates, interrupt_leaves_a_consistent_manifest,
        ntasks_trials_start_under_srun);
    tcase_add_checked_fixture(tc, setup, tc_scratch_teardown);
    tcase_set_timeout(tc, 120);
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
