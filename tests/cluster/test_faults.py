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
"""
import errno
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import (  # noqa: E402
    AckedWrites, Cluster, Fail, check, run, wait_until)
from test_replication import BASE, TOPIC, Writer, acked_count, full_isr  # noqa: E402


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


TESTS = {
    "fault_follower_disk_full": (t_fault_follower_disk_full, ["TSPLUGIN"]),
}

if __name__ == "__main__":
    run(TESTS)
