/* main.c - the dgm executable: dispatch to one subcommand per file. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "dgm/export.h"

static const dgm_cli_command commands[] = {
#define DGM__CMD(name, fn, summary) {name, fn, summary},
    DGM_CLI_COMMANDS(DGM__CMD)
#undef DGM__CMD
};

static void usage(FILE *f)
{
    fprintf(f, "usage: dgm <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n'dgm <command> --help' describes a command.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return DGM_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("dgm %s\n", DGM_VERSION_STRING);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "dgm: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return DGM_EXIT_USAGE;
}
