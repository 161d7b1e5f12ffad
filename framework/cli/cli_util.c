/* cli_util.c - what every subcommand shares for --help and for reporting
 * a libdgm failure. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "dgm/error.h"

bool dgm__cli_help(int argc, char **argv, const char *help)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--"))
            break; /* what follows is not an option */
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(help, stdout);
            size_t n = strlen(help);
            if (n == 0 || help[n - 1] != '\n')
                fputc('\n', stdout);
            return true;
        }
    }
    return false;
}

void dgm__cli_error(const char *cmd, int code)
{
    const char *msg = dgm_last_error();
    if (msg[0])
        fprintf(stderr, "dgm %s: %s (%s)\n", cmd, msg, dgm_strerror(code));
    else
        fprintf(stderr, "dgm %s: %s\n", cmd, dgm_strerror(code));
}
