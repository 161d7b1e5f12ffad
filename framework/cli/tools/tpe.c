/* tpe.c - the Tree-structured Parzen Estimator of tpe.h: prior draws
 * for the first proposals, then the candidate drawn from the good
 * observations' density l that maximises l(x) / g(x). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/error.h"
#include "dgm/rng.h"
#include "tpe.h"

struct dgm__tpe {
    int n_params, startup, candidates;
    double gamma;
    bool maximize;
    dgm__tpe_param *p;
    dgm_rng rng;
    int n_obs, cap;
    double *xs; /* [n_obs][n_params] */
    double *ys;
};

void dgm__tpe_free(dgm__tpe *t)
{
    if (!t)
        return;
    free(t->p);
    free(t->xs);
    free(t->ys);
    free(t);
}

int dgm__tpe_new(dgm__tpe **out, const dgm__tpe_param *params, int n_params,
                 int startup, double gamma, int candidates, uint64_t seed,
                 bool maximize)
{
    *out = NULL;
    if (n_params < 1)
        return dgm_error(DGM_EINVAL, "tpe: no parameters");
    for (int i = 0; i < n_params; i++) {
        const dgm__tpe_param *p = &params[i];
        bool ok = p->kind == DGM__TPE_CHOICE
                      ? p->n_choices >= 1
                      : isfinite(p->lo) && isfinite(p->hi) && p->lo <= p->hi &&
                            (p->kind != DGM__TPE_LOGUNIFORM || p->lo > 0);
        if (!ok)
            return dgm_error(DGM_EINVAL, "tpe: parameter %d: bad range", i);
    }
    dgm__tpe *t = calloc(1, sizeof *t);
    if (!t || !(t->p = malloc((size_t)n_params * sizeof *t->p))) {
        free(t);
        return dgm_error(DGM_ENOMEM, "out of memory");
    }
    memcpy(t->p, params, (size_t)n_params * sizeof *t->p);
    t->n_params = n_params;
    t->startup = startup > 0 ? startup : 1;
    t->gamma = gamma > 0 && gamma < 1 ? gamma : 0.25;
    t->candidates = candidates > 0 ? candidates : 24;
    t->maximize = maximize;
    dgm_rng_seed(&t->rng, seed);
    *out = t;
    return 0;
}

/* ---- one parameter's Parzen density ------------------------------------ */

/* The continuous space a parameter's density lives in: [a, b]; log for
 * loguniform, the integers' cells for int. */
static void space(const dgm__tpe_param *p, double *a, double *b)
{
    if (p->kind == DGM__TPE_LOGUNIFORM) {
        *a = log(p->lo);
        *b = log(p->hi);
    } else if (p->kind == DGM__TPE_INT) {
        *a = p->lo - 0.5;
        *b = p->hi + 0.5;
    } else {
        *a = p->lo;
        *b = p->hi;
    }
}

static double to_space(const dgm__tpe_param *p, double x)
{
    return p->kind == DGM__TPE_LOGUNIFORM ? log(x) : x;
}

/* Bandwidths (Bergstra et al.): each point's larger gap to its
 * neighbours among the sorted points and the ends, clipped to
 * [(b - a) / min(100, n + 1), b - a]. mu sorted; sigma out. */
static void bandwidths(const double *mu, int n, double a, double b,
                       double *sigma)
{
    double w = b - a, lo = w / fmin(100.0, n + 1.0);
    for (int i = 0; i < n; i++) {
        double left = mu[i] - (i ? mu[i - 1] : a);
        double right = (i + 1 < n ? mu[i + 1] : b) - mu[i];
        sigma[i] = fmin(fmax(fmax(left, right), lo), w);
        if (!(sigma[i] > 0))
            sigma[i] = w > 0 ? w : 1;
    }
}

static double phi_cdf(double z)
{
    return 0.5 * (1 + erf(z / sqrt(2.0)));
}

