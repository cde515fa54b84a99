"""Uploads to otachain-server (issue 11, the upload endpoint; docs/api/
admin-v1.md "Upload"): blobs in bounded parts, content-addressed.

- parts are appended in order (an out-of-order part is refused with where
  to resume), the last one completes the blob only if its SHA-256 is the
  name (else it is dropped), a complete blob takes no more bytes;
- the release scope is needed; every completed upload and every refusal
  is in the audit trail; parts above max_part_bytes are refused;
- a pack (not a target) is taken by the name of its image.
"""

import hashlib
import os

import pytest

from otarepo import Repo
from serverlib import Server


@pytest.fixture(name="hosted", scope="module")
def hosted_fixture(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("upload")
    repo = Repo.create(tmp / "repo", ledger=False)
    srv = Server(tmp / "srv", repo.dir, plain_device=True,
                 settings={"limits.max_part_bytes": "65536"}).start()
    srv.rel = srv.token("ci", "release,read")
    srv.ops = srv.token("ops", "admin")
    yield repo, srv
    srv.stop()


def part(srv, name, data, first, last, total, token=None):
    return srv.admin(token or srv.rel).request(
        "PUT", f"/admin/v1/blobs/{name}", body=data[first:last + 1],
        headers={"Content-Range": f"bytes {first}-{last}/{total}",
                 "Content-Type": "application/octet-stream"})


def test_blob_in_parts(hosted):
    repo, srv = hosted
    blob = os.urandom(150_000)
    name = hashlib.sha256(blob).hexdigest()
    assert srv.admin(srv.rel).get(f"/admin/v1/blobs/{name}").status == 404
    r = part(srv, name, blob, 0, 65535, len(blob))
    assert r.status == 200 and r.json == {"received": 65536, "length": len(blob),
                                          "complete": False}
    # A part that does not start where the stored bytes end: where to resume.
    r = part(srv, name, blob, 0, 65535, len(blob))
    assert r.status == 409 and r.json["error"] == "exists" and r.json["received"] == 65536
    r = part(srv, name, blob, 70000, 80000, len(blob))
    assert r.status == 409 and r.json["received"] == 65536
    r = srv.admin(srv.rel).get(f"/admin/v1/blobs/{name}")
    assert r.json == {"received": 65536, "length": len(blob), "complete": False}
    assert part(srv, name, blob, 65536, 131071, len(blob)).json["complete"] is False
    r = part(srv, name, blob, 131072, len(blob) - 1, len(blob))
    assert r.json == {"received": len(blob), "length": len(blob), "complete": True}
    assert (repo.dir / "blobs" / name).read_bytes() == blob
    # Complete: more parts change nothing.
    assert part(srv, name, blob, 0, 99, len(blob)).json["complete"] is True
    assert (repo.dir / "blobs" / name).read_bytes() == blob
    entries = srv.admin(srv.ops).get("/admin/v1/audit").json["entries"]
    done = [e for e in entries if e["action"] == "blob.upload" and e["object"] == name]
    assert done and done[0]["outcome"] == "ok" and "(ci)" in done[0]["actor"]


def test_blob_refusals(hosted):
    repo, srv = hosted
    blob = os.urandom(1000)
    name = hashlib.sha256(blob).hexdigest()
    # Bytes that do not hash to the name: dropped when the last part arrives.
    wrong = bytearray(blob)
    wrong[500] ^= 1
    assert part(srv, name, bytes(wrong), 0, 499, 1000).status == 200
    r = part(srv, name, bytes(wrong), 500, 999, 1000)
    assert r.status == 422 and r.json["error"] == "hash_mismatch", r.text
    assert not (repo.dir / "blobs" / name).exists()
    assert srv.admin(srv.rel).get(f"/admin/v1/blobs/{name}").status == 404
    # Then the right bytes, in one part without Content-Range.
    r = srv.admin(srv.rel).request("PUT", f"/admin/v1/blobs/{name}", body=blob)
    assert r.json["complete"] is True
    # Another total than the upload started with; a malformed range; a
    # body that is not the range; a part above max_part_bytes.
    other = hashlib.sha256(b"other").hexdigest()
    assert part(srv, other, b"x" * 100, 0, 9, 100).status == 200
    r = part(srv, other, b"x" * 200, 10, 19, 200)
    assert r.status == 422 and r.json["error"] == "length_mismatch"
    r = srv.admin(srv.rel).request("PUT", f"/admin/v1/blobs/{other}", body=b"x" * 10,
                                   headers={"Content-Range": "bytes 10-19"})
    assert r.status == 400 and r.json["error"] == "format"
    r = srv.admin(srv.rel).request("PUT", f"/admin/v1/blobs/{other}", body=b"x" * 5,
                                   headers={"Content-Range": "bytes 10-19/100"})
    assert r.status == 400
    big = hashlib.sha256(b"big").hexdigest()
    r = part(srv, big, b"y" * 70000, 0, 69999, 200000)
    assert r.status == 413 and r.json["error"] == "too_large"
    # Names: a SHA-256, or <sha256>.pack; nothing else.
    for bad in ("x", "../repo.json", name.upper()):
        assert srv.admin(srv.rel).request("PUT", f"/admin/v1/blobs/{bad}", body=b"1").status \
            == 404
    # The scope.
    read = srv.token("ro", "read")
    r = part(srv, name, blob, 0, 9, 1000, token=read)
    assert r.status == 403 and r.json["error"] == "scope"
    entries = srv.admin(srv.ops).get("/admin/v1/audit").json["entries"]
    assert any(e["action"] == "blob.upload" and e["outcome"] == "hash_mismatch"
               for e in entries)
    assert any(e["action"] == "blob.upload" and e["outcome"] == "scope" for e in entries)


def test_pack_by_image_name(hosted):
    repo, srv = hosted
    image = hashlib.sha256(b"the image").hexdigest()
    pack = os.urandom(3000)
    r = part(srv, f"{image}.pack", pack, 0, 2999, 3000)
    assert r.status == 200 and r.json["complete"] is True
    assert (repo.dir / "blobs" / f"{image}.pack").read_bytes() == pack
