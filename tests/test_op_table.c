/* test_op_table.c - the op list (framework/src/autograd/ops.def) against
 * what the suites checked: each op's gradient (or, for random sources, its
 * values) on the reference kernel, and the reference against oneDNN where
 * the op has a oneDNN path. The suites log their passed checks
 * (tests/support/oplog.h) to op-log/<suite>.log; ctest runs them first
 * (the op_checks fixture). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ck_run.h"
#include "dgm/dgm.h"
#include "files.h"
#include "graph_internal.h"

enum { GRAD = 1, NOGRAD = 0, DNNL = 1, REF = 0 };

typedef struct op_row {
    const char *name, *suite;
    int grad, dnnl;
} op_row;

static const op_row rows[] = {
#define DGM_OP(id, name, file, grad, path, suite)                              \
    [DGM_OP_##id] = {name, #suite, grad, path},
#include "ops.def"
#undef DGM_OP
};
_Static_assert(sizeof rows / sizeof *rows == DGM_OP_COUNT,
               "one row per op of ops.def");

/* The suite's log as "\n<line>\n<line>...", or NULL when missing. */
static char *read_log(const char *suite)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/op-log/%s.log", DGM_BINARY_DIR, suite);
    size_t n;
    char *text = tc_slurp(path, &n, false);
    if (!text)
        return NULL;
    char *s = malloc(n + 2);
    ck_assert_ptr_nonnull(s);
    s[0] = '\n'; /* so the first line matches "\n<line>\n" too */
    memcpy(s + 1, text, n + 1);
    free(text);
    return s;
}

static bool logged(const char *log, const char *op, const char *how)
{
    char line[128];
    snprintf(line, sizeof line, "\n%s %s\n", op, how);
    return strstr(log, line) != NULL;
}

START_TEST(every_op_is_checked)
{
    char missing[4096] = "";
    size_t len = 0;
    for (int i = 0; i < DGM_OP_COUNT; i++) {
        const op_row *r = &rows[i];
        char *log = read_log(r->suite);
        ck_assert_msg(log != NULL,
                      "no op-log/%s.log: run the %s suite (ctest runs it "
                      "first through the op_checks fixture)",
                      r->suite, r->suite);
        const char *need[2] = {NULL, NULL};
        if (!r->grad)
            need[0] = logged(log, r->name, "ref") ? NULL : "values (ref)";
        else if (!logged(log, r->name, "grad") &&
                 !(!r->dnnl && logged(log, r->name, "grad-dnnl")))
            need[0] = "gradient (ref)";
        if (r->dnnl && !logged(log, r->name, "dnnl"))
            need[1] = "ref vs oneDNN";
        for (int k = 0; k < 2; k++)
            if (need[k])
                len += (size_t)snprintf(missing + len, sizeof missing - len,
                                        "\n  %s: %s in %s", r->name, need[k],
                                        r->suite);
        free(log);
        if (len >= sizeof missing - 1)
            break;
    }
    ck_assert_msg(len == 0, "ops.def promises checks no suite made:%s",
                  missing);
}
END_TEST

/* The names nodes report are the table's. */
START_TEST(nodes_carry_the_table_name)
{
    dgm_graph *g = dgm_graph_new();
    ck_assert_ptr_nonnull(g);
    dgm_var *x = dgm_constant(g, 1, (int64_t[]){3}, 1.0f);
    dgm_var *y = dgm_softplus(g, x);
    ck_assert_ptr_nonnull(y);
    ck_assert_str_eq(dgm_var_op_name(y), rows[DGM_OP_SOFTPLUS].name);
    ck_assert_str_eq(dgm_var_op_name(dgm_neg(g, y)), rows[DGM_OP_NEG].name);
    for (int i = 0; i < DGM_OP_COUNT; i++)
        for (int j = i + 1; j < DGM_OP_COUNT; j++)
            ck_assert_msg(strcmp(rows[i].name, rows[j].name) != 0,
                          "'%s' twice in ops.def", rows[i].name);
    dgm_graph_free(g);
}
END_TEST

static Suite *op_table_suite(void)
{
    Suite *s = suite_create("op_table");
    tq_case(s, "table", every_op_is_checked, nodes_carry_the_table_name);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(op_table_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
