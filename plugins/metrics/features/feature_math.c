/* feature_math.c - FID, KID and improved precision/recall on feature
 * arrays. Statistics accumulate in double; the large inner products (KID's
 * kernels, k-NN distances) go through libdgm's matmul (oneDNN) in blocks. */
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/dgm.h"
#include "feature_math.h"

void dgm__feat_sum_rows(const float *x, int64_t m, int64_t d, double *s)
{
    memset(s, 0, sizeof *s * (size_t)d);
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < d; j++)
            s[j] += x[i * d + j];
}

int dgm__feat_sum_outer(const float *x, int64_t m, int64_t d, const double *mu,
                        double *s)
{
    memset(s, 0, sizeof *s * (size_t)(d * d));
    if (m < 1)
        return 0;
    double *c = malloc(sizeof *c * (size_t)(m * d)); /* centred rows */
    if (!c)
        return dgm_error(DGM_ENOMEM, "feature statistics: out of memory");
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < d; j++)
            c[i * d + j] = x[i * d + j] - mu[j];
            /* Upper triangle of sum (x - mu)(x - mu)^T: one parallel region,
             * each row of the covariance owned by one thread. */
#pragma omp parallel for schedule(dynamic, 4)
    for (int64_t a = 0; a < d; a++) {
        double *row = s + a * d;
        for (int64_t i = 0; i < m; i++) {
            const double *ci = c + i * d;
            double ca = ci[a];
            for (int64_t b = a; b < d; b++)
                row[b] += ca * ci[b];
        }
    }
    free(c);
    return 0;
}

void dgm__feat_finish_cov(double *cov, int64_t n, int64_t d)
{
    for (int64_t a = 0; a < d; a++)
        for (int64_t b = a; b < d; b++) {
            cov[a * d + b] /= (double)(n - 1);
            cov[b * d + a] = cov[a * d + b];
        }
}

int dgm__feat_gaussian(const float *x, int64_t n, int64_t d, double *mu,
                       double *cov)
{
    if (n < 2 || d < 1)
        return dgm_error(DGM_EINVAL,
                         "feature statistics: need at least 2 rows of at "
                         "least 1 feature, got [%lld, %lld]",
                         (long long)n, (long long)d);
    dgm__feat_sum_rows(x, n, d, mu);
    for (int64_t j = 0; j < d; j++)
        mu[j] /= (double)n;
    int rc = dgm__feat_sum_outer(x, n, d, mu, cov);
    if (rc == 0)
        dgm__feat_finish_cov(cov, n, d);
    return rc;
}

/* c [d, d] = a [d, d] b [d, d] */
static void matmul_d(const double *a, const double *b, double *c, int64_t d)
{
#pragma omp parallel for
    for (int64_t i = 0; i < d; i++) {
        double *ci = c + i * d;
        for (int64_t j = 0; j < d; j++)
            ci[j] = 0;
        for (int64_t k = 0; k < d; k++) {
            double aik = a[i * d + k];
            const double *bk = b + k * d;
            for (int64_t j = 0; j < d; j++)
                ci[j] += aik * bk[j];
        }
    }
}

static int eigh(double *a, int64_t d, double *w, char jobz)
{
    lapack_int info = LAPACKE_dsyevd(LAPACK_ROW_MAJOR, jobz, 'U', (lapack_int)d,
                                     a, (lapack_int)d, w);
    if (info != 0)
        return dgm_error(DGM_EINVAL,
                         "fid: LAPACKE_dsyevd failed on a [%lld, %lld] "
                         "covariance (info %d)",
                         (long long)d, (long long)d, (int)info);
    return 0;
}

