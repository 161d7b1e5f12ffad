/* cmd_config.c - `dgm config`: print an experiment's resolved config. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dgm/error.h"
#include "dgm/host.h"

static const char help[] =
    "usage: dgm config [--check] EXPERIMENT.yaml [KEY=VALUE | +KEY=VALUE ...]\n"
    "\n"
    "Load the experiment, apply the overrides, validate every plugin's\n"
    "parameters, run the plugins' own config checks (what their create\n"
    "would refuse; no data is read) and print the resolved config (every\n"
    "default filled in, phases spelled out): what `dgm run` would train\n"
    "and save as config.yaml.\n"
    "\n"
    "  --check  also build the experiment as `dgm run` does before it\n"
    "           trains: open the data set, build the model, heads and\n"
    "           teachers, and run one forward of each phase on two\n"
    "           training examples, so what only a built model tells is\n"
    "           refused too (an objective input no output provides, a\n"
    "           warm-up longer than the run counted in epochs, blocks that\n"
    "           do not fit). Nothing is trained or written.\n"
    "\n"
    "exit status: 0 valid, 2 usage or configuration error\n";

int dgm__cmd_config(int argc, char **argv)
{
    if (dgm__cli_help(argc, argv, help))
        return DGM_EXIT_OK;
    bool check = argc > 1 && !strcmp(argv[1], "--check");
    if (check) {
        argc--;
        argv++;
    }
    if (argc < 2 || argv[1][0] == '-') {
        fprintf(stderr, "%s", help);
        return DGM_EXIT_USAGE;
    }
    dgm_registry *reg;
    int rc = dgm__cli_registry(&reg, NULL, 0, true);
    if (rc < 0) {
        dgm__cli_error("config", rc);
        return DGM_EXIT_USAGE;
    }
    dgm_experiment *e;
    rc = dgm_experiment_load(&e, reg, argv[1], (const char *const *)argv + 2,
                             argc - 2);
    if (rc < 0) {
        dgm__cli_error("config", rc);
        dgm_registry_free(reg);
        return DGM_EXIT_USAGE;
    }
    /* Building reads the data and fits the blocks together: what fails
     * here is the experiment's configuration (as for `dgm run`). */
    if (check && (rc = dgm_experiment_build(e)) < 0) {
        dgm__cli_error("config", rc);
        dgm_experiment_free(e);
        dgm_registry_free(reg);
        return DGM_EXIT_USAGE;
    }
    rc = dgm_config_write(dgm_experiment_config(e), stdout);
    dgm_experiment_free(e);
    dgm_registry_free(reg);
    if (rc < 0) {
        dgm__cli_error("config", rc);
        return DGM_EXIT_FAILED;
    }
    return DGM_EXIT_OK;
}
