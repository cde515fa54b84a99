"""The log side of the ledger: `repo publish` / `repo refresh` with four real
otachain-witness processes on loopback (quorum 3), and the `otachain ledger`
verbs (docs/formats/ledger.md, docs/cli.md).

The repository is initialised with two of its root signers missing so that
init does not publish yet: the witnesses are configured with the log's
origin and key (found in the pending root's policy) and started, then the
second signer signs and `repo publish` makes root v1 live.
"""

import base64
import hashlib
import json
import struct
import subprocess
import time
from pathlib import Path

import pytest

from otarepo import Key, Repo, sha256_hex
from testlib import bin_dir, otachain
from witnesslib import EM_DASH, Witness, parse_vkey

ORIGIN = "example.test/ledger"


def tree_snapshot(d):
    """Every file under d with its bytes: for byte-for-byte comparisons."""
    d = Path(d)
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def cosigners(note):
    """{name: time} of the cosignature/v1 lines of a checkpoint note."""
    out = {}
    for line in note.split("\n\n", 1)[1].splitlines():
        name, b64 = line[len(EM_DASH) + 1:].split(" ")
        raw = base64.b64decode(b64)
        if len(raw) == 4 + 8 + 64:
            out[name] = struct.unpack(">Q", raw[4:12])[0]
    return out


class LedgerRepo:
    """A repository (2-of-3 root and targets keys) whose ledger has four
    witnesses and quorum 3."""

    def __init__(self, tmp_path, nwitnesses=4, quorum=3, validating=False):
        self.tmp = Path(tmp_path)
        keydir = self.tmp / "keys"
        keydir.mkdir()
        self.root_keys = [Key.generate(keydir / f"root{i}.key") for i in range(3)]
        self.targets_keys = [Key.generate(keydir / f"targets{i}.key") for i in range(3)]
        self.witnesses = []
        for i in range(nwitnesses):
            w = Witness(self.tmp / f"w{i}", f"witness.test/w{i}", [])
            w.init()
            self.witnesses.append(w)
        self.ports = [_free_port() for _ in self.witnesses]
        dir = self.tmp / "repo"
        args = ["repo", "init", dir, "--root-threshold", "2", "--targets-threshold", "2",
                "--ledger-origin", ORIGIN, "--witness-quorum", str(quorum),
                "--root-key", self.root_keys[0].path, "--root-key", self.root_keys[1].pub,
                "--root-key", self.root_keys[2].pub]
        for k in self.targets_keys[:2]:
            args += ["--targets-key", k.path]
        args += ["--targets-key", self.targets_keys[2].pub]
        for w, port in zip(self.witnesses, self.ports):
            args += ["--witness", f"w{self.witnesses.index(w)}={w.vkey}@http://127.0.0.1:{port}"]
        out = otachain(*args).stdout
        assert "not published yet" in out
        self.repo = Repo(dir, keydir, self.root_keys, self.targets_keys)
        pending = json.loads((dir / "pending" / "root.json").read_text())
        ledger = pending["signed"]["x-otachain-ledger"]
        assert ledger["origin"] == ORIGIN
        assert ledger["policy"][-2:] == [
            "group witnesses %d %s" % (quorum, " ".join(f"w{i}" for i in range(nwitnesses))),
            "quorum witnesses"]
        self.log_vkey = ledger["policy"][0].split(" ")[1]
        otachain("root", "sign", dir, "--key", self.root_keys[1].path)
        extra = {}
        if validating:
            # The anchor is root v1 as publish will serve it: the compact,
            # key-sorted form of the signed pending root.
            signed = json.loads((dir / "pending" / "root.json").read_text())
            anchor = self.tmp / "anchor.root.json"
            anchor.write_text(json.dumps(signed, sort_keys=True, separators=(",", ":")))
            extra = {"tiles_url": dir / "public" / "ledger", "repo_url": dir / "public",
                     "anchor": anchor}
        # The witnesses' clock: a file the tests advance (no sleeping).
        self.now = self.tmp / "now"
        self.now.write_text(str(int(time.time())))
        for w, port in zip(self.witnesses, self.ports):
            w.logs = [{"name": "repo", "origin": ORIGIN, "keys": [self.log_vkey], **extra}]
            w.write_config(port=port)
            w.start(env={"OTACHAIN_TEST_NOW": f"@{self.now}"})
        otachain("repo", "publish", dir)

    @property
    def dir(self):
        return self.repo.dir

    @property
    def checkpoint(self):
        return (self.dir / "public" / "ledger" / "checkpoint").read_text()

    def stop(self):
        for w in self.witnesses:
            w.kill()


