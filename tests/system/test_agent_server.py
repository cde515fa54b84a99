"""otachain-agent with the update-server source (issue 12, "Two sources"):
the simulated device (tests/devsim.py) checks in with a real
otachain-server over mutual TLS with its device certificate from the
fleet CA, takes the assigned release only after verifying the repository
the server's device listener serves (the same TUF workflow and ledger
rule as mirror mode), and reports every state transition and every
refusal with its error name; the tests read them back through the
server's admin API.

Acceptance points of issue 12 shown here: 4 (the clock at 0, a root
rotation with a witness-set change slept through, a replay refused); 1
through the server, for the U-Boot and the file backends (a good update commits; a failed health check
rolls back and is reported; a crash-looping slot falls back after
bootlimit, reported); 2 through the server (a release below the security
floor assigned by the server, a release not in a cosigned checkpoint, a
forked log; an older release and another hardware's release assigned by a
lying server; each refused with nothing written to the inactive slot and
reported).
"""

import base64
import hashlib
import http.server
import json
import shutil
import signal
import ssl
import threading
import time
from pathlib import Path

import pytest

from devsim import Device, fw, sha256_hex
from otarepo import Key, Repo
from serverlib import Fleet, Server, admin_device, errors_reported, states_reported
from testlib import free_port, otachain
from witnesslib import Witness

BACKENDS = ["uboot", "file"]
REPLAY_ERROR = "quorum"  # the retired witness set vouches for nothing under root v2
FORGED_BUNDLE_ERROR = "not_in_log"

V1 = fw("1.0.0")
V11 = fw("1.1.0", base=V1, edits=[(1000, 300), (300000, 500)])
BAD = fw("1.1.0", base=V1, edits=[(5000, 100)], health="fail")
CRASH = fw("1.1.0", base=V1, edits=[(7000, 100)], boot="crash")


@pytest.fixture(name="fleet", scope="module")
def fleet_fixture(tmp_path_factory):
    return Fleet.create(tmp_path_factory.mktemp("fleet"))


@pytest.fixture(name="hosted", scope="module")
def hosted_fixture(tmp_path_factory, fleet):
    """One repository (ledger on) hosted by one otachain-server for the
    tests that only read it: product "sim" 1.0.0 (factory) and 1.1.0
    (security version 1); "bad" 1.1.0 fails its health check; "crash"
    1.1.0 never boots. Each test uses devices of its own."""
    tmp = tmp_path_factory.mktemp("hosted")
    repo = Repo.create(tmp / "repo")
    rels = [("sim", "1.0.0", V1, 0), ("sim", "1.1.0", V11, 1), ("bad", "1.0.0", V1, 0),
            ("bad", "1.1.0", BAD, 0), ("crash", "1.0.0", V1, 0), ("crash", "1.1.0", CRASH, 0)]
    for i, (product, version, image, sv) in enumerate(rels):
        last = i == len(rels) - 1
        repo.add_release(product, version, image, hardware="board-a", security_version=sv,
                         sign=2 if last else 0, publish=last)
    srv = Server(tmp / "srv", repo.dir, fleet).start()
    srv.read = srv.token("ro", "read")
    yield repo, srv
    srv.stop()


def reload(srv):
    """SIGHUP: the server rereads the repository; returns once it logged
    the reload (an event, not a time)."""
    def count():
        return sum(1 for ln in srv.log_lines() if "event=repository_reload" in ln)

    before = count()
    srv.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 30
    while count() == before:
        assert time.monotonic() < deadline, "no repository_reload after SIGHUP"
        time.sleep(0.02)


def server_url(srv):
    return f"https://127.0.0.1:{srv.ports['device']}"


def server_device(tmp_path, fleet, url, root, backend="uboot", name="dev", **kw):
    cert, key, _ = fleet.device(f"{tmp_path.name[:40]}-{name}")
    dev = Device.create(tmp_path / name, backend, None, root, V1, server=url,
                        ca_file=fleet.server_ca, device_cert=cert, device_key=key, **kw)
    dev.id = f"{tmp_path.name[:40]}-{name}"
    return dev


