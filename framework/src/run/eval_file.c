/* eval_file.c - evaluation outside training (dgm eval): metrics on an
 * opened run directory, or on a file of samples scored against a data set
 * with no model built; the file stands in for the model's sampler. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dgm/error.h"
#include "dgm/io.h"
#include "plugin_check.h"
#include "run_internal.h"

/* ---- metric instances from a list of maps -------------------------------- */

typedef struct metric_set {
    dgm_config *root; /* owns the validated maps: {metrics: [...]} */
    dgm__inst *inst;
    int n;
    /* what the host evaluates each metric on besides its split (n of
     * each, or NULL): its `corrupt:` list and its training subset */
    dgm__corruptions *corrupt;
    dgm__gap *gap;
} metric_set;

static void metric_set_free(metric_set *m)
{
    dgm__corrupt_free_list(m->corrupt, m->n);
    dgm__gap_free_list(m->gap, m->n);
    for (int i = 0; i < m->n; i++)
        dgm__inst_destroy(&m->inst[i]);
    free(m->inst);
    dgm_config_free(m->root);
    memset(m, 0, sizeof *m);
}

static bool has_param(const dgm_plugin_desc *d, const char *key)
{
    for (const dgm_param_spec *s = d->params; s && s->name; s++)
        if (!strcmp(s->name, key))
            return true;
    return false;
}

/* The keys the host reads from metric map `node` (corrupt.c, gap.c),
 * checked as an experiment's are when it is loaded. A sample file has no
 * model to run on training examples: a gap is refused at its key. */
static int check_host_keys(dgm_registry *reg, const dgm_config *node,
                           bool sample_file)
{
    const dgm_config *g = dgm_cfg_get(node, "generalization_gap");
    if (sample_file && g && dgm_cfg_kind_of(g) != DGM_CFG_NULL)
        return dgm_cfg_error(node, "generalization_gap", DGM_EUNSUPPORTED,
                             "dgm eval --samples cannot evaluate a "
                             "generalization gap: a file of samples has no "
                             "model to run on training examples (name the "
                             "metric without it, or evaluate the run)");
    int rc = dgm__corrupt_check(dgm_cfg_get(node, "corrupt"));
    return rc < 0 ? rc : dgm__gap_check(reg, node);
}

/* Validate a copy of `list` (a sequence of {plugin: NAME, ...}) and create
 * each metric, its corruptions and training-subset instance, for e's data
 * (a run's experiment, or the data set alone for a sample file). n_default
 * > 0 is set as `n` where a metric has that parameter and the map does
 * not give it. */
static int metric_set_make(metric_set *m, dgm_experiment *e,
                           const dgm_config *list, int64_t n_default,
                           bool sample_file)
{
    memset(m, 0, sizeof *m);
    dgm_registry *reg = e->reg;
    if (dgm_cfg_kind_of(list) != DGM_CFG_SEQ || dgm_cfg_len(list) < 1)
        return dgm_error(DGM_EINVAL,
                         "evaluation: the metrics are a non-empty list of "
                         "{plugin: NAME, ...}");
    int rc = dgm_config_parse(&m->root, "{}", "<metrics>");
    if (rc == 0)
        rc = dgm_config_set(m->root, "metrics", list);
    int n = dgm_cfg_len(list);
    if (rc == 0 && !(m->inst = calloc((size_t)n, sizeof *m->inst)))
        rc = dgm_error(DGM_ENOMEM, "evaluation: out of memory");
    for (int i = 0; i < n && rc == 0; i++) {
        char path[64];
        snprintf(path, sizeof path, "metrics[%d]", i);
        dgm_config *node = dgm_cfg_get_mut(m->root, path);
        const char *name = NULL;
        if (dgm_cfg_kind_of(node) != DGM_CFG_MAP ||
            dgm_cfg_to_str(dgm_cfg_get(node, "plugin"), &name) < 0) {
            rc = dgm_cfg_error(node, NULL, DGM_ETYPE,
                               "a metric is a map with `plugin: NAME`");
            break;
        }
        const dgm_plugin_desc *d;
        if ((rc = dgm_registry_find(reg, DGM_KIND_METRIC, name, &d, NULL)) < 0)
            break;
        if (n_default > 0 && has_param(d, "n") && !dgm_cfg_has(node, "n")) {
            char set[96];
            snprintf(set, sizeof set, "%s.n=%lld", path, (long long)n_default);
            if ((rc = dgm_config_override(m->root, set)) < 0)
                break;
            node = dgm_cfg_get_mut(m->root, path);
        }
        if ((rc = dgm_config_validate(node, d->params, d->name,
                                      dgm__metric_host_keys)) < 0 ||
            (rc = check_host_keys(reg, node, sample_file)) < 0)
            break;
        m->inst[i].desc = d;
        m->inst[i].cfg = node;
        rc = d->iface.metric->create(&m->inst[i].self, node);
        if (rc < 0) {
            m->inst[i].desc = NULL;
            rc = dgm_error_context("metric '%s': ", name);
        }
        m->n = i + 1;
    }
    const dgm_config *maps = dgm_cfg_get(m->root, "metrics");
    if (rc == 0)
        rc = dgm__corrupt_build_list(e, maps, n, &m->corrupt);
    if (rc == 0)
        rc = dgm__gap_build_list(maps, m->inst, n, &m->gap);
    if (rc < 0)
        metric_set_free(m);
    return rc;
}

