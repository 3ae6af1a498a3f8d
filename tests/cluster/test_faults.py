#!/usr/bin/python3
"""test_faults.py — failure paths of a cluster under real processes: a real
etcd, three real tierbrokers (the real plugin, a shared file:// bucket) and
real clients (confluent-kafka; raw frames where a client would hide the
broker's answer by retrying).

Scenarios (ctest `cluster.NAME`, label `cluster`):
  fault_follower_disk_full
                     every broker's log.dirs on its own small tmpfs; one
                     follower's filled up under a continuous idempotent acks=all
                     producer: it stays up and says "No space" in its log, the
                     leader drops it from the ISR, acks=all writes go on being
                     acknowledged by the other two (min.insync.replicas 2); once
                     the space is back it catches up and rejoins the ISR. Every
                     acknowledged record is read back record by record, then
                     once more from that follower alone, leading after the other
                     two were killed. Skipped (77) where tmpfs cannot be mounted
                     (needs root / CAP_SYS_ADMIN).
  fault_etcd_freeze_alter
                     CreatePartitions and IncrementalAlterConfigs with etcd
                     SIGSTOPped: REQUEST_TIMED_OUT naming the metadata store, the
                     brokers answer other requests meanwhile, and the topic is
                     changed wholly or not at all, every broker's view equal to
                     etcd's; then freezes landing inside requests in flight
                     (regression: a txn attempt that timed out but was applied
                     made the client's retry find its own write, and
                     CreatePartitions answered INVALID_PARTITIONS "already has
                     N partitions" for a grow that had happened)
  fault_sendfile_truncate
                     a consumer's Fetch answered by the leader as a file range
                     (zero copy), queued behind a reader that does not read; the
                     leader is frozen, deposed, thawed: it cuts its diverged tail
                     in the same segment file under the queued range and appends
                     the new leader's batches there. The answer still decodes to
                     exactly the acknowledged records, every batch's CRC-32C
                     holding. (With the high watermark bound removed from both
                     the broker's limit and read_file, the answer ends in the
                     new leader's bytes and the CRC check fails.)
No timing is asserted.
"""
import errno
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import AdminClient, Cluster, check, run, wait_until  # noqa: E402
from test_replication import BASE, TOPIC, Writer, acked_count, full_isr  # noqa: E402
from test_broker import raw_request, raw_response  # noqa: E402
from test_cluster_admin import describe_raw  # noqa: E402
from test_admin_configs import SET, incremental_request  # noqa: E402
from test_broker import crc32c  # noqa: E402
from test_fetch_sendfile import decode_batches, fetch_v4_records, paused_reader, \
    segment_fds  # noqa: E402
from test_replication import produce_raw  # noqa: E402
import confluent_kafka as ck  # noqa: E402

MiB = 1024 * 1024

REQUEST_TIMED_OUT = 7


# ------------------------------------------------------------- helpers


