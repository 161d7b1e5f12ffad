/* teacher.c - `teachers:`: trained runs whose outputs join a training
 * step's named tensors as constants, so a student can match a frozen
 * teacher (the `distill` loss) whatever the two models are. Each teacher
 * is a run directory opened as for `dgm eval` (config.yaml and the last
 * checkpoint), run in eval mode on the batch, never updated. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/error.h"
#include "eval_internal.h"
#include "teacher.h"

typedef struct teacher {
    const char *name, *run, *output, *input;
    const dgm_config *cfg; /* its map in `teachers:` */
    dgm_run *r;
} teacher;

struct dgm__teachers {
    int n;
    teacher *t;
};

static const dgm_param_spec teacher_schema[] = {
    DGM_PARAM_STRING("name", .help = "the output's name in the student's named "
                                     "tensors (objective inputs)"),
    DGM_PARAM_STRING(
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

int dgm__teachers_validate(dgm_config *list)
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

void dgm__teachers_close(dgm__teachers *ts)
{
    if (!ts)
        return;
    for (int i = 0; i < ts->n; i++)
        dgm_run_close(ts->t[i].r);
    free(ts->t);
    free(ts);
}

/* The teacher's eval-mode forward on x; *out is its output, valid until
 * the teacher's next forward. */
static int teacher_forward(teacher *t, const dgm_tensor *x,
                           const dgm_tensor **out)
{
    dgm_experiment *te = dgm_run_experiment(t->r);
    const dgm_data_info *info = dgm_run_data_info(t->r);
    char a[128], b[128];
    if (x->ndim != info->x_shape.ndim + 1 || x->dtype != info->x_dtype ||
        memcmp(x->shape + 1, info->x_shape.dim,
               sizeof(int64_t) * (size_t)info->x_shape.ndim) != 0)
        return dgm_cfg_error(
            t->cfg, "input", DGM_ESHAPE,
            "teacher '%s': '%s' is %s, the teacher (%s) "
            "takes examples %s %s",
            t->name, t->input, dgm_tensor_describe(x, a, sizeof a), t->run,
            dgm_shape_str(info->x_shape.ndim, info->x_shape.dim, b, sizeof b),
            dgm_dtype_name(info->x_dtype));
    dgm_eval *ev = dgm__run_eval(t->r);
    dgm_step *s = dgm__eval_empty_step(ev);
    dgm__vars_clear(&ev->io);
    int rc = dgm_vars_set(&ev->io, "x", dgm_input(s->g, (dgm_tensor *)x));
    const dgm_model_iface *mi = te->model.desc->iface.model;
    if (rc == 0 && (rc = mi->forward(te->model.self, s, 0, &ev->io)) < 0)
        return dgm_error_context("teacher '%s' (%s, model '%s'): ", t->name,
                                 t->run, te->model.desc->name);
    if (rc < 0)
        return rc;
    dgm_var *v = dgm_vars_get(&ev->io, t->output);
    if (!v) {
        char have[512] = "";
        for (int k = 0; k < dgm_vars_count(&ev->io); k++) {
            size_t l = strlen(have);
            snprintf(have + l, sizeof have - l, "%s%s", k ? ", " : "",
                     dgm_vars_name_at(&ev->io, k));
        }
        return dgm_cfg_error(t->cfg, "output", DGM_ENOTFOUND,
                             "teacher '%s': model '%s' of %s has no output "
                             "'%s' (it has: %s)",
                             t->name, te->model.desc->name, t->run, t->output,
                             have);
    }
    const dgm_tensor *o = dgm_value(v);
    if (o->ndim < 1 || o->shape[0] != x->shape[0])
        return dgm_cfg_error(t->cfg, "output", DGM_ESHAPE,
                             "teacher '%s': output '%s' is %s, not one row "
                             "per example",
                             t->name, t->output,
                             dgm_tensor_describe(o, a, sizeof a));
    *out = o;
    return 0;
}

/* Open every teacher and try it on one example of the student's data, so
 * a wrong run, output or data set is refused before training starts. */
int dgm__teachers_open(dgm__teachers **out, dgm_registry *reg,
                       const dgm_config *list, const dgm_data_info *student,
                       const dgm_tensor *example)
{
    *out = NULL;
    int n = dgm_cfg_kind_of(list) == DGM_CFG_SEQ ? dgm_cfg_len(list) : 0;
    if (n == 0)
        return 0;
    dgm__teachers *ts = calloc(1, sizeof *ts);
    if (!ts || !(ts->t = calloc((size_t)n, sizeof *ts->t))) {
        free(ts);
        return dgm_error(DGM_ENOMEM, "teachers: out of memory");
    }
    /* a run named as its own teacher (or a cycle) would open forever */
    static int depth = 0;
    if (depth >= DGM_MAX_TEACHER_DEPTH) {
        dgm__teachers_close(ts);
        return dgm_cfg_error(list, NULL, DGM_ECONFIG,
                             "teachers nested more than %d deep (a run that "
                             "is its own teacher?)",
                             DGM_MAX_TEACHER_DEPTH);
    }
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        teacher *t = &ts->t[ts->n];
        const dgm_config *tc = dgm_cfg_at(list, i);
        t->cfg = tc;
        t->name = dgm_cfg_str(tc, "name");
        t->run = dgm_cfg_str(tc, "run");
        t->output = dgm_cfg_str(tc, "output");
        t->input = dgm_cfg_str(tc, "input");
        depth++;
        rc = dgm_run_open(&t->r, reg, t->run);
        depth--;
        if (rc < 0) {
            rc = dgm_cfg_error(tc, "run", dgm_last_code(), "teacher '%s': %s",
                               t->name, dgm_last_error());
            break;
        }
        ts->n++;
        const dgm_data_info *ti = dgm_run_data_info(t->r);
        /* a teacher fed the batch's x must have learned on the same scale */
        if (!strcmp(t->input, "x") &&
            (ti->x_min != student->x_min || ti->x_max != student->x_max)) {
            rc = dgm_cfg_error(tc, "run", DGM_ECONFIG,
                               "teacher '%s': %s was trained on x in [%g, "
                               "%g], this data set gives [%g, %g] (set "
                               "data.scale to match)",
                               t->name, t->run, (double)ti->x_min,
                               (double)ti->x_max, (double)student->x_min,
                               (double)student->x_max);
            break;
        }
        const dgm_tensor *o;
        if (!strcmp(t->input, "x") && example)
            rc = teacher_forward(t, example, &o);
    }
    if (rc < 0) {
        dgm__teachers_close(ts);
        return rc;
    }
    *out = ts;
    return 0;
}

int dgm__teachers_forward(dgm_experiment *e, int phase, dgm_graph *g,
                          dgm_vars *io)
{
    dgm__teachers *ts = e->teachers;
    for (int i = 0; ts && i < ts->n; i++) {
        teacher *t = &ts->t[i];
        if (!dgm__phase_reads(&e->phases[phase], t->name) ||
            dgm_vars_get(io, t->name))
            continue;
        dgm_var *in = dgm_vars_get(io, t->input);
        if (!in)
            return dgm_cfg_error(t->cfg, "input", DGM_ENOTFOUND,
                                 "teacher '%s': no tensor '%s' in phase "
                                 "'%s'",
                                 t->name, t->input, e->phases[phase].name);
        const dgm_tensor *o;
        int rc = teacher_forward(t, dgm_value(in), &o);
        if (rc < 0)
            return rc;
        /* a constant of this step: copied into the student's arena */
        dgm_tensor *c =
            dgm_arena_tensor(dgm_graph_arena(g), o->dtype, o->ndim, o->shape);
        if (!c)
            return dgm_error(DGM_ENOMEM, "teacher '%s': out of memory",
                             t->name);
        if ((rc = dgm_tensor_copy(c, o)) < 0 ||
            (rc = dgm_vars_set(io, t->name, dgm_input(g, c))) < 0)
            return dgm_error_context("teacher '%s': ", t->name);
    }
    return 0;
}
