/* trainer.c - the training loop: batches, phases, objectives, updates,
 * logging, evaluation, samples, checkpoints and the run directory. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "checkpoint.h"
#include "dgm/error.h"
#include "dgm/io.h"
#include "eval_internal.h"
#include "rundir.h"
#include "transfer.h"

typedef struct trainer {
    dgm_experiment *e;
    dgm__rundir rd;
    dgm_graph *g;
    dgm_tensor *x, *y, *ym;
    dgm_tensor xv, yv, mv;
    int64_t *perm;
    int64_t perm_epoch;
    int64_t n_train, spe, total;
    dgm__train_state st;
    bool tty;
    int64_t log_every, eval_every, ckpt_every, sample_every, n_samples;
    double last_loss;
    int64_t stop_after;
    dgm_var **terms; /* one per term of the phase with the most */
    /* {figure: "lower"|"higher"|"none"} of the last evaluation, as the
     * metrics declare them, for summary.json */
    json_t *better;
} trainer;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void epoch_order(trainer *t, int64_t epoch)
{
    if (t->perm_epoch == epoch)
        return;
    for (int64_t i = 0; i < t->n_train; i++)
        t->perm[i] = i;
    if (t->e->shuffle) {
        /* The order of epoch k depends on the seed and k only, so a resumed
         * run sees the batches an uninterrupted one would. */
        dgm_rng master, r;
        dgm_rng_seed(&master, t->e->seed);
        dgm_rng_fork(&r, &master, 1000 + (uint64_t)epoch);
        dgm_rng_shuffle(&r, t->perm, t->n_train);
    }
    t->perm_epoch = epoch;
}

static int load_batch(trainer *t, int64_t *n_out)
{
    dgm_experiment *e = t->e;
    int64_t epoch = t->st.step / t->spe, pos = t->st.step % t->spe;
    epoch_order(t, epoch);
    int64_t start = pos * e->batch_size;
    int64_t n = t->n_train - start < e->batch_size ? t->n_train - start
                                                   : e->batch_size;
    dgm__rows_view(&t->xv, t->x, n);
    dgm_batch b = {.n = n, .x = &t->xv};
    if (t->y) {
        dgm__rows_view(&t->yv, t->y, n);
        dgm__rows_view(&t->mv, t->ym, n);
        dgm_tensor_fill(&t->mv, 1.0);
        b.y = &t->yv;
        b.y_mask = &t->mv;
    }
    const dgm_dataset_iface *di = e->data.desc->iface.dataset;
    int rc = di->get(e->data.self, DGM_SPLIT_TRAIN, t->perm + start, &b,
                     &e->rng_data);
    if (rc < 0)
        return dgm_error_context("dataset '%s': ", e->data.desc->name);
    for (int i = 0; i < e->n_augments; i++) {
        const dgm_augment_iface *ai = e->augments[i].desc->iface.augment;
        if (ai->apply &&
            (rc = ai->apply(e->augments[i].self, &t->xv, &e->rng_aug)) < 0)
            return dgm_error_context("augment '%s': ",
                                     e->augments[i].desc->name);
    }
    *n_out = n;
    return 0;
}

/* While phase p trains, every weight outside it is treated as frozen, so
 * backward spends nothing on the other networks' gradients. */
static void mask_to_phase(dgm_experiment *e, int p, bool *saved, bool on)
{
    int np = dgm_params_count(e->params);
    if (e->n_phases < 2)
        return;
    for (int k = 0; k < np; k++) {
        dgm_param *q = dgm_params_at(e->params, k);
        /* buffers keep their own flag (freeze_bn_stats) */
        if (q->role != DGM_ROLE_WEIGHT)
            continue;
        if (on) {
            saved[k] = q->frozen;
            q->frozen = true;
        } else {
            q->frozen = saved[k];
        }
    }
    if (on)
        for (int k = 0; k < e->phases[p].n_params; k++) {
            dgm_param *q = e->phases[p].params[k];
            for (int j = 0; j < np; j++)
                if (dgm_params_at(e->params, j) == q)
                    q->frozen = saved[j];
        }
}

