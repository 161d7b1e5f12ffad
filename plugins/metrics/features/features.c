/* features.c - metrics `fid`, `kid`, `precision_recall`,
 * `classifier_accuracy` and `memorization`: sample quality in the feature space
 * of a classifier trained by dgm (experiments/classifier_fashion.yaml), opened
 * from its run directory. Real features come from the test split, fake
 * ones from the model's samples (or a sample file, under `dgm eval`). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/dgm.h"
#include "dgm/host.h"
#include "feature_math.h"

#define P_CLASSIFIER                                                           \
    DGM_PARAM_PATH("classifier", .help =                                       \
                                     "run directory of a trained classifier "  \
                                     "(relative to the working directory)")
#define P_N                                                                    \
    DGM_PARAM_INT("n", .def = "10000", DGM_GE(2), DGM_LE(1e9),                 \
                  .help = "samples generated (and real test examples, at "     \
                          "most the split)")
#define P_BATCH                                                                \
    DGM_PARAM_INT("batch_size", .def = "500", DGM_GE(1), DGM_LE(1e6),          \
                  .help = "examples per sampling / feature batch")

static const dgm_param_spec fid_params[] = {P_CLASSIFIER, P_N, P_BATCH,
                                            DGM_PARAM_END};
static const dgm_param_spec kid_params[] = {
    P_CLASSIFIER,
    P_N,
    P_BATCH,
    DGM_PARAM_INT("subsets", .def = "100", DGM_GE(1), DGM_LE(1e6),
                  .help = "random subsets averaged"),
    DGM_PARAM_INT("subset_size", .def = "1000", DGM_GE(2), DGM_LE(1e9),
                  .help = "rows per subset (at most the smaller set)"),
    DGM_PARAM_END};
static const dgm_param_spec pr_params[] = {
    P_CLASSIFIER, P_N, P_BATCH,
    DGM_PARAM_INT("k", .def = "3", DGM_GE(1), DGM_LE(256),
                  .help = "k-th nearest neighbour radius"),
    DGM_PARAM_END};
static const dgm_param_spec memo_params[] = {
    P_CLASSIFIER,
    DGM_PARAM_INT("n", .def = "2000", DGM_GE(1), DGM_LE(1e9),
                  .help = "samples generated (and real test examples, at "
                          "most the split)"),
    P_BATCH,
    DGM_PARAM_INT("n_train", .def = "10000", DGM_GE(1), DGM_LE(1e9),
                  .help = "training examples searched for nearest "
                          "neighbours (the first ones, at most the split)"),
    DGM_PARAM_END};
static const dgm_param_spec acc_params[] = {P_CLASSIFIER, P_N, P_BATCH,
                                            DGM_PARAM_END};

typedef struct opts {
    char *classifier;
    int64_t n, batch, subset_size, n_train;
    int subsets, k;
} opts;

static int create(void **self, const dgm_config *cfg)
{
    opts *o = calloc(1, sizeof *o);
    if (!o || !(o->classifier = strdup(dgm_cfg_str(cfg, "classifier")))) {
        free(o);
        return dgm_error(DGM_ENOMEM, "metric: out of memory");
    }
    o->n = dgm_cfg_int(cfg, "n");
    o->batch = dgm_cfg_int(cfg, "batch_size");
    o->subsets =
        dgm_cfg_has(cfg, "subsets") ? (int)dgm_cfg_int(cfg, "subsets") : 0;
    o->subset_size =
        dgm_cfg_has(cfg, "subset_size") ? dgm_cfg_int(cfg, "subset_size") : 0;
    o->k = dgm_cfg_has(cfg, "k") ? (int)dgm_cfg_int(cfg, "k") : 0;
    o->n_train = dgm_cfg_has(cfg, "n_train") ? dgm_cfg_int(cfg, "n_train") : 0;
    *self = o;
    return 0;
}

static void destroy(void *self)
{
    opts *o = self;
    free(o->classifier);
    free(o);
}

/* What one evaluation holds: the classifier and the linear map from the
 * evaluated data's value range into the classifier's. */
typedef struct extractor {
    dgm_run *run;
    float scale, shift;
} extractor;