def _free_port():
    from testlib import free_port
    return free_port()


@pytest.fixture
def lrepo(tmp_path):
    lr = LedgerRepo(tmp_path)
    yield lr
    lr.stop()


def test_publish_needs_quorum_of_witnesses(lrepo):
    cp = lrepo.checkpoint
    assert cp.startswith(ORIGIN + "\n3\n")
    assert set(cosigners(cp)) == {f"witness.test/w{i}" for i in range(4)}
    ledger = lrepo.dir / "public" / "ledger"
    assert (ledger / "index" / "root" / "1").read_text() == "0"
    assert (ledger / "index" / "targets" / "1").read_text() == "1"
    assert (ledger / "index" / "snapshot" / "1").read_text() == "2"

    # One witness down: 3 of 4 still make the quorum.
    lrepo.witnesses[3].kill()
    lrepo.repo.add_release("cam", "1.0.0", b"one" * 100)
    cp = lrepo.checkpoint
    assert cp.startswith(ORIGIN + "\n5\n")
    assert set(cosigners(cp)) == {f"witness.test/w{i}" for i in range(3)}
    assert lrepo.repo.version("targets") == 2

    # Two down: publish fails cleanly and nothing public changes.
    lrepo.witnesses[2].kill()
    before = tree_snapshot(lrepo.dir / "public")
    img = lrepo.tmp / "fw2.img"
    img.write_bytes(b"two" * 100)
    otachain("release", "add", lrepo.dir, img, "--product", "cam", "--hardware", "board-a",
             "--version", "2.0.0", "--security-version", "0", "--name", "fw.img")
    for k in lrepo.targets_keys[:2]:
        otachain("release", "sign", lrepo.dir, "--key", k.path)
    t0 = time.monotonic()
    p = otachain("repo", "publish", lrepo.dir, check=False)
    assert time.monotonic() - t0 < 30
    assert p.returncode == 1, p.stderr
    assert "otachain: quorum:" in p.stderr
    assert "w2 (Couldn't connect" in p.stderr and "w3 (Couldn't connect" in p.stderr
    assert "w0 (" not in p.stderr and "w1 (" not in p.stderr
    assert tree_snapshot(lrepo.dir / "public") == before

    # The witnesses come back: the same pending release publishes. w0 and
    # w1 cosigned the unpublished tree, so the log kept it and extends it.
    for w in lrepo.witnesses[2:]:
        w.start()
    otachain("repo", "publish", lrepo.dir)
    assert lrepo.repo.version("targets") == 3
    cp = lrepo.checkpoint
    assert set(cosigners(cp)) == {f"witness.test/w{i}" for i in range(4)}
    otachain("ledger", "verify", lrepo.dir)


