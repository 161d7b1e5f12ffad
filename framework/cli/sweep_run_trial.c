/* sweep_run_trial.c - `dgm sweep --run-trial SWEEPDIR INDEX`: what each
 * launched trial runs (a trial's `dgm run`, its output in its folder). */
#define _GNU_SOURCE /* strsignal */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "dgm/error.h"
#include "dgm/host.h"
#include "sweep.h"
#include "sweep_run.h"
#include "tool_files.h"
static int write_json(const char *path, json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(1));
    int rc = s ? dgm__sweep_write_text(path, s)
               : dgm_error(DGM_ENOMEM, "sweep: out of memory");
    free(s);
    return rc;
}

/* This process's rank when a launcher started several (srun -n N, as a
 * multi-rank trial's job script does; mpirun), else 0: read from the
 * environment, as MPI is not initialised yet. */
static int launcher_rank(void)
{
    static const char *vars[] = {"OMPI_COMM_WORLD_RANK", "PMIX_RANK",
                                 "PMI_RANK", "SLURM_PROCID"};
    for (size_t k = 0; k < sizeof vars / sizeof *vars; k++) {
        const char *v = getenv(vars[k]);
        if (v && *v)
            return atoi(v);
    }
    return 0;
}

/* `dgm sweep --run-trial SWEEPDIR INDEX`: one trial, what `dgm run
 * trial.yaml --run-dir DIR --quiet` does, with its output in the run
 * directory's stdout.txt and stderr.txt and trial.json saying when it
 * started (the exit status is what the caller sees: waitpid locally, the
 * job script under Slurm). In this process because a trial's folder name
 * holds '=', which dgm run's arguments would read as an override. */
int dgm__sweep_run_trial(const char *dir, const char *index, int threads,
                         int64_t stop_after, bool cont)
{
    json_t *m;
    int rc = dgm__sweep_manifest_load(dir, &m);
    if (rc < 0) {
        dgm__cli_error("sweep", rc);
        return DGM_EXIT_USAGE;
    }
    char *end;
    long i = strtol(index, &end, 10);
    json_t *t = dgm__sweep_manifest_trial(m, (int)i);
    if (*end || i < 0 || !t) {
        json_decref(m);
        return dgm__sweep_fail("--run-trial: no trial '%s' in %s/manifest.json",
                               index, dir);
    }
    char d[PATH_MAX], cfg[PATH_MAX + 16], p[PATH_MAX + 16], now[40],
        o[PATH_MAX + 16], e[PATH_MAX + 16];
    const char *rd = json_string_value(json_object_get(t, "run_dir"));
    if (!rd || strncmp(rd, "trials/", 7) || strchr(rd + 7, '/') ||
        rd[7] == '.' || !rd[7]) {
        json_decref(m);
        return dgm__sweep_fail("--run-trial: trial %ld's run_dir is not "
                               "trials/<name>",
                               i);
    }
    snprintf(d, sizeof d, "%s/%s", dir, rd);
    json_decref(m);
    snprintf(cfg, sizeof cfg, "%s/trial.yaml", d);
    snprintf(p, sizeof p, "%s/trial.json", d);
    snprintf(o, sizeof o, "%s/stdout.txt", d);
    snprintf(e, sizeof e, "%s/stderr.txt", d);
    fflush(NULL);
    /* A multi-rank trial: rank 0 alone writes the trial's files (as it
     * alone writes the run directory); the other ranks keep the task's
     * output (Slurm's slurm/<job>_<task>.out), where an error of theirs
     * shows. */
    if (launcher_rank() != 0)
        goto run;
    int mode = O_WRONLY | O_CREAT | (cont ? O_APPEND : O_TRUNC);
    int fo = open(o, mode, 0666);
    int fe = open(e, mode, 0666);
    if (fo < 0 || fe < 0)
        return dgm__sweep_fail("%s: %s", fo < 0 ? o : e, strerror(errno));
    dup2(fo, 1);
    dup2(fe, 2);
    close(fo);
    close(fe);
    json_t *tj = json_object();
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    dgm__sweep_set_str(tj, "started", dgm__sweep_now(now, sizeof now));
    dgm__sweep_set_str(tj, "host", host);
    json_object_set_new(tj, "pid", json_integer(getpid()));
    dgm__sweep_set_str(tj, "slurm_job", getenv("SLURM_JOB_ID"));
    rc = write_json(p, tj);
    json_decref(tj);
    if (rc < 0) {
        dgm__cli_error("sweep", rc);
        return DGM_EXIT_FAILED;
    }
run:;
    /* As dgm run: configuration problems exit 2, a failed run 1. */
    dgm_registry *reg;
    dgm_experiment *ex = NULL;
    if ((rc = dgm__cli_registry(&reg, NULL, 0, true)) < 0) {
        dgm__cli_error("run", rc);
        return DGM_EXIT_USAGE;
    }
    int exit = DGM_EXIT_USAGE;
    if ((rc = dgm_experiment_load(&ex, reg, cfg, NULL, 0)) == 0 &&
        (rc = dgm_experiment_build(ex)) == 0) {
        /* An ASHA job stops at its rung's step; a promoted one goes on
         * from the checkpoint it stopped with. */
        dgm_run_options ro = {.run_dir = cont ? NULL : d,
                              .resume_dir = cont ? d : NULL,
                              .quiet = true,
                              .threads = threads > 0 ? threads : 0,
                              .stop_after = stop_after};
        rc = dgm_experiment_run(ex, &ro);
        exit = rc < 0 ? DGM_EXIT_FAILED : DGM_EXIT_OK;
    }
    if (rc < 0)
        dgm__cli_error("run", rc);
    dgm_experiment_free(ex);
    dgm_registry_free(reg);
    return exit;
}
