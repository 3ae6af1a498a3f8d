#!/usr/bin/python3
"""test_security.py — inter-broker security in a cluster (task sec-interbroker):
followers fetch from their leaders over the listener inter.broker.listener.name
names, with TLS and SASL as a Kafka broker does; every broker registers each of
its listeners in etcd and Metadata, DescribeCluster and FindCoordinator answer a
client with the addresses of the listener it connected on.

  sec_sasl_ssl       three brokers whose only listener is SASL_SSL (SCRAM-SHA-512,
                     brokers log in as user "broker", sessions of 2 s that the
                     fetchers renew in time): acks=all produce (answered once the
                     whole ISR has the record, so both followers fetched it over
                     SASL_SSL); the ISR stays full
                     past replica.lag.time.max.ms; a leader SIGKILLed; every
                     acknowledged record read back; the killed broker restarts
                     and rejoins the ISR.
  sec_listeners      PLAINTEXT + SSL listeners on brokers 1 and 2, PLAINTEXT only
                     on broker 3: a client of each listener gets that listener's
                     ports in Metadata, DescribeCluster (raw v0) and
                     FindCoordinator; broker 3 is left out for SSL clients (Kafka's
                     rule) and a group it coordinates is COORDINATOR_NOT_AVAILABLE
                     there; a registration in the old format (one address) is
                     listed on every listener.
  sec_bad_password   broker 3 logs in as "broker3" with a password the leaders do
                     not hold: it stays out of the ISR while the cluster keeps
                     serving acks=all writes; its log says why, rate-limited and
                     without the password; once the leaders' users file has the
                     right password, its fetchers' retries get it back into the
                     ISR without a restart.
  sec_untrusted_ca   broker 3's truststore does not hold the leaders' CA: it logs
                     the untrusted certificate, stays out of their ISRs, and
                     acks=all writes go on.
  sec_mtls           SSL-only brokers with ssl.client.auth=required: followers
                     present their keystore; a leader whose certificate names
                     another host is refused (Kafka's default host check) until
                     ssl.endpoint.identification.algorithm is emptied.
  sec_config_errors  inter-broker settings that cannot work (unknown listener,
                     both keys, GSSAPI, no or an incomplete JAAS line) refuse to
                     start with a message naming the setting.

Certificates are made with the openssl CLI (tests/broker/test_security_tls.py's
PKI), users with `tierctl users add` (password on stdin). Run like the other
cluster tests: `test_security.py NAME` with TIERBROKER, TSPLUGIN, TIERCTL set.
"""
import base64
import os
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import AckedWrites, Cluster, check, free_port, run, wait_until  # noqa: E402
from test_broker import TIERCTL, raw_request, raw_response  # noqa: E402
from test_security_tls import PKI, openssl  # noqa: E402
from confluent_kafka.admin import AdminClient  # noqa: E402

TOPIC = "sec"
BROKER_PW = "broker-pw-7f3a"
ALICE_PW = "alice-pw-91c2"
JAAS = ('org.apache.kafka.common.security.scram.ScramLoginModule required '
        'username="%s" password="%s";')
JAAS_KEY = "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config"


