"""The check-in's proof bundle (issue 11, acceptance 4; docs/api/device-v1.md,
docs/formats/bundle.md): otachain-server hosts a repository published by
`repo publish` with real otachain-witness processes; devices left along its
history (bootstrap root only, a few versions behind, before a root rotation
that changes the witness set, current) check in over mutual TLS with what
their state says they trust, and the bundle in the answer verifies with the
device-side verifier (`otachain repo verify --bundle`) from each of them; its
checkpoint, cosignature, inclusion and consistency proofs also verify with
Go's golang.org/x/mod/sumdb checker of the interop tests. Bundles are cached
per (trusted versions, published state): a second device at the same state
costs no build, a publish makes new ones. One test: the repository with its
witnesses is the cost (CI time).
"""

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from serverlib import Fleet, Server, checkin_body
from testlib import INTEROP

# The repository history and the device of the bundle tests (issue 9).
sys.path.insert(0, str(Path(__file__).parent))
from test_bundle import BundleRepo, Device, latest, parse  # noqa: E402

ROOT, ROOT_CP, CHECKPOINT, CONSISTENCY, INCLUSION = 1, 2, 6, 7, 8


@pytest.fixture(name="tlogcheck", scope="module")
def tlogcheck_fixture(tmp_path_factory):
    if shutil.which("go") is None:
        pytest.fail("go not found: run scripts/install-deps (make deps)", pytrace=False)
    d = tmp_path_factory.mktemp("go")
    env = dict(os.environ, GO111MODULE="off", GOPATH="/usr/share/gocode",
               GOCACHE=str(d / "cache"), GOFLAGS="", GOPROXY="off")
    exe = d / "tlogcheck"
    subprocess.run(["go", "build", "-o", str(exe), str(INTEROP / "go" / "tlogcheck.go")],
                   check=True, env=env, timeout=300)
    return exe


def report(dev):
    """The check-in body of a device whose state directory dev.state holds
    what `repo verify` left (docs/api/device-v1.md, "trusted")."""
    req = dict(zip(dev.request[0::2], dev.request[1::2]))
    body = checkin_body(root_version=int(req["--root-version"]))
    t = body["trusted"]
    for opt, key in (("--snapshot-version", "snapshot_version"),
                     ("--targets-version", "targets_version")):
        if int(req.get(opt, "0")) > 0:
            t[key] = int(req[opt])
    ts = dev.state / "timestamp.json"
    if ts.exists():
        t["timestamp_version"] = json.loads(ts.read_text())["signed"]["version"]
    cp = dev.state / "checkpoint"
    if cp.exists():
        lines = cp.read_text().split("\n")
        assert int(lines[1]) == int(req["--checkpoint-size"])
        t["checkpoint"] = {"size": int(lines[1]), "hash": lines[2]}
    return body


def metric(srv, tok, name):
    text = srv.admin(tok).get("/metrics").text
    line = [ln for ln in text.splitlines() if ln.startswith(name + " ")]
    return int(line[0].split()[1])


def entry_hash(role, version, data):
    """The ledger's leaf hash of a metadata file (docs/formats/ledger.md,
    "Entry record"), computed here from the file's bytes."""
    rec = (f"otachain-ledger-entry/v1\nrole {role}\nversion {version}\nlength {len(data)}\n"
           f"sha256 {hashlib.sha256(data).hexdigest()}\n").encode()
    return base64.b64encode(hashlib.sha256(b"\x00" + rec).digest()).decode()


