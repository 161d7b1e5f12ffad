/* experiment.c - from YAML to a resolved, validated experiment: every
 * plugin found and its config checked, defaults filled in, phases
 * spelled out. Nothing is built here (see experiment_build.c). */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"
#include "dgm/error.h"
#include "host_internal.h"
#include "plugin_check.h"
#include "transfer.h"

static const dgm_param_spec experiment_schema[] = {
    DGM_PARAM_STRING("name",
                     .help = "experiment name: runs go to runs/<name>/"),
    DGM_PARAM_INT("seed", .def = "0", DGM_GE(0), DGM_LE(9.0e15),
                  .help = "seed of every random stream"),
    DGM_PARAM_INT("threads", .def = "0", DGM_GE(0), DGM_LE(1024),
                  .help = "kernel threads (0: all cores)"),
    DGM_PARAM_STRING_LIST(
        "plugin_path", .def = "[]",
        .help =
            "extra folders searched for plugins, relative to the experiment"),
    DGM_PARAM_PLUGIN("data", .kind = "dataset", .help = "the data set"),
    DGM_PARAM_PLUGIN_LIST("augment", .def = "[]", .kind = "augment",
                          .help = "augmentations, applied in order"),
    DGM_PARAM_PLUGIN("model", .kind = "model", .help = "the model"),
    DGM_PARAM_ANY("objective", .def = "null",
                  .help =
                      "loss terms of a single-phase model (else per phase)"),
    DGM_PARAM_PLUGIN(
        "optimizer", .def = "null", .kind = "optimizer",
        .help = "optimizer of every phase that names none (default adam)"),
    DGM_PARAM_ANY("phases", .def = "{}",
                  .help = "per phase: optimizer, objective, repeat"),
    DGM_PARAM_ANY("train", .def = "{}", .help = "the training loop"),
    DGM_PARAM_PLUGIN_LIST("metrics", .def = "[]", .kind = "metric",
                          .help = "metrics of the final evaluation"),
    DGM_PARAM_ANY("sweep", .def = "null",
                  .help = "sweep definition (dgm sweep); ignored by dgm run"),
    DGM_PARAM_ANY(
        "init", .def = "[]",
        .help =
            "parameters loaded before training from safetensors files or runs"),
    DGM_PARAM_ANY("freeze", .def = "[]",
                  .help =
                      "globs of parameters that get no gradient and no update"),
    DGM_PARAM_BOOL("freeze_bn_stats", .def = "false",
                   .help = "also keep the batch-norm running statistics of "
                           "frozen layers fixed"),
    DGM_PARAM_ANY("param_groups", .def = "[]",
                  .help = "per-pattern lr_mult, weight_decay or optimizer "
                          "(first match wins)"),
    DGM_PARAM_ANY("heads", .def = "[]",
                  .help =
                      "auxiliary heads: blocks on named tensors of the model"),
    DGM_PARAM_ANY(
        "teachers", .def = "[]",
        .help =
            "trained runs whose outputs join the named tensors (distillation)"),
    DGM_PARAM_END,
};

static const dgm_param_spec group_schema[] = {
    DGM_PARAM_ANY("params",
                  .help =
                      "globs (a string of space-separated globs or a list)"),
    DGM_PARAM_FLOAT("lr_mult", .def = "1.0", DGM_GE(0),
                    .help = "multiplies the scheduled learning rate"),
    DGM_PARAM_FLOAT("weight_decay", .def = "null", DGM_GE(0),
                    .help = "the optimizer's weight_decay for this group"),
    DGM_PARAM_PLUGIN(
        "optimizer", .def = "null", .kind = "optimizer",
        .help = "an optimizer of the group's own (default: the phase's)"),
    DGM_PARAM_END,
};

static const dgm_param_spec head_schema[] = {
    DGM_PARAM_STRING("name", .help = "the output's name, for objective terms"),
    DGM_PARAM_STRING("input", .help = "a named tensor of the model (e.g. mu)"),
    DGM_PARAM_PLUGIN("block", .kind = "block", .help = "the head"),
    DGM_PARAM_INT_LIST("out", .def = "[]", DGM_GE(1), DGM_LE(1e9),
                       .help = "per-example output shape, e.g. [10] classes "
                               "([]: the block's choice)"),
    DGM_PARAM_BOOL("detach", .def = "false",
                   .help = "no gradient from the head into the model"),
    DGM_PARAM_STRING_LIST(
        "phases", .def = "null",
        .help = "the phases whose updates train the head (default: every phase "
                "whose objective reads it)"),
    DGM_PARAM_END,
};

