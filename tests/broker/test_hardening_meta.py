#!/usr/bin/python3
"""test_hardening_meta.py — issue 7, items 8-12 and 14: group coordinator,
broker metadata files, producer ids, listener schemes, topic config keys.

Run by ctest as `test_hardening_meta.py NAME` (label `broker`), or by hand
like test_broker.py (same environment variables). Each scenario reproduces a
defect found against the broker and checks it stays fixed.
"""
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from test_broker import (  # noqa: E402
    Broker, Fail, check, crc32c, kcat, produce_v7, raw_request, raw_response,
    record_batch, run, zz)
from test_broker import MEMPLUGIN, TSPLUGIN  # noqa: E402

import confluent_kafka as ck  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

BROKER = os.environ.get("TIERBROKER")

# ---------------------------------------------------------------- encoders


def s16(x):
    x = x.encode() if isinstance(x, str) else x
    return struct.pack(">h", len(x)) + x


def ns16(x):
    return struct.pack(">h", -1) if x is None else s16(x)


def offset_commit_v2(sock, corr, group, topics, generation=-1, member=""):
    """topics: [(name, [(partition, offset, metadata)])] -> {(name, p): error}"""
    body = s16(group) + struct.pack(">i", generation) + s16(member) + struct.pack(">q", -1)
    body += struct.pack(">i", len(topics))
    for name, parts in topics:
        body += s16(name) + struct.pack(">i", len(parts))
        for p, off, md in parts:
            body += struct.pack(">iq", p, off) + ns16(md)
    raw_request(sock, 8, 2, corr, body)
    r = raw_response(sock)
    check(r is not None, "OffsetCommit: connection closed")
    pos = 4
    out = {}
    (nt,) = struct.unpack_from(">i", r, pos)
    pos += 4
    for _ in range(nt):
        (ln,) = struct.unpack_from(">h", r, pos)
        name = r[pos + 2:pos + 2 + ln].decode(errors="replace")
        pos += 2 + ln
        (np_,) = struct.unpack_from(">i", r, pos)
        pos += 4
        for _ in range(np_):
            p, err = struct.unpack_from(">ih", r, pos)
            pos += 6
            out[(name, p)] = err
    return out


def offset_fetch_v1(sock, corr, group, topic, partitions):
    """-> {partition: (offset, metadata, error)}"""
    body = s16(group) + struct.pack(">i", 1) + s16(topic) + struct.pack(">i", len(partitions))
    for p in partitions:
        body += struct.pack(">i", p)
    raw_request(sock, 9, 1, corr, body)
    r = raw_response(sock)
    check(r is not None, "OffsetFetch: connection closed")
    pos = 4 + 4
    (ln,) = struct.unpack_from(">h", r, pos)
    pos += 2 + ln
    (np_,) = struct.unpack_from(">i", r, pos)
    pos += 4
    out = {}
    for _ in range(np_):
        p, off, ml = struct.unpack_from(">iqh", r, pos)
        pos += 14
        md = r[pos:pos + max(ml, 0)].decode(errors="replace")
        pos += max(ml, 0)
        (err,) = struct.unpack_from(">h", r, pos)
        pos += 2
        out[p] = (off, md, err)
    return out


def join_group_v4(sock, corr, group, member_id, session_ms=10000):
    """-> (error, generation, leader, member_id)"""
    body = s16(group) + struct.pack(">ii", session_ms, session_ms) + s16(member_id)
    body += s16("consumer") + struct.pack(">i", 1) + s16("range")
    meta = struct.pack(">h", 0) + struct.pack(">i", 1) + s16("pm") + struct.pack(">i", 0)
    body += struct.pack(">i", len(meta)) + meta
    raw_request(sock, 11, 4, corr, body)
    r = raw_response(sock)
    check(r is not None, "JoinGroup: connection closed")
    pos = 4 + 4
    err, gen = struct.unpack_from(">hi", r, pos)
    pos += 6
    strs = []
    for _ in range(3):  # protocol name, leader, member id
        (ln,) = struct.unpack_from(">h", r, pos)
        strs.append(r[pos + 2:pos + 2 + max(ln, 0)].decode())
        pos += 2 + max(ln, 0)
    return err, gen, strs[1], strs[2]