static int train_phase(trainer *t, int p, json_t *log_terms, bool *saved)
{
    dgm_experiment *e = t->e;
    dgm__phase *ph = &e->phases[p];
    const dgm_model_iface *mi = e->model.desc->iface.model;
    for (int r = 0; r < ph->repeat; r++) {
        dgm_graph *g = t->g;
        dgm_graph_reset(g);
        dgm_graph_set_training(g, true);
        dgm_graph_set_grad(g, true);
        dgm_graph_set_rng(g, &e->rng_step);
        dgm_step s = {.g = g, .rng = &e->rng_step, .step = t->st.step,
                      .training = true, .host_ = e};
        dgm_vars io = {0};
        int rc = dgm_vars_set(&io, "x", dgm_input(g, &t->xv));
        if (rc == 0 && t->y)
            rc = dgm_vars_set(&io, "y", dgm_input(g, &t->yv));
        if (rc == 0 && t->y)
            rc = dgm_vars_set(&io, "y_mask", dgm_input(g, &t->mv));
        if (rc < 0)
            return rc;
        mask_to_phase(e, p, saved, true);
        rc = mi->forward(e->model.self, &s, p, &io);
        if (rc < 0) {
            mask_to_phase(e, p, saved, false);
            return dgm_error_context("model '%s', phase '%s', step %lld: ",
                                     e->model.desc->name, ph->name,
                                     (long long)t->st.step);
        }
        dgm_var *total, **terms = t->terms;
        rc = dgm__objective(e, p, g, &io, false, &total, terms);
        if (rc < 0) {
            mask_to_phase(e, p, saved, false);
            return rc;
        }
        for (int i = 0; i < ph->n_terms; i++) {
            double v = dgm_tensor_get(dgm_value(terms[i]), 0);
            if (!isfinite(v)) {
                mask_to_phase(e, p, saved, false);
                return dgm_error(DGM_EDIVERGED,
                                 "step %lld, phase '%s': loss term '%s' "
                                 "(#%d) is %s",
                                 (long long)t->st.step, ph->name,
                                 ph->terms[i].label, i + 1,
                                 isnan(v) ? "nan" : "infinite");
            }
            if (log_terms && r == ph->repeat - 1) {
                char key[160];
                snprintf(key, sizeof key, "%s%s%s",
                         e->n_phases > 1 ? ph->name : "",
                         e->n_phases > 1 ? "/" : "", ph->terms[i].label);
                json_object_set_new(log_terms, key, json_real(v));
                /* A scheduled weight is logged beside its term. */
                if (ph->terms[i].scheduled) {
                    char wkey[170];
                    snprintf(wkey, sizeof wkey, "weight/%s", key);
                    json_object_set_new(log_terms, wkey,
                                        json_real(dgm__term_weight(
                                            &ph->terms[i], ph->updates)));
                }
            }
        }
        for (int k = 0; k < ph->n_params; k++)
            if (ph->params[k]->grad)
                dgm_tensor_fill(ph->params[k]->grad, 0.0);
        rc = dgm_backward(g, total);
        mask_to_phase(e, p, saved, false);
        if (rc < 0)
            return dgm_error_context("backward, phase '%s': ", ph->name);
        if (ph->sched.clip_norm > 0)
            dgm__clip_grad_norm(ph->params, ph->n_params, ph->sched.clip_norm);
        double lr = dgm__schedule_lr(&ph->sched, ph->base_lr, ph->updates);
        const dgm_optimizer_iface *oi = ph->opt.desc->iface.optimizer;
        rc = oi->step(ph->opt.self, ph->rest, ph->n_rest, lr,
                      ph->updates + 1);
        if (rc < 0)
            return dgm_error_context("optimizer '%s': ", ph->opt.desc->name);
        /* param_groups: the phase's schedule, on the group's base rate,
         * times the group's multiplier. */
        for (int k = 0; k < ph->n_groups; k++) {
            dgm__group *gr = &ph->groups[k];
            double glr = dgm__schedule_lr(&ph->sched, gr->base_lr,
                                          ph->updates) *
                         gr->lr_mult;
            const dgm_optimizer_iface *gi = gr->opt.desc->iface.optimizer;
            if (gi->step(gr->opt.self, gr->params, gr->n_params, glr,
                         ph->updates + 1) < 0)
                return dgm_error_context("optimizer '%s' of param_groups[%d]"
                                         ": ",
                                         gr->opt.desc->name, gr->index);
        }
        ph->updates++;
        if (mi->after_update && mi->after_update(e->model.self, &s, p) < 0)
            return dgm_error_context("model '%s', after the '%s' update: ",
                                     e->model.desc->name, ph->name);
        t->last_loss = dgm_tensor_get(dgm_value(total), 0);
        if (log_terms) {
            json_object_set_new(log_terms,
                                e->n_phases > 1 ? ph->name : "loss",
                                json_real(t->last_loss));
            json_object_set_new(log_terms, "lr", json_real(lr));
        }
    }
    return 0;
}

