/* cli_compare.h - what `dgm compare` and `dgm report` share (never
 * installed): their list options (--metric, --group-by, --higher,
 * --lower; each repeatable, or "a,b") and loading runs into variants. */
#ifndef DGM_CLI_COMPARE_H
#define DGM_CLI_COMPARE_H

#include "compare.h"

#define DGM__CLI_CMP_LISTS 4

/* The four lists in that order, owned; zero-initialise, free with
 * dgm__cli_cmp_free. */
typedef struct dgm__cli_cmp {
    char **list[DGM__CLI_CMP_LISTS];
    int n[DGM__CLI_CMP_LISTS];
} dgm__cli_cmp;

/* argv[*i] if it is one of the list options ("--metric X" moves *i past
 * X; "--metric=X" too): 1 taken, 0 not one of them, or minus the exit
 * status after printing why (a missing value, out of memory). */
int dgm__cli_cmp_option(dgm__cli_cmp *c, const char *cmd, int argc, char **argv,
                        int *i);
/* Load paths into variants with the lists as options; prints the notes
 * and any error as "dgm CMD: ...". Returns an exit status; on
 * DGM_EXIT_OK *out is the caller's (dgm__compare_free). */
int dgm__cli_cmp_load(dgm__cli_cmp *c, const char *cmd,
                      const char *const *paths, int np, dgm__compare **out);
void dgm__cli_cmp_free(dgm__cli_cmp *c);

#endif