def init_producer_id_v1(sock, corr):
    """-> (error, producer_id, epoch)"""
    raw_request(sock, 22, 1, corr, ns16(None) + struct.pack(">i", 60000))
    r = raw_response(sock)
    check(r is not None, "InitProducerId: connection closed")
    _thr, err, pid, epoch = struct.unpack_from(">ihqh", r, 4)
    return err, pid, epoch


def record_batch_n(pid, epoch, seq, values, ts=1_700_000_000_000):
    """A v2 batch of len(values) records starting at sequence seq."""
    recs = b""
    for i, v in enumerate(values):
        rec = b"\x00" + zz(0) + zz(i) + zz(-1) + zz(len(v)) + v + zz(0)
        recs += zz(len(rec)) + rec
    after_crc = struct.pack(">hiqqqhii", 0, len(values) - 1, ts, ts, pid, epoch, seq,
                            len(values)) + recs
    head = struct.pack(">bI", 2, crc32c(after_crc))
    body = struct.pack(">i", 0) + head + after_crc
    return struct.pack(">qi", 0, len(body)) + body


def connect(b):
    s = socket.create_connection(("127.0.0.1", b.port))
    s.settimeout(30)
    return s


def high_watermark(b, topic, partition=0):
    c = ck.Consumer({"bootstrap.servers": b.bootstrap, "group.id": "hw"})
    try:
        return c.get_watermark_offsets(ck.TopicPartition(topic, partition), timeout=10)[1]
    finally:
        c.close()


def create_topic(b, name, parts=1, config=None):
    a = AdminClient({"bootstrap.servers": b.bootstrap})
    a.create_topics([NewTopic(name, parts, 1, config=config or {})])[name].result(15)


# ------------------------------------------------------------------- tests


def t_offsets_injection():
    """Item 8: a topic name with a newline wrote a forged line into
    .broker/offsets (group `attacker` set group `victim`'s offset, returned
    after a restart). Names are validated, the file format cannot be
    forged, metadata is capped at offset.metadata.max.bytes."""
    b = Broker(TSPLUGIN).start()
    try:
        create_topic(b, "t8")
        s = connect(b)
        res = offset_commit_v2(s, 1, "victim", [("t8", [(0, 7, "mine")])])
        check(res == {("t8", 0): 0}, "victim's own commit: %r" % res)
        # The attack, in the file format of the versions before the fix:
        # "hex(group) TAB topic TAB partition TAB offset TAB hex(metadata)".
        forged = "zz\n" + "victim".encode().hex() + "\tt8\t0\t999999\t"
        res = offset_commit_v2(s, 2, "attacker", [(forged, [(0, 5, "")])])
        check(res.get((forged, 0)) == 17,
              "a topic name with a newline must get INVALID_TOPIC_EXCEPTION (17): %r" % res)
        res = offset_commit_v2(s, 3, "attacker", [("no-such-topic", [(0, 5, "")]),
                                                  ("t8", [(0, 5, "ok"), (9, 5, "")])])
        check(res.get(("no-such-topic", 0)) == 3 and res.get(("t8", 9)) == 3,
              "unknown topic / partition must get UNKNOWN_TOPIC_OR_PARTITION (3): %r" % res)
        check(res.get(("t8", 0)) == 0, "the valid partition of the request commits: %r" % res)
        res = offset_commit_v2(s, 4, "attacker", [("t8", [(0, 6, "m" * 4097)])])
        check(res.get(("t8", 0)) == 12,
              "4097 bytes of metadata must get OFFSET_METADATA_TOO_LARGE (12): %r" % res)
        res = offset_commit_v2(s, 5, "big", [("t8", [(0, 8, "m" * 4096)])])
        check(res.get(("t8", 0)) == 0, "4096 bytes of metadata are allowed: %r" % res)
        s.close()
        for sig in (signal.SIGTERM, signal.SIGKILL):
            b.stop(sig)
            b.start()
            s = connect(b)
            got = offset_fetch_v1(s, 6, "victim", "t8", [0])
            check(got[0][:2] == (7, "mine"),
                  "after restart (%s) victim's offset is %r, want (7, 'mine')" % (sig.name, got))
            got = offset_fetch_v1(s, 7, "attacker", "t8", [0])
            check(got[0][:2] == (5, "ok"), "attacker's own offset %r, want (5, 'ok')" % got)
            got = offset_fetch_v1(s, 8, "big", "t8", [0])
            check(got[0][:2] == (8, "m" * 4096), "4096-byte metadata lost: %r" % (got[0][0],))
            s.close()
        check(b.alive(), "broker died")
    finally:
        b.cleanup()


