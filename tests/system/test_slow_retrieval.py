"""Slow retrieval defeated (DESIGN §9; issue 9, acceptance 3).

A mirror that trickles a file at 2 bytes/s (nginx `limit_rate 2`) or stalls
after the headers (a small Python server) must not hold a device: `otachain
fetch` stops with exit 1, `slow_retrieval`, naming the file, for every kind
of file it fetches (each metadata role, the ledger checkpoint, the chunk
index, the pack, the reference delta); the next run against an honest
mirror, on the same state, succeeds.

The rules are judged with the clock as an input: these tests give the
fetch an injected clock (OTACHAIN_TEST_NOW=@FILE) that a thread advances
ten times faster than real time, so the default thresholds (10 s grace,
30 s stall) are crossed in one or three real seconds. One test uses the
real clock and the defaults: a 16 KiB timestamp.json at 2 bytes/s is
refused within 60 s (after the 10 s grace period).
"""

import hashlib
import http.server
import os
import random
import re
import shutil
import threading
import time

import pytest

from otarepo import Repo
from testlib import otachain

TARGET = "app/2.0.0/firmware.img"
SPEED = 10  # injected seconds per real second


def sha(data):
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(name="world", scope="module")
def world_fixture(tmp_path_factory):
    """A ledger repository (quorum none) with root v2, releases 1.0.0 and
    2.0.0 (a few local edits apart), a reference delta 1.0.0 -> 2.0.0, and
    the device's current image (1.0.0)."""
    tmp = tmp_path_factory.mktemp("slow")
    rnd = random.Random(5)
    v1 = bytearray(rnd.randbytes(600_000))
    v2 = bytearray(v1)
    v2[100_000:100_000] = rnd.randbytes(500)
    v2[400_000:400_300] = rnd.randbytes(300)
    repo = Repo.create(tmp / "repo")
    repo.add_release("app", "1.0.0", bytes(v1))
    repo.add_release("app", "2.0.0", bytes(v2))
    repo.rotate_root(["--add-key", f"root={repo.new_key().pub}"], repo.root_keys[:2])
    otachain("delta", "make", repo.dir, "--release", "app/2.0.0", "--from-version", "1.0.0")
    assert (repo.public / "deltas" / sha(v1) / sha(v2)).exists()
    cur = tmp / "current.img"
    cur.write_bytes(bytes(v1))
    return repo, bytes(v2), cur


class FastClock:
    """OTACHAIN_TEST_NOW=@FILE, rewritten every 10 ms (temporary + rename)
    with the real time sped up SPEED times."""

    def __init__(self, path):
        self.path = path
        self.t0, self.m0 = time.time(), time.monotonic()
        self.stop = threading.Event()
        self.write()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def write(self):
        now = int(self.t0 + (time.monotonic() - self.m0) * SPEED)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(f"{now}\n")
        os.replace(tmp, self.path)

    def run(self):
        while not self.stop.wait(0.01):
            self.write()

    def close(self):
        self.stop.set()
        self.thread.join()


@pytest.fixture(name="fast_clock")
def fast_clock_fixture(tmp_path):
    clock = FastClock(tmp_path / "now")
    yield {"OTACHAIN_TEST_NOW": f"@{clock.path}"}
    clock.close()


def fetch(repo, url, state, out, cur, extra=(), env=None):
    if cur is not None:
        extra = ("--current", cur, *extra)
    return otachain("fetch", "--url", url, "--trusted-root", repo.root1, "--state", state,
                    "--target", TARGET, "--out", out, *extra, check=False, env=env)


def assert_slow(p, name):
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert p.stderr.startswith("otachain: slow_retrieval: "), p.stderr
    m = re.search(r"https?://\S+", p.stderr)
    assert m and name in m.group(0), p.stderr


def assert_honest_run_succeeds(repo, v2, nginx_factory, state, out, cur):
    honest = nginx_factory(root=repo.public)
    p = fetch(repo, honest.url, state, out, cur)
    assert p.returncode == 0, p.stderr
    assert out.read_bytes() == v2


# (nginx location, what the fetch must name, extra fetch options)
TRICKLED = [
    ("location = /metadata/timestamp.json", "/metadata/timestamp.json", ()),
    ("location = /metadata/2.root.json", "/metadata/2.root.json", ()),
    (r"location ~ ^/metadata/[0-9]+\.snapshot\.json$", ".snapshot.json", ()),
    (r"location ~ ^/metadata/[0-9]+\.targets\.json$", ".targets.json", ()),
    ("location = /ledger/checkpoint", "/ledger/checkpoint", ()),
    (r"location ~ \.cidx$", ".firmware.img.cidx", ("--no-delta",)),
    ("location ^~ /deltas/", "/deltas/", ()),
    ("location ^~ /chunks/", ".pack", ("--no-delta",)),
]


