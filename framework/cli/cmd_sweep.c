/* cmd_sweep.c - `dgm sweep`: expand an experiment's sweep into trials,
 * validate them all, and run each as its own `dgm run` process, locally
 * (N at a time) or as one Slurm job array; manifest.json tracks them. */
#define _GNU_SOURCE /* strsignal */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "dgm/error.h"
#include "dgm/host.h"
#include "sweep.h"
#include "tool_files.h"

static const char help[] =
    "usage: dgm sweep EXPERIMENT.yaml [KEY=VALUE ...] [options]\n"
    "       dgm sweep --resume SWEEPDIR [options]\n"
    "\n"
    "Expand the experiment's `sweep:` section (grid, zip, random, seeds)\n"
    "into trials, validate every trial's config, and run each trial as its\n"
    "own `dgm run` into SWEEPDIR/trials/<name>/. SWEEPDIR/manifest.json\n"
    "lists the trials, their overrides and their status. KEY=VALUE\n"
    "overrides apply to every trial.\n"
    "\n"
    "options:\n"
    "  -j N                 trials at once (local launcher; default 1)\n"
    "  --launcher L         local (default) or slurm (one job array)\n"
    "  --resume SWEEPDIR    run the trials that are not done (failed,\n"
    "                       diverged, stopped, unfinished)\n"
    "  --fail-fast          stop at the first failed trial (the running\n"
    "                       ones are stopped)\n"
    "  --dry-run            list the trials and validate them; run nothing\n"
    "  --sweep-dir DIR      the sweep directory (default:\n"
    "                       RUNS/<name>/sweep-<YYYYmmdd-HHMMSS>)\n"
    "  --runs DIR           RUNS above (default: runs)\n"
    "  --threads K          kernel threads per trial (default: the cores\n"
    "                       divided among the trials running at once)\n"
    "  --quiet              no line per finished trial\n"
    "\n"
    "exit status: 0 every trial done, 1 some trial failed, diverged or was\n"
    "stopped, 2 usage or configuration error (nothing ran)\n";

/* ---- what a sweep run needs -------------------------------------------- */

typedef struct ctx {
    char dir[2048];     /* the sweep directory, absolute */
    char exe[PATH_MAX]; /* this dgm */
    dgm__sweep *sweep;
    json_t *manifest;
    int jobs, threads;
    bool fail_fast, quiet;
    int n_todo, n_finished;
} ctx;

static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
    got_signal = sig;
}
static void on_child(int sig)
{
    (void)sig;
}

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("dgm sweep: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return DGM_EXIT_USAGE;
}

static int write_text(const char *path, const char *text)
{
    return dgm__tool_write_file(path, text, strlen(text));
}

/* From the expansion's (sanitised) name, not from the manifest's text:
 * a rerun empties this folder, which must stay inside the sweep. */
static const char *trial_dir(const ctx *c, int i, char *buf, size_t n)
{
    snprintf(buf, n, "%s/trials/%s", c->dir, c->sweep->trials[i].name);
    return buf;
}

static const char *status_of(const ctx *c, int i)
{
    return json_string_value(
        json_object_get(dgm__sweep_manifest_trial(c->manifest, i), "status"));
}

static void set_str(json_t *o, const char *k, const char *v)
{
    json_object_set_new(o, k, v ? json_string(v) : json_null());
}

static void save(ctx *c)
{
    if (dgm__sweep_manifest_write(c->dir, c->manifest) < 0)
        fprintf(stderr, "dgm sweep: warning: %s\n", dgm_last_error());
}

/* Trial i's run directory emptied and its config written: a rerun starts
 * from nothing, as the first run did. */
static int prepare_trial(ctx *c, int i)
{
    char d[PATH_MAX], p[PATH_MAX + 16];
    trial_dir(c, i, d, sizeof d);
    dgm_config *cfg;
    int rc;
    if ((rc = dgm__tool_remove_tree(d)) < 0 || (rc = dgm__tool_mkdirs(d)) < 0 ||
        (rc = dgm__sweep_trial_config(c->sweep, i, &cfg)) < 0)
        return rc;
    char *text = dgm_config_to_string(cfg);
    dgm_config_free(cfg);
    if (!text)
        return dgm_error(DGM_ENOMEM, "sweep: out of memory");
    snprintf(p, sizeof p, "%s/trial.yaml", d);
    rc = write_text(p, text);
    free(text);
    return rc;
}

