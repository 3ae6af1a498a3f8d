#!/usr/bin/python3
"""test_replication.py — replication between tierbrokers (issue 10), with a
real etcd, three real tierbrokers (the real plugin, a shared file:// bucket)
and real clients (confluent-kafka; raw Produce frames where a client would
hide the broker's answer by retrying).

Scenarios (ctest `cluster.NAME`, label `cluster`):
  repl_kill_leaders  an idempotent acks=all producer writes continuously while
                     the leader of a partition (every third time the
                     controller) is SIGKILLed and restarted, again and again;
                     every acknowledged record is read back exactly once and in
                     order per partition, cold (tiered) data included
  repl_isr           followers frozen (shorter than their session): the leader
                     shrinks the ISR (seen in Metadata), acks=all answers
                     NOT_ENOUGH_REPLICAS, an acks=1 record stays invisible to
                     consumers (HW); thawed, they catch up, the ISR expands and
                     the record becomes visible
  repl_sigstop       the leader frozen past its session timeout: a new leader is
                     elected; what the old one appended alone diverges; a
                     Produce queued to it answers an error (nothing acknowledged
                     after fencing); thawed, it rejoins as follower and truncates
  repl_wipe          a follower's data dir wiped: it restarts its local log at the
                     leader's local log start (> 0, admin endpoint), re-enters
                     the ISR, leads again as preferred replica, and consumers read
                     from offset 0 through the bucket
  repl_consumer_failover
                     a consumer reads on across a SIGKILLed leader (Fetch with
                     its leader epoch to the new leader; auto.offset.reset =
                     error makes any position reset fail the test): every record
                     once, in order. (librdkafka >= 2.1 also validates with
                     OffsetForLeaderEpoch; Debian's 2.0.2 does not, so that API
                     is exercised here by the followers.)
  repl_not_enough    two of three brokers down, the topic's min.insync.replicas 2
                     (broker default 1): acks=all answers NOT_ENOUGH_REPLICAS; back
                     up, writes resume
  repl_dup_failover  raw idempotent Produce frames: a retried batch is answered
                     with no error, its original base offset and the log start,
                     by its leader and by the next two after SIGKILLs; none is
                     appended twice, a gap is OUT_OF_ORDER_SEQUENCE_NUMBER
"""
import json
import os
import socket
import struct
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import (  # noqa: E402
    AckedWrites, Cluster, Fail, check, ck, free_port, run, wait_until)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "broker"))
from test_broker import raw_request, raw_response, record_batch  # noqa: E402

TOPIC = "repl"
NOT_LEADER_OR_FOLLOWER = 6
REQUEST_TIMED_OUT = 7
NOT_ENOUGH_REPLICAS = 19
NOT_ENOUGH_REPLICAS_AFTER_APPEND = 20
FENCED_LEADER_EPOCH = 74
UNKNOWN_LEADER_EPOCH = 75

# Small segments and local retention so most data is tiered; a short lag
# time so ISR changes happen within a test.
BASE = {"min.insync.replicas": "2", "replica.lag.time.max.ms": "4000",
        "log.segment.bytes": "32768", "log.local.retention.bytes": "98304",
        "remote.log.manager.task.interval.ms": "500"}


def new_cluster(extra=None, session_ms=2000, admin=False):
    cfg = dict(BASE)
    cfg.update(extra or {})
    node_extra = None
    if admin:
        node_extra = {i: {"admin.listeners": "http://127.0.0.1:%d" % free_port()}
                      for i in (1, 2, 3)}
    c = Cluster(3, session_ms=session_ms, extra=cfg, node_extra=node_extra)
    c.wait_registered()
    return c


def full_isr(c, topic, nparts, n=3):
    """Every partition led by a live broker with all n replicas in its ISR."""
    def ok():
        sts = [c.pstate(topic, p) for p in range(nparts)]
        if any(s is None or s["leader"] < 0 or len(s["isr"]) < n for s in sts):
            return None
        return sts
    return wait_until(ok, 90, "full ISR of every partition of %s" % topic)


