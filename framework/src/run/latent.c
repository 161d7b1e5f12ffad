/* latent.c - a finished run's model reached through its latent space and
 * its data, for `dgm explore`: examples of a split, samples, the
 * posterior of given inputs (encode) and data for given latents (decode). */
#include <string.h>

#include "dgm/error.h"
#include "plugin_check.h"
#include "run_internal.h"

/* Rows per model call: a step's arena holds one chunk at a time. */
#define CHUNK 256

const char *dgm_run_model_name(dgm_run *r)
{
    return dgm_run_experiment(r)->model.desc->name;
}

/* The model's optional ABI 2.2 slot `slot`, NULL when its interface
 * predates it or leaves it empty. */
#define MODEL_SLOT(e, slot)                                                    \
    (DGM__HAS_SLOT((e)->model.desc, dgm_model_iface, slot)                     \
         ? (e)->model.desc->iface.model->slot                                  \
         : NULL)

int64_t dgm_run_latent_size(dgm_run *r)
{
    dgm_experiment *e = dgm_run_experiment(r);
    int64_t (*f)(void *) = MODEL_SLOT(e, latent_size);
    return f && MODEL_SLOT(e, decode) ? f(e->model.self) : 0;
}

/* Rows [at, at + m) of the new tensor dst, of src's dtype and per-row
 * shape (dst made on the first chunk, n rows). */
static int put_rows(dgm_tensor **dst, int64_t n, int64_t at, int64_t m,
                    const dgm_tensor *src)
{
    if (!*dst) {
        int64_t shape[DGM_MAX_DIMS];
        memcpy(shape, src->shape, sizeof(int64_t) * (size_t)src->ndim);
        shape[0] = n;
        if (!(*dst = dgm_tensor_new(src->dtype, src->ndim, shape)))
            return dgm_last_code();
    }
    dgm_tensor rows = **dst;
    int rc = dgm_view_slice(&rows, 0, at, at + m, 1);
    return rc < 0 ? rc : dgm_tensor_copy(&rows, src);
}

int dgm_run_examples(dgm_run *r, dgm_split split, int64_t start, int64_t n,
                     dgm_tensor **x, dgm_tensor **y)
{
    *x = NULL;
    if (y)
        *y = NULL;
    dgm_experiment *e = dgm_run_experiment(r);
    if (split < 0 || split >= DGM_SPLIT_COUNT || start < 0 || n < 1 ||
        start + n > e->info.size[split])
        return dgm_error(DGM_ERANGE,
                         "run '%s': examples [%lld, %lld) are not in the "
                         "%s split of %lld",
                         e->name, (long long)start, (long long)(start + n),
                         split == DGM_SPLIT_TRAIN ? "training" : "test",
                         (long long)(split >= 0 && split < DGM_SPLIT_COUNT
                                         ? e->info.size[split]
                                         : 0));
    dgm_eval *ev = dgm__run_eval(r);
    int rc = 0;
    for (int64_t at = 0; at < n && rc == 0; at += CHUNK) {
        int64_t m = n - at < CHUNK ? n - at : CHUNK;
        dgm_step *s;
        dgm_vars *io;
        if ((rc = dgm_eval_batch(ev, split, start + at, m, &s, &io)) < 0)
            break;
        rc = put_rows(x, n, at, m, dgm_value(dgm_vars_get(io, "x")));
        dgm_var *yv = e->info.has_y ? dgm_vars_get(io, "y") : NULL;
        if (rc == 0 && y && yv && dgm_value(yv)->ndim == 1)
            rc = put_rows(y, n, at, m, dgm_value(yv));
    }
    if (rc < 0) {
        dgm_tensor_free(*x);
        *x = NULL;
        if (y) {
            dgm_tensor_free(*y);
            *y = NULL;
        }
    }
    return rc;
}

