#!/usr/bin/python3
"""test_fetch_sendfile.py — zero-copy hot fetches (issue 13 item 3): consumers'
hot Fetch data leaves the segment files with sendfile (plaintext) or pread
into TLS, through the output queue's file-range parts (broker/out.c).

Run by ctest as `test_fetch_sendfile.py NAME` (label `broker`), like
test_broker.py, with TIERBROKER and TSPLUGIN set (the engine plugin: the
in-memory one has no read_file and takes the copy path).

  sendfile_clients   kcat and confluent-kafka read back exactly what was
                     produced, 12 partitions, large fetch sizes (and a bad
                     fetch.zero.copy.enable value is refused at startup)
  sendfile_slow_retention
                     a reader with a tiny receive buffer that pauses: the
                     broker holds the segment's fd while the response is
                     queued (seen in /proc/<pid>/fd), DeleteRecords removes
                     the segment meanwhile (the file is unlinked), and the
                     response still decodes to exactly the produced records
  sendfile_short_file
                     the segment file is cut behind the broker's back while a
                     response is queued: the connection is closed with a log
                     line, the client never gets bytes that are not the file's
  sendfile_tls       an SSL listener (the range is pread into the TLS session)
                     and a plaintext one serve the same bytes
No timing is asserted.
"""
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from test_broker import (Broker, Fail, check, kcat, raw_request, raw_response,  # noqa: E402
                         run, TSPLUGIN)

import confluent_kafka as ck  # noqa: E402

MiB = 1024 * 1024


def produce_lines(b, topic, lines, partition=None, props=None):
    args = ["-P", "-b", b.bootstrap, "-t", topic, "-X", "acks=all", "-X", "batch.size=1000000",
            "-X", "linger.ms=20", "-z", "none"]
    if partition is not None:
        args += ["-p", str(partition)]
    for k, v in (props or {}).items():
        args += ["-X", "%s=%s" % (k, v)]
    rc, _, err = kcat(args, inp=b"\n".join(lines) + b"\n", timeout=180)
    check(rc == 0, "kcat -P failed: %s" % err.decode(errors="replace")[-400:])


def create_topic(b, topic, partitions, props=None):
    from confluent_kafka.admin import AdminClient, NewTopic
    conf = {"bootstrap.servers": b.bootstrap}
    conf.update(props or {})
    a = AdminClient(conf)
    a.create_topics([NewTopic(topic, partitions, 1)])[topic].result(30)


def uvarint(buf, pos):
    shift = v = 0
    while True:
        c = buf[pos]
        pos += 1
        v |= (c & 0x7F) << shift
        if not c & 0x80:
            return v, pos
        shift += 7


def varint(buf, pos):
    u, pos = uvarint(buf, pos)
    return (u >> 1) ^ -(u & 1), pos


def decode_batches(data):
    """[(offset, value)] of uncompressed v2 batches back to back; raises Fail
    on anything that does not parse (a wrong byte shows here)."""
    out = []
    pos = 0
    while pos < len(data):
        check(len(data) - pos >= 61, "a partial batch header at %d of %d" % (pos, len(data)))
        base, blen = struct.unpack_from(">qi", data, pos)
        end = pos + 12 + blen
        check(end <= len(data), "a partial batch at %d (length %d of %d left)"
              % (pos, blen, len(data) - pos))
        magic = data[pos + 16]
        check(magic == 2, "magic %d at %d" % (magic, pos))
        attrs, last_delta = struct.unpack_from(">hi", data, pos + 21)
        check(attrs & 7 == 0, "compressed batch at %d (the test produces none)" % pos)
        (count,) = struct.unpack_from(">i", data, pos + 57)
        check(count == last_delta + 1, "batch at %d: %d records, last delta %d"
              % (pos, count, last_delta))
        r = pos + 61
        for _ in range(count):
            ln, r = varint(data, r)
            rend = r + ln
            r += 1  # attributes
            _, r = varint(data, r)  # timestamp delta
            od, r = varint(data, r)
            kl, r = varint(data, r)
            r += max(kl, 0)
            vl, r = varint(data, r)
            out.append((base + od, bytes(data[r:r + vl])))
            r = rend
        check(r == end, "records of the batch at %d end at %d, the batch at %d" % (pos, r, end))
        pos = end
    return out


