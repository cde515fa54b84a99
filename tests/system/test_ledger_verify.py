"""The device rule of the ledger through `otachain repo verify` (issue 3,
acceptance 5): a repository published by `repo publish` with four real
otachain-witness processes (quorum 3), then shown to the client as it is and
tampered with. Each refusal is checked by its error name; the library's
unit tests (tests/unit/test_tuf_ledger.c) play the attacks that need
colluding witnesses (forks cosigned by a quorum).
"""

import base64
import json
import time
from pathlib import Path

import pytest

from otarepo import Key, Repo
from testlib import free_port, otachain
from witnesslib import EM_DASH, Witness

ORIGIN = "example.test/verify"


class WitnessedRepo:
    """A repository whose root names four witnesses, quorum 3, and the
    given freshness window (max_age)."""

    def __init__(self, tmp_path, max_age="1d"):
        self.tmp = Path(tmp_path)
        keydir = self.tmp / "keys"
        keydir.mkdir()
        root_keys = [Key.generate(keydir / f"root{i}.key") for i in range(2)]
        targets_keys = [Key.generate(keydir / f"targets{i}.key") for i in range(1)]
        self.witnesses = []
        for i in range(4):
            w = Witness(self.tmp / f"w{i}", f"witness.test/w{i}", [])
            w.init()
            self.witnesses.append(w)
        self.ports = [free_port() for _ in self.witnesses]
        d = self.tmp / "repo"
        args = ["repo", "init", d, "--root-threshold", "2", "--targets-threshold", "1",
                "--ledger-origin", ORIGIN, "--witness-quorum", "3", "--ledger-max-age", max_age,
                "--root-key", root_keys[0].path, "--root-key", root_keys[1].pub,
                "--targets-key", targets_keys[0].path]
        for i, (w, port) in enumerate(zip(self.witnesses, self.ports)):
            args += ["--witness", f"w{i}={w.vkey}@http://127.0.0.1:{port}"]
        otachain(*args)
        self.repo = Repo(d, keydir, root_keys, targets_keys)
        pending = json.loads((d / "pending" / "root.json").read_text())
        log_vkey = pending["signed"]["x-otachain-ledger"]["policy"][0].split(" ")[1]
        for w, port in zip(self.witnesses, self.ports):
            w.logs = [{"name": "repo", "origin": ORIGIN, "keys": [log_vkey]}]
            w.write_config(port=port)
            w.start()
        otachain("root", "sign", d, "--key", root_keys[1].path)
        otachain("repo", "publish", d)

    @property
    def cp_path(self):
        return self.repo.dir / "public" / "ledger" / "checkpoint"

    def verify(self, state, now=None):
        """(errname or None, stdout) of `repo verify --dir public`; now: the
        clock the CLI reads (OTACHAIN_TEST_NOW), else the system's."""
        env = None if now is None else {"OTACHAIN_TEST_NOW": str(now)}
        p = otachain("repo", "verify", "--dir", self.repo.dir / "public", "--trusted-root",
                     self.repo.root1, "--state", state, check=False, env=env)
        if p.returncode == 0:
            return None, p.stdout
        lines = [ln for ln in p.stderr.splitlines() if ln.startswith("otachain: ")]
        assert lines, p.stderr
        assert p.returncode in (1, 3), p.stderr
        return lines[-1].split(": ")[1], lines[-1]

    def stop(self):
        for w in self.witnesses:
            w.kill()


@pytest.fixture
def wrepo(tmp_path):
    r = WitnessedRepo(tmp_path)
    yield r
    r.stop()


def cosig_lines(note):
    """Indices (in note.split('\\n')) of the cosignature lines."""
    lines = note.split("\n")
    return [i for i, ln in enumerate(lines)
            if ln.startswith(EM_DASH + " witness.test/")]


def cosig_times(note):
    """The times of the cosignatures on a note (tlog-cosignature: key ID,
    8-byte big-endian time, signature)."""
    lines = note.split("\n")
    return [int.from_bytes(base64.b64decode(lines[i].rsplit(" ", 1)[1])[4:12], "big")
            for i in cosig_lines(note)]


def test_verify_clock_at_zero_moves_the_time_floor(wrepo, tmp_path):
    """The CLI hands its clock to the client (issue 9): a board whose clock
    reads 0 accepts the cosigned state, and the time floor moves to what
    the quorum vouches for (the 3rd newest of 4). (A clock with no reading
    at all is refused by the CLI before any verb runs; the library's tests
    cover it.)"""
    state = tmp_path / "dev"
    err, out = wrepo.verify(state, now=0)
    assert err is None, out
    floor = sorted(cosig_times(wrepo.cp_path.read_text()), reverse=True)[2]
    assert (state / "time-floor").read_text() == f"{floor}\n"
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(floor))
    assert f"time floor: {stamp}" in out

    wrepo.repo.add_release("cam", "1.0.0", b"a" * 1000)
    err, out = wrepo.verify(state, now=1)
    assert err is None, out
    assert "size 5 accepted" in out
    # A clock ahead of the floor is believed: two days on, the cosignatures
    # are older than max_age (1 day).
    err, msg = wrepo.verify(state, now=floor + 2 * 86400)
    assert err == "stale", msg


