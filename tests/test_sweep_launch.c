/* test_sweep_launch.c - `dgm sweep` through the executable: a crashing
 * and a diverging trial among good ones with the local launcher,
 * --resume, --fail-fast, --dry-run validation, Ctrl-C, and the Slurm
 * launcher's job script for multi-rank trials (with a stand-in sbatch, so
 * no Slurm is needed). The expansion of sweeps is test_sweep.c's. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
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

#include "ck_run.h"
#include "dgm/dgm.h"
#include "files.h"
#include "scratch.h"
#include "sweep.h"
#include "sweep_fixture.h"

static char root[1024]; /* this process's scratch folder */
static char out[1 << 16];

/* ---- the executable --------------------------------------------------- */

static void mkdir_p(const char *p)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", p);
    ck_assert_int_eq(system(cmd), 0);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
    fputs(text, f);
    fclose(f);
}

/* Three objectives: good, a plugin that crashes (unless <root>/disarm
 * exists), a loss that turns NaN; two latents. */
static const char tiny_fmt[] = TS_TINY_VAE
    "train: {steps: %d, log_every: 1, samples: 4}\n"
    "sweep:\n"
    "  grid:\n"
    "    objective:\n"
    "      - [{loss: bernoulli_nll, inputs: [logits, x]}, {loss: "
    "gaussian_kl, inputs: [mu, logvar]}]\n"
    "      - [{loss: bernoulli_nll, inputs: [logits, x]}, {loss: "
    "crash_after, inputs: [mu], after: 1, unless_exists: %s/disarm}]\n"
    "      - [{loss: bernoulli_nll, inputs: [logits, x]}, {loss: "
    "nan_after, inputs: [mu], after: 1}]\n"
    "    model.latent: [2, 3]\n";

static char exp_path[1200];

static void write_experiment(int steps)
{
    char text[4096];
    snprintf(text, sizeof text, tiny_fmt, DGM_TEST_PLUGIN_DIR, root, steps,
             root);
    write_text(exp_path, text);
}

static void setup(void)
{
    ts_let_segv_through();
    ts_sweep_setup();
    ck_assert_int_lt(snprintf(root, sizeof root, "%s", tc_scratch_dir),
                     (int)sizeof root);
    snprintf(exp_path, sizeof exp_path, "%s/tiny.yaml", root);
    write_experiment(3);
}

