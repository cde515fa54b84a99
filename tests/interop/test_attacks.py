"""Attacks on a static repository (issue 2, acceptance 3 and 4).

Each attack is served by a real nginx on loopback and shown to two
independent clients: ours (`otachain repo verify`) must refuse with its own
specific error, and tuf-js must refuse too (differential: on every fixture
the two agree). The one documented disagreement is the last test: a root
that lists one public key under two keyids.

Forged metadata is made by tests/interop/forge.mjs (Node crypto + tuf-js'
canonical JSON), never by our signing code.
"""

import json
import os
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from otarepo import CClient, Forger, Repo, TufJsClient, keyid_of_pub, sha256_hex


class World:
    def __init__(self, tmp, repo, srv):
        self.tmp = tmp
        self.repo = repo
        self.srv = srv
        self.forger = Forger(repo)
        self.n = 0

    def clients(self, name=None):
        """A fresh pair of clients (empty state, trusting root v1)."""
        self.n += 1
        name = name or f"pair{self.n}"
        c = CClient(self.tmp / f"{name}-c", self.srv.url, self.repo.root1)
        j = TufJsClient(self.tmp / f"{name}-j", self.srv.url, self.repo.root1)
        return c, j

    def out(self, name):
        return self.tmp / f"out-{name}-{self.n}"


@pytest.fixture
def world(tmp_path, nginx_factory):
    # No ledger: each attack must meet the TUF rule it targets, as in
    # tuf-js. With a ledger a forged (validly signed) snapshot is refused
    # first as not_in_log (tests/system/test_ledger_verify.py).
    repo = Repo.create(tmp_path / "repo", ledger=False)
    world = World(tmp_path, repo, None)
    world.target = repo.add_release("fw", "1.0.0", data=os.urandom(200_000))
    world.srv = nginx_factory(root=repo.public)
    return world


def refused_by_both(c, j, errname, target=None, out=None):
    rc = c.refresh(target=target, out=None if out is None else str(out) + ".c")
    rj = j.refresh(target=target, out=None if out is None else str(out) + ".j")
    assert not rc.ok, f"our client accepted: {rc.message}"
    assert rc.error == errname, rc.message
    assert not rj.ok, f"tuf-js accepted: {rj.message}"
    return rc, rj


def accepted_by_both(c, j, target=None, out=None):
    rc = c.refresh(target=target, out=None if out is None else str(out) + ".c")
    rj = j.refresh(target=target, out=None if out is None else str(out) + ".j")
    assert rc.ok, rc.message
    assert rj.ok, rj.message
    return rc, rj


def test_baseline_both_accept_and_download_identical(world):
    c, j = world.clients()
    out = world.out("base")
    accepted_by_both(c, j, world.target, out)
    img = world.repo.dir / "blobs"
    a = open(str(out) + ".c", "rb").read()
    b = open(str(out) + ".j", "rb").read()
    assert a == b
    assert sha256_hex(a) in os.listdir(img)


def test_target_bytes_swapped_same_length(world):
    tdir = world.repo.public / "targets" / "fw" / "1.0.0"
    # The image itself, not its chunk index (the other target there).
    (f,) = [p for p in tdir.iterdir() if not p.name.endswith(".cidx")]
    data = f.read_bytes()
    f.write_bytes(bytes(b ^ 0x55 for b in data[:64]) + data[64:])
    c, j = world.clients()
    out = world.out("swap")
    refused_by_both(c, j, "hash_mismatch", world.target, out)
    # Never presented as the target, not even partially.
    assert not os.path.exists(str(out) + ".c")
    assert not os.path.exists(str(out) + ".c.part")


def test_targets_signed_below_threshold(world):
    t = world.repo.targets_keys
    world.forger.targets(set=[("targets/evil~1x", {"length": 1, "hashes": {"sha256": "00" * 32}})],
                         sign=[t[0]])
    refused_by_both(*world.clients(), "threshold")


def test_two_signature_entries_with_the_same_keyid(world):
    t = world.repo.targets_keys
    world.forger.targets(sign=[t[0]], dup_sig=True)
    refused_by_both(*world.clients(), "dup_signature")


