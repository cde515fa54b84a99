"""otachain-agent with an install journal it cannot load (issue 12,
docs/agent.md "Troubleshooting"): bit rot on the data partition, a hand
edit, a file truncated by a broken storage driver.

- `status` and `status --json` still show what does not come from the
  journal (the booted slot, the bootloader's state, the trusted metadata
  versions) beside the journal's error, and exit 1;
- `run --once` and `update --now` exit 1 with the error; the daemon
  (`run`) fails closed without a restart loop: it tells systemd READY,
  feeds the watchdog, writes nothing (not a slot, not the bootloader
  environment, not the journal: byte for byte), reports the error to the
  update server each poll interval (seen in the admin API and the event
  log), and picks up a repaired journal at the next round.

The daemon's poll interval runs on the injected clock (OTACHAIN_TEST_NOW
=@FILE): the test moves it through two intervals, nothing sleeps.
"""

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import time

import pytest

from devsim import Device, agent_path, fw
from otarepo import Repo
from serverlib import Fleet, Server, admin_device, errors_reported
from testlib import free_port

BACKENDS = ["uboot", "file"]
V1 = fw("1.0.0")
V11 = fw("1.1.0", base=V1, edits=[(1000, 300), (300000, 500)])
UNKNOWN = "0.0.0-unknown"  # running.version reported without a journal


@pytest.fixture(name="fleet", scope="module")
def fleet_fixture(tmp_path_factory):
    return Fleet.create(tmp_path_factory.mktemp("fleet"))


@pytest.fixture(name="hosted", scope="module")
def hosted_fixture(tmp_path_factory, fleet):
    """Product "sim" 1.0.0 (factory) and 1.1.0 (security version 1),
    ledger on, hosted by one otachain-server."""
    tmp = tmp_path_factory.mktemp("hosted")
    repo = Repo.create(tmp / "repo")
    repo.add_release("sim", "1.0.0", V1, hardware="board-a", security_version=0, sign=0,
                     publish=False)
    repo.add_release("sim", "1.1.0", V11, hardware="board-a", security_version=1, sign=2,
                     publish=True)
    srv = Server(tmp / "srv", repo.dir, fleet).start()
    srv.read = srv.token("ro", "read")
    yield repo, srv
    srv.stop()


def committed_device(tmp_path, fleet, hosted, backend):
    """A device that installed 1.1.0 into slot b and committed it: its
    journal holds the floor (1) and the installed release."""
    repo, srv = hosted
    srv.read = getattr(srv, "read", None) or srv.token("ro", "read")
    dev_id = f"{tmp_path.name[:40]}-dev"
    cert, key, _ = fleet.device(dev_id)
    dev = Device.create(tmp_path / "dev", backend, None, repo.root1, V1,
                        server=f"https://127.0.0.1:{srv.ports['device']}",
                        ca_file=fleet.server_ca, device_cert=cert, device_key=key)
    dev.id = dev_id
    boots = dev.boot_until_idle()
    assert [(b.slot, b.rebooting) for b in boots] == [("a", True), ("b", False)]
    st = dev.status()
    assert st["installed"]["version"] == "1.1.0" and st["security_floor"] == 1, st
    assert st["journal_error"] is None, st
    return dev


def journal(dev):
    return dev.state / "journal.json"


