#!/bin/sh
# test_tierctl.sh TIERCTL SRC_DIR DEMO — the CLI's contract: CONFIGURATION.md
# is what `tierctl config-doc` prints (the property table is the one source);
# bad invocations and bad configs fail with a message naming the problem;
# status, locate and verify agree with data the engine demo wrote, verify
# catches a damaged object and reports a missing one, which placement marks.
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

# Numbers are checked (strtoll, end and range), the message names the
# argument and the value, and nothing runs (exit status 2).
"$T" -c "$tmp/ok.properties" locate t 0 12abc >"$tmp/o" 2>&1; rc=$?
if [ $rc -eq 2 ] && grep -q "invalid value '12abc' for OFFSET" "$tmp/o"; then ok bad_offset_refused
else cat "$tmp/o"; ko bad_offset_refused; fi
"$T" -c "$tmp/ok.properties" locate t 99999999999999999999 0 >"$tmp/o" 2>&1; rc=$?
if [ $rc -eq 2 ] && grep -q "invalid value '99999999999999999999' for PARTITION" "$tmp/o"; then
  ok bad_partition_refused; else cat "$tmp/o"; ko bad_partition_refused; fi
if [ -n "$DEMO" ]; then
  "$DEMO" --dir "$tmp/nodemo" --mb 12abc >"$tmp/o" 2>&1; rc=$?
  if [ $rc -eq 2 ] && grep -q "invalid value '12abc' for --mb: expected an integer from 1" "$tmp/o" &&
     [ ! -e "$tmp/nodemo" ]; then ok demo_bad_number_refused
  else cat "$tmp/o"; ko demo_bad_number_refused; fi
  "$DEMO" --dir "$tmp/nodemo" --partitions 0 >"$tmp/o" 2>&1; rc=$?
  if [ $rc -eq 2 ] && grep -q "invalid value '0' for --partitions: expected an integer from 1 to 64" "$tmp/o"
  then ok demo_partitions_range; else cat "$tmp/o"; ko demo_partitions_range; fi
fi

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
  # verify's scratch directory follows TMPDIR (it was always /tmp); one it
  # cannot create is an error naming it, not a verdict on the data.
  mkdir -p "$tmp/scratch"
  if TMPDIR="$tmp/scratch" "$T" -c "$C" verify events >"$tmp/v.txt" 2>&1 &&
     [ -z "$(ls -A "$tmp/scratch")" ] &&
     ! TMPDIR="$tmp/no/such/dir" "$T" -c "$C" verify events >"$tmp/v2.txt" 2>&1 &&
     grep -q "$tmp/no/such/dir/tierctl-verify-" "$tmp/v2.txt"; then ok verify_tmpdir
  else cat "$tmp/v.txt" "$tmp/v2.txt"; ko verify_tmpdir; fi
  # The manifest is one tierctl command away as JSON (issue 9): a format-2
  # head whose entries say where each object's chunk table is; the same view
  # from the bucket alone (no data directory).
  printf 'log.dirs=%s/nodata\nremote.storage.url=file://%s/demo/bucket\n' "$tmp" "$tmp" >"$tmp/bucket.properties"
  if "$T" -c "$C" manifest events 0 >"$tmp/m.json" &&
     "$T" -c "$tmp/bucket.properties" manifest events 0 >"$tmp/mb.json" &&
     /usr/bin/python3 - "$tmp/m.json" "$tmp/mb.json" <<'PY'
import json, sys
for path in sys.argv[1:]:
    m = json.load(open(path))
    h = m["head"]
    assert h["format"] == 2 and h["kind"] == "head" and h["topic"] == "events", h
    assert len(m["pieces"]) == len(h["pieces"]), m
    segs = h["segments"] + [s for p in m["pieces"] for s in p["segments"]]
    assert segs and all("chunk_table_len" in s and "chunks" not in s for s in segs), segs[:1]
PY
  then ok manifest_json_view; else head -c 2000 "$tmp/m.json"; ko manifest_json_view; fi
  obj=$(ls "$tmp"/demo/bucket/events/1/segments/*.zst | head -1)
  printf '\377' | dd of="$obj" bs=1 seek=200 conv=notrunc status=none
  if ! "$T" -c "$C" verify events 1 >"$tmp/v.txt" 2>&1 && grep -q "FAIL" "$tmp/v.txt" &&
     grep -q "$(basename "$obj")" "$tmp/v.txt"; then ok verify_detects_damage
  else cat "$tmp/v.txt"; ko verify_detects_damage; fi
  # An object the manifest names and the bucket lacks (issue 7 item 1): the
  # first segment of partition 0 leaves local disk (as local retention would
  # do) and its object disappears from the bucket. verify says MISSING and
  # names it, placement/locate/status do not call it remote.
  gone=$(ls "$tmp"/demo/bucket/events/0/segments/00000000000000000000-*.zst | head -1)
  gone_key=events/0/segments/$(basename "$gone")
  rm -f "$gone" "$tmp"/demo/data/events-0/00000000000000000000.*
  if ! "$T" -c "$C" verify events 0 >"$tmp/v.txt" 2>&1 && grep -q "MISSING" "$tmp/v.txt" &&
     grep "MISSING" "$tmp/v.txt" | grep -q "$gone_key"; then ok verify_reports_missing_object
  else cat "$tmp/v.txt"; ko verify_reports_missing_object; fi
  if "$T" -c "$C" placement events 0 --json >"$tmp/pl.json" && /usr/bin/python3 - "$tmp/pl.json" "$gone_key" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1]))
row = [r for r in rows if r["object_key"] == sys.argv[2]]
assert len(row) == 1 and row[0]["location"] == "missing", row
assert all(r["location"] != "missing" for r in rows if r["object_key"] != sys.argv[2]), rows
PY
  then ok placement_marks_missing_object; else cat "$tmp/pl.json"; ko placement_marks_missing_object; fi
  if "$T" -c "$C" locate events 0 5 >"$tmp/loc.txt" 2>&1 && grep -q "MISSING" "$tmp/loc.txt" &&
     "$T" -c "$C" status events --json >"$tmp/st.json" &&
     /usr/bin/python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r[0]["missing_segments"] == 1 and r[1]["missing_segments"] == 0, r' "$tmp/st.json"
  then ok locate_status_show_missing; else cat "$tmp/loc.txt" "$tmp/st.json"; ko locate_status_show_missing; fi
fi

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
