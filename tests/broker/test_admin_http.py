#!/usr/bin/python3
"""test_admin_http.py — issue 12 items 1 and 2: the admin HTTP listener and
its metrics.

tierbroker runs with admin.listeners on a free loopback port. /metrics is
parsed with Debian's python3-prometheus-client (the parser Prometheus
tooling in Python uses), so a malformed exposition fails here. After
producing and tiering, the remote copy-bytes counter must equal the stored
bytes `tierctl placement --json` reports for the remote segments, exactly;
cold reads move the chunk cache's misses (first pass) and hits (second
pass); raw Produce requests move the Produce request counter by their
number. /healthz, /readyz, the partition JSON view (same rows as tierctl),
404 and 405 answers, a slow admin client that must not stall Kafka, and bad
admin.listeners values are checked too.

Run by ctest as `test_admin_http.py NAME` (label `broker`), environment as
for test_broker.py.
"""
import glob
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_broker import (  # noqa: E402
    BROKER, MEMPLUGIN, TSPLUGIN, Broker, Fail, check, ck, consume_all, free_port, kcat, placement,
    produce_v7, raw_request, raw_response, record_batch, run)
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402


class AdminBroker(Broker):
    def __init__(self, plugin, extra=None):
        self.admin_port = free_port()
        extra = dict(extra or {})
        extra["admin.listeners"] = "http://127.0.0.1:%d" % self.admin_port
        super().__init__(plugin, extra)

    def http(self, path, method="GET", body=None):
        c = http.client.HTTPConnection("127.0.0.1", self.admin_port, timeout=30)
        try:
            c.request(method, path, body=body)
            r = c.getresponse()
            return r.status, r.read().decode(errors="replace"), dict(r.getheaders())
        finally:
            c.close()

    def scrape(self):
        """{(sample name, frozenset(labels)): value} of one /metrics scrape."""
        st, text, hdr = self.http("/metrics")
        check(st == 200, "/metrics -> %d: %s" % (st, text[:200]))
        check(hdr.get("Content-Type", "").startswith("text/plain; version=0.0.4"),
              "/metrics content type %r" % hdr.get("Content-Type"))
        out = {}
        for fam in text_string_to_metric_families(text):
            for s in fam.samples:
                out[(s.name, frozenset(s.labels.items()))] = s.value
        return out


def val(m, name, **labels):
    k = (name, frozenset((a, str(b)) for a, b in labels.items()))
    if k not in m:
        raise Fail("metric %s%r missing (have %d samples)" % (name, labels, len(m)))
    return m[k]


def tierctl_uploaded_bytes(rows):
    """What the placement says is in the bucket: stored_bytes of every
    segment with a remote copy."""
    return sum(r["stored_bytes"] for r in rows if r["location"] in ("remote", "local+remote"))


