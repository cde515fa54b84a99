"""The data plane against a plain static mirror (issue 4, acceptance 3).

nginx serves DIR/public as static files (Range honoured, as for any static
file). `otachain fetch` runs the TUF refresh, downloads the hash-pinned
chunk index target, then builds the new image from a reference delta when
the mirror has one, else from the current image's chunks plus byte ranges
of the release's pack. The access log ("$request $status
$body_bytes_sent") says what crossed the wire.

- a client holding v1 fetches only the missing chunks of v2: the pack bytes
  nginx sent equal the planned ranges and are a small part of the pack;
- with a reference delta on the mirror, the delta is used and no pack
  range is requested;
- kill -9 in the middle of a slow download, then a rerun: it fetches
  fewer bytes than a full run and no verified chunk again;
- kill -9 in the middle of a slow reference delta, then a rerun: the chunks
  the delta had produced and verified are kept, the rest comes from the
  delta again;
- a mirror that flips one byte of one chunk in the pack is refused with an
  error naming the chunk, and OUT never appears (OUT.part stays unrenamed);
  a flipped delta is refused and the client falls back to verified chunks;
- every request of a fetch goes over one keep-alive connection, and over
  HTTPS nginx's HTTP/2 is used (its log says HTTP/2.0), with the same
  bytes as HTTP/1.1.
"""

import hashlib
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

from otarepo import Repo
from serverlib import Mirror
from testlib import free_port, otachain, otachain_path

TARGET2 = "app/2.0.0/firmware.img"


def sha(data):
    return hashlib.sha256(data).hexdigest()


def images(size=2 << 20, seed=7):
    """v1: random bytes; v2: v1 with a few local edits (an insertion, an
    overwrite, a deletion), as a small source fix would give."""
    rnd = random.Random(seed)
    v1 = bytearray(rnd.randbytes(size))
    v2 = bytearray(v1)
    v2[300_000:300_000] = rnd.randbytes(700)
    v2[1_000_000:1_000_500] = rnd.randbytes(500)
    del v2[1_600_000:1_601_000]
    return bytes(v1), bytes(v2)


def make_release(tmp_path, v1, v2):
    """A repository (no ledger) with releases 1.0.0 = v1 and 2.0.0 = v2,
    and current.img = v1: (repo, v1, v2, current)."""
    repo = Repo.create(tmp_path / "repo", ledger=False)
    repo.add_release("app", "1.0.0", v1)
    repo.add_release("app", "2.0.0", v2)
    cur = tmp_path / "current.img"
    cur.write_bytes(v1)
    return repo, v1, v2, cur


@pytest.fixture(name="release")
def release_fixture(tmp_path):
    return make_release(tmp_path, *images())


@pytest.fixture(name="shared_release", scope="module")
def shared_release_fixture(tmp_path_factory):
    """The same release, made once for the tests that only read it (CI
    time): they must not change its repository or files."""
    return make_release(tmp_path_factory.mktemp("shared"), *images())


@pytest.fixture(name="mirror_factory", params=["nginx", "server"])
def mirror_factory_fixture(request, tmp_path, nginx_factory):
    """Starts a static mirror of a directory: nginx, or otachain-server's
    public listener (issue 11, acceptance 7: the same tests pass against
    both). mirror_factory(root, slow=False) -> .url, .requests(),
    .connections(); slow: downloads at 256 KiB/s."""
    if request.param == "nginx":
        def start_nginx(root, slow=False):
            extra = "        location /chunks/ { limit_rate 256k; }\n" if slow else ""
            return nginx_factory(root=root, extra_conf=extra)
        yield start_nginx
        return
    mirrors = []

    def start_server(root, slow=False):
        m = Mirror(tmp_path / f"server{len(mirrors)}", root, slow=slow)
        mirrors.append(m)
        return m.start()

    yield start_server
    for m in mirrors:
        m.stop()


def pack_path(repo, data):
    return repo.public / "chunks" / f"{sha(data)}.pack"


def fetch(repo, srv, state, out, current=None, extra=(), env=None, check=False):
    args = ["fetch", "--url", srv.url, "--trusted-root", repo.root1, "--state", state,
            "--target", TARGET2, "--out", out, *extra]
    if current is not None:
        args += ["--current", current]
    return otachain(*args, check=check, env=env)


def stat(out, name):
    m = re.search(rf"^{name}: (\d+)", out, re.M)
    return int(m.group(1))


def pack_requests(srv):
    return [r for r in srv.requests() if "/chunks/" in r[1]]


