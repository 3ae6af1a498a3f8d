#!/usr/bin/python3
"""make_corpus.py — regenerates the fuzz seed corpora in tests/fuzz/corpus/.

A fuzzer that starts from nothing spends its time learning the outer shape of
its input (fuzz_manifest reached 25 edges in 15 s from an empty corpus, 246
from real manifests). The seeds are real inputs, captured from the built
programs talking to real clients:

  fuzz_kafka_request  every request frame kcat and confluent-kafka send to
                      tierbroker (produce with each codec, fetch, metadata,
                      groups, offsets, admin), captured by a loopback proxy
  fuzz_batch          record batches cut from the segments those produces
                      wrote (uncompressed, gzip, snappy, lz4, zstd)
  fuzz_manifest       manifests the engine wrote into the bucket
  fuzz_config         the broker's server.properties files
  fuzz_s3_xml         S3 responses in the shapes AWS, MinIO and Ceph RGW send
  fuzz_etcd_json      answers of a real etcd (Debian's etcd-server) to the
                      client's requests: range, put, delete, txn, leases,
                      errors, watch streams (each behind its selector byte)

Run after a build:  /usr/bin/python3 tests/fuzz/make_corpus.py build
Only the etcd seeds: /usr/bin/python3 tests/fuzz/make_corpus.py build etcd
Only the group and cluster admin requests (kafkajs's admin, confluent-kafka's
list_groups, and the raw requests of tests/broker/test_admin_groups.py:
OffsetDelete, DescribeLogDirs, DescribeCluster, ListOffsets v7-v9):
                     /usr/bin/python3 tests/fuzz/make_corpus.py build admin
Only the SASL seeds: /usr/bin/python3 tests/fuzz/make_corpus.py build sasl
Only the ACL requests (kafkajs's createAcls/describeAcls/deleteAcls, v0-1,
and raw flexible v2/v3 frames no installed client sends), against a broker
with the built-in authorizer:
                     /usr/bin/python3 tests/fuzz/make_corpus.py build acl
Files are named by the SHA-1 of their content (as libFuzzer names its own),
so a re-run adds only what is new. Keep seeds small: the largest is capped.
"""
import hashlib
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "tests", "fuzz", "corpus")
MAX_SEED = 64 * 1024


def save(target, data):
    if not data or len(data) > MAX_SEED:
        return False
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, hashlib.sha1(data).hexdigest())
    if os.path.exists(path):
        return False
    with open(path, "wb") as f:
        f.write(data)
    return True


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Proxy:
    """Forwards loopback TCP to the broker and keeps every request frame
    (without its size prefix: what kafka_parse_request sees), at most a few
    per (api key, version) so the corpus stays varied, not large."""

    def __init__(self, port, upstream_port, per_api=4):
        self.port = port
        self.up = upstream_port
        self.per_api = per_api
        self.seen = {}
        self.frames = []
        self.lock = threading.Lock()
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", self.port))
        self.srv.listen(64)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            try:
                u = socket.create_connection(("127.0.0.1", self.up))
            except OSError:  # the broker is stopping
                c.close()
                continue
            threading.Thread(target=self._c2s, args=(c, u), daemon=True).start()
            threading.Thread(target=self._pipe, args=(u, c), daemon=True).start()

    def _keep(self, frame):
        if len(frame) < 4:
            return
        key, ver = struct.unpack(">hh", frame[:4])
        with self.lock:
            n = self.seen.get((key, ver), 0)
            if n < self.per_api:
                self.seen[(key, ver)] = n + 1
                self.frames.append(frame)

    def _c2s(self, c, u):
        buf = b""
        try:
            while True:
                d = c.recv(65536)
                if not d:
                    break
                u.sendall(d)
                buf += d
                while len(buf) >= 4:
                    n = struct.unpack(">i", buf[:4])[0]
                    if len(buf) < 4 + n:
                        break
                    self._keep(buf[4:4 + n])
                    buf = buf[4 + n:]
        except OSError:
            pass
        for s in (c, u):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _pipe(self, a, b):
        try:
            while True:
                d = a.recv(65536)
                if not d:
                    break
                b.sendall(d)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def batches_of(path):
    """Record batches v2 of one segment file, cut at their length fields."""
    with open(path, "rb") as f:
        data = f.read()
    pos = 0
    while pos + 12 <= len(data):
        n = struct.unpack(">i", data[pos + 8:pos + 12])[0]
        if n <= 0 or pos + 12 + n > len(data):
            break
        yield data[pos:pos + 12 + n]
        pos += 12 + n


