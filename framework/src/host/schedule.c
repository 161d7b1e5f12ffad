/* schedule.c - learning-rate schedules (constant, step, cosine, linear,
 * each with linear warm-up) and clipping by global gradient norm; the
 * same shapes, and cyclical annealing, for objective term weights. */
#include <math.h>
#include <omp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/error.h"
#include "schedule.h"

const dgm_param_spec dgm__schedule_schema[] = {
    DGM_PARAM_CHOICE(
        "schedule", .def = "constant", .choices = "constant|step|cosine|linear",
        .help = "learning-rate schedule the host applies to this optimizer"),
    DGM_PARAM_INT(
        "warmup", .def = "0", DGM_GE(0),
        .help = "updates of linear warm-up from 0 to lr before the schedule"),
    DGM_PARAM_INT("step_size", .def = "1000", DGM_GE(1),
                  .help = "step: updates between two decays by gamma"),
    DGM_PARAM_FLOAT("gamma", .def = "0.1", DGM_GE(0),
                    .help = "step: factor applied every step_size updates"),
    DGM_PARAM_FLOAT("min_lr", .def = "0", DGM_GE(0),
                    .help =
                        "cosine, linear: the rate reached at the last update"),
    DGM_PARAM_FLOAT(
        "clip_norm", .def = "0", DGM_GE(0),
        .help =
            "clip gradients to this global 2-norm before each update; 0: off"),
    DGM_PARAM_END,
};

const dgm_param_spec dgm__weight_schedule_schema[] = {
    DGM_PARAM_FLOAT("value", .def = "1.0",
                    .help = "the weight the schedule shapes (its peak)"),
    DGM_PARAM_CHOICE("schedule", .def = "constant",
                     .choices = "constant|step|cosine|linear|cyclical",
                     .help = "how the weight moves over the run's updates"),
    DGM_PARAM_INT("warmup", .def = "0", DGM_GE(0),
                  .help = "updates of linear warm-up from 0 to value before "
                          "the schedule"),
    DGM_PARAM_INT("step_size", .def = "1000", DGM_GE(1),
                  .help = "step: updates between two decays by gamma"),
    DGM_PARAM_FLOAT("gamma", .def = "0.1", DGM_GE(0),
                    .help = "step: factor applied every step_size updates"),
    DGM_PARAM_FLOAT("min", .def = "0",
                    .help = "cosine, linear: the weight at the last update"),
    DGM_PARAM_INT("cycles", .def = "4", DGM_GE(1),
                  .help = "cyclical: periods the run is cut into"),
    DGM_PARAM_FLOAT("ratio", .def = "0.5", DGM_GT(0), DGM_LE(1),
                    .help = "cyclical: part of each period spent rising "
                            "from 0 to value"),
    DGM_PARAM_END,
};

static const char *const kind_names[] = {"constant", "step", "cosine", "linear",
                                         "cyclical"};

/* Is text one of the '|'-separated choices? */
static bool in_choices(const char *choices, const char *text)
{
    size_t l = strlen(text);
    for (const char *p = choices; *p;) {
        size_t k = strcspn(p, "|");
        if (k == l && !strncmp(p, text, l))
            return true;
        p += k + (p[k] == '|');
    }
    return false;
}

const char *dgm__schedule_name(dgm__sched_kind k)
{
    if ((int)k < 0 || (size_t)k >= sizeof kind_names / sizeof *kind_names)
        return "?";
    return kind_names[k];
}

void dgm__schedule_init(dgm__schedule *s)
{
    memset(s, 0, sizeof *s);
    s->kind = DGM__SCHED_CONSTANT;
    s->step_size = 1000;
    s->gamma = 0.1;
}

/* One host key: the config's value if present (type- and range-checked,
 * since the host may not have validated the map against our schema), else
 * the schema default. Exactly one of i / f / choice receives it. */