int dgm__feat_frechet(const double *mu1, const double *s1, const double *mu2,
                      const double *s2, int64_t d, double *out)
{
    size_t dd = (size_t)(d * d);
    double *v = malloc(sizeof *v * dd), *r = malloc(sizeof *r * dd),
           *t = malloc(sizeof *t * dd), *w = malloc(sizeof *w * (size_t)d);
    int rc = 0;
    if (!v || !r || !t || !w) {
        rc = dgm_error(DGM_ENOMEM, "fid: out of memory (%lld features)",
                       (long long)d);
        goto done;
    }
    memcpy(v, s1, sizeof *v * dd);
    if ((rc = eigh(v, d, w, 'V')) < 0)
        goto done;
    /* r = sqrt(s1) = V sqrt(L) V^T; eigenvectors are v's columns.
     * Tiny negative eigenvalues of a PSD matrix are rounding: clamp. */
    for (int64_t j = 0; j < d; j++)
        w[j] = sqrt(w[j] > 0 ? w[j] : 0);
    for (int64_t i = 0; i < d; i++)
        for (int64_t k = 0; k < d; k++) {
            double s = 0;
            for (int64_t j = 0; j < d; j++)
                s += v[i * d + j] * w[j] * v[k * d + j];
            r[i * d + k] = s;
        }
    matmul_d(r, s2, t, d); /* sqrt(s1) s2 */
    matmul_d(t, r, v, d);  /* sqrt(s1) s2 sqrt(s1): symmetric PSD */
    for (int64_t i = 0; i < d; i++)
        for (int64_t k = i + 1; k < d; k++) {
            double m = 0.5 * (v[i * d + k] + v[k * d + i]);
            v[i * d + k] = v[k * d + i] = m;
        }
    if ((rc = eigh(v, d, w, 'N')) < 0)
        goto done;
    double tr_sqrt = 0, tr1 = 0, tr2 = 0, dm = 0;
    for (int64_t j = 0; j < d; j++) {
        tr_sqrt += sqrt(w[j] > 0 ? w[j] : 0);
        tr1 += s1[j * d + j];
        tr2 += s2[j * d + j];
        dm += (mu1[j] - mu2[j]) * (mu1[j] - mu2[j]);
    }
    *out = dm + tr1 + tr2 - 2 * tr_sqrt;
done:
    free(v), free(r), free(t), free(w);
    return rc;
}

int dgm__feat_fid(const float *x, int64_t nx, const float *y, int64_t ny,
                  int64_t d, double *out)
{
    size_t dd = (size_t)(d * d);
    double *mu1 = malloc(sizeof(double) * (size_t)d),
           *mu2 = malloc(sizeof(double) * (size_t)d),
           *s1 = malloc(sizeof(double) * dd), *s2 = malloc(sizeof(double) * dd);
    int rc = mu1 && mu2 && s1 && s2
                 ? 0
                 : dgm_error(DGM_ENOMEM, "fid: out of memory");
    if (rc == 0)
        rc = dgm__feat_gaussian(x, nx, d, mu1, s1);
    if (rc == 0)
        rc = dgm__feat_gaussian(y, ny, d, mu2, s2);
    if (rc == 0)
        rc = dgm__feat_frechet(mu1, s1, mu2, s2, d, out);
    free(mu1), free(mu2), free(s1), free(s2);
    return rc;
}

/* ---- inner products in blocks ------------------------------------------ */

/* a [m, d] b [n, d]^T through dgm_matmul on a gradient-free graph; the
 * result lives until the next call or gram_free. */
typedef struct gram {
    dgm_graph *g;
    dgm_tensor *ta, *tb;
} gram;

static void gram_free(gram *q)
{
    dgm_tensor_free(q->ta);
    dgm_tensor_free(q->tb);
    dgm_graph_free(q->g);
}

static const float *gram_of(gram *q, const float *a, int64_t m, const float *b,
                            int64_t n, int64_t d)
{
    if (!q->g) {
        if (!(q->g = dgm_graph_new()))
            return NULL;
        dgm_graph_set_grad(q->g, false);
    }
    dgm_graph_reset(q->g);
    dgm_tensor_free(q->ta);
    dgm_tensor_free(q->tb);
    q->ta = dgm_tensor_wrap((void *)a, DGM_F32, 2, (int64_t[]){m, d}, NULL);
    q->tb = dgm_tensor_wrap((void *)b, DGM_F32, 2, (int64_t[]){n, d}, NULL);
    if (!q->ta || !q->tb)
        return NULL;
    dgm_var *v = dgm_matmul(q->g, dgm_input(q->g, q->ta),
                            dgm_input(q->g, q->tb), false, true);
    if (!v)
        return NULL;
    dgm_tensor *t = dgm_value(v);
    return dgm_tensor_is_contiguous(t) ? dgm_tensor_f32(t) : NULL;
}

