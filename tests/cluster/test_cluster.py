#!/usr/bin/python3
"""test_cluster.py — the cluster control plane (issue 10): registration,
Metadata, placement, client routing, leader checks, failover, the controller
and its fencing, startup refusals, CreateTopics/DeleteTopics in a cluster.

A real etcd and real tierbrokers (cluster.py), real clients (kcat,
confluent-kafka). Run by ctest as `test_cluster.py NAME` (label `cluster`).
Deadlines are generous; nothing asserts on timings.
"""
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import (AckedWrites, Cluster, Fail, Node, check, free_port,  # noqa: E402
                     produce_one, run, wait_until)
from test_broker import kcat, produce_v7, raw_request, raw_response, record_batch  # noqa: E402

import confluent_kafka as ck  # noqa: E402
from confluent_kafka.admin import NewTopic  # noqa: E402

NOT_LEADER = 6
INVALID_REPLICATION_FACTOR = 38
FENCED_LEADER_EPOCH = 74
UNKNOWN_LEADER_EPOCH = 75
SESSION_MS = 2000
SLACK_S = 30  # generous: the machine is shared


def raw_produce(node, topic, value=b"raw"):
    s = socket.create_connection(("127.0.0.1", node.port), timeout=10)
    try:
        _, err, base = produce_v7(s, 7, topic, record_batch(-1, -1, -1, value))
        return err, base
    finally:
        s.close()


def raw_call(node, api_key, version, body):
    """One raw request to a broker; the response (after its size prefix)."""
    s = socket.create_connection(("127.0.0.1", node.port), timeout=10)
    try:
        raw_request(s, api_key, version, 11, body)
        r = raw_response(s)
        check(r is not None, "broker %d closed the connection" % node.id)
        return r
    finally:
        s.close()


def list_offsets_v4(node, topic, partition, epoch):
    """ListOffsets v4 (latest) carrying CurrentLeaderEpoch: (error, offset, leader_epoch)."""
    body = struct.pack(">ib", -1, 0) + struct.pack(">ih", 1, len(topic)) + topic.encode()
    body += struct.pack(">i", 1) + struct.pack(">iiq", partition, epoch, -1)
    r = raw_call(node, 2, 4, body)
    pos = 4 + 4 + 4  # corr, throttle, topics count
    (tl,) = struct.unpack(">h", r[pos:pos + 2])
    pos += 2 + tl + 4
    _, err, _, off, lep = struct.unpack(">ihqqi", r[pos:pos + 26])
    return err, off, lep


def fetch_v9(node, topic, partition, epoch, offset=0):
    """Fetch v9 (consumer, replica_id -1) carrying CurrentLeaderEpoch: the
    partition's error code."""
    body = struct.pack(">iiiibii", -1, 0, 1, 1 << 20, 0, 0, -1)
    body += struct.pack(">ih", 1, len(topic)) + topic.encode()
    body += struct.pack(">i", 1) + struct.pack(">iiqqi", partition, epoch, offset, -1, 1 << 20)
    body += struct.pack(">i", 0)  # forgotten topics
    r = raw_call(node, 1, 9, body)
    pos = 4 + 4 + 2 + 4 + 4  # corr, throttle, error, session, topics count
    (tl,) = struct.unpack(">h", r[pos:pos + 2])
    pos += 2 + tl + 4
    _, err = struct.unpack(">ih", r[pos:pos + 6])
    return err


def env_ok():
    return os.path.exists("/usr/bin/etcd") or os.environ.get("ETCD_BIN")


# --------------------------------------------------------------------------


