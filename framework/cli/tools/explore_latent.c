/* explore_latent.c - the figures of a run's latent space: traversals of
 * single dimensions, interpolations between two latents, the latent map
 * (posterior means in 2-D, PCA through LAPACKE) and the decoded manifold
 * of a 2-D latent. */
#include <lapacke.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/error.h"
#include "dgm/rng.h"
#include "explore.h"

dgm__explore_opts dgm__explore_defaults(void)
{
    return (dgm__explore_opts){.n_dims = 10,
                               .range = 3.0f,
                               .steps = 9,
                               .examples = 2,
                               .pairs = 6,
                               .map_n = 1000,
                               .nn_n = 8,
                               .nn_k = 5,
                               .nn_train = 10000,
                               .seed = 0};
}

static int64_t latent_or_refuse(dgm_run *r)
{
    int64_t L = dgm_run_latent_size(r);
    if (L < 1)
        return dgm_error(DGM_EUNSUPPORTED,
                         "model '%s' has no latent space to explore (its "
                         "plugin has no latent_size and decode slots)",
                         dgm_run_model_name(r));
    return L;
}

static int64_t test_size(dgm_run *r)
{
    return dgm_run_data_info(r)->size[DGM_SPLIT_TEST];
}

/* n latents [n, L]: the posterior means of test examples [start, start +
 * n) when the model has an encoder (*posterior set), else prior draws
 * from a generator seeded with seed and start. */
static int base_latents(dgm_run *r, int64_t L, int64_t start, int64_t n,
                        uint64_t seed, dgm_tensor **z, bool *posterior)
{
    *z = NULL;
    *posterior = false;
    if (start + n <= test_size(r)) {
        dgm_tensor *x;
        int rc = dgm_run_examples(r, DGM_SPLIT_TEST, start, n, &x, NULL);
        if (rc < 0)
            return rc;
        rc = dgm_run_encode(r, x, z, NULL);
        dgm_tensor_free(x);
        if (rc == 0) {
            *posterior = true;
            return 0;
        }
        if (rc != DGM_EUNSUPPORTED)
            return rc;
    }
    int64_t shape[2] = {n, L};
    if (!(*z = dgm_tensor_new(DGM_F32, 2, shape)))
        return dgm_last_code();
    dgm_rng g;
    dgm_rng_seed(&g, seed * 1000003u + (uint64_t)start);
    float *p = dgm_tensor_f32(*z);
    for (int64_t i = 0; i < n * L; i++)
        p[i] = dgm_rng_normal(&g);
    return 0;
}

/* A conditional model decodes every latent with class 0, so that only
 * the latent changes along a traversal or a path (left to itself it
 * would draw a label per image). Whether the model is conditional: one
 * labelled decode, which an unconditional model refuses. */
static int decode_fixed(dgm_run *r, const dgm_tensor *z, dgm_tensor **out)
{
    *out = NULL;
    int rc = 0;
    bool cond = false;
    if (dgm_run_data_info(r)->has_y) {
        int64_t L = z->shape[1], one = 1;
        dgm_tensor *z1 = dgm_tensor_new(DGM_F32, 2, (int64_t[]){1, L});
        dgm_tensor *y1 = dgm_tensor_new(DGM_I64, 1, &one), *x1 = NULL;
        rc = z1 && y1 ? dgm_run_decode(r, z1, y1, &x1) : dgm_last_code();
        cond = rc == 0;
        if (rc == DGM_EUNSUPPORTED)
            rc = 0;
        dgm_tensor_free(z1);
        dgm_tensor_free(y1);
        dgm_tensor_free(x1);
    }
    if (rc < 0)
        return rc;
    if (!cond)
        return dgm_run_decode(r, z, NULL, out);
    int64_t n = z->shape[0];
    dgm_tensor *y = dgm_tensor_new(DGM_I64, 1, &n); /* zero-filled: class 0 */
    rc = y ? dgm_run_decode(r, z, y, out) : dgm_last_code();
    dgm_tensor_free(y);
    return rc;
}

