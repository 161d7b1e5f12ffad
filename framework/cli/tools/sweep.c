/* sweep.c - a sweep section expanded into trials (grid x zip x random x
 * seeds), each trial's config, its name, and a value as override text or
 * JSON. The manifest is in sweep_manifest.c; launching trials is the
 * CLI's business (cmd_sweep.c). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/error.h"
#include "dgm/rng.h"
#include "sweep.h"
#include "tool_config.h"

/* One value a dimension can take: the assignments it makes. */
typedef struct option {
    int n;
    dgm__sweep_assign *a;
} option;

/* A dimension of the product: grid key, zip rows, random draws, seeds. */
typedef struct dim {
    int n;
    option *opt;
} dim;

typedef struct dims {
    int n;
    dim d[64];
} dims;

/* What the trials' assignments point into, so that a value swept into
 * many trials is held once: the experiment's sweep section (grid, zip
 * and choice values are its nodes), the values made here (draws, seed
 * numbers) and the options. */
struct dgm__sweep_values {
    dgm_config *spec; /* a copy of the experiment, sweep section and all */
    dgm__tool_scalars made; /* draws and seed numbers */
    dims ds;
};

/* An option's key and label (its value is borrowed). */
static void assign_free(dgm__sweep_assign *a)
{
    free(a->key);
    free(a->label);
}

static void dims_free(dims *ds)
{
    for (int i = 0; i < ds->n; i++) {
        for (int j = 0; j < ds->d[i].n; j++) {
            for (int k = 0; k < ds->d[i].opt[j].n; k++)
                assign_free(&ds->d[i].opt[j].a[k]);
            free(ds->d[i].opt[j].a);
        }
        free(ds->d[i].opt);
    }
    ds->n = 0;
}

static int oom(void)
{
    return dgm_error(DGM_ENOMEM, "sweep: out of memory");
}

/* A new dimension of n options of one assignment each (zip adds more). */
static dim *dim_add(dims *ds, int n)
{
    if (ds->n >= (int)(sizeof ds->d / sizeof ds->d[0])) {
        dgm_error(DGM_ERANGE, "sweep: more than %d swept dimensions",
                  (int)(sizeof ds->d / sizeof ds->d[0]));
        return NULL;
    }
    dim *d = &ds->d[ds->n];
    d->opt = calloc((size_t)n, sizeof *d->opt);
    if (!d->opt) {
        oom();
        return NULL;
    }
    d->n = n;
    ds->n++;
    return d;
}

/* The short text a value stands for in a trial's name. */
static char *label_of(const dgm_config *v, int pos)
{
    char buf[64];
    if (dgm_cfg_kind_of(v) == DGM_CFG_NULL)
        return strdup("null");
    if (dgm_cfg_kind_of(v) == DGM_CFG_SCALAR)
        return strdup(dgm_cfg_text(v));
    /* A plugin map by its plugin; a list of them (an objective) by its
     * first one's plugin or loss. */
    const dgm_config *m = dgm_cfg_kind_of(v) == DGM_CFG_SEQ && dgm_cfg_len(v)
                              ? dgm_cfg_at(v, 0)
                              : v;
    const dgm_config *p = dgm_cfg_get(m, "plugin");
    if (!dgm_cfg_text(p))
        p = dgm_cfg_get(m, "loss");
    if (dgm_cfg_kind_of(m) == DGM_CFG_MAP && dgm_cfg_text(p))
        return strdup(dgm_cfg_text(p));
    snprintf(buf, sizeof buf, "v%d", pos);
    return strdup(buf);
}

/* Add key=value (value borrowed, label taken over) to an option. */
static int option_add(option *o, const char *key, const dgm_config *value,
                      char *label)
{
    dgm__sweep_assign *a = realloc(o->a, (size_t)(o->n + 1) * sizeof *a);
    char *k = strdup(key);
    if (a)
        o->a = a;
    if (!a || !k || !value || !label) {
        free(k);
        free(label);
        return oom();
    }
    a[o->n++] = (dgm__sweep_assign){k, value, label};
    return 0;
}

/* Values of one key that read alike in names ("mlp" and "mlp") get
 * their position appended ("mlp_0", "mlp_1"). */
static int distinct_labels(dim *d, int k)
{
    bool dup = false;
    for (int j = 0; j < d->n && !dup; j++)
        for (int l = 0; l < j && !dup; l++)
            dup = !strcmp(d->opt[j].a[k].label, d->opt[l].a[k].label);
    for (int j = 0; dup && j < d->n; j++) {
        char *old = d->opt[j].a[k].label;
        size_t n = strlen(old) + 16;
        char *l = malloc(n);
        if (!l)
            return oom();
        snprintf(l, n, "%s_%d", old, j);
        free(old);
        d->opt[j].a[k].label = l;
    }
    return 0;
}