def t_offsets_log():
    """Item 14: .broker/offsets is a log of commits, appended (not rewritten
    whole) per commit and compacted when it outgrows the live set; a torn
    record at its tail (a crash during an append) is ignored on load; files
    of older versions are still read."""
    b = Broker(TSPLUGIN).start()
    try:
        create_topic(b, "t14", parts=20)
        path = os.path.join(b.root, "data", ".broker", "offsets")
        s = connect(b)
        parts = [(p, 100 + p, "") for p in range(20)]
        check(set(offset_commit_v2(s, 1, "g14", [("t14", parts)]).values()) == {0}, "commit")
        # Held open: a file replaced by rename is then unlinked (nlink 0),
        # and its inode number cannot be reused by the replacement.
        fd = os.open(path, os.O_RDONLY)
        sizes = []
        for i in range(200):
            res = offset_commit_v2(s, 2 + i, "g14", [("t14", [(i % 20, 1000 + i, "")])])
            check(res == {("t14", i % 20): 0}, "commit %d: %r" % (i, res))
            sizes.append(os.path.getsize(path))
        check(os.fstat(fd).st_nlink == 1 and os.path.samestat(os.fstat(fd), os.stat(path)),
              "200 one-partition commits replaced the whole file (expected appends)")
        # Past 4x the live set (+1024 records) the log is compacted.
        for i in range(1200):
            offset_commit_v2(s, 300 + i, "g14", [("t14", [(i % 20, 5000 + i, "")])])
            sizes.append(os.path.getsize(path))
        size_after = os.path.getsize(path)
        print("offsets file: %d bytes after 21 live offsets and %d commits (max seen %d)"
              % (size_after, 1401, max(sizes + [size_after])))
        check(os.fstat(fd).st_nlink == 0, "the log was never compacted")
        os.close(fd)
        check(size_after < 1300 * 120, "offsets file grew to %d bytes" % size_after)
        last = {p: 5000 + i for i in range(1200) for p in [i % 20]}
        want = 123456
        res = offset_commit_v2(s, 2000, "g14", [("t14", [(3, want, "")])])
        check(res == {("t14", 3): 0}, "last commit %r" % res)
        last[3] = want
        s.close()
        b.stop(signal.SIGKILL)
        # A crash in the middle of an append: the last record's first bytes,
        # cut inside its offset digits, without the rest.
        with open(path, "rb") as f:
            data = f.read()
        line = [x for x in data.split(b"\n") if b"%d" % want in x][-1]
        torn = line[:line.index(b"%d" % want) + 4]  # "...1234" of 123456
        with open(path, "ab") as f:
            f.write(torn)
        b.start()
        s = connect(b)
        got = offset_fetch_v1(s, 1, "g14", "t14", list(range(20)))
        bad = {p: got[p][0] for p in range(20) if got[p][0] != last[p]}
        check(not bad, "after a torn tail: wrong offsets %r" % bad)
        # ...and a commit after it is durable too (the torn bytes are gone).
        offset_commit_v2(s, 2, "g14", [("t14", [(4, 777, "")])])
        s.close()
        b.stop(signal.SIGKILL)
        b.start()
        s = connect(b)
        got = offset_fetch_v1(s, 3, "g14", "t14", [3, 4])
        check(got[3][0] == want and got[4][0] == 777, "after the next restart: %r" % got)
        s.close()
        # A file of the older format.
        b.stop()
        with open(path, "w") as f:
            f.write("%s\tt14\t0\t42\t%s\n" % ("legacy".encode().hex(), "md".encode().hex()))
        b.start()
        s = connect(b)
        got = offset_fetch_v1(s, 4, "legacy", "t14", [0])
        check(got[0][:2] == (42, "md"), "older offsets file not read: %r" % got)
        s.close()
        # A save that fails answers an error and leaves the file as it was;
        # the next one that succeeds writes everything.
        b.stop()
        os.mkdir(path + ".tmp")  # the rewrite's temp file cannot be created
        with open(path, "rb") as f:
            before = f.read()
        b.start()
        s = connect(b)
        res = offset_commit_v2(s, 5, "legacy", [("t14", [(1, 43, "")])])
        check(res == {("t14", 1): 15}, "a failed save must answer COORDINATOR_NOT_AVAILABLE: %r"
              % res)
        with open(path, "rb") as f:
            check(f.read() == before, "a failed save changed the offsets file")
        os.rmdir(path + ".tmp")
        res = offset_commit_v2(s, 6, "legacy", [("t14", [(2, 44, "")])])
        check(res == {("t14", 2): 0}, "commit after the failure: %r" % res)
        s.close()
        b.stop(signal.SIGKILL)
        b.start()
        s = connect(b)
        got = offset_fetch_v1(s, 7, "legacy", "t14", [0, 2])
        check(got[0][0] == 42 and got[2][0] == 44, "after the failure and a restart: %r" % got)
        s.close()
        check(b.alive(), "broker died")
    finally:
        b.cleanup()


