/* cmd_explore.c - `dgm explore`: figures that look inside a trained run
 * (latent traversals, interpolations, the latent map, nearest neighbours,
 * attention, a sequence VAE's homotopies)
 * into RUNDIR/explore/, with explore.html over them. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dgm/error.h"
#include "dgm/host.h"
#include "explore.h"

static const char help[] =
    "usage: dgm explore RUNDIR [--what LIST] [--dims LIST | --top N]\n"
    "                   [--range R] [--steps N] [--examples N] [--pairs N]\n"
    "                   [--map-n N] [--classifier DIR] [--neighbours N]\n"
    "                   [-k K] [--train-n N] [--prompt TEXT] [--seed S]\n"
    "                   [--prompts TEXT_A TEXT_B] [--temperature T]\n"
    "\n"
    "Rebuild the run's model from RUNDIR, load its last checkpoint and\n"
    "write PNG figures and explore.html (self-contained) into\n"
    "RUNDIR/explore/. LIST for --what is comma-separated (default all):\n"
    "  traversals     one latent dimension moved over [-R, R] (default 3)\n"
    "                 in N steps (default 9) per row, from the posterior\n"
    "                 mean of test example i (VAE) or prior draw i (GAN),\n"
    "                 i < --examples (default 2); rows: the --top N\n"
    "                 (default 10) dimensions by mean KL (VAE) or by\n"
    "                 variance of effect (GAN), or the --dims listed\n"
    "  interpolations linear and spherical paths between --pairs (default\n"
    "                 6) pairs of encoded test examples or prior draws;\n"
    "                 for a conditional model one row per class\n"
    "  map            the posterior means of --map-n (default 1000) test\n"
    "                 examples in 2-D (exact for a 2-D latent, else PCA),\n"
    "                 coloured by class; a 2-D latent adds the decoded grid\n"
    "  neighbours     --neighbours N (default 8) samples, each beside its\n"
    "                 K (default 5) nearest of --train-n (default 10000)\n"
    "                 training examples in the features of the classifier\n"
    "                 run DIR (in data space without --classifier)\n"
    "  attention      a GAN with self_attention in its generator: where\n"
    "                 four positions of --examples samples attend; a\n"
    "                 char_transformer: the attention of each token of\n"
    "                 --prompt TEXT over the earlier ones, per layer and\n"
    "                 head\n"
    "  homotopy       a sequence VAE: --steps points (default 9) on the\n"
    "                 line between the posterior means of --prompts A B\n"
    "                 (default test windows 0 and 1), each decoded\n"
    "                 greedily, and with --temperature T > 0 also drawn\n"
    "                 at T with --seed; written as homotopy.txt\n"
    "A family that does not apply to the model (a char-RNN has no latent)\n"
    "is skipped with the reason; asked for alone it is an error.\n"
    "\n"
    "exit status: 0 written, 1 failed, 2 usage error\n";

static int usage(const char *fmt, const char *arg)
{
    fprintf(stderr, "dgm explore: ");
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    return DGM_EXIT_USAGE;
}

/* A whole number in [lo, hi], or -1. */
static long number(const char *s, long lo, long hi)
{
    char *end;
    long v = strtol(s, &end, 10);
    return *s && !*end && v >= lo && v <= hi ? v : -1;
}

static int parse_what(const char *s, unsigned *what)
{
    static const struct {
        const char *name;
        unsigned bit;
    } names[] = {{"traversals", DGM__EX_TRAVERSE},
                 {"interpolations", DGM__EX_INTERP},
                 {"map", DGM__EX_MAP},
                 {"neighbours", DGM__EX_NEIGHBOURS},
                 {"attention", DGM__EX_ATTENTION},
                 {"homotopy", DGM__EX_HOMOTOPY},
                 {"all", DGM__EX_ALL}};
    *what = 0;
    while (*s) {
        size_t len = strcspn(s, ",");
        bool found = false;
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
            if (strlen(names[i].name) == len &&
                !strncmp(s, names[i].name, len)) {
                *what |= names[i].bit;
                found = true;
            }
        if (!found) {
            fprintf(stderr,
                    "dgm explore: --what: unknown figure '%.*s' (known: "
                    "traversals, interpolations, map, neighbours, attention, "
                    "homotopy, all)\n",
                    (int)len, s);
            return -1;
        }
        s += len + (s[len] == ',');
    }
    return *what ? 0 : -1;
}

