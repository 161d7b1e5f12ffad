/* sweep_run.c - the bookkeeping of `dgm sweep`'s trials that both
 * launchers share: preparing a trial's folder, recording its end in the
 * manifest. */
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

volatile sig_atomic_t dgm__sweep_got_signal;

void dgm__sweep_on_signal(int sig)
{
    dgm__sweep_got_signal = sig;
}
void dgm__sweep_on_child(int sig)
{
    (void)sig;
}

int dgm__sweep_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("dgm sweep: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return DGM_EXIT_USAGE;
}

int dgm__sweep_write_text(const char *path, const char *text)
{
    return dgm_write_file_atomic(path, text, strlen(text));
}

/* From the expansion's (sanitised) name, not from the manifest's text:
 * a rerun empties this folder, which must stay inside the sweep. */
const char *dgm__sweep_trial_dir(const dgm__sweep_run *c, int i, char *buf,
                                 size_t n)
{
    snprintf(buf, n, "%s/trials/%s", c->dir, c->sweep->trials[i].name);
    return buf;
}

const char *dgm__sweep_status_of(const dgm__sweep_run *c, int i)
{
    return json_string_value(
        json_object_get(dgm__sweep_manifest_trial(c->manifest, i), "status"));
}

void dgm__sweep_set_str(json_t *o, const char *k, const char *v)
{
    json_object_set_new(o, k, v ? json_string(v) : json_null());
}

void dgm__sweep_save(dgm__sweep_run *c)
{
    if (dgm__sweep_manifest_write(c->dir, c->manifest) < 0)
        fprintf(stderr, "dgm sweep: warning: %s\n", dgm_last_error());
}

/* Trial i's run directory emptied and its config written: a rerun starts
 * from nothing, as the first run did. */
int dgm__sweep_prepare_trial(dgm__sweep_run *c, int i)
{
    char d[PATH_MAX], p[PATH_MAX + 16];
    dgm__sweep_trial_dir(c, i, d, sizeof d);
    dgm_config *cfg;
    int rc;
    if ((rc = dgm__tool_remove_tree(d)) < 0 || (rc = dgm_mkdirs(d)) < 0 ||
        (rc = dgm__sweep_trial_config(c->sweep, i, &cfg)) < 0)
        return rc;
    char *text = dgm_config_to_string(cfg);
    dgm_config_free(cfg);
    if (!text)
        return dgm_error(DGM_ENOMEM, "sweep: out of memory");
    snprintf(p, sizeof p, "%s/trial.yaml", d);
    rc = dgm__sweep_write_text(p, text);
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
void dgm__sweep_finish_trial(dgm__sweep_run *c, int i, int exit_code, int sig,
                             bool stopped, const char *why)
{
    json_t *t = dgm__sweep_manifest_trial(c->manifest, i);
    char d[PATH_MAX], now[40], msg[1100] = "", p[PATH_MAX + 16];
    dgm__sweep_trial_dir(c, i, d, sizeof d);
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
    dgm__sweep_set_str(t, "status", st);
    json_object_set_new(t, "exit_code",
                        exit_code >= 0 ? json_integer(exit_code) : json_null());
    json_object_set_new(t, "signal", sig ? json_integer(sig) : json_null());
    dgm__sweep_set_str(t, "message", msg[0] ? msg : NULL);
    dgm__sweep_set_str(t, "ended", dgm__sweep_now(now, sizeof now));
    c->n_finished++;
    if (!c->quiet) {
        printf("[%d/%d] %s: %s%s%s\n", c->n_finished, c->n_todo,
               json_string_value(json_object_get(t, "name")), st,
               msg[0] ? ": " : "", msg);
        fflush(stdout);
    }
}

bool dgm__sweep_failed(const char *st)
{
    return !strcmp(st, "failed") || !strcmp(st, "diverged");
}
