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
#include "dgm/profile.h"
#include "dist.h"
#include "dist_shard.h"
#include "eval_internal.h"
#include "graph_internal.h"
#include "loader.h"
#include "plugin_check.h"
#include "rundir.h"
#include "transfer.h"

typedef struct trainer {
    dgm_experiment *e;
    dgm__rundir rd;
    dgm_graph *g;
    dgm__loader *ld;
    dgm_tensor xv, yv, mv; /* the step's batch, copies of the loader's views */
    bool has_y;
    int64_t spe, total;
    dgm__train_state st;
    bool tty;
    int64_t log_every, eval_every, ckpt_every, sample_every, n_samples;
    double last_loss;
    int64_t stop_after;
    dgm_var **terms; /* one per term of the phase with the most */
    double *vals;    /* their values (and the total's, and a failure flag), over
                        all ranks */
    /* Data-parallel: this rank's rows [sh_off, sh_off + sh_n) of the
     * step's global batch of sh_total; rank 0 alone writes the run. */
    int64_t sh_off, sh_n, sh_total;
    bool rank0;
    double eval_s; /* seconds of the final evaluation's metrics */
    /* {figure: "lower"|"higher"|"none"} of the last evaluation, as the
     * metrics declare them, for summary.json */
    json_t *better;
    bool kept; /* the last phase left its graph to the next (keeps_graph) */
} trainer;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int load_batch(trainer *t, int64_t *n_out)
{
    dgm_batch b;
    int rc = dgm__loader_get(t->ld, t->st.step, &b, &t->sh_off, &t->sh_total);
    if (rc < 0)
        return rc;
    t->sh_n = b.n;
    t->xv = *b.x;
    if (t->has_y) {
        t->yv = *b.y;
        t->mv = *b.y_mask;
    }
    *n_out = b.n;
    return 0;
}

/* While phase p trains, every weight outside it is treated as frozen, so
 * backward spends nothing on the other networks' gradients; phase `also`
 * (>= 0: the next phase, which reads what p's forward records) keeps its
 * weights trainable too. */
static void mask_to_phase(dgm_experiment *e, int p, int also, bool *saved,
                          bool on)
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
    for (int a = 0; on && a < 2; a++) {
        int ph = a ? also : p;
        for (int k = 0; ph >= 0 && k < e->phases[ph].n_params; k++) {
            dgm_param *q = e->phases[ph].params[k];
            for (int j = 0; j < np; j++)
                if (dgm_params_at(e->params, j) == q)
                    q->frozen = saved[j];
        }
    }
}

/* The model's ABI 2.3 answer: phase p's graph goes on into phase p + 1. */
static bool keeps_graph(const dgm_experiment *e, int p)
{
    const dgm_plugin_desc *d = e->model.desc;
    bool (*f)(void *, int) = DGM__HAS_SLOT(d, dgm_model_iface, keeps_graph)
                                 ? d->iface.model->keeps_graph
                                 : NULL;
    return f && p + 1 < e->n_phases && f(e->model.self, p);
}

/* t->vals: the terms' and the total's values of the global batch (each
 * rank's batch mean weighted by its share of the rows, summed). One
 * process keeps its values as they are. Every rank sees the same figures,
 * so all agree on a divergence. rc is this rank's state so far: a rank
 * whose batch, forward or objective failed still joins the sum, with a
 * flag the others see, so that no rank is left waiting in a collective
 * the failed one never reaches; every rank then returns an error. */
static int reduce_terms(trainer *t, const dgm__phase *ph, dgm_var **terms,
                        dgm_var *total, int rc)
{
    int n = ph->n_terms;
    for (int i = 0; i <= n; i++)
        t->vals[i] =
            rc < 0 ? 0.0
                   : dgm_tensor_get(dgm_value(i < n ? terms[i] : total), 0);
    if (dgm__dist_size() < 2)
        return rc;
    double w = (double)t->sh_n / (double)t->sh_total;
    for (int i = 0; i <= n; i++)
        t->vals[i] *= w;
    t->vals[n + 1] = rc < 0 ? 1.0 : 0.0;
    dgm__dist_sum_f64(t->vals, n + 2);
    if (rc == 0 && t->vals[n + 1] > 0)
        return dgm_error(DGM_EINTERRUPTED,
                         "step %lld, phase '%s': another rank failed before "
                         "its loss was summed; every rank stops (its message "
                         "is on its standard error)",
                         (long long)t->st.step, ph->name);
    return rc;
}

