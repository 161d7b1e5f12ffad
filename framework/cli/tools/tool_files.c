/* tool_files.c - folders and atomic writes for sweep, compare and
 * report. */
#define _XOPEN_SOURCE 700 /* nftw */
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dgm/error.h"
#include "tool_files.h"

int dgm__tool_mkdirs(const char *path)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s", path);
    for (char *s = p + 1;; s++) {
        if (*s == '/' || !*s) {
            char c = *s;
            *s = '\0';
            if (mkdir(p, 0777) < 0 && errno != EEXIST)
                return dgm_error(DGM_EIO, "%s: cannot create: %s", p,
                                 strerror(errno));
            if (!c)
                break;
            *s = c;
        }
    }
    return 0;
}

static int rm_entry(const char *p, const struct stat *st, int flag,
                    struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return flag == FTW_DP ? rmdir(p) : unlink(p);
}

int dgm__tool_remove_tree(const char *dir)
{
    if (access(dir, F_OK) != 0)
        return 0;
    if (nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) < 0)
        return dgm_error(DGM_EIO, "%s: cannot remove: %s", dir,
                         strerror(errno));
    return 0;
}

int dgm__tool_write_file(const char *path, const char *data, size_t len)
{
    char tmp[PATH_MAX + 32];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f)
        return dgm_error(DGM_EIO, "%s: %s", tmp, strerror(errno));
    bool ok = fwrite(data, 1, len, f) == len;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) < 0) {
        int err = errno;
        unlink(tmp);
        return dgm_error(DGM_EIO, "%s: cannot write: %s", path, strerror(err));
    }
    return 0;
}
