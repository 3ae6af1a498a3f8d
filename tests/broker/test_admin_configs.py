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

Clients: confluent-kafka (Debian, /usr/bin/python3), kcat, and kafkajs 2.2.4
(tests/broker/node, `npm ci` by scripts/install-deps.sh test).
"""
import os
import re
import shutil
import subprocess
import tempfile

import confluent_kafka as ck
from confluent_kafka.admin import AdminClient, NewTopic

from test_broker import BROKER, Broker, Fail, TSPLUGIN, check, free_port, kcat, run

HERE = os.path.dirname(os.path.abspath(__file__))
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
            n = len(re.findall(r"WARN .*broker: %s=[^\n]*does not apply" % re.escape(key), log))
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


TESTS = {
    "topic_kafka_defaults": (t_topic_kafka_defaults, ["TSPLUGIN"]),
    "kraft_properties": (t_kraft_properties, ["TSPLUGIN"]),
}

if __name__ == "__main__":
    run(TESTS)
