#!/usr/bin/python3
"""oidc_issuer.py - a minimal local OpenID Connect issuer for the RGW STS test.

TEST DOUBLE: stands in for an identity provider such as the EKS cluster's
OIDC issuer. It serves what Ceph RGW fetches to check a web identity token
(AssumeRoleWithWebIdentity):

  GET /.well-known/openid-configuration   {"issuer": ..., "jwks_uri": ...}
  GET /jwks                               {"keys": [{"kty":"RSA", ..., "x5c": [cert]}]}

and writes RS256-signed JWTs (iss, sub, aud, azp, iat, exp) to a token file,
as the kubelet does for a projected service-account token.

  oidc_issuer.py --dir DIR [--aud AUD] [--sub SUB] [--ttl S] [--register URL]

Writes DIR/token, prints "PORT <n>" and "THUMBPRINT <sha1 of the cert>" on
stdout once listening. GET /rotate writes a fresh token (new iat/exp/jti).
--register URL: registers the issuer at the RGW at URL through its IAM API
(CreateOpenIDConnectProvider, CreateRole trusting it for the audience,
PutRolePolicy s3:*), signed with AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY
(SigV4, done here with the standard library: the AWS CLI takes seconds per
call to start), prints "ROLE_ARN <arn>", and removes all three on SIGTERM.
Uses python3-cryptography (Debian: python3-cryptography).
"""
import argparse
import base64
import datetime
import hashlib
import http.server
import json
import hmac
import os
import re
import signal
import socketserver
import urllib.parse
import urllib.request
import sys
import threading
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def uint_b64(n):
    return b64url(n.to_bytes((n.bit_length() + 7) // 8, "big"))


class Issuer:
    def __init__(self, args):
        self.args = args
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tierstore-test-oidc")])
        now = datetime.datetime.utcnow()
        self.cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(days=1))
                     .not_valid_after(now + datetime.timedelta(days=2))
                     .sign(self.key, hashes.SHA256()))
        self.der = self.cert.public_bytes(serialization.Encoding.DER)
        self.thumbprint = hashlib.sha1(self.der).hexdigest()
        self.url = ""
        self.lock = threading.Lock()
        self.n = 0

    def jwks(self):
        pub = self.key.public_key().public_numbers()
        return {"keys": [{"kty": "RSA", "alg": "RS256", "use": "sig", "kid": "k1",
                          "n": uint_b64(pub.n), "e": uint_b64(pub.e),
                          "x5c": [base64.b64encode(self.der).decode()]}]}

    def token(self):
        with self.lock:
            self.n += 1
            n = self.n
        now = int(time.time())
        head = {"alg": "RS256", "typ": "JWT", "kid": "k1"}
        claims = {"iss": self.url, "sub": self.args.sub, "aud": self.args.aud,
                  "azp": self.args.aud, "iat": now, "nbf": now - 5,
                  "exp": now + self.args.ttl, "jti": "tok-%d" % n}
        signing = b64url(json.dumps(head).encode()) + "." + b64url(json.dumps(claims).encode())
        sig = self.key.sign(signing.encode(), padding.PKCS1v15(), hashes.SHA256())
        return signing + "." + b64url(sig)

    def write_token(self):
        path = os.path.join(self.args.dir, "token")
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(self.token() + "\n")
        os.rename(tmp, path)  # atomic, as the kubelet's symlink swap


ISSUER = None


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        p = self.path.split("?")[0]
        if p == "/.well-known/openid-configuration":
            return self.reply(200, {"issuer": ISSUER.url, "jwks_uri": ISSUER.url + "/jwks",
                                    "id_token_signing_alg_values_supported": ["RS256"],
                                    "response_types_supported": ["id_token"],
                                    "subject_types_supported": ["public"]})
        if p == "/jwks":
            return self.reply(200, ISSUER.jwks())
        if p == "/rotate":
            ISSUER.write_token()
            return self.reply(200, {"ok": True})
        self.reply(404, {"error": "not found"})


