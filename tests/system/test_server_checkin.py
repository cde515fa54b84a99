"""Check-ins through otachain-server (issue 11, acceptance 6 and the
check-in rules of docs/api/device-v1.md).

- 288 identical check-ins, one day at 5 minutes on the server's injected
  clock, add no event; a changed field adds exactly one; the database
  holds the state row and the events, nothing more;
- update states with the time of the last progress; a release reported
  failed or rolled back is never assigned to that device again; the
  assignment follows SemVer precedence, product and hardware;
- a reported checkpoint beyond the log or with another root is flagged;
- malformed bodies get a 400 naming the member; caps (413).
"""

import json
import time

import pytest

from otarepo import Repo
from serverlib import T0, Fleet, Server, checkin_body


@pytest.fixture(name="hosted", scope="module")
def hosted_fixture(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("checkin")
    repo = Repo.create(tmp / "repo", ledger=False)
    repo.add_release("cam", "1.1.0", b"\x01" * 4096, hardware="rev-a")
    repo.add_release("cam", "1.2.0-rc.1", b"\x02" * 4096, hardware="rev-a")
    repo.add_release("cam", "1.2.0", b"\x03" * 4096, hardware="rev-b")
    repo.add_release("dog", "9.0.0", b"\x04" * 4096, hardware="rev-a")
    fleet = Fleet.create(tmp / "fleet")
    srv = Server(tmp / "srv", repo.dir, fleet, settings={"checkin.poll_interval": "300"}).start()
    srv.read = srv.token("ro", "read")
    yield repo, fleet, srv
    srv.stop()


def events(srv, dev):
    r = srv.admin(srv.read).get(f"/admin/v1/devices/{dev}/events")
    assert r.status == 200, r.text
    return r.json["events"]


def test_288_identical_checkins_add_no_event(hosted):
    _, fleet, srv = hosted
    c = srv.device(fleet.device("cam-day"))
    body = checkin_body(hardware="rev-a", version="1.1.0")
    body["running"]["slot"] = "a"
    body["trusted"]["timestamp_version"] = 2
    srv.set_time(T0)
    r = c.checkin(body)
    assert r.status == 200
    assert sorted(r.json) == ["assignment", "bundle", "poll_interval"]
    assert r.json["poll_interval"] == 300
    first = events(srv, "cam-day")
    assert len(first) == 1
    assert first[0]["changes"]["running.version"] == [None, "1.1.0"]
    for i in range(1, 289):
        srv.set_time(T0 + 300 * i)
        # The timestamp version moves too (a refresh every hour): not an
        # event field.
        body["trusted"]["timestamp_version"] = 2 + i // 12
        assert c.checkin(body).status == 200
    assert len(events(srv, "cam-day")) == 1
    dev = srv.admin(srv.read).get("/admin/v1/devices/cam-day").json
    assert dev["last_seen"] != dev["first_seen"]
    # One changed field, exactly one event.
    body["running"]["slot"] = "b"
    srv.set_time(T0 + 300 * 289)
    assert c.checkin(body).status == 200
    evs = events(srv, "cam-day")
    assert len(evs) == 2
    assert evs[0]["changes"] == {"running.slot": ["a", "b"]}
    with srv.db() as db:
        n = db.execute("SELECT count(*) FROM events WHERE device = 'cam-day'").fetchone()[0]
        rows = db.execute("SELECT count(*) FROM devices WHERE id = 'cam-day'").fetchone()[0]
    assert (n, rows) == (2, 1)


def test_assignment_rules(hosted):
    _, fleet, srv = hosted
    c = srv.device(fleet.device("cam-as"))
    # rev-a running 1.0.0: 1.2.0 is for rev-b, 1.2.0-rc.1 > 1.1.0 for rev-a.
    r = c.checkin(checkin_body(hardware="rev-a", version="1.0.0"))
    a = r.json["assignment"]
    assert a["target"] == "cam/1.2.0-rc.1/firmware.img" and a["version"] == "1.2.0-rc.1"
    assert len(a["sha256"]) == 64 and a["length"] == 4096 and a["security_version"] == 0
    assert a["index"] == "cam/1.2.0-rc.1/firmware.img.cidx"
    # Running the newest: nothing. Another product: its own releases only.
    assert c.checkin(checkin_body(hardware="rev-a", version="1.2.0-rc.1")).json["assignment"] is None
    r = c.checkin(checkin_body(product="dog", hardware="rev-a", version="1.0.0"))
    assert r.json["assignment"]["target"] == "dog/9.0.0/firmware.img"
    assert c.checkin(checkin_body(hardware="rev-c", version="0.0.1")).json["assignment"] is None
    # Reported rolled back: never assigned to this device again; the next
    # best one is.
    body = checkin_body(hardware="rev-a", version="1.0.0")
    body["update"] = {"state": "rolled_back", "target": "cam/1.2.0-rc.1/firmware.img"}
    body["last_error"] = {"name": "health_check", "detail": "service x did not start"}
    r = c.checkin(body)
    assert r.json["assignment"]["target"] == "cam/1.1.0/firmware.img", r.text
    del body["update"]
    assert c.checkin(body).json["assignment"]["target"] == "cam/1.1.0/firmware.img"
    # The newest-update query agrees, and says what another state would get.
    assert c.get("/api/v1/update").json["assignment"]["target"] == "cam/1.1.0/firmware.img"
    r = c.get("/api/v1/update?product=cam&hardware=rev-b&version=1.0.0")
    assert r.json["assignment"]["target"] == "cam/1.2.0/firmware.img"
    dev = srv.admin(srv.read).get("/admin/v1/devices/cam-as").json
    assert dev["failed"] == ["cam/1.2.0-rc.1/firmware.img"]
    assert dev["last_error"] == {"name": "health_check", "detail": "service x did not start"}
    # Another device still gets it.
    other = srv.device(fleet.device("cam-as2"))
    r = other.checkin(checkin_body(hardware="rev-a", version="1.0.0"))
    assert r.json["assignment"]["target"] == "cam/1.2.0-rc.1/firmware.img"


def test_update_states_and_progress(hosted):
    _, fleet, srv = hosted
    c = srv.device(fleet.device("cam-st"))
    t = "cam/1.1.0/firmware.img"
    srv.set_time(T0 + 10)
    body = checkin_body(hardware="rev-a", version="1.0.0")
    assert c.checkin(body).status == 200
    for i, state in enumerate(["downloading", "downloaded", "installing", "installed",
                               "rebooting", "committed"]):
        srv.set_time(T0 + 100 * (i + 1))
        body["update"] = {"state": state, "target": t}
        if state == "downloading":
            body["update"]["progress"] = 10
        assert c.checkin(body).status == 200, state
        d = srv.admin(srv.read).get("/admin/v1/devices/cam-st").json
        assert d["update"]["state"] == state
        assert d["update"]["since"] == d["update"]["progress_at"]
    # Progress alone: the progress time moves, the state time stays, no event.
    n = len(events(srv, "cam-st"))
    body["update"] = {"state": "downloading", "target": "cam/1.2.0-rc.1/firmware.img",
                      "progress": 1}
    srv.set_time(T0 + 1000)
    c.checkin(body)
    body["update"]["progress"] = 2
    srv.set_time(T0 + 1100)
    c.checkin(body)
    d = srv.admin(srv.read).get("/admin/v1/devices/cam-st").json
    assert d["update"]["progress"] == 2
    assert d["update"]["since"] < d["update"]["progress_at"]
    assert len(events(srv, "cam-st")) == n + 1


def test_malformed_bodies(hosted):
    _, fleet, srv = hosted
    c = srv.device(fleet.device("cam-bad"))
    cases = [
        (b"{", 400, "json_syntax"),
        (b'{"running":{"product":"cam","product":"x","hardware":"h","version":"1.0.0"},'
         b'"trusted":{"root_version":1}}', 400, "json_dup_key"),
        (json.dumps(checkin_body(version="1.0")).encode(), 400, "format"),
        (b"[1,2]", 400, "format"),
        (b"", 400, "json_syntax"),
    ]
    for body, status, err in cases:
        r = c.post("/api/v1/checkin", body)
        assert (r.status, r.json["error"]) == (status, err), (body, r.text)
    r = c.post("/api/v1/checkin", json.dumps(checkin_body(version="1.0")).encode())
    assert "running.version" in r.json["message"]
    # Wrong method, unknown route.
    r = c.get("/api/v1/checkin")
    assert r.status == 405 and r.headers["allow"] == "POST"
    assert c.get("/api/v1/nothing").status == 404
    # Above the body cap (64 KiB): 413 before anything is parsed.
    big = b'{"x-pad":"' + b"a" * 70000 + b'"}'
    c2 = srv.device(fleet.device("cam-big"))
    try:
        r = c2.post("/api/v1/checkin", big)
        assert r.status == 413
    except ConnectionError:
        pass  # evhttp may close instead of answering
    assert c.checkin(checkin_body()).status == 200


def test_checkpoint_flags(hosted):
    _, fleet, srv = hosted
    ops = srv.token("flags", "admin")
    c = srv.device(fleet.device("cam-fl"))
    body = checkin_body()
    # This repository has no ledger: nothing to compare with, no flag.
    body["trusted"]["checkpoint"] = {"size": 5, "hash": "A" * 43 + "="}
    assert c.checkin(body).status == 200
    assert srv.admin(ops).get("/admin/v1/flags").json["flags"] == []


def test_event_retention_by_age(hosted):
    """Events older than event_max_age go (the hourly maintenance, on the
    server's clock); the device rows stay."""
    _, fleet, srv = hosted
    ops = srv.token("ret", "admin")
    c = srv.device(fleet.device("cam-old"))
    srv.set_time(T0 + 2000)
    assert c.checkin(checkin_body(version="1.0.0")).status == 200
    assert len(events(srv, "cam-old")) == 1
    # 91 days later (event_max_age is 90 days): the next maintenance run
    # drops the event.
    srv.set_time(T0 + 91 * 86400)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and events(srv, "cam-old"):
        time.sleep(0.1)
    assert events(srv, "cam-old") == []
    assert "otachain_events_expired_total 0" not in srv.admin(ops).get("/metrics").text
    assert srv.admin(ops).get("/admin/v1/devices/cam-old").status == 200
    srv.set_time(T0)
