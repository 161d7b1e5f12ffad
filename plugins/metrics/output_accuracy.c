/* output_accuracy.c - metric `output_accuracy`: the fraction of a split
 * whose named output [N, C] (e.g. an auxiliary head's logits) has its
 * largest entry at the label y. The first phase's objective is evaluated
 * too, so outputs the host adds for it (heads) exist. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/dgm.h"

static const dgm_param_spec params[] = {
    DGM_PARAM_STRING("output", .def = "logits",
                     .help = "the named output holding class scores [N, C]"),
    DGM_PARAM_CHOICE("split", .def = "test", .choices = "test|train",
                     .help = "which split"),
    DGM_PARAM_INT("max_examples", .def = "0", DGM_GE(0), DGM_LE(1e12),
                  .help = "0: the whole split"),
    DGM_PARAM_INT("batch_size", .def = "500", DGM_GE(1), DGM_LE(1e6),
                  .help = "evaluation batch"),
    DGM_PARAM_END,
};

typedef struct opts {
    char output[64];
    dgm_split split;
    int64_t max, batch;
} opts;

static int create(void **self, const dgm_config *cfg)
{
    opts *o = calloc(1, sizeof *o);
    if (!o)
        return dgm_error(DGM_ENOMEM, "output_accuracy: out of memory");
    snprintf(o->output, sizeof o->output, "%s", dgm_cfg_str(cfg, "output"));
    o->split = strcmp(dgm_cfg_str(cfg, "split"), "train") ? DGM_SPLIT_TEST
                                                          : DGM_SPLIT_TRAIN;
    o->max = dgm_cfg_int(cfg, "max_examples");
    o->batch = dgm_cfg_int(cfg, "batch_size");
    *self = o;
    return 0;
}

static int evaluate(void *self, dgm_eval *ev, dgm_results *out)
{
    opts *o = self;
    const dgm_data_info *info = dgm_eval_data(ev);
    if (!info->has_y)
        return dgm_error(DGM_EUNSUPPORTED,
                         "output_accuracy: the data set has no labels");
    int64_t n = info->size[o->split];
    if (o->max > 0 && o->max < n)
        n = o->max;
    int64_t hits = 0;
    for (int64_t at = 0; at < n; at += o->batch) {
        int64_t b = n - at < o->batch ? n - at : o->batch;
        dgm_step *s;
        dgm_vars *io;
        dgm_var *tot;
        int rc;
        if ((rc = dgm_eval_batch(ev, o->split, at, b, &s, &io)) < 0 ||
            (rc = dgm_eval_forward(ev, s, io)) < 0 ||
            (rc = dgm_eval_objective(ev, s, io, &tot, NULL, 0, NULL)) < 0)
            return rc;
        dgm_var *l = dgm_vars_get(io, o->output), *y = dgm_vars_get(io, "y");
        char a[96];
        if (!l || !y || dgm_value(l)->ndim != 2 || dgm_value(l)->shape[0] != b)
            return dgm_error(DGM_ESHAPE,
                             "output_accuracy: output '%s' must be [%lld, "
                             "classes], got %s",
                             o->output, (long long)b,
                             l ? dgm_tensor_describe(dgm_value(l), a, sizeof a)
                               : "none");
        const dgm_tensor *lt = dgm_value(l), *yt = dgm_value(y);
        int64_t c = lt->shape[1];
        for (int64_t i = 0; i < b; i++) {
            int64_t best = 0;
            double bv = dgm_tensor_get(lt, i * c);
            for (int64_t j = 1; j < c; j++) {
                double v = dgm_tensor_get(lt, i * c + j);
                if (v > bv)
                    bv = v, best = j;
            }
            hits += (int64_t)dgm_tensor_get(yt, i) == best;
        }
    }
    char name[96];
    snprintf(name, sizeof name, "accuracy/%s", o->output);
    return dgm_results_set(out, name, (double)hits / (double)n);
}

static const dgm_metric_figure figures[] = {{"accuracy/*", DGM_BETTER_HIGHER},
                                            {NULL}};

static const dgm_metric_iface iface = {.create = create,
                                       .evaluate = evaluate,
                                       .destroy = free,
                                       .figures = figures};

static const dgm_plugin_desc desc = {
    DGM_PLUGIN_HEADER,
    DGM_PLUGIN_METRIC(&iface),
    .name = "output_accuracy",
    .version = "1.0",
    .summary = "fraction of a split whose named output's argmax is y",
    .params = params,

};

DGM_PLUGIN_NAME(output_accuracy);

DGM_PLUGIN_EXPORT const dgm_plugin_desc *dgm_plugin_query(uint32_t i)
{
    return i == 0 ? &desc : NULL;
}