static int extractor_open(extractor *x, const opts *o, dgm_eval *ev,
                          const char *metric)
{
    int rc = dgm_run_open(&x->run, dgm_eval_registry(ev), o->classifier);
    if (rc < 0)
        return dgm_error_context("%s: classifier: ", metric);
    const dgm_data_info *mine = dgm_eval_data(ev),
                        *theirs = dgm_run_data_info(x->run);
    char a[96], b[96];
    if (mine->x_shape.ndim != theirs->x_shape.ndim ||
        memcmp(mine->x_shape.dim, theirs->x_shape.dim,
               sizeof(int64_t) * (size_t)mine->x_shape.ndim) != 0) {
        dgm_run_close(x->run);
        return dgm_error(
            DGM_ESHAPE,
            "%s: classifier %s was trained on examples %s, the "
            "data here are %s",
            metric, o->classifier,
            dgm_shape_str(theirs->x_shape.ndim, theirs->x_shape.dim, a,
                          sizeof a),
            dgm_shape_str(mine->x_shape.ndim, mine->x_shape.dim, b, sizeof b));
    }
    float span = mine->x_max - mine->x_min;
    x->scale = span > 0 ? (theirs->x_max - theirs->x_min) / span : 1.0f;
    x->shift = theirs->x_min - mine->x_min * x->scale;
    return 0;
}

/* The classifier's `output` [b, D] for a batch t [b, x_shape...] (t in
 * the evaluated data's range). The caller frees *f. */
static int extract(extractor *x, const dgm_tensor *t, const char *output,
                   dgm_tensor **f)
{
    dgm_tensor *c = dgm_tensor_clone(t);
    if (!c)
        return dgm_last_code();
    float *p = dgm_tensor_f32(c);
    int64_t m = dgm_tensor_numel(c);
    for (int64_t i = 0; i < m; i++)
        p[i] = p[i] * x->scale + x->shift;
    int rc = dgm_run_forward_output(x->run, c, output, f);
    dgm_tensor_free(c);
    return rc;
}

/* Copy f [b, D] into rows [at, at + b) of *buf (n rows), allocating *buf
 * with D columns on the first call (*d == 0). */
static int put_rows(float **buf, int64_t n, int64_t at, int64_t *d,
                    dgm_tensor *f)
{
    int64_t b = f->shape[0], fd = f->shape[1];
    int rc = 0;
    if (*d == 0)
        *d = fd;
    if (fd != *d)
        rc = dgm_error(DGM_ESHAPE,
                       "the classifier's features changed width (%lld, "
                       "then %lld)",
                       (long long)*d, (long long)fd);
    if (rc == 0 && !*buf && !(*buf = malloc(sizeof(float) * (size_t)(n * fd))))
        rc = dgm_error(DGM_ENOMEM, "out of memory for [%lld, %lld] features",
                       (long long)n, (long long)fd);
    if (rc == 0)
        memcpy(*buf + at * fd, dgm_tensor_f32(f),
               sizeof(float) * (size_t)(b * fd));
    dgm_tensor_free(f);
    return rc;
}

/* Features of this rank's share of the first n examples of split into
 * *rows (allocated; all n with one process or for a metric that is not
 * shard-aware), *m of them. */
static int split_rows(extractor *x, const opts *o, dgm_eval *ev,
                      dgm_split split, int64_t n, float **rows, int64_t *d,
                      int64_t *m)
{
    int64_t at0;
    int rc = dgm_eval_shard(ev, n, o->batch, &at0, m);
    /* training examples' draws (a dataset's) apart from the test's */
    uint64_t key = split == DGM_SPLIT_TRAIN ? (uint64_t)1 << 61 : 0;
    for (int64_t at = at0; at < at0 + *m && rc == 0; at += o->batch) {
        int64_t b = at0 + *m - at < o->batch ? at0 + *m - at : o->batch;
        dgm_step *s;
        dgm_vars *io;
        dgm_tensor *f;
        dgm_eval_draws(ev, key + (uint64_t)at);
        if ((rc = dgm_eval_batch(ev, split, at, b, &s, &io)) < 0 ||
            (rc = extract(x, dgm_value(dgm_vars_get(io, "x")), "features",
                          &f)) < 0)
            break;
        rc = put_rows(rows, *m, at - at0, d, f);
    }
    return rc;
}

/* Features of the first test examples (at most o->n) and of o->n
 * samples, and, when train is not NULL, of the first training examples
 * (at most o->n_train): this rank's share of each (dgm_eval_shard; all of
 * them with one process or for a metric that is not shard-aware), *nr,
 * *nf and *nt rows. *d is the width, 0 when this rank has no rows. The
 * caller frees *real, *fake and *train. */