def assert_idle_on(dev, slot, version):
    st = dev.status()
    assert st["phase"] == "idle", st
    assert st["installed"]["slot"] == slot and st["installed"]["version"] == version, st
    assert st["bootloader"]["slot"] == slot and not st["bootloader"]["trial"], st
    assert dev.running_version() == version
    return st


# ------------------------------------------------------------ acceptance 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_server_update_commits(tmp_path, fleet, hosted, backend):
    """Assigned by the server, verified from its device listener, written
    into slot b, rebooted, committed; the server saw every transition."""
    repo, srv = hosted
    dev = server_device(tmp_path, fleet, server_url(srv), repo.root1, backend)
    boots = dev.boot_until_idle()
    assert [(b.slot, b.rebooting) for b in boots] == [("a", True), ("b", False)]
    first = boots[0].stderr
    assert "checked in with https://127.0.0.1:" in first and "assigned 1.1.0" in first, first
    assert "installing 1.1.0" in first and "into slot b" in first
    assert "committed 1.1.0 on slot b" in boots[1].stderr
    st = assert_idle_on(dev, "b", "1.1.0")
    assert st["security_floor"] == 1 and st["last"]["reported"], st
    assert dev.slot_image("b", len(V11)) == V11
    d = admin_device(srv, dev)
    assert d["running"]["version"] == "1.1.0" and d["running"]["slot"] == "b", d
    assert d["running"]["target"] == "sim/1.1.0/firmware.img", d
    assert d["update"]["state"] == "committed", d
    assert d["update"]["target"] == "sim/1.1.0/firmware.img", d
    assert d["last_error"] is None and d["flagged"] is None, d
    assert d["trusted"]["root_version"] == 1 and d["trusted"]["checkpoint"]["size"] > 0, d
    assert states_reported(srv, dev) == ["downloading", "installed", "rebooting", "committed"]
    # Current: the next round is one check-in and nothing else.
    again = dev.boot_until_idle()
    assert len(again) == 1 and "no assignment" in again[0].stderr


@pytest.mark.parametrize("backend", BACKENDS)
def test_server_failed_health_check_rolls_back_and_is_reported(tmp_path, fleet, hosted,
                                                               backend):
    repo, srv = hosted
    dev = server_device(tmp_path, fleet, server_url(srv), repo.root1, backend, product="bad")
    boots = dev.boot_until_idle()
    assert [(b.slot, b.rebooting) for b in boots] == [("a", True), ("b", True), ("a", False)]
    assert "rolling back 1.1.0" in boots[1].stderr
    st = assert_idle_on(dev, "a", "1.0.0")
    assert st["last"]["result"] == "rolled_back" and st["last"]["reported"], st
    d = admin_device(srv, dev)
    assert d["running"]["version"] == "1.0.0" and d["running"]["slot"] == "a", d
    assert d["update"] == {**d["update"], "state": "rolled_back",
                           "target": "bad/1.1.0/firmware.img"}, d
    assert d["last_error"]["name"] == "health_check", d
    assert d["failed"] == ["bad/1.1.0/firmware.img"], d
    assert states_reported(srv, dev) == ["downloading", "installed", "rebooting",
                                         "rolled_back"]
    # Never assigned again.
    again = dev.boot_until_idle()
    assert len(again) == 1 and "no assignment" in again[0].stderr


