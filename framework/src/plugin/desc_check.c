/* desc_check.c - what the registry checks of a plugin's descriptors
 * before anything else of the file is used (ABI and layout, name, kind,
 * schema, reserved keys, interface slots), the kind names, and the kinds'
 * optional config checks. Stateless: the registry (registry.c) calls
 * dgm__plugin_desc_check for each descriptor a file returns. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "config_internal.h"
#include "dgm/error.h"
#include "dgm/host.h"
#include "plugin_check.h"

#define MAX_PARAMS 256
/* The host reads every field up to and including `iface`. */
#define MIN_DESC_SIZE (offsetof(dgm_plugin_desc, iface) + sizeof(void *))

static const char *const kind_names[DGM_KIND_COUNT_] = {
    [DGM_KIND_DATASET] = "dataset", [DGM_KIND_AUGMENT] = "augment",
    [DGM_KIND_BLOCK] = "block",     [DGM_KIND_MODEL] = "model",
    [DGM_KIND_LOSS] = "loss",       [DGM_KIND_OPTIMIZER] = "optimizer",
    [DGM_KIND_METRIC] = "metric",
};

const char *dgm_kind_name(dgm_kind k)
{
    if ((int)k <= 0 || (int)k >= DGM_KIND_COUNT_)
        return NULL;
    return kind_names[k];
}

static dgm_kind kind_by_name(const char *name)
{
    for (int k = 1; k < DGM_KIND_COUNT_; k++)
        if (!strcmp(kind_names[k], name))
            return (dgm_kind)k;
    return 0;
}

/* ---- validating one file --------------------------------------------- */

static bool good_name(const char *s)
{
    if (!s || !s[0])
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              *s == '_'))
            return false;
    return true;
}

/* Every ABI 2.0 interface of a kind ends with `check`: a plugin of this
 * major has all of it. Slots after it come with a later minor and are
 * read only when the plugin's iface_size covers them (DGM__HAS_SLOT). */
static size_t min_iface_size(dgm_kind k)
{
    switch (k) {
    case DGM_KIND_DATASET:
        return DGM__SLOT_END(dgm_dataset_iface, check);
    case DGM_KIND_AUGMENT:
        return DGM__SLOT_END(dgm_augment_iface, check);
    case DGM_KIND_BLOCK:
        return DGM__SLOT_END(dgm_block_iface, check);
    case DGM_KIND_MODEL:
        return DGM__SLOT_END(dgm_model_iface, check);
    case DGM_KIND_LOSS:
        return DGM__SLOT_END(dgm_loss_iface, check);
    case DGM_KIND_OPTIMIZER:
        return DGM__SLOT_END(dgm_optimizer_iface, check);
    case DGM_KIND_METRIC:
        return DGM__SLOT_END(dgm_metric_iface, check);
    default:
        return 0;
    }
}

static int check_iface_size(const char *path, const dgm_plugin_desc *d)
{
    size_t need = min_iface_size(d->kind);
    if (d->iface_size >= need)
        return 0;
    char upper[16];
    const char *kind = dgm_kind_name(d->kind);
    size_t i = 0;
    for (; kind[i] && i + 1 < sizeof upper; i++)
        upper[i] = (char)(kind[i] - 'a' + 'A');
    upper[i] = '\0';
    return dgm_error(DGM_EABI,
                     "%s: plugin '%s' (%s): interface is %u bytes, ABI %d.%d "
                     "needs at least %zu (set it with DGM_PLUGIN_%s(&iface))",
                     path, d->name, kind, d->iface_size, DGM_ABI_MAJOR,
                     DGM_ABI_MINOR, need, upper);
}

