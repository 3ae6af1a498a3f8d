/* etcd_status.c — names and retriability of ts_etcd_status, and the one
 * helper that sets a message and returns a status (pure). */
#include <stdarg.h>
#include <stdio.h>

#include "etcd/etcd.h"
#include "etcd_json.h"

ts_etcd_status etcd_err(char *errstr, size_t errlen, ts_etcd_status st, const char *fmt, ...)
{
    if (errstr && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errstr, errlen, fmt, ap);
        va_end(ap);
    }
    return st;
}

const char *ts_etcd_status_name(ts_etcd_status st)
{
    switch (st) {
    case TS_ETCD_OK: return "TS_ETCD_OK";
    case TS_ETCD_E_INVAL: return "TS_ETCD_E_INVAL";
    case TS_ETCD_E_NOMEM: return "TS_ETCD_E_NOMEM";
    case TS_ETCD_E_UNAVAILABLE: return "TS_ETCD_E_UNAVAILABLE";
    case TS_ETCD_E_TIMEOUT: return "TS_ETCD_E_TIMEOUT";
    case TS_ETCD_E_PROTOCOL: return "TS_ETCD_E_PROTOCOL";
    case TS_ETCD_E_REFUSED: return "TS_ETCD_E_REFUSED";
    case TS_ETCD_E_NOT_FOUND: return "TS_ETCD_E_NOT_FOUND";
    case TS_ETCD_E_COMPACTED: return "TS_ETCD_E_COMPACTED";
    case TS_ETCD_E_TOO_LARGE: return "TS_ETCD_E_TOO_LARGE";
    case TS_ETCD_E_CLOSED: return "TS_ETCD_E_CLOSED";
    }
    return "TS_ETCD_E_UNKNOWN";
}

int ts_etcd_status_is_retriable(ts_etcd_status st)
{
    return st == TS_ETCD_E_UNAVAILABLE || st == TS_ETCD_E_TIMEOUT;
}
