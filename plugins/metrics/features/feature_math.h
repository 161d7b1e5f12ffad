/* feature_math.h - the maths of the feature-space metrics (fid, kid,
 * precision_recall) on plain float arrays, apart from the plugin glue so
 * tests/test_metrics.c can check it on fixed feature sets. Rows are
 * examples: x [n, d] row-major. Each returns 0 or a DGM_E* code with a
 * message. */
#ifndef DGM_FEATURE_MATH_H
#define DGM_FEATURE_MATH_H

#include <stdint.h>

/* Mean mu [d] and unbiased covariance cov [d, d] (divided by n - 1, as
 * numpy.cov) of x [n, d], n >= 2, accumulated in double. */
int dgm__feat_gaussian(const float *x, int64_t n, int64_t d, double *mu,
                       double *cov);

/* The same in parts, for rows spread over processes (each sums its m rows,
 * the sums are added, then the next pass): s [d] = the sum of the rows;
 * s [d, d] = the upper triangle of sum (x - mu)(x - mu)^T; cov [d, d],
 * that summed upper triangle, divided by n - 1 and mirrored. */
void dgm__feat_sum_rows(const float *x, int64_t m, int64_t d, double *s);
int dgm__feat_sum_outer(const float *x, int64_t m, int64_t d, const double *mu,
                        double *s);
void dgm__feat_finish_cov(double *cov, int64_t n, int64_t d);

/* Frechet distance between N(mu1, s1) and N(mu2, s2):
 * |mu1 - mu2|^2 + tr(s1) + tr(s2) - 2 tr sqrt(s1 s2), the trace through
 * two symmetric eigendecompositions (LAPACKE_dsyevd): sqrt(s1) =
 * V sqrt(L) V^T, then the eigenvalues of sqrt(s1) s2 sqrt(s1). */
int dgm__feat_frechet(const double *mu1, const double *s1, const double *mu2,
                      const double *s2, int64_t d, double *out);

/* FID of two feature sets: Gaussian fits, then the Frechet distance. */
int dgm__feat_fid(const float *x, int64_t nx, const float *y, int64_t ny,
                  int64_t d, double *out);

/* KID: the unbiased MMD^2 with k(a, b) = (a.b / d + 1)^3 on `subsets`
 * random subsets of m = min(nx, ny, subset_size) rows of each set (drawn
 * without replacement with a generator seeded by `seed`); *mean and *std
 * (population standard deviation over the subsets, as the reference
 * implementation reports). */
int dgm__feat_kid(const float *x, int64_t nx, const float *y, int64_t ny,
                  int64_t d, int subsets, int64_t subset_size, uint64_t seed,
                  double *mean, double *std);

/* Improved precision and recall (Kynkaanniemi et al. 2019): the manifold
 * of a set is the union of balls around its points of radius the distance
 * to their k-th nearest neighbour in the set; precision is the fraction of
 * fake rows inside the real manifold, recall the fraction of real rows
 * inside the fake one. */
int dgm__feat_precision_recall(const float *real, int64_t nr, const float *fake,
                               int64_t nf, int64_t d, int k, double *precision,
                               double *recall);

/* Memorization (the data-copying check of Meehan et al. 2020, in a
 * classifier's feature space): the Euclidean distance of each generated
 * row to its nearest training row against that of each held-out test
 * row. *ratio = mean over fake / mean over test (below 1: samples sit
 * closer to the training set than unseen data does); *closer = the
 * fraction of fake rows nearer to a training row than every test row is
 * (than the smallest test distance). */
int dgm__feat_memorization(const float *train, int64_t nt, const float *test,
                           int64_t ns, const float *fake, int64_t nf, int64_t d,
                           double *ratio, double *closer);

#endif
