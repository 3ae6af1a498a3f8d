/* etcd_status.c — names and retriability of ts_etcd_status (pure). */
#include "etcd/etcd.h"

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
