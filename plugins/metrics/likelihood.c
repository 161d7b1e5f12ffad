/* likelihood.c - metrics `elbo`, `iwae_nll` and `recon_error`: how well a
 * latent-variable model explains held-out data, in nats per example. */
#include <math.h>
#include <stdlib.h>

#include "dgm/dgm.h"
#include "split_eval.h"

typedef struct opts {
    split_eval se;
    int k;
} opts;

static int make_opts(void **self, const dgm_config *cfg)
{
    opts *o = calloc(1, sizeof *o);
    if (!o)
        return dgm_error(DGM_ENOMEM, "metric: out of memory");
    split_eval_read(&o->se, cfg);
    o->k = dgm_cfg_has(cfg, "k") ? (int)dgm_cfg_int(cfg, "k") : 1;
    *self = o;
    return 0;
}

static double sum_of(const dgm_tensor *t)
{
    double s = 0;
    for (int64_t i = 0; i < dgm_tensor_numel(t); i++)
        s += dgm_tensor_get(t, i);
    return s;
}

/* ---- elbo -------------------------------------------------------------- */

/* The first phase's objective per example with every term's weight taken
 * out (a beta-VAE is scored on the true ELBO), averaged over the split;
 * each term's mean is reported too. */
static int elbo_evaluate(void *self, dgm_eval *ev, dgm_results *out)
{
    opts *o = self;
    int64_t n = split_eval_count(&o->se, ev);
    int nt = dgm_eval_term_count(ev);
    /* Sized to the objective: the number of terms has no fixed bound. */
    int max = nt > 0 ? nt : 1;
    /* per[max] is the total: one sum over the ranks for all */
    double *per = calloc((size_t)max + 1, sizeof *per);
    dgm_var **terms = calloc((size_t)max, sizeof *terms);
    if (!per || !terms) {
        free(per);
        free(terms);
        return dgm_error(DGM_ENOMEM, "elbo: out of memory");
    }
    int rc = 0;
    split_batch it = {0};
    while (split_eval_next(&o->se, ev, n, &it)) {
        dgm_var *tot;
        int got;
        if ((rc = dgm_eval_forward(ev, it.s, it.io)) < 0 ||
            (rc = dgm_eval_objective(ev, it.s, it.io, &tot, terms, max, &got)) <
                0)
            break;
        for (int i = 0; i < got && i < max; i++) {
            double w = dgm_eval_term_weight(ev, i);
            double v = sum_of(dgm_value(terms[i]));
            double unweighted = w != 0 ? v / w : 0;
            per[i] += unweighted;
            per[max] += unweighted;
        }
    }
    if (rc == 0 && it.rc < 0)
        rc = it.rc;
    if (rc == 0)
        rc = dgm_eval_sum(ev, per, max + 1);
    double total = per[max];
    if (rc == 0) {
        rc = dgm_results_set(out, "neg_elbo", total / (double)n);
        if (rc == 0)
            rc = dgm_results_set(out, "elbo", -total / (double)n);
        for (int i = 0; i < nt && rc == 0; i++) {
            char name[64];
            snprintf(name, sizeof name, "neg_elbo/%s",
                     dgm_eval_term_name(ev, i));
            rc = dgm_results_set(out, name, per[i] / (double)n);
        }
    }
    free(per);
    free(terms);
    return rc;
}

static const dgm_param_spec elbo_params[] = {
    SPLIT_EVAL_PARAMS("500", "evaluation batch"),
    DGM_PARAM_END,
};

/* neg_elbo and each term's neg_elbo/<term> are losses; elbo is their
 * negation */
static const dgm_metric_figure elbo_figures[] = {
    {"neg_elbo", DGM_BETTER_LOWER},
    {"neg_elbo/*", DGM_BETTER_LOWER},
    {"elbo", DGM_BETTER_HIGHER},
    {NULL}};

static const dgm_metric_iface elbo_iface = {.create = make_opts,
                                            .evaluate = elbo_evaluate,
                                            .destroy = free,
                                            .figures = elbo_figures,
                                            .shard_aware = true};

/* ---- iwae_nll ---------------------------------------------------------- */

