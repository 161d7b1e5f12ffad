/* scratch.c - see scratch.h. */
#define _GNU_SOURCE /* program_invocation_short_name, vasprintf */
#include "scratch.h"

#include <check.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char tc_scratch_dir[PATH_MAX / 2];

void tc_scratch_setup(void)
{
    const char *tmp = getenv("DGM_TEST_TMP");
    if (!tmp)
        tmp = "/tmp";
    mkdir(tmp, 0755);
    ck_assert_int_lt(snprintf(tc_scratch_dir, sizeof tc_scratch_dir,
                              "%s/%s-%ld", tmp, program_invocation_short_name,
                              (long)getpid()),
                     (int)sizeof tc_scratch_dir);
    ck_assert_msg(mkdir(tc_scratch_dir, 0755) == 0 || errno == EEXIST,
                  "mkdir %s: %s", tc_scratch_dir, strerror(errno));
}

void tc_scratch_teardown(void)
{
    char cmd[PATH_MAX];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tc_scratch_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tc_scratch_dir);
}

const char *tc_spath(const char *name)
{
    static char buf[4][PATH_MAX];
    static int k;
    k = (k + 1) % 4;
    ck_assert_int_lt(
        snprintf(buf[k], sizeof buf[k], "%s/%s", tc_scratch_dir, name),
        (int)sizeof buf[k]);
    return buf[k];
}

void tc_sh(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *cmd = NULL; /* any length: a command may name several paths */
    ck_assert_int_ge(vasprintf(&cmd, fmt, ap), 0);
    va_end(ap);
    ck_assert_msg(system(cmd) == 0, "failed: %s", cmd);
    free(cmd);
}