def t_register():
    """Three brokers register; every broker's Metadata lists all three (host,
    port, rack), the controller of etcd and one cluster id; a clean stop
    deregisters at once."""
    with Cluster(3, session_ms=SESSION_MS, racks=["ra", "rb", "rc"]) as c:
        c.wait_registered()
        cid = wait_until(lambda: c.controller()[0] if c.controller()[0] > 0 else None, 30,
                         "a controller")
        ids = set()
        for n in c.nodes.values():
            md = wait_until(lambda: (lambda m: m if len(m.brokers) == 3 else None)(
                ck.admin.AdminClient({"bootstrap.servers": n.bootstrap}).list_topics(timeout=10)),
                30, "broker %d's Metadata to list 3 brokers" % n.id)
            check(md.controller_id == cid, "broker %d: controller %d, etcd says %d" %
                  (n.id, md.controller_id, cid))
            for b in md.brokers.values():
                check(b.port == c.nodes[b.id].port and b.host == "127.0.0.1",
                      "broker %d listed at %s:%d" % (b.id, b.host, b.port))
            ids.add(md.cluster_id)
        check(len(ids) == 1 and len(next(iter(ids))) == 22, "cluster ids %s" % ids)
        regs = c.etcd.get_prefix("brokers/")
        check(sorted(v[0]["rack"] for v in regs.values()) == ["ra", "rb", "rc"],
              "racks in etcd: %s" % regs)
        # __consumer_offsets exists, created by the controller: rf 3, 4 partitions (test setting)
        a = wait_until(lambda: c.topic_assignment("__consumer_offsets"), 30, "__consumer_offsets")
        check(len(a) == 4 and all(len(set(r)) == 3 for r in a), "__consumer_offsets: %s" % a)
        c.wait_leaders("__consumer_offsets", 4)
        # A clean stop deregisters at once (the lease is revoked, not left to expire).
        c.nodes[3].stop(signal.SIGTERM)
        check(c.nodes[3].proc.returncode == 0, "SIGTERM exit %d" % c.nodes[3].proc.returncode)
        check(c.registered() == [1, 2], "after a clean stop: %s" % c.registered())


def t_placement():
    """rf=3 and rf=1 spread replicas and leaders over the brokers; with racks,
    every partition's replicas span the racks (Kafka's rack-aware assignment)."""
    with Cluster(3, session_ms=SESSION_MS) as c:
        c.wait_registered()
        c.create_topic("p3", 6, 3)
        a = c.topic_assignment("p3")
        check(all(sorted(r) == [1, 2, 3] for r in a), "rf=3 replicas: %s" % a)
        firsts = [r[0] for r in a]
        check(all(firsts.count(i) == 2 for i in (1, 2, 3)), "preferred leaders: %s" % firsts)
        sts = c.wait_leaders("p3", 6)
        check([s["leader"] for s in sts] == firsts, "leaders %s vs preferred %s" %
              ([s["leader"] for s in sts], firsts))
        check(all(sorted(s["isr"]) == [1, 2, 3] and s["leader_epoch"] == 0 for s in sts),
              "initial states: %s" % sts)
        md = c.metadata("p3").topics["p3"].partitions
        check(all(md[p].replicas == a[p] and md[p].leader == firsts[p] for p in range(6)),
              "Metadata replicas/leaders differ from etcd")
        c.create_topic("p1", 3, 1)
        a1 = c.topic_assignment("p1")
        check(sorted(r[0] for r in a1) == [1, 2, 3], "rf=1 spread: %s" % a1)
    with Cluster(4, session_ms=SESSION_MS, racks=["east", "east", "west", "west"]) as c:
        c.wait_registered()
        c.create_topic("racked", 8, 2)
        rack = {1: "east", 2: "east", 3: "west", 4: "west"}
        a = c.topic_assignment("racked")
        check(all(len({rack[x] for x in r}) == 2 for r in a), "rf=2 not across racks: %s" % a)
        firsts = [r[0] for r in a]
        check(all(firsts.count(i) == 2 for i in (1, 2, 3, 4)), "leaders: %s" % firsts)
        md = c.metadata()
        check(sorted(b.id for b in md.brokers.values()) == [1, 2, 3, 4], "4 brokers listed")


def t_routing():
    """kcat and confluent-kafka produce and consume rf=1 partitions led by
    different brokers: clients find each leader from Metadata."""
    with Cluster(3, session_ms=SESSION_MS,
                 extra={"num.partitions": "2", "default.replication.factor": "2"}) as c:
        c.wait_registered()
        c.create_topic("r1", 3, 1)
        sts = c.wait_leaders("r1", 3)
        check(sorted(s["leader"] for s in sts) == [1, 2, 3], "leaders %s" % sts)
        lines = [b"line-%04d" % i for i in range(300)]
        rc, _, err = kcat(["-P", "-b", c.nodes[1].bootstrap, "-t", "r1", "-X", "acks=all"],
                          inp=b"\n".join(lines) + b"\n")
        check(rc == 0, "kcat -P: %s" % err)
        rc, out, err = kcat(["-C", "-b", c.nodes[2].bootstrap, "-t", "r1", "-o", "beginning",
                             "-e", "-q"])
        check(rc == 0, "kcat -C: %s" % err)
        check(sorted(out.split(b"\n")[:-1]) == lines, "kcat read %d lines" %
              len(out.split(b"\n")[:-1]))
        w = AckedWrites(c.nodes[3].bootstrap, "r1", {"acks": "1", "enable.idempotence": False})
        for p in range(3):
            w.produce(50, partition=p)
        check(not w.failed, "produce failures: %s" % list(w.failed.items())[:3])
        check(w.verify() == 150, "acknowledged records checked")
        # Auto-create goes through CreateTopics' path: num.partitions (2 here),
        # rf = min(default.replication.factor (2), live brokers), every broker knows it.
        rc, _, err = kcat(["-P", "-b", c.nodes[2].bootstrap, "-t", "autot", "-X", "acks=all"],
                          inp=b"a\nb\nc\n")
        check(rc == 0, "kcat -P to a new topic: %s" % err)
        a = c.topic_assignment("autot")
        check(a is not None and len(a) == 2 and all(len(set(r)) == 2 for r in a),
              "auto-created assignment %s" % a)
        c.wait_leaders("autot", 2)
        rc, out, err = kcat(["-C", "-b", c.nodes[1].bootstrap, "-t", "autot", "-o", "beginning",
                             "-e", "-q"])
        check(rc == 0 and sorted(out.split(b"\n")[:-1]) == [b"a", b"b", b"c"],
              "auto-created topic read back: %r %s" % (out, err))


