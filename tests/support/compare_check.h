/* compare_check.h - test support for the compare suites: loading run and
 * sweep directories with the tools' compare code (which only the suites
 * linked with the tools have, hence a header) and looking up its variants
 * and metrics; a failure fails the test.
 *
 *     dgm__compare *c = load(tc_cmp_sweep, NULL);
 *     CLOSE(variant(c, "latent=2")->stats[metric(c, "elbo")].mean, -103);
 */
#ifndef DGM_TEST_COMPARE_CHECK_H
#define DGM_TEST_COMPARE_CHECK_H

#include <check.h>
#include <math.h>
#include <string.h>

#include "compare.h"
#include "dgm/error.h"

static inline dgm__compare *load(const char *path, const dgm__cmp_options *o)
{
    dgm__compare *c = NULL;
    const char *p[1] = {path};
    int rc = dgm__compare_load(&c, p, 1, o);
    ck_assert_msg(rc == 0, "%s", dgm_last_error());
    return c;
}

static inline int load_fails(const char *path, const dgm__cmp_options *o)
{
    dgm__compare *c = NULL;
    const char *p[1] = {path};
    int rc = dgm__compare_load(&c, p, 1, o);
    ck_assert_ptr_null(c);
    return rc;
}

static inline const dgm__cmp_variant *variant(const dgm__compare *c,
                                              const char *label)
{
    for (int v = 0; v < c->n_variants; v++)
        if (!strcmp(c->variants[v].label, label))
            return &c->variants[v];
    ck_abort_msg("no variant '%s'", label);
    return NULL;
}

static inline int metric(const dgm__compare *c, const char *name)
{
    for (int m = 0; m < c->n_metrics; m++)
        if (!strcmp(c->metrics[m], name))
            return m;
    ck_abort_msg("no metric '%s'", name);
    return -1;
}

#define CLOSE(a, b)                                                            \
    ck_assert_msg(fabs((double)(a) - (double)(b)) <=                           \
                      1e-9 * (1 + fabs((double)(b))),                          \
                  "%s = %.17g, expected %.17g", #a, (double)(a), (double)(b))

#endif