def go_check(tlogcheck, tmp, note, vkeys, proofs):
    """Runs the Go checker on one checkpoint note and its proofs."""
    tmp.mkdir()
    (tmp / "checkpoint").write_bytes(note)
    (tmp / "vkeys").write_text("\n".join(vkeys) + "\n")
    (tmp / "proofs").write_text("\n".join(proofs) + "\n")
    p = subprocess.run([str(tlogcheck), str(tmp)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return p.stdout


def b64(h):
    return base64.b64encode(h).decode()


def hashes(body, off, n):
    return [b64(body[off + 32 * i:off + 32 * (i + 1)]) for i in range(n)]


@pytest.fixture(name="history")
def history_fixture(tmp_path):
    """The repository and the devices along its history (as test_bundle's):
    bootstrap (no state), behind (root 1, first publish), rotation (a few
    releases later, before root 2 changes the witness set)."""
    r = BundleRepo(tmp_path)
    devs = {name: Device(r, tmp_path / name) for name in ("bootstrap", "behind", "rotation")}
    devs["behind"].verify_dir()
    for i in range(2):
        r.repo.add_release("cam", f"1.{i}.0", b"fw%d" % i * 500, sign=1)
    devs["rotation"].verify_dir()
    r.repo.add_release("cam", "1.2.0", b"fw2" * 500, sign=1)
    r.change_witnesses()
    fleet = Fleet.create(tmp_path / "fleet")
    srv = Server(tmp_path / "srv", r.repo.dir, fleet).start()
    yield r, devs, fleet, srv
    srv.stop()
    r.stop()


def test_checkin_bundle_from_every_starting_point(history, tmp_path, tlogcheck):
    r, devs, fleet, srv = history
    ops = srv.token("ops", "read")
    assert r.repo.version("root") == 2
    got, before = {}, {}
    for name, dev in devs.items():
        c = srv.device(fleet.device(f"cam-{name}"))
        cp = dev.state / "checkpoint"
        before[name] = cp.read_text() if cp.exists() else None
        res = c.checkin(report(dev))
        assert res.status == 200, res.text
        assert isinstance(res.json["bundle"], str), res.json
        data = base64.b64decode(res.json["bundle"], validate=True)
        path = tmp_path / f"{name}.bundle"
        path.write_bytes(data)
        h, recs = parse(data)
        assert h["base_root"] == 1 and h["newest_root"] == 2
        err, out = dev.verify_bundle(path)
        assert err is None, out
        assert latest(r) in out, out
        got[name] = (h, recs)
    built = metric(srv, ops, "otachain_bundles_built_total")
    assert built == 3

    # Current: the device reports what the bundle left it; no bundle.
    dev = devs["rotation"]
    c = srv.device(fleet.device("cam-rotation"))
    res = c.checkin(report(dev))
    assert res.status == 200 and res.json["bundle"] is None, res.json
    assert len(res.body) < 512, res.body
    # A second device at the behind state (bootstrap: root 1, nothing
    # else): the cached bundle, byte for byte, no build.
    hits = metric(srv, ops, "otachain_bundle_cache_hits_total")
    res = srv.device(fleet.device("cam-twin")).checkin(report(Device(r, tmp_path / "twin")))
    assert res.status == 200
    assert base64.b64decode(res.json["bundle"]) == (tmp_path / "bootstrap.bundle").read_bytes()
    assert metric(srv, ops, "otachain_bundles_built_total") == built
    assert metric(srv, ops, "otachain_bundle_cache_hits_total") == hits + 1

    # A root the repository never had: 409 bundle_base, naming it.
    res = c.checkin(checkin_body(root_version=7))
    assert res.status == 409 and res.json["error"] == "bundle_base", res.text
    assert "root version 7" in res.json["message"]

    # The Go x/mod checker: the final checkpoint (log signature, a
    # cosignature of the new witness set), the snapshot's and the roots'
    # inclusion proofs and the consistency proof from the device's
    # checkpoint; each root checkpoint with its root's inclusion under the
    # old witness set.
    h, recs = got["behind"]
    note = [b for t, b in recs if t == CHECKPOINT][0]
    size = int(note.split(b"\n")[1])
    files = {}
    for t, b in recs:
        if t == ROOT:
            files[("root", int.from_bytes(b[:8], "big"))] = b[8:]
        elif t == 4:
            files[("snapshot", int.from_bytes(b[:8], "big"))] = b[8:]
    # Per-root checkpoints where the log keeps them (docs/formats/ledger.md);
    # a log from before them proves the new root in the final tree.
    rcps = {int.from_bytes(b[:8], "big"): b[8:] for t, b in recs if t == ROOT_CP}
    by_size = {}
    for t, b in recs:
        if t == INCLUSION:
            role = {1: "root", 2: "snapshot"}[b[0]]
            v, index, sz, n = (int.from_bytes(b[1:9], "big"), int.from_bytes(b[9:17], "big"),
                               int.from_bytes(b[17:25], "big"), b[25])
            leaf = entry_hash(role, v, files[(role, v)])
            by_size.setdefault(sz, []).append(
                " ".join(["inclusion", str(index), leaf, *hashes(b, 26, n)]))
        elif t == CONSISTENCY:
            s1, s2, n = int.from_bytes(b[:8], "big"), int.from_bytes(b[8:16], "big"), b[16]
            if s1 == h["base_size"]:
                old = before["behind"].split("\n")
                assert int(old[1]) == s1
                r1 = old[2]
            else:
                r1 = [x for x in rcps.values() if int(x.split(b"\n")[1]) == s1][0] \
                    .split(b"\n")[2].decode()
            assert s2 == size
            by_size.setdefault(s2, []).append(" ".join(["consistency", str(s1), r1,
                                                        *hashes(b, 17, n)]))
    assert any(p.startswith("consistency") for p in by_size[size])
    root2 = entry_hash("root", 2, files[("root", 2)])
    assert any(f" {root2} " in p for ps in by_size.values() for p in ps)
    w_new = [w for w in r.witnesses if w.name == "witness.test/w3"][0]
    out = go_check(tlogcheck, tmp_path / "go-final", note, [r.log_vkey, w_new.vkey],
                   by_size[size])
    assert f"ok checkpoint signature origin=" in out and f"size={size}" in out
    assert "ok cosignature" in out and "ok inclusion" in out and "ok consistency" in out
    w_old = [w for w in r.witnesses if w.name == "witness.test/w0"][0]
    for v, rcp in rcps.items():
        rsize = int(rcp.split(b"\n")[1])
        proofs = by_size.get(rsize) or []
        assert any(p.startswith("inclusion") for p in proofs), (v, rsize, by_size.keys())
        out = go_check(tlogcheck, tmp_path / f"go-root-{v}", rcp, [r.log_vkey, w_old.vkey],
                       [p for p in proofs if p.startswith("inclusion")])
        assert "ok inclusion" in out


    # A publish makes a new state: the same device state gets a new bundle
    # leading to it, built once.
    built = metric(srv, ops, "otachain_bundles_built_total")
    r.repo.add_release("cam", "1.3.0", b"fw3" * 500, sign=1)
    ts = r.repo.version("timestamp")
    deadline = time.monotonic() + 30
    while srv.admin(ops).get("/admin/v1/status").json["repository"]["timestamp"] != ts:
        assert time.monotonic() < deadline, "the server never reloaded the repository"
        time.sleep(0.1)
    # The device that was current before it (root 2, the new witnesses).
    dev = devs["rotation"]
    res = srv.device(fleet.device("cam-rotation")).checkin(report(dev))
    assert res.status == 200
    data = base64.b64decode(res.json["bundle"])
    assert metric(srv, ops, "otachain_bundles_built_total") == built + 1
    (tmp_path / "after.bundle").write_bytes(data)
    err, out = dev.verify_bundle(tmp_path / "after.bundle")
    assert err is None, out
    assert latest(r) in out