static int iwae_evaluate(void *self, dgm_eval *ev, dgm_results *out)
{
    opts *o = self;
    int64_t n = split_eval_count(&o->se, ev);
    double total = 0;
    split_batch it = {0};
    while (split_eval_next(&o->se, ev, n, &it)) {
        dgm_var *ll;
        int rc = dgm_eval_log_likelihood(ev, it.s, dgm_vars_get(it.io, "x"),
                                         o->k, &ll);
        if (rc < 0)
            return rc;
        total -= sum_of(dgm_value(ll));
    }
    if (it.rc < 0)
        return it.rc;
    int rc = dgm_eval_sum(ev, &total, 1);
    if (rc < 0)
        return rc;
    char name[64];
    snprintf(name, sizeof name, "iwae_nll");
    return dgm_results_set(out, name, total / (double)n);
}

static const dgm_param_spec iwae_params[] = {
    DGM_PARAM_INT("k", .def = "64", DGM_GE(1), DGM_LE(100000),
                  .help = "importance samples"),
    SPLIT_EVAL_PARAMS("50", "examples per batch (each is decoded k times)"),
    DGM_PARAM_END,
};

static const dgm_metric_figure iwae_figures[] = {{"iwae_nll", DGM_BETTER_LOWER},
                                                 {NULL}};

static const dgm_metric_iface iwae_iface = {.create = make_opts,
                                            .evaluate = iwae_evaluate,
                                            .destroy = free,
                                            .figures = iwae_figures,
                                            .shard_aware = true};

/* ---- recon_error ------------------------------------------------------- */

/* Squared error between x and its reconstruction, summed per example and
 * averaged over examples. */
static int recon_evaluate(void *self, dgm_eval *ev, dgm_results *out)
{
    opts *o = self;
    int64_t n = split_eval_count(&o->se, ev);
    double total = 0;
    split_batch it = {0};
    while (split_eval_next(&o->se, ev, n, &it)) {
        dgm_var *r, *x = dgm_vars_get(it.io, "x");
        int rc = dgm_eval_reconstruct(ev, it.s, x, &r);
        if (rc < 0)
            return rc;
        dgm_graph *g = it.s->g;
        dgm_var *d = dgm_sum_all(g, dgm_square(g, dgm_sub(g, r, x)));
        if (!d)
            return dgm_last_code();
        total += dgm_tensor_get(dgm_value(d), 0);
    }
    if (it.rc < 0)
        return it.rc;
    int rc = dgm_eval_sum(ev, &total, 1);
    if (rc < 0)
        return rc;
    return dgm_results_set(out, "recon_error", total / (double)n);
}

static const dgm_metric_figure recon_figures[] = {
    {"recon_error", DGM_BETTER_LOWER}, {NULL}};

static const dgm_metric_iface recon_iface = {.create = make_opts,
                                             .evaluate = recon_evaluate,
                                             .destroy = free,
                                             .figures = recon_figures,
                                             .shard_aware = true};

static const dgm_plugin_desc descs[] = {
    {DGM_PLUGIN_HEADER, DGM_PLUGIN_METRIC(&elbo_iface), .name = "elbo",
     .version = "1.0",
     .summary = "negative ELBO per example (term weights taken out)",
     .params = elbo_params},
    {DGM_PLUGIN_HEADER, DGM_PLUGIN_METRIC(&iwae_iface), .name = "iwae_nll",
     .version = "1.0",
     .summary = "NLL bound from k importance samples (IWAE), nats/example",
     .params = iwae_params},
    {DGM_PLUGIN_HEADER, DGM_PLUGIN_METRIC(&recon_iface), .name = "recon_error",
     .version = "1.0", .summary = "squared reconstruction error per example",
     .params = elbo_params},
};

DGM_PLUGIN_NAME(elbo);
DGM_PLUGIN_NAME(iwae_nll);
DGM_PLUGIN_NAME(recon_error);

DGM_PLUGIN_EXPORT const dgm_plugin_desc *dgm_plugin_query(uint32_t i)
{
    return i < sizeof descs / sizeof descs[0] ? &descs[i] : NULL;
}