class FastPKI(PKI):
    """test_security_tls's PKI with P-256 keys (RSA key generation took most
    of a test's time on a loaded machine): the CA, a rogue CA and the server
    certificate (127.0.0.1/localhost) every broker uses."""

    def __init__(self, root):  # noqa: super().__init__ would make RSA keys
        self.dir = os.path.join(root, "pki")
        os.makedirs(self.dir, exist_ok=True)
        self.ca, self.ca_key = self.make_ca("ca", "/CN=Test CA")
        self.rogue_ca, self.rogue_key = self.make_ca("rogue", "/CN=Rogue CA")
        self.server = self.make_cert("server", "/CN=localhost/O=Tierstore", self.ca, self.ca_key,
                                     serial="1001", server=True)

    @staticmethod
    def newkey():
        return ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]

    def make_ca(self, name, subj):
        key, crt = self.p(name + ".key"), self.p(name + ".pem")
        openssl(*(["req", "-x509"] + self.newkey() + ["-nodes", "-keyout", key, "-out", crt,
                                                      "-days", "2", "-subj", subj]))
        return crt, key

    def make_cert(self, name, subj, ca, ca_key, serial, server=False,
                  san="IP:127.0.0.1,DNS:localhost"):
        key, csr, crt = self.p(name + ".key"), self.p(name + ".csr"), self.p(name + ".pem")
        ext = self.p(name + ".ext")
        with open(ext, "w") as f:
            f.write("subjectAltName=%s\n" % san)
        openssl(*(["req"] + self.newkey() + ["-nodes", "-keyout", key, "-out", csr,
                                              "-subj", subj]))
        openssl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-set_serial", serial,
                "-days", "2", "-out", crt, "-extfile", ext)
        store = self.p(name + ".keystore.pem")
        with open(store, "w") as out:
            for part in (key, crt, ca):
                with open(part) as f:
                    out.write(f.read())
        return crt, key, store


def add_user(node, name, password):
    r = subprocess.run([TIERCTL, "-c", node.props, "users", "add", name, "--mechanism",
                        "SCRAM-SHA-512"], input=(password + "\n").encode(), capture_output=True,
                       timeout=60)
    check(r.returncode == 0, "tierctl users add %s on broker %d: %s" %
          (name, node.id, (r.stdout + r.stderr).decode(errors="replace")))


def sasl_cluster(node_extra=None, extra=None, users=None):
    """Three brokers with one SASL_SSL listener each, not started; users:
    {node id: [(user, password)]} besides broker and alice on every node."""
    c = Cluster(3, session_ms=2000, start=False, node_extra=node_extra)
    pki = FastPKI(c.root)
    c.pki = pki
    c.proto = "SASL_SSL"
    c.client = {"security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512",
                "sasl.username": "alice", "sasl.password": ALICE_PW, "ssl.ca.location": pki.ca}
    c.extra.update({
        "replica.lag.time.max.ms": "1500",
        "sasl.enabled.mechanisms": "SCRAM-SHA-512",
        "inter.broker.listener.name": "SASL_SSL",
        "sasl.mechanism.inter.broker.protocol": "SCRAM-SHA-512",
        JAAS_KEY: JAAS % ("broker", BROKER_PW),
        "ssl.keystore.location": pki.server[2],
        "ssl.truststore.location": pki.ca,
    })
    c.extra.update(extra or {})
    for n in c.nodes.values():
        if n.extra.get("ssl.truststore.location") == "rogue":
            n.extra["ssl.truststore.location"] = pki.rogue_ca
        n.write_props()
        add_user(n, "broker", BROKER_PW)
        add_user(n, "alice", ALICE_PW)
        for u, pw in (users or {}).get(n.id, []):
            add_user(n, u, pw)
    c.start()
    c.wait_registered()
    return c


def isr_of(c, topic, nparts):
    return [sorted(c.pstate(topic, p)["isr"]) for p in range(nparts)]


def wait_isr(c, topic, nparts, want, msg, timeout=60):
    """Until want(partition, state) holds for every partition."""
    def ok():
        sts = [c.pstate(topic, p) for p in range(nparts)]
        return sts if all(s and s["leader"] >= 0 and want(p, s) for p, s in enumerate(sts)) \
            else None
    return wait_until(ok, timeout, msg)


# ------------------------------------------------------------------ scenarios


