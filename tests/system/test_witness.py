"""otachain-witness as a process (issue 3): C2SP tlog-witness v1
add-checkpoint over HTTP(S) with the status codes the spec assigns, the
fork refusals of acceptance 4, durable state across SIGTERM, restarts and
kill -9 at every file-system step, and validating mode (acceptance 6)
against real TUF metadata made by the otachain CLI.

Logs are produced by tests/tools/ota-testlog (witnesslib.TestLog);
cosignatures are verified in Python + the openssl CLI, independently of
otachain's own code (witnesslib.verify_cosignature).
"""

import base64
import json
import os
import re
import shutil
import signal
import socket
import ssl
import time
from pathlib import Path

import pytest

from otarepo import Repo
from testlib import self_signed_cert
from witnesslib import (
    TestLog,
    Witness,
    body_note,
    note_body,
    verify_cosignature,
    witness_path,
)

ORIGIN = "example.org/log"
WNAME = "witness.example/w1"


@pytest.fixture
def log(tmp_path):
    lg = TestLog.create(tmp_path / "log", ORIGIN)
    lg.append(*[f"entry {i}\n".encode() for i in range(5)])
    return lg


@pytest.fixture
def witness(tmp_path, log):
    w = Witness(tmp_path / "w", WNAME, [log.section()])
    w.init()
    w.start()
    yield w
    if w.proc is not None:
        assert w.stop() == 0


def cosigned(w, log, body):
    """Posts body, expects 200 and a valid cosignature; returns its time."""
    r = w.add(body)
    assert r.status == 200, (r.status, r.text)
    return verify_cosignature(w.vkey, note_body(body_note(body)), r.text)


def state_of(w, origin=ORIGIN):
    return json.loads(w.state_file(origin).read_text())


# --------------------------------------------------------------------- init


def test_init_creates_key_and_prints_vkey(tmp_path, log):
    w = Witness(tmp_path / "w", WNAME, [log.section()])
    vkey = w.init()
    name, keyid, b64 = vkey.split("+", 2)
    assert name == WNAME and re.fullmatch(r"[0-9a-f]{8}", keyid)
    st = os.stat(w.key_file)
    assert st.st_mode & 0o777 == 0o600
    assert w.key_file.read_text().startswith(f"PRIVATE+KEY+{WNAME}+{keyid}+")
    assert w.state_dir.is_dir()
    before = w.key_file.read_bytes()
    p = w.run("--init", "--config", w.config)
    assert p.returncode == 3 and "exists" in p.stderr
    assert w.key_file.read_bytes() == before


def test_help_and_usage(tmp_path):
    p = Witness(tmp_path / "w", WNAME, []).run("--help")
    assert p.returncode == 0 and "POST /add-checkpoint" in p.stdout and "--init" in p.stdout
    p = Witness(tmp_path / "w", WNAME, []).run("--bogus")
    assert p.returncode == 2


def test_key_with_loose_permissions_refused(tmp_path, log):
    w = Witness(tmp_path / "w", WNAME, [log.section()])
    w.init()
    os.chmod(w.key_file, 0o644)
    w.start(wait=False)
    assert w.wait_exit() == 3
    assert any("mode 0600" in ln for ln in w.log_lines())


@pytest.mark.parametrize("text,line,needle", [
    ("[witness]\nname = a\nkey_file = k\nstate_dir = s\nbogus = 1\n", 5, "unknown key"),
    ("[witness]\nname = a b\n", 2, "key name"),
    ("[witness]\nname = a\nname = b\n", 3, "set twice"),
    ("[witness]\nport = 70000\n", 2, "in range"),
    ("[nope]\nx = 1\n", 2, "unknown section"),
    ("[witness]\nname = a\nkey_file = k\nstate_dir = s\n[log x]\norigin = o\nkey = x+1+2\n",
     7, "key"),
])
def test_config_errors_name_the_line(tmp_path, text, line, needle):
    w = Witness(tmp_path / "w", WNAME, [])
    w.config.write_text(text)
    p = w.run("--config", w.config)
    assert p.returncode == 2, p.stderr
    assert f"line {line}" in p.stderr and needle in p.stderr, p.stderr