S3_XML = [
    b'<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="http://s3.amazonaws.com/doc/'
    b'2006-03-01/"><Name>b</Name><Prefix>t/0/</Prefix><KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys>'
    b'<IsTruncated>true</IsTruncated><NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM='
    b'</NextContinuationToken><Contents><Key>t/0/segments/00000000000000000000-a1.log.zst</Key>'
    b'<LastModified>2026-11-30T10:00:00.000Z</LastModified><ETag>&quot;9b2cf535f27731c974343645a3985328'
    b'&quot;</ETag><Size>4194304</Size><StorageClass>STANDARD</StorageClass></Contents><Contents><Key>'
    b't/0/manifests/00000000000000000007.json</Key><Size>812</Size></Contents></ListBucketResult>',
    b'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><IsTruncated>false</IsTruncated>'
    b'<Contents><Key>a&amp;b&lt;c&gt;&#x41;&#66;</Key><Size>0</Size></Contents></ListBucketResult>',
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchKey</Code><Message>The specified key '
    b'does not exist.</Message><Key>t/0/x</Key><RequestId>tx0000</RequestId><HostId>h</HostId></Error>',
    b'<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>',
    b'<?xml version="1.0" encoding="UTF-8"?><InitiateMultipartUploadResult xmlns="http://s3.amazonaws'
    b'.com/doc/2006-03-01/"><Bucket>b</Bucket><Key>k</Key><UploadId>2~iCw_lDY8VoNHCFNd2xpHdP4f0sbVYOb'
    b'</UploadId></InitiateMultipartUploadResult>',
    b'<?xml version="1.0" encoding="UTF-8"?><CompleteMultipartUploadResult><Location>http://h/b/k'
    b'</Location><Bucket>b</Bucket><Key>k</Key><ETag>"3858f62230ac3c915f300c664312c11f-9"</ETag>'
    b'</CompleteMultipartUploadResult>',
    b'<?xml version="1.0" encoding="UTF-8"?><DeleteResult><Deleted><Key>a</Key></Deleted><Error><Key>b'
    b'</Key><Code>AccessDenied</Code><Message>Access Denied</Message></Error></DeleteResult>',
    b'[default]\naws_access_key_id = AKIDEXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG\n'
    b'[profile dev]\nregion=eu-west-1\n; comment\n# other\naws_session_token=abc\n',
]


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, timeout=120, **kw)