static int diverged(trainer *t, const dgm__phase *ph, dgm_var **terms, int i)
{
    double v = t->vals[i];
    char where[48] = "";
    if (dgm__dist_size() > 1) {
        int r =
            dgm__dist_first(!isfinite(dgm_tensor_get(dgm_value(terms[i]), 0)));
        if (r >= 0)
            snprintf(where, sizeof where, " on rank %d", r);
    }
    return dgm_error(DGM_EDIVERGED,
                     "step %lld, phase '%s': loss term '%s' (#%d) is %s%s",
                     (long long)t->st.step, ph->name, ph->terms[i].label, i + 1,
                     isnan(v) ? "nan" : "infinite", where);
}

/* A failure after the terms were summed is this rank's alone (the others
 * wait for its gradient sums or go on to the next phase): with several
 * ranks it ends the job (dgm__dist_abort); one process returns rc. */
static int alone(int rc)
{
    dgm__dist_abort();
    return rc;
}

static int train_phase(trainer *t, int p, json_t *log_terms, bool *saved)
{
    dgm_experiment *e = t->e;
    dgm__phase *ph = &e->phases[p];
    const dgm_model_iface *mi = e->model.desc->iface.model;
    for (int r = 0; r < ph->repeat; r++) {
        dgm_graph *g = t->g;
        bool keep = r == ph->repeat - 1 && keeps_graph(e, p);
        int also = keep ? p + 1 : -1;
        /* the previous phase's graph goes on here (keeps_graph) */
        if (!(r == 0 && t->kept))
            dgm_graph_reset(g);
        t->kept = false;
        dgm_graph_set_training(g, true);
        dgm_graph_set_grad(g, true);
        dgm_graph_set_rng(g, &e->rng_step);
        dgm__graph_set_shard(g, t->sh_off, t->sh_n, t->sh_total);
        dgm_step s = {.g = g, .rng = &e->rng_step, .step = t->st.step,
                      .training = true, .host_ = e};
        dgm_vars io = {0};
        int rc = dgm_vars_set(&io, "x", dgm_input(g, &t->xv));
        if (rc == 0 && t->has_y)
            rc = dgm_vars_set(&io, "y", dgm_input(g, &t->yv));
        if (rc == 0 && t->has_y)
            rc = dgm_vars_set(&io, "y_mask", dgm_input(g, &t->mv));
        bool masked = rc == 0;
        if (rc == 0) {
            mask_to_phase(e, p, also, saved, true);
            rc = mi->forward(e->model.self, &s, p, &io);
            if (rc < 0)
                rc = dgm_error_context(
                    "model '%s', phase '%s', step %lld: ", e->model.desc->name,
                    ph->name, (long long)t->st.step);
        }
        dgm_var *total = NULL, **terms = t->terms;
        if (rc == 0)
            rc = dgm__objective(e, p, g, &io, false, &total, terms);
        if ((rc = reduce_terms(t, ph, terms, total, rc)) < 0) {
            if (masked)
                mask_to_phase(e, p, also, saved, false);
            return rc;
        }
        for (int i = 0; i < ph->n_terms; i++) {
            double v = t->vals[i];
            if (!isfinite(v)) {
                mask_to_phase(e, p, also, saved, false);
                return diverged(t, ph, terms, i);
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
        /* no zero fill: each gradient's first contribution stores, and
         * what backward does not reach is zeroed after it */
        dgm__params_grad_fresh(ph->params, ph->n_params);
        /* the global batch's mean: each rank's mean weighted by its rows,
         * summed over the ranks while backward runs (the graph's hook) */
        bool split = dgm__shard_on(p);
        dgm__dist_grads_begin((double)t->sh_n / (double)t->sh_total, split);
        rc = dgm_backward(g, total);
        double pt = dgm_profile_enabled() ? now_s() : 0;
        dgm__params_grad_settle(ph->params, ph->n_params);
        if (dgm_profile_enabled())
            dgm_profile_add("(zero param grads)", now_s() - pt);
        mask_to_phase(e, p, also, saved, false);
        int drc = dgm__dist_grads_end(rc);
        if (rc < 0)
            return alone(dgm_error_context("backward, phase '%s': ", ph->name));
        if (drc < 0)
            return alone(drc);
        if (keep) {
            dgm__graph_drop_walked(g);
            t->kept = true;
        }
        if (ph->sched.clip_norm > 0) {
            pt = dgm_profile_enabled() ? now_s() : 0;
            dgm__clip_grad_norm(ph->params, ph->n_params, ph->sched.clip_norm);
            if (dgm_profile_enabled())
                dgm_profile_add("(clip grad norm)", now_s() - pt);
        }
        double lr = dgm__schedule_lr(&ph->sched, ph->base_lr, ph->updates);
        const dgm_optimizer_iface *oi = ph->opt.desc->iface.optimizer;
        pt = dgm_profile_enabled() ? now_s() : 0;
        /* a split step: each rank steps its own parameters (dist_shard.c) */
        int n_step = ph->n_rest;
        dgm_param **step_ps =
            split ? dgm__shard_mine(p, -1, &n_step) : ph->rest;
        rc = oi->step(ph->opt.self, step_ps, n_step, lr, ph->updates + 1);
        if (dgm_profile_enabled())
            dgm_profile_add("(optimizer)", now_s() - pt);
        if (rc < 0)
            return alone(
                dgm_error_context("optimizer '%s': ", ph->opt.desc->name));
        /* param_groups: the phase's schedule, on the group's base rate,
         * times the group's multiplier. */
        for (int k = 0; k < ph->n_groups; k++) {
            dgm__group *gr = &ph->groups[k];
            double glr = dgm__schedule_lr(&ph->sched, gr->base_lr,
                                          ph->updates) *
                         gr->lr_mult;
            const dgm_optimizer_iface *gi = gr->opt.desc->iface.optimizer;
            int n_gr = gr->n_params;
            dgm_param **gr_ps =
                split ? dgm__shard_mine(p, k, &n_gr) : gr->params;
            if (gi->step(gr->opt.self, gr_ps, n_gr, glr, ph->updates + 1) < 0)
                return alone(dgm_error_context("optimizer '%s' of "
                                               "param_groups[%d]: ",
                                               gr->opt.desc->name, gr->index));
        }
        /* every rank's parameters as the owners stepped them */
        pt = dgm_profile_enabled() && split ? now_s() : 0;
        if ((rc = dgm__dist_share_params(ph->params, ph->n_params)) < 0)
            return alone(rc);
        if (dgm_profile_enabled() && split)
            dgm_profile_add("(share new values, wait)", now_s() - pt);
        ph->updates++;
        if (mi->after_update && mi->after_update(e->model.self, &s, p) < 0)
            return alone(dgm_error_context(
                "model '%s', after the '%s' update: ", e->model.desc->name,
                ph->name));
        t->last_loss = t->vals[ph->n_terms];
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
    int rc = dgm__eval_new(&ev, t->e, DGM__EVAL_SEED(t->e->seed));
    if (rc < 0)
        return rc;
    ev->at_step = t->st.step;
    ev->ranks = true; /* every rank evaluates; shard-aware metrics split */
    dgm_results res = {0};
    rc = dgm__eval_metrics(ev, &res);
    if (rc == 0 && t->rank0) {
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

/* Is a checkpoint due after this step (the same answer on every rank)? */
static bool checkpoint_due(const trainer *t)
{
    bool epoch_end = t->st.step % t->spe == 0;
    return (t->ckpt_every ? t->st.step % t->ckpt_every == 0 : epoch_end) &&
           t->st.step != t->total;
}

/* After a step, rank 0's: progress, checkpoint, samples. */
static int step_outputs(trainer *t, double t0, int64_t step0)
{
    int rc;
    progress(t, t0, step0);
    if (checkpoint_due(t) && (rc = checkpoint(t)) < 0)
        return rc;
    bool sample = t->sample_every && t->st.step % t->sample_every == 0 &&
                  t->st.step != t->total;
    if (sample) /* it reads the dataset too */
        dgm__loader_pause(t->ld);
    if (sample && (rc = mid_samples(t)) < 0)
        return rc;
    return 0;
}

/* Is an evaluation due after this step (the same answer on every rank)? */
static bool eval_due(const trainer *t)
{
    return t->eval_every && t->st.step % t->eval_every == 0 &&
           t->st.step != t->total;
}

/* After a step where eval_due, every rank's: the evaluation (each rank
 * evaluates its share; rank 0 writes the figures). */
static int step_eval(trainer *t)
{
    int rc;
    dgm__loader_pause(t->ld); /* evaluation reads the dataset too */
    json_t *fig = NULL;
    if ((rc = evaluate(t, &fig)) < 0)
        return rc;
    if (t->rank0) {
        json_t *line = json_object();
        json_object_set_new(line, "step", json_integer(t->st.step));
        json_object_set_new(line, "eval", fig);
        dgm__rundir_metrics(&t->rd, line);
    }
    return 0;
}

/* Every rank stops when one does: rc, or an error naming the first rank
 * that failed (its own message is on its stderr and, for rank 0, in the
 * log). One process: rc. */
static int agree(int rc)
{
    int who = dgm__dist_first(rc < 0);
    if (who >= 0 && rc == 0)
        return dgm_error(DGM_EINTERRUPTED,
                         "rank %d failed; every rank stops (its message is "
                         "on its standard error)",
                         who);
    return rc;
}

/* The per-op profile of the steps just run, to profile.txt and, unless
 * quiet, to stderr. */
static int write_profile(trainer *t, int64_t steps)
{
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    if (!m)
        return dgm_error(DGM_ENOMEM, "profile: out of memory");
    int rc = dgm_profile_write(m, steps);
    fclose(m);
    char f[2400];
    if (rc == 0)
        rc = dgm_write_file_atomic(
            dgm__rundir_file(&t->rd, "profile.txt", f, sizeof f), text, len);
    if (rc == 0 && !t->rd.quiet)
        fprintf(stderr, "%s", text);
    free(text);
    return rc;
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
        /* a batch one rank fails to load stops every rank (a tiny sum per
         * step, before any rank starts the step's collectives) */
        if ((rc = agree(load_batch(t, &n))) < 0)
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
        /* The first step builds oneDNN's primitives: leave it out of the
         * profile when there are others. */
        if (dgm_profile_enabled() && t->st.step == step0 + 1 && end > step0 + 1)
            dgm_profile_reset();
        /* a split optimizer step left each slot on its owner: rank 0
         * collects them before it writes the checkpoint */
        if (checkpoint_due(t) && (rc = dgm__dist_gather_slots(e->params)) < 0)
            break;
        if (t->rank0)
            rc = step_outputs(t, t0, step0);
        if ((rc = agree(rc)) < 0 ||
            (eval_due(t) && (rc = agree(step_eval(t))) < 0))
            break;
    }
    if (t->tty && !t->rd.quiet)
        fprintf(stderr, "\n");
    /* the final evaluation reads the dataset: no thread may be left */
    dgm__loader_pause(t->ld);
    free(saved);
    if (rc == 0 && t->rank0 && dgm_profile_enabled())
        rc = write_profile(t, t->st.step - step0 > 1 ? t->st.step - step0 - 1
                                                     : t->st.step - step0);
    return rc;
}

/* train.sync_bn: the graph's batch norms sum their statistics here. */
static int sum_across_ranks(void *ctx, double *buf, int n)
{
    (void)ctx;
    return dgm__dist_sum_f64(buf, n);
}

static int setup(trainer *t, const dgm_run_options *o)
{
    dgm_experiment *e = t->e;
    const dgm_config *tr = dgm_cfg_get(e->root, "train");
    t->spe = dgm__steps_per_epoch(e);
    t->total = dgm__experiment_total_steps(e->root, t->spe);
    t->log_every = dgm_cfg_int(tr, "log_every");
    t->eval_every = dgm_cfg_int(tr, "eval_every");
    t->ckpt_every = dgm_cfg_int(tr, "checkpoint_every");
    t->sample_every = dgm_cfg_int(tr, "sample_every");
    t->n_samples = dgm_cfg_int(tr, "samples");
    t->tty = !o->quiet && isatty(2);
    t->has_y = e->info.has_y;
    t->g = dgm_graph_new();
    if (t->g && dgm__dist_size() > 1)
        dgm__graph_on_grad_final(t->g, dgm__dist_grad_final, NULL);
    if (t->g && dgm__dist_size() > 1 && dgm_cfg_bool(tr, "sync_bn"))
        dgm__graph_on_sum(t->g, sum_across_ranks, NULL);
    int max_terms = 1;
    for (int p = 0; p < e->n_phases; p++)
        if (e->phases[p].n_terms > max_terms)
            max_terms = e->phases[p].n_terms;
    t->terms = calloc((size_t)max_terms, sizeof *t->terms);
    t->vals = calloc((size_t)max_terms + 2, sizeof *t->vals);
    if (!t->g || !t->terms || !t->vals)
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
    return dgm__loader_new(&t->ld, e, e->prefetch);
}

/* Several ranks share each global batch: batch_size must divide among
 * them, and so must the last, shorter batch of an epoch, or some rank
 * would have no rows. */
static int check_ranks(const trainer *t)
{
    const dgm_experiment *e = t->e;
    int64_t n_train = e->info.size[DGM_SPLIT_TRAIN];
    int64_t size = dgm__dist_size(), last = n_train % e->batch_size;
    const dgm_config *data = dgm_cfg_get(e->root, "data");
    if (size < 2)
        return 0;
    if (e->batch_size % size)
        return dgm_cfg_error(data, "batch_size", DGM_ECONFIG,
                             "data.batch_size %lld (the global batch) does "
                             "not divide among %lld ranks",
                             (long long)e->batch_size, (long long)size);
    if (last && last < size)
        return dgm_cfg_error(data, "batch_size", DGM_ECONFIG,
                             "the last batch of an epoch has %lld examples "
                             "(%lld training examples, batch_size %lld), "
                             "fewer than the %lld ranks",
                             (long long)last, (long long)n_train,
                             (long long)e->batch_size, (long long)size);
    return 0;
}

static void teardown(trainer *t)
{
    dgm__shard_free();
    dgm_graph_free(t->g);
    dgm__loader_free(t->ld);
    free(t->terms);
    free(t->vals);
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
    json_object_set_new(s, "data_time_s",
                        json_real(dgm__loader_wait_s(t->ld)));
    json_object_set_new(s, "steps_per_s",
                        json_real(t->st.train_time > 0
                                      ? (double)t->st.step / t->st.train_time
                                      : 0));
    json_object_set_new(s, "eval_time_s", json_real(t->eval_s));
    json_object_set_new(s, "train_loss", json_real(t->last_loss));
    if (dgm__dist_size() > 1) { /* data-parallel: what the sums cost */
        json_object_set_new(s, "ranks", json_integer(dgm__dist_size()));
        json_object_set_new(s, "allreduce_s",
                            json_real(dgm__dist_reduce_seconds()));
        json_object_set_new(s, "allreduce_wait_s",
                            json_real(dgm__dist_wait_seconds()));
        json_object_set_new(s, "allreduce_path",
                            json_string(dgm__dist_sum_path()));
        json_object_set_new(s, "optimizer_step",
                            json_string(dgm__shard_mode()));
    }
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
    double t0 = now_s();
    int rc = evaluate(t, fig);
    t->eval_s = now_s() - t0;
    if (rc < 0 || !t->rank0) /* rank 0 alone writes */
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
    if ((rc = dgm__experiment_build(e)) < 0 || (rc = dgm__dist_init()) < 0)
        return rc;
    t.rank0 = dgm__dist_rank() == 0;
    if (o->threads > 0) {
        e->threads = o->threads;
        dgm_set_threads(o->threads);
    }
    /* Everything that can refuse the configuration runs before the run
     * directory exists, so a refusal leaves no half-made run behind: the
     * loop's setup, and init: (its report is logged below). */
    char *report = NULL;
    if ((rc = setup(&t, o)) < 0 || (rc = check_ranks(&t)) < 0 ||
        (rc = dgm__shard_plan(e, dgm__dist_rank(), dgm__dist_size(),
                              strcmp(dgm__dist_sum_path(), "shm") == 0)) < 0 ||
        (!o->resume_dir &&
         (rc = dgm__init_apply(e->params, dgm_cfg_get(e->root, "init"),
                               &report)) < 0)) {
        teardown(&t);
        return rc;
    }
    if (!t.rank0) /* reads the checkpoint to resume; writes nothing */
        snprintf(t.rd.path, sizeof t.rd.path, "%s",
                 o->resume_dir ? o->resume_dir : "");
    else if (o->resume_dir)
        rc = dgm__rundir_open(&t.rd, o->resume_dir);
    else
        rc = dgm__rundir_create(&t.rd, o->runs_root ? o->runs_root : "runs",
                                e->name, o->run_dir);
    if ((rc = agree(rc)) < 0)
        goto out;
    t.rd.quiet = o->quiet || !t.rank0;
    char f[2400];
    if (o->resume_dir) {
        rc = dgm__checkpoint_load(
            e, dgm__rundir_file(&t.rd, "checkpoints/last.safetensors", f,
                                sizeof f),
            &t.st);
        if ((rc = agree(rc)) < 0)
            goto out;
        dgm__rundir_log(&t.rd, "dgm: resuming %s at step %lld of %lld",
                        t.rd.path, (long long)t.st.step, (long long)t.total);
    } else if (t.rank0) {
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
    if (dgm__dist_size() > 1)
        dgm__rundir_log(&t.rd,
                        "dgm: data-parallel on %d ranks, %lld examples "
                        "each of every batch of %lld; gradient sums: %s",
                        dgm__dist_size(),
                        (long long)(e->batch_size / dgm__dist_size()),
                        (long long)e->batch_size,
                        strcmp(dgm__dist_sum_path(), "shm") == 0
                            ? "shared memory (one node)"
                            : "MPI_Iallreduce");
    for (int p = 0; dgm__dist_size() > 1 && p < e->n_phases; p++)
        dgm__rundir_log(&t.rd, "dgm: optimizer step%s%s%s: %s%s%s",
                        e->n_phases > 1 ? " of phase '" : "",
                        e->n_phases > 1 ? e->phases[p].name : "",
                        e->n_phases > 1 ? "'" : "",
                        dgm__shard_on(p) ? "split between the ranks (each "
                                           "steps the parameters it owns)"
                                         : "replicated on every rank",
                        dgm__shard_on(p) ? "" : ": ",
                        dgm__shard_on(p) ? "" : dgm__shard_why(p));
    json_t *fig = NULL;
    rc = run_loop(&t);
    dgm__dist_print_checksum(e->params);
    /* Rank 0 alone checkpoints and writes; every rank takes part in the
     * final evaluation (shard-aware metrics split the data among them). */
    if (rc == 0)
        rc = dgm__dist_gather_slots(e->params);
    if (rc == 0)
        rc = agree(t.rank0 ? checkpoint(&t) : 0);
    bool stopped = rc == 0 && t.st.step < t.total;
    if (rc == 0 && !stopped)
        rc = agree(final_eval(&t, &fig));
    if (!t.rank0)
        goto out;
    if (stopped) {
        dgm__rundir_log(&t.rd, "dgm: stopped at step %lld of %lld; continue "
                               "with dgm run --resume %s",
                        (long long)t.st.step, (long long)t.total, t.rd.path);
        rc = dgm__rundir_summary(&t.rd, summary(&t, "stopped", NULL,
                                                now_s() - wall0));
        goto out;
    }
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
