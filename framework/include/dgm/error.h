/* dgm/error.h - error codes and the last-error message.
 *
 * Every libdgm function that can fail returns 0 or a negative DGM_E* code
 * and, on failure, leaves a message with context in a thread-local buffer.
 * A failed call has no side effects the caller must undo.
 *
 *     int rc = dgm_config_load(&cfg, "exp.yaml");
 *     if (rc < 0)
 *         fprintf(stderr, "dgm: %s (%s)\n", dgm_last_error(), dgm_strerror(rc));
 *
 * Functions returning pointers return NULL on failure and set the message;
 * graph ops given a NULL input return NULL without touching it, so a forward
 * pass can be written as one expression and checked once.
 */
#ifndef DGM_ERROR_H
#define DGM_ERROR_H

#include "dgm/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* X(name, value, message): the one list every table is generated from. */
#define DGM_ERRNO_MAP(X)                                                   \
    X(EINVAL, -1, "invalid argument")                                      \
    X(ENOMEM, -2, "out of memory")                                         \
    X(EIO, -3, "input/output error")                                       \
    X(ESHAPE, -4, "shape mismatch")                                        \
    X(EDTYPE, -5, "unsupported or mismatched dtype")                       \
    X(ECONFIG, -6, "configuration error")                                  \
    X(EKEY, -7, "unknown key")                                             \
    X(ETYPE, -8, "value has the wrong type")                               \
    X(ERANGE, -9, "value out of range")                                    \
    X(EMISSING, -10, "missing required value")                             \
    X(ENOTFOUND, -11, "not found")                                         \
    X(EDLOPEN, -12, "shared object could not be loaded")                   \
    X(ENOSYM, -13, "plugin entry symbol missing")                          \
    X(EABI, -14, "plugin ABI mismatch")                                    \
    X(EDUP, -15, "duplicate name")                                         \
    X(EKIND, -16, "wrong plugin kind")                                     \
    X(EPLUGIN, -17, "plugin failed")                                       \
    X(EFORMAT, -18, "malformed file")                                      \
    X(EDNNL, -19, "oneDNN call failed")                                    \
    X(EDIVERGED, -20, "training diverged")                                 \
    X(EUNSUPPORTED, -21, "unsupported operation")                          \
    X(EINTERRUPTED, -22, "interrupted")                                    \
    X(ESTATE, -23, "invalid state")

enum {
#define DGM__ERR_ENUM(name, value, msg) DGM_##name = value,
    DGM_ERRNO_MAP(DGM__ERR_ENUM)
#undef DGM__ERR_ENUM
    DGM_OK = 0
};

/* The name of a code ("shape mismatch"); never NULL. */
DGM_API const char *dgm_strerror(int code);
/* The symbolic name of a code ("DGM_ESHAPE"); never NULL. */
DGM_API const char *dgm_errname(int code);

/* The message of the last failure on this thread ("" if none). */
DGM_API const char *dgm_last_error(void);
/* The code of the last failure on this thread (0 if none). */
DGM_API int dgm_last_code(void);

/* Set the last error and return code, so that `return dgm_error(...)` works. */
DGM_API int dgm_error(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Prefix the current message with context ("plugin 'vae': ") and return
 * the last code; used when an error passes up through a layer. */
DGM_API int dgm_error_context(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
/* Forget the last error. */
DGM_API void dgm_error_clear(void);

#ifdef __cplusplus
}
#endif
#endif