static const dgm_param_spec teacher_schema[] = {
    DGM_PARAM_STRING("name", .help = "the output's name in the student's named "
                                     "tensors (objective inputs)"),
    DGM_PARAM_PATH(
        "run",
        .help = "the teacher's run directory (config.yaml, checkpoints/last)"),
    DGM_PARAM_STRING(
        "output",
        .help = "the teacher model's output to take (e.g. logits, mu)"),
    DGM_PARAM_STRING(
        "input", .def = "x",
        .help = "the student's named tensor fed to the teacher as its x"),
    DGM_PARAM_END,
};

static const dgm_param_spec train_schema[] = {
    DGM_PARAM_INT("epochs", .def = "10", DGM_GE(0), DGM_LE(1e9),
                  .help = "passes over the training set"),
    DGM_PARAM_INT("steps", .def = "0", DGM_GE(0), DGM_LE(1e15),
                  .help = "training steps; if > 0 it replaces epochs"),
    DGM_PARAM_INT("log_every", .def = "100", DGM_GE(1), DGM_LE(1e9),
                  .help = "steps between metrics.jsonl lines"),
    DGM_PARAM_INT("eval_every", .def = "0", DGM_GE(0), DGM_LE(1e15),
                  .help =
                      "steps between metric evaluations (0: at the end only)"),
    DGM_PARAM_INT("checkpoint_every", .def = "0", DGM_GE(0), DGM_LE(1e15),
                  .help = "steps between checkpoints (0: at each epoch's end)"),
    DGM_PARAM_INT("sample_every", .def = "0", DGM_GE(0), DGM_LE(1e15),
                  .help = "steps between sample grids (0: at the end only)"),
    DGM_PARAM_INT("samples", .def = "64", DGM_GE(0), DGM_LE(4096),
                  .help = "images in a sample grid"),
    DGM_PARAM_BOOL("sync_bn", .def = "false",
                   .help = "on several ranks: batch-norm statistics over the "
                           "global batch (summed across ranks)"),
    DGM_PARAM_END,
};

static const dgm_param_spec term_schema[] = {
    DGM_PARAM_STRING("loss", .help = "loss plugin"),
    DGM_PARAM_STRING_LIST(
        "inputs", .help = "named tensors of the model passed to the loss"),
    DGM_PARAM_ANY("weight", .def = "1.0",
                  .help = "term weight: a number, or a schedule map "
                          "{value, schedule, warmup, ...}"),
    DGM_PARAM_STRING(
        "mask", .def = "null",
        .help = "named [N] tensor: examples where it is 0 do not count"),
    DGM_PARAM_STRING("name", .def = "null",
                     .help = "label in logs (default: the loss name)"),
    DGM_PARAM_END,
};

static const dgm_param_spec phase_schema[] = {
    DGM_PARAM_PLUGIN("optimizer", .def = "null", .kind = "optimizer",
                     .help = "this phase's optimizer"),
    DGM_PARAM_ANY("objective", .def = "null", .help = "loss terms"),
    DGM_PARAM_INT("repeat", .def = "0", DGM_GE(0), DGM_LE(1000),
                  .help = "updates per training step (0: the model's default)"),
    DGM_PARAM_END,
};

static dgm_kind kind_by_name(const char *s)
{
    for (int k = 1; k < DGM_KIND_COUNT_; k++)
        if (s && !strcmp(dgm_kind_name((dgm_kind)k), s))
            return (dgm_kind)k;
    return 0;
}

/* Find the plugin a `plugin:` (or `loss:`) node names. */
static int find_plugin(dgm_registry *reg, const dgm_config *node,
                       const char *key, dgm_kind kind,
                       const dgm_plugin_desc **desc)
{
    const dgm_config *pn = dgm_cfg_get(node, key);
    const char *name;
    if (!pn)
        return dgm_cfg_error(node, key, DGM_EMISSING,
                             "missing `%s:` naming a %s plugin", key,
                             dgm_kind_name(kind));
    int rc = dgm_cfg_to_str(pn, &name);
    if (rc < 0)
        return rc;
    rc = dgm_registry_find(reg, kind, name, desc, NULL);
    if (rc < 0)
        return dgm_cfg_error(node, key, rc, "%s", dgm_last_error());
    return 0;
}

/* data.prefetch: batches the trainer's loader builds ahead on its thread
 * (host/loader.c); a host key, so every dataset takes it. */
static int read_prefetch(dgm_experiment *e, const dgm_config *data)
{
    int64_t v = DGM__PREFETCH_DEFAULT;
    const dgm_config *n = dgm_cfg_get(data, "prefetch");
    int rc;
    if (n && (rc = dgm_cfg_to_int(n, &v)) < 0)
        return rc;
    if (v < 0 || v > 64)
        return dgm_cfg_error(data, "prefetch", DGM_ERANGE,
                             "prefetch must be in [0, 64], got %lld",
                             (long long)v);
    e->prefetch = (int)v;
    return 0;
}

