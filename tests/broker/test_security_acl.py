#!/usr/bin/python3
"""test_security_acl.py — issue 11 item 3: Kafka ACLs (authorizer.class.name)
with real clients: kafkajs 2.2.4 manages the ACLs (CreateAcls/DescribeAcls/
DeleteAcls v0-1; Debian's confluent-kafka 1.7.0 has no ACL admin calls),
confluent-kafka and kcat produce and consume as SCRAM users made with
`tierctl users`, and raw requests cover the flexible versions (v2, v3) and
malformed input.

  acl_mem            the issue's acceptance: a principal with only READ on one
                     topic (and on groups app-*, a PREFIXED binding) cannot
                     produce to it, sees no other topic in Metadata, cannot
                     delete it, cannot join a group it has no ACL for, cannot
                     create ACLs; it consumes with group app-1. DENY beats its
                     ALLOW; the super user does everything; ACLs survive a
                     restart; refusals are logged with principal and host;
                     an offset commit needs READ on the topic too; an
                     idempotent producer is refused (CLUSTER_AUTHORIZATION_FAILED)
                     until the principal has WRITE on some topic (KIP-679).
  acl_disabled_mem   without an authorizer the ACL APIs answer
                     SECURITY_DISABLED (54) and everything else is unchanged.
  acl_malformed_mem  CreateAcls v2 with invalid bindings: INVALID_REQUEST for
                     each, the valid one stored; DescribeAcls v3 and DeleteAcls
                     v3 (flexible) see and remove it; a truncated CreateAcls
                     closes only its connection; an unknown authorizer.class.name
                     or allow.everyone.if.no.acl.found value refuses to start;
                     allow.everyone.if.no.acl.found=true opens resources no ACL
                     names and only those.

Run like test_broker.py with TIERBROKER, MEMPLUGIN and TIERCTL set; the
kafkajs parts need tests/broker/node/node_modules (`npm ci --offline`).
"""
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_broker import (BROKER, MEMPLUGIN, Broker, Rd, check, consume_all, cs, kcat,  # noqa: E402
                         raw_request, raw_response, run, uv)
from test_security_sasl import add_user, sasl_broker, sasl_props  # noqa: E402
import confluent_kafka as ck  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
NODE_DIR = os.path.join(HERE, "node")
NODE = shutil.which("node")
AUTHORIZER = "kafka.security.authorizer.AclAuthorizer"
MECH = "SCRAM-SHA-256"


def have_kafkajs():
    return NODE and os.path.isdir(os.path.join(NODE_DIR, "node_modules", "kafkajs"))


def acl_op(bootstrap, op, args, user=None, password=None):
    """One kafkajs ACL call (node/acl_ops.js) as user; its JSON answer."""
    cmd = [NODE, os.path.join(NODE_DIR, "acl_ops.js"), bootstrap, op, json.dumps(args)]
    if user:
        cmd.append(json.dumps({"mechanism": MECH.lower(), "username": user,
                               "password": password}))
    r = subprocess.run(cmd, capture_output=True, timeout=120, cwd=NODE_DIR)
    lines = r.stdout.decode().strip().splitlines()
    check(lines, "acl_ops.js %s printed nothing: %s" % (op, r.stderr.decode()[-500:]))
    return json.loads(lines[-1])


def binding(rtype, name, principal, op, perm="ALLOW", pattern="LITERAL", host="*"):
    return {"resourceType": rtype, "resourceName": name, "resourcePatternType": pattern,
            "principal": principal, "host": host, "operation": op, "permissionType": perm}


ANY_FILTER = {"resourceType": "ANY", "resourcePatternType": "ANY", "operation": "ANY",
              "permissionType": "ANY"}


def acl_broker(extra=None):
    b = sasl_broker("SASL_PLAINTEXT", dict({"authorizer.class.name": AUTHORIZER,
                                            "super.users": "User:admin"}, **(extra or {})))
    b.write_props()
    os.makedirs(os.path.join(b.root, "data"), exist_ok=True)
    add_user(b, "admin", "admin-pw", MECH)
    add_user(b, "alice", "alice-pw", MECH)
    return b


