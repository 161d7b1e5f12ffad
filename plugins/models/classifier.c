/* classifier.c - model `classifier`: a feature block (conv_encoder, mlp,
 * ...) and a linear head to the data set's classes. Trained with
 * cross_entropy; its "features" output is the feature space of the
 * sample-quality metrics (fid, kid, precision_recall). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/dgm.h"

static const dgm_param_spec params[] = {
    DGM_PARAM_PLUGIN("features",
                     .def =
                         "{plugin: conv_encoder, channels: [32, 64], out: 128}",
                     .kind = "block",
                     .help = "x -> feature vector (the \"features\" output)"),
    DGM_PARAM_CHOICE("activation", .def = "relu", .choices = DGM_ACTIVATIONS,
                     .help = "applied to the features before the head"),
    DGM_PARAM_FLOAT("slope", .def = "0.2", DGM_GE(0), DGM_LE(1),
                    .help = "negative slope of leaky_relu"),
    DGM_PARAM_FLOAT("dropout", .def = "0.0", DGM_GE(0), DGM_LE(0.99),
                    .help = "dropout before the head (training only)"),
    DGM_PARAM_END,
};

typedef struct classifier {
    dgm_block *feat;
    dgm_param *w, *b;
    char act[16];
    float slope, dropout;
} classifier;

static int create(void **self, const dgm_config *cfg, dgm_build *b,
                  const dgm_data_info *data)
{
    if (!data->has_y || data->n_classes < 2)
        return dgm_error(DGM_EINVAL,
                         "classifier: the data set has no class labels "
                         "(has_y %d, %lld classes)",
                         (int)data->has_y, (long long)data->n_classes);
    if (data->y_shape.ndim != 0)
        return dgm_error(DGM_ESHAPE,
                         "classifier: needs one label per example, the data "
                         "gives labels of rank %d",
                         data->y_shape.ndim);
    if (data->x_dtype != DGM_F32)
        return dgm_error(DGM_EDTYPE, "classifier: the data must be f32, not %s",
                         dgm_dtype_name(data->x_dtype));
    classifier *m = calloc(1, sizeof *m);
    if (!m)
        return dgm_error(DGM_ENOMEM, "classifier: out of memory");
    snprintf(m->act, sizeof m->act, "%s", dgm_cfg_str(cfg, "activation"));
    m->slope = (float)dgm_cfg_float(cfg, "slope");
    m->dropout = (float)dgm_cfg_float(cfg, "dropout");
    dgm_shape fs = {0};
    int rc = dgm_block_create(b, dgm_cfg_child(cfg, "features"), "features",
                              &data->x_shape, &fs, &m->feat);
    if (rc == 0) {
        int64_t d = dgm_shape_numel(fs.ndim, fs.dim);
        rc = dgm_build_weights(b, "head", 2, (int64_t[]){data->n_classes, d},
                               data->n_classes, &m->w, &m->b);
    }
    if (rc < 0) {
        free(m); /* the block belongs to the host */
        return rc;
    }
    *self = m;
    return 0;
}

static int forward(void *self, dgm_step *s, int phase, dgm_vars *io)
{
    (void)phase;
    classifier *m = self;
    dgm_graph *g = s->g;
    dgm_var *f = dgm_block_forward(m->feat, g, dgm_vars_get(io, "x"));
    if (f && dgm_value(f)->ndim != 2)
        f = dgm_flatten(g, f);
    dgm_var *h = dgm_activation(g, f, m->act, m->slope);
    if (h && m->dropout > 0)
        h = dgm_dropout(g, h, m->dropout);
    dgm_var *logits =
        dgm_linear(g, h, dgm_param_var(g, m->w), dgm_param_var(g, m->b));
    if (!logits)
        return dgm_last_code();
    int rc = dgm_vars_set(io, "features", f);
    if (rc == 0)
        rc = dgm_vars_set(io, "logits", logits);
    /* "y" is already in io when the data has labels: the objective's
     * target. */
    return rc;
}

static int sample(void *self, dgm_step *s, int64_t n, dgm_vars *io,
                  dgm_var **out)
{
    (void)self, (void)s, (void)n, (void)io;
    *out = NULL;
    return dgm_error(DGM_EUNSUPPORTED,
                     "classifier: a classifier does not generate samples");
}

static void destroy(void *self)
{
    free(self);
}

static const dgm_phase_desc phases[] = {
    {"train", "*", "[{loss: cross_entropy, inputs: [logits, y]}]", 1},
};

static const dgm_model_iface iface = {
    .phases = phases,
    .n_phases = 1,
    .create = create,
    .forward = forward,
    .sample = sample,
    .destroy = destroy,
};

static const dgm_plugin_desc desc = {
    DGM_PLUGIN_HEADER,
    DGM_PLUGIN_MODEL(&iface),
    .name = "classifier",
    .version = "1.0",
    .summary = "feature block + linear head (outputs features, logits, y)",
    .params = params,

};

DGM_PLUGIN_NAME(classifier);

DGM_PLUGIN_EXPORT const dgm_plugin_desc *dgm_plugin_query(uint32_t i)
{
    return i == 0 ? &desc : NULL;
}
