/* cmd_run.c - `dgm run`: train an experiment into a run directory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dgm/error.h"
#include "dgm/host.h"
#include "dgm/profile.h"

static const char help[] =
    "usage: dgm run EXPERIMENT.yaml [KEY=VALUE | +KEY=VALUE ...] [options]\n"
    "       dgm run --resume RUNDIR [options]\n"
    "\n"
    "Train the experiment and write a run directory (config.yaml,\n"
    "log.txt, metrics.jsonl, summary.json, checkpoints/, samples/).\n"
    "KEY=VALUE overrides a config value (model.latent=32); +KEY=VALUE adds\n"
    "a key the file does not have.\n"
    "\n"
    "options:\n"
    "  --resume RUNDIR  continue a run from its last checkpoint\n"
    "  --runs DIR       parent of run directories (default: runs)\n"
    "  --run-dir DIR    write exactly this run directory\n"
    "  --threads N      kernel threads (default: the experiment's)\n"
    "  --stop-after N   checkpoint and stop after step N (resume later)\n"
    "  --quiet          no progress output\n"
    "  --profile        time every op (and GFLOP/s) over the steps after the\n"
    "                   first; table to profile.txt and stderr\n"
    "\n"
    "exit status: 0 trained, 1 the run failed or diverged, 2 usage or\n"
    "configuration error\n";

int dgm__cmd_run(int argc, char **argv)
{
    if (dgm__cli_help(argc, argv, help))
        return DGM_EXIT_OK;
    const char *exp = NULL;
    const char **over = calloc((size_t)argc, sizeof *over);
    int n_over = 0;
    dgm_run_options o = {0};
    if (!over)
        return DGM_EXIT_FAILED;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_val = i + 1 < argc;
        if (!strcmp(a, "--resume") && has_val)
            o.resume_dir = argv[++i];
        else if (!strcmp(a, "--runs") && has_val)
            o.runs_root = argv[++i];
        else if (!strcmp(a, "--run-dir") && has_val)
            o.run_dir = argv[++i];
        else if (!strcmp(a, "--threads") && has_val)
            o.threads = atoi(argv[++i]);
        else if (!strcmp(a, "--stop-after") && has_val)
            o.stop_after = atoll(argv[++i]);
        else if (!strcmp(a, "--quiet"))
            o.quiet = true;
        else if (!strcmp(a, "--profile"))
            dgm_profile_enable(true);
        else if (a[0] == '-' && a[1] == '-') {
            fprintf(stderr, "dgm run: unknown or incomplete option '%s'\n%s",
                    a, help);
            free(over);
            return DGM_EXIT_USAGE;
        } else if (strchr(a, '='))
            over[n_over++] = a;
        else if (!exp)
            exp = a;
        else {
            fprintf(stderr, "dgm run: more than one experiment ('%s', '%s')\n",
                    exp, a);
            free(over);
            return DGM_EXIT_USAGE;
        }
    }
    char resumed_cfg[4096];
    if (o.resume_dir) {
        if (exp || n_over) {
            fprintf(stderr, "dgm run: --resume takes its config from the "
                            "run directory; give no experiment or "
                            "overrides\n");
            free(over);
            return DGM_EXIT_USAGE;
        }
        snprintf(resumed_cfg, sizeof resumed_cfg, "%s/config.yaml",
                 o.resume_dir);
        exp = resumed_cfg;
    }
    if (!exp) {
        fprintf(stderr, "dgm run: no experiment given\n%s", help);
        free(over);
        return DGM_EXIT_USAGE;
    }
    dgm_registry *reg;
    int rc = dgm__cli_registry(&reg, NULL, 0, true);
    if (rc < 0) {
        dgm__cli_error("run", rc);
        free(over);
        return DGM_EXIT_USAGE;
    }
    dgm_experiment *e;
    rc = dgm_experiment_load(&e, reg, exp, over, n_over);
    free(over);
    if (rc < 0) {
        dgm__cli_error("run", rc);
        dgm_registry_free(reg);
        return DGM_EXIT_USAGE;
    }
    /* Building reads the data and fits the blocks together: what fails
     * here is the experiment's configuration, not the run. */
    rc = dgm_experiment_build(e);
    if (rc < 0) {
        dgm__cli_error("run", rc);
        dgm_experiment_free(e);
        dgm_registry_free(reg);
        return DGM_EXIT_USAGE;
    }
    rc = dgm_experiment_run(e, &o);
    if (rc < 0)
        dgm__cli_error("run", rc);
    dgm_experiment_free(e);
    dgm_registry_free(reg);
    return rc < 0 ? DGM_EXIT_FAILED : DGM_EXIT_OK;
}
