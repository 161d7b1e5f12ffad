/* files.h - test support: reading a whole file.
 *
 *     char *s = tc_slurp(path, NULL, true);   // fails the test if unreadable
 *     ck_assert_ptr_nonnull(strstr(s, "\"status\""));
 *     free(s);
 */
#ifndef DGM_TEST_FILES_H
#define DGM_TEST_FILES_H

#include <stdbool.h>
#include <stddef.h>

/* The whole file, malloc'ed and NUL-terminated (the caller frees); its
 * length in *n when n is not NULL. Unreadable: NULL, or with must, a
 * failed check naming the path. */
char *tc_slurp(const char *path, size_t *n, bool must);

#endif
