"""The four UpdaThing endpoints at their otachain routes (issue 11,
acceptance 2; docs/api/README.md has the mapping): status and body schema
of each, over real mutual TLS.

- "I'm Alive" check-in: POST /api/v1/checkin
- newest-update query: GET /api/v1/update (device), GET
  /admin/v1/releases/newest (operator)
- download by id: GET /api/v1/download/{sha256}
- upload: PUT /admin/v1/blobs/{sha256} (tests/system/test_server_upload.py
  covers the metadata and publish part)
"""

import hashlib
import os
import re

import pytest

from otarepo import Repo
from serverlib import Fleet, Server, checkin_body, trusted_now

HEX64 = re.compile(r"^[0-9a-f]{64}$")


def check_schema(value, schema, where="$"):
    """Checks value against a small schema: a type, a dict of member ->
    schema (exactly these members), ("null-or", schema), or a callable."""
    if isinstance(schema, tuple) and schema[0] == "null-or":
        if value is None:
            return
        schema = schema[1]
    if isinstance(schema, dict):
        assert isinstance(value, dict), f"{where}: not an object: {value!r}"
        assert set(value) == set(schema), f"{where}: members {sorted(value)} != {sorted(schema)}"
        for k, s in schema.items():
            check_schema(value[k], s, f"{where}.{k}")
    elif callable(schema) and not isinstance(schema, type):
        assert schema(value), f"{where}: {value!r} rejected"
    else:
        assert isinstance(value, schema) and not (schema is int and isinstance(value, bool)), \
            f"{where}: {value!r} is not {schema}"


ASSIGNMENT = {
    "target": str, "version": str, "security_version": int, "length": int,
    "sha256": lambda v: isinstance(v, str) and HEX64.match(v), "index": str,
}
CHECKIN_REPLY = {"poll_interval": lambda v: isinstance(v, int) and v >= 1,
                 "assignment": ("null-or", ASSIGNMENT),
                 "bundle": ("null-or", str)}
ERROR = {"error": str, "message": str}


@pytest.fixture(name="hosted", scope="module")
def hosted_fixture(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("api")
    repo = Repo.create(tmp / "repo", ledger=False)
    img = os.urandom(100_000)
    repo.add_release("cam", "1.1.0", img, hardware="rev-a", security_version=3)
    fleet = Fleet.create(tmp / "fleet")
    srv = Server(tmp / "srv", repo.dir, fleet).start()
    dev = srv.device(fleet.device("cam-api"))
    yield repo, img, srv, dev
    srv.stop()


def test_checkin(hosted):
    repo, img, srv, dev = hosted
    r = dev.checkin(checkin_body(hardware="rev-a", version="1.0.0"))
    assert r.status == 200 and r.headers["content-type"] == "application/json"
    assert r.headers["cache-control"] == "no-store"
    check_schema(r.json, CHECKIN_REPLY)
    a = r.json["assignment"]
    assert a == {"target": "cam/1.1.0/firmware.img", "version": "1.1.0", "security_version": 3,
                 "length": len(img), "sha256": hashlib.sha256(img).hexdigest(),
                 "index": "cam/1.1.0/firmware.img.cidx"}
    assert isinstance(r.json["bundle"], str)  # test_server_bundle.py verifies it
    # Current: a few hundred bytes.
    body = checkin_body(hardware="rev-a", version="1.1.0")
    body["trusted"] = trusted_now(repo)
    r = dev.checkin(body)
    check_schema(r.json, CHECKIN_REPLY)
    assert r.json["assignment"] is None and r.json["bundle"] is None and len(r.body) < 100
    r = dev.checkin({"running": {}})
    assert r.status == 400
    check_schema(r.json, ERROR)


def test_newest_update_query(hosted):
    repo, img, srv, dev = hosted
    assert dev.checkin(checkin_body(hardware="rev-a", version="1.0.0")).status == 200
    r = dev.get("/api/v1/update")
    assert r.status == 200
    check_schema(r.json, {"assignment": ("null-or", ASSIGNMENT)})
    assert r.json["assignment"]["version"] == "1.1.0"
    r = dev.get("/api/v1/update?product=cam&hardware=rev-a&version=1.1.0")
    check_schema(r.json, {"assignment": ("null-or", ASSIGNMENT)})
    assert r.json["assignment"] is None
    r = dev.get("/api/v1/update?product=cam")
    assert r.status == 400
    check_schema(r.json, ERROR)
    # A device that never checked in.
    other = srv.device(srv.fleet.device("cam-api-new"))
    r = other.get("/api/v1/update")
    assert r.status == 404 and r.json["error"] == "not_found"
    # The operator's query.
    tok = srv.token("api-ro", "read")
    r = srv.admin(tok).get("/admin/v1/releases/newest?product=cam&hardware=rev-a")
    release = {"target": str, "product": str, "hardware": list, "version": str,
               "security_version": int, "length": int,
               "sha256": lambda v: isinstance(v, str) and HEX64.match(v),
               "index": ("null-or", str)}
    assert r.status == 200
    check_schema(r.json, {"release": ("null-or", release)})
    assert r.json["release"]["version"] == "1.1.0" and r.json["release"]["hardware"] == ["rev-a"]
    r = srv.admin(tok).get("/admin/v1/releases/newest?product=cam&hardware=rev-a&version=1.1.0")
    assert r.json == {"release": None}
    r = srv.admin(tok).get("/admin/v1/releases")
    check_schema(r.json, {"releases": list})
    for rel in r.json["releases"]:
        check_schema(rel, release)


def test_download_by_id(hosted):
    repo, img, srv, dev = hosted
    sha = hashlib.sha256(img).hexdigest()
    r = dev.get(f"/api/v1/download/{sha}")
    assert r.status == 200 and r.body == img
    assert r.headers["etag"] == f'"{sha}"'
    assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert r.headers["content-type"] == "application/octet-stream"
    r = dev.get(f"/api/v1/download/{sha}", headers={"Range": "bytes=100-199"})
    assert r.status == 206 and r.body == img[100:200]
    r = dev.get(f"/api/v1/download/{sha}", headers={"If-None-Match": f'"{sha}"'})
    assert r.status == 304
    # The chunk index target is published too.
    tgt = repo.load(f"{repo.version('targets')}.targets.json")["signed"]["targets"]
    idx = tgt["cam/1.1.0/firmware.img.cidx"]["hashes"]["sha256"]
    r = dev.get(f"/api/v1/download/{idx}")
    assert r.status == 200 and hashlib.sha256(r.body).hexdigest() == idx
    # Unknown ids, malformed ids, and an upload that is not published.
    for bad in ("0" * 64, sha.upper(), sha[:63], "../../repo.json"):
        r = dev.get(f"/api/v1/download/{bad}")
        assert r.status == 404, bad
        check_schema(r.json, ERROR)
    pending = os.urandom(5000)
    repo.add_release("cam", "1.2.0", pending, hardware="rev-a", publish=False)
    r = dev.get(f"/api/v1/download/{hashlib.sha256(pending).hexdigest()}")
    assert r.status == 404
    # Downloads never write to the database.
    with srv.db() as db:
        before = db.execute("SELECT count(*), max(last_seen) FROM devices").fetchone()
    dev.get(f"/api/v1/download/{sha}")
    with srv.db() as db:
        assert db.execute("SELECT count(*), max(last_seen) FROM devices").fetchone() == before