def t_sec_sasl_ssl():
    # SASL sessions of 2 s (connections.max.reauth.ms): the fetchers log in
    # again before theirs end, so no leader closes an expired one
    with sasl_cluster(extra={"connections.max.reauth.ms": "2000"}) as c:
        for n in c.nodes.values():
            reg = c.etcd.get("brokers/%d" % n.id)[0]
            check([(e["name"], e["security_protocol"], e["port"]) for e in reg["listeners"]] ==
                  [("SASL_SSL", "SASL_SSL", n.port)], "brokers/%d: %s" % (n.id, reg))
        c.create_topic(TOPIC, partitions=2, rf=3, config={"min.insync.replicas": "2"})
        wait_isr(c, TOPIC, 2, lambda p, s: len(s["isr"]) == 3, "a full ISR")
        w = AckedWrites(c.bootstrap, TOPIC, client=c.client)
        w.produce(300)
        check(len(w.acked) == 300 and not w.failed,
              "acks=all: %d acked, failed %s" % (len(w.acked), list(w.failed.items())[:2]))
        time.sleep(2.5)  # past replica.lag.time.max.ms: a follower not fetching would leave
        check(all(len(i) == 3 for i in isr_of(c, TOPIC, 2)),
              "the ISR shrank while followers fetch over SASL_SSL: %s" % isr_of(c, TOPIC, 2))
        for n in c.nodes.values():
            check("cannot fetch from broker" not in n.log(),
                  "broker %d could not fetch:\n%s" % (n.id, n.log()[-2000:]))
            # the fetchers' requests (librdkafka 2.0.2, the test's client, does not
            # re-authenticate: its Produce and Metadata connections do get closed)
            for api in ("Fetch", "OffsetForLeaderEpoch"):
                check("%s SASL session expired" % api not in n.log(),
                      "broker %d closed an expired fetcher session:\n%s" %
                      (n.id, n.log()[-2000:]))
            check("logging in again" in n.log(), "broker %d's fetchers never renewed a session"
                  % n.id)
            check("inter.broker.listener.name=SASL_SSL: a Kafka setting that does not apply"
                  not in n.log(), "broker %d warns that its inter-broker listener is ignored"
                  % n.id)
        # a leader SIGKILLed: the other two go on (acks=all, min.insync.replicas=2)
        victim = c.leader_of(TOPIC, 0)
        victim.kill9()
        wait_isr(c, TOPIC, 2, lambda p, s: s["leader"] != victim.id and
                 victim.id not in s["isr"], "leaders and ISRs without broker %d" % victim.id)
        w.produce(200)
        check(len(w.acked) == 500 and not w.failed, "after the kill: %d of 500 acked, failed %s"
              % (len(w.acked), list(w.failed.items())[:2]))
        check(w.verify(bootstrap=c.bootstrap) == 500, "not every record was checked")
        victim.start()
        wait_isr(c, TOPIC, 2, lambda p, s: len(s["isr"]) == 3,
                 "broker %d back in every ISR over SASL_SSL" % victim.id)


def kafka_str(b, pos, compact):
    if compact:
        n, pos = uvarint(b, pos)
        if n == 0:
            return None, pos
        return b[pos:pos + n - 1].decode(), pos + n - 1
    (n,) = struct.unpack_from(">h", b, pos)
    pos += 2
    if n < 0:
        return None, pos
    return b[pos:pos + n].decode(), pos + n


def uvarint(b, pos):
    v = shift = 0
    while True:
        x = b[pos]
        pos += 1
        v |= (x & 0x7F) << shift
        shift += 7
        if not x & 0x80:
            return v, pos


def open_sock(port, pki=None):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    if pki:
        ctx = ssl.create_default_context(cafile=pki.ca)
        s = ctx.wrap_socket(s, server_hostname="127.0.0.1")
    return s