@pytest.mark.parametrize("location,name,extra", TRICKLED, ids=[t[1] for t in TRICKLED])
def test_trickled_file_refused(tmp_path, world, nginx_factory, fast_clock, location, name, extra):
    repo, v2, cur = world
    slow = nginx_factory(root=repo.public, extra_conf=f"        {location} {{ limit_rate 2; }}\n")
    state, out = tmp_path / "st", tmp_path / "new.img"
    t0 = time.monotonic()
    p = fetch(repo, slow.url, state, out, cur, extra, env=fast_clock)
    assert_slow(p, name)
    assert "below the minimum of 1024 bytes/s after 10 s" in p.stderr
    assert time.monotonic() - t0 < 30
    assert not out.exists()
    if location.endswith(("timestamp.json", "/chunks/", "/deltas/")):
        # The state a refusal left is not poisoned (one metadata file, the
        # pack, the delta; CI time: not after every case).
        assert_honest_run_succeeds(repo, v2, nginx_factory, state, out, cur)


class StallingMirror:
    """Serves DIR as static files, except that a GET whose path starts
    with `stall` gets its status and headers, then nothing."""

    def __init__(self, root, stall):
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                path = self.path.split("?", 1)[0]
                f = root / path.lstrip("/")
                if path.startswith(stall):
                    self.send_response(206 if "Range" in self.headers else 200)
                    self.send_header("Content-Length", str(min(f.stat().st_size, 1000)))
                    self.end_headers()
                    self.wfile.flush()
                    outer.stalled.wait(60)
                    self.close_connection = True
                    return
                if ".." in path or not f.is_file():
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data = f.read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.stalled = threading.Event()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.stalled.set()
        self.server.shutdown()
        self.server.server_close()


STALLED = [
    ("/metadata/timestamp.json", "/metadata/timestamp.json", ()),
    ("/chunks/", ".pack", ("--no-delta",)),
]


@pytest.mark.parametrize("stall,name,extra", STALLED, ids=[s[1] for s in STALLED])
def test_stall_after_headers_refused(tmp_path, world, nginx_factory, fast_clock, stall, name,
                                     extra):
    repo, v2, cur = world
    srv = StallingMirror(repo.public, stall)
    try:
        state, out = tmp_path / "st", tmp_path / "new.img"
        p = fetch(repo, srv.url, state, out, cur, extra, env=fast_clock)
    finally:
        srv.close()
    assert_slow(p, name)
    # The average rule (nothing after 10 s) or the stall rule (nothing for
    # 30 s), whichever the progress callback saw first.
    assert re.search(r"0 bytes in \d+ s: an average of 0 bytes/s|no byte for \d+ s", p.stderr), \
        p.stderr
    assert not out.exists()
    assert_honest_run_succeeds(repo, v2, nginx_factory, state, out, cur)


def test_defaults_16k_timestamp_at_2_bytes_per_second(tmp_path, world, nginx_factory):
    """The real clock and the default thresholds: refused within 60 s."""
    repo, v2, cur = world
    mirror = tmp_path / "mirror"
    shutil.copytree(repo.public, mirror)
    (mirror / "metadata" / "timestamp.json").write_bytes(b"{" + b" " * 16382 + b"}")
    slow = nginx_factory(root=mirror,
                         extra_conf="        location = /metadata/timestamp.json "
                                    "{ limit_rate 2; }\n")
    state, out = tmp_path / "st", tmp_path / "new.img"
    t0 = time.monotonic()
    p = fetch(repo, slow.url, state, out, cur)
    took = time.monotonic() - t0
    assert_slow(p, "/metadata/timestamp.json")
    assert took < 60, took
    # (nginx counts its headers against limit_rate: the body may not have
    # begun when the average is judged.)
    assert re.search(r": \d+ bytes in 1\d s: an average of [0-2] bytes/s, below the minimum of "
                     r"1024 bytes/s after 10 s$", p.stderr.strip()), p.stderr
    assert_honest_run_succeeds(repo, v2, nginx_factory, state, out, cur)


def test_round_deadline(tmp_path, world, nginx_factory, fast_clock):
    """Each transfer fast enough, the whole too slow: the round's deadline
    (--round-timeout) ends it. The pack at 20 kB/s (200 kB/s on the
    injected clock) would take 30 s; the round of 30 s on that clock ends
    after 3 real seconds."""
    repo, v2, cur = world
    slow = nginx_factory(root=repo.public,
                         extra_conf="        location ^~ /chunks/ { limit_rate 20k; }\n")
    state, out = tmp_path / "st", tmp_path / "new.img"
    t0 = time.monotonic()
    p = fetch(repo, slow.url, state, out, None, ("--round-timeout", "30s"), env=fast_clock)
    assert p.returncode == 1 and p.stderr.startswith("otachain: slow_retrieval: "), p.stderr
    assert "the update round's deadline passed" in p.stderr
    assert time.monotonic() - t0 < 20
    assert not out.exists()