int dgm_run_samples(dgm_run *r, int64_t n, uint64_t seed, dgm_tensor **x)
{
    *x = NULL;
    dgm_eval *ev = dgm__run_eval(r);
    dgm_rng_seed(&ev->rng, seed);
    int rc = 0;
    for (int64_t at = 0; at < n && rc == 0; at += CHUNK) {
        int64_t m = n - at < CHUNK ? n - at : CHUNK;
        dgm_var *v;
        rc = dgm_eval_sample(ev, dgm__eval_empty_step(ev), m, &v);
        if (rc == 0)
            rc = put_rows(x, n, at, m, dgm_value(v));
    }
    if (rc < 0) {
        dgm_tensor_free(*x);
        *x = NULL;
    }
    return rc;
}

static int refuse(dgm_run *r, const char *what)
{
    return dgm_error(DGM_EUNSUPPORTED, "model '%s' has no %s",
                     dgm_run_model_name(r), what);
}

int dgm_run_encode(dgm_run *r, const dgm_tensor *x, dgm_tensor **mean,
                   dgm_tensor **logvar)
{
    *mean = NULL;
    if (logvar)
        *logvar = NULL;
    dgm_experiment *e = dgm_run_experiment(r);
    int (*enc)(void *, dgm_step *, dgm_var *, dgm_var **, dgm_var **) =
        MODEL_SLOT(e, encode);
    if (!enc)
        return refuse(r, "encoder (no encode slot)");
    const dgm_data_info *info = &e->info;
    char a[128], b[128];
    /* token windows may be shorter than the data's (a prompt) */
    bool tokens = info->x_dtype == DGM_I64 && info->x_shape.ndim == 1;
    if (!x || x->ndim != info->x_shape.ndim + 1 ||
        (tokens ? x->shape[1] < 1 || x->shape[1] > info->x_shape.dim[0]
                : memcmp(x->shape + 1, info->x_shape.dim,
                         sizeof(int64_t) * (size_t)info->x_shape.ndim)) ||
        x->dtype != info->x_dtype)
        return dgm_error(
            DGM_ESHAPE, "run '%s': input %s is not the model's examples %s%s",
            e->name, x ? dgm_tensor_describe(x, a, sizeof a) : "(none)",
            dgm_shape_str(info->x_shape.ndim, info->x_shape.dim, b, sizeof b),
            tokens ? " (or fewer tokens)" : "");
    dgm_eval *ev = dgm__run_eval(r);
    const int64_t n = x->shape[0];
    int rc = 0;
    for (int64_t at = 0; at < n && rc == 0; at += CHUNK) {
        int64_t m = n - at < CHUNK ? n - at : CHUNK;
        dgm_tensor rows = *x;
        dgm_var *mu = NULL, *lv = NULL;
        if ((rc = dgm_view_slice(&rows, 0, at, at + m, 1)) < 0)
            break;
        dgm_step *s = dgm__eval_empty_step(ev);
        rc = enc(e->model.self, s, dgm_input(s->g, &rows), &mu, &lv);
        if (rc < 0) {
            dgm_error_context("model '%s': ", dgm_run_model_name(r));
            break;
        }
        rc = mu ? put_rows(mean, n, at, m, dgm_value(mu)) : DGM_EINVAL;
        if (rc == 0 && logvar && lv)
            rc = put_rows(logvar, n, at, m, dgm_value(lv));
    }
    if (rc < 0) {
        dgm_tensor_free(*mean);
        *mean = NULL;
        if (logvar) {
            dgm_tensor_free(*logvar);
            *logvar = NULL;
        }
    }
    return rc;
}

/* One chunk of decode: z rows with their labels (y may be NULL) and
 * the temperature to draw tokens at (temp NULL: the model's own way). */
