"""Self-test of the independent test tools, without any otachain code.

A tiny TUF repository is written by forge.mjs, served by the nginx fixture and
read by the tuf-js client, so that a failure in an otachain interop test
points at otachain, not at the harness.
"""

import hashlib
import json

from testlib import ed25519_pem_from_seed, forge

SEED = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
PUB = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
KEYID = "74c181c7ad8a0855d4b55e44d2ba87aabdddb196832571f15f92fece332e4916"
EXPIRES = "2099-01-01T00:00:00Z"
FIRMWARE = b"otachain harness firmware\n" * 100


def _meta(t, version, **fields):
    signed = {"_type": t, "spec_version": "1.0.31", "version": version, "expires": EXPIRES}
    signed.update(fields)
    return {"signed": signed, "signatures": []}


def _signed_file(tmp, www, name, meta, key):
    src = tmp / f"unsigned.{name}"
    src.write_text(json.dumps(meta))
    forge(src, www / name, sign=[key])
    return www / name


def _make_repo(tmp, www):
    key = ed25519_pem_from_seed(SEED, tmp / "key.pem")
    (www / "targets").mkdir(parents=True)
    digest = hashlib.sha256(FIRMWARE).hexdigest()
    (www / "targets" / f"{digest}.fw.bin").write_bytes(FIRMWARE)
    role = {"keyids": [KEYID], "threshold": 1}
    root = _meta(
        "root", 1,
        consistent_snapshot=True,
        keys={KEYID: {"keytype": "ed25519", "scheme": "ed25519", "keyval": {"public": PUB}}},
        roles={r: role for r in ("root", "targets", "snapshot", "timestamp")},
    )
    _signed_file(tmp, www, "1.root.json", root, key)
    targets = _meta(
        "targets", 1,
        targets={"fw.bin": {"length": len(FIRMWARE), "hashes": {"sha256": digest},
                            "custom": {"version": "1.0.0"}}},
    )
    _signed_file(tmp, www, "1.targets.json", targets, key)
    _signed_file(tmp, www, "1.snapshot.json", _meta("snapshot", 1, meta={"targets.json": {"version": 1}}), key)
    _signed_file(tmp, www, "timestamp.json", _meta("timestamp", 1, meta={"snapshot.json": {"version": 1}}), key)
    return key


def test_tufjs_fetches_forged_repo_from_nginx(tmp_path, nginx, tufjs):
    _make_repo(tmp_path, nginx.root)
    out = tmp_path / "dl" / "fw.bin"
    out.parent.mkdir()
    res = tufjs(nginx.url, nginx.url + "/targets", nginx.root / "1.root.json",
                tmp_path / "cache", target="fw.bin", out=out)
    assert res["ok"] is True, res
    assert (res["root_version"], res["timestamp_version"], res["snapshot_version"],
            res["targets_version"]) == (1, 1, 1, 1)
    assert res["target"]["custom"] == {"version": "1.0.0"}
    assert out.read_bytes() == FIRMWARE
    assert "GET /timestamp.json HTTP/1.1 200" in " ".join(nginx.access_log())
    assert ("GET", "/2.root.json", 404) in [r[:3] for r in nginx.requests()]


def test_tufjs_refuses_edited_timestamp(tmp_path, nginx, tufjs):
    _make_repo(tmp_path, nginx.root)
    ts = nginx.root / "timestamp.json"
    forge(ts, ts, set=["version=2"])  # edited, old signature kept
    res = tufjs(nginx.url, nginx.url + "/targets", nginx.root / "1.root.json", tmp_path / "cache")
    assert res["ok"] is False
    assert res["error"] == "UnsignedMetadataError", res


def test_tufjs_refuses_duplicate_signature_below_threshold(tmp_path, nginx, tufjs):
    # A second copy of one key's signature must not count twice (threshold 2).
    # tuf-js 3 refuses the file outright when parsing it: ValueError
    # "multiple signatures found for keyid".
    key = _make_repo(tmp_path, nginx.root)
    root = nginx.root / "1.root.json"
    forge(root, root, set=[("roles/timestamp/threshold", 2)], clear_sigs=True, sign=[key])
    ts = nginx.root / "timestamp.json"
    forge(ts, ts, dup_sig=True)
    res = tufjs(nginx.url, nginx.url + "/targets", root, tmp_path / "cache")
    assert res["ok"] is False
    assert res["error"] == "ValueError", res
    assert "multiple signatures" in res["message"]
