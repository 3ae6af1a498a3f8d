#!/bin/sh
# test_recover.sh TIERCTL FIXTURE — tierctl recover (issue 12 item 5): an
# engine-written bucket (3 topics; beta has 2 partitions, partition 1 never
# uploaded; configs set and one deleted; a 4th topic created and deleted)
# comes back into a wiped data dir with every partition, config and tiered
# offset; a second run changes nothing; an unreadable descriptor is an
# error naming the object (the other topics still recovered); the data
# dir's lock held by another process is refused with a clear message.
set -u
T=$1 FX=$2
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "  PASS $1"; }
ko() { fail=$((fail + 1)); echo "  FAIL $1"; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
C=$tmp/engine.properties
printf 'log.dirs=%s/data\nremote.storage.enable=true\nremote.storage.url=file://%s/bucket\n' \
  "$tmp" "$tmp" >"$C"

"$FX" write "$tmp" >"$tmp/w.log" 2>&1 || { cat "$tmp/w.log"; ko fixture_write; }
# The descriptor is plain JSON in the bucket (standard tools read it).
d=$(ls "$tmp"/bucket/beta/descriptor/*.json 2>/dev/null | tail -1)
if [ -n "$d" ] && /usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["topic"]=="beta" and d["partitions"]==2, d' "$d"
then ok descriptor_json; else ko descriptor_json; fi
if [ ! -e "$tmp/bucket/delta/descriptor" ]; then ok deleted_topic_descriptor_gone; else ko deleted_topic_descriptor_gone; fi

rm -rf "$tmp/data"
"$T" -c "$C" partitions beta >"$tmp/o" 2>&1
if [ "$(cat "$tmp/o" | tr '\n' ' ')" = "0 1 " ]; then ok partition_count_from_bucket
else cat "$tmp/o"; ko partition_count_from_bucket; fi

# The read-only views list the never-uploaded partition as empty, no error.
if "$T" -c "$C" status beta --json >"$tmp/st.json" 2>"$tmp/e0" && /usr/bin/python3 -c '
import json, sys
rows = json.load(open(sys.argv[1]))
assert [(r["partition"], r["log_end_offset"]) for r in rows] == [(0, 20), (1, 0)], rows' "$tmp/st.json" &&
   "$T" -c "$C" verify beta >"$tmp/v0" 2>&1; then ok offline_views_empty_partition
else cat "$tmp/e0" "$tmp/v0"; ko offline_views_empty_partition; fi

"$T" -c "$C" recover --quiet >"$tmp/r1" 2>"$tmp/e1"; rc=$?
cat "$tmp/r1"
if [ $rc -eq 0 ] && grep -q "recovered 3 topic(s): 4 partition(s) restored from the bucket, 0 already present" "$tmp/r1" &&
   grep -q "^alpha .*overrides: .*retention.ms=86400000" "$tmp/r1" && ! grep -q delta "$tmp/r1" &&
   ! grep -q "tierctl:" "$tmp/e1"; then ok recover_all
else cat "$tmp/e1"; ko recover_all; fi
if "$FX" check "$tmp" >"$tmp/c1" 2>&1; then ok recovered_contents; else cat "$tmp/c1"; ko recovered_contents; fi

"$T" -c "$C" recover >"$tmp/r2" 2>&1; rc=$?
if [ $rc -eq 0 ] && grep -q "recovered 3 topic(s): 0 partition(s) restored from the bucket, 4 already present" "$tmp/r2"
then ok second_run_noop; else cat "$tmp/r2"; ko second_run_noop; fi

# Only the topics named.
rm -rf "$tmp/data"
"$T" -c "$C" recover beta --quiet >"$tmp/r3" 2>&1; rc=$?
if [ $rc -eq 0 ] && grep -q "recovered 1 topic(s): 2 partition(s) restored" "$tmp/r3" &&
   [ -d "$tmp/data/beta-1" ] && [ ! -d "$tmp/data/alpha-0" ]; then ok recover_named
else cat "$tmp/r3"; ko recover_named; fi

# The lock: another process holds the data dir (a running broker).
if command -v flock >/dev/null; then
  # -o: the lock is flock's own, gone when it is killed.
  flock -n -o "$tmp/data/.lock" sleep 20 </dev/null >/dev/null 2>&1 &
  lp=$!
  sleep 1
  "$T" -c "$C" recover >"$tmp/r4" 2>&1; rc=$?
  kill $lp 2>/dev/null; wait $lp 2>/dev/null
  if [ $rc -eq 1 ] && grep -q "in use by another tierstore process" "$tmp/r4" &&
     grep -q "stop the broker" "$tmp/r4"; then ok lock_refused; else cat "$tmp/r4"; ko lock_refused; fi
fi

# A broken descriptor: an error naming the object, never a crash; the
# other topics are recovered all the same.
rm -rf "$tmp/data"
bad=gamma/descriptor/99999999999999999999-deadbeef.json
printf '{"format":1,"topic":"gamma","partitions":"many"' >"$tmp/bucket/$bad"
"$T" -c "$C" recover --quiet >"$tmp/r5" 2>"$tmp/e5"; rc=$?
if [ $rc -eq 1 ] && grep -q "$bad" "$tmp/e5" && grep -q "^alpha " "$tmp/r5" && grep -q "^beta " "$tmp/r5" &&
   [ -d "$tmp/data/beta-1" ]; then ok broken_descriptor_named
else echo "rc=$rc"; cat "$tmp/r5" "$tmp/e5"; ko broken_descriptor_named; fi

echo "test_recover: $pass passed, $fail failed"
[ $fail -eq 0 ]