def test_config_whole_file_rules(tmp_path, log):
    base = (f"[witness]\nname = {WNAME}\nkey_file = {tmp_path}/k\nstate_dir = {tmp_path}/s\n"
            f"[log a]\norigin = {ORIGIN}\nkey = {log.vkey}\n")
    w = Witness(tmp_path / "w", WNAME, [])
    for extra, needle in [
        (f"[log b]\norigin = {ORIGIN}\nkey = {log.vkey}\n", "already witnessed"),
        ("tiles_url = http://127.0.0.1:1/\n", "together"),
        ("[witness]\ntls_cert = /x\n", "go together"),
    ]:
        w.config.write_text(base + extra)
        p = w.run("--config", w.config)
        assert p.returncode == 2 and needle in p.stderr, p.stderr


# --------------------------------------------------------- add-checkpoint


def test_first_checkpoint_cosigned_and_persisted(witness, log):
    body = log.add_body(old=0)
    t0 = int(time.time())
    t = cosigned(witness, log, body)
    assert t0 - 1 <= t <= int(time.time()) + 1
    st = state_of(witness)
    assert st["format"] == "otachain-witness-state/v1" and st["origin"] == ORIGIN
    assert st["checkpoint"] == note_body(body_note(body))
    assert os.stat(witness.state_file(ORIGIN)).st_mode & 0o777 == 0o600
    line = witness.request_lines()[-1]
    assert f'origin="{ORIGIN}" old=0 new=5 status=200' in line, line


def test_growth_with_consistency_proof(witness, log):
    cosigned(witness, log, log.add_body(old=0))
    log.append(b"entry 5\n", b"entry 6\n", b"entry 7\n")
    cosigned(witness, log, log.add_body(old=5))
    assert witness.stored_size(log.add_body(old=8)) == 8
    log.append(*[f"more {i}\n".encode() for i in range(300)])  # crosses a tile boundary
    cosigned(witness, log, log.add_body(old=8))
    assert witness.stored_size(log.add_body(old=308)) == 308


def test_wrong_old_size_gets_409_with_the_stored_size(witness, log):
    cosigned(witness, log, log.add_body(old=0))
    log.append(b"entry 5\n")
    for old in (0, 1, 4):
        r = witness.add(log.add_body(old=old))
        assert r.status == 409, r.text
        assert r.headers["content-type"] == "text/x.tlog.size"
        assert r.body == b"5\n"
    # A client that learnt the size retries and succeeds (ledger.md step 3).
    cosigned(witness, log, log.add_body(old=5))


def test_same_checkpoint_cosigned_again_with_a_fresher_time(tmp_path, witness, log):
    # The witness's clock is a file the test advances (no sleeping).
    now = tmp_path / "now"
    now.write_text(str(int(time.time())))
    assert witness.stop() == 0
    witness.start(env={"OTACHAIN_TEST_NOW": f"@{now}"})
    body = log.add_body(old=0)
    t1 = cosigned(witness, log, body)
    state_before = witness.state_file(ORIGIN).read_bytes()
    now.write_text(str(int(now.read_text()) + 2))
    t2 = cosigned(witness, log, log.add_body(old=5))
    assert t2 > t1
    assert witness.state_file(ORIGIN).read_bytes() == state_before


# ------------------------------------------- forks (issue 3, acceptance 4)


def test_forks_refused_with_the_spec_status(witness, log):
    cosigned(witness, log, log.add_body(old=0))
    state_before = witness.state_file(ORIGIN).read_bytes()

    # Same size, different root: 409 Conflict (tlog-witness).
    r = witness.add(log.fork(size=5, at=2, old=5))
    assert r.status == 409, r.text
    assert "another root" in r.text

    # A smaller size: old size above the checkpoint size is 400; a client
    # claiming the smaller size as old size gets 409 with the real size.
    r = witness.add(b"old 5\n\n" + body_note(log.add_body(old=3, size=3)))
    assert r.status == 400, r.text
    r = witness.add(log.add_body(old=3, size=3))
    assert r.status == 409 and r.body == b"5\n"

    # A bad consistency proof: 422 Unprocessable Entity. (a) a fork of the
    # stored part, with the proof of the forked tree; (b) the real next
    # checkpoint with a tampered proof; (c) a proof where none is allowed.
    log.append(b"entry 5\n", b"entry 6\n")
    r = witness.add(log.fork(size=7, at=1, old=5))
    assert r.status == 422, r.text
    body = bytearray(log.add_body(old=5))
    i = body.index(b"\n") + 1
    body[i] = ord("A") if body[i] != ord("A") else ord("B")
    r = witness.add(bytes(body))
    assert r.status == 422, r.text
    good = log.add_body(old=5)
    lines = good.split(b"\n")
    r = witness.add(b"\n".join(lines[:1] + lines[2:]))  # one proof line missing
    assert r.status == 422, r.text
    r = witness.add(b"old 5\n" + lines[1] + b"\n\n" + body_note(log.add_body(old=5, size=5)))
    assert r.status == 422, r.text

    # Nothing of it reached the state; the honest next checkpoint passes.
    assert witness.state_file(ORIGIN).read_bytes() == state_before
    cosigned(witness, log, good)
    codes = [re.search(r"status=(\d+)", ln).group(1) for ln in witness.request_lines()]
    assert codes == ["200", "409", "400", "409", "422", "422", "422", "422", "200"], codes


