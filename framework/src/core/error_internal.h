/* error_internal.h - error helpers shared by libdgm's own files (never
 * installed). */
#ifndef DGM_ERROR_INTERNAL_H
#define DGM_ERROR_INTERNAL_H

/* Set the last error to `code` with the current message prefixed by the
 * printf-formatted prefix (unless the message already begins with it, so a
 * path a lower layer put there is not repeated), and return code. The way
 * to add context to an error while changing its code: formatting
 * dgm_last_error() into dgm_error() would read the buffer it writes. */
int dgm__error_prefix(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