def one_partition(c, n):
    """TOPIC with one partition on all three brokers, n acknowledged records."""
    c.create_topic(TOPIC, partitions=1, rf=3)
    full_isr(c, TOPIC, 1)
    w = AckedWrites(c.bootstrap, TOPIC)
    w.produce(n)
    return w


def md_isr(c, topic, p):
    """The ISR of topic-p as Metadata answers it (confluent-kafka)."""
    md = c.metadata(topic)
    return sorted(md.topics[topic].partitions[p].isrs)


def produce_raw(node, topic, partition, value, acks=-1, timeout_ms=5000, sock=None, corr=1):
    """One Produce v3 frame to one broker (no routing, no retry); returns
    (error, base_offset). With sock given, only sends (returns None)."""
    batch = record_batch(-1, -1, -1, value)
    body = struct.pack(">hhi", -1, acks, timeout_ms)
    body += struct.pack(">ih", 1, len(topic)) + topic.encode()
    body += struct.pack(">ii", 1, partition) + struct.pack(">i", len(batch)) + batch
    own = sock is None
    s = sock or socket.create_connection(("127.0.0.1", node.port), timeout=30)
    try:
        raw_request(s, 0, 3, corr, body)
        if not own:
            return None
        return read_produce(s)
    finally:
        if own:
            s.close()


def read_produce(s):
    r = raw_response(s)
    check(r is not None, "connection closed before the Produce answer")
    pos = 8
    (tl,) = struct.unpack(">h", r[pos:pos + 2])
    pos += 2 + tl + 4
    _part, err, base = struct.unpack(">ihq", r[pos:pos + 14])
    return err, base


def produce_idem(node, topic, pid, seq, value, timeout_ms=30000, deadline_s=60):
    """One idempotent batch (one record, producer epoch 0) as Produce v7,
    acks=all, to one broker; while it answers NOT_LEADER_OR_FOLLOWER (its
    role still being applied) or a timeout, sent again, as a client would.
    Returns (error, base_offset, log_start_offset)."""
    batch = record_batch(pid, 0, seq, value)
    body = struct.pack(">hhi", -1, -1, timeout_ms)
    body += struct.pack(">ih", 1, len(topic)) + topic.encode()
    body += struct.pack(">ii", 1, 0) + struct.pack(">i", len(batch)) + batch
    end = time.time() + deadline_s
    while True:
        with socket.create_connection(("127.0.0.1", node.port), timeout=60) as s:
            raw_request(s, 0, 7, seq + 1, body)
            r = raw_response(s)
        check(r is not None, "connection closed before the Produce answer")
        pos = 8
        (tl,) = struct.unpack(">h", r[pos:pos + 2])
        pos += 2 + tl + 4
        _part, err, base, _lat, log_start = struct.unpack(">ihqqq", r[pos:pos + 30])
        if err not in (NOT_LEADER_OR_FOLLOWER, REQUEST_TIMED_OUT) or time.time() > end:
            return err, base, log_start
        time.sleep(0.2)


def watermarks(c, topic, p):
    cons = ck.Consumer({"bootstrap.servers": c.bootstrap, "group.id": "wm-%d" % time.time_ns()})
    try:
        return cons.get_watermark_offsets(ck.TopicPartition(topic, p), timeout=10)
    finally:
        cons.close()


def bucket_segments(c):
    n = 0
    for root, _dirs, files in os.walk(c.bucket):
        n += sum(1 for f in files if f.endswith(".zst") or ".log" in f)
    return n


class Writer(threading.Thread):
    """An idempotent acks=all producer writing continuously until stopped."""

    def __init__(self, c, topic):
        super().__init__(daemon=True)
        self.w = AckedWrites(c.bootstrap, topic, {"message.timeout.ms": 120000},
                             count_implicit=True)
        self.stop_ev = threading.Event()
        self.err = None

    def run(self):
        try:
            while not self.stop_ev.is_set():
                self.w.produce(50, flush=False, pause=0.0005)
                self.w.p.poll(0.01)
        except Exception as e:  # noqa: BLE001 - reported by finish()
            self.err = e

    def finish(self):
        self.stop_ev.set()
        self.join(60)
        check(self.err is None, "writer failed: %s" % self.err)
        self.w.flush(180)
        check(not self.w.failed, "records failed: %s" % list(self.w.failed.items())[:3])
        return self.w


