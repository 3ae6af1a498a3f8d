#!/usr/bin/python3
"""test_security_sasl.py — issue 11 item 2: SASL on SASL_SSL:// and
SASL_PLAINTEXT:// listeners against kcat (librdkafka 2.0.2) and
confluent-kafka, users made with `tierctl users` (password on stdin) and
with Kafka's AlterUserScramCredentials.

  sasl_ssl_mem          SASL_SSL next to PLAINTEXT: kcat and confluent-kafka
                        produce and consume with SCRAM-SHA-512 and with PLAIN;
                        a wrong password and an unknown user are refused and
                        logged with the peer address; everyone else is served.
  sasl_plaintext_mem    SASL_PLAINTEXT with SCRAM-SHA-256: kcat and
                        confluent-kafka round trips; a request before
                        authentication closes the connection; an unsupported
                        mechanism is answered UNSUPPORTED_SASL_MECHANISM; a
                        client-final nonce repeating the client part (as
                        librdkafka 2.0.2 sends it) is accepted, one not ending
                        with the server's part refused; a PLAIN check
                        pipelined behind another is ILLEGAL_SASL_STATE.
  sasl_users_mem        tierctl users add (stdin) then login works, delete then
                        it fails, without a restart; the file is 0600 and holds
                        no password.
  sasl_reauth_mem       connections.max.reauth.ms: SaslAuthenticate answers the
                        session lifetime; a connection past it is closed at its
                        next request (a raw SCRAM client in python).
  sasl_alter_mem        AlterUserScramCredentials upserts a user kcat then logs
                        in as, DescribeUserScramCredentials lists it, deletion
                        locks it out; super.users restricts both.

Run like test_broker.py with TIERBROKER, MEMPLUGIN and TIERCTL set.
"""
import base64
import hashlib
import hmac
import os
import socket
import stat
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_broker import (MEMPLUGIN, TIERCTL, Broker, check, consume_all, free_port,  # noqa: E402
                         raw_request, raw_response, run)
from test_security_tls import kcat_refused, kcat_roundtrip, temp_pki, wait_log  # noqa: E402
import confluent_kafka as ck  # noqa: E402

MECHS = "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512"


def sasl_broker(proto, extra=None, pki=None):
    """A mem-plugin broker with a PLAINTEXT listener (b.port) and a `proto`
    one (b.sasl_port)."""
    b = Broker(MEMPLUGIN)
    b.sasl_port = free_port()
    b.wait_ports = [b.sasl_port]
    b.extra = {"listeners": "PLAINTEXT://127.0.0.1:%d,%s://127.0.0.1:%d"
                            % (b.port, proto, b.sasl_port),
               "sasl.enabled.mechanisms": MECHS}
    if pki:
        b.extra["ssl.keystore.location"] = pki.server[2]
    b.extra.update(extra or {})
    return b


def tierctl_users(b, *args, password=None):
    r = subprocess.run([TIERCTL, "-c", b.props, "users"] + list(args), capture_output=True,
                       input=(password + "\n").encode() if password is not None else b"",
                       timeout=60)
    return r.returncode, (r.stdout + r.stderr).decode(errors="replace")


def add_user(b, name, password, mech=None):
    args = ["add", name] + (["--mechanism", mech] if mech else [])
    rc, out = tierctl_users(b, *args, password=password)
    check(rc == 0, "tierctl users add %s: %s" % (name, out))


def sasl_props(proto, mech, user, password, pki=None):
    p = {"security.protocol": proto, "sasl.mechanism": mech,
         "sasl.username": user, "sasl.password": password}
    if pki:
        p["ssl.ca.location"] = pki.ca
    return p