/* The slots the host calls without checking, per kind. */
static int check_iface(const char *path, const dgm_plugin_desc *d)
{
    const char *missing = NULL;
    switch (d->kind) {
    case DGM_KIND_DATASET: {
        const dgm_dataset_iface *f = d->iface.dataset;
        missing = !f->create    ? "create"
                  : !f->info    ? "info"
                  : !f->get     ? "get"
                  : !f->destroy ? "destroy"
                                : NULL;
        break;
    }
    case DGM_KIND_AUGMENT: {
        const dgm_augment_iface *f = d->iface.augment;
        missing = !f->create                 ? "create"
                  : !f->destroy              ? "destroy"
                  : !f->apply && !f->forward ? "apply or forward"
                                             : NULL;
        break;
    }
    case DGM_KIND_BLOCK: {
        const dgm_block_iface *f = d->iface.block;
        missing = !f->create    ? "create"
                  : !f->forward ? "forward"
                  : !f->destroy ? "destroy"
                                : NULL;
        break;
    }
    case DGM_KIND_MODEL: {
        const dgm_model_iface *f = d->iface.model;
        if (!f->phases || f->n_phases < 1)
            return dgm_error(DGM_EFORMAT,
                             "%s: plugin '%s' (model) declares no phases", path,
                             d->name);
        for (int i = 0; i < f->n_phases; i++)
            if (!f->phases[i].name || !f->phases[i].params)
                return dgm_error(DGM_EFORMAT,
                                 "%s: plugin '%s' (model): phase %d needs a "
                                 "name and a params glob",
                                 path, d->name, i);
        missing = !f->create    ? "create"
                  : !f->forward ? "forward"
                  : !f->sample  ? "sample"
                  : !f->destroy ? "destroy"
                                : NULL;
        break;
    }
    case DGM_KIND_LOSS: {
        const dgm_loss_iface *f = d->iface.loss;
        if (!f->apply)
            missing = "apply";
        else if (f->min_inputs < 0 || f->min_inputs > f->max_inputs)
            return dgm_error(DGM_EFORMAT,
                             "%s: plugin '%s' (loss): inputs %d..%d is not "
                             "a valid range",
                             path, d->name, f->min_inputs, f->max_inputs);
        break;
    }
    case DGM_KIND_OPTIMIZER: {
        const dgm_optimizer_iface *f = d->iface.optimizer;
        missing = !f->create    ? "create"
                  : !f->step    ? "step"
                  : !f->destroy ? "destroy"
                                : NULL;
        break;
    }
    case DGM_KIND_METRIC: {
        const dgm_metric_iface *f = d->iface.metric;
        const dgm_metric_figure *t =
            DGM__HAS_SLOT(d, dgm_metric_iface, figures) ? f->figures : NULL;
        for (int i = 0; t && t[i].pattern; i++)
            if (t[i].better < DGM_BETTER_UNKNOWN ||
                t[i].better > DGM_BETTER_HIGHER)
                return dgm_error(DGM_EFORMAT,
                                 "%s: plugin '%s' (metric): figures[%d] "
                                 "('%s'): %d is not a dgm_better value",
                                 path, d->name, i, t[i].pattern,
                                 (int)t[i].better);
        missing = !f->create     ? "create"
                  : !f->evaluate ? "evaluate"
                  : !f->destroy  ? "destroy"
                                 : NULL;
        break;
    }
    default:
        break;
    }
    if (missing)
        return dgm_error(DGM_EFORMAT,
                         "%s: plugin '%s' (%s): interface slot '%s' is NULL",
                         path, d->name, dgm_kind_name(d->kind), missing);
    return 0;
}

static int check_params(const char *path, const dgm_plugin_desc *d)
{
    if (!d->params)
        return 0;
    for (int i = 0;; i++) {
        const dgm_param_spec *p = &d->params[i];
        if (i >= MAX_PARAMS)
            return dgm_error(DGM_EFORMAT,
                             "%s: plugin '%s': more than %d params (missing "
                             "DGM_PARAM_END?)",
                             path, d->name, MAX_PARAMS);
        if (!p->name) {
            if (p->type != 0)
                return dgm_error(DGM_EFORMAT,
                                 "%s: plugin '%s': param %d has no name", path,
                                 d->name, i);
            return 0; /* DGM_PARAM_END */
        }
        if (p->type < DGM_P_BOOL || p->type > DGM_P_PATHS)
            return dgm_error(DGM_EFORMAT,
                             "%s: plugin '%s': param '%s' has invalid type %d",
                             path, d->name, p->name, (int)p->type);
        if (!p->name[0])
            return dgm_error(DGM_EFORMAT,
                             "%s: plugin '%s': param %d has an empty name",
                             path, d->name, i);
        if (p->type == DGM_P_CHOICE && (!p->choices || !p->choices[0]))
            return dgm_error(DGM_EFORMAT,
                             "%s: plugin '%s': choice param '%s' lists no "
                             "choices",
                             path, d->name, p->name);
        if (p->kind &&
            ((p->type != DGM_P_PLUGIN && p->type != DGM_P_PLUGIN_LIST) ||
             !kind_by_name(p->kind)))
            return dgm_error(DGM_EFORMAT,
                             "%s: plugin '%s': param '%s': .kind = \"%s\" "
                             "needs a DGM_P_PLUGIN(_LIST) param and a kind "
                             "name (dataset, augment, block, model, loss, "
                             "optimizer, metric)",
                             path, d->name, p->name, p->kind);
        /* Bounds, lengths and the default against the entry itself, now
         * rather than when an experiment first leaves the key out. */
        int rc = dgm_param_spec_check(p);
        if (rc < 0)
            return dgm_error_context("%s: plugin '%s': ", path, d->name);
    }
}