def mount_tmpfs(path, size):
    """A tmpfs of `size` at path; False when this process may not mount."""
    os.makedirs(path, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s" % size, "tmpfs", path],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return r.returncode == 0


def umount(path):
    # lazy: a broker killed a moment ago may still hold a descriptor there
    subprocess.run(["umount", "-l", path], stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def fill(path):
    """Writes a file at path until its filesystem has no byte left (ENOSPC);
    returns how many bytes it took."""
    n = 0
    with open(path, "wb", buffering=0) as f:
        for chunk in (1 << 20, 1 << 16, 4096, 512):
            b = b"\0" * chunk
            while True:
                try:
                    w = f.write(b)
                except OSError as e:
                    check(e.errno == errno.ENOSPC, "filling %s: %s" % (path, e))
                    break
                n += w or 0
                if not w:
                    break
    return n


def isr_of(c, topic, p):
    s = c.pstate(topic, p)
    return sorted(s["isr"]) if s else []


# ------------------------------------------------------------------ scenarios


def t_fault_follower_disk_full():
    c = Cluster(3, session_ms=2000, extra=BASE, start=False)
    mounted = []
    try:
        for n in c.nodes.values():
            if not mount_tmpfs(n.data, "48m"):
                print("SKIP fault_follower_disk_full: cannot mount a tmpfs here "
                      "(needs CAP_SYS_ADMIN)")
                sys.exit(77)
            mounted.append(n.data)
        with c:
            c.start()
            c.wait_registered()
            c.create_topic(TOPIC, partitions=1, rf=3)
            full_isr(c, TOPIC, 1)
            leader = c.leader_of(TOPIC, 0)
            victim = next(n for n in c.nodes.values() if n.id != leader.id)
            wr = Writer(c, TOPIC)
            wr.start()
            wait_until(lambda: acked_count(wr) > 1000, 60, "first acknowledged writes")
            filler = os.path.join(victim.data, "filler")
            took = fill(filler)
            wait_until(lambda: "No space" in victim.log(), 60,
                       "broker %d saying its disk is full" % victim.id)
            wait_until(lambda: victim.id not in isr_of(c, TOPIC, 0), 60,
                       "the leader dropping the full follower %d from the ISR" % victim.id)
            check(victim.alive(), "broker %d exited on a full disk:\n%s" %
                  (victim.id, victim.log()[-3000:]))
            # acks=all goes on with the other two (min.insync.replicas 2)
            at_drop = acked_count(wr)
            wait_until(lambda: acked_count(wr) > at_drop + 2000, 90,
                       "acks=all writes acknowledged with broker %d out of the ISR" % victim.id)
            check(not wr.w.failed, "records failed while the follower was full: %s" %
                  list(wr.w.failed.items())[:3])
            check(victim.id not in isr_of(c, TOPIC, 0),
                  "broker %d is back in the ISR with its disk still full" % victim.id)
            os.unlink(filler)
            wait_until(lambda: isr_of(c, TOPIC, 0) == [1, 2, 3], 90,
                       "broker %d catching up and rejoining the ISR" % victim.id)
            at_rejoin = acked_count(wr)
            wait_until(lambda: acked_count(wr) > at_rejoin + 500, 60,
                       "writes acknowledged after the rejoin")
            w = wr.finish()
            check(victim.alive(), "broker %d exited" % victim.id)
            n = w.verify(timeout=180)
            # The follower's own copy: it alone leads, then every acknowledged
            # record must be there.
            for o in c.nodes.values():
                if o.id != victim.id:
                    o.kill9()
            wait_until(lambda: c.pstate(TOPIC, 0)["leader"] == victim.id, 60,
                       "broker %d leading alone" % victim.id)
            check(w.verify(timeout=180, bootstrap=victim.bootstrap) == n,
                  "records acknowledged changed")
            print("  filler took %d bytes; %d records acknowledged (%d while broker %d was out "
                  "of the ISR), all read back from the cluster and from broker %d alone" %
                  (took, n, at_rejoin - at_drop, victim.id, victim.id))
    finally:
        for m in mounted:
            umount(m)
        if not os.environ.get("TS_KEEP_TEST_DIRS"):
            shutil.rmtree(c.root, ignore_errors=True)


def _s16(x):
    x = x.encode()
    return struct.pack(">h", len(x)) + x


def send_grow(node, topic, count, timeout_ms):
    """Sends CreatePartitions v0 (topic to count partitions) to this broker
    itself; returns the socket, read the answer with read_answer."""
    body = struct.pack(">i", 1) + _s16(topic) + struct.pack(">ii", count, -1)
    body += struct.pack(">ib", timeout_ms, 0)
    s = socket.create_connection(("127.0.0.1", node.port), timeout=60)
    raw_request(s, 37, 0, 11, body)
    return s


def send_alter(node, topic, key, value):
    """Sends IncrementalAlterConfigs v0 (SET key=value on the topic)."""
    s = socket.create_connection(("127.0.0.1", node.port), timeout=60)
    raw_request(s, 44, 0, 12, incremental_request([(2, topic, [(key, SET, value)])]))
    return s


def read_answer(s, api):
    """(error, message) of the one resource of a CreatePartitions (37) or
    IncrementalAlterConfigs (44) v0 answer on s."""
    r = raw_response(s)
    s.close()
    check(r is not None, "the broker closed the connection instead of answering")
    pos = 8  # correlation id, throttle
    (n,) = struct.unpack_from(">i", r, pos)
    pos += 4
    check(n == 1, "%d results in the answer" % n)
    if api == 37:  # name, error, message
        (nl,) = struct.unpack_from(">h", r, pos)
        pos += 2 + nl
    (err, ml) = struct.unpack_from(">hh", r, pos)
    pos += 4
    return err, (r[pos:pos + ml].decode() if ml >= 0 else None)


def metadata_ok(node, timeout=10):
    """Whether the broker answers a Metadata v1 (all topics) at all."""
    with socket.create_connection(("127.0.0.1", node.port), timeout=timeout) as s:
        raw_request(s, 3, 1, 5, struct.pack(">i", -1))
        return raw_response(s) is not None


def etcd_partitions(c, topic):
    return len(c.topic_assignment(topic))


def views_agree(c, topic, key):
    """Every broker's view of topic equals etcd's topics/<t>: the partition
    count in its Metadata, the value of key in its own DescribeConfigs.
    Returns (count, value) once they all do, else None."""
    v = c.etcd.get("topics/" + topic)[0]
    count, value = len(v["partitions"]), v.get("configs", {}).get(key)
    for n in c.nodes.values():
        md = AdminClient(c.conf(n.bootstrap)).list_topics(topic, timeout=5)
        if len(md.topics[topic].partitions) != count:
            return None
        err, got = describe_raw(n, topic)
        if err or got.get(key) != value:
            return None
    return count, value


class EtcdFrozen:
    """etcd SIGSTOPped for the block; SIGCONT at its end, failed or not."""

    def __init__(self, c):
        self.p = c.etcd.proc

    def __enter__(self):
        # SIGSTOP lands a moment after kill() returns: until every thread of
        # etcd shows stopped, a request sent now may still be answered (CI
        # saw a read get through, then the txn time out and apply on the
        # thaw, in a block meant to be frozen from its start).
        self.p.send_signal(signal.SIGSTOP)
        wait_until(self._stopped, 10, "etcd (pid %d) to stop" % self.p.pid)
        return self

    def _stopped(self):
        task = "/proc/%d/task" % self.p.pid
        try:
            states = []
            for t in os.listdir(task):
                with open(os.path.join(task, t, "stat")) as f:
                    states.append(f.read().rsplit(")", 1)[1].split()[0])
        except OSError:
            return False  # a thread ended meanwhile: look again
        return states and all(st in ("T", "t") for st in states)

    def __exit__(self, *exc):
        self.p.send_signal(signal.SIGCONT)


def t_fault_etcd_freeze_alter():
    """CreatePartitions and IncrementalAlterConfigs (read-modify-CAS of
    topics/<t>, broker/cluster_alter.c) with etcd frozen: the answer is
    REQUEST_TIMED_OUT naming the metadata store, the broker serves other
    requests meanwhile and after the thaw, and the topic ends up either fully
    changed or not at all, the same on every broker as in etcd. Then freezes
    that land while a request is in flight, at several points of it: each
    answer is success (and then the change is in etcd) or REQUEST_TIMED_OUT
    (and then it is there or not, but whole); never another error."""
    # Sessions longer than every freeze (a broker must not lose its lease),
    # one etcd call's budget 5 s (cluster.c: min(session, 5000)).
    with Cluster(3, session_ms=15000, extra={"min.insync.replicas": "2"}) as c:
        c.wait_registered()
        c.create_topic("fz", partitions=1, rf=3, config={"retention.ms": "600000"})
        c.wait_leaders("fz", 1)
        via = c.nodes[2]
        # 1. Frozen before the request: nothing is written.
        with EtcdFrozen(c):
            s = send_grow(via, "fz", 3, 30000)
            check(metadata_ok(c.nodes[1]) and metadata_ok(via),
                  "a broker did not answer Metadata with etcd frozen")
            err, msg = read_answer(s, 37)
            check(err == REQUEST_TIMED_OUT and "metadata store" in (msg or ""),
                  "CreatePartitions with etcd frozen answered %d (%s)" % (err, msg))
            print("  frozen grow: %d %s" % (err, msg))
            s = send_alter(via, "fz", "retention.ms", "700000")
            check(metadata_ok(via), "broker %d did not answer Metadata while an alter waited "
                  "for the frozen etcd" % via.id)
            err, msg = read_answer(s, 44)
            check(err == REQUEST_TIMED_OUT and "metadata store" in (msg or ""),
                  "IncrementalAlterConfigs with etcd frozen answered %d (%s)" % (err, msg))
            print("  frozen alter: %d %s" % (err, msg))
        got = wait_until(lambda: views_agree(c, "fz", "retention.ms"), 60,
                         "every broker's view of fz to equal etcd's")
        check(got == (1, "600000"), "a request answered REQUEST_TIMED_OUT before any etcd "
              "read changed the topic: %s" % (got,))
        for n in c.nodes.values():
            check(n.alive() and metadata_ok(n), "broker %d not serving after the thaw" % n.id)
        # 2. Freezes landing inside a request in flight.
        count, ret, outcomes = 1, 600000, []
        for i, delay in enumerate([0.0, 0.0005, 0.001, 0.0015, 0.002, 0.003, 0.004, 0.006,
                                   0.0, 0.0005, 0.001, 0.0015, 0.002, 0.003, 0.004, 0.006]):
            grow = i % 2 == 0
            if grow:
                s = send_grow(via, "fz", count + 1, 30000)
            else:
                s = send_alter(via, "fz", "retention.ms", str(ret + 1))
            time.sleep(delay)
            with EtcdFrozen(c):
                time.sleep(3)
            err, msg = read_answer(s, 37 if grow else 44)
            now = wait_until(lambda: views_agree(c, "fz", "retention.ms"), 60,
                             "every broker's view of fz to equal etcd's")
            new = (count + 1, str(ret)) if grow else (count, str(ret + 1))
            outcomes.append((("grow" if grow else "alter"), delay, err, now == new))
            check(now in ((count, str(ret)), new), "after %s: the topic is %s, neither before "
                  "(%s) nor after" % (outcomes[-1], now, (count, ret)))
            check(err in (0, REQUEST_TIMED_OUT), "%s with etcd frozen %.1f ms in answered %d "
                  "(%s); the topic is %s" % (outcomes[-1][0], delay * 1000, err, msg,
                                             "changed" if now == new else "unchanged"))
            check(err != 0 or now == new, "%s answered success, the topic is unchanged" %
                  outcomes[-1][0])
            count, ret = now[0], int(now[1])
        own = sum(n.log().count("found its own change applied") for n in c.nodes.values())
        print("  in-flight freezes (request, delay s, error, applied): %s; %d retried write(s) "
              "found their own change" % (outcomes, own))
        for n in c.nodes.values():
            check(n.alive() and metadata_ok(n), "broker %d not serving at the end" % n.id)


def check_crcs(data):
    """Every batch of data carries its own CRC-32C (a byte from elsewhere
    shows here)."""
    pos = 0
    while pos + 61 <= len(data):
        (blen,) = struct.unpack_from(">i", data, pos + 8)
        (crc,) = struct.unpack_from(">I", data, pos + 17)
        end = pos + 12 + blen
        check(crc32c(data[pos + 21:end]) == crc, "batch at byte %d: CRC mismatch" % pos)
        pos = end


def produce_values(bootstrap, topic, values):
    """acks=all, one partition; {offset: value} of what was acknowledged."""
    p = ck.Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 20,
                     "batch.size": 1000000, "compression.type": "none",
                     "message.timeout.ms": 60000})
    acked, failed = {}, []

    def cb(err, m):
        if err is None:
            acked[m.offset()] = m.value()
        else:
            failed.append(err)
    for v in values:
        while True:
            try:
                p.produce(topic, value=v, partition=0, on_delivery=cb)
                break
            except BufferError:
                p.poll(0.1)
    check(p.flush(120) == 0 and not failed, "produce failed: %s" % failed[:3])
    return acked


