/* scratch.h - test support: the running test's scratch folder (linked into
 * every test; uses Check), and shell commands on such folders.
 *
 *     tcase_add_checked_fixture(tc, tc_scratch_setup, tc_scratch_teardown);
 *     ... fopen(tc_spath("x.png"), "wb") ...
 */
#ifndef DGM_TEST_SCRATCH_H
#define DGM_TEST_SCRATCH_H

#include <limits.h>

/* <DGM_TEST_TMP, or /tmp>/<program>-<pid>, once tc_scratch_setup ran. */
extern char tc_scratch_dir[PATH_MAX / 2];

/* A checked fixture: makes tc_scratch_dir (and its parent) if it is not
 * there; a failure fails the test. */
void tc_scratch_setup(void);

/* A checked fixture: rm -rf tc_scratch_dir; a failure is only noted on
 * stderr (a teardown must not fail the test). */
void tc_scratch_teardown(void);

/* tc_scratch_dir/name in one of four rotating buffers (so a call can take
 * a few such paths at once); a path too long fails the test. */
const char *tc_spath(const char *name);

/* Run the shell command fmt, ...; a failure fails the test, naming it. */
void tc_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
