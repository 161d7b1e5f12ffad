/* tp_abi_layout.c - refused by the registry: the right ABI version, but
 * built (as it claims) with DGM_MAX_DIMS = 4, so every dgm_tensor it
 * touched would be laid out differently from the host's. */
#include "dgm/dgm.h"

static dgm_var *apply(void *self, dgm_graph *g, dgm_var *const *in, int n)
{
    return in[0];
}

static const dgm_loss_iface iface = {
    .min_inputs = 1, .max_inputs = 1, .apply = apply};

/* DGM_PLUGIN_HEADER with one value changed, as a build against headers
 * with another DGM_MAX_DIMS would have it. */
#define LAYOUT_MAX_DIMS_4                                                  \
    {.size = sizeof(dgm_abi_layout),                                       \
     .max_dims = 4,                                                        \
     .rnn_max_layers = DGM_RNN_MAX_LAYERS,                                 \
     .tensor = sizeof(dgm_tensor),                                         \
     .shape = sizeof(dgm_shape),                                           \
     .step = sizeof(dgm_step),                                             \
     .batch = sizeof(dgm_batch),                                           \
     .data_info = sizeof(dgm_data_info),                                   \
     .param_spec = sizeof(dgm_param_spec),                                 \
     .phase_desc = sizeof(dgm_phase_desc),                                 \
     .generate_opts = sizeof(dgm_generate_opts),                           \
     .bn_params = sizeof(dgm_bn_params),                                   \
     .sn_params = sizeof(dgm_sn_params),                                   \
     .rnn_params = sizeof(dgm_rnn_params)}

static const dgm_plugin_desc desc = {.abi_major = DGM_ABI_MAJOR,
                                     .abi_minor = DGM_ABI_MINOR,
                                     .size = sizeof(dgm_plugin_desc),
                                     .layout = LAYOUT_MAX_DIMS_4,
                                     DGM_PLUGIN_LOSS(&iface),
                                     .name = "tp_abi_layout",
                                     .version = "1.0",
                                     .summary = "refused"};

DGM_PLUGIN_EXPORT const dgm_plugin_desc *dgm_plugin_query(uint32_t i)
{
    return i == 0 ? &desc : NULL;
}