def test_changed_release_after_failed_publish_takes_next_version(lrepo):
    """A publish that fails at the quorum after two witnesses cosigned
    keeps its log entries (targets v2 among them, never served). The
    operator then changes the release: `release add` moves the pending
    targets to v3, since a logged version cannot carry other content, and
    the next publish serves v3 with both images."""
    lrepo.witnesses[2].kill()
    lrepo.witnesses[3].kill()
    before = tree_snapshot(lrepo.dir / "public")
    lrepo.repo.add_release("cam", "1.0.0", b"one" * 100, publish=False)
    p = otachain("repo", "publish", lrepo.dir, check=False)
    assert p.returncode == 1 and "otachain: quorum:" in p.stderr, p.stderr
    assert tree_snapshot(lrepo.dir / "public") == before

    img = lrepo.tmp / "fw2.img"
    img.write_bytes(b"two" * 100)
    p = otachain("release", "add", lrepo.dir, img, "--product", "cam", "--hardware", "board-a",
                 "--version", "1.0.1", "--security-version", "0", "--name", "fw.img")
    assert ("targets v2 is in the ledger from a publish that did not complete: the pending "
            "targets are now v3") in p.stdout
    for k in lrepo.targets_keys[:2]:
        otachain("release", "sign", lrepo.dir, "--key", k.path)
    # Still two witnesses down: v3 is logged too, then published as is.
    p = otachain("repo", "publish", lrepo.dir, check=False)
    assert p.returncode == 1 and "otachain: quorum:" in p.stderr, p.stderr
    for w in lrepo.witnesses[2:]:
        w.start()
    otachain("repo", "publish", lrepo.dir)
    assert lrepo.repo.version("targets") == 3
    tg = lrepo.repo.load("3.targets.json")["signed"]["targets"]
    assert "cam/1.0.0/firmware.img" in tg and "cam/1.0.1/fw.img" in tg
    assert not (lrepo.dir / "public" / "metadata" / "2.targets.json").exists()
    # The log holds targets v2 (entry 3, never served) and v3 (entry 5,
    # logged by the second failed publish and served by the third).
    index = lrepo.dir / "public" / "ledger" / "index" / "targets"
    assert [(index / v).read_text() for v in ("1", "2", "3")] == ["1", "3", "5"]
    otachain("ledger", "verify", lrepo.dir)
    # A device follows: targets jump from v1 to v3.
    v = otachain("repo", "verify", "--dir", lrepo.dir / "public", "--trusted-root",
                 lrepo.dir / "public" / "metadata" / "1.root.json",
                 "--state", lrepo.tmp / "dev")
    assert v.returncode == 0

    # A gap that the ledger does not explain is still refused.
    img.write_bytes(b"three" * 100)
    otachain("release", "add", lrepo.dir, img, "--product", "cam", "--hardware", "board-a",
             "--version", "1.0.2", "--security-version", "0", "--name", "fw.img")
    pending = lrepo.dir / "pending" / "targets.json"
    doc = json.loads(pending.read_text())
    assert doc["signed"]["version"] == 4
    doc["signed"]["version"] = 6
    pending.write_text(json.dumps(doc))
    p = otachain("release", "sign", lrepo.dir, "--key", lrepo.targets_keys[0].path, check=False)
    assert p.returncode == 1 and p.stderr.startswith("otachain: version_mismatch: "), p.stderr
    assert "pending/targets.json: version 6, expected 4" in p.stderr


def test_refresh_updates_cosignature_times(lrepo):
    before = cosigners(lrepo.checkpoint)
    body = lrepo.checkpoint.split("\n\n")[0]
    lrepo.now.write_text(str(int(lrepo.now.read_text()) + 2))
    out = otachain("repo", "refresh", lrepo.dir).stdout
    assert "cosigned again by 4 witnesses" in out
    after = cosigners(lrepo.checkpoint)
    assert lrepo.checkpoint.split("\n\n")[0] == body
    assert set(after) == set(before)
    assert all(after[n] > before[n] for n in after)


def test_witness_timeout_option(lrepo):
    # Checked before the repository is opened: a usage error, nothing run.
    for verb, bad in (("publish", "2h"), ("publish", "0s"), ("refresh", "soon")):
        r = otachain("repo", verb, lrepo.dir, "--witness-timeout", bad, check=False)
        assert r.returncode == 2, r
        assert f"--witness-timeout {bad}: a duration of 1s to 1h" in r.stderr, r.stderr
    out = otachain("repo", "refresh", lrepo.dir, "--witness-timeout", "1h").stdout
    assert "cosigned again by 4 witnesses" in out


