#!/usr/bin/python3
"""test_cluster_admin.py — topic administration in a cluster: CreatePartitions
and topic AlterConfigs / IncrementalAlterConfigs write topics/<t> in etcd, and
every broker follows from its watch (new partitions get states from the
controller and open on their replicas; configs reach each broker's storage).

A real etcd and real tierbrokers (cluster.py), real clients (confluent-kafka);
DescribeConfigs is also sent raw to each broker in turn, so every broker's own
answer is checked (a client would route it to any one). Run by ctest as
`test_cluster_admin.py NAME` (label `cluster`).
"""
import os
import socket
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import AckedWrites, Cluster, check, run, wait_until  # noqa: E402
from test_broker import raw_request, raw_response  # noqa: E402
from test_admin_configs import DELETE, SET, incremental  # noqa: E402

import confluent_kafka as ck  # noqa: E402
from confluent_kafka.admin import ConfigResource, NewPartitions  # noqa: E402

SESSION_MS = 2000
INVALID_PARTITIONS = 37
INVALID_REPLICATION_FACTOR = 38
INVALID_CONFIG = 40


def env_ok():
    return os.path.exists("/usr/bin/etcd")


def error_code(f, timeout=60):
    """The Kafka error code a future fails with, 0 on success."""
    try:
        f.result(timeout)
        return 0
    except ck.KafkaException as e:
        return e.args[0].code()


def grow(a, topic, count, validate_only=False):
    fs = a.create_partitions([NewPartitions(topic, count)], validate_only=validate_only,
                             operation_timeout=30, request_timeout=40)
    return error_code(fs[topic])


def describe_raw(node, topic):
    """DescribeConfigs v0 of one topic sent to this broker itself: (error, {key: value})."""
    body = struct.pack(">ibh", 1, 2, len(topic)) + topic.encode() + struct.pack(">i", -1)
    s = socket.create_connection(("127.0.0.1", node.port), timeout=10)
    try:
        raw_request(s, 32, 0, 7, body)
        r = raw_response(s)
    finally:
        s.close()
    check(r is not None, "broker %d closed the connection" % node.id)
    pos = 4 + 4  # correlation id, throttle
    (nres,) = struct.unpack_from(">i", r, pos)
    pos += 4
    check(nres == 1, "%d resources in the answer" % nres)

    def string():
        nonlocal pos
        (n,) = struct.unpack_from(">h", r, pos)
        pos += 2
        if n < 0:
            return None
        v = r[pos:pos + n].decode()
        pos += n
        return v

    (err,) = struct.unpack_from(">h", r, pos)
    pos += 2
    string()
    pos += 1  # resource type
    string()
    (n,) = struct.unpack_from(">i", r, pos)
    pos += 4
    out = {}
    names = set()
    for _ in range(max(n, 0)):
        k = string()
        v = string()
        _ro, is_default, _sens = struct.unpack_from(">bbb", r, pos)
        pos += 3
        check(k not in names, "broker %d describes %s twice" % (node.id, k))
        names.add(k)
        if not is_default:
            out[k] = v
    return err, out


def wait_configs(c, topic, want, exclude=()):
    """Every running broker's own DescribeConfigs shows the overrides in want
    (a dict of key: value, None = not overridden)."""
    for n in c.nodes.values():
        if n.id in exclude:
            continue

        def ok():
            err, got = describe_raw(n, topic)
            return err == 0 and all(got.get(k) == v for k, v in want.items())
        wait_until(ok, 30, "broker %d to show %s of %s (has %s)" %
                   (n.id, want, topic, describe_raw(n, topic)))


def etcd_configs(c, topic):
    v = c.etcd.get("topics/" + topic)
    return v[0].get("configs", {}) if v else None


def t_grow_partitions():
    """CreatePartitions in a cluster: topics/<t> lists the new partitions (the
    topic's replication factor, live brokers only), the controller gives them
    leaders, every broker's Metadata shows them, acks=all writes to them are
    all read back (and the old partitions keep their records). Errors: fewer
    or equal partitions, an unknown topic, more replicas than live brokers;
    validate_only writes nothing. A broker down during the grow has the new
    partitions when it comes back."""
    with Cluster(3, session_ms=SESSION_MS) as c:
        c.wait_registered()
        a = c.admin()
        c.create_topic("gp", 2, 2)
        c.wait_leaders("gp", 2)
        w = AckedWrites(c.bootstrap, "gp")
        for p in range(2):
            w.produce(30, partition=p)
        check(grow(a, "gp", 2) == INVALID_PARTITIONS, "same count accepted")
        check(grow(a, "gp", 1) == INVALID_PARTITIONS, "fewer partitions accepted")
        check(grow(a, "nosuch", 4) == ck.KafkaError.UNKNOWN_TOPIC_OR_PART, "unknown topic")
        check(grow(a, "gp", 9, validate_only=True) == 0, "validate_only refused")
        check(len(c.topic_assignment("gp")) == 2, "validate_only wrote topics/gp")
        check(grow(a, "gp", 5) == 0, "grow to 5 refused")
        assign = c.topic_assignment("gp")
        check(len(assign) == 5, "topics/gp lists %d partitions" % len(assign))
        for r in assign:
            check(len(r) == 2 and len(set(r)) == 2 and set(r) <= {1, 2, 3}, "assignment %s" % r)
        c.wait_leaders("gp", 5)
        w.renew()
        for p in range(2, 5):
            w.produce(30, partition=p)
        n = w.verify(120)
        check(n == 150, "%d acknowledged records checked" % n)
        # A broker down during a grow: back, it holds what etcd says.
        c.nodes[3].kill9()
        c.wait_registered([1, 2])
        check(grow(a, "gp", 7) == 0, "grow with a broker down refused")
        c.nodes[3].restart()
        c.wait_registered()
        c.wait_leaders("gp", 7)
        w.renew()
        held = [p for p, r in enumerate(c.topic_assignment("gp")) if 3 in r]
        for p in held:
            wait_until(lambda: os.path.isdir(os.path.join(c.nodes[3].data, "gp-%d" % p)), 30,
                       "broker 3 to open its replica gp-%d (%s)" % (p, os.listdir(c.nodes[3].data)))
        for p in range(5, 7):
            w.produce(10, partition=p)
        check(w.verify(120) == 170, "records lost after the second grow")


