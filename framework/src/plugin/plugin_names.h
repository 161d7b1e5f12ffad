/* plugin_names.h - the names a plugin file declares in its `.dgm_plugins`
 * ELF section (DGM_PLUGIN_NAME in dgm/plugin.h), read from the file
 * without loading it, so the registry dlopens only the files that provide
 * a name an experiment uses (never installed). */
#ifndef DGM_PLUGIN_NAMES_H
#define DGM_PLUGIN_NAMES_H

#include <stddef.h>

#define DGM__NAMES_SECTION ".dgm_plugins"

/* The section's contents of the ELF file `path`: on 1, *out (malloc'ed,
 * the caller frees it) holds *len bytes of NUL-ended names (empty strings
 * from padding may sit between them). 0 when the file has no such section
 * or is not a native ELF file (the caller then dlopens it, as for a
 * plugin built without the macro); never an error: an unreadable file is
 * left to dlopen to explain. */
int dgm__plugin_file_names(const char *path, char **out, size_t *len);

#endif
