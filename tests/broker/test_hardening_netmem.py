#!/usr/bin/python3
"""test_hardening_netmem.py — tierbroker's memory bounds and backpressure order
(issue 7, items 5 and 15).

Run by ctest as `test_hardening_netmem.py NAME` (label `broker`), like
test_broker.py, with TIERBROKER, TSPLUGIN and MEMPLUGIN set.

Memory bounds are asserted on the broker's own accounting of its resident
memory (VmHWM, the peak RSS, from /proc/<pid>/status): a resource bound, not
a timing. Each attack also checks that another connection is still served.
"""
import os
import socket
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from test_broker import (Broker, Fail, check, kcat, raw_request, raw_response,  # noqa: E402
                         record_batch, run, KCAT, MEMPLUGIN, TSPLUGIN)

MiB = 1024 * 1024


def _sanitizer_factor():
    """ASan (quarantine of freed blocks) and TSan (shadow memory) multiply a
    process's RSS; the bound scales with them so that the same attack is
    judged in the sanitizer phases too. Unbounded, the attacks grow the
    broker by 800+ MB natively, beyond any of these bounds."""
    try:
        out = subprocess.run(["ldd", os.environ.get("TIERBROKER", "")], capture_output=True,
                             timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return 1
    return 3 if (b"libtsan" in out or b"libasan" in out) else 1


RSS_BOUND = 200 * MiB * _sanitizer_factor()  # main reached 830-1770 MB natively


def proc_status_bytes(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise Fail("no %s in /proc/%d/status" % (field, pid))


def api_versions_ok(port, corr=99):
    """ApiVersions v0 on a new connection answers with error 0."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        raw_request(s, 18, 0, corr)
        r = raw_response(s)
        return r is not None and struct.unpack(">ih", r[:6]) == (corr, 0)
    finally:
        s.close()


def fetch_v4(corr, topic, partitions, max_bytes, part_max, max_wait=0, min_bytes=0):
    body = struct.pack(">iiiib", -1, max_wait, min_bytes, max_bytes, 0)
    body += struct.pack(">ih", 1, len(topic)) + topic.encode() + struct.pack(">i", len(partitions))
    for p in partitions:
        body += struct.pack(">iqi", p, 0, part_max)
    hdr = struct.pack(">hhih", 1, 4, corr, 4) + b"test"
    msg = hdr + body
    return struct.pack(">i", len(msg)) + msg


def fetch_v4_records(resp):
    """{partition: records bytes length} of a Fetch v4 response."""
    pos = 4 + 4  # correlation id, throttle
    (nt,) = struct.unpack_from(">i", resp, pos)
    pos += 4
    out = {}
    for _ in range(nt):
        (tl,) = struct.unpack_from(">h", resp, pos)
        pos += 2 + tl
        (np,) = struct.unpack_from(">i", resp, pos)
        pos += 4
        for _ in range(np):
            idx, err, _hwm, _lso, nab = struct.unpack_from(">ihqqi", resp, pos)
            pos += 4 + 2 + 8 + 8 + 4 + max(nab, 0) * 16
            (rl,) = struct.unpack_from(">i", resp, pos)
            pos += 4 + max(rl, 0)
            out[idx] = (err, max(rl, 0))
    return out


def fill_topic(b, topic, mbytes, partitions=1, batch_size=None):
    line = b"x" * 99
    n = mbytes * MiB // 100
    args = ["-P", "-b", b.bootstrap, "-t", topic, "-X", "acks=1"]
    if batch_size:
        args += ["-X", "batch.size=%d" % batch_size]
    if partitions > 1:
        args += ["-p", "-1"]
    rc, _, err = kcat(args, inp=b"\n".join([line] * n) + b"\n", timeout=120)
    check(rc == 0, "kcat -P failed: %s" % err)


def create_topic(b, topic, partitions=1, configs=None):
    from confluent_kafka.admin import AdminClient, NewTopic
    a = AdminClient({"bootstrap.servers": b.bootstrap})
    a.create_topics([NewTopic(topic, partitions, 1, config=configs or {})])[topic].result(20)


def t_fetch_flood_mem():
    """200 pipelined Fetch requests for ~4.5 MB each from a client that never
    reads: the broker stops reading that connection once its unsent responses
    reach queued.max.response.bytes, instead of building all 200 answers."""
    b = Broker(MEMPLUGIN).start()
    socks = []
    try:
        fill_topic(b, "flood", 5)
        base = proc_status_bytes(b.proc.pid, "VmRSS")
        s = socket.create_connection(("127.0.0.1", b.port))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        socks.append(s)
        reqs = b"".join(fetch_v4(i, "flood", [0], 0x7FFFFFFF, 0x7FFFFFFF) for i in range(200))
        s.sendall(reqs)
        peak = 0
        deadline = time.time() + 6
        answered = True
        while time.time() < deadline:
            peak = max(peak, proc_status_bytes(b.proc.pid, "VmHWM"))
            answered = answered and api_versions_ok(b.port)
            time.sleep(0.25)
        peak = max(peak, proc_status_bytes(b.proc.pid, "VmHWM"))
        print("fetch flood: VmRSS before %.1f MB, VmHWM during %.1f MB (bound %d MB)"
              % (base / 1e6, peak / 1e6, RSS_BOUND // MiB))
        check(answered, "ApiVersions on another connection not answered during the flood")
        check(peak < RSS_BOUND, "broker peak RSS %.0f MB under a fetch flood (bound %d MB)"
              % (peak / 1e6, RSS_BOUND // MiB))
        # The flooding client is still served in order once it reads.
        s.settimeout(30)
        for i in range(200):
            r = raw_response(s)
            check(r is not None and struct.unpack(">i", r[:4])[0] == i,
                  "fetch %d: response missing or out of order" % i)
        check(b.alive(), "broker died")
    finally:
        for s in socks:
            s.close()
        b.cleanup()


def t_big_frames_mem():
    """8 connections each sending most of a 99 MiB request frame: frames
    beyond the base buffer are charged to queued.max.request.bytes, so only
    what fits is read; the other connections wait unread."""
    b = Broker(MEMPLUGIN).start()
    socks = []
    try:
        size = 99 * MiB
        body = bytes(size - 4096)  # never completes the frame
        sent = [0] * 8

        def attack(k):
            s = socks[k]
            s.settimeout(3)
            try:
                s.sendall(struct.pack(">i", size))
                view = memoryview(body)
                while view:
                    n = s.send(view[:1 << 20])
                    sent[k] += n
                    view = view[n:]
            except OSError:
                pass  # blocked: the broker stopped reading this one

        for _ in range(8):
            socks.append(socket.create_connection(("127.0.0.1", b.port)))
        ths = [threading.Thread(target=attack, args=(k,)) for k in range(8)]
        for th in ths:
            th.start()
        for th in ths:
            th.join(60)
        time.sleep(1)
        peak = proc_status_bytes(b.proc.pid, "VmHWM")
        answered = api_versions_ok(b.port)
        print("big frames: %d MB sent by the clients, broker VmHWM %.1f MB (bound %d MB)"
              % (sum(sent) // MiB, peak / 1e6, RSS_BOUND // MiB))
        check(answered, "ApiVersions on another connection not answered during the attack")
        check(peak < RSS_BOUND, "broker peak RSS %.0f MB with 8 unfinished 99 MiB frames "
              "(bound %d MB)" % (peak / 1e6, RSS_BOUND // MiB))
        for s in socks:
            s.close()
        socks = []
        # Closing the attackers gives the budget back.
        time.sleep(0.5)
        s = socket.create_connection(("127.0.0.1", b.port), timeout=20)
        raw_request(s, 18, 0, 7)
        check(raw_response(s) is not None, "broker does not answer after the attack")
        s.close()
        check(b.alive(), "broker died")
    finally:
        for s in socks:
            s.close()
        b.cleanup()


def t_fetch_clamp_mem():
    """A Fetch asking for 2 GiB gets at most fetch.max.bytes plus one batch;
    a later partition that does not fit returns nothing."""
    limit = 1 * MiB
    b = Broker(MEMPLUGIN, {"fetch.max.bytes": str(limit)}).start()
    try:
        create_topic(b, "clamp", 2)
        fill_topic(b, "clamp", 6, partitions=2, batch_size=16384)
        s = socket.create_connection(("127.0.0.1", b.port), timeout=20)
        s.sendall(fetch_v4(1, "clamp", [0, 1], 0x7FFFFFFF, 0x7FFFFFFF))
        r = raw_response(s)
        check(r is not None, "no Fetch response")
        parts = fetch_v4_records(r)
        total = sum(n for _, n in parts.values())
        print("fetch clamp: fetch.max.bytes %d, response records %d bytes %r"
              % (limit, total, parts))
        check(parts.get(0, (1, 0))[0] == 0 and parts[0][1] > 0, "partition 0 returned nothing")
        check(total <= limit + 64 * 1024,
              "Fetch returned %d record bytes, fetch.max.bytes is %d" % (total, limit))
        s.sendall(fetch_v4(2, "clamp", [0, 1], 200000, 0x7FFFFFFF))
        parts = fetch_v4_records(raw_response(s))
        total = sum(n for _, n in parts.values())
        check(total <= 200000 + 64 * 1024,
              "Fetch MaxBytes 200000 returned %d record bytes" % total)
        s.close()
    finally:
        b.cleanup()


def slow_bucket_broker(extra_faults, more=None):
    b = Broker(TSPLUGIN)
    props = {
        "log.segment.bytes": str(1 * MiB),
        "log.local.retention.bytes": str(2 * MiB),
        "log.retention.ms": "-1",
        "remote.log.manager.task.interval.ms": "100",
        "remote.log.upload.retry.backoff.max.ms": "300",
        "remote.storage.url": "faulty+file://%s?ops=put,writer&%s"
                              % (os.path.join(b.root, "bucket"), extra_faults),
    }
    props.update(more or {})
    b.extra = props
    return b.start()


def broker_log_full(b):
    with open(os.path.join(b.root, "broker.log"), "rb") as f:
        return f.read().decode(errors="replace")


def t_backpressure_order():
    """kcat with its defaults (not idempotent, many requests in flight)
    produces 40,000 numbered lines while uploads fail for a while and the
    partition sits at its 2 MiB local bound: every line is in the log once,
    line i at offset i (held requests, not refused ones)."""
    b = slow_bucket_broker("fail_next=40")
    try:
        n = 40000
        lines = [b"%06d-" % i + b"p" * 200 for i in range(n)]
        t0 = time.time()
        # Lines arrive as from a live source (100 every 10 ms), so kcat has
        # many small requests in flight while the bound comes and goes.
        k = subprocess.Popen([KCAT, "-P", "-b", b.bootstrap, "-t", "order", "-p", "0"],
                             stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
        for i in range(0, n, 100):
            k.stdin.write(b"".join(l + b"\n" for l in lines[i:i + 100]))
            k.stdin.flush()
            time.sleep(0.01)
        k.stdin.close()
        err = k.stderr.read()
        rc = k.wait(400)
        took = time.time() - t0
        check(rc == 0, "kcat -P failed: %s" % err[-2000:])
        log = broker_log_full(b)
        held = log.count("local disk bound reached")
        print("backpressure order: produced %d lines in %.1f s; %d backpressure log lines"
              % (n, took, held))
        check(held > 0, "the scenario never reached the local disk bound (test is vacuous)")
        rc, out, err = kcat(["-C", "-b", b.bootstrap, "-t", "order", "-p", "0", "-o",
                             "beginning", "-e", "-q", "-f", "%o %s\\n"], timeout=300)
        check(rc == 0, "kcat -C failed: %s" % err[-2000:])
        got = out.split(b"\n")[:-1]
        bad = []
        for i, row in enumerate(got):
            off, _, val = row.partition(b" ")
            if i >= n or int(off) != i or val != lines[i]:
                bad.append((i, off, val[:6]))
        check(len(got) == n and not bad,
              "log holds %d records for %d lines; first mismatches (index, offset, line): %r"
              % (len(got), n, bad[:5]))
        check(b.alive(), "broker died")
    finally:
        b.cleanup()


def produce_v7_raw(sock, corr, topic, batch, timeout_ms):
    body = struct.pack(">hhi", -1, -1, timeout_ms)
    body += struct.pack(">ih", 1, len(topic)) + topic.encode()
    body += struct.pack(">ii", 1, 0) + struct.pack(">i", len(batch)) + batch
    raw_request(sock, 0, 7, corr, body)


def produce_v7_answer(sock):
    r = raw_response(sock)
    check(r is not None, "no Produce response")
    (c,) = struct.unpack(">i", r[:4])
    pos = 4 + 4
    (tl,) = struct.unpack(">h", r[pos:pos + 2])
    pos += 2 + tl + 4
    _part, err, base = struct.unpack(">ihq", r[pos:pos + 14])
    (throttle,) = struct.unpack(">i", r[-4:])
    return c, err, base, throttle


def t_backpressure_timeout():
    """With uploads failing for good, a Produce at the local bound is held
    (not refused) for min(TimeoutMs, produce.backpressure.max.ms), then
    answered REQUEST_TIMED_OUT with throttle_time_ms = the time held; the
    connection's next request waits behind it; other connections are
    served meanwhile; nothing held is appended."""
    hold = 1500
    b = slow_bucket_broker("fail_after_puts=0", {"produce.backpressure.max.ms": str(hold)})
    try:
        create_topic(b, "bp")
        s = socket.create_connection(("127.0.0.1", b.port), timeout=60)
        value = b"v" * (512 * 1024)
        err = 0
        end = -1
        for i in range(40):
            produce_v7_raw(s, i, "bp", record_batch(-1, -1, -1, value), 30000)
            c, err, base, throttle = produce_v7_answer(s)
            check(c == i, "correlation id %d, want %d" % (c, i))
            if err:
                break
            end = base
        print("backpressure timeout: first refusal after %d batches: error %d, throttle %d ms"
              % (end + 1, err, throttle))
        check(end >= 3, "the partition took only %d batches before refusing" % (end + 1))
        check(err == 7, "a produce at the local bound must be held then answered "
              "REQUEST_TIMED_OUT (7), got error %d" % err)
        check(throttle >= hold, "throttle_time_ms %d, held at least %d ms" % (throttle, hold))
        # Pipelined behind a held produce: ApiVersions is answered after it,
        # while another connection is answered at once.
        produce_v7_raw(s, 100, "bp", record_batch(-1, -1, -1, value), 30000)
        raw_request(s, 18, 0, 101)
        check(api_versions_ok(b.port), "another connection not served while a produce is held")
        c, err2, _, _ = produce_v7_answer(s)
        r = raw_response(s)
        check(c == 100 and err2 == 7 and r is not None and struct.unpack(">i", r[:4])[0] == 101,
              "held produce and the request behind it: %r" % ((c, err2),))
        s.close()
        from confluent_kafka import Consumer, TopicPartition
        cons = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "x"})
        lo, hi = cons.get_watermark_offsets(TopicPartition("bp", 0), timeout=10)
        cons.close()
        check(hi == end + 1, "log end %d, want %d: a timed-out produce was appended" % (hi, end + 1))
        check(b.alive(), "broker died")
    finally:
        b.cleanup()


TESTS = {
    "netmem_fetch_flood_mem": (t_fetch_flood_mem, ["MEMPLUGIN"]),
    "netmem_big_frames_mem": (t_big_frames_mem, ["MEMPLUGIN"]),
    "netmem_fetch_clamp_mem": (t_fetch_clamp_mem, ["MEMPLUGIN"]),
    "netmem_backpressure_order": (t_backpressure_order, ["TSPLUGIN"]),
    "netmem_backpressure_timeout": (t_backpressure_timeout, ["TSPLUGIN"]),
}


if __name__ == "__main__":
    run(TESTS)