static int write_samples(trainer *t, dgm_eval *ev, const char *tag)
{
    dgm_experiment *e = t->e;
    if (t->n_samples <= 0 || e->info.x_shape.ndim < 2 ||
        e->info.x_dtype != DGM_F32)
        return 0;
    char rel[128], f[2400];
    dgm_var *out;
    int rc = dgm_eval_sample(ev, dgm__eval_empty_step(ev), t->n_samples,
                             &out);
    if (rc == DGM_EUNSUPPORTED)
        return 0;
    if (rc < 0)
        return rc;
    snprintf(rel, sizeof rel, "samples/samples_%s.png", tag);
    int nrow = (int)ceil(sqrt((double)t->n_samples));
    rc = dgm_png_write_grid(dgm__rundir_file(&t->rd, rel, f, sizeof f),
                            dgm_value(out), nrow, e->info.x_min,
                            e->info.x_max);
    if (rc < 0)
        return rc;
    /* Reconstructions: the first test images above their reconstructions. */
    int64_t n = e->info.size[DGM_SPLIT_TEST] < 32 ? e->info.size[DGM_SPLIT_TEST]
                                                  : 32;
    const dgm_model_iface *mi = e->model.desc->iface.model;
    if (n < 1 || !mi->reconstruct)
        return 0;
    dgm_step *s;
    dgm_vars *io;
    if ((rc = dgm_eval_batch(ev, DGM_SPLIT_TEST, 0, n, &s, &io)) < 0 ||
        (rc = dgm_eval_reconstruct(ev, s, dgm_vars_get(io, "x"), &out)) < 0)
        return rc;
    dgm_var *both[2] = {dgm_vars_get(io, "x"), out};
    dgm_var *grid = dgm_concat(s->g, both, 2, 0);
    if (!grid)
        return dgm_last_code();
    snprintf(rel, sizeof rel, "samples/recon_%s.png", tag);
    return dgm_png_write_grid(dgm__rundir_file(&t->rd, rel, f, sizeof f),
                              dgm_value(grid), (int)n, e->info.x_min,
                              e->info.x_max);
}

static int mid_samples(trainer *t)
{
    dgm_eval *ev;
    int rc = dgm__eval_new(&ev, t->e, t->e->seed ^ 0x5a3b1e5ULL);
    if (rc < 0)
        return rc;
    char tag[32];
    snprintf(tag, sizeof tag, "%06lld", (long long)t->st.step);
    rc = write_samples(t, ev, tag);
    dgm__eval_free(ev);
    return rc;
}

static int evaluate(trainer *t, json_t **figures)
{
    dgm_eval *ev;
    int rc = dgm__eval_new(&ev, t->e, t->e->seed ^ 0x5eed5eedULL);
    if (rc < 0)
        return rc;
    ev->at_step = t->st.step;
    dgm_results res = {0};
    rc = dgm__eval_metrics(ev, &res);
    if (rc == 0) {
        json_t *obj = json_object(), *better = json_object();
        for (int i = 0; i < res.n; i++) {
            json_object_set_new(obj, res.name[i], json_real(res.value[i]));
            const char *b = dgm_better_name(res.better[i]);
            if (b) /* undeclared figures are left to compare's guess */
                json_object_set_new(better, res.name[i], json_string(b));
        }
        *figures = obj;
        json_decref(t->better);
        t->better = better;
    }
    dgm__results_clear(&res);
    dgm__eval_free(ev);
    return rc;
}

/* runs/<name>/latest -> the newest run's folder, so an experiment can
 * name a run it builds on (`init: [{path: runs/NAME/latest}]`). Best
 * effort: a file system without symlinks only loses the convenience. */
static void link_latest(const dgm__rundir *rd)
{
    char parent[2048], link[2100], tmp[2200];
    snprintf(parent, sizeof parent, "%s", rd->path);
    char *slash = strrchr(parent, '/');
    if (!slash)
        return;
    *slash = '\0';
    snprintf(link, sizeof link, "%s/latest", parent);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", link, (long)getpid());
    unlink(tmp);
    if (symlink(slash + 1, tmp) == 0 && rename(tmp, link) != 0)
        unlink(tmp);
}