/* The last non-blank line of a file (a failed trial's error). */
static void last_line(const char *path, char *out, size_t n)
{
    out[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        size_t l = strlen(line);
        while (l && (line[l - 1] == '\n' || line[l - 1] == '\r' ||
                     line[l - 1] == ' '))
            line[--l] = '\0';
        if (l)
            snprintf(out, n, "%s", line);
    }
    fclose(f);
}

/* Record how trial i ended. */
static void finish_trial(ctx *c, int i, int exit_code, int sig, bool stopped,
                         const char *why)
{
    json_t *t = dgm__sweep_manifest_trial(c->manifest, i);
    char d[PATH_MAX], now[40], msg[1100] = "", p[PATH_MAX + 16];
    trial_dir(c, i, d, sizeof d);
    const char *st = stopped ? "stopped"
                     : sig   ? "failed"
                             : dgm__sweep_outcome(d, exit_code);
    if (sig)
        snprintf(msg, sizeof msg, "killed by signal %d (%s)", sig,
                 strsignal(sig));
    else if (why)
        snprintf(msg, sizeof msg, "%s", why);
    else if (strcmp(st, "done")) {
        snprintf(p, sizeof p, "%s/stderr.txt", d);
        last_line(p, msg, sizeof msg);
    }
    set_str(t, "status", st);
    json_object_set_new(t, "exit_code",
                        exit_code >= 0 ? json_integer(exit_code) : json_null());
    json_object_set_new(t, "signal", sig ? json_integer(sig) : json_null());
    set_str(t, "message", msg[0] ? msg : NULL);
    set_str(t, "ended", dgm__sweep_now(now, sizeof now));
    c->n_finished++;
    if (!c->quiet) {
        printf("[%d/%d] %s: %s%s%s\n", c->n_finished, c->n_todo,
               json_string_value(json_object_get(t, "name")), st,
               msg[0] ? ": " : "", msg);
        fflush(stdout);
    }
}

static bool failed(const char *st)
{
    return !strcmp(st, "failed") || !strcmp(st, "diverged");
}

/* ---- local launcher ---------------------------------------------------- */

typedef struct child {
    pid_t pid;
    int index;
    bool killed;
} child;

static pid_t spawn_trial(ctx *c, int i, const sigset_t *old)
{
    char d[PATH_MAX], out[PATH_MAX + 16], err[PATH_MAX + 16], th[16];
    trial_dir(c, i, d, sizeof d);
    snprintf(out, sizeof out, "%s/stdout.txt", d);
    snprintf(err, sizeof err, "%s/stderr.txt", d);
    snprintf(th, sizeof th, "%d", c->threads);
    fflush(NULL);
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    /* The child: its own process group, so that a terminal's Ctrl-C
     * reaches only dgm sweep, which stops trials itself. */
    setpgid(0, 0);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGCHLD, SIG_DFL);
    sigprocmask(SIG_SETMASK, old, NULL);
    int fo = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0666);
    int fe = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0666);
    int fi = open("/dev/null", O_RDONLY);
    if (fo < 0 || fe < 0 || fi < 0)
        _exit(126);
    dup2(fi, 0);
    dup2(fo, 1);
    dup2(fe, 2);
    char idx[16];
    snprintf(idx, sizeof idx, "%d", i);
    char *argv[] = {c->exe,      "sweep", "--run-trial", c->dir, idx,
                    "--threads", th,      NULL};
    execv(c->exe, argv);
    dprintf(2, "dgm sweep: cannot run %s: %s\n", c->exe, strerror(errno));
    _exit(127);
}

/* Stop the running trials: SIGTERM to each one's group, SIGKILL to
 * whatever is left after 5 s. */
static void stop_children(child *ch, int n)
{
    for (int k = 0; k < n; k++)
        if (ch[k].pid > 0 && !ch[k].killed) {
            kill(-ch[k].pid, SIGTERM);
            ch[k].killed = true;
        }
}

