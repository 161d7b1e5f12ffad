/* train.h - test support: training an experiment into a run folder and
 * opening the checkpoint it leaves.
 *
 *     ck_assert_int_eq(tc_train(reg, yaml, dir, NULL, 0), 0);
 *     dgm_st_file *f = tc_ckpt(dir);
 *     ...
 *     dgm_st_close(f);
 */
#ifndef DGM_TEST_TRAIN_H
#define DGM_TEST_TRAIN_H

#include "dgm/host.h"
#include "dgm/io.h"

/* Load the experiment YAML at `yaml` with the overrides through reg (a
 * failed load fails the test, naming run_dir) and train it quietly into
 * run_dir. Returns dgm_experiment_run's code. */
int tc_train(dgm_registry *reg, const char *yaml, const char *run_dir,
             const char *const *ov, int n_ov);

/* run_dir/checkpoints/last.safetensors, open (failing the test if it
 * cannot be opened); close it with dgm_st_close. */
dgm_st_file *tc_ckpt(const char *run_dir);

#endif
