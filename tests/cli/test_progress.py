#!/usr/bin/env python3
"""test_progress.py TIERCTL DEMO — long work shows progress on a terminal only.

tierstore-demo's read-back phase, `tierctl verify` and `tierctl recover` draw a progress line
(count of total, bytes, rate/ETA) on stderr when stderr is a terminal (a
pty here), none with --quiet, and none when stderr is a pipe (scripts, CI);
their results on stdout are the same in all three cases.
"""
import os
import pty
import re
import shutil
import subprocess
import sys
import tempfile

TIERCTL, DEMO = sys.argv[1], sys.argv[2]
failures = []


def check(cond, what):
    print("  %s %s" % ("PASS" if cond else "FAIL", what))
    if not cond:
        failures.append(what)


def run_on_pty(cmd):
    """Runs cmd with stderr on a pty, stdout on a pipe: (rc, stdout, stderr)."""
    master, slave = pty.openpty()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL)
    os.close(slave)
    err = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the pty
            break
        if not chunk:
            break
        err += chunk
    out = p.stdout.read()
    p.wait()
    os.close(master)
    return p.returncode, out.decode(), err.decode(errors="replace")


def run_piped(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


def stable(out):
    """stdout without its timing figures, to compare runs."""
    return [l for l in out.splitlines() if not re.search(r"MB/s|[0-9.]+ s\b|ms\b", l)]


tmp = tempfile.mkdtemp()
try:
    d = os.path.join(tmp, "demo")
    demo = [DEMO, "--dir", d, "--mb", "24", "--partitions", "2"]
    rc, out, err = run_on_pty(demo)
    check(rc == 0, "demo on a terminal exits 0 (rc %d)" % rc)
    m = re.findall(r"read back: (\d+)/(\d+) records, ([0-9.]+ \w+) of ([0-9.]+ \w+)", err)
    check(len(m) >= 1, "demo draws read-back progress with counts and bytes (%d lines)" % len(m))
    if m:
        done, total = int(m[-1][0]), int(m[-1][1])
        check(0 < done <= total, "progress counts %d of %d records" % (done, total))
        check(re.search(r"OK: every record read back verified", out) is not None,
              "demo result on stdout")
    check(err.rstrip("\r\n").endswith("\x1b[K") or "\r\x1b[K" in err,
          "the progress line is cleared at the end")

    cfg = os.path.join(d, "demo.properties")
    rc, out_tty, err = run_on_pty([TIERCTL, "-c", cfg, "verify", "events"])
    check(rc == 0, "verify on a terminal exits 0 (rc %d): %s" % (rc, out_tty[-200:]))
    m = re.findall(r"verify: (\d+)/(\d+) segments, ([0-9.]+ \w+) of ([0-9.]+ \w+)", err)
    check(len(m) >= 1, "verify draws progress: %r" % err[:200])
    if m:
        total = int(m[-1][1])
        n = re.search(r"verified (\d+) remote segment", out_tty)
        check(n is not None and int(n.group(1)) == total,
              "the progress total (%d) is the number of segments verified" % total)
    rc, out_q, err_q = run_on_pty([TIERCTL, "-c", cfg, "verify", "events", "--quiet"])
    check(rc == 0 and "verify:" not in err_q and "\r" not in err_q,
          "--quiet: no progress on a terminal (%r)" % err_q[:200])
    rc, out_p, err_p = run_piped([TIERCTL, "-c", cfg, "verify", "events"])
    check(rc == 0 and "verify:" not in err_p and "\r" not in err_p,
          "stderr a pipe: no progress (%r)" % err_p[:200])
    check(out_p == out_tty.replace("\r\n", "\n") and out_q == out_p,
          "stdout is the same on a terminal, quiet and piped")

    # tierctl recover into empty data dirs: partitions of total, manifest bytes.
    def recover_cfg(name):
        with open(cfg) as f:
            lines = [l for l in f if not l.startswith("log.dirs")]
        path = os.path.join(tmp, name + ".properties")
        with open(path, "w") as f:
            f.writelines(lines + ["log.dirs=%s\n" % os.path.join(tmp, name)])
        return path
    rc, out_r, err = run_on_pty([TIERCTL, "-c", recover_cfg("r1"), "recover"])
    m = re.findall(r"recover: (\d+)/(\d+) partitions, ([0-9.]+ \w+)", err)
    check(rc == 0 and len(m) >= 1 and int(m[-1][1]) == 2,
          "recover draws progress (partitions of 2, bytes): %r %r" % (out_r[-200:], err[:200]))
    check("2 partition(s) restored" in out_r, "recover's summary on stdout: %r" % out_r[-200:])
    rc, out_rq, err_q = run_on_pty([TIERCTL, "-c", recover_cfg("r2"), "recover", "--quiet"])
    check(rc == 0 and "recover:" not in err_q and "\x1b[K" not in err_q,
          "recover --quiet: no progress on a terminal (%r)" % err_q[:200])
    rc, out_rp, err_p = run_piped([TIERCTL, "-c", recover_cfg("r3"), "recover"])
    check(rc == 0 and "recover:" not in err_p and "\x1b[K" not in err_p,
          "recover, stderr a pipe: no progress (%r)" % err_p[:200])
    check(out_rp == out_r.replace("\r\n", "\n"), "recover's stdout is the same on a terminal and piped")

    rc, out, err = run_piped(demo + ["--quiet"])
    check(rc == 0 and "read back:" not in err, "demo --quiet piped: no progress")
finally:
    shutil.rmtree(tmp)
print("%d failed" % len(failures))
sys.exit(1 if failures else 0)
