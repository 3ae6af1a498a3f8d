/* err.c — error buffers (see err.h); status names and the retriable predicate,
 * generated from the status table include/tierstore_status.def. */
#include "err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

ts_status ts_err_set(char *errstr, size_t errlen, ts_status st, const char *fmt, ...)
{
    if (errstr && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errstr, errlen, fmt, ap);
        va_end(ap);
    }
    return st;
}

ts_status ts_err_prefix(char *errstr, size_t errlen, ts_status st, const char *fmt, ...)
{
    if (!errstr || !errlen) return st;
    char prefix[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    size_t plen = strlen(prefix);
    size_t mlen = strnlen(errstr, errlen - 1);
    if (plen + 2 >= errlen) {
        snprintf(errstr, errlen, "%s", prefix);
        return st;
    }
    size_t keep = mlen;
    if (plen + 2 + keep >= errlen) keep = errlen - plen - 3;
    memmove(errstr + plen + 2, errstr, keep);
    memcpy(errstr, prefix, plen);
    errstr[plen] = ':';
    errstr[plen + 1] = ' ';
    errstr[plen + 2 + keep] = '\0';
    return st;
}

ts_status ts_status_from_errno(int err)
{
    switch (err) {
    case ENOSPC:
    case EDQUOT: return TS_E_NOSPACE;
    case ENOENT: return TS_E_NOT_FOUND;
    case ENOMEM: return TS_E_NOMEM;
    case EEXIST: return TS_E_EXISTS;
    default: return TS_E_IO;
    }
}

/* Both generated from include/tierstore_status.def. */
const char *ts_status_name(ts_status st)
{
    switch (st) {
#define TS_STATUS_X(id, code, retriable, message) \
    case TS_##id: return "TS_" #id;
#include "tierstore_status.def"
#undef TS_STATUS_X
    }
    return "TS_E_UNKNOWN";
}

int ts_status_is_retriable(ts_status st)
{
    switch (st) {
#define TS_STATUS_X(id, code, retriable, message) \
    case TS_##id: return (retriable);
#include "tierstore_status.def"
#undef TS_STATUS_X
    }
    return 0;
}
