/* cmd_sample.c - `dgm sample`: draw from a trained run: a grid of images,
 * or with --prompt, text from a sequence model. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dgm/error.h"
#include "dgm/host.h"

static const char help[] =
    "usage: dgm sample RUNDIR [-n N] [-o FILE.png] [--seed S]\n"
    "       dgm sample RUNDIR --prompt TEXT [--length N] [--temperature T]\n"
    "                  [--top-k K] [--seed S]\n"
    "\n"
    "Rebuild the run's model from RUNDIR/config.yaml, load its last\n"
    "checkpoint and write a grid of N samples (default 64) to FILE.png\n"
    "(default RUNDIR/samples/dgm_sample.png).\n"
    "\n"
    "With --prompt (sequence models): continue TEXT by N tokens (default\n"
    "200) drawn at temperature T (default 1.0) from the K most likely\n"
    "(default 0: all) and print the whole text. The same seed gives the\n"
    "same text.\n"
    "\n"
    "exit status: 0 written, 1 failed, 2 usage error\n";

int dgm__cmd_sample(int argc, char **argv)
{
    if (dgm__cli_help(argc, argv, help))
        return DGM_EXIT_OK;
    const char *dir = NULL, *out = NULL, *prompt = NULL;
    long long n = 64, length = 200;
    dgm_generate_opts go = {.temperature = 1.0f, .top_k = 0};
    unsigned long long seed = 0;
    for (int i = 1; i < argc; i++) {
        bool has_val = i + 1 < argc;
        char *end = NULL;
        if (!strcmp(argv[i], "-n") && has_val) {
            n = strtoll(argv[++i], &end, 10);
            if (*end || n < 1 || n > 4096) {
                fprintf(stderr, "dgm sample: -n takes 1..4096, got '%s'\n",
                        argv[i]);
                return DGM_EXIT_USAGE;
            }
        } else if (!strcmp(argv[i], "-o") && has_val)
            out = argv[++i];
        else if (!strcmp(argv[i], "--prompt") && has_val)
            prompt = argv[++i];
        else if (!strcmp(argv[i], "--length") && has_val) {
            length = strtoll(argv[++i], &end, 10);
            if (*end || length < 0 || length > 1000000) {
                fprintf(stderr,
                        "dgm sample: --length takes 0..1000000, got '%s'\n",
                        argv[i]);
                return DGM_EXIT_USAGE;
            }
        } else if (!strcmp(argv[i], "--temperature") && has_val) {
            go.temperature = strtof(argv[++i], &end);
            if (*end || !(go.temperature > 0) || go.temperature > 1e6) {
                fprintf(stderr,
                        "dgm sample: --temperature takes a number > 0, got "
                        "'%s'\n",
                        argv[i]);
                return DGM_EXIT_USAGE;
            }
        } else if (!strcmp(argv[i], "--top-k") && has_val) {
            long k = strtol(argv[++i], &end, 10);
            if (*end || k < 0 || k > 1 << 30) {
                fprintf(stderr, "dgm sample: --top-k takes 0.. , got '%s'\n",
                        argv[i]);
                return DGM_EXIT_USAGE;
            }
            go.top_k = (int)k;
        } else if (!strcmp(argv[i], "--seed") && has_val) {
            seed = strtoull(argv[++i], &end, 10);
            if (*end) {
                fprintf(stderr, "dgm sample: bad --seed '%s'\n", argv[i]);
                return DGM_EXIT_USAGE;
            }
        } else if (argv[i][0] != '-' && !dir)
            dir = argv[i];
        else {
            fprintf(stderr, "dgm sample: unexpected '%s'\n%s", argv[i], help);
            return DGM_EXIT_USAGE;
        }
    }
    if (!dir) {
        fprintf(stderr, "%s", help);
        return DGM_EXIT_USAGE;
    }
    char def[4096];
    if (!out) {
        snprintf(def, sizeof def, "%s/samples/dgm_sample.png", dir);
        out = def;
    }
    if (prompt && !*prompt) {
        fprintf(stderr, "dgm sample: --prompt needs some text\n");
        return DGM_EXIT_USAGE;
    }
    dgm_registry *reg = NULL;
    char *text = NULL;
    int rc = dgm__cli_registry(&reg, NULL, 0, true);
    if (rc == 0 && prompt)
        rc = dgm_run_generate(reg, dir, prompt, length, &go, seed, &text);
    else if (rc == 0)
        rc = dgm_run_sample_grid(reg, dir, n, out, seed);
    if (rc < 0)
        dgm__cli_error("sample", rc);
    else
        printf("%s\n", prompt ? text : out);
    free(text);
    if (reg)
        dgm_registry_free(reg);
    return rc < 0 ? DGM_EXIT_FAILED : DGM_EXIT_OK;
}
