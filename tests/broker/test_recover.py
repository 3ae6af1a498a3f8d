#!/usr/bin/python3
"""test_recover.py — issue 12 item 5: the bucket describes itself.

Scenarios (each a ctest broker.NAME):
  recover_topics      two topics produced to (orders: 2 partitions and a config
                      override; events: 1) and a third never written to (quiet:
                      2 partitions, nothing ever uploaded) are tiered; the broker
                      stops, its data dir is wiped, and it starts again with
                      remote.log.recover.topics=true: Metadata for all topics
                      (confluent-kafka list_topics, kcat -L) lists the three with
                      their partition counts before any is named, DescribeConfigs
                      shows the override, every record reads back from offset 0
  recover_topics_off  the same wipe without the setting (its default, false):
                      nothing is listed until a topic is named, then it is adopted
                      (with its partition count from the bucket)

Clients: confluent-kafka (Debian, /usr/bin/python3) and kcat.
"""
import json
import os
import shutil
import subprocess
import time

import confluent_kafka as ck
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from test_broker import Broker, TIERCTL, TSPLUGIN, check, consume_all, kcat, run

TIERED = {"log.segment.ms": "1000", "remote.log.manager.task.interval.ms": "100",
          "auto.create.topics.enable": "false"}
LAYOUT = {"orders": 2, "events": 1, "quiet": 2}
N = 3000  # records per written partition


def create(b):
    a = AdminClient({"bootstrap.servers": b.bootstrap})
    fs = a.create_topics([NewTopic("orders", 2, config={"retention.ms": "86400000"}),
                          NewTopic("events", 1), NewTopic("quiet", 2)])
    for f in fs.values():
        f.result(30)


def produce(b):
    p = ck.Producer({"bootstrap.servers": b.bootstrap, "acks": "all", "linger.ms": 5})
    for topic, part in (("orders", 0), ("orders", 1), ("events", 0)):
        for i in range(N):
            p.produce(topic, b"%s-%d-%06d" % (topic.encode(), part, i), partition=part)
        p.poll(0)
    check(p.flush(60) == 0, "producer did not flush")


def tiered(b, topic, part):
    """Whether every non-empty segment of topic-part is in the bucket."""
    r = subprocess.run([TIERCTL, "-c", b.props, "placement", topic, str(part), "--json"],
                       capture_output=True, timeout=60)
    if r.returncode != 0:
        return False
    rows = [x for x in json.loads(r.stdout) if x["size_bytes"] > 0]
    return bool(rows) and all(x["location"] in ("remote", "local+remote") for x in rows)


def wait_tiered(b):
    deadline = time.time() + 180
    todo = [("orders", 0), ("orders", 1), ("events", 0)]
    while todo and time.time() < deadline:
        todo = [tp for tp in todo if not tiered(b, *tp)]
        time.sleep(0.5)
    check(not todo, "not tiered within 180 s: %r" % todo)


def listed(b):
    """{topic: partition count} of a Metadata request for all topics."""
    md = AdminClient({"bootstrap.servers": b.bootstrap}).list_topics(timeout=20)
    return {t: len(m.partitions) for t, m in md.topics.items() if not t.startswith("__")}


def wipe_and_restart(b, extra):
    b.stop()
    shutil.rmtree(os.path.join(b.root, "data"))
    b.extra.update(extra)
    b.start()


def written(b):
    """Brings up the three topics with their records tiered."""
    create(b)
    produce(b)
    wait_tiered(b)


def consume_every(b):
    for topic, parts in (("orders", 2), ("events", 1)):
        got = consume_all(b.bootstrap, topic, N * parts, timeout=180)
        check(len(got) == N * parts, "%s: read %d of %d" % (topic, len(got), N * parts))
        for part in range(parts):
            mine = sorted((o, v) for p, o, v in got if p == part)
            check([o for o, _ in mine] == list(range(N)), "%s-%d: offsets not 0..%d" % (topic, part, N - 1))
            check(all(v == b"%s-%d-%06d" % (topic.encode(), part, o) for o, v in mine),
                  "%s-%d: record contents differ" % (topic, part))


def t_recover_topics():
    b = Broker(TSPLUGIN, dict(TIERED)).start()
    try:
        written(b)
        wipe_and_restart(b, {"remote.log.recover.topics": "true"})
        deadline = time.time() + 60
        seen = {}
        while time.time() < deadline:
            seen = listed(b)
            if seen == LAYOUT:
                break
            time.sleep(0.3)
        check(seen == LAYOUT, "Metadata after recovery lists %r, want %r" % (seen, LAYOUT))
        rc, out, err = kcat(["-b", b.bootstrap, "-L"])
        out = out.decode(errors="replace")
        check(rc == 0, "kcat -L: %s" % err)
        for topic, n in LAYOUT.items():
            check('topic "%s" with %d partitions' % (topic, n) in out, "kcat -L: %s\n%s" % (topic, out))
        a = AdminClient({"bootstrap.servers": b.bootstrap})
        r = ConfigResource(ConfigResource.Type.TOPIC, "orders")
        cfg = a.describe_configs([r])[r].result(20)
        check(cfg["retention.ms"].value == "86400000" and
              cfg["retention.ms"].source == ck.admin.ConfigSource.DYNAMIC_TOPIC_CONFIG.value,
              "orders retention.ms after recovery: %r" % cfg["retention.ms"])
        consume_every(b)
        check("remote.log.recover.topics: done" in b.log(), "no end of recovery logged")
        check(b.alive(), "broker died")
    finally:
        b.cleanup()


def t_recover_topics_off():
    b = Broker(TSPLUGIN, dict(TIERED)).start()
    try:
        create(b)
        deadline = time.time() + 60
        while time.time() < deadline and not tiered_descriptors(b):
            time.sleep(0.2)
        wipe_and_restart(b, {})
        time.sleep(2)  # what a recovery would have had time to do
        check(listed(b) == {}, "topics listed without remote.log.recover.topics: %r" % listed(b))
        md = AdminClient({"bootstrap.servers": b.bootstrap}).list_topics("quiet", timeout=20)
        deadline = time.time() + 30
        while time.time() < deadline and len(md.topics["quiet"].partitions) != 2:
            time.sleep(0.3)
            md = AdminClient({"bootstrap.servers": b.bootstrap}).list_topics("quiet", timeout=20)
        check(len(md.topics["quiet"].partitions) == 2,
              "quiet (nothing uploaded) adopted with %d partitions, want 2" % len(md.topics["quiet"].partitions))
    finally:
        b.cleanup()


def tiered_descriptors(b):
    d = os.path.join(b.root, "bucket", "quiet", "descriptor")
    return os.path.isdir(d) and os.listdir(d)


TESTS = {
    "recover_topics": (t_recover_topics, ["TSPLUGIN", "TIERCTL"]),
    "recover_topics_off": (t_recover_topics_off, ["TSPLUGIN"]),
}

if __name__ == "__main__":
    run(TESTS)
