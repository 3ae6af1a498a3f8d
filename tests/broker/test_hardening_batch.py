#!/usr/bin/python3
"""test_hardening_batch.py — issue 7 item 2: record batch contents are validated.

Raw Produce requests carry each malformed batch that the broker used to
append (truncated and garbage records, control and transactional bits,
codec 7, "gzip" that is not gzip, two batches in one partition entry,
recordsCount 2^31-1 with no records, a gzip bomb); each must be answered with
Kafka's error code (and RecordErrors / ErrorMessage on v8) and leave the log
end offset where it was. Then kcat and confluent-kafka produce and consume
with every compression.type.

Run by ctest as `test_hardening_batch.py NAME` (label `broker`), environment
as for test_broker.py.
"""
import os
import struct
import socket
import sys
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_broker import (  # noqa: E402
    TSPLUGIN, Broker, check, ck, crc32c, kcat, raw_request, raw_response, run, zz)
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

CORRUPT_MESSAGE = 2
MESSAGE_TOO_LARGE = 10
TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53
UNSUPPORTED_COMPRESSION_TYPE = 76
INVALID_RECORD = 87


def record(i, value, key=None):
    body = b"\x00" + zz(i) + zz(i)
    body += zz(-1) if key is None else zz(len(key)) + key
    body += zz(len(value)) + value + zz(0)
    return zz(len(body)) + body


def batch(payload, count, attrs=0, pid=-1, seq=-1, ts=1_700_000_000_000):
    """A record batch v2 around `payload` (records, compressed or not)."""
    after_crc = struct.pack(">hiqqqhii", attrs, count - 1, ts, ts, pid, -1 if pid < 0 else 0,
                            seq, count) + payload
    body = struct.pack(">i", 0) + struct.pack(">bI", 2, crc32c(after_crc)) + after_crc
    return struct.pack(">qi", 0, len(body)) + body


def records(n, tag=b"v"):
    return b"".join(record(i, b"%s-%d" % (tag, i)) for i in range(n))


def gzip_bytes(data):
    c = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return c.compress(data) + c.flush()


def gzip_bomb(mib):
    """One valid record whose value is `mib` MiB of zeros, gzip'd in 1 MiB steps."""
    vlen = mib << 20
    head = b"\x00" + zz(0) + zz(0) + zz(-1) + zz(vlen)
    head = zz(len(head) + vlen + 1) + head
    c = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    out = [c.compress(head)]
    zeros = bytes(1 << 20)
    for _ in range(mib):
        out.append(c.compress(zeros))
    out.append(c.compress(zz(0)))
    out.append(c.flush())
    return b"".join(out)


def produce(sock, corr, version, topic, records_bytes):
    """Produce v3..v8 (non-flexible) of one partition entry; returns
    (error, base_offset, record_errors, error_message)."""
    body = struct.pack(">hhi", -1, -1, 10000)  # null transactional id, acks=-1
    body += struct.pack(">ih", 1, len(topic)) + topic.encode()
    body += struct.pack(">ii", 1, 0) + struct.pack(">i", len(records_bytes)) + records_bytes
    raw_request(sock, 0, version, corr, body)
    r = raw_response(sock)
    check(r is not None, "connection closed on a Produce v%d" % version)
    (c,) = struct.unpack(">i", r[:4])
    check(c == corr, "correlation id %d, want %d" % (c, corr))
    pos = 8
    (tl,) = struct.unpack(">h", r[pos:pos + 2])
    pos += 2 + tl + 4
    _part, err, base = struct.unpack(">ihq", r[pos:pos + 14])
    pos += 14 + 8  # LogAppendTime
    if version >= 5:
        pos += 8  # LogStartOffset
    rec_errors, msg = [], None
    if version >= 8:
        (n,) = struct.unpack(">i", r[pos:pos + 4])
        pos += 4
        for _ in range(max(n, 0)):
            idx, ml = struct.unpack(">ih", r[pos:pos + 6])
            pos += 6
            m = None
            if ml >= 0:
                m = r[pos:pos + ml].decode()
                pos += ml
            rec_errors.append((idx, m))
        (ml,) = struct.unpack(">h", r[pos:pos + 2])
        pos += 2
        if ml >= 0:
            msg = r[pos:pos + ml].decode()
    return err, base, rec_errors, msg


