"""`otachain ca`: the fleet CA from the command line (docs/cli.md).

Checked with the openssl CLI as the independent judge: each certificate
chains to the CA of its role only, a CSR made with openssl is signed without
its key leaving the "device", and a revoked certificate is refused by
`openssl verify -crl_check` with the exported CRL.
"""

import re
import subprocess

from testlib import otachain


def openssl(*args, check=True):
    return subprocess.run(["openssl", *map(str, args)], capture_output=True, text=True,
                          check=check)


def verify(ca_file, cert, crl=None):
    args = ["verify", "-CAfile", ca_file]
    if crl is not None:
        args += ["-crl_check", "-CRLfile", crl]
    return openssl(*args, cert, check=False)


def test_ca_lifecycle(tmp_path):
    ca = tmp_path / "ca"
    otachain("ca", "init", ca, "--name", "acme")
    for f in ("server-ca.crt", "device-ca.crt", "private/server-ca.key", "private/device-ca.key"):
        assert (ca / f).is_file()
    assert (ca / "private/device-ca.key").stat().st_mode & 0o777 == 0o600

    p = otachain("ca", "issue-device", ca, "cam-0001", "--out", tmp_path / "dev")
    serial = re.search(r"serial ([0-9a-f]+)", p.stdout).group(1)
    otachain("ca", "issue-server", ca, "srv", "--ip", "127.0.0.1", "--dns", "localhost",
             "--out", tmp_path / "srv")
    otachain("ca", "issue-admin", ca, "alice", "--out", tmp_path / "adm")
    assert (tmp_path / "dev.key").stat().st_mode & 0o777 == 0o600

    # Each role chains to its own CA only (separate server and device CAs).
    assert verify(ca / "device-ca.crt", tmp_path / "dev.crt").returncode == 0
    assert verify(ca / "server-ca.crt", tmp_path / "dev.crt").returncode != 0
    assert verify(ca / "server-ca.crt", tmp_path / "srv.crt").returncode == 0
    assert verify(ca / "server-ca.crt", tmp_path / "adm.crt").returncode == 0
    assert verify(ca / "device-ca.crt", tmp_path / "adm.crt").returncode != 0
    text = openssl("x509", "-in", tmp_path / "dev.crt", "-noout", "-text").stdout
    assert "TLS Web Client Authentication" in text
    assert "2.25.186381743845947437666054439606035006669.1" in text
    assert "Subject: CN = cam-0001" in text

    # A key made "on the device": only the CSR travels.
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", tmp_path / "se.key", "-subj", "/CN=cam-0002", "-out", tmp_path / "se.csr")
    otachain("ca", "sign-csr", ca, tmp_path / "se.csr", "--id", "cam-0002",
             "--out", tmp_path / "se.crt")
    mod_cert = openssl("x509", "-in", tmp_path / "se.crt", "-noout", "-pubkey").stdout
    mod_key = openssl("pkey", "-in", tmp_path / "se.key", "-pubout").stdout
    assert mod_cert == mod_key
    p = otachain("ca", "sign-csr", ca, tmp_path / "se.csr", "--id", "other",
                 "--out", tmp_path / "x.crt", check=False)
    assert p.returncode == 1 and "otachain: format:" in p.stderr
    assert not (tmp_path / "x.crt").exists()

    # Revocation and the CRL for other components.
    otachain("ca", "revoke", ca, serial, "--reason", "stolen")
    p = otachain("ca", "revoke", ca, serial, check=False)
    assert p.returncode == 3 and "otachain: exists:" in p.stderr
    otachain("ca", "revoke", ca, "--device", "cam-0002")
    lines = otachain("ca", "list", ca).stdout.splitlines()
    assert len(lines) == 4
    assert any(serial in line and "revoked" in line and "stolen" in line for line in lines)
    assert sum("revoked" in line for line in lines) == 2
    otachain("ca", "crl", ca, "--out", tmp_path / "crl.pem")
    v = verify(ca / "device-ca.crt", tmp_path / "dev.crt", tmp_path / "crl.pem")
    assert v.returncode != 0 and "certificate revoked" in v.stdout + v.stderr
    otachain("ca", "issue-device", ca, "cam-0003", "--out", tmp_path / "d3")
    v = verify(ca / "device-ca.crt", tmp_path / "d3.crt", tmp_path / "crl.pem")
    assert v.returncode == 0


def test_ca_refusals(tmp_path):
    ca = tmp_path / "ca"
    otachain("ca", "init", ca)
    p = otachain("ca", "init", ca, check=False)
    assert p.returncode == 3 and "otachain: exists:" in p.stderr
    # Device ids are [A-Za-z0-9._-]{1,64}: a usage error otherwise.
    for bad in ("cam 1", "cam/1", "a" * 65, ""):
        p = otachain("ca", "issue-device", ca, bad, "--out", tmp_path / "x", check=False)
        assert p.returncode == 2 and "invalid_arg" in p.stderr, bad
    p = otachain("ca", "issue-server", ca, "srv", "--out", tmp_path / "x", check=False)
    assert p.returncode == 2 and "at least one DNS name" in p.stderr
    p = otachain("ca", "issue-server", ca, "srv", "--ip", "1.2.3", "--out", tmp_path / "x",
                 check=False)
    assert p.returncode == 2
    otachain("ca", "issue-device", ca, "cam-1", "--out", tmp_path / "d")
    p = otachain("ca", "issue-device", ca, "cam-1", "--out", tmp_path / "d", check=False)
    assert p.returncode == 3 and "exists" in p.stderr
    p = otachain("ca", "revoke", ca, "zz", check=False)
    assert p.returncode == 2
    p = otachain("ca", "list", tmp_path, check=False)
    assert p.returncode == 3 and "not a CA directory" in p.stderr
    p = otachain("ca", "crl", ca, "--ca", "admin", "--out", tmp_path / "c", check=False)
    assert p.returncode == 2