/* Evaluate ms (NULL: e's own metrics) into a new results object with the
 * host's evaluation (host/eval.c), the one training's uses, so that each
 * metric's corruptions and training subset give the same figures as
 * there: ms stands in for e's metrics for the call. */
static int eval_set(dgm_eval *ev, const metric_set *ms, dgm_results **out)
{
    dgm_experiment *e = ev->e;
    dgm__inst *own = e->metrics;
    int n_own = e->n_metrics;
    dgm__corruptions *own_c = e->corrupt;
    dgm__gap *own_g = e->gap;
    dgm_results *res = calloc(1, sizeof *res);
    if (!res)
        return dgm_error(DGM_ENOMEM, "evaluation: out of memory");
    if (ms) {
        e->metrics = ms->inst, e->n_metrics = ms->n;
        e->corrupt = ms->corrupt, e->gap = ms->gap;
    }
    int rc = dgm__eval_metrics(ev, res);
    e->metrics = own, e->n_metrics = n_own;
    e->corrupt = own_c, e->gap = own_g;
    if (rc < 0) {
        dgm_results_free(res);
        return rc;
    }
    *out = res;
    return 0;
}

int dgm_run_evaluate(dgm_run *r, const dgm_config *metrics, uint64_t seed,
                     dgm_results **out)
{
    *out = NULL;
    dgm_experiment *e = dgm_run_experiment(r);
    metric_set ms = {0};
    int rc = 0;
    if (metrics) {
        if ((rc = metric_set_make(&ms, e, metrics, 0, false)) < 0)
            return rc;
    } else if (e->n_metrics == 0)
        return dgm_error(DGM_EINVAL,
                         "run '%s' configures no metrics; name "
                         "some",
                         e->name);
    dgm_eval *ev;
    if ((rc = dgm__eval_new(&ev, e, seed)) == 0) {
        rc = eval_set(ev, metrics ? &ms : NULL, out);
        dgm__eval_free(ev);
    }
    metric_set_free(&ms);
    return rc;
}

uint64_t dgm_run_eval_seed(dgm_run *r)
{
    return DGM__EVAL_SEED(dgm_run_experiment(r)->seed);
}

/* ---- samples from a file ------------------------------------------------ */

typedef struct file_model {
    const char *path;
    dgm_tensor *x; /* [n, x_shape...] f32 in the data's range */
    int64_t at;    /* rows handed out since the last rewind */
} file_model;

static int file_forward(void *self, dgm_step *s, int phase, dgm_vars *io)
{
    (void)s, (void)phase, (void)io;
    file_model *fm = self;
    return dgm_error(DGM_EUNSUPPORTED,
                     "scoring the sample file %s: this metric needs a model, "
                     "a sample file only gives samples",
                     fm->path);
}

