#!/usr/bin/python3
"""test_admin_groups.py — issue 12 item 3, the group and cluster admin APIs:
ListGroups, DescribeGroups, DeleteGroups, OffsetDelete, DescribeCluster,
DescribeLogDirs and ListOffsets v7-v9 (-3 max timestamp, KIP-1005's -4
earliest local and -5 latest tiered).

Driven by the clients operators use: confluent-kafka 1.7's AdminClient
(list_groups), kafkajs 2.2.4's admin (listGroups, describeGroups,
deleteGroups, resetOffsets, fetchOffsets, fetchTopicOffsets,
describeCluster; tests/broker/node/admin.js) and kcat -L; raw requests for
what no installed client sends (OffsetDelete, DescribeLogDirs,
DescribeCluster's error cases, the ListOffsets version gates, StatesFilter).

  admin_groups      a live consumer group and an idle one: listed and
                    described alike by every client; DeleteGroups refuses
                    the live one (NON_EMPTY_GROUP) and an unknown one
                    (GROUP_ID_NOT_FOUND); OffsetDelete refuses a topic the
                    live member subscribes to (GROUP_SUBSCRIBED_TO_TOPIC) and
                    deletes one it does not; kafkajs resetOffsets to earliest
                    and a consumer starts there; the deleted group and the
                    deleted offsets stay deleted after a broker restart
  admin_log_dirs    a tiered partition (small segments, uploads waited for):
                    DescribeLogDirs' size equals the placement's local bytes,
                    ListOffsets -4 / -5 equal the placement's local start and
                    last remote offset, -3 finds the record with the largest
                    timestamp, kafkajs fetchTopicOffsets agrees
  admin_group_states_mem
                    a raw member of a "connect" group (not a consumer): its
                    CompletingRebalance state listed and described without
                    metadata, OffsetDelete and DeleteGroups refused
                    (NON_EMPTY_GROUP); once Stable its metadata and assignment
                    described byte for byte; after it leaves, deleted
  admin_cluster_mem DescribeCluster v0/v1 (authorized operations, endpoint
                    types), kafkajs describeCluster and kcat -L agree;
                    ApiVersions lists exactly the versions served; versions
                    beyond them close the connection

Run by ctest as `test_admin_groups.py NAME` (label `broker`), environment as
for test_broker.py.
"""
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_broker import (  # noqa: E402
    MEMPLUGIN, TSPLUGIN, AdminClient, Broker, Fail, NewTopic, Rd, check, ck, cs, kcat, placement,
    raw_request, raw_response, run, uv)

NODE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "node")
INT32_MIN = -2147483648

# Kafka API keys and error codes used here
LIST_OFFSETS, API_VERSIONS, DESCRIBE_GROUPS, LIST_GROUPS = 2, 18, 15, 16
JOIN_GROUP, SYNC_GROUP, LEAVE_GROUP = 11, 14, 13
OFFSET_FETCH, DESCRIBE_LOG_DIRS, DELETE_GROUPS, OFFSET_DELETE, DESCRIBE_CLUSTER = 9, 35, 42, 47, 60
NONE, UNKNOWN_TOPIC_OR_PARTITION, INVALID_GROUP_ID, UNSUPPORTED_VERSION = 0, 3, 24, 35
INVALID_REQUEST, NON_EMPTY_GROUP, GROUP_ID_NOT_FOUND, GROUP_SUBSCRIBED_TO_TOPIC = 42, 68, 69, 86
MISMATCHED_ENDPOINT_TYPE, UNSUPPORTED_ENDPOINT_TYPE = 114, 115


# --------------------------------------------------------------------------
# kafkajs


def kafkajs(b, op, args=None, expect_error=False):
    """One kafkajs admin call (tests/broker/node/admin.js); its JSON answer."""
    if not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "kafkajs")):
        raise Fail("kafkajs is not installed: scripts/install-deps.sh test "
                   "(npm ci --prefix tests/broker/node)")
    r = subprocess.run(["node", os.path.join(NODE_DIR, "admin.js"), b.bootstrap, op,
                        json.dumps(args or {})], capture_output=True, timeout=120)
    out = r.stdout.decode(errors="replace").strip().splitlines()
    check(out, "kafkajs %s printed nothing (rc %d): %s" % (op, r.returncode,
                                                           r.stderr.decode(errors="replace")))
    res = json.loads(out[-1])
    if expect_error:
        check(r.returncode == 2 and "error" in res, "kafkajs %s should fail: %r" % (op, res))
    else:
        check(r.returncode == 0, "kafkajs %s failed: %r" % (op, res))
    return res


# --------------------------------------------------------------------------
# raw requests: encoders and decoders for both encodings


def enc_str(x, f):
    if x is None:
        return uv(0) if f else struct.pack(">h", -1)
    return cs(x) if f else struct.pack(">h", len(x)) + x.encode()


def enc_arr(n, f):
    if n is None:
        return uv(0) if f else struct.pack(">i", -1)
    return uv(n + 1) if f else struct.pack(">i", n)


def tags(f):
    return b"\x00" if f else b""


