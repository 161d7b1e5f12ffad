/* cli.h - test support: running the dgm executable the build made.
 *
 *     char out[4096], err[4096];
 *     int st = tc_cli("COLUMNS=1000", "plugins --help", out, sizeof out,
 *                     err, sizeof err);
 *     ck_assert_int_eq(st, 0);
 */
#ifndef DGM_TEST_CLI_H
#define DGM_TEST_CLI_H

#include <stddef.h>

/* Run `env -u DGM_PLUGIN_PATH ENV dgm ARGS` (env: shell assignments or
 * NULL; args: shell words), so only the plugins the arguments or ENV name
 * are found. Its stdout and stderr go into out and err (at most n - 1
 * bytes, NUL-terminated; a NULL buffer drops the stream). Returns the exit
 * status, -1 when it did not exit. */
int tc_cli(const char *env, const char *args, char *out, size_t n_out,
           char *err, size_t n_err);

#endif