def etcd_corpus():
    """Starts a throw-away etcd and keeps its answers as fuzz_etcd_json
    seeds, each prefixed with the fuzzer's selector byte."""
    import base64
    import http.client
    import json
    etcd = shutil.which("etcd")
    if not etcd:
        print("make_corpus: no etcd binary (etcd-server); fuzz_etcd_json seeds skipped")
        return
    root = tempfile.mkdtemp(prefix="ts-corpus-etcd-")
    cport, pport = free_port(), free_port()
    curl_ = "http://127.0.0.1:%d" % cport
    purl = "http://127.0.0.1:%d" % pport
    log = open(os.path.join(root, "etcd.log"), "wb")
    proc = subprocess.Popen([etcd, "--name", "m", "--data-dir", os.path.join(root, "d"),
                             "--listen-client-urls", curl_, "--advertise-client-urls", curl_,
                             "--listen-peer-urls", purl, "--initial-advertise-peer-urls", purl,
                             "--initial-cluster", "m=" + purl], stdout=log, stderr=log)
    b64 = lambda b: base64.b64encode(b).decode()
    n = 0

    def post(path, body, sel):
        nonlocal n
        conn = http.client.HTTPConnection("127.0.0.1", cport, timeout=5)
        conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        data = conn.getresponse().read()
        conn.close()
        n += save("fuzz_etcd_json", bytes([sel]) + data)
        return json.loads(data.split(b"\n")[0] or b"{}")

    def watch(body, writes):
        """Opens a watch, runs writes, keeps the raw stream."""
        nonlocal n
        sock = socket.create_connection(("127.0.0.1", cport), timeout=1)
        payload = json.dumps(body).encode()
        sock.sendall(b"POST /v3/watch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(payload) + payload)
        time.sleep(0.3)
        writes()
        raw = b""
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                raw += chunk
        except socket.timeout:
            pass
        sock.close()
        body_ = raw.split(b"\r\n\r\n", 1)[-1]
        # de-chunk (the gateway streams with Transfer-Encoding: chunked)
        out, rest = b"", body_
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            try:
                size = int(size_line, 16)
            except ValueError:
                break
            if size == 0:
                break
            out, rest = out + rest[:size], rest[size + 2:]
        if out:
            n += save("fuzz_etcd_json", bytes([6, 37]) + out)
            for line in out.split(b"\n")[:4]:
                if line:
                    n += save("fuzz_etcd_json", bytes([7]) + line)

    try:
        for _ in range(100):
            try:
                post("/v3/kv/range", {"key": b64(b"ready")}, 0)
                break
            except (OSError, ValueError, http.client.HTTPException):
                time.sleep(0.1)
        k, k2 = b64(b"foo"), b64(b"foo/\x00\xff")
        post("/v3/kv/put", {"key": k, "value": b64(b"bar")}, 1)
        post("/v3/kv/put", {"key": k, "value": b64(b"baz"), "prev_kv": True}, 1)
        post("/v3/kv/put", {"key": k2, "value": b64(bytes(range(256)))}, 1)
        post("/v3/kv/range", {"key": k}, 0)
        post("/v3/kv/range", {"key": b64(b"nope")}, 0)
        post("/v3/kv/range", {"key": k, "range_end": b64(b"fop"), "limit": "1"}, 0)
        post("/v3/kv/range", {"key": k, "range_end": b64(b"fop"), "keys_only": True}, 0)
        post("/v3/kv/range", {"key": "!!!"}, 5)
        lease = post("/v3/lease/grant", {"TTL": "60"}, 4)
        post("/v3/lease/keepalive", {"ID": lease.get("ID", "1")}, 4)
        post("/v3/lease/keepalive", {"ID": "999"}, 4)
        post("/v3/kv/put", {"key": b64(b"leased"), "value": b64(b"x"), "lease": lease.get("ID", "1")}, 1)
        r = post("/v3/kv/range", {"key": k}, 0)
        mod = r["kvs"][0]["mod_revision"]
        txn = {"compare": [{"key": k, "target": "MOD", "result": "EQUAL", "mod_revision": mod}],
               "success": [{"request_put": {"key": k, "value": b64(b"new"), "prev_kv": True}},
                           {"request_range": {"key": k}},
                           {"request_delete_range": {"key": b64(b"zz"), "prev_kv": True}}],
               "failure": [{"request_range": {"key": k}}]}
        post("/v3/kv/txn", txn, 3)
        post("/v3/kv/txn", txn, 3)  # now stale: the failure branch
        post("/v3/kv/txn", {"compare": [{"key": b64(b"c"), "target": "CREATE", "result": "EQUAL",
                                         "create_revision": "0"}],
                            "success": [{"request_put": {"key": k, "value": ""}}]}, 3)
        post("/v3/kv/txn", {"success": [{"request_put": {"key": k}}, {"request_put": {"key": k}}]}, 5)
        post("/v3/kv/deleterange", {"key": k2, "prev_kv": True}, 2)
        post("/v3/kv/deleterange", {"key": b64(b"nothing")}, 2)
        post("/v3/lease/revoke", {"ID": lease.get("ID", "1")}, 4)
        post("/v3/lease/revoke", {"ID": lease.get("ID", "1")}, 5)
        start = int(post("/v3/kv/range", {"key": k}, 0)["header"]["revision"]) + 1

        def writes():
            post("/v3/kv/put", {"key": k, "value": b64(b"w1")}, 1)
            post("/v3/kv/txn", {"success": [{"request_put": {"key": k, "value": b64(b"w2")}},
                                            {"request_put": {"key": b64(b"foo2"), "value": b64(b"w3")}}]}, 3)
            post("/v3/kv/deleterange", {"key": k}, 2)
        watch({"create_request": {"key": k, "range_end": b64(b"fop"), "start_revision": str(start)}}, writes)
        rev = post("/v3/kv/put", {"key": k, "value": b64(b"c")}, 1)["header"]["revision"]
        post("/v3/kv/compaction", {"revision": rev}, 0)
        post("/v3/kv/range", {"key": k, "revision": "2"}, 5)
        watch({"create_request": {"key": k, "start_revision": "2"}}, lambda: None)
    finally:
        proc.kill()
        proc.wait(30)
        log.close()
        shutil.rmtree(root, ignore_errors=True)
    print("fuzz_etcd_json: %d new seeds" % n)


ADMIN_KEYS = {15, 16, 35, 42, 47, 60}  # DescribeGroups .. DescribeCluster


def admin_clients(bs):
    """The group and cluster admin APIs through the proxy at bs. Frames of
    those APIs (and ListOffsets v7+) are the seeds of the `admin` mode."""
    sys.path.insert(0, os.path.join(ROOT, "tests", "broker"))
    import confluent_kafka as ck
    from confluent_kafka.admin import AdminClient, NewTopic
    import test_admin_groups as tg

    class At:  # what test_admin_groups' helpers need of a broker
        bootstrap = bs
        port = int(bs.rsplit(":", 1)[1])

    a = AdminClient({"bootstrap.servers": bs})
    a.create_topics([NewTopic("adm2", 2, 1)])["adm2"].result(10)
    tg.produce(At, "adm2", 2, 20)
    tg.standalone_commit(At, "g2", [ck.TopicPartition("adm2", 0, 3)])
    a.list_groups(timeout=10)
    for op, args in (("listGroups", {}), ("describeGroups", {"groups": ["g2", "x"]}),
                     ("fetchTopicOffsets", {"topic": "adm2"}),
                     ("deleteGroups", {"groups": ["x"]})):
        tg.kafkajs(At, op, args, expect_error=op == "deleteGroups")
    c = tg.Conn(At)
    try:
        for v in range(5):
            tg.list_groups_raw(c, v, ["Empty"])
        for v in range(6):
            tg.describe_groups_raw(c, v, ["g2", "x"], include_ops=True)
        tg.offset_delete_raw(c, "g2", {"adm2": [0, 1], "nosuch": [0]})
        for v in range(3):
            tg.delete_groups_raw(c, v, ["g2", "x"])
        for v in range(5):
            tg.describe_log_dirs_raw(c, v, {"adm2": [0, 1]} if v % 2 else None)
        for v in (0, 1):
            tg.describe_cluster_raw(c, v, include_ops=True)
        for v in (7, 8, 9):
            tg.list_offsets_raw(c, v, "adm2", [(0, -3), (1, -4), (0, -5), (1, 1700000000000)])
    finally:
        c.close()


ACL_KEYS = {29, 30, 31}  # DescribeAcls, CreateAcls, DeleteAcls


def acl_clients(bs):
    """The ACL APIs through the proxy at bs (the broker's ANONYMOUS is a
    super user): kafkajs's calls, then raw flexible versions."""
    sys.path.insert(0, os.path.join(ROOT, "tests", "broker"))
    import test_security_acl as ta
    from test_broker import cs, uv
    bindings = [ta.binding("TOPIC", "orders", "User:alice", "READ"),
                ta.binding("GROUP", "app-", "User:alice", "READ", pattern="PREFIXED"),
                ta.binding("TOPIC", "*", "User:*", "WRITE", perm="DENY", host="10.0.0.1"),
                ta.binding("CLUSTER", "kafka-cluster", "User:ops", "ALTER")]
    if ta.have_kafkajs():
        ta.acl_op(bs, "createAcls", {"acl": bindings})
        ta.acl_op(bs, "describeAcls", ta.ANY_FILTER)
        ta.acl_op(bs, "describeAcls", dict(ta.ANY_FILTER, resourceType="TOPIC",
                                           resourceName="orders", resourcePatternType="MATCH"))
        ta.acl_op(bs, "deleteAcls", {"filters": [dict(ta.ANY_FILTER, principal="User:ops")]})
    host, port = bs.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=10)
    try:
        for v in (2, 3):
            ta.create_results(ta.acl_request(s, 30, v, 10 + v, ta.create_v2(
                [(2, "raw-%d" % v, 4, "User:bob", "10.1.2.3", 4, 3), (99, "", 2, "bob", "x", 1, 1)])))
            ta.acl_request(s, 29, v, 20 + v, struct.pack(">b", 2) + cs("raw-topic") +
                           struct.pack(">b", 2) + uv(0) + uv(0) + struct.pack(">bb", 1, 1) + b"\x00")
            ta.acl_request(s, 31, v, 30 + v, uv(2) + struct.pack(">b", 1) + uv(0) +
                           struct.pack(">b", 1) + cs("User:bob") + uv(0) +
                           struct.pack(">bb", 1, 1) + b"\x00\x00")
    finally:
        s.close()


