#!/usr/bin/python3
"""test_acl_cluster.py — issue 11 item 3 in a cluster: ACLs live in etcd
(one acls/ key per binding) and every broker applies them from its watch.

  acl_cluster   two brokers with the built-in authorizer, each with a
                PLAINTEXT listener (replication and the test's admin: ANONYMOUS
                is a super user there) and a SASL_PLAINTEXT one for alice. A
                CreateAcls through broker 1 lands in etcd and broker 2 then
                shows alice the topic it hid before; a DeleteAcls through
                broker 2 hides it again on broker 1; a broker restarted
                reads the bindings back from etcd.

A real etcd and real tierbrokers (cluster.py), confluent-kafka for alice, raw
CreateAcls v2 / DeleteAcls v2 requests for the super user.
"""
import os
import socket
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import Cluster, check, free_port, run, wait_until  # noqa: E402
from test_broker import cs, uv  # noqa: E402
from test_security_acl import acl_request, create_results, create_v2  # noqa: E402
from test_security_sasl import sasl_props  # noqa: E402

from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

MECH = "SCRAM-SHA-256"
READ_ALICE = (2, "shared", 3, "User:alice", "*", 3, 3)  # TOPIC LITERAL ... READ ALLOW


def alice_topics(node):
    conf = {"bootstrap.servers": "127.0.0.1:%d" % node.sasl_port}
    conf.update(sasl_props("SASL_PLAINTEXT", MECH, "alice", "alice-pw"))
    try:
        return sorted(t for t in AdminClient(conf).list_topics(timeout=10).topics
                      if not t.startswith("__"))
    except Exception:  # noqa: BLE001 - a broker busy restarting: ask again
        return None


def delete_v2(rtype, name, principal):
    body = uv(2) + struct.pack(">b", rtype) + cs(name) + struct.pack(">b", 3) + cs(principal) + \
        uv(0) + struct.pack(">bb", 1, 1) + b"\x00" + b"\x00"
    return body


def t_acl_cluster():
    import subprocess
    tierctl = os.environ.get("TIERCTL")
    c = Cluster(2, start=False, extra={
        "authorizer.class.name": "kafka.security.authorizer.AclAuthorizer",
        "super.users": "User:ANONYMOUS", "sasl.enabled.mechanisms": MECH,
        "default.replication.factor": "2"})
    with c:
        for n in c.nodes.values():
            n.sasl_port = free_port()
            n.extra["listeners"] = "PLAINTEXT://127.0.0.1:%d,SASL_PLAINTEXT://127.0.0.1:%d" % (
                n.port, n.sasl_port)
            n.write_props()
            r = subprocess.run([tierctl, "-c", n.props, "users", "add", "alice", "--mechanism",
                                MECH], input=b"alice-pw\n", capture_output=True, timeout=60)
            check(r.returncode == 0, "tierctl users add: %s" % (r.stdout + r.stderr))
        c.start()
        c.wait_registered()
        a = AdminClient({"bootstrap.servers": c.nodes[1].bootstrap})
        a.create_topics([NewTopic("shared", 1, 2), NewTopic("hidden", 1, 2)])["shared"].result(60)
        n1, n2 = c.nodes[1], c.nodes[2]
        wait_until(lambda: alice_topics(n2) == [], 60, "broker 2 to answer alice (no topics)")
        s = socket.create_connection(("127.0.0.1", n1.port), timeout=10)
        res = create_results(acl_request(s, 30, 2, 1, create_v2([READ_ALICE])))
        check(res == [(0, None)], "CreateAcls through broker 1: %s" % res)
        keys = c.etcd.get_prefix("acls/")
        check(list(keys) == ["acls/TOPIC/LITERAL/shared/User:alice/*/READ/ALLOW"],
              "etcd acls/ keys: %s" % list(keys))
        wait_until(lambda: alice_topics(n2) == ["shared"], 60,
                   "broker 2 to show alice the topic of the ACL made through broker 1")
        check(alice_topics(n1) == ["shared"], "broker 1: %s" % alice_topics(n1))
        # a broker restarted reads the bindings from etcd
        n2.stop()
        n2.start()
        wait_until(lambda: alice_topics(n2) == ["shared"], 60, "broker 2 after a restart")
        # deleted through broker 2, enforced by broker 1
        s2 = socket.create_connection(("127.0.0.1", n2.port), timeout=10)
        rd = acl_request(s2, 31, 2, 2, delete_v2(2, "shared", "User:alice"))
        rd.take(">i")
        check(rd.uvarint() - 1 == 1 and rd.take(">h") == 0, "DeleteAcls through broker 2")
        rd.cstr()
        check(rd.uvarint() - 1 == 1, "DeleteAcls matched not exactly one binding")
        check(c.etcd.get_prefix("acls/") == {}, "etcd still holds acls/ keys")
        wait_until(lambda: alice_topics(n1) == [], 60, "broker 1 to hide the topic again")


TESTS = {"acl_cluster": (t_acl_cluster, ["TSPLUGIN", "TIERCTL"])}

if __name__ == "__main__":
    run(TESTS)
