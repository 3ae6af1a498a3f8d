/* err.c — error buffers and status names (see err.h). */
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

const char *ts_status_name(ts_status st)
{
    switch (st) {
    case TS_OK: return "TS_OK";
    case TS_E_INVAL: return "TS_E_INVAL";
    case TS_E_NOMEM: return "TS_E_NOMEM";
    case TS_E_IO: return "TS_E_IO";
    case TS_E_CORRUPT: return "TS_E_CORRUPT";
    case TS_E_NOT_FOUND: return "TS_E_NOT_FOUND";
    case TS_E_OFFSET_OUT_OF_RANGE: return "TS_E_OFFSET_OUT_OF_RANGE";
    case TS_E_CONFIG: return "TS_E_CONFIG";
    case TS_E_BACKPRESSURE: return "TS_E_BACKPRESSURE";
    case TS_E_REMOTE: return "TS_E_REMOTE";
    case TS_E_REMOTE_RETRIABLE: return "TS_E_REMOTE_RETRIABLE";
    case TS_E_AUTH: return "TS_E_AUTH";
    case TS_E_TIMEOUT: return "TS_E_TIMEOUT";
    case TS_E_EXISTS: return "TS_E_EXISTS";
    case TS_E_CHECKSUM: return "TS_E_CHECKSUM";
    case TS_E_CLOSED: return "TS_E_CLOSED";
    case TS_E_NOSPACE: return "TS_E_NOSPACE";
    case TS_E_UNSUPPORTED: return "TS_E_UNSUPPORTED";
    case TS_E_MSG_TOO_LARGE: return "TS_E_MSG_TOO_LARGE";
    case TS_E_OBJECT_MISSING: return "TS_E_OBJECT_MISSING";
    case TS_E_INVALID_RECORD: return "TS_E_INVALID_RECORD";
    }
    return "TS_E_UNKNOWN";
}

int ts_status_is_retriable(ts_status st)
{
    /* S3 5xx / SlowDown / resets, timeouts and local backpressure are
     * transient. Checksum failures are retried too: a truncated or damaged
     * download is refetched, never served. Everything else fails fast. */
    return st == TS_E_REMOTE_RETRIABLE || st == TS_E_TIMEOUT || st == TS_E_BACKPRESSURE ||
           st == TS_E_CHECKSUM;
}
