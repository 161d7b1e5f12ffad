/* tp_good.c - a well-formed test plugin file carrying two plugins: the
 * loss `good_loss` (returns its first input) and the block `good_block`
 * (identity, with a small schema). */
#include <stdlib.h>

#include "dgm/dgm.h"

static dgm_var *loss_apply(void *self, dgm_graph *g, dgm_var *const *in, int n)
{
    return n > 0 ? in[0] : NULL;
}

static const dgm_loss_iface loss_iface = {
    .min_inputs = 1,
    .max_inputs = 2,
    .inputs_help = "x [target]",
    .apply = loss_apply,
};

static const dgm_param_spec block_params[] = {
    DGM_PARAM_INT("width", .def = "8", DGM_GE(1), DGM_LE(1024),
                  .help = "units"),
    DGM_PARAM_CHOICE("act", .def = "relu", .choices = "relu|tanh",
                     .help = "activation"),
    DGM_PARAM_FLOAT("scale", DGM_GE(0.0), DGM_LE(2.0),
                    .help = "required scale"),
    DGM_PARAM_PLUGIN("inner", .kind = "block", .help = "optional block"),
    DGM_PARAM_END,
};

static int block_create(void **self, const dgm_config *cfg, dgm_build *b,
                        const dgm_shape *in, dgm_shape *out)
{
    *out = *in;
    *self = malloc(1);
    return *self ? 0 : dgm_error(DGM_ENOMEM, "good_block: out of memory");
}

static dgm_var *block_forward(void *self, dgm_graph *g, dgm_var *x)
{
    return x;
}

static void block_destroy(void *self)
{
    free(self);
}

static const dgm_block_iface block_iface = {
    .create = block_create,
    .forward = block_forward,
    .destroy = block_destroy,
};

static const dgm_plugin_desc descs[] = {
    {DGM_PLUGIN_HEADER, DGM_PLUGIN_LOSS(&loss_iface), .name = "good_loss",
     .version = "1.2", .summary = "test loss: returns its first input"},
    {DGM_PLUGIN_HEADER, DGM_PLUGIN_BLOCK(&block_iface), .name = "good_block",
     .version = "0.3", .summary = "test block: identity",
     .params = block_params},
};

DGM_PLUGIN_EXPORT const dgm_plugin_desc *dgm_plugin_query(uint32_t i)
{
    return i < 2 ? &descs[i] : NULL;
}
