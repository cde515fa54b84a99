"""The authoring side of `otachain` as an operator uses it: multi-party
signing (also on separate copies, merged), the refusals with their exit
codes and error names (docs/cli.md), refresh, status, key hygiene.
Every published state is checked by our client and by tuf-js."""

import json
import os
import shutil

import pytest

from otarepo import CClient, Key, TufJsClient
from testlib import otachain


def err(p):
    """(exit code, errname) of a failed command."""
    lines = [ln for ln in p.stderr.splitlines() if ln.startswith("otachain: ")]
    assert lines, p.stderr
    return p.returncode, lines[-1].split(": ")[1]


@pytest.fixture
def keys(tmp_path):
    d = tmp_path / "keys"
    d.mkdir()
    return {n: Key.generate(d / f"{n}.key") for n in ("r1", "r2", "r3", "t1", "t2", "t3")}


def init(tmp_path, keys, sign_targets=True):
    repo = tmp_path / "repo"
    args = ["repo", "init", repo, "--root-threshold", "2", "--targets-threshold", "2"]
    for n in ("r1", "r2"):
        args += ["--root-key", keys[n]]
    args += ["--root-key", keys["r3"].pub]
    for n in ("t1", "t2"):
        args += ["--targets-key", keys[n] if sign_targets else keys[n].pub]
    args += ["--targets-key", keys["t3"].pub]
    otachain(*args)
    return repo


def test_release_signed_on_separate_copies_and_merged(tmp_path, keys, nginx_factory):
    repo = init(tmp_path, keys)
    img = tmp_path / "cam.img"
    img.write_bytes(os.urandom(50_000))
    otachain("release", "add", repo, img, "--product", "cam", "--hardware", "rev-a,rev-b",
             "--version", "1.2.0-rc.1", "--security-version", "3")
    pending = json.loads((repo / "pending" / "targets.json").read_text())
    t = pending["signed"]["targets"]["cam/1.2.0-rc.1/cam.img"]
    assert t["custom"] == {"product": "cam", "hardware": ["rev-a", "rev-b"],
                           "version": "1.2.0-rc.1", "security_version": 3,
                           "index": "cam/1.2.0-rc.1/cam.img.cidx"}

    # Two signers, each on a copy of the repository directory.
    copy_a, copy_b = tmp_path / "signer-a", tmp_path / "signer-b"
    shutil.copytree(repo, copy_a)
    shutil.copytree(repo, copy_b)
    otachain("release", "sign", copy_a, "--key", keys["t1"])
    otachain("release", "sign", copy_b, "--key", keys["t3"])

    p = otachain("repo", "publish", repo, check=False)
    assert err(p) == (1, "threshold")
    assert "0 of 2" in p.stderr

    otachain("release", "merge", repo, copy_a / "pending" / "targets.json")
    p = otachain("repo", "publish", repo, check=False)
    assert err(p) == (1, "threshold")
    assert "1 of 2" in p.stderr
    p = otachain("release", "merge", repo, copy_b / "pending" / "targets.json")
    assert "2 of 2" in p.stdout
    otachain("repo", "publish", repo)
    assert not (repo / "pending" / "targets.json").exists()

    srv = nginx_factory(root=repo / "public")
    root1 = repo / "public" / "metadata" / "1.root.json"
    out = tmp_path / "got"
    assert CClient(tmp_path / "c", srv.url, root1).refresh("cam/1.2.0-rc.1/cam.img", out).ok
    assert out.read_bytes() == img.read_bytes()
    rj = TufJsClient(tmp_path / "j", srv.url, root1).refresh("cam/1.2.0-rc.1/cam.img",
                                                               tmp_path / "got-j")
    assert rj.ok, rj.message


def test_merge_refuses_other_content_and_drops_foreign_signatures(tmp_path, keys):
    repo = init(tmp_path, keys)
    img = tmp_path / "fw.img"
    img.write_bytes(b"a" * 1000)
    otachain("release", "add", repo, img, "--product", "fw", "--hardware", "h",
             "--version", "1.0.0", "--security-version", "0")
    other = tmp_path / "other"
    shutil.copytree(repo, other)
    otachain("release", "add", other, img, "--product", "fw", "--hardware", "h",
             "--version", "1.0.1", "--security-version", "0")
    otachain("release", "sign", other, "--key", keys["t1"])
    p = otachain("release", "merge", repo, other / "pending" / "targets.json", check=False)
    assert p.returncode == 1, p.stderr
    assert "differ" in p.stderr

    # A copy whose signature entry is forged (right keyid, wrong bytes).
    same = tmp_path / "same"
    shutil.copytree(repo, same)
    otachain("release", "sign", same, "--key", keys["t2"])
    doc = json.loads((same / "pending" / "targets.json").read_text())
    s = doc["signatures"][0]["sig"]
    doc["signatures"][0]["sig"] = ("0" if s[0] != "0" else "1") + s[1:]
    (same / "pending" / "targets.json").write_text(json.dumps(doc))
    p = otachain("release", "merge", repo, same / "pending" / "targets.json", check=False)
    assert "warning" in p.stderr
    assert "0 of 2" in p.stdout


