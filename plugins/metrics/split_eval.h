/* split_eval.h - what the metrics that walk a data split in batches share
 * (accuracy, output_accuracy, elbo, iwae_nll, recon_error): the split,
 * max_examples and batch_size parameters, reading them, and the batches.
 * Static inline, so each metric module that includes it has its own copy
 * (a plugin links only libdgm).
 *
 *     split_batch it = {0};
 *     while (split_eval_next(&o->se, ev, n, &it))
 *         ... it.s, it.io: batch it.b of n, starting at example it.at ...
 *     if (it.rc < 0)
 *         return it.rc;
 *     ... dgm_eval_sum(ev, sums, k), then divide by n ...
 *
 * The walk is shard-aware (ABI 2.3): it visits this rank's share of the
 * n examples (all of them with one process) and keys each batch's draws
 * by its first example, so a metric using it sums its partial sums with
 * dgm_eval_sum and sets shard_aware in its interface.
 */
#ifndef DGM_PLUGINS_SPLIT_EVAL_H
#define DGM_PLUGINS_SPLIT_EVAL_H

#include <stdbool.h>
#include <string.h>

#include "dgm/dgm.h"

/* The three parameters; the batch size's default and help differ. */
#define SPLIT_EVAL_PARAMS(batch_def, batch_help)                               \
    DGM_PARAM_CHOICE("split", .def = "test", .choices = "test|train",          \
                     .help = "which split"),                                   \
        DGM_PARAM_INT("max_examples", .def = "0", DGM_GE(0), DGM_LE(1e12),     \
                      .help = "0: the whole split"),                           \
        DGM_PARAM_INT("batch_size", .def = batch_def, DGM_GE(1), DGM_LE(1e6),  \
                      .help = batch_help)

typedef struct split_eval {
    dgm_split split;
    int64_t max, batch;
} split_eval;

static inline void split_eval_read(split_eval *se, const dgm_config *cfg)
{
    se->split = strcmp(dgm_cfg_str(cfg, "split"), "train") ? DGM_SPLIT_TEST
                                                           : DGM_SPLIT_TRAIN;
    se->max = dgm_cfg_int(cfg, "max_examples");
    se->batch = dgm_cfg_int(cfg, "batch_size");
}

/* The examples scored: the split's, or max_examples when fewer. */
static inline int64_t split_eval_count(const split_eval *se, dgm_eval *ev)
{
    int64_t n = dgm_eval_data(ev)->size[se->split];
    return se->max > 0 && se->max < n ? se->max : n;
}

typedef struct split_batch {
    int64_t at, b; /* its first example and size */
    int64_t end;   /* one past this rank's last example */
    bool started;
    dgm_step *s;
    dgm_vars *io; /* the batch's inputs */
    int rc;       /* < 0: the batch could not be made */
} split_batch;

/* The next batch of the first n examples into it (zeroed before the first
 * call); false after the last one or when one cannot be made (it->rc). */
static inline bool split_eval_next(const split_eval *se, dgm_eval *ev,
                                   int64_t n, split_batch *it)
{
    if (!it->started) {
        int64_t cnt = 0;
        it->started = true;
        it->b = 0;
        if ((it->rc = dgm_eval_shard(ev, n, se->batch, &it->at, &cnt)) < 0)
            return false;
        it->end = it->at + cnt;
    }
    it->at += it->b;
    if (it->at >= it->end)
        return false;
    it->b = it->end - it->at < se->batch ? it->end - it->at : se->batch;
    dgm_eval_draws(ev, (uint64_t)it->at);
    it->rc = dgm_eval_batch(ev, se->split, it->at, it->b, &it->s, &it->io);
    return it->rc >= 0;
}

#endif
