/* cli_compare.c - what `dgm compare` and `dgm report` share: the metric
 * and grouping options and loading their runs into variants. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_compare.h"
#include "dgm/error.h"

static const char *const list_opts[DGM__CLI_CMP_LISTS] = {
    "--metric", "--group-by", "--higher", "--lower"};

/* Each of "a,b" appended to the list as an owned copy. */
static int add_names(char ***list, int *n, const char *arg)
{
    char *copy = strdup(arg);
    if (!copy)
        return -1;
    char *save = NULL;
    int rc = 0;
    for (char *t = strtok_r(copy, ",", &save); t && rc == 0;
         t = strtok_r(NULL, ",", &save)) {
        char **p = realloc(*list, sizeof *p * (size_t)(*n + 1));
        if (p)
            *list = p;
        if (!p || !(p[*n] = strdup(t)))
            rc = -1;
        else
            (*n)++;
    }
    free(copy);
    return rc;
}

int dgm__cli_cmp_option(dgm__cli_cmp *c, const char *cmd, int argc, char **argv,
                        int *i)
{
    const char *a = argv[*i];
    for (int k = 0; k < DGM__CLI_CMP_LISTS; k++) {
        size_t len = strlen(list_opts[k]);
        const char *val;
        if (!strcmp(a, list_opts[k]))
            val = *i + 1 < argc ? argv[++*i] : NULL;
        else if (!strncmp(a, list_opts[k], len) && a[len] == '=')
            val = a + len + 1;
        else
            continue;
        if (!val || !val[0]) {
            fprintf(stderr, "dgm %s: %s needs a value\n", cmd, list_opts[k]);
            return -DGM_EXIT_USAGE;
        }
        if (add_names(&c->list[k], &c->n[k], val) < 0) {
            fprintf(stderr, "dgm %s: out of memory\n", cmd);
            return -DGM_EXIT_FAILED;
        }
        return 1;
    }
    return 0;
}

int dgm__cli_cmp_load(dgm__cli_cmp *c, const char *cmd,
                      const char *const *paths, int np, dgm__compare **out)
{
    dgm__cmp_options o = {.metrics = (const char *const *)c->list[0],
                          .n_metrics = c->n[0],
                          .group_by = (const char *const *)c->list[1],
                          .n_group_by = c->n[1],
                          .higher = (const char *const *)c->list[2],
                          .n_higher = c->n[2],
                          .lower = (const char *const *)c->list[3],
                          .n_lower = c->n[3]};
    int rc = dgm__compare_load(out, paths, np, &o);
    if (rc < 0) {
        dgm__cli_error(cmd, rc);
        return rc == DGM_EKEY ? DGM_EXIT_USAGE : DGM_EXIT_FAILED;
    }
    for (int k = 0; k < (*out)->n_notes; k++)
        fprintf(stderr, "dgm %s: note: %s\n", cmd, (*out)->notes[k]);
    return DGM_EXIT_OK;
}

void dgm__cli_cmp_free(dgm__cli_cmp *c)
{
    for (int k = 0; k < DGM__CLI_CMP_LISTS; k++) {
        for (int i = 0; i < c->n[k]; i++)
            free(c->list[k][i]);
        free(c->list[k]);
    }
    *c = (dgm__cli_cmp){0};
}
