/* replay_main.c - a harness without libFuzzer: run LLVMFuzzerTestOneInput
 * over every file named on the command line (folders: every file in
 * them, sorted), so the checked-in corpora and crash inputs replay as
 * regression tests in any build, gcc's included. Exit 0 when every input
 * ran (a broken property aborts the program), 77 when there was none. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_common.h"

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t cap = 1 << 16, n = 0;
    uint8_t *buf = malloc(cap);
    for (size_t got; buf && (got = fread(buf + n, 1, cap - n, f)) > 0;) {
        n += got;
        if (n == cap) {
            uint8_t *nb = realloc(buf, cap *= 2);
            if (!nb)
                free(buf);
            buf = nb;
        }
    }
    fclose(f);
    if (!buf) {
        fprintf(stderr, "%s: out of memory\n", path);
        return -1;
    }
    fprintf(stderr, "replay %s (%zu bytes)\n", path, n);
    /* an exact-size copy, so ASan sees reads past the input's end */
    uint8_t *exact = malloc(n ? n : 1);
    if (exact)
        memcpy(exact, buf, n);
    free(buf);
    if (!exact)
        return -1;
    LLVMFuzzerTestOneInput(exact, n);
    free(exact);
    return 0;
}

static int not_hidden(const struct dirent *d)
{
    return d->d_name[0] != '.';
}

int main(int argc, char **argv)
{
    int ran = 0, bad = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            /* a harness with no regression inputs yet has no folder */
            fprintf(stderr, "%s: %s (skipped)\n", argv[i], strerror(errno));
            continue;
        }
        if (!S_ISDIR(st.st_mode)) {
            bad += run_file(argv[i]) < 0;
            ran++;
            continue;
        }
        struct dirent **list;
        int n = scandir(argv[i], &list, not_hidden, alphasort);
        for (int k = 0; k < n; k++) {
            char p[4096];
            snprintf(p, sizeof p, "%s/%s", argv[i], list[k]->d_name);
            if (stat(p, &st) == 0 && S_ISREG(st.st_mode)) {
                bad += run_file(p) < 0;
                ran++;
            }
            free(list[k]);
        }
        free(list);
    }
    fprintf(stderr, "%d inputs replayed\n", ran);
    return bad ? 1 : ran ? 0 : 77; /* nothing ran: a skip, not a pass */
}