static int features(const opts *o, dgm_eval *ev, const char *metric,
                    float **real, int64_t *nr, float **fake, int64_t *nf,
                    int64_t *d, float **train, int64_t *nt)
{
    extractor x = {0};
    int rc = extractor_open(&x, o, ev, metric);
    if (rc < 0)
        return rc;
    const dgm_data_info *info = dgm_eval_data(ev);
    int64_t n_real =
        o->n < info->size[DGM_SPLIT_TEST] ? o->n : info->size[DGM_SPLIT_TEST];
    int64_t at0 = 0;
    *nr = *nf = 0;
    *real = *fake = NULL;
    *d = 0;
    rc = split_rows(&x, o, ev, DGM_SPLIT_TEST, n_real, real, d, nr);
    if (rc == 0)
        rc = dgm_eval_shard(ev, o->n, o->batch, &at0, nf);
    for (int64_t at = at0; at < at0 + *nf && rc == 0; at += o->batch) {
        int64_t b = at0 + *nf - at < o->batch ? at0 + *nf - at : o->batch;
        dgm_step *s;
        dgm_vars *io;
        dgm_var *smp;
        dgm_tensor *f;
        dgm_eval_draws(ev, DGM_EVAL_DRAWS_SAMPLES + (uint64_t)at);
        /* a fresh eval step (its one-example batch is not used) */
        if ((rc = dgm_eval_batch(ev, DGM_SPLIT_TEST, 0, 1, &s, &io)) < 0 ||
            (rc = dgm_eval_sample(ev, s, b, &smp)) < 0 ||
            (rc = extract(&x, dgm_value(smp), "features", &f)) < 0)
            break;
        rc = put_rows(fake, *nf, at - at0, d, f);
    }
    if (train) {
        int64_t have = info->size[DGM_SPLIT_TRAIN];
        int64_t n_train = o->n_train < have ? o->n_train : have;
        *train = NULL;
        *nt = 0;
        if (rc == 0)
            rc = split_rows(&x, o, ev, DGM_SPLIT_TRAIN, n_train, train, d, nt);
    }
    dgm_run_close(x.run);
    if (rc < 0) {
        free(*real), free(*fake);
        *real = *fake = NULL;
        if (train) {
            free(*train);
            *train = NULL;
        }
        return dgm_error_context("%s: ", metric);
    }
    return 0;
}

/* Mean mu [d] and covariance cov [d, d] of n rows spread over the ranks,
 * this rank's m in x: dgm__feat_gaussian's two passes, each summed over
 * the ranks (so one process computes exactly what it computes). */
static int gaussian_shared(dgm_eval *ev, const float *x, int64_t m, int64_t n,
                           int64_t d, double *mu, double *cov)
{
    dgm__feat_sum_rows(x, m, d, mu);
    int rc = dgm_eval_sum(ev, mu, (int)d);
    if (rc < 0)
        return rc;
    for (int64_t j = 0; j < d; j++)
        mu[j] /= (double)n;
    if ((rc = dgm__feat_sum_outer(x, m, d, mu, cov)) < 0 ||
        (rc = dgm_eval_sum(ev, cov, (int)(d * d))) < 0)
        return rc;
    dgm__feat_finish_cov(cov, n, d);
    return 0;
}

/* Shard-aware: each rank extracts the features of its share of the test
 * examples and of the samples; their sums and centred products are summed
 * over the ranks. */
static int fid_evaluate(void *self, dgm_eval *ev, dgm_results *out)
{
    opts *o = self;
    const dgm_data_info *info = dgm_eval_data(ev);
    int64_t n_real =
        o->n < info->size[DGM_SPLIT_TEST] ? o->n : info->size[DGM_SPLIT_TEST];
    float *r, *f;
    int64_t nr, nf, d;
    int rc = features(o, ev, "fid", &r, &nr, &f, &nf, &d, NULL, NULL);
    if (rc < 0)
        return rc;
    /* the width, from the ranks that have rows (every rank has none when
     * the split is empty) */
    bool rows = nr + nf > 0;
    double w[2] = {rows ? (double)d : 0, rows ? 1 : 0};
    double *mu1 = NULL, *mu2 = NULL, *s1 = NULL, *s2 = NULL;
    if ((rc = dgm_eval_sum(ev, w, 2)) == 0)
        d = w[1] > 0 ? (int64_t)(w[0] / w[1]) : 0;
    if (rc == 0 && (n_real < 2 || d < 1 || d > 40000))
        rc = dgm_error(DGM_EINVAL,
                       "fid: need at least 2 test examples and 1 to 40000 "
                       "features, got %lld and %lld",
                       (long long)n_real, (long long)d);
    size_t dd = (size_t)(d * d);
    if (rc == 0 &&
        (!(mu1 = malloc(sizeof *mu1 * (size_t)d)) ||
         !(mu2 = malloc(sizeof *mu2 * (size_t)d)) ||
         !(s1 = malloc(sizeof *s1 * dd)) || !(s2 = malloc(sizeof *s2 * dd))))
        rc = dgm_error(DGM_ENOMEM, "fid: out of memory");
    double fid = 0;
    if (rc == 0)
        rc = gaussian_shared(ev, r, nr, n_real, d, mu1, s1);
    if (rc == 0)
        rc = gaussian_shared(ev, f, nf, o->n, d, mu2, s2);
    if (rc == 0)
        rc = dgm__feat_frechet(mu1, s1, mu2, s2, d, &fid);
    free(r), free(f), free(mu1), free(mu2), free(s1), free(s2);
    return rc < 0 ? rc : dgm_results_set(out, "fid", fid);
}

