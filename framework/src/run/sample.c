/* sample.c - `dgm sample`'s work: a grid of samples from a run. */
#include <math.h>

#include "dgm/error.h"
#include "dgm/io.h"
#include "run_internal.h"

int dgm_run_sample_grid(dgm_registry *reg, const char *run_dir, int64_t n,
                        const char *out_png, uint64_t seed)
{
    dgm_run *r;
    int rc = dgm_run_open(&r, reg, run_dir);
    if (rc < 0)
        return rc;
    dgm_eval *ev = dgm__run_eval(r);
    dgm_experiment *e = dgm_run_experiment(r);
    dgm_rng_seed(&ev->rng, seed);
    dgm_var *x;
    rc = dgm_eval_sample(ev, dgm__eval_empty_step(ev), n, &x);
    if (rc == 0)
        rc = dgm_png_write_grid(out_png, dgm_value(x),
                                (int)ceil(sqrt((double)n)), e->info.x_min,
                                e->info.x_max);
    dgm_run_close(r);
    return rc;
}
