/* train.c - training runs and reading their checkpoints in tests (see
 * train.h). */
#include "train.h"

#include <check.h>
#include <stdio.h>

#include "dgm/error.h"

int tc_train(dgm_registry *reg, const char *yaml, const char *run_dir,
             const char *const *ov, int n_ov)
{
    dgm_experiment *e;
    int rc = dgm_experiment_load(&e, reg, yaml, ov, n_ov);
    ck_assert_msg(rc == 0, "%s: %s", run_dir, dgm_last_error());
    dgm_run_options o = {.run_dir = run_dir, .quiet = true};
    rc = dgm_experiment_run(e, &o);
    dgm_experiment_free(e);
    return rc;
}

dgm_st_file *tc_ckpt(const char *run_dir)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/checkpoints/last.safetensors", run_dir);
    dgm_st_file *f;
    ck_assert_msg(dgm_st_open(&f, p) == 0, "%s", dgm_last_error());
    return f;
}