@pytest.mark.parametrize("backend", BACKENDS)
def test_server_crash_looping_slot_falls_back_and_is_reported(tmp_path, fleet, hosted,
                                                              backend):
    repo, srv = hosted
    dev = server_device(tmp_path, fleet, server_url(srv), repo.root1, backend, product="crash")
    boots = dev.boot_until_idle()
    assert [(b.slot, b.booted) for b in boots] == [
        ("a", True), ("b", False), ("b", False), ("b", False), ("a", True)]
    st = assert_idle_on(dev, "a", "1.0.0")
    assert st["last"]["result"] == "fell_back" and st["last"]["reported"], st
    d = admin_device(srv, dev)
    assert d["update"]["state"] == "rolled_back", d
    assert d["last_error"]["name"] == "fell_back", d
    assert d["failed"] == ["crash/1.1.0/firmware.img"], d


# ------------------------------------------------ acceptance 2: refusals


def assert_untouched(dev):
    st = dev.status()
    assert st["phase"] == "idle", st
    assert dev.slot_image("b") == dev.slot_image("a")  # the inactive slot untouched


def test_server_assigns_a_release_below_the_security_floor(tmp_path, fleet):
    """The server assigns the newest release newer than what runs; the
    device's security floor is its own: a newer version with a lower
    security version is refused (security_floor), nothing is written, the
    server is told it failed and never assigns it again."""
    repo = Repo.create(tmp_path / "repo")
    repo.add_release("sim", "1.0.0", V1, sign=0, publish=False)
    repo.add_release("sim", "1.1.0", V11, security_version=2)
    srv = Server(tmp_path / "srv", repo.dir, fleet).start()
    try:
        srv.read = srv.token("ro", "read")
        dev = server_device(tmp_path, fleet, server_url(srv), repo.root1)
        dev.boot_until_idle()
        assert_idle_on(dev, "b", "1.1.0")
        slot_a = dev.slot_image("a")
        repo.add_release("sim", "1.2.0", fw("1.2.0", base=V11, edits=[(100, 10)]),
                         security_version=1)
        reload(srv)
        b = dev.power_on()
        assert b.agent_rc == 1 and not b.rebooting
        assert "otachain-agent: security_floor:" in b.stderr, b.stderr
        assert "assignment sim/1.2.0/firmware.img refused: security_floor" in b.stderr
        assert dev.slot_image("a") == slot_a
        assert_idle_on(dev, "b", "1.1.0")
        d = admin_device(srv, dev)
        assert d["last_error"]["name"] == "security_floor", d
        assert "sim/1.2.0/firmware.img" in d["failed"], d
        b = dev.power_on()
        assert b.agent_rc == 0 and "no assignment" in b.stderr, b.stderr
    finally:
        srv.stop()


def test_server_release_not_in_cosigned_checkpoint_refused(tmp_path, fleet):
    """The server hosts metadata of a new release with the log's old
    checkpoint: the snapshot is in no checkpoint the device can verify
    (not_in_log): refused before a byte is written, reported."""
    repo = Repo.create(tmp_path / "repo")
    repo.add_release("sim", "1.0.0", V1)
    old = repo.save("v1")
    repo.add_release("sim", "1.1.0", V11)
    hosted = tmp_path / "withheld"
    shutil.copytree(repo.dir, hosted)
    shutil.rmtree(hosted / "public" / "ledger")
    shutil.copytree(old / "ledger", hosted / "public" / "ledger")
    srv = Server(tmp_path / "srv", hosted, fleet).start()
    try:
        srv.read = srv.token("ro", "read")
        dev = server_device(tmp_path, fleet, server_url(srv), repo.root1)
        b = dev.power_on()
        assert b.agent_rc == 1 and not b.rebooting
        assert "otachain-agent: not_in_log:" in b.stderr, b.stderr
        assert_untouched(dev)
        d = admin_device(srv, dev)
        assert d["last_error"]["name"] == "not_in_log", d
        assert d["update"] is None and d["failed"] == [], d
    finally:
        srv.stop()


