/* cmd_eval.c - `dgm eval`: run metrics on a run directory, or score a file
 * of samples (from dgm or another framework) against a data set with the
 * same metrics. */
#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dgm/config.h"
#include "dgm/error.h"
#include "dgm/host.h"

static const char help[] =
    "usage: dgm eval RUNDIR [--metric NAME ...] [--set KEY=VALUE ...]\n"
    "                [--seed S] [--json]\n"
    "       dgm eval --samples FILE --data EXPERIMENT.yaml|RUNDIR\n"
    "                --metric NAME ... [--set KEY=VALUE ...] [--seed S]\n"
    "                [--json]\n"
    "\n"
    "Run metrics on a trained run: by default the run's own `metrics:`,\n"
    "else the ones named with --metric. --set KEY=VALUE sets a parameter\n"
    "of every selected metric that has it (NAME.KEY=VALUE: of metric NAME\n"
    "only), e.g. --metric fid --set "
    "classifier=runs/classifier_fashion/latest;\n"
    "the host's keys corrupt=[...] and generalization_gap=N apply to every\n"
    "selected metric, which is then evaluated on corrupted data and on a\n"
    "training subset too, as dgm run does. On a run directory the seed\n"
    "defaults to the one the run's own evaluations used, so the figures\n"
    "are those of its summary.json for the same checkpoint.\n"
    "\n"
    "With --samples, the samples come from FILE instead of a model: an IDX\n"
    "file of u8 images, or a .safetensors file with one F32 tensor\n"
    "[n, C, H, W] or [n, H, W] in the data's value range (docs/formats.md).\n"
    "--data names the experiment (or run) whose data set is the reference.\n"
    "A metric's n defaults to the file's sample count; the seed to 0;\n"
    "generalization_gap is refused (a file has no model).\n"
    "\n"
    "Relative paths (RUNDIR, FILE, classifier=...) are relative to the\n"
    "working directory. Prints one line per figure, or a JSON object with\n"
    "--json.\n"
    "\n"
    "exit status: 0 evaluated, 1 the evaluation failed (a run or sample\n"
    "file that cannot be read or is malformed, a metric that fails),\n"
    "2 usage error (options, unknown metric, a --set key no metric has)\n";

static bool plain_name(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-')
            return false;
    return true;
}

static bool has_param(const dgm_plugin_desc *d, const char *key, size_t len)
{
    for (const dgm_param_spec *p = d->params; p && p->name; p++)
        if (strlen(p->name) == len && !strncmp(p->name, key, len))
            return true;
    return false;
}

/* Is key[0..len) one the host reads from every metric's map (corrupt,
 * generalization_gap)? */
static bool host_key(const char *key, size_t len)
{
    for (const char *const *k = dgm_host_keys(DGM_KIND_METRIC); *k; k++)
        if (strlen(*k) == len && !strncmp(*k, key, len))
            return true;
    return false;
}

/* Apply one --set to the metrics list under root["metrics"]. Returns 0, or
 * DGM_EXIT_USAGE after printing why. */
