#!/usr/bin/python3
"""cluster.py — the cluster test harness (issue 10): a real etcd (Debian's
/usr/bin/etcd) and N real tierbrokers on free loopback ports, sharing one
file:// bucket, each with its own data dir.

Used by tests/cluster/test_*.py (and by the replication and group helpers'
tests); run under /usr/bin/python3 (Debian's confluent-kafka). Everything it
starts is killed at exit (atexit) and its temp dirs removed unless
TS_KEEP_TEST_DIRS is set.

    with Cluster(3, session_ms=2000) as c:        # etcd + brokers 1..3
        c.wait_registered()
        c.create_topic("t", partitions=3, rf=3)
        c.wait_leaders("t", 3)
        b = c.leader_of("t", 0)                    # a Node
        b.kill9(); b.restart()                     # SIGKILL, start again (same data dir)
        b.sigstop(); b.sigcont(); b.wipe()         # freeze, thaw, empty the data dir
        c.etcd.get_prefix("partitions/t/")         # {key suffix: (json value, mod_rev)}
        w = AckedWrites(c.bootstrap, "t"); w.produce(1000); w.verify()

Environment: TIERBROKER, TSPLUGIN (the real plugin), ETCD_BIN (default
/usr/bin/etcd). Fixed settings: node.id = 1..N, broker.session.timeout.ms =
session_ms, segments small; pass extra={key: value} for more, or per node
Cluster(..., node_extra={2: {...}}).
"""
import atexit
import base64
import concurrent.futures
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "broker"))
from test_broker import Fail, check, free_port, run  # noqa: E402,F401  (shared runner)

import confluent_kafka as ck  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

BROKER = os.environ.get("TIERBROKER")
TSPLUGIN = os.environ.get("TSPLUGIN")
ETCD_BIN = os.environ.get("ETCD_BIN", "/usr/bin/etcd")

_procs = []


def _kill_all():
    for p in _procs:
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGCONT)
            except OSError:
                pass
            p.kill()
            p.wait()


atexit.register(_kill_all)