/* Validate a plugin's map and, through its schema, every plugin nested in
 * it, filling defaults all the way down. */
static int validate_plugin(dgm_registry *reg, dgm_config *node, dgm_kind kind,
                           const char *const *extra)
{
    if (dgm_cfg_kind_of(node) != DGM_CFG_MAP)
        return dgm_cfg_error(node, NULL, DGM_ETYPE,
                             "expected a map with `plugin:` (a %s)",
                             dgm_kind_name(kind));
    const dgm_plugin_desc *d;
    int rc = find_plugin(reg, node, "plugin", kind, &d);
    if (rc < 0)
        return rc;
    rc = dgm_config_validate(node, d->params, d->name, extra);
    if (rc < 0)
        return rc;
    for (const dgm_param_spec *s = d->params; s && s->name; s++) {
        if (s->type != DGM_P_PLUGIN && s->type != DGM_P_PLUGIN_LIST)
            continue;
        dgm_config *child = dgm_cfg_get_mut(node, s->name);
        if (!child || dgm_cfg_kind_of(child) == DGM_CFG_NULL)
            continue;
        dgm_kind ck = s->kind ? kind_by_name(s->kind) : 0;
        if (s->type == DGM_P_PLUGIN) {
            rc = validate_plugin(reg, child, ck, NULL);
        } else {
            for (int i = 0; rc == 0 && i < dgm_cfg_len(child); i++)
                rc = validate_plugin(reg, (dgm_config *)dgm_cfg_at(child, i),
                                     ck, NULL);
        }
        if (rc < 0)
            return rc;
    }
    /* Last, so the plugin sees its nested plugins' defaults too. */
    return dgm__plugin_check(d, node);
}