def t_fault_sendfile_truncate():
    """A consumer's Fetch answered from the leader as a file range (zero copy,
    broker/out.c), queued behind a reader that does not read, while that
    leader is deposed, truncates its diverged tail in the same segment file
    and appends the new leader's batches there: the queued answer still
    decodes to exactly the acknowledged records (each batch's CRC-32C holds),
    none of the diverged ones."""
    extra = dict(BASE, **{"log.segment.bytes": str(64 * MiB),
                          "log.local.retention.bytes": "-1", "fetch.max.bytes": str(64 * MiB)})
    with Cluster(3, session_ms=6000, extra=extra) as c:
        c.wait_registered()
        c.create_topic("sf", partitions=1, rf=3)
        full_isr(c, "sf", 1)
        acked = produce_values(c.bootstrap, "sf", [b"%08d-" % i + b"a" * 1000
                                                   for i in range(8000)])
        old = c.leader_of("sf", 0)
        epoch0 = c.pstate("sf", 0)["leader_epoch"]
        followers = [n for n in c.nodes.values() if n.id != old.id]
        for f in followers:
            f.sigstop()
        time.sleep(1.5)  # their parked fetches answered empty first (repl_sigstop)
        try:
            for i in range(40):  # only the old leader has these: above its HW
                err, _ = produce_raw(old, "sf", 0, b"diverged-%d-" % i + b"d" * 4000, acks=1)
                check(err == 0, "acks=1 produce to the leader: error %d" % err)
            s = paused_reader(old, "sf", 9 * MiB)
        finally:
            old.sigstop()
            for f in followers:
                f.sigcont()
        try:
            wait_until(lambda: (lambda st: st and st["leader"] not in (-1, old.id) and
                                st["leader_epoch"] > epoch0)(c.pstate("sf", 0)), 60,
                       "a new leader while broker %d is frozen" % old.id)
            new = c.leader_of("sf", 0)
            later = produce_values(new.bootstrap, "sf", [b"%08d-" % i + b"b" * 1000
                                                         for i in range(8000, 8400)])
        finally:
            old.sigcont()
        # The engine's own line is at INFO only when the engine logs INFO; the
        # broker's replica job always says it.
        wait_until(lambda: "truncated to offset" in old.log() or
                   "sf-0: truncated at " in old.log(), 60,
                   "broker %d truncating its diverged records" % old.id)
        full_isr(c, "sf", 1)  # it took the new leader's batches after the cut
        log = old.log()
        cut = int(log.split("truncated to offset ")[-1].split()[0] if "truncated to offset " in log
                  else log.split("sf-0: truncated at ")[-1].split()[0])
        held = [t for t in segment_fds(old.proc.pid, "sf") if "(deleted)" not in t]
        check(any(held.count(t) >= 2 for t in held),
              "the queued range's segment is no longer held in place (%r): the race did not "
              "happen" % held)
        buf = b""
        try:
            while len(buf) < 4 or len(buf) < 4 + struct.unpack_from(">i", buf)[0]:
                chunk = s.recv(1 << 20)
                check(chunk, "broker %d closed the connection after %d bytes" %
                      (old.id, len(buf)))
                buf += chunk
        finally:
            s.close()
        err, recs = fetch_v4_records(buf[4:])
        check(err == 0, "Fetch error %d" % err)
        check_crcs(recs)
        got = decode_batches(recs)
        check(got and [o for o, _ in got] == list(range(len(got))),
              "offsets are not 0, 1, 2, ...")
        check(len(got) <= cut, "the queued answer ran to offset %d, past the truncation "
              "point %d" % (len(got), cut))
        for o, v in got:
            check(acked.get(o) == v, "offset %d: %r..., acknowledged %r..." %
                  (o, v[:16], (acked.get(o) or b"")[:16]))
        check(len(got) >= len(acked) * 9 // 10, "only %d of %d acknowledged records in the "
              "answer" % (len(got), len(acked)))
        print("  queued answer: %d records (%d bytes), all acknowledged ones; broker %d cut "
              "at %d under it and appended %d records of the new leader %d" %
              (len(got), len(recs), old.id, cut, len(later), new.id))


TESTS = {
    "fault_follower_disk_full": (t_fault_follower_disk_full, ["TSPLUGIN"]),
    "fault_etcd_freeze_alter": (t_fault_etcd_freeze_alter, ["TSPLUGIN"]),
    "fault_sendfile_truncate": (t_fault_sendfile_truncate, ["TSPLUGIN"]),
}

if __name__ == "__main__":
    run(TESTS)
