#!/usr/bin/env bash
# test.sh — the whole test suite, from a fresh Debian 12 machine (root):
# installs what it needs, builds (warnings are errors), then runs
#   1. unit and integration tests (file:// bucket: engine e2e 1 GiB, SIGKILL trials)
#   2. the S3 suite and the same engine suite against a private Ceph RGW
#   3. the broker tests with real Kafka clients (kcat, confluent-kafka, kafkajs)
#   3b. the cluster: a real etcd and three brokers (kills, SIGSTOP, wiped disks),
#       then the same topology on Ceph RGW
#   4. unit + integration tests again under AddressSanitizer + UBSan
#   5. unit and broker tests under ThreadSanitizer (halt on the first report)
#   6. a short libFuzzer run of every parser of untrusted bytes, from seed corpora
#      (a long run: scripts/fuzz.sh 1800)
# Exits non-zero if anything failed; prints "N passed, N failed" at the end.
set -uo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)
./scripts/install-deps.sh test || exit 1
JOBS=$(nproc)
export TS_LOG_LEVEL=${TS_LOG_LEVEL:-warn}

build() { # build DIR [cmake args...]
  local dir=$1; shift
  cmake -S "$ROOT" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTS_WERROR=ON "$@" >/dev/null &&
    cmake --build "$dir" -j"$JOBS" >/dev/null 2>"$dir.build.log" ||
    { cat "$dir.build.log" >&2; echo "test.sh: build of $dir failed" >&2; return 1; }
}

passed=0 failed=0
phase() { # phase NAME CMD... : runs one phase and counts it
  local name=$1; shift
  echo "=== $name"
  local t0=$SECONDS
  if "$@"; then passed=$((passed + 1)); echo "=== $name: ok ($((SECONDS - t0)) s)"
  else failed=$((failed + 1)); echo "=== $name: FAILED ($((SECONDS - t0)) s)"; fi
}

build build || exit 1
phase "unit + integration (file:// bucket)" \
  bash -c "cd build && ctest --output-on-failure -j2 -L '^(unit|integration)$'"
phase "S3 suite + engine suite on Ceph RGW" \
  env TS_S3_BIG=1 tests/rgw/run_s3_suite.sh build
phase "broker with real Kafka clients" \
  bash -c "cd build && ctest --output-on-failure -j2 -L '^broker$'"
phase "cluster: a real etcd and three brokers" \
  bash -c "cd build && ctest --output-on-failure -j2 -L '^cluster$'"
phase "cluster on Ceph RGW: etcd, three brokers, one killed, all read back" \
  tests/rgw/cluster_on_rgw.sh build
build build-asan -DTS_SANITIZE=address,undefined -DCMAKE_BUILD_TYPE=Debug || exit 1
# Still one test at a time: -j2 took 72-82 s against 134 s, but one of three
# such runs failed unit.encryption's cold read after a tierctl rekey, and why
# is not known yet.
phase "unit + integration under ASan+UBSan" \
  env TS_E2E_BYTES=268435456 TS_CRASH_TRIALS=8 ASAN_OPTIONS=detect_leaks=1 \
  bash -c "cd build-asan && ctest --output-on-failure -L '^(unit|integration)$'"
build build-tsan -DTS_SANITIZE=thread -DCMAKE_BUILD_TYPE=Debug || exit 1
# Two tests at a time, like the broker phase; the tests that need the machine
# to themselves say so (RUN_SERIAL in their CMakeLists).
phase "unit + broker under ThreadSanitizer" \
  env TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
  bash -c "cd build-tsan && ctest --output-on-failure -j2 -L '^(unit|broker)$'"

phase "fuzz smoke (libFuzzer, seeded from tests/fuzz/corpus)" \
  scripts/fuzz.sh "${TS_FUZZ_SECONDS:-15}"

echo
echo "test.sh: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