def test_release_add_publishes_index_target_and_pack(release):
    repo, v1, v2, _ = release
    tgt = repo.load(f"{repo.version('targets')}.targets.json")["signed"]["targets"]
    img = tgt[TARGET2]
    assert img["custom"]["index"] == TARGET2 + ".cidx"
    idx = tgt[TARGET2 + ".cidx"]
    files = list((repo.public / "targets" / "app" / "2.0.0").iterdir())
    idx_file = [f for f in files if f.name.endswith(".firmware.img.cidx")][0]
    assert sha(idx_file.read_bytes()) == idx["hashes"]["sha256"]
    assert idx_file.read_bytes()[:8] == b"OTACHIDX"
    assert pack_path(repo, v2).stat().st_size > len(v2) // 2
    assert sum(e[0] for e in index_entries(repo, TARGET2)) == len(v2)


def test_fetch_only_missing_chunks(tmp_path, release, mirror_factory):
    repo, v1, v2, cur = release
    srv = mirror_factory(repo.public)
    out = tmp_path / "new.img"
    p = fetch(repo, srv, tmp_path / "st", out, current=cur, check=True)
    assert out.read_bytes() == v2
    assert not (tmp_path / "new.img.part").exists()
    assert "path: chunks" in p.stdout
    planned = int(re.search(r"planned pack ranges (\d+)", p.stdout).group(1))
    reqs = pack_requests(srv)
    assert reqs and all(r[2] == 206 for r in reqs)
    sent = sum(r[3] for r in reqs)
    pack_size = pack_path(repo, v2).stat().st_size
    # nginx sent the planned ranges (plus multipart boundaries and part
    # headers, < 200 bytes a range), a small part of the pack, in one
    # multi-range request.
    assert len(reqs) == 1
    nranges = stat(p.stdout, "ranges")
    assert planned <= sent <= planned + 200 * nranges
    assert sent < pack_size // 8
    assert stat(p.stdout, "requests") == 2  # the delta (404) and the pack
    # One keep-alive connection for the delta probe and the pack ranges
    # (the TUF refresh and the index have their own).
    assert "protocol: HTTP/1.1, 1 connection\n" in p.stdout
    assert len({c[0] for c in srv.connections() if c[2].startswith(("/chunks/", "/deltas/"))}) == 1
    assert len({c[0] for c in srv.connections()}) == 2
    # The delta path was tried first and was absent.
    assert any("/deltas/" in r[1] and r[2] == 404 for r in srv.requests())
    m = re.search(r"chunks: (\d+) total, 0 already verified, (\d+) copied, (\d+) fetched", p.stdout)
    total, copied, fetched = map(int, m.groups())
    assert copied > 0 and 0 < fetched < total // 4


def test_reference_delta_used(tmp_path, release, mirror_factory):
    repo, v1, v2, cur = release
    p = otachain("delta", "make", repo.dir, "--release", "app/2.0.0", "--from-version", "1.0.0")
    delta = repo.public / "deltas" / sha(v1) / sha(v2)
    assert delta.exists() and str(delta) in p.stdout
    srv = mirror_factory(repo.public)
    out = tmp_path / "new.img"
    p = fetch(repo, srv, tmp_path / "st", out, current=cur, check=True)
    assert out.read_bytes() == v2
    assert "path: delta" in p.stdout
    got = [r for r in srv.requests() if "/deltas/" in r[1]]
    assert len(got) == 1 and got[0][2] == 200 and got[0][3] == delta.stat().st_size
    assert pack_requests(srv) == []
    assert delta.stat().st_size < 20_000

    # A slot device holds the image and more: with --current-length the
    # image is found (its SHA-256 names the delta); without, the slot's
    # bytes name no delta and the chunk path is taken.
    slot = tmp_path / "slot.img"
    slot.write_bytes(v1 + b"\xff" * 300_000)
    p = fetch(repo, srv, tmp_path / "st-slot", tmp_path / "slot-out.img", current=slot,
              extra=("--current-length", str(len(v1))), check=True)
    assert "path: delta" in p.stdout
    assert (tmp_path / "slot-out.img").read_bytes() == v2
    p = fetch(repo, srv, tmp_path / "st-slot2", tmp_path / "slot-out2.img", current=slot,
              check=True)
    assert "path: chunks" in p.stdout
    assert (tmp_path / "slot-out2.img").read_bytes() == v2
    p = fetch(repo, srv, tmp_path / "st-slot3", tmp_path / "slot-out3.img",
              extra=("--current-length", "5"))
    assert p.returncode == 2 and "--current-length" in p.stderr

    # --from IMAGE gives the same delta.
    os.unlink(delta)
    otachain("delta", "make", repo.dir, "--release", "app/2.0.0", "--from", cur)
    assert delta.exists()


def index_entries(repo, target):
    """(length, zlength, sha256 hex) of each chunk (docs/formats/chunk-index.md)."""
    tgt = repo.load(f"{repo.version('targets')}.targets.json")["signed"]["targets"]
    h = tgt[target + ".cidx"]["hashes"]["sha256"]
    name = target.rsplit("/", 1)[1]
    data = (repo.public / "targets" / target.rsplit("/", 1)[0] / f"{h}.{name}.cidx").read_bytes()
    out = []
    for off in range(120, len(data), 40):
        e = data[off:off + 40]
        out.append((int.from_bytes(e[0:4], "little"), int.from_bytes(e[4:8], "little"),
                    e[8:40].hex()))
    return out