def t_not_leader():
    """Produce to a broker that does not lead the partition: NOT_LEADER_OR_FOLLOWER;
    ListOffsets with a newer epoch than the leader's: UNKNOWN_LEADER_EPOCH."""
    with Cluster(3, session_ms=SESSION_MS) as c:
        c.wait_registered()
        c.create_topic("nl", 1, 2)
        st = c.wait_leaders("nl", 1)[0]
        leader = c.nodes[st["leader"]]
        others = [n for n in c.nodes.values() if n.id != leader.id]
        for n in others:
            err, _ = raw_produce(n, "nl")
            check(err == NOT_LEADER, "produce to non-leader %d: error %d" % (n.id, err))
            err, _, _ = list_offsets_v4(n, "nl", 0, -1)
            check(err == NOT_LEADER, "ListOffsets at non-leader %d: error %d" % (n.id, err))
        # The leader answers once its replica is open (NOT_LEADER_OR_FOLLOWER, retriable, before).
        err, base = wait_until(lambda: (lambda r: r if r[0] != NOT_LEADER else None)(
            raw_produce(leader, "nl")), 30, "the leader to take a produce")
        check(err == 0 and base == 0, "produce to the leader: error %d base %d" % (err, base))
        # Latest is the high watermark: 1 once the follower has the record.
        err, off, lep = wait_until(lambda: (lambda r: r if r[0] or r[1] == 1 else None)(
            list_offsets_v4(leader, "nl", 0, st["leader_epoch"])), 30, "the HW at 1")
        check(err == 0 and off == 1 and lep == st["leader_epoch"],
              "ListOffsets at the leader: %d %d %d" % (err, off, lep))
        err, _, _ = list_offsets_v4(leader, "nl", 0, st["leader_epoch"] + 1)
        check(err == UNKNOWN_LEADER_EPOCH, "newer epoch: error %d" % err)