def fetch_v4(corr, topic, partition, offset, max_bytes, part_max):
    body = struct.pack(">iiiib", -1, 0, 0, max_bytes, 0)
    body += struct.pack(">ih", 1, len(topic)) + topic.encode() + struct.pack(">i", 1)
    body += struct.pack(">iqi", partition, offset, part_max)
    hdr = struct.pack(">hhih", 1, 4, corr, 4) + b"test"
    return struct.pack(">i", len(hdr) + len(body)) + hdr + body


def fetch_v4_records(resp):
    """(error, records) of the one partition of a Fetch v4 response (no size
    prefix)."""
    pos = 4 + 4 + 4  # correlation id, throttle, topics
    (tl,) = struct.unpack_from(">h", resp, pos)
    pos += 2 + tl + 4
    _idx, err, _hwm, _lso, nab = struct.unpack_from(">ihqqi", resp, pos)
    pos += 4 + 2 + 8 + 8 + 4 + max(nab, 0) * 16
    (rl,) = struct.unpack_from(">i", resp, pos)
    pos += 4
    return err, resp[pos:pos + max(rl, 0)]


def delete_records(port, topic, partition, offset):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    try:
        body = struct.pack(">ih", 1, len(topic)) + topic.encode()
        body += struct.pack(">iiq", 1, partition, offset) + struct.pack(">i", 20000)
        raw_request(s, 21, 0, 5, body)
        r = raw_response(s)
        check(r is not None, "no DeleteRecords answer")
        pos = 4 + 4 + 4
        (tl,) = struct.unpack_from(">h", r, pos)
        pos += 2 + tl + 4
        _p, low, err = struct.unpack_from(">iqh", r, pos)
        check(err == 0 and low == offset, "DeleteRecords: error %d, low watermark %d" % (err, low))
    finally:
        s.close()


def segment_fds(pid, topic):
    """Targets of the broker's fds that are segment files of topic-0."""
    out = []
    d = "/proc/%d/fd" % pid
    for fd in os.listdir(d):
        try:
            t = os.readlink(os.path.join(d, fd))
        except OSError:
            continue
        if "/%s-0/" % topic in t and ".log" in t:
            out.append(t)
    return out


def segment_files(b, topic):
    d = os.path.join(b.root, "data", "%s-0" % topic)
    return sorted(f for f in os.listdir(d) if f.endswith(".log"))