static int checkpoint(trainer *t)
{
    char f[2400];
    return dgm__checkpoint_save(
        t->e, dgm__rundir_file(&t->rd, "checkpoints/last.safetensors", f,
                               sizeof f),
        &t->st);
}

static void progress(trainer *t, double t0, int64_t step0)
{
    double el = now_s() - t0;
    double sps = el > 0 ? (double)(t->st.step - step0) / el : 0;
    double eta = sps > 0 ? (double)(t->total - t->st.step) / sps : 0;
    int64_t epoch = (t->st.step - 1) / t->spe + 1;
    char line[256];
    snprintf(line, sizeof line,
             "epoch %lld step %lld/%lld loss %.4f | %.1f steps/s | ETA "
             "%d:%02d",
             (long long)epoch, (long long)t->st.step, (long long)t->total,
             t->last_loss, sps, (int)eta / 60, (int)eta % 60);
    if (t->rd.quiet)
        return;
    if (t->tty) {
        int width = 24, done = (int)(width * t->st.step / t->total);
        fprintf(stderr, "\r[%.*s%*s] %s\033[K", done,
                "########################", width - done, "", line);
        fflush(stderr);
    } else if (t->st.step % t->log_every == 0 || t->st.step == t->total) {
        fprintf(stderr, "%s\n", line);
    }
}

static int run_loop(trainer *t)
{
    dgm_experiment *e = t->e;
    int np = dgm_params_count(e->params);
    bool *saved = calloc((size_t)(np ? np : 1), sizeof *saved);
    if (!saved)
        return dgm_error(DGM_ENOMEM, "out of memory");
    double t0 = now_s(), base_time = t->st.train_time;
    int64_t step0 = t->st.step;
    int rc = 0;
    int64_t end = t->stop_after > 0 && t->stop_after < t->total
                      ? t->stop_after
                      : t->total;
    while (t->st.step < end) {
        int64_t n;
        if ((rc = load_batch(t, &n)) < 0)
            break;
        /* JSON only on logged steps: the others allocate nothing. */
        int64_t next = t->st.step + 1;
        bool logged = next % t->log_every == 0 || next == t->total;
        json_t *terms = logged ? json_object() : NULL;
        for (int p = 0; p < e->n_phases && rc == 0; p++)
            rc = train_phase(t, p, terms, saved);
        if (rc < 0) {
            json_decref(terms);
            break;
        }
        t->st.step++;
        t->st.train_time = base_time + (now_s() - t0);
        if (logged) {
            json_object_set_new(terms, "step", json_integer(t->st.step));
            json_object_set_new(terms, "epoch",
                                json_real((double)t->st.step /
                                          (double)t->spe));
            json_object_set_new(terms, "time", json_real(t->st.train_time));
            dgm__rundir_metrics(&t->rd, terms);
        }
        progress(t, t0, step0);
        bool epoch_end = t->st.step % t->spe == 0;
        if ((t->ckpt_every ? t->st.step % t->ckpt_every == 0 : epoch_end) &&
            t->st.step != t->total && (rc = checkpoint(t)) < 0)
            break;
        if (t->sample_every && t->st.step % t->sample_every == 0 &&
            t->st.step != t->total && (rc = mid_samples(t)) < 0)
            break;
        if (t->eval_every && t->st.step % t->eval_every == 0 &&
            t->st.step != t->total) {
            json_t *fig = NULL;
            if ((rc = evaluate(t, &fig)) < 0)
                break;
            json_t *line = json_object();
            json_object_set_new(line, "step", json_integer(t->st.step));
            json_object_set_new(line, "eval", fig);
            dgm__rundir_metrics(&t->rd, line);
        }
    }
    if (t->tty && !t->rd.quiet)
        fprintf(stderr, "\n");
    free(saved);
    return rc;
}