def t_kill_leader():
    """SIGKILL a partition's leader: the controller elects an ISR member with a
    bumped leader epoch and drops the dead broker from the ISR; the old epoch is
    fenced; the broker comes back, and once it is in the ISR again the
    preferred-leader balancing gives it its leadership back."""
    with Cluster(3, session_ms=SESSION_MS) as c:
        c.wait_registered()
        c.create_topic("kl", 1, 3)
        st0 = c.wait_leaders("kl", 1)[0]
        old = c.nodes[st0["leader"]]
        produce_one(c.bootstrap, "kl", b"before")
        old.kill9()
        st1 = wait_until(lambda: (lambda s: s if s["leader"] not in (-1, old.id) else None)(
            c.pstate("kl", 0)), SESSION_MS / 1000 + SLACK_S, "a new leader of kl-0")
        check(st1["leader"] in st0["isr"], "new leader %d not from the ISR %s" %
              (st1["leader"], st0["isr"]))
        check(st1["leader_epoch"] > st0["leader_epoch"], "epoch %d -> %d" %
              (st0["leader_epoch"], st1["leader_epoch"]))
        check(old.id not in st1["isr"], "dead broker still in the ISR: %s" % st1)
        new = c.nodes[st1["leader"]]
        c.wait_leaders("kl", 1, exclude=(old.id,))
        err, _, _ = list_offsets_v4(new, "kl", 0, st0["leader_epoch"])
        check(err == FENCED_LEADER_EPOCH, "old epoch at the new leader: error %d" % err)
        err = fetch_v9(new, "kl", 0, st0["leader_epoch"])
        check(err == FENCED_LEADER_EPOCH, "Fetch at the old epoch: error %d" % err)
        err = fetch_v9(new, "kl", 0, st1["leader_epoch"] + 1)
        check(err == UNKNOWN_LEADER_EPOCH, "Fetch at a future epoch: error %d" % err)
        err = fetch_v9(new, "kl", 0, st1["leader_epoch"])
        check(err == 0, "Fetch at the current epoch: error %d" % err)
        other = [n for n in c.nodes.values() if n.id not in (old.id, new.id)][0]
        err = fetch_v9(other, "kl", 0, -1)
        check(err == NOT_LEADER, "consumer Fetch at a follower: error %d" % err)
        md = wait_until(lambda: (lambda m: m if m.topics["kl"].partitions[0].leader == new.id
                                 else None)(c.metadata("kl")), 30, "Metadata to show the new leader")
        check(old.id not in md.topics["kl"].partitions[0].isrs, "Metadata ISR")
        produce_one(c.bootstrap, "kl", b"after")
        old.start()
        c.wait_registered()
        # The leader's ISR expansion (replication's job) simulated in etcd: the
        # controller must then hand leadership back to the preferred replica.
        pref = c.topic_assignment("kl")[0][0]
        if pref != c.pstate("kl", 0)["leader"]:
            cur = c.pstate("kl", 0)
            cur_isr = sorted(set(cur["isr"]) | {old.id})
            c.etcd.put("partitions/kl/0", {"leader": cur["leader"], "leader_epoch": cur["leader_epoch"],
                                           "isr": cur_isr, "controller_epoch": cur["controller_epoch"]})
            st2 = wait_until(lambda: (lambda s: s if s["leader"] == pref else None)(
                c.pstate("kl", 0)), 60, "the preferred replica %d to lead again" % pref)
            check(st2["leader_epoch"] > cur["leader_epoch"], "balancing bumps the epoch")


def t_offline():
    """The only replica of a partition dies: with unclean election off the
    partition goes offline (leader -1, epoch bumped, the ISR keeps its last
    member) and Metadata says LEADER_NOT_AVAILABLE; the broker comes back and
    leads again at a higher epoch, its data intact. With unclean election on,
    a live out-of-sync replica is elected instead."""
    with Cluster(3, session_ms=SESSION_MS) as c:
        c.wait_registered()
        c.create_topic("off", 1, 1)
        st0 = c.wait_leaders("off", 1)[0]
        only = c.nodes[st0["leader"]]
        produce_one(c.bootstrap, "off", b"kept")
        only.kill9()
        st1 = wait_until(lambda: (lambda s: s if s["leader"] == -1 else None)(c.pstate("off", 0)),
                         SESSION_MS / 1000 + SLACK_S, "off-0 to go offline")
        check(st1["leader_epoch"] == st0["leader_epoch"] + 1 and st1["isr"] == [only.id],
              "offline state %s" % st1)
        md = wait_until(lambda: (lambda m: m if m.topics["off"].partitions[0].leader == -1 else None)(
            c.metadata("off")), 30, "Metadata to show off-0 offline")
        check(md.topics["off"].partitions[0].error is not None, "no error for an offline partition")
        only.start()
        st2 = wait_until(lambda: (lambda s: s if s["leader"] == only.id else None)(
            c.pstate("off", 0)), 60, "off-0 back with its replica")
        check(st2["leader_epoch"] > st1["leader_epoch"], "epoch %s" % st2)
        c.wait_leaders("off", 1)
        got = AckedWrites(c.bootstrap, "off").read_all(30)
        check([k for _, k in got[0]] == [None], "off-0 after the return: %s" % got)
    with Cluster(2, session_ms=SESSION_MS, extra={"unclean.leader.election.enable": "true"}) as c:
        c.wait_registered()
        c.create_topic("unc", 1, 2)
        st0 = c.wait_leaders("unc", 1)[0]
        a = c.topic_assignment("unc")[0]
        follower = [x for x in a if x != st0["leader"]][0]
        # The follower out of the ISR (as a leader would shrink it), then the leader dies.
        # The follower is frozen meanwhile: a caught-up follower that fetches is added
        # back by the leader at once (isr_maybe_expand), which CI once saw win the race
        # against this test's poll. The freeze stays well inside the 2 s session.
        fol = c.nodes[follower]
        fol.sigstop()
        try:
            def shrunk():
                c.etcd.put("partitions/unc/0", {"leader": st0["leader"],
                                                "leader_epoch": st0["leader_epoch"],
                                                "isr": [st0["leader"]],
                                                "controller_epoch": st0["controller_epoch"]})
                time.sleep(0.3)  # a fetch sent before the freeze may still re-add it
                return c.pstate("unc", 0)["isr"] == [st0["leader"]]
            wait_until(shrunk, 30, "the ISR shrink")
            c.nodes[st0["leader"]].kill9()
        finally:
            fol.sigcont()
        st1 = wait_until(lambda: (lambda s: s if s["leader"] == follower else None)(
            c.pstate("unc", 0)), SESSION_MS / 1000 + SLACK_S, "an unclean election")
        check(st1["isr"] == [follower] and st1["leader_epoch"] > st0["leader_epoch"],
              "unclean state %s" % st1)


