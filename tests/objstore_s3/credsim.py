#!/usr/bin/python3
"""credsim.py - a local simulator of the AWS credential services, for tests.

TEST DOUBLE: no real EC2 instance metadata service or STS exists on this
machine, so this stands in for both, following their documented protocols:

  IMDSv2   PUT  /latest/api/token  (X-aws-ec2-metadata-token-ttl-seconds: 1..21600)
           GET  /latest/meta-data/iam/security-credentials/[ROLE]
                with X-aws-ec2-metadata-token; a GET without it (IMDSv1) or
                with an unknown/lapsed token gets 401, as on an instance
                with "HttpTokens: required".
  STS      POST / Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=
                &RoleSessionName=&WebIdentityToken= (form-encoded, unsigned);
                answers the AssumeRoleWithWebIdentityResponse XML, or an
                ErrorResponse (AccessDenied when the role differs from the
                one configured).
  S3       any other request: a minimal S3 stand-in that only checks the
           credentials a request carries (the access key id in
           Authorization, x-amz-security-token) against the keys it handed
           out and their expiry; 200 when they are current, 400 ExpiredToken
           or 403 InvalidAccessKeyId otherwise. It does not store objects and
           does not verify signatures (RGW tests do that).

Every credential answer is a new key set that expires LIFETIME seconds
later (Expiration rounded up to the second, as AWS writes it).

Control, on the same port:
  GET /__sim__/set?k=v&...   lifetime=S  role=NAME ("" = no role: 404)
                             role_arn=ARN  fail=N (next N credential fetches
                             answer 500; -1 = all)  drop=N (close without an
                             answer)  delay_ms=MS (credential fetches)
                             sts_error=CODE:STATUS  token_ttl=S (cap of IMDS
                             session tokens)  static=ID:SECRET (IMDS hands out
                             this pair with an empty Token)  revoke=1 (every
                             key handed out so far is rejected by S3)
  GET /__sim__/stats         one "name value" per line
Prints "PORT <n>" on stdout once listening. Standard library only.
"""
import http.server
import math
import re
import socketserver
import sys
import threading
import time
import urllib.parse

LOCK = threading.Lock()
CONF = {"lifetime": 3600.0, "role": "tierstore-role", "role_arn": "arn:aws:iam::123456789012:role/tierstore",
        "fail": 0, "drop": 0, "delay_ms": 0, "sts_error": "", "token_ttl": 21600, "static": ""}
STATS = {"token_puts": 0, "v1_rejected": 0, "bad_token": 0, "imds_creds": 0, "sts_calls": 0,
         "faults": 0, "in_flight": 0, "max_in_flight": 0, "s3_ok": 0, "s3_expired": 0,
         "s3_unknown": 0, "s3_no_token": 0}
