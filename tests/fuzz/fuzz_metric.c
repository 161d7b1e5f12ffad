/* fuzz_metric.c - the fuzz plugin `fuzz_samples`: a metric that draws n
 * samples in one call and checks them, so the sample-file harness runs a
 * file through `dgm eval --samples`'s whole path without a classifier.
 * Every sample must be finite and have the data's example shape; its
 * result is the samples' mean. */
#include <math.h>
#include <stdlib.h>

#include "dgm/dgm.h"

static const dgm_param_spec params[] = {
    DGM_PARAM_INT("n", .def = "1", DGM_GE(1), DGM_LE(1e9),
                  .help = "samples to draw"),
    DGM_PARAM_END,
};

static int create(void **self, const dgm_config *cfg)
{
    int64_t *n = malloc(sizeof *n);
    if (!n)
        return dgm_error(DGM_ENOMEM, "fuzz_samples: out of memory");
    *n = dgm_cfg_int(cfg, "n");
    *self = n;
    return 0;
}

static int evaluate(void *self, dgm_eval *ev, dgm_results *out)
{
    int64_t n = *(int64_t *)self;
    const dgm_data_info *info = dgm_eval_data(ev);
    dgm_step *s;
    dgm_vars *io;
    dgm_var *smp;
    int rc;
    if ((rc = dgm_eval_batch(ev, DGM_SPLIT_TEST, 0, 1, &s, &io)) < 0 ||
        (rc = dgm_eval_sample(ev, s, n, &smp)) < 0)
        return rc;
    const dgm_tensor *x = dgm_value(smp);
    if (x->ndim != info->x_shape.ndim + 1 || x->shape[0] != n)
        abort(); /* the host handed out the wrong shape */
    for (int d = 0; d < info->x_shape.ndim; d++)
        if (x->shape[d + 1] != info->x_shape.dim[d])
            abort();
    double sum = 0;
    int64_t m = dgm_tensor_numel(x);
    for (int64_t i = 0; i < m; i++) {
        double v = dgm_tensor_get(x, i);
        if (!isfinite(v))
            abort(); /* the reader lets a non-finite sample through */
        sum += v;
    }
    return dgm_results_set(out, "fuzz_samples/mean", m ? sum / (double)m : 0);
}

static const dgm_metric_iface iface = {
    .create = create, .evaluate = evaluate, .destroy = free};

static const dgm_plugin_desc desc = {
    DGM_PLUGIN_HEADER,
    DGM_PLUGIN_METRIC(&iface),
    .name = "fuzz_samples",
    .version = "1.0",
    .summary = "fuzzing aid: draws n samples and checks them",
    .params = params,

};

DGM_PLUGIN_EXPORT const dgm_plugin_desc *dgm_plugin_query(uint32_t index)
{
    return index == 0 ? &desc : NULL;
}
