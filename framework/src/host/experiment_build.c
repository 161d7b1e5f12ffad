/* experiment_build.c - instantiate a resolved experiment: data set,
 * augmentations, model (with its blocks and parameters), its providers
 * (teachers, heads), per-phase optimizers and objectives, metrics. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "dgm/error.h"
#include "host_internal.h"
#include "transfer.h"

const dgm__teacher_opener *dgm__teachers_hook;

/* Open `teachers:` through the run layer's hook, each tried on one
 * training example. */
static int open_teachers(dgm_experiment *e)
{
    const dgm_config *list = dgm_cfg_get(e->root, "teachers");
    if (dgm_cfg_kind_of(list) != DGM_CFG_SEQ || dgm_cfg_len(list) == 0)
        return 0;
    if (!dgm__teachers_hook)
        return dgm_cfg_error(list, NULL, DGM_EUNSUPPORTED,
                             "this libdgm cannot open teacher runs");
    dgm__probe pr;
    int rc = dgm__probe_init(&pr, e->seed ^ 0x7eac4ULL);
    if (rc < 0)
        return rc;
    dgm_step *s;
    dgm_vars *io;
    const dgm_tensor *x = NULL;
    if (e->info.size[DGM_SPLIT_TRAIN] > 0 &&
        (rc = dgm__probe_batch(&pr, e, 1, &s, &io)) == 0)
        x = dgm_value(dgm_vars_get(io, "x"));
    dgm__provider p = {0};
    if (rc == 0 && (rc = dgm__teachers_hook->open(e, list, x, &p)) == 0)
        rc = dgm__experiment_add_provider(e, &p);
    dgm__probe_free(&pr);
    return rc;
}

static int create_inst(dgm_experiment *e, dgm__inst *in, const dgm_config *cfg,
                       dgm_kind kind, const char *key)
{
    const char *name = dgm_cfg_str(cfg, key);
    const char *file;
    int rc = dgm_registry_find(e->reg, kind, name, &in->desc, &file);
    if (rc < 0)
        return dgm_cfg_error(cfg, key, rc, "%s", dgm_last_error());
    in->cfg = cfg;
    in->self = NULL;
    switch (kind) {
    case DGM_KIND_DATASET:
        rc = in->desc->iface.dataset->create(&in->self, cfg);
        break;
    case DGM_KIND_AUGMENT:
        rc = in->desc->iface.augment->create(&in->self, cfg, &e->info);
        break;
    case DGM_KIND_MODEL:
        rc = in->desc->iface.model->create(&in->self, cfg, &e->build, &e->info);
        break;
    case DGM_KIND_LOSS: {
        const dgm_loss_iface *li = in->desc->iface.loss;
        rc = li->create ? li->create(&in->self, cfg) : 0;
        break;
    }
    case DGM_KIND_OPTIMIZER:
        rc = in->desc->iface.optimizer->create(&in->self, cfg);
        break;
    case DGM_KIND_METRIC:
        rc = in->desc->iface.metric->create(&in->self, cfg);
        break;
    default:
        rc = dgm_error(DGM_EKIND, "cannot instantiate a %s here",
                       dgm_kind_name(kind));
    }
    if (rc < 0) {
        in->desc = NULL;
        return dgm_error_context("%s '%s' (%s:%d): ", dgm_kind_name(kind),
                                 name, dgm_cfg_file(cfg), dgm_cfg_line(cfg));
    }
    return 0;
}

static dgm_config *scalar_node(const char *text)
{
    dgm_config *c = NULL;
    return dgm_config_parse(&c, text, "<param_groups>") < 0 ? NULL : c;
}

/* Split the phase's parameters among `param_groups:` (the first group a
 * parameter matches takes it) and give each non-empty group its own
 * optimizer instance. */
