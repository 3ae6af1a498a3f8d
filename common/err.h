/*
 * err.h — error buffers and status helpers shared by every module.
 *
 * A caller owns the error buffer; callees write one line into it with
 * ts_err_set(). The first writer wins only when the caller asks for it
 * (ts_err_prefix adds context on the way up instead of overwriting).
 */
#ifndef TS_COMMON_ERR_H
#define TS_COMMON_ERR_H

#include <stddef.h>
#include "tierstore.h"

#if defined(__GNUC__)
#define TS_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define TS_PRINTF(a, b)
#endif

/* Writes a formatted message to errstr (if any) and returns st, so that
 * `return ts_err_set(errstr, errlen, TS_E_IO, "...")` reads naturally. */
ts_status ts_err_set(char *errstr, size_t errlen, ts_status st, const char *fmt, ...)
    TS_PRINTF(4, 5);

/* Prepends "context: " to the message already in errstr. Returns st. */
ts_status ts_err_prefix(char *errstr, size_t errlen, ts_status st, const char *fmt, ...)
    TS_PRINTF(4, 5);

/* Maps an errno from a file-system call to a status (ENOSPC -> TS_E_NOSPACE). */
ts_status ts_status_from_errno(int err);

#endif