def dec_str(rd, f):
    if f:
        return rd.cstr()
    n = rd.take(">h")
    if n < 0:
        return None
    v = rd.b[rd.p:rd.p + n].decode()
    rd.p += n
    return v


def dec_bytes(rd, f):
    n = rd.uvarint() - 1 if f else rd.take(">i")
    if n < 0:
        return None
    v = rd.b[rd.p:rd.p + n]
    rd.p += n
    return v


def dec_arr(rd, f):
    return rd.uvarint() - 1 if f else rd.take(">i")


def dec_tags(rd, f):
    if f:
        rd.tags()


class Conn:
    """One connection for raw requests; call() returns a reader positioned
    after the response header, or None when the broker closed it."""

    def __init__(self, b):
        self.s = socket.create_connection(("127.0.0.1", b.port), timeout=30)
        self.corr = 0

    def call(self, api, ver, body, flexible):
        self.corr += 1
        raw_request(self.s, api, ver, self.corr, body, flexible)
        r = raw_response(self.s)
        if r is None:
            return None
        rd = Rd(r)
        check(rd.take(">i") == self.corr, "correlation id")
        if flexible and api != API_VERSIONS:
            rd.tags()
        return rd

    def close(self):
        self.s.close()


def done(rd):
    check(rd.p == len(rd.b), "%d trailing bytes in the response" % (len(rd.b) - rd.p))


def list_groups_raw(c, v, states=None):
    f = v >= 3
    body = b""
    if v >= 4:
        states = states or []
        body += enc_arr(len(states), f) + b"".join(enc_str(s, f) for s in states)
    rd = c.call(LIST_GROUPS, v, body + tags(f), f)
    if v >= 1:
        rd.take(">i")
    err = rd.take(">h")
    out = {}
    for _ in range(dec_arr(rd, f)):
        gid, ptype = dec_str(rd, f), dec_str(rd, f)
        out[gid] = (ptype, dec_str(rd, f) if v >= 4 else None)
        dec_tags(rd, f)
    dec_tags(rd, f)
    done(rd)
    return err, out


def describe_groups_raw(c, v, groups, include_ops=False):
    f = v >= 5
    body = enc_arr(len(groups), f) + b"".join(enc_str(g, f) for g in groups)
    if v >= 3:
        body += bytes([1 if include_ops else 0])
    rd = c.call(DESCRIBE_GROUPS, v, body + tags(f), f)
    if v >= 1:
        rd.take(">i")
    out = []
    for _ in range(dec_arr(rd, f)):
        g = {"error": rd.take(">h"), "id": dec_str(rd, f), "state": dec_str(rd, f),
             "protocol_type": dec_str(rd, f), "protocol": dec_str(rd, f), "members": []}
        for _ in range(dec_arr(rd, f)):
            m = {"id": dec_str(rd, f)}
            if v >= 4:
                m["instance"] = dec_str(rd, f)
            m["client_id"], m["client_host"] = dec_str(rd, f), dec_str(rd, f)
            m["metadata"], m["assignment"] = dec_bytes(rd, f), dec_bytes(rd, f)
            dec_tags(rd, f)
            g["members"].append(m)
        g["ops"] = rd.take(">i") if v >= 3 else None
        dec_tags(rd, f)
        out.append(g)
    dec_tags(rd, f)
    done(rd)
    return out


def delete_groups_raw(c, v, groups):
    f = v >= 2
    body = enc_arr(len(groups), f) + b"".join(enc_str(g, f) for g in groups)
    rd = c.call(DELETE_GROUPS, v, body + tags(f), f)
    rd.take(">i")
    out = {}
    for _ in range(dec_arr(rd, f)):
        gid = dec_str(rd, f)
        out[gid] = rd.take(">h")
        dec_tags(rd, f)
    dec_tags(rd, f)
    done(rd)
    return out


def offset_delete_raw(c, group, topics):
    """topics: {name: [partition...]} -> (error, {(name, p): error})"""
    body = enc_str(group, 0) + enc_arr(len(topics), 0)
    for name, parts in topics.items():
        body += enc_str(name, 0) + enc_arr(len(parts), 0) + b"".join(
            struct.pack(">i", p) for p in parts)
    rd = c.call(OFFSET_DELETE, 0, body, False)
    err = rd.take(">h")
    rd.take(">i")
    out = {}
    for _ in range(dec_arr(rd, 0)):
        name = dec_str(rd, 0)
        for _ in range(dec_arr(rd, 0)):
            p, e = rd.take(">ih")
            out[(name, p)] = e
    done(rd)
    return err, out


def offset_fetch_raw(c, group, topic, parts):
    """OffsetFetch v1 (what the broker now holds): {partition: offset}."""
    body = enc_str(group, 0) + enc_arr(1, 0) + enc_str(topic, 0) + enc_arr(len(parts), 0)
    body += b"".join(struct.pack(">i", p) for p in parts)
    rd = c.call(OFFSET_FETCH, 1, body, False)
    out = {}
    for _ in range(dec_arr(rd, 0)):
        dec_str(rd, 0)
        for _ in range(dec_arr(rd, 0)):
            p, off = rd.take(">iq")
            dec_str(rd, 0)
            check(rd.take(">h") == NONE, "OffsetFetch error")
            out[p] = off
    return out


