/* cmd_sweep.c - `dgm sweep`: expand an experiment's sweep into trials,
 * validate them all, and run each as its own `dgm run` process, locally
 * (N at a time) or as one Slurm job array; manifest.json tracks them. */
#define _GNU_SOURCE /* strsignal */
#include <errno.h>
#include <fcntl.h>
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
#include "dgm/io.h"
#include "dgm/host.h"
#include "sweep.h"
#include "sweep_run.h"
#include "tool_files.h"

static const char help[] =
    "usage: dgm sweep EXPERIMENT.yaml [KEY=VALUE ...] [options]\n"
    "       dgm sweep --resume SWEEPDIR [options]\n"
    "\n"
    "Expand the experiment's `sweep:` section (grid, zip, random, seeds;\n"
    "or search: {tpe:}, whose trials' values are proposed as they launch)\n"
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
    "  --check              also build each trial before anything runs, as\n"
    "                       `dgm config --check` does (reads the data)\n"
    "  --sweep-dir DIR      the sweep directory (default:\n"
    "                       RUNS/<name>/sweep-<YYYYmmdd-HHMMSS>)\n"
    "  --runs DIR           RUNS above (default: runs)\n"
    "  --threads K          kernel threads per trial (default: the cores\n"
    "                       divided among the trials running at once)\n"
    "  --quiet              no line per finished trial\n"
    "\n"
    "exit status: 0 every trial done, 1 some trial failed, diverged or was\n"
    "stopped, 2 usage or configuration error (nothing ran)\n";

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

/* Every trial's config resolved against the plugins (and with build, the
 * experiment built as `dgm config --check` does): nothing runs unless all
 * are valid. Prints the first 20 bad trials; returns the number of them. */
static int validate_trials(const dgm__sweep *s, dgm_registry *reg, bool build)
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
        if (rc == 0 && build)
            rc = dgm_experiment_build(e);
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
    int64_t stop_after; /* --run-trial of an ASHA job: its rung's step */
    bool fail_fast, dry_run, quiet, check, cont;
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
        else if (!strcmp(a, "--stop-after") && v)
            o->stop_after = atoll(argv[++i]);
        else if (!strcmp(a, "--continue"))
            o->cont = true;
        else if (!strcmp(a, "--fail-fast"))
            o->fail_fast = true;
        else if (!strcmp(a, "--dry-run"))
            o->dry_run = true;
        else if (!strcmp(a, "--check"))
            o->check = true;
        else if (!strcmp(a, "--quiet"))
            o->quiet = true;
        else if (!strcmp(a, "--run-trial") && i + 2 < argc) {
            o->run_trial = argv[++i];
            o->run_index = argv[++i];
        } else if (a[0] == '-') {
            return dgm__sweep_fail(
                "unknown or incomplete option '%s' (see dgm sweep "
                "--help)",
                a);
        } else if (strchr(a, '=')) {
            o->over[o->n_over++] = a;
        } else if (!o->exp) {
            o->exp = a;
        } else {
            return dgm__sweep_fail("more than one experiment ('%s', '%s')",
                                   o->exp, a);
        }
    }
    if (o->jobs < 1 || o->jobs > 1024)
        return dgm__sweep_fail("-j takes 1 to 1024 trials at once");
    if (o->launcher && strcmp(o->launcher, "local") &&
        strcmp(o->launcher, "slurm"))
        return dgm__sweep_fail("--launcher is local or slurm, not '%s'",
                               o->launcher);
    if (o->resume && (o->exp || o->n_over || o->sweep_dir))
        return dgm__sweep_fail(
            "--resume takes everything from the sweep directory; "
            "give no experiment, overrides or --sweep-dir");
    if (!o->resume && !o->exp && !o->run_trial)
        return dgm__sweep_fail("no experiment given (see dgm sweep --help)");
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
        if (dgm_mkdirs(d) < 0)
            return dgm_last_code();
    } else {
        char stamp[32], parent[2048];
        time_t now = time(NULL);
        struct tm tmv;
        localtime_r(&now, &tmv);
        strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tmv);
        snprintf(parent, sizeof parent, "%s/%s", o->runs ? o->runs : "runs",
                 name);
        if (dgm_mkdirs(parent) < 0)
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

/* Multi-rank trials are srun's (one MPI job per array task); the local
 * launcher runs each trial as one process and does not start mpirun, so
 * it refuses them rather than train each on one rank unasked. */
static bool local_refuses_ntasks(const dgm__sweep *s, const char *launcher)
{
    if (s->slurm.ntasks <= 1 || (launcher && !strcmp(launcher, "slurm")))
        return false;
    dgm__sweep_fail("sweep.slurm.ntasks: %lld ranks per trial need "
                    "--launcher slurm (the local launcher runs each trial "
                    "as one process; for one run on several ranks, "
                    "mpirun -np %lld dgm run EXPERIMENT.yaml)",
                    (long long)s->slurm.ntasks, (long long)s->slurm.ntasks);
    return true;
}

