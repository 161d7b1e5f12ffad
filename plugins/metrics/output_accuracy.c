/* output_accuracy.c - metric `output_accuracy`: the fraction of a split
 * whose named output [N, C] (e.g. an auxiliary head's logits) has its
 * largest entry at the label y. The first phase's objective is evaluated
 * too, so outputs the host adds for it (heads) exist. */
#include <stdio.h>
#include <stdlib.h>

#include "dgm/dgm.h"
#include "split_eval.h"

static const dgm_param_spec params[] = {
    DGM_PARAM_STRING("output", .def = "logits",
                     .help = "the named output holding class scores [N, C]"),
    SPLIT_EVAL_PARAMS("500", "evaluation batch"),
    DGM_PARAM_END,
};

typedef struct opts {
    char output[64];
    split_eval se;
} opts;

static int create(void **self, const dgm_config *cfg)
{
    opts *o = calloc(1, sizeof *o);
    if (!o)
        return dgm_error(DGM_ENOMEM, "output_accuracy: out of memory");
    snprintf(o->output, sizeof o->output, "%s", dgm_cfg_str(cfg, "output"));
    split_eval_read(&o->se, cfg);
    *self = o;
    return 0;
}

static int evaluate(void *self, dgm_eval *ev, dgm_results *out)
{
    opts *o = self;
    if (!dgm_eval_data(ev)->has_y)
        return dgm_error(DGM_EUNSUPPORTED,
                         "output_accuracy: the data set has no labels");
    int64_t n = split_eval_count(&o->se, ev), hits = 0;
    split_batch it = {0};
    while (split_eval_next(&o->se, ev, n, &it)) {
        dgm_var *tot;
        int rc;
        if ((rc = dgm_eval_forward(ev, it.s, it.io)) < 0 ||
            (rc = dgm_eval_objective(ev, it.s, it.io, &tot, NULL, 0, NULL)) < 0)
            return rc;
        dgm_var *l = dgm_vars_get(it.io, o->output);
        dgm_var *y = dgm_vars_get(it.io, "y");
        char a[96];
        if (!l || !y || dgm_value(l)->ndim != 2 ||
            dgm_value(l)->shape[0] != it.b)
            return dgm_error(DGM_ESHAPE,
                             "output_accuracy: output '%s' must be [%lld, "
                             "classes], got %s",
                             o->output, (long long)it.b,
                             l ? dgm_tensor_describe(dgm_value(l), a, sizeof a)
                               : "none");
        const dgm_tensor *lt = dgm_value(l), *yt = dgm_value(y);
        int64_t c = lt->shape[1];
        for (int64_t i = 0; i < it.b; i++) {
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
    if (it.rc < 0)
        return it.rc;
    double sum = (double)hits; /* exact below 2^53 */
    int rc = dgm_eval_sum(ev, &sum, 1);
    if (rc < 0)
        return rc;
    char name[96];
    snprintf(name, sizeof name, "accuracy/%s", o->output);
    return dgm_results_set(out, name, sum / (double)n);
}

static const dgm_metric_figure figures[] = {{"accuracy/*", DGM_BETTER_HIGHER},
                                            {NULL}};

static const dgm_metric_iface iface = {.create = create,
                                       .evaluate = evaluate,
                                       .destroy = free,
                                       .figures = figures,
                                       .shard_aware = true};

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