static float step_value(const dgm__explore_opts *o, int j)
{
    return o->steps > 1
               ? -o->range + 2.0f * o->range * (float)j / (float)(o->steps - 1)
               : 0.0f;
}

/* Mean KL(q(z_d | x) || N(0, 1)) per dimension over test examples. */
static int kl_per_dim(dgm_run *r, int64_t L, const dgm__explore_opts *o,
                      double *kl)
{
    int64_t n = test_size(r) < o->map_n ? test_size(r) : o->map_n;
    dgm_tensor *x = NULL, *mu = NULL, *lv = NULL;
    int rc = dgm_run_examples(r, DGM_SPLIT_TEST, 0, n, &x, NULL);
    if (rc == 0)
        rc = dgm_run_encode(r, x, &mu, &lv);
    if (rc == 0 && !lv)
        rc = dgm_error(DGM_EUNSUPPORTED,
                       "model '%s' gives no posterior "
                       "variance to order dimensions by",
                       dgm_run_model_name(r));
    for (int64_t d = 0; rc == 0 && d < L; d++) {
        const float *m = dgm_tensor_f32(mu), *v = dgm_tensor_f32(lv);
        double s = 0;
        for (int64_t i = 0; i < n; i++) {
            double a = m[i * L + d], b = v[i * L + d];
            s += 0.5 * (a * a + exp(b) - b - 1.0);
        }
        kl[d] = s / (double)n;
    }
    dgm_tensor_free(x);
    dgm_tensor_free(mu);
    dgm_tensor_free(lv);
    return rc;
}

/* Decode `steps` copies of z0 [1, L] per dimension of dims[0..nd), the
 * dimension swept: images [nd * steps, x...]. */
static int sweep_dims(dgm_run *r, const dgm_tensor *z0, int64_t L,
                      const int *dims, int nd, const dgm__explore_opts *o,
                      dgm_tensor **images)
{
    int64_t rows = (int64_t)nd * o->steps, shape[2] = {rows, L};
    dgm_tensor *z = dgm_tensor_new(DGM_F32, 2, shape);
    if (!z)
        return dgm_last_code();
    float *p = dgm_tensor_f32(z);
    for (int d = 0; d < nd; d++)
        for (int j = 0; j < o->steps; j++) {
            float *row = p + ((int64_t)d * o->steps + j) * L;
            memcpy(row, dgm_tensor_f32(z0), sizeof(float) * (size_t)L);
            row[dims[d]] = step_value(o, j);
        }
    int rc = decode_fixed(r, z, images);
    dgm_tensor_free(z);
    return rc;
}

/* Mean over the pixels of the variance along each row of `steps`. */
static void effect_variance(const dgm_tensor *im, int nd, int steps,
                            double *score)
{
    int64_t per = dgm_tensor_numel(im) / im->shape[0];
    const float *p = dgm_tensor_f32(im);
    for (int d = 0; d < nd; d++) {
        double s = 0;
        for (int64_t k = 0; k < per; k++) {
            double m = 0, m2 = 0;
            for (int j = 0; j < steps; j++) {
                double v = p[((int64_t)d * steps + j) * per + k];
                m += v;
                m2 += v * v;
            }
            m /= steps;
            s += m2 / steps - m * m;
        }
        score[d] = s / (double)per;
    }
}

/* The dimensions by decreasing score, the first n of them in dims. */
static void rank(const double *score, int64_t L, int n, int *dims)
{
    for (int i = 0; i < n; i++) {
        int best = -1;
        for (int64_t d = 0; d < L; d++) {
            bool used = false;
            for (int j = 0; j < i && !used; j++)
                used = dims[j] == d;
            if (!used && (best < 0 || score[d] > score[best]))
                best = (int)d;
        }
        dims[i] = best;
    }
}

/* The rows of a traversal: the listed dimensions, or the first n_dims by
 * score (computed into score[0..L)). */