static int sweep_main(opts *o)
{
    dgm__sweep_run c = {
        .jobs = o->jobs, .fail_fast = o->fail_fast, .quiet = o->quiet};
    dgm_config *root = NULL;
    dgm_registry *reg = NULL;
    int rc, exit = DGM_EXIT_USAGE, lock = -1;
    char p[PATH_MAX + 32];
    const char *exp = o->exp;
    if (o->resume) {
        char real[PATH_MAX];
        if (!realpath(o->resume, real) || strlen(real) >= sizeof c.dir) {
            dgm__sweep_fail("%s: %s", o->resume, strerror(errno));
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
    if (c.sweep->asha && (rc = dgm__sweep_asha_base(c.sweep, root)) < 0)
        goto err;
    if ((rc = make_registry(&reg, root)) < 0)
        goto err;
    int bad = validate_trials(c.sweep, reg, o->check);
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
    if (!o->resume && local_refuses_ntasks(c.sweep, launcher))
        goto out;
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
            dgm__sweep_fail("%s/manifest.json does not match the trials of "
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
        if (local_refuses_ntasks(c.sweep, launcher))
            goto out;
        dgm__sweep_set_str(c.manifest, "launcher", launcher);
    } else {
        if ((rc = make_sweep_dir(o, name ? name : "sweep", c.dir,
                                 sizeof c.dir)) < 0)
            goto err;
        char *text = dgm_config_to_string(root);
        snprintf(p, sizeof p, "%s/sweep.yaml", c.dir);
        rc = text ? dgm__sweep_write_text(p, text)
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
        if ((rc = dgm_mkdirs(p)) < 0)
            goto err;
    }
    if (!launcher)
        launcher = "local";
    /* One dgm sweep per sweep directory: a second would run the same
     * trials into the same folders. */
    snprintf(p, sizeof p, "%s/.lock", c.dir);
    lock = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (lock < 0 || flock(lock, LOCK_EX | LOCK_NB) < 0) {
        dgm__sweep_fail("%s: %s", c.dir,
                        errno == EWOULDBLOCK ? "in use by another dgm sweep"
                                             : strerror(errno));
        goto out;
    }
    ssize_t n = readlink("/proc/self/exe", c.exe, sizeof c.exe - 1);
    if (n <= 0) {
        dgm__sweep_fail("cannot find the dgm executable: %s", strerror(errno));
        goto out;
    }
    c.exe[n] = '\0';
    /* What runs: everything not done; a rerun starts from nothing. */
    int *todo = calloc((size_t)c.sweep->n_trials + 1, sizeof *todo);
    if (!todo) {
        rc = dgm_error(DGM_ENOMEM, "sweep: out of memory");
        goto err;
    }
    if (c.sweep->asha) {
        if ((rc = dgm__sweep_asha_open(&c, o->resume != NULL)) < 0) {
            free(todo);
            goto err;
        }
        for (int i = 0; i < c.sweep->n_trials; i++)
            c.n_todo += strcmp(dgm__sweep_status_of(&c, i), "done") != 0;
    }
    if (c.sweep->tpe) {
        if (!strcmp(launcher, "slurm")) {
            dgm__sweep_fail("a search: sweep runs with the local launcher "
                            "only (so far)");
            free(todo);
            goto out;
        }
        if ((rc = dgm__sweep_tpe_open(&c, o->resume != NULL)) < 0) {
            free(todo);
            goto err;
        }
    }
    for (int i = 0; !c.sweep->asha && i < c.sweep->n_trials; i++)
        if (strcmp(dgm__sweep_status_of(&c, i), "done")) {
            json_t *t = dgm__sweep_manifest_trial(c.manifest, i);
            dgm__sweep_set_str(t, "status", "pending");
            json_object_set_new(t, "exit_code", json_null());
            json_object_set_new(t, "signal", json_null());
            dgm__sweep_set_str(t, "message", NULL);
            dgm__sweep_set_str(t, "started", NULL);
            dgm__sweep_set_str(t, "ended", NULL);
            todo[c.n_todo++] = i;
        }
    dgm__sweep_save(&c);
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
        rc = c.asha ? (!strcmp(launcher, "slurm")
                           ? dgm__sweep_run_slurm_asha(&c)
                           : dgm__sweep_run_local(&c, todo, c.n_todo))
             : !strcmp(launcher, "slurm")
                 ? dgm__sweep_run_slurm(&c, todo, c.n_todo)
                 : dgm__sweep_run_local(&c, todo, c.n_todo);
    free(todo);
    if (c.asha)
        dgm__sweep_asha_close(&c);
    dgm__sweep_tpe_close(&c);
    dgm__sweep_save(&c);
    if (rc < 0) {
        dgm__cli_error("sweep", rc);
        exit = DGM_EXIT_FAILED;
        goto out;
    }
    int counts[7] = {0};
    static const char *const names[7] = {"done",    "failed",  "diverged",
                                         "stopped", "running", "pending",
                                         "paused"};
    for (int i = 0; i < c.sweep->n_trials; i++)
        for (int k = 0; k < 7; k++)
            counts[k] += !strcmp(dgm__sweep_status_of(&c, i), names[k]);
    printf("dgm sweep: %d trials:", c.sweep->n_trials);
    for (int k = 0, first = 1; k < 7; k++)
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
    dgm__sweep_asha_close(&c);
    dgm__sweep_tpe_close(&c);
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
        rc = o.run_trial ? dgm__sweep_run_trial(o.run_trial, o.run_index,
                                                o.threads, o.stop_after, o.cont)
                         : sweep_main(&o);
    free(o.over);
    return rc;
}