def test_ledger_verify_show_policy_proof(lrepo):
    lrepo.repo.add_release("cam", "1.0.0", b"x" * 1000)
    out = otachain("ledger", "show", lrepo.dir).stdout
    assert f"origin {ORIGIN}" in out and "size 5" in out
    assert out.count("cosigned by witness.test/w") == 4
    out = otachain("ledger", "policy", lrepo.dir, "--trusted-root", lrepo.repo.root1).stdout
    assert "quorum witnesses" in out and f"log {lrepo.log_vkey}" in out
    otachain("ledger", "verify", lrepo.dir, "--trusted-root", lrepo.repo.root1)

    # tlog-proof@v1 of the targets v2 entry, checked here independently.
    idx = int((lrepo.dir / "public" / "ledger" / "index" / "targets" / "2").read_text())
    proof = otachain("ledger", "proof", lrepo.dir, "--index", str(idx)).stdout
    lines = proof.split("\n")
    assert lines[0] == "c2sp.org/tlog-proof@v1" and lines[1] == f"index {idx}"
    hashes = []
    for ln in lines[2:]:
        if ln == "":
            break
        hashes.append(base64.b64decode(ln))
    note = proof.split("\n\n", 1)[1]
    size = int(note.split("\n")[1])
    root = base64.b64decode(note.split("\n")[2])
    targets = (lrepo.repo.meta / "2.targets.json").read_bytes()
    rec = ("otachain-ledger-entry/v1\nrole targets\nversion 2\nlength %d\nsha256 %s\n"
           % (len(targets), sha256_hex(targets))).encode()
    assert _inclusion_root(hashlib.sha256(b"\0" + rec).digest(), idx, size, hashes) == root

    # The add-checkpoint body from size 3 (3 -> 5 takes 4 hashes), and
    # from 5: a witness at size 5 cosigns it again.
    body = otachain("ledger", "proof", lrepo.dir, "--from", "3").stdout
    head, note = body.split("\n\n", 1)
    assert head.split("\n")[0] == "old 3" and len(head.split("\n")) == 5
    assert note.startswith(ORIGIN + "\n5\n")
    body = otachain("ledger", "proof", lrepo.dir, "--from", "5").stdout
    r = lrepo.witnesses[0].add(body.encode())
    assert r.status == 200, r.text
    r = lrepo.witnesses[1].add(otachain("ledger", "proof", lrepo.dir, "--from", "3")
                               .stdout.encode())
    assert r.status == 409 and r.text == "5\n"

    # A tampered entry bundle fails the audit.
    bundle = lrepo.dir / "public" / "ledger" / "tile" / "entries" / "000.p/5"
    data = bytearray(bundle.read_bytes())
    data[40] ^= 1
    bundle.write_bytes(bytes(data))
    p = otachain("ledger", "verify", lrepo.dir, check=False)
    assert p.returncode == 1, p.stdout + p.stderr


def _inclusion_root(leaf, index, size, proof):
    """RFC 9162 §2.1.3.2, written here independently of the C code."""
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = hashlib.sha256(b"\1" + p + r).digest()
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = hashlib.sha256(b"\1" + r + p).digest()
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


def test_no_witness_repository_needs_no_network(tmp_path):
    repo = Repo.create(tmp_path / "repo")
    root = repo.load("root.json")["signed"]["x-otachain-ledger"]
    assert root["policy"][-1] == "quorum none"
    assert root["origin"].startswith("otachain.invalid/")
    assert root["max_age"] == 86400
    repo.add_release("cam", "1.0.0", b"a" * 10)
    cp = (repo.dir / "public" / "ledger" / "checkpoint").read_text()
    assert cp.split("\n")[1] == "5"
    otachain("ledger", "verify", repo.dir)
    mode = (repo.dir / "private" / "log.key").stat().st_mode & 0o777
    assert mode == 0o600


