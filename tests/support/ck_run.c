/* ck_run.c - see ck_run.h. */
#include "ck_run.h"

#include <stdarg.h>
#include <stdio.h>

int tq_run(Suite *s, const char *tag, bool only)
{
    SRunner *sr = srunner_create(s);
    srunner_run_tagged(sr, NULL, NULL, only ? tag : NULL, only ? NULL : tag,
                       CK_NORMAL);
    int ran = srunner_ntests_run(sr), failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    if (ran == 0) {
        fprintf(stderr, "FAIL: no test ran (%s tag '%s')\n",
                only ? "only" : "all but", tag);
        return 1;
    }
    return failed != 0;
}

TCase *tq_case_(Suite *s, const char *name, ...)
{
    TCase *tc = tcase_create(name);
    va_list ap;
    va_start(ap, name);
    for (const TTest *t; (t = va_arg(ap, const TTest *)) != NULL;)
        tcase_add_test(tc, t);
    va_end(ap);
    suite_add_tcase(s, tc);
    return tc;
}

int tq_skip(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("SKIP: ", stdout);
    vprintf(fmt, ap);
    fputc('\n', stdout);
    va_end(ap);
    fflush(stdout);
    return TQ_SKIP;
}