static int validate_plugin_list(dgm_registry *reg, dgm_config *list,
                                dgm_kind kind)
{
    for (int i = 0; i < dgm_cfg_len(list); i++) {
        int rc = validate_plugin(reg, (dgm_config *)dgm_cfg_at(list, i), kind,
                                 dgm__plugin_host_keys(kind));
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* A term's `weight:` is a number or a schedule map (schedule.h). */
static int validate_weight(dgm_config *w)
{
    if (dgm_cfg_kind_of(w) == DGM_CFG_MAP) {
        dgm__schedule s;
        double v;
        int rc =
            dgm_config_validate(w, dgm__weight_schedule_schema, "weight", NULL);
        /* The run's length is checked later (check_schedules): here any
         * length will do. */
        return rc < 0 ? rc
                      : dgm__weight_schedule_from_config(&s, &v, w, INT64_MAX);
    }
    double d;
    if (dgm_cfg_kind_of(w) != DGM_CFG_SCALAR || dgm_cfg_to_float(w, &d) < 0)
        return dgm_cfg_error(w, NULL, DGM_ETYPE,
                             "a term's weight is a number or a schedule "
                             "map {value: W, schedule: cyclical, ...}");
    return 0;
}

static int validate_objective(dgm_registry *reg, dgm_config *obj)
{
    if (dgm_cfg_kind_of(obj) != DGM_CFG_SEQ || dgm_cfg_len(obj) == 0)
        return dgm_cfg_error(obj, NULL, DGM_ETYPE,
                             "an objective is a non-empty list of "
                             "{loss: NAME, inputs: [...], weight: W}");
    for (int i = 0; i < dgm_cfg_len(obj); i++) {
        dgm_config *t = (dgm_config *)dgm_cfg_at(obj, i);
        if (dgm_cfg_kind_of(t) != DGM_CFG_MAP)
            return dgm_cfg_error(t, NULL, DGM_ETYPE,
                                 "an objective term is a map with `loss:`");
        const dgm_plugin_desc *d;
        int rc = find_plugin(reg, t, "loss", DGM_KIND_LOSS, &d);
        if (rc < 0)
            return rc;
        /* Host keys first (they are extra keys for the loss), then the
         * loss's own parameters (host keys extra for it). */
        int nk = 0;
        for (const dgm_param_spec *s = d->params; s && s->name; s++)
            nk++;
        const char **loss_keys = calloc((size_t)nk + 1, sizeof *loss_keys);
        if (!loss_keys)
            return dgm_error(DGM_ENOMEM, "objective: out of memory");
        for (int k = 0; k < nk; k++)
            loss_keys[k] = d->params[k].name;
        rc = dgm_config_validate(t, term_schema, "objective", loss_keys);
        free(loss_keys);
        if (rc == 0)
            rc =
                dgm_config_validate(t, d->params, d->name, dgm__loss_host_keys);
        if (rc < 0)
            return rc;
        const dgm_loss_iface *li = d->iface.loss;
        int n = dgm_cfg_len(dgm_cfg_get(t, "inputs"));
        if (n > DGM_MAX_LOSS_INPUTS)
            return dgm_cfg_error(t, "inputs", DGM_ERANGE,
                                 "%d inputs; a term takes at most %d "
                                 "(DGM_MAX_LOSS_INPUTS)",
                                 n, DGM_MAX_LOSS_INPUTS);
        if (n < li->min_inputs || n > li->max_inputs)
            return dgm_cfg_error(t, "inputs", DGM_ERANGE,
                                 "loss '%s' takes %d to %d inputs (%s), "
                                 "got %d",
                                 d->name, li->min_inputs, li->max_inputs,
                                 li->inputs_help ? li->inputs_help : "",
                                 n);
        if ((rc = validate_weight(dgm_cfg_get_mut(t, "weight"))) < 0 ||
            (rc = dgm__plugin_check(d, t)) < 0)
            return rc;
    }
    return 0;
}

static dgm_config *parse_default(const char *text, const char *what)
{
    dgm_config *c = NULL;
    if (dgm_config_parse(&c, text, what) < 0)
        return NULL;
    return c;
}

/* Spell out `phases:` from the model's phase list, the top-level
 * `optimizer:` / `objective:` and the model's defaults. */
static int resolve_phases(dgm_experiment *e)
{
    dgm_config *root = e->root;
    const dgm_plugin_desc *md;
    int rc = find_plugin(e->reg, dgm_cfg_get(root, "model"), "plugin",
                         DGM_KIND_MODEL, &md);
    if (rc < 0)
        return rc;
    const dgm_model_iface *mi = md->iface.model;
    if (!mi->phases || mi->n_phases < 1)
        return dgm_error(DGM_EPLUGIN, "model '%s' declares no phases",
                         md->name);
    dgm_config *phases = dgm_cfg_get_mut(root, "phases");
    if (dgm_cfg_kind_of(phases) != DGM_CFG_MAP)
        return dgm_cfg_error(phases, NULL, DGM_ETYPE,
                             "`phases:` is a map from phase name to "
                             "{optimizer, objective, repeat}");
    if (mi->n_phases > DGM_MAX_PHASES)
        return dgm_cfg_error(dgm_cfg_get(root, "model"), "plugin", DGM_EPLUGIN,
                             "model '%s' declares %d phases; the host takes "
                             "at most %d (DGM_MAX_PHASES)",
                             md->name, mi->n_phases, DGM_MAX_PHASES);
    const char *names[DGM_MAX_PHASES];
    for (int i = 0; i < mi->n_phases; i++)
        names[i] = mi->phases[i].name;
    for (int i = 0; i < dgm_cfg_len(phases); i++) {
        const char *k = dgm_cfg_key_at(phases, i);
        bool known = false;
        for (int j = 0; j < mi->n_phases; j++)
            known |= !strcmp(k, names[j]);
        if (!known) {
            const char *dym = dgm_did_you_mean(k, names, mi->n_phases);
            return dgm_cfg_error(dgm_cfg_at(phases, i), NULL, DGM_EKEY,
                                 "model '%s' has no phase '%s'%s%s%s",
                                 md->name, k, dym ? " (did you mean '" : "",
                                 dym ? dym : "", dym ? "'?)" : "");
        }
    }
    const dgm_config *top_opt = dgm_cfg_get(root, "optimizer");
    const dgm_config *top_obj = dgm_cfg_get(root, "objective");
    if (top_obj && dgm_cfg_kind_of(top_obj) != DGM_CFG_NULL &&
        mi->n_phases > 1)
        return dgm_cfg_error(top_obj, NULL, DGM_ECONFIG,
                             "model '%s' has %d phases: give each its "
                             "objective under `phases:`",
                             md->name, mi->n_phases);
    for (int i = 0; i < mi->n_phases; i++) {
        const dgm_phase_desc *pd = &mi->phases[i];
        char path[160];
        snprintf(path, sizeof path, "phases.%s", pd->name);
        dgm_config *pn = dgm_cfg_get_mut(root, path);
        if (!pn) {
            dgm_config *empty = parse_default("{}", "<default>");
            if (!empty)
                return dgm_last_code();
            rc = dgm_config_set(root, path, empty);
            dgm_config_free(empty);
            if (rc < 0)
                return rc;
            pn = dgm_cfg_get_mut(root, path);
        }
        if (dgm_cfg_kind_of(pn) != DGM_CFG_MAP)
            return dgm_cfg_error(pn, NULL, DGM_ETYPE,
                                 "a phase is a map {optimizer, objective, "
                                 "repeat}");
        /* Fill what the phase leaves out before validating it. */
        const dgm_config *opt = dgm_cfg_get(pn, "optimizer");
        if (!opt || dgm_cfg_kind_of(opt) == DGM_CFG_NULL) {
            dgm_config *def = NULL;
            if (top_opt && dgm_cfg_kind_of(top_opt) != DGM_CFG_NULL)
                def = dgm_config_clone(top_opt);
            else
                def = parse_default("{plugin: adam}", "<default optimizer>");
            if (!def)
                return dgm_last_code();
            rc = dgm_config_set(pn, "optimizer", def);
            dgm_config_free(def);
            if (rc < 0)
                return rc;
        }
        const dgm_config *obj = dgm_cfg_get(pn, "objective");
        if (!obj || dgm_cfg_kind_of(obj) == DGM_CFG_NULL) {
            dgm_config *def = NULL;
            if (top_obj && dgm_cfg_kind_of(top_obj) != DGM_CFG_NULL)
                def = dgm_config_clone(top_obj);
            else if (pd->objective)
                def = parse_default(pd->objective, md->name);
            if (!def)
                return pd->objective || (top_obj && dgm_cfg_kind_of(top_obj))
                           ? dgm_last_code()
                           : dgm_cfg_error(pn, NULL, DGM_EMISSING,
                                           "phase '%s' of model '%s' needs "
                                           "an objective",
                                           pd->name, md->name);
            rc = dgm_config_set(pn, "objective", def);
            dgm_config_free(def);
            if (rc < 0)
                return rc;
        }
        rc = dgm_config_validate(pn, phase_schema, pd->name, NULL);
        if (rc < 0)
            return rc;
        if (dgm_cfg_int(pn, "repeat") == 0) {
            char buf[32];
            snprintf(buf, sizeof buf, "%d", pd->repeat > 0 ? pd->repeat : 1);
            dgm_config *r = parse_default(buf, "<default>");
            if (!r)
                return dgm_last_code();
            rc = dgm_config_set(pn, "repeat", r);
            dgm_config_free(r);
            if (rc < 0)
                return rc;
        }
        rc = validate_plugin(e->reg, dgm_cfg_get_mut(pn, "optimizer"),
                             DGM_KIND_OPTIMIZER, dgm__optimizer_host_keys);
        if (rc == 0)
            rc = validate_objective(e->reg, dgm_cfg_get_mut(pn, "objective"));
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* A head's `phases:` (after resolve_phases, so `phases:` of the
 * experiment holds every phase of the model with its objective): each
 * entry a phase of the model, listed once, whose objective reads the
 * head. A one-phase model's list can only name that phase (`train`). */
static int validate_head_phases(const dgm_config *root, const dgm_config *hn)
{
    const dgm_config *list = dgm_cfg_get(hn, "phases");
    if (!list || dgm_cfg_kind_of(list) == DGM_CFG_NULL)
        return 0;
    const char *head = dgm_cfg_str(hn, "name");
    if (dgm_cfg_len(list) == 0)
        return dgm_cfg_error(hn, "phases", DGM_ECONFIG,
                             "head '%s': an empty list trains it in no "
                             "phase (drop `phases:` for the default, or "
                             "freeze: [\"heads.%s.*\"] to keep it fixed)",
                             head, head);
    const dgm_config *phases = dgm_cfg_get(root, "phases");
    const char *names[DGM_MAX_PHASES];
    int np = 0;
    char all[512] = "";
    for (int i = 0; i < dgm_cfg_len(phases) && np < DGM_MAX_PHASES; i++) {
        names[np] = dgm_cfg_key_at(phases, i);
        size_t l = strlen(all);
        snprintf(all + l, sizeof all - l, "%s%s", np ? ", " : "", names[np]);
        np++;
    }
    const char *model = dgm_cfg_str(dgm_cfg_get(root, "model"), "plugin");
    for (int j = 0; j < dgm_cfg_len(list); j++) {
        const dgm_config *pj = dgm_cfg_at(list, j);
        const char *p = dgm_cfg_text(pj);
        int k = -1;
        for (int i = 0; i < np && k < 0; i++)
            if (!strcmp(names[i], p))
                k = i;
        if (k < 0) {
            const char *dym = dgm_did_you_mean(p, names, np);
            return dgm_cfg_error(pj, NULL, DGM_EKEY,
                                 "head '%s': model '%s' has no phase "
                                 "'%s'%s%s%s (its phases: %s)",
                                 head, model, p, dym ? " (did you mean '" : "",
                                 dym ? dym : "", dym ? "'?)" : "", all);
        }
        for (int i = 0; i < j; i++)
            if (!strcmp(dgm_cfg_text(dgm_cfg_at(list, i)), p))
                return dgm_cfg_error(pj, NULL, DGM_EDUP,
                                     "head '%s': phase '%s' is listed twice",
                                     head, p);
        if (!dgm__objective_reads(
                dgm_cfg_get(dgm_cfg_at(phases, k), "objective"), head))
            return dgm_cfg_error(pj, NULL, DGM_ECONFIG,
                                 "head '%s': phase '%s' cannot train it: no "
                                 "term of phases.%s.objective reads '%s'",
                                 head, p, p, head);
    }
    return 0;
}

/* Check `teachers:` (a list of {name, run, output, input}), filling in
 * defaults. The runs are opened when the experiment is built
 * (run/teacher.c). */
static int validate_teachers(dgm_config *list)
{
    if (!list || dgm_cfg_kind_of(list) == DGM_CFG_NULL)
        return 0;
    if (dgm_cfg_kind_of(list) != DGM_CFG_SEQ)
        return dgm_cfg_error(list, NULL, DGM_ETYPE,
                             "`teachers:` is a list of {name, run, output, "
                             "input}");
    for (int i = 0; i < dgm_cfg_len(list); i++) {
        dgm_config *tn = (dgm_config *)dgm_cfg_at(list, i);
        if (dgm_cfg_kind_of(tn) != DGM_CFG_MAP)
            return dgm_cfg_error(tn, NULL, DGM_ETYPE,
                                 "a teacher is a map {name, run, output}");
        int rc = dgm_config_validate(tn, teacher_schema, "teachers", NULL);
        if (rc < 0)
            return rc;
        for (int j = 0; j < i; j++)
            if (!strcmp(dgm_cfg_str(tn, "name"),
                        dgm_cfg_str(dgm_cfg_at(list, j), "name")))
                return dgm_cfg_error(tn, "name", DGM_EDUP,
                                     "two teachers are named '%s'",
                                     dgm_cfg_str(tn, "name"));
    }
    return 0;
}

/* `init:`, `freeze:`, `param_groups:`, `teachers:` and `heads:`. */
static int resolve_transfer(dgm_experiment *e)
{
    dgm_config *root = e->root;
    int rc;
    if ((rc = dgm__init_validate(dgm_cfg_get_mut(root, "init"))) < 0 ||
        (rc = dgm__freeze_validate(dgm_cfg_get_mut(root, "freeze"))) < 0)
        return rc;
    dgm_config *groups = dgm_cfg_get_mut(root, "param_groups");
    if (dgm_cfg_kind_of(groups) != DGM_CFG_SEQ &&
        dgm_cfg_kind_of(groups) != DGM_CFG_NULL)
        return dgm_cfg_error(groups, NULL, DGM_ETYPE,
                             "`param_groups:` is a list of {params, "
                             "lr_mult, weight_decay, optimizer}");
    for (int i = 0; i < dgm_cfg_len(groups); i++) {
        dgm_config *gn = (dgm_config *)dgm_cfg_at(groups, i);
        if (dgm_cfg_kind_of(gn) != DGM_CFG_MAP)
            return dgm_cfg_error(gn, NULL, DGM_ETYPE,
                                 "a parameter group is a map with `params:`");
        if ((rc = dgm_config_validate(gn, group_schema, "param_groups",
                                      NULL)) < 0)
            return rc;
        const dgm_config *ps = dgm_cfg_get(gn, "params");
        if (dgm_cfg_kind_of(ps) != DGM_CFG_SCALAR &&
            dgm_cfg_kind_of(ps) != DGM_CFG_SEQ)
            return dgm_cfg_error(gn, "params", DGM_ETYPE,
                                 "a glob or a list of globs");
        dgm_config *opt = dgm_cfg_get_mut(gn, "optimizer");
        if (opt && dgm_cfg_kind_of(opt) != DGM_CFG_NULL &&
            (rc = validate_plugin(e->reg, opt, DGM_KIND_OPTIMIZER,
                                  dgm__optimizer_host_keys)) < 0)
            return rc;
    }
    if ((rc = validate_teachers(dgm_cfg_get_mut(root, "teachers"))) < 0)
        return rc;
    dgm_config *heads = dgm_cfg_get_mut(root, "heads");
    if (dgm_cfg_kind_of(heads) != DGM_CFG_SEQ &&
        dgm_cfg_kind_of(heads) != DGM_CFG_NULL)
        return dgm_cfg_error(heads, NULL, DGM_ETYPE,
                             "`heads:` is a list of {name, input, block, "
                             "out, detach, phases}");
    /* Heads and teachers each add a named tensor to the step's; x, y and
     * y_mask and a model's few outputs need room too. */
    const dgm_config *teachers = dgm_cfg_get(root, "teachers");
    int n_teachers =
        dgm_cfg_kind_of(teachers) == DGM_CFG_SEQ ? dgm_cfg_len(teachers) : 0;
    int n_heads = dgm_cfg_len(heads);
    int cap = DGM_MAX_VARS / 2;
    if (n_heads + n_teachers > cap)
        return dgm_cfg_error(n_heads > cap
                                 ? dgm_cfg_at(heads, cap)
                                 : dgm_cfg_at(teachers, cap - n_heads),
                             NULL, DGM_ERANGE,
                             "%d heads and %d teachers; together at most %d "
                             "(half of DGM_MAX_VARS, the named tensors of "
                             "a step)",
                             n_heads, n_teachers, cap);
    for (int i = 0; i < dgm_cfg_len(heads); i++) {
        dgm_config *hn = (dgm_config *)dgm_cfg_at(heads, i);
        if (dgm_cfg_kind_of(hn) != DGM_CFG_MAP)
            return dgm_cfg_error(hn, NULL, DGM_ETYPE,
                                 "a head is a map {name, input, block}");
        if ((rc = dgm_config_validate(hn, head_schema, "heads", NULL)) < 0 ||
            (rc = validate_plugin(e->reg, dgm_cfg_get_mut(hn, "block"),
                                  DGM_KIND_BLOCK, NULL)) < 0 ||
            (rc = validate_head_phases(root, hn)) < 0)
            return rc;
        for (int j = 0; j < i; j++)
            if (!strcmp(dgm_cfg_str(hn, "name"),
                        dgm_cfg_str(dgm_cfg_at(heads, j), "name")))
                return dgm_cfg_error(hn, "name", DGM_EDUP,
                                     "two heads are named '%s'",
                                     dgm_cfg_str(hn, "name"));
    }
    return 0;
}

int64_t dgm__experiment_total_steps(const dgm_config *root,
                                    int64_t steps_per_epoch)
{
    const dgm_config *tr = dgm_cfg_get(root, "train");
    int64_t steps = dgm_cfg_int(tr, "steps");
    if (steps > 0)
        return steps;
    return steps_per_epoch > 0 ? dgm_cfg_int(tr, "epochs") * steps_per_epoch
                               : -1;
}

int dgm__experiment_check_schedules(const dgm_config *root,
                                    int64_t steps_per_epoch)
{
    int64_t total = dgm__experiment_total_steps(root, steps_per_epoch);
    if (total < 0)
        return 0;
    const dgm_config *phases = dgm_cfg_get(root, "phases");
    for (int i = 0; i < dgm_cfg_len(phases); i++) {
        const dgm_config *pn = dgm_cfg_at(phases, i);
        dgm__schedule s;
        int64_t updates = total * dgm_cfg_int(pn, "repeat");
        int rc = dgm__schedule_from_config(&s, dgm_cfg_get(pn, "optimizer"),
                                           updates);
        if (rc < 0)
            return rc;
        const dgm_config *obj = dgm_cfg_get(pn, "objective");
        for (int t = 0; t < dgm_cfg_len(obj); t++) {
            const dgm_config *w = dgm_cfg_get(dgm_cfg_at(obj, t), "weight");
            double v;
            if (dgm_cfg_kind_of(w) == DGM_CFG_MAP &&
                (rc = dgm__weight_schedule_from_config(&s, &v, w, updates)) < 0)
                return rc;
        }
    }
    return 0;
}

/* plugin_path entries are made absolute in the tree itself, so that the
 * run's config.yaml finds the plugins from any working directory. */
static int add_plugin_paths(dgm_experiment *e)
{
    dgm_config *pp = dgm_cfg_get_mut(e->root, "plugin_path");
    for (int i = 0; pp && i < dgm_cfg_len(pp); i++) {
        dgm_config *dir = (dgm_config *)dgm_cfg_at(pp, i);
        int rc = dgm_cfg_absolute_path(dir);
        if (rc < 0 ||
            (rc = dgm_registry_add_dir(e->reg, dgm_cfg_text(dir))) < 0)
            return rc;
    }
    if (pp && dgm_cfg_len(pp) > 0)
        return dgm_registry_scan(e->reg) < 0 ? dgm_last_code() : 0;
    return 0;
}

static int resolve(dgm_experiment *e)
{
    dgm_config *root = e->root;
    if (dgm_cfg_kind_of(root) != DGM_CFG_MAP)
        return dgm_cfg_error(root, NULL, DGM_ECONFIG,
                             "an experiment is a map (name, data, model, "
                             "...)");
    int rc = dgm_config_validate(root, experiment_schema, "experiment", NULL);
    if (rc < 0)
        return rc;
    if ((rc = add_plugin_paths(e)) < 0)
        return rc;
    dgm_config *train = dgm_cfg_get_mut(root, "train");
    if (dgm_cfg_kind_of(train) != DGM_CFG_MAP)
        return dgm_cfg_error(train, NULL, DGM_ETYPE, "`train:` is a map");
    if ((rc = dgm_config_validate(train, train_schema, "train", NULL)) < 0)
        return rc;
    if ((rc = validate_plugin(e->reg, dgm_cfg_get_mut(root, "data"),
                              DGM_KIND_DATASET, dgm__dataset_host_keys)) < 0 ||
        (rc = read_prefetch(e, dgm_cfg_get(root, "data"))) < 0 ||
        (rc = validate_plugin_list(e->reg, dgm_cfg_get_mut(root, "augment"),
                                   DGM_KIND_AUGMENT)) < 0 ||
        (rc = validate_plugin(e->reg, dgm_cfg_get_mut(root, "model"),
                              DGM_KIND_MODEL, NULL)) < 0 ||
        (rc = validate_plugin_list(e->reg, dgm_cfg_get_mut(root, "metrics"),
                                   DGM_KIND_METRIC)) < 0)
        return rc;
    const dgm_config *met = dgm_cfg_get(root, "metrics");
    for (int i = 0; i < dgm_cfg_len(met); i++)
        if ((rc = dgm__corrupt_check(
                 dgm_cfg_get(dgm_cfg_at(met, i), "corrupt"))) < 0 ||
            (rc = dgm__gap_check(e->reg, dgm_cfg_at(met, i))) < 0)
            return rc;
    const dgm_config *top_opt = dgm_cfg_get(root, "optimizer");
    if (top_opt && dgm_cfg_kind_of(top_opt) != DGM_CFG_NULL &&
        (rc = validate_plugin(e->reg, (dgm_config *)top_opt,
                              DGM_KIND_OPTIMIZER,
                              dgm__optimizer_host_keys)) < 0)
        return rc;
    if ((rc = resolve_phases(e)) < 0 || (rc = resolve_transfer(e)) < 0 ||
        (rc = dgm__experiment_check_schedules(root, -1)) < 0)
        return rc;
    e->name = dgm_cfg_str(root, "name");
    e->seed = (uint64_t)dgm_cfg_int(root, "seed");
    e->threads = (int)dgm_cfg_int(root, "threads");
    return 0;
}

int dgm_experiment_from_config(dgm_experiment **out, dgm_registry *reg,
                               dgm_config *root)
{
    *out = NULL;
    dgm_experiment *e = calloc(1, sizeof *e);
    if (!e) {
        dgm_config_free(root);
        return dgm_error(DGM_ENOMEM, "experiment: out of memory");
    }
    e->reg = reg;
    e->root = root;
    int rc = resolve(e);
    if (rc < 0) {
        dgm_experiment_free(e);
        return rc;
    }
    *out = e;
    return 0;
}

int dgm_experiment_load(dgm_experiment **out, dgm_registry *reg,
                        const char *path, const char *const *overrides,
                        int n_overrides)
{
    *out = NULL;
    dgm_config *root;
    int rc = dgm_config_load(&root, path);
    if (rc < 0)
        return rc;
    for (int i = 0; i < n_overrides; i++) {
        rc = dgm_config_override(root, overrides[i]);
        if (rc < 0) {
            dgm_config_free(root);
            return rc;
        }
    }
    return dgm_experiment_from_config(out, reg, root);
}

const dgm_config *dgm_experiment_config(const dgm_experiment *e)
{
    return e->root;
}

/* Experiments built and not yet freed. The thread count is the process's
 * (OpenMP, oneDNN), so only an experiment built while none other is alive
 * sets it: one built inside it (a teacher, the classifier run of a feature
 * metric, `dgm eval`'s metrics) must not change a running training's. */
static atomic_int live_experiments;

void dgm__experiment_set_live(dgm_experiment *e)
{
    if (e->live)
        return;
    e->live = true;
    if (atomic_fetch_add(&live_experiments, 1) == 0)
        dgm_set_threads(e->threads);
}

int dgm__experiment_add_provider(dgm_experiment *e, const dgm__provider *p)
{
    if (e->n_providers == DGM_MAX_PROVIDERS) {
        if (p->close)
            p->close(p->self);
        return dgm_error(DGM_ERANGE, "experiment: more than %d providers",
                         DGM_MAX_PROVIDERS);
    }
    e->providers[e->n_providers++] = *p;
    return 0;
}

void dgm_experiment_free(dgm_experiment *e)
{
    if (!e)
        return;
    if (e->live)
        atomic_fetch_sub(&live_experiments, 1);
    dgm__corrupt_free(e);
    dgm__gap_free(e);
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
    for (int i = e->n_providers - 1; i >= 0; i--)
        if (e->providers[i].close)
            e->providers[i].close(e->providers[i].self);
    free(e->heads);
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