def list_offsets_raw(c, v, topic, specs):
    """specs: [(partition, timestamp)] -> [(partition, error, timestamp, offset, epoch)]"""
    f = v >= 6
    body = struct.pack(">i", -1) + (b"\x00" if v >= 2 else b"")
    body += enc_arr(1, f) + enc_str(topic, f) + enc_arr(len(specs), f)
    for p, ts in specs:
        body += struct.pack(">i", p) + (struct.pack(">i", -1) if v >= 4 else b"")
        body += struct.pack(">q", ts) + tags(f)
    body += tags(f) + tags(f)
    rd = c.call(LIST_OFFSETS, v, body, f)
    if rd is None:
        return None
    if v >= 2:
        rd.take(">i")
    out = []
    for _ in range(dec_arr(rd, f)):
        dec_str(rd, f)
        for _ in range(dec_arr(rd, f)):
            p, err, ts, off = rd.take(">ihqq")
            epoch = rd.take(">i") if v >= 4 else None
            dec_tags(rd, f)
            out.append((p, err, ts, off, epoch))
        dec_tags(rd, f)
    dec_tags(rd, f)
    done(rd)
    return out


def describe_log_dirs_raw(c, v, topics=None):
    """topics: None (all) or {name: [partition...]}"""
    f = v >= 2
    if topics is None:
        body = enc_arr(None, f)
    else:
        body = enc_arr(len(topics), f)
        for name, parts in topics.items():
            body += enc_str(name, f) + enc_arr(len(parts), f)
            body += b"".join(struct.pack(">i", p) for p in parts) + tags(f)
    rd = c.call(DESCRIBE_LOG_DIRS, v, body + tags(f), f)
    rd.take(">i")
    top = rd.take(">h") if v >= 3 else None
    dirs = []
    for _ in range(dec_arr(rd, f)):
        d = {"error": rd.take(">h"), "dir": dec_str(rd, f), "parts": {}}
        for _ in range(dec_arr(rd, f)):
            name = dec_str(rd, f)
            for _ in range(dec_arr(rd, f)):
                p, size, lag, fut = rd.take(">iqqb")
                d["parts"][(name, p)] = (size, lag, fut)
                dec_tags(rd, f)
            dec_tags(rd, f)
        if v >= 4:
            d["total"], d["usable"] = rd.take(">qq")
        dec_tags(rd, f)
        dirs.append(d)
    dec_tags(rd, f)
    done(rd)
    return top, dirs


def describe_cluster_raw(c, v, include_ops=False, endpoint_type=1):
    body = bytes([1 if include_ops else 0]) + (bytes([endpoint_type]) if v >= 1 else b"")
    rd = c.call(DESCRIBE_CLUSTER, v, body + b"\x00", True)
    out = {"throttle": rd.take(">i"), "error": rd.take(">h"), "message": rd.cstr()}
    if v >= 1:
        out["endpoint_type"] = rd.take(">b")
    out["cluster_id"], out["controller"] = rd.cstr(), rd.take(">i")
    out["brokers"] = []
    for _ in range(rd.uvarint() - 1):
        out["brokers"].append((rd.take(">i"), rd.cstr(), rd.take(">i"), rd.cstr()))
        rd.tags()
    out["ops"] = rd.take(">i")
    rd.tags()
    done(rd)
    return out


def api_versions_raw(c):
    rd = c.call(API_VERSIONS, 3, cs("t") + cs("1") + b"\x00", True)
    check(rd.take(">h") == NONE, "ApiVersions error")
    out = {}
    for _ in range(rd.uvarint() - 1):
        k, lo, hi = rd.take(">hhh")
        rd.tags()
        out[k] = (lo, hi)
    return out


# --------------------------------------------------------------------------
# a member that stays in its group while the test runs


class LiveMember:
    """A confluent-kafka consumer subscribed to `topics` in `group`, polled
    on its own thread so it stays a member (heartbeats, rebalances)."""

    def __init__(self, b, group, topics):
        self.c = ck.Consumer({"bootstrap.servers": b.bootstrap, "group.id": group,
                              "client.id": "live-member", "auto.offset.reset": "earliest",
                              "enable.auto.commit": False, "session.timeout.ms": 10000,
                              "heartbeat.interval.ms": 500})
        self.assigned = []
        self.stop = False
        self.lock = threading.Lock()
        self.c.subscribe(topics, on_assign=lambda cons, parts: self._set(parts))
        self.t = threading.Thread(target=self._loop, daemon=True)
        self.t.start()

    def _set(self, parts):
        self.assigned = sorted((tp.topic, tp.partition) for tp in parts)

    def _loop(self):
        while not self.stop:
            with self.lock:
                self.c.poll(0.2)

    def wait_assigned(self, n):
        deadline = time.time() + 60
        while time.time() < deadline and len(self.assigned) < n:
            time.sleep(0.1)
        check(len(self.assigned) >= n, "live member assigned %r" % self.assigned)

    def commit(self, offsets):
        with self.lock:
            self.c.commit(offsets=offsets, asynchronous=False)

    def close(self):
        self.stop = True
        self.t.join()
        self.c.close()


