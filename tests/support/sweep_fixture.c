/* sweep_fixture.c - see sweep_fixture.h. */
#include "sweep_fixture.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#include "quadrants.h"
#include "scratch.h"

void ts_sweep_setup(void)
{
    tc_scratch_setup();
    const char *d = tc_spath("data");
    tc_sh("mkdir -p '%s'", d);
    ck_assert_int_eq(tq_write_bands(d, "ti", "tl", 64, 0), 0);
    ck_assert_int_eq(tq_write_bands(d, "si", "sl", 16, 0), 0);
}

void ts_let_segv_through(void)
{
    const char *asan = getenv("ASAN_OPTIONS");
    char opts[1024];
    snprintf(opts, sizeof opts, "%s%shandle_segv=0", asan ? asan : "",
             asan && *asan ? ":" : "");
    setenv("ASAN_OPTIONS", opts, 1);
}