def conf(b, user, password, **more):
    c = {"bootstrap.servers": "127.0.0.1:%d" % b.sasl_port}
    c.update(sasl_props("SASL_PLAINTEXT", MECH, user, password))
    c.update(more)
    return c


def produce_errors(cfg, topic, n=3):
    """Produces n values; the delivery error codes (None when delivered)."""
    p = ck.Producer(dict(cfg, **{"message.timeout.ms": 15000}))
    errs = []
    for i in range(n):
        p.produce(topic, b"v-%d" % i, on_delivery=lambda e, m: errs.append(e.code() if e else None))
    p.flush(30)
    return errs


def consumer_errors(cfg, topic, group, wait=15):
    """The error codes a consumer of group sees within `wait` seconds, and
    how many messages it got."""
    c = ck.Consumer(dict(cfg, **{"group.id": group, "auto.offset.reset": "earliest"}))
    c.subscribe([topic])
    codes, got = set(), 0
    deadline = time.time() + wait
    while time.time() < deadline and not codes:
        for m in c.consume(10, 0.5):
            if m.error():
                codes.add(m.error().code())
            else:
                got += 1
    c.close()
    return codes, got


def t_acl_mem():
    if not have_kafkajs():
        print("SKIP: tests/broker/node has no kafkajs (npm ci --offline)")
        sys.exit(77)
    b = acl_broker()
    b.start()
    try:
        sb = "127.0.0.1:%d" % b.sasl_port
        admin_cfg = conf(b, "admin", "admin-pw")
        alice_cfg = conf(b, "alice", "alice-pw")
        # the super user creates topics and writes, with no ACL at all
        a = AdminClient(admin_cfg)
        for f in a.create_topics([NewTopic("orders", 1, 1), NewTopic("other", 1, 1)]).values():
            f.result(30)
        check(produce_errors(admin_cfg, "orders", 5) == [None] * 5, "super user could not produce")
        # before any ACL alice may do nothing (allow.everyone.if.no.acl.found=false)
        check(produce_errors(alice_cfg, "orders", 1) != [None], "alice produced without an ACL")
        r = acl_op(sb, "createAcls", {"acl": [binding("TOPIC", "orders", "User:alice", "READ")]},
                   "alice", "alice-pw")
        check("error" in r and "CLUSTER_AUTHORIZATION_FAILED" in json.dumps(r),
              "alice created an ACL: %s" % r)
        r = acl_op(sb, "createAcls", {"acl": [
            binding("TOPIC", "orders", "User:alice", "READ"),
            binding("GROUP", "app-", "User:alice", "READ", pattern="PREFIXED")]},
            "admin", "admin-pw")
        check(r.get("ok", False) is not False, "createAcls: %s" % r)
        r = acl_op(sb, "describeAcls", ANY_FILTER, "admin", "admin-pw")
        res = r.get("ok", {}).get("resources", [])
        names = sorted((x["resourceType"], x["resourceName"], x["resourcePatternType"]) for x in res)
        check(names == [("GROUP", "app-", "PREFIXED"), ("TOPIC", "orders", "LITERAL")],
              "describeAcls: %s" % r)
        # alice: Metadata hides "other"
        md = AdminClient(alice_cfg).list_topics(timeout=15)
        check(sorted(md.topics) == ["orders"], "alice sees %s" % sorted(md.topics))
        # cannot produce to the topic it may read
        errs = produce_errors(alice_cfg, "orders", 2)
        check(errs == [ck.KafkaError.TOPIC_AUTHORIZATION_FAILED] * 2, "alice's produce: %s" % errs)
        # cannot delete it
        alice_admin = AdminClient(alice_cfg)
        fs = alice_admin.delete_topics(["orders"], operation_timeout=10)
        try:
            fs["orders"].result(30)
            check(False, "alice deleted orders")
        except ck.KafkaException as e:
            check(e.args[0].code() == ck.KafkaError.TOPIC_AUTHORIZATION_FAILED,
                  "delete as alice: %s" % e)
        # consumes with a group app-* (PREFIXED READ), not with another group
        got = consume_all(sb, "orders", 5, group="app-1", timeout=60, conf=sasl_props(
            "SASL_PLAINTEXT", MECH, "alice", "alice-pw"))
        check(sorted(v for _, _, v in got) == [b"v-%d" % i for i in range(5)],
              "alice read %d of 5 with group app-1" % len(got))
        codes, n = consumer_errors(alice_cfg, "orders", "elsewhere")
        check(ck.KafkaError.GROUP_AUTHORIZATION_FAILED in codes and n == 0,
              "group without an ACL: errors %s, %d messages" % (codes, n))
        # kcat as alice: -L lists only orders
        rc, out, err = kcat(["-L", "-b", sb, "-m", "10"] + sum(
            (["-X", "%s=%s" % kv] for kv in sasl_props("SASL_PLAINTEXT", MECH, "alice",
                                                       "alice-pw").items()), []))
        check(rc == 0 and b'topic "orders"' in out and b'topic "other"' not in out,
              "kcat -L as alice: %r %r" % (out[-300:], err[-300:]))
        # DENY beats ALLOW: a DENY DESCRIBE hides the topic it may read
        r = acl_op(sb, "createAcls", {"acl": [binding("TOPIC", "ord", "User:alice", "DESCRIBE",
                                                      perm="DENY", pattern="PREFIXED")]},
                   "admin", "admin-pw")
        check(r.get("ok", False) is not False, "createAcls DENY: %s" % r)
        md = AdminClient(alice_cfg).list_topics(timeout=15)
        check(sorted(md.topics) == [], "alice sees %s despite the DENY" % sorted(md.topics))
        r = acl_op(sb, "deleteAcls", {"filters": [dict(ANY_FILTER, permissionType="DENY")]},
                   "admin", "admin-pw")
        gone = r.get("ok", {}).get("filterResponses", [{}])[0].get("matchingAcls", [])
        check(len(gone) == 1 and gone[0]["resourceName"] == "ord", "deleteAcls: %s" % r)
        md = AdminClient(alice_cfg).list_topics(timeout=15)
        check(sorted(md.topics) == ["orders"], "after deleting the DENY alice sees %s"
              % sorted(md.topics))
        log = b.log()
        check("authorization failed: principal User:alice from host 127.0.0.1" in log,
              "refusals not logged:\n" + log[-1500:])
        # ACLs survive a restart
        b.stop()
        b.start()
        r = acl_op(sb, "describeAcls", ANY_FILTER, "admin", "admin-pw")
        check(len(r.get("ok", {}).get("resources", [])) == 2, "after restart: %s" % r)
        check(sorted(AdminClient(alice_cfg).list_topics(timeout=15).topics) == ["orders"],
              "after restart alice's Metadata changed")
        errs = produce_errors(alice_cfg, "orders", 1)
        check(errs == [ck.KafkaError.TOPIC_AUTHORIZATION_FAILED], "after restart: %s" % errs)
        # commits: READ on the group and on the topic
        c = ck.Consumer(dict(alice_cfg, **{"group.id": "app-commit"}))
        try:
            res = c.commit(offsets=[ck.TopicPartition("orders", 0, 3)], asynchronous=False)
            check(res[0].error is None, "alice's commit to orders: %s" % res[0].error)
            try:
                res = c.commit(offsets=[ck.TopicPartition("other", 0, 1)], asynchronous=False)
                bad = res[0].error
            except ck.KafkaException as e:
                bad = e.args[0]
            check(bad is not None and bad.code() == ck.KafkaError.TOPIC_AUTHORIZATION_FAILED,
                  "alice's commit to other: %s" % bad)
        finally:
            c.close()
        # KIP-679: an idempotent producer needs IDEMPOTENT_WRITE on the cluster or WRITE on
        # some topic; alice has neither, then WRITE on alice-out
        fatal = []
        p = ck.Producer(dict(alice_cfg, **{"enable.idempotence": True,
                                            "message.timeout.ms": 10000,
                                            "error_cb": lambda e: fatal.append(e.code())}))
        try:
            p.produce("orders", b"idem")
            p.flush(15)
        except ck.KafkaException as e:  # the producer turns fatal: raised here or to error_cb
            fatal.append(e.args[0].code())
        check(ck.KafkaError.CLUSTER_AUTHORIZATION_FAILED in fatal,
              "idempotent producer without WRITE anywhere: %s" % fatal)
        a = AdminClient(admin_cfg)
        a.create_topics([NewTopic("alice-out", 1, 1)])["alice-out"].result(30)
        r = acl_op(sb, "createAcls", {"acl": [binding("TOPIC", "alice-out", "User:alice",
                                                      "WRITE")]}, "admin", "admin-pw")
        check(r.get("ok", False) is not False, "createAcls WRITE: %s" % r)
        errs = produce_errors(dict(alice_cfg, **{"enable.idempotence": True}), "alice-out", 3)
        check(errs == [None] * 3, "idempotent producer with WRITE on alice-out: %s" % errs)
        # the super user deletes a topic
        a.delete_topics(["other"], operation_timeout=10)["other"].result(30)
        st = os.stat(os.path.join(b.root, "data", ".broker", "acls"))
        check(st.st_mode & 0o077 == 0, "the ACL file is mode %o" % (st.st_mode & 0o777))
    finally:
        b.cleanup()


