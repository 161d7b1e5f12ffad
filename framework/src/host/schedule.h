/* schedule.h - learning-rate schedules and gradient clipping, which the
 * host applies around any optimizer plugin, and the same schedules for
 * the weights of objective terms (never installed).
 *
 * The keys live in the optimizer's own map, next to the plugin's:
 *
 *     optimizer: {plugin: adam, lr: 1.0e-3, schedule: cosine, warmup: 500,
 *                 min_lr: 1.0e-5, clip_norm: 1.0}
 *
 * The host validates that map against the plugin's schema with
 * dgm__optimizer_host_keys as extra keys, reads the base rate with
 * dgm_cfg_float(cfg, "lr"), fills a dgm__schedule with
 * dgm__schedule_from_config and, before update t (1-based), calls
 *
 *     double lr = dgm__schedule_lr(&s, base_lr, t - 1);
 *     if (s.clip_norm > 0) dgm__clip_grad_norm(ps, n, s.clip_norm);
 *     iface->step(self, ps, n, lr, t);
 *
 * Internal to libdgm (not exported); schedule.c uses only the public
 * API, so test_optim compiles its own copy to call these.
 */
#ifndef DGM_SCHEDULE_H
#define DGM_SCHEDULE_H

#include <stdint.h>

#include "dgm/config.h"
#include "dgm/graph.h"
#include "plugin_check.h"

typedef enum dgm__sched_kind {
    DGM__SCHED_CONSTANT = 0, /* base rate throughout */
    DGM__SCHED_STEP,         /* base * gamma^floor(s / step_size) */
    DGM__SCHED_COSINE,       /* half a cosine from base down to min_lr */
    DGM__SCHED_LINEAR,       /* a straight line from base down to min_lr */
    /* objective term weights only: `cycles` equal periods, each rising
     * linearly from 0 to base over its first `ratio`, then holding
     * (Fu et al. 2019, cyclical annealing) */
    DGM__SCHED_CYCLICAL
} dgm__sched_kind;

typedef struct dgm__schedule {
    dgm__sched_kind kind;
    int64_t warmup;      /* linear warm-up from 0 over this many updates */
    int64_t step_size;   /* step: updates between decays */
    double gamma;        /* step: decay factor */
    double min_lr;       /* cosine, linear: the final rate (absolute) */
    int64_t total_steps; /* updates in the whole run (cosine, linear) */
    double clip_norm;    /* global gradient-norm limit; <= 0: no clipping */
    int64_t cycles;      /* cyclical: periods in the run (after warm-up) */
    double ratio;        /* cyclical: part of a period spent rising */
} dgm__schedule;

/* dgm__optimizer_host_keys (plugin_check.h): the keys the host reads from
 * an optimizer's map. */
/* The same keys as a schema (types, defaults, ranges, help), ending with
 * DGM_PARAM_END; for validation and for `dgm plugins`-style listings. */
extern const dgm_param_spec dgm__schedule_schema[];

/* The keys of a scheduled objective term weight, `weight: {value: 1.0,
 * schedule: cyclical, cycles: 4, ratio: 0.5}`: the same shapes as the
 * learning rate's (value for lr, min for min_lr) and cyclical. */
extern const dgm_param_spec dgm__weight_schedule_schema[];

/* A constant schedule with no warm-up and no clipping. */
void dgm__schedule_init(dgm__schedule *s);

/* Read the host keys from an optimizer's map (absent keys take the
 * schema's defaults; keys are type- and range-checked here too, so an
 * unvalidated map is safe). total_steps is the number of updates the run
 * will make; cosine and linear need it > 0 and larger than warmup.
 * Returns 0, or DGM_ETYPE / DGM_ERANGE / DGM_ECONFIG with a message naming
 * the key ("file:line:col: optimizer.warmup: ..."); *s is untouched on
 * failure. */
int dgm__schedule_from_config(dgm__schedule *s,
                              const dgm_config *optimizer_node,
                              int64_t total_steps);

/* Read a term weight's schedule map (dgm__weight_schedule_schema) the
 * same way; *value receives its `value:`. */
int dgm__weight_schedule_from_config(dgm__schedule *s, double *value,
                                     const dgm_config *weight_node,
                                     int64_t total_steps);

/* The rate (or weight, base_lr its value) for the update that follows `step`
 * completed updates (step = t - 1 for the optimizer's 1-based t), so step 0 is
 * the first. Warm-up: base * step / warmup for step < warmup; the schedule
 * proper then runs on step - warmup over total_steps - warmup updates. */
double dgm__schedule_lr(const dgm__schedule *s, double base_lr, int64_t step);

/* "constant", "step", "cosine", "linear", "cyclical". */
const char *dgm__schedule_name(dgm__sched_kind k);

/* PyTorch's clip_grad_norm_ (2-norm): the global norm of the gradients of
 * ps[0..n) that are trainable (not frozen, grad != NULL); if max_norm > 0
 * every such gradient is multiplied by min(1, max_norm / (norm + 1e-6)).
 * max_norm <= 0 only measures. Returns the norm before clipping
 * (non-finite if a gradient is). */
double dgm__clip_grad_norm(dgm_param *const *ps, int n, double max_norm);

#endif