def t_kill_controller():
    """SIGKILL the controller: another broker becomes controller with a higher
    epoch, and it does the controller's job (elects leaders for what the
    killed broker led)."""
    with Cluster(3, session_ms=SESSION_MS) as c:
        c.wait_registered()
        cid, ep = wait_until(lambda: c.controller() if c.controller()[0] > 0 else None, 30,
                             "a controller")
        c.create_topic("kc", 3, 3)
        c.wait_leaders("kc", 3)
        c.nodes[cid].kill9()
        cid2, ep2 = wait_until(lambda: (lambda v: v if v[0] not in (-1, cid) else None)(
            c.controller()), SESSION_MS / 1000 + SLACK_S, "a new controller")
        check(ep2 > ep, "controller epoch %d -> %d" % (ep, ep2))
        c.wait_leaders("kc", 3, exclude=(cid,))
        # Its follower replicas leave the ISRs too (the new controller's passes).
        wait_until(lambda: all(cid not in c.pstate("kc", p)["isr"] for p in range(3)), 30,
                   "the dead controller out of every ISR: %s" %
                   [c.pstate("kc", p) for p in range(3)])
        md = wait_until(lambda: (lambda m: m if m.controller_id == cid2 else None)(c.metadata()),
                        30, "Metadata to name the new controller")
        check(cid not in md.brokers, "dead broker still listed")


def t_stop_controller():
    """SIGSTOP the controller past its session timeout: a new controller takes
    over; after SIGCONT the old one writes nothing (etcd's history holds no
    write at its epoch after the takeover) and rejoins as a plain broker."""
    with Cluster(3, session_ms=SESSION_MS) as c:
        c.wait_registered()
        cid, ep = wait_until(lambda: c.controller() if c.controller()[0] > 0 else None, 30,
                             "a controller")
        c.create_topic("sc", 3, 3)
        c.wait_leaders("sc", 3)
        old = c.nodes[cid]
        old.sigstop()
        cid2, ep2 = wait_until(lambda: (lambda v: v if v[0] not in (-1, cid) else None)(
            c.controller()), SESSION_MS / 1000 + SLACK_S, "a new controller")
        sts = c.wait_leaders("sc", 3, exclude=(cid,))
        # While it is frozen, something it would act on: a new topic.
        c.create_topic("sc2", 2, 2)
        c.wait_leaders("sc2", 2)
        rev = c.etcd.revision()
        marker = len(old.log())
        old.sigcont()
        c.wait_registered()
        wait_until(lambda: "no longer the controller" in old.log()[marker:] or
                   "registered as broker" in old.log()[marker:], 30, "the old controller to notice")
        time.sleep(3)  # time for a deposed controller to try anything
        hist = c.etcd.history("", rev + 1)
        bad = [h for h in hist if h[1].startswith(("partitions/", "topics/")) and
               isinstance(h[2], dict) and h[2].get("controller_epoch") == ep]
        check(not bad, "writes at the old controller epoch %d after the takeover: %s" % (ep, bad))
        check("controller (epoch %d) wrote" % ep not in old.log()[marker:],
              "the old controller logged a write after SIGCONT")
        check(c.controller()[0] == cid2, "controller changed again: %s" % (c.controller(),))
        # It leads nothing it lost; Produce to it for a partition it led is refused.
        for p, s in enumerate(sts):
            cur = c.pstate("sc", p)
            check(cur["leader"] != cid or cur["leader_epoch"] > s["leader_epoch"],
                  "sc-%d: %s" % (p, cur))


