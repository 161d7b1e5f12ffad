/* dgm/export.h - symbol visibility and version of the public ABI. */
#ifndef DGM_EXPORT_H
#define DGM_EXPORT_H

#if defined(DGM_BUILDING_LIB) || defined(DGM_BUILDING_PLUGIN)
#define DGM_API __attribute__((visibility("default")))
#else
#define DGM_API
#endif

/* Version of the dgm release (not of the plugin ABI; see plugin.h). */
#define DGM_VERSION_MAJOR 0
#define DGM_VERSION_MINOR 1
#define DGM_VERSION_PATCH 0
#define DGM_VERSION_STRING "0.1.0"

#endif