def test_server_forked_log_refused_and_flagged(tmp_path, fleet):
    """The server is replaced by one showing another history of the same
    log (signed by the log key): the device refuses it (split_view), with
    nothing installed, and reports it; the server flags the device, whose
    checkpoint is not its log's."""
    repo = Repo.create(tmp_path / "repo")
    repo.add_release("sim", "1.0.0", V1)
    twin = Repo(tmp_path / "twin", repo.keydir, repo.root_keys, repo.targets_keys)
    shutil.copytree(repo.dir, twin.dir)
    repo.add_release("sim", "1.1.0", V11)
    twin.add_release("sim", "1.1.0", fw("1.1.0", base=V1, edits=[(9000, 100)]))
    twin.add_release("sim", "1.2.0", fw("1.2.0", base=V1, edits=[(9000, 200)]))
    srv = Server(tmp_path / "srv", repo.dir, fleet).start()
    try:
        dev = server_device(tmp_path, fleet, server_url(srv), repo.root1)
        dev.boot_until_idle()
        assert_idle_on(dev, "b", "1.1.0")
    finally:
        srv.stop()
    forked = Server(tmp_path / "forked", twin.dir, fleet).start()
    try:
        forked.read = forked.token("ro", "read")
        slot_a = dev.slot_image("a")
        cfg = dev.config.read_text().replace(f":{srv.ports['device']}",
                                             f":{forked.ports['device']}")
        dev.config.write_text(cfg)
        b = dev.power_on()
        assert b.agent_rc == 1 and not b.rebooting
        assert "otachain-agent: split_view:" in b.stderr, b.stderr
        assert dev.slot_image("a") == slot_a
        assert_idle_on(dev, "b", "1.1.0")
        d = admin_device(forked, dev)
        assert d["last_error"]["name"] == "split_view", d
        assert d["running"]["version"] == "1.1.0", d
        flags = forked.admin(forked.token("ops", "admin")).get("/admin/v1/flags").json["flags"]
        assert [f["device"] for f in flags] == [dev.id], flags
        assert "another root hash than the log's" in flags[0]["reason"], flags
    finally:
        forked.stop()


def witnessed_repo(tmp, max_age="1d"):
    """A repository whose root names three otachain-witness processes,
    quorum 2, freshness window max_age; 1.0.0 and 1.1.0 published."""
    keydir = tmp / "keys"
    keydir.mkdir()
    root_keys = [Key.generate(keydir / f"root{i}.key") for i in range(2)]
    targets_keys = [Key.generate(keydir / f"targets{i}.key") for i in range(2)]
    witnesses = [Witness(tmp / f"w{i}", f"witness.test/w{i}", []) for i in range(3)]
    ports = [free_port() for _ in witnesses]
    d = tmp / "repo"
    origin = "example.test/agent"
    args = ["repo", "init", d, "--root-threshold", "1", "--targets-threshold", "1",
            "--ledger-origin", origin, "--witness-quorum", "2", "--ledger-max-age", max_age,
            "--root-key", root_keys[0].path, "--targets-key", targets_keys[0].path]
    for i, (w, port) in enumerate(zip(witnesses, ports)):
        w.init()
        args += ["--witness", f"w{i}={w.vkey}@http://127.0.0.1:{port}"]
    otachain(*args)
    log_vkey = otachain("ledger", "key", d).stdout.strip()
    for w, port in zip(witnesses, ports):
        w.logs = [{"name": "repo", "origin": origin, "keys": [log_vkey]}]
        w.write_config(port=port)
        w.start()
    otachain("repo", "publish", d)
    repo = Repo(d, keydir, root_keys, targets_keys)
    repo.add_release("sim", "1.0.0", V1, sign=1)
    repo.add_release("sim", "1.1.0", V11, sign=1)
    return repo, witnesses


