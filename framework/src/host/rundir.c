/* rundir.c - creating and writing a run directory. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dgm/error.h"
#include "dgm/io.h"
#include "rundir.h"

const char *dgm__rundir_file(const dgm__rundir *rd, const char *rel, char *buf,
                             size_t n)
{
    snprintf(buf, n, "%s/%s", rd->path, rel);
    return buf;
}

static int open_logs(dgm__rundir *rd)
{
    char f[2300];
    rd->log = fopen(dgm__rundir_file(rd, "log.txt", f, sizeof f), "a");
    if (!rd->log)
        return dgm_error(DGM_EIO, "%s: %s", f, strerror(errno));
    rd->metrics = fopen(dgm__rundir_file(rd, "metrics.jsonl", f, sizeof f),
                        "a");
    if (!rd->metrics) {
        fclose(rd->log);
        rd->log = NULL;
        return dgm_error(DGM_EIO, "%s: %s", f, strerror(errno));
    }
    return 0;
}

static int make_subdirs(dgm__rundir *rd)
{
    char f[2300];
    int rc = dgm_mkdirs(dgm__rundir_file(rd, "checkpoints", f, sizeof f));
    if (rc == 0)
        rc = dgm_mkdirs(dgm__rundir_file(rd, "samples", f, sizeof f));
    return rc;
}

int dgm__rundir_create(dgm__rundir *rd, const char *runs_root,
                       const char *name, const char *exact)
{
    memset(rd, 0, sizeof *rd);
    int rc;
    if (exact) {
        snprintf(rd->path, sizeof rd->path, "%s", exact);
        if ((rc = dgm_mkdirs(rd->path)) < 0)
            return rc;
    } else {
        char stamp[32];
        time_t now = time(NULL);
        struct tm tmv;
        localtime_r(&now, &tmv);
        strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tmv);
        char parent[1800];
        snprintf(parent, sizeof parent, "%s/%s", runs_root, name);
        if ((rc = dgm_mkdirs(parent)) < 0)
            return rc;
        /* mkdir is the atomic claim: two runs started in the same second
         * get different folders. */
        for (int k = 0;; k++) {
            if (k == 0)
                snprintf(rd->path, sizeof rd->path, "%s/%s", parent, stamp);
            else
                snprintf(rd->path, sizeof rd->path, "%s/%s-%d", parent, stamp,
                         k);
            if (mkdir(rd->path, 0777) == 0)
                break;
            if (errno != EEXIST || k > 1000)
                return dgm_error(DGM_EIO, "%s: %s", rd->path,
                                 strerror(errno));
        }
    }
    if ((rc = make_subdirs(rd)) < 0)
        return rc;
    return open_logs(rd);
}

int dgm__rundir_open(dgm__rundir *rd, const char *dir)
{
    memset(rd, 0, sizeof *rd);
    snprintf(rd->path, sizeof rd->path, "%s", dir);
    struct stat st;
    if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
        return dgm_error(DGM_ENOTFOUND, "%s: not a run directory", dir);
    int rc = make_subdirs(rd);
    return rc < 0 ? rc : open_logs(rd);
}

void dgm__rundir_close(dgm__rundir *rd)
{
    if (rd->log)
        fclose(rd->log);
    if (rd->metrics)
        fclose(rd->metrics);
    rd->log = rd->metrics = NULL;
}

void dgm__rundir_log(dgm__rundir *rd, const char *fmt, ...)
{
    char line[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (rd && rd->log) {
        fprintf(rd->log, "%s\n", line);
        fflush(rd->log);
    }
    if (!rd || !rd->quiet)
        fprintf(stderr, "%s\n", line);
}

int dgm__rundir_metrics(dgm__rundir *rd, json_t *obj)
{
    char *s = json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(9));
    json_decref(obj);
    if (!s)
        return dgm_error(DGM_ENOMEM, "metrics: cannot encode JSON");
    if (!rd->metrics) { /* a rank other than 0 of a data-parallel run */
        free(s);
        return 0;
    }
    fprintf(rd->metrics, "%s\n", s);
    fflush(rd->metrics);
    free(s);
    return 0;
}

int dgm__rundir_write_config(dgm__rundir *rd, const dgm_config *cfg)
{
    char *s = dgm_config_to_string(cfg);
    if (!s)
        return dgm_error(DGM_ENOMEM, "config: cannot write");
    char f[2300];
    int rc = dgm_write_file_atomic(
        dgm__rundir_file(rd, "config.yaml", f, sizeof f), s, strlen(s));
    free(s);
    return rc;
}

int dgm__rundir_summary(dgm__rundir *rd, json_t *obj)
{
    char *s = json_dumps(obj, JSON_INDENT(2) | JSON_REAL_PRECISION(9));
    json_decref(obj);
    if (!s)
        return dgm_error(DGM_ENOMEM, "summary: cannot encode JSON");
    char f[2300];
    size_t len = strlen(s);
    s[len] = '\0';
    int rc = dgm_write_file_atomic(
        dgm__rundir_file(rd, "summary.json", f, sizeof f), s, len);
    free(s);
    return rc;
}