def readyz(port):
    import urllib.error
    import urllib.request
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/readyz" % port, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def t_stop_leader():
    """A leader frozen past its session timeout is fenced: a new leader is
    elected, and the moment it runs again it refuses Produce
    (NOT_LEADER_OR_FOLLOWER), then registers again. /readyz says ready with
    every held replica open (partitions held elsewhere do not count)."""
    aport = free_port()
    with Cluster(3, session_ms=SESSION_MS,
                 node_extra={1: {"admin.listeners": "http://127.0.0.1:%d" % aport}}) as c:
        c.wait_registered()
        c.create_topic("sl", 1, 3)
        st0 = c.wait_leaders("sl", 1)[0]
        c.create_topic("sl1", 3, 1)  # two of its partitions are held elsewhere
        c.wait_leaders("sl1", 3)
        wait_until(lambda: readyz(aport)[0] == 200, 30, "broker 1 ready: %s" % (readyz(aport),))
        old = c.nodes[st0["leader"]]
        old.sigstop()
        wait_until(lambda: c.pstate("sl", 0)["leader"] not in (-1, old.id),
                   SESSION_MS / 1000 + SLACK_S, "a new leader")
        old.sigcont()
        err, _ = raw_produce(old, "sl")
        check(err == NOT_LEADER, "produce to the thawed old leader: error %d" % err)
        c.wait_registered()
        check("not registered in the cluster (lease lost)" in old.log(), "lease loss not logged")


def t_duplicate_id():
    """A second broker with a live broker's node.id refuses to start, saying so."""
    with Cluster(2, session_ms=SESSION_MS) as c:
        c.wait_registered()
        dup = Node(c, 1)
        dup.dir = os.path.join(c.root, "dup")
        dup.data = os.path.join(dup.dir, "data")
        dup.props = os.path.join(dup.dir, "server.properties")
        dup.logpath = os.path.join(dup.dir, "broker.log")
        os.makedirs(dup.data, exist_ok=True)
        dup.start(wait_listen=False)
        rc = dup.wait_exit(60)
        check(rc != 0, "duplicate broker exited %d" % rc)
        check("node.id 1 is already registered" in dup.log(), "message: %s" % dup.log()[-800:])
        check(c.nodes[1].alive() and c.registered() == [1, 2], "the first broker 1 is unharmed")


def t_startup_errors():
    """etcd unreachable at start: a clear error and exit within the deadline;
    a cluster without node.id: refused at once."""
    with Cluster(1, session_ms=SESSION_MS, start=False) as c:
        n = c.nodes[1]
        n.extra = {"metadata.store.url": "etcd://127.0.0.1:%d" % free_port(),
                   "metadata.store.timeout.ms": "2000"}
        n.start(wait_listen=False)
        rc = n.wait_exit(60)
        check(rc != 0 and "cannot register in the cluster's etcd" in n.log() and
              "is etcd running" in n.log(), "etcd unreachable: rc %d, log %s" % (rc, n.log()[-800:]))
        props = os.path.join(c.root, "noid.properties")
        with open(props, "w") as f:
            f.write("metadata.store.url=etcd://127.0.0.1:%d\nlog.dirs=%s\n" %
                    (free_port(), os.path.join(c.root, "noid")))
        r = subprocess.run([os.environ["TIERBROKER"], props], capture_output=True, timeout=60)
        check(r.returncode == 2 and b"node.id is not" in r.stderr, "no node.id: %d %s" %
              (r.returncode, r.stderr))


def t_create_errors():
    """CreateTopics with a replication factor above the live brokers is refused
    (INVALID_REPLICATION_FACTOR) and writes nothing; -1 takes
    default.replication.factor; an existing name is TOPIC_ALREADY_EXISTS."""
    with Cluster(3, session_ms=SESSION_MS, extra={"default.replication.factor": "2"}) as c:
        c.wait_registered()
        a = c.admin()
        f = a.create_topics([NewTopic("big", 1, 4)], request_timeout=30)["big"]
        try:
            f.result(30)
            raise Fail("rf=4 on 3 brokers was accepted")
        except ck.KafkaException as e:
            check(e.args[0].code() == INVALID_REPLICATION_FACTOR, "error %s" % e)
        check(c.etcd.get("topics/big") is None, "topics/big written")
        c.create_topic("dflt", 2, -1)
        check(all(len(r) == 2 for r in c.topic_assignment("dflt")), "default rf")
        f = a.create_topics([NewTopic("dflt", 1, 1)], request_timeout=30)["dflt"]
        try:
            f.result(30)
            raise Fail("second create accepted")
        except ck.KafkaException as e:
            check(e.args[0].code() == ck.KafkaError.TOPIC_ALREADY_EXISTS, "error %s" % e)


