/* sequence.c - metrics `bits_per_char` and `perplexity`: next-token
 * cross-entropy of a language model on the held-out split's contiguous
 * windows, from the model's "logits" [N, T, V] and "target" [N, T]. A
 * latent-variable model (seq_vae) that also gives "mu" and "logvar" [N, Z]
 * of a Gaussian q(z|x) gets its KL to N(0, I) per window and the bound
 * (reconstruction + KL) in bits per character. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/dgm.h"

static const dgm_param_spec params[] = {
    DGM_PARAM_CHOICE("split", .def = "test", .choices = "test|train",
                     .help = "held-out (validation) or training split"),
    DGM_PARAM_INT("batch_size", .def = "64", DGM_GE(1), DGM_LE(1 << 20),
                  .help = "windows per batch"),
    DGM_PARAM_INT("max_windows", .def = "0", DGM_GE(0), DGM_LE(1e12),
                  .help = "windows scored (0: the whole split)"),
    DGM_PARAM_END,
};

typedef struct opts {
    dgm_split split;
    int64_t batch, max;
    bool bits;
} opts;

static int create(void **self, const dgm_config *cfg, bool bits)
{
    opts *o = calloc(1, sizeof *o);
    if (!o)
        return dgm_error(DGM_ENOMEM, "metric: out of memory");
    o->split = strcmp(dgm_cfg_str(cfg, "split"), "train") ? DGM_SPLIT_TEST
                                                          : DGM_SPLIT_TRAIN;
    o->batch = dgm_cfg_int(cfg, "batch_size");
    o->max = dgm_cfg_int(cfg, "max_windows");
    o->bits = bits;
    *self = o;
    return 0;
}

static int create_bpc(void **self, const dgm_config *cfg)
{
    return create(self, cfg, true);
}

static int create_ppl(void **self, const dgm_config *cfg)
{
    return create(self, cfg, false);
}

/* Sum of -log softmax(logits)[target] over every position, in double. */
static int add_nats(const dgm_tensor *lt, const dgm_tensor *tt, double *nats,
                    int64_t *count, const char *name)
{
    char a[96], b[96];
    if (lt->ndim < 2 || tt->ndim != lt->ndim - 1 || lt->dtype != DGM_F32 ||
        (tt->dtype != DGM_I64 && tt->dtype != DGM_I32))
        return dgm_error(DGM_ESHAPE,
                         "%s: needs logits [N, T, V] f32 and target [N, T] "
                         "ids, got %s and %s",
                         name, dgm_tensor_describe(lt, a, sizeof a),
                         dgm_tensor_describe(tt, b, sizeof b));
    dgm_tensor *l = dgm_tensor_clone(lt), *t = dgm_tensor_clone(tt);
    if (!l || !t) {
        dgm_tensor_free(l);
        dgm_tensor_free(t);
        return dgm_error(DGM_ENOMEM, "%s: out of memory", name);
    }
    int64_t V = l->shape[l->ndim - 1], P = dgm_tensor_numel(t);
    const float *lp = l->data;
    int rc = 0;
    for (int64_t i = 0; i < P && rc == 0; i++, lp += V) {
        int64_t y = t->dtype == DGM_I64 ? ((const int64_t *)t->data)[i]
                                        : ((const int32_t *)t->data)[i];
        if (y < 0 || y >= V) {
            rc = dgm_error(DGM_ERANGE, "%s: target %lld outside [0, %lld)",
                           name, (long long)y, (long long)V);
            break;
        }
        float max = lp[0];
        for (int64_t k = 1; k < V; k++)
            max = lp[k] > max ? lp[k] : max;
        double s = 0;
        for (int64_t k = 0; k < V; k++)
            s += exp((double)(lp[k] - max));
        *nats += log(s) + (double)max - (double)lp[y];
    }
    *count += P;
    dgm_tensor_free(l);
    dgm_tensor_free(t);
    return rc;
}

/* Sum over the rows of KL(N(mu, exp(logvar)) || N(0, I)), in double. */
static int add_kl(const dgm_tensor *mt, const dgm_tensor *lt, double *kl,
                  const char *name)
{
    char a[96], b[96];
    if (mt->ndim != 2 || lt->ndim != 2 || mt->shape[0] != lt->shape[0] ||
        mt->shape[1] != lt->shape[1] || mt->dtype != DGM_F32 ||
        lt->dtype != DGM_F32)
        return dgm_error(DGM_ESHAPE,
                         "%s: needs mu and logvar [N, Z] f32, got %s and %s",
                         name, dgm_tensor_describe(mt, a, sizeof a),
                         dgm_tensor_describe(lt, b, sizeof b));
    dgm_tensor *m = dgm_tensor_clone(mt), *l = dgm_tensor_clone(lt);
    if (!m || !l) {
        dgm_tensor_free(m);
        dgm_tensor_free(l);
        return dgm_error(DGM_ENOMEM, "%s: out of memory", name);
    }
    const float *mp = m->data, *lp = l->data;
    for (int64_t i = 0; i < dgm_tensor_numel(m); i++) {
        double lv = lp[i], mu = mp[i];
        *kl += -0.5 * (1.0 + lv - mu * mu - exp(lv));
    }
    dgm_tensor_free(m);
    dgm_tensor_free(l);
    return 0;
}

