/* run_open.c - a finished run directory rebuilt for use: its experiment
 * from config.yaml with the last checkpoint's parameters and data-set
 * state, and the model's named outputs on given inputs (teachers, feature
 * extractors, sampling, generation). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "dgm/error.h"
#include "run_internal.h"

struct dgm_run {
    dgm_experiment *e;
    dgm_eval *ev;
};

/* The runs being opened on this thread, outermost first, by real path.
 * Opening a run builds its experiment, which opens its teachers, which
 * are runs: a run that is (through others) its own teacher would open
 * forever, so it is refused with the chain, as config includes are. */
static _Thread_local const char *opening[DGM_MAX_RUN_NESTING];
static _Thread_local int n_opening;

static int chain_refuse(const char *real)
{
    for (int i = 0; i < n_opening; i++)
        if (!strcmp(opening[i], real)) {
            char msg[4096] = "";
            for (int j = i; j < n_opening; j++) {
                size_t l = strlen(msg);
                snprintf(msg + l, sizeof msg - l, "%s -> ", opening[j]);
            }
            return dgm_error(DGM_ECONFIG,
                             "run cycle: %s%s (a run that is, through its "
                             "teachers, its own teacher)",
                             msg, real);
        }
    if (n_opening == DGM_MAX_RUN_NESTING)
        return dgm_error(DGM_ECONFIG,
                         "%s: runs opened inside each other (teachers of "
                         "teachers) more than %d deep",
                         real, DGM_MAX_RUN_NESTING);
    return 0;
}

static int build(dgm_run *r, dgm_registry *reg, const char *run_dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/config.yaml", run_dir);
    int rc = dgm_experiment_load(&r->e, reg, path, NULL, 0);
    if (rc == 0)
        rc = dgm__experiment_build(r->e);
    return rc;
}

int dgm_run_open(dgm_run **out, dgm_registry *reg, const char *run_dir)
{
    *out = NULL;
    if (!reg || !run_dir)
        return dgm_error(DGM_EINVAL, "opening a run: no registry or folder");
    /* a folder that does not resolve fails below, naming its config */
    char real[PATH_MAX];
    bool chained = realpath(run_dir, real) != NULL;
    if (chained && chain_refuse(real) < 0)
        return dgm_error_context("run %s: ", run_dir);
    dgm_run *r = calloc(1, sizeof *r);
    if (!r)
        return dgm_error(DGM_ENOMEM, "opening run %s: out of memory", run_dir);
    if (chained)
        opening[n_opening++] = real;
    int rc = build(r, reg, run_dir);
    if (chained)
        n_opening--;
    char path[4096];
    if (rc == 0) {
        snprintf(path, sizeof path, "%s/checkpoints/last.safetensors", run_dir);
        rc = dgm__checkpoint_load_params(r->e, path);
    }
    if (rc == 0)
        rc = dgm__eval_new(&r->ev, r->e, 0);
    if (rc < 0) {
        dgm_run_close(r);
        return dgm_error_context("run %s: ", run_dir);
    }
    *out = r;
    return 0;
}

void dgm_run_close(dgm_run *r)
{
    if (!r)
        return;
    dgm__eval_free(r->ev);
    dgm_experiment_free(r->e);
    free(r);
}

dgm_experiment *dgm_run_experiment(dgm_run *r)
{
    return r ? r->e : NULL;
}

dgm_eval *dgm__run_eval(dgm_run *r)
{
    return r->ev;
}

const dgm_data_info *dgm_run_data_info(dgm_run *r)
{
    return &dgm_run_experiment(r)->info;
}

/* t [m, ...] as a new contiguous [m, d] tensor. */
static dgm_tensor *rows_2d(const dgm_tensor *t, int64_t m, int64_t d)
{
    dgm_tensor *c = dgm_tensor_clone(t);
    int64_t flat[2] = {m, d};
    if (c && dgm_view_reshape(c, 2, flat) < 0) {
        dgm_tensor_free(c);
        return NULL;
    }
    return c;
}

int dgm__run_forward(dgm_run *r, const dgm_tensor *x, const char *output,
                     const dgm_tensor **out)
{
    dgm_experiment *e = r->e;
    dgm_eval *ev = r->ev;
    dgm_step *s = dgm__eval_empty_step(ev);
    dgm__vars_clear(&ev->io);
    int rc = dgm_vars_set(&ev->io, "x", dgm_input(s->g, (dgm_tensor *)x));
    const dgm_model_iface *mi = e->model.desc->iface.model;
    if (rc == 0 && (rc = mi->forward(e->model.self, s, 0, &ev->io)) < 0)
        return dgm_error_context("run '%s', model '%s': ", e->name,
                                 e->model.desc->name);
    if (rc < 0)
        return rc;
    dgm_var *v = dgm_vars_get(&ev->io, output);
    if (!v) {
        char have[512];
        return dgm_error(DGM_ENOTFOUND,
                         "run '%s': model '%s' has no output '%s' (it has: "
                         "%s)",
                         e->name, e->model.desc->name, output,
                         dgm__vars_names(&ev->io, have, sizeof have));
    }
    const dgm_tensor *o = dgm_value(v);
    if (o->ndim < 1 || o->shape[0] != x->shape[0]) {
        char a[128];
        return dgm_error(DGM_ESHAPE,
                         "run '%s': output '%s' is %s, not one row per "
                         "example",
                         e->name, output, dgm_tensor_describe(o, a, sizeof a));
    }
    *out = o;
    return 0;
}

int dgm_run_forward_output(dgm_run *r, const dgm_tensor *x, const char *output,
                           dgm_tensor **out)
{
    *out = NULL;
    const dgm_data_info *info = &r->e->info;
    char a[128], b[128];
    if (!x || x->ndim != info->x_shape.ndim + 1 ||
        memcmp(x->shape + 1, info->x_shape.dim,
               sizeof(int64_t) * (size_t)info->x_shape.ndim) != 0 ||
        x->dtype != info->x_dtype)
        return dgm_error(
            DGM_ESHAPE,
            "run '%s': input %s does not match the model's "
            "examples %s",
            r->e->name, x ? dgm_tensor_describe(x, a, sizeof a) : "(none)",
            dgm_shape_str(info->x_shape.ndim, info->x_shape.dim, b, sizeof b));
    const int64_t n = x->shape[0], chunk = 256;
    dgm_tensor *res = NULL;
    int rc = 0;
    for (int64_t at = 0; at < n && rc == 0; at += chunk) {
        int64_t m = n - at < chunk ? n - at : chunk;
        dgm_tensor rows = *x;
        const dgm_tensor *t = NULL;
        rc = dgm_view_slice(&rows, 0, at, at + m, 1);
        if (rc == 0)
            rc = dgm__run_forward(r, &rows, output, &t);
        if (rc < 0)
            break;
        int64_t d = dgm_tensor_numel(t) / t->shape[0];
        if (!res) {
            int64_t shape[2] = {n, d};
            if (!(res = dgm_tensor_new(DGM_F32, 2, shape))) {
                rc = dgm_last_code();
                break;
            }
        }
        dgm_tensor dst = *res, *src = rows_2d(t, m, d);
        rc = src ? dgm_view_slice(&dst, 0, at, at + m, 1) : dgm_last_code();
        if (rc == 0)
            rc = dgm_tensor_copy(&dst, src);
        dgm_tensor_free(src);
    }
    if (rc < 0) {
        dgm_tensor_free(res);
        return rc;
    }
    *out = res;
    return 0;
}
