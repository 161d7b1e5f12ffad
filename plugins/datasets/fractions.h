/* fractions.h - what the image datasets share (idx, cifar, array, images):
 * `train_fraction` and `label_fraction`, the seeded class-stratified
 * choices of the training examples kept and of those whose label counts
 * (y_mask 1). Static inline, so each dataset module that includes it has
 * its own copy (a plugin links only libdgm), and every dataset makes the
 * same choice from the same labels and seed.
 *
 *     static const dgm_param_spec params[] = {..., DS_FRACTION_PARAMS, ...};
 *     ...
 *     rc = ds_fractions(cfg, "cifar", seed, keep, &n, n_classes, label_of,
 *                       ctx, &mask);
 */
#ifndef DGM_PLUGINS_FRACTIONS_H
#define DGM_PLUGINS_FRACTIONS_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/dgm.h"

/* The two parameters, in a dataset's schema. */
#define DS_FRACTION_PARAMS                                                     \
    DGM_PARAM_FLOAT(                                                           \
        "train_fraction", .def = "1.0", DGM_GE(1e-9), DGM_LE(1.0),             \
        .help = "seeded, class-stratified fraction of the training set kept"), \
        DGM_PARAM_FLOAT("label_fraction", .def = "1.0", DGM_GE(0.0),           \
                        DGM_LE(1.0),                                           \
                        .help = "seeded, class-stratified fraction of "        \
                                "training examples with y_mask 1")

/* The label of row `row` of the data (ctx: the dataset's). */
typedef int64_t (*ds_label_fn)(const void *ctx, int64_t row);

/* Within each class, the first round(frac * count) (at least one) of a
 * seeded permutation of that class's positions in keep[0..n) get
 * chosen[pos] = 1. No labels (label NULL): one class. */
static inline int ds_choose_stratified(const char *plugin, const int64_t *keep,
                                       int64_t n, double frac, dgm_rng *rng,
                                       int64_t n_classes, ds_label_fn label,
                                       const void *ctx, unsigned char *chosen)
{
    int64_t *pos = malloc((size_t)(n ? n : 1) * sizeof *pos);
    if (!pos)
        return dgm_error(DGM_ENOMEM, "%s: out of memory", plugin);
    for (int64_t c = 0; c < (label ? n_classes : 1); c++) {
        int64_t m = 0;
        for (int64_t i = 0; i < n; i++)
            if (!label || label(ctx, keep[i]) == c)
                pos[m++] = i;
        if (m == 0)
            continue;
        dgm_rng_shuffle(rng, pos, m);
        int64_t k = (int64_t)(frac * (double)m + 0.5);
        if (k < 1 && frac > 0)
            k = 1;
        for (int64_t i = 0; i < k && i < m; i++)
            chosen[pos[i]] = 1;
    }
    free(pos);
    return 0;
}

/* The training split's kept rows keep[0..*n) (example -> row, in file
 * order) cut to cfg's `train_fraction` of each class, still in file order,
 * and *mask (malloc'ed, one per kept example; left NULL, all 1, when
 * `label_fraction` is 1) set to 1 for `label_fraction` of each class, 0
 * for the others. The choices draw from streams 1 and 2 of an RNG seeded
 * with seed, so they are independent of each other and of anything else a
 * dataset draws from seed. Unlabelled data (label NULL) is one class; its
 * label_fraction below 1 is refused, naming the key. */
static inline int ds_fractions(const dgm_config *cfg, const char *plugin,
                               uint64_t seed, int64_t *keep, int64_t *n,
                               int64_t n_classes, ds_label_fn label,
                               const void *ctx, float **mask)
{
    double tf = dgm_cfg_float(cfg, "train_fraction");
    double lf = dgm_cfg_float(cfg, "label_fraction");
    if (lf < 1.0 && !label)
        return dgm_cfg_error(cfg, "label_fraction", DGM_EINVAL,
                             "%s: the data has no labels to mask", plugin);
    dgm_rng base, rng;
    dgm_rng_seed(&base, seed);
    unsigned char *chosen = calloc((size_t)(*n ? *n : 1), 1);
    if (!chosen)
        return dgm_error(DGM_ENOMEM, "%s: out of memory", plugin);
    int rc = 0;
    if (tf < 1.0) {
        dgm_rng_fork(&rng, &base, 1);
        rc = ds_choose_stratified(plugin, keep, *n, tf, &rng, n_classes, label,
                                  ctx, chosen);
        int64_t m = 0;
        for (int64_t i = 0; i < *n && rc == 0; i++)
            if (chosen[i])
                keep[m++] = keep[i]; /* keeps file order */
        if (rc == 0)
            *n = m;
    }
    if (rc == 0 && lf < 1.0) {
        memset(chosen, 0, (size_t)(*n ? *n : 1));
        dgm_rng_fork(&rng, &base, 2);
        if (lf > 0)
            rc = ds_choose_stratified(plugin, keep, *n, lf, &rng, n_classes,
                                      label, ctx, chosen);
        *mask = malloc((size_t)(*n ? *n : 1) * sizeof **mask);
        if (!*mask && rc == 0)
            rc = dgm_error(DGM_ENOMEM, "%s: out of memory", plugin);
        for (int64_t i = 0; i < *n && rc == 0; i++)
            (*mask)[i] = chosen[i] ? 1.0f : 0.0f;
    }
    free(chosen);
    return rc;
}

#endif