/* A list of values for `key` (grid or zip): a non-empty sequence. */
static int value_list(const dgm_config *sec, int i, const char *what)
{
    const dgm_config *v = dgm_cfg_at(sec, i);
    if (dgm_cfg_kind_of(v) != DGM_CFG_SEQ || dgm_cfg_len(v) == 0)
        return dgm_cfg_error(v, NULL, DGM_ETYPE,
                             "%s '%s': expected a non-empty list of values",
                             what, dgm_cfg_key_at(sec, i));
    return 0;
}

static int expand_grid(dims *ds, const dgm_config *grid)
{
    if (dgm_cfg_kind_of(grid) != DGM_CFG_MAP)
        return dgm_cfg_error(grid, NULL, DGM_ETYPE,
                             "expected a map {key: [values...]}");
    for (int i = 0; i < dgm_cfg_len(grid); i++) {
        int rc = value_list(grid, i, "grid key");
        if (rc < 0)
            return rc;
        const dgm_config *vals = dgm_cfg_at(grid, i);
        dim *d = dim_add(ds, dgm_cfg_len(vals));
        if (!d)
            return dgm_last_code();
        for (int j = 0; j < d->n; j++) {
            const dgm_config *v = dgm_cfg_at(vals, j);
            if ((rc = option_add(&d->opt[j], dgm_cfg_key_at(grid, i), v,
                                 label_of(v, j))) < 0)
                return rc;
        }
        if ((rc = distinct_labels(d, 0)) < 0)
            return rc;
    }
    return 0;
}

