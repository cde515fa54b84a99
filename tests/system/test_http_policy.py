"""The one HTTP policy (include/otachain/http.h; issue 9) seen from the CLI:
mutual TLS for the device verbs, --ca-file on the ledger verbs, and the
policy's refusals (a CA or certificate file that cannot be read).

nginx serves the published repository over HTTPS on a self-signed server
certificate and, with `ssl_verify_client on`, asks for a client
certificate signed by a device CA the test makes with the openssl CLI.
"""

import random
import subprocess

import pytest

from otarepo import Repo
from testlib import otachain


def openssl(*args):
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True,
                   stdin=subprocess.DEVNULL)


def device_ca(d):
    """A device CA and one device certificate with its key: (ca, cert, key)."""
    d.mkdir(parents=True, exist_ok=True)
    ca, ca_key = d / "ca.crt", d / "ca.key"
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", ca_key, "-out", ca, "-days", "2", "-subj", "/CN=device CA")
    key, csr, cert = d / "dev.key", d / "dev.csr", d / "dev.crt"
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", key, "-out", csr, "-subj", "/CN=device-1")
    openssl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
            "-out", cert, "-days", "2")
    return ca, cert, key


@pytest.fixture(name="repo", scope="module")
def repo_fixture(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("policy")
    repo = Repo.create(tmp / "repo")
    repo.add_release("app", "1.0.0", random.Random(3).randbytes(200_000))
    return repo


def test_mutual_tls(tmp_path, repo, nginx_factory):
    ca, cert, key = device_ca(tmp_path / "pki")
    srv = nginx_factory(root=repo.public, tls=True,
                        extra_conf=f"        ssl_client_certificate {ca};\n"
                                   "        ssl_verify_client on;\n")
    base = ["--trusted-root", repo.root1, "--ca-file", srv.ca_file]

    # Without a client certificate nginx refuses every request (400).
    p = otachain("repo", "verify", "--url", srv.url, "--state", tmp_path / "s0", *base,
                 check=False)
    assert p.returncode == 3 and p.stderr.startswith("otachain: network: "), p.stderr
    assert "HTTP status 400" in p.stderr

    # With it (key in its own file, or in the certificate's file) it works.
    p = otachain("repo", "verify", "--url", srv.url, "--state", tmp_path / "s1", *base,
                 "--client-cert", cert, "--client-key", key, check=False)
    assert p.returncode == 0, p.stderr
    both = tmp_path / "both.pem"
    both.write_bytes(cert.read_bytes() + key.read_bytes())
    out = tmp_path / "fw.img"
    p = otachain("fetch", "--url", srv.url, "--state", tmp_path / "s2", *base,
                 "--target", "app/1.0.0/firmware.img", "--out", out, "--client-cert", both,
                 check=False)
    assert p.returncode == 0, p.stderr
    assert out.stat().st_size == 200_000

    # A key without a certificate is a usage error; unreadable files are
    # named before any transfer.
    p = otachain("repo", "verify", "--url", srv.url, "--state", tmp_path / "s3", *base,
                 "--client-key", key, check=False)
    assert p.returncode == 2 and "--client-key goes with --client-cert" in p.stderr
    p = otachain("repo", "verify", "--url", srv.url, "--state", tmp_path / "s3", *base,
                 "--client-cert", tmp_path / "missing.pem", check=False)
    assert p.returncode == 3 and p.stderr.startswith("otachain: not_found: "), p.stderr
    assert f"client certificate {tmp_path / 'missing.pem'}" in p.stderr


def test_ledger_verbs_take_the_policy(tmp_path, repo, nginx_factory):
    srv = nginx_factory(root=repo.public, tls=True)
    # The self-signed server is refused without --ca-file...
    p = otachain("ledger", "show", "--url", srv.url, check=False)
    assert p.returncode == 3 and p.stderr.startswith("otachain: network: "), p.stderr
    assert "certificate" in p.stderr
    # ...and trusted with it, for every ledger verb that reads a URL.
    p = otachain("ledger", "show", "--url", srv.url, "--ca-file", srv.ca_file)
    assert "origin " in p.stdout
    otachain("ledger", "verify", "--url", srv.url, "--ca-file", srv.ca_file,
             "--trusted-root", repo.root1)
    otachain("ledger", "policy", "--url", srv.url, "--ca-file", srv.ca_file,
             "--trusted-root", repo.root1)
    otachain("ledger", "monitor", "--url", srv.url, "--ca-file", srv.ca_file,
             "--trusted-root", repo.root1, "--once")
    p = otachain("ledger", "show", "--url", srv.url, "--ca-file", tmp_path / "none.pem",
                 check=False)
    assert p.returncode == 3 and f"CA file {tmp_path / 'none.pem'}" in p.stderr
    # A bad value of a transfer option is a usage error.
    for opt, val in (("--min-rate", "0"), ("--rate-grace", "10"), ("--round-timeout", "x"),
                     ("--stall-timeout", "2h")):
        p = otachain("ledger", "show", "--url", srv.url, opt, val, check=False)
        assert p.returncode == 2 and opt in p.stderr, (opt, p.stderr)
