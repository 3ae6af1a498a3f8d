/* s3.c — placeholder until the S3 backend lands (issue 3). */
#include "objstore.h"
#include "common/err.h"

ts_status ts_objstore_s3_open(const char *url, const ts_config *cfg, ts_objstore **out,
                              char *errstr, size_t errlen)
{
    (void)cfg; (void)out;
    return ts_err_set(errstr, errlen, TS_E_UNSUPPORTED, "%s: the S3 backend is not built yet", url);
}
