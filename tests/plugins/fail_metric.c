/* fail_metric.c - test metric `fail_after`: sets `calls` for its first N
 * evaluations, then fails; lets tests check how a run records a failed
 * evaluation (at eval_every and at the end). */
#include <stdlib.h>

#include "dgm/dgm.h"

static const dgm_param_spec params[] = {
    DGM_PARAM_INT("ok", .def = "0", DGM_GE(0), DGM_LE(1e9),
                  .help = "evaluations before the failure"),
    DGM_PARAM_END,
};

typedef struct state {
    int64_t ok, calls;
} state;

static int create(void **self, const dgm_config *cfg)
{
    state *s = calloc(1, sizeof *s);
    if (!s)
        return dgm_error(DGM_ENOMEM, "fail_after: out of memory");
    s->ok = dgm_cfg_int(cfg, "ok");
    *self = s;
    return 0;
}

static int evaluate(void *self, dgm_eval *ev, dgm_results *out)
{
    state *s = self;
    (void)ev;
    if (s->calls++ >= s->ok)
        return dgm_error(DGM_EPLUGIN, "fail_after: evaluation %lld fails",
                         (long long)s->calls);
    return dgm_results_set(out, "calls", (double)s->calls);
}

/* a count of calls: no better side */
static const dgm_metric_figure figures[] = {{"calls", DGM_BETTER_NONE}, {NULL}};

static const dgm_metric_iface iface = {.create = create,
                                       .evaluate = evaluate,
                                       .destroy = free,
                                       .figures = figures};

static const dgm_plugin_desc desc = {
    DGM_PLUGIN_HEADER,
    DGM_PLUGIN_METRIC(&iface),
    .name = "fail_after",
    .version = "1.0",
    .summary = "test: a metric that fails after N evaluations",
    .params = params,

};

DGM_PLUGIN_EXPORT const dgm_plugin_desc *dgm_plugin_query(uint32_t i)
{
    return i == 0 ? &desc : NULL;
}
