/* registry_fixture.c - scratch folders of test plugins (see
 * registry_fixture.h). */
#include "registry_fixture.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

void tc_mkdir_p(const char *path)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(buf, 0755);
            *p = '/';
        }
    ck_assert_msg(mkdir(buf, 0755) == 0 || errno == EEXIST, "mkdir %s: %s", buf,
                  strerror(errno));
}

void tc_scratch(char *out, size_t n, const char *tag, ...)
{
    const char *tmp = getenv("DGM_TEST_TMP");
    snprintf(out, n, "%s/registry-%ld-%s", tmp ? tmp : "/tmp", (long)getpid(),
             tag);
    tc_mkdir_p(out);
    va_list ap;
    va_start(ap, tag);
    for (const char *f; (f = va_arg(ap, const char *));) {
        char cmd[3 * PATH_MAX];
        snprintf(cmd, sizeof cmd, "cp '%s/%s.so' '%s/'", DGM_TEST_PLUGIN_DIR, f,
                 out);
        ck_assert_msg(system(cmd) == 0, "%s failed", cmd);
    }
    va_end(ap);
}

bool tc_ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}