def wait_login(bootstrap, props, want_ok, timeout=30):
    """kcat -L until it succeeds (want_ok) or fails; a running broker takes
    user changes within about a second."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if kcat_refused(bootstrap, props) != want_ok:
            return True
        time.sleep(0.5)
    return False


def t_sasl_ssl_mem():
    with temp_pki() as (root, pki):
        b = sasl_broker("SASL_SSL", pki=pki)
        b.start()
        try:
            add_user(b, "alice", "alice-secret")
            sb = "127.0.0.1:%d" % b.sasl_port
            time.sleep(1.5)  # the broker re-reads the users file once a second
            for mech in ("SCRAM-SHA-512", "PLAIN"):
                props = sasl_props("SASL_SSL", mech, "alice", "alice-secret", pki)
                ok, why = kcat_roundtrip(sb, "t-" + mech.lower(), props)
                check(ok, "kcat over SASL_SSL with %s: %s" % (mech, why))
                conf = {"bootstrap.servers": sb}
                conf.update(props)
                p = ck.Producer(conf)
                for i in range(50):
                    p.produce("ck-" + mech.lower(), b"m-%02d" % i)
                check(p.flush(60) == 0, "confluent-kafka %s produce did not finish" % mech)
                got = consume_all(sb, "ck-" + mech.lower(), 50, conf=props, timeout=60)
                check(sorted(v for _, _, v in got) == [b"m-%02d" % i for i in range(50)],
                      "confluent-kafka %s read %d of 50" % (mech, len(got)))
            # refused: wrong password (both mechanisms), unknown user
            for mech in ("SCRAM-SHA-512", "PLAIN"):
                check(kcat_refused(sb, sasl_props("SASL_SSL", mech, "alice", "wrong", pki)),
                      "%s with a wrong password got in" % mech)
                check(kcat_refused(sb, sasl_props("SASL_SSL", mech, "mallory", "x", pki)),
                      "%s with an unknown user got in" % mech)
            log = b.log()
            check("127.0.0.1:" in log and "authentication failed for user 'mallory'" in log
                  and "authentication failed for user 'alice'" in log,
                  "failed logins are not logged with the peer:\n" + log[-1500:])
            check("wrong" not in log and "alice-secret" not in log, "a password was logged")
            ok, why = kcat_roundtrip(b.bootstrap, "plain-after", {})
            check(ok, "PLAINTEXT listener after the refusals: " + why)
            ok, why = kcat_roundtrip(sb, "sasl-after",
                                     sasl_props("SASL_SSL", "SCRAM-SHA-512", "alice",
                                                "alice-secret", pki))
            check(ok, "SASL_SSL after the refusals: " + why)
        finally:
            b.cleanup()


def handshake(sock, mech, corr=1, version=1):
    raw_request(sock, 17, version, corr, struct.pack(">h", len(mech)) + mech.encode())
    r = raw_response(sock)
    check(r is not None, "no SaslHandshake response")
    (err,) = struct.unpack(">h", r[4:6])
    return err


def authenticate(sock, token, corr):
    """SaslAuthenticate v1: (error, message, bytes, session_lifetime_ms)."""
    raw_request(sock, 36, 1, corr, struct.pack(">i", len(token)) + token)
    r = raw_response(sock)
    if r is None:
        return None
    pos = 4
    (err, mlen) = struct.unpack(">hh", r[pos:pos + 4])
    pos += 4
    msg = r[pos:pos + mlen].decode() if mlen >= 0 else None
    pos += max(mlen, 0)
    (blen,) = struct.unpack(">i", r[pos:pos + 4])
    pos += 4
    data = r[pos:pos + blen]
    pos += blen
    (life,) = struct.unpack(">q", r[pos:pos + 8])
    return err, msg, data, life


def scram_login(sock, user, password, algo="sha512", nonce=None):
    """A SCRAM client (RFC 5802) over raw SaslHandshake/SaslAuthenticate v1.
    nonce(client_nonce, server_nonce) gives the client-final's r= (default:
    the server's, as the RFC says). Returns the final SaslAuthenticate answer."""
    mech = "SCRAM-SHA-512" if algo == "sha512" else "SCRAM-SHA-256"
    check(handshake(sock, mech) == 0, "SaslHandshake %s refused" % mech)
    cnonce = base64.b64encode(os.urandom(18)).decode()
    bare = "n=%s,r=%s" % (user, cnonce)
    err, msg, first, _ = authenticate(sock, ("n,," + bare).encode(), 2)
    check(err == 0, "client-first refused: %s" % msg)
    attrs = dict(kv.split("=", 1) for kv in first.decode().split(","))
    salted = hashlib.pbkdf2_hmac(algo, password.encode(), base64.b64decode(attrs["s"]),
                                 int(attrs["i"]))
    ck_ = hmac.new(salted, b"Client Key", algo).digest()
    stored = hashlib.new(algo, ck_).digest()
    without = "c=biws,r=%s" % (nonce(cnonce, attrs["r"]) if nonce else attrs["r"])
    auth = ("%s,%s,%s" % (bare, first.decode(), without)).encode()
    sig = hmac.new(stored, auth, algo).digest()
    proof = bytes(a ^ b for a, b in zip(ck_, sig))
    final = "%s,p=%s" % (without, base64.b64encode(proof).decode())
    return authenticate(sock, final.encode(), 3)


def metadata_ok(sock, corr):
    """Metadata v1 for no topics; False when the connection was closed."""
    try:
        raw_request(sock, 3, 1, corr, struct.pack(">i", 0))
        return raw_response(sock) is not None
    except OSError:
        return False