static int read_key(const dgm_config *node, const dgm_param_spec *sp,
                    int64_t *i, double *f, int *choice)
{
    const dgm_config *v = dgm_cfg_get(node, sp->name);
    if (sp->type == DGM_P_CHOICE) {
        const char *text = sp->def;
        if (v) {
            int rc = dgm_cfg_to_str(v, &text);
            if (rc < 0)
                return rc;
        }
        for (int k = 0; k < (int)(sizeof kind_names / sizeof *kind_names); k++)
            if (!strcmp(text, kind_names[k]) && in_choices(sp->choices, text)) {
                *choice = k;
                return 0;
            }
        const char *sugg = dgm_did_you_mean(
            text, kind_names, (int)(sizeof kind_names / sizeof *kind_names));
        return dgm_cfg_error(node, sp->name, DGM_ERANGE,
                             "unknown schedule '%s'%s%s%s (one of %s)", text,
                             sugg ? " (did you mean '" : "", sugg ? sugg : "",
                             sugg ? "'?)" : "", sp->choices);
    }
    double x;
    if (sp->type == DGM_P_INT) {
        int64_t n = 0;
        if (v) {
            int rc = dgm_cfg_to_int(v, &n);
            if (rc < 0)
                return rc;
        } else {
            n = strtoll(sp->def, NULL, 10);
        }
        *i = n;
        x = (double)n;
    } else {
        double d = 0;
        if (v) {
            int rc = dgm_cfg_to_float(v, &d);
            if (rc < 0)
                return rc;
        } else {
            d = strtod(sp->def, NULL);
        }
        *f = d;
        x = d;
    }
    if (sp->has_min && !(sp->min_excl ? x > sp->min : x >= sp->min))
        return dgm_cfg_error(node, sp->name, DGM_ERANGE,
                             "must be %s %g, got %g",
                             sp->min_excl ? ">" : ">=", sp->min, x);
    if (sp->has_max && !(x <= sp->max))
        return dgm_cfg_error(node, sp->name, DGM_ERANGE,
                             "must be <= %g, got %g", sp->max, x);
    return 0;
}

/* Fill *s (and *value, the `value:` key, if the schema has one) from a
 * map read against schema; min_lr and min both set s->min_lr. */
static int from_map(dgm__schedule *s, double *value, const dgm_config *node,
                    const dgm_param_spec *schema, int64_t total_steps)
{
    dgm__schedule r;
    dgm__schedule_init(&r);
    for (const dgm_param_spec *sp = schema; sp->name; sp++) {
        int64_t iv = 0;
        double fv = 0;
        int choice = 0;
        int rc = read_key(node, sp, &iv, &fv, &choice);
        if (rc < 0)
            return rc;
        if (!strcmp(sp->name, "schedule"))
            r.kind = (dgm__sched_kind)choice;
        else if (!strcmp(sp->name, "warmup"))
            r.warmup = iv;
        else if (!strcmp(sp->name, "step_size"))
            r.step_size = iv;
        else if (!strcmp(sp->name, "gamma"))
            r.gamma = fv;
        else if (!strcmp(sp->name, "min_lr") || !strcmp(sp->name, "min"))
            r.min_lr = fv;
        else if (!strcmp(sp->name, "clip_norm"))
            r.clip_norm = fv;
        else if (!strcmp(sp->name, "cycles"))
            r.cycles = iv;
        else if (!strcmp(sp->name, "ratio"))
            r.ratio = fv;
        else if (!strcmp(sp->name, "value") && value)
            *value = fv;
    }
    r.total_steps = total_steps;
    /* Cosine, linear and cyclical are defined by where they end, so they
     * need the run's length; a warm-up as long as the run leaves nothing
     * to shape. */
    if (r.kind == DGM__SCHED_COSINE || r.kind == DGM__SCHED_LINEAR ||
        r.kind == DGM__SCHED_CYCLICAL) {
        if (total_steps <= 0)
            return dgm_cfg_error(node, "schedule", DGM_ECONFIG,
                                 "'%s' needs the run's number of updates, "
                                 "got %lld",
                                 dgm__schedule_name(r.kind),
                                 (long long)total_steps);
        if (r.warmup >= total_steps)
            return dgm_cfg_error(node, "warmup", DGM_ECONFIG,
                                 "%lld warm-up updates leave none of the "
                                 "run's %lld for the '%s' schedule",
                                 (long long)r.warmup, (long long)total_steps,
                                 dgm__schedule_name(r.kind));
    }
    *s = r;
    return 0;
}