static int run_local(ctx *c, const int *todo, int n_todo)
{
    child *ch = calloc((size_t)c->jobs, sizeof *ch);
    if (!ch)
        return dgm_error(DGM_ENOMEM, "sweep: out of memory");
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGCHLD);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigprocmask(SIG_BLOCK, &block, &old);
    struct sigaction sa = {0}, sa_old_int, sa_old_term, sa_old_chld;
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, &sa_old_int);
    sigaction(SIGTERM, &sa, &sa_old_term);
    sa.sa_handler = on_child;
    sigaction(SIGCHLD, &sa, &sa_old_chld);
    int next = 0, running = 0, rc = 0;
    bool stopping = false;
    double kill_at = 0;
    while (running > 0 || (!stopping && next < n_todo)) {
        while (!stopping && running < c->jobs && next < n_todo) {
            int i = todo[next++];
            char now[40];
            if ((rc = prepare_trial(c, i)) < 0) {
                finish_trial(c, i, -1, 0, false, dgm_last_error());
                save(c);
                continue;
            }
            pid_t pid = spawn_trial(c, i, &old);
            if (pid < 0) {
                finish_trial(c, i, -1, 0, false, strerror(errno));
                save(c);
                continue;
            }
            int k = 0;
            while (ch[k].pid > 0)
                k++;
            ch[k] = (child){pid, i, false};
            running++;
            json_t *t = dgm__sweep_manifest_trial(c->manifest, i);
            set_str(t, "status", "running");
            set_str(t, "started", dgm__sweep_now(now, sizeof now));
            save(c);
        }
        int st;
        pid_t pid;
        bool reaped = false;
        while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
            int k = 0;
            while (k < c->jobs && ch[k].pid != pid)
                k++;
            if (k == c->jobs)
                continue;
            reaped = true;
            running--;
            int sig = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
            int code = sig ? 128 + sig : WEXITSTATUS(st);
            finish_trial(c, ch[k].index, code, ch[k].killed ? 0 : sig,
                         ch[k].killed, NULL);
            if (c->fail_fast && failed(status_of(c, ch[k].index)) &&
                !stopping) {
                stopping = true;
                fprintf(stderr,
                        "dgm sweep: --fail-fast: trial %s failed; "
                        "stopping the others\n",
                        json_string_value(json_object_get(
                            dgm__sweep_manifest_trial(c->manifest, ch[k].index),
                            "name")));
                stop_children(ch, c->jobs);
                kill_at = (double)time(NULL) + 5;
            }
            ch[k].pid = 0;
            save(c);
        }
        if (got_signal && !stopping) {
            stopping = true;
            fprintf(stderr, "dgm sweep: %s: stopping the running trials\n",
                    strsignal(got_signal));
            stop_children(ch, c->jobs);
            kill_at = (double)time(NULL) + 5;
        }
        if (stopping && kill_at > 0 && (double)time(NULL) >= kill_at) {
            for (int k = 0; k < c->jobs; k++)
                if (ch[k].pid > 0)
                    kill(-ch[k].pid, SIGKILL);
            kill_at = 0;
        }
        if (!reaped && running > 0) {
            /* Atomically unblock and wait: no signal is lost between the
             * check above and the wait; a timer bounds the wait while
             * trials are being killed. */
            if (stopping) {
                struct timespec ts = {0, 100 * 1000 * 1000};
                siginfo_t info;
                (void)sigtimedwait(&block, &info, &ts);
            } else {
                sigsuspend(&old);
            }
        }
    }
    sigaction(SIGINT, &sa_old_int, NULL);
    sigaction(SIGTERM, &sa_old_term, NULL);
    sigaction(SIGCHLD, &sa_old_chld, NULL);
    sigprocmask(SIG_SETMASK, &old, NULL);
    free(ch);
    return 0;
}

/* ---- Slurm launcher ---------------------------------------------------- */

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