/* "plugin, schedule, warmup": the reserved keys of a kind, for a
 * message. */
static const char *reserved_list(dgm_kind k, char *buf, size_t cap)
{
    const char *const *keys = dgm__plugin_host_keys(k);
    size_t n = (size_t)snprintf(buf, cap, "plugin");
    for (int i = 0; keys[i] && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, ", %s", keys[i]);
    return buf;
}

static bool reserved(dgm_kind k, const char *name)
{
    const char *const *keys = dgm__plugin_host_keys(k);
    for (int i = 0; keys[i]; i++)
        if (!strcmp(keys[i], name))
            return true;
    return !strcmp(name, "plugin");
}

static int check_reserved(const char *path, const dgm_plugin_desc *d)
{
    for (const dgm_param_spec *p = d->params; p && p->name; p++) {
        if (!reserved(d->kind, p->name))
            continue;
        const char *kind = dgm_kind_name(d->kind);
        char all[256], map[64];
        if (d->kind == DGM_KIND_LOSS)
            snprintf(map, sizeof map, "every objective term");
        else
            snprintf(map, sizeof map, "every %s's map", kind);
        return dgm_error(DGM_EFORMAT,
                         "%s: plugin '%s' (%s): parameter '%s' clashes with "
                         "a key the host reads from %s (reserved: %s); "
                         "rename it",
                         path, d->name, kind, p->name, map,
                         reserved_list(d->kind, all, sizeof all));
    }
    return 0;
}

/* The host reads an optimizer's base rate with dgm_cfg_float(cfg, "lr")
 * to scale it by its schedule: the key must be there, a number. */
static int check_lr(const char *path, const dgm_plugin_desc *d)
{
    if (d->kind != DGM_KIND_OPTIMIZER)
        return 0;
    const dgm_param_spec *lr = NULL;
    for (const dgm_param_spec *p = d->params; p && p->name && !lr; p++)
        if (!strcmp(p->name, "lr"))
            lr = p;
    const char *why = !lr ? "declares no parameter 'lr'"
                      : lr->type != DGM_P_FLOAT
                          ? "declares 'lr' with a type other than DGM_P_FLOAT"
                      : lr->def && !strcmp(lr->def, "null")
                          ? "gives 'lr' the default null"
                          : NULL;
    if (!why)
        return 0;
    return dgm_error(DGM_EFORMAT,
                     "%s: plugin '%s' (optimizer) %s: the host reads the "
                     "base learning rate from `lr` (a number, DGM_P_FLOAT, "
                     "required or with a numeric default) and scales it by "
                     "the schedule before each step",
                     path, d->name, why);
}

/* The layout values a plugin was built with, by the name a reader knows. */
static const struct {
    const char *name;
    size_t off;
} layout_fields[] = {
#define F(name, field)                                                         \
    {                                                                          \
        name, offsetof(dgm_abi_layout, field)                                  \
    }
    F("sizeof(dgm_abi_layout)", size),
    F("DGM_MAX_DIMS", max_dims),
    F("DGM_RNN_MAX_LAYERS", rnn_max_layers),
    F("sizeof(dgm_tensor)", tensor),
    F("sizeof(dgm_shape)", shape),
    F("sizeof(dgm_step)", step),
    F("sizeof(dgm_batch)", batch),
    F("sizeof(dgm_data_info)", data_info),
    F("sizeof(dgm_param_spec)", param_spec),
    F("sizeof(dgm_phase_desc)", phase_desc),
    F("sizeof(dgm_generate_opts)", generate_opts),
    F("sizeof(dgm_bn_params)", bn_params),
    F("sizeof(dgm_sn_params)", sn_params),
    F("sizeof(dgm_rnn_params)", rnn_params),
#undef F
};

/* A plugin built with other layout constants would read the host's structs
 * at the wrong offsets: refuse it before calling anything. */
