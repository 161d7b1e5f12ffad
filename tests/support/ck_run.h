/* ck_run.h - test support (linked into every test; uses Check): building
 * a suite's test cases in one call each (tq_case), and running a suite
 * whose cases need something installed (a data set, an unsanitised
 * python3) as a second ctest entry that can be skipped.
 *
 * The cases that need it carry a Check tag; the suite's own entry runs
 * everything else, the second entry only the tagged cases, or exits 77
 * (ctest's SKIP_RETURN_CODE) with the reason when the need is not met:
 *
 *     tcase_set_tags(tc, "installed");
 *     ...
 *     int main(int argc, char **argv)
 *     {
 *         bool want = argc > 1 && !strcmp(argv[1], "installed");
 *         if (want && access(DIR, R_OK) != 0)
 *             return tq_skip("%s is absent (Debian package x)", DIR);
 *         return tq_run(suite(), "installed", want);
 *     }
 *
 * tests/CMakeLists.txt registers the second entry (dgm_add_skippable_test).
 */
#ifndef DGM_TEST_CK_RUN_H
#define DGM_TEST_CK_RUN_H

#include <check.h>
#include <stdbool.h>

/* The exit status ctest reads as "skipped" (SKIP_RETURN_CODE). */
#define TQ_SKIP 77

/* Run the cases tagged `tag` (only == true) or all others (only == false);
 * frees s. Returns 0 when all passed, 1 when one failed or none ran (a
 * filter that matches nothing must not pass). */
int tq_run(Suite *s, const char *tag, bool only);

/* Add to s a test case named `name` holding the tests listed, and return
 * it for its settings (timeout, fixture, tags, loop tests):
 *
 *     tq_case(s, "fork", test_fork);
 *     TCase *tc = tq_case(s, "io", test_read, test_write);
 *     tcase_set_timeout(tc, 60);
 */
#define tq_case(s, name, ...)                                                  \
    tq_case_((s), (name), __VA_ARGS__, (const TTest *)NULL)
TCase *tq_case_(Suite *s, const char *name, ...);

/* Print "SKIP: <reason>" and return TQ_SKIP, for main to return. */
int tq_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