def test_stale_checkpoint_refused_and_reported(tmp_path, fleet, nginx_factory):
    """Acceptance 2, the stale checkpoint: the log's quorum last cosigned
    more than max_age (1 day) ago by the device's clock (injected: two
    days on). A device on mirrors and a device on the server both refuse
    the state (stale) before writing a byte; the server is told. With the
    clock of the cosignatures, the same state installs."""
    repo, witnesses = witnessed_repo(tmp_path)
    try:
        srv = Server(tmp_path / "srv", repo.dir, fleet).start()
        try:
            srv.read = srv.token("ro", "read")
            later = {"OTACHAIN_TEST_NOW": str(int(time.time()) + 2 * 86400)}
            mirror = nginx_factory(root=repo.public)
            mdev = Device.create(tmp_path / "mdev", "uboot", [mirror.url], repo.root1, V1)
            sdev = server_device(tmp_path, fleet, server_url(srv), repo.root1, "file")
            for dev in (mdev, sdev):
                b = dev.power_on(env=later)
                assert b.agent_rc == 1 and not b.rebooting, b.stderr
                assert "otachain-agent: stale:" in b.stderr, b.stderr
                # The mirror device drops its mirror; the server device
                # refuses the check-in's proof bundle (the server sends
                # one since issue 11 acceptance 4).
                assert ("dropped for this round: stale" if dev is mdev
                        else "the check-in's proof bundle") in b.stderr, b.stderr
                assert_untouched(dev)
            d = admin_device(srv, sdev)
            assert d["last_error"]["name"] == "stale", d
            assert d["update"] is None, d
            for dev in (mdev, sdev):
                assert dev.boot_until_idle()[-1].slot == "b"
                assert_idle_on(dev, "b", "1.1.0")
            assert admin_device(srv, sdev)["update"]["state"] == "committed"
        finally:
            srv.stop()
    finally:
        for w in witnesses:
            w.kill()


# ------------------------------------------------------------ acceptance 4


def test_clock_zero_catch_up_through_rotation_and_witness_change(tmp_path, fleet,
                                                                 nginx_factory):
    """Acceptance 4: devices made with root v1 (witnesses w0, w1, w2) sleep
    while root v2 hands the ledger to w1, w3, w4 and the old witnesses w0
    and w2 are shut down; 1.2.0 is then published, cosigned by the new set
    only. With the clock at 0 (no real-time clock), a device on a mirror and
    a device on the update server each catch up in one round (root v1 -> v2
    under the old policy through the per-root checkpoint, the final state
    under the new one), install 1.2.0 and commit. A replay of the state
    from before the rotation (validly signed, cosigned by the retired set)
    is then refused by both, with nothing written, and reported."""
    repo, witnesses = witnessed_repo(tmp_path)
    try:
        old = repo.save("before-rotation")
        origin = "example.test/agent"
        log_vkey = otachain("ledger", "key", repo.dir).stdout.strip()
        args = ["--remove-witness", "w0", "--remove-witness", "w2"]
        for i in (3, 4):
            w = Witness(tmp_path / f"w{i}", f"witness.test/w{i}", [])
            w.init()
            port = free_port()
            w.logs = [{"name": "repo", "origin": origin, "keys": [log_vkey]}]
            w.write_config(port=port)
            w.start()
            witnesses.append(w)
            args += ["--add-witness", f"w{i}={w.vkey}@http://127.0.0.1:{port}"]
        repo.rotate_root(args, [repo.root_keys[0]])
        assert repo.version("root") == 2
        for w in (witnesses[0], witnesses[2]):  # retired: they vouch for nothing new
            w.kill()
        v12 = fw("1.2.0", base=V11, edits=[(4000, 64)])
        repo.add_release("sim", "1.2.0", v12, sign=1)
        checkpoint = (repo.public / "ledger" / "checkpoint").read_text()
        assert "witness.test/w0" not in checkpoint and "witness.test/w3" in checkpoint
        assert (repo.public / "ledger" / "root-checkpoint" / "2").is_file()

        srv = Server(tmp_path / "srv", repo.dir, fleet).start()
        try:
            srv.read = srv.token("ro", "read")
            zero = {"OTACHAIN_TEST_NOW": "0"}
            mirror = nginx_factory(root=repo.public)
            mdev = Device.create(tmp_path / "mdev", "uboot", [mirror.url], repo.root1, V1)
            sdev = server_device(tmp_path, fleet, server_url(srv), repo.root1, "file")
            for dev in (mdev, sdev):
                boots = dev.boot_until_idle(env=zero)
                assert [(b.slot, b.rebooting) for b in boots] == [("a", True), ("b", False)], \
                    [b.stderr for b in boots]
                assert "installing 1.2.0" in boots[0].stderr, boots[0].stderr
                st = assert_idle_on(dev, "b", "1.2.0")
                assert st["trusted"]["root"] == 2, st
                assert dev.slot_image("b", len(v12)) == v12
            d = admin_device(srv, sdev)
            assert d["update"]["state"] == "committed" and d["trusted"]["root_version"] == 2, d

            # The replay: the state from before the rotation, everything in
            # it signed and cosigned (by the set root v2 retired).
            replay = nginx_factory(root=old)
            liar = LyingServer(tmp_path, fleet, old)
            try:
                for dev, url in ((mdev, replay.url), (sdev, liar.url)):
                    cfg = dev.config.read_text()
                    cfg = cfg.replace(mirror.url, url).replace(server_url(srv), url)
                    dev.config.write_text(cfg)
                    slot_a = dev.slot_image("a")
                    b = dev.power_on(env=zero)
                    assert b.agent_rc == 1 and not b.rebooting, b.stderr
                    assert f"otachain-agent: {REPLAY_ERROR}:" in b.stderr, b.stderr
                    assert "under the ledger policy of root v2" in b.stderr, b.stderr
                    assert "counted: w1;" in b.stderr, b.stderr  # w0, w2: retired
                    assert dev.slot_image("a") == slot_a
                    st = assert_idle_on(dev, "b", "1.2.0")
                    assert st["trusted"]["root"] == 2, st
                report = liar.checkins[-1]
                assert report["last_error"]["name"] == REPLAY_ERROR, report
                assert report["running"]["version"] == "1.2.0", report
            finally:
                liar.stop()
        finally:
            srv.stop()
    finally:
        for w in witnesses:
            w.kill()