def t_sasl_plaintext_mem():
    b = sasl_broker("SASL_PLAINTEXT")
    b.start()
    try:
        add_user(b, "bob", "bob-secret", mech="SCRAM-SHA-256")
        time.sleep(1.5)
        sb = "127.0.0.1:%d" % b.sasl_port
        props = sasl_props("SASL_PLAINTEXT", "SCRAM-SHA-256", "bob", "bob-secret")
        ok, why = kcat_roundtrip(sb, "scram256", props)
        check(ok, "kcat SASL_PLAINTEXT SCRAM-SHA-256: " + why)
        check(kcat_refused(sb, sasl_props("SASL_PLAINTEXT", "SCRAM-SHA-512", "bob",
                                          "bob-secret")),
              "bob has no SCRAM-SHA-512 credential but got in with it")
        check(kcat_refused(sb, {}), "a client without SASL got metadata on the SASL port")
        # a request before authentication closes the connection
        with socket.create_connection(("127.0.0.1", b.sasl_port), timeout=10) as s:
            check(not metadata_ok(s, 1), "Metadata before SaslAuthenticate was answered")
        check(wait_log(b, "request before SASL authentication"), "no log line for it")
        # an unsupported mechanism: UNSUPPORTED_SASL_MECHANISM (33), then closed
        with socket.create_connection(("127.0.0.1", b.sasl_port), timeout=10) as s:
            check(handshake(s, "GSSAPI") == 33, "GSSAPI not answered 33")
        # a raw SCRAM-SHA-256 login, then Metadata is served on that connection
        with socket.create_connection(("127.0.0.1", b.sasl_port), timeout=10) as s:
            err, msg, data, life = scram_login(s, "bob", "bob-secret", "sha256")
            check(err == 0 and data.startswith(b"v="), "raw SCRAM login: %s %s" % (err, msg))
            check(metadata_ok(s, 9), "Metadata after login not answered")
        # Kafka's nonce rule: a client-final nonce that repeats the client part
        # (librdkafka 2.0.2) ends with the server's and is accepted; one that
        # does not end with it is refused
        with socket.create_connection(("127.0.0.1", b.sasl_port), timeout=10) as s:
            err, msg, _, _ = scram_login(s, "bob", "bob-secret", "sha256",
                                         nonce=lambda c, srv: c + srv)
            check(err == 0, "repeated client nonce refused: %s" % msg)
        with socket.create_connection(("127.0.0.1", b.sasl_port), timeout=10) as s:
            err, msg, _, _ = scram_login(s, "bob", "bob-secret", "sha256",
                                         nonce=lambda c, srv: srv + "x")
            check(err == 58, "a nonce not ending with the server's was answered %d" % err)
        # PLAIN checks run one at a time per connection: a second
        # SaslAuthenticate pipelined behind the first is ILLEGAL_SASL_STATE (34)
        # and the connection closes after both answers
        add_user(b, "pat", "pat-secret")
        time.sleep(1.5)
        with socket.create_connection(("127.0.0.1", b.sasl_port), timeout=10) as s:
            check(handshake(s, "PLAIN") == 0, "SaslHandshake PLAIN")
            tok = b"\0pat\0pat-secret"
            raw_request(s, 36, 1, 2, struct.pack(">i", len(tok)) + tok)
            raw_request(s, 36, 1, 3, struct.pack(">i", len(tok)) + tok)
            r1, r2 = raw_response(s), raw_response(s)
            check(r1 is not None and struct.unpack(">ih", r1[:6]) == (2, 0),
                  "the first PLAIN check: %r" % (r1[:8] if r1 else r1,))
            check(r2 is not None and struct.unpack(">ih", r2[:6]) == (3, 34),
                  "the pipelined second: %r" % (r2[:8] if r2 else r2,))
            check(raw_response(s) is None, "the connection stayed open")
        # confluent-kafka over SASL_PLAINTEXT with SCRAM-SHA-256
        conf = {"bootstrap.servers": sb}
        conf.update(props)
        p = ck.Producer(conf)
        for i in range(50):
            p.produce("ck-scram256", b"s-%02d" % i)
        check(p.flush(60) == 0, "confluent-kafka SCRAM-SHA-256 produce did not finish")
        got = consume_all(sb, "ck-scram256", 50, conf=props, timeout=60)
        check(sorted(v for _, _, v in got) == [b"s-%02d" % i for i in range(50)],
              "confluent-kafka SCRAM-SHA-256 read %d of 50" % len(got))
        ok, why = kcat_roundtrip(b.bootstrap, "plain", {})
        check(ok, "PLAINTEXT listener: " + why)
    finally:
        b.cleanup()