static int build_groups(dgm_experiment *e, dgm__phase *ph,
                        const dgm_config *phase_opt)
{
    const dgm_config *groups = dgm_cfg_get(e->root, "param_groups");
    int ng = dgm_cfg_kind_of(groups) == DGM_CFG_SEQ ? dgm_cfg_len(groups) : 0;
    ph->rest = calloc((size_t)(ph->n_params ? ph->n_params : 1),
                      sizeof *ph->rest);
    if (!ph->rest)
        return dgm_error(DGM_ENOMEM, "out of memory");
    int *which = calloc((size_t)(ph->n_params ? ph->n_params : 1),
                        sizeof *which);
    if (!which)
        return dgm_error(DGM_ENOMEM, "out of memory");
    for (int k = 0; k < ph->n_params; k++) {
        which[k] = -1;
        for (int g = 0; g < ng && which[k] < 0; g++)
            if (dgm__globs_match(dgm_cfg_get(dgm_cfg_at(groups, g), "params"),
                                 ph->params[k]->name))
                which[k] = g;
        if (which[k] < 0)
            ph->rest[ph->n_rest++] = ph->params[k];
    }
    int rc = 0;
    if (ng && !(ph->groups = calloc((size_t)ng, sizeof *ph->groups)))
        rc = dgm_error(DGM_ENOMEM, "out of memory");
    for (int g = 0; g < ng && rc == 0; g++) {
        int n = 0;
        for (int k = 0; k < ph->n_params; k++)
            n += which[k] == g;
        if (n == 0)
            continue;
        const dgm_config *gc = dgm_cfg_at(groups, g);
        dgm__group *gr = &ph->groups[ph->n_groups++];
        gr->index = g;
        gr->lr_mult = dgm_cfg_float(gc, "lr_mult");
        const dgm_config *own = dgm_cfg_child(gc, "optimizer");
        gr->opt_cfg = dgm_config_clone(own ? own : phase_opt);
        gr->params = calloc((size_t)n, sizeof *gr->params);
        if (!gr->opt_cfg || !gr->params) {
            rc = dgm_error(DGM_ENOMEM, "out of memory");
            break;
        }
        for (int k = 0; k < ph->n_params; k++)
            if (which[k] == g)
                gr->params[gr->n_params++] = ph->params[k];
        const dgm_config *wd = dgm_cfg_get(gc, "weight_decay");
        if (wd && dgm_cfg_kind_of(wd) == DGM_CFG_SCALAR) {
            if (!dgm_cfg_has(gr->opt_cfg, "weight_decay")) {
                rc = dgm_cfg_error(gc, "weight_decay", DGM_EKEY,
                                   "optimizer '%s' has no weight_decay",
                                   dgm_cfg_str(gr->opt_cfg, "plugin"));
                break;
            }
            dgm_config *v = scalar_node(dgm_cfg_text(wd));
            rc = v ? dgm_config_set(gr->opt_cfg, "weight_decay", v)
                   : dgm_last_code();
            dgm_config_free(v);
            if (rc < 0)
                break;
        }
        gr->base_lr = dgm_cfg_float(gr->opt_cfg, "lr");
        rc = create_inst(e, &gr->opt, gr->opt_cfg, DGM_KIND_OPTIMIZER,
                         "plugin");
    }
    free(which);
    return rc;
}