static int kid_evaluate(void *self, dgm_eval *ev, dgm_results *out)
{
    opts *o = self;
    float *r, *f;
    int64_t nr, nf, d;
    int rc = features(o, ev, "kid", &r, &nr, &f, &nf, &d, NULL, NULL);
    if (rc < 0)
        return rc;
    double mean, std;
    rc = dgm__feat_kid(r, nr, f, nf, d, o->subsets, o->subset_size, 0x4b1d,
                       &mean, &std);
    free(r), free(f);
    if (rc == 0)
        rc = dgm_results_set(out, "kid", mean);
    return rc < 0 ? rc : dgm_results_set(out, "kid_std", std);
}

static int pr_evaluate(void *self, dgm_eval *ev, dgm_results *out)
{
    opts *o = self;
    float *r, *f;
    int64_t nr, nf, d;
    int rc =
        features(o, ev, "precision_recall", &r, &nr, &f, &nf, &d, NULL, NULL);
    if (rc < 0)
        return rc;
    double p, rec;
    rc = dgm__feat_precision_recall(r, nr, f, nf, d, o->k, &p, &rec);
    free(r), free(f);
    if (rc == 0)
        rc = dgm_results_set(out, "precision", p);
    return rc < 0 ? rc : dgm_results_set(out, "recall", rec);
}

static int memo_evaluate(void *self, dgm_eval *ev, dgm_results *out)
{
    opts *o = self;
    float *r, *f, *t;
    int64_t nr, nf, nt, d;
    int rc = features(o, ev, "memorization", &r, &nr, &f, &nf, &d, &t, &nt);
    if (rc < 0)
        return rc;
    double ratio, closer;
    rc = dgm__feat_memorization(t, nt, r, nr, f, nf, d, &ratio, &closer);
    free(r), free(f), free(t);
    if (rc == 0)
        rc = dgm_results_set(out, "memorization_ratio", ratio);
    return rc < 0 ? rc : dgm_results_set(out, "memorization_closer", closer);
}

/* Class k samples (k = i mod classes) labelled k by the classifier. */
static int acc_evaluate(void *self, dgm_eval *ev, dgm_results *out)
{
    opts *o = self;
    const dgm_data_info *info = dgm_eval_data(ev);
    if (!info->has_y || info->n_classes < 2)
        return dgm_error(DGM_EUNSUPPORTED,
                         "classifier_accuracy: the data set has no classes "
                         "to condition on");
    extractor x = {0};
    int rc = extractor_open(&x, o, ev, "classifier_accuracy");
    if (rc < 0)
        return rc;
    const int64_t c = info->n_classes;
    dgm_tensor *y = dgm_tensor_new(DGM_I64, 1, (int64_t[]){o->batch});
    int64_t hits = 0;
    if (!y)
        rc = dgm_last_code();
    int64_t at0 = 0, mine = 0;
    if (rc == 0)
        rc = dgm_eval_shard(ev, o->n, o->batch, &at0, &mine);
    for (int64_t at = at0; at < at0 + mine && rc == 0; at += o->batch) {
        int64_t b = at0 + mine - at < o->batch ? at0 + mine - at : o->batch;
        dgm_tensor yv = *y;
        yv.shape[0] = b;
        for (int64_t i = 0; i < b; i++)
            dgm_tensor_set(&yv, i, (double)((at + i) % c));
        dgm_step *s;
        dgm_vars *io;
        dgm_var *smp;
        dgm_tensor *lt;
        dgm_eval_draws(ev, DGM_EVAL_DRAWS_SAMPLES + (uint64_t)at);
        if ((rc = dgm_eval_batch(ev, DGM_SPLIT_TEST, 0, 1, &s, &io)) < 0 ||
            (rc = dgm_eval_sample_cond(ev, s, &yv, &smp)) < 0 ||
            (rc = extract(&x, dgm_value(smp), "logits", &lt)) < 0)
            break;
        const float *l = dgm_tensor_f32(lt);
        int64_t d = lt->shape[1];
        for (int64_t i = 0; i < b; i++) {
            int64_t best = 0;
            for (int64_t j = 1; j < d; j++)
                if (l[i * d + j] > l[i * d + best])
                    best = j;
            hits += best == (at + i) % c;
        }
        dgm_tensor_free(lt);
    }
    dgm_run_close(x.run);
    dgm_tensor_free(y);
    if (rc < 0)
        return dgm_error_context("classifier_accuracy: ");
    double sum = (double)hits; /* exact below 2^53 */
    if ((rc = dgm_eval_sum(ev, &sum, 1)) < 0)
        return rc;
    return dgm_results_set(out, "classifier_accuracy", sum / (double)o->n);
}

