/* plugin_names.c - read a plugin file's `.dgm_plugins` section with plain
 * file reads: no code of the file runs (no constructors, no dlopen). Only
 * the host's own ELF class and byte order are read; anything else is
 * left to dlopen, which explains it better. */
#include <elf.h>
#include <endian.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plugin_names.h"

#if UINTPTR_MAX > 0xffffffffu
typedef Elf64_Ehdr ehdr_t;
typedef Elf64_Shdr shdr_t;
#define NATIVE_CLASS ELFCLASS64
#else
typedef Elf32_Ehdr ehdr_t;
typedef Elf32_Shdr shdr_t;
#define NATIVE_CLASS ELFCLASS32
#endif
#if __BYTE_ORDER == __LITTLE_ENDIAN
#define NATIVE_DATA ELFDATA2LSB
#else
#define NATIVE_DATA ELFDATA2MSB
#endif

/* Bounds that keep a corrupt file from asking for much memory. */
#define MAX_SHSTRTAB (1u << 20)
#define MAX_NAMES (1u << 16)

static void *read_at(FILE *f, long off, size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p || fseek(f, off, SEEK_SET) != 0 || fread(p, 1, n, f) != n) {
        free(p);
        return NULL;
    }
    return p;
}

int dgm__plugin_file_names(const char *path, char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    int found = 0;
    shdr_t *sh = NULL;
    char *strtab = NULL;
    ehdr_t eh;
    if (fread(&eh, sizeof eh, 1, f) != 1 ||
        memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
        eh.e_ident[EI_CLASS] != NATIVE_CLASS ||
        eh.e_ident[EI_DATA] != NATIVE_DATA ||
        eh.e_shentsize != sizeof(shdr_t) || eh.e_shnum == 0 ||
        eh.e_shstrndx >= eh.e_shnum)
        goto done;
    sh = read_at(f, (long)eh.e_shoff, (size_t)eh.e_shnum * sizeof *sh);
    if (!sh)
        goto done;
    const shdr_t *st = &sh[eh.e_shstrndx];
    if (st->sh_size == 0 || st->sh_size > MAX_SHSTRTAB ||
        !(strtab = read_at(f, (long)st->sh_offset, st->sh_size)))
        goto done;
    strtab[st->sh_size - 1] = '\0';
    for (unsigned i = 0; i < eh.e_shnum; i++) {
        if (sh[i].sh_name >= st->sh_size ||
            strcmp(strtab + sh[i].sh_name, DGM__NAMES_SECTION) != 0)
            continue;
        if (sh[i].sh_type != SHT_PROGBITS || sh[i].sh_size == 0 ||
            sh[i].sh_size > MAX_NAMES)
            break;
        char *names = read_at(f, (long)sh[i].sh_offset, sh[i].sh_size);
        char *ended = names ? realloc(names, sh[i].sh_size + 1) : NULL;
        if (!ended) {
            free(names);
            break;
        }
        names = ended;
        names[sh[i].sh_size] = '\0'; /* the last name ends for certain */
        *out = names;
        *len = sh[i].sh_size + 1;
        found = 1;
        break;
    }
done:
    free(strtab);
    free(sh);
    fclose(f);
    return found;
}
