/* tp_gan_cond.c - metric for test_gan: samples the model conditionally
 * through dgm_eval_sample_cond (labels i % 4, and once with a label out of
 * range) and reports what came back, so the test reads it from summary. */
#include <math.h>

#include "dgm/dgm.h"

static int create(void **self, const dgm_config *cfg)
{
    (void)cfg;
    *self = (void *)1;
    return 0;
}

static int evaluate(void *self, dgm_eval *ev, dgm_results *out)
{
    (void)self;
    int64_t n = 8;
    dgm_tensor *y = dgm_tensor_new(DGM_I64, 1, &n);
    if (!y)
        return dgm_last_code();
    for (int i = 0; i < 8; i++)
        dgm_tensor_set(y, i, i % 4);
    dgm_step *s;
    dgm_vars *io;
    int rc = dgm_eval_batch(ev, DGM_SPLIT_TEST, 0, 1, &s, &io);
    dgm_var *v = NULL;
    if (rc == 0)
        rc = dgm_eval_sample_cond(ev, s, y, &v);
    dgm_results_set(out, "rc", rc);
    if (rc == 0) {
        const dgm_tensor *t = dgm_value(v);
        double lo = INFINITY, hi = -INFINITY;
        int finite = 1;
        for (int64_t k = 0; k < dgm_tensor_numel(t); k++) {
            double x = dgm_tensor_get(t, k);
            finite &= isfinite(x) != 0;
            lo = x < lo ? x : lo;
            hi = x > hi ? x : hi;
        }
        dgm_results_set(out, "n", (double)t->shape[0]);
        dgm_results_set(out, "ndim", t->ndim);
        dgm_results_set(out, "side", (double)t->shape[t->ndim - 1]);
        dgm_results_set(out, "finite", finite);
        dgm_results_set(out, "min", lo);
        dgm_results_set(out, "max", hi);
        dgm_tensor_set(y, 5, 4); /* out of the 4 classes */
        int bad = dgm_eval_sample_cond(ev, s, y, &v);
        dgm_results_set(out, "bad_label_rc", bad);
    }
    dgm_tensor_free(y);
    return 0;
}

static void destroy(void *self)
{
    (void)self;
}

static const dgm_metric_iface iface = {
    .create = create, .evaluate = evaluate, .destroy = destroy};

static const dgm_plugin_desc desc = {
    DGM_PLUGIN_HEADER, DGM_PLUGIN_METRIC(&iface), .name = "tp_gan_cond",
    .version = "1.0", .summary = "test_gan: conditional sampling"};

DGM_PLUGIN_EXPORT const dgm_plugin_desc *dgm_plugin_query(uint32_t i)
{
    return i == 0 ? &desc : NULL;
}
