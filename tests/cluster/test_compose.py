#!/usr/bin/python3
"""test_compose.py — minio-compose/ validated without a Docker engine: Debian's
`docker-compose config` (Compose v1) must accept the file with and without the
`cluster` profile, and the cluster it describes must hang together: etcd, three
brokers built from this checkout with distinct node ids and ports, all pointed
at that etcd and at the bucket `createbucket` makes on the MinIO, started only
once etcd is healthy and the bucket exists; every setting of cluster.properties
and of the brokers' --override flags is one tierbroker --help lists (a typo
would stop the broker at startup). tests/rgw/cluster_on_rgw.sh runs the same
topology natively.

Run by ctest (label cluster) as `test_compose.py compose_config`; exits 77
(skipped, not passed) when docker-compose is not installed.
"""
import os
import re
import shutil
import subprocess
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
COMPOSE_DIR = os.path.join(ROOT, "minio-compose")
BROKER = os.environ.get("TIERBROKER")


class Fail(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Fail(msg)


def compose_config(*profile):
    args = ["docker-compose", "-f", os.path.join(COMPOSE_DIR, "docker-compose.yml")]
    for p in profile:
        args += ["--profile", p]
    r = subprocess.run(args + ["config"], capture_output=True, text=True, cwd=COMPOSE_DIR,
                       timeout=120)
    check(r.returncode == 0, "docker-compose config %s failed:\n%s" % (profile, r.stderr))
    return yaml.safe_load(r.stdout)


def overrides(cmd):
    """{key: value} of a broker command's --override flags."""
    out = {}
    for i, a in enumerate(cmd):
        if a == "--override":
            k, v = cmd[i + 1].split("=", 1)
            out[k] = v
    return out


def read_props(path):
    out = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith(("#", "!")):
                k, v = re.split(r"\s*[=:]\s*", line, 1)
                out[k] = v
    return out


def known_keys():
    """Every setting tierbroker --help lists (broker and storage plugin)."""
    r = subprocess.run([BROKER, "--help"], capture_output=True, text=True, timeout=60)
    check(r.returncode == 0, "tierbroker --help failed: %s" % r.stderr)
    return set(re.findall(r"^ {2}([a-z][a-z0-9_.]+)\s", r.stdout, re.M))


def t_compose_config():
    compose_config()  # the file as the S3 suite uses it, no profile
    cfg = compose_config("cluster")
    svc = cfg["services"]
    brokers = sorted(k for k in svc if re.fullmatch(r"broker\d+", k))
    check(brokers == ["broker1", "broker2", "broker3"] and "etcd" in svc,
          "cluster services: %s" % sorted(svc))
    # Compose v1 lists every service whatever the profile: check the profiles
    # themselves. MinIO and its bucket always start; the cluster on demand.
    for name in ("minio", "createbucket"):
        check(not svc[name].get("profiles"), "%s needs a profile" % name)
    for name in brokers + ["etcd"]:
        check(svc[name].get("profiles") == ["cluster"], "%s is not in the cluster profile" % name)
    # The bucket createbucket makes is the one the brokers use.
    bucket = svc["createbucket"]["environment"]["TS_S3_TEST_BUCKET"]
    check(any("mc mb" in line and "TS_S3_TEST_BUCKET" in line
              for line in svc["createbucket"]["command"]),
          "createbucket does not make the bucket $TS_S3_TEST_BUCKET")
    etcd_cmd = svc["etcd"]["command"]
    etcd_url = etcd_cmd[etcd_cmd.index("--advertise-client-urls") + 1]
    check("--auto-compaction-retention" in etcd_cmd, "etcd without auto-compaction: its history "
          "would grow with every commit")
    ids, ports, keys = set(), set(), known_keys()
    for name in brokers:
        b = svc[name]
        check(b["build"]["dockerfile"] == "minio-compose/Dockerfile" and
              os.path.exists(os.path.join(b["build"]["context"], "CMakeLists.txt")),
              "%s is not built from this checkout: %r" % (name, b["build"]))
        deps = b["depends_on"]
        check(deps.get("etcd", {}).get("condition") == "service_healthy" and
              deps.get("createbucket", {}).get("condition") ==
              "service_completed_successfully",
              "%s starts before etcd and the bucket are ready: %r" % (name, deps))
        mount = next(v for v in b["volumes"] if v.endswith(":/etc/tierstore/cluster.properties:ro")
                     or "/etc/tierstore/cluster.properties" in v)
        props = read_props(mount.split(":")[0])
        ov = overrides(b["command"])
        props.update(ov)
        ids.add(props["node.id"])
        ports.add(props["listeners"].rsplit(":", 1)[1])
        check(props["metadata.store.url"] == "etcd://" + etcd_url.split("://", 1)[1],
              "%s's metadata.store.url %s is not the etcd's %s" %
              (name, props["metadata.store.url"], etcd_url))
        check(props["remote.storage.url"].startswith("s3://%s/" % bucket),
              "%s stores in %s, not in the bucket %s" % (name, props["remote.storage.url"], bucket))
        check(b["environment"]["AWS_ACCESS_KEY_ID"] ==
              svc["minio"]["environment"]["MINIO_ROOT_USER"],
              "%s's S3 keys are not the MinIO's" % name)
        unknown = sorted(k for k in props if k not in keys)
        check(not unknown, "%s: settings tierbroker does not know: %s" % (name, unknown))
        check(b.get("network_mode") == "host", "%s: not on the host network" % name)
    check(len(ids) == 3 and len(ports) == 3, "node ids %s and ports %s must differ" % (ids, ports))
    # The Dockerfile builds the broker, the plugin and tierctl.
    with open(os.path.join(COMPOSE_DIR, "Dockerfile")) as f:
        df = f.read()
    check("tierbroker" in df and "tierstore-plugin" in df, "the Dockerfile does not build the broker")
    print("  docker-compose config: %d services with --profile cluster, brokers %s on ports %s"
          % (len(svc), sorted(ids), sorted(ports)))


def main():
    if not shutil.which("docker-compose") or not BROKER:
        print("SKIP compose_config: docker-compose or TIERBROKER missing")
        sys.exit(77)
    try:
        t_compose_config()
        print("PASS compose_config")
    except Fail as e:
        print("FAIL compose_config: %s" % e)
        sys.exit(1)


if __name__ == "__main__":
    main()