def t_admin_metrics():
    b = AdminBroker(TSPLUGIN, {"log.segment.bytes": str(128 * 1024),
                               "log.local.retention.bytes": str(64 * 1024),
                               "remote.log.manager.task.interval.ms": "100",
                               "log.retention.ms": "-1"}).start()
    try:
        st, text, _ = b.http("/healthz")
        check(st == 200 and text.strip() == "ok", "/healthz -> %d %r" % (st, text))
        st, text, _ = b.http("/readyz")
        check(st == 200 and text.strip() == "ready", "/readyz -> %d %r" % (st, text))

        # produce and tier
        n = 30000
        p = ck.Producer({"bootstrap.servers": b.bootstrap, "acks": "all", "linger.ms": 20,
                         "enable.idempotence": True, "batch.num.messages": 2000})
        for i in range(n):
            v = b"%08d-" % i + bytes((i * 7 + k) & 0xff for k in range(40))
            while True:
                try:
                    p.produce("metered", v, partition=0)
                    break
                except BufferError:
                    p.poll(0.1)
        check(p.flush(120) == 0, "producer did not flush")
        deadline = time.time() + 180
        rows = []
        while time.time() < deadline:
            rows = placement(b, "metered")
            if len(rows) > 4 and all(r["location"] == "remote" for r in rows[:-2]) and \
                    all(r["location"] != "local" for r in rows[:-1]):
                break
            time.sleep(0.3)
        check(len(rows) > 4 and all(r["location"] == "remote" for r in rows[:-2]),
              "not tiered: %r" % [(r["base_offset"], r["location"]) for r in rows])

        # copy bytes == what the placement reports uploaded, exactly (scrape,
        # placement, scrape: equal when no upload finished in between)
        deadline = time.time() + 60
        while True:
            m1 = b.scrape()
            rows = placement(b, "metered")
            m2 = b.scrape()
            c1 = val(m1, "tierstore_remote_copy_bytes_total", topic="metered", partition=0)
            c2 = val(m2, "tierstore_remote_copy_bytes_total", topic="metered", partition=0)
            if c1 == c2 or time.time() > deadline:
                break
        want = tierctl_uploaded_bytes(rows)
        check(want > 0, "placement reports nothing uploaded")
        check(c2 == want, "remote copy bytes %d != placement's uploaded bytes %d" % (c2, want))
        remote_rows = [r for r in rows if r["location"] in ("remote", "local+remote")]
        check(val(m2, "tierstore_remote_copy_requests_total", topic="metered", partition=0)
              >= len(remote_rows), "copy requests below the remote segment count")
        check(val(m2, "tierstore_remote_log_size_bytes", topic="metered", partition=0) == want,
              "remote log size != placement's")
        check(val(m2, "tierstore_remote_log_segments", topic="metered", partition=0)
              == len(remote_rows), "remote segment count != placement's")
        local = sum(r["size_bytes"] for r in rows if r["location"] in ("local", "local+remote"))
        check(val(m2, "tierstore_local_log_size_bytes", topic="metered", partition=0) == local,
              "local log size != placement's")
        check(val(m2, "tierstore_remote_copy_lag_segments", topic="metered", partition=0) ==
              sum(1 for r in rows if r["location"] == "local" and not r["active"]),
              "copy lag segments != placement's")
        check(val(m2, "tierstore_objstore_requests_total", op="put", outcome="ok")
              >= len(remote_rows), "object-store puts below the uploads")
        check(val(m2, "tierstore_objstore_put_bytes_total") >= want,
              "bytes put below the stored bytes")

        # the partition view has tierctl's rows, field for field
        st, text, hdr = b.http("/v1/partitions/metered/0")
        check(st == 200, "/v1/partitions/metered/0 -> %d %s" % (st, text[:200]))
        check(hdr.get("Content-Type") == "application/json", "partition view content type")
        view = json.loads(text)
        check(view["topic"] == "metered" and view["partition"] == 0, "view names %r" % view)
        check(view["log_end_offset"] == n, "log end %r, want %d" % (view["log_end_offset"], n))
        check(view["segments"] == rows, "segments differ from tierctl placement --json:\n%r\n%r"
              % (view["segments"][:2], rows[:2]))
        check(view["upload"]["copied_bytes"] == want, "view copied_bytes %r" % view["upload"])

        # cold reads: misses on the first pass, hits (and no miss) on the second
        h0 = val(m2, "tierstore_chunk_cache_hits_total")
        x0 = val(m2, "tierstore_chunk_cache_misses_total")
        f0 = val(m2, "tierstore_remote_fetch_requests_total", topic="metered", partition=0)
        got = consume_all(b.bootstrap, "metered", n, timeout=300)
        check(len(got) == n, "first pass read %d of %d" % (len(got), n))
        m3 = b.scrape()
        h1 = val(m3, "tierstore_chunk_cache_hits_total")
        x1 = val(m3, "tierstore_chunk_cache_misses_total")
        check(x1 > x0, "first cold pass: misses %d -> %d" % (x0, x1))
        check(val(m3, "tierstore_remote_fetch_requests_total", topic="metered", partition=0) > f0,
              "remote fetch requests did not move")
        check(val(m3, "tierstore_remote_fetch_bytes_total", topic="metered", partition=0) > 0,
              "remote fetch bytes did not move")
        check(val(m3, "tierstore_objstore_requests_total", op="get", outcome="ok") > 0,
              "no object-store get counted")
        check(val(m3, "tierstore_objstore_get_bytes_total") > 0, "no bytes got counted")
        got = consume_all(b.bootstrap, "metered", n, timeout=300)
        check(len(got) == n, "second pass read %d of %d" % (len(got), n))
        m4 = b.scrape()
        h2 = val(m4, "tierstore_chunk_cache_hits_total")
        x2 = val(m4, "tierstore_chunk_cache_misses_total")
        check(h2 > h1, "second pass: hits %d -> %d" % (h1, h2))
        check(x2 == x1, "second pass missed the cache: misses %d -> %d" % (x1, x2))

        # raw Produce requests move the Produce counter by their number
        before = val(m4, "tierstore_kafka_requests_total", api="Produce")
        hist_before = val(m4, "tierstore_kafka_request_duration_seconds_count", api="Produce")
        s = socket.create_connection(("127.0.0.1", b.port), timeout=30)
        k = 7
        for i in range(k):
            _, err, _ = produce_v7(s, 100 + i, "metered", record_batch(-1, -1, -1, b"raw%d" % i))
            check(err == 0, "raw produce error %d" % err)
        m5 = b.scrape()
        after = val(m5, "tierstore_kafka_requests_total", api="Produce")
        check(after - before == k, "Produce counter moved by %d, sent %d" % (after - before, k))
        check(val(m5, "tierstore_kafka_request_duration_seconds_count", api="Produce")
              - hist_before == k, "Produce latency histogram count did not move by %d" % k)
        check(val(m5, "tierstore_connections") >= 1, "open connections gauge")
        check(val(m5, "tierstore_connections_accepted_total") >= 3, "accepted connections")
        open_before = val(m5, "tierstore_connections")
        s.close()
        deadline = time.time() + 10
        while val(b.scrape(), "tierstore_connections") != open_before - 1 and \
                time.time() < deadline:
            time.sleep(0.1)
        check(val(b.scrape(), "tierstore_connections") == open_before - 1,
              "a closed connection is still counted")
        # produce held on backpressure (the broker logs it) shows as throttle time
        held = val(m5, "tierstore_produce_throttle_seconds_count")
        if "held:" in b.log():
            check(held >= 1, "produce was held, throttle histogram count %d" % held)
        # every metric the Grafana dashboard queries is exported
        names = {k[0] for k in m5}
        dash = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "ops",
                            "grafana", "tierstore.json")
        with open(dash) as f:
            exprs = [t["expr"] for p in json.load(f)["panels"] for t in p["targets"]]
        used = set(re.findall(r"tierstore_[a-z_]+", " ".join(exprs)))
        check(len(used) >= 10, "dashboard queries %d metrics" % len(used))
        missing = sorted(u for u in used if u not in names)
        check(not missing, "dashboard queries metrics the broker does not export: %r" % missing)
        check(b.alive(), "broker died")
    finally:
        b.cleanup()