static int evaluate(void *self, dgm_eval *ev, dgm_results *out)
{
    opts *o = self;
    const char *name = o->bits ? "bits_per_char" : "perplexity";
    int64_t n = dgm_eval_data(ev)->size[o->split];
    if (o->max > 0 && o->max < n)
        n = o->max;
    if (n < 1)
        return dgm_error(DGM_ECONFIG, "%s: the %s split has no windows", name,
                         o->split == DGM_SPLIT_TEST ? "test" : "train");
    double nats = 0, kl = 0;
    int64_t count = 0, at0, mine;
    bool latent = true;
    /* this rank's windows (all of them with one process) */
    int rc = dgm_eval_shard(ev, n, o->batch, &at0, &mine);
    for (int64_t at = at0; at < at0 + mine && rc == 0; at += o->batch) {
        int64_t b = at0 + mine - at < o->batch ? at0 + mine - at : o->batch;
        dgm_step *s;
        dgm_vars *io;
        dgm_eval_draws(ev, (uint64_t)at);
        if ((rc = dgm_eval_batch(ev, o->split, at, b, &s, &io)) < 0 ||
            (rc = dgm_eval_forward(ev, s, io)) < 0)
            break;
        dgm_var *l = dgm_vars_get(io, "logits"),
                *t = dgm_vars_get(io, "target");
        if (!l || !t) {
            rc = dgm_error(DGM_ENOTFOUND,
                           "%s: the model gives no \"logits\" and \"target\"",
                           name);
            break;
        }
        rc = add_nats(dgm_value(l), dgm_value(t), &nats, &count, name);
        dgm_var *mu = dgm_vars_get(io, "mu"), *lv = dgm_vars_get(io, "logvar");
        latent = latent && mu && lv;
        if (rc == 0 && latent)
            rc = add_kl(dgm_value(mu), dgm_value(lv), &kl, name);
    }
    if (rc < 0)
        return rc;
    /* over the ranks: the sums, the positions, the ranks without mu and
     * logvar (a rank with no windows has them all) */
    double sums[4] = {nats, kl, (double)count, latent ? 0 : 1};
    if ((rc = dgm_eval_sum(ev, sums, 4)) < 0)
        return rc;
    nats = sums[0], kl = sums[1], latent = sums[3] == 0;
    double per = nats / sums[2];
    if (latent) {
        /* -ELBO per character: the windows' KL spread over their bytes */
        rc = dgm_results_set(out, "kl_per_seq", kl / (double)n);
        if (rc == 0 && o->bits)
            rc = dgm_results_set(out, "bpc_bound",
                                 (nats + kl) / sums[2] / log(2.0));
        if (rc < 0)
            return rc;
    }
    if (o->bits)
        return dgm_results_set(out, "bits_per_char", per / log(2.0));
    rc = dgm_results_set(out, "perplexity", exp(per));
    return rc == 0 ? dgm_results_set(out, "val_nats", per) : rc;
}

static void destroy(void *self)
{
    free(self);
}

/* both plugins share evaluate: every figure it may set is a loss */
static const dgm_metric_figure figures[] = {
    {"bits_per_char", DGM_BETTER_LOWER}, {"perplexity", DGM_BETTER_LOWER},
    {"val_nats", DGM_BETTER_LOWER},      {"kl_per_seq", DGM_BETTER_NONE},
    {"bpc_bound", DGM_BETTER_LOWER},     {NULL}};

static const dgm_metric_iface bpc_iface = {.create = create_bpc,
                                           .evaluate = evaluate,
                                           .destroy = destroy,
                                           .figures = figures,
                                           .shard_aware = true};
static const dgm_metric_iface ppl_iface = {.create = create_ppl,
                                           .evaluate = evaluate,
                                           .destroy = destroy,
                                           .figures = figures,
                                           .shard_aware = true};

static const dgm_plugin_desc descs[] = {
    {DGM_PLUGIN_HEADER, DGM_PLUGIN_METRIC(&bpc_iface), .name = "bits_per_char",
     .version = "1.0",
     .summary = "held-out next-token cross-entropy in bits per character",
     .params = params},
    {DGM_PLUGIN_HEADER, DGM_PLUGIN_METRIC(&ppl_iface), .name = "perplexity",
     .version = "1.0",
     .summary = "held-out perplexity exp(nats per token) and val_nats",
     .params = params},
};

DGM_PLUGIN_NAME(bits_per_char);
DGM_PLUGIN_NAME(perplexity);

DGM_PLUGIN_EXPORT const dgm_plugin_desc *dgm_plugin_query(uint32_t i)
{
    return i < 2 ? &descs[i] : NULL;
}