def test_timestamp_rollback(world):
    c, j = world.clients()
    old = world.repo.save("before")
    world.repo.add_release("fw", "1.1.0", data=b"v1.1" * 1000)
    accepted_by_both(c, j)
    (world.repo.meta / "timestamp.json").write_bytes(
        (old / "metadata" / "timestamp.json").read_bytes())
    refused_by_both(c, j, "rollback")


def test_snapshot_rollback(world):
    c, j = world.clients()
    world.repo.add_release("fw", "1.1.0", data=b"v1.1" * 1000)
    accepted_by_both(c, j)
    snap_v = world.repo.version("snapshot")
    stale = (world.repo.meta / f"{snap_v - 1}.snapshot.json").read_bytes()
    # A validly signed timestamp (online key) naming the older snapshot.
    world.forger.timestamp(snap_v - 1, stale)
    refused_by_both(c, j, "rollback")


def test_targets_rollback(world):
    c, j = world.clients()
    world.repo.add_release("fw", "1.1.0", data=b"v1.1" * 1000)
    accepted_by_both(c, j)
    tv = world.repo.version("targets")
    stale = (world.repo.meta / f"{tv - 1}.targets.json").read_bytes()
    # New snapshot (online key) pinning the older targets version.
    world.forger.snapshot_and_timestamp(tv - 1, stale)
    refused_by_both(c, j, "rollback")


def test_mix_and_match_current_timestamp_stale_snapshot(world):
    world.repo.add_release("fw", "1.1.0", data=b"v1.1" * 1000)
    snap_v = world.repo.version("snapshot")
    cur = world.repo.meta / f"{snap_v}.snapshot.json"
    stale = (world.repo.meta / f"{snap_v - 1}.snapshot.json").read_bytes()
    want = "length_mismatch" if len(stale) != len(cur.read_bytes()) else "hash_mismatch"
    cur.write_bytes(stale)
    refused_by_both(*world.clients(), want)


def test_mix_and_match_when_timestamp_pins_version_only(world):
    # Without length and hash pins, the version check alone must catch it.
    world.repo.add_release("fw", "1.1.0", data=b"v1.1" * 1000)
    snap_v = world.repo.version("snapshot")
    world.forger.timestamp(snap_v, None)
    stale = (world.repo.meta / f"{snap_v - 1}.snapshot.json").read_bytes()
    (world.repo.meta / f"{snap_v}.snapshot.json").write_bytes(stale)
    refused_by_both(*world.clients(), "version_mismatch")


def test_expired_timestamp_freeze(world):
    c, j = world.clients()
    accepted_by_both(c, j)
    snap_v = world.repo.version("snapshot")
    snap = (world.repo.meta / f"{snap_v}.snapshot.json").read_bytes()
    world.forger.timestamp(snap_v, snap, ts_set=[("expires", "2021-01-01T00:00:00Z")])
    refused_by_both(c, j, "expired")
    refused_by_both(*world.clients(), "expired")


def test_oversized_timestamp_refused_at_the_cap(world):
    size = 64 * 1024 * 1024
    with open(world.repo.meta / "timestamp.json", "wb") as f:
        f.write(b'{"signed":{"_type":"timestamp","x":"')
        f.truncate(size)
    c, j = world.clients()
    rc = c.refresh()
    assert not rc.ok and rc.error == "too_large", rc.message
    # Refused at the cap, not after reading it all: nginx sent our client
    # little more than what the kernel's socket buffers absorbed.
    sent = [b for (_m, path, _s, b) in world.srv.requests() if path.endswith("/timestamp.json")]
    assert len(sent) == 1 and sent[0] < size // 8, sent
    rj = j.refresh()
    assert not rj.ok, rj.message


ENDLESS_SERVER = textwrap.dedent("""
    import http.server, sys
    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        def do_GET(self):
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            chunk = b" " * 65536
            try:
                while True:
                    self.wfile.write(b"%x\\r\\n" % len(chunk) + chunk + b"\\r\\n")
            except (BrokenPipeError, ConnectionResetError):
                pass
        def log_message(self, *a):
            pass
    http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
""")