def test_fork_refused_after_restart(tmp_path, witness, log):
    cosigned(witness, log, log.add_body(old=0))
    assert witness.stop() == 0
    assert any("SIGTERM" in ln for ln in witness.log_lines())
    witness.start()
    assert witness.add(log.fork(size=5, old=5)).status == 409
    assert witness.stored_size(log.add_body(old=5)) == 5


# ------------------------------------------------ origin, signature, body


def test_unknown_origin_is_404(tmp_path, witness):
    other = TestLog.create(tmp_path / "other", "example.org/other")
    other.append(b"x\n")
    r = witness.add(other.add_body(old=0))
    assert r.status == 404, r.text


def test_checkpoint_not_signed_by_the_log_is_403(tmp_path, witness, log):
    # Same origin, another key: the signature is from an unknown key.
    impostor = TestLog.create(tmp_path / "impostor", ORIGIN)
    impostor.append(b"x\n")
    r = witness.add(impostor.add_body(old=0))
    assert r.status == 403, r.text
    # The log's key, but the signature bytes altered.
    body = log.add_body(old=0)
    head, sig = body.rsplit(b" ", 1)
    raw = bytearray(base64.b64decode(sig))
    raw[10] ^= 1
    r = witness.add(head + b" " + base64.b64encode(bytes(raw)) + b"\n")
    assert r.status == 403, r.text
    # The checkpoint text altered under a valid signature.
    r = witness.add(body.replace(b"\n5\n", b"\n6\n", 1))
    assert r.status == 403, r.text
    assert not witness.state_file(ORIGIN).exists()


@pytest.mark.parametrize("body", [
    b"",
    b"garbage",
    b"old x\n\n",
    b"old 01\n\n",
    b"old 0\n",
    b"old 0\nnot-base64\n\n",
    b"old 0\n\nnot a note",
    b"old 0\n\nexample.org/log\n5\n\n",
])
def test_malformed_bodies_are_400(witness, body):
    r = witness.add(body)
    assert r.status == 400, r.text


def test_malformed_checkpoint_text_is_400(witness, log):
    note = body_note(log.add_body(old=0))
    r = witness.add(b"old 0\n\n" + note.replace(b"\n5\n", b"\n05\n", 1))
    assert r.status == 400, r.text
    r = witness.add(b"old 6\n\n" + note)  # old above the checkpoint size
    assert r.status == 400, r.text


def test_http_limits(witness, log):
    r = witness.request("GET", "/add-checkpoint")
    assert r.status == 405 and r.headers["allow"] == "POST"
    assert witness.request("POST", "/elsewhere", body=b"x").status == 404
    # A body above 1 MiB is refused from its Content-Length, unread.
    with socket.create_connection(("127.0.0.1", witness.port), timeout=10) as sock:
        sock.sendall(b"POST /add-checkpoint HTTP/1.1\r\nHost: w\r\n"
                     b"Content-Length: %d\r\n\r\nold 0\n\n" % (1024 * 1024 + 1))
        assert sock.recv(4096).startswith(b"HTTP/1.1 413 ")
    # Still serving.
    cosigned(witness, log, log.add_body(old=0))


def test_one_state_dir_one_witness(witness):
    p = witness.run("--config", witness.config)
    assert p.returncode == 3 and "another otachain-witness" in p.stderr, p.stderr


def test_https_tls13_only(tmp_path, log):
    cert, key = self_signed_cert(tmp_path)
    w = Witness(tmp_path / "w", WNAME, [log.section()], tls=(cert, key))
    w.init()
    w.start()
    try:
        assert any("https://" in ln for ln in w.log_lines())
        cosigned(w, log, log.add_body(old=0))
        conn = w.connection()
        conn.connect()
        assert conn.sock.version() == "TLSv1.3"
        conn.close()
        old = ssl.create_default_context(cafile=str(cert))
        old.maximum_version = ssl.TLSVersion.TLSv1_2
        with pytest.raises(ssl.SSLError):
            w.request("POST", "/add-checkpoint", body=b"", ssl_context=old)
    finally:
        assert w.stop() == 0


