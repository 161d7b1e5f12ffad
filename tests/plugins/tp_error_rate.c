/* tp_error_rate.c - test metrics whose names mislead the guess of
 * `dgm compare`: `error_rate` sets the figure error_rate (its `value`) and
 * declares it higher-is-better; `old_error_rate` sets old_error_rate the
 * same way but is built as an ABI 2.0 plugin (its interface ends before
 * `figures`), so the host must not read its table and the figure stays
 * undeclared (compare falls back to the guess: lower). */
#include <stddef.h>
#include <stdlib.h>

#include "dgm/dgm.h"

static const dgm_param_spec params[] = {
    DGM_PARAM_FLOAT("value", .def = "0.5", DGM_GE(0), DGM_LE(1),
                    .help = "the figure to report"),
    DGM_PARAM_END,
};

static int create(void **self, const dgm_config *cfg)
{
    double *v = malloc(sizeof *v);
    if (!v)
        return dgm_error(DGM_ENOMEM, "error_rate: out of memory");
    *v = dgm_cfg_float(cfg, "value");
    *self = v;
    return 0;
}

static int evaluate(void *self, dgm_eval *ev, dgm_results *out)
{
    (void)ev;
    return dgm_results_set(out, "error_rate", *(double *)self);
}

static int evaluate_old(void *self, dgm_eval *ev, dgm_results *out)
{
    (void)ev;
    return dgm_results_set(out, "old_error_rate", *(double *)self);
}

static const dgm_metric_figure figures[] = {{"error_rate", DGM_BETTER_HIGHER},
                                            {NULL}};
/* a table the host must ignore: the interface size says ABI 2.0 */
static const dgm_metric_figure old_figures[] = {
    {"old_error_rate", DGM_BETTER_HIGHER}, {NULL}};

static const dgm_metric_iface iface = {.create = create,
                                       .evaluate = evaluate,
                                       .destroy = free,
                                       .figures = figures};
static const dgm_metric_iface old_iface = {.create = create,
                                           .evaluate = evaluate_old,
                                           .destroy = free,
                                           .figures = old_figures};

static const dgm_plugin_desc descs[] = {
    {DGM_PLUGIN_HEADER, DGM_PLUGIN_METRIC(&iface), .name = "error_rate",
     .version = "1.0", .summary = "test: a figure declared higher-is-better",
     .params = params},
    /* spelled out: DGM_PLUGIN_HEADER and DGM_PLUGIN_METRIC would say 2.1 */
    {.abi_major = DGM_ABI_MAJOR,
     .abi_minor = 0,
     .size = sizeof(dgm_plugin_desc),
     .layout = DGM_ABI_LAYOUT,
     .kind = DGM_KIND_METRIC,
     .iface = {.metric = &old_iface},
     .iface_size = offsetof(dgm_metric_iface, figures),
     .name = "old_error_rate",
     .version = "1.0",
     .summary = "test: an ABI 2.0 metric (no direction table)",
     .params = params},
};

DGM_PLUGIN_EXPORT const dgm_plugin_desc *dgm_plugin_query(uint32_t i)
{
    return i < sizeof descs / sizeof descs[0] ? &descs[i] : NULL;
}
