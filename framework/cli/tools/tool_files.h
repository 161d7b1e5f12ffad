/* tool_files.h - what the CLI's tools need of the filesystem besides
 * libdgm's dgm_mkdirs and dgm_write_file_atomic (dgm/io.h): removing a
 * tree (never installed). */
#ifndef DGM_TOOL_FILES_H
#define DGM_TOOL_FILES_H

#include <stddef.h>

/* rm -rf dir; a missing dir is fine. 0 or DGM_EIO. */
int dgm__tool_remove_tree(const char *dir);

#endif
