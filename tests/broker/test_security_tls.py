#!/usr/bin/python3
"""test_security_tls.py — issue 11 item 1: TLS on SSL:// listeners, against kcat
(librdkafka) and confluent-kafka. A CA, server and client certificates are made
with the `openssl` CLI at test time (PKI below, shared with the SASL tests).

  tls_kcat_mem         PLAINTEXT and SSL listeners at once: kcat produces and
                       consumes over SSL, Metadata on each listener advertises
                       that listener's port; a plaintext client on the TLS
                       port and a TLS client on the PLAINTEXT port are refused
                       while the broker keeps serving both listeners.
  tls_client_auth_mem  ssl.client.auth=required: kcat and confluent-kafka with
                       a client certificate produce and consume; no
                       certificate, or one from an untrusted CA, is refused;
                       the principal is the subject mapped by a RULE.
  tls_flood_mem        200 connections on the TLS port that send half a
                       ClientHello or nothing do not stop kcat on the same
                       port; they are closed after ssl.handshake.timeout.ms.
  tls_reload_mem       the keystore file replaced: new connections see the new
                       certificate's serial without a restart.
  tls_config_mem       bad TLS settings refuse to start, naming the setting.

Run like test_broker.py: `test_security_tls.py NAME` with TIERBROKER and
MEMPLUGIN set; exits 77 when it cannot run.
"""
import contextlib
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_broker import (MEMPLUGIN, Broker, check, consume_all, free_port,  # noqa: E402
                         kcat, run)
from test_hardening_meta import start_fails  # noqa: E402
import confluent_kafka as ck  # noqa: E402


def openssl(*args):
    r = subprocess.run(["openssl"] + list(args), capture_output=True)
    if r.returncode != 0:
        raise RuntimeError("openssl %s: %s" % (" ".join(args), r.stderr.decode()))


class PKI:
    """A CA, a server certificate for 127.0.0.1/localhost, client
    certificates, and a second (untrusted) CA with its own client."""

    def __init__(self, root):
        self.dir = os.path.join(root, "pki")
        os.makedirs(self.dir, exist_ok=True)
        self.ca, self.ca_key = self.make_ca("ca", "/CN=Test CA")
        self.rogue_ca, self.rogue_key = self.make_ca("rogue", "/CN=Rogue CA")
        self.server = self.make_cert("server", "/CN=localhost/O=Tierstore",
                                     self.ca, self.ca_key, serial="1001", server=True)
        self.client = self.make_cert("client", "/C=DE/O=Tierstore/CN=client1",
                                     self.ca, self.ca_key, serial="2001")
        self.rogue_client = self.make_cert("rogue-client", "/CN=intruder",
                                           self.rogue_ca, self.rogue_key, serial="3001")

    def p(self, name):
        return os.path.join(self.dir, name)

    def make_ca(self, name, subj):
        key, crt = self.p(name + ".key"), self.p(name + ".pem")
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", crt,
                "-days", "2", "-subj", subj)
        return crt, key

    def make_cert(self, name, subj, ca, ca_key, serial, server=False):
        """Returns (cert, key, keystore) where keystore is key + chain in one PEM."""
        key, csr, crt = self.p(name + ".key"), self.p(name + ".csr"), self.p(name + ".pem")
        ext = self.p(name + ".ext")
        with open(ext, "w") as f:
            f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n" if server else
                    "extendedKeyUsage=clientAuth\n")
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
                "-subj", subj)
        openssl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-set_serial", serial,
                "-days", "2", "-out", crt, "-extfile", ext)
        store = self.p(name + ".keystore.pem")
        with open(store, "w") as out:
            for part in (key, crt, ca):
                with open(part) as f:
                    out.write(f.read())
        return crt, key, store

    def reissue_server(self, serial):
        return self.make_cert("server-" + serial, "/CN=localhost/O=Tierstore",
                              self.ca, self.ca_key, serial=serial, server=True)


