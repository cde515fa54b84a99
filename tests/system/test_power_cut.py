"""Power cuts on the authoring side (issue 8, acceptance 3).

Each command is first run once with OTACHAIN_FS_TRACE=1 to enumerate its
file-system steps, then run again from the same starting state with
OTACHAIN_POWER_CUT=N for every N: the process loses, just before step N,
everything it had not made durable (docs/internals/test-hooks.md: data not
fsynced is lost or torn, a name not made durable by its directory's fsync
is lost), then dies. Afterwards:

- the next command completes (publish recovers an interrupted publish);
- the repository verifies for a TUF client starting from root v1, and the
  ledger audit (`ledger verify`) passes: nothing public names a missing or
  torn file;
- no tree a witness may have cosigned is lost: the witness, which keeps
  running with what it stored, cosigns the next publish.

Commands: `repo publish` without witnesses, with a witness through a root
rotation that changes the witness set, `repo refresh --snapshot`, `release
add` and `root rotate`. Every command and witness reads the same injected
clock.

`test_power_cut_catches_a_skipped_fsync` shows the suite can fail: with
the fsync of timestamp.json disabled, some cut leaves a torn
timestamp.json behind and the checks above refuse the repository.

Where the cuts run: with OTACHAIN_POWER_CUT_BIN_DIR set (make check sets
it to build-cut/, an optimised build with test hooks and no sanitizer), every
step is cut with the programs of that build, then a sample (every
OTACHAIN_POWER_CUT_SAMPLE-th step, default 6, and the last) again with the
programs of OTACHAIN_BIN_DIR (ASan in make check), so the recovery code
runs under the sanitizers too. Without it every step is cut with the
programs of OTACHAIN_BIN_DIR. OTACHAIN_POWER_CUT_EVERY=K (default 1) cuts
every K-th step only, for a quick look on a slow machine. The work
directories live on tmpfs (/dev/shm) when there is one: the model of what
survives a cut is the hook's journal, not the disk, so real fsyncs only
cost time here.
"""

import json
import os
import re
import shutil
import signal
import tempfile
import time
from pathlib import Path

import pytest

from otarepo import Key, Repo
from testlib import free_port, otachain, programs_of
from witnesslib import Witness

# One clock reading for every command of the run (the TUF client of `repo
# verify` reads the system clock, which is the same within minutes).
NOW = str(int(time.time()))
ORIGIN = "example.test/cut"
EVERY = int(os.environ.get("OTACHAIN_POWER_CUT_EVERY", "1"))
CUT_BIN = os.environ.get("OTACHAIN_POWER_CUT_BIN_DIR")
SAMPLE = int(os.environ.get("OTACHAIN_POWER_CUT_SAMPLE", "6"))