def acked_count(w):
    return len(w.w.acked)


# ------------------------------------------------------------------ scenarios


def t_repl_kill_leaders():
    with new_cluster() as c:
        c.create_topic(TOPIC, partitions=3, rf=3)
        full_isr(c, TOPIC, 3)
        wr = Writer(c, TOPIC)
        wr.start()
        wait_until(lambda: acked_count(wr) > 2000, 60, "first acknowledged writes")
        kills = 0
        for i in range(17):
            if i % 3 == 2:
                victim = c.node(c.controller()[0])
            else:
                victim = c.leader_of(TOPIC, i % 3)
            before = acked_count(wr)
            victim.kill9()
            kills += 1
            c.wait_leaders(TOPIC, 3, exclude=(victim.id,))
            victim.start()
            c.wait_registered()
            full_isr(c, TOPIC, 3)
            wait_until(lambda: acked_count(wr) > before + 500, 90,
                       "writes acknowledged after kill %d (broker %d)" % (kills, victim.id))
        w = wr.finish()
        check(bucket_segments(c) > 0, "nothing was tiered")
        n = w.verify(timeout=180)
        check(n > 10000, "only %d records acknowledged" % n)
        # A delivery without an offset is librdkafka's own (implicit ack,
        # DUPLICATE_SEQUENCE_NUMBER), never a broker's success answer without
        # a base offset (repl_dup_failover: a retry is answered with its offset).
        no_offset = sum(1 for _, o in w.acked.values() if o is None)
        check(w.implicit.dupseq == 0, "%d DUPLICATE_SEQUENCE_NUMBER answers: the broker answers "
              "a retried batch with its offset" % w.implicit.dupseq)
        check(no_offset <= w.implicit.implicit,
              "%d deliveries without an offset, only %d implicitly acked by librdkafka: the "
              "broker answered a Produce without a base offset" % (no_offset, w.implicit.implicit))
        print("  %d kills, %d acknowledged records verified (%d delivered without an offset, "
              "%d implicitly acked by librdkafka), %d tiered objects" %
              (kills, n, no_offset, w.implicit.implicit, bucket_segments(c)))


def t_repl_isr():
    # Sessions far longer than the freeze: the ISR shrinks by the leader's
    # lag rule, not because the controller saw the brokers die.
    with new_cluster({"replica.lag.time.max.ms": "8000"}, session_ms=30000) as c:
        w = one_partition(c, 200)
        leader = c.leader_of(TOPIC, 0)
        followers = [n for n in c.nodes.values() if n.id != leader.id]
        wait_until(lambda: md_isr(c, TOPIC, 0) == [1, 2, 3], 30, "ISR of 3 in Metadata")
        for f in followers:
            f.sigstop()
        try:
            err, off = produce_raw(leader, TOPIC, 0, b"acks-one", acks=1)
            check(err == 0, "acks=1 produce with frozen followers: error %d" % err)
            # Within replica.lag.time.max.ms the ISR still names the frozen
            # followers: the HW stays below the record.
            lo, hi = watermarks(c, TOPIC, 0)
            check(hi <= off, "consumers see offset %d (HW %d) before the ISR has it" % (off, hi))
            wait_until(lambda: md_isr(c, TOPIC, 0) == [leader.id], 30,
                       "the leader shrinking the ISR to itself in Metadata")
            err, _ = produce_raw(leader, TOPIC, 0, b"acks-all", acks=-1)
            check(err == NOT_ENOUGH_REPLICAS,
                  "acks=all with ISR 1 < min.insync.replicas 2: error %d" % err)
        finally:
            for f in followers:
                f.sigcont()
        wait_until(lambda: md_isr(c, TOPIC, 0) == [1, 2, 3], 60,
                   "followers caught up and back in the ISR (Metadata)")
        wait_until(lambda: watermarks(c, TOPIC, 0)[1] > off, 30,
                   "the acks=1 record visible once replicated")
        err, _ = produce_raw(leader, TOPIC, 0, b"acks-all-again", acks=-1)
        check(err == 0, "acks=all with the ISR back: error %d" % err)
        w.produce(200)
        w.verify()


