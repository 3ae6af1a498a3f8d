#!/usr/bin/python3
"""test_topic_delete.py — durable topic deletes in a cluster (Kafka's
ZooKeeper-era /admin/delete_topics/<t>, here deletes/<t> in etcd; broker/
cluster_delete.c), with a real etcd, three real tierbrokers (the real plugin,
a shared file:// bucket) and confluent-kafka.

Both incarnations of a name share the bucket's <topic>/<partition>/ keys, so
the old one's objects must be gone before the name is created again.

Scenarios (ctest `cluster.NAME`, label `cluster`):
  delete_replicas_down  a topic whose every replica is SIGKILLed is deleted
                        through the one broker left, which holds no replica:
                        the marker is written with the delete, the controller
                        empties the partition's bucket prefix and removes the
                        marker; the re-created name reads back only its own
                        records (before: the old manifest was recovered into it)
  delete_recreate       a re-create right after the delete is refused
                        (THROTTLING_QUOTA_EXCEEDED, "marked for deletion"; and
                        CreatePartitions) while a frozen replica has not
                        confirmed its local delete; once it runs again the
                        re-create succeeds and every acks=all record of the
                        new incarnation reads back, none of the old
  delete_during_opens   40 topics deleted while their replicas still open
                        (created with operation timeout 0): re-created, every
                        replica opens (none stays open in the storage from the
                        deleted incarnation), takes an acks=all record and reads
                        it back
  delete_controller_killed
                        the controller SIGKILLed while a marker is pending
                        (a frozen replica had not confirmed): once the replica
                        confirms, the next controller finishes the delete
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import AckedWrites, Cluster, check, ck, run, wait_until  # noqa: E402
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic  # noqa: E402
from test_replication import full_isr  # noqa: E402
from test_topic_id import BASE, bucket_objects, produce, read_partition  # noqa: E402

MARKED = ck.KafkaError.THROTTLING_QUOTA_EXCEEDED


def marker(c, topic):
    v = c.etcd.get("deletes/" + topic)
    return v[0] if v else None


def tiered(c, topic, p):
    """The partition has a manifest head and a segment object in the bucket."""
    objs = bucket_objects(c, topic, p)
    return any(o.startswith("manifests/") for o in objs) and \
        any(o.startswith("segments/") for o in objs)


def old_incarnation(c, topic, rf):
    """topic with one partition on rf brokers holding old-0..old-2999
    (acks=all), tiered to the bucket; returns its topic id."""
    c.wait_registered()
    c.create_topic(topic, partitions=1, rf=rf)
    full_isr(c, topic, 1, n=rf)
    produce(c.bootstrap, topic, "old", 3000, 1)
    wait_until(lambda: tiered(c, topic, 0), 60, "the old incarnation tiered to the bucket")
    return c.etcd.get("topics/" + topic)[0]["id"]


def delete_now(c, topic):
    """DeleteTopics with operation timeout 0: answered once etcd deleted it."""
    a = AdminClient(c.conf())
    a.delete_topics([topic], operation_timeout=0, request_timeout=30)[topic].result(40)


def create_once(c, topic, partitions, rf):
    """One CreateTopics; None on success, else the KafkaError."""
    a = AdminClient(c.conf())
    f = a.create_topics([NewTopic(topic, partitions, rf)], operation_timeout=30,
                        request_timeout=35)[topic]
    try:
        f.result(45)
        return None
    except ck.KafkaException as e:
        return e.args[0]


def create_when_deleted(c, topic, partitions, rf, timeout=90):
    """Creates topic, retrying while its old incarnation is being deleted;
    returns how many times it was refused so."""
    refused, deadline = 0, time.time() + timeout
    while True:
        err = create_once(c, topic, partitions, rf)
        if err is None:
            return refused
        check(err.code() == MARKED and time.time() < deadline,
              "re-creating %s: %s (refused %d times before)" % (topic, err, refused))
        refused += 1
        time.sleep(0.3)


def check_only_new(c, bootstrap, topic, n):
    got = read_partition(bootstrap, topic, 0)
    old = [v for _, v in got if not v.startswith("new-")]
    check(not old, "the re-created %s serves %d record(s) of the old incarnation, first %s" %
          (topic, len(old), old[:3]))
    want = [(i, "new-%d" % i) for i in range(n)]
    check(got == want, "read %d records of the re-created %s, want new-0..new-%d at offsets "
          "0..%d; first differing: %s" % (len(got), topic, n - 1, n - 1,
                                          next(((g, w) for g, w in zip(got, want) if g != w),
                                               None)))


def t_delete_replicas_down():
    topic = "tdown"
    with Cluster(3, extra=BASE) as c:
        old_id = old_incarnation(c, topic, 2)
        replicas = c.topic_assignment(topic)[0]
        survivor = next(n for n in c.nodes.values() if n.id not in replicas)
        for i in replicas:
            c.node(i).kill9()
        c.wait_registered([survivor.id])  # their leases gone: nothing runs the old replicas
        rev = c.etcd.revision()
        c.delete_topic(topic)  # answered once the delete is complete
        check(marker(c, topic) is None, "deletes/%s still there after DeleteTopics answered" %
              topic)
        left = bucket_objects(c, topic, 0)
        check(not left, "the bucket still holds %d object(s) of the old incarnation: %s" %
              (len(left), left[:3]))
        events = c.etcd.history("deletes/" + topic, rev + 1)
        puts = [e for e in events if e[0] == "PUT"]
        dels = [e for e in events if e[0] == "DELETE"]
        check(puts and puts[0][2] == {"id": old_id, "partitions": 1, "pending": replicas} and
              dels and dels[-1][3] > puts[0][3],
              "deletes/%s history: %s, want a put of the marker, then its delete" % (topic, events))
        gone = [e for e in c.etcd.history("topics/" + topic, rev + 1) if e[0] == "DELETE"]
        check(gone and gone[0][3] == puts[0][3], "topics/%s deleted at %s, the marker written at "
              "%d: not one txn" % (topic, gone, puts[0][3]))
        c.create_topic(topic, partitions=1, rf=1)
        c.wait_leaders(topic, 1)
        produce(survivor.bootstrap, topic, "new", 500, 1)
        check_only_new(c, survivor.bootstrap, topic, 500)
        print("  deleted with replicas %s down: broker %d emptied the bucket prefix; the new "
              "incarnation holds only its 500 records" % (replicas, survivor.id))


def t_delete_recreate():
    topic = "trecreate"
    # A long session: the frozen replica stays registered (live, unconfirmed)
    # for as long as the refusals are checked.
    with Cluster(3, session_ms=15000, extra=BASE) as c:
        old_incarnation(c, topic, 3)
        busy = (c.pstate(topic, 0)["leader"], c.controller()[0])
        frozen = c.node(next(i for i in (3, 2, 1) if i not in busy))
        frozen.sigstop()
        delete_now(c, topic)
        wait_until(lambda: (marker(c, topic) or {}).get("pending") == [frozen.id], 30,
                   "every running replica confirmed its local delete (marker %s)" %
                   marker(c, topic))
        err = create_once(c, topic, 1, 2)
        check(err is not None and err.code() == MARKED and "marked for deletion" in err.str(),
              "CreateTopics while the delete is pending answered %s" % err)
        a = AdminClient(c.conf())  # kept referenced: a destroyed client fails its futures
        grow = a.create_partitions([NewPartitions(topic, 2)], request_timeout=30)[topic]
        try:
            grow.result(40)
            check(False, "CreatePartitions accepted while the delete is pending")
        except ck.KafkaException as e:
            check(e.args[0].code() == MARKED, "CreatePartitions while the delete is pending "
                  "answered %s" % e)
        check(c.etcd.get("topics/" + topic) is None, "the refused create wrote topics/%s" % topic)
        check(marker(c, topic) is not None, "the marker went while a replica was frozen")
        frozen.sigcont()
        refused = create_when_deleted(c, topic, 1, 3)
        check(marker(c, topic) is None, "created while deletes/%s is still there" % topic)
        full_isr(c, topic, 1)
        w = AckedWrites(c.bootstrap, topic, {"enable.idempotence": False})
        w.produce(2000)
        n = w.verify()
        old = [v for _, v in read_partition(c.bootstrap, topic, 0) if v.startswith("old-")]
        check(not old, "the re-created %s serves %d old record(s), first %s" %
              (topic, len(old), old[:3]))
        print("  re-create refused 1 + %d time(s) while broker %d was frozen, then created; %d "
              "acks=all records read back, none of the old" % (refused, frozen.id, n))


def t_delete_controller_killed():
    topic = "tctl"
    # A session long enough that the frozen replica keeps its lease while frozen.
    with Cluster(3, session_ms=10000, extra=BASE) as c:
        old_incarnation(c, topic, 3)
        ctl = c.node(c.controller()[0])
        frozen = c.node(next(i for i in (3, 2, 1) if i != ctl.id))
        frozen.sigstop()
        delete_now(c, topic)
        wait_until(lambda: (marker(c, topic) or {}).get("pending") == [frozen.id], 30,
                   "every running replica confirmed its local delete (marker %s)" %
                   marker(c, topic))
        ctl.kill9()
        # Its lease holds the controller key for a session more: the frozen
        # replica confirms meanwhile, so the marker waits on no live broker
        # and only a new controller can finish the delete.
        frozen.sigcont()
        wait_until(lambda: (marker(c, topic) or {}).get("pending") == [], 30,
                   "the frozen replica's confirmation (marker %s)" % marker(c, topic))
        check(c.controller()[0] == ctl.id, "the controller key moved on before the dead "
              "controller's lease expired: %s" % (c.controller(),))
        wait_until(lambda: marker(c, topic) is None, 60,
                   "a new controller finishing the delete (controller %s, marker %s)" %
                   (c.controller(), marker(c, topic)))
        check(c.controller()[0] not in (-1, ctl.id), "the marker went with no new controller: "
              "%s" % (c.controller(),))
        left = bucket_objects(c, topic, 0)
        check(not left, "the bucket still holds %d object(s) of the old incarnation: %s" %
              (len(left), left[:3]))
        c.create_topic(topic, partitions=1, rf=2)
        c.wait_leaders(topic, 1)
        produce(c.bootstrap, topic, "new", 500, 1)
        check_only_new(c, c.bootstrap, topic, 500)
        print("  controller %d killed with the delete pending; controller %d finished it" %
              (ctl.id, c.controller()[0]))


def log_count(c, text):
    return sum(n.log().count(text) for n in c.nodes.values())


def read_ends(bootstrap, topics, nparts, timeout=90):
    """{(topic, partition): [values]} of every partition read to its end."""
    cons = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": "td-%d" % time.time_ns(),
                        "enable.auto.commit": False, "enable.partition.eof": True})
    cons.assign([ck.TopicPartition(t, p, ck.OFFSET_BEGINNING) for t in topics
                 for p in range(nparts)])
    got, eof, deadline = {}, set(), time.time() + timeout
    while len(eof) < len(topics) * nparts and time.time() < deadline:
        for m in cons.consume(500, 0.5):
            if m.error() and m.error().code() == ck.KafkaError._PARTITION_EOF:
                eof.add((m.topic(), m.partition()))
            elif not m.error():
                got.setdefault((m.topic(), m.partition()), []).append(m.value().decode())
    cons.close()
    return got


def t_delete_during_opens():
    """Topics deleted while their replicas are still opening (a create with
    operation timeout 0, then at once a delete of many topics): an open that
    ends after the delete's reap used to leave its partitions open in the
    storage, so the re-created names' replicas failed their local reset on
    that broker ('is open') and stayed closed until a restart."""
    nparts, names = 2, ["tdo%02d" % i for i in range(40)]
    with Cluster(3, session_ms=10000, extra=BASE) as c:
        c.wait_registered()
        a = AdminClient(c.conf())  # kept referenced: a destroyed client fails its futures
        dropped = 0
        for _ in range(3):  # until some open was still running at the delete
            for f in a.create_topics([NewTopic(t, nparts, 3) for t in names],
                                     operation_timeout=0, request_timeout=60).values():
                f.result(70)
            for f in a.delete_topics(names, operation_timeout=60, request_timeout=70).values():
                f.result(80)
            dropped = log_count(c, "changed while its replicas opened")
            if dropped:
                break
        check(dropped, "no replica open was still running when its topic was deleted (3 "
              "rounds of 40 topics): the case this test is for did not happen")
        for t in names:
            create_when_deleted(c, t, nparts, 3)
        for t in names:
            full_isr(c, t, nparts)
        p = ck.Producer({"bootstrap.servers": c.bootstrap, "acks": "all",
                         "message.timeout.ms": 60000})
        errs = []
        for t in names:
            for q in range(nparts):
                p.produce(t, value=("new-%s-%d" % (t, q)).encode(), partition=q,
                          on_delivery=lambda e, m: errs.append((m.topic(), m.partition(), e))
                          if e else None)
        check(p.flush(90) == 0 and not errs, "acks=all writes to the re-created topics failed: "
              "%s" % errs[:3])
        got = read_ends(c.bootstrap, names, nparts)
        bad = [(t, q, got.get((t, q))) for t in names for q in range(nparts)
               if got.get((t, q)) != ["new-%s-%d" % (t, q)]]
        check(not bad, "%d re-created partitions do not read back exactly their one record: %s"
              % (len(bad), bad[:3]))
        closed = log_count(c, "stay closed") + log_count(c, "is open")
        check(not closed, "%d broker log line(s) say a re-created replica stayed closed or a "
              "partition of a deleted topic stayed open" % closed)
        print("  %d replica open(s) ended after their topic's delete; all %d re-created "
              "partitions replicate, take an acks=all record and read it back" %
              (dropped, len(names) * nparts))


TESTS = {
    "delete_during_opens": (t_delete_during_opens, ["TSPLUGIN"]),
    "delete_replicas_down": (t_delete_replicas_down, ["TSPLUGIN"]),
    "delete_recreate": (t_delete_recreate, ["TSPLUGIN"]),
    "delete_controller_killed": (t_delete_controller_killed, ["TSPLUGIN"]),
}

if __name__ == "__main__":
    run(TESTS)
