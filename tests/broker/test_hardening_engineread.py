#!/usr/bin/python3
"""test_hardening_engineread.py — issue 7 items 1 and 13 against tierbroker.

  missing_object     a segment object the manifest names is deleted from the
                     bucket: Fetch of its offsets answers KAFKA_STORAGE_ERROR
                     (56), a consumer from offset 0 never sees an offset at or
                     past the hole, the broker logs an ERROR naming the object
                     (rate-limited), tierctl verify reports it MISSING.
  corrupt_manifest   one partition's local manifest is damaged between two
                     runs: the broker still starts, the other topic serves,
                     the damaged partition is recovered from the bucket (every
                     offset readable) and the bad file is kept aside.
  corrupt_manifest_no_copy
                     the bucket's copies of that manifest are damaged too: the
                     broker still starts and serves the other topic; the
                     damaged partition answers KAFKA_STORAGE_ERROR and its
                     file is left as it was.

Run like test_broker.py: `test_hardening_engineread.py NAME` with TIERBROKER,
TSPLUGIN and TIERCTL set; exits 77 when it cannot run.
"""
import glob
import os
import signal
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_broker import (TIERCTL, TSPLUGIN, Broker, Fail, check, consume_all,  # noqa: E402
                         placement, raw_request, raw_response, run)
import confluent_kafka as ck  # noqa: E402

TIERED = {"log.segment.bytes": str(256 * 1024),
          "log.local.retention.bytes": str(128 * 1024),
          "remote.log.manager.task.interval.ms": "100",
          "log.retention.ms": "-1"}


def value(topic, i):
    return b"%s-%08d-" % (topic.encode(), i) + bytes((i * 7 + k) & 0xff for k in range(48))


def produce_n(b, topic, n):
    p = ck.Producer({"bootstrap.servers": b.bootstrap, "acks": "all", "linger.ms": 20,
                     "enable.idempotence": True, "batch.num.messages": 2000,
                     "queue.buffering.max.messages": 500000})
    for i in range(n):
        while True:
            try:
                p.produce(topic, value(topic, i), partition=0)
                break
            except BufferError:
                p.poll(0.1)
    left = p.flush(120)
    check(left == 0, "producer did not flush: %d left" % left)


def wait_remote_only(b, topic, want):
    """Waits until at least `want` segments live only in the bucket."""
    deadline = time.time() + 180
    rows = []
    while time.time() < deadline:
        rows = placement(b, topic)
        if sum(1 for r in rows if r.get("location") == "remote") >= want:
            return rows
        time.sleep(0.5)
    raise Fail("fewer than %d remote-only segments: %r"
               % (want, [(r.get("base_offset"), r.get("location")) for r in rows]))


def fetch_v4(port, topic, offset, corr=1):
    """One raw Fetch v4 of partition 0; returns (error_code, high_watermark, records)."""
    t = topic.encode()
    body = struct.pack(">iiiib", -1, 500, 1, 1 << 20, 0)
    body += struct.pack(">i", 1) + struct.pack(">h", len(t)) + t
    body += struct.pack(">i", 1) + struct.pack(">iqi", 0, offset, 1 << 20)
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    try:
        raw_request(s, 1, 4, corr, body)
        resp = raw_response(s)
    finally:
        s.close()
    check(resp is not None, "no Fetch response")
    pos = 4 + 4  # correlation id, ThrottleTimeMs
    (ntopics,) = struct.unpack_from(">i", resp, pos)
    pos += 4
    check(ntopics == 1, "Fetch answered %d topics" % ntopics)
    (tl,) = struct.unpack_from(">h", resp, pos)
    pos += 2 + tl
    (nparts,) = struct.unpack_from(">i", resp, pos)
    pos += 4
    check(nparts == 1, "Fetch answered %d partitions" % nparts)
    part, err, hwm, _lso = struct.unpack_from(">ihqq", resp, pos)
    pos += 4 + 2 + 8 + 8
    (naborted,) = struct.unpack_from(">i", resp, pos)
    pos += 4 + max(naborted, 0) * 16
    (rl,) = struct.unpack_from(">i", resp, pos)
    pos += 4
    records = resp[pos:pos + rl] if rl > 0 else b""
    return err, hwm, records