# --------------------------------------- a lying server's assignments


class LyingServer:
    """A device API that lies: HTTPS with client certificates from the
    fleet's device CA, the repository's public directory served as it is
    (so everything signed still verifies), and check-ins answered with the
    assignment the test sets, whatever the device runs. It records the
    check-in bodies."""

    def __init__(self, tmp, fleet, public):
        self.public = Path(public)
        self.assignment = None
        self.bundle = None  # bytes of a proof bundle for the answers
        self.prefixes = None  # paths served (all when None)
        self.checkins = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.checkins.append(json.loads(body))
                bundle = base64.b64encode(outer.bundle).decode() if outer.bundle else None
                out = json.dumps({"poll_interval": 60, "assignment": outer.assignment,
                                  "bundle": bundle}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def do_GET(self):
                f = outer.public / self.path.lstrip("/")
                hidden = outer.prefixes is not None and not any(
                    self.path.startswith(p) for p in outer.prefixes)
                if ".." in self.path or hidden or not f.is_file():
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data = f.read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        cert, key = fleet.server_cert
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(cert), str(key))
        ctx.load_verify_locations(str(fleet.device_ca))
        ctx.verify_mode = ssl.CERT_REQUIRED
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def assign(self, repo, target, data, version, security_version=0):
        self.assignment = {"target": target, "version": version,
                           "security_version": security_version, "length": len(data),
                           "sha256": hashlib.sha256(data).hexdigest(), "index": target + ".cidx"}

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_lying_server_assignments_refused_and_reported(tmp_path, fleet):
    """The assignment is a hint: an older release, another board's
    release and a release with another SHA-256 than the signed one are
    each refused by the device's own rules, nothing is written to the
    inactive slot, and the refusal goes back in the next check-in with
    its error name and the release marked failed."""
    repo = Repo.create(tmp_path / "repo")
    v09 = fw("0.9.0")
    v12 = fw("1.2.0", base=V1, edits=[(2000, 50)])
    repo.add_release("sim", "0.9.0", v09, sign=0, publish=False)
    repo.add_release("sim", "1.0.0", V1, sign=0, publish=False)
    repo.add_release("sim", "1.2.0", v12, hardware="board-b")
    liar = LyingServer(tmp_path, fleet, repo.public)
    try:
        dev = server_device(tmp_path, fleet, liar.url, repo.root1)
        cases = [("sim/0.9.0/firmware.img", v09, "0.9.0", "not_newer"),
                 ("sim/1.2.0/firmware.img", v12, "1.2.0", "other_hardware"),
                 ("sim/1.2.0/firmware.img", V11, "1.2.0", "hash_mismatch")]
        for target, data, version, err in cases:
            liar.assign(repo, target, data, version)
            liar.checkins.clear()
            b = dev.power_on()
            assert b.agent_rc == 1 and not b.rebooting, b.stderr
            assert f"otachain-agent: {err}:" in b.stderr, b.stderr
            assert_untouched(dev)
            report = liar.checkins[-1]
            assert report["last_error"]["name"] == err, report
            assert report["update"] == {"state": "failed", "target": target}, report
            assert report["running"]["version"] == "1.0.0"
    finally:
        liar.stop()