/* ---- kid ---------------------------------------------------------------- */

/* Sum of (g / d + 1)^3 over g [m, n], without the diagonal if asked. */
static double kernel_sum(const float *g, int64_t m, int64_t n, int64_t d,
                         int skip_diag)
{
    double s = 0;
#pragma omp parallel for reduction(+ : s)
    for (int64_t i = 0; i < m; i++) {
        double r = 0;
        for (int64_t j = 0; j < n; j++) {
            double k = (double)g[i * n + j] / (double)d + 1.0;
            r += k * k * k;
        }
        if (skip_diag) {
            double k = (double)g[i * n + i] / (double)d + 1.0;
            r -= k * k * k;
        }
        s += r;
    }
    return s;
}

/* m distinct row indices of [0, n) (partial Fisher-Yates), copied. */
static void draw_rows(const float *x, int64_t n, int64_t d, int64_t m,
                      int64_t *perm, float *out, dgm_rng *r)
{
    for (int64_t i = 0; i < n; i++)
        perm[i] = i;
    for (int64_t i = 0; i < m; i++) {
        int64_t j = i + (int64_t)dgm_rng_below(r, (uint64_t)(n - i));
        int64_t t = perm[i];
        perm[i] = perm[j], perm[j] = t;
        memcpy(out + i * d, x + perm[i] * d, sizeof(float) * (size_t)d);
    }
}

int dgm__feat_kid(const float *x, int64_t nx, const float *y, int64_t ny,
                  int64_t d, int subsets, int64_t subset_size, uint64_t seed,
                  double *mean, double *std)
{
    int64_t m = nx < ny ? nx : ny;
    if (subset_size < m)
        m = subset_size;
    if (m < 2 || subsets < 1 || d < 1)
        return dgm_error(DGM_EINVAL,
                         "kid: need subsets of at least 2 rows (sets of %lld "
                         "and %lld, subset_size %lld) and subsets >= 1",
                         (long long)nx, (long long)ny, (long long)subset_size);
    int64_t nmax = nx > ny ? nx : ny;
    int64_t *perm = malloc(sizeof *perm * (size_t)nmax);
    float *xs = malloc(sizeof *xs * (size_t)(m * d)),
          *ys = malloc(sizeof *ys * (size_t)(m * d));
    double *val = malloc(sizeof *val * (size_t)subsets);
    gram q = {0};
    int rc = 0;
    if (!perm || !xs || !ys || !val) {
        rc = dgm_error(DGM_ENOMEM, "kid: out of memory");
        goto done;
    }
    dgm_rng r;
    dgm_rng_seed(&r, seed);
    for (int s = 0; s < subsets; s++) {
        draw_rows(x, nx, d, m, perm, xs, &r);
        draw_rows(y, ny, d, m, perm, ys, &r);
        const float *g;
        double kxx, kyy, kxy;
        if (!(g = gram_of(&q, xs, m, xs, m, d)))
            goto fail;
        kxx = kernel_sum(g, m, m, d, 1);
        if (!(g = gram_of(&q, ys, m, ys, m, d)))
            goto fail;
        kyy = kernel_sum(g, m, m, d, 1);
        if (!(g = gram_of(&q, xs, m, ys, m, d)))
            goto fail;
        kxy = kernel_sum(g, m, m, d, 0);
        val[s] =
            (kxx + kyy) / (double)(m * (m - 1)) - 2.0 * kxy / (double)(m * m);
    }
    double mu = 0, var = 0;
    for (int s = 0; s < subsets; s++)
        mu += val[s];
    mu /= subsets;
    for (int s = 0; s < subsets; s++)
        var += (val[s] - mu) * (val[s] - mu);
    *mean = mu;
    *std = sqrt(var / subsets);
    goto done;
fail:
    rc = dgm_error_context("kid: ");
done:
    gram_free(&q);
    free(perm), free(xs), free(ys), free(val);
    return rc;
}

