#!/usr/bin/python3
"""test_admin_configs.py — issue 12 items 3 (configs, partitions, records) and 4
(Kafka's config names and values).

Scenarios (each a ctest broker.NAME):
  kraft_properties      Kafka 3.8.0's shipped config/kraft/server.properties plus
                        log.dirs and the bucket starts tierbroker; one WARN per
                        Kafka key that does not apply; aliases honoured; an
                        unknown key still fails
  topic_kafka_defaults  CreateTopics with every Kafka topic config at its Kafka
                        default; the values Kafka has and tierbroker cannot honour
                        are refused (INVALID_CONFIG, naming why)
  configs_confluent     DescribeConfigs / AlterConfigs (topic and broker) with
                        confluent-kafka: sources, synonyms, replace, validate_only,
                        dynamic broker configs in effect and kept across a restart
  incremental_configs   IncrementalAlterConfigs v0 (raw): SET, DELETE, APPEND,
                        SUBTRACT, topic and broker, refusals
  describe_versions     DescribeConfigs v0..v4 decoded byte by byte
  flexible_admin        the flexible alters, CreatePartitions v3, DeleteRecords v2
  create_partitions     grow only, validate_only, kept across a restart
  kafkajs_admin         kafkajs' describeConfigs, alterConfigs, createPartitions,
                        deleteTopicRecords (and past the high watermark)
  delete_records_tiered DeleteRecords on a partition whose start is remote
  admin_mem             a plugin without the config entries (the in-memory one)

Clients: confluent-kafka (Debian, /usr/bin/python3), kcat, and kafkajs 2.2.4
(tests/broker/node, `npm ci` by scripts/install-deps.sh test).
"""
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import tempfile
import time

import confluent_kafka as ck
from confluent_kafka.admin import AdminClient, ConfigResource, NewPartitions, NewTopic

from test_broker import (BROKER, Broker, Fail, MEMPLUGIN, TIERCTL, TSPLUGIN, check, consume_all, free_port,
                         kcat, placement, raw_request, raw_response, run)

HERE = os.path.dirname(os.path.abspath(__file__))
NODE_DIR = os.path.join(HERE, "node")
NODE = shutil.which("node")
DYNAMIC_TOPIC, DYNAMIC_BROKER, STATIC_BROKER, DEFAULT = 1, 2, 4, 5
TOPIC_RES, BROKER_RES = ConfigResource.Type.TOPIC, ConfigResource.Type.BROKER
KRAFT = os.path.join(HERE, "fixtures", "kafka-3.8.0-kraft-server.properties")

# Kafka 3.x topic configs at their Kafka defaults (TopicConfig / LogConfig).
KAFKA_TOPIC_DEFAULTS = {
    "cleanup.policy": "delete",
    "compression.type": "producer",
    "delete.retention.ms": "86400000",
    "file.delete.delay.ms": "60000",
    "flush.messages": "9223372036854775807",
    "flush.ms": "9223372036854775807",
    "follower.replication.throttled.replicas": "",
    "index.interval.bytes": "4096",
    "leader.replication.throttled.replicas": "",
    "local.retention.bytes": "-2",
    "local.retention.ms": "-2",
    "max.compaction.lag.ms": "9223372036854775807",
    "max.message.bytes": "1048588",
    "message.downconversion.enable": "true",
    "message.format.version": "3.0-IV1",
    "message.timestamp.after.max.ms": "9223372036854775807",
    "message.timestamp.before.max.ms": "9223372036854775807",
    "message.timestamp.difference.max.ms": "9223372036854775807",
    "message.timestamp.type": "CreateTime",
    "min.cleanable.dirty.ratio": "0.5",
    "min.compaction.lag.ms": "0",
    "min.insync.replicas": "1",
    "preallocate": "false",
    "remote.storage.enable": "false",
    "retention.bytes": "-1",
    "retention.ms": "604800000",
    "segment.bytes": "1073741824",
    "segment.index.bytes": "10485760",
    "segment.jitter.ms": "0",
    "segment.ms": "604800000",
    "unclean.leader.election.enable": "false",
}


def admin(b):
    return AdminClient({"bootstrap.servers": b.bootstrap})


def describe(a, rtype, name, keys=None):
    r = ConfigResource(rtype, name, described_configs=keys)
    return a.describe_configs([r])[r].result(20)


def alter_err(a, rtype, name, cfg, validate_only=False):
    """AlterConfigs of one resource; None on success, else the KafkaError."""
    r = ConfigResource(rtype, name, set_config=cfg)
    try:
        for f in a.alter_configs([r], validate_only=validate_only).values():
            f.result(20)
        return None
    except ck.KafkaException as e:
        return e.args[0]


def expect_err(err, code, words, what):
    check(err is not None and err.code() == code, "%s: %s, want %s" % (what, err, code))
    for w in words:
        check(w in err.str(), "%s: the error must say %r: %r" % (what, w, err.str()))


def synonyms(entry):
    return [(s.name, s.value, s.source) for s in entry.synonyms.values()]


