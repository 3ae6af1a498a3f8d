#!/usr/bin/env python3
"""tierctl cluster against a real etcd (started here on free loopback ports):
the partition states it shows come only from keys partitions/<topic>/<p>
whose last segment is a plain decimal partition number. etcd keys are
anyone's to write; "partitions/t/" and "partitions/t/1x" used to be read
with atoi as partitions 0 and 1 and showed their leaders.

  test_tierctl_cluster.py TIERCTL        exits 77 (skipped) without etcd
"""
import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ETCD = os.environ.get("ETCD_BIN", "/usr/bin/etcd")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def b64(s):
    return base64.b64encode(s.encode()).decode()


def main():
    tierctl = sys.argv[1]
    if not os.access(ETCD, os.X_OK):
        print("no etcd at %s: skipped" % ETCD)
        return 77
    root = tempfile.mkdtemp(prefix="tierctl-cluster-")
    client, peer = "http://127.0.0.1:%d" % free_port(), "http://127.0.0.1:%d" % free_port()
    log = open(os.path.join(root, "etcd.log"), "wb")
    etcd = subprocess.Popen([ETCD, "--name", "m0", "--data-dir", os.path.join(root, "data"),
                             "--listen-client-urls", client, "--advertise-client-urls", client,
                             "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                             "--initial-cluster", "m0=" + peer],
                            stdout=log, stderr=log)
    try:
        def call(path, body):
            req = urllib.request.Request(client + path, data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=5) as r:
                return json.loads(r.read())

        deadline = time.monotonic() + 30
        while True:
            try:
                call("/v3/kv/range", {"key": b64("ready")})
                break
            except OSError:
                if etcd.poll() is not None or time.monotonic() > deadline:
                    print("FAIL: etcd did not start (%s)" % os.path.join(root, "etcd.log"))
                    return 1
                time.sleep(0.1)

        def put(key, value):
            call("/v3/kv/put", {"key": b64("/c1/" + key), "value": b64(json.dumps(value))})

        put("brokers/1", {"id": 1, "host": "127.0.0.1", "port": 9092})
        put("topics/t", {"partitions": [[1], [1]]})
        put("partitions/t/0", {"leader": 1, "leader_epoch": 5, "isr": [1]})
        # Not partition states: an empty last segment, trailing bytes, a sign,
        # a number beyond the topic's partitions.
        put("partitions/t/", {"leader": 7, "leader_epoch": 70, "isr": [7]})
        put("partitions/t/1x", {"leader": 9, "leader_epoch": 90, "isr": [9]})
        put("partitions/t/+1", {"leader": 8, "leader_epoch": 80, "isr": [8]})
        put("partitions/t/2", {"leader": 6, "leader_epoch": 60, "isr": [6]})

        props = os.path.join(root, "broker.properties")
        with open(props, "w") as f:
            f.write("log.dirs=%s\nmetadata.store.url=%s\ncluster.name=c1\n"
                    % (os.path.join(root, "logs"), client.replace("http://", "etcd://")))
        r = subprocess.run([tierctl, "-c", props, "cluster", "--json"], capture_output=True,
                           text=True, timeout=60)
        if r.returncode != 0:
            print("FAIL: tierctl cluster exited %d: %s" % (r.returncode, r.stderr))
            return 1
        doc = json.loads(r.stdout)
        parts = {p["partition"]: p for t in doc["topics"] if t["topic"] == "t"
                 for p in t["partitions"]}
        want = {0: (1, 5), 1: (-1, -1)}
        got = {p: (parts[p]["leader"], parts[p]["leader_epoch"]) for p in parts}
        if got != want:
            print("FAIL: partitions (leader, epoch) %s, expected %s" % (got, want))
            return 1
        print("ok: only partitions/t/0 was read as a state", got)
        return 0
    finally:
        etcd.kill()
        etcd.wait()
        log.close()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
