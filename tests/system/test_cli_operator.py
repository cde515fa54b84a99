"""What a hostile user and a careless operator found in the CLI (issue 10):
each refusal with its exit code and exact error name (docs/cli.md), and the
message checked for the fact that was missing before."""

import json
import os
import shutil
import subprocess

import pytest

from otarepo import Key
from testlib import free_port, otachain
from witnesslib import Witness


def err(p):
    """(exit code, errname) of a failed command."""
    lines = [ln for ln in p.stderr.splitlines() if ln.startswith("otachain: ")]
    assert lines, p.stderr
    return p.returncode, lines[-1].split(": ")[1]


@pytest.fixture
def keys(tmp_path):
    d = tmp_path / "keys"
    d.mkdir()
    return {n: Key.generate(d / f"{n}.key") for n in ("r1", "t1")}


def init_args(repo, keys, *extra):
    return ["repo", "init", repo, "--root-key", keys["r1"], "--root-threshold", "1",
            "--targets-key", keys["t1"], "--targets-threshold", "1", *extra]


@pytest.fixture
def witness(tmp_path):
    w = Witness(tmp_path / "w0", "witness.test/w0", [])
    w.init()
    yield w
    w.kill()


# ------------------------------------------------------------- witnesses


def test_witness_url_scheme_is_checked_at_init(tmp_path, keys, witness):
    for url in ("ftp://127.0.0.1:1", "file:///tmp/w", "127.0.0.1:8080", "http://"):
        p = otachain(*init_args(tmp_path / "repo", keys, "--witness",
                                f"w0={witness.vkey}@{url}"), check=False)
        assert err(p) == (2, "invalid_arg"), p.stderr
        assert "http:// or https://" in p.stderr and url in p.stderr
        assert not (tmp_path / "repo").exists()
    # Any case of the scheme is a scheme (RFC 3986).
    otachain(*init_args(tmp_path / "repo", keys, "--witness", f"w0={witness.vkey}@HTTP://h:1"))


def test_witness_url_scheme_is_checked_at_root_rotate(tmp_path, keys, witness):
    repo = tmp_path / "repo"
    otachain(*init_args(repo, keys))
    p = otachain("root", "rotate", repo, "--key", keys["r1"], "--add-witness",
                 f"w0={witness.vkey}@gopher://127.0.0.1:70", check=False)
    assert err(p) == (2, "invalid_arg")
    assert "http:// or https://" in p.stderr


def test_same_witness_key_under_two_names(tmp_path, keys, witness):
    p = otachain(*init_args(tmp_path / "repo", keys,
                            "--witness", f"a={witness.vkey}@http://127.0.0.1:1",
                            "--witness", f"b={witness.vkey}@http://127.0.0.1:2"), check=False)
    assert err(p) == (2, "invalid_arg"), p.stderr
    assert "witness b: the same key" in p.stderr and "as witness a" in p.stderr

    # The same in a root rotation.
    repo = tmp_path / "repo"
    otachain(*init_args(repo, keys))
    p = otachain("root", "rotate", repo, "--key", keys["r1"],
                 "--add-witness", f"a={witness.vkey}@http://127.0.0.1:1",
                 "--add-witness", f"b={witness.vkey}@http://127.0.0.1:2", check=False)
    assert err(p) == (2, "invalid_arg"), p.stderr
    assert "the same key" in p.stderr


def test_init_with_witnesses_waits_for_them_and_says_what_to_do(tmp_path, keys, witness):
    repo = tmp_path / "repo"
    port = free_port()
    origin = "example.test/cam"
    out = otachain(*init_args(repo, keys, "--ledger-origin", origin, "--witness",
                              f"w0={witness.vkey}@http://127.0.0.1:{port}")).stdout
    # Every threshold is met, yet nothing is published: the witness cannot
    # know the log key yet.
    assert not (repo / "public" / "metadata" / "timestamp.json").exists()
    assert not (repo / "public" / "metadata" / "1.root.json").exists()
    assert "not published yet" in out

    policy = json.loads((repo / "pending" / "root.json").read_text())["signed"][
        "x-otachain-ledger"]["policy"]
    logkey = policy[0].split(" ")[1]
    assert otachain("ledger", "key", repo).stdout == logkey + "\n"
    assert otachain("ledger", "key", repo, "--origin").stdout == origin + "\n"
    assert f"origin = {origin}" in out and f"key = {logkey}" in out
    assert f"otachain ledger key {repo}" in out and f"otachain repo publish {repo}" in out

    # Following the advice works.
    witness.logs = [{"name": "repo", "origin": origin, "keys": [logkey]}]
    witness.write_config(port=port)
    witness.start()
    otachain("repo", "publish", repo)
    assert (repo / "public" / "metadata" / "timestamp.json").exists()
    # Published: the key comes from the published root now.
    assert otachain("ledger", "key", repo).stdout == logkey + "\n"