int dgm__schedule_from_config(dgm__schedule *s,
                              const dgm_config *optimizer_node,
                              int64_t total_steps)
{
    if (!s || !optimizer_node)
        return dgm_error(DGM_EINVAL, "schedule: no %s given",
                         s ? "optimizer config" : "schedule to fill");
    return from_map(s, NULL, optimizer_node, dgm__schedule_schema, total_steps);
}

int dgm__weight_schedule_from_config(dgm__schedule *s, double *value,
                                     const dgm_config *weight_node,
                                     int64_t total_steps)
{
    if (!s || !value || !weight_node)
        return dgm_error(DGM_EINVAL, "weight schedule: no %s given",
                         weight_node ? "schedule to fill" : "weight map");
    double v = 1.0;
    int rc =
        from_map(s, &v, weight_node, dgm__weight_schedule_schema, total_steps);
    if (rc == 0)
        *value = v;
    return rc;
}

double dgm__schedule_lr(const dgm__schedule *s, double base_lr, int64_t step)
{
    if (step < 0)
        step = 0;
    if (s->warmup > 0 && step < s->warmup)
        return base_lr * (double)step / (double)s->warmup;
    int64_t k = step - s->warmup;
    int64_t span = s->total_steps - s->warmup;
    switch (s->kind) {
    case DGM__SCHED_CONSTANT:
        return base_lr;
    case DGM__SCHED_STEP:
        return base_lr *
               pow(s->gamma,
                   (double)(k / (s->step_size > 0 ? s->step_size : 1)));
    case DGM__SCHED_COSINE:
        if (span <= 0 || k >= span)
            return s->min_lr;
        return s->min_lr + (base_lr - s->min_lr) * 0.5 *
                               (1.0 + cos(M_PI * (double)k / (double)span));
    case DGM__SCHED_LINEAR:
        if (span <= 0 || k >= span)
            return s->min_lr;
        return base_lr + (s->min_lr - base_lr) * (double)k / (double)span;
    case DGM__SCHED_CYCLICAL: {
        if (span <= 0 || k >= span || s->cycles < 1 || !(s->ratio > 0))
            return base_lr;
        /* Fu et al. 2019: tau = ((t - 1) mod (T / M)) / (T / M), the weight
         * f(tau) = tau / R while tau <= R, then 1, times the value. */
        double period = (double)span / (double)s->cycles;
        double tau = fmod((double)k, period) / period;
        return tau < s->ratio ? base_lr * tau / s->ratio : base_lr;
    }
    }
    return base_lr;
}

/* Clipping's passes split the gradients into blocks of CLIP_BLOCK floats
 * (a parameter's last block may be shorter; blocks never span two
 * parameters), numbered in parameter order. Each block's sum of squares
 * runs in CLIP_LANES fixed partial sums of doubles (lane l takes the
 * elements i = l mod CLIP_LANES: independent chains, and the same bits on
 * AVX2 and AVX-512; a float's square is exact in double, so a fused
 * multiply-add changes nothing), folded by a fixed tree; the blocks' sums
 * are added in block order. Which thread takes which block changes
 * nothing: the norm is the same at any thread count. */
#define CLIP_BLOCK 16384
#define CLIP_LANES 16
/* Below this many gradient floats one thread does both passes. */
#define CLIP_PAR_MIN 65536
/* Block sums kept on the stack at a time (4 KiB). */
#define CLIP_STACK 512

