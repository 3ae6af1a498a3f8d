# env.sh — `source tests/rgw/env.sh` exports the endpoint, credentials and
# bucket of the RGW started by tests/rgw/start.sh.
_ts_rgw_env=${TS_RGW_DIR:-/tmp/ts-rgw}/env
if [ -f "$_ts_rgw_env" ]; then
    . "$_ts_rgw_env"
else
    echo "tests/rgw/env.sh: $_ts_rgw_env not found; run tests/rgw/start.sh first" >&2
fi
unset _ts_rgw_env
