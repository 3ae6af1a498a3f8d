#!/usr/bin/env bash
# test_install.sh BUILD_DIR VERSION — `cmake --install` into a staging prefix,
# then what an operator gets from it:
#   - every binary, the plugin, a man page per binary, the systemd unit, the
#     example configuration and the docs are where ops/CMakeLists.txt says;
#   - `--version` of every installed binary names the project version;
#   - the installed tierbroker, started with the installed unit's ExecStart
#     (plus overrides pointing it at temp dirs and free ports), loads the
#     installed plugin (not the build tree's), serves a Kafka client and stops
#     cleanly on SIGTERM;
#   - with log.format=json every line it writes on stderr, the broker's and the
#     engine's, is one JSON object.
set -euo pipefail
build=$(cd "$1" && pwd)
version=$2
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$tmp/broker.log" ] && tail -20 "$tmp/broker.log" >&2; exit 1; }

stage=$tmp/stage
cmake --install "$build" --prefix "$stage" >"$tmp/install.log" || fail "cmake --install: $(cat "$tmp/install.log")"

bins="tierbroker tierctl tierstore-demo"
[ -x "$build/cli/tierstore-kafka-demo" ] && bins="$bins tierstore-kafka-demo"
for b in $bins; do
  [ -x "$stage/bin/$b" ] || fail "bin/$b not installed"
  first=$("$stage/bin/$b" --version | head -1)
  [ "$first" = "$b (tierstore) $version" ] || fail "$b --version printed '$first'"
  page=$stage/share/man/man1/$b.1
  [ -s "$page" ] || fail "no man page $page"
  grep -q "^\.TH ${b^^} \"1\"" "$page" || fail "$page is not a section-1 man page"
  grep -q '^\.SH DESCRIPTION' "$page" || fail "$page has no DESCRIPTION"
  if grep -q 'INFO \|WARN ' "$page"; then fail "$page holds log lines"; fi
done
plugin=$(find "$stage" -name libtierstore-plugin.so)
[ -n "$plugin" ] || fail "plugin not installed"
unit=$stage/lib/systemd/system/tierbroker.service
[ -f "$unit" ] || fail "no systemd unit"
cfg=$stage/etc/tierstore/server.properties
[ -f "$cfg" ] || fail "no example configuration"
for d in README.md CONFIGURATION.md ARCHITECTURE.md tierstore.json; do
  [ -f "$stage/share/doc/tierstore/$d" ] || fail "doc $d not installed"
done
# A second install keeps an edited configuration.
echo "# edited by the operator" >>"$cfg"
cmake --install "$build" --prefix "$stage" >/dev/null
grep -q "edited by the operator" "$cfg" || fail "a re-install overwrote the configuration"

exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
read -r -a cmd <<<"$exec_start"
[ "${cmd[0]}" = "$stage/bin/tierbroker" ] || fail "ExecStart runs '${cmd[0]}'"
[ "${cmd[1]}" = "$cfg" ] || fail "ExecStart reads '${cmd[1]}'"

port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$tmp/data" "$tmp/bucket"
"${cmd[@]}" --override "listeners=PLAINTEXT://127.0.0.1:$port" \
  --override "advertised.listeners=PLAINTEXT://127.0.0.1:$port" \
  --override "admin.listeners=" --override "log.dirs=$tmp/data" \
  --override "remote.storage.url=file://$tmp/bucket" --override "log.format=json" \
  --override "log.level=info" 2>"$tmp/broker.log" &
pid=$!
for _ in $(seq 1 100); do
  kcat -b "127.0.0.1:$port" -L -m 2 >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || fail "the installed broker exited"
  sleep 0.1
done
printf 'packaged-1\npackaged-2\n' | kcat -b "127.0.0.1:$port" -t pkg -P -X topic.request.required.acks=-1 ||
  fail "produce to the installed broker"
got=$(kcat -b "127.0.0.1:$port" -t pkg -C -o beginning -e -q -m 10)
[ "$got" = "$(printf 'packaged-1\npackaged-2')" ] || fail "consumed '$got'"
kill -TERM "$pid"
wait "$pid" || fail "the broker exited $? on SIGTERM"
pid=

/usr/bin/python3 - "$tmp/broker.log" "$stage" <<'PY' || fail "log lines are not JSON"
import json, sys
lines = open(sys.argv[1], encoding="utf-8").read().splitlines()
assert lines, "no log lines"
loggers = set()
for l in lines:
    o = json.loads(l)
    assert set(o) >= {"ts", "level", "logger", "msg"}, l
    loggers.add(o["logger"])
plugin_lines = [json.loads(l)["msg"] for l in lines if "storage plugin" in l]
assert plugin_lines and sys.argv[2] + "/bin/../lib" in plugin_lines[0], plugin_lines
assert "broker" in loggers and len(loggers) > 1, "engine lines missing: %s" % loggers
print("%d JSON lines from %s" % (len(lines), sorted(loggers)))
PY
echo "install test ok"