def sasl_corpus():
    """fuzz_sasl seeds: the messages Kafka clients send (first byte = which
    parser, see fuzz_sasl.c), librdkafka 2.0.2's client-final with its
    repeated client nonce among them."""
    cf = b"n,,n=alice,r=rOprNGfwEbeRWgbNEkqO"
    seeds = [b"\x00\x00alice\x00alice-secret", b"\x00alice\x00alice\x00pw",
             b"\x01" + cf, b"\x11n,a=bob,n=bob,r=abc,tokenauth=true",
             b"\x01n,,n=we=2Cird=3D,r=x", b"\x01y,,n=u,r=n", b"\x01p=tls-unique,,n=u,r=n",
             b"\x02" + cf + b"\x00c=biws,r=rOprNGfwEbeRWgbNEkqOrOprNGfwEbeRWgbNEkqO%hvYDp,"
             b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
             b"\x02" + cf + b"\x00c=biws,r=rOprNGfwEbeRWgbNEkqO,ext=1,p=AAAA"]
    print("fuzz_sasl: %d new seeds" % sum(save("fuzz_sasl", x) for x in seeds))


def main():
    if len(sys.argv) > 2 and sys.argv[2] == "etcd":
        etcd_corpus()
        return
    admin_only = len(sys.argv) > 2 and sys.argv[2] == "admin"
    acl_only = len(sys.argv) > 2 and sys.argv[2] == "acl"
    if len(sys.argv) > 2 and sys.argv[2] == "sasl":
        sasl_corpus()
        return
    build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build"))
    broker = os.path.join(build, "broker", "tierbroker")
    plugin = os.path.join(build, "broker-plugin", "libtierstore-plugin.so")
    kcat = shutil.which("kcat")
    for need in (broker, plugin, kcat):
        if not need or not os.path.exists(need):
            sys.exit("make_corpus: missing %s (build first; kcat from Debian)" % need)
    root = tempfile.mkdtemp(prefix="ts-corpus-")
    port, pport = free_port(), free_port()
    props = os.path.join(root, "server.properties")
    with open(props, "w") as f:
        f.write("listeners=PLAINTEXT://127.0.0.1:%d\n" % port)
        # Clients reconnect to the advertised address: make it the proxy's.
        f.write("advertised.listeners=PLAINTEXT://127.0.0.1:%d\n" % pport)
        f.write("log.dirs=%s/data\nplugin.path=%s\n" % (root, plugin))
        f.write("remote.storage.url=file://%s/bucket\n" % root)
        f.write("log.segment.bytes=65536\nlog.local.retention.bytes=131072\n")
        f.write("group.initial.rebalance.delay.ms=100\n")
        if acl_only:
            f.write("authorizer.class.name=kafka.security.authorizer.AclAuthorizer\n")
            f.write("super.users=User:ANONYMOUS\n")
    log = open(os.path.join(root, "broker.log"), "wb")
    proc = subprocess.Popen([broker, props], stdout=log, stderr=log)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        px = Proxy(pport, port)
        bs = "127.0.0.1:%d" % px.port
        pin = ["-X", "broker.address.family=v4"]
        if acl_only:
            acl_clients(bs)
            time.sleep(0.5)
            n = sum(save("fuzz_kafka_request", fr) for fr in px.frames
                    if struct.unpack(">h", fr[:2])[0] in ACL_KEYS)
            print("fuzz_kafka_request: %d new ACL seeds" % n)
            return
        if admin_only:
            admin_clients(bs)
            time.sleep(0.5)
            n = sum(save("fuzz_kafka_request", fr) for fr in px.frames
                    if struct.unpack(">h", fr[:2])[0] in ADMIN_KEYS or
                    struct.unpack(">hh", fr[:4]) in ((2, 7), (2, 8), (2, 9)))
            print("fuzz_kafka_request: %d new admin seeds" % n)
            return
        lines = b"".join(b"line-%06d %s\n" % (i, b"x" * (i % 200)) for i in range(3000))
        for codec in ("none", "gzip", "snappy", "lz4", "zstd"):
            run([kcat, "-b", bs, "-P", "-t", "c-" + codec, "-z", codec, "-K", ":", "-X", "batch.num.messages=40"] + pin,
                input=lines.replace(b"line-", b"k:line-", 200))
            run([kcat, "-b", bs, "-C", "-t", "c-" + codec, "-o", "beginning", "-e", "-c", "50"] + pin)
        run([kcat, "-b", bs, "-L"] + pin)
        run([kcat, "-b", bs, "-Q", "-t", "c-none:0:1700000000000"] + pin)
        try:
            import confluent_kafka as ck
            from confluent_kafka.admin import AdminClient, NewTopic
            a = AdminClient({"bootstrap.servers": bs})
            a.create_topics([NewTopic("adm", 2, 1, config={"retention.ms": "3600000"})])["adm"].result(10)
            p = ck.Producer({"bootstrap.servers": bs, "enable.idempotence": True, "acks": "all"})
            for i in range(200):
                p.produce("adm", b"v%d" % i, key=b"k%d" % (i % 7), headers=[("h", b"1")])
            p.flush(20)
            c = ck.Consumer({"bootstrap.servers": bs, "group.id": "g", "auto.offset.reset": "earliest",
                             "session.timeout.ms": 6000})
            c.subscribe(["adm"])
            got, deadline = 0, time.time() + 20
            while got < 200 and time.time() < deadline:
                m = c.poll(0.5)
                if m is not None and not m.error():
                    got += 1
            c.commit(asynchronous=False)
            c.committed([ck.TopicPartition("adm", 0)], timeout=10)
            c.close()
            # issue 12's admin APIs: configs (topic, broker), partitions, records
            from confluent_kafka.admin import ConfigResource, NewPartitions
            for r in (ConfigResource(ConfigResource.Type.TOPIC, "adm"),
                      ConfigResource(ConfigResource.Type.BROKER, "0")):
                a.describe_configs([r])[r].result(10)
            r = ConfigResource(ConfigResource.Type.TOPIC, "adm", set_config={"retention.ms": "7200000"})
            a.alter_configs([r])[r].result(10)
            a.create_partitions([NewPartitions("adm", 3)])["adm"].result(10)
            a.delete_topics(["adm"])["adm"].result(10)
        except ImportError:
            print("make_corpus: confluent-kafka not importable; group and admin requests skipped")
        time.sleep(0.5)
        n = sum(save("fuzz_kafka_request", fr) for fr in px.frames)
        print("fuzz_kafka_request: %d new seeds from %d API versions" % (n, len(px.seen)))
    finally:
        if proc.poll() is not None:
            print("make_corpus: the broker exited early (%d); log in %s" % (proc.returncode, root))
        proc.terminate()
        proc.wait(30)
        log.close()
    nb = 0
    for dirpath, _, files in os.walk(os.path.join(root, "data")):
        for fn in sorted(files):
            if fn.endswith(".log"):
                for i, bt in enumerate(batches_of(os.path.join(dirpath, fn))):
                    if i >= 3:
                        break
                    nb += save("fuzz_batch", bt)
    print("fuzz_batch: %d new seeds" % nb)
    nm = 0
    for dirpath, _, files in os.walk(os.path.join(root, "bucket")):
        if os.path.basename(dirpath) == "manifests":
            for fn in sorted(files)[-2:]:
                with open(os.path.join(dirpath, fn), "rb") as f:
                    nm += save("fuzz_manifest", f.read())
    print("fuzz_manifest: %d new seeds" % nm)
    nc = 0
    for p in (props, os.path.join(ROOT, "broker", "server.properties")):
        if os.path.exists(p):
            with open(p, "rb") as f:
                nc += save("fuzz_config", f.read())
    print("fuzz_config: %d new seeds" % nc)
    print("fuzz_s3_xml: %d new seeds" % sum(save("fuzz_s3_xml", x) for x in S3_XML))
    etcd_corpus()
    sasl_corpus()
    if os.environ.get("TS_KEEP_TEST_DIRS"):
        print("kept " + root)
    else:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