static int build_phase(dgm_experiment *e, int i, const dgm_phase_desc *pd)
{
    dgm__phase *ph = &e->phases[i];
    char path[160];
    snprintf(path, sizeof path, "phases.%s", pd->name);
    const dgm_config *pn = dgm_cfg_get(e->root, path);
    ph->name = pd->name;
    ph->objective = dgm_cfg_get(pn, "objective");
    ph->repeat = (int)dgm_cfg_int(pn, "repeat");
    const dgm_config *opt = dgm_cfg_child(pn, "optimizer");
    int rc = create_inst(e, &ph->opt, opt, DGM_KIND_OPTIMIZER, "plugin");
    if (rc < 0)
        return rc;
    ph->base_lr = dgm_cfg_float(opt, "lr");

    const dgm_config *obj = dgm_cfg_get(pn, "objective");
    ph->n_terms = dgm_cfg_len(obj);
    ph->terms = calloc((size_t)ph->n_terms, sizeof *ph->terms);
    if (!ph->terms)
        return dgm_error(DGM_ENOMEM, "out of memory");
    for (int t = 0; t < ph->n_terms; t++) {
        dgm__term *tm = &ph->terms[t];
        const dgm_config *tc = dgm_cfg_at(obj, t);
        if ((rc = create_inst(e, &tm->loss, tc, DGM_KIND_LOSS, "loss")) < 0)
            return rc;
        const dgm_config *ins = dgm_cfg_get(tc, "inputs");
        tm->n_inputs = dgm_cfg_len(ins);
        for (int j = 0; j < tm->n_inputs; j++) /* <= DGM_MAX_LOSS_INPUTS */
            tm->inputs[j] = dgm_cfg_text(dgm_cfg_at(ins, j));
        const dgm_config *w = dgm_cfg_get(tc, "weight");
        dgm__schedule_init(&tm->wsched);
        if (dgm_cfg_kind_of(w) == DGM_CFG_MAP) {
            int64_t total =
                dgm__experiment_total_steps(e->root, dgm__steps_per_epoch(e));
            if ((rc = dgm__weight_schedule_from_config(
                     &tm->wsched, &tm->weight, w, total * ph->repeat)) < 0)
                return rc;
            tm->scheduled =
                tm->wsched.kind != DGM__SCHED_CONSTANT || tm->wsched.warmup > 0;
        } else {
            tm->weight = dgm_cfg_float(tc, "weight");
        }
        const dgm_config *m = dgm_cfg_get(tc, "mask");
        tm->mask = m && dgm_cfg_kind_of(m) == DGM_CFG_SCALAR ? dgm_cfg_text(m)
                                                            : NULL;
        const dgm_config *lb = dgm_cfg_get(tc, "name");
        tm->label = lb && dgm_cfg_kind_of(lb) == DGM_CFG_SCALAR
                        ? dgm_cfg_text(lb)
                        : dgm_cfg_str(tc, "loss");
    }

    int np = dgm_params_count(e->params);
    ph->params = calloc((size_t)(np ? np : 1), sizeof *ph->params);
    if (!ph->params)
        return dgm_error(DGM_ENOMEM, "out of memory");
    for (int k = 0; k < np; k++) {
        dgm_param *p = dgm_params_at(e->params, k);
        if (p->role != DGM_ROLE_WEIGHT || p->frozen)
            continue;
        /* A head's weights belong to the phases its `phases:` lists,
         * by default those whose objective reads the head's output,
         * whatever the model's globs say. */
        bool in = strncmp(p->name, "heads.", 6) != 0
                      ? dgm__globs_in(pd->params, p->name)
                      : false;
        for (int h = 0; h < e->n_heads && !in; h++) {
            size_t ln = strlen(e->heads[h].name);
            if (strncmp(p->name + 6, e->heads[h].name, ln) != 0 ||
                p->name[6 + ln] != '.')
                continue;
            in = dgm__head_trains_in(&e->heads[h], ph);
        }
        if (in)
            ph->params[ph->n_params++] = p;
    }
    /* Schedules are in optimizer updates; total known by the trainer. */
    return build_groups(e, ph, opt);
}

