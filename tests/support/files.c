/* files.c - reading whole files for tests (see files.h). */
#include "files.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>

char *tc_slurp(const char *path, size_t *n, bool must)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        ck_assert_msg(!must, "cannot open %s", path);
        return NULL;
    }
    size_t cap = 4096, len = 0, k;
    char *s = malloc(cap);
    ck_assert_ptr_nonnull(s);
    while ((k = fread(s + len, 1, cap - len - 1, f)) > 0) {
        len += k;
        if (len + 1 == cap) {
            s = realloc(s, cap *= 2);
            ck_assert_ptr_nonnull(s);
        }
    }
    s[len] = '\0';
    fclose(f);
    if (n)
        *n = len;
    return s;
}
