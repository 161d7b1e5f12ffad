/* st_diff.c - see st_diff.h. */
#include "st_diff.h"

#include <check.h>
#include <math.h>
#include <string.h>

#include "dgm/dgm.h"

double tq_max_diff(dgm_st_file *a, dgm_st_file *b, const char *prefix, int *n)
{
    double m = 0;
    size_t lp = strlen(prefix);
    *n = 0;
    for (int i = 0; i < dgm_st_count(a); i++) {
        const char *name = dgm_st_name_at(a, i);
        if (strncmp(name, prefix, lp) != 0 || strstr(name, "running_"))
            continue;
        dgm_tensor *ta, *tb;
        ck_assert_int_eq(dgm_st_get(a, name, &ta), 0);
        ck_assert_msg(dgm_st_get(b, name, &tb) == 0, "%s", dgm_last_error());
        ck_assert_int_eq(dgm_tensor_numel(ta), dgm_tensor_numel(tb));
        for (int64_t k = 0; k < dgm_tensor_numel(ta); k++) {
            double d = fabs(dgm_tensor_get(ta, k) - dgm_tensor_get(tb, k));
            m = d > m ? d : m;
        }
        (*n)++;
    }
    return m;
}

void tq_assert_same_checkpoint(const char *a, const char *b, int min_tensors)
{
    dgm_st_file *fa, *fb;
    ck_assert_msg(dgm_st_open(&fa, a) == 0, "%s", dgm_last_error());
    ck_assert_msg(dgm_st_open(&fb, b) == 0, "%s", dgm_last_error());
    int n = dgm_st_count(fa);
    ck_assert_int_eq(n, dgm_st_count(fb));
    int compared = 0;
    for (int i = 0; i < n; i++) {
        const char *name = dgm_st_name_at(fa, i);
        dgm_tensor *ta, *tb;
        ck_assert_int_eq(dgm_st_get(fa, name, &ta), 0);
        ck_assert_msg(dgm_st_get(fb, name, &tb) == 0, "%s missing", name);
        ck_assert_msg(dgm_tensor_nbytes(ta) == dgm_tensor_nbytes(tb) &&
                          memcmp(ta->data, tb->data, dgm_tensor_nbytes(ta)) ==
                              0,
                      "tensor %s differs", name);
        compared++;
    }
    ck_assert_int_gt(compared, min_tensors);
    dgm_st_close(fa);
    dgm_st_close(fb);
}
