#!/usr/bin/env bash
# run.sh — the main job on the embedded default (a file:// bucket under a
# local directory; no S3 server needed): installs what it needs (Debian 12,
# root), builds, and runs the tierstore demo: writes a few hundred MB of
# realistic records across several partitions with a small local bound, lets
# the uploader offload them, shows placement, reads every record back and
# verifies it, and prints a summary.
#   ./run.sh [--mb N] [--partitions N] [--dir DIR]
set -euo pipefail
cd "$(dirname "$0")"
./scripts/install-deps.sh run
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
exec build/cli/tierstore-demo --dir "$(pwd)/.run/demo" "$@"