def paused_reader(b, topic, part_max):
    """A connection with a tiny receive buffer that sends one Fetch from 0
    and reads nothing yet; returns it once the broker holds a second fd of a
    segment file (the engine keeps one per segment; the queued response's
    range is a duplicate), or raises."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", b.port))
    s.settimeout(60)
    s.sendall(fetch_v4(7, topic, 0, 0, part_max, part_max))
    deadline = time.time() + 20
    while time.time() < deadline:
        held = segment_fds(b.proc.pid, topic)
        if any(held.count(t) >= 2 for t in held):
            return s
        time.sleep(0.05)
    s.close()
    raise Fail("the broker holds no segment fd while a response is queued (no sendfile?)")


def t_sendfile_clients():
    bad = Broker(TSPLUGIN, {"fetch.zero.copy.enable": "maybe"})
    try:
        bad.start()
        raise Fail("fetch.zero.copy.enable=maybe was accepted")
    except Fail as e:
        check("fetch.zero.copy.enable=maybe: not a valid value (expected true|false)" in str(e),
              "the refusal does not name the key and its values: %s" % e)
    finally:
        bad.cleanup()
    b = Broker(TSPLUGIN, {"num.partitions": "12"}).start()
    try:
        create_topic(b, "zc", 12)
        want = {}
        for p in range(12):
            lines = [b"p%02d-%06d-" % (p, i) + b"v" * (i % 300) for i in range(3000)]
            produce_lines(b, "zc", lines, partition=p)
            want[p] = lines
        c = ck.Consumer({"bootstrap.servers": b.bootstrap, "group.id": "zc-reader",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False,
                         "fetch.max.bytes": 50 * MiB, "max.partition.fetch.bytes": 8 * MiB,
                         "fetch.wait.max.ms": 100})
        c.subscribe(["zc"])
        got = {p: [] for p in range(12)}
        deadline = time.time() + 90
        total = sum(len(v) for v in want.values())
        n = 0
        while n < total and time.time() < deadline:
            for m in c.consume(5000, 1.0):
                check(m.error() is None, "consumer: %s" % m.error())
                check(m.offset() == len(got[m.partition()]), "partition %d: offset %d after %d"
                      % (m.partition(), m.offset(), len(got[m.partition()])))
                got[m.partition()].append(m.value())
                n += 1
        c.close()
        for p in range(12):
            check(got[p] == want[p], "partition %d: read %d records, produced %d (first "
                  "difference at %s)" % (p, len(got[p]), len(want[p]),
                                         next((i for i, (x, y) in enumerate(zip(got[p], want[p]))
                                               if x != y), "the end")))
        for p in (0, 11):
            rc, out, err = kcat(["-C", "-b", b.bootstrap, "-t", "zc", "-p", str(p), "-o",
                                 "beginning", "-e", "-q", "-X", "fetch.max.bytes=52428800",
                                 "-X", "max.partition.fetch.bytes=16777216"])
            check(rc == 0, "kcat -C: %s" % err.decode(errors="replace")[-300:])
            check(out.split(b"\n")[:-1] == want[p], "kcat -C partition %d differs" % p)
        check("rather than send other bytes" not in b.log(), "a range went short:\n" + b.log())
    finally:
        b.cleanup()


# No remote tier: the uploader would hold fds of the segment files too, and
# the test tells the queued range by its second fd of a file.
SLOW = {"log.segment.bytes": str(9 * MiB), "log.retention.ms": "-1", "remote.storage.enable": "false",
        "fetch.max.bytes": str(64 * MiB)}


def slow_setup(b, topic):
    """~22 MB in segments of 9 MiB; returns the produced lines."""
    create_topic(b, topic, 1)
    lines = [b"%08d-" % i + b"r" * 1000 for i in range(22000)]
    produce_lines(b, topic, lines, partition=0)
    check(len(segment_files(b, topic)) >= 3, "expected 3 segments, have %r"
          % segment_files(b, topic))
    return lines


def t_sendfile_slow_retention():
    b = Broker(TSPLUGIN, SLOW).start()
    try:
        lines = slow_setup(b, "slow")
        first = segment_files(b, "slow")[0]
        s = paused_reader(b, "slow", 9 * MiB)
        try:
            # The queued response's segment goes: DeleteRecords past it.
            second_base = int(segment_files(b, "slow")[1][:-4])
            delete_records(b.port, "slow", 0, second_base)
            deadline = time.time() + 20
            while first in segment_files(b, "slow") and time.time() < deadline:
                time.sleep(0.05)
            check(first not in segment_files(b, "slow"), "DeleteRecords left %s" % first)
            held = segment_fds(b.proc.pid, "slow")
            check(any(first in t and "(deleted)" in t for t in held),
                  "the queued range's file should be held, unlinked: %r" % held)
            # Now read, slowly at first (partial sends resume on EPOLLOUT).
            buf = b""
            for _ in range(50):
                buf += s.recv(1000)
                time.sleep(0.002)
            while len(buf) < 4 or len(buf) < 4 + struct.unpack_from(">i", buf)[0]:
                chunk = s.recv(1 << 20)
                check(chunk, "the broker closed the connection after %d bytes" % len(buf))
                buf += chunk
        finally:
            s.close()
        (size,) = struct.unpack_from(">i", buf)
        check(len(buf) == 4 + size, "%d bytes after a %d-byte frame" % (len(buf), size))
        err, recs = fetch_v4_records(buf[4:])
        check(err == 0, "Fetch error %d" % err)
        check(len(recs) > 7 * MiB, "only %d bytes of records" % len(recs))
        got = decode_batches(recs)
        check([o for o, _ in got] == list(range(len(got))), "offsets are not 0, 1, 2, ...")
        check([v for _, v in got] == lines[:len(got)], "values differ from the produced ones")
        # The fd went with the response; reads below the new start are refused.
        deadline = time.time() + 10
        while (any("(deleted)" in t for t in segment_fds(b.proc.pid, "slow"))
               and time.time() < deadline):
            time.sleep(0.05)
        check(not any("(deleted)" in t for t in segment_fds(b.proc.pid, "slow")),
              "the unlinked segment is still held after the response")
        s2 = socket.create_connection(("127.0.0.1", b.port), timeout=30)
        s2.sendall(fetch_v4(8, "slow", 0, 0, MiB, MiB))
        err, _ = fetch_v4_records(raw_response(s2))
        s2.close()
        check(err == 1, "a Fetch below the new log start: error %d, want 1" % err)
    finally:
        b.cleanup()


def t_sendfile_short_file():
    b = Broker(TSPLUGIN, SLOW).start()
    try:
        slow_setup(b, "short")
        first = segment_files(b, "short")[0]
        path = os.path.join(b.root, "data", "short-0", first)
        with open(path, "rb") as f:
            disk = f.read()
        s = paused_reader(b, "short", 9 * MiB)
        try:
            os.truncate(path, 2 * MiB)  # behind the broker's back (9 MiB queued)
            buf = b""
            while len(buf) < 4 or len(buf) < 4 + struct.unpack_from(">i", buf)[0]:
                try:
                    chunk = s.recv(1 << 20)
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                buf += chunk
        finally:
            s.close()
        (size,) = struct.unpack_from(">i", buf)
        check(len(buf) < 4 + size, "a whole %d-byte frame arrived from a cut file" % size)
        deadline = time.time() + 10
        while "rather than send other bytes" not in b.log() and time.time() < deadline:
            time.sleep(0.1)
        check("rather than send other bytes" in b.log(), "no log line:\n" + b.log())
        # What did arrive is the file's own bytes (some were already in the
        # socket before the cut): a prefix of the segment as it was.
        pos = 4 + 4 + 4 + 4  # size, correlation id, throttle, topics
        (tl,) = struct.unpack_from(">h", buf, pos)
        pos += 2 + tl + 4 + 4 + 2 + 8 + 8 + 4 + 4
        recs = buf[pos:]
        diff = next((i for i in range(min(len(recs), len(disk))) if recs[i] != disk[i]), None)
        check(len(recs) <= len(disk) and diff is None,
              "the bytes sent are not the segment file's: %d bytes sent, %d on disk, first "
              "difference at %s" % (len(recs), len(disk), diff))
        check(b.alive(), "the broker died")
        rc, _, err = kcat(["-L", "-b", b.bootstrap, "-m", "10"])
        check(rc == 0, "the broker does not serve other connections: %s" % err)
    finally:
        b.cleanup()


def t_sendfile_tls():
    from test_security_tls import temp_pki, tls_broker, ssl_props
    with temp_pki() as (_root, pki):
        b = tls_broker(pki)
        b.plugin = TSPLUGIN
        b.start()
        try:
            create_topic(b, "tz", 3)
            lines = [b"tls-%06d-" % i + b"t" * (i % 700) for i in range(10000)]
            produce_lines(b, "tz", lines, partition=1)
            tls_conf = {"bootstrap.servers": "127.0.0.1:%d" % b.tls_port}
            tls_conf.update(ssl_props(pki))
            for name, conf in (("ssl", tls_conf), ("plaintext", {"bootstrap.servers": b.bootstrap})):
                cfg = {"group.id": "tz-%s" % name, "auto.offset.reset": "earliest",
                       "enable.auto.commit": False, "fetch.max.bytes": 50 * MiB,
                       "max.partition.fetch.bytes": 8 * MiB}
                cfg.update(conf)
                c = ck.Consumer(cfg)
                c.subscribe(["tz"])
                got = []
                deadline = time.time() + 60
                while len(got) < len(lines) and time.time() < deadline:
                    for m in c.consume(5000, 1.0):
                        check(m.error() is None, "%s consumer: %s" % (name, m.error()))
                        got.append(m.value())
                c.close()
                check(got == lines, "%s: read %d records, produced %d" % (name, len(got), len(lines)))
        finally:
            b.cleanup()


TESTS = {
    "sendfile_clients": (t_sendfile_clients, ["TSPLUGIN"]),
    "sendfile_slow_retention": (t_sendfile_slow_retention, ["TSPLUGIN"]),
    "sendfile_short_file": (t_sendfile_short_file, ["TSPLUGIN"]),
    "sendfile_tls": (t_sendfile_tls, ["TSPLUGIN"]),
}

if __name__ == "__main__":
    run(TESTS)
