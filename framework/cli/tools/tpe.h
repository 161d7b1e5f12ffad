/* tpe.h - a small Tree-structured Parzen Estimator (Bergstra, Bardenet,
 * Bengio and Kegl 2011, "Algorithms for Hyper-Parameter Optimization"):
 * proposes the next configuration of a sweep from the results so far.
 * Pure bookkeeping and arithmetic, seeded, no files (never installed).
 *
 * The first `startup` proposals are draws from the prior (each
 * parameter's distribution). After that the observations are split at
 * the quantile gamma of their losses into good (the best
 * ceil(gamma * n)) and bad; per parameter a Parzen density l(x) is built
 * over the good values and g(x) over the bad ones (for uniform,
 * loguniform (in log space) and int: a mixture of truncated Gaussians,
 * one per value, plus the prior as one more component; for choice: the
 * counts plus one per option), `candidates` points are drawn from l, and
 * the one with the largest sum over parameters of log l(x) - log g(x)
 * is proposed.
 *
 *     dgm__tpe *t;
 *     dgm__tpe_new(&t, params, n_params, 16, 0.25, 24, seed, false);
 *     double x[N];
 *     dgm__tpe_suggest(t, x);       // x[i]: the value (choice: its index)
 *     ... y = run(x) ...
 *     dgm__tpe_observe(t, x, y);    // NAN: a failure, the worst value
 *     dgm__tpe_free(t);
 *
 * Determinism: the same seed and the same observations in the same order
 * give the same proposals.
 */
#ifndef DGM_TPE_H
#define DGM_TPE_H

#include <stdbool.h>
#include <stdint.h>

typedef enum dgm__tpe_kind {
    DGM__TPE_UNIFORM,
    DGM__TPE_LOGUNIFORM, /* lo > 0 */
    DGM__TPE_INT,        /* integers lo..hi */
    DGM__TPE_CHOICE      /* indices 0..n_choices-1 */
} dgm__tpe_kind;

typedef struct dgm__tpe_param {
    dgm__tpe_kind kind;
    double lo, hi; /* uniform, loguniform, int */
    int n_choices; /* choice */
} dgm__tpe_param;

typedef struct dgm__tpe dgm__tpe;

/* params is copied. Defaults: gamma 0.25, candidates 24 (given <= 0).
 * maximize: larger observations are better. DGM_EINVAL for a bad
 * parameter (lo > hi, loguniform lo <= 0, no choices). Ownership: *out
 * -> dgm__tpe_free. */
int dgm__tpe_new(dgm__tpe **out, const dgm__tpe_param *params, int n_params,
                 int startup, double gamma, int candidates, uint64_t seed,
                 bool maximize);
void dgm__tpe_free(dgm__tpe *t);
/* The next proposal into x[n_params]. */
int dgm__tpe_suggest(dgm__tpe *t, double *x);
/* The result y of configuration x (NAN: failed, counts as the worst). */
int dgm__tpe_observe(dgm__tpe *t, const double *x, double y);

/* The log of the Parzen density of parameter p at v over the values
 * vals[0..n) (what l and g are; exposed for the tests). */
double dgm__tpe_log_density(const dgm__tpe_param *p, const double *vals, int n,
                            double v);

#endif