static int expand_zip(dims *ds, const dgm_config *zip)
{
    if (dgm_cfg_kind_of(zip) != DGM_CFG_MAP)
        return dgm_cfg_error(zip, NULL, DGM_ETYPE,
                             "expected a map {key: [values...], key2: "
                             "[values...]} of lists of one length");
    int n = dgm_cfg_len(zip);
    if (n == 0)
        return 0;
    for (int i = 0; i < n; i++) {
        int rc = value_list(zip, i, "zip key");
        if (rc < 0)
            return rc;
    }
    int len = dgm_cfg_len(dgm_cfg_at(zip, 0));
    for (int i = 1; i < n; i++) {
        int li = dgm_cfg_len(dgm_cfg_at(zip, i));
        if (li != len)
            return dgm_cfg_error(zip, NULL, DGM_ESHAPE,
                                 "zip lists differ in length: '%s' has %d "
                                 "values, '%s' has %d",
                                 dgm_cfg_key_at(zip, 0), len,
                                 dgm_cfg_key_at(zip, i), li);
    }
    dim *d = dim_add(ds, len);
    if (!d)
        return dgm_last_code();
    for (int j = 0; j < len; j++)
        for (int i = 0; i < n; i++) {
            const dgm_config *v = dgm_cfg_at(dgm_cfg_at(zip, i), j);
            int rc = option_add(&d->opt[j], dgm_cfg_key_at(zip, i), v,
                                label_of(v, j));
            if (rc < 0)
                return rc;
        }
    for (int i = 0; i < n; i++) {
        int rc = distinct_labels(d, i);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* A range's [low, high] pair: the list itself and its two nodes. */
static int range_pair(const dgm_config *r, const char *kind)
{
    if (dgm_cfg_kind_of(r) != DGM_CFG_SEQ || dgm_cfg_len(r) != 2)
        return dgm_cfg_error(r, NULL, DGM_ETYPE, "%s: expected [low, high]",
                             kind);
    return 0;
}

/* The two numbers of a [lo, hi] range of floats. */
int dgm__sweep_range_of(const dgm_config *r, const char *kind, double *lo,
                        double *hi)
{
    int rc = range_pair(r, kind);
    if (rc < 0 || (rc = dgm_cfg_to_float(dgm_cfg_at(r, 0), lo)) < 0 ||
        (rc = dgm_cfg_to_float(dgm_cfg_at(r, 1), hi)) < 0)
        return rc;
    if (!(*lo <= *hi) || !isfinite(*lo) || !isfinite(*hi))
        return dgm_cfg_error(r, NULL, DGM_ERANGE,
                             "%s: low %g is above high %g (or not finite)",
                             kind, *lo, *hi);
    if (!strcmp(kind, "loguniform") && *lo <= 0)
        return dgm_cfg_error(r, NULL, DGM_ERANGE,
                             "loguniform: low must be > 0, got %g", *lo);
    return 0;
}

/* The two ends of an `int:` range, as integers: a double holds integers
 * exactly only up to 2^53, and 9007199254740993 would draw ...992. */
int dgm__sweep_int_range_of(const dgm_config *r, int64_t *lo, int64_t *hi)
{
    int rc = range_pair(r, "int");
    if (rc < 0 || (rc = dgm_cfg_to_int(dgm_cfg_at(r, 0), lo)) < 0 ||
        (rc = dgm_cfg_to_int(dgm_cfg_at(r, 1), hi)) < 0)
        return rc;
    if (*lo > *hi)
        return dgm_cfg_error(r, NULL, DGM_ERANGE,
                             "int: low %lld is above high %lld", (long long)*lo,
                             (long long)*hi);
    return 0;
}

/* Uniform in [lo, hi], without bias and without overflow: the span is
 * counted in unsigned arithmetic, where hi - lo always fits, and the
 * whole int64 range (a span of 2^64) takes a raw 64-bit draw. */
static int64_t draw_int(dgm_rng *rng, int64_t lo, int64_t hi)
{
    uint64_t span = (uint64_t)hi - (uint64_t)lo;
    uint64_t off =
        span == UINT64_MAX ? dgm_rng_u64(rng) : dgm_rng_below(rng, span + 1);
    /* lo + off <= hi, so it is an int64; add without signed overflow. */
    uint64_t v = (uint64_t)lo + off;
    return v <= (uint64_t)INT64_MAX ? (int64_t)v
                                    : -(int64_t)(UINT64_MAX - v) - 1;
}

/* One draw of one parameter: a new value node and its label. */
static int draw(struct dgm__sweep_values *vals, dgm_rng *rng,
                const dgm_config *spec, const dgm_config **value, char **label)
{
    static const char *const kinds[] = {"choice", "uniform", "loguniform",
                                        "int"};
    if (dgm_cfg_kind_of(spec) != DGM_CFG_MAP || dgm_cfg_len(spec) != 1)
        return dgm_cfg_error(spec, NULL, DGM_ETYPE,
                             "expected one of {choice: [...]}, {uniform: "
                             "[lo, hi]}, {loguniform: [lo, hi]}, {int: "
                             "[lo, hi]}");
    const char *k = dgm_cfg_key_at(spec, 0);
    const dgm_config *arg = dgm_cfg_at(spec, 0);
    char text[64];
    double lo, hi;
    int rc;
    if (!strcmp(k, "choice")) {
        if (dgm_cfg_kind_of(arg) != DGM_CFG_SEQ || dgm_cfg_len(arg) == 0)
            return dgm_cfg_error(arg, NULL, DGM_ETYPE,
                                 "choice: expected a non-empty list");
        int j = (int)dgm_rng_below(rng, (uint64_t)dgm_cfg_len(arg));
        *value = dgm_cfg_at(arg, j);
        *label = label_of(dgm_cfg_at(arg, j), j);
    } else if (!strcmp(k, "int")) {
        int64_t ilo, ihi;
        if ((rc = dgm__sweep_int_range_of(arg, &ilo, &ihi)) < 0)
            return rc;
        snprintf(text, sizeof text, "%lld", (long long)draw_int(rng, ilo, ihi));
        *value = dgm__tool_scalar(&vals->made, arg, text);
        *label = strdup(text);
    } else if (!strcmp(k, "uniform") || !strcmp(k, "loguniform")) {
        if ((rc = dgm__sweep_range_of(arg, k, &lo, &hi)) < 0)
            return rc;
        double u = dgm_rng_uniform_f64(rng), v;
        if (k[0] == 'u')
            v = lo + (hi - lo) * u;
        else
            v = exp(log(lo) + (log(hi) - log(lo)) * u);
        /* Six digits are plenty for a hyperparameter and keep names and
         * overrides readable; a whole number still reads as a float. */
        snprintf(text, sizeof text, "%.6g", v);
        if (!strpbrk(text, ".eEin"))
            strcat(text, ".0");
        *value = dgm__tool_scalar(&vals->made, arg, text);
        *label = strdup(text);
    } else {
        const char *dym = dgm_did_you_mean(k, kinds, 4);
        return dgm_cfg_error(spec, NULL, DGM_EKEY,
                             "unknown distribution '%s'%s%s%s (choice, "
                             "uniform, loguniform, int)",
                             k, dym ? " (did you mean '" : "", dym ? dym : "",
                             dym ? "'?)" : "");
    }
    if (!*value || !*label) {
        free(*label);
        *value = NULL;
        *label = NULL;
        return oom();
    }
    return 0;
}

static int expand_random(struct dgm__sweep_values *vals, const dgm_config *rnd)
{
    dims *ds = &vals->ds;
    static const char *const keys[] = {"n", "seed", "params"};
    if (dgm_cfg_kind_of(rnd) != DGM_CFG_MAP)
        return dgm_cfg_error(rnd, NULL, DGM_ETYPE,
                             "expected a map {n: N, seed: S, params: {key: "
                             "distribution}}");
    int krc = dgm__tool_known_keys(rnd, "", keys, 3);
    if (krc < 0)
        return krc;
    int64_t n = 0, seed = 0;
    const dgm_config *nn = dgm_cfg_get(rnd, "n");
    const dgm_config *params = dgm_cfg_get(rnd, "params");
    int rc;
    if (!nn)
        return dgm_cfg_error(rnd, NULL, DGM_EMISSING,
                             "missing `n:` (the number of draws)");
    if ((rc = dgm_cfg_to_int(nn, &n)) < 0)
        return rc;
    if (n < 1 || n > DGM__SWEEP_MAX_TRIALS)
        return dgm_cfg_error(nn, NULL, DGM_ERANGE, "n: 1 to %d draws, got %lld",
                             DGM__SWEEP_MAX_TRIALS, (long long)n);
    if (dgm_cfg_get(rnd, "seed") &&
        (rc = dgm_cfg_to_int(dgm_cfg_get(rnd, "seed"), &seed)) < 0)
        return rc;
    if (dgm_cfg_kind_of(params) != DGM_CFG_MAP || dgm_cfg_len(params) == 0)
        return dgm_cfg_error(params ? params : rnd, NULL, DGM_EMISSING,
                             "`params:` must map each key to a "
                             "distribution");
    /* Every draw is in a trial: refuse what would be too big before
     * drawing it. */
    if ((double)n * dgm_cfg_len(params) > DGM__SWEEP_MAX_NODES)
        return dgm_cfg_error(rnd, NULL, DGM_ERANGE,
                             "%lld draws of %d parameters make more than "
                             "%ld values; at most %ld in one sweep",
                             (long long)n, dgm_cfg_len(params),
                             DGM__SWEEP_MAX_NODES, DGM__SWEEP_MAX_NODES);
    dim *d = dim_add(ds, (int)n);
    if (!d)
        return dgm_last_code();
    /* Draw after draw, parameter after parameter in file order: the first
     * draws do not change when n grows. */
    dgm_rng rng;
    dgm_rng_seed(&rng, (uint64_t)seed);
    for (int j = 0; j < n; j++)
        for (int i = 0; i < dgm_cfg_len(params); i++) {
            const dgm_config *v = NULL;
            char *label = NULL;
            if ((rc = draw(vals, &rng, dgm_cfg_at(params, i), &v, &label)) <
                    0 ||
                (rc = option_add(&d->opt[j], dgm_cfg_key_at(params, i), v,
                                 label)) < 0)
                return rc;
        }
    return 0;
}

/* `search: {tpe: ...}`: n trials whose searched keys hold placeholders
 * until each one's proposal is made at its launch; no label, so the
 * names are the trial numbers. */
static int expand_search(dgm__sweep *s, const dgm_config *sec)
{
    if (dgm_cfg_kind_of(sec) != DGM_CFG_MAP || dgm_cfg_len(sec) != 1 ||
        strcmp(dgm_cfg_key_at(sec, 0), "tpe"))
        return dgm_cfg_error(sec, NULL, DGM_ETYPE,
                             "expected {tpe: {n: N, startup: S, params: "
                             "{key: distribution}}}");
    int rc = dgm__sweep_tpe_read(&s->tpe, dgm_cfg_at(sec, 0));
    if (rc < 0)
        return rc;
    dim *d = dim_add(&s->values->ds, (int)s->tpe->n);
    if (!d)
        return dgm_last_code();
    for (int j = 0; j < d->n; j++)
        for (int k = 0; k < s->tpe->n_params; k++)
            if ((rc = option_add(&d->opt[j], s->tpe->keys[k],
                                 dgm__sweep_tpe_placeholder(s->tpe, k),
                                 strdup(""))) < 0)
                return rc;
    return 0;
}

static int expand_seeds(struct dgm__sweep_values *vals, const dgm_config *seeds)
{
    dims *ds = &vals->ds;
    int64_t v;
    int rc;
    if (dgm_cfg_kind_of(seeds) == DGM_CFG_SCALAR) {
        if ((rc = dgm_cfg_to_int(seeds, &v)) < 0)
            return rc;
        if (v < 1 || v > DGM__SWEEP_MAX_TRIALS)
            return dgm_cfg_error(seeds, NULL, DGM_ERANGE,
                                 "a count of seeds from 1 to %d, got %lld",
                                 DGM__SWEEP_MAX_TRIALS, (long long)v);
        dim *d = dim_add(ds, (int)v);
        if (!d)
            return dgm_last_code();
        for (int j = 0; j < d->n; j++) {
            char t[32];
            snprintf(t, sizeof t, "%d", j);
            if ((rc = option_add(&d->opt[j], "seed",
                                 dgm__tool_scalar(&vals->made, seeds, t),
                                 strdup(t))) < 0)
                return rc;
        }
        return 0;
    }
    if (dgm_cfg_kind_of(seeds) != DGM_CFG_SEQ || dgm_cfg_len(seeds) == 0)
        return dgm_cfg_error(seeds, NULL, DGM_ETYPE,
                             "expected a count (3) or a list of seeds "
                             "([0, 1, 2])");
    for (int j = 0; j < dgm_cfg_len(seeds); j++) {
        if ((rc = dgm_cfg_to_int(dgm_cfg_at(seeds, j), &v)) < 0)
            return rc;
        if (v < 0)
            return dgm_cfg_error(dgm_cfg_at(seeds, j), NULL, DGM_ERANGE,
                                 "a seed is >= 0, got %lld", (long long)v);
    }
    dim *d = dim_add(ds, dgm_cfg_len(seeds));
    if (!d)
        return dgm_last_code();
    for (int j = 0; j < d->n; j++) {
        const dgm_config *s = dgm_cfg_at(seeds, j);
        if ((rc = option_add(&d->opt[j], "seed", s, strdup(dgm_cfg_text(s)))) <
            0)
            return rc;
    }
    return 0;
}

static char *xstrdup_or_null(const dgm_config *n)
{
    const char *t = dgm_cfg_text(n);
    return t && dgm_cfg_kind_of(n) != DGM_CFG_NULL ? strdup(t) : NULL;
}

static int read_slurm(dgm__sweep_slurm *sl, const dgm_config *sec)
{
    static const char *const keys[] = {"partition",     "time",
                                       "cpus_per_task", "max_parallel",
                                       "ntasks",        "extra_args"};
    sl->cpus_per_task = 1;
    sl->ntasks = 1;
    if (!sec || dgm_cfg_kind_of(sec) == DGM_CFG_NULL)
        return 0;
    if (dgm_cfg_kind_of(sec) != DGM_CFG_MAP)
        return dgm_cfg_error(sec, NULL, DGM_ETYPE,
                             "expected a map {partition, time, "
                             "cpus_per_task, max_parallel, ntasks, "
                             "extra_args}");
    int rc;
    for (int i = 0; i < dgm_cfg_len(sec); i++) {
        const char *k = dgm_cfg_key_at(sec, i);
        const dgm_config *v = dgm_cfg_at(sec, i);
        const char *s;
        if (!strcmp(k, "partition") || !strcmp(k, "time")) {
            if ((rc = dgm_cfg_to_str(v, &s)) < 0)
                return rc;
            char **dst = k[0] == 'p' ? &sl->partition : &sl->time;
            free(*dst);
            if (!(*dst = xstrdup_or_null(v)))
                return oom();
        } else if (!strcmp(k, "cpus_per_task") || !strcmp(k, "max_parallel") ||
                   !strcmp(k, "ntasks")) {
            int64_t x;
            if ((rc = dgm_cfg_to_int(v, &x)) < 0)
                return rc;
            int lo = k[0] == 'm' ? 0 : 1;
            if (x < lo || x > 100000)
                return dgm_cfg_error(v, NULL, DGM_ERANGE,
                                     "%s: %d to 100000, got %lld", k, lo,
                                     (long long)x);
            *(k[0] == 'c'   ? &sl->cpus_per_task
              : k[0] == 'm' ? &sl->max_parallel
                            : &sl->ntasks) = x;
        } else if (!strcmp(k, "extra_args")) {
            if (dgm_cfg_kind_of(v) != DGM_CFG_SEQ)
                return dgm_cfg_error(v, NULL, DGM_ETYPE,
                                     "extra_args: a list of sbatch "
                                     "arguments ([\"--qos=short\"])");
            sl->extra_args =
                calloc((size_t)dgm_cfg_len(v) + 1, sizeof *sl->extra_args);
            if (!sl->extra_args)
                return oom();
            for (int j = 0; j < dgm_cfg_len(v); j++) {
                if ((rc = dgm_cfg_to_str(dgm_cfg_at(v, j), &s)) < 0)
                    return rc;
                if (!(sl->extra_args[sl->n_extra++] = strdup(s)))
                    return oom();
            }
        } else {
            const char *dym = dgm_did_you_mean(k, keys, 6);
            return dgm_cfg_error(v, NULL, DGM_EKEY,
                                 "unknown slurm key '%s'%s%s%s", k,
                                 dym ? " (did you mean '" : "", dym ? dym : "",
                                 dym ? "'?)" : "");
        }
    }
    return 0;
}

static void values_free(struct dgm__sweep_values *v)
{
    if (!v)
        return;
    dims_free(&v->ds);
    dgm__tool_scalars_free(&v->made);
    dgm_config_free(v->spec);
    free(v);
}

void dgm__sweep_free(dgm__sweep *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->n_trials; i++) {
        free(s->trials[i].assign); /* the assignments are the options' */
        free(s->trials[i].name);
    }
    free(s->trials);
    values_free(s->values);
    dgm_config_free(s->base);
    free(s->slurm.partition);
    free(s->slurm.time);
    for (int i = 0; i < s->slurm.n_extra; i++)
        free(s->slurm.extra_args[i]);
    free(s->slurm.extra_args);
    if (s->asha)
        dgm__asha_config_free(s->asha);
    free(s->asha);
    dgm__sweep_tpe_free(s->tpe);
    free(s);
}

/* `scheduler: {asha: {...}}`: the only scheduler so far. */
static int read_scheduler(dgm__sweep *s, const dgm_config *sec)
{
    if (dgm_cfg_kind_of(sec) != DGM_CFG_MAP || dgm_cfg_len(sec) != 1 ||
        strcmp(dgm_cfg_key_at(sec, 0), "asha"))
        return dgm_cfg_error(sec, NULL, DGM_ETYPE,
                             "expected {asha: {metric: M, mode: min|max, "
                             "min_steps: S, max_steps: T, reduction: R}}");
    if (!(s->asha = calloc(1, sizeof *s->asha)))
        return oom();
    return dgm__asha_config_read(s->asha, dgm_cfg_at(sec, 0));
}

/* A folder-safe copy of text into out (at most cap - 1 bytes). */
static void sanitize(char *out, size_t cap, const char *text)
{
    size_t j = 0;
    for (const char *c = text; *c && j + 1 < cap; c++) {
        bool ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                  (*c >= '0' && *c <= '9') || strchr("._+-", *c);
        out[j++] = ok ? *c : '_';
    }
    out[j] = '\0';
}

/* key's last `segs` segments ("a.b.c", 2 -> "b.c"). */
static const char *tail_of(const char *key, int segs)
{
    const char *s = key + strlen(key);
    while (s > key && segs > 0) {
        s--;
        if (*s == '.' && --segs == 0)
            return s + 1;
    }
    return key;
}

/* The name part of a key: its last segment, or the last two, or all of
 * it, whichever first tells it from the other swept keys. */
static const char *short_key(const char *key, const dims *ds)
{
    for (int segs = 1; segs <= 2; segs++) {
        const char *s = tail_of(key, segs);
        bool clash = false;
        for (int i = 0; i < ds->n; i++)
            for (int k = 0; k < ds->d[i].opt[0].n; k++) {
                const char *o = ds->d[i].opt[0].a[k].key;
                clash |= strcmp(o, key) && !strcmp(tail_of(o, segs), s);
            }
        if (!clash)
            return s;
    }
    return key;
}

static int make_trial(dgm__sweep *s, const dims *ds, int t, int width)
{
    dgm__sweep_trial *tr = &s->trials[t];
    tr->index = t;
    int total = 0;
    for (int i = 0; i < ds->n; i++)
        total += ds->d[i].opt[0].n;
    tr->assign = calloc((size_t)(total ? total : 1), sizeof *tr->assign);
    char name[256];
    int len = snprintf(name, sizeof name, "%0*d", width, t);
    if (!tr->assign)
        return oom();
    /* Mixed radix, the last dimension fastest. */
    int rest = t, pick[64];
    for (int i = ds->n - 1; i >= 0; i--) {
        pick[i] = rest % ds->d[i].n;
        rest /= ds->d[i].n;
    }
    for (int i = 0; i < ds->n; i++) {
        const option *o = &ds->d[i].opt[pick[i]];
        for (int k = 0; k < o->n; k++) {
            dgm__sweep_assign *a = &tr->assign[tr->n_assign++];
            *a = o->a[k];
            if (!a->label[0])
                continue; /* decided at launch (search:) */
            char part[128], sk[64], sv[48];
            sanitize(sk, sizeof sk, short_key(a->key, ds));
            sanitize(sv, sizeof sv, a->label);
            snprintf(part, sizeof part, "-%s=%s", sk, sv);
            if (len + strlen(part) < 200)
                len +=
                    snprintf(name + len, sizeof name - (size_t)len, "%s", part);
        }
    }
    return (tr->name = strdup(name)) ? 0 : oom();
}

/* Nodes and bytes (keys and scalar text) of a value; key is the
 * value's own key in its map, or NULL. */
static void value_size(const dgm_config *n, const char *key, double *nodes,
                       double *bytes)
{
    const char *t = dgm_cfg_text(n);
    *nodes += 1;
    *bytes += (key ? strlen(key) : 0) + (t ? strlen(t) : 0);
    for (int i = 0; i < dgm_cfg_len(n); i++)
        value_size(dgm_cfg_at(n, i), dgm_cfg_key_at(n, i), nodes, bytes);
}

/* The expanded size: each option's assignments counted once for every
 * trial that makes them (count / options of its dimension). */
static int check_size(const dims *ds, double count, const dgm_config *sw,
                      const dgm_config *name)
{
    double nodes = 0, bytes = 0, most_nodes = 0, most_bytes = 0;
    for (int i = 0; i < ds->n; i++) {
        double per = count / ds->d[i].n, mn = 0, mb = 0;
        for (int j = 0; j < ds->d[i].n; j++) {
            double on = 0, ob = 0;
            for (int k = 0; k < ds->d[i].opt[j].n; k++) {
                const dgm__sweep_assign *a = &ds->d[i].opt[j].a[k];
                ob += strlen(a->key);
                value_size(a->value, NULL, &on, &ob);
            }
            nodes += per * on;
            bytes += per * ob;
            mn = on > mn ? on : mn;
            mb = ob > mb ? ob : mb;
        }
        most_nodes += mn;
        most_bytes += mb;
    }
    const char *nm = dgm_cfg_text(name);
    if (nodes > DGM__SWEEP_MAX_NODES)
        return dgm_cfg_error(sw, NULL, DGM_ERANGE,
                             "the sweep%s%s%s is too big: %.0f trials assign "
                             "%.0f config values in all (up to %.0f each); "
                             "at most %ld in one sweep (sweep fewer or "
                             "smaller values)",
                             nm ? " of '" : "", nm ? nm : "", nm ? "'" : "",
                             count, nodes, most_nodes, DGM__SWEEP_MAX_NODES);
    if (bytes > DGM__SWEEP_MAX_BYTES)
        return dgm_cfg_error(sw, NULL, DGM_ERANGE,
                             "the sweep%s%s%s is too big: %.0f trials assign "
                             "%.0f bytes of keys and text in all (up to %.0f "
                             "each); at most %ld in one sweep (sweep fewer "
                             "or smaller values)",
                             nm ? " of '" : "", nm ? nm : "", nm ? "'" : "",
                             count, bytes, most_bytes, DGM__SWEEP_MAX_BYTES);
    return 0;
}

int dgm__sweep_expand(dgm__sweep **out, const dgm_config *root)
{
    static const char *const keys[] = {"grid",  "zip",       "random", "seeds",
                                       "slurm", "scheduler", "search"};
    *out = NULL;
    const dgm_config *sw = dgm_cfg_get(root, "sweep");
    if (!sw || dgm_cfg_kind_of(sw) == DGM_CFG_NULL)
        return dgm_cfg_error(root, NULL, DGM_EMISSING,
                             "the experiment has no `sweep:` section");
    if (dgm_cfg_kind_of(sw) != DGM_CFG_MAP)
        return dgm_cfg_error(sw, NULL, DGM_ETYPE,
                             "expected a map {grid, zip, random, seeds, "
                             "slurm}");
    int krc = dgm__tool_known_keys(sw, "sweep ", keys, 7);
    if (krc < 0)
        return krc;
    dgm__sweep *s = calloc(1, sizeof *s);
    if (!s)
        return oom();
    /* The trials point into the sweep section: the sweep owns a copy of
     * it, kept inside a copy of the experiment so that messages about
     * its values still say "sweep.grid...". The trials' configs carry
     * no sweep: each is one run. */
    struct dgm__sweep_values *v = s->values = calloc(1, sizeof *v);
    if (!v || !(v->spec = dgm_config_clone(root)) ||
        !(s->base = dgm_config_clone(root)) ||
        dgm_config_remove(s->base, "sweep") < 0) {
        dgm__sweep_free(s);
        return oom();
    }
    sw = dgm_cfg_get(v->spec, "sweep");
    dims *ds = &v->ds;
    int rc = 0;
    const dgm_config *sec;
    if ((sec = dgm_cfg_get(sw, "grid")) && dgm_cfg_kind_of(sec))
        rc = expand_grid(ds, sec);
    if (rc == 0 && (sec = dgm_cfg_get(sw, "zip")) && dgm_cfg_kind_of(sec))
        rc = expand_zip(ds, sec);
    if (rc == 0 && (sec = dgm_cfg_get(sw, "random")) && dgm_cfg_kind_of(sec))
        rc = expand_random(v, sec);
    if (rc == 0 && (sec = dgm_cfg_get(sw, "search")) && dgm_cfg_kind_of(sec)) {
        /* Proposals learn from whole trials: nothing else varies them. */
        if (ds->n > 0)
            rc = dgm_cfg_error(sec, NULL, DGM_ECONFIG,
                               "search: proposes every trial's values; "
                               "give no grid, zip or random with it");
        else
            rc = expand_search(s, sec);
    }
    if (rc == 0 && (sec = dgm_cfg_get(sw, "seeds")) && dgm_cfg_kind_of(sec))
        rc = expand_seeds(v, sec);
    if (rc == 0 && s->tpe && ds->n > 1 && ds->d[ds->n - 1].n > 1)
        rc = dgm_cfg_error(dgm_cfg_get(sw, "seeds"), NULL, DGM_ECONFIG,
                           "search: each trial is one proposal; give one "
                           "seed, not %d",
                           ds->d[ds->n - 1].n);
    if (rc == 0)
        rc = read_slurm(&s->slurm, dgm_cfg_get(sw, "slurm"));
    if (rc == 0 && (sec = dgm_cfg_get(sw, "scheduler")) && dgm_cfg_kind_of(sec))
        rc = read_scheduler(s, sec);
    /* The search's loss: its own metric, or with ASHA the scheduler's. */
    if (rc == 0 && s->tpe && !s->asha && !s->tpe->metric)
        rc = dgm_cfg_error(dgm_cfg_get(dgm_cfg_get(sw, "search"), "tpe"), NULL,
                           DGM_EMISSING,
                           "missing `metric:` (the evaluation metric the "
                           "search minimises or, with mode: max, "
                           "maximises)");
    if (rc == 0 && s->tpe && s->asha && s->tpe->metric)
        rc = dgm_cfg_error(dgm_cfg_get(dgm_cfg_get(sw, "search"), "tpe"), NULL,
                           DGM_ECONFIG,
                           "metric and mode come from the ASHA scheduler; "
                           "give them there only");
    /* A key swept twice would silently let one section win. */
    const dgm__sweep_assign *seen[256];
    int n_seen = 0;
    for (int i = 0; rc == 0 && i < ds->n; i++)
        for (int k = 0; rc == 0 && k < ds->d[i].opt[0].n; k++) {
            const dgm__sweep_assign *a = &ds->d[i].opt[0].a[k];
            for (int j = 0; j < n_seen; j++)
                if (!strcmp(seen[j]->key, a->key)) {
                    rc = dgm_cfg_error(a->value, NULL, DGM_EDUP,
                                       "key '%s' is swept twice (grid, zip, "
                                       "random and seeds set different "
                                       "keys)",
                                       a->key);
                    break;
                }
            if (n_seen < 256)
                seen[n_seen++] = a;
        }
    double count = 1;
    for (int i = 0; i < ds->n; i++)
        count *= ds->d[i].n;
    if (rc == 0 && count > DGM__SWEEP_MAX_TRIALS)
        rc = dgm_cfg_error(sw, NULL, DGM_ERANGE,
                           "%.0f trials; at most %d in one sweep", count,
                           DGM__SWEEP_MAX_TRIALS);
    if (rc == 0)
        rc = check_size(ds, count, sw, dgm_cfg_get(s->base, "name"));
    if (rc == 0) {
        s->n_trials = (int)count;
        s->trials = calloc((size_t)s->n_trials, sizeof *s->trials);
        if (!s->trials)
            rc = oom();
    }
    int width = 3;
    for (int n = s->n_trials - 1; n >= 1000; n /= 10)
        width++;
    for (int t = 0; rc == 0 && t < s->n_trials; t++)
        rc = make_trial(s, ds, t, width);
    if (rc < 0) {
        dgm__sweep_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

int dgm__sweep_trial_config(const dgm__sweep *s, int i, dgm_config **out)
{
    *out = NULL;
    if (!s || i < 0 || i >= s->n_trials)
        return dgm_error(DGM_EINVAL, "sweep: no trial %d", i);
    dgm_config *c = dgm_config_clone(s->base);
    if (!c)
        return oom();
    const dgm__sweep_trial *t = &s->trials[i];
    for (int k = 0; k < t->n_assign; k++) {
        int rc = dgm_config_set(c, t->assign[k].key, t->assign[k].value);
        if (rc < 0) {
            dgm_config_free(c);
            return dgm_error_context("trial %d (%s): ", i, t->name);
        }
    }
    *out = c;
    return 0;
}

/* ---- text and JSON of values ----------------------------------------- */

char *dgm__sweep_override_text(const dgm__sweep_assign *a)
{
    /* The config writer's quoting: what it writes reads back. */
    char *v = dgm_config_to_flow_string(a->value);
    size_t n = strlen(a->key) + (v ? strlen(v) : 0) + 2;
    char *out = v ? malloc(n) : NULL;
    if (out)
        snprintf(out, n, "%s=%s", a->key, v);
    else if (v)
        oom();
    free(v);
    return out;
}

json_t *dgm__sweep_cfg_json(const dgm_config *n)
{
    json_t *j;
    int64_t i;
    double f;
    bool bo;
    switch (dgm_cfg_type_of(n)) {
    case DGM_CFG_T_NULL:
        return json_null();
    case DGM_CFG_T_INT:
        return dgm_cfg_to_int(n, &i) == 0 ? json_integer(i) : json_null();
    case DGM_CFG_T_BOOL:
        return dgm_cfg_to_bool(n, &bo) == 0 ? json_boolean(bo) : json_null();
    case DGM_CFG_T_FLOAT:
        /* .inf and .nan have no JSON number: their text */
        if (dgm_cfg_to_float(n, &f) == 0 && isfinite(f))
            return json_real(f);
        return json_string(dgm_cfg_text(n));
    case DGM_CFG_T_STRING:
        return json_string(dgm_cfg_text(n));
    default:
        break;
    }
    switch (dgm_cfg_kind_of(n)) {
    case DGM_CFG_SEQ:
        j = json_array();
        for (int k = 0; j && k < dgm_cfg_len(n); k++)
            json_array_append_new(j, dgm__sweep_cfg_json(dgm_cfg_at(n, k)));
        return j;
    case DGM_CFG_MAP:
        j = json_object();
        for (int k = 0; j && k < dgm_cfg_len(n); k++)
            json_object_set_new(j, dgm_cfg_key_at(n, k),
                                dgm__sweep_cfg_json(dgm_cfg_at(n, k)));
        return j;
    default:
        return json_null();
    }
}
