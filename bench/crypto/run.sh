#!/bin/bash
# run.sh — encryption at rest benchmark (see README.md): cold-read throughput
# and offload time with encryption on next to plaintext, in the same run.
# Builds Release in $TS_BENCH_BUILD (default build-bench-engine), then runs
# bench_crypto with any arguments given here (--mib, --rounds, --dir).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${TS_BENCH_BUILD:-$ROOT/build-bench-engine}

cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null || exit 1
nice make -C "$BUILD" -j2 bench_crypto >/dev/null || { echo "run.sh: build failed" >&2; exit 1; }
export TS_LOG_LEVEL=${TS_LOG_LEVEL:-warn}
echo "# $(date -u +%FT%TZ) $(nproc) cores, $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)"
exec "$BUILD/bench/crypto/bench_crypto" "$@"