def test_flipped_byte_in_pack_refused(tmp_path, release, mirror_factory):
    repo, v1, v2, cur = release
    old = {e[2] for e in index_entries(repo, "app/1.0.0/firmware.img")}
    new = index_entries(repo, TARGET2)
    # The first chunk of v2 that v1 lacks: the client fetches its frame.
    pos = 0
    for i, (length, zlength, h) in enumerate(new):
        if h not in old and zlength > 0:
            break
        pos += zlength
    mirror = tmp_path / "mirror"
    shutil.copytree(repo.public, mirror)
    pack = mirror / "chunks" / f"{sha(v2)}.pack"
    data = bytearray(pack.read_bytes())
    data[pos + zlength // 2] ^= 0x01
    pack.write_bytes(bytes(data))
    srv = mirror_factory(mirror)
    out = tmp_path / "new.img"
    p = fetch(repo, srv, tmp_path / "st", out, current=cur)
    assert p.returncode == 1, p.stderr
    assert re.search(r"^otachain: (hash_mismatch|decompress): ", p.stderr), p.stderr
    assert f"bad chunk {i} (image bytes [" in p.stderr
    assert f"pack bytes [{pos}, {pos + zlength})" in p.stderr
    assert not out.exists()
    assert (tmp_path / "new.img.part").exists()  # kept for resume, never renamed
    # A rerun is refused the same way; OUT still never appears.
    p = fetch(repo, srv, tmp_path / "st", out, current=cur)
    assert p.returncode == 1 and f"bad chunk {i} " in p.stderr
    assert not out.exists()

    # Without a current image (every chunk from the pack) likewise.
    p = fetch(repo, srv, tmp_path / "st-full", tmp_path / "full.img")
    assert p.returncode == 1 and f"bad chunk {i} " in p.stderr
    assert not (tmp_path / "full.img").exists()


def test_flipped_byte_in_delta_refused_falls_back(tmp_path, release, nginx_factory):
    repo, v1, v2, cur = release
    otachain("delta", "make", repo.dir, "--release", "app/2.0.0", "--from-version", "1.0.0")
    mirror = tmp_path / "mirror"
    shutil.copytree(repo.public, mirror)
    delta = mirror / "deltas" / sha(v1) / sha(v2)
    data = bytearray(delta.read_bytes())
    data[len(data) - 40] ^= 0x01
    delta.write_bytes(bytes(data))
    srv = nginx_factory(root=mirror)
    out = tmp_path / "new.img"
    p = fetch(repo, srv, tmp_path / "st", out, current=cur, check=True)
    assert "reference delta refused" in p.stderr
    assert "path: chunks" in p.stdout
    assert out.read_bytes() == v2
    assert any("/deltas/" in r[1] and r[2] == 200 for r in srv.requests())
    # The current image's chunks (dropped while the delta ran) are used
    # again: most of v2 is copied, only a few chunks come from the pack.
    m = re.search(r"chunks: (\d+) total, \d+ already verified, (\d+) copied, (\d+) fetched, "
                  r"(\d+) from the delta", p.stdout)
    total, copied, fetched, from_delta = map(int, m.groups())
    assert copied > 0 and fetched < total // 4
    assert copied + fetched + from_delta == total


def test_server_ignoring_range_gets_full_image(tmp_path, shared_release, nginx_factory):
    """A mirror that ignores Range (nginx max_ranges 0: 200 with the whole
    file): the full image target instead, through the TUF client's fetcher,
    each chunk checked against the index before it is written."""
    repo, v1, v2, cur = shared_release
    srv = nginx_factory(root=repo.public, extra_conf="        max_ranges 0;\n")
    out = tmp_path / "new.img"
    p = fetch(repo, srv, tmp_path / "st", out, current=cur, extra=("--no-delta",), check=True)
    assert out.read_bytes() == v2
    assert "path: full image" in p.stdout
    # The pack was asked for (several ranges, then one: each answer
    # abandoned at its first bytes), then the image target whole.
    packs = pack_requests(srv)
    assert 1 <= len(packs) <= 2 and all(r[2] == 200 for r in packs)
    assert any(r[1].startswith("/targets/app/2.0.0/") and r[1].endswith(".firmware.img") and
               r[2] == 200 and r[3] == len(v2) for r in srv.requests())


def test_python_http_server_mirror(tmp_path, shared_release):
    """Acceptance 7 of issue 9: `python3 -m http.server` (no Range at all)
    still serves the update, verified; a flipped byte in its image target
    is refused, naming the chunk."""
    repo, v1, v2, cur = shared_release
    mirror = tmp_path / "mirror"
    shutil.copytree(repo.public, mirror)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port),
                             "--directory", str(mirror)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        url = type("S", (), {"url": f"http://127.0.0.1:{port}"})
        out = tmp_path / "new.img"
        p = fetch(repo, url, tmp_path / "st", out, current=cur, check=True)
        assert out.read_bytes() == v2
        assert "path: full image" in p.stdout
        # A lying copy of the image target: refused chunk by chunk.
        img = next((mirror / "targets" / "app" / "2.0.0").glob("*.firmware.img"))
        data = bytearray(img.read_bytes())
        data[1_000_000] ^= 0x01
        img.write_bytes(bytes(data))
        p = fetch(repo, url, tmp_path / "st2", tmp_path / "bad.img", current=cur)
        assert p.returncode == 1 and p.stderr.startswith("otachain: hash_mismatch: "), p.stderr
        assert "full image target: bad chunk" in p.stderr
        assert not (tmp_path / "bad.img").exists()
    finally:
        proc.terminate()
        proc.wait()