static int write_job_script(ctx *c, const char *path)
{
    const dgm__sweep_slurm *sl = &c->sweep->slurm;
    char q1[PATH_MAX * 2], q2[PATH_MAX * 2], text[8 * PATH_MAX];
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
             "%s sweep --run-trial \"$d\" \"$i\" "
             "--threads \"${SLURM_CPUS_PER_TASK:-%lld}\"\n"
             "rc=$?\n"
             "echo \"$rc\" > \"$d/slurm/exit.$i.tmp\" && "
             "mv -f \"$d/slurm/exit.$i.tmp\" \"$d/slurm/exit.$i\"\n"
             "exit \"$rc\"\n",
             shq(c->dir, q2, sizeof q2), shq(c->exe, q1, sizeof q1),
             (long long)sl->cpus_per_task);
    int rc = write_text(path, text);
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
static bool poll_trial(ctx *c, int i, bool *changed)
{
    char d[PATH_MAX], p[PATH_MAX + 16], x[2100];
    trial_dir(c, i, d, sizeof d);
    snprintf(p, sizeof p, "%s/trial.json", d);
    snprintf(x, sizeof x, "%s/slurm/exit.%d", c->dir, i);
    json_t *tj = json_load_file(p, 0, NULL);
    json_t *t = dgm__sweep_manifest_trial(c->manifest, i);
    const char *started = json_string_value(json_object_get(tj, "started"));
    if (started && strcmp(status_of(c, i), "running")) {
        set_str(t, "status", "running");
        set_str(t, "started", started);
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
        finish_trial(c, i, code, code > 128 && code < 128 + 65 ? code - 128 : 0,
                     false, NULL);
        *changed = true;
    }
    return ended;
}

static int run_slurm(ctx *c, const int *todo, int n_todo)
{
    char sdir[2100], script[2200], cwd[PATH_MAX];
    int rc;
    snprintf(sdir, sizeof sdir, "%s/slurm", c->dir);
    snprintf(script, sizeof script, "%s/job.sh", sdir);
    if ((rc = dgm__tool_mkdirs(sdir)) < 0 ||
        (rc = write_job_script(c, script)) < 0)
        return rc;
    for (int k = 0; k < n_todo; k++) {
        char x[2200];
        snprintf(x, sizeof x, "%s/exit.%d", sdir, todo[k]);
        unlink(x);
        if ((rc = prepare_trial(c, todo[k])) < 0)
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
    save(c);
    if (!c->quiet) {
        printf("dgm sweep: submitted job array %s (%d tasks)\n", job, n_todo);
        fflush(stdout);
    }
    struct sigaction sa = {0}, old_int, old_term;
    sa.sa_handler = on_signal;
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
            any_failed |= ended[k] && failed(status_of(c, todo[k]));
        if (!cancelled && (got_signal || (c->fail_fast && any_failed))) {
            fprintf(stderr, "dgm sweep: %s; cancelling job %s\n",
                    got_signal ? strsignal(got_signal)
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
            save(c);
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
        bool started = !strcmp(status_of(c, i), "running");
        if (cancelled) {
            if (started)
                finish_trial(c, i, -1, 0, true, NULL);
            /* a task that never started stays pending for --resume */
            continue;
        }
        snprintf(msg, sizeof msg,
                 "the task left no exit status (killed by Slurm? see "
                 "slurm/%s_%d.out)",
                 job, i);
        finish_trial(c, i, -1, 0, false, msg);
    }
    save(c);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    free(ended);
    return 0;
}

static int write_json(const char *path, json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(1));
    int rc =
        s ? write_text(path, s) : dgm_error(DGM_ENOMEM, "sweep: out of memory");
    free(s);
    return rc;
}

/* `dgm sweep --run-trial SWEEPDIR INDEX`: one trial, what `dgm run
 * trial.yaml --run-dir DIR --quiet` does, with its output in the run
 * directory's stdout.txt and stderr.txt and trial.json saying when it
 * started (the exit status is what the caller sees: waitpid locally, the
 * job script under Slurm). In this process because a trial's folder name
 * holds '=', which dgm run's arguments would read as an override. */
static int run_trial(const char *dir, const char *index, int threads)
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
        return fail("--run-trial: no trial '%s' in %s/manifest.json", index,
                    dir);
    }
    char d[PATH_MAX], cfg[PATH_MAX + 16], p[PATH_MAX + 16], now[40],
        o[PATH_MAX + 16], e[PATH_MAX + 16];
    const char *rd = json_string_value(json_object_get(t, "run_dir"));
    if (!rd || strncmp(rd, "trials/", 7) || strchr(rd + 7, '/') ||
        rd[7] == '.' || !rd[7]) {
        json_decref(m);
        return fail("--run-trial: trial %ld's run_dir is not "
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
    int fo = open(o, O_WRONLY | O_CREAT | O_TRUNC, 0666);
    int fe = open(e, O_WRONLY | O_CREAT | O_TRUNC, 0666);
    if (fo < 0 || fe < 0)
        return fail("%s: %s", fo < 0 ? o : e, strerror(errno));
    dup2(fo, 1);
    dup2(fe, 2);
    close(fo);
    close(fe);
    json_t *tj = json_object();
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    set_str(tj, "started", dgm__sweep_now(now, sizeof now));
    set_str(tj, "host", host);
    json_object_set_new(tj, "pid", json_integer(getpid()));
    set_str(tj, "slurm_job", getenv("SLURM_JOB_ID"));
    rc = write_json(p, tj);
    json_decref(tj);
    if (rc < 0) {
        dgm__cli_error("sweep", rc);
        return DGM_EXIT_FAILED;
    }
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
        dgm_run_options ro = {
            .run_dir = d, .quiet = true, .threads = threads > 0 ? threads : 0};
        rc = dgm_experiment_run(ex, &ro);
        exit = rc < 0 ? DGM_EXIT_FAILED : DGM_EXIT_OK;
    }
    if (rc < 0)
        dgm__cli_error("run", rc);
    dgm_experiment_free(ex);
    dgm_registry_free(reg);
    return exit;
}