static const dgm_metric_figure fid_figures[] = {{"fid", DGM_BETTER_LOWER},
                                                {NULL}};
/* kid_std is the spread over subsets: neither side is better */
static const dgm_metric_figure kid_figures[] = {
    {"kid", DGM_BETTER_LOWER}, {"kid_std", DGM_BETTER_NONE}, {NULL}};
static const dgm_metric_figure pr_figures[] = {
    {"precision", DGM_BETTER_HIGHER}, {"recall", DGM_BETTER_HIGHER}, {NULL}};
/* a ratio below 1 and a larger fraction say the samples copy training
 * images: neither figure is better at an extreme (a ratio far above 1 is
 * a model far from the data) */
static const dgm_metric_figure memo_figures[] = {
    {"memorization_ratio", DGM_BETTER_NONE},
    {"memorization_closer", DGM_BETTER_LOWER},
    {NULL}};
static const dgm_metric_figure acc_figures[] = {
    {"classifier_accuracy", DGM_BETTER_HIGHER}, {NULL}};

static const dgm_metric_iface fid_iface = {.create = create,
                                           .evaluate = fid_evaluate,
                                           .destroy = destroy,
                                           .figures = fid_figures,
                                           .shard_aware = true};
static const dgm_metric_iface kid_iface = {.create = create,
                                           .evaluate = kid_evaluate,
                                           .destroy = destroy,
                                           .figures = kid_figures};
static const dgm_metric_iface pr_iface = {.create = create,
                                          .evaluate = pr_evaluate,
                                          .destroy = destroy,
                                          .figures = pr_figures};
static const dgm_metric_iface memo_iface = {.create = create,
                                            .evaluate = memo_evaluate,
                                            .destroy = destroy,
                                            .figures = memo_figures};
static const dgm_metric_iface acc_iface = {.create = create,
                                           .evaluate = acc_evaluate,
                                           .destroy = destroy,
                                           .figures = acc_figures,
                                           .shard_aware = true};

static const dgm_plugin_desc descs[] = {
    {DGM_PLUGIN_HEADER, DGM_PLUGIN_METRIC(&fid_iface), .name = "fid",
     .version = "1.0",
     .summary = "Frechet distance of test and sample features (classifier)",
     .params = fid_params},
    {DGM_PLUGIN_HEADER, DGM_PLUGIN_METRIC(&kid_iface), .name = "kid",
     .version = "1.0",
     .summary = "kernel (MMD^2, cubic polynomial) distance in subsets",
     .params = kid_params},
    {DGM_PLUGIN_HEADER, DGM_PLUGIN_METRIC(&pr_iface),
     .name = "precision_recall", .version = "1.0",
     .summary = "improved precision and recall from k-NN manifolds",
     .params = pr_params},
    {DGM_PLUGIN_HEADER, DGM_PLUGIN_METRIC(&acc_iface),
     .name = "classifier_accuracy", .version = "1.0",
     .summary = "class-k samples of a conditional model classified as k",
     .params = acc_params},
    {DGM_PLUGIN_HEADER, DGM_PLUGIN_METRIC(&memo_iface), .name = "memorization",
     .version = "1.0",
     .summary = "samples' nearest-training distance against test images'",
     .params = memo_params},
};

DGM_PLUGIN_NAME(fid);
DGM_PLUGIN_NAME(kid);
DGM_PLUGIN_NAME(precision_recall);
DGM_PLUGIN_NAME(classifier_accuracy);
DGM_PLUGIN_NAME(memorization);

DGM_PLUGIN_EXPORT const dgm_plugin_desc *dgm_plugin_query(uint32_t i)
{
    return i < sizeof descs / sizeof descs[0] ? &descs[i] : NULL;
}