def test_monitor_reports_releases_and_flags_unexpected_signer(tmp_path):
    repo = Repo.create(tmp_path / "repo")
    repo.add_release("cam", "1.0.0", b"a" * 10)
    repo.add_release("cam", "1.1.0", b"b" * 10)
    state = tmp_path / "mon"
    from testlib import Nginx
    srv = Nginx(repo.public, tmp_path / "ng")
    srv.start()
    try:
        p = otachain("ledger", "monitor", "--url", srv.url, "--trusted-root", repo.root1,
                     "--state", state, "--once")
        assert "targets v2: cam 1.0.0" in p.stdout
        assert "targets v3: cam 1.1.0" in p.stdout
        # Nothing new: nothing printed but the size.
        p = otachain("ledger", "monitor", "--url", srv.url, "--trusted-root", repo.root1,
                     "--state", state, "--once")
        assert "targets v" not in p.stdout

        # A log that shows another history than the one already seen: the
        # stored edge (a copy, one hash flipped) no longer extends to the
        # checkpoint's root.
        import shutil
        state2 = tmp_path / "mon2"
        shutil.copytree(state, state2)
        bad = bytearray((state2 / "edge").read_bytes())
        bad[-1] ^= 1
        (state2 / "edge").write_bytes(bytes(bad))
        p = otachain("ledger", "monitor", "--url", srv.url, "--trusted-root", repo.root1,
                     "--state", state2, "--once", check=False)
        assert p.returncode == 1 and "otachain: proof:" in p.stderr, p.stderr

        # A targets version signed by a key the root does not name, logged
        # with the log key (the log key alone is not the targets threshold).
        rogue = Key.generate(tmp_path / "rogue.key")
        forged = tmp_path / "forged.json"
        from testlib import forge
        forge(repo.meta / "3.targets.json", forged, set=[("version", 4)], clear_sigs=True,
              sign=[str(rogue.path)])
        otachain("ledger", "append-forged", repo.dir, "--role", "targets", "--version", "4",
                 "--file", forged, env={"OTACHAIN_TEST_HOOKS": "1"})
        p = otachain("ledger", "monitor", "--url", srv.url, "--trusted-root", repo.root1,
                     "--state", state, "--once", check=False)
        assert p.returncode == 1, p.stdout + p.stderr
        assert "targets v4" in p.stdout + p.stderr and "threshold" in p.stderr
    finally:
        srv.stop()


def test_root_rotation_changes_witnesses(lrepo, tmp_path):
    w4 = Witness(tmp_path / "w4", "witness.test/w4",
                 [{"name": "repo", "origin": ORIGIN, "keys": [lrepo.log_vkey]}])
    w4.init()
    w4.start()
    lrepo.witnesses.append(w4)
    otachain("root", "rotate", lrepo.dir, "--add-witness",
             f"w4={w4.vkey}@http://127.0.0.1:{w4.port}", "--remove-witness", "w0",
             "--key", lrepo.root_keys[0].path, "--key", lrepo.root_keys[1].path)
    pending = json.loads((lrepo.dir / "pending" / "root.json").read_text())
    policy = pending["signed"]["x-otachain-ledger"]["policy"]
    assert policy[-2:] == ["group witnesses 3 w1 w2 w3 w4", "quorum witnesses"]
    # The rotation needs the quorum of the old policy (w0..w3) and of the
    # new one (w1..w4): all five are asked.
    otachain("repo", "publish", lrepo.dir)
    assert set(cosigners(lrepo.checkpoint)) == {f"witness.test/w{i}" for i in range(5)}
    assert lrepo.repo.version("root") == 2
    # w0 is no longer needed; w4 counts.
    lrepo.witnesses[0].kill()
    lrepo.witnesses[1].kill()
    lrepo.repo.add_release("cam", "1.0.0", b"r" * 64)
    assert set(cosigners(lrepo.checkpoint)) == {f"witness.test/w{i}" for i in (2, 3, 4)}
    out = otachain("ledger", "policy", lrepo.dir, "--trusted-root", lrepo.repo.root1).stdout
    assert "root v2" in out and "w4" in out and "witness w0 " not in out
    p = otachain("root", "rotate", lrepo.dir, "--witness-quorum", "5",
                 "--key", lrepo.root_keys[0].path, check=False)
    assert p.returncode == 2 and "--witness-quorum 5" in p.stderr


