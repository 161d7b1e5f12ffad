/* checkpoint.c - a run's state as one safetensors file: parameters and
 * buffers by name, optimizer slots as "optim.<param>.<slot>", RNG streams
 * as "rng.<stream>" (U64 [4]), the dataset's state (a vocabulary) as
 * "data.<name>", step and update counts as metadata. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "dgm/error.h"
#include "dgm/io.h"
#include "error_internal.h"

#define FORMAT_VERSION "1"

typedef struct rng_slot {
    const char *name;
    size_t offset;
} rng_slot;

static const rng_slot rngs[] = {
    {"rng.init", offsetof(dgm_experiment, rng_init)},
    {"rng.data", offsetof(dgm_experiment, rng_data)},
    {"rng.aug", offsetof(dgm_experiment, rng_aug)},
    {"rng.step", offsetof(dgm_experiment, rng_step)},
};
#define N_RNGS (sizeof rngs / sizeof rngs[0])

static dgm_rng *rng_of(dgm_experiment *e, const rng_slot *r)
{
    return (dgm_rng *)((char *)e + r->offset);
}

/* "<prefix><a>[.<b>]" kept in names[] until the write; NULL (error set)
 * when out of memory. */
static const char *keep_name(char ***names, int *n, int *cap,
                             const char *prefix, const char *a,
                             const char *b)
{
    if (*n == *cap) {
        char **nn = realloc(*names, sizeof **names * (size_t)*cap * 2);
        if (!nn) {
            dgm_error(DGM_ENOMEM, "checkpoint: out of memory");
            return NULL;
        }
        *names = nn;
        *cap *= 2;
    }
    size_t len = strlen(prefix) + strlen(a) + (b ? strlen(b) + 1 : 0) + 1;
    char *s = malloc(len);
    if (!s) {
        dgm_error(DGM_ENOMEM, "checkpoint: out of memory");
        return NULL;
    }
    snprintf(s, len, "%s%s%s%s", prefix, a, b ? "." : "", b ? b : "");
    (*names)[(*n)++] = s;
    return s;
}

int dgm__checkpoint_save(dgm_experiment *e, const char *path,
                         const dgm__train_state *st)
{
    dgm_st_writer *w = dgm_st_writer_new();
    if (!w)
        return dgm_last_code() ? dgm_last_code() : DGM_ENOMEM;
    /* The writer references tensors until the write: names of slots and
     * RNG views must outlive it, so they are kept here. */
    int np = dgm_params_count(e->params), rc = 0;
    int n_names = 0, cap = 64;
    char **names = malloc(sizeof *names * (size_t)cap);
    dgm_tensor rv[N_RNGS];
    char meta[64];
    if (!names) {
        dgm_st_writer_free(w);
        return dgm_error(DGM_ENOMEM, "checkpoint: out of memory");
    }
    for (int i = 0; i < np && rc == 0; i++) {
        dgm_param *p = dgm_params_at(e->params, i);
        rc = dgm_st_writer_add(w, p->name, p->value);
        for (int k = 0; rc == 0 && k < dgm_param_slot_count(p); k++) {
            const char *slot;
            dgm_tensor *t = dgm_param_slot_at(p, k, &slot);
            const char *name =
                keep_name(&names, &n_names, &cap, "optim.", p->name, slot);
            rc = name ? dgm_st_writer_add(w, name, t) : DGM_ENOMEM;
        }
    }
    for (int i = 0; e->data_state && rc == 0 &&
                    i < dgm_params_count(e->data_state);
         i++) {
        dgm_param *p = dgm_params_at(e->data_state, i);
        const char *name =
            keep_name(&names, &n_names, &cap, "data.", p->name, NULL);
        rc = name ? dgm_st_writer_add(w, name, p->value) : DGM_ENOMEM;
    }
    for (size_t i = 0; i < N_RNGS && rc == 0; i++) {
        int64_t four = 4;
        dgm_tensor *t = dgm_tensor_wrap(rng_of(e, &rngs[i])->s, DGM_U64, 1,
                                        &four, NULL);
        if (!t) {
            rc = dgm_last_code();
            break;
        }
        rv[i] = *t;
        dgm_tensor_free(t);
        rc = dgm_st_writer_add(w, rngs[i].name, &rv[i]);
    }
    if (rc == 0)
        rc = dgm_st_writer_meta(w, "dgm.format_version", FORMAT_VERSION);
    snprintf(meta, sizeof meta, "%" PRId64, st->step);
    if (rc == 0)
        rc = dgm_st_writer_meta(w, "dgm.step", meta);
    snprintf(meta, sizeof meta, "%.17g", st->train_time);
    if (rc == 0)
        rc = dgm_st_writer_meta(w, "dgm.train_time", meta);
    for (int i = 0; i < e->n_phases && rc == 0; i++) {
        char key[160];
        snprintf(key, sizeof key, "dgm.updates.%s", e->phases[i].name);
        snprintf(meta, sizeof meta, "%" PRId64, e->phases[i].updates);
        rc = dgm_st_writer_meta(w, key, meta);
    }
    if (rc == 0)
        rc = dgm_st_writer_meta(w, "dgm.experiment", e->name);
    if (rc == 0)
        rc = dgm_st_writer_write(w, path);
    dgm_st_writer_free(w);
    for (int i = 0; i < n_names; i++)
        free(names[i]);
    free(names);
    return rc;
}

