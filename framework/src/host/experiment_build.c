/* experiment_build.c - instantiate a resolved experiment: data set,
 * augmentations, model (with its blocks and parameters), per-phase
 * optimizers and objectives, metrics; and evaluate objectives. */
#include <fnmatch.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/error.h"
#include "eval_internal.h"
#include "host_internal.h"
#include "teacher.h"
#include "transfer.h"

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

static bool matches_any(const char *globs, const char *name)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", globs ? globs : "*");
    char *save = NULL;
    for (char *tok = strtok_r(buf, " \t", &save); tok;
         tok = strtok_r(NULL, " \t", &save))
        if (fnmatch(tok, name, 0) == 0)
            return true;
    return false;
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

/* Build the `heads:` blocks under "heads.<name>". The input's
 * per-example shape is read from one eval-mode forward of the model on
 * two training examples (with a throwaway RNG, so the run's streams are
 * untouched), in the first phase that produces it. Its rows may be
 * several batches stacked (gan's d_feat: the real and the fake batch). */
static int build_heads(dgm_experiment *e)
{
    const dgm_config *hs = dgm_cfg_get(e->root, "heads");
    int nh = dgm_cfg_kind_of(hs) == DGM_CFG_SEQ ? dgm_cfg_len(hs) : 0;
    if (nh == 0)
        return 0;
    if (!(e->heads = calloc((size_t)nh, sizeof *e->heads)))
        return dgm_error(DGM_ENOMEM, "out of memory");
    dgm_eval *ev;
    int rc = dgm__eval_new(&ev, e, e->seed ^ 0x4ead5ULL);
    if (rc < 0)
        return rc;
    const dgm_model_iface *mi = e->model.desc->iface.model;
    int64_t n = e->info.size[DGM_SPLIT_TRAIN] < 2 ? 1 : 2;
    for (int h = 0; h < nh && rc == 0; h++) {
        dgm__head *hd = &e->heads[h];
        const dgm_config *hc = dgm_cfg_at(hs, h);
        hd->cfg = hc;
        hd->name = dgm_cfg_str(hc, "name");
        hd->input = dgm_cfg_str(hc, "input");
        hd->detach = dgm_cfg_bool(hc, "detach");
        dgm_var *in = NULL;
        for (int p = 0; p < mi->n_phases && !in && rc == 0; p++) {
            dgm_step *s;
            dgm_vars *io;
            if ((rc = dgm_eval_batch(ev, DGM_SPLIT_TRAIN, 0, n, &s, &io)) <
                0)
                break;
            if ((rc = mi->forward(e->model.self, s, p, io)) < 0) {
                rc = dgm_error_context("heads: model '%s' forward, phase "
                                       "%d: ",
                                       e->model.desc->name, p);
                break;
            }
            in = dgm_vars_get(io, hd->input);
        }
        if (rc < 0)
            break;
        if (!in) {
            rc = dgm_cfg_error(hc, "input", DGM_ENOTFOUND,
                               "head '%s': model '%s' has no output '%s' "
                               "in any phase",
                               hd->name, e->model.desc->name, hd->input);
            break;
        }
        const dgm_tensor *v = dgm_value(in);
        if (v->ndim < 1 || v->shape[0] < n || v->shape[0] % n != 0) {
            rc = dgm_cfg_error(hc, "input", DGM_ESHAPE,
                               "head '%s': '%s' is not per example",
                               hd->name, hd->input);
            break;
        }
        dgm_shape ins = {.ndim = v->ndim - 1}, outs = {0};
        outs.ndim = dgm_cfg_int_list(hc, "out", outs.dim, DGM_MAX_DIMS);
        for (int d = 1; d < v->ndim; d++)
            ins.dim[d - 1] = v->shape[d];
        char scope[160];
        snprintf(scope, sizeof scope, "heads.%s", hd->name);
        rc = dgm_block_create(&e->build, dgm_cfg_child(hc, "block"), scope,
                              &ins, &outs, &hd->blk);
        if (rc < 0)
            rc = dgm_error_context("head '%s': ", hd->name);
        else
            e->n_heads++;
    }
    dgm__eval_free(ev);
    return rc;
}

