/* draw_token.c - one token from logits with temperature and top-k, the
 * sampling step every sequence model's generate() shares. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/plugin.h"

static int desc_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x < y) - (x > y);
}

int32_t dgm_draw_token(const float *logits, int64_t n,
                       const dgm_generate_opts *o, dgm_rng *r)
{
    float temp = o && o->temperature > 0 ? o->temperature : 1.0f;
    int64_t k = o && o->top_k > 0 && o->top_k < n ? o->top_k : n;
    float cut = -INFINITY, max = -INFINITY;
    for (int64_t i = 0; i < n; i++)
        max = logits[i] > max ? logits[i] : max;
    if (k < n) {
        float *sorted = malloc(sizeof *sorted * (size_t)n);
        if (sorted) {
            memcpy(sorted, logits, sizeof *sorted * (size_t)n);
            qsort(sorted, (size_t)n, sizeof *sorted, desc_float);
            cut = sorted[k - 1];
            free(sorted);
        }
    }
    double total = 0.0;
    for (int64_t i = 0; i < n; i++)
        if (logits[i] >= cut)
            total += exp((double)(logits[i] - max) / temp);
    double u = dgm_rng_uniform_f64(r) * total, acc = 0.0;
    int64_t last = 0;
    for (int64_t i = 0; i < n; i++) {
        if (logits[i] < cut)
            continue;
        acc += exp((double)(logits[i] - max) / temp);
        last = i;
        if (u < acc)
            return (int32_t)i;
    }
    return (int32_t)last; /* rounding left u at the very top */
}