static int apply_set(dgm_config *root, dgm_registry *reg, const char *set)
{
    const char *eq = strchr(set, '=');
    if (!eq || eq == set) {
        fprintf(stderr, "dgm eval: --set takes KEY=VALUE, got '%s'\n", set);
        return DGM_EXIT_USAGE;
    }
    const char *key = set, *dot = memchr(set, '.', (size_t)(eq - set));
    size_t prefix = 0;
    if (dot) {
        prefix = (size_t)(dot - set);
        key = dot + 1;
    }
    size_t klen = (size_t)(eq - key);
    const dgm_config *list = dgm_cfg_get(root, "metrics");
    int hits = 0;
    for (int i = 0; i < dgm_cfg_len(list); i++) {
        const char *name = NULL;
        const dgm_plugin_desc *d;
        if (dgm_cfg_to_str(dgm_cfg_get(dgm_cfg_at(list, i), "plugin"), &name) <
                0 ||
            dgm_registry_find(reg, DGM_KIND_METRIC, name, &d, NULL) < 0)
            continue; /* reported when the metrics are made */
        if (prefix && (strlen(name) != prefix || strncmp(name, set, prefix)))
            continue;
        if (!has_param(d, key, klen) && !host_key(key, klen))
            continue;
        char buf[4096];
        snprintf(buf, sizeof buf, "metrics[%d].%s", i, key);
        if (dgm_config_override(root, buf) < 0) {
            dgm__cli_error("eval", dgm_last_code());
            return DGM_EXIT_USAGE;
        }
        hits++;
    }
    if (!hits) {
        fprintf(stderr,
                "dgm eval: --set %s: no selected metric has the "
                "parameter '%.*s'\n",
                set, (int)klen, key);
        return DGM_EXIT_USAGE;
    }
    return 0;
}

static void print_results(const dgm_results *res, bool json)
{
    if (json) {
        json_t *o = json_object();
        for (int i = 0; i < dgm_results_count(res); i++)
            json_object_set_new(o, dgm_results_name(res, i),
                                json_real(dgm_results_value(res, i)));
        char *s = json_dumps(o, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
        if (s)
            printf("%s\n", s);
        free(s);
        json_decref(o);
        return;
    }
    /* one column of values, however long the corrupted figures' names */
    int w = 24;
    for (int i = 0; i < dgm_results_count(res); i++)
        if ((int)strlen(dgm_results_name(res, i)) > w)
            w = (int)strlen(dgm_results_name(res, i));
    for (int i = 0; i < dgm_results_count(res); i++)
        printf("%-*s %.6g\n", w, dgm_results_name(res, i),
               dgm_results_value(res, i));
}

typedef struct args {
    const char *dir, *samples, *data;
    const char **metrics, **sets;
    int n_metrics, n_sets;
    unsigned long long seed;
    bool seed_set, json;
} args;

static int parse(args *a, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        bool has_val = i + 1 < argc;
        if (!strcmp(argv[i], "--metric") && has_val)
            a->metrics[a->n_metrics++] = argv[++i];
        else if (!strcmp(argv[i], "--set") && has_val)
            a->sets[a->n_sets++] = argv[++i];
        else if (!strcmp(argv[i], "--samples") && has_val)
            a->samples = argv[++i];
        else if (!strcmp(argv[i], "--data") && has_val)
            a->data = argv[++i];
        else if (!strcmp(argv[i], "--seed") && has_val) {
            char *end;
            a->seed = strtoull(argv[++i], &end, 10);
            a->seed_set = true;
            if (*end) {
                fprintf(stderr, "dgm eval: bad --seed '%s'\n", argv[i]);
                return DGM_EXIT_USAGE;
            }
        } else if (!strcmp(argv[i], "--json"))
            a->json = true;
        else if (argv[i][0] != '-' && !a->dir)
            a->dir = argv[i];
        else {
            fprintf(stderr, "dgm eval: unexpected or incomplete '%s'\n%s",
                    argv[i], help);
            return DGM_EXIT_USAGE;
        }
    }
    if (a->samples ? (a->dir || !a->data || !a->n_metrics)
                   : (!a->dir || a->data)) {
        fprintf(stderr,
                "dgm eval: give RUNDIR, or --samples FILE with "
                "--data and at least one --metric\n%s",
                help);
        return DGM_EXIT_USAGE;
    }
    for (int i = 0; i < a->n_metrics; i++)
        if (!plain_name(a->metrics[i])) {
            fprintf(stderr, "dgm eval: '%s' is not a metric name\n",
                    a->metrics[i]);
            return DGM_EXIT_USAGE;
        }
    return 0;
}