def t_repl_sigstop():
    with new_cluster(session_ms=6000) as c:
        w = one_partition(c, 300)
        old = c.leader_of(TOPIC, 0)
        epoch0 = c.pstate(TOPIC, 0)["leader_epoch"]
        followers = [n for n in c.nodes.values() if n.id != old.id]
        # Records only the old leader has: followers frozen (briefly, within
        # their session) while it appends with acks=1.
        for f in followers:
            f.sigstop()
        # Their parked Fetches (replica.fetch.wait.max.ms, 500 ms) are answered
        # empty before the appends, so no answer carries the records to them.
        time.sleep(1.5)
        try:
            for i in range(5):
                err, _ = produce_raw(old, TOPIC, 0, b"diverging-%d" % i, acks=1)
                check(err == 0, "acks=1 produce to the leader: error %d" % err)
        finally:
            old.sigstop()
            for f in followers:
                f.sigcont()
        # Fenced: a new leader at a higher epoch.
        st = wait_until(lambda: (lambda s: s if s and s["leader"] not in (-1, old.id) and
                                 s["leader_epoch"] > epoch0 else None)(c.pstate(TOPIC, 0)),
                        60, "a new leader while broker %d is frozen" % old.id)
        # A Produce queued to the frozen old leader is answered only after it
        # thaws, and must not be acknowledged.
        s = socket.create_connection(("127.0.0.1", old.port), timeout=60)
        produce_raw(old, TOPIC, 0, b"to-the-fenced-leader", acks=-1, timeout_ms=3000, sock=s)
        # More writes meanwhile (the same producer: one producer id); those it
        # had queued to the frozen leader are retried at the new one once that
        # one refuses them, after the thaw.
        w.produce(300, flush=False)
        old.sigcont()
        err, _ = read_produce(s)
        s.close()
        check(err in (NOT_LEADER_OR_FOLLOWER, REQUEST_TIMED_OUT, NOT_ENOUGH_REPLICAS),
              "the fenced leader answered acks=all with error %d" % err)
        w.flush()
        full_isr(c, TOPIC, 1)
        wait_until(lambda: "truncat" in old.log(), 60,
                   "broker %d truncating its diverged records" % old.id)
        w.produce(100)
        w.verify()
        got = w.read_all()
        values = [k for recs in got.values() for _, k in recs]
        check(len(values) == len(w.acked),
              "%d records read, %d acknowledged: the diverged or fenced records survived" %
              (len(values), len(w.acked)))
        print("  new leader %d at epoch %d" % (st["leader"], st["leader_epoch"]))


def admin_partition(node, topic, p):
    url = node.extra["admin.listeners"] + "/v1/partitions/%s/%d" % (topic, p)
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def t_repl_wipe():
    with new_cluster(admin=True) as c:
        c.create_topic(TOPIC, partitions=3, rf=3)
        full_isr(c, TOPIC, 3)
        # Small batches: segments roll (a batch never spans two segments).
        w = AckedWrites(c.bootstrap, TOPIC, {"batch.num.messages": 100})
        w.produce(30000)
        assignment = c.topic_assignment(TOPIC)
        victim = c.node(assignment[0][0])  # the preferred replica of partition 0
        wait_until(lambda: admin_partition(c.leader_of(TOPIC, 1), TOPIC, 1)
                   ["local_start_offset"] > 0 or
                   admin_partition(c.leader_of(TOPIC, 0), TOPIC, 0)["local_start_offset"] > 0,
                   90, "local retention past tiered segments")
        victim.kill9()
        c.wait_leaders(TOPIC, 3, exclude=(victim.id,))
        w.produce(5000)
        victim.wipe()
        victim.start()
        c.wait_registered()
        full_isr(c, TOPIC, 3)
        starts = {p: admin_partition(victim, TOPIC, p)["local_start_offset"] for p in range(3)}
        check(any(v > 0 for v in starts.values()),
              "the wiped broker fetched from offset 0: local starts %s" % starts)
        # Preferred-leader balancing hands partition 0 back to it.
        wait_until(lambda: c.pstate(TOPIC, 0)["leader"] == victim.id, 60,
                   "broker %d leading partition 0 again" % victim.id)
        w.produce(1000)
        n = w.verify(timeout=180)
        print("  wiped broker local starts %s, %d records verified" % (starts, n))