def produce(b, topic, nparts, n):
    p = ck.Producer({"bootstrap.servers": b.bootstrap, "acks": "all"})
    for i in range(n):
        p.produce(topic, b"v%d" % i, partition=i % nparts)
    check(p.flush(30) == 0, "producer did not flush")


def standalone_commit(b, group, offsets):
    """Commits as an assign() consumer (generation -1): what tools do."""
    c = ck.Consumer({"bootstrap.servers": b.bootstrap, "group.id": group,
                     "enable.auto.commit": False})
    c.commit(offsets=offsets, asynchronous=False)
    c.close()


# --------------------------------------------------------------------------
# scenarios


def check_listed(b, live, idle):
    """Every client lists and describes the two groups alike."""
    groups = {g.id: g for g in AdminClient({"bootstrap.servers": b.bootstrap}).list_groups(
        timeout=30)}
    check(live in groups and idle in groups, "librdkafka list_groups: %r" % list(groups))
    lg = groups[live]
    check(lg.state == "Stable" and lg.protocol_type == "consumer" and lg.protocol == "range"
          and len(lg.members) == 1, "librdkafka: live group %s %s %s %d members" % (
              lg.state, lg.protocol_type, lg.protocol, len(lg.members)))
    m = lg.members[0]
    check(m.client_id == "live-member" and m.client_host == "/127.0.0.1" and
          len(m.metadata) > 0 and len(m.assignment) > 0,
          "librdkafka: member %r %r md %d asg %d" % (m.client_id, m.client_host,
                                                     len(m.metadata), len(m.assignment)))
    check(b"orders" in m.metadata and b"orders" in m.assignment,
          "member metadata/assignment do not name the topic")
    ig = groups[idle]
    check(ig.state == "Empty" and not ig.members, "librdkafka: idle group %s" % ig.state)

    js = {g["groupId"]: g for g in kafkajs(b, "listGroups")["groups"]}
    check(js.get(live, {}).get("protocolType") == "consumer" and idle in js,
          "kafkajs listGroups: %r" % js)
    desc = {g["groupId"]: g for g in kafkajs(b, "describeGroups",
                                             {"groups": [live, idle, "nosuch"]})["groups"]}
    d = desc[live]
    check(d["state"] == "Stable" and d["protocol"] == "range" and len(d["members"]) == 1 and
          d["members"][0]["clientId"] == "live-member" and d["members"][0]["memberAssignment"],
          "kafkajs describeGroups live: %r" % d)
    check(desc[idle]["state"] == "Empty" and not desc[idle]["members"],
          "kafkajs describeGroups idle: %r" % desc[idle])
    check(desc["nosuch"]["state"] == "Dead" and desc["nosuch"]["errorCode"] == 0,
          "kafkajs describeGroups nosuch: %r" % desc["nosuch"])


def check_raw_views(b, live, idle):
    c = Conn(b)
    try:
        for v in range(5):
            err, gs = list_groups_raw(c, v)
            check(err == NONE and gs.get(live, ("",))[0] == "consumer" and idle in gs,
                  "ListGroups v%d: %r" % (v, gs))
        err, gs = list_groups_raw(c, 4, ["stable"])  # case-insensitive, as KIP-848's coordinator
        check(list(gs) == [live] and gs[live][1] == "Stable", "StatesFilter stable: %r" % gs)
        err, gs = list_groups_raw(c, 4, ["Empty", "Dead"])
        check(idle in gs and live not in gs and gs[idle][1] == "Empty", "StatesFilter Empty: %r" % gs)
        err, gs = list_groups_raw(c, 4, ["CompletingRebalance"])
        check(gs == {}, "StatesFilter CompletingRebalance: %r" % gs)
        for v in range(6):
            d = describe_groups_raw(c, v, [live, "nosuch"], include_ops=True)
            check(d[0]["state"] == "Stable" and d[0]["members"][0]["client_id"] == "live-member"
                  and d[0]["members"][0]["assignment"], "DescribeGroups v%d: %r" % (v, d[0]))
            check(d[1]["state"] == "Dead" and d[1]["error"] == NONE and not d[1]["members"],
                  "DescribeGroups v%d unknown group: %r" % (v, d[1]))
            if v >= 3:  # READ | DELETE | DESCRIBE
                check(d[0]["ops"] == (1 << 3) | (1 << 6) | (1 << 8), "ops %r" % d[0]["ops"])
        d = describe_groups_raw(c, 5, [live], include_ops=False)
        check(d[0]["ops"] == INT32_MIN, "ops without IncludeAuthorizedOperations: %r" % d[0]["ops"])
    finally:
        c.close()


def check_deletes_refused(b, live):
    res = kafkajs(b, "deleteGroups", {"groups": [live]}, expect_error=True)
    check(res["groups"] and res["groups"][0]["errorCode"] == NON_EMPTY_GROUP,
          "kafkajs deleteGroups of a live group: %r" % res)
    res = kafkajs(b, "deleteGroups", {"groups": ["nosuch"]}, expect_error=True)
    check(res["groups"] and res["groups"][0]["errorCode"] == GROUP_ID_NOT_FOUND,
          "kafkajs deleteGroups of an unknown group: %r" % res)
    c = Conn(b)
    try:
        for v in range(3):
            got = delete_groups_raw(c, v, [live, "nosuch"])
            check(got == {live: NON_EMPTY_GROUP, "nosuch": GROUP_ID_NOT_FOUND},
                  "DeleteGroups v%d: %r" % (v, got))
    finally:
        c.close()


