"""A device that slept through two witness-set changes catches up in one
round (issue 8, acceptance 5; docs/formats/ledger.md, "Per-root
checkpoints"), against a repository published by `otachain repo publish`
with real otachain-witness processes: root 1 names w0 and w1, root 2 hands
the ledger to w2 and w3, root 3 to w4 and w5 (quorum 2 each), and every
old set is retired (killed) once its successor took over. A device holding
root 1 runs one `repo verify` (the library's client over the published
directory) and reaches root 3 through `ledger/root-checkpoint/2` and `/3`;
without those files it cannot (the old sets never cosigned the final
checkpoint).
"""

import json
import shutil
from pathlib import Path

import pytest

from otarepo import Key, Repo
from testlib import free_port, otachain
from witnesslib import EM_DASH, Witness

ORIGIN = "example.test/catch-up"


class Fleet:
    def __init__(self, tmp):
        self.tmp = Path(tmp)
        keydir = self.tmp / "keys"
        keydir.mkdir()
        self.root_keys = [Key.generate(keydir / f"root{i}.key") for i in range(2)]
        self.targets_keys = [Key.generate(keydir / "targets0.key")]
        self.w = {}
        for i in (0, 1):
            self.new_witness(i)
        d = self.tmp / "repo"
        args = ["repo", "init", d, "--root-threshold", "1", "--targets-threshold", "1",
                "--ledger-origin", ORIGIN, "--witness-quorum", "2",
                "--root-key", self.root_keys[0].path, "--targets-key", self.targets_keys[0].path]
        for i in (0, 1):
            args += ["--witness", f"w{i}={self.w[i].vkey}@http://127.0.0.1:{self.w[i].port}"]
        otachain(*args)
        self.repo = Repo(d, keydir, self.root_keys, self.targets_keys)
        pending = json.loads((d / "pending" / "root.json").read_text())
        self.log_vkey = pending["signed"]["x-otachain-ledger"]["policy"][0].split(" ")[1]
        for i in (0, 1):
            self.start(i)
        otachain("repo", "publish", d)

    def new_witness(self, i):
        w = Witness(self.tmp / f"w{i}", f"witness.test/w{i}", [])
        w.init()
        w.port = free_port()
        self.w[i] = w

    def start(self, i):
        w = self.w[i]
        w.logs = [{"name": "repo", "origin": ORIGIN, "keys": [self.log_vkey]}]
        w.write_config(port=w.port)
        w.start()

    def change_witnesses(self, old, new):
        """The next root hands the ledger from the set old to the set new;
        once it is published the old set is retired (killed)."""
        for i in new:
            self.new_witness(i)
            self.start(i)
        args = ["root", "rotate", self.repo.dir, "--witness-quorum", "2",
                "--key", self.root_keys[0].path]
        for i in old:
            args += ["--remove-witness", f"w{i}"]
        for i in new:
            args += ["--add-witness", f"w{i}={self.w[i].vkey}@http://127.0.0.1:{self.w[i].port}"]
        otachain(*args)
        otachain("repo", "publish", self.repo.dir)
        for i in old:
            self.w[i].kill()

    def stop(self):
        for w in self.w.values():
            w.kill()


def cosigners(note):
    """The witness names of a note's cosignature lines."""
    return {ln.split(" ")[1] for ln in note.decode().splitlines()
            if ln.startswith(EM_DASH + " witness.test/")}


def verify(public, root1, state, check=True):
    return otachain("repo", "verify", "--dir", public, "--trusted-root", root1, "--state", state,
                    check=check)


@pytest.fixture
def fleet(tmp_path):
    f = Fleet(tmp_path)
    yield f
    f.stop()


def test_device_on_root_1_catches_up_across_two_retired_witness_sets(fleet, tmp_path):
    repo = fleet.repo
    device = tmp_path / "device"
    assert "verified: root v1" in verify(repo.public, repo.root1, device).stdout
    repo.add_release("cam", "1.0.0", b"fw0" * 400, sign=1)
    fleet.change_witnesses(old=(0, 1), new=(2, 3))
    repo.add_release("cam", "1.1.0", b"fw1" * 400, sign=1)
    fleet.change_witnesses(old=(2, 3), new=(4, 5))
    repo.add_release("cam", "1.2.0", b"fw2" * 400, sign=1)
    assert repo.version("root") == 3

    # What the publishing side serves: each root's checkpoint, cosigned by
    # the set it replaced (and the new set, asked with it); the final
    # checkpoint by the current set only.
    rc = repo.public / "ledger" / "root-checkpoint"
    assert sorted(p.name for p in rc.iterdir()) == ["2", "3"]
    assert {"witness.test/w0", "witness.test/w1"} <= cosigners((rc / "2").read_bytes())
    assert {"witness.test/w2", "witness.test/w3"} <= cosigners((rc / "3").read_bytes())
    final = (repo.public / "ledger" / "checkpoint").read_bytes()
    assert cosigners(final) == {"witness.test/w4", "witness.test/w5"}

    # Without the per-root checkpoints the device cannot vouch for root 2
    # (its witnesses never cosigned the final checkpoint): refused, state
    # kept.
    bare = tmp_path / "bare"
    shutil.copytree(repo.public, bare)
    shutil.rmtree(bare / "ledger" / "root-checkpoint")
    stale = tmp_path / "stale"
    shutil.copytree(device, stale)
    p = verify(bare, repo.root1, stale, check=False)
    assert p.returncode != 0 and "otachain: quorum:" in p.stderr, p.stderr

    # One round from root 1 to root 3 and the newest targets.
    out = verify(repo.public, repo.root1, device).stdout
    assert (f"verified: root v3, timestamp v{repo.version('timestamp')}, snapshot "
            f"v{repo.version('snapshot')}, targets v{repo.version('targets')}") in out, out
    # A fresh device (bootstrap root 1, no state) too.
    out = verify(repo.public, repo.root1, tmp_path / "fresh").stdout
    assert "verified: root v3" in out, out
