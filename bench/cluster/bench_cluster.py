#!/usr/bin/python3
"""bench_cluster.py — acks=-1 produce latency on a three-broker cluster
(replication factor 3, min.insync.replicas 2) next to a single broker, in one
run, with confluent-kafka; and the same cluster replicating over a SASL_SSL
inter-broker listener (SCRAM-SHA-512, TLS; clients still on PLAINTEXT, so
only the followers' fetches pay for security), as a ratio to the plaintext
cluster of the same run. The secure run needs TIERCTL (run.sh sets it) and
the openssl CLI.

Each sample: produce one record to partition 0 (acks=all, linger.ms=0), flush
(returns when the answer is in, i.e. when the ISR has the record in the
cluster, after an fsync on the single node); p50 / p99 / max in ms, and the
ratio cluster/single. The single broker's acks=-1 is an fsync of the
partition (its only durability); the cluster's is the ISR having the record
(as Kafka: no fsync), so the cluster can be the faster one. Not part of
ctest: timings.

Measured 2026-12-02 on the 2-core shared dev machine, 2000 samples:
                              p50      p99
  single broker             3.304   43.546
  3 brokers, rf 3, isr 2    0.233    0.368
Inter-broker SASL_SSL against the PLAINTEXT cluster of the same run (two runs
of 2000 and 3000 samples, load average 10-15 on the machine): p50 ratio 1.13
and 1.12; p99 8.4 and 0.92 (p99 is the machine's noise at that load).

Usage: bench_cluster.py TIERBROKER PLUGIN [--n 2000]
"""
import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "cluster"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "broker"))


def pct(samples, q):
    s = sorted(samples)
    return s[min(len(s) - 1, int(q * len(s)))]


def measure(ck, bootstrap, topic, n):
    p = ck.Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0,
                     "enable.idempotence": True})
    for _ in range(50):  # warm-up: metadata, connections, producer id
        p.produce(topic, b"warmup", partition=0)
        p.flush(30)
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        p.produce(topic, b"lat-%08d" % i, partition=0)
        left = p.flush(30)
        if left:
            sys.exit("a record was not acknowledged within 30 s")
        out.append((time.perf_counter() - t0) * 1000.0)
    return out


def single(ck, n):
    from test_broker import TSPLUGIN, Broker  # noqa: E402
    b = Broker(TSPLUGIN)
    b.start()
    try:
        from confluent_kafka.admin import AdminClient, NewTopic
        a = AdminClient({"bootstrap.servers": "127.0.0.1:%d" % b.port})
        for f in a.create_topics([NewTopic("lat", 1, 1)]).values():
            f.result(30)
        return measure(ck, "127.0.0.1:%d" % b.port, "lat", n)
    finally:
        b.stop()


def cluster(ck, n):
    from cluster import Cluster  # noqa: E402
    with Cluster(3, session_ms=6000, extra={"min.insync.replicas": "2"}) as c:
        c.wait_registered()
        c.create_topic("lat", partitions=1, rf=3)
        c.wait_leaders("lat", 1)
        from cluster import wait_until
        wait_until(lambda: len(c.pstate("lat", 0)["isr"]) == 3, 60, "ISR of 3")
        return measure(ck, c.bootstrap, "lat", n)


def cluster_secure(ck, n):
    """Followers fetch over SASL_SSL; clients produce on PLAINTEXT."""
    from cluster import Cluster, free_port, wait_until  # noqa: E402
    from test_security import BROKER_PW, JAAS, JAAS_KEY, FastPKI, add_user  # noqa: E402
    c = Cluster(3, session_ms=6000, extra={"min.insync.replicas": "2"}, start=False)
    with c:
        pki = FastPKI(c.root)
        c.extra.update({"sasl.enabled.mechanisms": "SCRAM-SHA-512",
                        "inter.broker.listener.name": "SASL_SSL",
                        "sasl.mechanism.inter.broker.protocol": "SCRAM-SHA-512",
                        JAAS_KEY: JAAS % ("broker", BROKER_PW),
                        "ssl.keystore.location": pki.server[2],
                        "ssl.truststore.location": pki.ca})
        for node in c.nodes.values():
            node.extra["listeners"] = "PLAINTEXT://127.0.0.1:%d,SASL_SSL://127.0.0.1:%d" % (
                node.port, free_port())
            node.write_props()
            add_user(node, "broker", BROKER_PW)
        c.start()
        c.wait_registered()
        c.create_topic("lat", partitions=1, rf=3)
        c.wait_leaders("lat", 1)
        wait_until(lambda: len(c.pstate("lat", 0)["isr"]) == 3, 60, "ISR of 3")
        return measure(ck, c.bootstrap, "lat", n)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("broker")
    ap.add_argument("plugin")
    ap.add_argument("--n", type=int, default=2000)
    a = ap.parse_args()
    os.environ["TIERBROKER"] = a.broker
    os.environ["TSPLUGIN"] = a.plugin
    import confluent_kafka as ck
    s = single(ck, a.n)
    c = cluster(ck, a.n)
    sec = cluster_secure(ck, a.n) if os.environ.get("TIERCTL") else None
    print("acks=-1 produce latency, %d samples each (ms)" % a.n)
    print("%-30s %8s %8s %8s" % ("", "p50", "p99", "max"))
    rows = [("single broker", s), ("3 brokers, rf 3, isr 2", c)]
    if sec:
        rows.append(("  same, inter-broker SASL_SSL", sec))
    for name, v in rows:
        print("%-30s %8.3f %8.3f %8.3f" % (name, pct(v, 0.5), pct(v, 0.99), max(v)))
    print("%-30s %8.2f %8.2f" % ("ratio cluster/single", pct(c, 0.5) / pct(s, 0.5),
                                 pct(c, 0.99) / pct(s, 0.99)))
    if sec:
        print("%-30s %8.2f %8.2f" % ("ratio SASL_SSL/PLAINTEXT cluster",
                                     pct(sec, 0.5) / pct(c, 0.5), pct(sec, 0.99) / pct(c, 0.99)))


if __name__ == "__main__":
    main()