def t_sasl_users_mem():
    b = sasl_broker("SASL_PLAINTEXT")
    b.start()
    try:
        sb = "127.0.0.1:%d" % b.sasl_port
        props = sasl_props("SASL_PLAINTEXT", "SCRAM-SHA-512", "dave", "pa ss,w=rd")
        check(kcat_refused(sb, props), "dave got in before being added")
        rc, out = tierctl_users(b, "add", "dave", "--iterations", "100", password="x")
        check(rc != 0 and "iterations" in out, "--iterations 100 accepted: %s" % out)
        rc, out = tierctl_users(b, "add", "dave", password="")
        check(rc != 0, "an empty password was accepted: %s" % out)
        add_user(b, "dave", "pa ss,w=rd")
        check(wait_login(sb, props, True), "dave cannot log in after tierctl users add")
        path = os.path.join(b.root, "data", ".broker", "users")
        st = os.stat(path)
        check(stat.S_IMODE(st.st_mode) == 0o600, "users file mode %o" % stat.S_IMODE(st.st_mode))
        with open(path) as f:
            text = f.read()
        check("pa ss" not in text and "SCRAM-SHA-512 64617665 8192 " in text,
              "users file content: %r" % text)
        rc, out = tierctl_users(b, "list")
        check(rc == 0 and "dave\tSCRAM-SHA-512\t8192" in out, "tierctl users list: %r" % out)
        rc, out = tierctl_users(b, "delete", "dave")
        check(rc == 0, "tierctl users delete: %s" % out)
        check(wait_login(sb, props, False), "dave still logs in after tierctl users delete")
        rc, out = tierctl_users(b, "delete", "dave")
        check(rc != 0, "deleting a missing user succeeded")
    finally:
        b.cleanup()


def t_sasl_reauth_mem():
    b = sasl_broker("SASL_PLAINTEXT", {"connections.max.reauth.ms": "3000"})
    b.start()
    try:
        add_user(b, "erin", "erin-secret")
        time.sleep(1.5)
        with socket.create_connection(("127.0.0.1", b.sasl_port), timeout=10) as s:
            err, msg, data, life = scram_login(s, "erin", "erin-secret")
            check(err == 0, "login: %s" % msg)
            check(life == 3000, "session_lifetime_ms %d, want 3000" % life)
            check(metadata_ok(s, 4), "Metadata within the session not answered")
            time.sleep(3.5)
            check(not metadata_ok(s, 5), "Metadata after the session expired was answered")
        check(wait_log(b, "connections.max.reauth.ms"), "no log line for the expired session")
        # re-authenticating on the same connection within the lifetime keeps it
        with socket.create_connection(("127.0.0.1", b.sasl_port), timeout=10) as s:
            check(scram_login(s, "erin", "erin-secret")[0] == 0, "first login")
            time.sleep(2)
            check(scram_login(s, "erin", "erin-secret")[0] == 0, "re-authentication")
            time.sleep(2)
            check(metadata_ok(s, 7), "Metadata after re-authentication not answered")
        # a wrong password: SASL_AUTHENTICATION_FAILED (58) and the connection closes
        with socket.create_connection(("127.0.0.1", b.sasl_port), timeout=10) as s:
            err, msg, _, _ = scram_login(s, "erin", "nope")
            check(err == 58, "wrong password answered %d" % err)
            check(not metadata_ok(s, 8), "connection still open after a failed login")
    finally:
        b.cleanup()


def cstr(s):
    b = s.encode()
    return bytes([len(b) + 1]) + b


def cbytes(b):
    return bytes([len(b) + 1]) + b


def alter(sock, corr, deletions=(), upsertions=()):
    """AlterUserScramCredentials v0 (flexible): [(name, mech)],
    [(name, mech, iterations, salt, salted)] -> [(user, error)]."""
    body = bytes([len(deletions) + 1])
    for name, mech in deletions:
        body += cstr(name) + struct.pack(">b", mech) + b"\x00"
    body += bytes([len(upsertions) + 1])
    for name, mech, it, salt, salted in upsertions:
        body += cstr(name) + struct.pack(">bi", mech, it) + cbytes(salt) + cbytes(salted) + b"\x00"
    body += b"\x00"
    raw_request(sock, 51, 0, corr, body, flexible=True)
    r = raw_response(sock)
    pos = 4 + 1 + 4  # correlation id, header tags, throttle
    n = r[pos] - 1
    pos += 1
    out = []
    for _ in range(n):
        ln = r[pos] - 1
        user = r[pos + 1:pos + 1 + ln].decode()
        pos += 1 + ln
        (err,) = struct.unpack(">h", r[pos:pos + 2])
        pos += 2
        ml = r[pos] - 1
        pos += 1 + max(ml, 0) + 1  # message, tags
        out.append((user, err))
    return out