static int choose_dims(dgm_run *r, const dgm_tensor *z0, int64_t L,
                       const dgm__explore_opts *o, bool posterior,
                       dgm__traversal *t, double *score)
{
    if (o->n_list > 0) {
        for (int i = 0; i < o->n_list; i++)
            if (o->dims[i] < 0 || o->dims[i] >= L)
                return dgm_error(DGM_ERANGE,
                                 "--dims: dimension %d is not in the "
                                 "latent's 0..%lld",
                                 o->dims[i], (long long)L - 1);
        t->rows = o->n_list;
        memcpy(t->dims, o->dims, sizeof(int) * (size_t)o->n_list);
    } else
        t->rows = (int)(o->n_dims < L ? o->n_dims : L);
    int rc = 0;
    t->by_kl = posterior;
    if (posterior) {
        rc = kl_per_dim(r, L, o, score);
        if (rc == DGM_EUNSUPPORTED)
            t->by_kl = false, rc = 0;
        else if (rc < 0)
            return rc;
    }
    if (!t->by_kl) {
        /* every dimension swept once to measure what it changes */
        int *all = malloc(sizeof *all * (size_t)L);
        dgm_tensor *im = NULL;
        if (!all)
            return dgm_error(DGM_ENOMEM, "explore: out of memory");
        for (int64_t d = 0; d < L; d++)
            all[d] = (int)d;
        rc = sweep_dims(r, z0, L, all, (int)L, o, &im);
        if (rc == 0)
            effect_variance(im, (int)L, o->steps, score);
        dgm_tensor_free(im);
        free(all);
    }
    if (rc == 0 && o->n_list == 0)
        rank(score, L, t->rows, t->dims);
    for (int i = 0; rc == 0 && i < t->rows; i++)
        t->score[i] = score[t->dims[i]];
    return rc;
}

int dgm__explore_traversal(dgm_run *r, const dgm__explore_opts *o, int which,
                           dgm__traversal *out)
{
    memset(out, 0, sizeof *out);
    int64_t L = latent_or_refuse(r);
    if (L < 0)
        return (int)L;
    dgm_tensor *z0 = NULL;
    bool posterior;
    double *score = calloc((size_t)L, sizeof *score);
    int rc = score ? base_latents(r, L, which, 1, o->seed, &z0, &posterior)
                   : dgm_error(DGM_ENOMEM, "explore: out of memory");
    if (rc == 0)
        rc = choose_dims(r, z0, L, o, posterior, out, score);
    out->steps = o->steps;
    if (rc == 0)
        rc = sweep_dims(r, z0, L, out->dims, out->rows, o, &out->images);
    dgm_tensor_free(z0);
    free(score);
    if (rc < 0)
        dgm__traversal_free(out);
    return rc;
}

void dgm__traversal_free(dgm__traversal *t)
{
    dgm_tensor_free(t->images);
    t->images = NULL;
}

/* a + t (b - a), or along the great circle when spherical (linear when
 * a and b are almost parallel). */
static void path_point(const float *a, const float *b, int64_t L, float t,
                       bool spherical, float *out)
{
    double wa = 1.0 - t, wb = t;
    if (spherical) {
        double ab = 0, aa = 0, bb = 0;
        for (int64_t i = 0; i < L; i++)
            ab += (double)a[i] * b[i], aa += (double)a[i] * a[i],
                bb += (double)b[i] * b[i];
        double c = aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : 1.0;
        double th = acos(c < -1 ? -1 : c > 1 ? 1 : c);
        if (sin(th) > 1e-6)
            wa = sin((1.0 - t) * th) / sin(th), wb = sin(t * th) / sin(th);
    }
    for (int64_t i = 0; i < L; i++)
        out[i] = (float)(wa * a[i] + wb * b[i]);
}