def t_grow_errors():
    """A topic whose replication factor is above the live brokers cannot grow
    (INVALID_REPLICATION_FACTOR), and etcd keeps its assignment."""
    with Cluster(3, session_ms=SESSION_MS) as c:
        c.wait_registered()
        a = c.admin()
        c.create_topic("g3", 1, 3)
        c.wait_leaders("g3", 1)
        c.nodes[3].kill9()
        c.wait_registered([1, 2])
        check(grow(a, "g3", 3) == INVALID_REPLICATION_FACTOR, "rf 3 placed on 2 brokers")
        check(len(c.topic_assignment("g3")) == 1, "topics/g3 changed")
        check(grow(a, "__consumer_offsets", 99) != 0, "__consumer_offsets grown")


def t_alter_configs():
    """Topic config alters in a cluster land in topics/<t> and in every
    broker's storage (each broker's own DescribeConfigs answers them), the
    broker's topic-level keys included; IncrementalAlterConfigs edits the set,
    AlterConfigs replaces it; bad values and unknown keys are refused with
    INVALID_CONFIG and change nothing; validate_only changes nothing; a broker
    down during an alter shows the new set when it comes back."""
    with Cluster(3, session_ms=SESSION_MS) as c:
        c.wait_registered()
        a = c.admin()
        c.create_topic("ac", 2, 2, config={"retention.ms": "600000"})
        c.wait_leaders("ac", 2)
        wait_configs(c, "ac", {"retention.ms": "600000"})

        def inc(entries, validate_only=False, via=1):
            """IncrementalAlterConfigs v0 of topic ac, raw, through broker `via`."""
            return incremental(c.nodes[via], [(2, "ac", entries)], validate_only)[0][0]

        check(inc([("retention.ms", SET, "1234567"), ("min.insync.replicas", SET, "2")]) == 0,
              "incremental alter refused")
        check(etcd_configs(c, "ac") == {"retention.ms": "1234567", "min.insync.replicas": "2"},
              "etcd holds %s" % etcd_configs(c, "ac"))
        wait_configs(c, "ac", {"retention.ms": "1234567", "min.insync.replicas": "2"})

        before = etcd_configs(c, "ac")
        for bad in (("min.insync.replicas", SET, "zero"), ("segment.bytes", SET, "lots"),
                    ("no.such.config", SET, "1"), ("num.io.threads", SET, "4")):
            code = inc([bad], via=3)
            check(code == INVALID_CONFIG, "%s=%s answered %s" % (bad[0], bad[2], code))
        check(inc([("retention.ms", SET, "42")], validate_only=True) == 0,
              "validate_only refused")
        check(etcd_configs(c, "ac") == before, "a refused or validate-only alter changed etcd: "
              "%s" % etcd_configs(c, "ac"))

        # DELETE goes back to the default; a broker down meanwhile catches up.
        c.nodes[2].kill9()
        c.wait_registered([1, 3])
        check(inc([("min.insync.replicas", DELETE, None), ("cleanup.policy", SET, "delete")],
                  via=3) == 0, "delete refused")
        check(etcd_configs(c, "ac") == {"retention.ms": "1234567", "cleanup.policy": "delete"},
              "etcd holds %s" % etcd_configs(c, "ac"))
        c.nodes[2].restart()
        c.wait_registered()
        wait_configs(c, "ac", {"retention.ms": "1234567", "min.insync.replicas": None})

        # AlterConfigs replaces the whole set.
        res = ConfigResource(ConfigResource.Type.TOPIC, "ac", set_config={"segment.ms": "3600000"})
        check(error_code(a.alter_configs([res], request_timeout=30)[res]) == 0,
              "AlterConfigs refused")
        check(etcd_configs(c, "ac") == {"segment.ms": "3600000"},
              "etcd holds %s" % etcd_configs(c, "ac"))
        wait_configs(c, "ac", {"segment.ms": "3600000", "retention.ms": None})
        # The topic still serves.
        w = AckedWrites(c.bootstrap, "ac")
        w.produce(20)
        check(w.verify(60) == 20, "records lost")


TESTS = {
    "grow_partitions": (t_grow_partitions, ["TSPLUGIN"]),
    "grow_errors": (t_grow_errors, ["TSPLUGIN"]),
    "alter_configs": (t_alter_configs, ["TSPLUGIN"]),
}

if __name__ == "__main__":
    if not env_ok():
        print("SKIP: no etcd installed")
        sys.exit(77)
    run(TESTS)
