/* sample.c - `dgm sample`'s work: rebuild a run's model, load its
 * parameters, write a grid of samples. */
#include <math.h>
#include <stdio.h>

#include "checkpoint.h"
#include "dgm/error.h"
#include "dgm/io.h"
#include "eval_internal.h"

int dgm_run_sample_grid(dgm_registry *reg, const char *run_dir, int64_t n,
                        const char *out_png, uint64_t seed)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/config.yaml", run_dir);
    dgm_experiment *e;
    int rc = dgm_experiment_load(&e, reg, path, NULL, 0);
    if (rc < 0)
        return rc;
    dgm_eval *ev = NULL;
    if ((rc = dgm__experiment_build(e)) < 0)
        goto out;
    snprintf(path, sizeof path, "%s/checkpoints/last.safetensors", run_dir);
    if ((rc = dgm__checkpoint_load_params(e, path)) < 0 ||
        (rc = dgm__eval_new(&ev, e, seed)) < 0)
        goto out;
    dgm_var *x;
    if ((rc = dgm_eval_sample(ev, dgm__eval_empty_step(ev), n, &x)) < 0)
        goto out;
    rc = dgm_png_write_grid(out_png, dgm_value(x), (int)ceil(sqrt((double)n)),
                            e->info.x_min, e->info.x_max);
out:
    dgm__eval_free(ev);
    dgm_experiment_free(e);
    return rc;
}
