/* checkpoint.h - saving and restoring everything a run needs to resume
 * exactly: parameters and buffers, optimizer slots, update counts, RNG
 * states and the step (never installed). */
#ifndef DGM_CHECKPOINT_H
#define DGM_CHECKPOINT_H

#include <stdint.h>

#include "host_internal.h"

typedef struct dgm__train_state {
    int64_t step;       /* training steps done */
    double train_time;  /* seconds spent training so far */
} dgm__train_state;

/* Write atomically (tmp + rename). */
int dgm__checkpoint_save(dgm_experiment *e, const char *path,
                         const dgm__train_state *st);
/* Restore into a built experiment; every parameter must be present with
 * its shape. */
int dgm__checkpoint_load(dgm_experiment *e, const char *path,
                         dgm__train_state *st);
/* Parameters only (for sampling and evaluation). */
int dgm__checkpoint_load_params(dgm_experiment *e, const char *path);
/* (Re)read the dataset's save_state into e->data_state (none if the
 * dataset has no state): what a checkpoint saves of the data set. */
int dgm__data_state_export(dgm_experiment *e);

#endif
