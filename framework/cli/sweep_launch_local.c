/* sweep_launch_local.c - `dgm sweep --launcher local`: trials as child
 * processes, N at a time, stopped cleanly on SIGINT/SIGTERM or
 * --fail-fast. */
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

typedef struct child {
    pid_t pid;
    int index;
    bool killed;
} child;

/* step > 0: an ASHA job, trained to that step (cont: from the trial's
 * checkpoint). */
static pid_t spawn_trial(dgm__sweep_run *c, int i, int64_t step, bool cont,
                         const sigset_t *old)
{
    char d[PATH_MAX], out[PATH_MAX + 16], err[PATH_MAX + 16], th[16], sa[32];
    dgm__sweep_trial_dir(c, i, d, sizeof d);
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
    int mode = O_WRONLY | O_CREAT | (cont ? O_APPEND : O_TRUNC);
    int fo = open(out, mode, 0666);
    int fe = open(err, mode, 0666);
    int fi = open("/dev/null", O_RDONLY);
    if (fo < 0 || fe < 0 || fi < 0)
        _exit(126);
    dup2(fi, 0);
    dup2(fo, 1);
    dup2(fe, 2);
    char idx[16];
    snprintf(idx, sizeof idx, "%d", i);
    snprintf(sa, sizeof sa, "%lld", (long long)step);
    char *argv[] = {c->exe,
                    "sweep",
                    "--run-trial",
                    c->dir,
                    idx,
                    "--threads",
                    th,
                    step ? "--stop-after" : NULL,
                    sa,
                    cont ? "--continue" : NULL,
                    NULL};
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

int dgm__sweep_run_local(dgm__sweep_run *c, const int *todo, int n_todo)
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
    sa.sa_handler = dgm__sweep_on_signal;
    sigaction(SIGINT, &sa, &sa_old_int);
    sigaction(SIGTERM, &sa, &sa_old_term);
    sa.sa_handler = dgm__sweep_on_child;
    sigaction(SIGCHLD, &sa, &sa_old_chld);
    int next = 0, running = 0;
    bool stopping = false;
    double kill_at = 0;
    /* ASHA: the scheduler gives the jobs; it has none left when none
     * runs after asking. */
    bool more = c->asha ? true : next < n_todo;
    while (running > 0 || (!stopping && more)) {
        while (!stopping && running < c->jobs && (c->asha || next < n_todo)) {
            int i;
            int64_t step = 0;
            bool cont = false;
            char now[40], ck[PATH_MAX + 40];
            if (c->asha) {
                if (!dgm__sweep_asha_take(c, &i, &step))
                    break;
                /* Promoted (or run again after an interruption): on from
                 * its last checkpoint, bit for bit as if never stopped. */
                dgm__sweep_trial_dir(c, i, ck, sizeof ck);
                strcat(ck, "/checkpoints/last.safetensors");
                cont = access(ck, F_OK) == 0;
            } else {
                i = todo[next++];
            }
            /* A trial that cannot be prepared (its folder, its
             * trial.yaml) fails alone, with the reason in the manifest;
             * the others still run. */
            if (!cont && ((c->tpe && dgm__sweep_tpe_launch(c, i) < 0) ||
                          dgm__sweep_prepare_trial(c, i) < 0)) {
                if (c->asha)
                    dgm__sweep_asha_ended(c, i, -1, 0, false);
                else
                    dgm__sweep_finish_trial(c, i, -1, 0, false,
                                            dgm_last_error());
                if (c->tpe)
                    dgm__sweep_tpe_ended(c, i);
                dgm__sweep_save(c);
                continue;
            }
            pid_t pid = spawn_trial(c, i, step, cont, &old);
            if (pid < 0) {
                if (c->asha)
                    dgm__sweep_asha_ended(c, i, -1, 0, false);
                else
                    dgm__sweep_finish_trial(c, i, -1, 0, false,
                                            strerror(errno));
                if (c->tpe)
                    dgm__sweep_tpe_ended(c, i);
                dgm__sweep_save(c);
                continue;
            }
            int k = 0;
            while (ch[k].pid > 0)
                k++;
            ch[k] = (child){pid, i, false};
            running++;
            json_t *t = dgm__sweep_manifest_trial(c->manifest, i);
            dgm__sweep_set_str(t, "status", "running");
            dgm__sweep_set_str(t, "started", dgm__sweep_now(now, sizeof now));
            dgm__sweep_save(c);
        }
        if (c->asha && running == 0)
            more = false; /* the scheduler was asked: nothing left */
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
            if (c->asha)
                dgm__sweep_asha_ended(c, ch[k].index, code,
                                      ch[k].killed ? 0 : sig, ch[k].killed);
            else
                dgm__sweep_finish_trial(c, ch[k].index, code,
                                        ch[k].killed ? 0 : sig, ch[k].killed,
                                        NULL);
            if (c->tpe)
                dgm__sweep_tpe_ended(c, ch[k].index);
            if (c->fail_fast &&
                dgm__sweep_failed(dgm__sweep_status_of(c, ch[k].index)) &&
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
            dgm__sweep_save(c);
        }
        if (dgm__sweep_got_signal && !stopping) {
            stopping = true;
            fprintf(stderr, "dgm sweep: %s: stopping the running trials\n",
                    strsignal(dgm__sweep_got_signal));
            stop_children(ch, c->jobs);
            kill_at = (double)time(NULL) + 5;
        }
        if (stopping && kill_at > 0 && (double)time(NULL) >= kill_at) {
            for (int k = 0; k < c->jobs; k++)
                if (ch[k].pid > 0)
                    kill(-ch[k].pid, SIGKILL);
            kill_at = 0;
        }
        if (!c->asha)
            more = next < n_todo;
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
