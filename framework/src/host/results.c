/* results.c - the figures of one evaluation: what a metric adds
 * (dgm_results_set) and what its reader gets back. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/error.h"
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
    if (r->n == DGM_MAX_RESULTS)
        return dgm_error(DGM_ERANGE,
                         "results: more than %d figures (adding '%s')",
                         DGM_MAX_RESULTS, name);
    strcpy(r->name[r->n], name);
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

void dgm_results_free(dgm_results *r)
{
    free(r);
}