# --------------------------------------------------- kill -9 at every step


def test_kill9_at_every_state_step_keeps_a_consistent_witness(tmp_path, log):
    """Acceptance 3's last clause for one witness: killed just before each
    file-system step of add-checkpoint, restarted, it refuses a fork of
    whatever it stored and accepts the legitimate next checkpoint."""
    ref = Witness(tmp_path / "ref", WNAME, [log.section()])
    ref.init()
    ref.start(env={"OTACHAIN_FS_TRACE": "1"})
    cosigned(ref, log, log.add_body(old=0))
    base_state = tmp_path / "base-state"
    shutil.copytree(ref.state_dir, base_state)
    log.append(b"entry 5\n", b"entry 6\n")
    cosigned(ref, log, log.add_body(old=5))
    steps = [ln.split()[2] for ln in ref.log_lines() if ln.startswith("fs-step ")]
    assert ref.stop() == 0
    # Two state writes (sizes 5 and 7), each: create write fsync rename dirsync.
    assert steps == ["create", "write", "fsync", "rename", "dirsync"] * 2, steps
    per_add = len(steps) // 2

    for n in range(1, per_add + 1):
        w = Witness(tmp_path / f"w{n}", WNAME, [log.section()])
        shutil.copy(ref.key_file, w.key_file)
        os.chmod(w.key_file, 0o600)
        w.vkey = ref.vkey
        shutil.copytree(base_state, w.state_dir)
        w.start(env={"OTACHAIN_CRASH_AT": str(n)})
        with pytest.raises((ConnectionError, OSError, Exception)):
            w.add(log.add_body(old=5, size=7))
        assert w.wait_exit() == -signal.SIGKILL
        # Whatever the kill left is whole, and the witness restarts on it.
        json.loads(w.state_file(ORIGIN).read_text())
        w.start()
        assert not list(w.state_dir.glob("*.tmp-*")), n
        stored = w.stored_size(log.add_body(old=0))
        assert stored == (7 if steps[n - 1] == "dirsync" else 5), (n, steps[n - 1], stored)
        # A fork of the stored checkpoint: same size (409), or forked
        # below it and grown (422).
        assert w.add(log.fork(size=stored, at=0, old=stored)).status == 409
        log_size = log.size()
        r = w.add(log.fork(size=log_size, at=0, old=stored)) if stored < log_size else None
        if r is not None:
            assert r.status == 422, r.text
        # The legitimate next checkpoint.
        log.append(f"after crash {n}\n".encode())
        cosigned(w, log, log.add_body(old=stored))
        assert w.stop() == 0


# ------------------------------------------------------- validating mode


class ValidatedRepo:
    """A TUF repository made by the otachain CLI, its ledger logged by
    ota-testlog under public/ledger, served by nginx, and a validating
    witness of it."""

    def __init__(self, tmp_path, nginx_factory):
        self.tmp = tmp_path
        self.repo = Repo.create(tmp_path / "repo")
        self.log = TestLog.create(self.repo.public / "ledger", ORIGIN)
        self.srv = nginx_factory(root=self.repo.public)
        self.anchor = tmp_path / "anchor.root.json"
        shutil.copy(self.repo.meta / "1.root.json", self.anchor)
        self.w = Witness(tmp_path / "vw", WNAME, [self.log.section(
            tiles_url=self.srv.url + "/ledger", repo_url=self.srv.url, anchor=self.anchor)])
        self.w.init()
        self.w.start()
        self.size = 0

    def meta(self, name):
        return self.repo.meta / name

    def log_files(self, *specs):
        """Logs (role, file name) records and asks the witness."""
        self.log.append_meta(*[(role, self.meta(name)) for role, name in specs])
        r = self.w.add(self.log.add_body(old=self.size))
        if r.status == 200:
            verify_cosignature(self.w.vkey, self.log.checkpoint_body(), r.text)
            self.size = self.log.size()
        return r

    def stop(self):
        if self.w.proc is not None:
            assert self.w.stop() == 0


@pytest.fixture
def vrepo(tmp_path, nginx_factory):
    v = ValidatedRepo(tmp_path, nginx_factory)
    yield v
    v.stop()


def initial_records(v):
    return [("root", "1.root.json"), ("targets", "1.targets.json"),
            ("snapshot", "1.snapshot.json")]


