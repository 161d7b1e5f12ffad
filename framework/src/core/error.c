/* error.c - DGM_E* names and the thread-local last-error message. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "dgm/error.h"
#include "error_internal.h"

#define DGM_ERRMSG_MAX 4096

static _Thread_local char last_msg[DGM_ERRMSG_MAX];
static _Thread_local int last_code;

const char *dgm_strerror(int code)
{
    switch (code) {
    case 0:
        return "success";
#define DGM__ERR_STR(name, value, msg)                                     \
    case value:                                                            \
        return msg;
        DGM_ERRNO_MAP(DGM__ERR_STR)
#undef DGM__ERR_STR
    }
    return "unknown error";
}

const char *dgm_errname(int code)
{
    switch (code) {
    case 0:
        return "DGM_OK";
#define DGM__ERR_NAME(name, value, msg)                                    \
    case value:                                                            \
        return "DGM_" #name;
        DGM_ERRNO_MAP(DGM__ERR_NAME)
#undef DGM__ERR_NAME
    }
    return "DGM_E?";
}

const char *dgm_last_error(void) { return last_msg; }

int dgm_last_code(void) { return last_code; }

int dgm_error(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_msg, sizeof last_msg, fmt, ap);
    va_end(ap);
    last_code = code;
    return code;
}

/* Put prefix[0..plen) in front of the last message, cutting its end if
 * both do not fit. */
static void prepend(const char *prefix, size_t plen)
{
    size_t mlen = strlen(last_msg);
    if (plen + mlen >= sizeof last_msg)
        mlen = sizeof last_msg - 1 - plen;
    /* Shift the message right and put the prefix in front. */
    memmove(last_msg + plen, last_msg, mlen);
    memcpy(last_msg, prefix, plen);
    last_msg[plen + mlen] = '\0';
}

static size_t vformat(char *buf, size_t size, const char *fmt, va_list ap)
{
    int n = vsnprintf(buf, size, fmt, ap);
    if (n < 0)
        n = 0;
    return (size_t)n < size ? (size_t)n : size - 1;
}

int dgm_error_context(const char *fmt, ...)
{
    char prefix[1024];
    va_list ap;
    va_start(ap, fmt);
    size_t plen = vformat(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    prepend(prefix, plen);
    if (last_code == 0)
        last_code = DGM_EINVAL;
    return last_code;
}

int dgm__error_prefix(int code, const char *fmt, ...)
{
    char prefix[1024];
    va_list ap;
    va_start(ap, fmt);
    size_t plen = vformat(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    /* A lower layer that already named the same file or thing keeps its
     * message as it is: the place is said once. */
    if (strncmp(last_msg, prefix, plen) != 0)
        prepend(prefix, plen);
    last_code = code;
    return code;
}

void dgm_error_clear(void)
{
    last_msg[0] = '\0';
    last_code = 0;
}