def truncated(good):
    return good[:len(good) // 2]


def wrong_field(good):
    doc = json.loads(good)
    doc["security_floor"] = "1"  # a string where the journal has a number
    return json.dumps(doc).encode()


def replace(path, data):
    """Atomically, as an operator restoring from a backup would."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def snapshot(dev):
    """Every byte the agent must not write: both slots, the bootloader's
    environment (each U-Boot copy, or the file backend's state file), the
    journal."""
    boot = {p.name: p.read_bytes() for p in (dev.dir / "boot").iterdir() if p.is_file()}
    return {"a": dev.slot_image("a"), "b": dev.slot_image("b"), "boot": boot,
            "journal": journal(dev).read_bytes()}


@pytest.mark.parametrize("backend", BACKENDS)
def test_status_and_once_with_a_bad_journal(tmp_path, fleet, hosted, backend):
    _, srv = hosted
    dev = committed_device(tmp_path, fleet, hosted, backend)
    good = journal(dev).read_bytes()
    for bad, field in ((truncated, None), (wrong_field, "security_floor")):
        replace(journal(dev), bad(good))
        before = snapshot(dev)
        # status --json: everything that does not come from the journal.
        p = dev.agent("status", "--json", check=False)
        assert p.returncode == 1, p
        st = json.loads(p.stdout)
        assert st["booted_slot"] == "b", st
        assert st["bootloader"] == {"backend": backend, "slot": "b", "trial": False,
                                    "attempts": 0, "limit": 3, "error": ""}, st
        assert st["trusted"]["root"] == 1 and st["trusted"]["targets"] >= 1, st
        assert st["trusted"]["timestamp"] >= 1 and st["trusted"]["snapshot"] >= 1, st
        assert st["journal_error"]["error"] == "journal", st
        assert str(journal(dev)) in st["journal_error"]["detail"], st
        if field:
            assert field in st["journal_error"]["detail"], st
        for k in ("phase", "installed", "pending", "security_floor", "blocked", "last"):
            assert st[k] is None, (k, st)
        assert st["product"] == "sim" and st["server"].startswith("https://"), st
        assert "otachain-agent: journal: " in p.stderr, p.stderr
        # status: the same, readable.
        p = dev.agent("status", check=False)
        assert p.returncode == 1, p
        assert "running:       slot b\n" in p.stdout, p.stdout
        assert f"bootloader:    {backend}: boots slot b (attempts 0 of 3)" in p.stdout, p.stdout
        assert f"journal:       journal: {journal(dev)}" in p.stdout, p.stdout
        assert "installed:     unknown" in p.stdout and "trusted:       root v1" in p.stdout
        # update --now and run --once: exit 1, the error named, nothing written.
        for verb in (("update", "--now"), ("run", "--once")):
            p = dev.agent(*verb, check=False)
            assert p.returncode == 1, (verb, p.stdout, p.stderr)
            assert "otachain-agent: journal: " in p.stderr and str(journal(dev)) in p.stderr
            assert "ERROR: AddressSanitizer" not in p.stderr and "runtime error" not in p.stderr
        assert snapshot(dev) == before
        # The server heard of it: what the device knows without its journal.
        d = admin_device(srv, dev)
        assert d["last_error"]["name"] == "journal", d
        assert str(journal(dev)) in d["last_error"]["detail"], d
        assert d["running"]["version"] == UNKNOWN and d["running"]["slot"] == "b", d
        assert d["running"].get("target") is None, d
        assert d["trusted"]["root_version"] == 1 and d["trusted"]["checkpoint"]["size"] > 0, d
    # Restored from a backup: the next round works.
    replace(journal(dev), good)
    boots = dev.boot_until_idle()
    assert len(boots) == 1 and boots[0].agent_rc == 0, boots[0].stderr
    assert "no assignment" in boots[0].stderr, boots[0].stderr
    d = admin_device(srv, dev)
    assert d["running"]["version"] == "1.1.0" and d["last_error"] is None, d
    assert d["update"]["state"] == "committed", d
    st = dev.status()
    assert st["journal_error"] is None and st["security_floor"] == 1, st
    assert "journal" in errors_reported(srv, dev)


class Notify:
    """The systemd notification socket (abstract namespace)."""

    def __init__(self):
        self.name = f"otachain-test-{os.getpid()}-{secrets.token_hex(6)}"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + self.name)
        self.sock.settimeout(60)
        self.seen = []

    def wait_for(self, msg):
        while msg not in self.seen:
            self.seen.append(self.sock.recv(4096).decode())
        self.seen.clear()

    def close(self):
        self.sock.close()


def start_daemon(dev, tmp_path, now):
    """otachain-agent run on the injected clock (returned: the clock file,
    the notification socket, the log file, the process)."""
    clock = tmp_path / "now"
    clock.write_text(str(now))
    notify = Notify()
    log = tmp_path / "agent.log"
    env = dict(os.environ, OTACHAIN_TEST_NOW=f"@{clock}", NOTIFY_SOCKET="@" + notify.name,
               WATCHDOG_USEC="200000")
    with open(log, "w") as err:
        proc = subprocess.Popen([str(agent_path()), "--config", str(dev.config), "run"],
                                stdout=subprocess.DEVNULL, stderr=err, env=env)
    return clock, notify, log, proc


def stop_daemon(proc, notify, log):
    proc.send_signal(signal.SIGTERM)
    rc = proc.wait(timeout=60)
    notify.close()
    text = log.read_text()
    assert rc == 0, text
    assert "ERROR: AddressSanitizer" not in text and "runtime error" not in text, text
    return text


def wait_lines(path, text, n, proc, timeout=120):
    """Until the daemon's log holds n lines containing text (an event, not
    a time)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if text in ln]
        if len(lines) >= n:
            return lines
        assert proc.poll() is None, path.read_text()
        assert time.monotonic() < deadline, f"no {n}x {text!r}:\n{path.read_text()}"
        time.sleep(0.02)