def t_pending_members():
    """Item 9: JoinGroups that only got MEMBER_ID_REQUIRED counted as members,
    so three raw ones forced three revoke/assign cycles on a stable consumer.
    They stay pending (KIP-394), expire silently, and become members only
    when they rejoin with their id."""
    b = Broker(MEMPLUGIN).start()
    try:
        create_topic(b, "t9", parts=2)
        events = []
        c = ck.Consumer({"bootstrap.servers": b.bootstrap, "group.id": "g9",
                         "session.timeout.ms": 6000, "heartbeat.interval.ms": 500})
        c.subscribe(["t9"], on_assign=lambda _c, ps: events.append("assign"),
                    on_revoke=lambda _c, ps: events.append("revoke"))
        deadline = time.time() + 30
        while time.time() < deadline and "assign" not in events:
            c.poll(0.2)
        check(events == ["assign"], "consumer never got stable: %r" % events)
        s = connect(b)
        ids = []
        for i in range(3):
            err, _gen, _leader, mid = join_group_v4(s, 10 + i, "g9", "", session_ms=1500)
            check(err == 79 and mid, "JoinGroup without id: error %d id %r, want 79" % (err, mid))
            ids.append(mid)
        # Past their session timeout (and a few heartbeats of the consumer).
        end = time.time() + 6
        while time.time() < end:
            c.poll(0.2)
        print("revoke/assign events on the stable consumer: %r" % events)
        check(events == ["assign"], "pending JoinGroups disturbed the group: %r" % events)
        # An expired pending id is unknown.
        err, _, _, _ = join_group_v4(s, 20, "g9", ids[0], session_ms=1500)
        check(err == 25, "expired pending id: error %d, want UNKNOWN_MEMBER_ID 25" % err)
        c.close()
        # In another group: the pending id joins when it comes back with it.
        err, _, _, mid = join_group_v4(s, 21, "g9b", "")
        check(err == 79, "JoinGroup without id: %d" % err)
        err, gen, leader, mid2 = join_group_v4(s, 22, "g9b", mid)
        check(err == 0 and mid2 == mid and leader == mid and gen >= 1,
              "rejoin with the pending id: error %d gen %d leader %r id %r" % (err, gen, leader,
                                                                              mid2))
        s.close()
        check(b.alive(), "broker died")
    finally:
        b.cleanup()


