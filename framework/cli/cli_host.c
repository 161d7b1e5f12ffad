/* cli_host.c - the plugin registry as every subcommand sets it up. */
#include <stdio.h>

#include "cli.h"
#include "dgm/error.h"
#include "dgm/host.h"

int dgm__cli_registry(dgm_registry **out, const char *const *extra,
                      int n_extra, bool warn)
{
    dgm_registry *r;
    int rc = dgm_registry_new(&r);
    if (rc < 0)
        return rc;
    /* Load only the plugin files the experiment names (a stray library on
     * the path is never dlopen'ed); `dgm plugins` loads them all. */
    dgm_registry_set_on_demand(r, true);
    if ((rc = dgm_registry_add_default(r)) < 0 ||
        (rc = dgm_registry_add_env(r)) < 0)
        goto fail;
    for (int i = 0; i < n_extra; i++)
        if ((rc = dgm_registry_add_dir(r, extra[i])) < 0)
            goto fail;
    if ((rc = dgm_registry_scan(r)) < 0)
        goto fail;
    if (warn)
        for (int i = 0; i < dgm_registry_problem_count(r); i++)
            fprintf(stderr, "dgm: warning: %s\n", dgm_registry_problem(r, i));
    *out = r;
    return 0;
fail:
    dgm_registry_free(r);
    return rc;
}
