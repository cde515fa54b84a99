"""The trusted metadata on disk is never left half-written (issue 2,
acceptance 5): `repo verify` is killed with SIGKILL just before each
file-system step on its trusted state (every create, write, fsync, rename,
directory fsync and unlink; OTACHAIN_CRASH_AT=N), and the next run still
verifies and ends in the same state as an uninterrupted run.

Two starting points, each with real work at every stage:
- "fresh": an empty state, so the run bootstraps root v1, walks the root
  chain to v3 and stores timestamp, snapshot and targets;
- "base": a state that trusted the repository before two root rotations;
  the second rotates the timestamp key, so the run also deletes the trusted
  timestamp and snapshot (fast-forward recovery) before storing new ones.
"""

import json
import re
import signal

from otarepo import CClient, Repo, copy_state
from testlib import otachain

STATE_FILES = ("root.json", "timestamp.json", "snapshot.json", "targets.json")


def versions(state):
    return {n: json.loads((state / n).read_text())["signed"]["version"] for n in STATE_FILES}


def verify(repo, srv, state, env):
    return otachain("repo", "verify", "--url", srv.url, "--trusted-root", repo.root1,
                    "--state", state, check=False, env=env)


def test_kill9_at_every_state_step(tmp_path, nginx_factory):
    repo = Repo.create(tmp_path / "repo")
    repo.add_release("fw", "1.0.0", data=b"firmware" * 5000)
    srv = nginx_factory(root=repo.public)
    base = CClient(tmp_path / "base", srv.url, repo.root1)
    assert base.refresh().ok

    r = repo.root_keys
    repo.rotate_root(["--threshold", "targets=2"], [r[0], r[1]])
    repo.rotate_root(["--rotate-online-key", "timestamp"], [r[0], r[1]])
    target = repo.add_release("fw", "1.1.0", data=b"firmware-2" * 5000)

    for start in ("fresh", "base"):
        # An uninterrupted run: the steps to crash at, and the end state.
        ref = tmp_path / f"{start}-ref"
        if start == "base":
            copy_state(base.state, ref)
        p = verify(repo, srv, ref, {"OTACHAIN_FS_TRACE": "1"})
        assert p.returncode == 0, p.stderr
        steps = [ln for ln in p.stderr.splitlines() if ln.startswith("fs-step ")]
        kinds = {re.split(r"\s+", ln)[2] for ln in steps}
        assert len(steps) >= 20, steps
        assert {"write", "fsync", "rename"} <= kinds, kinds
        if start == "base":
            assert "unlink" in kinds, kinds
        want = versions(ref)
        assert want["root.json"] == 3
        # The ledger's checkpoint (the repository has one, quorum none) is
        # stored last; a kill leaves the old one or the new one, whole.
        want_cp = (ref / "checkpoint").read_bytes()
        whole_cps = {want_cp}
        if start == "base":
            whole_cps.add((base.state / "checkpoint").read_bytes())

        for n in range(1, len(steps) + 1):
            state = tmp_path / f"{start}-{n}"
            if start == "base":
                copy_state(base.state, state)
            p = verify(repo, srv, state, {"OTACHAIN_CRASH_AT": str(n)})
            assert p.returncode == -signal.SIGKILL, (start, n, p.returncode, p.stderr)
            # Whatever the kill left is whole: every state file parses.
            for f in state.iterdir():
                if f.name in STATE_FILES:
                    json.loads(f.read_text())
                if f.name == "checkpoint":
                    assert f.read_bytes() in whole_cps, (start, n, steps[n - 1])
            c = CClient(state, srv.url, repo.root1)
            res = c.refresh(target=target, out=tmp_path / f"img-{start}-{n}")
            assert res.ok, (start, n, steps[n - 1], res.message)
            assert versions(state) == want, (start, n, steps[n - 1])
            assert (state / "checkpoint").read_bytes() == want_cp, (start, n, steps[n - 1])