def test_verify_follows_the_log(wrepo, tmp_path):
    state = tmp_path / "dev"
    err, out = wrepo.verify(state)
    assert err is None, out
    assert f"ledger: checkpoint {ORIGIN} size 3 accepted" in out
    assert (state / "checkpoint").read_bytes() == wrepo.cp_path.read_bytes()

    for i in range(3):
        wrepo.repo.add_release("cam", f"1.{i}.0", b"fw%d" % i * 1000)
        err, out = wrepo.verify(state)
        assert err is None, out
        assert f"size {5 + 2 * i} accepted" in out
    assert (state / "checkpoint").read_bytes() == wrepo.cp_path.read_bytes()


def test_verify_refuses_tampered_checkpoints(wrepo, tmp_path):
    state = tmp_path / "dev"
    wrepo.repo.add_release("cam", "1.0.0", b"a" * 1000)
    good = wrepo.cp_path.read_text()
    assert len(cosig_lines(good)) == 4

    # Two of four cosignatures stripped: below the quorum of 3.
    lines = good.split("\n")
    drop = set(cosig_lines(good)[:2])
    wrepo.cp_path.write_text("\n".join(ln for i, ln in enumerate(lines) if i not in drop))
    err, msg = wrepo.verify(state)
    assert err == "quorum", msg
    assert not (state / "checkpoint").exists()
    assert not (state / "snapshot.json").exists()

    # A forged cosignature: a witness's key ID, signature bytes altered.
    i = cosig_lines(good)[1]
    name, b64 = lines[i][len(EM_DASH) + 1:].split(" ")
    k = 40
    forged = b64[:k] + ("B" if b64[k] == "A" else "A") + b64[k + 1:]
    wrepo.cp_path.write_text("\n".join(lines[:i] + [f"{EM_DASH} {name} {forged}"]
                                       + lines[i + 1:]))
    err, msg = wrepo.verify(state)
    assert err == "bad_signature", msg

    # The real one.
    wrepo.cp_path.write_text(good)
    err, out = wrepo.verify(state)
    assert err is None, out


def test_verify_refuses_unlogged_snapshot_and_split_view(wrepo, tmp_path):
    old_dev, new_dev, late_dev = tmp_path / "old", tmp_path / "new", tmp_path / "late"
    assert wrepo.verify(old_dev)[0] is None
    cp3 = wrepo.cp_path.read_bytes()
    wrepo.repo.add_release("cam", "1.0.0", b"a" * 1000)
    cp5 = wrepo.cp_path.read_bytes()
    assert wrepo.verify(new_dev)[0] is None

    # The log's checkpoint held back at size 3 (still freshly cosigned):
    # the snapshot the timestamp names is not in it.
    wrepo.cp_path.write_bytes(cp3)
    err, msg = wrepo.verify(late_dev)
    assert err == "not_in_log", msg
    assert "index/snapshot/2" in msg
    assert not (late_dev / "snapshot.json").exists()
    # A device that has seen size 5 is shown size 3: split view.
    err, msg = wrepo.verify(new_dev)
    assert err == "split_view", msg
    assert (new_dev / "checkpoint").read_bytes() == cp5

    # Back to the truth: the device at size 3 follows through tiles.
    wrepo.cp_path.write_bytes(cp5)
    err, out = wrepo.verify(old_dev)
    assert err is None, out
    assert "size 5 accepted" in out
    assert wrepo.verify(late_dev)[0] is None


def test_verify_refuses_stale_cosignatures(tmp_path):
    r = WitnessedRepo(tmp_path, max_age="6s")
    try:
        state = tmp_path / "dev"
        # A release cosigned by three witnesses (w3 is down).
        r.witnesses[3].kill()
        r.repo.add_release("cam", "1.0.0", b"a" * 1000)
        assert len(cosig_lines(r.cp_path.read_text())) == 3
        err, out = r.verify(state)
        assert err is None, out

        # Frozen: nobody cosigns again for longer than max_age.
        time.sleep(7)
        err, msg = r.verify(state)
        assert err == "stale", msg

        # One witness adds a fresh cosignature to the stale checkpoint: one
        # fresh cosignature is not a quorum.
        w3 = r.witnesses[3]
        w3.start()
        size = w3.stored_size(otachain("ledger", "proof", r.repo.dir, "--from", "0")
                              .stdout.encode())
        body = otachain("ledger", "proof", r.repo.dir, "--from", str(size)).stdout.encode()
        reply = w3.add(body)
        assert reply.status == 200, reply.text
        note = r.cp_path.read_text()
        assert note.endswith("\n") and reply.text.startswith(EM_DASH)
        r.cp_path.write_text(note + reply.text)
        assert len(cosig_lines(r.cp_path.read_text())) == 4
        err, msg = r.verify(state)
        assert err == "stale", msg
        assert "counted: w3" in msg

        # The log has everything cosigned again: fresh.
        otachain("repo", "refresh", r.repo.dir)
        err, out = r.verify(state)
        assert err is None, out
    finally:
        r.stop()
