#!/bin/bash
# stop.sh — stop the RGW started by start.sh and remove its directory.
# Kills only the daemons recorded in $TS_RGW_DIR/run/*.pid. Idempotent.
set -uo pipefail
DIR=${TS_RGW_DIR:-/tmp/ts-rgw}
TIMEOUT=${TS_RGW_TIMEOUT:-30}
if [ ! -d "$DIR" ]; then
    echo "rgw/stop.sh: nothing to stop ($DIR does not exist)" >&2
    exit 0
fi
pids=()
for f in "$DIR"/run/*.pid; do
    [ -s "$f" ] || continue
    pid=$(cat "$f")
    # Only our daemons: the process must be a ceph daemon using our conf/dir.
    if kill -0 "$pid" 2>/dev/null && grep -qE 'ceph-mon|ceph-osd|radosgw' "/proc/$pid/comm" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null && pids+=("$pid")
    fi
done
t0=$SECONDS
for pid in "${pids[@]}"; do
    while kill -0 "$pid" 2>/dev/null; do
        if (( SECONDS - t0 > TIMEOUT )); then
            echo "rgw/stop.sh: pid $pid did not exit after ${TIMEOUT}s; sending KILL" >&2
            kill -KILL "$pid" 2>/dev/null
            break
        fi
        sleep 0.2
    done
done
rm -rf "$DIR"
echo "rgw/stop.sh: stopped ${#pids[@]} daemon(s), removed $DIR" >&2
