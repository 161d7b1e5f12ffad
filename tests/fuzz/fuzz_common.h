/* fuzz_common.h - what the fuzz harnesses share: a private scratch folder
 * per process (removed at exit), the plugin registry, the config tree
 * comparison behind the round-trip properties, and the way a harness
 * reports a broken property (an abort libFuzzer records as a crash).
 *
 * Each harness defines LLVMFuzzerTestOneInput; built with -fsanitize=fuzzer
 * it is a libFuzzer target, built with replay_main.c a plain program that
 * runs the inputs named on its command line (the regression tests). */
#ifndef DGM_FUZZ_COMMON_H
#define DGM_FUZZ_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dgm/dgm.h"
#include "dgm/host.h"
#include "dgm/io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The process's scratch folder ($DGM_TEST_TMP, $TMPDIR or /tmp, then
 * dgm-fuzz-XXXXXX), made on first use and removed at exit. */
const char *fz_dir(void);
/* Write n bytes to fz_dir()/name (folders made on the way); the full path
 * into path. Aborts when the file cannot be written: the harness's own
 * failure, not the code under test's. */
void fz_write(const char *name, const void *data, size_t n, char *path,
              size_t cap);
/* A relative path rel, seen from a folder `depth` levels below fz_dir(),
 * stays inside fz_dir() (lexically: the folder holds no links). Harnesses
 * skip inputs that would make the code read files elsewhere. */
bool fz_rel_inside(int depth, const char *rel);
/* Remove everything inside fz_dir() (not the folder itself). */
void fz_clear(void);

/* The registry every command uses (the build's plugins) plus the fuzz
 * plugins' folder, scanned once; never freed. */
dgm_registry *fz_registry(void);

/* A broken property: print it with the last error and abort, so libFuzzer
 * keeps the input as a crash. */
_Noreturn void fz_fail(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/* A refused call must say why: a negative code and a message (naming
 * `place` when it is not NULL). With DGM_FUZZ_VERBOSE set in the
 * environment the message is printed (to see why a seed is refused). */
void fz_expect_error(int rc, const char *place);

/* Two config trees mean the same: same kinds, keys in the same order, the
 * same scalar texts read as the same YAML type (null, bool, int, float or
 * string). On a difference, *where gets its path. */
bool fz_cfg_same(const dgm_config *a, const dgm_config *b, const char **where);
/* The config written as YAML, read back and written again must give the
 * same tree and the same text (aborts otherwise). `what` names it. */
void fz_cfg_round_trip(const dgm_config *c, const char *what);

#endif
