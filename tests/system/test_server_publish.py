"""Upload of a pending targets version and the server's publish (issue 11,
acceptance 3; docs/api/admin-v1.md "POST /admin/v1/metadata/targets"): the
repository (targets threshold 2 of 3, a ledger with three real
otachain-witness processes, quorum 2) is hosted by otachain-server; signers
work offline in their own copies (`otachain release add`, `release sign`)
and an admin uploads the blobs and the signed targets metadata.

- below the threshold: stored as pending (200, published false), nothing public changed, the
  signers still missing named;
- a bad signature, a lower version, a blob not uploaded: refused with
  nothing changed (the pending file byte for byte, the public state);
- a second signer's copy (only its own signature): merged, and at the
  threshold the server publishes through the library's publish with its
  event-loop witness driver: live with the quorum, `repo verify` accepts;
- without the quorum (two witnesses down) nothing goes live: 503 quorum.
"""

import hashlib
import json
import shutil
import time
from pathlib import Path

import pytest

from otarepo import Key, Repo
from serverlib import Server
from testlib import free_port, otachain
from witnesslib import Witness

ORIGIN = "example.test/server-publish"


class Hosted:
    def __init__(self, tmp):
        self.tmp = Path(tmp)
        keydir = self.tmp / "keys"
        keydir.mkdir()
        self.root_keys = [Key.generate(keydir / f"root{i}.key") for i in range(2)]
        self.tkeys = [Key.generate(keydir / f"targets{i}.key") for i in range(3)]
        self.witnesses = []
        for i in range(3):
            w = Witness(self.tmp / f"w{i}", f"witness.test/w{i}", [])
            w.init()
            w.port = free_port()
            self.witnesses.append(w)
        d = self.tmp / "repo"
        args = ["repo", "init", d, "--root-threshold", "1", "--targets-threshold", "2",
                "--ledger-origin", ORIGIN, "--witness-quorum", "2",
                "--root-key", self.root_keys[0].path, "--targets-key", self.tkeys[0].path,
                "--targets-key", self.tkeys[1].path, "--targets-key", self.tkeys[2].pub]
        for i, w in enumerate(self.witnesses):
            args += ["--witness", f"w{i}={w.vkey}@http://127.0.0.1:{w.port}"]
        otachain(*args)
        pending = json.loads((d / "pending" / "root.json").read_text())
        log_vkey = pending["signed"]["x-otachain-ledger"]["policy"][0].split(" ")[1]
        for w in self.witnesses:
            w.logs = [{"name": "repo", "origin": ORIGIN, "keys": [log_vkey]}]
            w.write_config(port=w.port)
            w.start()
        otachain("repo", "publish", d)
        self.repo = Repo(d, keydir, self.root_keys, self.tkeys)

    def workstation(self, name):
        """A signer's copy of the repository as the server has it now."""
        ws = self.tmp / name
        shutil.copytree(self.repo.dir, ws, ignore=shutil.ignore_patterns(".lock"))
        return ws

    def stop(self):
        for w in self.witnesses:
            w.kill()


@pytest.fixture(name="hosted")
def hosted_fixture(tmp_path):
    h = Hosted(tmp_path)
    srv = Server(tmp_path / "srv", h.repo.dir, plain_device=True).start()
    srv.rel = srv.token("ci", "release,read")
    srv.ops = srv.token("ops", "admin")
    yield h, srv
    srv.stop()
    h.stop()
    log = srv.log_path.read_text()
    assert "Sanitizer" not in log, log[log.find("Sanitizer") - 200:][:3000]


def add_release(ws, version, data, keys):
    img = ws.parent / f"img-{version}"
    img.write_bytes(data)
    otachain("release", "add", ws, img, "--product", "cam", "--hardware", "rev-a", "--version",
             version, "--security-version", "1", "--name", "fw.img")
    for k in keys:
        otachain("release", "sign", ws, "--key", k.path)
    return ws / "pending" / "targets.json"


def upload_blobs(srv, ws, server_repo):
    for b in sorted((ws / "blobs").iterdir()):
        if (server_repo / "blobs" / b.name).exists():
            continue
        r = srv.admin(srv.rel).request("PUT", f"/admin/v1/blobs/{b.name}", body=b.read_bytes(),
                                       headers={"Content-Type": "application/octet-stream"})
        assert r.status == 200 and r.json["complete"], (b.name, r.text)


def put_targets(srv, data, token=None):
    return srv.admin(token or srv.rel).request("POST", "/admin/v1/metadata/targets", body=data,
                                               headers={"Content-Type": "application/json"})


