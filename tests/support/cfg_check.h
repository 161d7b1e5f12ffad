/* cfg_check.h - test support for the config suites: parse a document
 * that must parse, and assert a call's error code and message parts
 * (ASSERT_ERR, which other suites use too).
 *
 *     dgm_config *c = tc_parse("a: 1\n");
 *     ASSERT_ERR(dgm_config_override(c, "a.b=1"), DGM_ETYPE, "a.b");
 */
#ifndef DGM_TEST_CFG_CHECK_H
#define DGM_TEST_CFG_CHECK_H

#include <check.h>
#include <string.h>

#include "dgm/config.h"
#include "dgm/error.h"

/* text parsed as "t.yaml"; a parse error fails the test, showing the
 * message and the start of the text. The caller frees the tree. */
static inline dgm_config *tc_parse(const char *text)
{
    dgm_config *c = NULL;
    int rc = dgm_config_parse(&c, text, "t.yaml");
    ck_assert_msg(rc == 0, "%s\n---\n%.1500s", dgm_last_error(), text);
    return c;
}

/* call must return code, and the last-error message must hold every
 * string given after it. */
#define ASSERT_ERR(call, code, ...)                                            \
    do {                                                                       \
        int rc_ = (call);                                                      \
        ck_assert_msg(rc_ == (code), "got %s (%s), want %s", dgm_errname(rc_), \
                      dgm_last_error(), dgm_errname(code));                    \
        const char *subs_[] = {__VA_ARGS__};                                   \
        for (size_t i_ = 0; i_ < sizeof subs_ / sizeof subs_[0]; i_++)         \
            ck_assert_msg(strstr(dgm_last_error(), subs_[i_]),                 \
                          "message '%s' lacks '%s'", dgm_last_error(),         \
                          subs_[i_]);                                          \
    } while (0)

#endif