def t_repl_wipe_all():
    """Every broker's data dir wiped at once: the cluster comes back from etcd
    and the bucket alone. Every acknowledged record below the leaders' local
    log start (so only in the bucket, the tail above being lost with every
    disk) reads back exactly once and in order, and new writes continue after
    the tiered offsets without reusing one."""
    with new_cluster(admin=True) as c:
        c.create_topic(TOPIC, partitions=2, rf=3)
        full_isr(c, TOPIC, 2)
        w = AckedWrites(c.bootstrap, TOPIC, {"batch.num.messages": 100})
        w.produce(20000)

        def starts():
            return {p: admin_partition(c.leader_of(TOPIC, p), TOPIC, p)["local_start_offset"]
                    for p in range(2)}
        tiered = wait_until(lambda: (lambda s: s if all(v > 0 for v in s.values()) else None)(
            starts()), 120, "both leaders' local logs starting past tiered segments")
        for n in c.nodes.values():
            n.kill9()
        for n in c.nodes.values():
            n.wipe()
            check(not os.listdir(n.data), "data dir of broker %d not empty" % n.id)
        for n in c.nodes.values():
            n.start()
        c.wait_registered()
        c.wait_leaders(TOPIC, 2)
        want = {k: po for k, po in w.acked.items() if po[1] < tiered[po[0]]}
        total = len(w.acked)
        w.acked = want  # read_all reads up to these: the tail above went with the disks
        got = w.read_all(timeout=180)
        seen = {}
        for p, recs in got.items():
            for off, k in recs:
                check(k not in seen, "record %s read twice" % k)
                seen[k] = (p, off)
        check(len(want) > 1000, "only %d records were tiered before the wipe" % len(want))
        for k, (p, o) in sorted(want.items()):
            check(seen.get(k) == (p, o), "tiered record %s (p%d@%d) after the wipe: %r" %
                  (k, p, o, seen.get(k)))
        for p, recs in got.items():
            keys = [k for _, k in recs if k in want]
            check(keys == sorted(keys), "partition %d: tiered records out of order" % p)
        ends = {p: max([o for o, _ in got[p]] or [-1]) for p in got}
        after = AckedWrites(c.bootstrap, TOPIC)
        after.produce(200)
        for k, (p, o) in after.acked.items():
            check(o > ends[p], "new record %s at p%d@%d reuses an offset at or below %d" %
                  (k, p, o, ends[p]))
        print("  %d tiered records of %d read back after every disk was wiped (local starts %s)"
              % (len(want), total, tiered))


def t_repl_not_enough():
    # The broker default is 1 here: the topic's own min.insync.replicas 2 refuses.
    with new_cluster({"min.insync.replicas": "1"}, session_ms=2000) as c:
        c.create_topic(TOPIC, partitions=1, rf=3, config={"min.insync.replicas": "2"})
        full_isr(c, TOPIC, 1)
        w = AckedWrites(c.bootstrap, TOPIC)
        w.produce(100)
        leader = c.leader_of(TOPIC, 0)
        down = [n for n in c.nodes.values() if n.id != leader.id]
        for n in down:
            n.kill9()
        wait_until(lambda: len(c.pstate(TOPIC, 0)["isr"]) == 1, 60, "ISR of one")

        def refused():
            err, _ = produce_raw(leader, TOPIC, 0, b"x", acks=-1, timeout_ms=2000)
            return err == NOT_ENOUGH_REPLICAS
        wait_until(refused, 30, "NOT_ENOUGH_REPLICAS with 2 of 3 brokers down")
        err, _ = produce_raw(leader, TOPIC, 0, b"one", acks=1)
        check(err == 0, "acks=1 with one broker: error %d" % err)
        for n in down:
            n.start()
        c.wait_registered()
        full_isr(c, TOPIC, 1)
        wait_until(lambda: produce_raw(c.leader_of(TOPIC, 0), TOPIC, 0, b"y")[0] == 0, 60,
                   "acks=all accepted again")
        w.produce(100)
        w.verify()