/* ---- precision and recall --------------------------------------------- */

#define PR_BLOCK 1024

static void sq_norms(const float *x, int64_t n, int64_t d, double *out)
{
    for (int64_t i = 0; i < n; i++) {
        double s = 0;
        for (int64_t j = 0; j < d; j++)
            s += (double)x[i * d + j] * x[i * d + j];
        out[i] = s;
    }
}

/* rad[i] = squared distance from x[i] to its k-th nearest other row (the
 * (k+1)-th smallest distance, the row itself being the first). */
static int knn_radii(gram *q, const float *x, int64_t n, int64_t d, int k,
                     const double *nrm, double *rad)
{
    for (int64_t i0 = 0; i0 < n; i0 += PR_BLOCK) {
        int64_t b = n - i0 < PR_BLOCK ? n - i0 : PR_BLOCK;
        const float *g = gram_of(q, x + i0 * d, b, x, n, d);
        if (!g)
            return dgm_error_context("precision_recall: ");
        int fail = 0;
#pragma omp parallel for
        for (int64_t i = 0; i < b; i++) {
            double best[257]; /* the k+1 smallest, ascending */
            int have = 0;
            for (int64_t j = 0; j < n; j++) {
                double dist = nrm[i0 + i] + nrm[j] - 2.0 * g[i * n + j];
                if (j == i0 + i)
                    dist = 0; /* exactly, whatever the rounding */
                if (dist < 0)
                    dist = 0;
                if (have == k + 1 && dist >= best[k])
                    continue;
                int p = have < k + 1 ? have++ : k;
                while (p > 0 && best[p - 1] > dist) {
                    best[p] = best[p - 1];
                    p--;
                }
                best[p] = dist;
            }
            if (have < k + 1)
                fail = 1;
            else
                rad[i0 + i] = best[k];
        }
        if (fail)
            return dgm_error(DGM_EINVAL,
                             "precision_recall: k = %d needs more than %d "
                             "rows per set, got %lld",
                             k, k, (long long)n);
    }
    return 0;
}

/* Fraction of rows of a inside the union of balls (b[j], rad_b[j]). */
static int coverage(gram *q, const float *a, int64_t na, const double *nrm_a,
                    const float *b, int64_t nb, const double *nrm_b,
                    const double *rad_b, int64_t d, double *out)
{
    int64_t inside = 0;
    for (int64_t i0 = 0; i0 < na; i0 += PR_BLOCK) {
        int64_t m = na - i0 < PR_BLOCK ? na - i0 : PR_BLOCK;
        const float *g = gram_of(q, a + i0 * d, m, b, nb, d);
        if (!g)
            return dgm_error_context("precision_recall: ");
#pragma omp parallel for reduction(+ : inside)
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < nb; j++) {
                double dist = nrm_a[i0 + i] + nrm_b[j] - 2.0 * g[i * nb + j];
                if (dist <= rad_b[j]) {
                    inside++;
                    break;
                }
            }
    }
    *out = (double)inside / (double)na;
    return 0;
}