static int decode_chunk(dgm_run *r, dgm_tensor *z, dgm_tensor *y,
                        dgm_tensor *temp, dgm_var **out)
{
    dgm_experiment *e = dgm_run_experiment(r);
    int (*dec)(void *, dgm_step *, dgm_var *, dgm_vars *, dgm_var **) =
        MODEL_SLOT(e, decode);
    dgm_eval *ev = dgm__run_eval(r);
    dgm_step *s = dgm__eval_empty_step(ev);
    dgm__vars_clear(&ev->io);
    int rc = y ? dgm_vars_set(&ev->io, "y", dgm_input(s->g, y)) : 0;
    if (rc == 0 && temp)
        rc = dgm_vars_set(&ev->io, "temperature", dgm_input(s->g, temp));
    if (rc == 0)
        rc = dec(e->model.self, s, dgm_input(s->g, z), &ev->io, out);
    if (rc < 0)
        return dgm_error_context("model '%s': ", dgm_run_model_name(r));
    if (y && !dgm_vars_get(&ev->io, "y_used"))
        return dgm_error(DGM_EUNSUPPORTED,
                         "model '%s' is not conditional: it ignores labels",
                         dgm_run_model_name(r));
    if (temp && !dgm_vars_get(&ev->io, "temperature_used"))
        return dgm_error(DGM_EUNSUPPORTED,
                         "model '%s' draws no tokens to sample at a "
                         "temperature: it decodes deterministically",
                         dgm_run_model_name(r));
    return 0;
}

static int decode_all(dgm_run *r, const dgm_tensor *z, const dgm_tensor *y,
                      dgm_tensor *temp, dgm_tensor **x)
{
    *x = NULL;
    dgm_experiment *e = dgm_run_experiment(r);
    int64_t L = dgm_run_latent_size(r);
    if (L < 1)
        return refuse(r, "latent space (no latent_size and decode slots)");
    char a[128];
    if (!z || z->ndim != 2 || z->shape[1] != L || z->dtype != DGM_F32)
        return dgm_error(
            DGM_ESHAPE, "run '%s': latents %s are not f32 [n, %lld]", e->name,
            z ? dgm_tensor_describe(z, a, sizeof a) : "(none)", (long long)L);
    if (y &&
        (y->ndim != 1 || y->dtype != DGM_I64 || y->shape[0] != z->shape[0]))
        return dgm_error(DGM_ESHAPE,
                         "run '%s': labels %s are not i64 [%lld], one per "
                         "latent",
                         e->name, dgm_tensor_describe(y, a, sizeof a),
                         (long long)z->shape[0]);
    if (y && !e->info.has_y)
        return dgm_error(DGM_EUNSUPPORTED,
                         "model '%s' has no labels to condition on (the data "
                         "set has none)",
                         dgm_run_model_name(r));
    const int64_t n = z->shape[0];
    int rc = 0;
    for (int64_t at = 0; at < n && rc == 0; at += CHUNK) {
        int64_t m = n - at < CHUNK ? n - at : CHUNK;
        dgm_tensor zr = *z, yr = y ? *y : (dgm_tensor){0};
        dgm_var *v = NULL;
        rc = dgm_view_slice(&zr, 0, at, at + m, 1);
        if (rc == 0 && y)
            rc = dgm_view_slice(&yr, 0, at, at + m, 1);
        if (rc == 0)
            rc = decode_chunk(r, &zr, y ? &yr : NULL, temp, &v);
        if (rc == 0)
            rc = put_rows(x, n, at, m, dgm_value(v));
    }
    if (rc < 0) {
        dgm_tensor_free(*x);
        *x = NULL;
    }
    return rc;
}

int dgm_run_decode(dgm_run *r, const dgm_tensor *z, const dgm_tensor *y,
                   dgm_tensor **x)
{
    return decode_all(r, z, y, NULL, x);
}

int dgm_run_decode_sampled(dgm_run *r, const dgm_tensor *z, float temperature,
                           uint64_t seed, dgm_tensor **x)
{
    *x = NULL;
    if (!(temperature > 0.0f) || temperature > 1e6f)
        return dgm_error(DGM_ERANGE,
                         "run '%s': temperature %g is not in (0, 1e6]",
                         dgm_run_experiment(r)->name, (double)temperature);
    dgm_tensor *t = dgm_tensor_new(DGM_F32, 1, (int64_t[]){1});
    if (!t)
        return dgm_last_code();
    ((float *)t->data)[0] = temperature;
    dgm_rng_seed(&dgm__run_eval(r)->rng, seed);
    int rc = decode_all(r, z, NULL, t, x);
    dgm_tensor_free(t);
    return rc;
}
