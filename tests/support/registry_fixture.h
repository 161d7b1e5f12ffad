/* registry_fixture.h - test support for the registry suites (registry,
 * registry_cli): scratch folders holding copies of the test plugins.
 *
 *     char dir[PATH_MAX];
 *     tc_scratch(dir, sizeof dir, "dup", "tp_dup_a", "tp_dup_b", NULL);
 *     ck_assert_contains(dgm_last_error(), "tp_dup_a.so");
 */
#ifndef DGM_TEST_REGISTRY_FIXTURE_H
#define DGM_TEST_REGISTRY_FIXTURE_H

#include <check.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

/* mkdir -p path; a failure other than "exists" fails the test. */
void tc_mkdir_p(const char *path);

/* A fresh folder <DGM_TEST_TMP>/registry-<pid>-<tag> holding copies of
 * the named test plugins (NULL-ended); its path in out. */
void tc_scratch(char *out, size_t n, const char *tag, ...);

/* Whether s ends with suffix. */
bool tc_ends_with(const char *s, const char *suffix);

#define ck_assert_contains(hay, needle)                                        \
    ck_assert_msg(strstr((hay), (needle)) != NULL,                             \
                  "expected \"%s\" in \"%s\"", (needle), (hay))

#endif
