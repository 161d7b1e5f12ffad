/* run_internal.h - an opened run directory, as the run layer's files use
 * it (never installed). */
#ifndef DGM_RUN_INTERNAL_H
#define DGM_RUN_INTERNAL_H

#include "eval_internal.h"

/* The eval context of an opened run (generation and sampling use it). */
dgm_eval *dgm__run_eval(dgm_run *r);

/* One eval-mode forward of the run's model on all rows of x (the model's
 * examples, checked by the caller), phase 0; *out is `output`, one row per
 * example, valid until the run's next forward. DGM_ENOTFOUND (naming what
 * the model has) or DGM_ESHAPE for a missing or not per-example output. */
int dgm__run_forward(dgm_run *r, const dgm_tensor *x, const char *output,
                     const dgm_tensor **out);

#endif