/* ---- set-up ------------------------------------------------------------ */

/* plugin_path entries made absolute (relative to the file that names
 * them, and the trials' configs live elsewhere); what is not a string is
 * left for validation to refuse. */
static int absolute_plugin_paths(dgm_config *root)
{
    dgm_config *pp = dgm_cfg_get_mut(root, "plugin_path");
    if (dgm_cfg_kind_of(pp) != DGM_CFG_SEQ)
        return 0;
    for (int i = 0; i < dgm_cfg_len(pp); i++) {
        dgm_config *d = (dgm_config *)dgm_cfg_at(pp, i);
        int rc;
        if (dgm_cfg_kind_of(d) == DGM_CFG_SCALAR &&
            (rc = dgm_cfg_absolute_path(d)) < 0)
            return rc;
    }
    return 0;
}

/* Every trial's config resolved against the plugins: nothing runs unless
 * all are valid. Prints each bad trial; returns the number of them. */
static int validate_trials(const dgm__sweep *s, dgm_registry *reg)
{
    int bad = 0;
    bool swept_pp = false;
    for (int k = 0; k < (s->n_trials ? s->trials[0].n_assign : 0); k++)
        swept_pp |= !strncmp(s->trials[0].assign[k].key, "plugin_path", 11);
    dgm_config *empty = NULL;
    if (dgm_config_parse(&empty, "[]", "<sweep>") < 0)
        return -1;
    for (int i = 0; i < s->n_trials; i++) {
        dgm_config *cfg;
        int rc = dgm__sweep_trial_config(s, i, &cfg);
        /* The base's plugin folders are in reg already: scanning them
         * again for every trial would only cost time. */
        if (rc == 0 && !swept_pp && dgm_cfg_get(cfg, "plugin_path"))
            rc = dgm_config_set(cfg, "plugin_path", empty);
        dgm_experiment *e = NULL;
        if (rc == 0)
            rc = dgm_experiment_from_config(&e, reg, cfg);
        else
            dgm_config_free(cfg);
        dgm_experiment_free(e);
        if (rc < 0) {
            if (bad < 20)
                fprintf(stderr, "dgm sweep: trial %d (%s): %s (%s)\n", i,
                        s->trials[i].name, dgm_last_error(), dgm_strerror(rc));
            bad++;
        }
    }
    dgm_config_free(empty);
    if (bad > 20)
        fprintf(stderr, "dgm sweep: ... and %d more invalid trials\n",
                bad - 20);
    return bad;
}

static void print_trials(const dgm__sweep *s)
{
    printf("%5s  %-40s  %s\n", "INDEX", "NAME", "OVERRIDES");
    for (int i = 0; i < s->n_trials; i++) {
        printf("%5d  %-40s ", i, s->trials[i].name);
        for (int k = 0; k < s->trials[i].n_assign; k++) {
            char *t = dgm__sweep_override_text(&s->trials[i].assign[k]);
            printf(" %s", t ? t : "?");
            free(t);
        }
        printf("\n");
    }
}