def kafkajs(b, op, args):
    """One kafkajs admin call (node/admin_ops.js); its JSON answer."""
    r = subprocess.run([NODE, os.path.join(NODE_DIR, "admin_ops.js"), b.bootstrap, op,
                        json.dumps(args)], capture_output=True, timeout=120, cwd=NODE_DIR)
    try:
        return json.loads(r.stdout.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise Fail("kafkajs %s: rc %d %r %r" % (op, r.returncode, r.stdout[-300:], r.stderr[-600:]))


def watermarks(b, topic, part=0):
    c = ck.Consumer({"bootstrap.servers": b.bootstrap, "group.id": "wm"})
    try:
        return c.get_watermark_offsets(ck.TopicPartition(topic, part), timeout=20, cached=False)
    finally:
        c.close()


def produce_n(b, topic, n, part=0, size=100, batch=10000):
    # idempotence keeps the order (value i at offset i) across the retries
    # that backpressure on a tiered partition causes
    p = ck.Producer({"bootstrap.servers": b.bootstrap, "acks": "all", "linger.ms": 5,
                     "batch.num.messages": batch, "enable.idempotence": True})
    for i in range(n):
        while True:
            try:
                p.produce(topic, b"%08d" % i + b"x" * size, partition=part)
                break
            except BufferError:
                p.poll(0.1)
    check(p.flush(60) == 0, "produce to %s did not finish" % topic)


def create_err(a, name, parts=1, config=None):
    """CreateTopics; None on success, else the KafkaError."""
    fs = a.create_topics([NewTopic(name, parts, 1, config=config or {})])
    try:
        fs[name].result(20)
        return None
    except ck.KafkaException as e:
        return e.args[0]


class KraftBroker(Broker):
    """Kafka's shipped file, unchanged, plus the two lines that point it at a
    data dir and a bucket. Its listeners (:9092, :9093) are moved to free
    loopback ports on the command line so that parallel tests do not clash;
    the file itself is not edited."""

    def write_props(self):
        shutil.copy(KRAFT, self.props)
        with open(self.props, "a") as f:
            f.write("log.dirs=%s\n" % os.path.join(self.root, "data"))
            f.write("remote.storage.url=file://%s\n" % os.path.join(self.root, "bucket"))
        self.args = ["--override", "listeners=PLAINTEXT://127.0.0.1:%d,CONTROLLER://:%d"
                     % (self.port, free_port()),
                     "--override", "advertised.listeners=PLAINTEXT://127.0.0.1:%d" % self.port,
                     "--override", "plugin.path=" + self.plugin]


# Every key of the stock file tierbroker accepts without honouring it.
KRAFT_IGNORED = ["process.roles", "controller.quorum.voters", "controller.listener.names",
                 "inter.broker.listener.name", "num.network.threads",
                 "num.recovery.threads.per.data.dir", "socket.send.buffer.bytes",
                 "socket.receive.buffer.bytes", "offsets.topic.replication.factor",
                 "transaction.state.log.replication.factor", "transaction.state.log.min.isr",
                 "log.retention.check.interval.ms"]


def t_kraft_properties():
    with open(KRAFT) as f:
        stock = f.read()
    check("process.roles=broker,controller" in stock and "log.retention.hours=168" in stock,
          "the fixture is not Kafka's kraft/server.properties")
    b = KraftBroker(TSPLUGIN).start()
    try:
        rc, _, err = kcat(["-P", "-b", b.bootstrap, "-t", "kraft", "-X", "acks=all"],
                          inp=b"one\ntwo\n")
        check(rc == 0, "produce: %s" % err)
        rc, out, err = kcat(["-C", "-b", b.bootstrap, "-t", "kraft", "-o", "beginning", "-e",
                             "-q"])
        check(rc == 0 and out == b"one\ntwo\n", "consume: %r %s" % (out, err))
        log = b.log()
        for key in KRAFT_IGNORED:
            n = len(re.findall(r"WARN .*\[broker\] %s=[^\n]*does not apply" % re.escape(key), log))
            check(n == 1, "%s: %d warnings, want exactly 1:\n%s" % (key, n, log))
        check("log.retention.hours=168 (Kafka's name) sets log.retention.ms=604800000" in log,
              "log.retention.hours not honoured:\n" + log)
        check("CONTROLLER" in log and "not served" in log, "controller listener served?")
    finally:
        b.cleanup()
    # A truly unknown key still stops the start, naming the key.
    root = tempfile.mkdtemp(prefix="tierbroker-test-")
    try:
        props = os.path.join(root, "s.properties")
        shutil.copy(KRAFT, props)
        with open(props, "a") as f:
            f.write("log.dirs=%s/data\nlog.retention.hourz=5\n" % root)
        r = subprocess.run([BROKER, props, "--override", "plugin.path=" + TSPLUGIN,
                            "--override", "listeners=PLAINTEXT://127.0.0.1:%d" % free_port()],
                           capture_output=True, timeout=60)
        check(r.returncode != 0, "an unknown key was accepted")
        check(b"log.retention.hourz" in r.stderr and b"unknown" in r.stderr,
              "the error must name the key: %r" % r.stderr[-400:])
        # A Kafka value that cannot hold here is refused with the reason.
        with open(props, "a") as f:
            f.write("log.cleanup.policy=compact\n")
        r = subprocess.run([BROKER, props, "--override", "plugin.path=" + TSPLUGIN],
                           capture_output=True, timeout=60)
        check(r.returncode == 2 and b"compaction is not supported" in r.stderr,
              "log.cleanup.policy=compact: %r" % r.stderr[-400:])
    finally:
        shutil.rmtree(root, ignore_errors=True)


def t_topic_kafka_defaults():
    b = Broker(TSPLUGIN).start()
    try:
        a = admin(b)
        err = create_err(a, "kdefaults", 2, KAFKA_TOPIC_DEFAULTS)
        check(err is None, "CreateTopics with Kafka's defaults refused: %s" % err)
        md = a.list_topics(timeout=10)
        check(len(md.topics["kdefaults"].partitions) == 2, "kdefaults not created")
        refused = [("cleanup.policy", "compact", "compaction is not supported"),
                   ("cleanup.policy", "delete,compact", "compaction is not supported"),
                   ("compression.type", "lz4", "never recompresses"),
                   ("message.timestamp.type", "LogAppendTime", "LogAppendTime"),
                   ("min.insync.replicas", "0", "min.insync.replicas"),
                   ("min.insync.replicas", "two", "min.insync.replicas"),
                   ("retention.ms", "-5", "retention.ms"),
                   ("segment.bytes", "12x", "segment.bytes"),
                   ("unclean.leader.election.enable", "maybe", "unclean.leader.election.enable"),
                   ("min.cleanable.dirty.ratio", "1.5", "min.cleanable.dirty.ratio"),
                   ("no.such.config", "1", "no.such.config"),
                   ("log.retention.ms", "1", "log.retention.ms")]
        for i, (key, val, why) in enumerate(refused):
            err = create_err(a, "krefused%d" % i, 1, {key: val})
            check(err is not None and err.code() == ck.KafkaError.INVALID_CONFIG,
                  "%s=%s: %s, want INVALID_CONFIG" % (key, val, err))
            check(why in err.str(), "%s=%s: the error must say %r: %r" % (key, val, why, err.str()))
        md = a.list_topics(timeout=10)
        check(not [t for t in md.topics if t.startswith("krefused")], "a refused topic exists")
        # min.insync.replicas and unclean.leader.election.enable are kept for the
        # cluster: in the topic's stored overrides, locally and in the bucket.
        check(create_err(a, "kkept", 1, {"min.insync.replicas": "2",
                                         "unclean.leader.election.enable": "true"}) is None,
              "kkept")
        with open(os.path.join(b.root, "data", ".topics", "kkept", "topic.properties")) as f:
            text = f.read()
        check("min.insync.replicas=2" in text and "unclean.leader.election.enable=true" in text,
              "stored overrides: %r" % text)
        cdir = os.path.join(b.root, "bucket", "kkept", "config")
        texts = [open(os.path.join(cdir, n)).read() for n in os.listdir(cdir)]
        check(any("min.insync.replicas=2" in t for t in texts), "not in the bucket: %r" % texts)
    finally:
        b.cleanup()


def t_configs_confluent():
    """DescribeConfigs and AlterConfigs with confluent-kafka's AdminClient:
    sources and synonyms, replace semantics, validate_only, the broker's
    dynamic settings (in effect at once, kept across a restart), refusals."""
    b = Broker(TSPLUGIN, {"log.retention.hours": "100", "ssl.key.password": "s3cret-pw",
                          "remote.log.manager.task.interval.ms": "100"}).start()
    try:
        a = admin(b)
        check(create_err(a, "c1", 1, {"retention.ms": "1234", "min.insync.replicas": "2"}) is None,
              "create c1")
        d = describe(a, TOPIC_RES, "c1")
        e = d["retention.ms"]
        check(e.value == "1234" and e.source == DYNAMIC_TOPIC and not e.is_read_only,
              "retention.ms: %s %s" % (e.value, e.source))
        check(("log.retention.hours", "100", STATIC_BROKER) in synonyms(e),
              "retention.ms synonyms: %r" % synonyms(e))
        check(d["segment.bytes"].source == DEFAULT and d["segment.bytes"].value == "1073741824",
              "segment.bytes: %s" % d["segment.bytes"])
        check(d["min.insync.replicas"].value == "2" and d["min.insync.replicas"].source == DYNAMIC_TOPIC,
              "min.insync.replicas: %s" % d["min.insync.replicas"])
        for k, v in (("unclean.leader.election.enable", "false"), ("cleanup.policy", "delete"),
                     ("compression.type", "producer"), ("message.timestamp.type", "CreateTime")):
            check(d[k].value == v and d[k].source == DEFAULT, "%s: %s" % (k, d[k]))
        d = describe(a, BROKER_RES, "0")
        e = d["ssl.key.password"]
        check(e.is_sensitive and e.value is None,
              "ssl.key.password described as %r (sensitive %s)" % (e.value, e.is_sensitive))
        e = d["log.retention.ms"]
        check(e.value == "360000000" and e.source == STATIC_BROKER and not e.is_read_only,
              "broker log.retention.ms (from log.retention.hours=100): %s %s" % (e.value, e.source))
        check(d["log.retention.hours"].value == "100", "broker log.retention.hours")
        check(d["num.io.threads"].is_read_only, "num.io.threads must be read-only")
        sec = d["aws.secret.access.key"]
        check(sec.is_sensitive and sec.value is None, "aws.secret.access.key: %s" % sec)
        # AlterConfigs replaces the topic's whole override set.
        check(alter_err(a, TOPIC_RES, "c1", {"retention.bytes": "99999"}) is None, "alter c1")
        d = describe(a, TOPIC_RES, "c1")
        check(d["retention.bytes"].value == "99999" and d["retention.bytes"].source == DYNAMIC_TOPIC,
              "retention.bytes: %s" % d["retention.bytes"])
        check(d["retention.ms"].value == "360000000" and d["retention.ms"].source == STATIC_BROKER,
              "retention.ms after replace: %s %s" % (d["retention.ms"].value, d["retention.ms"].source))
        check(d["min.insync.replicas"].value == "1", "min.insync.replicas after replace")
        check(alter_err(a, TOPIC_RES, "c1", {"retention.bytes": "5"}, validate_only=True) is None,
              "validate_only")
        check(describe(a, TOPIC_RES, "c1")["retention.bytes"].value == "99999",
              "validate_only changed the topic")
        expect_err(alter_err(a, TOPIC_RES, "c1", {"retention.ms": "abc"}), ck.KafkaError.INVALID_CONFIG,
                   ["retention.ms"], "bad value")
        expect_err(alter_err(a, TOPIC_RES, "c1", {"no.such.config": "1"}),
                   ck.KafkaError.INVALID_CONFIG, ["no.such.config"], "unknown key")
        expect_err(alter_err(a, TOPIC_RES, "c1", {"cleanup.policy": "compact"}),
                   ck.KafkaError.INVALID_CONFIG, ["compaction is not supported"], "compact")
        expect_err(alter_err(a, TOPIC_RES, "nosuch", {"retention.ms": "1"}),
                   ck.KafkaError.UNKNOWN_TOPIC_OR_PART, [], "unknown topic")
        check(describe(a, TOPIC_RES, "c1")["retention.bytes"].value == "99999",
              "a refused alter changed the topic")
        # Dynamic broker configs: in effect at once (retention deletes c2's old segments).
        check(create_err(a, "c2", 1, {"segment.bytes": "16384"}) is None, "create c2")
        produce_n(b, "c2", 2000, batch=100)  # batches of ~11 KB: many segments
        check(watermarks(b, "c2")[0] == 0, "c2 lost data before the alter")
        check(alter_err(a, BROKER_RES, "0", {"log.retention.bytes": "60000",
                                             "log.roll.ms": "3600000"}) is None, "alter broker")
        d = describe(a, BROKER_RES, "0")
        check(d["log.retention.bytes"].value == "60000" and d["log.retention.bytes"].source == DYNAMIC_BROKER,
              "log.retention.bytes: %s %s" % (d["log.retention.bytes"].value, d["log.retention.bytes"].source))
        check(d["log.segment.ms"].value == "3600000" and d["log.segment.ms"].source == DYNAMIC_BROKER,
              "log.roll.ms -> log.segment.ms: %s" % d["log.segment.ms"])
        e = describe(a, TOPIC_RES, "c2")["retention.bytes"]
        check(e.value == "60000" and e.source == DYNAMIC_BROKER, "c2 retention.bytes: %s" % e)
        deadline = time.time() + 60
        while time.time() < deadline and watermarks(b, "c2")[0] == 0:
            time.sleep(0.3)
        low, high = watermarks(b, "c2")
        check(low > 0 and high == 2000, "dynamic log.retention.bytes not applied: %d..%d" % (low, high))
        expect_err(alter_err(a, BROKER_RES, "0", {"num.io.threads": "3"}),
                   ck.KafkaError.INVALID_REQUEST, ["num.io.threads", "read-only"], "read-only key")
        expect_err(alter_err(a, BROKER_RES, "0", {"remote.storage.url": "file:///tmp/x"}),
                   ck.KafkaError.INVALID_REQUEST, ["remote.storage.url"], "read-only engine key")
        expect_err(alter_err(a, BROKER_RES, "0", {"log.retention.bytez": "3"}),
                   ck.KafkaError.INVALID_CONFIG, ["log.retention.bytez"], "unknown broker key")
        expect_err(alter_err(a, BROKER_RES, "0", {"log.retention.bytes": "-9"}),
                   ck.KafkaError.INVALID_CONFIG, ["log.retention.bytes"], "bad broker value")
        # Both survive a restart: topic overrides (engine), dynamic configs (.broker).
        b.stop()
        b.start()
        a = admin(b)
        d = describe(a, BROKER_RES, "0")
        check(d["log.retention.bytes"].value == "60000" and d["log.retention.bytes"].source == DYNAMIC_BROKER,
              "dynamic config lost on restart: %s" % d["log.retention.bytes"])
        check(describe(a, TOPIC_RES, "c1")["retention.bytes"].value == "99999", "c1 override lost")
        # AlterConfigs on the broker replaces the dynamic set: empty = all back to static.
        check(alter_err(a, BROKER_RES, "0", {}) is None, "alter broker to nothing")
        e = describe(a, BROKER_RES, "0")["log.retention.bytes"]
        check(e.value == "-1" and e.source == DEFAULT, "log.retention.bytes not reverted: %s" % e)
        check(b.alive(), "broker died")
    finally:
        b.cleanup()


def incremental_request(resources, validate_only=False):
    """IncrementalAlterConfigs v0 body: [(type, name, [(key, op, value)])]."""
    def s16(x):
        if x is None:
            return struct.pack(">h", -1)
        x = x.encode()
        return struct.pack(">h", len(x)) + x
    body = struct.pack(">i", len(resources))
    for rtype, name, cfgs in resources:
        body += struct.pack(">b", rtype) + s16(name) + struct.pack(">i", len(cfgs))
        for key, op, val in cfgs:
            body += s16(key) + struct.pack(">b", op) + s16(val)
    return body + struct.pack(">b", 1 if validate_only else 0)


def incremental(b, resources, validate_only=False):
    """Sends one IncrementalAlterConfigs v0; [(error, message)] per resource."""
    with socket.create_connection(("127.0.0.1", b.port), timeout=30) as s:
        raw_request(s, 44, 0, 7, incremental_request(resources, validate_only))
        resp = raw_response(s)
    check(resp is not None, "IncrementalAlterConfigs: connection closed")
    pos = 8  # correlation id, throttle
    (n,) = struct.unpack_from(">i", resp, pos)
    pos += 4
    out = []
    for _ in range(n):
        (err, ml) = struct.unpack_from(">hh", resp, pos)
        pos += 4
        msg = resp[pos:pos + ml].decode() if ml >= 0 else None
        pos += max(ml, 0) + 1
        (nl,) = struct.unpack_from(">h", resp, pos)
        pos += 2 + nl
        out.append((err, msg))
    return out


SET, DELETE, APPEND, SUBTRACT = 0, 1, 2, 3


class Reader:
    """Kafka wire decoding, classic and flexible (compact) forms."""

    def __init__(self, data, flexible):
        self.d, self.p, self.f = data, 0, flexible

    def fmt(self, f):
        (v,) = struct.unpack_from(f, self.d, self.p)
        self.p += struct.calcsize(f)
        return v

    def uvarint(self):
        v = shift = 0
        while True:
            b = self.d[self.p]
            self.p += 1
            v |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return v

    def string(self):
        n = self.uvarint() - 1 if self.f else self.fmt(">h")
        if n < 0:
            return None
        v = self.d[self.p:self.p + n].decode()
        self.p += n
        return v

    def count(self):
        return self.uvarint() - 1 if self.f else self.fmt(">i")

    def tags(self):
        if self.f:
            for _ in range(self.uvarint()):
                self.uvarint()
                self.p += self.uvarint()


def describe_raw(b, version, rtype, name):
    """DescribeConfigs at `version` (synonyms and documentation asked); the
    entries as {name: dict} and the resource's error."""
    flex = version >= 4
    def cstr(x):
        x = x.encode()
        return (bytes([len(x) + 1]) if flex else struct.pack(">h", len(x))) + x
    body = (b"\x02" if flex else struct.pack(">i", 1)) + struct.pack(">b", rtype) + cstr(name)
    body += (b"\x00" + b"\x00") if flex else struct.pack(">i", -1)
    if version >= 1:
        body += b"\x01"
    if version >= 3:
        body += b"\x01"
    if flex:
        body += b"\x00"
    with socket.create_connection(("127.0.0.1", b.port), timeout=30) as s:
        raw_request(s, 32, version, 11, body, flexible=flex)
        resp = raw_response(s)
    check(resp is not None, "DescribeConfigs v%d: connection closed" % version)
    r = Reader(resp, flex)
    r.fmt(">i")
    r.tags()
    r.fmt(">i")
    check(r.count() == 1, "one result")
    err, msg = r.fmt(">h"), r.string()
    r.fmt(">b")
    r.string()
    out = {}
    for _ in range(r.count()):
        e = {"name": r.string(), "value": r.string(), "read_only": r.fmt(">b")}
        if version == 0:
            e["is_default"] = r.fmt(">b")
        else:
            e["source"] = r.fmt(">b")
        e["sensitive"] = r.fmt(">b")
        if version >= 1:
            e["synonyms"] = []
            for _ in range(r.count()):
                e["synonyms"].append((r.string(), r.string(), r.fmt(">b")))
                r.tags()
        if version >= 3:
            e["type"], e["doc"] = r.fmt(">b"), r.string()
        r.tags()
        out[e["name"]] = e
    r.tags()
    r.tags()
    check(r.p == len(resp), "DescribeConfigs v%d: %d bytes left over" % (version, len(resp) - r.p))
    return err, msg, out


def cstr(x):
    """A compact (flexible) string."""
    x = x.encode()
    return bytes([len(x) + 1]) + x


def flexible_call(b, api, version, body):
    """One flexible request; a Reader past the response header."""
    with socket.create_connection(("127.0.0.1", b.port), timeout=30) as s:
        raw_request(s, api, version, 21, body, flexible=True)
        resp = raw_response(s)
    check(resp is not None, "api %d v%d: connection closed" % (api, version))
    r = Reader(resp, True)
    r.fmt(">i")
    r.tags()
    r.fmt(">i")  # ThrottleTimeMs
    return r


def alter_result(r):
    """The (error, message) of the one resource of an alter response."""
    check(r.count() == 1, "one resource")
    err, msg = r.fmt(">h"), r.string()
    r.fmt(">b")
    r.string()
    r.tags()
    r.tags()
    check(r.p == len(r.d), "bytes left over")
    return err, msg


def t_flexible_admin():
    """The flexible versions no client of the tests sends, end to end:
    IncrementalAlterConfigs v1, AlterConfigs v2, CreatePartitions v3,
    DeleteRecords v2."""
    b = Broker(TSPLUGIN).start()
    try:
        a = admin(b)
        check(create_err(a, "fx", 1) is None, "create fx")
        produce_n(b, "fx", 50)
        body = (b"\x02\x04" + cstr("0") + b"\x02" + cstr("log.retention.ms") + b"\x00" +
                cstr("86400000") + b"\x00\x00\x00\x00")
        check(alter_result(flexible_call(b, 44, 1, body)) == (0, None), "IncrementalAlterConfigs v1")
        e = describe(a, BROKER_RES, "0")["log.retention.ms"]
        check(e.value == "86400000" and e.source == DYNAMIC_BROKER, "v1 SET: %s" % e)
        body = (b"\x02\x02" + cstr("fx") + b"\x02" + cstr("retention.bytes") + cstr("123456") +
                b"\x00\x00\x00\x00")
        check(alter_result(flexible_call(b, 33, 2, body)) == (0, None), "AlterConfigs v2")
        check(describe(a, TOPIC_RES, "fx")["retention.bytes"].value == "123456", "v2 alter")
        body = (b"\x02" + cstr("fx") + struct.pack(">i", 3) + b"\x00\x00" +
                struct.pack(">i", 30000) + b"\x00\x00")
        r = flexible_call(b, 37, 3, body)
        check(r.count() == 1 and r.string() == "fx", "CreatePartitions v3 topic")
        err, msg = r.fmt(">h"), r.string()
        check(err == 0 and msg is None, "CreatePartitions v3: %d %r" % (err, msg))
        check(len(a.list_topics("fx", timeout=10).topics["fx"].partitions) == 3, "v3 grow")
        body = (b"\x02" + cstr("fx") + b"\x02" + struct.pack(">iq", 0, -1) + b"\x00\x00" +
                struct.pack(">i", 30000) + b"\x00")
        r = flexible_call(b, 21, 2, body)
        check(r.count() == 1 and r.string() == "fx" and r.count() == 1, "DeleteRecords v2 shape")
        part, low, err = r.fmt(">i"), r.fmt(">q"), r.fmt(">h")
        check((part, low, err) == (0, 50, 0), "DeleteRecords v2: %r" % ((part, low, err),))
        check(watermarks(b, "fx") == (50, 50), "after DeleteRecords v2")
        check(b.alive(), "broker died")
    finally:
        b.cleanup()


def t_describe_versions():
    """DescribeConfigs v0 (IsDefault) to v4 (flexible) decoded byte by byte:
    no client of the tests sends v3-v4 (documentation, config types)."""
    b = Broker(TSPLUGIN, {"log.retention.minutes": "90"}).start()
    try:
        check(create_err(admin(b), "dv", 1, {"segment.bytes": "1048576"}) is None, "create dv")
        for v in range(5):
            err, msg, ents = describe_raw(b, v, 2, "dv")
            check(err == 0, "v%d: error %d %s" % (v, err, msg))
            e = ents["segment.bytes"]
            check(e["value"] == "1048576", "v%d segment.bytes %r" % (v, e))
            if v == 0:
                check(e["is_default"] == 0 and ents["retention.bytes"]["is_default"] == 1,
                      "v0 IsDefault: %r" % e)
                continue
            check(e["source"] == DYNAMIC_TOPIC, "v%d source %r" % (v, e))
            syn = ents["retention.ms"]["synonyms"]
            check(("log.retention.minutes", "90", STATIC_BROKER) in syn and syn[-1][2] == DEFAULT,
                  "v%d retention.ms synonyms %r" % (v, syn))
            check(not [x for x in syn if x[0] == "log.retention.ms" and x[2] == STATIC_BROKER],
                  "v%d: log.retention.ms was not in the file, only log.retention.minutes: %r"
                  % (v, syn))
            if v >= 3:
                check(e["type"] == 3 and e["doc"], "v%d type/doc %r" % (v, e))
                check(ents["cleanup.policy"]["type"] == 7, "cleanup.policy is a list")
        err, msg, ents = describe_raw(b, 4, 4, "0")
        check(err == 0 and ents["num.io.threads"]["read_only"] == 1 and
              ents["log.retention.ms"]["value"] == "5400000" and
              ents["aws.secret.access.key"]["value"] is None and
              ents["aws.secret.access.key"]["sensitive"] == 1, "broker v4: %r %r" % (err, msg))
        err, msg, _ = describe_raw(b, 4, 2, "nosuch")
        check(err == 3 and "nosuch" in msg, "unknown topic: %d %r" % (err, msg))
        err, msg, _ = describe_raw(b, 2, 4, "9")
        check(err == 42, "another broker: %d %r" % (err, msg))
        check(b.alive(), "broker died")
    finally:
        b.cleanup()


def t_incremental_configs():
    """IncrementalAlterConfigs (not in confluent-kafka 1.7 nor kafkajs: raw v0
    requests): SET, DELETE, APPEND/SUBTRACT of list-valued configs, topic and
    broker, validate_only, refusals."""
    b = Broker(TSPLUGIN).start()
    try:
        a = admin(b)
        check(create_err(a, "inc", 1, {"retention.bytes": "1000000"}) is None, "create inc")
        T = 2
        r = incremental(b, [(T, "inc", [("retention.ms", SET, "7777"),
                                        ("follower.replication.throttled.replicas", APPEND, "0:0")])])
        check(r == [(0, None)], "SET + APPEND: %r" % r)
        d = describe(a, TOPIC_RES, "inc")
        check(d["retention.ms"].value == "7777" and d["retention.bytes"].value == "1000000",
              "incremental must keep the other overrides: %s %s" % (d["retention.ms"], d["retention.bytes"]))
        r = incremental(b, [(T, "inc", [("follower.replication.throttled.replicas", APPEND, "1:0")])])
        check(r == [(0, None)], "APPEND 2: %r" % r)
        check(describe(a, TOPIC_RES, "inc")["follower.replication.throttled.replicas"].value == "0:0,1:0",
              "APPEND result")
        r = incremental(b, [(T, "inc", [("follower.replication.throttled.replicas", SUBTRACT, "0:0"),
                                        ("retention.ms", DELETE, None)])])
        check(r == [(0, None)], "SUBTRACT + DELETE: %r" % r)
        d = describe(a, TOPIC_RES, "inc")
        check(d["follower.replication.throttled.replicas"].value == "1:0", "SUBTRACT result")
        r = incremental(b, [(T, "inc", [("follower.replication.throttled.replicas", APPEND, "1:0,2:0")])])
        v = describe(a, TOPIC_RES, "inc")["follower.replication.throttled.replicas"].value
        check(r == [(0, None)] and v == "1:0,2:0", "APPEND keeps elements once: %r %r" % (r, v))
        check(d["retention.ms"].value == "604800000" and d["retention.ms"].source == DEFAULT,
              "DELETE: %s" % d["retention.ms"])
        r = incremental(b, [(T, "inc", [("retention.bytes", SET, "1")])], validate_only=True)
        check(r == [(0, None)] and describe(a, TOPIC_RES, "inc")["retention.bytes"].value == "1000000",
              "validate_only: %r" % r)
        r = incremental(b, [(T, "inc", [("retention.ms", APPEND, "5")])])
        check(r[0][0] == 42 and "list-valued" in r[0][1], "APPEND to a number: %r" % r)
        r = incremental(b, [(T, "inc", [("cleanup.policy", APPEND, "compact")])])
        check(r[0][0] == 40 and "compaction is not supported" in r[0][1], "APPEND compact: %r" % r)
        r = incremental(b, [(T, "inc", [("segment.bytes", SET, "-4")])])
        check(r[0][0] == 40 and "segment.bytes" in r[0][1], "bad value: %r" % r)
        # the broker: SET then DELETE goes back to the static value
        r = incremental(b, [(4, "0", [("log.retention.hours", SET, "2")])])
        check(r == [(0, None)], "broker SET: %r" % r)
        e = describe(a, BROKER_RES, "0")["log.retention.ms"]
        check(e.value == "7200000" and e.source == DYNAMIC_BROKER, "broker SET: %s" % e)
        check(describe(a, TOPIC_RES, "inc")["retention.ms"].value == "7200000", "topic sees it")
        r = incremental(b, [(4, "0", [("log.retention.ms", DELETE, None)])])
        e = describe(a, BROKER_RES, "0")["log.retention.ms"]
        check(r == [(0, None)] and e.value == "604800000" and e.source == DEFAULT,
              "broker DELETE: %r %s" % (r, e))
        r = incremental(b, [(4, "0", [("listeners", SET, "PLAINTEXT://:1")])])
        check(r[0][0] == 42 and "listeners" in r[0][1], "read-only broker key: %r" % r)
        r = incremental(b, [(4, "7", [("log.retention.ms", SET, "1")])])
        check(r[0][0] == 42, "another broker's id: %r" % r)
        check(b.alive(), "broker died")
    finally:
        b.cleanup()


def t_create_partitions():
    b = Broker(TSPLUGIN).start()
    try:
        a = admin(b)
        check(create_err(a, "grow", 1, {"retention.ms": "86400000"}) is None, "create grow")
        a.create_partitions([NewPartitions("grow", 4)])["grow"].result(20)
        check(len(a.list_topics("grow", timeout=10).topics["grow"].partitions) == 4, "not 4")
        produce_n(b, "grow", 10, part=3)
        check(watermarks(b, "grow", 3) == (0, 10), "partition 3: %r" % (watermarks(b, "grow", 3),))
        check(describe(a, TOPIC_RES, "grow")["retention.ms"].value == "86400000", "config kept")
        a.create_partitions([NewPartitions("grow", 6)], validate_only=True)["grow"].result(20)
        check(len(a.list_topics("grow", timeout=10).topics["grow"].partitions) == 4,
              "validate_only added partitions")
        for count in (2, 4):
            try:
                a.create_partitions([NewPartitions("grow", count)])["grow"].result(20)
                raise Fail("CreatePartitions to %d accepted" % count)
            except ck.KafkaException as e:
                expect_err(e.args[0], ck.KafkaError.INVALID_PARTITIONS, ["grow"], "to %d" % count)
        try:
            a.create_partitions([NewPartitions("nosuch", 3)])["nosuch"].result(20)
            raise Fail("CreatePartitions of an unknown topic accepted")
        except ck.KafkaException as e:
            check(e.args[0].code() == ck.KafkaError.UNKNOWN_TOPIC_OR_PART, "unknown: %s" % e)
        b.stop()
        b.start()
        a = admin(b)
        check(len(a.list_topics("grow", timeout=10).topics["grow"].partitions) == 4,
              "partition count lost on restart")
        check(watermarks(b, "grow", 3) == (0, 10), "partition 3 after restart")
        check(b.alive(), "broker died")
    finally:
        b.cleanup()


def t_kafkajs_admin():
    """kafkajs 2.2.4's admin: describeConfigs, alterConfigs, createPartitions,
    deleteTopicRecords (and its refusal past the high watermark)."""
    if not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "kafkajs")) or not NODE:
        raise Fail("kafkajs is not installed (scripts/install-deps.sh test)")
    b = Broker(TSPLUGIN).start()
    try:
        a = admin(b)
        check(create_err(a, "kj", 1, {"retention.ms": "4242"}) is None, "create kj")
        r = kafkajs(b, "describeConfigs", {"includeSynonyms": True, "resources": [
            {"type": "TOPIC", "name": "kj", "configNames": ["retention.ms", "cleanup.policy"]}]})
        check("ok" in r, "describeConfigs: %r" % r)
        ents = {e["configName"]: e for e in r["ok"]["resources"][0]["configEntries"]}
        check(ents["retention.ms"]["configValue"] == "4242" and ents["retention.ms"]["configSource"] == 1,
              "kafkajs retention.ms: %r" % ents.get("retention.ms"))
        check(ents["cleanup.policy"]["configValue"] == "delete", "kafkajs cleanup.policy")
        r = kafkajs(b, "describeConfigs", {"includeSynonyms": False, "resources": [
            {"type": "BROKER", "name": "0", "configNames": ["log.segment.bytes"]}]})
        check("ok" in r and r["ok"]["resources"][0]["configEntries"][0]["configValue"] == "1073741824",
              "kafkajs broker describe: %r" % r)
        r = kafkajs(b, "alterConfigs", {"validateOnly": False, "resources": [
            {"type": "TOPIC", "name": "kj", "configEntries": [{"name": "retention.ms", "value": "5353"}]}]})
        check("ok" in r and describe(a, TOPIC_RES, "kj")["retention.ms"].value == "5353",
              "kafkajs alterConfigs: %r" % r)
        r = kafkajs(b, "createPartitions", {"topicPartitions": [{"topic": "kj", "count": 3}]})
        check("ok" in r and len(a.list_topics("kj", timeout=10).topics["kj"].partitions) == 3,
              "kafkajs createPartitions: %r" % r)
        produce_n(b, "kj", 100, part=1)
        r = kafkajs(b, "deleteTopicRecords", {"topic": "kj", "partitions": [{"partition": 1, "offset": "40"}]})
        check("ok" in r, "kafkajs deleteTopicRecords: %r" % r)
        check(watermarks(b, "kj", 1) == (40, 100), "after delete: %r" % (watermarks(b, "kj", 1),))
        r = kafkajs(b, "deleteTopicRecords", {"topic": "kj", "partitions": [{"partition": 1, "offset": "150"}]})
        err, types = r.get("error"), []
        while err:
            types += [p["type"] for p in err["partitions"]]
            err = err.get("cause")
        check("OFFSET_OUT_OF_RANGE" in types, "delete past the high watermark: %r" % r)
        check(watermarks(b, "kj", 1) == (40, 100), "a refused delete moved the start")
        r = kafkajs(b, "deleteTopicRecords", {"topic": "kj", "partitions": [{"partition": 1, "offset": "-1"}]})
        check("ok" in r and watermarks(b, "kj", 1) == (100, 100), "delete to the high watermark: %r" % r)
        check(b.alive(), "broker died")
    finally:
        b.cleanup()


