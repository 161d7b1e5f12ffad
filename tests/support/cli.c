/* cli.c - running the dgm executable from tests (see cli.h). Output goes
 * through files, not pipes, so a chatty stderr cannot block the child. */
#include "cli.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "files.h"

static void take(const char *path, char *buf, size_t n)
{
    size_t len = 0;
    char *s = tc_slurp(path, &len, false);
    remove(path);
    if (!buf || n == 0) {
        free(s);
        return;
    }
    len = len < n - 1 ? len : n - 1;
    if (s)
        memcpy(buf, s, len);
    else
        len = 0;
    buf[len] = '\0';
    free(s);
}

int tc_cli(const char *env, const char *args, char *out, size_t n_out,
           char *err, size_t n_err)
{
    static int calls;
    const char *tmp = getenv("DGM_TEST_TMP");
    if (tmp)
        mkdir(tmp, 0777); /* exists already, mostly */
    char of[1100], ef[1100];
    snprintf(of, sizeof of, "%s/cli-%ld-%d.out", tmp ? tmp : "/tmp",
             (long)getpid(), calls);
    snprintf(ef, sizeof ef, "%s/cli-%ld-%d.err", tmp ? tmp : "/tmp",
             (long)getpid(), calls++);
    size_t len = strlen(args) + (env ? strlen(env) : 0) + 3 * 1100 + 64;
    char *cmd = malloc(len);
    ck_assert_ptr_nonnull(cmd);
    snprintf(cmd, len, "env -u DGM_PLUGIN_PATH %s '%s' %s >'%s' 2>'%s'",
             env ? env : "", DGM_CLI, args, of, ef);
    int st = system(cmd);
    free(cmd);
    take(of, out, n_out);
    take(ef, err, n_err);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}