def check_offset_delete(b, live, idle):
    c = Conn(b)
    try:
        err, parts = offset_delete_raw(c, live, {"orders": [0], "audit": [0]})
        check(err == NONE and parts == {("orders", 0): GROUP_SUBSCRIBED_TO_TOPIC,
                                        ("audit", 0): NONE},
              "OffsetDelete of a live group: %d %r" % (err, parts))
        check(offset_fetch_raw(c, live, "audit", [0]) == {0: -1}, "live/audit not deleted")
        check(offset_fetch_raw(c, live, "orders", [0])[0] == 4, "live/orders must stay")
        err, parts = offset_delete_raw(c, idle, {"orders": [1, 99], "nosuch": [0]})
        check(err == NONE and parts == {("orders", 1): NONE, ("orders", 99):
                                        UNKNOWN_TOPIC_OR_PARTITION,
                                        ("nosuch", 0): UNKNOWN_TOPIC_OR_PARTITION},
              "OffsetDelete of an idle group: %d %r" % (err, parts))
        check(offset_fetch_raw(c, idle, "orders", [0, 1]) == {0: 5, 1: -1},
              "idle/orders after OffsetDelete")
        err, parts = offset_delete_raw(c, "nosuch", {"orders": [0]})
        check(err == GROUP_ID_NOT_FOUND and parts == {}, "OffsetDelete nosuch: %d %r" % (err, parts))
        err, parts = offset_delete_raw(c, "", {"orders": [0]})
        check(err == INVALID_GROUP_ID, "OffsetDelete of group '': %d" % err)
    finally:
        c.close()


def first_offsets(b, group, topic, nparts):
    """Where a consumer of the group starts on each partition (with
    auto.offset.reset=latest: a committed offset that did not count would
    start it at the end, where nothing comes)."""
    c = ck.Consumer({"bootstrap.servers": b.bootstrap, "group.id": group,
                     "auto.offset.reset": "latest", "enable.auto.commit": False})
    c.subscribe([topic])
    first = {}
    deadline = time.time() + 60
    while time.time() < deadline and len(first) < nparts:
        m = c.poll(0.5)
        if m is not None and not m.error():
            first.setdefault(m.partition(), m.offset())
    c.close()
    return first


def check_reset_and_consume(b, idle):
    """kafkajs setOffsets, then resetOffsets to earliest: a consumer of the
    group starts where each put it."""
    kafkajs(b, "setOffsets", {"groupId": idle, "topic": "orders",
                              "partitions": [{"partition": 0, "offset": "3"},
                                             {"partition": 1, "offset": "6"}]})
    offs = kafkajs(b, "fetchOffsets", {"groupId": idle, "topics": ["orders"]})
    got = {p["partition"]: p["offset"] for p in offs[0]["partitions"]}
    check(got == {0: "3", 1: "6"}, "kafkajs fetchOffsets after setOffsets: %r" % got)
    got = first_offsets(b, idle, "orders", 2)
    check(got == {0: 3, 1: 6}, "consumer after setOffsets started at %r" % got)
    kafkajs(b, "resetOffsets", {"groupId": idle, "topic": "orders", "earliest": True})
    offs = kafkajs(b, "fetchOffsets", {"groupId": idle, "topics": ["orders"]})
    got = {p["partition"]: p["offset"] for p in offs[0]["partitions"]}
    # kafkajs commits its EARLIEST_OFFSET (-2) as the position, for any broker
    check(got == {0: "-2", 1: "-2"}, "kafkajs fetchOffsets after resetOffsets: %r" % got)
    got = first_offsets(b, idle, "orders", 2)
    check(got == {0: 0, 1: 0}, "consumer after resetOffsets started at %r" % got)