def acl_request(sock, api, version, corr, body):
    raw_request(sock, api, version, corr, body, flexible=version >= 2)
    r = raw_response(sock)
    check(r is not None, "no answer to api %d v%d" % (api, version))
    rd = Rd(r)
    rd.take(">i")
    if version >= 2:
        rd.tags()
    return rd


def create_v2(bindings):
    body = uv(len(bindings) + 1)
    for rt, name, pt, principal, host, op, perm in bindings:
        body += struct.pack(">b", rt) + cs(name) + struct.pack(">b", pt) + cs(principal) + \
            cs(host) + struct.pack(">bb", op, perm) + b"\x00"
    return body + b"\x00"


def create_results(rd):
    rd.take(">i")
    out = []
    for _ in range(rd.uvarint() - 1):
        err = rd.take(">h")
        msg = rd.cstr()
        rd.tags()
        out.append((err, msg))
    return out


def t_acl_disabled_mem():
    b = Broker(MEMPLUGIN)
    b.start()
    try:
        s = socket.create_connection(("127.0.0.1", b.port), timeout=10)
        res = create_results(acl_request(s, 30, 2, 1, create_v2(
            [(2, "t", 3, "User:a", "*", 3, 3)])))
        check(res and res[0][0] == 54 and "authorizer.class.name" in res[0][1],
              "CreateAcls without an authorizer: %s" % res)
        body = struct.pack(">b", 1) + uv(0) + struct.pack(">b", 1) + uv(0) + uv(0) + \
            struct.pack(">bb", 1, 1) + b"\x00"
        rd = acl_request(s, 29, 3, 2, body)
        rd.take(">i")
        check(rd.take(">h") == 54, "DescribeAcls without an authorizer")
        if have_kafkajs():
            r = acl_op(b.bootstrap, "describeAcls", ANY_FILTER)
            check("error" in r and "SECURITY_DISABLED" in json.dumps(r), "kafkajs: %s" % r)
        rc, _, err = kcat(["-P", "-b", b.bootstrap, "-t", "free"], inp=b"x\n")
        check(rc == 0, "produce without an authorizer: %s" % err)
    finally:
        b.cleanup()