def test_endless_timestamp_stream_stops_at_the_cap(tmp_path, world):
    from testlib import free_port
    script = tmp_path / "endless.py"
    script.write_text(ENDLESS_SERVER)
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(script), str(port)])
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "endless server did not start"
                time.sleep(0.05)
        c = CClient(tmp_path / "endless-c", f"http://127.0.0.1:{port}", world.repo.root1)
        t0 = time.monotonic()
        r = c.refresh(timeout=60)
        assert not r.ok and r.error == "too_large", r.message
        assert time.monotonic() - t0 < 30
    finally:
        proc.kill()
        proc.wait()


def test_root_rotation_not_signed_by_old_threshold(world):
    repo = world.repo
    c, j = world.clients()
    accepted_by_both(c, j)
    new = [repo.new_key() for _ in range(3)]
    sets = [("version", 2), ("roles/root/keyids", [k.keyid for k in new]),
            ("roles/root/threshold", 2)]
    for k in new:
        sets.append((f"keys/{k.keyid}", {"keytype": "ed25519", "scheme": "ed25519",
                                          "keyval": {"public": k.public}}))
    # The new threshold signs, but only one of the old root keys.
    world.forger.edit("root.json", "2.root.json", set=sets, clear_sigs=True,
                      sign=[new[0].path, new[1].path, repo.root_keys[0].path])
    refused_by_both(c, j, "threshold")


def test_fast_forward_attack_and_recovery(world):
    repo = world.repo
    c, j = world.clients()
    accepted_by_both(c, j)
    snap_v = repo.version("snapshot")
    snap = (repo.meta / f"{snap_v}.snapshot.json").read_bytes()
    real_ts = (repo.meta / "timestamp.json").read_bytes()
    # The compromised timestamp key pushes version 1000: valid, so accepted.
    world.forger.timestamp(snap_v, snap, version=1000)
    forged_1000 = (repo.meta / "timestamp.json").read_bytes()
    accepted_by_both(c, j)
    (repo.meta / "timestamp.json").write_bytes(real_ts)
    # The real next version is now below the client's trusted 1000.
    repo.add_release("fw", "1.1.0", data=b"v1.1" * 1000)
    refused_by_both(c, j, "rollback")
    # Recovery: the root rotates the timestamp key; clients drop the
    # fast-forwarded timestamp and accept the real next version.
    r = repo.root_keys
    repo.rotate_root(["--rotate-online-key", "timestamp"], [r[0], r[1]])
    rc, rj = accepted_by_both(c, j)
    assert repo.version("timestamp") < 1000
    # The forged version 1000, signed by the old key, is refused from now on.
    (repo.meta / "timestamp.json").write_bytes(forged_1000)
    refused_by_both(c, j, "threshold")
    refused_by_both(*world.clients(), "threshold")


def test_documented_exception_one_key_under_two_keyids(world):
    """A root listing one public key under two keyids lets one signer count
    twice. Our client checks that every keyid is the SHA-256 of its key and
    refuses (keyid_mismatch); tuf-js does not check and accepts."""
    repo = world.repo
    t0 = repo.targets_keys[0]
    fake = "ab" * 32
    assert keyid_of_pub(t0.public) != fake
    key_obj = {"keytype": "ed25519", "scheme": "ed25519", "keyval": {"public": t0.public}}
    world.forger.edit("root.json", "2.root.json",
                      set=[("version", 2), (f"keys/{fake}", key_obj),
                           ("roles/targets/keyids", [t0.keyid, fake]),
                           ("roles/targets/threshold", 2)],
                      clear_sigs=True, sign=[repo.root_keys[0].path, repo.root_keys[1].path])
    # Targets signed by t0 alone, its one signature repeated under the fake keyid.
    v = repo.version("targets")
    tmp = world.forger.edit(f"{v}.targets.json", f"{v + 1}.targets.json",
                            set=[("version", v + 1)], clear_sigs=True, sign=[t0.path])
    doc = json.loads(tmp)
    doc["signatures"].append({"keyid": fake, "sig": doc["signatures"][0]["sig"]})
    data = json.dumps(doc, separators=(",", ":")).encode()
    (repo.meta / f"{v + 1}.targets.json").write_bytes(data)
    world.forger.snapshot_and_timestamp(v + 1, data)

    c, j = world.clients()
    rc = c.refresh()
    rj = j.refresh()
    assert not rc.ok and rc.error == "keyid_mismatch", rc.message
    assert rj.ok, f"tuf-js was expected to accept (documented exception): {rj.message}"
