/* shipped_registry.c - a registry of the shipped plugins for a test
 * case's fixture (see shipped_registry.h). */
#include "shipped_registry.h"

#include <check.h>
#include <stddef.h>

dgm_registry *tc_reg;

void tc_shipped_setup(void)
{
    ck_assert_int_eq(dgm_registry_new(&tc_reg), 0);
    ck_assert_int_eq(dgm_registry_add_dir(tc_reg, DGM_PLUGIN_DIR), 0);
    ck_assert_int_ge(dgm_registry_scan(tc_reg), 0);
}

void tc_shipped_teardown(void)
{
    dgm_registry_free(tc_reg);
    tc_reg = NULL;
}