static int make_registry(dgm_registry **reg, const dgm_config *root)
{
    const dgm_config *pp = dgm_cfg_get(root, "plugin_path");
    const char *dirs[64];
    int n = 0;
    for (int i = 0; i < dgm_cfg_len(pp) && n < 64; i++)
        if (dgm_cfg_text(dgm_cfg_at(pp, i)))
            dirs[n++] = dgm_cfg_text(dgm_cfg_at(pp, i));
    return dgm__cli_registry(reg, dirs, n, true);
}

typedef struct opts {
    const char *exp, *resume, *sweep_dir, *runs, *launcher, *run_trial,
        *run_index;
    const char **over;
    int n_over, jobs, threads;
    bool fail_fast, dry_run, quiet;
} opts;

static int parse(opts *o, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool v = i + 1 < argc;
        if (!strcmp(a, "-j") && v)
            o->jobs = atoi(argv[++i]);
        else if (!strncmp(a, "-j", 2) && a[2] >= '0' && a[2] <= '9')
            o->jobs = atoi(a + 2);
        else if (!strcmp(a, "--launcher") && v)
            o->launcher = argv[++i];
        else if (!strcmp(a, "--resume") && v)
            o->resume = argv[++i];
        else if (!strcmp(a, "--sweep-dir") && v)
            o->sweep_dir = argv[++i];
        else if (!strcmp(a, "--runs") && v)
            o->runs = argv[++i];
        else if (!strcmp(a, "--threads") && v)
            o->threads = atoi(argv[++i]);
        else if (!strcmp(a, "--fail-fast"))
            o->fail_fast = true;
        else if (!strcmp(a, "--dry-run"))
            o->dry_run = true;
        else if (!strcmp(a, "--quiet"))
            o->quiet = true;
        else if (!strcmp(a, "--run-trial") && i + 2 < argc) {
            o->run_trial = argv[++i];
            o->run_index = argv[++i];
        } else if (a[0] == '-') {
            return fail("unknown or incomplete option '%s' (see dgm sweep "
                        "--help)",
                        a);
        } else if (strchr(a, '=')) {
            o->over[o->n_over++] = a;
        } else if (!o->exp) {
            o->exp = a;
        } else {
            return fail("more than one experiment ('%s', '%s')", o->exp, a);
        }
    }
    if (o->jobs < 1 || o->jobs > 1024)
        return fail("-j takes 1 to 1024 trials at once");
    if (o->launcher && strcmp(o->launcher, "local") &&
        strcmp(o->launcher, "slurm"))
        return fail("--launcher is local or slurm, not '%s'", o->launcher);
    if (o->resume && (o->exp || o->n_over || o->sweep_dir))
        return fail("--resume takes everything from the sweep directory; "
                    "give no experiment, overrides or --sweep-dir");
    if (!o->resume && !o->exp && !o->run_trial)
        return fail("no experiment given (see dgm sweep --help)");
    return 0;
}

/* A fresh sweep directory: the given one (which must not hold a sweep
 * yet) or RUNS/<name>/sweep-<time>[-k]. */
static int make_sweep_dir(const opts *o, const char *name, char *out, size_t n)
{
    char d[PATH_MAX], m[PATH_MAX + 16];
    if (o->sweep_dir) {
        snprintf(d, sizeof d, "%s", o->sweep_dir);
        snprintf(m, sizeof m, "%s/manifest.json", d);
        if (access(m, F_OK) == 0)
            return dgm_error(DGM_ESTATE,
                             "%s already holds a sweep; continue it with "
                             "dgm sweep --resume %s",
                             d, d);
        if (dgm__tool_mkdirs(d) < 0)
            return dgm_last_code();
    } else {
        char stamp[32], parent[2048];
        time_t now = time(NULL);
        struct tm tmv;
        localtime_r(&now, &tmv);
        strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tmv);
        snprintf(parent, sizeof parent, "%s/%s", o->runs ? o->runs : "runs",
                 name);
        if (dgm__tool_mkdirs(parent) < 0)
            return dgm_last_code();
        for (int k = 0;; k++) {
            if (k == 0)
                snprintf(d, sizeof d, "%s/sweep-%s", parent, stamp);
            else
                snprintf(d, sizeof d, "%s/sweep-%s-%d", parent, stamp, k);
            if (mkdir(d, 0777) == 0)
                break;
            if (errno != EEXIST || k > 1000)
                return dgm_error(DGM_EIO, "%s: %s", d, strerror(errno));
        }
    }
    char real[PATH_MAX];
    if (!realpath(d, real))
        return dgm_error(DGM_EIO, "%s: %s", d, strerror(errno));
    if (strlen(real) >= n)
        return dgm_error(DGM_ERANGE, "%s: path too long", real);
    strcpy(out, real);
    return 0;
}

