#!/usr/bin/python3
"""bench_broker.py — tierbroker end to end with confluent-kafka.

  1. latency: produce one message (acks=all), flush, poll it back; N times;
     p50 / p99 / max in ms
  2. throughput: 1 KiB messages with batching (acks=all); MB/s and msgs/s
Both run twice: alone (baseline) and while another process consumes a topic
whose data lives only in the bucket (cold reads, cache kept small), and the
ratio loaded/baseline is printed side by side. Not part of ctest: timings.

Usage: bench_broker.py TIERBROKER PLUGIN [--n 1000] [--msgs 200000]
"""
import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import confluent_kafka as ck


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def start_broker(binary, plugin, root):
    port = free_port()
    props = os.path.join(root, "server.properties")
    with open(props, "w") as f:
        f.write("listeners=PLAINTEXT://127.0.0.1:%d\n" % port)
        f.write("log.dirs=%s/data\n" % root)
        f.write("remote.storage.url=file://%s/bucket\n" % root)
        f.write("plugin.path=%s\n" % plugin)
        f.write("log.segment.bytes=%d\n" % (4 << 20))
        f.write("log.local.retention.bytes=%d\n" % (2 << 20))
        f.write("remote.log.manager.task.interval.ms=200\n")
        f.write("remote.log.cache.bytes=%d\n" % (8 << 20))
        f.write("log.retention.ms=-1\n")
    os.makedirs(root + "/data", exist_ok=True)
    log = open(root + "/broker.log", "ab")
    p = subprocess.Popen([binary, props], stdout=log, stderr=log)
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return p, "127.0.0.1:%d" % port
        except OSError:
            time.sleep(0.05)
    p.kill()
    sys.exit("broker did not start; see %s/broker.log" % root)


def latency(bs, n, topic):
    p = ck.Producer({"bootstrap.servers": bs, "acks": "all", "linger.ms": 0})
    c = ck.Consumer({"bootstrap.servers": bs, "group.id": "lat-%d" % time.time_ns(),
                     "auto.offset.reset": "latest", "fetch.wait.max.ms": 100,
                     "fetch.min.bytes": 1})
    p.produce(topic, b"warmup")
    p.flush(10)
    c.assign([ck.TopicPartition(topic, 0, ck.OFFSET_END)])
    time.sleep(1.0)
    samples = []
    for i in range(n):
        payload = b"lat-%d" % i
        t0 = time.perf_counter()
        p.produce(topic, payload, partition=0)
        p.flush(10)
        while True:
            m = c.poll(5)
            if m is not None and not m.error() and m.value() == payload:
                break
        samples.append((time.perf_counter() - t0) * 1000)
    c.close()
    samples.sort()
    return samples[len(samples) // 2], samples[int(len(samples) * 0.99) - 1], samples[-1]


def throughput(bs, msgs, topic):
    p = ck.Producer({"bootstrap.servers": bs, "acks": "all", "linger.ms": 5,
                     "batch.size": 1 << 20, "queue.buffering.max.messages": 1000000,
                     "queue.buffering.max.kbytes": 1 << 20})
    value = os.urandom(1024)
    t0 = time.perf_counter()
    for _ in range(msgs):
        while True:
            try:
                p.produce(topic, value, partition=0)
                break
            except BufferError:
                p.poll(0.01)
    p.flush(300)
    dt = time.perf_counter() - t0
    return msgs * 1024 / dt / 1e6, msgs / dt


COLD_READER = r"""
import confluent_kafka as ck, sys, time
bs, topic = sys.argv[1], sys.argv[2]
n = 0
while True:
    c = ck.Consumer({"bootstrap.servers": bs, "group.id": "cold-%d" % time.time_ns(),
                     "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.assign([ck.TopicPartition(topic, 0, 0)])
    idle = 0
    while idle < 3:
        ms = c.consume(1000, 1.0)
        if not ms:
            idle += 1
        n += len(ms)
    c.close()
    print(n, flush=True)
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("broker")
    ap.add_argument("plugin")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--msgs", type=int, default=200000)
    ap.add_argument("--cold-mb", type=int, default=64)
    a = ap.parse_args()
    root = tempfile.mkdtemp(prefix="bench-broker-")
    proc, bs = start_broker(a.broker, a.plugin, root)
    reader = None
    try:
        # cold topic: written first, then left to move to the bucket
        cold_msgs = a.cold_mb * 1024
        throughput(bs, cold_msgs, "cold")
        time.sleep(5)
        res = {}
        for phase in ("baseline", "cold-reader"):
            if phase == "cold-reader":
                reader_out = open(root + "/cold-reader.out", "w")
                reader = subprocess.Popen([sys.executable, "-c", COLD_READER, bs, "cold"],
                                          stdout=reader_out)
                time.sleep(2)
            lat = latency(bs, a.n, "lat-" + phase)
            thr = throughput(bs, a.msgs, "thr-" + phase)
            res[phase] = lat + thr
        b, l = res["baseline"], res["cold-reader"]
        reader.kill()
        reader.wait()
        with open(root + "/cold-reader.out") as f:
            counts = f.read().split()
        cold_read = int(counts[-1]) if counts else 0
        print("tierbroker e2e (confluent-kafka %s, librdkafka %s), N=%d, %d x 1 KiB" %
              (ck.version()[0], ck.libversion()[0], a.n, a.msgs))
        print("%-28s %12s %14s %8s" % ("", "baseline", "+cold reader", "ratio"))
        names = ["latency p50 (ms)", "latency p99 (ms)", "latency max (ms)",
                 "throughput (MB/s)", "throughput (msgs/s)"]
        for i, nm in enumerate(names):
            print("%-28s %12.2f %14.2f %8.2f" % (nm, b[i], l[i], l[i] / b[i] if b[i] else 0))
        print("cold reader: %d x 1 KiB messages read from the %d MiB remote-tier topic during "
              "the loaded phase (counted per full pass)" % (cold_read, a.cold_mb))
    finally:
        if reader:
            reader.kill()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