static int check_layout(const char *path, const dgm_plugin_desc *d)
{
    static const dgm_abi_layout host = DGM_ABI_LAYOUT;
    _Static_assert(sizeof layout_fields / sizeof layout_fields[0] ==
                       sizeof(dgm_abi_layout) / sizeof(uint32_t),
                   "every field of dgm_abi_layout is compared");
    for (size_t i = 0; i < sizeof layout_fields / sizeof layout_fields[0];
         i++) {
        uint32_t mine, theirs;
        memcpy(&mine, (const char *)&host + layout_fields[i].off, sizeof mine);
        memcpy(&theirs, (const char *)&d->layout + layout_fields[i].off,
               sizeof theirs);
        if (mine != theirs)
            return dgm_error(DGM_EABI,
                             "%s: plugin built with %s = %u, this dgm has %u "
                             "(rebuild the plugin against this dgm's "
                             "headers)",
                             path, layout_fields[i].name, theirs, mine);
    }
    return 0;
}

/* Check one descriptor; the ABI fields first, the rest only if the
 * descriptor is large enough to hold it. */
int dgm__plugin_desc_check(const char *path, uint32_t idx,
                           const dgm_plugin_desc *d)
{
    if (d->abi_major != DGM_ABI_MAJOR || d->abi_minor > DGM_ABI_MINOR)
        return dgm_error(
            DGM_EABI, "%s: plugin ABI %u.%u, host ABI %d.%d%s", path,
            d->abi_major, d->abi_minor, DGM_ABI_MAJOR, DGM_ABI_MINOR,
            d->abi_major == DGM_ABI_MAJOR ? " (the plugin needs a newer dgm)"
                                          : "");
    if (d->size < MIN_DESC_SIZE)
        return dgm_error(DGM_EABI,
                         "%s: descriptor %u is %u bytes, ABI %d.%d needs at "
                         "least %zu",
                         path, idx, d->size, DGM_ABI_MAJOR, DGM_ABI_MINOR,
                         (size_t)MIN_DESC_SIZE);
    int rc = check_layout(path, d);
    if (rc < 0)
        return rc;
    if (!good_name(d->name))
        return dgm_error(DGM_EFORMAT,
                         "%s: descriptor %u: name '%s' must be non-empty "
                         "[a-z0-9_]",
                         path, idx, d->name ? d->name : "(null)");
    if (!dgm_kind_name(d->kind))
        return dgm_error(DGM_EFORMAT,
                         "%s: plugin '%s': invalid kind %d (expected 1..%d)",
                         path, d->name, (int)d->kind, DGM_KIND_COUNT_ - 1);
    if (!d->iface.any)
        return dgm_error(DGM_EFORMAT, "%s: plugin '%s' (%s): iface is NULL",
                         path, d->name, dgm_kind_name(d->kind));
    if ((rc = check_params(path, d)) < 0 ||
        (rc = check_reserved(path, d)) < 0 || (rc = check_lr(path, d)) < 0)
        return rc;
    if ((rc = check_iface_size(path, d)) < 0)
        return rc;
    return check_iface(path, d);
}

/* ---- a plugin's own config check ------------------------------------- */

/* The kind's `check` slot. */
static int (*check_slot(const dgm_plugin_desc *d))(const dgm_config *)
{
    if (!d->iface.any)
        return NULL;
    switch (d->kind) {
    case DGM_KIND_DATASET:
        return d->iface.dataset->check;
    case DGM_KIND_AUGMENT:
        return d->iface.augment->check;
    case DGM_KIND_BLOCK:
        return d->iface.block->check;
    case DGM_KIND_MODEL:
        return d->iface.model->check;
    case DGM_KIND_LOSS:
        return d->iface.loss->check;
    case DGM_KIND_OPTIMIZER:
        return d->iface.optimizer->check;
    case DGM_KIND_METRIC:
        return d->iface.metric->check;
    default:
        return NULL;
    }
}

int dgm__plugin_check(const dgm_plugin_desc *d, const dgm_config *cfg)
{
    int (*check)(const dgm_config *) = d ? check_slot(d) : NULL;
    if (!check)
        return 0;
    dgm_error_clear();
    int rc = check(cfg);
    if (rc == 0)
        return 0;
    const char *kind = dgm_kind_name(d->kind);
    if (rc > 0)
        return dgm_error(DGM_EPLUGIN,
                         "%s '%s': check returned %d, not 0 or a negative "
                         "DGM_E* code (a plugin bug)",
                         kind, d->name, rc);
    if (!dgm_last_error()[0])
        return dgm_error(DGM_EPLUGIN,
                         "%s '%s': check returned %d (%s) without a message "
                         "(a plugin bug)",
                         kind, d->name, rc, dgm_errname(rc));
    dgm_error_context("%s '%s': ", kind, d->name);
    return rc;
}
