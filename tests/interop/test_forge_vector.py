"""forge.mjs against the known-answer vector of ../shared/vectors/README.md.

The forger is the independent signer of the attack tests, so it must itself
agree with the vector: RFC 8032 test 1 seed, TUF keyid, Ed25519 signature over
the canonical JSON of a timestamp "signed" object.
"""

import json

from testlib import ed25519_pem_from_seed, forge

SEED = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
KEYID = "74c181c7ad8a0855d4b55e44d2ba87aabdddb196832571f15f92fece332e4916"
SIG = (
    "c92efdd8c6c1c1bce36033eee122aae3de414794c80823054daf8e34a825f8c2"
    "598b19f7810a46a80a123c5b427af900557676cdbbb5861ff488fc9bf72bc103"
)
SIGNED = {
    "_type": "timestamp",
    "expires": "2030-01-01T00:00:00Z",
    "meta": {"snapshot.json": {"version": 1}},
    "spec_version": "1.0.31",
    "version": 1,
}


def _write(path, obj):
    path.write_text(json.dumps(obj, indent=1))
    return path


def test_sign_matches_vector(tmp_path):
    key = ed25519_pem_from_seed(SEED, tmp_path / "key.pem")
    src = _write(tmp_path / "in.json", {"signed": SIGNED, "signatures": []})
    out = tmp_path / "out.json"
    forge(src, out, sign=[key])
    meta = json.loads(out.read_text())
    assert meta["signed"] == SIGNED
    assert meta["signatures"] == [{"keyid": KEYID, "sig": SIG}]


def test_edit_then_sign_reaches_vector(tmp_path):
    # Start from different content and reach the vector's object by edits
    # (dotted key via "/" paths, string fallback for expires).
    key = ed25519_pem_from_seed(SEED, tmp_path / "key.pem")
    start = dict(SIGNED, version=7, expires="2020-01-01T00:00:00Z", meta={"snapshot.json": {"version": 9}})
    stale = {"keyid": KEYID, "sig": "00" * 64}
    src = _write(tmp_path / "in.json", {"signed": start, "signatures": [stale]})
    out = tmp_path / "out.json"
    forge(
        src,
        out,
        set=["version=1", "expires=2030-01-01T00:00:00Z", "meta/snapshot.json/version=1"],
        sign=[key],
    )
    meta = json.loads(out.read_text())
    assert meta["signed"] == SIGNED
    # The stale signature of the same key is replaced, not kept beside.
    assert meta["signatures"] == [{"keyid": KEYID, "sig": SIG}]


def test_edit_without_sign_keeps_old_signature(tmp_path):
    src = _write(tmp_path / "in.json", {"signed": SIGNED, "signatures": [{"keyid": KEYID, "sig": SIG}]})
    out = tmp_path / "out.json"
    forge(src, out, set=[("version", 2)])
    meta = json.loads(out.read_text())
    assert meta["signed"]["version"] == 2
    assert meta["signatures"] == [{"keyid": KEYID, "sig": SIG}]


def test_clear_and_dup_sig(tmp_path):
    key = ed25519_pem_from_seed(SEED, tmp_path / "key.pem")
    src = _write(tmp_path / "in.json", {"signed": SIGNED, "signatures": [{"keyid": "ab" * 32, "sig": "cd" * 64}]})
    out = tmp_path / "out.json"
    forge(src, out, clear_sigs=True, sign=[key], dup_sig=True)
    meta = json.loads(out.read_text())
    assert meta["signatures"] == [{"keyid": KEYID, "sig": SIG}, {"keyid": KEYID, "sig": SIG}]
