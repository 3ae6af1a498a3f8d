#!/usr/bin/python3
"""test_cold_fetch.py — issue 13 item 2: the cold-read pool serves many
partitions at once without head-of-line blocking.

The bucket is a real file:// store behind the fault-injecting wrapper
(objstore/faulty.c, `keys=slow/0/segments/`), so every GET of topic `slow`'s segment objects
sleeps 15 s and nothing else is touched. Every assertion is on an order of
events or on what a response holds, never on a duration: a `slow` read
cannot finish within the test, so a response that holds `fast` data while
the `slow` requests are still unanswered shows they did not wait for it.

Run by ctest as `test_cold_fetch.py NAME` (label `broker`), with the same
environment as test_broker.py (TIERBROKER, TSPLUGIN, TIERCTL).
"""
import json
import os
import select
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from test_broker import (TIERCTL, TSPLUGIN, Broker, Fail, check, kcat,  # noqa: E402
                         raw_response, run)

STALL_MS = 15000


def fetch_v4(corr, parts, max_bytes=4 << 20, part_max=1 << 20, max_wait=0, min_bytes=0):
    """A Fetch v4 frame; parts: [(topic, partition, offset)]."""
    by_topic = {}
    for t, p, off in parts:
        by_topic.setdefault(t, []).append((p, off))
    body = struct.pack(">iiiib", -1, max_wait, min_bytes, max_bytes, 0)
    body += struct.pack(">i", len(by_topic))
    for t, ps in by_topic.items():
        body += struct.pack(">h", len(t)) + t.encode() + struct.pack(">i", len(ps))
        for p, off in ps:
            body += struct.pack(">iqi", p, off, part_max)
    hdr = struct.pack(">hhih", 1, 4, corr, 4) + b"test"
    msg = hdr + body
    return struct.pack(">i", len(msg)) + msg


def fetch_v4_parse(resp):
    """-> (correlation id, {(topic, partition): (error, records bytes)})"""
    (corr,) = struct.unpack_from(">i", resp, 0)
    pos = 8
    (nt,) = struct.unpack_from(">i", resp, pos)
    pos += 4
    out = {}
    for _ in range(nt):
        (tl,) = struct.unpack_from(">h", resp, pos)
        name = resp[pos + 2:pos + 2 + tl].decode()
        pos += 2 + tl
        (np_,) = struct.unpack_from(">i", resp, pos)
        pos += 4
        for _ in range(np_):
            idx, err, _hwm, _lso, nab = struct.unpack_from(">ihqqi", resp, pos)
            pos += 4 + 2 + 8 + 8 + 4 + max(nab, 0) * 16
            (rl,) = struct.unpack_from(">i", resp, pos)
            pos += 4
            out[(name, idx)] = (err, resp[pos:pos + max(rl, 0)])
            pos += max(rl, 0)
    return corr, out


def pending(sock):
    r, _, _ = select.select([sock], [], [], 0)
    return not r


def connect(b, timeout=30):
    s = socket.create_connection(("127.0.0.1", b.port))
    s.settimeout(timeout)
    return s


def cold_broker(extra):
    props = {"log.segment.bytes": str(64 * 1024),
             "log.local.retention.bytes": str(64 * 1024),
             "remote.log.manager.task.interval.ms": "100",
             "log.retention.ms": "-1",
             "num.cold.read.threads": "4"}
    props.update(extra)
    b = Broker(TSPLUGIN, props)
    b.extra["remote.storage.url"] = "faulty+file://%s?ops=get&keys=slow/0/segments/&latency_ms=%d" % (
        os.path.join(b.root, "bucket"), STALL_MS)
    return b.start()


def placement_unfaulted(b, topic):
    """tierctl placement through the plain file:// bucket: through the
    broker's own URL every GET of `slow` would stall."""
    props = os.path.join(b.root, "tierctl.properties")
    with open(b.props) as f, open(props, "w") as out:
        for line in f:
            if line.startswith("remote.storage.url="):
                line = "remote.storage.url=file://%s\n" % os.path.join(b.root, "bucket")
            out.write(line)
    r = subprocess.run([TIERCTL, "-c", props, "placement", topic, "0", "--json"],
                       capture_output=True, timeout=60)
    if r.returncode != 0:
        raise Fail("tierctl placement: %s" % r.stderr.decode(errors="replace"))
    return json.loads(r.stdout)