/* root = {metrics: [...]}: the named metrics, or the run's own. */
static int metrics_config(const args *a, dgm_registry *reg, dgm_config **root)
{
    int rc;
    if (a->n_metrics) {
        /* names are plain words (checked in parse), safe to splice */
        size_t cap = 32;
        for (int i = 0; i < a->n_metrics; i++)
            cap += strlen(a->metrics[i]) + 16;
        char *text = malloc(cap);
        if (!text)
            return DGM_EXIT_FAILED;
        strcpy(text, "{metrics: [");
        for (int i = 0; i < a->n_metrics; i++) {
            const dgm_plugin_desc *d;
            if ((rc = dgm_registry_find(reg, DGM_KIND_METRIC, a->metrics[i], &d,
                                        NULL)) < 0) {
                dgm__cli_error("eval", rc);
                free(text);
                return DGM_EXIT_USAGE;
            }
            strcat(text, i ? ", {plugin: " : "{plugin: ");
            strcat(text, a->metrics[i]);
            strcat(text, "}");
        }
        strcat(text, "]}");
        rc = dgm_config_parse(root, text, "<dgm eval>");
        free(text);
        if (rc < 0) {
            dgm__cli_error("eval", rc);
            return DGM_EXIT_FAILED;
        }
        return 0;
    }
    if ((rc = dgm_config_parse(root, "{}", "<dgm eval>")) < 0) {
        dgm__cli_error("eval", rc);
        return DGM_EXIT_FAILED;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/config.yaml", a->dir);
    dgm_config *run;
    if ((rc = dgm_config_load(&run, path)) < 0) {
        dgm__cli_error("eval", rc);
        return DGM_EXIT_FAILED;
    }
    const dgm_config *m = dgm_cfg_get(run, "metrics");
    if (dgm_cfg_len(m) < 1) {
        fprintf(stderr,
                "dgm eval: %s configures no metrics; name some with "
                "--metric\n",
                path);
        dgm_config_free(run);
        return DGM_EXIT_USAGE;
    }
    rc = dgm_config_set(*root, "metrics", m);
    dgm_config_free(run);
    if (rc < 0) {
        dgm__cli_error("eval", rc);
        return DGM_EXIT_FAILED;
    }
    return 0;
}

int dgm__cmd_eval(int argc, char **argv)
{
    if (dgm__cli_help(argc, argv, help))
        return DGM_EXIT_OK;
    args a = {.metrics = calloc((size_t)argc, sizeof(char *)),
              .sets = calloc((size_t)argc, sizeof(char *))};
    dgm_registry *reg = NULL;
    dgm_config *root = NULL;
    dgm_run *run = NULL;
    dgm_results *res = NULL;
    int ex = a.metrics && a.sets ? parse(&a, argc, argv) : DGM_EXIT_FAILED;
    if (ex == 0) {
        int rc = dgm__cli_registry(&reg, NULL, 0, true);
        if (rc < 0) {
            dgm__cli_error("eval", rc);
            ex = DGM_EXIT_FAILED;
        }
    }
    if (ex == 0)
        ex = metrics_config(&a, reg, &root);
    for (int i = 0; ex == 0 && i < a.n_sets; i++)
        ex = apply_set(root, reg, a.sets[i]);
    if (ex == 0) {
        const dgm_config *list = dgm_cfg_get(root, "metrics");
        int rc;
        if (a.samples)
            rc = dgm_eval_file_metrics(reg, a.samples, a.data, list, a.seed,
                                       &res);
        else if ((rc = dgm_run_open(&run, reg, a.dir)) == 0)
            rc = dgm_run_evaluate(
                run, list, a.seed_set ? a.seed : dgm_run_eval_seed(run), &res);
        if (rc < 0) {
            dgm__cli_error("eval", rc);
            ex = DGM_EXIT_FAILED;
        } else
            print_results(res, a.json);
    }
    dgm_results_free(res);
    dgm_run_close(run);
    dgm_config_free(root);
    if (reg)
        dgm_registry_free(reg);
    free(a.metrics);
    free(a.sets);
    return ex;
}