def test_validating_accepts_a_good_sequence(vrepo):
    v = vrepo
    assert v.log_files(*initial_records(v)).status == 200
    v.repo.add_release("fw", "1.0.0", data=b"firmware" * 100)
    r = v.log_files(("targets", "2.targets.json"), ("snapshot", "2.snapshot.json"))
    assert r.status == 200, r.text
    # A root rotation signed by the old and the new thresholds.
    k = v.repo.new_key()
    v.repo.rotate_root(["--add-key", f"root={k.pub}"], v.repo.root_keys[:2])
    snap = v.repo.version("snapshot")
    r = v.log_files(("root", "2.root.json"), ("snapshot", f"{snap}.snapshot.json"))
    assert r.status == 200, r.text
    st = state_of(v.w)["validation"]
    assert st["versions"] == {"root": 2, "targets": 2, "snapshot": snap}
    assert st["targets"]["length"] == len(v.meta("2.targets.json").read_bytes())
    # Restart: the validation state came back from the file.
    assert v.w.stop() == 0
    v.w.start()
    v.repo.add_release("fw", "1.1.0", data=b"firmware-2" * 100)
    t = v.repo.version("targets")
    r = v.log_files(("targets", f"{t}.targets.json"),
                    ("snapshot", f"{v.repo.version('snapshot')}.snapshot.json"))
    assert r.status == 200, r.text


def refused(v, r, needle):
    assert r.status == 422, (r.status, r.text)
    assert needle in r.text, r.text
    before = v.w.state_file(ORIGIN).read_bytes() if v.w.state_file(ORIGIN).exists() else None
    return before


def test_validating_refuses_targets_below_threshold(vrepo):
    v = vrepo
    assert v.log_files(*initial_records(v)).status == 200
    state = v.w.state_file(ORIGIN).read_bytes()
    # One of two targets signatures: the repository would not publish it,
    # but a compromised log server logs it anyway.
    v.repo.add_release("fw", "1.0.0", data=b"firmware" * 100, sign=1, publish=False)
    shutil.copy(v.repo.dir / "pending" / "targets.json", v.meta("2.targets.json"))
    r = v.log_files(("targets", "2.targets.json"))
    refused(v, r, "below the targets threshold")
    assert "entry 3 (targets v2)" in r.text
    assert v.w.state_file(ORIGIN).read_bytes() == state


def test_validating_refuses_a_lower_version(vrepo):
    v = vrepo
    assert v.log_files(*initial_records(v)).status == 200
    v.repo.add_release("fw", "1.0.0", data=b"firmware" * 100)
    assert v.log_files(("targets", "2.targets.json")).status == 200
    state = v.w.state_file(ORIGIN).read_bytes()
    r = v.log_files(("targets", "1.targets.json"))
    refused(v, r, "versions only increase")
    assert v.w.state_file(ORIGIN).read_bytes() == state


def test_validating_refuses_root_without_old_threshold(vrepo):
    v = vrepo
    assert v.log_files(*initial_records(v)).status == 200
    # Root v2 that replaces every root key and is signed only by the new
    # ones: it meets its own threshold, not root v1's.
    new = [v.repo.new_key() for _ in range(2)]
    args = ["root", "rotate", v.repo.dir, "--threshold", "root=2"]
    args += [a for k in new for a in ("--add-key", f"root={k.pub}")]
    args += [a for k in v.repo.root_keys for a in ("--remove-key", f"root={k.keyid}")]
    args += [a for k in new for a in ("--key", k.path)]
    v.repo.cli(*args)
    shutil.copy(v.repo.dir / "pending" / "root.json", v.meta("2.root.json"))
    r = v.log_files(("root", "2.root.json"))
    refused(v, r, "not signed by the root threshold of the previous root")


def test_validating_refuses_a_first_root_other_than_the_anchor(tmp_path, vrepo):
    v = vrepo
    other = Repo.create(tmp_path / "other")
    shutil.copy(other.meta / "1.root.json", v.meta("9.root.json"))
    v.log.append_meta(("root", other.meta / "1.root.json"))
    r = v.w.add(v.log.add_body(old=0))
    refused(v, r, "not the configured anchor")
    assert not v.w.state_file(ORIGIN).exists()


def test_validating_withheld_entries_are_503(vrepo):
    v = vrepo
    v.log.append_meta(*[(role, v.meta(n)) for role, n in initial_records(v)])
    shutil.rmtree(v.log.dir / "tile" / "entries")
    r = v.w.add(v.log.add_body(old=0))
    assert r.status == 503, r.text
    assert not v.w.state_file(ORIGIN).exists()