def describe_cluster(port, pki=None):
    """Raw DescribeCluster v0: (controller id, {broker id: port})."""
    s = open_sock(port, pki)
    try:
        raw_request(s, 60, 0, 7, b"\x00\x00", flexible=True)  # IncludeAuthorizedOps, tags
        r = raw_response(s)
    finally:
        s.close()
    pos = 4
    _, pos = uvarint(r, pos)  # header tags
    pos += 4  # throttle
    (err,) = struct.unpack_from(">h", r, pos)
    pos += 2
    check(err == 0, "DescribeCluster error %d" % err)
    _, pos = kafka_str(r, pos, True)  # message
    _, pos = kafka_str(r, pos, True)  # cluster id
    (ctl,) = struct.unpack_from(">i", r, pos)
    pos += 4
    n, pos = uvarint(r, pos)
    out = {}
    for _ in range(n - 1):
        (bid,) = struct.unpack_from(">i", r, pos)
        pos += 4
        _, pos = kafka_str(r, pos, True)
        (bport,) = struct.unpack_from(">i", r, pos)
        pos += 4
        _, pos = kafka_str(r, pos, True)  # rack
        _, pos = uvarint(r, pos)
        out[bid] = bport
    return ctl, out


def find_coordinator(port, group, pki=None):
    """Raw FindCoordinator v0: (error, node id, port)."""
    s = open_sock(port, pki)
    try:
        raw_request(s, 10, 0, 9, struct.pack(">h", len(group)) + group.encode())
        r = raw_response(s)
    finally:
        s.close()
    err, nid = struct.unpack_from(">hi", r, 4)
    _, pos = kafka_str(r, 10, False)
    (cport,) = struct.unpack_from(">i", r, pos)
    return err, nid, cport


def md_ports(bootstrap, conf=None):
    md = AdminClient(dict({"bootstrap.servers": bootstrap}, **(conf or {}))).list_topics(
        timeout=10)
    return {b.id: b.port for b in md.brokers.values()}


def t_sec_listeners():
    c = Cluster(3, session_ms=2000, start=False)
    with c:
        pki = FastPKI(c.root)
        c.extra.update({"ssl.keystore.location": pki.server[2]})
        ssl_port = {}
        for n in c.nodes.values():
            if n.id == 3:
                continue
            ssl_port[n.id] = free_port()
            n.extra["listeners"] = "PLAINTEXT://127.0.0.1:%d,SSL://127.0.0.1:%d" % (
                n.port, ssl_port[n.id])
        c.start()
        c.wait_registered()
        plain = {n.id: n.port for n in c.nodes.values()}
        reg = c.etcd.get("brokers/1")[0]
        check(sorted((e["name"], e["security_protocol"], e["port"]) for e in reg["listeners"]) ==
              [("PLAINTEXT", "PLAINTEXT", plain[1]), ("SSL", "SSL", ssl_port[1])],
              "brokers/1 registration: %s" % reg)
        check(reg["port"] == plain[1], "the first listener stays in host/port: %s" % reg)
        sconf = {"security.protocol": "SSL", "ssl.ca.location": pki.ca}
        wait_until(lambda: len(md_ports(c.nodes[1].bootstrap)) == 3, 30, "three brokers")
        for n in (1, 2):
            got = md_ports("127.0.0.1:%d" % ssl_port[n], sconf)
            check(got == ssl_port, "Metadata over SSL from broker %d: %s, want %s" %
                  (n, got, ssl_port))
            got = md_ports(c.nodes[n].bootstrap)
            check(got == plain, "Metadata over PLAINTEXT from broker %d: %s, want %s" %
                  (n, got, plain))
            ctl, got = describe_cluster(ssl_port[n], pki)
            check(got == ssl_port, "DescribeCluster over SSL: %s, want %s" % (got, ssl_port))
            check(ctl == c.controller()[0], "DescribeCluster controller %d, etcd %s" %
                  (ctl, c.controller()))
            ctl, got = describe_cluster(c.nodes[n].port)
            check(got == plain, "DescribeCluster over PLAINTEXT: %s, want %s" % (got, plain))
        # FindCoordinator: the coordinator's address on the client's listener
        c.create_topic(TOPIC, partitions=1, rf=1)  # the controller creates __consumer_offsets
        seen = set()
        for i in range(40):
            g = "group-%d" % i
            err, nid, port = wait_until(lambda: (lambda r: r if r[0] == 0 else None)(
                find_coordinator(c.nodes[1].port, g)), 30, "a coordinator for %s" % g)
            check(port == plain[nid], "%s: coordinator %d at %d over PLAINTEXT" % (g, nid, port))
            err, nid2, port = find_coordinator(ssl_port[1], g, pki)
            if nid == 3:
                check(err == 15, "%s: coordinator 3 has no SSL listener, got error %d" % (g, err))
            else:
                check(err == 0 and nid2 == nid and port == ssl_port[nid],
                      "%s over SSL: %d %d %d" % (g, err, nid2, port))
            seen.add(nid)
        check(3 in seen and len(seen) > 1, "the groups hit coordinators %s only" % seen)
        # an older registration (host/port only) serves every listener name
        c.etcd.put("brokers/9", {"id": 9, "host": "127.0.0.1", "port": 19})
        try:
            wait_until(lambda: md_ports(c.nodes[1].bootstrap).get(9) == 19, 30,
                       "the old-format broker 9 in PLAINTEXT Metadata")
            got = md_ports("127.0.0.1:%d" % ssl_port[1], sconf)
            check(got.get(9) == 19, "the old-format broker 9 over SSL: %s" % got)
        finally:
            k = base64.b64encode(c.etcd.key("brokers/9").encode()).decode()
            c.etcd.call("/v3/kv/deleterange", {"key": k})