static int dgm_cli(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int dgm_cli(const char *fmt, ...)
{
    char args[4096], cmd[4600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "'%s' %s 2>&1", DGM_CLI, args);
    FILE *p = popen(cmd, "r");
    ck_assert(p != NULL);
    size_t got = fread(out, 1, sizeof out - 1, p);
    out[got] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static json_t *manifest(const char *dir)
{
    json_t *m;
    ck_assert_msg(dgm__sweep_manifest_load(dir, &m) == 0, "%s",
                  dgm_last_error());
    return m;
}

static const char *tstatus(json_t *m, int i)
{
    return json_string_value(
        json_object_get(dgm__sweep_manifest_trial(m, i), "status"));
}

static char *read_file(const char *path)
{
    return tc_slurp(path, NULL, false);
}

static char *trial_file(const char *sd, json_t *m, int i, const char *f)
{
    char p[2400];
    snprintf(p, sizeof p, "%s/%s/%s", sd,
             json_string_value(
                 json_object_get(dgm__sweep_manifest_trial(m, i), "run_dir")),
             f);
    return read_file(p);
}

START_TEST(crash_and_divergence_fail_only_their_trials)
{
    char sd[1300];
    snprintf(sd, sizeof sd, "%s/s", root);
    int rc = dgm_cli("sweep %s -j 2 --sweep-dir %s", exp_path, sd);
    ck_assert_msg(rc == 1, "exit %d: %s", rc, out);
    ck_assert_msg(strstr(out, "6 trials: 2 done, 2 failed, 2 diverged"), "%s",
                  out);
    json_t *m = manifest(sd);
    ck_assert_str_eq(json_string_value(json_object_get(m, "launcher")),
                     "local");
    ck_assert_str_eq(json_string_value(json_object_get(m, "name")), "tiny");
    for (int i = 0; i < 6; i++) {
        json_t *t = dgm__sweep_manifest_trial(m, i);
        const char *want = i < 2 ? "done" : i < 4 ? "failed" : "diverged";
        ck_assert_msg(!strcmp(tstatus(m, i), want), "trial %d: %s", i,
                      tstatus(m, i));
        int code = (int)json_integer_value(json_object_get(t, "exit_code"));
        ck_assert_int_eq(code, i < 2 ? 0 : i < 4 ? 128 + SIGSEGV : 1);
        const char *msg = json_string_value(json_object_get(t, "message"));
        if (i >= 2 && i < 4) {
            ck_assert_int_eq(json_integer_value(json_object_get(t, "signal")),
                             SIGSEGV);
            ck_assert_msg(msg && strstr(msg, "signal 11"), "%s", msg);
        }
        if (i >= 4)
            ck_assert_msg(msg && strstr(msg, "nan_after"), "%s", msg);
        ck_assert(json_is_string(json_object_get(t, "started")));
        ck_assert(json_is_string(json_object_get(t, "ended")));
        /* each trial is a whole run directory */
        char *s = trial_file(sd, m, i, "config.yaml");
        ck_assert_msg(s != NULL, "trial %d has no config.yaml", i);
        free(s);
        s = trial_file(sd, m, i, "summary.json");
        ck_assert((s != NULL) == (i < 2 || i >= 4));
        free(s);
    }
    ck_assert_str_eq(json_string_value(json_object_get(
                         dgm__sweep_manifest_trial(m, 3), "name")),
                     "003-objective=bernoulli_nll_1-latent=3");
    json_decref(m);
    /* sweep.yaml keeps the sweep and reads back */
    char p[1400];
    snprintf(p, sizeof p, "%s/sweep.yaml", sd);
    dgm_config *c;
    ck_assert_int_eq(dgm_config_load(&c, p), 0);
    ck_assert(dgm_cfg_get(c, "sweep.grid.objective") != NULL);
    dgm_config_free(c);
}
END_TEST

START_TEST(resume_runs_only_what_is_missing)
{
    char sd[1300], p[1400];
    snprintf(sd, sizeof sd, "%s/s", root);
    int rc = dgm_cli("sweep %s -j 2 --sweep-dir %s --quiet", exp_path, sd);
    ck_assert_msg(rc == 1, "exit %d: %s", rc, out);
    json_t *m = manifest(sd);
    char *done0 = trial_file(sd, m, 0, "trial.json");
    char *crash2 = trial_file(sd, m, 2, "trial.json");
    ck_assert(done0 && crash2);
    json_decref(m);
    /* the crashing plugin disarmed: its trials now finish */
    snprintf(p, sizeof p, "%s/disarm", root);
    write_text(p, "");
    rc = dgm_cli("sweep --resume %s -j 2", sd);
    ck_assert_msg(rc == 1, "exit %d: %s", rc, out);
    ck_assert_msg(strstr(out, "6 trials, 4 to run") &&
                      strstr(out, "6 trials: 4 done, 2 diverged"),
                  "%s", out);
    m = manifest(sd);
    for (int i = 0; i < 6; i++)
        ck_assert_str_eq(tstatus(m, i), i < 4 ? "done" : "diverged");
    char *again0 = trial_file(sd, m, 0, "trial.json");
    char *again2 = trial_file(sd, m, 2, "trial.json");
    ck_assert_str_eq(again0, done0);  /* not rerun */
    ck_assert_str_ne(again2, crash2); /* rerun (another pid) */
    free(done0);
    free(crash2);
    free(again0);
    free(again2);
    json_decref(m);
    /* a manifest that does not fit sweep.yaml is refused */
    rc = dgm_cli("sweep --resume %s/nowhere", root);
    ck_assert_int_eq(rc, 2);
}
END_TEST

START_TEST(fail_fast_stops_at_the_first_failure)
{
    char sd[1300];
    snprintf(sd, sizeof sd, "%s/s", root);
    int rc = dgm_cli("sweep %s --fail-fast --sweep-dir %s", exp_path, sd);
    ck_assert_msg(rc == 1, "exit %d: %s", rc, out);
    ck_assert_msg(strstr(out, "--fail-fast"), "%s", out);
    json_t *m = manifest(sd);
    ck_assert_str_eq(tstatus(m, 0), "done");
    ck_assert_str_eq(tstatus(m, 1), "done");
    ck_assert_str_eq(tstatus(m, 2), "failed");
    for (int i = 3; i < 6; i++)
        ck_assert_str_eq(tstatus(m, i), "pending");
    json_decref(m);
}
END_TEST

START_TEST(dry_run_lists_and_validates)
{
    int rc = dgm_cli("sweep %s --dry-run", exp_path);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    ck_assert_msg(strstr(out, "6 trials, all valid") &&
                      strstr(out, "005-objective=bernoulli_nll_2-latent=3") &&
                      strstr(out, "model.latent=3"),
                  "%s", out);
    /* every trial is validated before anything runs */
    char sd[1300];
    snprintf(sd, sizeof sd, "%s/bad", root);
    rc = dgm_cli("sweep %s --sweep-dir %s 'sweep.grid.objective=[[{loss: "
                 "bernoulli_nll, inputs: [logits, x]}], [{loss: nope, "
                 "inputs: [x]}]]'",
                 exp_path, sd);
    ck_assert_msg(rc == 2, "exit %d: %s", rc, out);
    ck_assert_msg(strstr(out, "trial 3 (003-objective=nope-latent=3)") &&
                      strstr(out, "objective[0].loss") && strstr(out, "nope") &&
                      strstr(out, "2 of 4 trials are invalid"),
                  "%s", out);
    ck_assert_int_ne(access(sd, F_OK), 0);
    rc = dgm_cli("sweep %s -j 0", exp_path);
    ck_assert_int_eq(rc, 2);
    rc = dgm_cli("sweep %s --launcher pbs", exp_path);
    ck_assert_int_eq(rc, 2);
}
END_TEST

/* sweep.slurm.ntasks: the job script starts the trial with srun on that
 * many ranks (read from the script a stand-in sbatch refused, so no
 * Slurm is needed); the local launcher refuses it before making the
 * sweep directory. */
START_TEST(ntasks_trials_start_under_srun)
{
    char sd[1300], bin[1300], p[1400], path[4096];
    snprintf(sd, sizeof sd, "%s/s", root);
    int rc =
        dgm_cli("sweep %s --sweep-dir %s sweep.slurm.ntasks=2", exp_path, sd);
    ck_assert_msg(rc == 2 && strstr(out, "sweep.slurm.ntasks: 2 ranks per "
                                         "trial need --launcher slurm"),
                  "exit %d: %s", rc, out);
    ck_assert_int_ne(access(sd, F_OK), 0);
    snprintf(bin, sizeof bin, "%s/bin", root);
    mkdir_p(bin);
    snprintf(p, sizeof p, "%s/sbatch", bin);
    write_text(p, "#!/bin/sh\necho 'sbatch: refused here' >&2\nexit 3\n");
    ck_assert_int_eq(chmod(p, 0755), 0);
    snprintf(path, sizeof path, "%s:%s", bin, getenv("PATH"));
    setenv("PATH", path, 1);
    rc = dgm_cli("sweep %s --launcher slurm --sweep-dir %s "
                 "sweep.slurm.ntasks=2 sweep.slurm.cpus_per_task=3",
                 exp_path, sd);
    ck_assert_msg(rc == 1 && strstr(out, "failed (exit 3)"), "exit %d: %s", rc,
                  out);
    snprintf(p, sizeof p, "%s/slurm/job.sh", sd);
    char *job = read_file(p);
    /* the line runs the dgm executable (its real path) under srun */
    const char *line = strstr(job, "\nsrun --mpi=pmix -n 2 '/");
    ck_assert_msg(strstr(job, "\n#SBATCH --ntasks=2\n") &&
                      strstr(job, "\n#SBATCH --cpus-per-task=3\n") && line &&
                      strstr(line,
                             "' sweep --run-trial \"$d\" \"$i\" "
                             "--threads \"${SLURM_CPUS_PER_TASK:-3}\"\n") ==
                          strchr(line + 23, '\''),
                  "%s", job);
    free(job);
    /* one rank: the script is the plain one, no srun */
    snprintf(sd, sizeof sd, "%s/s1", root);
    rc = dgm_cli("sweep %s --launcher slurm --sweep-dir %s", exp_path, sd);
    ck_assert_msg(rc == 1, "exit %d: %s", rc, out);
    snprintf(p, sizeof p, "%s/slurm/job.sh", sd);
    job = read_file(p);
    ck_assert_msg(!strstr(job, "srun") && !strstr(job, "--ntasks"), "%s", job);
    free(job);
}
END_TEST

START_TEST(interrupt_leaves_a_consistent_manifest)
{
    char sd[1300];
    snprintf(sd, sizeof sd, "%s/s", root);
    write_experiment(1000000);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open("/dev/null", 1);
        dup2(fd, 1);
        dup2(fd, 2);
        execl(DGM_CLI, DGM_CLI, "sweep", exp_path, "-j", "2", "--sweep-dir", sd,
              "sweep.grid.objective=[[{loss: bernoulli_nll, inputs: "
              "[logits, x]}]]",
              (char *)NULL);
        _exit(127);
    }
    /* wait until two trials run */
    int running = 0;
    for (int k = 0; k < 200 && running < 2; k++) {
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
        json_t *m;
        if (dgm__sweep_manifest_load(sd, &m) < 0)
            continue;
        running = 0;
        for (int i = 0; i < 2; i++)
            running += !strcmp(tstatus(m, i), "running");
        json_decref(m);
    }
    ck_assert_int_eq(running, 2);
    /* one dgm sweep per sweep directory */
    int rc = dgm_cli("sweep --resume %s", sd);
    ck_assert_msg(rc == 2 && strstr(out, "in use by another dgm sweep"),
                  "exit %d: %s", rc, out);
    kill(pid, SIGINT);
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert(WIFEXITED(st));
    ck_assert_int_eq(WEXITSTATUS(st), 1);
    json_t *m = manifest(sd);
    for (int i = 0; i < 2; i++) {
        ck_assert_str_eq(tstatus(m, i), "stopped");
        ck_assert(json_is_string(
            json_object_get(dgm__sweep_manifest_trial(m, i), "ended")));
    }
    json_decref(m);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("sweep_launch");
    TCase *tc = tq_case(
        s, "local_launcher", crash_and_divergence_fail_only_their_trials,
        resume_runs_only_what_is_missing, fail_fast_stops_at_the_first_failure,
        dry_run_lists_and_validates, interrupt_leaves_a_consistent_manifest,
        ntasks_trials_start_under_srun);
    tcase_add_checked_fixture(tc, setup, tc_scratch_teardown);
    tcase_set_timeout(tc, 120);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