/* Copy a stored tensor into dst after checking dtype and shape. */
static int restore(const dgm_st_file *f, const char *path, const char *name,
                   dgm_tensor *dst)
{
    dgm_tensor *v;
    int rc = dgm_st_get(f, name, &v);
    if (rc < 0)
        return dgm__error_prefix(rc, "%s: ", path);
    if (v->dtype != dst->dtype || !dgm_tensor_same_shape(v, dst)) {
        char a[128], b[128];
        return dgm_error(DGM_ESHAPE,
                         "%s: tensor '%s' is %s in the checkpoint, %s in the "
                         "model",
                         path, name, dgm_tensor_describe(v, a, sizeof a),
                         dgm_tensor_describe(dst, b, sizeof b));
    }
    return dgm_tensor_copy(dst, v);
}

static int restore_params(dgm_experiment *e, const dgm_st_file *f,
                          const char *path)
{
    int np = dgm_params_count(e->params);
    for (int i = 0; i < np; i++) {
        dgm_param *p = dgm_params_at(e->params, i);
        if (dgm_st_find(f, p->name) < 0)
            return dgm_error(DGM_ENOTFOUND,
                             "%s: no tensor '%s' for the model's parameter",
                             path, p->name);
        int rc = restore(f, path, p->name, p->value);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Hand the checkpoint's "data.<name>" tensors to the dataset's load_state,
 * which refuses state that disagrees with its files. */
static int restore_data_state(dgm_experiment *e, const dgm_st_file *f,
                              const char *path)
{
    const dgm_dataset_iface *di = e->data.desc->iface.dataset;
    if (!di->load_state)
        return 0;
    dgm_params *st = dgm_params_new();
    if (!st)
        return dgm_error(DGM_ENOMEM, "checkpoint: out of memory");
    int rc = 0, found = 0;
    for (int i = 0; rc == 0 && i < dgm_st_count(f); i++) {
        const char *name = dgm_st_name_at(f, i);
        if (strncmp(name, "data.", 5) != 0)
            continue;
        dgm_tensor *v;
        if ((rc = dgm_st_get(f, name, &v)) < 0 ||
            (rc = dgm_params_add_copy(st, name + 5, v, NULL)) < 0)
            break;
        found++;
    }
    if (rc == 0 && !found)
        rc = dgm_error(DGM_ESTATE,
                       "%s: no data-set state (data.*) for dataset '%s', "
                       "which keeps one (a checkpoint of another data set?)",
                       path, e->data.desc->name);
    else if (rc == 0 && di->load_state(e->data.self, st) < 0)
        rc = dgm_error_context("%s: dataset '%s': ", path,
                               e->data.desc->name);
    dgm_params_free(st);
    return rc < 0 ? rc : dgm__data_state_export(e);
}

static int meta_int(const dgm_st_file *f, const char *path, const char *key,
                    int64_t *out)
{
    const char *s = dgm_st_meta(f, key);
    char *end = NULL;
    if (!s)
        return dgm_error(DGM_EFORMAT, "%s: no metadata '%s'", path, key);
    long long v = strtoll(s, &end, 10);
    if (!*s || *end)
        return dgm_error(DGM_EFORMAT, "%s: metadata '%s' is not an integer "
                                      "('%s')",
                         path, key, s);
    *out = v;
    return 0;
}

int dgm__checkpoint_load(dgm_experiment *e, const char *path,
                         dgm__train_state *st)
{
    dgm_st_file *f;
    int rc = dgm_st_open(&f, path);
    if (rc < 0)
        return rc;
    rc = restore_params(e, f, path);
    if (rc == 0)
        rc = restore_data_state(e, f, path);
    /* Optimizer slots: every "optim.<param>.<slot>" names a parameter. */
    for (int i = 0; rc == 0 && i < dgm_st_count(f); i++) {
        const char *name = dgm_st_name_at(f, i);
        if (strncmp(name, "optim.", 6) != 0)
            continue;
        const char *dot = strrchr(name, '.');
        char pname[512];
        int len = (int)(dot - (name + 6));
        if (dot <= name + 6 || len >= (int)sizeof pname) {
            rc = dgm_error(DGM_EFORMAT, "%s: bad optimizer slot name '%s'",
                           path, name);
            break;
        }
        memcpy(pname, name + 6, (size_t)len);
        pname[len] = '\0';
        dgm_param *p = dgm_params_find(e->params, pname);
        if (!p) {
            rc = dgm_error(DGM_ENOTFOUND,
                           "%s: optimizer state '%s' for a parameter the "
                           "model does not have",
                           path, name);
            break;
        }
        dgm_tensor *slot = dgm_param_slot(p, dot + 1);
        rc = slot ? restore(f, path, name, slot) : dgm_last_code();
    }
    for (size_t i = 0; rc == 0 && i < N_RNGS; i++) {
        int64_t four = 4;
        dgm_tensor *t = dgm_tensor_wrap(rng_of(e, &rngs[i])->s, DGM_U64, 1,
                                        &four, NULL);
        rc = t ? restore(f, path, rngs[i].name, t) : dgm_last_code();
        dgm_tensor_free(t);
    }
    if (rc == 0)
        rc = meta_int(f, path, "dgm.step", &st->step);
    for (int i = 0; rc == 0 && i < e->n_phases; i++) {
        char key[160];
        snprintf(key, sizeof key, "dgm.updates.%s", e->phases[i].name);
        rc = meta_int(f, path, key, &e->phases[i].updates);
    }
    const char *tt = dgm_st_meta(f, "dgm.train_time");
    st->train_time = tt ? strtod(tt, NULL) : 0;
    dgm_st_close(f);
    return rc;
}

int dgm__checkpoint_load_params(dgm_experiment *e, const char *path)
{
    dgm_st_file *f;
    int rc = dgm_st_open(&f, path);
    if (rc < 0)
        return rc;
    rc = restore_params(e, f, path);
    if (rc == 0)
        rc = restore_data_state(e, f, path);
    dgm_st_close(f);
    return rc;
}

int dgm__data_state_export(dgm_experiment *e)
{
    const dgm_dataset_iface *di = e->data.desc->iface.dataset;
    dgm_params_free(e->data_state);
    e->data_state = NULL;
    if (!di->save_state)
        return 0;
    if (!(e->data_state = dgm_params_new()))
        return dgm_error(DGM_ENOMEM, "out of memory");
    if (di->save_state(e->data.self, e->data_state) < 0)
        return dgm_error_context("dataset '%s', saving its state: ",
                                 e->data.desc->name);
    return 0;
}