def t_admin_groups():
    b = Broker(TSPLUGIN).start()
    live = idle = None
    try:
        a = AdminClient({"bootstrap.servers": b.bootstrap})
        for name, n in (("orders", 2), ("audit", 1)):
            a.create_topics([NewTopic(name, n, 1)])[name].result(20)
        produce(b, "orders", 2, 20)
        produce(b, "audit", 1, 10)
        standalone_commit(b, "idle", [ck.TopicPartition("orders", 0, 5),
                                      ck.TopicPartition("orders", 1, 7)])
        live = LiveMember(b, "live", ["orders"])
        live.wait_assigned(2)
        live.commit([ck.TopicPartition("orders", 0, 4), ck.TopicPartition("audit", 0, 3)])

        check_listed(b, "live", "idle")
        check_raw_views(b, "live", "idle")
        check_deletes_refused(b, "live")
        check_offset_delete(b, "live", "idle")
        check_reset_and_consume(b, "idle")

        # DeleteGroups of the idle group: gone for every client
        res = kafkajs(b, "deleteGroups", {"groups": ["idle"]})
        check(res == [{"groupId": "idle", "errorCode": 0}], "kafkajs deleteGroups idle: %r" % res)
        js = {g["groupId"] for g in kafkajs(b, "listGroups")["groups"]}
        check("idle" not in js and "live" in js, "listed after DeleteGroups: %r" % js)
        live.close()
        live = None
        # durable: after a restart the group and the offsets stay deleted,
        # the live group's offsets stay
        b.stop()
        b.start()
        groups = {g.id for g in AdminClient({"bootstrap.servers": b.bootstrap}).list_groups(
            timeout=30)}
        check("idle" not in groups and "live" in groups, "groups after restart: %r" % groups)
        c = Conn(b)
        try:
            check(offset_fetch_raw(c, "idle", "orders", [0, 1]) == {0: -1, 1: -1},
                  "idle group's offsets came back")
            check(offset_fetch_raw(c, "live", "audit", [0]) == {0: -1},
                  "live/audit deleted offset came back")
            check(offset_fetch_raw(c, "live", "orders", [0, 1]) == {0: 4, 1: -1},
                  "live/orders offsets lost")
            check(delete_groups_raw(c, 2, ["idle"]) == {"idle": GROUP_ID_NOT_FOUND},
                  "deleted group found after restart")
            # the live group is Empty now: deletable, and OffsetDelete of its
            # last offset removes it too (Kafka: Dead)
            err, parts = offset_delete_raw(c, "live", {"orders": [0]})
            check(err == NONE and parts == {("orders", 0): NONE}, "OffsetDelete: %d %r" % (
                err, parts))
            check("live" not in list_groups_raw(c, 4)[1], "group without offsets still listed")
        finally:
            c.close()
        # that deletion was the first save after the start: a whole rewrite
        # of the live offsets; it too survives a restart
        b.stop()
        b.start()
        c = Conn(b)
        try:
            check(list_groups_raw(c, 4)[1] == {}, "groups after the second restart")
            check(offset_fetch_raw(c, "live", "orders", [0]) == {0: -1}, "live/orders came back")
        finally:
            c.close()
        check(b.alive(), "broker died")
    finally:
        if live:
            live.close()
        b.cleanup()


def wait_tiered(b, topic):
    """Waits until every closed segment has a remote copy and local
    retention removed the oldest; returns the placement."""
    deadline = time.time() + 180
    rows = []
    while time.time() < deadline:
        rows = placement(b, topic)
        if len(rows) > 4 and rows[0]["location"] == "remote" and \
                all(r["location"] != "local" for r in rows[:-1]):
            return rows
        time.sleep(0.3)
    raise Fail("not tiered: %r" % [(r["base_offset"], r["location"]) for r in rows])