def test_refusals_and_exit_codes(tmp_path, keys):
    repo = init(tmp_path, keys)
    img = tmp_path / "fw.img"
    img.write_bytes(b"x" * 100)

    def add(*extra, check=False):
        return otachain("release", "add", repo, img, "--product", "fw", "--hardware", "h",
                        *extra, check=check)

    assert err(add("--version", "1.0", "--security-version", "1")) == (2, "invalid_arg")
    assert err(add("--version", "1.0.0", "--security-version", "-1")) == (2, "invalid_arg")
    assert err(add("--version", "01.0.0", "--security-version", "1")) == (2, "invalid_arg")
    add("--version", "1.0.0", "--security-version", "1", check=True)
    assert err(add("--version", "1.0.0", "--security-version", "1"))[1] == "exists"

    # A root key is not a targets key.
    p = otachain("release", "sign", repo, "--key", keys["r1"], check=False)
    assert err(p) == (1, "key_not_in_role")
    # A public key file cannot sign; a group-readable secret key is refused.
    p = otachain("release", "sign", repo, "--key", keys["t1"].pub, check=False)
    assert p.returncode != 0
    os.chmod(keys["t2"].path, 0o640)
    p = otachain("release", "sign", repo, "--key", keys["t2"], check=False)
    assert err(p) == (3, "permission")
    os.chmod(keys["t2"].path, 0o600)

    assert otachain("frobnicate", check=False).returncode == 2
    assert otachain("repo", "publish", check=False).returncode == 2
    p = otachain("key", "generate", "--out", keys["t1"].path, check=False)
    assert err(p) == (3, "exists")


def test_root_signed_later_by_a_second_holder(tmp_path, keys):
    # Only r1 signs at init: root v1 stays pending until r2 signs.
    repo = tmp_path / "repo"
    otachain("repo", "init", repo, "--root-key", keys["r1"], "--root-key", keys["r2"].pub,
             "--root-threshold", "2", "--targets-key", keys["t1"], "--targets-threshold", "1")
    assert not (repo / "public" / "metadata" / "timestamp.json").exists()
    p = otachain("repo", "publish", repo, check=False)
    assert err(p) == (1, "threshold")
    otachain("root", "sign", repo, "--key", keys["r2"])
    otachain("repo", "publish", repo)
    meta = repo / "public" / "metadata"
    assert json.loads((meta / "timestamp.json").read_text())["signed"]["version"] == 1
    assert (meta / "1.root.json").read_bytes() == (meta / "root.json").read_bytes()


def test_refresh_and_status(tmp_path, keys, nginx_factory):
    repo = init(tmp_path, keys, sign_targets=True)
    meta = repo / "public" / "metadata"
    ts1 = json.loads((meta / "timestamp.json").read_text())["signed"]
    otachain("repo", "refresh", repo)
    ts2 = json.loads((meta / "timestamp.json").read_text())["signed"]
    assert ts2["version"] == ts1["version"] + 1
    assert ts2["meta"] == ts1["meta"]
    otachain("repo", "refresh", repo, "--snapshot")
    ts3 = json.loads((meta / "timestamp.json").read_text())["signed"]
    assert ts3["meta"]["snapshot.json"]["version"] == ts1["meta"]["snapshot.json"]["version"] + 1

    st = otachain("repo", "status", repo).stdout
    for word in ("root", "targets", "snapshot", "timestamp", keys["t1"].keyid):
        assert word in st, word

    srv = nginx_factory(root=repo / "public")
    root1 = meta / "1.root.json"
    assert CClient(tmp_path / "c", srv.url, root1).refresh().ok
    assert TufJsClient(tmp_path / "j", srv.url, root1).refresh().ok


def test_tampered_published_metadata_is_noticed_by_the_authoring_side(tmp_path, keys):
    repo = init(tmp_path, keys)
    f = repo / "public" / "metadata" / "1.targets.json"
    good = f.read_bytes()
    # Same length, other bytes: the snapshot's hash pin catches it.
    f.write_bytes(good.replace(b'"expires":"2', b'"expires":"3', 1))
    assert err(otachain("repo", "status", repo, check=False)) == (1, "hash_mismatch")
    # Longer than pinned.
    f.write_bytes(good + b" ")
    assert err(otachain("repo", "status", repo, check=False)) == (1, "length_mismatch")
    f.write_bytes(good)
    otachain("repo", "status", repo)