def test_validating_witness_sees_files_before_cosigning(tmp_path):
    """Publish writes the versioned metadata and the tiles before asking
    (docs/formats/ledger.md step 3), so a validating witness can check them;
    when it refuses, they are removed again."""
    lr = LedgerRepo(tmp_path, nwitnesses=1, quorum=1, validating=True)
    try:
        assert set(cosigners(lr.checkpoint)) == {"witness.test/w0"}
        lr.repo.add_release("cam", "1.0.0", b"v" * 64)
        assert lr.repo.version("targets") == 2
        before = tree_snapshot(lr.dir / "public")
        # Targets signed by one targets key only: the log would accept it
        # (the hidden hook skips TUF checks), the validating witness not.
        forged = tmp_path / "forged.json"
        from testlib import forge
        forge(lr.repo.meta / "2.targets.json", forged, set=[("version", 3)], clear_sigs=True,
              sign=[str(lr.targets_keys[0].path)])
        p = otachain("ledger", "append-forged", lr.dir, "--role", "targets", "--version", "3",
                     "--file", forged, env={"OTACHAIN_TEST_HOOKS": "1"}, check=False)
        assert p.returncode == 1 and "otachain: quorum:" in p.stderr, p.stderr
        assert "w0 (HTTP 422" in p.stderr
        assert tree_snapshot(lr.dir / "public") == before
    finally:
        lr.stop()


def test_root_checkpoint_and_staging(lrepo, tmp_path):
    """A root rotation is staged until the old and the new witness sets
    both cosign; the first checkpoint that includes the new root with the
    old set's quorum is kept at public/ledger/root-checkpoint/<N> before
    N.root.json becomes public, and never changes afterwards
    (docs/formats/ledger.md, "Per-root checkpoints")."""
    w4 = Witness(tmp_path / "w4", "witness.test/w4",
                 [{"name": "repo", "origin": ORIGIN, "keys": [lrepo.log_vkey]}])
    w4.init()
    w4.start()
    lrepo.witnesses.append(w4)
    otachain("root", "rotate", lrepo.dir, "--add-witness",
             f"w4={w4.vkey}@http://127.0.0.1:{w4.port}", "--remove-witness", "w0",
             "--key", lrepo.root_keys[0].path, "--key", lrepo.root_keys[1].path)
    public = lrepo.dir / "public"
    rootcp = public / "ledger" / "root-checkpoint" / "2"
    # Two of the old set down: the old quorum (3 of w0..w3) fails.
    lrepo.witnesses[2].kill()
    lrepo.witnesses[3].kill()
    before = tree_snapshot(public)
    p = otachain("repo", "publish", lrepo.dir, check=False)
    assert p.returncode == 1 and "otachain: quorum:" in p.stderr, p.stderr
    assert not (public / "metadata" / "2.root.json").exists()
    assert not rootcp.exists()
    assert not list((public / "staging").rglob("*.json")) if (public / "staging").exists() else True
    assert tree_snapshot(public) == before

    for w in lrepo.witnesses[2:4]:
        w.start()
    otachain("repo", "publish", lrepo.dir)
    assert lrepo.repo.version("root") == 2
    note = rootcp.read_text()
    assert note == lrepo.checkpoint
    # The old policy's quorum (3 of w0..w3) cosigned it, and the new one's.
    old_set = {f"witness.test/w{i}" for i in range(4)}
    assert len(set(cosigners(note)) & old_set) >= 3
    assert len(set(cosigners(note)) - {"witness.test/w0"}) >= 3
    # It includes root v2's entry.
    idx = int((public / "ledger" / "index" / "root" / "2").read_text())
    assert int(note.split("\n")[1]) > idx
    # Only what was logged and never live stays staged (the snapshot of
    # the first, kept tree), and the next publish keeps the file as is.
    staged = sorted(p.name for p in (public / "staging").rglob("*.json"))
    assert staged == ["2.snapshot.json"], staged
    assert not (public / "metadata" / "2.snapshot.json").exists()
    lrepo.repo.add_release("cam", "1.0.0", b"r" * 64)
    assert rootcp.read_text() == note
    assert lrepo.checkpoint != note
    # No root checkpoint for root v1 (nothing precedes it).
    assert sorted(p.name for p in (public / "ledger" / "root-checkpoint").iterdir()) == ["2"]