def t_admin_log_dirs():
    b = Broker(TSPLUGIN, {"log.segment.bytes": str(64 * 1024),
                          "log.local.retention.bytes": str(128 * 1024),
                          "remote.log.manager.task.interval.ms": "100",
                          "log.retention.ms": "-1"}).start()
    try:
        n, base_ts, peak = 20000, 1_600_000_000_000, 7777
        p = ck.Producer({"bootstrap.servers": b.bootstrap, "acks": "all", "linger.ms": 20,
                         "enable.idempotence": True, "batch.num.messages": 500})
        for i in range(n):
            ts = base_ts + i + (10_000_000 if i == peak else 0)  # one record far ahead
            while True:
                try:
                    p.produce("tiered", b"%08d-" % i + b"x" * 60, partition=0, timestamp=ts)
                    break
                except BufferError:
                    p.poll(0.1)
        check(p.flush(120) == 0, "producer did not flush")
        a = AdminClient({"bootstrap.servers": b.bootstrap})
        a.create_topics([NewTopic("fresh", 1, 1)])["fresh"].result(20)
        produce(b, "fresh", 1, 5)
        rows = wait_tiered(b, "tiered")

        c = Conn(b)
        try:
            # sizes and offsets equal the placement (read twice around the
            # answer: equal when nothing moved in between)
            deadline = time.time() + 60
            while True:
                rows = placement(b, "tiered")
                top, dirs = describe_log_dirs_raw(c, 4)
                lo = list_offsets_raw(c, 9, "tiered", [(0, -4), (0, -5), (0, -2), (0, -1)])
                if placement(b, "tiered") == rows or time.time() > deadline:
                    break
            local = [r for r in rows if r["location"] in ("local", "local+remote")]
            remote = [r for r in rows if r["location"] in ("remote", "local+remote")]
            check(top == NONE and len(dirs) == 1 and dirs[0]["error"] == NONE, "log dirs %r" % dirs)
            d = dirs[0]
            check(d["dir"] == os.path.realpath(os.path.join(b.root, "data")),
                  "LogDir %r" % d["dir"])
            want = sum(r["size_bytes"] for r in local)
            check(d["parts"].get(("tiered", 0)) == (want, 0, 0),
                  "DescribeLogDirs tiered/0 %r, placement's local bytes %d" % (
                      d["parts"].get(("tiered", 0)), want))
            check(("fresh", 0) in d["parts"] and d["parts"][("fresh", 0)][0] > 0,
                  "fresh/0 %r" % (d["parts"].get(("fresh", 0)),))
            check(0 < d["usable"] <= d["total"], "total %d usable %d" % (d["total"], d["usable"]))
            check(lo[0][1:4] == (NONE, -1, local[0]["base_offset"]),
                  "ListOffsets -4 %r, local start %d" % (lo[0], local[0]["base_offset"]))
            check(lo[0][3] > 0, "nothing left the local disk")
            check(lo[1][1:4] == (NONE, -1, remote[-1]["last_offset"]),
                  "ListOffsets -5 %r, last remote offset %d" % (lo[1], remote[-1]["last_offset"]))
            check(lo[2][3] == 0 and lo[3][3] == n, "ListOffsets -2/-1 %r" % lo[2:])
            # a topic with nothing tiered: -5 is -1 (epoch -1), -4 the log start
            fr = list_offsets_raw(c, 9, "fresh", [(0, -5), (0, -4)])
            check(fr[0][1:] == (NONE, -1, -1, -1) and fr[1][1:4] == (NONE, -1, 0),
                  "fresh: %r" % fr)
            # -3 (v7+): the record with the largest timestamp, found in the bucket
            check(peak < lo[0][3], "the peak record %d is still local (from %d)" % (peak, lo[0][3]))
            mx = list_offsets_raw(c, 7, "tiered", [(0, -3)])
            check(mx[0][1:4] == (NONE, base_ts + peak + 10_000_000, peak), "max timestamp %r" % mx)
            # Kafka's version gates, per partition
            for v, ts in ((8, -5), (7, -4), (6, -3), (9, -6)):
                got = list_offsets_raw(c, v, "tiered", [(0, ts), (0, -1)])
                check(got[0][1] == UNSUPPORTED_VERSION and got[1][1:4] == (NONE, -1, n),
                      "ListOffsets v%d ts %d: %r" % (v, ts, got))
            # DescribeLogDirs older versions and a topic filter
            for v in range(4):
                top, dirs = describe_log_dirs_raw(c, v, {"tiered": [0, 5], "nosuch": [0]})
                check(list(dirs[0]["parts"]) == [("tiered", 0)] and "total" not in dirs[0],
                      "DescribeLogDirs v%d filtered: %r" % (v, dirs[0]["parts"]))
        finally:
            c.close()
        # kafkajs reads the same log start and end (ListOffsets -2/-1)
        js = kafkajs(b, "fetchTopicOffsets", {"topic": "tiered"})
        check(js == [{"partition": 0, "offset": str(n), "high": str(n), "low": "0"}],
              "kafkajs fetchTopicOffsets %r" % js)
        check(b.alive(), "broker died")
    finally:
        b.cleanup()


def join_group_v0(c, group, ptype, proto, metadata):
    """JoinGroup v0 (no KIP-394 round): (error, generation, member id)."""
    body = enc_str(group, 0) + struct.pack(">i", 10000) + enc_str("", 0) + enc_str(ptype, 0)
    body += enc_arr(1, 0) + enc_str(proto, 0) + struct.pack(">i", len(metadata)) + metadata
    rd = c.call(JOIN_GROUP, 0, body, False)
    err, gen = rd.take(">hi")
    dec_str(rd, 0)  # protocol
    dec_str(rd, 0)  # leader
    return err, gen, dec_str(rd, 0)


def t_admin_group_states_mem():
    b = Broker(MEMPLUGIN).start()
    try:
        a = AdminClient({"bootstrap.servers": b.bootstrap})
        a.create_topics([NewTopic("cfg", 1, 1)])["cfg"].result(20)
        md, asg = b"\x00\x01worker-metadata\xff\x00", b"\x00\x00assignment\x01\x02"
        m = Conn(b)
        c = Conn(b)
        try:
            err, gen, mid = join_group_v0(m, "wk", "connect", "sessioned", md)
            check(err == NONE and gen == 1 and mid, "JoinGroup: %d %d %r" % (err, gen, mid))
            d = describe_groups_raw(c, 5, ["wk"])[0]
            check(d["state"] == "CompletingRebalance" and d["protocol_type"] == "connect" and
                  d["protocol"] == "" and len(d["members"]) == 1 and
                  d["members"][0]["metadata"] == b"" and d["members"][0]["assignment"] == b"",
                  "not yet stable: %r" % d)
            _, gs = list_groups_raw(c, 4, ["completingrebalance"])
            check(gs == {"wk": ("connect", "CompletingRebalance")}, "listed %r" % gs)
            err, parts = offset_delete_raw(c, "wk", {"cfg": [0], "nosuch": [1]})
            check(err == NON_EMPTY_GROUP and parts == {("nosuch", 1): UNKNOWN_TOPIC_OR_PARTITION},
                  "OffsetDelete of a live connect group: %d %r" % (err, parts))
            check(delete_groups_raw(c, 1, ["wk"]) == {"wk": NON_EMPTY_GROUP}, "DeleteGroups live")
            body = enc_str("wk", 0) + struct.pack(">i", gen) + enc_str(mid, 0) + enc_arr(1, 0)
            body += enc_str(mid, 0) + struct.pack(">i", len(asg)) + asg
            rd = m.call(SYNC_GROUP, 0, body, False)
            check(rd.take(">h") == NONE and dec_bytes(rd, 0) == asg, "SyncGroup")
            d = describe_groups_raw(c, 0, ["wk"])[0]
            check(d["state"] == "Stable" and d["protocol"] == "sessioned" and
                  d["members"][0]["metadata"] == md and d["members"][0]["assignment"] == asg and
                  d["members"][0]["client_host"] == "/127.0.0.1" and
                  d["members"][0]["client_id"] == "test", "stable: %r" % d)
            rd = m.call(LEAVE_GROUP, 0, enc_str("wk", 0) + enc_str(mid, 0), False)
            check(rd.take(">h") == NONE, "LeaveGroup")
            d = describe_groups_raw(c, 4, ["wk"])[0]
            check(d["state"] == "Empty" and d["members"] == [], "after leaving: %r" % d)
            got = delete_groups_raw(c, 2, ["wk"])
            check(got == {"wk": NONE}, "DeleteGroups of the emptied group: %r" % got)
        finally:
            m.close()
            c.close()
        c = Conn(b)
        try:
            check(describe_groups_raw(c, 3, ["wk"])[0]["state"] == "Dead", "deleted group")
            check(list_groups_raw(c, 3)[1] == {}, "deleted group listed")
        finally:
            c.close()
    finally:
        b.cleanup()


