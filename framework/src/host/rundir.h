/* rundir.h - the run directory: config.yaml, log.txt, metrics.jsonl,
 * summary.json, checkpoints/, samples/ (never installed). */
#ifndef DGM_RUNDIR_H
#define DGM_RUNDIR_H

#include <stdbool.h>
#include <stdio.h>

#include <jansson.h>

#include "dgm/config.h"

typedef struct dgm__rundir {
    char path[2048];
    FILE *log;
    FILE *metrics;
    bool quiet;
} dgm__rundir;

/* Make runs_root/name/<YYYYmmdd-HHMMSS[-k]> (or `exact`) with its
 * checkpoints/ and samples/ folders, and open the log files. */
int dgm__rundir_create(dgm__rundir *rd, const char *runs_root,
                       const char *name, const char *exact);
/* Reopen an existing run directory for appending (resume). */
int dgm__rundir_open(dgm__rundir *rd, const char *dir);
void dgm__rundir_close(dgm__rundir *rd);
/* "<dir>/<rel>" into buf. */
const char *dgm__rundir_file(const dgm__rundir *rd, const char *rel,
                             char *buf, size_t n);
/* A line to log.txt (and to stderr unless quiet). */
void dgm__rundir_log(dgm__rundir *rd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* One JSON object as one line of metrics.jsonl (steals obj). */
int dgm__rundir_metrics(dgm__rundir *rd, json_t *obj);
int dgm__rundir_write_config(dgm__rundir *rd, const dgm_config *cfg);
/* summary.json, atomically (steals obj). */
int dgm__rundir_summary(dgm__rundir *rd, json_t *obj);

#endif