def t_admin_readyz_offline():
    """A partition that cannot be opened at startup (its manifest damaged
    locally and in the bucket) stays offline: /readyz answers 503 saying so,
    /healthz and /metrics still answer."""
    b = AdminBroker(TSPLUGIN, {"log.segment.bytes": str(64 * 1024),
                               "log.local.retention.bytes": str(64 * 1024),
                               "remote.log.manager.task.interval.ms": "100",
                               "log.retention.ms": "-1"}).start()
    try:
        p = ck.Producer({"bootstrap.servers": b.bootstrap, "acks": "all", "linger.ms": 5,
                         "batch.num.messages": 200})
        for i in range(20000):
            p.produce("dmg", b"%08d" % i + b"x" * 40, partition=0)
            p.produce("fine", b"%08d" % i, partition=0)
            if i % 500 == 0:
                p.poll(0)
        check(p.flush(60) == 0, "producer did not flush")
        deadline = time.time() + 60
        while time.time() < deadline and \
                not any(r["location"] == "remote" for r in placement(b, "dmg")):
            time.sleep(0.2)
        check(any(r["location"] == "remote" for r in placement(b, "dmg")), "nothing uploaded")
        b.stop()
        with open(os.path.join(b.root, "data", "dmg-0", "remote_manifest.json"), "wb") as f:
            f.write(b'{"format":1')
        versions = glob.glob(os.path.join(b.root, "bucket", "dmg", "0", "manifests", "*.json"))
        check(versions, "no manifest in the bucket")
        for v in versions:
            with open(v, "wb") as f:
                f.write(b"{}")
        b.start()
        st, text, _ = b.http("/readyz")
        check(st == 503 and "1 partition(s) not open" in text, "/readyz -> %d %r" % (st, text))
        st, _, _ = b.http("/healthz")
        check(st == 200, "/healthz -> %d" % st)
        m = b.scrape()
        check(val(m, "tierstore_local_log_size_bytes", topic="fine", partition=0) > 0,
              "the healthy topic is not in /metrics")
        check(not any(dict(k[1]).get("topic") == "dmg" for k in m),
              "the offline partition has metrics")
        st, text, _ = b.http("/v1/partitions/dmg/0")
        check(st == 404, "/v1/partitions/dmg/0 of the offline partition -> %d %s" % (st, text))
        check(b.alive(), "broker died")
    finally:
        b.cleanup()