def t_repl_consumer_failover():
    with new_cluster(session_ms=2000) as c:
        w = one_partition(c, 4000)
        cons = ck.Consumer({"bootstrap.servers": c.bootstrap, "group.id": "failover",
                            "enable.auto.commit": False, "auto.offset.reset": "error",
                            "topic.metadata.refresh.interval.ms": 500})
        cons.assign([ck.TopicPartition(TOPIC, 0, ck.OFFSET_BEGINNING)])
        got = []

        def take(until, timeout):
            deadline = time.time() + timeout
            while len(got) < until and time.time() < deadline:
                for m in cons.consume(200, 0.5):
                    check(not m.error() or m.error().code() == ck.KafkaError._PARTITION_EOF,
                          "consumer error: %s" % (m.error(),))
                    if not m.error():
                        got.append((m.offset(), m.key().decode()))
            return len(got) >= until
        check(take(1500, 60), "first half not read: %d records" % len(got))
        old = c.leader_of(TOPIC, 0)
        old.kill9()
        c.wait_leaders(TOPIC, 1, exclude=(old.id,))
        w.produce(1000)
        old.start()
        n = len(w.acked)
        check(take(n, 120), "read %d of %d records across the failover" % (len(got), n))
        cons.close()
        keys = [k for _, k in got]
        check(len(set(keys)) == len(keys), "a record was read twice (the position was reset)")
        check(keys == sorted(keys), "records out of order")
        check(set(keys) == set(w.acked), "read %d records, %d acknowledged" %
              (len(set(keys)), len(w.acked)))


def _uvarint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def epoch_query(node, topic, partition, leader_epoch, current_epoch=-1, replica_id=-1):
    """OffsetForLeaderEpoch v4 (flexible) to one broker, as a client sends it
    (KIP-320: replica_id -1): (error, leader_epoch, end_offset)."""
    t = topic.encode()
    body = struct.pack(">i", replica_id) + _uvarint(2) + _uvarint(len(t) + 1) + t
    body += _uvarint(2) + struct.pack(">iii", partition, current_epoch, leader_epoch)
    body += b"\x00" + b"\x00" + b"\x00"  # partition, topic, request tags
    with socket.create_connection(("127.0.0.1", node.port), timeout=30) as s:
        raw_request(s, 23, 4, 9, body, flexible=True)
        r = raw_response(s)
    check(r is not None, "broker %d closed the connection" % node.id)
    pos = 4 + 1 + 4 + 1  # correlation id, header tags, throttle, topics (1)
    (tl,) = struct.unpack_from(">b", r, pos)
    pos += 1 + (tl - 1) + 1  # name, partitions (1)
    err, _p, epoch, end = struct.unpack_from(">hiiq", r, pos)
    return err, epoch, end