def wait_until(fn, timeout=30.0, msg="condition", interval=0.1):
    """Polls fn() until it returns something truthy (returned), or fails
    with msg after timeout seconds. Exceptions of fn count as 'not yet'."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            v = fn()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 - retried until the deadline
            last = e
        time.sleep(interval)
    raise Fail("timed out after %.0f s waiting for %s%s" %
               (timeout, msg, (" (last error: %s)" % last) if last else ""))


def _b64(s):
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


def _unb64(s):
    return base64.b64decode(s)


def _prefix_end(p):
    b = bytearray(p.encode())
    for i in range(len(b) - 1, -1, -1):
        if b[i] < 0xFF:
            b[i] += 1
            return bytes(b[:i + 1])
    return b"\x00"


class Etcd:
    """One etcd member on free loopback ports, data in a temp dir."""

    def __init__(self, root, cluster_name="tierstore", compaction_revisions=10000):
        self.root = root
        self.cluster_name = cluster_name
        self.client_port = free_port()
        self.peer_port = free_port()
        self.data = os.path.join(root, "etcd-data")
        self.logpath = os.path.join(root, "etcd.log")
        self.compaction = compaction_revisions
        self.proc = None
        self.started_once = False

    @property
    def url(self):
        return "etcd://127.0.0.1:%d" % self.client_port

    @property
    def http(self):
        return "http://127.0.0.1:%d" % self.client_port

    def start(self):
        """Starts etcd; a first start that loses its ports to a concurrent test
        (free_port is a race) retries on fresh ones."""
        for attempt in range(3):
            try:
                return self._start()
            except Fail:
                if self.started_once or attempt == 2 or "address already in use" not in \
                        open(self.logpath, errors="replace").read():
                    raise
                shutil.rmtree(self.data, ignore_errors=True)
                self.client_port, self.peer_port = free_port(), free_port()

    def _start(self):
        client, peer = self.http, "http://127.0.0.1:%d" % self.peer_port
        log = open(self.logpath, "ab")
        self.proc = subprocess.Popen(
            etcd_command("m0", self.data, client, peer, "m0=" + peer, "new", self.compaction),
            stdout=log, stderr=log)
        log.close()
        _procs.append(self.proc)
        wait_until(lambda: self._ready(), 30, "etcd to answer on %s" % client)
        self.started_once = True
        return self

    def _ready(self):
        if self.proc.poll() is not None:
            raise Fail("etcd exited with %d" % self.proc.returncode)
        self.call("/v3/kv/range", {"key": _b64("ready")})
        return True

    def stop(self, sig=signal.SIGKILL):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(30)

    def call(self, path, body, timeout=5):
        req = urllib.request.Request(self.http + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.loads(r.read())

    def key(self, suffix):
        return "/%s/%s" % (self.cluster_name, suffix)

    def get(self, suffix):
        """(json value, mod_revision, create_revision) of one key, or None."""
        r = self.call("/v3/kv/range", {"key": _b64(self.key(suffix))})
        kvs = r.get("kvs") or []
        if not kvs:
            return None
        kv = kvs[0]
        return (json.loads(_unb64(kv["value"])), int(kv["mod_revision"]),
                int(kv["create_revision"]))

    def get_prefix(self, suffix, revision=0):
        """{key below the cluster prefix: (json value, mod_revision)}."""
        k = self.key(suffix)
        body = {"key": _b64(k), "range_end": _b64(_prefix_end(k))}
        if revision:
            body["revision"] = str(revision)
        r = self.call("/v3/kv/range", body)
        out = {}
        skip = len("/%s/" % self.cluster_name)
        for kv in r.get("kvs") or []:
            name = _unb64(kv["key"]).decode()[skip:]
            try:
                val = json.loads(_unb64(kv["value"]))
            except ValueError:
                val = _unb64(kv["value"])
            out[name] = (val, int(kv["mod_revision"]))
        return out

    def compact(self, revision=0):
        """Compacts etcd's history up to revision (0: the current one)."""
        rev = revision or self.revision()
        self.call("/v3/kv/compaction", {"revision": str(rev), "physical": True})
        return rev

    def revision(self):
        return int(self.call("/v3/kv/range", {"key": _b64("x")})["header"]["revision"])

    def put(self, suffix, value):
        self.call("/v3/kv/put", {"key": _b64(self.key(suffix)), "value": _b64(json.dumps(value))})

    def history(self, suffix, from_revision, timeout=2.0):
        """Every event under the prefix since from_revision: [(type, key, json, mod_rev)].
        Read from a watch stream (etcd keeps history until compaction)."""
        k = self.key(suffix)
        body = {"create_request": {"key": _b64(k), "range_end": _b64(_prefix_end(k)),
                                   "start_revision": str(from_revision)}}
        req = urllib.request.Request(self.http + "/v3/watch", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        out = []
        skip = len("/%s/" % self.cluster_name)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                while True:
                    line = r.readline()
                    if not line:
                        break
                    res = json.loads(line).get("result", {})
                    for ev in res.get("events") or []:
                        kv = ev["kv"]
                        val = None
                        if kv.get("value"):
                            try:
                                val = json.loads(_unb64(kv["value"]))
                            except ValueError:
                                val = None
                        out.append((ev.get("type", "PUT"), _unb64(kv["key"]).decode()[skip:],
                                    val, int(kv["mod_revision"])))
        except (socket.timeout, TimeoutError, urllib.error.URLError, OSError):
            pass  # the stream stays open: the read timeout ends it
        return out


class Node:
    """One tierbroker of the cluster."""

    def __init__(self, cluster, node_id, rack=None, extra=None):
        self.c = cluster
        self.id = node_id
        self.rack = rack
        self.extra = extra or {}
        self.port = free_port()
        self.dir = os.path.join(cluster.root, "broker-%d" % node_id)
        self.data = os.path.join(self.dir, "data")
        self.props = os.path.join(self.dir, "server.properties")
        self.logpath = os.path.join(self.dir, "broker.log")
        self.proc = None
        self.stopped = False
        os.makedirs(self.data, exist_ok=True)

    @property
    def bootstrap(self):
        return "127.0.0.1:%d" % self.port

    def write_props(self):
        props = {
            "listeners": "%s://127.0.0.1:%d" % (self.c.proto, self.port),
            "node.id": str(self.id),
            "metadata.store.url": self.c.etcd.url,
            "cluster.name": self.c.etcd.cluster_name,
            "broker.session.timeout.ms": str(self.c.session_ms),
            "log.dirs": self.data,
            "plugin.path": TSPLUGIN,
            "remote.storage.url": "file://" + self.c.bucket,
            "group.initial.rebalance.delay.ms": "200",
            "offsets.topic.num.partitions": "4",
            "leader.imbalance.check.interval.seconds": "2",
        }
        if self.rack:
            props["broker.rack"] = self.rack
        props.update(self.c.extra)
        props.update(self.extra)
        with open(self.props, "w") as f:
            for k, v in props.items():
                f.write("%s=%s\n" % (k, v))

    def start(self, wait_listen=True):
        """Starts the broker; one whose port a concurrent test took meanwhile
        (free_port is a race) starts again on a fresh port."""
        for attempt in range(3):
            try:
                return self._start(wait_listen)
            except Fail:
                if attempt == 2 or "Address already in use" not in self.log()[-2000:]:
                    raise
                self.port = free_port()

    def _start(self, wait_listen):
        self.write_props()
        os.makedirs(self.data, exist_ok=True)
        with open(self.logpath, "ab") as log:
            log.write(b"=== start %f ===\n" % time.time())
            self.proc = subprocess.Popen([BROKER, self.props], stdout=log, stderr=log)
        _procs.append(self.proc)
        self.stopped = False
        if wait_listen:
            wait_until(self._listening, 60, "broker %d to listen" % self.id, 0.05)
        return self

    def _listening(self):
        if self.proc.poll() is not None:
            raise Fail("broker %d exited with %d:\n%s" % (self.id, self.proc.returncode,
                                                           self.log()[-3000:]))
        socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
        # the listening socket must be this broker's: a concurrent test may have
        # taken the port (free_port is a race), and then this broker exits with
        # "Address already in use" while the other process answers the connect
        return self._owns_port()

    def _owns_port(self):
        inodes = set()
        for path in ("/proc/net/tcp", "/proc/net/tcp6"):
            try:
                with open(path) as f:
                    rows = f.read().splitlines()[1:]
            except OSError:
                return True  # no procfs: trust the connect
            for row in rows:
                col = row.split()
                if col[3] == "0A" and int(col[1].rsplit(":", 1)[1], 16) == self.port:
                    inodes.add("socket:[%s]" % col[9])
        fds = "/proc/%d/fd" % self.proc.pid
        for fd in os.listdir(fds):
            try:
                if os.readlink(os.path.join(fds, fd)) in inodes:
                    return True
            except OSError:
                pass
        return False

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill9(self):
        if self.alive():
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait()

    def stop(self, sig=signal.SIGTERM, timeout=60):
        if self.alive():
            self.proc.send_signal(signal.SIGCONT)
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def sigstop(self):
        self.proc.send_signal(signal.SIGSTOP)
        self.stopped = True

    def sigcont(self):
        self.proc.send_signal(signal.SIGCONT)
        self.stopped = False

    def restart(self, wait_listen=True):
        self.kill9()
        return self.start(wait_listen)

    def wipe(self):
        """Empties the data dir (the broker must be down)."""
        check(not self.alive(), "wipe of a running broker")
        shutil.rmtree(self.data, ignore_errors=True)
        os.makedirs(self.data, exist_ok=True)

    def log(self):
        try:
            with open(self.logpath, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def wait_exit(self, timeout=60):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise Fail("broker %d did not exit within %d s" % (self.id, timeout))


class Cluster:
    """etcd + brokers 1..n. racks: list of rack names (node i gets racks[i-1])."""

    def __init__(self, n=3, session_ms=2000, extra=None, racks=None, node_extra=None,
                 start=True):
        self.root = tempfile.mkdtemp(prefix="tierstore-cluster-")
        self.bucket = os.path.join(self.root, "bucket")
        os.makedirs(self.bucket, exist_ok=True)
        self.session_ms = session_ms
        self.extra = {"log.segment.bytes": "65536", "log.local.retention.bytes": "262144",
                      "remote.storage.enable": "true"}
        self.extra.update(extra or {})
        self.etcd = Etcd(self.root)
        # Security (tests/cluster/test_security.py): the listener's protocol
        # and the client properties every helper's clients use; set them
        # before start() (Cluster(..., start=False)).
        self.proto = "PLAINTEXT"
        self.client = {}
        self.nodes = {}
        for i in range(1, n + 1):
            rack = racks[i - 1] if racks else None
            self.nodes[i] = Node(self, i, rack, (node_extra or {}).get(i))
        if start:
            self.start()

    def start(self):
        self.etcd.start()
        for n in self.nodes.values():
            n.start()
        return self

    def add_node(self, node_id, rack=None, extra=None):
        n = Node(self, node_id, rack, extra)
        self.nodes[node_id] = n
        return n

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.cleanup(failed=exc_type is not None)

    def cleanup(self, failed=False):
        for n in self.nodes.values():
            if n.proc:
                n.kill9()
        self.etcd.stop()
        if failed or sys.exc_info()[0] is not None:
            for n in self.nodes.values():
                print("--- broker %d log (tail) ---\n%s" % (n.id, n.log()[-3000:]))
        if os.environ.get("TS_KEEP_TEST_DIRS"):
            print("kept " + self.root)
        else:
            shutil.rmtree(self.root, ignore_errors=True)

    # ---------------------------------------------------------- views
    @property
    def bootstrap(self):
        return ",".join(n.bootstrap for n in self.nodes.values() if n.alive() and not n.stopped)

    def node(self, node_id):
        return self.nodes[node_id]

    def conf(self, bootstrap=None):
        """Client properties for bootstrap (default: every live broker)."""
        return dict({"bootstrap.servers": bootstrap or self.bootstrap}, **self.client)

    def admin(self):
        return AdminClient(self.conf())

    def metadata(self, topic=None, timeout=10):
        """confluent-kafka ClusterMetadata (brokers, controller_id, topics)."""
        return self.admin().list_topics(topic=topic, timeout=timeout)

    def registered(self):
        """Broker ids registered in etcd."""
        return sorted(int(k.split("/")[1]) for k in self.etcd.get_prefix("brokers/"))

    def wait_registered(self, ids=None, timeout=60):
        want = sorted(ids if ids is not None else self.nodes)
        return wait_until(lambda: self.registered() == want, timeout,
                          "brokers %s registered in etcd (have %s)" % (want, self.registered()))

    def controller(self):
        """(controller id, controller epoch) from etcd, or (-1, 0)."""
        v = self.etcd.get("controller")
        return (v[0]["id"], v[2]) if v else (-1, 0)

    def pstate(self, topic, p):
        """partitions/<topic>/<p> as a dict (+ 'version'), or None."""
        v = self.etcd.get("partitions/%s/%d" % (topic, p))
        if not v:
            return None
        d = dict(v[0])
        d["version"] = v[1]
        return d

    def topic_assignment(self, topic):
        v = self.etcd.get("topics/" + topic)
        return v[0]["partitions"] if v else None

    def wait_leaders(self, topic, nparts, timeout=60, exclude=(), views=True):
        """Every partition has a live leader (not in exclude) in etcd and, with
        views, every running broker's Metadata says so too (each broker learns
        etcd's changes through its own watch, a moment apart); returns the
        states."""
        def ok():
            sts = [self.pstate(topic, p) for p in range(nparts)]
            if any(s is None or s["leader"] < 0 or s["leader"] in exclude for s in sts):
                return None
            for n in self.nodes.values() if views else ():
                if not n.alive() or n.stopped:
                    continue
                md = AdminClient(self.conf(n.bootstrap)).list_topics(topic, timeout=5)
                parts = md.topics[topic].partitions if topic in md.topics else {}
                if [parts[p].leader if p in parts else -1 for p in range(nparts)] != \
                        [s["leader"] for s in sts]:
                    return None
            return sts
        return wait_until(ok, timeout, "leaders of %s" % topic)

    def leader_of(self, topic, p):
        return self.nodes[self.pstate(topic, p)["leader"]]

    def create_topic(self, name, partitions=1, rf=1, config=None, timeout=30):
        # A broker counts live brokers from its etcd watch, which may not have
        # shown it every registration etcd already holds (wait_registered reads
        # etcd): right after a start, the broker asked can answer
        # INVALID_REPLICATION_FACTOR for brokers that are registered. Kafka's
        # brokers do the same; the harness retries that case only, for a few
        # seconds, while etcd has enough brokers registered.
        deadline = time.time() + 10
        while True:
            try:
                return self._create_topic_once(name, partitions, rf, config, timeout)
            except ck.KafkaException as e:
                if (e.args[0].code() != ck.KafkaError.INVALID_REPLICATION_FACTOR or
                        len(self.registered()) < rf or time.time() > deadline):
                    raise
                time.sleep(0.2)

    def _create_topic_once(self, name, partitions, rf, config, timeout):
        a = self.admin()  # kept referenced: a destroyed client fails its futures
        fs = a.create_topics([NewTopic(name, partitions, rf, config=config or {})],
                             operation_timeout=timeout, request_timeout=timeout + 5)
        for f in fs.values():
            try:
                f.result(timeout + 10)
            except ck.KafkaException as e:
                if e.args[0].code() != ck.KafkaError._TIMED_OUT:
                    raise
                raise Fail("CreateTopics %s: %s; controller in etcd %s, in the brokers' Metadata "
                           "%s" % (name, e, self.controller(), self.metadata_controllers()))
            except (TimeoutError, concurrent.futures.TimeoutError):
                raise Fail("CreateTopics %s: no answer within %d s; controller in etcd %s, in "
                           "the brokers' Metadata %s" % (name, timeout + 10, self.controller(),
                                                         self.metadata_controllers()))

    def metadata_controllers(self):
        """{node id: the controller its Metadata names} (for messages)."""
        out = {}
        for n in self.nodes.values():
            if n.alive() and not n.stopped:
                try:
                    out[n.id] = AdminClient(self.conf(n.bootstrap)).list_topics(
                        timeout=5).controller_id
                except Exception as e:  # noqa: BLE001 - only for a message
                    out[n.id] = str(e)
        return out

    def delete_topic(self, name, timeout=30):
        a = self.admin()
        for f in a.delete_topics([name], operation_timeout=timeout,
                                 request_timeout=timeout + 5).values():
            f.result(timeout + 10)


# ---------------------------------------------------------------- clients
class ImplicitAcks(logging.Handler):
    """Counts, from librdkafka's "eos" debug log, the messages its idempotent
    producer reported delivered without an offset itself: implicitly acked
    (an earlier request failed with unknown outcome, a later one succeeded:
    rd_kafka_dr_implicit_ack) or answered DUPLICATE_SEQUENCE_NUMBER. Its
    other (non-debug) log lines still go to stderr."""

    IMPLICIT = re.compile(r"(\d+) message\(s\) implicitly acked")

    def __init__(self):
        super().__init__()
        self.implicit = 0  # messages
        self.dupseq = 0    # batches

    def emit(self, record):
        msg = record.getMessage()
        m = self.IMPLICIT.search(msg)
        if m:
            self.implicit += int(m.group(1))
        elif msg.startswith("DUPSEQ "):
            self.dupseq += 1
        elif record.levelno > logging.DEBUG:
            sys.stderr.write(msg + "\n")


class AckedWrites:
    """Produces records with unique keys and remembers which were acknowledged
    (and at which partition/offset); verify() reads the topic back and checks
    that every acknowledged record is there exactly once, in produce order
    per partition."""

    def __init__(self, bootstrap, topic, conf=None, client=None, count_implicit=False):
        self.bootstrap = bootstrap
        self.topic = topic
        self.client = client or {}  # security properties, for the reads too
        cfg = {"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
               "linger.ms": 5, "message.timeout.ms": 60000, "retries": 1000000}
        cfg.update(self.client)
        cfg.update(conf or {})
        # count_implicit: the deliveries librdkafka itself reports without an
        # offset are counted (self.implicit), to tell them from a broker's
        # answer without one.
        self.implicit = None
        if count_implicit:
            self.implicit = ImplicitAcks()
            log = logging.getLogger("acked-writes-%s-%d" % (topic, time.time_ns()))
            log.propagate = False
            log.setLevel(logging.DEBUG)
            log.addHandler(self.implicit)
            cfg.update({"debug": "eos", "logger": log})
        self.cfg = cfg
        self.p = ck.Producer(cfg)
        self.seq = 0
        self.acked = {}  # key -> (partition, offset)
        self.failed = {}  # key -> error

    def renew(self):
        """A new producer (fresh metadata: a partition count that grew), the
        same record sequence and bookkeeping."""
        self.flush()
        self.p = ck.Producer(self.cfg)

    def _cb(self, err, msg):
        k = msg.key().decode()
        if err is None:
            self.acked[k] = (msg.partition(), msg.offset())
        else:
            self.failed[k] = str(err)

    def produce(self, n, partition=None, flush=True, pause=0.0):
        for _ in range(n):
            k = "k-%08d" % self.seq
            self.seq += 1
            kw = {"key": k, "value": "v-" + k, "on_delivery": self._cb}
            if partition is not None:
                kw["partition"] = partition
            while True:
                try:
                    self.p.produce(self.topic, **kw)
                    break
                except BufferError:
                    self.p.poll(0.1)
            self.p.poll(0)
            if pause:
                time.sleep(pause)
        if flush:
            self.flush()

    def flush(self, timeout=120):
        left = self.p.flush(timeout)
        check(left == 0, "%d records still unacknowledged after %d s" % (left, timeout))

    def read_all(self, timeout=120, bootstrap=None):
        """{partition: [(offset, key)]} of everything in the topic now."""
        md = AdminClient(dict({"bootstrap.servers": bootstrap or self.bootstrap},
                              **self.client)).list_topics(self.topic, timeout=10)
        parts = sorted(md.topics[self.topic].partitions)
        c = ck.Consumer(dict({"bootstrap.servers": bootstrap or self.bootstrap,
                              "group.id": "acked-check-%d" % time.time_ns(),
                              "enable.auto.commit": False, "auto.offset.reset": "earliest",
                              "enable.partition.eof": True}, **self.client))
        c.assign([ck.TopicPartition(self.topic, p, ck.OFFSET_BEGINNING) for p in parts])
        out = {p: [] for p in parts}
        at_eof = set()
        want = {}
        for k, (p, o) in self.acked.items():
            # librdkafka's idempotent producer may report a delivery without
            # an offset (None: acked implicitly by a later batch's success,
            # ImplicitAcks); such a record is still checked by key, it just
            # bounds nothing here.
            if o is not None:
                want[p] = max(want.get(p, -1), o)
        deadline = time.time() + timeout
        while time.time() < deadline:
            done = all(p in at_eof and (not out[p] or out[p][-1][0] >= want.get(p, -1))
                       for p in parts)
            if done:
                break
            for m in c.consume(500, 0.5):
                if m.error():
                    if m.error().code() == ck.KafkaError._PARTITION_EOF:
                        at_eof.add(m.partition())
                    continue
                out[m.partition()].append((m.offset(), m.key().decode() if m.key() else None))
        c.close()
        return out

    def verify(self, timeout=120, bootstrap=None):
        """Every acknowledged record read back exactly once, in order per partition.
        Returns the number of acknowledged records checked."""
        got = self.read_all(timeout, bootstrap)
        seen = {}
        for p, recs in got.items():
            for off, k in recs:
                if k is None:
                    continue
                check(k not in seen, "record %s read twice (%s and p%d@%d)" %
                      (k, seen.get(k), p, off))
                seen[k] = (p, off)
        for k, (p, o) in sorted(self.acked.items()):
            check(k in seen, "acknowledged record %s (p%d@%d) is missing" % (k, p, o))
            check(seen[k][0] == p, "record %s acked in p%d, read in p%d" % (k, p, seen[k][0]))
        for p, recs in got.items():
            keys = [k for _, k in recs if k in self.acked]
            check(keys == sorted(keys), "partition %d: acknowledged records out of order" % p)
        return len(self.acked)


def produce_one(bootstrap, topic, value=b"x", partition=0, timeout=30, conf=None):
    """One record, acks=all; returns (partition, offset) or raises Fail."""
    cfg = {"bootstrap.servers": bootstrap, "acks": "all", "message.timeout.ms": timeout * 1000}
    cfg.update(conf or {})
    p = ck.Producer(cfg)
    res = {}
    p.produce(topic, value=value, partition=partition,
              on_delivery=lambda e, m: res.update(err=e, p=m.partition(), o=m.offset()))
    p.flush(timeout + 5)
    check(res.get("err") is None and "o" in res, "produce to %s-%d: %s" %
          (topic, partition, res.get("err")))
    return res["p"], res["o"]


# ------------------------------------------------ multi-member etcd (cluster-groups)
# A three-member etcd for the tests that lose members (tests/cluster/test_groups.py).
# Kept in this block of its own; Cluster(..., start=False), then use_etcd_members(c, 3)
# before c.start().
def etcd_command(name, data, client, peer, initial_cluster, state, compaction):
    """The etcd command line of one member (a single etcd is a one-member
    cluster): fast elections for tests, history compacted by revision."""
    return [ETCD_BIN, "--name", name, "--data-dir", data,
            "--listen-client-urls", client, "--advertise-client-urls", client,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", initial_cluster, "--initial-cluster-state", state,
            "--initial-cluster-token", "ts-cluster-test",
            "--heartbeat-interval", "50", "--election-timeout", "500",
            "--auto-compaction-mode", "revision", "--auto-compaction-retention", str(compaction),
            "--logger", "zap", "--log-outputs", "stderr"]


class EtcdMember:
    """One member of an EtcdCluster: its own ports, data dir and log."""

    def __init__(self, root, name):
        self.name = name
        self.client_port = free_port()
        self.peer_port = free_port()
        self.data = os.path.join(root, "etcd-%s" % name)
        self.logpath = os.path.join(root, "etcd-%s.log" % name)
        self.proc = None

    @property
    def http(self):
        return "http://127.0.0.1:%d" % self.client_port

    @property
    def peer(self):
        return "http://127.0.0.1:%d" % self.peer_port

    def alive(self):
        return self.proc is not None and self.proc.poll() is None


class EtcdCluster(Etcd):
    """n etcd members forming one cluster; the same readers as Etcd (they ask
    any live member). kill(i) / start_member(i) lose and bring back member i
    (its data dir kept, so it rejoins as itself)."""

    def __init__(self, root, n=3, cluster_name="tierstore", compaction_revisions=10000):
        super().__init__(root, cluster_name, compaction_revisions)
        os.makedirs(root, exist_ok=True)
        self.members = [EtcdMember(root, "m%d" % i) for i in range(n)]

    @property
    def url(self):
        return "etcd://" + ",".join("127.0.0.1:%d" % m.client_port for m in self.members)

    @property
    def http(self):
        live = [m for m in self.members if m.alive()]
        return (live or self.members)[0].http

    def _spawn(self, m, state):
        initial = ",".join("%s=%s" % (x.name, x.peer) for x in self.members)
        log = open(m.logpath, "ab")
        m.proc = subprocess.Popen(
            etcd_command(m.name, m.data, m.http, m.peer, initial, state, self.compaction),
            stdout=log, stderr=log)
        log.close()
        _procs.append(m.proc)

    def start(self):
        for m in self.members:
            self._spawn(m, "new")
        wait_until(self._ready, 60, "a %d-member etcd to elect a leader" % len(self.members))
        self.proc = self.members[0].proc
        return self

    def _ready(self):
        for m in self.members:
            if not m.alive():
                raise Fail("etcd member %s exited with %d" % (m.name, m.proc.returncode))
        return all(self._member_call(m, "/v3/kv/range", {"key": _b64("ready")}) for m in
                   self.members)

    def _member_call(self, m, path, body, timeout=5):
        req = urllib.request.Request(m.http + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.loads(r.read())

    def call(self, path, body, timeout=5):
        last = None
        for m in self.members:
            if not m.alive():
                continue
            try:
                return self._member_call(m, path, body, timeout)
            except (urllib.error.URLError, OSError, ValueError) as e:
                last = e
        raise Fail("no etcd member answered %s: %s" % (path, last))

    def kill(self, i, sig=signal.SIGKILL):
        m = self.members[i]
        if m.alive():
            m.proc.send_signal(sig)
            m.proc.wait(30)

    def start_member(self, i):
        """Restarts a killed member on its data dir (it rejoins the cluster)."""
        m = self.members[i]
        check(not m.alive(), "member %s is running" % m.name)
        self._spawn(m, "existing")
        wait_until(lambda: self._member_call(m, "/v3/kv/range", {"key": _b64("ready")}), 60,
                   "etcd member %s to rejoin" % m.name)

    def leader_index(self):
        """Index of the member that is the raft leader now (-1: none known)."""
        for i, m in enumerate(self.members):
            if not m.alive():
                continue
            try:
                st = self._member_call(m, "/v3/maintenance/status", {}, timeout=2)
            except (urllib.error.URLError, OSError, ValueError):
                continue
            if st.get("leader") and st["leader"] == st["header"]["member_id"]:
                return i
        return -1

    def has_quorum(self):
        """Whether a linearizable read is answered now (a majority is up)."""
        try:
            self.call("/v3/kv/range", {"key": _b64("quorum")}, timeout=2)
            return True
        except Fail:
            return False

    def stop(self, sig=signal.SIGKILL):
        for i in range(len(self.members)):
            self.kill(i, sig)


def use_etcd_members(cluster, n=3):
    """Gives a Cluster made with start=False an n-member etcd."""
    cluster.etcd = EtcdCluster(cluster.root, n, cluster.etcd.cluster_name,
                               cluster.etcd.compaction)
    return cluster.etcd