def iam_call(endpoint, params):
    """One IAM query API call to RGW, SigV4-signed (service iam, us-east-1)."""
    params = dict(params, Version="2010-05-08")
    body = urllib.parse.urlencode(params).encode()
    host = urllib.parse.urlsplit(endpoint).netloc
    t = time.gmtime()
    amz_date, day = time.strftime("%Y%m%dT%H%M%SZ", t), time.strftime("%Y%m%d", t)
    scope = "%s/us-east-1/iam/aws4_request" % day
    creq = "\n".join(["POST", "/", "", "host:" + host, "x-amz-date:" + amz_date, "",
                      "host;x-amz-date", hashlib.sha256(body).hexdigest()])
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(creq.encode()).hexdigest()])
    k = ("AWS4" + os.environ["AWS_SECRET_ACCESS_KEY"]).encode()
    for part in (day, "us-east-1", "iam", "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    sig = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
    auth = "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=host;x-amz-date, Signature=%s" % (
        os.environ["AWS_ACCESS_KEY_ID"], scope, sig)
    req = urllib.request.Request(endpoint.rstrip("/") + "/", data=body, method="POST", headers={
        "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
        "X-Amz-Date": amz_date, "Authorization": auth})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=30) as r:
            return r.read().decode()
    except urllib.error.HTTPError as e:
        raise RuntimeError("%s: HTTP %d %s" % (params["Action"], e.code, e.read()[:300]))


def register(endpoint, url, aud, thumbprint):
    host = url.split("://", 1)[1]
    out = iam_call(endpoint, {"Action": "CreateOpenIDConnectProvider", "Url": url,
                              "ClientIDList.member.1": aud, "ThumbprintList.member.1": thumbprint})
    provider = re.search(r"<OpenIDConnectProviderArn>([^<]+)<", out).group(1)
    role = "tierstore-sts-%d" % os.getpid()
    # Compact JSON: Pacific's RGW refuses a trust policy with blanks between members.
    trust = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Federated": [provider]},
        "Action": ["sts:AssumeRoleWithWebIdentity"],
        "Condition": {"StringEquals": {host + ":app_id": aud}}}]}, separators=(",", ":"))
    out = iam_call(endpoint, {"Action": "CreateRole", "RoleName": role, "Path": "/",
                              "AssumeRolePolicyDocument": trust})
    arn = re.search(r"<Arn>([^<]+)<", out).group(1)
    policy = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": ["s3:*"], "Resource": "arn:aws:s3:::*"}]}, separators=(",", ":"))
    iam_call(endpoint, {"Action": "PutRolePolicy", "RoleName": role, "PolicyName": "s3all",
                        "PolicyDocument": policy})

    def unregister():
        for params in ({"Action": "DeleteRolePolicy", "RoleName": role, "PolicyName": "s3all"},
                       {"Action": "DeleteRole", "RoleName": role},
                       {"Action": "DeleteOpenIDConnectProvider", "OpenIDConnectProviderArn": provider}):
            try:
                iam_call(endpoint, params)
            except Exception as e:  # best effort: report and go on
                print("unregister: %s" % e, file=sys.stderr)
    return arn, unregister


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


def main():
    global ISSUER
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--aud", default="tierstore-app")
    ap.add_argument("--sub", default="system:serviceaccount:tierstore:broker")
    ap.add_argument("--ttl", type=int, default=3600)
    ap.add_argument("--register")
    args = ap.parse_args()
    ISSUER = Issuer(args)
    srv = Server(("127.0.0.1", 0), Handler)
    ISSUER.url = "http://127.0.0.1:%d" % srv.server_address[1]
    ISSUER.write_token()
    print("PORT %d" % srv.server_address[1], flush=True)
    print("THUMBPRINT %s" % ISSUER.thumbprint, flush=True)
    unregister = None
    if args.register:
        try:
            arn, unregister = register(args.register, ISSUER.url, args.aud, ISSUER.thumbprint)
        except Exception as e:
            print("REGISTER_FAILED %s" % e, flush=True)
            return 1
        print("ROLE_ARN %s" % arn, flush=True)

    def stop(*_):
        if unregister:
            unregister()
        os._exit(0)
    signal.signal(signal.SIGTERM, stop)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