def t_delete_topic():
    """DeleteTopics removes topics/<t> and partitions/<t>/ from etcd; Metadata
    stops listing it; the replicas delete their local copies; the name can be
    created again and starts empty."""
    with Cluster(3, session_ms=SESSION_MS) as c:
        c.wait_registered()
        c.create_topic("dt", 2, 2)
        c.wait_leaders("dt", 2)
        w = AckedWrites(c.bootstrap, "dt", {"acks": "1", "enable.idempotence": False})
        w.produce(40)
        del w  # a live producer's metadata requests would auto-create dt again
        c.delete_topic("dt")
        check(c.etcd.get("topics/dt") is None and not c.etcd.get_prefix("partitions/dt/"),
              "etcd still holds dt")
        for n in c.nodes.values():
            wait_until(lambda: "dt" not in ck.admin.AdminClient(
                {"bootstrap.servers": n.bootstrap}).list_topics(timeout=10).topics, 30,
                "broker %d to forget dt" % n.id)
            wait_until(lambda: not [d for d in os.listdir(n.data) if d.startswith("dt-")], 30,
                       "broker %d to delete its replicas of dt (%s)" % (n.id, os.listdir(n.data)))
        c.create_topic("dt", 1, 1)
        c.wait_leaders("dt", 1)
        got = AckedWrites(c.bootstrap, "dt").read_all(30)
        check(got == {0: []}, "re-created dt holds %s" % {p: len(v) for p, v in got.items()})


def t_etcd_restart():
    """etcd SIGKILLed and restarted past the brokers' session timeout: every
    broker notices its lease gone, stops leading, registers again under a new
    lease, its watch resumes, and the cluster serves again (a topic created
    afterwards reaches every broker). While unregistered, /readyz says so."""
    aport = free_port()
    with Cluster(3, session_ms=SESSION_MS,
                 node_extra={1: {"admin.listeners": "http://127.0.0.1:%d" % aport}}) as c:
        c.wait_registered()
        c.create_topic("er", 3, 1)
        c.wait_leaders("er", 3)
        marks = {n.id: len(n.log()) for n in c.nodes.values()}
        c.etcd.stop()
        time.sleep(SESSION_MS / 1000 + 2)
        code, text = readyz(aport)
        check(code == 503 and "not registered in the cluster" in text, "readyz without etcd: %d %s"
              % (code, text))
        c.etcd.start()
        # etcd restores leases on a restart: the old registrations linger a
        # moment, so wait for each broker's own word that it registered again.
        for n in c.nodes.values():
            wait_until(lambda: "cluster: registered as broker %d" % n.id in n.log()[marks[n.id]:],
                       SESSION_MS / 1000 + SLACK_S, "broker %d to register again" % n.id)
            check("not registered in the cluster (lease lost)" in n.log()[marks[n.id]:],
                  "broker %d did not notice its lost lease" % n.id)
        check(all(n.alive() for n in c.nodes.values()), "a broker died with etcd")
        c.wait_registered()
        c.wait_leaders("er", 3)
        wait_until(lambda: readyz(aport)[0] == 200, 30, "broker 1 ready again")
        # Each view names etcd's controller (a watch catching up after the
        # re-registration's snapshot must not roll the view back).
        for n in c.nodes.values():
            wait_until(lambda: ck.admin.AdminClient({"bootstrap.servers": n.bootstrap}).list_topics(
                timeout=10).controller_id == c.controller()[0], 30,
                "broker %d's Metadata to name controller %d" % (n.id, c.controller()[0]))
        c.create_topic("er2", 3, 1)
        c.wait_leaders("er2", 3)
        for n in c.nodes.values():
            wait_until(lambda: "er2" in ck.admin.AdminClient(
                {"bootstrap.servers": n.bootstrap}).list_topics(timeout=10).topics, 30,
                "broker %d to see er2" % n.id)
        w = AckedWrites(c.bootstrap, "er", {"acks": "1", "enable.idempotence": False})
        w.produce(60)
        check(not w.failed and w.verify() == 60, "produce after the restart: %s" %
              list(w.failed.items())[:3])