static int setup(trainer *t, const dgm_run_options *o)
{
    dgm_experiment *e = t->e;
    const dgm_config *tr = dgm_cfg_get(e->root, "train");
    t->n_train = e->info.size[DGM_SPLIT_TRAIN];
    t->spe = dgm__steps_per_epoch(e);
    t->total = dgm__experiment_total_steps(e->root, t->spe);
    t->log_every = dgm_cfg_int(tr, "log_every");
    t->eval_every = dgm_cfg_int(tr, "eval_every");
    t->ckpt_every = dgm_cfg_int(tr, "checkpoint_every");
    t->sample_every = dgm_cfg_int(tr, "sample_every");
    t->n_samples = dgm_cfg_int(tr, "samples");
    t->tty = !o->quiet && isatty(2);
    t->perm_epoch = -1;
    t->perm = malloc(sizeof *t->perm * (size_t)t->n_train);
    t->g = dgm_graph_new();
    int max_terms = 1;
    for (int p = 0; p < e->n_phases; p++)
        if (e->phases[p].n_terms > max_terms)
            max_terms = e->phases[p].n_terms;
    t->terms = calloc((size_t)max_terms, sizeof *t->terms);
    if (!t->perm || !t->g || !t->terms)
        return dgm_error(DGM_ENOMEM, "out of memory");
    /* The schedules were checked when the experiment was built
     * (dgm__experiment_check_schedules); this fills them. */
    for (int p = 0; p < e->n_phases; p++) {
        dgm__phase *ph = &e->phases[p];
        const dgm_config *pn =
            dgm_cfg_child(dgm_cfg_get(e->root, "phases"), ph->name);
        int rc = dgm__schedule_from_config(
            &ph->sched, dgm_cfg_child(pn, "optimizer"), t->total * ph->repeat);
        if (rc < 0)
            return rc;
    }
    return dgm__batch_alloc(&e->info, e->batch_size, &t->x, &t->y, &t->ym);
}

static void teardown(trainer *t)
{
    dgm_graph_free(t->g);
    free(t->perm);
    free(t->terms);
    dgm_tensor_free(t->x);
    dgm_tensor_free(t->y);
    dgm_tensor_free(t->ym);
    json_decref(t->better);
    dgm__rundir_close(&t->rd);
}

static json_t *summary(trainer *t, const char *status, json_t *figures,
                       double wall)
{
    json_t *s = json_object();
    json_object_set_new(s, "name", json_string(t->e->name));
    json_object_set_new(s, "status", json_string(status));
    json_object_set_new(s, "steps", json_integer(t->st.step));
    json_object_set_new(s, "total_steps", json_integer(t->total));
    json_object_set_new(s, "epochs",
                        json_real((double)t->st.step / (double)t->spe));
    json_object_set_new(s, "train_time_s", json_real(t->st.train_time));
    json_object_set_new(s, "wall_time_s", json_real(wall));
    json_object_set_new(s, "steps_per_s",
                        json_real(t->st.train_time > 0
                                      ? (double)t->st.step / t->st.train_time
                                      : 0));
    json_object_set_new(s, "train_loss", json_real(t->last_loss));
    int64_t trainable, frozen;
    dgm_params_counts(t->e->params, &trainable, &frozen);
    json_object_set_new(s, "params_trainable", json_integer(trainable));
    json_object_set_new(s, "params_frozen", json_integer(frozen));
    json_object_set_new(s, "final", figures ? figures : json_object());
    /* which way each figure improves, so compare needs no guess */
    json_t *better = t->better ? json_deep_copy(t->better) : json_object();
    json_object_set_new(better, "train_loss", json_string("lower"));
    json_object_set_new(s, "better", better);
    return s;
}

/* The final evaluation, samples, metrics line and log lines; *fig gets
 * the figures. */
static int final_eval(trainer *t, json_t **fig)
{
    dgm_experiment *e = t->e;
    *fig = NULL;
    int rc = evaluate(t, fig);
    if (rc < 0)
        return rc;
    dgm_eval *ev;
    if ((rc = dgm__eval_new(&ev, e, e->seed ^ 0x5a3b1e5ULL)) < 0)
        return rc;
    char tag[32];
    snprintf(tag, sizeof tag, "%06lld", (long long)t->st.step);
    rc = write_samples(t, ev, tag);
    dgm__eval_free(ev);
    if (rc < 0)
        return rc;
    json_t *line = json_object();
    json_object_set_new(line, "step", json_integer(t->st.step));
    json_object_set_new(line, "eval", json_deep_copy(*fig));
    dgm__rundir_metrics(&t->rd, line);
    const char *key;
    json_t *val;
    json_object_foreach(*fig, key, val)
        dgm__rundir_log(&t->rd, "dgm: %s = %.6g", key, json_real_value(val));
    return 0;
}