def t_repl_epoch_client():
    """OffsetForLeaderEpoch from a client (a consumer's truncation check):
    the leader answers each epoch's end offset (the first offset written at a
    later epoch), the current epoch's is the log end; an epoch before the first
    one answers the earliest epoch known; a follower answers
    NOT_LEADER_OR_FOLLOWER; CurrentLeaderEpoch older than the leader's is
    FENCED_LEADER_EPOCH, newer UNKNOWN_LEADER_EPOCH."""
    with new_cluster(session_ms=2000) as c:
        w = one_partition(c, 30)
        first = c.leader_of(TOPIC, 0)
        first.kill9()
        st = c.wait_leaders(TOPIC, 1, exclude=(first.id,))[0]
        w.produce(20)
        lead = c.leader_of(TOPIC, 0)
        e1 = st["leader_epoch"]
        check(e1 >= 1, "leader epoch %d after a failover" % e1)
        err, ep, end = epoch_query(lead, TOPIC, 0, 0, e1)
        check((err, ep, end) == (0, 0, 30), "epoch 0 answered %s, want (0, 0, 30)" %
              ((err, ep, end),))
        err, ep, end = epoch_query(lead, TOPIC, 0, e1, e1)
        check((err, ep, end) == (0, e1, 50), "epoch %d answered %s, want (0, %d, 50)" %
              (e1, (err, ep, end), e1))
        follower = next(n for n in c.nodes.values() if n.alive() and n.id != lead.id)
        check(epoch_query(follower, TOPIC, 0, 0)[0] == NOT_LEADER_OR_FOLLOWER,
              "a follower answered a client's OffsetForLeaderEpoch")
        check(epoch_query(lead, TOPIC, 0, 0, e1 - 1)[0] == FENCED_LEADER_EPOCH,
              "a stale CurrentLeaderEpoch was not fenced")
        check(epoch_query(lead, TOPIC, 0, 0, e1 + 5)[0] == UNKNOWN_LEADER_EPOCH,
              "a newer CurrentLeaderEpoch was not UNKNOWN_LEADER_EPOCH")
        first.start()
        check(w.verify(60) == 50, "records lost")


def t_repl_dup_failover():
    """A retried idempotent batch is answered as Kafka does — no error, the
    original batch's base offset and the log start offset — by the leader
    that appended it and by each new leader after a SIGKILL (their producer
    state rebuilt from the replicated log); nothing is appended twice. The
    question behind it: does the broker ever answer base offset -1 with no
    error (librdkafka would report the delivery without an offset)?"""
    pid, topic = 424242, "dup"
    with new_cluster() as c:
        c.create_topic(topic, partitions=1, rf=3)
        full_isr(c, topic, 1)
        lead = c.leader_of(topic, 0)
        values = [b"dup-%d" % i for i in range(5)]

        def send(node, seq, want_base, what):
            err, base, log_start = produce_idem(node, topic, pid, seq, values[seq])
            check((err, base) == (0, want_base) and log_start == 0,
                  "%s (seq %d, broker %d): error %d base %d log start %d, want error 0 "
                  "base %d log start 0" % (what, seq, node.id, err, base, log_start, want_base))

        for seq in range(3):
            send(lead, seq, seq, "first send")
        send(lead, 2, 2, "retry to the leader that appended it")
        for kill in range(2):
            lead.kill9()
            c.wait_leaders(topic, 1, exclude=(lead.id,))
            old, lead = lead, c.leader_of(topic, 0)
            # In Kafka's window (the producer's last 5 batches), oldest first
            # as a client resends its in-flight batches.
            for seq in range(kill + 1, kill + 3):
                send(lead, seq, seq, "retry after failover %d" % (kill + 1))
            send(lead, kill + 3, kill + 3, "next batch after failover %d" % (kill + 1))
            old.start()
            full_isr(c, topic, 1)
        err, _, _ = produce_idem(lead, topic, pid, 7, b"gap")
        check(err == 45, "a sequence gap answered %d, want OUT_OF_ORDER_SEQUENCE_NUMBER 45" % err)
        check(watermarks(c, topic, 0) == (0, 5), "watermarks %r, want (0, 5): a retried "
              "batch was appended again" % (watermarks(c, topic, 0),))


TESTS = {
    "repl_kill_leaders": (t_repl_kill_leaders, ["TSPLUGIN"]),
    "repl_isr": (t_repl_isr, ["TSPLUGIN"]),
    "repl_sigstop": (t_repl_sigstop, ["TSPLUGIN"]),
    "repl_wipe": (t_repl_wipe, ["TSPLUGIN"]),
    "repl_consumer_failover": (t_repl_consumer_failover, ["TSPLUGIN"]),
    "repl_not_enough": (t_repl_not_enough, ["TSPLUGIN"]),
    "repl_wipe_all": (t_repl_wipe_all, ["TSPLUGIN"]),
    "repl_epoch_client": (t_repl_epoch_client, ["TSPLUGIN"]),
    "repl_dup_failover": (t_repl_dup_failover, ["TSPLUGIN"]),
}

if __name__ == "__main__":
    run(TESTS)
