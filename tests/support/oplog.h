/* oplog.h - test support: which ops a suite has checked, for the op_table
 * test (tests/test_op_table.c), which holds every op of
 * framework/src/autograd/ops.def to the checks its line promises.
 *
 *     gc_result r = gc_gradcheck(build, ...);   // logs "grad" itself
 *     ...
 *     ck_assert_msg(ok, ...);
 *     oplog_checked(y, OPLOG_REF);   // a hand-written check of y's values
 *
 * Each call appends one line "<op name> <how>" per op node that y depends
 * on to the file $DGM_OP_LOG (ctest sets it to op-log/<suite>.log; unset:
 * nothing is written). The file is emptied when the test program starts,
 * so it lists what this run checked, whatever ran before. Call it only
 * after the check passed.
 */
#ifndef DGM_TEST_OPLOG_H
#define DGM_TEST_OPLOG_H

#include <stdbool.h>

#include "dgm/graph.h"

/* What was checked about the ops y depends on. */
#define OPLOG_GRAD "grad" /* gradient on the reference kernel vs numeric */
#define OPLOG_REF "ref"   /* values on the reference kernel vs expected */
#define OPLOG_DNNL "dnnl" /* reference kernel vs the oneDNN path */
/* gradient vs numeric on DGM_BACKEND_DNNL: for an op with no oneDNN path
 * (REF in ops.def) that is its reference kernel too */
#define OPLOG_GRAD_DNNL "grad-dnnl"

/* y must come from a build with grad recording on (dgm_graph_set_grad):
 * without it nodes keep no inputs and only y's own op is seen. */
void oplog_checked(const dgm_var *y, const char *how);
/* Whether $DGM_OP_LOG is set (skip extra work for the log otherwise). */
bool oplog_enabled(void);

#endif