@pytest.mark.parametrize("backend", BACKENDS)
def test_daemon_fails_closed_without_looping(tmp_path, fleet, hosted, backend):
    _, srv = hosted
    dev = committed_device(tmp_path, fleet, hosted, backend)
    good = journal(dev).read_bytes()
    replace(journal(dev), truncated(good))
    before = snapshot(dev)
    now = int(time.time())
    clock, notify, log, proc = start_daemon(dev, tmp_path, now)
    waiting = "until " + str(journal(dev)) + " is repaired"
    try:
        notify.wait_for("READY=1")
        lines = wait_lines(log, waiting, 1, proc)
        assert lines[0].endswith("reading it again in 300 s"), lines  # the server's interval
        notify.wait_for("WATCHDOG=1")
        # Two rounds through the poll interval: the same refusal, no exit.
        for rounds in (2, 3):
            now += 300
            replace(clock, str(now).encode())
            wait_lines(log, waiting, rounds, proc)
        assert len(wait_lines(log, "otachain-agent: journal: ", 3, proc)) == 3
        assert snapshot(dev) == before
        d = admin_device(srv, dev)
        assert d["last_error"]["name"] == "journal" and d["running"]["version"] == UNKNOWN, d
        assert errors_reported(srv, dev)[-1] == "journal"
        # An operator restores the journal: the next round picks it up.
        replace(journal(dev), good)
        now += 300
        replace(clock, str(now).encode())
        wait_lines(log, "no newer release for sim/board-a (running 1.1.0)", 1, proc)
        assert proc.poll() is None
        d = admin_device(srv, dev)
        assert d["running"]["version"] == "1.1.0" and d["last_error"] is None, d
        assert journal(dev).read_bytes() == good
        assert snapshot(dev)["boot"] == before["boot"]
    finally:
        text = stop_daemon(proc, notify, log)
    assert len([ln for ln in text.splitlines() if waiting in ln]) == 3, text


def test_daemon_retries_a_failed_start(tmp_path, fleet, hosted):
    """Any start-up failure is handled like the journal's: a kernel
    command line that names no slot (a bootloader script edited by hand)
    leaves the daemon up, READY, writing nothing and trying again each
    poll interval; once the command line is right the next round runs."""
    dev = committed_device(tmp_path, fleet, hosted, "uboot")
    good = dev.cmdline.read_text()
    dev.cmdline.write_text("console=ttyS0 root=/dev/nowhere\n")
    before = snapshot(dev)
    now = int(time.time())
    clock, notify, log, proc = start_daemon(dev, tmp_path, now)
    failed = "otachain-agent: start-up failed (slot_unknown): not updating"
    try:
        notify.wait_for("READY=1")
        for rounds in (1, 2):
            line = wait_lines(log, failed, rounds, proc)[-1]
            # The configured interval with its jitter (no server reply yet).
            now += int(re.search(r"trying again in (\d+) s$", line).group(1))
            replace(clock, str(now).encode())
        wait_lines(log, failed, 3, proc)
        assert snapshot(dev) == before
        dev.cmdline.write_text(good)
        line = wait_lines(log, failed, 3, proc)[-1]
        now += int(re.search(r"trying again in (\d+) s$", line).group(1))
        replace(clock, str(now).encode())
        wait_lines(log, "no assignment", 1, proc)
        assert proc.poll() is None
        assert snapshot(dev) == before
    finally:
        text = stop_daemon(proc, notify, log)
    assert len([ln for ln in text.splitlines() if failed in ln]) == 3, text


def test_daemon_reports_once_the_server_is_back(tmp_path, fleet, hosted):
    """The server is down when the journal breaks: the report of that
    round is lost, and the next round's report still goes out (no check
    runs without a journal, so nothing else would clear "unreachable")."""
    repo, _ = hosted
    port = free_port()
    srv = Server(tmp_path / "srv", repo.dir, fleet,
                 settings={"device.listen": f"127.0.0.1:{port}"}).start()
    try:
        dev = committed_device(tmp_path, fleet, (repo, srv), "uboot")
        srv.stop()
        replace(journal(dev), truncated(journal(dev).read_bytes()))
        now = int(time.time())
        clock, notify, log, proc = start_daemon(dev, tmp_path, now)
        try:
            notify.wait_for("READY=1")
            lines = wait_lines(log, "is repaired", 1, proc)
            assert "report to the server not sent" in log.read_text(), log.read_text()
            wait = int(lines[0].rsplit(" in ", 1)[1].split()[0])  # the configured interval
            assert wait >= 3600, lines
            srv.start()
            assert srv.ports["device"] == port
            replace(clock, str(now + wait).encode())
            wait_lines(log, "is repaired", 2, proc)
            d = admin_device(srv, dev)
            assert d["last_error"]["name"] == "journal", d
            assert d["running"]["version"] == UNKNOWN, d
        finally:
            stop_daemon(proc, notify, log)
    finally:
        srv.stop()