@pytest.fixture
def tmp_path(tmp_path):
    """tmp_path on tmpfs when /dev/shm is there (removed afterwards)."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path
        return
    d = Path(tempfile.mkdtemp(prefix="otachain-cut-", dir=shm))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def trace_steps(args, env=None):
    """Runs args once, uncut, and returns its steps as (kind, path)."""
    p = otachain(*args, check=False, env={"OTACHAIN_FS_TRACE": "1", "OTACHAIN_TEST_NOW": NOW,
                                           **(env or {})})
    assert p.returncode == 0, p.stderr
    steps = [tuple(ln.split(None, 3)[2:4]) for ln in p.stderr.splitlines()
             if ln.startswith("fs-step ")]
    assert steps, p.stderr
    return steps


def cut(args, n, env=None):
    p = otachain(*args, check=False, env={"OTACHAIN_POWER_CUT": str(n), "OTACHAIN_TEST_NOW": NOW,
                                           **(env or {})})
    assert p.returncode == -signal.SIGKILL, (n, p.returncode, p.stderr)


def restore(src, dst):
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst, symlinks=True)


def check_repo(repo_dir, state, want_targets=None):
    """A client from root v1 verifies; the ledger audits; every file the
    live metadata names is there."""
    public = repo_dir / "public"
    if state.exists():
        shutil.rmtree(state)
    p = otachain("repo", "verify", "--dir", public, "--trusted-root",
                 public / "metadata" / "1.root.json", "--state", state, check=False,
                 env={"OTACHAIN_TEST_NOW": NOW})
    assert p.returncode == 0, p.stderr
    ts = json.loads((public / "metadata" / "timestamp.json").read_text())["signed"]
    sv = ts["meta"]["snapshot.json"]["version"]
    snap = json.loads((public / "metadata" / f"{sv}.snapshot.json").read_text())["signed"]
    tv = snap["meta"]["targets.json"]["version"]
    targets = json.loads((public / "metadata" / f"{tv}.targets.json").read_text())["signed"]
    for path, t in targets["targets"].items():
        d, name = os.path.split(path)
        f = public / "targets" / d / (t["hashes"]["sha256"] + "." + name)
        assert f.stat().st_size == t["length"], path
    if want_targets is not None:
        assert tv == want_targets, (tv, want_targets)
    if (public / "ledger" / "checkpoint").exists():
        p = otachain("ledger", "verify", repo_dir, check=False, env={"OTACHAIN_TEST_NOW": NOW})
        assert p.returncode == 0, p.stderr
    return tv


def enumerate_cuts(tmp_path, base, args_of, after, env=None, witnesses=(), first=None,
                   sample=True):
    """Restores base into a work directory, cuts args_of(dir) before each
    step (from the first step for which first(kind, path) holds, when
    given), then runs after(dir, n, kind) (the next command and the
    checks). With CUT_BIN, the sample under OTACHAIN_BIN_DIR follows unless
    sample is false. Returns the set of step kinds."""
    work = tmp_path / "work"

    def run(numbers):
        restore(base, work)
        for w in witnesses:
            w.reset()
        steps = trace_steps(args_of(work), env)
        start = 1
        if first is not None:
            start = next(i for i, st in enumerate(steps, 1) if first(*st))
        for n in numbers(start, len(steps)):
            restore(base, work)
            for w in witnesses:
                w.reset()
            cut(args_of(work), n, env)
            after(work, n, steps[n - 1][0])
        return {k for k, _ in steps}

    if CUT_BIN is None:
        return run(lambda a, b: range(a, b + 1, EVERY))
    with programs_of(CUT_BIN):
        kinds = run(lambda a, b: range(a, b + 1, EVERY))
    if sample:
        run(lambda a, b: sorted(set(range(a, b + 1, SAMPLE)) | {b}))
    return kinds


class CutWitness:
    """A witness whose state is put back to a saved copy before each cut
    (it is restarted on it), with the injected clock."""

    def __init__(self, tmp_path, name, origin, log_vkey):
        self.w = Witness(tmp_path / name, f"witness.test/{name}",
                         [{"name": "repo", "origin": origin, "keys": [log_vkey]}])
        self.saved = tmp_path / f"{name}-saved-state"

    def init(self):
        vkey = self.w.init()
        self.w.write_config(port=free_port())  # the same URL across restarts
        return vkey

    def start(self):
        self.w.start(env={"OTACHAIN_TEST_NOW": NOW})

    def save(self):
        self.w.stop()
        if self.saved.exists():
            shutil.rmtree(self.saved)
        shutil.copytree(self.w.state_dir, self.saved)
        self.start()

    def reset(self):
        self.w.stop()
        shutil.rmtree(self.w.state_dir)
        shutil.copytree(self.saved, self.w.state_dir)
        self.start()

    def stop(self):
        self.w.kill()


def test_power_cut_publish_without_witnesses(tmp_path):
    repo = Repo.create(tmp_path / "repo")
    repo.add_release("cam", "1.0.0", b"one" * 200, publish=False)
    base = tmp_path / "base"
    restore(repo.dir, base)
    shutil.copytree(repo.keydir, tmp_path / "work-keys")

    def after(work, n, step):
        p = otachain("repo", "publish", work, check=False, env={"OTACHAIN_TEST_NOW": NOW})
        assert p.returncode == 0, (n, step, p.stderr)
        check_repo(work, tmp_path / "client", want_targets=2)

    kinds = enumerate_cuts(tmp_path, base, lambda d: ["repo", "publish", d], after)
    assert {"create", "write", "fsync", "rename", "dirsync", "commit"} <= kinds, kinds


def test_power_cut_publish_with_witness_set_change(tmp_path):
    """A root rotation that replaces witness w0 with w1: the publish asks
    both, needs both quorums, and keeps root v2's checkpoint."""
    keydir = tmp_path / "keys"
    keydir.mkdir()
    root_keys = [Key.generate(keydir / f"root{i}.key") for i in range(2)]
    targets_key = Key.generate(keydir / "targets.key")
    dir = tmp_path / "repo"
    # Root v1 without a witness named yet: created, its log key read, then
    # the witnesses are configured and w0 is added by a rotation below.
    otachain("repo", "init", dir, "--root-threshold", "1", "--targets-threshold", "1",
             "--ledger-origin", ORIGIN, "--root-key", root_keys[0].path,
             "--targets-key", targets_key.path, env={"OTACHAIN_TEST_NOW": NOW})
    root = json.loads((dir / "public" / "metadata" / "root.json").read_text())
    log_vkey = root["signed"]["x-otachain-ledger"]["policy"][0].split(" ")[1]
    ws = [CutWitness(tmp_path, f"w{i}", ORIGIN, log_vkey) for i in range(2)]
    try:
        for w in ws:
            w.init()
            w.start()
        otachain("root", "rotate", dir, "--add-witness",
                 f"w0={ws[0].w.vkey}@http://127.0.0.1:{ws[0].w.port}", "--witness-quorum", "1",
                 "--key", root_keys[0].path, env={"OTACHAIN_TEST_NOW": NOW})
        otachain("repo", "publish", dir, env={"OTACHAIN_TEST_NOW": NOW})
        # The witness-set change, pending: w1 replaces w0.
        otachain("root", "rotate", dir, "--add-witness",
                 f"w1={ws[1].w.vkey}@http://127.0.0.1:{ws[1].w.port}", "--remove-witness", "w0",
                 "--key", root_keys[0].path, env={"OTACHAIN_TEST_NOW": NOW})
        for w in ws:
            w.save()
        base = tmp_path / "base"
        restore(dir, base)

        def after(work, n, step):
            p = otachain("repo", "publish", work, check=False, env={"OTACHAIN_TEST_NOW": NOW})
            assert p.returncode == 0, (n, step, p.stderr)
            check_repo(work, tmp_path / "client")
            assert json.loads((work / "public" / "metadata" / "root.json").read_text())[
                "signed"]["version"] == 3
            assert (work / "public" / "ledger" / "root-checkpoint" / "3").exists(), (n, step)
            # Every tree a witness stored extends into the log's: the next
            # publish (a snapshot refresh) is cosigned by w1 again.
            p = otachain("repo", "refresh", work, "--snapshot", check=False,
                         env={"OTACHAIN_TEST_NOW": NOW})
            assert p.returncode == 0, (n, step, p.stderr)

        kinds = enumerate_cuts(tmp_path, base, lambda d: ["repo", "publish", d], after,
                               witnesses=ws)
        assert {"rename", "dirsync", "commit"} <= kinds, kinds
    finally:
        for w in ws:
            w.stop()