def t_sec_bad_password():
    good3 = "broker3-right-pw"
    bad = "broker3-leaders-pw"
    with sasl_cluster(node_extra={3: {JAAS_KEY: JAAS % ("broker3", good3)}},
                      users={1: [("broker3", bad)], 2: [("broker3", bad)]}) as c:
        c.create_topic(TOPIC, partitions=3, rf=3, config={"min.insync.replicas": "2"})
        c.wait_leaders(TOPIC, 3)
        # partitions led by 1 or 2 drop broker 3; those it leads keep everyone
        out3 = wait_isr(c, TOPIC, 3, lambda p, s: s["leader"] == 3 or 3 not in s["isr"],
                        "broker 3 out of the ISR of partitions it does not lead", timeout=30)
        led = [p for p, s in enumerate(out3) if s["leader"] != 3]
        check(led, "broker 3 leads every partition: %s" % out3)
        w = AckedWrites(c.bootstrap, TOPIC, client=c.client)
        w.produce(300)
        check(len(w.acked) == 300, "acks=all while broker 3 is out: %d of 300" % len(w.acked))
        time.sleep(2)  # past replica.lag.time.max.ms and several login retries
        sts = [c.pstate(TOPIC, p) for p in led]
        check(all(3 not in s["isr"] for s in sts), "broker 3 joined an ISR: %s" % sts)
        w.verify()
        log3 = c.nodes[3].log()
        check("login as user 'broker3' failed" in log3,
              "broker 3 does not say why it cannot fetch:\n%s" % log3[-3000:])
        check(good3 not in log3 and bad not in log3, "a password is in broker 3's log")
        lines = log3.count("cannot fetch from broker")
        check(1 <= lines <= 4, "%d 'cannot fetch' lines: not rate-limited" % lines)
        check(any("SASL SCRAM-SHA-512 authentication failed for user 'broker3'" in
                  c.nodes[i].log() for i in (1, 2)), "the leaders did not log the failed login")
        for i in (1, 2):
            check(good3 not in c.nodes[i].log(), "a password is in broker %d's log" % i)
        # the leaders learn the right password: the fetchers' retries succeed
        for i in (1, 2):
            add_user(c.nodes[i], "broker3", good3)
        wait_isr(c, TOPIC, 3, lambda p, s: 3 in s["isr"], "broker 3 back in every ISR",
                 timeout=40)
        check("again" in c.nodes[3].log(), "broker 3 did not log its reconnection")