bool dgm__phase_reads(const dgm__phase *ph, const char *name)
{
    for (int t = 0; t < ph->n_terms; t++) {
        for (int j = 0; j < ph->terms[t].n_inputs; j++)
            if (!strcmp(ph->terms[t].inputs[j], name))
                return true;
        if (ph->terms[t].mask && !strcmp(ph->terms[t].mask, name))
            return true;
    }
    return false;
}

/* The phases a head's weights belong to: its `phases:` list (checked at
 * resolve time to name phases that read it), else every phase that reads
 * it. */
static bool head_trains_in(const dgm__head *hd, const dgm__phase *ph)
{
    const dgm_config *list = dgm_cfg_get(hd->cfg, "phases");
    if (dgm_cfg_kind_of(list) != DGM_CFG_SEQ)
        return dgm__phase_reads(ph, hd->name);
    for (int j = 0; j < dgm_cfg_len(list); j++)
        if (!strcmp(dgm_cfg_text(dgm_cfg_at(list, j)), ph->name))
            return true;
    return false;
}

/* Open `teachers:`, each tried on one training example. */
static int open_teachers(dgm_experiment *e)
{
    const dgm_config *list = dgm_cfg_get(e->root, "teachers");
    if (dgm_cfg_kind_of(list) != DGM_CFG_SEQ || dgm_cfg_len(list) == 0)
        return 0;
    dgm_eval *ev;
    int rc = dgm__eval_new(&ev, e, e->seed ^ 0x7eac4ULL);
    if (rc < 0)
        return rc;
    dgm_step *s;
    dgm_vars *io;
    const dgm_tensor *x = NULL;
    if (e->info.size[DGM_SPLIT_TRAIN] > 0 &&
        (rc = dgm_eval_batch(ev, DGM_SPLIT_TRAIN, 0, 1, &s, &io)) == 0)
        x = dgm_value(dgm_vars_get(io, "x"));
    if (rc == 0)
        rc = dgm__teachers_open(&e->teachers, e->reg, list, &e->info, x);
    dgm__eval_free(ev);
    return rc;
}