def first_batch_offset(records):
    return struct.unpack_from(">q", records, 0)[0] if len(records) >= 8 else None


def log_text(b):
    with open(os.path.join(b.root, "broker.log"), "rb") as f:
        return f.read().decode(errors="replace")


def t_missing_object():
    b = Broker(TSPLUGIN, TIERED).start()
    try:
        n = 30000
        produce_n(b, "mo", n)
        rows = wait_remote_only(b, "mo", 3)
        remote = [r for r in rows if r.get("location") == "remote"]
        hole, after = remote[1], remote[2]
        key = hole["object_key"]
        b.stop(signal.SIGTERM)
        os.remove(os.path.join(b.root, "bucket", key))
        cache = os.path.join(b.root, "data", ".chunk-cache")
        subprocess.run(["rm", "-rf", cache], check=True)
        b.start()

        # Raw Fetch: the hole answers KAFKA_STORAGE_ERROR, around it data.
        err, hwm, recs = fetch_v4(b.port, "mo", hole["base_offset"])
        check(err == 56 and not recs,
              "Fetch at the hole (%d): error %d, %d bytes" % (hole["base_offset"], err, len(recs)))
        err, _, recs = fetch_v4(b.port, "mo", hole["base_offset"] + 7, corr=2)
        check(err == 56, "Fetch inside the hole: error %d" % err)
        err, _, recs = fetch_v4(b.port, "mo", 0, corr=3)
        check(err == 0 and first_batch_offset(recs) == 0, "Fetch at 0: error %d" % err)
        err, _, recs = fetch_v4(b.port, "mo", after["base_offset"], corr=4)
        check(err == 0 and first_batch_offset(recs) == after["base_offset"],
              "Fetch after the hole: error %d, first batch %r" % (err, first_batch_offset(recs)))

        # A consumer from 0 gets everything before the hole and nothing past it.
        c = ck.Consumer({"bootstrap.servers": b.bootstrap, "group.id": "mo-reader",
                         "enable.auto.commit": False, "fetch.error.backoff.ms": 100})
        c.assign([ck.TopicPartition("mo", 0, 0)])
        got, beyond, errors = 0, [], 0
        deadline = time.time() + 20
        last_progress = time.time()
        while time.time() < deadline and time.time() - last_progress < 6:
            for m in c.consume(1000, 0.5):
                if m.error():
                    errors += 1
                    continue
                if m.offset() >= hole["base_offset"]:
                    beyond.append(m.offset())
                else:
                    check(m.offset() == got and m.value() == value("mo", got),
                          "message %d arrived as offset %d" % (got, m.offset()))
                    got += 1
                    last_progress = time.time()
        c.close()
        check(not beyond, "consumer moved past the hole at %d: offsets %r..."
              % (hole["base_offset"], beyond[:3]))
        check(got == hole["base_offset"],
              "consumer read %d messages, want the %d before the hole" % (got, hole["base_offset"]))

        # A client retrying hard: every read fails, the log does not grow per read.
        retries = 25
        for i in range(retries):
            err, _, _ = fetch_v4(b.port, "mo", hole["base_offset"], corr=10 + i)
            check(err == 56, "retry %d at the hole: error %d" % (i, err))
        log = log_text(b)
        err_lines = [ln for ln in log.splitlines() if "ERROR" in ln and key in ln]
        warn_lines = [ln for ln in log.splitlines() if "fetch mo-0" in ln]
        print("figures: %d failing raw Fetches + a retrying consumer -> %d ERROR line(s) naming "
              "%s, %d fetch WARN line(s); %d consumer error(s) surfaced"
              % (retries + 2, len(err_lines), key, len(warn_lines), errors))
        check(len(err_lines) >= 1, "no ERROR line names the missing object:\n" + log[-2000:])
        # one a minute per partition: the retrying consumer above made many reads
        check(len(err_lines) <= 2, "%d ERROR lines for one missing object" % len(err_lines))
        check(len(warn_lines) <= 2, "%d fetch WARN lines for one missing object" % len(warn_lines))

        r = subprocess.run([TIERCTL, "-c", b.props, "verify", "mo", "0"], capture_output=True,
                           timeout=120)
        out = r.stdout.decode(errors="replace")
        check(r.returncode != 0 and any("MISSING" in ln and key in ln for ln in out.splitlines()),
              "tierctl verify (rc %d) does not report %s missing:\n%s" % (r.returncode, key, out))
        rows = placement(b, "mo")
        loc = [x.get("location") for x in rows if x.get("object_key") == key]
        check(loc == ["missing"], "tierctl placement says %r for the lost object" % loc)
        check(b.alive(), "broker died")
    finally:
        b.cleanup()


