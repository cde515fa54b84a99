"""One table of bad histories, run against both `otachain ledger monitor`
and a validating otachain-witness (issue 8, acceptance 6): each refuses
every history, for the same reason. Both run the one release-rule engine
(include/otachain/ledger_rules.h); a monitor must never be the weaker
check.

Each history starts from a repository with a ledger (root v1, targets
v1..v2, snapshot v1..v2 logged and live) and appends forged metadata with
the log key (the hidden `ledger append-forged` verb: a log operator turned
rogue). The monitor reads the public repository over HTTP from root v1;
the witness, validating with root v1 as its anchor, is asked to cosign the
whole log from size 0.
"""

import json
import shutil
from pathlib import Path

import pytest

from otarepo import Key, Repo
from testlib import forge, otachain
from witnesslib import Witness

HOOKS = {"OTACHAIN_TEST_HOOKS": "1"}


def _forged(work, name, src, set=(), sign=(), clear=True):
    out = work.parent / f"forged-{name}.json"
    forge(work / "public" / "metadata" / src, out, set=set, clear_sigs=clear,
          sign=[str(k) for k in sign])
    return out


def _key(work, role):
    return work / "private" / f"{role}.key"


# name, build(work, repo, rogue) -> [(role, version, file)], errname, reason
HISTORIES = [
    ("targets below the targets threshold",
     lambda w, r, k: [("targets", 3, _forged(w, "t", "2.targets.json", [("version", 3)],
                                             [r.targets_keys[0].path]))],
     "threshold", "below the targets threshold of the latest logged root"),
    ("targets signed by a key the root does not name",
     lambda w, r, k: [("targets", 3, _forged(w, "t", "2.targets.json", [("version", 3)], [k]))],
     "threshold", "below the targets threshold"),
    ("targets version going back",
     lambda w, r, k: [("targets", 2, _forged(w, "t", "2.targets.json", [("expires",
                                                                         "2099-01-01T00:00:00Z")],
                                             r.targets_keys[:2]))],
     "rollback", "versions only increase"),
    ("root not signed by the previous root's threshold",
     lambda w, r, k: [("root", 2, _forged(w, "r", "1.root.json", [("version", 2)], [k]))],
     "threshold", "not signed by the root threshold of the previous root"),
    ("root version skipped",
     lambda w, r, k: [("root", 3, _forged(w, "r", "1.root.json", [("version", 3)],
                                          r.root_keys[:2]))],
     "rollback", "root versions go up by exactly one"),
    ("snapshot below the snapshot threshold",
     lambda w, r, k: [("snapshot", 3, _forged(w, "s", "2.snapshot.json", [("version", 3)], [k]))],
     "threshold", "below the snapshot threshold"),
    ("snapshot pinning an older targets version",
     lambda w, r, k: [("snapshot", 3, _forged(w, "s", "2.snapshot.json", [
         ("version", 3), ("meta/targets.json", {"version": 1})], [_key(w, "snapshot")]))],
     "version_mismatch", "does not pin the latest logged targets"),
    ("logged version not the one inside the file",
     lambda w, r, k: [("targets", 4, _forged(w, "t", "2.targets.json", [("version", 3)],
                                             r.targets_keys[:2]))],
     "version_mismatch", "version 3 inside, the log says 4"),
]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("histories")
    repo = Repo.create(tmp / "repo")
    repo.add_release("cam", "1.0.0", b"one" * 100)
    return tmp, repo


@pytest.mark.parametrize("name,build,errname,reason", HISTORIES, ids=[h[0] for h in HISTORIES])
def test_monitor_and_witness_refuse_the_same(base, tmp_path, nginx_factory, name, build, errname,
                                             reason):
    tmp, repo = base
    work = tmp_path / "repo"
    shutil.copytree(repo.dir, work, symlinks=True)
    rogue = Key.generate(tmp_path / "rogue.key")
    for role, version, f in build(work, repo, rogue.path):
        otachain("ledger", "append-forged", work, "--role", role, "--version", str(version),
                 "--file", f, env=HOOKS)
    public = work / "public"
    root1 = public / "metadata" / "1.root.json"

    # The monitor, from root v1, over HTTP.
    srv = nginx_factory(root=public)
    p = otachain("ledger", "monitor", "--url", srv.url, "--trusted-root", root1, "--once",
                 check=False)
    assert p.returncode == 1, (name, p.stdout, p.stderr)
    assert p.stderr.startswith(f"otachain: {errname}: "), (name, p.stderr)
    assert reason in p.stderr, (name, p.stderr)

    # The validating witness, anchored at root v1, asked for the whole log.
    ledger = json.loads(root1.read_text())["signed"]["x-otachain-ledger"]
    log_vkey = ledger["policy"][0].split(" ")[1]
    w = Witness(tmp_path / "w", "witness.test/v", [{
        "name": "repo", "origin": ledger["origin"], "keys": [log_vkey],
        "tiles_url": public / "ledger", "repo_url": public, "anchor": root1}])
    w.init()
    w.start()
    try:
        body = otachain("ledger", "proof", work, "--from", "0").stdout
        r = w.add(body.encode())
        assert r.status == 422, (name, r.status, r.text)
        assert reason in r.text, (name, r.text)
    finally:
        assert w.stop() == 0


def test_the_good_history_passes_both(base, tmp_path, nginx_factory):
    """The table's control: the unforged log passes the monitor and the
    witness cosigns it."""
    tmp, repo = base
    public = repo.public
    root1 = public / "metadata" / "1.root.json"
    srv = nginx_factory(root=public)
    otachain("ledger", "monitor", "--url", srv.url, "--trusted-root", root1, "--once")
    ledger = json.loads(root1.read_text())["signed"]["x-otachain-ledger"]
    w = Witness(tmp_path / "w", "witness.test/v", [{
        "name": "repo", "origin": ledger["origin"], "keys": [ledger["policy"][0].split(" ")[1]],
        "tiles_url": public / "ledger", "repo_url": public, "anchor": root1}])
    w.init()
    w.start()
    try:
        r = w.add(otachain("ledger", "proof", repo.dir, "--from", "0").stdout.encode())
        assert r.status == 200, r.text
    finally:
        assert w.stop() == 0