def test_power_cut_refresh_release_add_root_rotate(tmp_path):
    repo = Repo.create(tmp_path / "repo", expires=["snapshot=7d"])
    repo.add_release("cam", "1.0.0", b"one" * 200)
    base = tmp_path / "base"
    restore(repo.dir, base)
    img = tmp_path / "fw2.img"
    img.write_bytes(os.urandom(300000))

    def after_refresh(work, n, step):
        p = otachain("repo", "refresh", work, "--snapshot", check=False,
                     env={"OTACHAIN_TEST_NOW": NOW})
        assert p.returncode == 0, (n, step, p.stderr)
        check_repo(work, tmp_path / "client", want_targets=2)

    enumerate_cuts(tmp_path, base, lambda d: ["repo", "refresh", d, "--snapshot"],
                   after_refresh)

    def after_add(work, n, step):
        args = ["release", "add", work, img, "--product", "cam", "--hardware", "board-a",
                "--version", "2.0.0", "--security-version", "0", "--name", "fw.img"]
        p = otachain(*args, check=False, env={"OTACHAIN_TEST_NOW": NOW})
        assert p.returncode == 0, (n, step, p.stderr)
        for k in repo.targets_keys[:2]:
            otachain("release", "sign", work, "--key", k.path, env={"OTACHAIN_TEST_NOW": NOW})
        otachain("repo", "publish", work, env={"OTACHAIN_TEST_NOW": NOW})
        check_repo(work, tmp_path / "client", want_targets=3)
        # No temporary left where the next release would look.
        assert not [p for p in (work / "blobs").iterdir() if ".tmp-" in p.name], n

    enumerate_cuts(tmp_path, base, lambda d: [
        "release", "add", d, img, "--product", "cam", "--hardware", "board-a", "--version",
        "2.0.0", "--security-version", "0", "--name", "fw.img"], after_add)

    rot = ["--rotate-online-key", "timestamp"]

    def after_rotate(work, n, step):
        p = otachain("root", "rotate", work, *rot, "--key", repo.root_keys[0].path, "--key",
                     repo.root_keys[1].path, check=False, env={"OTACHAIN_TEST_NOW": NOW})
        # A rotation that got as far as its pending root refuses a second.
        assert p.returncode == 0 or "already pending" in p.stderr, (n, step, p.stderr)
        otachain("repo", "publish", work, env={"OTACHAIN_TEST_NOW": NOW})
        check_repo(work, tmp_path / "client")
        assert json.loads((work / "public" / "metadata" / "root.json").read_text())[
            "signed"]["version"] == 2

    enumerate_cuts(tmp_path, base, lambda d: ["root", "rotate", d, *rot, "--key",
                                              repo.root_keys[0].path, "--key",
                                              repo.root_keys[1].path], after_rotate)


