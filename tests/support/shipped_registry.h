/* shipped_registry.h - test support: a registry of the plugins the build
 * made (DGM_PLUGIN_DIR), made and freed around each test of a case.
 *
 *     tcase_add_checked_fixture(tc, tc_shipped_setup, tc_shipped_teardown);
 *     ...
 *     ck_assert_int_eq(dgm_build_new(&b, tc_reg, ps, 3), 0);
 */
#ifndef DGM_TEST_SHIPPED_REGISTRY_H
#define DGM_TEST_SHIPPED_REGISTRY_H

#include "dgm/host.h"

/* The registry tc_shipped_setup made; NULL outside a test. */
extern dgm_registry *tc_reg;

/* Check fixture: scan DGM_PLUGIN_DIR into tc_reg (a failure fails the
 * test), and free it. */
void tc_shipped_setup(void);
void tc_shipped_teardown(void);

#endif