def t_admin_cluster_mem():
    b = Broker(MEMPLUGIN).start()
    try:
        a = AdminClient({"bootstrap.servers": b.bootstrap})
        a.create_topics([NewTopic("t1", 3, 1)])["t1"].result(20)
        c = Conn(b)
        try:
            d0 = describe_cluster_raw(c, 0)
            d1 = describe_cluster_raw(c, 1, include_ops=True)
            check(d0["error"] == NONE and d0["brokers"] == [(0, "127.0.0.1", b.port, None)] and
                  d0["controller"] == 0 and d0["ops"] == INT32_MIN and d0["cluster_id"],
                  "DescribeCluster v0 %r" % d0)
            check(d1["error"] == NONE and d1["endpoint_type"] == 1 and
                  d1["cluster_id"] == d0["cluster_id"] and d1["ops"] == 8096,
                  "DescribeCluster v1 %r" % d1)
            e = describe_cluster_raw(c, 1, endpoint_type=2)
            check(e["error"] == MISMATCHED_ENDPOINT_TYPE and e["brokers"] == [] and
                  e["controller"] == -1, "DescribeCluster to controllers: %r" % e)
            e = describe_cluster_raw(c, 1, endpoint_type=7)
            check(e["error"] == UNSUPPORTED_ENDPOINT_TYPE, "endpoint type 7: %r" % e)
            # ApiVersions: exactly what is served
            av = api_versions_raw(c)
            want = {LIST_OFFSETS: (1, 9), DESCRIBE_GROUPS: (0, 5), LIST_GROUPS: (0, 4),
                    DESCRIBE_LOG_DIRS: (0, 4), DELETE_GROUPS: (0, 2), OFFSET_DELETE: (0, 0),
                    DESCRIBE_CLUSTER: (0, 1)}
            for k, rng in want.items():
                check(av.get(k) == rng, "ApiVersions key %d: %r, want %r" % (k, av.get(k), rng))
        finally:
            c.close()
        js = kafkajs(b, "describeCluster")
        check(js["clusterId"] == d0["cluster_id"] and js["controller"] == 0 and
              [(x["nodeId"], x["port"]) for x in js["brokers"]] == [(0, b.port)],
              "kafkajs describeCluster %r" % js)
        rc, out, err = kcat(["-b", b.bootstrap, "-L", "-J"])
        md = json.loads(out)
        check(rc == 0 and [x["id"] for x in md["brokers"]] == [0] and
              any(t["topic"] == "t1" and len(t["partitions"]) == 3 for t in md["topics"]),
              "kcat -L: %r" % md)
        # versions past the ones served close the connection
        for api, v, body, f in ((LIST_GROUPS, 5, b"\x01\x01\x00", True),
                                (DESCRIBE_CLUSTER, 2, b"\x00\x01\x00\x00", True),
                                (OFFSET_DELETE, 1, b"", False),
                                (LIST_OFFSETS, 10, b"", True),
                                (DESCRIBE_LOG_DIRS, 5, b"\x00\x00", True)):
            c = Conn(b)
            try:
                check(c.call(api, v, body, f) is None, "key %d v%d answered" % (api, v))
            finally:
                c.close()
        # and the broker still serves
        c = Conn(b)
        try:
            check(describe_cluster_raw(c, 0)["error"] == NONE, "broker stopped answering")
        finally:
            c.close()
    finally:
        b.cleanup()


TESTS = {
    "admin_groups": (t_admin_groups, ["TSPLUGIN"]),
    "admin_log_dirs": (t_admin_log_dirs, ["TSPLUGIN", "TIERCTL"]),
    "admin_group_states_mem": (t_admin_group_states_mem, ["MEMPLUGIN"]),
    "admin_cluster_mem": (t_admin_cluster_mem, ["MEMPLUGIN"]),
}

if __name__ == "__main__":
    run(TESTS)