def t_admin_backpressure():
    """Uploads failing for good: object-store put errors and remote copy
    errors are counted, the copy lag grows, and a Produce held at the local
    bound for produce.backpressure.max.ms shows in the throttle histogram."""
    from test_hardening_netmem import create_topic, produce_v7_answer, produce_v7_raw
    hold_ms = 1000
    b = AdminBroker(TSPLUGIN)
    b.extra.update({
        "log.segment.bytes": str(1024 * 1024),
        "log.local.retention.bytes": str(2 * 1024 * 1024),
        "log.retention.ms": "-1",
        "remote.log.manager.task.interval.ms": "100",
        "remote.log.upload.retry.backoff.max.ms": "300",
        "produce.backpressure.max.ms": str(hold_ms),
        "remote.storage.url": "faulty+file://%s?ops=put,writer&fail_after_puts=0"
                              % os.path.join(b.root, "bucket"),
    })
    b.start()
    try:
        create_topic(b, "bp")
        s = socket.create_connection(("127.0.0.1", b.port), timeout=60)
        value = b"v" * (512 * 1024)
        err = 0
        for i in range(40):
            produce_v7_raw(s, i, "bp", record_batch(-1, -1, -1, value), 30000)
            _, err, _, _ = produce_v7_answer(s)
            if err:
                break
        s.close()
        check(err == 7, "expected a held produce answered REQUEST_TIMED_OUT, got error %d" % err)
        m = b.scrape()
        held = val(m, "tierstore_produce_throttle_seconds_count")
        check(held >= 1, "throttle histogram count %d after a held produce" % held)
        check(val(m, "tierstore_produce_throttle_seconds_sum") >= hold_ms / 1000.0,
              "throttle seconds below the hold")
        check(val(m, "tierstore_produce_throttle_seconds_bucket", le="0.5") < held,
              "a hold of %d ms counted in the 0.5 s bucket" % hold_ms)
        check(val(m, "tierstore_objstore_requests_total", op="put", outcome="error") > 0,
              "failed puts not counted")
        check(val(m, "tierstore_remote_copy_errors_total", topic="bp", partition=0) > 0,
              "failed uploads not counted")
        check(val(m, "tierstore_remote_copy_bytes_total", topic="bp", partition=0) == 0,
              "bytes counted as copied while every upload failed")
        check(val(m, "tierstore_remote_copy_lag_segments", topic="bp", partition=0) >= 1,
              "no copy lag while uploads fail")
        check(val(m, "tierstore_remote_copy_lag_bytes", topic="bp", partition=0) >= 1024 * 1024,
              "copy lag bytes below one segment")
        st, _, _ = b.http("/readyz")
        check(st == 200, "/readyz -> %d while uploads fail (the broker still serves)" % st)
        check(b.alive(), "broker died")
    finally:
        b.cleanup()


def t_admin_errors_mem():
    """404 and 405 answers, the partition view's failures, readiness."""
    b = AdminBroker(MEMPLUGIN).start()
    try:
        rc, _, err = kcat(["-P", "-b", b.bootstrap, "-t", "known"], inp=b"x\n")
        check(rc == 0, "kcat produce failed: %r" % err)
        for path in ["/", "/nope", "/metrics/x", "/v1", "/v1/partitions", "/healthzz"]:
            st, _, _ = b.http(path)
            check(st == 404, "%s -> %d, want 404" % (path, st))
        for path, why in [("/v1/partitions/known/1", "no such partition"),
                          ("/v1/partitions/unknown/0", "unknown topic"),
                          ("/v1/partitions/known/abc", "no such topic or partition"),
                          ("/v1/partitions/known/-1", "no such topic or partition"),
                          ("/v1/partitions/bad$name/0", "no such topic or partition"),
                          ("/v1/partitions/known", "expected"),
                          ("/v1/partitions/known/0/x", "no such topic or partition")]:
            st, text, _ = b.http(path)
            check(st == 404, "%s -> %d, want 404" % (path, st))
            check(why in json.loads(text)["error"], "%s: %r" % (path, text))
        for method in ["POST", "PUT", "DELETE"]:
            st, _, hdr = b.http("/metrics", method, body=b"abc" if method != "DELETE" else None)
            check(st == 405, "%s /metrics -> %d, want 405" % (method, st))
            check(hdr.get("Allow") == "GET, HEAD", "405 without Allow: %r" % hdr)
        st, text, _ = b.http("/v1/partitions/known/0")
        check(st == 200 and json.loads(text)["log_end_offset"] == 1, "known/0 -> %d %s"
              % (st, text))
        st, _, _ = b.http("/readyz")
        check(st == 200, "/readyz -> %d" % st)
        st, text, hdr = b.http("/healthz", "HEAD")
        check(st == 200 and text == "", "HEAD /healthz -> %d %r" % (st, text))
        # the mem plugin has no remote tier: local size only, still parseable
        m = b.scrape()
        check(val(m, "tierstore_local_log_size_bytes", topic="known", partition=0) > 0,
              "local size of the mem plugin's partition")
        check(val(m, "tierstore_kafka_requests_total", api="Produce") >= 1 and
              val(m, "tierstore_kafka_requests_total", api="Metadata") >= 1,
              "kcat's Metadata and Produce not counted")
        check(b.alive(), "broker died")
    finally:
        b.cleanup()


