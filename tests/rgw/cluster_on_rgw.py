#!/usr/bin/python3
"""cluster_on_rgw.py — the Kafka part of cluster_on_rgw.sh (run it through
that script: it starts the RGW and sets the environment).

The settings of minio-compose/cluster.properties ($TS_CLUSTER_PROPERTIES),
with the host-specific ones replaced: etcd is the harness's, the bucket is the
RGW's ($TS_S3_TEST_BUCKET under a fresh prefix, endpoint $AWS_ENDPOINT_URL),
and segments are small so that most of the data is tiered within seconds.
Three brokers, a topic with 3 partitions and replication factor 3, an
idempotent acks=all producer; the leader of partition 0 is SIGKILLed halfway;
then every acknowledged record is read back exactly once, in order, from
offset 0, which each partition's leader no longer holds locally (read from
the bucket).
"""
import json
import os
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "cluster"))
from cluster import AckedWrites, Cluster, check, free_port, wait_until  # noqa: E402
from test_compose import read_props  # noqa: E402  (the properties syntax, once)

TOPIC = "rgw-cluster"


def settings(prefix):
    props = read_props(os.environ["TS_CLUSTER_PROPERTIES"])
    for k in ("metadata.store.url", "cluster.name", "broker.session.timeout.ms"):  # the harness's
        props.pop(k, None)
    props["remote.storage.url"] = "s3://%s/%s" % (os.environ["TS_S3_TEST_BUCKET"], prefix)
    props["aws.endpoint.url"] = os.environ["AWS_ENDPOINT_URL"]
    props["aws.region"] = os.environ.get("AWS_REGION", "us-east-1")
    props.update({"log.segment.bytes": "65536", "log.local.retention.bytes": "131072"})
    return props


def bucket_objects(prefix):
    r = subprocess.run(["/usr/bin/aws", "--endpoint-url", os.environ["AWS_ENDPOINT_URL"], "s3",
                        "ls", "--recursive", "s3://%s/%s/" % (os.environ["TS_S3_TEST_BUCKET"],
                                                             prefix)],
                       capture_output=True, text=True, timeout=120)
    return [line.split()[-1] for line in r.stdout.splitlines() if line.strip()]


def local_start(node, p):
    with urllib.request.urlopen("%s/v1/partitions/%s/%d" % (node.admin_url, TOPIC, p),
                                timeout=10) as r:
        return json.loads(r.read())["local_start_offset"]


def main():
    prefix = "cluster-%d" % time.time_ns()
    admin = {i: "http://127.0.0.1:%d" % free_port() for i in (1, 2, 3)}
    with Cluster(3, session_ms=3000, extra=settings(prefix),
                 node_extra={i: {"admin.listeners": admin[i]} for i in admin}) as c:
        for i, n in c.nodes.items():
            n.admin_url = admin[i]
        c.wait_registered()
        c.create_topic(TOPIC, partitions=3, rf=3)
        c.wait_leaders(TOPIC, 3)
        w = AckedWrites(c.bootstrap, TOPIC)
        w.produce(30000)
        victim = c.leader_of(TOPIC, 0)
        victim.kill9()
        c.wait_leaders(TOPIC, 3, exclude=(victim.id,))
        w.produce(30000)
        print("cluster_on_rgw: %d records acknowledged (acks=all), broker %d SIGKILLed halfway"
              % (len(w.acked), victim.id))

        def tiered():
            sts = [c.pstate(TOPIC, p) for p in range(3)]
            return all(local_start(c.node(s["leader"]), p) > 0 for p, s in enumerate(sts))
        wait_until(tiered, 180, "every partition's leader to keep only its tail locally")
        objs = bucket_objects(prefix)
        check(len(objs) >= 3, "the RGW bucket holds %d objects under %s" % (len(objs), prefix))
        n = w.verify(timeout=300)
        print("cluster_on_rgw: all %d acknowledged records read back from offset 0 (below each "
              "leader's local start, so from the RGW bucket: %d objects)" % (n, len(objs)))
        victim.start()
        c.wait_registered()
        n = w.verify(timeout=300)
        print("cluster_on_rgw: and again with broker %d back: %d records" % (victim.id, n))


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 - the message is the report
        print("cluster_on_rgw: FAIL: %s" % e)
        sys.exit(1)
    print("cluster_on_rgw: PASS")