/* Latents [rows * steps, L]: row i goes from ends[2i] to ends[2i + 1]. */
static dgm_tensor *paths(const dgm_tensor *ends, int rows, int steps,
                         bool spherical)
{
    int64_t L = ends->shape[1], shape[2] = {(int64_t)rows * steps, L};
    dgm_tensor *z = dgm_tensor_new(DGM_F32, 2, shape);
    if (!z)
        return NULL;
    const float *e = dgm_tensor_f32(ends);
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < steps; j++)
            path_point(e + 2 * i * L, e + (2 * i + 1) * L, L,
                       steps > 1 ? (float)j / (float)(steps - 1) : 0.0f,
                       spherical, dgm_tensor_f32(z) + (i * steps + j) * L);
    return z;
}

int dgm__explore_interpolation(dgm_run *r, const dgm__explore_opts *o,
                               bool spherical, dgm_tensor **images,
                               bool *posterior_out)
{
    *images = NULL;
    int64_t L = latent_or_refuse(r);
    if (L < 0)
        return (int)L;
    dgm_tensor *ends = NULL, *z = NULL;
    bool posterior;
    int rc = base_latents(r, L, 0, 2 * (int64_t)o->pairs, o->seed, &ends,
                          &posterior);
    if (rc == 0 && !(z = paths(ends, o->pairs, o->steps, spherical)))
        rc = dgm_last_code();
    if (rc == 0)
        rc = decode_fixed(r, z, images);
    if (posterior_out)
        *posterior_out = posterior;
    dgm_tensor_free(ends);
    dgm_tensor_free(z);
    return rc;
}

int dgm__explore_class_rows(dgm_run *r, const dgm__explore_opts *o,
                            dgm_tensor **images, int *classes)
{
    *images = NULL;
    int64_t L = latent_or_refuse(r);
    if (L < 0)
        return (int)L;
    const dgm_data_info *info = dgm_run_data_info(r);
    if (!info->has_y || info->n_classes < 1)
        return dgm_error(DGM_EUNSUPPORTED,
                         "model '%s': the data has no classes to condition "
                         "on",
                         dgm_run_model_name(r));
    int nc = (int)info->n_classes;
    dgm_tensor *ends = NULL, *one = NULL, *z = NULL, *y = NULL;
    bool posterior;
    int64_t n = (int64_t)nc * o->steps;
    int rc = base_latents(r, L, 0, 2, o->seed, &ends, &posterior);
    if (rc == 0 && !(one = paths(ends, 1, o->steps, false)))
        rc = dgm_last_code();
    if (rc == 0 && (!(z = dgm_tensor_new(DGM_F32, 2, (int64_t[]){n, L})) ||
                    !(y = dgm_tensor_new(DGM_I64, 1, &n))))
        rc = dgm_last_code();
    for (int c = 0; rc == 0 && c < nc; c++)
        for (int j = 0; j < o->steps; j++) {
            int64_t i = (int64_t)c * o->steps + j;
            memcpy(dgm_tensor_f32(z) + i * L, dgm_tensor_f32(one) + j * L,
                   sizeof(float) * (size_t)L);
            ((int64_t *)y->data)[i] = c;
        }
    if (rc == 0)
        rc = dgm_run_decode(r, z, y, images);
    *classes = nc;
    dgm_tensor_free(ends);
    dgm_tensor_free(one);
    dgm_tensor_free(z);
    dgm_tensor_free(y);
    return rc;
}

/* The top two principal directions of the centred rows m [n, L] projected
 * into xy [n, 2] (covariance eigenvectors by LAPACKE_dsyev; each sign
 * chosen so the largest loading is positive, for a stable picture). */
