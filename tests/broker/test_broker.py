#!/usr/bin/python3
"""test_broker.py — tierbroker against real Kafka clients (kcat, confluent-kafka).

Run by ctest as `test_broker.py NAME` (label `broker`); run it by hand the same
way with TIERBROKER, TSPLUGIN (real plugin), MEMPLUGIN (in-memory test plugin)
and TIERCTL set to the built files. Must run under /usr/bin/python3 (Debian's
confluent-kafka is only importable there).

Every test uses loopback ports chosen free at run time, a temp data dir and a
file:// bucket, and always kills its broker (atexit + finally).
"""
import atexit
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

import confluent_kafka as ck
from confluent_kafka.admin import AdminClient, NewTopic

BROKER = os.environ.get("TIERBROKER")
TSPLUGIN = os.environ.get("TSPLUGIN")
MEMPLUGIN = os.environ.get("MEMPLUGIN")
TIERCTL = os.environ.get("TIERCTL")
KCAT = shutil.which("kcat")

_procs = []


def _kill_all():
    for p in _procs:
        if p.poll() is None:
            p.kill()
            p.wait()


atexit.register(_kill_all)


class Fail(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Fail(msg)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Broker:
    """One tierbroker process on a temp data dir and file:// bucket."""

    def __init__(self, plugin, extra=None, root=None):
        self.root = root or tempfile.mkdtemp(prefix="tierbroker-test-")
        self.port = free_port()
        self.plugin = plugin
        self.extra = extra or {}
        self.props = os.path.join(self.root, "server.properties")
        self.proc = None
        self.logf = None
        self.args = []  # extra command-line arguments (--override key=value)

    def write_props(self):
        props = {
            "listeners": "PLAINTEXT://127.0.0.1:%d" % self.port,
            "log.dirs": os.path.join(self.root, "data"),
            "plugin.path": self.plugin,
            "group.initial.rebalance.delay.ms": "200",
        }
        if self.plugin != MEMPLUGIN:
            props["remote.storage.url"] = "file://" + os.path.join(self.root, "bucket")
        props.update(self.extra)
        with open(self.props, "w") as f:
            for k, v in props.items():
                f.write("%s=%s\n" % (k, v))

    @property
    def bootstrap(self):
        return "127.0.0.1:%d" % self.port

    def start(self):
        self.write_props()
        os.makedirs(os.path.join(self.root, "data"), exist_ok=True)
        self.logf = open(os.path.join(self.root, "broker.log"), "ab")
        self.proc = subprocess.Popen([BROKER, self.props] + self.args, stdout=self.logf, stderr=self.logf)
        _procs.append(self.proc)
        deadline = time.time() + 30
        # Every listener a test uses: they open one after another, and a slow
        # (sanitized) broker accepts on the first before the next is bound.
        ports = [self.port] + [p for p in getattr(self, "wait_ports", []) if p != self.port]
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise Fail("broker exited with %d:\n%s" % (self.proc.returncode, self.log()))
            try:
                for p in ports:
                    socket.create_connection(("127.0.0.1", p), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise Fail("broker did not listen within 30 s:\n" + self.log())

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.logf:
            self.logf.close()
            self.logf = None

    def alive(self):
        return self.proc.poll() is None

    def log(self):
        try:
            with open(os.path.join(self.root, "broker.log"), "rb") as f:
                return f.read().decode(errors="replace")[-4000:]
        except OSError:
            return ""

    def cleanup(self):
        self.stop(signal.SIGKILL)
        if sys.exc_info()[0] is not None:
            print("--- broker log (tail) ---\n" + self.log()[-2500:])
        if os.environ.get("TS_KEEP_TEST_DIRS"):
            print("kept " + self.root)
        else:
            shutil.rmtree(self.root, ignore_errors=True)


def kcat(args, inp=None, timeout=60):
    r = subprocess.run([KCAT] + args, input=inp, capture_output=True, timeout=timeout)
    return r.returncode, r.stdout, r.stderr


# --------------------------------------------------------------------------
# raw protocol helpers (for what no client sends on purpose)


def raw_request(sock, api_key, version, corr, body=b"", flexible=False):
    hdr = struct.pack(">hhih", api_key, version, corr, 4) + b"test"
    if flexible:
        hdr += b"\x00"
    msg = hdr + body
    sock.sendall(struct.pack(">i", len(msg)) + msg)


def raw_response(sock):
    def recvn(n):
        buf = b""
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf

    h = recvn(4)
    if h is None:
        return None
    (n,) = struct.unpack(">i", h)
    return recvn(n)


# --------------------------------------------------------------------------
# tests


def t_kcat_common(plugin):
    b = Broker(plugin).start()
    try:
        lines = [b"line-%05d" % i for i in range(500)]
        rc, _, err = kcat(["-P", "-b", b.bootstrap, "-t", "kt", "-X", "acks=all"],
                          inp=b"\n".join(lines) + b"\n")
        check(rc == 0, "kcat -P failed: %s" % err)
        rc, out, err = kcat(["-C", "-b", b.bootstrap, "-t", "kt", "-o", "beginning", "-e", "-q"])
        check(rc == 0, "kcat -C failed: %s" % err)
        got = out.split(b"\n")[:-1]
        check(got == lines, "kcat -C read %d lines, first %r" % (len(got), got[:2]))
        # -G group mode: a balanced consumer reads everything, then exits at end
        rc, out, err = kcat(["-b", b.bootstrap, "-G", "kgroup", "kt", "-o", "beginning", "-e",
                             "-q", "-X", "topic.auto.offset.reset=earliest"])
        check(rc == 0, "kcat -G failed: %s" % err)
        got = out.split(b"\n")[:-1]
        check(sorted(got) == lines, "kcat -G read %d lines" % len(got))
        check(b.alive(), "broker died")
    finally:
        b.cleanup()


def t_kcat_mem():
    t_kcat_common(MEMPLUGIN)


def t_kcat():
    t_kcat_common(TSPLUGIN)


def t_protocol_mem():
    b = Broker(MEMPLUGIN).start()
    try:
        s = socket.create_connection(("127.0.0.1", b.port))
        # ApiVersions v3 (flexible request header, v0 response header)
        raw_request(s, 18, 3, 1, b"\x05rdkt\x061.0.0\x00", flexible=True)
        r = raw_response(s)
        check(r is not None and struct.unpack(">i", r[:4])[0] == 1, "ApiVersions v3 corr id")
        check(struct.unpack(">h", r[4:6])[0] == 0, "ApiVersions v3 error")
        # ApiVersions at an unknown version: UNSUPPORTED_VERSION (35) in a v0 answer
        raw_request(s, 18, 77, 2)
        r = raw_response(s)
        check(r is not None and struct.unpack(">ih", r[:6]) == (2, 35),
              "ApiVersions v77 must answer UNSUPPORTED_VERSION, got %r" % (r[:6] if r else r))
        # A malformed Metadata request closes this connection only
        raw_request(s, 3, 4, 3, b"\x7f\xff\xff\xff")
        s.settimeout(10)
        check(raw_response(s) is None, "malformed request must close the connection")
        s.close()
        # An unknown API key closes the connection (no hang)
        s = socket.create_connection(("127.0.0.1", b.port))
        s.settimeout(10)
        raw_request(s, 999, 0, 4)
        check(raw_response(s) is None, "unknown API key must close the connection")
        s.close()
        # A frame size beyond socket.request.max.bytes closes it too
        s = socket.create_connection(("127.0.0.1", b.port))
        s.settimeout(10)
        s.sendall(struct.pack(">i", 0x7fffffff))
        check(raw_response(s) is None, "oversized frame must close the connection")
        s.close()
        # ...and the broker still serves
        s = socket.create_connection(("127.0.0.1", b.port))
        raw_request(s, 18, 0, 5)
        r = raw_response(s)
        check(r is not None and struct.unpack(">ih", r[:6]) == (5, 0), "broker alive after abuse")
        # Metadata v9 (flexible): auto-creates and decodes to the last byte
        brokers, topics = metadata_v9(s, 6, "flex-topic")
        check(brokers == [(0, "127.0.0.1", b.port)], "Metadata v9 brokers %r" % brokers)
        check(topics == [(0, "flex-topic", [(0, 0, 0)])], "Metadata v9 topics %r" % topics)
        s.close()
        # CreateTopics: invalid config is refused; DeleteTopics works
        a = AdminClient({"bootstrap.servers": b.bootstrap})
        fs = a.create_topics([NewTopic("ok-topic", 3, 1, config={"retention.ms": "100000"}),
                              NewTopic("bad topic!", 1, 1)])
        fs["ok-topic"].result(10)
        try:
            fs["bad topic!"].result(10)
            raise Fail("invalid topic name accepted")
        except ck.KafkaException:
            pass
        md = a.list_topics(timeout=10)
        check("ok-topic" in md.topics and len(md.topics["ok-topic"].partitions) == 3,
              "created topic missing from Metadata")
        a.delete_topics(["ok-topic"])["ok-topic"].result(10)
        check("ok-topic" not in a.list_topics(timeout=10).topics, "deleted topic still listed")
        # Long-poll: a consumer waiting with a long fetch.wait.max.ms receives a
        # message produced while it waits (the append wakes the fetch).
        c = ck.Consumer({"bootstrap.servers": b.bootstrap, "group.id": "lp",
                         "auto.offset.reset": "earliest", "fetch.wait.max.ms": 20000})
        c.subscribe(["lp"])
        p = ck.Producer({"bootstrap.servers": b.bootstrap})
        p.produce("lp", b"wake-up")
        p.flush(10)
        m = None
        deadline = time.time() + 15
        while time.time() < deadline:
            m = c.poll(0.5)
            if m is not None and not m.error():
                break
        check(m is not None and not m.error() and m.value() == b"wake-up", "long-poll fetch")
        c.close()
        check(b.alive(), "broker died")
    finally:
        b.cleanup()


class Rd:
    """Tiny reader for raw responses (flexible encodings included)."""

    def __init__(self, b):
        self.b, self.p = b, 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.b, self.p)
        self.p += struct.calcsize(fmt)
        return v[0] if len(v) == 1 else v

    def uvarint(self):
        x = shift = 0
        while True:
            c = self.b[self.p]
            self.p += 1
            x |= (c & 0x7F) << shift
            shift += 7
            if not c & 0x80:
                return x

    def cstr(self):
        n = self.uvarint() - 1
        if n < 0:
            return None
        v = self.b[self.p:self.p + n].decode()
        self.p += n
        return v

    def tags(self):
        for _ in range(self.uvarint()):
            self.uvarint()
            self.p += self.uvarint()


def metadata_v9(sock, corr, topic):
    body = b"\x02" + bytes([len(topic) + 1]) + topic.encode() + b"\x00" + b"\x01\x00\x00\x00"
    raw_request(sock, 3, 9, corr, body, flexible=True)
    r = Rd(raw_response(sock))
    check(r.take(">i") == corr, "Metadata v9 correlation id")
    r.tags()  # response header v1
    r.take(">i")  # throttle
    brokers = []
    for _ in range(r.uvarint() - 1):
        node, host, port = r.take(">i"), r.cstr(), r.take(">i")
        r.cstr()
        r.tags()
        brokers.append((node, host, port))
    r.cstr()  # cluster id
    r.take(">i")  # controller
    topics = []
    for _ in range(r.uvarint() - 1):
        err, name, _internal = r.take(">h"), r.cstr(), r.take(">b")
        parts = []
        for _ in range(r.uvarint() - 1):
            perr, idx, leader, _epoch = r.take(">hiii")
            for _arr in range(3):
                for _ in range(r.uvarint() - 1):
                    r.take(">i")
            r.tags()
            parts.append((perr, idx, leader))
        r.take(">i")
        r.tags()
        topics.append((err, name, parts))
    r.take(">i")
    r.tags()
    check(r.p == len(r.b), "Metadata v9: %d trailing bytes" % (len(r.b) - r.p))
    return brokers, topics


def consume_all(bootstrap, topic, n, group=None, timeout=120, conf=None):
    cfg = {"bootstrap.servers": bootstrap, "group.id": group or "reader-%d" % time.time_ns(),
           "auto.offset.reset": "earliest", "enable.auto.commit": False}
    cfg.update(conf or {})
    c = ck.Consumer(cfg)
    c.subscribe([topic])
    out = []
    deadline = time.time() + timeout
    while len(out) < n and time.time() < deadline:
        for m in c.consume(1000, 1.0):
            if m.error():
                continue
            out.append((m.partition(), m.offset(), m.value()))
    c.close()
    return out


def t_clients():
    b = Broker(TSPLUGIN).start()
    try:
        a = AdminClient({"bootstrap.servers": b.bootstrap})
        a.create_topics([NewTopic("ct", 2, 1, config={"retention.ms": "86400000"})])["ct"].result(10)
        p = ck.Producer({"bootstrap.servers": b.bootstrap, "enable.idempotence": True,
                         "acks": "all", "linger.ms": 5})
        sent = {}
        for i in range(5000):
            v = b"value-%06d" % i
            p.produce("ct", v, key=b"k%d" % (i % 13))
            sent[v] = True
        check(p.flush(30) == 0, "producer did not flush")
        got = consume_all(b.bootstrap, "ct", 5000, group="cg1")
        check(len(got) == 5000 and set(v for _, _, v in got) == set(sent),
              "consumer group read %d of 5000" % len(got))
        # per-partition order
        for part in (0, 1):
            offs = [o for pp, o, _ in got if pp == part]
            check(offs == sorted(offs), "partition %d out of order" % part)
        c = ck.Consumer({"bootstrap.servers": b.bootstrap, "group.id": "x"})
        lo, hi = c.get_watermark_offsets(ck.TopicPartition("ct", 0), timeout=10)
        lo1, hi1 = c.get_watermark_offsets(ck.TopicPartition("ct", 1), timeout=10)
        check(lo == 0 and lo1 == 0 and hi + hi1 == 5000, "watermarks %d..%d, %d..%d" % (lo, hi, lo1, hi1))
        c.close()
        # DeleteTopics while a consumer long-polls it; then the name is reusable
        c = ck.Consumer({"bootstrap.servers": b.bootstrap, "group.id": "del",
                         "auto.offset.reset": "latest", "fetch.wait.max.ms": 5000})
        c.subscribe(["ct"])
        for _ in range(10):
            c.poll(0.2)
        a.delete_topics(["ct"])["ct"].result(10)
        for _ in range(5):
            c.poll(0.2)
        c.close()
        check("ct" not in a.list_topics(timeout=10).topics, "deleted topic still listed")
        deadline = time.time() + 20
        while True:
            try:
                a.create_topics([NewTopic("ct", 1, 1)])["ct"].result(10)
                break
            except ck.KafkaException:
                check(time.time() < deadline, "topic name not reusable after delete")
                time.sleep(0.5)
        lo, hi = ck.Consumer({"bootstrap.servers": b.bootstrap, "group.id": "x2"}) \
            .get_watermark_offsets(ck.TopicPartition("ct", 0), timeout=10)
        check((lo, hi) == (0, 0), "recreated topic must be empty, has %d..%d" % (lo, hi))
        check(b.alive(), "broker died")
    finally:
        b.cleanup()


def t_groups():
    b = Broker(TSPLUGIN).start()
    try:
        a = AdminClient({"bootstrap.servers": b.bootstrap})
        a.create_topics([NewTopic("gt", 4, 1)])["gt"].result(10)
        p = ck.Producer({"bootstrap.servers": b.bootstrap, "acks": "all"})
        for i in range(400):
            p.produce("gt", b"m%d" % i, partition=i % 4)
        p.flush(30)

        assigned = {}

        def member(name):
            c = ck.Consumer({"bootstrap.servers": b.bootstrap, "group.id": "grp",
                             "auto.offset.reset": "earliest", "enable.auto.commit": False,
                             "session.timeout.ms": 6000, "heartbeat.interval.ms": 500})

            def on_assign(cons, parts):
                assigned[name] = sorted(tp.partition for tp in parts)

            def on_revoke(cons, parts):
                assigned[name] = []

            c.subscribe(["gt"], on_assign=on_assign, on_revoke=on_revoke)
            return c

        c1, c2 = member("c1"), member("c2")
        deadline = time.time() + 30
        while time.time() < deadline:
            c1.poll(0.2)
            c2.poll(0.2)
            if len(assigned.get("c1", [])) + len(assigned.get("c2", [])) == 4 and \
                    assigned.get("c1") and assigned.get("c2"):
                break
        check(assigned.get("c1") and assigned.get("c2") and
              sorted(assigned["c1"] + assigned["c2"]) == [0, 1, 2, 3],
              "two members must share 4 partitions: %r" % assigned)
        # c2 leaves: c1 gets all four
        c2.close()
        deadline = time.time() + 30
        while time.time() < deadline and assigned.get("c1") != [0, 1, 2, 3]:
            c1.poll(0.2)
        check(assigned.get("c1") == [0, 1, 2, 3], "after leave c1 has %r" % assigned.get("c1"))
        # commit explicit offsets, then restart the broker
        c1.commit(offsets=[ck.TopicPartition("gt", i, 10 * (i + 1)) for i in range(4)],
                  asynchronous=False)
        c1.close()
        b.stop()
        b.start()
        c = ck.Consumer({"bootstrap.servers": b.bootstrap, "group.id": "grp"})
        got = c.committed([ck.TopicPartition("gt", i) for i in range(4)], timeout=20)
        c.close()
        check([tp.offset for tp in got] == [10, 20, 30, 40],
              "committed offsets after restart: %r" % [tp.offset for tp in got])
        # a new member resumes from the committed offsets
        rest = consume_all(b.bootstrap, "gt", 300, group="grp")
        check(len(rest) == 300 and min(o for pp, o, _ in rest if pp == 0) == 10,
              "resumed consumer read %d" % len(rest))
        check(b.alive(), "broker died")
    finally:
        b.cleanup()


def placement(b, topic):
    r = subprocess.run([TIERCTL, "-c", b.props, "placement", topic, "0", "--json"],
                       capture_output=True, timeout=60)
    if r.returncode != 0:
        raise Fail("tierctl placement: %s" % r.stderr.decode(errors="replace"))
    return json.loads(r.stdout)


def t_tiered():
    b = Broker(TSPLUGIN, {"log.segment.bytes": str(256 * 1024),
                          "log.local.retention.bytes": str(128 * 1024),
                          "remote.log.manager.task.interval.ms": "100",
                          "log.retention.ms": "-1"}).start()
    try:
        n = 200000
        base_ts = 1_600_000_000_000
        # idempotence keeps order across the retries that backpressure causes
        p = ck.Producer({"bootstrap.servers": b.bootstrap, "acks": "all", "linger.ms": 20,
                         "enable.idempotence": True, "batch.num.messages": 2000,
                         "queue.buffering.max.messages": 500000})
        vals = []
        for i in range(n):
            v = b"%08d-" % i + bytes((i * 7 + k) & 0xff for k in range(40))
            vals.append(v)
            while True:
                try:
                    p.produce("tiered", v, partition=0, timestamp=base_ts + i)
                    break
                except BufferError:
                    p.poll(0.1)
        left = p.flush(120); check(left == 0, "producer did not flush: %d left" % left)
        # wait until every segment but the newest is only in the bucket
        deadline = time.time() + 180
        rows = []
        while time.time() < deadline:
            rows = placement(b, "tiered")
            older = rows[:-2]
            if len(rows) > 4 and all(r.get("location") == "remote" for r in older):
                break
            time.sleep(0.5)
        check(len(rows) > 4 and all(r.get("location") == "remote" for r in rows[:-2]),
              "segments not remote-only: %r" % [(r.get("base_offset"), r.get("location")) for r in rows])
        # ListOffsets by a timestamp living only in the remote tier
        first_remote_end = rows[0]["last_offset"]
        target = first_remote_end // 2
        c = ck.Consumer({"bootstrap.servers": b.bootstrap, "group.id": "ts"})
        res = c.offsets_for_times([ck.TopicPartition("tiered", 0, base_ts + target)], timeout=30)
        c.close()
        check(res[0].offset == target, "offsets_for_times -> %d, want %d" % (res[0].offset, target))
        # a fresh consumer from offset 0 reads everything, in order, byte-identical
        got = consume_all(b.bootstrap, "tiered", n, timeout=300)
        check(len(got) == n, "read %d of %d" % (len(got), n))
        for i, (_, off, v) in enumerate(got):
            if off != i or v != vals[i]:
                raise Fail("message %d: offset %d, bytes differ: %r" % (i, off, v[:12]))
        check(b.alive(), "broker died")
    finally:
        b.cleanup()


def t_restart():
    """Restart (SIGTERM) and SIGKILL in the middle of producing: every
    message acknowledged with acks=-1 is still there afterwards."""
    b = Broker(TSPLUGIN, {"log.segment.bytes": str(1024 * 1024)}).start()
    try:
        acked = set()
        lock = threading.Lock()
        stop = threading.Event()

        def cb(err, msg):
            if err is None:
                with lock:
                    acked.add(msg.value())

        def produce():
            p = ck.Producer({"bootstrap.servers": b.bootstrap, "acks": "all",
                             "enable.idempotence": True, "linger.ms": 2,
                             "message.timeout.ms": 60000, "reconnect.backoff.max.ms": 200})
            i = 0
            while not stop.is_set():
                try:
                    p.produce("rk", b"msg-%08d" % i, callback=cb)
                    i += 1
                except BufferError:
                    pass
                p.poll(0.001 if i % 100 else 0.01)
            p.flush(90)

        th = threading.Thread(target=produce)
        th.start()
        time.sleep(2)
        b.stop(signal.SIGTERM)
        b.start()
        time.sleep(2)
        b.stop(signal.SIGKILL)
        b.start()
        time.sleep(2)
        stop.set()
        th.join(180)
        check(len(acked) > 100, "too few acks (%d): producer never got going" % len(acked))
        got = consume_all(b.bootstrap, "rk", len(acked), timeout=120)
        have = set(v for _, _, v in got)
        lost = acked - have
        check(not lost, "%d acknowledged messages lost, e.g. %r" % (len(lost), sorted(lost)[:3]))
        check(b.alive(), "broker died")
    finally:
        b.cleanup()


def crc32c(data):
    poly = 0x82F63B78
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        table.append(c)
    crc = 0xFFFFFFFF
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def zz(v):
    """zig-zag varint"""
    u = (v << 1) ^ (v >> 63)
    out = b""
    while u >= 0x80:
        out += bytes([(u & 0x7F) | 0x80])
        u >>= 7
    return out + bytes([u])


def record_batch(pid, epoch, seq, value, ts=1_700_000_000_000):
    rec = b"\x00" + zz(0) + zz(0) + zz(-1) + zz(len(value)) + value + zz(0)
    rec = zz(len(rec)) + rec
    after_crc = struct.pack(">hiqqqhii", 0, 0, ts, ts, pid, epoch, seq, 1) + rec
    head = struct.pack(">bI", 2, crc32c(after_crc))
    body = struct.pack(">i", 0) + head + after_crc  # partitionLeaderEpoch, magic, crc, ...
    return struct.pack(">qi", 0, len(body)) + body


def produce_v7(sock, corr, topic, batch, log_start=False):
    """(corr, error, base_offset), with log_start (corr, error, base_offset,
    log_start_offset)."""
    body = struct.pack(">hhi", -1, -1, 10000)
    body += struct.pack(">ih", 1, len(topic)) + topic.encode()
    body += struct.pack(">ii", 1, 0) + struct.pack(">i", len(batch)) + batch
    raw_request(sock, 0, 7, corr, body)
    r = raw_response(sock)
    # corr, [topic [partition error base_offset log_append_time log_start]] throttle
    (c,) = struct.unpack(">i", r[:4])
    pos = 4 + 4
    (tl,) = struct.unpack(">h", r[pos:pos + 2])
    pos += 2 + tl + 4
    part, err, base, _lat, start = struct.unpack(">ihqqq", r[pos:pos + 30])
    return (c, err, base, start) if log_start else (c, err, base)


def uv(n):
    out = b""
    while n >= 0x80:
        out += bytes([(n & 0x7F) | 0x80])
        n >>= 7
    return out + bytes([n])


def cs(x):
    return uv(len(x) + 1) + x.encode()


def t_flexible_mem():
    """Produce v9 and Fetch v12 (flexible versions no installed client uses)
    round-trip one batch byte for byte."""
    b = Broker(MEMPLUGIN).start()
    try:
        admin = AdminClient({"bootstrap.servers": b.bootstrap})
        admin.create_topics([NewTopic("flex", 1, 1)])["flex"].result(10)
        s = socket.create_connection(("127.0.0.1", b.port))
        s.settimeout(10)
        batch = record_batch(-1, -1, -1, b"flexible-value")
        body = b"\x00" + struct.pack(">hi", -1, 10000) + uv(2) + cs("flex") + uv(2)
        body += struct.pack(">i", 0) + uv(len(batch) + 1) + batch + b"\x00" + b"\x00" + b"\x00"
        raw_request(s, 0, 9, 11, body, flexible=True)
        r = Rd(raw_response(s))
        check(r.take(">i") == 11, "Produce v9 correlation id")
        r.tags()
        check(r.uvarint() == 2 and r.cstr() == "flex" and r.uvarint() == 2, "Produce v9 shape")
        idx, err, base, _lat, _lso = r.take(">ihqqq")
        check((idx, err, base) == (0, 0, 0), "Produce v9 result %r" % ((idx, err, base),))
        check(r.uvarint() == 1 and r.cstr() is None, "Produce v9 record errors / message")
        r.tags()
        r.tags()
        r.take(">i")
        r.tags()
        check(r.p == len(r.b), "Produce v9 trailing bytes")

        body = struct.pack(">iiiibii", -1, 100, 1, 1 << 20, 0, 0, -1) + uv(2) + cs("flex") + uv(2)
        body += struct.pack(">iiqiqi", 0, -1, 0, -1, -1, 1 << 20) + b"\x00" + b"\x00"
        body += uv(1) + cs("") + b"\x00"
        raw_request(s, 1, 12, 12, body, flexible=True)
        r = Rd(raw_response(s))
        check(r.take(">i") == 12, "Fetch v12 correlation id")
        r.tags()
        _thr, err, _sid = r.take(">ihi")
        check(err == 0 and r.uvarint() == 2 and r.cstr() == "flex" and r.uvarint() == 2,
              "Fetch v12 shape")
        idx, perr, hwm, _lso, _ls = r.take(">ihqqq")
        check((idx, perr, hwm) == (0, 0, 1), "Fetch v12 partition %r" % ((idx, perr, hwm),))
        check(r.uvarint() == 0, "Fetch v12 aborted transactions null")
        r.take(">i")
        n = r.uvarint() - 1
        recs = r.b[r.p:r.p + n]
        r.p += n
        r.tags()
        r.tags()
        r.tags()
        check(r.p == len(r.b), "Fetch v12 trailing bytes")
        check(recs == batch, "Fetch v12 returned other bytes than produced")
        s.close()
    finally:
        b.cleanup()


def t_idempotence_mem():
    b = Broker(MEMPLUGIN).start()
    try:
        a = AdminClient({"bootstrap.servers": b.bootstrap})
        a.create_topics([NewTopic("idem", 1, 1)])["idem"].result(10)
        s = socket.create_connection(("127.0.0.1", b.port))
        s.settimeout(10)
        pid = 4242
        _, err, base0 = produce_v7(s, 1, "idem", record_batch(pid, 0, 0, b"a"))
        check(err == 0 and base0 == 0, "first batch: err %d base %d" % (err, base0))
        _, err, base1 = produce_v7(s, 2, "idem", record_batch(pid, 0, 1, b"b"))
        check(err == 0 and base1 == 1, "second batch: err %d base %d" % (err, base1))
        # a retried batch (same sequence) is answered with its first offset, not re-appended
        # (and the log start, as Kafka answers it: it was -1 here)
        _, err, dup, start = produce_v7(s, 3, "idem", record_batch(pid, 0, 1, b"b"), True)
        check((err, dup, start) == (0, 1, 0),
              "duplicate: err %d base %d log start %d, want 0 1 0" % (err, dup, start))
        # a gap in sequences is refused
        _, err, _ = produce_v7(s, 4, "idem", record_batch(pid, 0, 5, b"x"))
        check(err == 45, "out-of-order sequence must give 45, got %d" % err)
        _, err, _ = produce_v7(s, 5, "idem", record_batch(pid, 0, 2, b"c"))
        check(err == 0, "next sequence accepted, got %d" % err)
        # a newer epoch resets; then the old epoch is fenced
        _, err, _ = produce_v7(s, 6, "idem", record_batch(pid, 1, 0, b"d"))
        check(err == 0, "new epoch accepted, got %d" % err)
        _, err, _ = produce_v7(s, 7, "idem", record_batch(pid, 0, 3, b"e"))
        check(err == 47, "old epoch must give INVALID_PRODUCER_EPOCH 47, got %d" % err)
        s.close()
        c = ck.Consumer({"bootstrap.servers": b.bootstrap, "group.id": "x"})
        lo, hi = c.get_watermark_offsets(ck.TopicPartition("idem", 0), timeout=10)
        c.close()
        check(hi == 4, "log end %d, want 4 (duplicate dropped)" % hi)
    finally:
        b.cleanup()


def t_idempotence_restart():
    """Producer state survives a broker restart: a batch retried after the
    restart is answered with its original offset and not appended again
    (regression: the state used to live only in memory)."""
    b = Broker(TSPLUGIN).start()
    try:
        a = AdminClient({"bootstrap.servers": b.bootstrap})
        a.create_topics([NewTopic("idemr", 1, 1)])["idemr"].result(10)
        s = socket.create_connection(("127.0.0.1", b.port))
        s.settimeout(10)
        pid = 777
        _, err, base0 = produce_v7(s, 1, "idemr", record_batch(pid, 0, 0, b"a"))
        check(err == 0 and base0 == 0, "first batch: err %d base %d" % (err, base0))
        _, err, base1 = produce_v7(s, 2, "idemr", record_batch(pid, 0, 1, b"b"))
        check(err == 0 and base1 == 1, "second batch: err %d base %d" % (err, base1))
        s.close()
        for sig in (signal.SIGTERM, signal.SIGKILL):
            b.stop(sig)
            b.start()
            s = socket.create_connection(("127.0.0.1", b.port))
            s.settimeout(10)
            _, err, dup, start = produce_v7(s, 3, "idemr", record_batch(pid, 0, 1, b"b"), True)
            check((err, dup, start) == (0, 1, 0),
                  "retry after restart (%s): err %d base %d log start %d, want the original "
                  "offset 1 and log start 0" % (sig.name, err, dup, start))
            _, err, _ = produce_v7(s, 4, "idemr", record_batch(pid, 0, 5, b"x"))
            check(err == 45, "a gap after restart must give 45, got %d" % err)
            s.close()
        s = socket.create_connection(("127.0.0.1", b.port))
        s.settimeout(10)
        _, err, base2 = produce_v7(s, 5, "idemr", record_batch(pid, 0, 2, b"c"))
        check(err == 0 and base2 == 2, "next sequence: err %d base %d" % (err, base2))
        s.close()
        c = ck.Consumer({"bootstrap.servers": b.bootstrap, "group.id": "x"})
        lo, hi = c.get_watermark_offsets(ck.TopicPartition("idemr", 0), timeout=10)
        c.close()
        check(hi == 3, "log end %d, want 3 (retries not appended twice)" % hi)
    finally:
        b.cleanup()


def t_session():
    """A member that dies without LeaveGroup is removed after its session
    timeout and the survivor gets every partition."""
    b = Broker(TSPLUGIN).start()
    try:
        a = AdminClient({"bootstrap.servers": b.bootstrap})
        a.create_topics([NewTopic("st", 4, 1)])["st"].result(10)
        child = subprocess.Popen([sys.executable, "-c", r"""
import confluent_kafka as ck, sys, time
c = ck.Consumer({"bootstrap.servers": sys.argv[1], "group.id": "sess",
                 "session.timeout.ms": 3000, "heartbeat.interval.ms": 300})
c.subscribe(["st"])
while True:
    c.poll(0.2)
""", b.bootstrap])
        _procs.append(child)
        assigned = {}
        c = ck.Consumer({"bootstrap.servers": b.bootstrap, "group.id": "sess",
                         "session.timeout.ms": 3000, "heartbeat.interval.ms": 300})
        c.subscribe(["st"], on_assign=lambda _c, ps: assigned.update(p=sorted(t.partition for t in ps)))
        deadline = time.time() + 30
        while time.time() < deadline and len(assigned.get("p", [])) != 2:
            c.poll(0.2)
        check(len(assigned.get("p", [])) == 2, "two members must split 4 partitions: %r" % assigned)
        child.kill()
        child.wait()
        deadline = time.time() + 30
        while time.time() < deadline and assigned.get("p") != [0, 1, 2, 3]:
            c.poll(0.2)
        check(assigned.get("p") == [0, 1, 2, 3],
              "after the other member died: %r" % assigned.get("p"))
        c.close()
    finally:
        b.cleanup()


TESTS = {
    "flexible_mem": (t_flexible_mem, ["MEMPLUGIN"]),
    "idempotence_mem": (t_idempotence_mem, ["MEMPLUGIN"]),
    "session": (t_session, ["TSPLUGIN"]),
    "kcat_mem": (t_kcat_mem, ["MEMPLUGIN"]),
    "protocol_mem": (t_protocol_mem, ["MEMPLUGIN"]),
    "kcat": (t_kcat, ["TSPLUGIN"]),
    "clients": (t_clients, ["TSPLUGIN"]),
    "groups": (t_groups, ["TSPLUGIN"]),
    "tiered": (t_tiered, ["TSPLUGIN", "TIERCTL"]),
    "restart": (t_restart, ["TSPLUGIN"]),
    "idempotence_restart": (t_idempotence_restart, ["TSPLUGIN"]),
}


def run(tests):
    """The one runner of every broker scenario file: `python3 FILE [name...]`
    runs the named scenarios of `tests` ({name: (fn, [env vars it needs])}),
    or all of them. Exit 1 on any failure, 77 (ctest SKIP_RETURN_CODE) when
    nothing could run, else 0."""
    names = sys.argv[1:] or list(tests)
    failed = ran = 0
    for name in names:
        fn, needs = tests[name]
        missing = [n for n in needs + ["TIERBROKER"] if not os.environ.get(n)]
        if missing or not KCAT:
            print("SKIP %s: missing %s" % (name, ", ".join(missing) or "kcat"))
            continue
        t0 = time.time()
        ran += 1
        try:
            fn()
            print("PASS %s (%.1f s)" % (name, time.time() - t0))
        except Exception as e:  # noqa: BLE001 - report any failure with its message
            failed += 1
            print("FAIL %s: %s" % (name, e))
    sys.exit(1 if failed else (0 if ran else 77))  # 77: ctest SKIP_RETURN_CODE


if __name__ == "__main__":
    run(TESTS)