static int parse_dims(const char *s, dgm__explore_opts *o)
{
    o->n_list = 0;
    while (*s) {
        char *end;
        long d = strtol(s, &end, 10);
        if (end == s || (*end && *end != ',') || d < 0 || d > 1 << 20 ||
            o->n_list == DGM__EXPLORE_MAX_DIMS)
            return -1;
        o->dims[o->n_list++] = (int)d;
        s = *end ? end + 1 : end;
    }
    return o->n_list ? 0 : -1;
}

int dgm__cmd_explore(int argc, char **argv)
{
    if (dgm__cli_help(argc, argv, help))
        return DGM_EXIT_OK;
    dgm__explore_opts o = dgm__explore_defaults();
    const char *dir = NULL;
    unsigned what = DGM__EX_ALL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long n = 0;
        if (a[0] != '-') {
            if (dir)
                return usage("unexpected '%s' (one RUNDIR)", a);
            dir = a;
            continue;
        }
        if (!v)
            return usage("%s needs a value", a);
        i++;
        if (!strcmp(a, "--prompts")) {
            /* two values: the homotopy's ends */
            if (i + 1 >= argc || !*v || !*argv[i + 1])
                return usage("--prompts takes two non-empty texts, A and "
                             "B%s",
                             "");
            o.prompts[0] = v;
            o.prompts[1] = argv[++i];
            continue;
        }
        if (!strcmp(a, "--what")) {
            if (parse_what(v, &what) < 0)
                return usage("bad --what '%s'", v);
        } else if (!strcmp(a, "--dims")) {
            if (parse_dims(v, &o) < 0)
                return usage("--dims takes dimensions 0,1,... (at most 64), "
                             "got '%s'",
                             v);
        } else if (!strcmp(a, "--range")) {
            char *end;
            o.range = strtof(v, &end);
            if (*end || !(o.range > 0) || o.range > 1e6)
                return usage("--range takes a number > 0, got '%s'", v);
        } else if (!strcmp(a, "--temperature")) {
            char *end;
            o.temperature = strtof(v, &end);
            if (*end || !(o.temperature > 0) || o.temperature > 1e6)
                return usage("--temperature takes a number > 0, got '%s'", v);
        } else if (!strcmp(a, "--seed")) {
            char *end;
            o.seed = strtoull(v, &end, 10);
            if (*end || !*v)
                return usage("bad --seed '%s'", v);
        } else if (!strcmp(a, "--classifier"))
            o.classifier = v;
        else if (!strcmp(a, "--prompt")) {
            if (!*v)
                return usage("--prompt needs some text%s", "");
            o.prompt = v;
        } else {
            static const struct {
                const char *flag;
                long lo, hi;
                size_t at;
            } ints[] = {
                {"--top", 1, DGM__EXPLORE_MAX_DIMS,
                 offsetof(dgm__explore_opts, n_dims)},
                {"--steps", 2, 64, offsetof(dgm__explore_opts, steps)},
                {"--examples", 0, 64, offsetof(dgm__explore_opts, examples)},
                {"--pairs", 1, 64, offsetof(dgm__explore_opts, pairs)},
                {"--map-n", 2, 1 << 20, offsetof(dgm__explore_opts, map_n)},
                {"--neighbours", 1, 256, offsetof(dgm__explore_opts, nn_n)},
                {"-k", 1, 64, offsetof(dgm__explore_opts, nn_k)},
                {"--train-n", 1, 1 << 24,
                 offsetof(dgm__explore_opts, nn_train)},
            };
            size_t k = 0;
            while (k < sizeof ints / sizeof ints[0] && strcmp(a, ints[k].flag))
                k++;
            if (k == sizeof ints / sizeof ints[0]) {
                fprintf(stderr, "dgm explore: unknown option '%s'\n%s", a,
                        help);
                return DGM_EXIT_USAGE;
            }
            if ((n = number(v, ints[k].lo, ints[k].hi)) < 0) {
                fprintf(stderr, "dgm explore: %s takes %ld..%ld, got '%s'\n", a,
                        ints[k].lo, ints[k].hi, v);
                return DGM_EXIT_USAGE;
            }
            *(int *)((char *)&o + ints[k].at) = (int)n;
        }
    }
    if (!dir) {
        fprintf(stderr, "%s", help);
        return DGM_EXIT_USAGE;
    }
    dgm_registry *reg = NULL;
    int rc = dgm__cli_registry(&reg, NULL, 0, true);
    if (rc == 0)
        rc = dgm__explore_run(reg, dir, what, &o, stdout);
    if (rc < 0)
        dgm__cli_error("explore", rc);
    if (reg)
        dgm_registry_free(reg);
    return rc < 0 ? DGM_EXIT_FAILED : DGM_EXIT_OK;
}
