/* tool_files.h - the filesystem helpers the CLI's tools share: making
 * folders, removing a tree, writing a file atomically (never installed;
 * libdgm keeps its own for run directories and does not export it). */
#ifndef DGM_TOOL_FILES_H
#define DGM_TOOL_FILES_H

#include <stddef.h>

/* mkdir -p, mode 0777 (umask applies). 0 or DGM_EIO naming the folder. */
int dgm__tool_mkdirs(const char *path);
/* rm -rf dir; a missing dir is fine. 0 or DGM_EIO. */
int dgm__tool_remove_tree(const char *dir);
/* len bytes of data into path through "<path>.tmp.<pid>" and rename, so
 * that a reader sees the old file or the whole new one. 0 or DGM_EIO. */
int dgm__tool_write_file(const char *path, const char *data, size_t len);

#endif
