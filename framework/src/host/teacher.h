/* teacher.h - `teachers:` of an experiment: trained runs run in eval mode
 * on the batch, their outputs added to the step's named tensors as
 * constants (never installed). */
#ifndef DGM_TEACHER_H
#define DGM_TEACHER_H

#include "host_internal.h"

/* Check `teachers:` (a list of {name, run, output, input}), filling in
 * defaults. */
int dgm__teachers_validate(dgm_config *list);
/* Open the teachers listed (a validated `teachers:`, or NULL: none) and
 * run each once on example (one example of the student's data, or NULL)
 * so a bad run, output or data set is refused now. *out is NULL when
 * there are none. Ownership: -> dgm__teachers_close. */
int dgm__teachers_open(dgm__teachers **out, dgm_registry *reg,
                       const dgm_config *list, const dgm_data_info *student,
                       const dgm_tensor *example);
void dgm__teachers_close(dgm__teachers *ts);
/* Add the outputs of the teachers phase `phase`'s objective reads to io. */
int dgm__teachers_forward(dgm_experiment *e, int phase, dgm_graph *g,
                          dgm_vars *io);

#endif