def describe(sock, corr):
    """DescribeUserScramCredentials v0, all users -> (error, {user: [(mech, it)]})."""
    raw_request(sock, 50, 0, corr, b"\x00\x00", flexible=True)
    r = raw_response(sock)
    pos = 4 + 1 + 4
    (err,) = struct.unpack(">h", r[pos:pos + 2])
    pos += 2
    ml = r[pos] - 1
    pos += 1 + max(ml, 0)
    n = r[pos] - 1
    pos += 1
    users = {}
    for _ in range(max(n, 0)):
        ln = r[pos] - 1
        user = r[pos + 1:pos + 1 + ln].decode()
        pos += 1 + ln + 2
        ml = r[pos] - 1
        pos += 1 + max(ml, 0)
        nc = r[pos] - 1
        pos += 1
        creds = []
        for _ in range(nc):
            mech, it = struct.unpack(">bi", r[pos:pos + 5])
            pos += 6
            creds.append((mech, it))
        pos += 1
        users[user] = creds
    return err, users


def t_sasl_alter_mem():
    b = sasl_broker("SASL_PLAINTEXT", {"super.users": "User:admin"})
    b.start()
    try:
        add_user(b, "admin", "admin-secret")
        add_user(b, "other", "other-secret")
        time.sleep(1.5)
        salt = os.urandom(16)
        salted = hashlib.pbkdf2_hmac("sha512", b"carol-secret", salt, 4096)
        sb = "127.0.0.1:%d" % b.sasl_port
        carol = sasl_props("SASL_PLAINTEXT", "SCRAM-SHA-512", "carol", "carol-secret")
        with socket.create_connection(("127.0.0.1", b.sasl_port), timeout=10) as s:
            check(scram_login(s, "other", "other-secret")[0] == 0, "login as other")
            res = alter(s, 10, upsertions=[("carol", 2, 4096, salt, salted)])
            check(res == [("carol", 31)], "a non-super user altered credentials: %r" % res)
            check(describe(s, 11)[0] == 31, "a non-super user described credentials")
        with socket.create_connection(("127.0.0.1", b.sasl_port), timeout=10) as s:
            check(scram_login(s, "admin", "admin-secret")[0] == 0, "login as admin")
            res = alter(s, 10, upsertions=[("carol", 2, 4096, salt, salted),
                                           ("weak", 2, 100, salt, salted)])
            check(res == [("carol", 0), ("weak", 93)], "upsert: %r" % res)
            err, users = describe(s, 11)
            check(err == 0 and users.get("carol") == [(2, 4096)] and "weak" not in users,
                  "describe: %r" % (users,))
            ok, why = kcat_roundtrip(sb, "carol-topic", carol)
            check(ok, "kcat as carol after AlterUserScramCredentials: " + why)
            res = alter(s, 12, deletions=[("carol", 2), ("nobody", 2)])
            check(res == [("carol", 0), ("nobody", 91)], "delete: %r" % res)
        check(kcat_refused(sb, carol), "carol still logs in after the deletion")
        # the change is in the file: it survives a restart
        b.stop()
        b.start()
        time.sleep(0.5)
        ok, why = kcat_roundtrip(sb, "admin-topic",
                                 sasl_props("SASL_PLAINTEXT", "SCRAM-SHA-512", "admin",
                                            "admin-secret"))
        check(ok, "admin after a restart: " + why)
        check(kcat_refused(sb, carol), "carol came back after a restart")
    finally:
        b.cleanup()


TESTS = {
    "sasl_ssl_mem": (t_sasl_ssl_mem, ["MEMPLUGIN", "TIERCTL"]),
    "sasl_plaintext_mem": (t_sasl_plaintext_mem, ["MEMPLUGIN", "TIERCTL"]),
    "sasl_users_mem": (t_sasl_users_mem, ["MEMPLUGIN", "TIERCTL"]),
    "sasl_reauth_mem": (t_sasl_reauth_mem, ["MEMPLUGIN", "TIERCTL"]),
    "sasl_alter_mem": (t_sasl_alter_mem, ["MEMPLUGIN", "TIERCTL"]),
}

if __name__ == "__main__":
    run(TESTS)