def public_state(repo):
    pub = repo.dir / "public"
    return {str(p.relative_to(pub)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(pub.rglob("*")) if p.is_file()}


def audit(srv, action):
    entries = srv.admin(srv.ops).get("/admin/v1/audit").json["entries"]
    return [e for e in entries if e["action"] == action]


def test_upload_pending_merge_publish_and_refusals(hosted, tmp_path):
    h, srv = hosted
    repo = h.repo
    k0, k1, k2 = h.tkeys
    before = public_state(repo)
    ts0 = repo.version("timestamp")

    # Signer A: a release in its own copy, signed by targets key 0.
    ws_a = h.workstation("ws-a")
    pend_a = add_release(ws_a, "1.1.0", b"\x11" * 70000, [k0])
    # Without its blobs: refused, nothing stored.
    r = put_targets(srv, pend_a.read_bytes())
    assert r.status == 404 and r.json["error"] == "not_found", r.text
    assert "was not uploaded" in r.json["message"]
    assert not (repo.dir / "pending" / "targets.json").exists()
    upload_blobs(srv, ws_a, repo.dir)
    # The read scope is not enough.
    ro = srv.token("ro", "read")
    assert put_targets(srv, pend_a.read_bytes(), token=ro).status == 403

    r = put_targets(srv, pend_a.read_bytes())
    assert r.status == 200, r.text
    assert r.json["version"] == 2 and r.json["published"] is False and r.json["publish"] is None
    sigs = r.json["signatures"]
    assert sigs["valid"] == 1 and sigs["threshold"] == 2 and sigs["signed"] == [k0.keyid]
    assert sorted(sigs["missing"]) == sorted([k1.keyid, k2.keyid])
    assert "1 of 2" in r.json["message"]
    assert public_state(repo) == before
    stored = (repo.dir / "pending" / "targets.json").read_bytes()
    up = audit(srv, "targets.upload")
    assert up and up[0]["outcome"] == "pending" and up[0]["object"] == "targets v2"

    # Refusals, each with nothing changed.
    doc = json.loads(pend_a.read_text())
    sig = doc["signatures"][0]["sig"]
    doc["signatures"][0]["sig"] = ("0" if sig[0] != "0" else "1") + sig[1:]
    r = put_targets(srv, json.dumps(doc).encode())
    assert r.status == 422 and r.json["error"] == "bad_signature", r.text
    assert k0.keyid in r.json["message"]
    r = put_targets(srv, (repo.dir / "public" / "metadata" / "1.targets.json").read_bytes())
    assert r.status == 409 and r.json["error"] == "rollback", r.text
    assert "not above the published v1" in r.json["message"]
    r = put_targets(srv, b'{"signed": ')
    assert r.status == 400, r.text
    # The same version with other content (another release, its blob
    # uploaded): the pending one stays.
    ws_c = h.workstation("ws-c")
    pend_c = add_release(ws_c, "1.1.1", b"\x12" * 5000, [k0])
    upload_blobs(srv, ws_c, repo.dir)
    r = put_targets(srv, pend_c.read_bytes())
    assert r.status == 409 and r.json["error"] == "exists", r.text
    assert (repo.dir / "pending" / "targets.json").read_bytes() == stored
    assert public_state(repo) == before
    outcomes = {e["outcome"] for e in audit(srv, "targets.upload")}
    assert {"exists", "bad_signature", "rollback", "not_found"} <= outcomes, outcomes

    # Signer B: the same pending file with only its own signature.
    ws_b = h.workstation("ws-b")
    shutil.copy(pend_a, ws_b / "pending" / "targets.json")
    doc = json.loads(pend_a.read_text())
    doc["signatures"] = []
    (ws_b / "pending" / "targets.json").write_text(json.dumps(doc, indent=2, sort_keys=True))
    otachain("release", "sign", ws_b, "--key", k1.path)
    assert [s["keyid"] for s in
            json.loads((ws_b / "pending" / "targets.json").read_text())["signatures"]] == \
        [k1.keyid]
    r = put_targets(srv, (ws_b / "pending" / "targets.json").read_bytes())
    assert r.status == 200, r.text
    assert r.json["published"] is True and r.json["version"] == 2
    assert sorted(r.json["signatures"]["signed"]) == sorted([k0.keyid, k1.keyid])
    assert r.json["publish"]["cosigned"] >= 2
    assert r.json["publish"]["timestamp"] == repo.version("timestamp")
    cp = (repo.dir / "public" / "ledger" / "checkpoint").read_text().split("\n")
    assert r.json["publish"]["checkpoint"] == int(cp[1])
    assert repo.version("targets") == 2 and repo.version("timestamp") > ts0
    pub = audit(srv, "targets.publish")
    assert pub and pub[0]["outcome"] == "ok"
    # The server serves the new state, and a device-side verify accepts it.
    deadline = time.monotonic() + 30
    while srv.admin(srv.ops).get("/admin/v1/status").json["repository"]["targets"] != 2:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    out = otachain("repo", "verify", "--dir", repo.dir / "public", "--trusted-root", repo.root1,
                   "--state", tmp_path / "dev").stdout
    assert "targets v2" in out, out
    assert srv.admin(srv.ops).get("/admin/v1/releases").json["releases"][0]["version"] == "1.1.0"

    # Without the quorum: two witnesses down, a fully signed v3 stays
    # pending, nothing public changes.
    after = public_state(repo)
    ws_d = h.workstation("ws-d")
    pend_d = add_release(ws_d, "1.2.0", b"\x13" * 9000, [k0, k1])
    upload_blobs(srv, ws_d, repo.dir)
    h.witnesses[1].kill()
    h.witnesses[2].kill()
    r = put_targets(srv, pend_d.read_bytes())
    assert r.status == 503 and r.json["error"] == "quorum", r.text
    assert repo.version("targets") == 2
    now = public_state(repo)
    assert {k: v for k, v in now.items() if k.startswith("metadata/")} == \
        {k: v for k, v in after.items() if k.startswith("metadata/")}
    assert now.get("ledger/checkpoint") == after.get("ledger/checkpoint")