def recorded_chunks(state):
    """Chunks the fetch's progress file marks as verified (docs/cli.md:
    DIR/dp/<target sha256>.dpstate, a 64-byte header then the bitmap)."""
    n = 0
    for f in (state / "dp").glob("*.dpstate"):
        n += sum(bin(b).count("1") for b in f.read_bytes()[64:])
    return n


def delta_resume_point(state):
    """The delta offset a killed run recorded as its resume point
    (DIR/dp/<target sha256>.dpdelta; docs/cli.md), or 0."""
    for f in (state / "dp").glob("*.dpdelta"):
        data = f.read_bytes()
        if len(data) == 120:
            return int.from_bytes(data[96:104], "little")
    return 0


def kill_fetch_midway(repo, srv, state, out, current, ready=recorded_chunks):
    """Starts `otachain fetch` against a slow srv, waits until ready(state)
    (by default: its progress file records some verified chunks), and
    kills it with SIGKILL (progress is synced every 0.5 s at most, so the
    kill lands early in a download that takes seconds). Returns OUT.part,
    which must exist while OUT must not."""
    args = [otachain_path(), "fetch", "--url", srv.url, "--trusted-root", str(repo.root1),
            "--state", str(state), "--target", TARGET2, "--out", str(out)]
    if current is not None:
        args += ["--current", str(current)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while ready(state) == 0 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    part = out.with_name(out.name + ".part")
    assert part.exists() and not out.exists()
    assert ready(state) > 0
    return part


def test_resume_after_kill9(tmp_path, release, mirror_factory):
    repo, v1, v2, cur = release
    pack_size = pack_path(repo, v2).stat().st_size
    slow = mirror_factory(repo.public, slow=True)
    fast = mirror_factory(repo.public)
    state = tmp_path / "st"
    out = tmp_path / "new.img"
    # No current image: the whole pack in one slow range.
    part = kill_fetch_midway(repo, slow, state, out, None)

    p = fetch(repo, fast, state, out, check=True)
    assert out.read_bytes() == v2
    assert not part.exists()
    done = int(re.search(r"chunks: \d+ total, (\d+) already verified", p.stdout).group(1))
    assert done > 0
    sent = sum(r[3] for r in pack_requests(fast))
    assert 0 < sent < pack_size - 200_000
    assert sent == int(re.search(r"planned pack ranges (\d+)", p.stdout).group(1))


def spread_images(size=4 << 20, seed=11):
    """v2 = v1 with 8 KiB of new bytes every 64 KiB: a delta whose literal
    bytes (512 KiB, several zstd blocks) spread over the whole image, so
    that a slow delta killed half way has produced part of the image (the
    applier outputs a zstd block once the whole block has arrived)."""
    rnd = random.Random(seed)
    v1 = rnd.randbytes(size)
    parts = []
    for off in range(0, size, 64 << 10):
        parts.append(v1[off:off + (64 << 10)])
        parts.append(rnd.randbytes(8 << 10))
    return v1, b"".join(parts)


def test_resume_after_kill9_in_delta(tmp_path, nginx_factory):
    """A delta is fetched without the index; killed half way, the rerun
    fetches the index, checks what the first run wrote up to the last
    frame boundary it recorded, and asks only for the rest of the delta
    (DESIGN §5: the index is fetched only for a fallback or such a
    resume)."""
    repo, v1, v2, cur = make_release(tmp_path, *spread_images())
    otachain("delta", "make", repo.dir, "--release", "app/2.0.0", "--from-version", "1.0.0",
             "--frame-size", "65536")
    delta = repo.public / "deltas" / sha(v1) / sha(v2)
    size = delta.stat().st_size
    assert size > 500_000
    # About 3.5 s for the delta: killed at its first resume point.
    rate = size * 2 // 7
    slow = nginx_factory(root=repo.public,
                         extra_conf=f"        location /deltas/ {{ limit_rate {rate}; }}\n")
    fast = nginx_factory(root=repo.public)
    state = tmp_path / "st"
    out = tmp_path / "new.img"
    part = kill_fetch_midway(repo, slow, state, out, cur, ready=delta_resume_point)
    assert not any(r[1].endswith(".cidx") for r in slow.requests())  # no index needed
    resume_at = delta_resume_point(state)
    assert 104 < resume_at < size

    p = fetch(repo, fast, state, out, current=cur, check=True)
    assert out.read_bytes() == v2
    assert not part.exists()
    assert "path: delta (resumed)" in p.stdout
    assert "index: fetched" in p.stdout
    m = re.search(r"chunks: (\d+) total, (\d+) already verified, \d+ copied, \d+ fetched, "
                  r"(\d+) from the delta", p.stdout)
    total, done, from_delta = map(int, m.groups())
    # The first run got part of the way; the rerun produced only the rest.
    assert 0 < done < total
    assert done + from_delta == total
    assert pack_requests(fast) == []
    # Only the header and the rest of the delta crossed the wire again.
    got = [r for r in fast.requests() if "/deltas/" in r[1]]
    assert [r[2] for r in got] == [206, 206], got
    assert got[0][3] == 104 and got[1][3] == size - resume_at
    assert not list((state / "dp").glob("*.dpdelta"))


def test_http2_over_tls(tmp_path, release, nginx_factory):
    """nginx over HTTPS offering HTTP/2 (ALPN): the fetch uses it, on one
    connection, and receives the same pack bytes as over HTTP/1.1."""
    repo, v1, v2, cur = release
    srv = nginx_factory(root=repo.public, tls=True)
    assert srv.url.startswith("https://")
    out = tmp_path / "new.img"
    # The certificate is self-signed: without --ca-file it is refused.
    p = fetch(repo, srv, tmp_path / "st0", out, current=cur)
    assert p.returncode == 3 and p.stderr.startswith("otachain: network: "), p.stderr
    assert "certificate" in p.stderr
    assert not out.exists()

    p = fetch(repo, srv, tmp_path / "st", out, current=cur, check=True,
              extra=("--ca-file", str(srv.ca_file)))
    assert out.read_bytes() == v2
    assert "path: chunks" in p.stdout
    assert "protocol: HTTP/2, 1 connection\n" in p.stdout
    conns = srv.connections()
    assert conns and all(c[1] == "HTTP/2.0" for c in conns)
    # Data plane on one connection; the TUF refresh and the index on another.
    assert len({c[0] for c in conns if c[2].startswith(("/chunks/", "/deltas/"))}) == 1
    assert len({c[0] for c in conns}) == 2
    sent = sum(r[3] for r in pack_requests(srv))
    planned = int(re.search(r"planned pack ranges (\d+)", p.stdout).group(1))
    nranges = stat(p.stdout, "ranges")
    assert planned <= sent <= planned + 200 * nranges

    # The same over plain HTTP/1.1: the same planned bytes.
    plain = nginx_factory(root=repo.public)
    p1 = fetch(repo, plain, tmp_path / "st1", tmp_path / "new1.img", current=cur, check=True)
    assert int(re.search(r"planned pack ranges (\d+)", p1.stdout).group(1)) == planned
    assert "protocol: HTTP/1.1, 1 connection\n" in p1.stdout

    # repo verify takes the same --ca-file.
    v = otachain("repo", "verify", "--url", srv.url, "--trusted-root", repo.root1,
                 "--state", tmp_path / "vst", "--ca-file", srv.ca_file, check=True)
    assert v.returncode == 0


def test_audit_installed_image(tmp_path, release):
    """`otachain audit`: chunks of an installed image re-hashed in place
    against its signed chunk index (random draws, or every chunk); a
    flipped byte is found and named; the index must be the pinned one."""
    repo, v1, v2, cur = release
    tgt = repo.load(f"{repo.version('targets')}.targets.json")["signed"]["targets"]
    ihash = tgt[TARGET2 + ".cidx"]["hashes"]["sha256"]
    index = repo.public / "targets" / "app" / "2.0.0" / f"{ihash}.firmware.img.cidx"
    slot = tmp_path / "slot.img"
    slot.write_bytes(v2 + b"\0" * 70_000)  # a slot is longer than its image
    p = otachain("audit", slot, "--index", index, "--index-sha256", ihash, check=True)
    assert "16 chunk checks (random draws of" in p.stdout and "all match the index" in p.stdout
    p = otachain("audit", slot, "--index", index, "--chunks", "all", check=True)
    n = len(index_entries(repo, TARGET2))
    assert f"{n} chunk checks (every one of {n} chunks, {len(v2)} bytes read)" in p.stdout

    bad = bytearray(v2)
    bad[1_234_567] ^= 0x40
    slot.write_bytes(bytes(bad))
    p = otachain("audit", slot, "--index", index, "--chunks", "all", check=False)
    assert p.returncode == 1 and p.stderr.startswith("otachain: hash_mismatch: "), p.stderr
    off = 0
    for i, (length, _, _) in enumerate(index_entries(repo, TARGET2)):
        if off <= 1_234_567 < off + length:
            break
        off += length
    assert f"chunk {i} (image bytes [{off}, {off + length})) does not match the index" in p.stderr
    # The image is shorter than its index says: truncated.
    slot.write_bytes(v2[:1_000_000])
    p = otachain("audit", slot, "--index", index, "--chunks", "all", check=False)
    assert p.returncode == 1 and p.stderr.startswith("otachain: truncated: "), p.stderr
    # Another index than the pinned one; bad arguments.
    p = otachain("audit", cur, "--index", index, "--index-sha256", "0" * 64, check=False)
    assert p.returncode == 1 and "is not the one pinned" in p.stderr
    assert otachain("audit", cur, "--index", index, "--chunks", "0", check=False).returncode == 2
    assert otachain("audit", cur, check=False).returncode == 2


def test_truncated_pack_refused(tmp_path, release, nginx_factory):
    repo, v1, v2, cur = release
    mirror = tmp_path / "mirror"
    shutil.copytree(repo.public, mirror)
    pack = mirror / "chunks" / f"{sha(v2)}.pack"
    size = pack.stat().st_size
    os.truncate(pack, size - 1000)
    srv = nginx_factory(root=mirror)
    out = tmp_path / "new.img"
    # nginx clamps the range to the shorter file: a 206 that ends early.
    p = fetch(repo, srv, tmp_path / "st", out)
    assert p.returncode == 1, p.stderr
    assert p.stderr.startswith("otachain: truncated: ")
    assert f"range [0, {size}) ended after {size - 1000} bytes" in p.stderr
    assert "incomplete chunk" in p.stderr
    assert not out.exists()


def test_mirror_without_multirange(tmp_path, release, nginx_factory):
    """nginx max_ranges 1 answers a multi-range request with the whole file
    (200): the client abandons it and asks for each range alone."""
    repo, v1, v2, cur = release
    srv = nginx_factory(root=repo.public, extra_conf="        max_ranges 1;\n")
    out = tmp_path / "new.img"
    p = fetch(repo, srv, tmp_path / "st", out, current=cur, check=True)
    assert out.read_bytes() == v2
    reqs = pack_requests(srv)
    assert reqs[0][2] == 200
    singles = reqs[1:]
    assert len(singles) == stat(p.stdout, "ranges") and all(r[2] == 206 for r in singles)
    assert sum(r[3] for r in singles) == int(
        re.search(r"planned pack ranges (\d+)", p.stdout).group(1))


def test_fetch_with_ledger(tmp_path, nginx_factory):
    """With the ledger on (no witnesses, quorum none) fetch applies the
    ledger rule in its TUF refresh and works the same."""
    v1, v2 = images(size=600_000, seed=9)
    repo = Repo.create(tmp_path / "repo")
    repo.add_release("app", "1.0.0", v1)
    repo.add_release("app", "2.0.0", v2)
    cur = tmp_path / "current.img"
    cur.write_bytes(v1)
    srv = nginx_factory(root=repo.public)
    out = tmp_path / "new.img"
    p = fetch(repo, srv, tmp_path / "st", out, current=cur, check=True)
    assert out.read_bytes() == v2
    assert any(r[1].startswith("/ledger/checkpoint") for r in srv.requests())
    assert (tmp_path / "st" / "tuf" / "checkpoint").exists()
    assert stat(p.stdout, "ranges") >= 1


def test_fetch_arguments_refused_before_any_transfer(tmp_path, shared_release, nginx_factory):
    """Issue 10: arguments that cannot work are usage errors (exit 2,
    invalid_arg), found before the first request."""
    repo, v1, v2, cur = shared_release
    srv = nginx_factory(root=repo.public)
    out = tmp_path / "new.img"
    for url in ("ftp://127.0.0.1/x", "file:///etc", "127.0.0.1"):
        p = fetch(repo, type("S", (), {"url": url}), tmp_path / "st", out)
        assert p.returncode == 2 and p.stderr.startswith("otachain: invalid_arg: "), p.stderr
        assert f"--url {url}: an http:// or https:// URL" in p.stderr
    p = otachain("repo", "verify", "--url", "file:///etc", "--trusted-root", repo.root1,
                 "--state", tmp_path / "vs", check=False)
    assert p.returncode == 2 and p.stderr.startswith("otachain: invalid_arg: "), p.stderr
    assert "--url file:///etc: an http:// or https:// URL" in p.stderr
    p = otachain("ledger", "show", "--url", "ftp://127.0.0.1", check=False)
    assert p.returncode == 2 and p.stderr.startswith("otachain: invalid_arg: "), p.stderr
    assert "--url ftp://127.0.0.1: an http:// or https:// URL" in p.stderr
    # A device or pipe as the current image needs the length it holds.
    p = fetch(repo, srv, tmp_path / "st", out, current="/dev/zero")
    assert p.returncode == 2 and p.stderr.startswith("otachain: invalid_arg: "), p.stderr
    assert "--current /dev/zero is not a regular file: give --current-length N" in p.stderr
    # --out naming a directory.
    (tmp_path / "outdir").mkdir()
    p = fetch(repo, srv, tmp_path / "st", tmp_path / "outdir", current=cur)
    assert p.returncode == 2 and p.stderr.startswith("otachain: invalid_arg: "), p.stderr
    assert f"--out {tmp_path / 'outdir'} is a directory" in p.stderr
    assert srv.requests() == []


def test_empty_range_answer_is_truncated(tmp_path, shared_release, nginx_factory):
    """Issue 10: a 206 without a body is `truncated` (exit 1), as a short
    one is (test_truncated_pack_refused), not `network`."""
    repo, v1, v2, cur = shared_release
    srv = nginx_factory(root=repo.public, extra_conf="        location /chunks/ { return 206; }\n")
    out = tmp_path / "new.img"
    p = fetch(repo, srv, tmp_path / "st", out, current=cur)
    assert p.returncode == 1 and p.stderr.startswith("otachain: truncated: "), p.stderr
    assert "ended after 0 bytes (truncated by the mirror)" in p.stderr
    assert not out.exists()


def test_delta_error_status_named(tmp_path, shared_release, nginx_factory):
    """Issue 10: a delta answered with 500 says so (status and URL) in the
    warning, and the chunks serve the update."""
    repo, v1, v2, cur = shared_release
    srv = nginx_factory(root=repo.public, extra_conf="        location /deltas/ { return 500; }\n")
    out = tmp_path / "new.img"
    p = fetch(repo, srv, tmp_path / "st", out, current=cur, check=True)
    assert out.read_bytes() == v2
    assert "path: chunks" in p.stdout
    m = re.search(r"warning: reference delta refused \(network: (.*)\); fell back to chunks",
                  p.stderr)
    assert m, p.stderr
    assert m.group(1) == f"{srv.url}/deltas/{sha(v1)}/{sha(v2)}: HTTP status 500", m.group(1)


# ---- slots (issue 9, acceptance 4) ----------------------------------------
#
# `otachain fetch --slot DEVICE` writes the image in place (no rename), then
# verifies it by reading the medium back. A loop device stands for an A/B
# partition where the machine allows one (root, /dev/loop-control); a
# regular file opened as a slot otherwise. A slot that is mounted (a loop
# device with an ext4 file system mounted), or that is the booted one, is
# refused before the first byte of the image, and so is a slot too small
# for it; a file output on a file system without the room for it likewise.


def run(*cmd):
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, check=False)


