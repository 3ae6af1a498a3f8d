#!/usr/bin/env bash
# Installs the Debian 12 packages tierstore needs. Run as root.
#   scripts/install-deps.sh run    build + run the engine (and broker)
#   scripts/install-deps.sh cluster  run's packages + etcd (./run.sh cluster)
#   scripts/install-deps.sh test   everything the test suite uses as well:
#                                  Ceph RGW, the AWS CLI, kcat, librdkafka,
#                                  confluent-kafka, prometheus-client (the
#                                  /metrics parser), clang (fuzzers), etcd
#                                  (etcd-server: the etcd client's tests),
#                                  docker-compose (validates minio-compose/)
#                                  openssl (the CLI: test certificates)
# Packages already installed are not fetched again, so a second run is fast.
set -euo pipefail
mode="${1:-run}"
pkgs=(build-essential cmake pkg-config libzstd-dev libcurl4-openssl-dev libssl-dev
      libcjson-dev zstd ca-certificates librdkafka-dev kcat
      zlib1g-dev libsnappy-dev liblz4-dev libmicrohttpd-dev help2man)
if [ "$mode" = "cluster" ]; then
  pkgs+=(etcd-server)
fi
if [ "$mode" = "test" ]; then
  pkgs+=(ceph-mon ceph-osd radosgw ceph-common awscli
         python3-confluent-kafka python3-prometheus-client clang libclang-rt-14-dev procps
         etcd-server docker-compose openssl python3-cryptography)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing packages: ${missing[*]} (run as root, or install them)" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [ "$mode" = "test" ]; then
  # Test-only Kafka clients from npm (kafkajs: the admin client of tests/broker).
  command -v npm >/dev/null 2>&1 || {
    [ "$(id -u)" -eq 0 ] || { echo "install-deps: npm missing (run as root)" >&2; exit 1; }
    apt-get update -qq && apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null; }
  here=$(cd "$(dirname "$0")/.." && pwd)
  [ -d "$here/tests/broker/node/node_modules/kafkajs" ] ||
    npm ci --prefix "$here/tests/broker/node" --no-audit --no-fund --loglevel=error >/dev/null
fi