def t_compaction():
    """A broker whose watch resumes at a revision etcd has compacted away reads
    everything again: broker 3 is frozen (its lease outlives it), etcd restarts
    under it (its watch stream is gone), a topic is created and the history
    compacted; thawed, broker 3's watch reconnects, learns it was compacted,
    and its view gets the topic it never saw an event for."""
    with Cluster(3, session_ms=15000) as c:
        c.wait_registered()
        c.create_topic("cp0", 1, 3)
        c.wait_leaders("cp0", 1)
        b3 = c.nodes[3]
        mark = len(b3.log())
        b3.sigstop()
        c.etcd.stop()
        c.etcd.start()
        c.create_topic("cp1", 3, 1)
        c.wait_leaders("cp1", 3, views=False)
        c.etcd.compact()
        b3.sigcont()
        wait_until(lambda: "cp1" in ck.admin.AdminClient({"bootstrap.servers": b3.bootstrap})
                   .list_topics(timeout=10).topics, 60, "broker 3 to learn cp1")
        log = b3.log()[mark:]
        check("the etcd watch ended" in log and "reading everything again" in log,
              "broker 3 did not re-read after the compaction:\n%s" % log[-1500:])
        check("lease lost" not in log and "registered as broker" not in log,
              "broker 3 re-registered (the re-read came from that): %s" % log[-1500:])
        c.wait_leaders("cp1", 3)


def t_tierctl():
    """tierctl cluster reads etcd as the brokers do: brokers, controller and
    epoch, per partition leader, epoch, replicas, ISR and offline replicas."""
    import json
    tierctl = os.environ.get("TIERCTL")
    with Cluster(3, session_ms=SESSION_MS) as c:
        c.wait_registered()
        c.create_topic("tc", 2, 3)
        c.wait_leaders("tc", 2)
        c.nodes[3].kill9()
        sts = c.wait_leaders("tc", 2, exclude=(3,))
        wait_until(lambda: c.registered() == [1, 2], 30, "broker 3 gone")
        wait_until(lambda: all(3 not in c.pstate("tc", p)["isr"] for p in range(2)), 30,
                   "broker 3 out of the ISRs")
        props = c.nodes[1].props
        r = subprocess.run([tierctl, "-c", props, "cluster", "tc", "--json"], capture_output=True,
                           timeout=60)
        check(r.returncode == 0, "tierctl cluster: %d %s" % (r.returncode, r.stderr))
        doc = json.loads(r.stdout)
        check(sorted(b["id"] for b in doc["brokers"]) == [1, 2], "brokers %s" % doc["brokers"])
        check((doc["controller"], doc["controller_epoch"]) == c.controller(), "controller")
        parts = doc["topics"][0]["partitions"]
        for p, st in enumerate(sts):
            cur = c.pstate("tc", p)
            check(parts[p]["leader"] == cur["leader"] and parts[p]["isr"] == cur["isr"] and
                  parts[p]["leader_epoch"] == cur["leader_epoch"], "tc-%d: %s vs %s" %
                  (p, parts[p], cur))
            check(parts[p]["offline_replicas"] == [3], "offline %s" % parts[p])
        r = subprocess.run([tierctl, "-c", props, "cluster"], capture_output=True, timeout=60)
        check(r.returncode == 0 and b"controller: " in r.stdout and b"topic tc" in r.stdout,
              "text view: %s" % r.stdout[:400])
        r = subprocess.run([tierctl, "-c", props, "cluster", "nosuch"], capture_output=True,
                           timeout=60)
        check(r.returncode == 1, "unknown topic: %d" % r.returncode)


TESTS = {
    "register": (t_register, ["TSPLUGIN"]),
    "placement": (t_placement, ["TSPLUGIN"]),
    "routing": (t_routing, ["TSPLUGIN"]),
    "not_leader": (t_not_leader, ["TSPLUGIN"]),
    "kill_leader": (t_kill_leader, ["TSPLUGIN"]),
    "offline": (t_offline, ["TSPLUGIN"]),
    "kill_controller": (t_kill_controller, ["TSPLUGIN"]),
    "stop_controller": (t_stop_controller, ["TSPLUGIN"]),
    "stop_leader": (t_stop_leader, ["TSPLUGIN"]),
    "duplicate_id": (t_duplicate_id, ["TSPLUGIN"]),
    "startup_errors": (t_startup_errors, ["TSPLUGIN"]),
    "create_errors": (t_create_errors, ["TSPLUGIN"]),
    "delete_topic": (t_delete_topic, ["TSPLUGIN"]),
    "tierctl": (t_tierctl, ["TSPLUGIN", "TIERCTL"]),
    "etcd_restart": (t_etcd_restart, ["TSPLUGIN"]),
    "compaction": (t_compaction, ["TSPLUGIN"]),
}

if __name__ == "__main__":
    if not env_ok():
        print("SKIP: no etcd installed")
        sys.exit(77)
    run(TESTS)
