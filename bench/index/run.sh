#!/bin/sh
# bench/index/run.sh [SIZES...] — builds bench_index (Release) and runs it at
# 1k, 10k and 100k segments per partition (or the sizes given).
set -eu
SRC=$(cd "$(dirname "$0")/../.." && pwd)
B=${BUILD_DIR:-$SRC/build-bench}
cmake -S "$SRC" -B "$B" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$B" -j2 --target bench_index >/dev/null
exec "$B/bench/index/bench_index" "$@"
