#!/usr/bin/python3
"""faultproxy.py - a fault-injecting reverse proxy for the S3 tests.

Sits between the S3 client and a real server (Ceph RGW, MinIO), forwarding
requests byte for byte (the Host header too, so SigV4 signatures stay
valid), and injects failures on demand:

  slowdown   answer 503 SlowDown without forwarding
  err500     answer 500 InternalError without forwarding
  drop_req   read half of the request body, then close the connection
  drop_resp  forward, send the headers and half of the body (nothing at
             all when the answer has no body), then close
  short      forward, send half of the body with a Content-Length that
             matches it (a consistent-looking but truncated answer)
  delay      sleep MS milliseconds, then forward normally
  corrupt    forward with one byte of the request body flipped (a bit
             error in flight: the store must refuse it, the client retry)

Control, on the proxy's own port:
  GET /__faults__/set?rules=KIND:COUNT[:METHOD[:MS]],...   replace the rules
  GET /__faults__/stats     "requests=N faults=M" (forwarded + faulted)
  GET /__faults__/reset     clear rules and counters
COUNT is how many matching requests the rule hits (-1 = all); METHOD is
GET/PUT/POST/HEAD/DELETE or * (default). The first live matching rule
fires. Prints "PORT <n>" on stdout once listening. Standard library only.
"""
import argparse
import http.client
import socket
import socketserver
import sys
import threading
import time
import urllib.parse

LOCK = threading.Lock()
RULES = []  # [kind, count, method, ms]
STATS = {"requests": 0, "faults": 0}
UPSTREAM = ("127.0.0.1", 7480)


def parse_rules(spec):
    rules = []
    for item in filter(None, spec.split(",")):
        parts = item.split(":")
        kind = parts[0]
        if kind not in ("slowdown", "err500", "drop_req", "drop_resp", "short", "delay",
                        "corrupt"):
            raise ValueError("unknown fault kind %r" % kind)
        count = int(parts[1]) if len(parts) > 1 else 1
        method = parts[2].upper() if len(parts) > 2 and parts[2] else "*"
        ms = int(parts[3]) if len(parts) > 3 else 0
        rules.append([kind, count, method, ms])
    return rules


def pick_fault(method):
    with LOCK:
        STATS["requests"] += 1
        for r in RULES:
            if r[1] != 0 and (r[2] == "*" or r[2] == method):
                if r[1] > 0:
                    r[1] -= 1
                STATS["faults"] += 1
                return r[0], r[3]
    return None, 0


def send(sock, status, reason, headers, body):
    out = ["HTTP/1.1 %d %s\r\n" % (status, reason)]
    for k, v in headers:
        out.append("%s: %s\r\n" % (k, v))
    out.append("\r\n")
    sock.sendall("".join(out).encode("latin-1") + body)


def error_doc(code, msg):
    return ('<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code>'
            "<Message>%s</Message><RequestId>faultproxy</RequestId></Error>" % (code, msg)).encode()


class Handler(socketserver.StreamRequestHandler):
    def read_request(self):
        line = self.rfile.readline(65537)
        if not line:
            return None
        method, target, _ = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
        headers = []
        while True:
            h = self.rfile.readline(65537).decode("latin-1")
            if h in ("\r\n", "\n", ""):
                break
            k, v = h.rstrip("\r\n").split(":", 1)
            headers.append((k.strip(), v.strip()))
        length = 0
        for k, v in headers:
            if k.lower() == "content-length":
                length = int(v)
        return method, target, headers, length

    def control(self, target):
        global RULES
        u = urllib.parse.urlparse(target)
        q = urllib.parse.parse_qs(u.query)
        with LOCK:
            if u.path == "/__faults__/set":
                try:
                    RULES = parse_rules(q.get("rules", [""])[0])
                except ValueError as e:
                    body = str(e).encode()
                    send(self.connection, 400, "Bad Request", [("Content-Length", len(body))], body)
                    return
            elif u.path == "/__faults__/reset":
                RULES = []
                STATS["requests"] = STATS["faults"] = 0
            body = ("requests=%d faults=%d\n" % (STATS["requests"], STATS["faults"])).encode()
        send(self.connection, 200, "OK", [("Content-Length", len(body)),
                                          ("Content-Type", "text/plain")], body)

    def handle(self):
        while True:
            req = self.read_request()
            if req is None:
                return
            method, target, headers, length = req
            if target.startswith("/__faults__/"):
                self.rfile.read(length)
                self.control(target)
                continue
            kind, ms = pick_fault(method)
            if kind == "drop_req":
                self.rfile.read(length // 2)
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            body = self.rfile.read(length) if length else b""
            if kind in ("slowdown", "err500"):
                code, status, msg = (("SlowDown", 503, "Please reduce your request rate.")
                                     if kind == "slowdown" else
                                     ("InternalError", 500, "We encountered an internal error."))
                doc = b"" if method == "HEAD" else error_doc(code, msg)
                send(self.connection, status, code,
                     [("Content-Type", "application/xml"), ("Content-Length", len(doc))], doc)
                continue
            if kind == "delay":
                time.sleep(ms / 1000.0)
            if kind == "corrupt" and body:
                mid = len(body) // 2
                body = body[:mid] + bytes([body[mid] ^ 0x20]) + body[mid + 1:]
            try:
                up = http.client.HTTPConnection(*UPSTREAM, timeout=120)
                up.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
                for k, v in headers:
                    if k.lower() not in ("connection", "expect"):
                        up.putheader(k, v)
                up.putheader("Connection", "close")
                up.endheaders(body if length else None)
                resp = up.getresponse()
                rbody = resp.read()
                rheaders = resp.getheaders()
                up.close()
            except OSError as e:
                doc = error_doc("ServiceUnavailable", "faultproxy upstream: %s" % e)
                send(self.connection, 503, "Service Unavailable",
                     [("Content-Length", len(doc))], doc)
                continue
            out = []
            head_len = None
            for k, v in rheaders:
                lk = k.lower()
                if lk in ("transfer-encoding", "connection", "keep-alive"):
                    continue
                if lk == "content-length":
                    head_len = v
                    continue
                out.append((k, v))
            if method == "HEAD":
                out.append(("Content-Length", head_len if head_len is not None else "0"))
                send(self.connection, resp.status, resp.reason, out, b"")
                continue
            if kind == "drop_resp":
                # The server did the work; the client never hears all of it:
                # half the body, or nothing at all when there is no body.
                if len(rbody) > 1:
                    out.append(("Content-Length", len(rbody)))
                    send(self.connection, resp.status, resp.reason, out, rbody[: len(rbody) // 2])
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if kind == "short" and len(rbody) > 1:
                rbody = rbody[: len(rbody) // 2]
            out.append(("Content-Length", len(rbody)))
            send(self.connection, resp.status, resp.reason, out, rbody)


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    global UPSTREAM
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--upstream", required=True, help="host:port of the real S3 server")
    ap.add_argument("--port", type=int, default=0, help="port to listen on (0 = any free one)")
    ap.add_argument("--rules", default="", help="initial fault rules")
    a = ap.parse_args()
    host, port = a.upstream.rsplit(":", 1)
    UPSTREAM = (host, int(port))
    global RULES
    RULES = parse_rules(a.rules)
    srv = Server(("127.0.0.1", a.port), Handler)
    print("PORT %d" % srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
