/* teacher.c - `teachers:`: trained runs whose outputs join a training
 * step's named tensors as constants, so a student can match a frozen
 * teacher (the `distill` loss) whatever the two models are. Each teacher
 * is a run directory opened as for `dgm eval` (config.yaml and the last
 * checkpoint), run in eval mode on the batch, never updated. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/error.h"
#include "run_internal.h"

typedef struct teacher {
    const char *name, *run, *output, *input;
    const dgm_config *cfg; /* its map in `teachers:` */
    dgm_run *r;
} teacher;

typedef struct teachers {
    int n;
    teacher *t;
} teachers;

static void teachers_close(void *self)
{
    teachers *ts = self;
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
    int rc = dgm__run_forward(t->r, x, t->output, out);
    if (rc == DGM_ENOTFOUND || rc == DGM_ESHAPE)
        return dgm_cfg_error(t->cfg, "output", rc, "teacher '%s' (%s): %s",
                             t->name, t->run, dgm_last_error());
    return rc < 0 ? dgm_error_context("teacher '%s' (%s): ", t->name, t->run)
                  : 0;
}

/* Open every teacher and try it on one example of the student's data, so
 * a wrong run, output or data set is refused before training starts. */
static int teachers_forward(void *self, dgm_experiment *e, int phase,
                            dgm_graph *g, dgm_vars *io);

/* The hook's open (dgm__teacher_opener): a run that names itself as a
 * teacher, through any chain, is refused by dgm_run_open. */
static int teachers_open(dgm_experiment *e, const dgm_config *list,
                         const dgm_tensor *example, dgm__provider *out)
{
    const dgm_data_info *student = &e->info;
    dgm_registry *reg = e->reg;
    int n = dgm_cfg_kind_of(list) == DGM_CFG_SEQ ? dgm_cfg_len(list) : 0;
    teachers *ts = calloc(1, sizeof *ts);
    if (!ts || !(ts->t = calloc((size_t)(n ? n : 1), sizeof *ts->t))) {
        free(ts);
        return dgm_error(DGM_ENOMEM, "teachers: out of memory");
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
        rc = dgm_run_open(&t->r, reg, t->run);
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
        teachers_close(ts);
        return rc;
    }
    *out = (dgm__provider){
        .self = ts, .forward = teachers_forward, .close = teachers_close};
    return 0;
}

/* The teachers' provider: the output of each teacher the phase reads and
 * io lacks, a constant of the step. */
static int teachers_forward(void *self, dgm_experiment *e, int phase,
                            dgm_graph *g, dgm_vars *io)
{
    teachers *ts = self;
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

static const dgm__teacher_opener opener = {.open = teachers_open};

/* Why a constructor: see dgm__teachers_hook (host_internal.h). */
__attribute__((constructor)) static void install_hook(void)
{
    dgm__teachers_hook = &opener;
}