def t_sec_untrusted_ca():
    """Broker 3 trusts another CA than the one that signed the leaders'
    certificates: it never joins the ISR of what they lead, says why, and
    the cluster keeps serving."""
    with sasl_cluster(node_extra={3: {"ssl.truststore.location": "rogue"}}) as c:
        c.create_topic(TOPIC, partitions=3, rf=3, config={"min.insync.replicas": "2"})
        c.wait_leaders(TOPIC, 3)
        sts = wait_isr(c, TOPIC, 3, lambda p, s: s["leader"] == 3 or 3 not in s["isr"],
                       "broker 3 out of the ISR of partitions it does not lead", timeout=30)
        n3 = c.nodes[3]
        check("certificate is not trusted" in n3.log(),
              "broker 3 does not name the untrusted certificate:\n%s" % n3.log()[-3000:])
        w = AckedWrites(c.bootstrap, TOPIC, client=c.client)
        w.produce(100)
        check(len(w.acked) == 100, "acks=all with broker 3 untrusting: %d of 100" % len(w.acked))
        time.sleep(2)  # several connection retries
        led = [p for p, s in enumerate(sts) if s["leader"] != 3]
        check(led and all(3 not in c.pstate(TOPIC, p)["isr"] for p in led),
              "an untrusting broker 3 joined an ISR: %s" % isr_of(c, TOPIC, 3))
        w.verify()


def t_sec_mtls():
    """SSL-only brokers requiring client certificates (ssl.client.auth=required),
    SSL between brokers: the followers present their keystore. Broker 3's
    certificate names another host: with Kafka's default
    ssl.endpoint.identification.algorithm=https the others refuse it (and stay
    out of the ISRs it leads), with it empty they fetch from it."""
    c = Cluster(3, session_ms=2000, start=False)
    with c:
        pki = FastPKI(c.root)
        other = pki.make_cert("elsewhere", "/CN=elsewhere.example", pki.ca, pki.ca_key,
                              serial="1002", san="DNS:elsewhere.example")
        c.proto = "SSL"
        c.client = {"security.protocol": "SSL", "ssl.ca.location": pki.ca,
                    "ssl.certificate.location": pki.server[0],
                    "ssl.key.location": pki.server[1],
                    "ssl.endpoint.identification.algorithm": "none"}
        c.extra.update({"replica.lag.time.max.ms": "1500", "ssl.client.auth": "required",
                        "inter.broker.listener.name": "SSL",
                        "ssl.keystore.location": pki.server[2],
                        "ssl.truststore.location": pki.ca})
        c.nodes[3].extra["ssl.keystore.location"] = other[2]
        c.start()
        c.wait_registered()
        c.create_topic(TOPIC, partitions=3, rf=3, config={"min.insync.replicas": "2"})
        c.wait_leaders(TOPIC, 3)
        sts = wait_isr(c, TOPIC, 3, lambda p, s: s["leader"] != 3 or s["isr"] == [3],
                       "only broker 3 in the ISR of what it leads", timeout=30)
        check(any(s["leader"] == 3 for s in sts) and any(s["leader"] != 3 for s in sts),
              "leaders %s: want some on broker 3 and some elsewhere" % [s["leader"] for s in sts])
        for i in (1, 2):
            check("certificate is not trusted" in c.nodes[i].log() and
                  "subjectAltName" in c.nodes[i].log(),
                  "broker %d does not name the host mismatch:\n%s" % (i, c.nodes[i].log()[-2000:]))
        w = AckedWrites(c.bootstrap, TOPIC, client=c.client)
        w.produce(100, partition=[p for p, s in enumerate(sts) if s["leader"] != 3][0])
        check(len(w.acked) == 100, "acks=all over mTLS: %d of 100" % len(w.acked))
        time.sleep(2)  # past replica.lag.time.max.ms: the mTLS followers keep fetching
        for p, s in enumerate(sts):
            if s["leader"] != 3:
                check(len(c.pstate(TOPIC, p)["isr"]) == 3, "p%d ISR %s" %
                      (p, c.pstate(TOPIC, p)["isr"]))
        for i in (1, 2):
            n = c.nodes[i]
            n.extra["ssl.endpoint.identification.algorithm"] = ""
            n.restart()
        wait_isr(c, TOPIC, 3, lambda p, s: len(s["isr"]) == 3,
                 "a full ISR once the host check is off")
        w.verify()