def can_loop():
    return os.geteuid() == 0 and os.path.exists("/dev/loop-control") and \
        shutil.which("losetup") is not None


class Loop:
    """A loop device over a file; detached (and unmounted) at the end."""

    def __init__(self, backing, size):
        with open(backing, "wb") as f:
            f.truncate(size)
        p = run("losetup", "--find", "--show", backing)
        if p.returncode != 0:
            pytest.skip(f"losetup refused: {p.stderr.strip()}")
        self.dev = p.stdout.strip()
        self.mnt = None

    def mount(self, where):
        assert run("mkfs.ext4", "-q", "-F", self.dev).returncode == 0
        where.mkdir()
        p = run("mount", self.dev, where)
        if p.returncode != 0:
            pytest.skip(f"mount refused: {p.stderr.strip()}")
        self.mnt = where

    def close(self):
        if self.mnt is not None:
            run("umount", self.mnt)
        run("losetup", "-d", self.dev)


@pytest.fixture(name="loops")
def loops_fixture():
    made = []
    yield made
    for lo in made:
        lo.close()


def fetch_slot(repo, srv, state, slot, current, extra=()):
    return otachain("fetch", "--url", srv.url, "--trusted-root", repo.root1, "--state", state,
                    "--target", TARGET2, "--slot", slot, "--current", current, *extra,
                    check=False)