def test_init_without_witnesses_still_publishes_at_once(tmp_path, keys):
    repo = tmp_path / "repo"
    otachain(*init_args(repo, keys))
    assert (repo / "public" / "metadata" / "timestamp.json").exists()
    otachain("ledger", "key", repo)  # quorum none: the log key is still there
    nl = tmp_path / "nl"
    otachain(*init_args(nl, keys, "--no-ledger"))
    p = otachain("ledger", "key", nl, check=False)
    assert err(p) == (3, "not_found")
    assert "names no ledger" in p.stderr


# ------------------------------------------------------------- release add


@pytest.fixture
def repo(tmp_path, keys):
    r = tmp_path / "repo"
    otachain(*init_args(r, keys, "--no-ledger"))
    return r


def add(repo, image, *extra, version="1.0.0", check=False, **kw):
    return otachain("release", "add", repo, image, "--product", "fw", "--hardware", "h",
                    "--version", version, "--security-version", "1", *extra, check=check, **kw)


def test_duplicate_release_names_the_image(tmp_path, repo):
    img = tmp_path / "fw.img"
    img.write_bytes(b"x" * 1000)
    add(repo, img, check=True)
    p = add(repo, img)
    assert err(p) == (3, "exists")
    assert "target fw/1.0.0/fw.img already exists" in p.stderr
    assert ".cidx" not in p.stderr
    # An image named like another image's index: that index is named.
    p = add(repo, img, "--name", "fw.img.cidx")
    assert err(p) == (3, "exists")
    assert "fw/1.0.0/fw.img.cidx already exists" in p.stderr


def test_release_add_refuses_what_is_not_a_file_or_block_device(tmp_path, repo):
    fifo = tmp_path / "fifo.img"
    os.mkfifo(fifo)
    # No writer: opening it for reading would block forever.
    p = add(repo, fifo, timeout=30)
    assert err(p) == (2, "invalid_arg")
    assert "is a FIFO (named pipe): give a regular file or a block device" in p.stderr
    p = add(repo, tmp_path, "--name", "d.img")
    assert err(p) == (2, "invalid_arg")
    assert "is a directory" in p.stderr
    p = add(repo, "/dev/zero", "--name", "z.img")
    assert err(p) == (2, "invalid_arg")
    assert "is a character device" in p.stderr
    p = add(repo, tmp_path / "missing.img")
    assert err(p) == (3, "not_found")
    assert not (repo / "pending" / "targets.json").exists() or \
        "fw/1.0.0/" not in (repo / "pending" / "targets.json").read_text()


def _losetup():
    if os.geteuid() != 0 or shutil.which("losetup") is None:
        return None
    return shutil.which("losetup")


def test_release_add_reads_a_block_device(tmp_path, repo):
    losetup = _losetup()
    if losetup is None:
        pytest.skip("needs root and losetup for a loop device")
    backing = tmp_path / "slot.bin"
    data = os.urandom(256 * 1024)
    backing.write_bytes(data)
    p = subprocess.run([losetup, "--find", "--show", "--read-only", str(backing)],
                       capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip(f"no loop device here: {p.stderr.strip()}")
    dev = p.stdout.strip()
    try:
        add(repo, dev, "--name", "slot.img", check=True)
    finally:
        subprocess.run([losetup, "--detach", dev], check=False)
    t = json.loads((repo / "pending" / "targets.json").read_text())["signed"]["targets"]
    assert t["fw/1.0.0/slot.img"]["length"] == len(data)