CLOCK_SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <time.h>
/* CLOCK_REALTIME frozen at $TS_TEST_FROZEN_REALTIME_MS (a moment in the
 * future, so realtime-based timed waits sleep rather than spin). */
int clock_gettime(clockid_t c, struct timespec *ts)
{
    static int (*real)(clockid_t, struct timespec *);
    if (!real) real = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
    const char *f = getenv("TS_TEST_FROZEN_REALTIME_MS");
    if (c != CLOCK_REALTIME || !f) return real(c, ts);
    long long ms = atoll(f);
    ts->tv_sec = ms / 1000;
    ts->tv_nsec = (ms % 1000) * 1000000;
    return 0;
}
"""


def build_clock_shim(root):
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        return None
    src = os.path.join(root, "clockshim.c")
    so = os.path.join(root, "clockshim.so")
    with open(src, "w") as f:
        f.write(CLOCK_SHIM)
    r = subprocess.run([cc, "-shared", "-fPIC", "-o", so, src, "-ldl"], capture_output=True)
    return so if r.returncode == 0 else None


def sanitizer_runtimes():
    """A sanitizer runtime must come first in LD_PRELOAD (ASan checks)."""
    try:
        out = subprocess.run(["ldd", BROKER], capture_output=True, text=True).stdout
    except OSError:
        return []
    libs = []
    for ln in out.splitlines():
        parts = ln.split()
        if len(parts) >= 3 and parts[1] == "=>" and any(
                n in parts[0] for n in ("libasan", "libtsan", "libubsan")):
            libs.append(parts[2])
    return libs


def t_producer_ids():
    """Item 10: producer ids came from the wall clock, so after a clock step
    (here: the same frozen clock on both runs) a restart handed out the same
    id again, and the new producer's first batch was dropped as a duplicate
    of the old one's. Ids now come from a durable counter."""
    b = Broker(TSPLUGIN)
    shim = build_clock_shim(b.root)
    saved = {k: os.environ.get(k) for k in ("LD_PRELOAD", "TS_TEST_FROZEN_REALTIME_MS")}
    try:
        if shim:
            os.environ["LD_PRELOAD"] = ":".join(sanitizer_runtimes() + [shim])
            os.environ["TS_TEST_FROZEN_REALTIME_MS"] = str(int(time.time() * 1000) + 86400000)
        else:
            print("no C compiler: the clock is not frozen (the counter is still checked)")
        b.start()
        create_topic(b, "t10")
        s = connect(b)
        err, pid_a, epoch = init_producer_id_v1(s, 1)
        check(err == 0 and pid_a >= 0 and epoch == 0, "InitProducerId: %r" % ((err, pid_a),))
        seen = {pid_a}
        for i in range(5):
            err, p, _ = init_producer_id_v1(s, 2 + i)
            check(err == 0 and p not in seen, "id %d handed out twice" % p)
            seen.add(p)
        _, err, base = produce_v7(s, 10, "t10", record_batch(pid_a, 0, 0, b"first"))
        check(err == 0 and base == 0, "first producer's batch: err %d base %d" % (err, base))
        s.close()
        for sig in (signal.SIGTERM, signal.SIGKILL):
            b.stop(sig)
            b.start()
            s = connect(b)
            err, pid_b, _ = init_producer_id_v1(s, 1)
            check(err == 0 and pid_b not in seen,
                  "after a restart (%s) with the same clock, producer id %d was handed out "
                  "again" % (sig.name, pid_b))
            check(pid_b > max(seen), "ids go backwards: %d after %d" % (pid_b, max(seen)))
            seen.add(pid_b)
            hw = high_watermark(b, "t10")
            _, err, base = produce_v7(s, 2, "t10", record_batch(pid_b, 0, 0, b"next"))
            check(err == 0 and base == hw,
                  "the new producer's first batch: err %d base %d, want appended at %d"
                  % (err, base, hw))
            s.close()
        counter = os.path.join(b.root, "data", ".broker", "producer-ids")
        with open(counter) as f:
            reserved = int(f.read())
        check(reserved > max(seen), "reserved %d not above every id handed out" % reserved)
        check(high_watermark(b, "t10") == 3, "log end %d, want 3" % high_watermark(b, "t10"))
        check(b.alive(), "broker died")
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        b.cleanup()