/* Record a run that failed after its directory was made, wherever it
 * failed (a step, a checkpoint, an evaluation at eval_every or at the
 * end): the error in log.txt and summary.json with status "diverged" or
 * "failed". Returns rc with its message kept. */
static int record_failure(trainer *t, int rc, double wall0)
{
    /* Keep the message: writing the summary may set another. */
    char msg[4096];
    const char *status = rc == DGM_EDIVERGED ? "diverged" : "failed";
    snprintf(msg, sizeof msg, "%s", dgm_last_error());
    dgm__rundir_log(&t->rd, "dgm: %s: %s", status, msg);
    dgm__rundir_summary(&t->rd, summary(t, status, NULL, now_s() - wall0));
    return dgm_error(rc, "%s", msg);
}

int dgm_experiment_run(dgm_experiment *e, const dgm_run_options *o)
{
    double wall0 = now_s();
    trainer t = {.e = e, .stop_after = o->stop_after};
    int rc;
    if ((rc = dgm__experiment_build(e)) < 0)
        return rc;
    if (o->threads > 0) {
        e->threads = o->threads;
        dgm_set_threads(o->threads);
    }
    /* Everything that can refuse the configuration runs before the run
     * directory exists, so a refusal leaves no half-made run behind: the
     * loop's setup, and init: (its report is logged below). */
    char *report = NULL;
    if ((rc = setup(&t, o)) < 0 ||
        (!o->resume_dir &&
         (rc = dgm__init_apply(e->params, dgm_cfg_get(e->root, "init"),
                               &report)) < 0)) {
        teardown(&t);
        return rc;
    }
    if (o->resume_dir)
        rc = dgm__rundir_open(&t.rd, o->resume_dir);
    else
        rc = dgm__rundir_create(&t.rd, o->runs_root ? o->runs_root : "runs",
                                e->name, o->run_dir);
    if (rc < 0)
        goto out;
    t.rd.quiet = o->quiet;
    char f[2400];
    if (o->resume_dir) {
        rc = dgm__checkpoint_load(
            e, dgm__rundir_file(&t.rd, "checkpoints/last.safetensors", f,
                                sizeof f),
            &t.st);
        if (rc < 0)
            goto out;
        dgm__rundir_log(&t.rd, "dgm: resuming %s at step %lld of %lld",
                        t.rd.path, (long long)t.st.step, (long long)t.total);
    } else {
        if ((rc = dgm__rundir_write_config(&t.rd, e->root)) < 0)
            goto out;
        if (!o->run_dir)
            link_latest(&t.rd);
        if (report) {
            /* one log line per report line */
            char *save = NULL;
            for (char *ln = strtok_r(report, "\n", &save); ln;
                 ln = strtok_r(NULL, "\n", &save))
                dgm__rundir_log(&t.rd, "%s", ln);
        }
        int64_t trainable, frozen;
        dgm_params_counts(e->params, &trainable, &frozen);
        dgm__rundir_log(&t.rd,
                        "dgm: %s -> %s (%lld steps, %lld per epoch; "
                        "parameters: %lld trainable, %lld frozen)",
                        e->name, t.rd.path, (long long)t.total,
                        (long long)t.spe, (long long)trainable,
                        (long long)frozen);
    }
    json_t *fig = NULL;
    if ((rc = run_loop(&t)) == 0 && (rc = checkpoint(&t)) == 0 &&
        t.st.step < t.total) {
        dgm__rundir_log(&t.rd, "dgm: stopped at step %lld of %lld; continue "
                               "with dgm run --resume %s",
                        (long long)t.st.step, (long long)t.total, t.rd.path);
        rc = dgm__rundir_summary(&t.rd, summary(&t, "stopped", NULL,
                                                now_s() - wall0));
        goto out;
    }
    if (rc == 0)
        rc = final_eval(&t, &fig);
    if (rc < 0) {
        json_decref(fig);
        rc = record_failure(&t, rc, wall0);
        goto out;
    }
    rc = dgm__rundir_summary(&t.rd, summary(&t, "completed", fig,
                                            now_s() - wall0));
    if (rc == 0)
        dgm__rundir_log(&t.rd, "dgm: done: %s", t.rd.path);
out:
    free(report);
    teardown(&t);
    return rc;
}
