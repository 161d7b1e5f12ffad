/* sweep_slurm.c - `dgm sweep --launcher slurm`: one job array (sbatch),
 * its script, polling squeue/sacct, scancel on a stop. */
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
#include "dgm/io.h"
#include "dgm/host.h"
#include "sweep.h"
#include "sweep_run.h"
#include "tool_files.h"

/* Run argv, its stdout into out (n bytes); returns its exit status or -1. */
static int capture(char *const argv[], char *out, size_t n)
{
    int fd[2];
    if (pipe(fd) < 0)
        return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(fd[0]);
        close(fd[1]);
        return -1;
    }
    if (pid == 0) {
        close(fd[0]);
        dup2(fd[1], 1);
        execvp(argv[0], argv);
        dprintf(2, "dgm sweep: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(fd[1]);
    size_t got = 0;
    ssize_t r;
    while ((r = read(fd[0], out + got, n - 1 - got)) > 0 ||
           (r < 0 && errno == EINTR))
        if (r > 0 && (got += (size_t)r) >= n - 1)
            break;
    out[got] = '\0';
    close(fd[0]);
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Shell-quote s into buf ('...' with ' escaped). */
static const char *shq(const char *s, char *buf, size_t n)
{
    size_t j = 0;
    buf[j++] = '\'';
    for (; *s && j + 6 < n; s++) {
        if (*s == '\'') {
            memcpy(buf + j, "'\\''", 4);
            j += 4;
        } else {
            buf[j++] = *s;
        }
    }
    buf[j++] = '\'';
    buf[j] = '\0';
    return buf;
}

/* step > 0: an ASHA job's script, training to that step (cont: on from
 * the trial's checkpoint). */
static int write_job_script(dgm__sweep_run *c, const char *path, int64_t step,
                            bool cont)
{
    const dgm__sweep_slurm *sl = &c->sweep->slurm;
    char q1[PATH_MAX * 2], q2[PATH_MAX * 2], text[8 * PATH_MAX], sa[32];
    char srun[64] = "";
    snprintf(sa, sizeof sa, "%lld", (long long)step);
    /* ntasks > 1: the trial is one MPI job of that many ranks, started
     * by srun inside the array task's allocation. */
    if (sl->ntasks > 1)
        snprintf(srun, sizeof srun, "srun --mpi=pmix -n %lld ",
                 (long long)sl->ntasks);
    const char *name = json_string_value(json_object_get(c->manifest, "name"));
    int len = snprintf(
        text, sizeof text,
        "#!/bin/sh\n"
        "# Written by dgm sweep: one task of the job array runs trial\n"
        "# $SLURM_ARRAY_TASK_ID of %s/manifest.json.\n"
        "#SBATCH --job-name=dgm-%s\n"
        "#SBATCH --output=%s/slurm/%%A_%%a.out\n"
        "#SBATCH --cpus-per-task=%lld\n",
        c->dir, name && name[0] ? name : "sweep", c->dir,
        (long long)sl->cpus_per_task);
    if (sl->ntasks > 1)
        len += snprintf(text + len, sizeof text - (size_t)len,
                        "#SBATCH --ntasks=%lld\n", (long long)sl->ntasks);
    if (sl->partition)
        len += snprintf(text + len, sizeof text - (size_t)len,
                        "#SBATCH --partition=%s\n", sl->partition);
    if (sl->time)
        len += snprintf(text + len, sizeof text - (size_t)len,
                        "#SBATCH --time=%s\n", sl->time);
    /* The shell sees how the trial ended, a crash (128 + signal)
     * included, and leaves it where dgm sweep looks. */
    snprintf(text + len, sizeof text - (size_t)len,
             "d=%s\n"
             "i=\"$SLURM_ARRAY_TASK_ID\"\n"
             "%s%s sweep --run-trial \"$d\" \"$i\" "
             "--threads \"${SLURM_CPUS_PER_TASK:-%lld}\"%s%s%s\n"
             "rc=$?\n"
             "echo \"$rc\" > \"$d/slurm/exit.$i.tmp\" && "
             "mv -f \"$d/slurm/exit.$i.tmp\" \"$d/slurm/exit.$i\"\n"
             "exit \"$rc\"\n",
             shq(c->dir, q2, sizeof q2), srun, shq(c->exe, q1, sizeof q1),
             (long long)sl->cpus_per_task, step ? " --stop-after " : "",
             step ? sa : "", cont ? " --continue" : "");
    int rc = dgm__sweep_write_text(path, text);
    if (rc == 0)
        chmod(path, 0755);
    return rc;
}

static void scancel(const char *job)
{
    char out[256];
    char *argv[] = {"scancel", (char *)job, NULL};
    if (capture(argv, out, sizeof out) != 0)
        fprintf(stderr, "dgm sweep: warning: scancel %s failed\n", job);
}

/* Read what the task of trial i left: trial.json once it started,
 * slurm/exit.<i> (written by the job script) once it ended. */
static bool poll_trial(dgm__sweep_run *c, int i, bool *changed)
{
    char d[PATH_MAX], p[PATH_MAX + 16], x[2100];
    dgm__sweep_trial_dir(c, i, d, sizeof d);
    snprintf(p, sizeof p, "%s/trial.json", d);
    snprintf(x, sizeof x, "%s/slurm/exit.%d", c->dir, i);
    json_t *tj = json_load_file(p, 0, NULL);
    json_t *t = dgm__sweep_manifest_trial(c->manifest, i);
    const char *started = json_string_value(json_object_get(tj, "started"));
    if (started && strcmp(dgm__sweep_status_of(c, i), "running")) {
        dgm__sweep_set_str(t, "status", "running");
        dgm__sweep_set_str(t, "started", started);
        *changed = true;
    }
    json_decref(tj);
    FILE *f = fopen(x, "r");
    int code;
    if (!f)
        return false;
    bool ended = fscanf(f, "%d", &code) == 1;
    fclose(f);
    if (ended) {
        dgm__sweep_finish_trial(c, i, code,
                                code > 128 && code < 128 + 65 ? code - 128 : 0,
                                false, NULL);
        *changed = true;
    }
    return ended;
}

int dgm__sweep_run_slurm(dgm__sweep_run *c, const int *todo, int n_todo)
{
    char sdir[2100], script[2200], cwd[PATH_MAX];
    int rc;
    snprintf(sdir, sizeof sdir, "%s/slurm", c->dir);
    snprintf(script, sizeof script, "%s/job.sh", sdir);
    if ((rc = dgm_mkdirs(sdir)) < 0 ||
        (rc = write_job_script(c, script, 0, false)) < 0)
        return rc;
    for (int k = 0; k < n_todo; k++) {
        char x[2200];
        snprintf(x, sizeof x, "%s/exit.%d", sdir, todo[k]);
        unlink(x);
        if ((rc = dgm__sweep_prepare_trial(c, todo[k])) < 0)
            return rc;
    }
    /* --array=0-(N-1)%P, or the list of trials a resume reruns. */
    size_t cap = (size_t)n_todo * 12 + 64;
    char *spec = malloc(cap);
    if (!spec || !getcwd(cwd, sizeof cwd)) {
        free(spec);
        return dgm_error(DGM_ENOMEM, "sweep: out of memory");
    }
    size_t len = (size_t)snprintf(spec, cap, "--array=");
    bool contiguous = true;
    for (int k = 1; k < n_todo; k++)
        contiguous &= todo[k] == todo[k - 1] + 1;
    if (contiguous)
        len += (size_t)snprintf(spec + len, cap - len, "%d-%d", todo[0],
                                todo[n_todo - 1]);
    else
        for (int k = 0; k < n_todo; k++)
            len += (size_t)snprintf(spec + len, cap - len, "%s%d", k ? "," : "",
                                    todo[k]);
    int64_t par = c->sweep->slurm.max_parallel;
    if (par > 0)
        snprintf(spec + len, cap - len, "%%%lld", (long long)par);
    const dgm__sweep_slurm *sl = &c->sweep->slurm;
    char **argv = calloc((size_t)sl->n_extra + 8, sizeof *argv);
    if (!argv) {
        free(spec);
        return dgm_error(DGM_ENOMEM, "sweep: out of memory");
    }
    char chdir_arg[PATH_MAX + 16];
    snprintf(chdir_arg, sizeof chdir_arg, "--chdir=%s", cwd);
    int a = 0;
    argv[a++] = "sbatch";
    argv[a++] = "--parsable";
    argv[a++] = spec;
    argv[a++] = chdir_arg;
    for (int k = 0; k < sl->n_extra; k++)
        argv[a++] = sl->extra_args[k];
    argv[a++] = script;
    char out[256];
    int st = capture(argv, out, sizeof out);
    free(argv);
    if (st != 0) {
        rc = dgm_error(DGM_EIO, "sbatch %s ... %s failed (exit %d)%s", spec,
                       script, st,
                       st == 127 ? ": is Slurm installed (sbatch)?" : "");
        free(spec);
        return rc;
    }
    free(spec);
    char job[64];
    size_t jl = strcspn(out, ";\n ");
    snprintf(job, sizeof job, "%.*s", (int)jl, out);
    json_object_set_new(c->manifest, "slurm_job", json_string(job));
    dgm__sweep_save(c);
    if (!c->quiet) {
        printf("dgm sweep: submitted job array %s (%d tasks)\n", job, n_todo);
        fflush(stdout);
    }
    struct sigaction sa = {0}, old_int, old_term;
    sa.sa_handler = dgm__sweep_on_signal;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    bool *ended = calloc((size_t)n_todo, sizeof *ended);
    bool cancelled = false, queue_empty = false;
    if (!ended)
        return dgm_error(DGM_ENOMEM, "sweep: out of memory");
    int errors = 0;
    while (!queue_empty) {
        bool any_failed = false;
        for (int k = 0; k < n_todo; k++)
            any_failed |=
                ended[k] && dgm__sweep_failed(dgm__sweep_status_of(c, todo[k]));
        if (!cancelled &&
            (dgm__sweep_got_signal || (c->fail_fast && any_failed))) {
            fprintf(stderr, "dgm sweep: %s; cancelling job %s\n",
                    dgm__sweep_got_signal ? strsignal(dgm__sweep_got_signal)
                                          : "--fail-fast: a trial failed",
                    job);
            scancel(job);
            cancelled = true;
        }
        /* squeue first: whatever ended before the queue emptied is read
         * below, after the last look. A failed squeue (Ctrl-C reached
         * it, the controller busy) is asked again, for a while. */
        char q[4096];
        char *sq[] = {"squeue", "-h", "-j", job, "-o", "%i %T", NULL};
        int qs = capture(sq, q, sizeof q);
        if (qs != 0 && ++errors < 25) {
            struct timespec ts = {0, 200 * 1000 * 1000};
            nanosleep(&ts, NULL);
            continue;
        }
        errors = 0;
        queue_empty = qs != 0 || q[strspn(q, " \n")] == '\0';
        bool changed = false;
        for (int k = 0; k < n_todo; k++)
            if (!ended[k])
                ended[k] = poll_trial(c, todo[k], &changed);
        if (changed)
            dgm__sweep_save(c);
        if (!queue_empty) {
            struct timespec ts = {0, 200 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    for (int k = 0; k < n_todo; k++) {
        if (ended[k])
            continue;
        int i = todo[k];
        char msg[300];
        bool started = !strcmp(dgm__sweep_status_of(c, i), "running");
        if (cancelled) {
            if (started)
                dgm__sweep_finish_trial(c, i, -1, 0, true, NULL);
            /* a task that never started stays pending for --resume */
            continue;
        }
        snprintf(msg, sizeof msg,
                 "the task left no exit status (killed by Slurm? see "
                 "slurm/%s_%d.out)",
                 job, i);
        dgm__sweep_finish_trial(c, i, -1, 0, false, msg);
    }
    dgm__sweep_save(c);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    free(ended);
    return 0;
}

/* ---- ASHA on Slurm ------------------------------------------------------
 * Each job (a trial trained to a rung) is its own one-task array job
 * (--array=<trial>, so the script and exit files are the array's), its
 * script the rung's (slurm/job-<step>[-cont].sh); the scheduler decides
 * as jobs end, so promotions need no full rung. */

static int submit_asha(dgm__sweep_run *c, int i, int64_t step, bool cont,
                       char *job, size_t n)
{
    char sdir[2100], script[2300], x[2200], spec[40], cwd[PATH_MAX];
    char chdir_arg[PATH_MAX + 16], out[256];
    int rc;
    snprintf(sdir, sizeof sdir, "%s/slurm", c->dir);
    snprintf(script, sizeof script, "%s/job-%lld%s.sh", sdir, (long long)step,
             cont ? "-cont" : "");
    if ((rc = dgm_mkdirs(sdir)) < 0 ||
        (rc = write_job_script(c, script, step, cont)) < 0)
        return rc;
    snprintf(x, sizeof x, "%s/exit.%d", sdir, i);
    unlink(x);
    if (!getcwd(cwd, sizeof cwd))
        return dgm_error(DGM_EIO, "sweep: getcwd: %s", strerror(errno));
    snprintf(spec, sizeof spec, "--array=%d", i);
    snprintf(chdir_arg, sizeof chdir_arg, "--chdir=%s", cwd);
    const dgm__sweep_slurm *sl = &c->sweep->slurm;
    char **argv = calloc((size_t)sl->n_extra + 8, sizeof *argv);
    if (!argv)
        return dgm_error(DGM_ENOMEM, "sweep: out of memory");
    int a = 0;
    argv[a++] = "sbatch";
    argv[a++] = "--parsable";
    argv[a++] = spec;
    argv[a++] = chdir_arg;
    for (int k = 0; k < sl->n_extra; k++)
        argv[a++] = sl->extra_args[k];
    argv[a++] = script;
    int st = capture(argv, out, sizeof out);
    free(argv);
    if (st != 0)
        return dgm_error(DGM_EIO, "sbatch %s ... %s failed (exit %d)%s", spec,
                         script, st,
                         st == 127 ? ": is Slurm installed (sbatch)?" : "");
    snprintf(job, n, "%.*s", (int)strcspn(out, ";\n "), out);
    return 0;
}

typedef struct asha_job {
    int trial;
    char id[64];
    bool cancelled;
} asha_job;

/* The exit status a job's script left, or -1 while none. */
static int exit_left(dgm__sweep_run *c, int i)
{
    char x[2200];
    snprintf(x, sizeof x, "%s/slurm/exit.%d", c->dir, i);
    FILE *f = fopen(x, "r");
    int code = -1;
    if (f) {
        if (fscanf(f, "%d", &code) != 1)
            code = -1;
        fclose(f);
    }
    return code;
}

int dgm__sweep_run_slurm_asha(dgm__sweep_run *c)
{
    int64_t par = c->sweep->slurm.max_parallel;
    int cap = c->sweep->n_trials, n_run = 0, rc = 0;
    asha_job *run = calloc((size_t)cap, sizeof *run);
    if (!run)
        return dgm_error(DGM_ENOMEM, "sweep: out of memory");
    struct sigaction sa = {0}, old_int, old_term;
    sa.sa_handler = dgm__sweep_on_signal;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    bool stopping = false;
    for (;;) {
        while (!stopping && n_run < cap && (par <= 0 || n_run < par)) {
            int i;
            int64_t step;
            char ck[PATH_MAX + 40], now[40];
            if (!dgm__sweep_asha_take(c, &i, &step))
                break;
            dgm__sweep_trial_dir(c, i, ck, sizeof ck);
            strcat(ck, "/checkpoints/last.safetensors");
            bool cont = access(ck, F_OK) == 0;
            if (!cont && dgm__sweep_prepare_trial(c, i) < 0) {
                dgm__sweep_asha_ended(c, i, -1, 0, false);
                dgm__sweep_save(c);
                continue;
            }
            /* sbatch refused: this job runs again on --resume, the
             * others are cancelled. */
            if ((rc = submit_asha(c, i, step, cont, run[n_run].id,
                                  sizeof run[n_run].id)) < 0) {
                dgm__sweep_asha_ended(c, i, -1, 0, true);
                stopping = true;
                for (int k = 0; k < n_run; k++)
                    if (!run[k].cancelled) {
                        scancel(run[k].id);
                        run[k].cancelled = true;
                    }
                break;
            }
            run[n_run].trial = i;
            run[n_run++].cancelled = false;
            json_t *t = dgm__sweep_manifest_trial(c->manifest, i);
            dgm__sweep_set_str(t, "status", "running");
            dgm__sweep_set_str(t, "started", dgm__sweep_now(now, sizeof now));
            dgm__sweep_save(c);
            if (!c->quiet) {
                printf("dgm sweep: job %s: %s to step %lld\n",
                       run[n_run - 1].id,
                       json_string_value(json_object_get(t, "name")),
                       (long long)step);
                fflush(stdout);
            }
        }
        if (n_run == 0)
            break;
        if (dgm__sweep_got_signal && !stopping) {
            fprintf(stderr, "dgm sweep: %s; cancelling the running jobs\n",
                    strsignal(dgm__sweep_got_signal));
            stopping = true;
            for (int k = 0; k < n_run; k++) {
                scancel(run[k].id);
                run[k].cancelled = true;
            }
        }
        struct timespec ts = {0, 200 * 1000 * 1000};
        nanosleep(&ts, NULL);
        /* squeue first, the exit files after: a job that ended before
         * the look has its file by now. */
        char q[8192];
        char *sq[] = {"squeue", "-h", "-o", "%A", NULL};
        bool queue_ok = capture(sq, q, sizeof q) == 0;
        for (int k = 0; k < n_run; k++) {
            int i = run[k].trial, code = exit_left(c, i);
            bool queued = !queue_ok;
            for (char *p = q; queue_ok && (p = strstr(p, run[k].id));
                 p += strlen(run[k].id))
                queued |= (p == q || p[-1] == '\n') &&
                          (p[strlen(run[k].id)] == '\n' ||
                           p[strlen(run[k].id)] == '\0');
            if (code < 0 && queued)
                continue;
            if (code >= 0)
                dgm__sweep_asha_ended(
                    c, i, code, code > 128 && code < 128 + 65 ? code - 128 : 0,
                    false);
            else
                /* gone without a status: cancelled by dgm sweep (runs
                 * again on --resume), else killed by Slurm (a failure) */
                dgm__sweep_asha_ended(c, i, -1, 0, run[k].cancelled);
            dgm__sweep_save(c);
            run[k--] = run[--n_run];
        }
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    free(run);
    return rc;
}