static int by_value(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* mu: the values in space, sorted (a copy the caller frees). */
static double *sorted_space(const dgm__tpe_param *p, const double *vals, int n)
{
    double *mu = malloc((size_t)(n ? n : 1) * 2 * sizeof *mu);
    if (!mu)
        return NULL;
    for (int i = 0; i < n; i++)
        mu[i] = to_space(p, vals[i]);
    qsort(mu, (size_t)n, sizeof *mu, by_value);
    return mu;
}

double dgm__tpe_log_density(const dgm__tpe_param *p, const double *vals, int n,
                            double v)
{
    if (p->kind == DGM__TPE_CHOICE) {
        int k = (int)v, cnt = 0;
        for (int i = 0; i < n; i++)
            cnt += (int)vals[i] == k;
        return log((cnt + 1.0) / (n + (double)p->n_choices));
    }
    double a, b;
    space(p, &a, &b);
    double u = to_space(p, v), w = b - a;
    if (!(w > 0))
        return 0; /* one point: every density is 1 there */
    double *mu = sorted_space(p, vals, n);
    if (!mu)
        return NAN;
    double *sigma = mu + n;
    bandwidths(mu, n, a, b, sigma);
    /* n truncated Gaussians and the prior, weighted alike */
    double sum = 1 / w;
    for (int i = 0; i < n; i++) {
        double s = sigma[i], z = (u - mu[i]) / s;
        double mass = phi_cdf((b - mu[i]) / s) - phi_cdf((a - mu[i]) / s);
        sum += exp(-0.5 * z * z) / (s * sqrt(2 * M_PI)) / fmax(mass, 1e-300);
    }
    free(mu);
    return log(sum / (n + 1.0));
}

/* A draw from the Parzen density of the values (n = 0: the prior). */
static double draw(dgm__tpe *t, const dgm__tpe_param *p, const double *vals,
                   int n)
{
    if (p->kind == DGM__TPE_CHOICE) {
        /* P(k) = (count_k + 1) / (n + K) */
        uint64_t r = dgm_rng_below(&t->rng, (uint64_t)(n + p->n_choices));
        if (r < (uint64_t)n)
            return (double)(int)vals[r];
        return (double)(r - (uint64_t)n);
    }
    double a, b, u;
    space(p, &a, &b);
    uint64_t j = dgm_rng_below(&t->rng, (uint64_t)n + 1);
    if (j == (uint64_t)n || !(b > a)) {
        u = a + (b - a) * dgm_rng_uniform_f64(&t->rng);
    } else {
        double *mu = sorted_space(p, vals, n);
        if (!mu)
            return NAN;
        bandwidths(mu, n, a, b, mu + n);
        double m = mu[j], s = mu[n + j];
        free(mu);
        u = m;
        for (int k = 0; k < 100; k++) { /* truncated: redraw outside */
            double z = m + s * (double)dgm_rng_normal(&t->rng);
            if (z >= a && z <= b) {
                u = z;
                break;
            }
        }
    }
    if (p->kind == DGM__TPE_LOGUNIFORM)
        return fmin(fmax(exp(u), p->lo), p->hi);
    if (p->kind == DGM__TPE_INT)
        return fmin(fmax(round(u), p->lo), p->hi);
    return u;
}

/* ---- proposals ----------------------------------------------------------- */

typedef struct ranked {
    double key;
    int i;
} ranked;

static int by_key(const void *x, const void *y)
{
    const ranked *a = x, *b = y;
    if (a->key != b->key)
        return a->key < b->key ? -1 : 1;
    return (a->i > b->i) - (a->i < b->i);
}

int dgm__tpe_suggest(dgm__tpe *t, double *x)
{
    int np = t->n_params, n = t->n_obs;
    if (n < t->startup) {
        for (int j = 0; j < np; j++)
            x[j] = draw(t, &t->p[j], NULL, 0);
        return 0;
    }
    ranked *r = malloc((size_t)n * sizeof *r);
    double *good = malloc((size_t)n * (size_t)np * sizeof *good);
    double *bad = malloc((size_t)n * (size_t)np * sizeof *bad);
    double *cand = malloc((size_t)np * sizeof *cand);
    if (!r || !good || !bad || !cand) {
        free(r);
        free(good);
        free(bad);
        free(cand);
        return dgm_error(DGM_ENOMEM, "out of memory");
    }
    for (int i = 0; i < n; i++) {
        double y = t->ys[i];
        r[i] = (ranked){isnan(y) ? INFINITY : t->maximize ? -y : y, i};
    }
    qsort(r, (size_t)n, sizeof *r, by_key);
    int n_good = (int)ceil(t->gamma * n);
    n_good = n_good < 1 ? 1 : n_good;
    /* per parameter: its good values, then its bad ones */
    for (int j = 0; j < np; j++)
        for (int i = 0; i < n; i++) {
            double v = t->xs[(size_t)r[i].i * (size_t)np + (size_t)j];
            if (i < n_good)
                good[(size_t)j * (size_t)n + (size_t)i] = v;
            else
                bad[(size_t)j * (size_t)n + (size_t)(i - n_good)] = v;
        }
    double best = -INFINITY;
    for (int c = 0; c < t->candidates; c++) {
        double score = 0;
        for (int j = 0; j < np; j++) {
            const double *gj = good + (size_t)j * (size_t)n,
                         *bj = bad + (size_t)j * (size_t)n;
            cand[j] = draw(t, &t->p[j], gj, n_good);
            score += dgm__tpe_log_density(&t->p[j], gj, n_good, cand[j]) -
                     dgm__tpe_log_density(&t->p[j], bj, n - n_good, cand[j]);
        }
        if (score > best) { /* the first of equal scores */
            best = score;
            memcpy(x, cand, (size_t)np * sizeof *x);
        }
    }
    if (best == -INFINITY) /* every score NAN: a prior draw */
        for (int j = 0; j < np; j++)
            x[j] = draw(t, &t->p[j], NULL, 0);
    free(r);
    free(good);
    free(bad);
    free(cand);
    return 0;
}

int dgm__tpe_observe(dgm__tpe *t, const double *x, double y)
{
    if (t->n_obs == t->cap) {
        int cap = t->cap ? 2 * t->cap : 16;
        double *xs =
            realloc(t->xs, (size_t)cap * (size_t)t->n_params * sizeof *xs);
        if (!xs)
            return dgm_error(DGM_ENOMEM, "out of memory");
        t->xs = xs;
        double *ys = realloc(t->ys, (size_t)cap * sizeof *ys);
        if (!ys)
            return dgm_error(DGM_ENOMEM, "out of memory");
        t->ys = ys;
        t->cap = cap;
    }
    memcpy(t->xs + (size_t)t->n_obs * (size_t)t->n_params, x,
           (size_t)t->n_params * sizeof *x);
    t->ys[t->n_obs++] = y;
    return 0;
}