def test_power_cut_catches_a_skipped_fsync(tmp_path):
    """The same enumeration with the fsync of timestamp.json disabled: some
    cut leaves it torn, and the checks refuse the repository. Without that,
    a missing fsync could hide behind kill -9, which keeps the page cache."""
    repo = Repo.create(tmp_path / "repo")
    repo.add_release("cam", "1.0.0", b"one" * 200, publish=False)
    base = tmp_path / "base"
    restore(repo.dir, base)
    skip = {"OTACHAIN_SKIP_FSYNC": "/timestamp.json"}
    failures = []

    def after(work, n, step):
        p = otachain("repo", "publish", work, check=False, env={"OTACHAIN_TEST_NOW": NOW})
        try:
            assert p.returncode == 0, p.stderr
            check_repo(work, tmp_path / "client", want_targets=2)
        except AssertionError as e:
            failures.append((n, step, str(e).splitlines()[0] if str(e) else ""))

    # The cuts from the new timestamp's creation on (before it nothing
    # depends on the skipped fsync), with the fast programs only.
    kinds = enumerate_cuts(tmp_path, base, lambda d: ["repo", "publish", d], after, env=skip,
                           first=lambda kind, path: kind == "create" and
                           path.endswith("/metadata/timestamp.json"), sample=False)
    assert "fsync" in kinds
    assert failures, "no cut noticed the missing fsync"


def test_power_cut_publish_root_rotation_without_ledger(tmp_path):
    """A repository without a ledger publishes a root rotation and a
    release at once: a cut after the new root went public leaves its
    pending file behind, which the next publish removes (R3)."""
    repo = Repo.create(tmp_path / "repo", ledger=False)
    otachain("root", "rotate", repo.dir, "--rotate-online-key", "timestamp", "--key",
             repo.root_keys[0].path, "--key", repo.root_keys[1].path)
    repo.add_release("cam", "1.0.0", b"one" * 200, publish=False)
    base = tmp_path / "base"
    restore(repo.dir, base)

    def after(work, n, step):
        p = otachain("repo", "publish", work, check=False, env={"OTACHAIN_TEST_NOW": NOW})
        assert p.returncode == 0 or "nothing to publish" in p.stdout + p.stderr, (n, step,
                                                                                 p.stderr)
        check_repo(work, tmp_path / "client", want_targets=2)
        assert json.loads((work / "public" / "metadata" / "root.json").read_text())[
            "signed"]["version"] == 2
        assert not (work / "pending" / "root.json").exists(), n

    enumerate_cuts(tmp_path, base, lambda d: ["repo", "publish", d], after)
