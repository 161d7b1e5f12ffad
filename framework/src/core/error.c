/* error.c - DGM_E* names and the thread-local last-error message. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "dgm/error.h"

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

int dgm_error_context(const char *fmt, ...)
{
    char prefix[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    size_t plen = (size_t)n < sizeof prefix ? (size_t)n : sizeof prefix - 1;
    size_t mlen = strlen(last_msg);
    if (plen + mlen >= sizeof last_msg)
        mlen = sizeof last_msg - 1 - plen;
    /* Shift the message right and put the prefix in front. */
    memmove(last_msg + plen, last_msg, mlen);
    memcpy(last_msg, prefix, plen);
    last_msg[plen + mlen] = '\0';
    if (last_code == 0)
        last_code = DGM_EINVAL;
    return last_code;
}

void dgm_error_clear(void)
{
    last_msg[0] = '\0';
    last_code = 0;
}