def image_requests(srv):
    return [r for r in srv.requests() if "/chunks/" in r[1] or "/deltas/" in r[1] or
            r[1].endswith(".cidx")]


def check_slot_fetch(repo, srv, tmp_path, slot, cur, v2):
    p = fetch_slot(repo, srv, tmp_path / "st", slot, cur)
    assert p.returncode == 0, p.stderr
    assert f"bytes verified -> {slot}" in p.stdout
    with open(slot, "rb") as f:
        assert f.read(len(v2)) == v2
    assert not os.path.exists(f"{slot}.part")


def test_fetch_into_slot(tmp_path, shared_release, nginx_factory, loops):
    repo, v1, v2, cur = shared_release
    srv = nginx_factory(root=repo.public)
    if can_loop():
        b = Loop(tmp_path / "slot-b.img", 4 << 20)
        loops.append(b)
        slot = b.dev
    else:
        slot = tmp_path / "slot-b.img"
        with open(slot, "wb") as f:
            f.truncate(4 << 20)
    check_slot_fetch(repo, srv, tmp_path, slot, cur, v2)

    # The booted slot is refused, whatever it is called.
    p = fetch_slot(repo, srv, tmp_path / "st2", slot, cur, ("--booted-slot", slot))
    assert p.returncode == 1 and p.stderr.startswith("otachain: slot_booted: "), p.stderr
    assert f"{slot} is the booted slot" in p.stderr
    # Too small for the image: refused before its first byte.
    small = tmp_path / "small-slot.img"
    with open(small, "wb") as f:
        f.truncate(len(v2) - 1)
    before = len(image_requests(srv))
    p = fetch_slot(repo, srv, tmp_path / "st3", small, cur)
    assert p.returncode == 3 and p.stderr.startswith("otachain: no_space: "), p.stderr
    assert f"holds {len(v2) - 1} bytes, the image needs {len(v2)}" in p.stderr
    assert len(image_requests(srv)) == before


