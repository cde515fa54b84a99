"""kill -9 of otachain-server under load (issue 11, acceptance 5).

1,000 connections send check-ins without pause (bench/checkin_load, plain
HTTP behind the trusted-proxy header, every request a device of its
own). After at least 2 s of load, once 90 % of the requests sent have been
answered, the server is killed with SIGKILL at a random moment within the
next second. Then:

- at least 90 % of the requests sent were answered before the kill;
- every check-in that got a 200 is in the database (a 200 is sent only
  after the commit);
- the server restarts and serves a check-in within 5 s;
- `otachain repo verify` accepts the repository and its ledger through the
  restarted server.

The server runs under ASan with a small quarantine (quarantine_size_mb=0:
freed memory is reused at once, which keeps a thousand connections'
allocations from faulting in fresh pages; buffer overflows are still
caught). The load generator is the same program the benchmarks use.
"""

import os
import random
import re
import signal
import subprocess
import time

from otarepo import Repo
from serverlib import Server, checkin_body
from testlib import bin_dir, otachain

ASAN_LOAD = "abort_on_error=0:detect_leaks=0:quarantine_size_mb=0"


def loadgen_path():
    return bin_dir() / "bench" / "checkin_load"


def test_kill9_under_load(tmp_path):
    repo = Repo.create(tmp_path / "repo", ledger=True)
    repo.add_release("cam", "1.1.0", os.urandom(32 * 1024), hardware="rev-a")
    srv = Server(tmp_path / "srv", repo.dir, plain_device=True,
                 env={"ASAN_OPTIONS": ASAN_LOAD}).start()
    log = tmp_path / "answers.txt"
    load = subprocess.Popen(
        [str(loadgen_path()), "--port", str(srv.ports["device"]), "--connections", "1000",
         "--seconds", "120", "--unique", "--log", str(log), "--progress"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, ASAN_OPTIONS=ASAN_LOAD))
    sent = answered = 0
    start = time.monotonic()
    try:
        for line in load.stderr:
            m = re.match(r"progress seconds=([\d.]+) sent=(\d+) answered=(\d+)", line)
            if not m:
                continue
            secs, sent, answered = float(m.group(1)), int(m.group(2)), int(m.group(3))
            if secs >= 2.0 and sent >= 1000 and answered >= 0.92 * sent:
                break
            assert time.monotonic() - start < 110, f"load too slow: {line}"
        time.sleep(random.uniform(0.0, 1.0))  # the random moment
        srv.proc.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        srv.proc.wait()
        srv._log.close()
        srv.proc = None
    finally:
        load.send_signal(signal.SIGTERM)
        out, _ = load.communicate(timeout=60)
    summary = out.strip().splitlines()[-1]
    total_sent = int(re.search(r'"sent":(\d+)', summary).group(1))
    ok = [ln.split()[0] for ln in log.read_text().splitlines() if ln.endswith(" 200")]
    assert killed_at - start >= 2.0
    assert len(ok) >= 0.9 * total_sent, (len(ok), total_sent)
    assert len(ok) >= 1000
    # Every 200 is in the database.
    with srv.db() as db:
        stored = {r[0] for r in db.execute("SELECT id FROM devices")}
    missing = [d for d in ok if d not in stored]
    assert not missing, f"{len(missing)} check-ins answered 200 are not stored: {missing[:5]}"
    # Restart: serving within 5 s.
    t0 = time.monotonic()
    srv.start(env={"ASAN_OPTIONS": ASAN_LOAD})
    r = srv.proxied("after-restart").checkin(checkin_body(hardware="rev-a"))
    assert r.status == 200 and time.monotonic() - t0 < 5.0
    assert r.json["assignment"]["target"] == "cam/1.1.0/firmware.img"
    # The repository and its ledger verify through the restarted server.
    otachain("repo", "verify", "--url", srv.url, "--trusted-root", repo.root1,
             "--state", tmp_path / "verify")
    assert srv.stop() == 0