def test_validating_entries_not_matching_the_root_are_422(vrepo):
    v = vrepo
    v.log.append_meta(*[(role, v.meta(n)) for role, n in initial_records(v)])
    bundle = v.log.dir / "tile" / "entries" / "000.p" / "3"
    data = bytearray(bundle.read_bytes())
    # Inside the last record's hex digest: another hex digit, so the record
    # still parses (5 lines) but is another leaf. (Flipping a bit could
    # give a non-hex character: a malformed record, another error.)
    data[-3] = ord("0") if data[-3] != ord("0") else ord("1")
    bundle.write_bytes(bytes(data))
    r = v.w.add(v.log.add_body(old=0))
    assert r.status == 422, r.text
    assert "root" in r.text


def test_validating_kill9_keeps_validation_with_the_checkpoint(vrepo, tmp_path):
    """The validation state is replaced together with the checkpoint: a
    kill at the rename leaves both old, at the directory fsync both new."""
    v = vrepo
    assert v.log_files(*initial_records(v)).status == 200
    assert v.w.stop() == 0
    v.repo.add_release("fw", "1.0.0", data=b"firmware" * 100)
    v.log.append_meta(("targets", v.meta("2.targets.json")), ("snapshot", v.meta("2.snapshot.json")))
    saved = tmp_path / "saved-state"
    shutil.copytree(v.w.state_dir, saved)
    for n, want in ((4, 3), (5, 5)):  # 4: before rename, 5: before dirsync
        shutil.rmtree(v.w.state_dir)
        shutil.copytree(saved, v.w.state_dir)
        v.w.start(env={"OTACHAIN_CRASH_AT": str(n)})
        with pytest.raises(Exception):
            v.w.add(v.log.add_body(old=3))
        assert v.w.wait_exit() == -signal.SIGKILL
        st = state_of(v.w)
        assert st["validation"]["versions"]["targets"] == (1 if want == 3 else 2)
        assert st["checkpoint"].split("\n")[1] == str(want)
        v.w.start()
        assert v.w.stored_size(v.log.add_body(old=0)) == want
        assert v.w.stop() == 0
    v.w.start()


def test_state_file_that_breaks_an_invariant_stops_the_witness(tmp_path, witness, log):
    cosigned(witness, log, log.add_body(old=0))
    assert witness.stop() == 0
    path = witness.state_file(ORIGIN)
    good = path.read_text()
    for bad, needle in [
        ("{", "not JSON"),
        (good.replace(ORIGIN, "example.org/other"), "another origin"),
        (good.replace('"checkpoint": "', '"checkpoint": "x', 1), "does not parse"),
        (good.replace('"format"', '"format2"'), "otachain-witness-state/v1"),
    ]:
        path.write_text(bad)
        witness.start(wait=False)
        assert witness.wait_exit() == 3
        assert any(needle in ln for ln in witness.log_lines()), (needle, witness.log_lines())
    path.write_text(good)
    witness.start()
    assert witness.stored_size(log.add_body(old=5)) == 5


def test_turning_validation_on_over_an_unvalidated_state_is_refused(tmp_path, witness, log):
    cosigned(witness, log, log.add_body(old=0))
    assert witness.stop() == 0
    anchor = tmp_path / "anchor.json"
    repo = Repo.create(tmp_path / "repo")
    shutil.copy(repo.root1, anchor)
    witness.logs = [log.section(tiles_url=str(log.dir), repo_url=str(repo.public),
                                anchor=anchor)]
    witness.write_config()
    witness.start(wait=False)
    assert witness.wait_exit() == 3
    assert any("written without validation" in ln for ln in witness.log_lines())


def test_validating_from_local_directories(tmp_path):
    """tiles_url and repo_url may be directories (a witness beside the log)."""
    repo = Repo.create(tmp_path / "repo")
    log = TestLog.create(repo.public / "ledger", ORIGIN)
    w = Witness(tmp_path / "w", WNAME, [log.section(
        tiles_url=str(log.dir), repo_url=str(repo.public), anchor=repo.root1)])
    w.init()
    w.start()
    try:
        log.append_meta(("root", repo.meta / "1.root.json"), ("targets", repo.meta / "1.targets.json"),
                        ("snapshot", repo.meta / "1.snapshot.json"))
        cosigned(w, log, log.add_body(old=0))
        assert state_of(w)["validation"]["versions"] == {"root": 1, "targets": 1, "snapshot": 1}
    finally:
        assert w.stop() == 0
