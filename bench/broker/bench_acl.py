#!/usr/bin/python3
"""bench_acl.py — what the ACL authorizer costs per request.

Two tierbrokers on the in-memory plugin (so only the broker's work is timed),
started side by side: one without an authorizer (baseline), one with the
built-in authorizer holding --acls bindings for other principals (literal
and prefixed, the linear scan's worst case) plus the one the client needs
(User:ANONYMOUS ALL on every topic and group). Against each in turn, with
the same client:
  1. produce: --msgs 100-byte messages, one per request (linger 0, acks=1):
     Produce requests per second
  2. metadata: --topics topics, Metadata of every topic --md times:
     requests per second (each topic is one DESCRIBE check)
Each is measured in both orders (baseline first, then authorizer first) and
averaged; prints each rate and the ratio authorizer/baseline. Not part of ctest.

Usage: bench_acl.py TIERBROKER MEMPLUGIN [--acls 1000] [--topics 200] [--msgs 20000] [--md 200]
"""
import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import confluent_kafka as ck
from confluent_kafka.admin import AdminClient, NewTopic


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def start(binary, plugin, root, acls):
    port = free_port()
    os.makedirs(os.path.join(root, "data", ".broker"), exist_ok=True)
    props = os.path.join(root, "server.properties")
    with open(props, "w") as f:
        f.write("listeners=PLAINTEXT://127.0.0.1:%d\nlog.dirs=%s/data\nplugin.path=%s\n"
                % (port, root, plugin))
        if acls is not None:
            f.write("authorizer.class.name=kafka.security.authorizer.AclAuthorizer\n")
    if acls is not None:
        with open(os.path.join(root, "data", ".broker", "acls"), "w") as f:
            f.write("# tierbroker acls v1\n")
            for i in range(acls):
                f.write(json.dumps({"resource_type": "TOPIC",
                                    "pattern_type": "PREFIXED" if i % 2 else "LITERAL",
                                    "name": "t-%d" % i, "principal": "User:other-%d" % i,
                                    "host": "*", "operation": "READ",
                                    "permission": "ALLOW"}) + "\n")
            for rt in ("TOPIC", "GROUP", "CLUSTER"):
                f.write(json.dumps({"resource_type": rt, "pattern_type": "LITERAL",
                                    "name": "kafka-cluster" if rt == "CLUSTER" else "*",
                                    "principal": "User:ANONYMOUS", "host": "*",
                                    "operation": "ALL", "permission": "ALLOW"}) + "\n")
    log = open(os.path.join(root, "broker.log"), "wb")
    proc = subprocess.Popen([binary, props], stdout=log, stderr=log)
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, "127.0.0.1:%d" % port
        except OSError:
            time.sleep(0.05)
    sys.exit("broker did not start: see %s/broker.log" % root)


def produce_rate(bs, n):
    p = ck.Producer({"bootstrap.servers": bs, "linger.ms": 0, "acks": 1,
                     "max.in.flight": 1, "batch.num.messages": 1})
    p.produce("bench", b"w")
    p.flush(30)
    t0 = time.time()
    for i in range(n):
        p.produce("bench", b"x" * 100)
        p.poll(0)
    p.flush(120)
    return n / (time.time() - t0)


_made = set()


def metadata_rate(bs, ntopics, n):
    a = AdminClient({"bootstrap.servers": bs})
    if bs in _made:
        return metadata_loop(a, ntopics, n)
    _made.add(bs)
    for first in range(0, ntopics, 32):  # at most 64 topic jobs run at once
        fs = a.create_topics([NewTopic("md-%04d" % i, 1, 1)
                              for i in range(first, min(ntopics, first + 32))])
        for f in fs.values():
            f.result(60)
    return metadata_loop(a, ntopics, n)


def metadata_loop(a, ntopics, n):
    a.list_topics(timeout=30)
    t0 = time.time()
    for _ in range(n):
        md = a.list_topics(timeout=30)
    dt = time.time() - t0
    if len([t for t in md.topics if t.startswith("md-")]) != ntopics:
        sys.exit("metadata listed %d topics, want %d" % (len(md.topics), ntopics))
    return n / dt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("broker")
    ap.add_argument("plugin")
    ap.add_argument("--acls", type=int, default=1000)
    ap.add_argument("--topics", type=int, default=200)
    ap.add_argument("--msgs", type=int, default=20000)
    ap.add_argument("--md", type=int, default=200)
    a = ap.parse_args()
    roots = [tempfile.mkdtemp(prefix="bench-acl-") for _ in range(2)]
    procs = []
    try:
        base_p, base = start(a.broker, a.plugin, roots[0], None)
        acl_p, acl = start(a.broker, a.plugin, roots[1], a.acls)
        procs = [base_p, acl_p]
        rows = []
        for name, fn in (("produce req/s", lambda bs: produce_rate(bs, a.msgs)),
                         ("metadata(%d topics) req/s" % a.topics,
                          lambda bs: metadata_rate(bs, a.topics, a.md))):
            # both orders, so neither broker always runs first (the client warms up)
            rb1, ra1 = fn(base), fn(acl)
            ra2, rb2 = fn(acl), fn(base)
            rows.append((name, (rb1 + rb2) / 2, (ra1 + ra2) / 2))
        print("%-28s %12s %12s %8s" % ("", "baseline", "acl(%d)" % a.acls, "ratio"))
        for name, rb, ra in rows:
            print("%-28s %12.0f %12.0f %8.2f" % (name, rb, ra, ra / rb))
    finally:
        for p in procs:
            p.terminate()
            p.wait(30)
        for r in roots:
            shutil.rmtree(r, ignore_errors=True)


if __name__ == "__main__":
    main()
