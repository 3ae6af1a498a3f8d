#!/usr/bin/python3
"""test_encryption_at_rest.py — issue 11 item 4 against tierbroker and real clients.

  encrypted_tiered   a broker with remote.storage.encryption.* on: messages
                     carrying a marker, produced with confluent-kafka, tier
                     to the bucket; the marker is in no bucket file (raw, nor
                     after `zstd -d` where that decompresses) and the
                     manifests name the key; a consumer from offset 0 reads
                     every message intact from the remote tier. Then the
                     active key rotates (k1 -> k2, both in the ring), the
                     broker restarts and produces more: every offset still
                     reads back. With k1 removed from the ring the old
                     offsets fail and the broker log names key 'k1';
                     `tierctl rekey` (broker stopped) moves every data key
                     to k2, after which k1 can go and everything reads.
  keyring_refused    a key ring readable by group/others stops the broker at
                     start with a message naming the file and its mode.

Run like test_broker.py: `test_encryption_at_rest.py NAME` with TIERBROKER,
TSPLUGIN and TIERCTL set; exits 77 when it cannot run.
"""
import hashlib
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_broker import (TIERCTL, TSPLUGIN, Broker, Fail, check, consume_all,  # noqa: E402
                         placement, run)
import confluent_kafka as ck  # noqa: E402

MARKER = b"MARKER-5e1f-broker-plaintext"
K1 = "k1=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"
K2 = "k2=//////////////////////////////////////////8=\n"


def settings(ring, active):
    return {"log.segment.bytes": str(256 * 1024),
            "log.local.retention.bytes": str(128 * 1024),
            "remote.log.manager.task.interval.ms": "100",
            "log.retention.ms": "-1",
            "remote.storage.encryption.enable": "true",
            "remote.storage.encryption.keyring": ring,
            "remote.storage.encryption.active.key": active}


def write_ring(path, text, mode=0o600):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def value(i):
    # incompressible filler, so segment counts do not depend on the codec
    return b"%08d-" % i + MARKER + b"-" + hashlib.sha256(b"%d" % i).digest() * 2


def produce(b, first, n):
    # no compression: the marker is plain in every batch unless the engine encrypts
    p = ck.Producer({"bootstrap.servers": b.bootstrap, "acks": "all", "linger.ms": 20,
                     "compression.type": "none",
                     "enable.idempotence": True, "queue.buffering.max.messages": 500000})
    for i in range(first, first + n):
        while True:
            try:
                p.produce("sec", value(i), partition=0)
                break
            except BufferError:
                p.poll(0.1)
    left = p.flush(120)
    check(left == 0, "producer did not flush: %d left" % left)


def wait_remote(b):
    deadline = time.time() + 180
    rows = []
    while time.time() < deadline:
        rows = placement(b, "sec")
        if len(rows) >= 4 and all(r.get("location") == "remote" for r in rows[:-2]):
            return rows
        time.sleep(0.5)
    raise Fail("segments not remote-only: %r" % [(r.get("base_offset"), r.get("location"))
                                               for r in rows])


def bucket_files_with(root, needle):
    hits, files = [], 0
    for dirpath, _, names in os.walk(os.path.join(root, "bucket")):
        for name in names:
            path = os.path.join(dirpath, name)
            files += 1
            with open(path, "rb") as f:
                data = f.read()
            r = subprocess.run(["zstd", "-q", "-d", "-c", path], capture_output=True)
            if needle in data or (r.returncode == 0 and needle in r.stdout):
                hits.append(path)
    return hits, files


def read_back(b, n):
    got = consume_all(b.bootstrap, "sec", n, timeout=180)
    check(len(got) == n, "read %d of %d" % (len(got), n))
    for i, (_, off, v) in enumerate(got):
        if off != i or v != value(i):
            raise Fail("message %d: offset %d, bytes differ: %r" % (i, off, v[:20]))


def t_encrypted_tiered():
    b = Broker(TSPLUGIN)
    ring = os.path.join(b.root, "keyring")
    write_ring(ring, K1)
    b.extra = settings(ring, "k1")
    b.start()
    try:
        n = 30000
        produce(b, 0, n)
        wait_remote(b)
        hits, files = bucket_files_with(b.root, MARKER)
        check(files > 4, "only %d bucket files" % files)
        check(not hits, "the marker is in the bucket: %s" % hits[:3])
        check(bucket_files_with(b.root, b'"key_id":"k1"')[0], "no manifest names key k1")
        read_back(b, n)
        # rotate: k2 active, k1 kept for its objects; restart, produce more
        b.stop()
        write_ring(ring, K1 + K2)
        b.extra = settings(ring, "k2")
        b.start()
        produce(b, n, n)
        wait_remote(b)
        b.stop()
        b.start()
        read_back(b, 2 * n)
        check(not bucket_files_with(b.root, MARKER)[0], "the marker leaked after rotation")
        # k1 gone before a rekey: old offsets fail, the log names the key
        b.stop()
        write_ring(ring, K2)
        b.start()
        got = consume_all(b.bootstrap, "sec", 1, timeout=15)
        check(not got or got[0][1] != 0, "offset 0 was served without its key")
        check("key 'k1'" in b.log(), "the broker log does not name key k1:\n" + b.log()[-1500:])
        # rekey with both keys, broker stopped; then k1 may go
        b.stop()
        write_ring(ring, K1 + K2)
        r = subprocess.run([TIERCTL, "-c", b.props, "rekey", "sec"], capture_output=True,
                           timeout=120)
        out = r.stdout.decode() + r.stderr.decode()
        check(r.returncode == 0 and "re-wrapped" in out and "re-wrapped 0 " not in out,
              "tierctl rekey: %s" % out)
        write_ring(ring, K2)
        b.start()
        read_back(b, 2 * n)
        check(b.alive(), "broker died")
    finally:
        b.cleanup()


def t_keyring_refused():
    b = Broker(TSPLUGIN)
    ring = os.path.join(b.root, "keyring")
    write_ring(ring, K1, 0o644)
    b.extra = settings(ring, "k1")
    try:
        try:
            b.start()
            started = True
        except Fail:
            started = False
        check(not started, "the broker started with a group-readable key ring")
        log = b.log()
        check(ring in log and "0644" in log, "the refusal does not name the file: " + log[-1500:])
    finally:
        b.cleanup()


TESTS = {
    "encrypted_tiered": (t_encrypted_tiered, ["TSPLUGIN", "TIERCTL"]),
    "keyring_refused": (t_keyring_refused, ["TSPLUGIN"]),
}


if __name__ == "__main__":
    run(TESTS)