static int file_sample(void *self, dgm_step *s, int64_t n, dgm_vars *io,
                       dgm_var **out)
{
    file_model *fm = self;
    *out = NULL;
    if (dgm_vars_get(io, "y"))
        return dgm_error(DGM_EUNSUPPORTED,
                         "the sample file %s carries no labels to condition "
                         "on",
                         fm->path);
    int64_t have = fm->x->shape[0];
    if (n < 1 || fm->at + n > have)
        return dgm_error(DGM_ERANGE,
                         "the sample file %s holds %lld samples, the metric "
                         "asks for more (rows %lld to %lld); lower its n",
                         fm->path, (long long)have, (long long)fm->at,
                         (long long)(fm->at + n));
    dgm_tensor view = *fm->x;
    dgm_view_slice(&view, 0, fm->at, fm->at + n, 1);
    dgm_tensor *t =
        dgm_arena_tensor(dgm_graph_arena(s->g), DGM_F32, view.ndim, view.shape);
    if (!t || dgm_tensor_copy(t, &view) < 0)
        return dgm_last_code();
    fm->at += n;
    *out = dgm_input(s->g, t);
    return *out ? 0 : dgm_last_code();
}

static void file_destroy(void *self)
{
    file_model *fm = self;
    dgm_tensor_free(fm->x);
    free(fm);
}

static void file_rewind(void *arg)
{
    ((file_model *)arg)->at = 0;
}

static const dgm_phase_desc file_phases[] = {{"none", "", "[]", 1}};
static const dgm_model_iface file_iface = {
    .phases = file_phases,
    .n_phases = 1,
    .forward = file_forward,
    .sample = file_sample,
    .destroy = file_destroy,
};
static const dgm_plugin_desc file_desc = {
    DGM_PLUGIN_HEADER, DGM_PLUGIN_MODEL(&file_iface), .name = "sample file",
    .version = "1.0", .summary = "samples read from a file"};

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

/* Read `path` into f32 [n, x_shape...] in the data's value range. */
static int load_samples(const char *path, const dgm_data_info *info,
                        dgm_tensor **out)
{
    *out = NULL;
    dgm_tensor *src = NULL, *x = NULL;
    dgm_st_file *st = NULL;
    int rc;
    bool from_u8 = false;
    if (ends_with(path, ".safetensors")) {
        if ((rc = dgm_st_open(&st, path)) < 0)
            return rc;
        if (dgm_st_count(st) != 1) {
            rc = dgm_error(DGM_EFORMAT,
                           "%s: a sample file holds exactly one tensor, this "
                           "one holds %d",
                           path, dgm_st_count(st));
            goto done;
        }
        dgm_st_entry en;
        dgm_st_entry_at(st, 0, &en);
        if (strcmp(en.dtype, "F32") != 0) {
            rc = dgm_error(DGM_EDTYPE,
                           "%s: tensor '%s' is %s; samples must be F32", path,
                           en.name, en.dtype);
            goto done;
        }
        if ((rc = dgm_st_get(st, en.name, &src)) < 0)
            goto done;
    } else {
        if ((rc = dgm_idx_load(path, &src)) < 0)
            return rc;
        if (src->dtype != DGM_U8) {
            rc = dgm_error(DGM_EDTYPE,
                           "%s: IDX samples must be unsigned bytes (type "
                           "0x08), this file holds %s",
                           path, dgm_dtype_name(src->dtype));
            goto done;
        }
        from_u8 = true;
    }
    /* [n, C, H, W] equal to the data's examples, or [n, H, W] for
     * one-channel images. */
    const dgm_shape *xs = &info->x_shape;
    bool ok = src->ndim >= 1 && src->shape[0] >= 1;
    if (ok && src->ndim == xs->ndim + 1)
        ok = !memcmp(src->shape + 1, xs->dim,
                     sizeof(int64_t) * (size_t)xs->ndim);
    else if (ok && xs->ndim == 3 && xs->dim[0] == 1 && src->ndim == 3)
        ok = src->shape[1] == xs->dim[1] && src->shape[2] == xs->dim[2];
    else
        ok = false;
    if (!ok) {
        char a[96], b[96];
        rc = dgm_error(DGM_ESHAPE,
                       "%s: samples %s do not match the data's examples %s "
                       "(expected [n, ...] with n >= 1)",
                       path, dgm_tensor_describe(src, a, sizeof a),
                       dgm_shape_str(xs->ndim, xs->dim, b, sizeof b));
        goto done;
    }
    int64_t shape[DGM_MAX_DIMS + 1];
    shape[0] = src->shape[0];
    memcpy(shape + 1, xs->dim, sizeof(int64_t) * (size_t)xs->ndim);
    if (!(x = dgm_tensor_new(DGM_F32, xs->ndim + 1, shape))) {
        rc = dgm_last_code();
        goto done;
    }
    float *p = dgm_tensor_f32(x);
    int64_t m = dgm_tensor_numel(x);
    const float span = info->x_max - info->x_min;
    for (int64_t i = 0; i < m; i++) {
        double v = dgm_tensor_get(src, i);
        if (from_u8)
            v = info->x_min + v / 255.0 * span;
        else if (!isfinite(v)) {
            rc = dgm_error(DGM_EFORMAT,
                           "%s: sample %lld holds a non-finite value (%g) at "
                           "element %lld",
                           path, (long long)(i / (m / shape[0])), v,
                           (long long)i);
            goto done;
        }
        p[i] = (float)v;
    }
    *out = x;
    x = NULL;
done:
    dgm_tensor_free(x);
    if (st)
        dgm_st_close(st); /* src was its view */
    else
        dgm_tensor_free(src);
    return rc;
}