def test_server_proof_bundle_verified_and_a_forged_one_refused(tmp_path, fleet):
    """The check-in's proof bundle carries the metadata and every proof:
    the listener serves only targets (no metadata/, no ledger/), so a
    device that installs has verified the bundle. A bundle with one byte
    changed is refused before a byte is written, and reported; a bundle
    made for another trusted state falls back to the repository layout."""
    repo = Repo.create(tmp_path / "repo")
    repo.add_release("sim", "1.0.0", V1, sign=0, publish=False)
    target = repo.add_release("sim", "1.1.0", V11)
    bundle = tmp_path / "bundle"
    otachain("repo", "bundle", repo.dir, "--root-version", "1", "--out", bundle)
    liar = LyingServer(tmp_path, fleet, repo.public)
    try:
        dev = server_device(tmp_path, fleet, liar.url, repo.root1)
        liar.assign(repo, target, V11, "1.1.0")
        liar.prefixes = ["/targets/", "/chunks/", "/deltas/"]
        forged = bytearray(bundle.read_bytes())
        forged[-1] ^= 1  # the last hash of the last inclusion proof
        liar.bundle = bytes(forged)
        b = dev.power_on()
        assert b.agent_rc == 1 and not b.rebooting, b.stderr
        assert f"otachain-agent: {FORGED_BUNDLE_ERROR}:" in b.stderr, b.stderr
        assert "the check-in's proof bundle" in b.stderr, b.stderr
        assert_untouched(dev)
        assert liar.checkins[-1]["last_error"]["name"] == FORGED_BUNDLE_ERROR

        liar.bundle = bundle.read_bytes()
        b = dev.power_on()
        assert b.rebooting, b.stderr
        assert "with a proof bundle" in b.stderr and "verified the proof bundle" in b.stderr
        assert "installing 1.1.0" in b.stderr
        # Now on 1.1.0 with root 1 and a checkpoint: the same bundle is for
        # another state; the layout decides (served again).
        liar.prefixes = None
        liar.assignment = None
        boots = dev.boot_until_idle()
        assert "proof bundle not usable (bundle_base" in boots[0].stderr, boots[0].stderr
        assert_idle_on(dev, "b", "1.1.0")
        assert dev.slot_image("b", len(V11)) == V11
        assert liar.checkins[-1]["update"] == {"state": "committed", "target": target}
    finally:
        liar.stop()
