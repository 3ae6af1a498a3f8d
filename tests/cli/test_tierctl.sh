#!/bin/sh
# test_tierctl.sh TIERCTL SRC_DIR — the CLI's contract: CONFIGURATION.md is
# what `tierctl config-doc` prints (the property table is the one source);
# bad invocations and bad configs fail with a message naming the problem.
set -u
T=$1 SRC=$2
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "  PASS $1"; }
ko() { fail=$((fail + 1)); echo "  FAIL $1"; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if "$T" config-doc | diff -u "$SRC/CONFIGURATION.md" - >"$tmp/diff"; then ok config_doc_in_sync
else cat "$tmp/diff"; ko "config_doc_in_sync (run: tierctl config-doc > CONFIGURATION.md)"; fi

"$T" placement t >"$tmp/o" 2>&1; rc=$?
if [ $rc -eq 2 ] && grep -q -- "-c CONFIG is required" "$tmp/o"; then ok missing_config; else ko missing_config; fi

printf 'log.dirs=%s/data\nlog.segment.bytes=banana\n' "$tmp" >"$tmp/bad.properties"
"$T" -c "$tmp/bad.properties" placement t >"$tmp/o" 2>&1; rc=$?
if [ $rc -ne 0 ] && grep -q "log.segment.bytes" "$tmp/o" && grep -q "banana" "$tmp/o"; then ok bad_value_named
else cat "$tmp/o"; ko bad_value_named; fi

printf 'log.dirs=%s/data\nremote.storage.url=file://%s/bucket\n' "$tmp" "$tmp" >"$tmp/ok.properties"
"$T" -c "$tmp/ok.properties" placement nosuch >"$tmp/o" 2>&1; rc=$?
if [ $rc -ne 0 ] && grep -q "nosuch" "$tmp/o"; then ok unknown_topic; else cat "$tmp/o"; ko unknown_topic; fi

"$T" -c "$tmp/ok.properties" placement 'bad/topic' >"$tmp/o" 2>&1; rc=$?
if [ $rc -ne 0 ] && grep -q "invalid topic" "$tmp/o"; then ok invalid_topic; else cat "$tmp/o"; ko invalid_topic; fi

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
