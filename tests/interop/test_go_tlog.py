"""Independent cross-check of the ledger (issue 3, acceptance 2): Go's
golang.org/x/mod/sumdb/tlog and note packages (Debian golang-go +
golang-golang-x-mod-dev, built offline in GOPATH mode) verify the
checkpoint signature, a cosignature/v1, inclusion and consistency proofs
of a log of 10^6 entries made by our code (tests/interop/tlog_gen), and
reject tampered ones."""

import base64
import os
import shutil
import subprocess

import pytest

from testlib import INTEROP, bin_dir

N = 1_000_000


@pytest.fixture(scope="module")
def tlogcheck(tmp_path_factory):
    if shutil.which("go") is None:
        pytest.fail("go not found: run scripts/install-deps (make deps)", pytrace=False)
    d = tmp_path_factory.mktemp("go")
    env = dict(os.environ, GO111MODULE="off", GOPATH="/usr/share/gocode",
               GOCACHE=str(d / "cache"), GOFLAGS="", GOPROXY="off")
    exe = d / "tlogcheck"
    subprocess.run(["go", "build", "-o", str(exe), str(INTEROP / "go" / "tlogcheck.go")],
                   check=True, env=env, timeout=300)
    return exe


@pytest.fixture(scope="module")
def log(tmp_path_factory):
    d = tmp_path_factory.mktemp("log")
    subprocess.run([str(bin_dir() / "tests" / "interop" / "tlog_gen"), str(N), str(d)],
                   check=True, timeout=300)
    return d


def run(exe, d):
    return subprocess.run([str(exe), str(d)], capture_output=True, text=True, timeout=120)


def test_go_verifies_our_log(tlogcheck, log):
    p = run(tlogcheck, log)
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert f"ok checkpoint signature origin=otachain.invalid/interop size={N}" in out
    assert "ok cosignature time=" in out
    assert "ok inclusion index=500000 hashes=20" in out
    assert out.count("ok inclusion") == 6 and out.count("ok consistency") == 5


def copy(log, tmp_path):
    d = tmp_path / "copy"
    shutil.copytree(log, d)
    return d


def test_go_rejects_a_tampered_inclusion_proof(tlogcheck, log, tmp_path):
    d = copy(log, tmp_path)
    lines = (d / "proofs").read_text().splitlines()
    fields = lines[2].split()
    h = bytearray(base64.b64decode(fields[5]))
    h[0] ^= 1
    fields[5] = base64.b64encode(bytes(h)).decode()
    lines[2] = " ".join(fields)
    (d / "proofs").write_text("\n".join(lines) + "\n")
    p = run(tlogcheck, d)
    assert p.returncode != 0
    assert "inclusion of" in p.stderr


def test_go_rejects_a_tampered_consistency_proof(tlogcheck, log, tmp_path):
    d = copy(log, tmp_path)
    lines = (d / "proofs").read_text().splitlines()
    i = next(k for k, ln in enumerate(lines) if ln.startswith("consistency 1000 "))
    fields = lines[i].split()
    fields[3], fields[4] = fields[4], fields[3]
    lines[i] = " ".join(fields)
    (d / "proofs").write_text("\n".join(lines) + "\n")
    p = run(tlogcheck, d)
    assert p.returncode != 0
    assert "consistency from 1000" in p.stderr


def test_go_rejects_a_forged_log_signature(tlogcheck, log, tmp_path):
    d = copy(log, tmp_path)
    text = (d / "checkpoint").read_text()
    body, sigs = text.split("\n\n", 1)
    first, rest = sigs.split("\n", 1)
    prefix, b64 = first.rsplit(" ", 1)
    raw = bytearray(base64.b64decode(b64))
    raw[-1] ^= 1
    (d / "checkpoint").write_text(body + "\n\n" + prefix + " " + base64.b64encode(bytes(raw)).decode()
                                  + "\n" + rest)
    p = run(tlogcheck, d)
    assert p.returncode != 0
    assert "checkpoint log signature" in p.stderr