def fill_cold(b, topics):
    """Writes ~400 KiB to partition 0 of each topic and waits until its first
    segments are only in the bucket. -> {topic: first local offset}"""
    line = b"y" * 199
    for t in topics:
        rc, _, err = kcat(["-P", "-b", b.bootstrap, "-t", t, "-p", "0", "-X", "acks=all",
                           "-X", "batch.size=8192"],
                          inp=b"\n".join([line] * 2000) + b"\n", timeout=60)
        check(rc == 0, "kcat -P %s: %s" % (t, err))
    local = {}
    deadline = time.time() + 60
    while time.time() < deadline and len(local) < len(topics):
        for t in topics:
            rows = placement_unfaulted(b, t)
            if len(rows) > 2 and rows[0].get("location") == "remote":
                local[t] = next((r["base_offset"] for r in rows if r.get("location") != "remote"),
                                None)
        time.sleep(0.2)
    check(len(local) == len(topics), "segments of %r not remote-only in time" % topics)
    return local


def t_cold_fetch_slow_partition():
    """Four consumers fetch the stalled partition from offset 0 (cold), more
    requests than half the cold threads: a consumer of another partition's
    cold data and a hot fetch are answered while those four wait."""
    b = cold_broker({"remote.fetch.max.wait.ms": "60000"})
    try:
        local = fill_cold(b, ["slow", "fast"])
        slow = []
        for i in range(4):
            s = connect(b)
            s.sendall(fetch_v4(10 + i, [("slow", 0, 0)]))
            slow.append(s)
        time.sleep(0.3)  # let them reach the cold pool first (order only; nothing is timed)
        f = connect(b, timeout=STALL_MS / 1000 - 5)
        f.sendall(fetch_v4(20, [("fast", 0, 0)]))
        try:
            corr, parts = fetch_v4_parse(raw_response(f))
        except socket.timeout:
            raise Fail("the cold fetch of fast-0 waited behind the stalled slow-0 reads")
        err, recs = parts[("fast", 0)]
        check(corr == 20 and err == 0 and len(recs) > 0,
              "fast-0 cold fetch: error %d, %d bytes" % (err, len(recs)))
        check(recs[:8] == struct.pack(">q", 0), "fast-0 does not start at offset 0")
        # a hot fetch (local data) of the same topic
        h = connect(b, timeout=STALL_MS / 1000 - 5)
        h.sendall(fetch_v4(21, [("fast", 0, local["fast"])]))
        corr, parts = fetch_v4_parse(raw_response(h))
        err, recs = parts[("fast", 0)]
        check(corr == 21 and err == 0 and len(recs) > 0, "fast-0 hot fetch: error %d" % err)
        check(all(pending(s) for s in slow), "a stalled slow-0 fetch was answered")
        for s in slow + [f, h]:
            s.close()
        check(b.alive(), "broker died")
    finally:
        b.cleanup()


def t_cold_fetch_partial_answer():
    """One Fetch naming the stalled partition and a healthy cold one: it is
    answered at remote.fetch.max.wait.ms with the healthy partition's records
    and none (no error) for the stalled one, which the client fetches again;
    the next fetch of the healthy partition continues where that one ended."""
    b = cold_broker({"remote.fetch.max.wait.ms": "1000"})
    try:
        fill_cold(b, ["slow", "fast"])
        s = connect(b, timeout=STALL_MS / 1000 - 5)
        s.sendall(fetch_v4(30, [("slow", 0, 0), ("fast", 0, 0)]))
        try:
            corr, parts = fetch_v4_parse(raw_response(s))
        except socket.timeout:
            raise Fail("the Fetch waited for its stalled partition")
        check(corr == 30, "correlation id %d" % corr)
        serr, srecs = parts[("slow", 0)]
        ferr, frecs = parts[("fast", 0)]
        check(serr == 0 and len(srecs) == 0, "slow-0: error %d, %d bytes (want none yet)"
              % (serr, len(srecs)))
        check(ferr == 0 and len(frecs) > 0, "fast-0: error %d, %d bytes" % (ferr, len(frecs)))
        # the budget still holds: at most max_bytes plus one batch
        s.sendall(fetch_v4(31, [("fast", 0, 0)], max_bytes=1, part_max=1))
        _, parts = fetch_v4_parse(raw_response(s))
        one = parts[("fast", 0)][1]
        check(0 < len(one) <= len(frecs), "one-byte budget: %d bytes" % len(one))
        # the same request again while the first stalled read still runs:
        # answered the same way (the pool's key limit holds the extra read)
        s.sendall(fetch_v4(32, [("slow", 0, 0), ("fast", 0, 0)]))
        corr, parts = fetch_v4_parse(raw_response(s))
        check(corr == 32 and len(parts[("fast", 0)][1]) > 0 and len(parts[("slow", 0)][1]) == 0,
              "second answer: %r" % {k: (e, len(r)) for k, (e, r) in parts.items()})
        s.close()
        check(b.alive(), "broker died")
    finally:
        b.cleanup()


TESTS = {
    "cold_fetch_slow_partition": (t_cold_fetch_slow_partition, ["TSPLUGIN", "TIERCTL"]),
    "cold_fetch_partial_answer": (t_cold_fetch_partial_answer, ["TSPLUGIN", "TIERCTL"]),
}


if __name__ == "__main__":
    run(TESTS)