int dgm__experiment_build(dgm_experiment *e)
{
    if (e->built)
        return 0;
    dgm_rng master;
    dgm_rng_seed(&master, e->seed);
    dgm_rng_fork(&e->rng_init, &master, 1);
    dgm_rng_fork(&e->rng_data, &master, 2);
    dgm_rng_fork(&e->rng_aug, &master, 3);
    dgm_rng_fork(&e->rng_step, &master, 4);
    dgm__experiment_set_live(e);

    const dgm_config *root = e->root;
    const dgm_config *data = dgm_cfg_child(root, "data");
    int rc = create_inst(e, &e->data, data, DGM_KIND_DATASET, "plugin");
    if (rc < 0)
        return rc;
    const dgm_dataset_iface *di = e->data.desc->iface.dataset;
    if ((rc = di->info(e->data.self, &e->info)) < 0)
        return dgm_error_context("dataset '%s': ", e->data.desc->name);
    if ((rc = dgm__data_state_export(e)) < 0)
        return rc;
    e->batch_size = dgm_cfg_has(data, "batch_size")
                        ? dgm_cfg_int(data, "batch_size")
                        : 128;
    e->shuffle = dgm_cfg_has(data, "shuffle") ? dgm_cfg_bool(data, "shuffle")
                                              : true;
    if (e->batch_size < 1)
        return dgm_cfg_error(data, "batch_size", DGM_ERANGE,
                             "batch_size must be >= 1");
    if (e->info.size[DGM_SPLIT_TRAIN] < 1)
        return dgm_cfg_error(data, NULL, DGM_ECONFIG,
                             "dataset '%s' has an empty training split",
                             e->data.desc->name);

    const dgm_config *aug = dgm_cfg_get(root, "augment");
    e->n_augments = dgm_cfg_len(aug);
    if (e->n_augments) {
        e->augments = calloc((size_t)e->n_augments, sizeof *e->augments);
        if (!e->augments)
            return dgm_error(DGM_ENOMEM, "out of memory");
    }
    for (int i = 0; i < e->n_augments; i++)
        if ((rc = create_inst(e, &e->augments[i], dgm_cfg_at(aug, i),
                              DGM_KIND_AUGMENT, "plugin")) < 0)
            return rc;

    e->params = dgm_params_new();
    if (!e->params)
        return dgm_error(DGM_ENOMEM, "out of memory");
    e->build.reg = e->reg;
    e->build.params = e->params;
    e->build.rng = &e->rng_init;
    e->build.scope[0] = '\0';
    if ((rc = create_inst(e, &e->model, dgm_cfg_child(root, "model"),
                          DGM_KIND_MODEL, "plugin")) < 0)
        return rc;

    /* teachers first: their provider runs before the heads' (a head may
     * read a teacher's output) */
    if ((rc = open_teachers(e)) < 0 || (rc = dgm__heads_build(e)) < 0 ||
        (rc = dgm__freeze_apply(e->params, dgm_cfg_get(root, "freeze"),
                                dgm_cfg_bool(root, "freeze_bn_stats"))) < 0)
        return rc;
    const dgm_model_iface *mi = e->model.desc->iface.model;
    e->n_phases = mi->n_phases;
    e->phases = calloc((size_t)e->n_phases, sizeof *e->phases);
    if (!e->phases)
        return dgm_error(DGM_ENOMEM, "out of memory");
    for (int i = 0; i < e->n_phases; i++)
        if ((rc = build_phase(e, i, &mi->phases[i])) < 0)
            return rc;
    /* a group that takes no parameter is a typo, not a no-op */
    const dgm_config *groups = dgm_cfg_get(root, "param_groups");
    for (int g = 0; g < dgm_cfg_len(groups); g++) {
        bool used = false;
        for (int i = 0; i < e->n_phases && !used; i++)
            for (int k = 0; k < e->phases[i].n_groups && !used; k++)
                used = e->phases[i].groups[k].index == g;
        if (!used)
            return dgm_cfg_error(dgm_cfg_at(groups, g), "params",
                                 DGM_ENOTFOUND,
                                 "param_groups[%d] takes no trainable "
                                 "parameter (earlier groups, freeze: or a "
                                 "typo?)",
                                 g);
    }

    const dgm_config *met = dgm_cfg_get(root, "metrics");
    e->n_metrics = dgm_cfg_len(met);
    if (e->n_metrics) {
        e->metrics = calloc((size_t)e->n_metrics, sizeof *e->metrics);
        if (!e->metrics)
            return dgm_error(DGM_ENOMEM, "out of memory");
    }
    for (int i = 0; i < e->n_metrics; i++)
        if ((rc = create_inst(e, &e->metrics[i], dgm_cfg_at(met, i),
                              DGM_KIND_METRIC, "plugin")) < 0)
            return rc;
    if ((rc = dgm__corrupt_build(e)) < 0 || (rc = dgm__gap_build(e)) < 0)
        return rc;
    /* What the config asks that only the data or the model can refuse,
     * found here rather than in the run's first step. */
    if ((rc = dgm__experiment_check_schedules(root, dgm__steps_per_epoch(e))) <
            0 ||
        (rc = dgm__experiment_check_inputs(e)) < 0)
        return rc;
    e->built = true;
    return 0;
}

int64_t dgm__steps_per_epoch(const dgm_experiment *e)
{
    return (e->info.size[DGM_SPLIT_TRAIN] + e->batch_size - 1) / e->batch_size;
}

int dgm_experiment_build(dgm_experiment *e)
{
    return dgm__experiment_build(e);
}