static double sum_squares(const float *restrict g, int64_t n)
{
    double acc[CLIP_LANES];
    for (int l = 0; l < CLIP_LANES; l++)
        acc[l] = 0.0;
    int64_t i = 0;
    for (; i + CLIP_LANES <= n; i += CLIP_LANES)
#pragma omp simd
        for (int l = 0; l < CLIP_LANES; l++)
            acc[l] += (double)g[i + l] * (double)g[i + l];
    for (int l = 0; i + l < n; l++)
        acc[l] += (double)g[i + l] * (double)g[i + l];
    /* constant widths: GCC unrolls these into vector adds */
    for (int l = 0; l < 8; l++)
        acc[l] += acc[l + 8];
    for (int l = 0; l < 4; l++)
        acc[l] += acc[l + 4];
    for (int l = 0; l < 2; l++)
        acc[l] += acc[l + 2];
    return acc[0] + acc[1];
}

static void scale(float *restrict g, int64_t n, float c)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++)
        g[i] *= c;
}

static bool clippable(const dgm_param *p)
{
    return p && !p->frozen && p->grad && p->grad->dtype == DGM_F32;
}

/* The blocks b in [lo, hi): thread t of nt takes those with (b - lo) mod
 * nt == t and writes sums[b - lo] = the block's sum of squares (pass 0),
 * or scales the block by c (pass 1). */
static void clip_pass(dgm_param *const *ps, int n, int pass, float c,
                      double *sums, int64_t lo, int64_t hi, int t, int nt)
{
    int64_t b = 0;
    for (int i = 0; i < n && b < hi; i++) {
        if (!clippable(ps[i]))
            continue;
        float *g = dgm_tensor_f32(ps[i]->grad);
        const int64_t m = dgm_tensor_numel(ps[i]->grad);
        for (int64_t at = 0; at < m && b < hi; at += CLIP_BLOCK, b++) {
            if (b < lo || (b - lo) % nt != t)
                continue;
            const int64_t len = m - at < CLIP_BLOCK ? m - at : CLIP_BLOCK;
            if (pass == 0)
                sums[b - lo] = sum_squares(g + at, len);
            else
                scale(g + at, len, c);
        }
    }
}

/* One pass over the blocks [lo, hi), on the OpenMP threads when there is
 * work for them (total: the clippable floats). */
static void clip_run(dgm_param *const *ps, int n, int pass, float c,
                     double *sums, int64_t lo, int64_t hi, int64_t total)
{
    if (total < CLIP_PAR_MIN) {
        clip_pass(ps, n, pass, c, sums, lo, hi, 0, 1);
        return;
    }
#pragma omp parallel
    clip_pass(ps, n, pass, c, sums, lo, hi, omp_get_thread_num(),
              omp_get_num_threads());
}

double dgm__clip_grad_norm(dgm_param *const *ps, int n, double max_norm)
{
    int64_t nb = 0, total = 0;
    for (int i = 0; i < n; i++)
        if (clippable(ps[i])) {
            const int64_t m = dgm_tensor_numel(ps[i]->grad);
            nb += (m + CLIP_BLOCK - 1) / CLIP_BLOCK;
            total += m;
        }
    /* The block sums of CLIP_STACK blocks (8 M floats) at a time, on the
     * stack (no allocation in a step), added in block order. */
    double sums[CLIP_STACK], ss = 0.0;
    for (int64_t lo = 0; lo < nb; lo += CLIP_STACK) {
        const int64_t hi = nb - lo < CLIP_STACK ? nb : lo + CLIP_STACK;
        clip_run(ps, n, 0, 0.0f, sums, lo, hi, total);
        for (int64_t b = lo; b < hi; b++)
            ss += sums[b - lo];
    }
    double norm = sqrt(ss);
    if (!(max_norm > 0))
        return norm;
    /* torch: coef = max_norm / (norm + 1e-6), clamped to at most 1, and a
     * NaN norm propagates into the gradients. */
    double coef = max_norm / (norm + 1e-6);
    if (coef < 1.0 || isnan(coef))
        clip_run(ps, n, 1, (float)coef, NULL, 0, nb, total);
    return norm;
}