int dgm__heads_forward(dgm_experiment *e, int phase, dgm_graph *g,
                       dgm_vars *io)
{
    dgm__phase *ph = &e->phases[phase];
    for (int h = 0; h < e->n_heads; h++) {
        dgm__head *hd = &e->heads[h];
        bool needed = dgm__phase_reads(ph, hd->name);
        dgm_var *in = dgm_vars_get(io, hd->input);
        if (!needed || !in || dgm_vars_get(io, hd->name))
            continue;
        if (hd->detach)
            in = dgm_detach(g, in);
        dgm_var *out = dgm_block_forward(hd->blk, g, in);
        if (!out)
            return dgm_error_context("head '%s': ", hd->name);
        int rc = dgm_vars_set(io, hd->name, out);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int build_phase(dgm_experiment *e, int i, const dgm_phase_desc *pd)
{
    dgm__phase *ph = &e->phases[i];
    char path[160];
    snprintf(path, sizeof path, "phases.%s", pd->name);
    const dgm_config *pn = dgm_cfg_get(e->root, path);
    ph->name = pd->name;
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
        tm->weight = dgm_cfg_float(tc, "weight");
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
                      ? matches_any(pd->params, p->name)
                      : false;
        for (int h = 0; h < e->n_heads && !in; h++) {
            size_t ln = strlen(e->heads[h].name);
            if (strncmp(p->name + 6, e->heads[h].name, ln) != 0 ||
                p->name[6 + ln] != '.')
                continue;
            in = head_trains_in(&e->heads[h], ph);
        }
        if (in)
            ph->params[ph->n_params++] = p;
    }
    /* Schedules are in optimizer updates; total known by the trainer. */
    return build_groups(e, ph, opt);
}

/* Experiments built and not yet freed. The thread count is the process's
 * (OpenMP, oneDNN), so only an experiment built while none other is alive
 * sets it: one built inside it (a teacher, the classifier run of a feature
 * metric, `dgm eval`'s metrics) must not change a running training's. */
static atomic_int live_experiments;

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
    if (!e->live) {
        e->live = true;
        if (atomic_fetch_add(&live_experiments, 1) == 0)
            dgm_set_threads(e->threads);
    }

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

    if ((rc = build_heads(e)) < 0 || (rc = open_teachers(e)) < 0 ||
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

void dgm_experiment_free(dgm_experiment *e)
{
    if (!e)
        return;
    if (e->live)
        atomic_fetch_sub(&live_experiments, 1);
    for (int i = 0; i < e->n_metrics; i++)
        dgm__inst_destroy(&e->metrics[i]);
    free(e->metrics);
    for (int i = 0; i < e->n_phases; i++) {
        dgm__phase *ph = &e->phases[i];
        for (int t = 0; t < ph->n_terms; t++)
            dgm__inst_destroy(&ph->terms[t].loss);
        free(ph->terms);
        dgm__inst_destroy(&ph->opt);
        free(ph->params);
        for (int g = 0; g < ph->n_groups; g++) {
            dgm__inst_destroy(&ph->groups[g].opt);
            dgm_config_free(ph->groups[g].opt_cfg);
            free(ph->groups[g].params);
        }
        free(ph->groups);
        free(ph->rest);
    }
    free(e->phases);
    free(e->heads);
    dgm__teachers_close(e->teachers);
    dgm__inst_destroy(&e->model);
    dgm__build_destroy_blocks(&e->build);
    dgm_params_free(e->params);
    for (int i = 0; i < e->n_augments; i++)
        dgm__inst_destroy(&e->augments[i]);
    free(e->augments);
    dgm_params_free(e->data_state);
    dgm__inst_destroy(&e->data);
    dgm_config_free(e->root);
    free(e);
}

/* An objective term reads a tensor its phase does not have: name the
 * term's key and what the phase has. */
static int no_input(const dgm_experiment *e, const dgm__phase *ph,
                    const dgm__term *tm, const char *key, const char *name,
                    const dgm_vars *io)
{
    char have[512] = "";
    for (int k = 0; k < dgm_vars_count(io); k++) {
        size_t l = strlen(have);
        snprintf(have + l, sizeof have - l, "%s%s", k ? ", " : "",
                 dgm_vars_name_at(io, k));
    }
    return dgm_cfg_error(tm->loss.cfg, key, DGM_ENOTFOUND,
                         "model '%s' has no output '%s' in phase '%s' (it "
                         "has: %s)",
                         e->model.desc->name, name, ph->name, have);
}

/* Teachers and heads of phase p added to io, then every term's inputs and
 * mask looked up. */
static int phase_inputs_present(dgm_experiment *e, int p, dgm_graph *g,
                                dgm_vars *io)
{
    int rc = dgm__teachers_forward(e, p, g, io);
    if (rc == 0)
        rc = dgm__heads_forward(e, p, g, io);
    if (rc < 0)
        return rc;
    const dgm__phase *ph = &e->phases[p];
    for (int t = 0; t < ph->n_terms; t++) {
        const dgm__term *tm = &ph->terms[t];
        for (int j = 0; j < tm->n_inputs; j++)
            if (!dgm_vars_get(io, tm->inputs[j]))
                return no_input(e, ph, tm, "inputs", tm->inputs[j], io);
        if (tm->mask && !dgm_vars_get(io, tm->mask))
            return no_input(e, ph, tm, "mask", tm->mask, io);
    }
    return 0;
}

int dgm__experiment_check_inputs(dgm_experiment *e)
{
    dgm_eval *ev;
    int rc = dgm__eval_new(&ev, e, e->seed ^ 0x1a9e7ULL);
    if (rc < 0)
        return rc;
    const dgm_model_iface *mi = e->model.desc->iface.model;
    int64_t n = e->info.size[DGM_SPLIT_TRAIN] < 2 ? 1 : 2;
    for (int p = 0; p < e->n_phases && rc == 0; p++) {
        dgm_step *s;
        dgm_vars *io;
        if ((rc = dgm_eval_batch(ev, DGM_SPLIT_TRAIN, 0, n, &s, &io)) < 0)
            break;
        if ((rc = mi->forward(e->model.self, s, p, io)) < 0)
            rc = dgm_error_context("model '%s' forward, phase '%s': ",
                                   e->model.desc->name, e->phases[p].name);
        else
            rc = phase_inputs_present(e, p, s->g, io);
    }
    dgm__eval_free(ev);
    return rc;
}

/* Sum of a [N] f32 mask's values: the number of examples that count. */
static double mask_count(const dgm_tensor *m)
{
    double s = 0;
    int64_t n = dgm_tensor_numel(m);
    for (int64_t i = 0; i < n; i++)
        s += dgm_tensor_get(m, i);
    return s;
}

/* Evaluation reads a term per example. A scalar (a batch mean, or a
 * statistic of the whole batch) stands for every example of its batch, so
 * a split's average weights each batch by its size: what a loop that adds
 * loss * batch size and divides by the split size reports. A vector must
 * hold one value per example. *scalar says whether *v was broadcast. */
static int per_example_values(dgm_graph *g, dgm_vars *io, const dgm__term *tm,
                              dgm_var **v, bool *scalar)
{
    const dgm_var *x = dgm_vars_get(io, "x");
    const dgm_tensor *val = dgm_value(*v);
    if (!x || dgm_value(x)->ndim < 1)
        return dgm_error(DGM_ESHAPE,
                         "loss '%s' (term '%s'): the batch has no x to "
                         "count its examples",
                         tm->loss.desc->name, tm->label);
    int64_t n = dgm_value(x)->shape[0];
    if (val->ndim == 1 && val->shape[0] == n) {
        *scalar = false;
        return 0;
    }
    if (!*scalar)
        return dgm_error(DGM_ESHAPE,
                         "loss '%s' (term '%s') gave %lld values for a "
                         "batch of %lld examples; evaluation needs one per "
                         "example (or a scalar)",
                         tm->loss.desc->name, tm->label,
                         (long long)val->shape[0], (long long)n);
    *v = dgm_add(g, dgm_constant(g, 1, &n, 0.0f), *v);
    return *v ? 0
              : dgm_error_context(
                    "loss '%s' (term '%s'): ", tm->loss.desc->name, tm->label);
}

int dgm__objective(dgm_experiment *e, int phase, dgm_graph *g, dgm_vars *io,
                   bool per_example, dgm_var **total, dgm_var **term_values)
{
    dgm__phase *ph = &e->phases[phase];
    dgm_var *sum = NULL;
    *total = NULL;
    int hrc = dgm__teachers_forward(e, phase, g, io);
    if (hrc == 0)
        hrc = dgm__heads_forward(e, phase, g, io);
    if (hrc < 0)
        return hrc;
    for (int t = 0; t < ph->n_terms; t++) {
        dgm__term *tm = &ph->terms[t];
        dgm_var *ins[DGM_MAX_LOSS_INPUTS];
        for (int j = 0; j < tm->n_inputs; j++)
            if (!(ins[j] = dgm_vars_get(io, tm->inputs[j])))
                return no_input(e, ph, tm, "inputs", tm->inputs[j], io);
        const dgm_loss_iface *li = tm->loss.desc->iface.loss;
        dgm_var *v = li->apply(tm->loss.self, g, ins, tm->n_inputs);
        if (!v)
            return dgm_error_context(
                "loss '%s' (term '%s'): ", tm->loss.desc->name, tm->label);
        dgm_tensor *val = dgm_value(v);
        bool scalar = dgm_tensor_numel(val) == 1 && val->ndim <= 1;
        if (!scalar && val->ndim != 1)
            return dgm_error(DGM_ESHAPE,
                             "loss '%s' (term '%s') returned rank %d; a "
                             "loss returns per-example values [N] or a "
                             "scalar",
                             tm->loss.desc->name, tm->label, val->ndim);
        if (per_example &&
            (hrc = per_example_values(g, io, tm, &v, &scalar)) < 0)
            return hrc;
        if (!scalar) {
            double count = (double)val->shape[0];
            if (tm->mask) {
                dgm_var *m = dgm_vars_get(io, tm->mask);
                if (!m)
                    return no_input(e, ph, tm, "mask", tm->mask, io);
                count = mask_count(dgm_value(m));
                v = dgm_mul(g, v, m);
            }
            if (!per_example)
                v = count > 0 ? dgm_affine(g, dgm_sum_all(g, v),
                                           (float)(1.0 / count), 0.0f)
                              : dgm_affine(g, dgm_sum_all(g, v), 0.0f, 0.0f);
        }
        if (tm->weight != 1.0)
            v = dgm_affine(g, v, (float)tm->weight, 0.0f);
        if (!v)
            return dgm_error_context("term '%s': ", tm->label);
        if (term_values)
            term_values[t] = v;
        sum = sum ? dgm_add(g, sum, v) : v;
        if (!sum)
            return dgm_last_code();
    }
    *total = sum;
    return 0;
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
