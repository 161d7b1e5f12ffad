/* nan_loss.c - test loss `nan_after`: the mean of its input until the
 * N-th call, then NaN; lets tests check that divergence stops a run. */
#include <math.h>
#include <stdlib.h>

#include "dgm/dgm.h"

static const dgm_param_spec params[] = {
    DGM_PARAM_INT("after", .def = "3", DGM_GE(0), DGM_LE(1e9),
                  .help = "calls before the NaN"),
    DGM_PARAM_END,
};

typedef struct state {
    int64_t after, calls;
} state;

static int create(void **self, const dgm_config *cfg)
{
    state *s = calloc(1, sizeof *s);
    if (!s)
        return dgm_error(DGM_ENOMEM, "nan_after: out of memory");
    s->after = dgm_cfg_int(cfg, "after");
    *self = s;
    return 0;
}

static dgm_var *apply(void *self, dgm_graph *g, dgm_var *const *in, int n)
{
    state *s = self;
    dgm_var *m = dgm_affine(g, dgm_mean_all(g, in[0]), 0.0f, 0.0f);
    return s->calls++ < s->after ? m : dgm_affine(g, m, 1.0f, NAN);
}

static const dgm_loss_iface iface = {.create = create,
                                     .min_inputs = 1,
                                     .max_inputs = 1,
                                     .inputs_help = "any",
                                     .apply = apply,
                                     .destroy = free};

static const dgm_plugin_desc desc = {
    DGM_PLUGIN_HEADER,
    DGM_PLUGIN_LOSS(&iface),
    .name = "nan_after",
    .version = "1.0",
    .summary = "test: NaN after N calls",
    .params = params,

};

DGM_PLUGIN_EXPORT const dgm_plugin_desc *dgm_plugin_query(uint32_t i)
{
    return i == 0 ? &desc : NULL;
}