int dgm__feat_precision_recall(const float *real, int64_t nr, const float *fake,
                               int64_t nf, int64_t d, int k, double *precision,
                               double *recall)
{
    if (k < 1 || k > 256)
        return dgm_error(DGM_ERANGE,
                         "precision_recall: k must be 1..256, "
                         "got %d",
                         k);
    double *nr_r = malloc(sizeof(double) * (size_t)nr),
           *nr_f = malloc(sizeof(double) * (size_t)nf),
           *rad_r = malloc(sizeof(double) * (size_t)nr),
           *rad_f = malloc(sizeof(double) * (size_t)nf);
    gram q = {0};
    int rc = nr_r && nr_f && rad_r && rad_f
                 ? 0
                 : dgm_error(DGM_ENOMEM, "precision_recall: out of memory");
    if (rc == 0) {
        sq_norms(real, nr, d, nr_r);
        sq_norms(fake, nf, d, nr_f);
        rc = knn_radii(&q, real, nr, d, k, nr_r, rad_r);
    }
    if (rc == 0)
        rc = knn_radii(&q, fake, nf, d, k, nr_f, rad_f);
    if (rc == 0)
        rc = coverage(&q, fake, nf, nr_f, real, nr, nr_r, rad_r, d, precision);
    if (rc == 0)
        rc = coverage(&q, real, nr, nr_r, fake, nf, nr_f, rad_f, d, recall);
    gram_free(&q);
    free(nr_r), free(nr_f), free(rad_r), free(rad_f);
    return rc;
}

/* ---- memorization ------------------------------------------------------- */

/* out[i] = Euclidean distance from a[i] to its nearest row of b. */
static int nearest(gram *q, const float *a, int64_t na, const double *nrm_a,
                   const float *b, int64_t nb, const double *nrm_b, int64_t d,
                   double *out)
{
    for (int64_t i0 = 0; i0 < na; i0 += PR_BLOCK) {
        int64_t m = na - i0 < PR_BLOCK ? na - i0 : PR_BLOCK;
        const float *g = gram_of(q, a + i0 * d, m, b, nb, d);
        if (!g)
            return dgm_error_context("memorization: ");
#pragma omp parallel for
        for (int64_t i = 0; i < m; i++) {
            double best = INFINITY;
            for (int64_t j = 0; j < nb; j++) {
                double dist = nrm_a[i0 + i] + nrm_b[j] - 2.0 * g[i * nb + j];
                best = dist < best ? dist : best;
            }
            out[i0 + i] = sqrt(best > 0 ? best : 0);
        }
    }
    return 0;
}

int dgm__feat_memorization(const float *train, int64_t nt, const float *test,
                           int64_t ns, const float *fake, int64_t nf, int64_t d,
                           double *ratio, double *closer)
{
    if (nt < 1 || ns < 1 || nf < 1)
        return dgm_error(DGM_EINVAL,
                         "memorization: needs training, test and generated "
                         "rows, got %lld, %lld, %lld",
                         (long long)nt, (long long)ns, (long long)nf);
    double *n_t = malloc(sizeof(double) * (size_t)nt),
           *n_s = malloc(sizeof(double) * (size_t)ns),
           *n_f = malloc(sizeof(double) * (size_t)nf),
           *d_s = malloc(sizeof(double) * (size_t)ns),
           *d_f = malloc(sizeof(double) * (size_t)nf);
    gram q = {0};
    int rc = n_t && n_s && n_f && d_s && d_f
                 ? 0
                 : dgm_error(DGM_ENOMEM, "memorization: out of memory");
    if (rc == 0) {
        sq_norms(train, nt, d, n_t);
        sq_norms(test, ns, d, n_s);
        sq_norms(fake, nf, d, n_f);
        rc = nearest(&q, test, ns, n_s, train, nt, n_t, d, d_s);
    }
    if (rc == 0)
        rc = nearest(&q, fake, nf, n_f, train, nt, n_t, d, d_f);
    if (rc == 0) {
        double sum_s = 0, sum_f = 0, min_s = INFINITY;
        int64_t in = 0;
        for (int64_t i = 0; i < ns; i++) {
            sum_s += d_s[i];
            min_s = d_s[i] < min_s ? d_s[i] : min_s;
        }
        for (int64_t i = 0; i < nf; i++) {
            sum_f += d_f[i];
            in += d_f[i] < min_s;
        }
        double mean_s = sum_s / (double)ns, mean_f = sum_f / (double)nf;
        *ratio = mean_s > 0 ? mean_f / mean_s : (mean_f > 0 ? INFINITY : 1.0);
        *closer = (double)in / (double)nf;
    }
    gram_free(&q);
    free(n_t), free(n_s), free(n_f), free(d_s), free(d_f);
    return rc;
}