def log_end(b, topic):
    c = ck.Consumer({"bootstrap.servers": b.bootstrap, "group.id": "x"})
    try:
        _lo, hi = c.get_watermark_offsets(ck.TopicPartition(topic, 0), timeout=10)
        return hi
    finally:
        c.close()


def consume(bootstrap, topic, n, timeout=60):
    c = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": "hb-" + topic,
                     "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.assign([ck.TopicPartition(topic, 0, 0)])
    got = []
    deadline = time.time() + timeout
    while len(got) < n and time.time() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        check(m.error() is None, "consume %s: %s" % (topic, m.error()))
        got.append(m.value())
    c.close()
    return got


def t_batch_refused():
    """Every malformed batch is refused with Kafka's code and appends nothing."""
    b = Broker(TSPLUGIN).start()
    try:
        a = AdminClient({"bootstrap.servers": b.bootstrap})
        a.create_topics([NewTopic("hb", 1, 1)])["hb"].result(10)
        s = socket.create_connection(("127.0.0.1", b.port))
        s.settimeout(30)
        corr = 1
        good = batch(records(3, b"good"), 3)
        err, base, _, _ = produce(s, corr, 8, "hb", good)
        check((err, base) == (0, 0), "valid batch: err %d base %d" % (err, base))
        expect_end = 3

        trunc = zz(10000) + b"\x00\x00\x00"
        junk = bytes((i * 97 + 13) & 0xFF for i in range(300))
        corrupt = bytearray(batch(records(2), 2))
        corrupt[-2] ^= 0x40  # under the CRC
        cases = [
            # name, partition entry bytes, Kafka error, record index in RecordErrors (or None)
            ("inner record of length 10000 with 3 bytes", batch(trunc, 1), INVALID_RECORD, 0),
            ("garbage records", batch(junk, 5), INVALID_RECORD, 0),
            ("offsetDelta not the record's index",
             batch(record(0, b"a") + record(5, b"b"), 2), INVALID_RECORD, 1),
            ("control batch from a client", batch(records(1), 1, attrs=0x20), INVALID_RECORD, None),
            ("transactional batch without transactions",
             batch(records(1), 1, attrs=0x10, pid=7, seq=0),
             TRANSACTIONAL_ID_AUTHORIZATION_FAILED, None),
            ("producer id with a negative sequence", batch(records(1), 1, pid=7, seq=-1),
             INVALID_RECORD, None),
            ("compression codec 7", batch(records(2), 2, attrs=7), INVALID_RECORD, None),
            ("\"gzip\" that is not gzip", batch(records(2), 2, attrs=1), INVALID_RECORD, None),
            ("two batches in one partition entry", good + good, INVALID_RECORD, None),
            ("recordsCount 2^31-1 with no records", batch(b"", 2**31 - 1), INVALID_RECORD, None),
            ("gzip of 200 MiB (bomb)", batch(gzip_bomb(200), 1, attrs=1), MESSAGE_TOO_LARGE, None),
            ("CRC mismatch", bytes(corrupt), CORRUPT_MESSAGE, None),
        ]
        for name, entry, want, rec_idx in cases:
            for version in (7, 8):
                corr += 1
                err, _base, rec_errors, msg = produce(s, corr, version, "hb", entry)
                check(err == want, "%s (v%d): error %d, want %d" % (name, version, err, want))
                if version >= 8:
                    check(msg, "%s: no ErrorMessage" % name)
                    if rec_idx is None:
                        check(rec_errors == [], "%s: RecordErrors %r" % (name, rec_errors))
                    else:
                        check(len(rec_errors) == 1 and rec_errors[0][0] == rec_idx
                              and rec_errors[0][1],
                              "%s: RecordErrors %r, want index %d" % (name, rec_errors, rec_idx))
                    print("  %-45s -> %d %s" % (name, err, msg))
            end = log_end(b, "hb")
            check(end == expect_end, "%s moved the log end to %d (want %d)" % (name, end, expect_end))
        # zstd needs Produce v7+ (Kafka: UNSUPPORTED_COMPRESSION_TYPE)
        corr += 1
        err, _, _, _ = produce(s, corr, 6, "hb", batch(records(1), 1, attrs=4))
        check(err == UNSUPPORTED_COMPRESSION_TYPE, "zstd on Produce v6: error %d" % err)
        # a real gzip batch and a batch with headers/keys are accepted after all that
        corr += 1
        err, base, _, _ = produce(s, corr, 8, "hb", batch(gzip_bytes(records(4, b"gz")), 4, attrs=1))
        check((err, base) == (0, 3), "gzip batch: err %d base %d" % (err, base))
        s.close()
        check(log_end(b, "hb") == 7, "log end %d, want 7" % log_end(b, "hb"))
        got = consume(b.bootstrap, "hb", 7)
        want = [b"good-%d" % i for i in range(3)] + [b"gz-%d" % i for i in range(4)]
        check(got == want, "consumed %r" % got)
        check(b.alive(), "broker died")
    finally:
        b.cleanup()