static int pca2(const float *m, int64_t n, int64_t L, float *xy)
{
    double *c = calloc((size_t)(L * L), sizeof *c),
           *mean = calloc((size_t)L, sizeof *mean),
           *w = calloc((size_t)L, sizeof *w);
    int rc = 0;
    if (!c || !mean || !w)
        rc = dgm_error(DGM_ENOMEM, "latent map: out of memory");
    for (int64_t i = 0; rc == 0 && i < n; i++)
        for (int64_t a = 0; a < L; a++)
            mean[a] += m[i * L + a] / (double)n;
    for (int64_t i = 0; rc == 0 && i < n; i++)
        for (int64_t a = 0; a < L; a++)
            for (int64_t b = a; b < L; b++)
                c[a * L + b] +=
                    (m[i * L + a] - mean[a]) * (m[i * L + b] - mean[b]);
    if (rc == 0 && LAPACKE_dsyev(LAPACK_ROW_MAJOR, 'V', 'U', (lapack_int)L, c,
                                 (lapack_int)L, w) != 0)
        rc = dgm_error(DGM_EINVAL, "latent map: the eigensolver failed");
    for (int k = 0; rc == 0 && k < 2; k++) {
        int64_t col = L - 1 - k, big = 0; /* ascending eigenvalues */
        for (int64_t a = 1; a < L; a++)
            if (fabs(c[a * L + col]) > fabs(c[big * L + col]))
                big = a;
        double sign = c[big * L + col] < 0 ? -1.0 : 1.0;
        for (int64_t i = 0; i < n; i++) {
            double s = 0;
            for (int64_t a = 0; a < L; a++)
                s += (m[i * L + a] - mean[a]) * c[a * L + col];
            xy[i * 2 + k] = (float)(sign * s);
        }
    }
    free(c);
    free(mean);
    free(w);
    return rc;
}

int dgm__explore_latent_map(dgm_run *r, const dgm__explore_opts *o,
                            dgm_tensor **xy, dgm_tensor **labels, bool *exact)
{
    *xy = NULL;
    *labels = NULL;
    int64_t L = latent_or_refuse(r);
    if (L < 0)
        return (int)L;
    int64_t n = test_size(r) < o->map_n ? test_size(r) : o->map_n;
    dgm_tensor *x = NULL, *mu = NULL;
    int rc = dgm_run_examples(r, DGM_SPLIT_TEST, 0, n, &x, labels);
    if (rc == 0)
        rc = dgm_run_encode(r, x, &mu, NULL);
    dgm_tensor_free(x);
    *exact = L == 2;
    if (rc == 0 && L == 2) {
        *xy = mu;
        return 0;
    }
    if (rc == 0 && L < 2)
        rc = dgm_error(DGM_EUNSUPPORTED,
                       "latent map: a 1-D latent has no plane to draw");
    if (rc == 0 && n < 2)
        rc =
            dgm_error(DGM_EUNSUPPORTED,
                      "latent map: %lld test example(s), need 2", (long long)n);
    if (rc == 0 && !(*xy = dgm_tensor_new(DGM_F32, 2, (int64_t[]){n, 2})))
        rc = dgm_last_code();
    if (rc == 0)
        rc = pca2(dgm_tensor_f32(mu), n, L, dgm_tensor_f32(*xy));
    dgm_tensor_free(mu);
    if (rc < 0) {
        dgm_tensor_free(*xy);
        dgm_tensor_free(*labels);
        *xy = *labels = NULL;
    }
    return rc;
}

int dgm__explore_manifold(dgm_run *r, const dgm__explore_opts *o,
                          dgm_tensor **images)
{
    *images = NULL;
    int64_t L = latent_or_refuse(r);
    if (L < 0)
        return (int)L;
    if (L != 2)
        return dgm_error(DGM_EUNSUPPORTED,
                         "the decoded manifold needs a 2-D latent, model "
                         "'%s' has %lld",
                         dgm_run_model_name(r), (long long)L);
    int64_t s = o->steps, shape[2] = {s * s, 2};
    dgm_tensor *z = dgm_tensor_new(DGM_F32, 2, shape);
    if (!z)
        return dgm_last_code();
    float *p = dgm_tensor_f32(z);
    for (int64_t i = 0; i < s; i++)
        for (int64_t j = 0; j < s; j++) {
            p[(i * s + j) * 2] = step_value(o, (int)j);
            p[(i * s + j) * 2 + 1] = step_value(o, (int)(s - 1 - i));
        }
    int rc = dgm_run_decode(r, z, NULL, images);
    dgm_tensor_free(z);
    return rc;
}
