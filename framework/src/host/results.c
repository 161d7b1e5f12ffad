/* results.c - the figures of one evaluation: what a metric adds
 * (dgm_results_set) and what its reader gets back. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/error.h"
#include "eval_internal.h"
#include "host_internal.h"

int dgm_results_set(dgm_results *r, const char *name, double value)
{
    for (int i = 0; i < r->n; i++)
        if (!strcmp(r->name[i], name)) {
            r->value[i] = value;
            return 0;
        }
    if (strlen(name) >= sizeof r->name[0])
        return dgm_error(DGM_ERANGE,
                         "results: figure name '%s' is longer than %d bytes",
                         name, DGM_MAX_RESULT_NAME - 1);
    if (r->n == r->cap) {
        int cap = r->cap ? 2 * r->cap : 16;
        char(*nm)[DGM_MAX_RESULT_NAME] =
            realloc(r->name, sizeof *nm * (size_t)cap);
        if (nm)
            r->name = nm;
        double *v = nm ? realloc(r->value, sizeof *v * (size_t)cap) : NULL;
        if (!v)
            return dgm_error(DGM_ENOMEM, "results: out of memory (adding '%s')",
                             name);
        r->value = v;
        dgm_better *b = realloc(r->better, sizeof *b * (size_t)cap);
        if (!b)
            return dgm_error(DGM_ENOMEM, "results: out of memory (adding '%s')",
                             name);
        r->better = b;
        r->cap = cap;
    }
    strcpy(r->name[r->n], name);
    r->better[r->n] = DGM_BETTER_UNKNOWN; /* the metric's table says later */
    r->value[r->n++] = value;
    return 0;
}

int dgm_results_count(const dgm_results *r)
{
    return r ? r->n : 0;
}

const char *dgm_results_name(const dgm_results *r, int i)
{
    return r && i >= 0 && i < r->n ? r->name[i] : NULL;
}

double dgm_results_value(const dgm_results *r, int i)
{
    return r && i >= 0 && i < r->n ? r->value[i] : NAN;
}

dgm_better dgm_results_better(const dgm_results *r, int i)
{
    return r && i >= 0 && i < r->n ? r->better[i] : DGM_BETTER_UNKNOWN;
}

const char *dgm_better_name(dgm_better b)
{
    return b == DGM_BETTER_LOWER    ? "lower"
           : b == DGM_BETTER_HIGHER ? "higher"
           : b == DGM_BETTER_NONE   ? "none"
                                    : NULL;
}

void dgm__results_clear(dgm_results *r)
{
    free(r->name);
    free(r->value);
    free(r->better);
    *r = (dgm_results){0};
}

void dgm_results_free(dgm_results *r)
{
    if (r)
        dgm__results_clear(r);
    free(r);
}