def wait_remote(b, topic, nremote, timeout=180):
    """Placement rows once at least nremote segments are only in the bucket."""
    deadline = time.time() + timeout
    rows = []
    while time.time() < deadline:
        rows = placement(b, topic)
        if sum(1 for r in rows if r.get("location") == "remote") >= nremote:
            return rows
        time.sleep(0.5)
    raise Fail("segments not tiered: %r" % [(r.get("base_offset"), r.get("location")) for r in rows])


def read_at(b, topic, offset, reset="error"):
    """The first message a consumer assigned at offset gets (or its error)."""
    c = ck.Consumer({"bootstrap.servers": b.bootstrap, "group.id": "at-%d" % time.time_ns(),
                     "auto.offset.reset": reset, "enable.auto.commit": False})
    try:
        c.assign([ck.TopicPartition(topic, 0, offset)])
        deadline = time.time() + 60
        while time.time() < deadline:
            m = c.poll(1.0)
            if m is not None:
                return m
        raise Fail("no message or error at %s-0 offset %d" % (topic, offset))
    finally:
        c.close()


def t_delete_records_tiered():
    """DeleteRecords on a partition whose start is remote: the log start moves
    inside a remote segment, the objects wholly below leave the file://
    bucket, reads below answer OFFSET_OUT_OF_RANGE; a restart and a recovery
    from the bucket (empty data dir) keep the start."""
    if not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "kafkajs")) or not NODE:
        raise Fail("kafkajs is not installed (scripts/install-deps.sh test)")
    extra = {"log.segment.bytes": "65536", "log.local.retention.bytes": "65536",
             "remote.log.manager.task.interval.ms": "100", "log.retention.ms": "-1"}
    b = Broker(TSPLUGIN, extra).start()
    try:
        check(create_err(admin(b), "dr", 1) is None, "create dr")
        n = 20000
        produce_n(b, "dr", n, batch=200)  # batches of ~22 KB: several per segment
        rows = wait_remote(b, "dr", 4)
        remote = [r for r in rows if r.get("location") == "remote"]
        target = remote[2]["base_offset"] + 5
        gone = [r["object_key"] for r in remote[:2]]
        kept = remote[2]["object_key"]
        bucket = os.path.join(b.root, "bucket")
        for key in gone + [kept]:
            check(os.path.exists(os.path.join(bucket, key)), "object %s missing before" % key)
        r = kafkajs(b, "deleteTopicRecords", {"topic": "dr", "partitions": [
            {"partition": 0, "offset": str(target)}]})
        check("ok" in r, "deleteTopicRecords: %r" % r)
        check(watermarks(b, "dr") == (target, n), "watermarks %r, want (%d, %d)"
              % (watermarks(b, "dr"), target, n))
        for key in gone:
            check(not os.path.exists(os.path.join(bucket, key)), "object %s still in the bucket" % key)
        check(os.path.exists(os.path.join(bucket, kept)), "the object holding the start went")
        rows = placement(b, "dr")
        check(rows[0]["base_offset"] == remote[2]["base_offset"], "placement starts at %d, want %d"
              % (rows[0]["base_offset"], remote[2]["base_offset"]))
        m = read_at(b, "dr", target - 1)
        check(m.error() is not None and "out of range" in m.error().str().lower(),
              "a read below the start: %r" % ((m.error() or m.offset()),))
        m = read_at(b, "dr", target)
        check(m.error() is None and m.offset() == target and m.value().startswith(b"%08d" % target),
              "read at the new start: %r" % ((m.error() or (m.offset(), m.value()[:8])),))
        rc, out, err = kcat(["-C", "-b", b.bootstrap, "-t", "dr", "-p", "0", "-o", "beginning",
                             "-c", "1", "-f", "%o\n"])
        check(rc == 0 and out == b"%d\n" % target, "kcat from the beginning: %r %s" % (out, err))
        # Deleting below the start again changes nothing; past the end is refused.
        r = kafkajs(b, "deleteTopicRecords", {"topic": "dr", "partitions": [
            {"partition": 0, "offset": str(n + 1)}]})
        check("error" in r and watermarks(b, "dr") == (target, n), "past the end: %r" % r)
        b.stop()
        b.start()
        check(watermarks(b, "dr") == (target, n), "after restart: %r" % (watermarks(b, "dr"),))
        # An empty data dir and the bucket: the manifest carries the start.
        b.stop()
        shutil.rmtree(os.path.join(b.root, "data"))
        b.start()
        deadline = time.time() + 60
        while time.time() < deadline and "dr" not in admin(b).list_topics("dr", timeout=10).topics:
            time.sleep(0.5)
        low, high = watermarks(b, "dr")
        check(low == target and high > target, "recovered from the bucket: %d..%d" % (low, high))
        m = read_at(b, "dr", target - 1)
        check(m.error() is not None, "a read below the start after recovery: %r" % (m.offset(),))
        check(b.alive(), "broker died")
    finally:
        b.cleanup()