def t_sequence_wrap_mem():
    """Item 10: `base_seq + last_delta` was signed overflow; Kafka wraps
    sequence numbers at INT32_MAX to 0. A batch crossing the wrap is
    followed by the next sequence; its retry is still a duplicate."""
    b = Broker(MEMPLUGIN).start()
    try:
        create_topic(b, "wrap")
        s = connect(b)
        pid = 5150
        top = 2 ** 31 - 1
        _, err, base = produce_v7(s, 1, "wrap", record_batch_n(pid, 0, top - 1, [b"a", b"b", b"c"]))
        check(err == 0 and base == 0, "batch across the wrap: err %d base %d" % (err, base))
        _, err, base = produce_v7(s, 2, "wrap", record_batch_n(pid, 0, top - 1, [b"a", b"b", b"c"]))
        check(err == 0 and base == 0, "its retry: err %d base %d, want the original 0" % (err, base))
        _, err, base = produce_v7(s, 3, "wrap", record_batch_n(pid, 0, 1, [b"d"]))
        check(err == 0 and base == 3,
              "sequence 1 after MAX-1..0 (wrapped): err %d base %d, want appended at 3" % (err, base))
        _, err, _ = produce_v7(s, 4, "wrap", record_batch_n(pid, 0, 5, [b"x"]))
        check(err == 45, "a gap still gives OUT_OF_ORDER_SEQUENCE_NUMBER, got %d" % err)
        s.close()
        check(high_watermark(b, "wrap") == 4, "log end %d, want 4" % high_watermark(b, "wrap"))
    finally:
        b.cleanup()


def start_fails(extra, plugin=None):
    """Runs the broker with these properties; -> (exit code, output)."""
    b = Broker(plugin or MEMPLUGIN, extra)
    try:
        b.write_props()
        os.makedirs(os.path.join(b.root, "data"), exist_ok=True)
        try:
            r = subprocess.run([BROKER, b.props], capture_output=True, timeout=15)
        except subprocess.TimeoutExpired:
            return None, "still running after 15 s"
        return r.returncode, (r.stdout + r.stderr).decode(errors="replace")
    finally:
        shutil.rmtree(b.root, ignore_errors=True)


def t_listener_security_mem():
    """Item 11: listeners=SASL_SSL://... started and served plaintext.
    A secure listener without what it needs (a keystore for SSL, a
    supported sasl.enabled.mechanisms for SASL_*: Kafka's default is GSSAPI)
    refuses to start, naming the setting; a custom listener name
    mapped to PLAINTEXT works. (TLS itself: test_security_tls.py.)"""
    for scheme in ("SASL_SSL", "SSL", "SASL_PLAINTEXT"):
        port = socket.socket()
        port.bind(("127.0.0.1", 0))
        p = port.getsockname()[1]
        port.close()
        rc, out = start_fails({"listeners": "%s://127.0.0.1:%d" % (scheme, p)})
        check(rc not in (None, 0), "listeners=%s:// started (%s)" % (scheme, out[-300:]))
        check("listeners" in out and scheme in out,
              "the error must name listeners and %s: %r" % (scheme, out[-400:]))
    rc, out = start_fails({"listeners": "INTERNAL://127.0.0.1:1",
                           "listener.security.protocol.map": "INTERNAL:SSL"})
    check(rc not in (None, 0) and "SSL" in out, "INTERNAL mapped to SSL started: %r" % out[-300:])
    rc, out = start_fails({"listeners": "OTHER://127.0.0.1:1"})
    check(rc not in (None, 0) and "listener.security.protocol.map" in out,
          "an unmapped listener name must fail naming the map: %r" % out[-300:])
    # A custom name that maps to PLAINTEXT serves.
    b = Broker(MEMPLUGIN)
    b.extra = {"listeners": "INTERNAL://127.0.0.1:%d" % b.port,
               "listener.security.protocol.map": "INTERNAL:PLAINTEXT,EXTERNAL:SSL"}
    try:
        b.start()
        rc, _, err = kcat(["-L", "-b", b.bootstrap, "-m", "10"])
        check(rc == 0, "kcat -L on the INTERNAL listener: %s" % err)
    finally:
        b.cleanup()


