/* tool_files.c - removing a tree, for sweep's trial folders. */
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