/* The data set of an experiment file or run directory, instantiated on
 * its own (the experiment is resolved, nothing else is built). */
static int load_data(dgm_experiment **out, dgm_registry *reg, const char *data)
{
    char path[4096];
    struct stat sb;
    if (stat(data, &sb) == 0 && S_ISDIR(sb.st_mode))
        snprintf(path, sizeof path, "%s/config.yaml", data);
    else
        snprintf(path, sizeof path, "%s", data);
    dgm_experiment *e;
    int rc = dgm_experiment_load(&e, reg, path, NULL, 0);
    if (rc < 0)
        return rc;
    const dgm_config *dc = dgm_cfg_child(e->root, "data");
    const char *name = dgm_cfg_str(dc, "plugin");
    const dgm_plugin_desc *d;
    if ((rc = dgm_registry_find(reg, DGM_KIND_DATASET, name, &d, NULL)) == 0) {
        const dgm_dataset_iface *di = d->iface.dataset;
        e->data = (dgm__inst){.desc = d, .cfg = dc};
        if ((rc = di->create(&e->data.self, dc)) < 0)
            e->data.desc = NULL;
        else
            rc = di->info(e->data.self, &e->info);
        if (rc < 0)
            rc = dgm_error_context("dataset '%s': ", name);
    }
    if (rc < 0) {
        dgm_experiment_free(e);
        return rc;
    }
    *out = e;
    return 0;
}

int dgm_eval_file_metrics(dgm_registry *reg, const char *samples,
                          const char *data, const dgm_config *metrics,
                          uint64_t seed, dgm_results **out)
{
    *out = NULL;
    dgm_experiment *e;
    int rc = load_data(&e, reg, data);
    if (rc < 0)
        return dgm_error_context("data %s: ", data);
    file_model *fm = calloc(1, sizeof *fm);
    if (!fm) {
        dgm_experiment_free(e);
        return dgm_error(DGM_ENOMEM, "evaluation: out of memory");
    }
    fm->path = samples;
    if ((rc = load_samples(samples, &e->info, &fm->x)) < 0) {
        free(fm);
        dgm_experiment_free(e);
        return rc;
    }
    /* The file stands in for the model (dgm_experiment_free destroys it),
     * with one phase of no terms for metrics that ask about objectives. */
    e->model = (dgm__inst){.desc = &file_desc, .self = fm};
    if (!(e->phases = calloc(1, sizeof *e->phases))) {
        dgm_experiment_free(e);
        return dgm_error(DGM_ENOMEM, "evaluation: out of memory");
    }
    e->n_phases = 1;
    metric_set ms;
    if ((rc = metric_set_make(&ms, e, metrics, fm->x->shape[0], true)) < 0) {
        dgm_experiment_free(e);
        return rc;
    }
    dgm_eval *ev;
    if ((rc = dgm__eval_new(&ev, e, seed)) == 0) {
        /* each metric, and each of its corrupted runs, reads the file
         * from its first row */
        ev->restart = file_rewind;
        ev->restart_arg = fm;
        rc = eval_set(ev, &ms, out);
        dgm__eval_free(ev);
    }
    metric_set_free(&ms);
    dgm_experiment_free(e);
    return rc;
}
