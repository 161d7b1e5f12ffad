/* files.c - folders and whole files written so that a reader never sees
 * half of one: the run directory and the CLI's tools use these. */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dgm/error.h"
#include "dgm/io.h"

int dgm_mkdirs(const char *path)
{
    char buf[PATH_MAX];
    int len = snprintf(buf, sizeof buf, "%s", path ? path : "");
    if (len <= 0 || (size_t)len >= sizeof buf)
        return dgm_error(DGM_EINVAL, "mkdirs: path empty or too long: %.200s",
                         path ? path : "(null)");
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0777) < 0 && errno != EEXIST)
            return dgm_error(DGM_EIO, "%s: cannot create: %s", buf,
                             strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0777) < 0 && errno != EEXIST)
        return dgm_error(DGM_EIO, "%s: cannot create: %s", buf,
                         strerror(errno));
    return 0;
}

int dgm_write_file_atomic(const char *path, const void *data, size_t len)
{
    char tmp[PATH_MAX + 32];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f)
        return dgm_error(DGM_EIO, "%s: %s", tmp, strerror(errno));
    bool ok = fwrite(data, 1, len, f) == len;
    ok = fflush(f) == 0 && ok;
    ok = fsync(fileno(f)) == 0 && ok;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) < 0) {
        int err = errno;
        unlink(tmp);
        return dgm_error(DGM_EIO, "%s: cannot write: %s", path, strerror(err));
    }
    return 0;
}