def t_corrupt_manifest():
    b = Broker(TSPLUGIN, TIERED).start()
    try:
        n = 20000
        produce_n(b, "cm", n)
        produce_n(b, "other", 2000)
        wait_remote_only(b, "cm", 2)
        b.stop(signal.SIGTERM)
        path = os.path.join(b.root, "data", "cm-0", "remote_manifest.json")
        check(os.path.exists(path), "no local manifest at %s" % path)
        junk = b'{"format":1,"topic":"cm","partition":0,"vers'
        with open(path, "wb") as f:
            f.write(junk)
        b.start()
        check(b.alive(), "broker died at start")
        got = consume_all(b.bootstrap, "other", 2000, timeout=60)
        check(len(got) == 2000, "other: read %d of 2000" % len(got))
        got = consume_all(b.bootstrap, "cm", n, timeout=120)
        check(len(got) == n, "cm: read %d of %d after recovery" % (len(got), n))
        for i, (_, off, v) in enumerate(got):
            if off != i or v != value("cm", i):
                raise Fail("cm message %d: offset %d, bytes differ" % (i, off))
        aside = glob.glob(path + ".corrupt-*")
        check(len(aside) == 1, "damaged manifest not kept aside: %r" % aside)
        with open(aside[0], "rb") as f:
            check(f.read() == junk, "the kept file is not the damaged one")
        log = log_text(b)
        check(any("ERROR" in ln and "cm-0" in ln and "remote_manifest.json" in ln
                  for ln in log.splitlines()), "no ERROR line about the damaged manifest")
        produce_n(b, "cm", 10)  # still writable
        check(b.alive(), "broker died")
    finally:
        b.cleanup()


def t_corrupt_manifest_no_copy():
    b = Broker(TSPLUGIN, TIERED).start()
    try:
        produce_n(b, "cm", 5000)
        produce_n(b, "other", 2000)
        wait_remote_only(b, "cm", 1)
        b.stop(signal.SIGTERM)
        path = os.path.join(b.root, "data", "cm-0", "remote_manifest.json")
        junk = b'{"format":1,"topic":"cm"'
        with open(path, "wb") as f:
            f.write(junk)
        versions = glob.glob(os.path.join(b.root, "bucket", "cm", "0", "manifests", "*.json"))
        check(versions, "no manifest in the bucket")
        for v in versions:
            with open(v, "wb") as f:
                f.write(b"{}")
        b.start()
        check(b.alive(), "broker died at start")
        got = consume_all(b.bootstrap, "other", 2000, timeout=60)
        check(len(got) == 2000, "other: read %d of 2000" % len(got))
        err, _, recs = fetch_v4(b.port, "cm", 0)
        check(err == 56 and not recs, "Fetch of the offline partition: error %d" % err)
        with open(path, "rb") as f:
            check(f.read() == junk, "the damaged file was changed")
        check(not glob.glob(path + ".corrupt-*"), "a failed recovery left a file aside")
        log = log_text(b)
        check(any("ERROR" in ln and "cm-0" in ln and "offline" in ln for ln in log.splitlines()),
              "no ERROR line says cm-0 stays offline:\n" + log[-2000:])
        check(b.alive(), "broker died")
    finally:
        b.cleanup()


TESTS = {
    "missing_object": (t_missing_object, ["TSPLUGIN", "TIERCTL"]),
    "corrupt_manifest": (t_corrupt_manifest, ["TSPLUGIN", "TIERCTL"]),
    "corrupt_manifest_no_copy": (t_corrupt_manifest_no_copy, ["TSPLUGIN", "TIERCTL"]),
}


if __name__ == "__main__":
    run(TESTS)