def t_sec_config_errors():
    """Inter-broker settings that cannot work refuse to start, naming the
    setting; a password from the JAAS line is never printed."""
    root = tempfile.mkdtemp(prefix="tierstore-sec-cfg-")
    try:
        def start(props):
            path = os.path.join(root, "s.properties")
            base = {"node.id": "1", "metadata.store.url": "etcd://127.0.0.1:%d" % free_port(),
                    "metadata.store.timeout.ms": "1000", "log.dirs": os.path.join(root, "d"),
                    "plugin.path": os.environ["TSPLUGIN"],
                    "remote.storage.url": "file://" + os.path.join(root, "b")}
            base.update(props)
            with open(path, "w") as f:
                f.write("".join("%s=%s\n" % kv for kv in base.items()))
            r = subprocess.run([os.environ["TIERBROKER"], path], capture_output=True, timeout=60)
            return r.returncode, r.stderr.decode(errors="replace")

        sasl = {"listeners": "SASL_PLAINTEXT://127.0.0.1:%d" % free_port(),
                "sasl.enabled.mechanisms": "SCRAM-SHA-512",
                "inter.broker.listener.name": "SASL_PLAINTEXT"}
        cases = [
            ({"listeners": "PLAINTEXT://127.0.0.1:%d" % free_port(),
              "inter.broker.listener.name": "INTERNAL"},
             "inter.broker.listener.name=INTERNAL: no listener has that name"),
            ({"listeners": "PLAINTEXT://127.0.0.1:%d" % free_port(),
              "inter.broker.listener.name": "PLAINTEXT",
              "security.inter.broker.protocol": "PLAINTEXT"}, "set only one of"),
            ({"listeners": "SSL_IN://127.0.0.1:%d" % free_port(),
              "listener.security.protocol.map": "SSL_IN:PLAINTEXT"},
             "inter.broker.listener.name (unset, so PLAINTEXT)=PLAINTEXT"),
            (sasl, "sasl.mechanism.inter.broker.protocol=GSSAPI is not supported"),
            (dict(sasl, **{"sasl.mechanism.inter.broker.protocol": "SCRAM-SHA-512"}),
             "set listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config="),
            (dict(sasl, **{"sasl.mechanism.inter.broker.protocol": "SCRAM-SHA-512",
                           "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config":
                           'x required password="hunter2-secret";'}),
             'needs username="..." and password="..."'),
        ]
        for props, want in cases:
            rc, err = start(props)
            check(rc != 0 and want in err, "%s: rc %d, want %r in:\n%s" % (props, rc, want, err))
            check("hunter2-secret" not in err, "the password was printed")
    finally:
        shutil.rmtree(root, ignore_errors=True)


TESTS = {
    "sec_sasl_ssl": (t_sec_sasl_ssl, ["TSPLUGIN", "TIERCTL"]),
    "sec_listeners": (t_sec_listeners, ["TSPLUGIN"]),
    "sec_bad_password": (t_sec_bad_password, ["TSPLUGIN", "TIERCTL"]),
    "sec_untrusted_ca": (t_sec_untrusted_ca, ["TSPLUGIN", "TIERCTL"]),
    "sec_config_errors": (t_sec_config_errors, ["TSPLUGIN"]),
    "sec_mtls": (t_sec_mtls, ["TSPLUGIN"]),
}

if __name__ == "__main__":
    run(TESTS)