static int sweep_main(opts *o)
{
    ctx c = {.jobs = o->jobs, .fail_fast = o->fail_fast, .quiet = o->quiet};
    dgm_config *root = NULL;
    dgm_registry *reg = NULL;
    int rc, exit = DGM_EXIT_USAGE, lock = -1;
    char p[PATH_MAX + 32];
    const char *exp = o->exp;
    if (o->resume) {
        char real[PATH_MAX];
        if (!realpath(o->resume, real) || strlen(real) >= sizeof c.dir) {
            fail("%s: %s", o->resume, strerror(errno));
            return DGM_EXIT_USAGE;
        }
        strcpy(c.dir, real);
        snprintf(p, sizeof p, "%s/sweep.yaml", c.dir);
        exp = p;
    }
    if ((rc = dgm_config_load(&root, exp)) < 0)
        goto err;
    for (int i = 0; i < o->n_over; i++)
        if ((rc = dgm_config_override(root, o->over[i])) < 0)
            goto err;
    if (!o->resume && (rc = absolute_plugin_paths(root)) < 0)
        goto err;
    if ((rc = dgm__sweep_expand(&c.sweep, root)) < 0)
        goto err;
    if ((rc = make_registry(&reg, root)) < 0)
        goto err;
    int bad = validate_trials(c.sweep, reg);
    dgm_registry_free(reg);
    reg = NULL;
    if (bad != 0) {
        fprintf(stderr,
                "dgm sweep: %d of %d trials are invalid; nothing "
                "ran\n",
                bad, c.sweep->n_trials);
        goto out;
    }
    const char *name = dgm_cfg_text(dgm_cfg_get(root, "name"));
    if (o->dry_run) {
        printf("sweep %s: %d trials, all valid\n", name ? name : "",
               c.sweep->n_trials);
        print_trials(c.sweep);
        exit = DGM_EXIT_OK;
        goto out;
    }
    const char *launcher = o->launcher;
    if (o->resume) {
        if ((rc = dgm__sweep_manifest_load(c.dir, &c.manifest)) < 0)
            goto err;
        json_t *tr = json_object_get(c.manifest, "trials");
        bool same = json_array_size(tr) == (size_t)c.sweep->n_trials;
        for (int i = 0; same && i < c.sweep->n_trials; i++)
            same = !strcmp(json_string_value(json_object_get(
                               json_array_get(tr, (size_t)i), "name")),
                           c.sweep->trials[i].name);
        if (!same) {
            fail("%s/manifest.json does not match the trials of "
                 "sweep.yaml (edited?)",
                 c.dir);
            goto out;
        }
        /* A copy: setting the key below frees the manifest's string. */
        static char used[16];
        const char *was =
            json_string_value(json_object_get(c.manifest, "launcher"));
        snprintf(used, sizeof used, "%s",
                 was && !strcmp(was, "slurm") ? "slurm" : "local");
        if (!launcher)
            launcher = used;
        set_str(c.manifest, "launcher", launcher);
    } else {
        if ((rc = make_sweep_dir(o, name ? name : "sweep", c.dir,
                                 sizeof c.dir)) < 0)
            goto err;
        char *text = dgm_config_to_string(root);
        snprintf(p, sizeof p, "%s/sweep.yaml", c.dir);
        rc = text ? write_text(p, text)
                  : dgm_error(DGM_ENOMEM, "sweep: out of memory");
        free(text);
        if (rc < 0)
            goto err;
        char real_exp[PATH_MAX];
        c.manifest = dgm__sweep_manifest_new(
            c.sweep, name, realpath(exp, real_exp) ? real_exp : exp,
            launcher ? launcher : "local");
        if (!c.manifest) {
            rc = dgm_error(DGM_ENOMEM, "sweep: out of memory");
            goto err;
        }
        snprintf(p, sizeof p, "%s/trials", c.dir);
        if ((rc = dgm__tool_mkdirs(p)) < 0)
            goto err;
    }
    if (!launcher)
        launcher = "local";
    /* One dgm sweep per sweep directory: a second would run the same
     * trials into the same folders. */
    snprintf(p, sizeof p, "%s/.lock", c.dir);
    lock = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (lock < 0 || flock(lock, LOCK_EX | LOCK_NB) < 0) {
        fail("%s: %s", c.dir,
             errno == EWOULDBLOCK ? "in use by another dgm sweep"
                                  : strerror(errno));
        goto out;
    }
    ssize_t n = readlink("/proc/self/exe", c.exe, sizeof c.exe - 1);
    if (n <= 0) {
        fail("cannot find the dgm executable: %s", strerror(errno));
        goto out;
    }
    c.exe[n] = '\0';
    /* What runs: everything not done; a rerun starts from nothing. */
    int *todo = calloc((size_t)c.sweep->n_trials + 1, sizeof *todo);
    if (!todo) {
        rc = dgm_error(DGM_ENOMEM, "sweep: out of memory");
        goto err;
    }
    for (int i = 0; i < c.sweep->n_trials; i++)
        if (strcmp(status_of(&c, i), "done")) {
            json_t *t = dgm__sweep_manifest_trial(c.manifest, i);
            set_str(t, "status", "pending");
            json_object_set_new(t, "exit_code", json_null());
            json_object_set_new(t, "signal", json_null());
            set_str(t, "message", NULL);
            set_str(t, "started", NULL);
            set_str(t, "ended", NULL);
            todo[c.n_todo++] = i;
        }
    save(&c);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int at_once = c.jobs < c.n_todo ? c.jobs : (c.n_todo ? c.n_todo : 1);
    c.threads = o->threads > 0 ? o->threads
                               : (int)(ncpu / at_once > 0 ? ncpu / at_once : 1);
    if (!c.quiet) {
        printf("dgm sweep: %s: %d trials, %d to run (%s", c.dir,
               c.sweep->n_trials, c.n_todo, launcher);
        if (!strcmp(launcher, "local"))
            printf(", %d at once, %d threads each", c.jobs, c.threads);
        printf(")\n");
        fflush(stdout);
    }
    if (c.n_todo > 0)
        rc = !strcmp(launcher, "slurm") ? run_slurm(&c, todo, c.n_todo)
                                        : run_local(&c, todo, c.n_todo);
    free(todo);
    save(&c);
    if (rc < 0) {
        dgm__cli_error("sweep", rc);
        exit = DGM_EXIT_FAILED;
        goto out;
    }
    int counts[6] = {0};
    static const char *const names[6] = {"done",    "failed",  "diverged",
                                         "stopped", "running", "pending"};
    for (int i = 0; i < c.sweep->n_trials; i++)
        for (int k = 0; k < 6; k++)
            counts[k] += !strcmp(status_of(&c, i), names[k]);
    printf("dgm sweep: %d trials:", c.sweep->n_trials);
    for (int k = 0, first = 1; k < 6; k++)
        if (counts[k]) {
            printf("%s %d %s", first ? "" : ",", counts[k], names[k]);
            first = 0;
        }
    printf(" (%s)\n", c.dir);
    exit = counts[0] == c.sweep->n_trials ? DGM_EXIT_OK : DGM_EXIT_FAILED;
    goto out;
err:
    dgm__cli_error("sweep", rc);
out:
    if (lock >= 0)
        close(lock);
    dgm_registry_free(reg);
    dgm__sweep_free(c.sweep);
    dgm_config_free(root);
    json_decref(c.manifest);
    return exit;
}

int dgm__cmd_sweep(int argc, char **argv)
{
    if (dgm__cli_help(argc, argv, help))
        return DGM_EXIT_OK;
    opts o = {.jobs = 1};
    o.over = calloc((size_t)argc + 1, sizeof *o.over);
    if (!o.over)
        return DGM_EXIT_FAILED;
    int rc = parse(&o, argc, argv);
    if (rc == 0)
        rc = o.run_trial ? run_trial(o.run_trial, o.run_index, o.threads)
                         : sweep_main(&o);
    free(o.over);
    return rc;
}