def t_batch_codecs():
    """kcat and confluent-kafka produce and consume with every compression.type."""
    b = Broker(TSPLUGIN).start()
    try:
        a = AdminClient({"bootstrap.servers": b.bootstrap})
        codecs = ["none", "gzip", "snappy", "lz4", "zstd"]
        fs = a.create_topics([NewTopic("kc-" + c, 1, 1) for c in codecs] +
                             [NewTopic("cc-" + c, 1, 1) for c in codecs])
        for f in fs.values():
            f.result(10)
        n = 2000
        for c in codecs:
            lines = b"".join(b"%s line %d %s\n" % (c.encode(), i, b"x" * (i % 50)) for i in range(n))
            rc, _out, errb = kcat(["-P", "-b", b.bootstrap, "-t", "kc-" + c, "-z", c,
                                   "-X", "linger.ms=50"], inp=lines)
            check(rc == 0, "kcat -z %s: rc %d %s" % (c, rc, errb[-400:]))
            rc, out, errb = kcat(["-C", "-b", b.bootstrap, "-t", "kc-" + c, "-o", "beginning",
                                  "-e", "-q"], timeout=60)
            check(rc == 0 and out == lines,
                  "kcat consume %s: rc %d, %d of %d bytes %s" % (c, rc, len(out), len(lines),
                                                                errb[-300:]))
            p = ck.Producer({"bootstrap.servers": b.bootstrap, "compression.type": c,
                             "linger.ms": 20, "enable.idempotence": True})
            errors = []
            for i in range(n):
                p.produce("cc-" + c, value=b"%s %d" % (c.encode(), i), key=b"k%d" % (i % 7),
                          headers=[("h", b"%d" % i)] if i % 3 == 0 else None,
                          on_delivery=lambda e, m: e and errors.append(e))
            p.flush(30)
            check(not errors, "confluent-kafka %s: %s" % (c, errors[:3]))
            got = consume(b.bootstrap, "cc-" + c, n)
            check(got == [b"%s %d" % (c.encode(), i) for i in range(n)],
                  "confluent-kafka %s: consumed %d of %d" % (c, len(got), n))
            print("  %-6s kcat %d lines, confluent-kafka %d messages: produced and consumed"
                  % (c, n, n))
        check(b.alive(), "broker died")
    finally:
        b.cleanup()


TESTS = {
    "batch_refused": (t_batch_refused, ["TSPLUGIN"]),
    "batch_codecs": (t_batch_codecs, ["TSPLUGIN"]),
}


if __name__ == "__main__":
    run(TESTS)