def refused_start(extra, needle):
    b = Broker(MEMPLUGIN, dict(extra))
    try:
        b.write_props()
        os.makedirs(os.path.join(b.root, "data"), exist_ok=True)
        r = subprocess.run([BROKER, b.props], capture_output=True, timeout=60)
        out = (r.stdout + r.stderr).decode(errors="replace")
        check(r.returncode != 0 and needle in out, "%s: rc %d, %s" % (extra, r.returncode, out))
    finally:
        b.cleanup()


TOPIC_OPS = sum(1 << op for op in (3, 4, 5, 6, 7, 8, 10, 11))  # READ..ALTER_CONFIGS


def metadata_ops(port, topic):
    """Metadata v9 of one topic asking for AuthorizedOperations:
    (error, topic ops, cluster ops)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        raw_request(s, 3, 9, 1, uv(2) + cs(topic) + b"\x00" + b"\x00\x01\x01\x00",
                    flexible=True)
        rd = Rd(raw_response(s))
        rd.take(">i")
        rd.tags()
        rd.take(">i")
        for _ in range(rd.uvarint() - 1):  # brokers
            rd.take(">i"), rd.cstr(), rd.take(">i"), rd.cstr(), rd.tags()
        rd.cstr()
        rd.take(">i")
        check(rd.uvarint() - 1 == 1, "Metadata v9: one topic")
        err, _, _ = rd.take(">h"), rd.cstr(), rd.take(">b")
        for _ in range(rd.uvarint() - 1):
            rd.take(">hiii")
            for _ in range(3):
                for _ in range(rd.uvarint() - 1):
                    rd.take(">i")
            rd.tags()
        tops = rd.take(">i")
        rd.tags()
        return err, tops, rd.take(">i")
    finally:
        s.close()


def t_acl_malformed_mem():
    refused_start({"authorizer.class.name": "com.example.MyAuthorizer"},
                  "authorizer.class.name=com.example.MyAuthorizer is not available")
    refused_start({"authorizer.class.name": AUTHORIZER, "allow.everyone.if.no.acl.found": "yes"},
                  "allow.everyone.if.no.acl.found")
    b = Broker(MEMPLUGIN, {"authorizer.class.name":
                           "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                           "super.users": "User:ANONYMOUS"})
    b.start()
    try:
        s = socket.create_connection(("127.0.0.1", b.port), timeout=10)
        bad = [(99, "t", 3, "User:a", "*", 3, 3),          # unknown resource type
               (2, "t", 3, "alice", "*", 3, 3),            # principal without User:
               (2, "t", 3, "User:a", "not-an-ip", 3, 3),   # host
               (4, "other", 3, "User:a", "*", 7, 3),       # cluster name
               (2, "t", 2, "User:a", "*", 3, 3),           # MATCH is a filter
               (2, "t", 3, "User:a", "*", 1, 3),           # operation ANY
               (2, "", 3, "User:a", "*", 3, 3)]            # empty name
        good = (2, "raw-", 4, "User:bob", "10.1.2.3", 4, 3)
        res = create_results(acl_request(s, 30, 2, 1, create_v2(bad + [good])))
        check([e for e, _ in res] == [42] * len(bad) + [0], "CreateAcls v2 results: %s" % res)
        check(all(m for _, m in res[:-1]), "refusals without a message: %s" % res)
        # DescribeAcls v3 (flexible), MATCH filter on a name the prefix covers
        body = struct.pack(">b", 2) + cs("raw-topic") + struct.pack(">b", 2) + uv(0) + uv(0) + \
            struct.pack(">bb", 1, 1) + b"\x00"
        rd = acl_request(s, 29, 3, 2, body)
        rd.take(">i")
        check(rd.take(">h") == 0, "DescribeAcls v3 error")
        rd.cstr()
        check(rd.uvarint() - 1 == 1, "DescribeAcls v3: one resource")
        rt, name, pt = rd.take(">b"), rd.cstr(), rd.take(">b")
        check(rd.uvarint() - 1 == 1, "DescribeAcls v3: one ACL")
        who = (rd.cstr(), rd.cstr(), rd.take(">b"), rd.take(">b"))
        check((rt, name, pt) == (2, "raw-", 4) and who == ("User:bob", "10.1.2.3", 4, 3),
              "DescribeAcls v3 answered %s %s" % ((rt, name, pt), who))
        # a truncated CreateAcls closes that connection only
        t = socket.create_connection(("127.0.0.1", b.port), timeout=10)
        raw_request(t, 30, 2, 9, create_v2([good])[:9], flexible=True)
        check(raw_response(t) is None, "a truncated CreateAcls was answered")
        check("malformed CreateAcls" in b.log(), "the malformed request was not logged")
        # DeleteAcls v3 removes it; the other connection still works
        body = uv(2) + struct.pack(">b", 1) + uv(0) + struct.pack(">b", 1) + cs("User:bob") + \
            uv(0) + struct.pack(">bb", 1, 1) + b"\x00" + b"\x00"
        rd = acl_request(s, 31, 3, 3, body)
        rd.take(">i")
        check(rd.uvarint() - 1 == 1, "DeleteAcls v3: one filter result")
        check(rd.take(">h") == 0, "DeleteAcls v3 error")
        rd.cstr()
        check(rd.uvarint() - 1 == 1, "DeleteAcls v3 removed not exactly one")
        with open(os.path.join(b.root, "data", ".broker", "acls")) as f:
            check("User:bob" not in f.read(), "the ACL file still holds the deleted binding")
        rc, out, err = kcat(["-L", "-b", b.bootstrap, "-m", "10"])
        check(rc == 0, "broker stopped serving: %s" % err)
    finally:
        b.cleanup()
    # allow.everyone.if.no.acl.found=true: open where no ACL applies, closed where one does
    b = Broker(MEMPLUGIN, {"authorizer.class.name": AUTHORIZER,
                           "allow.everyone.if.no.acl.found": "true"})
    b.start()
    try:
        rc, _, err = kcat(["-P", "-b", b.bootstrap, "-t", "open-topic"], inp=b"x\n")
        check(rc == 0, "allow.everyone: produce refused: %s" % err)
        os.makedirs(os.path.join(b.root, "data", ".broker"), exist_ok=True)
        b.stop()
        with open(os.path.join(b.root, "data", ".broker", "acls"), "w") as f:
            f.write("# tierbroker acls v1\n" + json.dumps({
                "resource_type": "TOPIC", "pattern_type": "LITERAL", "name": "closed-topic",
                "principal": "User:someone", "host": "*", "operation": "WRITE",
                "permission": "ALLOW"}) + "\n")
        b.start()
        errs = produce_errors({"bootstrap.servers": b.bootstrap}, "closed-topic", 1)
        check(errs == [ck.KafkaError.TOPIC_AUTHORIZATION_FAILED], "closed-topic: %s" % errs)
        check(produce_errors({"bootstrap.servers": b.bootstrap}, "open-topic", 1) == [None],
              "open-topic refused")
        # AuthorizedOperations (Metadata v9): everything where no ACL applies, and a named
        # topic that may not be described is TOPIC_AUTHORIZATION_FAILED (29)
        err, tops, cops = metadata_ops(b.port, "open-topic")
        check(err == 0 and tops == TOPIC_OPS and cops != -2**31 and cops & (1 << 7),
              "open-topic: error %d, topic ops %#x, cluster ops %#x" % (err, tops, cops))
        err, tops, _ = metadata_ops(b.port, "closed-topic")
        check(err == 29 and tops == -2**31, "closed-topic: error %d, ops %#x" % (err, tops))
        # a broken ACL file refuses to start, naming the line
        b.stop()
        with open(os.path.join(b.root, "data", ".broker", "acls"), "a") as f:
            f.write("{not json\n")
        r = subprocess.run([BROKER, b.props], capture_output=True, timeout=60)
        out = (r.stdout + r.stderr).decode(errors="replace")
        check(r.returncode != 0 and "acls line 3" in out, "broken ACL file: %d %s"
              % (r.returncode, out))
    finally:
        b.cleanup()


TESTS = {
    "acl_mem": (t_acl_mem, ["MEMPLUGIN", "TIERCTL"]),
    "acl_disabled_mem": (t_acl_disabled_mem, ["MEMPLUGIN"]),
    "acl_malformed_mem": (t_acl_malformed_mem, ["MEMPLUGIN"]),
}

if __name__ == "__main__":
    run(TESTS)
