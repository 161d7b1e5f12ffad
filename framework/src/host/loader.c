/* loader.c - training batches in the run's order: the epoch's
 * permutation, the dataset's get and the augments' apply, on the caller's
 * thread or, with data.prefetch > 0, on one background thread that keeps
 * the next batches ready while the step trains. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dgm/error.h"
#include "dist.h"
#include "loader.h"

typedef struct slot {
    dgm_tensor *x, *y, *ym;
    dgm_tensor xv, yv, mv;
    int64_t step; /* the step it holds, -1 while empty or being built */
    int64_t n;
    int64_t sh_off, sh_total; /* its rows of the step's global batch */
    dgm_rng rd, ra; /* the data and augment streams after this batch */
    int rc;
    char msg[2048];
} slot;

struct dgm__loader {
    dgm_experiment *e;
    int depth, n_slots; /* n_slots = depth + 1: one is the caller's */
    slot *slots;
    int64_t *perm, perm_epoch, n_train, spe;
    double wait_s;

    /* the thread; everything below `mu` is shared with it */
    pthread_t th;
    bool running;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop, paused, busy, failed;
    int64_t next_make; /* the step the thread builds next */
    int64_t next_take; /* the step the caller asks for next */
    dgm_rng rd, ra;    /* the thread's copies of the run's streams */
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void epoch_order(dgm__loader *l, int64_t epoch)
{
    if (l->perm_epoch == epoch)
        return;
    for (int64_t i = 0; i < l->n_train; i++)
        l->perm[i] = i;
    if (l->e->shuffle) {
        /* The order of epoch k depends on the seed and k only, so a resumed
         * run sees the batches an uninterrupted one would. */
        dgm_rng master, r;
        dgm_rng_seed(&master, l->e->seed);
        dgm_rng_fork(&r, &master, 1000 + (uint64_t)epoch);
        dgm_rng_shuffle(&r, l->perm, l->n_train);
    }
    l->perm_epoch = epoch;
}

/* Read and augment the batch of `step` into s, drawing from s->rd and
 * s->ra (which the caller set to the streams before it). */
static void build(dgm__loader *l, int64_t step, slot *s)
{
    dgm_experiment *e = l->e;
    int64_t epoch = step / l->spe, pos = step % l->spe;
    epoch_order(l, epoch);
    int64_t start = pos * e->batch_size;
    int64_t n =
        l->n_train - start < e->batch_size ? l->n_train - start : e->batch_size;
    /* data-parallel: this rank's contiguous share of the global batch */
    s->sh_total = n;
    dgm__dist_share(s->sh_total, &s->sh_off, &n);
    start += s->sh_off;
    s->n = n;
    dgm__rows_view(&s->xv, s->x, n);
    dgm_batch b = {.n = n, .x = &s->xv};
    if (s->y) {
        dgm__rows_view(&s->yv, s->y, n);
        dgm__rows_view(&s->mv, s->ym, n);
        dgm_tensor_fill(&s->mv, 1.0);
        b.y = &s->yv;
        b.y_mask = &s->mv;
    }
    const dgm_dataset_iface *di = e->data.desc->iface.dataset;
    int rc =
        di->get(e->data.self, DGM_SPLIT_TRAIN, l->perm + start, &b, &s->rd);
    if (rc < 0)
        rc = dgm_error_context("dataset '%s': ", e->data.desc->name);
    for (int i = 0; i < e->n_augments && rc >= 0; i++) {
        const dgm_augment_iface *ai = e->augments[i].desc->iface.augment;
        if (ai->apply &&
            (rc = ai->apply(e->augments[i].self, &s->xv, &s->ra)) < 0)
            rc = dgm_error_context("augment '%s': ", e->augments[i].desc->name);
    }
    s->rc = rc < 0 ? rc : 0;
    if (rc < 0) /* errors are per thread: carry the message over */
        snprintf(s->msg, sizeof s->msg, "%s", dgm_last_error());
}

static void *thread_main(void *arg)
{
    dgm__loader *l = arg;
    pthread_mutex_lock(&l->mu);
    for (;;) {
        while (!l->stop && (l->paused || l->failed ||
                            l->next_make >= l->next_take + l->depth))
            pthread_cond_wait(&l->cv, &l->mu);
        if (l->stop)
            break;
        int64_t m = l->next_make;
        slot *s = &l->slots[m % l->n_slots];
        s->step = -1;
        s->rd = l->rd;
        s->ra = l->ra;
        l->busy = true;
        pthread_mutex_unlock(&l->mu);
        build(l, m, s);
        pthread_mutex_lock(&l->mu);
        l->rd = s->rd;
        l->ra = s->ra;
        s->step = m;
        l->next_make = m + 1;
        l->busy = false;
        l->failed = s->rc < 0;
        pthread_cond_broadcast(&l->cv);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

static void stop_thread(dgm__loader *l)
{
    if (!l->running)
        return;
    pthread_mutex_lock(&l->mu);
    l->stop = true;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
    pthread_join(l->th, NULL);
    l->running = false;
}

/* (Re)start the thread at `step` from the run's current streams. */
static int start_thread(dgm__loader *l, int64_t step)
{
    for (int i = 0; i < l->n_slots; i++)
        l->slots[i].step = -1;
    l->rd = l->e->rng_data;
    l->ra = l->e->rng_aug;
    l->next_make = l->next_take = step;
    l->stop = l->paused = l->busy = l->failed = false;
    if (pthread_create(&l->th, NULL, thread_main, l) != 0)
        return dgm_error(DGM_ENOMEM, "data.prefetch: could not start the "
                                     "loader thread");
    l->running = true;
    return 0;
}

static void view(slot *s, dgm_batch *b)
{
    *b = (dgm_batch){.n = s->n, .x = &s->xv};
    if (s->y) {
        b->y = &s->yv;
        b->y_mask = &s->mv;
    }
}

int dgm__loader_get(dgm__loader *l, int64_t step, dgm_batch *b,
                    int64_t *sh_off, int64_t *sh_total)
{
    dgm_experiment *e = l->e;
    double t0 = now_s();
    slot *s = &l->slots[0];
    if (l->depth == 0) {
        s->rd = e->rng_data;
        s->ra = e->rng_aug;
        build(l, step, s);
    } else {
        int rc;
        if ((!l->running || step != l->next_take) &&
            (stop_thread(l), (rc = start_thread(l, step)) < 0))
            return rc;
        s = &l->slots[step % l->n_slots];
        pthread_mutex_lock(&l->mu);
        /* frees the slot of the previous step and wakes the thread */
        l->next_take = step + 1;
        l->paused = false;
        pthread_cond_broadcast(&l->cv);
        while (s->step != step)
            pthread_cond_wait(&l->cv, &l->mu);
        pthread_mutex_unlock(&l->mu);
    }
    l->wait_s += now_s() - t0;
    if (s->rc < 0)
        return dgm_error(s->rc, "%s", s->msg);
    e->rng_data = s->rd;
    e->rng_aug = s->ra;
    view(s, b);
    if (sh_off)
        *sh_off = s->sh_off;
    if (sh_total)
        *sh_total = s->sh_total;
    return 0;
}

void dgm__loader_pause(dgm__loader *l)
{
    if (!l || !l->running)
        return;
    pthread_mutex_lock(&l->mu);
    l->paused = true;
    while (l->busy)
        pthread_cond_wait(&l->cv, &l->mu);
    pthread_mutex_unlock(&l->mu);
}

double dgm__loader_wait_s(const dgm__loader *l)
{
    return l ? l->wait_s : 0;
}

void dgm__loader_free(dgm__loader *l)
{
    if (!l)
        return;
    stop_thread(l);
    for (int i = 0; l->slots && i < l->n_slots; i++) {
        dgm_tensor_free(l->slots[i].x);
        dgm_tensor_free(l->slots[i].y);
        dgm_tensor_free(l->slots[i].ym);
    }
    free(l->slots);
    free(l->perm);
    pthread_cond_destroy(&l->cv);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

int dgm__loader_new(dgm__loader **out, dgm_experiment *e, int depth)
{
    *out = NULL;
    if (depth < 0)
        return dgm_error(DGM_ERANGE, "data.prefetch: %d is negative", depth);
    dgm__loader *l = calloc(1, sizeof *l);
    if (!l)
        return dgm_error(DGM_ENOMEM, "out of memory");
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    l->e = e;
    l->depth = depth;
    l->n_slots = depth + 1;
    l->n_train = e->info.size[DGM_SPLIT_TRAIN];
    l->spe = dgm__steps_per_epoch(e);
    l->perm_epoch = -1;
    l->perm = malloc(sizeof *l->perm * (size_t)l->n_train);
    l->slots = calloc((size_t)l->n_slots, sizeof *l->slots);
    if (!l->perm || !l->slots) {
        dgm__loader_free(l);
        return dgm_error(DGM_ENOMEM, "out of memory");
    }
    for (int i = 0; i < l->n_slots; i++) {
        slot *s = &l->slots[i];
        s->step = -1;
        int rc =
            dgm__batch_alloc(&e->info, e->batch_size, &s->x, &s->y, &s->ym);
        if (rc < 0) {
            dgm__loader_free(l);
            return rc;
        }
    }
    *out = l;
    return 0;
}
