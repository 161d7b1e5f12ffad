/* cli.h - the subcommand table and what subcommands share. */
#ifndef DGM_CLI_H
#define DGM_CLI_H

#include <stdbool.h>

/* Exit codes of every subcommand. */
enum { DGM_EXIT_OK = 0, DGM_EXIT_FAILED = 1, DGM_EXIT_USAGE = 2 };

typedef struct dgm_cli_command {
    const char *name;
    int (*fn)(int argc, char **argv); /* argv[0] is the command's name */
    const char *summary;
} dgm_cli_command;

/* X(name, function, summary): one line per cmd_<name>.c. */
#define DGM_CLI_COMMANDS(X)                                                \
    X("run", dgm__cmd_run, "train an experiment into a run directory")    \
    X("config", dgm__cmd_config, "print an experiment's resolved config") \
    X("plugins", dgm__cmd_plugins, "list plugins, or show one's params")  \
    X("sample", dgm__cmd_sample, "draw samples from a trained run")     \
    X("eval", dgm__cmd_eval, "run metrics on a run or a sample file")   \
    X("sweep", dgm__cmd_sweep, "run an experiment's sweep of trials")  \
    X("inspect", dgm__cmd_inspect, "list a checkpoint's tensors, or a run's") \
    X("compare", dgm__cmd_compare, "compare runs and sweeps, variant by variant") \
    X("report", dgm__cmd_report, "write a sweep's HTML report")        \
    X("explore", dgm__cmd_explore, "figures of a run's latent space and neighbours")

int dgm__cmd_run(int argc, char **argv);
int dgm__cmd_inspect(int argc, char **argv);
int dgm__cmd_config(int argc, char **argv);
int dgm__cmd_plugins(int argc, char **argv);
int dgm__cmd_sample(int argc, char **argv);
int dgm__cmd_eval(int argc, char **argv);
int dgm__cmd_sweep(int argc, char **argv);
int dgm__cmd_compare(int argc, char **argv);
int dgm__cmd_report(int argc, char **argv);
int dgm__cmd_explore(int argc, char **argv);

/* The registry every command uses: the build's or install's plugin
 * folder, then $DGM_PLUGIN_PATH, then `extra` folders; scanned. Scan
 * problems are printed as warnings when `warn` is set. */
struct dgm_registry;
int dgm__cli_registry(struct dgm_registry **out, const char *const *extra,
                      int n_extra, bool warn);

/* True if argv holds --help or -h; prints `help` to stdout then. */
bool dgm__cli_help(int argc, char **argv, const char *help);
/* Print "dgm <cmd>: <last error> (<code name>)" to stderr. */
void dgm__cli_error(const char *cmd, int code);

#endif