@contextlib.contextmanager
def temp_pki():
    """(root, PKI) in a temp dir removed afterwards."""
    root = tempfile.mkdtemp(prefix="tierbroker-pki-")
    try:
        yield root, PKI(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def ssl_props(pki, client=None):
    """librdkafka properties for an SSL client (client = (cert, key, _))."""
    props = {"security.protocol": "SSL", "ssl.ca.location": pki.ca}
    if client:
        props["ssl.certificate.location"] = client[0]
        props["ssl.key.location"] = client[1]
    return props


def xargs(props):
    out = []
    for k, v in props.items():
        out += ["-X", "%s=%s" % (k, v)]
    return out


def kcat_roundtrip(bootstrap, topic, props, n=200):
    """kcat produces n lines and reads them back; returns (ok, why)."""
    lines = [b"%s-%05d" % (topic.encode(), i) for i in range(n)]
    rc, _, err = kcat(["-P", "-b", bootstrap, "-t", topic, "-X", "acks=all"] + xargs(props),
                      inp=b"\n".join(lines) + b"\n")
    if rc != 0:
        return False, "kcat -P: %s" % err.decode(errors="replace")[-400:]
    rc, out, err = kcat(["-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-q"]
                        + xargs(props))
    if rc != 0:
        return False, "kcat -C: %s" % err.decode(errors="replace")[-400:]
    got = out.split(b"\n")[:-1]
    if got != lines:
        return False, "kcat -C read %d lines, first %r" % (len(got), got[:2])
    return True, ""


def kcat_refused(bootstrap, props):
    """kcat -L must fail (no metadata within its timeout)."""
    rc, out, err = kcat(["-L", "-b", bootstrap, "-m", "5"] + xargs(props), timeout=60)
    return rc != 0


def kcat_brokers(bootstrap, props):
    """The broker addresses kcat -L lists."""
    rc, out, err = kcat(["-L", "-b", bootstrap, "-m", "10"] + xargs(props))
    check(rc == 0, "kcat -L %s: %s" % (bootstrap, err))
    return [ln.split()[3] for ln in out.decode().splitlines()
            if ln.strip().startswith("broker ") and " at " in ln]


def tls_broker(pki, extra=None, plain=True):
    """A mem-plugin broker with an SSL listener (b.tls_port) and, when
    plain, a PLAINTEXT one (b.port)."""
    b = Broker(MEMPLUGIN)
    b.tls_port = free_port()
    b.wait_ports = [b.tls_port]
    listeners = ["SSL://127.0.0.1:%d" % b.tls_port]
    if plain:
        listeners.insert(0, "PLAINTEXT://127.0.0.1:%d" % b.port)
    else:
        b.port = b.tls_port
    b.extra = {"listeners": ",".join(listeners),
               "ssl.keystore.type": "PEM",
               "ssl.keystore.location": pki.server[2]}
    b.extra.update(extra or {})
    return b


def wait_log(b, needle, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if needle in b.log():
            return True
        time.sleep(0.1)
    return False


def t_tls_kcat_mem():
    with temp_pki() as (root, pki):
        b = tls_broker(pki).start()
        try:
            tb = "127.0.0.1:%d" % b.tls_port
            ok, why = kcat_roundtrip(tb, "tls-topic", ssl_props(pki))
            check(ok, "over SSL: " + why)
            check(kcat_brokers(tb, ssl_props(pki)) == ["127.0.0.1:%d" % b.tls_port],
                  "Metadata on the SSL listener must advertise the SSL port")
            check(kcat_brokers(b.bootstrap, {}) == [b.bootstrap],
                  "Metadata on the PLAINTEXT listener must advertise the PLAINTEXT port")
            # refused: plaintext client on the TLS port, TLS client on the PLAINTEXT port
            check(kcat_refused(tb, {}), "a plaintext client on the TLS port got metadata")
            check(kcat_refused(b.bootstrap, ssl_props(pki)),
                  "a TLS client on the PLAINTEXT port got metadata")
            # a client that does not trust the server's CA refuses it
            check(kcat_refused(tb, {"security.protocol": "SSL",
                                    "ssl.ca.location": pki.rogue_ca}),
                  "a client trusting another CA connected")
            # everyone else is still served, on both listeners
            ok, why = kcat_roundtrip(b.bootstrap, "plain-topic", {})
            check(ok, "PLAINTEXT after the refusals: " + why)
            ok, why = kcat_roundtrip(tb, "tls-topic-2", ssl_props(pki))
            check(ok, "SSL after the refusals: " + why)
            check(b.alive(), "broker died")
        finally:
            b.cleanup()


def t_tls_client_auth_mem():
    with temp_pki() as (root, pki):
        b = tls_broker(pki, {
            "listener.name.ssl.ssl.client.auth": "required",
            "ssl.truststore.location": pki.ca,
            "ssl.principal.mapping.rules":
                "RULE:^CN=intruder$/nobody/,RULE:^CN=([a-z0-9]+),O=([A-Za-z]+),C=DE$/$1@$2/L,"
                "DEFAULT"}).start()
        try:
            tb = "127.0.0.1:%d" % b.tls_port
            ok, why = kcat_roundtrip(tb, "mtls", ssl_props(pki, pki.client))
            check(ok, "kcat with a client certificate: " + why)
            check(wait_log(b, "principal User:client1@tierstore"),
                  "the RULE-mapped principal is not logged:\n" + b.log()[-1500:])
            # confluent-kafka with the same certificate
            conf = {"bootstrap.servers": tb}
            conf.update(ssl_props(pki, pki.client))
            p = ck.Producer(conf)
            for i in range(100):
                p.produce("mtls-ck", b"ck-%03d" % i)
            check(p.flush(60) == 0, "confluent-kafka produce over mTLS did not finish")
            got = consume_all(tb, "mtls-ck", 100, conf=ssl_props(pki, pki.client), timeout=60)
            check(sorted(v for _, _, v in got) == [b"ck-%03d" % i for i in range(100)],
                  "confluent-kafka read %d of 100 over mTLS" % len(got))
            # refused: no certificate, an untrusted one
            check(kcat_refused(tb, ssl_props(pki)), "a client without certificate connected")
            check(kcat_refused(tb, ssl_props(pki, pki.rogue_client)),
                  "a client with an untrusted certificate connected")
            check(wait_log(b, "certificate"), "no log line about the refused certificate")
            ok, why = kcat_roundtrip(tb, "mtls-2", ssl_props(pki, pki.client))
            check(ok, "after the refusals: " + why)
            ok, why = kcat_roundtrip(b.bootstrap, "plain", {})
            check(ok, "PLAINTEXT after the refusals: " + why)
        finally:
            b.cleanup()


def partial_client_hello():
    """The first half of a real TLS ClientHello (python's ssl, memory BIOs)."""
    ctx = ssl.create_default_context()
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = out.read()
    return hello[:len(hello) // 2]


def t_tls_flood_mem():
    with temp_pki() as (root, pki):
        b = tls_broker(pki, {"ssl.handshake.timeout.ms": "3000"}, plain=False).start()
        socks = []
        try:
            half = partial_client_hello()
            for i in range(200):
                s = socket.create_connection(("127.0.0.1", b.tls_port), timeout=10)
                if i % 2 == 0:
                    s.sendall(half)
                socks.append(s)
            tb = "127.0.0.1:%d" % b.tls_port
            ok, why = kcat_roundtrip(tb, "flooded", ssl_props(pki), n=500)
            check(ok, "kcat during the handshake flood: " + why)
            # every stalled handshake is closed by the broker
            deadline = time.time() + 60
            closed = 0
            for s in socks:
                s.settimeout(max(0.1, deadline - time.time()))
                try:
                    if s.recv(1) == b"":
                        closed += 1
                except (socket.timeout, ConnectionResetError):
                    if not isinstance(sys.exc_info()[1], socket.timeout):
                        closed += 1
            check(closed == 200, "%d of 200 stalled handshakes were closed" % closed)
            check(wait_log(b, "ssl.handshake.timeout.ms"), "no log line for the closed handshakes")
            ok, why = kcat_roundtrip(tb, "after-flood", ssl_props(pki))
            check(ok, "kcat after the flood: " + why)
        finally:
            for s in socks:
                s.close()
            b.cleanup()


def server_serial(port, ca):
    ctx = ssl.create_default_context(cafile=ca)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        with ctx.wrap_socket(s, server_hostname="localhost") as t:
            der = t.getpeercert(binary_form=True)
    r = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-serial"], input=der,
                       capture_output=True)
    return r.stdout.decode().strip().split("=")[-1]


def t_tls_reload_mem():
    with temp_pki() as (root, pki):
        store = os.path.join(root, "live-keystore.pem")
        shutil.copy(pki.server[2], store)
        b = tls_broker(pki, {"ssl.keystore.location": store,
                             "ssl.reload.check.ms": "200"}).start()
        try:
            check(server_serial(b.tls_port, pki.ca) == "03E9", "first serial is not 1001 (03E9)")
            new = pki.reissue_server("4242")
            tmp = store + ".tmp"
            shutil.copy(new[2], tmp)
            os.rename(tmp, store)
            deadline, serial = time.time() + 30, None
            while time.time() < deadline:
                serial = server_serial(b.tls_port, pki.ca)
                if serial == "1092":
                    break
                time.sleep(0.2)
            check(serial == "1092", "after replacing the keystore the serial is %s" % serial)
            check(wait_log(b, "certificates reloaded"), "no reload log line")
            # a broken file keeps the old certificate and says so
            with open(store, "w") as f:
                f.write("not a pem\n")
            check(wait_log(b, "reloading certificates failed"), "no log for a broken keystore")
            check(server_serial(b.tls_port, pki.ca) == "1092", "broken keystore replaced the cert")
            ok, why = kcat_roundtrip("127.0.0.1:%d" % b.tls_port, "reloaded", ssl_props(pki))
            check(ok, "kcat after the reload: " + why)
        finally:
            b.cleanup()


def t_tls_config_mem():
    with temp_pki() as (root, pki):
        lst = "SSL://127.0.0.1:%d" % free_port()
        cases = [
            ({"listeners": lst}, "ssl.keystore.location"),
            ({"listeners": lst, "ssl.keystore.location": pki.server[2],
              "ssl.enabled.protocols": "TLSv1.1"}, "ssl.enabled.protocols"),
            ({"listeners": lst, "ssl.keystore.location": pki.server[2],
              "ssl.client.auth": "required"}, "ssl.truststore.location"),
            ({"listeners": lst, "ssl.keystore.location": pki.server[2],
              "ssl.client.auth": "sometimes"}, "ssl.client.auth"),
            ({"listeners": lst, "ssl.keystore.location": pki.server[1]}, "certificate"),
            ({"listeners": lst, "ssl.keystore.type": "JKS",
              "ssl.keystore.location": pki.server[2]}, "ssl.keystore.type"),
        ]
        for extra, needle in cases:
            rc, out = start_fails(extra)
            check(rc not in (None, 0) and needle in out,
                  "%r must refuse to start naming %s: rc %s %r" % (extra, needle, rc, out[-300:]))
        # inline PEM keystore and a TLS 1.3-only listener with Kafka's cipher names work
        with open(pki.server[0]) as f:
            chain = f.read().replace("\n", "\\n")
        with open(pki.server[1]) as f:
            key = f.read().replace("\n", "\\n")
        b = tls_broker(pki, {"ssl.keystore.location": "",
                             "ssl.keystore.certificate.chain": chain,
                             "ssl.keystore.key": key,
                             "ssl.enabled.protocols": "TLSv1.2",
                             "ssl.cipher.suites": "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"})
        b.start()
        try:
            ok, why = kcat_roundtrip("127.0.0.1:%d" % b.tls_port, "inline", ssl_props(pki))
            check(ok, "inline PEM keystore: " + why)
            ctx = ssl.create_default_context(cafile=pki.ca)
            with socket.create_connection(("127.0.0.1", b.tls_port), timeout=10) as s:
                with ctx.wrap_socket(s, server_hostname="localhost") as t:
                    check(t.version() == "TLSv1.2", "negotiated %s" % t.version())
                    check(t.cipher()[0] == "ECDHE-RSA-AES256-GCM-SHA384",
                          "negotiated %s" % (t.cipher(),))
        finally:
            b.cleanup()


TESTS = {
    "tls_kcat_mem": (t_tls_kcat_mem, ["MEMPLUGIN"]),
    "tls_client_auth_mem": (t_tls_client_auth_mem, ["MEMPLUGIN"]),
    "tls_flood_mem": (t_tls_flood_mem, ["MEMPLUGIN"]),
    "tls_reload_mem": (t_tls_reload_mem, ["MEMPLUGIN"]),
    "tls_config_mem": (t_tls_config_mem, ["MEMPLUGIN"]),
}

if __name__ == "__main__":
    run(TESTS)
