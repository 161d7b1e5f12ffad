/* classification.c - metric `accuracy`: the fraction of a split a
 * classifier model (one with a "logits" [N, C] output and labels "y")
 * labels correctly. */
#include <stdlib.h>

#include "dgm/dgm.h"
#include "split_eval.h"

static const dgm_param_spec params[] = {
    SPLIT_EVAL_PARAMS("500", "evaluation batch"),
    DGM_PARAM_END,
};

typedef struct opts {
    split_eval se;
} opts;

static int create(void **self, const dgm_config *cfg)
{
    opts *o = calloc(1, sizeof *o);
    if (!o)
        return dgm_error(DGM_ENOMEM, "accuracy: out of memory");
    split_eval_read(&o->se, cfg);
    *self = o;
    return 0;
}

/* Rows of logits [m, C] whose largest entry (the first, on ties) is at the
 * label y[i]. */
static int64_t correct(const dgm_tensor *logits, const dgm_tensor *y)
{
    int64_t m = logits->shape[0], c = logits->shape[1], hits = 0;
    for (int64_t i = 0; i < m; i++) {
        int64_t best = 0;
        double bv = dgm_tensor_get(logits, i * c);
        for (int64_t j = 1; j < c; j++) {
            double v = dgm_tensor_get(logits, i * c + j);
            if (v > bv)
                bv = v, best = j;
        }
        hits += (int64_t)dgm_tensor_get(y, i) == best;
    }
    return hits;
}

static int evaluate(void *self, dgm_eval *ev, dgm_results *out)
{
    opts *o = self;
    if (!dgm_eval_data(ev)->has_y)
        return dgm_error(DGM_EUNSUPPORTED,
                         "accuracy: the data set has no labels");
    int64_t n = split_eval_count(&o->se, ev), hits = 0;
    split_batch it = {0};
    while (split_eval_next(&o->se, ev, n, &it)) {
        int rc = dgm_eval_forward(ev, it.s, it.io);
        if (rc < 0)
            return rc;
        dgm_var *l = dgm_vars_get(it.io, "logits");
        dgm_var *y = dgm_vars_get(it.io, "y");
        char a[96];
        if (!l || !y || dgm_value(l)->ndim != 2 ||
            dgm_value(l)->shape[0] != it.b)
            return dgm_error(DGM_ESHAPE,
                             "accuracy: the model must output \"logits\" "
                             "[%lld, classes], got %s",
                             (long long)it.b,
                             l ? dgm_tensor_describe(dgm_value(l), a, sizeof a)
                               : "none");
        hits += correct(dgm_value(l), dgm_value(y));
    }
    if (it.rc < 0)
        return it.rc;
    double sum = (double)hits; /* exact below 2^53 */
    int rc = dgm_eval_sum(ev, &sum, 1);
    if (rc < 0)
        return rc;
    return dgm_results_set(out, "accuracy", sum / (double)n);
}

static const dgm_metric_figure figures[] = {{"accuracy", DGM_BETTER_HIGHER},
                                            {NULL}};

static const dgm_metric_iface iface = {.create = create,
                                       .evaluate = evaluate,
                                       .destroy = free,
                                       .figures = figures,
                                       .shard_aware = true};

static const dgm_plugin_desc desc = {
    DGM_PLUGIN_HEADER,
    DGM_PLUGIN_METRIC(&iface),
    .name = "accuracy",
    .version = "1.0",
    .summary = "fraction of a split a classifier labels correctly",
    .params = params,

};

DGM_PLUGIN_NAME(accuracy);

DGM_PLUGIN_EXPORT const dgm_plugin_desc *dgm_plugin_query(uint32_t i)
{
    return i == 0 ? &desc : NULL;
}