def t_admin_slow_client_mem():
    """An admin client that sends half a request and waits holds an admin
    thread only: Kafka requests and other admin requests are answered."""
    b = AdminBroker(MEMPLUGIN).start()
    try:
        slow = [socket.create_connection(("127.0.0.1", b.admin_port), timeout=30)
                for _ in range(3)]
        for s in slow:
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # no blank line: mid-request
        time.sleep(0.3)
        k = socket.create_connection(("127.0.0.1", b.port), timeout=5)
        t0 = time.time()
        raw_request(k, 18, 0, 7)
        r = raw_response(k)
        check(r is not None and r[:4] == b"\x00\x00\x00\x07", "ApiVersions not answered")
        check(time.time() - t0 < 3, "ApiVersions took %.1f s" % (time.time() - t0))
        k.close()
        st, _, _ = b.http("/healthz")
        check(st == 200, "/healthz beside slow clients -> %d" % st)
        st, _, _ = b.http("/readyz")
        check(st == 200, "/readyz beside slow clients -> %d" % st)
        # SIGTERM with admin clients still stuck: the listener stops, the broker exits 0
        check(b.alive(), "broker died")
        t0 = time.time()
        b.stop(signal.SIGTERM)
        check(b.proc.returncode == 0, "exit %d after SIGTERM" % b.proc.returncode)
        check(time.time() - t0 < 10, "shutdown took %.1f s" % (time.time() - t0))
        for s in slow:
            s.close()
    finally:
        b.cleanup()


def t_admin_config():
    """Bad admin.listeners values stop the broker at startup with a message;
    unset, there is no admin listener."""
    for value, want in [("ftp://127.0.0.1:1", "not http://host:port"),
                        ("http://127.0.0.1", "not http://host:port"),
                        ("http://127.0.0.1:99999", "bad port"),
                        ("http://127.0.0.1:1,http://127.0.0.1:2", "one http://host:port only")]:
        b = Broker(MEMPLUGIN, {"admin.listeners": value})
        try:
            b.write_props()
            os.makedirs(os.path.join(b.root, "data"), exist_ok=True)
            r = subprocess.run([BROKER, b.props], capture_output=True, timeout=30)
            check(r.returncode != 0, "%s: broker started" % value)
            check(want in r.stderr.decode(), "%s: stderr %r" % (value, r.stderr[-300:]))
        finally:
            b.cleanup()
    # a port already taken
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    b = Broker(MEMPLUGIN, {"admin.listeners": "http://127.0.0.1:%d" % taken.getsockname()[1]})
    try:
        b.write_props()
        os.makedirs(os.path.join(b.root, "data"), exist_ok=True)
        r = subprocess.run([BROKER, b.props], capture_output=True, timeout=30)
        check(r.returncode != 0 and b"cannot listen" in r.stderr,
              "admin port in use: rc %d %r" % (r.returncode, r.stderr[-300:]))
    finally:
        taken.close()
        b.cleanup()
    b = Broker(MEMPLUGIN).start()
    try:
        check("admin HTTP listener" not in b.log(), "admin listener on without admin.listeners")
    finally:
        b.cleanup()


TESTS = {
    "admin_metrics": (t_admin_metrics, ["TSPLUGIN", "TIERCTL"]),
    "admin_readyz_offline": (t_admin_readyz_offline, ["TSPLUGIN", "TIERCTL"]),
    "admin_backpressure": (t_admin_backpressure, ["TSPLUGIN"]),
    "admin_errors_mem": (t_admin_errors_mem, ["MEMPLUGIN"]),
    "admin_slow_client_mem": (t_admin_slow_client_mem, ["MEMPLUGIN"]),
    "admin_config": (t_admin_config, ["MEMPLUGIN"]),
}

if __name__ == "__main__":
    run(TESTS)
