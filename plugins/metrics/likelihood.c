/* likelihood.c - metrics `elbo`, `iwae_nll` and `recon_error`: how well a
 * latent-variable model explains held-out data, in nats per example. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/dgm.h"

typedef struct opts {
    dgm_split split;
    int64_t max_examples;
    int64_t batch;
    int k;
} opts;

static int make_opts(void **self, const dgm_config *cfg)
{
    opts *o = calloc(1, sizeof *o);
    if (!o)
        return dgm_error(DGM_ENOMEM, "metric: out of memory");
    o->split = strcmp(dgm_cfg_str(cfg, "split"), "train") ? DGM_SPLIT_TEST
                                                           : DGM_SPLIT_TRAIN;
    o->max_examples = dgm_cfg_int(cfg, "max_examples");
    o->batch = dgm_cfg_int(cfg, "batch_size");
    o->k = dgm_cfg_has(cfg, "k") ? (int)dgm_cfg_int(cfg, "k") : 1;
    *self = o;
    return 0;
}

static int64_t examples(const opts *o, dgm_eval *ev)
{
    int64_t n = dgm_eval_data(ev)->size[o->split];
    return o->max_examples > 0 && o->max_examples < n ? o->max_examples : n;
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
    int64_t n = examples(o, ev);
    int nt = dgm_eval_term_count(ev);
    /* Sized to the objective: the number of terms has no fixed bound. */
    int max = nt > 0 ? nt : 1;
    double total = 0, *per = calloc((size_t)max, sizeof *per);
    dgm_var **terms = calloc((size_t)max, sizeof *terms);
    if (!per || !terms) {
        free(per);
        free(terms);
        return dgm_error(DGM_ENOMEM, "elbo: out of memory");
    }
    int rc = 0;
    for (int64_t at = 0; at < n && rc == 0; at += o->batch) {
        int64_t b = n - at < o->batch ? n - at : o->batch;
        dgm_step *s;
        dgm_vars *io;
        dgm_var *tot;
        int got;
        if ((rc = dgm_eval_batch(ev, o->split, at, b, &s, &io)) < 0 ||
            (rc = dgm_eval_forward(ev, s, io)) < 0 ||
            (rc = dgm_eval_objective(ev, s, io, &tot, terms, max, &got)) < 0)
            break;
        for (int i = 0; i < got && i < max; i++) {
            double w = dgm_eval_term_weight(ev, i);
            double v = sum_of(dgm_value(terms[i]));
            double unweighted = w != 0 ? v / w : 0;
            per[i] += unweighted;
            total += unweighted;
        }
    }
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
    DGM_PARAM_CHOICE("split", .def = "test", .choices = "test|train",
                     .help = "which split"),
    DGM_PARAM_INT("max_examples", .def = "0", DGM_GE(0), DGM_LE(1e12),
                  .help = "0: the whole split"),
    DGM_PARAM_INT("batch_size", .def = "500", DGM_GE(1), DGM_LE(1e6),
                  .help = "evaluation batch"),
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
                                            .figures = elbo_figures};

/* ---- iwae_nll ---------------------------------------------------------- */

static int iwae_evaluate(void *self, dgm_eval *ev, dgm_results *out)
{
    opts *o = self;
    int64_t n = examples(o, ev);
    double total = 0;
    for (int64_t at = 0; at < n; at += o->batch) {
        int64_t b = n - at < o->batch ? n - at : o->batch;
        dgm_step *s;
        dgm_vars *io;
        dgm_var *ll;
        int rc;
        if ((rc = dgm_eval_batch(ev, o->split, at, b, &s, &io)) < 0 ||
            (rc = dgm_eval_log_likelihood(ev, s, dgm_vars_get(io, "x"), o->k,
                                          &ll)) < 0)
            return rc;
        total -= sum_of(dgm_value(ll));
    }
    char name[64];
    snprintf(name, sizeof name, "iwae_nll");
    return dgm_results_set(out, name, total / (double)n);
}

static const dgm_param_spec iwae_params[] = {
    DGM_PARAM_INT("k", .def = "64", DGM_GE(1), DGM_LE(100000),
                  .help = "importance samples"),
    DGM_PARAM_CHOICE("split", .def = "test", .choices = "test|train",
                     .help = "which split"),
    DGM_PARAM_INT("max_examples", .def = "0", DGM_GE(0), DGM_LE(1e12),
                  .help = "0: the whole split"),
    DGM_PARAM_INT("batch_size", .def = "50", DGM_GE(1), DGM_LE(1e6),
                  .help = "examples per batch (each is decoded k times)"),
    DGM_PARAM_END,
};

static const dgm_metric_figure iwae_figures[] = {{"iwae_nll", DGM_BETTER_LOWER},
                                                 {NULL}};

static const dgm_metric_iface iwae_iface = {.create = make_opts,
                                            .evaluate = iwae_evaluate,
                                            .destroy = free,
                                            .figures = iwae_figures};

/* ---- recon_error ------------------------------------------------------- */

/* Squared error between x and its reconstruction, summed per example and
 * averaged over examples. */
static int recon_evaluate(void *self, dgm_eval *ev, dgm_results *out)
{
    opts *o = self;
    int64_t n = examples(o, ev);
    double total = 0;
    for (int64_t at = 0; at < n; at += o->batch) {
        int64_t b = n - at < o->batch ? n - at : o->batch;
        dgm_step *s;
        dgm_vars *io;
        dgm_var *r;
        int rc;
        if ((rc = dgm_eval_batch(ev, o->split, at, b, &s, &io)) < 0 ||
            (rc = dgm_eval_reconstruct(ev, s, dgm_vars_get(io, "x"), &r)) < 0)
            return rc;
        dgm_var *d = dgm_sum_all(s->g, dgm_square(s->g,
                                                  dgm_sub(s->g, r,
                                                          dgm_vars_get(io,
                                                                       "x"))));
        if (!d)
            return dgm_last_code();
        total += dgm_tensor_get(dgm_value(d), 0);
    }
    return dgm_results_set(out, "recon_error", total / (double)n);
}

static const dgm_metric_figure recon_figures[] = {
    {"recon_error", DGM_BETTER_LOWER}, {NULL}};

static const dgm_metric_iface recon_iface = {.create = make_opts,
                                             .evaluate = recon_evaluate,
                                             .destroy = free,
                                             .figures = recon_figures};

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
