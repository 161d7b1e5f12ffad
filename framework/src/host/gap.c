/* gap.c - generalization gaps: a metric's `generalization_gap: N` runs a
 * second instance of the same metric on the first N training examples
 * (its `split: train`, its max_examples or max_windows N), which eval.c
 * reports beside the metric's own figures and subtracts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/error.h"
#include "host_internal.h"

/* The key of d's schema that limits how much of the split it reads. */
static const char *limit_key(const dgm_plugin_desc *d)
{
    for (const dgm_param_spec *s = d->params; s && s->name; s++)
        if (s->type == DGM_P_INT && (!strcmp(s->name, "max_examples") ||
                                     !strcmp(s->name, "max_windows")))
            return s->name;
    return NULL;
}

/* Does d take `split: train`? */
static bool takes_train(const dgm_plugin_desc *d)
{
    for (const dgm_param_spec *s = d->params; s && s->name; s++)
        if (!strcmp(s->name, "split") && s->type == DGM_P_CHOICE &&
            s->choices && strstr(s->choices, "train"))
            return true;
    return false;
}

int dgm__gap_check(dgm_registry *reg, const dgm_config *metric)
{
    const dgm_config *g = dgm_cfg_get(metric, "generalization_gap");
    if (!g || dgm_cfg_kind_of(g) == DGM_CFG_NULL)
        return 0;
    int64_t n;
    int rc = dgm_cfg_to_int(g, &n);
    if (rc < 0)
        return rc;
    if (n < 1)
        return dgm_cfg_error(metric, "generalization_gap", DGM_ERANGE,
                             "the training examples to compare with must be "
                             ">= 1, got %lld",
                             (long long)n);
    const dgm_plugin_desc *d;
    const char *name = dgm_cfg_str(metric, "plugin");
    if ((rc = dgm_registry_find(reg, DGM_KIND_METRIC, name, &d, NULL)) < 0)
        return rc;
    if (!takes_train(d) || !limit_key(d))
        return dgm_cfg_error(metric, "generalization_gap", DGM_EUNSUPPORTED,
                             "metric '%s' has no `split: train` and "
                             "max_examples (or max_windows) to run on a "
                             "training subset",
                             name);
    return 0;
}

int dgm__gap_build_list(const dgm_config *metrics, const dgm__inst *inst,
                        int n_metrics, dgm__gap **out)
{
    for (int i = 0; i < n_metrics; i++) {
        const dgm_config *m = dgm_cfg_at(metrics, i);
        const dgm_config *g = dgm_cfg_get(m, "generalization_gap");
        if (!g || dgm_cfg_kind_of(g) == DGM_CFG_NULL)
            continue;
        if (!*out && !(*out = calloc((size_t)n_metrics, sizeof **out)))
            return dgm_error(DGM_ENOMEM, "generalization_gap: out of memory");
        dgm__gap *gp = &(*out)[i];
        const dgm_plugin_desc *d = inst[i].desc;
        char text[96];
        dgm_config *v = NULL;
        snprintf(text, sizeof text, "%lld",
                 (long long)dgm_cfg_int(m, "generalization_gap"));
        if (!(gp->cfg = dgm_config_clone(m)))
            return dgm_last_code();
        int rc = dgm_config_parse(&v, text, "generalization_gap");
        if (rc == 0)
            rc = dgm_config_set(gp->cfg, limit_key(d), v);
        dgm_config_free(v);
        v = NULL;
        if (rc == 0 && (rc = dgm_config_parse(&v, "train", "split")) == 0)
            rc = dgm_config_set(gp->cfg, "split", v);
        dgm_config_free(v);
        if (rc < 0)
            return rc;
        gp->inst.desc = d;
        gp->inst.cfg = gp->cfg;
        if ((rc = d->iface.metric->create(&gp->inst.self, gp->cfg)) < 0)
            return dgm_error_context("metric '%s' on the training subset: ",
                                     d->name);
    }
    return 0;
}

void dgm__gap_free_list(dgm__gap *gap, int n_metrics)
{
    for (int i = 0; gap && i < n_metrics; i++) {
        dgm__inst_destroy(&gap[i].inst);
        dgm_config_free(gap[i].cfg);
    }
    free(gap);
}

int dgm__gap_build(dgm_experiment *e)
{
    return dgm__gap_build_list(dgm_cfg_get(e->root, "metrics"), e->metrics,
                               e->n_metrics, &e->gap);
}

void dgm__gap_free(dgm_experiment *e)
{
    dgm__gap_free_list(e->gap, e->n_metrics);
    e->gap = NULL;
}
