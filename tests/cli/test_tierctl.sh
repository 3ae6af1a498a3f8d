#!/bin/sh
# test_tierctl.sh TIERCTL SRC_DIR DEMO — the CLI's contract: CONFIGURATION.md
# is what `tierctl config-doc` prints (the property table is the one source);
# bad invocations and bad configs fail with a message naming the problem;
# status, locate and verify agree with data the engine demo wrote, and verify
# catches a damaged object.
set -u
T=$1 SRC=$2 DEMO=${3:-}
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

if [ -n "$DEMO" ] && [ -x /usr/bin/python3 ]; then
  "$DEMO" --dir "$tmp/demo" --mb 24 --partitions 2 >"$tmp/demo.log" 2>&1 || { cat "$tmp/demo.log"; ko demo_data; }
  C=$tmp/demo/demo.properties
  if "$T" -c "$C" status --json >"$tmp/st.json" && /usr/bin/python3 - "$tmp/st.json" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1]))
assert [r["partition"] for r in rows] == [0, 1], rows
for r in rows:
    assert r["topic"] == "events" and r["log_end_offset"] > 0
    assert r["remote_segments"] > 0 and r["awaiting_upload_segments"] == 0, r
    assert 0 < r["remote_stored_bytes"] < r["remote_raw_bytes"], r
PY
  then ok status_json; else ko status_json; fi
  if "$T" -c "$C" locate events 0 5 --json >"$tmp/loc.json" && /usr/bin/python3 - "$tmp/loc.json" <<'PY'
import json, sys
l = json.load(open(sys.argv[1]))
assert l["location"] in ("remote", "local+remote") and l["segment_base_offset"] == 0 and l["chunk_index"] == 0, l
assert l["object_key"].startswith("events/0/segments/00000000000000000000-"), l
PY
  then ok locate_json; else ko locate_json; fi
  if "$T" -c "$C" verify events >"$tmp/v.txt" 2>&1; then ok verify_clean; else cat "$tmp/v.txt"; ko verify_clean; fi
  obj=$(ls "$tmp"/demo/bucket/events/1/segments/*.zst | head -1)
  printf '\377' | dd of="$obj" bs=1 seek=200 conv=notrunc status=none
  if ! "$T" -c "$C" verify events 1 >"$tmp/v.txt" 2>&1 && grep -q "FAIL" "$tmp/v.txt" &&
     grep -q "$(basename "$obj")" "$tmp/v.txt"; then ok verify_detects_damage
  else cat "$tmp/v.txt"; ko verify_detects_damage; fi
fi

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
