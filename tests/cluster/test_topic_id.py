#!/usr/bin/python3
"""test_topic_id.py — topic ids on each broker's disk (KIP-516's
partition.metadata, here .broker/topic-ids/<topic>), with a real etcd, three
real tierbrokers (the real plugin, a shared file:// bucket) and confluent-kafka.

Scenarios (ctest `cluster.NAME`, label `cluster`):
  topicid_recreate  a broker SIGKILLed while its topic is deleted and re-created
                    under the same name (two partitions before, one after) comes
                    back, joins the ISR and then leads alone: it serves only the
                    new incarnation's records, every one of them in order, none
                    of the old; its old partition-1 directory is gone, its id
                    file holds the new id, and the bucket still holds the new
                    incarnation's objects (its local reset deleted none)
  topicid_recreate_live
                    deleted and re-created while every broker runs, same
                    assignment (so the same leader at the same leader epoch 0):
                    the replicas apply their roles afresh (followers fetch the
                    new log, the leader's HW counts their positions in it), so
                    every acks=all record survives the leader's SIGKILL
  topicid_sweep     a broker down while its topic is deleted removes that
                    topic's local directories and id file when it restarts
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import Cluster, check, ck, run, wait_until  # noqa: E402
from test_replication import full_isr  # noqa: E402

# Small segments so both incarnations tier data and keep a local tail.
BASE = {"min.insync.replicas": "1", "replica.lag.time.max.ms": "4000",
        "log.segment.bytes": "32768", "log.local.retention.bytes": "98304",
        "remote.log.manager.task.interval.ms": "500"}


def produce(bootstrap, topic, prefix, n, partitions):
    """n records "<prefix>-<i>" round robin over partitions, acks=all; each
    acknowledged, else the test fails."""
    p = ck.Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5,
                     "batch.num.messages": 100, "message.timeout.ms": 60000})
    errs = []
    for i in range(n):
        while True:
            try:
                p.produce(topic, value=("%s-%d" % (prefix, i)).encode(), partition=i % partitions,
                          on_delivery=lambda e, m: errs.append(e) if e else None)
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)
    check(p.flush(120) == 0, "records of %s still unacknowledged" % prefix)
    check(not errs, "produce %s: %s" % (prefix, errs[:3]))


def read_partition(bootstrap, topic, partition, timeout=90):
    """Every record of topic-partition from offset 0 to its end: [(offset, value)]."""
    c = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": "tid-%d" % time.time_ns(),
                     "enable.auto.commit": False, "auto.offset.reset": "earliest",
                     "enable.partition.eof": True})
    c.assign([ck.TopicPartition(topic, partition, ck.OFFSET_BEGINNING)])
    out, deadline = [], time.time() + timeout
    while time.time() < deadline:
        ms = c.consume(500, 0.5)
        if any(m.error() and m.error().code() == ck.KafkaError._PARTITION_EOF for m in ms):
            out += [(m.offset(), m.value().decode()) for m in ms if not m.error()]
            break
        out += [(m.offset(), m.value().decode()) for m in ms if not m.error()]
    c.close()
    return out


def local_dirs(node, topic):
    return sorted(d for d in os.listdir(node.data)
                  if d.startswith(topic + "-") and d[len(topic) + 1:].isdigit())


def id_file(node, topic):
    path = os.path.join(node.data, ".broker", "topic-ids", topic)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return f.read()


def bucket_objects(c, topic, p):
    root = os.path.join(c.bucket, topic, str(p))
    return sorted(os.path.relpath(os.path.join(d, f), root)
                  for d, _, fs in os.walk(root) for f in fs)


def t_topicid_recreate():
    topic = "tid"
    with Cluster(3, extra=BASE) as c:
        c.wait_registered()
        c.create_topic(topic, partitions=2, rf=3)
        full_isr(c, topic, 2)
        produce(c.bootstrap, topic, "old", 6000, 2)
        old_id = c.etcd.get("topics/" + topic)[0]["id"]
        leader = c.pstate(topic, 0)["leader"]
        victim = c.node(next(i for i in (1, 2, 3) if i != leader))
        others = [n for n in c.nodes.values() if n is not victim]
        wait_until(lambda: len(local_dirs(victim, topic)) == 2, 30, "victim's replicas on disk")
        before = id_file(victim, topic)  # checked last: the records matter first
        victim.kill9()
        c.wait_registered([n.id for n in others])  # its lease gone: down for the cluster
        c.delete_topic(topic)
        wait_until(lambda: c.etcd.get("topics/" + topic) is None, 30, "topic gone from etcd")
        # Re-created with the down broker among the replicas (last: not the
        # preferred leader), as an assignment naming it: CreateTopics refuses
        # rf 3 with two brokers live, so the topics/<t> value is written the
        # way CreateTopics writes it (cluster.h).
        new_id = "TopicIdRecreated0000AA"
        a, b = [n.id for n in others]
        wait_until(lambda: not any(local_dirs(n, topic) for n in others), 30,
                   "the live brokers deleted the old replicas")
        c.etcd.put("topics/" + topic, {"id": new_id, "partitions": [[a, b, victim.id]],
                                       "configs": {}})
        c.wait_leaders(topic, 1, exclude=(victim.id,))
        produce(c.bootstrap, topic, "new", 3000, 1)
        want = [(i, "new-%d" % i) for i in range(3000)]
        live = read_partition(c.bootstrap, topic, 0)
        check(live == want, "the live brokers serve %d records, not new-0..new-2999" % len(live))
        victim.start()
        c.wait_registered()
        full_isr(c, topic, 1)
        after, dirs = id_file(victim, topic), local_dirs(victim, topic)
        for n in others:
            n.kill9()
        wait_until(lambda: c.pstate(topic, 0)["leader"] == victim.id, 60,
                   "the restarted broker leading")
        got = read_partition(victim.bootstrap, topic, 0)
        old = [v for _, v in got if not v.startswith("new-")]
        check(not old, "the restarted broker served %d record(s) of the old incarnation, "
              "first %s" % (len(old), old[:3]))
        check(got == want, "read %d records from the restarted broker, want new-0..new-2999 at "
              "offsets 0..2999; first differing: %s" %
              (len(got), next(((g, w) for g, w in zip(got, want) if g != w), None)))
        objs = [o for o in bucket_objects(c, topic, 0) if o.startswith("segments/")]
        check(objs, "the bucket lost the new incarnation's segment objects")
        check(dirs == [topic + "-0"], "the restarted broker kept old directories: %s" % dirs)
        check(before == "version: 0\ntopic_id: %s\n" % old_id,
              "id file before the kill: %r, want the id %s" % (before, old_id))
        check(after == "version: 0\ntopic_id: %s\n" % new_id,
              "id file after the restart: %r, want the id %s" % (after, new_id))
        print("  old id %s -> new id %s: %d new records read from broker %d alone, %d segment "
              "objects in the bucket" % (old_id, new_id, len(got), victim.id, len(objs)))


def t_topicid_recreate_live():
    """Deleted and re-created while every broker runs, with the same assignment:
    the new partition state has the same leader and leader epoch (0) as the
    old one had. Each replica must apply its role afresh: followers fetch the
    new log, and the leader counts their positions in it (not the old log's)
    before it acknowledges acks=all. The leader is then killed: the new leader
    serves every acknowledged record of the new incarnation."""
    topic = "tidlive"
    with Cluster(3, extra=BASE) as c:
        c.wait_registered()
        c.create_topic(topic, partitions=1, rf=3)
        full_isr(c, topic, 1)
        produce(c.bootstrap, topic, "old", 3000, 1)
        assign = c.topic_assignment(topic)
        c.delete_topic(topic)
        wait_until(lambda: c.etcd.get("topics/" + topic) is None, 30, "topic gone from etcd")
        wait_until(lambda: not any(local_dirs(n, topic) for n in c.nodes.values()), 30,
                   "every broker deleted the old replicas")
        c.etcd.put("topics/" + topic, {"id": "TopicIdRecreatedLive00", "partitions": assign,
                                       "configs": {}})
        full_isr(c, topic, 1)
        produce(c.bootstrap, topic, "new", 3000, 1)
        leader = c.leader_of(topic, 0)
        check(leader.id == assign[0][0], "the new incarnation is led by %d, not %d as the old "
              "one: the case under test did not arise" % (leader.id, assign[0][0]))
        leader.kill9()
        c.wait_leaders(topic, 1, exclude=(leader.id,))
        got = read_partition(c.bootstrap, topic, 0)
        want = [(i, "new-%d" % i) for i in range(3000)]
        check(got == want, "after the leader's kill %d records read, want new-0..new-2999; "
              "first differing: %s" %
              (len(got), next(((g, w) for g, w in zip(got, want) if g != w), None)))
        print("  re-created at the same leader and epoch: %d records survive the leader's kill"
              % len(got))


def t_topicid_sweep():
    topic = "swept"
    with Cluster(3, extra=BASE) as c:
        c.wait_registered()
        c.create_topic(topic, partitions=2, rf=3)
        full_isr(c, topic, 2)
        produce(c.bootstrap, topic, "r", 2000, 2)
        victim = c.node(3)
        wait_until(lambda: len(local_dirs(victim, topic)) == 2, 30, "victim's replicas on disk")
        tid = c.etcd.get("topics/" + topic)[0]["id"]
        victim.kill9()
        c.delete_topic(topic)
        wait_until(lambda: c.etcd.get("topics/" + topic) is None, 30, "topic gone from etcd")
        check(len(local_dirs(victim, topic)) == 2, "the down broker's dirs went already")
        victim.start()
        c.wait_registered()
        wait_until(lambda: not local_dirs(victim, topic) and id_file(victim, topic) is None, 60,
                   "the down broker's replicas of the deleted topic swept (dirs %s)" %
                   local_dirs(victim, topic))
        check("swept topic %s (id %s)" % (topic, tid) in victim.log(),
              "no INFO line for the sweep of %s" % topic)
        print("  broker %d swept %s (id %s) on restart" % (victim.id, topic, tid))


TESTS = {
    "topicid_recreate": (t_topicid_recreate, ["TSPLUGIN"]),
    "topicid_recreate_live": (t_topicid_recreate_live, ["TSPLUGIN"]),
    "topicid_sweep": (t_topicid_sweep, ["TSPLUGIN"]),
}

if __name__ == "__main__":
    run(TESTS)