def test_mounted_slot_refused(tmp_path, shared_release, nginx_factory, loops):
    if not can_loop():
        pytest.skip("no loop devices here (needs root and /dev/loop-control)")
    repo, v1, v2, cur = shared_release
    srv = nginx_factory(root=repo.public)
    a = Loop(tmp_path / "slot-a.img", 8 << 20)
    loops.append(a)
    a.mount(tmp_path / "mnt")
    p = fetch_slot(repo, srv, tmp_path / "st", a.dev, cur)
    assert p.returncode == 1 and p.stderr.startswith("otachain: slot_mounted: "), p.stderr
    assert f"{a.dev} is mounted on {tmp_path / 'mnt'}" in p.stderr
    assert image_requests(srv) == []
    # Its backing file, as a file slot, is in use too.
    p = fetch_slot(repo, srv, tmp_path / "st2", tmp_path / "slot-a.img", cur)
    assert p.returncode == 1 and p.stderr.startswith("otachain: slot_mounted: "), p.stderr
    assert "is the backing file of /dev/loop" in p.stderr


def test_file_output_without_room(tmp_path, shared_release, nginx_factory):
    """--out on a file system with less room than the image: no_space
    before the first byte of it."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    repo, v1, v2, cur = shared_release
    srv = nginx_factory(root=repo.public)
    small = tmp_path / "small"
    small.mkdir()
    p = run("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", small)
    if p.returncode != 0:
        pytest.skip(f"mount refused: {p.stderr.strip()}")
    try:
        p = otachain("fetch", "--url", srv.url, "--trusted-root", repo.root1, "--state",
                     tmp_path / "st", "--target", TARGET2, "--out", small / "new.img",
                     "--current", cur, check=False)
        assert p.returncode == 3 and p.stderr.startswith("otachain: no_space: "), p.stderr
        assert f"{small}/new.img.part: the image needs {len(v2)} more bytes" in p.stderr
        assert image_requests(srv) == []
        assert not (small / "new.img.part").exists()
    finally:
        run("umount", small)


def test_small_fix_costs_the_delta(tmp_path, nginx_factory):
    """Issue 9, acceptance 6: a 6 MiB image with three small edits, fetched
    by a holder of the old one from a mirror with the reference delta: the
    bytes on the wire (every response body of the fetch, nginx's log) are
    at most the delta, the signed metadata with its ledger proof, and
    1 KiB (error pages of the probes); the chunk index is not fetched."""
    rnd = random.Random(23)
    v1 = bytearray(rnd.randbytes(6 << 20))
    v2 = bytearray(v1)
    v2[1_000_000:1_000_010] = b"fixed here"
    v2[3_000_000:3_000_000] = b"inserted a line"
    v2[5_000_000:5_000_004] = b"\x90\x90\x90\x90"
    repo = Repo.create(tmp_path / "repo")  # with the ledger
    repo.add_release("app", "1.0.0", bytes(v1))
    repo.add_release("app", "2.0.0", bytes(v2))
    cur = tmp_path / "current.img"
    cur.write_bytes(bytes(v1))
    otachain("delta", "make", repo.dir, "--release", "app/2.0.0", "--from-version", "1.0.0")
    delta = (repo.public / "deltas" / sha(v1) / sha(v2)).stat().st_size
    srv = nginx_factory(root=repo.public)
    out = tmp_path / "new.img"
    p = fetch(repo, srv, tmp_path / "st", out, current=cur, check=True)
    assert out.read_bytes() == v2
    assert "path: delta" in p.stdout and "index: not needed" in p.stdout
    reqs = srv.requests()
    signed = sum(r[3] for r in reqs if r[2] == 200 and r[1].startswith(("/metadata/", "/ledger/")))
    wire = sum(r[3] for r in reqs)
    print(f"small fix: {wire} bytes on the wire = delta {delta} + signed metadata and ledger "
          f"{signed} + {wire - delta - signed} (error pages)")
    assert not any(r[1].endswith(".cidx") or "/chunks/" in r[1] for r in reqs)
    assert wire <= delta + signed + 1024