TOKENS = {}  # IMDS session token -> monotonic expiry
KEYS = {}    # access key id -> (session token, wall expiry, revoked)
LAST = {"web_token": "", "session_name": "", "keys": 0}


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def new_keys():
    with LOCK:
        LAST["keys"] += 1
        n = LAST["keys"]
        exp = math.ceil(time.time() + CONF["lifetime"])
        if CONF["static"]:
            kid, secret = CONF["static"].split(":", 1)
            return kid, secret, "", exp
        kid = "ASIASIM%013d" % n
        tok = "simtoken-%d-%s" % (n, "x" * 40)
        KEYS[kid] = (tok, exp, False)
        return kid, "simsecret/%d+abc" % n, tok, exp


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, status, body=b"", ctype="text/plain"):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    # A credential fetch: counts, faults, delay. Returns False when answered.
    def cred_fetch_begin(self):
        with LOCK:
            STATS["in_flight"] += 1
            STATS["max_in_flight"] = max(STATS["max_in_flight"], STATS["in_flight"])
            delay = CONF["delay_ms"]
            kind = None
            if CONF["drop"]:
                CONF["drop"] -= 1 if CONF["drop"] > 0 else 0
                kind = "drop"
            elif CONF["fail"]:
                CONF["fail"] -= 1 if CONF["fail"] > 0 else 0
                kind = "fail"
            if kind:
                STATS["faults"] += 1
        if delay:
            time.sleep(delay / 1000.0)
        if kind == "drop":
            self.end_fetch()
            self.close_connection = True
            self.connection.shutdown(2)
            return False
        if kind == "fail":
            self.end_fetch()
            self.reply(500, "simulated failure")
            return False
        return True

    def end_fetch(self):
        with LOCK:
            STATS["in_flight"] -= 1

    def do_PUT(self):
        if self.path == "/latest/api/token":
            self.body()
            ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")
            if self.headers.get("X-Forwarded-For"):
                return self.reply(403, "forwarded requests are refused")
            if not ttl or not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
                return self.reply(400, "missing or bad X-aws-ec2-metadata-token-ttl-seconds")
            with LOCK:
                STATS["token_puts"] += 1
                tok = "imdstoken-%d-%f" % (STATS["token_puts"], time.time())
                TOKENS[tok] = time.monotonic() + min(int(ttl), CONF["token_ttl"])
            return self.reply(200, tok)
        self.s3()

    def do_GET(self):
        u = urllib.parse.urlsplit(self.path)
        if u.path == "/__sim__/set":
            with LOCK:
                for k, v in urllib.parse.parse_qsl(u.query, keep_blank_values=True):
                    if k == "revoke":
                        for kid in KEYS:
                            KEYS[kid] = (KEYS[kid][0], KEYS[kid][1], True)
                    elif k in ("lifetime",):
                        CONF[k] = float(v)
                    elif k in ("fail", "drop", "delay_ms", "token_ttl"):
                        CONF[k] = int(v)
                    elif k in CONF:
                        CONF[k] = v
                    else:
                        return self.reply(400, "unknown setting %s" % k)
            return self.reply(200, "ok")
        if u.path == "/__sim__/stats":
            with LOCK:
                lines = ["%s %s" % kv for kv in STATS.items()]
                lines += ["%s %s" % kv for kv in LAST.items()]
            return self.reply(200, "\n".join(lines) + "\n")
        if u.path.startswith("/latest/"):
            return self.imds(u.path)
        self.s3()

    def do_HEAD(self):
        self.s3()

    def do_DELETE(self):
        self.s3()

    def imds(self, path):
        tok = self.headers.get("X-aws-ec2-metadata-token")
        with LOCK:
            if not tok:
                STATS["v1_rejected"] += 1
                bad = "v1"
            elif TOKENS.get(tok, 0) < time.monotonic():
                STATS["bad_token"] += 1
                bad = "token"
            else:
                bad = None
            role = CONF["role"]
        if bad:
            return self.reply(401, "")
        base = "/latest/meta-data/iam/security-credentials/"
        if path == base:
            return self.reply(200, role) if role else self.reply(404, "")
        if not path.startswith(base) or not role or path[len(base):] != role:
            return self.reply(404, "")
        if not self.cred_fetch_begin():
            return
        with LOCK:
            STATS["imds_creds"] += 1
        kid, secret, token, exp = new_keys()
        doc = ('{\n  "Code" : "Success",\n  "LastUpdated" : "%s",\n  "Type" : "AWS-HMAC",\n'
               '  "AccessKeyId" : "%s",\n  "SecretAccessKey" : "%s",\n  "Token" : "%s",\n'
               '  "Expiration" : "%s"\n}' % (iso(time.time()), kid, secret, token, iso(exp)))
        self.end_fetch()
        self.reply(200, doc, "text/plain")

    def do_POST(self):
        raw = self.body()
        if self.path.split("?")[0] != "/" or b"Action=AssumeRoleWithWebIdentity" not in raw:
            return self.s3()
        form = dict(urllib.parse.parse_qsl(raw.decode(), keep_blank_values=True))
        with LOCK:
            STATS["sts_calls"] += 1
            LAST["web_token"] = form.get("WebIdentityToken", "")
            LAST["session_name"] = form.get("RoleSessionName", "")
            want_arn, err = CONF["role_arn"], CONF["sts_error"]
        if not self.cred_fetch_begin():
            return
        self.end_fetch()
        if form.get("Version") != "2011-06-15" or not form.get("WebIdentityToken"):
            return self.sts_error(400, "MissingParameter", "Version and WebIdentityToken are required")
        if not re.fullmatch(r"[\w+=,.@-]{2,64}", form.get("RoleSessionName", "")):
            return self.sts_error(400, "ValidationError", "bad RoleSessionName")
        if err:
            code, status = err.split(":")
            return self.sts_error(int(status), code, "simulated %s" % code)
        if form.get("RoleArn") != want_arn:
            return self.sts_error(403, "AccessDenied",
                                  "Not authorized to perform sts:AssumeRoleWithWebIdentity")
        kid, secret, token, exp = new_keys()
        xml = ('<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
               "<AssumeRoleWithWebIdentityResult><SubjectFromWebIdentityToken>system:serviceaccount:"
               "ns:sa</SubjectFromWebIdentityToken><Audience>sts.amazonaws.com</Audience>"
               "<AssumedRoleUser><Arn>%s/%s</Arn><AssumedRoleId>AROASIM:%s</AssumedRoleId>"
               "</AssumedRoleUser><Credentials><SessionToken>%s</SessionToken>"
               "<SecretAccessKey>%s</SecretAccessKey><Expiration>%s</Expiration>"
               "<AccessKeyId>%s</AccessKeyId></Credentials><Provider>sim</Provider>"
               "</AssumeRoleWithWebIdentityResult><ResponseMetadata><RequestId>sim</RequestId>"
               "</ResponseMetadata></AssumeRoleWithWebIdentityResponse>"
               % (want_arn, form["RoleSessionName"], form["RoleSessionName"], token,
                  secret.replace("&", "&amp;"), iso(exp), kid))
        self.reply(200, xml, "text/xml")

    def sts_error(self, status, code, msg):
        xml = ('<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error>'
               "<Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error>"
               "<RequestId>sim</RequestId></ErrorResponse>" % (code, msg))
        self.reply(status, xml, "text/xml")

    def s3(self):
        if self.command in ("PUT", "POST"):
            self.body()
        m = re.search(r"Credential=([^/]+)/", self.headers.get("Authorization", ""))
        kid = m.group(1) if m else ""
        tok = self.headers.get("x-amz-security-token", "")
        with LOCK:
            k = KEYS.get(kid)
            if not k:
                STATS["s3_unknown"] += 1
                verdict = "unknown"
            elif tok != k[0]:
                STATS["s3_no_token"] += 1
                verdict = "unknown"
            elif k[2] or time.time() >= k[1]:
                STATS["s3_expired"] += 1
                verdict = "expired"
            else:
                STATS["s3_ok"] += 1
                verdict = "ok"
        if verdict == "ok":
            return self.reply(200, "simulated object" if self.command == "GET" else "")
        code, status = ("ExpiredToken", 400) if verdict == "expired" else ("InvalidAccessKeyId", 403)
        self.reply(status, '<?xml version="1.0"?><Error><Code>%s</Code><Message>%s</Message>'
                   "</Error>" % (code, "The provided token has expired." if status == 400
                                 else "unknown key"), "application/xml")


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    srv = Server(("127.0.0.1", 0), Handler)
    print("PORT %d" % srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