def t_admin_mem():
    """A plugin without the config entries (the in-memory one leaves them
    NULL): DescribeConfigs answers an error naming the ABI instead of
    crashing; DeleteRecords, which it has, works; CreatePartitions too."""
    b = Broker(MEMPLUGIN).start()
    try:
        a = admin(b)
        check(create_err(a, "m1", 1) is None, "create m1")
        try:
            describe(a, TOPIC_RES, "m1")
            raise Fail("DescribeConfigs answered without the plugin's config entries")
        except ck.KafkaException as e:
            expect_err(e.args[0], ck.KafkaError.INVALID_REQUEST, ["minor 3"], "describe")
        produce_n(b, "m1", 30)
        r = kafkajs(b, "deleteTopicRecords", {"topic": "m1", "partitions": [{"partition": 0, "offset": "12"}]})
        check("ok" in r and watermarks(b, "m1") == (12, 30), "mem DeleteRecords: %r %r"
              % (r, watermarks(b, "m1")))
        a.create_partitions([NewPartitions("m1", 2)])["m1"].result(20)
        check(len(a.list_topics("m1", timeout=10).topics["m1"].partitions) == 2, "mem grow")
        check(b.alive(), "broker died")
    finally:
        b.cleanup()


TESTS = {
    "admin_mem": (t_admin_mem, ["MEMPLUGIN"]),
    "delete_records_tiered": (t_delete_records_tiered, ["TSPLUGIN", "TIERCTL"]),
    "configs_confluent": (t_configs_confluent, ["TSPLUGIN"]),
    "incremental_configs": (t_incremental_configs, ["TSPLUGIN"]),
    "describe_versions": (t_describe_versions, ["TSPLUGIN"]),
    "flexible_admin": (t_flexible_admin, ["TSPLUGIN"]),
    "create_partitions": (t_create_partitions, ["TSPLUGIN"]),
    "kafkajs_admin": (t_kafkajs_admin, ["TSPLUGIN"]),
    "topic_kafka_defaults": (t_topic_kafka_defaults, ["TSPLUGIN"]),
    "kraft_properties": (t_kraft_properties, ["TSPLUGIN"]),
}

if __name__ == "__main__":
    run(TESTS)
