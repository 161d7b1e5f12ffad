/* classification.c - metric `accuracy`: the fraction of a split a
 * classifier model (one with a "logits" [N, C] output and labels "y")
 * labels correctly. */
#include <stdlib.h>
#include <string.h>

#include "dgm/dgm.h"

static const dgm_param_spec params[] = {
    DGM_PARAM_CHOICE("split", .def = "test", .choices = "test|train",
                     .help = "which split"),
    DGM_PARAM_INT("max_examples", .def = "0", DGM_GE(0), DGM_LE(1e12),
                  .help = "0: the whole split"),
    DGM_PARAM_INT("batch_size", .def = "500", DGM_GE(1), DGM_LE(1e6),
                  .help = "evaluation batch"),
    DGM_PARAM_END,
};

typedef struct opts {
    dgm_split split;
    int64_t max, batch;
} opts;

static int create(void **self, const dgm_config *cfg)
{
    opts *o = calloc(1, sizeof *o);
    if (!o)
        return dgm_error(DGM_ENOMEM, "accuracy: out of memory");
    o->split = strcmp(dgm_cfg_str(cfg, "split"), "train") ? DGM_SPLIT_TEST
                                                          : DGM_SPLIT_TRAIN;
    o->max = dgm_cfg_int(cfg, "max_examples");
    o->batch = dgm_cfg_int(cfg, "batch_size");
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
    const dgm_data_info *info = dgm_eval_data(ev);
    if (!info->has_y)
        return dgm_error(DGM_EUNSUPPORTED,
                         "accuracy: the data set has no labels");
    int64_t n = info->size[o->split];
    if (o->max > 0 && o->max < n)
        n = o->max;
    int64_t hits = 0;
    for (int64_t at = 0; at < n; at += o->batch) {
        int64_t b = n - at < o->batch ? n - at : o->batch;
        dgm_step *s;
        dgm_vars *io;
        int rc;
        if ((rc = dgm_eval_batch(ev, o->split, at, b, &s, &io)) < 0 ||
            (rc = dgm_eval_forward(ev, s, io)) < 0)
            return rc;
        dgm_var *l = dgm_vars_get(io, "logits"), *y = dgm_vars_get(io, "y");
        char a[96];
        if (!l || !y || dgm_value(l)->ndim != 2 || dgm_value(l)->shape[0] != b)
            return dgm_error(DGM_ESHAPE,
                             "accuracy: the model must output \"logits\" "
                             "[%lld, classes], got %s",
                             (long long)b,
                             l ? dgm_tensor_describe(dgm_value(l), a, sizeof a)
                               : "none");
        hits += correct(dgm_value(l), dgm_value(y));
    }
    return dgm_results_set(out, "accuracy", (double)hits / (double)n);
}

static const dgm_metric_figure figures[] = {{"accuracy", DGM_BETTER_HIGHER},
                                            {NULL}};

static const dgm_metric_iface iface = {.create = create,
                                       .evaluate = evaluate,
                                       .destroy = free,
                                       .figures = figures};

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