def t_topic_configs():
    """Item 12: CreateTopics accepted any log.* key (log.dirs=/etc was
    persisted), and a topic name over ~222 chars could not hold configs.
    Only topic-level keys are accepted (INVALID_CONFIG naming the key); a
    249-char topic keeps its configs across a restart."""
    b = Broker(TSPLUGIN).start()
    try:
        a = AdminClient({"bootstrap.servers": b.bootstrap})
        for key, val in (("log.dirs", "/etc"), ("log.segment.bytes", "4096"),
                         ("message.max.bytes", "10")):
            fs = a.create_topics([NewTopic("t12bad", 1, 1, config={key: val})])
            try:
                fs["t12bad"].result(15)
                raise Fail("CreateTopics accepted %s=%s" % (key, val))
            except ck.KafkaException as e:
                ke = e.args[0]
                check(ke.code() == ck.KafkaError.INVALID_CONFIG,
                      "%s: error %s, want INVALID_CONFIG" % (key, ke))
                check(key in ke.str(), "the error must name %s: %r" % (key, ke.str()))
        check("t12bad" not in a.list_topics(timeout=10).topics, "refused topic exists")
        for root, _dirs, files in os.walk(os.path.join(b.root, "data")):
            for fn in files:
                if fn.endswith(".properties"):
                    with open(os.path.join(root, fn)) as f:
                        check("/etc" not in f.read(), "log.dirs=/etc persisted in %s" % fn)
        long_name = "L" * 249
        create_topic(b, long_name, parts=2, config={"retention.ms": "123456789",
                                                     "segment.bytes": "1048576"})
        b.stop()
        b.start()
        a = AdminClient({"bootstrap.servers": b.bootstrap})
        md = a.list_topics(timeout=10)
        check(long_name in md.topics and len(md.topics[long_name].partitions) == 2,
              "249-char topic lost across a restart")
        cfg = os.path.join(b.root, "data", ".topics", long_name, "topic.properties")
        with open(cfg) as f:
            text = f.read()
        check("log.retention.ms=123456789" in text and "log.segment.bytes=1048576" in text,
              "249-char topic's configs after restart: %r" % text)
        p = ck.Producer({"bootstrap.servers": b.bootstrap})
        p.produce(long_name, b"v", partition=1)
        check(p.flush(15) == 0, "produce to the 249-char topic")
        check(b.alive(), "broker died")
    finally:
        b.cleanup()


TESTS = {
    "offsets_injection": (t_offsets_injection, ["TSPLUGIN"]),
    "offsets_log": (t_offsets_log, ["TSPLUGIN"]),
    "pending_members_mem": (t_pending_members, ["MEMPLUGIN"]),
    "producer_ids": (t_producer_ids, ["TSPLUGIN"]),
    "sequence_wrap_mem": (t_sequence_wrap_mem, ["MEMPLUGIN"]),
    "listener_security_mem": (t_listener_security_mem, ["MEMPLUGIN"]),
    "topic_configs": (t_topic_configs, ["TSPLUGIN"]),
}


if __name__ == "__main__":
    run(TESTS)
